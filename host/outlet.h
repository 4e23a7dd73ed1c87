/* outlet.h: where the messages of one incoming message go: its related
 * notifications first, then its final answer. The transports implement
 * outlets, the protocol hands them to calls, and calls send on them (call.h),
 * so this header sits below all three and needs nothing. */
#ifndef PH_OUTLET_H
#define PH_OUTLET_H

#include <stddef.h>

typedef struct ph__outlet ph__outlet;

struct ph__outlet {
  /* A message related to the request, before its answer: progress, log
   * messages, server-to-client requests. */
  void (*send)(ph__outlet *o, const char *json, size_t len);
  /* The answer: a response (or batch) as JSON, or NULL when none is due (a
   * notification, a response, a cancelled call). status is the HTTP status
   * that fits (200, 202, 400, 404, ...); stdio ignores it. Called exactly
   * once per ph__protocol_handle() for HTTP outlets. */
  void (*finish)(ph__outlet *o, int status, const char *json, size_t len);
  /* Non-zero: a request may be answered with status != 200 (HTTP). */
  int http;
  /* Legacy HTTP only, else NULL: end the connection of the request's SSE
   * stream but keep the stream, for the client to resume (SEP-1699). */
  void (*close_stream)(ph__outlet *o);
};

static inline void ph__outlet_send(ph__outlet *o, const char *json,
                                   size_t len) {
  o->send(o, json, len);
}

#endif
