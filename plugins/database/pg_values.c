/* pg_values.c: values between JSON and PostgreSQL's text formats. The
 * client's parameters become text the server types itself; each column of
 * a result keeps its JSON type (numbers, booleans, json, arrays, bytea as
 * base64, timestamps as ISO 8601), written straight into the page's rows.
 * No I/O: everything here works on a PGresult already read. */
#include "engine_pg.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- values ---- */

/* Type names and element types of the built-in types worth naming. */
static const struct {
  Oid oid;
  const char *name;
  Oid elem; /* For arrays: the element type. */
} pg_types[] = {
    {16, "boolean", 0},
    {17, "bytea", 0},
    {18, "char", 0},
    {19, "name", 0},
    {20, "bigint", 0},
    {21, "smallint", 0},
    {23, "integer", 0},
    {25, "text", 0},
    {26, "oid", 0},
    {114, "json", 0},
    {142, "xml", 0},
    {700, "real", 0},
    {701, "double precision", 0},
    {790, "money", 0},
    {1042, "character", 0},
    {1043, "character varying", 0},
    {1082, "date", 0},
    {1083, "time", 0},
    {1114, "timestamp", 0},
    {1184, "timestamptz", 0},
    {1186, "interval", 0},
    {1266, "timetz", 0},
    {1700, "numeric", 0},
    {2950, "uuid", 0},
    {3802, "jsonb", 0},
    {869, "inet", 0},
    {650, "cidr", 0},
    {2249, "record", 0},
    {2278, "void", 0},
    {705, "unknown", 0},
    {1000, "boolean[]", 16},
    {1001, "bytea[]", 17},
    {1005, "smallint[]", 21},
    {1007, "integer[]", 23},
    {1009, "text[]", 25},
    {1014, "character[]", 1042},
    {1015, "character varying[]", 1043},
    {1016, "bigint[]", 20},
    {1021, "real[]", 700},
    {1022, "double precision[]", 701},
    {1028, "oid[]", 26},
    {1003, "name[]", 19},
    {1115, "timestamp[]", 1114},
    {1182, "date[]", 1082},
    {1183, "time[]", 1083},
    {1185, "timestamptz[]", 1184},
    {1231, "numeric[]", 1700},
    {199, "json[]", 114},
    {3807, "jsonb[]", 3802},
    {2951, "uuid[]", 2950},
    {1187, "interval[]", 1186},
};

static int type_index(Oid oid) {
  size_t i;

  for (i = 0; i < sizeof(pg_types) / sizeof(pg_types[0]); i++)
    if (pg_types[i].oid == oid)
      return (int)i;
  return -1;
}

static cJSON *pg_value(db *d, Oid oid, const char *text, size_t len);

static int hex_digit(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* bytea's hex output (\x0a1b...) as base64. */
static cJSON *bytea_value(db *d, const char *text, size_t len) {
  unsigned char *bytes;
  size_t n = 0, i;
  char *b64;
  cJSON *v;

  if (len < 2 || text[0] != '\\' || text[1] != 'x')
    return cJSON_CreateString(text);
  bytes = malloc(len / 2 + 1);
  if (bytes == NULL)
    return NULL;
  for (i = 2; i + 1 < len; i += 2) {
    int hi = hex_digit((unsigned char)text[i]);
    int lo = hex_digit((unsigned char)text[i + 1]);
    if (hi < 0 || lo < 0)
      break;
    bytes[n++] = (unsigned char)(hi << 4 | lo);
  }
  b64 = ph_base64(db_api(d), bytes, n);
  free(bytes);
  if (b64 == NULL)
    return NULL;
  v = cJSON_CreateString(b64);
  db_api(d)->free(b64);
  return v;
}

/* "2024-01-02 03:04:05.5+00" -> "2024-01-02T03:04:05.5+00:00". */
static cJSON *timestamp_value(const char *text, size_t len) {
  char iso[64];
  size_t n;

  if (len < 19 || len + 4 > sizeof(iso) || text[10] != ' ')
    return cJSON_CreateString(text); /* infinity, BC dates */
  memcpy(iso, text, len + 1);
  iso[10] = 'T';
  n = len;
  if ((iso[n - 3] == '+' || iso[n - 3] == '-') &&
      isdigit((unsigned char)iso[n - 1]))
    memcpy(iso + n, ":00", 4);
  return cJSON_CreateString(iso);
}

/* Parses one level of PostgreSQL's array output, "{1,NULL,"a b"}", with
 * nested levels for multi-dimensional arrays. */
static cJSON *array_value(db *d, Oid elem, const char **pp) {
  const char *p = *pp;
  cJSON *array = cJSON_CreateArray(), *item;
  char *buf = NULL;
  size_t cap = 0, n;
  int quoted;

  if (array == NULL || *p != '{')
    goto fail;
  p++;
  if (*p == '}') {
    *pp = p + 1;
    return array;
  }
  for (;;) {
    if (*p == '{') {
      item = array_value(d, elem, &p);
      if (item == NULL)
        goto fail;
    } else {
      quoted = *p == '"';
      if (quoted)
        p++;
      n = 0;
      while (*p != '\0' && (quoted ? *p != '"' : *p != ',' && *p != '}')) {
        if (quoted && *p == '\\' && p[1] != '\0')
          p++;
        if (n + 2 > cap) {
          char *grown = realloc(buf, cap = cap * 2 + 64);
          if (grown == NULL)
            goto fail;
          buf = grown;
        }
        buf[n++] = *p++;
      }
      if (quoted) {
        if (*p != '"')
          goto fail;
        p++;
      }
      if (buf == NULL && (buf = malloc(cap = 64)) == NULL)
        goto fail;
      buf[n] = '\0';
      if (!quoted && strcasecmp(buf, "NULL") == 0)
        item = cJSON_CreateNull();
      else
        item = pg_value(d, elem, buf, n);
      if (item == NULL)
        goto fail;
    }
    cJSON_AddItemToArray(array, item);
    if (*p == ',') {
      p++;
      continue;
    }
    if (*p == '}') {
      p++;
      break;
    }
    goto fail;
  }
  free(buf);
  *pp = p;
  return array;

fail:
  free(buf);
  cJSON_Delete(array);
  return NULL;
}

/* One value in its JSON type, from PostgreSQL's text output. */
static cJSON *pg_value(db *d, Oid oid, const char *text, size_t len) {
  int t = type_index(oid);
  const char *p;
  cJSON *v;
  char *end;

  switch (oid) {
  case 16:
    return cJSON_CreateBool(text[0] == 't');
  case 20:
  case 21:
  case 23:
  case 26:
    errno = 0;
    {
      long long n = strtoll(text, &end, 10);
      if (errno == 0 && *end == '\0')
        return db_json_int64(n);
    }
    return cJSON_CreateString(text);
  case 700:
  case 701: {
    double f = strtod(text, &end);
    if (*end == '\0' && isfinite(f))
      return cJSON_CreateNumber(f);
    return cJSON_CreateString(text);
  }
  case 114:
  case 3802:
    v = cJSON_ParseWithLength(text, len);
    return v != NULL ? v : cJSON_CreateString(text);
  case 17:
    return bytea_value(d, text, len);
  case 1114:
  case 1184:
    return timestamp_value(text, len);
  default:
    break;
  }
  if (t >= 0 && pg_types[t].elem != 0) {
    p = text;
    if (*p == '[') /* Explicit bounds: "[0:1]={...}". */
      p = strchr(p, '=') != NULL ? strchr(p, '=') + 1 : p;
    v = array_value(d, pg_types[t].elem, &p);
    return v != NULL ? v : cJSON_CreateString(text);
  }
  /* numeric, money, text, uuid, interval, date, enums...: the text. */
  return cJSON_CreateString(text);
}

/* Parameters as text for PQexecParams: the server infers their types. */
int pg_param_texts(const cJSON *params, char ***values, int *n, char **err) {
  const cJSON *p, *e;
  char **out;
  int i = 0;

  *n = params != NULL ? cJSON_GetArraySize(params) : 0;
  *values = out = calloc((size_t)*n + 1, sizeof(char *));
  if (out == NULL)
    return DB_EINTERNAL;
  cJSON_ArrayForEach(p, params) {
    if (cJSON_IsNull(p)) {
      out[i] = NULL;
    } else if (cJSON_IsBool(p)) {
      out[i] = strdup(cJSON_IsTrue(p) ? "true" : "false");
    } else if (cJSON_IsNumber(p)) {
      double v = p->valuedouble;
      if (v == floor(v) && fabs(v) < 9.2e18) {
        if (asprintf(&out[i], "%lld", (long long)v) < 0)
          out[i] = NULL;
      } else if (asprintf(&out[i], "%.17g", v) < 0) {
        out[i] = NULL;
      }
    } else if (cJSON_IsString(p)) {
      out[i] = strdup(p->valuestring);
    } else if (cJSON_IsArray(p)) {
      /* A JSON array of scalars becomes an array literal, for = ANY($1). */
      size_t len = 3, used = 0;
      cJSON_ArrayForEach(e, p) {
        if (cJSON_IsArray(e) || cJSON_IsObject(e)) {
          db_errorf(err, "params[%d]: nested arrays are not supported", i);
          return DB_EINVALID;
        }
        len += 2 * (cJSON_IsString(e) ? strlen(e->valuestring) : 32) + 4;
      }
      out[i] = malloc(len);
      if (out[i] == NULL)
        return DB_EINTERNAL;
      out[i][used++] = '{';
      cJSON_ArrayForEach(e, p) {
        const char *s;
        char num[40];
        if (used > 1)
          out[i][used++] = ',';
        if (cJSON_IsNull(e)) {
          memcpy(out[i] + used, "NULL", 4);
          used += 4;
          continue;
        }
        if (cJSON_IsNumber(e)) {
          snprintf(num, sizeof(num), "%.17g", e->valuedouble);
          s = num;
        } else if (cJSON_IsBool(e)) {
          s = cJSON_IsTrue(e) ? "true" : "false";
        } else {
          s = e->valuestring;
        }
        out[i][used++] = '"';
        for (; *s != '\0'; s++) {
          if (*s == '"' || *s == '\\')
            out[i][used++] = '\\';
          out[i][used++] = *s;
        }
        out[i][used++] = '"';
      }
      out[i][used++] = '}';
      out[i][used] = '\0';
    } else {
      out[i] = cJSON_PrintUnformatted(p);
    }
    if (!cJSON_IsNull(p) && out[i] == NULL)
      return DB_EINTERNAL;
    i++;
  }
  return DB_OK;
}

void pg_free_texts(char **values, int n) {
  int i;

  for (i = 0; values != NULL && i < n; i++)
    free(values[i]);
  free(values);
}

static int type_name_of(Oid oid, char *buf, size_t size) {
  int t = type_index(oid);

  if (t >= 0)
    snprintf(buf, size, "%s", pg_types[t].name);
  else
    snprintf(buf, size, "oid:%u", (unsigned)oid);
  return 0;
}

void pg_add_columns(db_rows *out, const PGresult *res) {
  char type[64];
  cJSON *col;
  int i;

  for (i = 0; i < pq.PQnfields(res); i++) {
    col = cJSON_CreateObject();
    cJSON_AddStringToObject(col, "name", pq.PQfname(res, i));
    type_name_of(pq.PQftype(res, i), type, sizeof(type));
    cJSON_AddStringToObject(col, "type", type);
    cJSON_AddItemToArray(out->columns, col);
  }
}

/* Writes one value into the row being built, in its JSON type (the mapping
 * of pg_value), as text: the common types straight, the rest (json,
 * arrays, bytea) through a cJSON value. */
static void put_value(db *d, db_rows *out, Oid oid, const char *text,
                      size_t len) {
  char iso[64], *end;

  switch (oid) {
  case 16:
    db_row_bool(out, text[0] == 't');
    return;
  case 20:
  case 21:
  case 23:
  case 26: {
    long long n;

    errno = 0;
    n = strtoll(text, &end, 10);
    if (errno == 0 && *end == '\0')
      db_row_int64(out, n);
    else
      db_row_string(out, text, len);
    return;
  }
  case 700:
  case 701: {
    double f = strtod(text, &end);

    if (*end == '\0' && isfinite(f))
      db_row_double(out, f);
    else
      db_row_string(out, text, len);
    return;
  }
  case 1114:
  case 1184:
    /* timestamp_value, without the cJSON string. */
    if (len < 19 || len + 4 > sizeof(iso) || text[10] != ' ') {
      db_row_string(out, text, len);
      return;
    }
    memcpy(iso, text, len);
    iso[10] = 'T';
    if ((iso[len - 3] == '+' || iso[len - 3] == '-') &&
        isdigit((unsigned char)iso[len - 1])) {
      memcpy(iso + len, ":00", 3);
      len += 3;
    }
    db_row_string(out, iso, len);
    return;
  case 17:
  case 114:
  case 3802:
    break;
  case 25:
  case 1043:
  case 1700:
    /* Common enough to skip the search of pg_types below. */
    db_row_string(out, text, len);
    return;
  default: {
    int t = type_index(oid);

    if (t >= 0 && pg_types[t].elem != 0)
      break;
    /* money, uuid, interval, date, enums...: the text. */
    db_row_string(out, text, len);
    return;
  }
  }
  db_row_json(out, pg_value(d, oid, text, len));
}

/* Adds the rows of res (one in single-row mode) to out past the offset.
 * Returns 0 to read on, 1 when no more rows are wanted (the limit or the
 * byte budget is reached; out->truncated says so), -1 when out of memory
 * (*err set). */
int pg_take_rows(db *d, const PGresult *res, const db_request *rq,
                 long *skipped, db_rows *out, char **err) {
  int r, i, nfields = pq.PQnfields(res);

  for (r = 0; r < pq.PQntuples(res); r++) {
    if (*skipped < rq->offset) {
      (*skipped)++;
      continue;
    }
    if (out->count >= rq->limit) {
      out->truncated = 1;
      return 1;
    }
    db_row_begin(out);
    for (i = 0; i < nfields; i++) {
      if (pq.PQgetisnull(res, r, i))
        db_row_null(out);
      else
        put_value(d, out, pq.PQftype(res, i), pq.PQgetvalue(res, r, i),
                  (size_t)pq.PQgetlength(res, r, i));
    }
    if (db_row_end(out) != 0) {
      if (!out->failed)
        return 1;
      db_errorf(err, "out of memory");
      return -1;
    }
  }
  return 0;
}
