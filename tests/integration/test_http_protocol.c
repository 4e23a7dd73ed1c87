/* test_http_protocol.c: the JSON-RPC findings of issue 9 on the HTTP body
 * side, against the real host: bytes after the body's value, control
 * characters, ids echoed as written (on the transport's own refusals too),
 * a second initialize on a session, a batch at the size limit that must
 * not hold /health, a single message of that size that must not either,
 * and arguments that reach a plugin as the client wrote them. */
#include "harness.h"
#include "http_host.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static th_http_host host;

static const char config[] = "{\"plugin_dir\":\"" PH_TEST_PLUGIN_DIR "\","
                             "\"departments\":{\"default\":{\"plugins\":["
                             "{\"plugin\":\"ok\",\"prefix\":\"ok\"},"
                             "{\"plugin\":\"args\",\"prefix\":\"args\"}]}}}";

static void start(void) {
  char *cfg = th_write_temp(config, ".json");

  th_http_start(&host, cfg, 5000);
  unlink(cfg);
  free(cfg);
}

static void stop(void) {
  th_http_stop(&host);
}

TestSuite(http_protocol, .init = start, .fini = stop, .timeout = 60);

#define INIT(version)                                                          \
  "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"       \
  "\"protocolVersion\":\"" version "\",\"capabilities\":{},\"clientInfo\":{"   \
  "\"name\":\"t\",\"version\":\"1\"}}}"
#define META                                                                   \
  "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","     \
  "\"io.modelcontextprotocol/clientCapabilities\":{}}"

static char *http(const char *headers, const char *body) {
  return th_http(host.port, "POST", headers, body, NULL, 3000);
}

static char *new_session(const char *init) {
  char *r = http("", init), *id = th_http_session_id(r);

  cr_assert_eq(th_http_status(r), 200, "%s", r);
  cr_assert_not_null(id, "%s", r);
  free(r);
  return id;
}

static char *on_session(const char *id, const char *body) {
  char hdr[256];

  snprintf(hdr, sizeof(hdr), "Mcp-Session-Id: %s\r\n", id);
  return http(hdr, body);
}

static void expect_in(const char *r, int status, const char *needle) {
  cr_expect_eq(th_http_status(r), status, "%s", r);
  cr_expect_not_null(strstr(r, needle), "want %s in %s", needle, r);
}

Test(http_protocol, bytes_after_a_body_are_a_parse_error) {
  char *sid = new_session(INIT("2025-11-25")), *r;

  /* An initialize with more after it mints no session. */
  r = http("", INIT("2025-11-25") "garbage");
  expect_in(r, 400, "-32700");
  cr_expect_null(strcasestr(r, "Mcp-Session-Id"), "%s", r);
  free(r);
  r = http("", INIT("2025-11-25") " {}");
  expect_in(r, 400, "bytes after the JSON value");
  cr_expect_null(strcasestr(r, "Mcp-Session-Id"), "%s", r);
  free(r);
  r = on_session(sid, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}"
                      "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}");
  expect_in(r, 400, "-32700");
  free(r);
  r = http(
      "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: server/discover\r\n",
      "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"server/discover\","
      "\"params\":{" META "}} x");
  expect_in(r, 400, "-32700");
  free(r);
  /* Whitespace after it is fine. */
  r = on_session(sid, "\r\n{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\"}"
                      " \r\n\t");
  expect_in(r, 200, "\"id\":4,\"result\"");
  free(r);
  free(sid);
}

Test(http_protocol, control_characters_in_a_body_are_refused) {
  char *sid = new_session(INIT("2025-11-25")), *r;

  r = on_session(sid, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"pi\x01ng\"}");
  expect_in(r, 400, "-32700");
  free(r);
  r = on_session(sid,
                 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"pi\\u0000ng\"}");
  expect_in(r, 400, "-32700");
  free(r);
  r = on_session(sid, "{\"jsonrpc\":\"2.0\",\x0b\"id\":2,\"method\":\"ping\"}");
  expect_in(r, 400, "-32700");
  free(r);
  free(sid);
}

Test(http_protocol, ids_are_echoed_as_written) {
  char *sid = new_session(INIT("2025-11-25")), *r;

  r = on_session(sid, "{\"jsonrpc\":\"2.0\",\"id\":9007199254740993,"
                      "\"method\":\"ping\"}");
  expect_in(r, 200, "\"id\":9007199254740993,");
  free(r);
  r = on_session(sid, "{\"jsonrpc\":\"1.0\",\"id\":-18446744073709551617,"
                      "\"method\":\"ping\"}");
  expect_in(r, 400, "\"id\":-18446744073709551617,");
  free(r);
  /* The transport's own refusal of a modern request's headers. */
  r = http("MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\n",
           "{\"jsonrpc\":\"2.0\",\"id\":9007199254740993,\"method\":"
           "\"server/discover\",\"params\":{" META "}}");
  expect_in(r, 400, "-32020");
  cr_expect_not_null(strstr(r, "\"id\":9007199254740993,"), "%s", r);
  free(r);
  r = http(
      "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: server/discover\r\n",
      "{\"jsonrpc\":\"2.0\",\"id\":\"\\u0041\",\"method\":"
      "\"server/discover\",\"params\":{" META "}}");
  expect_in(r, 200, "\"id\":\"\\u0041\",");
  free(r);
  free(sid);
}

Test(http_protocol, a_second_initialize_on_a_session_is_refused) {
  char *sid = new_session(INIT("2025-11-25")), *r;

  /* An error like any other of the legacy era: status 200. */
  r = on_session(sid, INIT("2025-03-26"));
  expect_in(r, 200, "already initialized");
  free(r);
  /* Still 2025-11-25: no batches. */
  r = on_session(sid, "[{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}]");
  expect_in(r, 400, "only accepted on a session that negotiated 2025-03-26");
  free(r);
  r = on_session(sid, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}");
  expect_in(r, 200, "\"id\":3,\"result\"");
  free(r);
  free(sid);
}

/* How long /health may wait for a big message: a slice of the loop, four
 * times longer under the sanitizers. */
#ifdef PH_TEST_ASAN
#define SLICE_MS 1000
#else
#define SLICE_MS 250
#endif

#define MODERN_HEADERS(method)                                                 \
  "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: " method "\r\n"
#define CALL_HEADERS MODERN_HEADERS("tools/call") "Mcp-Name: args_show\r\n"

/* A 2026-07-28 tools/call of args_show whose arguments are {"x":X}, X
 * being n bytes of value text made by fill(); about max_message_bytes in
 * all when n is near 4 MiB. */
static char *big_call(size_t n, void (*fill)(char *, size_t)) {
  static const char head[] = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/"
                             "call\",\"params\":{" META
                             ",\"name\":\"args_show\",\"arguments\":{\"x\":";
  size_t h = sizeof(head) - 1;
  char *body = malloc(h + n + 4);

  memcpy(body, head, h);
  fill(body + h, n);
  memcpy(body + h + n, "}}}", 4);
  return body;
}

/* [1,1,...,1]: one value in two bytes, the densest JSON there is. */
static void fill_ones(char *p, size_t n) {
  size_t i;

  memset(p, ',', n);
  for (i = 1; i < n - 1; i += 2)
    p[i] = '1';
  p[0] = '[';
  p[n - 1] = ']';
}

/* ["xx...x","xx...x",...]: strings of 40 bytes, fifty thousand values in
 * two megabytes. */
static void fill_strings(char *p, size_t n) {
  size_t i = 0;

  memset(p, ' ', n);
  p[i++] = '[';
  while (i + 44 < n) {
    if (i > 1)
      p[i++] = ',';
    p[i++] = '"';
    memset(p + i, 'x', 40);
    i += 40;
    p[i++] = '"';
  }
  p[i] = ']';
}

/* How long /health waits while the host reads and answers body (sent with
 * headers) on another connection; the answer goes to *answer. */
static long long health_wait(const char *headers, const char *body,
                             char **answer) {
  const char *get = "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";
  long long sent, waited;
  int fd, health;
  char *r;

  fd = th_http_send(host.port, "POST", headers, body);
  sent = th_now_ms();
  health = th_dial(host.port);
  cr_assert(write(health, get, strlen(get)) == (ssize_t)strlen(get));
  r = th_read_some(health, "ok\"}", 15000);
  waited = th_now_ms() - sent;
  close(health);
  cr_expect_eq(th_http_status(r), 200, "%s", r);
  free(r);
  *answer = th_read_some(fd, "}}", 15000);
  close(fd);
  return waited;
}

/* The measurement: while the host answers a body at the size limit
 * of two million invalid members, /health on another connection waits no
 * longer than the host takes to read the body. */
Test(http_protocol, a_huge_batch_does_not_hold_health) {
  char *sid = new_session(INIT("2025-03-26")), hdr[256], *r, *body;
  size_t n = (4u << 20) - 401; /* Odd: "[1,1,...,1]". */
  long long waited;

  body = malloc(n + 1);
  fill_ones(body, n);
  body[n] = '\0';
  snprintf(hdr, sizeof(hdr), "Mcp-Session-Id: %s\r\n", sid);
  waited = health_wait(hdr, body, &r);
  free(body);
  cr_expect_lt(waited, 1000, "/health waited %lld ms", waited);
  expect_in(r, 400, "a batch of more than 100 members");
  cr_expect_lt(strlen(r), 4096, "a %zu-byte answer", strlen(r));
  free(r);
  free(sid);
}

/* Two million values in one legal-size message would cost the loop half a
 * second to parse and more to walk: past limits.max_json_values it is
 * refused before any parse, and /health does not wait for it. */
Test(http_protocol, a_message_of_too_many_values_is_refused_at_once) {
  char *body = big_call((4u << 20) - 400, fill_ones), *r;
  long long waited = health_wait(CALL_HEADERS, body, &r);

  free(body);
  expect_in(r, 400, "more than 100000 JSON values");
  expect_in(r, 400, "\"id\":7");
  cr_expect_lt(waited, SLICE_MS, "/health waited %lld ms", waited);
  free(r);
}

/* Under the limits, a big message is served, and /health waits no longer
 * than a slice for it. */
Test(http_protocol, a_big_message_under_the_limits_does_not_hold_health) {
  char *body = big_call(2u << 20, fill_strings), *r;
  long long waited = health_wait(CALL_HEADERS, body, &r);

  free(body);
  expect_in(r, 200, "\"result\":{\"content\"");
  cr_expect_gt(strlen(r), 2u << 20, "a %zu-byte answer", strlen(r));
  cr_expect_lt(waited, SLICE_MS, "/health waited %lld ms", waited);
  free(r);
}

/* A plugin gets the arguments as the client wrote them: cJSON would round
 * 9007199254740993 to ...992 and re-escape the string. */
Test(http_protocol, arguments_reach_the_plugin_as_written) {
  char *r = http(MODERN_HEADERS("tools/call") "Mcp-Name: args_show\r\n",
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                 "\"params\":{" META ",\"name\":\"args_show\",\"arguments\":"
                 "{\"n\": 9007199254740993,\"s\":\"\\u00e9\\/\"}}}");

  expect_in(r, 200, "9007199254740993");
  expect_in(r, 200, "\\\\u00e9\\\\/");
  free(r);
}
