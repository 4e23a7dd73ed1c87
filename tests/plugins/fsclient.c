/* fsclient.c: a domain plugin in miniature for the files plugin's "fs"
 * service, as the sales plugin will use it to write its reports: its one
 * tool hands its `request` argument to api->service_call("fs") and replies
 * with the service's answer, or its error as an isError result. */
#include <plughost.h>

#include <stdio.h>

typedef struct client {
  const ph_host_api *api;
} client;

static int init(ph_instance *self, const ph_host_api *api,
                const char *config_json, void **state) {
  static client c;

  (void)self;
  (void)config_json;
  c.api = api;
  *state = &c;
  return 0;
}

static void tool_call(ph_call *call, const char *args_json, void *state) {
  client *c = state;
  ph_args *a = ph_args_parse(args_json);
  const char *request = ph_args_json(a, "request");
  char *response = NULL;
  int err;

  if (request == NULL) {
    ph_reply_text(c->api, call, "request: an object is required", 1);
    goto cleanup;
  }
  err = c->api->service_call(call, "fs", request, &response);
  if (err == PH_OK)
    ph_reply_structured(c->api, call, response, 0);
  else if (err == PH_EFAIL)
    ph_reply_text(c->api, call, response, 1);
  else
    ph_reply_textf(c->api, call, 1, "service_call failed: %d", err);

cleanup:
  if (response != NULL)
    c->api->free(response);
  ph_args_free(a);
}

PH_PLUGIN(.name = "fsclient", .version = "1.0",
          .description = "Calls the fs service (tests)",
          .requires = (const char *const[]){"fs", NULL}, .init = init,
          .tools = (const ph_tool[]){
              {.name = "call",
               .description = "Sends request to the fs service.",
               .input_schema = "{\"type\":\"object\",\"properties\":{"
                               "\"request\":{\"type\":\"object\"}},"
                               "\"required\":[\"request\"]}",
               .handler = tool_call},
              {0}});
