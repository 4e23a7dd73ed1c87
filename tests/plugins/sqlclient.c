/* sqlclient.c: a domain plugin in miniature. It requires the "sql" service
 * and reaches the database only through api->service_call, so tests can
 * check what a domain plugin gets from the database foundation plugin:
 * typed rows, refusals and limits, the same as a client of db_query. */
#include <plughost.h>

#include <cJSON.h>
#include <stdlib.h>

/* Copies member `name` of `from` into `to`, if present. */
static void copy_member(cJSON *to, const cJSON *from, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, name);

  if (v != NULL)
    cJSON_AddItemToObject(to, name, cJSON_Duplicate(v, 1));
}

/* Builds the request from the tool's own arguments, so the tests see that
 * a plugin passes only what the service documents. */
static void tool_rows(ph_call *call, const char *args_json, void *state) {
  const ph_host_api *host = ph_call_api(call);
  cJSON *args = cJSON_Parse(args_json), *request = cJSON_CreateObject();
  char *text = NULL, *response = NULL;
  int err;

  (void)state;
  copy_member(request, args, "sql");
  copy_member(request, args, "params");
  copy_member(request, args, "limit");
  copy_member(request, args, "cursor");
  text = cJSON_PrintUnformatted(request);
  if (text == NULL) {
    host->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
    goto cleanup;
  }
  err = host->service_call(call, "sql", text, &response);
  if (err == PH_OK)
    ph_reply_structured(host, call, response, 0);
  else
    /* On PH_EFAIL the response is the provider's error object, whose
     * message and data.reason the tests read back from the text. */
    ph_reply_textf(host, call, 1, "sql service failed (%d): %s", err,
                   response != NULL ? response : "no response");

cleanup:
  host->free(response);
  cJSON_free(text);
  cJSON_Delete(request);
  cJSON_Delete(args);
}

static const ph_tool sqlclient_tools[] = {
    {.name = "rows",
     .description = "Runs a read-only query through the sql service and "
                    "returns its rows.",
     .input_schema =
         "{\"type\":\"object\",\"properties\":{\"sql\":{\"type\":\"string\"},"
         "\"params\":{\"type\":\"array\"},\"limit\":{\"type\":\"integer\"},"
         "\"cursor\":{\"type\":\"string\"}},\"required\":[\"sql\"]}",
     .annotations = {.read_only = PH_HINT_TRUE},
     .handler = tool_rows},
    {0}};

PH_PLUGIN(.name = "sqlclient", .version = "1.0.0",
          .description = "Fixture: reads through the sql service",
          .requires = (const char *const[]){"sql", NULL},
          .tools = sqlclient_tools)
