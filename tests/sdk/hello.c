/* hello.c: a plugin built outside the tree against the installed SDK, to
 * prove plughost.h, libplughost_sdk.a and plughost.pc are enough. */
#include <plughost.h>

static const ph_host_api *host;

static void tool_greet(ph_call *call, const char *args, void *state) {
  (void)args;
  (void)state;
  ph_reply_textf(host, call, 0, "Hello from outside the tree (ABI %d.%d)",
                 PH_ABI_MAJOR, PH_ABI_MINOR);
}

static int hello_init(ph_instance *self, const ph_host_api *api,
                      const char *config, void **state) {
  (void)self;
  (void)config;
  host = api;
  *state = NULL;
  return 0;
}

static const ph_tool hello_tools[] = {
    {.name = "greet",
     .description = "Says hello from an out-of-tree plugin.",
     .input_schema = "{\"type\":\"object\",\"properties\":{}}",
     .annotations = {.read_only = PH_HINT_TRUE},
     .handler = tool_greet},
    {0}};

PH_PLUGIN(.name = "hello", .version = "1.0.0",
          .description = "SDK example built out of tree", .init = hello_init,
          .tools = hello_tools)
