/* ok.c: a well-formed plugin using every item kind, for the happy paths of
 * loading, listing, calling, progress, logging, reading and completion. */
#define _POSIX_C_SOURCE 200809L

#include <plughost.h>

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Per instance: the host table and our handle, kept from init. */
typedef struct {
  const ph_host_api *api;
  ph_instance *self;
} ok_state;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) != 0)
    ;
}

/* Serialises and sends a built result, then frees it; NULL means the build
 * ran out of memory, which the host hears as an internal error. */
static void reply_json(const ph_host_api *api, ph_call *call, cJSON *result) {
  char *text;

  text = result ? cJSON_PrintUnformatted(result) : NULL;
  cJSON_Delete(result);
  if (text == NULL) {
    api->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
    return;
  }
  api->reply(call, text);
  cJSON_free(text);
}

/* The string member `name` of a JSON object given as text, copied with
 * malloc, or NULL when absent or not a string. */
static char *string_arg(const char *json, const char *name) {
  cJSON *root, *item;
  char *copy = NULL;

  root = cJSON_Parse(json);
  item = cJSON_GetObjectItemCaseSensitive(root, name);
  if (cJSON_IsString(item))
    copy = strdup(item->valuestring);
  cJSON_Delete(root);
  return copy;
}

/* Replies to a completion with the options that start with `prefix`. */
static void complete_from(const ph_host_api *api, ph_call *call,
                          const char *const *options, const char *prefix) {
  cJSON *result, *values;
  size_t n = strlen(prefix);
  int count = 0;

  result = cJSON_CreateObject();
  values = cJSON_AddArrayToObject(result, "values");
  for (; *options != NULL; options++) {
    if (strncmp(*options, prefix, n) != 0)
      continue;
    cJSON_AddItemToArray(values, cJSON_CreateString(*options));
    count++;
  }
  cJSON_AddNumberToObject(result, "total", count);
  cJSON_AddBoolToObject(result, "hasMore", 0);
  reply_json(api, call, result);
}

static void tool_echo(ph_call *call, const char *args, void *state) {
  ok_state *st = state;
  char *text = string_arg(args, "text");

  if (text == NULL) {
    ph_reply_text(st->api, call, "text: a string is required", 1);
    return;
  }
  ph_reply_text(st->api, call, text, 0);
  free(text);
}

static void tool_add(ph_call *call, const char *args, void *state) {
  ok_state *st = state;
  cJSON *root, *a, *b;
  char sum[64];

  root = cJSON_Parse(args);
  a = cJSON_GetObjectItemCaseSensitive(root, "a");
  b = cJSON_GetObjectItemCaseSensitive(root, "b");
  if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b)) {
    cJSON_Delete(root);
    ph_reply_text(st->api, call, "a and b: integers are required", 1);
    return;
  }
  /* %.17g keeps every integer a double can hold exact and prints 5, not
   * 5.0, so the result matches the integer output schema. */
  snprintf(sum, sizeof(sum), "{\"sum\":%.17g}",
           a->valuedouble + b->valuedouble);
  cJSON_Delete(root);
  ph_reply_structured(st->api, call, sum, 0);
}

static void tool_fail(ph_call *call, const char *args, void *state) {
  ok_state *st = state;

  (void)args;
  ph_reply_text(st->api, call, "fail: this tool always fails", 1);
}

static void tool_progress(ph_call *call, const char *args, void *state) {
  ok_state *st = state;
  int step;

  (void)args;
  /* Without a progress token the host answers PH_ENOTSUP; the work and the
   * reply are the same either way. */
  for (step = 1; step <= 3; step++) {
    st->api->progress(call, step, 3, "working");
    sleep_ms(20);
  }
  ph_reply_text(st->api, call, "progress: done in 3 steps", 0);
}

static void tool_log(ph_call *call, const char *args, void *state) {
  ok_state *st = state;

  (void)args;
  st->api->message(call, PH_LOG_DEBUG, "ok", "\"debug message\"");
  st->api->message(call, PH_LOG_INFO, "ok", "\"info message\"");
  st->api->message(call, PH_LOG_WARNING, "ok", "\"warning message\"");
  st->api->message(call, PH_LOG_ERROR, NULL,
                   "{\"text\":\"error message\",\"code\":7}");
  ph_reply_text(st->api, call, "log: sent 4 messages", 0);
}

static void read_hello(ph_call *call, const char *uri, const char *vars,
                       void *state) {
  ok_state *st = state;

  (void)vars;
  ph_reply_resource_text(st->api, call, uri, "text/plain", "Hello from ok");
}

static void read_item(ph_call *call, const char *uri, const char *vars,
                      void *state) {
  ok_state *st = state;
  char *id = string_arg(vars, "id");

  if (id == NULL) {
    st->api->reply_error(call, PH_RPC_INVALID_PARAMS, "id is missing", NULL);
    return;
  }
  /* The id is the whole text so tests can compare it byte for byte. */
  ph_reply_resource_text(st->api, call, uri, "text/plain", id);
  free(id);
}

static void complete_item(ph_call *call, const char *arg, const char *value,
                          const char *context, void *state) {
  static const char *const ids[] = {"1", "2", "3", "42", "100", NULL};
  static const char *const none[] = {NULL};
  ok_state *st = state;

  (void)context;
  complete_from(st->api, call, strcmp(arg, "id") == 0 ? ids : none, value);
}

static void prompt_greet(ph_call *call, const char *args, void *state) {
  ok_state *st = state;
  cJSON *result, *message, *content;
  char *name = string_arg(args, "name");
  char *text;
  size_t len;

  if (name == NULL) {
    st->api->reply_error(call, PH_RPC_INVALID_PARAMS, "name is required", NULL);
    return;
  }
  len = strlen(name) + 32;
  text = malloc(len);
  if (text != NULL)
    snprintf(text, len, "Please greet %s warmly.", name);
  free(name);
  if (text == NULL) {
    st->api->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
    return;
  }
  result = cJSON_CreateObject();
  cJSON_AddStringToObject(result, "description", "A greeting");
  message = cJSON_CreateObject();
  cJSON_AddStringToObject(message, "role", "user");
  content = cJSON_AddObjectToObject(message, "content");
  cJSON_AddStringToObject(content, "type", "text");
  cJSON_AddStringToObject(content, "text", text);
  cJSON_AddItemToArray(cJSON_AddArrayToObject(result, "messages"), message);
  free(text);
  reply_json(st->api, call, result);
}

static void complete_name(ph_call *call, const char *arg, const char *value,
                          const char *context, void *state) {
  static const char *const names[] = {"alice", "albert", "bob", "carol", NULL};
  static const char *const none[] = {NULL};
  ok_state *st = state;

  (void)context;
  complete_from(st->api, call, strcmp(arg, "name") == 0 ? names : none, value);
}

static int ok_init(ph_instance *self, const ph_host_api *api,
                   const char *config, void **state) {
  ok_state *st;

  (void)config;
  st = malloc(sizeof(*st));
  if (st == NULL) {
    api->log(self, PH_LOG_ERROR, "ok: out of memory");
    return -1;
  }
  st->api = api;
  st->self = self;
  *state = st;
  return 0;
}

static void ok_fini(void *state) {
  free(state);
}

static const ph_tool ok_tools[] = {
    {.name = "echo",
     .title = "Echo",
     .description = "Returns the text it is given.",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"text\":"
                     "{\"type\":\"string\",\"description\":\"What to echo\"}},"
                     "\"required\":[\"text\"],\"additionalProperties\":false}",
     .annotations = {.read_only = PH_HINT_TRUE, .idempotent = PH_HINT_TRUE},
     .handler = tool_echo},
    {.name = "add",
     .description = "Adds two integers and returns {sum}.",
     .input_schema = "{\"type\":\"object\",\"properties\":{"
                     "\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"}"
                     "},\"required\":[\"a\",\"b\"]}",
     .output_schema = "{\"type\":\"object\",\"properties\":{\"sum\":"
                      "{\"type\":\"integer\"}},\"required\":[\"sum\"]}",
     .annotations = {.read_only = PH_HINT_TRUE},
     .handler = tool_add},
    {.name = "fail",
     .description = "Always answers with an isError result.",
     .handler = tool_fail},
    {.name = "progress",
     .description = "Reports progress 1/3, 2/3, 3/3, then replies.",
     .handler = tool_progress},
    {.name = "log",
     .description = "Sends log messages at debug, info, warning and error.",
     .handler = tool_log},
    {0}};

static const ph_resource ok_resources[] = {{.uri = "ok://hello",
                                            .name = "hello",
                                            .description = "A fixed greeting.",
                                            .mime_type = "text/plain",
                                            .handler = read_hello},
                                           {0}};

static const ph_resource_template ok_templates[] = {
    {.uri_template = "ok://items/{id}",
     .name = "item",
     .description = "Echoes the item id it is read with.",
     .mime_type = "text/plain",
     .handler = read_item,
     .complete = complete_item},
    {0}};

static const ph_prompt_arg greet_args[] = {
    {.name = "name", .description = "Who to greet", .required = 1}, {0}};

static const ph_prompt ok_prompts[] = {
    {.name = "greet",
     .description = "Asks the model to greet someone.",
     .args = greet_args,
     .handler = prompt_greet,
     .complete = complete_name},
    {0}};

PH_PLUGIN(.name = "ok", .version = "1.0.0",
          .description = "Fixture: a well-formed plugin", .init = ok_init,
          .fini = ok_fini, .tools = ok_tools, .resources = ok_resources,
          .templates = ok_templates, .prompts = ok_prompts)
