/* hello.c: a plugin built outside the tree against the installed SDK, to
 * prove plughost.h, libplughost_sdk.a and plughost.pc are enough. */
#include <plughost.h>

/* No init and no saved table: the call leads to the host's (ABI 1.3). */
static void tool_greet(ph_call *call, const char *args, void *state) {
  (void)args;
  (void)state;
  ph_reply_textf(ph_call_api(call), call, 0,
                 "Hello from outside the tree (ABI %d.%d)", PH_ABI_MAJOR,
                 PH_ABI_MINOR);
}

static const ph_tool hello_tools[] = {
    {.name = "greet",
     .description = "Says hello from an out-of-tree plugin.",
     .input_schema = "{\"type\":\"object\",\"properties\":{}}",
     .annotations = {.read_only = PH_HINT_TRUE},
     .handler = tool_greet},
    {0}};

PH_PLUGIN(.name = "hello", .version = "1.0.0",
          .description = "SDK example built out of tree", .tools = hello_tools)
