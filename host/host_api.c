/* host_api.c: see host_api.h. Each api_* function checks what the ABI says
 * about its arguments and returns PH_E* codes; the work is done by the
 * layers below. */
#include "host_api.h"

#include "alloc.h"
#include "call.h"
#include "error.h"
#include "instance.h"
#include "log.h"
#include "registry.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Service calls may call services in turn, this deep at most. */
#define MAX_SERVICE_DEPTH 8

static atomic_ullong next_client_id;

/* A call's messages go to the client of the call at the root of its
 * service chain. */
static ph_call *root_of(ph_call *call) {
  while (call->parent != NULL)
    call = call->parent;
  return call;
}

/* {"jsonrpc":"2.0","method":method,"params":{}}, with *params the last. */
static cJSON *new_message(const char *method, cJSON **params) {
  cJSON *msg = ph__xcheck(cJSON_CreateObject());

  ph__xjson_put_string(msg, "jsonrpc", "2.0");
  ph__xjson_put_string(msg, "method", method);
  *params = ph__xcheck(cJSON_CreateObject());
  ph__xjson_put(msg, "params", *params);
  return msg;
}

static char *print_and_delete(cJSON *json) {
  char *text = ph__xjson_print(json);

  cJSON_Delete(json);
  return text;
}

static int api_reply(ph_call *call, const char *result_json) {
  if (call == NULL || result_json == NULL)
    return PH_EINVAL;
  return ph__abi_error(ph__call_reply(call, result_json));
}

static int api_reply_error(ph_call *call, int code, const char *message,
                           const char *data_json) {
  if (call == NULL)
    return PH_EINVAL;
  if (code == 0)
    code = PH_RPC_INTERNAL_ERROR;
  return ph__abi_error(
      ph__call_reply_error(call, code, message ? message : "error", data_json));
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

static int api_message(ph_call *call, int level, const char *logger,
                       const char *data_json) {
  cJSON *msg, *params, *data;

  if (call == NULL || level < PH_LOG_DEBUG || level > PH_LOG_EMERGENCY)
    return PH_EINVAL;
  call = root_of(call);
  if (call->log_level < 0 || level < call->log_level)
    return PH_OK;
  if (atomic_load(&call->replied) || atomic_load(&call->cancelled))
    return PH_ECANCELED;
  data = data_json ? cJSON_Parse(data_json) : cJSON_CreateNull();
  if (data == NULL && data_json != NULL)
    data = cJSON_CreateString(data_json); /* Not JSON: sent as text. */
  msg = new_message("notifications/message", &params);
  ph__xjson_put_string(params, "level", ph__log_level_name(level));
  if (logger != NULL)
    ph__xjson_put_string(params, "logger", logger);
  ph__xjson_put(params, "data", data);
  ph__call_send(call, print_and_delete(msg));
  return PH_OK;
}

static int api_progress(ph_call *call, double progress, double total,
                        const char *message) {
  cJSON *msg, *params;

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
  msg = new_message("notifications/progress", &params);
  /* As the client wrote it: a parse would round integers past 2^53. */
  ph__xjson_put(params, "progressToken", cJSON_CreateRaw(call->progress_token));
  ph__xjson_put_number(params, "progress", progress);
  if (total >= 0)
    ph__xjson_put_number(params, "total", total);
  if (message != NULL)
    ph__xjson_put_string(params, "message", message);
  ph__call_send(call, print_and_delete(msg));
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

/* The provider of `service` in the department of `call`, referenced, or
 * NULL. Resolved by name in the current generation on every call, so a
 * reloaded provider takes over at once. */
static ph_instance *find_provider(const ph_call *call, const char *service) {
  ph_instance *provider = NULL;
  ph__generation *g;
  const ph__dept *d;

  g = ph__registry_acquire();
  if (g != NULL && (d = ph__generation_dept(g, call->inst->department)))
    provider = ph__dept_service(d, service);
  if (provider != NULL)
    ph__instance_ref(provider);
  ph__generation_unref(g);
  return provider;
}

/* The error object of a service's reply_error, {"code":..,"message":..}. */
static char *service_error(const ph_call *sub) {
  cJSON *e = ph__xcheck(cJSON_CreateObject());

  ph__xjson_put_number(e, "code", sub->error_code);
  ph__xjson_put_string(e, "message", sub->error_message);
  if (sub->error_data != NULL)
    ph__xjson_put(e, "data", cJSON_CreateRaw(sub->error_data));
  return print_and_delete(e);
}

static int api_service_call(ph_call *call, const char *service,
                            const char *request_json, char **response_json) {
  ph_instance *provider;
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
  provider = find_provider(call, service);
  if (provider == NULL)
    return PH_ENOSERVICE;

  sub = ph__call_new(PH__CALL_SERVICE, provider);
  ph__instance_unref(provider); /* sub holds it now. */
  sub->parent = call;
  sub->depth = call->depth + 1;
  sub->log_level = -1;
  sub->service = ph__xstrdup(service);
  sub->request_json = ph__xstrdup(request_json);
  sub->name = ph__xasprintf("service %s", service);
  ph__call_ref(sub); /* The provider's reference, dropped by its reply. */
  provider->plugin->service(sub, service, request_json, provider->state);
  if (!atomic_load(&sub->replied)) {
    ph__error("service \"%s\" of %s returned without replying", service,
              provider->label);
    ph__call_plugin_done(sub);
    rc = PH_EFAIL;
    *response_json =
        ph__xstrdup("{\"code\":-32603,\"message\":\"service did not reply\"}");
  } else if (sub->error_code != 0) {
    *response_json = service_error(sub);
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
  if (self == NULL || kind < PH_NOTIFY_RESOURCE_UPDATED ||
      kind > PH_NOTIFY_PROMPTS_CHANGED ||
      (kind == PH_NOTIFY_RESOURCE_UPDATED && uri == NULL))
    return PH_EINVAL;
  return ph__abi_error(ph__calls_notify(self, kind, uri));
}

/* Plain malloc: the ABI promises NULL to the plugin when memory is gone
 * (alloc.h). */
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

/* Modern era: the answer came with the retry, or the request is recorded
 * for the input_required answer. Takes params. */
static int client_request_modern(ph_call *call, const char *key,
                                 const char *method, cJSON *params,
                                 char **result_json) {
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(call->input_responses, key);
  cJSON *req;

  if (r != NULL) {
    cJSON_Delete(params);
    *result_json = ph__xjson_print(r);
    return PH_OK;
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
  return PH_EINPUT;
}

/* Legacy era: a real request to the client, which this worker thread
 * waits for. Takes params. */
static int client_request_legacy(ph_call *call, const char *method,
                                 cJSON *params, char **result_json) {
  char id[32], *response;
  cJSON *req, *msg;
  const cJSON *result;
  int rc = PH_EFAIL;

  snprintf(id, sizeof(id), "\"ph-%llu\"",
           (unsigned long long)atomic_fetch_add(&next_client_id, 1));
  req = ph__xcheck(cJSON_CreateObject());
  ph__xjson_put_string(req, "jsonrpc", "2.0");
  ph__xjson_put(req, "id", cJSON_CreateRaw(id));
  ph__xjson_put_string(req, "method", method);
  ph__xjson_put(req, "params", params);
  response = ph__call_ask_client(call, id, print_and_delete(req));
  if (response != NULL) {
    msg = cJSON_Parse(response);
    result = cJSON_GetObjectItemCaseSensitive(msg, "result");
    if (result != NULL) {
      *result_json = ph__xjson_print(result);
      rc = PH_OK;
    }
    cJSON_Delete(msg);
    free(response);
  } else if (atomic_load(&call->cancelled)) {
    rc = PH_ECANCELED;
  }
  return rc;
}

static int api_client_request(ph_call *call, const char *key,
                              const char *method, const char *params_json,
                              char **result_json) {
  const char *cap;
  cJSON *params;

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
      call->missing_capability = ph__xstrdup(cap);
    uv_mutex_unlock(&call->mu);
    cJSON_Delete(params);
    return PH_ENOTSUP;
  }
  if (call->era == PH__ERA_MODERN)
    return client_request_modern(call, key, method, params, result_json);
  /* Blocking the loop would stop the answer from ever arriving. */
  if (ph__on_loop_thread() || call->session == NULL) {
    cJSON_Delete(params);
    return PH_ENOTSUP;
  }
  return client_request_legacy(call, method, params, result_json);
}

static int api_set_state(ph_call *call, const char *state) {
  char *copy;

  if (call == NULL)
    return PH_EINVAL;
  call = root_of(call);
  if (call->era != PH__ERA_MODERN)
    return PH_ENOTSUP;
  copy = ph__xstrdup_or_null(state);
  uv_mutex_lock(&call->mu);
  free(call->state_out);
  call->state_out = copy;
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
  if (call == NULL)
    return PH_EINVAL;
  call = root_of(call);
  if (!call->closable)
    return PH_ENOTSUP;
  if (atomic_load(&call->replied) || atomic_load(&call->cancelled))
    return PH_ECANCELED;
  ph__call_close_stream(call);
  return PH_OK;
}

static int api_watch_fd(ph_instance *self, int fd, int events, ph_watch_fn cb,
                        void *data) {
  if (self == NULL)
    return PH_EINVAL;
  /* Handles belong to the loop thread. */
  if (!ph__on_loop_thread())
    return PH_ENOTSUP;
  return ph__abi_error(
      ph__instance_watch(self, ph__calls_loop(), fd, events, cb, data));
}

static int api_run_in_pool(ph_call *call, void (*fn)(ph_call *, void *),
                           void *arg) {
  if (call == NULL || fn == NULL)
    return PH_EINVAL;
  return ph__abi_error(ph__call_defer(call, fn, arg));
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
