/* test_inspector.c: real clients against plughost. The Inspector CLI
 * (@modelcontextprotocol/inspector 2.12) lists and calls tools in the
 * legacy, auto and modern eras over HTTP and over stdio; the official
 * TypeScript SDK client calls a tool over HTTP. Both come from .deps (see
 * scripts/setup.sh); without them the tests fail, saying what to run: a
 * missing client must not pass for a working one. */
#include "harness.h"
#include "http_host.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODULES PH_SOURCE_DIR "/.deps/npm/node_modules"
#define INSPECTOR MODULES "/.bin/mcp-inspector"
#define NODE_BIN MODULES "/.bin"

static th_http_host host;
static char *cfg;

static const char config[] =
    "{\"plugin_dir\":\"" PH_TEST_PLUGIN_DIR "\",\"log_level\":\"info\","
    "\"departments\":{\"default\":{\"plugins\":["
    "{\"plugin\":\"conformance\",\"prefix\":\"\"}]}}}";

static void start(void) {
  if (access(INSPECTOR, X_OK) != 0)
    cr_assert_fail("the Inspector is not installed at %s: run scripts/setup.sh",
                   INSPECTOR);
  cfg = th_write_temp(config, ".json");
  th_http_start(&host, cfg, 5000);
}

static void stop(void) {
  th_http_stop(&host);
  free(cfg);
}

TestSuite(clients, .init = start, .fini = stop, .timeout = 120);

/* Runs a shell command with Node 22 first on PATH; returns its stdout and
 * exit status. */
static char *run(const char *cmd, int *status) {
  char *full, *out = calloc(1, 1 << 20);
  size_t len = 0, n;
  FILE *p;

  cr_assert(asprintf(&full, "PATH=%s:$PATH %s 2>/dev/null", NODE_BIN, cmd) > 0);
  p = popen(full, "r");
  while ((n = fread(out + len, 1, (1 << 20) - 1 - len, p)) > 0)
    len += n;
  *status = pclose(p);
  free(full);
  return out;
}

static void inspector_http(const char *era) {
  char cmd[1024], *out;
  int status;

  snprintf(cmd, sizeof(cmd),
           INSPECTOR " --cli http://127.0.0.1:%d/mcp --transport http "
                     "--protocol-era %s --method tools/list --format json",
           host.port, era);
  out = run(cmd, &status);
  cr_expect_eq(status, 0, "%s: %s", era, out);
  cr_expect(strstr(out, "test_simple_text") != NULL, "%s: %s", era, out);
  free(out);
  snprintf(cmd, sizeof(cmd),
           INSPECTOR " --cli http://127.0.0.1:%d/mcp --transport http "
                     "--protocol-era %s --method tools/call --tool-name "
                     "test_simple_text --format json",
           host.port, era);
  out = run(cmd, &status);
  cr_expect_eq(status, 0, "%s: %s", era, out);
  cr_expect(strstr(out, "This is a simple text response for testing.") != NULL,
            "%s: %s", era, out);
  free(out);
}

static void inspector_stdio(const char *era) {
  char cmd[2048], *out;
  int status;

  snprintf(cmd, sizeof(cmd),
           INSPECTOR " --cli --protocol-era %s --method tools/call "
                     "--tool-name test_simple_text --format json -- %s "
                     "--config %s --stdio",
           era, th_binary(), cfg);
  out = run(cmd, &status);
  cr_expect_eq(status, 0, "%s: %s", era, out);
  cr_expect(strstr(out, "This is a simple text response for testing.") != NULL,
            "%s: %s", era, out);
  free(out);
  snprintf(cmd, sizeof(cmd),
           INSPECTOR " --cli --protocol-era %s --method tools/list "
                     "--format json -- %s --config %s --stdio",
           era, th_binary(), cfg);
  out = run(cmd, &status);
  cr_expect_eq(status, 0, "%s: %s", era, out);
  cr_expect(strstr(out, "test_image_content") != NULL, "%s: %s", era, out);
  free(out);
}

Test(clients, inspector_http_legacy) {
  inspector_http("legacy");
}
Test(clients, inspector_http_auto) {
  inspector_http("auto");
}
Test(clients, inspector_http_modern) {
  inspector_http("modern");
}
Test(clients, inspector_stdio_legacy) {
  inspector_stdio("legacy");
}
Test(clients, inspector_stdio_auto) {
  inspector_stdio("auto");
}
Test(clients, inspector_stdio_modern) {
  inspector_stdio("modern");
}

/* The SDK's own client: initialize, list, a call with progress. */
Test(clients, typescript_sdk_over_http) {
  char *script, *cmd, *out;
  int status;

  script = th_write_temp(
      "import { Client } from '" MODULES
      "/@modelcontextprotocol/sdk/dist/esm/client/index.js';\n"
      "import { StreamableHTTPClientTransport } from '" MODULES
      "/@modelcontextprotocol/sdk/dist/esm/client/streamableHttp.js';\n"
      "const c = new Client({ name: 'sdk-test', version: '1.0.0' });\n"
      "await c.connect(new StreamableHTTPClientTransport("
      "new URL(process.argv[2])));\n"
      "const tools = await c.listTools();\n"
      "let n = 0;\n"
      "const r = await c.callTool({ name: 'test_tool_with_progress', "
      "arguments: {} }, undefined, { onprogress: () => n++ });\n"
      "console.log(JSON.stringify({ tools: tools.tools.length, progress: n, "
      "version: c.getServerVersion().name, r }));\n"
      "await c.close();\n",
      ".mjs");
  cr_assert(
      asprintf(&cmd, "node %s http://127.0.0.1:%d/mcp", script, host.port) > 0);
  out = run(cmd, &status);
  cr_expect_eq(status, 0, "%s", out);
  cr_expect(strstr(out, "\"version\":\"plughost\"") != NULL, "%s", out);
  cr_expect(strstr(out, "\"progress\":3") != NULL, "%s", out);
  unlink(script);
  free(script);
  free(cmd);
  free(out);
}
