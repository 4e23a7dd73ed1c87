/* test_isolation.c: "isolation": "process" through the real host, the real
 * plughost-runner and the crashy fixture, over stdio and HTTP. Each way a
 * plugin can fail (a segfault, abort(), exit(), a hang past its deadline,
 * a leak past its address-space limit, garbage on stdout) must fail only
 * that instance's calls, with a JSON-RPC error naming it, while ok.so
 * keeps serving, and the runner must come back and serve again. The first
 * test runs crashy in the host, where a segfault takes the host down: the
 * README says so, and this keeps it true. */
#include "harness.h"
#include "http_host.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Generous for ASan on a busy 2-core machine; waits are for conditions. */
#define WAIT_MS 20000

/* Under ASan and TSan the runner maps terabytes of shadow memory, which
 * no address-space limit allows, and ASan turns a segfault into an exit
 * of its own: those builds run without the limit and check less. */
#ifdef PH_TEST_ASAN
#define CRASHY_LIMITS ""
#define SEGV_WHY "its runner"
#else
#define CRASHY_LIMITS ",'limits':{'address_space_mb':256}"
#define SEGV_WHY "killed by signal 11 (SIGSEGV)"
#endif

#define CRASHY_OPTS                                                            \
  "'isolation':'process','workers':2,'config':{'echo_title':'Isolated "        \
  "echo'}" CRASHY_LIMITS
#define ISOLATED                                                               \
  "{'plugin':'crashy','prefix':'c'," CRASHY_OPTS "},"                          \
  "{'plugin':'ok','prefix':'ok'}"

TestSuite(isolation, .timeout = 120, .fini = th_remove_config);

static th_host *start(const char *plugins) {
  return th_start_config("'log_level':'debug',", NULL, plugins, "2025-11-25");
}

static void stop(th_host *h) {
  int status = th_stop_config(h);

  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "host exit status %d", status);
}

static int occurrences(const char *text, const char *needle) {
  int n = 0;

  while (text != NULL && (text = strstr(text, needle)) != NULL) {
    n++;
    text += strlen(needle);
  }
  return n;
}

/* A tools/call with single-quoted arguments; the whole response. */
static cJSON *call(th_host *h, const char *tool, const char *args) {
  char params[512];

  snprintf(params, sizeof(params), "{'name':'%s','arguments':%s}", tool,
           args ? args : "{}");
  return th_rpc(h, "tools/call", params);
}

/* The process id the isolated echo reports (its runner's). */
static long runner_pid(th_host *h) {
  cJSON *msg = call(h, "c_echo", "{'text':'pid'}");
  const char *text = th_str(msg, "result.content.0.text");
  long pid = text ? atol(text) : -1;

  cJSON_Delete(msg);
  return pid;
}

/* Waits for the isolated echo to answer from a runner other than `old`. */
static long wait_new_runner(th_host *h, long old) {
  long long deadline = th_now_ms() + WAIT_MS;
  long pid;

  do {
    pid = runner_pid(h);
    if (pid > 0 && pid != old)
      return pid;
    usleep(50000);
  } while (th_now_ms() < deadline);
  cr_assert_fail("no new runner answered; stderr:\n%s", th_stderr(h));
  return -1;
}

/* ok.so, in the host, still answers. */
static void expect_ok_serves(th_host *h) {
  cJSON *msg = call(h, "ok_echo", "{'text':'still here'}");

  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "still here",
                   "ok_echo after a crash");
  cJSON_Delete(msg);
}

/* The answer is a JSON-RPC error naming the instance and `why`. */
static void expect_crash_error(const cJSON *msg, const char *why) {
  const char *text = th_str(msg, "error.message");

  cr_assert_not_null(text, "no error in %s", cJSON_PrintUnformatted(msg));
  cr_expect_eq(th_num(msg, "error.code"), -32603);
  cr_expect(strstr(text, "plugin instance default/c (crashy)") != NULL, "%s",
            text);
  cr_expect(strstr(text, why) != NULL, "want \"%s\" in %s", why, text);
  cr_expect_str_eq(th_str(msg, "error.data.instance"), "default/c (crashy)");
}

Test(isolation, in_process_segfault_kills_the_host) {
  th_host *h = start("{'plugin':'crashy','prefix':'c'}");
  int status;

  th_send_sq(h, "{'jsonrpc':'2.0','id':7,'method':'tools/call','params':"
                "{'name':'c_segv','arguments':{}}}");
  cr_expect_null(th_response(h, "7", 3000), "the host answered a segfault");
  status = th_stop_config(h);
#ifdef PH_TEST_ASAN
  /* ASan reports the segfault and exits with its own status. */
  cr_expect(status != -1 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0),
            "status %d", status);
#else
  cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
            "the host should die of SIGSEGV, status %d", status);
#endif
}

/* One crash of each kind: only its call fails, the rest goes on. */
static void crash_once(const char *tool, const char *why) {
  th_host *h = start(ISOLATED);
  long before = runner_pid(h), after;
  cJSON *msg;

  cr_assert_gt(before, 0);
  cr_expect_neq(before, (long)th_pid(h), "echo ran in the host itself");
  msg = call(h, tool, NULL);
  expect_crash_error(msg, why);
  cJSON_Delete(msg);
  expect_ok_serves(h);
  after = wait_new_runner(h, before);
  cr_expect_neq(after, before);
  cr_expect(th_wait_stderr(h, "runner restarted", WAIT_MS));
  /* Logged once, with the reason and the delay. */
  cr_expect_eq(occurrences(th_stderr(h), "restarting in 100 ms"), 1, "%s",
               th_stderr(h));
  stop(h);
}

Test(isolation, segfault_fails_only_its_call) {
  crash_once("c_segv", SEGV_WHY);
}

Test(isolation, abort_fails_only_its_call) {
  crash_once("c_abort", "killed by signal 6 (SIGABRT)");
}

Test(isolation, exit_fails_only_its_call) {
  crash_once("c_exit", "exited with status 3");
}

/* A crash fails every call in flight on the instance, on every channel. */
Test(isolation, crash_fails_every_call_in_flight) {
  th_host *h = start(ISOLATED);
  cJSON *slept, *crashed;

  th_send_sq(h, "{'jsonrpc':'2.0','id':\"s\",'method':'tools/call','params':"
                "{'name':'c_sleep','arguments':{'ms':10000}}}");
  usleep(200000); /* Its handler is running. */
  th_send_sq(h, "{'jsonrpc':'2.0','id':\"x\",'method':'tools/call','params':"
                "{'name':'c_segv','arguments':{}}}");
  crashed = th_response(h, "\"x\"", WAIT_MS);
  slept = th_response(h, "\"s\"", WAIT_MS);
  cr_assert_not_null(crashed);
  cr_assert_not_null(slept);
  expect_crash_error(crashed, SEGV_WHY);
  expect_crash_error(slept, "failed during c_sleep");
  expect_crash_error(slept, SEGV_WHY);
  cJSON_Delete(crashed);
  cJSON_Delete(slept);
  expect_ok_serves(h);
  wait_new_runner(h, 0);
  stop(h);
}

Test(isolation, hang_past_deadline_kills_the_runner) {
  th_host *h = start(ISOLATED);
  long before = runner_pid(h);
  long long t0 = th_now_ms();
  cJSON *msg = call(h, "c_hang", NULL);

  /* The host answers at the deadline (500 ms), as for any call. */
  cr_expect(strstr(th_str(msg, "result.content.0.text"), "timed out") != NULL,
            "%s", cJSON_PrintUnformatted(msg));
  cr_expect_lt(th_now_ms() - t0, 5000);
  cJSON_Delete(msg);
  /* The other channel still serves while the hung one waits its grace. */
  cr_expect_eq(runner_pid(h), before);
  expect_ok_serves(h);
  cr_expect(th_wait_stderr(h,
                           "c_hang was still running 1000 ms after its "
                           "deadline",
                           WAIT_MS),
            "%s", th_stderr(h));
  wait_new_runner(h, before);
  stop(h);
}

#ifndef PH_TEST_ASAN
/* Resident memory of a process in KiB, from /proc. */
static long rss_kib(long pid) {
  char path[64], line[256];
  long kib = -1;
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%ld/status", pid);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib;
}

Test(isolation, leak_is_stopped_by_the_address_space_limit) {
  th_host *h = start(ISOLATED);
  long before = runner_pid(h);
  cJSON *msg = call(h, "c_leak", NULL);

  /* malloc failed at 256 MiB of address space and the plugin aborted. */
  expect_crash_error(msg, "killed by signal 6 (SIGABRT)");
  cJSON_Delete(msg);
  cr_expect_lt(rss_kib(th_pid(h)), 64 * 1024, "the host grew");
  expect_ok_serves(h);
  wait_new_runner(h, before);
  stop(h);
}
#endif

Test(isolation, stdout_never_reaches_the_client) {
  th_host *h = start(ISOLATED);
  cJSON *msg = call(h, "c_stdout", NULL), *extra;

  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "wrote to stdout");
  cJSON_Delete(msg);
  cr_expect(th_wait_stderr(h, "[default/c (crashy)] output: crashy garbage",
                           WAIT_MS));
  extra = th_recv(h, 300);
  cr_expect_null(extra, "the client got %s", cJSON_PrintUnformatted(extra));
  /* The answer after it is still well-formed and the runner unharmed. */
  cr_expect_gt(runner_pid(h), 0);
  cr_expect(strstr(th_stderr(h), "restarting") == NULL);
  stop(h);
}

/* What crosses the channels besides calls and replies: configure_tool at
 * init, progress and messages, an inline tool on the runner's loop. */
Test(isolation, the_api_crosses_the_channel) {
  th_host *h = start(ISOLATED);
  cJSON *msg, *note;
  const cJSON *tool;
  const char *title = NULL;
  long pid;

  msg = th_rpc(h, "tools/list", NULL);
  cJSON_ArrayForEach(tool, th_get(msg, "result.tools")) {
    if (strcmp(th_str(tool, "name"), "c_echo") == 0)
      title = th_str(tool, "title");
  }
  cr_expect(title != NULL && strcmp(title, "Isolated echo") == 0,
            "configure_tool from the runner's init: %s",
            title ? title : "(none)");
  cJSON_Delete(msg);

  th_send_sq(h, "{'jsonrpc':'2.0','method':'logging/setLevel','params':"
                "{'level':'debug'}}");
  msg = th_rpc(h, "tools/call",
               "{'name':'c_progress','arguments':{},'_meta':"
               "{'progressToken':'p1'}}");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "progress returned 0");
  cJSON_Delete(msg);
  note = th_notification(h, "notifications/progress", WAIT_MS);
  cr_assert_not_null(note);
  cr_expect_str_eq(th_str(note, "params.message"), "half way");
  cr_expect_eq(th_num(note, "params.total"), 2);
  cJSON_Delete(note);
  note = th_notification(h, "notifications/message", WAIT_MS);
  cr_assert_not_null(note);
  cr_expect_str_eq(th_str(note, "params.logger"), "crashy");
  cJSON_Delete(note);

  pid = runner_pid(h);
  msg = call(h, "c_echo_inline", "{'text':'pid'}");
  cr_expect_eq(atol(th_str(msg, "result.content.0.text")), pid,
               "the inline tool ran in the runner");
  cJSON_Delete(msg);
  cr_expect(
      th_wait_stderr(h, "[default/c (crashy)] crashy: init in pid", WAIT_MS));
  stop(h);
}

/* Service calls both ways: an isolated provider serving a consumer in the
 * host, and an isolated consumer calling the provider in the host. */
Test(isolation, service_calls_cross_the_channel) {
  static const char *const setups[] = {
      "{'plugin':'provider','prefix':'prov','isolation':'process'},"
      "{'plugin':'consumer','prefix':'cons'}",
      "{'plugin':'provider','prefix':'prov'},"
      "{'plugin':'consumer','prefix':'cons','isolation':'process'}"};
  size_t i;

  for (i = 0; i < sizeof(setups) / sizeof(setups[0]); i++) {
    th_host *h = start(setups[i]);
    cJSON *msg;

    msg = call(h, "cons_store", "{'key':'k1','value':'v1'}");
    cr_expect_str_eq(th_str(msg, "result.content.0.text"), "stored",
                     "setup %zu", i);
    cJSON_Delete(msg);
    msg = call(h, "cons_lookup", "{'key':'k1'}");
    cr_expect_str_eq(th_str(msg, "result.content.0.text"), "v1", "setup %zu",
                     i);
    cJSON_Delete(msg);
    stop(h);
  }
}

/* A reload that changes the instance retires its runner (fini, exit) and
 * starts a new one for the new generation. */
Test(isolation, reload_replaces_the_runner) {
  const char *path = th_config("'log_level':'debug',", NULL, ISOLATED);
  th_host *h = th_start(path, NULL);
  long before, after;
  FILE *f;
  char *text, *json;

  cJSON_Delete(th_initialize(h, "2025-11-25", NULL));
  before = runner_pid(h);
  cr_assert(asprintf(&text,
                     "{'plugin_dir':'%s','log_level':'debug','departments':"
                     "{'default':{'plugins':[{'plugin':'crashy','prefix':'c',"
                     "'isolation':'process','config':{'echo_title':'v2'}},"
                     "{'plugin':'ok','prefix':'ok'}]}}}",
                     PH_TEST_PLUGIN_DIR) > 0);
  json = th_dq(text);
  f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(json, f);
  fclose(f);
  free(text);
  free(json);
  th_kill(h, SIGHUP);
  cr_assert(th_wait_stderr(h, "generation 2 published", WAIT_MS), "%s",
            th_stderr(h));
  after = wait_new_runner(h, before);
  cr_expect_neq(after, before);
  /* The old runner ran fini and exited once drained; it is reaped. */
  cr_expect(th_wait_stderr(h, "runner stopped (exited with status 0)", WAIT_MS),
            "%s", th_stderr(h));
  cr_expect(kill((pid_t)before, 0) != 0 && errno == ESRCH);
  expect_ok_serves(h);
  stop(h);
}

/* ---- HTTP ---- */

static th_http_host http_host;

static void http_start(void) {
  char *cfg = th_write_config(NULL, "'log_level':'debug',", NULL, ISOLATED);

  th_http_start(&http_host, cfg, WAIT_MS);
  unlink(cfg);
  free(cfg);
}

static void http_stop(void) {
  th_http_stop(&http_host);
}

TestSuite(isolation_http, .init = http_start, .fini = http_stop,
          .timeout = 120);

/* A 2026-07-28 tools/call, one POST; the whole response. */
static char *http_call(const char *tool, const char *args) {
  char headers[256], body[1024];

  snprintf(headers, sizeof(headers),
           "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n"
           "Mcp-Name: %s\r\n",
           tool);
  snprintf(body, sizeof(body),
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
           "{\"name\":\"%s\",\"arguments\":%s,\"_meta\":{"
           "\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
           "\"io.modelcontextprotocol/clientCapabilities\":{}}}}",
           tool, args ? args : "{}");
  return th_http(http_host.port, "POST", headers, body, NULL, WAIT_MS);
}

static char *get_ready(void) {
  return th_http_raw(http_host.port,
                     "GET /ready HTTP/1.1\r\nHost: localhost\r\n"
                     "Connection: close\r\n\r\n",
                     strlen("GET /ready HTTP/1.1\r\nHost: localhost\r\n"
                            "Connection: close\r\n\r\n"),
                     3000);
}

/* Waits for the isolated echo to answer over HTTP. */
static void http_wait_echo(void) {
  long long deadline = th_now_ms() + WAIT_MS;
  char *r;
  int ok;

  do {
    r = http_call("c_echo", "{\"text\":\"back\"}");
    ok = strstr(r, "\"text\":\"back\"") != NULL;
    free(r);
    if (ok)
      return;
    usleep(50000);
  } while (th_now_ms() < deadline);
  cr_assert_fail("the isolated echo never came back over HTTP");
}

Test(isolation_http, crashes_fail_fast_and_ready_follows) {
  char *r;
  int i;

  r = get_ready();
  cr_expect(strstr(r, "200 OK") && strstr(r, "\"restarting\":0"), "%s", r);
  free(r);
  /* Five crashes in a row: the delay grows 100, 200, 400, 800, 1600 ms. */
  for (i = 0; i < 5; i++) {
    http_wait_echo();
    r = http_call("c_segv", NULL);
    cr_expect(strstr(r, "plugin instance default/c (crashy) failed during "
                        "c_segv") &&
                  strstr(r, SEGV_WHY) && strstr(r, "-32603"),
              "%s", r);
    free(r);
    r = http_call("ok_echo", "{\"text\":\"alive\"}");
    cr_expect(strstr(r, "\"text\":\"alive\"") != NULL, "%s", r);
    free(r);
  }
  /* Down for 1.6 s, longer than a call waits for a restart: a call fails
   * fast, and /ready says who and why. */
  r = http_call("c_echo", "{\"text\":\"x\"}");
  cr_expect(strstr(r, "plugin instance default/c (crashy) is unavailable: "
                      "restarting after its runner ") &&
                strstr(r, SEGV_WHY),
            "%s", r);
  free(r);
  r = get_ready();
  cr_expect(strstr(r, "503") && strstr(r, "\"restarting\":1") &&
                strstr(r, "default/c (crashy): restarting after its runner ") &&
                strstr(r, SEGV_WHY),
            "%s", r);
  free(r);
  http_wait_echo();
  r = get_ready();
  cr_expect(strstr(r, "200 OK") && strstr(r, "\"restarting\":0"), "%s", r);
  free(r);
  r = th_http_wait_log(&http_host, "restarting in 1600 ms", WAIT_MS);
  cr_expect_not_null(r);
  free(r);
}

Test(isolation_http, stdout_garbage_stays_in_the_log) {
  char *r = http_call("c_stdout", NULL), *log;

  cr_expect(strstr(r, "wrote to stdout") && !strstr(r, "garbage"), "%s", r);
  free(r);
  log =
      th_http_wait_log(&http_host, "output: crashy garbage on stdout", WAIT_MS);
  cr_expect_not_null(log);
  free(log);
}
