/* conformance.c: the tools, resources and prompts the official MCP
 * conformance suite (0.1.16 and 0.2.0-alpha.12) expects, with their exact
 * names, texts and MIME types; run it with an empty prefix. */
#define _POSIX_C_SOURCE 200809L

#include <plughost.h>

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Per instance: the host table, and our handle for list-changed notices. */
typedef struct {
  const ph_host_api *api;
  ph_instance *self;
} conf_state;

/* A 1x1 red PNG. */
static const unsigned char red_png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d,
    0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
    0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53, 0xde, 0x00, 0x00, 0x00,
    0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0xf7, 0x03, 0x41, 0x43, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

/* A WAV file: 16 samples of 8-bit mono silence at 8 kHz. */
static const unsigned char silent_wav[] = {
    0x52, 0x49, 0x46, 0x46, 0x34, 0x00, 0x00, 0x00, 0x57, 0x41, 0x56, 0x45,
    0x66, 0x6d, 0x74, 0x20, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x40, 0x1f, 0x00, 0x00, 0x40, 0x1f, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00,
    0x64, 0x61, 0x74, 0x61, 0x10, 0x00, 0x00, 0x00, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};

/* ---- Small helpers ---- */

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) != 0)
    ;
}

/* printf into malloc'd memory; NULL when out of memory. */
static char *format(const char *fmt, ...) {
  va_list ap;
  char *out;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || (out = malloc((size_t)n + 1)) == NULL)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(out, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return out;
}

/* Sends a built result and frees it; NULL (a failed build) becomes an
 * internal error. */
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

/* Replies with a text block built from a malloc'd string, which it frees. */
static void reply_owned_text(const ph_host_api *api, ph_call *call, char *text,
                             int is_error) {
  if (text == NULL) {
    api->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
    return;
  }
  ph_reply_text(api, call, text, is_error);
  free(text);
}

/* The string member `name` of an object, or `fallback`. */
static const char *member_string(const cJSON *object, const char *name,
                                 const char *fallback) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);

  return cJSON_IsString(item) ? item->valuestring : fallback;
}

static cJSON *text_block(const char *text) {
  cJSON *block = cJSON_CreateObject();

  cJSON_AddStringToObject(block, "type", "text");
  cJSON_AddStringToObject(block, "text", text);
  return block;
}

/* An image or audio block; the bytes are base64-encoded here. */
static cJSON *media_block(const ph_host_api *api, const char *type,
                          const char *mime_type, const unsigned char *data,
                          size_t len) {
  cJSON *block = cJSON_CreateObject();
  char *b64 = ph_base64(api, data, len);

  cJSON_AddStringToObject(block, "type", type);
  cJSON_AddStringToObject(block, "data", b64 ? b64 : "");
  cJSON_AddStringToObject(block, "mimeType", mime_type);
  api->free(b64);
  return block;
}

static cJSON *resource_block(const char *uri, const char *mime_type,
                             const char *text) {
  cJSON *block = cJSON_CreateObject(), *resource;

  cJSON_AddStringToObject(block, "type", "resource");
  resource = cJSON_AddObjectToObject(block, "resource");
  cJSON_AddStringToObject(resource, "uri", uri);
  cJSON_AddStringToObject(resource, "mimeType", mime_type);
  cJSON_AddStringToObject(resource, "text", text);
  return block;
}

/* Replies to a tool call with the NULL-terminated list of content blocks. */
static void reply_content(const ph_host_api *api, ph_call *call, cJSON *first,
                          ...) {
  cJSON *result = cJSON_CreateObject(), *content, *block;
  va_list ap;

  content = cJSON_AddArrayToObject(result, "content");
  va_start(ap, first);
  for (block = first; block != NULL; block = va_arg(ap, cJSON *))
    cJSON_AddItemToArray(content, block);
  va_end(ap);
  reply_json(api, call, result);
}

/* Replies to a prompt get with one user message per content block given,
 * NULL-terminated. */
static void reply_messages(const ph_host_api *api, ph_call *call,
                           const char *description, cJSON *first, ...) {
  cJSON *result = cJSON_CreateObject(), *messages, *message, *content;
  va_list ap;

  cJSON_AddStringToObject(result, "description", description);
  messages = cJSON_AddArrayToObject(result, "messages");
  va_start(ap, first);
  for (content = first; content != NULL; content = va_arg(ap, cJSON *)) {
    message = cJSON_CreateObject();
    cJSON_AddStringToObject(message, "role", "user");
    cJSON_AddItemToObject(message, "content", content);
    cJSON_AddItemToArray(messages, message);
  }
  va_end(ap);
  reply_json(api, call, result);
}

/* ---- Asking the client (legacy requests and modern input rounds) ---- */

/* The request params the scenarios prescribe. */
#define NAME_SCHEMA                                                            \
  "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}},"      \
  "\"required\":[\"name\"]}"
#define ASK_NAME                                                               \
  "{\"message\":\"What is your name?\",\"requestedSchema\":" NAME_SCHEMA "}"
#define ASK_CONFIRM                                                            \
  "{\"message\":\"Please confirm\",\"requestedSchema\":{\"type\":\"object\","  \
  "\"properties\":{\"ok\":{\"type\":\"boolean\"}},\"required\":[\"ok\"]}}"

/* Builds sampling/createMessage params for one user text. */
static char *sampling_params(const char *text, int max_tokens) {
  cJSON *params = cJSON_CreateObject(), *message, *content;
  char *json;

  message = cJSON_CreateObject();
  cJSON_AddStringToObject(message, "role", "user");
  content = cJSON_AddObjectToObject(message, "content");
  cJSON_AddStringToObject(content, "type", "text");
  cJSON_AddStringToObject(content, "text", text);
  cJSON_AddItemToArray(cJSON_AddArrayToObject(params, "messages"), message);
  cJSON_AddNumberToObject(params, "maxTokens", max_tokens);
  json = cJSON_PrintUnformatted(params);
  cJSON_Delete(params);
  return json;
}

/* Asks the client through the host. On PH_OK *out is the parsed result
 * (an object), otherwise NULL. A result that is not an object, which only
 * a broken or hostile client sends, comes back as PH_EINVAL. */
static int ask(const conf_state *st, ph_call *call, const char *key,
               const char *method, const char *params, cJSON **out) {
  char *result = NULL;
  int err;

  *out = NULL;
  if (params == NULL)
    return PH_ENOMEM;
  err = st->api->client_request(call, key, method, params, &result);
  if (err != PH_OK)
    return err;
  *out = cJSON_Parse(result);
  st->api->free(result);
  if (!cJSON_IsObject(*out)) {
    cJSON_Delete(*out);
    *out = NULL;
    return PH_EINVAL;
  }
  return PH_OK;
}

/* Ends a round that is waiting for client input: the host ignores the
 * reply and answers input_required, then calls us again with the answers.
 * The placeholder keeps the method's result shape all the same. */
static void await_input(const conf_state *st, ph_call *call, const char *state,
                        const char *placeholder) {
  if (state != NULL)
    st->api->set_state(call, state);
  st->api->reply(call, placeholder);
}

#define TOOL_PLACEHOLDER "{\"content\":[]}"
#define PROMPT_PLACEHOLDER "{\"messages\":[]}"

/* Replies for an ask() that neither succeeded nor needs another round. */
static void ask_failed(const conf_state *st, ph_call *call, const char *key,
                       int err) {
  if (err == PH_ENOTSUP)
    reply_owned_text(
        st->api, call,
        format("%s: the client lacks the capability this needs", key), 1);
  else if (err == PH_EINVAL)
    st->api->reply_error(call, PH_RPC_INVALID_PARAMS,
                         "malformed input response", NULL);
  else
    reply_owned_text(st->api, call,
                     format("%s: asking the client failed (%d)", key, err), 1);
}

/* An ElicitResult must carry a known action; anything else is rejected so
 * a malformed inputResponses entry never completes the call. */
static int valid_elicit(const cJSON *result) {
  const char *action = member_string(result, "action", "");

  return strcmp(action, "accept") == 0 || strcmp(action, "decline") == 0 ||
         strcmp(action, "cancel") == 0;
}

/* The text of a CreateMessageResult: content is one block or, since
 * 2025-11-25, possibly an array of blocks. */
static const char *sampled_text(const cJSON *result) {
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(result, "content");
  const cJSON *block;

  if (cJSON_IsObject(content))
    return member_string(content, "text", "");
  cJSON_ArrayForEach(block, content) {
    if (strcmp(member_string(block, "type", ""), "text") == 0)
      return member_string(block, "text", "");
  }
  return "";
}

/* "action=accept, content={...}" for an ElicitResult, malloc'd. */
static char *describe_elicit(const cJSON *result) {
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(result, "content");
  char *json = content ? cJSON_PrintUnformatted(content) : NULL;
  char *out;

  out = format("action=%s, content=%s", member_string(result, "action", ""),
               json ? json : "{}");
  cJSON_free(json);
  return out;
}

/* The accepted string field `field` of an ElicitResult, or NULL. */
static const char *elicited(const cJSON *result, const char *field) {
  if (strcmp(member_string(result, "action", ""), "accept") != 0)
    return NULL;
  return member_string(cJSON_GetObjectItemCaseSensitive(result, "content"),
                       field, NULL);
}

/* ---- Legacy tools (2025-11-25 scenarios) ---- */

static void tool_simple_text(ph_call *call, const char *args, void *state) {
  conf_state *st = state;

  (void)args;
  ph_reply_text(st->api, call, "This is a simple text response for testing.",
                0);
}

static void tool_image(ph_call *call, const char *args, void *state) {
  conf_state *st = state;

  (void)args;
  reply_content(
      st->api, call,
      media_block(st->api, "image", "image/png", red_png, sizeof(red_png)),
      NULL);
}

static void tool_audio(ph_call *call, const char *args, void *state) {
  conf_state *st = state;

  (void)args;
  reply_content(st->api, call,
                media_block(st->api, "audio", "audio/wav", silent_wav,
                            sizeof(silent_wav)),
                NULL);
}

static void tool_embedded_resource(ph_call *call, const char *args,
                                   void *state) {
  conf_state *st = state;

  (void)args;
  reply_content(st->api, call,
                resource_block("test://embedded-resource", "text/plain",
                               "This is an embedded resource content."),
                NULL);
}

static void tool_mixed(ph_call *call, const char *args, void *state) {
  conf_state *st = state;

  (void)args;
  reply_content(
      st->api, call, text_block("Multiple content types test:"),
      media_block(st->api, "image", "image/png", red_png, sizeof(red_png)),
      resource_block("test://mixed-content-resource", "application/json",
                     "{\"test\":\"data\",\"value\":123}"),
      NULL);
}

static void tool_with_logging(ph_call *call, const char *args, void *state) {
  conf_state *st = state;

  (void)args;
  /* The pauses let a client see the messages arrive during the call. */
  st->api->message(call, PH_LOG_INFO, NULL, "\"Tool execution started\"");
  sleep_ms(50);
  st->api->message(call, PH_LOG_INFO, NULL, "\"Tool processing data\"");
  sleep_ms(50);
  st->api->message(call, PH_LOG_INFO, NULL, "\"Tool execution completed\"");
  ph_reply_text(st->api, call, "Tool with logging executed successfully", 0);
}

static void tool_with_progress(ph_call *call, const char *args, void *state) {
  conf_state *st = state;

  (void)args;
  /* Without a token the host returns PH_ENOTSUP and the delays remain, as
   * the scenario asks. */
  st->api->progress(call, 0, 100, NULL);
  sleep_ms(50);
  st->api->progress(call, 50, 100, NULL);
  sleep_ms(50);
  st->api->progress(call, 100, 100, NULL);
  ph_reply_text(st->api, call, "Tool with progress executed successfully", 0);
}

static void tool_error(ph_call *call, const char *args, void *state) {
  conf_state *st = state;

  (void)args;
  ph_reply_text(st->api, call,
                "This tool intentionally returns an error for testing", 1);
}

static void tool_sampling(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  cJSON *in = cJSON_Parse(args), *result;
  char *params;
  int err;

  params = sampling_params(member_string(in, "prompt", ""), 100);
  cJSON_Delete(in);
  err = ask(st, call, "sampling", "sampling/createMessage", params, &result);
  cJSON_free(params);
  if (err == PH_EINPUT) {
    await_input(st, call, NULL, TOOL_PLACEHOLDER);
    return;
  }
  if (err != PH_OK) {
    ask_failed(st, call, "test_sampling", err);
    return;
  }
  reply_owned_text(st->api, call,
                   format("LLM response: %s", sampled_text(result)), 0);
  cJSON_Delete(result);
}

/* Runs one elicitation and replies "<prefix><action and content>". */
static void elicit_and_report(conf_state *st, ph_call *call, const char *key,
                              const char *params, const char *prefix) {
  cJSON *result;
  char *summary;
  int err;

  err = ask(st, call, key, "elicitation/create", params, &result);
  if (err == PH_EINPUT) {
    await_input(st, call, NULL, TOOL_PLACEHOLDER);
    return;
  }
  if (err == PH_OK && !valid_elicit(result))
    err = PH_EINVAL;
  if (err != PH_OK) {
    cJSON_Delete(result);
    ask_failed(st, call, key, err);
    return;
  }
  summary = describe_elicit(result);
  cJSON_Delete(result);
  reply_owned_text(st->api, call,
                   summary ? format("%s%s", prefix, summary) : NULL, 0);
  free(summary);
}

static void tool_elicitation(ph_call *call, const char *args, void *state) {
  cJSON *in = cJSON_Parse(args), *params, *schema, *props, *field;
  char *json;

  params = cJSON_CreateObject();
  cJSON_AddStringToObject(params, "message", member_string(in, "message", ""));
  cJSON_Delete(in);
  schema = cJSON_AddObjectToObject(params, "requestedSchema");
  cJSON_AddStringToObject(schema, "type", "object");
  props = cJSON_AddObjectToObject(schema, "properties");
  field = cJSON_AddObjectToObject(props, "username");
  cJSON_AddStringToObject(field, "type", "string");
  cJSON_AddStringToObject(field, "description", "User's response");
  field = cJSON_AddObjectToObject(props, "email");
  cJSON_AddStringToObject(field, "type", "string");
  cJSON_AddStringToObject(field, "description", "User's email address");
  cJSON_AddItemToObject(
      schema, "required",
      cJSON_CreateStringArray((const char *const[]){"username", "email"}, 2));
  json = cJSON_PrintUnformatted(params);
  cJSON_Delete(params);
  elicit_and_report(state, call, "elicitation", json, "User response: ");
  cJSON_free(json);
}

static void tool_sep1034_defaults(ph_call *call, const char *args,
                                  void *state) {
  static const char params[] =
      "{\"message\":\"Please review and update the form fields with "
      "defaults\",\"requestedSchema\":{\"type\":\"object\",\"properties\":{"
      "\"name\":{\"type\":\"string\",\"description\":\"User name\","
      "\"default\":\"John Doe\"},"
      "\"age\":{\"type\":\"integer\",\"description\":\"User age\","
      "\"default\":30},"
      "\"score\":{\"type\":\"number\",\"description\":\"User score\","
      "\"default\":95.5},"
      "\"status\":{\"type\":\"string\",\"description\":\"User status\","
      "\"enum\":[\"active\",\"inactive\",\"pending\"],\"default\":\"active\"},"
      "\"verified\":{\"type\":\"boolean\",\"description\":"
      "\"Verification status\",\"default\":true}}}}";

  (void)args;
  elicit_and_report(state, call, "defaults", params, "Elicitation completed: ");
}

static void tool_sep1330_enums(ph_call *call, const char *args, void *state) {
  static const char params[] =
      "{\"message\":\"Please select options from the enum fields\","
      "\"requestedSchema\":{\"type\":\"object\",\"properties\":{"
      "\"untitledSingle\":{\"type\":\"string\",\"description\":"
      "\"Select one option\",\"enum\":[\"option1\",\"option2\",\"option3\"]},"
      "\"titledSingle\":{\"type\":\"string\",\"description\":"
      "\"Select one titled option\",\"oneOf\":["
      "{\"const\":\"value1\",\"title\":\"First Option\"},"
      "{\"const\":\"value2\",\"title\":\"Second Option\"},"
      "{\"const\":\"value3\",\"title\":\"Third Option\"}]},"
      "\"legacyEnum\":{\"type\":\"string\",\"description\":"
      "\"Select one option (legacy)\",\"enum\":[\"opt1\",\"opt2\",\"opt3\"],"
      "\"enumNames\":[\"Option One\",\"Option Two\",\"Option Three\"]},"
      "\"untitledMulti\":{\"type\":\"array\",\"description\":"
      "\"Select several options\",\"items\":{\"type\":\"string\","
      "\"enum\":[\"option1\",\"option2\",\"option3\"]}},"
      "\"titledMulti\":{\"type\":\"array\",\"description\":"
      "\"Select several titled options\",\"items\":{\"anyOf\":["
      "{\"const\":\"value1\",\"title\":\"First Choice\"},"
      "{\"const\":\"value2\",\"title\":\"Second Choice\"},"
      "{\"const\":\"value3\",\"title\":\"Third Choice\"}]}}}}}";

  (void)args;
  elicit_and_report(state, call, "enums", params, "Elicitation completed: ");
}

static void tool_json_schema(ph_call *call, const char *args, void *state) {
  conf_state *st = state;

  reply_owned_text(st->api, call,
                   format("json_schema_2020_12_tool called with %s", args), 0);
}

/* SEP-1699: the host closes the POST stream mid-call (ABI 1.1), and the
 * result reaches the client when it resumes with GET and Last-Event-ID. */
static void tool_reconnection(ph_call *call, const char *args, void *state) {
  conf_state *st = state;

  (void)args;
  if (st->api->size >=
      offsetof(ph_host_api, close_stream) + sizeof(st->api->close_stream))
    st->api->close_stream(call);
  sleep_ms(100);
  ph_reply_text(st->api, call, "Reconnection test completed", 0);
}

/* ---- Modern tools (2026-07-28 scenarios) ---- */

/* Needs sampling. When the client did not declare it, client_request says
 * PH_ENOTSUP and this isError reply is what the host turns into -32021. */
static void tool_missing_capability(ph_call *call, const char *args,
                                    void *state) {
  conf_state *st = state;
  cJSON *result;
  char *params;
  int err;

  (void)args;
  params = sampling_params("Say something", 50);
  err = ask(st, call, "sampling", "sampling/createMessage", params, &result);
  cJSON_free(params);
  if (err == PH_EINPUT) {
    await_input(st, call, NULL, TOOL_PLACEHOLDER);
    return;
  }
  if (err != PH_OK) {
    ask_failed(st, call, "test_missing_capability", err);
    return;
  }
  reply_owned_text(st->api, call,
                   format("Sampling answered: %s", sampled_text(result)), 0);
  cJSON_Delete(result);
}

/* Streams a notification, then asks for input: on a modern request the
 * stream must hold only notifications and the input_required result. */
static void tool_streaming_elicitation(ph_call *call, const char *args,
                                       void *state) {
  static const char params[] =
      "{\"message\":\"Please confirm to continue\",\"requestedSchema\":{"
      "\"type\":\"object\",\"properties\":{\"confirmed\":{\"type\":"
      "\"boolean\"}},\"required\":[\"confirmed\"]}}";
  conf_state *st = state;

  (void)args;
  st->api->progress(call, 1, 2, "Waiting for confirmation");
  elicit_and_report(st, call, "confirmation", params,
                    "Streaming elicitation completed: ");
}

static void tool_logging(ph_call *call, const char *args, void *state) {
  conf_state *st = state;

  (void)args;
  /* The host must drop both unless the request set a log level. */
  st->api->message(call, PH_LOG_INFO, "conformance",
                   "\"Logging tool: info message\"");
  st->api->message(call, PH_LOG_WARNING, "conformance",
                   "\"Logging tool: warning message\"");
  ph_reply_text(st->api, call, "Logging tool completed", 0);
}

static void tool_trigger_tool_change(ph_call *call, const char *args,
                                     void *state) {
  conf_state *st = state;
  int err;

  (void)args;
  err = st->api->notify(st->self, PH_NOTIFY_TOOLS_CHANGED, NULL);
  reply_owned_text(st->api, call,
                   format("Sent notifications/tools/list_changed (%d)", err),
                   err != PH_OK);
}

static void tool_trigger_prompt_change(ph_call *call, const char *args,
                                       void *state) {
  conf_state *st = state;
  int err;

  (void)args;
  err = st->api->notify(st->self, PH_NOTIFY_PROMPTS_CHANGED, NULL);
  reply_owned_text(st->api, call,
                   format("Sent notifications/prompts/list_changed (%d)", err),
                   err != PH_OK);
}

static void irr_elicitation(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  cJSON *result;
  const char *name;
  int err;

  (void)args;
  err = ask(st, call, "user_name", "elicitation/create", ASK_NAME, &result);
  if (err == PH_EINPUT) {
    await_input(st, call, NULL, TOOL_PLACEHOLDER);
    return;
  }
  if (err == PH_OK && !valid_elicit(result))
    err = PH_EINVAL;
  if (err != PH_OK) {
    cJSON_Delete(result);
    ask_failed(st, call, "user_name", err);
    return;
  }
  name = elicited(result, "name");
  reply_owned_text(st->api, call,
                   format("Hello, %s!", name ? name : "stranger"), 0);
  cJSON_Delete(result);
}

static void irr_sampling(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  cJSON *result;
  char *params;
  int err;

  (void)args;
  params = sampling_params("What is the capital of France?", 100);
  err = ask(st, call, "capital_question", "sampling/createMessage", params,
            &result);
  cJSON_free(params);
  if (err == PH_EINPUT) {
    await_input(st, call, NULL, TOOL_PLACEHOLDER);
    return;
  }
  if (err != PH_OK) {
    ask_failed(st, call, "capital_question", err);
    return;
  }
  reply_owned_text(st->api, call,
                   format("Sampling response: %s", sampled_text(result)), 0);
  cJSON_Delete(result);
}

/* "uri, uri" of a ListRootsResult, malloc'd. */
static char *describe_roots(const cJSON *result) {
  const cJSON *roots = cJSON_GetObjectItemCaseSensitive(result, "roots");
  const cJSON *root;
  char *out = format("%s", ""), *grown;

  cJSON_ArrayForEach(root, roots) {
    if (out == NULL)
      return NULL;
    grown = format("%s%s%s", out, *out ? ", " : "",
                   member_string(root, "uri", "?"));
    free(out);
    out = grown;
  }
  return out;
}

static void irr_list_roots(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  cJSON *result;
  char *roots;
  int err;

  (void)args;
  err = ask(st, call, "client_roots", "roots/list", "{}", &result);
  if (err == PH_EINPUT) {
    await_input(st, call, NULL, TOOL_PLACEHOLDER);
    return;
  }
  if (err != PH_OK) {
    ask_failed(st, call, "client_roots", err);
    return;
  }
  roots = describe_roots(result);
  cJSON_Delete(result);
  reply_owned_text(st->api, call,
                   roots ? format("Client roots: %s", roots) : NULL, 0);
  free(roots);
}

#define REQUEST_STATE "request-state-test:v1"

/* "state-ok" only when get_state hands back exactly what round 1 set. */
static void irr_request_state(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  const char *echoed = st->api->get_state(call);
  cJSON *result;
  int err;

  (void)args;
  err = ask(st, call, "confirm", "elicitation/create", ASK_CONFIRM, &result);
  if (err == PH_EINPUT) {
    await_input(st, call, REQUEST_STATE, TOOL_PLACEHOLDER);
    return;
  }
  if (err == PH_OK && !valid_elicit(result))
    err = PH_EINVAL;
  if (err != PH_OK) {
    cJSON_Delete(result);
    ask_failed(st, call, "confirm", err);
    return;
  }
  cJSON_Delete(result);
  if (echoed == NULL || strcmp(echoed, REQUEST_STATE) != 0) {
    reply_owned_text(
        st->api, call,
        format("requestState lost: got %s", echoed ? echoed : "nothing"), 1);
    return;
  }
  ph_reply_text(st->api, call, "state-ok: requestState round-tripped", 0);
}

/* Asks for all three kinds at once; the host gathers every pending ask of
 * one round into a single input_required result. */
static void irr_multiple_inputs(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  cJSON *name = NULL, *greeting = NULL, *roots = NULL;
  int e_name, e_greeting, e_roots;
  char *params, *root_list;

  (void)args;
  e_name = ask(st, call, "user_name", "elicitation/create", ASK_NAME, &name);
  params = sampling_params("Generate a greeting", 50);
  e_greeting =
      ask(st, call, "greeting", "sampling/createMessage", params, &greeting);
  cJSON_free(params);
  e_roots = ask(st, call, "client_roots", "roots/list", "{}", &roots);
  if (e_name == PH_EINPUT || e_greeting == PH_EINPUT || e_roots == PH_EINPUT) {
    await_input(st, call, "multiple-inputs:v1", TOOL_PLACEHOLDER);
  } else if (e_name != PH_OK || e_greeting != PH_OK || e_roots != PH_OK) {
    ask_failed(st, call, "test_input_required_result_multiple_inputs",
               e_name != PH_OK       ? e_name
               : e_greeting != PH_OK ? e_greeting
                                     : e_roots);
  } else {
    root_list = describe_roots(roots);
    reply_owned_text(
        st->api, call,
        root_list
            ? format("Name: %s; greeting: %s; roots: %s",
                     elicited(name, "name") ? elicited(name, "name") : "(none)",
                     sampled_text(greeting), root_list)
            : NULL,
        0);
    free(root_list);
  }
  cJSON_Delete(name);
  cJSON_Delete(greeting);
  cJSON_Delete(roots);
}

#define ASK_COLOR                                                              \
  "{\"message\":\"Step 2: What is your favorite color?\",\"requestedSchema\":" \
  "{\"type\":\"object\",\"properties\":{\"color\":{\"type\":\"string\"}},"     \
  "\"required\":[\"color\"]}}"
#define ASK_STEP1_NAME                                                         \
  "{\"message\":\"Step 1: What is your "                                       \
  "name?\",\"requestedSchema\":" NAME_SCHEMA "}"

/* Three rounds: step1 (name), then step2 (color) with the name carried in
 * the new state, then the answer. On a legacy session both asks simply
 * block in turn and no state is involved. */
static void irr_multi_round(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  const char *saved = st->api->get_state(call);
  cJSON *step1 = NULL, *step2 = NULL;
  char *name = NULL, *next;
  const char *color;
  int err;

  (void)args;
  if (saved != NULL && strncmp(saved, "step2:", 6) == 0) {
    name = strdup(saved + 6);
  } else {
    err = ask(st, call, "step1", "elicitation/create", ASK_STEP1_NAME, &step1);
    if (err == PH_EINPUT) {
      await_input(st, call, "step1", TOOL_PLACEHOLDER);
      return;
    }
    if (err != PH_OK) {
      ask_failed(st, call, "step1", err);
      return;
    }
    name = strdup(elicited(step1, "name") ? elicited(step1, "name") : "");
    cJSON_Delete(step1);
  }
  if (name == NULL) {
    st->api->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
    return;
  }
  err = ask(st, call, "step2", "elicitation/create", ASK_COLOR, &step2);
  if (err == PH_EINPUT) {
    next = format("step2:%s", name);
    await_input(st, call, next ? next : "step2:", TOOL_PLACEHOLDER);
    free(next);
  } else if (err != PH_OK) {
    ask_failed(st, call, "step2", err);
  } else {
    color = elicited(step2, "color");
    reply_owned_text(st->api, call,
                     format("Hello %s, your favorite color is %s", name,
                            color ? color : "unknown"),
                     0);
  }
  cJSON_Delete(step2);
  free(name);
}

/* Sets state in round 1 so the host has something to sign; a tampered
 * copy must be rejected by the host before this handler runs again. */
static void irr_tampered_state(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  const char *echoed = st->api->get_state(call);
  cJSON *result;
  int err;

  (void)args;
  err = ask(st, call, "confirm", "elicitation/create", ASK_CONFIRM, &result);
  if (err == PH_EINPUT) {
    await_input(st, call, "tamper-check:v1", TOOL_PLACEHOLDER);
    return;
  }
  cJSON_Delete(result);
  if (err != PH_OK) {
    ask_failed(st, call, "confirm", err);
    return;
  }
  if (echoed != NULL && strcmp(echoed, "tamper-check:v1") != 0) {
    st->api->reply_error(call, PH_RPC_INVALID_PARAMS,
                         "requestState failed verification", NULL);
    return;
  }
  ph_reply_text(st->api, call, "requestState verified", 0);
}

/* Asks for elicitation and sampling; the host refuses (PH_ENOTSUP) what
 * the request's clientCapabilities lack, so only the rest is requested. */
static void irr_capabilities(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  cJSON *name = NULL, *summary = NULL;
  int e_name, e_summary;
  char *params;

  (void)args;
  e_name = ask(st, call, "user_name", "elicitation/create", ASK_NAME, &name);
  params = sampling_params("Summarize your capabilities", 50);
  e_summary =
      ask(st, call, "summary", "sampling/createMessage", params, &summary);
  cJSON_free(params);
  if (e_name == PH_EINPUT || e_summary == PH_EINPUT) {
    await_input(st, call, NULL, TOOL_PLACEHOLDER);
  } else if (e_name != PH_OK && e_summary != PH_OK) {
    ask_failed(st, call, "test_input_required_result_capabilities",
               e_name == PH_ENOTSUP ? e_summary : e_name);
  } else {
    reply_owned_text(st->api, call,
                     format("Answered: elicitation=%s, sampling=%s",
                            e_name == PH_OK ? "yes" : "no",
                            e_summary == PH_OK ? "yes" : "no"),
                     0);
  }
  cJSON_Delete(name);
  cJSON_Delete(summary);
}

/* The region argument is mirrored into the Mcp-Param-Region header by
 * modern clients; the host checks the two agree before calling this. */
static void tool_custom_header(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  cJSON *in = cJSON_Parse(args);

  reply_owned_text(st->api, call,
                   format("Region: %s", member_string(in, "region", "")), 0);
  cJSON_Delete(in);
}

/* ---- Tasks extension tools (2026-07-28, SEP-2663 scenarios) ----
 *
 * The host makes a task of a call to a tool listing execution.taskSupport
 * when the call is still running after a short grace period; a call that
 * settles before that is answered directly. So the tools that must become
 * tasks take a moment before they settle or ask for input. */

/* Sleeps up to `ms` in slices, stopping early once the call is cancelled.
 * Returns non-zero when it was. */
static int sleep_unless_cancelled(const conf_state *st, ph_call *call,
                                  long ms) {
  for (; ms > 0; ms -= 50) {
    if (st->api->cancelled(call))
      return 1;
    sleep_ms(ms < 50 ? ms : 50);
  }
  return st->api->cancelled(call);
}

static void tool_greet(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  cJSON *in = cJSON_Parse(args);

  reply_owned_text(st->api, call,
                   format("Hello, %s!", member_string(in, "name", "World")), 0);
  cJSON_Delete(in);
}

static void tool_slow_compute(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  cJSON *in = cJSON_Parse(args);
  double seconds = cJSON_GetNumberValue(cJSON_GetObjectItem(in, "seconds"));
  const char *label = member_string(in, "label", "");

  if (!(seconds > 0))
    seconds = 0;
  if (seconds > 3600)
    seconds = 3600;
  /* A cancelled call's reply is dropped; the task is cancelled already. */
  if (sleep_unless_cancelled(st, call, (long)(seconds * 1000)))
    ph_reply_text(st->api, call, "cancelled", 1);
  else
    reply_owned_text(st->api, call,
                     format("Computed %s after %g s", label, seconds), 0);
  cJSON_Delete(in);
}

static void tool_failing_job(ph_call *call, const char *args, void *state) {
  conf_state *st = state;

  (void)args;
  sleep_unless_cancelled(st, call, 1000);
  ph_reply_text(st->api, call, "failing_job failed: the job always fails", 1);
}

static void tool_protocol_error_job(ph_call *call, const char *args,
                                    void *state) {
  conf_state *st = state;

  (void)args;
  sleep_unless_cancelled(st, call, 500);
  st->api->reply_error(call, PH_RPC_INTERNAL_ERROR,
                       "protocol_error_job: internal failure on purpose", NULL);
}

#define ASK_DELETE_SCHEMA                                                      \
  "{\"type\":\"object\",\"properties\":{\"confirm\":{\"type\":\"boolean\"}},"  \
  "\"required\":[\"confirm\"]}"

/* Checks the file (round 1 only), then asks for confirmation; the state
 * says the check was done when the host runs it again with the answer. */
static void tool_confirm_delete(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  cJSON *in = cJSON_Parse(args), *answer = NULL;
  const char *file = member_string(in, "filename", "");
  const cJSON *content;
  char *params;
  int err;

  if (st->api->get_state(call) == NULL &&
      sleep_unless_cancelled(st, call, 300)) {
    ph_reply_text(st->api, call, "cancelled", 1);
    cJSON_Delete(in);
    return;
  }
  params = format(
      "{\"message\":\"Delete %s?\",\"requestedSchema\":" ASK_DELETE_SCHEMA "}",
      file);
  err = ask(st, call, "confirm_delete", "elicitation/create", params, &answer);
  free(params);
  if (err == PH_EINPUT) {
    await_input(st, call, "checked", TOOL_PLACEHOLDER);
  } else if (err != PH_OK) {
    ask_failed(st, call, "confirm_delete", err);
  } else {
    content = cJSON_GetObjectItemCaseSensitive(answer, "content");
    reply_owned_text(
        st->api, call,
        format(cJSON_IsTrue(cJSON_GetObjectItem(content, "confirm")) &&
                       strcmp(member_string(answer, "action", ""), "accept") ==
                           0
                   ? "Deleted %s"
                   : "Kept %s",
               file),
        0);
  }
  cJSON_Delete(answer);
  cJSON_Delete(in);
}

/* Two questions at once, so a client may answer them one at a time. */
static void tool_multi_input(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  cJSON *name = NULL, *confirm = NULL;
  int e_name, e_confirm;

  (void)args;
  if (st->api->get_state(call) == NULL &&
      sleep_unless_cancelled(st, call, 300)) {
    ph_reply_text(st->api, call, "cancelled", 1);
    return;
  }
  e_name = ask(st, call, "name", "elicitation/create", ASK_NAME, &name);
  e_confirm = ask(
      st, call, "confirm", "elicitation/create",
      "{\"message\":\"Proceed?\",\"requestedSchema\":" ASK_DELETE_SCHEMA "}",
      &confirm);
  if (e_name == PH_EINPUT || e_confirm == PH_EINPUT)
    await_input(st, call, "asked", TOOL_PLACEHOLDER);
  else if (e_name != PH_OK || e_confirm != PH_OK)
    ask_failed(st, call, "multi_input", e_name != PH_OK ? e_name : e_confirm);
  else
    reply_owned_text(
        st->api, call,
        format("Name: %s; confirmed: %s",
               elicited(name, "name") ? elicited(name, "name") : "(none)",
               cJSON_IsTrue(cJSON_GetObjectItem(
                   cJSON_GetObjectItem(confirm, "content"), "confirm"))
                   ? "yes"
                   : "no"),
        0);
  cJSON_Delete(name);
  cJSON_Delete(confirm);
}

/* MRTR first, then a task: the name is asked synchronously, and the work
 * after it outlasts the grace period, so the second round is a task. */
static void tool_with_task(ph_call *call, const char *args, void *state) {
  conf_state *st = state;
  cJSON *answer = NULL;
  const char *name;
  int err;

  (void)args;
  err = ask(st, call, "user_name", "elicitation/create", ASK_NAME, &answer);
  if (err == PH_EINPUT) {
    await_input(st, call, NULL, TOOL_PLACEHOLDER);
    return;
  }
  if (err != PH_OK) {
    ask_failed(st, call, "user_name", err);
    return;
  }
  name = elicited(answer, "name");
  if (sleep_unless_cancelled(st, call, 1000))
    ph_reply_text(st->api, call, "cancelled", 1);
  else
    reply_owned_text(
        st->api, call,
        format("Hello, %s! (finished as a task)", name ? name : "stranger"), 0);
  cJSON_Delete(answer);
}

/* ---- Resources ---- */

static void read_static_text(ph_call *call, const char *uri, const char *vars,
                             void *state) {
  conf_state *st = state;

  (void)vars;
  ph_reply_resource_text(st->api, call, uri, "text/plain",
                         "This is the content of the static text resource.");
}

static void read_static_binary(ph_call *call, const char *uri, const char *vars,
                               void *state) {
  conf_state *st = state;

  (void)vars;
  ph_reply_resource_blob(st->api, call, uri, "image/png", red_png,
                         sizeof(red_png));
}

static void read_watched(ph_call *call, const char *uri, const char *vars,
                         void *state) {
  conf_state *st = state;

  (void)vars;
  ph_reply_resource_text(st->api, call, uri, "text/plain",
                         "Watched resource content");
}

static void read_template(ph_call *call, const char *uri, const char *vars,
                          void *state) {
  conf_state *st = state;
  cJSON *in = cJSON_Parse(vars), *data;
  const char *id = member_string(in, "id", "");
  char *text, *label;

  data = cJSON_CreateObject();
  cJSON_AddStringToObject(data, "id", id);
  cJSON_AddBoolToObject(data, "templateTest", 1);
  label = format("Data for ID: %s", id);
  cJSON_AddStringToObject(data, "data", label ? label : "");
  free(label);
  cJSON_Delete(in);
  text = cJSON_PrintUnformatted(data);
  cJSON_Delete(data);
  if (text == NULL) {
    st->api->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
    return;
  }
  ph_reply_resource_text(st->api, call, uri, "application/json", text);
  cJSON_free(text);
}

/* ---- Prompts ---- */

static void prompt_simple(ph_call *call, const char *args, void *state) {
  conf_state *st = state;

  (void)args;
  reply_messages(st->api, call, "A simple prompt",
                 text_block("This is a simple prompt for testing."), NULL);
}

static void prompt_with_arguments(ph_call *call, const char *args,
                                  void *state) {
  conf_state *st = state;
  cJSON *in = cJSON_Parse(args);
  char *text;

  text = format("Prompt with arguments: arg1='%s', arg2='%s'",
                member_string(in, "arg1", ""), member_string(in, "arg2", ""));
  cJSON_Delete(in);
  if (text == NULL) {
    st->api->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
    return;
  }
  reply_messages(st->api, call, "A prompt with arguments", text_block(text),
                 NULL);
  free(text);
}

static void complete_arguments(ph_call *call, const char *arg,
                               const char *value, const char *context,
                               void *state) {
  static const char *const arg1[] = {"paris", "park", "party", NULL};
  static const char *const arg2[] = {"alpha", "beta", "gamma", NULL};
  conf_state *st = state;
  const char *const *option;
  cJSON *result, *values;
  size_t n = strlen(value);

  (void)context;
  option = strcmp(arg, "arg1") == 0   ? arg1
           : strcmp(arg, "arg2") == 0 ? arg2
                                      : arg1 + 3;
  result = cJSON_CreateObject();
  values = cJSON_AddArrayToObject(result, "values");
  for (; *option != NULL; option++) {
    if (strncmp(*option, value, n) == 0)
      cJSON_AddItemToArray(values, cJSON_CreateString(*option));
  }
  cJSON_AddNumberToObject(result, "total", cJSON_GetArraySize(values));
  cJSON_AddBoolToObject(result, "hasMore", 0);
  reply_json(st->api, call, result);
}

static void prompt_embedded_resource(ph_call *call, const char *args,
                                     void *state) {
  conf_state *st = state;
  cJSON *in = cJSON_Parse(args);

  reply_messages(
      st->api, call, "A prompt with an embedded resource",
      resource_block(member_string(in, "resourceUri", ""), "text/plain",
                     "Embedded resource content for testing."),
      text_block("Please process the embedded resource above."), NULL);
  cJSON_Delete(in);
}

static void prompt_with_image(ph_call *call, const char *args, void *state) {
  conf_state *st = state;

  (void)args;
  reply_messages(
      st->api, call, "A prompt with an image",
      media_block(st->api, "image", "image/png", red_png, sizeof(red_png)),
      text_block("Please analyze the image above."), NULL);
}

static void prompt_input_required(ph_call *call, const char *args,
                                  void *state) {
  static const char params[] =
      "{\"message\":\"What context should the prompt use?\","
      "\"requestedSchema\":{\"type\":\"object\",\"properties\":{\"context\":"
      "{\"type\":\"string\"}},\"required\":[\"context\"]}}";
  conf_state *st = state;
  cJSON *result;
  const char *context;
  char *text;
  int err;

  (void)args;
  err = ask(st, call, "user_context", "elicitation/create", params, &result);
  if (err == PH_EINPUT) {
    await_input(st, call, NULL, PROMPT_PLACEHOLDER);
    return;
  }
  if (err == PH_OK && !valid_elicit(result))
    err = PH_EINVAL;
  if (err != PH_OK) {
    cJSON_Delete(result);
    if (err == PH_ENOTSUP)
      st->api->reply_error(call, PH_RPC_INVALID_PARAMS,
                           "this prompt needs elicitation", NULL);
    else
      ask_failed(st, call, "user_context", err);
    return;
  }
  context = elicited(result, "context");
  text = format("Answer using this context: %s", context ? context : "none");
  cJSON_Delete(result);
  if (text == NULL) {
    st->api->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
    return;
  }
  reply_messages(st->api, call, "A prompt that asked for context",
                 text_block(text), NULL);
  free(text);
}

/* ---- Descriptor ---- */

static int conf_init(ph_instance *self, const ph_host_api *api,
                     const char *config, void **state) {
  conf_state *st;

  (void)config;
  st = malloc(sizeof(*st));
  if (st == NULL) {
    api->log(self, PH_LOG_ERROR, "conformance: out of memory");
    return -1;
  }
  st->api = api;
  st->self = self;
  *state = st;
  return 0;
}

static void conf_fini(void *state) {
  free(state);
}

#define NO_ARGS "{\"type\":\"object\",\"properties\":{}}"
/* What makes the host run a tool's 2026-07-28 calls as tasks. */
#define TASK_OPTIONAL "{\"execution\":{\"taskSupport\":\"optional\"}}"
#define TASK_REQUIRED "{\"execution\":{\"taskSupport\":\"required\"}}"

/* The SEP-1613/SEP-2106 schema, byte for byte what the suite compares. */
#define SCHEMA_2020_12                                                         \
  "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","             \
  "\"type\":\"object\","                                                       \
  "\"$defs\":{\"address\":{\"$anchor\":\"addressDef\",\"type\":\"object\","    \
  "\"properties\":{\"street\":{\"type\":\"string\"},"                          \
  "\"city\":{\"type\":\"string\"}}}},"                                         \
  "\"properties\":{\"name\":{\"type\":\"string\"},"                            \
  "\"address\":{\"$ref\":\"#/$defs/address\"},"                                \
  "\"contactMethod\":{\"type\":\"string\",\"enum\":[\"phone\",\"email\"]},"    \
  "\"phone\":{\"type\":\"string\"},\"email\":{\"type\":\"string\"}},"          \
  "\"allOf\":[{\"anyOf\":[{\"required\":[\"phone\"]},"                         \
  "{\"required\":[\"email\"]}]}],"                                             \
  "\"if\":{\"properties\":{\"contactMethod\":{\"const\":\"phone\"}},"          \
  "\"required\":[\"contactMethod\"]},"                                         \
  "\"then\":{\"required\":[\"phone\"]},"                                       \
  "\"else\":{\"required\":[\"email\"]},"                                       \
  "\"additionalProperties\":false}"

/* Order matters: http-header-validation calls whichever tool is listed
 * first with no arguments and expects success, so that is the plainest. */
static const ph_tool conf_tools[] = {
    {.name = "test_simple_text",
     .description = "Tests simple text content response",
     .input_schema = NO_ARGS,
     .annotations = {.read_only = PH_HINT_TRUE},
     .handler = tool_simple_text},
    {.name = "test_image_content",
     .description = "Tests image content response",
     .input_schema = NO_ARGS,
     .handler = tool_image},
    {.name = "test_audio_content",
     .description = "Tests audio content response",
     .input_schema = NO_ARGS,
     .handler = tool_audio},
    {.name = "test_embedded_resource",
     .description = "Tests embedded resource content response",
     .input_schema = NO_ARGS,
     .handler = tool_embedded_resource},
    {.name = "test_multiple_content_types",
     .description = "Tests response with multiple content types (text, "
                    "image, resource)",
     .input_schema = NO_ARGS,
     .handler = tool_mixed},
    {.name = "test_tool_with_logging",
     .description = "Tests tool that emits log messages during execution",
     .input_schema = NO_ARGS,
     .handler = tool_with_logging},
    {.name = "test_tool_with_progress",
     .description = "Tests tool that reports progress notifications",
     .input_schema = NO_ARGS,
     .handler = tool_with_progress},
    {.name = "test_error_handling",
     .description = "Tests error response handling",
     .input_schema = NO_ARGS,
     .handler = tool_error},
    {.name = "test_sampling",
     .description = "Tests server-initiated sampling (LLM completion request)",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"prompt\":{"
                     "\"type\":\"string\",\"description\":"
                     "\"The prompt to send to the LLM\"}},"
                     "\"required\":[\"prompt\"]}",
     .handler = tool_sampling},
    {.name = "test_elicitation",
     .description = "Tests server-initiated elicitation (user input request)",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"message\":{"
                     "\"type\":\"string\",\"description\":"
                     "\"The message to show the user\"}},"
                     "\"required\":[\"message\"]}",
     .handler = tool_elicitation},
    {.name = "test_elicitation_sep1034_defaults",
     .description = "Tests elicitation with default values per SEP-1034",
     .input_schema = NO_ARGS,
     .handler = tool_sep1034_defaults},
    {.name = "test_elicitation_sep1330_enums",
     .description = "Tests elicitation with enum schema improvements per "
                    "SEP-1330",
     .input_schema = NO_ARGS,
     .handler = tool_sep1330_enums},
    {.name = "json_schema_2020_12_tool",
     .description = "Tool with JSON Schema 2020-12 features",
     .input_schema = SCHEMA_2020_12,
     .handler = tool_json_schema},
    {.name = "test_reconnection",
     .description = "Tests SSE stream reconnection (SEP-1699): takes 100 ms",
     .input_schema = NO_ARGS,
     .handler = tool_reconnection},
    {.name = "test_missing_capability",
     .description = "Requires the client's sampling capability",
     .input_schema = NO_ARGS,
     .handler = tool_missing_capability},
    {.name = "test_streaming_elicitation",
     .description = "Streams progress, then asks the client to confirm",
     .input_schema = NO_ARGS,
     .handler = tool_streaming_elicitation},
    {.name = "test_logging_tool",
     .description = "Emits log messages; none may reach a client that set "
                    "no log level",
     .input_schema = NO_ARGS,
     .handler = tool_logging},
    {.name = "test_trigger_tool_change",
     .description = "Emits notifications/tools/list_changed",
     .input_schema = NO_ARGS,
     .handler = tool_trigger_tool_change},
    {.name = "test_trigger_prompt_change",
     .description = "Emits notifications/prompts/list_changed",
     .input_schema = NO_ARGS,
     .handler = tool_trigger_prompt_change},
    {.name = "test_input_required_result_elicitation",
     .description = "Asks for the user's name through an input round",
     .input_schema = NO_ARGS,
     .handler = irr_elicitation},
    {.name = "test_input_required_result_sampling",
     .description = "Asks the client's model a question through an input "
                    "round",
     .input_schema = NO_ARGS,
     .handler = irr_sampling},
    {.name = "test_input_required_result_list_roots",
     .description = "Asks for the client's roots through an input round",
     .input_schema = NO_ARGS,
     .handler = irr_list_roots},
    {.name = "test_input_required_result_request_state",
     .description = "Checks that requestState round-trips (says state-ok)",
     .input_schema = NO_ARGS,
     .handler = irr_request_state},
    {.name = "test_input_required_result_multiple_inputs",
     .description = "Asks for elicitation, sampling and roots in one round",
     .input_schema = NO_ARGS,
     .handler = irr_multiple_inputs},
    {.name = "test_input_required_result_multi_round",
     .description = "Asks in two rounds with evolving requestState",
     .input_schema = NO_ARGS,
     .handler = irr_multi_round},
    {.name = "test_input_required_result_tampered_state",
     .description = "Carries requestState the host must integrity-protect",
     .input_schema = NO_ARGS,
     .handler = irr_tampered_state},
    {.name = "test_input_required_result_capabilities",
     .description = "Asks only for what the client declared",
     .input_schema = NO_ARGS,
     .handler = irr_capabilities},
    {.name = "greet",
     .description = "Greets someone by name (runs synchronously)",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"name\":{"
                     "\"type\":\"string\"}},\"required\":[\"name\"]}",
     .handler = tool_greet},
    {.name = "slow_compute",
     .description = "Sleeps `seconds` seconds, then reports (task-capable)",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"seconds\":{"
                     "\"type\":\"number\",\"minimum\":0},\"label\":{"
                     "\"type\":\"string\"}},\"required\":[\"seconds\"]}",
     .handler = tool_slow_compute,
     .extra_json = TASK_OPTIONAL},
    {.name = "failing_job",
     .description = "Fails with a tool error after about a second (tasks "
                    "only)",
     .input_schema = NO_ARGS,
     .handler = tool_failing_job,
     .extra_json = TASK_REQUIRED},
    {.name = "protocol_error_job",
     .description = "Fails with a protocol error after half a second "
                    "(task-capable)",
     .input_schema = NO_ARGS,
     .handler = tool_protocol_error_job,
     .extra_json = TASK_OPTIONAL},
    {.name = "confirm_delete",
     .description = "Asks for confirmation before deleting a file "
                    "(task-capable)",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"filename\":{"
                     "\"type\":\"string\"}},\"required\":[\"filename\"]}",
     .handler = tool_confirm_delete,
     .extra_json = TASK_OPTIONAL},
    {.name = "multi_input",
     .description = "Asks two questions at once (task-capable)",
     .input_schema = NO_ARGS,
     .handler = tool_multi_input,
     .extra_json = TASK_OPTIONAL},
    {.name = "test_tool_with_task",
     .description = "Asks for a name, then finishes the work as a task",
     .input_schema = NO_ARGS,
     .handler = tool_with_task,
     .extra_json = TASK_REQUIRED},
    {.name = "test_custom_header",
     .description = "Echoes a region mirrored into the Mcp-Param-Region "
                    "header (SEP-2243)",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"region\":{"
                     "\"type\":\"string\",\"description\":\"A region name\","
                     "\"x-mcp-header\":\"Region\"}},"
                     "\"required\":[\"region\"]}",
     .handler = tool_custom_header},
    {0}};

static const ph_resource conf_resources[] = {
    {.uri = "test://static-text",
     .name = "static-text",
     .description = "A static text resource for testing",
     .mime_type = "text/plain",
     .handler = read_static_text},
    {.uri = "test://static-binary",
     .name = "static-binary",
     .description = "A static binary resource (a 1x1 PNG) for testing",
     .mime_type = "image/png",
     .handler = read_static_binary},
    {.uri = "test://watched-resource",
     .name = "watched-resource",
     .description = "A resource clients can subscribe to",
     .mime_type = "text/plain",
     .handler = read_watched},
    {0}};

static const ph_resource_template conf_templates[] = {
    {.uri_template = "test://template/{id}/data",
     .name = "template",
     .description = "A templated resource echoing its id",
     .mime_type = "application/json",
     .handler = read_template},
    {0}};

static const ph_prompt_arg arguments_args[] = {
    {.name = "arg1", .description = "First test argument", .required = 1},
    {.name = "arg2", .description = "Second test argument", .required = 1},
    {0}};

static const ph_prompt_arg embedded_args[] = {
    {.name = "resourceUri",
     .description = "URI of the resource to embed",
     .required = 1},
    {0}};

static const ph_prompt conf_prompts[] = {
    {.name = "test_simple_prompt",
     .description = "A simple prompt without arguments",
     .handler = prompt_simple},
    {.name = "test_prompt_with_arguments",
     .description = "A prompt with required arguments",
     .args = arguments_args,
     .handler = prompt_with_arguments,
     .complete = complete_arguments},
    {.name = "test_prompt_with_embedded_resource",
     .description = "A prompt with an embedded resource",
     .args = embedded_args,
     .handler = prompt_embedded_resource},
    {.name = "test_prompt_with_image",
     .description = "A prompt with image content",
     .handler = prompt_with_image},
    {.name = "test_input_required_result_prompt",
     .description = "A prompt that asks the user for context first",
     .handler = prompt_input_required},
    {0}};

PH_PLUGIN(.name = "conformance", .version = "1.0.0",
          .description = "Fixture: the MCP conformance suite's server",
          .init = conf_init, .fini = conf_fini, .tools = conf_tools,
          .resources = conf_resources, .templates = conf_templates,
          .prompts = conf_prompts)
