/* test_http_auth.c: HTTP authorization on the real host with the real
 * auth.so (README: Authorization). Three departments share one user
 * store: sales requires a credential, lobby (optional) is where sales
 * tokens are signed in for, hr (optional) signs tokens for hr only. An
 * external issuer with an RSA key made here by openssl(1) gives tokens
 * the plugin never signed: valid, expired, forged. Each refusal is
 * checked for its status and its challenge, the scope rule for its 403
 * and its lists, the metadata documents for their resource, every path
 * variant for reaching sales with sales' check or nothing, the spy
 * fixture for never seeing a token, and the audit trail for its lines
 * and for holding no token. */
#include "harness.h"
#include "http_host.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ORIGIN "https://mcp.example.com"
#define SALES ORIGIN "/mcp/sales"
#define HR ORIGIN "/mcp/hr"
#define IDP "https://idp.test"
#define ROOT_PASSWORD "correct horse battery staple"

static th_http_host host;
static char base[PATH_MAX], *config_path;

static void run(const char *fmt, ...) {
  char *cmd;
  va_list ap;

  va_start(ap, fmt);
  cr_assert(vasprintf(&cmd, fmt, ap) > 0);
  va_end(ap);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  free(cmd);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;

  if (f == NULL)
    return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)n + 1);
  cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  if (len != NULL)
    *len = (size_t)n;
  return buf;
}

static char *b64url(const unsigned char *p, size_t n) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  char *out = malloc(n * 4 / 3 + 4), *o = out;
  size_t i;

  for (i = 0; i + 2 < n; i += 3) {
    *o++ = abc[p[i] >> 2];
    *o++ = abc[(p[i] & 3) << 4 | p[i + 1] >> 4];
    *o++ = abc[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
    *o++ = abc[p[i + 2] & 63];
  }
  if (n - i == 1) {
    *o++ = abc[p[i] >> 2];
    *o++ = abc[(p[i] & 3) << 4];
  } else if (n - i == 2) {
    *o++ = abc[p[i] >> 2];
    *o++ = abc[(p[i] & 3) << 4 | p[i + 1] >> 4];
    *o++ = abc[(p[i + 1] & 15) << 2];
  }
  *o = '\0';
  return out;
}

/* The JWKS of the RSA key openssl made, for the external issuer. */
static void make_idp_key(void) {
  char path[PATH_MAX + 32], *text, *hex;
  unsigned char n[512];
  size_t i, len = 0;
  FILE *f;

  run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
      "-out '%s/idp.pem' 2>/dev/null",
      base);
  run("openssl rsa -in '%s/idp.pem' -noout -modulus > '%s/idp.mod'", base,
      base);
  snprintf(path, sizeof(path), "%s/idp.mod", base);
  text = slurp(path, NULL);
  hex = strchr(text, '=') + 1;
  for (i = 0; hex[2 * i] != '\0' && hex[2 * i] != '\n'; i++)
    sscanf(hex + 2 * i, "%2hhx", &n[len++]);
  free(text);
  text = b64url(n, len);
  snprintf(path, sizeof(path), "%s/jwks.json", base);
  f = fopen(path, "w");
  fprintf(f,
          "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\",\"use\":\"sig\","
          "\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"AQAB\"}]}",
          text);
  fclose(f);
  free(text);
}

/* An RS256 token of the external issuer with these claims (JSON). */
static char *idp_token(const char *claims) {
  const char *header = "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}";
  char *h = b64url((const unsigned char *)header, strlen(header));
  char *c = b64url((const unsigned char *)claims, strlen(claims));
  char path[PATH_MAX + 32], *input, *sig, *s, *token;
  size_t n;
  FILE *f;

  cr_assert(asprintf(&input, "%s.%s", h, c) > 0);
  snprintf(path, sizeof(path), "%s/input", base);
  f = fopen(path, "w");
  fputs(input, f);
  fclose(f);
  run("openssl dgst -sha256 -sign '%s/idp.pem' -binary -out '%s/sig' "
      "'%s/input'",
      base, base, base);
  snprintf(path, sizeof(path), "%s/sig", base);
  sig = slurp(path, &n);
  s = b64url((unsigned char *)sig, n);
  cr_assert(asprintf(&token, "%s.%s", input, s) > 0);
  free(h);
  free(c);
  free(input);
  free(sig);
  free(s);
  return token;
}

static void start(void) {
  char dir[PATH_MAX + 16], *text, *db;

  snprintf(base, sizeof(base), "/tmp/ph-http-auth-XXXXXX");
  cr_assert_not_null(mkdtemp(base));
  snprintf(dir, sizeof(dir), "%s/plugins", base);
  cr_assert_eq(mkdir(dir, 0755), 0);
  run("cp '%s/plugins/auth.so' '%s/spy.so' '%s/conformance.so' '%s'",
      PH_BUILD_DIR, PH_TEST_PLUGIN_DIR, PH_TEST_PLUGIN_DIR, dir);
  make_idp_key();
  setenv("PH_TEST_ROOT_PASSWORD", ROOT_PASSWORD, 1);
  cr_assert(asprintf(&db, "\"db\":\"%s/data/auth.db\"", base) > 0);
  cr_assert(asprintf(&text,
                     "{\"plugin_dir\":\"%s/plugins\",\"log_level\":\"info\","
                     "\"audit_log\":\"%s/audit.jsonl\","
                     "\"departments\":{"
                     "\"sales\":{\"auth\":\"required\",\"public_url\":\"" SALES
                     "\","
                     "\"scopes_supported\":[\"read:sales\"],"
                     "\"issuers\":[\"urn:plughost:auth\",\"" IDP "\"],"
                     "\"tool_scopes\":{\"spy_secret\":\"read:sales\"},"
                     "\"plugins\":[{\"plugin\":\"auth\",\"config\":{%s,"
                     "\"token_audience\":\"" SALES "\","
                     "\"bootstrap_admin\":{\"username\":\"root\","
                     "\"password_env\":\"PH_TEST_ROOT_PASSWORD\"},"
                     "\"issuers\":[{\"issuer\":\"" IDP "\",\"jwks_file\":"
                     "\"%s/jwks.json\",\"algorithms\":[\"RS256\"]}]}},"
                     "{\"plugin\":\"spy\"}]},"
                     "\"lobby\":{\"auth\":\"optional\",\"public_url\":\"" ORIGIN
                     "/mcp/"
                     "lobby\",\"issuers\":[\"urn:plughost:auth\"],\"plugins\":["
                     "{\"plugin\":\"auth\",\"config\":{%s,"
                     "\"token_audience\":\"" SALES "\"}}]},"
                     "\"hr\":{\"auth\":\"optional\",\"public_url\":\"" HR "\","
                     "\"authorization_servers\":[\"" IDP "\"],"
                     "\"plugins\":[{\"plugin\":\"auth\",\"config\":{%s,"
                     "\"token_audience\":\"" HR "\"}},{\"plugin\":\"spy\"},"
                     "{\"plugin\":\"conformance\",\"prefix\":\"conf\"}]}}}",
                     base, base, db, base, db, db) > 0);
  config_path = th_write_temp(text, ".json");
  free(text);
  free(db);
  th_http_start(&host, config_path, 20000);
}

static void stop(void) {
  char *log = th_http_wait_log(&host, "", 0);

  if (log != NULL) {
    cr_expect(strstr(log, "Sanitizer") == NULL &&
                  strstr(log, "runtime error") == NULL,
              "sanitizer report:\n%s", log);
    free(log);
  }
  th_http_stop(&host);
  if (config_path != NULL) {
    unlink(config_path);
    free(config_path);
    config_path = NULL;
  }
  if (base[0] != '\0')
    run("rm -rf '%s'", base);
  base[0] = '\0';
}

TestSuite(http_auth, .init = start, .fini = stop, .timeout = 120);

/* ---- Requests ---- */

/* A request to path with extra header lines; the whole response. */
static char *req_at(const char *method, const char *path, const char *headers,
                    const char *body) {
  char *req, *out;
  int n;

  n = asprintf(&req,
               "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Content-Type: application/json\r\n"
               "Accept: application/json, text/event-stream\r\n"
               "%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
               method, path, host.port, headers ? headers : "",
               body ? strlen(body) : 0, body ? body : "");
  cr_assert(n > 0);
  out = th_http_raw(host.port, req, (size_t)n, 10000);
  free(req);
  return out;
}

#define META                                                                   \
  "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","     \
  "\"io.modelcontextprotocol/clientCapabilities\":{}}"

/* "Authorization: Bearer <token>\r\n", or "" for NULL. */
static char *bearer(const char *token) {
  char *h;

  cr_assert(asprintf(&h, "Authorization: Bearer %s\r\n", token ? token : "") >
            0);
  if (token == NULL)
    h[0] = '\0';
  return h;
}

/* A 2026-07-28 tools/call of tool with args at path. */
static char *call_at(const char *path, const char *auth, const char *tool,
                     const char *args) {
  char *headers, *body, *out;

  cr_assert(asprintf(&headers,
                     "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: "
                     "tools/call\r\nMcp-Name: %s\r\n%s",
                     tool, auth ? auth : "") > 0);
  cr_assert(asprintf(&body,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                     "\"params\":{" META ",\"name\":\"%s\",\"arguments\":%s}}",
                     tool, args ? args : "{}") > 0);
  out = req_at("POST", path, headers, body);
  free(headers);
  free(body);
  return out;
}

static char *list_at(const char *path, const char *auth) {
  char *headers, *out;

  cr_assert(asprintf(&headers,
                     "MCP-Protocol-Version: 2026-07-28\r\n"
                     "Mcp-Method: tools/list\r\n%s",
                     auth ? auth : "") > 0);
  out = req_at("POST", path, headers,
               "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\","
               "\"params\":{" META "}}");
  free(headers);
  return out;
}

static cJSON *body_json(const char *r) {
  const char *b = r ? strstr(r, "\r\n\r\n") : NULL;
  cJSON *j = b ? cJSON_Parse(b + 4) : NULL;

  cr_assert_not_null(j, "no JSON body in: %s", r ? r : "(nothing)");
  return j;
}

/* The value of a response header (caller frees), or NULL. */
static char *header_of(const char *r, const char *name) {
  const char *p = r, *end = strstr(r, "\r\n\r\n"), *e;
  size_t n = strlen(name);

  while ((p = strstr(p, "\r\n")) != NULL && p < end) {
    p += 2;
    if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
      p += n + 1;
      while (*p == ' ')
        p++;
      e = strstr(p, "\r\n");
      return strndup(p, (size_t)(e - p));
    }
  }
  return NULL;
}

/* The structuredContent of a tools/call answered 200, as text. */
static char *ok_result(char *r, const char *what) {
  cJSON *j;
  char *text;

  cr_assert_eq(th_http_status(r), 200, "%s: %s", what, r);
  j = body_json(r);
  cr_assert(!cJSON_IsTrue(th_get(j, "result.isError")), "%s: %s", what, r);
  text = cJSON_PrintUnformatted(th_get(j, "result.structuredContent"));
  cJSON_Delete(j);
  free(r);
  return text;
}

static char *login_at(const char *path, const char *user,
                      const char *password) {
  char *args, *sc, *token;
  cJSON *j;

  cr_assert(asprintf(&args, "{\"username\":\"%s\",\"password\":\"%s\"}", user,
                     password) > 0);
  sc = ok_result(call_at(path, NULL, "auth_login", args), "login");
  j = cJSON_Parse(sc);
  token = strdup(th_str(j, "access_token"));
  cJSON_Delete(j);
  free(sc);
  free(args);
  return token;
}

/* Status and WWW-Authenticate of r, which is freed. */
static int refused(char *r, char **challenge) {
  int status = th_http_status(r);

  *challenge = header_of(r, "WWW-Authenticate");
  free(r);
  return status;
}

#define PRM_SALES ORIGIN "/.well-known/oauth-protected-resource/mcp/sales"

static void expect_401(char *r, const char *error, const char *what) {
  char *ch, *copy = strdup(r);
  int status = refused(r, &ch);

  cr_expect_eq(status, 401, "%s: %s", what, copy);
  cr_assert_not_null(ch, "%s: no challenge in %s", what, copy);
  cr_expect_eq(strncmp(ch, "Bearer resource_metadata=\"" PRM_SALES "\"", 76), 0,
               "%s: %s", what, ch);
  cr_expect_not_null(strstr(ch, "scope=\"read:sales\""), "%s: %s", what, ch);
  if (error != NULL) {
    char want[64];

    snprintf(want, sizeof(want), "error=\"%s\"", error);
    cr_expect_not_null(strstr(ch, want), "%s: %s", what, ch);
    cr_expect_not_null(strstr(ch, "error_description=\""), "%s: %s", what, ch);
  } else {
    cr_expect_null(strstr(ch, "error="), "%s: %s", what, ch);
  }
  free(ch);
  free(copy);
}

/* Users: alice holds read:sales, bob nothing; root administers. */
static char *root_token(void) {
  return login_at("/mcp/lobby", "root", ROOT_PASSWORD);
}

static void add_user(const char *admin, const char *name, const char *scopes) {
  char *auth = bearer(admin), *args;

  cr_assert(asprintf(&args,
                     "{\"username\":\"%s\",\"password\":\"%s-password-1\","
                     "\"tenant\":\"acme\",\"scopes\":%s}",
                     name, name, scopes) > 0);
  free(ok_result(call_at("/mcp/sales", auth, "auth_user_add", args),
                 "user_add"));
  free(args);
  free(auth);
}

static char *audit_text(void) {
  char path[PATH_MAX + 32], *t;

  snprintf(path, sizeof(path), "%s/audit.jsonl", base);
  t = slurp(path, NULL);
  return t ? t : strdup("");
}

/* ---- Tests ---- */

Test(http_auth, refusals_carry_the_challenge) {
  char *root = root_token(), *alice, *hr_token, *tampered, *auth, *r, *key,
       *expired, *forged, *claims, *sc;
  cJSON *j;
  long now = (long)time(NULL);

  add_user(root, "alice", "[\"read:sales\"]");
  alice = login_at("/mcp/lobby", "alice", "alice-password-1");

  /* No credential, and a credential of another scheme. */
  expect_401(call_at("/mcp/sales", NULL, "spy_dump", NULL), NULL, "none");
  expect_401(call_at("/mcp/sales", "Authorization: Basic YWxpY2U6eA==\r\n",
                     "spy_dump", NULL),
             NULL, "basic");
  expect_401(list_at("/mcp/sales", NULL), NULL, "list");
  /* Nor does a token in the query string count. */
  r = malloc(strlen(alice) + 40);
  sprintf(r, "/mcp/sales?access_token=%s", alice);
  expect_401(call_at(r, NULL, "spy_dump", NULL), NULL, "query");
  free(r);

  /* Tampered: one character of the signature changed. */
  tampered = strdup(alice);
  tampered[strlen(tampered) - 3] =
      tampered[strlen(tampered) - 3] == 'A' ? 'B' : 'A';
  auth = bearer(tampered);
  expect_401(call_at("/mcp/sales", auth, "spy_dump", NULL), "invalid_token",
             "tampered");
  free(auth);
  auth = bearer("not-a-token");
  expect_401(call_at("/mcp/sales", auth, "spy_dump", NULL), "invalid_token",
             "garbage");
  free(auth);

  /* Another department's audience: hr's token at sales. */
  hr_token = login_at("/mcp/hr", "alice", "alice-password-1");
  auth = bearer(hr_token);
  expect_401(call_at("/mcp/sales", auth, "spy_dump", NULL), "invalid_token",
             "hr token");
  free(auth);

  /* The external issuer: valid, then expired, for the wrong audience,
   * and signed by another key (forged). */
  cr_assert(asprintf(&claims,
                     "{\"iss\":\"" IDP "\",\"sub\":\"svc-1\",\"aud\":\"" SALES
                     "\",\"exp\":%ld,\"scope\":\"read:sales\"}",
                     now + 600) > 0);
  forged = idp_token(claims);
  auth = bearer(forged);
  sc = ok_result(call_at("/mcp/sales", auth, "spy_dump", NULL), "external");
  j = cJSON_Parse(sc);
  cr_expect_str_eq(th_str(j, "principal.sub"), "svc-1");
  cr_expect_str_eq(th_str(j, "principal.kind"), "external");
  cJSON_Delete(j);
  free(sc);
  free(auth);
  free(forged);
  free(claims);
  cr_assert(asprintf(&claims,
                     "{\"iss\":\"" IDP "\",\"sub\":\"svc-1\",\"aud\":\"" SALES
                     "\",\"exp\":%ld}",
                     now - 3600) > 0);
  expired = idp_token(claims);
  auth = bearer(expired);
  expect_401(call_at("/mcp/sales", auth, "spy_dump", NULL), "invalid_token",
             "expired");
  free(auth);
  free(expired);
  free(claims);
  cr_assert(asprintf(&claims,
                     "{\"iss\":\"" IDP "\",\"sub\":\"svc-1\",\"aud\":\"" HR
                     "\",\"exp\":%ld}",
                     now + 600) > 0);
  r = idp_token(claims);
  auth = bearer(r);
  expect_401(call_at("/mcp/sales", auth, "spy_dump", NULL), "invalid_token",
             "external for hr");
  free(auth);
  free(r);
  free(claims);
  run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
      "-out '%s/idp.pem' 2>/dev/null",
      base);
  cr_assert(asprintf(&claims,
                     "{\"iss\":\"" IDP "\",\"sub\":\"svc-1\",\"aud\":\"" SALES
                     "\",\"exp\":%ld}",
                     now + 600) > 0);
  forged = idp_token(claims);
  auth = bearer(forged);
  expect_401(call_at("/mcp/sales", auth, "spy_dump", NULL), "invalid_token",
             "forged");
  free(auth);
  free(forged);
  free(claims);

  /* An API key works as Bearer and as X-API-Key, until it is revoked. */
  auth = bearer(root);
  sc = ok_result(call_at("/mcp/sales", auth, "auth_api_key_create",
                         "{\"username\":\"alice\",\"name\":\"ci\"}"),
                 "api_key_create");
  j = cJSON_Parse(sc);
  key = strdup(th_str(j, "api_key"));
  free(sc);
  r = malloc(strlen(key) + 20);
  sprintf(r, "X-API-Key: %s\r\n", key);
  free(ok_result(call_at("/mcp/sales", r, "spy_dump", NULL), "X-API-Key"));
  free(r);
  free(auth);
  auth = bearer(key);
  free(ok_result(call_at("/mcp/sales", auth, "spy_dump", NULL), "key"));
  {
    char *rootauth = bearer(root), *args;

    cr_assert(asprintf(&args, "{\"key_id\":\"%s\"}", th_str(j, "key_id")) > 0);
    free(ok_result(call_at("/mcp/sales", rootauth, "auth_api_key_revoke", args),
                   "revoke"));
    free(args);
    free(rootauth);
  }
  cJSON_Delete(j);
  expect_401(call_at("/mcp/sales", auth, "spy_dump", NULL), "invalid_token",
             "revoked key");
  free(auth);
  free(key);

  /* A disabled user's token. */
  auth = bearer(alice);
  free(ok_result(call_at("/mcp/sales", auth, "spy_dump", NULL), "alice"));
  free(auth);
  auth = bearer(root);
  free(ok_result(call_at("/mcp/sales", auth, "auth_user_disable",
                         "{\"username\":\"alice\"}"),
                 "disable"));
  free(auth);
  auth = bearer(alice);
  expect_401(call_at("/mcp/sales", auth, "spy_dump", NULL), "invalid_token",
             "disabled");
  free(auth);

  free(root);
  free(alice);
  free(hr_token);
  free(tampered);
}

Test(http_auth, missing_scope_is_403_and_lists_agree) {
  char *root = root_token(), *alice, *bob, *auth, *r, *ch, *copy;
  cJSON *j;
  int status;

  add_user(root, "alice", "[\"read:sales\"]");
  add_user(root, "bob", "[]");
  alice = login_at("/mcp/lobby", "alice", "alice-password-1");
  bob = login_at("/mcp/lobby", "bob", "bob-password-1");

  /* bob lacks read:sales (sales' override of spy_secret's read:spy). */
  auth = bearer(bob);
  r = call_at("/mcp/sales", auth, "spy_secret", NULL);
  copy = strdup(r);
  status = refused(r, &ch);
  cr_expect_eq(status, 403, "%s", copy);
  cr_assert_not_null(ch, "%s", copy);
  cr_expect_not_null(strstr(ch, "error=\"insufficient_scope\""), "%s", ch);
  cr_expect_not_null(strstr(ch, "scope=\"read:sales\""), "%s", ch);
  cr_expect_not_null(strstr(ch, "resource_metadata=\"" PRM_SALES "\""), "%s",
                     ch);
  cr_expect_null(strstr(copy, "Unknown tool"), "%s", copy);
  free(ch);
  free(copy);
  /* ... and is not shown it; the tools he may call he is shown. */
  r = list_at("/mcp/sales", auth);
  cr_expect_eq(th_http_status(r), 200, "%s", r);
  cr_expect_null(strstr(r, "spy_secret"), "%s", r);
  cr_expect_not_null(strstr(r, "spy_dump"), "%s", r);
  cr_expect_not_null(strstr(r, "\"cacheScope\":\"private\""), "%s", r);
  free(r);
  free(auth);

  /* alice holds it: she calls it and sees it. */
  auth = bearer(alice);
  r = call_at("/mcp/sales", auth, "spy_secret", NULL);
  cr_expect_eq(th_http_status(r), 200, "%s", r);
  j = body_json(r);
  cr_expect_str_eq(th_str(j, "result.content.0.text"), "the secret");
  cJSON_Delete(j);
  free(r);
  r = list_at("/mcp/sales", auth);
  cr_expect_not_null(strstr(r, "spy_secret"), "%s", r);
  free(r);
  free(auth);

  /* Optional: anonymous callers are shown and may call public tools only;
   * a scoped tool asks them to authenticate, naming its scope. */
  r = list_at("/mcp/hr", NULL);
  cr_expect_eq(th_http_status(r), 200, "%s", r);
  cr_expect_not_null(strstr(r, "\"auth_login\""), "%s", r);
  cr_expect_not_null(strstr(r, "\"spy_dump\""), "%s", r);
  cr_expect_null(strstr(r, "spy_secret"), "%s", r);
  cr_expect_null(strstr(r, "auth_user_add"), "%s", r);
  free(r);
  r = call_at("/mcp/hr", NULL, "spy_secret", NULL);
  copy = strdup(r);
  status = refused(r, &ch);
  cr_expect_eq(status, 401, "%s", copy);
  cr_expect_not_null(ch, "%s", copy);
  if (ch != NULL) {
    cr_expect_not_null(strstr(ch, "scope=\"read:spy\""), "%s", ch);
    cr_expect_null(strstr(ch, "error="), "%s", ch);
  }
  free(ch);
  free(copy);
  free(ok_result(call_at("/mcp/hr", NULL, "spy_dump", NULL), "anonymous"));

  free(root);
  free(alice);
  free(bob);
}

Test(http_auth, protected_resource_metadata) {
  char *r;
  cJSON *j;

  r = req_at("GET", "/.well-known/oauth-protected-resource/mcp/sales", NULL,
             NULL);
  cr_expect_eq(th_http_status(r), 200, "%s", r);
  j = body_json(r);
  cr_expect_str_eq(th_str(j, "resource"), SALES);
  cr_expect_str_eq(th_str(j, "authorization_servers.0"), "urn:plughost:auth",
                   "%s", r);
  cr_expect_str_eq(th_str(j, "scopes_supported.0"), "read:sales");
  cr_expect_str_eq(th_str(j, "bearer_methods_supported.0"), "header");
  cJSON_Delete(j);
  free(r);
  r = req_at("GET", "/.well-known/oauth-protected-resource/mcp/hr", NULL, NULL);
  j = body_json(r);
  cr_expect_str_eq(th_str(j, "resource"), HR);
  cr_expect_str_eq(th_str(j, "authorization_servers.0"), IDP);
  cJSON_Delete(j);
  free(r);
  /* No metadata for a department without auth, a prefix or a variant;
   * the root names no single resource here. */
  cr_expect_eq(th_http_raw_status(host.port,
                                  "GET /.well-known/oauth-protected-resource/"
                                  "mcp/default HTTP/1.1\r\nHost: "
                                  "127.0.0.1\r\nConnection: close\r\n\r\n"),
               404);
  cr_expect_eq(th_http_raw_status(host.port,
                                  "GET /.well-known/oauth-protected-resource/"
                                  "mcp/sales/ HTTP/1.1\r\nHost: "
                                  "127.0.0.1\r\nConnection: close\r\n\r\n"),
               404);
  cr_expect_eq(th_http_raw_status(host.port,
                                  "GET /.well-known/oauth-protected-resource/"
                                  "mcp/Sales HTTP/1.1\r\nHost: "
                                  "127.0.0.1\r\nConnection: close\r\n\r\n"),
               404);
  cr_expect_eq(th_http_raw_status(host.port,
                                  "GET /.well-known/oauth-protected-resource "
                                  "HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Connection: close\r\n\r\n"),
               404);
  cr_expect_eq(th_http_raw_status(host.port,
                                  "GET /.well-known/oauth-protected-resourcex"
                                  " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Connection: close\r\n\r\n"),
               404);
}

/* Every spelling of sales' path either is sales, with its check, or is
 * nothing at all: never another department, never unchecked. */
Test(http_auth, path_variants_reach_sales_checked_or_nothing) {
  static const char *const variants[] = {"/mcp/sales/",
                                         "//mcp/sales",
                                         "/mcp//sales",
                                         "/MCP/sales",
                                         "/mcp/SALES",
                                         "/Mcp/Sales",
                                         "/mcp/%73ales",
                                         "/%6dcp/sales",
                                         "/mcp%2fsales",
                                         "/mcp/sales%2f",
                                         "/mcp/sales%2F",
                                         "/mcp/sales%00",
                                         "/mcp/sales%20",
                                         "/mcp/./sales",
                                         "/mcp/../mcp/sales",
                                         "/mcp/sales/.",
                                         "/mcp/sales/..",
                                         "/mcp/sales;x",
                                         "/mcp/sales/x",
                                         "/mcp/sales/mcp",
                                         "/mcp/sale",
                                         "/mcp/salesx",
                                         "/mcp/sales.json",
                                         "/mcp/sales\\",
                                         "/./mcp/sales",
                                         "/mcp/sales%3Fx",
                                         "/mcp/%2e/sales",
                                         "/mcp/sales/%2e",
                                         "/mcp/\xc5\x9b"
                                         "ales",
                                         "/mcp/sales\t",
                                         "/api/mcp/sales",
                                         "/mcp/sales/../hr",
                                         "/mcp/hr/../sales",
                                         NULL};
  const char *const *v;
  char *r;
  int status;

  for (v = variants; *v != NULL; v++) {
    r = call_at(*v, NULL, "spy_dump", NULL);
    status = th_http_status(r);
    cr_expect(status == 404 || status == 400, "%s: %d\n%s", *v, status, r);
    free(r);
  }
  /* The query is no part of the path. */
  expect_401(call_at("/mcp/sales?x=1", NULL, "spy_dump", NULL), NULL, "query");
  expect_401(call_at("/mcp/sales", NULL, "spy_dump", NULL), NULL, "exact");
}

/* The spy plugin answers with everything it sees of a call: the token is
 * in none of it, nor in the audit trail. */
Test(http_auth, no_plugin_sees_the_token_and_the_audit_holds_none) {
  char *root = root_token(), *alice, *auth, *sc, *audit, *sig, *key, *hdr;
  cJSON *j;

  add_user(root, "alice", "[\"read:sales\"]");
  alice = login_at("/mcp/lobby", "alice", "alice-password-1");
  sig = strrchr(alice, '.') + 1;
  auth = bearer(alice);
  sc = ok_result(call_at("/mcp/sales", auth, "spy_dump",
                         "{\"note\":\"hello\",\"n\":12345678901234567890}"),
                 "dump");
  j = cJSON_Parse(sc);
  cr_expect_str_eq(th_str(j, "principal.sub"), "alice");
  cr_expect_str_eq(th_str(j, "principal.tenant"), "acme");
  cr_expect_str_eq(th_str(j, "args.note"), "hello");
  cr_expect_null(strstr(sc, sig), "the token's signature reached the plugin");
  cr_expect_null(strstr(sc, "Bearer"), "%s", sc);
  cr_expect_null(strstr(sc, "eyJ"), "a JWT part reached the plugin: %s", sc);
  cJSON_Delete(j);
  free(sc);
  free(auth);

  /* An API key in X-API-Key: the same. */
  auth = bearer(root);
  sc = ok_result(call_at("/mcp/sales", auth, "auth_api_key_create",
                         "{\"username\":\"alice\",\"name\":\"spy\"}"),
                 "api_key_create");
  j = cJSON_Parse(sc);
  key = strdup(th_str(j, "api_key"));
  cJSON_Delete(j);
  free(sc);
  free(auth);
  hdr = malloc(strlen(key) + 20);
  sprintf(hdr, "X-API-Key: %s\r\n", key);
  sc = ok_result(call_at("/mcp/sales", hdr, "spy_dump", NULL), "key dump");
  cr_expect_null(strstr(sc, strrchr(key, '_') + 1), "%s", sc);
  cr_expect_not_null(strstr(sc, "\"kind\":\"api_key\""), "%s", sc);
  free(sc);

  /* The trail: a line per call and per refusal, with the arguments'
   * hash, and neither token nor key nor argument value in it. */
  auth = bearer("forged.token.here");
  free(call_at("/mcp/sales", auth, "spy_dump", NULL));
  free(auth);
  audit = audit_text();
  cr_expect_not_null(strstr(audit, "\"event\":\"tools/call\""), "%s", audit);
  cr_expect_not_null(strstr(audit, "\"tool\":\"spy_dump\""), "%s", audit);
  cr_expect_not_null(strstr(audit, "\"sub\":\"alice\""), "%s", audit);
  cr_expect_not_null(strstr(audit, "\"tenant\":\"acme\""), "%s", audit);
  cr_expect_not_null(strstr(audit, "\"args_sha256\":\""), "%s", audit);
  cr_expect_not_null(strstr(audit, "\"department\":\"sales\""), "%s", audit);
  cr_expect_not_null(strstr(audit, "\"client\":\"127.0.0.1\""), "%s", audit);
  cr_expect_not_null(strstr(audit, "\"event\":\"authentication\""), "%s",
                     audit);
  cr_expect_not_null(strstr(audit, "\"outcome\":\"invalid_token\""), "%s",
                     audit);
  cr_expect_not_null(strstr(audit, "\"duration_ms\":"), "%s", audit);
  cr_expect_null(strstr(audit, sig), "a token in the audit trail");
  cr_expect_null(strstr(audit, strrchr(key, '_') + 1), "a key in the trail");
  cr_expect_null(strstr(audit, "forged.token.here"), "%s", audit);
  cr_expect_null(strstr(audit, "hello"), "an argument value: %s", audit);
  cr_expect_null(strstr(audit, ROOT_PASSWORD), "a password in the trail");
  cr_expect_null(strstr(audit, "alice-password-1"), "a password: %s", audit);
  free(audit);
  free(hdr);
  free(key);
  free(root);
  free(alice);
}

/* A legacy session is its first caller's: another credential with its id
 * finds no session. */
Test(http_auth, a_session_stays_with_its_caller) {
  char *root = root_token(), *alice, *bob, *a, *b, *r, *sid, hdr[512];

  add_user(root, "alice", "[\"read:sales\"]");
  add_user(root, "bob", "[]");
  alice = login_at("/mcp/lobby", "alice", "alice-password-1");
  bob = login_at("/mcp/lobby", "bob", "bob-password-1");
  a = bearer(alice);
  b = bearer(bob);
  r = req_at("POST", "/mcp/sales", a,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
             "\"params\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\""
             ":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}");
  cr_assert_eq(th_http_status(r), 200, "%s", r);
  sid = th_http_session_id(r);
  cr_assert_not_null(sid, "%s", r);
  free(r);
  snprintf(hdr, sizeof(hdr), "Mcp-Session-Id: %s\r\n%s", sid, b);
  r = req_at("POST", "/mcp/sales", hdr,
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
  cr_expect_eq(th_http_status(r), 404, "bob used alice's session: %s", r);
  free(r);
  snprintf(hdr, sizeof(hdr), "Mcp-Session-Id: %s\r\n", sid);
  r = req_at("POST", "/mcp/sales", hdr,
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
  cr_expect_eq(th_http_status(r), 401, "no credential: %s", r);
  free(r);
  snprintf(hdr, sizeof(hdr), "Mcp-Session-Id: %s\r\n%s", sid, a);
  r = req_at("POST", "/mcp/sales", hdr,
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
  cr_expect_eq(th_http_status(r), 200, "%s", r);
  cr_expect_not_null(strstr(r, "spy_secret"), "%s", r);
  free(r);
  free(sid);
  free(a);
  free(b);
  free(root);
  free(alice);
  free(bob);
}

/* A 2026-07-28 request to hr with the tasks extension, as the caller of
 * token; the JSON-RPC message of the answer, its status in *status. */
static cJSON *hr_tasks_request(const char *token, const char *method,
                               const char *name, const char *params,
                               int *status) {
  char *auth = bearer(token), *headers, *body, *r;
  cJSON *j;

  cr_assert(asprintf(&headers,
                     "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: %s\r\n"
                     "Mcp-Name: %s\r\n%s",
                     method, name, auth) > 0);
  cr_assert(
      asprintf(&body,
               "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\","
               "\"params\":{%s,\"_meta\":{"
               "\"io.modelcontextprotocol/protocolVersion\":"
               "\"2026-07-28\","
               "\"io.modelcontextprotocol/clientCapabilities\":{"
               "\"extensions\":{\"io.modelcontextprotocol/tasks\":{}}}}}}",
               method, params) > 0);
  r = req_at("POST", "/mcp/hr", headers, body);
  *status = th_http_status(r);
  j = body_json(r);
  free(r);
  free(body);
  free(headers);
  free(auth);
  return j;
}

/* A task belongs to its caller, not to the token it was made with: after
 * a refresh (a new token, another exp) the caller still finds it, and
 * another caller does not. */
Test(http_auth, a_task_stays_with_its_caller_across_a_refresh) {
  char *root = root_token(), *first, *refreshed, *bob, *params, *id;
  cJSON *j;
  int status;

  add_user(root, "alice", "[\"read:sales\"]");
  add_user(root, "bob", "[\"read:sales\"]");
  first = login_at("/mcp/hr", "alice", "alice-password-1");
  bob = login_at("/mcp/hr", "bob", "bob-password-1");
  j = hr_tasks_request(first, "tools/call", "conf_slow_compute",
                       "\"name\":\"conf_slow_compute\",\"arguments\":{"
                       "\"seconds\":0.5,\"label\":\"x\"}",
                       &status);
  cr_assert_eq(status, 200);
  cr_assert_str_eq(th_str(j, "result.resultType"), "task", "%s",
                   cJSON_PrintUnformatted(j));
  id = strdup(th_str(j, "result.taskId"));
  cJSON_Delete(j);
  sleep(1); /* Tokens have whole-second exp: the next one differs. */
  refreshed = login_at("/mcp/hr", "alice", "alice-password-1");
  cr_assert_str_neq(first, refreshed);
  cr_assert(asprintf(&params, "\"taskId\":\"%s\"", id) > 0);
  j = hr_tasks_request(refreshed, "tasks/get", id, params, &status);
  cr_expect_eq(status, 200);
  cr_expect_not_null(th_str(j, "result.status"), "%s",
                     cJSON_PrintUnformatted(j));
  cJSON_Delete(j);
  j = hr_tasks_request(bob, "tasks/get", id, params, &status);
  cr_expect_null(th_get(j, "result"), "bob sees alice's task: %s",
                 cJSON_PrintUnformatted(j));
  cr_expect_str_eq(th_str(j, "error.message"),
                   "Invalid params: unknown or expired taskId");
  cJSON_Delete(j);
  free(params);
  free(id);
  free(root);
  free(first);
  free(refreshed);
  free(bob);
}

/* stdio: PLUGHOST_TOKEN is checked the same way; without one (and
 * without stdio_scopes) a department that requires auth does not start,
 * and a refused one stops the host. */
Test(http_auth, stdio_takes_its_token_from_the_environment) {
  char *root = root_token(), *alice;
  th_host *h;
  cJSON *res;
  int status;

  add_user(root, "alice", "[\"read:sales\"]");
  alice = login_at("/mcp/lobby", "alice", "alice-password-1");
  setenv("PLUGHOST_TOKEN", alice, 1);
  h = th_start(config_path, "--department", "sales", NULL);
  cJSON_Delete(th_initialize(h, "2025-06-18", NULL));
  res = th_request(h, "tools/call", "{\"name\":\"spy_dump\",\"arguments\":{}}",
                   20000);
  cr_assert_not_null(res, "%s", th_stderr(h));
  cr_expect_str_eq(th_str(res, "result.structuredContent.principal.sub"),
                   "alice", "%s", th_stderr(h));
  cJSON_Delete(res);
  /* stdio has no step-up: a missing scope stays a tool error. */
  res = th_request(h, "tools/call", "{\"name\":\"auth_user_list\"}", 20000);
  cr_expect(cJSON_IsTrue(th_get(res, "result.isError")), "%s",
            cJSON_PrintUnformatted(res));
  cJSON_Delete(res);
  th_stop(h, 20000);

  /* Refused or missing, the host says why and fails: a service manager
   * or a client that spawned it sees the failure in the exit status. */
  setenv("PLUGHOST_TOKEN", "not-a-token", 1);
  h = th_start(config_path, "--department", "sales", NULL);
  cr_expect(th_wait_stderr(h,
                           "PLUGHOST_TOKEN refused for department sales: "
                           "malformed",
                           20000),
            "%s", th_stderr(h));
  status = th_stop(h, 20000);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) != 0,
            "a refused PLUGHOST_TOKEN exits with status %d", status);
  unsetenv("PLUGHOST_TOKEN");
  h = th_start(config_path, "--department", "sales", NULL);
  cr_expect(th_wait_stderr(h, "requires authentication", 20000), "%s",
            th_stderr(h));
  status = th_stop(h, 20000);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) != 0,
            "no PLUGHOST_TOKEN exits with status %d", status);
  free(root);
  free(alice);
}
