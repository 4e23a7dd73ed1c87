/* isolate.h: the host's side of an isolated instance ("isolation":
 * "process"). Its plugin code runs in a plughost-runner child (runner.c)
 * that loads the same cache copy of the .so and calls init, the handlers
 * and fini; the host keeps only the descriptor it loaded. A ph__runner
 * spawns that process, serves its control channel, restarts it after a
 * crash with exponential backoff, kills it when a call hangs past its
 * deadline, and proxies calls to it: one channel per host worker, each
 * carrying one call at a time.
 *
 * The runner speaks to its instance and its calls the way a plugin does,
 * through the ABI table (plughost.h): configure_tool, set_ready, notify,
 * reply, progress, service_call and the rest are called on `api` with the
 * host's ph_instance and ph_call, which stay opaque here. So this layer
 * knows no instance, call or protocol internals.
 *
 * Threads: one supervisor thread per runner spawns it, reads its control
 * channel and stderr, reaps it and respawns it; proxies run on the
 * threads that call ph__runner_call() (the instance's pool workers, or a
 * service caller's thread). Every function is any-thread.
 *
 * Layers: above channel.h and config.h (limits); below instance.h, which
 * owns one per isolated instance. */
#ifndef PH_ISOLATE_H
#define PH_ISOLATE_H

#include "config.h"
#include "plughost.h"

#include <stdint.h>

typedef struct ph__runner ph__runner;

/* A grace past a call's deadline before its runner is killed: time for a
 * handler polling cancelled() to notice and return. */
#define PH__RUNNER_GRACE_MS 1000

/* Restart delays: the first, the cap, and how long a runner must have
 * served for the next crash to start from the first again. */
#define PH__RUNNER_BACKOFF_MIN_MS 100
#define PH__RUNNER_BACKOFF_MAX_MS 30000
#define PH__RUNNER_HEALTHY_MS 60000

/* A call that finds the runner down waits this long for it to serve
 * again, when its next attempt is due by then (a first crash restarts in
 * 100 ms); otherwise, and after that, it fails at once. */
#define PH__RUNNER_DOWN_WAIT_MS 1000

/* How long fini may take in the runner before it is killed. */
#define PH__RUNNER_FINI_MS 5000

/* What one runner is to be. Strings are copied. */
typedef struct ph__runner_setup {
  ph_instance *inst;        /* The host's instance: init's configure_tool,
                               set_ready and notify reach it through api. */
  const ph_host_api *api;   /* The host's table. */
  const char *label;        /* For log lines and errors. */
  const char *so_path;      /* The cache copy the host loaded. */
  const char *config_json;  /* init's config. */
  int channels;             /* Calls in flight at once (the workers). */
  ph__runner_limits limits; /* Applied in the child before exec. */
} ph__runner_setup;

/* Spawns the runner and waits for its init (the plugin's configure_tool
 * calls reach api->configure_tool meanwhile, on the supervisor thread, so
 * the caller keeps the instance in its initialising state). Returns it, or
 * NULL with *err (malloc'd) saying why: init failed, or the runner could
 * not start. */
ph__runner *ph__runner_start(const ph__runner_setup *setup, char **err);

/* The instance was drained: asks the runner to run fini and exit (killing
 * it after PH__RUNNER_FINI_MS), stops restarting, joins the supervisor and
 * frees r. No call may be in ph__runner_call() on r any more. NULL is a
 * no-op. */
void ph__runner_stop(ph__runner *r);

/* One call for the runner. Strings are borrowed for ph__runner_call(). */
typedef struct ph__runner_req {
  int kind;              /* enum ph__wire_kind (channel.h). */
  uint32_t index;        /* The item's index in its descriptor table. */
  const char *name;      /* Exposed name or URI, for errors and log lines. */
  const char *item;      /* The item's own name, which the runner checks. */
  const char *a, *b, *c; /* Per kind (channel.h). */
  const char *principal;
  const char *state;   /* The retry's state (get_state), or NULL. */
  int progress;        /* The client sent a progress token. */
  int run_inline;      /* Declared inline: the runner's loop runs it. */
  uint32_t timeout_ms; /* The call's deadline from now; 0: none. */
} ph__runner_req;

/* Runs req for call in the runner and serves what comes back (progress,
 * messages, round trips through api) until the runner is done with it. The
 * call is answered through api->reply or api->reply_error, also when the
 * runner is down (naming the instance and why, after waiting for a restart
 * that is due within PH__RUNNER_DOWN_WAIT_MS), crashes meanwhile
 * (naming the signal or exit status) or hangs past the deadline and the
 * grace (then it is killed and restarted, failing only its own calls). The
 * one exception is a service handler that returned without replying,
 * which the caller finds unreplied, as in the host. Blocks the thread. */
void ph__runner_call(ph__runner *r, ph_call *call, const ph__runner_req *req);

/* Whether the runner is serving. When it is not, returns 0 with *why
 * (malloc'd): "restarting after killed by signal 11 (SIGSEGV); next attempt
 * in 200 ms". */
int ph__runner_serving(ph__runner *r, char **why);

#endif
