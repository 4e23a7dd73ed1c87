/* http.c: HTTP/1.1 server on libuv; see http.h for the contract.
 *
 * A connection moves through four phases: OPEN (reading and answering
 * requests), ENDING (last response queued, shutdown(2) pending), LINGER
 * (write side shut, input read and dropped for a while so the client sees
 * our answer rather than a reset) and CLOSING (uv_close called).
 *
 * Every parsed request becomes a response object, appended to the
 * connection's queue in request order. Only the queue head writes to the
 * socket; responses behind it keep their output in `out` until they reach
 * the head. The connection memory is reference counted: its two handles,
 * every live response and every write or shutdown request hold one, so a
 * response the upper layer still holds never points at freed memory.
 *
 * http_parser does the parsing; wire_scan() refuses what it lets through
 * (see "Wire syntax"), and on_headers_complete() applies the rules of RFC
 * 9112 it leaves to us (Host, Transfer-Encoding).
 */
#include "http.h"

#include "alloc.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>

/* One read buffer per server: reads are handled to completion before the
 * next one, and leftover bytes are copied out. */
#define READ_BUF_SIZE 65536

/* Bytes of framing a request head has beyond the fields we are told about
 * (": " and CRLF per header line). */
#define HEADER_LINE_OVERHEAD 4

/* Connections accepted per readiness callback, so that a flood of them
 * cannot keep the loop from everything else; the listener stays ready. */
#define ACCEPT_BATCH 64
/* How long accepting pauses when the kernel has no memory for it, or no
 * descriptor can be set aside to answer with. */
#define ACCEPT_RETRY_MS 100
/* At most one log line per this long about running out of descriptors. */
#define FD_REPORT_MS 10000

enum conn_phase { PHASE_OPEN, PHASE_ENDING, PHASE_LINGER, PHASE_CLOSING };

/* What the single per-connection timer is currently measuring. */
enum timer_kind {
  TIMER_NONE,
  TIMER_HEADER, /* a request head must complete; 408 */
  TIMER_BODY,   /* a request body must complete; 408 */
  TIMER_CLOSE,  /* idle, drain or linger deadline; close */
  TIMER_RESUME  /* parse bytes held back while too many were queued */
};

enum res_state { RES_NEW, RES_STREAMING, RES_FINISHED };

/* Which part of the request head the parser is delivering. */
enum head_part { PART_URL, PART_FIELD, PART_VALUE, PART_DONE };

enum framing { FRAME_LENGTH, FRAME_CHUNKED, FRAME_CLOSE };

/* What wire_scan() expects next. */
enum wire_state {
  WIRE_START,        /* before a request line; empty lines may come first */
  WIRE_REQUEST,      /* in the request line */
  WIRE_LINE,         /* at a field line, or the empty line ending the head */
  WIRE_FIELD,        /* in a field line */
  WIRE_LF,           /* after a CR: an LF, then wire_next */
  WIRE_PARSER,       /* nothing to check until the parser says */
  WIRE_CHUNK_SIZE,   /* in a chunk size */
  WIRE_CHUNK_EXT,    /* in chunk extensions */
  WIRE_CHUNK_DATA,   /* in chunk data, skipped */
  WIRE_CHUNK_CR,     /* at the CR ending chunk data */
  WIRE_TRAILER_LINE, /* at a trailer line, or the empty line ending them */
  WIRE_TRAILER       /* in a trailer line */
};

/* A request header as offsets into the response's `head` buffer, which may
 * move while it grows. Both strings are NUL-terminated once complete. */
struct header_span {
  size_t name;
  size_t value;
};

struct ph__http_response_s {
  ph__http_request_t req;    /* first, so a request finds its response */
  ph__http_conn_t *conn;     /* holds one reference on it */
  ph__http_response_t *next; /* next in the connection's queue */
  ph__http_gone_cb gone_cb;  /* upper layer, may be NULL */
  void *data;                /* upper layer */
  char *head;                /* URL, header names and values, path, query */
  size_t head_len;
  size_t head_cap;
  size_t url_len;
  size_t head_bytes;           /* request head bytes seen, for the limit */
  struct header_span *headers; /* in arrival order */
  size_t nheaders;
  size_t headers_cap;
  char *body; /* NULL until a body byte arrives */
  size_t body_cap;
  char *out; /* output held back while not at the head of the queue */
  size_t out_len;
  size_t out_cap;
  unsigned char state;      /* enum res_state */
  unsigned char part;       /* enum head_part */
  unsigned queued : 1;      /* in conn's queue */
  unsigned chunked : 1;     /* stream framed with chunked encoding */
  unsigned close_after : 1; /* the connection ends after this response */
  unsigned is_head : 1;     /* HEAD request: the body is never sent */
};

struct ph__http_conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer; /* one timer, meaning given by timer_kind */
  http_parser parser;
  ph__http_server_t *server; /* only touched while the handles are open */
  ph__http_conn_t *prev;     /* in server->conns while not closing */
  ph__http_conn_t *next;
  ph__http_response_t *queue_head; /* dispatched, in request order */
  ph__http_response_t *queue_tail;
  ph__http_response_t *incoming; /* request being parsed */
  ph__http_response_t *complete; /* parsed, about to be dispatched */
  char *pending; /* received bytes not parsed yet (queue was full) */
  size_t pending_off;
  size_t pending_len;
  size_t held_bytes; /* sum of `out` of queued responses */
  unsigned queue_len;
  unsigned refs;
  int error_status;         /* status a parser callback chose to refuse with */
  int wire_status;          /* status wire_scan() refuses with, or 0 */
  uint64_t wire_chunk;      /* chunk size read, then its data bytes left */
  uint64_t wire_body;       /* sizes of the chunks before it */
  unsigned char wire;       /* enum wire_state */
  unsigned char wire_next;  /* state after the LF WIRE_LF expects */
  unsigned char wire_sep;   /* request line: at its start or after an SP;
                               chunk size: no digit yet */
  unsigned char phase;      /* enum conn_phase */
  unsigned char timer_kind; /* enum timer_kind */
  unsigned reading : 1;     /* uv_read_start is in effect */
  unsigned no_more : 1;     /* parse no further requests */
  unsigned rejecting : 1;   /* over max_connections, told 503 */
  unsigned eof : 1;         /* the client shut its sending side */
  union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
  } peer;
};

struct write_req {
  uv_write_t req;
  ph__http_conn_t *conn;
  char *data;
};

static int on_message_begin(http_parser *parser);
static int on_url(http_parser *parser, const char *at, size_t len);
static int on_header_field(http_parser *parser, const char *at, size_t len);
static int on_header_value(http_parser *parser, const char *at, size_t len);
static int on_headers_complete(http_parser *parser);
static int on_body(http_parser *parser, const char *at, size_t len);
static int on_message_complete(http_parser *parser);

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void conn_close(ph__http_conn_t *conn);
static void conn_advance(ph__http_conn_t *conn);
static void conn_refresh(ph__http_conn_t *conn);
static int conn_backed_up(const ph__http_conn_t *conn);

void ph__http_config_init(ph__http_config_t *config) {
  config->max_header_bytes = 16 * 1024;
  config->max_body_bytes = 4 * 1024 * 1024;
  config->max_connections = 1024;
  config->max_pipelined = 16;
  config->max_write_queue_bytes = 8 * 1024 * 1024;
  config->header_timeout_ms = 10 * 1000;
  config->body_timeout_ms = 60 * 1000;
  config->idle_timeout_ms = 60 * 1000;
  config->linger_timeout_ms = 2 * 1000;
  config->error_body = NULL;
}

/* Authorities (RFC 3986 3.2.2 and 3.2.3). */

/* unreserved and sub-delims: ALPHA DIGIT -._~ !$&'()*+,;= as a bitmap of
 * the ASCII characters (the Host check runs on every request). */
static const uint64_t reg_name_chars[2] = {0x2bff7fd200000000u,
                                           0x47fffffe87fffffeu};

static int is_reg_name_char(unsigned char c) {
  return c < 128 && (reg_name_chars[c >> 6] >> (c & 63) & 1);
}

static int hex_value(unsigned char c);

int ph__http_authority_parse(const char *text, size_t len,
                             ph__http_authority_t *out) {
  char literal[INET6_ADDRSTRLEN];
  const char *end;
  const char *p;
  long port;

  end = text + len;
  memset(out, 0, sizeof(*out));
  out->host = text;
  out->port = -1;
  if (len > 0 && text[0] == '[') {
    p = memchr(text, ']', len);
    if (p == NULL || (size_t)(p - text - 1) >= sizeof(literal))
      return UV_EINVAL;
    memcpy(literal, text + 1, (size_t)(p - text - 1));
    literal[p - text - 1] = '\0';
    if (inet_pton(AF_INET6, literal, &out->addr6) != 1)
      return UV_EINVAL;
    out->is_ip6 = 1;
    p++;
  } else {
    for (p = text; p < end && *p != ':'; p++) {
      if (*p == '%') {
        if (end - p < 3 || hex_value((unsigned char)p[1]) < 0 ||
            hex_value((unsigned char)p[2]) < 0)
          return UV_EINVAL;
        p += 2;
      } else if (!is_reg_name_char((unsigned char)*p)) {
        return UV_EINVAL;
      }
    }
  }
  out->host_len = (size_t)(p - text);
  if (p == end)
    return 0;
  if (*p != ':')
    return UV_EINVAL;
  /* An empty port is no port (RFC 3986 6.2.3). */
  for (port = 0, p++; p < end; p++) {
    if (*p < '0' || *p > '9')
      return UV_EINVAL;
    port = port * 10 + (*p - '0');
    if (port > 65535)
      return UV_EINVAL;
    out->port = (int)port;
  }
  return 0;
}

/* Server bookkeeping. */

static void server_handle_closed(ph__http_server_t *server) {
  server->handles--;
  if (!server->closing || server->handles != 0)
    return;
  free(server->read_buf);
  server->read_buf = NULL;
  if (server->close_cb != NULL)
    server->close_cb(server);
}

/* The Date line, formatted by hand because strftime's names follow the
 * locale; cached for the second it names. */
static const char *server_date(ph__http_server_t *server) {
  static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                  "Thu", "Fri", "Sat"};
  static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t now;
  struct tm tm;

  now = time(NULL);
  if ((int64_t)now == server->date_second && server->date[0] != '\0')
    return server->date;
  gmtime_r(&now, &tm);
  snprintf(server->date, sizeof(server->date),
           "Date: %s, %02u %s %04u %02u:%02u:%02u GMT\r\n", days[tm.tm_wday],
           (unsigned)tm.tm_mday % 100u, months[tm.tm_mon],
           (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)tm.tm_hour % 100u,
           (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u);
  server->date_second = (int64_t)now;
  return server->date;
}

/* Connection lifetime. */

static void conn_unref(ph__http_conn_t *conn) {
  if (--conn->refs == 0)
    free(conn);
}

static ph__http_response_t *res_new(ph__http_conn_t *conn) {
  ph__http_response_t *res;

  res = ph__xcalloc(1, sizeof(*res));
  if (res == NULL)
    return NULL;
  res->conn = conn;
  conn->refs++;
  return res;
}

static void res_free(ph__http_response_t *res) {
  ph__http_conn_t *conn;

  conn = res->conn;
  if (res->queued)
    conn->held_bytes -= res->out_len;
  free(res->head);
  free(res->headers);
  free(res->body);
  free(res->out);
  free(res);
  conn_unref(conn);
}

static void conn_disarm(ph__http_conn_t *conn) {
  uv_timer_stop(&conn->timer);
  conn->timer_kind = TIMER_NONE;
}

static void on_timer(uv_timer_t *timer);

/* A timeout of 0 is "never"; only TIMER_RESUME uses 0 to mean "at once". */
static void conn_arm(ph__http_conn_t *conn, enum timer_kind kind, uint64_t ms) {
  if (ms == 0 && kind != TIMER_RESUME) {
    conn_disarm(conn);
    return;
  }
  uv_timer_start(&conn->timer, on_timer, ms, 0);
  conn->timer_kind = kind;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void conn_set_reading(ph__http_conn_t *conn, int on) {
  if (on && !conn->reading && !conn->eof) {
    if (uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) != 0) {
      conn_close(conn);
      return;
    }
    conn->reading = 1;
  } else if (!on && conn->reading) {
    uv_read_stop((uv_stream_t *)&conn->tcp);
    conn->reading = 0;
  }
}

static void on_timer_close(uv_handle_t *handle) {
  ph__http_conn_t *conn;

  conn = handle->data;
  server_handle_closed(conn->server);
  conn_unref(conn);
}

/* The deferred half of conn_close(): tells the upper layer about responses
 * it still holds. Done here, not in conn_close(), so that a gone callback
 * never runs inside a call the upper layer made into this file. */
static void on_tcp_close(uv_handle_t *handle) {
  ph__http_conn_t *conn;
  ph__http_response_t *res;

  conn = handle->data;
  free(conn->pending);
  conn->pending = NULL;
  conn->refs++; /* gone callbacks may release every response */
  while ((res = conn->queue_head) != NULL) {
    conn->queue_head = res->next;
    conn->queue_len--;
    conn->held_bytes -= res->out_len;
    res->next = NULL;
    res->queued = 0;
    if (res->state == RES_FINISHED)
      res_free(res);
    else if (res->gone_cb != NULL)
      res->gone_cb(res);
  }
  conn->queue_tail = NULL;
  server_handle_closed(conn->server);
  /* Drop the hold taken above (never the last) and the handle's own. */
  conn->refs--;
  conn_unref(conn);
}

static void conn_close(ph__http_conn_t *conn) {
  ph__http_server_t *server;

  if (conn->phase == PHASE_CLOSING)
    return;
  conn->phase = PHASE_CLOSING;
  server = conn->server;
  if (conn->incoming != NULL) {
    res_free(conn->incoming);
    conn->incoming = NULL;
  }
  if (conn->prev != NULL)
    conn->prev->next = conn->next;
  else
    server->conns = conn->next;
  if (conn->next != NULL)
    conn->next->prev = conn->prev;
  conn->prev = conn->next = NULL;
  if (conn->rejecting)
    server->nrejecting--;
  else
    server->nconns--;
  uv_close((uv_handle_t *)&conn->timer, on_timer_close);
  uv_close((uv_handle_t *)&conn->tcp, on_tcp_close);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  ph__http_conn_t *conn;
  uint64_t linger;

  conn = req->data;
  free(req);
  if (conn->phase == PHASE_ENDING) {
    linger = conn->server->config.linger_timeout_ms;
    if (status < 0 || conn->eof || linger == 0) {
      conn_close(conn);
    } else {
      conn->phase = PHASE_LINGER;
      conn_arm(conn, TIMER_CLOSE, linger);
    }
  }
  conn_unref(conn);
}

/* Graceful end: flush what is queued, send FIN, then linger. */
static void conn_end(ph__http_conn_t *conn) {
  uv_shutdown_t *req;

  if (conn->phase != PHASE_OPEN)
    return;
  conn->phase = PHASE_ENDING;
  /* A client that never reads must not keep the connection forever. */
  conn_arm(conn, TIMER_CLOSE, conn->server->config.idle_timeout_ms);
  req = ph__xmalloc(sizeof(*req));
  if (req == NULL) {
    conn_close(conn);
    return;
  }
  req->data = conn;
  if (uv_shutdown(req, (uv_stream_t *)&conn->tcp, on_shutdown) != 0) {
    free(req);
    conn_close(conn);
    return;
  }
  conn->refs++;
  conn_set_reading(conn, 1);
}

/* Output. */

static void on_write(uv_write_t *req, int status) {
  struct write_req *wr;
  ph__http_conn_t *conn;

  wr = (struct write_req *)req;
  conn = wr->conn;
  free(wr->data);
  free(wr);
  if (status < 0)
    conn_close(conn);
  else if (!conn_backed_up(conn))
    conn_refresh(conn); /* Reading may resume. */
  conn_unref(conn);
}

/* Takes ownership of `data` (malloc'd). */
static int conn_write(ph__http_conn_t *conn, char *data, size_t len) {
  struct write_req *wr;
  uv_buf_t buf;
  int err;

  if (conn->phase == PHASE_CLOSING) {
    free(data);
    return UV_EPIPE;
  }
  conn->server->bytes_out += len;
  /* Most answers fit the socket buffer at once: writing them directly
   * spares a queued request and the epoll_ctl libuv makes each time its
   * queue drains. uv_try_write refuses while older writes are queued, so
   * order is kept. */
  buf = uv_buf_init(data, (unsigned int)len);
  err = uv_try_write((uv_stream_t *)&conn->tcp, &buf, 1);
  if (err == (int)len) {
    free(data);
    return 0;
  }
  if (err < 0 && err != UV_EAGAIN) {
    free(data);
    conn_close(conn);
    return err;
  }
  if (err > 0) {
    memmove(data, data + err, len - (size_t)err);
    len -= (size_t)err;
  }
  wr = ph__xmalloc(sizeof(*wr));
  if (wr == NULL) {
    free(data);
    conn_close(conn);
    return UV_ENOMEM;
  }
  wr->conn = conn;
  wr->data = data;
  buf = uv_buf_init(data, (unsigned int)len);
  err = uv_write(&wr->req, (uv_stream_t *)&conn->tcp, &buf, 1, on_write);
  if (err != 0) {
    free(data);
    free(wr);
    conn_close(conn);
    return err;
  }
  conn->refs++;
  return 0;
}

static int res_gone(const ph__http_response_t *res) {
  return !res->queued || res->conn->phase != PHASE_OPEN;
}

/* Sends or holds back `len` bytes of `res`'s output; takes ownership of
 * `data`. */
static int res_emit(ph__http_response_t *res, char *data, size_t len) {
  ph__http_conn_t *conn;
  char *grown;
  size_t cap;

  conn = res->conn;
  if (res_gone(res)) {
    free(data);
    return UV_EPIPE;
  }
  if (conn->queue_head == res && res->out == NULL)
    return conn_write(conn, data, len);
  if (res->out == NULL) {
    res->out = data;
    res->out_cap = len;
  } else {
    if (res->out_len + len > res->out_cap) {
      cap = res->out_cap * 2;
      if (cap < res->out_len + len)
        cap = res->out_len + len;
      grown = ph__xrealloc(res->out, cap);
      if (grown == NULL) {
        free(data);
        conn_close(conn);
        return UV_ENOMEM;
      }
      res->out = grown;
      res->out_cap = cap;
    }
    memcpy(res->out + res->out_len, data, len);
    free(data);
  }
  res->out_len += len;
  conn->held_bytes += len;
  return 0;
}

static void conn_enqueue(ph__http_conn_t *conn, ph__http_response_t *res) {
  res->queued = 1;
  if (conn->queue_tail != NULL)
    conn->queue_tail->next = res;
  else
    conn->queue_head = res;
  conn->queue_tail = res;
  conn->queue_len++;
}

/* Writes what the queue head holds and retires finished heads, so that
 * responses leave strictly in request order. */
static void conn_advance(ph__http_conn_t *conn) {
  ph__http_response_t *res;
  char *data;
  size_t len;
  int close_after;

  while (conn->phase == PHASE_OPEN && (res = conn->queue_head) != NULL) {
    if (res->out != NULL) {
      data = res->out;
      len = res->out_len;
      res->out = NULL;
      res->out_len = 0;
      res->out_cap = 0;
      conn->held_bytes -= len;
      conn_write(conn, data, len);
      continue;
    }
    if (res->state != RES_FINISHED)
      break;
    conn->queue_head = res->next;
    if (conn->queue_head == NULL)
      conn->queue_tail = NULL;
    conn->queue_len--;
    res->queued = 0;
    close_after = res->close_after;
    res_free(res);
    if (close_after) {
      conn->no_more = 1;
      conn_end(conn);
      return;
    }
  }
  conn_refresh(conn);
}

static void res_finish(ph__http_response_t *res) {
  ph__http_conn_t *conn;

  conn = res->conn;
  res->state = RES_FINISHED;
  if (!res->queued) {
    res_free(res);
    return;
  }
  if (conn->queue_head == res)
    conn_advance(conn);
}

/* Whether the client has not taken max_write_queue_bytes of our output:
 * then no further request is read, or answers to a client that sends
 * requests but never reads (each answer leaving the response queue for
 * libuv's write queue at once) would pile up without bound. A write
 * completing looks again. */
static int conn_backed_up(const ph__http_conn_t *conn) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)&conn->tcp) +
             conn->held_bytes >
         conn->server->config.max_write_queue_bytes;
}

/* Decides reading and the idle or resume timer after any change. Never
 * calls the upper layer. */
static void conn_refresh(ph__http_conn_t *conn) {
  const ph__http_config_t *config;

  if (conn->phase == PHASE_CLOSING)
    return;
  if (conn->phase != PHASE_OPEN) {
    conn_set_reading(conn, 1);
    return;
  }
  config = &conn->server->config;
  if (conn->no_more) {
    if (conn->queue_len == 0) {
      conn_end(conn);
      return;
    }
    /* Keep reading, only to notice a client that goes away. */
    conn_set_reading(conn, 1);
    return;
  }
  if (conn->pending != NULL) {
    conn_set_reading(conn, 0);
    if (conn->queue_len < config->max_pipelined && !conn_backed_up(conn) &&
        conn->timer_kind != TIMER_RESUME)
      conn_arm(conn, TIMER_RESUME, 0);
    return;
  }
  conn_set_reading(conn, conn->queue_len < config->max_pipelined &&
                             !conn_backed_up(conn));
  if (conn->queue_len == 0 && conn->incoming == NULL &&
      conn->timer_kind == TIMER_NONE)
    conn_arm(conn, TIMER_CLOSE, config->idle_timeout_ms);
}

/* Response serialisation. */

static int is_token_char(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9'))
    return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Refuses what would corrupt framing: header injection through CR or LF,
 * and the headers this layer writes itself. */
static int check_headers(const ph__http_header_t *headers, size_t nheaders) {
  const char *p;
  size_t i;

  for (i = 0; i < nheaders; i++) {
    if (headers[i].name == NULL || headers[i].value == NULL ||
        headers[i].name[0] == '\0')
      return UV_EINVAL;
    for (p = headers[i].name; *p != '\0'; p++)
      if (!is_token_char((unsigned char)*p))
        return UV_EINVAL;
    if (strpbrk(headers[i].value, "\r\n") != NULL)
      return UV_EINVAL;
    if (strcasecmp(headers[i].name, "Content-Length") == 0 ||
        strcasecmp(headers[i].name, "Transfer-Encoding") == 0 ||
        strcasecmp(headers[i].name, "Connection") == 0)
      return UV_EINVAL;
  }
  return 0;
}

static void put(char *buf, size_t *pos, const char *s, size_t len) {
  memcpy(buf + *pos, s, len);
  *pos += len;
}

static void put_str(char *buf, size_t *pos, const char *s) {
  put(buf, pos, s, strlen(s));
}

/* Builds status line, headers and (for FRAME_LENGTH) body into one
 * malloc'd buffer. Sets res->close_after as a side effect. */
static char *build_response(ph__http_response_t *res, int status,
                            const ph__http_header_t *headers, size_t nheaders,
                            enum framing framing, const void *body,
                            size_t body_len, size_t *out_len) {
  const char *reason;
  char number[32];
  size_t announced;
  size_t need;
  size_t pos;
  size_t i;
  char *buf;
  int bodiless;

  reason = http_status_str((enum http_status)status);
  if (strcmp(reason, "<unknown>") == 0)
    reason = "Unknown";
  bodiless = status == 204 || status == 304;
  if (framing == FRAME_CLOSE || !res->req.keep_alive)
    res->close_after = 1;
  /* HEAD announces the length the body would have had. */
  announced = body_len;
  if (bodiless || res->is_head)
    body_len = 0;

  need = 256 + strlen(reason) + body_len;
  for (i = 0; i < nheaders; i++)
    need += strlen(headers[i].name) + strlen(headers[i].value) + 4;
  buf = ph__xmalloc(need);
  if (buf == NULL)
    return NULL;

  pos = 0;
  snprintf(number, sizeof(number), "HTTP/1.1 %03d ", status);
  put_str(buf, &pos, number);
  put_str(buf, &pos, reason);
  put(buf, &pos, "\r\n", 2);
  put_str(buf, &pos, server_date(res->conn->server));
  for (i = 0; i < nheaders; i++) {
    put_str(buf, &pos, headers[i].name);
    put(buf, &pos, ": ", 2);
    put_str(buf, &pos, headers[i].value);
    put(buf, &pos, "\r\n", 2);
  }
  if (framing == FRAME_CHUNKED) {
    put_str(buf, &pos, "Transfer-Encoding: chunked\r\n");
  } else if (framing == FRAME_LENGTH && !bodiless) {
    snprintf(number, sizeof(number), "Content-Length: %zu\r\n", announced);
    put_str(buf, &pos, number);
  }
  if (res->close_after)
    put_str(buf, &pos, "Connection: close\r\n");
  else if (res->req.http_minor == 0)
    put_str(buf, &pos, "Connection: keep-alive\r\n");
  put(buf, &pos, "\r\n", 2);
  if (body_len > 0)
    put(buf, &pos, body, body_len);
  *out_len = pos;
  return buf;
}

static int check_status(int status) {
  return status >= 200 && status <= 599 ? 0 : UV_EINVAL;
}

int ph__http_respond(ph__http_response_t *res, int status,
                     const ph__http_header_t *headers, size_t nheaders,
                     const void *body, size_t body_len) {
  size_t len;
  char *data;
  int err;

  if (res->state != RES_NEW || check_status(status) != 0 ||
      (body_len > 0 && body == NULL))
    return UV_EINVAL;
  if ((status == 204 || status == 304) && body_len > 0)
    return UV_EINVAL;
  err = check_headers(headers, nheaders);
  if (err != 0)
    return err;

  err = 0;
  if (!res_gone(res)) {
    data = build_response(res, status, headers, nheaders, FRAME_LENGTH, body,
                          body_len, &len);
    if (data == NULL) {
      conn_close(res->conn);
      err = UV_ENOMEM;
    } else if (res_emit(res, data, len) == UV_ENOMEM) {
      err = UV_ENOMEM;
    }
  }
  res_finish(res);
  return err;
}

int ph__http_stream_begin(ph__http_response_t *res, int status,
                          const ph__http_header_t *headers, size_t nheaders) {
  enum framing framing;
  size_t len;
  char *data;
  int err;

  if (res->state != RES_NEW || check_status(status) != 0 || status == 204 ||
      status == 304)
    return UV_EINVAL;
  err = check_headers(headers, nheaders);
  if (err != 0)
    return err;

  res->state = RES_STREAMING;
  if (res_gone(res))
    return 0;
  /* HTTP/1.0 has no chunked encoding: the end of the stream is the end of
   * the connection. */
  res->chunked = res->req.http_minor >= 1;
  framing = res->chunked ? FRAME_CHUNKED : FRAME_CLOSE;
  data = build_response(res, status, headers, nheaders, framing, NULL, 0, &len);
  if (data == NULL) {
    conn_close(res->conn);
    return UV_ENOMEM;
  }
  err = res_emit(res, data, len);
  return err == UV_ENOMEM ? err : 0;
}

int ph__http_stream_write(ph__http_response_t *res, const void *data,
                          size_t len) {
  ph__http_conn_t *conn;
  size_t queued;
  size_t pos;
  char *buf;
  int n;

  if (res->state != RES_STREAMING)
    return UV_EINVAL;
  if (res_gone(res))
    return UV_EPIPE;
  if (len == 0 || res->is_head)
    return 0;
  conn = res->conn;
  queued = uv_stream_get_write_queue_size((uv_stream_t *)&conn->tcp) +
           conn->held_bytes;
  if (queued + len > conn->server->config.max_write_queue_bytes) {
    /* The client is not reading; buffering more would be unbounded. */
    conn_close(conn);
    return UV_EPIPE;
  }
  buf = ph__xmalloc(len + 32);
  if (buf == NULL) {
    conn_close(conn);
    return UV_EPIPE;
  }
  pos = 0;
  if (res->chunked) {
    n = snprintf(buf, 32, "%zx\r\n", len);
    pos = (size_t)n;
  }
  put(buf, &pos, data, len);
  if (res->chunked)
    put(buf, &pos, "\r\n", 2);
  return res_emit(res, buf, pos) == 0 ? 0 : UV_EPIPE;
}

int ph__http_stream_end(ph__http_response_t *res) {
  char *last;

  if (res->state != RES_STREAMING)
    return UV_EINVAL;
  if (res->chunked && !res->is_head && !res_gone(res)) {
    last = ph__xmalloc(5);
    if (last == NULL) {
      conn_close(res->conn);
    } else {
      memcpy(last, "0\r\n\r\n", 5);
      res_emit(res, last, 5);
    }
  }
  res_finish(res);
  return 0;
}

void ph__http_response_close(ph__http_response_t *res) {
  if (res->state == RES_FINISHED)
    return;
  res->close_after = 1;
  res_finish(res);
}

const ph__http_request_t *
ph__http_response_request(const ph__http_response_t *res) {
  return &res->req;
}

void ph__http_response_set_data(ph__http_response_t *res, void *data) {
  res->data = data;
}

void *ph__http_response_get_data(const ph__http_response_t *res) {
  return res->data;
}

void ph__http_response_set_gone_cb(ph__http_response_t *res,
                                   ph__http_gone_cb cb) {
  res->gone_cb = cb;
}

int ph__http_response_gone(const ph__http_response_t *res) {
  return res_gone(res);
}

/* Request headers. */

static const char *res_header(const ph__http_response_t *res,
                              const char *name) {
  size_t i;

  for (i = 0; i < res->nheaders; i++)
    if (strcasecmp(res->head + res->headers[i].name, name) == 0)
      return res->head + res->headers[i].value;
  return NULL;
}

const char *ph__http_request_header(const ph__http_request_t *req,
                                    const char *name) {
  return res_header((const ph__http_response_t *)req, name);
}

size_t ph__http_request_header_count(const ph__http_request_t *req) {
  return ((const ph__http_response_t *)req)->nheaders;
}

int ph__http_request_header_at(const ph__http_request_t *req, size_t index,
                               const char **name, const char **value) {
  const ph__http_response_t *res;

  res = (const ph__http_response_t *)req;
  if (index >= res->nheaders)
    return UV_EINVAL;
  *name = res->head + res->headers[index].name;
  *value = res->head + res->headers[index].value;
  return 0;
}

/* Request parsing. Callbacks return -1 to stop the parser; error_status
 * then says what to answer (-1: nothing, just close). */

static int refuse(ph__http_conn_t *conn, int status) {
  conn->error_status = status;
  return -1;
}

static int head_reserve(ph__http_response_t *res, size_t len) {
  size_t cap;
  char *grown;

  if (res->head_len + len <= res->head_cap)
    return 0;
  cap = res->head_cap != 0 ? res->head_cap : 512;
  while (cap < res->head_len + len)
    cap *= 2;
  grown = ph__xrealloc(res->head, cap);
  if (grown == NULL)
    return UV_ENOMEM;
  res->head = grown;
  res->head_cap = cap;
  return 0;
}

static int head_append(ph__http_response_t *res, const char *data, size_t len) {
  if (head_reserve(res, len) != 0)
    return UV_ENOMEM;
  memcpy(res->head + res->head_len, data, len);
  res->head_len += len;
  return 0;
}

/* Counts request head bytes against the limit. */
static int head_count(ph__http_conn_t *conn, ph__http_response_t *res,
                      size_t len) {
  res->head_bytes += len;
  if (res->head_bytes > conn->server->config.max_header_bytes)
    return refuse(conn, 431);
  return 0;
}

/* Ends the URL or header value being received: NUL-terminates it, after
 * dropping trailing whitespace from a value. */
static int head_end_part(ph__http_response_t *res) {
  size_t start;

  if (res->part == PART_URL) {
    res->url_len = res->head_len;
  } else if (res->part == PART_FIELD) {
    res->headers[res->nheaders - 1].value = res->head_len; /* empty */
  } else if (res->part == PART_VALUE) {
    start = res->headers[res->nheaders - 1].value;
    while (res->head_len > start && (res->head[res->head_len - 1] == ' ' ||
                                     res->head[res->head_len - 1] == '\t'))
      res->head_len--;
  }
  return head_append(res, "", 1);
}

static int on_message_begin(http_parser *parser) {
  ph__http_conn_t *conn;

  conn = parser->data;
  if (conn->phase != PHASE_OPEN)
    return -1;
  conn->incoming = res_new(conn);
  if (conn->incoming == NULL)
    return refuse(conn, -1);
  /* The first request's deadline already runs from accept. */
  if (conn->timer_kind != TIMER_HEADER)
    conn_arm(conn, TIMER_HEADER, conn->server->config.header_timeout_ms);
  return 0;
}

static int on_url(http_parser *parser, const char *at, size_t len) {
  ph__http_conn_t *conn;

  conn = parser->data;
  if (conn->phase != PHASE_OPEN)
    return -1;
  if (head_count(conn, conn->incoming, len) != 0)
    return -1;
  if (head_append(conn->incoming, at, len) != 0)
    return refuse(conn, -1);
  return 0;
}

static int on_header_field(http_parser *parser, const char *at, size_t len) {
  ph__http_conn_t *conn;
  ph__http_response_t *res;
  struct header_span *grown;
  size_t cap;

  conn = parser->data;
  if (conn->phase != PHASE_OPEN)
    return -1;
  res = conn->incoming;
  if (head_count(conn, res, len) != 0)
    return -1;
  /* http_parser takes SP for a token character: "Content-Length : 5"
   * would be a field it does not frame by, that others do (RFC 9112
   * 5.1). */
  if (memchr(at, ' ', len) != NULL)
    return refuse(conn, 400);
  /* Chunked trailers arrive after the head is final: count, ignore. */
  if (res->part == PART_DONE)
    return 0;
  if (res->part != PART_FIELD) {
    if (head_count(conn, res, HEADER_LINE_OVERHEAD) != 0)
      return -1;
    if (head_end_part(res) != 0)
      return refuse(conn, -1);
    if (res->nheaders == res->headers_cap) {
      cap = res->headers_cap != 0 ? res->headers_cap * 2 : 8;
      grown = ph__xrealloc(res->headers, cap * sizeof(*grown));
      if (grown == NULL)
        return refuse(conn, -1);
      res->headers = grown;
      res->headers_cap = cap;
    }
    res->headers[res->nheaders].name = res->head_len;
    res->headers[res->nheaders].value = 0;
    res->nheaders++;
    res->part = PART_FIELD;
  }
  if (head_append(res, at, len) != 0)
    return refuse(conn, -1);
  return 0;
}

static int on_header_value(http_parser *parser, const char *at, size_t len) {
  ph__http_conn_t *conn;
  ph__http_response_t *res;

  conn = parser->data;
  if (conn->phase != PHASE_OPEN)
    return -1;
  res = conn->incoming;
  if (head_count(conn, res, len) != 0)
    return -1;
  if (res->part == PART_DONE)
    return 0;
  if (res->part == PART_FIELD) {
    if (head_append(res, "", 1) != 0)
      return refuse(conn, -1);
    res->headers[res->nheaders - 1].value = res->head_len;
    res->part = PART_VALUE;
  }
  if (head_append(res, at, len) != 0)
    return refuse(conn, -1);
  return 0;
}

/* Copies `len` bytes of the head buffer at `from`, or `fallback` when
 * `from` is SIZE_MAX, out as their own NUL-terminated string and returns
 * its offset in the head buffer. */
static int copy_head_span(ph__http_response_t *res, size_t from, size_t len,
                          const char *fallback, size_t *offset) {
  const char *src;

  /* Reserve first: the source may lie in the buffer that grows. */
  if (head_reserve(res, len + 1) != 0)
    return UV_ENOMEM;
  src = from != SIZE_MAX ? res->head + from : fallback;
  *offset = res->head_len;
  head_append(res, src, len);
  head_append(res, "", 1);
  return 0;
}

/* The same for a URL field; `fallback` when the URL lacks it. */
static int copy_url_field(ph__http_response_t *res,
                          const struct http_parser_url *url,
                          enum http_parser_url_fields field,
                          const char *fallback, size_t *offset) {
  if (url->field_set & (1 << field))
    return copy_head_span(res, url->field_data[field].off,
                          url->field_data[field].len, NULL, offset);
  return copy_head_span(res, SIZE_MAX, strlen(fallback), fallback, offset);
}

/* An absolute-form target ("http://host:port/path", RFC 9112 3.2.2) names
 * the host itself: *offset is where its authority lies in the head buffer,
 * *len its length. Returns 0, or 400 for a scheme other than http(s) or a
 * userinfo, which a request target has no use for and a Host check could
 * be misled by. */
static int absolute_authority(const ph__http_response_t *res,
                              const struct http_parser_url *url, size_t *offset,
                              size_t *len) {
  const char *scheme = res->head + url->field_data[UF_SCHEMA].off;
  size_t scheme_len = url->field_data[UF_SCHEMA].len;
  ph__http_authority_t authority;
  size_t end;

  if (!(url->field_set & (1 << UF_SCHEMA)) ||
      (url->field_set & (1 << UF_USERINFO)) ||
      !((scheme_len == 4 && strncasecmp(scheme, "http", 4) == 0) ||
        (scheme_len == 5 && strncasecmp(scheme, "https", 5) == 0)))
    return 400;
  *offset = url->field_data[UF_SCHEMA].off + scheme_len + 3; /* "://" */
  for (end = *offset; end < res->url_len; end++)
    if (strchr("/?#", res->head[end]) != NULL)
      break;
  *len = end - *offset;
  if (ph__http_authority_parse(res->head + *offset, *len, &authority) != 0)
    return 400;
  return 0;
}

/* Splits path and query out of the URL and points the request at them; the
 * head buffer does not move after this. */
static int finish_request_line(ph__http_conn_t *conn,
                               ph__http_response_t *res) {
  struct http_parser_url url;
  size_t path;
  size_t query;
  size_t host = SIZE_MAX;
  size_t from;
  size_t len;
  int status;

  /* http_parser_url keeps 16-bit offsets. */
  if (res->url_len > UINT16_MAX)
    return refuse(conn, 414);
  http_parser_url_init(&url);
  if (http_parser_parse_url(res->head, res->url_len, 0, &url) != 0)
    return refuse(conn, 400);
  if (url.field_set & (1 << UF_HOST)) {
    status = absolute_authority(res, &url, &from, &len);
    if (status != 0)
      return refuse(conn, status);
    if (copy_head_span(res, from, len, NULL, &host) != 0)
      return refuse(conn, -1);
  }
  if (copy_url_field(res, &url, UF_PATH, "/", &path) != 0 ||
      copy_url_field(res, &url, UF_QUERY, "", &query) != 0)
    return refuse(conn, -1);
  res->req.path = res->head + path;
  res->req.query = res->head + query;
  if (host != SIZE_MAX)
    res->req.host = res->head + host;
  return 0;
}

/* The rules of RFC 9112 for Host (3.2) and Transfer-Encoding (6.1) that
 * http_parser leaves to us: an HTTP/1.1 request has one Host, every Host
 * is an authority, and an absolute-form target's authority stands in for
 * it; a body is framed by a lone "chunked" coding, and never in HTTP/1.0.
 * Returns 0 or refuses. */
static int check_head(ph__http_conn_t *conn, ph__http_response_t *res,
                      const http_parser *parser) {
  ph__http_authority_t authority;
  const char *host = NULL;
  const char *coding = NULL;
  const char *name;
  const char *value;
  size_t codings = 0;
  size_t i;

  for (i = 0; i < res->nheaders; i++) {
    name = res->head + res->headers[i].name;
    value = res->head + res->headers[i].value;
    if ((name[0] | 0x20) == 'h' && strcasecmp(name, "Host") == 0) {
      if (host != NULL ||
          ph__http_authority_parse(value, strlen(value), &authority) != 0)
        return refuse(conn, 400);
      host = value;
    } else if ((name[0] | 0x20) == 't' &&
               strcasecmp(name, "Transfer-Encoding") == 0) {
      codings++;
      coding = value;
    }
  }
  if (host == NULL && parser->http_minor >= 1)
    return refuse(conn, 400);
  if (res->req.host == NULL)
    res->req.host = host;
  if (codings == 0)
    return 0;
  /* http_parser would refuse a last coding other than chunked, but only
   * after this callback. */
  if (parser->http_minor == 0 || !(parser->flags & F_CHUNKED))
    return refuse(conn, 400);
  if (codings > 1 || strcasecmp(coding, "chunked") != 0)
    return refuse(conn, 501);
  return 0;
}

static void fill_remote(ph__http_conn_t *conn, ph__http_request_t *req) {
  if (conn->peer.sa.sa_family == AF_INET) {
    memcpy(&req->remote, &conn->peer.in4, sizeof(conn->peer.in4));
    uv_ip4_name(&conn->peer.in4, req->remote_ip, sizeof(req->remote_ip));
    req->remote_port = ntohs(conn->peer.in4.sin_port);
  } else if (conn->peer.sa.sa_family == AF_INET6) {
    memcpy(&req->remote, &conn->peer.in6, sizeof(conn->peer.in6));
    uv_ip6_name(&conn->peer.in6, req->remote_ip, sizeof(req->remote_ip));
    req->remote_port = ntohs(conn->peer.in6.sin6_port);
  }
}

static void send_continue(ph__http_conn_t *conn) {
  static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
  char *data;

  data = ph__xmalloc(sizeof(line) - 1);
  if (data == NULL) {
    conn_close(conn);
    return;
  }
  memcpy(data, line, sizeof(line) - 1);
  conn_write(conn, data, sizeof(line) - 1);
}

static int on_headers_complete(http_parser *parser) {
  ph__http_conn_t *conn;
  ph__http_response_t *res;
  const ph__http_config_t *config;
  const char *expect;
  int has_body;

  conn = parser->data;
  if (conn->phase != PHASE_OPEN)
    return -1;
  res = conn->incoming;
  config = &conn->server->config;
  if (head_end_part(res) != 0)
    return refuse(conn, -1);
  res->part = PART_DONE;
  if (parser->http_major != 1)
    return refuse(conn, 505);
  if (parser->method == HTTP_CONNECT)
    return refuse(conn, 501);
  if (finish_request_line(conn, res) != 0 || check_head(conn, res, parser) != 0)
    return -1;

  res->req.method = http_method_str((enum http_method)parser->method);
  res->req.http_major = parser->http_major;
  res->req.http_minor = parser->http_minor;
  /* This layer never switches protocols: an Upgrade request is answered
   * as a plain one and ends the connection. */
  res->req.keep_alive = http_should_keep_alive(parser) && !parser->upgrade;
  res->is_head = parser->method == HTTP_HEAD;
  res->req.body = "";
  fill_remote(conn, &res->req);

  has_body =
      (parser->flags & F_CHUNKED) ||
      (parser->content_length > 0 && parser->content_length != UINT64_MAX);
  if (!has_body) {
    conn_disarm(conn);
    return 0;
  }
  if (!(parser->flags & F_CHUNKED) &&
      parser->content_length > config->max_body_bytes)
    return refuse(conn, 413);
  if (parser->flags & F_CHUNKED) {
    conn->wire = WIRE_CHUNK_SIZE;
    conn->wire_sep = 1;
    conn->wire_chunk = 0;
    conn->wire_body = 0;
  }
  conn_arm(conn, TIMER_BODY, config->body_timeout_ms);

  /* A 100 is only safe when nothing else is being sent on the connection;
   * otherwise the client's own timeout makes it send the body anyway. */
  expect = res_header(res, "Expect");
  if (expect != NULL && strcasecmp(expect, "100-continue") == 0 &&
      parser->http_minor >= 1 && conn->queue_len == 0)
    send_continue(conn);
  return conn->phase == PHASE_OPEN ? 0 : -1;
}

static int on_body(http_parser *parser, const char *at, size_t len) {
  ph__http_conn_t *conn;
  ph__http_response_t *res;
  size_t max;
  size_t need;
  size_t cap;
  char *grown;

  conn = parser->data;
  if (conn->phase != PHASE_OPEN)
    return -1;
  res = conn->incoming;
  max = conn->server->config.max_body_bytes;
  if (len > max || res->req.body_len > max - len)
    return refuse(conn, 413);
  /* Grow with what arrives rather than trusting Content-Length, so an
   * announced body that never comes costs nothing. */
  need = res->req.body_len + len + 1;
  if (need > res->body_cap) {
    /* Most bodies arrive in one piece: size the first buffer exactly. */
    cap = res->body_cap != 0 ? res->body_cap * 2 : need;
    if (cap < need)
      cap = need;
    if (cap > max + 1)
      cap = max + 1;
    grown = ph__xrealloc(res->body, cap);
    if (grown == NULL)
      return refuse(conn, -1);
    res->body = grown;
    res->body_cap = cap;
  }
  memcpy(res->body + res->req.body_len, at, len);
  res->req.body_len += len;
  return 0;
}

static int on_message_complete(http_parser *parser) {
  ph__http_conn_t *conn;
  ph__http_response_t *res;

  conn = parser->data;
  if (conn->phase != PHASE_OPEN)
    return -1;
  res = conn->incoming;
  conn->incoming = NULL;
  if (res->body != NULL) {
    res->body[res->req.body_len] = '\0';
    res->req.body = res->body;
  }
  conn_disarm(conn);
  conn_enqueue(conn, res);
  conn->wire = WIRE_START;
  if (!res->req.keep_alive)
    conn->no_more = 1;
  /* Stop here so the request is dispatched outside the parser, where the
   * upper layer may do anything, including closing the connection. */
  conn->complete = res;
  http_parser_pause(parser, 1);
  return 0;
}

/* Wire syntax. http_parser as Debian builds it (HTTP_PARSER_STRICT=0)
 * lets through what RFC 9112 has a server refuse: runs of spaces in the
 * request line (3), a bare CR or a bare LF ending a line (2.2), obs-fold
 * (5.2), and in chunked framing LF and NUL inside extensions and any two
 * bytes where CRLF must end chunk data (7.1). A front end that reads such
 * a request another way sees other requests than we do (11.2). So
 * wire_scan() runs just ahead of the parser over the request head and the
 * chunked framing, never over body data. It also refuses a chunk that the
 * body limit cannot take as soon as its size is read (not at the body
 * timeout), and counts chunk extensions against max_header_bytes (RFC 9112
 * 7.1.1 asks for a limit). */

static int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c |= 0x20;
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static size_t wire_refuse(ph__http_conn_t *conn, size_t at, int status) {
  conn->wire_status = status;
  return at;
}

/* The CR ending a chunk size line: its data follows, or the trailers. */
static void wire_chunk_line_end(ph__http_conn_t *conn) {
  conn->wire = WIRE_LF;
  if (conn->wire_chunk == 0) {
    conn->wire_next = WIRE_TRAILER_LINE;
  } else {
    conn->wire_next = WIRE_CHUNK_DATA;
    conn->wire_body += conn->wire_chunk;
  }
}

/* Checks the `len` bytes at `data` and returns how many the parser may
 * have: all of them, or fewer when wire_status was set at a refused byte,
 * or when a head or a chunked body ended (WIRE_PARSER: the parser says
 * what follows). */
static size_t wire_scan(ph__http_conn_t *conn, const char *data, size_t len) {
  const ph__http_config_t *config = &conn->server->config;
  const unsigned char *p = (const unsigned char *)data;
  const unsigned char *cr;
  const unsigned char *lf;
  uint64_t room;
  size_t take;
  size_t end;
  size_t i = 0;
  int hex;
  unsigned char c;

  while (i < len) {
    c = p[i];
    switch ((enum wire_state)conn->wire) {
    case WIRE_START:
      if (c == '\r') {
        conn->wire = WIRE_LF;
        conn->wire_next = WIRE_START;
        break;
      }
      conn->wire = WIRE_REQUEST;
      conn->wire_sep = 1;
      continue;
    case WIRE_REQUEST:
      /* method SP target SP version, all visible ASCII. */
      if (c == '\r' && !conn->wire_sep) {
        conn->wire = WIRE_LF;
        conn->wire_next = WIRE_LINE;
      } else if (c == ' ' && !conn->wire_sep) {
        conn->wire_sep = 1;
      } else if (c <= ' ' || c >= 0x7f) {
        return wire_refuse(conn, i, 400);
      } else {
        conn->wire_sep = 0;
      }
      break;
    case WIRE_LINE:
    case WIRE_TRAILER_LINE:
      if (c == '\r') {
        conn->wire = WIRE_LF;
        conn->wire_next = WIRE_PARSER;
        break;
      }
      /* SP or HTAB here is obs-fold, or space before the first field. */
      if (c == ' ' || c == '\t' || c == '\n')
        return wire_refuse(conn, i, 400);
      conn->wire = conn->wire == WIRE_LINE ? WIRE_FIELD : WIRE_TRAILER;
      break;
    case WIRE_FIELD:
    case WIRE_TRAILER:
      /* The parser checks the bytes of a field line; only its end is
       * ours. */
      cr = memchr(p + i, '\r', len - i);
      end = cr != NULL ? (size_t)(cr - p) : len;
      lf = memchr(p + i, '\n', end - i);
      if (lf != NULL)
        return wire_refuse(conn, (size_t)(lf - p), 400);
      if (cr == NULL)
        return len;
      i = end;
      conn->wire_next =
          conn->wire == WIRE_FIELD ? WIRE_LINE : WIRE_TRAILER_LINE;
      conn->wire = WIRE_LF;
      break;
    case WIRE_LF:
      if (c != '\n')
        return wire_refuse(conn, i, 400);
      conn->wire = conn->wire_next;
      if (conn->wire == WIRE_PARSER)
        return i + 1;
      if (conn->wire == WIRE_CHUNK_SIZE) {
        conn->wire_sep = 1;
        conn->wire_chunk = 0;
      }
      break;
    case WIRE_CHUNK_SIZE:
      hex = hex_value(c);
      if (hex >= 0) {
        room = config->max_body_bytes - conn->wire_body;
        if ((uint64_t)hex > room ||
            conn->wire_chunk > (room - (uint64_t)hex) / 16)
          return wire_refuse(conn, i, 413);
        conn->wire_chunk = conn->wire_chunk * 16 + (uint64_t)hex;
        conn->wire_sep = 0;
      } else if (conn->wire_sep) {
        return wire_refuse(conn, i, 400);
      } else if (c == ';' || c == ' ' || c == '\t') {
        conn->wire = WIRE_CHUNK_EXT;
        continue;
      } else if (c == '\r') {
        wire_chunk_line_end(conn);
      } else {
        return wire_refuse(conn, i, 400);
      }
      break;
    case WIRE_CHUNK_EXT:
      if (c == '\r') {
        wire_chunk_line_end(conn);
      } else if ((c < ' ' && c != '\t') || c == 0x7f) {
        return wire_refuse(conn, i, 400);
      } else if (++conn->incoming->head_bytes > config->max_header_bytes) {
        return wire_refuse(conn, i, 413);
      }
      break;
    case WIRE_CHUNK_DATA:
      take = len - i;
      if (take > conn->wire_chunk)
        take = (size_t)conn->wire_chunk;
      i += take;
      conn->wire_chunk -= take;
      if (conn->wire_chunk == 0)
        conn->wire = WIRE_CHUNK_CR;
      continue;
    case WIRE_CHUNK_CR:
      if (c != '\r')
        return wire_refuse(conn, i, 400);
      conn->wire = WIRE_LF;
      conn->wire_next = WIRE_CHUNK_SIZE;
      break;
    case WIRE_PARSER:
      return i;
    }
    i++;
  }
  return len;
}

/* Queues an error response (the connection ends after it) in order behind
 * whatever is still being answered. */
static void conn_fail(ph__http_conn_t *conn, int status) {
  ph__http_response_t *res;
  ph__http_header_t type = {"Content-Type", NULL};
  char *target = NULL, *body = NULL;
  size_t len, body_len = 0;
  char *data;

  if (conn->phase != PHASE_OPEN)
    return;
  if (conn->incoming != NULL) {
    /* The URL leads the head buffer once it is complete. */
    res = conn->incoming;
    if (res->part != PART_URL && res->url_len > 0)
      target = strndup(res->head, res->url_len);
    res_free(conn->incoming);
    conn->incoming = NULL;
  }
  if (conn->server->config.error_body != NULL)
    body =
        conn->server->config.error_body(status, target, &type.value, &body_len);
  free(target);
  if (body == NULL || type.value == NULL) {
    free(body);
    body = NULL;
    body_len = 0;
  }
  conn->no_more = 1;
  conn_disarm(conn);
  res = res_new(conn);
  if (res == NULL) {
    free(body);
    conn_close(conn);
    return;
  }
  res->req.keep_alive = 0;
  res->req.http_minor = 1;
  data = build_response(res, status, &type, body ? 1 : 0, FRAME_LENGTH, body,
                        body_len, &len);
  free(body);
  if (data == NULL) {
    res_free(res);
    conn_close(conn);
    return;
  }
  res->out = data;
  res->out_len = len;
  res->out_cap = len;
  res->state = RES_FINISHED;
  conn_enqueue(conn, res);
  conn->held_bytes += len;
  conn_advance(conn);
}

/* Parses up to `len` bytes and dispatches each completed request. Returns
 * how many bytes were used up (parsed or dropped); fewer than `len` only
 * when the pipelining limit stopped it. */
static size_t conn_parse(ph__http_conn_t *conn, const char *data, size_t len) {
  ph__http_server_t *server;
  ph__http_response_t *res;
  enum http_errno err;
  size_t done;
  size_t n;
  int status;

  server = conn->server;
  done = 0;
  while (done < len) {
    if (conn->phase != PHASE_OPEN || conn->no_more)
      return len;
    if (conn->queue_len >= server->config.max_pipelined || conn_backed_up(conn))
      break;
    /* The parser gets what wire_scan() passed; a refused byte is answered
     * once the parser has taken everything before it (which gives the
     * answer its target), unless the parser refuses something first. */
    n = len - done;
    if (conn->wire != WIRE_PARSER)
      n = wire_scan(conn, data + done, n);
    if (n > 0) {
      done +=
          http_parser_execute(&conn->parser, &parser_settings, data + done, n);
      err = HTTP_PARSER_ERRNO(&conn->parser);
      if (err == HPE_PAUSED) {
        http_parser_pause(&conn->parser, 0);
        res = conn->complete;
        conn->complete = NULL;
        server->request_cb(server, &res->req, res);
        continue;
      }
      if (err != HPE_OK) {
        status = conn->error_status;
        if (status == 0)
          status = err == HPE_HEADER_OVERFLOW ? 431 : 400;
        if (status < 0)
          conn_close(conn);
        else
          conn_fail(conn, status);
        return len;
      }
    }
    if (conn->wire_status != 0) {
      conn_fail(conn, conn->wire_status);
      return len;
    }
  }
  return done;
}

static void conn_resume(ph__http_conn_t *conn) {
  size_t used;

  if (conn->pending != NULL && conn->phase == PHASE_OPEN) {
    used = conn_parse(conn, conn->pending + conn->pending_off,
                      conn->pending_len - conn->pending_off);
    if (conn->phase == PHASE_CLOSING)
      return;
    conn->pending_off += used;
    if (conn->pending_off == conn->pending_len || conn->no_more ||
        conn->phase != PHASE_OPEN) {
      free(conn->pending);
      conn->pending = NULL;
    }
  }
  conn_refresh(conn);
}

static void on_timer(uv_timer_t *timer) {
  ph__http_conn_t *conn;
  enum timer_kind kind;

  conn = timer->data;
  kind = (enum timer_kind)conn->timer_kind;
  conn->timer_kind = TIMER_NONE;
  switch (kind) {
  case TIMER_HEADER:
  case TIMER_BODY:
    /* Silence on a fresh connection earns no response; a started request
     * that stalls gets a 408. */
    if (conn->incoming != NULL)
      conn_fail(conn, 408);
    else
      conn_close(conn);
    break;
  case TIMER_CLOSE:
    conn_close(conn);
    break;
  case TIMER_RESUME:
    conn_resume(conn);
    break;
  case TIMER_NONE:
    break;
  }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  ph__http_conn_t *conn;

  (void)suggested;
  conn = handle->data;
  buf->base = conn->server->read_buf;
  buf->len = READ_BUF_SIZE;
}

static void on_read_end(ph__http_conn_t *conn, ssize_t status) {
  conn->eof = 1;
  conn->reading = 0;
  if (status != UV_EOF || conn->phase == PHASE_LINGER) {
    conn_close(conn);
  } else if (conn->phase == PHASE_OPEN) {
    /* A client that half-closes after its last answered request still gets
     * the bytes in flight; one that leaves while a request is outstanding
     * is gone, and the upper layer is told so. */
    if (conn->queue_len == 0 && conn->incoming == NULL) {
      conn->no_more = 1;
      conn_end(conn);
    } else {
      conn_close(conn);
    }
  }
  /* PHASE_ENDING: on_shutdown closes once the output is flushed. */
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  ph__http_conn_t *conn;
  size_t used;

  conn = stream->data;
  if (nread == 0)
    return;
  if (nread < 0) {
    on_read_end(conn, nread);
    return;
  }
  conn->server->bytes_in += (uint64_t)nread;
  /* Past the last request, input is only drained. */
  if (conn->phase != PHASE_OPEN || conn->no_more)
    return;
  used = conn_parse(conn, buf->base, (size_t)nread);
  if (used < (size_t)nread && conn->phase == PHASE_OPEN && !conn->no_more) {
    conn->pending = ph__xmalloc((size_t)nread - used);
    if (conn->pending == NULL) {
      conn_close(conn);
      return;
    }
    memcpy(conn->pending, buf->base + used, (size_t)nread - used);
    conn->pending_off = 0;
    conn->pending_len = (size_t)nread - used;
  }
  conn_refresh(conn);
}

/* Accepting. The listening socket is ours rather than a uv_tcp_t, so
 * that running out of descriptors is ours to handle: libuv would drop
 * such clients without a word (its own spare descriptor closes them). */

/* Takes over the accepted socket `fd` from `peer`. */
static void conn_open(ph__http_server_t *server, int fd,
                      const struct sockaddr *peer, socklen_t peer_len) {
  ph__http_conn_t *conn;

  conn = ph__xcalloc(1, sizeof(*conn));
  if (conn == NULL) {
    close(fd);
    return;
  }
  conn->server = server;
  conn->refs = 2; /* the two handles */
  uv_tcp_init(server->loop, &conn->tcp);
  uv_timer_init(server->loop, &conn->timer);
  server->handles += 2;
  conn->tcp.data = conn;
  conn->timer.data = conn;
  http_parser_init(&conn->parser, HTTP_REQUEST);
  conn->parser.data = conn;
  if (peer_len <= sizeof(conn->peer))
    memcpy(&conn->peer, peer, peer_len);
  conn->next = server->conns;
  if (server->conns != NULL)
    server->conns->prev = conn;
  server->conns = conn;
  conn->rejecting =
      server->stopping || server->nconns >= server->config.max_connections;
  if (conn->rejecting)
    server->nrejecting++;
  else
    server->nconns++;

  if (uv_tcp_open(&conn->tcp, fd) != 0) {
    close(fd);
    conn_close(conn);
    return;
  }
  /* Rejections linger too; past another max_connections of them the
   * client gets no explanation. */
  if (conn->rejecting && server->nrejecting > server->config.max_connections) {
    conn_close(conn);
    return;
  }
  uv_tcp_nodelay(&conn->tcp, 1);
  if (conn->rejecting) {
    conn_fail(conn, 503);
    return;
  }
  conn_arm(conn, TIMER_HEADER, server->config.header_timeout_ms);
  conn_set_reading(conn, 1);
}

void ph__http_server_adopt(ph__http_server_t *server, int fd) {
  struct sockaddr_in peer;

  memset(&peer, 0, sizeof(peer));
  peer.sin_family = AF_INET;
  peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  conn_open(server, fd, (const struct sockaddr *)&peer, sizeof(peer));
}

static void on_acceptable(uv_poll_t *poll, int status, int events);

static void on_accept_retry(uv_timer_t *timer) {
  ph__http_server_t *server;

  server = timer->data;
  if (!server->closing)
    uv_poll_start(&server->listener, UV_READABLE, on_acceptable);
}

static void accept_pause(ph__http_server_t *server) {
  uv_poll_stop(&server->listener);
  uv_timer_start(&server->accept_retry, on_accept_retry, ACCEPT_RETRY_MS, 0);
}

static void fd_report(ph__http_server_t *server) {
  struct rlimit rl;
  uint64_t now;

  now = uv_now(server->loop);
  if (server->fd_report_at != 0 && now - server->fd_report_at < FD_REPORT_MS)
    return;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    rl.rlim_cur = 0;
  ph__warn("http: out of file descriptors (RLIMIT_NOFILE %llu): %lu new "
           "connection%s told 503 since the last report; see "
           "limits.max_connections",
           (unsigned long long)rl.rlim_cur, server->fd_refused,
           server->fd_refused == 1 ? "" : "s");
  server->fd_report_at = now;
  server->fd_refused = 0;
}

/* Out of descriptors: the reserve one is closed so that the next client
 * can be accepted and told 503 (Connection: close) instead of being left
 * without an answer, then taken back. Returns 0, or -1 when there is no
 * reserve to be had. */
static int accept_without_fd(ph__http_server_t *server) {
  static const char answer[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Length: 0\r\n"
                               "Connection: close\r\n\r\n";
  char drain[512];
  int fd;
  int i;

  if (server->reserve_fd < 0)
    server->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (server->reserve_fd < 0)
    return -1;
  close(server->reserve_fd);
  fd = accept4(server->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0) {
    /* A close with unread input sends a reset, which may destroy the
     * answer before the client reads it: read what already came. */
    for (i = 0; i < 16 && recv(fd, drain, sizeof(drain), 0) > 0; i++)
      ;
    (void)!send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL);
    close(fd);
    server->fd_refused++;
  }
  server->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0)
    fd_report(server);
  return 0;
}

static void on_acceptable(uv_poll_t *poll, int status, int events) {
  ph__http_server_t *server;
  union {
    struct sockaddr sa;
    struct sockaddr_storage storage;
  } peer;
  socklen_t peer_len;
  int fd;
  int i;

  (void)events;
  server = poll->data;
  if (server->closing)
    return;
  if (status < 0) {
    /* libuv has stopped watching the socket: say so rather than go deaf
     * without a word. */
    ph__error("http: the listening socket failed (%s); no new connections "
              "are accepted",
              uv_strerror(status));
    return;
  }
  for (i = 0; i < ACCEPT_BATCH; i++) {
    peer_len = sizeof(peer);
    fd = accept4(server->listen_fd, &peer.sa, &peer_len,
                 SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      conn_open(server, fd, &peer.sa, peer_len);
      continue;
    }
    switch (errno) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
      return;
    case EMFILE:
    case ENFILE:
      if (accept_without_fd(server) < 0) {
        accept_pause(server);
        return;
      }
      break;
    case ENOBUFS:
    case ENOMEM:
      accept_pause(server);
      return;
    default:
      /* The client gave up (ECONNABORTED), or, on Linux, a network error
       * pending on the new socket (accept(2)): the next one may do. */
      break;
    }
  }
}

/* Server API. */

int ph__http_server_init(uv_loop_t *loop, ph__http_server_t *server,
                         const ph__http_config_t *config,
                         ph__http_request_cb request_cb) {
  void *data;

  data = server->data;
  memset(server, 0, sizeof(*server));
  server->data = data;
  if (config != NULL)
    server->config = *config;
  else
    ph__http_config_init(&server->config);
  config = &server->config;
  if (request_cb == NULL || config->max_header_bytes == 0 ||
      config->max_connections == 0 || config->max_pipelined == 0 ||
      config->max_write_queue_bytes == 0)
    return UV_EINVAL;
  server->read_buf = ph__xmalloc(READ_BUF_SIZE);
  if (server->read_buf == NULL)
    return UV_ENOMEM;
  server->loop = loop;
  server->request_cb = request_cb;
  server->listen_fd = -1;
  /* Set aside now: when it is needed there is none to be had. */
  server->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  uv_timer_init(loop, &server->accept_retry);
  server->accept_retry.data = server;
  server->handles = 1;
  return 0;
}

int ph__http_server_listen(ph__http_server_t *server, const char *host,
                           int port) {
  union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    struct sockaddr_storage storage;
  } addr;
  char literal[INET6_ADDRSTRLEN + 16];
  socklen_t namelen;
  size_t len;
  int on = 1;
  int off = 0;
  int err;
  int fd;

  if (host == NULL || port < 0 || port > 65535 || server->listen_fd >= 0)
    return UV_EINVAL;
  len = strlen(host);
  if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
    if (len - 2 >= sizeof(literal))
      return UV_EINVAL;
    memcpy(literal, host + 1, len - 2);
    literal[len - 2] = '\0';
    host = literal;
  }
  if (uv_ip4_addr(host, port, &addr.in4) != 0 &&
      uv_ip6_addr(host, port, &addr.in6) != 0)
    return UV_EINVAL;
  namelen = addr.sa.sa_family == AF_INET6 ? sizeof(addr.in6) : sizeof(addr.in4);
  fd = socket(addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  /* As libuv's own bind: SO_REUSEADDR, so that a restarted host binds
   * while old connections sit in TIME_WAIT, and IPv6 sockets dual-stack. */
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
      (addr.sa.sa_family == AF_INET6 &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) != 0) ||
      bind(fd, &addr.sa, namelen) != 0 || listen(fd, SOMAXCONN) != 0) {
    err = uv_translate_sys_error(errno);
    close(fd);
    return err;
  }
  namelen = sizeof(addr);
  err = getsockname(fd, &addr.sa, &namelen) != 0
            ? uv_translate_sys_error(errno)
            : uv_poll_init_socket(server->loop, &server->listener, fd);
  if (err != 0) {
    close(fd);
    return err;
  }
  server->listen_fd = fd;
  server->listener.data = server;
  server->handles++;
  uv_poll_start(&server->listener, UV_READABLE, on_acceptable);
  server->port = addr.sa.sa_family == AF_INET6 ? ntohs(addr.in6.sin6_port)
                                               : ntohs(addr.in4.sin_port);
  return 0;
}

int ph__http_server_port(const ph__http_server_t *server) {
  return server->port;
}

void ph__http_server_bytes(const ph__http_server_t *server, uint64_t *in,
                           uint64_t *out) {
  *in = server->bytes_in;
  *out = server->bytes_out;
}

void ph__http_server_stop(ph__http_server_t *server) {
  ph__http_conn_t *conn;
  ph__http_conn_t *next;

  if (server->stopping)
    return;
  server->stopping = 1;
  for (conn = server->conns; conn != NULL; conn = next) {
    next = conn->next;
    if (conn->phase != PHASE_OPEN || conn->no_more)
      continue;
    if (conn->incoming != NULL) {
      res_free(conn->incoming);
      conn->incoming = NULL;
    }
    conn->no_more = 1;
    conn_disarm(conn);
    conn_refresh(conn);
  }
}

static void on_listener_close(uv_handle_t *handle) {
  ph__http_server_t *server;

  server = handle->data;
  close(server->listen_fd);
  server->listen_fd = -1;
  server_handle_closed(server);
}

static void on_accept_retry_close(uv_handle_t *handle) {
  server_handle_closed(handle->data);
}

void ph__http_server_close(ph__http_server_t *server,
                           ph__http_server_close_cb cb) {
  if (server->closing)
    return;
  server->closing = 1;
  server->stopping = 1;
  server->close_cb = cb;
  if (server->listen_fd >= 0)
    uv_close((uv_handle_t *)&server->listener, on_listener_close);
  uv_close((uv_handle_t *)&server->accept_retry, on_accept_retry_close);
  if (server->reserve_fd >= 0)
    close(server->reserve_fd);
  server->reserve_fd = -1;
  while (server->conns != NULL)
    conn_close(server->conns);
}
