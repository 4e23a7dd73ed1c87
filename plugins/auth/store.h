/* store.h: plughost's own users and API keys in SQLite. Secrets never
 * arrive here in the clear: passwords come as Argon2id strings, API keys as
 * the SHA-256 of their secret part. Every function takes the store's lock,
 * so any thread may call any of them. */
#ifndef PH_AUTH_STORE_H
#define PH_AUTH_STORE_H

#include <stddef.h>

typedef struct auth_store auth_store;

/* A user row; strings malloc'd (NULL when the column is NULL). */
typedef struct auth_user {
  long long id;
  char *username;
  char *name;
  char *email;
  char *tenant;
  char *password_hash; /* crypto_pwhash_str() text, or NULL (no login). */
  char *scopes;        /* Space-separated. */
  int disabled;
  long long tokens_after; /* Own tokens issued before this are refused. */
} auth_user;

/* An API key row with its user. */
typedef struct auth_key {
  char *id;
  unsigned char hash[32]; /* SHA-256 of the secret part. */
  char *scopes;           /* The key's own scopes, space-separated. */
  long long expires;      /* Unix time, or 0: never. */
  long long revoked;      /* Unix time, or 0: live. */
  auth_user user;
} auth_key;

/* Results besides 0 and -1 (an SQLite failure, logged in err). */
#define STORE_NOT_FOUND 1
#define STORE_EXISTS 2

/* Opens (creating the file, its directory and the schema if needed).
 * Returns 0, or -1 with a message in err. */
int store_open(const char *path, auth_store **out, char *err, size_t size);
void store_close(auth_store *s);

/* The last SQLite error message (for logs), valid until the next call. */
const char *store_error(auth_store *s);

int store_user_get(auth_store *s, const char *username, auth_user *out);
void store_user_clear(auth_user *u);

/* Inserts u (username, name, email, tenant, password_hash, scopes); the
 * username compares case-insensitively. 0, STORE_EXISTS or -1. */
int store_user_add(auth_store *s, const auth_user *u, long long now);

/* 0, STORE_NOT_FOUND or -1. Disabling, and a new password, refuse every
 * own token issued until `now`. */
int store_user_set_disabled(auth_store *s, const char *username, int disabled,
                            long long now);
int store_user_set_password(auth_store *s, const char *username,
                            const char *hash, long long now);
int store_user_set_scopes(auth_store *s, const char *username,
                          const char *scopes);

/* Number of users, or -1. */
long long store_user_count(auth_store *s);

/* Users as a JSON array text (malloc'd; no password hashes), or NULL. */
char *store_user_list(auth_store *s);

/* An API key for a user. 0, STORE_NOT_FOUND (no such user), STORE_EXISTS
 * (id taken) or -1. */
int store_key_add(auth_store *s, const char *id, const char *username,
                  const unsigned char hash[32], const char *name,
                  const char *scopes, long long now, long long expires);
int store_key_get(auth_store *s, const char *id, auth_key *out);
void store_key_clear(auth_key *k);

/* 0, STORE_NOT_FOUND (no live key with that id) or -1. */
int store_key_revoke(auth_store *s, const char *id, long long now);

/* Keys as a JSON array text (of one user, or all when username is NULL),
 * without their hashes; malloc'd, or NULL. */
char *store_key_list(auth_store *s, const char *username);

#endif
