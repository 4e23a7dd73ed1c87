/* fuzz_cursor.c: the database plugin's pagination cursors (cursor.c). The
 * input is a cursor, a NUL, a statement, a NUL and its params as JSON (all
 * three as a query's arguments arrive: C strings). A cursor a client
 * made up must be refused or, if it is one, give an offset a cursor can
 * hold; a cursor the instance made for an offset must open to that offset
 * for the same statement and params, and be refused for another
 * statement, other params and by another instance. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "db.h"

/* The input's next field (up to a NUL or the end), malloc'd. */
static char *field(const uint8_t **p, const uint8_t *end) {
  const uint8_t *nul = memchr(*p, '\0', (size_t)(end - *p));
  size_t n = (size_t)((nul != NULL ? nul : end) - *p);
  char *s = malloc(n + 1);

  if (s == NULL)
    abort();
  memcpy(s, *p, n);
  s[n] = '\0';
  *p += n + (nul != NULL);
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p = data, *end = data + size;
  char *cursor = field(&p, end), *sql = field(&p, end);
  char *params_text = field(&p, end), *made, *other_sql;
  cJSON *params = cJSON_Parse(params_text), *other_params;
  db d, stranger;
  long offset = -1, want;
  size_t i;

  memset(&d, 0, sizeof(d));
  for (i = 0; i < sizeof(d.cursor_key); i++)
    d.cursor_key[i] = (unsigned char)(i * 7 + 1);
  stranger = d;
  stranger.cursor_key[0] ^= 1;
  if (db_cursor_open(&d, cursor, sql, params, &offset) == 0 &&
      (offset < 0 || offset > 0x7fffffffL))
    abort();

  /* The offset the cursor field's bytes spell, within what a cursor
   * holds. */
  want = 0;
  for (i = 0; cursor[i] != '\0' && i < 4; i++)
    want = want << 8 | (unsigned char)cursor[i];
  want &= 0x7fffffffL;
  made = db_cursor_make(&d, sql, params, want);
  if (made == NULL)
    abort();
  offset = -1;
  if (db_cursor_open(&d, made, sql, params, &offset) != 0 || offset != want)
    abort();
  if (db_cursor_open(&stranger, made, sql, params, &offset) == 0)
    abort();
  other_sql = malloc(strlen(sql) + 2);
  if (other_sql == NULL)
    abort();
  sprintf(other_sql, "%s ", sql);
  if (db_cursor_open(&d, made, other_sql, params, &offset) == 0)
    abort();
  other_params = params != NULL ? NULL : cJSON_CreateArray();
  if (db_cursor_open(&d, made, sql, other_params, &offset) == 0)
    abort();

  cJSON_Delete(other_params);
  free(other_sql);
  free(made);
  cJSON_Delete(params);
  free(params_text);
  free(sql);
  free(cursor);
  return 0;
}
