/* jwt.h: compact JWS (RFC 7515) verification and signing for the auth
 * plugin, on OpenSSL's libcrypto, and the mapping of verified claims onto a
 * principal. Knows nothing of the host or the user store: the unit tests
 * link it alone (tests/unit/test_auth_jwt.c).
 *
 * Keys and policies are built once and then only read, so any number of
 * threads may verify against them at the same time. Nothing here fetches
 * anything: a JWKS arrives as text (jwks_remote.h fetches the documents
 * of issuers configured by URL). */
#ifndef PH_AUTH_JWT_H
#define PH_AUTH_JWT_H

#include <cJSON.h>
#include <openssl/evp.h>
#include <stddef.h>

/* Tokens longer than this are refused before any parsing. */
#define JWT_MAX_TOKEN 8192

/* Algorithms, as bits of an allow-list. "none" has no bit: it is never
 * accepted. HS256 is accepted only with a secret key (plughost's own
 * tokens when so configured), never with a key from a JWKS. */
enum jwt_alg {
  JWT_RS256 = 1 << 0,
  JWT_PS256 = 1 << 1,
  JWT_ES256 = 1 << 2,
  JWT_EDDSA = 1 << 3, /* Ed25519 only. */
  JWT_HS256 = 1 << 4
};

/* The bit of an algorithm name ("RS256"), or 0 for any other name. */
unsigned jwt_alg_bit(const char *name);

/* A set of verification (or signing) keys, each with its kid. */
typedef struct jwt_keyset jwt_keyset;

/* An empty set. NULL when out of memory. */
jwt_keyset *jwt_keyset_new(void);

/* Parses a JWKS document ({"keys":[...]}) into a new set: RSA keys of 2048
 * bits or more (n, e), EC P-256 (x, y; the point is checked) and OKP
 * Ed25519 (x). Keys whose "use" is not "sig" are skipped; a key with a
 * "d" (private part), an "oct" key, a key without kid, a duplicate kid or a
 * malformed member make the whole document fail, with a message in err. */
jwt_keyset *jwt_keyset_parse_jwks(const char *json, char *err, size_t size);

/* Adds a key: pkey (reference taken by the set; RSA, EC P-256 or Ed25519,
 * public or private) or an HMAC secret of at least 32 bytes (copied).
 * Returns 0, or -1 (bad key, duplicate kid, out of memory). */
int jwt_keyset_add_pkey(jwt_keyset *set, const char *kid, EVP_PKEY *pkey);
int jwt_keyset_add_secret(jwt_keyset *set, const char *kid,
                          const unsigned char *secret, size_t len);

/* Number of keys in the set. */
size_t jwt_keyset_count(const jwt_keyset *set);

/* The set as a public JWKS document (secrets and private parts left out),
 * malloc'd text, or NULL. */
char *jwt_keyset_public_jwks(const jwt_keyset *set);

void jwt_keyset_free(jwt_keyset *set);

/* What one issuer accepts. The strings and the set are borrowed. */
typedef struct jwt_policy {
  const char *issuer;     /* Exact "iss". */
  unsigned algs;          /* Allowed jwt_alg bits. */
  int kid_required;       /* Non-zero: a token without "kid" is refused. */
  double leeway;          /* Seconds of clock skew allowed on exp/nbf/iat. */
  const jwt_keyset *keys; /* Where "kid" is looked up. */
} jwt_policy;

/* The outcome of jwt_verify. On success reason is NULL and claims holds the
 * verified payload (the caller deletes it); otherwise reason is one of the
 * static codes below and detail says what in words. */
typedef struct jwt_verdict {
  const char *reason;
  char detail[200];
  cJSON *claims;
  size_t policy; /* Index of the issuer's policy (on success). */
  double exp;    /* The token's exp (on success). */
} jwt_verdict;

/* Refusal reasons (jwt_verdict.reason). */
#define JWT_TOO_LARGE "too_large"
#define JWT_MALFORMED "malformed"
#define JWT_BAD_BASE64URL "bad_base64url"
#define JWT_BAD_HEADER "bad_header"
#define JWT_ALG_NONE "alg_none"
#define JWT_ALG_NOT_ALLOWED "alg_not_allowed"
#define JWT_KID_MISSING "kid_missing"
#define JWT_UNKNOWN_KID "unknown_kid"
#define JWT_UNKNOWN_ISSUER "unknown_issuer"
#define JWT_BAD_SIGNATURE "bad_signature"
#define JWT_EXPIRED "expired"
#define JWT_NOT_YET_VALID "not_yet_valid"
#define JWT_MISSING_EXP "missing_exp"
#define JWT_WRONG_AUDIENCE "wrong_audience"
#define JWT_BAD_CLAIMS "bad_claims"

/* Verifies a compact JWS: size, strict base64url, header, the policy chosen
 * by the (unverified) "iss" among the n given, the algorithm against its
 * allow-list, kid, the signature, then exp (required), nbf, iat and aud,
 * which must be or contain `audience`. now is Unix time in seconds.
 * Returns 0 when valid, -1 otherwise; the verdict says which. */
int jwt_verify(const char *token, const jwt_policy *policies, size_t n,
               const char *audience, double now, jwt_verdict *v);

/* The "iss" a token claims, before anything is verified: which issuer's
 * keys to have ready for jwt_verify, which chooses by the same claim.
 * Malloc'd, or NULL when the token has no readable payload or no iss. */
char *jwt_unverified_issuer(const char *token);

/* Signs claims (a JSON object) as a compact JWS with the key of `kid` in
 * set, using alg (JWT_ES256, JWT_EDDSA, JWT_RS256, JWT_PS256 with a private
 * key, JWT_HS256 with a secret). Returns malloc'd text, or NULL. */
char *jwt_sign(const cJSON *claims, unsigned alg, const jwt_keyset *set,
               const char *kid);

/* Strict base64url (RFC 4648 section 5, no padding, no other byte, unused
 * bits zero). Returns 0 and malloc'd bytes (NUL-terminated for
 * convenience), or -1. */
int jwt_b64url_decode(const char *in, size_t len, unsigned char **out,
                      size_t *out_len);

/* base64url without padding of len bytes, malloc'd, or NULL. */
char *jwt_b64url_encode(const unsigned char *in, size_t len);

/* Which claims make the principal, per issuer. Strings borrowed. */
typedef struct jwt_mapping {
  const char *sub_claim;           /* "sub" unless set. */
  const char *name_claim;          /* "name" unless set. */
  const char *email_claim;         /* "email" unless set. */
  const char *tenant_claim;        /* NULL: no tenant. */
  const char *const *scope_claims; /* NULL-ended: strings split on spaces,
                                      or arrays of strings, taken as is. */
  const char *const *role_claims;  /* NULL-ended: roles or groups, mapped
                                      through scope_map. */
  const cJSON *scope_map; /* Object: role or group -> [scopes], or NULL. */
} jwt_mapping;

/* The principal of verified claims: {sub, name, email, tenant, scopes,
 * roles, kind, iss, exp} (name, email, tenant null when absent). NULL, with
 * a message in err, when the subject claim is missing or not a string, or
 * a mapped claim has the wrong type. */
cJSON *jwt_principal(const cJSON *claims, const jwt_mapping *m,
                     const char *kind, char *err, size_t size);

#endif
