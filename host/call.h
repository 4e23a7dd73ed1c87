/* call.h: one call into a plugin, from creation to its last reference. The
 * loop thread creates every call and answers it; handlers run on the
 * instance's worker pool (or inline on the loop for tools that promise not
 * to block); replies, progress and messages from worker threads come back
 * to the loop through the completion queue, one uv_async_t. A call carries
 * a deadline, a cancel flag and two references, one for the host (dropped
 * once the call is answered, by reply, timeout or cancellation) and one for
 * the plugin (dropped by its reply).
 *
 * Layers: above instance.h (a call runs on an instance and keeps it),
 * pool.h (where it queues) and outlet.h (where it sends); below host_api.h
 * (which maps the ABI onto these functions), session.h and the protocol (which
 * fill calls in and start them). What the protocol does with answers,
 * notifications and client requests, and how a call lets go of its session,
 * reach it only through the hooks below, set once at start-up.
 *
 * struct ph_call is defined here because the protocol and the HTTP
 * transport still read its fields; it becomes opaque later. */
#ifndef PH_CALL_H
#define PH_CALL_H

#include "instance.h"
#include "outlet.h"
#include "pool.h"

#include <cJSON.h>
#include <stdatomic.h>
#include <stddef.h>
#include <uv.h>

typedef struct ph__session ph__session;

enum ph__call_kind {
  PH__CALL_TOOL,
  PH__CALL_READ,
  PH__CALL_PROMPT,
  PH__CALL_COMPLETE,
  PH__CALL_SERVICE
};

enum ph__era { PH__ERA_LEGACY = 1, PH__ERA_MODERN = 2 };

struct ph_call {
  /* The host's API table, its instance's (ph_call_api() in plughost.h
   * reads it): must stay the first member. */
  const ph_host_api *api;
  atomic_int refs;
  int kind;
  ph_instance *inst;    /* Referenced. */
  ph__session *session; /* Referenced; NULL for service calls. */
  ph_call *parent;      /* Service calls: the call that made them. */
  int depth;            /* Service nesting, bounded. */
  ph__outlet *outlet;   /* Loop thread only; NULL once answered. */
  char *id_json;        /* The request id as JSON text. */
  char *method;         /* The JSON-RPC method. */
  char *progress_token; /* JSON text, or NULL. */
  double last_progress;
  int has_progress;
  int log_level; /* Messages below are dropped; -1 drops all. */
  int era;
  cJSON *client_caps; /* Owned copy; NULL: none declared. */
  char *principal;
  int closable; /* Its outlet can close its stream (set at start). */

  /* What the handler gets. */
  const void *def;
  char *name; /* Exposed name or URI, for log lines and results. */
  char *args_json;
  char *uri;
  char *vars_json;
  char *arg_name, *arg_value, *context_json;
  char *service, *request_json;

  /* Modern input-required rounds. */
  cJSON *input_responses; /* From the retry, or NULL. */
  cJSON *input_requests;  /* Collected this round, or NULL. */
  char *state_in, *state_out;
  char *missing_capability; /* client_request needed what was not declared. */

  /* Legacy server-to-client requests: the worker waits here. */
  uv_mutex_t mu;
  uv_cond_t cv;
  char *client_result; /* Response to our request: {"result":..}/{"error"}. */
  int client_waiting;

  atomic_int replied;
  atomic_int cancelled;
  int answered;  /* Loop only: the host has responded or given up. */
  int started;   /* Loop only: counted among the unanswered calls. */
  int timed_out; /* Loop only. */
  char *result_json;
  int error_code; /* Non-zero: reply_error was used. */
  char *error_message, *error_data;

  uint32_t timeout_ms;
  uv_timer_t timer;
  int timer_active;

  /* The pool job that runs the handler, or the deferred fn. */
  ph__job job;
  /* run_in_pool handed the call over and its fn has not returned: the call
   * cannot be handed over again until then, so that fn's reply is seen
   * first. */
  atomic_int deferred;
  void (*defer_fn)(ph_call *call, void *arg);
  void *defer_arg;

  /* Set by the protocol: runs on the loop thread once, when the call is
   * answered (replied, timed out or cancelled). */
  void (*on_answer)(ph_call *call);
  void *proto_data;
};

_Static_assert(offsetof(struct ph_call, api) == 0,
               "ph_call_api() reads the table from the first member");

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

/* The protocol's hooks, each set once before the first call. */

/* What to do with plugin notifications (PH_NOTIFY_*), on the loop. */
void ph__calls_set_notify_hook(void (*hook)(ph_instance *inst, int kind,
                                            const char *uri));

/* What to do with a plugin's result before it is stored: runs on the
 * replying thread; returns the text to answer with (malloc'd), or NULL
 * with an error code and a malloc'd message. */
void ph__calls_set_reply_shaper(char *(*shaper)(ph_call *call,
                                                const char *result_json,
                                                int *code, char **message));

/* What to do when a legacy call sends a request to its client, on the
 * loop: register `id` for the response and send `json` on the call's
 * outlet. */
void ph__calls_set_client_request_hook(void (*hook)(ph_call *call,
                                                    const char *id,
                                                    const char *json));

/* How a call drops its session reference when it is freed (any thread).
 * The session layer, which is above this one, installs it. */
void ph__calls_set_session_release(void (*release)(ph__session *s));

/* A new call on inst (referenced; may be NULL in tests) with one (host)
 * reference; fills nothing else. Loop thread. */
ph_call *ph__call_new(int kind, ph_instance *inst);
void ph__call_ref(ph_call *call);
void ph__call_unref(ph_call *call); /* Any thread. */

/* Runs the call: inline or on the pool. Returns 0, or UV_EBUSY (the pool
 * queue is full) without having taken anything; the caller then answers
 * and unrefs. Loop thread. */
int ph__call_start(ph_call *call);

/* Loop thread: the client cancelled. The call is answered without a
 * response and its flag set for the plugin to see. */
void ph__call_cancel(ph_call *call);

/* Loop thread: the client answered a server-to-client request. json is the
 * whole response message (copied), or NULL when none will come. */
void ph__call_client_answer(ph_call *call, const char *json);

/* The rest is what host_api.c maps the ABI onto. Any thread unless noted. */

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

/* Sends a message related to the call (progress, a log message) on its
 * outlet before its answer, in order; takes text. */
void ph__call_send(ph_call *call, char *text);

/* Legacy server-to-client request, from a worker thread: sends request
 * (taken) with id `id_json` through the loop and blocks until the client
 * answers (ph__call_client_answer) or the call is cancelled. Returns the
 * whole response message (caller frees) or NULL when none came. */
char *ph__call_ask_client(ph_call *call, const char *id_json, char *request);

/* Closes the call's stream now on the loop thread, or after what the call
 * sent before when called elsewhere. */
void ph__call_close_stream(ph_call *call);

/* run_in_pool: runs fn(call, arg) on a worker of the call's instance. The
 * queue holds a reference until fn returns. Returns 0, PH__ENOTSUP for a
 * call without a pool (a service call), PH__EINVAL for a call replied to
 * or handed over already, or UV_EBUSY when the queue is full or stopping. */
int ph__call_defer(ph_call *call, void (*fn)(ph_call *call, void *arg),
                   void *arg);

/* notify: hands a plugin's notification (uri copied) to the loop, where the
 * notify hook gets it. Returns 0 or PH__ENOTSUP when no loop runs. */
int ph__calls_notify(ph_instance *inst, int kind, const char *uri);

#endif
