/* test_tasks.c: the 2026-07-28 tasks extension (io.modelcontextprotocol/
 * tasks) over raw HTTP: task creation by the server, tasks/get, tasks/update,
 * tasks/cancel, the capability gate, and a legacy era that knows nothing of
 * it. Uses the conformance fixture's task tools. */
#include "harness.h"
#include "http_host.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXT "io.modelcontextprotocol/tasks"

static th_http_host host;
static int next_id = 1;

static const char config[] =
    "{\"plugin_dir\":\"" PH_TEST_PLUGIN_DIR "\",\"log_level\":\"debug\","
    "\"departments\":{\"default\":{\"plugins\":["
    "{\"plugin\":\"conformance\",\"prefix\":\"\"}]}}}";

static void start(void) {
  char *cfg = th_write_temp(config, ".json");

  th_http_start(&host, cfg, 5000);
  free(cfg);
}

/* The host must shut down promptly with tasks still running: they are
 * cancelled rather than waited for. */
static void stop(void) {
  int status;

  if (host.pid == 0) /* The test stopped it itself. */
    return;
  status = th_http_stop(&host);

  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "plughost exited badly");
}

TestSuite(tasks, .init = start, .fini = stop, .timeout = 60);

/* One request on its own connection; returns the whole response. */
static char *http(const char *method, const char *headers, const char *body) {
  return th_http(host.port, method, headers, body, NULL, 5000);
}

/* The JSON-RPC message of a response: the body, or an SSE stream's last
 * data line. */
static cJSON *message_of(const char *response) {
  const char *body = strstr(response, "\r\n\r\n"), *data, *last = NULL;

  cr_assert(body != NULL, "no response: %s", response);
  for (data = body; (data = strstr(data, "data: {")) != NULL; data++)
    last = data + 6;
  return cJSON_Parse(last ? last : strchr(body, '{'));
}

/* A 2026-07-28 request; `caps` is the clientCapabilities object, `name`
 * the Mcp-Name header (NULL: none). Sets *status; returns the message. */
static cJSON *modern(const char *method, const char *name, const char *params,
                     const char *caps, int *status) {
  char headers[512], *body, *r;
  cJSON *msg;

  snprintf(headers, sizeof(headers),
           "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: %s\r\n%s%s%s",
           method, name ? "Mcp-Name: " : "", name ? name : "",
           name ? "\r\n" : "");
  cr_assert(asprintf(&body,
                     "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"%s\","
                     "\"params\":{%s%s\"_meta\":{"
                     "\"io.modelcontextprotocol/protocolVersion\":"
                     "\"2026-07-28\","
                     "\"io.modelcontextprotocol/clientCapabilities\":%s}}}",
                     next_id++, method, params, params[0] ? "," : "",
                     caps) > 0);
  r = http("POST", headers, body);
  *status = th_http_status(r);
  msg = message_of(r);
  cr_assert(msg != NULL, "not JSON-RPC: %s", r);
  free(body);
  free(r);
  return msg;
}

#define WITH_TASKS "{\"elicitation\":{},\"extensions\":{\"" EXT "\":{}}}"
#define WITHOUT "{\"elicitation\":{}}"

static cJSON *call_tool(const char *tool, const char *args, const char *caps,
                        int *status) {
  char params[512];

  snprintf(params, sizeof(params), "\"name\":\"%s\",\"arguments\":%s", tool,
           args);
  return modern("tools/call", tool, params, caps, status);
}

static cJSON *task_request(const char *method, const char *id,
                           const char *extra, const char *caps, int *status) {
  char params[512];

  snprintf(params, sizeof(params), "\"taskId\":\"%s\"%s", id, extra);
  return modern(method, id, params, caps, status);
}

/* Polls tasks/get until the status is `want` (or terminal); returns the
 * last response. */
static cJSON *wait_status(const char *id, const char *want) {
  cJSON *r = NULL;
  const char *s;
  int status, i;

  for (i = 0; i < 100; i++) {
    cJSON_Delete(r);
    r = task_request("tasks/get", id, "", WITH_TASKS, &status);
    cr_assert_eq(status, 200);
    s = th_str(r, "result.status");
    cr_assert(s != NULL);
    if (strcmp(s, want) == 0 || strcmp(s, "completed") == 0 ||
        strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0)
      return r;
    usleep(50000);
  }
  return r;
}

/* Creates a task of `tool` and returns its id (malloc'd). */
static char *new_task(const char *tool, const char *args) {
  cJSON *r;
  char *id;
  int status;

  r = call_tool(tool, args, WITH_TASKS, &status);
  cr_assert_eq(status, 200);
  cr_assert_str_eq(th_str(r, "result.resultType"), "task");
  cr_assert(th_str(r, "result.taskId") != NULL);
  id = strdup(th_str(r, "result.taskId"));
  cJSON_Delete(r);
  return id;
}

Test(tasks, discover_advertises_the_extension) {
  int status;
  cJSON *r = modern("server/discover", NULL, "", "{}", &status);

  cr_expect_eq(status, 200);
  cr_expect(th_get(r, "result.capabilities.extensions") != NULL);
  cr_expect(
      cJSON_GetObjectItem(
          cJSON_GetObjectItem(th_get(r, "result.capabilities"), "extensions"),
          EXT) != NULL);
  cr_expect(th_get(r, "result.capabilities.tasks") == NULL);
  cJSON_Delete(r);
}

Test(tasks, slow_call_becomes_a_task_and_completes) {
  cJSON *r;
  int status;
  char *id;

  r = call_tool("slow_compute", "{\"seconds\":0.5,\"label\":\"x\"}", WITH_TASKS,
                &status);
  cr_assert_eq(status, 200);
  cr_assert_str_eq(th_str(r, "result.resultType"), "task");
  cr_expect_str_eq(th_str(r, "result.status"), "working");
  cr_expect_eq(strlen(th_str(r, "result.taskId")), 32);
  cr_expect(th_num(r, "result.ttlMs") > 0);
  cr_expect(th_num(r, "result.pollIntervalMs") > 0);
  cr_expect(th_get(r, "result.createdAt") != NULL);
  cr_expect(th_get(r, "result._meta") != NULL);
  id = strdup(th_str(r, "result.taskId"));
  cJSON_Delete(r);

  r = wait_status(id, "completed");
  cr_expect_str_eq(th_str(r, "result.status"), "completed");
  cr_expect_str_eq(th_str(r, "result.resultType"), "complete");
  cr_expect_str_eq(th_str(r, "result.result.content.0.text"),
                   "Computed x after 0.5 s");
  cJSON_Delete(r);
  free(id);
}

Test(tasks, fast_call_is_answered_directly) {
  int status;
  cJSON *r = call_tool("slow_compute", "{\"seconds\":0}", WITH_TASKS, &status);

  cr_expect_eq(status, 200);
  cr_expect_str_eq(th_str(r, "result.resultType"), "complete");
  cr_expect(th_get(r, "result.taskId") == NULL);
  cr_expect(th_get(r, "result.content.0.text") != NULL);
  cJSON_Delete(r);
}

Test(tasks, errors_settle_as_completed_or_failed) {
  cJSON *r;
  char *id;

  id = new_task("failing_job", "{}");
  r = wait_status(id, "completed");
  cr_expect_str_eq(th_str(r, "result.status"), "completed");
  cr_expect(cJSON_IsTrue(th_get(r, "result.result.isError")));
  cJSON_Delete(r);
  free(id);

  id = new_task("protocol_error_job", "{}");
  r = wait_status(id, "failed");
  cr_expect_str_eq(th_str(r, "result.status"), "failed");
  cr_expect_eq(th_num(r, "result.error.code"), -32603);
  cr_expect(th_get(r, "result.result") == NULL);
  cJSON_Delete(r);
  free(id);
}

Test(tasks, cancel_is_acknowledged_and_idempotent) {
  char *id = new_task("slow_compute", "{\"seconds\":30}");
  cJSON *r;
  int status;

  r = task_request("tasks/cancel", id, "", WITH_TASKS, &status);
  cr_expect_eq(status, 200);
  cr_expect_str_eq(th_str(r, "result.resultType"), "complete");
  cr_expect(th_get(r, "result.status") == NULL);
  cJSON_Delete(r);
  r = task_request("tasks/get", id, "", WITH_TASKS, &status);
  cr_expect_str_eq(th_str(r, "result.status"), "cancelled");
  cJSON_Delete(r);
  r = task_request("tasks/cancel", id, "", WITH_TASKS, &status);
  cr_expect_eq(status, 200);
  cr_expect(th_get(r, "error") == NULL);
  cJSON_Delete(r);
  free(id);
}

Test(tasks, input_required_then_update_resumes) {
  char *id = new_task("confirm_delete", "{\"filename\":\"a.txt\"}");
  cJSON *r;
  int status;

  r = wait_status(id, "input_required");
  cr_assert_str_eq(th_str(r, "result.status"), "input_required");
  cr_expect_str_eq(th_str(r, "result.inputRequests.confirm_delete.method"),
                   "elicitation/create");
  cJSON_Delete(r);
  /* A key that is not pending changes nothing. */
  r = task_request("tasks/update", id,
                   ",\"inputResponses\":{\"other\":{\"action\":\"accept\"}}",
                   WITH_TASKS, &status);
  cr_expect_eq(status, 200);
  cJSON_Delete(r);
  r = task_request("tasks/get", id, "", WITH_TASKS, &status);
  cr_expect_str_eq(th_str(r, "result.status"), "input_required");
  cJSON_Delete(r);
  r = task_request("tasks/update", id,
                   ",\"inputResponses\":{\"confirm_delete\":{\"action\":"
                   "\"accept\",\"content\":{\"confirm\":true}}}",
                   WITH_TASKS, &status);
  cr_expect_eq(status, 200);
  cr_expect_str_eq(th_str(r, "result.resultType"), "complete");
  cJSON_Delete(r);
  r = wait_status(id, "completed");
  cr_expect_str_eq(th_str(r, "result.result.content.0.text"), "Deleted a.txt");
  cJSON_Delete(r);
  free(id);
}

Test(tasks, gated_on_the_extension) {
  cJSON *r;
  int status;
  char *id = new_task("slow_compute", "{\"seconds\":0.3}");

  /* Without the extension: tasks methods and task-only tools refuse,
   * task-capable tools run synchronously. */
  r = task_request("tasks/get", id, "", WITHOUT, &status);
  cr_expect_eq(status, 400);
  cr_expect_eq(th_num(r, "error.code"), -32021);
  cJSON_Delete(r);
  r = call_tool("failing_job", "{}", WITHOUT, &status);
  cr_expect_eq(status, 400);
  cr_expect_eq(th_num(r, "error.code"), -32021);
  cr_expect(th_get(r, "error.data.requiredCapabilities.extensions") != NULL);
  cJSON_Delete(r);
  r = call_tool("slow_compute", "{\"seconds\":0.3}", WITHOUT, &status);
  cr_expect_eq(status, 200);
  cr_expect_str_eq(th_str(r, "result.resultType"), "complete");
  cJSON_Delete(r);
  /* Unknown ids, removed methods and a Mcp-Name that is not the id. */
  r = task_request("tasks/get", "no-such-task", "", WITH_TASKS, &status);
  cr_expect_eq(status, 400);
  cr_expect_eq(th_num(r, "error.code"), -32602);
  cJSON_Delete(r);
  r = task_request("tasks/result", id, "", WITH_TASKS, &status);
  cr_expect_eq(status, 404);
  cr_expect_eq(th_num(r, "error.code"), -32601);
  cJSON_Delete(r);
  r = modern("tasks/get", "another-id", "\"taskId\":\"x\"", WITH_TASKS,
             &status);
  cr_expect_eq(status, 400);
  cr_expect_eq(th_num(r, "error.code"), -32020);
  cJSON_Delete(r);
  free(id);
}

/* The legacy era has no tasks: the same tools answer as plain calls. */
Test(tasks, legacy_session_is_unaffected) {
  char *r, *id, hdr[256];

  r = http("POST", "",
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
           "\"params\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{"
           "\"extensions\":{\"" EXT "\":{}}},\"clientInfo\":{\"name\":\"t\","
           "\"version\":\"1\"}}}");
  cr_assert_eq(th_http_status(r), 200, "%s", r);
  cr_expect(strstr(r, EXT) == NULL, "initialize lists the extension: %s", r);
  id = th_http_session_id(r);
  cr_assert(id != NULL);
  free(r);
  snprintf(hdr, sizeof(hdr),
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n", id);
  r = http("POST", hdr,
           "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":"
           "{\"name\":\"slow_compute\",\"arguments\":{\"seconds\":0.3}}}");
  cr_expect(strstr(r, "Computed  after 0.3 s") != NULL, "%s", r);
  cr_expect(strstr(r, "taskId") == NULL, "%s", r);
  free(r);
  r = http("POST", hdr,
           "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tasks/get\",\"params\":"
           "{\"taskId\":\"x\"}}");
  cr_expect(strstr(r, "-32601") != NULL, "%s", r);
  free(r);
  free(id);
}

/* Tasks still running at shutdown do not hold it up. */
Test(tasks, shutdown_cancels_running_tasks) {
  char *id = new_task("slow_compute", "{\"seconds\":30}");
  long long started;
  int status;
  cJSON *r;

  r = wait_status(id, "working");
  cr_assert_str_eq(th_str(r, "result.status"), "working");
  cJSON_Delete(r);
  /* shutdown_timeout_ms is 10 s and the task wants 30: an exit well
   * within both means it was cancelled, not waited for. */
  started = th_now_ms();
  status = th_http_stop(&host);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "plughost exited badly");
  cr_expect_lt(th_now_ms() - started, 3000, "shutdown took %lld ms",
               th_now_ms() - started);
  free(id);
}
