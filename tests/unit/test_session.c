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

#include "call.h"
#include "config.h"
#include "log.h"
#include "protocol.h"
#include "registry.h"
#include "session.h"
#include "unit_fixture.h"

static void setup(void) {
  ph__generation *g;

  unit_setup();
  unit_load("slow.so");
  unit_load("conformance.so");
  g = unit_publish("{'departments':{'default':{'plugins':[{'plugin':'slow'},"
                   "{'plugin':'conformance','prefix':'c'}]}}}",
                   "session.json");
  cr_assert_eq(ph__protocol_init(g->config), 0);
}

static void teardown(void) {
  RUN_UNTIL(ph__calls_live() == 0, 5000);
  cr_expect_null(ph__session_first(), "every test closes its sessions");
  unit_teardown();
}

TestSuite(session, .init = setup, .fini = teardown, .timeout = 30);

/* A legacy session past initialize, declaring `caps`. */
static ph__session *initialized(const char *caps) {
  ph__session *s = ph__session_new("default");
  char text[256];
  unit_sink k;

  snprintf(text, sizeof(text),
           "{'jsonrpc':'2.0','id':0,'method':'initialize','params':"
           "{'protocolVersion':'2025-11-25','capabilities':%s}}",
           caps);
  unit_sink_init(&k);
  unit_handle(s, &k, text);
  cr_assert_eq(k.finished, 1);
  cr_assert(s->initialized, "%s", k.answer);
  unit_sink_free(&k);
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
  unit_sink a, b;

  unit_sink_init(&a);
  unit_sink_init(&b);
  unit_handle(s, &a,
              "{'jsonrpc':'2.0','id':1,'method':'tools/call','params':"
              "{'name':'slow_sleep','arguments':{'ms':10000}}}");
  unit_handle(s, &b,
              "{'jsonrpc':'2.0','id':2,'method':'tools/call','params':"
              "{'name':'slow_sleep','arguments':{'ms':10000}}}");
  cr_assert_eq(ph__session_inflight(s), 2);
  cr_expect_eq(atomic_load(&s->refs), 3, "each call holds the session");
  ph__session_ref(s); /* Ours, to look after the close. */
  ph__session_close(s);
  cr_expect_eq(ph__session_inflight(s), 0);
  cr_expect_eq(a.finished, 1);
  cr_expect_eq(a.outcome, PH__OUTCOME_ACCEPTED);
  cr_expect_null(a.answer, "no response is due to a client that is gone");
  cr_expect_eq(b.finished, 1);
  cr_expect_null(b.answer);
  cr_expect_eq(ph__calls_unanswered(), 0);
  /* slow sees the flag within a few ms and replies; nothing more is sent
   * and the calls let go of the session. */
  RUN_UNTIL(ph__calls_live() == 0, 2000);
  cr_expect_eq(a.finished, 1);
  cr_expect_eq(b.finished, 1);
  cr_expect_eq(atomic_load(&s->refs), 1);
  ph__session_unref(s);
  unit_sink_free(&a);
  unit_sink_free(&b);
}

Test(session, close_gives_up_requests_to_the_client) {
  ph__session *s = initialized("{'elicitation':{}}");
  unit_sink k;

  unit_sink_init(&k);
  unit_handle(s, &k,
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
  RUN_UNTIL(ph__calls_live() == 0, 2000);
  cr_expect_eq(k.nsent, 1);
  unit_sink_free(&k);
}

Test(session, close_ends_a_listen_with_its_result) {
  ph__session *s = ph__session_new("default");
  unit_sink k;

  s->modern = 1;
  unit_sink_init(&k);
  unit_handle(
      s, &k,
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
  cr_expect_eq(k.outcome, PH__OUTCOME_ANSWERED);
  cr_expect_str_eq(k.answer,
                   "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"resultType\":"
                   "\"complete\",\"_meta\":{\"io.modelcontextprotocol/"
                   "subscriptionId\":5}}}");
  unit_sink_free(&k);
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
