/* test_session.c: sessions: the live list, reference counting, and what
 * closing does to a session's work: in-flight calls are cancelled without
 * a response, requests waiting for the client are given up, and a
 * 2026-07-28 listen ends with its result. Calls are started through the
 * protocol on a generation of fixture plugins. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dispatch.h"
#include "log.h"
#include "protocol.h"
#include "registry.h"
#include "session.h"

static uv_loop_t loop;
static char cache_dir[] = "/tmp/ph-session-XXXXXX";
static ph__plugin *plugins[4];
static size_t nplugins;

typedef struct sink {
  ph__outlet base;
  int finished;
  int status;
  char *answer;
  char *sent[8];
  int nsent;
} sink;

static void sink_send(ph__outlet *o, const char *json, size_t len) {
  sink *k = (sink *)o;

  cr_assert_lt(k->nsent, 8);
  k->sent[k->nsent++] = strndup(json, len);
}

static void sink_finish(ph__outlet *o, int status, const char *json,
                        size_t len) {
  sink *k = (sink *)o;

  k->finished++;
  k->status = status;
  free(k->answer);
  k->answer = json ? strndup(json, len) : NULL;
}

static void sink_init(sink *k) {
  memset(k, 0, sizeof(*k));
  k->base.send = sink_send;
  k->base.finish = sink_finish;
}

static void sink_free(sink *k) {
  int i;

  free(k->answer);
  for (i = 0; i < k->nsent; i++)
    free(k->sent[i]);
}

#define RUN_UNTIL(cond, ms)                                                    \
  do {                                                                         \
    uint64_t end_ = uv_hrtime() + (uint64_t)(ms)*1000000u;                     \
    while (!(cond) && uv_hrtime() < end_) {                                    \
      uv_run(&loop, UV_RUN_NOWAIT);                                            \
      usleep(1000);                                                            \
    }                                                                          \
    cr_assert(cond, "still not true after %d ms: %s", (int)(ms), #cond);       \
  } while (0)

static char *dq(const char *text) {
  char *s = strdup(text), *p;

  for (p = s; *p != '\0'; p++)
    if (*p == '\'')
      *p = '"';
  return s;
}

static void load(const char *file) {
  char path[1024], *err = NULL;
  ph__plugin *p;

  snprintf(path, sizeof(path), "%s/%s", PH_TEST_PLUGIN_DIR, file);
  p = ph__plugin_load(path, cache_dir, &err);
  cr_assert_not_null(p, "%s: %s", path, err ? err : "?");
  plugins[nplugins++] = p;
}

static void setup(void) {
  ph__generation *g;
  ph__config *cfg;
  char *json, *err = NULL;

  cr_assert_not_null(mkdtemp(cache_dir));
  ph__log_set_level(PH_LOG_EMERGENCY);
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(ph__dispatch_init(&loop), 0);
  load("slow.so");
  load("conformance.so");
  json = dq("{'departments':{'default':{'plugins':[{'plugin':'slow'},"
            "{'plugin':'conformance','prefix':'c'}]}}}");
  cfg = ph__config_parse(json, "session.json", &err);
  cr_assert_not_null(cfg, "%s", err ? err : "?");
  free(json);
  g = ph__generation_build(cfg, plugins, nplugins, NULL);
  cr_assert_null(ph__registry_publish(g));
  cr_assert_eq(ph__protocol_init(g->config), 0);
}

static void teardown(void) {
  size_t i;

  RUN_UNTIL(ph__dispatch_live_calls() == 0, 5000);
  cr_expect_null(ph__session_first(), "every test closes its sessions");
  ph__generation_unref(ph__registry_publish(NULL));
  for (i = 0; i < nplugins; i++)
    ph__plugin_unref(plugins[i]);
  nplugins = 0;
  ph__dispatch_close();
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_expect_eq(uv_loop_close(&loop), 0, "the loop ends clean");
  rmdir(cache_dir);
}

TestSuite(session, .init = setup, .fini = teardown, .timeout = 30);

static void handle(ph__session *s, sink *k, const char *text) {
  char *json = dq(text);

  ph__protocol_handle(s, &k->base, json, strlen(json));
  free(json);
}

/* A legacy session past initialize, declaring `caps`. */
static ph__session *initialized(const char *caps) {
  ph__session *s = ph__session_new("default");
  char text[256];
  sink k;

  snprintf(text, sizeof(text),
           "{'jsonrpc':'2.0','id':0,'method':'initialize','params':"
           "{'protocolVersion':'2025-11-25','capabilities':%s}}",
           caps);
  sink_init(&k);
  handle(s, &k, text);
  cr_assert_eq(k.finished, 1);
  cr_assert(s->initialized, "%s", k.answer);
  sink_free(&k);
  return s;
}

/* ---- the list and references ---- */

Test(session, new_session_defaults) {
  char dept[] = "sales";
  ph__session *s = ph__session_new(dept);

  dept[0] = 'x'; /* The session keeps its own copy. */
  cr_expect_str_eq(s->department, "sales");
  cr_expect_eq(atomic_load(&s->refs), 1);
  cr_expect_eq(s->log_level, PH_LOG_DEBUG);
  cr_expect_not(s->initialized);
  cr_expect_not(s->closed);
  cr_expect_eq(ph__session_inflight(s), 0);
  cr_expect_eq(ph__session_first(), s);
  ph__session_close(s);
  cr_expect_null(ph__session_first());
}

Test(session, the_live_list) {
  ph__session *a = ph__session_new("default");
  ph__session *b = ph__session_new("default");
  ph__session *c = ph__session_new("other");

  cr_expect_eq(ph__session_first(), c);
  cr_expect_eq(c->next, b);
  cr_expect_eq(b->next, a);
  cr_expect_null(a->next);
  cr_expect_eq(a->prev, b);
  ph__session_close(b); /* From the middle. */
  cr_expect_eq(ph__session_first(), c);
  cr_expect_eq(c->next, a);
  cr_expect_eq(a->prev, c);
  ph__session_close(c); /* The head. */
  cr_expect_eq(ph__session_first(), a);
  cr_expect_null(a->prev);
  ph__session_close(a);
  cr_expect_null(ph__session_first());
}

Test(session, references_outlive_close) {
  ph__session *s = ph__session_new("default");

  ph__session_ref(s);
  cr_expect_eq(atomic_load(&s->refs), 2);
  ph__session_close(s);
  cr_expect(s->closed);
  cr_expect_eq(atomic_load(&s->refs), 1, "close drops the caller's");
  cr_expect_null(ph__session_first());
  cr_expect_null(s->notify);
  ph__session_close(s); /* Closing twice changes nothing. */
  cr_expect_eq(atomic_load(&s->refs), 1);
  ph__session_unref(s);
  ph__session_unref(NULL);
}

static void unref_on_thread(void *arg) {
  ph__session_unref(arg);
}

Test(session, last_reference_on_another_thread) {
  ph__session *s = ph__session_new("default");
  uv_thread_t thread;

  s->principal = strdup("{\"sub\":\"u\"}");
  s->client_caps = cJSON_CreateObject();
  ph__session_ref(s);
  ph__session_close(s);
  cr_assert_eq(uv_thread_create(&thread, unref_on_thread, s), 0);
  uv_thread_join(&thread);
}

/* ---- closing cancels work ---- */

Test(session, close_cancels_calls_in_flight) {
  ph__session *s = initialized("{}");
  sink a, b;

  sink_init(&a);
  sink_init(&b);
  handle(s, &a,
         "{'jsonrpc':'2.0','id':1,'method':'tools/call','params':"
         "{'name':'slow_sleep','arguments':{'ms':10000}}}");
  handle(s, &b,
         "{'jsonrpc':'2.0','id':2,'method':'tools/call','params':"
         "{'name':'slow_sleep','arguments':{'ms':10000}}}");
  cr_assert_eq(ph__session_inflight(s), 2);
  cr_expect_eq(atomic_load(&s->refs), 3, "each call holds the session");
  ph__session_ref(s); /* Ours, to look after the close. */
  ph__session_close(s);
  cr_expect_eq(ph__session_inflight(s), 0);
  cr_expect_eq(a.finished, 1);
  cr_expect_eq(a.status, 202);
  cr_expect_null(a.answer, "no response is due to a client that is gone");
  cr_expect_eq(b.finished, 1);
  cr_expect_null(b.answer);
  cr_expect_eq(ph__dispatch_unanswered_calls(), 0);
  /* slow sees the flag within a few ms and replies; nothing more is sent
   * and the calls let go of the session. */
  RUN_UNTIL(ph__dispatch_live_calls() == 0, 2000);
  cr_expect_eq(a.finished, 1);
  cr_expect_eq(b.finished, 1);
  cr_expect_eq(atomic_load(&s->refs), 1);
  ph__session_unref(s);
  sink_free(&a);
  sink_free(&b);
}

Test(session, close_gives_up_requests_to_the_client) {
  ph__session *s = initialized("{'elicitation':{}}");
  sink k;

  sink_init(&k);
  handle(s, &k,
         "{'jsonrpc':'2.0','id':1,'method':'tools/call','params':"
         "{'name':'c_test_elicitation','arguments':{'message':'who?'}}}");
  /* The tool waits on its worker for the client's answer. */
  RUN_UNTIL(s->npending == 1, 5000);
  cr_assert_eq(k.nsent, 1);
  cr_expect_not_null(strstr(k.sent[0], "\"method\":\"elicitation/create\""),
                     "%s", k.sent[0]);
  ph__session_close(s);
  cr_expect_eq(k.finished, 1);
  cr_expect_null(k.answer);
  /* The waiting worker is released; the call ends. */
  RUN_UNTIL(ph__dispatch_live_calls() == 0, 2000);
  cr_expect_eq(k.nsent, 1);
  sink_free(&k);
}

Test(session, close_ends_a_listen_with_its_result) {
  ph__session *s = ph__session_new("default");
  sink k;

  s->modern = 1;
  sink_init(&k);
  handle(s, &k,
         "{'jsonrpc':'2.0','id':5,'method':'subscriptions/listen','params':"
         "{'_meta':{'io.modelcontextprotocol/protocolVersion':'2026-07-28',"
         "'io.modelcontextprotocol/clientCapabilities':{}},"
         "'notifications':{'toolsListChanged':true}}}");
  cr_expect_eq(k.finished, 0, "a listen stays open");
  cr_assert_eq(k.nsent, 1);
  cr_expect_not_null(strstr(k.sent[0], "subscriptions/acknowledged"));
  ph__protocol_lists_changed("default", 1u << PH__TOOL);
  cr_assert_eq(k.nsent, 2);
  cr_expect_not_null(strstr(k.sent[1], "notifications/tools/list_changed"));
  ph__session_close(s);
  cr_expect_eq(k.finished, 1);
  cr_expect_eq(k.status, 200);
  cr_expect_str_eq(k.answer,
                   "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"resultType\":"
                   "\"complete\",\"_meta\":{\"io.modelcontextprotocol/"
                   "subscriptionId\":5}}}");
  sink_free(&k);
}

static int notified;

static void count_notify(ph__session *s, const char *json, size_t len) {
  (void)s;
  (void)len;
  cr_expect_not_null(strstr(json, "list_changed"));
  notified++;
}

Test(session, closed_sessions_hear_nothing) {
  ph__session *s = initialized("{}");

  s->notify = count_notify;
  ph__protocol_lists_changed("default", 1u << PH__TOOL | 1u << PH__PROMPT);
  cr_expect_eq(notified, 2);
  ph__protocol_lists_changed("other", 1u << PH__TOOL);
  cr_expect_eq(notified, 2, "another department's change");
  ph__session_ref(s);
  ph__session_close(s);
  ph__protocol_lists_changed("default", 1u << PH__TOOL);
  cr_expect_eq(notified, 2);
  ph__session_unref(s);
}
