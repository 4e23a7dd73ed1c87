/* config.c: an instance's config (the keys of README.md, "Config keys"),
 * parsed into struct db, and what it says about names: which tables are
 * hidden and which columns masked. */
#include "db.h"

#include <fnmatch.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 10000
#define DEFAULT_TIMEOUT_MS 5000
#define MAX_TIMEOUT_MS 30000
#define MAX_SQL_BYTES 10000
#define MAX_RESULT_BYTES (2 * 1024 * 1024)
#define MAX_AFFECTED 1000

int db_table_hidden(const db *d, const char *table) {
  const char *dot = strrchr(table, '.');
  int i;

  for (i = 0; i < d->nhidden; i++)
    if (fnmatch(d->hidden[i], table, FNM_CASEFOLD) == 0 ||
        (dot != NULL && fnmatch(d->hidden[i], dot + 1, FNM_CASEFOLD) == 0))
      return 1;
  return 0;
}

int db_column_masked(const db *d, const char *table, const char *column) {
  char qualified[512];
  const char *dot = table != NULL ? strrchr(table, '.') : NULL;
  int i;

  snprintf(qualified, sizeof(qualified), "%s.%s",
           dot != NULL     ? dot + 1
           : table != NULL ? table
                           : "",
           column);
  for (i = 0; i < d->nmasked; i++) {
    const char *pattern = d->masked[i], *dot_in = strchr(pattern, '.');
    /* Without a table, a table.column pattern masks the column in any. */
    if (dot_in != NULL && table == NULL) {
      if (fnmatch(dot_in + 1, column, FNM_CASEFOLD) == 0)
        return 1;
    } else if (fnmatch(pattern, dot_in != NULL ? qualified : column,
                       FNM_CASEFOLD) == 0) {
      return 1;
    }
  }
  return 0;
}

/* ---- config ---- */

static void free_list(char **list, int n) {
  int i;

  for (i = 0; i < n; i++)
    free(list[i]);
  free(list);
}

void db_free(db *d) {
  if (d == NULL)
    return;
  free(d->url);
  free(d->path);
  free(d->seed);
  free_list(d->hidden, d->nhidden);
  free_list(d->masked, d->nmasked);
  free(d);
}

/* Copies an array of strings; -1 on a non-string item or no memory. */
static int string_list(const cJSON *array, char ***out, int *n) {
  const cJSON *item;
  int count = cJSON_GetArraySize(array), i = 0;

  *out = calloc((size_t)count + 1, sizeof(char *));
  *n = 0;
  if (*out == NULL)
    return -1;
  cJSON_ArrayForEach(item, array) {
    if (!cJSON_IsString(item))
      return -1;
    (*out)[i] = strdup(item->valuestring);
    if ((*out)[i] == NULL)
      return -1;
    *n = ++i;
  }
  return 0;
}

static int number_in(const cJSON *v, double lo, double hi, double *out) {
  if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi)
    return -1;
  *out = v->valuedouble;
  return 0;
}

/* The numeric config keys: each an integer in [lo, hi] stored in one field
 * of the instance. */
enum limit_type { LIMIT_INT, LIMIT_LONG, LIMIT_LLONG, LIMIT_SIZE };

static const struct limit_key {
  const char *key;
  double lo, hi;
  size_t offset;
  enum limit_type type;
} limit_keys[] = {
    {"default_limit", 1, MAX_LIMIT, offsetof(db, default_limit), LIMIT_LONG},
    {"max_limit", 1, 1000000, offsetof(db, max_limit), LIMIT_LONG},
    {"default_timeout_ms", 1, 3600000, offsetof(db, default_timeout),
     LIMIT_INT},
    {"max_timeout_ms", 1, 3600000, offsetof(db, max_timeout), LIMIT_INT},
    {"max_sql_length", 1, 16777216, offsetof(db, max_sql), LIMIT_SIZE},
    {"max_result_bytes", 1024, 1073741824, offsetof(db, max_bytes), LIMIT_SIZE},
    {"max_affected_rows", 1, 1e12, offsetof(db, max_affected), LIMIT_LLONG},
    {"pool_size", 1, 256, offsetof(db, pool_size), LIMIT_INT},
};

static const struct limit_key *find_limit(const char *key) {
  size_t i;

  for (i = 0; i < sizeof(limit_keys) / sizeof(*limit_keys); i++)
    if (strcmp(limit_keys[i].key, key) == 0)
      return &limit_keys[i];
  return NULL;
}

static void store_limit(db *d, const struct limit_key *k, double v) {
  char *field = (char *)d + k->offset;

  switch (k->type) {
  case LIMIT_INT:
    *(int *)field = (int)v;
    break;
  case LIMIT_LONG:
    *(long *)field = (long)v;
    break;
  case LIMIT_LLONG:
    *(long long *)field = (long long)v;
    break;
  case LIMIT_SIZE:
    *(size_t *)field = (size_t)v;
    break;
  }
}

/* The default seed for "x.db" is "x.sql" beside it, if that file exists. */
static char *default_seed(const char *path) {
  const char *dot = strrchr(path, '.');
  char *seed;
  FILE *f;

  if (dot == NULL || strchr(dot, '/') != NULL)
    return NULL;
  if (asprintf(&seed, "%.*s.sql", (int)(dot - path), path) < 0)
    return NULL;
  f = fopen(seed, "r");
  if (f == NULL) {
    free(seed);
    return NULL;
  }
  fclose(f);
  return seed;
}

static int parse_url(db *d, char **err) {
  const char *url = d->url, *path;

  if (strncmp(url, "sqlite:", 7) == 0) {
    path = url + 7;
    /* sqlite:///abs and sqlite://rel both mean a file path. */
    if (strncmp(path, "//", 2) == 0)
      path += 2;
    if (*path == '\0') {
      db_errorf(err, "url: no file after sqlite:");
      return -1;
    }
    d->kind = DB_SQLITE;
    d->engine = &db_sqlite_engine;
    d->path = strdup(path);
  } else if (strncmp(url, "postgresql://", 13) == 0 ||
             strncmp(url, "postgres://", 11) == 0) {
    d->kind = DB_POSTGRES;
    d->engine = &db_postgres_engine;
    d->path = strdup(url);
  } else {
    db_errorf(err, "url: expected sqlite:PATH or postgresql://..., got '%s'",
              url);
    return -1;
  }
  if (d->path == NULL) {
    db_errorf(err, "out of memory");
    return -1;
  }
  return 0;
}

int db_parse_config(db *d, const char *config_json, char **err) {
  static const char *const defaults_masked[] = {"*password*", "*secret*",
                                                "*token*", "*api_key*"};
  cJSON *cfg = cJSON_Parse(config_json), *item;
  const char *key;
  double v;
  const struct limit_key *limit;
  int rc = -1, i;

  if (!cJSON_IsObject(cfg)) {
    db_errorf(err, "config is not a JSON object");
    goto cleanup;
  }
  d->default_limit = DEFAULT_LIMIT;
  d->max_limit = MAX_LIMIT;
  d->default_timeout = DEFAULT_TIMEOUT_MS;
  d->max_timeout = MAX_TIMEOUT_MS;
  d->max_sql = MAX_SQL_BYTES;
  d->max_bytes = MAX_RESULT_BYTES;
  d->max_affected = MAX_AFFECTED;
  d->pool_size = 4;
  if (RAND_bytes(d->cursor_key, sizeof(d->cursor_key)) != 1) {
    db_errorf(err, "no randomness for the cursor key");
    goto cleanup;
  }
  cJSON_ArrayForEach(item, cfg) {
    key = item->string;
    if (strcmp(key, "url") == 0 && cJSON_IsString(item)) {
      d->url = strdup(item->valuestring);
    } else if (strcmp(key, "seed") == 0 && cJSON_IsString(item)) {
      d->seed = strdup(item->valuestring);
    } else if (strcmp(key, "hidden_tables") == 0 && cJSON_IsArray(item)) {
      if (string_list(item, &d->hidden, &d->nhidden) != 0)
        goto bad_value;
    } else if (strcmp(key, "masked_columns") == 0 && cJSON_IsArray(item)) {
      if (string_list(item, &d->masked, &d->nmasked) != 0)
        goto bad_value;
    } else if ((limit = find_limit(key)) != NULL) {
      if (number_in(item, limit->lo, limit->hi, &v) != 0)
        goto bad_value;
      store_limit(d, limit, v);
    } else if (strcmp(key, "allow_writes") == 0 && cJSON_IsBool(item)) {
      d->allow_writes = cJSON_IsTrue(item);
    } else if (strcmp(key, "cursor_secret") == 0 && cJSON_IsString(item)) {
      /* A fixed secret keeps cursors valid across restarts and between
       * instances that share it. */
      SHA256((const unsigned char *)item->valuestring,
             strlen(item->valuestring), d->cursor_key);
    } else {
      db_errorf(err, "config: unknown key or wrong type: '%s'", key);
      goto cleanup;
    }
  }
  if (d->url == NULL) {
    db_errorf(err, "config: \"url\" is required (sqlite:PATH or "
                   "postgresql://...)");
    goto cleanup;
  }
  if (d->default_limit > d->max_limit)
    d->default_limit = d->max_limit;
  if (d->default_timeout > d->max_timeout)
    d->default_timeout = d->max_timeout;
  if (d->masked == NULL) {
    d->masked = calloc(4, sizeof(char *));
    if (d->masked == NULL)
      goto cleanup;
    for (i = 0; i < 4; i++)
      if ((d->masked[d->nmasked++] = strdup(defaults_masked[i])) == NULL)
        goto cleanup;
  }
  if (parse_url(d, err) != 0)
    goto cleanup;
  if (d->kind == DB_SQLITE && d->seed == NULL)
    d->seed = default_seed(d->path);
  rc = 0;
  goto cleanup;

bad_value:
  db_errorf(err, "config: bad value for '%s'", key);
cleanup:
  cJSON_Delete(cfg);
  return rc;
}
