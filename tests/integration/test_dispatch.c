/* test_dispatch.c: calls into plugins through the real host: tools,
 * resources, prompts and completions, argument and output validation,
 * logging, progress, cancellation, deadlines, the exactly-once reply rule
 * and service calls between plugins. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

/* Starts a host serving `plugins` (single-quoted instance objects) in the
 * default department, `top` (members ending in a comma, or NULL) added at
 * the top level of the config, and initializes a 2025-11-25 session. */
static th_host *start(const char *top, const char *plugins) {
  return th_start_config(top, NULL, plugins, "2025-11-25");
}

static void expect_code(const cJSON *msg, int code) {
  char *text = cJSON_PrintUnformatted(msg);

  cr_expect_null(th_get(msg, "result"), "unexpected result: %s", text);
  cr_expect_eq(th_num(msg, "error.code"), code, "want %d: %s", code, text);
  free(text);
}

/* The text of a tool result that must be an error (isError true). */
static void expect_tool_error(const cJSON *msg, const char *needle) {
  const char *text = th_str(msg, "result.content.0.text");
  char *all = cJSON_PrintUnformatted(msg);

  cr_expect(cJSON_IsTrue(th_get(msg, "result.isError")), "not isError: %s",
            all);
  cr_expect(text != NULL && strstr(text, needle) != NULL,
            "want \"%s\" in the error text: %s", needle, all);
  free(all);
}

#define OK "{'plugin':'ok','prefix':'ok'}"

TestSuite(dispatch, .timeout = 30, .fini = th_remove_config);

/* ---- tools/call ---- */

Test(dispatch, tool_call_succeeds) {
  th_host *h = start(NULL, OK);
  cJSON *msg;

  msg = th_rpc(h, "tools/call",
               "{'name':'ok_echo','arguments':{'text':'hello there'}}");
  cr_expect_str_eq(th_str(msg, "result.content.0.type"), "text");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "hello there");
  cr_expect(!cJSON_IsTrue(th_get(msg, "result.isError")));
  cJSON_Delete(msg);

  msg = th_rpc(h, "tools/call", "{'name':'ok_add','arguments':{'a':2,'b':40}}");
  cr_expect_eq(th_num(msg, "result.structuredContent.sum"), 42);
  cJSON_Delete(msg);

  /* A tool reporting its own failure stays a result, not an RPC error. */
  msg = th_rpc(h, "tools/call", "{'name':'ok_fail'}");
  expect_tool_error(msg, "always fails");
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(dispatch, unknown_tool_is_invalid_params) {
  th_host *h = start(NULL, OK);
  cJSON *msg;

  msg = th_rpc(h, "tools/call", "{'name':'ok_nope','arguments':{}}");
  expect_code(msg, -32602);
  cr_expect(th_str(msg, "error.message") != NULL &&
            strstr(th_str(msg, "error.message"), "ok_nope") != NULL);
  cJSON_Delete(msg);
  /* The unprefixed name is not exposed. */
  msg = th_rpc(h, "tools/call", "{'name':'echo','arguments':{'text':'x'}}");
  expect_code(msg, -32602);
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(dispatch, malformed_call_params_are_invalid_params) {
  static const char *const bad[] = {
      "{}",
      "{'name':5}",
      "{'name':null}",
      "{'name':'ok_echo','arguments':'text'}",
      "{'name':'ok_echo','arguments':[1,2]}",
      "{'name':'ok_echo','arguments':7}",
  };
  th_host *h = start(NULL, OK);
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    cJSON *msg = th_rpc(h, "tools/call", bad[i]);

    expect_code(msg, -32602);
    cJSON_Delete(msg);
  }
  th_stop_config(h);
}

Test(dispatch, argument_validation_failure_names_the_path) {
  static const struct {
    const char *params, *needle;
  } cases[] = {
      {"{'name':'ok_echo','arguments':{'text':5}}", "/text"},
      {"{'name':'ok_echo','arguments':{}}", "text"},
      {"{'name':'ok_echo'}", "text"},
      {"{'name':'ok_echo','arguments':{'text':'a','extra':1}}", "extra"},
      {"{'name':'ok_add','arguments':{'a':'x','b':1}}", "/a"},
      {"{'name':'ok_add','arguments':{'a':1,'b':1.5}}", "/b"},
  };
  th_host *h = start(NULL, OK);
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    cJSON *msg = th_rpc(h, "tools/call", cases[i].params);

    cr_expect_null(th_get(msg, "error"), "case %zu is an RPC error", i);
    expect_tool_error(msg, cases[i].needle);
    cJSON_Delete(msg);
  }
  th_stop_config(h);
}

#define ARGS "{'plugin':'args','prefix':'args'}"

/* check_results "full" parses every result and validates structured
 * content against the tool's outputSchema: a conforming one passes
 * unchanged, a violation becomes a tool error and a log line. */
Test(dispatch, output_schema_is_checked_with_full_checks) {
  th_host *h = start("'check_results':'full',", OK "," ARGS);
  cJSON *msg;

  msg = th_rpc(h, "tools/call", "{'name':'ok_add','arguments':{'a':-7,'b':3}}");
  cr_expect_eq(th_num(msg, "result.structuredContent.sum"), -4);
  cr_expect(!cJSON_IsTrue(th_get(msg, "result.isError")));
  cJSON_Delete(msg);
  msg = th_rpc(h, "tools/call", "{'name':'args_bad_shape','arguments':{}}");
  cr_expect(cJSON_IsTrue(th_get(msg, "result.isError")), "%s",
            cJSON_PrintUnformatted(msg));
  cr_expect_not_null(strstr(th_str(msg, "result.content.0.text"),
                            "violates its outputSchema"));
  cr_expect_null(th_get(msg, "result.structuredContent"));
  cJSON_Delete(msg);
  cr_expect(th_wait_stderr(h, "args_bad_shape", 5000));
  th_stop_config(h);
}

/* The default, "structural", passes a legacy tool's structured result as
 * the plugin wrote it, validated against nothing (README: check_results
 * says why): what a plugin answers is its own to get right. */
Test(dispatch, structured_results_pass_unvalidated_by_default) {
  th_host *h;
  cJSON *msg;

  cr_assert_null(getenv("PLUGHOST_CHECK_OUTPUT"), "no switch but the config");
  h = start(NULL, ARGS);
  msg = th_rpc(h, "tools/call", "{'name':'args_bad_shape','arguments':{}}");
  cr_expect_str_eq(th_str(msg, "result.structuredContent.n"), "not a number",
                   "%s", cJSON_PrintUnformatted(msg));
  cr_expect(!cJSON_IsTrue(th_get(msg, "result.isError")));
  cJSON_Delete(msg);
  th_stop_config(h);
}

/* Under the default, legacy tool and prompt results without an outputSchema
 * pass through after a structural check only: they must reach the client
 * intact, escapes and structured content included. */
Test(dispatch, unchecked_results_pass_through_intact) {
  th_host *h;
  cJSON *msg;

  h = start(NULL, OK);
  msg = th_rpc(h, "tools/call",
               "{'name':'ok_echo','arguments':{'text':'a \\\"q\\\" [{'}}");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "a \"q\" [{");
  cJSON_Delete(msg);
  msg = th_rpc(h, "tools/call", "{'name':'ok_add','arguments':{'a':1,'b':2}}");
  cr_expect_eq(th_num(msg, "result.structuredContent.sum"), 3);
  cJSON_Delete(msg);
  msg =
      th_rpc(h, "prompts/get", "{'name':'ok_greet','arguments':{'name':'x'}}");
  cr_expect_not_null(th_get(msg, "result.messages.0.content"));
  cJSON_Delete(msg);
  th_stop_config(h);
}

/* ---- resources ---- */

Test(dispatch, static_resource_is_read) {
  th_host *h = start(NULL, OK);
  cJSON *msg = th_rpc(h, "resources/read", "{'uri':'ok://hello'}");

  cr_expect_str_eq(th_str(msg, "result.contents.0.uri"), "ok://hello");
  cr_expect_str_eq(th_str(msg, "result.contents.0.mimeType"), "text/plain");
  cr_expect_str_eq(th_str(msg, "result.contents.0.text"), "Hello from ok");
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(dispatch, template_resource_is_read_with_its_variable) {
  th_host *h = start(NULL, OK);
  cJSON *msg;

  msg = th_rpc(h, "resources/read", "{'uri':'ok://items/42'}");
  cr_expect_str_eq(th_str(msg, "result.contents.0.uri"), "ok://items/42");
  cr_expect_str_eq(th_str(msg, "result.contents.0.text"), "42");
  cJSON_Delete(msg);
  /* Variables are percent-decoded. */
  msg = th_rpc(h, "resources/read", "{'uri':'ok://items/a%20b'}");
  cr_expect_str_eq(th_str(msg, "result.contents.0.text"), "a b");
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(dispatch, unknown_resource_is_not_found_with_its_uri) {
  static const char *const uris[] = {"ok://nope", "ok://items/",
                                     "ok://items/1/2", "other://hello"};
  th_host *h = start(NULL, OK);
  size_t i;
  cJSON *msg;

  for (i = 0; i < sizeof(uris) / sizeof(*uris); i++) {
    char params[128];

    snprintf(params, sizeof(params), "{\"uri\":\"%s\"}", uris[i]);
    msg = th_request(h, "resources/read", params, WAIT_MS);
    cr_assert_not_null(msg);
    expect_code(msg, -32002);
    cr_expect_str_eq(th_str(msg, "error.data.uri"), uris[i]);
    cJSON_Delete(msg);
  }
  msg = th_rpc(h, "resources/read", "{'uri':7}");
  expect_code(msg, -32602);
  cJSON_Delete(msg);
  th_stop_config(h);
}

/* ---- prompts ---- */

Test(dispatch, prompt_is_rendered_with_its_arguments) {
  th_host *h = start(NULL, OK);
  cJSON *msg;

  msg = th_rpc(h, "prompts/get",
               "{'name':'ok_greet','arguments':{'name':'Ann'}}");
  cr_expect_str_eq(th_str(msg, "result.messages.0.role"), "user");
  cr_expect_str_eq(th_str(msg, "result.messages.0.content.type"), "text");
  cr_expect_str_eq(th_str(msg, "result.messages.0.content.text"),
                   "Please greet Ann warmly.");
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(dispatch, prompt_errors_are_invalid_params) {
  static const char *const bad[] = {
      "{'name':'ok_greet'}",
      "{'name':'ok_greet','arguments':{}}",
      "{'name':'ok_greet','arguments':{'other':'x'}}",
      "{'name':'ok_greet','arguments':{'name':5}}",
      "{'name':'ok_nope','arguments':{'name':'x'}}",
      "{'arguments':{'name':'x'}}",
  };
  th_host *h = start(NULL, OK);
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    cJSON *msg = th_rpc(h, "prompts/get", bad[i]);

    expect_code(msg, -32602);
    cJSON_Delete(msg);
  }
  th_stop_config(h);
}

/* ---- completion ---- */

static void expect_values(const cJSON *msg, const char *const *want,
                          int nwant) {
  const cJSON *values = th_get(msg, "result.completion.values");
  char *all = cJSON_PrintUnformatted(msg);
  int i;

  cr_assert(cJSON_IsArray(values), "no completion values: %s", all);
  cr_expect_eq(cJSON_GetArraySize(values), nwant, "%s", all);
  for (i = 0; i < nwant && i < cJSON_GetArraySize(values); i++)
    cr_expect_str_eq(cJSON_GetArrayItem(values, i)->valuestring, want[i]);
  free(all);
}

Test(dispatch, completion_of_prompt_and_template_arguments) {
  static const char *const al[] = {"alice", "albert"};
  static const char *const four[] = {"42"};
  static const char *const one[] = {"1", "100"};
  th_host *h = start(NULL, OK);
  cJSON *msg;

  msg = th_rpc(h, "completion/complete",
               "{'ref':{'type':'ref/prompt','name':'ok_greet'},"
               "'argument':{'name':'name','value':'al'}}");
  expect_values(msg, al, 2);
  cJSON_Delete(msg);

  msg = th_rpc(h, "completion/complete",
               "{'ref':{'type':'ref/resource','uri':'ok://items/{id}'},"
               "'argument':{'name':'id','value':'4'}}");
  expect_values(msg, four, 1);
  cJSON_Delete(msg);

  msg = th_rpc(h, "completion/complete",
               "{'ref':{'type':'ref/resource','uri':'ok://items/{id}'},"
               "'argument':{'name':'id','value':'1'},"
               "'context':{'arguments':{}}}");
  expect_values(msg, one, 2);
  cJSON_Delete(msg);

  msg = th_rpc(h, "completion/complete",
               "{'ref':{'type':'ref/prompt','name':'ok_greet'},"
               "'argument':{'name':'name','value':'zz'}}");
  expect_values(msg, NULL, 0);
  cJSON_Delete(msg);

  msg = th_rpc(h, "completion/complete",
               "{'ref':{'type':'ref/prompt','name':'ok_nope'},"
               "'argument':{'name':'name','value':'a'}}");
  expect_code(msg, -32602);
  cJSON_Delete(msg);

  msg = th_rpc(h, "completion/complete",
               "{'ref':{'type':'ref/prompt','name':'ok_greet'}}");
  expect_code(msg, -32602);
  cJSON_Delete(msg);
  th_stop_config(h);
}

/* ---- logging ---- */

/* Calls ok_log and returns the levels of the notifications/message that
 * arrived before its response, as "warning,error". */
static void log_levels(th_host *h, char *out, size_t size) {
  cJSON *msg;
  size_t used = 0;

  out[0] = '\0';
  th_request_async(h, "\"log\"", "tools/call", "{\"name\":\"ok_log\"}");
  for (;;) {
    msg = th_recv(h, WAIT_MS);
    cr_assert_not_null(msg, "no response to ok_log");
    if (th_str(msg, "method") == NULL) {
      cr_expect_str_eq(th_str(msg, "id"), "log");
      cr_expect_str_eq(th_str(msg, "result.content.0.text"),
                       "log: sent 4 messages");
      cJSON_Delete(msg);
      return;
    }
    cr_expect_str_eq(th_str(msg, "method"), "notifications/message");
    used += (size_t)snprintf(out + used, size - used, "%s%s", used ? "," : "",
                             th_str(msg, "params.level"));
    cr_assert_lt(used, size);
    cJSON_Delete(msg);
  }
}

Test(dispatch, set_level_filters_log_messages) {
  th_host *h = start(NULL, OK);
  char levels[256];
  cJSON *msg;

  msg = th_rpc(h, "logging/setLevel", "{'level':'warning'}");
  cr_expect(cJSON_IsObject(th_get(msg, "result")));
  cJSON_Delete(msg);
  log_levels(h, levels, sizeof(levels));
  cr_expect_str_eq(levels, "warning,error");

  msg = th_rpc(h, "logging/setLevel", "{'level':'error'}");
  cJSON_Delete(msg);
  log_levels(h, levels, sizeof(levels));
  cr_expect_str_eq(levels, "error");

  msg = th_rpc(h, "logging/setLevel", "{'level':'emergency'}");
  cJSON_Delete(msg);
  log_levels(h, levels, sizeof(levels));
  cr_expect_str_eq(levels, "");

  msg = th_rpc(h, "logging/setLevel", "{'level':'debug'}");
  cJSON_Delete(msg);
  log_levels(h, levels, sizeof(levels));
  cr_expect_str_eq(levels, "debug,info,warning,error");

  msg = th_rpc(h, "logging/setLevel", "{'level':'loud'}");
  expect_code(msg, -32602);
  cJSON_Delete(msg);
  msg = th_rpc(h, "logging/setLevel", "{}");
  expect_code(msg, -32602);
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(dispatch, log_messages_carry_logger_and_data) {
  th_host *h = start(NULL, OK);
  cJSON *msg;

  cJSON_Delete(th_rpc(h, "logging/setLevel", "{'level':'warning'}"));
  th_request_async(h, "1", "tools/call", "{\"name\":\"ok_log\"}");
  msg = th_notification(h, "notifications/message", WAIT_MS);
  cr_assert_not_null(msg);
  cr_expect_str_eq(th_str(msg, "params.level"), "warning");
  cr_expect_str_eq(th_str(msg, "params.logger"), "ok");
  cr_expect_str_eq(th_str(msg, "params.data"), "warning message");
  cJSON_Delete(msg);
  msg = th_notification(h, "notifications/message", WAIT_MS);
  cr_assert_not_null(msg);
  cr_expect_str_eq(th_str(msg, "params.level"), "error");
  cr_expect_null(th_get(msg, "params.logger"));
  cr_expect_str_eq(th_str(msg, "params.data.text"), "error message");
  cr_expect_eq(th_num(msg, "params.data.code"), 7);
  cJSON_Delete(msg);
  cJSON_Delete(th_response(h, "1", WAIT_MS));
  th_stop_config(h);
}

/* ---- progress ---- */

/* Calls ok_progress with the token given as JSON text and checks that
 * three increasing notifications with that token come before the result. */
static void check_progress(th_host *h, const char *id, const char *token) {
  char params[256];
  cJSON *msg, *want = cJSON_Parse(token);
  int n = 0;

  snprintf(params, sizeof(params),
           "{\"name\":\"ok_progress\",\"_meta\":{\"progressToken\":%s}}",
           token);
  th_request_async(h, id, "tools/call", params);
  for (;;) {
    msg = th_recv(h, WAIT_MS);
    cr_assert_not_null(msg, "no response to ok_progress");
    if (th_str(msg, "method") == NULL)
      break;
    cr_expect_str_eq(th_str(msg, "method"), "notifications/progress");
    cr_expect(cJSON_Compare(th_get(msg, "params.progressToken"), want, 1),
              "progress token not echoed as %s", token);
    n++;
    cr_expect_eq(th_num(msg, "params.progress"), n);
    cr_expect_eq(th_num(msg, "params.total"), 3);
    cr_expect_str_eq(th_str(msg, "params.message"), "working");
    cJSON_Delete(msg);
  }
  cr_expect_eq(n, 3, "want 3 progress notifications before the result");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"),
                   "progress: done in 3 steps");
  cJSON_Delete(msg);
  cJSON_Delete(want);
}

Test(dispatch, progress_echoes_string_and_integer_tokens) {
  th_host *h = start(NULL, OK);

  check_progress(h, "1", "\"tok-a\"");
  check_progress(h, "2", "42");
  check_progress(h, "\"three\"", "0");
  th_stop_config(h);
}

Test(dispatch, no_progress_without_a_token) {
  th_host *h = start(NULL, OK);
  cJSON *msg;

  th_request_async(h, "5", "tools/call", "{\"name\":\"ok_progress\"}");
  msg = th_recv(h, WAIT_MS);
  cr_assert_not_null(msg);
  cr_expect_null(th_str(msg, "method"), "a notification without a token");
  cr_expect_eq(th_num(msg, "id"), 5);
  cJSON_Delete(msg);
  th_stop_config(h);
}

/* ---- cancellation and deadlines ---- */

Test(dispatch, cancelled_call_gets_no_response_and_the_plugin_stops) {
  /* One worker: the next call can only run once the cancelled one has
   * noticed the flag and returned. */
  th_host *h = start(NULL, "{'plugin':'slow','prefix':'slow','workers':1}");
  long long started;
  cJSON *msg;

  th_request_async(h, "\"s1\"", "tools/call",
                   "{\"name\":\"slow_sleep\",\"arguments\":{\"ms\":10000}}");
  cJSON_Delete(th_rpc(h, "ping", NULL));
  started = th_now_ms();
  th_send_sq(h, "{'jsonrpc':'2.0','method':'notifications/cancelled',"
                "'params':{'requestId':'s1','reason':'test'}}");
  msg = th_rpc(h, "tools/call", "{'name':'slow_sleep','arguments':{'ms':10}}");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "slept 10 ms");
  cr_expect_lt(th_now_ms() - started, 3000,
               "the cancelled call held the worker");
  cJSON_Delete(msg);
  cr_expect_null(th_response(h, "\"s1\"", 300),
                 "a cancelled call was answered");
  cJSON_Delete(th_rpc(h, "ping", NULL));
  th_stop_config(h);
}

Test(dispatch, cancel_with_an_integer_id) {
  th_host *h = start(NULL, "{'plugin':'slow','prefix':'slow','workers':1}");
  cJSON *msg;

  th_request_async(h, "77", "tools/call",
                   "{\"name\":\"slow_sleep\",\"arguments\":{\"ms\":10000}}");
  cJSON_Delete(th_rpc(h, "ping", NULL));
  th_send_sq(h, "{'jsonrpc':'2.0','method':'notifications/cancelled',"
                "'params':{'requestId':77}}");
  msg = th_rpc(h, "tools/call", "{'name':'slow_sleep','arguments':{'ms':1}}");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "slept 1 ms");
  cJSON_Delete(msg);
  cr_expect_null(th_response(h, "77", 200));
  th_stop_config(h);
}

/* A timed-out hang call never drops its plugin reference; a short
 * shutdown limit keeps these tests from waiting on it at exit. */
#define QUICK_EXIT "'limits':{'shutdown_timeout_ms':100},"

Test(dispatch, tool_timeout_gives_an_error_result) {
  th_host *h = start(QUICK_EXIT, "{'plugin':'hang','prefix':'hang'}");
  long long started = th_now_ms();
  cJSON *msg = th_rpc(h, "tools/call", "{'name':'hang_never'}");
  long long took = th_now_ms() - started;

  cr_expect_null(th_get(msg, "error"));
  expect_tool_error(msg, "timed out");
  cr_expect_geq(took, 150, "timed out after %lld ms, before 200", took);
  cr_expect_lt(took, 3000);
  cJSON_Delete(msg);
  cJSON_Delete(th_rpc(h, "ping", NULL));
  th_stop_config(h);
}

Test(dispatch, host_cap_bounds_calls_without_a_timeout) {
  th_host *h = start("'limits':{'call_timeout_ms':300,"
                     "'shutdown_timeout_ms':100},",
                     "{'plugin':'hang','prefix':'hang'},"
                     "{'plugin':'slow','prefix':'slow'}");
  long long started = th_now_ms();
  cJSON *msg;

  msg = th_rpc(h, "tools/call", "{'name':'hang_forever'}");
  expect_tool_error(msg, "timed out");
  cr_expect_lt(th_now_ms() - started, 3000);
  cJSON_Delete(msg);

  msg =
      th_rpc(h, "tools/call", "{'name':'slow_sleep','arguments':{'ms':10000}}");
  expect_tool_error(msg, "timed out");
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(dispatch, host_cap_wins_over_a_longer_tool_timeout) {
  th_host *h = start("'limits':{'call_timeout_ms':50,"
                     "'shutdown_timeout_ms':100},",
                     "{'plugin':'hang','prefix':'hang'}");
  cJSON *msg = th_rpc(h, "tools/call", "{'name':'hang_never'}");

  expect_tool_error(msg, "50 ms");
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(dispatch, exit_does_not_wait_for_calls_already_timed_out) {
  char tmpdir[] = "/tmp/ph-test-tmp-XXXXXX", cleanup[64];
  long long started;
  th_host *h;
  cJSON *msg;
  int status;

  /* A host that is killed leaves its plugin cache behind: keep it in a
   * directory of our own. */
  cr_assert_not_null(mkdtemp(tmpdir));
  setenv("TMPDIR", tmpdir, 1);
  h = start(NULL, "{'plugin':'hang','prefix':'hang'}");
  msg = th_rpc(h, "tools/call", "{'name':'hang_never'}");

  expect_tool_error(msg, "timed out");
  cJSON_Delete(msg);
  /* The client has its answer; nothing is left to deliver, so closing
   * stdin must not keep the host for the whole shutdown limit (10 s). */
  started = th_now_ms();
  status = th_stop(h, 3000);
  cr_expect_neq(status, -1, "the host did not exit on stdin EOF");
  cr_expect_lt(th_now_ms() - started, 2000,
               "exit waited %lld ms for a call answered long ago",
               th_now_ms() - started);
  snprintf(cleanup, sizeof(cleanup), "rm -rf '%s'", tmpdir);
  cr_expect_eq(system(cleanup), 0);
  th_remove_config();
}

Test(dispatch, second_reply_is_dropped_and_logged) {
  th_host *h = start(NULL, "{'plugin':'hang','prefix':'hang'}");
  cJSON *msg = th_rpc(h, "tools/call", "{'name':'hang_twice'}");

  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "first reply");
  cJSON_Delete(msg);
  cr_expect(th_wait_stderr(h, "replied twice", WAIT_MS), "stderr:\n%s",
            th_stderr(h));
  /* The plugin heard PH_OK, then PH_EALREADY (-4). */
  cr_expect(th_wait_stderr(h, "first=0 second=-4", WAIT_MS), "stderr:\n%s",
            th_stderr(h));
  /* No second response ever reaches the client; the host keeps serving. */
  cJSON_Delete(th_rpc(h, "ping", NULL));
  msg = th_recv(h, 200);
  cr_expect_null(msg, "an extra message after the first reply");
  cJSON_Delete(msg);
  msg = th_rpc(h, "tools/call", "{'name':'hang_twice'}");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "first reply");
  cJSON_Delete(msg);
  th_stop_config(h);
}

/* ---- services ---- */

Test(dispatch, service_calls_reach_the_provider) {
  th_host *h = start(NULL, "{'plugin':'provider','prefix':'prov'},"
                           "{'plugin':'consumer','prefix':'cons'}");
  cJSON *msg;

  msg = th_rpc(h, "tools/call",
               "{'name':'cons_store','arguments':{'key':'k1','value':'v1'}}");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "stored");
  cJSON_Delete(msg);
  msg = th_rpc(h, "tools/call",
               "{'name':'cons_lookup','arguments':{'key':'k1'}}");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "v1");
  cr_expect(!cJSON_IsTrue(th_get(msg, "result.isError")));
  cJSON_Delete(msg);
  msg = th_rpc(h, "tools/call",
               "{'name':'cons_lookup','arguments':{'key':'k2'}}");
  expect_tool_error(msg, "not found");
  cJSON_Delete(msg);
  msg = th_rpc(h, "tools/call", "{'name':'prov_version'}");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "1");
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(dispatch, concurrent_calls_run_in_parallel) {
  /* Four workers: four 300 ms sleeps take about 300 ms, not 1200. */
  th_host *h = start(NULL, "{'plugin':'slow','prefix':'slow','workers':4}");
  long long started = th_now_ms();
  char id[8];
  int i;

  for (i = 0; i < 4; i++) {
    snprintf(id, sizeof(id), "%d", i);
    th_request_async(h, id, "tools/call",
                     "{\"name\":\"slow_sleep\",\"arguments\":{\"ms\":300}}");
  }
  for (i = 0; i < 4; i++) {
    cJSON *msg;

    snprintf(id, sizeof(id), "%d", i);
    msg = th_response(h, id, WAIT_MS);
    cr_assert_not_null(msg);
    cr_expect_str_eq(th_str(msg, "result.content.0.text"), "slept 300 ms");
    cJSON_Delete(msg);
  }
  cr_expect_lt(th_now_ms() - started, 1000);
  th_stop_config(h);
}

Test(dispatch, inline_tool_answers_while_workers_are_busy) {
  th_host *h = start(NULL, "{'plugin':'slow','prefix':'slow','workers':1}");
  cJSON *msg;

  th_request_async(h, "\"busy\"", "tools/call",
                   "{\"name\":\"slow_sleep\",\"arguments\":{\"ms\":500}}");
  msg = th_rpc(h, "tools/call", "{'name':'slow_now'}");
  cr_expect_not_null(th_str(msg, "result.content.0.text"));
  cJSON_Delete(msg);
  /* The inline answer came before the sleeper's. */
  cr_expect_null(th_response(h, "\"busy\"", 10));
  msg = th_response(h, "\"busy\"", WAIT_MS);
  cr_expect_not_null(msg);
  cJSON_Delete(msg);
  th_stop_config(h);
}
