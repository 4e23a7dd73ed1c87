/* pg_bound.c: the row limit on PostgreSQL, enforced by the server. A
 * server sends a row as one message, and libpq reads a message it knows to
 * be long whole, for as long as the server keeps sending, before the
 * plugin sees any of it: counting the socket's bytes between reads bounds
 * nothing (one 300 MB value took the host up by 580 MB), and libpq has no
 * way to stop reading at a size. So the client's statement runs wrapped,
 *
 *   SELECT ph_t.* FROM (<statement>) AS ph_t
 *   WHERE CASE WHEN octet_length(ROW(ph_t.*)::text) <= <row limit>
 *         THEN true ELSE ('ph_row_limit ' || <that length>)::int > 0 END
 *
 * and the server measures each row before it sends it, failing the
 * statement with an error of ours (a cast that cannot succeed) instead.
 * The row's text form holds every column's text output, quoted, so it is
 * never shorter than what the row's message carries but for 4 bytes a
 * column of length fields (at most 1664 columns). The same columns, names,
 * types and order come back: a subquery scan with no ORDER BY of its own
 * emits its rows in the order the statement produced them. */
#include "engine_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROW_LIMIT_MARK "ph_row_limit "

int pg_bound_sql(db *d, const char *sql, const sql_scan *scan, char **bounded,
                 char **err) {
  size_t limit = db_row_limit(d);

  *bounded = NULL;
  /* SHOW answers with one setting, which no statement can make large. */
  if (strcmp(scan->first, "SHOW") == 0)
    return DB_OK;
  /* The statement must not close the wrapper's parenthesis or leave it
   * open, or the guard would end up around part of it. The server refuses
   * such a statement alone anyway. */
  if (scan->unbalanced) {
    db_errorf(err, "Unbalanced parentheses in the statement");
    return DB_EINVALID;
  }
  /* The newline ends a trailing "--" comment. */
  if (asprintf(bounded,
               "SELECT ph_t.* FROM (%.*s\n) AS ph_t WHERE CASE WHEN "
               "octet_length(ROW(ph_t.*)::text) <= %zu THEN true ELSE "
               "('" ROW_LIMIT_MARK "' || "
               "octet_length(ROW(ph_t.*)::text))::int > 0 END",
               (int)scan->end, sql, limit) < 0) {
    *bounded = NULL;
    db_errorf(err, "out of memory");
    return DB_EINTERNAL;
  }
  return DB_OK;
}

long long pg_bound_failed(const PGresult *res) {
  const char *state, *primary, *mark;

  if (res == NULL)
    return 0;
  state = pq.PQresultErrorField(res, PG_DIAG_SQLSTATE);
  primary = pq.PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  if (state == NULL || strcmp(state, "22P02") != 0 || primary == NULL)
    return 0;
  /* invalid input syntax for type integer: "ph_row_limit <bytes>" */
  mark = strstr(primary, "\"" ROW_LIMIT_MARK);
  return mark != NULL ? strtoll(mark + 1 + strlen(ROW_LIMIT_MARK), NULL, 10)
                      : 0;
}

int pg_bound_write(const sql_scan *scan, char **err) {
  int i;

  /* A write's RETURNING rows would come back as one result, read whole,
   * and execute answers with the count alone. */
  for (i = 0; i < scan->nidents; i++)
    if (!scan->idents[i].quoted &&
        strcmp(scan->idents[i].text, "returning") == 0) {
      db_errorf(err, "execute answers with affected_rows only: leave out "
                     "RETURNING");
      return DB_EREFUSED;
    }
  return DB_OK;
}
