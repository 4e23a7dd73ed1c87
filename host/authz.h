/* authz.h: the host's side of authorization, the parts both transports
 * share. A credential goes to the department's `authn` service
 * (plugins/auth/README.md) and comes back as a principal or a refusal;
 * the Protected Resource Metadata (RFC 9728) and the Bearer challenges
 * (RFC 6750 3) are written from the department's config. Where a
 * credential comes from (headers, an environment variable) and what the
 * refusal becomes (a status, an exit) is the transports'.
 *
 * The service runs on libuv's threadpool, never on the loop: a cache
 * miss costs the plugin a signature check or an SQLite read. It runs as
 * a service call of the host's own, so the plugin sees what a plugin's
 * service_call gives it (host_api.c), with no principal above it.
 *
 * Layers: above call.h and registry.h (the provider is resolved in the
 * current generation, by name, when the check starts) and config.h;
 * below the transports. Loop thread, except where noted. */
#ifndef PH_AUTHZ_H
#define PH_AUTHZ_H

#include "config.h"
#include "principal.h" /* ph__principal_same, for the transports. */

#include <uv.h>

enum ph__authn_status {
  PH__AUTHN_OK,          /* principal holds the claims. */
  PH__AUTHN_INVALID,     /* invalid_token: a 401 naming the error. */
  PH__AUTHN_UNAVAILABLE, /* temporarily_unavailable: the store failed,
                            so try again (503). */
  PH__AUTHN_FAILED       /* The service refused our request or never
                            answered: the host's problem (500). */
};

/* What a check found; every string is borrowed for the callback. */
typedef struct ph__authn_result {
  int status;              /* enum ph__authn_status. */
  const char *principal;   /* OK: claims JSON, never holding the token. */
  const char *reason;      /* Else authn's reason ("expired", ...). */
  const char *description; /* Else a sentence for error_description. */
} ph__authn_result;

typedef void (*ph__authn_cb)(const ph__authn_result *r, void *data);

/* Starts checking `token` (copied; "scheme" "bearer" or "api_key") for
 * department d: its public_url is the audience, its issuers the ones
 * accepted. Returns 0, and cb(data) runs once on the loop later (never
 * inside this call); or PH__ENOSERVICE (no authn in the department),
 * UV_EBUSY (too many checks waiting: limits.queue_per_plugin) or
 * PH__EINVAL (no public_url), and cb never runs. */
int ph__authn_start(uv_loop_t *loop, const ph__config *cfg,
                    const ph__department_cfg *d, const char *token,
                    const char *scheme, ph__authn_cb cb, void *data);

/* Checks started and not yet called back. */
int ph__authn_pending(void);

/* The well-known URL of a resource's metadata (RFC 9728 3.1): the
 * public_url's origin, "/.well-known/oauth-protected-resource", then its
 * path. Malloc'd. Any thread. */
char *ph__prm_url(const char *public_url);

/* The Protected Resource Metadata document of d (auth not none), as
 * JSON text. Malloc'd. */
char *ph__prm_document(const ph__department_cfg *d);

/* A Bearer challenge for d: resource_metadata, then scope (the given
 * space-separated scopes, or d's scopes_supported when NULL, left out
 * when empty), then error and error_description when error is not NULL.
 * Quotes and backslashes in the description are dropped, so it stays
 * one quoted-string. Malloc'd. */
char *ph__bearer_challenge(const ph__department_cfg *d, const char *scope,
                           const char *error, const char *description);

#endif
