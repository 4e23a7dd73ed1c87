/* short_size.c: a descriptor whose size field is smaller than the fields the
 * host reads; the host must refuse it rather than read past its end. */
#include <plughost.h>

static void tool_never(ph_call *call, const char *args, void *state) {
  (void)call;
  (void)args;
  (void)state;
}

static const ph_tool short_size_tools[] = {
    {.name = "never", .description = "Never listed.", .handler = tool_never},
    {0}};

/* Written by hand because PH_PLUGIN always fills in the real size. */
static const ph_plugin_desc short_size_desc = {
    .magic = PH_MAGIC,
    .size = offsetof(ph_plugin_desc, tools),
    .abi_major = PH_ABI_MAJOR,
    .abi_minor = PH_ABI_MINOR,
    .tool_size = sizeof(ph_tool),
    .resource_size = sizeof(ph_resource),
    .template_size = sizeof(ph_resource_template),
    .prompt_size = sizeof(ph_prompt),
    .name = "short-size",
    .version = "1.0.0",
    .description = "Fixture: short descriptor size",
    .tools = short_size_tools};

PH_EXPORT const ph_plugin_desc *ph_plugin_entry(void);
const ph_plugin_desc *ph_plugin_entry(void) {
  return &short_size_desc;
}
