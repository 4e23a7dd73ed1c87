/* test_http_hostile.c: plughost's HTTP layer against a hostile client
 * (issue 9, items 12 and 13): request syntax that http_parser lets
 * through, Host on HTTP/1.1, framing conflicts, chunked bodies bounded at
 * once, and running out of file descriptors. Each case is raw bytes to the
 * real binary with the real conformance plugin behind it. The checks of
 * the transport above it are in test_http_checks.c. */
#include "harness.h"
#include "http_host.h"

#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static th_http_host host;

static const char config[] =
    "{\"plugin_dir\":\"" PH_TEST_PLUGIN_DIR "\",\"log_level\":\"debug\","
    "\"limits\":{\"max_message_bytes\":4096,\"max_header_bytes\":2048,"
    "\"header_timeout_ms\":20000},"
    "\"departments\":{\"default\":{\"plugins\":["
    "{\"plugin\":\"conformance\",\"prefix\":\"\"}]}}}";

static void start(void) {
  char *cfg = th_write_temp(config, ".json");

  th_http_start(&host, cfg, 5000);
  free(cfg);
}

static void stop(void) {
  th_http_stop(&host);
}

TestSuite(hostile, .init = start, .fini = stop, .timeout = 60);

#define INIT                                                                   \
  "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"       \
  "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{"    \
  "\"name\":\"t\",\"version\":\"1\"}}}"

/* GET /health with one Host line (NULL: none). */
static int health_with_host(const char *value) {
  if (value == NULL)
    return th_http_raw_status(host.port, "GET /health HTTP/1.1\r\n"
                                         "Connection: close\r\n\r\n");
  return th_http_raw_status(host.port,
                            "GET /health HTTP/1.1\r\nHost: %s\r\n"
                            "Connection: close\r\n\r\n",
                            value);
}

#define JSON_BOTH                                                              \
  "Content-Type: application/json\r\n"                                         \
  "Accept: application/json, text/event-stream\r\n"

Test(hostile, host_must_be_there_once) {
  cr_expect_eq(health_with_host(NULL), 400, "HTTP/1.1 without Host");
  cr_expect_eq(th_http_raw_status(
                   host.port, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Host: evil.com\r\nConnection: close\r\n\r\n"),
               400, "two Host lines, loopback first");
  cr_expect_eq(th_http_raw_status(
                   host.port, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Host: 127.0.0.1\r\nConnection: close\r\n\r\n"),
               400, "two equal Host lines");
  cr_expect_eq(
      th_http_raw_status(host.port,
                         "GET /health HTTP/1.1\r\nHost: localhost\r\n"
                         "X-A: 1\r\nhost: evil.com\r\nConnection: close\r\n"
                         "\r\n"),
      400, "two Host lines, apart and in other case");
  /* HTTP/1.0 has no Host requirement; a Host it does send is checked. */
  cr_expect_eq(th_http_raw_status(host.port, "GET /health HTTP/1.0\r\n\r\n"),
               200);
  cr_expect_eq(th_http_raw_status(
                   host.port, "GET /health HTTP/1.0\r\nHost: evil.com\r\n\r\n"),
               403);
}

struct raw_case {
  const char *what;
  const char *req;
  size_t len; /* 0: strlen(req) */
  int status;
};

#define H "Host: localhost\r\n"
#define CLOSE "Connection: close\r\n"

static void expect_raw(const struct raw_case *c) {
  size_t len = c->len ? c->len : strlen(c->req);
  long long start = th_now_ms();
  char *r = th_http_raw(host.port, c->req, len, 3000);

  cr_expect_eq(th_http_status(r), c->status, "%s -> [%s]", c->what, r);
  /* Each refusal comes at once, not at a timeout. */
  cr_expect_lt(th_now_ms() - start, 2500, "%s took too long", c->what);
  free(r);
}

Test(hostile, request_syntax_http_parser_lets_through) {
  static const struct raw_case cases[] = {
      {"sanity", "GET /health HTTP/1.1\r\n" H CLOSE "\r\n", 0, 200},
      {"double space before the target",
       "GET  /health HTTP/1.1\r\n" H CLOSE "\r\n", 0, 400},
      {"double space before the version",
       "GET /health  HTTP/1.1\r\n" H CLOSE "\r\n", 0, 400},
      {"space after the version", "GET /health HTTP/1.1 \r\n" H CLOSE "\r\n", 0,
       400},
      {"tab as separator", "GET\t/health HTTP/1.1\r\n" H CLOSE "\r\n", 0, 400},
      {"space before the colon",
       "GET /health HTTP/1.1\r\n" H "Content-Length : 5\r\n" CLOSE "\r\nhello",
       0, 400},
      {"space inside a field name",
       "GET /health HTTP/1.1\r\n" H "Content Length: 5\r\n" CLOSE "\r\n", 0,
       400},
      {"obs-fold", "GET /health HTTP/1.1\r\n" H "X-A: a\r\n b\r\n" CLOSE "\r\n",
       0, 400},
      {"obs-fold after an empty value",
       "GET /health HTTP/1.1\r\n" H "X-A:\r\n b\r\n" CLOSE "\r\n", 0, 400},
      {"obs-fold by tab",
       "GET /health HTTP/1.1\r\n" H "X-A: a\r\n\tb\r\n" CLOSE "\r\n", 0, 400},
      {"space before the first field",
       "GET /health HTTP/1.1\r\n " H CLOSE "\r\n", 0, 400},
      {"bare LF line ends", "GET /health HTTP/1.1\nHost: localhost\n\n", 0,
       400},
      {"one bare LF", "GET /health HTTP/1.1\r\nHost: localhost\n" CLOSE "\r\n",
       0, 400},
      {"bare LF ending the head", "GET /health HTTP/1.1\r\n" H CLOSE "\n", 0,
       400},
      {"bare CR ending the head", "GET /health HTTP/1.1\r\n" H CLOSE "\rX", 0,
       400},
      {"bare CR in a value",
       "GET /health HTTP/1.1\r\n" H "X-A: a\rb\r\n" CLOSE "\r\n", 0, 400},
      {"bare CR after an empty value",
       "GET /health HTTP/1.1\r\n" H "X-A:\rb\r\n" CLOSE "\r\n", 0, 400},
      {"NUL in a value",
       "GET /health HTTP/1.1\r\n" H "X-A: a\0b\r\n" CLOSE "\r\n",
       sizeof("GET /health HTTP/1.1\r\n" H "X-A: a\0b\r\n" CLOSE "\r\n") - 1,
       400},
      {"NUL in a name",
       "GET /health HTTP/1.1\r\n" H "X\0A: ab\r\n" CLOSE "\r\n",
       sizeof("GET /health HTTP/1.1\r\n" H "X\0A: ab\r\n" CLOSE "\r\n") - 1,
       400},
      {"NUL in the target", "GET /hea\0lth HTTP/1.1\r\n" H CLOSE "\r\n",
       sizeof("GET /hea\0lth HTTP/1.1\r\n" H CLOSE "\r\n") - 1, 400},
      {"DEL in a value",
       "GET /health HTTP/1.1\r\n" H "X-A: a\x7f\r\n" CLOSE "\r\n", 0, 400},
      {"empty lines before the request line are fine",
       "\r\n\r\nGET /health HTTP/1.1\r\n" H CLOSE "\r\n", 0, 200},
  };
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(*cases); i++)
    expect_raw(&cases[i]);
}

#define POST_CHUNKED                                                           \
  "POST /mcp HTTP/1.1\r\n" H JSON_BOTH "Transfer-Encoding: chunked\r\n" CLOSE  \
  "\r\n"

Test(hostile, framing_conflicts_are_refused) {
  static const struct raw_case cases[] = {
      {"Transfer-Encoding with Content-Length",
       "POST /mcp HTTP/1.1\r\n" H JSON_BOTH
       "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n" CLOSE
       "\r\n0\r\n\r\n",
       0, 400},
      {"Content-Length with Transfer-Encoding",
       "POST /mcp HTTP/1.1\r\n" H JSON_BOTH
       "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n" CLOSE
       "\r\n0\r\n\r\n",
       0, 400},
      {"two Content-Length",
       "POST /mcp HTTP/1.1\r\n" H JSON_BOTH
       "Content-Length: 2\r\nContent-Length: 2\r\n" CLOSE "\r\n{}",
       0, 400},
      {"a Content-Length list",
       "POST /mcp HTTP/1.1\r\n" H JSON_BOTH "Content-Length: 2, 2\r\n" CLOSE
       "\r\n{}",
       0, 400},
      {"a signed Content-Length",
       "POST /mcp HTTP/1.1\r\n" H JSON_BOTH "Content-Length: +2\r\n" CLOSE
       "\r\n{}",
       0, 400},
      {"a coding before chunked",
       "POST /mcp HTTP/1.1\r\n" H JSON_BOTH
       "Transfer-Encoding: gzip, chunked\r\n" CLOSE "\r\n0\r\n\r\n",
       0, 501},
      {"chunked twice",
       "POST /mcp HTTP/1.1\r\n" H JSON_BOTH
       "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n" CLOSE
       "\r\n0\r\n\r\n",
       0, 501},
      {"chunked not last",
       "POST /mcp HTTP/1.1\r\n" H JSON_BOTH
       "Transfer-Encoding: chunked, gzip\r\n" CLOSE "\r\n0\r\n\r\n",
       0, 400},
      {"Transfer-Encoding in HTTP/1.0",
       "POST /mcp HTTP/1.0\r\n" H JSON_BOTH
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       0, 400},
      {"space before the colon of Transfer-Encoding",
       "POST /mcp HTTP/1.1\r\n" H JSON_BOTH
       "Transfer-Encoding : chunked\r\nContent-Length: 2\r\n" CLOSE "\r\n{}",
       0, 400},
      {"chunk data not followed by CRLF", POST_CHUNKED "2\r\n{}XY0\r\n\r\n", 0,
       400},
      {"bare LF after a chunk size", POST_CHUNKED "2\n{}\r\n0\r\n\r\n", 0, 400},
      {"LF inside a chunk extension", POST_CHUNKED "2;a\nb\r\n{}\r\n0\r\n\r\n",
       0, 400},
      {"NUL inside a chunk extension", POST_CHUNKED "2;a\0b\r\n{}\r\n0\r\n\r\n",
       sizeof(POST_CHUNKED "2;a\0b\r\n{}\r\n0\r\n\r\n") - 1, 400},
      {"bare CR after the last chunk", POST_CHUNKED "2\r\n{}\r\n0\r\n\rX", 0,
       400},
      {"obs-fold in a trailer",
       POST_CHUNKED "2\r\n{}\r\n0\r\nX-T: a\r\n b\r\n\r\n", 0, 400},
      {"chunk size of 2^63-1", POST_CHUNKED "7fffffffffffffff\r\n", 0, 413},
      {"chunk size past the body limit, before its line ends",
       POST_CHUNKED "1001", 0, 413},
  };
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(*cases); i++)
    expect_raw(&cases[i]);
}

Test(hostile, chunked_bodies_are_bounded_at_once) {
  char *req, *r, *ext, *data;
  size_t n, len;
  int fd, i;
  long long start;

  /* A chunked initialize with a short extension is served. */
  n = strlen(INIT);
  len = (size_t)asprintf(&req, POST_CHUNKED "%zx;name=\"v\"\r\n%s\r\n0\r\n\r\n",
                         n, INIT);
  r = th_http_raw(host.port, req, len, 3000);
  cr_expect_eq(th_http_status(r), 200, "%s", r);
  free(r);
  free(req);

  /* Chunks adding up past max_message_bytes (4096): 413 once they do,
   * not at the body timeout. */
  data = malloc(0x800);
  memset(data, 'x', 0x800);
  fd = th_dial(host.port);
  start = th_now_ms();
  cr_assert(write(fd, POST_CHUNKED, strlen(POST_CHUNKED)) > 0);
  for (i = 0; i < 3; i++) {
    if (write(fd, "800\r\n", 5) < 0 || write(fd, data, 0x800) < 0 ||
        write(fd, "\r\n", 2) < 0)
      break;
  }
  r = th_read_some(fd, "\r\n\r\n", 3000);
  cr_expect_eq(th_http_status(r), 413, "%s", r);
  cr_expect_lt(th_now_ms() - start, 2500);
  free(r);
  close(fd);
  free(data);

  /* One long extension, well under http_parser's own 80 KiB line limit:
   * chunk extensions count against max_header_bytes (2048). */
  ext = malloc(20001);
  memset(ext, 'e', 20000);
  ext[20000] = '\0';
  len = (size_t)asprintf(&req, POST_CHUNKED "2;%s\r\n{}\r\n0\r\n\r\n", ext);
  start = th_now_ms();
  r = th_http_raw(host.port, req, len, 3000);
  cr_expect_eq(th_http_status(r), 413, "%s", r);
  cr_expect_lt(th_now_ms() - start, 2500);
  free(r);
  free(req);

  /* Many short ones add up the same. */
  fd = th_dial(host.port);
  cr_assert(write(fd, POST_CHUNKED, strlen(POST_CHUNKED)) > 0);
  for (i = 0; i < 40; i++) {
    len = (size_t)asprintf(&req, "1;%.100s\r\n \r\n", ext);
    if (write(fd, req, len) < 0) {
      free(req);
      break;
    }
    free(req);
  }
  r = th_read_some(fd, "\r\n\r\n", 3000);
  cr_expect_eq(th_http_status(r), 413, "%s", r);
  free(r);
  close(fd);
  free(ext);
}

/* Out of file descriptors: the host runs with RLIMIT_NOFILE lowered to 64
 * (by prlimit, after start-up raised its soft limit to the hard one), and
 * the test holds more idle connections than that. */

#define NOFILE 64
#define HELD 100

TestSuite(nofile, .init = start, .fini = stop, .timeout = 60);

/* Whether fd has something to read (or EOF) within timeout_ms. */
static int readable(int fd, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};

  return poll(&p, 1, timeout_ms) > 0;
}

static int count(const char *haystack, const char *needle) {
  int n = 0;

  for (; (haystack = strstr(haystack, needle)) != NULL; haystack++)
    n++;
  return n;
}

Test(nofile, out_of_descriptors_gets_503_and_recovers) {
  struct rlimit rl = {NOFILE, NOFILE};
  int fds[HELD], i, refused = 0, status = 0;
  long long deadline;
  char *r, *log;

  cr_assert_eq(prlimit(host.pid, RLIMIT_NOFILE, &rl, NULL), 0);
  for (i = 0; i < HELD; i++)
    fds[i] = th_dial(host.port);
  /* The first ones are held open and idle; past the limit, each new one
   * is told 503 at once and closed. */
  cr_expect(!readable(fds[0], 300), "an early connection was closed");
  for (i = HELD - 10; i < HELD; i++) {
    r = th_read_some(fds[i], "\r\n\r\n", 2000);
    refused += th_http_status(r) == 503;
    cr_expect(th_http_status(r) == 503 && strstr(r, "Connection: close"),
              "connection %d: [%s]", i, r);
    free(r);
  }
  cr_expect_eq(refused, 10);
  /* Logged, but once per interval rather than once per connection. */
  log = th_http_wait_log(&host, "file descriptors", 2000);
  cr_assert_not_null(log, "nothing logged");
  cr_expect_eq(count(log, "file descriptors"), 1, "%s", log);
  free(log);
  /* Once connections close, new clients are served again. */
  for (i = 0; i < HELD; i++)
    close(fds[i]);
  deadline = th_now_ms() + 3000;
  do {
    usleep(50000);
    status = health_with_host("127.0.0.1");
  } while (status != 200 && th_now_ms() < deadline);
  cr_expect_eq(status, 200);
}
