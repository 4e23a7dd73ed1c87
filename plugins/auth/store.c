/* store.c: the SQLite user store. One connection per instance behind one
 * mutex: the store serves logins and administration (rare) and cache misses
 * of the authn service (one indexed read each), which a lock never makes
 * wait long. WAL lets several instances share a file. */
#include "store.h"

#include <cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct auth_store {
  sqlite3 *db;
  pthread_mutex_t lock;
};

static const char schema[] = "CREATE TABLE IF NOT EXISTS users("
                             " id INTEGER PRIMARY KEY,"
                             " username TEXT NOT NULL UNIQUE COLLATE NOCASE,"
                             " name TEXT, email TEXT, tenant TEXT,"
                             " password_hash TEXT,"
                             " scopes TEXT NOT NULL DEFAULT '',"
                             " disabled INTEGER NOT NULL DEFAULT 0,"
                             " tokens_after INTEGER NOT NULL DEFAULT 0,"
                             " created INTEGER NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS api_keys("
                             " id TEXT PRIMARY KEY,"
                             " user_id INTEGER NOT NULL REFERENCES users(id),"
                             " hash BLOB NOT NULL,"
                             " name TEXT,"
                             " scopes TEXT NOT NULL DEFAULT '',"
                             " created INTEGER NOT NULL,"
                             " expires INTEGER NOT NULL DEFAULT 0,"
                             " revoked INTEGER NOT NULL DEFAULT 0);"
                             "PRAGMA user_version = 1;";

#define USER_COLUMNS                                                           \
  "u.id, u.username, u.name, u.email, u.tenant, u.password_hash, u.scopes, "   \
  "u.disabled, u.tokens_after"

/* Makes the parent directories of path (mode 0700). */
static int make_parents(const char *path) {
  char *copy = strdup(path), *p;

  if (copy == NULL)
    return -1;
  for (p = copy + 1; *p != '\0'; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(copy, 0700) != 0 && errno != EEXIST) {
      free(copy);
      return -1;
    }
    *p = '/';
  }
  free(copy);
  return 0;
}

int store_open(const char *path, auth_store **out, char *err, size_t size) {
  auth_store *s = calloc(1, sizeof(*s));
  char *msg = NULL;

  *out = NULL;
  if (s == NULL) {
    snprintf(err, size, "out of memory");
    return -1;
  }
  pthread_mutex_init(&s->lock, NULL);
  if (make_parents(path) != 0) {
    snprintf(err, size, "db %s: cannot create its directory: %s", path,
             strerror(errno));
    goto fail;
  }
  if (sqlite3_open_v2(path, &s->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                          SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    snprintf(err, size, "db %s: %s", path,
             s->db ? sqlite3_errmsg(s->db) : "cannot open");
    goto fail;
  }
  /* The store holds password hashes: nobody else reads it. */
  chmod(path, 0600);
  sqlite3_busy_timeout(s->db, 5000);
  if (sqlite3_exec(s->db,
                   "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;", NULL,
                   NULL, &msg) != SQLITE_OK ||
      sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, size, "db %s: %s", path, msg ? msg : "schema failed");
    sqlite3_free(msg);
    goto fail;
  }
  *out = s;
  return 0;

fail:
  store_close(s);
  return -1;
}

void store_close(auth_store *s) {
  if (s == NULL)
    return;
  sqlite3_close(s->db);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

const char *store_error(auth_store *s) {
  return sqlite3_errmsg(s->db);
}

static char *column_text(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);

  return t ? strdup((const char *)t) : NULL;
}

static void read_user(sqlite3_stmt *st, int first, auth_user *u) {
  u->id = sqlite3_column_int64(st, first);
  u->username = column_text(st, first + 1);
  u->name = column_text(st, first + 2);
  u->email = column_text(st, first + 3);
  u->tenant = column_text(st, first + 4);
  u->password_hash = column_text(st, first + 5);
  u->scopes = column_text(st, first + 6);
  u->disabled = sqlite3_column_int(st, first + 7) != 0;
  u->tokens_after = sqlite3_column_int64(st, first + 8);
}

void store_user_clear(auth_user *u) {
  free(u->username);
  free(u->name);
  free(u->email);
  free(u->tenant);
  free(u->password_hash);
  free(u->scopes);
  memset(u, 0, sizeof(*u));
}

/* Binds text or NULL. */
static void bind_text(sqlite3_stmt *st, int i, const char *s) {
  if (s == NULL)
    sqlite3_bind_null(st, i);
  else
    sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

int store_user_get(auth_store *s, const char *username, auth_user *out) {
  sqlite3_stmt *st = NULL;
  int rc = -1, step;

  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&s->lock);
  if (sqlite3_prepare_v2(
          s->db, "SELECT " USER_COLUMNS " FROM users u WHERE u.username = ?1",
          -1, &st, NULL) != SQLITE_OK)
    goto done;
  bind_text(st, 1, username);
  step = sqlite3_step(st);
  if (step == SQLITE_ROW) {
    read_user(st, 0, out);
    rc = out->username ? 0 : -1;
  } else if (step == SQLITE_DONE) {
    rc = STORE_NOT_FOUND;
  }

done:
  sqlite3_finalize(st);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

int store_user_add(auth_store *s, const auth_user *u, long long now) {
  sqlite3_stmt *st = NULL;
  int rc = -1, step;

  pthread_mutex_lock(&s->lock);
  if (sqlite3_prepare_v2(s->db,
                         "INSERT INTO users(username, name, email, tenant,"
                         " password_hash, scopes, created)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                         -1, &st, NULL) != SQLITE_OK)
    goto done;
  bind_text(st, 1, u->username);
  bind_text(st, 2, u->name);
  bind_text(st, 3, u->email);
  bind_text(st, 4, u->tenant);
  bind_text(st, 5, u->password_hash);
  bind_text(st, 6, u->scopes ? u->scopes : "");
  sqlite3_bind_int64(st, 7, now);
  step = sqlite3_step(st);
  if (step == SQLITE_DONE)
    rc = 0;
  else if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE)
    rc = STORE_EXISTS;

done:
  sqlite3_finalize(st);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

/* Runs an UPDATE with text ?1 (the username or id), then ?2 and ?3 as
 * given (text2 when not NULL, else num2; num3); 0 when a row changed. */
static int update(auth_store *s, const char *sql, const char *key,
                  const char *text2, long long num2, long long num3) {
  sqlite3_stmt *st = NULL;
  int rc = -1;

  pthread_mutex_lock(&s->lock);
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
    goto done;
  bind_text(st, 1, key);
  if (text2 != NULL)
    bind_text(st, 2, text2);
  else
    sqlite3_bind_int64(st, 2, num2);
  if (sqlite3_bind_parameter_count(st) >= 3)
    sqlite3_bind_int64(st, 3, num3);
  if (sqlite3_step(st) == SQLITE_DONE)
    rc = sqlite3_changes(s->db) > 0 ? 0 : STORE_NOT_FOUND;

done:
  sqlite3_finalize(st);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

int store_user_set_disabled(auth_store *s, const char *username, int disabled,
                            long long now) {
  return update(s,
                "UPDATE users SET disabled = ?2,"
                " tokens_after = max(tokens_after, ?3) WHERE username = ?1",
                username, NULL, disabled != 0, now);
}

int store_user_set_password(auth_store *s, const char *username,
                            const char *hash, long long now) {
  return update(s,
                "UPDATE users SET password_hash = ?2,"
                " tokens_after = max(tokens_after, ?3) WHERE username = ?1",
                username, hash, 0, now);
}

int store_user_set_scopes(auth_store *s, const char *username,
                          const char *scopes) {
  return update(s, "UPDATE users SET scopes = ?2 WHERE username = ?1", username,
                scopes, 0, 0);
}

long long store_user_count(auth_store *s) {
  sqlite3_stmt *st = NULL;
  long long n = -1;

  pthread_mutex_lock(&s->lock);
  if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM users", -1, &st, NULL) ==
          SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  pthread_mutex_unlock(&s->lock);
  return n;
}

/* Rows of a SELECT as a JSON array of objects named by the columns: text,
 * integers, and NULL as null. */
static char *rows_json(auth_store *s, const char *sql, const char *param) {
  sqlite3_stmt *st = NULL;
  cJSON *rows = cJSON_CreateArray(), *row;
  char *text = NULL;
  int i, step;

  pthread_mutex_lock(&s->lock);
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
    goto done;
  if (sqlite3_bind_parameter_count(st) >= 1)
    bind_text(st, 1, param);
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    row = cJSON_CreateObject();
    for (i = 0; i < sqlite3_column_count(st); i++) {
      const char *name = sqlite3_column_name(st, i);
      switch (sqlite3_column_type(st, i)) {
      case SQLITE_INTEGER:
        cJSON_AddNumberToObject(row, name, (double)sqlite3_column_int64(st, i));
        break;
      case SQLITE_NULL:
        cJSON_AddNullToObject(row, name);
        break;
      default:
        cJSON_AddStringToObject(row, name,
                                (const char *)sqlite3_column_text(st, i));
      }
    }
    cJSON_AddItemToArray(rows, row);
  }
  if (step == SQLITE_DONE)
    text = cJSON_PrintUnformatted(rows);

done:
  sqlite3_finalize(st);
  pthread_mutex_unlock(&s->lock);
  cJSON_Delete(rows);
  return text;
}

char *store_user_list(auth_store *s) {
  return rows_json(s,
                   "SELECT username, name, email, tenant, scopes,"
                   " disabled != 0 AS disabled,"
                   " password_hash IS NOT NULL AS has_password, created"
                   " FROM users ORDER BY username",
                   NULL);
}

int store_key_add(auth_store *s, const char *id, const char *username,
                  const unsigned char hash[32], const char *name,
                  const char *scopes, long long now, long long expires) {
  sqlite3_stmt *st = NULL;
  int rc = -1, step;

  pthread_mutex_lock(&s->lock);
  if (sqlite3_prepare_v2(s->db,
                         "INSERT INTO api_keys(id, user_id, hash, name,"
                         " scopes, created, expires)"
                         " SELECT ?1, id, ?3, ?4, ?5, ?6, ?7 FROM users"
                         " WHERE username = ?2",
                         -1, &st, NULL) != SQLITE_OK)
    goto done;
  bind_text(st, 1, id);
  bind_text(st, 2, username);
  sqlite3_bind_blob(st, 3, hash, 32, SQLITE_TRANSIENT);
  bind_text(st, 4, name);
  bind_text(st, 5, scopes ? scopes : "");
  sqlite3_bind_int64(st, 6, now);
  sqlite3_bind_int64(st, 7, expires);
  step = sqlite3_step(st);
  if (step == SQLITE_DONE)
    rc = sqlite3_changes(s->db) > 0 ? 0 : STORE_NOT_FOUND;
  else if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
    rc = STORE_EXISTS;

done:
  sqlite3_finalize(st);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

int store_key_get(auth_store *s, const char *id, auth_key *out) {
  sqlite3_stmt *st = NULL;
  int rc = -1, step;

  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&s->lock);
  if (sqlite3_prepare_v2(
          s->db,
          "SELECT k.id, k.hash, k.scopes, k.expires, k.revoked, " USER_COLUMNS
          " FROM api_keys k JOIN users u ON u.id = k.user_id"
          " WHERE k.id = ?1",
          -1, &st, NULL) != SQLITE_OK)
    goto done;
  bind_text(st, 1, id);
  step = sqlite3_step(st);
  if (step == SQLITE_ROW && sqlite3_column_bytes(st, 1) == 32) {
    out->id = column_text(st, 0);
    memcpy(out->hash, sqlite3_column_blob(st, 1), 32);
    out->scopes = column_text(st, 2);
    out->expires = sqlite3_column_int64(st, 3);
    out->revoked = sqlite3_column_int64(st, 4);
    read_user(st, 5, &out->user);
    rc = 0;
  } else if (step == SQLITE_DONE) {
    rc = STORE_NOT_FOUND;
  }

done:
  sqlite3_finalize(st);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

void store_key_clear(auth_key *k) {
  free(k->id);
  free(k->scopes);
  store_user_clear(&k->user);
  memset(k, 0, sizeof(*k));
}

int store_key_revoke(auth_store *s, const char *id, long long now) {
  return update(s,
                "UPDATE api_keys SET revoked = ?2 WHERE id = ?1"
                " AND revoked = 0",
                id, NULL, now, 0);
}

char *store_key_list(auth_store *s, const char *username) {
  return rows_json(s,
                   "SELECT k.id, u.username, k.name, k.scopes, k.created,"
                   " k.expires, k.revoked FROM api_keys k"
                   " JOIN users u ON u.id = k.user_id"
                   " WHERE ?1 IS NULL OR u.username = ?1 ORDER BY k.created",
                   username);
}
