/* fuzz_jsonrpc.c: what a client's bytes meet first, below and inside the
 * protocol. Each line of the input is one message: it goes through the
 * JSON-RPC precheck and parse (jsonrpc.c) at two depths, and then through
 * ph__protocol_handle() on one session, as a transport hands it in, on a
 * generation of the ok fixture plugin published with the unit tests'
 * fixture (tests/unit/unit_fixture.c). Lines share the session, so an
 * initialize can precede what needs it; an input starting "#modern" is a
 * stateless 2026-07-28 HTTP request's session instead. Each message is
 * handed over in a buffer of exactly its length, so a read past its end
 * shows, and every outlet must be finished exactly once by the time the
 * session has closed and its calls have ended. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "call.h"
#include "jsonrpc.h"
#include "protocol.h"
#include "registry.h"
#include "session.h"
#include "../unit/unit_fixture.h"

/* Messages of one input that are handed in; the rest are ignored. */
#define MAX_MESSAGES 8
/* How long one message, and the close of the session, may take. */
#define ANSWER_MS 2000
#define CLOSE_MS 5000

typedef struct fuzz_outlet {
  ph__outlet base;
  int finished;
  size_t sent;
} fuzz_outlet;

static volatile size_t sink;
/* FUZZ_TRACE set: answers go to stderr, to see what an input reaches. */
static int trace;

static void outlet_send(ph__outlet *o, const char *json, size_t len) {
  fuzz_outlet *f = (fuzz_outlet *)o;

  if (f->finished)
    abort(); /* Nothing may follow the answer. */
  f->sent++;
  sink += len + (json != NULL && len > 0 ? (unsigned char)json[len - 1] : 0);
}

static void outlet_finish(ph__outlet *o, int outcome, const char *json,
                          size_t len) {
  fuzz_outlet *f = (fuzz_outlet *)o;
  cJSON *answer;

  f->finished++;
  sink += (size_t)outcome + len;
  if (trace)
    fprintf(stderr, "answer (%d): %.*s\n", outcome, (int)len, json ? json : "");
  if (json == NULL)
    return;
  /* Whatever the client wrote, what goes back is JSON. */
  answer = cJSON_ParseWithLength(json, len);
  if (answer == NULL) {
    fprintf(stderr, "fuzz_jsonrpc: an answer that is not JSON: %.*s\n",
            (int)len, json);
    abort();
  }
  cJSON_Delete(answer);
}

static void session_notify(ph__session *s, const char *json, size_t len) {
  (void)s;
  (void)json;
  sink += len;
}

/* Runs the loop without blocking until cond() holds or ms pass. */
static int run_until(int (*cond)(void *), void *arg, unsigned ms) {
  uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;

  while (!cond(arg)) {
    if (uv_hrtime() >= end)
      return -1;
    uv_run(&unit_loop, UV_RUN_NOWAIT);
    if (!cond(arg))
      usleep(100);
  }
  return 0;
}

/* Answered, or nothing left that could answer it: a listen's outlet is
 * finished only when its session closes. */
static int answered(void *arg) {
  return ((fuzz_outlet *)arg)->finished > 0 || ph__calls_live() == 0;
}

static int calls_done(void *arg) {
  (void)arg;
  return ph__calls_live() == 0;
}

/* The framing alone: the precheck, the parse and the id as written. */
static void check_framing(const char *text, size_t len) {
  const char *why = NULL;
  cJSON *root;
  char *id;

  if (ph__json_precheck(text, len, 2) == NULL)
    sink++;
  if (ph__json_precheck(text, len, 64) != NULL)
    return;
  root = ph__json_parse_prechecked(text, len, &why);
  if (root == NULL) {
    if (why == NULL)
      abort(); /* A refusal always says why. */
    return;
  }
  id = ph__jsonrpc_id_text(text, len);
  free(id);
  cJSON_Delete(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  ph__generation *g;

  (void)argc;
  (void)argv;
  trace = getenv("FUZZ_TRACE") != NULL;
  unit_setup();
  unit_load("ok.so");
  g = unit_publish("{'page_size':2,'hmac_key':'fuzz',"
                   "'limits':{'max_json_depth':16,'max_inflight_per_session':"
                   "4,'max_batch_members':4},"
                   "'departments':{'default':{'plugins':[{'plugin':'ok'}]}}}",
                   "fuzz_jsonrpc.json");
  if (ph__protocol_init(g->config) != 0)
    abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_outlet outlets[MAX_MESSAGES];
  const char *p = (const char *)data, *end = p + size, *nl;
  ph__session *s;
  int n = 0, i;

  memset(outlets, 0, sizeof(outlets));
  s = ph__session_new("default");
  s->notify = session_notify;
  if (size >= 7 && memcmp(p, "#modern", 7) == 0) {
    s->modern = 1;
    p += 7;
  }
  while (p < end && n < MAX_MESSAGES) {
    size_t len;
    char *msg;

    nl = memchr(p, '\n', (size_t)(end - p));
    len = (size_t)((nl != NULL ? nl : end) - p);
    if (len > 0) {
      /* Exactly len bytes: no terminator to lean on. */
      msg = malloc(len);
      if (msg == NULL)
        abort();
      memcpy(msg, p, len);
      check_framing(msg, len);
      outlets[n].base.send = outlet_send;
      outlets[n].base.finish = outlet_finish;
      ph__protocol_handle(s, &outlets[n].base, msg, len);
      free(msg);
      run_until(answered, &outlets[n], ANSWER_MS);
      n++;
    }
    p += len + (nl != NULL);
  }
  ph__session_close(s);
  if (run_until(calls_done, NULL, CLOSE_MS) != 0) {
    fprintf(stderr, "fuzz_jsonrpc: calls still live after the session\n");
    abort();
  }
  for (i = 0; i < n; i++)
    if (outlets[i].finished != 1) {
      fprintf(stderr, "fuzz_jsonrpc: message %d finished %d times\n", i,
              outlets[i].finished);
      abort();
    }
  return 0;
}
