/* watch.c: notifications/resources/updated for file:// resources. The ABI
 * does not tell a plugin which URIs a client subscribed to (the host keeps
 * the subscriptions and filters), so the instance watches every directory
 * under its roots with inotify, up to a cap, and reports every file that
 * changes; the host forwards only what someone subscribed to.
 *
 * A thread of the instance's own blocks in poll() on the inotify fd and an
 * eventfd that fini signals: api->watch_fd is loop-only and refused during
 * init, and a watch would hold the instance (fini waits for it). The
 * notify API may be called from any thread. */
#include "files.h"
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

/* No IN_DONT_FOLLOW: the path watched is /proc/self/fd/N, a link to a
 * directory the walk opened with O_NOFOLLOW, which must be followed. */
#define WATCH_MASK                                                             \
  (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |      \
   IN_ATTRIB | IN_ONLYDIR | IN_EXCL_UNLINK)

typedef struct watched {
  int wd;
  const fs_dir *root;
  char *rel; /* Relative to root ("" for the root). */
} watched;

struct fs_watch {
  const ph_host_api *api;
  ph_instance *self;
  const fs_box *b;
  int ifd, stop_fd, max_dirs, warned;
  pthread_t thread;
  watched *map;
  size_t n, cap;
};

static watched *find(fs_watch *w, int wd) {
  size_t i;

  for (i = 0; i < w->n; i++)
    if (w->map[i].wd == wd)
      return &w->map[i];
  return NULL;
}

/* Watches directory fd (root-relative rel) and, recursively, its
 * subdirectories. fd is borrowed. */
static void add_tree(fs_watch *w, const fs_dir *root, int fd, const char *rel) {
  char link[64], sub_rel[PATH_MAX];
  fs_dirent *list = NULL;
  size_t n = 0, i;
  watched *grown;
  int wd, sub;

  if ((int)w->n >= w->max_dirs) {
    if (!w->warned++)
      w->api->log(w->self, PH_LOG_WARNING,
                  "files: watching %d directories (max_watches); changes "
                  "deeper in the tree are not reported",
                  w->max_dirs);
    return;
  }
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  wd = inotify_add_watch(w->ifd, link, WATCH_MASK);
  if (wd < 0)
    return;
  if (find(w, wd) == NULL) {
    if (w->n == w->cap) {
      size_t cap = w->cap ? 2 * w->cap : 64;
      grown = realloc(w->map, cap * sizeof(*grown));
      if (grown == NULL)
        return;
      w->map = grown;
      w->cap = cap;
    }
    w->map[w->n].wd = wd;
    w->map[w->n].root = root;
    w->map[w->n].rel = strdup(rel);
    if (w->map[w->n].rel == NULL)
      return;
    w->n++;
  }
  if (fs_read_dir(w->b, fd, rel, &list, &n, NULL) != 0)
    return;
  for (i = 0; i < n; i++) {
    if (list[i].type != DT_DIR)
      continue;
    if ((size_t)snprintf(sub_rel, sizeof(sub_rel), "%s%s%s", rel,
                         rel[0] ? "/" : "", list[i].name) >= sizeof(sub_rel))
      continue;
    sub = openat(fd, list[i].name,
                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
      continue;
    add_tree(w, root, sub, sub_rel);
    close(sub);
  }
  fs_dirents_free(list, n);
}

static void on_event(fs_watch *w, const struct inotify_event *ev) {
  watched *d = find(w, ev->wd);
  char rel[PATH_MAX], abs[PATH_MAX + 64];
  fs_buf uri = {0};
  fs_target t;
  fs_err e;
  int fd;

  if (d == NULL)
    return;
  if (ev->mask & IN_IGNORED) {
    free(d->rel);
    *d = w->map[--w->n];
    return;
  }
  if (ev->len == 0 || ev->name[0] == '\0')
    return;
  if ((size_t)snprintf(rel, sizeof(rel), "%s%s%s", d->rel, d->rel[0] ? "/" : "",
                       ev->name) >= sizeof(rel))
    return;
  /* Our own temporary files, and what the sandbox hides. */
  if (strncmp(ev->name, ".ph-", 4) == 0 ||
      !fs_visible(w->b, rel, ev->name, (ev->mask & IN_ISDIR) != 0))
    return;
  if (ev->mask & IN_ISDIR) {
    if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
      /* A new directory: watched through the sandbox, like any path. */
      memset(&t, 0, sizeof(t));
      memset(&e, 0, sizeof(e));
      t.dir = d->root;
      snprintf(t.rel, sizeof(t.rel), "%s", rel);
      t.name = strrchr(t.rel, '/') ? strrchr(t.rel, '/') + 1 : t.rel;
      fd = fs_open(w->b, &t, O_RDONLY | O_DIRECTORY, &e);
      if (fd >= 0) {
        add_tree(w, d->root, fd, rel);
        close(fd);
      }
    }
    return;
  }
  snprintf(abs, sizeof(abs), "%s/%s",
           strcmp(d->root->path, "/") ? d->root->path : "", rel);
  fs_uri(&uri, abs);
  if (!uri.failed)
    w->api->notify(w->self, PH_NOTIFY_RESOURCE_UPDATED, uri.data);
  fs_buf_free(&uri);
}

static void *watch_main(void *arg) {
  fs_watch *w = arg;
  char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
  struct pollfd pfd[2];
  ssize_t n;
  char *p;

  pfd[0].fd = w->ifd;
  pfd[0].events = POLLIN;
  pfd[1].fd = w->stop_fd;
  pfd[1].events = POLLIN;
  for (;;) {
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (pfd[1].revents)
      break;
    n = read(w->ifd, buf, sizeof(buf));
    if (n <= 0)
      continue;
    for (p = buf; p < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *)p;
      on_event(w, ev);
      p += sizeof(*ev) + ev->len;
    }
  }
  return NULL;
}

fs_watch *fs_watch_start(const ph_host_api *api, ph_instance *self,
                         const fs_box *b, int max_dirs) {
  fs_watch *w = calloc(1, sizeof(*w));
  int i, fd;

  if (w == NULL)
    return NULL;
  w->api = api;
  w->self = self;
  w->b = b;
  w->max_dirs = max_dirs;
  w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->ifd < 0 || w->stop_fd < 0) {
    api->log(self, PH_LOG_WARNING,
             "files: no inotify (%s); resources/subscribe reports nothing",
             strerror(errno));
    goto fail;
  }
  for (i = 0; i < b->ndirs; i++) {
    fd = openat(b->dirs[i].fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      add_tree(w, &b->dirs[i], fd, "");
      close(fd);
    }
  }
  if (pthread_create(&w->thread, NULL, watch_main, w) != 0)
    goto fail;
  return w;

fail:
  if (w->ifd >= 0)
    close(w->ifd);
  if (w->stop_fd >= 0)
    close(w->stop_fd);
  for (i = 0; i < (int)w->n; i++)
    free(w->map[i].rel);
  free(w->map);
  free(w);
  return NULL;
}

void fs_watch_stop(fs_watch *w) {
  uint64_t one = 1;
  size_t i;

  if (w == NULL)
    return;
  if (write(w->stop_fd, &one, sizeof(one)) != sizeof(one))
    w->api->log(w->self, PH_LOG_WARNING, "files: cannot stop the watcher");
  pthread_join(w->thread, NULL);
  close(w->ifd);
  close(w->stop_fd);
  for (i = 0; i < w->n; i++)
    free(w->map[i].rel);
  free(w->map);
  free(w);
}
