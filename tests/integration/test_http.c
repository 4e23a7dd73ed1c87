/* test_http.c: plughost over Streamable HTTP, spoken raw over sockets, for
 * the status codes, sessions, replay, limits and misbehaving clients that
 * the conformance suite does not cover. */
#include "harness.h"
#include "http_host.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static th_http_host host;

static const char config[] =
    "{\"plugin_dir\":\"" PH_TEST_PLUGIN_DIR "\",\"log_level\":\"debug\","
    "\"allowed_origins\":[\"https://app.example.com\"],"
    "\"limits\":{\"max_message_bytes\":2048,\"max_header_bytes\":2048,"
    "\"header_timeout_ms\":300,\"session_idle_ms\":1000,"
    "\"max_inflight_per_session\":2},"
    "\"departments\":{\"default\":{\"plugins\":["
    "{\"plugin\":\"conformance\",\"prefix\":\"\"},{\"plugin\":\"slow\"}]}}}";

static void start(void) {
  char *cfg = th_write_temp(config, ".json");

  th_http_start(&host, cfg, 5000);
  free(cfg);
}

static void stop(void) {
  th_http_stop(&host);
}

TestSuite(http, .init = start, .fini = stop, .timeout = 60);

/* One request on its own connection; returns the whole response. */
static char *http(const char *method, const char *headers, const char *body,
                  const char *until, int timeout_ms) {
  return th_http(host.port, method, headers, body, until, timeout_ms);
}

#define INIT                                                                   \
  "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"       \
  "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{"    \
  "\"name\":\"t\",\"version\":\"1\"}}}"
#define META                                                                   \
  "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","     \
  "\"io.modelcontextprotocol/clientCapabilities\":{}}"

static char *new_session(void) {
  char *r = http("POST", "", INIT, NULL, 2000), *id = th_http_session_id(r);

  cr_assert_eq(th_http_status(r), 200, "%s", r);
  cr_assert(id != NULL && strlen(id) >= 16);
  free(r);
  return id;
}

static char *on_session(const char *id, const char *method, const char *body,
                        const char *until) {
  char hdr[256];

  snprintf(hdr, sizeof(hdr),
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n", id);
  return http(method, hdr, body, until, 3000);
}

static void expect(const char *method, const char *headers, const char *body,
                   int status, const char *needle) {
  char *r = http(method, headers, body, NULL, 3000);

  cr_expect_eq(th_http_status(r), status, "%s %s -> %s", method, body, r);
  if (needle != NULL)
    cr_expect(strstr(r, needle) != NULL, "missing %s in %s", needle, r);
  free(r);
}

Test(http, health_and_ready) {
  char req[128];
  int fd = th_dial(host.port);
  char *r;

  snprintf(req, sizeof(req), "GET /ready HTTP/1.1\r\nHost: localhost\r\n\r\n");
  cr_assert(write(fd, req, strlen(req)) > 0);
  r = th_read_some(fd, "ready\"}", 2000);
  cr_expect(strstr(r, "200 OK") && strstr(r, "\"ready\""), "%s", r);
  free(r);
  close(fd);
  fd = th_dial(host.port);
  snprintf(req, sizeof(req), "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n");
  cr_assert(write(fd, req, strlen(req)) > 0);
  r = th_read_some(fd, "ok\"}", 2000);
  cr_expect(strstr(r, "200 OK") != NULL, "%s", r);
  free(r);
  close(fd);
}

Test(http, legacy_session_lifecycle) {
  char *id = new_session(), *r;

  r = on_session(
      id, "POST",
      "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", NULL);
  cr_expect_eq(th_http_status(r), 202, "%s", r);
  free(r);
  r = on_session(id, "POST",
                 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}",
                 NULL);
  cr_expect_eq(th_http_status(r), 200);
  cr_expect(strstr(r, "test_simple_text") != NULL);
  free(r);
  r = on_session(id, "DELETE", NULL, NULL);
  cr_expect_eq(th_http_status(r), 204, "%s", r);
  free(r);
  r = on_session(id, "POST",
                 "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}", NULL);
  cr_expect_eq(th_http_status(r), 404, "%s", r);
  free(r);
  free(id);
}

Test(http, legacy_status_codes) {
  char *id = new_session(), hdr[256];

  expect("POST", "", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 400,
         "Mcp-Session-Id");
  expect("POST", "Mcp-Session-Id: nosuchsession\r\n",
         "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 404, "-32001");
  snprintf(hdr, sizeof(hdr),
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 1999-01-01\r\n", id);
  expect("POST", hdr, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 400,
         NULL);
  snprintf(hdr, sizeof(hdr),
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-03-26\r\n", id);
  expect("POST", hdr, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 200,
         "\"result\":{}");
  expect("PUT", "", "{}", 405, NULL);
  free(id);
}

Test(http, origin_and_host) {
  char req[256], *r;
  int fd;

  expect("POST", "Origin: http://evil.example.com\r\n", INIT, 403, NULL);
  expect("POST", "Origin: http://localhost:6274\r\n", INIT, 200, NULL);
  expect("POST", "Origin: https://app.example.com\r\n", INIT, 200,
         "Access-Control-Allow-Origin: https://app.example.com");
  expect("OPTIONS",
         "Origin: https://app.example.com\r\n"
         "Access-Control-Request-Method: POST\r\n",
         NULL, 204, "Mcp-Session-Id");
  fd = th_dial(host.port);
  snprintf(req, sizeof(req),
           "POST /mcp HTTP/1.1\r\nHost: evil.example.com\r\n"
           "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  cr_assert(write(fd, req, strlen(req)) > 0);
  r = th_read_some(fd, "}", 2000);
  cr_expect_eq(th_http_status(r), 403, "%s", r);
  free(r);
  close(fd);
}

Test(http, limits) {
  char *big = malloc(4096), hdr[4096];

  memset(big, 'x', 4095);
  big[4095] = '\0';
  /* The HTTP layer's own refusals explain themselves in JSON-RPC. */
  expect("POST", "", big, 413, "\"code\":-32600");
  snprintf(hdr, sizeof(hdr), "X-Filler: %.3000s\r\n", big);
  expect("POST", hdr, INIT, 431, "\"code\":-32600");
  free(big);
}

Test(http, modern_status_codes) {
  const char *h = "MCP-Protocol-Version: 2026-07-28\r\n"
                  "Mcp-Method: server/discover\r\n";

  expect("POST", h,
         "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"server/discover\","
         "\"params\":{" META "}}",
         200, "\"resultType\":\"complete\"");
  expect("POST", h,
         "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"server/discover\","
         "\"params\":{}}",
         400, "-32602");
  expect("POST", "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: ping\r\n",
         "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\",\"params\":{" META
         "}}",
         404, "-32601");
  expect("POST",
         "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\n",
         "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"server/discover\","
         "\"params\":{" META "}}",
         400, "-32020");
  expect("POST",
         "MCP-Protocol-Version: 1900-01-01\r\nMcp-Method: server/discover\r\n",
         "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"server/discover\","
         "\"params\":{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
         "\"1900-01-01\",\"io.modelcontextprotocol/clientCapabilities\":{}}}}",
         400, "-32022");
  expect("POST",
         "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n"
         "Mcp-Name: test_missing_capability\r\n",
         "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{"
         "\"name\":\"test_missing_capability\",\"arguments\":{}," META "}}",
         400, "-32021");
  expect("POST",
         "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n"
         "Mcp-Name: =?base64?dGVzdF9zaW1wbGVfdGV4dA==?=\r\n",
         "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/call\",\"params\":{"
         "\"name\":\"test_simple_text\",\"arguments\":{}," META "}}",
         200, "simple text");
  expect("GET", "", NULL, 405, NULL);
  expect("DELETE", "", NULL, 405, NULL);
}

Test(http, session_expires) {
  char *id = new_session(), *r;

  sleep(3); /* session_idle_ms is 1000; the sweep runs every second. */
  r = on_session(id, "POST",
                 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}", NULL);
  cr_expect_eq(th_http_status(r), 404, "%s", r);
  free(r);
  free(id);
}

Test(http, last_event_id_replay) {
  char *id = new_session(), *r, hdr[256], last[32] = "";
  const char *p;
  int progress = 0;

  r = on_session(id, "POST",
                 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\","
                 "\"params\":{\"name\":\"test_tool_with_progress\","
                 "\"arguments\":{},\"_meta\":{\"progressToken\":7}}}",
                 "\"id\":2,\"result\"");
  cr_assert(strstr(r, "text/event-stream") != NULL, "%s", r);
  for (p = r; (p = strstr(p, "notifications/progress")) != NULL; p++)
    progress++;
  cr_expect_eq(progress, 3);
  /* The priming event names the stream; replay everything after it. */
  p = strstr(r, "id: ");
  cr_assert(p != NULL);
  sscanf(p + 4, "%31[0-9-]", last);
  free(r);
  snprintf(hdr, sizeof(hdr),
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n"
           "Last-Event-ID: %s\r\n",
           id, last);
  r = http("GET", hdr, NULL, "\"id\":2,\"result\"", 3000);
  cr_expect_eq(th_http_status(r), 200, "%s", r);
  progress = 0;
  for (p = r; (p = strstr(p, "notifications/progress")) != NULL; p++)
    progress++;
  cr_expect_eq(progress, 3, "%s", r);
  cr_expect(strstr(r, "\"id\":2,\"result\"") != NULL, "%s", r);
  free(r);
  free(id);
}

/* SEP-1699: test_reconnection has the host close its POST stream mid-call;
 * the result arrives when the client resumes with Last-Event-ID. The
 * request names 2025-03-26, as the conformance suite's does: the stream is
 * primed all the same, since nothing could be resumed without an id. */
Test(http, sse_polling_resumes_a_closed_stream) {
  char *id = new_session(), *r, hdr[256], last[32] = "";
  const char *p;

  snprintf(hdr, sizeof(hdr),
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-03-26\r\n", id);
  r = http("POST", hdr,
           "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\","
           "\"params\":{\"name\":\"test_reconnection\",\"arguments\":{}}}",
           NULL, 3000);
  cr_assert(strstr(r, "text/event-stream") != NULL, "%s", r);
  cr_expect(strstr(r, "retry: ") != NULL, "%s", r);
  cr_expect(strstr(r, "\"result\"") == NULL, "not closed mid-call: %s", r);
  p = strstr(r, "id: ");
  cr_assert(p != NULL, "%s", r);
  sscanf(p + 4, "%31[0-9-]", last);
  free(r);
  snprintf(hdr, sizeof(hdr),
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-03-26\r\n"
           "Last-Event-ID: %s\r\n",
           id, last);
  r = http("GET", hdr, NULL, "Reconnection test completed", 3000);
  cr_expect_eq(th_http_status(r), 200, "%s", r);
  cr_expect(strstr(r, "\"id\":2,\"result\"") != NULL, "%s", r);
  free(r);
  free(id);
}

Test(http, slow_client_is_cut_off) {
  int slow = th_dial(host.port);
  const char *part = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
  char *r;

  cr_assert(write(slow, part, strlen(part)) > 0);
  expect("POST", "", INIT, 200, NULL); /* Everyone else is served. */
  r = th_read_some(slow, NULL, 3000);  /* header_timeout_ms is 300. */
  cr_expect(r[0] == '\0' || th_http_status(r) == 408, "%s", r);
  free(r);
  close(slow);
}

Test(http, disconnect_cancels_call) {
  char *id = new_session(), req[1024], *text;
  int fd = th_dial(host.port), n;
  const char *body = "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\","
                     "\"params\":{\"name\":\"slow_sleep\",\"arguments\":{"
                     "\"ms\":20000}}}";

  n = snprintf(req, sizeof(req),
               "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Content-Type: application/json\r\n"
               "Accept: application/json, text/event-stream\r\n"
               "Mcp-Session-Id: %s\r\nContent-Length: %zu\r\n\r\n%s",
               id, strlen(body), body);
  cr_assert(write(fd, req, (size_t)n) == n);
  usleep(300000);
  close(fd);
  text = th_http_wait_log(&host, "slow_sleep cancelled by the client", 4000);
  cr_expect(text != NULL, "the call was not cancelled");
  free(text);
  free(id);
}

Test(http, modern_listen_stream) {
  int fd = th_dial(host.port), n;
  char req[1024], *r;
  const char *body =
      "{\"jsonrpc\":\"2.0\",\"id\":\"l1\",\"method\":\"subscriptions/listen\","
      "\"params\":{\"notifications\":{\"toolsListChanged\":true}," META "}}";

  n = snprintf(req, sizeof(req),
               "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Content-Type: application/json\r\n"
               "Accept: application/json, text/event-stream\r\n"
               "MCP-Protocol-Version: 2026-07-28\r\n"
               "Mcp-Method: subscriptions/listen\r\n"
               "Content-Length: %zu\r\n\r\n%s",
               strlen(body), body);
  cr_assert(write(fd, req, (size_t)n) == n);
  r = th_read_some(fd, "acknowledged", 2000);
  cr_expect(strstr(r, "text/event-stream") && strstr(r, "acknowledged"), "%s",
            r);
  free(r);
  expect("POST",
         "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n"
         "Mcp-Name: test_trigger_tool_change\r\n",
         "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
         "\"name\":\"test_trigger_tool_change\",\"arguments\":{}," META "}}",
         200, NULL);
  r = th_read_some(fd, "list_changed", 2000);
  cr_expect(strstr(r, "tools/list_changed") &&
                strstr(r, "\"io.modelcontextprotocol/subscriptionId\":\"l1\""),
            "%s", r);
  free(r);
  close(fd);
}
