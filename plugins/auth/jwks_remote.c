/* jwks_remote.c: see jwks_remote.h. */
#include "jwks_remote.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct jwks_snapshot {
  atomic_int refs;
  jwt_keyset *keys;
};

struct jwks_remote {
  char *issuer;
  char *jwks_uri; /* Configured, or NULL: discovered into found_uri. */
  double ttl;
  long timeout_ms;
  jwks_log_fn log;
  void *log_ctx;
  /* One fetch at a time; taken before lock, never while holding it. */
  pthread_mutex_t fetch_lock;
  /* Guards what follows, held only to read or swap. */
  pthread_mutex_t lock;
  jwks_snapshot *current; /* NULL until a fetch succeeds. */
  double fetched_at;      /* When current was fetched. */
  double attempted_at;    /* When the last fetch started; 0: never. */
  double refetched_at;    /* When an unknown kid last fetched; 0: never. */
  char *found_uri;        /* From discovery; dropped when a fetch fails. */
  char last_error[512];
};

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- URLs ---- */

/* Whether the host of an http URL (after "http://") is this machine. */
static int loopback_host(const char *host) {
  size_t n = strcspn(host, ":/?#");

  if (host[0] == '[')
    return strncmp(host, "[::1]", 5) == 0 && strchr(":/?#", host[5]) != NULL;
  if (n == 9 && strncasecmp(host, "localhost", 9) == 0)
    return 1;
  /* 127.0.0.0/8, as four decimal parts and nothing else. */
  if (strncmp(host, "127.", 4) == 0) {
    size_t i, dots = 0;
    for (i = 0; i < n; i++)
      if (host[i] == '.')
        dots++;
      else if (host[i] < '0' || host[i] > '9')
        return 0;
    return dots == 3;
  }
  return 0;
}

int jwks_url_allowed(const char *url) {
  const char *host;

  if (strncmp(url, "https://", 8) == 0)
    host = url + 8;
  else if (strncmp(url, "http://", 7) == 0)
    host = url + 7;
  else
    return 0;
  /* Userinfo hides the real host from a reader of the config. */
  if (host[0] == '\0' || host[0] == '/' ||
      memchr(host, '@', strcspn(host, "/?#")) != NULL)
    return 0;
  return host == url + 8 || loopback_host(host);
}

/* ---- HTTP ---- */

typedef struct body {
  char *data;
  size_t len;
  int too_large;
} body;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
  body *b = userdata;
  size_t n = size * nmemb;
  char *grown;

  if (b->len + n > JWKS_MAX_DOCUMENT) {
    b->too_large = 1;
    return 0; /* Stops the transfer. */
  }
  grown = realloc(b->data, b->len + n + 1);
  if (grown == NULL)
    return 0;
  b->data = grown;
  memcpy(b->data + b->len, ptr, n);
  b->len += n;
  b->data[b->len] = '\0';
  return n;
}

/* GET url: the body of a 200, malloc'd, or NULL with why in err. */
static char *http_get(const jwks_remote *r, const char *url, char *err,
                      size_t size) {
  CURL *c;
  CURLcode rc;
  struct curl_slist *headers = NULL;
  body b = {0};
  long status = 0;

  if (!jwks_url_allowed(url)) {
    snprintf(err, size, "%.120s: only https (or http to loopback) is fetched",
             url);
    return NULL;
  }
  c = curl_easy_init();
  if (c == NULL) {
    snprintf(err, size, "libcurl failed to start");
    return NULL;
  }
  headers = curl_slist_append(headers, "Accept: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR,
                   strncmp(url, "https:", 6) == 0 ? "https" : "http");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* Not the main thread. */
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "plughost-auth");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK || status != 200 || b.data == NULL) {
    if (b.too_large)
      snprintf(err, size, "%.120s: over %d bytes", url, JWKS_MAX_DOCUMENT);
    else if (rc != CURLE_OK)
      snprintf(err, size, "%.120s: %s", url, curl_easy_strerror(rc));
    else
      snprintf(err, size, "%.120s: HTTP status %ld", url, status);
    free(b.data);
    return NULL;
  }
  return b.data;
}

/* ---- Discovery ---- */

/* The jwks_uri of the metadata document at url, if its issuer is ours. */
static char *metadata_jwks_uri(const jwks_remote *r, const char *url, char *err,
                               size_t size) {
  char *text = http_get(r, url, err, size), *out = NULL;
  cJSON *doc = text ? cJSON_Parse(text) : NULL;
  const char *iss, *uri;

  free(text);
  if (text == NULL)
    return NULL;
  iss = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "issuer"));
  uri = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "jwks_uri"));
  if (!cJSON_IsObject(doc))
    snprintf(err, size, "%.120s: not a JSON object", url);
  else if (iss == NULL || strcmp(iss, r->issuer) != 0)
    /* RFC 8414 3.3 and OIDC Discovery 4.3: another issuer's metadata
     * must not be used, or anyone serving it names our keys. */
    snprintf(err, size, "%.120s: its issuer is %.100s, not the configured one",
             url, iss ? iss : "missing");
  else if (uri == NULL || !jwks_url_allowed(uri))
    snprintf(err, size, "%.120s: no https jwks_uri", url);
  else if ((out = strdup(uri)) == NULL)
    snprintf(err, size, "out of memory");
  cJSON_Delete(doc);
  return out;
}

/* OpenID Connect's well-known URL, then RFC 8414's. */
static char *discover(const jwks_remote *r, char *err, size_t size) {
  const char *iss = r->issuer, *host = strstr(iss, "://") + 3;
  size_t path_at = (size_t)(host - iss) + strcspn(host, "/?#");
  size_t n = strlen(iss);
  char *url, *uri;
  char first[512];

  /* OIDC appends to the issuer, a trailing slash removed first. */
  if (asprintf(&url, "%.*s/.well-known/openid-configuration",
               (int)(n > 0 && iss[n - 1] == '/' ? n - 1 : n), iss) < 0)
    return NULL;
  uri = metadata_jwks_uri(r, url, first, sizeof(first));
  free(url);
  if (uri != NULL)
    return uri;
  /* RFC 8414 inserts the well-known part between the origin and the path. */
  if (asprintf(&url, "%.*s/.well-known/oauth-authorization-server%s",
               (int)path_at, iss,
               strcmp(iss + path_at, "/") == 0 ? "" : iss + path_at) < 0)
    return NULL;
  uri = metadata_jwks_uri(r, url, err, size);
  free(url);
  if (uri == NULL) {
    char second[512];
    snprintf(second, sizeof(second), "%s", err);
    snprintf(err, size, "discovery failed: %.200s; %.200s", first, second);
  }
  return uri;
}

/* ---- Snapshots ---- */

static jwks_snapshot *snapshot_hold(jwks_snapshot *s) {
  if (s != NULL)
    atomic_fetch_add(&s->refs, 1);
  return s;
}

void jwks_snapshot_release(jwks_snapshot *s) {
  if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1) {
    jwt_keyset_free(s->keys);
    free(s);
  }
}

const jwt_keyset *jwks_snapshot_keys(const jwks_snapshot *s) {
  return s->keys;
}

/* ---- The remote ---- */

jwks_remote *jwks_remote_new(const char *issuer, const char *jwks_uri,
                             double ttl, long timeout_ms, jwks_log_fn log,
                             void *log_ctx, char *err, size_t size) {
  jwks_remote *r;

  if (jwks_uri != NULL ? !jwks_url_allowed(jwks_uri)
                       : !jwks_url_allowed(issuer)) {
    snprintf(err, size,
             "%s must be an https URL (http only to a loopback host)",
             jwks_uri != NULL ? "jwks_uri" : "for discovery, the issuer");
    return NULL;
  }
  r = calloc(1, sizeof(*r));
  if (r == NULL)
    return NULL;
  r->issuer = strdup(issuer);
  r->jwks_uri = jwks_uri ? strdup(jwks_uri) : NULL;
  if (r->issuer == NULL || (jwks_uri != NULL && r->jwks_uri == NULL)) {
    free(r->issuer);
    free(r->jwks_uri);
    free(r);
    return NULL;
  }
  r->ttl = ttl;
  r->timeout_ms = timeout_ms;
  r->log = log;
  r->log_ctx = log_ctx;
  pthread_mutex_init(&r->fetch_lock, NULL);
  pthread_mutex_init(&r->lock, NULL);
  return r;
}

void jwks_remote_free(jwks_remote *r) {
  if (r == NULL)
    return;
  jwks_snapshot_release(r->current);
  pthread_mutex_destroy(&r->lock);
  pthread_mutex_destroy(&r->fetch_lock);
  free(r->found_uri);
  free(r->jwks_uri);
  free(r->issuer);
  free(r);
}

/* One fetch, with fetch_lock held: discovery when needed, then the JWKS,
 * which replaces the current keys when it parses and has a signing key. */
static void fetch(jwks_remote *r) {
  char err[512] = "out of memory", msg[768];
  char *uri = NULL, *text = NULL;
  jwt_keyset *keys = NULL;
  jwks_snapshot *s, *old = NULL;

  pthread_mutex_lock(&r->lock);
  r->attempted_at = now_s();
  if (r->jwks_uri == NULL && r->found_uri != NULL)
    uri = strdup(r->found_uri);
  pthread_mutex_unlock(&r->lock);
  if (r->jwks_uri != NULL)
    uri = strdup(r->jwks_uri);
  else if (uri == NULL)
    uri = discover(r, err, sizeof(err));
  if (uri != NULL)
    text = http_get(r, uri, err, sizeof(err));
  if (text != NULL) {
    keys = jwt_keyset_parse_jwks(text, err, sizeof(err));
    if (keys != NULL && jwt_keyset_count(keys) == 0) {
      snprintf(err, sizeof(err), "%.120s has no signing key", uri);
      jwt_keyset_free(keys);
      keys = NULL;
    }
  }
  s = keys ? calloc(1, sizeof(*s)) : NULL;
  if (keys != NULL && s == NULL) {
    jwt_keyset_free(keys);
    keys = NULL;
  }
  pthread_mutex_lock(&r->lock);
  if (s != NULL) {
    atomic_init(&s->refs, 1);
    s->keys = keys;
    old = r->current;
    r->current = s;
    r->fetched_at = now_s();
    r->last_error[0] = '\0';
    if (r->jwks_uri == NULL && r->found_uri == NULL) {
      r->found_uri = uri;
      uri = NULL;
    }
    snprintf(msg, sizeof(msg), "JWKS of %.120s fetched: %zu key(s)", r->issuer,
             jwt_keyset_count(keys));
  } else {
    /* The provider may have moved its keys: discover again next time. */
    free(r->found_uri);
    r->found_uri = NULL;
    snprintf(r->last_error, sizeof(r->last_error), "%s", err);
    snprintf(msg, sizeof(msg), "JWKS of %.120s not fetched: %.500s", r->issuer,
             err);
  }
  pthread_mutex_unlock(&r->lock);
  jwks_snapshot_release(old);
  free(uri);
  free(text);
  if (r->log != NULL)
    r->log(r->log_ctx, s == NULL, msg);
}

/* Whether a fetch is due: no keys (and no failed attempt within the
 * interval), or keys past their ttl (and no attempt within the interval,
 * since a failed one keeps the old keys). With r->lock held. */
static int fetch_due(const jwks_remote *r, double now) {
  int recent =
      r->attempted_at > 0 && now - r->attempted_at < JWKS_REFETCH_INTERVAL;

  if (r->current == NULL)
    return !recent;
  return now - r->fetched_at >= r->ttl && !recent;
}

jwks_snapshot *jwks_remote_get(jwks_remote *r, char *err, size_t size) {
  jwks_snapshot *s;

  pthread_mutex_lock(&r->lock);
  if (fetch_due(r, now_s())) {
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_lock(&r->fetch_lock);
    pthread_mutex_lock(&r->lock);
    /* Another thread may have fetched while this one waited. */
    if (fetch_due(r, now_s())) {
      pthread_mutex_unlock(&r->lock);
      fetch(r);
      pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->fetch_lock);
  }
  s = snapshot_hold(r->current);
  if (s == NULL)
    snprintf(err, size, "the keys of %.120s are unavailable: %.200s", r->issuer,
             r->last_error[0] ? r->last_error : "not fetched yet");
  pthread_mutex_unlock(&r->lock);
  return s;
}

/* Whether an unknown kid may refetch: nobody replaced seen meanwhile and
 * the last refetch for a kid is past the interval. The first fetch and
 * those of the ttl do not count: a key rotated a second after them is
 * still followed at once. With r->lock held. */
static int refetch_due(const jwks_remote *r, const jwks_snapshot *seen) {
  double now = now_s();

  return r->current == seen && (r->refetched_at == 0 ||
                                now - r->refetched_at >= JWKS_REFETCH_INTERVAL);
}

jwks_snapshot *jwks_remote_refetch(jwks_remote *r, jwks_snapshot *seen) {
  jwks_snapshot *s;

  pthread_mutex_lock(&r->lock);
  if (refetch_due(r, seen)) {
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_lock(&r->fetch_lock);
    pthread_mutex_lock(&r->lock);
    if (refetch_due(r, seen)) {
      r->refetched_at = now_s();
      pthread_mutex_unlock(&r->lock);
      fetch(r);
      pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->fetch_lock);
  }
  s = snapshot_hold(r->current != NULL ? r->current : seen);
  pthread_mutex_unlock(&r->lock);
  return s;
}
