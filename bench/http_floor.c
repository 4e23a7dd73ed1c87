/* http_floor.c: the least an HTTP JSON-RPC server on libuv can do, as the
 * floor plughost's Streamable HTTP transport is measured against. It parses
 * each request with http-parser, its body with cJSON, and answers a request
 * with a canned result carrying its id (a notification with 202), keeping
 * the connection alive. Every answer carries the same Mcp-Session-Id, so
 * bench/http_loadgen drives it like a real server; it keeps no sessions.
 *
 * Usage: http_floor [HOST:]PORT */
#include <cjson/cJSON.h>
#include <http_parser.h>
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char initialize_result[] =
    "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{\"tools\":{}},"
    "\"serverInfo\":{\"name\":\"http-floor\",\"version\":\"1.0.0\"}}";
static const char call_result[] =
    "{\"content\":[{\"type\":\"text\",\"text\":\"hello\"}]}";
static const char accepted[] = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n"
                               "Mcp-Session-Id: floor\r\n\r\n";

typedef struct {
  uv_tcp_t tcp;
  http_parser parser;
  char *body; /* The body of the request being parsed. */
  size_t body_len, body_cap;
  int closing;
} conn;

typedef struct {
  uv_write_t req;
  char data[]; /* The response, freed with the request. */
} write_req;

static uv_loop_t *loop;
static char read_buf[65536];

static void on_closed(uv_handle_t *h) {
  conn *c = h->data;

  free(c->body);
  free(c);
}

static void conn_close(conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

/* Sends len bytes: written at once when the socket takes them all, as it
 * does for one small answer; the rest is copied and queued. */
static void send_bytes(conn *c, const char *data, size_t len) {
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
  write_req *w;

  if (n == (int)len)
    return;
  if (n < 0 && n != UV_EAGAIN) {
    conn_close(c);
    return;
  }
  if (n < 0)
    n = 0;
  w = malloc(sizeof(*w) + len - (size_t)n);
  if (w == NULL) {
    conn_close(c);
    return;
  }
  memcpy(w->data, data + n, len - (size_t)n);
  buf = uv_buf_init(w->data, (unsigned)(len - (size_t)n));
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0) {
    free(w);
    conn_close(c);
  }
}

static int on_message_begin(http_parser *p) {
  conn *c = p->data;

  c->body_len = 0;
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  conn *c = p->data;

  if (c->body_cap - c->body_len < len) {
    c->body_cap = (c->body_len + len) * 2;
    c->body = realloc(c->body, c->body_cap);
    if (c->body == NULL)
      return -1;
  }
  memcpy(c->body + c->body_len, at, len);
  c->body_len += len;
  return 0;
}

static int on_message_complete(http_parser *p) {
  static const char head[] = "{\"jsonrpc\":\"2.0\",\"id\":";
  conn *c = p->data;
  cJSON *msg = cJSON_ParseWithLength(c->body, c->body_len), *id, *method;
  char id_text[128], out[1024];
  const char *result;
  int body_len, n;

  id = cJSON_GetObjectItemCaseSensitive(msg, "id");
  method = cJSON_GetObjectItemCaseSensitive(msg, "method");
  if (id == NULL || !cJSON_IsString(method) ||
      !cJSON_PrintPreallocated(id, id_text, sizeof(id_text), 0)) {
    /* A notification (or something we do not answer): accepted. */
    cJSON_Delete(msg);
    send_bytes(c, accepted, sizeof(accepted) - 1);
    return 0;
  }
  result = strcmp(method->valuestring, "initialize") == 0 ? initialize_result
                                                          : call_result;
  body_len =
      (int)(sizeof(head) - 1 + strlen(id_text) + 10 + strlen(result) + 1);
  n = snprintf(out, sizeof(out),
               "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\nMcp-Session-Id: floor\r\n\r\n"
               "%s%s,\"result\":%s}",
               body_len, head, id_text, result);
  cJSON_Delete(msg);
  send_bytes(c, out, (size_t)n);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  (void)size;
  *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn *c = s->data;
  size_t parsed;

  if (nread < 0) {
    conn_close(c);
    return;
  }
  parsed = http_parser_execute(&c->parser, &settings, buf->base, (size_t)nread);
  if (c->parser.http_errno != HPE_OK || parsed != (size_t)nread ||
      (c->parser.upgrade))
    conn_close(c);
}

static void on_connection(uv_stream_t *server, int status) {
  conn *c;

  if (status != 0)
    return;
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return;
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv) {
  const char *listen = argc == 2 ? argv[1] : NULL, *colon;
  char host[64] = "127.0.0.1";
  struct sockaddr_in addr;
  uv_tcp_t server;
  int port, err;

  if (listen == NULL) {
    fprintf(stderr, "usage: http_floor [HOST:]PORT\n");
    return 2;
  }
  colon = strrchr(listen, ':');
  if (colon != NULL) {
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    listen = colon + 1;
  }
  port = atoi(listen);
  loop = uv_default_loop();
  uv_tcp_init(loop, &server);
  err = uv_ip4_addr(host, port, &addr);
  if (err == 0)
    err = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (err == 0)
    err = uv_listen((uv_stream_t *)&server, 1024, on_connection);
  if (err != 0) {
    fprintf(stderr, "http_floor: %s:%d: %s\n", host, port, uv_strerror(err));
    return 1;
  }
  return uv_run(loop, UV_RUN_DEFAULT);
}
