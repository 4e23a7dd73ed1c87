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
  PH__OUTCOME_ANSWERED,   /* json is the answer, errors of the legacy eras
                             included (200). */
  PH__OUTCOME_ACCEPTED,   /* Nothing is due; json is NULL (202). */
  PH__OUTCOME_REFUSED,    /* Not a message we take (parse error, invalid
                             request), or a modern request refused for its
                             params, headers, version or capabilities (400). */
  PH__OUTCOME_NOT_FOUND,  /* A modern request for a method it lacks (404). */
  PH__OUTCOME_TOO_LARGE,  /* Past limits.max_message_bytes (413). */
  PH__OUTCOME_BUSY,       /* Too many requests in flight on the session
                             (429). */
  PH__OUTCOME_UNAVAILABLE /* The plugin's queue is full (503). */
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
};

static inline void ph__outlet_send(ph__outlet *o, const char *json,
                                   size_t len) {
  o->send(o, json, len);
}

#endif
