/* slow.c: a tool that sleeps in small steps and stops early once cancelled,
 * for cancellation, deadline and worker-pool tests; plus an inline tool. */
#define _POSIX_C_SOURCE 200809L

#include <plughost.h>

#include <cJSON.h>
#include <stdlib.h>
#include <time.h>

/* Short enough that a cancel is noticed within a test's patience, long
 * enough that polling costs nothing. */
#define SLOW_STEP_MS 5

static const ph_host_api *host;

static double monotonic_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void tool_sleep(ph_call *call, const char *args, void *state) {
  struct timespec step = {0, SLOW_STEP_MS * 1000000L};
  cJSON *root, *ms;
  double want, start, now;

  (void)state;
  root = cJSON_Parse(args);
  ms = cJSON_GetObjectItemCaseSensitive(root, "ms");
  want = cJSON_IsNumber(ms) ? ms->valuedouble : -1;
  cJSON_Delete(root);
  if (want < 0) {
    ph_reply_text(host, call, "ms: a non-negative integer is required", 1);
    return;
  }
  /* Measure against the clock rather than counting steps, so scheduling
   * delays do not stretch the sleep. */
  start = monotonic_ms();
  for (now = start; now - start < want; now = monotonic_ms()) {
    if (host->cancelled(call)) {
      ph_reply_text(host, call, "cancelled", 1);
      return;
    }
    nanosleep(&step, NULL);
  }
  ph_reply_textf(host, call, 0, "slept %.0f ms", want);
}

static void tool_now(ph_call *call, const char *args, void *state) {
  struct timespec ts;

  (void)args;
  (void)state;
  clock_gettime(CLOCK_REALTIME, &ts);
  ph_reply_textf(host, call, 0, "%lld",
                 (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static int slow_init(ph_instance *self, const ph_host_api *api,
                     const char *config, void **state) {
  (void)self;
  (void)config;
  host = api;
  *state = NULL;
  return 0;
}

static const ph_tool slow_tools[] = {
    {.name = "sleep",
     .description = "Sleeps for ms milliseconds unless cancelled first.",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"ms\":"
                     "{\"type\":\"integer\",\"minimum\":0}},"
                     "\"required\":[\"ms\"]}",
     .handler = tool_sleep},
    {.name = "now",
     .description = "Returns the wall clock in milliseconds since the epoch, "
                    "computed on the event loop.",
     .annotations = {.read_only = PH_HINT_TRUE},
     .run_inline = 1,
     .handler = tool_now},
    {0}};

PH_PLUGIN(.name = "slow", .version = "1.0.0",
          .description = "Fixture: a cancellable slow tool", .init = slow_init,
          .tools = slow_tools)
