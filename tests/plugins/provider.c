/* provider.c: provides the "kv" service (get/put under a mutex) and a tool
 * reporting a build-time version, for service calls and reload tests. */
#include <plughost.h>

#include <cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Reload tests build a second copy with a different value and swap it in. */
#ifndef PROVIDER_VERSION
#define PROVIDER_VERSION "1"
#endif

/* One instance's store: a JSON object of key -> value, guarded because
 * service calls arrive on many worker threads at once. */
typedef struct {
  const ph_host_api *api;
  pthread_mutex_t lock;
  cJSON *store;
} provider_state;

static void reply_json(const ph_host_api *api, ph_call *call, cJSON *result) {
  char *text;

  text = result ? cJSON_PrintUnformatted(result) : NULL;
  cJSON_Delete(result);
  if (text == NULL) {
    api->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
    return;
  }
  api->reply(call, text);
  cJSON_free(text);
}

/* {"op":"get","key":k} -> {"found":true,"value":v} or {"found":false}. */
static cJSON *kv_get(provider_state *st, const char *key) {
  cJSON *result, *value;

  result = cJSON_CreateObject();
  pthread_mutex_lock(&st->lock);
  value = cJSON_GetObjectItemCaseSensitive(st->store, key);
  cJSON_AddBoolToObject(result, "found", value != NULL);
  if (value != NULL)
    cJSON_AddItemToObject(result, "value", cJSON_Duplicate(value, 1));
  pthread_mutex_unlock(&st->lock);
  return result;
}

/* {"op":"put","key":k,"value":v} -> {"ok":true}; v is any JSON value. */
static cJSON *kv_put(provider_state *st, const char *key, const cJSON *value) {
  cJSON *copy, *result;

  copy = cJSON_Duplicate(value, 1);
  if (copy == NULL)
    return NULL;
  pthread_mutex_lock(&st->lock);
  if (cJSON_HasObjectItem(st->store, key))
    cJSON_ReplaceItemInObjectCaseSensitive(st->store, key, copy);
  else
    cJSON_AddItemToObject(st->store, key, copy);
  pthread_mutex_unlock(&st->lock);
  result = cJSON_CreateObject();
  cJSON_AddBoolToObject(result, "ok", 1);
  return result;
}

static void serve(ph_call *call, const char *service, const char *request,
                  void *state) {
  provider_state *st = state;
  cJSON *root, *op, *key, *value;

  if (strcmp(service, "kv") != 0) {
    st->api->reply_error(call, PH_RPC_INVALID_PARAMS, "unknown service", NULL);
    return;
  }
  root = cJSON_Parse(request);
  op = cJSON_GetObjectItemCaseSensitive(root, "op");
  key = cJSON_GetObjectItemCaseSensitive(root, "key");
  value = cJSON_GetObjectItemCaseSensitive(root, "value");
  if (!cJSON_IsString(op) || !cJSON_IsString(key))
    st->api->reply_error(call, PH_RPC_INVALID_PARAMS,
                         "kv: op and key must be strings", NULL);
  else if (strcmp(op->valuestring, "get") == 0)
    reply_json(st->api, call, kv_get(st, key->valuestring));
  else if (strcmp(op->valuestring, "put") == 0 && value != NULL)
    reply_json(st->api, call, kv_put(st, key->valuestring, value));
  else
    st->api->reply_error(call, PH_RPC_INVALID_PARAMS,
                         "kv: op is get, or put with a value", NULL);
  cJSON_Delete(root);
}

static void tool_version(ph_call *call, const char *args, void *state) {
  provider_state *st = state;

  (void)args;
  ph_reply_text(st->api, call, PROVIDER_VERSION, 0);
}

static int provider_init(ph_instance *self, const ph_host_api *api,
                         const char *config, void **state) {
  provider_state *st;

  (void)config;
  st = calloc(1, sizeof(*st));
  if (st == NULL || (st->store = cJSON_CreateObject()) == NULL) {
    free(st);
    api->log(self, PH_LOG_ERROR, "provider: out of memory");
    return -1;
  }
  st->api = api;
  pthread_mutex_init(&st->lock, NULL);
  *state = st;
  return 0;
}

static void provider_fini(void *state) {
  provider_state *st = state;

  pthread_mutex_destroy(&st->lock);
  cJSON_Delete(st->store);
  free(st);
}

static const ph_tool provider_tools[] = {
    {.name = "version",
     .description = "Returns the version this plugin was built with.",
     .annotations = {.read_only = PH_HINT_TRUE},
     .handler = tool_version},
    {0}};

PH_PLUGIN(.name = "provider", .version = PROVIDER_VERSION,
          .description = "Fixture: provides the kv service",
          .provides = (const char *const[]){"kv", NULL}, .init = provider_init,
          .fini = provider_fini, .tools = provider_tools, .service = serve)
