/* instance.h: an instance's whole life. An instance is a plugin's code
 * (loader.h) initialised with a prefix and a config inside a department:
 * created and initialised, referenced by generations and calls, ready or
 * not, watching fds on the loop, retired by a reload, perhaps stuck, and
 * finally finalised (fini) and freed. Every instance not yet freed is on one
 * live list.
 *
 * An isolated instance ("isolation": "process") keeps its plugin code in a
 * runner process (isolate.h): init and fini run there, and its workers
 * proxy calls to it instead of running handlers.
 *
 * Layers: above loader.h (its code), pool.h (its worker threads) and
 * isolate.h (an isolated instance's runner); below
 * registry.h (which composes instances into generations) and call.h (which
 * runs calls on them). It calls upward only through the finaliser hook the
 * call layer installs. */
#ifndef PH_INSTANCE_H
#define PH_INSTANCE_H

#include "isolate.h"
#include "loader.h"
#include "pool.h"

#include <cJSON.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ph__watch ph__watch;

struct ph_instance {
  /* The host's API table (ph_instance_api() in plughost.h reads it): must
   * stay the first member. */
  const ph_host_api *api;
  atomic_long refs; /* Generations using it + calls running on it. */
  ph__plugin *plugin;
  char *department;
  char *prefix;
  char *config_json;
  char *label; /* "department/prefix (plugin)" for log lines. */
  void *state;
  ph__pool *pool;
  ph__runner *runner;       /* Isolated: its runner, which owns init and fini;
                               NULL in the host. */
  ph__runner_limits limits; /* Isolated: the runner's limits. */
  int initialised;          /* init succeeded: fini is owed. */
  atomic_int stuck;      /* Retired but still busy past the drain deadline. */
  cJSON *tool_overrides; /* configure_tool during init: name -> object. */
  int initialising;      /* configure_tool is allowed. */
  atomic_int not_ready;  /* set_ready(0): /ready fails. */
  char *not_ready_why;   /* Guarded by the live list lock. */
  uint64_t retired_at;   /* Loop time it left the current generation, or 0. */
  ph__watch *watches;    /* watch_fd's, loop thread only; each holds a ref. */
  ph_instance *live_prev, *live_next; /* The live list. */
};

_Static_assert(offsetof(struct ph_instance, api) == 0,
               "ph_instance_api() reads the table from the first member");

/* The API table every instance (and every call on it) points at and init
 * receives: host_api.c's, borrowed for the life of the process. Set once at
 * start-up, before the first instance is created; until then creating one
 * fails. */
void ph__instances_set_api(const ph_host_api *api);

/* How an instance goes whose last reference was dropped: finalise returns
 * non-zero when it took the instance over (to destroy it on the loop thread
 * later, or never once the host is shutting down), zero to have it
 * destroyed at once on the dropping thread. The call layer, which owns the
 * loop's completion queue, installs it once (ph__calls_init); without one
 * (--check, tests without a loop) instances are destroyed at once. */
void ph__instances_set_finaliser(int (*finalise)(ph_instance *inst));

/* Creates an instance of p (referenced) and runs init on it on the calling
 * thread, then starts its pool of `workers` threads queueing up to `queue`
 * calls. With `isolate` (not NULL), init runs in a runner process with
 * those limits and `workers` channels, and the calling thread waits for
 * it. Returns it with one reference, or NULL with *err (malloc'd) saying
 * why. */
ph_instance *ph__instance_create(ph__plugin *p, const char *department,
                                 const char *prefix, const char *config_json,
                                 int workers, int queue,
                                 const ph__runner_limits *isolate, char **err);

void ph__instance_ref(ph_instance *inst);
/* Takes a reference only while the instance lives (refs above zero):
 * a plugin's own thread may call the API while its instance is being
 * finalised, and must not bring it back. Returns 1 if it took one. Any
 * thread. */
int ph__instance_ref_live(ph_instance *inst);

/* Drops a reference; the last one finalises the instance (see
 * ph__instances_set_finaliser). Finalising joins the worker threads, so
 * off the loop the finaliser defers it there. Any thread. */
void ph__instance_unref(ph_instance *inst);

/* Closes the instance's watches, stops its pool, runs fini and frees it; a
 * stuck instance is only logged and stays. For the finaliser, on the loop
 * thread (or anywhere when there is no loop). */
void ph__instance_destroy(ph_instance *inst);

/* Marks an instance as retired at loop time `now` (it left the current
 * generation and drains). Any thread. */
void ph__instance_retire(ph_instance *inst, uint64_t now);

/* Marks retired instances busy for longer than drain_ms as stuck (they are
 * never unloaded) and logs each once. Returns how many are stuck. */
int ph__instances_check_stuck(uint64_t now, uint64_t drain_ms);

/* Instances marked stuck (a counter for /ready). Any thread. */
int ph__instances_stuck(void);

/* Retired instances still draining (stuck ones included). Any thread. */
int ph__instances_draining(void);

/* configure_tool (init only): stores an override of one of the plugin's
 * tools. Returns 0, PH__ENOTSUP outside init, PH__EINVAL for an unknown
 * tool or a bad override. */
int ph__instance_configure_tool(ph_instance *inst, const char *tool,
                                const char *override_json);

/* The override object for a tool of this instance (borrowed), or NULL. */
const cJSON *ph__instance_tool_override(const ph_instance *inst,
                                        const char *tool);

/* Records set_ready; logs transitions. Any thread. */
void ph__instance_set_ready(ph_instance *inst, int ready, const char *why);

/* Instances that reported not ready, or isolated ones whose runner is down
 * (restarting), as a malloc'd text "label: why; ..." or NULL when all are
 * ready. Retired instances do not count. Any thread. */
char *ph__instances_not_ready(void);

/* Isolated instances in service whose runner is down (restarting). Any
 * thread. */
int ph__instances_restarting(void);

/* watch_fd (plughost.h) on `loop`, whose thread the caller is on: starts
 * watching fd for inst, changes its watch, or with events 0 stops it.
 * Returns 0, PH__ENOTSUP during init or fini, PH__EINVAL for fd < 0,
 * unknown events bits, a NULL cb with events, an fd another instance
 * watches or stopping one not watched, or libuv's code for an fd the loop
 * cannot poll. A watch holds a reference on inst until it is stopped. */
int ph__instance_watch(ph_instance *inst, uv_loop_t *loop, int fd, int events,
                       ph_watch_fn cb, void *data);

/* Loop thread, at shutdown: closes every watch still open, logging each,
 * and drops the references they held. */
void ph__instances_close_watches(void);

#endif
