/* echo.c: the cheapest possible tool, on the worker pool and inline, so
 * benchmarks measure the host rather than the plugin. */
#include <plughost.h>

#include <stdlib.h>
#include <string.h>

static const ph_host_api *host;

static const char *skip_space(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

/* p is at an opening quote; returns the character after the closing one,
 * or NULL for an unterminated string. */
static const char *skip_string(const char *p) {
  for (p++; *p != '"'; p++) {
    if (*p == '\0')
      return NULL;
    if (*p == '\\' && *++p == '\0')
      return NULL;
  }
  return p + 1;
}

/* Skips one JSON value of any kind. Containers are skipped by counting
 * brackets outside strings, which is enough because the host has already
 * parsed and validated the arguments. */
static const char *skip_value(const char *p) {
  int depth = 0;

  do {
    switch (*p) {
    case '\0':
      return NULL;
    case '"':
      p = skip_string(p);
      if (p == NULL)
        return NULL;
      continue;
    case '{':
    case '[':
      depth++;
      break;
    case '}':
    case ']':
      if (depth == 0)
        return p; /* The end of the enclosing object: a scalar ended. */
      depth--;
      break;
    case ',':
      if (depth == 0)
        return p;
      break;
    }
    p++;
  } while (depth > 0 || (*p != ',' && *p != '}' && *p != ']'));
  return p;
}

/* Finds the top-level string member "text" and returns its literal, quotes
 * and escapes included, as [*start, *end). The literal is already valid
 * JSON, so it can be spliced into the reply without decoding. */
static int find_text(const char *args, const char **start, const char **end) {
  const char *p = skip_space(args), *key, *key_end;

  if (*p != '{')
    return -1;
  for (p = skip_space(p + 1); *p == '"'; p = skip_space(p + 1)) {
    key = p;
    key_end = skip_string(p);
    if (key_end == NULL)
      return -1;
    p = skip_space(key_end);
    if (*p != ':')
      return -1;
    p = skip_space(p + 1);
    /* An escaped key (e.g. "te\u0078t") does not match, which only costs
     * an error reply for an argument no client sends that way. */
    if (key_end - key == 6 && memcmp(key, "\"text\"", 6) == 0 && *p == '"') {
      *start = p;
      *end = skip_string(p);
      return *end == NULL ? -1 : 0;
    }
    p = skip_value(p);
    if (p == NULL)
      return -1;
    p = skip_space(p);
    if (*p != ',')
      return -1;
  }
  return -1;
}

static void tool_echo(ph_call *call, const char *args, void *state) {
  static const char head[] = "{\"content\":[{\"type\":\"text\",\"text\":";
  static const char tail[] = "}]}";
  const char *start, *end;
  char small[512], *reply;
  size_t len, total;

  (void)state;
  if (find_text(args, &start, &end) != 0) {
    ph_reply_text(host, call, "text: a string is required", 1);
    return;
  }
  len = (size_t)(end - start);
  total = sizeof(head) - 1 + len + sizeof(tail);
  /* Small messages, the common benchmark case, skip the allocator. */
  reply = total <= sizeof(small) ? small : malloc(total);
  if (reply == NULL) {
    host->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
    return;
  }
  memcpy(reply, head, sizeof(head) - 1);
  memcpy(reply + sizeof(head) - 1, start, len);
  memcpy(reply + sizeof(head) - 1 + len, tail, sizeof(tail));
  host->reply(call, reply);
  if (reply != small)
    free(reply);
}

static int echo_init(ph_instance *self, const ph_host_api *api,
                     const char *config, void **state) {
  (void)self;
  (void)config;
  host = api;
  *state = NULL;
  return 0;
}

#define ECHO_SCHEMA                                                            \
  "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},"      \
  "\"required\":[\"text\"]}"

static const ph_tool echo_tools[] = {
    {.name = "echo",
     .description = "Returns the text argument (worker pool).",
     .input_schema = ECHO_SCHEMA,
     .annotations = {.read_only = PH_HINT_TRUE},
     .handler = tool_echo},
    {.name = "echo_inline",
     .description = "Returns the text argument (on the event loop).",
     .input_schema = ECHO_SCHEMA,
     .annotations = {.read_only = PH_HINT_TRUE},
     .run_inline = 1,
     .handler = tool_echo},
    {0}};

PH_PLUGIN(.name = "echo", .version = "1.0.0",
          .description = "Fixture: minimal echo for benchmarks",
          .init = echo_init, .tools = echo_tools)
