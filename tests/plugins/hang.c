/* hang.c: tools that break the reply contract (never reply, reply twice)
 * so the host's deadlines and exactly-once enforcement can be tested. */
#define _POSIX_C_SOURCE 200809L

#include <plughost.h>

#include <time.h>

static const ph_host_api *host;
static ph_instance *instance;

/* Holds its worker until the host gives up on the call, and never replies:
 * the host must answer the client itself when the deadline passes. It
 * returns once cancelled so the worker (and a later unload) is not lost
 * for good; a host whose cancel flag never rises keeps it forever. */
static void tool_forever(ph_call *call, const char *args, void *state) {
  struct timespec step = {0, 10 * 1000000L};

  (void)args;
  (void)state;
  while (!host->cancelled(call))
    nanosleep(&step, NULL);
}

/* The second reply must come back PH_EALREADY and never reach the client;
 * the log line lets a test see what the host returned. */
static void tool_twice(ph_call *call, const char *args, void *state) {
  int first, second;

  (void)args;
  (void)state;
  first = ph_reply_text(host, call, "first reply", 0);
  second = ph_reply_text(host, call, "second reply", 0);
  host->log(instance, PH_LOG_INFO, "hang: twice: first=%d second=%d", first,
            second);
}

/* Returns at once without replying; with its small timeout the host must
 * time the call out instead of waiting for its own default. */
static void tool_never(ph_call *call, const char *args, void *state) {
  (void)call;
  (void)args;
  (void)state;
}

static int hang_init(ph_instance *self, const ph_host_api *api,
                     const char *config, void **state) {
  (void)config;
  host = api;
  instance = self;
  *state = NULL;
  return 0;
}

static const ph_tool hang_tools[] = {
    {.name = "forever",
     .description = "Never replies; returns only once cancelled.",
     .handler = tool_forever},
    {.name = "twice", .description = "Replies twice.", .handler = tool_twice},
    {.name = "never",
     .description = "Returns without replying; times out after 200 ms.",
     .timeout_ms = 200,
     .handler = tool_never},
    {0}};

PH_PLUGIN(.name = "hang", .version = "1.0.0",
          .description = "Fixture: tools that misbehave", .init = hang_init,
          .tools = hang_tools)
