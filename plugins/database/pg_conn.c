/* pg_conn.c: the PostgreSQL engine's links. libpq is loaded on first use
 * and called through the table `pq`; a pool of reader connections is
 * borrowed and given back (pg_checkout, pg_checkin) and one writer serves
 * execute; a blocking wait for a result polls in slices so a client's
 * cancellation or a missed deadline becomes a PQcancel; transactions are
 * opened and rolled back here, and failed results become messages a
 * client can act on. What waits runs on worker threads; pg_read.c uses
 * the rest (pg_checkin, pg_link_close) on the loop too. */
#include "engine_pg.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* ---- libpq, loaded on first use ---- */

#define LIBPQ_SONAME "libpq.so.5"

/* The functions (engine_pg.h), filled once by pq_load and never changed
 * after. libpq is never unloaded: the libraries under it (OpenSSL,
 * Kerberos) keep exit handlers and thread keys that must not outlive their
 * code. */
struct pq_functions pq;

static pthread_once_t pq_once = PTHREAD_ONCE_INIT;
static char pq_error[512]; /* Why libpq did not load; empty once it did. */

static void pq_load(void) {
  const char *missing = NULL;
  void *lib;

  lib = dlopen(LIBPQ_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    snprintf(pq_error, sizeof(pq_error),
             "postgresql:// URLs need libpq (" LIBPQ_SONAME
             "), which did not load: %s",
             dlerror());
    return;
  }
#define PQ_RESOLVE(name)                                                       \
  if (missing == NULL &&                                                       \
      (pq.name = (__typeof__(pq.name))dlsym(lib, #name)) == NULL)              \
    missing = #name;
  PQ_FUNCTIONS(PQ_RESOLVE)
#undef PQ_RESOLVE
  if (missing != NULL) {
    snprintf(pq_error, sizeof(pq_error),
             LIBPQ_SONAME " lacks %s, which the PostgreSQL engine needs: %s",
             missing, dlerror());
    memset(&pq, 0, sizeof(pq));
    dlclose(lib);
  }
}

/* Loads libpq on the first call from any thread; later calls only report
 * the outcome. */
int pg_libpq_ready(char **err) {
  if (pthread_once(&pq_once, pq_load) != 0) {
    db_errorf(err, "could not load " LIBPQ_SONAME);
    return DB_EINTERNAL;
  }
  if (pq_error[0] != '\0') {
    db_errorf(err, "%s", pq_error);
    return DB_EINTERNAL;
  }
  return DB_OK;
}

/* ---- connections ---- */

/* Forgets every prepared statement (the server drops them with the
 * session). */
static void stmts_forget(pg_conn *c) {
  int i;

  for (i = 0; i < STMT_CACHE; i++) {
    free(c->stmts[i].sql);
    c->stmts[i].sql = NULL;
  }
}

void pg_link_close(pg_conn *c) {
  stmts_forget(c);
  if (c->cancel != NULL)
    pq.PQfreeCancel(c->cancel);
  if (c->conn != NULL)
    pq.PQfinish(c->conn);
  c->cancel = NULL;
  c->conn = NULL;
  c->rollback_sent = 0;
}

void pg_note_state(db *d, int connected, const char *why) {
  pg_state *s = d->engine_state;
  int was;

  pthread_mutex_lock(&s->lock);
  was = s->connected;
  s->connected = connected;
  pthread_mutex_unlock(&s->lock);
  if (was == connected)
    return;
  db_api(d)->log(d->self, connected ? PH_LOG_INFO : PH_LOG_WARNING,
                 "database: PostgreSQL %s%s%s",
                 connected ? "connected" : "unavailable", why ? ": " : "",
                 why ? why : "");
  db_set_ready(d, connected, why != NULL ? why : "PostgreSQL is unavailable");
}

/* Connects c if it has no live connection. Session settings make values
 * predictable (UTC, ISO dates, hex bytea) and reads the default. */
int pg_link_open(db *d, pg_conn *c, int writable, char **err) {
  const char *keys[] = {"dbname", "connect_timeout", "application_name",
                        "client_encoding", NULL};
  const char *vals[] = {d->path, "5", "plughost-database", "UTF8", NULL};
  PGresult *res;
  char msg[512], setup[256];

  if (c->conn != NULL && pq.PQstatus(c->conn) == CONNECTION_OK)
    return DB_OK;
  pg_link_close(c);
  c->conn = pq.PQconnectdbParams(keys, vals, 1);
  if (c->conn == NULL || pq.PQstatus(c->conn) != CONNECTION_OK) {
    snprintf(msg, sizeof(msg), "%s",
             c->conn != NULL ? pq.PQerrorMessage(c->conn) : "out of memory");
    msg[strcspn(msg, "\n")] = '\0';
    db_errorf(err, "PostgreSQL is not reachable: %s", msg);
    pg_note_state(d, 0, msg);
    pg_link_close(c);
    return DB_EINTERNAL;
  }
  /* The session's statement_timeout is the instance's default, so a read
   * with the default timeout needs no SET LOCAL of its own. */
  snprintf(setup, sizeof(setup),
           "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD';"
           " SET bytea_output = 'hex'; SET standard_conforming_strings = on;"
           " SET statement_timeout = %d%s",
           d->default_timeout,
           writable ? "" : "; SET default_transaction_read_only = on");
  res = pq.PQexec(c->conn, setup);
  if (pq.PQresultStatus(res) != PGRES_COMMAND_OK) {
    db_errorf(err, "PostgreSQL: %s", pq.PQerrorMessage(c->conn));
    pq.PQclear(res);
    pg_link_close(c);
    return DB_EINTERNAL;
  }
  pq.PQclear(res);
  c->session_timeout = d->default_timeout;
  c->cancel = pq.PQgetCancel(c->conn);
  pg_note_state(d, 1, NULL);
  return DB_OK;
}

static void finish_rollback(db *d, pg_conn *c, const db_request *rq);

/* Borrows a connection (connecting it if needed) until the deadline. */
pg_conn *pg_checkout(db *d, const db_request *rq, char **err) {
  pg_state *s = d->engine_state;
  struct timespec until;
  long long left = rq->deadline - db_now_ms();
  pg_conn *c = NULL;
  int i;

  clock_gettime(CLOCK_REALTIME, &until);
  if (left > 0) {
    until.tv_sec += left / 1000;
    until.tv_nsec += (left % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
  }
  pthread_mutex_lock(&s->lock);
  for (;;) {
    /* Prefer a connected one, so the pool grows only under load. */
    for (i = 0; i < s->nconns && c == NULL; i++)
      if (!s->conns[i].busy && !s->conns[i].cancelling &&
          s->conns[i].conn != NULL)
        c = &s->conns[i];
    for (i = 0; i < s->nconns && c == NULL; i++)
      if (!s->conns[i].busy && !s->conns[i].cancelling)
        c = &s->conns[i];
    if (c != NULL) {
      c->busy = 1;
      break;
    }
    if (db_now_ms() >= rq->deadline ||
        pthread_cond_timedwait(&s->freed, &s->lock, &until) == ETIMEDOUT)
      break;
  }
  pthread_mutex_unlock(&s->lock);
  if (c == NULL) {
    db_errorf(err, "Query timed out waiting for a free connection");
    return NULL;
  }
  finish_rollback(d, c, rq);
  if (pg_link_open(d, c, 0, err) != DB_OK) {
    pthread_mutex_lock(&s->lock);
    c->busy = 0;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
    return NULL;
  }
  return c;
}

void pg_checkin(db *d, pg_conn *c) {
  pg_state *s = d->engine_state;

  /* A connection in any state but idle is not worth saving. One with a
   * ROLLBACK in flight is checked when that result is read. */
  if (c->conn != NULL && (pq.PQstatus(c->conn) != CONNECTION_OK ||
                          (!c->rollback_sent &&
                           pq.PQtransactionStatus(c->conn) != PQTRANS_IDLE))) {
    pg_link_close(c);
    pg_note_state(d, 0, "connection lost");
  }
  pthread_mutex_lock(&s->lock);
  c->busy = 0;
  pthread_cond_signal(&s->freed);
  pthread_mutex_unlock(&s->lock);
}

/* ---- waiting with deadline and cancellation ---- */

/* The next result of the command in flight, or NULL at its end (or when
 * the connection broke: *stop says so). Polls in short slices so a client
 * cancellation or a missed deadline turns into a PQcancel. */
PGresult *pg_next_result(db *d, pg_conn *c, const db_request *rq,
                         enum pg_stop *stop, long long *cancel_at) {
  struct pollfd pfd;
  char buf[256];
  long long now;

  for (;;) {
    if (!pq.PQisBusy(c->conn)) {
      c->row_wire = 0;
      return pq.PQgetResult(c->conn);
    }
    pfd.fd = pq.PQsocket(c->conn);
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (pfd.fd < 0) {
      *stop = PG_BROKEN;
      return NULL;
    }
    if (poll(&pfd, 1, POLL_SLICE_MS) > 0) {
      int queued = 0;

      if (c->row_cap > 0 && ioctl(pfd.fd, FIONREAD, &queued) == 0 &&
          queued > 0 && (c->row_wire += (size_t)queued) > c->row_cap) {
        /* A row past the cap: dropping the link stops the server. */
        c->row_too_big = 1;
        *stop = PG_BROKEN;
        return NULL;
      }
      if (!pq.PQconsumeInput(c->conn)) {
        *stop = PG_BROKEN;
        return NULL;
      }
    }
    now = db_now_ms();
    if (*cancel_at == 0) {
      /* The server's statement_timeout fires first; this is the backup
       * for a server that does not answer, and the path for cancels. */
      if (rq->call != NULL && db_api(d)->cancelled(rq->call))
        *stop = PG_CANCELLED;
      else if (now > rq->deadline + CANCEL_GRACE_MS)
        *stop = PG_TIMEOUT;
      if (*stop != PG_RUNNING) {
        *cancel_at = now;
        if (c->cancel == NULL || !pq.PQcancel(c->cancel, buf, sizeof(buf)))
          *cancel_at = now - ABANDON_AFTER_MS;
      }
    } else if (now > *cancel_at + ABANDON_AFTER_MS) {
      *stop = PG_BROKEN;
      return NULL;
    }
  }
}

/* Reads and drops every remaining result of the command in flight. */
void pg_drain(db *d, pg_conn *c, const db_request *rq, enum pg_stop *stop,
              long long *cancel_at) {
  PGresult *res;

  while ((res = pg_next_result(d, c, rq, stop, cancel_at)) != NULL)
    pq.PQclear(res);
  if (*stop == PG_BROKEN)
    pg_link_close(c);
}

/* An error's message can quote a value of any size (an input function
 * quotes its input); clients get its start, cut at a character. */
#define MESSAGE_MAX 4096

static int message_length(const char *s) {
  size_t n = strlen(s);

  if (n <= MESSAGE_MAX)
    return (int)n;
  n = MESSAGE_MAX;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
    n--;
  return (int)n;
}

/* Maps a failed result to a code and a message a client can act on. */
int pg_failure(pg_conn *c, const PGresult *res, const db_request *rq,
               enum pg_stop stop, char **err) {
  const char *state =
      res != NULL ? pq.PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *primary =
      res != NULL ? pq.PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

  if (pg_bound_failed(res) > 0) {
    db_errorf(err,
              "A row of this result takes %lld bytes as text, more than "
              "the limit of a row (4 x max_result_bytes + 1 MiB); select "
              "fewer or smaller values",
              pg_bound_failed(res));
    return DB_EREFUSED;
  }
  if (c->row_too_big) {
    db_errorf(err,
              "A row of this result is larger than %zu bytes, the limit of "
              "a row (4 x max_result_bytes + 1 MiB); select fewer or "
              "smaller values",
              c->row_cap);
    return DB_EREFUSED;
  }
  if (stop == PG_CANCELLED) {
    db_errorf(err, "Query cancelled by the client");
    return DB_ECANCELED;
  }
  if (stop == PG_TIMEOUT || (state != NULL && strcmp(state, "57014") == 0)) {
    db_errorf(err, "Query timed out after %d ms", rq->timeout_ms);
    return DB_ETIMEOUT;
  }
  if (stop == PG_BROKEN || c->conn == NULL ||
      pq.PQstatus(c->conn) != CONNECTION_OK) {
    db_errorf(err, "Lost the connection to PostgreSQL; try again");
    return DB_EINTERNAL;
  }
  if (primary == NULL)
    primary = c->conn != NULL ? pq.PQerrorMessage(c->conn) : "unknown error";
  if (state != NULL && strcmp(state, "25006") == 0) {
    db_errorf(err, "Writes are not allowed: %.*s", message_length(primary),
              primary);
    return DB_EREFUSED;
  }
  if (state != NULL && strcmp(state, "42601") == 0 &&
      strstr(primary, "multiple commands") != NULL) {
    db_errorf(err, "Multiple statements are not allowed: send one "
                   "statement per call");
    return DB_EREFUSED;
  }
  if (state != NULL && strncmp(state, "42501", 5) == 0) {
    db_errorf(err, "Not permitted: %.*s", message_length(primary), primary);
    return DB_EREFUSED;
  }
  db_errorf(err, "PostgreSQL: %.*s%s", message_length(primary), primary,
            primary[message_length(primary)] != '\0' ? "..." : "");
  return state != NULL && strncmp(state, "08", 2) == 0 ? DB_EINTERNAL
                                                       : DB_EINVALID;
}

/* Runs one of the plugin's own commands (no parameters from clients)
 * synchronously; returns the result or NULL with *err set. */
PGresult *pg_run_own(db *d, pg_conn *c, const db_request *rq, const char *sql,
                     int nparams, const char *const *values, char **err) {
  enum pg_stop stop = PG_RUNNING;
  long long cancel_at = 0;
  PGresult *res = NULL, *next;
  ExecStatusType st;

  if (!pq.PQsendQueryParams(c->conn, sql, nparams, NULL, values, NULL, NULL,
                            0)) {
    pg_failure(c, NULL, rq, PG_BROKEN, err);
    pg_link_close(c);
    return NULL;
  }
  while ((next = pg_next_result(d, c, rq, &stop, &cancel_at)) != NULL) {
    if (res == NULL)
      res = next;
    else
      pq.PQclear(next);
  }
  if (stop == PG_BROKEN)
    pg_link_close(c);
  st = res != NULL ? pq.PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    pg_failure(c, res, rq, stop, err);
    pq.PQclear(res);
    return NULL;
  }
  return res;
}

/* BEGIN (READ ONLY unless write) with the request's statement timeout. */
int pg_begin(db *d, pg_conn *c, const db_request *rq, int write, char **err) {
  char sql[128];
  PGresult *res;

  snprintf(sql, sizeof(sql), "BEGIN%s; SET LOCAL statement_timeout = %d",
           write ? " READ WRITE" : " READ ONLY", rq->timeout_ms);
  /* The simple protocol: our own two commands, no client text. */
  if (!pq.PQsendQuery(c->conn, sql)) {
    pg_link_close(c);
    return pg_failure(c, NULL, rq, PG_BROKEN, err);
  }
  {
    enum pg_stop stop = PG_RUNNING;
    long long cancel_at = 0;
    int failed = 0;

    while ((res = pg_next_result(d, c, rq, &stop, &cancel_at)) != NULL) {
      if (!failed && pq.PQresultStatus(res) != PGRES_COMMAND_OK) {
        failed = 1;
        pg_failure(c, res, rq, stop, err);
      }
      pq.PQclear(res);
    }
    if (stop == PG_BROKEN) {
      pg_link_close(c);
      return pg_failure(c, NULL, rq, PG_BROKEN, err);
    }
    return failed ? DB_EINTERNAL : DB_OK;
  }
}

void pg_rollback(pg_conn *c) {
  PGresult *res;

  if (c->conn == NULL || pq.PQtransactionStatus(c->conn) == PQTRANS_IDLE)
    return;
  res = pq.PQexec(c->conn, "ROLLBACK");
  pq.PQclear(res);
}

/* Ends a reader's transaction and returns it to the pool. The ROLLBACK is
 * sent (and flushed: the connection is blocking) but its result is read by
 * the next checkout, so the reply to the client does not wait one more
 * round trip. The server ends the transaction, releasing its locks and
 * snapshot, as soon as the ROLLBACK arrives, whoever reads the result. */
void pg_end_read(db *d, pg_conn *c) {
  if (c->conn != NULL && pq.PQstatus(c->conn) == CONNECTION_OK &&
      pq.PQtransactionStatus(c->conn) != PQTRANS_IDLE) {
    if (pq.PQsendQuery(c->conn, "ROLLBACK"))
      c->rollback_sent = 1;
    else
      pg_link_close(c);
  }
  pg_checkin(d, c);
}

/* Reads the result of the ROLLBACK pg_end_read sent. Unless it succeeded and
 * left the session idle, the link is closed (checkout then reconnects), so
 * no borrower ever inherits a transaction. */
static void finish_rollback(db *d, pg_conn *c, const db_request *rq) {
  enum pg_stop stop = PG_RUNNING;
  long long cancel_at = 0;
  PGresult *res;
  int failed = 0;

  if (!c->rollback_sent)
    return;
  c->rollback_sent = 0;
  if (c->conn == NULL)
    return;
  while ((res = pg_next_result(d, c, rq, &stop, &cancel_at)) != NULL) {
    if (pq.PQresultStatus(res) != PGRES_COMMAND_OK)
      failed = 1;
    pq.PQclear(res);
  }
  if (failed || stop != PG_RUNNING || pq.PQstatus(c->conn) != CONNECTION_OK ||
      pq.PQtransactionStatus(c->conn) != PQTRANS_IDLE)
    pg_link_close(c);
}

/* Borrows a connection and opens a read-only transaction on it. A
 * connection that died while idle in the pool (the server restarted) is
 * reconnected once: nothing has run yet, so trying again is safe. */
pg_conn *pg_begin_read(db *d, const db_request *rq, char **err, int *rc) {
  pg_conn *c;
  int attempt;

  for (attempt = 0; attempt < 2; attempt++) {
    c = pg_checkout(d, rq, err);
    if (c == NULL) {
      *rc = db_now_ms() >= rq->deadline ? DB_ETIMEOUT : DB_EINTERNAL;
      return NULL;
    }
    *rc = pg_begin(d, c, rq, 0, err);
    if (*rc == DB_OK)
      return c;
    if (c->conn != NULL && pq.PQstatus(c->conn) == CONNECTION_OK) {
      pg_end_read(d, c);
      return NULL;
    }
    pg_checkin(d, c);
  }
  return NULL;
}

/* Counts the bytes of each row of a client's statement from now on
 * against the row limit (pg_next_result). */
void pg_row_cap_start(db *d, pg_conn *c) {
  c->row_cap = db_row_limit(d);
  c->row_wire = 0;
  c->row_too_big = 0;
}

void pg_row_cap_end(pg_conn *c) {
  c->row_cap = 0;
  c->row_too_big = 0;
}
