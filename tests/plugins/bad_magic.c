/* bad_magic.c: a descriptor with the wrong magic number; the host must
 * refuse it with a clear log line and keep serving the other plugins. */
#include <plughost.h>

static void tool_never(ph_call *call, const char *args, void *state) {
  (void)call;
  (void)args;
  (void)state;
}

static const ph_tool bad_magic_tools[] = {
    {.name = "never", .description = "Never listed.", .handler = tool_never},
    {0}};

/* Written by hand because PH_PLUGIN always fills in the right magic. */
static const ph_plugin_desc bad_magic_desc = {
    .magic = 0x21444142u, /* "BAD!" */
    .size = sizeof(ph_plugin_desc),
    .abi_major = PH_ABI_MAJOR,
    .abi_minor = PH_ABI_MINOR,
    .tool_size = sizeof(ph_tool),
    .resource_size = sizeof(ph_resource),
    .template_size = sizeof(ph_resource_template),
    .prompt_size = sizeof(ph_prompt),
    .name = "bad-magic",
    .version = "1.0.0",
    .description = "Fixture: wrong magic",
    .tools = bad_magic_tools};

PH_EXPORT const ph_plugin_desc *ph_plugin_entry(void);
const ph_plugin_desc *ph_plugin_entry(void) {
  return &bad_magic_desc;
}
