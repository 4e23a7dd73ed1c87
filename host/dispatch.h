/* dispatch.h: calls into plugins. The loop thread creates every call and
 * answers it; handlers run on the instance's worker pool (or inline on the
 * loop for tools that promise not to block); replies, progress and
 * messages from worker threads come back to the loop through one
 * uv_async_t. A call carries a deadline, a cancel flag and two references,
 * one for the host (dropped once the call is answered, by reply, timeout or
 * cancellation) and one for the plugin (dropped by its reply). */
#ifndef PH_DISPATCH_H
#define PH_DISPATCH_H

#include "instance.h"
#include "pool.h"

#include <cJSON.h>
#include <stdatomic.h>
#include <uv.h>

typedef struct ph__session ph__session;
typedef struct ph__outlet ph__outlet;

enum ph__call_kind {
  PH__CALL_TOOL,
  PH__CALL_READ,
  PH__CALL_PROMPT,
  PH__CALL_COMPLETE,
  PH__CALL_SERVICE
};

enum ph__era { PH__ERA_LEGACY = 1, PH__ERA_MODERN = 2 };

struct ph_call {
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

/* Initialises dispatch on the loop (call once, on the loop thread), and
 * installs the finaliser that brings instances' last references to it. */
int ph__dispatch_init(uv_loop_t *loop);
/* Closes the async handle. */
void ph__dispatch_close(void);
int ph__on_loop_thread(void);
uv_loop_t *ph__dispatch_loop(void);

/* Number of calls created and not yet freed (for shutdown and leak
 * checks). */
long ph__dispatch_live_calls(void);

/* Calls started and not yet answered (loop only): what shutdown waits
 * for. A call answered by its deadline but never replied to by its plugin
 * no longer counts. */
long ph__dispatch_unanswered_calls(void);

/* What the protocol does with plugin notifications (PH_NOTIFY_*). */
void ph__dispatch_set_notify_hook(void (*hook)(ph_instance *inst, int kind,
                                               const char *uri));
/* What the protocol does with a plugin's result before it is stored: runs
 * on the replying thread; returns the text to answer with, or NULL with an
 * error code and a malloc'd message. */
void ph__dispatch_set_reply_shaper(char *(*shaper)(ph_call *call,
                                                   const char *result_json,
                                                   int *code, char **message));

/* What the protocol does when a legacy call sends a request to its client:
 * registers `id` for the response and sends `json` on the call's outlet. */
void ph__dispatch_set_client_request_hook(void (*hook)(ph_call *call,
                                                       const char *id,
                                                       const char *json));

/* A new call on inst with one (host) reference; fills nothing else. */
ph_call *ph__call_new(int kind, ph_instance *inst);
void ph__call_ref(ph_call *call);
void ph__call_unref(ph_call *call);

/* Runs the call: inline or on the pool. Returns 0, or PH_ENOMEM/-EBUSY
 * style errors (UV_EBUSY: the pool queue is full) without having taken
 * anything; the caller then answers and unrefs. */
int ph__call_start(ph_call *call);

/* Loop thread: the client cancelled. The call is answered without a
 * response and its flag set for the plugin to see. */
void ph__call_cancel(ph_call *call);

/* Loop thread: the client answered a server-to-client request. json is the
 * whole response message. */
void ph__call_client_answer(ph_call *call, const char *json);

/* The host API table handed to plugins. */
extern const ph_host_api ph__host_api;

#endif
