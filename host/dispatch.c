/* dispatch.c: see dispatch.h. Also the host API table plugins receive. */
#include "dispatch.h"

#include "log.h"
#include "registry.h"
#include "session.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERVICE_DEPTH 8

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
  atomic_ullong next_client_id;
  void (*notify_hook)(ph_instance *, int, const char *);
  char *(*reply_shaper)(ph_call *, const char *, int *, char **);
  void (*client_request_hook)(ph_call *, const char *, const char *);
} D;

int ph__on_loop_thread(void) {
  uv_thread_t self = uv_thread_self();

  return D.running && uv_thread_equal(&self, &D.loop_thread);
}

uv_loop_t *ph__dispatch_loop(void) {
  return D.loop;
}

long ph__dispatch_live_calls(void) {
  return atomic_load(&D.live_calls);
}

long ph__dispatch_unanswered_calls(void) {
  return D.unanswered;
}

void ph__dispatch_set_notify_hook(void (*hook)(ph_instance *, int,
                                               const char *)) {
  D.notify_hook = hook;
}

void ph__dispatch_set_reply_shaper(char *(*shaper)(ph_call *, const char *,
                                                   int *, char **)) {
  D.reply_shaper = shaper;
}

void ph__dispatch_set_client_request_hook(void (*hook)(ph_call *, const char *,
                                                       const char *)) {
  D.client_request_hook = hook;
}

static void post(event *ev) {
  uv_mutex_lock(&D.mu);
  if (D.closed) {
    /* The loop is gone (a call outlived shutdown): nobody will read it. */
    uv_mutex_unlock(&D.mu);
    if (ev->call != NULL)
      ph__call_unref(ev->call);
    free(ev->text);
    free(ev->id);
    free(ev);
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
    if (ev->call != NULL)
      ph__call_unref(ev->call);
    free(ev->text);
    free(ev->id);
    free(ev);
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
  ev = calloc(1, sizeof(*ev));
  ev->kind = EV_FREE;
  ev->inst = inst;
  post(ev);
  return 1;
}

int ph__dispatch_init(uv_loop_t *loop) {
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

void ph__dispatch_close(void) {
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
  ph_call *call = calloc(1, sizeof(*call));

  atomic_init(&call->refs, 1);
  call->kind = kind;
  call->inst = inst;
  call->log_level = PH_LOG_DEBUG;
  if (inst != NULL)
    ph__instance_ref(inst);
  uv_mutex_init(&call->mu);
  uv_cond_init(&call->cv);
  atomic_fetch_add(&D.live_calls, 1);
  return call;
}

void ph__call_ref(ph_call *call) {
  atomic_fetch_add(&call->refs, 1);
}

void ph__session_unref(ph__session *s);

void ph__call_unref(ph_call *call) {
  if (call == NULL || atomic_fetch_sub(&call->refs, 1) != 1)
    return;
  if (call->session != NULL)
    ph__session_unref(call->session);
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

/* The plugin's side is over without a reply (cancelled before it ran). */
static void drop_plugin_ref(ph_call *call) {
  int expected = 0;

  if (atomic_compare_exchange_strong(&call->replied, &expected, 1))
    ph__call_unref(call);
}

/* The pool job of a started call: runs its handler on a worker. */
static void run_handler(ph__job *job) {
  ph_call *call = PH__CONTAINER_OF(job, ph_call, job);

  if (atomic_load(&call->cancelled)) {
    drop_plugin_ref(call);
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
  uv_mutex_lock(&call->mu);
  free(call->client_result);
  call->client_result = json ? strdup(json) : NULL;
  call->client_waiting = 0;
  uv_cond_broadcast(&call->cv);
  uv_mutex_unlock(&call->mu);
}

/* ---- The host API ---- */

static ph_call *root_of(ph_call *call) {
  while (call->parent != NULL)
    call = call->parent;
  return call;
}

static int finish(ph_call *call, char *result, int code, const char *message,
                  const char *data) {
  int expected = 0;
  event *ev;

  if (!atomic_compare_exchange_strong(&call->replied, &expected, 1)) {
    ph__error("%s on %s: plugin replied twice; the second reply is ignored",
              call->name ? call->name : "call",
              call->inst ? call->inst->label : "?");
    free(result);
    return PH_EALREADY;
  }
  call->result_json = result;
  call->error_code = code;
  call->error_message = message ? strdup(message) : NULL;
  call->error_data = data ? strdup(data) : NULL;
  if (call->kind == PH__CALL_SERVICE) {
    /* The caller reads the result after the handler returns. */
    ph__call_unref(call);
    return PH_OK;
  }
  if (ph__on_loop_thread()) {
    int was_cancelled = atomic_load(&call->cancelled);

    answer(call);
    ph__call_unref(call); /* The plugin's reference; call may be gone. */
    return was_cancelled ? PH_ECANCELED : PH_OK;
  }
  /* The event inherits the plugin's reference. */
  ev = calloc(1, sizeof(*ev));
  ev->kind = EV_ANSWER;
  ev->call = call;
  post(ev);
  return PH_OK;
}

static int api_reply(ph_call *call, const char *result_json) {
  char *text, *message = NULL;
  cJSON *check;
  int code = 0, rc;

  if (call == NULL || result_json == NULL)
    return PH_EINVAL;
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
              call->name ? call->name : "call", call->inst->label);
    return finish(call, NULL, PH_RPC_INTERNAL_ERROR,
                  "plugin returned malformed JSON", NULL);
  }
  cJSON_Delete(check);
  return finish(call, strdup(result_json), 0, NULL, NULL);
}

static int api_reply_error(ph_call *call, int code, const char *message,
                           const char *data_json) {
  if (call == NULL)
    return PH_EINVAL;
  if (code == 0)
    code = PH_RPC_INTERNAL_ERROR;
  return finish(call, NULL, code, message ? message : "error", data_json);
}

static void api_log(ph_instance *self, int level, const char *fmt, ...) {
  char buf[2048];
  va_list ap;

  if (level < ph__log_level())
    return;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  ph__log(level, "[%s] %s", self ? self->label : "plugin", buf);
}

/* Sends a notification related to a call on its outlet, from any thread. */
static void send_related(ph_call *call, char *text) {
  event *ev;

  if (ph__on_loop_thread()) {
    if (!call->answered && call->outlet != NULL)
      ph__outlet_send(call->outlet, text, strlen(text));
    free(text);
    return;
  }
  ev = calloc(1, sizeof(*ev));
  ev->kind = EV_SEND;
  ev->call = call;
  ev->text = text;
  ph__call_ref(call);
  post(ev);
}

static const char *const level_names[] = {"debug",   "info",     "notice",
                                          "warning", "error",    "critical",
                                          "alert",   "emergency"};

static int api_message(ph_call *call, int level, const char *logger,
                       const char *data_json) {
  cJSON *msg, *params, *data;
  char *text;

  if (call == NULL || level < PH_LOG_DEBUG || level > PH_LOG_EMERGENCY)
    return PH_EINVAL;
  call = root_of(call);
  if (call->log_level < 0 || level < call->log_level)
    return PH_OK;
  if (atomic_load(&call->replied) || atomic_load(&call->cancelled))
    return PH_ECANCELED;
  data = data_json ? cJSON_Parse(data_json) : cJSON_CreateNull();
  if (data == NULL)
    data = cJSON_CreateString(data_json);
  msg = cJSON_CreateObject();
  cJSON_AddStringToObject(msg, "jsonrpc", "2.0");
  cJSON_AddStringToObject(msg, "method", "notifications/message");
  params = cJSON_AddObjectToObject(msg, "params");
  cJSON_AddStringToObject(params, "level", level_names[level]);
  if (logger != NULL)
    cJSON_AddStringToObject(params, "logger", logger);
  cJSON_AddItemToObject(params, "data", data);
  text = cJSON_PrintUnformatted(msg);
  cJSON_Delete(msg);
  send_related(call, text);
  return PH_OK;
}

static int api_progress(ph_call *call, double progress, double total,
                        const char *message) {
  cJSON *msg, *params;
  char *text;

  if (call == NULL || !isfinite(progress))
    return PH_EINVAL;
  call = root_of(call);
  if (call->progress_token == NULL)
    return PH_ENOTSUP;
  if (atomic_load(&call->replied) || atomic_load(&call->cancelled))
    return PH_ECANCELED;
  uv_mutex_lock(&call->mu);
  if (call->has_progress && progress <= call->last_progress) {
    uv_mutex_unlock(&call->mu);
    return PH_EINVAL; /* Progress must increase. */
  }
  call->has_progress = 1;
  call->last_progress = progress;
  uv_mutex_unlock(&call->mu);
  msg = cJSON_CreateObject();
  cJSON_AddStringToObject(msg, "jsonrpc", "2.0");
  cJSON_AddStringToObject(msg, "method", "notifications/progress");
  params = cJSON_AddObjectToObject(msg, "params");
  /* As the client wrote it: a parse would round integers past 2^53. */
  cJSON_AddRawToObject(params, "progressToken", call->progress_token);
  cJSON_AddNumberToObject(params, "progress", progress);
  if (total >= 0)
    cJSON_AddNumberToObject(params, "total", total);
  if (message != NULL)
    cJSON_AddStringToObject(params, "message", message);
  text = cJSON_PrintUnformatted(msg);
  cJSON_Delete(msg);
  send_related(call, text);
  return PH_OK;
}

static int api_cancelled(const ph_call *call) {
  for (; call != NULL; call = call->parent)
    if (atomic_load(&((ph_call *)call)->cancelled))
      return 1;
  return 0;
}

static const char *api_principal(const ph_call *call) {
  return call ? root_of((ph_call *)call)->principal : NULL;
}

static int api_service_call(ph_call *call, const char *service,
                            const char *request_json, char **response_json) {
  ph__generation *g;
  const ph__dept *d;
  ph_instance *provider = NULL;
  ph_call *sub;
  cJSON *check;
  int rc;

  if (response_json != NULL)
    *response_json = NULL;
  if (call == NULL || service == NULL || request_json == NULL ||
      response_json == NULL)
    return PH_EINVAL;
  if (call->depth >= MAX_SERVICE_DEPTH)
    return PH_EINVAL;
  check = cJSON_Parse(request_json);
  if (check == NULL)
    return PH_EINVAL;
  cJSON_Delete(check);
  /* Resolved by name in the current generation on every call, so a
   * reloaded provider takes over at once. */
  g = ph__registry_acquire();
  if (g != NULL && (d = ph__generation_dept(g, call->inst->department)))
    provider = ph__dept_service(d, service);
  if (provider != NULL)
    ph__instance_ref(provider);
  ph__generation_unref(g);
  if (provider == NULL)
    return PH_ENOSERVICE;

  sub = ph__call_new(PH__CALL_SERVICE, provider);
  ph__instance_unref(provider);
  sub->parent = call;
  sub->depth = call->depth + 1;
  sub->log_level = -1;
  sub->service = strdup(service);
  sub->request_json = strdup(request_json);
  if (asprintf(&sub->name, "service %s", service) < 0)
    sub->name = NULL;
  ph__call_ref(sub); /* The provider's reference, dropped by its reply. */
  provider->plugin->service(sub, service, request_json, provider->state);
  if (!atomic_load(&sub->replied)) {
    ph__error("service \"%s\" of %s returned without replying", service,
              provider->label);
    drop_plugin_ref(sub);
    rc = PH_EFAIL;
    *response_json =
        strdup("{\"code\":-32603,\"message\":\"service did not reply\"}");
  } else if (sub->error_code != 0) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "code", sub->error_code);
    cJSON_AddStringToObject(e, "message", sub->error_message);
    if (sub->error_data != NULL)
      cJSON_AddRawToObject(e, "data", sub->error_data);
    *response_json = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    rc = PH_EFAIL;
  } else {
    *response_json = sub->result_json;
    sub->result_json = NULL;
    rc = PH_OK;
  }
  ph__call_unref(sub);
  return rc;
}

static int api_notify(ph_instance *self, int kind, const char *uri) {
  event *ev;

  if (self == NULL || kind < PH_NOTIFY_RESOURCE_UPDATED ||
      kind > PH_NOTIFY_PROMPTS_CHANGED ||
      (kind == PH_NOTIFY_RESOURCE_UPDATED && uri == NULL))
    return PH_EINVAL;
  if (!D.running)
    return PH_ENOTSUP;
  ev = calloc(1, sizeof(*ev));
  ev->kind = EV_NOTIFY;
  ev->inst = self;
  ev->notify_kind = kind;
  ev->text = uri ? strdup(uri) : NULL;
  ph__instance_ref(self);
  post(ev);
  return PH_OK;
}

static void *api_alloc(size_t size) {
  return malloc(size);
}

static void api_free(void *ptr) {
  free(ptr);
}

static const char *capability_for(const char *method) {
  if (strcmp(method, "sampling/createMessage") == 0)
    return "sampling";
  if (strcmp(method, "elicitation/create") == 0)
    return "elicitation";
  if (strcmp(method, "roots/list") == 0)
    return "roots";
  return NULL;
}

static int api_client_request(ph_call *call, const char *key,
                              const char *method, const char *params_json,
                              char **result_json) {
  const char *cap;
  cJSON *params, *req, *answer_msg;
  char id[32], *text;
  event *ev;
  int rc = PH_EFAIL;

  if (result_json != NULL)
    *result_json = NULL;
  if (call == NULL || key == NULL || method == NULL || result_json == NULL)
    return PH_EINVAL;
  call = root_of(call);
  cap = capability_for(method);
  if (cap == NULL)
    return PH_EINVAL;
  params = cJSON_Parse(params_json ? params_json : "{}");
  if (!cJSON_IsObject(params)) {
    cJSON_Delete(params);
    return PH_EINVAL;
  }
  if (cJSON_GetObjectItemCaseSensitive(call->client_caps, cap) == NULL) {
    uv_mutex_lock(&call->mu);
    if (call->missing_capability == NULL)
      call->missing_capability = strdup(cap);
    uv_mutex_unlock(&call->mu);
    cJSON_Delete(params);
    return PH_ENOTSUP;
  }

  if (call->era == PH__ERA_MODERN) {
    const cJSON *r =
        cJSON_GetObjectItemCaseSensitive(call->input_responses, key);
    if (r != NULL) {
      cJSON_Delete(params);
      *result_json = cJSON_PrintUnformatted(r);
      return PH_OK;
    }
    uv_mutex_lock(&call->mu);
    if (call->input_requests == NULL)
      call->input_requests = cJSON_CreateObject();
    if (cJSON_GetObjectItemCaseSensitive(call->input_requests, key) == NULL) {
      req = cJSON_CreateObject();
      cJSON_AddStringToObject(req, "method", method);
      cJSON_AddItemToObject(req, "params", params);
      params = NULL;
      cJSON_AddItemToObject(call->input_requests, key, req);
    }
    uv_mutex_unlock(&call->mu);
    cJSON_Delete(params);
    return PH_EINPUT;
  }

  /* Legacy: a real request to the client; this thread waits for it. */
  if (ph__on_loop_thread() || call->session == NULL) {
    cJSON_Delete(params);
    return PH_ENOTSUP;
  }
  snprintf(id, sizeof(id), "\"ph-%llu\"",
           (unsigned long long)atomic_fetch_add(&D.next_client_id, 1));
  req = cJSON_CreateObject();
  cJSON_AddStringToObject(req, "jsonrpc", "2.0");
  cJSON_AddRawToObject(req, "id", id);
  cJSON_AddStringToObject(req, "method", method);
  cJSON_AddItemToObject(req, "params", params);
  text = cJSON_PrintUnformatted(req);
  cJSON_Delete(req);

  uv_mutex_lock(&call->mu);
  free(call->client_result);
  call->client_result = NULL;
  call->client_waiting = 1;
  uv_mutex_unlock(&call->mu);
  ev = calloc(1, sizeof(*ev));
  ev->kind = EV_CLIENT_REQUEST;
  ev->call = call;
  ev->text = text;
  ev->id = strdup(id);
  ph__call_ref(call);
  post(ev);

  uv_mutex_lock(&call->mu);
  while (call->client_waiting && !atomic_load(&call->cancelled))
    uv_cond_wait(&call->cv, &call->mu);
  if (call->client_result != NULL) {
    answer_msg = cJSON_Parse(call->client_result);
    if (cJSON_GetObjectItemCaseSensitive(answer_msg, "result") != NULL) {
      *result_json = cJSON_PrintUnformatted(
          cJSON_GetObjectItemCaseSensitive(answer_msg, "result"));
      rc = PH_OK;
    }
    cJSON_Delete(answer_msg);
  } else if (atomic_load(&call->cancelled)) {
    rc = PH_ECANCELED;
  }
  uv_mutex_unlock(&call->mu);
  return rc;
}

static int api_set_state(ph_call *call, const char *state) {
  if (call == NULL)
    return PH_EINVAL;
  call = root_of(call);
  if (call->era != PH__ERA_MODERN)
    return PH_ENOTSUP;
  uv_mutex_lock(&call->mu);
  free(call->state_out);
  call->state_out = state ? strdup(state) : NULL;
  uv_mutex_unlock(&call->mu);
  return PH_OK;
}

static const char *api_get_state(const ph_call *call) {
  return call ? root_of((ph_call *)call)->state_in : NULL;
}

static int api_configure_tool(ph_instance *self, const char *tool,
                              const char *override_json) {
  if (self == NULL || tool == NULL || override_json == NULL)
    return PH_EINVAL;
  return ph__abi_error(ph__instance_configure_tool(self, tool, override_json));
}

static int api_set_ready(ph_instance *self, int ready, const char *why) {
  if (self == NULL)
    return PH_EINVAL;
  ph__instance_set_ready(self, ready, why);
  return PH_OK;
}

static int api_close_stream(ph_call *call) {
  event *ev;

  if (call == NULL)
    return PH_EINVAL;
  call = root_of(call);
  if (!call->closable)
    return PH_ENOTSUP;
  if (atomic_load(&call->replied) || atomic_load(&call->cancelled))
    return PH_ECANCELED;
  if (ph__on_loop_thread()) {
    close_stream_now(call);
    return PH_OK;
  }
  /* Queued behind what the call sent before, ahead of what it sends
   * after: the events keep their order. */
  ev = calloc(1, sizeof(*ev));
  ev->kind = EV_CLOSE_STREAM;
  ev->call = call;
  ph__call_ref(call);
  post(ev);
  return PH_OK;
}

/* ---- 1.2: watches and handing calls to the pool ---- */

static int api_watch_fd(ph_instance *self, int fd, int events, ph_watch_fn cb,
                        void *data) {
  if (self == NULL)
    return PH_EINVAL;
  /* Handles belong to the loop thread. */
  if (!ph__on_loop_thread())
    return PH_ENOTSUP;
  return ph__abi_error(ph__instance_watch(self, D.loop, fd, events, cb, data));
}

/* The pool job of run_in_pool: fn owns its arg, so it runs even when the
 * call was cancelled meanwhile. */
static void run_deferred(ph__job *job) {
  ph_call *call = PH__CONTAINER_OF(job, ph_call, job);

  call->defer_fn(call, call->defer_arg);
  atomic_store(&call->deferred, 0);
  ph__call_unref(call); /* The queue's. */
}

static int api_run_in_pool(ph_call *call, void (*fn)(ph_call *, void *),
                           void *arg) {
  int expected = 0, err;

  if (call == NULL || fn == NULL)
    return PH_EINVAL;
  /* A service call is over when its handler returns. */
  if (call->kind == PH__CALL_SERVICE || call->inst == NULL ||
      call->inst->pool == NULL)
    return PH_ENOTSUP;
  if (!atomic_compare_exchange_strong(&call->deferred, &expected, 1))
    return PH_EINVAL;
  /* Checked after taking the flag: a fn that replied has let go of it by
   * now, so its reply is visible here. */
  if (atomic_load(&call->replied)) {
    atomic_store(&call->deferred, 0);
    return PH_EINVAL;
  }
  call->defer_fn = fn;
  call->defer_arg = arg;
  ph__call_ref(call); /* The queue's: the call outlives fn. */
  err = ph__pool_submit(call->inst->pool, &call->job, run_deferred);
  if (err == 0)
    return PH_OK;
  ph__call_unref(call); /* Not the last: the caller holds the call. */
  atomic_store(&call->deferred, 0);
  /* Its handler is still queued, or the queue is full or stopping. */
  return err == UV_EALREADY ? PH_EINVAL : PH_ENOTSUP;
}

const ph_host_api ph__host_api = {
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
