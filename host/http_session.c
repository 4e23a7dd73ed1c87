/* http_session.c: see http_session.h. */
#include "http_session.h"

#include "alloc.h"
#include "log.h"
#include "queue.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SSE reconnection delay we suggest (SEP-1699). */
#define RETRY_MS 5000
/* A legacy stream whose connection dropped mid-call may be resumed this
 * long; then its call is given up, as nobody is left to read it. */
#define RESUME_GRACE_MS 10000
/* Replay buffer per session. */
#define REPLAY_MAX_EVENTS 256
#define REPLAY_MAX_BYTES (2u << 20)
#define SESSION_BUCKETS 1024
#define SESSION_ID_BYTES 16

typedef struct event {
  unsigned stream, seq;
  char *data;
  size_t len;
} event;

struct ph__sse_stream {
  ph__sse_stream *next;
  ph__http_session *ms;
  unsigned id, seq;
  ph__http_response_t *res; /* Attached connection, or NULL. */
  void *feeder;             /* The POST still feeding it, or NULL. */
  int done;                 /* The final response went out. */
  uint64_t detached_at;
};

/* Ordered by size, so that with the client links it still fits the malloc
 * chunk it had (152 bytes of 160): the HTTP benchmark counts the bytes of
 * an idle session. */
struct ph__http_session {
  ph__http_session *hnext; /* Hash chain. */
  ph__queue lru;           /* In S.idle (least recently used last) or S.busy. */
  ph__queue peer;          /* Among its client's idle sessions, if idle. */
  ph__client *client;      /* Who opened it. */
  ph__session *s;
  uint64_t last_used;
  ph__sse_stream *streams;
  event *events; /* Ring of REPLAY_MAX_EVENTS. */
  size_t event_bytes;
  unsigned first, nevents;
  int refs; /* The table's and one per exchange. */
  int closed;
  unsigned next_stream;
  int nexchanges;
  char id[2 * SESSION_ID_BYTES + 1];
};

static struct {
  uv_loop_t *loop;
  ph__http_session *buckets[SESSION_BUCKETS];
  ph__queue idle; /* Idle sessions, most recently used first. */
  ph__queue busy; /* Sessions with an exchange or an attached stream. */
  int nsessions;
} S;

void ph__http_sessions_init(uv_loop_t *loop) {
  S.loop = loop;
  ph__queue_init(&S.idle);
  ph__queue_init(&S.busy);
}

void ph__sse_event(ph__http_response_t *res, const char *id, const char *data,
                   size_t len, int retry) {
  size_t cap = len + 96, pos = 0, i, start = 0;
  char *buf = ph__xmalloc(cap + len / 8 + 16), *grown;

  if (retry)
    pos += (size_t)sprintf(buf + pos, "retry: %d\n", RETRY_MS);
  if (id != NULL)
    pos += (size_t)sprintf(buf + pos, "id: %s\n", id);
  if (len > 0)
    pos += (size_t)sprintf(buf + pos, "event: message\n");
  for (i = 0; i <= len; i++) {
    if (i < len && data[i] != '\n')
      continue;
    if (pos + (i - start) + 8 > cap) {
      cap = 2 * cap + (i - start) + 8;
      grown = ph__xrealloc(buf, cap);
      buf = grown;
    }
    memcpy(buf + pos, "data: ", 6);
    pos += 6;
    memcpy(buf + pos, data + start, i - start);
    pos += i - start;
    buf[pos++] = '\n';
    start = i + 1;
  }
  buf[pos++] = '\n';
  ph__http_stream_write(res, buf, pos);
  free(buf);
}

static unsigned hash_id(const char *id) {
  unsigned h = 2166136261u;

  for (; *id; id++)
    h = (h ^ (unsigned char)*id) * 16777619u;
  return h % SESSION_BUCKETS;
}

ph__http_session *ph__http_session_find(const char *id) {
  ph__http_session *ms;

  for (ms = S.buckets[hash_id(id)]; ms != NULL; ms = ms->hnext)
    if (strcmp(ms->id, id) == 0)
      return ms;
  return NULL;
}

static void session_unref(ph__http_session *ms) {
  size_t i;

  if (--ms->refs > 0)
    return;
  for (i = 0; i < ms->nevents; i++)
    free(ms->events[(ms->first + i) % REPLAY_MAX_EVENTS].data);
  free(ms->events);
  free(ms);
}

static void stream_free(ph__sse_stream *st) {
  ph__sse_stream **p;

  for (p = &st->ms->streams; *p != NULL; p = &(*p)->next) {
    if (*p == st) {
      *p = st->next;
      break;
    }
  }
  free(st);
}

ph__sse_stream *ph__sse_stream_find(const ph__http_session *ms, unsigned id) {
  ph__sse_stream *st;

  for (st = ms->streams; st != NULL; st = st->next)
    if (st->id == id)
      return st;
  return NULL;
}

static int session_idle(const ph__http_session *ms) {
  const ph__sse_stream *st;

  if (ms->nexchanges > 0)
    return 0;
  for (st = ms->streams; st != NULL; st = st->next)
    if (st->res != NULL)
      return 0;
  return 1;
}

/* A busy session goes to S.busy, where neither expiry nor eviction looks;
 * an idle one to the head of S.idle and of its client's idle sessions,
 * which keeps both in least recently used order. */
void ph__http_session_touch(ph__http_session *ms) {
  if (ms->closed)
    return;
  ms->last_used = uv_now(S.loop);
  if (session_idle(ms)) {
    ph__queue_insert_head(&S.idle, &ms->lru);
    ph__client_idle(ms->client, &ms->peer);
  } else {
    ph__queue_insert_head(&S.busy, &ms->lru);
    ph__client_busy(&ms->peer);
  }
}

void ph__http_session_close(ph__http_session *ms) {
  unsigned b = hash_id(ms->id);
  ph__http_session **p;
  ph__sse_stream *st;

  if (ms->closed)
    return;
  ms->closed = 1;
  for (p = &S.buckets[b]; *p != NULL; p = &(*p)->hnext) {
    if (*p == ms) {
      *p = ms->hnext;
      break;
    }
  }
  ph__queue_remove(&ms->lru);
  ph__client_leave(ms->client, &ms->peer);
  S.nsessions--;
  ms->s->notify = NULL;
  ph__session_close(ms->s);
  while ((st = ms->streams) != NULL) {
    ms->streams = st->next;
    if (st->res != NULL)
      ph__http_stream_end(st->res);
    free(st);
  }
  session_unref(ms);
}

void ph__http_session_hold(ph__http_session *ms) {
  ms->refs++;
  ms->nexchanges++;
  ph__http_session_touch(ms);
}

void ph__http_session_release(ph__http_session *ms) {
  ms->nexchanges--;
  ph__http_session_touch(ms);
  session_unref(ms);
}

const char *ph__http_session_id(const ph__http_session *ms) {
  return ms->id;
}

ph__session *ph__http_session_protocol(const ph__http_session *ms) {
  return ms->s;
}

int ph__http_session_closed(const ph__http_session *ms) {
  return ms->closed;
}

static void replay_add(ph__http_session *ms, unsigned stream_id, unsigned seq,
                       const char *data, size_t len) {
  event *e;

  if (ms->events == NULL)
    ms->events = ph__xcalloc(REPLAY_MAX_EVENTS, sizeof(event));
  while (ms->nevents > 0 && (ms->nevents == REPLAY_MAX_EVENTS ||
                             ms->event_bytes + len > REPLAY_MAX_BYTES)) {
    e = &ms->events[ms->first];
    ms->event_bytes -= e->len;
    free(e->data);
    ms->first = (ms->first + 1) % REPLAY_MAX_EVENTS;
    ms->nevents--;
  }
  e = &ms->events[(ms->first + ms->nevents) % REPLAY_MAX_EVENTS];
  e->stream = stream_id;
  e->seq = seq;
  e->data = ph__xmalloc(len + 1);
  memcpy(e->data, data, len);
  e->data[len] = '\0';
  e->len = len;
  ms->event_bytes += len;
  ms->nevents++;
}

void ph__http_session_replay(const ph__http_session *ms,
                             ph__http_response_t *res, unsigned stream_id,
                             unsigned after) {
  char id[32];
  size_t i;
  event *e;

  for (i = 0; i < ms->nevents; i++) {
    e = &ms->events[(ms->first + i) % REPLAY_MAX_EVENTS];
    if (e->stream != stream_id || e->seq <= after)
      continue;
    snprintf(id, sizeof(id), "%u-%u", e->stream, e->seq);
    ph__sse_event(res, id, e->data, e->len, 0);
  }
}

void ph__sse_stream_emit(ph__sse_stream *st, const char *json, size_t len) {
  char id[32];

  st->seq++;
  snprintf(id, sizeof(id), "%u-%u", st->id, st->seq);
  replay_add(st->ms, st->id, st->seq, json, len);
  if (st->res != NULL)
    ph__sse_event(st->res, id, json, len, 0);
}

void ph__sse_stream_prime(ph__sse_stream *st) {
  char id[32];

  snprintf(id, sizeof(id), "%u-%u", st->id, st->seq);
  ph__sse_event(st->res, id, "", 0, 1);
}

/* Unsolicited messages of a session go on its GET stream; without one
 * they are dropped, as the client did not ask for them. */
static void session_notify(ph__session *s, const char *json, size_t len) {
  ph__http_session *ms = s->transport;
  ph__sse_stream *st;

  if (ms == NULL || ms->closed)
    return;
  st = ph__sse_stream_find(ms, 0);
  if (st != NULL)
    ph__sse_stream_emit(st, json, len);
}

int ph__http_sessions_count(void) {
  return S.nsessions;
}

int ph__http_sessions_make_room(ph__client *c, int max) {
  ph__client *heavy;
  ph__queue *q;
  ph__http_session *ms;

  while (S.nsessions >= max) {
    heavy = ph__clients_heaviest();
    q = ph__client_over_share(c) ? ph__client_oldest_idle(c) : NULL;
    if (q == NULL && heavy != NULL && ph__client_over_share(heavy))
      q = ph__client_oldest_idle(heavy);
    if (q != NULL) {
      ms = PH__QUEUE_DATA(q, ph__http_session, peer);
    } else if ((q = ph__queue_tail(&S.idle)) != NULL) {
      ms = PH__QUEUE_DATA(q, ph__http_session, lru);
    } else {
      return -1;
    }
    ph__info("http: session table full; ending the least recently used "
             "idle session%s",
             ms->client == c ? " of the client asking for one" : "");
    ph__http_session_close(ms);
  }
  return 0;
}

ph__http_session *ph__http_session_new(const char *department, ph__client *c) {
  unsigned char raw[SESSION_ID_BYTES];
  ph__http_session *ms;
  unsigned b;
  int i;

  if (RAND_bytes(raw, sizeof(raw)) != 1)
    return NULL;
  ms = ph__xcalloc(1, sizeof(*ms));
  for (i = 0; i < SESSION_ID_BYTES; i++)
    sprintf(ms->id + 2 * i, "%02x", raw[i]);
  ms->refs = 1;
  ms->next_stream = 1;
  ms->s = ph__session_new(department);
  ms->s->transport = ms;
  ms->s->notify = session_notify;
  b = hash_id(ms->id);
  ms->hnext = S.buckets[b];
  S.buckets[b] = ms;
  S.nsessions++;
  ph__queue_init(&ms->lru);
  ph__queue_init(&ms->peer);
  ms->client = c;
  ph__client_join(c, &ms->peer);
  ph__http_session_touch(ms);
  return ms;
}

/* A stream's connection went: the stream stays, for the client to resume
 * with Last-Event-ID. */
static void stream_gone(ph__http_response_t *res) {
  ph__sse_stream *st = ph__http_response_get_data(res);

  ph__http_response_close(res);
  st->res = NULL;
  st->detached_at = uv_now(S.loop);
  ph__http_session_touch(st->ms);
}

static ph__sse_stream *stream_new(ph__http_session *ms, unsigned id) {
  ph__sse_stream *st = ph__xcalloc(1, sizeof(*st));

  st->ms = ms;
  st->id = id;
  st->next = ms->streams;
  ms->streams = st;
  return st;
}

static void stream_attach(ph__sse_stream *st, ph__http_response_t *res) {
  st->res = res;
  ph__http_response_set_data(res, st);
  ph__http_response_set_gone_cb(res, stream_gone);
}

ph__sse_stream *ph__sse_stream_open(ph__http_session *ms,
                                    ph__http_response_t *res, void *feeder) {
  ph__sse_stream *st = stream_new(ms, ms->next_stream++);

  st->feeder = feeder;
  stream_attach(st, res);
  return st;
}

ph__sse_stream *ph__sse_stream_standalone(ph__http_session *ms) {
  ph__sse_stream *st = ph__sse_stream_find(ms, 0);

  return st != NULL ? st : stream_new(ms, 0);
}

unsigned ph__sse_stream_id(const ph__sse_stream *st) {
  return st->id;
}

int ph__sse_stream_attached(const ph__sse_stream *st) {
  return st->res != NULL;
}

int ph__sse_stream_attach(ph__sse_stream *st, ph__http_response_t *res) {
  if (st->done) {
    ph__http_stream_end(res);
    stream_free(st);
    return 1;
  }
  stream_attach(st, res);
  return 0;
}

void ph__sse_stream_detach(ph__sse_stream *st) {
  if (st->res == NULL)
    return;
  ph__sse_stream_prime(st);
  ph__http_stream_end(st->res);
  st->res = NULL;
  st->detached_at = uv_now(S.loop);
}

void ph__sse_stream_finish(ph__sse_stream *st, const char *json, size_t len) {
  if (json != NULL)
    ph__sse_stream_emit(st, json, len);
  st->done = 1;
  st->feeder = NULL;
  if (st->res != NULL) {
    ph__http_stream_end(st->res);
    st->res = NULL;
    stream_free(st);
  }
}

void ph__http_sessions_sweep(uint64_t now, uint64_t idle_ms, int keepalive,
                             void (*give_up)(void *feeder)) {
  ph__queue *q, *next;
  ph__http_session *ms;
  ph__sse_stream *st;

  while ((q = ph__queue_tail(&S.idle)) != NULL) {
    ms = PH__QUEUE_DATA(q, ph__http_session, lru);
    if (now - ms->last_used <= idle_ms)
      break;
    ph__debug("http: session %.8s… expired", ms->id);
    ph__http_session_close(ms);
  }
  for (q = ph__queue_head(&S.busy); q != NULL; q = next) {
    /* Giving up on a call may file its session elsewhere, never another
     * session: the next one is taken first. */
    next = ph__queue_next(&S.busy, q);
    ms = PH__QUEUE_DATA(q, ph__http_session, lru);
    for (st = ms->streams; st != NULL; st = st->next) {
      if (st->res != NULL && keepalive)
        ph__http_stream_write(st->res, ": keep-alive\n\n", 14);
      if (st->res == NULL && st->feeder != NULL &&
          now - st->detached_at > RESUME_GRACE_MS) {
        give_up(st->feeder);
        break; /* The stream list may have changed. */
      }
    }
  }
}

void ph__http_sessions_end_get_streams(void) {
  ph__queue *q, *next;
  ph__http_session *ms;
  ph__sse_stream *st;

  /* An attached stream makes its session busy. */
  for (q = ph__queue_head(&S.busy); q != NULL; q = next) {
    next = ph__queue_next(&S.busy, q);
    ms = PH__QUEUE_DATA(q, ph__http_session, lru);
    st = ph__sse_stream_find(ms, 0);
    if (st != NULL && st->res != NULL) {
      ph__http_stream_end(st->res);
      st->res = NULL;
      ph__http_session_touch(ms);
    }
  }
}

void ph__http_sessions_close_all(void) {
  ph__queue *q;

  while ((q = ph__queue_head(&S.idle)) != NULL ||
         (q = ph__queue_head(&S.busy)) != NULL)
    ph__http_session_close(PH__QUEUE_DATA(q, ph__http_session, lru));
}
