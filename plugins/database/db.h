/* db.h: internals shared by the database plugin's files. Not installed; the
 * plugin's only public surface is its descriptor.
 *
 * database.c owns the instance (tools, resources, the "sql" service; its
 * config parsed by config.c, its rows written as JSON by rows.c) and talks to
 * an engine (engine_sqlite.c; engine_pg.c with the files engine_pg.h lists)
 * through db_engine. sql_scan.c is a small lexer both use to refuse hostile
 * statements before a server sees them; cursor.c signs pagination cursors. */
#ifndef PH_DATABASE_DB_H
#define PH_DATABASE_DB_H

#include "plughost.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* Result codes of engine functions; the message goes out through *err. */
#define DB_OK 0
#define DB_EREFUSED (-1)  /* The statement is not allowed here. */
#define DB_EINVALID (-2)  /* Bad input or an SQL error the user can fix. */
#define DB_ETIMEOUT (-3)  /* The time limit passed. */
#define DB_ECANCELED (-4) /* The client cancelled the call. */
#define DB_EINTERNAL (-5) /* Connection lost, out of memory, server down. */
#define DB_ENOTFOUND (-6) /* No such table (or it is hidden). */
#define DB_EAGAIN (-7)    /* Cannot run on the loop now: use a worker. */

typedef enum { DB_SQLITE = 1, DB_POSTGRES } db_kind;

typedef struct db db;

/* One unit of work handed to an engine. */
typedef struct db_request {
  const char *sql;     /* The statement, as the client sent it. */
  const cJSON *params; /* Positional parameters (array) or NULL. */
  long offset;         /* Rows to skip (from a cursor). */
  long limit;          /* Rows to return at most (already clamped). */
  int timeout_ms;      /* Time limit of the statement (clamped). */
  long long deadline;  /* db_now_ms() + timeout_ms. */
  ph_call *call;       /* For cancellation; NULL outside calls. */
  int introspect;      /* Non-zero: the plugin's own catalog query. */
} db_request;

/* Rows as JSON, filled by an engine, bounded by limit and max bytes. The
 * rows are kept as JSON text, not a cJSON tree: a page is hundreds of
 * values, and a node plus a string copy for each, freed after one print,
 * was the plugin's largest CPU cost per query. */
typedef struct db_rows {
  cJSON *columns;   /* [{"name":..,"type":..}] */
  char *text;       /* The rows "[..],[..]" without the outer brackets. */
  size_t len;       /* Bytes in text (not NUL-terminated). */
  size_t cap;       /* Bytes allocated for text. */
  size_t row_start; /* Where the row being built begins in text. */
  size_t weight;    /* Rough size of that row, against max_bytes. */
  int values;       /* Values in that row so far. */
  int failed;       /* Out of memory while appending. */
  long count;       /* Complete rows in text. */
  int truncated;    /* More rows exist past what was returned. */
  size_t bytes;     /* Rough size of the rows as JSON, against max_bytes. */
  size_t max_bytes;
  size_t max_row; /* Rough size one row may reach (0: any); past it the
                     row is not written and the statement is refused. */
  int oversized;  /* A row passed max_row. */
} db_rows;

/* How a read started on the loop ends: with the engine's code and error
 * text (the callee frees it), or DB_EAGAIN to run the read on a worker
 * after all. On the loop thread, except a final code (never DB_EAGAIN)
 * for a read that timed out or was cancelled while it waited for a
 * connection, which the engine's own thread reports. */
typedef void (*db_query_done)(void *ctx, int rc, char *err);

/* What an engine implements. Every function but query_start is called on
 * a worker thread, several at once; each borrows a connection from its
 * own pool. */
typedef struct db_engine {
  const char *name; /* "SQLite" or "PostgreSQL", for descriptions. */
  int (*open)(db *d, char **err);
  void (*close)(db *d);
  /* A read-only SELECT; fills out (columns, rows, truncated). */
  int (*query)(db *d, const db_request *rq, db_rows *out, char **err);
  /* Optional, on the loop thread: starts the read without blocking and
   * returns DB_OK (done follows), DB_EAGAIN (run query on a worker), or
   * a refusal with *err. rq and out live until done. */
  int (*query_start)(db *d, const db_request *rq, db_rows *out,
                     db_query_done done, void *ctx, char **err);
  /* The plan of a read-only statement, as JSON. */
  int (*explain)(db *d, const db_request *rq, cJSON **plan, char **err);
  /* One INSERT/UPDATE/DELETE in a transaction; *affected rows. */
  int (*execute)(db *d, const db_request *rq, long long *affected, char **err);
  /* [{"name","type","row_estimate","comment"}] without hidden tables. */
  int (*list_tables)(db *d, const db_request *rq, cJSON **tables, char **err);
  /* One table without masked columns; DB_ENOTFOUND if absent or hidden. */
  int (*describe)(db *d, const db_request *rq, const char *table, cJSON **desc,
                  char **err);
  /* Checks a connection can be made now. */
  int (*ping)(db *d, char **err);
} db_engine;

extern const db_engine db_sqlite_engine;
extern const db_engine db_postgres_engine;

/* The instance. Immutable after init except the engine's own state, which
 * the engine guards itself. */
struct db {
  ph_instance *self; /* Also the way to the host's table (db_api). */
  db_kind kind;
  const db_engine *engine;
  char *url;     /* As configured. */
  char *path;    /* SQLite: the file; PostgreSQL: the conninfo. */
  char *seed;    /* SQLite: SQL file run when the file is missing. */
  char **hidden; /* Table globs hidden from everything. */
  int nhidden;
  char **masked; /* Column globs ("col" or "table.col"). */
  int nmasked;
  long default_limit;     /* Rows when the client gives no limit. */
  long max_limit;         /* Rows at most, whatever the client asks. */
  int default_timeout;    /* Milliseconds. */
  int max_timeout;        /* Milliseconds. */
  size_t max_sql;         /* Bytes of SQL text accepted. */
  size_t max_bytes;       /* Rough bytes of rows per reply. */
  long long max_affected; /* Rows one execute may change. */
  int pool_size;          /* Connections per instance. */
  int allow_writes;       /* Non-zero: execute is enabled. */
  unsigned char cursor_key[32];
  void *engine_state; /* Owned by the engine. */
};

/* The host's API table. ABI 1.3 promises every instance begins with a
 * pointer to it, so the instance need not keep one. */
static inline const ph_host_api *db_api(const db *d) {
  return ph_instance_api(d->self);
}

/* ---- config.c ---- */

/* Fills d's settings from the instance's config (JSON text); 0, or -1 with
 * *err naming the key. d->self is the caller's. */
int db_parse_config(db *d, const char *config_json, char **err);

/* Frees d and what db_parse_config allocated (not the engine's state). */
void db_free(db *d);

/* Non-zero when a table (plain name, any case) is hidden by the config. */
int db_table_hidden(const db *d, const char *table);

/* Non-zero when column `column` of `table` is masked by the config; with
 * table NULL, when it is masked in some table. */
int db_column_masked(const db *d, const char *table, const char *column);

/* ---- rows.c ---- */

/* The rough size one row of a result may reach on this instance, as JSON
 * and on the wire: four pages' budget and 1 MiB. A bigger row is refused,
 * not paged: no page could hold it. */
size_t db_row_limit(const db *d);

/* Empties out for a statement that runs again (its columns, rows and
 * flags), keeping its limits. */
void db_rows_clear(db_rows *out);

/* Appends one row to out, written straight into out->text as cJSON would
 * print it: db_row_begin, one db_row_* per column, then db_row_end, which
 * returns 0 when the row fits and -1 when the byte budget is exhausted
 * (the row is dropped and out->truncated set), the row passed max_row
 * (out->oversized set; its values were not written) or memory ran out
 * (out->failed set). */
void db_row_begin(db_rows *out);
void db_row_null(db_rows *out);
void db_row_bool(db_rows *out, int v);
/* A number when exact in a double, else a string (as db_json_int64). */
void db_row_int64(db_rows *out, long long v);
/* A number, or null when not finite (as cJSON prints it). */
void db_row_double(db_rows *out, double v);
/* A string of len bytes (no NUL inside), escaped. */
void db_row_string(db_rows *out, const char *s, size_t len);
/* Any JSON value, taken over and printed; NULL marks out of memory. */
void db_row_json(db_rows *out, cJSON *v);
int db_row_end(db_rows *out);

/* Append raw bytes, or a JSON string of len bytes with its quotes, to
 * out->text outside any row: for a reply built in a db_rows as a buffer.
 * Out of memory sets out->failed. */
void db_rows_put(db_rows *out, const char *s, size_t n);
void db_rows_put_quoted(db_rows *out, const char *s, size_t len);

/* A JSON value for a 64-bit integer: a number when exact in a double, else
 * a string. */
cJSON *db_json_int64(long long v);

/* ---- database.c ---- */

/* Milliseconds on the monotonic clock. */
long long db_now_ms(void);

/* Reports the instance ready or not (why: what is wrong) to a host that
 * knows readiness (ABI 1.1); a 1.0 host never hears of it. Any thread. */
void db_set_ready(db *d, int ready, const char *why);

/* Formats an error message in malloc'd memory into *err (if err). */
void db_errorf(char **err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- sql_scan.c ---- */

/* What the lexer found in one SQL text. */
typedef struct sql_ident {
  char *text;  /* Lower-cased unless quoted; doubled quotes undone. */
  int quoted;  /* Non-zero: written as "x" (or [x], `x` in SQLite). */
  int literal; /* Non-zero: a SQLite string literal, kept because SQLite
                  also takes 'x' where a name goes (FROM 'x'). */
} sql_ident;

typedef struct sql_scan {
  char first[16];    /* First keyword, upper case ("" if none). */
  int statements;    /* Non-empty statements separated by ';'. */
  sql_ident *idents; /* Identifiers and keywords in order. */
  int nidents;
  int unicode_ident; /* A U&"..." identifier was seen. */
  int unterminated;  /* A string, identifier or comment never ended. */
  int unbalanced;    /* A ')' outside strings and comments closed nothing,
                        or a '(' was left open. */
  size_t end;        /* Bytes of the text before its first ';' outside
                        strings and comments (all of it when none). */
} sql_scan;

/* Lexes sql for the given engine. Returns 0, or -1 when out of memory. */
int sql_scan_run(sql_scan *s, const char *sql, db_kind kind);
void sql_scan_free(sql_scan *s);

/* Checks a statement for the query/explain tools (write == 0) or for
 * execute (write != 0) against the engine-independent rules: one
 * statement, allowed first keyword, denied functions, hidden tables.
 * Returns DB_OK or DB_EREFUSED/DB_EINVALID with a message in *err. */
int sql_check(const db *d, const sql_scan *s, int write, char **err);

/* Non-zero if `ident` names a function the plugin never lets run. */
int sql_function_denied(db_kind kind, const char *ident);

/* Non-zero if `ident` names a catalog schema, a relation-naming type or a
 * catalog function the plugin refuses while tables are hidden. */
int sql_catalog_denied(db_kind kind, const char *ident);

/* ---- cursor.c ---- */

/* Makes an opaque cursor for `offset` bound to sql and params, in malloc'd
 * memory. NULL when out of memory. */
char *db_cursor_make(const db *d, const char *sql, const cJSON *params,
                     long offset);

/* Verifies a cursor made by db_cursor_make for the same sql and params and
 * returns its offset in *offset. Returns 0, or -1 for a tampered, foreign or
 * malformed cursor. */
int db_cursor_open(const db *d, const char *cursor, const char *sql,
                   const cJSON *params, long *offset);

#endif
