/* fuzz_files_path.c: the files plugin's path resolution (sandbox.c), as a
 * client's path meets it: fs_locate() against two allowed directories, then
 * fs_open() of what it found, as a file, a directory and a parent, by
 * openat2 and by the component walk, then a read of a regular file.
 *
 * Hermetic: the directories live in a tree made under $TMPDIR at start and
 * removed at exit, with files, a hidden name of each kind, symlinks that
 * stay inside, climb out, point at hidden names and loop, and a file
 * outside. Nothing is ever created, renamed or removed by the harness's
 * calls. The first byte of the input picks the method (bit 0: walk only)
 * and the open (bits 1-2: read, directory, parent); the rest is the path,
 * a C string as it arrives in a tool's arguments. In the path, "@" stands
 * for the first directory's real path and "%" for the path it was
 * configured by (through a symlink), since inputs cannot know the
 * temporary directory's name.
 *
 * What must hold: whatever opens is inside an allowed directory and no
 * part of where it really is is hidden (.git, *.pem, private/): the tree
 * says which names those are, independently of the sandbox's rules. */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

static char top[PATH_MAX]; /* The temporary tree. */
static char real_root[PATH_MAX], alias_root[PATH_MAX], real_second[PATH_MAX];
static fs_dir dirs[2];
static fs_box box;
static char *hidden[] = {".git", "*.pem", "private/*"};
static int have_openat2;
static volatile size_t sink;

static void must(int ok, const char *what) {
  if (!ok) {
    perror(what);
    abort();
  }
}

/* a/b into out (PATH_MAX bytes); a longer path is a broken set-up. */
static void join(char *out, const char *a, const char *b) {
  must(snprintf(out, PATH_MAX, "%s/%s", a, b) < PATH_MAX, b);
}

static void put_file(const char *rel, const char *text) {
  char path[PATH_MAX];
  FILE *f;

  join(path, top, rel);
  f = fopen(path, "w");
  must(f != NULL, path);
  fputs(text, f);
  fclose(f);
}

static void put_dir(const char *rel) {
  char path[PATH_MAX];

  join(path, top, rel);
  must(mkdir(path, 0700) == 0, path);
}

static void put_link(const char *target, const char *rel) {
  char path[PATH_MAX];

  join(path, top, rel);
  must(symlink(target, path) == 0, path);
}

static void remove_tree(void) {
  char cmd[PATH_MAX + 16];
  int i;

  if (top[0] == '\0')
    return;
  for (i = 0; i < 2; i++)
    if (dirs[i].fd > 0)
      close(dirs[i].fd);
  if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top) >= (int)sizeof(cmd) ||
      system(cmd) != 0)
    fprintf(stderr, "fuzz_files_path: could not remove %s\n", top);
}

static void make_tree(void) {
  const char *tmp = getenv("TMPDIR");
  char abs_in[PATH_MAX];

  join(top, tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp",
       "ph-fuzz-files-XXXXXX");
  must(mkdtemp(top) != NULL, top);
  atexit(remove_tree);
  put_dir("root");
  put_dir("root/dir");
  put_dir("root/dir/sub");
  put_dir("root/.git");
  put_dir("root/private");
  put_dir("second");
  put_file("outside.txt", "outside\n");
  put_file("root/a.txt", "a\n");
  put_file("root/dir/b.md", "b\n");
  put_file("root/dir/sub/c.txt", "c\n");
  put_file("root/.git/config", "[core]\n");
  put_file("root/key.pem", "key\n");
  put_file("root/private/notes.txt", "private\n");
  put_file("second/d.txt", "d\n");
  put_link("dir", "root/link_dir");
  put_link("../a.txt", "root/dir/link_up");
  put_link("../../outside.txt", "root/dir/link_out");
  put_link("..", "root/link_parent");
  put_link("/etc", "root/link_etc");
  put_link(".git/config", "root/link_git");
  put_link("key.pem", "root/link_pem");
  put_link("private", "root/link_private");
  put_link("loop_b", "root/loop_a");
  put_link("loop_a", "root/loop_b");
  put_link("../second/d.txt", "root/link_second");
  put_link("missing", "root/dangling");
  put_link("root", "alias");
  must(realpath(top, real_root) != NULL, top);
  join(abs_in, real_root, "root/dir/b.md");
  put_link(abs_in, "root/link_abs_in");
  join(real_second, real_root, "second");
  join(alias_root, real_root, "alias");
  join(abs_in, real_root, "root");
  strcpy(real_root, abs_in);
}

/* Whether a name of the tree is one the config hides by name. */
static int hidden_in_tree(const char *name) {
  size_t n = strlen(name);

  return strcasecmp(name, ".git") == 0 ||
         (n >= 4 && strcasecmp(name + n - 4, ".pem") == 0);
}

/* An opened descriptor must really be inside a directory, through no
 * hidden name. */
static void check_opened(int fd) {
  char link[64], real[PATH_MAX], *name, *save = NULL;
  const char *rest = NULL;
  ssize_t n;
  size_t len;
  int i;

  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  n = readlink(link, real, sizeof(real) - 1);
  must(n > 0, link);
  real[n] = '\0';
  for (i = 0; i < 2; i++) {
    len = strlen(dirs[i].path);
    if (strncmp(real, dirs[i].path, len) == 0 &&
        (real[len] == '\0' || real[len] == '/')) {
      rest = real + len;
      break;
    }
  }
  if (rest == NULL) {
    fprintf(stderr, "fuzz_files_path: opened %s, outside\n", real);
    abort();
  }
  /* The pattern private/ * hides what is in private/, not the directory. */
  if (i == 0 && strncmp(rest, "/private/", 9) == 0) {
    fprintf(stderr, "fuzz_files_path: opened hidden %s\n", real);
    abort();
  }
  for (name = strtok_r((char *)rest, "/", &save); name != NULL;
       name = strtok_r(NULL, "/", &save))
    if (hidden_in_tree(name)) {
      fprintf(stderr, "fuzz_files_path: opened hidden %s\n", real);
      abort();
    }
}

/* The input's path with "@" and "%" expanded, or NULL if too long. */
static char *expand(const uint8_t *data, size_t size) {
  size_t cap = PATH_MAX + 64, o = 0, i;
  char *out = malloc(cap);

  if (out == NULL)
    abort();
  for (i = 0; i < size && data[i] != '\0'; i++) {
    const char *s = data[i] == '@'   ? real_root
                    : data[i] == '%' ? alias_root
                                     : NULL;
    size_t n = s != NULL ? strlen(s) : 1;

    if (o + n + 1 >= cap) {
      free(out);
      return NULL;
    }
    if (s != NULL)
      memcpy(out + o, s, n);
    else
      out[o] = (char)data[i];
    o += n;
  }
  out[o] = '\0';
  return out;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  int i;

  (void)argc;
  (void)argv;
  make_tree();
  dirs[0].path = real_root;
  dirs[0].given = alias_root;
  dirs[1].path = real_second;
  for (i = 0; i < 2; i++) {
    dirs[i].fd = open(dirs[i].path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    must(dirs[i].fd >= 0, dirs[i].path);
  }
  box.dirs = dirs;
  box.ndirs = 2;
  box.hidden = hidden;
  box.nhidden = sizeof(hidden) / sizeof(*hidden);
  box.max_file_size = 1 << 16;
  box.read_only = 1;
  have_openat2 = fs_openat2_available();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *path, shown[PATH_MAX + 64], *text;
  fs_target t;
  struct stat st;
  fs_err e;
  size_t len;
  int fd;

  if (size == 0)
    return 0;
  path = expand(data + 1, size - 1);
  if (path == NULL)
    return 0;
  box.walk_only = (data[0] & 1) || !have_openat2;
  memset(&e, 0, sizeof(e));
  if (fs_locate(&box, dirs, 2, path, &t, &e) != 0) {
    if (e.kind != FS_REFUSED || e.msg[0] == '\0')
      abort();
    goto cleanup;
  }
  fs_display(&t, shown, sizeof(shown));
  sink += strlen(shown);
  switch ((data[0] >> 1) & 3) {
  case 0:
    fd = fs_open_file(&box, &t, &st, &e);
    if (fd >= 0) {
      check_opened(fd);
      text = fs_read_all(&box, fd, &st, &len, &e);
      if (text != NULL && strlen(text) > len)
        abort();
      free(text);
    }
    break;
  case 1:
    fd = fs_open(&box, &t, O_PATH | O_DIRECTORY, &e);
    if (fd >= 0)
      check_opened(fd);
    break;
  case 2:
    fd = fs_open_parent(&box, &t, &e);
    if (fd >= 0)
      check_opened(fd);
    break;
  default:
    fd = fs_open(&box, &t, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, &e);
    if (fd >= 0)
      check_opened(fd);
    break;
  }
  if (fd >= 0)
    close(fd);
  else if (e.kind == FS_OK || e.msg[0] == '\0')
    abort(); /* A failure always says why. */

cleanup:
  free(path);
  return 0;
}
