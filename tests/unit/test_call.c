/* test_call.c: calls into fixture plugins through the call layer and the
 * host API alone, on a loop run by the test thread: answers on the worker
 * pool and inline,
 * exactly-once replies, deadlines and cancellation (and the flag the
 * plugin sees), a full pool queue, service calls between instances of a
 * published generation, and the order of progress before the answer; ABI
 * 1.2's watch_fd and run_in_pool. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "call.h"
#include "config.h"
#include "host_api.h"
#include "log.h"
#include "registry.h"
#include "session.h"
#include "unit_fixture.h"

static ph_instance *instances[8];
static size_t ninstances;

/* What on_answer saw for one call, and what the call sent before. */
typedef struct record {
  int answers;
  int cancelled, timed_out;
  int error_code;
  char *result;
  char *error_message;
  char trace[1024]; /* "send,send,answer," in the order they happened. */
} record;

/* An outlet that keeps what the call layer sends on it. */
typedef struct capture {
  ph__outlet base;
  record *rec;
  char *sent[16];
  int nsent;
} capture;

static void capture_send(ph__outlet *o, const char *json, size_t len) {
  capture *c = (capture *)o;

  cr_assert_lt(c->nsent, 16);
  c->sent[c->nsent++] = strndup(json, len);
  strcat(c->rec->trace, "send,");
}

static void capture_finish(ph__outlet *o, int outcome, const char *json,
                           size_t len) {
  (void)o;
  (void)outcome;
  (void)json;
  (void)len;
  cr_assert_fail("the call layer never finishes an outlet itself");
}

static void capture_init(capture *c, record *rec) {
  memset(c, 0, sizeof(*c));
  c->base.send = capture_send;
  c->base.finish = capture_finish;
  c->rec = rec;
}

static void capture_free(capture *c) {
  int i;

  for (i = 0; i < c->nsent; i++)
    free(c->sent[i]);
}

/* The test's part of each call, in the protocol's place. */
typedef struct test_part {
  record *rec;
  void (*answered)(void); /* Or NULL. */
} test_part;

static void on_answer(ph_call *call, const ph__call_answer *a) {
  test_part *p = ph__call_proto(call);
  record *rec = p->rec;

  rec->answers++;
  rec->cancelled = a->kind == PH__ANSWER_CANCELLED ||
                   a->kind == PH__ANSWER_TIMEOUT || ph__call_cancelled(call);
  rec->timed_out = a->kind == PH__ANSWER_TIMEOUT;
  rec->error_code = a->kind == PH__ANSWER_ERROR ? a->code : 0;
  free(rec->result);
  rec->result = a->result_json ? strdup(a->result_json) : NULL;
  free(rec->error_message);
  rec->error_message = a->message ? strdup(a->message) : NULL;
  strcat(rec->trace, "answer,");
  if (p->answered != NULL)
    p->answered();
}

/* Events as the test reads them: "progress 1/3 working", "message warning
 * {...}", sent on the call's outlet as the protocol would. */
static void on_event(ph_call *call, const ph__call_event *e) {
  char text[512];

  if (e->kind == PH__EVENT_PROGRESS)
    snprintf(text, sizeof(text), "progress %g/%g %s", e->progress, e->total,
             e->message ? e->message : "-");
  else if (e->kind == PH__EVENT_MESSAGE)
    snprintf(text, sizeof(text), "message %s %s", ph__log_level_name(e->level),
             e->data_json ? e->data_json : "-");
  else
    snprintf(text, sizeof(text), "request %s", e->method);
  ph__outlet_send(ph__call_outlet(call), text, strlen(text));
}

static void setup(void) {
  unit_setup();
  ph__calls_set_hooks(
      &(ph__call_hooks){.answer = on_answer, .event = on_event});
}

/* Attaches the capture outlet and says who the client is. */
static void client(ph_call *call, capture *out, int log_level, int progress) {
  ph__call_client c = {.log_level = log_level, .progress = progress};

  ph__call_attach(call, NULL, &out->base);
  ph__call_set_client(call, &c);
}

static void record_free(record *rec) {
  free(rec->result);
  free(rec->error_message);
}

/* Runs the loop for ms milliseconds whatever happens. */
static void run_for(int ms) {
  uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;

  while (uv_hrtime() < end) {
    uv_run(&unit_loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
}

static void teardown(void) {
  size_t i;

  /* Every test ends with its calls gone. */
  RUN_UNTIL(ph__calls_live() == 0, 5000);
  for (i = 0; i < ninstances; i++)
    ph__instance_unref(instances[i]);
  ninstances = 0;
  unit_teardown();
}

TestSuite(call, .init = setup, .fini = teardown, .timeout = 30);

/* An instance of fixture `file` with its own pool. */
static ph_instance *instance(const char *file, int workers, int queue) {
  ph__plugin *p = unit_load(file);
  ph_instance *inst;
  char *err = NULL;

  inst = ph__instance_create(p, "default", p->name, NULL, workers, queue, NULL,
                             &err);
  cr_assert_not_null(inst, "%s", err ? err : "?");
  instances[ninstances++] = inst;
  return inst;
}

static const ph__tool_def *tool_def(ph_instance *inst, const char *name) {
  size_t i;

  for (i = 0; i < inst->plugin->ntools; i++)
    if (strcmp(inst->plugin->tools[i].name, name) == 0)
      return &inst->plugin->tools[i];
  cr_assert_fail("%s has no tool %s", inst->plugin->name, name);
  return NULL;
}

/* A tool call ready to start, answering into rec. */
static ph_call *tool_call(ph_instance *inst, const char *tool, const char *args,
                          record *rec) {
  ph_call *call = ph__call_new(PH__CALL_TOOL, inst, sizeof(test_part));

  ((test_part *)ph__call_proto(call))->rec = rec;
  ph__call_set_target(call, tool_def(inst, tool), tool);
  ph__call_take_args(call, strdup(args));
  return call;
}

static int contains(const char *text, const char *piece) {
  return text != NULL && strstr(text, piece) != NULL;
}

/* ---- answers ---- */

Test(call, worker_reply_is_answered_on_the_loop) {
  ph_instance *inst = instance("ok.so", 2, 8);
  record rec = {0};
  ph_call *call = tool_call(inst, "echo", "{\"text\":\"hi there\"}", &rec);

  cr_assert_eq(ph__call_start(call), 0);
  cr_expect_eq(ph__calls_unanswered(), 1);
  cr_expect_eq(ph__calls_live(), 1);
  cr_expect(ph__on_loop_thread());
  RUN_UNTIL(rec.answers == 1, 5000);
  cr_expect_eq(rec.error_code, 0);
  cr_expect(contains(rec.result, "\"text\":\"hi there\""), "%s", rec.result);
  cr_expect_not(rec.cancelled);
  cr_expect_not(rec.timed_out);
  cr_expect_eq(ph__calls_unanswered(), 0);
  RUN_UNTIL(ph__calls_live() == 0, 5000);
  run_for(20);
  cr_expect_eq(rec.answers, 1);
  record_free(&rec);
}

Test(call, inline_tool_answers_before_start_returns) {
  ph_instance *inst = instance("echo.so", 1, 1);
  record rec = {0};
  ph_call *call = tool_call(inst, "echo_inline", "{\"text\":\"x\"}", &rec);

  ph__call_set_timeout(call, 1000);
  cr_assert_eq(ph__call_start(call), 0);
  cr_expect_eq(rec.answers, 1, "answered without running the loop");
  cr_expect(contains(rec.result, "\"text\":\"x\""), "%s", rec.result);
  cr_expect_eq(ph__calls_unanswered(), 0);
  record_free(&rec);
}

Test(call, error_replies_keep_code_and_message) {
  ph_instance *inst = instance("ok.so", 1, 4);
  record rec = {0};
  ph_call *call = ph__call_new(PH__CALL_PROMPT, inst, sizeof(test_part));

  /* greet without a name answers with a JSON-RPC error. */
  ((test_part *)ph__call_proto(call))->rec = &rec;
  ph__call_set_target(call, &inst->plugin->prompts[0], "greet");
  ph__call_take_args(call, strdup("{}"));
  cr_assert_eq(ph__call_start(call), 0);
  RUN_UNTIL(rec.answers == 1, 5000);
  cr_expect_eq(rec.error_code, PH_RPC_INVALID_PARAMS);
  cr_expect_str_eq(rec.error_message, "name is required");
  cr_expect_null(rec.result);
  record_free(&rec);
}

Test(call, a_second_reply_is_refused) {
  ph_instance *inst = instance("hang.so", 1, 4);
  record rec = {0};
  ph_call *call = tool_call(inst, "twice", "{}", &rec);
  long errors = ph__log_errors();

  ph__call_ref(call); /* Ours, to reply to it again below. */
  cr_assert_eq(ph__call_start(call), 0);
  RUN_UNTIL(rec.answers == 1, 5000);
  cr_expect(contains(rec.result, "first reply"), "%s", rec.result);
  cr_expect_not(contains(rec.result, "second"));
  RUN_UNTIL(ph__log_errors() > errors, 5000); /* The plugin's second. */
  cr_expect_eq(ph__host_api.reply(call, "{}"), PH_EALREADY);
  cr_expect_eq(ph__host_api.reply_error(call, -32603, "late", NULL),
               PH_EALREADY);
  cr_expect_eq(ph__log_errors(), errors + 3, "each extra reply is logged");
  run_for(20);
  cr_expect_eq(rec.answers, 1, "answered exactly once");
  ph__call_unref(call);
  record_free(&rec);
}

/* A handler that replies, lets the host finish the call on the loop, and
 * then replies again, as hang's "twice" may when the loop is quick. The
 * call must stay valid while its handler runs. */
static atomic_int twice_answered;
static atomic_int twice_second = 1;

static void reply_wait_reply(ph_call *call, const char *args, void *state) {
  int i;

  (void)args;
  (void)state;
  ph__host_api.reply(call, "{\"content\":[]}");
  for (i = 0; i < 2000 && !atomic_load(&twice_answered); i++)
    usleep(1000);
  usleep(50000); /* Let the loop drop every reference it holds. */
  atomic_store(&twice_second, ph__host_api.reply(call, "{\"content\":[]}"));
}

static void on_answer_flag(void) {
  atomic_store(&twice_answered, 1);
}

Test(call, the_call_outlives_its_handler_after_a_reply) {
  ph_instance *inst = instance("ok.so", 1, 4);
  record rec = {0};
  ph__tool_def def = *tool_def(inst, "echo");
  ph_call *call = tool_call(inst, "echo", "{}", &rec);

  def.handler = reply_wait_reply;
  ph__call_set_target(call, &def, "echo");
  ((test_part *)ph__call_proto(call))->answered = on_answer_flag;
  ph__call_set_timeout(call, 5000); /* As the protocol always sets one. */
  cr_assert_eq(ph__call_start(call), 0);
  RUN_UNTIL(atomic_load(&twice_second) != 1, 5000);
  cr_expect_eq(atomic_load(&twice_second), PH_EALREADY);
  cr_expect_eq(rec.answers, 1);
  record_free(&rec);
}

/* ---- deadlines and cancellation ---- */

Test(call, deadline_answers_and_raises_the_cancel_flag) {
  ph_instance *inst = instance("hang.so", 1, 4);
  record rec = {0}, next = {0};
  ph_call *call = tool_call(inst, "forever", "{}", &rec);
  uint64_t start = uv_hrtime();

  ph__call_ref(call);
  ph__call_set_timeout(call, 50);
  /* Timers count from the loop's cached time, stale after set-up. */
  uv_update_time(&unit_loop);
  cr_assert_eq(ph__call_start(call), 0);
  RUN_UNTIL(rec.answers == 1, 5000);
  cr_expect(rec.timed_out);
  cr_expect(rec.cancelled, "the plugin sees the deadline as a cancel");
  cr_expect(ph__host_api.cancelled(call));
  cr_expect_null(rec.result);
  cr_expect_geq(uv_hrtime() - start, 45 * 1000000u);
  cr_expect_eq(ph__calls_unanswered(), 0,
               "an answered call no longer holds up shutdown");
  cr_expect_eq(ph__calls_live(), 1, "the plugin still owes a reply");

  /* forever returns once it sees the flag: the single worker is free for
   * the next call. */
  cr_assert_eq(ph__call_start(tool_call(inst, "twice", "{}", &next)), 0);
  RUN_UNTIL(next.answers == 1, 5000);

  /* A late reply still returns the plugin's reference, and says so. */
  cr_expect_eq(ph__host_api.reply(call, "{\"content\":[]}"), PH_ECANCELED);
  run_for(10);
  cr_expect_eq(rec.answers, 1);
  ph__call_unref(call);
  record_free(&rec);
  record_free(&next);
}

Test(call, cancel_answers_at_once_and_the_plugin_stops) {
  ph_instance *inst = instance("slow.so", 1, 4);
  record rec = {0};
  ph_call *call = tool_call(inst, "sleep", "{\"ms\":10000}", &rec);
  uint64_t start;

  ph__call_ref(call);
  ph__call_set_timeout(call, 20000);
  cr_assert_eq(ph__call_start(call), 0);
  run_for(30); /* Let it start sleeping. */
  start = uv_hrtime();
  ph__call_cancel(call);
  cr_expect_eq(rec.answers, 1, "answered by the cancel itself");
  cr_expect(rec.cancelled);
  cr_expect_not(rec.timed_out);
  cr_expect_eq(ph__calls_unanswered(), 0);
  /* slow polls the flag every 5 ms and replies "cancelled". */
  RUN_UNTIL(ph__call_refs(call) == 1, 2000);
  cr_expect_lt(uv_hrtime() - start, 1000 * 1000000u);
  {
    int code;
    const char *message, *data;
    char *result = ph__call_take_result(call, &code, &message, &data);

    cr_expect(contains(result, "cancelled"), "%s", result);
    free(result);
  }
  ph__call_cancel(call); /* A second cancel changes nothing. */
  cr_expect_eq(rec.answers, 1);
  ph__call_unref(call);
  record_free(&rec);
}

Test(call, cancel_before_the_worker_runs_it) {
  ph_instance *inst = instance("slow.so", 1, 4);
  record first = {0}, second = {0};
  ph_call *a = tool_call(inst, "sleep", "{\"ms\":100}", &first);
  ph_call *b = tool_call(inst, "sleep", "{\"ms\":0}", &second);

  ph__call_ref(b);
  cr_assert_eq(ph__call_start(a), 0);
  cr_assert_eq(ph__call_start(b), 0);
  ph__call_cancel(b); /* Still queued behind a. */
  cr_expect_eq(second.answers, 1);
  RUN_UNTIL(first.answers == 1, 5000);
  RUN_UNTIL(ph__call_refs(b) == 1, 2000);
  {
    int code;
    const char *message, *data;

    cr_expect_null(ph__call_take_result(b, &code, &message, &data),
                   "never run: the handler never replied");
  }
  ph__call_unref(b);
  record_free(&first);
  record_free(&second);
}

/* ---- the pool queue ---- */

Test(call, full_queue_refuses_at_once) {
  ph_instance *inst = instance("ok.so", 1, 1);
  record busy = {0}, queued = {0}, refused = {0};
  capture out;
  ph_call *a = tool_call(inst, "progress", "{}", &busy);
  ph_call *b, *c;

  capture_init(&out, &busy);
  client(a, &out, PH_LOG_DEBUG, 1);
  cr_assert_eq(ph__call_start(a), 0);
  /* The first progress message means the only worker is taken. */
  RUN_UNTIL(out.nsent >= 1, 5000);
  b = tool_call(inst, "echo", "{\"text\":\"b\"}", &queued);
  cr_assert_eq(ph__call_start(b), 0, "one call may wait");
  c = tool_call(inst, "echo", "{\"text\":\"c\"}", &refused);
  ph__call_set_timeout(c, 1000);
  cr_expect_eq(ph__call_start(c), UV_EBUSY);
  cr_expect_eq(refused.answers, 0, "a refused start answers nothing");
  cr_expect_eq(ph__calls_unanswered(), 2);
  ph__call_unref(c); /* The caller's, after answering the client. */
  RUN_UNTIL(busy.answers == 1 && queued.answers == 1, 5000);
  cr_expect(contains(queued.result, "\"text\":\"b\""), "%s", queued.result);
  RUN_UNTIL(ph__calls_live() == 0, 5000);
  cr_expect_eq(refused.answers, 0);
  capture_free(&out);
  record_free(&busy);
  record_free(&queued);
  record_free(&refused);
}

/* ---- progress ---- */

Test(call, progress_comes_in_order_before_the_answer) {
  ph_instance *inst = instance("ok.so", 1, 4);
  record rec = {0};
  capture out;
  ph_call *call = tool_call(inst, "progress", "{}", &rec);
  char want[256];
  int i;

  capture_init(&out, &rec);
  client(call, &out, PH_LOG_DEBUG, 1);
  cr_assert_eq(ph__call_start(call), 0);
  RUN_UNTIL(rec.answers == 1, 5000);
  cr_expect_str_eq(rec.trace, "send,send,send,answer,");
  cr_assert_eq(out.nsent, 3);
  for (i = 0; i < 3; i++) {
    snprintf(want, sizeof(want), "progress %d/3 working", i + 1);
    cr_expect_str_eq(out.sent[i], want);
  }
  capture_free(&out);
  record_free(&rec);
}

Test(call, progress_rules) {
  ph_instance *inst = instance("ok.so", 1, 4);
  record rec = {0};
  capture out;
  ph_call *call = tool_call(inst, "echo", "{}", &rec);

  capture_init(&out, &rec);
  client(call, &out, PH_LOG_DEBUG, 0);
  cr_expect_eq(ph__host_api.progress(call, 1, -1, NULL), PH_ENOTSUP,
               "no token, no progress");
  client(call, &out, PH_LOG_DEBUG, 1);
  cr_expect_eq(ph__host_api.progress(call, 0.5, -1, NULL), PH_OK);
  cr_expect_eq(ph__host_api.progress(call, 0.5, -1, NULL), PH_EINVAL,
               "progress must increase");
  cr_expect_eq(ph__host_api.progress(call, 0.25, -1, NULL), PH_EINVAL);
  cr_expect_eq(ph__host_api.progress(call, 0.0 / 0.0, -1, NULL), PH_EINVAL);
  cr_expect_eq(ph__host_api.progress(call, 2, 4, "half"), PH_OK);
  cr_assert_eq(out.nsent, 2, "on the loop thread events go up at once");
  cr_expect_str_eq(out.sent[0], "progress 0.5/-1 -");
  cr_expect_str_eq(out.sent[1], "progress 2/4 half");
  ph__call_ref(call);
  ph__call_cancel(call);
  cr_expect_eq(ph__host_api.progress(call, 3, -1, NULL), PH_ECANCELED);
  ph__call_unref(call);
  capture_free(&out);
  record_free(&rec);
}

Test(call, log_messages_respect_the_call_level) {
  ph_instance *inst = instance("ok.so", 1, 4);
  record rec = {0};
  capture out;
  ph_call *call = tool_call(inst, "log", "{}", &rec);

  capture_init(&out, &rec);
  client(call, &out, PH_LOG_WARNING, 0);
  cr_assert_eq(ph__call_start(call), 0);
  RUN_UNTIL(rec.answers == 1, 5000);
  cr_expect_str_eq(rec.trace, "send,send,answer,");
  cr_assert_eq(out.nsent, 2);
  cr_expect(contains(out.sent[0], "message warning "), "%s", out.sent[0]);
  cr_expect(contains(out.sent[1], "message error "), "%s", out.sent[1]);
  cr_expect(contains(out.sent[1], "error message"), "%s", out.sent[1]);
  capture_free(&out);
  record_free(&rec);
}

/* ---- services ---- */

/* Publishes a generation of provider and consumer; returns the consumer's
 * instance in it. */
static ph_instance *publish_services(void) {
  ph__generation *g;
  const ph__item *it;

  unit_load("provider.so");
  unit_load("consumer.so");
  g = unit_publish("{'departments':{'default':{'plugins':[{'plugin':"
                   "'provider'},{'plugin':'consumer'}]}}}",
                   "call.json");
  it = ph__dept_lookup(ph__generation_dept(g, "default"), PH__TOOL,
                       "consumer_store");
  cr_assert_not_null(it, "the consumer's requirement is met");
  return it->inst;
}

Test(call, service_calls_reach_the_provider) {
  ph_instance *consumer = publish_services();
  record stored = {0}, found = {0}, missing = {0};

  cr_assert_eq(
      ph__call_start(tool_call(consumer, "store",
                               "{\"key\":\"k\",\"value\":\"v1\"}", &stored)),
      0);
  RUN_UNTIL(stored.answers == 1, 5000);
  cr_expect(contains(stored.result, "\"text\":\"stored\""), "%s",
            stored.result);
  cr_assert_eq(
      ph__call_start(tool_call(consumer, "lookup", "{\"key\":\"k\"}", &found)),
      0);
  cr_assert_eq(ph__call_start(tool_call(consumer, "lookup",
                                        "{\"key\":\"nope\"}", &missing)),
               0);
  RUN_UNTIL(found.answers == 1 && missing.answers == 1, 5000);
  cr_expect(contains(found.result, "\"text\":\"v1\""), "%s", found.result);
  cr_expect(contains(missing.result, "not found"), "%s", missing.result);
  record_free(&stored);
  record_free(&found);
  record_free(&missing);
}

Test(call, service_call_results_and_errors) {
  ph_instance *consumer = publish_services();
  ph_call *call = ph__call_new(PH__CALL_TOOL, consumer, 0);
  char *response = (char *)"unset";

  cr_expect_eq(ph__host_api.service_call(call, "kv",
                                         "{\"op\":\"put\",\"key\":\"a\","
                                         "\"value\":[1,2]}",
                                         &response),
               PH_OK);
  cr_expect_str_eq(response, "{\"ok\":true}");
  free(response);
  cr_expect_eq(ph__host_api.service_call(
                   call, "kv", "{\"op\":\"get\",\"key\":\"a\"}", &response),
               PH_OK);
  cr_expect_str_eq(response, "{\"found\":true,\"value\":[1,2]}");
  free(response);
  cr_expect_eq(ph__host_api.service_call(call, "kv", "{\"op\":1}", &response),
               PH_EFAIL, "the provider's error comes back");
  cr_expect_str_eq(response, "{\"code\":-32602,\"message\":\"kv: op and key "
                             "must be strings\"}");
  free(response);
  cr_expect_eq(ph__host_api.service_call(call, "kv", "{not json", &response),
               PH_EINVAL);
  cr_expect_null(response);
  cr_expect_eq(ph__host_api.service_call(call, "nope", "{}", &response),
               PH_ENOSERVICE);
  cr_expect_null(response);
  cr_expect_eq(ph__host_api.service_call(call, "kv", "{}", NULL), PH_EINVAL);
  ph__generation_unref(ph__registry_publish(NULL));
  cr_expect_eq(ph__host_api.service_call(
                   call, "kv", "{\"op\":\"get\",\"key\":\"a\"}", &response),
               PH_ENOSERVICE, "resolved by name in the current generation");
  ph__call_unref(call);
}

Test(call, a_tool_without_its_provider_fails_cleanly) {
  ph_instance *consumer = publish_services();
  record rec = {0};

  /* Keep the consumer while its generation (and provider) goes. */
  ph__instance_ref(consumer);
  instances[ninstances++] = consumer;
  ph__generation_unref(ph__registry_publish(NULL));
  cr_assert_eq(
      ph__call_start(tool_call(consumer, "lookup", "{\"key\":\"k\"}", &rec)),
      0);
  RUN_UNTIL(rec.answers == 1, 5000);
  cr_expect(contains(rec.result, "kv service failed (-5)"), "%s", rec.result);
  cr_expect(contains(rec.result, "\"isError\":true"), "%s", rec.result);
  record_free(&rec);
}

/* ---- instances ---- */

static void unref_off_loop(void *arg) {
  ph__instance_unref(arg);
}

Test(call, last_instance_reference_off_the_loop_is_deferred) {
  ph_instance *inst = instance("ok.so", 2, 4);
  uv_thread_t thread;

  ninstances--; /* The thread drops our reference. */
  cr_assert_eq(ph__instances_draining(), 0);
  cr_assert_eq(uv_thread_create(&thread, unref_off_loop, inst), 0);
  uv_thread_join(&thread);
  cr_expect_eq(atomic_load(&unit_plugins[0]->refs), 2,
               "not destroyed on that thread");
  run_for(20);
  cr_expect_eq(atomic_load(&unit_plugins[0]->refs), 1,
               "finalised on the loop: the plugin reference is back");
}

/* ---- 1.2: watch_fd ---- */

typedef struct watch_rec {
  int calls, events, fd;
  int stop_other; /* fd whose watch the callback stops, or -1. */
  ph_instance *inst;
  struct watch_rec *other; /* Counts its callbacks there too. */
} watch_rec;

static void on_watch(int fd, int events, void *data) {
  watch_rec *r = data;

  r->calls++;
  r->events = events;
  r->fd = fd;
  if (r->stop_other >= 0) {
    cr_expect_eq(ph__host_api.watch_fd(r->inst, fd, 0, NULL, NULL), PH_OK);
    cr_expect_eq(ph__host_api.watch_fd(r->inst, r->stop_other, 0, NULL, NULL),
                 PH_OK);
  }
}

static void close_both(int fds[2]) {
  close(fds[0]);
  close(fds[1]);
}

typedef struct off_loop_args {
  ph_instance *inst;
  int fd, rc;
} off_loop_args;

static void watch_off_loop(void *arg) {
  off_loop_args *a = arg;

  a->rc = ph__host_api.watch_fd(a->inst, a->fd, PH_WATCH_READ, on_watch, NULL);
}

Test(call, watch_fd_is_refused_off_the_loop) {
  ph_instance *inst = instance("ok.so", 1, 4);
  off_loop_args a = {inst, -1, 1};
  int fds[2];
  uv_thread_t thread;

  cr_assert_eq(pipe(fds), 0);
  a.fd = fds[0];
  cr_assert_eq(uv_thread_create(&thread, watch_off_loop, &a), 0);
  uv_thread_join(&thread);
  cr_expect_eq(a.rc, PH_ENOTSUP);
  cr_expect_null(inst->watches);
  close_both(fds);
}

Test(call, watch_fd_calls_back_until_stopped_and_holds_the_instance) {
  ph_instance *inst = instance("ok.so", 1, 4);
  ph_instance *other = instance("echo.so", 1, 4);
  watch_rec rec = {.stop_other = -1};
  long refs = atomic_load(&inst->refs);
  int fds[2], file;
  char path[] = "/tmp/ph-unit-watch-XXXXXX", c;

  cr_assert_eq(pipe(fds), 0);
  cr_expect_eq(ph__host_api.watch_fd(NULL, fds[0], 1, on_watch, &rec),
               PH_EINVAL);
  cr_expect_eq(ph__host_api.watch_fd(inst, -3, 1, on_watch, &rec), PH_EINVAL);
  cr_expect_eq(ph__host_api.watch_fd(inst, fds[0], 8, on_watch, &rec),
               PH_EINVAL);
  cr_expect_eq(ph__host_api.watch_fd(inst, fds[0], 1, NULL, &rec), PH_EINVAL);
  cr_expect_eq(ph__host_api.watch_fd(inst, fds[0], 0, NULL, NULL), PH_EINVAL,
               "not watched");
  file = mkstemp(path);
  cr_assert_geq(file, 0);
  unlink(path);
  cr_expect_eq(ph__host_api.watch_fd(inst, file, 1, on_watch, &rec), PH_EINVAL,
               "a regular file cannot be polled");
  close(file);

  cr_assert_eq(
      ph__host_api.watch_fd(inst, fds[0], PH_WATCH_READ, on_watch, &rec),
      PH_OK);
  cr_expect_eq(atomic_load(&inst->refs), refs + 1, "the watch holds it");
  cr_expect_eq(
      ph__host_api.watch_fd(other, fds[0], PH_WATCH_READ, on_watch, &rec),
      PH_EINVAL, "one watch per fd");
  run_for(20);
  cr_expect_eq(rec.calls, 0, "an empty pipe is not readable");
  cr_assert_eq(write(fds[1], "x", 1), 1);
  RUN_UNTIL(rec.calls >= 1, 5000);
  cr_expect_eq(rec.events, PH_WATCH_READ);
  cr_expect_eq(rec.fd, fds[0]);
  /* Level-triggered: the unread byte keeps it ready. */
  RUN_UNTIL(rec.calls >= 3, 5000);
  /* Changing keeps the one watch (and reference). */
  cr_expect_eq(
      ph__host_api.watch_fd(inst, fds[1], PH_WATCH_WRITE, on_watch, &rec),
      PH_OK);
  cr_expect_eq(
      ph__host_api.watch_fd(inst, fds[1], PH_WATCH_READ, on_watch, &rec),
      PH_OK);
  cr_expect_eq(atomic_load(&inst->refs), refs + 2);
  cr_expect_eq(ph__host_api.watch_fd(inst, fds[1], 0, NULL, NULL), PH_OK);
  cr_expect_eq(ph__host_api.watch_fd(inst, fds[0], 0, NULL, NULL), PH_OK);
  cr_expect_eq(atomic_load(&inst->refs), refs, "stopping returns it");
  cr_expect_null(inst->watches);
  rec.calls = 0;
  run_for(20);
  cr_expect_eq(rec.calls, 0, "no callback after the stop");
  cr_expect_eq(read(fds[0], &c, 1), 1, "the host made it non-blocking");
  cr_expect_eq(read(fds[0], &c, 1), -1);
  /* The fd is free for another instance now. */
  cr_expect_eq(
      ph__host_api.watch_fd(other, fds[0], PH_WATCH_READ, on_watch, &rec),
      PH_OK);
  cr_expect_eq(ph__host_api.watch_fd(other, fds[0], 0, NULL, NULL), PH_OK);
  close_both(fds);
}

Test(call, a_stopped_watch_gets_no_pending_callback) {
  ph_instance *inst = instance("ok.so", 1, 4);
  watch_rec a = {.stop_other = -1}, b = {.stop_other = -1};
  int pa[2], pb[2];

  cr_assert_eq(pipe(pa), 0);
  cr_assert_eq(pipe(pb), 0);
  a.inst = b.inst = inst;
  a.stop_other = pb[0];
  b.stop_other = pa[0];
  /* Both ready before the loop polls: one iteration reports both, and
   * whichever callback runs first stops the other's watch. */
  cr_assert_eq(write(pa[1], "a", 1), 1);
  cr_assert_eq(write(pb[1], "b", 1), 1);
  cr_assert_eq(ph__host_api.watch_fd(inst, pa[0], 1, on_watch, &a), PH_OK);
  cr_assert_eq(ph__host_api.watch_fd(inst, pb[0], 1, on_watch, &b), PH_OK);
  RUN_UNTIL(a.calls + b.calls >= 1, 5000);
  run_for(20);
  cr_expect_eq(a.calls + b.calls, 1, "a: %d, b: %d", a.calls, b.calls);
  cr_expect_null(inst->watches);
  close_both(pa);
  close_both(pb);
}

Test(call, closing_the_call_layer_closes_forgotten_watches) {
  ph_instance *inst = instance("ok.so", 1, 4);
  watch_rec rec = {.stop_other = -1};
  int fds[2];

  cr_assert_eq(pipe(fds), 0);
  cr_assert_eq(ph__host_api.watch_fd(inst, fds[0], 1, on_watch, &rec), PH_OK);
  ninstances--;
  ph__instance_unref(inst); /* Only the watch holds it now. */
  cr_expect_eq(atomic_load(&unit_plugins[0]->refs), 2, "still loaded");
  ph__calls_close();
  cr_expect_eq(atomic_load(&unit_plugins[0]->refs), 1,
               "the watch closed, the instance finalised");
  close_both(fds);
}

/* ---- 1.2: run_in_pool ---- */

static atomic_int deferred_ran, deferred_off_loop, deferred_cancelled;
static atomic_int second_rc = 1;

static void deferred_fn(ph_call *call, void *arg) {
  atomic_store(&deferred_off_loop, !ph__on_loop_thread());
  atomic_store(&deferred_cancelled, ph__host_api.cancelled(call));
  free(arg);
  ph__host_api.reply(call, "{\"content\":[]}");
  atomic_fetch_add(&deferred_ran, 1);
}

static void defer_handler(ph_call *call, const char *args, void *state) {
  (void)args;
  (void)state;
  cr_expect_eq(ph__host_api.run_in_pool(call, NULL, NULL), PH_EINVAL);
  cr_expect_eq(ph__host_api.run_in_pool(call, deferred_fn, strdup("arg")),
               PH_OK);
  atomic_store(&second_rc, ph__host_api.run_in_pool(call, deferred_fn, NULL));
}

static ph_call *defer_call(ph_instance *inst, ph__tool_def *def, record *rec) {
  ph_call *call = tool_call(inst, "now", "{}", rec);

  *def = *tool_def(inst, "now");
  def->handler = defer_handler;
  ph__call_set_target(call, def, "now");
  ph__call_set_timeout(call, 5000);
  return call;
}

Test(call, run_in_pool_continues_an_inline_call_on_a_worker) {
  ph_instance *inst = instance("slow.so", 1, 4);
  record rec = {0};
  ph__tool_def def;
  ph_call *call = defer_call(inst, &def, &rec);

  ph__call_ref(call);
  cr_assert_eq(ph__call_start(call), 0);
  cr_expect_eq(atomic_load(&second_rc), PH_EINVAL, "queued already");
  RUN_UNTIL(rec.answers == 1, 5000);
  cr_expect_eq(atomic_load(&deferred_ran), 1);
  cr_expect(atomic_load(&deferred_off_loop));
  cr_expect_not(atomic_load(&deferred_cancelled));
  cr_expect_eq(rec.error_code, 0);
  RUN_UNTIL(ph__call_refs(call) == 1, 5000);
  cr_expect_eq(ph__host_api.run_in_pool(call, deferred_fn, NULL), PH_EINVAL,
               "replied already");
  ph__call_unref(call);
  record_free(&rec);
}

Test(call, run_in_pool_runs_fn_for_a_call_cancelled_in_the_queue) {
  ph_instance *inst = instance("slow.so", 1, 4);
  record busy = {0}, rec = {0};
  ph__tool_def def;
  ph_call *call;

  cr_assert_eq(ph__call_start(tool_call(inst, "sleep", "{\"ms\":100}", &busy)),
               0);
  call = defer_call(inst, &def, &rec);
  cr_assert_eq(ph__call_start(call), 0);
  ph__call_cancel(call); /* Waiting behind the sleep. */
  cr_expect_eq(rec.answers, 1);
  RUN_UNTIL(atomic_load(&deferred_ran) == 1, 5000);
  cr_expect(atomic_load(&deferred_cancelled), "fn sees the cancel");
  RUN_UNTIL(busy.answers == 1, 5000);
  record_free(&busy);
  record_free(&rec);
}

Test(call, run_in_pool_refuses_when_the_queue_is_full) {
  ph_instance *inst = instance("slow.so", 1, 1);
  record busy = {0}, queued = {0}, rec = {0};
  ph_call *call = tool_call(inst, "now", "{}", &rec);
  ph_call *service = ph__call_new(PH__CALL_SERVICE, inst, 0);

  cr_assert_eq(ph__call_start(tool_call(inst, "sleep", "{\"ms\":200}", &busy)),
               0);
  run_for(20); /* The worker took it. */
  cr_assert_eq(ph__call_start(tool_call(inst, "sleep", "{\"ms\":0}", &queued)),
               0);
  cr_expect_eq(ph__host_api.run_in_pool(call, deferred_fn, NULL), PH_ENOTSUP);
  cr_expect_eq(ph__host_api.run_in_pool(service, deferred_fn, NULL), PH_ENOTSUP,
               "a service call is over when its handler returns");
  ph__call_unref(service);
  ph__call_unref(call);
  RUN_UNTIL(busy.answers == 1 && queued.answers == 1, 5000);
  cr_expect_eq(atomic_load(&deferred_ran), 0);
  record_free(&busy);
  record_free(&queued);
  record_free(&rec);
}
