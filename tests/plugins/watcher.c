/* watcher.c: ABI 1.2 fixture. Inline tools that wait on file descriptors
 * through watch_fd instead of blocking the loop (a pipe, a timerfd), hand a
 * call to the worker pool with run_in_pool, and report the error codes of
 * both; a worker tool that must be refused watch_fd. Built twice: the v2
 * folder holds a build reporting version "2" for reload tests. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <plughost.h>

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef WATCHER_VERSION
#define WATCHER_VERSION "1"
#endif

static const ph_host_api *host;

/* Callbacks that ran for a watch already stopped: must stay 0. */
static atomic_int late_callbacks;

typedef struct pair_ctx pair_ctx;

typedef struct watcher {
  ph_instance *self;
  pair_ctx *retired; /* self_stop contexts, kept until fini (see there). */
  int leaked[2];     /* leak_watch's pipe, or -1. */
} watcher;

static void close_pipe(int fds[2]) {
  if (fds[0] >= 0)
    close(fds[0]);
  if (fds[1] >= 0)
    close(fds[1]);
  fds[0] = fds[1] = -1;
}

/* ---- pipe_echo: reply from a watch callback ---- */

typedef struct echo {
  ph_call *call;
  watcher *w;
  int fds[2]; /* The pipe: read end watched. */
  int tfd;    /* timerfd for delay_ms, or -1. */
  char *text;
  size_t len, got;
  char *buf;
} echo;

static void echo_free(echo *e) {
  close_pipe(e->fds);
  if (e->tfd >= 0)
    close(e->tfd);
  free(e->text);
  free(e->buf);
  free(e);
}

/* Stops the watch before closing: the host guarantees no callback after
 * the stop, so the fd may go at once. */
static void echo_finish(echo *e, const char *error) {
  int rc = host->watch_fd(e->w->self, e->fds[0], 0, NULL, NULL);

  if (rc != PH_OK)
    host->log(e->w->self, PH_LOG_ERROR, "pipe_echo: stop returned %d", rc);
  if (error != NULL)
    ph_reply_text(host, e->call, error, 1);
  else
    ph_reply_text(host, e->call, e->buf, 0);
  echo_free(e);
}

static void on_readable(int fd, int events, void *data) {
  echo *e = data;
  ssize_t n;

  if (fd != e->fds[0] || !(events & PH_WATCH_READ)) {
    echo_finish(e, "pipe_echo: unexpected callback");
    return;
  }
  for (;;) {
    n = read(fd, e->buf + e->got, e->len - e->got);
    if (n > 0) {
      e->got += (size_t)n;
      if (e->got == e->len) {
        echo_finish(e, NULL);
        return;
      }
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return; /* The rest comes with a later callback. */
    echo_finish(e, n == 0 ? "pipe_echo: early EOF" : "pipe_echo: read error");
    return;
  }
}

static int echo_write(echo *e) {
  return write(e->fds[1], e->text, e->len) == (ssize_t)e->len ? 0 : -1;
}

static void on_timer(int fd, int events, void *data) {
  echo *e = data;
  uint64_t ticks;

  (void)events;
  if (read(fd, &ticks, sizeof(ticks)) != (ssize_t)sizeof(ticks))
    return; /* Spurious: wait for the real expiry. */
  host->watch_fd(e->w->self, fd, 0, NULL, NULL);
  close(fd);
  e->tfd = -1;
  if (echo_write(e) != 0)
    echo_finish(e, "pipe_echo: write failed");
}

static void tool_pipe_echo(ph_call *call, const char *args, void *state) {
  cJSON *root = cJSON_Parse(args);
  const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text");
  const cJSON *delay = cJSON_GetObjectItemCaseSensitive(root, "delay_ms");
  echo *e = calloc(1, sizeof(*e));
  int rc;

  e->call = call;
  e->w = state;
  e->tfd = -1;
  e->fds[0] = e->fds[1] = -1;
  e->text = strdup(text->valuestring);
  e->len = strlen(e->text);
  e->buf = calloc(1, e->len + 1);
  if (pipe2(e->fds, O_CLOEXEC) != 0) {
    ph_reply_textf(host, call, 1, "pipe: %s", strerror(errno));
    echo_free(e);
    goto done;
  }
  rc = host->watch_fd(e->w->self, e->fds[0], PH_WATCH_READ, on_readable, e);
  if (rc != PH_OK) {
    ph_reply_textf(host, call, 1, "watch_fd: %d", rc);
    echo_free(e);
    goto done;
  }
  if (cJSON_IsNumber(delay) && delay->valueint > 0) {
    struct itimerspec its = {
        {0, 0},
        {delay->valueint / 1000, (long)(delay->valueint % 1000) * 1000000L}};

    e->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (e->tfd < 0 || timerfd_settime(e->tfd, 0, &its, NULL) != 0 ||
        host->watch_fd(e->w->self, e->tfd, PH_WATCH_READ, on_timer, e) != 0)
      echo_finish(e, "pipe_echo: timer failed");
  } else if (echo_write(e) != 0) {
    echo_finish(e, "pipe_echo: write failed");
  }
done:
  cJSON_Delete(root);
}

/* ---- defer: run_in_pool ---- */

typedef struct defer_ctx {
  pthread_t loop;
  int ms;
} defer_ctx;

static void deferred(ph_call *call, void *arg) {
  defer_ctx *d = arg;
  struct timespec step = {0, 5 * 1000000L};
  int off_loop = !pthread_equal(pthread_self(), d->loop), cancelled, i;
  char json[128];

  for (i = 0; i < d->ms / 5 && !host->cancelled(call); i++)
    nanosleep(&step, NULL);
  cancelled = host->cancelled(call);
  host->log(NULL, PH_LOG_INFO, "defer: fn ran off_loop=%d cancelled=%d",
            off_loop, cancelled);
  snprintf(json, sizeof(json), "{\"off_loop\":%s,\"cancelled\":%s}",
           off_loop ? "true" : "false", cancelled ? "true" : "false");
  ph_reply_structured(host, call, json, 0);
  free(d);
}

/* Handed over by mistake a second time: must never run. */
static void deferred_again(ph_call *call, void *arg) {
  (void)call;
  (void)arg;
  host->log(NULL, PH_LOG_ERROR, "defer: the second hand-over ran");
}

static void tool_defer(ph_call *call, const char *args, void *state) {
  cJSON *root = cJSON_Parse(args);
  const cJSON *ms = cJSON_GetObjectItemCaseSensitive(root, "ms");
  defer_ctx *d = calloc(1, sizeof(*d));
  int rc, again;

  (void)state;
  d->loop = pthread_self();
  d->ms = cJSON_IsNumber(ms) ? ms->valueint : 0;
  cJSON_Delete(root);
  rc = host->run_in_pool(call, deferred, d);
  if (rc != PH_OK) {
    free(d);
    ph_reply_textf(host, call, 1, "busy: run_in_pool=%d", rc);
    return;
  }
  /* Queued (or running) already: refused, whatever the worker does. */
  again = host->run_in_pool(call, deferred_again, NULL);
  host->log(NULL, PH_LOG_INFO, "defer: second run_in_pool=%d", again);
}

/* ---- error codes ---- */

static void never(int fd, int events, void *data) {
  (void)fd;
  (void)events;
  (void)data;
  atomic_fetch_add(&late_callbacks, 1);
}

static void tool_errors(ph_call *call, const char *args, void *state) {
  watcher *w = state;
  char path[] = "/tmp/ph-watcher-XXXXXX", json[512];
  int fds[2] = {-1, -1}, file, bad_fd, unwatched, bad_events, null_cb, regular,
      start, change, stop, stop_again, null_fn;

  (void)args;
  bad_fd = host->watch_fd(w->self, -1, PH_WATCH_READ, never, NULL);
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ph_reply_text(host, call, "pipe failed", 1);
    return;
  }
  unwatched = host->watch_fd(w->self, fds[0], 0, NULL, NULL);
  bad_events = host->watch_fd(w->self, fds[0], 4, never, NULL);
  null_cb = host->watch_fd(w->self, fds[0], PH_WATCH_READ, NULL, NULL);
  /* An empty pipe never becomes readable: never is not called. */
  start = host->watch_fd(w->self, fds[0], PH_WATCH_READ, never, NULL);
  change = host->watch_fd(w->self, fds[0], PH_WATCH_READ, never, w);
  stop = host->watch_fd(w->self, fds[0], 0, NULL, NULL);
  stop_again = host->watch_fd(w->self, fds[0], 0, NULL, NULL);
  close_pipe(fds);
  file = mkstemp(path);
  if (file >= 0) {
    unlink(path);
    regular = host->watch_fd(w->self, file, PH_WATCH_READ, never, NULL);
    close(file);
  } else {
    regular = 1;
  }
  null_fn = host->run_in_pool(call, NULL, NULL);
  snprintf(json, sizeof(json),
           "{\"bad_fd\":%d,\"unwatched\":%d,\"bad_events\":%d,"
           "\"null_cb\":%d,\"regular_file\":%d,\"start\":%d,\"change\":%d,"
           "\"stop\":%d,\"stop_again\":%d,\"null_fn\":%d}",
           bad_fd, unwatched, bad_events, null_cb, regular, start, change, stop,
           stop_again, null_fn);
  ph_reply_structured(host, call, json, 0);
}

/* A worker thread is not the loop: watch_fd must refuse. */
static void tool_worker_watch(ph_call *call, const char *args, void *state) {
  watcher *w = state;
  int fds[2] = {-1, -1}, rc = 1;
  char json[64];

  (void)args;
  if (pipe2(fds, O_CLOEXEC) == 0)
    rc = host->watch_fd(w->self, fds[0], PH_WATCH_READ, never, NULL);
  if (rc == PH_OK)
    host->watch_fd(w->self, fds[0], 0, NULL, NULL); /* Fails too: a bug. */
  close_pipe(fds);
  snprintf(json, sizeof(json), "{\"watch_fd\":%d}", rc);
  ph_reply_structured(host, call, json, 0);
}

/* ---- self_stop: a callback stopping its own watch and another ---- */

struct pair_ctx {
  ph_call *call;
  watcher *w;
  int a[2], b[2];
  int calls, done;
  pair_ctx *next;
};

static void on_pair(int fd, int events, void *data) {
  pair_ctx *p = data;
  int other = fd == p->a[0] ? p->b[0] : p->a[0], self_rc, other_rc;
  char json[128];

  (void)events;
  if (p->done) {
    /* Both pipes were readable in the same loop iteration: the second
     * callback was pending when the first stopped its watch. */
    atomic_fetch_add(&late_callbacks, 1);
    return;
  }
  p->calls++;
  self_rc = host->watch_fd(p->w->self, fd, 0, NULL, NULL);
  other_rc = host->watch_fd(p->w->self, other, 0, NULL, NULL);
  close_pipe(p->a);
  close_pipe(p->b);
  p->done = 1;
  snprintf(json, sizeof(json), "{\"self\":%d,\"other\":%d,\"calls\":%d}",
           self_rc, other_rc, p->calls);
  ph_reply_structured(host, p->call, json, 0);
  /* Not freed: a callback wrongly run later must find it and count. */
  p->next = p->w->retired;
  p->w->retired = p;
}

static void tool_self_stop(ph_call *call, const char *args, void *state) {
  pair_ctx *p = calloc(1, sizeof(*p));
  int ra, rb;

  (void)args;
  p->call = call;
  p->w = state;
  p->a[0] = p->a[1] = p->b[0] = p->b[1] = -1;
  if (pipe2(p->a, O_CLOEXEC) != 0 || pipe2(p->b, O_CLOEXEC) != 0 ||
      write(p->a[1], "a", 1) != 1 || write(p->b[1], "b", 1) != 1) {
    close_pipe(p->a);
    close_pipe(p->b);
    free(p);
    ph_reply_text(host, call, "self_stop: set-up failed", 1);
    return;
  }
  /* Both readable before the loop polls: their events come together. */
  ra = host->watch_fd(p->w->self, p->a[0], PH_WATCH_READ, on_pair, p);
  rb = host->watch_fd(p->w->self, p->b[0], PH_WATCH_READ, on_pair, p);
  if (ra != PH_OK || rb != PH_OK) {
    host->watch_fd(p->w->self, p->a[0], 0, NULL, NULL);
    host->watch_fd(p->w->self, p->b[0], 0, NULL, NULL);
    close_pipe(p->a);
    close_pipe(p->b);
    free(p);
    ph_reply_textf(host, call, 1, "self_stop: watch_fd %d %d", ra, rb);
  }
}

static void tool_stats(ph_call *call, const char *args, void *state) {
  (void)args;
  (void)state;
  ph_reply_textf(host, call, 0, "late=%d", atomic_load(&late_callbacks));
}

/* A watch never stopped: the host closes it at shutdown. */
static void tool_leak_watch(ph_call *call, const char *args, void *state) {
  watcher *w = state;
  int rc;

  (void)args;
  if (w->leaked[0] >= 0) {
    ph_reply_text(host, call, "already leaking", 1);
    return;
  }
  if (pipe2(w->leaked, O_CLOEXEC) != 0) {
    ph_reply_text(host, call, "pipe failed", 1);
    return;
  }
  rc = host->watch_fd(w->self, w->leaked[0], PH_WATCH_READ, never, NULL);
  ph_reply_textf(host, call, rc != PH_OK, "watching fd %d: %d", w->leaked[0],
                 rc);
}

static void tool_version(ph_call *call, const char *args, void *state) {
  (void)args;
  (void)state;
  ph_reply_text(host, call, WATCHER_VERSION, 0);
}

static int watcher_init(ph_instance *self, const ph_host_api *api,
                        const char *config, void **state) {
  watcher *w;

  (void)config;
  host = api;
  if (api->size <
      offsetof(ph_host_api, run_in_pool) + sizeof(api->run_in_pool)) {
    api->log(self, PH_LOG_ERROR, "watcher needs ABI 1.2");
    return 1;
  }
  /* During init the instance may not watch yet. */
  if (api->watch_fd(self, 0, 0, NULL, NULL) != PH_ENOTSUP) {
    api->log(self, PH_LOG_ERROR, "watch_fd allowed during init");
    return 1;
  }
  w = calloc(1, sizeof(*w));
  w->self = self;
  w->leaked[0] = w->leaked[1] = -1;
  *state = w;
  return 0;
}

static void watcher_fini(void *state) {
  watcher *w = state;
  pair_ctx *p, *next;

  host->log(w->self, PH_LOG_INFO, "watcher " WATCHER_VERSION ": fini, late=%d",
            atomic_load(&late_callbacks));
  for (p = w->retired; p != NULL; p = next) {
    next = p->next;
    free(p);
  }
  close_pipe(w->leaked);
  free(w);
}

#define NO_ARGS "{\"type\":\"object\",\"additionalProperties\":false}"

static const ph_tool watcher_tools[] = {
    {.name = "pipe_echo",
     .description = "Echoes text through a pipe watched on the loop, after "
                    "delay_ms on a timerfd if given.",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":"
                     "\"string\",\"minLength\":1,\"maxLength\":4096},"
                     "\"delay_ms\":{\"type\":\"integer\",\"minimum\":0}},"
                     "\"required\":[\"text\"],\"additionalProperties\":false}",
     .run_inline = 1,
     .handler = tool_pipe_echo},
    {.name = "defer",
     .description = "Hands the call to the pool; replies whether it ran off "
                    "the loop, after ms unless cancelled.",
     .input_schema = "{\"type\":\"object\",\"properties\":{\"ms\":{\"type\":"
                     "\"integer\",\"minimum\":0}},\"additionalProperties\":"
                     "false}",
     .run_inline = 1,
     .handler = tool_defer},
    {.name = "errors",
     .description = "Reports watch_fd and run_in_pool error codes.",
     .input_schema = NO_ARGS,
     .run_inline = 1,
     .handler = tool_errors},
    {.name = "worker_watch",
     .description = "Calls watch_fd from a worker thread.",
     .input_schema = NO_ARGS,
     .handler = tool_worker_watch},
    {.name = "self_stop",
     .description = "Two watches; the first callback stops both.",
     .input_schema = NO_ARGS,
     .run_inline = 1,
     .handler = tool_self_stop},
    {.name = "stats",
     .description = "Callbacks that ran after their watch stopped.",
     .input_schema = NO_ARGS,
     .run_inline = 1,
     .handler = tool_stats},
    {.name = "leak_watch",
     .description = "Starts a watch and never stops it.",
     .input_schema = NO_ARGS,
     .run_inline = 1,
     .handler = tool_leak_watch},
    {.name = "version",
     .description = "The build.",
     .input_schema = NO_ARGS,
     .run_inline = 1,
     .handler = tool_version},
    {0}};

PH_PLUGIN(.name = "watcher", .version = WATCHER_VERSION,
          .description = "Fixture: watch_fd and run_in_pool (ABI 1.2)",
          .init = watcher_init, .fini = watcher_fini, .tools = watcher_tools)
