/* test_watch.c: ABI 1.2 through the real host and the watcher fixture:
 * inline tools that wait on descriptors with watch_fd (a pipe, a timerfd)
 * and answer from the watch callback, calls handed to the pool with
 * run_in_pool, the error codes of both, callbacks stopping watches, no fd
 * left behind, watches left at shutdown, and a hot reload with watches in
 * flight. */
#include "harness.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Generous for ASan on a busy 2-core machine; waits are for conditions. */
#define WAIT_MS 20000

#define WATCHER "{'plugin':'watcher','prefix':'w'}"

TestSuite(watch, .timeout = 120, .fini = th_remove_config);

/* A host serving `plugins` with its debug log on (the fixture logs what
 * it saw), with a 2025-11-25 session. */
static th_host *start(const char *plugins) {
  return th_start_config("'log_level':'debug',", NULL, plugins, "2025-11-25");
}

/* Stops the host and expects a clean exit: under ASan and UBSan that
 * also means no error and no leak in the host. */
static void stop(th_host *h) {
  int status = th_stop_config(h);

  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "host exit status %d", status);
}

/* Open descriptors of the host process. */
static int count_fds(th_host *h) {
  char path[64];
  struct dirent *de;
  DIR *d;
  int n = 0;

  snprintf(path, sizeof(path), "/proc/%d/fd", (int)th_pid(h));
  d = opendir(path);
  cr_assert_not_null(d, "opendir %s: %s", path, strerror(errno));
  while ((de = readdir(d)) != NULL)
    n += de->d_name[0] != '.';
  closedir(d);
  return n;
}

/* The host's fd count settles back to `want` (closing is synchronous, but
 * leave the loop a moment to finish what it was doing). */
static int wait_fds(th_host *h, int want) {
  long long deadline = th_now_ms() + WAIT_MS;

  while (count_fds(h) != want) {
    if (th_now_ms() > deadline)
      return 0;
    usleep(10000);
  }
  return 1;
}

static int occurrences(const char *text, const char *needle) {
  int n = 0;

  while (text != NULL && (text = strstr(text, needle)) != NULL) {
    n++;
    text += strlen(needle);
  }
  return n;
}

static int wait_log_count(th_host *h, const char *needle, int want) {
  long long deadline = th_now_ms() + WAIT_MS;

  while (occurrences(th_stderr(h), needle) < want) {
    if (th_now_ms() > deadline)
      return 0;
    usleep(10000);
  }
  return 1;
}

/* Sends n pipe_echo calls with ids "<tag>-<i>" and texts unique to each,
 * delay_ms cycling through 0..max_delay. */
static void send_echoes(th_host *h, const char *tag, int n, int max_delay) {
  char id[64], params[256];
  int i;

  for (i = 0; i < n; i++) {
    snprintf(id, sizeof(id), "\"%s-%d\"", tag, i);
    snprintf(params, sizeof(params),
             "{\"name\":\"%s\",\"arguments\":{\"text\":\"%s text %d \\\"q\\\""
             "\",\"delay_ms\":%d}}",
             strcmp(tag, "r") == 0 ? "watcher_pipe_echo" : "w_pipe_echo", tag,
             i, max_delay ? (i * 37) % (max_delay + 1) : 0);
    cr_assert_eq(th_request_async(h, id, "tools/call", params), 0);
  }
}

/* Every one of send_echoes' calls is answered with its own text. */
static void expect_echoes(th_host *h, const char *tag, int n) {
  char id[64], want[128];
  cJSON *msg;
  int i;

  for (i = 0; i < n; i++) {
    snprintf(id, sizeof(id), "\"%s-%d\"", tag, i);
    snprintf(want, sizeof(want), "%s text %d \"q\"", tag, i);
    msg = th_response(h, id, WAIT_MS);
    cr_assert_not_null(msg, "call %s lost; stderr:\n%s", id, th_stderr(h));
    cr_expect(!cJSON_IsTrue(th_get(msg, "result.isError")), "call %s: %s", id,
              th_str(msg, "result.content.0.text"));
    cr_expect_str_eq(th_str(msg, "result.content.0.text"), want, "call %s", id);
    cJSON_Delete(msg);
  }
}

static const char *tool_text(cJSON *msg) {
  const char *text = th_str(msg, "result.content.0.text");

  return text ? text : "(none)";
}

Test(watch, pipe_echo_answers_from_the_watch_callback) {
  th_host *h = start(WATCHER);
  cJSON *msg;

  msg = th_rpc(h, "tools/call",
               "{'name':'w_pipe_echo','arguments':{'text':'through a pipe'}}");
  cr_expect_str_eq(tool_text(msg), "through a pipe");
  cr_expect(!cJSON_IsTrue(th_get(msg, "result.isError")));
  cJSON_Delete(msg);
  /* Two watches in a row: a timerfd, then the pipe. */
  msg = th_rpc(h, "tools/call",
               "{'name':'w_pipe_echo','arguments':{'text':'later',"
               "'delay_ms':50}}");
  cr_expect_str_eq(tool_text(msg), "later");
  cJSON_Delete(msg);
  stop(h);
}

Test(watch, many_concurrent_echoes_are_all_answered_without_fd_leaks) {
  th_host *h = start(WATCHER);
  int before;

  /* One call first: whatever the host opens lazily is open now. */
  cJSON_Delete(th_rpc(h, "tools/call",
                      "{'name':'w_pipe_echo','arguments':{'text':'warm'}}"));
  before = count_fds(h);
  /* 200 at once, many waiting on a timer and a pipe together. */
  send_echoes(h, "c", 200, 40);
  expect_echoes(h, "c", 200);
  cr_expect(wait_fds(h, before), "fds before %d, after %d", before,
            count_fds(h));
  /* And again, with every watch started in one burst. */
  send_echoes(h, "d", 200, 0);
  expect_echoes(h, "d", 200);
  cr_expect(wait_fds(h, before), "fds before %d, after %d", before,
            count_fds(h));
  stop(h);
}

Test(watch, defer_replies_from_a_worker_thread) {
  th_host *h = start(WATCHER);
  cJSON *msg;
  int i;

  for (i = 0; i < 20; i++) {
    msg = th_rpc(h, "tools/call", "{'name':'w_defer','arguments':{}}");
    cr_expect(cJSON_IsTrue(th_get(msg, "result.structuredContent.off_loop")),
              "fn ran on the loop thread: %s", tool_text(msg));
    cr_expect(cJSON_IsFalse(th_get(msg, "result.structuredContent.cancelled")));
    cJSON_Delete(msg);
  }
  /* A call queued (or running its fn) cannot be handed over again. */
  cr_expect(wait_log_count(h, "defer: second run_in_pool=-1", 20), "%s",
            th_stderr(h));
  cr_expect_null(strstr(th_stderr(h), "second hand-over ran"));
  stop(h);
}

/* fn owns its argument, so it runs even for a call cancelled while it
 * waited in the queue, unlike a handler, which is then skipped. */
Test(watch, deferred_fn_runs_even_when_cancelled_in_the_queue) {
  th_host *h = start("{'plugin':'watcher','prefix':'w','workers':1}");
  cJSON *msg;

  th_request_async(h, "\"d1\"", "tools/call",
                   "{\"name\":\"w_defer\",\"arguments\":{\"ms\":20000}}");
  th_request_async(h, "\"d2\"", "tools/call",
                   "{\"name\":\"w_defer\",\"arguments\":{\"ms\":0}}");
  cJSON_Delete(th_rpc(h, "ping", NULL));
  /* d2 waits behind d1 on the only worker. */
  th_send_sq(h, "{'jsonrpc':'2.0','method':'notifications/cancelled',"
                "'params':{'requestId':'d2'}}");
  th_send_sq(h, "{'jsonrpc':'2.0','method':'notifications/cancelled',"
                "'params':{'requestId':'d1'}}");
  cr_expect(wait_log_count(h, "defer: fn ran off_loop=1 cancelled=1", 2),
            "both fns must run and see the cancel; stderr:\n%s", th_stderr(h));
  cr_expect_null(th_response(h, "\"d1\"", 100), "a cancelled call answered");
  cr_expect_null(th_response(h, "\"d2\"", 100), "a cancelled call answered");
  /* The worker is free again. */
  msg = th_rpc(h, "tools/call", "{'name':'w_defer','arguments':{}}");
  cr_expect(cJSON_IsTrue(th_get(msg, "result.structuredContent.off_loop")));
  cJSON_Delete(msg);
  stop(h);
}

Test(watch, error_codes) {
  th_host *h = start(WATCHER);
  cJSON *msg;

  msg = th_rpc(h, "tools/call", "{'name':'w_errors','arguments':{}}");
  cr_assert_not_null(th_get(msg, "result.structuredContent"), "%s",
                     tool_text(msg));
  cr_expect_eq(th_num(msg, "result.structuredContent.bad_fd"), -1);
  cr_expect_eq(th_num(msg, "result.structuredContent.unwatched"), -1);
  cr_expect_eq(th_num(msg, "result.structuredContent.bad_events"), -1);
  cr_expect_eq(th_num(msg, "result.structuredContent.null_cb"), -1);
  cr_expect_eq(th_num(msg, "result.structuredContent.regular_file"), -1);
  cr_expect_eq(th_num(msg, "result.structuredContent.start"), 0);
  cr_expect_eq(th_num(msg, "result.structuredContent.change"), 0);
  cr_expect_eq(th_num(msg, "result.structuredContent.stop"), 0);
  cr_expect_eq(th_num(msg, "result.structuredContent.stop_again"), -1);
  cr_expect_eq(th_num(msg, "result.structuredContent.null_fn"), -1);
  cJSON_Delete(msg);

  /* A worker thread is not the loop. */
  msg = th_rpc(h, "tools/call", "{'name':'w_worker_watch','arguments':{}}");
  cr_expect_eq(th_num(msg, "result.structuredContent.watch_fd"), -3, "%s",
               tool_text(msg));
  cJSON_Delete(msg);

  msg = th_rpc(h, "tools/call", "{'name':'w_stats','arguments':{}}");
  cr_expect_str_eq(tool_text(msg), "late=0");
  cJSON_Delete(msg);
  stop(h);
}

Test(watch, a_callback_stops_its_own_watch_and_another) {
  th_host *h = start(WATCHER);
  int before, i;
  cJSON *msg;

  cJSON_Delete(th_rpc(h, "tools/call", "{'name':'w_self_stop'}"));
  before = count_fds(h);
  for (i = 0; i < 50; i++) {
    msg = th_rpc(h, "tools/call", "{'name':'w_self_stop','arguments':{}}");
    cr_expect_eq(th_num(msg, "result.structuredContent.self"), 0, "%s",
                 tool_text(msg));
    cr_expect_eq(th_num(msg, "result.structuredContent.other"), 0);
    cr_expect_eq(th_num(msg, "result.structuredContent.calls"), 1);
    cJSON_Delete(msg);
  }
  /* Both pipes were readable in the same loop iteration: the callback
   * pending for the second watch never ran once the first stopped it. */
  msg = th_rpc(h, "tools/call", "{'name':'w_stats','arguments':{}}");
  cr_expect_str_eq(tool_text(msg), "late=0");
  cJSON_Delete(msg);
  cr_expect(wait_fds(h, before), "fds before %d, after %d", before,
            count_fds(h));
  stop(h);
  /* fini ran, which it cannot while a watch holds the instance. */
}

/* A watch never stopped holds its instance; shutdown closes it, says so,
 * and the instance is finalised after all. */
Test(watch, shutdown_closes_forgotten_watches) {
  th_host *h = start(WATCHER);
  long long started;
  cJSON *msg;
  int status;

  msg = th_rpc(h, "tools/call", "{'name':'w_leak_watch','arguments':{}}");
  cr_expect(!cJSON_IsTrue(th_get(msg, "result.isError")), "%s", tool_text(msg));
  cJSON_Delete(msg);
  started = th_now_ms();
  status = th_stop(h, WAIT_MS);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
  cr_expect_lt(th_now_ms() - started, 5000, "shutdown waited on the watch");
  th_remove_config();
}

/* The same with the log visible: stderr is gone with th_stop, so stop by
 * SIGTERM and read it before the host is reaped. */
Test(watch, shutdown_logs_forgotten_watches_and_runs_fini) {
  th_host *h = start(WATCHER);

  cJSON_Delete(th_rpc(h, "tools/call", "{'name':'w_leak_watch'}"));
  th_kill(h, SIGTERM);
  cr_expect(th_wait_stderr(h, "still watches fd", WAIT_MS), "%s", th_stderr(h));
  cr_expect(th_wait_stderr(h, "watcher 1: fini, late=0", WAIT_MS), "%s",
            th_stderr(h));
  stop(h);
}

/* ---- hot reload with watches in flight ---- */

static void copy_file(const char *src, const char *dir, const char *name) {
  char tmp[600], path[512], buf[65536];
  int in, out;
  ssize_t n;

  snprintf(path, sizeof(path), "%s/%s", dir, name);
  /* Through a temporary name the host never picks up, then rename(2). */
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  in = open(src, O_RDONLY);
  cr_assert(in >= 0, "open %s: %s (are the fixtures built?)", src,
            strerror(errno));
  out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  cr_assert(out >= 0, "open %s: %s", tmp, strerror(errno));
  while ((n = read(in, buf, sizeof(buf))) > 0)
    cr_assert_eq(write(out, buf, (size_t)n), n);
  close(in);
  cr_assert_eq(close(out), 0);
  cr_assert_eq(rename(tmp, path), 0);
}

static void remove_dir(const char *dir) {
  struct dirent *de;
  char path[512];
  DIR *d = opendir(dir);

  if (d == NULL)
    return;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

Test(watch, reload_with_watches_in_flight_loses_nothing) {
  char plugins[] = "/tmp/ph-watch-XXXXXX", cache[] = "/tmp/ph-wcache-XXXXXX";
  char config_text[512], *config;
  th_host *h;
  cJSON *msg;
  long long started;
  int status, round;

  cr_assert_not_null(mkdtemp(plugins));
  cr_assert_not_null(mkdtemp(cache));
  snprintf(config_text, sizeof(config_text),
           "{\"plugin_dir\":\"%s\",\"cache_dir\":\"%s\","
           "\"log_level\":\"debug\"}",
           plugins, cache);
  config = th_write_temp(config_text, ".json");
  copy_file(PH_TEST_PLUGIN_DIR "/watcher.so", plugins, "watcher.so");
  h = th_start(config, NULL);
  cJSON_Delete(th_initialize(h, "2025-06-18", NULL));

  for (round = 1; round <= 4; round++) {
    const char *want = round % 2 ? "2" : "1";
    char needle[64];

    /* 100 calls each waiting on a timer of up to 300 ms, then a pipe: the
     * reload lands while their watches are live. */
    started = th_now_ms();
    send_echoes(h, "r", 100, 600);
    cJSON_Delete(th_rpc(h, "ping", NULL)); /* All dispatched. */
    copy_file(round % 2 ? PH_TEST_PLUGIN_DIR "/v2/watcher.so"
                        : PH_TEST_PLUGIN_DIR "/watcher.so",
              plugins, "watcher.so");
    th_kill(h, SIGHUP);
    snprintf(needle, sizeof(needle), "reload %d: generation", round);
    cr_assert(th_wait_stderr(h, needle, WAIT_MS), "no \"%s\":\n%s", needle,
              th_stderr(h));
    /* Timing only decides whether this check means anything: with calls
     * still waiting on their timers, the retired instance must be alive. */
    if (th_now_ms() - started < 400)
      cr_expect_eq(
          occurrences(th_stderr(h), "finalised instance default/watcher"),
          round - 1, "round %d: finalised with watches live", round);
    else
      cr_log_warn("round %d: machine too slow to check the drain", round);
    expect_echoes(h, "r", 100);
    msg = th_rpc(h, "tools/call", "{'name':'watcher_version'}");
    cr_expect_str_eq(tool_text(msg), want, "round %d", round);
    cJSON_Delete(msg);
    /* The retired build is finalised once its last watch is gone. */
    cr_expect(wait_log_count(h, "finalised instance default/watcher", round),
              "round %d: the old instance was never finalised:\n%s", round,
              th_stderr(h));
  }
  cr_expect_eq(occurrences(th_stderr(h), ": fini, late=0"), 4);
  cr_expect_null(strstr(th_stderr(h), "still watches"));
  status = th_stop(h, WAIT_MS);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
  remove_dir(plugins);
  remove_dir(cache);
  unlink(config);
  free(config);
}
