/* newer_minor.c: built for a newer ABI minor than the host knows; the host
 * must refuse it: the plugin may rely on host API fields it lacks. */
#include <plughost.h>

static void tool_never(ph_call *call, const char *args, void *state) {
  (void)call;
  (void)args;
  (void)state;
}

static const ph_tool newer_minor_tools[] = {
    {.name = "never", .description = "Never listed.", .handler = tool_never},
    {0}};

/* Written by hand because PH_PLUGIN always fills in the current minor. */
static const ph_plugin_desc newer_minor_desc = {
    .magic = PH_MAGIC,
    .size = sizeof(ph_plugin_desc),
    .abi_major = PH_ABI_MAJOR,
    .abi_minor = PH_ABI_MINOR + 1,
    .tool_size = sizeof(ph_tool),
    .resource_size = sizeof(ph_resource),
    .template_size = sizeof(ph_resource_template),
    .prompt_size = sizeof(ph_prompt),
    .name = "newer-minor",
    .version = "1.0.0",
    .description = "Fixture: newer ABI minor",
    .tools = newer_minor_tools};

PH_EXPORT const ph_plugin_desc *ph_plugin_entry(void);
const ph_plugin_desc *ph_plugin_entry(void) {
  return &newer_minor_desc;
}
