/* dup_tool.c: two tools with the same name in one plugin; the host must
 * refuse the duplicate and log it rather than shadow one with the other. */
#include <plughost.h>

static const ph_host_api *host;

static void tool_first(ph_call *call, const char *args, void *state) {
  (void)args;
  (void)state;
  ph_reply_text(host, call, "first", 0);
}

static void tool_second(ph_call *call, const char *args, void *state) {
  (void)args;
  (void)state;
  ph_reply_text(host, call, "second", 0);
}

static int dup_init(ph_instance *self, const ph_host_api *api,
                    const char *config, void **state) {
  (void)self;
  (void)config;
  host = api;
  *state = NULL;
  return 0;
}

static const ph_tool dup_tools[] = {
    {.name = "same", .description = "The first of two.", .handler = tool_first},
    {.name = "same",
     .description = "The second of two.",
     .handler = tool_second},
    {.name = "unique", .description = "Not duplicated.", .handler = tool_first},
    {0}};

PH_PLUGIN(.name = "dup-tool", .version = "1.0.0",
          .description = "Fixture: duplicate tool names", .init = dup_init,
          .tools = dup_tools)
