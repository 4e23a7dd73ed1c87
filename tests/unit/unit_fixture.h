/* unit_fixture.h: what the call, protocol and session unit tests share:
 * a loop run by the test thread with the call layer on it, fixture plugins
 * loaded into a private cache directory, a generation of them published from a
 * config, and an outlet that records what the protocol sends it. A test process
 * runs one test, so the state below is the test's own. */
#ifndef PH_TEST_UNIT_FIXTURE_H
#define PH_TEST_UNIT_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <uv.h>

#include "loader.h"
#include "registry.h"
#include "session.h"

/* The loop the call layer runs on; the test thread runs it. */
extern uv_loop_t unit_loop;

/* The fixture plugins unit_load() loaded, in order. */
extern ph__plugin *unit_plugins[8];
extern size_t unit_nplugins;

/* Runs the loop without blocking until cond holds or ms pass; fails the
 * test if cond still does not hold. */
#define RUN_UNTIL(cond, ms)                                                    \
  do {                                                                         \
    uint64_t end_ = uv_hrtime() + (uint64_t)(ms)*1000000u;                     \
    while (!(cond) && uv_hrtime() < end_) {                                    \
      uv_run(&unit_loop, UV_RUN_NOWAIT);                                       \
      usleep(1000);                                                            \
    }                                                                          \
    cr_assert(cond, "still not true after %d ms: %s", (int)(ms), #cond);       \
  } while (0)

/* Makes the cache directory, quiets the log and starts the call layer on a
 * fresh unit_loop. For a suite's .init, before anything else. */
void unit_setup(void);

/* Unpublishes the generation, drops the plugins, closes the call layer, runs
 * the loop dry and expects it to close clean, and removes the cache directory.
 * For the end of a suite's .fini, once no call is live. */
void unit_teardown(void);

/* Loads fixture plugin `file` (e.g. "ok.so") into the cache and keeps it in
 * unit_plugins. Fails the test if it does not load. Returns it, borrowed. */
ph__plugin *unit_load(const char *file);

/* Builds a generation of the loaded plugins from `config` (JSON with single
 * quotes, reported as `name` in errors) and publishes it; fails the test if
 * that fails or another generation was published. Returns it, borrowed:
 * unit_teardown() drops it. */
ph__generation *unit_publish(const char *config, const char *name);

/* A copy of text with every ' turned into ": JSON written with single
 * quotes reads better in C. Caller frees. */
char *unit_dq(const char *text);

/* An outlet that records the messages it is sent and its one answer. */
typedef struct unit_sink {
  ph__outlet base;
  int finished;   /* finish() calls. */
  int outcome;    /* The outcome of the last finish() (outlet.h). */
  char *answer;   /* The JSON of the last finish(), or NULL. */
  char *sent[16]; /* What send() was given, in order. */
  int nsent;
} unit_sink;

/* An empty sink. */
void unit_sink_init(unit_sink *k);

/* Frees what the sink recorded and empties it. */
void unit_sink_free(unit_sink *k);

/* Hands one message, JSON with single quotes, to the protocol on session s,
 * answering into k. */
void unit_handle(ph__session *s, unit_sink *k, const char *text);

#endif
