/* test_http_checks.c: the Streamable HTTP transport's request checks
 * against a hostile client (issue 9, items 8 and 13): Host and Origin
 * compared as RFC 3986 authorities and RFC 6454 origins, Content-Type and
 * Accept as media types, Base64 header values with a NUL. Each case is raw
 * bytes to the real binary with the real conformance plugin behind it. */
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
    "\"allowed_origins\":[\"https://app.example.com\","
    "\"http://tool.example.com:8080\"],"
    "\"allowed_hosts\":[\"mcp.example.com\",\"api.example.com:8443\"],"
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

TestSuite(checks, .init = start, .fini = stop, .timeout = 60);

#define INIT                                                                   \
  "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"       \
  "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{"    \
  "\"name\":\"t\",\"version\":\"1\"}}}"
#define META                                                                   \
  "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","     \
  "\"io.modelcontextprotocol/clientCapabilities\":{}}"
#define DISCOVER                                                               \
  "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"server/discover\","              \
  "\"params\":{" META "}}"

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

/* POST /mcp with the given header lines (Host and Content-Length are
 * added) and body; the whole response. */
static char *post_with(const char *headers, const char *body) {
  char *req, *r;
  int n;

  n = asprintf(&req,
               "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s"
               "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
               host.port, headers, strlen(body), body);
  cr_assert(n > 0);
  r = th_http_raw(host.port, req, (size_t)n, 3000);
  free(req);
  return r;
}

#define JSON_BOTH                                                              \
  "Content-Type: application/json\r\n"                                         \
  "Accept: application/json, text/event-stream\r\n"

struct host_case {
  const char *host; /* NULL: no Host line */
  int status;
};

Test(checks, host_is_compared_as_an_exact_authority) {
  char loop4[64], loop6[64];
  struct host_case cases[] = {
      {loop4, 200},
      {loop6, 200},
      {"localhost", 200},
      {"LOCALHOST:8080", 200},
      {"[::1]", 200},
      {"[0:0:0:0:0:0:0:1]:80", 200},
      {"localhost:", 200}, /* an empty port is no port (RFC 3986 6.2.3) */
      {"mcp.example.com", 200},
      {"MCP.Example.COM", 200},
      {"api.example.com:8443", 200},
      /* Not an authority: 400 (RFC 9112 3.2). */
      {"127.0.0.1:evil.com", 400},
      {"localhost:@evil.com", 400},
      {"user@localhost", 400},
      {"localhost:8080:80", 400},
      {"localhost:65536", 400},
      {"localhost:99999999999", 400},
      {"localhost:-1", 400},
      {"localhost:+80", 400},
      {"localhost: 80", 400},
      {"local host", 400},
      {"[::1", 400},
      {"[::1]x", 400},
      {"[::1]:x", 400},
      {"::1", 400},
      {"[127.0.0.1]", 400},
      {"[v1.fe]", 400},
      {"local%6", 400},
      {"local%zzhost", 400},
      {"localhost/x", 400},
      {"localhost?x", 400},
      {"localhost#x", 400},
      {"local\"host", 400},
      /* An authority, but not ours: 403. */
      {"", 403},
      {"evil.com", 403},
      {"localhost.", 403},
      {"127.0.0.1.", 403},
      {"127.1", 403},
      {"2130706433", 403},
      {"0x7f.0.0.1", 403},
      {"local%68ost", 403},
      {"localhost%00", 403},
      {"[::ffff:127.0.0.1]", 403},
      {"[::2]", 403},
      {"localhost.evil.com", 403},
      {"127.0.0.1.evil.com", 403},
      {"localhost,evil.com", 403},
      {"mcp.example.com:1234", 403}, /* an entry without port: none */
      {"mcp.example.com.evil.com", 403},
      {"api.example.com", 403},
      {"api.example.com:443", 403},
  };
  size_t i;
  int got;

  snprintf(loop4, sizeof(loop4), "127.0.0.1:%d", host.port);
  snprintf(loop6, sizeof(loop6), "[::1]:%d", host.port);
  for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    got = health_with_host(cases[i].host);
    cr_expect_eq(got, cases[i].status, "Host: %s -> %d, want %d", cases[i].host,
                 got, cases[i].status);
  }
}

Test(checks, absolute_form_target_must_name_an_allowed_host) {
  int port = host.port;

  cr_expect_eq(th_http_raw_status(
                   host.port, "GET http://evil.com/health HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\nConnection: close\r\n\r\n"),
               403, "absolute-form naming another host");
  cr_expect_eq(
      th_http_raw_status(host.port,
                         "GET http://127.0.0.1:%d/health HTTP/1.1\r\n"
                         "Host: 127.0.0.1\r\nConnection: close\r\n\r\n",
                         port),
      200);
  cr_expect_eq(th_http_raw_status(
                   host.port, "GET HTTP://LOCALHOST/health HTTP/1.1\r\n"
                              "Host: localhost\r\nConnection: close\r\n\r\n"),
               200);
  cr_expect_eq(th_http_raw_status(
                   host.port, "GET http://[::1]:1/health HTTP/1.1\r\n"
                              "Host: localhost\r\nConnection: close\r\n\r\n"),
               200);
  /* Refused today, refused still: the Host line is not ours. */
  cr_expect_eq(th_http_raw_status(
                   host.port, "GET http://localhost/health HTTP/1.1\r\n"
                              "Host: evil.com\r\nConnection: close\r\n\r\n"),
               403);
  cr_expect_eq(th_http_raw_status(
                   host.port, "GET http://localhost./health HTTP/1.1\r\n"
                              "Host: localhost\r\nConnection: close\r\n\r\n"),
               403);
  cr_expect_eq(
      th_http_raw_status(host.port,
                         "POST http://evil.com/mcp HTTP/1.1\r\n"
                         "Host: 127.0.0.1\r\n" JSON_BOTH
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         strlen(INIT), INIT),
      403, "absolute-form POST to /mcp");
  /* Userinfo and other schemes have no place in a request target. */
  cr_expect_eq(
      th_http_raw_status(host.port,
                         "GET http://127.0.0.1@evil.com/health HTTP/1.1\r\n"
                         "Host: 127.0.0.1\r\nConnection: close\r\n\r\n"),
      400);
  cr_expect_eq(
      th_http_raw_status(host.port,
                         "GET http://evil.com@127.0.0.1/health HTTP/1.1\r\n"
                         "Host: 127.0.0.1\r\nConnection: close\r\n\r\n"),
      400);
  cr_expect_eq(th_http_raw_status(
                   host.port, "GET ftp://127.0.0.1/health HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\nConnection: close\r\n\r\n"),
               400);
}

struct origin_case {
  const char *origin;
  int status;
  int cors; /* an allowed_origins entry: preflights get CORS headers */
};

/* GET /health with an Origin line: the check is the same for every
 * endpoint, and this one mints no session. */
static int health_with_origin(const char *origin) {
  return th_http_raw_status(host.port,
                            "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Origin: %s\r\nConnection: close\r\n\r\n",
                            origin);
}

Test(checks, origin_is_compared_as_an_exact_origin) {
  struct origin_case cases[] = {
      {"http://localhost:6274", 200, 0},
      {"http://127.0.0.1:6274", 200, 0},
      {"http://[::1]:6274", 200, 0},
      {"https://localhost", 200, 0},
      {"HTTP://LOCALHOST:6274", 200, 0},
      {"https://app.example.com", 200, 1},
      {"https://APP.example.com", 200, 1},
      {"http://tool.example.com:8080", 200, 1},
      {"http://localhost:1@evil.com", 403, 0},
      {"http://localhost@evil.com", 403, 0},
      {"http://evil.com@localhost", 403, 0},
      {"null", 403, 0},
      {"http://localhost:6274/", 403, 0},
      {"http://localhost/evil", 403, 0},
      {"http://localhost?x", 403, 0},
      {"http://localhost.", 403, 0},
      {"http://localhost:", 403, 0},
      {"http://localhost:abc", 403, 0},
      {"http://localhost:99999", 403, 0},
      {"http://localhost.evil.com", 403, 0},
      {"http://127.0.0.1.evil.com", 403, 0},
      {"http://local%68ost", 403, 0},
      {"ftp://localhost", 403, 0},
      {"localhost", 403, 0},
      {"http://", 403, 0},
      {"http://[::1", 403, 0},
      {"https://app.example.com/", 403, 0},
      {"https://app.example.com.evil.com", 403, 0},
      {"https://app.example.com:443", 403, 0},
      {"http://app.example.com", 403, 0},
      {"http://tool.example.com", 403, 0},
      {"http://evil.example.com", 403, 0},
  };
  char *req, *r;
  size_t i;
  int got, n;

  for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    got = health_with_origin(cases[i].origin);
    cr_expect_eq(got, cases[i].status, "Origin: %s -> %d, want %d",
                 cases[i].origin, got, cases[i].status);
    if (!cases[i].cors)
      continue;
    n = asprintf(&req,
                 "OPTIONS /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: %s\r\n"
                 "Access-Control-Request-Method: POST\r\n"
                 "Connection: close\r\n\r\n",
                 cases[i].origin);
    r = th_http_raw(host.port, req, (size_t)n, 3000);
    cr_expect(th_http_status(r) == 204 &&
                  strstr(r, "Access-Control-Allow-Origin: ") != NULL &&
                  strstr(r, cases[i].origin) != NULL,
              "preflight from %s -> %s", cases[i].origin, r);
    free(r);
    free(req);
  }
  cr_expect_eq(th_http_raw_status(host.port,
                                  "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Origin: http://localhost:6274\r\n"
                                  "Origin: http://evil.example.com\r\n"
                                  "Connection: close\r\n\r\n"),
               403, "two Origin lines");
}

struct media_case {
  const char *value;
  int status;
};

#define MODERN                                                                 \
  "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: server/discover\r\n"

Test(checks, content_type_is_compared_as_a_media_type) {
  struct media_case cases[] = {
      {"application/json", 200},
      {"Application/JSON", 200},
      {"application/json; charset=utf-8", 200},
      {"application/json;charset=\"utf-8\"", 200},
      {"application/json ; charset=utf-8", 200},
      {"application/json;", 200},
      {"application/jsonp", 415},
      {"application/json-seq", 415},
      {"application/jsonx", 415},
      {"application/json, text/plain", 415},
      {"application/json/x", 415},
      {"application/json x", 415},
      {"application/json;charset", 415},
      {"text/json", 415},
      {"application", 415},
      {"", 415},
  };
  char hdr[256], *r;
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    snprintf(hdr, sizeof(hdr),
             "Content-Type: %s\r\n"
             "Accept: application/json, text/event-stream\r\n" MODERN,
             cases[i].value);
    r = post_with(hdr, DISCOVER);
    cr_expect_eq(th_http_status(r), cases[i].status, "Content-Type: %s -> %s",
                 cases[i].value, r);
    free(r);
  }
}

Test(checks, accept_is_compared_as_media_ranges) {
  struct media_case cases[] = {
      {"application/json, text/event-stream", 200},
      {"text/event-stream, application/json", 200},
      {"*/*", 200},
      {"application/*, text/*", 200},
      {"application/json;q=0.5, text/event-stream;q=0.9", 200},
      {"APPLICATION/JSON, TEXT/EVENT-STREAM", 200},
      {"text/event-stream;x=\"a,b\", application/json", 200},
      {"application/json ; q=1.000 , text/event-stream", 200},
      {"*/*;q=0.1, application/json;q=1", 200},
      {"application/json,,text/event-stream", 200},
      {"application/jsonx, text/event-streamy", 406},
      {"application/json", 406},
      {"text/event-stream", 406},
      {"application/json;q=0, text/event-stream", 406},
      {"*/*;q=0", 406},
      {"*/*, application/json;q=0", 406},
      {"application/json-seq, text/event-stream", 406},
      {"text/*, application/jsonp", 406},
      {"application/json;q=2, text/event-stream", 406},
      {"*/json, text/event-stream", 406},
  };
  char hdr[512], *r, *id;
  size_t i;

  /* One session, so that the cases mint none: its requests need both. */
  r = post_with(JSON_BOTH, INIT);
  id = th_http_session_id(r);
  cr_assert_not_null(id, "%s", r);
  free(r);
  for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    snprintf(hdr, sizeof(hdr),
             "Content-Type: application/json\r\nAccept: %s\r\n"
             "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n",
             cases[i].value, id);
    r = post_with(hdr, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}");
    cr_expect_eq(th_http_status(r), cases[i].status, "Accept: %s -> %s",
                 cases[i].value, r);
    free(r);
  }
  free(id);
  /* The stateless era takes either. */
  r = post_with("Content-Type: application/json\r\nAccept: text/*\r\n" MODERN,
                DISCOVER);
  cr_expect_eq(th_http_status(r), 200, "%s", r);
  free(r);
  r = post_with("Content-Type: application/json\r\n"
                "Accept: application/jsonx, text/event-streamy\r\n" MODERN,
                DISCOVER);
  cr_expect_eq(th_http_status(r), 406, "%s", r);
  free(r);
}

Test(checks, base64_header_values_with_nul_are_refused) {
  char *r;

  r = post_with(JSON_BOTH "MCP-Protocol-Version: 2026-07-28\r\n"
                          "Mcp-Method: =?base64?c2VydmVyL2Rpc2NvdmVy?=\r\n",
                DISCOVER);
  cr_expect_eq(th_http_status(r), 200, "%s", r);
  free(r);
  /* "server/discover\0tools/call" */
  r = post_with(JSON_BOTH "MCP-Protocol-Version: 2026-07-28\r\n"
                          "Mcp-Method: "
                          "=?base64?c2VydmVyL2Rpc2NvdmVyAHRvb2xzL2NhbGw=?=\r\n",
                DISCOVER);
  cr_expect_eq(th_http_status(r), 400, "%s", r);
  cr_expect(strstr(r, "-32020") != NULL, "%s", r);
  free(r);
  /* "test_simple_text\0x" as Mcp-Name */
  r = post_with(JSON_BOTH "MCP-Protocol-Version: 2026-07-28\r\n"
                          "Mcp-Method: tools/call\r\n"
                          "Mcp-Name: =?base64?dGVzdF9zaW1wbGVfdGV4dAB4?=\r\n",
                "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/call\","
                "\"params\":{\"name\":\"test_simple_text\",\"arguments\":{},"
                "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
                "\"2026-07-28\",\"io.modelcontextprotocol/"
                "clientCapabilities\":{}}}}");
  cr_expect_eq(th_http_status(r), 400, "%s", r);
  cr_expect(strstr(r, "-32020") != NULL, "%s", r);
  free(r);
  /* A second Mcp-Method line could route an intermediary elsewhere. */
  r = post_with(JSON_BOTH "MCP-Protocol-Version: 2026-07-28\r\n"
                          "Mcp-Method: server/discover\r\n"
                          "Mcp-Method: tools/call\r\n",
                DISCOVER);
  cr_expect_eq(th_http_status(r), 400, "%s", r);
  free(r);
}
