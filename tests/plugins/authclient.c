/* authclient.c: the host's side of the auth plugin's "authn" service in
 * miniature, for tests: its one tool hands its `request` argument to
 * api->service_call("authn") and replies with the answer (a principal or
 * a refusal), or the service's error as an isError result. */
#include <plughost.h>

static void tool_call(ph_call *call, const char *args_json, void *state) {
  const ph_host_api *api = ph_call_api(call);
  ph_args *a = ph_args_parse(args_json);
  const char *request = ph_args_json(a, "request");
  char *response = NULL;
  int err;

  (void)state;
  if (request == NULL) {
    ph_reply_text(api, call, "request: an object is required", 1);
    goto cleanup;
  }
  err = api->service_call(call, "authn", request, &response);
  if (err == PH_OK)
    ph_reply_structured(api, call, response, 0);
  else if (err == PH_EFAIL)
    ph_reply_text(api, call, response, 1);
  else
    ph_reply_textf(api, call, 1, "service_call failed: %d", err);

cleanup:
  if (response != NULL)
    api->free(response);
  ph_args_free(a);
}

PH_PLUGIN(.name = "authclient", .version = "1.0",
          .description = "Calls the authn service (tests)",
          .requires = (const char *const[]){"authn", NULL},
          .tools = (const ph_tool[]){
              {.name = "call",
               .description = "Sends request to the authn service.",
               .input_schema = "{\"type\":\"object\",\"properties\":{"
                               "\"request\":{\"type\":\"object\"}},"
                               "\"required\":[\"request\"]}",
               .handler = tool_call},
              {0}});
