/* stamp.c: a fixture whose every answer names the build that produced it,
 * so reload tests and the soak can tell old code from new code.
 *
 * Built three times by tests/soak/CMakeLists.txt: STAMP_BUILD "a" and "b"
 * (the two builds a reload alternates between) and a build whose init
 * always fails (STAMP_INIT_FAILS), for per-plugin rollback. The config
 * member "fail_init": true makes any build refuse to start, so a config
 * edit can break an instance too. fini logs one line, which is how tests
 * see that a retired instance was finalised. */
#define _POSIX_C_SOURCE 200809L

#include <plughost.h>

#include <cJSON.h>
#include <stdlib.h>
#include <time.h>

#ifndef STAMP_BUILD
#define STAMP_BUILD "a"
#endif

/* Per instance: the host table and our handle, for the fini log line. */
typedef struct {
  const ph_host_api *api;
  ph_instance *self;
} stamp_state;

static double monotonic_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void tool_build(ph_call *call, const char *args, void *state) {
  stamp_state *st = state;

  (void)args;
  ph_reply_text(st->api, call, STAMP_BUILD, 0);
}

/* Sleeps in 2 ms steps so a cancel or a short sleep is never stretched
 * much; answers "<build> slept <ms>". */
static void tool_sleep(ph_call *call, const char *args, void *state) {
  struct timespec step = {0, 2000000L};
  stamp_state *st = state;
  double want, start;
  cJSON *root, *ms;

  root = cJSON_Parse(args);
  ms = cJSON_GetObjectItemCaseSensitive(root, "ms");
  want = cJSON_IsNumber(ms) ? ms->valuedouble : 0;
  cJSON_Delete(root);
  start = monotonic_ms();
  while (monotonic_ms() - start < want) {
    if (st->api->cancelled(call)) {
      ph_reply_text(st->api, call, "cancelled", 1);
      return;
    }
    nanosleep(&step, NULL);
  }
  ph_reply_textf(st->api, call, 0, "%s slept %.0f", STAMP_BUILD, want);
}

static int stamp_init(ph_instance *self, const ph_host_api *api,
                      const char *config, void **state) {
  stamp_state *st;
  cJSON *conf;
  int refuse;

  conf = cJSON_Parse(config);
  refuse = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(conf, "fail_init"));
  cJSON_Delete(conf);
#ifdef STAMP_INIT_FAILS
  refuse = 1;
#endif
  if (refuse) {
    api->log(self, PH_LOG_ERROR, "stamp %s: init refuses on purpose",
             STAMP_BUILD);
    return -1;
  }
  st = malloc(sizeof(*st));
  if (st == NULL)
    return -1;
  st->api = api;
  st->self = self;
  *state = st;
  return 0;
}

static void stamp_fini(void *state) {
  stamp_state *st = state;

  st->api->log(st->self, PH_LOG_INFO, "stamp %s: fini", STAMP_BUILD);
  free(st);
}

static const ph_tool stamp_tools[] = {
    {.name = "build",
     .description = "Returns the build of the code that answers.",
     .annotations = {.read_only = PH_HINT_TRUE},
     .handler = tool_build},
    {.name = "sleep",
     .description = "Sleeps ms milliseconds, then names the build.",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"ms\":"
                     "{\"type\":\"integer\",\"minimum\":0}},"
                     "\"required\":[\"ms\"]}",
     .handler = tool_sleep},
    {0}};

PH_PLUGIN(.name = "stamp", .version = STAMP_BUILD,
          .description = "Fixture: answers name their build",
          .init = stamp_init, .fini = stamp_fini, .tools = stamp_tools)
