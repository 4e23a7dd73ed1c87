/* test_abi.c: the ABI promise, kept by the real host. Plugins compiled
 * against frozen copies of the published 1.0 and 1.2 headers (tests/abi/)
 * load on the current host and serve every kind of item they declare; a
 * plugin whose item size matches no published layout is refused with one
 * line that names the field. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ABI_DIR PH_TEST_PLUGIN_DIR "/abi"

static th_host *start(void) {
  char *config = th_write_config(ABI_DIR, NULL, NULL,
                                 "{'plugin':'abi10'},{'plugin':'abi12'}");
  th_host *h = th_start(config, NULL);

  cJSON_Delete(th_initialize(h, "2025-11-25", NULL));
  unlink(config);
  free(config);
  return h;
}

static void expect_text(cJSON *msg, const char *path, const char *want) {
  cr_assert_not_null(msg);
  cr_assert_null(th_get(msg, "error"), "error: %s",
                 th_str(msg, "error.message"));
  cr_assert_str_eq(th_str(msg, path), want);
  cJSON_Delete(msg);
}

Test(abi, plugin_built_for_1_0_serves_tools_resources_and_prompts) {
  th_host *h = start();

  expect_text(th_rpc(h, "tools/call",
                     "{'name':'abi10_echo','arguments':{'word':'hello'}}"),
              "result.content.0.text", "1.0 says hello");
  expect_text(th_rpc(h, "resources/read", "{'uri':'abi10://static'}"),
              "result.contents.0.text", "static 1.0");
  expect_text(th_rpc(h, "resources/read", "{'uri':'abi10://items/x1'}"),
              "result.contents.0.text", "item x1");
  expect_text(th_rpc(h, "prompts/get", "{'name':'abi10_greet'}"),
              "result.messages.0.content.text", "hello from 1.0");
  /* The 1.0 plugin reads only the first 120 bytes of the newer table. */
  cr_assert(th_wait_stderr(h, "sees an API table of 160 bytes", 1000));
  cr_assert_eq(th_stop(h, 5000), 0);
}

Test(abi, plugin_built_for_1_2_uses_its_additions) {
  th_host *h = start();

  expect_text(th_rpc(h, "tools/call", "{'name':'abi12_pooled','arguments':{}}"),
              "result.content.0.text", "1.2 ran on a worker");
  cr_assert_eq(th_stop(h, 5000), 0);
}

Test(abi, item_size_of_no_published_layout_is_refused) {
  th_host *h = start();
  cJSON *list = th_rpc(h, "tools/list", NULL);
  const cJSON *tool;

  cr_assert(th_wait_stderr(h, "bad_layout.so", 2000), "%s", th_stderr(h));
  cr_assert(strstr(th_stderr(h), "tool_size 88") != NULL, "%s", th_stderr(h));
  cJSON_ArrayForEach(tool, th_get(list, "result.tools"))
      cr_assert_null(strstr(th_str(tool, "name"), "never"), "listed: %s",
                     th_str(tool, "name"));
  cJSON_Delete(list);
  cr_assert_eq(th_stop(h, 5000), 0);
}
