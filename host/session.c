/* session.c: see session.h. */
#include "session.h"

#include "alloc.h"
#include "call.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ph__session *sessions;
static void (*close_hook)(ph__session *s);

void ph__sessions_set_close_hook(void (*hook)(ph__session *s)) {
  close_hook = hook;
}

ph__session *ph__session_new(const char *department) {
  static int release_installed;
  ph__session *s = ph__xcalloc(1, sizeof(*s));

  /* A call holds its session (ph__call_attach), and the
   * call layer, below this one, lets go of it through this hook. Set before
   * the first session exists, so before any call can hold one. */
  if (!release_installed) {
    ph__calls_set_session_release(ph__session_unref);
    release_installed = 1;
  }
  atomic_init(&s->refs, 1);
  s->department = ph__xstrdup(department);
  s->log_level = PH_LOG_DEBUG;
  s->next = sessions;
  if (sessions != NULL)
    sessions->prev = s;
  sessions = s;
  return s;
}

ph__session *ph__session_first(void) {
  return sessions;
}

void ph__session_ref(ph__session *s) {
  atomic_fetch_add(&s->refs, 1);
}

void ph__session_unref(ph__session *s) {
  size_t i;

  if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
    return;
  /* Only memory here: the last reference may go on a worker thread. */
  for (i = 0; i < s->nsubscriptions; i++)
    free(s->subscriptions[i]);
  free(s->subscriptions);
  free(s->inflight);
  free(s->pending);
  free(s->listen_id);
  cJSON_Delete(s->client_caps);
  free(s->principal);
  free(s->department);
  free(s);
}

size_t ph__session_inflight(const ph__session *s) {
  return s->ninflight;
}

void ph__session_close(ph__session *s) {
  size_t i;

  if (s->closed)
    return;
  s->closed = 1;
  s->notify = NULL;
  /* Calls of a client that is gone are cancelled: nobody will read the
   * answer, and the plugin may stop early. */
  while (s->ninflight > 0)
    ph__call_cancel(s->inflight[s->ninflight - 1]);
  if (close_hook != NULL)
    close_hook(s);
  for (i = 0; i < s->npending; i++) {
    ph__call_client_answer(s->pending[i].call, NULL);
    ph__call_unref(s->pending[i].call);
    free(s->pending[i].id);
  }
  s->npending = 0;
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    sessions = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  s->prev = s->next = NULL;
  ph__session_unref(s);
}
