/* args.c: a tool that answers with the arguments text the host handed it,
 * so tests can see what a plugin receives (numbers past 2^53, escapes and
 * spacing as the client wrote them). */
#include <plughost.h>

static void tool_show(ph_call *call, const char *args, void *state) {
  (void)state;
  ph_reply_text(ph_call_api(call), call, args, 0);
}

static const ph_tool args_tools[] = {
    {.name = "show",
     .description = "Returns the arguments text the plugin received.",
     .input_schema = "{\"type\":\"object\"}",
     .annotations = {.read_only = PH_HINT_TRUE},
     .handler = tool_show},
    {0}};

PH_PLUGIN(.name = "args", .version = "1.0.0",
          .description = "Fixture: shows the arguments a tool receives",
          .tools = args_tools)
