/* request_state.c: see request_state.h. */
#include "request_state.h"

#include "alloc.h"

#include <cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATE_TTL_S 3600

static struct {
  unsigned char key[32];
  size_t len;
} S;

int ph__request_state_init(const char *key_text) {
  unsigned len = 0;

  if (key_text != NULL && key_text[0] != '\0') {
    /* Any length of key text becomes a 32-byte key. */
    if (EVP_Digest(key_text, strlen(key_text), S.key, &len, EVP_sha256(),
                   NULL) != 1)
      return -1;
    S.len = len;
    return 0;
  }
  if (RAND_bytes(S.key, sizeof(S.key)) != 1)
    return -1;
  S.len = sizeof(S.key);
  return 0;
}

static char *b64(const unsigned char *data, size_t len) {
  char *out = ph__xmalloc(4 * ((len + 2) / 3) + 1);

  EVP_EncodeBlock((unsigned char *)out, data, (int)len);
  return out;
}

static unsigned char *unb64(const char *text, size_t *len) {
  size_t n = strlen(text), pad = 0;
  unsigned char *out;
  char *again;
  int got;

  if (n == 0 || n % 4 != 0)
    return NULL;
  out = ph__xmalloc(n / 4 * 3 + 1);
  got = EVP_DecodeBlock(out, (const unsigned char *)text, (int)n);
  if (got < 0) {
    free(out);
    return NULL;
  }
  while (pad < 2 && n > pad && text[n - 1 - pad] == '=')
    pad++;
  *len = (size_t)got - pad;
  out[*len] = '\0';
  /* Only the canonical text of these bytes: the decoder ignores the bits
   * past the last byte, so two texts would carry one state. */
  again = b64(out, *len);
  if (strcmp(again, text) != 0) {
    free(out);
    out = NULL;
  }
  free(again);
  return out;
}

/* state := base64(payload) "." base64(HMAC-SHA256(key, payload)). */
char *ph__request_state_sign(const char *method, const char *target,
                             const char *state) {
  unsigned char mac[32];
  unsigned maclen = 0;
  cJSON *payload = ph__xcheck(cJSON_CreateObject());
  char *text, *p64, *m64, *out;

  ph__xjson_put_string(payload, "m", method);
  ph__xjson_put_string(payload, "t", target);
  ph__xjson_put_number(payload, "x", (double)(time(NULL) + STATE_TTL_S));
  if (state != NULL)
    ph__xjson_put_string(payload, "s", state);
  text = ph__xjson_print(payload);
  cJSON_Delete(payload);
  HMAC(EVP_sha256(), S.key, (int)S.len, (unsigned char *)text, strlen(text),
       mac, &maclen);
  p64 = b64((unsigned char *)text, strlen(text));
  m64 = b64(mac, maclen);
  out = ph__xasprintf("%s.%s", p64, m64);
  free(text);
  free(p64);
  free(m64);
  return out;
}

int ph__request_state_verify(const char *signed_state, const char *method,
                             const char *target, char **state) {
  unsigned char mac[32], *payload = NULL, *given = NULL;
  unsigned maclen = 0;
  size_t plen, glen;
  const char *dot = strchr(signed_state, '.');
  char *p64 = NULL;
  cJSON *j = NULL;
  int rc = -1;

  *state = NULL;
  if (dot == NULL)
    return -1;
  p64 = ph__xcheck(strndup(signed_state, (size_t)(dot - signed_state)));
  payload = unb64(p64, &plen);
  given = unb64(dot + 1, &glen);
  if (payload == NULL || given == NULL || glen != 32)
    goto done;
  HMAC(EVP_sha256(), S.key, (int)S.len, payload, plen, mac, &maclen);
  if (CRYPTO_memcmp(mac, given, 32) != 0)
    goto done;
  j = cJSON_ParseWithLength((const char *)payload, plen);
  if (!cJSON_IsObject(j))
    goto done;
  if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "m")) ?: "", method) !=
          0 ||
      strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "t")) ?: "", target) !=
          0 ||
      cJSON_GetNumberValue(cJSON_GetObjectItem(j, "x")) < (double)time(NULL))
    goto done;
  if (cJSON_IsString(cJSON_GetObjectItem(j, "s")))
    *state = ph__xstrdup(cJSON_GetObjectItem(j, "s")->valuestring);
  rc = 0;

done:
  cJSON_Delete(j);
  free(p64);
  free(payload);
  free(given);
  return rc;
}
