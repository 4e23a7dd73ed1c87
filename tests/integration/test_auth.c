/* test_auth.c: the auth plugin on the real host over stdio, with the
 * fixture tests/plugins/authclient.c standing where the HTTP transport will
 * stand: it hands tokens to the "authn" service. The stdio client holds
 * auth:admin (stdio_scopes) and administers; the first admin comes from
 * bootstrap_admin. Covers login, the token through authn, whoami,
 * introspection, API keys created, used and revoked, a disabled user, the
 * login backoff with one message for every failure, and a restart that
 * keeps the signing key. */
#include "harness.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 20000
#define AUD "https://mcp.example.com/mcp/default"
#define ADMIN_PASSWORD "correct horse battery staple"

static char base[PATH_MAX], *config;
static th_host *H;

static void stop(void) {
  if (H != NULL) {
    cr_expect(strstr(th_stderr(H), "Sanitizer") == NULL &&
                  strstr(th_stderr(H), "runtime error") == NULL,
              "sanitizer report:\n%s", th_stderr(H));
    th_stop(H, WAIT_MS);
  }
  H = NULL;
}

static void teardown(void) {
  char cmd[PATH_MAX + 16];

  stop();
  if (config != NULL) {
    unlink(config);
    free(config);
  }
  config = NULL;
  if (base[0] != '\0') {
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    cr_expect_eq(system(cmd), 0);
  }
}

TestSuite(auth, .fini = teardown, .timeout = 120);

/* A scratch directory with auth.so and authclient.so, and a host serving
 * both; extra: more members of auth's config (after a comma), or NULL. */
static void start_host(const char *extra) {
  char dir[PATH_MAX + 16], cmd[3 * PATH_MAX], *text;

  if (base[0] == '\0') {
    snprintf(base, sizeof(base), "/tmp/ph-auth-XXXXXX");
    cr_assert_not_null(mkdtemp(base));
    snprintf(dir, sizeof(dir), "%s/plugins", base);
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(cmd, sizeof(cmd),
             "cp '%s/plugins/auth.so' '%s/authclient.so' '%s'", PH_BUILD_DIR,
             PH_TEST_PLUGIN_DIR, dir);
    cr_assert_eq(system(cmd), 0);
  }
  setenv("PH_TEST_AUTH_ADMIN", ADMIN_PASSWORD, 1);
  cr_assert(asprintf(&text,
                     "{\"plugin_dir\":\"%s/plugins\",\"log_level\":\"info\","
                     "\"stdio_scopes\":[\"auth:admin\"],"
                     "\"departments\":{\"default\":{\"plugins\":["
                     "{\"plugin\":\"auth\",\"config\":{"
                     "\"db\":\"%s/data/auth.db\","
                     "\"token_audience\":\"" AUD "\","
                     "\"bootstrap_admin\":{\"username\":\"root\","
                     "\"password_env\":\"PH_TEST_AUTH_ADMIN\"}%s%s}},"
                     "{\"plugin\":\"authclient\"}]}}}",
                     base, base, extra ? "," : "", extra ? extra : "") > 0);
  if (config != NULL) {
    unlink(config);
    free(config);
  }
  config = th_write_temp(text, ".json");
  free(text);
  H = th_start(config, NULL);
}

static void start(const char *extra) {
  cJSON *init;

  start_host(extra);
  init = th_initialize(H, "2025-06-18", NULL);
  cr_assert_not_null(init, "no initialize answer; stderr:\n%s", th_stderr(H));
  cJSON_Delete(init);
}

/* tools/call of `tool` with printf-formatted arguments. */
static cJSON *call(const char *tool, const char *fmt, ...) {
  char *args, *params;
  va_list ap;
  cJSON *res;

  va_start(ap, fmt);
  cr_assert(vasprintf(&args, fmt, ap) > 0);
  va_end(ap);
  cr_assert(
      asprintf(&params, "{\"name\":\"%s\",\"arguments\":%s}", tool, args) > 0);
  res = th_request(H, "tools/call", params, WAIT_MS);
  cr_assert_not_null(res, "no answer to %s; stderr:\n%s", params, th_stderr(H));
  free(params);
  free(args);
  return res;
}

static int is_error(const cJSON *res) {
  return cJSON_IsTrue(th_get(res, "result.isError")) ||
         th_get(res, "error") != NULL;
}

static const char *text_of(const cJSON *res) {
  const char *t = th_str(res, "result.content.0.text");
  return t ? t : "";
}

static const char *sc(const cJSON *res, const char *path) {
  char full[256];

  snprintf(full, sizeof(full), "result.structuredContent.%s", path);
  return th_str(res, full);
}

static void expect_ok(const cJSON *res, const char *what) {
  cr_expect(!is_error(res), "%s failed: %s", what, cJSON_PrintUnformatted(res));
}

/* A token from auth_login (malloc'd), failing the test on a refusal. */
static char *login(const char *user, const char *password) {
  cJSON *res = call("auth_login", "{\"username\":\"%s\",\"password\":\"%s\"}",
                    user, password);
  char *token;

  cr_assert(!is_error(res), "login %s: %s", user, text_of(res));
  cr_expect_str_eq(sc(res, "token_type"), "Bearer");
  token = strdup(sc(res, "access_token"));
  cJSON_Delete(res);
  return token;
}

/* The authn service's answer for a token, through the fixture. */
static cJSON *authn(const char *token, const char *more) {
  return call("authclient_call",
              "{\"request\":{\"token\":\"%s\",\"audience\":\"" AUD "\"%s%s}}",
              token, more ? "," : "", more ? more : "");
}

static void add_alice(void) {
  cJSON *res = call("auth_user_add",
                    "{\"username\":\"alice\",\"password\":\"alice-password-1\","
                    "\"name\":\"Alice\",\"email\":\"alice@example.com\","
                    "\"tenant\":\"acme\",\"scopes\":[\"read:sales\"]}");

  expect_ok(res, "user_add");
  cJSON_Delete(res);
}

Test(auth, login_token_through_authn_whoami_and_introspection) {
  char *token, *root;
  cJSON *res;

  start(NULL);
  /* The bootstrap admin exists and signs in. */
  root = login("root", ADMIN_PASSWORD);
  add_alice();
  token = login("alice", "alice-password-1");
  cr_expect_eq(strncmp(token, "eyJ", 3), 0, "%s", token);
  res = authn(token, NULL);
  expect_ok(res, "authn");
  cr_expect_str_eq(sc(res, "sub"), "alice");
  cr_expect_str_eq(sc(res, "kind"), "user");
  cr_expect_str_eq(sc(res, "tenant"), "acme");
  cr_expect_str_eq(sc(res, "email"), "alice@example.com");
  cr_expect_str_eq(sc(res, "scopes.0"), "read:sales");
  cr_expect_str_eq(sc(res, "iss"), "urn:plughost:auth");
  cr_expect(th_num(res, "result.structuredContent.exp") > 0);
  cJSON_Delete(res);
  /* The same again comes from the cache, and says the same. */
  res = authn(token, NULL);
  cr_expect_str_eq(sc(res, "sub"), "alice");
  cJSON_Delete(res);
  /* Another department's audience. */
  res = call("authclient_call",
             "{\"request\":{\"token\":\"%s\",\"audience\":"
             "\"https://mcp.example.com/mcp/hr\"}}",
             token);
  cr_expect_str_eq(sc(res, "error"), "invalid_token");
  cr_expect_str_eq(sc(res, "reason"), "wrong_audience");
  cJSON_Delete(res);
  /* Only an external issuer accepted: our own tokens are not. */
  res = authn(token, "\"issuers\":[\"https://idp.example.com/\"]");
  cr_expect_str_eq(sc(res, "reason"), "unknown_issuer");
  cJSON_Delete(res);
  res = authn(token, "\"issuers\":[\"urn:plughost:auth\"]");
  cr_expect_str_eq(sc(res, "sub"), "alice");
  cJSON_Delete(res);
  /* A malformed request is the host's mistake: a service error. */
  res = call("authclient_call", "{\"request\":{\"token\":\"x\"}}");
  cr_expect(is_error(res) && strstr(text_of(res), "audience"), "%s",
            text_of(res));
  cJSON_Delete(res);
  /* A token tampered with. */
  token[strlen(token) - 3] = token[strlen(token) - 3] == 'A' ? 'B' : 'A';
  res = authn(token, NULL);
  cr_expect_str_eq(sc(res, "reason"), "bad_signature");
  cJSON_Delete(res);
  /* whoami: the stdio client's principal, from stdio_scopes. */
  res = call("auth_whoami", "{}");
  cr_expect_str_eq(sc(res, "sub"), "stdio");
  cJSON_Delete(res);
  /* Introspection of root's token. */
  res = call("auth_validate_token", "{\"token\":\"%s\"}", root);
  cr_expect(cJSON_IsTrue(th_get(res, "result.structuredContent.active")), "%s",
            text_of(res));
  cr_expect_str_eq(sc(res, "sub"), "root");
  cr_expect_str_eq(sc(res, "scopes.0"), "auth:admin");
  cJSON_Delete(res);
  res = call("auth_validate_token", "{\"token\":\"not-a-token\"}");
  cr_expect(cJSON_IsFalse(th_get(res, "result.structuredContent.active")));
  cJSON_Delete(res);
  /* The JWKS resource publishes the public key only. */
  res = th_request(H, "resources/read", "{\"uri\":\"auth://jwks.json\"}",
                   WAIT_MS);
  cr_expect(strstr(th_str(res, "result.contents.0.text"), "\"crv\":\"P-256\""),
            "%s", cJSON_PrintUnformatted(res));
  cr_expect(strstr(th_str(res, "result.contents.0.text"), "\"d\"") == NULL);
  cJSON_Delete(res);
  free(token);
  free(root);
}

Test(auth, api_key_created_used_and_revoked) {
  char *key, *id, *forged;
  cJSON *res;

  start(NULL);
  add_alice();
  res = call("auth_api_key_create",
             "{\"username\":\"alice\",\"name\":\"etl\",\"scopes\":[\"svc:"
             "etl\"]}");
  expect_ok(res, "api_key_create");
  key = strdup(sc(res, "api_key"));
  id = strdup(sc(res, "key_id"));
  cJSON_Delete(res);
  cr_expect_eq(strlen(key), 64, "%s", key);
  cr_expect_eq(strncmp(key, "phk_", 4), 0);
  /* Listed without the key itself. */
  res = call("auth_api_key_list", "{\"username\":\"alice\"}");
  cr_expect_str_eq(sc(res, "keys.0.id"), id);
  cr_expect(strstr(text_of(res), key + 21) == NULL);
  cJSON_Delete(res);
  res = authn(key, NULL);
  cr_expect_str_eq(sc(res, "sub"), "alice");
  cr_expect_str_eq(sc(res, "kind"), "api_key");
  cr_expect_str_eq(sc(res, "scopes.0"), "svc:etl");
  cr_expect_str_eq(sc(res, "key_id"), id);
  cJSON_Delete(res);
  res = authn(key, "\"scheme\":\"api_key\"");
  cr_expect_str_eq(sc(res, "kind"), "api_key");
  cJSON_Delete(res);
  /* The right id with another secret. */
  forged = strdup(key);
  forged[40] = forged[40] == 'A' ? 'B' : 'A';
  res = authn(forged, NULL);
  cr_expect_str_eq(sc(res, "reason"), "unknown_api_key");
  cJSON_Delete(res);
  /* A JWT-looking value sent as X-API-Key is not an API key. */
  res = authn("eyJ.eyJ.sig", "\"scheme\":\"api_key\"");
  cr_expect_str_eq(sc(res, "reason"), "malformed");
  cJSON_Delete(res);
  res = call("auth_api_key_revoke", "{\"key_id\":\"%s\"}", id);
  expect_ok(res, "api_key_revoke");
  cJSON_Delete(res);
  /* Refused at once, although the earlier answer was cached. */
  res = authn(key, NULL);
  cr_expect_str_eq(sc(res, "error"), "invalid_token");
  cr_expect_str_eq(sc(res, "reason"), "revoked_api_key");
  cJSON_Delete(res);
  res = call("auth_api_key_revoke", "{\"key_id\":\"%s\"}", id);
  cr_expect(is_error(res));
  cJSON_Delete(res);
  free(forged);
  free(key);
  free(id);
}

Test(auth, disabled_user_refused_everywhere) {
  char *token, *key;
  cJSON *res;

  start(NULL);
  add_alice();
  token = login("alice", "alice-password-1");
  res = call("auth_api_key_create", "{\"username\":\"alice\"}");
  key = strdup(sc(res, "api_key"));
  cr_expect_str_eq(sc(res, "scopes.0"), "read:sales");
  cJSON_Delete(res);
  res = authn(token, NULL);
  cr_expect_str_eq(sc(res, "sub"), "alice");
  cJSON_Delete(res);
  res = call("auth_user_disable", "{\"username\":\"alice\"}");
  expect_ok(res, "user_disable");
  cJSON_Delete(res);
  res = authn(token, NULL);
  cr_expect_str_eq(sc(res, "reason"), "disabled_user");
  cJSON_Delete(res);
  res = authn(key, NULL);
  cr_expect_str_eq(sc(res, "reason"), "disabled_user");
  cJSON_Delete(res);
  res = call("auth_login",
             "{\"username\":\"alice\",\"password\":\"alice-password-1\"}");
  cr_expect(is_error(res));
  cr_expect_str_eq(text_of(res), "invalid username or password");
  cJSON_Delete(res);
  /* Enabled again: the key works, the old token stays revoked. */
  res =
      call("auth_user_disable", "{\"username\":\"alice\",\"disabled\":false}");
  expect_ok(res, "user_disable false");
  cJSON_Delete(res);
  res = authn(key, NULL);
  cr_expect_str_eq(sc(res, "sub"), "alice");
  cJSON_Delete(res);
  res = authn(token, NULL);
  cr_expect_str_eq(sc(res, "reason"), "token_revoked");
  cJSON_Delete(res);
  free(token);
  free(key);
}

Test(auth, scopes_granted_and_revoked_and_admin_only) {
  char *token;
  cJSON *res;

  start(NULL);
  add_alice();
  res = call("auth_user_grant",
             "{\"username\":\"alice\",\"scopes\":[\"write:sales\"]}");
  cr_expect_str_eq(sc(res, "scopes.1"), "write:sales");
  cJSON_Delete(res);
  token = login("alice", "alice-password-1");
  res = authn(token, NULL);
  cr_expect_str_eq(sc(res, "scopes.1"), "write:sales");
  cJSON_Delete(res);
  res = call("auth_user_revoke",
             "{\"username\":\"alice\",\"scopes\":[\"read:sales\"]}");
  cr_expect_str_eq(sc(res, "scopes.0"), "write:sales");
  cr_expect_null(sc(res, "scopes.1"));
  cJSON_Delete(res);
  res = authn(token, NULL);
  cr_expect_str_eq(sc(res, "scopes.0"), "write:sales");
  cJSON_Delete(res);
  /* A new password revokes the tokens issued before it. */
  res = call("auth_user_set_password",
             "{\"username\":\"alice\",\"password\":\"alice-password-2\"}");
  expect_ok(res, "set_password");
  cJSON_Delete(res);
  sleep(1);
  res = authn(token, NULL);
  cr_expect_str_eq(sc(res, "reason"), "token_revoked");
  cJSON_Delete(res);
  free(token);
  token = login("alice", "alice-password-2");
  free(token);
  res = call("auth_user_add",
             "{\"username\":\"alice\",\"password\":\"another-password\"}");
  cr_expect(is_error(res) && strstr(text_of(res), "already exists"));
  cJSON_Delete(res);
  res = call("auth_user_list", "{}");
  cr_expect(strstr(text_of(res), "argon2") == NULL, "%s", text_of(res));
  cJSON_Delete(res);
  stop();
  /* A client without auth:admin is refused the administration tools. */
  {
    char *cfg, *text;
    cr_assert(asprintf(&text,
                       "{\"plugin_dir\":\"%s/plugins\","
                       "\"departments\":{\"default\":{\"plugins\":["
                       "{\"plugin\":\"auth\",\"config\":{"
                       "\"db\":\"%s/data/auth.db\"}}]}}}",
                       base, base) > 0);
    cfg = th_write_temp(text, ".json");
    free(text);
    H = th_start(cfg, NULL);
    cJSON_Delete(th_initialize(H, "2025-06-18", NULL));
    res = call("auth_user_add", "{\"username\":\"mallory\"}");
    cr_expect(is_error(res));
    cr_expect(strstr(text_of(res), "auth:admin") != NULL, "%s", text_of(res));
    cJSON_Delete(res);
    res = call("auth_whoami", "{}");
    cr_expect(is_error(res) && strstr(text_of(res), "anonymous"));
    cJSON_Delete(res);
    stop();
    unlink(cfg);
    free(cfg);
  }
}

Test(auth, login_backoff_and_one_answer_for_every_failure) {
  long long t0, unknown_ms, wrong_ms;
  cJSON *res;

  start("\"login_free_attempts\":2,\"login_max_delay\":2");
  add_alice();
  t0 = th_now_ms();
  res = call("auth_login",
             "{\"username\":\"nobody\",\"password\":\"whatever-it-is\"}");
  unknown_ms = th_now_ms() - t0;
  cr_expect_str_eq(text_of(res), "invalid username or password");
  cJSON_Delete(res);
  t0 = th_now_ms();
  res = call("auth_login",
             "{\"username\":\"alice\",\"password\":\"wrong-password\"}");
  wrong_ms = th_now_ms() - t0;
  cr_expect_str_eq(text_of(res), "invalid username or password");
  cJSON_Delete(res);
  /* Both paths ran one Argon2id verification. */
  cr_expect(unknown_ms * 3 >= wrong_ms && wrong_ms * 3 >= unknown_ms,
            "unknown user %lld ms, wrong password %lld ms", unknown_ms,
            wrong_ms);
  res = call("auth_login",
             "{\"username\":\"alice\",\"password\":\"wrong-again\"}");
  cr_expect_str_eq(text_of(res), "invalid username or password");
  cJSON_Delete(res);
  /* Over the free attempts: even the right password waits. */
  res = call("auth_login",
             "{\"username\":\"alice\",\"password\":\"alice-password-1\"}");
  cr_expect(is_error(res));
  cr_expect(strstr(text_of(res), "try again in") != NULL, "%s", text_of(res));
  cJSON_Delete(res);
  /* Case does not make another account for the backoff. */
  res = call("auth_login",
             "{\"username\":\"ALICE\",\"password\":\"alice-password-1\"}");
  cr_expect(strstr(text_of(res), "try again in") != NULL, "%s", text_of(res));
  cJSON_Delete(res);
  /* Another account is not slowed down. */
  free(login("root", ADMIN_PASSWORD));
  sleep(3);
  free(login("alice", "alice-password-1"));
}

Test(auth, signing_key_and_users_survive_a_restart) {
  char path[PATH_MAX + 32], *token;
  struct stat st;
  cJSON *res;

  start(NULL);
  add_alice();
  token = login("alice", "alice-password-1");
  stop();
  snprintf(path, sizeof(path), "%s/data/auth.db.key.pem", base);
  cr_assert_eq(stat(path, &st), 0, "no key file at %s", path);
  cr_expect_eq(st.st_mode & 077, 0, "the key file is readable by others");
  snprintf(path, sizeof(path), "%s/data/auth.db", base);
  cr_assert_eq(stat(path, &st), 0);
  cr_expect_eq(st.st_mode & 077, 0, "the store is readable by others");
  start(NULL);
  res = authn(token, NULL);
  cr_expect_str_eq(sc(res, "sub"), "alice", "%s", text_of(res));
  cJSON_Delete(res);
  free(token);
}

Test(auth, bad_config_fails_init) {
  start_host("\"no_such_key\":1");
  cr_expect(th_wait_stderr(H, "unknown key or wrong type: 'no_such_key'", 5000),
            "%s", th_stderr(H));
  stop();
}
