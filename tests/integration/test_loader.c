/* test_loader.c: what the real host loads and exposes: refusals with one
 * log line each, prefixes and separators, collisions, allow/deny filters,
 * departments, service requirements, the lists with their pagination, and
 * `--check`. */
#include "harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 5000
#define FIXTURES PH_TEST_PLUGIN_DIR

/* The default department serves `plugins`; `top` (members ending in a
 * comma, or NULL) goes at the top level, `dept` (members ending in a
 * comma, or NULL) into the department. */
static th_host *start(const char *top, const char *dept, const char *plugins) {
  return th_start_config(top, dept, plugins, "2025-11-25");
}

/* Names (or URIs) of a whole list, following nextCursor, joined with
 * commas. `key` is the result member, `field` the member of each item. */
static char *list_all(th_host *h, const char *method, const char *key,
                      const char *field, int *pages) {
  char *names = strdup(""), *cursor = NULL, params[256];
  int n = 0;

  for (;;) {
    const cJSON *item, *next;
    cJSON *msg;

    if (cursor != NULL)
      snprintf(params, sizeof(params), "{\"cursor\":\"%s\"}", cursor);
    msg = th_request(h, method, cursor ? params : NULL, WAIT_MS);
    cr_assert_not_null(msg, "no answer to %s", method);
    cr_assert(cJSON_IsArray(th_get(th_get(msg, "result"), key)), "no %s array",
              key);
    cJSON_ArrayForEach(item, th_get(th_get(msg, "result"), key)) {
      const char *name = th_str(item, field);
      char *joined;

      cr_assert_not_null(name);
      cr_assert(asprintf(&joined, "%s%s%s", names, names[0] ? "," : "", name) >
                0);
      free(names);
      names = joined;
    }
    n++;
    free(cursor);
    cursor = NULL;
    next = th_get(msg, "result.nextCursor");
    if (cJSON_IsString(next))
      cursor = strdup(next->valuestring);
    cJSON_Delete(msg);
    if (cursor == NULL)
      break;
    cr_assert_lt(n, 100, "pagination does not end");
  }
  if (pages != NULL)
    *pages = n;
  return names;
}

static char *tool_names(th_host *h) {
  return list_all(h, "tools/list", "tools", "name", NULL);
}

/* Whether `name` is one of the comma-separated `names`. */
static int has_name(const char *names, const char *name) {
  size_t n = strlen(name);
  const char *p = names;

  while ((p = strstr(p, name)) != NULL) {
    if ((p == names || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
      return 1;
    p += n;
  }
  return 0;
}

/* How many lines of `log` contain both needles (b may be NULL). */
static int count_lines(const char *log, const char *a, const char *b) {
  const char *line = log, *nl;
  int n = 0;

  while (*line != '\0') {
    char *copy;

    nl = strchr(line, '\n');
    copy = strndup(line, nl ? (size_t)(nl - line) : strlen(line));
    if (strstr(copy, a) != NULL && (b == NULL || strstr(copy, b) != NULL))
      n++;
    free(copy);
    if (nl == NULL)
      break;
    line = nl + 1;
  }
  return n;
}

TestSuite(loader, .timeout = 30, .fini = th_remove_config);

/* ---- refusals ---- */

Test(loader, each_refused_fixture_gets_one_log_line_with_its_reason) {
  static const struct {
    const char *file, *reason;
  } refused[] = {
      {"bad_magic.so", "magic"},
      {"older_major.so", "ABI major 0"},
      {"newer_minor.so", "ABI minor"},
      {"short_size.so", "size"},
      {"dup_tool.so", "duplicate tool name \"same\""},
      {"bad_chars.so", "has space"},
      {"long_name.so", "a123456789b123456789"},
  };
  th_host *h = start(NULL, NULL, "{'plugin':'ok','prefix':'ok'}");
  const char *log;
  char *names;
  size_t i;

  /* Loading is over before the first answer. */
  log = th_stderr(h);
  for (i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
    cr_expect_eq(count_lines(log, refused[i].file, NULL), 1,
                 "want one line naming %s; stderr:\n%s", refused[i].file, log);
    cr_expect_eq(count_lines(log, refused[i].file, refused[i].reason), 1,
                 "the line for %s does not say \"%s\"; stderr:\n%s",
                 refused[i].file, refused[i].reason, log);
  }
  /* The good plugin next to them is served. */
  names = tool_names(h);
  cr_expect(has_name(names, "ok_echo"), "tools: %s", names);
  free(names);
  th_stop_config(h);
}

Test(loader, refused_plugins_are_whole_refusals) {
  th_host *h = start(NULL, NULL,
                     "{'plugin':'ok','prefix':'ok'},"
                     "{'plugin':'dup-tool','prefix':'dup'},"
                     "{'plugin':'bad-chars','prefix':'bc'},"
                     "{'plugin':'long-name','prefix':'ln'}");
  char *names = tool_names(h);
  cJSON *msg;

  /* Not even their valid tools are exposed. */
  cr_expect(!has_name(names, "dup_unique"), "tools: %s", names);
  cr_expect(!has_name(names, "dup_same"), "tools: %s", names);
  cr_expect(!has_name(names, "bc_fine"), "tools: %s", names);
  cr_expect(!has_name(names, "ln_fine"), "tools: %s", names);
  cr_expect(has_name(names, "ok_echo"), "tools: %s", names);
  free(names);
  msg = th_rpc(h, "tools/call", "{'name':'dup_unique'}");
  cr_expect_eq(th_num(msg, "error.code"), -32602);
  cJSON_Delete(msg);
  /* The department names what it could not find. */
  cr_expect(th_wait_stderr(h, "\"dup-tool\"", WAIT_MS), "stderr:\n%s",
            th_stderr(h));
  th_stop_config(h);
}

Test(loader, init_failure_refuses_the_instance_with_one_line) {
  th_host *h = start(NULL, NULL,
                     "{'plugin':'init-fails','prefix':'if'},"
                     "{'plugin':'ok','prefix':'ok'}");
  const char *log = th_stderr(h);
  char *names = tool_names(h);

  cr_expect_eq(count_lines(log, "init_fails.so", "init"), 1, "stderr:\n%s",
               log);
  /* The plugin's own reason reaches the log too. */
  cr_expect_eq(count_lines(log, "refusing to start", NULL), 1, "stderr:\n%s",
               log);
  cr_expect(!has_name(names, "if_unreachable"), "tools: %s", names);
  cr_expect(has_name(names, "ok_echo"), "tools: %s", names);
  free(names);
  th_stop_config(h);
}

Test(loader, missing_service_refuses_the_instance) {
  th_host *h = start(NULL, NULL,
                     "{'plugin':'needs-missing','prefix':'nm'},"
                     "{'plugin':'ok','prefix':'ok'}");
  const char *log = th_stderr(h);
  char *names = tool_names(h);

  cr_expect_eq(count_lines(log, "needs_missing_service.so", "no-such-service"),
               1, "stderr:\n%s", log);
  cr_expect(!has_name(names, "nm_orphan"), "tools: %s", names);
  cr_expect(has_name(names, "ok_echo"), "tools: %s", names);
  free(names);
  th_stop_config(h);
}

Test(loader, consumer_without_provider_is_refused) {
  th_host *h = start(NULL, NULL,
                     "{'plugin':'consumer','prefix':'cons'},"
                     "{'plugin':'ok','prefix':'ok'}");
  const char *log = th_stderr(h);
  char *names = tool_names(h);
  cJSON *msg;

  cr_expect_eq(count_lines(log, "consumer.so", "\"kv\""), 1, "stderr:\n%s",
               log);
  cr_expect(!has_name(names, "cons_lookup"), "tools: %s", names);
  free(names);
  msg =
      th_rpc(h, "tools/call", "{'name':'cons_lookup','arguments':{'key':'k'}}");
  cr_expect_eq(th_num(msg, "error.code"), -32602);
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(loader, unknown_plugin_name_is_logged) {
  th_host *h = start(NULL, NULL,
                     "{'plugin':'no-such-plugin'},"
                     "{'plugin':'ok','prefix':'ok'}");

  cr_expect(th_wait_stderr(h, "\"no-such-plugin\"", WAIT_MS), "stderr:\n%s",
            th_stderr(h));
  th_stop_config(h);
}

/* ---- names ---- */

Test(loader, prefixes_name_tools_and_prompts_but_not_resources) {
  th_host *h = start(NULL, NULL, "{'plugin':'ok','prefix':'ok'}");
  char *tools = tool_names(h);
  char *prompts = list_all(h, "prompts/list", "prompts", "name", NULL);
  char *resources = list_all(h, "resources/list", "resources", "uri", NULL);
  char *templates = list_all(h, "resources/templates/list", "resourceTemplates",
                             "uriTemplate", NULL);

  cr_expect_str_eq(tools, "ok_echo,ok_add,ok_fail,ok_progress,ok_log");
  cr_expect_str_eq(prompts, "ok_greet");
  cr_expect_str_eq(resources, "ok://hello");
  cr_expect_str_eq(templates, "ok://items/{id}");
  free(tools);
  free(prompts);
  free(resources);
  free(templates);
  th_stop_config(h);
}

Test(loader, default_prefix_is_the_plugin_name) {
  th_host *h = start(NULL, NULL, "{'plugin':'ok'},{'plugin':'slow'}");
  char *names = tool_names(h);

  cr_expect(has_name(names, "ok_echo"), "tools: %s", names);
  cr_expect(has_name(names, "slow_sleep"), "tools: %s", names);
  free(names);
  th_stop_config(h);
}

Test(loader, empty_prefix_gives_bare_names) {
  th_host *h = start(NULL, NULL, "{'plugin':'ok','prefix':''}");
  char *names = tool_names(h);
  char *prompts = list_all(h, "prompts/list", "prompts", "name", NULL);
  cJSON *msg;

  cr_expect_str_eq(names, "echo,add,fail,progress,log");
  cr_expect_str_eq(prompts, "greet");
  free(names);
  free(prompts);
  msg = th_rpc(h, "tools/call", "{'name':'echo','arguments':{'text':'bare'}}");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "bare");
  cJSON_Delete(msg);
  msg = th_rpc(h, "prompts/get", "{'name':'greet','arguments':{'name':'B'}}");
  cr_expect_str_eq(th_str(msg, "result.messages.0.content.text"),
                   "Please greet B warmly.");
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(loader, separator_is_configurable) {
  th_host *h = start("'separator':'-',", NULL, "{'plugin':'ok','prefix':'ok'}");
  char *names = tool_names(h);
  cJSON *msg;

  cr_expect(has_name(names, "ok-echo"), "tools: %s", names);
  cr_expect(!has_name(names, "ok_echo"), "tools: %s", names);
  free(names);
  msg = th_rpc(h, "tools/call", "{'name':'ok-echo','arguments':{'text':'s'}}");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "s");
  cJSON_Delete(msg);
  th_stop_config(h);
}

/* ---- collisions ---- */

Test(loader, two_instances_of_one_plugin_coexist_under_two_prefixes) {
  th_host *h = start(NULL, NULL,
                     "{'plugin':'ok','prefix':'crm'},"
                     "{'plugin':'ok','prefix':'erp'}");
  char *names = tool_names(h);
  cJSON *msg;

  cr_expect(has_name(names, "crm_echo"), "tools: %s", names);
  cr_expect(has_name(names, "erp_echo"), "tools: %s", names);
  free(names);
  msg = th_rpc(h, "tools/call", "{'name':'crm_echo','arguments':{'text':'c'}}");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "c");
  cJSON_Delete(msg);
  msg = th_rpc(h, "tools/call", "{'name':'erp_echo','arguments':{'text':'e'}}");
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "e");
  cJSON_Delete(msg);
  /* Resources keep their URIs, so the second instance's collide: the
   * first is kept and the refusal is logged. */
  names = list_all(h, "resources/list", "resources", "uri", NULL);
  cr_expect_str_eq(names, "ok://hello");
  free(names);
  cr_expect(th_wait_stderr(h, "collides", WAIT_MS), "stderr:\n%s",
            th_stderr(h));
  th_stop_config(h);
}

/* The description of tool `name` in the list, or NULL. */
static char *tool_description(th_host *h, const char *name) {
  cJSON *msg = th_rpc(h, "tools/list", NULL);
  const cJSON *t;
  char *found = NULL;

  cJSON_ArrayForEach(t, th_get(msg, "result.tools")) {
    if (strcmp(th_str(t, "name"), name) == 0 && th_str(t, "description"))
      found = strdup(th_str(t, "description"));
  }
  cJSON_Delete(msg);
  return found;
}

Test(loader, colliding_names_keep_the_earlier_and_log_the_later) {
  th_host *h = start(NULL, NULL,
                     "{'plugin':'ok','prefix':''},"
                     "{'plugin':'echo','prefix':''}");
  char *names = tool_names(h), *desc;

  /* ok's echo came first; echo's echo_inline does not collide. */
  cr_expect_str_eq(names, "echo,add,fail,progress,log,echo_inline");
  free(names);
  desc = tool_description(h, "echo");
  cr_expect_str_eq(desc, "Returns the text it is given.");
  free(desc);
  cr_expect_eq(count_lines(th_stderr(h), "\"echo\"", "collides"), 1,
               "stderr:\n%s", th_stderr(h));
  th_stop_config(h);

  /* The other order keeps the other one. */
  h = start(NULL, NULL,
            "{'plugin':'echo','prefix':''},"
            "{'plugin':'ok','prefix':''}");
  desc = tool_description(h, "echo");
  cr_expect_str_eq(desc, "Returns the text argument (worker pool).");
  free(desc);
  cr_expect_eq(count_lines(th_stderr(h), "\"echo\"", "collides"), 1,
               "stderr:\n%s", th_stderr(h));
  th_stop_config(h);
}

Test(loader, prefix_used_twice_refuses_the_later_instance) {
  th_host *h = start(NULL, NULL,
                     "{'plugin':'echo','prefix':'e'},"
                     "{'plugin':'ok','prefix':'e'}");
  char *names = tool_names(h);

  /* A prefix used twice refuses the later instance as a whole. */
  cr_expect_str_eq(names, "e_echo,e_echo_inline");
  free(names);
  cr_expect(th_wait_stderr(h, "prefix \"e\"", WAIT_MS), "stderr:\n%s",
            th_stderr(h));
  th_stop_config(h);
}

/* ---- allow / deny ---- */

Test(loader, allow_and_deny_filter_lists_and_calls) {
  th_host *h = start(NULL, "'allow':['ok_*','slow_now'],'deny':['ok_f*'],",
                     "{'plugin':'ok','prefix':'ok'},"
                     "{'plugin':'slow','prefix':'slow'}");
  char *names = tool_names(h);
  cJSON *msg;

  cr_expect_str_eq(names, "ok_echo,ok_add,ok_progress,ok_log,slow_now");
  free(names);
  msg = th_rpc(h, "tools/call", "{'name':'ok_fail'}");
  cr_expect_eq(th_num(msg, "error.code"), -32602);
  cJSON_Delete(msg);
  msg = th_rpc(h, "tools/call", "{'name':'slow_sleep','arguments':{'ms':1}}");
  cr_expect_eq(th_num(msg, "error.code"), -32602);
  cJSON_Delete(msg);
  msg = th_rpc(h, "tools/call", "{'name':'slow_now'}");
  cr_expect(cJSON_IsObject(th_get(msg, "result")));
  cJSON_Delete(msg);
  /* ok_greet matches ok_*; the resource URIs do not, so they are out. */
  names = list_all(h, "prompts/list", "prompts", "name", NULL);
  cr_expect_str_eq(names, "ok_greet");
  free(names);
  names = list_all(h, "resources/list", "resources", "uri", NULL);
  cr_expect_str_eq(names, "");
  free(names);
  msg = th_rpc(h, "resources/read", "{'uri':'ok://hello'}");
  cr_expect_eq(th_num(msg, "error.code"), -32002);
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(loader, deny_alone_keeps_everything_else) {
  th_host *h = start(NULL, "'deny':['*_log','ok://*'],",
                     "{'plugin':'ok','prefix':'ok'}");
  char *names = tool_names(h);
  cJSON *msg;

  cr_expect_str_eq(names, "ok_echo,ok_add,ok_fail,ok_progress");
  free(names);
  msg = th_rpc(h, "tools/call", "{'name':'ok_log'}");
  cr_expect_eq(th_num(msg, "error.code"), -32602);
  cJSON_Delete(msg);
  msg = th_rpc(h, "resources/read", "{'uri':'ok://items/3'}");
  cr_expect_eq(th_num(msg, "error.code"), -32002);
  cJSON_Delete(msg);
  th_stop_config(h);
}

/* ---- departments ---- */

Test(loader, department_flag_selects_what_stdio_serves) {
  char *json = th_dq("{'plugin_dir':'" FIXTURES "','departments':{"
                     "'default':{'plugins':[{'plugin':'ok','prefix':'ok'}]},"
                     "'sales':{'plugins':[{'plugin':'slow','prefix':'s'}]}}}");
  char *path = th_write_temp(json, ".json");
  th_host *h = th_start(path, "--department", "sales", NULL);
  char *names;

  free(json);
  cJSON_Delete(th_initialize(h, "2025-11-25", NULL));
  names = tool_names(h);
  cr_expect_str_eq(names, "s_sleep,s_now");
  free(names);
  th_stop(h, WAIT_MS);
  unlink(path);
  free(path);
}

/* ---- lists ---- */

#define MANY                                                                   \
  "{'plugin':'ok','prefix':'ok'},{'plugin':'slow','prefix':'slow'},"           \
  "{'plugin':'hang','prefix':'hang'},{'plugin':'echo','prefix':'e'},"          \
  "{'plugin':'conformance','prefix':'conf'}"

Test(loader, lists_are_deterministic) {
  static const char *const methods[] = {"tools/list", "resources/list",
                                        "resources/templates/list",
                                        "prompts/list"};
  th_host *h = start(NULL, NULL, MANY);
  size_t i;

  for (i = 0; i < sizeof(methods) / sizeof(*methods); i++) {
    cJSON *a = th_rpc(h, methods[i], NULL), *b = th_rpc(h, methods[i], NULL);
    char *ta = cJSON_PrintUnformatted(th_get(a, "result"));
    char *tb = cJSON_PrintUnformatted(th_get(b, "result"));

    cr_expect_str_eq(ta, tb, "%s differs between two calls", methods[i]);
    free(ta);
    free(tb);
    cJSON_Delete(a);
    cJSON_Delete(b);
  }
  th_stop_config(h);
}

Test(loader, tool_listing_has_schemas_and_annotations) {
  th_host *h = start(NULL, NULL, "{'plugin':'ok','prefix':'ok'}");
  cJSON *msg = th_rpc(h, "tools/list", NULL);
  const cJSON *t;
  int seen = 0;

  cJSON_ArrayForEach(t, th_get(msg, "result.tools")) {
    cr_expect_str_eq(th_str(t, "inputSchema.type"), "object");
    if (strcmp(th_str(t, "name"), "ok_echo") == 0) {
      cr_expect_str_eq(th_str(t, "title"), "Echo");
      cr_expect(cJSON_IsTrue(th_get(t, "annotations.readOnlyHint")));
      cr_expect(cJSON_IsTrue(th_get(t, "annotations.idempotentHint")));
      cr_expect_null(th_get(t, "annotations.destructiveHint"));
      seen |= 1;
    } else if (strcmp(th_str(t, "name"), "ok_add") == 0) {
      cr_expect_str_eq(th_str(t, "outputSchema.type"), "object");
      seen |= 2;
    } else if (strcmp(th_str(t, "name"), "ok_fail") == 0) {
      cr_expect_null(th_get(t, "outputSchema"));
      seen |= 4;
    }
  }
  cr_expect_eq(seen, 7);
  cJSON_Delete(msg);
  th_stop_config(h);
}

/* Lists one method with page size 2 and with one big page and compares. */
static void compare_paged(const char *method, const char *key,
                          const char *field, int want_pages) {
  th_host *h = start("'page_size':2,", NULL, MANY);
  char *paged, *whole;
  int pages = 0, one = 0;

  paged = list_all(h, method, key, field, &pages);
  th_stop_config(h);
  h = start("'page_size':1000,", NULL, MANY);
  whole = list_all(h, method, key, field, &one);
  th_stop_config(h);
  cr_expect_eq(one, 1, "%s: one big page expected", method);
  cr_expect_eq(pages, want_pages, "%s: %d pages of 2", method, pages);
  cr_expect_str_eq(paged, whole, "%s: pages differ from the whole list",
                   method);
  cr_expect_neq(strlen(whole), 0);
  free(paged);
  free(whole);
}

Test(loader, tools_paginate_to_the_same_list) {
  /* Count the tools, then expect ceil(n / 2) pages of 2. */
  th_host *h = start(NULL, NULL, MANY);
  char *names = tool_names(h);
  int n = 1;
  const char *p;

  for (p = names; *p != '\0'; p++)
    n += *p == ',';
  free(names);
  th_stop_config(h);
  compare_paged("tools/list", "tools", "name", (n + 1) / 2);
}

Test(loader, resources_prompts_and_templates_paginate) {
  /* 4 resources, 6 prompts, 2 templates. */
  compare_paged("resources/list", "resources", "uri", 2);
  compare_paged("prompts/list", "prompts", "name", 3);
  compare_paged("resources/templates/list", "resourceTemplates", "uriTemplate",
                1);
}

Test(loader, invalid_cursors_are_invalid_params) {
  static const char *const bad[] = {
      "{'cursor':'bogus'}",
      "{'cursor':'p'}",
      "{'cursor':'p99'}",
      "{'cursor':'p1z'}",
      "{'cursor':'-1'}",
      "{'cursor':7}",
      "{'cursor':'p-1'}",
      "{'cursor':'P1'}",
      /* Not issued by the host, though strtoul would read them as p1. */
      "{'cursor':'p 1'}",
      "{'cursor':'p+1'}",
  };
  th_host *h = start("'page_size':2,", NULL, MANY);
  size_t i;
  cJSON *msg;

  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    msg = th_rpc(h, "tools/list", bad[i]);
    cr_expect_eq(th_num(msg, "error.code"), -32602, "cursor %s", bad[i]);
    cJSON_Delete(msg);
  }
  /* The cursor of one list is not valid past the end of a shorter one. */
  msg = th_rpc(h, "tools/list", NULL);
  cr_assert_not_null(th_str(msg, "result.nextCursor"));
  cJSON_Delete(msg);
  msg = th_rpc(h, "resources/templates/list", NULL);
  cr_expect_null(th_get(msg, "result.nextCursor"));
  cJSON_Delete(msg);
  msg = th_rpc(h, "resources/templates/list", "{'cursor':'p5'}");
  cr_expect_eq(th_num(msg, "error.code"), -32602);
  cJSON_Delete(msg);
  th_stop_config(h);
}

/* ---- --check ---- */

/* Runs `plughost --config config --check` from the source directory and
 * returns its exit status; *err gets its stderr (caller frees). */
static int run_check(const char *config, char **err) {
  int pipefd[2], status;
  char *buf = NULL, chunk[4096];
  size_t len = 0;
  long long deadline = th_now_ms() + WAIT_MS;
  pid_t pid;
  ssize_t n;

  cr_assert_eq(pipe(pipefd), 0);
  pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);

    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    close(pipefd[1]);
    if (chdir(PH_SOURCE_DIR) != 0)
      _exit(126);
    execl(th_binary(), th_binary(), "--config", config, "--check",
          (char *)NULL);
    _exit(127);
  }
  close(pipefd[1]);
  for (;;) {
    struct pollfd pfd = {pipefd[0], POLLIN, 0};

    if (poll(&pfd, 1, (int)(deadline - th_now_ms())) <= 0)
      break;
    n = read(pipefd[0], chunk, sizeof(chunk));
    if (n <= 0)
      break;
    buf = realloc(buf, len + (size_t)n + 1);
    memcpy(buf + len, chunk, (size_t)n);
    len += (size_t)n;
  }
  close(pipefd[0]);
  if (waitpid(pid, &status, WNOHANG) == 0) {
    usleep(100000);
    if (waitpid(pid, &status, WNOHANG) == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      cr_assert_fail("plughost --check did not finish");
    }
  }
  if (buf == NULL)
    buf = calloc(1, 1);
  buf[len] = '\0';
  *err = buf;
  return status;
}

/* A private plugin directory holding copies of the named fixtures. */
static char *plugin_dir_with(const char *const *files) {
  char *dir = strdup("/tmp/ph-check-XXXXXX");
  char src[1024], dst[1024], cmd[2300];

  cr_assert_not_null(mkdtemp(dir));
  for (; *files != NULL; files++) {
    snprintf(src, sizeof(src), "%s/%s", FIXTURES, *files);
    snprintf(dst, sizeof(dst), "%s/%s", dir, *files);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, dst);
    cr_assert_eq(system(cmd), 0);
  }
  return dir;
}

static void remove_dir(char *dir) {
  char cmd[1100];

  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  cr_expect_eq(system(cmd), 0);
  free(dir);
}

/* A config serving ok from dir, with `extra` members at the top level. */
static char *check_config(const char *dir, const char *extra) {
  return th_write_config(dir, extra, NULL, "{'plugin':'ok','prefix':'ok'}");
}

Test(loader, check_accepts_a_good_config) {
  static const char *const good[] = {"ok.so", "slow.so", NULL};
  char *dir = plugin_dir_with(good), *config = check_config(dir, ""), *err;
  int status = run_check(config, &err);

  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "status %d; stderr:\n%s", status, err);
  cr_expect_not_null(strstr(err, "valid"), "stderr:\n%s", err);
  free(err);
  unlink(config);
  free(config);
  remove_dir(dir);
}

Test(loader, check_refuses_a_bad_plugin_and_says_why) {
  static const char *const files[] = {"ok.so", "bad_magic.so", NULL};
  char *dir = plugin_dir_with(files), *config = check_config(dir, ""), *err;
  int status = run_check(config, &err);

  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) != 0,
            "status %d; stderr:\n%s", status, err);
  cr_expect_eq(count_lines(err, "bad_magic.so", "magic"), 1, "stderr:\n%s",
               err);
  free(err);
  unlink(config);
  free(config);
  remove_dir(dir);
}

Test(loader, check_refuses_an_instance_that_cannot_start) {
  static const char *const files[] = {"ok.so", "init_fails.so", NULL};
  char *dir = plugin_dir_with(files), *err;
  char *config = th_write_config(dir, NULL, NULL, "{'plugin':'init-fails'}");
  int status = run_check(config, &err);

  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) != 0,
            "status %d; stderr:\n%s", status, err);
  cr_expect_neq(count_lines(err, "init_fails.so", NULL), 0, "stderr:\n%s", err);
  free(err);
  unlink(config);
  free(config);
  remove_dir(dir);
}

Test(loader, check_refuses_an_unknown_key_naming_it) {
  static const char *const good[] = {"ok.so", NULL};
  char *dir = plugin_dir_with(good), *err;
  char *config = check_config(dir, "'plugin_dri':'x',");
  int status = run_check(config, &err);

  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) != 0,
            "status %d; stderr:\n%s", status, err);
  cr_expect_not_null(strstr(err, "plugin_dri"), "stderr:\n%s", err);
  free(err);
  unlink(config);
  free(config);
  remove_dir(dir);
}

Test(loader, check_refuses_a_missing_config_file) {
  char *err;
  int status = run_check("/nonexistent/plughost.json", &err);

  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) != 0, "status %d", status);
  cr_expect_not_null(strstr(err, "/nonexistent/plughost.json"), "stderr:\n%s",
                     err);
  free(err);
}
