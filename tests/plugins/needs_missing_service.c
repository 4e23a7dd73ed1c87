/* needs_missing_service.c: requires a service no plugin provides; the host
 * must refuse to load it (or keep it out of every list) and say which. */
#include <plughost.h>

static const ph_host_api *host;

static void tool_reply(ph_call *call, const char *args, void *state) {
  (void)args;
  (void)state;
  ph_reply_text(host, call, "called", 0);
}

static int needs_init(ph_instance *self, const ph_host_api *api,
                      const char *config, void **state) {
  (void)self;
  (void)config;
  host = api;
  *state = NULL;
  return 0;
}

static const ph_tool needs_tools[] = {
    {.name = "orphan",
     .description = "Depends on no-such-service.",
     .handler = tool_reply},
    {0}};

PH_PLUGIN(.name = "needs-missing", .version = "1.0.0",
          .description = "Fixture: requires a missing service",
          .requires = (const char *const[]){"no-such-service", NULL},
          .init = needs_init, .tools = needs_tools)
