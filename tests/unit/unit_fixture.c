/* unit_fixture.c: see unit_fixture.h. */
#include "unit_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "config.h"
#include "host_api.h"
#include "log.h"
#include "protocol.h"

uv_loop_t unit_loop;
ph__plugin *unit_plugins[8];
size_t unit_nplugins;

static char cache_dir[] = "/tmp/ph-unit-XXXXXX";

void unit_setup(void) {
  cr_assert_not_null(mkdtemp(cache_dir));
  ph__log_set_level(PH_LOG_EMERGENCY);
  cr_assert_eq(uv_loop_init(&unit_loop), 0);
  ph__instances_set_api(&ph__host_api);
  cr_assert_eq(ph__calls_init(&unit_loop), 0);
}

void unit_teardown(void) {
  size_t i;

  ph__generation_unref(ph__registry_publish(NULL));
  for (i = 0; i < unit_nplugins; i++)
    ph__plugin_unref(unit_plugins[i]);
  unit_nplugins = 0;
  ph__calls_close();
  uv_run(&unit_loop, UV_RUN_DEFAULT);
  cr_expect_eq(uv_loop_close(&unit_loop), 0, "the loop ends clean");
  rmdir(cache_dir);
}

ph__plugin *unit_load(const char *file) {
  char path[1024], *err = NULL;
  ph__plugin *p;

  cr_assert_lt(unit_nplugins, sizeof(unit_plugins) / sizeof(*unit_plugins));
  snprintf(path, sizeof(path), "%s/%s", PH_TEST_PLUGIN_DIR, file);
  p = ph__plugin_load(path, cache_dir, &err);
  cr_assert_not_null(p, "%s: %s", path, err ? err : "?");
  unit_plugins[unit_nplugins++] = p;
  return p;
}

ph__generation *unit_publish(const char *config, const char *name) {
  char *json = unit_dq(config), *err = NULL;
  ph__generation *g;
  ph__config *cfg;

  cfg = ph__config_parse(json, name, &err);
  cr_assert_not_null(cfg, "%s", err ? err : "?");
  free(json);
  g = ph__generation_build(cfg, unit_plugins, unit_nplugins, NULL);
  cr_assert_null(ph__registry_publish(g));
  return g;
}

char *unit_dq(const char *text) {
  char *s = strdup(text), *p;

  cr_assert_not_null(s);
  for (p = s; *p != '\0'; p++)
    if (*p == '\'')
      *p = '"';
  return s;
}

static void sink_send(ph__outlet *o, const char *json, size_t len) {
  unit_sink *k = (unit_sink *)o;

  cr_assert_lt(k->nsent, 16);
  k->sent[k->nsent++] = strndup(json, len);
}

static void sink_finish(ph__outlet *o, int outcome, const char *json,
                        size_t len) {
  unit_sink *k = (unit_sink *)o;

  k->finished++;
  k->outcome = outcome;
  free(k->answer);
  k->answer = json ? strndup(json, len) : NULL;
}

void unit_sink_init(unit_sink *k) {
  memset(k, 0, sizeof(*k));
  k->base.send = sink_send;
  k->base.finish = sink_finish;
}

void unit_sink_free(unit_sink *k) {
  int i;

  free(k->answer);
  for (i = 0; i < k->nsent; i++)
    free(k->sent[i]);
  memset(k, 0, sizeof(*k));
}

void unit_handle(ph__session *s, unit_sink *k, const char *text) {
  char *json = unit_dq(text);

  ph__protocol_handle(s, &k->base, json, strlen(json));
  free(json);
}
