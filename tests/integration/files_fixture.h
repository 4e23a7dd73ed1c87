/* files_fixture.h: what the files plugin's tests share (test_files.c,
 * test_files_sandbox.c): a scratch directory with a root inside it and a
 * canary outside, a config serving files.so on that root, tool calls, and
 * a snapshot of everything outside the root to prove it never changed.
 * Static functions: each test program includes it once. */
#ifndef PH_TEST_FILES_FIXTURE_H
#define PH_TEST_FILES_FIXTURE_H

#include "harness.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FX_WAIT_MS 15000
/* Each program uses some of these helpers. */
#define FX_FN __attribute__((unused)) static

/* The scratch layout: base/root is served, base/outside holds the canary,
 * base/rootx is a sibling whose name starts with the root's. */
typedef struct fx {
  char base[PATH_MAX];
  char root[PATH_MAX];
  char outside[PATH_MAX];
  char *config;
  th_host *h;
} fx;

FX_FN void fx_path(char *out, const char *dir, const char *rel) {
  int n = snprintf(out, PATH_MAX, "%s/%s", dir, rel);

  cr_assert(n > 0 && n < PATH_MAX, "path too long: %s/%s", dir, rel);
}

FX_FN void fx_write(const char *dir, const char *rel, const char *data,
                    size_t len) {
  char p[PATH_MAX];
  int fd;

  fx_path(p, dir, rel);
  fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  cr_assert(fd >= 0, "create %s", p);
  cr_assert_eq(write(fd, data, len), (ssize_t)len);
  close(fd);
}

FX_FN void fx_puts(const char *dir, const char *rel, const char *text) {
  fx_write(dir, rel, text, strlen(text));
}

FX_FN void fx_mkdir(const char *dir, const char *rel) {
  char p[PATH_MAX];

  fx_path(p, dir, rel);
  cr_assert(mkdir(p, 0755) == 0, "mkdir %s", p);
}

FX_FN void fx_link(const char *target, const char *dir, const char *rel) {
  char p[PATH_MAX];

  fx_path(p, dir, rel);
  cr_assert(symlink(target, p) == 0, "symlink %s -> %s", p, target);
}

/* The file's bytes (malloc'd, NUL-terminated), or NULL when absent. */
FX_FN char *fx_read(const char *dir, const char *rel, size_t *len) {
  char p[PATH_MAX], *data;
  struct stat st;
  FILE *f;

  fx_path(p, dir, rel);
  f = fopen(p, "rb");
  if (f == NULL)
    return NULL;
  fstat(fileno(f), &st);
  data = malloc((size_t)st.st_size + 1);
  *len = fread(data, 1, (size_t)st.st_size, f);
  data[*len] = '\0';
  fclose(f);
  return data;
}

/* Every name, type, mode, size and byte under dir, as one text. */
FX_FN void fx_snapshot_dir(FILE *out, const char *dir, const char *rel) {
  char p[PATH_MAX], sub[PATH_MAX], link[PATH_MAX];
  struct dirent **names;
  struct stat st;
  int n, i;
  ssize_t ln;

  if (snprintf(p, sizeof(p), "%s%s%s", dir, rel[0] ? "/" : "", rel) >=
      (int)sizeof(p))
    return;
  n = scandir(p, &names, NULL, alphasort);
  if (n < 0)
    return;
  for (i = 0; i < n; i++) {
    const char *name = names[i]->d_name;
    if (strcmp(name, ".") && strcmp(name, "..")) {
      if (snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", name) >=
          (int)sizeof(sub))
        continue;
      fx_path(p, dir, sub);
      lstat(p, &st);
      fprintf(out, "%s %o %lld\n", sub, (unsigned)st.st_mode,
              (long long)st.st_size);
      if (S_ISDIR(st.st_mode)) {
        fx_snapshot_dir(out, dir, sub);
      } else if (S_ISLNK(st.st_mode)) {
        ln = readlink(p, link, sizeof(link) - 1);
        fprintf(out, "-> %.*s\n", (int)(ln > 0 ? ln : 0), link);
      } else if (S_ISREG(st.st_mode)) {
        size_t len = 0;
        char *data = fx_read(dir, sub, &len);
        fwrite(data, 1, len, out);
        free(data);
        fputc('\n', out);
      }
    }
    free(names[i]);
  }
  free(names);
}

/* A snapshot of everything in base except the root (malloc'd). */
FX_FN char *fx_snapshot(const fx *x) {
  char *text = NULL, p[PATH_MAX];
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);

  fx_snapshot_dir(out, x->outside, "");
  fx_path(p, x->base, "rootx");
  fx_snapshot_dir(out, p, "");
  fclose(out);
  return text;
}

FX_FN void fx_rm_rf(const char *path) {
  char cmd[PATH_MAX + 32];

  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
  cr_assert_eq(system(cmd), 0);
}

/* Makes base, base/root, base/outside (with canary.txt) and base/rootx. */
FX_FN void fx_setup(fx *x) {
  memset(x, 0, sizeof(*x));
  snprintf(x->base, sizeof(x->base), "/tmp/ph-files-XXXXXX");
  cr_assert_not_null(mkdtemp(x->base));
  fx_path(x->root, x->base, "root");
  fx_path(x->outside, x->base, "outside");
  fx_mkdir(x->base, "root");
  fx_mkdir(x->base, "outside");
  fx_mkdir(x->base, "rootx");
  fx_puts(x->outside, "canary.txt", "CANARY outside the root\n");
  fx_mkdir(x->outside, "dir");
  fx_puts(x->outside, "dir/canary.txt", "CANARY in a directory\n");
  fx_puts(x->base, "rootx/canary.txt", "CANARY in a sibling\n");
}

/* Starts the host with one files instance (prefix files) on x->root.
 * extra: more members of the instance's config (JSON after a comma), or
 * NULL. walk: the component walk instead of openat2. More instances go in
 * more_instances (JSON after a comma) or NULL. Results are checked in full
 * (check_results), so every answer is validated against its outputSchema. */
FX_FN void fx_start_with(fx *x, const char *extra, int walk,
                         const char *more_instances, const char *version,
                         const char *caps) {
  char *text;
  cJSON *init;

  cr_assert(asprintf(&text,
                     "{\"plugin_dir\":\"%s/plugins\",\"log_level\":\"info\","
                     "\"check_results\":\"full\","
                     "\"departments\":{\"default\":{\"plugins\":["
                     "{\"plugin\":\"files\",\"prefix\":\"files\",\"config\":{"
                     "\"roots\":[\"%s\"],\"resolve\":\"%s\"%s%s}}%s%s]}}}",
                     PH_BUILD_DIR, x->root, walk ? "walk" : "openat2",
                     extra ? "," : "", extra ? extra : "",
                     more_instances ? "," : "",
                     more_instances ? more_instances : "") > 0);
  x->config = th_write_temp(text, ".json");
  free(text);
  x->h = th_start(x->config, NULL);
  init = th_initialize(x->h, version ? version : "2025-06-18", caps);
  cr_assert_not_null(init, "no initialize answer; stderr:\n%s",
                     th_stderr(x->h));
  cJSON_Delete(init);
}

FX_FN void fx_start(fx *x, const char *extra, int walk) {
  fx_start_with(x, extra, walk, NULL, NULL, NULL);
}

FX_FN void fx_stop(fx *x) {
  int status;

  if (x->h != NULL) {
    /* Under ASan and UBSan a report, or leaks at exit, fail the test. */
    cr_expect(strstr(th_stderr(x->h), "Sanitizer") == NULL &&
                  strstr(th_stderr(x->h), "runtime error") == NULL,
              "sanitizer report:\n%s", th_stderr(x->h));
    status = th_stop(x->h, FX_WAIT_MS);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the host exited with status %d", status);
  }
  x->h = NULL;
  if (x->config != NULL) {
    unlink(x->config);
    free(x->config);
  }
  x->config = NULL;
}

FX_FN void fx_teardown(fx *x) {
  fx_stop(x);
  if (x->base[0] != '\0')
    fx_rm_rf(x->base);
}

/* tools/call of files_<tool> with arguments as JSON text; the response
 * (never NULL: a missing answer fails the test). */
FX_FN cJSON *fx_call(fx *x, const char *tool, const char *args_json) {
  char *params;
  cJSON *res;

  cr_assert(asprintf(&params, "{\"name\":\"files_%s\",\"arguments\":%s}", tool,
                     args_json) > 0);
  res = th_request(x->h, "tools/call", params, FX_WAIT_MS);
  cr_assert_not_null(res, "no answer to %s; stderr:\n%s", params,
                     th_stderr(x->h));
  free(params);
  return res;
}

/* printf-style arguments. */
FX_FN cJSON *fx_callf(fx *x, const char *tool, const char *fmt, ...) {
  char *args;
  va_list ap;
  cJSON *res;

  va_start(ap, fmt);
  cr_assert(vasprintf(&args, fmt, ap) > 0);
  va_end(ap);
  res = fx_call(x, tool, args);
  free(args);
  return res;
}

FX_FN int fx_is_error(const cJSON *res) {
  return cJSON_IsTrue(th_get(res, "result.isError"));
}

FX_FN const char *fx_text(const cJSON *res) {
  const char *t = th_str(res, "result.content.0.text");
  return t != NULL ? t : "";
}

/* A JSON string of s (quotes included), malloc'd. */
FX_FN char *fx_json(const char *s) {
  cJSON *str = cJSON_CreateString(s);
  char *text = cJSON_PrintUnformatted(str);

  cJSON_Delete(str);
  return text;
}

#endif
