/* test_auth_jwt.c: plugins/auth/jwt.c against tokens forged here with
 * OpenSSL: signed by the test's own code (not jwt_sign) for RS256 and
 * PS256, then bent one way at a time (expired, early, another audience or
 * issuer, alg none, an RSA public key used as an HMAC secret, unknown or
 * missing kid, tampered parts, bad base64url, oversized), each of which
 * must be refused with its own reason; plus JWKS parsing and claims ->
 * principal. */
#include "jwt.h"

#include <criterion/criterion.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ISS "https://idp.example.com/"
#define AUD "https://mcp.example.com/mcp/sales"

static EVP_PKEY *rsa;
static jwt_keyset *keys;
static jwt_policy policy;
static double now;

static char *b64(const void *data, size_t len) {
  return jwt_b64url_encode(data, len);
}

/* The JWKS of the test's RSA key under kid "k1", built from n and e. */
static char *rsa_jwks(EVP_PKEY *pkey, const char *kid) {
  BIGNUM *n = NULL, *e = NULL;
  unsigned char buf[512];
  char *ns, *es, *out;
  int len;

  cr_assert(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1);
  cr_assert(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) == 1);
  len = BN_bn2bin(n, buf);
  ns = b64(buf, (size_t)len);
  len = BN_bn2bin(e, buf);
  es = b64(buf, (size_t)len);
  cr_assert(asprintf(&out,
                     "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"%s\",\"use\":"
                     "\"sig\",\"n\":\"%s\",\"e\":\"%s\"}]}",
                     kid, ns, es) > 0);
  free(ns);
  free(es);
  BN_free(n);
  BN_free(e);
  return out;
}

static void setup(void) {
  char err[256] = "", *jwks;

  rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  cr_assert_not_null(rsa);
  jwks = rsa_jwks(rsa, "k1");
  keys = jwt_keyset_parse_jwks(jwks, err, sizeof(err));
  cr_assert_not_null(keys, "%s", err);
  free(jwks);
  policy = (jwt_policy){.issuer = ISS,
                        .algs = JWT_RS256 | JWT_PS256 | JWT_ES256 | JWT_EDDSA,
                        .kid_required = 1,
                        .leeway = 60,
                        .keys = keys};
  now = (double)time(NULL);
}

static void teardown(void) {
  jwt_keyset_free(keys);
  EVP_PKEY_free(rsa);
}

TestSuite(auth_jwt, .init = setup, .fini = teardown, .timeout = 60);

/* header.payload signed with RSA (PKCS#1 v1.5, or PSS when pss). */
static char *rsa_sign(const char *header, const char *payload, int pss) {
  char *hb = b64(header, strlen(header)), *pb = b64(payload, strlen(payload));
  char *input, *token, *sb;
  unsigned char sig[512];
  size_t sig_len = sizeof(sig);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx;

  cr_assert(asprintf(&input, "%s.%s", hb, pb) > 0);
  cr_assert(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, rsa) == 1);
  if (pss) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  }
  cr_assert(EVP_DigestSign(ctx, sig, &sig_len, (unsigned char *)input,
                           strlen(input)) == 1);
  sb = b64(sig, sig_len);
  cr_assert(asprintf(&token, "%s.%s", input, sb) > 0);
  EVP_MD_CTX_free(ctx);
  free(hb);
  free(pb);
  free(sb);
  free(input);
  return token;
}

/* Claims with iss, aud, sub and exp/nbf relative to now. */
static char *claims(const char *iss, const char *aud, double exp_in,
                    const char *extra) {
  char *out;

  cr_assert(asprintf(&out,
                     "{\"iss\":\"%s\",\"sub\":\"u1\",\"aud\":%s,\"exp\":%.0f,"
                     "\"iat\":%.0f%s%s}",
                     iss, aud, now + exp_in, now - 10, extra ? "," : "",
                     extra ? extra : "") > 0);
  return out;
}

#define RS_HEADER "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"

static char *good_token(void) {
  char *c = claims(ISS, "\"" AUD "\"", 300, NULL), *t;

  t = rsa_sign(RS_HEADER, c, 0);
  free(c);
  return t;
}

/* Verifies and returns the reason ("ok" when accepted). */
static const char *verdict_of(const char *token) {
  static char reason[64];
  jwt_verdict v;

  if (jwt_verify(token, &policy, 1, AUD, now, &v) == 0) {
    cJSON_Delete(v.claims);
    return "ok";
  }
  snprintf(reason, sizeof(reason), "%s", v.reason);
  return reason;
}

static void expect_reason(const char *header, const char *payload,
                          const char *reason) {
  char *t = rsa_sign(header, payload, 0);

  cr_expect_str_eq(verdict_of(t), reason, "%s.%s", header, payload);
  free(t);
}

Test(auth_jwt, rs256_accepted_with_its_claims) {
  char *t = good_token();
  jwt_verdict v;

  cr_assert_eq(jwt_verify(t, &policy, 1, AUD, now, &v), 0, "%s: %s", v.reason,
               v.detail);
  cr_expect_str_eq(cJSON_GetObjectItem(v.claims, "sub")->valuestring, "u1");
  cr_expect_eq(v.exp, now + 300);
  cJSON_Delete(v.claims);
  free(t);
}

Test(auth_jwt, ps256_accepted) {
  char *c = claims(ISS, "\"" AUD "\"", 300, NULL);
  char *t = rsa_sign("{\"alg\":\"PS256\",\"kid\":\"k1\"}", c, 1);

  cr_expect_str_eq(verdict_of(t), "ok");
  free(t);
  free(c);
}

Test(auth_jwt, audience_array_containing_ours_accepted) {
  char *c = claims(ISS, "[\"https://other.example\",\"" AUD "\"]", 300, NULL);

  expect_reason(RS_HEADER, c, "ok");
  free(c);
}

Test(auth_jwt, expired_beyond_leeway_refused_within_accepted) {
  char *c = claims(ISS, "\"" AUD "\"", -120, NULL);

  expect_reason(RS_HEADER, c, JWT_EXPIRED);
  free(c);
  c = claims(ISS, "\"" AUD "\"", -30, NULL);
  expect_reason(RS_HEADER, c, "ok");
  free(c);
}

Test(auth_jwt, not_yet_valid_refused) {
  char extra[64], *c;

  snprintf(extra, sizeof(extra), "\"nbf\":%.0f", now + 120);
  c = claims(ISS, "\"" AUD "\"", 600, extra);
  expect_reason(RS_HEADER, c, JWT_NOT_YET_VALID);
  free(c);
  snprintf(extra, sizeof(extra), "\"nbf\":%.0f", now + 30);
  c = claims(ISS, "\"" AUD "\"", 600, extra);
  expect_reason(RS_HEADER, c, "ok");
  free(c);
}

Test(auth_jwt, missing_exp_refused) {
  expect_reason(RS_HEADER,
                "{\"iss\":\"" ISS "\",\"sub\":\"u1\",\"aud\":\"" AUD "\"}",
                JWT_MISSING_EXP);
}

Test(auth_jwt, wrong_audience_refused) {
  char *c = claims(ISS, "\"https://mcp.example.com/mcp/hr\"", 300, NULL);

  expect_reason(RS_HEADER, c, JWT_WRONG_AUDIENCE);
  free(c);
  /* A prefix of ours is another audience. */
  c = claims(ISS, "\"https://mcp.example.com/mcp\"", 300, NULL);
  expect_reason(RS_HEADER, c, JWT_WRONG_AUDIENCE);
  free(c);
  c = claims(ISS, "[]", 300, NULL);
  expect_reason(RS_HEADER, c, JWT_WRONG_AUDIENCE);
  free(c);
}

Test(auth_jwt, wrong_issuer_refused) {
  char *c = claims("https://idp.example.com", "\"" AUD "\"", 300, NULL);

  /* Exact comparison: no trailing-slash leniency. */
  expect_reason(RS_HEADER, c, JWT_UNKNOWN_ISSUER);
  free(c);
  c = claims("https://evil.example/", "\"" AUD "\"", 300, NULL);
  expect_reason(RS_HEADER, c, JWT_UNKNOWN_ISSUER);
  free(c);
}

Test(auth_jwt, alg_none_refused) {
  char *c = claims(ISS, "\"" AUD "\"", 300, NULL), *t, *hb, *pb;
  const char *h = "{\"alg\":\"none\",\"kid\":\"k1\"}";

  hb = b64(h, strlen(h));
  pb = b64(c, strlen(c));
  cr_assert(asprintf(&t, "%s.%s.", hb, pb) > 0);
  cr_expect_str_eq(verdict_of(t), JWT_ALG_NONE);
  free(t);
  /* "None" and "NONE" are not algorithms we know either. */
  free(hb);
  h = "{\"alg\":\"NONE\",\"kid\":\"k1\"}";
  hb = b64(h, strlen(h));
  cr_assert(asprintf(&t, "%s.%s.", hb, pb) > 0);
  cr_expect_str_eq(verdict_of(t), JWT_ALG_NOT_ALLOWED);
  free(t);
  free(hb);
  free(pb);
  free(c);
}

/* The classic confusion: HS256 with the RSA public key (PEM, or DER) as
 * the HMAC secret. The issuer's allow-list has no HS256, and even where it
 * had, an RSA key serves no HMAC. */
Test(auth_jwt, rs256_to_hs256_confusion_refused) {
  char *c = claims(ISS, "\"" AUD "\"", 300, NULL), *hb, *pb, *input, *t, *sb;
  const char *h = "{\"alg\":\"HS256\",\"kid\":\"k1\"}";
  unsigned char mac[32], *der = NULL;
  unsigned mac_len;
  BIO *bio = BIO_new(BIO_s_mem());
  char *pem;
  long pem_len;
  int der_len, round;

  PEM_write_bio_PUBKEY(bio, rsa);
  pem_len = BIO_get_mem_data(bio, &pem);
  der_len = i2d_PUBKEY(rsa, &der);
  hb = b64(h, strlen(h));
  pb = b64(c, strlen(c));
  cr_assert(asprintf(&input, "%s.%s", hb, pb) > 0);
  for (round = 0; round < 2; round++) {
    HMAC(EVP_sha256(), round ? (const void *)der : pem,
         round ? der_len : (int)pem_len, (unsigned char *)input, strlen(input),
         mac, &mac_len);
    sb = b64(mac, mac_len);
    cr_assert(asprintf(&t, "%s.%s", input, sb) > 0);
    cr_expect_str_eq(verdict_of(t), JWT_ALG_NOT_ALLOWED);
    policy.algs |= JWT_HS256; /* A misconfigured allow-list. */
    cr_expect_str_eq(verdict_of(t), JWT_ALG_NOT_ALLOWED);
    policy.algs &= ~(unsigned)JWT_HS256;
    free(t);
    free(sb);
  }
  OPENSSL_free(der);
  BIO_free(bio);
  free(input);
  free(hb);
  free(pb);
  free(c);
}

Test(auth_jwt, alg_outside_the_issuers_list_refused) {
  char *t = good_token();

  policy.algs = JWT_ES256;
  cr_expect_str_eq(verdict_of(t), JWT_ALG_NOT_ALLOWED);
  free(t);
}

Test(auth_jwt, unknown_and_missing_kid_refused) {
  char *c = claims(ISS, "\"" AUD "\"", 300, NULL);

  expect_reason("{\"alg\":\"RS256\",\"kid\":\"k2\"}", c, JWT_UNKNOWN_KID);
  expect_reason("{\"alg\":\"RS256\"}", c, JWT_KID_MISSING);
  expect_reason("{\"alg\":\"RS256\",\"kid\":7}", c, JWT_BAD_HEADER);
  free(c);
}

/* The token with part `which` (0 header, 1 payload) replaced by text,
 * the signature kept. */
static char *swap_part(const char *token, int which, const char *text) {
  const char *d1 = strchr(token, '.'), *d2 = strchr(d1 + 1, '.');
  char *enc = b64(text, strlen(text)), *out;

  if (which == 0)
    cr_assert(asprintf(&out, "%s%s", enc, d1) > 0);
  else
    cr_assert(asprintf(&out, "%.*s.%s%s", (int)(d1 - token), token, enc, d2) >
              0);
  free(enc);
  return out;
}

Test(auth_jwt, tampered_header_payload_and_signature_refused) {
  char *t = good_token(), *bad, *c;
  size_t len = strlen(t);

  bad =
      swap_part(t, 0, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}");
  cr_expect_str_eq(verdict_of(bad), JWT_BAD_SIGNATURE);
  free(bad);
  c = claims(ISS, "\"" AUD "\"", 300, "\"scope\":\"admin:*\"");
  bad = swap_part(t, 1, c);
  cr_expect_str_eq(verdict_of(bad), JWT_BAD_SIGNATURE);
  free(bad);
  free(c);
  bad = strdup(t);
  bad[len - 5] = bad[len - 5] == 'A' ? 'B' : 'A';
  cr_expect_str_eq(verdict_of(bad), JWT_BAD_SIGNATURE);
  free(bad);
  /* Cut short to a length no base64url text has (4n + 1 characters: one
   * left over holds six bits, not a byte). Cutting to any other length
   * leaves valid base64url whenever the new last character's unused bits
   * happen to be zero, one time in four or sixteen. */
  {
    size_t sig = len - (size_t)(strrchr(t, '.') + 1 - t), cut = 1;

    while ((sig - cut) % 4 != 1)
      cut++;
    bad = strndup(t, len - cut);
  }
  cr_expect_str_eq(verdict_of(bad), JWT_BAD_BASE64URL);
  free(bad);
  /* No signature at all. */
  bad = strndup(t, (size_t)(strrchr(t, '.') - t) + 1);
  cr_expect_str_eq(verdict_of(bad), JWT_BAD_SIGNATURE);
  free(bad);
  free(t);
}

Test(auth_jwt, bad_base64url_refused) {
  char *t = good_token(), *bad, *d1 = strchr(t, '.');

  /* Standard base64's alphabet, padding, whitespace. */
  bad = strdup(t);
  bad[(d1 - t) + 3] = '+';
  cr_expect_str_eq(verdict_of(bad), JWT_BAD_BASE64URL);
  free(bad);
  cr_assert(asprintf(&bad, "%.*s=%s", (int)(d1 - t), t, d1) > 0);
  cr_expect_str_eq(verdict_of(bad), JWT_BAD_BASE64URL);
  free(bad);
  cr_assert(asprintf(&bad, "%s ", t) > 0);
  cr_expect_str_eq(verdict_of(bad), JWT_BAD_BASE64URL);
  free(bad);
  free(t);
}

Test(auth_jwt, base64url_is_strict) {
  unsigned char *out;
  size_t len;

  cr_expect_eq(jwt_b64url_decode("QQ", 2, &out, &len), 0);
  cr_expect(len == 1 && out[0] == 'A');
  free(out);
  /* "QR" is 'A' with a non-zero unused bit: a second spelling. */
  cr_expect_eq(jwt_b64url_decode("QR", 2, &out, &len), -1);
  cr_expect_eq(jwt_b64url_decode("Q", 1, &out, &len), -1);
  cr_expect_eq(jwt_b64url_decode("QQ==", 4, &out, &len), -1);
  cr_expect_eq(jwt_b64url_decode("a/b+", 4, &out, &len), -1);
  cr_expect_eq(jwt_b64url_decode("-_8", 3, &out, &len), 0);
  cr_expect(len == 2 && out[0] == 0xfb && out[1] == 0xff);
  free(out);
}

Test(auth_jwt, oversized_token_refused_before_parsing) {
  char *t = malloc(JWT_MAX_TOKEN + 2);

  memset(t, 'A', JWT_MAX_TOKEN + 1);
  t[JWT_MAX_TOKEN + 1] = '\0';
  cr_expect_str_eq(verdict_of(t), JWT_TOO_LARGE);
  free(t);
}

Test(auth_jwt, malformed_shapes_refused) {
  cr_expect_str_eq(verdict_of("abc"), JWT_MALFORMED);
  cr_expect_str_eq(verdict_of("a.b.c.d"), JWT_MALFORMED);
  cr_expect_str_eq(verdict_of(""), JWT_MALFORMED);
  /* Duplicate claims: two parsers could read two different iss. */
  expect_reason(RS_HEADER,
                "{\"iss\":\"" ISS "\",\"iss\":\"x\",\"exp\":9999999999,"
                "\"aud\":\"" AUD "\"}",
                JWT_MALFORMED);
  expect_reason("{\"alg\":\"RS256\",\"kid\":\"k1\",\"crit\":[\"exp\"]}", "{}",
                JWT_BAD_HEADER);
}

Test(auth_jwt, es256_and_eddsa_round_trip_through_jwt_sign) {
  static const char *const curves[] = {"EC", "ED25519"};
  unsigned algs[] = {JWT_ES256, JWT_EDDSA};
  jwt_keyset *own;
  cJSON *c;
  char *t, *jwks, err[256];
  jwt_verdict v;
  int i;

  for (i = 0; i < 2; i++) {
    EVP_PKEY *k = i == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, curves[i], "P-256")
                         : EVP_PKEY_Q_keygen(NULL, NULL, curves[i]);
    own = jwt_keyset_new();
    cr_assert_eq(jwt_keyset_add_pkey(own, "own", k), 0);
    c = cJSON_Parse("{\"iss\":\"" ISS "\",\"sub\":\"u\",\"aud\":\"" AUD "\"}");
    cJSON_AddNumberToObject(c, "exp", now + 60);
    t = jwt_sign(c, algs[i], own, "own");
    cr_assert_not_null(t);
    /* Verified through the published JWKS, as a third party would. */
    jwks = jwt_keyset_public_jwks(own);
    cr_expect(strstr(jwks, "\"d\"") == NULL, "%s", jwks);
    jwt_keyset_free(keys);
    keys = jwt_keyset_parse_jwks(jwks, err, sizeof(err));
    cr_assert_not_null(keys, "%s", err);
    policy.keys = keys;
    cr_expect_eq(jwt_verify(t, &policy, 1, AUD, now, &v), 0, "%s", v.detail);
    cJSON_Delete(v.claims);
    t[strlen(t) - 2] = t[strlen(t) - 2] == 'A' ? 'B' : 'A';
    cr_expect_str_eq(verdict_of(t), JWT_BAD_SIGNATURE);
    free(t);
    free(jwks);
    cJSON_Delete(c);
    jwt_keyset_free(own);
  }
}

Test(auth_jwt, hs256_only_with_a_secret) {
  jwt_keyset *own = jwt_keyset_new();
  jwt_policy p = {.issuer = ISS,
                  .algs = JWT_HS256,
                  .kid_required = 1,
                  .leeway = 0,
                  .keys = own};
  cJSON *c = cJSON_Parse("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}");
  const char *secret = "0123456789abcdef0123456789abcdef";
  jwt_verdict v;
  char *t;

  cr_expect_eq(
      jwt_keyset_add_secret(own, "s", (const unsigned char *)"short", 5), -1);
  cr_assert_eq(jwt_keyset_add_secret(own, "s", (const unsigned char *)secret,
                                     strlen(secret)),
               0);
  cJSON_AddNumberToObject(c, "exp", now + 60);
  t = jwt_sign(c, JWT_HS256, own, "s");
  cr_assert_not_null(t);
  cr_expect_eq(jwt_verify(t, &p, 1, AUD, now, &v), 0, "%s", v.detail);
  cJSON_Delete(v.claims);
  cr_expect_str_eq(strstr(jwt_keyset_public_jwks(own), "keys") ? "ok" : "",
                   "ok");
  free(t);
  cJSON_Delete(c);
  jwt_keyset_free(own);
}

Test(auth_jwt, jwks_refuses_symmetric_private_and_weak_keys) {
  char err[256];
  EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
  char *jwks = rsa_jwks(weak, "weak");

  cr_expect_null(jwt_keyset_parse_jwks(
      "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"}]}", err,
      sizeof(err)));
  cr_expect_null(jwt_keyset_parse_jwks(
      "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"e\",\"crv\":\"P-256\","
      "\"x\":\"AA\",\"y\":\"AA\",\"d\":\"AA\"}]}",
      err, sizeof(err)));
  cr_expect_null(jwt_keyset_parse_jwks(jwks, err, sizeof(err)));
  cr_expect_null(jwt_keyset_parse_jwks("{\"keys\":{}}", err, sizeof(err)));
  /* A point that is not on the curve. */
  cr_expect_null(jwt_keyset_parse_jwks(
      "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"e\",\"crv\":\"P-256\","
      "\"x\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
      "\"y\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
      err, sizeof(err)));
  /* Encryption keys are skipped, not refused. */
  jwt_keyset *k = jwt_keyset_parse_jwks(
      "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"x\",\"use\":\"enc\"}]}", err,
      sizeof(err));
  cr_expect(k != NULL && jwt_keyset_count(k) == 0);
  jwt_keyset_free(k);
  free(jwks);
  EVP_PKEY_free(weak);
}

Test(auth_jwt, claims_map_onto_a_principal) {
  static const char *const scope_claims[] = {"scope", "scp", NULL};
  static const char *const role_claims[] = {"cognito:groups", "roles", NULL};
  cJSON *map = cJSON_Parse("{\"Admins\":[\"admin:*\",\"read:tools\"],"
                           "\"MCP.User\":[\"execute:tools\",\"read:tools\"]}");
  cJSON *c = cJSON_Parse(
      "{\"sub\":\"abc\",\"name\":\"Ann\",\"iss\":\"" ISS "\",\"exp\":5,"
      "\"scope\":\"read:sales  write:sales\",\"scp\":[\"read:sales\"],"
      "\"cognito:groups\":[\"Admins\",\"Unmapped\"],\"roles\":\"MCP.User\","
      "\"custom:tenant_id\":\"acme\"}");
  jwt_mapping m = {.tenant_claim = "custom:tenant_id",
                   .scope_claims = scope_claims,
                   .role_claims = role_claims,
                   .scope_map = map};
  char err[200], *text;
  cJSON *p = jwt_principal(c, &m, "external", err, sizeof(err));

  cr_assert_not_null(p, "%s", err);
  text = cJSON_PrintUnformatted(cJSON_GetObjectItem(p, "scopes"));
  cr_expect_str_eq(text, "[\"read:sales\",\"write:sales\",\"admin:*\","
                         "\"read:tools\",\"execute:tools\"]");
  free(text);
  cr_expect_str_eq(cJSON_GetObjectItem(p, "tenant")->valuestring, "acme");
  cr_expect_str_eq(cJSON_GetObjectItem(p, "kind")->valuestring, "external");
  cr_expect(cJSON_IsNull(cJSON_GetObjectItem(p, "email")));
  cJSON_Delete(p);
  /* No subject, or a scope claim of the wrong type: no principal. */
  cJSON_DeleteItemFromObject(c, "sub");
  cr_expect_null(jwt_principal(c, &m, "external", err, sizeof(err)));
  cJSON_AddStringToObject(c, "sub", "abc");
  cJSON_ReplaceItemInObject(c, "scp", cJSON_CreateNumber(1));
  cr_expect_null(jwt_principal(c, &m, "external", err, sizeof(err)));
  cJSON_Delete(c);
  cJSON_Delete(map);
}
