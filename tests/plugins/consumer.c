/* consumer.c: requires the "kv" service and reaches it only through
 * api->service_call, for dependency, service and reload tests. */
#include <plughost.h>

#include <cJSON.h>
#include <stdlib.h>

static const ph_host_api *host;

/* Sends one kv request built from the arguments and returns the parsed
 * response, or replies with the error itself and returns NULL. */
static cJSON *call_kv(ph_call *call, cJSON *request) {
  char *text, *response = NULL;
  cJSON *parsed;
  int err;

  text = cJSON_PrintUnformatted(request);
  if (text == NULL) {
    host->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
    return NULL;
  }
  err = host->service_call(call, "kv", text, &response);
  cJSON_free(text);
  if (err != PH_OK) {
    /* On PH_EFAIL the response is the provider's error object; say it. */
    ph_reply_textf(host, call, 1, "kv service failed (%d): %s", err,
                   response ? response : "no response");
    host->free(response);
    return NULL;
  }
  parsed = cJSON_Parse(response);
  host->free(response);
  if (parsed == NULL)
    ph_reply_text(host, call, "kv service sent invalid JSON", 1);
  return parsed;
}

static void tool_lookup(ph_call *call, const char *args, void *state) {
  cJSON *in, *request, *response, *value;
  char *text;

  (void)state;
  in = cJSON_Parse(args);
  request = cJSON_CreateObject();
  cJSON_AddStringToObject(request, "op", "get");
  cJSON_AddItemToObject(
      request, "key",
      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(in, "key"), 1));
  cJSON_Delete(in);
  response = call_kv(call, request);
  cJSON_Delete(request);
  if (response == NULL)
    return;
  value = cJSON_GetObjectItemCaseSensitive(response, "value");
  if (cJSON_IsString(value)) {
    ph_reply_text(host, call, value->valuestring, 0);
  } else if (value != NULL) {
    text = cJSON_PrintUnformatted(value);
    ph_reply_text(host, call, text ? text : "", 0);
    cJSON_free(text);
  } else {
    ph_reply_text(host, call, "not found", 1);
  }
  cJSON_Delete(response);
}

static void tool_store(ph_call *call, const char *args, void *state) {
  cJSON *request, *response;

  (void)state;
  request = cJSON_Parse(args);
  if (request == NULL) {
    host->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
    return;
  }
  /* The arguments are already {key, value}; only the op is missing. */
  cJSON_AddStringToObject(request, "op", "put");
  response = call_kv(call, request);
  cJSON_Delete(request);
  if (response == NULL)
    return;
  ph_reply_text(host, call, "stored", 0);
  cJSON_Delete(response);
}

static int consumer_init(ph_instance *self, const ph_host_api *api,
                         const char *config, void **state) {
  (void)self;
  (void)config;
  host = api;
  *state = NULL;
  return 0;
}

static const ph_tool consumer_tools[] = {
    {.name = "lookup",
     .description = "Returns the value stored under key in the kv service.",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"key\":"
                     "{\"type\":\"string\"}},\"required\":[\"key\"]}",
     .annotations = {.read_only = PH_HINT_TRUE},
     .handler = tool_lookup},
    {.name = "store",
     .description = "Stores value under key in the kv service.",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"key\":"
                     "{\"type\":\"string\"},\"value\":{\"type\":\"string\"}},"
                     "\"required\":[\"key\",\"value\"]}",
     .handler = tool_store},
    {0}};

PH_PLUGIN(.name = "consumer", .version = "1.0.0",
          .description = "Fixture: uses the kv service",
          .requires = (const char *const[]){"kv", NULL}, .init = consumer_init,
          .tools = consumer_tools)
