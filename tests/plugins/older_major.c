/* older_major.c: built for ABI major 0; a different major is incompatible,
 * so the host must refuse it. */
#include <plughost.h>

static void tool_never(ph_call *call, const char *args, void *state) {
  (void)call;
  (void)args;
  (void)state;
}

static const ph_tool older_major_tools[] = {
    {.name = "never", .description = "Never listed.", .handler = tool_never},
    {0}};

/* Written by hand because PH_PLUGIN always fills in the current major. */
static const ph_plugin_desc older_major_desc = {
    .magic = PH_MAGIC,
    .size = sizeof(ph_plugin_desc),
    .abi_major = 0,
    .abi_minor = PH_ABI_MINOR,
    .tool_size = sizeof(ph_tool),
    .resource_size = sizeof(ph_resource),
    .template_size = sizeof(ph_resource_template),
    .prompt_size = sizeof(ph_prompt),
    .name = "older-major",
    .version = "1.0.0",
    .description = "Fixture: older ABI major",
    .tools = older_major_tools};

PH_EXPORT const ph_plugin_desc *ph_plugin_entry(void);
const ph_plugin_desc *ph_plugin_entry(void) {
  return &older_major_desc;
}
