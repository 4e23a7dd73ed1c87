/* protocol_http.c: see protocol_http.h. */
#include "protocol_http.h"

#include "alloc.h"
#include "loader.h"
#include "protocol.h"
#include "registry.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "=?base64?...?=" is Base64 of UTF-8; anything else is literal. Returns a
 * malloc'd value, or NULL for bad Base64 and for a decoded NUL, which
 * would end the C string early: "server/discover\0tools/call" is not
 * "server/discover". */
static char *header_decode(const char *value) {
  size_t n = strlen(value), i, pad = 0, len;
  unsigned char *out;

  if (n < 11 || strncmp(value, "=?base64?", 9) != 0 ||
      strcmp(value + n - 2, "?=") != 0)
    return ph__xstrdup(value);
  value += 9;
  len = n - 11;
  if (len % 4 != 0)
    return NULL;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)value[i];
    if (c == '=') {
      if (i < len - 2)
        return NULL;
      pad++;
    } else if (pad > 0 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '+' || c == '/')) {
      return NULL;
    }
  }
  out = ph__xmalloc(len / 4 * 3 + 1);
  if (EVP_DecodeBlock(out, (const unsigned char *)value, (int)len) < 0 ||
      memchr(out, '\0', len / 4 * 3 - pad) != NULL) {
    free(out);
    return NULL;
  }
  out[len / 4 * 3 - pad] = '\0';
  return (char *)out;
}

/* Header `name` must be present once and equal `want` once decoded. */
static int header_matches(ph__header_lookup get, const void *ctx,
                          const char *name, const char *want) {
  const char *v;
  char *decoded;
  int ok;

  if (get(ctx, name, &v) != 1 || want == NULL)
    return 0;
  decoded = header_decode(v);
  ok = decoded != NULL && strcmp(decoded, want) == 0;
  free(decoded);
  return ok;
}

/* A number as JSON writes it: strtod() alone also takes " 1", "+1",
 * "0x10", "inf" and "nan". */
static int json_number(const char *s) {
  if (*s == '-')
    s++;
  if (*s == '0')
    s++;
  else if (*s >= '1' && *s <= '9')
    while (*s >= '0' && *s <= '9')
      s++;
  else
    return 0;
  if (*s == '.') {
    if (*++s < '0' || *s > '9')
      return 0;
    while (*s >= '0' && *s <= '9')
      s++;
  }
  if (*s == 'e' || *s == 'E') {
    if (*++s == '+' || *s == '-')
      s++;
    if (*s < '0' || *s > '9')
      return 0;
    while (*s >= '0' && *s <= '9')
      s++;
  }
  return *s == '\0';
}

/* Tool arguments marked x-mcp-header must be mirrored in Mcp-Param-<Name>
 * headers. Returns NULL or a static reason. */
static const char *check_param_headers(ph__header_lookup get, const void *ctx,
                                       const char *department,
                                       const cJSON *params) {
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(params, "name");
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
  const cJSON *props, *p, *mark, *arg;
  const ph__item *it = NULL;
  const ph__tool_def *t;
  ph__generation *gen;
  const char *why = NULL, *v;
  char hname[128], num[64], *decoded;
  int n;

  if (!cJSON_IsString(name) || (gen = ph__registry_acquire()) == NULL)
    return NULL;
  if (ph__generation_dept(gen, department) != NULL)
    it = ph__dept_lookup(ph__generation_dept(gen, department), PH__TOOL,
                         name->valuestring);
  t = it ? it->def : NULL;
  props = t ? cJSON_GetObjectItemCaseSensitive(t->input_schema, "properties")
            : NULL;
  cJSON_ArrayForEach(p, props) {
    mark = cJSON_GetObjectItemCaseSensitive(p, "x-mcp-header");
    if (!cJSON_IsString(mark) || p->string == NULL)
      continue;
    arg = cJSON_GetObjectItemCaseSensitive(args, p->string);
    snprintf(hname, sizeof(hname), "Mcp-Param-%s", mark->valuestring);
    n = get(ctx, hname, &v);
    if (arg == NULL || cJSON_IsNull(arg))
      continue; /* No value, no header needed. */
    if (n != 1) {
      why = n == 0 ? "a Mcp-Param header mirroring an argument is missing"
                   : "a Mcp-Param header is repeated";
      break;
    }
    decoded = header_decode(v);
    if (decoded == NULL) {
      why = "a Mcp-Param header is not valid Base64, or decodes to a NUL";
      break;
    }
    if (cJSON_IsString(arg)) {
      if (strcmp(decoded, arg->valuestring) != 0)
        why = "a Mcp-Param header does not match its argument";
    } else if (cJSON_IsNumber(arg)) {
      char *end;
      double d = strtod(decoded, &end);
      if (!json_number(decoded) || *end != '\0' || d != arg->valuedouble)
        why = "a Mcp-Param header does not match its argument";
    } else if (cJSON_IsBool(arg)) {
      snprintf(num, sizeof(num), "%s", cJSON_IsTrue(arg) ? "true" : "false");
      if (strcmp(decoded, num) != 0)
        why = "a Mcp-Param header does not match its argument";
    }
    free(decoded);
    if (why != NULL)
      break;
  }
  ph__generation_unref(gen);
  return why;
}

/* The 2026-07-28 header rules: NULL or what disagrees. */
static const char *mismatch(const ph__post *p, const char *department,
                            ph__header_lookup get, const void *ctx) {
  const cJSON *params = cJSON_GetObjectItemCaseSensitive(p->body, "params");
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(params, "_meta");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(
      meta, "io.modelcontextprotocol/protocolVersion");
  const char *hv;
  int n = get(ctx, "MCP-Protocol-Version", &hv);

  if (n == 0)
    return "Header mismatch: MCP-Protocol-Version is required";
  if (n > 1)
    return "Header mismatch: MCP-Protocol-Version is repeated";
  if (cJSON_IsString(v) && strcmp(hv, v->valuestring) != 0)
    return "Header mismatch: MCP-Protocol-Version differs from "
           "_meta.io.modelcontextprotocol/protocolVersion";
  if (p->method == NULL)
    return NULL; /* Not a request; the protocol says what is wrong. */
  if (!header_matches(get, ctx, "Mcp-Method", p->method))
    return "Header mismatch: Mcp-Method is missing or differs from the "
           "method";
  if (p->name != NULL && !header_matches(get, ctx, "Mcp-Name", p->name))
    return "Header mismatch: Mcp-Name is missing or differs from the "
           "request's name, uri or taskId";
  if (strcmp(p->method, "tools/call") == 0)
    return check_param_headers(get, ctx, department, params);
  return NULL;
}

int ph__post_check_headers(const ph__post *p, const char *department,
                           ph__header_lookup get, const void *ctx,
                           const char **why) {
  *why = mismatch(p, department, get, ctx);
  return *why != NULL ? PH__HEADERS_MISMATCH : PH__HEADERS_AGREE;
}

/* The params member a method names its target by, or NULL. */
static const char *target_member(const char *method) {
  if (strcmp(method, "tools/call") == 0 || strcmp(method, "prompts/get") == 0)
    return "name";
  if (strcmp(method, "resources/read") == 0)
    return "uri";
  if (strcmp(method, "tasks/get") == 0 || strcmp(method, "tasks/update") == 0 ||
      strcmp(method, "tasks/cancel") == 0) /* SEP-2663 routing headers. */
    return "taskId";
  return NULL;
}

int ph__post_read(ph__post *p, const char *text, size_t len,
                  const ph__limits *limits, const char *version_header,
                  const char **why) {
  const cJSON *params, *meta, *method;
  const char *member;
  int modern;

  memset(p, 0, sizeof(*p));
  *why = ph__json_precheck(text, len, limits->max_json_depth);
  if (*why != NULL)
    return p->kind = PH__POST_UNPARSABLE;
  *why = ph__json_check_values(text, len, limits->max_json_values);
  if (*why != NULL)
    return p->kind = PH__POST_TOO_MANY_VALUES;
  p->body = ph__json_parse_prechecked(text, len, why);
  if (p->body == NULL)
    return p->kind = PH__POST_UNPARSABLE;
  params = cJSON_GetObjectItemCaseSensitive(p->body, "params");
  meta = cJSON_GetObjectItemCaseSensitive(params, "_meta");
  method = cJSON_GetObjectItemCaseSensitive(p->body, "method");
  if (cJSON_IsString(method)) {
    p->method = method->valuestring;
    member = target_member(p->method);
    if (member != NULL)
      p->name = cJSON_GetStringValue(
          cJSON_GetObjectItemCaseSensitive(params, member));
  }
  modern = cJSON_GetObjectItemCaseSensitive(
               meta, "io.modelcontextprotocol/protocolVersion") != NULL ||
           (version_header != NULL &&
            !ph__protocol_version_supported(version_header));
  if (modern && cJSON_IsObject(p->body))
    p->kind = PH__POST_MODERN;
  else if (cJSON_IsObject(p->body) && p->method != NULL &&
           strcmp(p->method, "initialize") == 0)
    p->kind = PH__POST_INITIALIZE;
  else
    p->kind = PH__POST_NEEDS_SESSION;
  return p->kind;
}

void ph__post_release(ph__post *p) {
  cJSON_Delete(p->body);
  p->body = NULL;
}
