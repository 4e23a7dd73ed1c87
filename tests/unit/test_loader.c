/* test_loader.c: loading fixture plugins: each refusal and its reason, the
 * published layouts and items read at an older size, the metadata a good
 * plugin leaves in host memory, the private cache copy and its removal, and
 * directory scans and rescans (reuse by content hash, rollback to the
 * previous build). */
#include <criterion/criterion.h>

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"

static char cache_dir[] = "/tmp/ph-loader-cache-XXXXXX";
static char plugin_dir[] = "/tmp/ph-loader-dir-XXXXXX";

/* Removes every file in dir (not recursive). */
static void empty_dir(const char *dir) {
  struct dirent *de;
  char path[1024];
  DIR *d = opendir(dir);

  if (d == NULL)
    return;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
    unlink(path);
  }
  closedir(d);
}

static void setup(void) {
  cr_assert_not_null(mkdtemp(cache_dir));
  cr_assert_not_null(mkdtemp(plugin_dir));
  /* Refusals are logged by scans; only errors matter here. */
  ph__log_set_level(PH_LOG_EMERGENCY);
}

static void teardown(void) {
  empty_dir(plugin_dir);
  rmdir(plugin_dir);
  empty_dir(cache_dir);
  rmdir(cache_dir);
}

TestSuite(loader, .init = setup, .fini = teardown, .timeout = 30);

/* Files in dir, dotfiles aside. */
static int count_files(const char *dir) {
  struct dirent *de;
  DIR *d = opendir(dir);
  int n = 0;

  cr_assert_not_null(d);
  while ((de = readdir(d)) != NULL)
    n += de->d_name[0] != '.';
  closedir(d);
  return n;
}

static char *fixture(const char *file) {
  char *path;

  cr_assert(asprintf(&path, "%s/%s", PH_TEST_PLUGIN_DIR, file) > 0);
  return path;
}

static ph__plugin *load_ok(const char *file) {
  char *path = fixture(file), *err = NULL;
  ph__plugin *p = ph__plugin_load(path, cache_dir, &err);

  cr_assert_not_null(p, "%s: %s", path, err ? err : "?");
  cr_assert_null(err);
  free(path);
  return p;
}

/* Loads a fixture expected to be refused and returns the reason. */
static char *refusal(const char *file) {
  char *path = fixture(file), *err = NULL;
  ph__plugin *p = ph__plugin_load(path, cache_dir, &err);

  cr_assert_null(p, "%s loaded", file);
  cr_assert_not_null(err, "%s: no reason given", file);
  cr_expect_eq(count_files(cache_dir), 0, "%s: cache copy left behind", file);
  free(path);
  return err;
}

static void expect_refusal(const char *file, const char *want) {
  char *err = refusal(file);

  cr_expect_str_eq(err, want, "%s", file);
  free(err);
}

/* Copies src to dst through a temporary name and a rename, the way an
 * operator should install a plugin. */
static void install(const char *src, const char *dir, const char *name) {
  char buf[65536], tmp[1024], dst[1024];
  int in, out;
  ssize_t n;

  snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
  snprintf(dst, sizeof(dst), "%s/%s", dir, name);
  in = open(src, O_RDONLY);
  cr_assert_geq(in, 0, "%s", src);
  out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  cr_assert_geq(out, 0, "%s", tmp);
  while ((n = read(in, buf, sizeof(buf))) > 0)
    cr_assert_eq(write(out, buf, (size_t)n), n);
  close(in);
  close(out);
  cr_assert_eq(rename(tmp, dst), 0);
}

static void install_fixture(const char *file, const char *name) {
  char *src = fixture(file);

  install(src, plugin_dir, name);
  free(src);
}

static void release_all(ph__plugin **list, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    ph__plugin_unref(list[i]);
  free(list);
}

/* ---- refusals ---- */

Test(loader, wrong_magic_is_refused) {
  expect_refusal("bad_magic.so", "wrong magic 0x21444142 (not a plughost "
                                 "plugin)");
}

Test(loader, newer_minor_is_refused) {
  char want[128];

  snprintf(want, sizeof(want), "ABI minor %d is newer than this host's %d",
           PH_ABI_MINOR + 1, PH_ABI_MINOR);
  expect_refusal("newer_minor.so", want);
}

Test(loader, other_major_is_refused) {
  char want[128];

  snprintf(want, sizeof(want), "ABI major 0, this host speaks %d",
           PH_ABI_MAJOR);
  expect_refusal("older_major.so", want);
}

Test(loader, short_descriptor_is_refused) {
  char want[128];

  snprintf(want, sizeof(want),
           "descriptor size %zu matches no published layout (ABI %d.%d: %zu)",
           offsetof(ph_plugin_desc, tools), PH_ABI_MAJOR, PH_ABI_MINOR,
           sizeof(ph_plugin_desc));
  expect_refusal("short_size.so", want);
}

Test(loader, an_item_size_of_no_published_layout_is_refused) {
  char want[128];

  /* bad_layout's tools carry one pointer more than any minor published. */
  snprintf(want, sizeof(want),
           "tool_size %zu matches no published layout (ABI %d.%d: %zu)",
           sizeof(ph_tool) + sizeof(char *), PH_ABI_MAJOR, PH_ABI_MINOR,
           sizeof(ph_tool));
  expect_refusal("abi/bad_layout.so", want);
}

Test(loader, plugins_of_older_minors_load_at_their_layout) {
  ph__plugin *v10 = load_ok("abi/abi_1_0.so"), *v12 = load_ok("abi/abi_1_2.so");

  cr_expect_eq(v10->abi_minor, 0);
  cr_expect_str_eq(v10->name, "abi10");
  cr_expect_gt(v10->ntools, 0);
  cr_expect_eq(v12->abi_minor, 2);
  cr_expect_eq(v12->tools[0].run_inline, 1);
  ph__plugin_unref(v10);
  ph__plugin_unref(v12);
}

/* ---- reading items at the plugin's size ---- */

static void tool_stub(ph_call *call, const char *args, void *state) {
  (void)call;
  (void)args;
  (void)state;
}

Test(loader, an_item_at_this_hosts_size_is_read_in_place) {
  static const ph_tool tools[] = {{.name = "a", .handler = tool_stub},
                                  {.name = "b", .handler = tool_stub}};
  ph_tool scratch;

  cr_expect_eq(
      ph__table_item(tools, sizeof(ph_tool), sizeof(ph_tool), 1, &scratch),
      &tools[1]);
}

Test(loader, a_shorter_item_is_zero_filled_to_this_hosts_size) {
  /* A tool table as a minor without extra_json would have laid it out:
   * items end before extra_json, and the next item starts there. */
  enum { OLD = offsetof(ph_tool, extra_json), N = 2 };
  unsigned char table[OLD * N + sizeof(ph_tool)];
  ph_tool a = {.name = "first",
               .description = "one",
               .timeout_ms = 7,
               .handler = tool_stub};
  ph_tool b = {.name = "second", .run_inline = 1, .handler = tool_stub};
  const ph_tool *t;
  ph_tool scratch;

  /* Whatever follows the table must not be read. */
  memset(table, 0xab, sizeof(table));
  memcpy(table, &a, OLD);
  memcpy(table + OLD, &b, OLD);
  t = ph__table_item(table, OLD, sizeof(ph_tool), 0, &scratch);
  cr_assert_eq(t, &scratch);
  cr_expect_str_eq(t->name, "first");
  cr_expect_str_eq(t->description, "one");
  cr_expect_eq(t->timeout_ms, 7);
  cr_expect_eq(t->handler, tool_stub);
  cr_expect_null(t->extra_json, "not the next item's name");
  t = ph__table_item(table, OLD, sizeof(ph_tool), 1, &scratch);
  cr_expect_str_eq(t->name, "second");
  cr_expect_eq(t->run_inline, 1);
  cr_expect_null(t->extra_json, "not the bytes after the table");
}

Test(loader, duplicate_tool_names_are_refused) {
  expect_refusal("dup_tool.so", "duplicate tool name \"same\"");
}

Test(loader, bad_characters_are_refused) {
  expect_refusal("bad_chars.so",
                 "tool name \"has space\" must match [A-Za-z0-9_-]{1,64}");
}

Test(loader, long_names_are_refused) {
  expect_refusal("long_name.so",
                 "tool name \"a123456789b123456789c123456789d123456789"
                 "e123456789f123456789g123456789\" must match "
                 "[A-Za-z0-9_-]{1,64}");
}

Test(loader, missing_file_is_refused) {
  char *err = refusal("no-such-plugin.so");

  cr_expect_str_eq(err, "cannot open: No such file or directory");
  free(err);
}

Test(loader, a_file_that_is_not_a_library_is_refused) {
  char path[1024], *err = NULL;
  FILE *f;

  snprintf(path, sizeof(path), "%s/text.so", plugin_dir);
  f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("not an ELF file\n", f);
  fclose(f);
  cr_expect_null(ph__plugin_load(path, cache_dir, &err));
  cr_assert_not_null(err);
  cr_expect_eq(strncmp(err, "dlopen failed: ", 15), 0, "%s", err);
  cr_expect_eq(count_files(cache_dir), 0);
  free(err);
}

Test(loader, missing_cache_dir_is_refused) {
  char *path = fixture("ok.so"), *err = NULL;

  cr_expect_null(ph__plugin_load(path, "/nonexistent/ph-cache", &err));
  cr_assert_not_null(err);
  cr_expect_eq(strncmp(err, "cannot create cache copy ", 25), 0, "%s", err);
  free(err);
  free(path);
}

/* ---- a good plugin's metadata ---- */

Test(loader, ok_plugin_metadata_is_copied) {
  static const char *const tools[] = {"echo", "add", "fail", "progress", "log"};
  ph__plugin *p = load_ok("ok.so");
  const ph__tool_def *t;
  const ph__prompt_def *pr;
  size_t i;

  cr_expect_str_eq(p->name, "ok");
  cr_expect_str_eq(p->version, "1.0.0");
  cr_expect_str_eq(p->description, "Fixture: a well-formed plugin");
  cr_expect_eq(p->abi_minor, PH_ABI_MINOR);
  cr_expect_not_null(p->init);
  cr_expect_not_null(p->fini);
  cr_expect_null(p->service);
  cr_expect_null(p->provides[0]);
  cr_expect_null(p->requires[0]);
  cr_expect_eq(strlen(p->hash), 64);
  cr_expect_eq(strspn(p->hash, "0123456789abcdef"), 64);

  cr_assert_eq(p->ntools, 5);
  for (i = 0; i < p->ntools; i++)
    cr_expect_str_eq(p->tools[i].name, tools[i]);
  t = &p->tools[0];
  cr_expect_str_eq(t->title, "Echo");
  cr_expect_str_eq(t->description, "Returns the text it is given.");
  cr_expect_str_eq(
      cJSON_GetStringValue(cJSON_GetObjectItem(t->input_schema, "type")),
      "object");
  cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(
                       cJSON_GetObjectItem(t->input_schema, "required"), 0)),
                   "text");
  cr_expect_not_null(t->input_validator);
  cr_expect_null(t->output_schema);
  cr_expect_null(t->output_validator);
  cr_expect_eq(t->annotations.read_only, PH_HINT_TRUE);
  cr_expect_eq(t->annotations.idempotent, PH_HINT_TRUE);
  cr_expect_eq(t->annotations.destructive, PH_HINT_UNSET);
  cr_expect_eq(t->annotations.open_world, PH_HINT_UNSET);
  cr_expect_null(t->required_scope);
  cr_expect_eq(t->timeout_ms, 0);
  cr_expect_eq(t->run_inline, 0);
  cr_expect_not_null(t->handler);

  t = &p->tools[1]; /* add: an output schema. */
  cr_expect_null(t->title);
  cr_expect_not_null(t->output_schema);
  cr_expect_not_null(t->output_validator);
  cr_expect_eq(t->annotations.read_only, PH_HINT_TRUE);
  cr_expect_eq(t->annotations.idempotent, PH_HINT_UNSET);

  t = &p->tools[2]; /* fail: no input schema means any object. */
  cr_expect_str_eq(
      cJSON_GetStringValue(cJSON_GetObjectItem(t->input_schema, "type")),
      "object");
  cr_expect_eq(cJSON_GetArraySize(t->input_schema), 1);
  cr_expect_not_null(t->input_validator);

  cr_assert_eq(p->nresources, 1);
  cr_expect_str_eq(p->resources[0].uri, "ok://hello");
  cr_expect_str_eq(p->resources[0].name, "hello");
  cr_expect_str_eq(p->resources[0].mime_type, "text/plain");
  cr_expect_null(p->resources[0].title);
  cr_expect_not_null(p->resources[0].handler);

  cr_assert_eq(p->ntemplates, 1);
  cr_expect_str_eq(p->templates[0].uri_template, "ok://items/{id}");
  cr_expect_str_eq(p->templates[0].name, "item");
  cr_expect_not_null(p->templates[0].complete);

  cr_assert_eq(p->nprompts, 1);
  pr = &p->prompts[0];
  cr_expect_str_eq(pr->name, "greet");
  cr_expect_str_eq(pr->description, "Asks the model to greet someone.");
  cr_expect_not_null(pr->complete);
  cr_assert_eq(pr->nargs, 1);
  cr_expect_str_eq(pr->args[0].name, "name");
  cr_expect_str_eq(pr->args[0].description, "Who to greet");
  cr_expect_null(pr->args[0].title);
  cr_expect_eq(pr->args[0].required, 1);
  cr_expect_null(pr->args[1].name, "the argument list is terminated");
  ph__plugin_unref(p);
}

Test(loader, metadata_lives_in_host_memory) {
  ph__plugin *p = load_ok("ok.so");
  const ph_plugin_desc *d;
  ph_plugin_entry_fn entry;

  /* Equal text at different addresses: nothing points into the mapping
   * that dlclose will drop. */
  *(void **)&entry = dlsym(p->dl, PH_ENTRY_SYMBOL);
  cr_assert_not_null(entry);
  d = entry();
  cr_expect_str_eq(p->name, d->name);
  cr_expect_neq((void *)p->name, (void *)d->name);
  cr_expect_neq((void *)p->version, (void *)d->version);
  cr_expect_neq((void *)p->tools[0].name, (void *)d->tools[0].name);
  cr_expect_neq((void *)p->tools[0].description,
                (void *)d->tools[0].description);
  cr_expect_neq((void *)p->prompts[0].args[0].name,
                (void *)d->prompts[0].args[0].name);
  cr_expect_neq((void *)p->resources[0].uri, (void *)d->resources[0].uri);
  ph__plugin_unref(p);
}

Test(loader, other_fixtures_metadata) {
  ph__plugin *hang = load_ok("hang.so"), *slow = load_ok("slow.so");
  ph__plugin *prov = load_ok("provider.so"), *cons = load_ok("consumer.so");

  cr_assert_eq(hang->ntools, 3);
  cr_expect_str_eq(hang->tools[2].name, "never");
  cr_expect_eq(hang->tools[2].timeout_ms, 200);
  cr_expect_null(hang->fini);
  cr_assert_eq(slow->ntools, 2);
  cr_expect_str_eq(slow->tools[1].name, "now");
  cr_expect_eq(slow->tools[1].run_inline, 1);
  cr_expect_eq(slow->tools[0].run_inline, 0);
  cr_expect_eq(slow->nresources + slow->ntemplates + slow->nprompts, 0);
  cr_expect_str_eq(prov->provides[0], "kv");
  cr_expect_null(prov->provides[1]);
  cr_expect_not_null(prov->service);
  cr_expect(ph__plugin_provides(prov, "kv"));
  cr_expect_not(ph__plugin_provides(prov, "k"));
  cr_expect_not(ph__plugin_provides(cons, "kv"));
  cr_expect_str_eq(cons->requires[0], "kv");
  cr_expect_null(cons->requires[1]);
  ph__plugin_unref(hang);
  ph__plugin_unref(slow);
  ph__plugin_unref(prov);
  ph__plugin_unref(cons);
}

/* ---- the cache copy ---- */

Test(loader, cache_copy_lives_as_long_as_the_plugin) {
  ph__plugin *p = load_ok("ok.so");
  char *source = fixture("ok.so"), *copy;
  struct stat st;

  cr_expect_str_eq(p->source_path, source);
  cr_expect_eq(strncmp(p->cache_path, cache_dir, strlen(cache_dir)), 0, "%s",
               p->cache_path);
  cr_expect_eq(stat(p->cache_path, &st), 0);
  cr_expect_eq(count_files(cache_dir), 1);
  copy = strdup(p->cache_path);
  ph__plugin_ref(p);
  ph__plugin_unref(p);
  cr_expect_eq(stat(copy, &st), 0, "still referenced: the copy stays");
  ph__plugin_unref(p);
  cr_expect_neq(stat(copy, &st), 0, "last reference: the copy is removed");
  cr_expect_eq(count_files(cache_dir), 0);
  free(copy);
  free(source);
}

Test(loader, each_load_gets_its_own_copy_and_mapping) {
  ph__plugin *a = load_ok("ok.so"), *b = load_ok("ok.so");
  ph__plugin *c = load_ok("echo.so");

  cr_expect_str_neq(a->cache_path, b->cache_path);
  cr_expect_neq(a->dl, b->dl, "dlopen must not hand back the same mapping");
  cr_expect_str_eq(a->hash, b->hash, "same content, same identity");
  cr_expect_str_neq(a->hash, c->hash);
  cr_expect_eq(count_files(cache_dir), 3);
  ph__plugin_unref(a);
  ph__plugin_unref(b);
  ph__plugin_unref(c);
  cr_expect_eq(count_files(cache_dir), 0);
}

/* ---- scans ---- */

Test(loader, scan_loads_good_files_in_name_order) {
  ph__plugin **list;
  char path[1024];
  FILE *f;
  size_t n;

  install_fixture("slow.so", "b-slow.so");
  install_fixture("ok.so", "a-ok.so");
  install_fixture("bad_magic.so", "c-bad.so");
  install_fixture("echo.so", "echo.so.disabled");
  install_fixture("hang.so", ".hidden.so");
  snprintf(path, sizeof(path), "%s/README", plugin_dir);
  f = fopen(path, "w");
  cr_assert_not_null(f);
  fclose(f);
  n = ph__plugin_scan(plugin_dir, cache_dir, &list);
  cr_assert_eq(n, 2);
  cr_expect_str_eq(list[0]->name, "ok");
  cr_expect_str_eq(list[1]->name, "slow");
  cr_expect_null(list[2], "the array is NULL-terminated");
  cr_expect_eq(count_files(cache_dir), 2, "the refused copy is gone");
  release_all(list, n);
  cr_expect_eq(count_files(cache_dir), 0);
}

Test(loader, scan_refuses_a_second_plugin_of_the_same_name) {
  ph__plugin **list;
  char want[1024];
  size_t n;

  install_fixture("ok.so", "a.so");
  install_fixture("ok.so", "b.so");
  n = ph__plugin_scan(plugin_dir, cache_dir, &list);
  cr_assert_eq(n, 1);
  snprintf(want, sizeof(want), "%s/a.so", plugin_dir);
  cr_expect_str_eq(list[0]->source_path, want, "the first in name order");
  release_all(list, n);
}

Test(loader, scan_of_a_missing_directory_is_empty) {
  ph__plugin **list = (ph__plugin **)1;
  long errors = ph__log_errors();

  cr_expect_eq(ph__plugin_scan("/nonexistent/ph-plugins", cache_dir, &list), 0);
  cr_expect_null(list);
  cr_expect_eq(ph__log_errors(), errors + 1, "and it is logged as an error");
}

Test(loader, rescan_reuses_unchanged_plugins) {
  ph__plugin **first, **second;
  size_t n, m;

  install_fixture("ok.so", "ok.so");
  install_fixture("echo.so", "echo.so");
  n = ph__plugin_scan(plugin_dir, cache_dir, &first);
  cr_assert_eq(n, 2);
  m = ph__plugin_rescan(plugin_dir, cache_dir, first, n, &second);
  cr_assert_eq(m, 2);
  cr_expect_eq(second[0], first[0], "same content: the same loaded code");
  cr_expect_eq(second[1], first[1]);
  cr_expect_eq(atomic_load(&first[0]->refs), 2);
  cr_expect_eq(count_files(cache_dir), 2, "no new copy, no new dlopen");
  release_all(first, n);
  release_all(second, m);
  cr_expect_eq(count_files(cache_dir), 0);
}

Test(loader, rescan_reuses_by_content_even_under_a_new_name) {
  ph__plugin **first, **second;
  char old[1024];
  size_t n, m;

  install_fixture("ok.so", "ok.so");
  n = ph__plugin_scan(plugin_dir, cache_dir, &first);
  cr_assert_eq(n, 1);
  install_fixture("ok.so", "renamed.so");
  snprintf(old, sizeof(old), "%s/ok.so", plugin_dir);
  cr_assert_eq(unlink(old), 0);
  m = ph__plugin_rescan(plugin_dir, cache_dir, first, n, &second);
  cr_assert_eq(m, 1);
  cr_expect_eq(second[0], first[0]);
  release_all(first, n);
  release_all(second, m);
}

Test(loader, rescan_loads_a_changed_file_afresh) {
  ph__plugin **first, **second;
  char *v2 = fixture("v2/provider.so");
  size_t n, m;

  install_fixture("provider.so", "provider.so");
  n = ph__plugin_scan(plugin_dir, cache_dir, &first);
  cr_assert_eq(n, 1);
  cr_expect_str_eq(first[0]->version, "1");
  install(v2, plugin_dir, "provider.so");
  m = ph__plugin_rescan(plugin_dir, cache_dir, first, n, &second);
  cr_assert_eq(m, 1);
  cr_expect_neq(second[0], first[0]);
  cr_expect_str_eq(second[0]->version, "2");
  cr_expect_str_neq(second[0]->hash, first[0]->hash);
  cr_expect_str_neq(second[0]->cache_path, first[0]->cache_path);
  cr_expect_eq(count_files(cache_dir), 2, "both builds stay mapped");
  release_all(first, n);
  cr_expect_eq(count_files(cache_dir), 1, "the old one goes with its refs");
  release_all(second, m);
  free(v2);
}

Test(loader, rescan_keeps_the_previous_build_when_the_new_one_fails) {
  ph__plugin **first, **second;
  long errors;
  size_t n, m;

  install_fixture("ok.so", "ok.so");
  install_fixture("slow.so", "slow.so");
  n = ph__plugin_scan(plugin_dir, cache_dir, &first);
  cr_assert_eq(n, 2);
  install_fixture("bad_magic.so", "ok.so");
  errors = ph__log_errors();
  m = ph__plugin_rescan(plugin_dir, cache_dir, first, n, &second);
  cr_assert_eq(m, 2);
  cr_expect_eq(second[0], first[0], "ok keeps serving its previous build");
  cr_expect_str_eq(second[0]->name, "ok");
  cr_expect_eq(second[1], first[1]);
  cr_expect_geq(ph__log_errors(), errors + 2, "refusal and rollback logged");
  cr_expect_eq(count_files(cache_dir), 2, "the refused copy is gone");
  release_all(first, n);
  release_all(second, m);
}

Test(loader, a_failed_file_without_a_previous_build_is_dropped) {
  ph__plugin **first, **second;
  size_t n, m;

  install_fixture("ok.so", "ok.so");
  n = ph__plugin_scan(plugin_dir, cache_dir, &first);
  cr_assert_eq(n, 1);
  install_fixture("dup_tool.so", "dup.so");
  m = ph__plugin_rescan(plugin_dir, cache_dir, first, n, &second);
  cr_assert_eq(m, 1);
  cr_expect_eq(second[0], first[0]);
  release_all(first, n);
  release_all(second, m);
}

Test(loader, a_newcomer_does_not_displace_the_serving_plugin) {
  ph__plugin **first, **second;
  char path[1024];
  size_t n, m;
  FILE *f;

  install_fixture("ok.so", "m-ok.so");
  n = ph__plugin_scan(plugin_dir, cache_dir, &first);
  cr_assert_eq(n, 1);
  /* Another build named "ok", in a file sorting first, with different
   * bytes so it is not reused by its hash. */
  install_fixture("ok.so", "a-ok.so");
  snprintf(path, sizeof(path), "%s/a-ok.so", plugin_dir);
  f = fopen(path, "a");
  cr_assert_not_null(f);
  fputs("trailing bytes", f);
  fclose(f);
  m = ph__plugin_rescan(plugin_dir, cache_dir, first, n, &second);
  cr_assert_eq(m, 1);
  cr_expect_eq(second[0], first[0], "the serving build stays");
  release_all(first, n);
  release_all(second, m);
  cr_expect_eq(count_files(cache_dir), 0);
}
