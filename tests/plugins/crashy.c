/* crashy.c: a plugin that fails in every way a process can, for the crash
 * isolation tests ("isolation": "process"): it dereferences NULL, aborts,
 * exits, hangs, leaks without bound and writes garbage to stdout, and it
 * also echoes, so a test can see it serve again after its runner restarts.
 * In the host itself any of these takes the host down (README). */
#define _POSIX_C_SOURCE 200809L

#include <plughost.h>

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void tool_echo(ph_call *call, const char *args, void *state) {
  cJSON *root = cJSON_Parse(args);
  const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text");
  char pid[64];

  (void)state;
  if (!cJSON_IsString(text)) {
    ph_reply_text(ph_call_api(call), call, "text: a string is required", 1);
  } else if (strcmp(text->valuestring, "pid") == 0) {
    /* Which process served: the tests tell a restarted runner by it. */
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    ph_reply_text(ph_call_api(call), call, pid, 0);
  } else {
    ph_reply_text(ph_call_api(call), call, text->valuestring, 0);
  }
  cJSON_Delete(root);
}

static void tool_segv(ph_call *call, const char *args, void *state) {
  volatile int *nowhere = NULL;

  (void)call;
  (void)args;
  (void)state;
  *nowhere = 1;
}

static void tool_abort(ph_call *call, const char *args, void *state) {
  (void)call;
  (void)args;
  (void)state;
  abort();
}

static void tool_exit(ph_call *call, const char *args, void *state) {
  (void)call;
  (void)args;
  (void)state;
  exit(3);
}

/* Sleeps forever and never looks at cancelled(): past its deadline only a
 * kill ends it. */
static void tool_hang(ph_call *call, const char *args, void *state) {
  struct timespec second = {1, 0};

  (void)call;
  (void)args;
  (void)state;
  for (;;)
    nanosleep(&second, NULL);
}

/* Sleeps "ms" milliseconds (default 2000) unless cancelled, then replies:
 * a call in flight on another channel when a sibling crashes. */
static void tool_sleep(ph_call *call, const char *args, void *state) {
  struct timespec step = {0, 10 * 1000000L};
  cJSON *root = cJSON_Parse(args);
  const cJSON *ms = cJSON_GetObjectItemCaseSensitive(root, "ms");
  int steps = (cJSON_IsNumber(ms) ? ms->valueint : 2000) / 10;

  (void)state;
  cJSON_Delete(root);
  while (steps-- > 0 && !ph_call_api(call)->cancelled(call))
    nanosleep(&step, NULL);
  ph_reply_text(ph_call_api(call), call, "slept", 0);
}

/* Takes memory a MiB at a time, touching every page, and never gives it
 * back; when malloc fails it aborts, as an allocator that checks would. */
static void tool_leak(ph_call *call, const char *args, void *state) {
  char *block;

  (void)call;
  (void)args;
  (void)state;
  for (;;) {
    block = malloc(1 << 20);
    if (block == NULL)
      abort();
    memset(block, 0x5a, 1 << 20);
  }
}

/* Writes what would corrupt a stdio transport if it reached it: a line
 * that looks like a JSON-RPC answer, and one that does not. */
static void tool_stdout(ph_call *call, const char *args, void *state) {
  (void)args;
  (void)state;
  printf("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"garbage\":true}}\n");
  printf("crashy garbage on stdout\n");
  fflush(stdout);
  ph_reply_text(ph_call_api(call), call, "wrote to stdout", 0);
}

/* Progress and a message before the reply: events through the channel. */
static void tool_progress(ph_call *call, const char *args, void *state) {
  const ph_host_api *api = ph_call_api(call);
  int rc;

  (void)args;
  (void)state;
  rc = api->progress(call, 1, 2, "half way");
  api->message(call, PH_LOG_INFO, "crashy", "{\"step\":1}");
  ph_reply_textf(api, call, 0, "progress returned %d", rc);
}

/* configure_tool during init reaches the host through the runner: the
 * config may retitle echo. */
static int crashy_init(ph_instance *self, const ph_host_api *api,
                       const char *config, void **state) {
  cJSON *root = cJSON_Parse(config), *over;
  const cJSON *title = cJSON_GetObjectItemCaseSensitive(root, "echo_title");
  char *text;

  *state = NULL;
  if (cJSON_IsString(title)) {
    over = cJSON_CreateObject();
    cJSON_AddStringToObject(over, "title", title->valuestring);
    text = cJSON_PrintUnformatted(over);
    api->configure_tool(self, "echo", text);
    cJSON_free(text);
    cJSON_Delete(over);
  }
  cJSON_Delete(root);
  api->log(self, PH_LOG_INFO, "crashy: init in pid %d", (int)getpid());
  return 0;
}

PH_PLUGIN(.name = "crashy", .version = "1.0",
          .description = "Fails on purpose: crash isolation fixtures",
          .init = crashy_init,
          .tools = (const ph_tool[]){
              {.name = "echo",
               .description = "Echoes text; \"pid\" answers the process id",
               .input_schema =
                   "{\"type\":\"object\",\"properties\":{\"text\":"
                   "{\"type\":\"string\"}},\"required\":[\"text\"]}",
               .handler = tool_echo},
              {.name = "echo_inline",
               .description = "Echoes text, declared inline",
               .run_inline = 1,
               .handler = tool_echo},
              {.name = "segv",
               .description = "Dereferences NULL",
               .handler = tool_segv},
              {.name = "abort",
               .description = "Calls abort()",
               .handler = tool_abort},
              {.name = "exit",
               .description = "Calls exit(3)",
               .handler = tool_exit},
              {.name = "hang",
               .description = "Sleeps forever",
               .timeout_ms = 500,
               .handler = tool_hang},
              {.name = "sleep",
               .description = "Sleeps, then replies",
               .handler = tool_sleep},
              {.name = "leak",
               .description = "Allocates without bound",
               .handler = tool_leak},
              {.name = "stdout",
               .description = "Writes garbage to stdout",
               .handler = tool_stdout},
              {.name = "progress",
               .description = "Progress, then a reply",
               .handler = tool_progress},
              {0}})
