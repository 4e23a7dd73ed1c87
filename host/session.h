/* session.h: what the protocol knows about one client connection: a stdio
 * process, a legacy HTTP session, or one stateless modern HTTP request, with
 * its calls in flight.
 *
 * Layers: above call.h (closing a session cancels its calls) and outlet.h;
 * below the protocol, the tasks and the transports. A call keeps its
 * session alive through the release hook this layer installs in call.h. */
#ifndef PH_SESSION_H
#define PH_SESSION_H

#include "outlet.h"

#include <cJSON.h>
#include <stdatomic.h>
#include <stddef.h>

typedef struct ph_call ph_call;
typedef struct ph__session ph__session;

typedef struct ph__pending {
  char *id; /* Our request id, JSON text. */
  ph_call *call;
} ph__pending;

struct ph__session {
  atomic_int refs;
  ph__session *prev, *next; /* All live sessions; loop thread only. */
  char *department;
  char *principal; /* Claims JSON of the authenticated client, or NULL. */
  char client_address[48]; /* The peer, for audit lines; "" if none. */
  int initialized;         /* initialize answered (legacy). */
  int ready;               /* notifications/initialized received. */
  char version[16];
  cJSON *client_caps;
  int log_level; /* Legacy logging/setLevel threshold. */
  ph_call **inflight;
  size_t ninflight, capinflight;
  ph__pending *pending;
  size_t npending, cappending;
  char **subscriptions;
  size_t nsubscriptions;
  /* Unsolicited messages (list_changed, resources/updated): the stdio
   * stream or the legacy GET stream. NULL drops them. */
  void (*notify)(ph__session *s, const char *json, size_t len);
  void *transport;
  int closed;
  /* Every request is modern (a stateless HTTP request), _meta or not. */
  int modern;
  /* A 2026-07-28 subscriptions/listen: its outlet (never finished until
   * the session closes), its request id (JSON text) and what it asked for
   * (bits 1 << PH__TOOL etc.; resource URIs go to subscriptions). */
  ph__outlet *listen_outlet;
  char *listen_id;
  unsigned listen_kinds;
};

/* A new session in `department`, with one reference. Loop thread. */
ph__session *ph__session_new(const char *department);
void ph__session_ref(ph__session *s);
void ph__session_unref(ph__session *s); /* Any thread. */

/* Once, by the protocol: runs on the loop when a session closes, after its
 * calls are cancelled, to end what the protocol holds open on it (a
 * listen's outlet). */
void ph__sessions_set_close_hook(void (*hook)(ph__session *s));

/* Loop thread: cancels its calls, runs the close hook, forgets its pending
 * requests, leaves the session list and drops the caller's reference. */
void ph__session_close(ph__session *s);

/* Loop thread: iterate over live sessions. */
ph__session *ph__session_first(void);

/* Number of in-flight calls of a session. */
size_t ph__session_inflight(const ph__session *s);

#endif
