/* cursor.c: pagination cursors. A cursor is the row offset of the next page
 * plus an HMAC-SHA256 over that offset, the statement and its parameters,
 * keyed per instance. So a client can neither move a cursor to another
 * statement nor forge one, and a cursor from another instance (or from
 * before a restart, unless cursor_secret is configured) is refused. */
#include "db.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#define CURSOR_VERSION 1
#define CURSOR_MAC_BYTES 16 /* Truncated HMAC: 128 bits is plenty. */
#define CURSOR_BYTES (1 + 8 + CURSOR_MAC_BYTES)

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* HMAC over version, offset, statement and parameters; 0 or -1. */
static int cursor_mac(const db *d, const unsigned char head[9], const char *sql,
                      const cJSON *params,
                      unsigned char mac[CURSOR_MAC_BYTES]) {
  unsigned char full[EVP_MAX_MD_SIZE];
  unsigned int full_len = 0;
  char *params_text = NULL;
  unsigned char *msg = NULL;
  size_t sql_len, params_len, len;
  int rc = -1;

  params_text = params != NULL ? cJSON_PrintUnformatted(params) : NULL;
  if (params != NULL && params_text == NULL)
    goto cleanup;
  sql_len = strlen(sql);
  params_len = params_text != NULL ? strlen(params_text) : 0;
  /* The NUL between sql and params keeps the split unambiguous. */
  len = 9 + sql_len + 1 + params_len;
  msg = malloc(len);
  if (msg == NULL)
    goto cleanup;
  memcpy(msg, head, 9);
  memcpy(msg + 9, sql, sql_len);
  msg[9 + sql_len] = '\0';
  if (params_len > 0)
    memcpy(msg + 10 + sql_len, params_text, params_len);
  if (HMAC(EVP_sha256(), d->cursor_key, sizeof(d->cursor_key), msg, len, full,
           &full_len) == NULL ||
      full_len < CURSOR_MAC_BYTES)
    goto cleanup;
  memcpy(mac, full, CURSOR_MAC_BYTES);
  rc = 0;

cleanup:
  free(msg);
  cJSON_free(params_text);
  return rc;
}

static void put_head(unsigned char head[9], long offset) {
  uint64_t v = (uint64_t)offset;
  int i;

  head[0] = CURSOR_VERSION;
  for (i = 0; i < 8; i++)
    head[1 + i] = (unsigned char)(v >> (56 - 8 * i));
}

char *db_cursor_make(const db *d, const char *sql, const cJSON *params,
                     long offset) {
  unsigned char raw[CURSOR_BYTES];
  char *out;
  size_t i, o = 0;
  unsigned v;

  put_head(raw, offset);
  if (cursor_mac(d, raw, sql, params, raw + 9) != 0)
    return NULL;
  out = malloc((CURSOR_BYTES * 4 + 2) / 3 + 1);
  if (out == NULL)
    return NULL;
  /* 25 bytes: eight full groups of three, then one byte. */
  for (i = 0; i + 2 < CURSOR_BYTES; i += 3) {
    v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
    out[o++] = b64url[v >> 18];
    out[o++] = b64url[(v >> 12) & 63];
    out[o++] = b64url[(v >> 6) & 63];
    out[o++] = b64url[v & 63];
  }
  v = (unsigned)raw[i] << 16;
  out[o++] = b64url[v >> 18];
  out[o++] = b64url[(v >> 12) & 63];
  out[o] = '\0';
  return out;
}

static int b64url_value(char c) {
  const char *p = c != '\0' ? strchr(b64url, c) : NULL;

  return p != NULL ? (int)(p - b64url) : -1;
}

int db_cursor_open(const db *d, const char *cursor, const char *sql,
                   const cJSON *params, long *offset) {
  unsigned char raw[CURSOR_BYTES], mac[CURSOR_MAC_BYTES];
  size_t i, o = 0, len = strlen(cursor);
  int a, b, c, e;
  uint64_t v = 0;

  if (len != (CURSOR_BYTES * 4 + 2) / 3)
    return -1;
  for (i = 0; i + 4 <= len; i += 4) {
    a = b64url_value(cursor[i]);
    b = b64url_value(cursor[i + 1]);
    c = b64url_value(cursor[i + 2]);
    e = b64url_value(cursor[i + 3]);
    if (a < 0 || b < 0 || c < 0 || e < 0)
      return -1;
    raw[o++] = (unsigned char)(a << 2 | b >> 4);
    raw[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
    raw[o++] = (unsigned char)((c & 3) << 6 | e);
  }
  a = b64url_value(cursor[i]);
  b = b64url_value(cursor[i + 1]);
  if (a < 0 || b < 0 || (b & 15) != 0)
    return -1;
  raw[o] = (unsigned char)(a << 2 | b >> 4);
  if (raw[0] != CURSOR_VERSION)
    return -1;
  if (cursor_mac(d, raw, sql, params, mac) != 0 ||
      CRYPTO_memcmp(mac, raw + 9, CURSOR_MAC_BYTES) != 0)
    return -1;
  for (i = 0; i < 8; i++)
    v = v << 8 | raw[1 + i];
  if (v > (uint64_t)0x7fffffff)
    return -1;
  *offset = (long)v;
  return 0;
}
