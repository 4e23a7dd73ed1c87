/* call.h: one call into a plugin, from creation to its last reference. The
 * loop thread creates every call and answers it; handlers run on the
 * instance's worker pool (or inline on the loop for tools that promise not
 * to block); replies, progress and messages from worker threads come back
 * to the loop through the completion queue, one uv_async_t. A call carries
 * a deadline, a cancel flag and two references, one for the host (dropped
 * once the call is answered, by reply, timeout or cancellation) and one for
 * the plugin (dropped by its reply).
 *
 * A call is opaque outside call.c. What goes up to the client goes up as
 * typed events (ph__call_event: progress, a log message, a request to the
 * client) and one typed answer (ph__call_answer), which the protocol
 * renders as JSON-RPC through the hooks below; nothing here knows JSON-RPC
 * framing, eras or HTTP. The protocol keeps its own per-call state in the
 * part ph__call_new() allocates with the call (ph__call_proto()).
 *
 * Layers: above instance.h (a call runs on an instance and keeps it),
 * pool.h (where it queues) and outlet.h (where it sends); below host_api.h
 * (which maps the ABI onto these functions), session.h and the protocol
 * (which fill calls in and start them). The protocol's hooks and the
 * session release are set once at start-up. */
#ifndef PH_CALL_H
#define PH_CALL_H

#include "instance.h"
#include "outlet.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ph__session ph__session;

enum ph__call_kind {
  PH__CALL_TOOL,
  PH__CALL_READ,
  PH__CALL_PROMPT,
  PH__CALL_COMPLETE,
  PH__CALL_SERVICE
};

/* Client capabilities a call may need for ph__call_ask(). */
enum {
  PH__CLIENT_SAMPLING = 1u << 0,
  PH__CLIENT_ELICITATION = 1u << 1,
  PH__CLIENT_ROOTS = 1u << 2
};

/* How a call's requests to its client are answered. */
enum ph__ask_mode {
  PH__ASK_WAIT,  /* Sent to the client now; the worker waits (legacy). */
  PH__ASK_ROUND, /* Collected and answered as input required; the retry
                    brings the answers and the plugin's state (modern). */
};

/* Who the call is made for, set once before it starts. */
typedef struct ph__call_client {
  const char *principal; /* Claims JSON (copied), or NULL. */
  unsigned caps;         /* PH__CLIENT_* the client declared. */
  int log_level;         /* Messages below are dropped; -1 drops all. */
  int progress;          /* Non-zero: the client asked for progress. */
  int ask_mode;          /* enum ph__ask_mode. */
} ph__call_client;

/* What a call sends towards its client before its answer. Loop thread;
 * every pointer is borrowed for the hook's duration. */
enum ph__call_event_kind {
  PH__EVENT_PROGRESS,      /* progress, total (< 0: none), message. */
  PH__EVENT_MESSAGE,       /* level (PH_LOG_*), logger, data_json. */
  PH__EVENT_CLIENT_REQUEST /* method, params_json; PH__ASK_WAIT only. */
};

typedef struct ph__call_event {
  int kind;
  double progress, total;
  const char *message; /* Progress: NULL or a text for the client. */
  int level;
  const char *logger;      /* Message: NULL or the logger's name. */
  const char *data_json;   /* Message: any text, JSON or not. */
  const char *method;      /* Client request. */
  const char *params_json; /* Client request: a JSON object. */
} ph__call_event;

/* How a call ended, as its answer hook sees it (loop thread, borrowed). */
enum ph__call_answer_kind {
  PH__ANSWER_RESULT,    /* result_json, shaped by the shape hook. */
  PH__ANSWER_ERROR,     /* code, message, data_json (JSON or NULL). */
  PH__ANSWER_TIMEOUT,   /* The deadline passed; nothing came. */
  PH__ANSWER_CANCELLED, /* The client cancelled: no response is due. */
  PH__ANSWER_INPUT,     /* PH__ASK_ROUND: requests (by key) and state. */
  PH__ANSWER_MISSING    /* PH__ASK_ROUND: capability was not declared. */
};

typedef struct ph__call_answer {
  int kind;
  const char *result_json;
  int code;
  const char *message, *data_json;
  const cJSON *requests; /* {key: {"method":..,"params":..}} */
  const char *state;     /* The plugin's state for the next round. */
  unsigned capability;   /* One PH__CLIENT_* bit. */
} ph__call_answer;

/* The protocol's side, set once before the first call. */
typedef struct ph__call_hooks {
  /* Runs on the replying thread before a result is stored: returns the
   * text to answer with (malloc'd), or NULL with an error code and a
   * malloc'd message. NULL hook: the result need only be JSON. */
  char *(*shape)(ph_call *call, const char *result_json, int *code,
                 char **message);
  /* Loop thread, once per started call, when it is answered. */
  void (*answer)(ph_call *call, const ph__call_answer *a);
  /* Loop thread, for each event of a call not yet answered. */
  void (*event)(ph_call *call, const ph__call_event *ev);
  /* Any thread: the call is being freed; release what its protocol part
   * holds (not the part itself). */
  void (*release)(ph_call *call);
  /* Loop thread: a plugin's notification (PH_NOTIFY_*). */
  void (*notify)(ph_instance *inst, int kind, const char *uri);
} ph__call_hooks;

/* Starts the call layer on `loop` (call once, on the loop thread): the
 * completion queue, and the finaliser that brings instances' last
 * references to the loop. Returns 0 or libuv's error. */
int ph__calls_init(uv_loop_t *loop);

/* Loop thread, at shutdown: closes the watches left (instance.h), answers
 * what is queued and closes the completion queue. From then on nothing is
 * unloaded: calls still running keep their code mapped. */
void ph__calls_close(void);

/* Whether the caller runs on the loop thread of ph__calls_init. */
int ph__on_loop_thread(void);

/* The loop of ph__calls_init (borrowed), or NULL before it. */
uv_loop_t *ph__calls_loop(void);

/* Calls created and not yet freed (for shutdown and leak checks). Any
 * thread. */
long ph__calls_live(void);

/* Calls started and not yet answered (loop only): what shutdown waits for.
 * A call answered by its deadline but never replied to by its plugin no
 * longer counts. */
long ph__calls_unanswered(void);

/* The protocol's hooks (copied), once before the first call. */
void ph__calls_set_hooks(const ph__call_hooks *hooks);

/* How a call drops its session reference when it is freed (any thread).
 * The session layer, which is above this one, installs it. */
void ph__calls_set_session_release(void (*release)(ph__session *s));

/* A new call on inst (referenced; may be NULL in tests) with one (host)
 * reference and proto_size zeroed bytes for the protocol, allocated with
 * it (no second allocation) and freed with it after the release hook.
 * Loop thread. */
ph_call *ph__call_new(int kind, ph_instance *inst, size_t proto_size);
void ph__call_ref(ph_call *call);
void ph__call_unref(ph_call *call); /* Any thread. */

/* References held now (leak checks and tests). Any thread. */
int ph__call_refs(const ph_call *call);

/* The protocol's part of the call (max_align_t aligned), or NULL when
 * proto_size was 0. */
void *ph__call_proto(ph_call *call);

/* Filling a call in: loop thread, before ph__call_start(). Strings are
 * copied unless the name says take. */

/* What the handler runs: its definition and the exposed name or URI that
 * log lines and error messages use. */
void ph__call_set_target(ph_call *call, const void *def, const char *name);
/* Tools and prompts: the arguments (JSON object text, taken). */
void ph__call_take_args(ph_call *call, char *args_json);
/* Reads: the URI and, for a template, its variables (JSON, taken). */
void ph__call_set_resource(ph_call *call, const char *uri, char *vars_json);
/* Completions: the argument and the context's arguments (JSON, taken). */
void ph__call_set_completion(ph_call *call, const char *arg_name,
                             const char *arg_value, char *context_json);
/* Where the call's messages and answer go: s is referenced. */
void ph__call_attach(ph_call *call, ph__session *s, ph__outlet *o);
void ph__call_set_client(ph_call *call, const ph__call_client *client);
/* 0: no deadline. */
void ph__call_set_timeout(ph_call *call, uint32_t timeout_ms);
/* PH__ASK_ROUND retries: the client's answers by key (taken) and the
 * plugin's verified state (taken), either NULL. */
void ph__call_take_round(ph_call *call, cJSON *responses, char *state);

/* Reading a call: loop thread, or the replying thread in the shape hook. */
int ph__call_kind(const ph_call *call);
const void *ph__call_def(const ph_call *call);
const char *ph__call_name(const ph_call *call); /* "call" when none. */
const char *ph__call_uri(const ph_call *call);
const char *ph__call_args(const ph_call *call);
ph_instance *ph__call_instance(const ph_call *call);
ph__session *ph__call_session(const ph_call *call);
/* NULL once answered. */
ph__outlet *ph__call_outlet(const ph_call *call);
uint32_t ph__call_timeout_ms(const ph_call *call);

/* Runs the call's handler on this thread: the plugin's own, or for an
 * isolated instance its runner's (isolate.h), waiting for it. For service
 * calls, which run on their caller's thread. */
void ph__call_invoke(ph_call *call);

/* Runs the call: inline or on the pool. Returns 0, or UV_EBUSY (the pool
 * queue is full) without having taken anything; the caller then answers
 * and unrefs. Loop thread. */
int ph__call_start(ph_call *call);

/* Loop thread: the client cancelled. The call is answered without a
 * response and its flag set for the plugin to see. */
void ph__call_cancel(ph_call *call);

/* Loop thread: the client answered a PH__EVENT_CLIENT_REQUEST. result_json
 * is its result (copied), or NULL for an error or when none will come. */
void ph__call_client_answer(ph_call *call, const char *result_json);

/* The rest is what host_api.c maps the ABI onto. Any thread unless noted.
 * Calls made by a service call act for the call at the root of the chain:
 * its client, its outlet. */

/* reply: stores the plugin's result (shaped by the protocol's hook, or
 * checked to be JSON) and answers the call on the loop. Returns 0,
 * PH__EALREADY (logged) or, on the loop thread, PH__ECANCELED for a call
 * answered already. */
int ph__call_reply(ph_call *call, const char *result_json);

/* reply_error: the same with a JSON-RPC error; message and data_json
 * (JSON text or NULL) are copied. */
int ph__call_reply_error(ph_call *call, int code, const char *message,
                         const char *data_json);

/* The plugin's side of the call is over: if it never replied (a service
 * handler that returned without a reply, a call cancelled before it ran),
 * the plugin's reference goes now. */
void ph__call_plugin_done(ph_call *call);

/* Whether the call or one it was made by was cancelled. */
int ph__call_cancelled(const ph_call *call);

/* The principal's claims JSON, borrowed for the call, or NULL. */
const char *ph__call_principal(const ph_call *call);

/* A log message for the client (level PH_LOG_*; strings copied), sent
 * before the answer, in order. Returns 0 (also when the client's level
 * drops it) or PH__ECANCELED. */
int ph__call_message(ph_call *call, int level, const char *logger,
                     const char *data_json);

/* Progress, which must increase (total < 0: none; message may be NULL).
 * Returns 0, PH__ENOTSUP (the client asked for none), PH__EINVAL or
 * PH__ECANCELED. */
int ph__call_progress(ph_call *call, double progress, double total,
                      const char *message);

/* A request to the client that needs capability (one PH__CLIENT_* bit)
 * under `key`, params a JSON object (copied). PH__ASK_WAIT: sent through
 * the loop, and this worker blocks until the client answers or the call is
 * cancelled. PH__ASK_ROUND: the answer the retry brought, or the request
 * is kept for the input-required answer. Returns 0 with the result
 * (caller frees) in *result_json, PH__EINPUT, PH__ENOTSUP (not declared,
 * or waiting is impossible here), PH__ECANCELED or PH__EFAIL. */
int ph__call_ask(ph_call *call, unsigned capability, const char *key,
                 const char *method, cJSON *params, char **result_json);

/* The plugin's state for the next round (copied), PH__ASK_ROUND only:
 * returns 0 or PH__ENOTSUP. And the state the retry brought, or NULL. */
int ph__call_set_state(ph_call *call, const char *state);
const char *ph__call_state(const ph_call *call);

/* Closes the call's stream (legacy HTTP): now on the loop thread, or after
 * what the call sent before when called elsewhere. Returns 0, PH__ENOTSUP
 * when its outlet cannot, or PH__ECANCELED. */
int ph__call_close_stream(ph_call *call);

/* run_in_pool: runs fn(call, arg) on a worker of the call's instance. The
 * queue holds a reference until fn returns. Returns 0, PH__ENOTSUP for a
 * call without a pool (a service call), PH__EINVAL for a call replied to
 * or handed over already, or UV_EBUSY when the queue is full or stopping. */
int ph__call_defer(ph_call *call, void (*fn)(ph_call *call, void *arg),
                   void *arg);

/* Service calls. A call on provider made by parent (service and request
 * copied), run on the caller's thread; its messages go nowhere. */
ph_call *ph__call_new_service(ph_call *parent, ph_instance *provider,
                              const char *service, const char *request_json);
/* How deep in service calls this one is (0: made by a client). */
int ph__call_depth(const ph_call *call);
/* Whether the plugin replied; then its result (taken, or NULL) or its
 * error code (0: none), message and data (borrowed). */
int ph__call_replied(const ph_call *call);
char *ph__call_take_result(ph_call *call, int *code, const char **message,
                           const char **data_json);

/* notify: hands a plugin's notification (uri copied) to the loop, where the
 * notify hook gets it. Returns 0 or PH__ENOTSUP when no loop runs. */
int ph__calls_notify(ph_instance *inst, int kind, const char *uri);

#endif
