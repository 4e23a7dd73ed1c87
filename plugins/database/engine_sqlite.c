/* engine_sqlite.c: the SQLite engine. A pool of read-only connections
 * serves queries; one read-write connection, opened only when writes are
 * enabled, serves execute. Safety layers, from the outside in: the lexer's
 * checks (sql_scan.c), a read-only connection, exactly one statement (the
 * tail must be empty), sqlite3_stmt_readonly(), an authorizer that denies
 * ATTACH, writes, state-changing PRAGMAs, hidden tables, masked columns,
 * the catalog while tables are hidden and dangerous functions, a check of
 * the compiled program for what the authorizer cannot see (sqlite_plan.c),
 * limits on the size of values and rows, a progress handler enforcing the
 * deadline, the client's cancellation and a memory budget, linear versions
 * of the quadratic built-in functions (sqlite_funcs.c), and defensive
 * connection settings. */
#include "db.h"
#include "sqlite_guard.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* What the authorizer lets through on a connection right now. */
enum sq_mode {
  SQ_QUERY = 0, /* A client's read-only statement. */
  SQ_CATALOG,   /* The plugin's own introspection and BEGIN/COMMIT. */
  SQ_WRITE      /* A client's INSERT/UPDATE/DELETE through execute. */
};

/* Why the progress or busy handler stopped a statement. */
enum sq_stop { SQ_RUNNING = 0, SQ_TIMEOUT, SQ_CANCELLED, SQ_MEMORY };

/* VM instructions between two calls of the progress handler. Each call
 * reads the clock and SQLite's memory counter, a few tens of nanoseconds;
 * fewer instructions between them bound better how far one statement can
 * run past its deadline or its memory budget. */
#define PROGRESS_STEPS 100

/* Longest single wait for a lock in the busy handler. */
#define BUSY_SLICE_MS 10

typedef struct sq_conn {
  sqlite3 *handle;
  db *d;
  int busy;          /* Checked out of the pool. */
  enum sq_mode mode; /* Read by the authorizer. */
  char denied[512];  /* The authorizer's reason for the last denial. */
  long long deadline;
  ph_call *call;
  enum sq_stop stop;
  long long mem_start; /* SQLite's heap when the statement started. */
  sq_map *map;         /* What the file's b-trees hold (sqlite_plan.c). */
} sq_conn;

typedef struct sq_state {
  pthread_mutex_t lock;
  pthread_cond_t freed;
  sq_conn *readers;
  int nreaders;
  pthread_mutex_t write_lock; /* Serialises execute on the writer. */
  sq_conn *writer;            /* Opened on first execute. */
  atomic_int unusable;        /* The file failed to open or read. */
} sq_state;

/* Pragmas a client may read. Those taking a table name are checked against
 * the hidden tables; every other one must come without an argument, since
 * an argument sets something. */
static const char *const table_pragmas[] = {
    "table_info",  "table_xinfo",      "index_list", "index_info",
    "index_xinfo", "foreign_key_list", NULL};
static const char *const read_pragmas[] = {"table_list",
                                           "collation_list",
                                           "function_list",
                                           "module_list",
                                           "pragma_list",
                                           "compile_options",
                                           "user_version",
                                           "application_id",
                                           "schema_version",
                                           "encoding",
                                           "page_count",
                                           "page_size",
                                           "freelist_count",
                                           "data_version",
                                           "quick_check",
                                           "integrity_check",
                                           "foreign_key_check",
                                           "foreign_keys",
                                           NULL};

static int in_list(const char *word, const char *const *list) {
  int i;

  for (i = 0; word != NULL && list[i] != NULL; i++)
    if (strcasecmp(word, list[i]) == 0)
      return 1;
  return 0;
}

static int is_catalog_table(const char *table) {
  return strcasecmp(table, "sqlite_master") == 0 ||
         strcasecmp(table, "sqlite_schema") == 0 ||
         strcasecmp(table, "sqlite_temp_master") == 0 ||
         strcasecmp(table, "sqlite_temp_schema") == 0 ||
         strcasecmp(table, "sqlite_sequence") == 0 ||
         strncasecmp(table, "sqlite_stat", 11) == 0;
}

/* Pragmas that list tables, describe one, or report on their rows and
 * pages, which while tables are hidden would tell of them. */
static const char *const catalog_pragmas[] = {
    "table_list",  "foreign_key_check", "integrity_check",
    "quick_check", "page_count",        "freelist_count",
    NULL};

/* Eponymous virtual tables that read every page or statement. */
static int is_denied_module(const char *name) {
  return strcasecmp(name, "dbstat") == 0 ||
         strcasecmp(name, "sqlite_dbpage") == 0 ||
         strcasecmp(name, "sqlite_stmt") == 0;
}

/* The value limit of a connection: max_result_bytes, but never below
 * 1 MiB, which SQLite's own reads of the schema need. */
static int value_limit(const db *d) {
  return d->max_bytes > (1u << 20) ? (int)d->max_bytes : 1 << 20;
}

/* What the values one statement holds at once may add up to. */
static long long statement_budget(const db *d) {
  return 64LL * value_limit(d);
}

static int deny(sq_conn *c, const char *fmt, const char *a, const char *b) {
  snprintf(c->denied, sizeof(c->denied), fmt, a ? a : "", b ? b : "");
  return SQLITE_DENY;
}

static int authorize(void *arg, int action, const char *a1, const char *a2,
                     const char *dbname, const char *inner) {
  sq_conn *c = arg;
  db *d = c->d;

  (void)dbname;
  (void)inner;
  switch (action) {
  case SQLITE_SELECT:
  case SQLITE_RECURSIVE:
    return SQLITE_OK;
  case SQLITE_READ:
    /* Reads through views and triggers arrive here too, with the
     * underlying table, so a view cannot launder a hidden column. Reads
     * the authorizer never sees (columns merged by USING or NATURAL) are
     * the plan check's (sqlite_plan.c). */
    if (c->mode == SQ_QUERY && strncasecmp(a1, "sqlite_stat", 11) == 0)
      return deny(c,
                  "%s cannot be read: statistics hold values of every "
                  "column, hidden and masked ones too%s",
                  a1, NULL);
    if (c->mode == SQ_QUERY && d->nhidden > 0 && is_catalog_table(a1))
      return deny(c,
                  "The catalog (%s) cannot be read while tables are hidden; "
                  "use list_tables and describe_table%s",
                  a1, NULL);
    if (is_catalog_table(a1))
      return SQLITE_OK;
    if (c->mode != SQ_CATALOG && is_denied_module(a1))
      return deny(c, "%s is not allowed%s", a1, NULL);
    /* Table-valued pragmas hide their argument from the authorizer, so a
     * client could describe a hidden table through them. */
    if (c->mode != SQ_CATALOG && strncasecmp(a1, "pragma_", 7) == 0)
      return deny(c,
                  "%s() is not allowed; use describe_table or PRAGMA "
                  "%s",
                  a1, a1 + 7);
    if (db_table_hidden(d, a1))
      return deny(c, "Table '%s' is not accessible%s", a1, NULL);
    if (a2 != NULL && a2[0] != '\0' && db_column_masked(d, a1, a2))
      return deny(c,
                  "Column '%s.%s' is masked by the operator and cannot be "
                  "read; select the other columns by name",
                  a1, a2);
    return SQLITE_OK;
  case SQLITE_FUNCTION:
    if (sql_function_denied(DB_SQLITE, a2))
      return deny(c, "Function '%s' is not allowed%s", a2, NULL);
    return SQLITE_OK;
  case SQLITE_PRAGMA:
    if (strcasecmp(a1, "writable_schema") == 0)
      return deny(c, "PRAGMA %s is not allowed%s", a1, NULL);
    if (c->mode != SQ_CATALOG && d->nhidden > 0 &&
        (in_list(a1, table_pragmas) || in_list(a1, catalog_pragmas)))
      return deny(c,
                  "PRAGMA %s is not allowed while tables are hidden; use "
                  "list_tables and describe_table%s",
                  a1, NULL);
    if (in_list(a1, table_pragmas)) {
      if (a2 != NULL && db_table_hidden(d, a2))
        return deny(c, "Table '%s' is not accessible%s", a2, NULL);
      return SQLITE_OK;
    }
    if (c->mode != SQ_CATALOG && (!in_list(a1, read_pragmas) || a2 != NULL))
      return deny(c,
                  "PRAGMA %s is not allowed: it is not a read-only "
                  "pragma%s",
                  a1, NULL);
    return SQLITE_OK;
  case SQLITE_TRANSACTION:
  case SQLITE_SAVEPOINT:
    if (c->mode == SQ_CATALOG)
      return SQLITE_OK;
    return deny(c, "Transaction control is not allowed%s%s", NULL, NULL);
  case SQLITE_INSERT:
  case SQLITE_UPDATE:
  case SQLITE_DELETE:
    /* Connecting the eponymous pragma tables reports updates of the
     * schema table; nothing is written on a read-only connection. */
    if (c->mode == SQ_CATALOG && is_catalog_table(a1))
      return SQLITE_OK;
    if (c->mode != SQ_WRITE)
      return deny(c, "Writes are not allowed here (%s%s)", a1, NULL);
    if (is_catalog_table(a1) || db_table_hidden(d, a1))
      return deny(c, "Table '%s' is not accessible%s", a1, NULL);
    if (action == SQLITE_UPDATE && a2 != NULL && db_column_masked(d, a1, a2))
      return deny(c, "Column '%s.%s' is masked by the operator", a1, a2);
    return SQLITE_OK;
  case SQLITE_ATTACH:
  case SQLITE_DETACH:
    return deny(c, "ATTACH and DETACH are not allowed%s%s", NULL, NULL);
  default:
    /* CREATE, DROP, ALTER, REINDEX, ANALYZE, virtual tables. */
    return deny(c, "Schema changes are not allowed%s%s", NULL, NULL);
  }
}

static int progress(void *arg) {
  sq_conn *c = arg;
  const ph_host_api *api = db_api(c->d);

  if (c->deadline > 0 && db_now_ms() > c->deadline) {
    c->stop = SQ_TIMEOUT;
    return 1;
  }
  if (c->call != NULL && api->cancelled(c->call)) {
    c->stop = SQ_CANCELLED;
    sqlite3_interrupt(c->handle);
    return 1;
  }
  /* What a statement accumulates across rows (a group_concat, a JSON
   * aggregate, sorters and temporary tables) against the budget. SQLite
   * counts its heap for the whole process, so concurrent statements
   * count too: the budget is far above what a real statement needs. */
  if (c->mem_start > 0 &&
      sqlite3_memory_used() - c->mem_start > statement_budget(c->d)) {
    c->stop = SQ_MEMORY;
    return 1;
  }
  return 0;
}

/* Waits for a lock no longer than the request's deadline (SQLite's busy
 * timeout would wait its fixed time past it). */
static int busy_wait(void *arg, int tries) {
  sq_conn *c = arg;
  long long left = c->deadline > 0 ? c->deadline - db_now_ms()
                                   : 2000 - (long long)tries * BUSY_SLICE_MS;

  if (left <= 0) {
    c->stop = c->deadline > 0 ? SQ_TIMEOUT : SQ_RUNNING;
    return 0;
  }
  if (c->call != NULL && db_api(c->d)->cancelled(c->call)) {
    c->stop = SQ_CANCELLED;
    return 0;
  }
  usleep((useconds_t)(left < BUSY_SLICE_MS ? left : BUSY_SLICE_MS) * 1000);
  return 1;
}

static void conn_close(sq_conn *c) {
  if (c->handle != NULL)
    sqlite3_close_v2(c->handle);
  c->handle = NULL;
  sq_map_free(c->map);
  c->map = NULL;
}

static int conn_open(db *d, sq_conn *c, int writable, char **err) {
  int flags = SQLITE_OPEN_NOMUTEX |
              (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY);

  c->d = d;
  if (sqlite3_open_v2(d->path, &c->handle, flags, NULL) != SQLITE_OK) {
    db_errorf(err, "cannot open %s: %s", d->path,
              c->handle != NULL ? sqlite3_errmsg(c->handle) : "no memory");
    conn_close(c);
    return DB_EINTERNAL;
  }
  /* Defensive mode keeps even a writable connection from corrupting the
   * file through writable_schema and friends; no extensions; schema
   * functions may not run from views or triggers. */
  sqlite3_db_config(c->handle, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
  sqlite3_db_config(c->handle, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
  sqlite3_db_config(c->handle, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
  sqlite3_limit(c->handle, SQLITE_LIMIT_ATTACHED, 0);
  /* Every string, blob and record: the values a function builds
   * (randomblob, zeroblob, hex, printf, replace, group_concat, ||) and the
   * rows of sorters and temporary tables. prepare_checked lowers it for a
   * statement with many registers. */
  sqlite3_limit(c->handle, SQLITE_LIMIT_LENGTH, value_limit(d));
  sqlite3_busy_handler(c->handle, busy_wait, c);
  sqlite3_set_authorizer(c->handle, authorize, c);
  sqlite3_progress_handler(c->handle, PROGRESS_STEPS, progress, c);
  if (sq_funcs_register(c->handle) != SQLITE_OK) {
    db_errorf(err, "cannot set up %s: %s", d->path, sqlite3_errmsg(c->handle));
    conn_close(c);
    return DB_EINTERNAL;
  }
  return DB_OK;
}

/* Creates the database from the seed into a temporary file, then links it
 * into place, so two hosts starting at once never see half a database. */
static int create_from_seed(db *d, char **err) {
  char *tmp = NULL, *sql = NULL, *msg = NULL;
  sqlite3 *handle = NULL;
  FILE *f = NULL;
  long size;
  int rc = DB_EINTERNAL;

  f = fopen(d->seed, "rb");
  if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
      fseek(f, 0, SEEK_SET) != 0) {
    db_errorf(err, "cannot read seed %s: %s", d->seed, strerror(errno));
    goto cleanup;
  }
  sql = malloc((size_t)size + 1);
  if (sql == NULL || fread(sql, 1, (size_t)size, f) != (size_t)size) {
    db_errorf(err, "cannot read seed %s", d->seed);
    goto cleanup;
  }
  sql[size] = '\0';
  if (asprintf(&tmp, "%s.seed-%ld", d->path, (long)getpid()) < 0) {
    tmp = NULL;
    goto cleanup;
  }
  unlink(tmp);
  if (sqlite3_open_v2(tmp, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      NULL) != SQLITE_OK ||
      sqlite3_exec(handle, "PRAGMA journal_mode=WAL", NULL, NULL, &msg) !=
          SQLITE_OK ||
      sqlite3_exec(handle, sql, NULL, NULL, &msg) != SQLITE_OK ||
      sqlite3_exec(handle, "PRAGMA journal_mode=DELETE; ANALYZE", NULL, NULL,
                   &msg) != SQLITE_OK) {
    db_errorf(err, "seeding %s from %s: %s", d->path, d->seed,
              msg != NULL ? msg : sqlite3_errmsg(handle));
    goto cleanup;
  }
  sqlite3_close(handle);
  handle = NULL;
  if (link(tmp, d->path) != 0 && errno != EEXIST) {
    db_errorf(err, "cannot create %s: %s", d->path, strerror(errno));
    goto cleanup;
  }
  rc = DB_OK;

cleanup:
  if (handle != NULL)
    sqlite3_close(handle);
  if (tmp != NULL)
    unlink(tmp);
  if (f != NULL)
    fclose(f);
  sqlite3_free(msg);
  free(tmp);
  free(sql);
  return rc;
}

static int sq_open(db *d, char **err) {
  struct stat st;
  sq_state *s;
  int i, rc;

  if (stat(d->path, &st) != 0) {
    if (d->seed == NULL) {
      db_errorf(err, "%s does not exist and no seed is configured", d->path);
      return DB_EINTERNAL;
    }
    rc = create_from_seed(d, err);
    if (rc != DB_OK)
      return rc;
    db_api(d)->log(d->self, PH_LOG_INFO, "database: created %s from %s",
                   d->path, d->seed);
  }
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return DB_EINTERNAL;
  d->engine_state = s;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->freed, NULL);
  pthread_mutex_init(&s->write_lock, NULL);
  s->readers = calloc((size_t)d->pool_size, sizeof(sq_conn));
  if (s->readers == NULL)
    return DB_EINTERNAL;
  s->nreaders = d->pool_size;
  for (i = 0; i < s->nreaders; i++) {
    rc = conn_open(d, &s->readers[i], 0, err);
    if (rc != DB_OK)
      return rc;
  }
  return DB_OK;
}

static void sq_close(db *d) {
  sq_state *s = d->engine_state;
  int i;

  if (s == NULL)
    return;
  for (i = 0; s->readers != NULL && i < s->nreaders; i++)
    conn_close(&s->readers[i]);
  if (s->writer != NULL)
    conn_close(s->writer);
  free(s->writer);
  free(s->readers);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->freed);
  pthread_mutex_destroy(&s->write_lock);
  free(s);
  d->engine_state = NULL;
}

/* Borrows a reader until the request's deadline. */
static sq_conn *checkout(db *d, const db_request *rq, char **err) {
  sq_state *s = d->engine_state;
  struct timespec until;
  sq_conn *c = NULL;
  int i;

  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += (rq->deadline - db_now_ms()) / 1000;
  until.tv_nsec += ((rq->deadline - db_now_ms()) % 1000) * 1000000;
  if (until.tv_nsec >= 1000000000) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&s->lock);
  for (;;) {
    for (i = 0; i < s->nreaders; i++)
      if (!s->readers[i].busy) {
        c = &s->readers[i];
        c->busy = 1;
        break;
      }
    if (c != NULL || db_now_ms() >= rq->deadline ||
        pthread_cond_timedwait(&s->freed, &s->lock, &until) == ETIMEDOUT)
      break;
  }
  pthread_mutex_unlock(&s->lock);
  if (c == NULL) {
    db_errorf(err, "Query timed out waiting for a free connection");
    return NULL;
  }
  c->deadline = rq->deadline;
  c->call = rq->call;
  c->stop = SQ_RUNNING;
  c->denied[0] = '\0';
  c->mode = rq->introspect ? SQ_CATALOG : SQ_QUERY;
  c->mem_start = 0;
  sqlite3_limit(c->handle, SQLITE_LIMIT_LENGTH, value_limit(d));
  return c;
}

static void checkin(db *d, sq_conn *c) {
  sq_state *s = d->engine_state;

  /* A statement that somehow opened a transaction must not leave a stale
   * snapshot behind for the next borrower. */
  if (!sqlite3_get_autocommit(c->handle)) {
    c->mode = SQ_CATALOG;
    sqlite3_exec(c->handle, "ROLLBACK", NULL, NULL, NULL);
  }
  c->call = NULL;
  c->deadline = 0;
  pthread_mutex_lock(&s->lock);
  c->busy = 0;
  pthread_cond_signal(&s->freed);
  pthread_mutex_unlock(&s->lock);
}

/* Non-zero for failures of the file itself rather than of a statement:
 * every later statement would fail the same way until someone fixes it. */
static int file_failed(int code) {
  switch (code & 0xff) {
  case SQLITE_CANTOPEN:
  case SQLITE_IOERR:
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    return 1;
  default:
    return 0;
  }
}

/* Reports readiness on transitions only, so the hot path costs one atomic
 * load. */
static void note_usable(db *d, int usable, const char *why) {
  sq_state *s = d->engine_state;

  if (atomic_load(&s->unusable) == !usable)
    return;
  if (atomic_exchange(&s->unusable, !usable) == !usable)
    return; /* Another thread reported it first. */
  db_api(d)->log(d->self, usable ? PH_LOG_INFO : PH_LOG_ERROR,
                 "database: %s %s%s%s", d->path,
                 usable ? "is readable again" : "cannot be read",
                 usable ? "" : ": ", usable ? "" : why);
  db_set_ready(d, usable, why);
}

/* Maps a failed prepare or step to a result code and message. */
static int sq_failure(sq_conn *c, int code, const db_request *rq, char **err) {
  if (c->stop == SQ_TIMEOUT) {
    db_errorf(err, "Query timed out after %d ms", rq->timeout_ms);
    return DB_ETIMEOUT;
  }
  if (c->stop == SQ_CANCELLED) {
    db_errorf(err, "Query cancelled by the client");
    return DB_ECANCELED;
  }
  if (c->stop == SQ_MEMORY) {
    db_errorf(err,
              "The statement was stopped: it needed more than %lld MiB of "
              "memory",
              statement_budget(c->d) >> 20);
    return DB_EREFUSED;
  }
  if (c->denied[0] != '\0') {
    db_errorf(err, "%s", c->denied);
    return DB_EREFUSED;
  }
  if (code == SQLITE_READONLY) {
    db_errorf(err, "Writes are not allowed: %s", sqlite3_errmsg(c->handle));
    return DB_EREFUSED;
  }
  if (code == SQLITE_NOMEM) {
    db_errorf(err, "out of memory");
    return DB_EINTERNAL;
  }
  if (code == SQLITE_TOOBIG) {
    db_errorf(err,
              "A value would be longer than %d bytes, the limit for this "
              "statement (max_result_bytes, and less for a statement that "
              "holds many values at once)",
              sqlite3_limit(c->handle, SQLITE_LIMIT_LENGTH, -1));
    return DB_EREFUSED;
  }
  db_errorf(err, "SQLite: %s", sqlite3_errmsg(c->handle));
  if (file_failed(code)) {
    note_usable(c->d, 0,
                err != NULL && *err != NULL ? *err : "the file is unusable");
    return DB_EINTERNAL;
  }
  return (code & 0xff) == SQLITE_AUTH ? DB_EREFUSED : DB_EINVALID;
}

/* Non-zero if nothing but blanks, comments and semicolons remain. */
static int tail_empty(const char *p) {
  while (*p != '\0') {
    if (isspace((unsigned char)*p) || *p == ';') {
      p++;
    } else if (p[0] == '-' && p[1] == '-') {
      p += strcspn(p, "\n");
    } else if (p[0] == '/' && p[1] == '*') {
      const char *end = strstr(p + 2, "*/");
      if (end == NULL)
        return 1; /* SQLite ends an open comment at the end of input. */
      p = end + 2;
    } else {
      return 0;
    }
  }
  return 1;
}

static int bind_params(sq_conn *c, sqlite3_stmt *stmt, const cJSON *params,
                       char **err) {
  int want = sqlite3_bind_parameter_count(stmt);
  int have = params != NULL ? cJSON_GetArraySize(params) : 0;
  const cJSON *p;
  char *text;
  int i = 0, rc;

  if (want != have) {
    db_errorf(err,
              "The statement has %d placeholder%s (?) but params has %d "
              "value%s",
              want, want == 1 ? "" : "s", have, have == 1 ? "" : "s");
    return DB_EINVALID;
  }
  cJSON_ArrayForEach(p, params) {
    i++;
    if (cJSON_IsNull(p)) {
      rc = sqlite3_bind_null(stmt, i);
    } else if (cJSON_IsBool(p)) {
      rc = sqlite3_bind_int(stmt, i, cJSON_IsTrue(p));
    } else if (cJSON_IsNumber(p)) {
      double v = p->valuedouble;
      if (v == floor(v) && fabs(v) < 9.2e18)
        rc = sqlite3_bind_int64(stmt, i, (sqlite3_int64)v);
      else
        rc = sqlite3_bind_double(stmt, i, v);
    } else if (cJSON_IsString(p)) {
      rc = sqlite3_bind_text(stmt, i, p->valuestring, -1, SQLITE_TRANSIENT);
    } else {
      /* Arrays and objects bind as their JSON text. */
      text = cJSON_PrintUnformatted(p);
      if (text == NULL)
        return DB_EINTERNAL;
      rc = sqlite3_bind_text(stmt, i, text, -1, SQLITE_TRANSIENT);
      cJSON_free(text);
    }
    if (rc != SQLITE_OK) {
      db_errorf(err, "params[%d]: %s", i - 1, sqlite3_errmsg(c->handle));
      return DB_EINVALID;
    }
  }
  return DB_OK;
}

static int decl_has(const char *decl, const char *word) {
  return decl != NULL && strcasestr(decl, word) != NULL;
}

/* One value in its JSON type: integers (strings past 2^53), floats, text,
 * JSON for JSON-declared columns, ISO 8601 for timestamps, base64 blobs. */
static cJSON *sq_value(sq_conn *c, sqlite3_stmt *stmt, int i,
                       const char *decl) {
  const unsigned char *t;
  const void *blob;
  cJSON *v;
  char *b64, iso[32];
  double f;
  long long n;
  int len;

  switch (sqlite3_column_type(stmt, i)) {
  case SQLITE_INTEGER:
    n = sqlite3_column_int64(stmt, i);
    if (decl_has(decl, "BOOL") && (n == 0 || n == 1))
      return cJSON_CreateBool((int)n);
    return db_json_int64(n);
  case SQLITE_FLOAT:
    f = sqlite3_column_double(stmt, i);
    if (isfinite(f))
      return cJSON_CreateNumber(f);
    return cJSON_CreateString(isnan(f) ? "NaN"
                              : f > 0  ? "Infinity"
                                       : "-Infinity");
  case SQLITE_TEXT:
    t = sqlite3_column_text(stmt, i);
    len = sqlite3_column_bytes(stmt, i);
    if (decl_has(decl, "JSON")) {
      v = cJSON_ParseWithLength((const char *)t, (size_t)len);
      if (v != NULL)
        return v;
    }
    if ((decl_has(decl, "TIMESTAMP") || decl_has(decl, "DATETIME")) &&
        len >= 19 && len < (int)sizeof(iso) && t[10] == ' ' && t[4] == '-') {
      memcpy(iso, t, (size_t)len + 1);
      iso[10] = 'T';
      return cJSON_CreateString(iso);
    }
    return cJSON_CreateString((const char *)t);
  case SQLITE_BLOB:
    blob = sqlite3_column_blob(stmt, i);
    len = sqlite3_column_bytes(stmt, i);
    b64 = ph_base64(db_api(c->d), blob != NULL ? blob : "", (size_t)len);
    if (b64 == NULL)
      return NULL;
    v = cJSON_CreateString(b64);
    db_api(c->d)->free(b64);
    return v;
  default:
    return cJSON_CreateNull();
  }
}

/* sq_value written straight into the row being built: the common types as
 * text, the rest (JSON and timestamp columns, blobs) through sq_value. */
static void sq_put(sq_conn *c, db_rows *out, sqlite3_stmt *stmt, int i,
                   const char *decl) {
  const char *t;
  long long n;
  double f;

  switch (sqlite3_column_type(stmt, i)) {
  case SQLITE_INTEGER:
    n = sqlite3_column_int64(stmt, i);
    if (decl_has(decl, "BOOL") && (n == 0 || n == 1))
      db_row_bool(out, (int)n);
    else
      db_row_int64(out, n);
    return;
  case SQLITE_FLOAT:
    f = sqlite3_column_double(stmt, i);
    if (!isfinite(f))
      break;
    db_row_double(out, f);
    return;
  case SQLITE_TEXT:
    if (decl_has(decl, "JSON") || decl_has(decl, "TIMESTAMP") ||
        decl_has(decl, "DATETIME"))
      break;
    t = (const char *)sqlite3_column_text(stmt, i);
    if (t == NULL)
      out->failed = 1;
    else /* Up to a NUL, as cJSON_CreateString took it. */
      db_row_string(out, t, strlen(t));
    return;
  case SQLITE_NULL:
    db_row_null(out);
    return;
  default:
    break;
  }
  db_row_json(out, sq_value(c, stmt, i, decl));
}

static const char *storage_name(int type) {
  switch (type) {
  case SQLITE_INTEGER:
    return "integer";
  case SQLITE_FLOAT:
    return "real";
  case SQLITE_TEXT:
    return "text";
  case SQLITE_BLOB:
    return "blob";
  default:
    return "null";
  }
}

/* The size of one register (a Mem) of a 64-bit build, a lower bound of
 * what each costs in a program's memory. */
#define REGISTER_BYTES 56

/* Lowers the value limit for stmt so that all the values it can hold at
 * once fit the statement's budget: SQLite keeps a row's values in
 * registers, and a statement of 300 expressions held 300 values of the
 * full limit before any row reached the plugin (7 GB for one row). The
 * registers are part of the program's memory, so that memory over the
 * size of one bounds how many there are; a point lookup keeps the full
 * limit. Also starts the statement's memory count (progress). */
static void limit_values(sq_conn *c, sqlite3_stmt *stmt) {
  long long used = sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_MEMUSED, 0);
  long long limit = statement_budget(c->d) / (used / REGISTER_BYTES + 1);

  if (limit > value_limit(c->d))
    limit = value_limit(c->d);
  if (limit < 1024)
    limit = 1024;
  sqlite3_limit(c->handle, SQLITE_LIMIT_LENGTH, (int)limit);
  c->mem_start = sqlite3_memory_used();
}

/* Prepares a client statement with every check, on connection c. */
static int prepare_checked(sq_conn *c, const db_request *rq, const char *sql,
                           int write, sqlite3_stmt **stmt, char **err) {
  const char *tail = NULL;
  int code;

  *stmt = NULL;
  code = sqlite3_prepare_v3(c->handle, sql, -1, 0, stmt, &tail);
  if (code != SQLITE_OK)
    return sq_failure(c, code, rq, err);
  if (*stmt == NULL) {
    db_errorf(err, "Query cannot be empty");
    return DB_EINVALID;
  }
  if (tail != NULL && !tail_empty(tail)) {
    db_errorf(err, "Multiple statements are not allowed: send one "
                   "statement per call");
    return DB_EREFUSED;
  }
  if (!write && !sqlite3_stmt_readonly(*stmt)) {
    db_errorf(err, "Only read-only statements are allowed here");
    return DB_EREFUSED;
  }
  limit_values(c, *stmt);
  return bind_params(c, *stmt, rq->params, err);
}

/* Makes c's map of its file's b-trees current (sqlite_plan.c): built on
 * first use, rebuilt when `rebuild`, always with the plugin's own rights
 * and the full value limit, which reading the schema needs. */
static int ensure_map(sq_conn *c, int rebuild, char **err) {
  enum sq_mode mode = c->mode;
  int rc;

  if (c->map != NULL && !rebuild)
    return DB_OK;
  c->mode = SQ_CATALOG;
  sqlite3_limit(c->handle, SQLITE_LIMIT_LENGTH, value_limit(c->d));
  rc = sq_map_build(c->d, c->handle, &c->map, err);
  c->mode = mode;
  return rc;
}

/* The plan check of a client's statement (sqlite_plan.c), for one whose
 * text mentions something it must see: sql compiled once more under
 * EXPLAIN, with the same parameters, and its program walked. */
static int check_program(sq_conn *c, const db_request *rq, const char *sql,
                         char **err) {
  sqlite3_stmt *explain = NULL;
  char *text;
  int rc, code;

  if (!sq_map_mentions(c->map, sql))
    return DB_OK;
  text = sqlite3_mprintf("EXPLAIN %s", sql);
  if (text == NULL)
    return DB_EINTERNAL;
  code = sqlite3_prepare_v2(c->handle, text, -1, &explain, NULL);
  rc = code == SQLITE_OK ? bind_params(c, explain, rq->params, err)
                         : sq_failure(c, code, rq, err);
  if (rc == DB_OK)
    rc = sq_plan_check(c->map, explain, err);
  sqlite3_finalize(explain);
  sqlite3_free(text);
  return rc;
}

/* After a statement ran: non-zero when the file's schema may have changed
 * since c's map was taken, so the check may have used a wrong map and
 * the statement must run again on a fresh one. One file_control when
 * nothing was written to the file meanwhile. */
static int schema_moved(sq_conn *c) {
  enum sq_mode mode = c->mode;
  int moved;

  c->mode = SQ_CATALOG;
  moved = sq_map_stale(c->map, c->handle) != 0;
  c->mode = mode;
  return moved;
}

/* Runs a client's read on c: checked against the map, then `run` (rows or
 * a plan), and once more if the schema moved meanwhile. */
static int run_read(sq_conn *c, const db_request *rq,
                    int (*run)(sq_conn *c, sqlite3_stmt *stmt,
                               const db_request *rq, void *out, char **err),
                    void *out, void (*clear)(void *out), char **err) {
  sqlite3_stmt *stmt = NULL;
  int rc, attempt, moved = 0;

  for (attempt = 0; attempt < 2; attempt++) {
    if (attempt > 0) {
      clear(out);
      if (err != NULL) {
        free(*err);
        *err = NULL;
      }
      c->stop = SQ_RUNNING;
      c->denied[0] = '\0';
    }
    rc = ensure_map(c, moved, err);
    c->mode = SQ_QUERY;
    if (rc == DB_OK)
      rc = prepare_checked(c, rq, rq->sql, 0, &stmt, err);
    if (rc == DB_OK)
      rc = check_program(c, rq, rq->sql, err);
    if (rc == DB_OK)
      rc = run(c, stmt, rq, out, err);
    sqlite3_finalize(stmt);
    stmt = NULL;
    c->mem_start = 0;
    moved = c->map != NULL && schema_moved(c);
    if (!moved)
      return rc;
  }
  clear(out);
  db_errorf(err, "The database's schema changed while the statement ran; "
                 "try again");
  return DB_EINTERNAL;
}

static int scan_check(db *d, const db_request *rq, int write, char **err) {
  sql_scan scan;
  int rc;

  if (sql_scan_run(&scan, rq->sql, DB_SQLITE) != 0) {
    sql_scan_free(&scan);
    db_errorf(err, "out of memory");
    return DB_EINTERNAL;
  }
  rc = sql_check(d, &scan, write, err);
  sql_scan_free(&scan);
  return rc;
}

/* Steps stmt into out: skips rq->offset rows, keeps rq->limit, and looks
 * one row further to know whether the result was truncated. */
static int collect_rows(sq_conn *c, sqlite3_stmt *stmt, const db_request *rq,
                        db_rows *out, char **err) {
  int ncols = sqlite3_column_count(stmt), i, code, typed = 0;
  long skipped = 0;
  cJSON *col;

  for (i = 0; i < ncols; i++) {
    const char *decl = sqlite3_column_decltype(stmt, i);
    char lower[64];
    size_t k;

    col = cJSON_CreateObject();
    cJSON_AddStringToObject(col, "name", sqlite3_column_name(stmt, i));
    for (k = 0; decl != NULL && decl[k] != '\0' && k + 1 < sizeof(lower); k++)
      lower[k] = (char)tolower((unsigned char)decl[k]);
    lower[k] = '\0';
    cJSON_AddStringToObject(col, "type", decl != NULL ? lower : "");
    cJSON_AddItemToArray(out->columns, col);
  }
  for (;;) {
    code = sqlite3_step(stmt);
    if (code == SQLITE_DONE)
      break;
    if (code != SQLITE_ROW)
      return sq_failure(c, code, rq, err);
    if (skipped < rq->offset) {
      skipped++;
      continue;
    }
    if (out->count >= rq->limit) {
      out->truncated = 1;
      break;
    }
    if (!typed) {
      /* Expressions have no declared type; name the first row's. */
      for (i = 0; i < ncols; i++) {
        col = cJSON_GetArrayItem(out->columns, i);
        if (cJSON_GetStringValue(cJSON_GetObjectItem(col, "type"))[0] == 0)
          cJSON_ReplaceItemInObject(
              col, "type",
              cJSON_CreateString(storage_name(sqlite3_column_type(stmt, i))));
      }
      typed = 1;
    }
    db_row_begin(out);
    for (i = 0; i < ncols; i++)
      sq_put(c, out, stmt, i, sqlite3_column_decltype(stmt, i));
    if (db_row_end(out) != 0) {
      if (out->failed)
        goto nomem;
      break;
    }
  }
  for (i = 0; !typed && i < ncols; i++) {
    col = cJSON_GetArrayItem(out->columns, i);
    if (cJSON_GetStringValue(cJSON_GetObjectItem(col, "type"))[0] == 0)
      cJSON_ReplaceItemInObject(col, "type", cJSON_CreateString("null"));
  }
  return DB_OK;

nomem:
  db_errorf(err, "out of memory");
  return DB_EINTERNAL;
}

static int run_rows(sq_conn *c, sqlite3_stmt *stmt, const db_request *rq,
                    void *out, char **err) {
  return collect_rows(c, stmt, rq, out, err);
}

static void clear_rows(void *out) {
  db_rows_clear(out);
}

static int sq_query(db *d, const db_request *rq, db_rows *out, char **err) {
  sq_conn *c;
  int rc;

  rc = scan_check(d, rq, 0, err);
  if (rc != DB_OK)
    return rc;
  c = checkout(d, rq, err);
  if (c == NULL)
    return DB_ETIMEOUT;
  rc = run_read(c, rq, run_rows, out, clear_rows, err);
  checkin(d, c);
  if (rc == DB_OK)
    note_usable(d, 1, NULL);
  return rc;
}

/* EXPLAIN QUERY PLAN of rq's statement, which passed every check as
 * `checked`, into *(cJSON **)out. */
static int run_plan(sq_conn *c, sqlite3_stmt *checked, const db_request *rq,
                    void *out, char **err) {
  cJSON **plan = out, *node;
  sqlite3_stmt *stmt = NULL;
  char *sql = NULL;
  int rc, code;

  (void)checked;
  if (asprintf(&sql, "EXPLAIN QUERY PLAN %s", rq->sql) < 0)
    return DB_EINTERNAL;
  rc = prepare_checked(c, rq, sql, 0, &stmt, err);
  if (rc != DB_OK)
    goto cleanup;
  *plan = cJSON_CreateArray();
  while ((code = sqlite3_step(stmt)) == SQLITE_ROW) {
    node = cJSON_CreateObject();
    cJSON_AddNumberToObject(node, "id", sqlite3_column_int(stmt, 0));
    cJSON_AddNumberToObject(node, "parent", sqlite3_column_int(stmt, 1));
    cJSON_AddStringToObject(node, "detail",
                            (const char *)sqlite3_column_text(stmt, 3));
    cJSON_AddItemToArray(*plan, node);
  }
  if (code != SQLITE_DONE) {
    rc = sq_failure(c, code, rq, err);
    cJSON_Delete(*plan);
    *plan = NULL;
  }

cleanup:
  sqlite3_finalize(stmt);
  free(sql);
  return rc;
}

static void clear_plan(void *out) {
  cJSON **plan = out;

  cJSON_Delete(*plan);
  *plan = NULL;
}

static int sq_explain(db *d, const db_request *rq, cJSON **plan, char **err) {
  sq_conn *c;
  int rc;

  *plan = NULL;
  rc = scan_check(d, rq, 0, err);
  if (rc != DB_OK)
    return rc;
  c = checkout(d, rq, err);
  if (c == NULL)
    return DB_ETIMEOUT;
  rc = run_read(c, rq, run_plan, plan, clear_plan, err);
  checkin(d, c);
  return rc;
}

static int sq_execute(db *d, const db_request *rq, long long *affected,
                      char **err) {
  sq_state *s = d->engine_state;
  sqlite3_stmt *stmt = NULL;
  sq_conn *c;
  int rc, code;

  *affected = 0;
  rc = scan_check(d, rq, 1, err);
  if (rc != DB_OK)
    return rc;
  pthread_mutex_lock(&s->write_lock);
  if (s->writer == NULL) {
    s->writer = calloc(1, sizeof(sq_conn));
    if (s->writer == NULL || (rc = conn_open(d, s->writer, 1, err)) != DB_OK) {
      free(s->writer);
      s->writer = NULL;
      pthread_mutex_unlock(&s->write_lock);
      return rc != DB_OK ? rc : DB_EINTERNAL;
    }
  }
  c = s->writer;
  c->deadline = rq->deadline;
  c->call = rq->call;
  c->stop = SQ_RUNNING;
  c->denied[0] = '\0';
  c->mode = SQ_CATALOG;
  code = sqlite3_exec(c->handle, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (code != SQLITE_OK) {
    rc = sq_failure(c, code, rq, err);
    goto unlock;
  }
  c->mode = SQ_WRITE;
  rc = prepare_checked(c, rq, rq->sql, 1, &stmt, err);
  while (rc == DB_OK && (code = sqlite3_step(stmt)) == SQLITE_ROW)
    ; /* RETURNING rows are not reported; only the count is. */
  if (rc == DB_OK && code != SQLITE_DONE)
    rc = sq_failure(c, code, rq, err);
  sqlite3_finalize(stmt);
  c->mode = SQ_CATALOG;
  if (rc == DB_OK) {
    *affected = sqlite3_changes64(c->handle);
    if (*affected > d->max_affected) {
      db_errorf(err,
                "The statement would change %lld rows, more than the "
                "limit of %lld; nothing was changed",
                *affected, d->max_affected);
      rc = DB_EREFUSED;
    }
  }
  if (rc == DB_OK) {
    code = sqlite3_exec(c->handle, "COMMIT", NULL, NULL, NULL);
    if (code != SQLITE_OK)
      rc = sq_failure(c, code, rq, err);
  }
  if (!sqlite3_get_autocommit(c->handle))
    sqlite3_exec(c->handle, "ROLLBACK", NULL, NULL, NULL);

unlock:
  c->call = NULL;
  c->deadline = 0;
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

/* The first "-- comment" inside a CREATE statement: SQLite keeps the
 * statement's text verbatim, so that is where a table's comment lives. */
static cJSON *comment_of(const char *create) {
  const char *p = create != NULL ? strstr(create, "--") : NULL;
  size_t n;

  if (p == NULL)
    return cJSON_CreateNull();
  p += 2;
  while (*p == ' ')
    p++;
  n = strcspn(p, "\r\n");
  while (n > 0 && p[n - 1] == ' ')
    n--;
  {
    char *text = strndup(p, n);
    cJSON *v = text != NULL ? cJSON_CreateString(text) : cJSON_CreateNull();
    free(text);
    return v;
  }
}

static int catalog_prepare(sq_conn *c, const db_request *rq, const char *sql,
                           const char *arg, sqlite3_stmt **stmt, char **err) {
  int code;

  code = sqlite3_prepare_v2(c->handle, sql, -1, stmt, NULL);
  if (code == SQLITE_OK && arg != NULL)
    code = sqlite3_bind_text(*stmt, 1, arg, -1, SQLITE_TRANSIENT);
  if (code != SQLITE_OK)
    return sq_failure(c, code, rq, err);
  return DB_OK;
}

static int sq_list_tables(db *d, const db_request *rq, cJSON **tables,
                          char **err) {
  sqlite3_stmt *stmt = NULL, *count = NULL;
  char *sql = NULL;
  cJSON *item;
  sq_conn *c;
  int rc, code;

  *tables = cJSON_CreateArray();
  if (*tables == NULL)
    return DB_EINTERNAL;
  c = checkout(d, rq, err);
  if (c == NULL)
    return DB_ETIMEOUT;
  rc = catalog_prepare(c, rq,
                       "SELECT name, type, sql FROM sqlite_schema WHERE type "
                       "IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' "
                       "ESCAPE '\\' ORDER BY name",
                       NULL, &stmt, err);
  while (rc == DB_OK && (code = sqlite3_step(stmt)) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(stmt, 0);
    const char *type = (const char *)sqlite3_column_text(stmt, 1);
    if (db_table_hidden(d, name))
      continue;
    item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "name", name);
    cJSON_AddStringToObject(item, "type", type);
    if (strcmp(type, "table") == 0) {
      /* Exact counts: SQLite keeps no estimate without ANALYZE, and the
       * deadline bounds the cost on a big file. */
      sql = sqlite3_mprintf("SELECT count(*) FROM \"%w\"", name);
      rc = catalog_prepare(c, rq, sql, NULL, &count, err);
      if (rc == DB_OK && (code = sqlite3_step(count)) == SQLITE_ROW)
        cJSON_AddItemToObject(item, "row_estimate",
                              db_json_int64(sqlite3_column_int64(count, 0)));
      else if (rc == DB_OK)
        rc = sq_failure(c, code, rq, err);
      sqlite3_finalize(count);
      count = NULL;
      sqlite3_free(sql);
      sql = NULL;
    } else {
      cJSON_AddNullToObject(item, "row_estimate");
    }
    cJSON_AddItemToObject(
        item, "comment",
        comment_of((const char *)sqlite3_column_text(stmt, 2)));
    cJSON_AddItemToArray(*tables, item);
  }
  if (rc == DB_OK && code != SQLITE_DONE)
    rc = sq_failure(c, code, rq, err);
  sqlite3_finalize(stmt);
  checkin(d, c);
  if (rc != DB_OK) {
    cJSON_Delete(*tables);
    *tables = NULL;
  }
  return rc;
}

/* Appends the names from column 0 of stmt to array; returns 1 if one of
 * them is masked in `table`. */
static int masked_names(db *d, sqlite3_stmt *stmt, const char *table,
                        cJSON *array) {
  int masked = 0;

  while (sqlite3_step(stmt) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(stmt, 0);
    if (name == NULL)
      name = "<expression>";
    if (db_column_masked(d, table, name))
      masked = 1;
    cJSON_AddItemToArray(array, cJSON_CreateString(name));
  }
  return masked;
}

static int describe_keys(db *d, sq_conn *c, const db_request *rq,
                         const char *table, cJSON *desc, char **err) {
  sqlite3_stmt *stmt = NULL, *cols = NULL;
  cJSON *fks = cJSON_AddArrayToObject(desc, "foreign_keys");
  cJSON *indexes = cJSON_AddArrayToObject(desc, "indexes");
  cJSON *fk = NULL, *from = NULL, *to = NULL, *idx;
  int rc, last_id = -1, hide = 0;

  rc = catalog_prepare(c, rq,
                       "SELECT id, \"table\", \"from\", \"to\", on_update, "
                       "on_delete FROM pragma_foreign_key_list(?) ORDER BY "
                       "id, seq",
                       table, &stmt, err);
  while (rc == DB_OK && sqlite3_step(stmt) == SQLITE_ROW) {
    const char *target = (const char *)sqlite3_column_text(stmt, 1);
    const char *src = (const char *)sqlite3_column_text(stmt, 2);
    const char *dst = (const char *)sqlite3_column_text(stmt, 3);
    if (sqlite3_column_int(stmt, 0) != last_id) {
      if (fk != NULL && !hide)
        cJSON_AddItemToArray(fks, fk);
      else
        cJSON_Delete(fk);
      last_id = sqlite3_column_int(stmt, 0);
      hide = db_table_hidden(d, target);
      fk = cJSON_CreateObject();
      from = cJSON_AddArrayToObject(fk, "columns");
      idx = cJSON_AddObjectToObject(fk, "references");
      cJSON_AddStringToObject(idx, "table", target);
      to = cJSON_AddArrayToObject(idx, "columns");
      cJSON_AddStringToObject(fk, "on_update",
                              (const char *)sqlite3_column_text(stmt, 4));
      cJSON_AddStringToObject(fk, "on_delete",
                              (const char *)sqlite3_column_text(stmt, 5));
    }
    if (db_column_masked(d, table, src) ||
        (dst != NULL && db_column_masked(d, target, dst)))
      hide = 1;
    cJSON_AddItemToArray(from, cJSON_CreateString(src));
    if (dst != NULL)
      cJSON_AddItemToArray(to, cJSON_CreateString(dst));
  }
  if (fk != NULL && !hide)
    cJSON_AddItemToArray(fks, fk);
  else
    cJSON_Delete(fk);
  sqlite3_finalize(stmt);
  stmt = NULL;
  if (rc != DB_OK)
    return rc;
  rc = catalog_prepare(c, rq,
                       "SELECT name, \"unique\", origin FROM "
                       "pragma_index_list(?) ORDER BY name",
                       table, &stmt, err);
  while (rc == DB_OK && sqlite3_step(stmt) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(stmt, 0);
    idx = cJSON_CreateObject();
    cJSON_AddStringToObject(idx, "name", name);
    from = cJSON_AddArrayToObject(idx, "columns");
    cJSON_AddBoolToObject(idx, "unique", sqlite3_column_int(stmt, 1));
    cJSON_AddBoolToObject(
        idx, "primary_key",
        strcmp((const char *)sqlite3_column_text(stmt, 2), "pk") == 0);
    rc = catalog_prepare(c, rq,
                         "SELECT name FROM pragma_index_info(?) ORDER BY "
                         "seqno",
                         name, &cols, err);
    if (rc == DB_OK && masked_names(d, cols, table, from))
      cJSON_Delete(idx);
    else
      cJSON_AddItemToArray(indexes, idx);
    sqlite3_finalize(cols);
    cols = NULL;
  }
  sqlite3_finalize(stmt);
  return rc;
}

static int sq_describe(db *d, const db_request *rq, const char *table,
                       cJSON **desc, char **err) {
  sqlite3_stmt *stmt = NULL;
  cJSON *columns, *pk, *col, *pk_cols[64] = {0};
  char *name = NULL;
  sq_conn *c;
  int rc, code, pk_count = 0, i;

  *desc = NULL;
  if (db_table_hidden(d, table))
    return DB_ENOTFOUND;
  c = checkout(d, rq, err);
  if (c == NULL)
    return DB_ETIMEOUT;
  rc = catalog_prepare(c, rq,
                       "SELECT name, type, sql FROM sqlite_schema WHERE type "
                       "IN ('table', 'view') AND name = ? COLLATE NOCASE AND "
                       "name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                       table, &stmt, err);
  if (rc != DB_OK)
    goto cleanup;
  code = sqlite3_step(stmt);
  if (code != SQLITE_ROW) {
    rc = code == SQLITE_DONE ? DB_ENOTFOUND : sq_failure(c, code, rq, err);
    goto cleanup;
  }
  name = strdup((const char *)sqlite3_column_text(stmt, 0));
  *desc = cJSON_CreateObject();
  if (name == NULL || *desc == NULL) {
    rc = DB_EINTERNAL;
    goto cleanup;
  }
  cJSON_AddStringToObject(*desc, "name", name);
  cJSON_AddStringToObject(*desc, "type",
                          (const char *)sqlite3_column_text(stmt, 1));
  cJSON_AddItemToObject(*desc, "comment",
                        comment_of((const char *)sqlite3_column_text(stmt, 2)));
  sqlite3_finalize(stmt);
  stmt = NULL;
  columns = cJSON_AddArrayToObject(*desc, "columns");
  pk = cJSON_AddArrayToObject(*desc, "primary_key");
  rc = catalog_prepare(c, rq,
                       "SELECT name, type, \"notnull\", dflt_value, pk FROM "
                       "pragma_table_info(?) ORDER BY cid",
                       name, &stmt, err);
  while (rc == DB_OK && (code = sqlite3_step(stmt)) == SQLITE_ROW) {
    const char *cname = (const char *)sqlite3_column_text(stmt, 0);
    const char *dflt = (const char *)sqlite3_column_text(stmt, 3);
    int key = sqlite3_column_int(stmt, 4);
    if (db_column_masked(d, name, cname))
      continue;
    col = cJSON_CreateObject();
    cJSON_AddStringToObject(col, "name", cname);
    cJSON_AddStringToObject(col, "type",
                            (const char *)sqlite3_column_text(stmt, 1));
    /* Key columns count as NOT NULL: an INTEGER PRIMARY KEY is the rowid. */
    cJSON_AddBoolToObject(col, "nullable",
                          !sqlite3_column_int(stmt, 2) && key == 0);
    if (dflt != NULL)
      cJSON_AddStringToObject(col, "default", dflt);
    else
      cJSON_AddNullToObject(col, "default");
    cJSON_AddItemToArray(columns, col);
    /* pk is the column's position in the key, 1-based. */
    if (key > 0 && key <= (int)(sizeof(pk_cols) / sizeof(pk_cols[0]))) {
      pk_cols[key - 1] = cJSON_CreateString(cname);
      if (key > pk_count)
        pk_count = key;
    }
  }
  for (i = 0; i < pk_count; i++)
    if (pk_cols[i] != NULL)
      cJSON_AddItemToArray(pk, pk_cols[i]);
  sqlite3_finalize(stmt);
  stmt = NULL;
  if (rc == DB_OK)
    rc = describe_keys(d, c, rq, name, *desc, err);

cleanup:
  sqlite3_finalize(stmt);
  checkin(d, c);
  free(name);
  if (rc != DB_OK) {
    cJSON_Delete(*desc);
    *desc = NULL;
  }
  return rc;
}

static int sq_ping(db *d, char **err) {
  db_request rq = {0};
  sq_conn *c;
  int code;

  rq.timeout_ms = 2000;
  rq.deadline = db_now_ms() + rq.timeout_ms;
  rq.introspect = 1;
  c = checkout(d, &rq, err);
  if (c == NULL)
    return DB_ETIMEOUT;
  code = sqlite3_exec(c->handle, "SELECT 1", NULL, NULL, NULL);
  if (code != SQLITE_OK)
    db_errorf(err, "SQLite: %s", sqlite3_errmsg(c->handle));
  checkin(d, c);
  return code == SQLITE_OK ? DB_OK : DB_EINTERNAL;
}

const db_engine db_sqlite_engine = {
    .name = "SQLite",
    .open = sq_open,
    .close = sq_close,
    .query = sq_query,
    .explain = sq_explain,
    .execute = sq_execute,
    .list_tables = sq_list_tables,
    .describe = sq_describe,
    .ping = sq_ping,
};
