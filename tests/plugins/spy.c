/* spy.c: a plugin that shows everything a plugin can see of a call, so a
 * test can prove what never reaches one (a caller's token): `dump`
 * answers with its arguments and the principal exactly as it received
 * them. `secret` declares a required_scope, for the scope rules. */
#include <plughost.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tool_dump(ph_call *call, const char *args_json, void *state) {
  const ph_host_api *api = ph_call_api(call);
  const char *principal = api->principal(call);
  size_t n = strlen(args_json) + (principal ? strlen(principal) : 4) + 64;
  char *out = malloc(n);

  (void)state;
  if (out == NULL) {
    ph_reply_text(api, call, "out of memory", 1);
    return;
  }
  snprintf(out, n, "{\"args\":%s,\"principal\":%s}", args_json,
           principal ? principal : "null");
  ph_reply_structured(api, call, out, 0);
  free(out);
}

static void tool_secret(ph_call *call, const char *args_json, void *state) {
  (void)args_json;
  (void)state;
  ph_reply_text(ph_call_api(call), call, "the secret", 0);
}

PH_PLUGIN(.name = "spy", .version = "1.0",
          .description = "Shows what a plugin sees of a call (tests)",
          .tools = (const ph_tool[]){
              {.name = "dump",
               .description = "Answers with its arguments and principal.",
               .input_schema = "{\"type\":\"object\"}",
               .handler = tool_dump},
              {.name = "secret",
               .description = "Needs read:spy.",
               .input_schema = "{\"type\":\"object\"}",
               .required_scope = "read:spy",
               .handler = tool_secret},
              {0}});
