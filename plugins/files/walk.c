/* walk.c: directory traversal for list, tree, search, grep and the watcher.
 * A walk starts from a descriptor the sandbox opened and goes down with
 * openat(O_NOFOLLOW | O_DIRECTORY) one directory at a time, so it never
 * follows a symlink (a symlink is reported as one, never entered) and a
 * directory swapped for a symlink mid-walk fails to open instead of
 * leading outside. Hidden names, disallowed extensions and the caller's
 * excludePatterns are skipped; caps on entries and time stop it early. */

#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

long long fs_now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const fs_dirent *)a)->name, ((const fs_dirent *)b)->name);
}

void fs_dirents_free(fs_dirent *d, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    free(d[i].name);
  free(d);
}

int fs_read_dir(const fs_box *b, int fd, const char *rel, fs_dirent **out,
                size_t *count, fs_err *e) {
  size_t cap = 64, n = 0;
  fs_dirent *list = malloc(cap * sizeof(*list)), *grown;
  char path[PATH_MAX];
  struct dirent *de;
  struct stat st;
  DIR *dir;
  int dup_fd = dup(fd);

  *out = NULL;
  *count = 0;
  if (list == NULL || dup_fd < 0) {
    free(list);
    if (dup_fd >= 0)
      close(dup_fd);
    return fs_fail(e, FS_FAILED, "cannot read the directory: %s",
                   strerror(errno));
  }
  dir = fdopendir(dup_fd);
  if (dir == NULL) {
    close(dup_fd);
    free(list);
    return fs_fail(e, FS_FAILED, "cannot read the directory: %s",
                   strerror(errno));
  }
  rewinddir(dir);
  while ((de = readdir(dir)) != NULL) {
    unsigned char type = de->d_type;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (type == DT_UNKNOWN) {
      type = DT_UNKNOWN;
      if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        type = S_ISDIR(st.st_mode)   ? DT_DIR
               : S_ISREG(st.st_mode) ? DT_REG
               : S_ISLNK(st.st_mode) ? DT_LNK
                                     : DT_FIFO;
    }
    snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
    if (!fs_visible(b, path, de->d_name, type == DT_DIR || type == DT_LNK))
      continue;
    if (n == cap) {
      cap *= 2;
      grown = realloc(list, cap * sizeof(*list));
      if (grown == NULL)
        break;
      list = grown;
    }
    list[n].name = strdup(de->d_name);
    list[n].type = type;
    if (list[n].name == NULL)
      break;
    n++;
  }
  closedir(dir);
  qsort(list, n, sizeof(*list), by_name);
  *out = list;
  *count = n;
  return 0;
}

static int excluded(const fs_walk_opts *o, const char *rel, const char *name) {
  int i;

  for (i = 0; i < o->nexcludes; i++)
    if (fs_glob_path(o->excludes[i], rel, name))
      return 1;
  return 0;
}

static int walk_dir(const fs_walk_opts *o, int fd, const char *rel, int depth,
                    fs_walk_state *s, fs_err *e) {
  fs_dirent *list = NULL;
  size_t n = 0, i;
  char path[PATH_MAX];
  int sub, r, rc = 0;

  /* An unreadable subdirectory is skipped, not the end of the walk. */
  if (fs_read_dir(o->b, fd, rel, &list, &n, depth == 0 ? e : NULL) != 0)
    return depth == 0 ? -1 : 0;
  for (i = 0; i < n && !s->stopped; i++) {
    if (s->entries >= o->max_entries) {
      s->stopped = FS_STOP_ENTRIES;
      break;
    }
    if ((s->entries & 63) == 0 &&
        ((o->deadline_ms > 0 && fs_now_ms() > o->deadline_ms) ||
         (o->api != NULL && o->call != NULL && o->api->cancelled(o->call)))) {
      s->stopped = FS_STOP_TIME;
      break;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "",
                         list[i].name) >= sizeof(path))
      continue;
    if (excluded(o, path, list[i].name))
      continue;
    s->entries++;
    r = o->visit(o->ctx, fd, path, list[i].name, list[i].type, depth);
    if (r < 0) {
      s->stopped = FS_STOP_VISITOR;
      break;
    }
    if (r == 1 && list[i].type == DT_DIR &&
        (o->max_depth < 0 || depth + 1 < o->max_depth)) {
      sub = openat(fd, list[i].name,
                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) {
        rc = walk_dir(o, sub, path, depth + 1, s, e);
        close(sub);
        if (rc != 0)
          break;
      }
    }
    if (r == 1 && list[i].type == DT_DIR && o->leave != NULL)
      o->leave(o->ctx, path, depth);
  }
  fs_dirents_free(list, n);
  return rc;
}

int fs_walk(const fs_walk_opts *o, int fd, fs_walk_state *s, fs_err *e) {
  memset(s, 0, sizeof(*s));
  return walk_dir(o, fd, o->start_rel != NULL ? o->start_rel : "", 0, s, e);
}
