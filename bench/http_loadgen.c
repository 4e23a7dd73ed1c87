/* http_loadgen.c: drives one MCP server over Streamable HTTP and measures
 * it.
 *
 * The server runs already (bench/run-http.sh starts it, pinned); we are
 * given its port and pid. N keep-alive connections each open a legacy
 * session of their own (initialize, then notifications/initialized with
 * its Mcp-Session-Id) and then send tools/call requests, one in flight per
 * connection, so N is the concurrency. Responses may be application/json
 * or text/event-stream, framed by Content-Length or chunked encoding
 * (http-parser undoes the framing). The report: requests/s, latency
 * percentiles, the server's CPU time per request and its RSS.
 *
 * With -S COUNT it first opens COUNT sessions on the same connections,
 * leaves them idle, and reports how much the server's RSS grew per
 * session. */
#include "measure.h"

#include <cjson/cJSON.h>
#include <http_parser.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  const char *host;
  int port;
  const char *path;
  int connections;
  long requests;    /* Measured tools/call requests. */
  long warmup;      /* Requests sent first and not measured. */
  long sessions;    /* Idle sessions to open for the memory test. */
  pid_t server_pid; /* Whose CPU time and RSS we read. */
  int server_cpu;   /* CPU the server is pinned to, or -1. */
  int settle_ms;    /* Pause before reading an idle RSS. */
  int wait_ms;      /* How long the server may take to listen. */
  int machine;      /* Print one key=value line instead of a report. */
  int progress;     /* Ask for progress (so a server may answer SSE). */
  const char *tool;
  const char *arguments;
  const char *label;
} options;

/* What the request in flight on a connection is. */
enum pending { P_NONE, P_INITIALIZE, P_INITIALIZED, P_CALL };

/* Which response header the parser is delivering the value of. */
enum header { H_OTHER, H_SESSION, H_CONTENT_TYPE };

typedef struct conn {
  int fd;
  int pending;     /* enum pending */
  long id;         /* JSON-RPC id of the request in flight. */
  long slot;       /* Its index in the phase's arrays. */
  int64_t sent_at; /* When its first byte was written (ns). */
  char head[512];  /* Request head up to Content-Length, session's. */
  size_t head_len;
  http_parser parser;
  int header;     /* enum header */
  int in_value;   /* The last header callback was a value. */
  char field[32]; /* The header name being read, maybe cut short. */
  size_t field_len;
  char session[128]; /* Mcp-Session-Id of the response. */
  size_t session_len;
  char ctype[64]; /* Its Content-Type, maybe cut short. */
  size_t ctype_len;
  char *body; /* Its body, framing undone. */
  size_t body_len, body_cap;
  int complete; /* A whole response has been parsed. */
  char *out;    /* Bytes to send, from out_off on. */
  size_t out_len, out_off, out_cap;
  int want_out; /* EPOLLOUT is armed. */
} conn;

/* One phase of calls: warm-up or measured. */
typedef struct {
  long count;       /* Requests in the phase. */
  long sent;        /* Requests written so far. */
  long answered;    /* Responses read so far. */
  long errors;      /* Error responses, isError results, non-2xx. */
  int64_t *latency; /* Per request: ns from write to complete response. */
} phase;

enum mode { M_SETUP, M_SESSIONS, M_CALLS };

static struct {
  options o;
  conn *conns;
  int epfd;
  int active; /* Connections with a request in flight. */
  int mode;   /* enum mode: what a connection does after a response. */
  phase *ph;
  long sessions_started, sessions_opened;
  long next_id;
  char call_tail[1024];  /* The body of a call after its id. */
  char host_header[128]; /* "Host: ...\r\n" */
} G;

void usage(void) {
  fprintf(stderr,
          "usage: http_loadgen [options] -p PORT -P SERVER-PID\n"
          "  -p PORT  the server's port on 127.0.0.1 (-H for another host)\n"
          "  -P PID   the server's pid, for its CPU time and RSS\n"
          "  -c N     connections, one session and one request in flight\n"
          "           each (default 1)\n"
          "  -n N     measured tools/call requests (default 20000)\n"
          "  -W N     warm-up requests before measuring (default 2000)\n"
          "  -S N     first open N idle sessions and report RSS growth\n"
          "  -t NAME  tool to call (default echo)\n"
          "  -a JSON  tool arguments (default {\"text\":\"hello\"})\n"
          "  -k       send a progressToken with each call\n"
          "  -u PATH  endpoint path (default /mcp)\n"
          "  -s CPU   the CPU the server is pinned to (noise check)\n"
          "  -d MS    pause before reading an idle RSS (default 200)\n"
          "  -w MS    wait this long for the server to listen (10000)\n"
          "  -l NAME  label for the machine-readable line\n"
          "  -m       print one machine-readable key=value line\n");
  exit(2);
}

static void parse_options(options *o, int argc, char **argv) {
  int c;

  *o = (options){.host = "127.0.0.1",
                 .path = "/mcp",
                 .connections = 1,
                 .requests = 20000,
                 .warmup = 2000,
                 .server_pid = -1,
                 .server_cpu = -1,
                 .settle_ms = 200,
                 .wait_ms = 10000,
                 .tool = "echo",
                 .arguments = "{\"text\":\"hello\"}",
                 .label = "server"};
  while ((c = getopt(argc, argv, "H:p:P:c:n:W:S:t:a:ku:s:d:w:l:m")) != -1) {
    switch (c) {
    case 'H':
      o->host = optarg;
      break;
    case 'p':
      o->port = (int)parse_count(optarg, 1);
      break;
    case 'P':
      o->server_pid = (pid_t)parse_count(optarg, 1);
      break;
    case 'c':
      o->connections = (int)parse_count(optarg, 1);
      break;
    case 'n':
      o->requests = parse_count(optarg, 0);
      break;
    case 'W':
      o->warmup = parse_count(optarg, 0);
      break;
    case 'S':
      o->sessions = parse_count(optarg, 0);
      break;
    case 't':
      o->tool = optarg;
      break;
    case 'a':
      o->arguments = optarg;
      break;
    case 'k':
      o->progress = 1;
      break;
    case 'u':
      o->path = optarg;
      break;
    case 's':
      o->server_cpu = (int)parse_count(optarg, 0);
      break;
    case 'd':
      o->settle_ms = (int)parse_count(optarg, 0);
      break;
    case 'w':
      o->wait_ms = (int)parse_count(optarg, 0);
      break;
    case 'l':
      o->label = optarg;
      break;
    case 'm':
      o->machine = 1;
      break;
    default:
      usage();
    }
  }
  if (optind != argc || o->port == 0 || o->server_pid < 0)
    usage();
}

/* ---- Reading the server from /proc ---- */

static long proc_status_kib(pid_t pid, const char *key) {
  char path[64], line[256];
  size_t key_len = strlen(key);
  long kib = -1;
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  f = fopen(path, "r");
  if (f == NULL)
    die(path);
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, key, key_len) == 0 && line[key_len] == ':') {
      kib = strtol(line + key_len + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kib;
}

/* ---- Requests ---- */

static void queue_bytes(conn *c, const char *data, size_t len) {
  if (c->out_off == c->out_len)
    c->out_off = c->out_len = 0;
  if (c->out_cap - c->out_len < len) {
    c->out_cap = (c->out_len + len) * 2;
    c->out = xrealloc(c->out, c->out_cap);
  }
  memcpy(c->out + c->out_len, data, len);
  c->out_len += len;
}

static void arm_output(conn *c, int on) {
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
                           .data.ptr = c};

  if (c->want_out == on)
    return;
  c->want_out = on;
  if (epoll_ctl(G.epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
    die("epoll_ctl");
}

/* Writes what the socket takes now; the rest waits for EPOLLOUT. */
static void flush_some(conn *c) {
  while (c->out_off < c->out_len) {
    ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      break;
    if (n < 0)
      die("write to server");
    c->out_off += (size_t)n;
  }
  arm_output(c, c->out_off < c->out_len);
}

/* Sends one POST whose head is c->head (the session's) plus the length,
 * and starts waiting for its response. */
static void post(conn *c, int what, long id, const char *body, size_t len) {
  char length[48];
  int n = snprintf(length, sizeof(length), "Content-Length: %zu\r\n\r\n", len);

  c->pending = what;
  c->id = id;
  c->complete = 0;
  queue_bytes(c, c->head, c->head_len);
  queue_bytes(c, length, (size_t)n);
  queue_bytes(c, body, len);
  c->sent_at = now_ns();
  G.active++;
  flush_some(c);
}

/* The request head without a session: for initialize. */
static void head_without_session(conn *c) {
  c->head_len = (size_t)snprintf(
      c->head, sizeof(c->head),
      "POST %s HTTP/1.1\r\n%sContent-Type: application/json\r\n"
      "Accept: application/json, text/event-stream\r\n",
      G.o.path, G.host_header);
}

static void send_initialize(conn *c) {
  char body[256];
  long id = G.next_id++;
  int n = snprintf(body, sizeof(body),
                   "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"initialize\","
                   "\"params\":{\"protocolVersion\":\"2025-06-18\","
                   "\"capabilities\":{},\"clientInfo\":{\"name\":"
                   "\"plughost-http-loadgen\",\"version\":\"1\"}}}",
                   id);

  head_without_session(c);
  post(c, P_INITIALIZE, id, body, (size_t)n);
}

static void send_initialized(conn *c) {
  static const char body[] =
      "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";

  c->head_len = (size_t)snprintf(
      c->head, sizeof(c->head),
      "POST %s HTTP/1.1\r\n%sContent-Type: application/json\r\n"
      "Accept: application/json, text/event-stream\r\n"
      "Mcp-Session-Id: %.*s\r\nMCP-Protocol-Version: 2025-06-18\r\n",
      G.o.path, G.host_header, (int)c->session_len, c->session);
  post(c, P_INITIALIZED, -1, body, sizeof(body) - 1);
}

static void send_call(conn *c) {
  char body[1200];
  long id = G.next_id++;
  int n = snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":%ld%s", id,
                   G.call_tail);

  if (G.o.progress)
    n = snprintf(body, sizeof(body),
                 "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"tools/call\","
                 "\"params\":{\"_meta\":{\"progressToken\":%ld},\"name\":"
                 "\"%s\",\"arguments\":%s}}",
                 id, id, G.o.tool, G.o.arguments);
  c->slot = G.ph->sent++;
  post(c, P_CALL, id, body, (size_t)n);
}

/* Builds the constant tail of every call once; the arguments are checked
 * here because a typo would otherwise show up as N error replies. */
static void build_call_tail(void) {
  cJSON *args = cJSON_Parse(G.o.arguments);
  int n;

  if (args == NULL || !cJSON_IsObject(args))
    fail("-a must be a JSON object");
  cJSON_Delete(args);
  n = snprintf(G.call_tail, sizeof(G.call_tail),
               ",\"method\":\"tools/call\",\"params\":{\"name\":\"%s\","
               "\"arguments\":%s}}",
               G.o.tool, G.o.arguments);
  if (n < 0 || (size_t)n >= sizeof(G.call_tail))
    fail("-t and -a are too long");
  snprintf(G.host_header, sizeof(G.host_header), "Host: %s:%d\r\n", G.o.host,
           G.o.port);
}

/* ---- Responses ---- */

static int on_message_begin(http_parser *p) {
  conn *c = p->data;

  c->session_len = c->ctype_len = c->body_len = c->field_len = 0;
  c->header = H_OTHER;
  c->in_value = 0;
  return 0;
}

static void append(char *buf, size_t *len, size_t cap, const char *at,
                   size_t n) {
  if (n > cap - 1 - *len)
    n = cap - 1 - *len;
  memcpy(buf + *len, at, n);
  *len += n;
  buf[*len] = '\0';
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  conn *c = p->data;

  if (c->in_value) {
    c->field_len = 0;
    c->in_value = 0;
  }
  append(c->field, &c->field_len, sizeof(c->field), at, len);
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  conn *c = p->data;

  if (!c->in_value) {
    c->in_value = 1;
    c->header = strcasecmp(c->field, "Mcp-Session-Id") == 0 ? H_SESSION
                : strcasecmp(c->field, "Content-Type") == 0 ? H_CONTENT_TYPE
                                                            : H_OTHER;
  }
  if (c->header == H_SESSION)
    append(c->session, &c->session_len, sizeof(c->session), at, len);
  else if (c->header == H_CONTENT_TYPE)
    append(c->ctype, &c->ctype_len, sizeof(c->ctype), at, len);
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  conn *c = p->data;

  if (c->body_cap - c->body_len < len + 1) {
    c->body_cap = (c->body_len + len + 1) * 2;
    c->body = xrealloc(c->body, c->body_cap);
  }
  memcpy(c->body + c->body_len, at, len);
  c->body_len += len;
  return 0;
}

static int on_message_complete(http_parser *p) {
  conn *c = p->data;

  c->complete = 1;
  /* Stop here: bytes after a response would belong to one we did not
   * ask for. */
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Whether one JSON-RPC message is the response with id `id`; sets
 * *is_error when it is an error or an isError result. Text that is not
 * JSON is not the response. */
static int is_response(const char *json, size_t len, long id, int *is_error) {
  long got;
  int error;

  if (scan_response(json, len, &got, &error) != 1 || got != id)
    return 0;
  *is_error = error;
  return 1;
}

/* Finds the response to the request in flight in an SSE body: events are
 * separated by blank lines, and an event's data lines are joined with
 * newlines. Other events (notifications, priming) are skipped. */
static int sse_has_response(const conn *c, int *is_error) {
  const char *p = c->body, *end = c->body + c->body_len, *eol, *v;
  char *data = NULL;
  size_t data_len = 0, n;
  int found = 0;

  while (p < end && !found) {
    eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL)
      eol = end;
    n = (size_t)(eol - p);
    if (n > 0 && p[n - 1] == '\r')
      n--;
    if (n == 0) {
      if (data_len > 0)
        found = is_response(data, data_len, c->id, is_error);
      data_len = 0;
    } else if (n >= 5 && memcmp(p, "data:", 5) == 0) {
      v = p + 5 + (n > 5 && p[5] == ' ');
      data = xrealloc(data, data_len + n + 1);
      if (data_len > 0)
        data[data_len++] = '\n';
      memcpy(data + data_len, v, (size_t)(p + n - v));
      data_len += (size_t)(p + n - v);
    }
    p = eol + 1;
  }
  if (!found && data_len > 0)
    found = is_response(data, data_len, c->id, is_error);
  free(data);
  return found;
}

/* Checks a complete response to a request: 1 for a good answer, 0 for an
 * error (reported when it is the first). */
static int response_ok(conn *c, long *errors) {
  int status = c->parser.status_code, is_error = 0, found;
  const char *why = NULL;

  if (status < 200 || status > 299) {
    why = "HTTP status";
  } else if (c->pending == P_INITIALIZED) {
    return 1; /* 202, nothing to read. */
  } else if (strncasecmp(c->ctype, "text/event-stream", 17) == 0) {
    found = sse_has_response(c, &is_error);
    if (!found)
      why = "no response in the event stream";
  } else {
    found = is_response(c->body, c->body_len, c->id, &is_error);
    if (!found)
      why = "not the response to the request";
  }
  if (why == NULL && is_error)
    why = "an error";
  if (why == NULL)
    return 1;
  if ((*errors)++ == 0)
    fprintf(stderr, "http_loadgen: %s (%d, %s): %.*s\n", why, status, c->ctype,
            (int)(c->body_len > 400 ? 400 : c->body_len), c->body);
  return 0;
}

/* What a connection does after a response: the next step of its session,
 * or of the phase. */
static void on_response(conn *c, int64_t t) {
  static long setup_errors;
  int pending = c->pending;
  phase *ph = G.ph;

  G.active--;
  if (pending == P_INITIALIZE || pending == P_INITIALIZED) {
    if (!response_ok(c, &setup_errors))
      fail("a session could not be opened");
    c->pending = P_NONE;
    if (pending == P_INITIALIZE) {
      if (c->session_len == 0)
        fail("initialize answered without an Mcp-Session-Id");
      send_initialized(c);
      return;
    }
    if (G.mode != M_SESSIONS)
      return;
    G.sessions_opened++;
    if (G.sessions_started < G.o.sessions) {
      G.sessions_started++;
      send_initialize(c);
    }
    return;
  }
  ph->latency[c->slot] = t - c->sent_at;
  response_ok(c, &ph->errors);
  c->pending = P_NONE;
  ph->answered++;
  if (ph->sent < ph->count)
    send_call(c);
}

static void on_readable(conn *c) {
  static char buf[65536];
  ssize_t n;
  size_t parsed;
  int64_t t;

  for (;;) {
    n = read(c->fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n < 0)
      die("read from server");
    if (n == 0)
      fail("the server closed a connection");
    break;
  }
  t = now_ns();
  parsed = http_parser_execute(&c->parser, &settings, buf, (size_t)n);
  if (c->complete) {
    if (parsed != (size_t)n)
      fail("the server sent more than the response asked for");
    http_parser_pause(&c->parser, 0);
    if (!http_should_keep_alive(&c->parser))
      fail("the server does not keep the connection alive");
    on_response(c, t);
  } else if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
    fprintf(stderr, "http_loadgen: bad response: %s\n",
            http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
    exit(1);
  }
}

/* Runs the loop until no connection has a request in flight. */
static void pump(void) {
  struct epoll_event ev[64];
  int i, n;

  while (G.active > 0) {
    n = epoll_wait(G.epfd, ev, 64, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      die("epoll_wait");
    for (i = 0; i < n; i++) {
      conn *c = ev[i].data.ptr;

      if (ev[i].events & EPOLLOUT)
        flush_some(c);
      if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        on_readable(c);
    }
  }
}

/* ---- Connections ---- */

/* Connects, trying again while the server is still starting. */
static void conn_open(conn *c) {
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)G.o.port)};
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  int64_t deadline = now_ns() + (int64_t)G.o.wait_ms * 1000000;
  int one = 1;

  if (inet_pton(AF_INET, G.o.host, &addr.sin_addr) != 1)
    fail("-H must be an IPv4 address");
  for (;;) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
      die("socket");
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
      break;
    if (errno != ECONNREFUSED || now_ns() > deadline)
      die("connect");
    close(c->fd);
    usleep(20000);
  }
  /* Small requests must leave at once, not wait for an ACK (Nagle). */
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0)
    die("fcntl");
  if (epoll_ctl(G.epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
    die("epoll_ctl");
  http_parser_init(&c->parser, HTTP_RESPONSE);
  c->parser.data = c;
}

/* Every connection opens its own session; the pause lets the server
 * settle before its idle RSS is read. */
static void open_sessions(void) {
  int i;

  G.mode = M_SETUP;
  for (i = 0; i < G.o.connections; i++)
    send_initialize(&G.conns[i]);
  pump();
}

static void run_phase(phase *ph, long count) {
  int i;

  *ph = (phase){.count = count};
  ph->latency = xrealloc(NULL, sizeof(int64_t) * (size_t)(count + 1));
  G.ph = ph;
  G.mode = M_CALLS;
  for (i = 0; i < G.o.connections && ph->sent < count; i++)
    send_call(&G.conns[i]);
  pump();
}

/* The memory test: opens o.sessions sessions (initialize and
 * notifications/initialized, never ended) on the connections, then reads
 * how much the server's RSS grew. The first RSS is read with the
 * connections open, so only sessions are counted. */
static void memory_test(void) {
  long rss0, anon0, rss1, anon1, n = G.o.sessions;
  int64_t t0, t1, cpu0, cpu1;
  int i;

  usleep((useconds_t)G.o.settle_ms * 1000);
  rss0 = proc_status_kib(G.o.server_pid, "VmRSS");
  anon0 = proc_status_kib(G.o.server_pid, "RssAnon");
  G.mode = M_SESSIONS;
  t0 = now_ns();
  for (i = 0; i < G.o.connections && G.sessions_started < n; i++) {
    G.sessions_started++;
    send_initialize(&G.conns[i]);
  }
  pump();
  t1 = now_ns();
  usleep((useconds_t)G.o.settle_ms * 1000);
  rss1 = proc_status_kib(G.o.server_pid, "VmRSS");
  anon1 = proc_status_kib(G.o.server_pid, "RssAnon");
  /* What keeping them costs while nothing happens: timers that walk
   * every session show here. */
  cpu0 = server_cpu_us(G.o.server_pid);
  sleep(2);
  cpu1 = server_cpu_us(G.o.server_pid);
  if (G.o.machine) {
    printf("label=%s sessions=%ld c=%d sessions_per_s=%.0f "
           "rss_before_kib=%ld rss_after_kib=%ld anon_before_kib=%ld "
           "anon_after_kib=%ld bytes_per_session=%.0f "
           "anon_bytes_per_session=%.0f idle_cpu_pct=%.2f\n",
           G.o.label, n, G.o.connections, (double)n * 1e9 / (double)(t1 - t0),
           rss0, rss1, anon0, anon1, (double)(rss1 - rss0) * 1024 / (double)n,
           (double)(anon1 - anon0) * 1024 / (double)n,
           (double)(cpu1 - cpu0) / 2e4);
  } else {
    printf("sessions        %ld opened on %d connections, %.0f/s\n", n,
           G.o.connections, (double)n * 1e9 / (double)(t1 - t0));
    printf("RSS             %ld KiB before, %ld KiB after: %.0f bytes per "
           "session\n",
           rss0, rss1, (double)(rss1 - rss0) * 1024 / (double)n);
    printf("anonymous RSS   %ld KiB before, %ld KiB after: %.0f bytes per "
           "session\n",
           anon0, anon1, (double)(anon1 - anon0) * 1024 / (double)n);
    printf("idle CPU        %.2f%% of a core with them all open\n",
           (double)(cpu1 - cpu0) / 2e4);
  }
}

int main(int argc, char **argv) {
  phase warm, run;
  int64_t t0, t1, cpu0, cpu1, own0, own1, sbusy0, sbusy1, cbusy0, cbusy1;
  int client_cpu = pinned_cpu(), i;
  long idle_kib, rss_kib, peak_kib, errors;
  double secs, rps, p50, p99, cpu_per, own_per, server_noise, client_noise;

  parse_options(&G.o, argc, argv);
  build_call_tail();
  signal(SIGPIPE, SIG_IGN);
  G.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (G.epfd < 0)
    die("epoll_create1");
  G.conns = calloc((size_t)G.o.connections, sizeof(conn));
  if (G.conns == NULL)
    fail("out of memory");
  for (i = 0; i < G.o.connections; i++)
    conn_open(&G.conns[i]);

  if (G.o.sessions > 0)
    memory_test();
  if (G.o.requests == 0)
    return 0;
  open_sessions();
  usleep((useconds_t)G.o.settle_ms * 1000);
  idle_kib = proc_status_kib(G.o.server_pid, "VmRSS");

  run_phase(&warm, G.o.warmup);
  cpu0 = server_cpu_us(G.o.server_pid);
  own0 = own_cpu_us();
  sbusy0 = cpu_busy_us(G.o.server_cpu);
  cbusy0 = cpu_busy_us(client_cpu);
  t0 = now_ns();
  run_phase(&run, G.o.requests);
  t1 = now_ns();
  cpu1 = server_cpu_us(G.o.server_pid);
  own1 = own_cpu_us();
  sbusy1 = cpu_busy_us(G.o.server_cpu);
  cbusy1 = cpu_busy_us(client_cpu);
  rss_kib = proc_status_kib(G.o.server_pid, "VmRSS");
  peak_kib = proc_status_kib(G.o.server_pid, "VmHWM");

  qsort(run.latency, (size_t)run.count, sizeof(int64_t), compare_int64);
  secs = (double)(t1 - t0) / 1e9;
  rps = (double)run.count / secs;
  p50 = percentile_us(run.latency, run.count, 50);
  p99 = percentile_us(run.latency, run.count, 99);
  cpu_per = (double)(cpu1 - cpu0) / (double)run.count;
  own_per = (double)(own1 - own0) / (double)run.count;
  server_noise =
      noise_pct(G.o.server_cpu, sbusy1 - sbusy0, cpu1 - cpu0, t1 - t0);
  client_noise = noise_pct(client_cpu, cbusy1 - cbusy0, own1 - own0, t1 - t0);
  errors = warm.errors + run.errors;

  if (G.o.machine) {
    printf("label=%s c=%d n=%ld rps=%.0f p50_us=%.1f p99_us=%.1f "
           "cpu_us_per_req=%.2f client_cpu_us_per_req=%.2f "
           "idle_rss_kib=%ld rss_kib=%ld peak_rss_kib=%ld "
           "server_core_noise_pct=%.1f client_core_noise_pct=%.1f "
           "errors=%ld\n",
           G.o.label, G.o.connections, run.count, rps, p50, p99, cpu_per,
           own_per, idle_kib, rss_kib, peak_kib, server_noise, client_noise,
           errors);
  } else {
    printf("connections     %d, one session and one request in flight each\n",
           G.o.connections);
    printf("idle RSS        %ld KiB with the sessions open\n", idle_kib);
    printf("requests        %ld measured, %ld warm-up\n", run.count,
           warm.count);
    printf("throughput      %.0f requests/s\n", rps);
    printf("latency         p50 %.1f us, p99 %.1f us\n", p50, p99);
    printf("server CPU      %.2f us/request\n", cpu_per);
    printf("client CPU      %.2f us/request\n", own_per);
    printf("RSS             %ld KiB at the end, %ld KiB peak\n", rss_kib,
           peak_kib);
    printf("noise           %.1f%% of the server's core, %.1f%% of the "
           "client's went to other work (-1: not pinned)\n",
           server_noise, client_noise);
    printf("errors          %ld\n", errors);
  }
  for (i = 0; i < G.o.connections; i++) {
    close(G.conns[i].fd);
    free(G.conns[i].body);
    free(G.conns[i].out);
  }
  free(G.conns);
  free(warm.latency);
  free(run.latency);
  return errors > 0;
}
