/* bad_layout.c: a descriptor whose tool size matches no published layout
 * (as a plugin built against a hand-edited header would have). Reading its
 * table at either size would misread every tool, so the host must refuse it
 * with one line naming the field and the sizes it knows. */
#include <plughost.h>

static void tool_never(ph_call *call, const char *args, void *state) {
  (void)call;
  (void)args;
  (void)state;
}

/* A ph_tool with a field appended that no published minor has. */
typedef struct {
  ph_tool tool;
  const char *unpublished;
} grown_tool;

static const grown_tool bad_layout_tools[] = {
    {.tool = {.name = "never",
              .description = "Never listed.",
              .handler = tool_never}},
    {{0}, 0}};

/* Written by hand because PH_PLUGIN always fills in the real sizes. */
static const ph_plugin_desc bad_layout_desc = {
    .magic = PH_MAGIC,
    .size = sizeof(ph_plugin_desc),
    .abi_major = PH_ABI_MAJOR,
    .abi_minor = PH_ABI_MINOR,
    .tool_size = sizeof(grown_tool),
    .resource_size = sizeof(ph_resource),
    .template_size = sizeof(ph_resource_template),
    .prompt_size = sizeof(ph_prompt),
    .name = "bad-layout",
    .version = "1.0.0",
    .description = "Fixture: a tool size no published ABI has",
    .tools = (const ph_tool *)bad_layout_tools};

PH_EXPORT const ph_plugin_desc *ph_plugin_entry(void);
const ph_plugin_desc *ph_plugin_entry(void) {
  return &bad_layout_desc;
}
