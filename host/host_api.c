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

  if (level < ph__log_plugin_level(self ? self->plugin->name : NULL))
    return;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (self == NULL)
    ph__log_from_plugin(level, NULL, NULL, NULL, NULL, buf);
  else
    ph__log_from_plugin(level, self->department, self->plugin->name,
                        self->prefix, self->label, buf);
}

static int api_message(ph_call *call, int level, const char *logger,
                       const char *data_json) {
  if (call == NULL || level < PH_LOG_DEBUG || level > PH_LOG_EMERGENCY)
    return PH_EINVAL;
  return ph__abi_error(ph__call_message(call, level, logger, data_json));
}

static int api_progress(ph_call *call, double progress, double total,
                        const char *message) {
  if (call == NULL || !isfinite(progress))
    return PH_EINVAL;
  return ph__abi_error(ph__call_progress(call, progress, total, message));
}

static int api_cancelled(const ph_call *call) {
  return call != NULL && ph__call_cancelled(call);
}

static const char *api_principal(const ph_call *call) {
  return call ? ph__call_principal(call) : NULL;
}

/* The provider of `service` in the department of `call`, referenced, or
 * NULL. Resolved by name in the current generation on every call, so a
 * reloaded provider takes over at once. */
static ph_instance *find_provider(const ph_call *call, const char *service) {
  ph_instance *provider = NULL;
  ph__generation *g;
  const ph__dept *d;

  g = ph__registry_acquire();
  if (g != NULL &&
      (d = ph__generation_dept(g, ph__call_instance(call)->department)))
    provider = ph__dept_service(d, service);
  if (provider != NULL)
    ph__instance_ref(provider);
  ph__generation_unref(g);
  return provider;
}

/* The error object of a service's reply_error, {"code":..,"message":..}. */
static char *service_error(int code, const char *message, const char *data) {
  cJSON *e = ph__xcheck(cJSON_CreateObject());

  ph__xjson_put_number(e, "code", code);
  ph__xjson_put_string(e, "message", message);
  if (data != NULL)
    ph__xjson_put(e, "data", cJSON_CreateRaw(data));
  return print_and_delete(e);
}

static int api_service_call(ph_call *call, const char *service,
                            const char *request_json, char **response_json) {
  const char *message, *data;
  ph_instance *provider;
  ph_call *sub;
  cJSON *check;
  char *result;
  int rc, code;

  if (response_json != NULL)
    *response_json = NULL;
  if (call == NULL || service == NULL || request_json == NULL ||
      response_json == NULL)
    return PH_EINVAL;
  if (ph__call_depth(call) >= MAX_SERVICE_DEPTH)
    return PH_EINVAL;
  check = cJSON_Parse(request_json);
  if (check == NULL)
    return PH_EINVAL;
  cJSON_Delete(check);
  provider = find_provider(call, service);
  if (provider == NULL)
    return PH_ENOSERVICE;

  sub = ph__call_new_service(call, provider, service, request_json);
  ph__instance_unref(provider); /* sub holds it now. */
  ph__call_ref(sub); /* The provider's reference, dropped by its reply. */
  ph__call_invoke(sub);
  if (!ph__call_replied(sub)) {
    ph__error("service \"%s\" of %s returned without replying", service,
              provider->label);
    ph__call_plugin_done(sub);
    rc = PH_EFAIL;
    *response_json =
        ph__xasprintf("{\"code\":%d,\"message\":\"service did not reply\"}",
                      PH_RPC_INTERNAL_ERROR);
    goto done;
  }
  result = ph__call_take_result(sub, &code, &message, &data);
  if (code != 0) {
    free(result);
    *response_json = service_error(code, message, data);
    rc = PH_EFAIL;
  } else {
    *response_json = result;
    rc = PH_OK;
  }

done:
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

static unsigned capability_for(const char *method) {
  if (strcmp(method, "sampling/createMessage") == 0)
    return PH__CLIENT_SAMPLING;
  if (strcmp(method, "elicitation/create") == 0)
    return PH__CLIENT_ELICITATION;
  if (strcmp(method, "roots/list") == 0)
    return PH__CLIENT_ROOTS;
  return 0;
}

static int api_client_request(ph_call *call, const char *key,
                              const char *method, const char *params_json,
                              char **result_json) {
  unsigned cap;
  cJSON *params;

  if (result_json != NULL)
    *result_json = NULL;
  if (call == NULL || key == NULL || method == NULL || result_json == NULL)
    return PH_EINVAL;
  cap = capability_for(method);
  if (cap == 0)
    return PH_EINVAL;
  params = cJSON_Parse(params_json ? params_json : "{}");
  if (!cJSON_IsObject(params)) {
    cJSON_Delete(params);
    return PH_EINVAL;
  }
  /* ph__call_ask takes params on every path. */
  return ph__abi_error(
      ph__call_ask(call, cap, key, method, params, result_json));
}

static int api_set_state(ph_call *call, const char *state) {
  if (call == NULL)
    return PH_EINVAL;
  return ph__abi_error(ph__call_set_state(call, state));
}

static const char *api_get_state(const ph_call *call) {
  return call ? ph__call_state(call) : NULL;
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
  return ph__abi_error(ph__call_close_stream(call));
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
