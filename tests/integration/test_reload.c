/* test_reload.c: hot reload over stdio with real plugins and the real
 * binary. Each test gets its own plugin directory and cache directory, and
 * installs plugins the way the README tells operators to: write a
 * temporary file in the same directory, then rename(2) it into place.
 *
 * Waiting is always for a condition (a log line, a message, a directory
 * count), never for a fixed time, so the tests hold on a slow machine. */
#include "harness.h"
#include "http_host.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Generous: a reload under ASan on a busy 2-core machine can take a while,
 * and nothing waits this long unless something is broken. */
#define WAIT_MS 20000

#define FIXTURE(name) PH_TEST_PLUGIN_DIR "/" name

typedef struct {
  char plugins[64]; /* plugin_dir */
  char cache[64];   /* cache_dir: private copies the host maps */
  char *config;     /* Path of the config file. */
  int reloads;      /* Reloads published so far. */
} env;

/* Writes `text` to path through a temporary file and rename(2), as an
 * operator would, so the host never reads a half-written file. */
static void write_atomically(const char *path, const void *data, size_t len) {
  char tmp[512];
  int fd;

  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  /* The temporary name must not end in .so, or a reload racing the copy
   * could pick it up. */
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  cr_assert(fd >= 0, "open %s: %s", tmp, strerror(errno));
  cr_assert_eq(write(fd, data, len), (ssize_t)len);
  cr_assert_eq(close(fd), 0);
  cr_assert_eq(rename(tmp, path), 0, "rename %s: %s", tmp, strerror(errno));
}

static char *slurp(const char *path, size_t *len) {
  struct stat st;
  char *data;
  int fd;

  fd = open(path, O_RDONLY);
  cr_assert(fd >= 0, "open %s: %s (are the fixtures built?)", path,
            strerror(errno));
  cr_assert_eq(fstat(fd, &st), 0);
  data = malloc((size_t)st.st_size + 1);
  cr_assert_eq(read(fd, data, (size_t)st.st_size), st.st_size);
  close(fd);
  data[st.st_size] = '\0';
  *len = (size_t)st.st_size;
  return data;
}

/* Installs fixture `src` as `name` in the plugin directory. */
static void install(env *e, const char *src, const char *name) {
  char path[512];
  size_t len;
  char *data = slurp(src, &len);

  snprintf(path, sizeof(path), "%s/%s", e->plugins, name);
  write_atomically(path, data, len);
  free(data);
}

static void uninstall(env *e, const char *name) {
  char path[512];

  snprintf(path, sizeof(path), "%s/%s", e->plugins, name);
  cr_assert_eq(unlink(path), 0, "unlink %s: %s", path, strerror(errno));
}

/* (Re)writes the config; `fmt` is the JSON after the fixed members. */
static void write_config(env *e, const char *fmt, ...) {
  char tail[2048], text[4096];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(tail, sizeof(tail), fmt, ap);
  va_end(ap);
  snprintf(text, sizeof(text),
           "{\"plugin_dir\":\"%s\",\"cache_dir\":\"%s\","
           "\"log_level\":\"debug\"%s%s}",
           e->plugins, e->cache, tail[0] ? "," : "", tail);
  write_atomically(e->config, text, strlen(text));
}

static void env_init(env *e) {
  char *dir;

  memset(e, 0, sizeof(*e));
  snprintf(e->plugins, sizeof(e->plugins), "/tmp/ph-reload-XXXXXX");
  cr_assert_not_null(mkdtemp(e->plugins));
  snprintf(e->cache, sizeof(e->cache), "/tmp/ph-cache-XXXXXX");
  cr_assert_not_null(mkdtemp(e->cache));
  dir = th_write_temp("{}", ".json");
  e->config = dir;
  write_config(e, "");
}

/* Number of entries in a directory, dot files excluded. */
static int count_files(const char *dir, char *first, size_t first_len) {
  struct dirent *de;
  DIR *d = opendir(dir);
  int n = 0;

  cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    if (n++ == 0 && first != NULL)
      snprintf(first, first_len, "%s", de->d_name);
  }
  closedir(d);
  return n;
}

static int wait_cache_count(env *e, int want) {
  long long deadline = th_now_ms() + WAIT_MS;

  while (count_files(e->cache, NULL, 0) != want) {
    if (th_now_ms() > deadline)
      return 0;
    usleep(10000);
  }
  return 1;
}

static int file_exists(const char *dir, const char *name) {
  char path[512];

  snprintf(path, sizeof(path), "%s/%s", dir, name);
  return access(path, F_OK) == 0;
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

/* Stops the host cleanly and checks that every cached copy went with it:
 * the last reference on each plugin unlinks its copy. */
static void env_finish(env *e, th_host *h) {
  int status = th_stop(h, WAIT_MS);

  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "host exit status %d", status);
  cr_expect_eq(count_files(e->cache, NULL, 0), 0,
               "cached plugin copies left behind after exit");
  remove_dir(e->plugins);
  remove_dir(e->cache);
  unlink(e->config);
  free(e->config);
}

static th_host *start(env *e) {
  th_host *h = th_start(e->config, NULL);
  cJSON *init = th_initialize(h, "2025-06-18", NULL);

  cr_assert_not_null(th_get(init, "result"), "initialize failed: %s",
                     th_stderr(h));
  cJSON_Delete(init);
  return h;
}

/* Sends SIGHUP and waits until the host has published the new generation.
 * Signals are not queued, so one reload is awaited before the next. */
static void reload(env *e, th_host *h) {
  char needle[64];

  snprintf(needle, sizeof(needle), "reload %d: generation", ++e->reloads);
  th_kill(h, SIGHUP);
  cr_assert(th_wait_stderr(h, needle, WAIT_MS), "no \"%s\" in:\n%s", needle,
            th_stderr(h));
}

/* Occurrences of needle in text (NULL counts as empty), not overlapping. */
static int occurrences(const char *text, const char *needle) {
  int n = 0;

  while (text != NULL && (text = strstr(text, needle)) != NULL) {
    n++;
    text += strlen(needle);
  }
  return n;
}

/* Occurrences of needle in the host's stderr so far. */
static int log_count(th_host *h, const char *needle) {
  return occurrences(th_stderr(h), needle);
}

static int wait_log_count(th_host *h, const char *needle, int want) {
  long long deadline = th_now_ms() + WAIT_MS;

  while (log_count(h, needle) < want) {
    if (th_now_ms() > deadline)
      return 0;
    usleep(10000);
  }
  return 1;
}

/* Counts the notifications named `method` that arrived before a ping's
 * response and consumes them. Anything the host sent while publishing a
 * reload is on stdout before the answer to a later request. */
static int notifications_so_far(th_host *h, const char *method) {
  cJSON *ping = th_request(h, "ping", NULL, WAIT_MS), *n;
  int count = 0;

  cr_assert_not_null(ping, "no ping response");
  cJSON_Delete(ping);
  while ((n = th_notification(h, method, 0)) != NULL) {
    count++;
    cJSON_Delete(n);
  }
  return count;
}

/* The three list_changed counts since the last call, as "t r p". */
static void expect_changes(th_host *h, int tools, int resources, int prompts,
                           const char *step) {
  int t = notifications_so_far(h, "notifications/tools/list_changed");
  int r = notifications_so_far(h, "notifications/resources/list_changed");
  int p = notifications_so_far(h, "notifications/prompts/list_changed");

  cr_expect(t == tools && r == resources && p == prompts,
            "%s: list_changed tools/resources/prompts %d/%d/%d, want "
            "%d/%d/%d",
            step, t, r, p, tools, resources, prompts);
}

/* tools/list names in list order, comma-separated (caller frees). */
static char *tool_names(th_host *h) {
  cJSON *res = th_request(h, "tools/list", NULL, WAIT_MS);
  const cJSON *tool;
  char *out = calloc(1, 4096);

  cr_assert_not_null(res, "no tools/list response");
  cr_assert_not_null(th_get(res, "result.tools"), "tools/list failed");
  cJSON_ArrayForEach(tool, th_get(res, "result.tools")) {
    if (out[0] != '\0')
      strcat(out, ",");
    strcat(out, th_str(tool, "name"));
  }
  cJSON_Delete(res);
  return out;
}

static void expect_tools(th_host *h, const char *want, const char *step) {
  char *names = tool_names(h);

  cr_expect_str_eq(names, want, "%s: tools/list", step);
  free(names);
}

/* Calls a tool and returns its first text block (caller frees); *is_error
 * receives isError. Fails the test on a JSON-RPC error. */
static char *call_tool(th_host *h, const char *tool, const char *args,
                       int *is_error) {
  char params[512];
  cJSON *res;
  const char *text;
  char *copy;

  snprintf(params, sizeof(params), "{\"name\":\"%s\",\"arguments\":%s}", tool,
           args ? args : "{}");
  res = th_request(h, "tools/call", params, WAIT_MS);
  cr_assert_not_null(res, "no response to %s", tool);
  cr_assert_null(th_get(res, "error"), "%s failed: %s", tool,
                 th_str(res, "error.message"));
  text = th_str(res, "result.content.0.text");
  cr_assert_not_null(text, "%s: no text in the result", tool);
  if (is_error != NULL)
    *is_error = cJSON_IsTrue(th_get(res, "result.isError"));
  copy = strdup(text);
  cJSON_Delete(res);
  return copy;
}

static void expect_answer(th_host *h, const char *tool, const char *want,
                          const char *step) {
  int is_error = 0;
  char *text = call_tool(h, tool, NULL, &is_error);

  cr_expect(!is_error && strcmp(text, want) == 0,
            "%s: %s answered \"%s\"%s, want \"%s\"", step, tool, text,
            is_error ? " (isError)" : "", want);
  free(text);
}

/* The same, for when the reload that brings `want` may still be coming. */
static void expect_answer_soon(th_host *h, const char *tool, const char *want,
                               const char *step) {
  long long deadline = th_now_ms() + WAIT_MS;
  char *text = call_tool(h, tool, NULL, NULL);

  while (strcmp(text, want) != 0 && th_now_ms() < deadline) {
    free(text);
    usleep(20000);
    text = call_tool(h, tool, NULL, NULL);
  }
  cr_expect_str_eq(text, want, "%s: %s", step, tool);
  free(text);
}

Test(reload, running_calls_finish_on_old_code_then_it_is_unloaded,
     .timeout = 120) {
  char old_copy[256], id[16], needle[64];
  long long started;
  cJSON *res;
  th_host *h;
  env e;
  int i;

  env_init(&e);
  install(&e, FIXTURE("stamp/a/stamp.so"), "stamp.so");
  h = start(&e);
  cr_assert_eq(count_files(e.cache, old_copy, sizeof(old_copy)), 1);

  /* Four sleeps occupy the four workers of build a. The ping after them
   * proves they were dispatched (requests are handled in order) before
   * the reload can start. */
  started = th_now_ms();
  for (i = 0; i < 4; i++) {
    snprintf(id, sizeof(id), "\"s%d\"", i);
    th_request_async(h, id, "tools/call",
                     "{\"name\":\"stamp_sleep\",\"arguments\":{\"ms\":4000}}");
  }
  cJSON_Delete(th_request(h, "ping", NULL, WAIT_MS));

  install(&e, FIXTURE("stamp/b/stamp.so"), "stamp.so");
  reload(&e, h);
  expect_answer(h, "stamp_build", "b", "new call after reload");

  /* Timing only decides whether this check is meaningful: with the
   * sleeps still running, build a must still be mapped and unfinalised. */
  if (th_now_ms() - started < 3000) {
    cr_expect_eq(log_count(h, "stamp a: fini"), 0,
                 "build a finalised while its calls were running");
    cr_expect(file_exists(e.cache, old_copy),
              "build a's cached copy vanished while its calls were running");
  } else {
    cr_log_warn("machine too slow to check the drain before completion");
  }

  for (i = 0; i < 4; i++) {
    snprintf(id, sizeof(id), "\"s%d\"", i);
    res = th_response(h, id, WAIT_MS);
    cr_assert_not_null(res, "slow call %s never answered", id);
    cr_expect_str_eq(th_str(res, "result.content.0.text"), "a slept 4000",
                     "a call that started on build a must finish on it");
    cJSON_Delete(res);
  }
  cr_expect(wait_log_count(h, "stamp a: fini", 1), "build a never finalised");
  snprintf(needle, sizeof(needle), "finalised instance default/stamp (stamp)");
  cr_expect(wait_log_count(h, needle, 1));
  cr_expect(wait_cache_count(&e, 1), "old cached copy not removed");
  cr_expect(!file_exists(e.cache, old_copy), "build a's copy is still there");
  expect_answer(h, "stamp_build", "b", "after the drain");
  cr_expect_eq(log_count(h, "stamp b: fini"), 0);
  env_finish(&e, h);
}

Test(reload, add_change_remove_send_the_right_list_changed, .timeout = 120) {
  th_host *h;
  env e;

  env_init(&e);
  install(&e, FIXTURE("provider.so"), "provider.so");
  h = start(&e);
  expect_tools(h, "provider_version", "start");
  expect_changes(h, 0, 0, 0, "start");

  install(&e, FIXTURE("ok.so"), "ok.so");
  reload(&e, h);
  expect_changes(h, 1, 1, 1, "add ok (tools, resources and prompts)");
  expect_tools(h, "ok_echo,ok_add,ok_fail,ok_progress,ok_log,provider_version",
               "add ok");

  install(&e, FIXTURE("consumer.so"), "consumer.so");
  reload(&e, h);
  expect_changes(h, 1, 0, 0, "add consumer (tools only)");
  expect_tools(h,
               "consumer_lookup,consumer_store,ok_echo,ok_add,ok_fail,"
               "ok_progress,ok_log,provider_version",
               "add consumer");

  /* A new build with the same listing: new code, no notification. */
  expect_answer(h, "provider_version", "1", "before the change");
  install(&e, FIXTURE("v2/provider.so"), "provider.so");
  reload(&e, h);
  expect_changes(h, 0, 0, 0, "change provider (same listing)");
  expect_answer(h, "provider_version", "2", "after the change");
  cr_expect(wait_log_count(h, "finalised instance default/provider", 1),
            "the replaced provider instance was never finalised");

  /* Nothing changed at all: a reload is quiet. */
  reload(&e, h);
  expect_changes(h, 0, 0, 0, "no-op reload");

  uninstall(&e, "ok.so");
  reload(&e, h);
  expect_changes(h, 1, 1, 1, "remove ok");
  expect_tools(h, "consumer_lookup,consumer_store,provider_version",
               "remove ok");

  /* Removing the provider strands its consumer: both go, one notice. */
  uninstall(&e, "provider.so");
  reload(&e, h);
  expect_changes(h, 1, 0, 0, "remove provider");
  expect_tools(h, "", "remove provider");
  cr_expect(th_wait_stderr(h, "requires service \"kv\"", WAIT_MS));
  /* consumer.so is still installed, but no instance uses it: it is
   * closed and its cached copy goes with the removed plugins' copies. */
  cr_expect(wait_cache_count(&e, 0), "unused plugins' copies are still there");
  env_finish(&e, h);
}

/* Every broken install is refused with a log line naming the file and the
 * reason; the instance that served before keeps serving, and clients hear
 * nothing because nothing they can see changed. */
Test(reload, broken_plugins_change_nothing, .timeout = 120) {
  const char *const tools = "provider_version,stamp_build,stamp_sleep";
  char line[512];
  th_host *h;
  env e;

  env_init(&e);
  install(&e, FIXTURE("provider.so"), "provider.so");
  install(&e, FIXTURE("stamp/a/stamp.so"), "stamp.so");
  h = start(&e);
  expect_tools(h, tools, "start");

  /* Bad magic over a serving plugin: the previous build stays. */
  install(&e, FIXTURE("bad_magic.so"), "provider.so");
  reload(&e, h);
  snprintf(line, sizeof(line), "refused plugin %s/provider.so: wrong magic",
           e.plugins);
  cr_expect(th_wait_stderr(h, line, WAIT_MS), "no \"%s\"", line);
  cr_expect(th_wait_stderr(h, "keeping the previous build of provider", 0));
  expect_changes(h, 0, 0, 0, "bad magic over provider");
  expect_tools(h, tools, "bad magic over provider");
  expect_answer(h, "provider_version", "1", "bad magic over provider");

  /* Bad magic as a new file. */
  install(&e, FIXTURE("bad_magic.so"), "bad_magic.so");
  reload(&e, h);
  snprintf(line, sizeof(line), "refused plugin %s/bad_magic.so: wrong magic",
           e.plugins);
  cr_expect(th_wait_stderr(h, line, WAIT_MS), "no \"%s\"", line);
  expect_changes(h, 0, 0, 0, "bad magic added");
  expect_tools(h, tools, "bad magic added");

  /* A new build of stamp whose init fails: the old instance stays. */
  install(&e, FIXTURE("stamp/broken/stamp.so"), "stamp.so");
  reload(&e, h);
  snprintf(line, sizeof(line),
           "refused plugin %s/stamp.so in department default: init of "
           "default/stamp (stamp) failed",
           e.plugins);
  cr_expect(th_wait_stderr(h, line, WAIT_MS), "no \"%s\"", line);
  cr_expect(th_wait_stderr(h, "stamp broken: init refuses on purpose", 0));
  cr_expect(
      th_wait_stderr(h, "keeping the previous instance default/stamp", 0));
  expect_changes(h, 0, 0, 0, "failing init over stamp");
  expect_tools(h, tools, "failing init over stamp");
  expect_answer(h, "stamp_build", "a", "failing init over stamp");

  /* A new plugin whose init fails. */
  install(&e, FIXTURE("init_fails.so"), "init_fails.so");
  reload(&e, h);
  cr_expect(th_wait_stderr(h, "init of default/init-fails (init-fails) failed",
                           WAIT_MS));
  expect_changes(h, 0, 0, 0, "failing init added");
  expect_tools(h, tools, "failing init added");

  /* Collisions: a plugin with a duplicate tool, and a second plugin
   * claiming a name already served (its file sorts after the first). */
  install(&e, FIXTURE("dup_tool.so"), "dup_tool.so");
  install(&e, FIXTURE("v2/provider.so"), "zz-provider.so");
  reload(&e, h);
  cr_expect(th_wait_stderr(h, "duplicate tool name \"same\"", WAIT_MS));
  snprintf(line, sizeof(line),
           "refused plugin %s/zz-provider.so: name \"provider\" already "
           "loaded",
           e.plugins);
  cr_expect(th_wait_stderr(h, line, WAIT_MS), "no \"%s\"", line);
  expect_changes(h, 0, 0, 0, "collisions added");
  expect_tools(h, tools, "collisions added");
  expect_answer(h, "provider_version", "1", "collisions added");

  /* Repairing works: a good build replaces the one kept through all that,
   * and the kept old build is finalised. */
  uninstall(&e, "zz-provider.so");
  install(&e, FIXTURE("stamp/b/stamp.so"), "stamp.so");
  install(&e, FIXTURE("v2/provider.so"), "provider.so");
  reload(&e, h);
  expect_changes(h, 0, 0, 0, "repaired");
  expect_answer(h, "stamp_build", "b", "repaired");
  expect_answer(h, "provider_version", "2", "repaired");
  cr_expect(wait_log_count(h, "stamp a: fini", 1));
  env_finish(&e, h);
}

/* A newcomer whose name is already served must be the one refused, even
 * when its file name sorts first: installing a file must not silently
 * take over a running plugin. */
Test(reload, name_collision_never_displaces_the_serving_plugin, .timeout = 60) {
  char line[512];
  th_host *h;
  env e;

  env_init(&e);
  install(&e, FIXTURE("provider.so"), "provider.so");
  h = start(&e);
  install(&e, FIXTURE("v2/provider.so"), "aa-provider.so");
  reload(&e, h);
  snprintf(line, sizeof(line),
           "refused plugin %s/aa-provider.so: name \"provider\" already "
           "loaded",
           e.plugins);
  cr_expect(th_wait_stderr(h, line, WAIT_MS), "no \"%s\" in:\n%s", line,
            th_stderr(h));
  expect_answer(h, "provider_version", "1", "collision sorting first");
  expect_changes(h, 0, 0, 0, "collision sorting first");
  env_finish(&e, h);
}

/* Config edits reload too: a new instance config re-creates the instance,
 * a config that makes init fail keeps the old one, a new prefix renames
 * the tools, and an unreadable config keeps everything. */
Test(reload, config_edits, .timeout = 120) {
  const char *const dept = "\"departments\":{\"default\":{\"plugins\":["
                           "{\"plugin\":\"stamp\",\"prefix\":\"%s\","
                           "\"config\":%s}]}}";
  th_host *h;
  env e;

  env_init(&e);
  install(&e, FIXTURE("stamp/a/stamp.so"), "stamp.so");
  write_config(&e, dept, "s", "{}");
  h = start(&e);
  expect_tools(h, "s_build,s_sleep", "start");

  write_config(&e, dept, "s", "{\"note\":1}");
  reload(&e, h);
  cr_expect(wait_log_count(h, "stamp a: fini", 1),
            "a new instance config must replace the instance");
  expect_changes(h, 0, 0, 0, "instance config edited");

  write_config(&e, dept, "s", "{\"fail_init\":true}");
  reload(&e, h);
  cr_expect(
      th_wait_stderr(h, "keeping the previous instance default/s", WAIT_MS));
  expect_changes(h, 0, 0, 0, "config breaks init");
  expect_answer(h, "s_build", "a", "config breaks init");
  cr_expect_eq(log_count(h, "stamp a: fini"), 1);

  write_config(&e, dept, "t", "{}");
  reload(&e, h);
  expect_changes(h, 1, 0, 0, "prefix renamed");
  expect_tools(h, "t_build,t_sleep", "prefix renamed");

  write_config(&e, "\"page_size\":");
  th_kill(h, SIGHUP);
  cr_expect(th_wait_stderr(h, "keeping the current configuration", WAIT_MS));
  expect_changes(h, 0, 0, 0, "unreadable config");
  expect_tools(h, "t_build,t_sleep", "unreadable config");
  env_finish(&e, h);
}

/* The consumer reaches the provider by service name on every call, so
 * swapping the provider's build under it never breaks it; only the data
 * (per instance) starts afresh. The consumer itself is never replaced. */
Test(reload, consumer_keeps_working_while_its_provider_reloads,
     .timeout = 180) {
  char id[32], params[256];
  int round, i, is_error;
  cJSON *res;
  th_host *h;
  env e;

  env_init(&e);
  install(&e, FIXTURE("consumer.so"), "consumer.so");
  install(&e, FIXTURE("provider.so"), "provider.so");
  h = start(&e);

  for (round = 0; round < 20; round++) {
    /* A burst of calls in flight while the provider is swapped. */
    for (i = 0; i < 8; i++) {
      snprintf(id, sizeof(id), "\"r%d-%d\"", round, i);
      snprintf(params, sizeof(params),
               i % 2 ? "{\"name\":\"consumer_lookup\",\"arguments\":{\"key\":"
                       "\"k%d\"}}"
                     : "{\"name\":\"consumer_store\",\"arguments\":{\"key\":"
                       "\"k%d\",\"value\":\"v\"}}",
               i / 2);
      th_request_async(h, id, "tools/call", params);
    }
    install(&e, round % 2 ? FIXTURE("provider.so") : FIXTURE("v2/provider.so"),
            "provider.so");
    reload(&e, h);
    for (i = 0; i < 8; i++) {
      const char *text;

      snprintf(id, sizeof(id), "\"r%d-%d\"", round, i);
      res = th_response(h, id, WAIT_MS);
      cr_assert_not_null(res, "call %s lost", id);
      cr_assert_null(th_get(res, "error"), "call %s failed", id);
      text = th_str(res, "result.content.0.text");
      is_error = cJSON_IsTrue(th_get(res, "result.isError"));
      /* A lookup may land on a fresh provider that has not seen the
       * store yet; a service failure is never acceptable. */
      if (i % 2 == 0)
        cr_expect(!is_error && strcmp(text, "stored") == 0, "store %s: \"%s\"",
                  id, text);
      else
        cr_expect(strcmp(text, "v") == 0 || strcmp(text, "not found") == 0,
                  "lookup %s: \"%s\"", id, text);
      cJSON_Delete(res);
    }
  }
  free(call_tool(h, "consumer_store", "{\"key\":\"x\",\"value\":\"y\"}",
                 &is_error));
  cr_expect(!is_error);
  {
    char *text = call_tool(h, "consumer_lookup", "{\"key\":\"x\"}", &is_error);
    cr_expect(!is_error && strcmp(text, "y") == 0, "lookup x: \"%s\"", text);
    free(text);
  }
  expect_answer(h, "provider_version", "1", "after 20 swaps");
  cr_expect(wait_log_count(h, "finalised instance default/provider", 20),
            "not every replaced provider was finalised");
  cr_expect_eq(log_count(h, "finalised instance default/consumer"), 0,
               "the consumer must be carried over, not re-created");
  cr_expect(wait_cache_count(&e, 2));
  env_finish(&e, h);
}

/* An instance still busy limits.drain_timeout_ms after it was retired is
 * reported stuck and never unloaded: its code may still be running, so it
 * is neither finalised nor dlclosed, even once its call finishes. */
Test(reload, busy_past_the_drain_deadline_is_stuck_and_never_unloaded,
     .timeout = 120) {
  char old_copy[256];
  cJSON *res;
  th_host *h;
  env e;

  env_init(&e);
  write_config(&e, "\"limits\":{\"drain_timeout_ms\":300}");
  install(&e, FIXTURE("stamp/a/stamp.so"), "stamp.so");
  h = start(&e);
  cr_assert_eq(count_files(e.cache, old_copy, sizeof(old_copy)), 1);
  th_request_async(h, "\"long\"", "tools/call",
                   "{\"name\":\"stamp_sleep\",\"arguments\":{\"ms\":8000}}");
  cJSON_Delete(th_request(h, "ping", NULL, WAIT_MS));
  install(&e, FIXTURE("stamp/b/stamp.so"), "stamp.so");
  reload(&e, h);
  cr_expect(
      th_wait_stderr(h, "instance default/stamp (stamp) is stuck", WAIT_MS),
      "no stuck report in:\n%s", th_stderr(h));
  expect_answer(h, "stamp_build", "b", "while a is stuck");

  /* Stuck is a report, not a cancellation: the call still completes. */
  res = th_response(h, "\"long\"", WAIT_MS);
  cr_assert_not_null(res);
  cr_expect_str_eq(th_str(res, "result.content.0.text"), "a slept 8000");
  cJSON_Delete(res);
  /* A finalise would run on the loop before the next request is read. */
  cJSON_Delete(th_request(h, "ping", NULL, WAIT_MS));
  cr_expect_eq(log_count(h, "stamp a: fini"), 0,
               "a stuck instance was finalised after its call ended");
  cr_expect(file_exists(e.cache, old_copy),
            "a stuck instance's code was unloaded after its call ended");
  th_stop(h, WAIT_MS);
  remove_dir(e.plugins);
  remove_dir(e.cache);
  unlink(e.config);
  free(e.config);
}

/* With watch_plugin_dir the rename alone reloads (debounced): no SIGHUP. */
Test(reload, watch_plugin_dir_reloads_on_install, .timeout = 120) {
  th_host *h;
  env e;

  env_init(&e);
  write_config(&e, "\"watch_plugin_dir\":true");
  install(&e, FIXTURE("stamp/a/stamp.so"), "stamp.so");
  h = start(&e);
  expect_answer(h, "stamp_build", "a", "start");

  install(&e, FIXTURE("stamp/b/stamp.so"), "stamp.so");
  cr_assert(th_wait_stderr(h, "reload 1: generation", WAIT_MS),
            "installing did not reload:\n%s", th_stderr(h));
  /* Writing the temporary file is an event too; on a slow machine it may
   * fire a reload of its own before the rename lands. */
  expect_answer_soon(h, "stamp_build", "b", "after the install");

  /* A burst of installs ends on the last one; a new plugin is announced. */
  install(&e, FIXTURE("stamp/a/stamp.so"), "stamp.so");
  install(&e, FIXTURE("provider.so"), "provider.so");
  cr_assert(th_wait_stderr(h, "reload 2: generation", WAIT_MS));
  {
    cJSON *n = th_notification(h, "notifications/tools/list_changed", WAIT_MS);

    cr_expect_not_null(n);
    cJSON_Delete(n);
  }
  /* The burst may have been split across reloads; wait for the last. */
  {
    long long deadline = th_now_ms() + WAIT_MS;
    char *names = tool_names(h);

    while (strcmp(names, "provider_version,stamp_build,stamp_sleep") != 0 &&
           th_now_ms() < deadline) {
      free(names);
      usleep(20000);
      names = tool_names(h);
    }
    cr_expect_str_eq(names, "provider_version,stamp_build,stamp_sleep");
    free(names);
  }
  expect_answer_soon(h, "stamp_build", "a", "after the burst");
  env_finish(&e, h);
}

/* ---- The same over Streamable HTTP: a legacy session's GET stream and a
 * modern subscriptions/listen stream each hear list_changed. ---- */

/* Appends what arrives on fd to *buf until `until` occurs `count` times in
 * it; 1 if so, 0 on timeout or EOF. */
static int read_count(int fd, char **buf, size_t *len, const char *until,
                      int count) {
  long long deadline = th_now_ms() + WAIT_MS;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  ssize_t n;

  for (;;) {
    if (occurrences(*buf, until) >= count)
      return 1;
    if (th_now_ms() > deadline || poll(&p, 1, 100) < 0)
      return 0;
    if (!(p.revents & (POLLIN | POLLHUP)))
      continue;
    *buf = realloc(*buf, *len + 65536);
    n = read(fd, *buf + *len, 65535);
    if (n <= 0)
      return 0;
    *len += (size_t)n;
    (*buf)[*len] = '\0';
  }
}

static int read_until(int fd, char **buf, size_t *len, const char *until) {
  return read_count(fd, buf, len, until, 1);
}

Test(reload, http_streams_hear_list_changed, .timeout = 120) {
  const char *const meta =
      "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
      "\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}";
  char *text = NULL, hdr[256], body[1024], *sid, needle[64];
  char *get_buf = NULL, *listen_buf = NULL;
  size_t get_len = 0, listen_len = 0;
  int fd, get_fd, listen_fd, status, reloads = 0, step;
  th_http_host host;
  env e;

  env_init(&e);
  install(&e, FIXTURE("stamp/a/stamp.so"), "stamp.so");
  th_http_start(&host, e.config, WAIT_MS);

  /* Legacy: a session, initialized, with its GET stream open. */
  fd = th_http_send(host.port, "POST", "",
                    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
                    "\"params\":{\"protocolVersion\":\"2025-11-25\","
                    "\"capabilities\":{},\"clientInfo\":{\"name\":\"t\","
                    "\"version\":\"1\"}}}");
  cr_assert(read_until(fd, &get_buf, &get_len, "\"result\""));
  sid = th_http_session_id(get_buf);
  cr_assert_not_null(sid, "%s", get_buf);
  close(fd);
  free(get_buf);
  get_buf = NULL;
  get_len = 0;
  snprintf(hdr, sizeof(hdr),
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n", sid);
  fd = th_http_send(host.port, "POST", hdr,
                    "{\"jsonrpc\":\"2.0\","
                    "\"method\":\"notifications/initialized\"}");
  cr_assert(read_until(fd, &get_buf, &get_len, "HTTP/1.1 202"), "%s", get_buf);
  close(fd);
  free(get_buf);
  get_buf = NULL;
  get_len = 0;
  get_fd = th_http_send(host.port, "GET", hdr, NULL);
  cr_assert(read_until(get_fd, &get_buf, &get_len, "text/event-stream"),
            "GET stream: %s", get_buf);

  /* Modern: a listen stream for all three lists. */
  snprintf(body, sizeof(body),
           "{\"jsonrpc\":\"2.0\",\"id\":\"l1\",\"method\":"
           "\"subscriptions/listen\",\"params\":{\"notifications\":{"
           "\"toolsListChanged\":true,\"resourcesListChanged\":true,"
           "\"promptsListChanged\":true},%s}}",
           meta);
  listen_fd = th_http_send(host.port, "POST",
                           "MCP-Protocol-Version: 2026-07-28\r\n"
                           "Mcp-Method: subscriptions/listen\r\n",
                           body);
  cr_assert(read_until(listen_fd, &listen_buf, &listen_len, "acknowledged"),
            "listen stream: %s", listen_buf);

  /* Add ok (all three lists), swap stamp (nothing visible), remove ok. */
  for (step = 0; step < 3; step++) {
    if (step == 0)
      install(&e, FIXTURE("ok.so"), "ok.so");
    else if (step == 1)
      install(&e, FIXTURE("stamp/b/stamp.so"), "stamp.so");
    else
      uninstall(&e, "ok.so");
    kill(host.pid, SIGHUP);
    snprintf(needle, sizeof(needle), "reload %d: generation", ++reloads);
    free(text);
    text = th_http_wait_log(&host, needle, WAIT_MS);
    cr_assert_not_null(text, "no \"%s\"", needle);
  }
  /* Steps 0 and 2 each send all three; step 1 must add nothing. Waiting
   * for the second prompts notice covers everything before it. */
  cr_expect(read_count(get_fd, &get_buf, &get_len, "prompts/list_changed", 2),
            "GET: %s", get_buf);
  cr_expect(read_count(listen_fd, &listen_buf, &listen_len,
                       "prompts/list_changed", 2),
            "listen: %s", listen_buf);
  cr_expect_eq(occurrences(get_buf, "tools/list_changed"), 2, "GET: %s",
               get_buf);
  cr_expect_eq(occurrences(get_buf, "resources/list_changed"), 2);
  cr_expect_eq(occurrences(listen_buf, "tools/list_changed"), 2, "listen: %s",
               listen_buf);
  cr_expect_eq(occurrences(listen_buf, "resources/list_changed"), 2);
  cr_expect_eq(occurrences(listen_buf, "prompts/list_changed"), 2);

  close(get_fd);
  close(listen_fd);
  status = th_http_stop(&host);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit %d", status);
  cr_expect_eq(count_files(e.cache, NULL, 0), 0);
  free(text);
  free(sid);
  free(get_buf);
  free(listen_buf);
  remove_dir(e.plugins);
  remove_dir(e.cache);
  unlink(e.config);
  free(e.config);
}
