/* fuzz_sql_scan.c: the database plugin's SQL lexer and its first safety
 * layer (sql_scan.c). The first byte of the input picks the engine (bit
 * 0: PostgreSQL) and the tool (bit 1: execute rather than query); the rest
 * is the statement, as the sql argument arrives: a C string, so it ends at
 * its first NUL. The statement is scanned and checked twice, on an instance
 * with no hidden tables or masked columns and on one with both, as the
 * query and execute tools do before any engine sees it. What the scan
 * found must hold together, and a refusal must say why. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

static char *hidden[] = {"secret*", "audit_log", "pg_*"};
static char *masked[] = {"password", "users.email", "*token"};

static volatile size_t sink;

static void check_scan(const sql_scan *s) {
  int i;

  if (memchr(s->first, '\0', sizeof(s->first)) == NULL || s->statements < 0 ||
      s->nidents < 0 || (s->nidents > 0 && s->idents == NULL))
    abort();
  for (i = 0; i < s->nidents; i++) {
    if (s->idents[i].text == NULL)
      abort();
    sink += strlen(s->idents[i].text);
  }
}

static void check(const db *d, const sql_scan *s, int write) {
  char *err = NULL;
  int rc = sql_check(d, s, write, &err);

  if (rc != DB_OK && rc != DB_EREFUSED && rc != DB_EINVALID)
    abort();
  if ((rc != DB_OK) != (err != NULL))
    abort();
  free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  db plain, guarded;
  sql_scan s;
  char *sql;
  int i;

  if (size == 0)
    return 0;
  memset(&plain, 0, sizeof(plain));
  plain.kind = data[0] & 1 ? DB_POSTGRES : DB_SQLITE;
  plain.allow_writes = 1;
  guarded = plain;
  guarded.hidden = hidden;
  guarded.nhidden = sizeof(hidden) / sizeof(*hidden);
  guarded.masked = masked;
  guarded.nmasked = sizeof(masked) / sizeof(*masked);
  sql = malloc(size);
  if (sql == NULL)
    abort();
  memcpy(sql, data + 1, size - 1);
  sql[size - 1] = '\0';
  memset(&s, 0, sizeof(s));
  if (sql_scan_run(&s, sql, plain.kind) == 0) {
    check_scan(&s);
    check(&plain, &s, data[0] & 2);
    check(&guarded, &s, data[0] & 2);
    for (i = 0; i < s.nidents; i++)
      sink += (size_t)sql_function_denied(plain.kind, s.idents[i].text) +
              (size_t)sql_catalog_denied(plain.kind, s.idents[i].text);
  }
  sql_scan_free(&s);
  free(sql);
  return 0;
}
