/* test_files.c: every tool of the files plugin on the real host, over
 * stdio and Streamable HTTP, against what the reference filesystem server
 * documents (argument names, result text), plus what this plugin adds or
 * fixes: read-only mode lists no writing tool, edits are unique-match and
 * keep line endings, move and copy never overwrite, writes are atomic (a
 * size-limit hit leaves the old file), the client's roots narrow the
 * allowed directories, two instances share a department, and a change to
 * a subscribed file is notified. The hostile inputs are in
 * test_files_sandbox.c. */
#include "files_fixture.h"
#include "http_host.h"

#include <signal.h>
#include <sys/resource.h>

static fx X;

static void teardown(void) {
  fx_teardown(&X);
}

TestSuite(files, .fini = teardown, .timeout = 60);

/* A tree of ordinary files to work on. */
static void sample(fx *x) {
  fx_setup(x);
  fx_puts(x->root, "notes.txt", "one\ntwo\nthree\nfour\nfive\n");
  fx_puts(x->root, "readme.md", "# Title\n\nSome text.\n");
  fx_mkdir(x->root, "src");
  fx_puts(x->root, "src/main.c", "int main(void) {\n  return 0;\n}\n");
  fx_puts(x->root, "src/util.c", "/* util */\nint util(void) { return 1; }\n");
  fx_mkdir(x->root, "src/deep");
  fx_puts(x->root, "src/deep/more.txt", "deep text\n");
  fx_mkdir(x->root, "node_modules");
  fx_puts(x->root, "node_modules/dep.txt", "dependency\n");
  fx_write(x->root, "pixel.png", "\x89PNG\r\n\x1a\n", 8);
  fx_write(x->root, "tone.wav", "RIFF\0\0\0\0WAVE", 12);
  fx_write(x->root, "blob.bin", "\x00\x01\x02", 3);
  fx_puts(x->root, ".env", "SECRET=1\n");
}

static const char *sc_str(const cJSON *res, const char *path) {
  char full[256];

  snprintf(full, sizeof(full), "result.structuredContent.%s", path);
  return th_str(res, full);
}

static double sc_num(const cJSON *res, const char *path) {
  char full[256];

  snprintf(full, sizeof(full), "result.structuredContent.%s", path);
  return th_num(res, full);
}

static void expect_ok(const cJSON *res, const char *what) {
  cr_expect(!fx_is_error(res) && th_get(res, "result") != NULL, "%s failed: %s",
            what, cJSON_PrintUnformatted(res));
}

Test(files, tools_listed_with_schemas_and_annotations) {
  static const char *const names[] = {
      "read_text", "read_media",      "read_many", "write", "edit",   "mkdir",
      "list",      "list_with_sizes", "tree",      "move",  "search", "grep",
      "info",      "roots",           "delete",    "copy"};
  cJSON *res, *t;
  size_t i;
  int found;

  sample(&X);
  fx_start(&X, NULL, 0);
  res = th_request(X.h, "tools/list", "{}", FX_WAIT_MS);
  for (i = 0; i < sizeof(names) / sizeof(*names); i++) {
    char want[64];
    snprintf(want, sizeof(want), "files_%s", names[i]);
    found = 0;
    cJSON_ArrayForEach(t, (cJSON *)th_get(res, "result.tools")) {
      if (strcmp(th_str(t, "name"), want) != 0)
        continue;
      found = 1;
      cr_expect_not_null(th_str(t, "title"), "%s: no title", want);
      cr_expect(strlen(th_str(t, "description")) > 60, "%s: thin description",
                want);
      cr_expect_not_null(th_get(t, "inputSchema"), "%s", want);
      cr_expect_not_null(th_get(t, "outputSchema"), "%s", want);
      cr_expect(cJSON_IsFalse(th_get(t, "annotations.openWorldHint")), "%s",
                want);
      if (strcmp(names[i], "delete") == 0 || strcmp(names[i], "write") == 0)
        cr_expect(cJSON_IsTrue(th_get(t, "annotations.destructiveHint")));
      if (strcmp(names[i], "read_text") == 0)
        cr_expect(cJSON_IsTrue(th_get(t, "annotations.readOnlyHint")));
    }
    cr_expect(found, "%s is not listed", want);
  }
  cJSON_Delete(res);
}

Test(files, read_only_lists_no_writing_tool) {
  static const char *const writers[] = {"write", "edit",   "mkdir",
                                        "move",  "delete", "copy"};
  cJSON *res, *t;
  size_t i;
  int n = 0;

  sample(&X);
  fx_start(&X, "\"read_only\":true", 0);
  res = th_request(X.h, "tools/list", "{}", FX_WAIT_MS);
  cJSON_ArrayForEach(t, (cJSON *)th_get(res, "result.tools")) {
    n++;
    for (i = 0; i < sizeof(writers) / sizeof(*writers); i++) {
      char name[64];
      snprintf(name, sizeof(name), "files_%s", writers[i]);
      cr_expect_str_neq(th_str(t, "name"), name, "%s listed in read-only",
                        name);
    }
  }
  cr_expect_eq(n, 10);
  cJSON_Delete(res);
  res = fx_call(&X, "read_text", "{\"path\":\"notes.txt\"}");
  expect_ok(res, "read_text");
  cJSON_Delete(res);
}

Test(files, read_text_windows) {
  cJSON *res;

  sample(&X);
  fx_start(&X, NULL, 0);
  res = fx_call(&X, "read_text", "{\"path\":\"notes.txt\"}");
  cr_expect_str_eq(fx_text(res), "one\ntwo\nthree\nfour\nfive\n");
  cr_expect_eq(sc_num(res, "totalLines"), 5);
  cJSON_Delete(res);
  res = fx_call(&X, "read_text", "{\"path\":\"notes.txt\",\"head\":2}");
  cr_expect_str_eq(fx_text(res), "one\ntwo\n");
  cJSON_Delete(res);
  res = fx_call(&X, "read_text", "{\"path\":\"notes.txt\",\"tail\":2}");
  cr_expect_str_eq(fx_text(res), "four\nfive\n");
  cJSON_Delete(res);
  res = fx_call(&X, "read_text",
                "{\"path\":\"notes.txt\",\"offset\":2,\"limit\":2}");
  cr_expect_str_eq(fx_text(res), "two\nthree\n");
  cJSON_Delete(res);
  res = fx_call(&X, "read_text",
                "{\"path\":\"notes.txt\",\"head\":1,\"tail\":1}");
  cr_expect(fx_is_error(res));
  cr_expect(strstr(fx_text(res), "both head and tail") != NULL);
  cJSON_Delete(res);
  /* An absolute path inside the root reads the same. */
  res = fx_callf(&X, "read_text", "{\"path\":\"%s/src/main.c\"}", X.root);
  cr_expect(strstr(fx_text(res), "return 0;") != NULL, "%s", fx_text(res));
  cJSON_Delete(res);
}

Test(files, read_media_kinds) {
  cJSON *res;

  sample(&X);
  fx_start(&X, NULL, 0);
  res = fx_call(&X, "read_media", "{\"path\":\"pixel.png\"}");
  cr_expect_str_eq(th_str(res, "result.content.0.type"), "image");
  cr_expect_str_eq(th_str(res, "result.content.0.mimeType"), "image/png");
  cr_expect_str_eq(th_str(res, "result.content.0.data"), "iVBORw0KGgo=");
  cJSON_Delete(res);
  res = fx_call(&X, "read_media", "{\"path\":\"tone.wav\"}");
  cr_expect_str_eq(th_str(res, "result.content.0.type"), "audio");
  cr_expect_str_eq(th_str(res, "result.content.0.mimeType"), "audio/wav");
  cJSON_Delete(res);
  res = fx_call(&X, "read_media", "{\"path\":\"blob.bin\"}");
  cr_expect_str_eq(th_str(res, "result.content.0.type"), "resource");
  cr_expect_str_eq(th_str(res, "result.content.0.resource.blob"), "AAEC");
  cr_expect(strncmp(th_str(res, "result.content.0.resource.uri"), "file:///",
                    8) == 0);
  cJSON_Delete(res);
  /* A binary file through read_text: refused, with the hint. */
  res = fx_call(&X, "read_text", "{\"path\":\"blob.bin\"}");
  cr_expect(fx_is_error(res) && strstr(fx_text(res), "read_media"));
  cJSON_Delete(res);
}

Test(files, read_many_one_failure_does_not_fail_the_rest) {
  cJSON *res;

  sample(&X);
  fx_start(&X, NULL, 0);
  res = fx_call(&X, "read_many",
                "{\"paths\":[\"notes.txt\",\"missing.txt\",\".env\","
                "\"readme.md\"]}");
  expect_ok(res, "read_many");
  cr_expect(strstr(fx_text(res), "notes.txt:\none\n") != NULL);
  cr_expect(strstr(fx_text(res), "missing.txt: Error - ") != NULL);
  cr_expect(strstr(fx_text(res), "# Title") != NULL);
  cr_expect_not_null(sc_str(res, "files.1.error"));
  cr_expect(strstr(sc_str(res, "files.2.error"), "hidden") != NULL);
  cr_expect_str_eq(sc_str(res, "files.3.content"), "# Title\n\nSome text.\n");
  cJSON_Delete(res);
}

/* Names in dir starting with the temporary prefix: none may be left. */
static int temporaries(const char *dir) {
  struct dirent *de;
  DIR *d = opendir(dir);
  int n = 0;

  while (d != NULL && (de = readdir(d)) != NULL)
    n += strncmp(de->d_name, ".ph-", 4) == 0;
  if (d != NULL)
    closedir(d);
  return n;
}

Test(files, write_creates_replaces_and_keeps_the_mode) {
  char p[PATH_MAX], *data;
  struct stat st;
  size_t len;
  cJSON *res;

  sample(&X);
  fx_path(p, X.root, "notes.txt");
  chmod(p, 0600);
  fx_start(&X, NULL, 0);
  res = fx_call(&X, "write",
                "{\"path\":\"notes.txt\",\"content\":\"replaced\\n\"}");
  expect_ok(res, "write");
  cr_expect(strstr(fx_text(res), "Successfully wrote to") != NULL);
  cJSON_Delete(res);
  data = fx_read(X.root, "notes.txt", &len);
  cr_expect_str_eq(data, "replaced\n");
  free(data);
  stat(p, &st);
  cr_expect_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
  res =
      fx_call(&X, "write", "{\"path\":\"src/new.txt\",\"content\":\"fresh\"}");
  expect_ok(res, "write new");
  cr_expect_eq(sc_num(res, "bytes"), 5);
  cJSON_Delete(res);
  data = fx_read(X.root, "src/new.txt", &len);
  cr_expect_str_eq(data, "fresh");
  free(data);
  cr_expect_eq(temporaries(X.root), 0);
}

/* A write past RLIMIT_FSIZE (the same failure as a full disk, ENOSPC's
 * cousin EFBIG) leaves the old file whole and no temporary behind. */
Test(files, write_hitting_the_file_size_limit_leaves_the_old_file) {
  struct rlimit old, small;
  char *data, *big;
  size_t len;
  cJSON *res;

  sample(&X);
  cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
  /* The soft limit only, so that the test may raise it again. */
  small.rlim_cur = 64 * 1024;
  small.rlim_max = old.rlim_max;
  /* Ignored signals stay ignored across exec: SIGXFSZ would kill the host
   * instead of failing its write. */
  signal(SIGXFSZ, SIG_IGN);
  fx_start(&X, NULL, 0);
  signal(SIGXFSZ, SIG_DFL);
  /* On the running host: it copies its plugins at start. */
  cr_assert_eq(prlimit(th_pid(X.h), RLIMIT_FSIZE, &small, NULL), 0);
  big = malloc(200 * 1024 + 64);
  strcpy(big, "{\"path\":\"notes.txt\",\"content\":\"");
  memset(big + strlen(big), 'z', 200 * 1024);
  strcpy(big + strlen("{\"path\":\"notes.txt\",\"content\":\"") + 200 * 1024,
         "\"}");
  res = fx_call(&X, "write", big);
  cr_expect(fx_is_error(res), "%.300s", cJSON_PrintUnformatted(res));
  cr_expect(strstr(fx_text(res), "was not changed") != NULL, "%s",
            fx_text(res));
  cJSON_Delete(res);
  free(big);
  data = fx_read(X.root, "notes.txt", &len);
  cr_expect_str_eq(data, "one\ntwo\nthree\nfour\nfive\n");
  free(data);
  cr_expect_eq(temporaries(X.root), 0);
}

Test(files, edit_unique_match_fallback_dry_run_and_line_endings) {
  char *data;
  size_t len;
  cJSON *res;

  sample(&X);
  fx_puts(X.root, "dup.txt", "x = 1\ny = 2\nx = 1\n");
  fx_puts(X.root, "crlf.txt", "alpha\r\nbeta\r\ngamma\r\n");
  fx_puts(X.root, "nofinal.txt", "first\nlast");
  fx_puts(X.root, "indent.py", "def f():\n    if a:\n        return 1\n");
  fx_start(&X, NULL, 0);
  res = fx_call(&X, "edit",
                "{\"path\":\"notes.txt\",\"edits\":[{\"oldText\":\"two\","
                "\"newText\":\"TWO\"}]}");
  expect_ok(res, "edit");
  cr_expect(strstr(fx_text(res), "```diff\n") != NULL);
  cr_expect(strstr(sc_str(res, "diff"), "-two\n+TWO\n") != NULL, "%s",
            sc_str(res, "diff"));
  cr_expect(strstr(sc_str(res, "diff"), "@@ -1,5 +1,5 @@") != NULL, "%s",
            sc_str(res, "diff"));
  cJSON_Delete(res);
  /* Ambiguous: refused, naming the lines; replaceAll changes both. */
  res = fx_call(&X, "edit",
                "{\"path\":\"dup.txt\",\"edits\":[{\"oldText\":\"x = 1\","
                "\"newText\":\"x = 3\"}]}");
  cr_expect(fx_is_error(res));
  cr_expect(strstr(fx_text(res), "matches 2 places, at lines 1 and 3") != NULL,
            "%s", fx_text(res));
  cJSON_Delete(res);
  res = fx_call(&X, "edit",
                "{\"path\":\"dup.txt\",\"edits\":[{\"oldText\":\"x = 1\","
                "\"newText\":\"x = 3\",\"replaceAll\":true}]}");
  expect_ok(res, "replaceAll");
  cJSON_Delete(res);
  data = fx_read(X.root, "dup.txt", &len);
  cr_expect_str_eq(data, "x = 3\ny = 2\nx = 3\n");
  free(data);
  /* dryRun: a diff and no change. */
  res = fx_call(&X, "edit",
                "{\"path\":\"readme.md\",\"dryRun\":true,\"edits\":[{"
                "\"oldText\":\"Some text.\",\"newText\":\"Other.\"}]}");
  expect_ok(res, "dryRun");
  cr_expect(strstr(sc_str(res, "diff"), "+Other.") != NULL);
  cJSON_Delete(res);
  data = fx_read(X.root, "readme.md", &len);
  cr_expect_str_eq(data, "# Title\n\nSome text.\n");
  free(data);
  /* CRLF stays CRLF; edit texts written with \n match. */
  res = fx_call(&X, "edit",
                "{\"path\":\"crlf.txt\",\"edits\":[{\"oldText\":\"alpha\\n"
                "beta\",\"newText\":\"ALPHA\\nBETA\"}]}");
  expect_ok(res, "crlf");
  cJSON_Delete(res);
  data = fx_read(X.root, "crlf.txt", &len);
  cr_expect_str_eq(data, "ALPHA\r\nBETA\r\ngamma\r\n");
  free(data);
  /* No final newline stays without one. */
  res = fx_call(&X, "edit",
                "{\"path\":\"nofinal.txt\",\"edits\":[{\"oldText\":\"last\","
                "\"newText\":\"LAST\"}]}");
  expect_ok(res, "nofinal");
  cr_expect(strstr(sc_str(res, "diff"), "\\ No newline at end of file") !=
            NULL);
  cJSON_Delete(res);
  data = fx_read(X.root, "nofinal.txt", &len);
  cr_expect_str_eq(data, "first\nLAST");
  free(data);
  /* Whitespace-tolerant fallback, keeping the file's indentation. */
  res = fx_call(&X, "edit",
                "{\"path\":\"indent.py\",\"edits\":[{\"oldText\":\"if a:\\n"
                "    return 1\",\"newText\":\"if b:\\n    return 2\"}]}");
  expect_ok(res, "fallback");
  cJSON_Delete(res);
  data = fx_read(X.root, "indent.py", &len);
  cr_expect_str_eq(data, "def f():\n    if b:\n        return 2\n");
  free(data);
}

Test(files, mkdir_list_sizes_tree) {
  cJSON *res;

  sample(&X);
  fx_start(&X, NULL, 0);
  res = fx_call(&X, "mkdir", "{\"path\":\"a/b/c\"}");
  expect_ok(res, "mkdir");
  cr_expect(cJSON_IsTrue(th_get(res, "result.structuredContent.created")));
  cJSON_Delete(res);
  res = fx_call(&X, "mkdir", "{\"path\":\"a/b/c\"}");
  expect_ok(res, "mkdir again");
  cJSON_Delete(res);
  res = fx_call(&X, "list", "{\"path\":\".\"}");
  cr_expect(strstr(fx_text(res), "[DIR] a\n") != NULL, "%s", fx_text(res));
  cr_expect(strstr(fx_text(res), "[FILE] notes.txt\n") != NULL);
  cr_expect(strstr(fx_text(res), ".env") == NULL, "hidden file listed");
  cJSON_Delete(res);
  res = fx_call(&X, "list_with_sizes", "{\"path\":\".\",\"sortBy\":\"size\"}");
  cr_expect_str_eq(sc_str(res, "entries.0.name"), "notes.txt", "%s",
                   fx_text(res));
  cr_expect(strstr(fx_text(res), "Combined size:") != NULL);
  cr_expect_eq(sc_num(res, "totalDirectories"), 3);
  cJSON_Delete(res);
  res = fx_call(&X, "tree",
                "{\"path\":\".\",\"excludePatterns\":[\"node_modules\"]}");
  cr_expect(strstr(fx_text(res), "\"name\":\"more.txt\"") != NULL);
  cr_expect(strstr(fx_text(res), "node_modules") == NULL);
  cJSON_Delete(res);
  res = fx_call(&X, "tree", "{\"path\":\"src\",\"maxDepth\":1}");
  cr_expect(strstr(fx_text(res), "more.txt") == NULL, "%s", fx_text(res));
  cr_expect(strstr(fx_text(res), "\"name\":\"deep\"") != NULL);
  cJSON_Delete(res);
}

Test(files, move_copy_delete_never_overwrite) {
  char p[PATH_MAX];
  cJSON *res;

  sample(&X);
  fx_start(&X, NULL, 0);
  res = fx_call(&X, "move",
                "{\"source\":\"notes.txt\",\"destination\":\"readme.md\"}");
  cr_expect(fx_is_error(res) && strstr(fx_text(res), "never overwrites"));
  cJSON_Delete(res);
  res = fx_call(&X, "move", "{\"source\":\"src\",\"destination\":\"code\"}");
  expect_ok(res, "move dir");
  cr_expect(strstr(fx_text(res), "Successfully moved") != NULL);
  cJSON_Delete(res);
  fx_path(p, X.root, "code/main.c");
  cr_expect(access(p, F_OK) == 0);
  res = fx_call(&X, "copy",
                "{\"source\":\"notes.txt\",\"destination\":\"code/n.txt\"}");
  expect_ok(res, "copy");
  cJSON_Delete(res);
  res = fx_call(&X, "copy",
                "{\"source\":\"notes.txt\",\"destination\":\"readme.md\"}");
  cr_expect(fx_is_error(res) && strstr(fx_text(res), "already exists"));
  cJSON_Delete(res);
  res = fx_call(&X, "delete", "{\"path\":\"code/n.txt\"}");
  expect_ok(res, "delete");
  cJSON_Delete(res);
  fx_path(p, X.root, "code/n.txt");
  cr_expect(access(p, F_OK) != 0);
  res = fx_call(&X, "delete", "{\"path\":\"code\"}");
  cr_expect(fx_is_error(res) && strstr(fx_text(res), "never a directory"));
  cJSON_Delete(res);
}

Test(files, search_grep_info_roots) {
  cJSON *res;

  sample(&X);
  fx_start(&X, "\"max_entries\":3", 0);
  res = fx_call(&X, "search", "{\"path\":\".\",\"pattern\":\"*.c\"}");
  cr_expect(strstr(fx_text(res), "/src/main.c\n") != NULL, "%s", fx_text(res));
  cr_expect(strstr(fx_text(res), "/src/util.c\n") != NULL);
  cJSON_Delete(res);
  res = fx_call(&X, "search",
                "{\"path\":\".\",\"pattern\":\"**/*.txt\","
                "\"excludePatterns\":[\"node_modules\"]}");
  cr_expect(strstr(fx_text(res), "more.txt") != NULL, "%s", fx_text(res));
  cr_expect(strstr(fx_text(res), "dep.txt") == NULL);
  cJSON_Delete(res);
  res = fx_call(&X, "search", "{\"path\":\".\",\"pattern\":\"*\"}");
  cr_expect(cJSON_IsTrue(th_get(res, "result.structuredContent.truncated")),
            "max_entries did not cap: %s", fx_text(res));
  cJSON_Delete(res);
  res = fx_call(&X, "grep", "{\"path\":\".\",\"pattern\":\"return\"}");
  cr_expect(strstr(fx_text(res), "/src/main.c:2:   return 0;") != NULL, "%s",
            fx_text(res));
  cJSON_Delete(res);
  res = fx_call(&X, "grep",
                "{\"path\":\"src\",\"pattern\":\"^int \\\\w+\",\"regex\":true,"
                "\"include\":\"util.*\"}");
  cr_expect_eq(
      cJSON_GetArraySize(th_get(res, "result.structuredContent.matches")), 1,
      "%s", fx_text(res));
  cr_expect_eq(sc_num(res, "matches.0.line"), 2);
  cJSON_Delete(res);
  res = fx_call(&X, "grep",
                "{\"path\":\".\",\"pattern\":\"TITLE\",\"ignoreCase\":true}");
  cr_expect(strstr(fx_text(res), "readme.md:1: # Title") != NULL, "%s",
            fx_text(res));
  cJSON_Delete(res);
  res = fx_call(&X, "info", "{\"path\":\"notes.txt\"}");
  cr_expect_eq(sc_num(res, "size"), 24);
  cr_expect_str_eq(sc_str(res, "type"), "file");
  cr_expect_str_eq(sc_str(res, "permissions"), "644");
  cr_expect(strstr(fx_text(res), "modified: ") != NULL);
  cJSON_Delete(res);
  res = fx_call(&X, "roots", "{}");
  cr_expect(strstr(fx_text(res), "Allowed directories:\n") != NULL);
  cr_expect(strstr(fx_text(res), X.root) != NULL);
  cJSON_Delete(res);
}

/* The client declares roots: a root inside the configured one narrows
 * it; one outside it adds nothing. */
Test(files, client_roots_narrow_the_sandbox) {
  char reply[PATH_MAX * 2 + 256], *id;
  cJSON *req, *res;

  sample(&X);
  fx_start_with(&X, NULL, 0, NULL, "2025-06-18", "{\"roots\":{}}");
  snprintf(reply, sizeof(reply),
           "{\"name\":\"files_read_text\",\"arguments\":{\"path\":"
           "\"%s/notes.txt\"}}",
           X.root);
  th_request_async(X.h, "\"r1\"", "tools/call", reply);
  req = th_recv(X.h, FX_WAIT_MS);
  cr_assert_not_null(req);
  cr_assert_str_eq(th_str(req, "method"), "roots/list", "%s",
                   cJSON_PrintUnformatted(req));
  id = cJSON_PrintUnformatted(th_get(req, "id"));
  snprintf(reply, sizeof(reply),
           "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"roots\":["
           "{\"uri\":\"file://%s/src\"},{\"uri\":\"file://%s\"}]}}",
           id, X.root, X.outside);
  th_send(X.h, reply);
  res = th_response(X.h, "\"r1\"", FX_WAIT_MS);
  cr_assert_not_null(res);
  /* notes.txt is in the configured root but not in the client's. */
  cr_expect(fx_is_error(res), "%s", cJSON_PrintUnformatted(res));
  cr_expect(strstr(fx_text(res), "outside the allowed directories") != NULL,
            "%s", fx_text(res));
  cr_expect(strstr(fx_text(res), "/root/src") != NULL, "%s", fx_text(res));
  cJSON_Delete(res);
  cJSON_Delete(req);
  free(id);
}

Test(files, two_instances_in_one_department) {
  char more[PATH_MAX + 256], reports[PATH_MAX];
  cJSON *res, *t;
  int docs_write = 0, reports_write = 0;

  sample(&X);
  fx_path(reports, X.base, "reports");
  cr_assert_eq(mkdir(reports, 0755), 0);
  snprintf(more, sizeof(more),
           "{\"plugin\":\"files\",\"prefix\":\"reports\",\"config\":{"
           "\"roots\":[\"%s\"],\"extensions\":[\"txt\",\"json\",\"csv\","
           "\"md\"]}}",
           reports);
  fx_start_with(&X, "\"read_only\":true", 0, more, NULL, NULL);
  res = th_request(X.h, "tools/list", "{}", FX_WAIT_MS);
  cJSON_ArrayForEach(t, (cJSON *)th_get(res, "result.tools")) {
    docs_write |= strcmp(th_str(t, "name"), "files_write") == 0;
    reports_write |= strcmp(th_str(t, "name"), "reports_write") == 0;
  }
  cJSON_Delete(res);
  cr_expect(!docs_write && reports_write);
  res = th_request(X.h, "tools/call",
                   "{\"name\":\"reports_write\",\"arguments\":{\"path\":"
                   "\"q1.csv\",\"content\":\"a,b\\n\"}}",
                   FX_WAIT_MS);
  expect_ok(res, "reports_write");
  cJSON_Delete(res);
  res = th_request(X.h, "tools/call",
                   "{\"name\":\"reports_write\",\"arguments\":{\"path\":"
                   "\"run.sh\",\"content\":\"rm -rf /\"}}",
                   FX_WAIT_MS);
  cr_expect(fx_is_error(res) &&
                strstr(fx_text(res), "does not have an allowed extension"),
            "%s", fx_text(res));
  cJSON_Delete(res);
}

Test(files, resources_read_and_subscribe) {
  char uri[PATH_MAX + 64], params[PATH_MAX + 128];
  cJSON *res, *note;

  sample(&X);
  fx_start(&X, NULL, 0);
  snprintf(uri, sizeof(uri), "file://%s/notes.txt", X.root);
  snprintf(params, sizeof(params), "{\"uri\":\"%s\"}", uri);
  res = th_request(X.h, "resources/read", params, FX_WAIT_MS);
  cr_expect_str_eq(th_str(res, "result.contents.0.text"),
                   "one\ntwo\nthree\nfour\nfive\n", "%s",
                   cJSON_PrintUnformatted(res));
  cr_expect_str_eq(th_str(res, "result.contents.0.mimeType"), "text/plain");
  cJSON_Delete(res);
  res = th_request(X.h, "resources/subscribe", params, FX_WAIT_MS);
  cJSON_Delete(res);
  /* Another process changes the file: the subscriber hears of it. */
  fx_puts(X.root, "notes.txt", "changed\n");
  note = th_notification(X.h, "notifications/resources/updated", 5000);
  cr_assert_not_null(note, "no resources/updated; stderr:\n%s", th_stderr(X.h));
  cr_expect_str_eq(th_str(note, "params.uri"), uri);
  cJSON_Delete(note);
  /* Outside the root: an error, not a read. */
  snprintf(params, sizeof(params), "{\"uri\":\"file://%s/canary.txt\"}",
           X.outside);
  res = th_request(X.h, "resources/read", params, FX_WAIT_MS);
  cr_expect_not_null(th_get(res, "error"), "%s", cJSON_PrintUnformatted(res));
  cJSON_Delete(res);
}

/* The same tools over Streamable HTTP. */
Test(files, over_http) {
  th_http_host host = {0};
  char *cfg, *text, *r, *sid, hdr[256], body[PATH_MAX + 512];

  sample(&X);
  cr_assert(asprintf(&text,
                     "{\"plugin_dir\":\"%s/plugins\",\"departments\":{"
                     "\"default\":{\"plugins\":[{\"plugin\":\"files\","
                     "\"config\":{\"roots\":[\"%s\"]}}]}}}",
                     PH_BUILD_DIR, X.root) > 0);
  cfg = th_write_temp(text, ".json");
  free(text);
  th_http_start(&host, cfg, 10000);
  r = th_http(host.port, "POST", "",
              "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
              "\"params\":{\"protocolVersion\":\"2025-11-25\","
              "\"capabilities\":{},\"clientInfo\":{\"name\":\"t\","
              "\"version\":\"1\"}}}",
              NULL, 3000);
  sid = th_http_session_id(r);
  cr_assert_not_null(sid, "%s", r);
  free(r);
  snprintf(hdr, sizeof(hdr),
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n", sid);
  free(th_http(host.port, "POST", hdr,
               "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/"
               "initialized\"}",
               NULL, 1000));
  r = th_http(host.port, "POST", hdr,
              "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\","
              "\"params\":{\"name\":\"files_read_text\",\"arguments\":{"
              "\"path\":\"notes.txt\",\"head\":1}}}",
              NULL, 3000);
  cr_expect(strstr(r, "\"text\":\"one\\n\"") != NULL, "%s", r);
  free(r);
  r = th_http(host.port, "POST", hdr,
              "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\","
              "\"params\":{\"name\":\"files_write\",\"arguments\":{"
              "\"path\":\"http.txt\",\"content\":\"via http\"}}}",
              NULL, 3000);
  cr_expect(strstr(r, "Successfully wrote to") != NULL, "%s", r);
  free(r);
  snprintf(body, sizeof(body),
           "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\","
           "\"params\":{\"name\":\"files_read_text\",\"arguments\":{"
           "\"path\":\"%s/canary.txt\"}}}",
           X.outside);
  r = th_http(host.port, "POST", hdr, body, NULL, 3000);
  cr_expect(strstr(r, "Access denied") != NULL && strstr(r, "\"isError\""),
            "%s", r);
  free(r);
  th_http_stop(&host);
  unlink(cfg);
  free(cfg);
  free(sid);
}

/* The fs service, as a domain plugin sees it (tests/plugins/fsclient.c):
 * the same sandbox, the same refusals, writes atomic. */
Test(files, fs_service_for_domain_plugins) {
  char dir[PATH_MAX], cmd[3 * PATH_MAX], *text, *data;
  size_t len;
  cJSON *res;

  sample(&X);
  fx_path(dir, X.base, "plugins");
  cr_assert_eq(mkdir(dir, 0755), 0);
  snprintf(cmd, sizeof(cmd), "cp '%s/plugins/files.so' '%s/fsclient.so' '%s'",
           PH_BUILD_DIR, PH_TEST_PLUGIN_DIR, dir);
  cr_assert_eq(system(cmd), 0);
  cr_assert(asprintf(&text,
                     "{\"plugin_dir\":\"%s\",\"departments\":{\"default\":{"
                     "\"plugins\":[{\"plugin\":\"files\",\"config\":{"
                     "\"roots\":[\"%s\"]}},{\"plugin\":\"fsclient\"}]}}}",
                     dir, X.root) > 0);
  X.config = th_write_temp(text, ".json");
  free(text);
  X.h = th_start(X.config, NULL);
  cJSON_Delete(th_initialize(X.h, "2025-06-18", NULL));
#define FS(req)                                                                \
  th_request(X.h, "tools/call",                                                \
             "{\"name\":\"fsclient_call\",\"arguments\":{\"request\":" req     \
             "}}",                                                             \
             FX_WAIT_MS)
  res = FS("{\"op\":\"write\",\"path\":\"reports/q1.csv\",\"parents\":true,"
           "\"content\":\"region,total\\nEMEA,10\\n\"}");
  expect_ok(res, "fs write");
  cJSON_Delete(res);
  data = fx_read(X.root, "reports/q1.csv", &len);
  cr_expect_str_eq(data, "region,total\nEMEA,10\n");
  free(data);
  res = FS("{\"op\":\"read\",\"path\":\"reports/q1.csv\"}");
  cr_expect_str_eq(sc_str(res, "content"), "region,total\nEMEA,10\n", "%s",
                   cJSON_PrintUnformatted(res));
  cJSON_Delete(res);
  res = FS("{\"op\":\"list\",\"path\":\"reports\"}");
  cr_expect_str_eq(sc_str(res, "entries.0.name"), "q1.csv");
  cJSON_Delete(res);
  res = FS("{\"op\":\"create\",\"path\":\"reports/q1.csv\",\"content\":\"x\"}");
  cr_expect(fx_is_error(res) && strstr(fx_text(res), "already exists"), "%s",
            cJSON_PrintUnformatted(res));
  cJSON_Delete(res);
  res = FS("{\"op\":\"read\",\"path\":\"../outside/canary.txt\"}");
  cr_expect(fx_is_error(res) && strstr(fx_text(res), "Access denied"), "%s",
            cJSON_PrintUnformatted(res));
  cJSON_Delete(res);
  res = FS("{\"op\":\"read\",\"path\":\".env\"}");
  cr_expect(fx_is_error(res) && strstr(fx_text(res), "hidden"));
  cJSON_Delete(res);
#undef FS
}
