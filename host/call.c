/* call.c: see call.h. */
#include "call.h"

#include "alloc.h"
#include "channel.h"
#include "error.h"
#include "log.h"
#include "pool.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct ph_call {
  /* The host's API table, its instance's (ph_call_api() in plughost.h
   * reads it): must stay the first member. */
  const ph_host_api *api;
  atomic_int refs;
  int kind;
  ph_instance *inst;    /* Referenced. */
  ph__session *session; /* Referenced; NULL for service calls. */
  ph_call *parent;      /* Service calls: the call that made them. */
  int depth;            /* Service nesting. */
  ph__outlet *outlet;   /* Loop thread only; NULL once answered. */
  char *principal;
  unsigned client_caps; /* PH__CLIENT_* */
  int log_level;        /* Messages below are dropped; -1 drops all. */
  int progress;         /* The client asked for progress. */
  int ask_mode;
  int closable; /* Its outlet can close its stream (set at start). */

  /* What the handler gets. */
  const void *def;
  char *name; /* Exposed name or URI, for log lines and results. */
  char *args_json;
  char *uri;
  char *vars_json;
  char *arg_name, *arg_value, *context_json;
  char *service, *request_json;

  /* PH__ASK_ROUND: answers from the retry and what this round asks, the
   * plugin's state in and out, a capability it needed and lacked. Guarded
   * by mu once started. */
  cJSON *input_responses;
  cJSON *input_requests;
  char *state_in, *state_out;
  unsigned missing_capability;

  /* Progress so far (guarded by mu) and PH__ASK_WAIT's wait. */
  uv_mutex_t mu;
  uv_cond_t cv;
  double last_progress;
  int has_progress;
  char *client_result; /* The client's result, or NULL. */
  int client_waiting;

  atomic_int replied;
  atomic_int cancelled;
  int answered;  /* Loop only: the host has responded or given up. */
  int started;   /* Loop only: counted among the unanswered calls. */
  int timed_out; /* Loop only. */
  char *result_json;
  int error_code; /* Non-zero: reply_error was used. */
  char *error_message, *error_data;

  uint32_t timeout_ms;
  uv_timer_t timer;
  int timer_active;

  /* The pool job that runs the handler, or the deferred fn. */
  ph__job job;
  /* run_in_pool handed the call over and its fn has not returned: the call
   * cannot be handed over again until then, so that fn's reply is seen
   * first. */
  atomic_int deferred;
  void (*defer_fn)(ph_call *call, void *arg);
  void *defer_arg;

  size_t proto_size;
  max_align_t proto[]; /* The protocol's part, proto_size bytes. */
};

_Static_assert(offsetof(struct ph_call, api) == 0,
               "ph_call_api() reads the table from the first member");

/* What the completion queue carries to the loop. */
enum event_kind { EV_ANSWER, EV_EVENT, EV_NOTIFY, EV_FREE, EV_CLOSE_STREAM };

typedef struct event {
  struct event *next;
  int kind;
  ph_call *call; /* Referenced by the event. */
  ph_instance *inst;
  int notify_kind;
  char *text;
  ph__call_event e; /* EV_EVENT: its strings are owned by the event. */
} event;

static struct {
  uv_loop_t *loop;
  uv_async_t async;
  uv_thread_t loop_thread;
  /* Set at start and cleared at close on the loop; workers still replying
   * at shutdown read it through ph__on_loop_thread(). */
  atomic_int running;
  int closed; /* Guarded by mu: the async handle is closed. */
  uv_mutex_t mu;
  event *head, *tail;
  atomic_long live_calls;
  long unanswered; /* Loop only: started calls not yet answered. */
  ph__call_hooks hooks;
  void (*release_session)(ph__session *);
} D;

int ph__on_loop_thread(void) {
  uv_thread_t self = uv_thread_self();

  return atomic_load_explicit(&D.running, memory_order_relaxed) &&
         uv_thread_equal(&self, &D.loop_thread);
}

uv_loop_t *ph__calls_loop(void) {
  return D.loop;
}

long ph__calls_live(void) {
  return atomic_load(&D.live_calls);
}

long ph__calls_unanswered(void) {
  return D.unanswered;
}

void ph__calls_set_hooks(const ph__call_hooks *hooks) {
  D.hooks = *hooks;
}

void ph__calls_set_session_release(void (*release)(ph__session *s)) {
  D.release_session = release;
}

static void free_event_strings(ph__call_event *e) {
  free((char *)e->message);
  free((char *)e->logger);
  free((char *)e->data_json);
  free((char *)e->method);
  free((char *)e->params_json);
}

static void free_event(event *ev) {
  if (ev->call != NULL)
    ph__call_unref(ev->call);
  free(ev->text);
  free_event_strings(&ev->e);
  free(ev);
}

static void post(event *ev) {
  uv_mutex_lock(&D.mu);
  if (D.closed) {
    /* The loop is gone (a call outlived shutdown): nobody will read it. */
    uv_mutex_unlock(&D.mu);
    free_event(ev);
    return;
  }
  if (D.tail != NULL)
    D.tail->next = ev;
  else
    D.head = ev;
  D.tail = ev;
  uv_async_send(&D.async);
  uv_mutex_unlock(&D.mu);
}

static void answer(ph_call *call);

/* Loop thread: a call that is still unanswered closes its stream. */
static void close_stream_now(ph_call *call) {
  if (!call->answered && call->outlet != NULL &&
      call->outlet->close_stream != NULL)
    call->outlet->close_stream(call->outlet);
}

/* Loop thread: an event goes up while its call is unanswered; a request
 * that cannot go up is answered with nothing, so its worker stops
 * waiting. */
static void emit(ph_call *call, const ph__call_event *e) {
  if (!call->answered && call->outlet != NULL && D.hooks.event != NULL)
    D.hooks.event(call, e);
  else if (e->kind == PH__EVENT_CLIENT_REQUEST)
    ph__call_client_answer(call, NULL);
}

static void on_async(uv_async_t *handle) {
  event *ev, *next;

  (void)handle;
  uv_mutex_lock(&D.mu);
  ev = D.head;
  D.head = D.tail = NULL;
  uv_mutex_unlock(&D.mu);
  for (; ev != NULL; ev = next) {
    next = ev->next;
    switch (ev->kind) {
    case EV_ANSWER:
      answer(ev->call);
      break;
    case EV_EVENT:
      emit(ev->call, &ev->e);
      break;
    case EV_NOTIFY:
      if (D.hooks.notify != NULL)
        D.hooks.notify(ev->inst, ev->notify_kind, ev->text);
      ph__instance_unref(ev->inst);
      break;
    case EV_FREE:
      ph__instance_destroy(ev->inst);
      break;
    case EV_CLOSE_STREAM:
      close_stream_now(ev->call);
      break;
    }
    free_event(ev);
  }
}

/* The instance finaliser (instance.h). */
static int finalise_on_loop(ph_instance *inst) {
  event *ev;
  int closed;

  /* After shutdown the process is exiting with calls abandoned: their code
   * may still run on other workers, so nothing is unloaded any more. */
  uv_mutex_lock(&D.mu);
  closed = D.closed;
  uv_mutex_unlock(&D.mu);
  if (closed)
    return 1;
  /* Joining worker threads from one of them would deadlock, and fini
   * should not race the loop: hand it over when off the loop. */
  if (!atomic_load(&D.running) || ph__on_loop_thread())
    return 0;
  ev = ph__xcalloc(1, sizeof(*ev));
  ev->kind = EV_FREE;
  ev->inst = inst;
  post(ev);
  return 1;
}

int ph__calls_init(uv_loop_t *loop) {
  int err;

  D.loop = loop;
  D.loop_thread = uv_thread_self();
  uv_mutex_init(&D.mu);
  ph__instances_set_finaliser(finalise_on_loop);
  err = uv_async_init(loop, &D.async, on_async);
  if (err)
    return err;
  atomic_store(&D.running, 1);
  return 0;
}

void ph__calls_close(void) {
  if (!atomic_load(&D.running))
    return;
  ph__instances_close_watches();
  on_async(&D.async);
  uv_mutex_lock(&D.mu);
  D.closed = 1;
  uv_mutex_unlock(&D.mu);
  atomic_store(&D.running, 0);
  uv_close((uv_handle_t *)&D.async, NULL);
}

ph_call *ph__call_new(int kind, ph_instance *inst, size_t proto_size) {
  ph_call *call = ph__xcalloc(1, sizeof(*call) + proto_size);

  atomic_init(&call->refs, 1);
  call->proto_size = proto_size;
  call->kind = kind;
  call->inst = inst;
  call->log_level = PH_LOG_DEBUG;
  if (inst != NULL) {
    call->api = inst->api;
    ph__instance_ref(inst);
  }
  uv_mutex_init(&call->mu);
  uv_cond_init(&call->cv);
  atomic_fetch_add(&D.live_calls, 1);
  return call;
}

void ph__call_ref(ph_call *call) {
  atomic_fetch_add(&call->refs, 1);
}

void ph__call_unref(ph_call *call) {
  if (call == NULL || atomic_fetch_sub(&call->refs, 1) != 1)
    return;
  if (call->proto_size > 0 && D.hooks.release != NULL)
    D.hooks.release(call);
  if (call->session != NULL)
    D.release_session(call->session);
  ph__instance_unref(call->inst);
  cJSON_Delete(call->input_responses);
  cJSON_Delete(call->input_requests);
  uv_mutex_destroy(&call->mu);
  uv_cond_destroy(&call->cv);
  free(call->principal);
  free(call->name);
  free(call->args_json);
  free(call->uri);
  free(call->vars_json);
  free(call->arg_name);
  free(call->arg_value);
  free(call->context_json);
  free(call->service);
  free(call->request_json);
  free(call->state_in);
  free(call->state_out);
  free(call->client_result);
  free(call->result_json);
  free(call->error_message);
  free(call->error_data);
  free(call);
  atomic_fetch_sub(&D.live_calls, 1);
}

static void on_timer_close(uv_handle_t *h) {
  ph_call *call = h->data;

  ph__call_unref(call);
}

static void stop_timer(ph_call *call) {
  if (!call->timer_active)
    return;
  call->timer_active = 0;
  uv_timer_stop(&call->timer);
  uv_close((uv_handle_t *)&call->timer, on_timer_close);
}

static void wake_waiter(ph_call *call) {
  uv_mutex_lock(&call->mu);
  uv_cond_broadcast(&call->cv);
  uv_mutex_unlock(&call->mu);
}

/* What the answer hook is told. An input-required round wins over an
 * error: a tool may fall back from a capability the client lacks to one it
 * has, so the capability is missing only when nothing else was asked. */
static void describe(const ph_call *call, ph__call_answer *a) {
  memset(a, 0, sizeof(*a));
  if (call->timed_out) {
    a->kind = PH__ANSWER_TIMEOUT;
  } else if (atomic_load(&call->cancelled)) {
    a->kind = PH__ANSWER_CANCELLED;
  } else if (call->input_requests != NULL) {
    a->kind = PH__ANSWER_INPUT;
    a->requests = call->input_requests;
    a->state = call->state_out;
  } else if (call->missing_capability != 0) {
    a->kind = PH__ANSWER_MISSING;
    a->capability = call->missing_capability;
  } else if (call->error_code != 0) {
    a->kind = PH__ANSWER_ERROR;
    a->code = call->error_code;
    a->message = call->error_message;
    a->data_json = call->error_data;
  } else {
    a->kind = PH__ANSWER_RESULT;
    a->result_json = call->result_json;
  }
}

/* Loop thread: finishes the host's side of the call exactly once. */
static void answer(ph_call *call) {
  ph__call_answer a;

  if (call->answered)
    return;
  call->answered = 1;
  if (call->started) {
    call->started = 0;
    D.unanswered--;
  }
  stop_timer(call);
  if (D.hooks.answer != NULL) {
    describe(call, &a);
    D.hooks.answer(call, &a);
  }
  call->outlet = NULL;
  ph__call_unref(call); /* The host's reference. */
}

static void on_timeout(uv_timer_t *t) {
  ph_call *call = t->data;

  if (call->answered)
    return;
  atomic_store(&call->cancelled, 1);
  call->timed_out = 1;
  ph__warn("%s on %s timed out after %u ms", call->name ? call->name : "call",
           call->inst ? call->inst->label : "?", call->timeout_ms);
  wake_waiter(call);
  answer(call);
}

void ph__call_cancel(ph_call *call) {
  if (call->answered)
    return;
  atomic_store(&call->cancelled, 1);
  ph__debug("%s cancelled by the client", call->name ? call->name : "call");
  wake_waiter(call);
  /* The answer hook sees PH__ANSWER_CANCELLED: no response is due. */
  answer(call);
}

static ph_call *root_of(ph_call *call) {
  while (call->parent != NULL)
    call = call->parent;
  return call;
}

/* The item a complete handler belongs to: def points at the complete
 * field of one of the plugin's templates or prompts. */
static void complete_item(const ph__plugin *p, const void *def,
                          ph__runner_req *req) {
  size_t i;

  for (i = 0; i < p->ntemplates; i++) {
    if (def == (const void *)&p->templates[i].complete) {
      req->kind = PH__WIRE_COMPLETE_TMPL;
      req->index = (uint32_t)i;
      req->item = p->templates[i].uri_template;
      return;
    }
  }
  for (i = 0; i < p->nprompts; i++) {
    if (def == (const void *)&p->prompts[i].complete) {
      req->kind = PH__WIRE_COMPLETE_PROMPT;
      req->index = (uint32_t)i;
      req->item = p->prompts[i].name;
      return;
    }
  }
}

/* An isolated instance's call: the same handler, in its runner. */
static void invoke_isolated(ph_call *call) {
  const ph__plugin *p = call->inst->plugin;
  const ph_call *root = root_of(call);
  ph__runner_req req = {
      .name = ph__call_name(call),
      .principal = root->principal,
      .state = root->state_in,
      .progress = root->progress,
      .timeout_ms = call->timeout_ms,
  };
  const ph__tool_def *tool;
  const ph__template_def *tmpl;
  const ph__resource_def *res;
  const ph__prompt_def *prompt;

  switch (call->kind) {
  case PH__CALL_TOOL:
    tool = call->def;
    req.kind = PH__WIRE_TOOL;
    req.index = (uint32_t)(tool - p->tools);
    req.item = tool->name;
    req.run_inline = tool->run_inline;
    req.a = call->args_json;
    break;
  case PH__CALL_READ:
    req.a = call->uri;
    if (call->vars_json != NULL) {
      tmpl = call->def;
      req.kind = PH__WIRE_TEMPLATE;
      req.index = (uint32_t)(tmpl - p->templates);
      req.item = tmpl->uri_template;
      req.b = call->vars_json;
    } else {
      res = call->def;
      req.kind = PH__WIRE_RESOURCE;
      req.index = (uint32_t)(res - p->resources);
      req.item = res->uri;
    }
    break;
  case PH__CALL_PROMPT:
    prompt = call->def;
    req.kind = PH__WIRE_PROMPT;
    req.index = (uint32_t)(prompt - p->prompts);
    req.item = prompt->name;
    req.a = call->args_json;
    break;
  case PH__CALL_COMPLETE:
    complete_item(p, call->def, &req);
    req.a = call->arg_name;
    req.b = call->arg_value;
    req.c = call->context_json;
    break;
  case PH__CALL_SERVICE:
    req.kind = PH__WIRE_SERVICE;
    req.item = call->service;
    req.a = call->service;
    req.b = call->request_json;
    break;
  }
  ph__runner_call(call->inst->runner, call, &req);
}

static void invoke(ph_call *call) {
  ph_instance *inst = call->inst;
  void *state = inst->state;

  if (inst->runner != NULL) {
    invoke_isolated(call);
    return;
  }

  switch (call->kind) {
  case PH__CALL_TOOL:
    ((const ph__tool_def *)call->def)->handler(call, call->args_json, state);
    break;
  case PH__CALL_READ:
    if (call->vars_json != NULL)
      ((const ph__template_def *)call->def)
          ->handler(call, call->uri, call->vars_json, state);
    else
      ((const ph__resource_def *)call->def)
          ->handler(call, call->uri, "{}", state);
    break;
  case PH__CALL_PROMPT:
    ((const ph__prompt_def *)call->def)->handler(call, call->args_json, state);
    break;
  case PH__CALL_COMPLETE: {
    ph_complete_fn fn = *(const ph_complete_fn *)call->def;
    fn(call, call->arg_name, call->arg_value, call->context_json, state);
    break;
  }
  case PH__CALL_SERVICE:
    inst->plugin->service(call, call->service, call->request_json, state);
    break;
  }
}

void ph__call_plugin_done(ph_call *call) {
  int expected = 0;

  if (atomic_compare_exchange_strong(&call->replied, &expected, 1))
    ph__call_unref(call);
}

/* The pool job of a started call: runs its handler on a worker. */
static void run_handler(ph__job *job) {
  ph_call *call = PH__CONTAINER_OF(job, ph_call, job);

  if (atomic_load(&call->cancelled)) {
    ph__call_plugin_done(call);
    return;
  }
  /* The handler may touch the call after its reply (a second reply, a
   * late cancelled()), so the call lives until it returns. */
  ph__call_ref(call);
  invoke(call);
  ph__call_unref(call);
}

void ph__call_invoke(ph_call *call) {
  invoke(call);
}

int ph__call_start(ph_call *call) {
  /* An isolated instance's inline tools run inline in its runner; here
   * they wait for it on the pool, since the loop never waits on a runner. */
  int run_inline = call->kind == PH__CALL_TOOL && call->inst->runner == NULL &&
                   ((const ph__tool_def *)call->def)->run_inline;
  int err;

  ph__call_ref(call); /* The plugin's reference, dropped by its reply. */
  call->started = 1;
  call->closable = call->outlet != NULL && call->outlet->close_stream != NULL;
  D.unanswered++;
  if (call->timeout_ms > 0) {
    /* The loop's clock is cached from the start of this iteration. */
    uv_update_time(D.loop);
    uv_timer_init(D.loop, &call->timer);
    call->timer.data = call;
    ph__call_ref(call); /* The timer's, dropped in its close callback. */
    call->timer_active = 1;
    uv_timer_start(&call->timer, on_timeout, call->timeout_ms, 0);
  }
  if (run_inline) {
    ph__call_ref(call);
    invoke(call);
    ph__call_unref(call);
    return 0;
  }
  err = ph__pool_submit(call->inst->pool, &call->job, run_handler);
  if (err) {
    call->started = 0;
    call->answered = 1; /* By the caller, who answers the client. */
    D.unanswered--;
    atomic_store(&call->replied, 1);
    ph__call_unref(call);
    stop_timer(call);
  }
  return err;
}

void ph__call_client_answer(ph_call *call, const char *result_json) {
  char *copy = ph__xstrdup_or_null(result_json);

  uv_mutex_lock(&call->mu);
  free(call->client_result);
  call->client_result = copy;
  call->client_waiting = 0;
  uv_cond_broadcast(&call->cv);
  uv_mutex_unlock(&call->mu);
}

/* The one reply: takes result. */
static int finish(ph_call *call, char *result, int code, const char *message,
                  const char *data) {
  int expected = 0;
  event *ev;

  if (!atomic_compare_exchange_strong(&call->replied, &expected, 1)) {
    ph__error("%s on %s: plugin replied twice; the second reply is ignored",
              call->name ? call->name : "call",
              call->inst ? call->inst->label : "?");
    free(result);
    return PH__EALREADY;
  }
  call->result_json = result;
  call->error_code = code;
  call->error_message = ph__xstrdup_or_null(message);
  call->error_data = ph__xstrdup_or_null(data);
  if (call->kind == PH__CALL_SERVICE) {
    /* The caller reads the result after the handler returns. */
    ph__call_unref(call);
    return 0;
  }
  if (ph__on_loop_thread()) {
    int was_cancelled = atomic_load(&call->cancelled);

    answer(call);
    ph__call_unref(call); /* The plugin's reference; call may be gone. */
    return was_cancelled ? PH__ECANCELED : 0;
  }
  /* The event inherits the plugin's reference. */
  ev = ph__xcalloc(1, sizeof(*ev));
  ev->kind = EV_ANSWER;
  ev->call = call;
  post(ev);
  return 0;
}

int ph__call_reply(ph_call *call, const char *result_json) {
  char *text, *message = NULL;
  cJSON *check;
  int code = 0, rc;

  if (atomic_load(&call->replied))
    return finish(call, NULL, 0, NULL, NULL); /* Logs the second reply. */
  if (call->kind != PH__CALL_SERVICE && D.hooks.shape != NULL) {
    text = D.hooks.shape(call, result_json, &code, &message);
    if (text == NULL) {
      rc = finish(call, NULL, code, message, NULL);
      free(message);
      return rc;
    }
    return finish(call, text, 0, NULL, NULL);
  }
  check = cJSON_Parse(result_json);
  if (check == NULL) {
    ph__error("%s on %s: reply is not JSON; answered as an error",
              call->name ? call->name : "call",
              call->inst ? call->inst->label : "?");
    return finish(call, NULL, PH_RPC_INTERNAL_ERROR,
                  "plugin returned malformed JSON", NULL);
  }
  cJSON_Delete(check);
  return finish(call, ph__xstrdup(result_json), 0, NULL, NULL);
}

int ph__call_reply_error(ph_call *call, int code, const char *message,
                         const char *data_json) {
  return finish(call, NULL, code, message, data_json);
}

/* Sends e (its strings taken) up before the call's answer, in order: at
 * once on the loop thread, else through the completion queue. */
static void post_event(ph_call *call, ph__call_event *e) {
  event *ev;

  if (ph__on_loop_thread()) {
    emit(call, e);
    free_event_strings(e);
    return;
  }
  ev = ph__xcalloc(1, sizeof(*ev));
  ev->kind = EV_EVENT;
  ev->call = call;
  ev->e = *e;
  ph__call_ref(call);
  post(ev);
}

int ph__call_cancelled(const ph_call *call) {
  for (; call != NULL; call = call->parent)
    if (atomic_load(&((ph_call *)call)->cancelled))
      return 1;
  return 0;
}

const char *ph__call_principal(const ph_call *call) {
  return root_of((ph_call *)call)->principal;
}

static int over(ph_call *call) {
  return atomic_load(&call->replied) || atomic_load(&call->cancelled);
}

int ph__call_message(ph_call *call, int level, const char *logger,
                     const char *data_json) {
  ph__call_event e = {.kind = PH__EVENT_MESSAGE, .level = level};

  call = root_of(call);
  if (call->log_level < 0 || level < call->log_level)
    return 0;
  if (over(call))
    return PH__ECANCELED;
  e.logger = ph__xstrdup_or_null(logger);
  e.data_json = ph__xstrdup_or_null(data_json);
  post_event(call, &e);
  return 0;
}

int ph__call_progress(ph_call *call, double progress, double total,
                      const char *message) {
  ph__call_event e = {
      .kind = PH__EVENT_PROGRESS, .progress = progress, .total = total};

  call = root_of(call);
  if (!call->progress)
    return PH__ENOTSUP;
  if (over(call))
    return PH__ECANCELED;
  uv_mutex_lock(&call->mu);
  if (call->has_progress && progress <= call->last_progress) {
    uv_mutex_unlock(&call->mu);
    return PH__EINVAL; /* Progress must increase. */
  }
  call->has_progress = 1;
  call->last_progress = progress;
  uv_mutex_unlock(&call->mu);
  e.message = ph__xstrdup_or_null(message);
  post_event(call, &e);
  return 0;
}

/* PH__ASK_ROUND: the retry's answer, or the request kept for this round's
 * input-required answer. Takes params. */
static int ask_round(ph_call *call, const char *key, const char *method,
                     cJSON *params, char **result_json) {
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(call->input_responses, key);
  cJSON *req;

  if (r != NULL) {
    cJSON_Delete(params);
    *result_json = ph__xjson_print(r);
    return 0;
  }
  uv_mutex_lock(&call->mu);
  if (call->input_requests == NULL)
    call->input_requests = ph__xcheck(cJSON_CreateObject());
  if (cJSON_GetObjectItemCaseSensitive(call->input_requests, key) == NULL) {
    req = ph__xcheck(cJSON_CreateObject());
    ph__xjson_put_string(req, "method", method);
    ph__xjson_put(req, "params", params);
    params = NULL;
    ph__xjson_put(call->input_requests, key, req);
  }
  uv_mutex_unlock(&call->mu);
  cJSON_Delete(params);
  return PH__EINPUT;
}

/* PH__ASK_WAIT: the request goes up through the loop and this worker waits
 * for ph__call_client_answer() or the cancel flag. Takes params. */
static int ask_wait(ph_call *call, const char *method, cJSON *params,
                    char **result_json) {
  ph__call_event e = {.kind = PH__EVENT_CLIENT_REQUEST};
  char *result;

  e.method = ph__xstrdup(method);
  e.params_json = ph__xjson_print(params);
  cJSON_Delete(params);
  uv_mutex_lock(&call->mu);
  free(call->client_result);
  call->client_result = NULL;
  call->client_waiting = 1;
  uv_mutex_unlock(&call->mu);
  post_event(call, &e);

  uv_mutex_lock(&call->mu);
  while (call->client_waiting && !atomic_load(&call->cancelled))
    uv_cond_wait(&call->cv, &call->mu);
  result = call->client_result;
  call->client_result = NULL;
  uv_mutex_unlock(&call->mu);
  if (result != NULL) {
    *result_json = result;
    return 0;
  }
  return atomic_load(&call->cancelled) ? PH__ECANCELED : PH__EFAIL;
}

int ph__call_ask(ph_call *call, unsigned capability, const char *key,
                 const char *method, cJSON *params, char **result_json) {
  int err = PH__ENOTSUP;

  call = root_of(call);
  if (!(call->client_caps & capability)) {
    uv_mutex_lock(&call->mu);
    if (call->missing_capability == 0 && call->ask_mode == PH__ASK_ROUND)
      call->missing_capability = capability;
    uv_mutex_unlock(&call->mu);
    goto refused;
  }
  if (call->ask_mode == PH__ASK_ROUND)
    return ask_round(call, key, method, params, result_json);
  /* Blocking the loop would stop the answer from ever arriving. */
  if (ph__on_loop_thread() || call->session == NULL)
    goto refused;
  return ask_wait(call, method, params, result_json);

refused:
  cJSON_Delete(params);
  return err;
}

int ph__call_set_state(ph_call *call, const char *state) {
  char *copy;

  call = root_of(call);
  if (call->ask_mode != PH__ASK_ROUND)
    return PH__ENOTSUP;
  copy = ph__xstrdup_or_null(state);
  uv_mutex_lock(&call->mu);
  free(call->state_out);
  call->state_out = copy;
  uv_mutex_unlock(&call->mu);
  return 0;
}

const char *ph__call_state(const ph_call *call) {
  return root_of((ph_call *)call)->state_in;
}

int ph__call_close_stream(ph_call *call) {
  event *ev;

  call = root_of(call);
  if (!call->closable)
    return PH__ENOTSUP;
  if (over(call))
    return PH__ECANCELED;
  if (ph__on_loop_thread()) {
    close_stream_now(call);
    return 0;
  }
  /* Queued behind what the call sent before, ahead of what it sends
   * after: the events keep their order. */
  ev = ph__xcalloc(1, sizeof(*ev));
  ev->kind = EV_CLOSE_STREAM;
  ev->call = call;
  ph__call_ref(call);
  post(ev);
  return 0;
}

/* The pool job of run_in_pool: fn owns its arg, so it runs even when the
 * call was cancelled meanwhile. */
static void run_deferred(ph__job *job) {
  ph_call *call = PH__CONTAINER_OF(job, ph_call, job);

  call->defer_fn(call, call->defer_arg);
  atomic_store(&call->deferred, 0);
  ph__call_unref(call); /* The queue's. */
}

int ph__call_defer(ph_call *call, void (*fn)(ph_call *call, void *arg),
                   void *arg) {
  int expected = 0, err;

  /* A service call is over when its handler returns. */
  if (call->kind == PH__CALL_SERVICE || call->inst == NULL ||
      call->inst->pool == NULL)
    return PH__ENOTSUP;
  if (!atomic_compare_exchange_strong(&call->deferred, &expected, 1))
    return PH__EINVAL;
  /* Checked after taking the flag: a fn that replied has let go of it by
   * now, so its reply is visible here. */
  if (atomic_load(&call->replied)) {
    err = PH__EINVAL;
    goto refused;
  }
  call->defer_fn = fn;
  call->defer_arg = arg;
  ph__call_ref(call); /* The queue's: the call outlives fn. */
  err = ph__pool_submit(call->inst->pool, &call->job, run_deferred);
  if (err == 0)
    return 0;
  ph__call_unref(call); /* Not the last: the caller holds the call. */
  if (err == UV_EALREADY)
    err = PH__EINVAL; /* Its handler is still queued. */

refused:
  atomic_store(&call->deferred, 0);
  return err;
}

int ph__calls_notify(ph_instance *inst, int kind, const char *uri) {
  event *ev;

  if (!atomic_load(&D.running))
    return PH__ENOTSUP;
  /* A plugin's thread (a watcher) may notify while its instance is being
   * finalised, before fini stops it: that notification has no one to go
   * to, and a reference taken then would outlive the instance (a TSan
   * report at shutdown: use after free). */
  if (!ph__instance_ref_live(inst))
    return 0;
  ev = ph__xcalloc(1, sizeof(*ev));
  ev->kind = EV_NOTIFY;
  ev->inst = inst;
  ev->notify_kind = kind;
  ev->text = ph__xstrdup_or_null(uri);
  post(ev);
  return 0;
}

ph_call *ph__call_new_service(ph_call *parent, ph_instance *provider,
                              const char *service, const char *request_json) {
  ph_call *sub = ph__call_new(PH__CALL_SERVICE, provider, 0);

  sub->parent = parent;
  sub->depth = parent->depth + 1;
  sub->log_level = -1;
  sub->service = ph__xstrdup(service);
  sub->request_json = ph__xstrdup(request_json);
  sub->name = ph__xasprintf("service %s", service);
  return sub;
}

int ph__call_depth(const ph_call *call) {
  return call->depth;
}

int ph__call_replied(const ph_call *call) {
  return atomic_load(&((ph_call *)call)->replied);
}

char *ph__call_take_result(ph_call *call, int *code, const char **message,
                           const char **data_json) {
  char *result = call->result_json;

  call->result_json = NULL;
  *code = call->error_code;
  *message = call->error_message;
  *data_json = call->error_data;
  return result;
}

int ph__call_refs(const ph_call *call) {
  return atomic_load(&((ph_call *)call)->refs);
}

void *ph__call_proto(ph_call *call) {
  return call->proto_size > 0 ? (void *)call->proto : NULL;
}

void ph__call_set_target(ph_call *call, const void *def, const char *name) {
  call->def = def;
  free(call->name);
  call->name = ph__xstrdup(name);
}

void ph__call_take_args(ph_call *call, char *args_json) {
  free(call->args_json);
  call->args_json = args_json;
}

void ph__call_set_resource(ph_call *call, const char *uri, char *vars_json) {
  free(call->uri);
  call->uri = ph__xstrdup(uri);
  free(call->vars_json);
  call->vars_json = vars_json;
}

void ph__call_set_completion(ph_call *call, const char *arg_name,
                             const char *arg_value, char *context_json) {
  call->arg_name = ph__xstrdup(arg_name);
  call->arg_value = ph__xstrdup(arg_value);
  call->context_json = context_json;
}

void ph__call_attach(ph_call *call, ph__session *s, ph__outlet *o) {
  call->session = s;
  call->outlet = o;
}

void ph__call_set_client(ph_call *call, const ph__call_client *client) {
  free(call->principal);
  call->principal = ph__xstrdup_or_null(client->principal);
  call->client_caps = client->caps;
  call->log_level = client->log_level;
  call->progress = client->progress;
  call->ask_mode = client->ask_mode;
}

void ph__call_set_timeout(ph_call *call, uint32_t timeout_ms) {
  call->timeout_ms = timeout_ms;
}

void ph__call_take_round(ph_call *call, cJSON *responses, char *state) {
  cJSON_Delete(call->input_responses);
  call->input_responses = responses;
  free(call->state_in);
  call->state_in = state;
}

int ph__call_kind(const ph_call *call) {
  return call->kind;
}

const void *ph__call_def(const ph_call *call) {
  return call->def;
}

const char *ph__call_name(const ph_call *call) {
  return call->name != NULL ? call->name : "call";
}

const char *ph__call_uri(const ph_call *call) {
  return call->uri;
}

const char *ph__call_args(const ph_call *call) {
  return call->args_json;
}

ph_instance *ph__call_instance(const ph_call *call) {
  return call->inst;
}

ph__session *ph__call_session(const ph_call *call) {
  return call->session;
}

ph__outlet *ph__call_outlet(const ph_call *call) {
  return call->outlet;
}

uint32_t ph__call_timeout_ms(const ph_call *call) {
  return call->timeout_ms;
}
