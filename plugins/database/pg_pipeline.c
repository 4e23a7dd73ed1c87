/* pg_pipeline.c: a read in one round trip. BEGIN READ ONLY, the timeout,
 * the statement (prepared once per connection and kept by its text) and
 * ROLLBACK go out as one pipeline closed by a sync; the results are read
 * in order on a worker (pg_pipelined_query) or, with the same steps, by
 * the host's loop (pg_read.c). */
#include "engine_pg.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_MAX_SQL 8192 /* Longer statements are not kept. */

/* ---- prepared statements ---- */

static unsigned stmt_hash(const char *sql, size_t len) {
  unsigned h = 2166136261u; /* FNV-1a */
  size_t i;

  for (i = 0; i < len; i++)
    h = (h ^ (unsigned char)sql[i]) * 16777619u;
  return h;
}

/* The slot holding sql prepared on c, or NULL. */
static pg_stmt *stmt_find(pg_conn *c, const char *sql, size_t len,
                          unsigned hash) {
  int i;

  for (i = 0; i < STMT_CACHE; i++) {
    pg_stmt *t = &c->stmts[i];
    if (t->sql != NULL && t->hash == hash && t->len == len &&
        memcmp(t->sql, sql, len) == 0)
      return t;
  }
  return NULL;
}

/* A slot for a new statement: a free one, else the least recently used,
 * whose server-side statement the caller deallocates first. */
static pg_stmt *stmt_victim(pg_conn *c) {
  pg_stmt *v = &c->stmts[0];
  int i;

  for (i = 0; i < STMT_CACHE; i++) {
    if (c->stmts[i].sql == NULL)
      return &c->stmts[i];
    if (c->stmts[i].used < v->used)
      v = &c->stmts[i];
  }
  return v;
}

/* Sends the read as one pipeline: BEGIN READ ONLY, SET LOCAL
 * statement_timeout (unless the session's is right already), the
 * statement and ROLLBACK, closed by one sync.
 *
 * The statement runs as a named prepared statement, kept per connection by
 * its text (stmts, least recently used out): parsing and planning are a
 * third of the server's work for a point lookup, and a client repeats its
 * statements. The first use prepares it inside the same pipeline.
 * Prepared statements outlive ROLLBACK; the server re-plans them after
 * DDL, and the one thing it refuses (a kept statement whose result columns
 * changed) drops the link so the retry prepares afresh.
 *
 * Returns 0, or -1 when the link failed (closed; nothing ran). */
int pg_pipe_send(pg_conn *c, const db_request *rq, const char *sql,
                 char **values, int nvalues, pipe_run *p) {
  char timeout[64], name[32];
  int sent;

  memset(p, 0, sizeof(*p));
  p->single_row = 1;
  p->sql = sql;
  p->len = strlen(sql);
  p->hash = stmt_hash(sql, p->len);
  if (p->len <= STMT_MAX_SQL) {
    p->t = stmt_find(c, sql, p->len, p->hash);
    if (p->t == NULL)
      p->t = p->slot = stmt_victim(c);
  }
  sent = pq.PQenterPipelineMode(c->conn);
  if (sent && p->slot != NULL && p->slot->sql != NULL) {
    snprintf(name, sizeof(name), "DEALLOCATE ph_s%u", p->slot->serial);
    free(p->slot->sql);
    p->slot->sql = NULL;
    sent = pq.PQsendQueryParams(c->conn, name, 0, NULL, NULL, NULL, NULL, 0);
    p->steps[p->nsteps++] = STEP_DEALLOCATE;
  }
  if (sent) {
    sent = pq.PQsendQueryParams(c->conn, "BEGIN READ ONLY", 0, NULL, NULL, NULL,
                                NULL, 0);
    p->steps[p->nsteps++] = STEP_BEGIN;
  }
  if (sent && rq->timeout_ms != c->session_timeout) {
    snprintf(timeout, sizeof(timeout), "SET LOCAL statement_timeout = %d",
             rq->timeout_ms);
    sent = pq.PQsendQueryParams(c->conn, timeout, 0, NULL, NULL, NULL, NULL, 0);
    p->steps[p->nsteps++] = STEP_TIMEOUT;
  }
  if (sent && p->slot != NULL) {
    p->slot->serial = ++c->serial;
    snprintf(name, sizeof(name), "ph_s%u", p->slot->serial);
    sent = pq.PQsendPrepare(c->conn, name, sql, 0, NULL);
    p->steps[p->nsteps++] = STEP_PREPARE;
  }
  if (sent) {
    if (p->t != NULL) {
      snprintf(name, sizeof(name), "ph_s%u", p->t->serial);
      p->t->used = ++c->tick;
      sent = pq.PQsendQueryPrepared(c->conn, name, nvalues,
                                    (const char *const *)values, NULL, NULL, 0);
    } else {
      sent = pq.PQsendQueryParams(c->conn, sql, nvalues, NULL,
                                  (const char *const *)values, NULL, NULL, 0);
    }
    p->steps[p->nsteps++] = STEP_STATEMENT;
  }
  if (sent) {
    sent =
        pq.PQsendQueryParams(c->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
    p->steps[p->nsteps++] = STEP_ROLLBACK;
  }
  if (!sent || !pq.PQpipelineSync(c->conn)) {
    pg_link_close(c);
    return -1;
  }
  p->steps[p->nsteps++] = STEP_SYNC;
  return 0;
}

/* A NULL from PQgetResult: the current step is over. Returns -1 when that
 * cannot be (a NULL where the sync belongs: libpq lost track). */
int pg_pipe_step_over(pg_conn *c, pipe_run *p) {
  if (p->steps[p->at] == STEP_SYNC)
    return -1;
  p->at++;
  if (p->steps[p->at] == STEP_STATEMENT && p->single_row)
    pq.PQsetSingleRowMode(c->conn);
  return 0;
}

/* One result of the pipeline; takes res over. Sets p->over when the rows
 * reached the limit, so the caller cancels the rest. */
void pg_pipe_result(db *d, pg_conn *c, const db_request *rq, pipe_run *p,
                    PGresult *res, db_rows *out, char **err) {
  ExecStatusType st = pq.PQresultStatus(res);
  int taken;

  p->results++;
  if (st == PGRES_PIPELINE_SYNC) {
    p->at = p->nsteps;
  } else if (st == PGRES_PIPELINE_ABORTED || p->steps[p->at] == STEP_ROLLBACK) {
    /* A step before failed and said why; ROLLBACK is judged by the
     * transaction status after the sync. */
  } else if (p->steps[p->at] == STEP_DEALLOCATE) {
    if (st != PGRES_COMMAND_OK)
      p->stale = 1;
  } else if (p->steps[p->at] == STEP_PREPARE) {
    if (st == PGRES_COMMAND_OK) {
      p->slot->sql = malloc(p->len + 1);
      if (p->slot->sql != NULL) {
        memcpy(p->slot->sql, p->sql, p->len + 1);
        p->slot->len = p->len;
        p->slot->hash = p->hash;
      } else {
        p->stale = 1; /* Prepared but not recorded: the name is lost. */
      }
    } else if (p->rc == DB_OK) {
      p->rc = pg_failure(c, res, rq, p->stop, err);
    }
  } else if (p->steps[p->at] == STEP_STATEMENT &&
             (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK)) {
    if (!p->have_columns) {
      pg_add_columns(out, res);
      p->have_columns = 1;
    }
    if (!p->done) {
      taken = pg_take_rows(d, res, rq, &p->skipped, out, err);
      if (taken < 0)
        p->rc = DB_EINTERNAL;
      p->done = taken != 0;
      /* A whole result is over already: nothing to cancel. */
      p->over = p->done && p->single_row;
    }
  } else if (st == PGRES_COMMAND_OK) {
    /* BEGIN, SET; SHOW and friends end here with no rows. */
  } else if (!p->done && p->rc == DB_OK) {
    const char *state = pq.PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (p->slot == NULL && p->t != NULL && state != NULL &&
        strcmp(state, "0A000") == 0 && !p->have_columns) {
      /* "cached plan must not change result type": the table changed
       * under a kept statement. Dropping the link drops it too. */
      p->stale = 1;
    } else {
      if (pg_bound_failed(res))
        p->bound_failed = 1;
      p->rc = pg_failure(c, res, rq, p->stop, err);
    }
  }
  pq.PQclear(res);
}

/* After the last result (or a broken link): leaves pipeline mode and says
 * how the read went. *fresh is set when the caller may run it once more:
 * the link failed before any result came back, or what failed was the
 * cache's own bookkeeping, not the client's statement. */
int pg_pipe_end(pg_conn *c, const db_request *rq, pipe_run *p, char **err,
                int *fresh) {
  int rc = p->rc;

  *fresh = 0;
  if (p->stop == PG_BROKEN) {
    pg_link_close(c);
    *fresh = p->results == 0;
    return rc != DB_OK ? rc : pg_failure(c, NULL, rq, PG_BROKEN, err);
  }
  if (!pq.PQexitPipelineMode(c->conn)) {
    pg_link_close(c);
    return rc != DB_OK ? rc : pg_failure(c, NULL, rq, PG_BROKEN, err);
  }
  if (p->stale) {
    /* The cache and the server disagree: start the session over. */
    pg_link_close(c);
    *fresh = 1;
    if (rc == DB_OK) {
      db_errorf(err, "PostgreSQL: a kept statement went stale; try again");
      rc = DB_EINTERNAL;
    }
    return rc;
  }
  if (p->stop != PG_RUNNING && rc == DB_OK && !p->done)
    rc = pg_failure(c, NULL, rq, p->stop, err);
  return rc;
}

/* The whole read in one round trip on a worker (see pg_pipe_send), results
 * read in order. A failed step makes the server skip the rest up to the
 * sync (PGRES_PIPELINE_ABORTED), which can leave the transaction open in
 * error: pg_end_read then rolls it back, or checkin drops the link, as on the
 * unpipelined path. */
static int pipelined_rows(db *d, pg_conn *c, const db_request *rq,
                          const char *sql, char **values, int nvalues,
                          db_rows *out, char **err, int *fresh) {
  long long cancel_at = 0;
  PGresult *res;
  pipe_run p;
  char buf[256];
  int rc;

  if (pg_pipe_send(c, rq, sql, values, nvalues, &p) != 0) {
    *fresh = 1;
    return pg_failure(c, NULL, rq, PG_BROKEN, err);
  }
  pg_row_cap_start(d, c);
  while (p.at < p.nsteps) {
    res = pg_next_result(d, c, rq, &p.stop, &cancel_at);
    if (res == NULL) {
      if (p.stop == PG_BROKEN)
        break;
      if (pg_pipe_step_over(c, &p) != 0) {
        p.stop = PG_BROKEN;
        break;
      }
      continue;
    }
    pg_pipe_result(d, c, rq, &p, res, out, err);
    if (p.over) {
      /* Stop the server producing rows nobody will read. */
      p.over = 0;
      if (c->cancel != NULL)
        pq.PQcancel(c->cancel, buf, sizeof(buf));
      if (cancel_at == 0)
        cancel_at = db_now_ms();
    }
  }
  rc = pg_pipe_end(c, rq, &p, err, fresh);
  if (c->row_too_big)
    *fresh = 0; /* The client's statement ran: no second try. */
  pg_row_cap_end(c);
  return rc;
}

/* Non-zero when the catalog snapshot is current and the statement names
 * nothing the plan check must see, so no command of ours has to run
 * between BEGIN and the statement. */
int pg_pipeline_ok(db *d, const sql_scan *scan) {
  pg_state *s = d->engine_state;
  int fresh;

  pthread_mutex_lock(&s->rel_lock);
  fresh =
      s->rels_loaded != 0 && db_now_ms() - s->rels_loaded < SENSITIVE_TTL_MS;
  pthread_mutex_unlock(&s->rel_lock);
  return fresh && !pg_needs_plan_check(d, scan);
}

/* A read in one round trip (see pipelined_rows). A link that was dead
 * while idle in the pool is reconnected once, as pg_begin_read does. */
int pg_pipelined_query(db *d, const db_request *rq, const char *sql,
                       char **values, int nvalues, db_rows *out, char **err) {
  pg_conn *c;
  int attempt, rc = DB_EINTERNAL, fresh;

  for (attempt = 0; attempt < 2; attempt++) {
    c = pg_checkout(d, rq, err);
    if (c == NULL)
      return db_now_ms() >= rq->deadline ? DB_ETIMEOUT : DB_EINTERNAL;
    rc = pipelined_rows(d, c, rq, sql, values, nvalues, out, err, &fresh);
    pg_end_read(d, c);
    if (rc == DB_OK || !fresh)
      break;
  }
  return rc;
}
