/* sqlite_plan.c: what a SQLite statement's program reads, checked against
 * the hidden tables and masked columns.
 *
 * The authorizer (engine_sqlite.c) sees the names a statement resolves,
 * not everything it reads: the column a USING or NATURAL join merges is
 * compared, and in a FULL JOIN returned, without ever being resolved as a
 * read, and a table joined only that way is not reported at all. Every
 * value a program takes from the file, though, comes through a cursor
 * that OP_OpenRead opened on a b-tree by its root page, and a column of a
 * row through OP_Column. So this file maps root pages to what they hold
 * (sq_map_build) and walks the program of a statement compiled once more
 * under EXPLAIN (sq_plan_check), refusing:
 *
 * - an open of a hidden table or of one of its indexes, of the catalog
 *   (sqlite_schema, sqlite_sequence) while tables are hidden, and of the
 *   statistics (sqlite_stat1, sqlite_stat4), which hold values, always;
 * - OP_Column, OP_Offset or OP_RowData at a record position that holds a
 *   masked column;
 * - any use but a count of a cursor over a b-tree whose keys hold a masked
 *   column (an index on one, or a table whose rowid or primary key is
 *   one): its order, a seek in it and its keys all follow the masked
 *   values;
 * - any virtual table while one in the schema is hidden or has a masked
 *   column: a program does not say which virtual table a cursor is on.
 *
 * How the statement is written does not matter: USING, NATURAL, views,
 * subqueries, CTEs, window functions, generated columns and "*" all
 * compile to these opcodes. Only statements that mention a name in the
 * map pay for the second compilation (sq_map_mentions). */
#include "sqlite_guard.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Why opening a b-tree at all is refused. */
enum sq_deny { DENY_NONE = 0, DENY_HIDDEN, DENY_CATALOG, DENY_STATS };

/* One b-tree the check must see. Strings are owned. */
typedef struct sq_btree {
  int root; /* Root page; in the temp database if temp. */
  int temp; /* Non-zero: of the temp database. */
  enum sq_deny deny;
  char *table;      /* The table it stores (or belongs to). */
  char *index;      /* NULL for the table's own b-tree. */
  char *key_masked; /* The masked column its keys hold, or NULL. */
  char **columns;   /* Per record position, the masked column there. */
  int ncolumns;
} sq_btree;

struct sq_map {
  sq_btree *btrees; /* Sorted by (temp, root) once built. */
  int nbtrees;
  char **names; /* Mentioned, a statement is checked. */
  int nnames;
  char *vtab;       /* A virtual table hidden or with masked columns. */
  int cookie;       /* schema_version the map describes. */
  unsigned version; /* SQLITE_FCNTL_DATA_VERSION at that time. */
};

/* A table's columns as pragma_table_xinfo lists them. */
typedef struct sq_column {
  char *name;
  char *type;
  int pk;      /* Position in the primary key, 1-based, or 0. */
  int virtual; /* A VIRTUAL generated column: not stored. */
} sq_column;

static char *dup_text(sqlite3_stmt *stmt, int i) {
  const char *t = (const char *)sqlite3_column_text(stmt, i);

  return strdup(t != NULL ? t : "");
}

static int add_name(sq_map *m, const char *name) {
  char **grown = realloc(m->names, (size_t)(m->nnames + 1) * sizeof(char *));

  if (grown == NULL)
    return -1;
  m->names = grown;
  if ((m->names[m->nnames] = strdup(name)) == NULL)
    return -1;
  m->nnames++;
  return 0;
}

/* A new, zeroed b-tree entry in m, or NULL when out of memory. */
static sq_btree *add_btree(sq_map *m, int root, const char *table,
                           const char *index) {
  sq_btree *grown, *b;

  grown = realloc(m->btrees, (size_t)(m->nbtrees + 1) * sizeof(sq_btree));
  if (grown == NULL)
    return NULL;
  m->btrees = grown;
  b = &m->btrees[m->nbtrees];
  memset(b, 0, sizeof(*b));
  b->root = root;
  b->table = strdup(table);
  b->index = index != NULL ? strdup(index) : NULL;
  if (b->table == NULL || (index != NULL && b->index == NULL)) {
    free(b->table);
    free(b->index);
    return NULL;
  }
  m->nbtrees++;
  return b;
}

/* Sizes b's positions to at least n and names the masked column at
 * position pos. */
static int mask_position(sq_btree *b, int pos, int n, const char *column) {
  char **grown;

  if (pos < 0)
    return 0;
  if (n <= pos)
    n = pos + 1;
  if (n > b->ncolumns) {
    grown = realloc(b->columns, (size_t)n * sizeof(char *));
    if (grown == NULL)
      return -1;
    memset(grown + b->ncolumns, 0, (size_t)(n - b->ncolumns) * sizeof(char *));
    b->columns = grown;
    b->ncolumns = n;
  }
  if (b->columns[pos] == NULL && (b->columns[pos] = strdup(column)) == NULL)
    return -1;
  return 0;
}

/* Records column as a masked key of b, if it has none yet. */
static int mask_key(sq_btree *b, const char *column) {
  if (b->key_masked == NULL && (b->key_masked = strdup(column)) == NULL)
    return -1;
  return 0;
}

static void free_btree(sq_btree *b) {
  int i;

  free(b->table);
  free(b->index);
  free(b->key_masked);
  for (i = 0; i < b->ncolumns; i++)
    free(b->columns[i]);
  free(b->columns);
}

void sq_map_free(sq_map *m) {
  int i;

  if (m == NULL)
    return;
  for (i = 0; i < m->nbtrees; i++)
    free_btree(&m->btrees[i]);
  free(m->btrees);
  for (i = 0; i < m->nnames; i++)
    free(m->names[i]);
  free(m->names);
  free(m->vtab);
  free(m);
}

static int by_root(const void *a, const void *b) {
  const sq_btree *x = a, *y = b;

  if (x->temp != y->temp)
    return x->temp - y->temp;
  return (x->root > y->root) - (x->root < y->root);
}

static const sq_btree *find_btree(const sq_map *m, int temp, int root) {
  sq_btree key;

  if (m->nbtrees == 0)
    return NULL;
  key.temp = temp;
  key.root = root;
  return bsearch(&key, m->btrees, (size_t)m->nbtrees, sizeof(sq_btree),
                 by_root);
}

static void free_columns(sq_column *cols, int n) {
  int i;

  for (i = 0; i < n; i++) {
    free(cols[i].name);
    free(cols[i].type);
  }
  free(cols);
}

/* The columns of table into *cols (pragma_table_xinfo). */
static int load_columns(sqlite3_stmt *xinfo, const char *table,
                        sq_column **cols, int *n) {
  sq_column *grown;
  int code;

  *cols = NULL;
  *n = 0;
  sqlite3_reset(xinfo);
  sqlite3_bind_text(xinfo, 1, table, -1, SQLITE_TRANSIENT);
  while ((code = sqlite3_step(xinfo)) == SQLITE_ROW) {
    grown = realloc(*cols, (size_t)(*n + 1) * sizeof(sq_column));
    if (grown == NULL)
      return SQLITE_NOMEM;
    *cols = grown;
    grown[*n].name = dup_text(xinfo, 0);
    grown[*n].type = dup_text(xinfo, 1);
    grown[*n].pk = sqlite3_column_int(xinfo, 2);
    grown[*n].virtual = sqlite3_column_int(xinfo, 3) == 2;
    (*n)++;
    if (grown[*n - 1].name == NULL || grown[*n - 1].type == NULL)
      return SQLITE_NOMEM;
  }
  return code == SQLITE_DONE ? SQLITE_OK : code;
}

/* The INTEGER PRIMARY KEY of a rowid table, which is its rowid, or -1. */
static int rowid_alias(const sq_column *cols, int n) {
  int i, key = -1, keys = 0;

  for (i = 0; i < n; i++)
    if (cols[i].pk > 0) {
      keys++;
      key = i;
    }
  return keys == 1 && strcasecmp(cols[key].type, "INTEGER") == 0 ? key : -1;
}

/* Marks the positions of b that hold a masked column of table, from
 * pragma_index_xinfo of index: for an index, b itself, whose keys are
 * then masked too; for a WITHOUT ROWID table, its primary key, whose
 * columns are the table's record. An expression in an index counts as a
 * masked column whenever the table has one: the plugin does not parse
 * it. */
static int mask_index(const db *d, sqlite3_stmt *ixinfo, sq_btree *b,
                      const char *index, const char *table,
                      const sq_column *cols, int ncols, int alias,
                      const char *any_masked) {
  int code, seqno, cid;
  const char *col;

  sqlite3_reset(ixinfo);
  sqlite3_bind_text(ixinfo, 1, index, -1, SQLITE_TRANSIENT);
  while ((code = sqlite3_step(ixinfo)) == SQLITE_ROW) {
    seqno = sqlite3_column_int(ixinfo, 0);
    cid = sqlite3_column_int(ixinfo, 1);
    col = NULL;
    if (cid >= 0 && cid < ncols && db_column_masked(d, table, cols[cid].name))
      col = cols[cid].name;
    else if (cid == -1 && alias >= 0 &&
             db_column_masked(d, table, cols[alias].name))
      col = cols[alias].name;
    else if (cid == -2)
      col = any_masked;
    if (col == NULL)
      continue;
    if (mask_position(b, seqno, seqno + 1, col) != 0 ||
        (b->index != NULL && mask_key(b, col) != 0))
      return SQLITE_NOMEM;
  }
  return code == SQLITE_DONE ? SQLITE_OK : code;
}

/* The schema's index rows, kept while the map is built. */
typedef struct sq_index_row {
  char *name, *table;
  int root;
} sq_index_row;

/* Adds the b-trees of one table with masked columns: its own (the record
 * positions of the masked columns, and whether its key is one) and those
 * of its indexes. */
static int map_masked_table(const db *d, sq_map *m, sqlite3 *h,
                            sqlite3_stmt *ixinfo, const char *table, int root,
                            int without_rowid, const sq_column *cols, int ncols,
                            const sq_index_row *idx, int nidx) {
  sqlite3_stmt *list = NULL;
  const char *any_masked = NULL;
  sq_btree *b;
  int code = SQLITE_OK, i, pos, stored = 0, nstored = 0, alias = -1, self;

  for (i = 0; i < ncols; i++) {
    if (any_masked == NULL && db_column_masked(d, table, cols[i].name))
      any_masked = cols[i].name;
    if (!cols[i].virtual)
      nstored++;
  }
  if (root == 0) { /* A virtual table. */
    if (m->vtab == NULL && (m->vtab = strdup(table)) == NULL)
      return SQLITE_NOMEM;
    return SQLITE_OK;
  }
  if (add_btree(m, root, table, NULL) == NULL)
    return SQLITE_NOMEM;
  self = m->nbtrees - 1; /* An index, table or position: add_btree moves. */
  if (!without_rowid) {
    /* Stored columns first in their order, then the virtual ones, as
     * sqlite3TableColumnToStorage lays out a record. */
    alias = rowid_alias(cols, ncols);
    for (i = 0; i < ncols && code == SQLITE_OK; i++) {
      pos = cols[i].virtual ? nstored + (i - stored) : stored;
      if (!cols[i].virtual)
        stored++;
      if (db_column_masked(d, table, cols[i].name) &&
          mask_position(&m->btrees[self], pos, ncols, cols[i].name) != 0)
        code = SQLITE_NOMEM;
    }
    if (code == SQLITE_OK && alias >= 0 &&
        db_column_masked(d, table, cols[alias].name) &&
        mask_key(&m->btrees[self], cols[alias].name) != 0)
      code = SQLITE_NOMEM;
  }
  /* The indexes, and the primary key of a WITHOUT ROWID table, which is
   * the table's own b-tree and has no row in sqlite_schema. */
  if (code == SQLITE_OK)
    code = sqlite3_prepare_v2(h,
                              "SELECT name, origin, partial FROM "
                              "pragma_index_list(?)",
                              -1, &list, NULL);
  if (code == SQLITE_OK)
    code = sqlite3_bind_text(list, 1, table, -1, SQLITE_TRANSIENT);
  while (code == SQLITE_OK && (code = sqlite3_step(list)) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(list, 0);
    const char *origin = (const char *)sqlite3_column_text(list, 1);
    int index_root = -1;

    code = SQLITE_OK;
    if (name == NULL)
      continue;
    if (without_rowid && origin != NULL && strcmp(origin, "pk") == 0) {
      code = mask_index(d, ixinfo, &m->btrees[self], name, table, cols, ncols,
                        -1, any_masked);
      for (i = 0; i < ncols && code == SQLITE_OK; i++)
        if (cols[i].pk > 0 && db_column_masked(d, table, cols[i].name) &&
            mask_key(&m->btrees[self], cols[i].name) != 0)
          code = SQLITE_NOMEM;
      continue;
    }
    for (i = 0; i < nidx; i++)
      if (strcmp(idx[i].name, name) == 0)
        index_root = idx[i].root;
    if (index_root <= 0)
      continue;
    if ((b = add_btree(m, index_root, table, name)) == NULL) {
      code = SQLITE_NOMEM;
      break;
    }
    code =
        mask_index(d, ixinfo, b, name, table, cols, ncols, alias, any_masked);
    /* A partial index holds the rows its condition picks, which may be a
     * condition on a masked column. */
    if (code == SQLITE_OK && sqlite3_column_int(list, 2) &&
        mask_key(b, any_masked) != 0)
      code = SQLITE_NOMEM;
  }
  if (code == SQLITE_DONE)
    code = SQLITE_OK;
  sqlite3_finalize(list);
  return code;
}

static int read_int(sqlite3 *h, const char *sql, int *value) {
  sqlite3_stmt *stmt = NULL;
  int code = sqlite3_prepare_v2(h, sql, -1, &stmt, NULL);

  if (code == SQLITE_OK && (code = sqlite3_step(stmt)) == SQLITE_ROW) {
    *value = sqlite3_column_int(stmt, 0);
    code = SQLITE_OK;
  }
  sqlite3_finalize(stmt);
  return code;
}

/* Adds a b-tree that no statement may open. */
static int add_denied(sq_map *m, int temp, int root, const char *table,
                      const char *index, enum sq_deny deny) {
  sq_btree *b = add_btree(m, root, table, index);

  if (b == NULL)
    return -1;
  b->temp = temp;
  b->deny = deny;
  return 0;
}

int sq_map_build(const db *d, sqlite3 *h, sq_map **map, char **err) {
  sqlite3_stmt *schema = NULL, *xinfo = NULL, *ixinfo = NULL, *wr = NULL;
  sq_index_row *idx = NULL;
  sq_column *cols = NULL;
  sq_map *m = NULL;
  int nidx = 0, ncols = 0, code, i, began = 0;

  m = calloc(1, sizeof(*m));
  code = m != NULL ? SQLITE_OK : SQLITE_NOMEM;
  /* One read transaction: the cookie, the rows and the data version all
   * describe the same file. */
  if (code == SQLITE_OK &&
      (code = sqlite3_exec(h, "BEGIN", NULL, NULL, NULL)) == SQLITE_OK)
    began = 1;
  if (code == SQLITE_OK)
    code = read_int(h, "PRAGMA schema_version", &m->cookie);
  if (code == SQLITE_OK && add_name(m, "sqlite_") != 0)
    code = SQLITE_NOMEM;
  /* sqlite_schema lists every table, hidden ones too. */
  if (code == SQLITE_OK && d->nhidden > 0 &&
      (add_denied(m, 0, 1, "sqlite_schema", NULL, DENY_CATALOG) != 0 ||
       add_denied(m, 1, 1, "sqlite_temp_schema", NULL, DENY_CATALOG) != 0))
    code = SQLITE_NOMEM;
  if (code == SQLITE_OK)
    code = sqlite3_prepare_v2(h,
                              "SELECT type, name, tbl_name, rootpage FROM "
                              "sqlite_schema",
                              -1, &schema, NULL);
  while (code == SQLITE_OK && (code = sqlite3_step(schema)) == SQLITE_ROW) {
    const char *type = (const char *)sqlite3_column_text(schema, 0);
    const char *name = (const char *)sqlite3_column_text(schema, 1);
    const char *table = (const char *)sqlite3_column_text(schema, 2);
    int root = sqlite3_column_int(schema, 3);
    enum sq_deny deny = DENY_NONE;

    code = SQLITE_OK;
    if (type == NULL || name == NULL || table == NULL)
      continue;
    if (strcmp(type, "view") == 0) {
      if (add_name(m, name) != 0)
        code = SQLITE_NOMEM;
    } else if (strcmp(type, "index") == 0) {
      sq_index_row *grown =
          realloc(idx, (size_t)(nidx + 1) * sizeof(sq_index_row));
      if (grown == NULL) {
        code = SQLITE_NOMEM;
        break;
      }
      idx = grown;
      idx[nidx].name = strdup(name);
      idx[nidx].table = strdup(table);
      idx[nidx].root = root;
      nidx++;
      if (idx[nidx - 1].name == NULL || idx[nidx - 1].table == NULL)
        code = SQLITE_NOMEM;
    } else if (strcmp(type, "table") == 0) {
      if (strncasecmp(name, "sqlite_stat", 11) == 0)
        deny = DENY_STATS;
      else if (strcasecmp(name, "sqlite_sequence") == 0 && d->nhidden > 0)
        deny = DENY_CATALOG;
      else if (db_table_hidden(d, name))
        deny = DENY_HIDDEN;
      if (deny == DENY_HIDDEN && add_name(m, name) != 0)
        code = SQLITE_NOMEM;
      if (deny == DENY_HIDDEN && root == 0 && m->vtab == NULL &&
          (m->vtab = strdup(name)) == NULL)
        code = SQLITE_NOMEM;
      if (deny != DENY_NONE && root > 0 &&
          add_denied(m, 0, root, name, NULL, deny) != 0)
        code = SQLITE_NOMEM;
    }
  }
  if (code == SQLITE_DONE)
    code = SQLITE_OK;
  /* Indexes of refused tables are refused with them. */
  for (i = 0; i < nidx && code == SQLITE_OK; i++) {
    enum sq_deny deny = DENY_NONE;

    if (strncasecmp(idx[i].table, "sqlite_stat", 11) == 0)
      deny = DENY_STATS;
    else if (db_table_hidden(d, idx[i].table))
      deny = DENY_HIDDEN;
    if (deny != DENY_NONE && idx[i].root > 0 &&
        add_denied(m, 0, idx[i].root, idx[i].table, idx[i].name, deny) != 0)
      code = SQLITE_NOMEM;
  }
  /* The columns of every other table, for the masked ones. */
  if (code == SQLITE_OK)
    code = sqlite3_prepare_v2(h,
                              "SELECT name, type, pk, hidden FROM "
                              "pragma_table_xinfo(?)",
                              -1, &xinfo, NULL);
  if (code == SQLITE_OK)
    code = sqlite3_prepare_v2(h, "SELECT seqno, cid FROM pragma_index_xinfo(?)",
                              -1, &ixinfo, NULL);
  if (code == SQLITE_OK)
    code = sqlite3_prepare_v2(h,
                              "SELECT wr FROM pragma_table_list(?) WHERE "
                              "schema = 'main'",
                              -1, &wr, NULL);
  if (code == SQLITE_OK)
    sqlite3_reset(schema);
  while (code == SQLITE_OK && (code = sqlite3_step(schema)) == SQLITE_ROW) {
    const char *type = (const char *)sqlite3_column_text(schema, 0);
    const char *name = (const char *)sqlite3_column_text(schema, 1);
    int root = sqlite3_column_int(schema, 3), masked = 0, without_rowid = 0;

    code = SQLITE_OK;
    if (type == NULL || name == NULL || strcmp(type, "table") != 0 ||
        strncasecmp(name, "sqlite_", 7) == 0 || db_table_hidden(d, name))
      continue;
    code = load_columns(xinfo, name, &cols, &ncols);
    for (i = 0; i < ncols && !masked; i++)
      masked = db_column_masked(d, name, cols[i].name);
    if (code == SQLITE_OK && masked) {
      sqlite3_reset(wr);
      sqlite3_bind_text(wr, 1, name, -1, SQLITE_TRANSIENT);
      if (sqlite3_step(wr) == SQLITE_ROW)
        without_rowid = sqlite3_column_int(wr, 0);
      if (add_name(m, name) != 0)
        code = SQLITE_NOMEM;
      else
        code = map_masked_table(d, m, h, ixinfo, name, root, without_rowid,
                                cols, ncols, idx, nidx);
    }
    free_columns(cols, ncols);
    cols = NULL;
    ncols = 0;
  }
  if (code == SQLITE_DONE)
    code = SQLITE_OK;
  if (code == SQLITE_OK &&
      sqlite3_file_control(h, "main", SQLITE_FCNTL_DATA_VERSION, &m->version) !=
          SQLITE_OK)
    code = SQLITE_ERROR;
  if (code == SQLITE_OK && m->nbtrees > 0)
    qsort(m->btrees, (size_t)m->nbtrees, sizeof(sq_btree), by_root);

  sqlite3_finalize(schema);
  sqlite3_finalize(xinfo);
  sqlite3_finalize(ixinfo);
  sqlite3_finalize(wr);
  if (began)
    sqlite3_exec(h, code == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL,
                 NULL);
  free_columns(cols, ncols);
  for (i = 0; i < nidx; i++) {
    free(idx[i].name);
    free(idx[i].table);
  }
  free(idx);
  if (code != SQLITE_OK) {
    db_errorf(err, "SQLite: reading the schema: %s",
              code == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(h));
    sq_map_free(m);
    return DB_EINTERNAL;
  }
  sq_map_free(*map);
  *map = m;
  return DB_OK;
}

int sq_map_stale(sq_map *m, sqlite3 *h) {
  unsigned version = 0;
  int cookie = 0;

  if (sqlite3_file_control(h, "main", SQLITE_FCNTL_DATA_VERSION, &version) !=
      SQLITE_OK)
    return -1;
  if (version == m->version)
    return 0;
  if (read_int(h, "PRAGMA schema_version", &cookie) != SQLITE_OK)
    return -1;
  if (cookie != m->cookie)
    return 1;
  m->version = version;
  return 0;
}

int sq_map_mentions(const sq_map *m, const char *sql) {
  int i;

  for (i = 0; i < m->nnames; i++)
    if (strcasestr(sql, m->names[i]) != NULL)
      return 1;
  return 0;
}

/* ---- the program ---- */

/* What an opcode does with the cursor in its P1. */
enum op_kind {
  OP_OTHER = 0, /* P1 is no cursor of a table or index. */
  OP_OPEN,      /* Opens P1 on the b-tree rooted at P2 of database P3. */
  OP_VOPEN,     /* Opens P1 on a virtual table. */
  OP_COLUMN,    /* Reads record position P2 of P1's row. */
  OP_ROW,       /* Reads all of P1's row. */
  OP_MOVE,      /* Moves P1, compares its key or reads its rowid. */
  OP_DEFERRED,  /* Moves P1 (an index) and P3 (its table). */
  OP_QUIET      /* Uses P1 without reading its keys or rows. */
};

/* Opcodes whose P1 is a cursor, by name (sorted, for bsearch). The walk
 * needs no other: a value reaches a register only through one of them. */
static const struct op_name {
  const char *name;
  enum op_kind kind;
} op_names[] = {
    {"Close", OP_QUIET},        {"Column", OP_COLUMN},
    {"ColumnsUsed", OP_QUIET},  {"Count", OP_QUIET},
    {"CursorHint", OP_QUIET},   {"CursorLock", OP_QUIET},
    {"CursorUnlock", OP_QUIET}, {"DeferredSeek", OP_DEFERRED},
    {"Delete", OP_MOVE},        {"FinishSeek", OP_MOVE},
    {"Found", OP_MOVE},         {"IdxDelete", OP_MOVE},
    {"IdxGE", OP_MOVE},         {"IdxGT", OP_MOVE},
    {"IdxInsert", OP_MOVE},     {"IdxLE", OP_MOVE},
    {"IdxLT", OP_MOVE},         {"IdxRowid", OP_MOVE},
    {"IfEmpty", OP_QUIET},      {"IfNoHope", OP_MOVE},
    {"IfNotOpen", OP_QUIET},    {"IfNullRow", OP_QUIET},
    {"IfSmaller", OP_QUIET},    {"Insert", OP_MOVE},
    {"Last", OP_MOVE},          {"NewRowid", OP_MOVE},
    {"Next", OP_MOVE},          {"NoConflict", OP_MOVE},
    {"NotExists", OP_MOVE},     {"NotFound", OP_MOVE},
    {"NullRow", OP_QUIET},      {"Offset", OP_COLUMN},
    {"OpenRead", OP_OPEN},      {"OpenWrite", OP_OPEN},
    {"Prev", OP_MOVE},          {"ReopenIdx", OP_OPEN},
    {"Rewind", OP_MOVE},        {"RowCell", OP_ROW},
    {"RowData", OP_ROW},        {"Rowid", OP_MOVE},
    {"SeekEnd", OP_MOVE},       {"SeekGE", OP_MOVE},
    {"SeekGT", OP_MOVE},        {"SeekHit", OP_MOVE},
    {"SeekLE", OP_MOVE},        {"SeekLT", OP_MOVE},
    {"SeekRowid", OP_MOVE},     {"Sequence", OP_MOVE},
    {"VOpen", OP_VOPEN},
};

static int by_op_name(const void *key, const void *entry) {
  return strcmp(key, ((const struct op_name *)entry)->name);
}

static enum op_kind op_kind(const char *name) {
  const struct op_name *e;

  if (name == NULL)
    return OP_OTHER;
  e = bsearch(name, op_names, sizeof(op_names) / sizeof(op_names[0]),
              sizeof(op_names[0]), by_op_name);
  return e != NULL ? e->kind : OP_OTHER;
}

/* One instruction that names a cursor. */
typedef struct sq_op {
  enum op_kind kind;
  int p1, p2, p3, p5;
} sq_op;

/* A cursor opened on a b-tree of the map. */
typedef struct sq_open {
  int cursor;
  const sq_btree *btree;
} sq_open;

/* OP_OpenRead's P5 flags that say P2 is a register, not a root page (the
 * bit moved between SQLite versions; reads never set either). */
#define OPEN_P2_IS_REGISTER (0x10 | 0x04)

static int deny_open(const sq_btree *b, char **err) {
  switch (b->deny) {
  case DENY_HIDDEN:
    db_errorf(err, "Table '%s' is not accessible", b->table);
    break;
  case DENY_CATALOG:
    db_errorf(err,
              "The catalog (%s) cannot be read while tables are hidden; "
              "use list_tables and describe_table",
              b->table);
    break;
  case DENY_STATS:
    db_errorf(err,
              "%s cannot be read: statistics hold values of every column, "
              "hidden and masked ones too",
              b->table);
    break;
  case DENY_NONE:
    return DB_OK;
  }
  return DB_EREFUSED;
}

static int deny_masked(const sq_btree *b, const char *column, char **err) {
  db_errorf(err,
            "Column '%s.%s' is masked by the operator and cannot be read; "
            "select the other columns by name",
            b->table, column);
  return DB_EREFUSED;
}

/* Checks one instruction against the b-tree its cursor is on. */
static int check_use(const sq_op *op, const sq_btree *b, int cursor,
                     char **err) {
  int i;

  if (b->key_masked != NULL && op->kind != OP_QUIET) {
    if (b->index != NULL)
      db_errorf(err,
                "Column '%s.%s' is masked by the operator and cannot be "
                "read; the plan of this statement reads index '%s', whose "
                "keys and order follow it",
                b->table, b->key_masked, b->index);
    else
      db_errorf(err,
                "Column '%s.%s' is masked by the operator and is the key "
                "of its table, which orders its rows; only count(*) can "
                "read the table",
                b->table, b->key_masked);
    return DB_EREFUSED;
  }
  if (op->kind == OP_COLUMN && op->p1 == cursor && op->p2 >= 0 &&
      op->p2 < b->ncolumns && b->columns[op->p2] != NULL)
    return deny_masked(b, b->columns[op->p2], err);
  if (op->kind == OP_ROW)
    for (i = 0; i < b->ncolumns; i++)
      if (b->columns[i] != NULL)
        return deny_masked(b, b->columns[i], err);
  return DB_OK;
}

int sq_plan_check(const sq_map *m, sqlite3_stmt *explain, char **err) {
  sq_op *ops = NULL, *grown;
  sq_open *opens = NULL, *more;
  const sq_btree *b;
  int nops = 0, nopens = 0, code, i, k, rc = DB_OK;

  while ((code = sqlite3_step(explain)) == SQLITE_ROW) {
    enum op_kind kind = op_kind((const char *)sqlite3_column_text(explain, 1));

    if (kind == OP_OTHER)
      continue;
    if (nops % 64 == 0) {
      grown = realloc(ops, (size_t)(nops + 64) * sizeof(sq_op));
      if (grown == NULL)
        goto nomem;
      ops = grown;
    }
    ops[nops].kind = kind;
    ops[nops].p1 = sqlite3_column_int(explain, 2);
    ops[nops].p2 = sqlite3_column_int(explain, 3);
    ops[nops].p3 = sqlite3_column_int(explain, 4);
    ops[nops].p5 = sqlite3_column_int(explain, 6);
    nops++;
  }
  if (code != SQLITE_DONE) {
    db_errorf(err, "SQLite: %s", sqlite3_errmsg(sqlite3_db_handle(explain)));
    rc = DB_EINVALID;
    goto cleanup;
  }
  /* First which cursors are on b-trees of the map (a program may use a
   * cursor before the instruction that opens it appears), then every
   * use of them. */
  for (i = 0; i < nops && rc == DB_OK; i++) {
    if (ops[i].kind == OP_VOPEN && m->vtab != NULL) {
      db_errorf(err,
                "This statement reads a virtual table, and the plugin "
                "cannot tell which: virtual table '%s' is hidden or has "
                "masked columns",
                m->vtab);
      rc = DB_EREFUSED;
    }
    if (ops[i].kind != OP_OPEN)
      continue;
    if ((ops[i].p5 & OPEN_P2_IS_REGISTER) != 0 || ops[i].p3 > 1) {
      db_errorf(err, "The plugin cannot tell which table this statement "
                     "reads");
      rc = DB_EREFUSED;
      break;
    }
    b = find_btree(m, ops[i].p3 == 1, ops[i].p2);
    if (b == NULL)
      continue;
    rc = deny_open(b, err);
    more = realloc(opens, (size_t)(nopens + 1) * sizeof(sq_open));
    if (more == NULL)
      goto nomem;
    opens = more;
    opens[nopens].cursor = ops[i].p1;
    opens[nopens].btree = b;
    nopens++;
  }
  for (i = 0; i < nops && rc == DB_OK; i++) {
    if (ops[i].kind == OP_OPEN || ops[i].kind == OP_VOPEN)
      continue;
    for (k = 0; k < nopens && rc == DB_OK; k++) {
      if (opens[k].cursor == ops[i].p1)
        rc = check_use(&ops[i], opens[k].btree, ops[i].p1, err);
      else if (ops[i].kind == OP_DEFERRED && opens[k].cursor == ops[i].p3)
        rc = check_use(&ops[i], opens[k].btree, ops[i].p3, err);
    }
  }

cleanup:
  free(ops);
  free(opens);
  return rc;

nomem:
  db_errorf(err, "out of memory");
  rc = DB_EINTERNAL;
  goto cleanup;
}
