/* outlet.h: where the messages of one incoming message go: its related
 * notifications first, then its final answer. The transports implement
 * outlets, the protocol hands them to calls, and calls send on them (call.h),
 * so this header sits below all three and needs nothing. */
#ifndef PH_OUTLET_H
#define PH_OUTLET_H

#include <stddef.h>

typedef struct ph__outlet ph__outlet;

/* What an answer means to the transport (HTTP's status in brackets). */
enum ph__outcome {
  PH__OUTCOME_ANSWERED,    /* json is the answer, errors of the legacy eras
                              included (200). */
  PH__OUTCOME_ACCEPTED,    /* Nothing is due; json is NULL (202). */
  PH__OUTCOME_REFUSED,     /* Not a message we take (parse error, invalid
                              request), or a modern request refused for its
                              params, headers, version or capabilities (400). */
  PH__OUTCOME_NOT_FOUND,   /* A modern request for a method it lacks (404). */
  PH__OUTCOME_TOO_LARGE,   /* Past limits.max_message_bytes (413). */
  PH__OUTCOME_BUSY,        /* Too many requests in flight on the session
                              (429). */
  PH__OUTCOME_UNAVAILABLE, /* The plugin's queue is full (503). */
  PH__OUTCOME_FORBIDDEN    /* A tools/call needs a scope the caller lacks,
                              named by need_scope() first (403 with
                              insufficient_scope, or 401 for an anonymous
                              caller). Only on outlets with need_scope. */
};

struct ph__outlet {
  /* A message related to the request, before its answer: progress, log
   * messages, server-to-client requests. */
  void (*send)(ph__outlet *o, const char *json, size_t len);
  /* The answer: a response (or batch) as JSON, or NULL when none is due (a
   * notification, a response, a cancelled call), with what it means
   * (enum ph__outcome), which the HTTP transport maps onto a status and
   * stdio ignores. Called exactly once per ph__protocol_handle(). */
  void (*finish)(ph__outlet *o, int outcome, const char *json, size_t len);
  /* Legacy HTTP only, else NULL: end the connection of the request's SSE
   * stream but keep the stream, for the client to resume (SEP-1699). */
  void (*close_stream)(ph__outlet *o);
  /* HTTP only, else NULL: the scope (borrowed for the call) the answer
   * that follows with PH__OUTCOME_FORBIDDEN is about, for the transport's
   * challenge, so that a client can step up (SEP-2350). Outlets without
   * it get a tool error instead. */
  void (*need_scope)(ph__outlet *o, const char *scope);
};

static inline void ph__outlet_send(ph__outlet *o, const char *json,
                                   size_t len) {
  o->send(o, json, len);
}

#endif
