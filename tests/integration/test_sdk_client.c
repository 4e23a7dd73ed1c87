/* test_sdk_client.c: the official TypeScript SDK client against the real
 * host over stdio. sdk_client.mjs does the talking and prints one JSON
 * object; this file checks it. Needs PH_NODE_MODULES (the node_modules
 * holding @modelcontextprotocol/sdk, installed by scripts/setup.sh) and
 * optionally PH_NODE (a node >= 20; default: node on PATH). */
#include "harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SCRIPT PH_SOURCE_DIR "/tests/integration/sdk_client.mjs"
#define RUN_MS 30000

/* Appends what fd has to *buf; returns 0 at EOF. */
static int take(int fd, char **buf, size_t *len) {
  char chunk[4096];
  ssize_t n = read(fd, chunk, sizeof(chunk));

  if (n < 0 && errno == EINTR)
    return 1;
  if (n <= 0)
    return 0;
  *buf = realloc(*buf, *len + (size_t)n + 1);
  memcpy(*buf + *len, chunk, (size_t)n);
  *len += (size_t)n;
  (*buf)[*len] = '\0';
  return 1;
}

/* Runs the script against `config` and returns its parsed output line. */
static cJSON *run_sdk_client(const char *config) {
  const char *modules = getenv("PH_NODE_MODULES");
  const char *node = getenv("PH_NODE");
  char *out = NULL, *err = NULL;
  size_t olen = 0, elen = 0;
  int opipe[2], epipe[2], status, open = 2;
  long long deadline = th_now_ms() + RUN_MS;
  cJSON *result;
  pid_t pid;

  cr_assert(modules != NULL && modules[0] != '\0',
            "PH_NODE_MODULES is not set: it must name the node_modules "
            "directory holding @modelcontextprotocol/sdk (scripts/setup.sh "
            "installs it into .deps/npm/node_modules)");
  if (node == NULL || node[0] == '\0')
    node = "node";
  cr_assert_eq(pipe(opipe), 0);
  cr_assert_eq(pipe(epipe), 0);
  pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    dup2(opipe[1], 1);
    dup2(epipe[1], 2);
    close(opipe[0]);
    close(opipe[1]);
    close(epipe[0]);
    close(epipe[1]);
    execlp(node, node, SCRIPT, th_binary(), config, PH_SOURCE_DIR,
           (char *)NULL);
    fprintf(stderr, "cannot run %s: %s\n", node, strerror(errno));
    _exit(127);
  }
  close(opipe[1]);
  close(epipe[1]);
  {
    struct pollfd fds[2] = {{opipe[0], POLLIN, 0}, {epipe[0], POLLIN, 0}};

    while (open > 0 && th_now_ms() < deadline) {
      if (poll(fds, 2, (int)(deadline - th_now_ms())) <= 0)
        continue;
      if (fds[0].fd >= 0 && (fds[0].revents & (POLLIN | POLLHUP)) &&
          !take(fds[0].fd, &out, &olen)) {
        fds[0].fd = -1;
        open--;
      }
      if (fds[1].fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP)) &&
          !take(fds[1].fd, &err, &elen)) {
        fds[1].fd = -1;
        open--;
      }
    }
  }
  close(opipe[0]);
  close(epipe[0]);
  if (open > 0)
    kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  cr_assert_eq(open, 0, "the SDK client did not finish in %d ms", RUN_MS);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "the SDK client failed (status %d)\nstdout:\n%s\nstderr:\n%s",
            status, out ? out : "", err ? err : "");
  result = out ? cJSON_Parse(out) : NULL;
  cr_assert_not_null(result, "the SDK client printed no JSON: %s",
                     out ? out : "");
  free(out);
  free(err);
  return result;
}

/* Whether the JSON array of strings at `path` holds `want`. */
static int has_string(const cJSON *j, const char *path, const char *want) {
  const cJSON *item;

  cJSON_ArrayForEach(item, th_get(j, path)) {
    if (cJSON_IsString(item) && strcmp(item->valuestring, want) == 0)
      return 1;
  }
  return 0;
}

TestSuite(sdk_client, .timeout = 60, .fini = th_remove_config);

Test(sdk_client, official_sdk_client_drives_the_host) {
  const cJSON *note;
  double last = 0;
  int notes = 0;
  cJSON *r;

  r = run_sdk_client(th_config(NULL, NULL, "{'plugin':'ok','prefix':'ok'}"));

  cr_expect_str_eq(th_str(r, "serverVersion.name"), "plughost");
  cr_expect(cJSON_IsObject(th_get(r, "capabilities.tools")));
  cr_expect(cJSON_IsObject(th_get(r, "capabilities.resources")));
  cr_expect(cJSON_IsObject(th_get(r, "capabilities.prompts")));

  cr_expect(has_string(r, "tools", "ok_echo"));
  cr_expect(has_string(r, "tools", "ok_add"));
  cr_expect_eq(cJSON_GetArraySize(th_get(r, "tools")), 5);
  cr_expect_str_eq(th_str(r, "echo.content.0.text"), "hello from the SDK");
  cr_expect(!cJSON_IsTrue(th_get(r, "echo.isError")));
  cr_expect_eq(th_num(r, "add.structuredContent.sum"), 5);
  cr_expect(cJSON_IsTrue(th_get(r, "invalid.isError")));
  cr_expect_not_null(strstr(th_str(r, "invalid.content.0.text"), "text"));

  cr_expect_str_eq(th_str(r, "progress.content.0.text"),
                   "progress: done in 3 steps");
  cJSON_ArrayForEach(note, th_get(r, "progressNotes")) {
    cr_expect_gt(th_num(note, "progress"), last);
    last = th_num(note, "progress");
    notes++;
  }
  cr_expect_eq(notes, 3, "the SDK saw %d progress notifications", notes);

  cr_expect(has_string(r, "resources", "ok://hello"));
  cr_expect(has_string(r, "templates", "ok://items/{id}"));
  cr_expect_str_eq(th_str(r, "hello.contents.0.text"), "Hello from ok");
  cr_expect_str_eq(th_str(r, "item.contents.0.text"), "7");

  cr_expect(has_string(r, "prompts", "ok_greet"));
  cr_expect_str_eq(th_str(r, "prompt.messages.0.content.text"),
                   "Please greet Ada warmly.");
  cr_expect(has_string(r, "completion.completion.values", "alice"));
  cr_expect(has_string(r, "completion.completion.values", "albert"));

  cr_expect_eq(th_num(r, "unknownTool.code"), -32602);
  cr_expect_eq(th_num(r, "unknownResource.code"), -32002);
  cJSON_Delete(r);
}
