/* test_http_sessions.c: the legacy session table of plughost over
 * Streamable HTTP under pressure: idle sessions expire, a full table ends
 * its least recently used idle session (never a busy one), and one client
 * cannot lock others out: its live sessions are capped, its new sessions
 * are rate limited (429), and its flood ends its own idle sessions before
 * anyone else's. Several clients are several loopback addresses. */
#include "harness.h"
#include "http_host.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static th_http_host host;

static void stop(void) {
  th_http_stop(&host);
}

TestSuite(http_sessions, .fini = stop, .timeout = 120);

/* Starts the host with the conformance fixture and `limits` (members of
 * the limits object, without braces). */
static void start(const char *limits) {
  char text[1024], *cfg;

  snprintf(text, sizeof(text),
           "{\"plugin_dir\":\"" PH_TEST_PLUGIN_DIR "\",\"log_level\":\"debug\","
           "\"limits\":{%s},\"departments\":{\"default\":{\"plugins\":["
           "{\"plugin\":\"conformance\",\"prefix\":\"\"}]}}}",
           limits);
  cfg = th_write_temp(text, ".json");
  th_http_start(&host, cfg, 5000);
  unlink(cfg);
  free(cfg);
}

#define INIT                                                                   \
  "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"       \
  "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{"    \
  "\"name\":\"t\",\"version\":\"1\"}}}"
#define PING "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}"

/* One request with "Connection: close" from the loopback address `from`
 * (any of 127.0.0.0/8 reaches the host); returns the whole response. */
static char *http_from(const char *from, const char *method,
                       const char *headers, const char *body) {
  struct sockaddr_in to = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)host.port)};
  struct sockaddr_in src = {.sin_family = AF_INET};
  int fd = socket(AF_INET, SOCK_STREAM, 0), n;
  char *req, *r;

  cr_assert_eq(inet_pton(AF_INET, from, &src.sin_addr), 1, "%s", from);
  cr_assert_eq(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0, "%s", from);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  cr_assert_eq(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
  n = asprintf(&req,
               "%s /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Content-Type: application/json\r\n"
               "Accept: application/json, text/event-stream\r\n"
               "%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
               method, host.port, headers, body ? strlen(body) : 0,
               body ? body : "");
  cr_assert(n > 0);
  cr_assert_eq(write(fd, req, (size_t)n), n);
  free(req);
  r = th_read_some(fd, NULL, 3000);
  close(fd);
  return r;
}

/* initialize from `from`; returns the whole response. */
static char *try_session(const char *from) {
  return http_from(from, "POST", "", INIT);
}

/* A new session of client `from`, which must be granted. */
static char *session_from(const char *from) {
  char *r = try_session(from), *id = th_http_session_id(r);

  cr_assert_eq(th_http_status(r), 200, "%s: %s", from, r);
  cr_assert(id != NULL && strlen(id) >= 16, "%s", r);
  free(r);
  return id;
}

static char *session(void) {
  return session_from("127.0.0.1");
}

/* The status of a ping on session id: 200 while it lives, 404 after. */
static int ping(const char *id) {
  char hdr[256], *r;
  int status;

  snprintf(hdr, sizeof(hdr),
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n", id);
  r = th_http(host.port, "POST", hdr, PING, NULL, 3000);
  status = th_http_status(r);
  cr_assert(status == 200 || status == 404, "%s", r);
  free(r);
  return status;
}

/* Opens the standalone GET stream of session id and waits for its priming
 * event, so the session is busy. Returns the socket. */
static int hold_stream(const char *id) {
  char hdr[256], *r;
  int fd;

  snprintf(hdr, sizeof(hdr),
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n", id);
  fd = th_http_send(host.port, "GET", hdr, NULL);
  r = th_read_some(fd, "retry:", 2000);
  cr_assert(strstr(r, "200 OK") && strstr(r, "retry:"), "%s", r);
  free(r);
  return fd;
}

static void free_all(char **ids, int n) {
  int i;

  for (i = 0; i < n; i++)
    free(ids[i]);
}

/* ---- Expiry and eviction (issue 9, item 4) ---- */

Test(http_sessions, every_idle_session_expires) {
  char *ids[5];
  int i;

  start("\"session_idle_ms\":1000");
  for (i = 0; i < 5; i++)
    ids[i] = session();
  sleep(3); /* Twice the idle time, plus a sweep (every second). */
  for (i = 0; i < 5; i++)
    cr_expect_eq(ping(ids[i]), 404, "session %d of 5 outlived its TTL", i);
  free_all(ids, 5);
}

Test(http_sessions, a_session_in_use_does_not_expire) {
  char *used, *unused;
  long long end;

  start("\"session_idle_ms\":1000");
  used = session();
  unused = session();
  for (end = th_now_ms() + 3000; th_now_ms() < end; usleep(300000))
    cr_assert_eq(ping(used), 200);
  cr_expect_eq(ping(unused), 404);
  free(used);
  free(unused);
}

Test(http_sessions, a_full_table_ends_the_least_recently_used) {
  char *ids[6];
  int i;

  start("\"max_sessions\":4,\"session_idle_ms\":60000");
  for (i = 0; i < 4; i++)
    ids[i] = session();
  cr_assert_eq(ping(ids[0]), 200); /* Now 1 is the least recently used. */
  ids[4] = session();
  ids[5] = session(); /* Then 2. */
  cr_expect_eq(ping(ids[1]), 404);
  cr_expect_eq(ping(ids[2]), 404);
  cr_expect_eq(ping(ids[0]), 200);
  for (i = 3; i < 6; i++)
    cr_expect_eq(ping(ids[i]), 200, "session %d was ended", i);
  free_all(ids, 6);
}

Test(http_sessions, a_busy_newest_session_does_not_block_initialize) {
  char *ids[10], *extra;
  int fd, i;

  start("\"max_sessions\":10,\"session_idle_ms\":60000");
  for (i = 0; i < 10; i++)
    ids[i] = session();
  fd = hold_stream(ids[9]);
  extra = session(); /* Nine idle sessions to choose from. */
  cr_expect_eq(ping(ids[0]), 404, "not the least recently used one");
  for (i = 1; i < 10; i++)
    cr_expect_eq(ping(ids[i]), 200, "session %d was ended", i);
  close(fd);
  free(extra);
  free_all(ids, 10);
}

Test(http_sessions, busy_sessions_are_never_ended_to_make_room) {
  char *a, *b, *r, *c = NULL;
  int fa, fb, status = 0;
  long long end;

  start("\"max_sessions\":2,\"session_idle_ms\":60000");
  a = session();
  b = session();
  fa = hold_stream(a);
  fb = hold_stream(b);
  r = try_session("127.0.0.1");
  cr_expect_eq(th_http_status(r), 503, "%s", r);
  cr_expect(strstr(r, "\"error\"") != NULL, "%s", r);
  free(r);
  close(fa); /* a is idle once the host notices. */
  for (end = th_now_ms() + 2000; status != 200 && th_now_ms() < end;) {
    r = try_session("127.0.0.1");
    status = th_http_status(r);
    if (status == 200)
      c = th_http_session_id(r);
    free(r);
    usleep(50000);
  }
  cr_expect_eq(status, 200);
  cr_expect_eq(ping(a), 404);
  cr_expect_eq(ping(b), 200);
  close(fb);
  free(a);
  free(b);
  free(c);
}

/* ---- One client against the others (issue 9, item 5) ---- */

Test(http_sessions, a_client_is_capped_at_its_live_sessions) {
  char *ids[3], *r, *other, hdr[256];
  int i;

  start("\"max_sessions_per_client\":3,\"session_idle_ms\":60000");
  for (i = 0; i < 3; i++)
    ids[i] = session();
  r = try_session("127.0.0.1");
  cr_expect_eq(th_http_status(r), 429, "%s", r);
  cr_expect(strstr(r, "\"id\":1,\"error\":{") != NULL, "%s", r);
  cr_expect(strstr(r, "max_sessions_per_client") != NULL, "%s", r);
  cr_expect(th_http_session_id(r) == NULL, "%s", r);
  free(r);
  /* The refusal echoes the id as written, however large. */
  r = http_from("127.0.0.1", "POST", "",
                "{\"jsonrpc\":\"2.0\",\"id\":9007199254740993,"
                "\"method\":\"initialize\",\"params\":{"
                "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},"
                "\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}");
  cr_expect_eq(th_http_status(r), 429, "%s", r);
  cr_expect(strstr(r, "\"id\":9007199254740993,") != NULL, "%s", r);
  free(r);
  other = session_from("127.0.0.2"); /* Someone else is served. */
  for (i = 0; i < 3; i++)
    cr_expect_eq(ping(ids[i]), 200, "the cap ended session %d", i);
  snprintf(hdr, sizeof(hdr), "Mcp-Session-Id: %s\r\n", ids[0]);
  r = th_http(host.port, "DELETE", hdr, NULL, NULL, 3000);
  cr_expect_eq(th_http_status(r), 204, "%s", r);
  free(r);
  free(ids[0]);
  ids[0] = session(); /* Room again. */
  free(other);
  free_all(ids, 3);
}

Test(http_sessions, new_sessions_are_rate_limited_per_client) {
  char *ids[4], *r, *other;
  int i;

  start("\"session_rate_per_client\":1,\"session_burst_per_client\":3");
  for (i = 0; i < 3; i++)
    ids[i] = session();
  r = try_session("127.0.0.1");
  cr_expect_eq(th_http_status(r), 429, "%s", r);
  cr_expect(strstr(r, "Retry-After: 1\r\n") != NULL, "%s", r);
  cr_expect(strstr(r, "\"id\":1,\"error\":{") != NULL, "%s", r);
  cr_expect(strstr(r, "session_rate_per_client") != NULL, "%s", r);
  free(r);
  other = session_from("127.0.0.2"); /* Its own bucket. */
  usleep(1100000);
  ids[3] = session(); /* One more second, one more session. */
  r = try_session("127.0.0.1");
  cr_expect_eq(th_http_status(r), 429, "%s", r);
  free(r);
  free(other);
  free_all(ids, 4);
}

/* The flooder may fill the table, but once it holds more than its share
 * it makes room from its own idle sessions: the honest clients' sessions
 * outlive the flood whether they are older or newer than its sessions,
 * and a newcomer still gets in. */
Test(http_sessions, a_flood_ends_the_flooders_own_sessions) {
  char *old, *mid, *late, *first, *ids[40];
  int i;

  start("\"max_sessions\":10,\"max_sessions_per_client\":10,"
        "\"session_rate_per_client\":1000,\"session_burst_per_client\":1000,"
        "\"session_idle_ms\":60000");
  old = session_from("127.0.0.2");
  first = session();
  for (i = 0; i < 3; i++)
    ids[i] = session();
  mid = session_from("127.0.0.3");
  for (i = 3; i < 40; i++)
    ids[i] = session();
  late = session_from("127.0.0.4");
  cr_expect_eq(ping(old), 200, "the flood ended an older honest session");
  cr_expect_eq(ping(mid), 200, "the flood ended a newer honest session");
  cr_expect_eq(ping(late), 200);
  cr_expect_eq(ping(first), 404, "the flooder kept its oldest session");
  cr_expect_eq(ping(ids[39]), 200);
  free(old);
  free(mid);
  free(late);
  free(first);
  free_all(ids, 40);
}

/* The report's flood with the default limits: one client asks for
 * thousands of sessions at once and holds a GET stream open; it is told
 * 429 long before the table fills, and everyone else is served. */
Test(http_sessions, the_defaults_stop_a_session_flood) {
  char *r, *id, *first = NULL, *other;
  int i, status = 0, fd;

  start("\"session_idle_ms\":60000");
  for (i = 0; i < 2000; i++) {
    r = try_session("127.0.0.1");
    status = th_http_status(r);
    if (status == 200 && first == NULL)
      first = th_http_session_id(r);
    free(r);
    if (status != 200)
      break;
  }
  cr_assert_eq(status, 429, "after %d sessions", i);
  cr_expect(i <= 1000, "%d sessions in a burst", i);
  cr_assert_not_null(first);
  fd = hold_stream(first);
  other = session_from("127.0.0.2");
  id = session_from("127.0.0.3");
  close(fd);
  free(id);
  free(other);
  free(first);
}
