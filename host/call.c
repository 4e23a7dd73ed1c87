/* call.c: see call.h. */
#include "call.h"

#include "alloc.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* What the completion queue carries to the loop. */
enum event_kind {
  EV_ANSWER,
  EV_SEND,
  EV_NOTIFY,
  EV_CLIENT_REQUEST,
  EV_FREE,
  EV_CLOSE_STREAM
};

typedef struct event {
  struct event *next;
  int kind;
  ph_call *call; /* Referenced by the event. */
  ph_instance *inst;
  int notify_kind;
  char *text;
  char *id;
} event;

static struct {
  uv_loop_t *loop;
  uv_async_t async;
  uv_thread_t loop_thread;
  int running;
  int closed; /* Guarded by mu: the async handle is closed. */
  uv_mutex_t mu;
  event *head, *tail;
  atomic_long live_calls;
  long unanswered; /* Loop only: started calls not yet answered. */
  void (*notify_hook)(ph_instance *, int, const char *);
  char *(*reply_shaper)(ph_call *, const char *, int *, char **);
  void (*client_request_hook)(ph_call *, const char *, const char *);
  void (*release_session)(ph__session *);
} D;

int ph__on_loop_thread(void) {
  uv_thread_t self = uv_thread_self();

  return D.running && uv_thread_equal(&self, &D.loop_thread);
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

void ph__calls_set_notify_hook(void (*hook)(ph_instance *, int, const char *)) {
  D.notify_hook = hook;
}

void ph__calls_set_reply_shaper(char *(*shaper)(ph_call *, const char *, int *,
                                                char **)) {
  D.reply_shaper = shaper;
}

void ph__calls_set_client_request_hook(void (*hook)(ph_call *, const char *,
                                                    const char *)) {
  D.client_request_hook = hook;
}

void ph__calls_set_session_release(void (*release)(ph__session *s)) {
  D.release_session = release;
}

static void free_event(event *ev) {
  if (ev->call != NULL)
    ph__call_unref(ev->call);
  free(ev->text);
  free(ev->id);
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
    case EV_SEND:
      if (!ev->call->answered && ev->call->outlet != NULL)
        ph__outlet_send(ev->call->outlet, ev->text, strlen(ev->text));
      break;
    case EV_NOTIFY:
      if (D.notify_hook != NULL)
        D.notify_hook(ev->inst, ev->notify_kind, ev->text);
      ph__instance_unref(ev->inst);
      break;
    case EV_CLIENT_REQUEST:
      if (!ev->call->answered && D.client_request_hook != NULL)
        D.client_request_hook(ev->call, ev->id, ev->text);
      else
        ph__call_client_answer(ev->call, NULL);
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
  if (!D.running || ph__on_loop_thread())
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
  D.running = 1;
  return 0;
}

void ph__calls_close(void) {
  if (!D.running)
    return;
  ph__instances_close_watches();
  on_async(&D.async);
  uv_mutex_lock(&D.mu);
  D.closed = 1;
  uv_mutex_unlock(&D.mu);
  D.running = 0;
  uv_close((uv_handle_t *)&D.async, NULL);
}

ph_call *ph__call_new(int kind, ph_instance *inst) {
  ph_call *call = ph__xcalloc(1, sizeof(*call));

  atomic_init(&call->refs, 1);
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
  if (call->session != NULL)
    D.release_session(call->session);
  ph__instance_unref(call->inst);
  cJSON_Delete(call->client_caps);
  cJSON_Delete(call->input_responses);
  cJSON_Delete(call->input_requests);
  uv_mutex_destroy(&call->mu);
  uv_cond_destroy(&call->cv);
  free(call->id_json);
  free(call->method);
  free(call->progress_token);
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
  free(call->missing_capability);
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

/* Loop thread: finishes the host's side of the call exactly once. */
static void answer(ph_call *call) {
  if (call->answered)
    return;
  call->answered = 1;
  if (call->started) {
    call->started = 0;
    D.unanswered--;
  }
  stop_timer(call);
  if (call->on_answer != NULL)
    call->on_answer(call);
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
  /* on_answer sees the flag and sends no response. */
  answer(call);
}

static void invoke(ph_call *call) {
  ph_instance *inst = call->inst;
  void *state = inst->state;

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

int ph__call_start(ph_call *call) {
  int run_inline = call->kind == PH__CALL_TOOL &&
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
    D.unanswered--;
    atomic_store(&call->replied, 1);
    ph__call_unref(call);
    stop_timer(call);
  }
  return err;
}

void ph__call_client_answer(ph_call *call, const char *json) {
  char *copy = ph__xstrdup_or_null(json);

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
  if (call->kind != PH__CALL_SERVICE && D.reply_shaper != NULL) {
    text = D.reply_shaper(call, result_json, &code, &message);
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

void ph__call_send(ph_call *call, char *text) {
  event *ev;

  if (ph__on_loop_thread()) {
    if (!call->answered && call->outlet != NULL)
      ph__outlet_send(call->outlet, text, strlen(text));
    free(text);
    return;
  }
  ev = ph__xcalloc(1, sizeof(*ev));
  ev->kind = EV_SEND;
  ev->call = call;
  ev->text = text;
  ph__call_ref(call);
  post(ev);
}

char *ph__call_ask_client(ph_call *call, const char *id_json, char *request) {
  char *response;
  event *ev;

  uv_mutex_lock(&call->mu);
  free(call->client_result);
  call->client_result = NULL;
  call->client_waiting = 1;
  uv_mutex_unlock(&call->mu);
  ev = ph__xcalloc(1, sizeof(*ev));
  ev->kind = EV_CLIENT_REQUEST;
  ev->call = call;
  ev->text = request;
  ev->id = ph__xstrdup(id_json);
  ph__call_ref(call);
  post(ev);

  uv_mutex_lock(&call->mu);
  while (call->client_waiting && !atomic_load(&call->cancelled))
    uv_cond_wait(&call->cv, &call->mu);
  response = call->client_result;
  call->client_result = NULL;
  uv_mutex_unlock(&call->mu);
  return response;
}

void ph__call_close_stream(ph_call *call) {
  event *ev;

  if (ph__on_loop_thread()) {
    close_stream_now(call);
    return;
  }
  /* Queued behind what the call sent before, ahead of what it sends
   * after: the events keep their order. */
  ev = ph__xcalloc(1, sizeof(*ev));
  ev->kind = EV_CLOSE_STREAM;
  ev->call = call;
  ph__call_ref(call);
  post(ev);
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

  if (!D.running)
    return PH__ENOTSUP;
  ev = ph__xcalloc(1, sizeof(*ev));
  ev->kind = EV_NOTIFY;
  ev->inst = inst;
  ev->notify_kind = kind;
  ev->text = ph__xstrdup_or_null(uri);
  ph__instance_ref(inst);
  post(ev);
  return 0;
}
