/* pg_read.c: reads driven from the host's event loop. A read that needs no
 * plan check starts on the loop thread when a link is idle (libpq in
 * non-blocking mode, its socket watched with ABI 1.2 watch_fd) or waits
 * its turn for one a read of the loop will free; what would block the loop
 * (PQcancel, cutting a silent server) is left to the watcher thread
 * (pg_watch_async). */
#include "engine_pg.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* ---- reads driven from the host's loop ---- */

/* A read whose pipeline went out from the loop thread (pg_query_start): the
 * host's loop watches the connection's socket and on_pg_io reads what
 * arrived, so a point lookup costs no hand-off to a worker and back. The
 * watcher thread does what would block: PQcancel for a client's
 * cancellation, a missed deadline or rows past the limit, and after
 * ABANDON_AFTER_MS without an answer, a shutdown of the socket, which
 * the loop then reads as a broken link. */
typedef struct pg_async pg_async;

static void on_pg_io(int fd, int events, void *data);

struct pg_async {
  struct pg_async *next;  /* In s->async, under s->lock. */
  struct pg_async *wnext; /* In s->waiting, under s->lock. */
  db *d;
  pg_conn *c;
  const db_request *rq;
  db_rows *out;
  char **values;
  int nvalues;
  char *bounded; /* The statement run (pg_bound_sql), or NULL: rq->sql. */
  int fd;
  int watch_write; /* Output is pending: watched for writing too. */
  size_t wire;     /* Bytes seen waiting on the socket, summed (at least
                      what arrived: a byte may be counted twice). */
  int too_big;     /* wire passed the budget: run it on a worker. */
  pipe_run p;
  db_query_done done;
  void *ctx;
  char *err;
  /* Under s->lock: */
  PGcancel *cancel;  /* Ours until the watcher takes it to send. */
  int cancel_wanted; /* Rows reached the limit. */
  enum pg_stop why;  /* Why the watcher cancelled (client, deadline). */
  long long cancel_at;
  int cut; /* The socket was shut down after ABANDON_AFTER_MS. */
};

/* The loop: reads the result of the ROLLBACK a worker's read left in
 * flight (pg_end_read), if it has arrived, without waiting. Returns 0 when
 * the link is idle now, -1 when the result is not there yet or the link
 * is not sound (then finish_rollback on a worker deals with it). */
static int rollback_arrived(pg_conn *c) {
  PGresult *res;
  int failed = 0;

  if (!pq.PQconsumeInput(c->conn))
    return -1; /* Broken: checkin drops it. */
  while (!pq.PQisBusy(c->conn)) {
    res = pq.PQgetResult(c->conn);
    if (res == NULL) {
      c->rollback_sent = 0;
      if (!failed && pq.PQtransactionStatus(c->conn) == PQTRANS_IDLE)
        return 0;
      pg_link_close(c); /* As finish_rollback does: no one inherits it. */
      return -1;
    }
    if (pq.PQresultStatus(res) != PGRES_COMMAND_OK)
      failed = 1;
    pq.PQclear(res);
  }
  return -1;
}

/* Borrows a connected, idle link without waiting, or returns NULL. A link
 * whose ROLLBACK is still owed (a worker's read ended with it) serves once
 * that has arrived: mixed loads would otherwise leave the loop no link. */
static pg_conn *checkout_now(db *d) {
  pg_state *s = d->engine_state;
  pg_conn *c;
  int i, from = 0;

  for (;;) {
    c = NULL;
    pthread_mutex_lock(&s->lock);
    for (i = from; i < s->nconns && c == NULL; i++)
      if (!s->conns[i].busy && !s->conns[i].cancelling &&
          s->conns[i].conn != NULL)
        c = &s->conns[i];
    if (c != NULL)
      c->busy = 1;
    pthread_mutex_unlock(&s->lock);
    if (c == NULL)
      return NULL;
    from = (int)(c - s->conns) + 1;
    if (pq.PQstatus(c->conn) == CONNECTION_OK &&
        (!c->rollback_sent || rollback_arrived(c) == 0))
      return c;
    /* Not now (or the link was dropped): a worker's checkout finishes the
     * ROLLBACK or reconnects. */
    pg_checkin(d, c);
  }
}

static void async_finish(pg_async *a);

/* Frees a read and what it owns, once it has been answered. */
static void async_free(pg_async *a) {
  pg_free_texts(a->values, a->nvalues);
  free(a->bounded);
  free(a);
}
static void async_next(db *d);
static int hand_over(db *d, pg_conn *c);

static void async_watch(pg_async *a, int write) {
  a->watch_write = write;
  db_api(a->d)->watch_fd(a->d->self, a->fd,
                         PH_WATCH_READ | (write ? PH_WATCH_WRITE : 0), on_pg_io,
                         a);
}

/* The loop: the connection has something for us (or room for output). */
static void on_pg_io(int fd, int events, void *data) {
  pg_async *a = data;
  pg_state *s = a->d->engine_state;
  pg_conn *c = a->c;
  PGresult *res;
  int flushed, over = 0;

  pthread_mutex_lock(&s->lock);
  if (a->why != PG_RUNNING && a->p.stop == PG_RUNNING)
    a->p.stop = a->why;
  pthread_mutex_unlock(&s->lock);
  if (events & PH_WATCH_WRITE) {
    flushed = pq.PQflush(c->conn);
    if (flushed < 0)
      a->p.stop = PG_BROKEN;
    else if (flushed == 0 && a->watch_write)
      async_watch(a, 0);
  }
  if (a->p.stop != PG_BROKEN && (events & PH_WATCH_READ)) {
    int queued = 0;

    /* libpq collects a whole result in memory unless rows come one by
     * one, and one PGresult per row is a tenth of a 100-row page's CPU.
     * So the loop reads whole results, but only up to a budget: a result
     * that outgrows it is dropped (with the link, which stops the server)
     * and run again on a worker, streaming rows. */
    if (ioctl(fd, FIONREAD, &queued) == 0 && queued > 0)
      a->wire += (size_t)queued;
    if (a->wire > a->d->max_bytes * 4 + (1u << 20)) {
      a->too_big = 1;
      a->p.stop = PG_BROKEN;
    } else if (!pq.PQconsumeInput(c->conn)) {
      a->p.stop = PG_BROKEN;
    }
  }
  while (a->p.stop != PG_BROKEN && a->p.at < a->p.nsteps &&
         !pq.PQisBusy(c->conn)) {
    res = pq.PQgetResult(c->conn);
    if (res == NULL) {
      if (pg_pipe_step_over(c, &a->p) != 0)
        a->p.stop = PG_BROKEN;
      continue;
    }
    pg_pipe_result(a->d, c, a->rq, &a->p, res, a->out, &a->err);
    if (a->p.over) {
      a->p.over = 0;
      over = 1;
    }
  }
  if (pq.PQstatus(c->conn) != CONNECTION_OK)
    a->p.stop = PG_BROKEN;
  if (over) {
    pthread_mutex_lock(&s->lock);
    a->cancel_wanted = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
  }
  if (a->p.stop == PG_BROKEN || a->p.at >= a->p.nsteps)
    async_finish(a);
}

/* The loop: the read is over; give the link back and report. */
static void async_finish(pg_async *a) {
  db *d = a->d;
  pg_state *s = d->engine_state;
  pg_conn *c = a->c;
  pg_async **pp;
  PGcancel *cancel;
  int rc, fresh, keep, fd = a->fd;

  pthread_mutex_lock(&s->lock);
  for (pp = &s->async; *pp != NULL; pp = &(*pp)->next)
    if (*pp == a) {
      *pp = a->next;
      break;
    }
  cancel = a->cancel;
  a->cancel = NULL;
  if (a->why != PG_RUNNING && a->p.stop == PG_RUNNING)
    a->p.stop = a->why;
  if (a->cut)
    a->p.stop = PG_BROKEN;
  /* The link may go straight to a waiting read if it is sound and no
   * cancel is on its way to it. */
  keep = s->waiting != NULL && a->p.stop == PG_RUNNING && !a->p.stale &&
         !a->too_big && c->cancelling == 0 && fd >= 0;
  pthread_mutex_unlock(&s->lock);
  if (!keep && fd >= 0)
    db_api(d)->watch_fd(d->self, fd, 0, NULL, NULL);
  if (cancel != NULL)
    pq.PQfreeCancel(cancel);
  rc = pg_pipe_end(c, a->rq, &a->p, &a->err, &fresh);
  if (keep && (c->conn == NULL || pq.PQstatus(c->conn) != CONNECTION_OK ||
               pq.PQtransactionStatus(c->conn) != PQTRANS_IDLE)) {
    db_api(d)->watch_fd(d->self, fd, 0, NULL, NULL);
    keep = 0;
  }
  if (!keep) {
    if (c->conn != NULL)
      pq.PQsetnonblocking(c->conn, 0);
    pg_end_read(d, c);
  }
  if (rc != DB_OK && (fresh || a->too_big || a->p.bound_failed) &&
      db_now_ms() < a->rq->deadline) {
    /* Nothing of the client's ran (or a kept statement went stale, or the
     * result was too big to read whole, or it held a row past the limit,
     * which a page streamed row by row may end before): the worker path
     * runs it again, reconnecting if need be. */
    free(a->err);
    a->err = NULL;
    rc = DB_EAGAIN;
  }
  a->done(a->ctx, rc, a->err);
  async_free(a);
  s->loop_reads--;
  if (keep && hand_over(d, c) < 0) {
    db_api(d)->watch_fd(d->self, fd, 0, NULL, NULL);
    pq.PQsetnonblocking(c->conn, 0);
    pg_checkin(d, c);
  }
  async_next(d);
}

/* Sends a's pipeline on c (borrowed, idle) and has the loop watch it;
 * watched: c's socket is still watched, handed over by the read before.
 * Returns 0, or -1 when the send failed: then c is given back (its watch
 * stopped) and a is as it was. */
static int launch_on(pg_async *a, pg_conn *c, int watched) {
  db *d = a->d;
  pg_state *s = d->engine_state;
  int flushed, fd = pq.PQsocket(c->conn);

  a->c = c;
  a->fd = fd;
  a->cancel = pq.PQgetCancel(c->conn);
  if (fd < 0 || pq.PQsetnonblocking(c->conn, 1) != 0 ||
      pg_pipe_send(c, a->rq, a->bounded != NULL ? a->bounded : a->rq->sql,
                   a->values, a->nvalues, &a->p) != 0) {
    if (watched)
      db_api(d)->watch_fd(d->self, fd, 0, NULL, NULL);
    if (a->cancel != NULL)
      pq.PQfreeCancel(a->cancel);
    a->cancel = NULL;
    a->fd = -1;
    if (c->conn != NULL)
      pq.PQsetnonblocking(c->conn, 0);
    pg_checkin(d, c);
    return -1;
  }
  a->p.single_row = 0; /* See on_pg_io. */
  /* A failed flush leaves the socket in error: the loop reports it at
   * once and on_pg_io finds the broken link. */
  flushed = pq.PQflush(c->conn);
  s->loop_reads++;
  pthread_mutex_lock(&s->lock);
  a->next = s->async;
  s->async = a;
  if (s->idle_watcher)
    pthread_cond_signal(&s->wake); /* To watch deadlines from now on. */
  pthread_mutex_unlock(&s->lock);
  async_watch(a, flushed == 1);
  return 0;
}

/* launch_on an idle link of the pool, if there is one. */
static int async_launch(pg_async *a) {
  pg_conn *c = checkout_now(a->d);

  return c != NULL ? launch_on(a, c, 0) : -1;
}

/* Ends a read that never reached a link. */
static void async_give_up(pg_async *a, int rc, const char *why) {
  char *err = NULL;

  if (why != NULL)
    db_errorf(&err, "%s", why);
  a->done(a->ctx, rc, err);
  async_free(a);
}

/* Takes the first waiting read off the list (under s->lock). */
static pg_async *waiting_pop(pg_state *s) {
  pg_async *a;

  pthread_mutex_lock(&s->lock);
  a = s->waiting;
  if (a != NULL) {
    s->waiting = a->wnext;
    if (s->waiting == NULL)
      s->waiting_tail = NULL;
  }
  pthread_mutex_unlock(&s->lock);
  return a;
}

static void waiting_push_front(pg_state *s, pg_async *a) {
  pthread_mutex_lock(&s->lock);
  a->wnext = s->waiting;
  s->waiting = a;
  if (s->waiting_tail == NULL)
    s->waiting_tail = a;
  pthread_mutex_unlock(&s->lock);
}

/* Answers a waiting read the client cancelled or whose deadline passed
 * (now); returns 0 when it is still wanted. */
static int give_up_if_late(db *d, pg_async *a, long long now) {
  if (a->rq->call != NULL && db_api(d)->cancelled(a->rq->call))
    async_give_up(a, DB_ECANCELED, "Query cancelled by the client");
  else if (now >= a->rq->deadline)
    async_give_up(a, DB_ETIMEOUT,
                  "Query timed out waiting for a free connection");
  else
    return 0;
  return 1;
}

/* The first waiting read still wanted, off the list, or NULL. */
static pg_async *waiting_next(db *d) {
  pg_async *a;

  while ((a = waiting_pop(d->engine_state)) != NULL)
    if (!give_up_if_late(d, a, db_now_ms()))
      return a;
  return NULL;
}

/* The loop, as a read ends with its link healthy while others wait: the
 * first of them gets the link as it is, still watched, which spares two
 * changes of the loop's poll set and the pool's lock per read under load
 * (epoll_ctl was half the system calls of a read). Returns 0 when a read
 * took it; else the link is still the caller's, watched. */
static int hand_over(db *d, pg_conn *c) {
  pg_async *a = waiting_next(d);

  if (a == NULL)
    return -1;
  if (launch_on(a, c, 1) == 0)
    return 0;
  /* The send failed and gave c back: a goes first in line again. */
  waiting_push_front(d->engine_state, a);
  return 1;
}

/* The loop, after a read gave its link back: starts the reads waiting for
 * one, in order. One that cannot start while no read of the loop is in
 * flight (workers hold every link) goes to a worker, which waits for a
 * link with its deadline; nothing waits here without a read of the loop
 * to wake it. The watcher answers those whose deadline passes meanwhile
 * (pg_watch_async). */
static void async_next(db *d) {
  pg_state *s = d->engine_state;
  pg_async *a;

  while ((a = waiting_next(d)) != NULL) {
    if (async_launch(a) == 0)
      continue;
    if (s->loop_reads > 0) {
      waiting_push_front(s, a); /* Back to the head of the line. */
      break;
    }
    async_give_up(a, DB_EAGAIN, NULL);
  }
}

/* Starts a read on the loop thread when it can run without blocking: the
 * statement needs no plan check, and a connected link is idle or one of
 * the loop's reads will free one (the read then waits its turn here, not
 * on a worker thread). Returns DB_OK when started (done is called later
 * on the loop, with the error text to free, or DB_EAGAIN to run it on a
 * worker instead), DB_EAGAIN when it cannot start here, or the refusal
 * (with *err). */
int pg_query_start(db *d, const db_request *rq, db_rows *out,
                   db_query_done done, void *ctx, char **err) {
  pg_state *s = d->engine_state;
  pg_async *a;
  sql_scan scan;
  int rc, ok;

  char *bounded = NULL;

  rc = pg_screen(d, rq, 0, &scan, err);
  if (rc != DB_OK)
    return rc;
  ok = pg_pipeline_ok(d, &scan);
  if (ok)
    rc = pg_screen_names(d, &scan, err);
  if (rc == DB_OK && ok)
    rc = pg_bound_sql(d, rq->sql, &scan, &bounded, err);
  sql_scan_free(&scan);
  if (rc != DB_OK)
    return rc;
  if (!ok)
    return DB_EAGAIN;
  a = calloc(1, sizeof(*a));
  if (a == NULL) {
    free(bounded);
    return DB_EAGAIN;
  }
  a->bounded = bounded;
  if (pg_param_texts(rq->params, &a->values, &a->nvalues, err) != DB_OK) {
    async_free(a);
    return DB_EINVALID;
  }
  a->d = d;
  a->rq = rq;
  a->out = out;
  a->done = done;
  a->ctx = ctx;
  a->fd = -1;
  if (s->waiting == NULL && async_launch(a) == 0)
    return DB_OK;
  if (s->loop_reads > 0) {
    pthread_mutex_lock(&s->lock);
    if (s->waiting_tail != NULL)
      s->waiting_tail->wnext = a;
    else
      s->waiting = a;
    s->waiting_tail = a;
    pthread_mutex_unlock(&s->lock);
    return DB_OK;
  }
  async_free(a);
  return DB_EAGAIN;
}

/* The watcher: cancels what the loop cannot (PQcancel blocks), and cuts a
 * link whose server stopped answering after the cancel. A link with a
 * cancel on its way is not lent out until it has arrived, so the cancel
 * cannot hit the next borrower's statement. */
void pg_watch_async(db *d) {
  pg_state *s = d->engine_state;
  PGcancel *send[16];
  pg_conn *of[16];
  enum pg_stop why;
  int n = 0, i;
  long long now = db_now_ms();
  char buf[256];
  pg_async *a, **pp, *prev, *late = NULL;

  pthread_mutex_lock(&s->lock);
  for (a = s->async; a != NULL; a = a->next) {
    if (a->cancel_at == 0) {
      why = PG_RUNNING;
      if (a->rq->call != NULL && db_api(d)->cancelled(a->rq->call))
        why = PG_CANCELLED;
      else if (now > a->rq->deadline + CANCEL_GRACE_MS)
        why = PG_TIMEOUT;
      if ((why == PG_RUNNING && !a->cancel_wanted) || n == 16)
        continue;
      a->why = why;
      a->cancel_at = now;
      if (a->cancel != NULL) {
        send[n] = a->cancel;
        of[n++] = a->c;
        a->c->cancelling++;
        a->cancel = NULL;
      }
    } else if (!a->cut && now > a->cancel_at + ABANDON_AFTER_MS) {
      a->cut = 1;
      shutdown(a->fd, SHUT_RDWR);
    }
  }
  /* Reads still waiting for a link at their deadline (or cancelled) are
   * answered here: the loop only looks at them when a link frees. */
  for (pp = &s->waiting, prev = NULL; *pp != NULL;) {
    a = *pp;
    if (now < a->rq->deadline &&
        (a->rq->call == NULL || !db_api(d)->cancelled(a->rq->call))) {
      prev = a;
      pp = &a->wnext;
      continue;
    }
    *pp = a->wnext;
    if (s->waiting_tail == a)
      s->waiting_tail = prev;
    a->wnext = late;
    late = a;
  }
  pthread_mutex_unlock(&s->lock);
  while ((a = late) != NULL) {
    late = a->wnext;
    give_up_if_late(d, a, now);
  }
  for (i = 0; i < n; i++) {
    pq.PQcancel(send[i], buf, sizeof(buf));
    pq.PQfreeCancel(send[i]);
  }
  if (n > 0) {
    pthread_mutex_lock(&s->lock);
    for (i = 0; i < n; i++)
      of[i]->cancelling--;
    pthread_cond_broadcast(&s->freed);
    pthread_mutex_unlock(&s->lock);
  }
}
