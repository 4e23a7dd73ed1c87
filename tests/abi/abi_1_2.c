/* abi_1_2.c: a plugin built against the frozen 1.2 header (tests/abi/1.2).
 * It checks api->size the way 1.2 plugins had to (before PH_API_HAS) and
 * uses the 1.1 and 1.2 additions: set_ready during init and run_in_pool
 * from an inline tool. */
#include <plughost.h>

#include <stdio.h>

#if PH_ABI_MAJOR != 1 || PH_ABI_MINOR != 2
#error "abi_1_2.c must be built against tests/abi/1.2/plughost.h"
#endif

static const ph_host_api *host;

static int abi_init(ph_instance *self, const ph_host_api *api,
                    const char *config, void **state) {
  (void)config;
  host = api;
  *state = NULL;
  if (api->size < offsetof(ph_host_api, run_in_pool) + sizeof(api->run_in_pool))
    return -1;
  return api->set_ready(self, 1, NULL) == PH_OK ? 0 : -1;
}

static void on_worker(ph_call *call, void *arg) {
  char reply[256];

  snprintf(
      reply, sizeof(reply),
      "{\"content\":[{\"type\":\"text\",\"text\":\"1.2 %s on a worker\"}]}",
      (const char *)arg);
  host->reply(call, reply);
}

static void tool_pooled(ph_call *call, const char *args, void *state) {
  static char tag[] = "ran";

  (void)args;
  (void)state;
  if (host->run_in_pool(call, on_worker, tag) != PH_OK)
    host->reply_error(call, PH_RPC_INTERNAL_ERROR, "pool refused", NULL);
}

static const ph_tool abi_tools[] = {
    {.name = "pooled",
     .description = "An inline tool that hands itself to the worker pool.",
     .input_schema = "{\"type\":\"object\"}",
     .run_inline = 1,
     .handler = tool_pooled},
    {0}};

PH_PLUGIN(.name = "abi12", .version = "1.2.0",
          .description = "Fixture: built against the ABI 1.2 header",
          .init = abi_init, .tools = abi_tools)
