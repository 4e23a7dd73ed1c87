/* abi_1_0.c: a plugin built against the frozen 1.0 header (tests/abi/1.0),
 * as a plugin compiled when 1.0 shipped would be. It uses only what 1.0
 * offered, through the API table alone (no SDK), so it proves the host keeps
 * the 1.0 layouts of the descriptor, the item tables and ph_host_api. */
#include <plughost.h>

#include <stdio.h>
#include <string.h>

#if PH_ABI_MAJOR != 1 || PH_ABI_MINOR != 0
#error "abi_1_0.c must be built against tests/abi/1.0/plughost.h"
#endif

static const ph_host_api *host;

static int abi_init(ph_instance *self, const ph_host_api *api,
                    const char *config, void **state) {
  (void)config;
  host = api;
  *state = NULL;
  host->log(self, PH_LOG_INFO, "abi 1.0 plugin sees an API table of %zu bytes",
            api->size);
  return 0;
}

/* The argument is a lowercase word (the input schema says so), so it needs
 * no escaping inside the reply. */
static void tool_echo(ph_call *call, const char *args, void *state) {
  char reply[512];
  const char *word = strstr(args, "\"word\"");
  const char *start, *end;

  (void)state;
  start = word ? strchr(word + 6, '"') : NULL;
  end = start ? strchr(start + 1, '"') : NULL;
  if (end == NULL) {
    host->reply_error(call, PH_RPC_INVALID_PARAMS, "no word", NULL);
    return;
  }
  snprintf(reply, sizeof(reply),
           "{\"content\":[{\"type\":\"text\",\"text\":\"1.0 says %.*s\"}]}",
           (int)(end - start - 1), start + 1);
  host->reply(call, reply);
}

static void read_static(ph_call *call, const char *uri, const char *vars,
                        void *state) {
  char reply[512];

  (void)vars;
  (void)state;
  snprintf(reply, sizeof(reply),
           "{\"contents\":[{\"uri\":\"%s\",\"text\":\"static 1.0\"}]}", uri);
  host->reply(call, reply);
}

/* vars is {"id":"..."}, and the tests ask only for plain ids. */
static void read_item(ph_call *call, const char *uri, const char *vars,
                      void *state) {
  char reply[512];
  const char *id = strstr(vars, "\"id\":\"");

  (void)state;
  if (id == NULL || strchr(id + 6, '"') == NULL) {
    host->reply_error(call, PH_RPC_INVALID_PARAMS, "no id", NULL);
    return;
  }
  id += 6;
  snprintf(reply, sizeof(reply),
           "{\"contents\":[{\"uri\":\"%s\",\"text\":\"item %.*s\"}]}", uri,
           (int)(strchr(id, '"') - id), id);
  host->reply(call, reply);
}

static void prompt_greet(ph_call *call, const char *args, void *state) {
  (void)args;
  (void)state;
  host->reply(call, "{\"messages\":[{\"role\":\"user\",\"content\":"
                    "{\"type\":\"text\",\"text\":\"hello from 1.0\"}}]}");
}

static const ph_tool abi_tools[] = {
    {.name = "echo",
     .description = "Echoes a word, from a plugin built for ABI 1.0.",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"word\":"
                     "{\"type\":\"string\",\"pattern\":\"^[a-z]{1,32}$\"}},"
                     "\"required\":[\"word\"]}",
     .annotations = {.read_only = PH_HINT_TRUE},
     .handler = tool_echo},
    {0}};

static const ph_resource abi_resources[] = {
    {.uri = "abi10://static", .name = "static", .handler = read_static}, {0}};

static const ph_resource_template abi_templates[] = {
    {.uri_template = "abi10://items/{id}",
     .name = "item",
     .handler = read_item},
    {0}};

static const ph_prompt abi_prompts[] = {
    {.name = "greet", .description = "A greeting.", .handler = prompt_greet},
    {0}};

PH_PLUGIN(.name = "abi10", .version = "1.0.0",
          .description = "Fixture: built against the ABI 1.0 header",
          .init = abi_init, .tools = abi_tools, .resources = abi_resources,
          .templates = abi_templates, .prompts = abi_prompts)
