/* Unit tests for host/http.c: the server runs in-process on its own loop
 * thread; the tests speak raw HTTP over blocking sockets. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>

#include "http.h"

/* The server side: loop, server and a small routing handler. */

static uv_loop_t loop;
static ph__http_server_t server;
static uv_async_t stop_async;
static pthread_t loop_thread;
static int port;
static atomic_int gone_count;
static atomic_int closed_count;

struct ticker {
  uv_timer_t timer;
  ph__http_response_t *res;
  int remaining; /* chunks still to send (/stream) */
};

static void free_ticker(uv_handle_t *handle) {
  free(handle->data);
}

static struct ticker *ticker_new(ph__http_response_t *res) {
  struct ticker *t;

  t = calloc(1, sizeof(*t));
  cr_assert_not_null(t);
  t->res = res;
  uv_timer_init(&loop, &t->timer);
  t->timer.data = t;
  return t;
}

static void ticker_done(struct ticker *t) {
  uv_timer_stop(&t->timer);
  uv_close((uv_handle_t *)&t->timer, free_ticker);
}

static const char *query_value(const char *query, const char *key) {
  const char *p;
  size_t len;

  len = strlen(key);
  for (p = query; p != NULL && *p != '\0'; p = strchr(p, '&')) {
    if (*p == '&')
      p++;
    if (strncmp(p, key, len) == 0 && p[len] == '=')
      return p + len + 1;
  }
  return NULL;
}

static void respond_echo(const ph__http_request_t *req,
                         ph__http_response_t *res) {
  ph__http_header_t headers[5];
  size_t nheaders;
  const char *seen;
  char port_text[16];
  size_t len;
  char *body;

  len = strlen(req->method) + strlen(req->path) + strlen(req->query) +
        req->body_len + 8;
  body = malloc(len);
  cr_assert_not_null(body);
  len = (size_t)snprintf(body, len, "%s %s?%s\n", req->method, req->path,
                         req->query);
  memcpy(body + len, req->body, req->body_len);
  len += req->body_len;
  seen = ph__http_request_header(req, "x-test");
  snprintf(port_text, sizeof(port_text), "%d", req->remote_port);
  headers[0] = (ph__http_header_t){"Content-Type", "text/plain"};
  headers[1] = (ph__http_header_t){"X-Remote", req->remote_ip};
  headers[2] = (ph__http_header_t){"X-Remote-Port", port_text};
  headers[3] = (ph__http_header_t){"X-Host", req->host ? req->host : "-"};
  nheaders = 4;
  if (seen != NULL)
    headers[nheaders++] = (ph__http_header_t){"X-Seen-Test", seen};
  cr_assert_eq(ph__http_respond(res, 200, headers, nheaders, body, len), 0);
  free(body);
}

static void on_delay(uv_timer_t *timer) {
  struct ticker *t;

  t = timer->data;
  ph__http_respond(t->res, 200, NULL, 0, "delayed", 7);
  ticker_done(t);
}

static void on_stream_tick(uv_timer_t *timer) {
  struct ticker *t;
  char chunk[16];
  int n;

  t = timer->data;
  n = snprintf(chunk, sizeof(chunk), "chunk%d\n", 3 - t->remaining);
  ph__http_stream_write(t->res, chunk, (size_t)n);
  if (--t->remaining > 0)
    return;
  ph__http_stream_end(t->res);
  ticker_done(t);
}

static void on_hang_gone(ph__http_response_t *res) {
  atomic_fetch_add(&gone_count, 1);
  cr_assert(ph__http_response_gone(res));
  /* Writes after a disconnect are dropped, not fatal. */
  cr_assert_eq(ph__http_stream_write(res, "late", 4), UV_EPIPE);
  ph__http_stream_end(res);
}

static void on_flood_tick(uv_timer_t *timer) {
  static char block[64 * 1024];
  struct ticker *t;

  t = timer->data;
  ph__http_stream_write(t->res, block, sizeof(block));
}

static void on_flood_gone(ph__http_response_t *res) {
  struct ticker *t;

  t = ph__http_response_get_data(res);
  atomic_fetch_add(&gone_count, 1);
  ticker_done(t);
  ph__http_stream_end(res);
}

static void on_request(ph__http_server_t *srv, const ph__http_request_t *req,
                       ph__http_response_t *res) {
  ph__http_header_t sse = {"Content-Type", "text/event-stream"};
  const char *ms;
  struct ticker *t;

  cr_assert_eq(srv, &server);
  cr_assert_eq(ph__http_response_request(res), req);
  if (strcmp(req->path, "/echo") == 0) {
    respond_echo(req, res);
  } else if (strcmp(req->path, "/delay") == 0) {
    ms = query_value(req->query, "ms");
    t = ticker_new(res);
    uv_timer_start(&t->timer, on_delay, ms ? strtoull(ms, NULL, 10) : 100, 0);
  } else if (strcmp(req->path, "/stream") == 0) {
    cr_assert_eq(ph__http_stream_begin(res, 200, &sse, 1), 0);
    t = ticker_new(res);
    t->remaining = 3;
    on_stream_tick(&t->timer);
    uv_timer_start(&t->timer, on_stream_tick, 80, 80);
  } else if (strcmp(req->path, "/stop") == 0) {
    ph__http_server_stop(srv);
    cr_assert_eq(ph__http_respond(res, 200, NULL, 0, NULL, 0), 0);
  } else if (strcmp(req->path, "/hang") == 0) {
    ph__http_response_set_gone_cb(res, on_hang_gone);
    cr_assert_eq(ph__http_stream_begin(res, 200, &sse, 1), 0);
    cr_assert_eq(ph__http_stream_write(res, "first\n", 6), 0);
  } else if (strcmp(req->path, "/flood") == 0) {
    ph__http_response_set_gone_cb(res, on_flood_gone);
    cr_assert_eq(ph__http_stream_begin(res, 200, &sse, 1), 0);
    t = ticker_new(res);
    ph__http_response_set_data(res, t);
    uv_timer_start(&t->timer, on_flood_tick, 1, 1);
  } else {
    cr_assert_eq(ph__http_respond(res, 404, NULL, 0, NULL, 0), 0);
  }
}

static void on_server_closed(ph__http_server_t *srv) {
  cr_assert_eq(srv, &server);
  atomic_fetch_add(&closed_count, 1);
}

static void on_stop(uv_async_t *async) {
  ph__http_server_close(&server, on_server_closed);
  uv_close((uv_handle_t *)async, NULL);
}

static void *run_loop(void *arg) {
  (void)arg;
  uv_run(&loop, UV_RUN_DEFAULT);
  return NULL;
}

/* Defaults with timeouts short enough for tests. */
static ph__http_config_t test_config(void) {
  ph__http_config_t config;

  ph__http_config_init(&config);
  config.header_timeout_ms = 2000;
  config.body_timeout_ms = 2000;
  config.idle_timeout_ms = 3000;
  config.linger_timeout_ms = 500;
  return config;
}

static void start_server(const ph__http_config_t *config) {
  atomic_store(&gone_count, 0);
  atomic_store(&closed_count, 0);
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(ph__http_server_init(&loop, &server, config, on_request), 0);
  cr_assert_eq(ph__http_server_listen(&server, "127.0.0.1", 0), 0);
  port = ph__http_server_port(&server);
  cr_assert_gt(port, 0);
  cr_assert_eq(uv_async_init(&loop, &stop_async, on_stop), 0);
  cr_assert_eq(pthread_create(&loop_thread, NULL, run_loop, NULL), 0);
}

/* Closes the server from its loop thread; the loop must then have no
 * handle left. */
static void stop_server(void) {
  uv_async_send(&stop_async);
  pthread_join(loop_thread, NULL);
  cr_assert_eq(atomic_load(&closed_count), 1);
  cr_assert_eq(uv_loop_close(&loop), 0, "handles leaked");
}

/* The client side: blocking sockets and http_parser in response mode. */

static int64_t now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A blocking client socket; `rcvbuf` > 0 shrinks its receive buffer
 * (set before connect so the window starts small). */
static int dial_with_rcvbuf(int rcvbuf) {
  struct sockaddr_in addr;
  struct timeval tv = {5, 0};
  int fd;

  fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_geq(fd, 0);
  if (rcvbuf > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

static int dial(void) {
  return dial_with_rcvbuf(0);
}

static void send_all(int fd, const char *data, size_t len) {
  ssize_t n;

  while (len > 0) {
    n = send(fd, data, len, MSG_NOSIGNAL);
    cr_assert_gt(n, 0, "send: %s", strerror(errno));
    data += n;
    len -= (size_t)n;
  }
}

static void send_str(int fd, const char *s) {
  send_all(fd, s, strlen(s));
}

typedef struct {
  int status;
  char headers[4096]; /* "name: value\n", names lower-cased */
  char *body;
  size_t body_len;
  size_t chunks[16]; /* chunk sizes, for chunked bodies */
  int nchunks;
  int64_t chunk_at[16]; /* arrival time of each chunk */
  int in_value;         /* header capture is inside a value */
  int head_request;     /* the response answers HEAD: no body follows */
} response_t;

typedef struct {
  int fd;
  http_parser parser;
  char buf[65536];
  size_t off;
  size_t len;
} client_t;

static void headers_append(response_t *r, const char *data, size_t len,
                           int lower) {
  size_t used = strlen(r->headers);
  size_t i;

  for (i = 0; i < len && used + 1 < sizeof(r->headers); i++)
    r->headers[used++] =
        lower ? (char)tolower((unsigned char)data[i]) : data[i];
  r->headers[used] = '\0';
}

static int on_res_header_field(http_parser *p, const char *at, size_t len) {
  response_t *r = p->data;

  if (r->in_value)
    headers_append(r, "\n", 1, 0);
  r->in_value = 0;
  headers_append(r, at, len, 1);
  return 0;
}

static int on_res_header_value(http_parser *p, const char *at, size_t len) {
  response_t *r = p->data;

  if (!r->in_value)
    headers_append(r, ": ", 2, 0);
  r->in_value = 1;
  headers_append(r, at, len, 0);
  return 0;
}

static int on_res_headers_complete(http_parser *p) {
  response_t *r = p->data;

  if (r->in_value)
    headers_append(r, "\n", 1, 0);
  r->status = p->status_code;
  return r->head_request ? 1 : 0;
}

static int on_res_body(http_parser *p, const char *at, size_t len) {
  response_t *r = p->data;

  r->body = realloc(r->body, r->body_len + len + 1);
  memcpy(r->body + r->body_len, at, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
  return 0;
}

static int on_res_chunk_header(http_parser *p) {
  response_t *r = p->data;

  if (p->content_length > 0 && r->nchunks < 16) {
    r->chunk_at[r->nchunks] = now_ms();
    r->chunks[r->nchunks++] = (size_t)p->content_length;
  }
  return 0;
}

static int on_res_complete(http_parser *p) {
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings response_settings = {
    .on_header_field = on_res_header_field,
    .on_header_value = on_res_header_value,
    .on_headers_complete = on_res_headers_complete,
    .on_body = on_res_body,
    .on_chunk_header = on_res_chunk_header,
    .on_message_complete = on_res_complete,
};

static client_t *client_open(void) {
  client_t *c;

  c = calloc(1, sizeof(*c));
  cr_assert_not_null(c);
  c->fd = dial();
  http_parser_init(&c->parser, HTTP_RESPONSE);
  return c;
}

static void client_close(client_t *c) {
  close(c->fd);
  free(c);
}

/* Reads one response; returns 0, or -1 on EOF, timeout or a bad reply. */
static int read_response(client_t *c, response_t *r) {
  size_t n;
  ssize_t got;

  c->parser.data = r;
  for (;;) {
    if (c->off < c->len) {
      n = http_parser_execute(&c->parser, &response_settings, c->buf + c->off,
                              c->len - c->off);
      c->off += n;
      if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) {
        http_parser_pause(&c->parser, 0);
        return 0;
      }
      if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
        return -1;
    }
    got = recv(c->fd, c->buf, sizeof(c->buf), 0);
    if (got <= 0) {
      /* EOF ends a body framed by the connection. */
      if (got == 0)
        http_parser_execute(&c->parser, &response_settings, NULL, 0);
      if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) {
        http_parser_pause(&c->parser, 0);
        return 0;
      }
      return -1;
    }
    c->off = 0;
    c->len = (size_t)got;
  }
}

static void response_free(response_t *r) {
  free(r->body);
  memset(r, 0, sizeof(*r));
}

/* Asserts that the peer closes: recv sees EOF (or a reset) before the
 * receive timeout. */
static void assert_closed(client_t *c) {
  char byte;
  ssize_t n;

  cr_assert_eq(c->off, c->len, "unexpected extra bytes");
  n = recv(c->fd, &byte, 1, 0);
  cr_assert(n == 0 || (n < 0 && errno == ECONNRESET),
            "connection still open (n=%zd errno=%d)", n, errno);
}

/* Sends one request on a fresh connection and expects a status. */
static void expect_status(const char *request, int status) {
  response_t r = {0};
  client_t *c;

  c = client_open();
  send_str(c->fd, request);
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, status);
  if (status >= 400)
    assert_closed(c);
  response_free(&r);
  client_close(c);
}

/* After every bad case: a new client is still served. */
static void assert_serves(void) {
  expect_status("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", 200);
}

TestSuite(http, .timeout = 30);

Test(http, simple_get) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *c;

  start_server(&config);
  c = client_open();
  send_str(c->fd,
           "GET /echo?a=1&b=2 HTTP/1.1\r\nHost: x\r\nX-TEST:  hello \r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 200);
  cr_assert_str_eq(r.body, "GET /echo?a=1&b=2\n");
  cr_assert_not_null(strstr(r.headers, "x-seen-test: hello\n"), "%s",
                     r.headers);
  cr_assert_not_null(strstr(r.headers, "x-remote: 127.0.0.1\n"));
  cr_assert_not_null(strstr(r.headers, "content-length: 18\n"));
  cr_assert_not_null(strstr(r.headers, "date: "));
  cr_assert_null(strstr(r.headers, "connection: close"));
  response_free(&r);

  send_str(c->fd, "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 404);
  response_free(&r);
  client_close(c);
  stop_server();
}

Test(http, post_content_length) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *c;

  start_server(&config);
  c = client_open();
  send_str(c->fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
                  "\r\nhello");
  usleep(50 * 1000); /* the body arrives in two reads */
  send_str(c->fd, " world");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 200);
  cr_assert_str_eq(r.body, "POST /echo?\nhello world");
  response_free(&r);
  client_close(c);
  stop_server();
}

Test(http, chunked_post) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *c;

  start_server(&config);
  c = client_open();
  send_str(c->fd, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n"
                  "6\r\nhello \r\n");
  usleep(50 * 1000);
  send_str(c->fd, "7\r\nchunked\r\n0\r\nX-Trailer: t\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 200);
  cr_assert_str_eq(r.body, "POST /echo?\nhello chunked");
  response_free(&r);
  client_close(c);
  stop_server();
}

Test(http, head_request_has_no_body) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *c;

  start_server(&config);
  c = client_open();
  send_str(c->fd, "HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  r.head_request = 1;
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 200);
  cr_assert_eq(r.body_len, 0);
  cr_assert_not_null(strstr(r.headers, "content-length: 12\n"), "%s",
                     r.headers);
  response_free(&r);
  /* The connection is still in sync: no stray body bytes. */
  send_str(c->fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_str_eq(r.body, "GET /echo?\n");
  response_free(&r);
  client_close(c);
  stop_server();
}

Test(http, keep_alive_two_requests) {
  ph__http_config_t config = test_config();
  response_t r1 = {0};
  response_t r2 = {0};
  client_t *c;
  char *p1;
  char *p2;

  start_server(&config);
  c = client_open();
  send_str(c->fd, "GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_eq(read_response(c, &r1), 0);
  send_str(c->fd, "GET /echo?n=2 HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_eq(read_response(c, &r2), 0);
  cr_assert_str_eq(r1.body, "GET /echo?n=1\n");
  cr_assert_str_eq(r2.body, "GET /echo?n=2\n");
  /* Same client port: one connection served both. */
  p1 = strstr(r1.headers, "x-remote-port: ");
  p2 = strstr(r2.headers, "x-remote-port: ");
  cr_assert(p1 != NULL && p2 != NULL);
  cr_assert_eq(atoi(p1 + 15), atoi(p2 + 15));
  response_free(&r1);
  response_free(&r2);
  client_close(c);
  stop_server();
}

Test(http, pipelined_in_order) {
  ph__http_config_t config = test_config();
  response_t r[3] = {{0}};
  client_t *c;
  int i;

  start_server(&config);
  c = client_open();
  /* The first answer is the slowest; it must still come first. */
  send_str(c->fd,
           "GET /delay?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n"
           "POST /echo?n=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
           "GET /echo?n=3 HTTP/1.1\r\nHost: x\r\n\r\n");
  for (i = 0; i < 3; i++)
    cr_assert_eq(read_response(c, &r[i]), 0, "response %d", i);
  cr_assert_str_eq(r[0].body, "delayed");
  cr_assert_str_eq(r[1].body, "POST /echo?n=2\nabc");
  cr_assert_str_eq(r[2].body, "GET /echo?n=3\n");
  for (i = 0; i < 3; i++)
    response_free(&r[i]);
  client_close(c);
  stop_server();
}

Test(http, pipelining_limit_pauses_and_resumes) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  char expected[32];
  client_t *c;
  int i;

  config.max_pipelined = 2;
  start_server(&config);
  c = client_open();
  send_str(c->fd, "GET /delay?ms=100 HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /delay?ms=50 HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /echo?n=3 HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /echo?n=4 HTTP/1.1\r\nHost: x\r\n\r\n");
  for (i = 0; i < 5; i++) {
    cr_assert_eq(read_response(c, &r), 0, "response %d", i);
    if (i == 0 || i == 2) {
      cr_assert_str_eq(r.body, "delayed");
    } else {
      snprintf(expected, sizeof(expected), "GET /echo?n=%d\n", i);
      cr_assert_str_eq(r.body, expected);
    }
    response_free(&r);
  }
  client_close(c);
  stop_server();
}

Test(http, streaming_response_in_chunks) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *c;

  start_server(&config);
  c = client_open();
  /* The pipelined echo waits until the stream has ended. */
  send_str(c->fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /echo "
                  "HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 200);
  cr_assert_not_null(strstr(r.headers, "transfer-encoding: chunked\n"));
  cr_assert_not_null(strstr(r.headers, "content-type: text/event-stream\n"));
  cr_assert_str_eq(r.body, "chunk0\nchunk1\nchunk2\n");
  cr_assert_eq(r.nchunks, 3);
  cr_assert_eq(r.chunks[0], 7);
  /* Chunks arrive as written, not gathered at the end. */
  cr_assert_geq(r.chunk_at[2] - r.chunk_at[0], 100);
  response_free(&r);
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_str_eq(r.body, "GET /echo?\n");
  response_free(&r);
  client_close(c);
  stop_server();
}

Test(http, stream_behind_slow_response_is_held_in_order) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *c;

  start_server(&config);
  c = client_open();
  /* The stream starts writing while the delayed answer still blocks it. */
  send_str(c->fd, "GET /delay?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_str_eq(r.body, "delayed");
  response_free(&r);
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_str_eq(r.body, "chunk0\nchunk1\nchunk2\n");
  response_free(&r);
  client_close(c);
  stop_server();
}

Test(http, http10_stream_framed_by_close) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *c;

  start_server(&config);
  c = client_open();
  send_str(c->fd, "GET /stream HTTP/1.0\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_null(strstr(r.headers, "transfer-encoding"));
  cr_assert_str_eq(r.body, "chunk0\nchunk1\nchunk2\n");
  response_free(&r);
  client_close(c);
  stop_server();
}

Test(http, http10_and_connection_close_end_the_connection) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *c;

  start_server(&config);
  c = client_open();
  send_str(c->fd, "GET /echo HTTP/1.0\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 200);
  cr_assert_not_null(strstr(r.headers, "connection: close\n"));
  assert_closed(c);
  response_free(&r);
  client_close(c);

  c = client_open();
  send_str(c->fd, "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                  "GET /echo?ignored HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_str_eq(r.body, "GET /echo?\n");
  assert_closed(c);
  response_free(&r);
  client_close(c);

  /* HTTP/1.0 may ask for keep-alive. */
  c = client_open();
  send_str(c->fd, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_not_null(strstr(r.headers, "connection: keep-alive\n"));
  response_free(&r);
  send_str(c->fd, "GET /echo?again HTTP/1.0\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_str_eq(r.body, "GET /echo?again\n");
  response_free(&r);
  client_close(c);
  stop_server();
}

Test(http, expect_100_continue) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *c;

  start_server(&config);
  c = client_open();
  send_str(c->fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                  "Expect: 100-continue\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 100);
  response_free(&r);
  send_str(c->fd, "ok");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 200);
  cr_assert_str_eq(r.body, "POST /echo?\nok");
  response_free(&r);
  client_close(c);
  stop_server();
}

Test(http, body_too_large_announced) {
  ph__http_config_t config = test_config();

  config.max_body_bytes = 1024;
  start_server(&config);
  expect_status(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n", 413);
  /* Exactly the limit is fine. */
  {
    char request[2048];
    response_t r = {0};
    client_t *c;
    int n;

    n = snprintf(
        request, sizeof(request),
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n");
    memset(request + n, 'a', 1024);
    c = client_open();
    send_all(c->fd, request, (size_t)n + 1024);
    cr_assert_eq(read_response(c, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body_len, strlen("POST /echo?\n") + 1024);
    response_free(&r);
    client_close(c);
  }
  assert_serves();
  stop_server();
}

Test(http, body_too_large_chunked) {
  ph__http_config_t config = test_config();
  char chunk[700];
  response_t r = {0};
  client_t *c;
  int i;

  config.max_body_bytes = 1024;
  start_server(&config);
  c = client_open();
  send_str(
      c->fd,
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  memset(chunk, 'b', sizeof(chunk));
  /* The server answers as soon as the second chunk passes the limit, and
   * keeps draining so that the rest of the upload does not reset. */
  for (i = 0; i < 4; i++) {
    send_str(c->fd, "2bc\r\n");
    send_all(c->fd, chunk, sizeof(chunk));
    send_str(c->fd, "\r\n");
  }
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 413);
  cr_assert_not_null(strstr(r.headers, "connection: close\n"));
  assert_closed(c);
  response_free(&r);
  client_close(c);
  assert_serves();
  stop_server();
}

Test(http, header_too_large) {
  ph__http_config_t config = test_config();
  char request[8192];
  int n;

  config.max_header_bytes = 2048;
  start_server(&config);
  n = snprintf(request, sizeof(request),
               "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ");
  memset(request + n, 'h', 4000);
  strcpy(request + n + 4000, "\r\n\r\n");
  expect_status(request, 431);
  /* Many small headers count too. */
  n = snprintf(request, sizeof(request), "GET /echo HTTP/1.1\r\nHost: x\r\n");
  while (n < 4000)
    n += snprintf(request + n, sizeof(request) - (size_t)n, "X-H%d: v\r\n", n);
  strcpy(request + n, "\r\n");
  expect_status(request, 431);
  assert_serves();
  stop_server();
}

Test(http, too_many_connections) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *a;
  client_t *b;
  client_t *c;
  int64_t deadline;
  int status;

  config.max_connections = 2;
  start_server(&config);
  a = client_open();
  b = client_open();
  send_str(a->fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  send_str(b->fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_eq(read_response(a, &r), 0);
  cr_assert_eq(r.status, 200);
  response_free(&r);
  cr_assert_eq(read_response(b, &r), 0);
  cr_assert_eq(r.status, 200);
  response_free(&r);

  expect_status("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", 503);

  /* Once a slot frees up, new clients are served again. */
  client_close(a);
  deadline = now_ms() + 3000;
  do {
    c = client_open();
    send_str(c->fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert_eq(read_response(c, &r), 0);
    status = r.status;
    response_free(&r);
    client_close(c);
  } while (status == 503 && now_ms() < deadline);
  cr_assert_eq(status, 200);
  client_close(b);
  stop_server();
}

Test(http, slowloris_cut_off_by_header_timeout) {
  ph__http_config_t config = test_config();
  const char *slow =
      "GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  struct pollfd pfd;
  response_t r = {0};
  client_t *c;
  int64_t start;
  int64_t elapsed;
  size_t i;

  config.header_timeout_ms = 300;
  start_server(&config);
  c = client_open();
  start = now_ms();
  pfd.fd = c->fd;
  pfd.events = POLLIN;
  /* One byte every 40 ms: every byte arrives well within any per-read
   * timeout, only a deadline on the whole header stops it. */
  for (i = 0; i < strlen(slow); i++) {
    if (send(c->fd, slow + i, 1, MSG_NOSIGNAL) != 1)
      break;
    if (poll(&pfd, 1, 40) > 0)
      break;
  }
  cr_assert_eq(read_response(c, &r), 0);
  elapsed = now_ms() - start;
  cr_assert_eq(r.status, 408);
  cr_assert_geq(elapsed, 250);
  cr_assert_lt(elapsed, 1200);
  assert_closed(c);
  response_free(&r);
  client_close(c);
  assert_serves();
  stop_server();
}

Test(http, silent_connection_closed_by_header_timeout) {
  ph__http_config_t config = test_config();
  client_t *c;
  int64_t start;

  config.header_timeout_ms = 200;
  start_server(&config);
  c = client_open();
  start = now_ms();
  assert_closed(c);
  cr_assert_lt(now_ms() - start, 1500);
  client_close(c);
  stop_server();
}

Test(http, idle_keep_alive_timeout) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *c;
  int64_t start;

  config.idle_timeout_ms = 200;
  start_server(&config);
  c = client_open();
  send_str(c->fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  response_free(&r);
  start = now_ms();
  assert_closed(c);
  cr_assert_geq(now_ms() - start, 150);
  cr_assert_lt(now_ms() - start, 1500);
  client_close(c);
  stop_server();
}

Test(http, malformed_requests_get_400) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *c;

  start_server(&config);
  expect_status("THIS IS NOT HTTP\r\n\r\n", 400);
  assert_serves();
  expect_status("GET /echo HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
                400);
  assert_serves();
  expect_status("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                400);
  expect_status(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "zz\r\n",
      400);
  assert_serves();
  /* Behind a request still being answered, the 400 waits its turn. */
  c = client_open();
  send_str(c->fd,
           "GET /delay?ms=100 HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_str_eq(r.body, "delayed");
  response_free(&r);
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 400);
  assert_closed(c);
  response_free(&r);
  client_close(c);
  assert_serves();
  stop_server();
}

Test(http, client_gone_mid_stream) {
  ph__http_config_t config = test_config();
  char buf[512];
  int64_t deadline;
  ssize_t n;
  int fd;

  start_server(&config);
  fd = dial();
  send_str(fd, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
  n = recv(fd, buf, sizeof(buf) - 1, 0);
  cr_assert_gt(n, 0);
  buf[n] = '\0';
  if (strstr(buf, "first") == NULL) {
    n = recv(fd, buf, sizeof(buf) - 1, 0);
    cr_assert_gt(n, 0);
  }
  cr_assert_eq(atomic_load(&gone_count), 0);
  close(fd);
  deadline = now_ms() + 2000;
  while (atomic_load(&gone_count) == 0 && now_ms() < deadline)
    usleep(10 * 1000);
  cr_assert_eq(atomic_load(&gone_count), 1);
  usleep(100 * 1000);
  cr_assert_eq(atomic_load(&gone_count), 1, "gone must fire once");
  assert_serves();
  stop_server();
}

Test(http, server_close_tells_open_streams) {
  ph__http_config_t config = test_config();
  char buf[512];
  int fd;

  start_server(&config);
  fd = dial();
  send_str(fd, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_gt(recv(fd, buf, sizeof(buf), 0), 0);
  stop_server();
  cr_assert_eq(atomic_load(&gone_count), 1);
  close(fd);
}

Test(http, non_reading_client_is_cut_off) {
  ph__http_config_t config = test_config();
  int64_t start;
  int64_t deadline;
  int fd;

  config.max_write_queue_bytes = 256 * 1024;
  start_server(&config);
  fd = dial_with_rcvbuf(4096);
  send_str(fd, "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n");
  /* While that client is flooded and not reading, others are served
   * without delay. */
  start = now_ms();
  assert_serves();
  cr_assert_lt(now_ms() - start, 500);
  deadline = now_ms() + 10000;
  while (atomic_load(&gone_count) == 0 && now_ms() < deadline)
    usleep(10 * 1000);
  cr_assert_eq(atomic_load(&gone_count), 1, "flooded client not cut off");
  close(fd);
  assert_serves();
  stop_server();
}

Test(http, stop_drains_then_refuses) {
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *a;
  client_t *b;

  start_server(&config);
  a = client_open();
  send_str(a->fd, "GET /delay?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
  usleep(50 * 1000);
  b = client_open();
  send_str(b->fd, "GET /stop HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_eq(read_response(b, &r), 0);
  cr_assert_eq(r.status, 200);
  response_free(&r);
  assert_closed(b);
  /* New clients are refused while the old request is still answered. */
  expect_status("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", 503);
  cr_assert_eq(read_response(a, &r), 0);
  cr_assert_str_eq(r.body, "delayed");
  assert_closed(a);
  response_free(&r);
  client_close(a);
  client_close(b);
  stop_server();
}

Test(http, listen_ipv6_and_config_checks) {
  ph__http_config_t config = test_config();
  ph__http_server_t s6;
  uv_loop_t l;

  cr_assert_eq(uv_loop_init(&l), 0);
  cr_assert_eq(ph__http_server_init(&l, &s6, &config, on_request), 0);
  cr_assert_eq(ph__http_server_listen(&s6, "not-an-ip", 0), UV_EINVAL);
  /* IPv6 may be disabled on the machine; only check when it binds. */
  if (ph__http_server_listen(&s6, "[::1]", 0) == 0)
    cr_assert_gt(ph__http_server_port(&s6), 0);
  ph__http_server_close(&s6, NULL);
  cr_assert_eq(uv_run(&l, UV_RUN_DEFAULT), 0);
  cr_assert_eq(uv_loop_close(&l), 0);

  config.max_connections = 0;
  cr_assert_eq(uv_loop_init(&l), 0);
  cr_assert_eq(ph__http_server_init(&l, &s6, &config, on_request), UV_EINVAL);
  cr_assert_eq(uv_loop_close(&l), 0);
}

#define NUL_IN_VALUE "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"
#define NUL_IN_EXTENSION "3;a\0b\r\nabc\r\n0\r\n\r\n"

/* What http_parser lets through and RFC 9112 has a server refuse; each is
 * answered at once and the connection ends. */
Test(http, request_syntax_http_parser_lets_through) {
  static const struct {
    const char *request;
    size_t len; /* 0: strlen */
  } bad[] = {
      {"GET  /echo HTTP/1.1\r\nHost: x\r\n\r\n", 0},
      {"GET /echo  HTTP/1.1\r\nHost: x\r\n\r\n", 0},
      {" GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", 0},
      {"GET /echo HTTP/1.1 \r\nHost: x\r\n\r\n", 0},
      {"GET\t/echo HTTP/1.1\r\nHost: x\r\n\r\n", 0},
      {"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 0},
      {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc", 0},
      {"GET /echo HTTP/1.1\r\nHost: x\r\nX Y: 1\r\n\r\n", 0},
      {"GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 0},
      {"GET /echo HTTP/1.1\r\nHost: x\r\nX-A:\r\n b\r\n\r\n", 0},
      {"GET /echo HTTP/1.1\r\n Host: x\r\n\r\n", 0},
      {"GET /echo HTTP/1.1\nHost: x\n\n", 0},
      {"GET /echo HTTP/1.1\r\nHost: x\n\r\n", 0},
      {"GET /echo HTTP/1.1\r\nHost: x\r\n\n", 0},
      {"GET /echo HTTP/1.1\r\nHost: x\r\n\rX", 0},
      {"GET /echo HTTP/1.1\r\nHost: x\r\nX-A:\rb\r\n\r\n", 0},
      {"\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n", 0},
      {NUL_IN_VALUE, sizeof(NUL_IN_VALUE) - 1},
  };
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *c;
  size_t i;

  start_server(&config);
  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    c = client_open();
    send_all(c->fd, bad[i].request,
             bad[i].len ? bad[i].len : strlen(bad[i].request));
    cr_assert_eq(read_response(c, &r), 0, "case %zu", i);
    cr_expect_eq(r.status, 400, "case %zu: %d", i, r.status);
    assert_closed(c);
    response_free(&r);
    client_close(c);
  }
  /* Empty lines before a request line are fine (RFC 9112 2.2), and a bad
   * request behind a good one is refused in its turn. */
  c = client_open();
  send_str(c->fd, "\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 200);
  response_free(&r);
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 400);
  assert_closed(c);
  response_free(&r);
  client_close(c);
  /* One byte at a time the same checks hold, and a good head passes. */
  c = client_open();
  for (i = 0; i < strlen("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"); i++)
    send_all(c->fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n" + i, 1);
  cr_assert_eq(read_response(c, &r), 0);
  cr_assert_eq(r.status, 200);
  response_free(&r);
  client_close(c);
  assert_serves();
  stop_server();
}

/* RFC 9112 3.2: one Host on HTTP/1.1, an authority, and an absolute-form
 * target's authority in its place. */
Test(http, host_header_rules) {
  static const char *const bad[] = {
      "GET /echo HTTP/1.1\r\n\r\n",
      "GET /echo HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n",
      "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nhost: y\r\n\r\n",
      "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:evil.com\r\n\r\n",
      "GET /echo HTTP/1.1\r\nHost: localhost:@evil.com\r\n\r\n",
      "GET /echo HTTP/1.1\r\nHost: u@x\r\n\r\n",
      "GET /echo HTTP/1.1\r\nHost: x:65536\r\n\r\n",
      "GET /echo HTTP/1.1\r\nHost: [::1\r\n\r\n",
      "GET /echo HTTP/1.0\r\nHost: a b\r\n\r\n",
      "GET http://u@x/echo HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET ftp://x/echo HTTP/1.1\r\nHost: x\r\n\r\n",
  };
  ph__http_config_t config = test_config();
  response_t r = {0};
  client_t *c;
  size_t i;

  start_server(&config);
  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
    expect_status(bad[i], 400);
  c = client_open();
  send_str(c->fd, "GET /echo HTTP/1.1\r\nHost: Example.COM:\r\n\r\n"
                  "GET http://Example.COM:8080/echo?q HTTP/1.1\r\n"
                  "Host: other\r\n\r\n"
                  "GET HTTP://[::1]:81 HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /echo HTTP/1.0\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_expect(strstr(r.headers, "x-host: Example.COM:\n") != NULL, "%s",
            r.headers);
  response_free(&r);
  cr_assert_eq(read_response(c, &r), 0);
  cr_expect_str_eq(r.body, "GET /echo?q\n");
  cr_expect(strstr(r.headers, "x-host: Example.COM:8080\n") != NULL, "%s",
            r.headers);
  response_free(&r);
  cr_assert_eq(read_response(c, &r), 0);
  cr_expect_eq(r.status, 404); /* the path is "/" */
  response_free(&r);
  cr_assert_eq(read_response(c, &r), 0);
  cr_expect_eq(r.status, 200);
  cr_expect(strstr(r.headers, "x-host: -\n") != NULL, "%s", r.headers);
  response_free(&r);
  client_close(c);
  assert_serves();
  stop_server();
}

Test(http, authority_syntax) {
  static const char *const good[] = {
      "x",
      "x:",
      "x:0",
      "x:65535",
      "[::1]",
      "[::1]:80",
      "[::ffff:1.2.3.4]",
      "a%41b",
      "a-._~!$&'()*+,;=z",
      "",
  };
  static const char *const bad[] = {
      "x:65536", "x:-1",   "x:+1", "x: 1",   "x:1:2",       "u@x",
      "[::1",    "[::1]x", "[x]",  "::1",    "a%4",         "a%zz",
      "a b",     "a/b",    "a?b",  "[v1.x]", "[127.0.0.1]",
  };
  ph__http_authority_t a;
  size_t i;

  for (i = 0; i < sizeof(good) / sizeof(*good); i++)
    cr_expect_eq(ph__http_authority_parse(good[i], strlen(good[i]), &a), 0,
                 "%s", good[i]);
  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
    cr_expect_eq(ph__http_authority_parse(bad[i], strlen(bad[i]), &a),
                 UV_EINVAL, "%s", bad[i]);
  cr_assert_eq(ph__http_authority_parse("Example.com:080", 15, &a), 0);
  cr_expect_eq(a.host_len, 11);
  cr_expect_eq(a.port, 80);
  cr_expect(!a.is_ip6);
  cr_assert_eq(ph__http_authority_parse("x:", 2, &a), 0);
  cr_expect_eq(a.port, -1);
  cr_assert_eq(ph__http_authority_parse("[0:0::1]:8", 10, &a), 0);
  cr_expect(a.is_ip6 && IN6_IS_ADDR_LOOPBACK(&a.addr6));
  cr_expect_eq(a.host_len, 8);
  cr_expect_eq(a.port, 8);
}

Test(http, chunked_framing_is_strict) {
  static const struct {
    const char *chunks;
    size_t len; /* 0: strlen */
    int status;
  } cases[] = {
      {"3\r\nabcXY0\r\n\r\n", 0, 400},
      {"3\nabc\r\n0\r\n\r\n", 0, 400},
      {"3;a\nb\r\nabc\r\n0\r\n\r\n", 0, 400},
      {NUL_IN_EXTENSION, sizeof(NUL_IN_EXTENSION) - 1, 400},
      {"3\r\nabc\r\n0\r\n\rX", 0, 400},
      {"3\r\nabc\r\n0\r\nX-T: a\r\n b\r\n\r\n", 0, 400},
      {"3\r\nabc\r\n0\r\nX-T: a\n\r\n", 0, 400},
      {"3\r\nabc\r\n0\r\nX T: a\r\n\r\n", 0, 400},
      {";a\r\nabc\r\n0\r\n\r\n", 0, 400},
      {"g\r\nabc\r\n0\r\n\r\n", 0, 400},
  };
  ph__http_config_t config = test_config();
  char request[256];
  response_t r = {0};
  client_t *c;
  size_t i, head;

  start_server(&config);
  head = (size_t)snprintf(request, sizeof(request),
                          "POST /echo HTTP/1.1\r\nHost: x\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n");
  for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    c = client_open();
    send_all(c->fd, request, head);
    send_all(c->fd, cases[i].chunks,
             cases[i].len ? cases[i].len : strlen(cases[i].chunks));
    cr_assert_eq(read_response(c, &r), 0, "case %zu", i);
    cr_expect_eq(r.status, cases[i].status, "case %zu: %d", i, r.status);
    assert_closed(c);
    response_free(&r);
    client_close(c);
  }
  /* Framing split at every awkward place still reads, extensions and
   * trailers included, and the next request on the connection follows. */
  c = client_open();
  send_all(c->fd, request, head - 1);
  usleep(20 * 1000);
  send_str(c->fd, "\n3;ext=\"a b\"\r");
  usleep(20 * 1000);
  send_str(c->fd, "\nabc\r");
  usleep(20 * 1000);
  send_str(c->fd, "\n0\r\nX-T: t\r");
  usleep(20 * 1000);
  send_str(c->fd, "\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_expect_eq(r.status, 200);
  cr_expect_str_eq(r.body, "POST /echo?\nabc");
  response_free(&r);
  cr_assert_eq(read_response(c, &r), 0);
  cr_expect_str_eq(r.body, "GET /echo?\n");
  response_free(&r);
  client_close(c);
  assert_serves();
  stop_server();
}

/* A chunk the body limit cannot take is refused as soon as its size is
 * read, not at the body timeout; so are sizes that add up past it. */
Test(http, chunk_past_the_body_limit_is_413_at_once) {
  static const char *const sizes[] = {
      "7fffffffffffffff\r\n",
      "ffffffffffffffffffff",
      "401",
      "200\r\n",
  };
  ph__http_config_t config = test_config();
  char big[0x201];
  response_t r = {0};
  client_t *c;
  int64_t start;
  size_t i;

  config.max_body_bytes = 1024;
  config.body_timeout_ms = 5000;
  start_server(&config);
  memset(big, 'b', sizeof(big));
  for (i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
    c = client_open();
    start = now_ms();
    send_str(c->fd, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n");
    if (i == 3) {
      /* 0x200 twice fits; a third does not. */
      send_str(c->fd, "200\r\n");
      send_all(c->fd, big, 0x200);
      send_str(c->fd, "\r\n200\r\n");
      send_all(c->fd, big, 0x200);
      send_str(c->fd, "\r\n");
    }
    send_str(c->fd, sizes[i]);
    cr_assert_eq(read_response(c, &r), 0, "case %zu", i);
    cr_expect_eq(r.status, 413, "case %zu: %d", i, r.status);
    cr_expect_lt(now_ms() - start, 1000, "case %zu", i);
    response_free(&r);
    client_close(c);
  }
  assert_serves();
  stop_server();
}

/* RFC 9112 7.1.1 asks for a limit on chunk extensions: they count against
 * max_header_bytes, with the head and the trailers. */
Test(http, chunk_extensions_count_against_the_head_limit) {
  ph__http_config_t config = test_config();
  char ext[4096];
  response_t r = {0};
  client_t *c;
  int i;

  config.max_header_bytes = 1024;
  start_server(&config);
  memset(ext, 'e', sizeof(ext) - 1);
  ext[sizeof(ext) - 1] = '\0';
  c = client_open();
  send_str(c->fd, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n1;");
  send_str(c->fd, ext);
  cr_assert_eq(read_response(c, &r), 0);
  cr_expect_eq(r.status, 413);
  response_free(&r);
  client_close(c);

  c = client_open();
  send_str(c->fd, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n");
  for (i = 0; i < 20; i++)
    send_str(c->fd, "1;"
                    "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
                    "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\r\n"
                    "x\r\n");
  cr_assert_eq(read_response(c, &r), 0);
  cr_expect_eq(r.status, 413);
  response_free(&r);
  client_close(c);

  expect_status("POST /echo HTTP/1.1\r\nHost: x\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
                "1;a=b;c=\"d\"\r\nx\r\n0\r\n\r\n",
                200);
  stop_server();
}

/* RFC 9112 6.1: chunked is the one coding we read, and HTTP/1.0 has no
 * Transfer-Encoding; Content-Length beside it is smuggling. */
Test(http, transfer_codings) {
  ph__http_config_t config = test_config();

  start_server(&config);
  expect_status("POST /echo HTTP/1.1\r\nHost: x\r\n"
                "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                501);
  expect_status("POST /echo HTTP/1.1\r\nHost: x\r\n"
                "Transfer-Encoding: chunked\r\n"
                "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                501);
  expect_status("POST /echo HTTP/1.1\r\nHost: x\r\n"
                "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
                400);
  expect_status("POST /echo HTTP/1.1\r\nHost: x\r\n"
                "Transfer-Encoding: gzip\r\n\r\n",
                400);
  expect_status("POST /echo HTTP/1.0\r\n"
                "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                400);
  expect_status("POST /echo HTTP/1.1\r\nHost: x\r\n"
                "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                "0\r\n\r\n",
                400);
  expect_status("POST /echo HTTP/1.1\r\nHost: x\r\n"
                "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx",
                400);
  expect_status("POST /echo HTTP/1.1\r\nHost: x\r\n"
                "Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
                200);
  assert_serves();
  stop_server();
}

/* The highest descriptor open below 1024. */
static int highest_fd(void) {
  int fd;

  for (fd = 1023; fd > 0; fd--)
    if (fcntl(fd, F_GETFD) != -1)
      break;
  return fd;
}

static int raw_socket(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {5, 0};

  cr_assert_geq(fd, 0);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

static void raw_connect(int fd) {
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

  cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
}

/* The server shares this process's descriptor table: with every free
 * descriptor but one taken, one client is served, the next is told 503,
 * and once descriptors are free again clients are served. */
Test(http, out_of_descriptors_gets_503_and_recovers) {
  ph__http_config_t config = test_config();
  struct rlimit rl;
  int fillers[128], nfillers = 0, held, refused, later, fd, i;
  client_t c = {0};
  response_t r = {0};

  start_server(&config);
  assert_serves(); /* libuv sets a descriptor aside at the first one */
  held = raw_socket();
  refused = raw_socket();
  later = raw_socket();
  cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = (rlim_t)highest_fd() + 64;
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
  /* Twice, for a descriptor the server was still closing. */
  for (i = 0; i < 2; i++) {
    while (nfillers < 128 && (fd = open("/dev/null", O_RDONLY)) >= 0)
      fillers[nfillers++] = fd;
    cr_assert_eq(errno, EMFILE);
    usleep(100 * 1000);
  }
  close(fillers[--nfillers]);

  /* The one free descriptor goes to the first client. */
  raw_connect(held);
  c.fd = held;
  http_parser_init(&c.parser, HTTP_RESPONSE);
  send_str(held, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_eq(read_response(&c, &r), 0);
  cr_assert_eq(r.status, 200);
  response_free(&r);

  raw_connect(refused);
  c.fd = refused;
  c.off = c.len = 0;
  http_parser_init(&c.parser, HTTP_RESPONSE);
  cr_assert_eq(read_response(&c, &r), 0);
  cr_expect_eq(r.status, 503);
  cr_expect(strstr(r.headers, "connection: close\n") != NULL, "%s", r.headers);
  response_free(&r);
  assert_closed(&c);

  /* The held client leaves; its descriptor is the server's again. */
  close(held);
  usleep(200 * 1000);
  raw_connect(later);
  c.fd = later;
  c.off = c.len = 0;
  http_parser_init(&c.parser, HTTP_RESPONSE);
  send_str(later, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_assert_eq(read_response(&c, &r), 0);
  cr_expect_eq(r.status, 200);
  response_free(&r);
  close(later);
  close(refused);
  while (nfillers > 0)
    close(fillers[--nfillers]);
  stop_server();
}
