/* instance.c: see instance.h. */
#include "instance.h"

#include "alloc.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A watch_fd registration, on its instance's list and on `watches` until it
 * is stopped; the poll handle's close callback frees it. */
struct ph__watch {
  uv_poll_t poll;
  ph_instance *inst; /* Referenced until stopped. */
  int fd;
  int events; /* PH_WATCH_*. */
  ph_watch_fn cb;
  void *data;
  int stopped; /* No callback after this, even for events already pending. */
  ph__watch *next;                /* The instance's list. */
  ph__watch *all_prev, *all_next; /* `watches`. */
};

static const ph_host_api *host_api;
static int (*finaliser)(ph_instance *inst);

/* Every instance from creation to destruction, so retired ones can be
 * watched while they drain. */
static uv_mutex_t live_lock;
static uv_once_t live_once = UV_ONCE_INIT;
static ph_instance *live;

/* Every active watch, for fd lookups. Loop thread only. */
static ph__watch *watches;

void ph__instances_set_api(const ph_host_api *api) {
  host_api = api;
}

void ph__instances_set_finaliser(int (*finalise)(ph_instance *inst)) {
  finaliser = finalise;
}

static void init_live_lock(void) {
  uv_mutex_init(&live_lock);
}

static void live_lock_take(void) {
  uv_once(&live_once, init_live_lock);
  uv_mutex_lock(&live_lock);
}

static void live_add(ph_instance *inst) {
  live_lock_take();
  inst->live_next = live;
  if (live != NULL)
    live->live_prev = inst;
  live = inst;
  uv_mutex_unlock(&live_lock);
}

static void live_remove(ph_instance *inst) {
  live_lock_take();
  if (inst->live_prev != NULL)
    inst->live_prev->live_next = inst->live_next;
  else if (live == inst)
    live = inst->live_next;
  if (inst->live_next != NULL)
    inst->live_next->live_prev = inst->live_prev;
  uv_mutex_unlock(&live_lock);
}

/* Starts the runner of an isolated instance, whose init runs there. */
static int start_runner(ph_instance *inst, int workers,
                        const ph__runner_limits *limits, char **err) {
  ph__runner_setup setup = {
      .inst = inst,
      .api = host_api,
      .label = inst->label,
      .so_path = inst->plugin->cache_path,
      .config_json = inst->config_json,
      .channels = workers,
      .limits = *limits,
  };
  char *why = NULL;
  ph__runner *r;

  inst->limits = *limits;
  inst->initialising = 1;
  r = ph__runner_start(&setup, &why);
  inst->initialising = 0;
  if (r != NULL) {
    /* ph__instances_not_ready() reads it from the loop meanwhile. */
    live_lock_take();
    inst->runner = r;
    uv_mutex_unlock(&live_lock);
    return 0;
  }
  ph__fail(err, "init of %s failed: %s", inst->label,
           why ? why : "out of memory");
  free(why);
  return PH__EFAIL;
}

ph_instance *ph__instance_create(ph__plugin *p, const char *department,
                                 const char *prefix, const char *config_json,
                                 int workers, int queue,
                                 const ph__runner_limits *isolate, char **err) {
  ph_instance *inst;
  int rc;

  *err = NULL;
  if (host_api == NULL) {
    ph__fail(err, "no host API table (ph__instances_set_api)");
    return NULL;
  }
  inst = ph__xcalloc(1, sizeof(*inst));
  inst->api = host_api;
  atomic_init(&inst->refs, 1);
  ph__plugin_ref(p);
  inst->plugin = p;
  inst->department = ph__xstrdup(department);
  inst->prefix = ph__xstrdup(prefix);
  inst->config_json = ph__xstrdup(config_json ? config_json : "{}");
  inst->label = ph__xasprintf("%s/%s (%s)", department,
                              prefix[0] ? prefix : "-", p->name);
  live_add(inst);
  if (isolate != NULL) {
    if (start_runner(inst, workers, isolate, err) != 0)
      goto fail;
  } else if (p->init != NULL) {
    inst->initialising = 1;
    rc = p->init(inst, host_api, inst->config_json, &inst->state);
    inst->initialising = 0;
    if (rc != 0) {
      ph__fail(err, "init of %s failed (returned %d)", inst->label, rc);
      goto fail;
    }
  }
  inst->initialised = 1;
  inst->pool = ph__pool_create(workers, queue);
  if (inst->pool == NULL) {
    ph__fail(err, "cannot start %d worker threads for %s", workers,
             inst->label);
    goto fail;
  }
  return inst;

fail:
  ph__instance_unref(inst);
  return NULL;
}

void ph__instance_ref(ph_instance *inst) {
  atomic_fetch_add(&inst->refs, 1);
}

int ph__instance_ref_live(ph_instance *inst) {
  long refs = atomic_load(&inst->refs);

  do {
    if (refs <= 0)
      return 0;
  } while (!atomic_compare_exchange_weak(&inst->refs, &refs, refs + 1));
  return 1;
}

void ph__instance_unref(ph_instance *inst) {
  if (inst == NULL || atomic_fetch_sub(&inst->refs, 1) != 1)
    return;
  if (finaliser == NULL || !finaliser(inst))
    ph__instance_destroy(inst);
}

static void on_watch_close(uv_handle_t *h) {
  free(h->data);
}

/* Loop thread: stops w at once and unlinks it; its reference on the
 * instance is the caller's to drop. The plugin may close the fd as soon as
 * this returns: uv_poll_stop takes it out of the kernel's poll set and
 * drops events already collected for it. */
static void watch_stop(ph__watch *w) {
  ph__watch **pp;

  w->stopped = 1;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_watch_close);
  for (pp = &w->inst->watches; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  }
  if (w->all_prev != NULL)
    w->all_prev->all_next = w->all_next;
  else
    watches = w->all_next;
  if (w->all_next != NULL)
    w->all_next->all_prev = w->all_prev;
  w->next = w->all_prev = w->all_next = NULL;
}

/* The watches of an instance being destroyed: their references are gone
 * already, so these are watches the plugin forgot. */
static void close_watches(ph_instance *inst) {
  while (inst->watches != NULL) {
    ph__warn("%s goes with fd %d still watched; the watch is closed",
             inst->label, inst->watches->fd);
    watch_stop(inst->watches);
  }
}

void ph__instance_destroy(ph_instance *inst) {
  if (atomic_load(&inst->stuck)) {
    /* A stuck instance broke its contract once; its code may still run
     * somewhere (a thread it started, a handler that replied and went on).
     * It stays mapped for the life of the process. */
    ph__warn("stuck instance %s finished its last call; it stays loaded",
             inst->label);
    return;
  }
  live_remove(inst);
  close_watches(inst);
  /* The pool goes first: its threads may still be returning from handlers
   * that already replied. */
  ph__pool_destroy(inst->pool);
  if (inst->runner != NULL)
    ph__runner_stop(inst->runner); /* fini runs there. */
  else if (inst->initialised && inst->plugin->fini != NULL)
    inst->plugin->fini(inst->state);
  /* Only now: until fini stopped them, the plugin's own threads (the
   * database's watcher) could still call set_ready or configure_tool,
   * which write these (a TSan report found the free racing one). */
  cJSON_Delete(inst->tool_overrides);
  free(inst->not_ready_why);
  ph__debug("finalised instance %s", inst->label);
  ph__plugin_unref(inst->plugin);
  free(inst->department);
  free(inst->prefix);
  free(inst->config_json);
  free(inst->label);
  free(inst);
}

void ph__instance_retire(ph_instance *inst, uint64_t now) {
  live_lock_take();
  if (inst->retired_at == 0)
    inst->retired_at = now ? now : 1;
  uv_mutex_unlock(&live_lock);
}

int ph__instances_check_stuck(uint64_t now, uint64_t drain_ms) {
  ph_instance *inst;
  int stuck = 0;

  live_lock_take();
  for (inst = live; inst != NULL; inst = inst->live_next) {
    if (inst->retired_at == 0 || now - inst->retired_at < drain_ms)
      continue;
    if (!atomic_exchange(&inst->stuck, 1))
      ph__error("instance %s is stuck: still busy %llu ms after it was "
                "retired; it will not be unloaded",
                inst->label, (unsigned long long)(now - inst->retired_at));
    stuck++;
  }
  uv_mutex_unlock(&live_lock);
  return stuck;
}

int ph__instances_stuck(void) {
  ph_instance *inst;
  int n = 0;

  live_lock_take();
  for (inst = live; inst != NULL; inst = inst->live_next)
    n += atomic_load(&inst->stuck) != 0;
  uv_mutex_unlock(&live_lock);
  return n;
}

int ph__instances_draining(void) {
  ph_instance *inst;
  int n = 0;

  live_lock_take();
  for (inst = live; inst != NULL; inst = inst->live_next)
    n += inst->retired_at != 0;
  uv_mutex_unlock(&live_lock);
  return n;
}

/* An override may set "enabled" (a boolean), "title" and "description"
 * (strings), nothing else. */
static int valid_override(const cJSON *o) {
  const cJSON *m;

  if (!cJSON_IsObject(o))
    return 0;
  cJSON_ArrayForEach(m, o) {
    if (!((strcmp(m->string, "enabled") == 0 && cJSON_IsBool(m)) ||
          ((strcmp(m->string, "description") == 0 ||
            strcmp(m->string, "title") == 0) &&
           cJSON_IsString(m))))
      return 0;
  }
  return 1;
}

int ph__instance_configure_tool(ph_instance *inst, const char *tool,
                                const char *override_json) {
  cJSON *o;
  size_t i;

  if (!inst->initialising)
    return PH__ENOTSUP;
  for (i = 0; i < inst->plugin->ntools; i++)
    if (strcmp(inst->plugin->tools[i].name, tool) == 0)
      break;
  if (i == inst->plugin->ntools)
    return PH__EINVAL;
  o = cJSON_Parse(override_json);
  if (!valid_override(o)) {
    cJSON_Delete(o);
    return PH__EINVAL;
  }
  if (inst->tool_overrides == NULL)
    inst->tool_overrides = ph__xcheck(cJSON_CreateObject());
  cJSON_DeleteItemFromObjectCaseSensitive(inst->tool_overrides, tool);
  ph__xjson_put(inst->tool_overrides, tool, o);
  return 0;
}

const cJSON *ph__instance_tool_override(const ph_instance *inst,
                                        const char *tool) {
  return cJSON_GetObjectItemCaseSensitive(inst->tool_overrides, tool);
}

void ph__instance_set_ready(ph_instance *inst, int ready, const char *why) {
  char *text = !ready && why ? ph__xstrdup(why) : NULL;
  int was_not_ready;

  live_lock_take();
  was_not_ready = atomic_exchange(&inst->not_ready, !ready);
  free(inst->not_ready_why);
  inst->not_ready_why = text;
  uv_mutex_unlock(&live_lock);
  if (was_not_ready == !ready)
    return;
  if (ready)
    ph__info("instance %s is ready", inst->label);
  else
    ph__warn("instance %s is not ready: %s", inst->label,
             why ? why : "no reason given");
}

char *ph__instances_not_ready(void) {
  ph_instance *inst;
  char *out = NULL, *grown;

  live_lock_take();
  for (inst = live; inst != NULL; inst = inst->live_next) {
    char *down = NULL;

    if (inst->retired_at != 0)
      continue;
    if (inst->runner != NULL && ph__runner_serving(inst->runner, &down))
      down = NULL;
    if (down == NULL && !atomic_load(&inst->not_ready))
      continue;
    grown = ph__xasprintf("%s%s%s: %s", out ? out : "", out ? "; " : "",
                          inst->label,
                          down                  ? down
                          : inst->not_ready_why ? inst->not_ready_why
                                                : "not ready");
    free(down);
    free(out);
    out = grown;
  }
  uv_mutex_unlock(&live_lock);
  return out;
}

int ph__instances_restarting(void) {
  ph_instance *inst;
  char *down;
  int n = 0;

  live_lock_take();
  for (inst = live; inst != NULL; inst = inst->live_next) {
    if (inst->retired_at != 0 || inst->runner == NULL ||
        ph__runner_serving(inst->runner, &down))
      continue;
    free(down);
    n++;
  }
  uv_mutex_unlock(&live_lock);
  return n;
}

static ph__watch *find_watch(int fd) {
  ph__watch *w;

  for (w = watches; w != NULL; w = w->all_next)
    if (w->fd == fd)
      return w;
  return NULL;
}

static void on_poll(uv_poll_t *h, int status, int uv_events) {
  ph__watch *w = h->data;
  ph_instance *inst = w->inst;
  int events = 0;

  /* Stopped earlier in this loop iteration (by another callback, say):
   * the plugin may have closed the fd and freed data already. w itself
   * lives until its close callback, which comes after this phase. */
  if (w->stopped)
    return;
  if (status < 0) {
    events = PH_WATCH_READ | PH_WATCH_WRITE;
  } else {
    if (uv_events & UV_READABLE)
      events |= PH_WATCH_READ;
    if (uv_events & UV_WRITABLE)
      events |= PH_WATCH_WRITE;
    events &= w->events;
    if (events == 0)
      return;
  }
  /* The callback may stop this watch, dropping the reference that keeps
   * the plugin loaded: its code must stay mapped until it returns. */
  ph__instance_ref(inst);
  w->cb(w->fd, events, w->data);
  ph__instance_unref(inst);
}

int ph__instance_watch(ph_instance *inst, uv_loop_t *loop, int fd, int events,
                       ph_watch_fn cb, void *data) {
  int uv_events, err;
  ph__watch *w;

  /* During init the instance may not serve yet (or be built off the loop
   * by a reload); during fini nothing would stop the watch again. */
  if (inst->initialising || atomic_load(&inst->refs) == 0)
    return PH__ENOTSUP;
  if (fd < 0 || (events & ~(PH_WATCH_READ | PH_WATCH_WRITE)) != 0 ||
      (events != 0 && cb == NULL))
    return PH__EINVAL;
  w = find_watch(fd);
  /* libuv wants a single poll handle per fd and loop. */
  if (w != NULL && w->inst != inst)
    return PH__EINVAL;
  if (events == 0) {
    if (w == NULL)
      return PH__EINVAL;
    watch_stop(w);
    ph__instance_unref(inst); /* Not the last: the caller runs its code. */
    return 0;
  }
  uv_events = ((events & PH_WATCH_READ) ? UV_READABLE : 0) |
              ((events & PH_WATCH_WRITE) ? UV_WRITABLE : 0);
  if (w != NULL) {
    /* Also re-arms a watch libuv stopped after a poll error. The same
     * events need no restart, which would change the poll set: a plugin
     * handing a socket from one piece of work to the next only swaps
     * cb and data. */
    if (events != w->events || !uv_is_active((uv_handle_t *)&w->poll)) {
      err = uv_poll_start(&w->poll, uv_events, on_poll);
      if (err != 0)
        return err;
    }
    w->events = events;
    w->cb = cb;
    w->data = data;
    return 0;
  }
  w = ph__xcalloc(1, sizeof(*w));
  /* Fails for what epoll refuses (regular files) and for fds the loop
   * already watches (the host's own). */
  err = uv_poll_init(loop, &w->poll, fd);
  if (err != 0) {
    free(w);
    return err;
  }
  w->poll.data = w;
  w->inst = inst;
  w->fd = fd;
  w->events = events;
  w->cb = cb;
  w->data = data;
  err = uv_poll_start(&w->poll, uv_events, on_poll);
  if (err != 0) {
    uv_close((uv_handle_t *)&w->poll, on_watch_close);
    return err;
  }
  w->next = inst->watches;
  inst->watches = w;
  w->all_next = watches;
  if (watches != NULL)
    watches->all_prev = w;
  watches = w;
  ph__instance_ref(inst);
  return 0;
}

void ph__instances_close_watches(void) {
  ph_instance *inst;
  ph__watch *w;

  /* A watch holds its instance, and its handle the loop: one left running
   * would keep both forever. Closed while finalising still works. */
  while ((w = watches) != NULL) {
    inst = w->inst;
    ph__warn("shutdown: %s still watches fd %d; the watch is closed",
             inst->label, w->fd);
    watch_stop(w);
    ph__instance_unref(inst);
  }
}
