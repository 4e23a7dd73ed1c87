/* engine_pg.c: the PostgreSQL engine, on libpq. A pool of lazily opened
 * connections serves reads; one more connection, opened on the first
 * execute, serves writes. Safety layers, from the outside in: the lexer's
 * checks (sql_scan.c: one statement, allowed first keyword, functions with
 * side effects, hidden tables), connections whose default transactions are
 * read-only, BEGIN READ ONLY with SET LOCAL statement_timeout around every
 * statement, the extended protocol (PQsendQueryParams refuses several
 * statements and keeps parameters out of the SQL text), a plan check
 * (EXPLAIN VERBOSE) whenever a statement names a table with masked columns,
 * a hidden table or a view, and PQcancel on timeout or client cancellation.
 * Every transaction ends in ROLLBACK, so even a session-level SET made
 * inside one is undone before the connection goes back to the pool. A read
 * with no plan check sends BEGIN, the statement and ROLLBACK in one
 * pipeline (pipe_send): one round trip instead of three. Such a read runs
 * as a statement prepared once per connection, and when a connection is
 * idle it starts on the host's loop thread (pg_query_start: libpq in
 * non-blocking mode, its socket watched by the loop), so it never waits
 * for a worker thread; the rest runs on workers, blocking.
 *
 * libpq is not linked: it and its dependencies (TLS, Kerberos, LDAP) cost
 * about 3.5 MiB of RSS in every host, most of which only use SQLite. The
 * first PostgreSQL instance loads it with dlopen, and every call goes
 * through the table `pq`. */
#include "db.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define POLL_SLICE_MS 50
#define CANCEL_GRACE_MS 500    /* After the deadline, before our PQcancel. */
#define ABANDON_AFTER_MS 5000  /* After PQcancel, before dropping the link. */
#define SENSITIVE_TTL_MS 10000 /* How long a catalog snapshot is trusted. */
#define RETRY_MS 1000          /* Between connection attempts while down. */
#define HEALTH_MS 10000        /* Between pings while connected. */

/* Statements a reader connection keeps prepared, by SQL text. */
#define STMT_CACHE 32
#define STMT_MAX_SQL 8192 /* Longer statements are not kept. */

/* One prepared statement of a connection, named "ph_s<serial>". */
typedef struct pg_stmt {
  char *sql; /* NULL: the slot is free. */
  size_t len;
  unsigned hash;
  unsigned serial;
  unsigned long long used; /* The connection's tick at its last use. */
} pg_stmt;

typedef struct pg_conn {
  PGconn *conn;
  PGcancel *cancel;
  int busy;
  int rollback_sent;   /* A ROLLBACK went out; its result is not read yet. */
  int cancelling;      /* The watcher is sending a PQcancel for it: not
                          lent out until it has arrived (under lock). */
  int session_timeout; /* statement_timeout set for the session (ms). */
  pg_stmt stmts[STMT_CACHE];
  unsigned long long tick;
  unsigned serial;
  /* Rows of a client's statement read on a worker: libpq holds a row whole
   * before it hands it over, so the bytes arriving since the last row are
   * counted against row_cap (0: no cap), and the link is dropped past it
   * (row_too_big). */
  size_t row_wire;
  size_t row_cap;
  int row_too_big;
} pg_conn;

/* An index whose keys hold a masked column: its order and its keys follow
 * the column, whatever the plan shows of them. */
typedef struct pg_masked_index {
  char *index;
  char *table;
  char *column;
} pg_masked_index;

/* A relation a statement must not touch freely. */
typedef struct pg_rel {
  char *name;    /* relname as stored. */
  int hidden;    /* Hidden by the config. */
  int view;      /* A view or materialized view: may hide anything. */
  char **masked; /* Masked column names. */
  int nmasked;
  char **columns; /* Every column in attnum order (only if nmasked). */
  int ncolumns;
} pg_rel;

typedef struct pg_state {
  pthread_mutex_t lock;
  pthread_cond_t freed;
  pg_conn *conns;
  int nconns;
  int connected;       /* Last known state, to log transitions once. */
  pthread_t watcher;   /* Keeps `connected` (and readiness) current. */
  int watching;        /* The watcher runs; pg_close joins it. */
  int closing;         /* Tells the watcher to stop. */
  pthread_cond_t wake; /* Signals `closing` to the watcher. */
  pthread_mutex_t write_lock;
  pg_conn writer;
  pthread_mutex_t rel_lock; /* Guards rels and rels_loaded. */
  pg_rel *rels;
  int nrels;
  long long rels_loaded;
  struct pg_async *async; /* Reads driven from the loop, under lock. */
  int loop_reads;         /* Reads of the loop in flight (loop thread only). */
  /* Reads of the loop waiting for a link, in order, under lock: the loop
   * starts them, the watcher times them out. */
  struct pg_async *waiting;
  struct pg_async *waiting_tail;
  int idle_watcher; /* The watcher sleeps long: wake it for one. */
  /* Beside rels, under rel_lock and loaded with them: */
  pg_masked_index *masked_indexes;
  int nmasked_indexes;
  char **hidden_names; /* Indexes, sequences and TOAST of hidden tables. */
  int nhidden_names;
  char **catalog_names; /* While tables are hidden: the catalog's
                           relations and the functions taking regclass. */
  int ncatalog_names;
} pg_state;

/* Why a wait ended early. */
enum pg_stop { PG_RUNNING = 0, PG_TIMEOUT, PG_CANCELLED, PG_BROKEN };

/* ---- libpq, loaded on first use ---- */

#define LIBPQ_SONAME "libpq.so.5"

/* Every libpq function this file calls, always as pq.PQfoo(): a direct
 * PQfoo() would be an undefined symbol in database.so, which the link
 * refuses (-z defs in CMakeLists.txt). */
#define PQ_FUNCTIONS(X)                                                        \
  X(PQcancel)                                                                  \
  X(PQclear)                                                                   \
  X(PQcmdTuples)                                                               \
  X(PQconnectdbParams)                                                         \
  X(PQconsumeInput)                                                            \
  X(PQenterPipelineMode)                                                       \
  X(PQerrorMessage)                                                            \
  X(PQescapeIdentifier)                                                        \
  X(PQexec)                                                                    \
  X(PQexitPipelineMode)                                                        \
  X(PQfinish)                                                                  \
  X(PQfname)                                                                   \
  X(PQfreeCancel)                                                              \
  X(PQfreemem)                                                                 \
  X(PQftype)                                                                   \
  X(PQgetCancel)                                                               \
  X(PQgetResult)                                                               \
  X(PQgetisnull)                                                               \
  X(PQgetlength)                                                               \
  X(PQgetvalue)                                                                \
  X(PQisBusy)                                                                  \
  X(PQnfields)                                                                 \
  X(PQntuples)                                                                 \
  X(PQpipelineSync)                                                            \
  X(PQresultErrorField)                                                        \
  X(PQresultStatus)                                                            \
  X(PQsendPrepare)                                                             \
  X(PQsendQuery)                                                               \
  X(PQsendQueryParams)                                                         \
  X(PQsendQueryPrepared)                                                       \
  X(PQsetnonblocking)                                                          \
  X(PQflush)                                                                   \
  X(PQsetSingleRowMode)                                                        \
  X(PQsocket)                                                                  \
  X(PQstatus)                                                                  \
  X(PQtransactionStatus)

/* The functions, typed by their declarations in <libpq-fe.h> (__typeof__
 * does not evaluate its operand, so it references no symbol). Filled once
 * by pq_load and never changed after. libpq is never unloaded: the
 * libraries under it (OpenSSL, Kerberos) keep exit handlers and thread
 * keys that must not outlive their code. */
#define PQ_POINTER(name) __typeof__(name) *name;
static struct { PQ_FUNCTIONS(PQ_POINTER) } pq;
#undef PQ_POINTER

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
static int pq_ready(char **err) {
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

static void link_close(pg_conn *c) {
  stmts_forget(c);
  if (c->cancel != NULL)
    pq.PQfreeCancel(c->cancel);
  if (c->conn != NULL)
    pq.PQfinish(c->conn);
  c->cancel = NULL;
  c->conn = NULL;
  c->rollback_sent = 0;
}

static void note_state(db *d, int connected, const char *why) {
  pg_state *s = d->engine_state;
  int was;

  pthread_mutex_lock(&s->lock);
  was = s->connected;
  s->connected = connected;
  pthread_mutex_unlock(&s->lock);
  if (was == connected)
    return;
  d->api->log(d->self, connected ? PH_LOG_INFO : PH_LOG_WARNING,
              "database: PostgreSQL %s%s%s",
              connected ? "connected" : "unavailable", why ? ": " : "",
              why ? why : "");
  db_set_ready(d, connected, why != NULL ? why : "PostgreSQL is unavailable");
}

/* Connects c if it has no live connection. Session settings make values
 * predictable (UTC, ISO dates, hex bytea) and reads the default. */
static int link_open(db *d, pg_conn *c, int writable, char **err) {
  const char *keys[] = {"dbname", "connect_timeout", "application_name",
                        "client_encoding", NULL};
  const char *vals[] = {d->path, "5", "plughost-database", "UTF8", NULL};
  PGresult *res;
  char msg[512], setup[256];

  if (c->conn != NULL && pq.PQstatus(c->conn) == CONNECTION_OK)
    return DB_OK;
  link_close(c);
  c->conn = pq.PQconnectdbParams(keys, vals, 1);
  if (c->conn == NULL || pq.PQstatus(c->conn) != CONNECTION_OK) {
    snprintf(msg, sizeof(msg), "%s",
             c->conn != NULL ? pq.PQerrorMessage(c->conn) : "out of memory");
    msg[strcspn(msg, "\n")] = '\0';
    db_errorf(err, "PostgreSQL is not reachable: %s", msg);
    note_state(d, 0, msg);
    link_close(c);
    return DB_EINTERNAL;
  }
  /* The session's statement_timeout is the instance's default, so a read
   * with the default timeout needs no SET LOCAL of its own. */
  snprintf(setup, sizeof(setup),
           "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD';"
           " SET bytea_output = 'hex'; SET statement_timeout = %d%s",
           d->default_timeout,
           writable ? "" : "; SET default_transaction_read_only = on");
  res = pq.PQexec(c->conn, setup);
  if (pq.PQresultStatus(res) != PGRES_COMMAND_OK) {
    db_errorf(err, "PostgreSQL: %s", pq.PQerrorMessage(c->conn));
    pq.PQclear(res);
    link_close(c);
    return DB_EINTERNAL;
  }
  pq.PQclear(res);
  c->session_timeout = d->default_timeout;
  c->cancel = pq.PQgetCancel(c->conn);
  note_state(d, 1, NULL);
  return DB_OK;
}

static int pg_ping(db *d, char **err);
static void watch_async(db *d);

/* Readiness must not wait for client traffic: a host that reports not ready
 * gets none. So while the server is down (or not reached yet) this thread
 * tries to connect every RETRY_MS, and while it is up it pings every
 * HEALTH_MS so a server that went away is noticed before a client trips
 * on it. Failures reach note_state through the connection code. */
static void *watch(void *arg) {
  db *d = arg;
  pg_state *s = d->engine_state;
  struct timespec until;
  long long wait, next_ping = 0, now;
  char *err = NULL;

  pthread_mutex_lock(&s->lock);
  while (!s->closing) {
    now = db_now_ms();
    if (now >= next_ping) {
      pthread_mutex_unlock(&s->lock);
      pg_ping(d, &err);
      free(err);
      err = NULL;
      pthread_mutex_lock(&s->lock);
      now = db_now_ms();
      next_ping = now + (s->connected == 1 ? HEALTH_MS : RETRY_MS);
    }
    if (s->async != NULL) {
      pthread_mutex_unlock(&s->lock);
      watch_async(d);
      pthread_mutex_lock(&s->lock);
    }
    /* While reads run from the loop, look at them every slice, as a
     * worker polls its own; otherwise sleep until the next ping. */
    wait = next_ping - now;
    if (s->async != NULL && wait > POLL_SLICE_MS)
      wait = POLL_SLICE_MS;
    s->idle_watcher = s->async == NULL;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait / 1000;
    until.tv_nsec += (wait % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&s->wake, &s->lock, &until);
    s->idle_watcher = 0;
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

static int pg_open(db *d, char **err) {
  pg_state *s;
  int rc;

  rc = pq_ready(err);
  if (rc != DB_OK)
    return rc;
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return DB_EINTERNAL;
  d->engine_state = s;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->freed, NULL);
  pthread_cond_init(&s->wake, NULL);
  pthread_mutex_init(&s->write_lock, NULL);
  pthread_mutex_init(&s->rel_lock, NULL);
  s->conns = calloc((size_t)d->pool_size, sizeof(pg_conn));
  if (s->conns == NULL)
    return DB_EINTERNAL;
  s->nconns = d->pool_size;
  s->connected = -1;
  /* Connections open in the background (the watcher) or on first use, so
   * the host starts while the server is still down; until one is made the
   * instance is not ready. */
  db_set_ready(d, 0, "not connected to PostgreSQL yet");
  if (pthread_create(&s->watcher, NULL, watch, d) != 0)
    return DB_EINTERNAL;
  s->watching = 1;
  return DB_OK;
}

static void free_rels(pg_rel *rels, int n) {
  int i, j;

  for (i = 0; i < n; i++) {
    free(rels[i].name);
    for (j = 0; j < rels[i].nmasked; j++)
      free(rels[i].masked[j]);
    free(rels[i].masked);
    for (j = 0; j < rels[i].ncolumns; j++)
      free(rels[i].columns[j]);
    free(rels[i].columns);
  }
  free(rels);
}

static void free_names(char **names, int n) {
  int i;

  for (i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

/* Frees what load_extras loaded beside the relations. */
static void free_extras(pg_state *s) {
  int i;

  for (i = 0; i < s->nmasked_indexes; i++) {
    free(s->masked_indexes[i].index);
    free(s->masked_indexes[i].table);
    free(s->masked_indexes[i].column);
  }
  free(s->masked_indexes);
  free_names(s->hidden_names, s->nhidden_names);
  free_names(s->catalog_names, s->ncatalog_names);
  s->masked_indexes = NULL;
  s->hidden_names = s->catalog_names = NULL;
  s->nmasked_indexes = s->nhidden_names = s->ncatalog_names = 0;
}

static void pg_close(db *d) {
  pg_state *s = d->engine_state;
  int i;

  if (s == NULL)
    return;
  if (s->watching) {
    pthread_mutex_lock(&s->lock);
    s->closing = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->watcher, NULL);
  }
  for (i = 0; s->conns != NULL && i < s->nconns; i++)
    link_close(&s->conns[i]);
  link_close(&s->writer);
  free(s->conns);
  free_rels(s->rels, s->nrels);
  free_extras(s);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->freed);
  pthread_cond_destroy(&s->wake);
  pthread_mutex_destroy(&s->write_lock);
  pthread_mutex_destroy(&s->rel_lock);
  free(s);
  d->engine_state = NULL;
}

static void finish_rollback(db *d, pg_conn *c, const db_request *rq);

/* Borrows a connection (connecting it if needed) until the deadline. */
static pg_conn *checkout(db *d, const db_request *rq, char **err) {
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
  if (link_open(d, c, 0, err) != DB_OK) {
    pthread_mutex_lock(&s->lock);
    c->busy = 0;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
    return NULL;
  }
  return c;
}

static void checkin(db *d, pg_conn *c) {
  pg_state *s = d->engine_state;

  /* A connection in any state but idle is not worth saving. One with a
   * ROLLBACK in flight is checked when that result is read. */
  if (c->conn != NULL && (pq.PQstatus(c->conn) != CONNECTION_OK ||
                          (!c->rollback_sent &&
                           pq.PQtransactionStatus(c->conn) != PQTRANS_IDLE))) {
    link_close(c);
    note_state(d, 0, "connection lost");
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
static PGresult *next_result(db *d, pg_conn *c, const db_request *rq,
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
      if (rq->call != NULL && d->api->cancelled(rq->call))
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
static void drain(db *d, pg_conn *c, const db_request *rq, enum pg_stop *stop,
                  long long *cancel_at) {
  PGresult *res;

  while ((res = next_result(d, c, rq, stop, cancel_at)) != NULL)
    pq.PQclear(res);
  if (*stop == PG_BROKEN)
    link_close(c);
}

/* Maps a failed result to a code and a message a client can act on. */
static int pg_failure(pg_conn *c, const PGresult *res, const db_request *rq,
                      enum pg_stop stop, char **err) {
  const char *state =
      res != NULL ? pq.PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *primary =
      res != NULL ? pq.PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

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
    db_errorf(err, "Writes are not allowed: %s", primary);
    return DB_EREFUSED;
  }
  if (state != NULL && strcmp(state, "42601") == 0 &&
      strstr(primary, "multiple commands") != NULL) {
    db_errorf(err, "Multiple statements are not allowed: send one "
                   "statement per call");
    return DB_EREFUSED;
  }
  if (state != NULL && strncmp(state, "42501", 5) == 0) {
    db_errorf(err, "Not permitted: %s", primary);
    return DB_EREFUSED;
  }
  db_errorf(err, "PostgreSQL: %s", primary);
  return state != NULL && strncmp(state, "08", 2) == 0 ? DB_EINTERNAL
                                                       : DB_EINVALID;
}

/* Runs one of the plugin's own commands (no parameters from clients)
 * synchronously; returns the result or NULL with *err set. */
static PGresult *run_own(db *d, pg_conn *c, const db_request *rq,
                         const char *sql, int nparams,
                         const char *const *values, char **err) {
  enum pg_stop stop = PG_RUNNING;
  long long cancel_at = 0;
  PGresult *res = NULL, *next;
  ExecStatusType st;

  if (!pq.PQsendQueryParams(c->conn, sql, nparams, NULL, values, NULL, NULL,
                            0)) {
    pg_failure(c, NULL, rq, PG_BROKEN, err);
    link_close(c);
    return NULL;
  }
  while ((next = next_result(d, c, rq, &stop, &cancel_at)) != NULL) {
    if (res == NULL)
      res = next;
    else
      pq.PQclear(next);
  }
  if (stop == PG_BROKEN)
    link_close(c);
  st = res != NULL ? pq.PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    pg_failure(c, res, rq, stop, err);
    pq.PQclear(res);
    return NULL;
  }
  return res;
}

/* BEGIN (READ ONLY unless write) with the request's statement timeout. */
static int begin(db *d, pg_conn *c, const db_request *rq, int write,
                 char **err) {
  char sql[128];
  PGresult *res;

  snprintf(sql, sizeof(sql), "BEGIN%s; SET LOCAL statement_timeout = %d",
           write ? " READ WRITE" : " READ ONLY", rq->timeout_ms);
  /* The simple protocol: our own two commands, no client text. */
  if (!pq.PQsendQuery(c->conn, sql)) {
    link_close(c);
    return pg_failure(c, NULL, rq, PG_BROKEN, err);
  }
  {
    enum pg_stop stop = PG_RUNNING;
    long long cancel_at = 0;
    int failed = 0;

    while ((res = next_result(d, c, rq, &stop, &cancel_at)) != NULL) {
      if (!failed && pq.PQresultStatus(res) != PGRES_COMMAND_OK) {
        failed = 1;
        pg_failure(c, res, rq, stop, err);
      }
      pq.PQclear(res);
    }
    if (stop == PG_BROKEN) {
      link_close(c);
      return pg_failure(c, NULL, rq, PG_BROKEN, err);
    }
    return failed ? DB_EINTERNAL : DB_OK;
  }
}

static void rollback(pg_conn *c) {
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
static void end_read(db *d, pg_conn *c) {
  if (c->conn != NULL && pq.PQstatus(c->conn) == CONNECTION_OK &&
      pq.PQtransactionStatus(c->conn) != PQTRANS_IDLE) {
    if (pq.PQsendQuery(c->conn, "ROLLBACK"))
      c->rollback_sent = 1;
    else
      link_close(c);
  }
  checkin(d, c);
}

/* Reads the result of the ROLLBACK end_read sent. Unless it succeeded and
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
  while ((res = next_result(d, c, rq, &stop, &cancel_at)) != NULL) {
    if (pq.PQresultStatus(res) != PGRES_COMMAND_OK)
      failed = 1;
    pq.PQclear(res);
  }
  if (failed || stop != PG_RUNNING || pq.PQstatus(c->conn) != CONNECTION_OK ||
      pq.PQtransactionStatus(c->conn) != PQTRANS_IDLE)
    link_close(c);
}

/* Borrows a connection and opens a read-only transaction on it. A
 * connection that died while idle in the pool (the server restarted) is
 * reconnected once: nothing has run yet, so trying again is safe. */
static pg_conn *begin_read(db *d, const db_request *rq, char **err, int *rc) {
  pg_conn *c;
  int attempt;

  for (attempt = 0; attempt < 2; attempt++) {
    c = checkout(d, rq, err);
    if (c == NULL) {
      *rc = db_now_ms() >= rq->deadline ? DB_ETIMEOUT : DB_EINTERNAL;
      return NULL;
    }
    *rc = begin(d, c, rq, 0, err);
    if (*rc == DB_OK)
      return c;
    if (c->conn != NULL && pq.PQstatus(c->conn) == CONNECTION_OK) {
      end_read(d, c);
      return NULL;
    }
    checkin(d, c);
  }
  return NULL;
}

/* ---- values ---- */

/* Type names and element types of the built-in types worth naming. */
static const struct {
  Oid oid;
  const char *name;
  Oid elem; /* For arrays: the element type. */
} pg_types[] = {
    {16, "boolean", 0},
    {17, "bytea", 0},
    {18, "char", 0},
    {19, "name", 0},
    {20, "bigint", 0},
    {21, "smallint", 0},
    {23, "integer", 0},
    {25, "text", 0},
    {26, "oid", 0},
    {114, "json", 0},
    {142, "xml", 0},
    {700, "real", 0},
    {701, "double precision", 0},
    {790, "money", 0},
    {1042, "character", 0},
    {1043, "character varying", 0},
    {1082, "date", 0},
    {1083, "time", 0},
    {1114, "timestamp", 0},
    {1184, "timestamptz", 0},
    {1186, "interval", 0},
    {1266, "timetz", 0},
    {1700, "numeric", 0},
    {2950, "uuid", 0},
    {3802, "jsonb", 0},
    {869, "inet", 0},
    {650, "cidr", 0},
    {2249, "record", 0},
    {2278, "void", 0},
    {705, "unknown", 0},
    {1000, "boolean[]", 16},
    {1001, "bytea[]", 17},
    {1005, "smallint[]", 21},
    {1007, "integer[]", 23},
    {1009, "text[]", 25},
    {1014, "character[]", 1042},
    {1015, "character varying[]", 1043},
    {1016, "bigint[]", 20},
    {1021, "real[]", 700},
    {1022, "double precision[]", 701},
    {1028, "oid[]", 26},
    {1003, "name[]", 19},
    {1115, "timestamp[]", 1114},
    {1182, "date[]", 1082},
    {1183, "time[]", 1083},
    {1185, "timestamptz[]", 1184},
    {1231, "numeric[]", 1700},
    {199, "json[]", 114},
    {3807, "jsonb[]", 3802},
    {2951, "uuid[]", 2950},
    {1187, "interval[]", 1186},
};

static int type_index(Oid oid) {
  size_t i;

  for (i = 0; i < sizeof(pg_types) / sizeof(pg_types[0]); i++)
    if (pg_types[i].oid == oid)
      return (int)i;
  return -1;
}

static cJSON *pg_value(db *d, Oid oid, const char *text, size_t len);

static int hex_digit(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* bytea's hex output (\x0a1b...) as base64. */
static cJSON *bytea_value(db *d, const char *text, size_t len) {
  unsigned char *bytes;
  size_t n = 0, i;
  char *b64;
  cJSON *v;

  if (len < 2 || text[0] != '\\' || text[1] != 'x')
    return cJSON_CreateString(text);
  bytes = malloc(len / 2 + 1);
  if (bytes == NULL)
    return NULL;
  for (i = 2; i + 1 < len; i += 2) {
    int hi = hex_digit((unsigned char)text[i]);
    int lo = hex_digit((unsigned char)text[i + 1]);
    if (hi < 0 || lo < 0)
      break;
    bytes[n++] = (unsigned char)(hi << 4 | lo);
  }
  b64 = ph_base64(d->api, bytes, n);
  free(bytes);
  if (b64 == NULL)
    return NULL;
  v = cJSON_CreateString(b64);
  d->api->free(b64);
  return v;
}

/* "2024-01-02 03:04:05.5+00" -> "2024-01-02T03:04:05.5+00:00". */
static cJSON *timestamp_value(const char *text, size_t len) {
  char iso[64];
  size_t n;

  if (len < 19 || len + 4 > sizeof(iso) || text[10] != ' ')
    return cJSON_CreateString(text); /* infinity, BC dates */
  memcpy(iso, text, len + 1);
  iso[10] = 'T';
  n = len;
  if ((iso[n - 3] == '+' || iso[n - 3] == '-') &&
      isdigit((unsigned char)iso[n - 1]))
    memcpy(iso + n, ":00", 4);
  return cJSON_CreateString(iso);
}

/* Parses one level of PostgreSQL's array output, "{1,NULL,"a b"}", with
 * nested levels for multi-dimensional arrays. */
static cJSON *array_value(db *d, Oid elem, const char **pp) {
  const char *p = *pp;
  cJSON *array = cJSON_CreateArray(), *item;
  char *buf = NULL;
  size_t cap = 0, n;
  int quoted;

  if (array == NULL || *p != '{')
    goto fail;
  p++;
  if (*p == '}') {
    *pp = p + 1;
    return array;
  }
  for (;;) {
    if (*p == '{') {
      item = array_value(d, elem, &p);
      if (item == NULL)
        goto fail;
    } else {
      quoted = *p == '"';
      if (quoted)
        p++;
      n = 0;
      while (*p != '\0' && (quoted ? *p != '"' : *p != ',' && *p != '}')) {
        if (quoted && *p == '\\' && p[1] != '\0')
          p++;
        if (n + 2 > cap) {
          char *grown = realloc(buf, cap = cap * 2 + 64);
          if (grown == NULL)
            goto fail;
          buf = grown;
        }
        buf[n++] = *p++;
      }
      if (quoted) {
        if (*p != '"')
          goto fail;
        p++;
      }
      if (buf == NULL && (buf = malloc(cap = 64)) == NULL)
        goto fail;
      buf[n] = '\0';
      if (!quoted && strcasecmp(buf, "NULL") == 0)
        item = cJSON_CreateNull();
      else
        item = pg_value(d, elem, buf, n);
      if (item == NULL)
        goto fail;
    }
    cJSON_AddItemToArray(array, item);
    if (*p == ',') {
      p++;
      continue;
    }
    if (*p == '}') {
      p++;
      break;
    }
    goto fail;
  }
  free(buf);
  *pp = p;
  return array;

fail:
  free(buf);
  cJSON_Delete(array);
  return NULL;
}

/* One value in its JSON type, from PostgreSQL's text output. */
static cJSON *pg_value(db *d, Oid oid, const char *text, size_t len) {
  int t = type_index(oid);
  const char *p;
  cJSON *v;
  char *end;

  switch (oid) {
  case 16:
    return cJSON_CreateBool(text[0] == 't');
  case 20:
  case 21:
  case 23:
  case 26:
    errno = 0;
    {
      long long n = strtoll(text, &end, 10);
      if (errno == 0 && *end == '\0')
        return db_json_int64(n);
    }
    return cJSON_CreateString(text);
  case 700:
  case 701: {
    double f = strtod(text, &end);
    if (*end == '\0' && isfinite(f))
      return cJSON_CreateNumber(f);
    return cJSON_CreateString(text);
  }
  case 114:
  case 3802:
    v = cJSON_ParseWithLength(text, len);
    return v != NULL ? v : cJSON_CreateString(text);
  case 17:
    return bytea_value(d, text, len);
  case 1114:
  case 1184:
    return timestamp_value(text, len);
  default:
    break;
  }
  if (t >= 0 && pg_types[t].elem != 0) {
    p = text;
    if (*p == '[') /* Explicit bounds: "[0:1]={...}". */
      p = strchr(p, '=') != NULL ? strchr(p, '=') + 1 : p;
    v = array_value(d, pg_types[t].elem, &p);
    return v != NULL ? v : cJSON_CreateString(text);
  }
  /* numeric, money, text, uuid, interval, date, enums...: the text. */
  return cJSON_CreateString(text);
}

/* Parameters as text for PQexecParams: the server infers their types. */
static int param_texts(const cJSON *params, char ***values, int *n,
                       char **err) {
  const cJSON *p, *e;
  char **out;
  int i = 0;

  *n = params != NULL ? cJSON_GetArraySize(params) : 0;
  *values = out = calloc((size_t)*n + 1, sizeof(char *));
  if (out == NULL)
    return DB_EINTERNAL;
  cJSON_ArrayForEach(p, params) {
    if (cJSON_IsNull(p)) {
      out[i] = NULL;
    } else if (cJSON_IsBool(p)) {
      out[i] = strdup(cJSON_IsTrue(p) ? "true" : "false");
    } else if (cJSON_IsNumber(p)) {
      double v = p->valuedouble;
      if (v == floor(v) && fabs(v) < 9.2e18) {
        if (asprintf(&out[i], "%lld", (long long)v) < 0)
          out[i] = NULL;
      } else if (asprintf(&out[i], "%.17g", v) < 0) {
        out[i] = NULL;
      }
    } else if (cJSON_IsString(p)) {
      out[i] = strdup(p->valuestring);
    } else if (cJSON_IsArray(p)) {
      /* A JSON array of scalars becomes an array literal, for = ANY($1). */
      size_t len = 3, used = 0;
      cJSON_ArrayForEach(e, p) {
        if (cJSON_IsArray(e) || cJSON_IsObject(e)) {
          db_errorf(err, "params[%d]: nested arrays are not supported", i);
          return DB_EINVALID;
        }
        len += 2 * (cJSON_IsString(e) ? strlen(e->valuestring) : 32) + 4;
      }
      out[i] = malloc(len);
      if (out[i] == NULL)
        return DB_EINTERNAL;
      out[i][used++] = '{';
      cJSON_ArrayForEach(e, p) {
        const char *s;
        char num[40];
        if (used > 1)
          out[i][used++] = ',';
        if (cJSON_IsNull(e)) {
          memcpy(out[i] + used, "NULL", 4);
          used += 4;
          continue;
        }
        if (cJSON_IsNumber(e)) {
          snprintf(num, sizeof(num), "%.17g", e->valuedouble);
          s = num;
        } else if (cJSON_IsBool(e)) {
          s = cJSON_IsTrue(e) ? "true" : "false";
        } else {
          s = e->valuestring;
        }
        out[i][used++] = '"';
        for (; *s != '\0'; s++) {
          if (*s == '"' || *s == '\\')
            out[i][used++] = '\\';
          out[i][used++] = *s;
        }
        out[i][used++] = '"';
      }
      out[i][used++] = '}';
      out[i][used] = '\0';
    } else {
      out[i] = cJSON_PrintUnformatted(p);
    }
    if (!cJSON_IsNull(p) && out[i] == NULL)
      return DB_EINTERNAL;
    i++;
  }
  return DB_OK;
}

static void free_texts(char **values, int n) {
  int i;

  for (i = 0; values != NULL && i < n; i++)
    free(values[i]);
  free(values);
}

/* ---- the plan check ---- */

static int push_name(char ***names, int *n, const char *name) {
  char **grown = realloc(*names, (size_t)(*n + 1) * sizeof(char *));

  if (grown == NULL)
    return -1;
  *names = grown;
  if ((grown[*n] = strdup(name)) == NULL)
    return -1;
  (*n)++;
  return 0;
}

/* What the snapshot needs beside the relations (into `into`, a pg_state
 * used only for these fields): the indexes whose keys hold a masked
 * column; the indexes, sequences and TOAST tables of hidden tables, whose
 * names would tell that their table exists; and, while tables are hidden,
 * the names of the catalog's relations and of the functions that take a
 * regclass, which the lexer refuses beside sql_catalog_denied. (The
 * views of information_schema need its name before theirs, and the lexer
 * refuses that.) */
static int load_extras(db *d, pg_conn *c, const db_request *rq, pg_rel *rels,
                       int nrels, pg_state *into, char **err) {
  PGresult *res;
  const pg_rel *r;
  int i, k, rc = DB_OK;

  res = run_own(
      d, c, rq,
      "SELECT t.relname, c.relname, c.relkind IN ('i', 'I') AND "
      "(x.indexprs IS NOT NULL OR x.indpred IS NOT NULL), a.attname FROM "
      "pg_class c JOIN pg_class t ON t.oid = CASE WHEN c.relkind IN ('i', "
      "'I') THEN (SELECT indrelid FROM pg_index WHERE indexrelid = c.oid) "
      "WHEN c.relkind = 'S' THEN (SELECT refobjid FROM pg_depend WHERE "
      "classid = 'pg_class'::regclass AND objid = c.oid AND refclassid = "
      "'pg_class'::regclass AND deptype IN ('a', 'i') LIMIT 1) ELSE (SELECT "
      "o.oid FROM pg_class o WHERE o.reltoastrelid = c.oid LIMIT 1) END JOIN "
      "pg_namespace n ON n.oid = t.relnamespace LEFT JOIN pg_index x ON "
      "x.indexrelid = c.oid LEFT JOIN pg_attribute a ON a.attrelid = t.oid "
      "AND a.attnum > 0 AND a.attnum = ANY (x.indkey) WHERE c.relkind IN "
      "('i', 'I', 'S', 't') AND n.nspname NOT IN ('pg_catalog', "
      "'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY "
      "c.relname",
      0, NULL, err);
  if (res == NULL)
    return DB_EINTERNAL;
  for (i = 0; i < pq.PQntuples(res) && rc == DB_OK; i++) {
    const char *table = pq.PQgetvalue(res, i, 0);
    const char *name = pq.PQgetvalue(res, i, 1);
    const char *column = pq.PQgetvalue(res, i, 3);
    int masked =
        !pq.PQgetisnull(res, i, 3) && db_column_masked(d, table, column);
    pg_masked_index *grown;

    if (db_table_hidden(d, table)) {
      if ((i == 0 || strcmp(pq.PQgetvalue(res, i - 1, 1), name) != 0) &&
          push_name(&into->hidden_names, &into->nhidden_names, name) != 0)
        rc = DB_EINTERNAL;
      continue;
    }
    for (r = NULL, k = 0; k < nrels && r == NULL; k++)
      if (strcmp(rels[k].name, table) == 0)
        r = &rels[k];
    /* An expression or a condition of an index of such a table counts as
     * a masked column: the plugin does not parse it. */
    if (r == NULL || r->nmasked == 0 ||
        (!masked && pq.PQgetvalue(res, i, 2)[0] != 't'))
      continue;
    grown = realloc(into->masked_indexes, (size_t)(into->nmasked_indexes + 1) *
                                              sizeof(pg_masked_index));
    if (grown == NULL) {
      rc = DB_EINTERNAL;
      break;
    }
    into->masked_indexes = grown;
    grown += into->nmasked_indexes++;
    grown->index = strdup(name);
    grown->table = strdup(table);
    grown->column = strdup(masked ? column : r->masked[0]);
    if (grown->index == NULL || grown->table == NULL || grown->column == NULL)
      rc = DB_EINTERNAL;
  }
  pq.PQclear(res);
  if (rc != DB_OK || d->nhidden == 0)
    return rc;
  res = run_own(d, c, rq,
                "SELECT relname FROM pg_class WHERE relnamespace = "
                "'pg_catalog'::regnamespace UNION SELECT proname FROM "
                "pg_proc WHERE 'regclass'::regtype = ANY "
                "(proargtypes::oid[]) OR prorettype = 'regclass'::regtype",
                0, NULL, err);
  if (res == NULL)
    return DB_EINTERNAL;
  for (i = 0; i < pq.PQntuples(res) && rc == DB_OK; i++)
    if (push_name(&into->catalog_names, &into->ncatalog_names,
                  pq.PQgetvalue(res, i, 0)) != 0)
      rc = DB_EINTERNAL;
  pq.PQclear(res);
  return rc;
}

static int by_name(const void *a, const void *b);

/* Loads which relations are hidden, views, or have masked columns. */
static int load_rels(db *d, pg_conn *c, const db_request *rq, char **err) {
  pg_state *s = d->engine_state, extras;
  PGresult *res;
  pg_rel *rels = NULL, *r = NULL;
  int nrels = 0, i;

  pthread_mutex_lock(&s->rel_lock);
  if (s->rels_loaded != 0 && db_now_ms() - s->rels_loaded < SENSITIVE_TTL_MS) {
    pthread_mutex_unlock(&s->rel_lock);
    return DB_OK;
  }
  pthread_mutex_unlock(&s->rel_lock);
  res = run_own(d, c, rq,
                "SELECT c.relname, c.relkind IN ('v', 'm'), a.attname "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = "
                "c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid "
                "AND a.attnum > 0 AND NOT a.attisdropped WHERE c.relkind IN "
                "('r', 'v', 'm', 'p', 'f') AND n.nspname NOT IN "
                "('pg_catalog', 'information_schema') AND n.nspname NOT "
                "LIKE 'pg\\_%' ORDER BY c.relname, a.attnum",
                0, NULL, err);
  if (res == NULL)
    return DB_EINTERNAL;
  rels = calloc((size_t)pq.PQntuples(res) + 1, sizeof(pg_rel));
  if (rels == NULL) {
    pq.PQclear(res);
    return DB_EINTERNAL;
  }
  for (i = 0; i < pq.PQntuples(res); i++) {
    const char *name = pq.PQgetvalue(res, i, 0);
    const char *col = pq.PQgetvalue(res, i, 2);
    if (r == NULL || strcmp(r->name, name) != 0) {
      r = &rels[nrels++];
      r->name = strdup(name);
      r->hidden = db_table_hidden(d, name);
      r->view = pq.PQgetvalue(res, i, 1)[0] == 't';
      r->masked = calloc((size_t)pq.PQntuples(res) + 1, sizeof(char *));
      r->columns = calloc((size_t)pq.PQntuples(res) + 1, sizeof(char *));
      if (r->name == NULL || r->masked == NULL || r->columns == NULL)
        break;
    }
    if ((r->columns[r->ncolumns] = strdup(col)) != NULL)
      r->ncolumns++;
    if (db_column_masked(d, name, col) &&
        (r->masked[r->nmasked] = strdup(col)) != NULL)
      r->nmasked++;
  }
  pq.PQclear(res);
  memset(&extras, 0, sizeof(extras));
  if (load_extras(d, c, rq, rels, nrels, &extras, err) != DB_OK) {
    free_rels(rels, nrels);
    free_extras(&extras);
    return DB_EINTERNAL;
  }
  /* screen_names looks them up by bsearch (neither takes an empty list,
   * whose pointer is NULL). */
  if (extras.nhidden_names > 0)
    qsort(extras.hidden_names, (size_t)extras.nhidden_names, sizeof(char *),
          by_name);
  if (extras.ncatalog_names > 0)
    qsort(extras.catalog_names, (size_t)extras.ncatalog_names, sizeof(char *),
          by_name);
  pthread_mutex_lock(&s->rel_lock);
  free_rels(s->rels, s->nrels);
  free_extras(s);
  s->rels = rels;
  s->nrels = nrels;
  s->masked_indexes = extras.masked_indexes;
  s->nmasked_indexes = extras.nmasked_indexes;
  s->hidden_names = extras.hidden_names;
  s->nhidden_names = extras.nhidden_names;
  s->catalog_names = extras.catalog_names;
  s->ncatalog_names = extras.ncatalog_names;
  s->rels_loaded = db_now_ms();
  pthread_mutex_unlock(&s->rel_lock);
  return DB_OK;
}

/* Non-zero when a statement names a relation the plan check must see. */
static int needs_plan_check(db *d, const sql_scan *scan) {
  pg_state *s = d->engine_state;
  int i, j, hit = 0;

  pthread_mutex_lock(&s->rel_lock);
  for (i = 0; i < s->nrels && !hit; i++) {
    pg_rel *r = &s->rels[i];
    if (!r->hidden && !r->view && r->nmasked == 0)
      continue;
    for (j = 0; j < scan->nidents && !hit; j++)
      hit = strcasecmp(scan->idents[j].text, r->name) == 0;
  }
  pthread_mutex_unlock(&s->rel_lock);
  return hit;
}

/* Reads one identifier at p (plain or double-quoted) into name; returns
 * the position after it, or p when there is none. */
static const char *plan_ident(const char *p, char *name, size_t size) {
  size_t n = 0;

  if (*p == '"') {
    for (p++; *p != '\0'; p++) {
      if (*p == '"' && p[1] != '"')
        break;
      if (*p == '"')
        p++;
      if (n + 1 < size)
        name[n++] = *p;
    }
    name[n] = '\0';
    return *p == '"' ? p + 1 : p;
  }
  while (isalnum((unsigned char)*p) || *p == '_' || *p == '$' ||
         (unsigned char)*p >= 0x80) {
    if (n + 1 < size)
      name[n++] = *p;
    p++;
  }
  name[n] = '\0';
  return p;
}

/* The masked column of r called name, or NULL. */
static const char *masked_name(const pg_rel *r, const char *name) {
  int i;

  for (i = 0; i < r->nmasked; i++)
    if (strcmp(r->masked[i], name) == 0)
      return r->masked[i];
  return NULL;
}

/* Does a plan expression use a masked column of r: "any.col", a bare
 * "col" (EXPLAIN leaves names unqualified when the plan has one
 * relation), or "alias.*", the whole row? Returns the column, "*" or
 * NULL. String literals are skipped. */
static const char *masked_reference(const char *text, const char *alias,
                                    const pg_rel *r) {
  char name[128], field[128];
  const char *p = text, *next;

  while (*p != '\0') {
    if (*p == '\'') {
      for (p++; *p != '\0' && !(*p == '\'' && p[1] != '\''); p++)
        if (*p == '\'')
          p++;
      if (*p != '\0')
        p++;
      continue;
    }
    next = plan_ident(p, name, sizeof(name));
    if (next == p) {
      p++;
      continue;
    }
    p = next;
    if (*p != '.') {
      if (masked_name(r, name) != NULL)
        return masked_name(r, name);
      continue;
    }
    p++;
    if (*p == '*') {
      if (strcmp(name, alias) == 0)
        return "*";
      p++;
      continue;
    }
    next = plan_ident(p, field, sizeof(field));
    if (next == p)
      continue;
    p = next;
    /* Any qualifier: a subquery alias may carry the column upwards. */
    if (masked_name(r, field) != NULL)
      return masked_name(r, field);
  }
  return NULL;
}

/* Scans of relations with masked columns found in a plan. */
typedef struct plan_scan {
  const char *alias;
  const pg_rel *rel;
} plan_scan;

typedef struct plan_walk {
  db *d;
  plan_scan scans[64];
  int nscans;
  const char *hit; /* The masked column found, or "*". */
  const char *hit_rel;
} plan_walk;

static const pg_rel *find_rel(pg_state *s, const char *name) {
  int i;

  for (i = 0; i < s->nrels; i++)
    if (strcmp(s->rels[i].name, name) == 0)
      return &s->rels[i];
  return NULL;
}

/* Is a scan's Output every column of its relation in order? PostgreSQL
 * emits such a "physical" target list below nodes that project anyway
 * (aggregates, joins), so it says nothing about what reaches the client. */
static int physical_tlist(const cJSON *output, const pg_rel *r) {
  const cJSON *item;
  char first[128], second[128];
  const char *p, *name;
  int i = 0;

  if (cJSON_GetArraySize(output) != r->ncolumns)
    return 0;
  cJSON_ArrayForEach(item, output) {
    if (!cJSON_IsString(item))
      return 0;
    p = plan_ident(item->valuestring, first, sizeof(first));
    name = first;
    if (*p == '.') {
      p = plan_ident(p + 1, second, sizeof(second));
      name = second;
    }
    if (*p != '\0' || strcmp(name, r->columns[i++]) != 0)
      return 0;
  }
  return 1;
}

/* Collects the scans of relations with masked columns; refuses hidden
 * relations on the way. */
static int collect_scans(plan_walk *w, const cJSON *node, char **err) {
  pg_state *s = w->d->engine_state;
  const cJSON *child;
  const char *rel, *alias, *index, *type;
  const pg_rel *r;
  int rc, i;

  if (cJSON_IsArray(node)) {
    cJSON_ArrayForEach(child, node) {
      if ((rc = collect_scans(w, child, err)) != DB_OK)
        return rc;
    }
    return DB_OK;
  }
  if (!cJSON_IsObject(node))
    return DB_OK;
  if ((child = cJSON_GetObjectItemCaseSensitive(node, "Plan")) != NULL)
    return collect_scans(w, child, err);
  rel = cJSON_GetStringValue(cJSON_GetObjectItem(node, "Relation Name"));
  alias = cJSON_GetStringValue(cJSON_GetObjectItem(node, "Alias"));
  index = cJSON_GetStringValue(cJSON_GetObjectItem(node, "Index Name"));
  type = cJSON_GetStringValue(cJSON_GetObjectItem(node, "Node Type"));
  /* A scan that walks an index in its order (not a bitmap scan, which
   * reads the table in its own order) returns rows in the order of the
   * masked column, which no condition or output of the node shows. */
  if (type == NULL ||
      (strcmp(type, "Index Scan") != 0 && strcmp(type, "Index Only Scan") != 0))
    index = NULL;
  for (i = 0; index != NULL && i < s->nmasked_indexes; i++)
    if (strcmp(s->masked_indexes[i].index, index) == 0) {
      db_errorf(err,
                "Column '%s.%s' is masked by the operator and cannot be "
                "read; the plan of this statement walks index '%s', whose "
                "order follows it",
                s->masked_indexes[i].table, s->masked_indexes[i].column, index);
      return DB_EREFUSED;
    }
  if (rel != NULL) {
    if (db_table_hidden(w->d, rel)) {
      db_errorf(err, "Table '%s' is not accessible", rel);
      return DB_EREFUSED;
    }
    r = find_rel(s, rel);
    if (r != NULL && r->nmasked > 0) {
      /* Every scan is searched for, or a whole-row use of one left out
       * would pass. */
      if (w->nscans == (int)(sizeof(w->scans) / sizeof(w->scans[0]))) {
        db_errorf(err, "The statement reads tables with masked columns too "
                       "many times for the plugin to check");
        return DB_EREFUSED;
      }
      w->scans[w->nscans].alias = alias != NULL ? alias : rel;
      w->scans[w->nscans].rel = r;
      w->nscans++;
    }
  }
  child = cJSON_GetObjectItemCaseSensitive(node, "Plans");
  return child != NULL ? collect_scans(w, child, err) : DB_OK;
}

/* Searches the strings of one node (not its children) for masked
 * references of any collected scan. */
static void search_strings(plan_walk *w, const cJSON *value) {
  const cJSON *item;
  int i;

  if (w->hit != NULL)
    return;
  if (cJSON_IsString(value)) {
    for (i = 0; i < w->nscans && w->hit == NULL; i++) {
      w->hit = masked_reference(value->valuestring, w->scans[i].alias,
                                w->scans[i].rel);
      w->hit_rel = w->scans[i].rel->name;
    }
    return;
  }
  cJSON_ArrayForEach(item, value) search_strings(w, item);
}

/* Nodes that compute their own output from their input's columns, so a
 * physical list below them is not what they emit. Append, Limit, Sort and
 * the like pass rows through unchanged. */
static int projects(const char *node_type) {
  static const char *const kinds[] = {
      "Aggregate", "Nested Loop", "Hash Join",     "Merge Join", "Group",
      "WindowAgg", "Result",      "Subquery Scan", "ProjectSet", NULL};
  int i;

  for (i = 0; node_type != NULL && kinds[i] != NULL; i++)
    if (strcmp(node_type, kinds[i]) == 0)
      return 1;
  return 0;
}

/* parent: the Node Type above node, NULL at the root. */
static void search_plan(plan_walk *w, const cJSON *node, const char *parent) {
  pg_state *s = w->d->engine_state;
  const cJSON *item;
  const char *rel, *type;
  const pg_rel *r;

  if (cJSON_IsArray(node)) {
    cJSON_ArrayForEach(item, node) search_plan(w, item, parent);
    return;
  }
  if (!cJSON_IsObject(node) || w->hit != NULL)
    return;
  if ((item = cJSON_GetObjectItemCaseSensitive(node, "Plan")) != NULL) {
    search_plan(w, item, NULL);
    return;
  }
  type = cJSON_GetStringValue(cJSON_GetObjectItem(node, "Node Type"));
  rel = cJSON_GetStringValue(cJSON_GetObjectItem(node, "Relation Name"));
  r = rel != NULL ? find_rel(s, rel) : NULL;
  cJSON_ArrayForEach(item, node) {
    if (strcmp(item->string, "Plans") == 0)
      continue;
    /* Under a projecting node, a scan's full physical list is no use of
     * its columns: the node above says what it takes. */
    if (projects(parent) && r != NULL && r->nmasked > 0 &&
        strcmp(item->string, "Output") == 0 && physical_tlist(item, r))
      continue;
    search_strings(w, item);
  }
  item = cJSON_GetObjectItemCaseSensitive(node, "Plans");
  if (item != NULL)
    cJSON_ArrayForEach(item, item) search_plan(w, item, type);
}

/* Refuses a plan that scans a hidden relation or uses a masked column
 * (or the whole row of a table that has one) anywhere. */
static int check_plan(db *d, const cJSON *plan, char **err) {
  pg_state *s = d->engine_state;
  plan_walk w;
  int rc;

  memset(&w, 0, sizeof(w));
  w.d = d;
  pthread_mutex_lock(&s->rel_lock);
  rc = collect_scans(&w, plan, err);
  if (rc == DB_OK && w.nscans > 0)
    search_plan(&w, plan, NULL);
  if (rc == DB_OK && w.hit != NULL) {
    rc = DB_EREFUSED;
    if (strcmp(w.hit, "*") == 0)
      db_errorf(err,
                "Table '%s' has masked columns, so its whole row cannot be "
                "read; select the other columns by name",
                w.hit_rel);
    else
      db_errorf(err,
                "Column '%s.%s' is masked by the operator and cannot be "
                "read; select the other columns by name",
                w.hit_rel, w.hit);
  }
  pthread_mutex_unlock(&s->rel_lock);
  return rc;
}

/* EXPLAIN (VERBOSE, FORMAT JSON) of the client's statement with its
 * parameters, inside the open transaction. */
static int explain_json(db *d, pg_conn *c, const db_request *rq, char **values,
                        int nvalues, int verbose, cJSON **plan, char **err) {
  PGresult *res;
  char *sql;

  *plan = NULL;
  if (asprintf(&sql, "EXPLAIN (%sFORMAT JSON) %s", verbose ? "VERBOSE, " : "",
               rq->sql) < 0)
    return DB_EINTERNAL;
  res = run_own(d, c, rq, sql, nvalues, (const char *const *)values, err);
  free(sql);
  if (res == NULL)
    return DB_EINVALID;
  if (pq.PQntuples(res) == 1)
    *plan = cJSON_Parse(pq.PQgetvalue(res, 0, 0));
  pq.PQclear(res);
  if (*plan == NULL) {
    db_errorf(err, "PostgreSQL returned no plan");
    return DB_EINTERNAL;
  }
  return DB_OK;
}

/* The lexer's checks, before a connection is borrowed. On DB_OK the
 * caller owns *scan (sql_scan_free) and passes it to screen_plan. */
static int screen(db *d, const db_request *rq, int write, sql_scan *scan,
                  char **err) {
  int rc;

  if (sql_scan_run(scan, rq->sql, DB_POSTGRES) != 0) {
    sql_scan_free(scan);
    return DB_EINTERNAL;
  }
  rc = sql_check(d, scan, write, err);
  if (rc != DB_OK)
    sql_scan_free(scan);
  return rc;
}

static int by_name(const void *a, const void *b) {
  return strcasecmp(*(char *const *)a, *(char *const *)b);
}

/* The snapshot's part of the lexer's checks, with a snapshot loaded: the
 * name of an index, sequence or TOAST table of a hidden table is refused
 * as PostgreSQL refuses a missing relation (word for word, so a client
 * cannot tell them apart), and while tables are hidden so are the names
 * of the catalog's relations and of functions taking a regclass. */
static int screen_names(db *d, const sql_scan *scan, char **err) {
  pg_state *s = d->engine_state;
  const char *word;
  int i, rc = DB_OK;

  pthread_mutex_lock(&s->rel_lock);
  for (i = 0; i < scan->nidents && rc == DB_OK; i++) {
    word = scan->idents[i].text;
    if (s->nhidden_names > 0 &&
        bsearch(&word, s->hidden_names, (size_t)s->nhidden_names,
                sizeof(char *), by_name) != NULL) {
      db_errorf(err, "PostgreSQL: relation \"%s\" does not exist", word);
      rc = DB_EINVALID;
    } else if (s->ncatalog_names > 0 &&
               bsearch(&word, s->catalog_names, (size_t)s->ncatalog_names,
                       sizeof(char *), by_name) != NULL) {
      db_errorf(err,
                "'%s' is not allowed while tables are hidden: it reads "
                "the catalog; use list_tables and describe_table",
                word);
      rc = DB_EREFUSED;
    }
  }
  pthread_mutex_unlock(&s->rel_lock);
  return rc;
}

/* The catalog snapshot and, when the statement names a sensitive
 * relation, the plan check, on the borrowed connection c. */
static int screen_plan(db *d, pg_conn *c, const db_request *rq,
                       const sql_scan *scan, char **values, int nvalues,
                       char **err) {
  cJSON *plan = NULL;
  int rc;

  rc = load_rels(d, c, rq, err);
  if (rc == DB_OK)
    rc = screen_names(d, scan, err);
  if (rc == DB_OK && needs_plan_check(d, scan)) {
    rc = explain_json(d, c, rq, values, nvalues, 1, &plan, err);
    if (rc == DB_OK)
      rc = check_plan(d, plan, err);
  }
  cJSON_Delete(plan);
  return rc;
}

/* ---- engine functions ---- */

static int type_name_of(Oid oid, char *buf, size_t size) {
  int t = type_index(oid);

  if (t >= 0)
    snprintf(buf, size, "%s", pg_types[t].name);
  else
    snprintf(buf, size, "oid:%u", (unsigned)oid);
  return 0;
}

static void add_columns(db_rows *out, const PGresult *res) {
  char type[64];
  cJSON *col;
  int i;

  for (i = 0; i < pq.PQnfields(res); i++) {
    col = cJSON_CreateObject();
    cJSON_AddStringToObject(col, "name", pq.PQfname(res, i));
    type_name_of(pq.PQftype(res, i), type, sizeof(type));
    cJSON_AddStringToObject(col, "type", type);
    cJSON_AddItemToArray(out->columns, col);
  }
}

/* Writes one value into the row being built, in its JSON type (the mapping
 * of pg_value), as text: the common types straight, the rest (json,
 * arrays, bytea) through a cJSON value. */
static void put_value(db *d, db_rows *out, Oid oid, const char *text,
                      size_t len) {
  char iso[64], *end;

  switch (oid) {
  case 16:
    db_row_bool(out, text[0] == 't');
    return;
  case 20:
  case 21:
  case 23:
  case 26: {
    long long n;

    errno = 0;
    n = strtoll(text, &end, 10);
    if (errno == 0 && *end == '\0')
      db_row_int64(out, n);
    else
      db_row_string(out, text, len);
    return;
  }
  case 700:
  case 701: {
    double f = strtod(text, &end);

    if (*end == '\0' && isfinite(f))
      db_row_double(out, f);
    else
      db_row_string(out, text, len);
    return;
  }
  case 1114:
  case 1184:
    /* timestamp_value, without the cJSON string. */
    if (len < 19 || len + 4 > sizeof(iso) || text[10] != ' ') {
      db_row_string(out, text, len);
      return;
    }
    memcpy(iso, text, len);
    iso[10] = 'T';
    if ((iso[len - 3] == '+' || iso[len - 3] == '-') &&
        isdigit((unsigned char)iso[len - 1])) {
      memcpy(iso + len, ":00", 3);
      len += 3;
    }
    db_row_string(out, iso, len);
    return;
  case 17:
  case 114:
  case 3802:
    break;
  case 25:
  case 1043:
  case 1700:
    /* Common enough to skip the search of pg_types below. */
    db_row_string(out, text, len);
    return;
  default: {
    int t = type_index(oid);

    if (t >= 0 && pg_types[t].elem != 0)
      break;
    /* money, uuid, interval, date, enums...: the text. */
    db_row_string(out, text, len);
    return;
  }
  }
  db_row_json(out, pg_value(d, oid, text, len));
}

/* Adds the rows of res (one in single-row mode) to out past the offset.
 * Returns 0 to read on, 1 when no more rows are wanted (the limit or the
 * byte budget is reached; out->truncated says so), -1 when out of memory
 * (*err set). */
static int take_rows(db *d, const PGresult *res, const db_request *rq,
                     long *skipped, db_rows *out, char **err) {
  int r, i, nfields = pq.PQnfields(res);

  for (r = 0; r < pq.PQntuples(res); r++) {
    if (*skipped < rq->offset) {
      (*skipped)++;
      continue;
    }
    if (out->count >= rq->limit) {
      out->truncated = 1;
      return 1;
    }
    db_row_begin(out);
    for (i = 0; i < nfields; i++) {
      if (pq.PQgetisnull(res, r, i))
        db_row_null(out);
      else
        put_value(d, out, pq.PQftype(res, i), pq.PQgetvalue(res, r, i),
                  (size_t)pq.PQgetlength(res, r, i));
    }
    if (db_row_end(out) != 0) {
      if (!out->failed)
        return 1;
      db_errorf(err, "out of memory");
      return -1;
    }
  }
  return 0;
}

/* Counts the bytes of each row of a client's statement from now on
 * against the row limit (next_result). */
static void row_cap_start(db *d, pg_conn *c) {
  c->row_cap = db_row_limit(d);
  c->row_wire = 0;
  c->row_too_big = 0;
}

static void row_cap_end(pg_conn *c) {
  c->row_cap = 0;
  c->row_too_big = 0;
}

/* Streams the client's statement row by row (single-row mode), so a huge
 * result costs no memory: past the limit the rest is cancelled, and a row
 * past the row limit drops the link before libpq has all of it. */
static int stream_rows(db *d, pg_conn *c, const db_request *rq, char **values,
                       int nvalues, db_rows *out, char **err) {
  enum pg_stop stop = PG_RUNNING;
  long long cancel_at = 0;
  PGresult *res;
  long skipped = 0;
  int rc = DB_OK, have_columns = 0, done = 0, taken;
  char buf[256];

  if (!pq.PQsendQueryParams(c->conn, rq->sql, nvalues, NULL,
                            (const char *const *)values, NULL, NULL, 0)) {
    return pg_failure(c, NULL, rq, PG_BROKEN, err);
  }
  pq.PQsetSingleRowMode(c->conn);
  row_cap_start(d, c);
  while (!done && (res = next_result(d, c, rq, &stop, &cancel_at)) != NULL) {
    ExecStatusType st = pq.PQresultStatus(res);
    if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
      if (!have_columns) {
        add_columns(out, res);
        have_columns = 1;
      }
      taken = take_rows(d, res, rq, &skipped, out, err);
      if (taken < 0)
        rc = DB_EINTERNAL;
      done = taken != 0;
    } else if (st == PGRES_COMMAND_OK) {
      /* SHOW and friends end here with no rows. */
    } else if (rc == DB_OK) {
      rc = pg_failure(c, res, rq, stop, err);
    }
    pq.PQclear(res);
  }
  if (done && c->conn != NULL) {
    /* Stop the server producing rows nobody will read. */
    if (c->cancel != NULL)
      pq.PQcancel(c->cancel, buf, sizeof(buf));
    cancel_at = db_now_ms();
    stop = PG_RUNNING;
    drain(d, c, rq, &stop, &cancel_at);
  } else if (stop != PG_RUNNING && rc == DB_OK) {
    rc = pg_failure(c, NULL, rq, stop, err);
  }
  if (stop == PG_BROKEN)
    link_close(c);
  row_cap_end(c);
  return rc;
}

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

/* What a pipeline sent, in order; each step's results end in a NULL from
 * PQgetResult, the sync in a PGRES_PIPELINE_SYNC result. */
enum pipe_step {
  STEP_DEALLOCATE, /* Frees the slot's old statement (outside the BEGIN). */
  STEP_BEGIN,
  STEP_TIMEOUT, /* Only when the timeout differs from the session's. */
  STEP_PREPARE, /* Only for a statement not prepared on c yet. */
  STEP_STATEMENT,
  STEP_ROLLBACK,
  STEP_SYNC
};

/* One pipelined read in progress: what was sent and what came back so far.
 * The same steps serve the blocking path (pipelined_rows, on a worker) and
 * the one driven by the host's loop (pg_query_start). */
typedef struct pipe_run {
  enum pipe_step steps[7];
  int nsteps, at; /* at == nsteps: the sync arrived. */
  enum pg_stop stop;
  long skipped;
  int rc, have_columns, done, results, stale;
  int over;       /* The rows reached the limit: cancel the rest. */
  int single_row; /* Rows come one PGresult each (else all in one). */
  size_t len;
  unsigned hash;
  pg_stmt *t;    /* The kept statement run, or NULL (unnamed). */
  pg_stmt *slot; /* Non-NULL when t is prepared by this pipeline. */
} pipe_run;

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
static int pipe_send(pg_conn *c, const db_request *rq, char **values,
                     int nvalues, pipe_run *p) {
  char timeout[64], name[32];
  int sent;

  memset(p, 0, sizeof(*p));
  p->single_row = 1;
  p->len = strlen(rq->sql);
  p->hash = stmt_hash(rq->sql, p->len);
  if (p->len <= STMT_MAX_SQL) {
    p->t = stmt_find(c, rq->sql, p->len, p->hash);
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
    sent = pq.PQsendPrepare(c->conn, name, rq->sql, 0, NULL);
    p->steps[p->nsteps++] = STEP_PREPARE;
  }
  if (sent) {
    if (p->t != NULL) {
      snprintf(name, sizeof(name), "ph_s%u", p->t->serial);
      p->t->used = ++c->tick;
      sent = pq.PQsendQueryPrepared(c->conn, name, nvalues,
                                    (const char *const *)values, NULL, NULL, 0);
    } else {
      sent = pq.PQsendQueryParams(c->conn, rq->sql, nvalues, NULL,
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
    link_close(c);
    return -1;
  }
  p->steps[p->nsteps++] = STEP_SYNC;
  return 0;
}

/* A NULL from PQgetResult: the current step is over. Returns -1 when that
 * cannot be (a NULL where the sync belongs: libpq lost track). */
static int pipe_step_over(pg_conn *c, pipe_run *p) {
  if (p->steps[p->at] == STEP_SYNC)
    return -1;
  p->at++;
  if (p->steps[p->at] == STEP_STATEMENT && p->single_row)
    pq.PQsetSingleRowMode(c->conn);
  return 0;
}

/* One result of the pipeline; takes res over. Sets p->over when the rows
 * reached the limit, so the caller cancels the rest. */
static void pipe_result(db *d, pg_conn *c, const db_request *rq, pipe_run *p,
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
        memcpy(p->slot->sql, rq->sql, p->len + 1);
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
      add_columns(out, res);
      p->have_columns = 1;
    }
    if (!p->done) {
      taken = take_rows(d, res, rq, &p->skipped, out, err);
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
      p->rc = pg_failure(c, res, rq, p->stop, err);
    }
  }
  pq.PQclear(res);
}

/* After the last result (or a broken link): leaves pipeline mode and says
 * how the read went. *fresh is set when the caller may run it once more:
 * the link failed before any result came back, or what failed was the
 * cache's own bookkeeping, not the client's statement. */
static int pipe_end(pg_conn *c, const db_request *rq, pipe_run *p, char **err,
                    int *fresh) {
  int rc = p->rc;

  *fresh = 0;
  if (p->stop == PG_BROKEN) {
    link_close(c);
    *fresh = p->results == 0;
    return rc != DB_OK ? rc : pg_failure(c, NULL, rq, PG_BROKEN, err);
  }
  if (!pq.PQexitPipelineMode(c->conn)) {
    link_close(c);
    return rc != DB_OK ? rc : pg_failure(c, NULL, rq, PG_BROKEN, err);
  }
  if (p->stale) {
    /* The cache and the server disagree: start the session over. */
    link_close(c);
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

/* The whole read in one round trip on a worker (see pipe_send), results
 * read in order. A failed step makes the server skip the rest up to the
 * sync (PGRES_PIPELINE_ABORTED), which can leave the transaction open in
 * error: end_read then rolls it back, or checkin drops the link, as on the
 * unpipelined path. */
static int pipelined_rows(db *d, pg_conn *c, const db_request *rq,
                          char **values, int nvalues, db_rows *out, char **err,
                          int *fresh) {
  long long cancel_at = 0;
  PGresult *res;
  pipe_run p;
  char buf[256];
  int rc;

  if (pipe_send(c, rq, values, nvalues, &p) != 0) {
    *fresh = 1;
    return pg_failure(c, NULL, rq, PG_BROKEN, err);
  }
  row_cap_start(d, c);
  while (p.at < p.nsteps) {
    res = next_result(d, c, rq, &p.stop, &cancel_at);
    if (res == NULL) {
      if (p.stop == PG_BROKEN)
        break;
      if (pipe_step_over(c, &p) != 0) {
        p.stop = PG_BROKEN;
        break;
      }
      continue;
    }
    pipe_result(d, c, rq, &p, res, out, err);
    if (p.over) {
      /* Stop the server producing rows nobody will read. */
      p.over = 0;
      if (c->cancel != NULL)
        pq.PQcancel(c->cancel, buf, sizeof(buf));
      if (cancel_at == 0)
        cancel_at = db_now_ms();
    }
  }
  rc = pipe_end(c, rq, &p, err, fresh);
  if (c->row_too_big)
    *fresh = 0; /* The client's statement ran: no second try. */
  row_cap_end(c);
  return rc;
}

/* Non-zero when the catalog snapshot is current and the statement names
 * nothing the plan check must see, so no command of ours has to run
 * between BEGIN and the statement. */
static int pipeline_ok(db *d, const sql_scan *scan) {
  pg_state *s = d->engine_state;
  int fresh;

  pthread_mutex_lock(&s->rel_lock);
  fresh =
      s->rels_loaded != 0 && db_now_ms() - s->rels_loaded < SENSITIVE_TTL_MS;
  pthread_mutex_unlock(&s->rel_lock);
  return fresh && !needs_plan_check(d, scan);
}

/* A read in one round trip (see pipelined_rows). A link that was dead
 * while idle in the pool is reconnected once, as begin_read does. */
static int pipelined_query(db *d, const db_request *rq, char **values,
                           int nvalues, db_rows *out, char **err) {
  pg_conn *c;
  int attempt, rc = DB_EINTERNAL, fresh;

  for (attempt = 0; attempt < 2; attempt++) {
    c = checkout(d, rq, err);
    if (c == NULL)
      return db_now_ms() >= rq->deadline ? DB_ETIMEOUT : DB_EINTERNAL;
    rc = pipelined_rows(d, c, rq, values, nvalues, out, err, &fresh);
    end_read(d, c);
    if (rc == DB_OK || !fresh)
      break;
  }
  return rc;
}

static int pg_query(db *d, const db_request *rq, db_rows *out, char **err) {
  char **values = NULL;
  int nvalues = 0, rc;
  sql_scan scan;
  pg_conn *c;

  rc = screen(d, rq, 0, &scan, err);
  if (rc != DB_OK)
    return rc;
  rc = param_texts(rq->params, &values, &nvalues, err);
  if (rc != DB_OK)
    goto cleanup;
  if (pipeline_ok(d, &scan)) {
    rc = screen_names(d, &scan, err);
    if (rc == DB_OK)
      rc = pipelined_query(d, rq, values, nvalues, out, err);
    goto cleanup;
  }
  c = begin_read(d, rq, err, &rc);
  if (c == NULL)
    goto cleanup;
  rc = screen_plan(d, c, rq, &scan, values, nvalues, err);
  if (rc == DB_OK)
    rc = stream_rows(d, c, rq, values, nvalues, out, err);
  end_read(d, c);

cleanup:
  free_texts(values, nvalues);
  sql_scan_free(&scan);
  return rc;
}

static int pg_explain(db *d, const db_request *rq, cJSON **plan, char **err) {
  char **values = NULL;
  int nvalues = 0, rc;
  sql_scan scan;
  pg_conn *c;

  *plan = NULL;
  rc = screen(d, rq, 0, &scan, err);
  if (rc != DB_OK)
    return rc;
  rc = param_texts(rq->params, &values, &nvalues, err);
  if (rc != DB_OK)
    goto cleanup;
  c = begin_read(d, rq, err, &rc);
  if (c == NULL)
    goto cleanup;
  rc = screen_plan(d, c, rq, &scan, values, nvalues, err);
  if (rc == DB_OK)
    rc = explain_json(d, c, rq, values, nvalues, 0, plan, err);
  end_read(d, c);

cleanup:
  free_texts(values, nvalues);
  sql_scan_free(&scan);
  return rc;
}

static int pg_execute(db *d, const db_request *rq, long long *affected,
                      char **err) {
  pg_state *s = d->engine_state;
  pg_conn *c = &s->writer;
  enum pg_stop stop = PG_RUNNING;
  long long cancel_at = 0;
  char **values = NULL;
  PGresult *res, *first = NULL;
  int nvalues = 0, rc;
  sql_scan scan;

  *affected = 0;
  rc = screen(d, rq, 1, &scan, err);
  if (rc != DB_OK)
    return rc;
  rc = param_texts(rq->params, &values, &nvalues, err);
  if (rc != DB_OK)
    goto cleanup;
  pthread_mutex_lock(&s->write_lock);
  rc = link_open(d, c, 1, err);
  if (rc == DB_OK)
    rc = begin(d, c, rq, 1, err);
  /* A write's plan is checked as a read's: its count of changed rows, or
   * a condition it fails, would tell what a whole-row reference read. */
  if (rc == DB_OK)
    rc = screen_plan(d, c, rq, &scan, values, nvalues, err);
  if (rc != DB_OK)
    goto unlock;
  if (!pq.PQsendQueryParams(c->conn, rq->sql, nvalues, NULL,
                            (const char *const *)values, NULL, NULL, 0)) {
    rc = pg_failure(c, NULL, rq, PG_BROKEN, err);
    goto unlock;
  }
  while ((res = next_result(d, c, rq, &stop, &cancel_at)) != NULL) {
    if (first == NULL)
      first = res;
    else
      pq.PQclear(res);
  }
  if (first == NULL || (pq.PQresultStatus(first) != PGRES_COMMAND_OK &&
                        pq.PQresultStatus(first) != PGRES_TUPLES_OK)) {
    rc = pg_failure(c, first, rq, stop, err);
    goto unlock;
  }
  *affected = strtoll(pq.PQcmdTuples(first), NULL, 10);
  if (*affected > d->max_affected) {
    db_errorf(err,
              "The statement would change %lld rows, more than the limit "
              "of %lld; nothing was changed",
              *affected, d->max_affected);
    rc = DB_EREFUSED;
    goto unlock;
  }
  pq.PQclear(first);
  first = pq.PQexec(c->conn, "COMMIT");
  if (pq.PQresultStatus(first) != PGRES_COMMAND_OK)
    rc = pg_failure(c, first, rq, PG_RUNNING, err);

unlock:
  pq.PQclear(first);
  rollback(c);
  if (c->conn != NULL && pq.PQstatus(c->conn) != CONNECTION_OK)
    link_close(c);
  pthread_mutex_unlock(&s->write_lock);
cleanup:
  free_texts(values, nvalues);
  sql_scan_free(&scan);
  return rc;
}

static int pg_list_tables(db *d, const db_request *rq, cJSON **tables,
                          char **err) {
  PGresult *res = NULL;
  pg_conn *c;
  cJSON *item;
  char name[300];
  int rc, i;

  *tables = NULL;
  c = begin_read(d, rq, err, &rc);
  if (c == NULL)
    return rc;
  /* reltuples is the planner's estimate; -1 before the first ANALYZE,
   * when an exact count stands in. */
  res = run_own(
      d, c, rq,
      "SELECT n.nspname, c.relname, CASE c.relkind WHEN 'v' THEN 'view' "
      "WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' "
      "ELSE 'table' END, CASE WHEN c.relkind IN ('v', 'f') THEN NULL WHEN "
      "c.reltuples >= 0 THEN c.reltuples::bigint END, "
      "obj_description(c.oid, 'pg_class') FROM pg_class c JOIN "
      "pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', "
      "'v', 'm', 'p', 'f') AND NOT c.relispartition AND n.nspname NOT IN "
      "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE "
      "'pg\\_%' AND has_table_privilege(c.oid, 'SELECT') ORDER BY "
      "n.nspname <> 'public', n.nspname, c.relname",
      0, NULL, err);
  if (res == NULL) {
    rc = DB_EINTERNAL;
    goto cleanup;
  }
  *tables = cJSON_CreateArray();
  for (i = 0; *tables != NULL && i < pq.PQntuples(res); i++) {
    const char *schema = pq.PQgetvalue(res, i, 0);
    const char *type = pq.PQgetvalue(res, i, 2);
    snprintf(name, sizeof(name), "%s%s%s",
             strcmp(schema, "public") == 0 ? "" : schema,
             strcmp(schema, "public") == 0 ? "" : ".",
             pq.PQgetvalue(res, i, 1));
    if (db_table_hidden(d, name))
      continue;
    item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "name", name);
    cJSON_AddStringToObject(item, "type", type);
    if (!pq.PQgetisnull(res, i, 3)) {
      cJSON_AddItemToObject(
          item, "row_estimate",
          db_json_int64(strtoll(pq.PQgetvalue(res, i, 3), NULL, 10)));
    } else if (strcmp(type, "table") == 0) {
      char *sql = NULL, *quoted_schema, *quoted_name;
      PGresult *count = NULL;
      quoted_schema = pq.PQescapeIdentifier(c->conn, schema, strlen(schema));
      quoted_name = pq.PQescapeIdentifier(c->conn, pq.PQgetvalue(res, i, 1),
                                          (size_t)pq.PQgetlength(res, i, 1));
      if (quoted_schema != NULL && quoted_name != NULL &&
          asprintf(&sql, "SELECT count(*) FROM %s.%s", quoted_schema,
                   quoted_name) >= 0)
        count = run_own(d, c, rq, sql, 0, NULL, err);
      if (count != NULL && pq.PQntuples(count) == 1)
        cJSON_AddItemToObject(
            item, "row_estimate",
            db_json_int64(strtoll(pq.PQgetvalue(count, 0, 0), NULL, 10)));
      else
        cJSON_AddNullToObject(item, "row_estimate");
      pq.PQclear(count);
      pq.PQfreemem(quoted_schema);
      pq.PQfreemem(quoted_name);
      free(sql);
      if (c->conn == NULL || pq.PQtransactionStatus(c->conn) != PQTRANS_INTRANS)
        break; /* The count failed (timeout); the transaction is gone. */
    } else {
      cJSON_AddNullToObject(item, "row_estimate");
    }
    if (pq.PQgetisnull(res, i, 4))
      cJSON_AddNullToObject(item, "comment");
    else
      cJSON_AddStringToObject(item, "comment", pq.PQgetvalue(res, i, 4));
    cJSON_AddItemToArray(*tables, item);
  }
  rc = *tables != NULL ? DB_OK : DB_EINTERNAL;
  if (c->conn == NULL || pq.PQtransactionStatus(c->conn) != PQTRANS_INTRANS) {
    rc = db_now_ms() >= rq->deadline ? DB_ETIMEOUT : DB_EINTERNAL;
    if (err != NULL && *err == NULL)
      db_errorf(err, "Listing tables failed");
  }

cleanup:
  pq.PQclear(res);
  end_read(d, c);
  if (rc != DB_OK) {
    cJSON_Delete(*tables);
    *tables = NULL;
  }
  return rc;
}

/* One query builds the whole description as JSON on the server. */
static const char describe_sql[] =
    "SELECT json_build_object("
    "'name', c.relname, 'schema', n.nspname, "
    "'type', CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN "
    "'materialized view' WHEN 'f' THEN 'foreign table' ELSE 'table' END, "
    "'comment', obj_description(c.oid, 'pg_class'), "
    "'columns', (SELECT coalesce(json_agg(json_build_object("
    "'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), "
    "'nullable', NOT a.attnotnull, "
    "'default', pg_get_expr(ad.adbin, ad.adrelid), "
    "'comment', col_description(a.attrelid, a.attnum)) ORDER BY a.attnum), "
    "'[]') FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = "
    "a.attrelid AND ad.adnum = a.attnum WHERE a.attrelid = c.oid AND "
    "a.attnum > 0 AND NOT a.attisdropped), "
    "'primary_key', (SELECT coalesce(json_agg(a.attname ORDER BY k.ord), "
    "'[]') FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) "
    "WITH ORDINALITY AS k(num, ord) JOIN pg_attribute a ON a.attrelid = "
    "i.indrelid AND a.attnum = k.num WHERE i.indrelid = c.oid AND "
    "i.indisprimary), "
    "'foreign_keys', (SELECT coalesce(json_agg(json_build_object("
    "'name', con.conname, "
    "'columns', (SELECT json_agg(a.attname ORDER BY k.ord) FROM "
    "unnest(con.conkey) WITH ORDINALITY AS k(num, ord) JOIN pg_attribute a "
    "ON a.attrelid = con.conrelid AND a.attnum = k.num), "
    "'references', json_build_object('table', CASE WHEN fn.nspname = "
    "'public' THEN fc.relname ELSE fn.nspname || '.' || fc.relname END, "
    "'columns', (SELECT json_agg(a.attname ORDER BY k.ord) FROM "
    "unnest(con.confkey) WITH ORDINALITY AS k(num, ord) JOIN pg_attribute "
    "a ON a.attrelid = con.confrelid AND a.attnum = k.num)), "
    "'on_update', CASE con.confupdtype WHEN 'r' THEN 'RESTRICT' WHEN 'c' "
    "THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' "
    "ELSE 'NO ACTION' END, "
    "'on_delete', CASE con.confdeltype WHEN 'r' THEN 'RESTRICT' WHEN 'c' "
    "THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' "
    "ELSE 'NO ACTION' END) ORDER BY con.conname), '[]') "
    "FROM pg_constraint con JOIN pg_class fc ON fc.oid = con.confrelid "
    "JOIN pg_namespace fn ON fn.oid = fc.relnamespace WHERE con.conrelid = "
    "c.oid AND con.contype = 'f'), "
    "'indexes', (SELECT coalesce(json_agg(json_build_object("
    "'name', ic.relname, 'unique', i.indisunique, 'primary_key', "
    "i.indisprimary, 'columns', (SELECT json_agg(coalesce(a.attname, "
    "'<expression>') ORDER BY k.ord) FROM unnest(i.indkey::int2[]) WITH "
    "ORDINALITY AS k(num, ord) LEFT JOIN pg_attribute a ON a.attrelid = "
    "i.indrelid AND a.attnum = k.num), "
    "'definition', pg_get_indexdef(i.indexrelid)) ORDER BY ic.relname), "
    "'[]') FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE "
    "i.indrelid = c.oid))::text "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND n.nspname NOT IN "
    "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' "
    "AND has_table_privilege(c.oid, 'SELECT') "
    "AND (c.relname = $1 OR c.relname = lower($1)) AND ($2::text IS NULL "
    "OR n.nspname = $2) ORDER BY c.relname = $1 DESC, n.nspname = "
    "'public' DESC, n.nspname LIMIT 1";

/* Drops array items naming masked columns of `table` (a list of names) or
 * returns 1 if any name in `names` is masked (for keys and indexes). */
static int names_masked(db *d, const char *table, const cJSON *names) {
  const cJSON *n;

  cJSON_ArrayForEach(n, names) {
    if (cJSON_IsString(n) && db_column_masked(d, table, n->valuestring))
      return 1;
  }
  return 0;
}

/* Removes what the operator hid from a description built on the server. */
static void redact(db *d, cJSON *desc) {
  const char *table = cJSON_GetStringValue(cJSON_GetObjectItem(desc, "name"));
  cJSON *list, *item, *next;

  list = cJSON_GetObjectItem(desc, "columns");
  for (item = list != NULL ? list->child : NULL; item != NULL; item = next) {
    next = item->next;
    if (db_column_masked(
            d, table, cJSON_GetStringValue(cJSON_GetObjectItem(item, "name"))))
      cJSON_Delete(cJSON_DetachItemViaPointer(list, item));
  }
  list = cJSON_GetObjectItem(desc, "primary_key");
  for (item = list != NULL ? list->child : NULL; item != NULL; item = next) {
    next = item->next;
    if (cJSON_IsString(item) && db_column_masked(d, table, item->valuestring))
      cJSON_Delete(cJSON_DetachItemViaPointer(list, item));
  }
  list = cJSON_GetObjectItem(desc, "foreign_keys");
  for (item = list != NULL ? list->child : NULL; item != NULL; item = next) {
    cJSON *ref = cJSON_GetObjectItem(item, "references");
    const char *target =
        cJSON_GetStringValue(cJSON_GetObjectItem(ref, "table"));
    next = item->next;
    if (names_masked(d, table, cJSON_GetObjectItem(item, "columns")) ||
        target == NULL || db_table_hidden(d, target) ||
        names_masked(d, target, cJSON_GetObjectItem(ref, "columns")))
      cJSON_Delete(cJSON_DetachItemViaPointer(list, item));
  }
  list = cJSON_GetObjectItem(desc, "indexes");
  for (item = list != NULL ? list->child : NULL; item != NULL; item = next) {
    next = item->next;
    if (names_masked(d, table, cJSON_GetObjectItem(item, "columns")))
      cJSON_Delete(cJSON_DetachItemViaPointer(list, item));
  }
}

static int pg_describe(db *d, const db_request *rq, const char *table,
                       cJSON **desc, char **err) {
  const char *dot = strchr(table, '.');
  const char *values[2];
  char *schema = NULL;
  PGresult *res = NULL;
  pg_conn *c;
  int rc;

  *desc = NULL;
  if (db_table_hidden(d, table))
    return DB_ENOTFOUND;
  if (dot != NULL) {
    schema = strndup(table, (size_t)(dot - table));
    if (schema == NULL)
      return DB_EINTERNAL;
  }
  values[0] = dot != NULL ? dot + 1 : table;
  values[1] = schema;
  c = begin_read(d, rq, err, &rc);
  if (c == NULL)
    goto cleanup;
  res = run_own(d, c, rq, describe_sql, 2, values, err);
  if (res == NULL)
    rc = DB_EINTERNAL;
  else if (pq.PQntuples(res) == 0)
    rc = DB_ENOTFOUND;
  else if ((*desc = cJSON_Parse(pq.PQgetvalue(res, 0, 0))) == NULL)
    rc = DB_EINTERNAL;
  else
    rc = DB_OK;
  pq.PQclear(res);
  end_read(d, c);
  if (rc == DB_OK) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(*desc, "name"));
    if (name == NULL || db_table_hidden(d, name)) {
      cJSON_Delete(*desc);
      *desc = NULL;
      rc = DB_ENOTFOUND;
    } else {
      redact(d, *desc);
    }
  }

cleanup:
  free(schema);
  return rc;
}

static int pg_ping(db *d, char **err) {
  db_request rq = {0};
  PGresult *res;
  pg_conn *c;
  int rc;

  rq.timeout_ms = 2000;
  rq.deadline = db_now_ms() + rq.timeout_ms;
  c = begin_read(d, &rq, err, &rc);
  if (c == NULL)
    return rc;
  res = run_own(d, c, &rq, "SELECT 1", 0, NULL, err);
  rc = res != NULL ? DB_OK : DB_EINTERNAL;
  pq.PQclear(res);
  end_read(d, c);
  /* A pooled link that was already open reports nothing on checkout, so
   * after one broken link marked the instance down, a good round trip is
   * what marks it up again. */
  if (rc == DB_OK)
    note_state(d, 1, NULL);
  return rc;
}

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
 * flight (end_read), if it has arrived, without waiting. Returns 0 when
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
      link_close(c); /* As finish_rollback does: no one inherits it. */
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
    checkin(d, c);
  }
}

static void async_finish(pg_async *a);
static void async_next(db *d);
static int hand_over(db *d, pg_conn *c);

static void async_watch(pg_async *a, int write) {
  a->watch_write = write;
  a->d->api->watch_fd(a->d->self, a->fd,
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
      if (pipe_step_over(c, &a->p) != 0)
        a->p.stop = PG_BROKEN;
      continue;
    }
    pipe_result(a->d, c, a->rq, &a->p, res, a->out, &a->err);
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
    d->api->watch_fd(d->self, fd, 0, NULL, NULL);
  if (cancel != NULL)
    pq.PQfreeCancel(cancel);
  rc = pipe_end(c, a->rq, &a->p, &a->err, &fresh);
  if (keep && (c->conn == NULL || pq.PQstatus(c->conn) != CONNECTION_OK ||
               pq.PQtransactionStatus(c->conn) != PQTRANS_IDLE)) {
    d->api->watch_fd(d->self, fd, 0, NULL, NULL);
    keep = 0;
  }
  if (!keep) {
    if (c->conn != NULL)
      pq.PQsetnonblocking(c->conn, 0);
    end_read(d, c);
  }
  free_texts(a->values, a->nvalues);
  if (rc != DB_OK && (fresh || a->too_big) && db_now_ms() < a->rq->deadline) {
    /* Nothing of the client's ran (or a kept statement went stale, or the
     * result was too big to read whole): the worker path runs it again,
     * reconnecting if need be. */
    free(a->err);
    a->err = NULL;
    rc = DB_EAGAIN;
  }
  a->done(a->ctx, rc, a->err);
  free(a);
  s->loop_reads--;
  if (keep && hand_over(d, c) < 0) {
    d->api->watch_fd(d->self, fd, 0, NULL, NULL);
    pq.PQsetnonblocking(c->conn, 0);
    checkin(d, c);
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
      pipe_send(c, a->rq, a->values, a->nvalues, &a->p) != 0) {
    if (watched)
      d->api->watch_fd(d->self, fd, 0, NULL, NULL);
    if (a->cancel != NULL)
      pq.PQfreeCancel(a->cancel);
    a->cancel = NULL;
    a->fd = -1;
    if (c->conn != NULL)
      pq.PQsetnonblocking(c->conn, 0);
    checkin(d, c);
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
  free_texts(a->values, a->nvalues);
  a->done(a->ctx, rc, err);
  free(a);
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
  if (a->rq->call != NULL && d->api->cancelled(a->rq->call))
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
 * (watch_async). */
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
static int pg_query_start(db *d, const db_request *rq, db_rows *out,
                          db_query_done done, void *ctx, char **err) {
  pg_state *s = d->engine_state;
  pg_async *a;
  sql_scan scan;
  int rc, ok;

  rc = screen(d, rq, 0, &scan, err);
  if (rc != DB_OK)
    return rc;
  ok = pipeline_ok(d, &scan);
  if (ok)
    rc = screen_names(d, &scan, err);
  sql_scan_free(&scan);
  if (rc != DB_OK)
    return rc;
  if (!ok)
    return DB_EAGAIN;
  a = calloc(1, sizeof(*a));
  if (a == NULL)
    return DB_EAGAIN;
  if (param_texts(rq->params, &a->values, &a->nvalues, err) != DB_OK) {
    free(a);
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
  free_texts(a->values, a->nvalues);
  free(a);
  return DB_EAGAIN;
}

/* The watcher: cancels what the loop cannot (PQcancel blocks), and cuts a
 * link whose server stopped answering after the cancel. A link with a
 * cancel on its way is not lent out until it has arrived, so the cancel
 * cannot hit the next borrower's statement. */
static void watch_async(db *d) {
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
      if (a->rq->call != NULL && d->api->cancelled(a->rq->call))
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
        (a->rq->call == NULL || !d->api->cancelled(a->rq->call))) {
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

const db_engine db_postgres_engine = {
    .name = "PostgreSQL",
    .open = pg_open,
    .close = pg_close,
    .query = pg_query,
    .query_start = pg_query_start,
    .explain = pg_explain,
    .execute = pg_execute,
    .list_tables = pg_list_tables,
    .describe = pg_describe,
    .ping = pg_ping,
};
