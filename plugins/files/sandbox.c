/* sandbox.c: every path a client gives is resolved here, and only here,
 * against an open descriptor of an allowed directory; every open, create,
 * rename and unlink then works on descriptors, so there is no window
 * between checking a path and using it (the reference server realpaths a
 * path and opens it afterwards, and a symlink swapped in between wins).
 *
 * Resolution is openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) where the
 * kernel has it (5.6 and later; glibc 2.36 has no wrapper, so syscall()),
 * first with RESOLVE_NO_SYMLINKS because most paths have none and then the
 * open is the whole check. A path with symlinks is opened again following
 * them beneath the directory, and where it ended up (read back from
 * /proc/self/fd) is checked against the hidden patterns. Where openat2 is
 * missing, or a symlink is absolute (which RESOLVE_BENEATH always refuses,
 * even pointing inside), a walk opens one component at a time with
 * O_NOFOLLOW, reads symlinks itself and refuses any that climbs out. */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Symlinks one resolution may follow, as the kernel's own limit. */
#define MAX_LINKS 40
/* Directories deep the walk goes; PATH_MAX allows no more than this. */
#define MAX_DEPTH (PATH_MAX / 2)
/* openat2 answers EAGAIN when a rename raced a lookup; it is retried. */
#define EAGAIN_RETRIES 4

static int sys_openat2(int dirfd, const char *path, int flags,
                       uint64_t resolve) {
  struct open_how how;

  memset(&how, 0, sizeof(how));
  how.flags = (uint64_t)(flags | O_CLOEXEC);
  /* openat2 refuses O_PATH with flags that do not belong to it. */
  if (!(flags & O_PATH))
    how.flags |= O_NOCTTY;
  how.resolve = resolve;
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

int fs_openat2_available(void) {
  int fd = sys_openat2(AT_FDCWD, ".", O_PATH | O_DIRECTORY,
                       RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);

  if (fd < 0)
    return 0;
  close(fd);
  return 1;
}

/* The rest of p after the directory dir ("" for dir itself), or NULL when
 * p is not dir or under it. */
static const char *under(const char *dir, const char *p) {
  size_t n = strlen(dir);

  if (n == 1 && dir[0] == '/')
    return p[0] == '/' ? p + 1 : NULL;
  if (strncmp(p, dir, n) != 0)
    return NULL;
  if (p[n] == '\0')
    return p + n;
  return p[n] == '/' ? p + n + 1 : NULL;
}

/* Whether a name matches a hidden pattern without '/'. The usual shapes
 * (".git", "*.pem", "id_*") are compared directly: fnmatch for each of
 * them on every entry was most of the cost of listing a large directory. */
static int hidden_match(const char *pat, const char *name) {
  const char *wild = strpbrk(pat, "*?[\\");
  size_t pn, nn;

  if (wild == NULL)
    return strcasecmp(pat, name) == 0;
  pn = strlen(pat);
  nn = strlen(name);
  if (wild == pat && pat[0] == '*' && strpbrk(pat + 1, "*?[\\") == NULL)
    return nn >= pn - 1 && strcasecmp(name + nn - (pn - 1), pat + 1) == 0;
  if (wild == pat + pn - 1 && pat[pn - 1] == '*')
    return nn >= pn - 1 && strncasecmp(name, pat, pn - 1) == 0;
  return fnmatch(pat, name, FNM_CASEFOLD) == 0;
}

static int hidden_name(const fs_box *b, const char *rel, const char *name) {
  int i;

  for (i = 0; i < b->nhidden; i++) {
    const char *pat = b->hidden[i];
    if (strchr(pat, '/') != NULL
            ? fnmatch(pat, rel, FNM_PATHNAME | FNM_CASEFOLD) == 0
            : hidden_match(pat, name))
      return 1;
  }
  return 0;
}

int fs_extension_ok(const fs_box *b, const char *name, const char *shown,
                    fs_err *e) {
  const char *dot = strrchr(name, '.');
  int i;

  if (b->exts == NULL)
    return 1;
  if (dot != NULL && dot != name)
    for (i = 0; i < b->nexts; i++)
      if (strcasecmp(dot + 1, b->exts[i]) == 0)
        return 1;
  if (e != NULL) {
    char list[256] = "";
    for (i = 0; i < b->nexts; i++)
      snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s.%s",
               i ? ", " : "", b->exts[i]);
    fs_fail(e, FS_REFUSED,
            "Access denied: %s does not have an allowed extension (allowed: "
            "%s)",
            shown, list);
  }
  return 0;
}

int fs_visible(const fs_box *b, const char *rel, const char *name, int is_dir) {
  if (hidden_name(b, rel, name))
    return 0;
  return is_dir || fs_extension_ok(b, name, name, NULL);
}

static void allowed_list(const fs_dir *dirs, int ndirs, char *out,
                         size_t size) {
  int i;

  out[0] = '\0';
  for (i = 0; i < ndirs; i++)
    snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? ", " : "",
             dirs[i].path);
  if (ndirs == 0)
    snprintf(out, size, "none");
}

int fs_locate(const fs_box *b, const fs_dir *dirs, int ndirs, const char *path,
              fs_target *t, fs_err *e) {
  const char *rest = NULL, *p, *q, *r;
  char list[512];
  size_t n, best = 0, out = 0;
  int i;

  memset(t, 0, sizeof(*t));
  allowed_list(dirs, ndirs, list, sizeof(list));
  if (ndirs == 0)
    return fs_fail(e, FS_REFUSED,
                   "Access denied: %s is outside the allowed directories "
                   "(none: the client's roots share nothing with the "
                   "configured ones)",
                   path);
  n = strlen(path);
  if (n >= PATH_MAX)
    return fs_fail(e, FS_REFUSED,
                   "Access denied: the path is %zu bytes long; paths are "
                   "limited to %d bytes",
                   n, PATH_MAX - 1);
  for (p = path; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      return fs_fail(e, FS_REFUSED,
                     "Access denied: the path contains a control character "
                     "(byte %zu)",
                     (size_t)(p - path));
  if (path[0] == '~')
    return fs_fail(e, FS_REFUSED,
                   "Access denied: '~' is not expanded; give a path inside "
                   "the allowed directories: %s",
                   list);
  if (path[0] == '/') {
    for (i = 0; i < ndirs; i++) {
      const char *cands[2] = {dirs[i].path, dirs[i].given};
      int c;
      for (c = 0; c < 2; c++) {
        if (cands[c] == NULL || (r = under(cands[c], path)) == NULL)
          continue;
        if (t->dir == NULL || strlen(cands[c]) > best) {
          best = strlen(cands[c]);
          t->dir = &dirs[i];
          rest = r;
        }
      }
    }
    if (t->dir == NULL)
      return fs_fail(e, FS_REFUSED,
                     "Access denied: %s is outside the allowed directories: "
                     "%s",
                     path, list);
  } else {
    t->dir = &dirs[0];
    rest = path;
  }
  /* Normalise: drop empty and "." components, refuse "..". */
  for (p = rest; *p != '\0'; p = q) {
    while (*p == '/')
      p++;
    if (*p == '\0')
      break;
    for (q = p; *q != '\0' && *q != '/'; q++)
      ;
    n = (size_t)(q - p);
    if (n == 1 && p[0] == '.')
      continue;
    if (n == 2 && p[0] == '.' && p[1] == '.')
      return fs_fail(e, FS_REFUSED,
                     "Access denied: %s contains '..'; paths must stay inside "
                     "the allowed directories: %s",
                     path, list);
    if (n > NAME_MAX)
      return fs_fail(e, FS_REFUSED,
                     "Access denied: a component of the path is %zu bytes "
                     "long; names are limited to %d bytes",
                     n, NAME_MAX);
    if (out > 0)
      t->rel[out++] = '/';
    memcpy(t->rel + out, p, n);
    t->rel[out + n] = '\0';
    t->name = t->rel + out;
    out += n;
    if (hidden_name(b, t->rel, t->name))
      return fs_fail(e, FS_REFUSED,
                     "Access denied: %s matches a hidden pattern; hidden "
                     "files are not served",
                     path);
  }
  t->rel[out] = '\0';
  if (t->name == NULL)
    t->name = t->rel + out;
  return 0;
}

void fs_display(const fs_target *t, char *out, size_t size) {
  const char *dir = t->dir->path;

  if (t->rel[0] == '\0')
    snprintf(out, size, "%s", dir);
  else
    snprintf(out, size, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, t->rel);
}

static int errno_fail(fs_err *e, int err, const char *shown) {
  switch (err) {
  case ENOENT:
    return fs_fail(e, FS_NOTFOUND, "%s does not exist", shown);
  case ENOTDIR:
    return fs_fail(e, FS_NOTFOUND,
                   "%s does not exist (a component of the path is not a "
                   "directory)",
                   shown);
  case EACCES:
  case EPERM:
    return fs_fail(e, FS_FAILED, "%s: permission denied by the system", shown);
  case ENXIO:
  case ENODEV:
    return fs_fail(e, FS_REFUSED,
                   "Access denied: %s is a special file (socket or device); "
                   "only regular files and directories are served",
                   shown);
  case ELOOP:
    return fs_fail(e, FS_REFUSED,
                   "Access denied: %s goes through a symlink loop, a chain "
                   "of more than %d symlinks, or a /proc magic link",
                   shown, MAX_LINKS);
  case EXDEV:
    return fs_fail(e, FS_REFUSED,
                   "Access denied: %s leads outside the allowed directories "
                   "through a symlink",
                   shown);
  case ENAMETOOLONG:
    return fs_fail(e, FS_REFUSED, "Access denied: %s is too long", shown);
  default:
    return fs_fail(e, FS_FAILED, "%s: %s", shown, strerror(err));
  }
}

/* After openat2 followed symlinks: where the descriptor really is must be
 * inside the directory and reached through no hidden name. */
static int check_resolved(const fs_box *b, const fs_dir *d, int fd,
                          const char *shown, fs_err *e) {
  char link[64], real[PATH_MAX], *p, *slash;
  const char *rel;
  ssize_t n;

  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  n = readlink(link, real, sizeof(real) - 1);
  if (n <= 0 || (size_t)n >= sizeof(real) - 1)
    return fs_fail(e, FS_REFUSED,
                   "Access denied: %s goes through a symlink whose target "
                   "cannot be verified",
                   shown);
  real[n] = '\0';
  if ((rel = under(d->path, real)) == NULL)
    return fs_fail(e, FS_REFUSED,
                   "Access denied: %s leads outside the allowed directories "
                   "through a symlink",
                   shown);
  /* Each prefix of the real relative path, and its last name. */
  for (p = (char *)rel; *p != '\0'; p = slash + 1) {
    slash = strchr(p, '/');
    if (slash != NULL)
      *slash = '\0';
    if (hidden_name(b, rel, p))
      return fs_fail(e, FS_REFUSED,
                     "Access denied: %s leads through a symlink to a hidden "
                     "file",
                     shown);
    if (slash == NULL)
      break;
    *slash = '/';
  }
  return 0;
}

/* The component walk. The stack holds a descriptor per directory entered
 * (the bottom one is the allowed directory, not owned), so ".." in a
 * symlink's target goes back to the real parent, never above the bottom. */
static int walk(const fs_box *b, const fs_dir *d, const char *rel, int flags,
                const char *shown, fs_err *e) {
  static const size_t rem_cap = 2 * PATH_MAX;
  int *stack = NULL, depth = 0, links = 0, fd = -1, result = -1;
  size_t *marks = NULL, rlen = 0, base, n;
  char *rem = NULL, *next = NULL, *target = NULL, *lnk = NULL;
  char resolved[PATH_MAX];
  const char *p, *q, *rest, *inside;
  struct stat st, got;
  ssize_t tl;

  stack = malloc(MAX_DEPTH * sizeof(*stack));
  marks = malloc(MAX_DEPTH * sizeof(*marks));
  rem = malloc(rem_cap);
  next = malloc(rem_cap);
  target = malloc(PATH_MAX);
  lnk = malloc(PATH_MAX);
  if (stack == NULL || marks == NULL || rem == NULL || next == NULL ||
      target == NULL || lnk == NULL) {
    fs_fail(e, FS_FAILED, "out of memory");
    goto cleanup;
  }
  stack[0] = d->fd;
  marks[0] = 0;
  resolved[0] = '\0';
  snprintf(rem, rem_cap, "%s", rel);
  p = rem;
  for (;;) {
    while (*p == '/')
      p++;
    if (*p == '\0') {
      /* The path ended on a directory already entered. */
      fd = openat(stack[depth], ".", flags | O_CLOEXEC);
      if (fd < 0)
        errno_fail(e, errno, shown);
      result = fd;
      goto cleanup;
    }
    for (q = p; *q != '\0' && *q != '/'; q++)
      ;
    n = (size_t)(q - p);
    for (rest = q; *rest == '/'; rest++)
      ;
    if (n == 1 && p[0] == '.') {
      p = q;
      continue;
    }
    if (n == 2 && p[0] == '.' && p[1] == '.') {
      if (depth == 0) {
        fs_fail(e, FS_REFUSED,
                "Access denied: %s leads outside the allowed directories "
                "through a symlink",
                shown);
        goto cleanup;
      }
      close(stack[depth--]);
      rlen = marks[depth];
      resolved[rlen] = '\0';
      p = q;
      continue;
    }
    if (n > NAME_MAX || rlen + n + 2 > sizeof(resolved)) {
      errno_fail(e, ENAMETOOLONG, shown);
      goto cleanup;
    }
    base = rlen;
    if (rlen > 0)
      resolved[rlen++] = '/';
    memcpy(resolved + rlen, p, n);
    resolved[rlen + n] = '\0';
    if (hidden_name(b, resolved, resolved + rlen)) {
      fs_fail(e, FS_REFUSED,
              "Access denied: %s leads through a symlink to a hidden file",
              shown);
      goto cleanup;
    }
    rlen = base;
    resolved[rlen] = '\0';
    memcpy(target, p, n);
    target[n] = '\0';
    if (fstatat(stack[depth], target, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      errno_fail(e, errno, shown);
      goto cleanup;
    }
    if (S_ISLNK(st.st_mode)) {
      if (++links > MAX_LINKS) {
        errno_fail(e, ELOOP, shown);
        goto cleanup;
      }
      tl = readlinkat(stack[depth], target, lnk, PATH_MAX - 1);
      if (tl <= 0) {
        errno_fail(e, tl == 0 ? ENOENT : errno, shown);
        goto cleanup;
      }
      lnk[tl] = '\0';
      inside = lnk;
      if (lnk[0] == '/') {
        /* Absolute: fine only into this directory, from its top. */
        inside = under(d->path, lnk);
        if (inside == NULL && d->given != NULL)
          inside = under(d->given, lnk);
        if (inside == NULL) {
          errno_fail(e, EXDEV, shown);
          goto cleanup;
        }
        while (depth > 0)
          close(stack[depth--]);
        rlen = 0;
        resolved[0] = '\0';
      }
      if (strlen(inside) + strlen(rest) + 2 > rem_cap) {
        errno_fail(e, ENAMETOOLONG, shown);
        goto cleanup;
      }
      n = strlen(inside);
      memcpy(next, inside, n);
      next[n] = '/';
      memcpy(next + n + 1, rest, strlen(rest) + 1);
      memcpy(rem, next, strlen(next) + 1);
      p = rem;
      continue;
    }
    if (*rest != '\0') {
      if (!S_ISDIR(st.st_mode)) {
        errno_fail(e, ENOTDIR, shown);
        goto cleanup;
      }
      if (depth + 1 >= MAX_DEPTH) {
        errno_fail(e, ENAMETOOLONG, shown);
        goto cleanup;
      }
      fd = openat(stack[depth], target,
                  O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } else {
      fd = openat(stack[depth], target,
                  flags | O_NOFOLLOW | O_CLOEXEC |
                      ((flags & O_PATH) ? 0 : O_NOCTTY));
    }
    if (fd < 0 && errno != ELOOP && errno != ENOTDIR) {
      errno_fail(e, errno, shown);
      goto cleanup;
    }
    /* Swapped since the fstatat: look at the name again. */
    if (fd < 0 || fstat(fd, &got) != 0 || got.st_dev != st.st_dev ||
        got.st_ino != st.st_ino) {
      if (fd >= 0)
        close(fd);
      fd = -1;
      if (++links > MAX_LINKS) {
        errno_fail(e, ELOOP, shown);
        goto cleanup;
      }
      continue;
    }
    if (*rest == '\0') {
      result = fd;
      goto cleanup;
    }
    if (rlen > 0)
      resolved[rlen++] = '/';
    memcpy(resolved + rlen, p, n);
    rlen += n;
    resolved[rlen] = '\0';
    stack[++depth] = fd;
    marks[depth] = rlen;
    p = q;
  }

cleanup:
  if (stack != NULL)
    while (depth > 0)
      close(stack[depth--]);
  free(stack);
  free(marks);
  free(rem);
  free(next);
  free(target);
  free(lnk);
  return result;
}

int fs_open(const fs_box *b, const fs_target *t, int flags, fs_err *e) {
  const uint64_t beneath = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const char *rel = t->rel[0] != '\0' ? t->rel : ".";
  char shown[PATH_MAX + 64];
  int fd, tries;

  fs_display(t, shown, sizeof(shown));
  if (b->walk_only)
    return walk(b, t->dir, t->rel, flags, shown, e);
  for (tries = 0; tries < EAGAIN_RETRIES; tries++) {
    fd = sys_openat2(t->dir->fd, rel, flags, beneath | RESOLVE_NO_SYMLINKS);
    if (fd >= 0)
      return fd;
    if (errno != EAGAIN)
      break;
  }
  if (errno == ENOSYS || errno == EAGAIN)
    return walk(b, t->dir, t->rel, flags, shown, e);
  if (errno != ELOOP)
    return errno_fail(e, errno, shown);
  /* A symlink on the way: follow, still beneath, then look where. */
  for (tries = 0; tries < EAGAIN_RETRIES; tries++) {
    fd = sys_openat2(t->dir->fd, rel, flags, beneath);
    if (fd >= 0) {
      if (check_resolved(b, t->dir, fd, shown, e) != 0) {
        close(fd);
        return -1;
      }
      return fd;
    }
    if (errno != EAGAIN)
      break;
  }
  /* RESOLVE_BENEATH refuses every absolute symlink, also one that points
   * inside; the walk tells the two apart. */
  if (errno == EXDEV || errno == EAGAIN)
    return walk(b, t->dir, t->rel, flags, shown, e);
  return errno_fail(e, errno, shown);
}

int fs_open_parent(const fs_box *b, const fs_target *t, fs_err *e) {
  fs_target parent;
  size_t n;

  if (t->rel[0] == '\0')
    return fs_fail(e, FS_REFUSED,
                   "Access denied: %s is an allowed directory itself, which "
                   "cannot be replaced, moved or deleted",
                   t->dir->path);
  parent = *t;
  n = (size_t)(t->name - t->rel);
  parent.rel[n > 0 ? n - 1 : 0] = '\0';
  parent.name = parent.rel;
  return fs_open(b, &parent, O_RDONLY | O_DIRECTORY, e);
}

static void human_size(long long n, char *out, size_t size) {
  if (n >= 1024 * 1024)
    snprintf(out, size, "%.1f MiB", (double)n / (1024.0 * 1024.0));
  else if (n >= 1024)
    snprintf(out, size, "%.1f KiB", (double)n / 1024.0);
  else
    snprintf(out, size, "%lld bytes", n);
}

static int too_big(const fs_box *b, long long size, const char *shown,
                   const char *remedy, fs_err *e) {
  char have[32], max[32];

  human_size(size, have, sizeof(have));
  human_size(b->max_file_size, max, sizeof(max));
  return fs_fail(e, FS_REFUSED,
                 "%s: file size %s (%lld bytes) exceeds the maximum of %s. %s",
                 shown, have, size, max, remedy);
}

int fs_open_file(const fs_box *b, const fs_target *t, struct stat *st,
                 fs_err *e) {
  char shown[PATH_MAX + 64];
  int fd;

  fs_display(t, shown, sizeof(shown));
  if (!fs_extension_ok(b, t->name, shown, e))
    return -1;
  fd = fs_open(b, t, O_RDONLY | O_NONBLOCK, e);
  if (fd < 0)
    return -1;
  if (fstat(fd, st) != 0) {
    errno_fail(e, errno, shown);
    goto fail;
  }
  if (S_ISDIR(st->st_mode)) {
    fs_fail(e, FS_REFUSED, "%s is a directory, not a file", shown);
    goto fail;
  }
  if (!S_ISREG(st->st_mode)) {
    fs_fail(e, FS_REFUSED,
            "Access denied: %s is a special file (%s); only regular files "
            "are read",
            shown,
            S_ISFIFO(st->st_mode)   ? "a FIFO"
            : S_ISSOCK(st->st_mode) ? "a socket"
                                    : "a device");
    goto fail;
  }
  if (st->st_size > b->max_file_size) {
    too_big(b, (long long)st->st_size, shown,
            "Read a smaller file or raise max_file_size in the instance "
            "config.",
            e);
    goto fail;
  }
  return fd;

fail:
  close(fd);
  return -1;
}

char *fs_read_all(const fs_box *b, int fd, const struct stat *st, size_t *len,
                  fs_err *e) {
  size_t cap = (size_t)st->st_size + 1, n = 0;
  char *data = malloc(cap + 1), *grown;
  ssize_t got;

  if (data == NULL) {
    fs_fail(e, FS_FAILED, "out of memory");
    return NULL;
  }
  for (;;) {
    if (n == cap) {
      if ((long long)cap > b->max_file_size) {
        free(data);
        fs_fail(e, FS_REFUSED,
                "the file grew past the maximum file size (%lld bytes) "
                "while it was read",
                b->max_file_size);
        return NULL;
      }
      cap *= 2;
      grown = realloc(data, cap + 1);
      if (grown == NULL) {
        free(data);
        fs_fail(e, FS_FAILED, "out of memory");
        return NULL;
      }
      data = grown;
    }
    got = read(fd, data + n, cap - n);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      free(data);
      fs_fail(e, FS_FAILED, "read failed: %s", strerror(errno));
      return NULL;
    }
    if (got == 0)
      break;
    n += (size_t)got;
  }
  if ((long long)n > b->max_file_size) {
    free(data);
    fs_fail(e, FS_REFUSED,
            "the file grew past the maximum file size (%lld bytes) while it "
            "was read",
            b->max_file_size);
    return NULL;
  }
  data[n] = '\0';
  *len = n;
  return data;
}

/* renameat2(RENAME_NOREPLACE); where the filesystem lacks it, a hard link
 * (which also never replaces) and an unlink of the old name. */
static int rename_noreplace(int dirfd, const char *from, int todirfd,
                            const char *to) {
  if (renameat2(dirfd, from, todirfd, to, RENAME_NOREPLACE) == 0)
    return 0;
  if (errno != EINVAL && errno != ENOSYS)
    return -1;
  if (linkat(dirfd, from, todirfd, to, 0) != 0)
    return -1;
  unlinkat(dirfd, from, 0);
  return 0;
}

int fs_write_atomic(const fs_box *b, const fs_target *t, const char *data,
                    size_t len, int no_replace, fs_err *e) {
  char shown[PATH_MAX + 64], tmp[64];
  unsigned char rnd[8];
  struct stat st;
  int dirfd = -1, fd = -1, existed = 0, rc = -1, i;
  mode_t mode = 0666;
  size_t done = 0;
  ssize_t n;

  fs_display(t, shown, sizeof(shown));
  if ((long long)len > b->max_file_size) {
    too_big(b, (long long)len, shown,
            "Write less, split the content into several files, or raise "
            "max_file_size in the instance config. Nothing was written.",
            e);
    return -1;
  }
  if (!fs_extension_ok(b, t->name, shown, e))
    return -1;
  dirfd = fs_open_parent(b, t, e);
  if (dirfd < 0)
    return -1;
  if (fstatat(dirfd, t->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (no_replace) {
      fs_fail(e, FS_REFUSED, "%s already exists; nothing was overwritten",
              shown);
      goto cleanup;
    }
    if (S_ISLNK(st.st_mode)) {
      fs_fail(e, FS_REFUSED,
              "Access denied: %s is a symbolic link; write to the file it "
              "points to instead",
              shown);
      goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
      fs_fail(e, FS_REFUSED, "%s is %s, not a regular file", shown,
              S_ISDIR(st.st_mode) ? "a directory" : "a special file");
      goto cleanup;
    }
    existed = 1;
    mode = st.st_mode & 07777;
  } else if (errno != ENOENT) {
    errno_fail(e, errno, shown);
    goto cleanup;
  }
  /* A short name of our own: t->name may already be NAME_MAX long. */
  for (i = 0; i < 8; i++) {
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
      fs_fail(e, FS_FAILED, "no randomness for a temporary name");
      goto cleanup;
    }
    snprintf(tmp, sizeof(tmp), ".ph-%02x%02x%02x%02x%02x%02x%02x%02x.tmp",
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    fd =
        openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
               existed ? (mode & 0777) : 0666);
    if (fd >= 0 || errno != EEXIST)
      break;
  }
  if (fd < 0) {
    fs_fail(e, FS_FAILED, "%s: cannot create a temporary file: %s", shown,
            strerror(errno));
    goto cleanup;
  }
  while (done < len) {
    n = write(fd, data + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      fs_fail(e, FS_FAILED, "%s: write failed: %s; the file was not changed",
              shown, n < 0 ? strerror(errno) : "no progress");
      goto unlink_tmp;
    }
    done += (size_t)n;
  }
  /* The umask applied to O_CREAT; a replaced file keeps its exact mode. */
  if (existed) {
    /* Best effort: a file we may not chown keeps its mode all the same. */
    (void)!fchmod(fd, mode);
    (void)!fchown(fd, st.st_uid, st.st_gid);
  }
  if (fsync(fd) != 0) {
    fs_fail(e, FS_FAILED, "%s: fsync failed: %s; the file was not changed",
            shown, strerror(errno));
    goto unlink_tmp;
  }
  if (close(fd) != 0) {
    fd = -1;
    fs_fail(e, FS_FAILED, "%s: close failed: %s; the file was not changed",
            shown, strerror(errno));
    goto unlink_tmp;
  }
  fd = -1;
  if ((no_replace ? rename_noreplace(dirfd, tmp, dirfd, t->name)
                  : renameat(dirfd, tmp, dirfd, t->name)) != 0) {
    if (errno == EEXIST)
      fs_fail(e, FS_REFUSED, "%s already exists; nothing was overwritten",
              shown);
    else
      fs_fail(e, FS_FAILED, "%s: rename failed: %s; the file was not changed",
              shown, strerror(errno));
    goto unlink_tmp;
  }
  /* The rename itself reaches the disk with the directory. */
  fsync(dirfd);
  rc = 0;
  goto cleanup;

unlink_tmp:
  unlinkat(dirfd, tmp, 0);
cleanup:
  if (fd >= 0)
    close(fd);
  if (dirfd >= 0)
    close(dirfd);
  return rc;
}
