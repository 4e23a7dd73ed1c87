/* sdk.c: helpers that format the common replies as JSON text. They use only
 * the host API table, so a plugin needs no JSON library for simple work. */
#include "plughost.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A growable string in api->alloc memory. */
typedef struct {
  const ph_host_api *api;
  char *buf;
  size_t len, cap;
  int failed;
} strbuf;

static void sb_reserve(strbuf *sb, size_t extra) {
  char *grown;
  size_t cap;

  if (sb->failed || sb->len + extra + 1 <= sb->cap)
    return;
  cap = sb->cap ? sb->cap : 64;
  while (cap < sb->len + extra + 1)
    cap *= 2;
  grown = sb->api->alloc(cap);
  if (grown == NULL) {
    sb->failed = 1;
    return;
  }
  if (sb->buf != NULL) {
    memcpy(grown, sb->buf, sb->len);
    sb->api->free(sb->buf);
  }
  sb->buf = grown;
  sb->cap = cap;
}

static void sb_add(strbuf *sb, const char *s, size_t n) {
  sb_reserve(sb, n);
  if (sb->failed)
    return;
  memcpy(sb->buf + sb->len, s, n);
  sb->len += n;
  sb->buf[sb->len] = '\0';
}

static void sb_str(strbuf *sb, const char *s) {
  sb_add(sb, s, strlen(s));
}

static void sb_quote(strbuf *sb, const char *s) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s, *run;
  char esc[6];

  /* Reserve for the common case (nothing to escape) and copy runs of plain
   * bytes at once: replies are mostly plain text. */
  sb_reserve(sb, strlen(s) + 2);
  sb_add(sb, "\"", 1);
  while (*p != '\0') {
    for (run = p; *p >= 0x20 && *p != '"' && *p != '\\'; p++)
      ;
    if (p > run)
      sb_add(sb, (const char *)run, (size_t)(p - run));
    if (*p == '\0')
      break;
    switch (*p) {
    case '"':
      sb_add(sb, "\\\"", 2);
      break;
    case '\\':
      sb_add(sb, "\\\\", 2);
      break;
    case '\n':
      sb_add(sb, "\\n", 2);
      break;
    case '\r':
      sb_add(sb, "\\r", 2);
      break;
    case '\t':
      sb_add(sb, "\\t", 2);
      break;
    default:
      memcpy(esc, "\\u00", 4);
      esc[4] = hex[*p >> 4];
      esc[5] = hex[*p & 15];
      sb_add(sb, esc, 6);
    }
    p++;
  }
  sb_add(sb, "\"", 1);
}

static char *sb_take(strbuf *sb) {
  if (sb->failed) {
    sb->api->free(sb->buf);
    return NULL;
  }
  if (sb->buf == NULL)
    sb_add(sb, "", 0);
  return sb->buf;
}

static int sb_reply(strbuf *sb, ph_call *call) {
  char *json;
  int err;

  json = sb_take(sb);
  if (json == NULL)
    return PH_ENOMEM;
  err = sb->api->reply(call, json);
  sb->api->free(json);
  return err;
}

char *ph_json_quote(const ph_host_api *api, const char *s) {
  strbuf sb = {api, NULL, 0, 0, 0};

  sb_quote(&sb, s);
  return sb_take(&sb);
}

char *ph_base64(const ph_host_api *api, const void *data, size_t len) {
  static const char tbl[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *in = data;
  char *out, *o;
  size_t i;
  unsigned v;

  out = api->alloc(4 * ((len + 2) / 3) + 1);
  if (out == NULL)
    return NULL;
  o = out;
  for (i = 0; i + 2 < len; i += 3) {
    v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
    *o++ = tbl[v >> 18];
    *o++ = tbl[(v >> 12) & 63];
    *o++ = tbl[(v >> 6) & 63];
    *o++ = tbl[v & 63];
  }
  if (i < len) {
    v = (unsigned)in[i] << 16;
    if (i + 1 < len)
      v |= (unsigned)in[i + 1] << 8;
    *o++ = tbl[v >> 18];
    *o++ = tbl[(v >> 12) & 63];
    *o++ = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  *o = '\0';
  return out;
}

int ph_reply_text(const ph_host_api *api, ph_call *call, const char *text,
                  int is_error) {
  strbuf sb = {api, NULL, 0, 0, 0};

  sb_str(&sb, "{\"content\":[{\"type\":\"text\",\"text\":");
  sb_quote(&sb, text);
  sb_str(&sb, is_error ? "}],\"isError\":true}" : "}]}");
  return sb_reply(&sb, call);
}

int ph_reply_textf(const ph_host_api *api, ph_call *call, int is_error,
                   const char *fmt, ...) {
  char small[512], *text;
  va_list ap;
  int n, err;

  va_start(ap, fmt);
  n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (n < 0)
    return PH_EINVAL;
  if ((size_t)n < sizeof(small))
    return ph_reply_text(api, call, small, is_error);
  text = api->alloc((size_t)n + 1);
  if (text == NULL)
    return PH_ENOMEM;
  va_start(ap, fmt);
  vsnprintf(text, (size_t)n + 1, fmt, ap);
  va_end(ap);
  err = ph_reply_text(api, call, text, is_error);
  api->free(text);
  return err;
}

int ph_reply_structured(const ph_host_api *api, ph_call *call,
                        const char *structured_json, int is_error) {
  strbuf sb = {api, NULL, 0, 0, 0};

  sb_str(&sb, "{\"content\":[{\"type\":\"text\",\"text\":");
  sb_quote(&sb, structured_json);
  sb_str(&sb, "}],\"structuredContent\":");
  sb_str(&sb, structured_json);
  if (is_error)
    sb_str(&sb, ",\"isError\":true");
  sb_str(&sb, "}");
  return sb_reply(&sb, call);
}

static int reply_resource(const ph_host_api *api, ph_call *call,
                          const char *uri, const char *mime_type,
                          const char *field, const char *value) {
  strbuf sb = {api, NULL, 0, 0, 0};

  sb_str(&sb, "{\"contents\":[{\"uri\":");
  sb_quote(&sb, uri);
  if (mime_type != NULL) {
    sb_str(&sb, ",\"mimeType\":");
    sb_quote(&sb, mime_type);
  }
  sb_str(&sb, ",\"");
  sb_str(&sb, field);
  sb_str(&sb, "\":");
  sb_quote(&sb, value);
  sb_str(&sb, "}]}");
  return sb_reply(&sb, call);
}

int ph_reply_resource_text(const ph_host_api *api, ph_call *call,
                           const char *uri, const char *mime_type,
                           const char *text) {
  return reply_resource(api, call, uri, mime_type, "text", text);
}

int ph_reply_resource_blob(const ph_host_api *api, ph_call *call,
                           const char *uri, const char *mime_type,
                           const void *data, size_t len) {
  char *b64;
  int err;

  b64 = ph_base64(api, data, len);
  if (b64 == NULL)
    return PH_ENOMEM;
  err = reply_resource(api, call, uri, mime_type, "blob", b64);
  api->free(b64);
  return err;
}
