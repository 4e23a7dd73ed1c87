/* runner.c: plughost-runner, the process an isolated instance runs in
 * (isolate.h is the host's side). Started by the host as
 *
 *   plughost-runner SO_PATH LABEL CHANNELS LOG_LEVEL
 *
 * with the descriptors channel.h lists, it loads the host's cache copy of
 * the plugin, reads its config from the control channel, calls init with
 * its own ph_host_api table, and serves calls: thread i reads channel i and
 * runs each handler synchronously (an inline tool's on this process's own
 * libuv loop, which also runs watch_fd's watches), then waits for the
 * reply, running run_in_pool's work meanwhile. Whatever needs the host
 * (progress, messages, service calls, client requests, logs, readiness)
 * travels over the channels; everything else is answered here.
 *
 * A call lives until both its channel thread and the plugin are done with
 * it (the plugin is done when it replies), as in the host. A call whose
 * handler returned without replying is abandoned once the host cancels it
 * (a deadline passed), so its channel serves again; a handler that never
 * returns is the host's to deal with (it kills the process).
 *
 * Links the host's core for its allocator, framing and watches (the same
 * watch_fd rules as in the host, from instance.c), and nothing of its
 * calls or protocol. */
#include "alloc.h"
#include "channel.h"
#include "error.h"
#include "instance.h"
#include "log.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

typedef struct chan chan;

struct ph_call {
  /* This runner's table (ph_call_api()): must stay the first member. */
  const ph_host_api *api;
  atomic_int refs; /* The channel thread's and, until it replies, the
                      plugin's. */
  chan *ch;
  ph__msg msg; /* The PH__MSG_CALL; its strings are the call's. */
  uint32_t seq;
  /* Guarded by ch->mu: */
  int replied;   /* The plugin replied (or the call was abandoned). */
  int returned;  /* The handler returned. */
  int abandoned; /* Given up: nothing more goes on the channel for it. */
  int deferred;  /* run_in_pool's fn is queued or running. */
  void (*defer_fn)(ph_call *call, void *arg); /* Queued, not yet taken. */
  void *defer_arg;
  int has_progress;
  double last_progress;
  ph_call *next; /* The loop's queue of inline calls. */
};

struct chan {
  int fd, index;
  uv_mutex_t mu; /* Writes on fd, round trips, and the call's state. */
  uv_cond_t cv;  /* The call replied, returned or deferred work. */
  uv_thread_t thread;
};

static const ph_host_api runner_api;

static struct {
  const ph_plugin_desc *desc;
  struct ph_instance inst;
  void *state;
  int nchans;
  chan *chans;
  _Atomic uint32_t *cancel;
  uv_mutex_t ctl_mu; /* Writes on the control channel (and init's round
                        trips). */
  uv_loop_t *loop;
  uv_thread_t loop_thread;
  uv_async_t inline_async;
  uv_poll_t ctl_poll;
  uv_mutex_t inline_mu;
  ph_call *inline_head, *inline_tail;
  /* Set by FINI: a channel that closes now ends its thread, not the
   * process. */
  atomic_int finishing;
} R;

/* The process cannot go on (the host went away, the wire broke): what the
 * host makes of its exit is what it makes of a crash. */
static _Noreturn void runner_exit(int status) {
  fflush(stdout);
  fflush(stderr);
  _exit(status);
}

static void ctl_send(const ph__msg *m) {
  int err;

  uv_mutex_lock(&R.ctl_mu);
  err = ph__msg_send(PH__RUNNER_FD_CONTROL, m);
  uv_mutex_unlock(&R.ctl_mu);
  if (err)
    runner_exit(0); /* The host is gone. */
}

static void vlog_line(int level, const char *fmt, va_list ap) {
  ph__msg m = {.type = PH__MSG_LOG, .num = level};
  char line[2048];

  if (level < ph__log_level())
    return;
  vsnprintf(line, sizeof(line), fmt, ap);
  m.s[0] = line;
  ctl_send(&m);
}

static void runner_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void runner_log(int level, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vlog_line(level, fmt, ap);
  va_end(ap);
}

static void call_unref(ph_call *c) {
  if (atomic_fetch_sub(&c->refs, 1) != 1)
    return;
  ph__msg_clear(&c->msg);
  free(c);
}

/* (ch->mu) Nothing more for this call may go on the channel. */
static int over(const ph_call *c) {
  return c->replied || c->abandoned;
}

/* Sends m for c on its channel. (ch->mu) */
static void chan_send(ph_call *c, ph__msg *m) {
  m->seq = c->seq;
  if (ph__msg_send(c->ch->fd, m) != 0)
    runner_exit(0);
}

/* A round trip: sends m and returns the host's code, with its text
 * (malloc'd, for api->free) in *out when out is not NULL. */
static int round_trip(ph_call *c, ph__msg *m, char **out) {
  ph__msg res;
  int rc;

  if (out != NULL)
    *out = NULL;
  uv_mutex_lock(&c->ch->mu);
  if (over(c)) {
    uv_mutex_unlock(&c->ch->mu);
    return PH_ECANCELED;
  }
  chan_send(c, m);
  if (ph__msg_recv(c->ch->fd, &res) != 0 || res.type != PH__MSG_RESULT)
    runner_exit(0);
  uv_mutex_unlock(&c->ch->mu);
  rc = (int)res.num;
  if (out != NULL && res.s[0] != NULL)
    *out = strdup(res.s[0]);
  ph__msg_clear(&res);
  return rc;
}

/* The one reply, m filled in but for its sequence number. A late reply
 * to an abandoned call goes nowhere. */
static int finish(ph_call *c, ph__msg *m) {
  int abandoned;

  uv_mutex_lock(&c->ch->mu);
  if (c->replied) {
    uv_mutex_unlock(&c->ch->mu);
    runner_log(PH_LOG_ERROR, "a call was replied to twice; the second reply "
                             "is ignored");
    return PH_EALREADY;
  }
  c->replied = 1;
  abandoned = c->abandoned;
  if (!abandoned)
    chan_send(c, m);
  uv_cond_broadcast(&c->ch->cv);
  uv_mutex_unlock(&c->ch->mu);
  call_unref(c); /* The plugin's. */
  return abandoned ? PH_ECANCELED : PH_OK;
}

static int api_reply(ph_call *c, const char *result_json) {
  ph__msg m = {.type = PH__MSG_REPLY};

  if (c == NULL || result_json == NULL)
    return PH_EINVAL;
  m.s[0] = result_json;
  return finish(c, &m);
}

static int api_reply_error(ph_call *c, int code, const char *message,
                           const char *data_json) {
  ph__msg m = {.type = PH__MSG_REPLY_ERROR, .num = code};

  if (c == NULL)
    return PH_EINVAL;
  m.s[0] = message;
  m.s[1] = data_json;
  return finish(c, &m);
}

static void api_log(ph_instance *self, int level, const char *fmt, ...) {
  va_list ap;

  (void)self;
  va_start(ap, fmt);
  vlog_line(level, fmt, ap);
  va_end(ap);
}

/* A one-way event of a call still open. */
static int send_event(ph_call *c, ph__msg *m) {
  uv_mutex_lock(&c->ch->mu);
  if (over(c)) {
    uv_mutex_unlock(&c->ch->mu);
    return PH_ECANCELED;
  }
  chan_send(c, m);
  uv_mutex_unlock(&c->ch->mu);
  return PH_OK;
}

static int api_message(ph_call *c, int level, const char *logger,
                       const char *data_json) {
  ph__msg m = {.type = PH__MSG_MESSAGE, .num = level};

  if (c == NULL || level < PH_LOG_DEBUG || level > PH_LOG_EMERGENCY)
    return PH_EINVAL;
  m.s[0] = logger;
  m.s[1] = data_json;
  return send_event(c, &m);
}

static int api_progress(ph_call *c, double progress, double total,
                        const char *message) {
  ph__msg m = {.type = PH__MSG_PROGRESS, .x = progress, .y = total};

  if (c == NULL || !isfinite(progress))
    return PH_EINVAL;
  if (!(c->msg.flags & PH__CALLF_PROGRESS))
    return PH_ENOTSUP;
  m.s[0] = message;
  uv_mutex_lock(&c->ch->mu);
  if (over(c)) {
    uv_mutex_unlock(&c->ch->mu);
    return PH_ECANCELED;
  }
  if (c->has_progress && progress <= c->last_progress) {
    uv_mutex_unlock(&c->ch->mu);
    return PH_EINVAL;
  }
  c->has_progress = 1;
  c->last_progress = progress;
  chan_send(c, &m);
  uv_mutex_unlock(&c->ch->mu);
  return PH_OK;
}

static int api_cancelled(const ph_call *c) {
  int abandoned;

  if (c == NULL)
    return 0;
  if (atomic_load(&R.cancel[c->ch->index]) == c->seq)
    return 1;
  uv_mutex_lock(&c->ch->mu);
  abandoned = c->abandoned;
  uv_mutex_unlock(&c->ch->mu);
  return abandoned;
}

static const char *api_principal(const ph_call *c) {
  return c ? c->msg.s[4] : NULL;
}

static int api_service_call(ph_call *c, const char *service,
                            const char *request_json, char **response_json) {
  ph__msg m = {.type = PH__MSG_SERVICE};

  if (response_json != NULL)
    *response_json = NULL;
  if (c == NULL || service == NULL || request_json == NULL ||
      response_json == NULL)
    return PH_EINVAL;
  m.s[0] = service;
  m.s[1] = request_json;
  return round_trip(c, &m, response_json);
}

static int api_notify(ph_instance *self, int kind, const char *uri) {
  ph__msg m = {.type = PH__MSG_NOTIFY, .num = kind};

  if (self == NULL || kind < PH_NOTIFY_RESOURCE_UPDATED ||
      kind > PH_NOTIFY_PROMPTS_CHANGED ||
      (kind == PH_NOTIFY_RESOURCE_UPDATED && uri == NULL))
    return PH_EINVAL;
  m.s[0] = uri;
  ctl_send(&m);
  return PH_OK;
}

static void *api_alloc(size_t size) {
  return malloc(size);
}

static void api_free(void *ptr) {
  free(ptr);
}

static int api_client_request(ph_call *c, const char *key, const char *method,
                              const char *params_json, char **result_json) {
  ph__msg m = {.type = PH__MSG_ASK};

  if (result_json != NULL)
    *result_json = NULL;
  if (c == NULL || key == NULL || method == NULL || result_json == NULL)
    return PH_EINVAL;
  m.s[0] = key;
  m.s[1] = method;
  m.s[2] = params_json;
  return round_trip(c, &m, result_json);
}

static int api_set_state(ph_call *c, const char *state) {
  ph__msg m = {.type = PH__MSG_SET_STATE};

  if (c == NULL)
    return PH_EINVAL;
  m.s[0] = state;
  return round_trip(c, &m, NULL);
}

static const char *api_get_state(const ph_call *c) {
  return c ? c->msg.s[5] : NULL;
}

static int api_configure_tool(ph_instance *self, const char *tool,
                              const char *override_json) {
  ph__msg m = {.type = PH__MSG_CONFIGURE}, res;
  int rc;

  if (self == NULL || tool == NULL || override_json == NULL)
    return PH_EINVAL;
  if (!R.inst.initialising)
    return PH_ENOTSUP;
  m.s[0] = tool;
  m.s[1] = override_json;
  uv_mutex_lock(&R.ctl_mu);
  if (ph__msg_send(PH__RUNNER_FD_CONTROL, &m) != 0 ||
      ph__msg_recv(PH__RUNNER_FD_CONTROL, &res) != 0)
    runner_exit(0);
  uv_mutex_unlock(&R.ctl_mu);
  rc = (int)res.num;
  ph__msg_clear(&res);
  return rc;
}

static int api_set_ready(ph_instance *self, int ready, const char *why) {
  ph__msg m = {.type = PH__MSG_READY, .num = ready != 0};

  if (self == NULL)
    return PH_EINVAL;
  m.s[0] = ready ? NULL : why;
  ctl_send(&m);
  return PH_OK;
}

static int api_close_stream(ph_call *c) {
  ph__msg m = {.type = PH__MSG_CLOSE};

  if (c == NULL)
    return PH_EINVAL;
  return round_trip(c, &m, NULL);
}

static int on_loop_thread(void) {
  uv_thread_t self = uv_thread_self();

  return R.loop != NULL && uv_thread_equal(&self, &R.loop_thread);
}

static int api_watch_fd(ph_instance *self, int fd, int events, ph_watch_fn cb,
                        void *data) {
  if (self == NULL)
    return PH_EINVAL;
  if (!on_loop_thread())
    return PH_ENOTSUP;
  return ph__abi_error(ph__instance_watch(self, R.loop, fd, events, cb, data));
}

/* The call's channel thread runs fn once the handler has returned. */
static int api_run_in_pool(ph_call *c, void (*fn)(ph_call *, void *),
                           void *arg) {
  int rc = PH_OK;

  if (c == NULL || fn == NULL)
    return PH_EINVAL;
  if (c->msg.num == PH__WIRE_SERVICE)
    return PH_ENOTSUP;
  uv_mutex_lock(&c->ch->mu);
  if (over(c) || c->deferred) {
    rc = PH_EINVAL;
  } else {
    c->deferred = 1;
    c->defer_fn = fn;
    c->defer_arg = arg;
    uv_cond_broadcast(&c->ch->cv);
  }
  uv_mutex_unlock(&c->ch->mu);
  return rc;
}

static const ph_host_api runner_api = {
    .size = sizeof(ph_host_api),
    .reply = api_reply,
    .reply_error = api_reply_error,
    .log = api_log,
    .message = api_message,
    .progress = api_progress,
    .cancelled = api_cancelled,
    .principal = api_principal,
    .service_call = api_service_call,
    .notify = api_notify,
    .alloc = api_alloc,
    .free = api_free,
    .client_request = api_client_request,
    .set_state = api_set_state,
    .get_state = api_get_state,
    .configure_tool = api_configure_tool,
    .set_ready = api_set_ready,
    .close_stream = api_close_stream,
    .watch_fd = api_watch_fd,
    .run_in_pool = api_run_in_pool,
};

/* The descriptor's item `index` of a table, if it is there and named
 * `name`; NULL otherwise. */
static const void *item_at(const void *table, size_t size, size_t host,
                           uint32_t index, const char *name, void *scratch) {
  const char *key;
  uint32_t i;

  if (table == NULL || name == NULL)
    return NULL;
  for (i = 0; i <= index; i++) {
    memcpy(&key, (const char *)table + (size_t)i * size, sizeof(key));
    if (key == NULL)
      return NULL;
  }
  if (strcmp(key, name) != 0)
    return NULL;
  return ph__table_item(table, size, host, index, scratch);
}

/* Runs the handler the call names. Returns 0, or -1 when the descriptor
 * has no such item (the host and runner loaded different code). */
static int invoke(ph_call *c) {
  const ph_plugin_desc *d = R.desc;
  const ph__msg *m = &c->msg;
  const char *a = m->s[1], *b = m->s[2], *cc = m->s[3];
  uint32_t idx = (uint32_t)m->num2;
  union {
    ph_tool tool;
    ph_resource res;
    ph_resource_template tmpl;
    ph_prompt prompt;
  } scratch;
  const ph_tool *t;
  const ph_resource *rs;
  const ph_resource_template *rt;
  const ph_prompt *pr;

  switch (m->num) {
  case PH__WIRE_TOOL:
    t = item_at(d->tools, d->tool_size, sizeof(ph_tool), idx, m->s[0],
                &scratch);
    if (t == NULL)
      return -1;
    t->handler(c, a, R.state);
    return 0;
  case PH__WIRE_RESOURCE:
    rs = item_at(d->resources, d->resource_size, sizeof(ph_resource), idx,
                 m->s[0], &scratch);
    if (rs == NULL)
      return -1;
    rs->handler(c, a, "{}", R.state);
    return 0;
  case PH__WIRE_TEMPLATE:
  case PH__WIRE_COMPLETE_TMPL:
    rt = item_at(d->templates, d->template_size, sizeof(ph_resource_template),
                 idx, m->s[0], &scratch);
    if (rt == NULL ||
        (m->num == PH__WIRE_COMPLETE_TMPL && rt->complete == NULL))
      return -1;
    if (m->num == PH__WIRE_TEMPLATE)
      rt->handler(c, a, b ? b : "{}", R.state);
    else
      rt->complete(c, a, b, cc ? cc : "{}", R.state);
    return 0;
  case PH__WIRE_PROMPT:
  case PH__WIRE_COMPLETE_PROMPT:
    pr = item_at(d->prompts, d->prompt_size, sizeof(ph_prompt), idx, m->s[0],
                 &scratch);
    if (pr == NULL ||
        (m->num == PH__WIRE_COMPLETE_PROMPT && pr->complete == NULL))
      return -1;
    if (m->num == PH__WIRE_PROMPT)
      pr->handler(c, a, R.state);
    else
      pr->complete(c, a, b, cc ? cc : "{}", R.state);
    return 0;
  case PH__WIRE_SERVICE:
    if (d->service == NULL)
      return -1;
    d->service(c, a, b, R.state);
    return 0;
  }
  return -1;
}

/* Runs the handler and marks it returned; refused calls are answered. */
static void run_handler(ph_call *c) {
  atomic_fetch_add(&c->refs, 1); /* The handler's, across its reply. */
  if (invoke(c) != 0)
    api_reply_error(c, PH_RPC_INTERNAL_ERROR,
                    "the runner's plugin has no such item", c->msg.s[0]);
  uv_mutex_lock(&c->ch->mu);
  c->returned = 1;
  uv_cond_broadcast(&c->ch->cv);
  uv_mutex_unlock(&c->ch->mu);
  call_unref(c);
}

/* The loop's side: inline calls queued by channel threads. */
static void on_inline(uv_async_t *h) {
  ph_call *c, *next;

  (void)h;
  uv_mutex_lock(&R.inline_mu);
  c = R.inline_head;
  R.inline_head = R.inline_tail = NULL;
  uv_mutex_unlock(&R.inline_mu);
  for (; c != NULL; c = next) {
    next = c->next;
    run_handler(c);
  }
}

static void queue_inline(ph_call *c) {
  uv_mutex_lock(&R.inline_mu);
  if (R.inline_tail != NULL)
    R.inline_tail->next = c;
  else
    R.inline_head = c;
  R.inline_tail = c;
  uv_mutex_unlock(&R.inline_mu);
  uv_async_send(&R.inline_async);
}

/* How long a channel thread waits between looks at its call's cancel
 * flag while the handler has returned without replying. */
#define ABANDON_CHECK_NS (50 * 1000000ull)

/* Waits until the call is over for this channel, running deferred work. */
static void wait_call(ph_call *c) {
  chan *ch = c->ch;
  int service = c->msg.num == PH__WIRE_SERVICE;
  ph__msg done = {.type = PH__MSG_DONE};
  void (*fn)(ph_call *, void *);
  void *arg;

  uv_mutex_lock(&ch->mu);
  for (;;) {
    if (c->replied)
      break;
    if (c->defer_fn != NULL) {
      fn = c->defer_fn;
      arg = c->defer_arg;
      c->defer_fn = NULL;
      uv_mutex_unlock(&ch->mu);
      fn(c, arg);
      uv_mutex_lock(&ch->mu);
      c->deferred = 0;
      continue;
    }
    if (c->returned && !c->deferred &&
        (service || atomic_load(&R.cancel[ch->index]) == c->seq)) {
      /* A service must reply before it returns, and a cancelled call
       * that returned without replying may be replied to later, by a
       * thread of the plugin's, but not on this channel. */
      c->abandoned = 1;
      chan_send(c, &done);
      if (service && !c->replied) {
        /* As the host does with a service that did not reply: the
         * plugin's reference goes now. */
        c->replied = 1;
        uv_mutex_unlock(&ch->mu);
        call_unref(c);
        return;
      }
      break;
    }
    uv_cond_timedwait(&ch->cv, &ch->mu, ABANDON_CHECK_NS);
  }
  uv_mutex_unlock(&ch->mu);
}

static void chan_main(void *arg) {
  chan *ch = arg;
  ph_call *c;
  int err;

  for (;;) {
    c = ph__xcalloc(1, sizeof(*c));
    err = ph__msg_recv(ch->fd, &c->msg);
    if ((err || c->msg.type != PH__MSG_CALL) && atomic_load(&R.finishing)) {
      ph__msg_clear(&c->msg); /* FINI shut the channel: fini may run. */
      free(c);
      return;
    }
    if (err || c->msg.type != PH__MSG_CALL)
      runner_exit(0); /* The host closed the channel or broke it. */
    c->api = &runner_api;
    c->ch = ch;
    c->seq = c->msg.seq;
    atomic_init(&c->refs, 2); /* This thread's and the plugin's. */
    if (c->msg.flags & PH__CALLF_INLINE)
      queue_inline(c);
    else
      run_handler(c);
    wait_call(c);
    call_unref(c);
  }
}

/* The control channel on the loop: FINI after the drain, or EOF. */
static void on_control(uv_poll_t *h, int status, int events) {
  ph__msg m;
  int i;

  (void)h;
  (void)events;
  if (status < 0 || ph__msg_recv(PH__RUNNER_FD_CONTROL, &m) != 0)
    runner_exit(0);
  if (m.type != PH__MSG_FINI) {
    runner_log(PH_LOG_ERROR, "runner: unexpected control message %u", m.type);
    runner_exit(4);
  }
  ph__msg_clear(&m);
  /* The host has drained the instance, so each channel thread waits for a
   * call that will not come: shut their sockets and join them, so that
   * whatever they did happens before fini (through the host it did, but
   * nothing in this process said so). */
  atomic_store(&R.finishing, 1);
  for (i = 0; i < R.nchans; i++)
    shutdown(R.chans[i].fd, SHUT_RDWR);
  for (i = 0; i < R.nchans; i++)
    uv_thread_join(&R.chans[i].thread);
  /* Like the host at shutdown: watches still open are closed first. */
  ph__instances_close_watches();
  if (R.desc->fini != NULL)
    R.desc->fini(R.state);
  runner_exit(0);
}

/* dlopens the cache copy and finds its descriptor; the host has checked
 * its layout already. */
static const ph_plugin_desc *load(const char *path) {
  ph_plugin_entry_fn entry;
  const ph_plugin_desc *d;
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);

  if (dl == NULL) {
    runner_log(PH_LOG_ERROR, "runner: dlopen %s: %s", path, dlerror());
    return NULL;
  }
  *(void **)&entry = dlsym(dl, PH_ENTRY_SYMBOL);
  d = entry ? entry() : NULL;
  if (d == NULL || d->magic != PH_MAGIC || d->abi_major != PH_ABI_MAJOR) {
    runner_log(PH_LOG_ERROR, "runner: %s has no plughost descriptor", path);
    return NULL;
  }
  return d;
}

static int start_channels(void) {
  uv_thread_options_t opts = {UV_THREAD_HAS_STACK_SIZE, 1 << 20};
  int i;

  R.chans = ph__xcalloc((size_t)R.nchans, sizeof(chan));
  for (i = 0; i < R.nchans; i++) {
    chan *ch = &R.chans[i];

    ch->fd = PH__RUNNER_FD_CHANNEL + i;
    ch->index = i;
    uv_mutex_init(&ch->mu);
    uv_cond_init(&ch->cv);
    if (uv_thread_create_ex(&ch->thread, &opts, chan_main, ch) != 0)
      return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  ph__msg config;
  void *page;
  int rc;

  if (argc != 5) {
    fprintf(stderr, "plughost-runner: started by plughost for an instance "
                    "with \"isolation\": \"process\"; not for use by hand\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  /* Each malloc arena reserves 64 MiB of address space, which counts
   * against an address-space limit long before the memory is used. */
  mallopt(M_ARENA_MAX, 2);
  ph__log_set_level(atoi(argv[4]));
  R.nchans = atoi(argv[3]);
  if (R.nchans < 1)
    return 2;
  uv_mutex_init(&R.ctl_mu);
  uv_mutex_init(&R.inline_mu);
  page = mmap(NULL, (size_t)R.nchans * sizeof(uint32_t), PROT_READ | PROT_WRITE,
              MAP_SHARED, PH__RUNNER_FD_CANCEL, 0);
  if (page == MAP_FAILED)
    return 3;
  R.cancel = page;
  close(PH__RUNNER_FD_CANCEL);
  if (ph__msg_recv(PH__RUNNER_FD_CONTROL, &config) != 0 ||
      config.type != PH__MSG_CONFIG)
    return 0;
  R.desc = load(argv[1]);
  if (R.desc == NULL)
    return 3;
  R.inst.api = &runner_api;
  atomic_init(&R.inst.refs, 1);
  R.inst.label = argv[2];
  R.inst.initialising = 1;
  rc = R.desc->init ? R.desc->init(&R.inst, &runner_api,
                                   config.s[0] ? config.s[0] : "{}", &R.state)
                    : 0;
  R.inst.initialising = 0;
  ph__msg_clear(&config);
  ctl_send(&(ph__msg){.type = PH__MSG_INIT_DONE, .num = rc});
  if (rc != 0)
    runner_exit(3);

  R.loop = uv_default_loop();
  R.loop_thread = uv_thread_self();
  uv_async_init(R.loop, &R.inline_async, on_inline);
  uv_poll_init(R.loop, &R.ctl_poll, PH__RUNNER_FD_CONTROL);
  /* uv_poll_init made it non-blocking, but the control channel's writers
   * (any thread) and its one read want whole messages. */
  fcntl(PH__RUNNER_FD_CONTROL, F_SETFL,
        fcntl(PH__RUNNER_FD_CONTROL, F_GETFL) & ~O_NONBLOCK);
  uv_poll_start(&R.ctl_poll, UV_READABLE, on_control);
  if (start_channels() != 0) {
    runner_log(PH_LOG_ERROR, "runner: cannot start %d channel threads",
               R.nchans);
    runner_exit(3);
  }
  uv_run(R.loop, UV_RUN_DEFAULT);
  runner_exit(0);
}
