/* main.c: command line, start-up and orderly shutdown. The top of host/:
 * it wires the layers together (the API table into instances, the call
 * layer onto the loop) and owns the signals. */
#include "alloc.h"
#include "call.h"
#include "config.h"
#include "host_api.h"
#include "instance.h"
#include "log.h"
#include "notify.h"
#include "protocol.h"
#include "registry.h"
#include "reload.h"
#include "tasks.h"
#include "transport_http.h"
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
  ph__config *cfg; /* The start-up config, owned by the first generation. */
  const char *config_path;
  const char *department;
  char *cache_dir;
  int own_cache_dir;
  int use_stdio;
  const char *listen;
  int shutting_down;
  int abandoned;   /* Exiting while plugin code still runs on workers. */
  int exit_status; /* Non-zero: a failure found while serving. */
  uint32_t shutdown_timeout_ms;
  uint64_t shutdown_deadline;
  uv_signal_t sigterm, sigint, sighup, sigusr1;
  uv_timer_t drain_timer;
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
  ph__reload_close();
  uv_close((uv_handle_t *)&M.sigterm, NULL);
  uv_close((uv_handle_t *)&M.sigint, NULL);
  uv_close((uv_handle_t *)&M.sighup, NULL);
  uv_close((uv_handle_t *)&M.sigusr1, NULL);
  ph__calls_close();
}

/* Waits for running calls, then tears down; past the deadline it leaves
 * whatever is still running behind. */
static void on_drain_tick(uv_timer_t *t) {
  long live = ph__calls_unanswered();

  (void)t;
  if ((live > 0 || ph__reload_running()) &&
      uv_now(M.loop) < M.shutdown_deadline)
    return;
  if (live > 0) {
    ph__warn("shutdown: %ld calls still running after %u ms; exiting anyway",
             live, M.shutdown_timeout_ms);
    M.abandoned = 1;
  }
  finish_shutdown();
}

static void begin_shutdown(const char *why) {
  if (M.shutting_down)
    return;
  M.shutting_down = 1;
  ph__info("shutting down (%s)", why);
  ph__notify("STOPPING=1");
  ph__reload_stop();
  ph__stdio_stop();
  ph__mcp_http_stop();
  ph__tasks_cancel_all(); /* Over stdio too: no client polls them now. */
  M.shutdown_timeout_ms = ph__reload_config()->limits.shutdown_timeout_ms;
  M.shutdown_deadline = uv_now(M.loop) + M.shutdown_timeout_ms;
  uv_timer_start(&M.drain_timer, on_drain_tick, 0, 5);
}

static void on_stdio_end(int status) {
  if (status != 0)
    M.exit_status = status;
  begin_shutdown(status != 0 ? "the stdio client was refused" : "stdin closed");
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)h;
  if (signum == SIGHUP) {
    ph__reload_start();
    return;
  }
  if (signum == SIGUSR1) {
    /* logrotate moved log_file away: write to a new one. */
    if (ph__log_reopen() != 0)
      ph__error("SIGUSR1: cannot reopen log_file; logging where it did");
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
      path = ph__xasprintf("%s/%s", M.cache_dir, de->d_name);
      unlink(path);
      free(path);
    }
    closedir(d);
  }
  if (M.own_cache_dir)
    rmdir(M.cache_dir);
}

/* Returns 0 or -errno (a UV_E* code on Unix). */
static int make_cache_dir(void) {
  const char *tmp = getenv("TMPDIR");
  char *tpl;
  int err;

  if (M.cfg->cache_dir != NULL) {
    M.cache_dir = ph__xstrdup(M.cfg->cache_dir);
    if (mkdir(M.cache_dir, 0700) != 0 && errno != EEXIST) {
      err = -errno;
      ph__error("cache_dir %s: %s", M.cache_dir, ph__strerror(err));
      return err;
    }
    return 0;
  }
  tpl = ph__xasprintf("%s/plughost-XXXXXX", tmp ? tmp : "/tmp");
  if (mkdtemp(tpl) == NULL) {
    err = -errno;
    ph__error("cannot create a plugin cache directory: %s", ph__strerror(err));
    free(tpl);
    return err;
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
  ph__reload_apply_ops(M.cfg);
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
  err_code =
      ph__reload_init(M.loop, M.config_path, M.department, M.cache_dir, M.cfg);
  if (err_code != 0) {
    ph__error("cannot start reloading: %s", ph__strerror(err_code));
    return 1;
  }
  uv_signal_init(M.loop, &M.sigterm);
  uv_signal_init(M.loop, &M.sigint);
  uv_signal_init(M.loop, &M.sighup);
  uv_signal_start(&M.sigterm, on_signal, SIGTERM);
  uv_signal_start(&M.sigint, on_signal, SIGINT);
  uv_signal_start(&M.sighup, on_signal, SIGHUP);
  uv_signal_init(M.loop, &M.sigusr1);
  uv_signal_start(&M.sigusr1, on_signal, SIGUSR1);

  if (M.use_stdio) {
    if (ph__stdio_start(M.loop, M.cfg, M.department, on_stdio_end) != 0) {
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
  if (rc == 0 && ph__notify("READY=1") != 0)
    ph__warn("NOTIFY_SOCKET is set but READY=1 could not be sent");
  uv_run(M.loop, UV_RUN_DEFAULT);
  uv_walk(M.loop, close_walk, NULL);
  uv_run(M.loop, UV_RUN_DEFAULT);
  uv_loop_close(M.loop);
  remove_cache_copies();
  free(M.cache_dir);
  if (rc == 0)
    rc = M.exit_status;
  if (M.abandoned)
    _exit(rc); /* No destructors while abandoned handlers still run. */
  return rc;
}
