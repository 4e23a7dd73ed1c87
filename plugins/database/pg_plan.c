/* pg_plan.c: what the PostgreSQL engine checks before a client's statement
 * runs. The lexer's rules (sql_scan.c) first; then a catalog snapshot, at
 * most SENSITIVE_TTL_MS old, of the relations that are hidden, are views
 * or have masked columns (and of the names that would tell a hidden table
 * exists); and for a statement that names one of them, the plan check:
 * EXPLAIN (VERBOSE, FORMAT JSON) searched for a scan of a hidden relation,
 * a use of a masked column or of the whole row of its table, and an
 * ordered walk of an index that holds one (README, "Masked columns"). */
#include "engine_pg.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

void pg_free_rels(pg_rel *rels, int n) {
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
void pg_free_extras(pg_state *s) {
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

  res = pg_run_own(
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
  res = pg_run_own(d, c, rq,
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
  res = pg_run_own(d, c, rq,
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
    pg_free_rels(rels, nrels);
    pg_free_extras(&extras);
    return DB_EINTERNAL;
  }
  /* pg_screen_names looks them up by bsearch (neither takes an empty list,
   * whose pointer is NULL). */
  if (extras.nhidden_names > 0)
    qsort(extras.hidden_names, (size_t)extras.nhidden_names, sizeof(char *),
          by_name);
  if (extras.ncatalog_names > 0)
    qsort(extras.catalog_names, (size_t)extras.ncatalog_names, sizeof(char *),
          by_name);
  pthread_mutex_lock(&s->rel_lock);
  pg_free_rels(s->rels, s->nrels);
  pg_free_extras(s);
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
int pg_needs_plan_check(db *d, const sql_scan *scan) {
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
int pg_explain_json(db *d, pg_conn *c, const db_request *rq, char **values,
                    int nvalues, int verbose, cJSON **plan, char **err) {
  PGresult *res;
  char *sql;

  *plan = NULL;
  if (asprintf(&sql, "EXPLAIN (%sFORMAT JSON) %s", verbose ? "VERBOSE, " : "",
               rq->sql) < 0)
    return DB_EINTERNAL;
  res = pg_run_own(d, c, rq, sql, nvalues, (const char *const *)values, err);
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
 * caller owns *scan (sql_scan_free) and passes it to pg_screen_plan. */
int pg_screen(db *d, const db_request *rq, int write, sql_scan *scan,
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
int pg_screen_names(db *d, const sql_scan *scan, char **err) {
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
int pg_screen_plan(db *d, pg_conn *c, const db_request *rq,
                   const sql_scan *scan, char **values, int nvalues,
                   char **err) {
  cJSON *plan = NULL;
  int rc;

  rc = load_rels(d, c, rq, err);
  if (rc == DB_OK)
    rc = pg_screen_names(d, scan, err);
  if (rc == DB_OK && pg_needs_plan_check(d, scan)) {
    rc = pg_explain_json(d, c, rq, values, nvalues, 1, &plan, err);
    if (rc == DB_OK)
      rc = check_plan(d, plan, err);
  }
  cJSON_Delete(plan);
  return rc;
}
