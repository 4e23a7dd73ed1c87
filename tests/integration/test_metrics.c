/* test_metrics.c: GET /metrics of the real host after real calls: the
 * counts it shows, the page passing `promtool check metrics` (Debian's
 * prometheus package), the metrics_listen listener, reloads counted, and
 * tool labels only for tools the current generation has. */
#include "harness.h"
#include "http_host.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INIT                                                                   \
  "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"       \
  "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{"    \
  "\"name\":\"t\",\"version\":\"1\"}}}"
#define INITIALIZED                                                            \
  "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}"

static th_http_host host;
static char *config_path;

static char *config_text(const char *deny) {
  char *text;

  cr_assert(asprintf(&text,
                     "{\"plugin_dir\":\"%s\",\"metrics_listen\":"
                     "\"127.0.0.1:0\",\"departments\":{\"default\":{"
                     "\"deny\":[%s],\"plugins\":[{\"plugin\":\"echo\","
                     "\"prefix\":\"echo\"}]}}}",
                     PH_TEST_PLUGIN_DIR, deny) > 0);
  return text;
}

static void start(void) {
  char *text = config_text("");

  config_path = th_write_temp(text, ".json");
  free(text);
  th_http_start(&host, config_path, 5000);
}

static void stop(void) {
  th_http_stop(&host);
  unlink(config_path);
  free(config_path);
}

TestSuite(metrics, .init = start, .fini = stop, .timeout = 60);

/* The body of GET path on port (the status checked), caller frees. */
static char *get(int port, const char *path, int status) {
  char *r, *body;
  char req[256];

  snprintf(req, sizeof(req),
           "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
           path);
  r = th_http_raw(port, req, strlen(req), 3000);
  cr_assert_eq(th_http_status(r), status, "GET %s: %s", path, r);
  body = strstr(r, "\r\n\r\n");
  cr_assert(body != NULL);
  body = strdup(body + 4);
  free(r);
  return body;
}

/* The value of the sample whose line starts with `series ` (name and
 * labels exactly as rendered), or -1 when the page has none. */
static double sample(const char *page, const char *series) {
  size_t n = strlen(series);
  const char *p;

  for (p = page; p != NULL && *p != '\0';
       p = strchr(p, '\n'), p = p ? p + 1 : p)
    if (strncmp(p, series, n) == 0 && p[n] == ' ')
      return atof(p + n + 1);
  return -1;
}

static char *session(void) {
  char *r = th_http(host.port, "POST", "", INIT, NULL, 3000);
  char *id = th_http_session_id(r), hdr[256];

  cr_assert_eq(th_http_status(r), 200, "%s", r);
  free(r);
  snprintf(hdr, sizeof(hdr),
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n", id);
  free(th_http(host.port, "POST", hdr, INITIALIZED, NULL, 3000));
  return id;
}

/* tools/call of name with arguments args on session id; returns the
 * response. */
static char *call(const char *id, const char *name, const char *args) {
  char hdr[256], body[512];

  snprintf(hdr, sizeof(hdr),
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n", id);
  snprintf(body, sizeof(body),
           "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\","
           "\"params\":{\"name\":\"%s\",\"arguments\":%s}}",
           name, args);
  return th_http(host.port, "POST", hdr, body, NULL, 3000);
}

/* The port metrics_listen bound, from the log. */
static int metrics_port(void) {
  char *log = th_http_wait_log(&host, "/metrics", 5000);
  const char *p;
  int port = 0;

  cr_assert(log != NULL, "no metrics listener in the log");
  p = strstr(log, "serving metrics on http://127.0.0.1:");
  cr_assert(p != NULL, "%s", log);
  sscanf(p + strlen("serving metrics on http://127.0.0.1:"), "%d", &port);
  free(log);
  cr_assert(port > 0);
  return port;
}

/* Pipes the page through promtool check metrics: exit status 0. */
static void promtool_accepts(const char *page) {
  char *path = th_write_temp(page, ".prom"), cmd[512];
  int rc;

  snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > %s.out 2>&1", path,
           path);
  rc = system(cmd);
  if (rc != 0) {
    char out[600];
    FILE *f;
    size_t n;

    snprintf(cmd, sizeof(cmd), "%s.out", path);
    f = fopen(cmd, "r");
    n = f ? fread(out, 1, sizeof(out) - 1, f) : 0;
    out[n] = '\0';
    if (f)
      fclose(f);
    cr_assert_fail("promtool check metrics refused the page (%d): %s", rc, out);
  }
  snprintf(cmd, sizeof(cmd), "%s.out", path);
  unlink(cmd);
  unlink(path);
  free(path);
}

Test(metrics, counts_calls_and_passes_promtool) {
  char *id = session(), *r, *page;
  int i;

  for (i = 0; i < 3; i++) {
    r = call(id, "echo_echo_inline", "{\"text\":\"a\"}");
    cr_assert(strstr(r, "\"result\"") != NULL, "%s", r);
    free(r);
  }
  for (i = 0; i < 2; i++) {
    r = call(id, "echo_echo", "{\"text\":\"b\"}");
    cr_assert(strstr(r, "\"result\"") != NULL, "%s", r);
    free(r);
  }
  r = call(id, "no_such_tool", "{}");
  cr_assert(strstr(r, "-32602") != NULL, "%s", r);
  free(r);

  page = get(host.port, "/metrics", 200);
  cr_expect_eq(sample(page, "plughost_tool_calls_total{department=\"default\","
                            "tool=\"echo_echo_inline\",outcome=\"ok\"}"),
               3, "%s", page);
  cr_expect_eq(sample(page, "plughost_tool_calls_total{department=\"default\","
                            "tool=\"echo_echo\",outcome=\"ok\"}"),
               2);
  cr_expect_eq(sample(page, "mcp_server_operation_duration_seconds_count{"
                            "mcp_method_name=\"tools/call\","
                            "gen_ai_tool_name=\"echo_echo_inline\"}"),
               3);
  cr_expect_eq(sample(page, "mcp_server_operation_duration_seconds_bucket{"
                            "mcp_method_name=\"tools/call\","
                            "gen_ai_tool_name=\"echo_echo\",le=\"+Inf\"}"),
               2);
  cr_expect_eq(sample(page, "mcp_server_operation_duration_seconds_count{"
                            "mcp_method_name=\"tools/call\","
                            "error_type=\"-32602\"}"),
               1);
  cr_expect_eq(sample(page, "mcp_server_operation_duration_seconds_count{"
                            "mcp_method_name=\"initialize\"}"),
               1);
  cr_expect_eq(sample(page, "plughost_jsonrpc_errors_total{code=\"-32602\"}"),
               1);
  cr_expect_eq(sample(page, "plughost_http_legacy_sessions"), 1);
  cr_expect_eq(sample(page, "plughost_instances{state=\"serving\"}"), 1);
  cr_expect_eq(sample(page, "plughost_instance_queue_depth{department="
                            "\"default\",instance=\"echo\",plugin=\"echo\"}"),
               0);
  cr_expect_eq(sample(page, "plughost_calls_in_flight"), 0);
  cr_expect_gt(sample(page, "plughost_http_received_bytes_total"), 500);
  cr_expect_gt(sample(page, "plughost_http_sent_bytes_total"), 500);
  /* No session id in any label. */
  cr_expect(strstr(page, id) == NULL);
  promtool_accepts(page);
  free(page);
  free(id);
}

Test(metrics, separate_listener_serves_metrics_alone) {
  int port = metrics_port();
  char *page = get(port, "/metrics", 200);

  cr_expect(strstr(page, "# TYPE mcp_server_operation_duration_seconds "
                         "histogram") != NULL,
            "%s", page);
  promtool_accepts(page);
  free(page);
  free(get(port, "/mcp", 404));
  free(get(port, "/ready", 404));
}

Test(metrics, reloads_counted_and_dropped_tools_unlabelled) {
  char *id = session(), *text, *page, *log;
  FILE *f;

  free(call(id, "echo_echo", "{\"text\":\"b\"}"));
  page = get(host.port, "/metrics", 200);
  cr_expect_eq(sample(page, "plughost_tool_calls_total{department=\"default\","
                            "tool=\"echo_echo\",outcome=\"ok\"}"),
               1, "%s", page);
  free(page);

  text = config_text("\"echo_echo\"");
  f = fopen(config_path, "w");
  cr_assert(f != NULL);
  fputs(text, f);
  fclose(f);
  free(text);
  kill(host.pid, SIGHUP);
  log = th_http_wait_log(&host, "generation 2 published", 5000);
  cr_assert(log != NULL, "the reload was not published");
  free(log);

  page = get(host.port, "/metrics", 200);
  cr_expect_eq(sample(page, "plughost_reloads_total{result=\"ok\"}"), 1, "%s",
               page);
  cr_expect_eq(sample(page, "plughost_reload_duration_seconds_count"), 1);
  cr_expect_eq(sample(page, "plughost_generation"), 2);
  cr_expect(strstr(page, "tool=\"echo_echo\"") == NULL,
            "a tool the generation no longer has is still labelled: %s", page);
  cr_expect(strstr(page, "gen_ai_tool_name=\"echo_echo\"") == NULL);
  promtool_accepts(page);
  free(page);
  free(id);
}
