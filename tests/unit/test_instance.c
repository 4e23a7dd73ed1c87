/* test_instance.c: instances of fixture plugins without a loop: init that
 * succeeds or fails, what an instance holds, configure_tool outside init,
 * and the ready, retired and draining bookkeeping of the live list. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "host_api.h"
#include "instance.h"
#include "log.h"

static char cache_dir[] = "/tmp/ph-instance-cache-XXXXXX";

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

static void setup(void) {
  cr_assert_not_null(mkdtemp(cache_dir));
  ph__log_set_level(PH_LOG_EMERGENCY);
  ph__instances_set_api(&ph__host_api);
}

static void teardown(void) {
  rmdir(cache_dir);
}

TestSuite(instance, .init = setup, .fini = teardown, .timeout = 30);

static ph__plugin *load_ok(const char *file) {
  char path[1024], *err = NULL;
  ph__plugin *p;

  snprintf(path, sizeof(path), "%s/%s", PH_TEST_PLUGIN_DIR, file);
  p = ph__plugin_load(path, cache_dir, &err);
  cr_assert_not_null(p, "%s: %s", path, err ? err : "?");
  return p;
}

Test(instance, instance_create_runs_init) {
  ph__plugin *p = load_ok("ok.so");
  ph_instance *inst;
  char *err = (char *)"unset";

  inst = ph__instance_create(p, "sales", "crm", "{\"x\":1}", 2, 4, NULL, &err);
  cr_assert_not_null(inst, "%s", err ? err : "?");
  cr_expect_null(err);
  cr_expect_eq(atomic_load(&inst->refs), 1);
  cr_expect_eq(atomic_load(&p->refs), 2, "the instance holds its plugin");
  cr_expect_eq(inst->plugin, p);
  cr_expect_str_eq(inst->department, "sales");
  cr_expect_str_eq(inst->prefix, "crm");
  cr_expect_str_eq(inst->config_json, "{\"x\":1}");
  cr_expect_str_eq(inst->label, "sales/crm (ok)");
  cr_expect_not_null(inst->state, "ok's init stores its state");
  cr_expect(inst->initialised);
  cr_expect_not_null(inst->pool);
  cr_expect_eq(ph__instance_configure_tool(inst, "echo", "{}"), PH__ENOTSUP,
               "configure_tool is for init only");
  cr_expect_eq(inst->api, &ph__host_api, "the table comes first");
  cr_expect_eq(ph_instance_api(inst), &ph__host_api);
  ph__instance_unref(inst);
  cr_expect_eq(atomic_load(&p->refs), 1);
  ph__plugin_unref(p);
  cr_expect_eq(count_files(cache_dir), 0);
}

Test(instance, instance_defaults) {
  ph__plugin *p = load_ok("slow.so");
  ph_instance *inst;
  char *err = NULL;

  inst = ph__instance_create(p, "default", "", NULL, 1, 1, NULL, &err);
  cr_assert_not_null(inst, "%s", err ? err : "?");
  cr_expect_str_eq(inst->config_json, "{}");
  cr_expect_str_eq(inst->label, "default/- (slow)");
  ph__instance_unref(inst);
  ph__plugin_unref(p);
}

Test(instance, failing_init_refuses_the_instance) {
  ph__plugin *p = load_ok("init_fails.so");
  ph_instance *inst;
  char *err = NULL;

  inst = ph__instance_create(p, "default", "x", "{}", 1, 1, NULL, &err);
  cr_expect_null(inst);
  cr_assert_not_null(err);
  cr_expect_str_eq(err, "init of default/x (init-fails) failed (returned -1)");
  cr_expect_eq(atomic_load(&p->refs), 1, "the plugin reference is returned");
  cr_expect_eq(ph__instances_draining(), 0);
  free(err);
  ph__plugin_unref(p);
  cr_expect_eq(count_files(cache_dir), 0);
}

Test(instance, ready_and_draining_bookkeeping) {
  ph__plugin *p = load_ok("ok.so");
  ph_instance *a, *b;
  char *err = NULL, *text;

  a = ph__instance_create(p, "default", "a", NULL, 1, 1, NULL, &err);
  b = ph__instance_create(p, "default", "b", NULL, 1, 1, NULL, &err);
  cr_assert_not_null(a);
  cr_assert_not_null(b);
  cr_expect_null(ph__instances_not_ready());
  ph__instance_set_ready(a, 0, "warming up");
  text = ph__instances_not_ready();
  cr_expect_str_eq(text, "default/a (ok): warming up");
  free(text);
  ph__instance_set_ready(a, 1, NULL);
  cr_expect_null(ph__instances_not_ready());
  cr_expect_eq(ph__instances_draining(), 0);
  ph__instance_retire(b, 1000);
  cr_expect_eq(ph__instances_draining(), 1);
  cr_expect_eq(ph__instances_check_stuck(1500, 1000), 0, "within the drain");
  ph__instance_unref(b);
  cr_expect_eq(ph__instances_draining(), 0, "destroyed: no longer counted");
  ph__instance_unref(a);
  ph__plugin_unref(p);
}

Test(instance, creating_without_an_api_table_fails) {
  ph__plugin *p = load_ok("ok.so");
  char *err = NULL;

  ph__instances_set_api(NULL);
  cr_expect_null(
      ph__instance_create(p, "default", "x", NULL, 1, 1, NULL, &err));
  cr_expect_str_eq(err, "no host API table (ph__instances_set_api)");
  free(err);
  ph__plugin_unref(p);
}
