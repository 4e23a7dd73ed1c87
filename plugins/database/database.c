/* database.c: the database foundation plugin. One instance points at one
 * database (SQLite file or PostgreSQL server) and exposes it to clients as
 * typed, bounded, paginated read-only queries, schema introspection and,
 * when the operator enables it, single-statement writes. Other plugins reach
 * the same engine through the "sql" service.
 *
 * This file owns the instance: its tools, resources and service, argument
 * handling, replies. config.c parses its config, rows.c writes result rows
 * as JSON; the engines own connections and every database-specific safety
 * layer. */
#include "db.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SAMPLE_ROWS 10
#define QUOTE_PIECE 4096 /* Bytes reply_json quotes at a time. */

/* ---- shared helpers (db.h) ---- */

long long db_now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void db_set_ready(db *d, int ready, const char *why) {
  if (PH_API_HAS(db_api(d), set_ready))
    db_api(d)->set_ready(d->self, ready, why);
}

void db_errorf(char **err, const char *fmt, ...) {
  va_list ap;
  char *msg = NULL;

  if (err == NULL)
    return;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  free(*err);
  *err = msg;
}

/* Sets one tool's description for this instance; text is taken over. */
static int describe_tool(db *d, const char *tool, char *text) {
  cJSON *o = cJSON_CreateObject();
  char *json = NULL;
  int rc = PH_ENOMEM;

  if (text != NULL && o != NULL &&
      cJSON_AddStringToObject(o, "description", text) != NULL &&
      (json = cJSON_PrintUnformatted(o)) != NULL)
    rc = db_api(d)->configure_tool(d->self, tool, json);
  cJSON_free(json);
  cJSON_Delete(o);
  free(text);
  return rc;
}

/* Tailors the tools to this instance (ABI 1.1): execute is listed only
 * where the operator enabled writes, and the descriptions name the one
 * engine, its placeholders and the configured limits, so a model writes
 * the right dialect the first time. A 1.0 host lists the generic tools;
 * execute then refuses by itself. */
static int configure_tools(db *d) {
  const char *engine = d->engine->name;
  const char *marks = d->kind == DB_POSTGRES ? "$1, $2, ..." : "?";
  char *text;
  int rc;

  if (!PH_API_HAS(db_api(d), configure_tool))
    return PH_OK;
  if (asprintf(&text,
               "Runs one read-only SQL statement (SELECT, WITH, VALUES) on "
               "this %s database and returns typed rows. Write %s SQL with "
               "%s placeholders and the values in params; never splice "
               "values into sql. At most limit rows come back (default %ld, "
               "at most %ld); when truncated is true, call again with the "
               "same sql and params and cursor set to next_cursor for the "
               "next page. Integers beyond 2^53 and exact numerics come as "
               "strings, binary data as base64, timestamps as ISO 8601. "
               "Writes, multiple statements and hidden tables or masked "
               "columns are refused.",
               engine, engine, marks, d->default_limit, d->max_limit) < 0)
    text = NULL;
  rc = describe_tool(d, "query", text);
  if (rc != PH_OK)
    return rc;
  if (asprintf(&text,
               "Shows the plan %s would use for one read-only statement "
               "(%s), without running it. Placeholders are %s, with the "
               "values in params.",
               engine,
               d->kind == DB_POSTGRES ? "EXPLAIN, FORMAT JSON"
                                      : "EXPLAIN QUERY PLAN",
               marks) < 0)
    text = NULL;
  rc = describe_tool(d, "explain", text);
  if (rc != PH_OK)
    return rc;
  if (!d->allow_writes)
    return db_api(d)->configure_tool(d->self, "execute", "{\"enabled\":false}");
  if (asprintf(&text,
               "Runs one INSERT, UPDATE or DELETE (UPDATE and DELETE need a "
               "WHERE clause) on this %s database in its own transaction "
               "and returns affected_rows. Values go in params, with %s "
               "placeholders. A statement that would change more than %lld "
               "rows is rolled back.",
               engine, marks, d->max_affected) < 0)
    text = NULL;
  return describe_tool(d, "execute", text);
}

static int database_init(ph_instance *self, const ph_host_api *api,
                         const char *config_json, void **state) {
  char *err = NULL;
  db *d;

  d = calloc(1, sizeof(*d));
  if (d == NULL)
    return -1;
  d->self = self;
  if (db_parse_config(d, config_json, &err) != 0 ||
      d->engine->open(d, &err) != DB_OK) {
    api->log(self, PH_LOG_ERROR, "database: %s",
             err != NULL ? err : "out of memory");
    free(err);
    if (d->engine_state != NULL)
      d->engine->close(d);
    db_free(d);
    return -1;
  }
  if (configure_tools(d) != PH_OK) {
    api->log(self, PH_LOG_ERROR,
             "database: the host refused the tools' "
             "configuration for this instance");
    d->engine->close(d);
    db_free(d);
    return -1;
  }
  api->log(self, PH_LOG_INFO, "database: %s at %s, writes %s", d->engine->name,
           d->kind == DB_SQLITE ? d->path : "(postgresql)",
           d->allow_writes ? "enabled" : "disabled");
  *state = d;
  return 0;
}

static void database_fini(void *state) {
  db *d = state;

  d->engine->close(d);
  db_free(d);
}

/* ---- requests ---- */

/* Fills rq from arguments shared by query, explain, execute and the
 * service: sql, params, limit, timeout_ms. */
static int request_from_args(db *d, ph_call *call, const cJSON *args,
                             db_request *rq, char **err) {
  const cJSON *sql = cJSON_GetObjectItemCaseSensitive(args, "sql");
  const cJSON *params = cJSON_GetObjectItemCaseSensitive(args, "params");
  const cJSON *limit = cJSON_GetObjectItemCaseSensitive(args, "limit");
  const cJSON *timeout = cJSON_GetObjectItemCaseSensitive(args, "timeout_ms");

  memset(rq, 0, sizeof(*rq));
  rq->call = call;
  if (!cJSON_IsString(sql)) {
    db_errorf(err, "sql: a string with one SQL statement is required");
    return DB_EINVALID;
  }
  if (strlen(sql->valuestring) > d->max_sql) {
    db_errorf(err, "sql: longer than %zu bytes", d->max_sql);
    return DB_EINVALID;
  }
  rq->sql = sql->valuestring;
  if (params != NULL && !cJSON_IsNull(params)) {
    if (!cJSON_IsArray(params)) {
      db_errorf(err, "params: must be an array of values for $1/? "
                     "placeholders");
      return DB_EINVALID;
    }
    rq->params = params;
  }
  rq->limit = d->default_limit;
  if (cJSON_IsNumber(limit))
    rq->limit = limit->valuedouble < 1 ? 1
                : limit->valuedouble > (double)d->max_limit
                    ? d->max_limit
                    : (long)limit->valuedouble;
  else if (limit != NULL && !cJSON_IsNull(limit)) {
    db_errorf(err, "limit: must be an integer");
    return DB_EINVALID;
  }
  rq->timeout_ms = d->default_timeout;
  if (cJSON_IsNumber(timeout))
    rq->timeout_ms = timeout->valuedouble < 1 ? 1
                     : timeout->valuedouble > d->max_timeout
                         ? d->max_timeout
                         : (int)timeout->valuedouble;
  else if (timeout != NULL && !cJSON_IsNull(timeout)) {
    db_errorf(err, "timeout_ms: must be an integer");
    return DB_EINVALID;
  }
  rq->deadline = db_now_ms() + rq->timeout_ms;
  return DB_OK;
}

/* Reads the arguments of a query (and its cursor) into rq and readies
 * out. rq points into args, which must outlive it. */
static int query_prepare(db *d, ph_call *call, const cJSON *args,
                         db_request *rq, db_rows *out, char **err) {
  const cJSON *cursor = cJSON_GetObjectItemCaseSensitive(args, "cursor");
  int rc;

  memset(out, 0, sizeof(*out));
  rc = request_from_args(d, call, args, rq, err);
  if (rc != DB_OK)
    return rc;
  if (cJSON_IsString(cursor) && cursor->valuestring[0] != '\0') {
    if (db_cursor_open(d, cursor->valuestring, rq->sql, rq->params,
                       &rq->offset) != 0) {
      db_errorf(err, "Invalid cursor: it was not issued by this server for "
                     "this exact statement and parameters");
      return DB_EREFUSED;
    }
  } else if (cursor != NULL && !cJSON_IsNull(cursor) &&
             !cJSON_IsString(cursor)) {
    db_errorf(err, "cursor: must be a string from next_cursor");
    return DB_EINVALID;
  }
  out->columns = cJSON_CreateArray();
  out->max_bytes = d->max_bytes;
  out->max_row = db_row_limit(d);
  if (out->columns == NULL) {
    db_errorf(err, "out of memory");
    return DB_EINTERNAL;
  }
  return DB_OK;
}

/* Frees what query_prepare and the engine put in out. */
static void rows_free(db_rows *out) {
  cJSON_Delete(out->columns);
  free(out->text);
  memset(out, 0, sizeof(*out));
}

/* After the engine ran (rc): *json is the result {columns, rows,
 * row_count, truncated, next_cursor} as JSON text (malloc'd), the rows
 * copied in as the engine wrote them. Frees out. */
static int query_result(db *d, const db_request *rq, db_rows *out, int rc,
                        char **json, char **err) {
  char *next = NULL, *columns = NULL, tail[96];
  db_rows page = {0};

  *json = NULL;
  if (rc == DB_OK && out->failed) {
    rc = DB_EINTERNAL;
    db_errorf(err, "out of memory");
  }
  if (rc == DB_OK && out->oversized) {
    rc = DB_EREFUSED;
    db_errorf(err,
              "A row of this result is larger than %zu bytes, the limit of "
              "a row (4 x max_result_bytes + 1 MiB); select fewer or "
              "smaller values",
              out->max_row);
  }
  if (rc != DB_OK)
    goto cleanup;
  if (out->truncated) {
    next = db_cursor_make(d, rq->sql, rq->params, rq->offset + out->count);
    if (next == NULL) {
      rc = DB_EINTERNAL;
      db_errorf(err, "out of memory");
      goto cleanup;
    }
  }
  /* The keys in the order cJSON printed them when this was a tree. */
  columns = cJSON_PrintUnformatted(out->columns);
  if (columns == NULL) {
    rc = DB_EINTERNAL;
    db_errorf(err, "out of memory");
    goto cleanup;
  }
  db_rows_put(&page, "{\"columns\":", 11);
  db_rows_put(&page, columns, strlen(columns));
  db_rows_put(&page, ",\"rows\":[", 9);
  if (out->len > 0)
    db_rows_put(&page, out->text, out->len);
  snprintf(tail, sizeof(tail),
           "],\"row_count\":%ld,\"truncated\":%s,"
           "\"next_cursor\":",
           out->count, out->truncated ? "true" : "false");
  db_rows_put(&page, tail, strlen(tail));
  if (next != NULL)
    db_rows_put_quoted(&page, next, strlen(next));
  else
    db_rows_put(&page, "null", 4);
  db_rows_put(&page, "}", 2); /* With the NUL. */
  if (page.failed) {
    rc = DB_EINTERNAL;
    db_errorf(err, "out of memory");
    goto cleanup;
  }
  *json = page.text;
  page.text = NULL;

cleanup:
  free(page.text);
  free(next);
  cJSON_free(columns);
  rows_free(out);
  return rc;
}

/* Runs a read-only query from tool or service arguments on this thread
 * (see query_result for *json). */
static int query_json(db *d, ph_call *call, const cJSON *args, char **json,
                      char **err) {
  db_rows out;
  db_request rq;
  int rc;

  *json = NULL;
  rc = query_prepare(d, call, args, &rq, &out, err);
  if (rc == DB_OK)
    rc = d->engine->query(d, &rq, &out, err);
  return query_result(d, &rq, &out, rc, json, err);
}

/* query_json as a cJSON tree, for callers that edit or embed the result. */
static int run_query(db *d, ph_call *call, const cJSON *args, cJSON **result,
                     char **err) {
  char *json;
  int rc;

  *result = NULL;
  rc = query_json(d, call, args, &json, err);
  if (rc != DB_OK)
    return rc;
  *result = cJSON_Parse(json);
  free(json);
  if (*result == NULL) {
    db_errorf(err, "out of memory");
    return DB_EINTERNAL;
  }
  return DB_OK;
}

/* A request for the plugin's own catalog work (list, describe, schema). */
static void catalog_request(db *d, ph_call *call, db_request *rq) {
  memset(rq, 0, sizeof(*rq));
  rq->call = call;
  rq->introspect = 1;
  rq->timeout_ms = d->max_timeout;
  rq->deadline = db_now_ms() + rq->timeout_ms;
}

/* A growable string for building SQL. */
typedef struct sqlbuf {
  char *buf;
  size_t len, cap;
  int failed;
} sqlbuf;

/* Appends s, as a quoted identifier ("a""b") when quoted is non-zero. */
static void sqlbuf_add(sqlbuf *t, const char *s, int quoted) {
  size_t need = t->len + 2 * strlen(s) + 3;
  char *grown;

  if (t->failed)
    return;
  if (need > t->cap) {
    grown = realloc(t->buf, need * 2);
    if (grown == NULL) {
      t->failed = 1;
      return;
    }
    t->buf = grown;
    t->cap = need * 2;
  }
  if (quoted)
    t->buf[t->len++] = '"';
  for (; *s != '\0'; s++) {
    if (quoted && *s == '"')
      t->buf[t->len++] = '"';
    t->buf[t->len++] = *s;
  }
  if (quoted)
    t->buf[t->len++] = '"';
  t->buf[t->len] = '\0';
}

/* Sample rows of a described table: only the columns describe returned,
 * so masked ones are never selected. *sample stays NULL when every column
 * is masked. */
static int sample_rows(db *d, ph_call *call, const cJSON *desc, cJSON **sample,
                       char **err) {
  const cJSON *columns = cJSON_GetObjectItemCaseSensitive(desc, "columns");
  const char *schema =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(desc, "schema"));
  const char *name =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(desc, "name"));
  const cJSON *col;
  cJSON *args = NULL;
  sqlbuf sql = {0};
  int rc = DB_EINTERNAL, first = 1;

  *sample = NULL;
  if (name == NULL)
    goto cleanup;
  sqlbuf_add(&sql, "SELECT ", 0);
  cJSON_ArrayForEach(col, columns) {
    const char *cname =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(col, "name"));
    if (cname == NULL)
      continue;
    if (!first)
      sqlbuf_add(&sql, ", ", 0);
    sqlbuf_add(&sql, cname, 1);
    first = 0;
  }
  if (first) {
    rc = DB_OK;
    goto cleanup;
  }
  sqlbuf_add(&sql, " FROM ", 0);
  if (schema != NULL) {
    sqlbuf_add(&sql, schema, 1);
    sqlbuf_add(&sql, ".", 0);
  }
  sqlbuf_add(&sql, name, 1);
  args = cJSON_CreateObject();
  if (sql.failed || args == NULL)
    goto cleanup;
  cJSON_AddStringToObject(args, "sql", sql.buf);
  cJSON_AddNumberToObject(args, "limit", SAMPLE_ROWS);
  rc = run_query(d, call, args, sample, err);
  if (rc == DB_OK)
    cJSON_DeleteItemFromObject(*sample, "next_cursor");

cleanup:
  if (rc == DB_EINTERNAL && err != NULL && *err == NULL)
    db_errorf(err, "out of memory");
  cJSON_Delete(args);
  free(sql.buf);
  return rc;
}

/* ---- tool replies ---- */

/* Writes the len bytes of s escaped as the body of a JSON string at o, a
 * piece at a time, and returns the end, or NULL when a piece might not fit
 * before limit (ph_json_escape needs six bytes a byte at worst). */
static char *quote_into(char *o, const char *limit, const char *s, size_t len) {
  size_t n;

  while (len > 0) {
    n = len < QUOTE_PIECE ? len : QUOTE_PIECE;
    if ((size_t)(limit - o) < 6 * n)
      return NULL;
    o = ph_json_escape(o, s, n);
    s += n;
    len -= n;
  }
  return o;
}

/* Replies the JSON text of a result as structuredContent and, quoted, as a
 * text block (what ph_reply_structured does), but in one buffer: a page
 * of rows is tens of kilobytes, and appending it a byte at a time to a
 * doubling buffer was a large share of the plugin's CPU per request. JSON
 * text holds no control characters, so quoting it at most doubles it:
 * twice its length and one piece's worst case always hold it, and the
 * exact worst case is only needed if it somehow does not. */
static void reply_json(db *d, ph_call *call, const char *text) {
  static const char head[] = "{\"content\":[{\"type\":\"text\",\"text\":\"";
  static const char middle[] = "\"}],\"structuredContent\":";
  size_t len = strlen(text), quoted = len * 2 + 6 * QUOTE_PIECE, size;
  char *json, *o = NULL;
  int attempt;

  for (attempt = 0; attempt < 2 && o == NULL; attempt++) {
    if (attempt == 1)
      quoted = len * 6;
    size = sizeof(head) - 1 + quoted + sizeof(middle) - 1 + len + 2;
    json = db_api(d)->alloc(size);
    if (json == NULL) {
      ph_reply_text(db_api(d), call, "out of memory", 1);
      return;
    }
    memcpy(json, head, sizeof(head) - 1);
    o = quote_into(json + sizeof(head) - 1, json + sizeof(head) - 1 + quoted,
                   text, len);
    if (o == NULL)
      db_api(d)->free(json);
  }
  memcpy(o, middle, sizeof(middle) - 1);
  o += sizeof(middle) - 1;
  memcpy(o, text, len);
  o += len;
  *o++ = '}';
  *o = '\0';
  db_api(d)->reply(call, json);
  db_api(d)->free(json);
}

/* reply_json of a result built as a cJSON tree. */
static void reply_structured(db *d, ph_call *call, cJSON *result) {
  char *text = cJSON_PrintUnformatted(result);

  if (text == NULL) {
    ph_reply_text(db_api(d), call, "out of memory", 1);
    return;
  }
  reply_json(d, call, text);
  cJSON_free(text);
}

static void reply_failure(db *d, ph_call *call, int rc, const char *err) {
  (void)rc;
  ph_reply_text(db_api(d), call, err != NULL ? err : "database error", 1);
}

static cJSON *parse_args(db *d, ph_call *call, const char *args_json) {
  cJSON *args = cJSON_Parse(args_json != NULL ? args_json : "{}");

  if (!cJSON_IsObject(args)) {
    cJSON_Delete(args);
    ph_reply_text(db_api(d), call, "arguments must be a JSON object", 1);
    return NULL;
  }
  return args;
}

/* A db_query call in progress: what the loop started, or a worker runs. */
typedef struct query_job {
  db *d;
  ph_call *call;
  cJSON *args; /* rq points into it. */
  db_request rq;
  db_rows out;
} query_job;

static void job_free(query_job *job) {
  rows_free(&job->out);
  cJSON_Delete(job->args);
  free(job);
}

/* Replies the result of the engine's run (rc, err) and frees the job. */
static void job_reply(query_job *job, int rc, char *err) {
  char *json = NULL;

  rc = query_result(job->d, &job->rq, &job->out, rc, &json, &err);
  if (rc == DB_OK)
    reply_json(job->d, job->call, json);
  else
    reply_failure(job->d, job->call, rc, err);
  free(json);
  free(err);
  job_free(job);
}

/* A worker: the read the loop could not start (or had to give back). */
static void query_in_pool(ph_call *call, void *arg) {
  query_job *job = arg;
  char *err = NULL;
  int rc;

  (void)call;
  if (ph_call_api(job->call)->cancelled(job->call)) {
    job_reply(job, DB_ECANCELED, strdup("Query cancelled by the client"));
    return;
  }
  rc = job->d->engine->query(job->d, &job->rq, &job->out, &err);
  job_reply(job, rc, err);
}

static void to_pool(query_job *job) {
  if (ph_call_api(job->call)->run_in_pool(job->call, query_in_pool, job) !=
      PH_OK)
    job_reply(job, DB_EINTERNAL,
              strdup("The database is busy: too many queries queued; "
                     "try again"));
}

/* The loop: how a read the engine started there ended. */
static void query_done(void *ctx, int rc, char *err) {
  query_job *job = ctx;

  if (rc != DB_EAGAIN) {
    job_reply(job, rc, err);
    return;
  }
  free(err);
  /* Start over on a worker, from an empty page. */
  rows_free(&job->out);
  job->out.columns = cJSON_CreateArray();
  job->out.max_bytes = job->d->max_bytes;
  job->out.max_row = db_row_limit(job->d);
  if (job->out.columns == NULL) {
    job_reply(job, DB_EINTERNAL, strdup("out of memory"));
    return;
  }
  to_pool(job);
}

/* Runs on the loop (the tool is inline): arguments, cursor and the SQL
 * checks are quick; an engine that can read without blocking
 * (query_start: PostgreSQL with an idle connection) starts there, and
 * everything else goes to a worker. */
static void tool_query(ph_call *call, const char *args_json, void *state) {
  db *d = state;
  query_job *job;
  char *err = NULL;
  int rc;

  job = calloc(1, sizeof(*job));
  if (job == NULL) {
    ph_reply_text(db_api(d), call, "out of memory", 1);
    return;
  }
  job->d = d;
  job->call = call;
  job->args = parse_args(d, call, args_json);
  if (job->args == NULL) {
    free(job);
    return;
  }
  rc = query_prepare(d, call, job->args, &job->rq, &job->out, &err);
  if (rc == DB_OK && d->engine->query_start != NULL) {
    rc = d->engine->query_start(d, &job->rq, &job->out, query_done, job, &err);
    if (rc == DB_OK)
      return; /* query_done has the job. */
  } else if (rc == DB_OK) {
    rc = DB_EAGAIN;
  }
  if (rc != DB_EAGAIN) {
    job_reply(job, rc, err);
    return;
  }
  free(err);
  to_pool(job);
}

static void tool_explain(ph_call *call, const char *args_json, void *state) {
  db *d = state;
  cJSON *args, *plan = NULL, *result = NULL;
  db_request rq;
  char *err = NULL;
  int rc;

  args = parse_args(d, call, args_json);
  if (args == NULL)
    return;
  rc = request_from_args(d, call, args, &rq, &err);
  if (rc == DB_OK)
    rc = d->engine->explain(d, &rq, &plan, &err);
  if (rc == DB_OK && (result = cJSON_CreateObject()) != NULL) {
    cJSON_AddStringToObject(result, "engine", d->engine->name);
    cJSON_AddItemToObject(result, "plan", plan);
    plan = NULL;
    reply_structured(d, call, result);
  } else {
    reply_failure(d, call, rc, err);
  }
  cJSON_Delete(plan);
  cJSON_Delete(result);
  cJSON_Delete(args);
  free(err);
}

static void tool_execute(ph_call *call, const char *args_json, void *state) {
  db *d = state;
  cJSON *args, *result = NULL;
  long long affected = 0;
  db_request rq;
  char *err = NULL;
  int rc;

  if (!d->allow_writes) {
    ph_reply_text(db_api(d), call,
                  "Writes are disabled for this database: the operator has "
                  "not set \"allow_writes\": true in its config",
                  1);
    return;
  }
  args = parse_args(d, call, args_json);
  if (args == NULL)
    return;
  rc = request_from_args(d, call, args, &rq, &err);
  if (rc == DB_OK)
    rc = d->engine->execute(d, &rq, &affected, &err);
  if (rc == DB_OK && (result = cJSON_CreateObject()) != NULL) {
    cJSON_AddItemToObject(result, "affected_rows", db_json_int64(affected));
    reply_structured(d, call, result);
  } else {
    reply_failure(d, call, rc, err);
  }
  cJSON_Delete(result);
  cJSON_Delete(args);
  free(err);
}

static void tool_list_tables(ph_call *call, const char *args_json,
                             void *state) {
  db *d = state;
  cJSON *tables = NULL, *result = NULL;
  db_request rq;
  char *err = NULL;
  int rc;

  (void)args_json;
  catalog_request(d, call, &rq);
  rc = d->engine->list_tables(d, &rq, &tables, &err);
  if (rc == DB_OK && (result = cJSON_CreateObject()) != NULL) {
    cJSON_AddStringToObject(result, "engine", d->engine->name);
    cJSON_AddItemToObject(result, "tables", tables);
    tables = NULL;
    reply_structured(d, call, result);
  } else {
    reply_failure(d, call, rc, err);
  }
  cJSON_Delete(tables);
  cJSON_Delete(result);
  free(err);
}

static void tool_describe_table(ph_call *call, const char *args_json,
                                void *state) {
  db *d = state;
  cJSON *args, *desc = NULL;
  const char *table;
  db_request rq;
  char *err = NULL;
  int rc;

  args = parse_args(d, call, args_json);
  if (args == NULL)
    return;
  table = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(args, "table"));
  if (table == NULL || *table == '\0') {
    ph_reply_text(db_api(d), call, "table: the name of a table is required", 1);
    goto cleanup;
  }
  catalog_request(d, call, &rq);
  rc = d->engine->describe(d, &rq, table, &desc, &err);
  if (rc == DB_OK)
    reply_structured(d, call, desc);
  else if (rc == DB_ENOTFOUND)
    ph_reply_textf(db_api(d), call, 1, "Table '%s' does not exist", table);
  else
    reply_failure(d, call, rc, err);

cleanup:
  cJSON_Delete(desc);
  cJSON_Delete(args);
  free(err);
}

/* ---- resources ---- */

/* The whole schema: every visible table, described. */
static int whole_schema(db *d, ph_call *call, cJSON **schema, char **err) {
  cJSON *tables = NULL, *list, *item, *desc;
  db_request rq;
  int rc;

  *schema = NULL;
  catalog_request(d, call, &rq);
  rc = d->engine->list_tables(d, &rq, &tables, err);
  if (rc != DB_OK)
    return rc;
  *schema = cJSON_CreateObject();
  list = cJSON_AddArrayToObject(*schema, "tables");
  if (*schema == NULL || list == NULL) {
    cJSON_Delete(tables);
    return DB_EINTERNAL;
  }
  cJSON_AddStringToObject(*schema, "engine", d->engine->name);
  cJSON_ArrayForEach(item, tables) {
    const char *name =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "name"));
    if (name == NULL)
      continue;
    rc = d->engine->describe(d, &rq, name, &desc, err);
    if (rc == DB_ENOTFOUND)
      continue; /* Dropped meanwhile. */
    if (rc != DB_OK)
      break;
    cJSON_AddItemToArray(list, desc);
  }
  cJSON_Delete(tables);
  if (rc == DB_ENOTFOUND)
    rc = DB_OK;
  if (rc != DB_OK) {
    cJSON_Delete(*schema);
    *schema = NULL;
  }
  return rc;
}

static void reply_json_resource(db *d, ph_call *call, const char *uri,
                                const cJSON *value) {
  char *text = cJSON_PrintUnformatted(value);

  if (text == NULL) {
    db_api(d)->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
    return;
  }
  ph_reply_resource_text(db_api(d), call, uri, "application/json", text);
  cJSON_free(text);
}

static void read_schema(ph_call *call, const char *uri, const char *vars_json,
                        void *state) {
  db *d = state;
  cJSON *schema = NULL;
  char *err = NULL;

  (void)vars_json;
  if (whole_schema(d, call, &schema, &err) == DB_OK)
    reply_json_resource(d, call, uri, schema);
  else
    db_api(d)->reply_error(call, PH_RPC_INTERNAL_ERROR,
                           err != NULL ? err : "database error", NULL);
  cJSON_Delete(schema);
  free(err);
}

static void read_table(ph_call *call, const char *uri, const char *vars_json,
                       void *state) {
  db *d = state;
  cJSON *vars = cJSON_Parse(vars_json), *desc = NULL, *sample = NULL;
  const char *table;
  db_request rq;
  char *err = NULL, *msg = NULL;
  int rc;

  table = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(vars, "table"));
  if (table == NULL || *table == '\0') {
    db_api(d)->reply_error(call, PH_RPC_INVALID_PARAMS, "no table in the URI",
                           NULL);
    goto cleanup;
  }
  catalog_request(d, call, &rq);
  rc = d->engine->describe(d, &rq, table, &desc, &err);
  if (rc == DB_OK)
    rc = sample_rows(d, call, desc, &sample, &err);
  if (rc == DB_OK) {
    if (sample != NULL)
      cJSON_AddItemToObject(desc, "sample", sample);
    sample = NULL;
    reply_json_resource(d, call, uri, desc);
  } else if (rc == DB_ENOTFOUND) {
    if (asprintf(&msg, "Table '%s' does not exist", table) < 0)
      msg = NULL;
    db_api(d)->reply_error(call, PH_RPC_RESOURCE_NOT_FOUND,
                           msg != NULL ? msg : "no such table", NULL);
  } else {
    db_api(d)->reply_error(call, PH_RPC_INTERNAL_ERROR,
                           err != NULL ? err : "database error", NULL);
  }

cleanup:
  cJSON_Delete(sample);
  cJSON_Delete(desc);
  cJSON_Delete(vars);
  free(msg);
  free(err);
}

static void complete_table(ph_call *call, const char *arg, const char *value,
                           const char *context_json, void *state) {
  db *d = state;
  cJSON *tables = NULL, *item, *result, *values;
  size_t prefix = value != NULL ? strlen(value) : 0;
  db_request rq;
  char *err = NULL, *text;
  int total = 0;

  (void)arg;
  (void)context_json;
  result = cJSON_CreateObject();
  values = cJSON_AddArrayToObject(result, "values");
  catalog_request(d, call, &rq);
  if (values != NULL &&
      d->engine->list_tables(d, &rq, &tables, &err) == DB_OK) {
    cJSON_ArrayForEach(item, tables) {
      const char *name =
          cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "name"));
      if (name == NULL || strncmp(name, value ? value : "", prefix) != 0)
        continue;
      if (total++ < 100)
        cJSON_AddItemToArray(values, cJSON_CreateString(name));
    }
  }
  cJSON_AddNumberToObject(result, "total", total);
  cJSON_AddBoolToObject(result, "hasMore", total > 100);
  text = cJSON_PrintUnformatted(result);
  if (text != NULL)
    db_api(d)->reply(call, text);
  else
    db_api(d)->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
  cJSON_free(text);
  cJSON_Delete(result);
  cJSON_Delete(tables);
  free(err);
}

/* ---- the "sql" service ---- */

static const char *failure_reason(int rc) {
  switch (rc) {
  case DB_EREFUSED:
    return "refused";
  case DB_EINVALID:
    return "invalid";
  case DB_ETIMEOUT:
    return "timeout";
  case DB_ECANCELED:
    return "cancelled";
  case DB_ENOTFOUND:
    return "not_found";
  default:
    return "internal";
  }
}

/* Requests: {"sql","params","limit","timeout_ms","cursor"} answers like the
 * query tool's structuredContent; {"op":"tables"}, {"op":"describe",
 * "table"}, {"op":"explain","sql",...} and {"op":"ping"} reach the rest.
 * Failures are JSON-RPC errors whose data.reason says which kind. */
static void serve_sql(ph_call *call, const char *service,
                      const char *request_json, void *state) {
  db *d = state;
  cJSON *req = cJSON_Parse(request_json), *result = NULL, *value = NULL;
  const char *op;
  db_request rq;
  char *err = NULL, *text, data[64];
  int rc = DB_EINVALID;

  (void)service;
  if (!cJSON_IsObject(req)) {
    db_errorf(&err, "the sql service takes a JSON object");
    goto done;
  }
  op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "op"));
  if (op == NULL || strcmp(op, "query") == 0) {
    rc = run_query(d, call, req, &result, &err);
  } else if (strcmp(op, "tables") == 0) {
    catalog_request(d, call, &rq);
    rc = d->engine->list_tables(d, &rq, &value, &err);
  } else if (strcmp(op, "describe") == 0) {
    const char *table =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "table"));
    catalog_request(d, call, &rq);
    rc = table == NULL ? DB_EINVALID
                       : d->engine->describe(d, &rq, table, &result, &err);
    if (rc == DB_ENOTFOUND)
      db_errorf(&err, "Table '%s' does not exist", table);
    else if (table == NULL)
      db_errorf(&err, "describe needs \"table\"");
  } else if (strcmp(op, "explain") == 0) {
    rc = request_from_args(d, call, req, &rq, &err);
    if (rc == DB_OK)
      rc = d->engine->explain(d, &rq, &value, &err);
  } else if (strcmp(op, "ping") == 0) {
    rc = d->engine->ping(d, &err);
  } else {
    db_errorf(&err, "unknown op '%s'", op);
  }
  if (rc == DB_OK && result == NULL) {
    result = cJSON_CreateObject();
    if (result != NULL) {
      cJSON_AddStringToObject(result, "engine", d->engine->name);
      if (value != NULL)
        cJSON_AddItemToObject(
            result, op != NULL && strcmp(op, "tables") == 0 ? "tables" : "plan",
            value);
      else
        cJSON_AddBoolToObject(result, "ready", 1);
      value = NULL;
    }
  }

done:
  if (rc == DB_OK && result != NULL &&
      (text = cJSON_PrintUnformatted(result)) != NULL) {
    db_api(d)->reply(call, text);
    cJSON_free(text);
  } else {
    snprintf(data, sizeof(data), "{\"reason\":\"%s\"}", failure_reason(rc));
    db_api(d)->reply_error(call,
                           rc == DB_EREFUSED || rc == DB_EINVALID ||
                                   rc == DB_ENOTFOUND
                               ? PH_RPC_INVALID_PARAMS
                               : PH_RPC_INTERNAL_ERROR,
                           err != NULL ? err : "database error", data);
  }
  cJSON_Delete(value);
  cJSON_Delete(result);
  cJSON_Delete(req);
  free(err);
}

/* ---- the descriptor ---- */

#define ROWS_SCHEMA                                                            \
  "{\"type\":\"object\",\"properties\":{"                                      \
  "\"columns\":{\"type\":\"array\",\"items\":{\"type\":\"object\","            \
  "\"properties\":{\"name\":{\"type\":\"string\"},"                            \
  "\"type\":{\"type\":\"string\"}},\"required\":[\"name\",\"type\"]}},"        \
  "\"rows\":{\"type\":\"array\",\"items\":{\"type\":\"array\"}},"              \
  "\"row_count\":{\"type\":\"integer\",\"minimum\":0},"                        \
  "\"truncated\":{\"type\":\"boolean\"},"                                      \
  "\"next_cursor\":{\"type\":[\"string\",\"null\"]}},"                         \
  "\"required\":[\"columns\",\"rows\",\"row_count\",\"truncated\","            \
  "\"next_cursor\"]}"

#define SQL_ARGS                                                               \
  "\"sql\":{\"type\":\"string\",\"minLength\":1,"                              \
  "\"description\":\"One SQL statement.\"},"                                   \
  "\"params\":{\"type\":\"array\",\"description\":\"Values for the "           \
  "positional placeholders, in order: ? in SQLite, $1, $2, ... in "            \
  "PostgreSQL. Never splice values into sql.\"},"                              \
  "\"timeout_ms\":{\"type\":\"integer\",\"minimum\":1,\"description\":"        \
  "\"Time limit in milliseconds; default 5000, at most 30000 "                 \
  "(clamped).\"}"

static const ph_tool database_tools[] = {
    {.name = "list_tables",
     .title = "List tables",
     .description =
         "Lists the tables and views of the database (SQLite or "
         "PostgreSQL: the result's \"engine\" says which) with row "
         "estimates and comments. Tables the operator hid are not listed.",
     .input_schema = "{\"type\":\"object\",\"properties\":{},"
                     "\"additionalProperties\":false}",
     .annotations = {PH_HINT_TRUE, PH_HINT_FALSE, PH_HINT_TRUE, PH_HINT_FALSE},
     .timeout_ms = 35000,
     .handler = tool_list_tables},
    {.name = "describe_table",
     .title = "Describe a table",
     .description = "Describes one table or view: columns (type, "
                    "nullability, default), primary key, foreign keys and "
                    "indexes. Masked columns are left out.",
     .input_schema =
         "{\"type\":\"object\",\"properties\":{\"table\":{\"type\":"
         "\"string\",\"minLength\":1,\"description\":\"Table name, as "
         "list_tables shows it (PostgreSQL: schema.table outside "
         "public).\"}},\"required\":[\"table\"],"
         "\"additionalProperties\":false}",
     .annotations = {PH_HINT_TRUE, PH_HINT_FALSE, PH_HINT_TRUE, PH_HINT_FALSE},
     .timeout_ms = 35000,
     .handler = tool_describe_table},
    {.name = "query",
     .title = "Run a read-only SQL query",
     .description =
         "Runs one read-only SQL statement (SELECT, WITH, VALUES) and "
         "returns typed rows. The engine is SQLite or PostgreSQL (see "
         "list_tables): use its dialect and its placeholders, ? for SQLite "
         "and $1, $2, ... for PostgreSQL, with the values in params. At most "
         "limit rows come back (default 100, at most 10000); when "
         "truncated is true, call again with the same sql and params and "
         "cursor set to next_cursor for the next page. Integers beyond "
         "2^53 and exact numerics come as strings, binary data as base64, "
         "timestamps as ISO 8601. Writes, multiple statements and hidden "
         "tables or masked columns are refused.",
     .input_schema =
         "{\"type\":\"object\",\"properties\":{" SQL_ARGS ","
         "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"description\":"
         "\"Rows per page; default 100, at most 10000 (clamped).\"},"
         "\"cursor\":{\"type\":\"string\",\"description\":\"next_cursor "
         "of the previous page of the same statement.\"}},"
         "\"required\":[\"sql\"],\"additionalProperties\":false}",
     .output_schema = ROWS_SCHEMA,
     .annotations = {PH_HINT_TRUE, PH_HINT_FALSE, PH_HINT_TRUE, PH_HINT_FALSE},
     .timeout_ms = 35000,
     .run_inline = 1,
     .handler = tool_query},
    {.name = "explain",
     .title = "Explain a query plan",
     .description = "Shows the plan the engine (SQLite: EXPLAIN QUERY "
                    "PLAN; PostgreSQL: EXPLAIN in JSON) would use for one "
                    "read-only statement, without running it.",
     .input_schema = "{\"type\":\"object\",\"properties\":{" SQL_ARGS "},"
                     "\"required\":[\"sql\"],\"additionalProperties\":false}",
     .annotations = {PH_HINT_TRUE, PH_HINT_FALSE, PH_HINT_TRUE, PH_HINT_FALSE},
     .timeout_ms = 35000,
     .handler = tool_explain},
    {.name = "execute",
     .title = "Run one write statement",
     .description =
         "Runs one INSERT, UPDATE or DELETE (UPDATE and DELETE need a "
         "WHERE clause) in its own transaction and returns affected_rows. "
         "Values go in params (? in SQLite, $1 in PostgreSQL). Refused "
         "unless the operator enabled writes for this database; changing "
         "more rows than the configured maximum rolls back.",
     .input_schema = "{\"type\":\"object\",\"properties\":{" SQL_ARGS "},"
                     "\"required\":[\"sql\"],\"additionalProperties\":false}",
     .output_schema = "{\"type\":\"object\",\"properties\":{\"affected_rows\":"
                      "{\"type\":[\"integer\",\"string\"]}},"
                      "\"required\":[\"affected_rows\"]}",
     .annotations = {PH_HINT_FALSE, PH_HINT_TRUE, PH_HINT_FALSE, PH_HINT_FALSE},
     .required_scope = "db:write",
     .timeout_ms = 35000,
     .handler = tool_execute},
    {0}};

static const ph_resource database_resources[] = {
    {.uri = "db://schema",
     .name = "schema",
     .title = "Database schema",
     .description = "Every visible table and view with columns, keys and "
                    "indexes, as JSON. Hidden tables and masked columns "
                    "are left out.",
     .mime_type = "application/json",
     .handler = read_schema},
    {0}};

static const ph_resource_template database_templates[] = {
    {.uri_template = "db://tables/{table}",
     .name = "table",
     .title = "One table",
     .description = "One table's schema and up to 10 sample rows, as JSON.",
     .mime_type = "application/json",
     .handler = read_table,
     .complete = complete_table},
    {0}};

static const char *const database_provides[] = {"sql", NULL};

PH_PLUGIN(.name = "database", .version = "1.0.0",
          .description = "SQLite and PostgreSQL: safe, typed, paginated "
                         "read-only SQL; the sql service",
          .provides = database_provides, .init = database_init,
          .fini = database_fini, .tools = database_tools,
          .resources = database_resources, .templates = database_templates,
          .service = serve_sql)
