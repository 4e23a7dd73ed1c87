/* auth.c: the auth foundation plugin. It answers the "authn" service (a
 * token or API key in, a principal or a precise refusal out), keeps
 * plughost's own users and API keys (store.c), signs its own access tokens
 * and verifies external ones (jwt.c), and serves the login, whoami,
 * introspection and administration tools.
 *
 * Threads: the service and the tools run on whatever thread calls them (a
 * pool worker, or the host's thread for a service call). What init builds
 * (keys, policies, mappings) is read-only afterwards; the token cache and
 * the login backoff table each have a mutex; the store has its own. */
#include "jwks_remote.h"
#include "jwt.h"
#include "store.h"

#include <plughost.h>

#include <cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_DB "etc/data/auth.db"
#define DEFAULT_ISSUER "urn:plughost:auth"
#define DEFAULT_TOKEN_TTL 3600
#define DEFAULT_LEEWAY 60
/* Remote JWKS: how long fetched keys serve, and how long a fetch may take. */
#define DEFAULT_JWKS_CACHE_TTL 3600
#define DEFAULT_FETCH_TIMEOUT 5
#define DEFAULT_CACHE_SIZE 4096
/* Own tokens and API keys stand for rows that administration changes, so
 * a cached answer about them is re-read from the store this often. */
#define DEFAULT_LOCAL_CACHE_TTL 30
#define DEFAULT_FREE_ATTEMPTS 3
#define DEFAULT_MAX_DELAY 300
/* Failures older than this are forgotten. */
#define BACKOFF_WINDOW 900
#define BACKOFF_SLOTS 1024
#define DEFAULT_MIN_PASSWORD 12
#define MAX_PASSWORD 1024
#define MAX_USERNAME 64
#define ADMIN_SCOPE "auth:admin"
/* An API key: "phk_", 16 hex digits of id, "_", 43 base64url characters of
 * a 256-bit secret. The id finds the row; the secret's hash is compared. */
#define KEY_PREFIX "phk_"
#define KEY_ID_HEX 16
#define KEY_SECRET_BYTES 32
#define KEY_SECRET_CHARS 43
#define KEY_LEN (4 + KEY_ID_HEX + 1 + KEY_SECRET_CHARS)

/* One external issuer, from the config. */
typedef struct issuer {
  char *iss;
  jwt_keyset *keys;    /* From jwks or jwks_file, or NULL: */
  jwks_remote *remote; /* from jwks_uri or discovery. */
  unsigned algs;
  double leeway;
  char *sub, *name, *email, *tenant;  /* Claim names, or NULL. */
  char **scope_claims, **role_claims; /* NULL-ended, or NULL. */
  cJSON *scope_map;
} issuer;

/* A cached verdict: a principal valid until `until`. */
typedef struct cache_entry {
  unsigned char key[32]; /* BLAKE2b of the request that got it. */
  double until;          /* 0: an empty slot. */
  char *principal;
} cache_entry;

#define CACHE_WAYS 4

typedef struct backoff_slot {
  unsigned char key[16];
  int failures;
  double last; /* Time of the last failure; 0: empty. */
  double until;
} backoff_slot;

typedef struct auth {
  const ph_host_api *api;
  ph_instance *self;
  auth_store *store;
  char *db_path;
  /* Own tokens. */
  char *iss;
  char **audiences; /* aud of own tokens, NULL-ended. */
  int token_ttl;
  unsigned own_alg;
  jwt_keyset *own_keys;
  char *own_kid;
  int curl; /* curl_global_init was called: some issuer is remote. */
  /* Every issuer: [0] is our own, then the configured ones. */
  jwt_policy *policies;
  issuer *issuers;
  size_t nissuers;
  double leeway;
  int min_password;
  int free_attempts, max_delay;
  char *dummy_hash; /* Verified against when the user is unknown. */
  /* Cache. */
  pthread_mutex_t cache_lock;
  cache_entry *cache;
  size_t cache_sets;
  int local_ttl;
  /* Login backoff. */
  pthread_mutex_t backoff_lock;
  backoff_slot backoff[BACKOFF_SLOTS];
} auth;

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char **strings_of(const cJSON *array) {
  const cJSON *item;
  char **out;
  int i = 0;

  if (cJSON_IsString(array)) {
    out = calloc(2, sizeof(char *));
    if (out != NULL)
      out[0] = strdup(array->valuestring);
    return out;
  }
  if (!cJSON_IsArray(array))
    return NULL;
  out = calloc((size_t)cJSON_GetArraySize(array) + 1, sizeof(char *));
  cJSON_ArrayForEach(item, array) {
    if (out == NULL || !cJSON_IsString(item) || item->valuestring[0] == '\0' ||
        (out[i++] = strdup(item->valuestring)) == NULL) {
      while (out != NULL && i > 0)
        free(out[--i]);
      free(out);
      return NULL;
    }
  }
  return out;
}

static void free_strings(char **list) {
  char **p;

  for (p = list; p != NULL && *p != NULL; p++)
    free(*p);
  free(list);
}

/* ---- scopes as space-separated words ---- */

static int has_word(const char *words, const char *w) {
  size_t n = strlen(w);
  const char *s, *e;

  for (s = words ? words : ""; *s != '\0'; s = e) {
    while (*s == ' ')
      s++;
    for (e = s; *e != '\0' && *e != ' '; e++)
      ;
    if ((size_t)(e - s) == n && n > 0 && strncmp(s, w, n) == 0)
      return 1;
  }
  return 0;
}

/* A valid scope token (RFC 6749 3.3: printable ASCII but space, ", \). */
static int scope_ok(const char *s) {
  if (*s == '\0' || strlen(s) > 128)
    return 0;
  for (; *s != '\0'; s++)
    if (*s < 0x21 || *s > 0x7e || *s == '"' || *s == '\\')
      return 0;
  return 1;
}

/* JSON array of the words, as cJSON. */
static cJSON *words_array(const char *words) {
  cJSON *list = cJSON_CreateArray();
  const char *s, *e;
  char *w;

  for (s = words ? words : ""; *s != '\0'; s = e) {
    while (*s == ' ')
      s++;
    for (e = s; *e != '\0' && *e != ' '; e++)
      ;
    if (e > s && (w = strndup(s, (size_t)(e - s))) != NULL) {
      cJSON_AddItemToArray(list, cJSON_CreateString(w));
      free(w);
    }
  }
  return list;
}

/* Whether a principal (claims JSON) holds the scope, as the host reads it:
 * the "scopes" array or the "scope" string. */
static int principal_has(const char *principal, const char *scope) {
  cJSON *p = principal ? cJSON_Parse(principal) : NULL;
  const cJSON *item;
  int found = has_word(
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "scope")),
      scope);

  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(p, "scopes")) {
    if (cJSON_IsString(item) && strcmp(item->valuestring, scope) == 0)
      found = 1;
  }
  cJSON_Delete(p);
  return found;
}

/* ---- the token cache: set-associative, bounded, entries expire ---- */

static void cache_key(const char *token, const char *audience,
                      const cJSON *issuers, int api_key_only,
                      unsigned char out[32]) {
  crypto_generichash_state st;
  const cJSON *item;
  unsigned char sep = 0, flag = (unsigned char)api_key_only;

  crypto_generichash_init(&st, NULL, 0, 32);
  crypto_generichash_update(&st, (const unsigned char *)token, strlen(token));
  crypto_generichash_update(&st, &sep, 1);
  crypto_generichash_update(&st, (const unsigned char *)audience,
                            strlen(audience));
  crypto_generichash_update(&st, &sep, 1);
  crypto_generichash_update(&st, &flag, 1);
  cJSON_ArrayForEach(item, issuers) {
    crypto_generichash_update(&st, &sep, 1);
    crypto_generichash_update(&st, (const unsigned char *)item->valuestring,
                              strlen(item->valuestring));
  }
  crypto_generichash_final(&st, out, 32);
}

static size_t cache_set(const auth *a, const unsigned char key[32]) {
  size_t h;

  memcpy(&h, key, sizeof(h));
  return (h & (a->cache_sets - 1)) * CACHE_WAYS;
}

/* The cached principal (malloc'd) for key, or NULL. */
static char *cache_get(auth *a, const unsigned char key[32], double now) {
  cache_entry *set;
  char *found = NULL;
  int i;

  if (a->cache == NULL)
    return NULL;
  pthread_mutex_lock(&a->cache_lock);
  set = &a->cache[cache_set(a, key)];
  for (i = 0; i < CACHE_WAYS; i++) {
    if (set[i].until > now && sodium_memcmp(set[i].key, key, 32) == 0) {
      found = strdup(set[i].principal);
      break;
    }
  }
  pthread_mutex_unlock(&a->cache_lock);
  return found;
}

/* Keeps principal until `until`, replacing an empty, expired or the
 * soonest-expiring entry of its set. */
static void cache_put(auth *a, const unsigned char key[32],
                      const char *principal, double until) {
  cache_entry *set, *victim;
  char *copy = strdup(principal);
  int i;

  if (a->cache == NULL || copy == NULL) {
    free(copy);
    return;
  }
  pthread_mutex_lock(&a->cache_lock);
  set = &a->cache[cache_set(a, key)];
  victim = &set[0];
  for (i = 0; i < CACHE_WAYS; i++) {
    if (sodium_memcmp(set[i].key, key, 32) == 0 || set[i].until == 0) {
      victim = &set[i];
      break;
    }
    if (set[i].until < victim->until)
      victim = &set[i];
  }
  free(victim->principal);
  memcpy(victim->key, key, 32);
  victim->principal = copy;
  victim->until = until;
  pthread_mutex_unlock(&a->cache_lock);
}

/* After administration: nothing cached about our own users survives. (The
 * external entries go too; they are one signature check away.) */
static void cache_flush(auth *a) {
  size_t i;

  if (a->cache == NULL)
    return;
  pthread_mutex_lock(&a->cache_lock);
  for (i = 0; i < a->cache_sets * CACHE_WAYS; i++) {
    free(a->cache[i].principal);
    a->cache[i].principal = NULL;
    a->cache[i].until = 0;
  }
  pthread_mutex_unlock(&a->cache_lock);
}

/* ---- login backoff ---- */

static void backoff_key(const char *kind, const char *value,
                        unsigned char out[16]) {
  crypto_generichash_state st;
  char c;
  const char *p;

  crypto_generichash_init(&st, NULL, 0, 16);
  crypto_generichash_update(&st, (const unsigned char *)kind, strlen(kind) + 1);
  for (p = value; *p != '\0'; p++) {
    c = (char)tolower((unsigned char)*p);
    crypto_generichash_update(&st, (const unsigned char *)&c, 1);
  }
  crypto_generichash_final(&st, out, 16);
}

static backoff_slot *backoff_find(auth *a, const unsigned char key[16],
                                  double now, int create) {
  backoff_slot *oldest = &a->backoff[0];
  int i;

  for (i = 0; i < BACKOFF_SLOTS; i++) {
    backoff_slot *s = &a->backoff[i];
    if (s->last != 0 && now - s->last > BACKOFF_WINDOW)
      memset(s, 0, sizeof(*s));
    if (s->last != 0 && memcmp(s->key, key, 16) == 0)
      return s;
    if (s->last < oldest->last)
      oldest = s;
  }
  if (!create)
    return NULL;
  memset(oldest, 0, sizeof(*oldest));
  memcpy(oldest->key, key, 16);
  return oldest;
}

/* Seconds the caller must still wait before trying key, or 0. */
static double backoff_wait(auth *a, const unsigned char key[16], double now) {
  backoff_slot *s;
  double wait = 0;

  pthread_mutex_lock(&a->backoff_lock);
  s = backoff_find(a, key, now, 0);
  if (s != NULL && s->until > now)
    wait = s->until - now;
  pthread_mutex_unlock(&a->backoff_lock);
  return wait;
}

static void backoff_fail(auth *a, const unsigned char key[16], double now) {
  backoff_slot *s;
  int over;

  pthread_mutex_lock(&a->backoff_lock);
  s = backoff_find(a, key, now, 1);
  s->failures++;
  s->last = now;
  over = s->failures - a->free_attempts;
  /* 1 s after the free attempts, doubling, up to max_delay. */
  if (over >= 0)
    s->until =
        now + fmin((double)a->max_delay, ldexp(1.0, over < 30 ? over : 30));
  pthread_mutex_unlock(&a->backoff_lock);
}

static void backoff_clear(auth *a, const unsigned char key[16], double now) {
  backoff_slot *s;

  pthread_mutex_lock(&a->backoff_lock);
  s = backoff_find(a, key, now, 0);
  if (s != NULL)
    memset(s, 0, sizeof(*s));
  pthread_mutex_unlock(&a->backoff_lock);
}

/* ---- own signing key ---- */

/* kid: base64url of the first 12 bytes of SHA-256 of the public key's
 * SubjectPublicKeyInfo, so that a new key has a new kid. */
static char *key_id(EVP_PKEY *pkey) {
  unsigned char *der = NULL, digest[32];
  int len = i2d_PUBKEY(pkey, &der);
  char *kid = NULL;

  if (len > 0 && crypto_hash_sha256(digest, der, (unsigned long long)len) == 0)
    kid = jwt_b64url_encode(digest, 12);
  OPENSSL_free(der);
  return kid;
}

/* Loads the private key at path, or makes one (P-256 for ES256, Ed25519
 * for EdDSA) and writes it there, mode 0600, never over an existing file. */
static EVP_PKEY *load_or_make_key(const char *path, unsigned alg, char *err,
                                  size_t size) {
  EVP_PKEY *pkey = NULL;
  FILE *f = fopen(path, "r");
  int fd;

  if (f != NULL) {
    pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (pkey == NULL)
      snprintf(err, size, "key_file %s: not a PEM private key", path);
    return pkey;
  }
  if (errno != ENOENT) {
    snprintf(err, size, "key_file %s: %s", path, strerror(errno));
    return NULL;
  }
  pkey = alg == JWT_EDDSA ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                          : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  fd = pkey ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
  f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (f == NULL ||
      PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
      fflush(f) != 0 || fsync(fileno(f)) != 0) {
    snprintf(err, size, "key_file %s: cannot write a new key: %s", path,
             strerror(errno));
    EVP_PKEY_free(pkey);
    pkey = NULL;
    unlink(path);
  }
  if (f != NULL)
    fclose(f);
  else if (fd >= 0)
    close(fd);
  return pkey;
}

/* ---- config ---- */

static void issuer_free(issuer *is) {
  free(is->iss);
  jwt_keyset_free(is->keys);
  jwks_remote_free(is->remote);
  free(is->sub);
  free(is->name);
  free(is->email);
  free(is->tenant);
  free_strings(is->scope_claims);
  free_strings(is->role_claims);
  cJSON_Delete(is->scope_map);
}

static void auth_free(auth *a) {
  size_t i;

  if (a == NULL)
    return;
  store_close(a->store);
  free(a->db_path);
  free(a->iss);
  free_strings(a->audiences);
  jwt_keyset_free(a->own_keys);
  free(a->own_kid);
  for (i = 0; i < a->nissuers; i++)
    issuer_free(&a->issuers[i]);
  free(a->issuers);
  free(a->policies);
  free(a->dummy_hash);
  for (i = 0; a->cache != NULL && i < a->cache_sets * CACHE_WAYS; i++)
    free(a->cache[i].principal);
  free(a->cache);
  pthread_mutex_destroy(&a->cache_lock);
  pthread_mutex_destroy(&a->backoff_lock);
  if (a->curl)
    curl_global_cleanup();
  free(a);
}

static char *read_file(const char *path, char *err, size_t size) {
  FILE *f = fopen(path, "r");
  char *text = NULL;
  long len;

  if (f == NULL) {
    snprintf(err, size, "%s: %s", path, strerror(errno));
    return NULL;
  }
  if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
      len < 1024 * 1024 && fseek(f, 0, SEEK_SET) == 0 &&
      (text = malloc((size_t)len + 1)) != NULL) {
    if (fread(text, 1, (size_t)len, f) != (size_t)len) {
      free(text);
      text = NULL;
    } else {
      text[len] = '\0';
    }
  }
  fclose(f);
  if (text == NULL)
    snprintf(err, size, "%s: cannot read (at most 1 MiB)", path);
  return text;
}

/* An algorithms list as bits; HS256 is never accepted here. */
static int parse_algs(const cJSON *list, unsigned *out) {
  const cJSON *item;
  unsigned bit;

  *out = 0;
  if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
    return -1;
  cJSON_ArrayForEach(item, list) {
    bit = jwt_alg_bit(cJSON_GetStringValue(item));
    if (bit == 0 || bit == JWT_HS256)
      return -1;
    *out |= bit;
  }
  return 0;
}

static int dup_claim_name(const cJSON *v, char **out) {
  if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
    return -1;
  *out = strdup(v->valuestring);
  return *out ? 0 : -1;
}

static int parse_claims(issuer *is, const cJSON *claims, char *err,
                        size_t size) {
  const cJSON *item;

  if (!cJSON_IsObject(claims))
    goto bad;
  cJSON_ArrayForEach(item, claims) {
    const char *k = item->string;
    int rc;
    if (strcmp(k, "sub") == 0)
      rc = dup_claim_name(item, &is->sub);
    else if (strcmp(k, "name") == 0)
      rc = dup_claim_name(item, &is->name);
    else if (strcmp(k, "email") == 0)
      rc = dup_claim_name(item, &is->email);
    else if (strcmp(k, "tenant") == 0)
      rc = dup_claim_name(item, &is->tenant);
    else if (strcmp(k, "scopes") == 0)
      rc = (is->scope_claims = strings_of(item)) ? 0 : -1;
    else if (strcmp(k, "roles") == 0)
      rc = (is->role_claims = strings_of(item)) ? 0 : -1;
    else
      rc = -1;
    if (rc != 0) {
      snprintf(err, size, "issuer %s: claims: bad or unknown key '%s'", is->iss,
               k);
      return -1;
    }
  }
  return 0;

bad:
  snprintf(err, size, "issuer %s: \"claims\" must be an object", is->iss);
  return -1;
}

static int parse_scope_map(issuer *is, const cJSON *map, char *err,
                           size_t size) {
  const cJSON *role, *scope;

  if (!cJSON_IsObject(map))
    goto bad;
  cJSON_ArrayForEach(role, map) {
    if (!cJSON_IsArray(role))
      goto bad;
    cJSON_ArrayForEach(scope, role) {
      if (!cJSON_IsString(scope) || !scope_ok(scope->valuestring))
        goto bad;
    }
  }
  is->scope_map = cJSON_Duplicate(map, 1);
  return 0;

bad:
  snprintf(err, size,
           "issuer %s: \"scope_map\" maps a role or group to a list of "
           "scopes",
           is->iss);
  return -1;
}

static void log_fetch(void *ctx, int failed, const char *message) {
  auth *a = ctx;

  a->api->log(a->self, failed ? PH_LOG_WARNING : PH_LOG_INFO, "auth: %s",
              message);
}

static int parse_issuer(auth *a, issuer *is, const cJSON *obj, char *err,
                        size_t size) {
  const cJSON *item, *jwks = NULL, *jwks_file = NULL, *jwks_uri = NULL;
  double cache_ttl = DEFAULT_JWKS_CACHE_TTL, timeout = DEFAULT_FETCH_TIMEOUT;
  int discovery = 0;
  char *text;

  is->algs = JWT_RS256 | JWT_PS256 | JWT_ES256 | JWT_EDDSA;
  is->leeway = a->leeway;
  item = cJSON_GetObjectItemCaseSensitive(obj, "issuer");
  if (!cJSON_IsObject(obj) || !cJSON_IsString(item) ||
      item->valuestring[0] == '\0') {
    snprintf(err, size, "issuers: each needs an \"issuer\" (its exact iss)");
    return -1;
  }
  is->iss = strdup(item->valuestring);
  if (is->iss == NULL)
    return -1;
  cJSON_ArrayForEach(item, obj) {
    const char *k = item->string;
    int rc = 0;
    if (strcmp(k, "issuer") == 0)
      continue;
    if (strcmp(k, "jwks") == 0 && cJSON_IsObject(item))
      jwks = item;
    else if (strcmp(k, "jwks_file") == 0 && cJSON_IsString(item))
      jwks_file = item;
    else if (strcmp(k, "jwks_uri") == 0 && cJSON_IsString(item))
      jwks_uri = item;
    else if (strcmp(k, "discovery") == 0 && cJSON_IsBool(item))
      discovery = cJSON_IsTrue(item);
    else if (strcmp(k, "jwks_cache_ttl") == 0 && cJSON_IsNumber(item) &&
             item->valuedouble >= 60 && item->valuedouble <= 86400)
      cache_ttl = item->valuedouble;
    else if (strcmp(k, "fetch_timeout") == 0 && cJSON_IsNumber(item) &&
             item->valuedouble >= 0.1 && item->valuedouble <= 60)
      timeout = item->valuedouble;
    else if (strcmp(k, "algorithms") == 0)
      rc = parse_algs(item, &is->algs);
    else if (strcmp(k, "leeway") == 0 && cJSON_IsNumber(item) &&
             item->valuedouble >= 0 && item->valuedouble <= 600)
      is->leeway = item->valuedouble;
    else if (strcmp(k, "claims") == 0)
      rc = parse_claims(is, item, err, size) == 0 ? 0 : -2;
    else if (strcmp(k, "scope_map") == 0)
      rc = parse_scope_map(is, item, err, size) == 0 ? 0 : -2;
    else
      rc = -1;
    if (rc == -2)
      return -1;
    if (rc != 0) {
      snprintf(err, size,
               "issuer %s: unknown key or bad value: '%s' (algorithms: "
               "RS256, PS256, ES256, EdDSA)",
               is->iss, k);
      return -1;
    }
  }
  if ((jwks != NULL) + (jwks_file != NULL) + (jwks_uri != NULL) + discovery !=
      1) {
    snprintf(err, size,
             "issuer %s: give exactly one of jwks, jwks_file, jwks_uri or "
             "discovery: true",
             is->iss);
    return -1;
  }
  if (jwks_uri != NULL || discovery) {
    char why[256] = "out of memory";
    if (!a->curl && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      snprintf(err, size, "issuer %s: libcurl failed to initialise", is->iss);
      return -1;
    }
    a->curl = 1;
    is->remote = jwks_remote_new(
        is->iss, jwks_uri ? jwks_uri->valuestring : NULL, cache_ttl,
        (long)(timeout * 1000), log_fetch, a, why, sizeof(why));
    if (is->remote == NULL) {
      snprintf(err, size, "issuer %s: %s", is->iss, why);
      return -1;
    }
    return 0; /* Keys come at the first token that needs them. */
  }
  if (jwks != NULL) {
    text = cJSON_PrintUnformatted(jwks);
  } else {
    text = read_file(jwks_file->valuestring, err, size);
    if (text == NULL)
      return -1;
  }
  if (text != NULL) {
    char why[256] = "out of memory";
    is->keys = jwt_keyset_parse_jwks(text, why, sizeof(why));
    free(text);
    if (is->keys == NULL) {
      snprintf(err, size, "issuer %s: JWKS: %s", is->iss, why);
      return -1;
    }
  }
  if (jwt_keyset_count(is->keys) == 0) {
    snprintf(err, size, "issuer %s: the JWKS has no signing key", is->iss);
    return -1;
  }
  return 0;
}

static int parse_issuers(auth *a, const cJSON *list, char *err, size_t size) {
  const cJSON *item;
  size_t i;

  if (!cJSON_IsArray(list)) {
    snprintf(err, size, "\"issuers\" must be an array of objects");
    return -1;
  }
  a->issuers = calloc((size_t)cJSON_GetArraySize(list) + 1, sizeof(issuer));
  if (a->issuers == NULL)
    return -1;
  cJSON_ArrayForEach(item, list) {
    if (parse_issuer(a, &a->issuers[a->nissuers++], item, err, size) != 0)
      return -1;
    for (i = 0; i + 1 < a->nissuers; i++)
      if (strcmp(a->issuers[i].iss, a->issuers[a->nissuers - 1].iss) == 0) {
        snprintf(err, size, "issuer %s is configured twice", a->issuers[i].iss);
        return -1;
      }
  }
  return 0;
}

/* Our own key: a generated ES256 or EdDSA key in key_file, or an HS256
 * secret from an environment variable. */
static int setup_own_key(auth *a, const char *key_file, const char *secret_env,
                         char *err, size_t size) {
  char *path = NULL;
  const char *secret;
  EVP_PKEY *pkey;

  a->own_keys = jwt_keyset_new();
  if (a->own_keys == NULL)
    return -1;
  if (a->own_alg == JWT_HS256) {
    secret = getenv(secret_env);
    if (secret == NULL || strlen(secret) < 32) {
      snprintf(err, size,
               "token_alg HS256 needs a secret of at least 32 bytes in the "
               "environment variable %s",
               secret_env);
      return -1;
    }
    a->own_kid = strdup("hs256");
    return a->own_kid == NULL ||
                   jwt_keyset_add_secret(a->own_keys, a->own_kid,
                                         (const unsigned char *)secret,
                                         strlen(secret)) != 0
               ? -1
               : 0;
  }
  if (key_file == NULL && asprintf(&path, "%s.key.pem", a->db_path) < 0)
    return -1;
  pkey = load_or_make_key(key_file ? key_file : path, a->own_alg, err, size);
  free(path);
  if (pkey == NULL)
    return -1;
  a->own_kid = key_id(pkey);
  if (a->own_kid == NULL ||
      jwt_keyset_add_pkey(a->own_keys, a->own_kid, pkey) != 0) {
    snprintf(err, size, "the signing key does not fit token_alg");
    EVP_PKEY_free(pkey);
    return -1;
  }
  return 0;
}

/* bootstrap_admin: {"username", "password_env"}: when the user does not
 * exist, it is made with the password from that variable and the admin
 * scope. Once it exists the variable is no longer read. */
static int bootstrap(auth *a, const cJSON *cfg, char *err, size_t size) {
  const char *user =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "username"));
  const char *env = cJSON_GetStringValue(
      cJSON_GetObjectItemCaseSensitive(cfg, "password_env"));
  const char *password;
  char hash[crypto_pwhash_STRBYTES];
  auth_user u = {0};
  int rc;

  if (!cJSON_IsObject(cfg) || user == NULL || env == NULL ||
      cJSON_GetArraySize(cfg) != 2) {
    snprintf(err, size,
             "bootstrap_admin is {\"username\": ..., \"password_env\": ...}");
    return -1;
  }
  rc = store_user_get(a->store, user, &u);
  store_user_clear(&u);
  if (rc == 0)
    return 0;
  password = getenv(env);
  if (rc != STORE_NOT_FOUND || password == NULL ||
      (int)strlen(password) < a->min_password) {
    snprintf(err, size,
             "bootstrap_admin: the user %s does not exist and %s holds no "
             "password of at least %d characters",
             user, env, a->min_password);
    return -1;
  }
  if (crypto_pwhash_str(hash, password, strlen(password),
                        crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    return -1;
  u.username = (char *)user;
  u.password_hash = hash;
  u.scopes = (char *)ADMIN_SCOPE;
  if (store_user_add(a->store, &u, (long long)now_s()) != 0) {
    snprintf(err, size, "bootstrap_admin: %s", store_error(a->store));
    return -1;
  }
  a->api->log(a->self, PH_LOG_NOTICE, "auth: created the admin user %s", user);
  return 0;
}

static int parse_config(auth *a, const char *config_json, char *err,
                        size_t size) {
  cJSON *cfg = cJSON_Parse(config_json), *item;
  const cJSON *issuers = NULL, *boot = NULL, *aud = NULL;
  const char *key_file = NULL, *secret_env = "MCP_AUTH_JWT_SECRET";
  const char *db = DEFAULT_DB, *iss = DEFAULT_ISSUER, *alg = "ES256";
  long long cache_size = DEFAULT_CACHE_SIZE;
  int rc = -1;
  size_t i;
  double v;

  a->token_ttl = DEFAULT_TOKEN_TTL;
  a->leeway = DEFAULT_LEEWAY;
  a->local_ttl = DEFAULT_LOCAL_CACHE_TTL;
  a->free_attempts = DEFAULT_FREE_ATTEMPTS;
  a->max_delay = DEFAULT_MAX_DELAY;
  a->min_password = DEFAULT_MIN_PASSWORD;
  if (!cJSON_IsObject(cfg)) {
    snprintf(err, size, "config is not a JSON object");
    goto cleanup;
  }
  cJSON_ArrayForEach(item, cfg) {
    const char *k = item->string, *s = cJSON_GetStringValue(item);
    v = cJSON_IsNumber(item) ? item->valuedouble : -1;
    if (strcmp(k, "db") == 0 && s != NULL && s[0] != '\0')
      db = s;
    else if (strcmp(k, "issuer") == 0 && s != NULL && s[0] != '\0')
      iss = s;
    else if (strcmp(k, "token_audience") == 0 &&
             (cJSON_IsString(item) || cJSON_IsArray(item)))
      aud = item;
    else if (strcmp(k, "token_ttl") == 0 && v >= 60 && v <= 86400)
      a->token_ttl = (int)v;
    else if (strcmp(k, "token_alg") == 0 && s != NULL &&
             (jwt_alg_bit(s) & (JWT_ES256 | JWT_EDDSA | JWT_HS256)) != 0)
      alg = s;
    else if (strcmp(k, "key_file") == 0 && s != NULL && s[0] != '\0')
      key_file = s;
    else if (strcmp(k, "secret_env") == 0 && s != NULL && s[0] != '\0')
      secret_env = s;
    else if (strcmp(k, "leeway") == 0 && v >= 0 && v <= 600)
      a->leeway = v;
    else if (strcmp(k, "issuers") == 0)
      issuers = item;
    else if (strcmp(k, "cache_size") == 0 && v >= 0 && v <= 1048576)
      cache_size = (long long)v;
    else if (strcmp(k, "local_cache_ttl") == 0 && v >= 0 && v <= 3600)
      a->local_ttl = (int)v;
    else if (strcmp(k, "login_free_attempts") == 0 && v >= 1 && v <= 100)
      a->free_attempts = (int)v;
    else if (strcmp(k, "login_max_delay") == 0 && v >= 1 && v <= 86400)
      a->max_delay = (int)v;
    else if (strcmp(k, "min_password_length") == 0 && v >= 8 && v <= 128)
      a->min_password = (int)v;
    else if (strcmp(k, "bootstrap_admin") == 0)
      boot = item;
    else {
      snprintf(err, size, "config: unknown key or wrong type: '%s'", k);
      goto cleanup;
    }
  }
  a->own_alg = jwt_alg_bit(alg);
  a->iss = strdup(iss);
  a->db_path = strdup(db);
  if (aud != NULL) {
    a->audiences = strings_of(aud);
  } else if ((a->audiences = calloc(2, sizeof(char *))) != NULL) {
    a->audiences[0] = strdup(iss);
  }
  if (a->iss == NULL || a->db_path == NULL || a->audiences == NULL ||
      a->audiences[0] == NULL) {
    snprintf(err, size, "config: \"token_audience\" is a URL or a list");
    goto cleanup;
  }
  if (issuers != NULL && parse_issuers(a, issuers, err, size) != 0)
    goto cleanup;
  for (i = 0; i < a->nissuers; i++)
    if (strcmp(a->issuers[i].iss, a->iss) == 0) {
      snprintf(err, size, "issuer %s is our own issuer", a->iss);
      goto cleanup;
    }
  if (store_open(a->db_path, &a->store, err, size) != 0 ||
      setup_own_key(a, key_file, secret_env, err, size) != 0)
    goto cleanup;
  if (boot != NULL && bootstrap(a, boot, err, size) != 0)
    goto cleanup;
  if (cache_size > 0) {
    a->cache_sets = 1;
    while (a->cache_sets * CACHE_WAYS < (size_t)cache_size)
      a->cache_sets <<= 1;
    a->cache = calloc(a->cache_sets * CACHE_WAYS, sizeof(cache_entry));
    if (a->cache == NULL)
      goto cleanup;
  }
  rc = 0;

cleanup:
  cJSON_Delete(cfg);
  return rc;
}

/* The policies jwt_verify chooses from: ours first, then the issuers. */
static int build_policies(auth *a) {
  size_t i;

  a->policies = calloc(a->nissuers + 1, sizeof(jwt_policy));
  if (a->policies == NULL)
    return -1;
  a->policies[0] = (jwt_policy){.issuer = a->iss,
                                .algs = a->own_alg,
                                .kid_required = 1,
                                .leeway = a->leeway,
                                .keys = a->own_keys};
  for (i = 0; i < a->nissuers; i++)
    a->policies[i + 1] = (jwt_policy){.issuer = a->issuers[i].iss,
                                      .algs = a->issuers[i].algs,
                                      .kid_required = 1,
                                      .leeway = a->issuers[i].leeway,
                                      .keys = a->issuers[i].keys};
  return 0;
}

static int auth_init(ph_instance *self, const ph_host_api *api,
                     const char *config_json, void **state) {
  char err[512] = "out of memory";
  auth *a = calloc(1, sizeof(*a));
  unsigned char junk[32];
  char junk_text[sizeof(junk) * 2 + 1];

  if (a == NULL)
    return -1;
  a->api = api;
  a->self = self;
  pthread_mutex_init(&a->cache_lock, NULL);
  pthread_mutex_init(&a->backoff_lock, NULL);
  if (sodium_init() < 0) {
    api->log(self, PH_LOG_ERROR, "auth: libsodium failed to initialise");
    auth_free(a);
    return -1;
  }
  if (parse_config(a, config_json, err, sizeof(err)) != 0 ||
      build_policies(a) != 0) {
    api->log(self, PH_LOG_ERROR, "auth: %s", err);
    auth_free(a);
    return -1;
  }
  /* A hash of a random password with the same parameters: an unknown user
   * costs one verification, as a known one does. */
  randombytes_buf(junk, sizeof(junk));
  sodium_bin2hex(junk_text, sizeof(junk_text), junk, sizeof(junk));
  a->dummy_hash = malloc(crypto_pwhash_STRBYTES);
  if (a->dummy_hash == NULL ||
      crypto_pwhash_str(a->dummy_hash, junk_text, strlen(junk_text),
                        crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    api->log(self, PH_LOG_ERROR, "auth: cannot hash (out of memory?)");
    auth_free(a);
    return -1;
  }
  api->log(self, PH_LOG_INFO,
           "auth: store %s, own tokens %s (kid %s), %zu external issuer(s)",
           a->db_path,
           a->own_alg == JWT_HS256   ? "HS256"
           : a->own_alg == JWT_EDDSA ? "EdDSA"
                                     : "ES256",
           a->own_kid, a->nissuers);
  *state = a;
  return 0;
}

static void auth_fini(void *state) {
  auth_free(state);
}

/* ---- validation: the authn service's work ---- */

/* A verdict: principal (cJSON, on success) or reason and description. */
typedef struct verdict {
  cJSON *principal;
  const char *reason;
  char detail[256];
  double until; /* How long the principal may be cached. */
} verdict;

static void deny(verdict *v, const char *reason, const char *detail) {
  v->reason = reason;
  snprintf(v->detail, sizeof(v->detail), "%s", detail);
}

/* The principal of one of our users, from the store's current row. */
static cJSON *user_principal(const auth_user *u, const char *kind,
                             const char *iss, double exp) {
  cJSON *p = cJSON_CreateObject();

  cJSON_AddStringToObject(p, "sub", u->username);
  if (u->name != NULL)
    cJSON_AddStringToObject(p, "name", u->name);
  else
    cJSON_AddNullToObject(p, "name");
  if (u->email != NULL)
    cJSON_AddStringToObject(p, "email", u->email);
  else
    cJSON_AddNullToObject(p, "email");
  if (u->tenant != NULL)
    cJSON_AddStringToObject(p, "tenant", u->tenant);
  else
    cJSON_AddNullToObject(p, "tenant");
  cJSON_AddItemToObject(p, "scopes", words_array(u->scopes));
  cJSON_AddArrayToObject(p, "roles");
  cJSON_AddStringToObject(p, "kind", kind);
  cJSON_AddStringToObject(p, "iss", iss);
  if (exp > 0)
    cJSON_AddNumberToObject(p, "exp", exp);
  else
    cJSON_AddNullToObject(p, "exp");
  return p;
}

static void sha256(const char *s, size_t len, unsigned char out[32]) {
  crypto_hash_sha256(out, (const unsigned char *)s, len);
}

static int is_api_key(const char *token) {
  size_t i;

  if (strlen(token) != KEY_LEN || strncmp(token, KEY_PREFIX, 4) != 0 ||
      token[4 + KEY_ID_HEX] != '_')
    return 0;
  for (i = 4; i < 4 + KEY_ID_HEX; i++)
    if (!isxdigit((unsigned char)token[i]) || isupper((unsigned char)token[i]))
      return 0;
  return 1;
}

static void check_api_key(auth *a, const char *token, double now, verdict *v) {
  char id[KEY_ID_HEX + 1];
  unsigned char digest[32];
  auth_key k;
  int rc;

  if (!is_api_key(token)) {
    deny(v, "malformed", "not an API key of this server");
    return;
  }
  memcpy(id, token + 4, KEY_ID_HEX);
  id[KEY_ID_HEX] = '\0';
  rc = store_key_get(a->store, id, &k);
  if (rc != 0) {
    deny(v, rc == STORE_NOT_FOUND ? "unknown_api_key" : "unavailable",
         rc == STORE_NOT_FOUND ? "no such API key" : "the store failed");
    return;
  }
  sha256(token + 4 + KEY_ID_HEX + 1, KEY_SECRET_CHARS, digest);
  if (sodium_memcmp(digest, k.hash, 32) != 0)
    deny(v, "unknown_api_key", "no such API key");
  else if (k.revoked != 0)
    deny(v, "revoked_api_key", "the API key was revoked");
  else if (k.expires != 0 && now > (double)k.expires)
    deny(v, "expired", "the API key expired");
  else if (k.user.disabled)
    deny(v, "disabled_user", "the key's user is disabled");
  if (v->reason == NULL) {
    v->principal =
        user_principal(&k.user, "api_key", a->iss, (double)k.expires);
    cJSON_ReplaceItemInObject(v->principal, "scopes", words_array(k.scopes));
    cJSON_AddStringToObject(v->principal, "key_id", k.id);
    v->until = now + a->local_ttl;
    if (k.expires != 0 && (double)k.expires < v->until)
      v->until = (double)k.expires;
  }
  store_key_clear(&k);
}

static void check_jwt(auth *a, const char *token, const char *audience,
                      const jwt_policy *policies, const size_t *map, size_t n,
                      double now, verdict *v) {
  jwt_verdict jv;
  const issuer *is;
  const cJSON *sub, *iat;
  auth_user u;
  char why[200];
  int rc;

  if (jwt_verify(token, policies, n, audience, now, &jv) != 0) {
    deny(v, jv.reason, jv.detail);
    return;
  }
  if (map[jv.policy] == 0) {
    /* Ours: the user must still exist, be enabled, and not have had its
     * tokens revoked since this one was issued (iat has whole seconds, so
     * one issued in the second of a revocation is refused too). */
    sub = cJSON_GetObjectItemCaseSensitive(jv.claims, "sub");
    iat = cJSON_GetObjectItemCaseSensitive(jv.claims, "iat");
    rc = cJSON_IsString(sub) ? store_user_get(a->store, sub->valuestring, &u)
                             : STORE_NOT_FOUND;
    if (rc != 0)
      deny(v, rc == STORE_NOT_FOUND ? "unknown_user" : "unavailable",
           rc == STORE_NOT_FOUND ? "the token's user no longer exists"
                                 : "the store failed");
    else if (u.disabled)
      deny(v, "disabled_user", "the user is disabled");
    else if (!cJSON_IsNumber(iat) || iat->valuedouble <= (double)u.tokens_after)
      deny(v, "token_revoked",
           "the user's tokens were revoked after this one was issued");
    else {
      v->principal = user_principal(&u, "user", a->iss, jv.exp);
      v->until = fmin(jv.exp, now + a->local_ttl);
    }
    if (rc == 0)
      store_user_clear(&u);
  } else {
    is = &a->issuers[map[jv.policy] - 1];
    v->principal = jwt_principal(
        jv.claims,
        &(jwt_mapping){.sub_claim = is->sub,
                       .name_claim = is->name,
                       .email_claim = is->email,
                       .tenant_claim = is->tenant,
                       .scope_claims = (const char *const *)is->scope_claims,
                       .role_claims = (const char *const *)is->role_claims,
                       .scope_map = is->scope_map},
        "external", why, sizeof(why));
    if (v->principal == NULL)
      deny(v, JWT_BAD_CLAIMS, why);
    v->until = jv.exp;
  }
  cJSON_Delete(jv.claims);
}

/* Validates a token for an audience and a set of accepted issuers (NULL:
 * all of ours). api_key_only: it came as X-API-Key. */
static void validate(auth *a, const char *token, const char *audience,
                     const cJSON *accepted, int api_key_only, verdict *v) {
  jwt_policy *policies = NULL;
  size_t *map = NULL, n = 0, i, remote_at = 0;
  double now = now_s();
  int own_ok = 1;
  const cJSON *item;
  char *claimed = NULL, why[256];
  jwks_remote *remote = NULL;
  jwks_snapshot *keys = NULL, *fresh;

  memset(v, 0, sizeof(*v));
  if (accepted != NULL) {
    own_ok = 0;
    cJSON_ArrayForEach(item, accepted) {
      if (strcmp(item->valuestring, a->iss) == 0)
        own_ok = 1;
    }
  }
  if (api_key_only || strncmp(token, KEY_PREFIX, 4) == 0) {
    if (!own_ok)
      deny(v, JWT_UNKNOWN_ISSUER,
           "API keys of this server are not accepted "
           "here");
    else
      check_api_key(a, token, now, v);
    return;
  }
  policies = calloc(a->nissuers + 1, sizeof(*policies));
  map = calloc(a->nissuers + 1, sizeof(*map));
  if (policies == NULL || map == NULL) {
    deny(v, "unavailable", "out of memory");
    goto cleanup;
  }
  for (i = 0; i <= a->nissuers; i++) {
    int ok = accepted == NULL;
    cJSON_ArrayForEach(item, accepted) {
      if (strcmp(item->valuestring, a->policies[i].issuer) == 0)
        ok = 1;
    }
    if (ok && i > 0 && a->issuers[i - 1].remote != NULL) {
      /* Only the issuer the token claims has its keys fetched: a token
       * naming another one must not make us fetch every provider's. */
      if (claimed == NULL)
        claimed = jwt_unverified_issuer(token);
      if (claimed == NULL || strcmp(claimed, a->policies[i].issuer) != 0)
        continue;
      remote = a->issuers[i - 1].remote;
      keys = jwks_remote_get(remote, why, sizeof(why));
      if (keys == NULL) {
        deny(v, "unavailable", why);
        goto cleanup;
      }
      remote_at = n;
      policies[n] = a->policies[i];
      policies[n].keys = jwks_snapshot_keys(keys);
      map[n++] = i;
    } else if (ok) {
      policies[n] = a->policies[i];
      map[n++] = i;
    }
  }
  check_jwt(a, token, audience, policies, map, n, now, v);
  /* A kid we do not know: the provider may have rotated its keys. */
  if (keys != NULL && v->reason != NULL &&
      strcmp(v->reason, JWT_UNKNOWN_KID) == 0) {
    fresh = jwks_remote_refetch(remote, keys);
    if (fresh != keys) {
      policies[remote_at].keys = jwks_snapshot_keys(fresh);
      memset(v, 0, sizeof(*v));
      check_jwt(a, token, audience, policies, map, n, now, v);
    }
    jwks_snapshot_release(fresh);
  }

cleanup:
  jwks_snapshot_release(keys);
  free(claimed);
  free(policies);
  free(map);
}

/* The service's answer: the principal, or {error, reason,
 * error_description}. Cached principals are answered from the cache. */
static char *authn(auth *a, const char *token, const char *audience,
                   const cJSON *issuers, int api_key_only) {
  unsigned char key[32];
  verdict v;
  cJSON *out;
  char *text;
  double now = now_s();

  cache_key(token, audience, issuers, api_key_only, key);
  text = cache_get(a, key, now);
  if (text != NULL)
    return text;
  validate(a, token, audience, issuers, api_key_only, &v);
  if (v.principal != NULL) {
    text = cJSON_PrintUnformatted(v.principal);
    cJSON_Delete(v.principal);
    if (text != NULL && v.until > now)
      cache_put(a, key, text, v.until);
    return text;
  }
  out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "error",
                          strcmp(v.reason, "unavailable") == 0
                              ? "temporarily_unavailable"
                              : "invalid_token");
  cJSON_AddStringToObject(out, "reason", v.reason);
  cJSON_AddStringToObject(out, "error_description", v.detail);
  text = cJSON_PrintUnformatted(out);
  cJSON_Delete(out);
  return text;
}

static void serve(ph_call *call, const char *service, const char *request_json,
                  void *state) {
  auth *a = state;
  const ph_host_api *api = ph_call_api(call);
  cJSON *req = cJSON_Parse(request_json);
  const cJSON *token = cJSON_GetObjectItemCaseSensitive(req, "token");
  const cJSON *aud = cJSON_GetObjectItemCaseSensitive(req, "audience");
  const cJSON *issuers = cJSON_GetObjectItemCaseSensitive(req, "issuers");
  const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(req, "scheme");
  const cJSON *item;
  char *answer;
  int bad = !cJSON_IsString(token) || !cJSON_IsString(aud) ||
            aud->valuestring[0] == '\0' ||
            (issuers != NULL && !cJSON_IsArray(issuers)) ||
            (scheme != NULL && !cJSON_IsString(scheme));

  (void)service;
  cJSON_ArrayForEach(item, issuers) {
    if (!cJSON_IsString(item))
      bad = 1;
  }
  if (scheme != NULL && cJSON_IsString(scheme) &&
      strcmp(scheme->valuestring, "bearer") != 0 &&
      strcmp(scheme->valuestring, "api_key") != 0)
    bad = 1;
  if (bad) {
    api->reply_error(call, PH_RPC_INVALID_PARAMS,
                     "authn: the request is {\"token\": string, \"audience\": "
                     "string, \"issuers\": [strings] (optional), \"scheme\": "
                     "\"bearer\" | \"api_key\" (optional)}",
                     NULL);
    goto cleanup;
  }
  answer = authn(a, token->valuestring, aud->valuestring, issuers,
                 scheme != NULL && strcmp(scheme->valuestring, "api_key") == 0);
  if (answer == NULL)
    api->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
  else
    api->reply(call, answer);
  free(answer);

cleanup:
  cJSON_Delete(req);
}

/* ---- tools ---- */

static void reply_json(ph_call *call, cJSON *obj, int is_error) {
  char *text = cJSON_PrintUnformatted(obj);

  if (text == NULL)
    ph_reply_text(ph_call_api(call), call, "out of memory", 1);
  else
    ph_reply_structured(ph_call_api(call), call, text, is_error);
  free(text);
  cJSON_Delete(obj);
}

/* Refuses the call unless the caller holds the admin scope. The host
 * checks the tool's required_scope first; this holds even where a
 * department's config overrides it. */
static int require_admin(ph_call *call) {
  const ph_host_api *api = ph_call_api(call);

  if (principal_has(api->principal(call), ADMIN_SCOPE))
    return 0;
  ph_reply_textf(api, call, 1, "this tool needs the scope %s", ADMIN_SCOPE);
  return -1;
}

static int username_ok(const char *s) {
  size_t n = strlen(s), i;

  if (n == 0 || n > MAX_USERNAME)
    return 0;
  for (i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && strchr("._@-", s[i]) == NULL)
      return 0;
  return 1;
}

static int password_ok(auth *a, ph_call *call, const char *pw) {
  size_t n = strlen(pw);

  if ((int)n >= a->min_password && n <= MAX_PASSWORD)
    return 1;
  ph_reply_textf(ph_call_api(call), call, 1,
                 "password: from %d to %d characters", a->min_password,
                 MAX_PASSWORD);
  return 0;
}

/* The scopes argument as space-separated words (malloc'd), or NULL after
 * replying with what is wrong. */
static char *scopes_arg(ph_call *call, ph_args *args, const char *name) {
  const char *json = ph_args_json(args, name);
  cJSON *list = json ? cJSON_Parse(json) : cJSON_CreateArray();
  const cJSON *item;
  char *out = calloc(1, 1), *grown;
  size_t len = 0;

  cJSON_ArrayForEach(item, list) {
    if (out == NULL || !cJSON_IsString(item) || !scope_ok(item->valuestring)) {
      ph_reply_textf(ph_call_api(call), call, 1,
                     "%s: a list of scopes (printable ASCII, no spaces or "
                     "quotes)",
                     name);
      free(out);
      cJSON_Delete(list);
      return NULL;
    }
    if (has_word(out, item->valuestring))
      continue;
    grown = realloc(out, len + strlen(item->valuestring) + 2);
    if (grown == NULL)
      continue;
    out = grown;
    len +=
        (size_t)sprintf(out + len, "%s%s", len ? " " : "", item->valuestring);
  }
  cJSON_Delete(list);
  return out;
}

static char *hash_password(const char *pw) {
  char *hash = malloc(crypto_pwhash_STRBYTES);

  if (hash != NULL &&
      crypto_pwhash_str(hash, pw, strlen(pw),
                        crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    free(hash);
    hash = NULL;
  }
  return hash;
}

static char *mint_token(auth *a, const auth_user *u, double now) {
  cJSON *claims = cJSON_CreateObject(), *aud;
  unsigned char jti[16];
  char *jti_text, *token, **p;

  randombytes_buf(jti, sizeof(jti));
  jti_text = jwt_b64url_encode(jti, sizeof(jti));
  cJSON_AddStringToObject(claims, "iss", a->iss);
  cJSON_AddStringToObject(claims, "sub", u->username);
  aud = cJSON_AddArrayToObject(claims, "aud");
  for (p = a->audiences; *p != NULL; p++)
    cJSON_AddItemToArray(aud, cJSON_CreateString(*p));
  cJSON_AddNumberToObject(claims, "iat", floor(now));
  cJSON_AddNumberToObject(claims, "exp", floor(now) + a->token_ttl);
  cJSON_AddStringToObject(claims, "jti", jti_text ? jti_text : "");
  cJSON_AddStringToObject(claims, "scope", u->scopes ? u->scopes : "");
  if (u->tenant != NULL)
    cJSON_AddStringToObject(claims, "tenant", u->tenant);
  token = jwt_sign(claims, a->own_alg, a->own_keys, a->own_kid);
  free(jti_text);
  cJSON_Delete(claims);
  return token;
}

/* The same words, the same time, whatever was wrong. */
#define LOGIN_REFUSED "invalid username or password"

static void tool_login(ph_call *call, const char *args_json, void *state) {
  auth *a = state;
  const ph_host_api *api = ph_call_api(call);
  ph_args *args = ph_args_parse(args_json);
  const char *user = ph_args_string(args, "username", NULL);
  const char *pw = ph_args_string(args, "password", NULL);
  unsigned char ukey[16];
  double now = now_s(), wait;
  auth_user u = {0};
  char *token = NULL, *rehash;
  cJSON *out;
  int found, ok;

  if (ph_args_error(args) != NULL || user == NULL || pw == NULL ||
      strlen(user) > 256 || strlen(pw) > MAX_PASSWORD) {
    ph_reply_text(api, call,
                  ph_args_error(args) ? ph_args_error(args)
                                      : "username and password are required",
                  1);
    goto cleanup;
  }
  backoff_key("user", user, ukey);
  wait = backoff_wait(a, ukey, now);
  if (wait > 0) {
    ph_reply_textf(api, call, 1,
                   "too many failed sign-ins for this account; try again in "
                   "%.0f s",
                   ceil(wait));
    goto cleanup;
  }
  found = store_user_get(a->store, user, &u) == 0;
  ok = crypto_pwhash_str_verify(found && u.password_hash ? u.password_hash
                                                         : a->dummy_hash,
                                pw, strlen(pw)) == 0 &&
       found && u.password_hash != NULL;
  if (!ok || u.disabled) {
    backoff_fail(a, ukey, now);
    api->log(a->self, PH_LOG_INFO, "auth: sign-in refused for %.64s (%s)", user,
             !found ? "unknown user"
             : !ok  ? "wrong password"
                    : "disabled");
    ph_reply_text(api, call, LOGIN_REFUSED, 1);
    goto cleanup;
  }
  backoff_clear(a, ukey, now);
  if (crypto_pwhash_str_needs_rehash(u.password_hash,
                                     crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                     crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0 &&
      (rehash = hash_password(pw)) != NULL) {
    /* Same password: earlier tokens stay valid (now - 1 keeps them). */
    store_user_set_password(a->store, u.username, rehash, 0);
    free(rehash);
  }
  token = mint_token(a, &u, now);
  if (token == NULL) {
    ph_reply_text(api, call, "cannot sign a token", 1);
    goto cleanup;
  }
  out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "access_token", token);
  cJSON_AddStringToObject(out, "token_type", "Bearer");
  cJSON_AddNumberToObject(out, "expires_in", a->token_ttl);
  cJSON_AddStringToObject(out, "scope", u.scopes ? u.scopes : "");
  reply_json(call, out, 0);

cleanup:
  if (token != NULL)
    sodium_memzero(token, strlen(token));
  free(token);
  store_user_clear(&u);
  ph_args_free(args);
}

static void tool_whoami(ph_call *call, const char *args_json, void *state) {
  const ph_host_api *api = ph_call_api(call);
  const char *p = api->principal(call);
  cJSON *obj = p ? cJSON_Parse(p) : NULL;

  (void)args_json;
  (void)state;
  if (obj == NULL) {
    ph_reply_text(api, call, "anonymous: this call carries no identity", 1);
    return;
  }
  reply_json(call, obj, 0);
}

static void tool_validate(ph_call *call, const char *args_json, void *state) {
  auth *a = state;
  ph_args *args = ph_args_parse(args_json);
  const char *token = ph_args_string(args, "token", NULL);
  const char *aud = ph_args_string(args, "audience", a->audiences[0]);
  char *answer;
  cJSON *out;

  if (require_admin(call) != 0)
    goto cleanup;
  if (ph_args_error(args) != NULL || token == NULL) {
    ph_reply_text(ph_call_api(call), call, "token: a string is required", 1);
    goto cleanup;
  }
  answer = authn(a, token, aud, NULL, 0);
  out = answer ? cJSON_Parse(answer) : NULL;
  free(answer);
  if (out == NULL) {
    ph_reply_text(ph_call_api(call), call, "out of memory", 1);
    goto cleanup;
  }
  /* RFC 7662's shape: active, then what we know. */
  cJSON_AddBoolToObject(out, "active",
                        cJSON_GetObjectItemCaseSensitive(out, "error") == NULL);
  reply_json(call, out, 0);

cleanup:
  ph_args_free(args);
}

static void reply_store(ph_call *call, int rc, auth_store *s, const char *what,
                        const char *name) {
  const ph_host_api *api = ph_call_api(call);

  if (rc == STORE_NOT_FOUND)
    ph_reply_textf(api, call, 1, "no such %s: %.64s", what, name);
  else if (rc == STORE_EXISTS)
    ph_reply_textf(api, call, 1, "%s %.64s already exists", what, name);
  else
    ph_reply_textf(api, call, 1, "the store failed: %s", store_error(s));
}

static void tool_user_add(ph_call *call, const char *args_json, void *state) {
  auth *a = state;
  ph_args *args = ph_args_parse(args_json);
  auth_user u = {0};
  const char *pw = NULL;
  char *scopes = NULL, *hash = NULL;
  cJSON *out;
  int rc;

  if (require_admin(call) != 0)
    goto cleanup;
  u.username = (char *)ph_args_string(args, "username", NULL);
  u.name = (char *)ph_args_string(args, "name", NULL);
  u.email = (char *)ph_args_string(args, "email", NULL);
  u.tenant = (char *)ph_args_string(args, "tenant", NULL);
  pw = ph_args_string(args, "password", NULL);
  if (ph_args_error(args) != NULL || u.username == NULL ||
      !username_ok(u.username)) {
    ph_reply_text(ph_call_api(call), call,
                  "username: 1 to 64 letters, digits and . _ @ -", 1);
    goto cleanup;
  }
  if ((pw != NULL && !password_ok(a, call, pw)) ||
      (scopes = scopes_arg(call, args, "scopes")) == NULL)
    goto cleanup;
  if (pw != NULL && (hash = hash_password(pw)) == NULL) {
    ph_reply_text(ph_call_api(call), call, "cannot hash the password", 1);
    goto cleanup;
  }
  u.password_hash = hash;
  u.scopes = scopes;
  rc = store_user_add(a->store, &u, (long long)now_s());
  if (rc != 0) {
    reply_store(call, rc, a->store, "user", u.username);
    goto cleanup;
  }
  out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "username", u.username);
  cJSON_AddItemToObject(out, "scopes", words_array(scopes));
  cJSON_AddBoolToObject(out, "has_password", hash != NULL);
  reply_json(call, out, 0);

cleanup:
  free(scopes);
  free(hash);
  ph_args_free(args);
}

static void tool_user_disable(ph_call *call, const char *args_json,
                              void *state) {
  auth *a = state;
  ph_args *args = ph_args_parse(args_json);
  const char *user = ph_args_string(args, "username", NULL);
  int disabled = ph_args_bool(args, "disabled", 1), rc;
  cJSON *out;

  if (require_admin(call) != 0)
    goto cleanup;
  if (ph_args_error(args) != NULL || user == NULL) {
    ph_reply_text(ph_call_api(call), call, "username is required", 1);
    goto cleanup;
  }
  rc = store_user_set_disabled(a->store, user, disabled, (long long)now_s());
  if (rc != 0) {
    reply_store(call, rc, a->store, "user", user);
    goto cleanup;
  }
  cache_flush(a);
  out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "username", user);
  cJSON_AddBoolToObject(out, "disabled", disabled);
  reply_json(call, out, 0);

cleanup:
  ph_args_free(args);
}

static void tool_user_set_password(ph_call *call, const char *args_json,
                                   void *state) {
  auth *a = state;
  ph_args *args = ph_args_parse(args_json);
  const char *user = ph_args_string(args, "username", NULL);
  const char *pw = ph_args_string(args, "password", NULL);
  char *hash = NULL;
  cJSON *out;
  int rc;

  if (require_admin(call) != 0)
    goto cleanup;
  if (ph_args_error(args) != NULL || user == NULL || pw == NULL) {
    ph_reply_text(ph_call_api(call), call, "username and password are required",
                  1);
    goto cleanup;
  }
  if (!password_ok(a, call, pw))
    goto cleanup;
  if ((hash = hash_password(pw)) == NULL) {
    ph_reply_text(ph_call_api(call), call, "cannot hash the password", 1);
    goto cleanup;
  }
  rc = store_user_set_password(a->store, user, hash, (long long)now_s());
  if (rc != 0) {
    reply_store(call, rc, a->store, "user", user);
    goto cleanup;
  }
  cache_flush(a);
  out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "username", user);
  cJSON_AddBoolToObject(out, "tokens_revoked", 1);
  reply_json(call, out, 0);

cleanup:
  free(hash);
  ph_args_free(args);
}

/* Grants (or, for user_revoke, takes away) scopes. */
static void change_scopes(ph_call *call, const char *args_json, auth *a,
                          int grant) {
  ph_args *args = ph_args_parse(args_json);
  const char *user = ph_args_string(args, "username", NULL);
  char *change = NULL, *next = NULL;
  cJSON *have = NULL, *want, *out;
  const cJSON *item;
  auth_user u = {0};
  int rc;

  if (require_admin(call) != 0)
    goto cleanup;
  if (ph_args_error(args) != NULL || user == NULL) {
    ph_reply_text(ph_call_api(call), call, "username is required", 1);
    goto cleanup;
  }
  if ((change = scopes_arg(call, args, "scopes")) == NULL)
    goto cleanup;
  rc = store_user_get(a->store, user, &u);
  if (rc != 0) {
    reply_store(call, rc, a->store, "user", user);
    goto cleanup;
  }
  have = words_array(u.scopes);
  want = words_array(change);
  next = calloc(1, strlen(u.scopes ? u.scopes : "") + strlen(change) + 2);
  if (next == NULL)
    goto cleanup;
  cJSON_ArrayForEach(item, have) {
    if (grant || !has_word(change, item->valuestring))
      sprintf(next + strlen(next), "%s%s", next[0] ? " " : "",
              item->valuestring);
  }
  cJSON_ArrayForEach(item, want) {
    if (grant && !has_word(next, item->valuestring))
      sprintf(next + strlen(next), "%s%s", next[0] ? " " : "",
              item->valuestring);
  }
  cJSON_Delete(want);
  rc = store_user_set_scopes(a->store, u.username, next);
  if (rc != 0) {
    reply_store(call, rc, a->store, "user", user);
    goto cleanup;
  }
  cache_flush(a);
  out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "username", u.username);
  cJSON_AddItemToObject(out, "scopes", words_array(next));
  reply_json(call, out, 0);

cleanup:
  cJSON_Delete(have);
  free(change);
  free(next);
  store_user_clear(&u);
  ph_args_free(args);
}

static void tool_user_grant(ph_call *call, const char *args_json, void *state) {
  change_scopes(call, args_json, state, 1);
}

static void tool_user_revoke(ph_call *call, const char *args_json,
                             void *state) {
  change_scopes(call, args_json, state, 0);
}

static void tool_user_list(ph_call *call, const char *args_json, void *state) {
  auth *a = state;
  char *rows;
  cJSON *out;

  (void)args_json;
  if (require_admin(call) != 0)
    return;
  rows = store_user_list(a->store);
  out = cJSON_CreateObject();
  cJSON_AddItemToObject(out, "users",
                        rows ? cJSON_Parse(rows) : cJSON_CreateArray());
  free(rows);
  reply_json(call, out, rows == NULL);
}

static void tool_key_create(ph_call *call, const char *args_json, void *state) {
  auth *a = state;
  ph_args *args = ph_args_parse(args_json);
  const char *user = ph_args_string(args, "username", NULL);
  const char *name = ph_args_string(args, "name", NULL);
  long long days = ph_args_int(args, "expires_in_days", 0, 3650, 0);
  unsigned char id_bytes[KEY_ID_HEX / 2], secret[KEY_SECRET_BYTES];
  unsigned char digest[32];
  char id[KEY_ID_HEX + 1], *secret_text = NULL, *key = NULL, *scopes = NULL;
  long long now = (long long)now_s(), expires;
  auth_user u = {0};
  cJSON *out;
  int rc;

  if (require_admin(call) != 0)
    goto cleanup;
  if (ph_args_error(args) != NULL || user == NULL) {
    ph_reply_text(
        ph_call_api(call), call,
        ph_args_error(args) ? ph_args_error(args) : "username is required", 1);
    goto cleanup;
  }
  rc = store_user_get(a->store, user, &u);
  if (rc != 0) {
    reply_store(call, rc, a->store, "user", user);
    goto cleanup;
  }
  /* Without scopes a key holds the user's scopes as they are now. */
  if (ph_args_has(args, "scopes"))
    scopes = scopes_arg(call, args, "scopes");
  else
    scopes = strdup(u.scopes ? u.scopes : "");
  if (scopes == NULL)
    goto cleanup;
  randombytes_buf(id_bytes, sizeof(id_bytes));
  randombytes_buf(secret, sizeof(secret));
  sodium_bin2hex(id, sizeof(id), id_bytes, sizeof(id_bytes));
  secret_text = jwt_b64url_encode(secret, sizeof(secret));
  sodium_memzero(secret, sizeof(secret));
  if (secret_text == NULL ||
      asprintf(&key, KEY_PREFIX "%s_%s", id, secret_text) < 0) {
    key = NULL;
    ph_reply_text(ph_call_api(call), call, "out of memory", 1);
    goto cleanup;
  }
  sha256(secret_text, strlen(secret_text), digest);
  expires = days > 0 ? now + days * 86400 : 0;
  rc = store_key_add(a->store, id, u.username, digest, name, scopes, now,
                     expires);
  if (rc != 0) {
    reply_store(call, rc, a->store, "user", user);
    goto cleanup;
  }
  out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "api_key", key);
  cJSON_AddStringToObject(out, "key_id", id);
  cJSON_AddStringToObject(out, "username", u.username);
  cJSON_AddItemToObject(out, "scopes", words_array(scopes));
  if (expires != 0)
    cJSON_AddNumberToObject(out, "expires", (double)expires);
  else
    cJSON_AddNullToObject(out, "expires");
  cJSON_AddStringToObject(out, "note",
                          "shown once: the server keeps only its hash");
  reply_json(call, out, 0);

cleanup:
  if (secret_text != NULL)
    sodium_memzero(secret_text, strlen(secret_text));
  if (key != NULL)
    sodium_memzero(key, strlen(key));
  free(secret_text);
  free(key);
  free(scopes);
  store_user_clear(&u);
  ph_args_free(args);
}

static void tool_key_revoke(ph_call *call, const char *args_json, void *state) {
  auth *a = state;
  ph_args *args = ph_args_parse(args_json);
  const char *id = ph_args_string(args, "key_id", NULL);
  cJSON *out;
  int rc;

  if (require_admin(call) != 0)
    goto cleanup;
  if (ph_args_error(args) != NULL || id == NULL) {
    ph_reply_text(ph_call_api(call), call, "key_id is required", 1);
    goto cleanup;
  }
  rc = store_key_revoke(a->store, id, (long long)now_s());
  if (rc != 0) {
    reply_store(call, rc, a->store, "live API key", id);
    goto cleanup;
  }
  cache_flush(a);
  out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "key_id", id);
  cJSON_AddBoolToObject(out, "revoked", 1);
  reply_json(call, out, 0);

cleanup:
  ph_args_free(args);
}

static void tool_key_list(ph_call *call, const char *args_json, void *state) {
  auth *a = state;
  ph_args *args = ph_args_parse(args_json);
  const char *user = ph_args_string(args, "username", NULL);
  char *rows;
  cJSON *out;

  if (require_admin(call) != 0)
    goto cleanup;
  rows = store_key_list(a->store, user);
  out = cJSON_CreateObject();
  cJSON_AddItemToObject(out, "keys",
                        rows ? cJSON_Parse(rows) : cJSON_CreateArray());
  free(rows);
  reply_json(call, out, rows == NULL);

cleanup:
  ph_args_free(args);
}

/* The public JWKS of our own key: for services that verify our tokens
 * themselves. (Nothing for HS256: a secret is not published.) */
static void read_jwks(ph_call *call, const char *uri, const char *vars_json,
                      void *state) {
  auth *a = state;
  char *text = a->own_alg == JWT_HS256 ? strdup("{\"keys\":[]}")
                                       : jwt_keyset_public_jwks(a->own_keys);

  (void)vars_json;
  if (text == NULL) {
    ph_call_api(call)->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory",
                                   NULL);
    return;
  }
  ph_reply_resource_text(ph_call_api(call), call, uri, "application/json",
                         text);
  free(text);
}

#define S_USER                                                                 \
  "\"username\":{\"type\":\"string\",\"minLength\":1,"                         \
  "\"maxLength\":64}"
#define S_SCOPES                                                               \
  "\"scopes\":{\"type\":\"array\",\"items\":{\"type\":"                        \
  "\"string\"},\"maxItems\":64}"
#define ADMIN_HINTS(ro_hint, kill_hint)                                        \
  .annotations = {.read_only = (ro_hint),                                      \
                  .destructive = (kill_hint),                                  \
                  .open_world = PH_HINT_FALSE},                                \
  .required_scope = ADMIN_SCOPE

PH_PLUGIN(.name = "auth", .version = "1.0",
          .description = "plughost's users, API keys and access tokens; "
                         "validates external JWTs; the authn service",
          .provides = (const char *const[]){"authn", NULL}, .init = auth_init,
          .fini = auth_fini, .service = serve,
          .resources =
              (const ph_resource[]){
                  {.uri = "auth://jwks.json",
                   .name = "jwks",
                   .title = "Signing keys",
                   .description = "The public JWKS of this server's own access "
                                  "tokens",
                   .mime_type = "application/json",
                   .handler = read_jwks},
                  {0}},
          .tools = (const ph_tool[]){
              {.name = "login",
               .title = "Sign in",
               .description =
                   "Signs in with a username and password of this server and "
                   "returns a short-lived access token (a signed JWT) to send "
                   "as 'Authorization: Bearer <token>'. Repeated failures are "
                   "slowed down.",
               .input_schema =
                   "{\"type\":\"object\",\"properties\":{\"username\":{"
                   "\"type\":\"string\",\"maxLength\":256},\"password\":{"
                   "\"type\":\"string\",\"maxLength\":1024}},\"required\":["
                   "\"username\",\"password\"],\"additionalProperties\":false}",
               .output_schema =
                   "{\"type\":\"object\",\"properties\":{\"access_token\":{"
                   "\"type\":\"string\"},\"token_type\":{\"type\":\"string\"},"
                   "\"expires_in\":{\"type\":\"integer\"},\"scope\":{\"type\":"
                   "\"string\"}},\"required\":[\"access_token\",\"token_type\","
                   "\"expires_in\"]}",
               .annotations = {.read_only = PH_HINT_TRUE,
                               .open_world = PH_HINT_FALSE},
               .handler = tool_login},
              {.name = "whoami",
               .title = "Who am I",
               .description = "Returns the caller's identity as the server "
                              "sees it: subject, name, email, tenant, scopes, "
                              "kind (user, api_key, external) and expiry.",
               .input_schema = "{\"type\":\"object\",\"properties\":{},"
                               "\"additionalProperties\":false}",
               .annotations = {.read_only = PH_HINT_TRUE,
                               .idempotent = PH_HINT_TRUE,
                               .open_world = PH_HINT_FALSE},
               .handler = tool_whoami},
              {.name = "validate_token",
               .title = "Introspect a token",
               .description =
                   "Validates an access token or API key as the server would "
                   "and returns {active, ...principal} or {active: false, "
                   "error, reason}. audience defaults to this server's own "
                   "token audience. Needs " ADMIN_SCOPE ".",
               .input_schema =
                   "{\"type\":\"object\",\"properties\":{\"token\":{\"type\":"
                   "\"string\",\"maxLength\":16384},\"audience\":{\"type\":"
                   "\"string\"}},\"required\":[\"token\"],"
                   "\"additionalProperties\":false}",
               ADMIN_HINTS(PH_HINT_TRUE, PH_HINT_FALSE),
               .handler = tool_validate},
              {.name = "user_add",
               .title = "Add a user",
               .description = "Adds a user of this server, with an optional "
                              "password (none: the user signs in only through "
                              "API keys), scopes, name, email and tenant.",
               .input_schema =
                   "{\"type\":\"object\",\"properties\":{" S_USER
                   ",\"password\":{\"type\":\"string\"},\"name\":{\"type\":"
                   "\"string\"},\"email\":{\"type\":\"string\"},\"tenant\":{"
                   "\"type\":\"string\"}," S_SCOPES "},\"required\":["
                   "\"username\"],\"additionalProperties\":false}",
               ADMIN_HINTS(PH_HINT_FALSE, PH_HINT_FALSE),
               .handler = tool_user_add},
              {.name = "user_disable",
               .title = "Disable a user",
               .description = "Disables a user (disabled: false enables it "
                              "again). A disabled user cannot sign in, and its "
                              "tokens and API keys are refused at once.",
               .input_schema = "{\"type\":\"object\",\"properties\":{" S_USER
                               ",\"disabled\":{\"type\":\"boolean\"}},"
                               "\"required\":[\"username\"],"
                               "\"additionalProperties\":false}",
               ADMIN_HINTS(PH_HINT_FALSE, PH_HINT_TRUE),
               .handler = tool_user_disable},
              {.name = "user_set_password",
               .title = "Set a password",
               .description = "Sets a user's password; every access token the "
                              "user held is refused from now on.",
               .input_schema = "{\"type\":\"object\",\"properties\":{" S_USER
                               ",\"password\":{\"type\":\"string\"}},"
                               "\"required\":[\"username\",\"password\"],"
                               "\"additionalProperties\":false}",
               ADMIN_HINTS(PH_HINT_FALSE, PH_HINT_TRUE),
               .handler = tool_user_set_password},
              {.name = "user_grant",
               .title = "Grant scopes",
               .description = "Adds scopes to a user; its tokens and keys "
                              "without scopes of their own hold them at once.",
               .input_schema = "{\"type\":\"object\",\"properties\":{" S_USER
                               "," S_SCOPES "},\"required\":[\"username\","
                               "\"scopes\"],\"additionalProperties\":false}",
               ADMIN_HINTS(PH_HINT_FALSE, PH_HINT_FALSE),
               .handler = tool_user_grant},
              {.name = "user_revoke",
               .title = "Revoke scopes",
               .description = "Takes scopes away from a user.",
               .input_schema = "{\"type\":\"object\",\"properties\":{" S_USER
                               "," S_SCOPES "},\"required\":[\"username\","
                               "\"scopes\"],\"additionalProperties\":false}",
               ADMIN_HINTS(PH_HINT_FALSE, PH_HINT_TRUE),
               .handler = tool_user_revoke},
              {.name = "user_list",
               .title = "List users",
               .description = "Lists the users with their scopes and state "
                              "(never a password hash).",
               .input_schema = "{\"type\":\"object\",\"properties\":{},"
                               "\"additionalProperties\":false}",
               ADMIN_HINTS(PH_HINT_TRUE, PH_HINT_FALSE),
               .handler = tool_user_list},
              {.name = "api_key_create",
               .title = "Create an API key",
               .description =
                   "Creates an API key (256-bit random) for a user, usually a "
                   "service account: sent as 'Authorization: Bearer <key>' or "
                   "'X-API-Key'. The key is shown once; the server keeps its "
                   "hash. scopes default to the user's.",
               .input_schema =
                   "{\"type\":\"object\",\"properties\":{" S_USER
                   ",\"name\":{\"type\":\"string\",\"maxLength\":128}," S_SCOPES
                   ",\"expires_in_days\":{\"type\":\"integer\",\"minimum\":0,"
                   "\"maximum\":3650}},\"required\":[\"username\"],"
                   "\"additionalProperties\":false}",
               ADMIN_HINTS(PH_HINT_FALSE, PH_HINT_FALSE),
               .handler = tool_key_create},
              {.name = "api_key_revoke",
               .title = "Revoke an API key",
               .description = "Revokes an API key by its key_id; it is refused "
                              "from now on.",
               .input_schema =
                   "{\"type\":\"object\",\"properties\":{\"key_id\":"
                   "{\"type\":\"string\"}},\"required\":["
                   "\"key_id\"],\"additionalProperties\":false}",
               ADMIN_HINTS(PH_HINT_FALSE, PH_HINT_TRUE),
               .handler = tool_key_revoke},
              {.name = "api_key_list",
               .title = "List API keys",
               .description = "Lists API keys (ids, owners, scopes, dates; "
                              "never the keys), of one user or all.",
               .input_schema = "{\"type\":\"object\",\"properties\":{" S_USER
                               "},\"additionalProperties\":false}",
               ADMIN_HINTS(PH_HINT_TRUE, PH_HINT_FALSE),
               .handler = tool_key_list},
              {0}});
