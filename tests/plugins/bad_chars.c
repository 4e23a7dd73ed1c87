/* bad_chars.c: tool names outside [A-Za-z0-9_-] (a space, a dot); the host
 * must refuse them by name instead of exposing names clients can't call. */
#include <plughost.h>

static const ph_host_api *host;

static void tool_reply(ph_call *call, const char *args, void *state) {
  (void)args;
  (void)state;
  ph_reply_text(host, call, "called", 0);
}

static int bad_chars_init(ph_instance *self, const ph_host_api *api,
                          const char *config, void **state) {
  (void)self;
  (void)config;
  host = api;
  *state = NULL;
  return 0;
}

static const ph_tool bad_chars_tools[] = {
    {.name = "has space", .description = "A space.", .handler = tool_reply},
    {.name = "has.dot", .description = "A dot.", .handler = tool_reply},
    {.name = "fine", .description = "A valid name.", .handler = tool_reply},
    {0}};

PH_PLUGIN(.name = "bad-chars", .version = "1.0.0",
          .description = "Fixture: invalid characters in tool names",
          .init = bad_chars_init, .tools = bad_chars_tools)
