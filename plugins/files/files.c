/* files.c: the files foundation plugin. An instance serves one or more
 * root directories to clients (read, search, edit, organise) and to other
 * plugins (the "fs" service), with every path resolved by sandbox.c.
 *
 * This file owns the instance: config, the per-call view of the allowed
 * directories (narrowed by the client's MCP roots), each tool's arguments
 * and replies, the file:// resources and the service. */
#include "files.h"
#include "walk.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_FILE_SIZE (10LL * 1024 * 1024)
#define DEFAULT_MAX_ENTRIES 1000
#define DEFAULT_MAX_WALK 200000
#define DEFAULT_MAX_TIME_MS 10000
#define DEFAULT_MAX_RESULT_BYTES (4 * 1024 * 1024)
#define DEFAULT_MAX_WATCHES 1024
#define MAX_MANY 100
#define MAX_EDITS 100
#define GREP_LINE_MAX 500
/* Bytes of text read_text also puts in structuredContent. */
#define STRUCTURED_TEXT_MAX (64 * 1024)
/* PCRE2 backtracking steps per match: a hostile pattern stops here. */
#define GREP_MATCH_LIMIT 1000000

typedef struct files {
  const ph_host_api *api;
  ph_instance *self;
  fs_box box;
  size_t max_entries;      /* Results a listing, search or grep returns. */
  size_t max_walk;         /* Entries a walk visits. */
  size_t max_result_bytes; /* Text a listing, search or grep returns. */
  int max_time_ms;         /* Time a walk may take. */
  int client_roots;        /* Narrow to the client's MCP roots. */
  int watch;               /* inotify for resources/subscribe. */
  int max_watches;
  fs_watch *watcher;
} files;

/* One call's view: the allowed directories (the configured roots, or
 * their intersection with the client's roots) and the first error. */
typedef struct ctx {
  files *f;
  ph_call *call;
  const char *tool;
  fs_dir *dirs;
  int ndirs;
  fs_dir *owned; /* Narrowed directories this call opened. */
  int nowned;
  fs_err err;
} ctx;

/* ---- config ---- */

static void free_list(char **list, int n) {
  int i;

  for (i = 0; i < n; i++)
    free(list[i]);
  free(list);
}

static int string_list(const cJSON *array, char ***out, int *n) {
  const cJSON *item;
  int i = 0;

  *out = calloc((size_t)cJSON_GetArraySize(array) + 1, sizeof(char *));
  *n = 0;
  if (*out == NULL)
    return -1;
  cJSON_ArrayForEach(item, array) {
    if (!cJSON_IsString(item) || item->valuestring[0] == '\0')
      return -1;
    if (((*out)[i] = strdup(item->valuestring)) == NULL)
      return -1;
    *n = ++i;
  }
  return 0;
}

static void files_free(files *f) {
  int i;

  if (f == NULL)
    return;
  for (i = 0; i < f->box.ndirs; i++) {
    if (f->box.dirs[i].fd >= 0)
      close(f->box.dirs[i].fd);
    free(f->box.dirs[i].path);
    free(f->box.dirs[i].given);
  }
  free(f->box.dirs);
  free_list(f->box.hidden, f->box.nhidden);
  free_list(f->box.exts, f->box.nexts);
  free(f);
}

/* The real path of a descriptor, malloc'd. */
static char *fd_path(int fd) {
  char link[64], real[PATH_MAX];
  ssize_t n;

  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  n = readlink(link, real, sizeof(real) - 1);
  if (n <= 0)
    return NULL;
  real[n] = '\0';
  return strdup(real);
}

static int open_roots(files *f, const cJSON *roots, char *err, size_t size) {
  const cJSON *item;
  char *abs;
  int n = cJSON_GetArraySize(roots), i = 0, fd;

  if (n == 0) {
    snprintf(err, size, "config: \"roots\" must list at least one directory");
    return -1;
  }
  f->box.dirs = calloc((size_t)n, sizeof(fs_dir));
  if (f->box.dirs == NULL)
    return -1;
  cJSON_ArrayForEach(item, roots) {
    if (!cJSON_IsString(item) || item->valuestring[0] == '\0') {
      snprintf(err, size, "config: \"roots\" must be a list of paths");
      return -1;
    }
    fd = open(item->valuestring, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      snprintf(err, size, "config: root %s: %s", item->valuestring,
               strerror(errno));
      return -1;
    }
    f->box.dirs[i].fd = fd;
    f->box.ndirs = ++i;
    f->box.dirs[i - 1].path = fd_path(fd);
    abs = item->valuestring[0] == '/' ? strdup(item->valuestring)
                                      : realpath(item->valuestring, NULL);
    /* The configured spelling without a trailing slash. */
    while (abs != NULL && strlen(abs) > 1 && abs[strlen(abs) - 1] == '/')
      abs[strlen(abs) - 1] = '\0';
    f->box.dirs[i - 1].given = abs;
    if (f->box.dirs[i - 1].path == NULL) {
      snprintf(err, size, "config: root %s: cannot read its real path",
               item->valuestring);
      return -1;
    }
  }
  return 0;
}

static int parse_config(files *f, const char *config_json, char *err,
                        size_t size) {
  static const char *const default_hidden[] = {".git", ".env", "*.pem", "*.key",
                                               "id_*"};
  cJSON *cfg = cJSON_Parse(config_json), *item;
  const cJSON *roots = NULL;
  const char *env = getenv("PH_FILES_RESOLVE");
  int rc = -1, i, have_hidden = 0;
  double v;

  f->box.max_file_size = DEFAULT_MAX_FILE_SIZE;
  f->max_entries = DEFAULT_MAX_ENTRIES;
  f->max_walk = DEFAULT_MAX_WALK;
  f->max_result_bytes = DEFAULT_MAX_RESULT_BYTES;
  f->max_time_ms = DEFAULT_MAX_TIME_MS;
  f->client_roots = 1;
  f->watch = 1;
  f->max_watches = DEFAULT_MAX_WATCHES;
  if (!cJSON_IsObject(cfg)) {
    snprintf(err, size, "config is not a JSON object");
    goto cleanup;
  }
  cJSON_ArrayForEach(item, cfg) {
    const char *key = item->string;
    v = cJSON_IsNumber(item) ? item->valuedouble : -1;
    if (strcmp(key, "roots") == 0 && cJSON_IsArray(item)) {
      roots = item;
    } else if (strcmp(key, "read_only") == 0 && cJSON_IsBool(item)) {
      f->box.read_only = cJSON_IsTrue(item);
    } else if (strcmp(key, "max_file_size") == 0 && v >= 1 && v <= 1e12) {
      f->box.max_file_size = (long long)v;
    } else if (strcmp(key, "hidden") == 0 && cJSON_IsArray(item)) {
      if (string_list(item, &f->box.hidden, &f->box.nhidden) != 0)
        goto bad_value;
      have_hidden = 1;
    } else if (strcmp(key, "extensions") == 0 && cJSON_IsArray(item)) {
      if (string_list(item, &f->box.exts, &f->box.nexts) != 0)
        goto bad_value;
      for (i = 0; i < f->box.nexts; i++)
        if (f->box.exts[i][0] == '.')
          memmove(f->box.exts[i], f->box.exts[i] + 1, strlen(f->box.exts[i]));
    } else if (strcmp(key, "max_entries") == 0 && v >= 1 && v <= 1e7) {
      f->max_entries = (size_t)v;
    } else if (strcmp(key, "max_walk") == 0 && v >= 1 && v <= 1e9) {
      f->max_walk = (size_t)v;
    } else if (strcmp(key, "max_result_bytes") == 0 && v >= 1024 && v <= 1e9) {
      f->max_result_bytes = (size_t)v;
    } else if (strcmp(key, "max_time_ms") == 0 && v >= 1 && v <= 3600000) {
      f->max_time_ms = (int)v;
    } else if (strcmp(key, "client_roots") == 0 && cJSON_IsBool(item)) {
      f->client_roots = cJSON_IsTrue(item);
    } else if (strcmp(key, "watch") == 0 && cJSON_IsBool(item)) {
      f->watch = cJSON_IsTrue(item);
    } else if (strcmp(key, "max_watches") == 0 && v >= 1 && v <= 1e6) {
      f->max_watches = (int)v;
    } else if (strcmp(key, "resolve") == 0 && cJSON_IsString(item) &&
               (strcmp(item->valuestring, "openat2") == 0 ||
                strcmp(item->valuestring, "walk") == 0)) {
      f->box.walk_only = strcmp(item->valuestring, "walk") == 0;
    } else {
      snprintf(err, size, "config: unknown key or wrong type: '%s'", key);
      goto cleanup;
    }
    continue;
  bad_value:
    snprintf(err, size, "config: bad value for '%s'", key);
    goto cleanup;
  }
  if (!have_hidden) {
    f->box.hidden = calloc(5, sizeof(char *));
    if (f->box.hidden == NULL)
      goto cleanup;
    for (i = 0; i < 5; i++)
      if ((f->box.hidden[f->box.nhidden++] = strdup(default_hidden[i])) == NULL)
        goto cleanup;
  }
  /* For tests: the component walk without openat2. */
  if (env != NULL && strcmp(env, "walk") == 0)
    f->box.walk_only = 1;
  if (!f->box.walk_only && !fs_openat2_available())
    f->box.walk_only = 1;
  if (roots == NULL) {
    snprintf(err, size,
             "config: \"roots\" is required (a list of "
             "directories)");
    goto cleanup;
  }
  rc = open_roots(f, roots, err, size);

cleanup:
  cJSON_Delete(cfg);
  return rc;
}

static const char *const writing_tools[] = {"write", "edit",   "mkdir",
                                            "move",  "delete", "copy"};

static int files_init(ph_instance *self, const ph_host_api *api,
                      const char *config_json, void **state) {
  char err[512] = "out of memory";
  files *f = calloc(1, sizeof(*f));
  size_t i;

  if (f == NULL)
    return -1;
  f->api = api;
  f->self = self;
  if (parse_config(f, config_json, err, sizeof(err)) != 0) {
    api->log(self, PH_LOG_ERROR, "files: %s", err);
    files_free(f);
    return -1;
  }
  /* Read-only: the writing tools are not listed at all. */
  if (f->box.read_only && PH_API_HAS(api, configure_tool)) {
    for (i = 0; i < sizeof(writing_tools) / sizeof(*writing_tools); i++) {
      if (api->configure_tool(self, writing_tools[i], "{\"enabled\":false}") !=
          PH_OK) {
        api->log(self, PH_LOG_ERROR, "files: the host refused to hide %s",
                 writing_tools[i]);
        files_free(f);
        return -1;
      }
    }
  }
  if (f->watch)
    f->watcher = fs_watch_start(api, self, &f->box, f->max_watches);
  api->log(self, PH_LOG_INFO, "files: %d root(s), first %s, %s, %s",
           f->box.ndirs, f->box.dirs[0].path,
           f->box.read_only ? "read-only" : "read-write",
           f->box.walk_only ? "component walk" : "openat2");
  *state = f;
  return 0;
}

static void files_fini(void *state) {
  files *f = state;

  fs_watch_stop(f->watcher);
  files_free(f);
}

/* ---- per-call context ---- */

/* The path of a file:// URI, percent-decoded (malloc'd), or NULL. */
static char *uri_path(const char *uri) {
  const char *p;
  char *out, *o;
  int hi, lo;

  if (strncmp(uri, "file://", 7) != 0)
    return NULL;
  p = uri + 7;
  /* file://localhost/x is file:///x. */
  if (strncmp(p, "localhost/", 10) == 0)
    p += 9;
  if (*p != '/')
    return NULL;
  out = o = malloc(strlen(p) + 1);
  if (out == NULL)
    return NULL;
  for (; *p != '\0' && *p != '?' && *p != '#'; p++) {
    if (*p == '%' && p[1] != '\0' && p[2] != '\0') {
      char h[3] = {p[1], p[2], 0};
      char *end;
      hi = (int)strtol(h, &end, 16);
      lo = *end == '\0';
      if (lo && hi != 0) {
        *o++ = (char)hi;
        p += 2;
        continue;
      }
      free(out);
      return NULL;
    }
    *o++ = *p;
  }
  *o = '\0';
  return out;
}

static int add_dir(ctx *c, const fs_dir *d, int owned) {
  fs_dir *grown = realloc(c->dirs, (size_t)(c->ndirs + 1) * sizeof(*grown));

  if (grown == NULL)
    return -1;
  c->dirs = grown;
  c->dirs[c->ndirs++] = *d;
  (void)owned;
  return 0;
}

/* Narrows the configured roots to the client's: a client root inside a
 * configured one becomes an allowed directory (opened through the
 * sandbox), a configured root inside a client's stays, others go. */
static void intersect_roots(ctx *c, const char *result_json) {
  files *f = c->f;
  cJSON *res = cJSON_Parse(result_json);
  const cJSON *roots = cJSON_GetObjectItemCaseSensitive(res, "roots"), *r;
  fs_target t;
  fs_err e;
  int i;

  c->ndirs = 0;
  cJSON_ArrayForEach(r, roots) {
    const char *uri =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "uri"));
    char *path = uri != NULL ? uri_path(uri) : NULL;
    if (path == NULL)
      continue;
    while (strlen(path) > 1 && path[strlen(path) - 1] == '/')
      path[strlen(path) - 1] = '\0';
    for (i = 0; i < f->box.ndirs; i++) {
      const fs_dir *d = &f->box.dirs[i];
      size_t pl = strlen(path);
      memset(&e, 0, sizeof(e));
      if ((strncmp(d->path, path, pl) == 0 &&
           (d->path[pl] == '/' || d->path[pl] == '\0' || pl == 1)) ||
          (d->given != NULL && strncmp(d->given, path, pl) == 0 &&
           (d->given[pl] == '/' || d->given[pl] == '\0' || pl == 1))) {
        add_dir(c, d, 0);
      } else if (fs_locate(&f->box, d, 1, path, &t, &e) == 0) {
        fs_dir n = {0};
        n.fd = fs_open(&f->box, &t, O_PATH | O_DIRECTORY, &e);
        if (n.fd < 0)
          continue;
        n.path = fd_path(n.fd);
        n.given = strdup(path);
        if (n.path == NULL || add_dir(c, &n, 1) != 0) {
          close(n.fd);
          free(n.path);
          free(n.given);
          continue;
        }
        fs_dir *grown =
            realloc(c->owned, (size_t)(c->nowned + 1) * sizeof(*grown));
        if (grown != NULL) {
          c->owned = grown;
          c->owned[c->nowned++] = n;
        }
      }
    }
    free(path);
  }
  cJSON_Delete(res);
}

/* Sets up c for a call. Returns 0, or PH_EINPUT when the client's roots
 * are not known yet on a modern request (the handler returns; the host
 * calls it again with the answer). */
static int ctx_begin(ctx *c, files *f, ph_call *call, const char *tool,
                     int client_roots) {
  char *result = NULL;
  int rc;

  memset(c, 0, sizeof(*c));
  c->f = f;
  c->call = call;
  c->tool = tool;
  c->dirs = f->box.dirs;
  c->ndirs = f->box.ndirs;
  if (!client_roots || !f->client_roots)
    return 0;
  rc = f->api->client_request(call, "roots", "roots/list", "{}", &result);
  if (rc == PH_EINPUT)
    return PH_EINPUT;
  if (rc == PH_OK && result != NULL) {
    c->dirs = NULL;
    intersect_roots(c, result);
    if (c->dirs == NULL)
      c->ndirs = 0;
  }
  if (result != NULL)
    f->api->free(result);
  return 0;
}

static void ctx_end(ctx *c) {
  int i;

  for (i = 0; i < c->nowned; i++) {
    close(c->owned[i].fd);
    free(c->owned[i].path);
    free(c->owned[i].given);
  }
  free(c->owned);
  if (c->dirs != c->f->box.dirs)
    free(c->dirs);
}

/* Replies with c's error as an isError result; a refusal is logged. */
static void reply_err(ctx *c) {
  files *f = c->f;

  if (c->err.kind == FS_REFUSED)
    f->api->log(f->self, PH_LOG_INFO, "files: %s refused: %s", c->tool,
                c->err.msg);
  ph_reply_text(f->api, c->call, c->err.msg, 1);
}

/* Replies with a text block (text, n bytes) and structured content (JSON
 * text). */
static void reply_ok(ctx *c, const char *text, size_t n,
                     const char *structured) {
  fs_buf out = {0};
  size_t escaped = fs_json_len(text, n);

  /* One allocation of the exact size: the escaped text is measured
   * first (once), so a large reply is never grown and copied. */
  fs_buf_reserve(&out, escaped + strlen(structured) + 96);
  fs_buf_puts(&out, "{\"content\":[{\"type\":\"text\",\"text\":");
  fs_buf_json_measured(&out, text, n, escaped);
  fs_buf_puts(&out, "}],\"structuredContent\":");
  fs_buf_puts(&out, structured);
  fs_buf_puts(&out, "}");
  if (out.failed)
    ph_reply_text(c->f->api, c->call, "out of memory", 1);
  else
    c->f->api->reply(c->call, out.data);
  fs_buf_free(&out);
}

static int locate(ctx *c, const char *path, fs_target *t) {
  return fs_locate(&c->f->box, c->dirs, c->ndirs, path, t, &c->err);
}

/* Every tool handler begins the same way. */
#define BEGIN_TOOL(name)                                                       \
  files *f = state;                                                            \
  ctx c;                                                                       \
  ph_args *a;                                                                  \
  if (ctx_begin(&c, f, call, name, 1) == PH_EINPUT) {                          \
    f->api->reply(call, "{\"content\":[]}");                                   \
    return;                                                                    \
  }                                                                            \
  a = ph_args_parse(args_json);                                                \
  if (a == NULL || ph_args_error(a) != NULL) {                                 \
    ph_reply_text(f->api, call, ph_args_error(a), 1);                          \
    ph_args_free(a);                                                           \
    ctx_end(&c);                                                               \
    return;                                                                    \
  }

/* ---- reading ---- */

/* Reads a whole text file: refuses binary files and invalid UTF-8. */
static char *read_text_file(ctx *c, const fs_target *t, size_t *len) {
  struct stat st;
  char shown[PATH_MAX + 64], *data;
  long long bad;
  int fd = fs_open_file(&c->f->box, t, &st, &c->err);

  if (fd < 0)
    return NULL;
  data = fs_read_all(&c->f->box, fd, &st, len, &c->err);
  close(fd);
  if (data == NULL)
    return NULL;
  fs_display(t, shown, sizeof(shown));
  if (fs_looks_binary(data, *len)) {
    fs_fail(&c->err, FS_REFUSED,
            "%s looks like a binary file (it contains NUL bytes); use "
            "read_media to read it as base64",
            shown);
    free(data);
    return NULL;
  }
  if ((bad = fs_utf8_invalid(data, *len)) >= 0) {
    fs_fail(&c->err, FS_REFUSED,
            "%s is not valid UTF-8 text: invalid byte sequence at byte "
            "offset %lld; use read_media to read its bytes as base64",
            shown, bad);
    free(data);
    return NULL;
  }
  return data;
}

static size_t count_lines(const char *s, size_t n) {
  size_t lines = 0;
  const char *p = s, *end = s + n;

  while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
    lines++;
    p++;
  }
  return lines + (n > 0 && s[n - 1] != '\n');
}

/* The byte offset where line `first` (0-based) starts. */
static size_t line_start(const char *s, size_t n, size_t first) {
  const char *p = s, *end = s + n, *nl;

  while (first > 0 && p < end &&
         (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
    p = nl + 1;
    first--;
  }
  return first > 0 ? n : (size_t)(p - s);
}

static void read_text(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("read_text");
  const char *path = ph_args_string(a, "path", "");
  long long head = ph_args_int(a, "head", 0, 1LL << 40, -1);
  long long tail = ph_args_int(a, "tail", 0, 1LL << 40, -1);
  long long offset = ph_args_int(a, "offset", 1, 1LL << 40, -1);
  long long limit = ph_args_int(a, "limit", 0, 1LL << 40, -1);
  size_t len = 0, from = 0, to = 0, total;
  fs_target t;
  fs_buf sc = {0};
  char *data = NULL, shown[PATH_MAX + 64];

  if (ph_args_error(a) != NULL) {
    ph_reply_text(f->api, call, ph_args_error(a), 1);
    goto cleanup;
  }
  if (head >= 0 && tail >= 0) {
    ph_reply_text(f->api, call,
                  "Cannot specify both head and tail parameters "
                  "simultaneously",
                  1);
    goto cleanup;
  }
  if ((head >= 0 || tail >= 0) && (offset >= 0 || limit >= 0)) {
    ph_reply_text(f->api, call,
                  "head and tail cannot be combined with offset and limit", 1);
    goto cleanup;
  }
  if (locate(&c, path, &t) != 0 ||
      (data = read_text_file(&c, &t, &len)) == NULL) {
    reply_err(&c);
    goto cleanup;
  }
  total = count_lines(data, len);
  to = len;
  if (head >= 0) {
    to = line_start(data, len, (size_t)head);
  } else if (tail >= 0) {
    from =
        (size_t)tail >= total ? 0 : line_start(data, len, total - (size_t)tail);
  } else if (offset >= 0 || limit >= 0) {
    from = line_start(data, len, offset > 0 ? (size_t)offset - 1 : 0);
    if (limit >= 0)
      to = from + line_start(data + from, len - from, (size_t)limit);
  }
  fs_display(&t, shown, sizeof(shown));
  fs_buf_puts(&sc, "{\"path\":");
  fs_buf_json(&sc, shown, strlen(shown));
  fs_buf_printf(&sc, ",\"totalLines\":%zu,\"bytes\":%zu", total, len);
  /* A large text travels once, in the text block: twice would double what
   * the host copies and holds for every read (see README.md). */
  if (to - from <= STRUCTURED_TEXT_MAX) {
    fs_buf_puts(&sc, ",\"content\":");
    fs_buf_json(&sc, data + from, to - from);
  } else {
    fs_buf_puts(&sc, ",\"contentInText\":true");
  }
  fs_buf_puts(&sc, "}");
  if (sc.failed)
    ph_reply_text(f->api, call, "out of memory", 1);
  else
    reply_ok(&c, data + from, to - from, sc.data);

cleanup:
  fs_buf_free(&sc);
  free(data);
  ph_args_free(a);
  ctx_end(&c);
}

static const struct mime {
  const char *ext, *type;
} mimes[] = {
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"bmp", "image/bmp"},
    {"svg", "image/svg+xml"},
    {"ico", "image/x-icon"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"avif", "image/avif"},
    {"mp3", "audio/mpeg"},
    {"wav", "audio/wav"},
    {"ogg", "audio/ogg"},
    {"oga", "audio/ogg"},
    {"flac", "audio/flac"},
    {"m4a", "audio/mp4"},
    {"aac", "audio/aac"},
    {"opus", "audio/opus"},
    {"weba", "audio/webm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"json", "application/json"},
    {"xml", "application/xml"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"toml", "application/toml"},
    {"js", "text/javascript"},
    {"mjs", "text/javascript"},
    {"ts", "text/plain"},
    {"txt", "text/plain"},
    {"md", "text/markdown"},
    {"csv", "text/csv"},
    {"tsv", "text/tab-separated-values"},
    {"html", "text/html"},
    {"htm", "text/html"},
    {"css", "text/css"},
    {"c", "text/x-c"},
    {"h", "text/x-c"},
    {"py", "text/x-python"},
    {"sh", "text/x-shellscript"},
    {"log", "text/plain"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
};

static const char *mime_of(const char *name) {
  const char *dot = strrchr(name, '.');
  size_t i;

  if (dot != NULL && dot != name)
    for (i = 0; i < sizeof(mimes) / sizeof(*mimes); i++)
      if (strcasecmp(dot + 1, mimes[i].ext) == 0)
        return mimes[i].type;
  return "application/octet-stream";
}

static int is_text_mime(const char *mime) {
  return strncmp(mime, "text/", 5) == 0 ||
         strcmp(mime, "application/json") == 0 ||
         strcmp(mime, "application/xml") == 0 ||
         strcmp(mime, "application/yaml") == 0 ||
         strcmp(mime, "application/toml") == 0 ||
         strcmp(mime, "image/svg+xml") == 0;
}

static void read_media(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("read_media");
  const char *path = ph_args_string(a, "path", "");
  const char *mime, *kind;
  struct stat st;
  size_t len = 0;
  fs_target t;
  fs_buf out = {0}, uri = {0};
  char *data = NULL, *b64 = NULL, shown[PATH_MAX + 64];
  int fd;

  if (locate(&c, path, &t) != 0 ||
      (fd = fs_open_file(&f->box, &t, &st, &c.err)) < 0) {
    reply_err(&c);
    goto cleanup;
  }
  data = fs_read_all(&f->box, fd, &st, &len, &c.err);
  close(fd);
  if (data == NULL || (b64 = ph_base64(f->api, data, len)) == NULL) {
    if (c.err.kind == FS_OK)
      fs_fail(&c.err, FS_FAILED, "out of memory");
    reply_err(&c);
    goto cleanup;
  }
  fs_display(&t, shown, sizeof(shown));
  fs_uri(&uri, shown);
  mime = mime_of(t.name);
  kind = strncmp(mime, "image/", 6) == 0   ? "image"
         : strncmp(mime, "audio/", 6) == 0 ? "audio"
                                           : "blob";
  fs_buf_reserve(&out, strlen(b64) + 2 * PATH_MAX + 256);
  if (strcmp(kind, "blob") == 0) {
    fs_buf_puts(&out, "{\"content\":[{\"type\":\"resource\",\"resource\":{"
                      "\"uri\":");
    fs_buf_json(&out, uri.data, uri.len);
    fs_buf_printf(&out, ",\"mimeType\":\"%s\",\"blob\":\"%s\"}}]", mime, b64);
  } else {
    fs_buf_printf(&out,
                  "{\"content\":[{\"type\":\"%s\",\"data\":\"%s\","
                  "\"mimeType\":\"%s\"}]",
                  kind, b64, mime);
  }
  fs_buf_puts(&out, ",\"structuredContent\":{\"path\":");
  fs_buf_json(&out, shown, strlen(shown));
  fs_buf_printf(&out, ",\"mimeType\":\"%s\",\"kind\":\"%s\",\"size\":%zu}}",
                mime, kind, len);
  if (out.failed)
    ph_reply_text(f->api, call, "out of memory", 1);
  else
    f->api->reply(call, out.data);

cleanup:
  fs_buf_free(&out);
  fs_buf_free(&uri);
  free(data);
  if (b64 != NULL)
    f->api->free(b64);
  ph_args_free(a);
  ctx_end(&c);
}

static void read_many(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("read_many");
  cJSON *paths =
      cJSON_Parse(ph_args_json(a, "paths") ? ph_args_json(a, "paths") : "[]");
  const cJSON *p;
  fs_buf text = {0}, sc = {0};
  size_t len;
  int first = 1;

  if (!cJSON_IsArray(paths) || cJSON_GetArraySize(paths) == 0 ||
      cJSON_GetArraySize(paths) > MAX_MANY) {
    ph_reply_textf(f->api, call, 1, "paths: give 1 to %d paths", MAX_MANY);
    goto cleanup;
  }
  fs_buf_puts(&sc, "{\"files\":[");
  cJSON_ArrayForEach(p, paths) {
    const char *path = cJSON_GetStringValue(p);
    fs_target t;
    char *data = NULL, shown[PATH_MAX + 64];

    memset(&c.err, 0, sizeof(c.err));
    if (path == NULL)
      path = "";
    if (!first) {
      fs_buf_puts(&text, "\n---\n");
      fs_buf_puts(&sc, ",");
    }
    first = 0;
    if (locate(&c, path, &t) == 0)
      data = read_text_file(&c, &t, &len);
    fs_buf_puts(&sc, "{\"path\":");
    if (data != NULL) {
      fs_display(&t, shown, sizeof(shown));
      fs_buf_json(&sc, shown, strlen(shown));
      fs_buf_puts(&sc, ",\"content\":");
      fs_buf_json(&sc, data, len);
      fs_buf_printf(&text, "%s:\n", path);
      fs_buf_put(&text, data, len);
      fs_buf_puts(&text, "\n");
    } else {
      if (c.err.kind == FS_REFUSED)
        f->api->log(f->self, PH_LOG_INFO, "files: read_many refused: %s",
                    c.err.msg);
      fs_buf_json(&sc, path, strlen(path));
      fs_buf_puts(&sc, ",\"error\":");
      fs_buf_json(&sc, c.err.msg, strlen(c.err.msg));
      fs_buf_printf(&text, "%s: Error - %s", path, c.err.msg);
    }
    fs_buf_puts(&sc, "}");
    free(data);
    if (text.len > f->box.max_file_size + (size_t)f->max_result_bytes) {
      ph_reply_textf(f->api, call, 1,
                     "read_many: the files together exceed %lld bytes; read "
                     "fewer at a time",
                     f->box.max_file_size + (long long)f->max_result_bytes);
      goto cleanup;
    }
  }
  fs_buf_puts(&sc, "]}");
  if (sc.failed || text.failed)
    ph_reply_text(f->api, call, "out of memory", 1);
  else
    reply_ok(&c, text.data, text.len, sc.data);

cleanup:
  cJSON_Delete(paths);
  fs_buf_free(&text);
  fs_buf_free(&sc);
  ph_args_free(a);
  ctx_end(&c);
}

/* ---- writing ---- */

static void write_file(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("write");
  const char *path = ph_args_string(a, "path", "");
  const char *content = ph_args_string(a, "content", "");
  size_t len = strlen(content);
  fs_target t;
  fs_buf sc = {0}, text = {0};
  char shown[PATH_MAX + 64];

  if (f->box.read_only) {
    fs_fail(&c.err, FS_REFUSED, "Access denied: this instance is read-only");
    reply_err(&c);
  } else if (locate(&c, path, &t) != 0 ||
             fs_write_atomic(&f->box, &t, content, len, 0, &c.err) != 0) {
    reply_err(&c);
  } else {
    fs_display(&t, shown, sizeof(shown));
    fs_buf_printf(&text, "Successfully wrote to %s", shown);
    fs_buf_puts(&sc, "{\"path\":");
    fs_buf_json(&sc, shown, strlen(shown));
    fs_buf_printf(&sc, ",\"bytes\":%zu}", len);
    reply_ok(&c, text.data, text.len, sc.data);
  }
  fs_buf_free(&sc);
  fs_buf_free(&text);
  ph_args_free(a);
  ctx_end(&c);
}

static void edit_file(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("edit");
  const char *path = ph_args_string(a, "path", "");
  int dry = ph_args_bool(a, "dryRun", 0);
  const char *edits_json = ph_args_json(a, "edits");
  cJSON *edits = cJSON_Parse(edits_json != NULL ? edits_json : "[]");
  const cJSON *item;
  fs_edit list[MAX_EDITS];
  fs_target t;
  fs_buf diff = {0}, text = {0}, sc = {0};
  size_t len = 0, nlen = 0, ticks = 3;
  char *data = NULL, *changed = NULL, shown[PATH_MAX + 64];
  const char *p;
  int n = 0;

  if (!cJSON_IsArray(edits) || cJSON_GetArraySize(edits) == 0 ||
      cJSON_GetArraySize(edits) > MAX_EDITS) {
    ph_reply_textf(f->api, call, 1, "edits: give 1 to %d edits", MAX_EDITS);
    goto cleanup;
  }
  cJSON_ArrayForEach(item, edits) {
    list[n].old_text =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "oldText"));
    list[n].new_text =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "newText"));
    list[n].replace_all =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "replaceAll"));
    if (list[n].old_text == NULL || list[n].new_text == NULL) {
      ph_reply_textf(f->api, call, 1,
                     "edits[%d]: oldText and newText must be strings", n);
      goto cleanup;
    }
    n++;
  }
  if (!dry && f->box.read_only) {
    fs_fail(&c.err, FS_REFUSED, "Access denied: this instance is read-only");
    reply_err(&c);
    goto cleanup;
  }
  if (locate(&c, path, &t) != 0 ||
      (data = read_text_file(&c, &t, &len)) == NULL ||
      (changed = fs_apply_edits(data, len, list, n, &nlen, &c.err)) == NULL) {
    reply_err(&c);
    goto cleanup;
  }
  fs_display(&t, shown, sizeof(shown));
  if (!dry && fs_write_atomic(&f->box, &t, changed, nlen, 0, &c.err) != 0) {
    reply_err(&c);
    goto cleanup;
  }
  fs_unified_diff(&diff, shown, data, len, changed, nlen);
  /* Fence the diff with more backticks than it contains in a row. */
  for (p = diff.data; p != NULL && *p != '\0'; p++) {
    size_t run = 0;
    while (p[run] == '`')
      run++;
    if (run >= ticks)
      ticks = run + 1;
    if (run > 0)
      p += run - 1;
  }
  fs_buf_printf(&text, "%.*sdiff\n%s%.*s\n\n", (int)ticks, "``````````````",
                diff.data != NULL ? diff.data : "", (int)ticks,
                "``````````````");
  fs_buf_puts(&sc, "{\"path\":");
  fs_buf_json(&sc, shown, strlen(shown));
  fs_buf_printf(&sc, ",\"dryRun\":%s,\"applied\":%s,\"diff\":",
                dry ? "true" : "false", dry ? "false" : "true");
  fs_buf_json(&sc, diff.data != NULL ? diff.data : "", diff.len);
  fs_buf_puts(&sc, "}");
  if (sc.failed || text.failed)
    ph_reply_text(f->api, call, "out of memory", 1);
  else
    reply_ok(&c, text.data, text.len, sc.data);

cleanup:
  cJSON_Delete(edits);
  fs_buf_free(&diff);
  fs_buf_free(&text);
  fs_buf_free(&sc);
  free(data);
  free(changed);
  ph_args_free(a);
  ctx_end(&c);
}

/* mkdir -p: each component opened through the sandbox, made if absent. */
static int make_dirs(ctx *c, const fs_target *t, int *created) {
  const fs_box *b = &c->f->box;
  fs_target sub = *t;
  size_t i, n = strlen(t->rel);
  struct stat st;
  int fd, parent;

  *created = 0;
  for (i = 0; i <= n; i++) {
    if (t->rel[i] != '/' && t->rel[i] != '\0')
      continue;
    memcpy(sub.rel, t->rel, i);
    sub.rel[i] = '\0';
    sub.name = strrchr(sub.rel, '/') ? strrchr(sub.rel, '/') + 1 : sub.rel;
    memset(&c->err, 0, sizeof(c->err));
    fd = fs_open(b, &sub, O_PATH | O_DIRECTORY, &c->err);
    if (fd >= 0) {
      close(fd);
      continue;
    }
    if (c->err.kind != FS_NOTFOUND)
      return -1;
    memset(&c->err, 0, sizeof(c->err));
    parent = fs_open_parent(b, &sub, &c->err);
    if (parent < 0)
      return -1;
    if (mkdirat(parent, sub.name, 0777) == 0) {
      *created = 1;
    } else if (errno != EEXIST ||
               fstatat(parent, sub.name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
               !S_ISDIR(st.st_mode)) {
      char shown[PATH_MAX + 64];
      int err = errno;
      fs_display(&sub, shown, sizeof(shown));
      close(parent);
      return fs_fail(&c->err, FS_FAILED, "cannot create %s: %s", shown,
                     err == EEXIST ? "it exists and is not a directory"
                                   : strerror(err));
    }
    close(parent);
  }
  return 0;
}

static void mkdir_tool(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("mkdir");
  const char *path = ph_args_string(a, "path", "");
  fs_target t;
  fs_buf sc = {0}, text = {0};
  char shown[PATH_MAX + 64];
  int created = 0;

  if (f->box.read_only) {
    fs_fail(&c.err, FS_REFUSED, "Access denied: this instance is read-only");
    reply_err(&c);
  } else if (locate(&c, path, &t) != 0 || make_dirs(&c, &t, &created) != 0) {
    reply_err(&c);
  } else {
    fs_display(&t, shown, sizeof(shown));
    fs_buf_printf(&text, "Successfully created directory %s", shown);
    fs_buf_puts(&sc, "{\"path\":");
    fs_buf_json(&sc, shown, strlen(shown));
    fs_buf_printf(&sc, ",\"created\":%s}", created ? "true" : "false");
    reply_ok(&c, text.data, text.len, sc.data);
  }
  fs_buf_free(&sc);
  fs_buf_free(&text);
  ph_args_free(a);
  ctx_end(&c);
}

static const char *type_name(unsigned char type) {
  switch (type) {
  case DT_DIR:
    return "directory";
  case DT_REG:
    return "file";
  case DT_LNK:
    return "symlink";
  default:
    return "other";
  }
}

static const char *type_tag(unsigned char type) {
  switch (type) {
  case DT_DIR:
    return "[DIR]";
  case DT_REG:
    return "[FILE]";
  case DT_LNK:
    return "[LINK]";
  default:
    return "[OTHER]";
  }
}

static int open_dir(ctx *c, const char *path, fs_target *t) {
  if (locate(c, path, t) != 0)
    return -1;
  return fs_open(&c->f->box, t, O_RDONLY | O_DIRECTORY, &c->err);
}

static void human(long long n, char *out, size_t size) {
  static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = (double)n;
  int u = 0;

  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  if (u == 0)
    snprintf(out, size, "%lld B", n);
  else
    snprintf(out, size, "%.2f %s", v, units[u]);
}

typedef struct sized {
  fs_dirent *d;
  long long size;
} sized;

static int by_size(const void *a, const void *b) {
  const sized *x = a, *y = b;

  if (x->size != y->size)
    return x->size < y->size ? 1 : -1;
  return strcmp(x->d->name, y->d->name);
}

static void list_common(ph_call *call, const char *args_json, void *state,
                        int with_sizes) {
  BEGIN_TOOL(with_sizes ? "list_with_sizes" : "list");
  const char *path = ph_args_string(a, "path", "");
  const char *sort = ph_args_string(a, "sortBy", "name");
  fs_dirent *list = NULL;
  sized *sz = NULL;
  size_t n = 0, i, shown_n;
  long long total = 0, files_n = 0, dirs_n = 0;
  fs_target t;
  fs_buf text = {0}, sc = {0};
  struct stat st;
  char shown[PATH_MAX + 64], hs[32];
  int fd = open_dir(&c, path, &t);

  if (fd < 0 || fs_read_dir(&f->box, fd, t.rel, &list, &n, &c.err) != 0) {
    reply_err(&c);
    goto cleanup;
  }
  shown_n = n < f->max_entries ? n : f->max_entries;
  sz = calloc(n + 1, sizeof(*sz));
  if (sz == NULL) {
    ph_reply_text(f->api, call, "out of memory", 1);
    goto cleanup;
  }
  for (i = 0; i < n; i++) {
    sz[i].d = &list[i];
    if (with_sizes && list[i].type == DT_REG &&
        fstatat(fd, list[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0)
      sz[i].size = (long long)st.st_size;
    total += sz[i].size;
    files_n += list[i].type != DT_DIR;
    dirs_n += list[i].type == DT_DIR;
  }
  if (with_sizes && strcmp(sort, "size") == 0)
    qsort(sz, n, sizeof(*sz), by_size);
  fs_display(&t, shown, sizeof(shown));
  fs_buf_puts(&sc, "{\"path\":");
  fs_buf_json(&sc, shown, strlen(shown));
  fs_buf_puts(&sc, ",\"entries\":[");
  for (i = 0; i < shown_n; i++) {
    const fs_dirent *d = sz[i].d;
    if (with_sizes) {
      human(sz[i].size, hs, sizeof(hs));
      fs_buf_printf(&text, "%s %-30s %10s\n", type_tag(d->type), d->name,
                    d->type == DT_DIR ? "" : hs);
    } else {
      /* By hand: printf for every entry was a large part of a listing. */
      fs_buf_puts(&text, type_tag(d->type));
      fs_buf_puts(&text, " ");
      fs_buf_puts(&text, d->name);
      fs_buf_puts(&text, "\n");
    }
    fs_buf_puts(&sc, i ? ",{\"name\":" : "{\"name\":");
    fs_buf_json(&sc, d->name, strlen(d->name));
    fs_buf_puts(&sc, ",\"type\":\"");
    fs_buf_puts(&sc, type_name(d->type));
    fs_buf_puts(&sc, "\"");
    if (with_sizes)
      fs_buf_printf(&sc, ",\"size\":%lld", sz[i].size);
    fs_buf_puts(&sc, "}");
  }
  fs_buf_printf(&sc, "],\"truncated\":%s", shown_n < n ? "true" : "false");
  if (with_sizes) {
    human(total, hs, sizeof(hs));
    fs_buf_printf(&text,
                  "\nTotal: %lld files, %lld directories\n"
                  "Combined size: %s\n",
                  files_n, dirs_n, hs);
    fs_buf_printf(&sc,
                  ",\"totalFiles\":%lld,\"totalDirectories\":%lld,"
                  "\"totalSize\":%lld",
                  files_n, dirs_n, total);
  }
  if (shown_n < n)
    fs_buf_printf(&text, "(%zu more entries not shown: max_entries is %zu)\n",
                  n - shown_n, f->max_entries);
  fs_buf_puts(&sc, "}");
  if (text.data == NULL)
    fs_buf_puts(&text, "(empty directory)");
  if (sc.failed || text.failed)
    ph_reply_text(f->api, call, "out of memory", 1);
  else
    reply_ok(&c, text.data, text.len, sc.data);

cleanup:
  if (fd >= 0)
    close(fd);
  fs_dirents_free(list, n);
  free(sz);
  fs_buf_free(&text);
  fs_buf_free(&sc);
  ph_args_free(a);
  ctx_end(&c);
}

static void list_tool(ph_call *call, const char *args_json, void *state) {
  list_common(call, args_json, state, 0);
}

static void list_sizes_tool(ph_call *call, const char *args_json, void *state) {
  list_common(call, args_json, state, 1);
}

/* Reads excludePatterns into a NULL-terminated list (malloc'd). */
static char **patterns(ph_args *a, const char *name, int *n) {
  const char *json = ph_args_json(a, name);
  cJSON *arr = json != NULL ? cJSON_Parse(json) : NULL;
  char **out = NULL;

  *n = 0;
  if (cJSON_IsArray(arr) && string_list(arr, &out, n) != 0) {
    free_list(out, *n);
    out = NULL;
    *n = 0;
  }
  cJSON_Delete(arr);
  return out;
}

static const char *stop_note(int stopped) {
  switch (stopped) {
  case FS_STOP_ENTRIES:
    return "the walk reached max_walk entries";
  case FS_STOP_TIME:
    return "the walk reached max_time_ms or was cancelled";
  case FS_STOP_VISITOR:
    return "the results reached max_entries or max_result_bytes";
  default:
    return NULL;
  }
}

typedef struct tree_ctx {
  files *f;
  fs_buf out;
  int max_depth;
  int first[PATH_MAX / 2 + 2]; /* Per depth: no entry written yet. */
  size_t count;
} tree_ctx;

static int tree_visit(void *p, int fd, const char *rel, const char *name,
                      unsigned char type, int depth) {
  tree_ctx *t = p;

  (void)fd;
  (void)rel;
  if (t->count >= t->f->max_entries || t->out.len > t->f->max_result_bytes)
    return -1;
  t->count++;
  if (!t->first[depth])
    fs_buf_puts(&t->out, ",");
  t->first[depth] = 0;
  fs_buf_puts(&t->out, "{\"name\":");
  fs_buf_json(&t->out, name, strlen(name));
  fs_buf_printf(&t->out, ",\"type\":\"%s\"", type_name(type));
  if (type == DT_DIR && (t->max_depth < 0 || depth + 1 < t->max_depth)) {
    fs_buf_puts(&t->out, ",\"children\":[");
    t->first[depth + 1] = 1;
    return 1;
  }
  fs_buf_puts(&t->out, "}");
  return 0;
}

static void tree_leave(void *p, const char *rel, int depth) {
  tree_ctx *t = p;

  (void)rel;
  (void)depth;
  fs_buf_puts(&t->out, "]}");
}

static fs_walk_opts walk_opts(ctx *c, const fs_target *t, char **ex, int nex) {
  fs_walk_opts o;

  memset(&o, 0, sizeof(o));
  o.b = &c->f->box;
  o.start_rel = t->rel;
  o.excludes = ex;
  o.nexcludes = nex;
  o.max_depth = -1;
  o.max_entries = c->f->max_walk;
  o.deadline_ms = fs_now_ms() + c->f->max_time_ms;
  o.api = c->f->api;
  o.call = c->call;
  return o;
}

static void tree_tool(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("tree");
  const char *path = ph_args_string(a, "path", "");
  long long depth = ph_args_int(a, "maxDepth", 1, 1000, -1);
  int nex = 0, fd = -1;
  char **ex = patterns(a, "excludePatterns", &nex);
  tree_ctx *tc = calloc(1, sizeof(*tc));
  fs_walk_state ws;
  fs_walk_opts o;
  fs_target t;
  fs_buf sc = {0};

  if (tc == NULL) {
    ph_reply_text(f->api, call, "out of memory", 1);
    goto cleanup;
  }
  if (ph_args_error(a) != NULL) {
    ph_reply_text(f->api, call, ph_args_error(a), 1);
    goto cleanup;
  }
  fd = open_dir(&c, path, &t);
  if (fd < 0) {
    reply_err(&c);
    goto cleanup;
  }
  tc->f = f;
  tc->max_depth = (int)depth;
  tc->first[0] = 1;
  o = walk_opts(&c, &t, ex, nex);
  o.max_depth = (int)depth;
  o.visit = tree_visit;
  o.leave = tree_leave;
  o.ctx = tc;
  fs_buf_puts(&tc->out, "[");
  if (fs_walk(&o, fd, &ws, &c.err) != 0) {
    reply_err(&c);
    goto cleanup;
  }
  fs_buf_puts(&tc->out, "]");
  fs_buf_puts(&sc, "{\"tree\":");
  fs_buf_puts(&sc, tc->out.data);
  fs_buf_printf(&sc, ",\"truncated\":%s", ws.stopped ? "true" : "false");
  if (ws.stopped) {
    fs_buf_puts(&sc, ",\"note\":");
    fs_buf_json(&sc, stop_note(ws.stopped), strlen(stop_note(ws.stopped)));
  }
  fs_buf_puts(&sc, "}");
  if (sc.failed || tc->out.failed)
    ph_reply_text(f->api, call, "out of memory", 1);
  else
    reply_ok(&c, tc->out.data, tc->out.len, sc.data);

cleanup:
  if (fd >= 0)
    close(fd);
  if (tc != NULL)
    fs_buf_free(&tc->out);
  free(tc);
  fs_buf_free(&sc);
  free_list(ex, nex);
  ph_args_free(a);
  ctx_end(&c);
}

/* ---- organising ---- */

/* Opens the parent of a source or destination of move and copy, after
 * the same checks a write makes. */
static int two_targets(ctx *c, const char *src, const char *dst, fs_target *s,
                       fs_target *d) {
  if (c->f->box.read_only)
    return fs_fail(&c->err, FS_REFUSED,
                   "Access denied: this instance is read-only");
  if (locate(c, src, s) != 0 || locate(c, dst, d) != 0)
    return -1;
  return 0;
}

static void move_tool(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("move");
  const char *src = ph_args_string(a, "source", "");
  const char *dst = ph_args_string(a, "destination", "");
  fs_target s, d;
  fs_buf text = {0}, sc = {0};
  char from[PATH_MAX + 64], to[PATH_MAX + 64];
  struct stat st;
  int sfd = -1, dfd = -1;

  if (two_targets(&c, src, dst, &s, &d) != 0 ||
      (sfd = fs_open_parent(&f->box, &s, &c.err)) < 0 ||
      (dfd = fs_open_parent(&f->box, &d, &c.err)) < 0) {
    reply_err(&c);
    goto cleanup;
  }
  fs_display(&s, from, sizeof(from));
  fs_display(&d, to, sizeof(to));
  if (fstatat(sfd, s.name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    fs_fail(&c.err, FS_NOTFOUND, "%s does not exist", from);
    reply_err(&c);
    goto cleanup;
  }
  if (S_ISREG(st.st_mode) && (!fs_extension_ok(&f->box, s.name, from, &c.err) ||
                              !fs_extension_ok(&f->box, d.name, to, &c.err))) {
    reply_err(&c);
    goto cleanup;
  }
  /* The reference's description promises this; its rename() does not. */
  if (renameat2(sfd, s.name, dfd, d.name, RENAME_NOREPLACE) != 0) {
    int err = errno;
    if (err == EEXIST)
      fs_fail(&c.err, FS_REFUSED,
              "%s already exists; move never overwrites. Delete it first or "
              "pick another destination",
              to);
    else if (err == EXDEV)
      fs_fail(&c.err, FS_FAILED,
              "cannot move %s to %s: they are on different filesystems; copy "
              "and delete instead",
              from, to);
    else if (err == EINVAL)
      fs_fail(&c.err, FS_FAILED, "cannot move %s into itself (%s)", from, to);
    else
      fs_fail(&c.err, FS_FAILED, "cannot move %s to %s: %s", from, to,
              strerror(err));
    reply_err(&c);
    goto cleanup;
  }
  fs_buf_printf(&text, "Successfully moved %s to %s", from, to);
  fs_buf_puts(&sc, "{\"source\":");
  fs_buf_json(&sc, from, strlen(from));
  fs_buf_puts(&sc, ",\"destination\":");
  fs_buf_json(&sc, to, strlen(to));
  fs_buf_puts(&sc, "}");
  reply_ok(&c, text.data, text.len, sc.data);

cleanup:
  if (sfd >= 0)
    close(sfd);
  if (dfd >= 0)
    close(dfd);
  fs_buf_free(&text);
  fs_buf_free(&sc);
  ph_args_free(a);
  ctx_end(&c);
}

static void copy_tool(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("copy");
  const char *src = ph_args_string(a, "source", "");
  const char *dst = ph_args_string(a, "destination", "");
  fs_target s, d;
  fs_buf text = {0}, sc = {0};
  char from[PATH_MAX + 64], to[PATH_MAX + 64], *data = NULL;
  struct stat st;
  size_t len = 0;
  int fd = -1;

  if (two_targets(&c, src, dst, &s, &d) != 0 ||
      (fd = fs_open_file(&f->box, &s, &st, &c.err)) < 0 ||
      (data = fs_read_all(&f->box, fd, &st, &len, &c.err)) == NULL ||
      fs_write_atomic(&f->box, &d, data, len, 1, &c.err) != 0) {
    reply_err(&c);
    goto cleanup;
  }
  fs_display(&s, from, sizeof(from));
  fs_display(&d, to, sizeof(to));
  fs_buf_printf(&text, "Successfully copied %s to %s", from, to);
  fs_buf_puts(&sc, "{\"source\":");
  fs_buf_json(&sc, from, strlen(from));
  fs_buf_puts(&sc, ",\"destination\":");
  fs_buf_json(&sc, to, strlen(to));
  fs_buf_printf(&sc, ",\"bytes\":%zu}", len);
  reply_ok(&c, text.data, text.len, sc.data);

cleanup:
  if (fd >= 0)
    close(fd);
  free(data);
  fs_buf_free(&text);
  fs_buf_free(&sc);
  ph_args_free(a);
  ctx_end(&c);
}

/* Unlinks one file (or symlink) after the sandbox's checks. */
static int delete_target(ctx *c, const fs_target *t) {
  char shown[PATH_MAX + 64];
  struct stat st;
  int fd, rc = -1;

  if (c->f->box.read_only)
    return fs_fail(&c->err, FS_REFUSED,
                   "Access denied: this instance is read-only");
  fs_display(t, shown, sizeof(shown));
  if ((fd = fs_open_parent(&c->f->box, t, &c->err)) < 0)
    return -1;
  if (fstatat(fd, t->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    fs_fail(&c->err, FS_NOTFOUND, "%s does not exist", shown);
  else if (S_ISDIR(st.st_mode))
    fs_fail(&c->err, FS_REFUSED,
            "%s is a directory; delete removes one file, never a directory",
            shown);
  else if (S_ISREG(st.st_mode) &&
           !fs_extension_ok(&c->f->box, t->name, shown, &c->err))
    ;
  else if (unlinkat(fd, t->name, 0) != 0)
    fs_fail(&c->err, FS_FAILED, "cannot delete %s: %s", shown, strerror(errno));
  else
    rc = 0;
  close(fd);
  return rc;
}

static void delete_tool(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("delete");
  const char *path = ph_args_string(a, "path", "");
  fs_target t;
  fs_buf text = {0}, sc = {0};
  char shown[PATH_MAX + 64];

  if (locate(&c, path, &t) != 0 || delete_target(&c, &t) != 0) {
    reply_err(&c);
  } else {
    fs_display(&t, shown, sizeof(shown));
    fs_buf_printf(&text, "Successfully deleted %s", shown);
    fs_buf_puts(&sc, "{\"path\":");
    fs_buf_json(&sc, shown, strlen(shown));
    fs_buf_puts(&sc, "}");
    reply_ok(&c, text.data, text.len, sc.data);
  }
  fs_buf_free(&text);
  fs_buf_free(&sc);
  ph_args_free(a);
  ctx_end(&c);
}

/* ---- searching ---- */

typedef struct search_ctx {
  files *f;
  const char *pattern; /* search: the glob; grep: include glob or NULL. */
  size_t start_len;    /* Length of the start's rel plus its '/'. */
  const char *dir;     /* Display path of the allowed directory. */
  fs_buf text, sc;
  fs_buf failed; /* grep: why a match failed, which fails the call. */
  size_t count;
  size_t max_results;
  int stopped;
  /* grep */
  pcre2_code *re;
  pcre2_match_data *md;
  pcre2_match_context *mc;
  size_t files_searched;
} search_ctx;

static int result_full(search_ctx *s) {
  if (s->count >= s->max_results ||
      s->text.len + s->sc.len > s->f->max_result_bytes) {
    s->stopped = 1;
    return 1;
  }
  return 0;
}

/* Appends the display path of rel to b (raw, or as JSON). */
static void put_path(search_ctx *s, fs_buf *b, const char *rel, int json) {
  char full[PATH_MAX + 64];

  snprintf(full, sizeof(full), "%s/%s", strcmp(s->dir, "/") ? s->dir : "", rel);
  if (json)
    fs_buf_json(b, full, strlen(full));
  else
    fs_buf_puts(b, full);
}

static int search_visit(void *p, int fd, const char *rel, const char *name,
                        unsigned char type, int depth) {
  search_ctx *s = p;

  (void)fd;
  (void)depth;
  if (fs_glob_path(s->pattern, rel + s->start_len, name)) {
    if (result_full(s))
      return -1;
    put_path(s, &s->text, rel, 0);
    fs_buf_puts(&s->text, "\n");
    if (s->count > 0)
      fs_buf_puts(&s->sc, ",");
    put_path(s, &s->sc, rel, 1);
    s->count++;
  }
  return type == DT_DIR;
}

static void search_tool(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("search");
  const char *path = ph_args_string(a, "path", "");
  const char *pattern = ph_args_string(a, "pattern", "*");
  int nex = 0, fd = -1;
  char **ex = patterns(a, "excludePatterns", &nex);
  search_ctx s;
  fs_walk_state ws;
  fs_walk_opts o;
  fs_target t;
  fs_buf sc = {0};

  memset(&s, 0, sizeof(s));
  fd = open_dir(&c, path, &t);
  if (fd < 0) {
    reply_err(&c);
    goto cleanup;
  }
  s.f = f;
  s.max_results = f->max_entries;
  s.pattern = pattern;
  s.start_len = t.rel[0] ? strlen(t.rel) + 1 : 0;
  s.dir = t.dir->path;
  o = walk_opts(&c, &t, ex, nex);
  o.visit = search_visit;
  o.ctx = &s;
  if (fs_walk(&o, fd, &ws, &c.err) != 0) {
    reply_err(&c);
    goto cleanup;
  }
  if (s.count == 0)
    fs_buf_puts(&s.text, "No matches found\n");
  if (ws.stopped)
    fs_buf_printf(&s.text, "(stopped early: %s)\n", stop_note(ws.stopped));
  fs_buf_puts(&sc, "{\"matches\":[");
  if (s.sc.data != NULL)
    fs_buf_puts(&sc, s.sc.data);
  fs_buf_printf(&sc, "],\"truncated\":%s}", ws.stopped ? "true" : "false");
  if (sc.failed || s.text.failed || s.sc.failed)
    ph_reply_text(f->api, call, "out of memory", 1);
  else
    reply_ok(&c, s.text.data, s.text.len, sc.data);

cleanup:
  if (fd >= 0)
    close(fd);
  fs_buf_free(&s.text);
  fs_buf_free(&s.sc);
  fs_buf_free(&sc);
  free_list(ex, nex);
  ph_args_free(a);
  ctx_end(&c);
}

/* Greps one file's bytes: every line with a match, up to the caps. */
static int grep_buffer(search_ctx *s, const char *rel, const char *data,
                       size_t len) {
  size_t at = 0, line = 1;
  const char *scan = data;
  int rc;

  while (at <= len) {
    const char *start, *end, *nl;
    PCRE2_SIZE *ov;
    rc = pcre2_match(s->re, (PCRE2_SPTR)data, len, at, 0, s->md, s->mc);
    if (rc == PCRE2_ERROR_NOMATCH)
      return 0;
    if (rc < 0) {
      PCRE2_UCHAR why[128];
      pcre2_get_error_message(rc, why, sizeof(why));
      put_path(s, &s->failed, rel, 0);
      fs_buf_printf(&s->failed,
                    ": the pattern hit a matching limit (%s); simplify it "
                    "(nested repetition such as (a+)+ backtracks without "
                    "end)",
                    (const char *)why);
      return -1;
    }
    ov = pcre2_get_ovector_pointer(s->md);
    /* The match's line: count newlines from where we last counted. */
    for (; scan < data + ov[0]; scan++)
      line += *scan == '\n';
    start = data + ov[0];
    while (start > data && start[-1] != '\n')
      start--;
    nl = memchr(data + ov[0], '\n', len - ov[0]);
    end = nl != NULL ? nl : data + len;
    if (result_full(s))
      return 1;
    {
      size_t n = (size_t)(end - start);
      int cut = n > GREP_LINE_MAX;
      if (cut)
        n = GREP_LINE_MAX;
      /* Never cut inside a UTF-8 sequence. */
      while (cut && n > 0 && ((unsigned char)start[n] & 0xc0) == 0x80)
        n--;
      if (end > start && end[-1] == '\r' && !cut)
        n--;
      put_path(s, &s->text, rel, 0);
      fs_buf_printf(&s->text, ":%zu: ", line);
      fs_buf_put(&s->text, start, n);
      fs_buf_puts(&s->text, cut ? "...\n" : "\n");
      fs_buf_puts(&s->sc, s->count > 0 ? ",{\"path\":" : "{\"path\":");
      put_path(s, &s->sc, rel, 1);
      fs_buf_printf(&s->sc, ",\"line\":%zu,\"text\":", line);
      fs_buf_json(&s->sc, start, n);
      fs_buf_puts(&s->sc, "}");
      s->count++;
    }
    if (nl == NULL)
      break;
    at = (size_t)(nl - data) + 1;
  }
  return 0;
}

static int grep_visit(void *p, int fd, const char *rel, const char *name,
                      unsigned char type, int depth) {
  search_ctx *s = p;
  struct stat st;
  size_t len = 0;
  char *data;
  fs_err e;
  int file, r = 0;

  (void)depth;
  if (type == DT_DIR)
    return 1;
  if (type != DT_REG || (s->pattern != NULL &&
                         !fs_glob_path(s->pattern, rel + s->start_len, name)))
    return 0;
  file = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (file < 0)
    return 0;
  memset(&e, 0, sizeof(e));
  if (fstat(file, &st) == 0 && S_ISREG(st.st_mode) &&
      st.st_size <= s->f->box.max_file_size &&
      (data = fs_read_all(&s->f->box, file, &st, &len, &e)) != NULL) {
    s->files_searched++;
    /* Binary files are skipped, as grep -I does. */
    if (!fs_looks_binary(data, len))
      r = grep_buffer(s, rel, data, len);
    free(data);
  }
  close(file);
  return r != 0 ? -1 : 0;
}

static void grep_tool(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("grep");
  const char *path = ph_args_string(a, "path", "");
  const char *pattern = ph_args_string(a, "pattern", "");
  const char *include = ph_args_string(a, "include", NULL);
  int regex = ph_args_bool(a, "regex", 0);
  int icase = ph_args_bool(a, "ignoreCase", 0);
  long long max = ph_args_int(a, "maxResults", 1, 1000000, -1);
  int nex = 0, fd = -1, code;
  char **ex = patterns(a, "excludePatterns", &nex);
  search_ctx s;
  fs_walk_state ws;
  fs_walk_opts o;
  fs_target t;
  fs_buf sc = {0};
  PCRE2_SIZE erroff;
  PCRE2_UCHAR msg[256];

  memset(&s, 0, sizeof(s));
  if (ph_args_error(a) != NULL || pattern[0] == '\0') {
    ph_reply_text(
        f->api, call,
        ph_args_error(a) ? ph_args_error(a) : "pattern: must not be empty", 1);
    goto cleanup;
  }
  s.re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                       (regex ? PCRE2_MULTILINE : PCRE2_LITERAL) |
                           (icase ? PCRE2_CASELESS : 0) | PCRE2_UTF |
                           PCRE2_MATCH_INVALID_UTF,
                       &code, &erroff, NULL);
  if (s.re == NULL) {
    pcre2_get_error_message(code, msg, sizeof(msg));
    ph_reply_textf(f->api, call, 1,
                   "pattern: not a valid regular expression at offset %zu: "
                   "%s",
                   (size_t)erroff, (const char *)msg);
    goto cleanup;
  }
  pcre2_jit_compile(s.re, PCRE2_JIT_COMPLETE);
  s.md = pcre2_match_data_create_from_pattern(s.re, NULL);
  s.mc = pcre2_match_context_create(NULL);
  if (s.md == NULL || s.mc == NULL) {
    ph_reply_text(f->api, call, "out of memory", 1);
    goto cleanup;
  }
  pcre2_set_match_limit(s.mc, GREP_MATCH_LIMIT);
  fd = open_dir(&c, path, &t);
  if (fd < 0) {
    reply_err(&c);
    goto cleanup;
  }
  s.f = f;
  s.pattern = include;
  s.start_len = t.rel[0] ? strlen(t.rel) + 1 : 0;
  s.dir = t.dir->path;
  o = walk_opts(&c, &t, ex, nex);
  o.visit = grep_visit;
  o.ctx = &s;
  /* maxResults may only lower the instance's cap. */
  s.max_results =
      max > 0 && (size_t)max < f->max_entries ? (size_t)max : f->max_entries;
  if (fs_walk(&o, fd, &ws, &c.err) != 0) {
    reply_err(&c);
    goto cleanup;
  }
  if (s.failed.data != NULL) {
    fs_fail(&c.err, FS_REFUSED, "%s", s.failed.data);
    reply_err(&c);
    goto cleanup;
  }
  if (s.count == 0)
    fs_buf_puts(&s.text, "No matches found\n");
  if (ws.stopped || s.stopped)
    fs_buf_printf(&s.text, "(stopped early: %s)\n",
                  stop_note(ws.stopped ? ws.stopped : FS_STOP_VISITOR));
  fs_buf_puts(&sc, "{\"matches\":[");
  if (s.sc.data != NULL)
    fs_buf_puts(&sc, s.sc.data);
  fs_buf_printf(&sc, "],\"filesSearched\":%zu,\"truncated\":%s}",
                s.files_searched, ws.stopped || s.stopped ? "true" : "false");
  if (sc.failed || s.text.failed || s.sc.failed)
    ph_reply_text(f->api, call, "out of memory", 1);
  else
    reply_ok(&c, s.text.data, s.text.len, sc.data);

cleanup:
  if (fd >= 0)
    close(fd);
  pcre2_match_data_free(s.md);
  pcre2_match_context_free(s.mc);
  pcre2_code_free(s.re);
  fs_buf_free(&s.failed);
  fs_buf_free(&s.text);
  fs_buf_free(&s.sc);
  fs_buf_free(&sc);
  free_list(ex, nex);
  ph_args_free(a);
  ctx_end(&c);
}

/* ---- information ---- */

static void iso_time(struct timespec ts, char *out, size_t size) {
  struct tm tm;

  gmtime_r(&ts.tv_sec, &tm);
  snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (ts.tv_nsec / 1000000) % 1000);
}

static void info_tool(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("info");
  const char *path = ph_args_string(a, "path", "");
  fs_target t;
  fs_buf text = {0}, sc = {0};
  struct statx sx;
  struct timespec ts;
  char shown[PATH_MAX + 64], created[64], modified[64], accessed[64];
  const char *type;
  int fd = -1;

  if (locate(&c, path, &t) != 0 ||
      (fd = fs_open(&f->box, &t, O_PATH, &c.err)) < 0) {
    reply_err(&c);
    goto cleanup;
  }
  if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, &sx) != 0) {
    fs_fail(&c.err, FS_FAILED, "cannot stat: %s", strerror(errno));
    reply_err(&c);
    goto cleanup;
  }
  fs_display(&t, shown, sizeof(shown));
  ts.tv_sec =
      (sx.stx_mask & STATX_BTIME) ? sx.stx_btime.tv_sec : sx.stx_ctime.tv_sec;
  ts.tv_nsec =
      (sx.stx_mask & STATX_BTIME) ? sx.stx_btime.tv_nsec : sx.stx_ctime.tv_nsec;
  iso_time(ts, created, sizeof(created));
  ts.tv_sec = sx.stx_mtime.tv_sec;
  ts.tv_nsec = sx.stx_mtime.tv_nsec;
  iso_time(ts, modified, sizeof(modified));
  ts.tv_sec = sx.stx_atime.tv_sec;
  ts.tv_nsec = sx.stx_atime.tv_nsec;
  iso_time(ts, accessed, sizeof(accessed));
  type = S_ISDIR(sx.stx_mode)   ? "directory"
         : S_ISREG(sx.stx_mode) ? "file"
                                : "other";
  fs_buf_printf(&text,
                "path: %s\nsize: %llu\ncreated: %s\nmodified: %s\n"
                "accessed: %s\nisDirectory: %s\nisFile: %s\npermissions: %o\n",
                shown, (unsigned long long)sx.stx_size, created, modified,
                accessed, S_ISDIR(sx.stx_mode) ? "true" : "false",
                S_ISREG(sx.stx_mode) ? "true" : "false", sx.stx_mode & 0777);
  fs_buf_puts(&sc, "{\"path\":");
  fs_buf_json(&sc, shown, strlen(shown));
  fs_buf_printf(&sc,
                ",\"size\":%llu,\"created\":\"%s\",\"modified\":\"%s\","
                "\"accessed\":\"%s\",\"type\":\"%s\",\"isDirectory\":%s,"
                "\"isFile\":%s,\"permissions\":\"%o\"}",
                (unsigned long long)sx.stx_size, created, modified, accessed,
                type, S_ISDIR(sx.stx_mode) ? "true" : "false",
                S_ISREG(sx.stx_mode) ? "true" : "false", sx.stx_mode & 0777);
  reply_ok(&c, text.data, text.len, sc.data);

cleanup:
  if (fd >= 0)
    close(fd);
  fs_buf_free(&text);
  fs_buf_free(&sc);
  ph_args_free(a);
  ctx_end(&c);
}

static void roots_tool(ph_call *call, const char *args_json, void *state) {
  BEGIN_TOOL("roots");
  fs_buf text = {0}, sc = {0};
  int i;

  fs_buf_puts(&text, "Allowed directories:\n");
  fs_buf_puts(&sc, "{\"roots\":[");
  for (i = 0; i < c.ndirs; i++) {
    fs_buf_printf(&text, "%s\n", c.dirs[i].path);
    if (i > 0)
      fs_buf_puts(&sc, ",");
    fs_buf_json(&sc, c.dirs[i].path, strlen(c.dirs[i].path));
  }
  if (c.ndirs == 0)
    fs_buf_puts(&text, "(none: the client's roots share nothing with the "
                       "configured ones)\n");
  fs_buf_printf(&sc, "],\"readOnly\":%s}", f->box.read_only ? "true" : "false");
  reply_ok(&c, text.data, text.len, sc.data);
  fs_buf_free(&text);
  fs_buf_free(&sc);
  ph_args_free(a);
  ctx_end(&c);
}

/* ---- resources ---- */

static void read_resource(ph_call *call, const char *uri, const char *vars,
                          void *state) {
  files *f = state;
  char *path = uri_path(uri), *data = NULL;
  const char *mime;
  struct stat st;
  size_t len = 0;
  fs_target t;
  ctx c;
  int fd = -1;

  (void)vars;
  if (ctx_begin(&c, f, call, "resources/read", 1) == PH_EINPUT) {
    f->api->reply(call, "{\"contents\":[]}");
    free(path);
    return;
  }
  if (path == NULL) {
    f->api->reply_error(call, PH_RPC_INVALID_PARAMS,
                        "not a file:// URI with an absolute path", NULL);
    goto cleanup;
  }
  if (locate(&c, path, &t) != 0 ||
      (fd = fs_open_file(&f->box, &t, &st, &c.err)) < 0 ||
      (data = fs_read_all(&f->box, fd, &st, &len, &c.err)) == NULL) {
    if (c.err.kind == FS_REFUSED)
      f->api->log(f->self, PH_LOG_INFO, "files: resources/read refused: %s",
                  c.err.msg);
    f->api->reply_error(call,
                        c.err.kind == FS_NOTFOUND  ? PH_RPC_RESOURCE_NOT_FOUND
                        : c.err.kind == FS_REFUSED ? PH_RPC_INVALID_PARAMS
                                                   : PH_RPC_INTERNAL_ERROR,
                        c.err.msg, NULL);
    goto cleanup;
  }
  mime = mime_of(t.name);
  if (is_text_mime(mime) && !fs_looks_binary(data, len) &&
      fs_utf8_invalid(data, len) < 0)
    ph_reply_resource_text(f->api, call, uri, mime, data);
  else
    ph_reply_resource_blob(f->api, call, uri, mime, data, len);

cleanup:
  if (fd >= 0)
    close(fd);
  free(data);
  free(path);
  ctx_end(&c);
}

/* ---- the fs service ---- */

static void service_fail(ctx *c) {
  const char *reason = c->err.kind == FS_REFUSED    ? "refused"
                       : c->err.kind == FS_NOTFOUND ? "not_found"
                                                    : "failed";
  char data[64];

  if (c->err.kind == FS_REFUSED)
    c->f->api->log(c->f->self, PH_LOG_INFO, "files: fs service refused: %s",
                   c->err.msg);
  snprintf(data, sizeof(data), "{\"reason\":\"%s\"}", reason);
  c->f->api->reply_error(c->call, PH_RPC_INVALID_PARAMS, c->err.msg, data);
}

static void serve(ph_call *call, const char *service, const char *request_json,
                  void *state) {
  files *f = state;
  ph_args *a = ph_args_parse(request_json);
  const char *op = ph_args_string(a, "op", "");
  const char *path = ph_args_string(a, "path", "");
  fs_buf out = {0};
  fs_dirent *list = NULL;
  size_t n = 0, len = 0, i;
  char *data = NULL, shown[PATH_MAX + 64];
  fs_target t;
  ctx c;
  int fd = -1, created;

  (void)service;
  /* A service call acts for another plugin, inside the configured roots. */
  ctx_begin(&c, f, call, "fs service", 0);
  if (ph_args_error(a) != NULL) {
    fs_fail(&c.err, FS_FAILED, "%s", ph_args_error(a));
    service_fail(&c);
    goto cleanup;
  }
  if (strcmp(op, "roots") == 0) {
    fs_buf_puts(&out, "{\"roots\":[");
    for (i = 0; i < (size_t)c.ndirs; i++) {
      if (i > 0)
        fs_buf_puts(&out, ",");
      fs_buf_json(&out, c.dirs[i].path, strlen(c.dirs[i].path));
    }
    fs_buf_printf(&out, "],\"readOnly\":%s}",
                  f->box.read_only ? "true" : "false");
    f->api->reply(call, out.data);
    goto cleanup;
  }
  if (locate(&c, path, &t) != 0) {
    service_fail(&c);
    goto cleanup;
  }
  fs_display(&t, shown, sizeof(shown));
  if (strcmp(op, "read") == 0) {
    if ((data = read_text_file(&c, &t, &len)) == NULL) {
      service_fail(&c);
      goto cleanup;
    }
    fs_buf_puts(&out, "{\"path\":");
    fs_buf_json(&out, shown, strlen(shown));
    fs_buf_puts(&out, ",\"content\":");
    fs_buf_json(&out, data, len);
    fs_buf_puts(&out, "}");
  } else if (strcmp(op, "write") == 0 || strcmp(op, "create") == 0) {
    const char *content = ph_args_string(a, "content", "");
    if (f->box.read_only) {
      fs_fail(&c.err, FS_REFUSED, "Access denied: this instance is read-only");
      service_fail(&c);
      goto cleanup;
    }
    if (ph_args_bool(a, "parents", 0) && t.name != t.rel) {
      fs_target dir = t;
      dir.rel[t.name - t.rel - 1] = '\0';
      dir.name = strrchr(dir.rel, '/') ? strrchr(dir.rel, '/') + 1 : dir.rel;
      if (make_dirs(&c, &dir, &created) != 0) {
        service_fail(&c);
        goto cleanup;
      }
    }
    if (fs_write_atomic(&f->box, &t, content, strlen(content),
                        strcmp(op, "create") == 0, &c.err) != 0) {
      service_fail(&c);
      goto cleanup;
    }
    fs_buf_puts(&out, "{\"path\":");
    fs_buf_json(&out, shown, strlen(shown));
    fs_buf_printf(&out, ",\"bytes\":%zu}", strlen(content));
  } else if (strcmp(op, "list") == 0) {
    if ((fd = fs_open(&f->box, &t, O_RDONLY | O_DIRECTORY, &c.err)) < 0 ||
        fs_read_dir(&f->box, fd, t.rel, &list, &n, &c.err) != 0) {
      service_fail(&c);
      goto cleanup;
    }
    fs_buf_puts(&out, "{\"path\":");
    fs_buf_json(&out, shown, strlen(shown));
    fs_buf_puts(&out, ",\"entries\":[");
    for (i = 0; i < n && i < f->max_entries; i++) {
      fs_buf_puts(&out, i ? ",{\"name\":" : "{\"name\":");
      fs_buf_json(&out, list[i].name, strlen(list[i].name));
      fs_buf_printf(&out, ",\"type\":\"%s\"}", type_name(list[i].type));
    }
    fs_buf_printf(&out, "],\"truncated\":%s}",
                  n > f->max_entries ? "true" : "false");
  } else if (strcmp(op, "mkdir") == 0) {
    if (f->box.read_only) {
      fs_fail(&c.err, FS_REFUSED, "Access denied: this instance is read-only");
      service_fail(&c);
      goto cleanup;
    }
    if (make_dirs(&c, &t, &created) != 0) {
      service_fail(&c);
      goto cleanup;
    }
    fs_buf_puts(&out, "{\"path\":");
    fs_buf_json(&out, shown, strlen(shown));
    fs_buf_printf(&out, ",\"created\":%s}", created ? "true" : "false");
  } else if (strcmp(op, "delete") == 0) {
    if (delete_target(&c, &t) != 0) {
      service_fail(&c);
      goto cleanup;
    }
    fs_buf_puts(&out, "{\"path\":");
    fs_buf_json(&out, shown, strlen(shown));
    fs_buf_puts(&out, "}");
  } else {
    fs_fail(&c.err, FS_FAILED,
            "op: must be one of read, write, create, list, mkdir, delete, "
            "roots");
    service_fail(&c);
    goto cleanup;
  }
  if (out.failed)
    f->api->reply_error(call, PH_RPC_INTERNAL_ERROR, "out of memory", NULL);
  else
    f->api->reply(call, out.data);

cleanup:
  if (fd >= 0)
    close(fd);
  fs_dirents_free(list, n);
  free(data);
  fs_buf_free(&out);
  ph_args_free(a);
  ctx_end(&c);
}

/* ---- the descriptor ---- */

#define PATH_ARG(what)                                                         \
  "\"path\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4095,"          \
  "\"description\":\"" what " (absolute, or relative to the first allowed "    \
  "directory)\"}"
#define OBJ(props, req)                                                        \
  "{\"type\":\"object\",\"properties\":{" props "},\"required\":[" req "]}"
#define EXCLUDES                                                               \
  "\"excludePatterns\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},"   \
  "\"default\":[],\"description\":\"Globs to leave out (a glob without '/' "   \
  "matches names at any depth, one with '/' relative paths; ** crosses "       \
  "directories)\"}"
#define STR "{\"type\":\"string\"}"
#define INT "{\"type\":\"integer\"}"
#define BOOL "{\"type\":\"boolean\"}"
#define ENTRY_TYPE                                                             \
  "{\"type\":\"string\",\"enum\":[\"file\",\"directory\",\"symlink\","         \
  "\"other\"]}"

/* Hints: reading tools are read-only and idempotent; nothing here reaches
 * beyond the machine's own files. */
#define READS                                                                  \
  { PH_HINT_TRUE, PH_HINT_FALSE, PH_HINT_TRUE, PH_HINT_FALSE }

static const ph_tool tools[] = {
    {.name = "read_text",
     .title = "Read a text file",
     .description =
         "Reads a UTF-8 text file inside the allowed directories. Use it to "
         "see a file's contents; for a part of a large file give head or "
         "tail (first or last N lines) or offset and limit (a window of "
         "lines, offset counting from 1). Returns the text, with the path, "
         "its total line count and byte size. Binary files and invalid "
         "UTF-8 are refused with the byte offset; use read_media for those.",
     .input_schema = OBJ(
         PATH_ARG(
             "The file to read") ",\"head\":{\"type\":"
                                 "\"integer\",\"minimum\":0,\"description\":"
                                 "\"Only "
                                 "the first N "
                                 "lines\"},\"tail\":{\"type\":\"integer\","
                                 "\"minimum\":0,\"description\":\"Only the "
                                 "last N "
                                 "lines\"},\"offset\":{\"type\":\"integer\","
                                 "\"minimum\":1,\"description\":\"First line "
                                 "of a "
                                 "window, from "
                                 "1\"},\"limit\":{\"type\":\"integer\","
                                 "\"minimum\":0,\"description\":\"Lines in the "
                                 "window\"}",
         "\"path\""),
     .output_schema =
         OBJ("\"path\":" STR ",\"content\":" STR ",\"contentInText\":" BOOL
             ",\"totalLines\":" INT ",\"bytes\":" INT,
             "\"path\""),
     .annotations = READS,
     .handler = read_text},
    {.name = "read_media",
     .title = "Read an image, audio or binary file",
     .description =
         "Reads any file inside the allowed directories as base64. Use it "
         "for images and audio (returned as image or audio content with "
         "their MIME type, so the model can see or hear them) and for other "
         "binary files (returned as an embedded blob resource). The MIME "
         "type comes from the extension.",
     .input_schema = OBJ(PATH_ARG("The file to read"), "\"path\""),
     .output_schema = OBJ("\"path\":" STR ",\"mimeType\":" STR
                          ",\"kind\":{\"type\":\"string\",\"enum\":[\"image\","
                          "\"audio\",\"blob\"]},\"size\":" INT,
                          "\"path\",\"mimeType\""),
     .annotations = READS,
     .handler = read_media},
    {.name = "read_many",
     .title = "Read several text files",
     .description =
         "Reads up to 100 text files at once, for comparing or collecting "
         "them. A file that cannot be read is reported with its error and "
         "does not stop the others. Returns each path with its content or "
         "error.",
     .input_schema =
         OBJ("\"paths\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":100,"
             "\"items\":{\"type\":\"string\",\"minLength\":1}}",
             "\"paths\""),
     .output_schema =
         OBJ("\"files\":{\"type\":\"array\",\"items\":" OBJ(
                 "\"path\":" STR ",\"content\":" STR ",\"error\":" STR,
                 "\"path\"") "}",
             "\"files\""),
     .annotations = READS,
     .handler = read_many},
    {.name = "write",
     .title = "Write a file",
     .description =
         "Creates a text file or replaces one completely with content. Use "
         "edit for changes to part of a file. The write is atomic: a "
         "temporary file is written and synced, then renamed over the old "
         "one (whose permissions it keeps), so a failure never leaves a "
         "partial file. Returns the path and bytes written.",
     .input_schema =
         OBJ(PATH_ARG("The file to write") ",\"content\":{"
                                           "\"type\":\"string\","
                                           "\"description\":\"The whole new "
                                           "content\"}",
             "\"path\",\"content\""),
     .output_schema = OBJ("\"path\":" STR ",\"bytes\":" INT, "\"path\""),
     .annotations = {PH_HINT_FALSE, PH_HINT_TRUE, PH_HINT_TRUE, PH_HINT_FALSE},
     .handler = write_file},
    {.name = "edit",
     .title = "Edit a text file",
     .description =
         "Applies exact text replacements to a file, in order: each oldText "
         "must match exactly once (or, failing an exact match, once when "
         "leading and trailing whitespace of each line is ignored); an edit "
         "that matches several places is refused unless it sets "
         "replaceAll. dryRun shows the result without writing. Line endings "
         "and a final newline (or its absence) are kept. Returns a "
         "git-style unified diff.",
     .input_schema = OBJ(
         PATH_ARG(
             "The file to edit") ",\"edits\":{\"type\":\"array\","
                                 "\"minItems\":1,\"maxItems\":100,"
                                 "\"items\":" OBJ(
                                     "\"oldText\":{\"type\":"
                                     "\"string\",\"minLength\":1,"
                                     "\"description\":\"Text to "
                                     "find\"},\"newText\":{\"type\":"
                                     "\"string\",\"description\":"
                                     "\"Text to put instead\"},"
                                     "\"replaceAll\":{\"type\":"
                                     "\"boolean\",\"default\":false}",
                                     "\"oldText\",\"newText\"") "},"
                                                                "\"dryRun\":{"
                                                                "\"type\":"
                                                                "\"boolean\","
                                                                "\"default\":"
                                                                "false,"
                                                                "\"description"
                                                                "\":"
                                                                "\"Preview the "
                                                                "diff only\"}",
         "\"path\",\"edits\""),
     .output_schema = OBJ("\"path\":" STR ",\"diff\":" STR ",\"dryRun\":" BOOL
                          ",\"applied\":" BOOL,
                          "\"path\",\"diff\""),
     .annotations = {PH_HINT_FALSE, PH_HINT_TRUE, PH_HINT_FALSE, PH_HINT_FALSE},
     .handler = edit_file},
    {.name = "mkdir",
     .title = "Create a directory",
     .description =
         "Creates a directory and any missing parents; succeeds quietly if "
         "it already exists. Returns the path and whether anything was "
         "created.",
     .input_schema = OBJ(PATH_ARG("The directory to create"), "\"path\""),
     .output_schema = OBJ("\"path\":" STR ",\"created\":" BOOL, "\"path\""),
     .annotations = {PH_HINT_FALSE, PH_HINT_FALSE, PH_HINT_TRUE, PH_HINT_FALSE},
     .handler = mkdir_tool},
    {.name = "list",
     .title = "List a directory",
     .description =
         "Lists the entries of one directory, each marked [FILE], [DIR] or "
         "[LINK] (symlink), sorted by name. Use tree for a recursive view "
         "and list_with_sizes for sizes. Hidden files are never listed.",
     .input_schema = OBJ(PATH_ARG("The directory to list"), "\"path\""),
     .output_schema =
         OBJ("\"path\":" STR ",\"entries\":{\"type\":\"array\",\"items\":" OBJ(
                 "\"name\":" STR ",\"type\":" ENTRY_TYPE,
                 "\"name\",\"type\"") "},\"truncated\":" BOOL,
             "\"entries\""),
     .annotations = READS,
     .handler = list_tool},
    {.name = "list_with_sizes",
     .title = "List a directory with sizes",
     .description =
         "Lists one directory's entries with file sizes, sorted by name or "
         "by size (largest first), with the number of files and "
         "directories and their combined size. Use it to find what takes "
         "space.",
     .input_schema =
         OBJ(PATH_ARG("The directory to list") ",\"sortBy\":{"
                                               "\"type\":\"string\",\"enum\":["
                                               "\"name\",\"size\"],"
                                               "\"default\":\"name\"}",
             "\"path\""),
     .output_schema = OBJ(
         "\"path\":" STR ",\"entries\":{\"type\":\"array\",\"items\":" OBJ(
             "\"name\":" STR ",\"type\":" ENTRY_TYPE ",\"size\":" INT,
             "\"name\",\"type\"") "},\"truncated\":" BOOL ",\"totalFiles\":" INT
                                  ",\"totalDirectories\":" INT
                                  ",\"totalSize\":" INT,
         "\"entries\""),
     .annotations = READS,
     .handler = list_sizes_tool},
    {.name = "tree",
     .title = "Directory tree",
     .description =
         "Returns a directory's contents recursively as JSON: entries with "
         "name, type (file, directory, symlink) and, for directories, "
         "children. Symlinks are shown, never followed. maxDepth limits the "
         "levels; excludePatterns leaves names or paths out. Large trees "
         "stop at the instance's caps with truncated set.",
     .input_schema =
         OBJ(PATH_ARG("The directory") ",\"maxDepth\":{\"type\":"
                                       "\"integer\",\"minimum\":1,\"maximum\":"
                                       "1000}," EXCLUDES,
             "\"path\""),
     .output_schema = OBJ("\"tree\":{\"type\":\"array\"},\"truncated\":" BOOL
                          ",\"note\":" STR,
                          "\"tree\""),
     .annotations = READS,
     .handler = tree_tool},
    {.name = "move",
     .title = "Move or rename",
     .description =
         "Moves or renames a file or directory inside the allowed "
         "directories. Never overwrites: if the destination exists the move "
         "is refused. Returns both paths.",
     .input_schema = OBJ("\"source\":{\"type\":\"string\",\"minLength\":1},"
                         "\"destination\":{\"type\":\"string\","
                         "\"minLength\":1}",
                         "\"source\",\"destination\""),
     .output_schema = OBJ("\"source\":" STR ",\"destination\":" STR,
                          "\"source\",\"destination\""),
     .annotations = {PH_HINT_FALSE, PH_HINT_FALSE, PH_HINT_FALSE,
                     PH_HINT_FALSE},
     .handler = move_tool},
    {.name = "search",
     .title = "Find files by name",
     .description =
         "Finds files and directories under path whose names match a glob "
         "(*.md, test_*; a pattern with '/' matches the path relative to "
         "path, and ** crosses directories, as in src/**/*.c). Recursive, "
         "never through symlinks; excludePatterns leaves names or paths "
         "out. Returns full paths, at most the instance's max_entries.",
     .input_schema =
         OBJ(PATH_ARG("Where to start") ",\"pattern\":{\"type\":"
                                        "\"string\",\"minLength\":1}," EXCLUDES,
             "\"path\",\"pattern\""),
     .output_schema = OBJ("\"matches\":{\"type\":\"array\",\"items\":" STR
                          "},\"truncated\":" BOOL,
                          "\"matches\""),
     .annotations = READS,
     .handler = search_tool},
    {.name = "grep",
     .title = "Search file contents",
     .description =
         "Searches the text of files under path for a literal string, or a "
         "regular expression (Perl syntax) with regex true. include limits "
         "it to file names matching a glob; binary files are skipped. "
         "Returns each matching line as path:line: text, at most maxResults "
         "(capped by the instance).",
     .input_schema =
         OBJ(PATH_ARG("Where to start") ",\"pattern\":{\"type\":\"string\","
                                        "\"minLength\":1},\"regex\":{\"type\":"
                                        "\"boolean\",\"default\":false},"
                                        "\"ignoreCase\":{\"type\":\"boolean\","
                                        "\"default\":false},\"include\":{"
                                        "\"type\":\"string\",\"description\":"
                                        "\"Glob on file names, e.g. *.py\"},"
                                        "\"maxResults\":{\"type\":\"integer\","
                                        "\"minimum\":1}," EXCLUDES,
             "\"path\",\"pattern\""),
     .output_schema =
         OBJ("\"matches\":{\"type\":\"array\",\"items\":" OBJ(
                 "\"path\":" STR ",\"line\":" INT ",\"text\":" STR,
                 "\"path\",\"line\",\"text\"") "},\"filesSearched\":" INT
                                               ",\"truncated\":" BOOL,
             "\"matches\""),
     .annotations = READS,
     .handler = grep_tool},
    {.name = "info",
     .title = "File information",
     .description =
         "Returns a file's or directory's size, creation, modification and "
         "access times (ISO 8601, UTC), type and permissions (octal), "
         "without reading it.",
     .input_schema = OBJ(PATH_ARG("The file or directory"), "\"path\""),
     .output_schema = OBJ("\"path\":" STR ",\"size\":" INT ",\"created\":" STR
                          ",\"modified\":" STR ",\"accessed\":" STR
                          ",\"type\":" STR ",\"isDirectory\":" BOOL
                          ",\"isFile\":" BOOL ",\"permissions\":" STR,
                          "\"path\",\"size\",\"type\""),
     .annotations = READS,
     .handler = info_tool},
    {.name = "roots",
     .title = "Allowed directories",
     .description =
         "Lists the directories this server may touch (the configured "
         "roots, narrowed to the client's roots when it declares them). "
         "Use it first to know where paths may point.",
     .input_schema = "{\"type\":\"object\",\"properties\":{}}",
     .output_schema = OBJ("\"roots\":{\"type\":\"array\",\"items\":" STR
                          "},\"readOnly\":" BOOL,
                          "\"roots\""),
     .annotations = READS,
     .handler = roots_tool},
    {.name = "delete",
     .title = "Delete a file",
     .description =
         "Deletes one file (or a symlink, not what it points to). Never a "
         "directory. Cannot be undone. Returns the path deleted.",
     .input_schema = OBJ(PATH_ARG("The file to delete"), "\"path\""),
     .output_schema = OBJ("\"path\":" STR, "\"path\""),
     .annotations = {PH_HINT_FALSE, PH_HINT_TRUE, PH_HINT_TRUE, PH_HINT_FALSE},
     .handler = delete_tool},
    {.name = "copy",
     .title = "Copy a file",
     .description =
         "Copies one file to a new path inside the allowed directories. "
         "Never overwrites: an existing destination is refused. Returns both "
         "paths and the bytes copied.",
     .input_schema = OBJ("\"source\":{\"type\":\"string\",\"minLength\":1},"
                         "\"destination\":{\"type\":\"string\","
                         "\"minLength\":1}",
                         "\"source\",\"destination\""),
     .output_schema =
         OBJ("\"source\":" STR ",\"destination\":" STR ",\"bytes\":" INT,
             "\"source\",\"destination\""),
     .annotations = {PH_HINT_FALSE, PH_HINT_FALSE, PH_HINT_TRUE, PH_HINT_FALSE},
     .handler = copy_tool},
    {0}};

/* Template variables never hold '/' (RFC 6570 level 1), so one template
 * per depth routes file:// URIs to the handler, which parses the URI
 * itself. See README.md, "Resources". */
#define T(uri)                                                                 \
  {                                                                            \
    .uri_template = uri, .name = "file",                                       \
    .title = "A file inside the allowed directories",                          \
    .description = "file:// URI of a file under a root; text as text, other "  \
                   "files as base64 blobs. Subscribable.",                     \
    .handler = read_resource                                                   \
  }
#define P1 "file:///{a}"
#define P2 P1 "/{b}"
#define P3 P2 "/{c}"
#define P4 P3 "/{d}"
#define P5 P4 "/{e}"
#define P6 P5 "/{f}"
#define P7 P6 "/{g}"
#define P8 P7 "/{h}"
#define P9 P8 "/{i}"
#define P10 P9 "/{j}"
#define P11 P10 "/{k}"
#define P12 P11 "/{l}"

static const ph_resource_template templates[] = {
    T(P1), T(P2), T(P3),  T(P4),  T(P5),  T(P6), T(P7),
    T(P8), T(P9), T(P10), T(P11), T(P12), {0}};

PH_PLUGIN(.name = "files", .version = "1.0",
          .description = "Sandboxed files under configured roots: read, "
                         "search, edit and organise; the fs service",
          .provides = (const char *const[]){"fs", NULL}, .init = files_init,
          .fini = files_fini, .tools = tools, .templates = templates,
          .service = serve);
