/* jwks_remote.h: the keys of an external issuer that publishes them: a
 * JWKS fetched from its jwks_uri, given in the config or found by
 * discovery (OpenID Connect Discovery 1.0 at
 * <issuer>/.well-known/openid-configuration, then RFC 8414 at
 * <origin>/.well-known/oauth-authorization-server<path>), whose `issuer`
 * must be the configured one exactly.
 *
 * Fetches use libcurl on the thread that asks, which is never the loop:
 * the authn service runs on libuv's threadpool (the host's authz.c) or on
 * a plugin's worker. A fetch waits at most `timeout_ms`; one issuer's
 * fetches are serialised, so threads that miss at once wait for one fetch
 * instead of each making their own.
 *
 * The keys are cached for `ttl` seconds. A token with a kid the cache does
 * not know triggers one refetch (the issuer rotated its key), at most one
 * every JWKS_REFETCH_INTERVAL seconds per issuer, so a stream of forged
 * kids costs the provider one request per interval; the first fetch and
 * those of the ttl do not count, so a rotation right after them is still
 * followed at once. When a fetch fails the keys already held stay in use;
 * with none, the caller answers "unavailable" and the next attempt waits
 * for the same interval.
 *
 * Only https URLs, except http to a loopback host (127.0.0.0/8, [::1],
 * localhost), for providers on the same machine and the tests. Redirects
 * are not followed; a document over JWKS_MAX_DOCUMENT bytes is refused.
 *
 * Any thread, for every function; the snapshots a caller holds stay valid
 * until it releases them, whatever fetches meanwhile. */
#ifndef PH_AUTH_JWKS_REMOTE_H
#define PH_AUTH_JWKS_REMOTE_H

#include "jwt.h"

#include <stddef.h>

/* Seconds between two refetches of one issuer's keys for unknown kids;
 * a failed fetch also waits this long before the next try. */
#define JWKS_REFETCH_INTERVAL 10.0

/* The largest discovery document or JWKS accepted, in bytes. */
#define JWKS_MAX_DOCUMENT (1024 * 1024)

typedef struct jwks_remote jwks_remote;

/* The keys of one fetch, shared by the threads verifying with them. */
typedef struct jwks_snapshot jwks_snapshot;

/* Whether url may be fetched: https, or http to a loopback host; no
 * userinfo. */
int jwks_url_allowed(const char *url);

/* Told about each fetch: what was fetched or why it failed (failed
 * non-zero). Called on the fetching thread, with no lock held. */
typedef void (*jwks_log_fn)(void *ctx, int failed, const char *message);

/* An issuer's remote keys: from jwks_uri, or by discovery from issuer when
 * jwks_uri is NULL. Nothing is fetched yet. NULL, with a message in err,
 * when a URL is not allowed; NULL when out of memory. log may be NULL. */
jwks_remote *jwks_remote_new(const char *issuer, const char *jwks_uri,
                             double ttl, long timeout_ms, jwks_log_fn log,
                             void *log_ctx, char *err, size_t size);

/* Frees r; snapshots still held stay valid until released. */
void jwks_remote_free(jwks_remote *r);

/* The current keys, fetched first when there are none or they are older
 * than ttl (then kept, if that fetch fails). NULL, with why in err, when
 * there are none. The caller releases the snapshot. */
jwks_snapshot *jwks_remote_get(jwks_remote *r, char *err, size_t size);

/* For a kid that `seen` lacks: the keys after one refetch, unless another
 * thread has fetched since `seen` (then those keys) or the last fetch was
 * under JWKS_REFETCH_INTERVAL ago (then `seen` again). Never NULL; the
 * caller releases the result and still holds `seen`. */
jwks_snapshot *jwks_remote_refetch(jwks_remote *r, jwks_snapshot *seen);

const jwt_keyset *jwks_snapshot_keys(const jwks_snapshot *s);

void jwks_snapshot_release(jwks_snapshot *s);

#endif
