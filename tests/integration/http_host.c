/* http_host.c: see http_host.h. */
#include "http_host.h"

#include "harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define LISTENING "http://127.0.0.1:"

/* The whole file at path, NUL-terminated ("" if it cannot be read). */
static char *read_log(const char *path) {
  char *buf = calloc(1, 1), chunk[4096];
  size_t len = 0;
  ssize_t n;
  int fd = open(path, O_RDONLY);

  cr_assert_not_null(buf);
  if (fd < 0)
    return buf;
  while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
    buf = realloc(buf, len + (size_t)n + 1);
    cr_assert_not_null(buf);
    memcpy(buf + len, chunk, (size_t)n);
    len += (size_t)n;
    buf[len] = '\0';
  }
  close(fd);
  return buf;
}

void th_http_start(th_http_host *h, const char *config, int timeout_ms) {
  th_http_start_on(h, config, "127.0.0.1:0", timeout_ms);
}

void th_http_start_on(th_http_host *h, const char *config, const char *listen,
                      int timeout_ms) {
  long long deadline = th_now_ms() + timeout_ms;
  char *text;
  const char *p;

  memset(h, 0, sizeof(*h));
  h->log_path = th_write_temp("", ".log");
  h->pid = fork();
  cr_assert(h->pid >= 0);
  if (h->pid == 0) {
    /* A failed assertion ends the test process: take the host along. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (freopen(h->log_path, "w", stderr) == NULL)
      _exit(126);
    execl(th_binary(), th_binary(), "--config", config, "--listen", listen,
          (char *)NULL);
    _exit(127);
  }
  /* The port is read only once its digits are there, so a line caught
   * half-written is read again. */
  while (h->port <= 0 && th_now_ms() < deadline) {
    usleep(10000);
    text = read_log(h->log_path);
    if ((p = strstr(text, LISTENING)) != NULL)
      h->port = atoi(p + strlen(LISTENING));
    free(text);
  }
  cr_assert(h->port > 0,
            "plughost did not start listening (is the HTTP transport "
            "built?)");
}

int th_http_stop(th_http_host *h) {
  int status = -1;

  if (h->pid > 0) {
    kill(h->pid, SIGTERM);
    waitpid(h->pid, &status, 0);
  }
  if (h->log_path != NULL)
    unlink(h->log_path);
  free(h->log_path);
  memset(h, 0, sizeof(*h));
  return status;
}

char *th_http_wait_log(const th_http_host *h, const char *needle,
                       int timeout_ms) {
  long long deadline = th_now_ms() + timeout_ms;
  char *text;

  for (;;) {
    text = read_log(h->log_path);
    if (strstr(text, needle) != NULL)
      return text;
    free(text);
    if (th_now_ms() > deadline)
      return NULL;
    usleep(10000);
  }
}

int th_dial(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

char *th_read_some(int fd, const char *until, int timeout_ms) {
  size_t len = 0, cap = 65536, from;
  char *buf = calloc(1, cap);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  ssize_t n;

  cr_assert_not_null(buf);
  while (poll(&p, 1, timeout_ms) > 0) {
    if (len + 1 >= cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      cr_assert_not_null(buf);
    }
    n = read(fd, buf + len, cap - len - 1);
    if (n <= 0)
      break;
    /* Only the new bytes, and those before them that could start until. */
    from = until != NULL && len > strlen(until) ? len - strlen(until) : 0;
    len += (size_t)n;
    buf[len] = '\0';
    if (until != NULL && strstr(buf + from, until) != NULL)
      break;
  }
  return buf;
}

/* Connects and writes the request; keep_open leaves out "Connection:
 * close". Returns the socket. */
static int request(int port, const char *method, const char *headers,
                   const char *body, int keep_open) {
  char *req;
  int fd = th_dial(port), n;

  n = asprintf(&req,
               "%s /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Content-Type: application/json\r\n"
               "Accept: application/json, text/event-stream\r\n"
               "%sContent-Length: %zu\r\n%s\r\n%s",
               method, port, headers, body ? strlen(body) : 0,
               keep_open ? "" : "Connection: close\r\n", body ? body : "");
  cr_assert(n > 0);
  cr_assert_eq(write(fd, req, (size_t)n), n);
  free(req);
  return fd;
}

int th_http_send(int port, const char *method, const char *headers,
                 const char *body) {
  return request(port, method, headers, body, 1);
}

char *th_http(int port, const char *method, const char *headers,
              const char *body, const char *until, int timeout_ms) {
  int fd = request(port, method, headers, body, 0);
  char *out = th_read_some(fd, until, timeout_ms);

  close(fd);
  return out;
}

char *th_http_raw(int port, const char *request, size_t len, int timeout_ms) {
  int fd = th_dial(port);
  char *out;

  cr_assert_eq(write(fd, request, len), (ssize_t)len);
  out = th_read_some(fd, NULL, timeout_ms);
  close(fd);
  return out;
}

int th_http_raw_status(int port, const char *fmt, ...) {
  va_list ap;
  char *request, *out;
  int n, status;

  va_start(ap, fmt);
  n = vasprintf(&request, fmt, ap);
  va_end(ap);
  cr_assert(n > 0);
  out = th_http_raw(port, request, (size_t)n, 3000);
  status = th_http_status(out);
  free(out);
  free(request);
  return status;
}

int th_http_status(const char *response) {
  int status = 0;

  sscanf(response, "HTTP/1.1 %d", &status);
  return status;
}

char *th_http_session_id(const char *response) {
  const char *p = strcasestr(response, "Mcp-Session-Id: ");
  char id[128] = "";

  if (p == NULL)
    return NULL;
  sscanf(p + strlen("Mcp-Session-Id: "), "%127[!-~]", id);
  return strdup(id);
}
