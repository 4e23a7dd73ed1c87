/* reload.c: see reload.h. */
#include "reload.h"

#include "alloc.h"
#include "instance.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "protocol.h"
#include "registry.h"
#include "transport_http.h"
#include "transport_stdio.h"

#include <stdlib.h>
#include <string.h>

static struct {
  uv_loop_t *loop;
  const char *config_path;
  const char *department;
  const char *cache_dir;
  const ph__config *cfg; /* The published generation's. */
  int stopped;           /* Shutting down: nothing is published any more. */
  uv_work_t work;
  int running, again;
  ph__generation *prev; /* The generation the reload started from. */
  ph__generation *next; /* Built off the loop, or NULL on failure. */
  unsigned long reloads;
  uint64_t started_ns;     /* uv_hrtime() when the running reload began. */
  uv_timer_t stuck_timer;  /* Watches retired instances drain. */
  uv_fs_event_t dir_watch; /* watch_plugin_dir */
  uv_timer_t dir_debounce; /* Lets a burst of file events settle. */
  int watching;
  char *watched_dir;
} R;

/* Off the loop: re-read the config and rescan the directory, then build
 * a complete new generation (running init of new instances here too). */
static void build(uv_work_t *req) {
  ph__generation *prev = R.prev;
  ph__plugin **plugins;
  ph__config *cfg;
  char *err = NULL;
  size_t n, i;

  (void)req;
  R.next = NULL;
  cfg = ph__config_load(R.config_path, &err);
  if (cfg == NULL) {
    ph__error("reload: %s; keeping the current configuration and plugins",
              err ? err : "out of memory");
    free(err);
    return;
  }
  if (ph__config_department(cfg, R.department) == NULL) {
    ph__error("reload: %s has no department \"%s\"; keeping the current "
              "generation",
              R.config_path, R.department);
    ph__config_free(cfg);
    return;
  }
  n = ph__plugin_rescan(cfg->plugin_dir, R.cache_dir, prev->plugins,
                        prev->nplugins, &plugins);
  R.next = ph__generation_build(cfg, plugins, n, prev);
  for (i = 0; i < n; i++)
    ph__plugin_unref(plugins[i]);
  free(plugins);
}

static int in_generation(const ph__generation *g, const ph_instance *inst) {
  size_t i, j;

  for (i = 0; i < g->ndepts; i++)
    for (j = 0; j < g->depts[i].ninstances; j++)
      if (g->depts[i].instances[j] == inst)
        return 1;
  return 0;
}

/* Instances of the old generation that the new one dropped start
 * draining: they finalise when their last call ends, or are reported
 * stuck past limits.drain_timeout_ms. */
static void retire_missing(const ph__generation *old,
                           const ph__generation *now) {
  size_t i, j;

  for (i = 0; old != NULL && i < old->ndepts; i++)
    for (j = 0; j < old->depts[i].ninstances; j++)
      if (!in_generation(now, old->depts[i].instances[j]))
        ph__instance_retire(old->depts[i].instances[j], uv_now(R.loop));
}

static void on_stuck_tick(uv_timer_t *t) {
  (void)t;
  ph__instances_check_stuck(uv_now(R.loop), R.cfg->limits.drain_timeout_ms);
}

static void on_dir_debounced(uv_timer_t *t) {
  (void)t;
  ph__info("plugin directory changed; reloading");
  ph__reload_start();
}

static void on_dir_event(uv_fs_event_t *h, const char *file, int events,
                         int status) {
  (void)h;
  (void)events;
  if (status < 0 || R.stopped)
    return;
  /* Our own cache copies never live here, but editors' temp files do:
   * only .so names matter. */
  if (file != NULL &&
      (strlen(file) < 3 || strcmp(file + strlen(file) - 3, ".so") != 0))
    return;
  uv_timer_start(&R.dir_debounce, on_dir_debounced, 200, 0);
}

static void update_watch(const ph__config *cfg) {
  int err;

  if (R.watching &&
      (!cfg->watch_plugin_dir || strcmp(R.watched_dir, cfg->plugin_dir) != 0)) {
    uv_fs_event_stop(&R.dir_watch);
    R.watching = 0;
    free(R.watched_dir);
    R.watched_dir = NULL;
  }
  if (!R.watching && cfg->watch_plugin_dir) {
    err = uv_fs_event_start(&R.dir_watch, on_dir_event, cfg->plugin_dir, 0);
    if (err == 0) {
      R.watching = 1;
      R.watched_dir = ph__xstrdup(cfg->plugin_dir);
    } else {
      ph__error("cannot watch plugin directory %s: %s", cfg->plugin_dir,
                ph__strerror(err));
    }
  }
}

void ph__reload_apply_ops(const ph__config *cfg) {
  const char **plugins = ph__xcalloc(cfg->nlog_levels + 1, sizeof(*plugins));
  int *levels = ph__xcalloc(cfg->nlog_levels + 1, sizeof(*levels));
  size_t i;
  int err;

  ph__log_set_level(cfg->log_level);
  ph__log_set_json(cfg->log_json);
  for (i = 0; i < cfg->nlog_levels; i++) {
    plugins[i] = cfg->log_levels[i].plugin;
    levels[i] = cfg->log_levels[i].level;
  }
  ph__log_set_plugin_levels(plugins, levels, cfg->nlog_levels);
  free(plugins);
  free(levels);
  if ((err = ph__log_open(cfg->log_file)) != 0)
    ph__error("log_file %s: %s; logging where it did", cfg->log_file,
              uv_strerror(err));
  ph__metrics_set_enabled(cfg->metrics);
}

/* On the loop: publish with one pointer swap, then tell every session
 * whose lists changed. */
static void publish(uv_work_t *req, int status) {
  ph__generation *old, *now = R.next;
  size_t i;

  (void)req;
  (void)status;
  R.running = 0;
  ph__metrics_add(PH__M_RELOADS, 1, now != NULL ? "ok" : "failed", NULL, NULL);
  ph__metrics_observe(PH__M_RELOAD_DURATION, uv_hrtime() - R.started_ns, NULL,
                      NULL, NULL);
  if (now != NULL && !R.stopped) {
    ph__reload_apply_ops(now->config);
    ph__protocol_set_config(now->config);
    ph__stdio_set_config(now->config);
    ph__mcp_http_set_config(now->config);
    old = ph__registry_publish(now);
    R.cfg = now->config;
    R.reloads++;
    ph__info("reload %lu: generation %llu published", R.reloads,
             (unsigned long long)now->id);
    for (i = 0; i < now->ndepts; i++) {
      const ph__dept *d = &now->depts[i];
      unsigned kinds = ph__dept_changes(ph__generation_dept(old, d->name), d);
      if (kinds != 0)
        ph__protocol_lists_changed(d->name, kinds);
    }
    retire_missing(old, now);
    ph__generation_unref(old);
    update_watch(now->config);
  } else if (now != NULL) {
    ph__generation_unref(now);
  }
  ph__generation_unref(R.prev);
  R.prev = NULL;
  R.next = NULL;
  if (R.again && !R.stopped) {
    R.again = 0;
    ph__reload_start();
  }
}

void ph__reload_start(void) {
  int err;

  if (R.stopped)
    return;
  if (R.running) {
    R.again = 1;
    return;
  }
  R.prev = ph__registry_acquire();
  if (R.prev == NULL)
    return;
  R.running = 1;
  R.started_ns = uv_hrtime();
  err = uv_queue_work(R.loop, &R.work, build, publish);
  if (err != 0) {
    ph__error("reload: cannot start: %s", ph__strerror(err));
    R.running = 0;
    ph__generation_unref(R.prev);
    R.prev = NULL;
  }
}

int ph__reload_init(uv_loop_t *loop, const char *config_path,
                    const char *department, const char *cache_dir,
                    const ph__config *cfg) {
  int err;

  R.loop = loop;
  R.config_path = config_path;
  R.department = department;
  R.cache_dir = cache_dir;
  R.cfg = cfg;
  err = uv_timer_init(loop, &R.stuck_timer);
  if (err == 0)
    err = uv_timer_init(loop, &R.dir_debounce);
  if (err == 0)
    err = uv_fs_event_init(loop, &R.dir_watch);
  if (err != 0)
    return err;
  uv_timer_start(&R.stuck_timer, on_stuck_tick, 1000, 1000);
  /* The check alone must not keep the loop alive at shutdown. */
  uv_unref((uv_handle_t *)&R.stuck_timer);
  update_watch(cfg);
  return 0;
}

int ph__reload_running(void) {
  return R.running;
}

const ph__config *ph__reload_config(void) {
  return R.cfg;
}

void ph__reload_stop(void) {
  R.stopped = 1;
}

void ph__reload_close(void) {
  uv_close((uv_handle_t *)&R.stuck_timer, NULL);
  uv_close((uv_handle_t *)&R.dir_debounce, NULL);
  uv_close((uv_handle_t *)&R.dir_watch, NULL);
  free(R.watched_dir);
  R.watched_dir = NULL;
}
