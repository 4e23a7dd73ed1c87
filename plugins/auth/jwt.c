/* jwt.c: compact JWS verification and signing on libcrypto's EVP
 * interface, JWKS parsing, and claims -> principal. Every signature, digest
 * and MAC is OpenSSL's; this file only moves bytes into the shapes JOSE
 * wants (base64url, the r||s form of ECDSA signatures). */
#include "jwt.h"

#include <math.h>
#include <stdarg.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_RSA_BITS 2048
#define MIN_SECRET 32

/* What a key is, which decides the algorithms it may serve. */
enum key_type { KEY_RSA, KEY_EC_P256, KEY_ED25519, KEY_SECRET };

typedef struct jwt_key {
  char *kid;
  enum key_type type;
  unsigned algs;         /* What the JWK's "alg" narrows it to, or all. */
  EVP_PKEY *pkey;        /* Asymmetric keys. */
  unsigned char *secret; /* KEY_SECRET. */
  size_t secret_len;
} jwt_key;

struct jwt_keyset {
  jwt_key *keys;
  size_t n;
};

static const struct {
  const char *name;
  unsigned bit;
} alg_names[] = {{"RS256", JWT_RS256},
                 {"PS256", JWT_PS256},
                 {"ES256", JWT_ES256},
                 {"EdDSA", JWT_EDDSA},
                 {"HS256", JWT_HS256}};

unsigned jwt_alg_bit(const char *name) {
  size_t i;

  for (i = 0; name != NULL && i < sizeof(alg_names) / sizeof(*alg_names); i++)
    if (strcmp(name, alg_names[i].name) == 0)
      return alg_names[i].bit;
  return 0;
}

static const char *alg_name(unsigned bit) {
  size_t i;

  for (i = 0; i < sizeof(alg_names) / sizeof(*alg_names); i++)
    if (alg_names[i].bit == bit)
      return alg_names[i].name;
  return "?";
}

static unsigned algs_of_type(enum key_type t) {
  switch (t) {
  case KEY_RSA:
    return JWT_RS256 | JWT_PS256;
  case KEY_EC_P256:
    return JWT_ES256;
  case KEY_ED25519:
    return JWT_EDDSA;
  case KEY_SECRET:
    return JWT_HS256;
  }
  return 0;
}

/* ---- base64url ---- */

static int b64url_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

int jwt_b64url_decode(const char *in, size_t len, unsigned char **out,
                      size_t *out_len) {
  unsigned char *buf;
  unsigned acc = 0;
  size_t i, o = 0;
  int bits = 0, v;

  *out = NULL;
  *out_len = 0;
  /* One character left over carries 6 bits: never a whole byte. */
  if (len % 4 == 1)
    return -1;
  buf = malloc(len / 4 * 3 + 3);
  if (buf == NULL)
    return -1;
  for (i = 0; i < len; i++) {
    v = b64url_value((unsigned char)in[i]);
    if (v < 0)
      goto bad;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  /* The unused low bits of the last character must be zero, so that each
   * byte string has exactly one spelling. */
  if (acc != 0)
    goto bad;
  buf[o] = '\0';
  *out = buf;
  *out_len = o;
  return 0;

bad:
  free(buf);
  return -1;
}

char *jwt_b64url_encode(const unsigned char *in, size_t len) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  char *out = malloc(len / 3 * 4 + 5), *o = out;
  unsigned acc = 0;
  int bits = 0;
  size_t i;

  if (out == NULL)
    return NULL;
  for (i = 0; i < len; i++) {
    acc = (acc << 8) | in[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      *o++ = alphabet[(acc >> bits) & 63];
    }
    acc &= (1u << bits) - 1;
  }
  if (bits > 0)
    *o++ = alphabet[(acc << (6 - bits)) & 63];
  *o = '\0';
  return out;
}

/* ---- key sets ---- */

jwt_keyset *jwt_keyset_new(void) {
  return calloc(1, sizeof(jwt_keyset));
}

size_t jwt_keyset_count(const jwt_keyset *set) {
  return set ? set->n : 0;
}

void jwt_keyset_free(jwt_keyset *set) {
  size_t i;

  if (set == NULL)
    return;
  for (i = 0; i < set->n; i++) {
    free(set->keys[i].kid);
    EVP_PKEY_free(set->keys[i].pkey);
    if (set->keys[i].secret != NULL)
      OPENSSL_cleanse(set->keys[i].secret, set->keys[i].secret_len);
    free(set->keys[i].secret);
  }
  free(set->keys);
  free(set);
}

static const jwt_key *find_key(const jwt_keyset *set, const char *kid) {
  size_t i;

  for (i = 0; set != NULL && i < set->n; i++)
    if (kid == NULL || strcmp(set->keys[i].kid, kid) == 0)
      return &set->keys[i];
  return NULL;
}

static jwt_key *append_key(jwt_keyset *set, const char *kid) {
  jwt_key *grown;

  if (kid == NULL || kid[0] == '\0' || find_key(set, kid) != NULL)
    return NULL;
  grown = realloc(set->keys, (set->n + 1) * sizeof(*grown));
  if (grown == NULL)
    return NULL;
  set->keys = grown;
  memset(&grown[set->n], 0, sizeof(*grown));
  grown[set->n].kid = strdup(kid);
  if (grown[set->n].kid == NULL)
    return NULL;
  return &grown[set->n++];
}

/* The type of an asymmetric key we can use, or -1. */
static int pkey_type(EVP_PKEY *pkey) {
  char group[32];
  size_t len = 0;

  if (EVP_PKEY_is_a(pkey, "RSA"))
    return EVP_PKEY_get_bits(pkey) >= MIN_RSA_BITS ? KEY_RSA : -1;
  if (EVP_PKEY_is_a(pkey, "ED25519"))
    return KEY_ED25519;
  if (EVP_PKEY_is_a(pkey, "EC") &&
      EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                     sizeof(group), &len) == 1 &&
      strcmp(group, "prime256v1") == 0)
    return KEY_EC_P256;
  return -1;
}

int jwt_keyset_add_pkey(jwt_keyset *set, const char *kid, EVP_PKEY *pkey) {
  jwt_key *k;
  int type = pkey ? pkey_type(pkey) : -1;

  if (type < 0 || (k = append_key(set, kid)) == NULL)
    return -1;
  k->type = (enum key_type)type;
  k->algs = algs_of_type(k->type);
  k->pkey = pkey;
  return 0;
}

int jwt_keyset_add_secret(jwt_keyset *set, const char *kid,
                          const unsigned char *secret, size_t len) {
  jwt_key *k;
  unsigned char *copy;

  if (len < MIN_SECRET || (copy = malloc(len)) == NULL)
    return -1;
  memcpy(copy, secret, len);
  if ((k = append_key(set, kid)) == NULL) {
    OPENSSL_cleanse(copy, len);
    free(copy);
    return -1;
  }
  k->type = KEY_SECRET;
  k->algs = JWT_HS256;
  k->secret = copy;
  k->secret_len = len;
  return 0;
}

/* The base64url member `name` of a JWK as bytes, or -1. */
static int jwk_bytes(const cJSON *jwk, const char *name, unsigned char **out,
                     size_t *len) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(jwk, name);

  if (!cJSON_IsString(m))
    return -1;
  return jwt_b64url_decode(m->valuestring, strlen(m->valuestring), out, len);
}

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld) {
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
  EVP_PKEY *pkey = NULL;

  if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return pkey;
}

static EVP_PKEY *jwk_rsa(const cJSON *jwk) {
  unsigned char *n = NULL, *e = NULL;
  size_t nlen, elen;
  BIGNUM *bn_n = NULL, *bn_e = NULL;
  OSSL_PARAM_BLD *bld = NULL;
  EVP_PKEY *pkey = NULL;

  if (jwk_bytes(jwk, "n", &n, &nlen) != 0 ||
      jwk_bytes(jwk, "e", &e, &elen) != 0 || nlen == 0 || elen == 0)
    goto cleanup;
  bn_n = BN_bin2bn(n, (int)nlen, NULL);
  bn_e = BN_bin2bn(e, (int)elen, NULL);
  bld = OSSL_PARAM_BLD_new();
  if (bn_n == NULL || bn_e == NULL || bld == NULL ||
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1)
    goto cleanup;
  pkey = pkey_from_params("RSA", bld);

cleanup:
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  free(n);
  free(e);
  return pkey;
}

/* The JWK's "crv", or "". */
static const char *jwk_crv(const cJSON *jwk) {
  const char *crv =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(jwk, "crv"));

  return crv ? crv : "";
}

static EVP_PKEY *jwk_ec(const cJSON *jwk) {
  unsigned char *x = NULL, *y = NULL, point[65];
  size_t xlen, ylen;
  OSSL_PARAM_BLD *bld = NULL;
  EVP_PKEY *pkey = NULL;
  EVP_PKEY_CTX *check = NULL;

  if (strcmp(jwk_crv(jwk), "P-256") != 0 ||
      jwk_bytes(jwk, "x", &x, &xlen) != 0 ||
      jwk_bytes(jwk, "y", &y, &ylen) != 0 || xlen != 32 || ylen != 32)
    goto cleanup;
  point[0] = 0x04; /* Uncompressed: 04 || x || y. */
  memcpy(point + 1, x, 32);
  memcpy(point + 33, y, 32);
  bld = OSSL_PARAM_BLD_new();
  if (bld == NULL ||
      OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                      "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                       sizeof(point)) != 1)
    goto cleanup;
  pkey = pkey_from_params("EC", bld);
  /* A point off the curve is an invalid-curve attack waiting to happen. */
  check = pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
  if (pkey != NULL && (check == NULL || EVP_PKEY_public_check(check) != 1)) {
    EVP_PKEY_free(pkey);
    pkey = NULL;
  }

cleanup:
  EVP_PKEY_CTX_free(check);
  OSSL_PARAM_BLD_free(bld);
  free(x);
  free(y);
  return pkey;
}

static EVP_PKEY *jwk_okp(const cJSON *jwk) {
  unsigned char *x = NULL;
  size_t xlen;
  EVP_PKEY *pkey = NULL;

  if (strcmp(jwk_crv(jwk), "Ed25519") == 0 &&
      jwk_bytes(jwk, "x", &x, &xlen) == 0 && xlen == 32)
    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xlen);
  free(x);
  return pkey;
}

jwt_keyset *jwt_keyset_parse_jwks(const char *json, char *err, size_t size) {
  cJSON *doc = cJSON_Parse(json), *jwk;
  const cJSON *keys = cJSON_GetObjectItemCaseSensitive(doc, "keys");
  jwt_keyset *set = jwt_keyset_new();
  const char *kty, *kid, *use, *alg;
  EVP_PKEY *pkey;
  int i = 0;

  if (set == NULL) {
    snprintf(err, size, "out of memory");
    goto fail;
  }
  if (!cJSON_IsArray(keys)) {
    snprintf(err, size, "a JWKS is an object with a \"keys\" array");
    goto fail;
  }
  cJSON_ArrayForEach(jwk, (cJSON *)keys) {
    kty = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(jwk, "kty"));
    kid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(jwk, "kid"));
    use = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(jwk, "use"));
    alg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(jwk, "alg"));
    if (use != NULL && strcmp(use, "sig") != 0) {
      i++;
      continue;
    }
    if (kty == NULL || kid == NULL || kid[0] == '\0') {
      snprintf(err, size, "key %d: \"kty\" and \"kid\" are required", i);
      goto fail;
    }
    if (cJSON_GetObjectItemCaseSensitive(jwk, "d") != NULL ||
        strcmp(kty, "oct") == 0) {
      snprintf(err, size,
               "key %s: a JWKS for verification holds no private or "
               "symmetric key",
               kid);
      goto fail;
    }
    if (strcmp(kty, "RSA") == 0)
      pkey = jwk_rsa(jwk);
    else if (strcmp(kty, "EC") == 0)
      pkey = jwk_ec(jwk);
    else if (strcmp(kty, "OKP") == 0)
      pkey = jwk_okp(jwk);
    else
      pkey = NULL;
    if (pkey == NULL || jwt_keyset_add_pkey(set, kid, pkey) != 0) {
      snprintf(err, size,
               "key %s: not a usable %s key (RSA of %d bits or more, EC "
               "P-256 or Ed25519), or a duplicate kid",
               kid, kty, MIN_RSA_BITS);
      EVP_PKEY_free(pkey);
      goto fail;
    }
    if (alg != NULL) {
      unsigned bit = jwt_alg_bit(alg) & set->keys[set->n - 1].algs;
      if (bit == 0) {
        snprintf(err, size, "key %s: \"alg\" %s does not fit a %s key", kid,
                 alg, kty);
        goto fail;
      }
      set->keys[set->n - 1].algs = bit;
    }
    i++;
  }
  cJSON_Delete(doc);
  return set;

fail:
  cJSON_Delete(doc);
  jwt_keyset_free(set);
  return NULL;
}

/* A public key's JWK members added to obj. */
static int add_public_members(cJSON *obj, const jwt_key *k) {
  BIGNUM *n = NULL, *e = NULL;
  unsigned char buf[1024], point[65];
  size_t len = 0;
  char *text;
  int ok = 0;

  switch (k->type) {
  case KEY_RSA:
    if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1 ||
        BN_num_bytes(n) > (int)sizeof(buf))
      break;
    cJSON_AddStringToObject(obj, "kty", "RSA");
    len = (size_t)BN_bn2bin(n, buf);
    text = jwt_b64url_encode(buf, len);
    cJSON_AddStringToObject(obj, "n", text ? text : "");
    free(text);
    len = (size_t)BN_bn2bin(e, buf);
    text = jwt_b64url_encode(buf, len);
    cJSON_AddStringToObject(obj, "e", text ? text : "");
    free(text);
    ok = 1;
    break;
  case KEY_EC_P256:
    if (EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_PUB_KEY, point,
                                        sizeof(point), &len) != 1 ||
        len != 65)
      break;
    cJSON_AddStringToObject(obj, "kty", "EC");
    cJSON_AddStringToObject(obj, "crv", "P-256");
    text = jwt_b64url_encode(point + 1, 32);
    cJSON_AddStringToObject(obj, "x", text ? text : "");
    free(text);
    text = jwt_b64url_encode(point + 33, 32);
    cJSON_AddStringToObject(obj, "y", text ? text : "");
    free(text);
    ok = 1;
    break;
  case KEY_ED25519:
    len = 32;
    if (EVP_PKEY_get_raw_public_key(k->pkey, buf, &len) != 1)
      break;
    cJSON_AddStringToObject(obj, "kty", "OKP");
    cJSON_AddStringToObject(obj, "crv", "Ed25519");
    text = jwt_b64url_encode(buf, len);
    cJSON_AddStringToObject(obj, "x", text ? text : "");
    free(text);
    ok = 1;
    break;
  case KEY_SECRET:
    break;
  }
  BN_free(n);
  BN_free(e);
  return ok;
}

char *jwt_keyset_public_jwks(const jwt_keyset *set) {
  cJSON *doc = cJSON_CreateObject(), *keys, *jwk;
  char *text;
  size_t i;

  keys = cJSON_AddArrayToObject(doc, "keys");
  for (i = 0; set != NULL && i < set->n; i++) {
    jwk = cJSON_CreateObject();
    if (!add_public_members(jwk, &set->keys[i])) {
      cJSON_Delete(jwk);
      continue;
    }
    cJSON_AddStringToObject(jwk, "kid", set->keys[i].kid);
    cJSON_AddStringToObject(jwk, "use", "sig");
    if ((set->keys[i].algs & (set->keys[i].algs - 1)) == 0)
      cJSON_AddStringToObject(jwk, "alg", alg_name(set->keys[i].algs));
    cJSON_AddItemToArray(keys, jwk);
  }
  text = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  return text;
}

/* ---- signatures ---- */

/* ES256 travels as r || s, 32 bytes each; OpenSSL speaks DER. */
static unsigned char *es256_raw_to_der(const unsigned char *raw, int *len) {
  ECDSA_SIG *sig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
  unsigned char *der = NULL;

  *len = 0;
  if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return NULL;
  }
  *len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  return *len > 0 ? der : NULL;
}

static int es256_der_to_raw(const unsigned char *der, size_t len,
                            unsigned char raw[64]) {
  const unsigned char *p = der;
  ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
  const BIGNUM *r, *s;
  int ok;

  if (sig == NULL)
    return -1;
  ECDSA_SIG_get0(sig, &r, &s);
  ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
  ECDSA_SIG_free(sig);
  return ok ? 0 : -1;
}

/* Sets up ctx for alg on pkey, to sign or to verify. */
static int digest_init(EVP_MD_CTX *ctx, unsigned alg, EVP_PKEY *pkey,
                       int signing) {
  EVP_PKEY_CTX *pctx = NULL;
  const EVP_MD *md = alg == JWT_EDDSA ? NULL : EVP_sha256();
  int rc = signing ? EVP_DigestSignInit(ctx, &pctx, md, NULL, pkey)
                   : EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pkey);

  if (rc != 1)
    return -1;
  if (alg == JWT_RS256 &&
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
    return -1;
  /* RFC 7518 3.5: MGF1 with SHA-256 and a salt as long as the digest. */
  if (alg == JWT_PS256 &&
      (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
    return -1;
  return 0;
}

static int verify_signature(const jwt_key *k, unsigned alg, const char *input,
                            size_t input_len, const unsigned char *sig,
                            size_t sig_len) {
  unsigned char mac[EVP_MAX_MD_SIZE], *der = NULL;
  unsigned mac_len = 0;
  EVP_MD_CTX *ctx;
  int der_len = 0, ok = 0;

  if (alg == JWT_HS256) {
    if (k->type != KEY_SECRET ||
        HMAC(EVP_sha256(), k->secret, (int)k->secret_len,
             (const unsigned char *)input, input_len, mac, &mac_len) == NULL)
      return 0;
    return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
  }
  if (alg == JWT_ES256) {
    if (sig_len != 64 || (der = es256_raw_to_der(sig, &der_len)) == NULL)
      return 0;
    sig = der;
    sig_len = (size_t)der_len;
  }
  ctx = EVP_MD_CTX_new();
  if (ctx != NULL && digest_init(ctx, alg, k->pkey, 0) == 0)
    ok = EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)input,
                          input_len) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return ok;
}

/* The signature of input with key k, malloc'd, or NULL. */
static unsigned char *make_signature(const jwt_key *k, unsigned alg,
                                     const char *input, size_t *sig_len) {
  unsigned char *sig = NULL, *raw;
  unsigned mac_len = 0;
  EVP_MD_CTX *ctx;
  size_t len = 0;

  if (alg == JWT_HS256) {
    sig = malloc(EVP_MAX_MD_SIZE);
    if (sig == NULL || HMAC(EVP_sha256(), k->secret, (int)k->secret_len,
                            (const unsigned char *)input, strlen(input), sig,
                            &mac_len) == NULL) {
      free(sig);
      return NULL;
    }
    *sig_len = mac_len;
    return sig;
  }
  ctx = EVP_MD_CTX_new();
  if (ctx == NULL || digest_init(ctx, alg, k->pkey, 1) != 0 ||
      EVP_DigestSign(ctx, NULL, &len, (const unsigned char *)input,
                     strlen(input)) != 1 ||
      (sig = malloc(len)) == NULL ||
      EVP_DigestSign(ctx, sig, &len, (const unsigned char *)input,
                     strlen(input)) != 1) {
    free(sig);
    sig = NULL;
    goto done;
  }
  *sig_len = len;
  if (alg == JWT_ES256) {
    raw = malloc(64);
    if (raw == NULL || es256_der_to_raw(sig, len, raw) != 0) {
      free(raw);
      raw = NULL;
    }
    free(sig);
    sig = raw;
    *sig_len = 64;
  }

done:
  EVP_MD_CTX_free(ctx);
  return sig;
}

char *jwt_sign(const cJSON *claims, unsigned alg, const jwt_keyset *set,
               const char *kid) {
  const jwt_key *k = find_key(set, kid);
  cJSON *header;
  char *h = NULL, *p = NULL, *hb = NULL, *pb = NULL, *sb = NULL;
  char *input = NULL, *token = NULL;
  unsigned char *sig = NULL;
  size_t sig_len = 0;

  if (k == NULL || (k->algs & alg) == 0 || (alg & (alg - 1)) != 0)
    return NULL;
  header = cJSON_CreateObject();
  cJSON_AddStringToObject(header, "alg", alg_name(alg));
  cJSON_AddStringToObject(header, "typ", "at+jwt");
  cJSON_AddStringToObject(header, "kid", k->kid);
  h = cJSON_PrintUnformatted(header);
  cJSON_Delete(header);
  p = cJSON_PrintUnformatted(claims);
  if (h == NULL || p == NULL)
    goto cleanup;
  hb = jwt_b64url_encode((const unsigned char *)h, strlen(h));
  pb = jwt_b64url_encode((const unsigned char *)p, strlen(p));
  if (hb == NULL || pb == NULL || asprintf(&input, "%s.%s", hb, pb) < 0) {
    input = NULL;
    goto cleanup;
  }
  sig = make_signature(k, alg, input, &sig_len);
  if (sig == NULL || (sb = jwt_b64url_encode(sig, sig_len)) == NULL ||
      asprintf(&token, "%s.%s", input, sb) < 0)
    token = NULL;

cleanup:
  free(h);
  free(p);
  free(hb);
  free(pb);
  free(sb);
  free(sig);
  free(input);
  return token;
}

/* ---- verification ---- */

static int refuse(jwt_verdict *v, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(jwt_verdict *v, const char *reason, const char *fmt, ...) {
  va_list ap;

  v->reason = reason;
  va_start(ap, fmt);
  vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
  va_end(ap);
  return -1;
}

/* A base64url JSON object, or NULL. Duplicate member names are refused:
 * two parsers reading different values of one claim is how checks are
 * bypassed. */
static cJSON *decode_object(const char *part, size_t len, int *bad_b64) {
  unsigned char *bytes;
  size_t n;
  cJSON *obj, *a, *b;

  *bad_b64 = 0;
  if (jwt_b64url_decode(part, len, &bytes, &n) != 0) {
    *bad_b64 = 1;
    return NULL;
  }
  obj = memchr(bytes, '\0', n) ? NULL : cJSON_ParseWithLength((char *)bytes, n);
  free(bytes);
  if (!cJSON_IsObject(obj)) {
    cJSON_Delete(obj);
    return NULL;
  }
  for (a = obj->child; a != NULL; a = a->next)
    for (b = a->next; b != NULL; b = b->next)
      if (strcmp(a->string, b->string) == 0) {
        cJSON_Delete(obj);
        return NULL;
      }
  return obj;
}

static int audience_matches(const cJSON *aud, const char *audience) {
  const cJSON *item;

  if (cJSON_IsString(aud))
    return strcmp(aud->valuestring, audience) == 0;
  cJSON_ArrayForEach(item, aud) {
    if (cJSON_IsString(item) && strcmp(item->valuestring, audience) == 0)
      return 1;
  }
  return 0;
}

/* exp, nbf, iat and aud of verified claims. */
static int check_claims(const cJSON *claims, const jwt_policy *p,
                        const char *audience, double now, jwt_verdict *v) {
  const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
  const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(claims, "nbf");
  const cJSON *iat = cJSON_GetObjectItemCaseSensitive(claims, "iat");
  const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");

  if (exp == NULL)
    return refuse(v, JWT_MISSING_EXP, "the token has no exp claim");
  if (!cJSON_IsNumber(exp) || !isfinite(exp->valuedouble) ||
      (nbf != NULL && !cJSON_IsNumber(nbf)) ||
      (iat != NULL && !cJSON_IsNumber(iat)))
    return refuse(v, JWT_BAD_CLAIMS, "exp, nbf and iat must be numbers");
  if (now > exp->valuedouble + p->leeway)
    return refuse(v, JWT_EXPIRED,
                  "the token expired %.0f s ago (leeway %.0f s)",
                  now - exp->valuedouble, p->leeway);
  if (nbf != NULL && now + p->leeway < nbf->valuedouble)
    return refuse(v, JWT_NOT_YET_VALID,
                  "the token is valid only in %.0f s (leeway %.0f s)",
                  nbf->valuedouble - now, p->leeway);
  if (iat != NULL && now + p->leeway < iat->valuedouble)
    return refuse(v, JWT_NOT_YET_VALID,
                  "the token was issued %.0f s in the future",
                  iat->valuedouble - now);
  if (aud != NULL && !cJSON_IsString(aud) && !cJSON_IsArray(aud))
    return refuse(v, JWT_BAD_CLAIMS, "aud must be a string or an array");
  if (audience == NULL || !audience_matches(aud, audience))
    return refuse(v, JWT_WRONG_AUDIENCE,
                  "the token's audience does not include %.120s",
                  audience ? audience : "(none given)");
  v->exp = exp->valuedouble;
  return 0;
}

int jwt_verify(const char *token, const jwt_policy *policies, size_t n,
               const char *audience, double now, jwt_verdict *v) {
  const char *dot1, *dot2, *alg_s, *kid, *iss;
  const cJSON *alg_j, *kid_j, *iss_j;
  cJSON *header = NULL, *claims = NULL;
  const jwt_policy *p = NULL;
  const jwt_key *k;
  unsigned char *sig = NULL;
  size_t len, sig_len, i;
  unsigned alg;
  int bad_b64, rc = -1;

  memset(v, 0, sizeof(*v));
  len = strnlen(token, JWT_MAX_TOKEN + 1);
  if (len > JWT_MAX_TOKEN)
    return refuse(v, JWT_TOO_LARGE, "the token is over %d bytes",
                  JWT_MAX_TOKEN);
  dot1 = memchr(token, '.', len);
  dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
  if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
    return refuse(v, JWT_MALFORMED, "a compact JWS has three parts");
  header = decode_object(token, (size_t)(dot1 - token), &bad_b64);
  if (header == NULL) {
    refuse(v, bad_b64 ? JWT_BAD_BASE64URL : JWT_BAD_HEADER,
           bad_b64 ? "the header is not base64url"
                   : "the header is not a JSON object without duplicates");
    goto cleanup;
  }
  alg_j = cJSON_GetObjectItemCaseSensitive(header, "alg");
  kid_j = cJSON_GetObjectItemCaseSensitive(header, "kid");
  alg_s = cJSON_GetStringValue(alg_j);
  if (alg_s == NULL || (kid_j != NULL && !cJSON_IsString(kid_j))) {
    refuse(v, JWT_BAD_HEADER, "alg and kid must be strings");
    goto cleanup;
  }
  /* An extension we would have to understand, which we do not. */
  if (cJSON_GetObjectItemCaseSensitive(header, "crit") != NULL) {
    refuse(v, JWT_BAD_HEADER, "crit header parameters are not supported");
    goto cleanup;
  }
  if (strcmp(alg_s, "none") == 0) {
    refuse(v, JWT_ALG_NONE, "unsigned tokens (alg none) are never accepted");
    goto cleanup;
  }
  claims = decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1), &bad_b64);
  if (claims == NULL) {
    refuse(v, bad_b64 ? JWT_BAD_BASE64URL : JWT_MALFORMED,
           bad_b64 ? "the payload is not base64url"
                   : "the payload is not a JSON object without duplicates");
    goto cleanup;
  }
  if (jwt_b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), &sig,
                        &sig_len) != 0) {
    refuse(v, JWT_BAD_BASE64URL, "the signature is not base64url");
    goto cleanup;
  }
  /* The issuer is chosen before verification, by the claim it makes; the
   * signature then proves the claim. */
  iss_j = cJSON_GetObjectItemCaseSensitive(claims, "iss");
  iss = cJSON_GetStringValue(iss_j);
  for (i = 0; iss != NULL && i < n && p == NULL; i++)
    if (strcmp(policies[i].issuer, iss) == 0)
      p = &policies[i];
  if (p == NULL) {
    refuse(v, JWT_UNKNOWN_ISSUER, "the issuer %.120s is not accepted here",
           iss ? iss : "(none)");
    goto cleanup;
  }
  v->policy = (size_t)(p - policies);
  alg = jwt_alg_bit(alg_s);
  if (alg == 0 || (p->algs & alg) == 0) {
    refuse(v, JWT_ALG_NOT_ALLOWED,
           "the algorithm %.20s is not allowed for %.120s", alg_s, p->issuer);
    goto cleanup;
  }
  kid = cJSON_GetStringValue(kid_j);
  if (kid == NULL && p->kid_required) {
    refuse(v, JWT_KID_MISSING, "the token has no kid");
    goto cleanup;
  }
  /* Without a kid (only where allowed) the issuer's single key serves. */
  k = kid ? find_key(p->keys, kid)
          : (jwt_keyset_count(p->keys) == 1 ? find_key(p->keys, NULL) : NULL);
  if (k == NULL) {
    refuse(v, JWT_UNKNOWN_KID, "no key %.60s for %.120s", kid ? kid : "(none)",
           p->issuer);
    goto cleanup;
  }
  /* The key decides what it may verify: an RSA public key never becomes an
   * HMAC secret, whatever the header says. */
  if ((k->algs & alg) == 0) {
    refuse(v, JWT_ALG_NOT_ALLOWED, "the key %.60s does not serve %.20s", k->kid,
           alg_s);
    goto cleanup;
  }
  if (!verify_signature(k, alg, token, (size_t)(dot2 - token), sig, sig_len)) {
    refuse(v, JWT_BAD_SIGNATURE, "the signature does not verify");
    goto cleanup;
  }
  if (check_claims(claims, p, audience, now, v) != 0)
    goto cleanup;
  v->claims = claims;
  claims = NULL;
  rc = 0;

cleanup:
  free(sig);
  cJSON_Delete(header);
  cJSON_Delete(claims);
  return rc;
}

char *jwt_unverified_issuer(const char *token) {
  size_t len = strnlen(token, JWT_MAX_TOKEN + 1);
  const char *dot1 = memchr(token, '.', len), *dot2, *iss;
  cJSON *claims;
  char *out = NULL;
  int bad_b64;

  if (len > JWT_MAX_TOKEN || dot1 == NULL)
    return NULL;
  dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
  if (dot2 == NULL)
    return NULL;
  claims = decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1), &bad_b64);
  iss = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(claims, "iss"));
  if (iss != NULL)
    out = strdup(iss);
  cJSON_Delete(claims);
  return out;
}

/* ---- claims -> principal ---- */

static void add_unique(cJSON *list, const char *s, size_t len) {
  const cJSON *item;
  char *copy;

  if (len == 0)
    return;
  cJSON_ArrayForEach(item, list) {
    if (strlen(item->valuestring) == len &&
        strncmp(item->valuestring, s, len) == 0)
      return;
  }
  copy = strndup(s, len);
  if (copy != NULL)
    cJSON_AddItemToArray(list, cJSON_CreateString(copy));
  free(copy);
}

/* Adds the words of a claim (a space-separated string, or an array of
 * strings) to list; -1 for any other type. */
static int add_words(cJSON *list, const cJSON *claim) {
  const cJSON *item;
  const char *s, *e;

  if (cJSON_IsString(claim)) {
    for (s = claim->valuestring; *s != '\0'; s = e) {
      while (*s == ' ')
        s++;
      for (e = s; *e != '\0' && *e != ' '; e++)
        ;
      add_unique(list, s, (size_t)(e - s));
    }
    return 0;
  }
  if (!cJSON_IsArray(claim))
    return -1;
  cJSON_ArrayForEach(item, claim) {
    if (!cJSON_IsString(item))
      return -1;
    add_unique(list, item->valuestring, strlen(item->valuestring));
  }
  return 0;
}

static void add_claim_string(cJSON *p, const char *as, const cJSON *claims,
                             const char *name) {
  const char *s =
      name
          ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(claims, name))
          : NULL;

  if (s != NULL)
    cJSON_AddStringToObject(p, as, s);
  else
    cJSON_AddNullToObject(p, as);
}

cJSON *jwt_principal(const cJSON *claims, const jwt_mapping *m,
                     const char *kind, char *err, size_t size) {
  static const char *const default_scopes[] = {"scope", "scp", "permissions",
                                               NULL};
  static const char *const default_roles[] = {"roles", "groups", NULL};
  const char *const *names;
  const char *sub_name = m->sub_claim ? m->sub_claim : "sub";
  const cJSON *sub = cJSON_GetObjectItemCaseSensitive(claims, sub_name), *c;
  const cJSON *mapped, *item, *exp;
  cJSON *p, *scopes, *roles;
  const cJSON *role;

  if (!cJSON_IsString(sub) || sub->valuestring[0] == '\0') {
    snprintf(err, size, "the subject claim %s is missing or not a string",
             sub_name);
    return NULL;
  }
  p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, "sub", sub->valuestring);
  add_claim_string(p, "name", claims, m->name_claim ? m->name_claim : "name");
  add_claim_string(p, "email", claims,
                   m->email_claim ? m->email_claim : "email");
  add_claim_string(p, "tenant", claims, m->tenant_claim);
  scopes = cJSON_AddArrayToObject(p, "scopes");
  roles = cJSON_AddArrayToObject(p, "roles");
  for (names = m->scope_claims ? m->scope_claims : default_scopes; *names;
       names++) {
    c = cJSON_GetObjectItemCaseSensitive(claims, *names);
    if (c != NULL && add_words(scopes, c) != 0) {
      snprintf(err, size, "the claim %s is neither a string nor strings",
               *names);
      goto fail;
    }
  }
  for (names = m->role_claims ? m->role_claims : default_roles; *names;
       names++) {
    c = cJSON_GetObjectItemCaseSensitive(claims, *names);
    if (c != NULL && add_words(roles, c) != 0) {
      snprintf(err, size, "the claim %s is neither a string nor strings",
               *names);
      goto fail;
    }
  }
  cJSON_ArrayForEach(role, roles) {
    mapped = cJSON_GetObjectItemCaseSensitive(m->scope_map, role->valuestring);
    cJSON_ArrayForEach(item, mapped) {
      if (cJSON_IsString(item))
        add_unique(scopes, item->valuestring, strlen(item->valuestring));
    }
  }
  cJSON_AddStringToObject(p, "kind", kind);
  add_claim_string(p, "iss", claims, "iss");
  exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
  if (cJSON_IsNumber(exp))
    cJSON_AddNumberToObject(p, "exp", exp->valuedouble);
  else
    cJSON_AddNullToObject(p, "exp");
  return p;

fail:
  cJSON_Delete(p);
  return NULL;
}
