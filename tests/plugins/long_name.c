/* long_name.c: a 70-character tool name, over the 64 the host allows for
 * an unprefixed name; the host must refuse it and name it in the log. */
#include <plughost.h>

static const ph_host_api *host;

static void tool_reply(ph_call *call, const char *args, void *state) {
  (void)args;
  (void)state;
  ph_reply_text(host, call, "called", 0);
}

static int long_name_init(ph_instance *self, const ph_host_api *api,
                          const char *config, void **state) {
  (void)self;
  (void)config;
  host = api;
  *state = NULL;
  return 0;
}

/* 70 characters: 7 groups of 10. */
#define LONG_NAME                                                              \
  "a123456789b123456789c123456789d123456789e123456789f123456789g123456789"
_Static_assert(sizeof(LONG_NAME) - 1 == 70, "LONG_NAME must be 70 chars");

static const ph_tool long_name_tools[] = {
    {.name = LONG_NAME, .description = "Too long.", .handler = tool_reply},
    {.name = "fine", .description = "A valid name.", .handler = tool_reply},
    {0}};

PH_PLUGIN(.name = "long-name", .version = "1.0.0",
          .description = "Fixture: a 70-character tool name",
          .init = long_name_init, .tools = long_name_tools)
