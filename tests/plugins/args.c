/* args.c: a tool that answers with the arguments text the host handed it,
 * so tests can see what a plugin receives (numbers past 2^53, escapes and
 * spacing as the client wrote them), and one whose structured result
 * breaks its own outputSchema, for the host's check of it. */
#include <plughost.h>

static void tool_show(ph_call *call, const char *args, void *state) {
  (void)state;
  ph_reply_text(ph_call_api(call), call, args, 0);
}

/* {"n": "not a number"} against an outputSchema that wants an integer. */
static void tool_bad_shape(ph_call *call, const char *args, void *state) {
  (void)args;
  (void)state;
  ph_reply_structured(ph_call_api(call), call, "{\"n\":\"not a number\"}", 0);
}

static const ph_tool args_tools[] = {
    {.name = "show",
     .description = "Returns the arguments text the plugin received.",
     .input_schema = "{\"type\":\"object\"}",
     .annotations = {.read_only = PH_HINT_TRUE},
     .handler = tool_show},
    {.name = "bad_shape",
     .description = "Returns structured content its outputSchema refuses.",
     .input_schema = "{\"type\":\"object\"}",
     .output_schema = "{\"type\":\"object\",\"properties\":{\"n\":{"
                      "\"type\":\"integer\"}},\"required\":[\"n\"]}",
     .annotations = {.read_only = PH_HINT_TRUE},
     .handler = tool_bad_shape},
    {0}};

PH_PLUGIN(.name = "args", .version = "1.0.0",
          .description = "Fixture: shows the arguments a tool receives",
          .tools = args_tools)
