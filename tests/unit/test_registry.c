/* test_registry.c: building generations from real fixture plugins:
 * composition under prefixes, collision refusal, allow/deny, service
 * requirements, instance reuse, pagination cursors and template matching.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "host_api.h"
#include "instance.h"
#include "loader.h"
#include "registry.h"

static char cache_dir[] = "/tmp/ph-registry-XXXXXX";
static ph__plugin *plugins[16];
static size_t nplugins;

static void setup(void) {
  cr_assert_not_null(mkdtemp(cache_dir));
  ph__instances_set_api(&ph__host_api);
}

static void teardown(void) {
  size_t i;

  for (i = 0; i < nplugins; i++)
    ph__plugin_unref(plugins[i]);
  nplugins = 0;
  rmdir(cache_dir);
}

TestSuite(registry, .init = setup, .fini = teardown);

/* Loads fixture `file` (e.g. "ok.so") into the plugin set. */
static ph__plugin *load(const char *file) {
  char path[1024], *err = NULL;
  ph__plugin *p;

  snprintf(path, sizeof(path), "%s/%s", PH_TEST_PLUGIN_DIR, file);
  p = ph__plugin_load(path, cache_dir, &err);
  cr_assert_not_null(p, "%s: %s", path, err ? err : "?");
  cr_assert_lt(nplugins, sizeof(plugins) / sizeof(*plugins));
  plugins[nplugins++] = p;
  return p;
}

static char *dq(const char *text) {
  char *s = strdup(text), *p;

  cr_assert_not_null(s);
  for (p = s; *p != '\0'; p++)
    if (*p == '\'')
      *p = '"';
  return s;
}

/* A generation of the loaded plugins for a config whose default
 * department has `dept` as its body (single-quoted); `top` members go at
 * the top level (ending in a comma, or ""). */
static ph__generation *build(const char *top, const char *dept,
                             const ph__generation *prev) {
  char *text, *json, *err = NULL;
  ph__config *cfg;

  cr_assert(asprintf(&text, "{%s'departments':{'default':{%s}}}", top, dept) >
            0);
  json = dq(text);
  cfg = ph__config_parse(json, "registry.json", &err);
  cr_assert_not_null(cfg, "%s", err ? err : "?");
  free(text);
  free(json);
  return ph__generation_build(cfg, plugins, nplugins, prev);
}

static const ph__dept *dept(const ph__generation *g) {
  const ph__dept *d = ph__generation_dept(g, "default");

  cr_assert_not_null(d);
  return d;
}

/* The exposed names of one kind in list order, comma-joined. */
static char *names(const ph__dept *d, int kind) {
  char *out = strdup(""), *joined;
  size_t i;

  for (i = 0; i < d->nitems[kind]; i++) {
    cr_assert(asprintf(&joined, "%s%s%s", out, i ? "," : "",
                       d->items[kind][i].name) > 0);
    free(out);
    out = joined;
  }
  return out;
}

static void expect_names(const ph__dept *d, int kind, const char *want) {
  char *got = names(d, kind);

  cr_expect_str_eq(got, want);
  free(got);
}

/* ---- composition ---- */

Test(registry, instances_compose_under_their_prefixes) {
  ph__generation *g;
  const ph__dept *d;
  const ph__item *it;

  load("ok.so");
  load("echo.so");
  g = build("",
            "'plugins':[{'plugin':'ok','prefix':'ok'},"
            "{'plugin':'echo','prefix':'e'}]",
            NULL);
  d = dept(g);
  cr_expect_eq(d->ninstances, 2);
  expect_names(d, PH__TOOL,
               "ok_echo,ok_add,ok_fail,ok_progress,ok_log,e_echo,"
               "e_echo_inline");
  expect_names(d, PH__RESOURCE, "ok://hello");
  expect_names(d, PH__TEMPLATE, "ok://items/{id}");
  expect_names(d, PH__PROMPT, "ok_greet");
  cr_expect(d->has_completions);
  it = ph__dept_lookup(d, PH__TOOL, "e_echo");
  cr_assert_not_null(it);
  cr_expect_str_eq(it->inst->plugin->name, "echo");
  cr_expect_str_eq(it->inst->prefix, "e");
  cr_expect_str_eq(((const ph__tool_def *)it->def)->name, "echo");
  it = ph__dept_lookup(d, PH__TOOL, "ok_echo");
  cr_assert_not_null(it);
  cr_expect_str_eq(it->inst->plugin->name, "ok");
  cr_expect_null(ph__dept_lookup(d, PH__TOOL, "echo"));
  cr_expect_null(ph__dept_lookup(d, PH__TOOL, "ok_"));
  cr_expect_null(ph__dept_lookup(d, PH__TOOL, ""));
  cr_expect_not_null(ph__dept_lookup(d, PH__RESOURCE, "ok://hello"));
  cr_expect_not_null(ph__dept_lookup(d, PH__PROMPT, "ok_greet"));
  cr_expect_null(ph__dept_lookup(d, PH__PROMPT, "ok_echo"));
  cr_expect_null(ph__generation_dept(g, "sales"));
  ph__generation_unref(g);
}

Test(registry, every_lookup_finds_its_item) {
  ph__generation *g;
  const ph__dept *d;
  size_t i;

  load("ok.so");
  load("slow.so");
  load("hang.so");
  load("echo.so");
  load("conformance.so");
  g = build("",
            "'plugins':[{'plugin':'conformance','prefix':''},"
            "{'plugin':'ok'},{'plugin':'slow'},{'plugin':'hang'},"
            "{'plugin':'echo'}]",
            NULL);
  d = dept(g);
  cr_expect_gt(d->nitems[PH__TOOL], 30);
  for (i = 0; i < d->nitems[PH__TOOL]; i++)
    cr_expect_eq(ph__dept_lookup(d, PH__TOOL, d->items[PH__TOOL][i].name),
                 &d->items[PH__TOOL][i], "%s", d->items[PH__TOOL][i].name);
  for (i = 0; i < d->nitems[PH__PROMPT]; i++)
    cr_expect_eq(ph__dept_lookup(d, PH__PROMPT, d->items[PH__PROMPT][i].name),
                 &d->items[PH__PROMPT][i]);
  ph__generation_unref(g);
}

Test(registry, separator_and_empty_prefix) {
  ph__generation *g;
  const ph__dept *d;

  load("ok.so");
  load("slow.so");
  g = build("'separator':'__',",
            "'plugins':[{'plugin':'ok','prefix':'ok'},"
            "{'plugin':'slow','prefix':''}]",
            NULL);
  d = dept(g);
  expect_names(d, PH__TOOL,
               "ok__echo,ok__add,ok__fail,ok__progress,ok__log,sleep,now");
  expect_names(d, PH__PROMPT, "ok__greet");
  ph__generation_unref(g);
}

Test(registry, department_without_plugins_key_takes_every_plugin) {
  ph__generation *g;
  const ph__dept *d;

  load("ok.so");
  load("slow.so");
  g = build("", "", NULL);
  d = dept(g);
  cr_expect_eq(d->ninstances, 2);
  expect_names(d, PH__TOOL,
               "ok_echo,ok_add,ok_fail,ok_progress,ok_log,slow_sleep,slow_now");
  ph__generation_unref(g);
}

Test(registry, empty_department) {
  ph__generation *g;
  const ph__dept *d;
  const char *page;
  char *next = NULL;
  int k;

  load("ok.so");
  g = build("", "'plugins':[]", NULL);
  d = dept(g);
  cr_expect_eq(d->ninstances, 0);
  cr_expect(!d->has_completions);
  for (k = 0; k < PH__NKINDS; k++) {
    cr_expect_eq(d->nitems[k], 0);
    page = ph__dept_page(d, k, NULL, &next);
    cr_assert_not_null(page);
    cr_expect_str_eq(page, "[]");
    cr_expect_null(next);
  }
  cr_expect_null(ph__dept_lookup(d, PH__TOOL, "ok_echo"));
  ph__generation_unref(g);
}

/* ---- collisions ---- */

Test(registry, later_duplicate_names_are_refused) {
  ph__generation *g;
  const ph__dept *d;
  const ph__item *it;

  load("ok.so");
  load("echo.so");
  g = build("",
            "'plugins':[{'plugin':'ok','prefix':''},"
            "{'plugin':'echo','prefix':''}]",
            NULL);
  d = dept(g);
  cr_expect_eq(d->ninstances, 2);
  expect_names(d, PH__TOOL, "echo,add,fail,progress,log,echo_inline");
  it = ph__dept_lookup(d, PH__TOOL, "echo");
  cr_assert_not_null(it);
  cr_expect_str_eq(it->inst->plugin->name, "ok");
  /* List order and lookup index agree after the refusal. */
  cr_expect_eq(it, &d->items[PH__TOOL][0]);
  it = ph__dept_lookup(d, PH__TOOL, "echo_inline");
  cr_assert_not_null(it);
  cr_expect_str_eq(it->inst->plugin->name, "echo");
  cr_expect_eq(it, &d->items[PH__TOOL][5]);
  ph__generation_unref(g);
}

Test(registry, same_plugin_twice_shares_no_tool_but_collides_on_uris) {
  ph__generation *g;
  const ph__dept *d;
  const ph__item *it;

  load("ok.so");
  g = build("",
            "'plugins':[{'plugin':'ok','prefix':'a'},"
            "{'plugin':'ok','prefix':'b'}]",
            NULL);
  d = dept(g);
  cr_expect_eq(d->ninstances, 2);
  cr_expect_eq(d->nitems[PH__TOOL], 10);
  cr_expect_not_null(ph__dept_lookup(d, PH__TOOL, "a_echo"));
  cr_expect_not_null(ph__dept_lookup(d, PH__TOOL, "b_echo"));
  expect_names(d, PH__PROMPT, "a_greet,b_greet");
  /* URIs are not prefixed: the first instance keeps them. */
  expect_names(d, PH__RESOURCE, "ok://hello");
  expect_names(d, PH__TEMPLATE, "ok://items/{id}");
  it = ph__dept_lookup(d, PH__RESOURCE, "ok://hello");
  cr_assert_not_null(it);
  cr_expect_str_eq(it->inst->prefix, "a");
  ph__generation_unref(g);
}

Test(registry, prefix_used_twice_refuses_the_later_instance) {
  ph__generation *g;
  const ph__dept *d;

  load("ok.so");
  load("slow.so");
  g = build("",
            "'plugins':[{'plugin':'slow','prefix':'x'},"
            "{'plugin':'ok','prefix':'x'}]",
            NULL);
  d = dept(g);
  cr_expect_eq(d->ninstances, 1);
  expect_names(d, PH__TOOL, "x_sleep,x_now");
  ph__generation_unref(g);
}

Test(registry, unknown_plugin_is_skipped) {
  ph__generation *g;

  load("ok.so");
  g = build("", "'plugins':[{'plugin':'nope'},{'plugin':'ok'}]", NULL);
  cr_expect_eq(dept(g)->ninstances, 1);
  ph__generation_unref(g);
}

/* ---- allow / deny ---- */

Test(registry, allow_and_deny_filter_every_kind) {
  ph__generation *g;
  const ph__dept *d;

  load("ok.so");
  load("slow.so");
  g = build("",
            "'plugins':[{'plugin':'ok'},{'plugin':'slow'}],"
            "'allow':['ok_*','slow_now','ok://items/*'],"
            "'deny':['ok_f*','*_log']",
            NULL);
  d = dept(g);
  expect_names(d, PH__TOOL, "ok_echo,ok_add,ok_progress,slow_now");
  expect_names(d, PH__PROMPT, "ok_greet");
  expect_names(d, PH__RESOURCE, "");
  expect_names(d, PH__TEMPLATE, "ok://items/{id}");
  cr_expect_null(ph__dept_lookup(d, PH__TOOL, "ok_fail"));
  cr_expect_null(ph__dept_lookup(d, PH__TOOL, "slow_sleep"));
  ph__generation_unref(g);
}

Test(registry, deny_wins_over_allow) {
  ph__generation *g;

  load("ok.so");
  g = build("",
            "'plugins':[{'plugin':'ok'}],'allow':['ok_echo'],"
            "'deny':['ok_echo']",
            NULL);
  expect_names(dept(g), PH__TOOL, "");
  ph__generation_unref(g);
}

Test(registry, empty_allow_list_exposes_nothing) {
  ph__generation *g;

  load("ok.so");
  g = build("", "'plugins':[{'plugin':'ok'}],'allow':[]", NULL);
  expect_names(dept(g), PH__TOOL, "");
  expect_names(dept(g), PH__RESOURCE, "");
  ph__generation_unref(g);
}

/* ---- services ---- */

Test(registry, consumer_needs_a_provider) {
  ph__generation *g;
  const ph__dept *d;
  ph_instance *kv;

  load("consumer.so");
  load("provider.so");
  g = build("", "'plugins':[{'plugin':'consumer'},{'plugin':'provider'}]",
            NULL);
  d = dept(g);
  cr_expect_eq(d->ninstances, 2);
  kv = ph__dept_service(d, "kv");
  cr_assert_not_null(kv);
  cr_expect_str_eq(kv->plugin->name, "provider");
  cr_expect_null(ph__dept_service(d, "nope"));
  cr_expect_not_null(ph__dept_lookup(d, PH__TOOL, "consumer_lookup"));
  ph__generation_unref(g);

  g = build("", "'plugins':[{'plugin':'consumer'}]", NULL);
  d = dept(g);
  cr_expect_eq(d->ninstances, 0);
  cr_expect_null(ph__dept_lookup(d, PH__TOOL, "consumer_lookup"));
  cr_expect_null(ph__dept_service(d, "kv"));
  ph__generation_unref(g);
}

/* ---- reuse ---- */

Test(registry, unchanged_instances_are_reused) {
  ph__generation *g1, *g2;
  const ph__dept *d1, *d2;

  load("ok.so");
  load("slow.so");
  g1 = build("",
             "'plugins':[{'plugin':'ok','config':{'a':1}},"
             "{'plugin':'slow'}]",
             NULL);
  g2 = build("",
             "'plugins':[{'plugin':'ok','config':{'a':2}},"
             "{'plugin':'slow'}]",
             g1);
  d1 = dept(g1);
  d2 = dept(g2);
  cr_assert_eq(d1->ninstances, 2);
  cr_assert_eq(d2->ninstances, 2);
  cr_expect_neq(d1->instances[0], d2->instances[0], "changed config reused");
  cr_expect_eq(d1->instances[1], d2->instances[1], "same instance rebuilt");
  cr_expect_neq(g1->id, g2->id);
  ph__generation_unref(g1);
  /* g2's instances survive g1. */
  cr_expect_not_null(ph__dept_lookup(dept(g2), PH__TOOL, "slow_sleep"));
  cr_expect_str_eq(dept(g2)->instances[1]->prefix, "slow");
  ph__generation_unref(g2);
}

Test(registry, publish_and_acquire) {
  ph__generation *g, *old, *got;

  load("ok.so");
  g = build("", "'plugins':[{'plugin':'ok'}]", NULL);
  old = ph__registry_publish(g);
  ph__generation_unref(old);
  got = ph__registry_acquire();
  cr_expect_eq(got, g);
  ph__generation_unref(got);
  old = ph__registry_publish(NULL);
  cr_expect_eq(old, g);
  ph__generation_unref(old);
  cr_expect_null(ph__registry_acquire());
}

/* ---- pagination ---- */

Test(registry, pages_follow_cursors_to_the_end) {
  ph__generation *g;
  const ph__dept *d;
  const char *page;
  char *next = NULL, *cursor = NULL;
  cJSON *all = cJSON_CreateArray(), *arr, *item;
  int pages = 0;

  load("ok.so");
  load("slow.so");
  g = build("'page_size':2,", "'plugins':[{'plugin':'ok'},{'plugin':'slow'}]",
            NULL);
  d = dept(g);
  cr_expect_eq(d->npages[PH__TOOL], 4);
  do {
    page = ph__dept_page(d, PH__TOOL, cursor, &next);
    cr_assert_not_null(page, "cursor %s refused", cursor ? cursor : "-");
    arr = cJSON_Parse(page);
    cr_assert(cJSON_IsArray(arr), "page is not an array: %s", page);
    cr_expect_leq(cJSON_GetArraySize(arr), 2);
    while (cJSON_GetArraySize(arr) > 0)
      cJSON_AddItemToArray(all, cJSON_DetachItemFromArray(arr, 0));
    cJSON_Delete(arr);
    free(cursor);
    cursor = next;
    pages++;
  } while (cursor != NULL && pages < 10);
  cr_expect_eq(pages, 4);
  cr_expect_eq(cJSON_GetArraySize(all), 7);
  item = cJSON_GetArrayItem(all, 0);
  cr_expect_str_eq(cJSON_GetObjectItem(item, "name")->valuestring, "ok_echo");
  item = cJSON_GetArrayItem(all, 6);
  cr_expect_str_eq(cJSON_GetObjectItem(item, "name")->valuestring, "slow_now");
  cJSON_Delete(all);

  /* "" is the first page too. */
  page = ph__dept_page(d, PH__TOOL, "", &next);
  cr_assert_not_null(page);
  cr_assert_not_null(next);
  free(next);
  ph__generation_unref(g);
}

Test(registry, exact_multiple_of_the_page_size_has_no_empty_page) {
  ph__generation *g;
  const ph__dept *d;
  char *next = NULL;

  load("slow.so");
  g = build("'page_size':2,", "'plugins':[{'plugin':'slow'}]", NULL);
  d = dept(g);
  cr_expect_eq(d->npages[PH__TOOL], 1);
  cr_assert_not_null(ph__dept_page(d, PH__TOOL, NULL, &next));
  cr_expect_null(next);
  ph__generation_unref(g);
}

Test(registry, invalid_cursors_are_refused) {
  static const char *const bad[] = {"x",   "p",   "p4",  "p99", "p1z",
                                    "P1",  "1",   "p-1", "p 1", "p+1",
                                    "pp1", " p1", "p1 ", "p0x1"};
  ph__generation *g;
  const ph__dept *d;
  char *next;
  size_t i;

  load("ok.so");
  load("slow.so");
  g = build("'page_size':2,", "'plugins':[{'plugin':'ok'},{'plugin':'slow'}]",
            NULL);
  d = dept(g);
  cr_assert_eq(d->npages[PH__TOOL], 4);
  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    next = NULL;
    cr_expect_null(ph__dept_page(d, PH__TOOL, bad[i], &next),
                   "cursor \"%s\" accepted", bad[i]);
    cr_expect_null(next);
    free(next);
  }
  next = NULL;
  cr_expect_not_null(ph__dept_page(d, PH__TOOL, "p3", &next));
  cr_expect_null(next);
  ph__generation_unref(g);
}

/* ---- listing JSON ---- */

Test(registry, listing_carries_definitions) {
  ph__generation *g;
  const ph__dept *d;
  char *next = NULL;
  cJSON *tools, *prompts, *t;

  load("ok.so");
  g = build("", "'plugins':[{'plugin':'ok'}]", NULL);
  d = dept(g);
  tools = cJSON_Parse(ph__dept_page(d, PH__TOOL, NULL, &next));
  cr_assert(cJSON_IsArray(tools));
  t = cJSON_GetArrayItem(tools, 0);
  cr_expect_str_eq(cJSON_GetObjectItem(t, "name")->valuestring, "ok_echo");
  cr_expect_str_eq(cJSON_GetObjectItem(t, "title")->valuestring, "Echo");
  cr_expect(cJSON_IsObject(cJSON_GetObjectItem(t, "inputSchema")));
  cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(
      cJSON_GetObjectItem(t, "annotations"), "readOnlyHint")));
  t = cJSON_GetArrayItem(tools, 1);
  cr_expect(cJSON_IsObject(cJSON_GetObjectItem(t, "outputSchema")));
  /* A tool without a schema still lists an object schema. */
  t = cJSON_GetArrayItem(tools, 2);
  cr_expect_str_eq(
      cJSON_GetObjectItem(cJSON_GetObjectItem(t, "inputSchema"), "type")
          ->valuestring,
      "object");
  cJSON_Delete(tools);
  prompts = cJSON_Parse(ph__dept_page(d, PH__PROMPT, NULL, &next));
  t = cJSON_GetArrayItem(
      cJSON_GetObjectItem(cJSON_GetArrayItem(prompts, 0), "arguments"), 0);
  cr_expect_str_eq(cJSON_GetObjectItem(t, "name")->valuestring, "name");
  cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(t, "required")));
  cJSON_Delete(prompts);
  ph__generation_unref(g);
}

/* ---- templates ---- */

/* Matches uri and returns the variables as JSON text ("" for no match). */
static char *match(const ph__dept *d, const char *uri) {
  cJSON *vars = NULL;
  const ph__item *it = ph__dept_match_template(d, uri, &vars);
  char *text;

  if (it == NULL) {
    cr_expect_null(vars);
    return strdup("");
  }
  text = cJSON_PrintUnformatted(vars);
  cJSON_Delete(vars);
  return text;
}

static void expect_match(const ph__dept *d, const char *uri, const char *want) {
  char *got = match(d, uri);

  cr_expect_str_eq(got, want, "uri %s", uri);
  free(got);
}

Test(registry, template_matching) {
  ph__generation *g;
  const ph__dept *d;

  load("ok.so");
  load("conformance.so");
  g = build("", "'plugins':[{'plugin':'ok'},{'plugin':'conformance'}]", NULL);
  d = dept(g);
  expect_match(d, "ok://items/42", "{\"id\":\"42\"}");
  expect_match(d, "ok://items/a%20b", "{\"id\":\"a b\"}");
  expect_match(d, "ok://items/a%2Fb", "{\"id\":\"a/b\"}");
  expect_match(d, "ok://items/100%", "{\"id\":\"100%\"}");
  expect_match(d, "ok://items/caf%C3%A9", "{\"id\":\"caf\xc3\xa9\"}");
  /* A variable holds exactly what the URI names, or the URI names nothing:
   * as a C string "42%00" would be "42", and bytes that are not UTF-8 have
   * no JSON string to go in. */
  expect_match(d, "ok://items/42%00", "");
  expect_match(d, "ok://items/%00", "");
  expect_match(d, "ok://items/4%002", "");
  expect_match(d, "ok://items/%ff", "");
  expect_match(d, "ok://items/%C3", "");
  expect_match(d, "ok://items/%ED%A0%80", "");
  expect_match(d, "test://template/7%00/data", "");
  expect_match(d, "ok://items/", "");
  expect_match(d, "ok://items/1/2", "");
  expect_match(d, "ok://items", "");
  expect_match(d, "ok://item/1", "");
  expect_match(d, "OK://items/1", "");
  expect_match(d, "test://template/7/data", "{\"id\":\"7\"}");
  expect_match(d, "test://template/x-y/data", "{\"id\":\"x-y\"}");
  expect_match(d, "test://template/7/other", "");
  expect_match(d, "test://template/7/data/", "");
  expect_match(d, "test://template//data", "");
  expect_match(d, "test://template/7", "");
  cr_expect_not_null(ph__dept_template(d, "ok://items/{id}"));
  cr_expect_null(ph__dept_template(d, "ok://items/42"));
  ph__generation_unref(g);
}
