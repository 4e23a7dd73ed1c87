/* chatty.c: a fixture that talks a lot, for the fault tests: a tool that
 * streams progress until it is done or cancelled (a client can leave in
 * the middle of its stream), and one whose answer is as large as asked (a
 * client that never reads fills the host's buffers quickly). */
#define _POSIX_C_SOURCE 200809L

#include <plughost.h>

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A blob larger than this is refused, so a typo cannot exhaust memory. */
#define CHATTY_MAX_BLOB (4u << 20)

static const ph_host_api *host;

/* The non-negative integer member key of args, or -1. */
static double number_arg(const char *args, const char *key) {
  cJSON *root = cJSON_Parse(args);
  cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  double n = cJSON_IsNumber(v) && v->valuedouble >= 0 ? v->valuedouble : -1;

  cJSON_Delete(root);
  return n;
}

/* Sends `count` progress events `every_ms` apart, stopping early once
 * cancelled (the client left or said so). */
static void tool_tick(ph_call *call, const char *args, void *state) {
  double count = number_arg(args, "count"),
         every = number_arg(args, "every_ms");
  struct timespec step;
  double i;

  (void)state;
  if (count < 0 || every < 0) {
    ph_reply_text(host, call, "count and every_ms are required", 1);
    return;
  }
  step.tv_sec = (time_t)(every / 1000);
  step.tv_nsec = (long)((every - (double)step.tv_sec * 1000) * 1e6);
  for (i = 0; i < count; i++) {
    if (host->cancelled(call)) {
      ph_reply_text(host, call, "cancelled", 1);
      return;
    }
    host->progress(call, i, count, NULL);
    nanosleep(&step, NULL);
  }
  ph_reply_textf(host, call, 0, "ticked %.0f", count);
}

/* Answers with `bytes` letters. */
static void tool_blob(ph_call *call, const char *args, void *state) {
  double bytes = number_arg(args, "bytes");
  char *text;

  (void)state;
  if (bytes < 0 || bytes > CHATTY_MAX_BLOB) {
    ph_reply_text(host, call, "bytes: 0 to 4 MiB", 1);
    return;
  }
  text = malloc((size_t)bytes + 1);
  if (text == NULL) {
    ph_reply_text(host, call, "out of memory", 1);
    return;
  }
  memset(text, 'x', (size_t)bytes);
  text[(size_t)bytes] = '\0';
  ph_reply_text(host, call, text, 0);
  free(text);
}

static int chatty_init(ph_instance *self, const ph_host_api *api,
                       const char *config, void **state) {
  (void)self;
  (void)config;
  host = api;
  *state = NULL;
  return 0;
}

static const ph_tool chatty_tools[] = {
    {.name = "tick",
     .description = "Sends count progress events every_ms apart.",
     .input_schema = "{\"type\":\"object\",\"properties\":{"
                     "\"count\":{\"type\":\"integer\",\"minimum\":0},"
                     "\"every_ms\":{\"type\":\"integer\",\"minimum\":0},"
                     "\"seq\":{\"type\":\"integer\"}},"
                     "\"required\":[\"count\",\"every_ms\"]}",
     .handler = tool_tick},
    {.name = "blob",
     .description = "Answers with as many bytes of text as asked.",
     .input_schema = "{\"type\":\"object\",\"properties\":{"
                     "\"bytes\":{\"type\":\"integer\",\"minimum\":0},"
                     "\"seq\":{\"type\":\"integer\"}},"
                     "\"required\":[\"bytes\"]}",
     .handler = tool_blob},
    {0}};

PH_PLUGIN(.name = "chatty", .version = "1.0.0",
          .description = "Fixture: streams progress and large answers",
          .init = chatty_init, .tools = chatty_tools)
