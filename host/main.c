/* main.c: command line, start-up and orderly shutdown. */
#include "call.h"
#include "config.h"
#include "host_api.h"
#include "instance.h"
#include "log.h"
#include "protocol.h"
#include "registry.h"
#include "transport_http.h"
#include "tasks.h"
#include "transport_stdio.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

static struct {
  uv_loop_t *loop;
  ph__config *cfg; /* Owned by the current generation once published. */
  const char *config_path;
  const char *department;
  char *cache_dir;
  int own_cache_dir;
  int use_stdio;
  const char *listen;
  int shutting_down;
  int abandoned; /* Exiting while plugin code still runs on workers. */
  uint64_t shutdown_deadline;
  uv_signal_t sigterm, sigint, sighup;
  uv_timer_t drain_timer;
  /* Reload: one at a time; signals during one coalesce into one more. */
  uv_work_t reload_work;
  int reload_running, reload_again;
  ph__generation *reload_prev; /* The generation the reload started from. */
  ph__generation *reload_next; /* Built off the loop, or NULL on failure. */
  unsigned long reloads;
  uv_timer_t stuck_timer;  /* Watches retired instances drain. */
  uv_fs_event_t dir_watch; /* watch_plugin_dir */
  uv_timer_t dir_debounce; /* Lets a burst of file events settle. */
  int watching;
  char *watched_dir;
} M;

static void usage(FILE *f) {
  fprintf(f, "usage: plughost --config FILE [--stdio | --listen HOST:PORT]\n"
             "                [--department NAME] [--check]\n"
             "  --config FILE      the host configuration (JSON)\n"
             "  --stdio            serve MCP on stdin/stdout\n"
             "  --listen HOST:PORT serve MCP over Streamable HTTP\n"
             "  --department NAME  the department stdio serves (default: "
             "default)\n"
             "  --check            validate the config and plugins, then exit\n"
             "  --version          print the version\n");
}

/* Every HTTP connection is a file descriptor, and the soft limit is often
 * 1024, no more than the default limits.max_connections: take what the
 * hard limit allows. */
static void raise_nofile_limit(void) {
  struct rlimit rl;
  rlim_t was;

  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
    return;
  was = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
    ph__debug("RLIMIT_NOFILE raised from %llu to %llu", (unsigned long long)was,
              (unsigned long long)rl.rlim_cur);
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

static void finish_shutdown(void) {
  ph__generation *g;

  ph__stdio_close();
  ph__mcp_http_close();
  g = ph__registry_publish(NULL);
  ph__generation_unref(g); /* Runs fini on every instance. */
  uv_timer_stop(&M.drain_timer);
  uv_close((uv_handle_t *)&M.drain_timer, NULL);
  uv_close((uv_handle_t *)&M.stuck_timer, NULL);
  uv_close((uv_handle_t *)&M.dir_debounce, NULL);
  uv_close((uv_handle_t *)&M.dir_watch, NULL);
  free(M.watched_dir);
  uv_close((uv_handle_t *)&M.sigterm, NULL);
  uv_close((uv_handle_t *)&M.sigint, NULL);
  uv_close((uv_handle_t *)&M.sighup, NULL);
  ph__calls_close();
}

/* Waits for running calls, then tears down; past the deadline it leaves
 * whatever is still running behind. */
static void on_drain_tick(uv_timer_t *t) {
  long live = ph__calls_unanswered();

  (void)t;
  if ((live > 0 || M.reload_running) && uv_now(M.loop) < M.shutdown_deadline)
    return;
  if (live > 0) {
    ph__warn("shutdown: %ld calls still running after %u ms; exiting anyway",
             live, M.cfg->limits.shutdown_timeout_ms);
    M.abandoned = 1;
  }
  finish_shutdown();
}

static void begin_shutdown(const char *why) {
  if (M.shutting_down)
    return;
  M.shutting_down = 1;
  ph__info("shutting down (%s)", why);
  ph__stdio_stop();
  ph__mcp_http_stop();
  ph__tasks_cancel_all(); /* Over stdio too: no client polls them now. */
  M.shutdown_deadline = uv_now(M.loop) + M.cfg->limits.shutdown_timeout_ms;
  uv_timer_start(&M.drain_timer, on_drain_tick, 0, 5);
}

static void on_stdin_eof(void) {
  begin_shutdown("stdin closed");
}

/* Off the loop: re-read the config and rescan the directory, then build
 * a complete new generation (running init of new instances here too). */
static void reload_build(uv_work_t *req) {
  ph__generation *prev = M.reload_prev;
  ph__plugin **plugins;
  ph__config *cfg;
  char *err = NULL;
  size_t n, i;

  (void)req;
  M.reload_next = NULL;
  cfg = ph__config_load(M.config_path, &err);
  if (cfg == NULL) {
    ph__error("reload: %s; keeping the current configuration and plugins",
              err ? err : "out of memory");
    free(err);
    return;
  }
  if (ph__config_department(cfg, M.department) == NULL) {
    ph__error("reload: %s has no department \"%s\"; keeping the current "
              "generation",
              M.config_path, M.department);
    ph__config_free(cfg);
    return;
  }
  n = ph__plugin_rescan(cfg->plugin_dir, M.cache_dir, prev->plugins,
                        prev->nplugins, &plugins);
  M.reload_next = ph__generation_build(cfg, plugins, n, prev);
  for (i = 0; i < n; i++)
    ph__plugin_unref(plugins[i]);
  free(plugins);
}

static void start_reload(void);
static void update_watch(const ph__config *cfg);

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
        ph__instance_retire(old->depts[i].instances[j], uv_now(M.loop));
}

static void on_stuck_tick(uv_timer_t *t) {
  (void)t;
  ph__instances_check_stuck(uv_now(M.loop), M.cfg->limits.drain_timeout_ms);
}

static void on_dir_debounced(uv_timer_t *t) {
  (void)t;
  ph__info("plugin directory changed; reloading");
  start_reload();
}

static void on_dir_event(uv_fs_event_t *h, const char *file, int events,
                         int status) {
  (void)h;
  (void)events;
  if (status < 0 || M.shutting_down)
    return;
  /* Our own cache copies never live here, but editors' temp files do:
   * only .so names matter. */
  if (file != NULL &&
      (strlen(file) < 3 || strcmp(file + strlen(file) - 3, ".so") != 0))
    return;
  uv_timer_start(&M.dir_debounce, on_dir_debounced, 200, 0);
}

static void update_watch(const ph__config *cfg) {
  if (M.watching &&
      (!cfg->watch_plugin_dir || strcmp(M.watched_dir, cfg->plugin_dir) != 0)) {
    uv_fs_event_stop(&M.dir_watch);
    M.watching = 0;
    free(M.watched_dir);
    M.watched_dir = NULL;
  }
  if (!M.watching && cfg->watch_plugin_dir) {
    if (uv_fs_event_start(&M.dir_watch, on_dir_event, cfg->plugin_dir, 0) ==
        0) {
      M.watching = 1;
      M.watched_dir = strdup(cfg->plugin_dir);
    } else {
      ph__error("cannot watch plugin directory %s", cfg->plugin_dir);
    }
  }
}

/* On the loop: publish with one pointer swap, then tell every session
 * whose lists changed. */
static void reload_publish(uv_work_t *req, int status) {
  ph__generation *old, *now = M.reload_next;
  size_t i;

  (void)req;
  (void)status;
  M.reload_running = 0;
  if (now != NULL && !M.shutting_down) {
    ph__log_set_level(now->config->log_level);
    ph__protocol_set_config(now->config);
    ph__stdio_set_config(now->config);
    ph__mcp_http_set_config(now->config);
    old = ph__registry_publish(now);
    M.cfg = now->config;
    M.reloads++;
    ph__info("reload %lu: generation %llu published", M.reloads,
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
  ph__generation_unref(M.reload_prev);
  M.reload_prev = NULL;
  M.reload_next = NULL;
  if (M.reload_again && !M.shutting_down) {
    M.reload_again = 0;
    start_reload();
  }
}

static void start_reload(void) {
  if (M.reload_running) {
    M.reload_again = 1;
    return;
  }
  M.reload_prev = ph__registry_acquire();
  if (M.reload_prev == NULL)
    return;
  M.reload_running = 1;
  if (uv_queue_work(M.loop, &M.reload_work, reload_build, reload_publish)) {
    M.reload_running = 0;
    ph__generation_unref(M.reload_prev);
    M.reload_prev = NULL;
  }
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)h;
  if (signum == SIGHUP) {
    if (!M.shutting_down)
      start_reload();
    return;
  }
  begin_shutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* Copies still mapped at exit (an instance that never drained) are removed
 * too: unlinking a mapped file is safe, and nothing may pile up in /tmp. */
static void remove_cache_copies(void) {
  char prefix[32], *path;
  struct dirent *de;
  DIR *d;

  snprintf(prefix, sizeof(prefix), "%u-", (unsigned)getpid());
  d = opendir(M.cache_dir);
  if (d != NULL) {
    while ((de = readdir(d)) != NULL) {
      if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
        continue;
      if (asprintf(&path, "%s/%s", M.cache_dir, de->d_name) >= 0) {
        unlink(path);
        free(path);
      }
    }
    closedir(d);
  }
  if (M.own_cache_dir)
    rmdir(M.cache_dir);
}

static int make_cache_dir(void) {
  const char *tmp = getenv("TMPDIR");
  char *tpl;

  if (M.cfg->cache_dir != NULL) {
    M.cache_dir = strdup(M.cfg->cache_dir);
    if (mkdir(M.cache_dir, 0700) != 0 && errno != EEXIST) {
      ph__error("cache_dir %s: %s", M.cache_dir, strerror(errno));
      return -1;
    }
    return 0;
  }
  if (asprintf(&tpl, "%s/plughost-XXXXXX", tmp ? tmp : "/tmp") < 0)
    return -1;
  if (mkdtemp(tpl) == NULL) {
    ph__error("cannot create a plugin cache directory: %s", strerror(errno));
    free(tpl);
    return -1;
  }
  M.cache_dir = tpl;
  M.own_cache_dir = 1;
  return 0;
}

/* Loads plugins and builds the first generation. Returns the number of
 * problems logged on the way (refusals), or -1 if nothing can be served. */
static int load_all(ph__generation **out) {
  ph__plugin **plugins;
  ph__generation *g;
  size_t n, i;
  long errors_before = ph__log_errors();

  n = ph__plugin_scan(M.cfg->plugin_dir, M.cache_dir, &plugins);
  g = ph__generation_build(M.cfg, plugins, n, NULL);
  for (i = 0; i < n; i++)
    ph__plugin_unref(plugins[i]);
  free(plugins);
  *out = g;
  return (int)(ph__log_errors() - errors_before);
}

int main(int argc, char **argv) {
  ph__generation *g;
  char *err = NULL;
  int i, check = 0, problems, rc = 0, err_code;

  M.department = "default";
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      M.config_path = argv[++i];
    } else if (strcmp(argv[i], "--stdio") == 0) {
      M.use_stdio = 1;
    } else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      M.listen = argv[++i];
    } else if (strcmp(argv[i], "--department") == 0 && i + 1 < argc) {
      M.department = argv[++i];
    } else if (strcmp(argv[i], "--check") == 0) {
      check = 1;
    } else if (strcmp(argv[i], "--version") == 0) {
      printf("plughost %s (plugin ABI %d.%d)\n", PH_VERSION, PH_ABI_MAJOR,
             PH_ABI_MINOR);
      return 0;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "plughost: unknown or incomplete option %s\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (M.config_path == NULL) {
    fprintf(stderr, "plughost: --config FILE is required\n");
    usage(stderr);
    return 2;
  }
  if (M.use_stdio && M.listen != NULL) {
    fprintf(stderr, "plughost: choose one of --stdio and --listen\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  M.cfg = ph__config_load(M.config_path, &err);
  if (M.cfg == NULL) {
    fprintf(stderr, "plughost: %s\n", err ? err : "out of memory");
    free(err);
    return 2;
  }
  ph__log_set_level(M.cfg->log_level);
  raise_nofile_limit();
  if (ph__config_department(M.cfg, M.department) == NULL) {
    fprintf(stderr, "plughost: %s: no department named \"%s\"\n", M.config_path,
            M.department);
    ph__config_free(M.cfg);
    return 2;
  }
  if (make_cache_dir() != 0)
    return 1;

  M.loop = uv_default_loop();
  ph__instances_set_api(&ph__host_api);
  if (!check && (err_code = ph__calls_init(M.loop)) != 0) {
    ph__error("cannot start the call layer: %s", ph__strerror(err_code));
    return 1;
  }
  problems = load_all(&g);
  if (check) {
    /* Same checks as serving, then the verdict, like nginx -t. */
    ph__generation_unref(g);
    remove_cache_copies();
    fprintf(stderr, "plughost: %s: %s\n", M.config_path,
            problems == 0 ? "configuration and plugins are valid"
                          : "problems found (see the lines above)");
    return problems == 0 ? 0 : 1;
  }
  ph__registry_publish(g);
  if (ph__protocol_init(M.cfg) != 0) {
    ph__error("cannot initialise the protocol (no random source?)");
    return 1;
  }
  uv_timer_init(M.loop, &M.drain_timer);
  uv_timer_init(M.loop, &M.stuck_timer);
  uv_timer_start(&M.stuck_timer, on_stuck_tick, 1000, 1000);
  uv_unref((uv_handle_t *)&M.stuck_timer);
  uv_timer_init(M.loop, &M.dir_debounce);
  uv_fs_event_init(M.loop, &M.dir_watch);
  update_watch(M.cfg);
  uv_signal_init(M.loop, &M.sigterm);
  uv_signal_init(M.loop, &M.sigint);
  uv_signal_init(M.loop, &M.sighup);
  uv_signal_start(&M.sigterm, on_signal, SIGTERM);
  uv_signal_start(&M.sigint, on_signal, SIGINT);
  uv_signal_start(&M.sighup, on_signal, SIGHUP);

  if (M.use_stdio) {
    if (ph__stdio_start(M.loop, M.cfg, M.department, on_stdin_eof) != 0) {
      begin_shutdown("stdio unavailable");
      rc = 1;
    }
  } else if (ph__mcp_http_start(M.loop, M.cfg,
                                M.listen ? M.listen : M.cfg->listen) != 0) {
    begin_shutdown("HTTP unavailable");
    rc = 1;
  }
  ph__info("plughost %s serving department %s%s", PH_VERSION, M.department,
           M.use_stdio ? " on stdio" : "");
  uv_run(M.loop, UV_RUN_DEFAULT);
  uv_walk(M.loop, close_walk, NULL);
  uv_run(M.loop, UV_RUN_DEFAULT);
  uv_loop_close(M.loop);
  remove_cache_copies();
  free(M.cache_dir);
  if (M.abandoned)
    _exit(rc); /* No destructors while abandoned handlers still run. */
  return rc;
}
