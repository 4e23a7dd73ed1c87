/* files.h: the files plugin's internal interfaces, shared by its files:
 * sandbox.c (path resolution and every open), text.c (UTF-8, lines, edits,
 * diffs, globs), walk.c (listings, trees, search, grep), watch.c (inotify
 * for resource subscriptions) and files.c (the plugin: config, tools,
 * resources, the fs service). Nothing here is visible to other plugins. */
#ifndef PH_FILES_H
#define PH_FILES_H

#include <plughost.h>

#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* ---- errors ----
 * Every refusal and failure is carried as a message the client reads. A
 * refusal (the sandbox said no) is logged once at info by the tool layer;
 * an I/O failure is just reported. */
enum fs_kind { FS_OK = 0, FS_REFUSED, FS_NOTFOUND, FS_FAILED };

typedef struct fs_err {
  int kind;       /* fs_kind. */
  char msg[1024]; /* What was refused or failed, and why. */
} fs_err;

/* Records the first error only: later ones are consequences. Returns -1. */
int fs_fail(fs_err *e, int kind, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- growable text buffer ---- */
typedef struct fs_buf {
  char *data;
  size_t len, cap;
  int failed; /* Out of memory once: every later append is dropped. */
} fs_buf;

int fs_buf_reserve(fs_buf *b, size_t n);
void fs_buf_put(fs_buf *b, const char *s, size_t n);
void fs_buf_puts(fs_buf *b, const char *s);
void fs_buf_printf(fs_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Bytes of s once escaped as the body of a JSON string. */
size_t fs_json_len(const char *s, size_t n);
/* Appends s as a JSON string, quotes included. */
void fs_buf_json(fs_buf *b, const char *s, size_t n);
/* The same when fs_json_len(s, n) is known: escaped. */
void fs_buf_json_measured(fs_buf *b, const char *s, size_t n, size_t escaped);
void fs_buf_free(fs_buf *b);

/* ---- the sandbox ---- */

/* One allowed directory: a configured root, or the part of one that the
 * client's MCP roots narrow it to. */
typedef struct fs_dir {
  char *path;  /* Its real path (absolute, no symlinks): what clients see. */
  char *given; /* The path as configured, made absolute, or NULL. */
  int fd;      /* O_PATH|O_DIRECTORY descriptor every path resolves under. */
} fs_dir;

/* The instance's rules. Read-only after init: shared by every worker. */
typedef struct fs_box {
  fs_dir *dirs; /* The configured roots. */
  int ndirs;
  char **hidden; /* Globs on names (or relative paths, with a '/'). */
  int nhidden;
  char **exts; /* Allowed extensions, lower case, no dot; NULL: any. */
  int nexts;
  long long max_file_size; /* Bytes a file may have to be read or written. */
  int read_only;           /* No writing tool, no write through the service. */
  int walk_only; /* Never openat2: the component walk (tests, old kernels). */
} fs_box;

/* A path located lexically inside one allowed directory. */
typedef struct fs_target {
  const fs_dir *dir;
  char rel[PATH_MAX]; /* Normalised, relative to dir ("" is dir itself). */
  const char *name;   /* The last component inside rel ("" for dir). */
} fs_target;

/* Whether openat2 works here; probed once at init. */
int fs_openat2_available(void);

/* Finds which of dirs holds `path` (absolute, or relative to dirs[0]) and
 * normalises it, without touching the filesystem. Refuses empty or
 * over-long paths and components, "..", control characters, hidden names,
 * and absolute paths outside every dir. 0 or -1 with e. */
int fs_locate(const fs_box *b, const fs_dir *dirs, int ndirs, const char *path,
              fs_target *t, fs_err *e);

/* Opens t with open(2) flags (O_RDONLY, O_PATH|O_DIRECTORY, ...), every
 * component resolved beneath t->dir->fd: openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS), or the component walk. Symlinks are followed
 * only while they stay inside the directory and lead to no hidden name.
 * Returns the descriptor, or -1 with e. */
int fs_open(const fs_box *b, const fs_target *t, int flags, fs_err *e);

/* Opens t's parent directory (O_PATH) for an operation on t->name: create,
 * rename, unlink. t must not be the allowed directory itself. */
int fs_open_parent(const fs_box *b, const fs_target *t, fs_err *e);

/* Opens a regular file for reading and checks it: not a device, FIFO or
 * socket (opened non-blocking, so a FIFO never hangs), not a directory, not
 * over max_file_size, an allowed extension. st receives its fstat. */
int fs_open_file(const fs_box *b, const fs_target *t, struct stat *st,
                 fs_err *e);

/* Reads a whole regular file opened by fs_open_file into a malloc'd buffer
 * (NUL-terminated; *len without it). Refuses a file that grew past the
 * limit while being read. */
char *fs_read_all(const fs_box *b, int fd, const struct stat *st, size_t *len,
                  fs_err *e);

/* Whether a name passes the rules a listing applies (hidden patterns and,
 * for files, the extension list). rel is its path relative to the dir. */
int fs_visible(const fs_box *b, const char *rel, const char *name, int is_dir);

/* Extension check alone; 0 with e when refused. */
int fs_extension_ok(const fs_box *b, const char *name, const char *shown,
                    fs_err *e);

/* Writes len bytes to t atomically: a temporary file in the same
 * directory, fsync, rename over t (keeping the mode of a file it replaces).
 * With no_replace, an existing t is refused and never touched. A failure at
 * any point (full disk, file size limit) removes the temporary file and
 * leaves t as it was. */
int fs_write_atomic(const fs_box *b, const fs_target *t, const char *data,
                    size_t len, int no_replace, fs_err *e);

/* The absolute path a client sees for t (dir path + rel). */
void fs_display(const fs_target *t, char *out, size_t size);

/* ---- text ---- */

/* Byte offset of the first invalid UTF-8 sequence, or -1 when valid. */
long long fs_utf8_invalid(const char *s, size_t len);

/* Non-zero when the bytes look binary (a NUL in the first 8 KiB). */
int fs_looks_binary(const char *s, size_t len);

/* Glob match with `*` (within a path component), `**` (across), `?` and
 * `[...]` classes. Non-zero on a match. */
int fs_glob(const char *pattern, const char *s);

/* Matches pattern against a path relative to a walk's start: a pattern
 * without '/' matches the last component at any depth, one with '/' the
 * whole relative path. */
int fs_glob_path(const char *pattern, const char *rel, const char *name);

/* One edit of the edit tool. */
typedef struct fs_edit {
  const char *old_text;
  const char *new_text;
  int replace_all;
} fs_edit;

/* Applies edits in order to text (len bytes) and returns the new text
 * (malloc'd, *out_len), or NULL with e naming the edit that failed to
 * match or matched more than once. Line endings: the edit texts are
 * matched with \n, and CRLF files keep CRLF. */
char *fs_apply_edits(const char *text, size_t len, const fs_edit *edits,
                     int nedits, size_t *out_len, fs_err *e);

/* A git-style unified diff (3 lines of context) of a against b, with the
 * path in the --- and +++ lines, appended to out. Empty when equal. */
void fs_unified_diff(fs_buf *out, const char *path, const char *a, size_t alen,
                     const char *b, size_t blen);

/* ---- the inotify watcher (resources/subscribe) ---- */
typedef struct fs_watch fs_watch;

/* Starts a thread that watches every directory under the box's roots (up
 * to max_dirs) and calls api->notify(self, RESOURCE_UPDATED, uri) for
 * every file that changes. NULL when inotify is unavailable (logged). */
fs_watch *fs_watch_start(const ph_host_api *api, ph_instance *self,
                         const fs_box *b, int max_dirs);
void fs_watch_stop(fs_watch *w);

/* The file:// URI of an absolute path (percent-encoded), appended. */
void fs_uri(fs_buf *out, const char *abs_path);

#endif
