/* rows.c: a page of result rows as JSON text (db_rows, db.h). Engines
 * append values one at a time and the text is written straight into one
 * buffer, as cJSON would print it; each row's rough size is counted as it
 * grows, against the page's byte budget and the row limit. */
#include "db.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *db_json_int64(long long v) {
  char text[24];

  /* Doubles hold integers exactly up to 2^53; past that a client's JSON
   * parser would round, so the digits travel as a string. */
  if (v >= -9007199254740992LL && v <= 9007199254740992LL)
    return cJSON_CreateNumber((double)v);
  snprintf(text, sizeof(text), "%lld", v);
  return cJSON_CreateString(text);
}

static size_t json_weight(const cJSON *v) {
  const cJSON *item;
  size_t n = 1;
  char *text;

  if (cJSON_IsString(v))
    return strlen(v->valuestring) + 3;
  if (cJSON_IsNumber(v))
    return 20;
  if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
    if (cJSON_GetArraySize(v) > 64) {
      text = cJSON_PrintUnformatted(v);
      n = text != NULL ? strlen(text) : 0;
      cJSON_free(text);
      return n;
    }
    cJSON_ArrayForEach(item, v) {
      n += json_weight(item) + 1;
      if (item->string != NULL)
        n += strlen(item->string) + 3;
    }
    return n;
  }
  return 6;
}

size_t db_row_limit(const db *d) {
  return 4 * d->max_bytes + (1u << 20);
}

void db_rows_clear(db_rows *out) {
  cJSON *column;

  while ((column = cJSON_DetachItemFromArray(out->columns, 0)) != NULL)
    cJSON_Delete(column);
  out->len = out->row_start = out->weight = out->bytes = 0;
  out->values = out->failed = out->truncated = out->oversized = 0;
  out->count = 0;
}

/* Makes room for n more bytes of row text; 0, or -1 (out->failed set, or
 * the row is oversized and is not written). */
static int rows_reserve(db_rows *out, size_t n) {
  size_t cap;
  char *grown;

  if (out->failed || out->oversized)
    return -1;
  if (out->len + n <= out->cap)
    return 0;
  cap = out->cap > 0 ? out->cap : 4096;
  while (cap < out->len + n)
    cap *= 2;
  grown = realloc(out->text, cap);
  if (grown == NULL) {
    out->failed = 1;
    return -1;
  }
  out->text = grown;
  out->cap = cap;
  return 0;
}

void db_rows_put(db_rows *out, const char *s, size_t n) {
  if (rows_reserve(out, n) == 0) {
    memcpy(out->text + out->len, s, n);
    out->len += n;
  }
}

void db_row_begin(db_rows *out) {
  out->row_start = out->len;
  out->weight = 1;
  out->values = 0;
  db_rows_put(out, out->count > 0 ? ",[" : "[", out->count > 0 ? 2 : 1);
}

/* Starts the next value of the row; weight is json_weight's for it. The
 * size is checked before the value is written, so an oversized row costs
 * no more memory than the value the engine holds already. */
static void row_value(db_rows *out, size_t weight) {
  if (out->values++ > 0)
    db_rows_put(out, ",", 1);
  out->weight += weight + 1;
  if (out->max_row > 0 && out->weight > out->max_row)
    out->oversized = 1;
}

void db_row_null(db_rows *out) {
  row_value(out, 6);
  db_rows_put(out, "null", 4);
}

void db_row_bool(db_rows *out, int v) {
  row_value(out, 6);
  db_rows_put(out, v ? "true" : "false", v ? 4 : 5);
}

/* Prints a number with cJSON itself, so replies stay byte for byte what
 * they were when rows were cJSON trees (cJSON's format differs between
 * versions: "-0" or "0", "1e+15"). A node on the stack and a buffer of
 * our own cost no allocation. */
static void put_number(db_rows *out, double v) {
  cJSON number;
  char buf[64];

  memset(&number, 0, sizeof(number));
  number.type = cJSON_Number;
  number.valuedouble = v;
  /* What cJSON_CreateNumber stores (cJSON_SetNumberValue). */
  number.valueint = v >= INT_MAX ? INT_MAX : v <= INT_MIN ? INT_MIN : (int)v;
  if (!cJSON_PrintPreallocated(&number, buf, (int)sizeof(buf), 0))
    out->failed = 1;
  else
    db_rows_put(out, buf, strlen(buf));
}

void db_row_int64(db_rows *out, long long v) {
  char buf[24], *p = buf + sizeof(buf);
  long long u;

  /* Below 10^15 every cJSON prints the plain digits; above, it may not. */
  if (v <= -1000000000000000LL || v >= 1000000000000000LL) {
    if (v >= -9007199254740992LL && v <= 9007199254740992LL) {
      row_value(out, 20);
      put_number(out, (double)v);
    } else {
      snprintf(buf, sizeof(buf), "%lld", v);
      db_row_string(out, buf, strlen(buf));
    }
    return;
  }
  /* The common case, without printf. */
  u = v < 0 ? -v : v;
  do
    *--p = (char)('0' + u % 10);
  while ((u /= 10) != 0);
  if (v < 0)
    *--p = '-';
  row_value(out, 20);
  db_rows_put(out, p, (size_t)(buf + sizeof(buf) - p));
}

void db_row_double(db_rows *out, double v) {
  row_value(out, 20);
  put_number(out, v);
}

void db_rows_put_quoted(db_rows *out, const char *s, size_t len) {
  char *o;

  /* Every byte escaped as \u00XX at worst (the room ph_json_escape needs),
   * and the quotes. */
  if (rows_reserve(out, len * 6 + 2) != 0)
    return;
  o = out->text + out->len;
  *o++ = '"';
  o = ph_json_escape(o, s, len);
  *o++ = '"';
  out->len = (size_t)(o - out->text);
}

void db_row_string(db_rows *out, const char *s, size_t len) {
  row_value(out, len + 3);
  db_rows_put_quoted(out, s, len);
}

void db_row_json(db_rows *out, cJSON *v) {
  char *text;

  if (v == NULL) {
    out->failed = 1;
    return;
  }
  row_value(out, json_weight(v));
  text = cJSON_PrintUnformatted(v);
  cJSON_Delete(v);
  if (text == NULL) {
    out->failed = 1;
    return;
  }
  db_rows_put(out, text, strlen(text));
  cJSON_free(text);
}

int db_row_end(db_rows *out) {
  db_rows_put(out, "]", 1);
  /* The first row always goes out, so one huge row still pages. */
  if (!out->failed && out->count > 0 && out->max_bytes > 0 &&
      out->bytes + out->weight > out->max_bytes)
    out->truncated = 1;
  if (out->failed || out->truncated || out->oversized) {
    out->len = out->row_start;
    return -1;
  }
  out->bytes += out->weight;
  out->count++;
  return 0;
}
