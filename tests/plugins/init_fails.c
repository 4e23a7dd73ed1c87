/* init_fails.c: init logs why and returns -1; the host must skip the
 * instance, keep its log line, and serve the other plugins. */
#include <plughost.h>

static void tool_unreachable(ph_call *call, const char *args, void *state) {
  (void)call;
  (void)args;
  (void)state;
}

static int init_fails_init(ph_instance *self, const ph_host_api *api,
                           const char *config, void **state) {
  (void)config;
  *state = NULL;
  api->log(self, PH_LOG_ERROR,
           "init-fails: refusing to start (this fixture always fails)");
  return -1;
}

static const ph_tool init_fails_tools[] = {
    {.name = "unreachable",
     .description = "Never listed: init fails.",
     .handler = tool_unreachable},
    {0}};

PH_PLUGIN(.name = "init-fails", .version = "1.0.0",
          .description = "Fixture: init returns -1", .init = init_fails_init,
          .tools = init_fails_tools)
