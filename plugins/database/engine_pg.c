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
 * pipeline (pg_pipe_send): one round trip instead of three. Such a read runs
 * as a statement prepared once per connection, and when a connection is
 * idle it starts on the host's loop thread (pg_query_start: libpq in
 * non-blocking mode, its socket watched by the loop), so it never waits
 * for a worker thread; the rest runs on workers, blocking.
 *
 * libpq is not linked: it and its dependencies (TLS, Kerberos, LDAP) cost
 * about 3.5 MiB of RSS in every host, most of which only use SQLite. The
 * first PostgreSQL instance loads it with dlopen, and every call goes
 * through the table `pq` (pg_conn.c). engine_pg.h lists the engine's
 * files; this one holds the engine's functions and the watcher thread. */
#include "engine_pg.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MS 1000   /* Between connection attempts while down. */
#define HEALTH_MS 10000 /* Between pings while connected. */

/* ---- the watcher thread and the engine's state ---- */

static int pg_ping(db *d, char **err);

/* Readiness must not wait for client traffic: a host that reports not ready
 * gets none. So while the server is down (or not reached yet) this thread
 * tries to connect every RETRY_MS, and while it is up it pings every
 * HEALTH_MS so a server that went away is noticed before a client trips
 * on it. Failures reach pg_note_state through the connection code. */
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
      pg_watch_async(d);
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

  rc = pg_libpq_ready(err);
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
    pg_link_close(&s->conns[i]);
  pg_link_close(&s->writer);
  free(s->conns);
  pg_free_rels(s->rels, s->nrels);
  pg_free_extras(s);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->freed);
  pthread_cond_destroy(&s->wake);
  pthread_mutex_destroy(&s->write_lock);
  pthread_mutex_destroy(&s->rel_lock);
  free(s);
  d->engine_state = NULL;
}

/* ---- engine functions ---- */

/* Streams the client's statement row by row (single-row mode), so a huge
 * result costs no memory: past the limit the rest is cancelled, and a row
 * past the row limit drops the link before libpq has all of it. */
static int stream_rows(db *d, pg_conn *c, const db_request *rq, const char *sql,
                       char **values, int nvalues, db_rows *out, char **err) {
  enum pg_stop stop = PG_RUNNING;
  long long cancel_at = 0;
  PGresult *res;
  long skipped = 0;
  int rc = DB_OK, have_columns = 0, done = 0, taken;
  char buf[256];

  if (!pq.PQsendQueryParams(c->conn, sql, nvalues, NULL,
                            (const char *const *)values, NULL, NULL, 0)) {
    return pg_failure(c, NULL, rq, PG_BROKEN, err);
  }
  pq.PQsetSingleRowMode(c->conn);
  pg_row_cap_start(d, c);
  while (!done && (res = pg_next_result(d, c, rq, &stop, &cancel_at)) != NULL) {
    ExecStatusType st = pq.PQresultStatus(res);
    if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
      if (!have_columns) {
        pg_add_columns(out, res);
        have_columns = 1;
      }
      taken = pg_take_rows(d, res, rq, &skipped, out, err);
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
    pg_drain(d, c, rq, &stop, &cancel_at);
  } else if (stop != PG_RUNNING && rc == DB_OK) {
    rc = pg_failure(c, NULL, rq, stop, err);
  }
  if (stop == PG_BROKEN)
    pg_link_close(c);
  pg_row_cap_end(c);
  return rc;
}

static int pg_query(db *d, const db_request *rq, db_rows *out, char **err) {
  char **values = NULL, *bounded = NULL;
  const char *run;
  int nvalues = 0, rc;
  sql_scan scan;
  pg_conn *c;

  rc = pg_screen(d, rq, 0, &scan, err);
  if (rc != DB_OK)
    return rc;
  rc = pg_bound_sql(d, rq->sql, &scan, &bounded, err);
  if (rc != DB_OK)
    goto cleanup;
  run = bounded != NULL ? bounded : rq->sql;
  rc = pg_param_texts(rq->params, &values, &nvalues, err);
  if (rc != DB_OK)
    goto cleanup;
  if (pg_pipeline_ok(d, &scan)) {
    rc = pg_screen_names(d, &scan, err);
    if (rc == DB_OK)
      rc = pg_pipelined_query(d, rq, run, values, nvalues, out, err);
    goto cleanup;
  }
  c = pg_begin_read(d, rq, err, &rc);
  if (c == NULL)
    goto cleanup;
  rc = pg_screen_plan(d, c, rq, &scan, values, nvalues, err);
  if (rc == DB_OK)
    rc = stream_rows(d, c, rq, run, values, nvalues, out, err);
  pg_end_read(d, c);

cleanup:
  free(bounded);
  pg_free_texts(values, nvalues);
  sql_scan_free(&scan);
  return rc;
}

static int pg_explain(db *d, const db_request *rq, cJSON **plan, char **err) {
  char **values = NULL;
  int nvalues = 0, rc;
  sql_scan scan;
  pg_conn *c;

  *plan = NULL;
  rc = pg_screen(d, rq, 0, &scan, err);
  if (rc != DB_OK)
    return rc;
  rc = pg_param_texts(rq->params, &values, &nvalues, err);
  if (rc != DB_OK)
    goto cleanup;
  c = pg_begin_read(d, rq, err, &rc);
  if (c == NULL)
    goto cleanup;
  rc = pg_screen_plan(d, c, rq, &scan, values, nvalues, err);
  if (rc == DB_OK)
    rc = pg_explain_json(d, c, rq, values, nvalues, 0, plan, err);
  pg_end_read(d, c);

cleanup:
  pg_free_texts(values, nvalues);
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
  rc = pg_screen(d, rq, 1, &scan, err);
  if (rc != DB_OK)
    return rc;
  rc = pg_bound_write(&scan, err);
  if (rc != DB_OK)
    goto cleanup;
  rc = pg_param_texts(rq->params, &values, &nvalues, err);
  if (rc != DB_OK)
    goto cleanup;
  pthread_mutex_lock(&s->write_lock);
  rc = pg_link_open(d, c, 1, err);
  if (rc == DB_OK)
    rc = pg_begin(d, c, rq, 1, err);
  /* A write's plan is checked as a read's: its count of changed rows, or
   * a condition it fails, would tell what a whole-row reference read. */
  if (rc == DB_OK)
    rc = pg_screen_plan(d, c, rq, &scan, values, nvalues, err);
  if (rc != DB_OK)
    goto unlock;
  if (!pq.PQsendQueryParams(c->conn, rq->sql, nvalues, NULL,
                            (const char *const *)values, NULL, NULL, 0)) {
    rc = pg_failure(c, NULL, rq, PG_BROKEN, err);
    goto unlock;
  }
  while ((res = pg_next_result(d, c, rq, &stop, &cancel_at)) != NULL) {
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
  pg_rollback(c);
  if (c->conn != NULL && pq.PQstatus(c->conn) != CONNECTION_OK)
    pg_link_close(c);
  pthread_mutex_unlock(&s->write_lock);
cleanup:
  pg_free_texts(values, nvalues);
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
  c = pg_begin_read(d, rq, err, &rc);
  if (c == NULL)
    return rc;
  /* reltuples is the planner's estimate; -1 before the first ANALYZE,
   * when an exact count stands in. */
  res = pg_run_own(
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
        count = pg_run_own(d, c, rq, sql, 0, NULL, err);
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
  pg_end_read(d, c);
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
  c = pg_begin_read(d, rq, err, &rc);
  if (c == NULL)
    goto cleanup;
  res = pg_run_own(d, c, rq, describe_sql, 2, values, err);
  if (res == NULL)
    rc = DB_EINTERNAL;
  else if (pq.PQntuples(res) == 0)
    rc = DB_ENOTFOUND;
  else if ((*desc = cJSON_Parse(pq.PQgetvalue(res, 0, 0))) == NULL)
    rc = DB_EINTERNAL;
  else
    rc = DB_OK;
  pq.PQclear(res);
  pg_end_read(d, c);
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
  c = pg_begin_read(d, &rq, err, &rc);
  if (c == NULL)
    return rc;
  res = pg_run_own(d, c, &rq, "SELECT 1", 0, NULL, err);
  rc = res != NULL ? DB_OK : DB_EINTERNAL;
  pq.PQclear(res);
  pg_end_read(d, c);
  /* A pooled link that was already open reports nothing on checkout, so
   * after one broken link marked the instance down, a good round trip is
   * what marks it up again. */
  if (rc == DB_OK)
    pg_note_state(d, 1, NULL);
  return rc;
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
