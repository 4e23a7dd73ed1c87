/* engine_pg.h: internals shared by the PostgreSQL engine's files. Not
 * installed; database.c sees the engine only as db_postgres_engine (db.h).
 *
 *   engine_pg.c     the engine's functions, its state's lifetime and the
 *                   watcher thread that keeps readiness current
 *   pg_conn.c       libpq loaded on first use; the pool of links, borrowing
 *                   and returning one, waiting for a result with deadline
 *                   and cancellation, transactions, errors as messages
 *   pg_values.c     parameters as text, result columns and values as JSON
 *   pg_plan.c       the lexer's checks, the catalog snapshot and the plan
 *                   check (EXPLAIN VERBOSE) for masked and hidden relations
 *   pg_pipeline.c   prepared statements kept per link, and a read in one
 *                   pipelined round trip
 *   pg_read.c       reads driven from the host's loop (watch_fd) and the
 *                   watcher's part in them
 *   pg_bound.c      the row limit, which the server measures before it
 *                   sends a row
 *
 * Threads: everything here runs on a worker thread, blocking, except
 * pg_read.c's loop side; pg_state's fields say which lock guards them. */
#ifndef PH_DATABASE_ENGINE_PG_H
#define PH_DATABASE_ENGINE_PG_H

#include "db.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>

#define POLL_SLICE_MS 50       /* How often a wait looks at cancels. */
#define CANCEL_GRACE_MS 500    /* After the deadline, before our PQcancel. */
#define ABANDON_AFTER_MS 5000  /* After PQcancel, before dropping the link. */
#define SENSITIVE_TTL_MS 10000 /* How long a catalog snapshot is trusted. */

/* Statements a reader connection keeps prepared, by SQL text. */
#define STMT_CACHE 32

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

/* Every libpq function the engine calls, always as pq.PQfoo(): a direct
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
 * does not evaluate its operand, so it references no symbol). */
#define PQ_POINTER(name) __typeof__(name) *name;
struct pq_functions {
  PQ_FUNCTIONS(PQ_POINTER)
};
#undef PQ_POINTER
extern struct pq_functions pq; /* Defined in pg_conn.c. */

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
  int over;         /* The rows reached the limit: cancel the rest. */
  int single_row;   /* Rows come one PGresult each (else all in one). */
  int bound_failed; /* The server refused a row past the row limit. */
  const char *sql;  /* The text run (borrowed): the client's, bounded. */
  size_t len;
  unsigned hash;
  pg_stmt *t;    /* The kept statement run, or NULL (unnamed). */
  pg_stmt *slot; /* Non-NULL when t is prepared by this pipeline. */
} pipe_run;

/* ---- pg_conn.c ---- */

/* Loads libpq on the first call from any thread; later calls only report
 * the outcome. */
int pg_libpq_ready(char **err);

/* Closes c's connection (if any) and forgets its prepared statements. */
void pg_link_close(pg_conn *c);

/* Records whether the server is reachable; logs and reports readiness on
 * a change only. */
void pg_note_state(db *d, int connected, const char *why);

/* Connects c if it has no live connection (writable: the writer, whose
 * transactions are not read-only by default). */
int pg_link_open(db *d, pg_conn *c, int writable, char **err);

/* Borrows a connection (connecting it if needed) until rq's deadline;
 * NULL with *err when none came. pg_checkin gives it back. */
pg_conn *pg_checkout(db *d, const db_request *rq, char **err);
void pg_checkin(db *d, pg_conn *c);

/* The next result of the command in flight on c, or NULL at its end or
 * when the link broke (*stop says so); the caller owns the result. */
PGresult *pg_next_result(db *d, pg_conn *c, const db_request *rq,
                         enum pg_stop *stop, long long *cancel_at);

/* Reads and drops every remaining result of the command in flight. */
void pg_drain(db *d, pg_conn *c, const db_request *rq, enum pg_stop *stop,
              long long *cancel_at);

/* Maps a failed result (res may be NULL) to a code and a message. */
int pg_failure(pg_conn *c, const PGresult *res, const db_request *rq,
               enum pg_stop stop, char **err);

/* Runs one of the plugin's own commands; the result (the caller's to
 * clear) or NULL with *err. */
PGresult *pg_run_own(db *d, pg_conn *c, const db_request *rq, const char *sql,
                     int nparams, const char *const *values, char **err);

/* BEGIN (READ ONLY unless write) with rq's statement timeout. */
int pg_begin(db *d, pg_conn *c, const db_request *rq, int write, char **err);

/* Rolls back c's open transaction, waiting for the answer. */
void pg_rollback(pg_conn *c);

/* Ends a reader's transaction (ROLLBACK sent, its result read by the next
 * borrower) and gives the connection back. */
void pg_end_read(db *d, pg_conn *c);

/* Borrows a connection with a read-only transaction open on it; NULL with
 * *rc and *err when none could be had. */
pg_conn *pg_begin_read(db *d, const db_request *rq, char **err, int *rc);

/* Count the bytes of each row of a client's statement against the row
 * limit (pg_next_result) from pg_row_cap_start to pg_row_cap_end. */
void pg_row_cap_start(db *d, pg_conn *c);
void pg_row_cap_end(pg_conn *c);

/* ---- pg_values.c ---- */

/* The client's parameters as text (NULL for null) in *values, *n of them,
 * malloc'd; free with pg_free_texts, also after a failure. */
int pg_param_texts(const cJSON *params, char ***values, int *n, char **err);
void pg_free_texts(char **values, int n);

/* Adds res's columns ({name, type}) to out->columns. */
void pg_add_columns(db_rows *out, const PGresult *res);

/* Adds the rows of res to out past the offset (*skipped counts the rows
 * skipped so far). Returns 0 to read on, 1 when no more rows are wanted,
 * -1 when out of memory (*err set). */
int pg_take_rows(db *d, const PGresult *res, const db_request *rq,
                 long *skipped, db_rows *out, char **err);

/* ---- pg_plan.c ---- */

/* Free a relation list and what load_extras loaded beside it. */
void pg_free_rels(pg_rel *rels, int n);
void pg_free_extras(pg_state *s);

/* The lexer's checks, before a connection is borrowed. On DB_OK the
 * caller owns *scan (sql_scan_free). */
int pg_screen(db *d, const db_request *rq, int write, sql_scan *scan,
              char **err);

/* The catalog snapshot's part of the lexer's checks (a snapshot must be
 * loaded). */
int pg_screen_names(db *d, const sql_scan *scan, char **err);

/* The catalog snapshot (loaded if stale) and, when the statement names a
 * sensitive relation, the plan check, on the borrowed connection c. */
int pg_screen_plan(db *d, pg_conn *c, const db_request *rq,
                   const sql_scan *scan, char **values, int nvalues,
                   char **err);

/* Non-zero when a statement names a relation the plan check must see. */
int pg_needs_plan_check(db *d, const sql_scan *scan);

/* EXPLAIN (FORMAT JSON, VERBOSE if verbose) of the client's statement in
 * c's open transaction; *plan is the caller's. */
int pg_explain_json(db *d, pg_conn *c, const db_request *rq, char **values,
                    int nvalues, int verbose, cJSON **plan, char **err);

/* ---- pg_pipeline.c ---- */

/* Sends rq as one pipeline on c (see pg_pipeline.c); 0, or -1 when the
 * link failed (closed; nothing ran). */
int pg_pipe_send(pg_conn *c, const db_request *rq, const char *sql,
                 char **values, int nvalues, pipe_run *p);

/* A NULL from PQgetResult: the current step is over; -1 when it cannot
 * be. */
int pg_pipe_step_over(pg_conn *c, pipe_run *p);

/* One result of the pipeline, taken over; sets p->over when the rows
 * reached the limit. */
void pg_pipe_result(db *d, pg_conn *c, const db_request *rq, pipe_run *p,
                    PGresult *res, db_rows *out, char **err);

/* Leaves pipeline mode after the last result and says how the read went;
 * *fresh: the caller may run it once more. */
int pg_pipe_end(pg_conn *c, const db_request *rq, pipe_run *p, char **err,
                int *fresh);

/* Non-zero when the statement can run as one pipeline (no plan check). */
int pg_pipeline_ok(db *d, const sql_scan *scan);

/* A read in one round trip on a worker, borrowing its own connection. */
int pg_pipelined_query(db *d, const db_request *rq, const char *sql,
                       char **values, int nvalues, db_rows *out, char **err);

/* ---- pg_bound.c ---- */

/* The client's statement sql (lexed into scan) wrapped so that the server
 * refuses a row past the row limit before it sends it, in *bounded
 * (malloc'd; the caller frees it), or NULL when the statement needs no
 * wrapper (SHOW). DB_OK, or a refusal with *err. */
int pg_bound_sql(db *d, const char *sql, const sql_scan *scan, char **bounded,
                 char **err);

/* The size of the row the wrapper refused when res is that refusal, else
 * 0. */
long long pg_bound_failed(const PGresult *res);

/* Refuses a write with RETURNING, whose rows no wrapper can bound. */
int pg_bound_write(const sql_scan *scan, char **err);

/* ---- pg_read.c ---- */

/* db_engine.query_start: a read started on the loop thread. */
int pg_query_start(db *d, const db_request *rq, db_rows *out,
                   db_query_done done, void *ctx, char **err);

/* The watcher thread's turn: cancels and cuts what the loop cannot, and
 * answers waiting reads whose deadline passed. */
void pg_watch_async(db *d);

#endif
