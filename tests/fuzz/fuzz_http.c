/* fuzz_http.c: the HTTP/1.1 request layer (http.c) fed bytes as a client
 * sends them: over a socketpair the server adopts, in pieces whose size
 * depends on the input (so requests and chunk lines split across reads),
 * pipelined, with responses answered at once, streamed, or held back and
 * answered late (so the pipelining limit and queued output are reached).
 * Every string of every request is read whole, so a bad offset shows. Each
 * input ends with the client shutting its side and the connection gone;
 * limits are small so that 413, 431 and the pipelining stop are reached. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "http.h"
#include "log.h"

#define MAX_HELD 32
/* Loop turns an input may take to close down before it counts as a hang. */
#define MAX_TURNS 100000

static uv_loop_t loop;
static ph__http_server_t server;
static unsigned idle_handles;
static ph__http_response_t *held[MAX_HELD];
static size_t nheld;
static volatile size_t sink;

static void read_string(const char *s) {
  if (s != NULL)
    sink += strlen(s);
}

static void unhold(ph__http_response_t *res) {
  size_t i;

  for (i = 0; i < nheld; i++)
    if (held[i] == res) {
      held[i] = held[--nheld];
      return;
    }
}

static void on_gone(ph__http_response_t *res) {
  unhold(res);
  ph__http_response_close(res);
}

static void answer(ph__http_response_t *res) {
  const ph__http_request_t *req = ph__http_response_request(res);
  static const ph__http_header_t sse = {"Content-Type", "text/event-stream"};

  if (strncmp(req->path, "/stream", 7) == 0) {
    int err = ph__http_stream_begin(res, 200, &sse, 1);

    if (err == 0) {
      ph__http_stream_write(res, "data: x\n\n", 9);
      ph__http_stream_write(res, req->body, req->body_len);
      ph__http_stream_end(res);
      return;
    }
    if (err != UV_EINVAL) {
      ph__http_response_close(res);
      return;
    }
  }
  ph__http_respond(res, 200, NULL, 0, req->body, req->body_len);
}

static void on_request(ph__http_server_t *s, const ph__http_request_t *req,
                       ph__http_response_t *res) {
  const char *name, *value;
  size_t i, n;

  (void)s;
  read_string(req->method);
  read_string(req->path);
  read_string(req->query);
  read_string(req->host);
  read_string(req->remote_ip);
  if (req->body[req->body_len] != '\0')
    abort();
  n = ph__http_request_header_count(req);
  for (i = 0; i < n; i++) {
    if (ph__http_request_header_at(req, i, &name, &value) != 0)
      abort();
    read_string(name);
    read_string(value);
    read_string(ph__http_request_header(req, name));
  }
  if (strncmp(req->path, "/late", 5) == 0 && nheld < MAX_HELD) {
    ph__http_response_set_gone_cb(res, on_gone);
    held[nheld++] = res;
    return;
  }
  answer(res);
}

static char *error_body(int status, const char *target,
                        const char **content_type, size_t *len) {
  char *body = malloc(64 + (target ? strlen(target) : 0));

  if (body == NULL)
    return NULL;
  *len = (size_t)sprintf(body, "%d %s", status, target ? target : "-");
  *content_type = "text/plain";
  return body;
}

static void release_held(void) {
  while (nheld > 0) {
    ph__http_response_t *res = held[--nheld];

    ph__http_response_set_gone_cb(res, NULL);
    answer(res);
  }
}

static void drain(int fd) {
  char buf[65536];

  while (read(fd, buf, sizeof(buf)) > 0)
    ;
}

static void turn(int fd) {
  uv_run(&loop, UV_RUN_NOWAIT);
  drain(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  ph__http_config_t cfg;

  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  ph__log_set_level(PH_LOG_EMERGENCY);
  if (uv_loop_init(&loop) != 0)
    abort();
  ph__http_config_init(&cfg);
  cfg.max_header_bytes = 2048;
  cfg.max_body_bytes = 8192;
  cfg.max_connections = 4;
  cfg.max_pipelined = 4;
  cfg.max_write_queue_bytes = 65536;
  cfg.header_timeout_ms = 0;
  cfg.body_timeout_ms = 0;
  cfg.idle_timeout_ms = 0;
  cfg.linger_timeout_ms = 0;
  cfg.error_body = error_body;
  if (ph__http_server_init(&loop, &server, &cfg, on_request) != 0)
    abort();
  idle_handles = server.handles;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t piece = 1 + size % 97, off = 0, n;
  int fds[2], turns = 0;
  ssize_t w;

  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) !=
      0)
    abort();
  ph__http_server_adopt(&server, fds[0]);
  while (off < size && turns < MAX_TURNS) {
    n = size - off < piece ? size - off : piece;
    w = send(fds[1], data + off, n, MSG_NOSIGNAL);
    if (w > 0)
      off += (size_t)w;
    else if (w < 0 && errno != EAGAIN)
      break; /* the server closed the connection */
    else
      release_held(); /* not reading: the pipelining limit */
    turn(fds[1]);
    turns++;
  }
  release_held();
  shutdown(fds[1], SHUT_WR);
  while ((server.conns != NULL || server.handles != idle_handles) &&
         turns++ < MAX_TURNS) {
    turn(fds[1]);
    release_held();
  }
  if (server.conns != NULL || server.handles != idle_handles) {
    fprintf(stderr, "fuzz_http: the connection never closed\n");
    abort();
  }
  close(fds[1]);
  return 0;
}
