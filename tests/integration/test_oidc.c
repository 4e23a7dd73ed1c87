/* test_oidc.c: an external identity provider for real. oidc-provider
 * (tests/integration/oidc_provider.mjs) runs on loopback and issues JWT
 * access tokens by client credentials for a resource indicator; the real
 * host with auth.so finds its keys by discovery (sales) or by jwks_uri
 * (hr), fetches them once, follows a key rotation with one refetch,
 * refuses a token minted for the other department, and is driven end to
 * end by the official TypeScript SDK client with its
 * ClientCredentialsProvider (tests/integration/sdk_oauth_client.mjs) and
 * by the Inspector CLI with a bearer header. Needs PH_NODE_MODULES
 * (scripts/env.sh) with oidc-provider, the SDK and the Inspector. */
#include "harness.h"
#include "http_host.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROVIDER_SCRIPT PH_SOURCE_DIR "/tests/integration/oidc_provider.mjs"
#define SDK_SCRIPT PH_SOURCE_DIR "/tests/integration/sdk_oauth_client.mjs"
#define INSPECTOR "/.bin/mcp-inspector" /* Under PH_NODE_MODULES. */
/* base64("plughost-tests:plughost-tests-secret"), the provider's client. */
#define CLIENT_BASIC "cGx1Z2hvc3QtdGVzdHM6cGx1Z2hvc3QtdGVzdHMtc2VjcmV0"

static th_http_host host;
static char base[PATH_MAX], *config_path;
static char sales[128], hr[128], issuer[64];
static int host_port, idp_port;
static pid_t idp_pid;
static int key_number;

static const char *node(void) {
  const char *n = getenv("PH_NODE");

  return n != NULL && n[0] != '\0' ? n : "node";
}

static void require_modules(void) {
  const char *m = getenv("PH_NODE_MODULES");

  cr_assert(m != NULL && m[0] != '\0',
            "PH_NODE_MODULES is not set: source scripts/env.sh (setup.sh "
            "installs oidc-provider, the SDK and the Inspector into "
            ".deps/npm/node_modules)");
}

/* A port nobody listens on now, for a config that must name it. */
static int free_port(void) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;

  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  port = ntohs(a.sin_port);
  close(fd);
  return port;
}

/* Starts the provider with a new signing key (key<N>.json) on idp_port
 * (0 the first time: then the port it took is kept) and a fresh fetch
 * log, and waits for its line. */
static void start_provider(void) {
  char key[PATH_MAX + 32], log[PATH_MAX + 32], port[16], line[256];
  int out[2];
  size_t len = 0;
  ssize_t n;
  struct pollfd p;
  long long deadline = th_now_ms() + 20000;
  const char *at;

  snprintf(key, sizeof(key), "%s/key%d.json", base, ++key_number);
  snprintf(log, sizeof(log), "%s/jwks.log", base);
  unlink(log);
  snprintf(port, sizeof(port), "%d", idp_port);
  cr_assert_eq(pipe(out), 0);
  idp_pid = fork();
  cr_assert(idp_pid >= 0);
  if (idp_pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    execlp(node(), node(), PROVIDER_SCRIPT, "--key", key, "--log", log,
           "--port", port, "--resource", sales, "--resource", hr, (char *)NULL);
    fprintf(stderr, "cannot run %s: %s\n", node(), strerror(errno));
    _exit(127);
  }
  close(out[1]);
  p = (struct pollfd){.fd = out[0], .events = POLLIN};
  while (memchr(line, '\n', len) == NULL && len < sizeof(line) - 1 &&
         th_now_ms() < deadline) {
    if (poll(&p, 1, 100) <= 0)
      continue;
    n = read(out[0], line + len, sizeof(line) - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  close(out[0]);
  line[len] = '\0';
  at = strstr(line, "\"issuer\":\"");
  cr_assert_not_null(at, "the provider did not start: %s", line);
  at += strlen("\"issuer\":\"");
  snprintf(issuer, sizeof(issuer), "%.*s", (int)strcspn(at, "\""), at);
  idp_port = atoi(strrchr(issuer, ':') + 1);
}

static void stop_provider(void) {
  int status;

  if (idp_pid > 0) {
    kill(idp_pid, SIGTERM);
    waitpid(idp_pid, &status, 0);
  }
  idp_pid = 0;
}

/* How many times the host fetched the provider's key set since it last
 * started. */
static int jwks_fetches(void) {
  char path[PATH_MAX + 32], line[64];
  FILE *f;
  int n = 0;

  snprintf(path, sizeof(path), "%s/jwks.log", base);
  f = fopen(path, "r");
  if (f == NULL)
    return 0;
  while (fgets(line, sizeof(line), f) != NULL)
    n++;
  fclose(f);
  return n;
}

static void start(void) {
  char dir[PATH_MAX + 16], listen[32], *text;

  require_modules();
  snprintf(base, sizeof(base), "/tmp/ph-oidc-XXXXXX");
  cr_assert_not_null(mkdtemp(base));
  snprintf(dir, sizeof(dir), "%s/plugins", base);
  cr_assert_eq(mkdir(dir, 0755), 0);
  cr_assert_eq(system(NULL) != 0, 1);
  cr_assert(asprintf(&text, "cp '%s/plugins/auth.so' '%s/spy.so' '%s'",
                     PH_BUILD_DIR, PH_TEST_PLUGIN_DIR, dir) > 0);
  cr_assert_eq(system(text), 0, "%s", text);
  free(text);
  host_port = free_port();
  snprintf(sales, sizeof(sales), "http://127.0.0.1:%d/mcp/sales", host_port);
  snprintf(hr, sizeof(hr), "http://127.0.0.1:%d/mcp/hr", host_port);
  start_provider();
  /* sales discovers the keys from the issuer; hr is given the jwks_uri. */
  cr_assert(
      asprintf(&text,
               "{\"plugin_dir\":\"%s/plugins\",\"log_level\":\"info\","
               "\"audit_log\":\"%s/audit.jsonl\",\"departments\":{"
               "\"sales\":{\"auth\":\"required\",\"public_url\":\"%s\","
               "\"issuers\":[\"%s\"],\"scopes_supported\":[\"read:sales\"],"
               "\"tool_scopes\":{\"spy_secret\":\"read:sales\"},"
               "\"plugins\":[{\"plugin\":\"auth\",\"config\":{"
               "\"db\":\"%s/data/auth.db\",\"issuers\":[{\"issuer\":\"%s\","
               "\"discovery\":true,\"algorithms\":[\"ES256\"]}]}},"
               "{\"plugin\":\"spy\"}]},"
               "\"hr\":{\"auth\":\"required\",\"public_url\":\"%s\","
               "\"issuers\":[\"%s\"],"
               "\"plugins\":[{\"plugin\":\"auth\",\"config\":{"
               "\"db\":\"%s/data/auth.db\",\"issuers\":[{\"issuer\":\"%s\","
               "\"jwks_uri\":\"%s/jwks\"}]}},{\"plugin\":\"spy\"}]}}}",
               base, base, sales, issuer, base, issuer, hr, issuer, base,
               issuer, issuer) > 0);
  config_path = th_write_temp(text, ".json");
  free(text);
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", host_port);
  th_http_start_on(&host, config_path, listen, 20000);
}

static void stop(void) {
  char *cmd;

  th_http_stop(&host);
  stop_provider();
  if (config_path != NULL) {
    unlink(config_path);
    free(config_path);
    config_path = NULL;
  }
  if (base[0] != '\0' && asprintf(&cmd, "rm -rf '%s'", base) > 0) {
    cr_expect_eq(system(cmd), 0);
    free(cmd);
  }
  base[0] = '\0';
}

TestSuite(oidc, .init = start, .fini = stop, .timeout = 120);

/* ---- Requests ---- */

/* A token from the provider for resource, by client credentials. */
static char *provider_token(const char *resource) {
  char *body, *req, *r, *at, *token;
  int n;

  cr_assert(asprintf(&body,
                     "grant_type=client_credentials&scope=read%%3Asales&"
                     "resource=%s",
                     resource) > 0);
  n = asprintf(&req,
               "POST /token HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Authorization: Basic " CLIENT_BASIC "\r\n"
               "Content-Type: application/x-www-form-urlencoded\r\n"
               "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
               idp_port, strlen(body), body);
  cr_assert(n > 0);
  r = th_http_raw(idp_port, req, (size_t)n, 10000);
  cr_assert_eq(th_http_status(r), 200, "token for %s: %s", resource, r);
  at = strstr(r, "\"access_token\":\"");
  cr_assert_not_null(at, "%s", r);
  at += strlen("\"access_token\":\"");
  token = strndup(at, strcspn(at, "\""));
  free(r);
  free(req);
  free(body);
  return token;
}

/* A 2026-07-28 tools/call of tool at path with token; the response. */
static char *call_as(const char *path, const char *token, const char *tool) {
  char *req, *body, *out;
  int n;

  cr_assert(asprintf(&body,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                     "\"params\":{\"_meta\":{"
                     "\"io.modelcontextprotocol/protocolVersion\":"
                     "\"2026-07-28\","
                     "\"io.modelcontextprotocol/clientCapabilities\":{}},"
                     "\"name\":\"%s\",\"arguments\":{}}}",
                     tool) > 0);
  n = asprintf(&req,
               "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Content-Type: application/json\r\n"
               "Accept: application/json, text/event-stream\r\n"
               "MCP-Protocol-Version: 2026-07-28\r\n"
               "Mcp-Method: tools/call\r\nMcp-Name: %s\r\n"
               "Authorization: Bearer %s\r\n"
               "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
               path, host_port, tool, token, strlen(body), body);
  cr_assert(n > 0);
  out = th_http_raw(host_port, req, (size_t)n, 10000);
  free(req);
  free(body);
  return out;
}

/* The principal spy_dump saw, from a 200 answer r (freed). */
static cJSON *principal_of(char *r) {
  const char *b = strstr(r, "\r\n\r\n");
  cJSON *j = b ? cJSON_Parse(b + 4) : NULL, *p;

  cr_assert_eq(th_http_status(r), 200, "%s", r);
  cr_assert_not_null(j, "%s", r);
  p = cJSON_Duplicate(th_get(j, "result.structuredContent.principal"), 1);
  cr_assert_not_null(p, "%s", r);
  cJSON_Delete(j);
  free(r);
  return p;
}

/* A copy of token with its header's kid replaced: a key nobody has. */
static char *with_unknown_kid(void) {
  /* {"alg":"ES256","typ":"at+jwt","kid":"nobody-has-this"} */
  static const char header[] = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtp"
                               "ZCI6Im5vYm9keS1oYXMtdGhpcyJ9";
  char *token = provider_token(sales), *out;

  cr_assert(asprintf(&out, "%s%s", header, strchr(token, '.')) > 0);
  free(token);
  return out;
}

static void expect_refused(char *r, const char *reason, const char *what) {
  cr_expect_eq(th_http_status(r), 401, "%s: %s", what, r);
  cr_expect_not_null(strstr(r, "error=\"invalid_token\""), "%s: %s", what, r);
  if (reason != NULL)
    cr_expect_not_null(strstr(r, reason), "%s: %s", what, r);
  free(r);
}

/* ---- Tests ---- */

/* Discovery finds the keys once; the token's claims make the principal. */
Test(oidc, a_provider_token_is_accepted_after_one_discovery) {
  char *token = provider_token(sales);
  cJSON *p;

  cr_expect_eq(jwks_fetches(), 0, "nothing is fetched before a token");
  p = principal_of(call_as("/mcp/sales", token, "spy_dump"));
  cr_expect_str_eq(th_str(p, "sub"), "plughost-tests");
  cr_expect_str_eq(th_str(p, "iss"), issuer);
  cr_expect_str_eq(th_str(p, "kind"), "external");
  cr_expect_str_eq(th_str(p, "scopes.0"), "read:sales");
  cJSON_Delete(p);
  free(provider_token(sales)); /* Another token, the same key. */
  cJSON_Delete(principal_of(call_as("/mcp/sales", token, "spy_dump")));
  cr_expect_eq(jwks_fetches(), 1, "the keys are fetched once");
  free(token);
}

/* hr names its jwks_uri; a token minted for sales is refused there, and
 * one for hr at sales, whoever signed them. */
Test(oidc, jwks_by_url_and_the_audience_is_the_department) {
  char *for_sales = provider_token(sales), *for_hr = provider_token(hr);

  cJSON_Delete(principal_of(call_as("/mcp/hr", for_hr, "spy_dump")));
  expect_refused(call_as("/mcp/hr", for_sales, "spy_dump"), "audience",
                 "a sales token at hr");
  expect_refused(call_as("/mcp/sales", for_hr, "spy_dump"), "audience",
                 "an hr token at sales");
  free(for_sales);
  free(for_hr);
}

/* The provider restarts with a new key: the first token signed with it
 * costs the host one refetch, later ones none, and a kid nobody has is
 * refused without another fetch inside the interval. */
Test(oidc, key_rotation_costs_one_refetch) {
  char *old = provider_token(sales), *fresh, *forged;
  char *log;

  cJSON_Delete(principal_of(call_as("/mcp/sales", old, "spy_dump")));
  stop_provider();
  start_provider(); /* Same port, key2.json, a new kid. */
  fresh = provider_token(sales);
  cr_assert_str_neq(old, fresh);
  cJSON_Delete(principal_of(call_as("/mcp/sales", fresh, "spy_dump")));
  cr_expect_eq(jwks_fetches(), 1, "one refetch for the new kid");
  free(fresh);
  fresh = provider_token(sales);
  cJSON_Delete(principal_of(call_as("/mcp/sales", fresh, "spy_dump")));
  forged = with_unknown_kid();
  expect_refused(call_as("/mcp/sales", forged, "spy_dump"), "no key",
                 "an unknown kid");
  expect_refused(call_as("/mcp/sales", forged, "spy_secret"), "no key",
                 "an unknown kid again");
  cr_expect_eq(jwks_fetches(), 1,
               "unknown kids within the interval fetch nothing more");
  log = th_http_wait_log(&host, "JWKS of", 1000);
  cr_expect_not_null(log);
  if (log != NULL)
    cr_expect_not_null(strstr(log, "fetched: 1 key(s)"), "%s", log);
  free(log);
  free(old);
  free(fresh);
  free(forged);
}

/* A provider that is down makes a 503, not a 401: the credential may be
 * fine, the host cannot tell yet. */
Test(oidc, keys_out_of_reach_answer_503) {
  char *token = provider_token(sales), *r;

  stop_provider();
  r = call_as("/mcp/sales", token, "spy_dump");
  cr_expect_eq(th_http_status(r), 503, "%s", r);
  free(r);
  free(token);
}

/* Plain http is for loopback only; a remote issuer needs https. */
Test(oidc, http_is_refused_for_a_remote_issuer) {
  char *plugins, *config;
  th_host *h;

  cr_assert(asprintf(&plugins,
                     "{'plugin':'auth','config':{'db':'%s/other.db',"
                     "'issuers':[{'issuer':'http://idp.example.com',"
                     "'discovery':true}]}}",
                     base) > 0);
  config = th_write_config(PH_BUILD_DIR "/plugins", NULL, NULL, plugins);
  h = th_start(config, NULL);
  cr_expect(th_wait_stderr(h, "must be an https URL", 10000), "%s",
            th_stderr(h));
  th_stop(h, 5000);
  unlink(config);
  free(config);
  free(plugins);
}

/* A shell command's stdout (up to 1 MiB) and exit status, with the node
 * of PH_NODE first on PATH. */
static char *run(const char *cmd, int *status) {
  char *full, *out = calloc(1, 1 << 20), *dir = strdup(node());
  size_t len = 0, n;
  FILE *p;

  if (strrchr(dir, '/') != NULL)
    *strrchr(dir, '/') = '\0';
  cr_assert(asprintf(&full, "PATH='%s':$PATH %s 2>&1", dir, cmd) > 0);
  p = popen(full, "r");
  cr_assert_not_null(p);
  while ((n = fread(out + len, 1, (1 << 20) - 1 - len, p)) > 0)
    len += n;
  *status = pclose(p);
  free(full);
  free(dir);
  return out;
}

/* The SDK client starts with no token: a 401, the resource metadata the
 * challenge names, the provider's metadata, a client-credentials token
 * for the resource, then the call, whose principal is the client. */
Test(oidc, the_typescript_sdk_authorises_itself_and_calls_a_tool) {
  char *cmd, *out, prm[160];
  cJSON *j;
  int status;

  cr_assert(asprintf(&cmd, "'%s' '%s' '%s' spy_dump '%s'", node(), SDK_SCRIPT,
                     sales, issuer) > 0);
  out = run(cmd, &status);
  cr_assert_eq(status, 0, "%s", out);
  j = cJSON_Parse(strrchr(out, '{') ? strstr(out, "{\"tools\"") : out);
  cr_assert_not_null(j, "%s", out);
  cr_expect_str_eq(th_str(j, "result.structuredContent.principal.sub"),
                   "plughost-tests", "%s", out);
  cr_expect_str_eq(th_str(j, "result.structuredContent.principal.iss"), issuer,
                   "%s", out);
  cr_expect_str_eq(th_str(j, "requests.0"), "POST /mcp/sales 401", "%s", out);
  snprintf(prm, sizeof(prm),
           "GET /.well-known/oauth-protected-resource/mcp/sales 200");
  cr_expect_not_null(strstr(out, prm), "%s", out);
  cr_expect(strstr(out, "GET /.well-known/oauth-authorization-server 200") ||
                strstr(out, "GET /.well-known/openid-configuration 200"),
            "%s", out);
  cr_expect_not_null(strstr(out, "POST /token 200"), "%s", out);
  cr_expect_not_null(strstr(out, "POST /mcp/sales 200"), "%s", out);
  cJSON_Delete(j);
  free(out);
  free(cmd);
}

/* The Inspector CLI with a bearer header from the provider. */
Test(oidc, the_inspector_cli_calls_with_a_bearer_header) {
  char *token = provider_token(sales), *cmd, *out;
  int status;

  cr_assert(asprintf(&cmd,
                     "'%s" INSPECTOR "' --cli '%s' --transport http "
                     "--method tools/call --tool-name spy_dump --header "
                     "'Authorization: Bearer %s' --format json",
                     getenv("PH_NODE_MODULES"), sales, token) > 0);
  out = run(cmd, &status);
  cr_expect_eq(status, 0, "%s", out);
  cr_expect_not_null(strstr(out, "plughost-tests"), "%s", out);
  free(cmd);
  free(out);
  /* Without it, the same call is refused. */
  cr_assert(asprintf(&cmd,
                     "'%s" INSPECTOR "' --cli '%s' --transport http "
                     "--method tools/call --tool-name spy_dump --format json",
                     getenv("PH_NODE_MODULES"), sales) > 0);
  out = run(cmd, &status);
  cr_expect_neq(status, 0, "%s", out);
  cr_expect_null(strstr(out, "plughost-tests"), "%s", out);
  free(cmd);
  free(out);
  free(token);
}
