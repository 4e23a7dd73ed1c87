/* isolate.c: see isolate.h.
 *
 * Lifetimes: a ph__runner lives from ph__runner_start to ph__runner_stop
 * and outlives every process it spawns. A proc is one runner process, from
 * fork to reap; it is referenced by the supervisor and by each channel a
 * proxy has taken, and the last reference closes its descriptors, so a
 * proxy never reads a number that was closed and reused under it. Every
 * field marked (mu) is guarded by the runner's mutex; the cv signals a
 * channel coming free, a process serving and a process dead. */
#include "isolate.h"

#include "alloc.h"
#include "channel.h"
#include "error.h"
#include "log.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

/* How often a waiting proxy looks at its call's cancel flag and deadline,
 * and the supervisor at a child it has no pidfd for. */
#define CHECK_MS 100

/* How long a proxy whose channel closed waits for the supervisor to reap
 * the runner, so that its error can name the signal or exit status. */
#define REAP_WAIT_MS 2000

/* How long a call waits for a free channel (only service calls compete
 * with the workers for them) before it is refused as busy. */
#define CHANNEL_WAIT_MS 5000

typedef struct proc {
  atomic_int refs; /* The supervisor's, and one per channel taken. */
  pid_t pid;
  int pidfd; /* -1 where the kernel has none. */
  int ctl;   /* The control channel. */
  int err;   /* The read end of its stdout and stderr. */
  int nchans;
  int *chans;               /* Host ends of the call channels. */
  int *idle, nidle;         /* Channels free for a call (mu). */
  _Atomic uint32_t *cancel; /* The shared page (channel.h). */
  size_t cancel_len;
  int serving;    /* Its init returned 0 (mu). */
  int dead;       /* Reaped (mu). */
  char *why;      /* How it ended, once dead (mu). */
  char *kill_why; /* Why the host killed it, if it did (mu). */
} proc;

struct ph__runner {
  ph_instance *inst;
  const ph_host_api *api;
  char *label, *so_path, *config_json;
  int nchans;
  ph__runner_limits limits;
  uv_mutex_t mu;
  uv_cond_t cv;
  proc *cur;           /* The process serving calls, or NULL (mu). */
  int stopping;        /* ph__runner_stop was called (mu). */
  int first_done;      /* The first start finished, either way (mu). */
  char *first_err;     /* Why it failed, or NULL (mu). */
  char *down_why;      /* Why the runner is down, while it is (mu). */
  uint64_t next_start; /* When the next attempt is due, in ms (mu). */
  int wake;            /* eventfd: the supervisor looks at `stopping`. */
  atomic_uint seq;     /* Call numbers. */
  uv_thread_t thread;
};

static uint64_t now_ms(void) {
  return uv_hrtime() / 1000000u;
}

static void wake_supervisor(ph__runner *r) {
  uint64_t one = 1;

  if (write(r->wake, &one, sizeof(one)) < 0 && errno != EAGAIN)
    ph__error("%s: cannot wake the runner's supervisor: %s", r->label,
              strerror(errno));
}

static void proc_unref(proc *p) {
  int i;

  if (atomic_fetch_sub(&p->refs, 1) != 1)
    return;
  for (i = 0; i < p->nchans; i++)
    close(p->chans[i]);
  close(p->ctl);
  close(p->err);
  if (p->pidfd >= 0)
    close(p->pidfd);
  munmap((void *)p->cancel, p->cancel_len);
  free(p->chans);
  free(p->idle);
  free(p->why);
  free(p->kill_why);
  free(p);
}

/* "killed by signal 11 (SIGSEGV)", "exited with status 3". Caller frees. */
static char *describe_status(int status) {
  const char *abbrev;

  if (WIFSIGNALED(status)) {
    abbrev = sigabbrev_np(WTERMSIG(status));
    return ph__xasprintf("killed by signal %d (SIG%s)", WTERMSIG(status),
                         abbrev ? abbrev : "?");
  }
  return ph__xasprintf("exited with status %d", WEXITSTATUS(status));
}

/* Sends SIGKILL to a process not yet reaped and records why; the first
 * reason wins. Through its pidfd where there is one, so a reaped and
 * reused pid is never hit. */
static void proc_kill(ph__runner *r, proc *p, char *why) {
  int first = 0;

  uv_mutex_lock(&r->mu);
  if (!p->dead && p->kill_why == NULL) {
    p->kill_why = why;
    why = NULL;
    first = 1;
    if (p->pidfd >= 0)
      syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
    else
      kill(p->pid, SIGKILL);
  }
  uv_mutex_unlock(&r->mu);
  if (first)
    ph__error("plugin instance %s: killing its runner: %s", r->label,
              p->kill_why);
  free(why);
}

/* plughost-runner next to this executable. Caller frees. */
static char *runner_path(void) {
  char exe[4096];
  size_t len = sizeof(exe);
  char *slash;

  if (uv_exepath(exe, &len) != 0)
    return ph__xstrdup("plughost-runner");
  slash = strrchr(exe, '/');
  if (slash != NULL)
    *slash = '\0';
  return ph__xasprintf("%s/plughost-runner", exe);
}

static void set_limit(int resource, uint64_t soft, uint64_t hard) {
  struct rlimit rl = {(rlim_t)soft, (rlim_t)hard};

  setrlimit(resource, &rl);
}

/* The child between fork and exec: async-signal-safe calls only. moved has
 * room for every descriptor it keeps. */
static _Noreturn void child(const ph__runner *r, int ctl, int memfd,
                            const int *chans, int errw, int *moved,
                            char *const argv[]) {
  int top = PH__RUNNER_FD_CHANNEL + r->nchans, i, null_fd;
  const ph__runner_limits *l = &r->limits;
  struct rlimit rl;
  sigset_t none;

  /* First above every number they are headed for, then into place. */
  moved[0] = fcntl(ctl, F_DUPFD_CLOEXEC, top);
  moved[1] = fcntl(memfd, F_DUPFD_CLOEXEC, top);
  moved[2] = fcntl(errw, F_DUPFD_CLOEXEC, top);
  for (i = 0; i < r->nchans; i++)
    moved[3 + i] = fcntl(chans[i], F_DUPFD_CLOEXEC, top);
  null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
      dup2(moved[2], STDOUT_FILENO) < 0 || dup2(moved[2], STDERR_FILENO) < 0 ||
      dup2(moved[0], PH__RUNNER_FD_CONTROL) < 0 ||
      dup2(moved[1], PH__RUNNER_FD_CANCEL) < 0)
    _exit(126);
  for (i = 0; i < r->nchans; i++)
    if (dup2(moved[3 + i], PH__RUNNER_FD_CHANNEL + i) < 0)
      _exit(126);
  /* Whatever else the host has open (sockets of clients, files of
   * in-process plugins) stays out of reach of the plugin. */
  if (syscall(SYS_close_range, (unsigned)top, ~0u, 0) != 0 &&
      getrlimit(RLIMIT_NOFILE, &rl) == 0)
    for (i = top; i < (int)rl.rlim_cur; i++)
      close(i);
  if (l->address_space_mb > 0)
    set_limit(RLIMIT_AS, l->address_space_mb << 20, l->address_space_mb << 20);
  /* SIGXCPU at the soft limit lets the log name the cause; the hard limit
   * a second later is SIGKILL for a plugin that catches it. */
  if (l->cpu_seconds > 0)
    set_limit(RLIMIT_CPU, l->cpu_seconds, l->cpu_seconds + 1);
  if (l->open_files > 0)
    set_limit(RLIMIT_NOFILE, l->open_files, l->open_files);
  /* Plugin work is throughput work: as SCHED_BATCH, a runner woken by a
   * call does not preempt the host's threads, which go on handing out
   * calls, and then serves them in a row; on a shared core that halves
   * the switches between the two address spaces (bench/README.md). */
  sched_setscheduler(0, SCHED_BATCH, &(struct sched_param){0});
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  /* The supervisor thread that forked lives as long as the host: if the
   * host dies, so does the runner. */
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execv(argv[0], argv);
  _exit(127);
}

/* Forks and execs a runner with its channels. Returns it with the
 * supervisor's reference, or NULL with *err. */
static proc *spawn(ph__runner *r, char **err) {
  int ctl[2] = {-1, -1}, errp[2] = {-1, -1}, memfd = -1, i, *child_ends;
  char nchans[16], level[16], *path = runner_path();
  char *argv[] = {path, r->so_path, r->label, nchans, level, NULL};
  proc *p = ph__xcalloc(1, sizeof(*p));
  int *moved = ph__xcalloc((size_t)r->nchans + 3, sizeof(int));
  pid_t pid;

  child_ends = ph__xcalloc((size_t)r->nchans, sizeof(int));
  atomic_init(&p->refs, 1);
  p->pidfd = p->ctl = p->err = -1;
  p->nchans = r->nchans;
  p->chans = ph__xcalloc((size_t)r->nchans, sizeof(int));
  p->idle = ph__xcalloc((size_t)r->nchans, sizeof(int));
  for (i = 0; i < r->nchans; i++)
    p->chans[i] = child_ends[i] = -1;
  snprintf(nchans, sizeof(nchans), "%d", r->nchans);
  snprintf(level, sizeof(level), "%d", ph__log_level());
  p->cancel_len = (size_t)r->nchans * sizeof(uint32_t);
  memfd = memfd_create("plughost-cancel", MFD_CLOEXEC);
  if (memfd < 0 || ftruncate(memfd, (off_t)p->cancel_len) != 0)
    goto fail;
  p->cancel =
      mmap(NULL, p->cancel_len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (p->cancel == MAP_FAILED) {
    p->cancel = NULL;
    goto fail;
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) != 0 ||
      pipe2(errp, O_CLOEXEC) != 0)
    goto fail;
  for (i = 0; i < r->nchans; i++) {
    struct timeval check = {0, CHECK_MS * 1000};
    int pair[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
      goto fail;
    p->chans[i] = pair[0];
    child_ends[i] = pair[1];
    if (setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &check, sizeof(check)))
      goto fail;
  }
  pid = fork();
  if (pid < 0)
    goto fail;
  if (pid == 0)
    child(r, ctl[1], memfd, child_ends, errp[1], moved, argv);
  p->pid = pid;
  p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  p->ctl = ctl[0];
  p->err = errp[0];
  close(ctl[1]);
  close(errp[1]);
  close(memfd);
  for (i = 0; i < r->nchans; i++) {
    close(child_ends[i]);
    p->idle[p->nidle++] = r->nchans - 1 - i;
  }
  free(child_ends);
  free(moved);
  free(path);
  return p;

fail:
  ph__fail(err, "cannot start %s: %s", path, strerror(errno));
  for (i = 0; i < r->nchans; i++) {
    if (p->chans[i] >= 0)
      close(p->chans[i]);
    if (child_ends[i] >= 0)
      close(child_ends[i]);
  }
  p->nchans = 0;
  if (memfd >= 0)
    close(memfd);
  if (ctl[1] >= 0)
    close(ctl[1]);
  if (errp[1] >= 0)
    close(errp[1]);
  p->ctl = ctl[0];
  p->err = errp[0];
  if (p->cancel == NULL) {
    p->cancel_len = 0;
    p->cancel = MAP_FAILED;
  }
  proc_unref(p);
  free(child_ends);
  free(moved);
  free(path);
  return NULL;
}

/* A line the runner wrote to stdout or stderr: into the host's log. */
static void log_output(ph__runner *r, const char *line, size_t len) {
  if (len > 0)
    ph__log(PH_LOG_NOTICE, "[%s] output: %.*s", r->label, (int)len, line);
}

/* What the runner wrote to stdout and stderr: whole lines into the log,
 * overlong ones cut. Returns > 0 after reading, 0 at EOF (or an error) and
 * -1 when nothing is there yet. */
static int read_output(ph__runner *r, int fd, char *buf, size_t *used,
                       size_t cap) {
  ssize_t n = read(fd, buf + *used, cap - *used);
  char *start, *nl;

  if (n < 0)
    return errno == EINTR || errno == EAGAIN ? -1 : 0;
  if (n == 0)
    return 0;
  *used += (size_t)n;
  start = buf;
  while ((nl = memchr(start, '\n', *used - (size_t)(start - buf))) != NULL) {
    log_output(r, start, (size_t)(nl - start));
    start = nl + 1;
  }
  *used -= (size_t)(start - buf);
  memmove(buf, start, *used);
  if (*used == cap) {
    log_output(r, buf, *used);
    *used = 0;
  }
  return 1;
}

static int send_result(int fd, uint32_t seq, int rc, const char *text) {
  ph__msg m = {.type = PH__MSG_RESULT, .seq = seq, .num = rc};

  m.s[0] = text;
  return ph__msg_send(fd, &m);
}

/* The process serves: calls may come. */
static void mark_serving(ph__runner *r, proc *p, int first) {
  uv_mutex_lock(&r->mu);
  p->serving = 1;
  r->cur = p;
  free(r->down_why);
  r->down_why = NULL;
  if (first)
    r->first_done = 1;
  uv_cond_broadcast(&r->cv);
  uv_mutex_unlock(&r->mu);
  if (!first)
    ph__info("plugin instance %s: runner restarted (pid %d)", r->label,
             (int)p->pid);
}

/* One control message. Returns 0, or non-zero when the channel is over. */
static int on_control(ph__runner *r, proc *p, int first) {
  ph__msg m;
  int err, rc, level;

  err = ph__msg_recv(p->ctl, &m);
  if (err) {
    if (err != UV_EOF)
      proc_kill(
          r, p,
          ph__xasprintf("its control channel broke: %s", ph__strerror(err)));
    return 1;
  }
  switch (m.type) {
  case PH__MSG_LOG:
    level = m.num < PH_LOG_DEBUG || m.num > PH_LOG_EMERGENCY ? PH_LOG_ERROR
                                                             : (int)m.num;
    ph__log(level, "[%s] %s", r->label, m.s[0] ? m.s[0] : "");
    break;
  case PH__MSG_NOTIFY:
    r->api->notify(r->inst, (int)m.num, m.s[0]);
    break;
  case PH__MSG_READY:
    r->api->set_ready(r->inst, m.num != 0, m.s[0]);
    break;
  case PH__MSG_CONFIGURE:
    /* A restart's init configures the same tools again; the listing was
     * built from the first, and a generation never changes. */
    rc = first && !p->serving
             ? r->api->configure_tool(r->inst, m.s[0] ? m.s[0] : "",
                                      m.s[1] ? m.s[1] : "")
             : PH_OK;
    send_result(p->ctl, 0, rc, NULL);
    break;
  case PH__MSG_INIT_DONE:
    if (m.num == 0) {
      mark_serving(r, p, first);
    } else {
      uv_mutex_lock(&r->mu);
      free(p->kill_why);
      p->kill_why = ph__xasprintf("init returned %d", (int)m.num);
      uv_mutex_unlock(&r->mu);
    }
    break;
  default:
    proc_kill(r, p,
              ph__xasprintf("it sent message type %u on its control channel",
                            m.type));
    ph__msg_clear(&m);
    return 1;
  }
  ph__msg_clear(&m);
  return 0;
}

/* Serves one process from its start to its reap: its control channel, its
 * output, the supervisor's wake-ups (stop). Returns its wait status. */
static int serve_proc(ph__runner *r, proc *p, int first) {
  ph__msg config = {.type = PH__MSG_CONFIG};
  int ctl_open = 1, out_open = 1, reaped = 0, fini_sent = 0, status = 0;
  int n, stopping, timeout, killed_late = 0;
  uint64_t fini_deadline = 0, v;
  struct pollfd fds[4];
  char out[1024];
  size_t out_used = 0;

  config.s[0] = r->config_json;
  if (ph__msg_send(p->ctl, &config) != 0)
    ctl_open = 0;
  while (!reaped) {
    n = 0;
    fds[n++] = (struct pollfd){r->wake, POLLIN, 0};
    fds[n++] = (struct pollfd){p->pidfd, POLLIN, 0};
    fds[n++] = (struct pollfd){ctl_open ? p->ctl : -1, POLLIN, 0};
    fds[n++] = (struct pollfd){out_open ? p->err : -1, POLLIN, 0};
    timeout = p->pidfd < 0 ? CHECK_MS : -1;
    if (fini_deadline != 0 && !killed_late)
      timeout = CHECK_MS;
    if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR)
      break;
    if (fds[0].revents & POLLIN) {
      if (read(r->wake, &v, sizeof(v)) < 0 && errno != EAGAIN)
        break;
      uv_mutex_lock(&r->mu);
      stopping = r->stopping;
      uv_mutex_unlock(&r->mu);
      if (stopping && !fini_sent) {
        ph__msg fini = {.type = PH__MSG_FINI};

        fini_sent = 1;
        fini_deadline = now_ms() + PH__RUNNER_FINI_MS;
        if (!ctl_open || ph__msg_send(p->ctl, &fini) != 0)
          proc_kill(r, p, ph__xstrdup("it is stopping"));
      }
    }
    if (fds[2].revents & (POLLIN | POLLHUP | POLLERR))
      ctl_open = !on_control(r, p, first);
    if (fds[3].revents & (POLLIN | POLLHUP | POLLERR))
      out_open = read_output(r, p->err, out, &out_used, sizeof(out)) != 0;
    if (fini_deadline != 0 && !killed_late && now_ms() > fini_deadline) {
      killed_late = 1;
      proc_kill(r, p,
                ph__xasprintf("fini did not return within %d ms",
                              PH__RUNNER_FINI_MS));
    }
    if (waitpid(p->pid, &status, WNOHANG) == p->pid)
      reaped = 1;
  }
  if (!reaped)
    waitpid(p->pid, &status, 0);
  /* What it wrote just before it went: the last log lines say most. */
  while (ctl_open && poll(&(struct pollfd){p->ctl, POLLIN, 0}, 1, 0) > 0)
    ctl_open = !on_control(r, p, first);
  fcntl(p->err, F_SETFL, O_NONBLOCK);
  while (out_open && read_output(r, p->err, out, &out_used, sizeof(out)) > 0)
    ;
  log_output(r, out, out_used);
  return status;
}

/* Sleeps ms unless the runner is being stopped. Returns non-zero when it
 * is. */
static int backoff_wait(ph__runner *r, uint64_t ms) {
  struct pollfd pf = {r->wake, POLLIN, 0};
  uint64_t end = now_ms() + ms, now, v;
  int stopping;

  for (;;) {
    uv_mutex_lock(&r->mu);
    stopping = r->stopping;
    uv_mutex_unlock(&r->mu);
    now = now_ms();
    if (stopping || now >= end)
      return stopping;
    if (poll(&pf, 1, (int)(end - now)) > 0 &&
        read(r->wake, &v, sizeof(v)) < 0 && errno != EAGAIN)
      return 0;
  }
}

/* The supervisor: spawns, serves, reaps and respawns until stopped. */
static void supervise(void *arg) {
  ph__runner *r = arg;
  uint64_t backoff = PH__RUNNER_BACKOFF_MIN_MS, began;
  int first = 1, served, stopping, status;
  char *err = NULL, *why;
  proc *p;

  for (;;) {
    served = 0;
    began = now_ms();
    if (!first)
      r->api->set_ready(r->inst, 1, NULL); /* Instances start ready. */
    p = spawn(r, &err);
    if (p != NULL) {
      status = serve_proc(r, p, first);
      uv_mutex_lock(&r->mu);
      /* Dead, and why, in one step with the runner's own state: a call
       * failing now names the same reason as the next one refused. */
      p->why = describe_status(status);
      p->dead = 1;
      if (r->cur == p)
        r->cur = NULL;
      served = p->serving;
      why = p->kill_why ? ph__xasprintf("%s, %s", p->why, p->kill_why)
                        : ph__xstrdup(p->why);
    } else {
      why = err ? err : ph__xstrdup("cannot start the runner");
      err = NULL;
      uv_mutex_lock(&r->mu);
    }
    if (first && !served) {
      r->first_done = 1;
      r->first_err = ph__xasprintf("its runner %s before it served", why);
      uv_cond_broadcast(&r->cv);
      uv_mutex_unlock(&r->mu);
      if (p != NULL)
        proc_unref(p);
      free(why);
      return;
    }
    first = 0;
    stopping = r->stopping;
    if (!stopping) {
      if (served && now_ms() - began >= PH__RUNNER_HEALTHY_MS)
        backoff = PH__RUNNER_BACKOFF_MIN_MS;
      free(r->down_why);
      r->down_why = ph__xstrdup(why);
      r->next_start = now_ms() + backoff;
    }
    uv_cond_broadcast(&r->cv);
    uv_mutex_unlock(&r->mu);
    if (p != NULL)
      proc_unref(p);
    if (stopping) {
      ph__debug("plugin instance %s: runner stopped (%s)", r->label, why);
      free(why);
      return;
    }
    ph__error("plugin instance %s: runner %s; restarting in %llu ms", r->label,
              why, (unsigned long long)backoff);
    free(why);
    if (backoff_wait(r, backoff))
      return;
    backoff = backoff * 2 > PH__RUNNER_BACKOFF_MAX_MS
                  ? PH__RUNNER_BACKOFF_MAX_MS
                  : backoff * 2;
  }
}

static void runner_free(ph__runner *r) {
  uv_mutex_destroy(&r->mu);
  uv_cond_destroy(&r->cv);
  close(r->wake);
  free(r->label);
  free(r->so_path);
  free(r->config_json);
  free(r->first_err);
  free(r->down_why);
  free(r);
}

ph__runner *ph__runner_start(const ph__runner_setup *setup, char **err) {
  uv_thread_options_t opts = {UV_THREAD_HAS_STACK_SIZE, 256 << 10};
  ph__runner *r = ph__xcalloc(1, sizeof(*r));

  *err = NULL;
  r->inst = setup->inst;
  r->api = setup->api;
  r->label = ph__xstrdup(setup->label);
  r->so_path = ph__xstrdup(setup->so_path);
  r->config_json = ph__xstrdup(setup->config_json);
  r->nchans = setup->channels > 0 ? setup->channels : 1;
  r->limits = setup->limits;
  uv_mutex_init(&r->mu);
  uv_cond_init(&r->cv);
  r->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (r->wake < 0) {
    ph__fail(err, "cannot start the runner of %s: eventfd: %s", r->label,
             strerror(errno));
    runner_free(r);
    return NULL;
  }
  if (uv_thread_create_ex(&r->thread, &opts, supervise, r) != 0) {
    ph__fail(err, "cannot start the supervisor thread of %s", r->label);
    runner_free(r);
    return NULL;
  }
  uv_mutex_lock(&r->mu);
  while (!r->first_done)
    uv_cond_wait(&r->cv, &r->mu);
  uv_mutex_unlock(&r->mu);
  if (r->first_err != NULL) {
    uv_thread_join(&r->thread);
    *err = r->first_err;
    r->first_err = NULL;
    runner_free(r);
    return NULL;
  }
  return r;
}

void ph__runner_stop(ph__runner *r) {
  if (r == NULL)
    return;
  uv_mutex_lock(&r->mu);
  r->stopping = 1;
  uv_mutex_unlock(&r->mu);
  wake_supervisor(r);
  uv_thread_join(&r->thread);
  runner_free(r);
}

/* "restarting after ...; next attempt in N ms", or NULL while serving.
 * Caller frees. (mu) */
static char *down_text(ph__runner *r) {
  uint64_t now = now_ms();

  if (r->cur != NULL && r->cur->serving)
    return NULL;
  if (r->stopping)
    return ph__xstrdup("stopping");
  if (r->down_why == NULL)
    return ph__xstrdup("starting");
  return ph__xasprintf(
      "restarting after its runner %s; next attempt in %llu "
      "ms",
      r->down_why,
      (unsigned long long)(r->next_start > now ? r->next_start - now : 0));
}

int ph__runner_serving(ph__runner *r, char **why) {
  uv_mutex_lock(&r->mu);
  *why = down_text(r);
  uv_mutex_unlock(&r->mu);
  return *why == NULL;
}

/* Answers call with an error naming the instance; data says the state and
 * the reason, for clients that tell a crash from a refusal. */
static void fail_call(ph__runner *r, ph_call *call, const char *state,
                      const char *message, const char *reason) {
  cJSON *data = ph__xcheck(cJSON_CreateObject());
  char *text;

  ph__xjson_put_string(data, "instance", r->label);
  ph__xjson_put_string(data, "state", state);
  ph__xjson_put_string(data, "reason", reason);
  text = ph__xjson_print(data);
  cJSON_Delete(data);
  r->api->reply_error(call, PH_RPC_INTERNAL_ERROR, message, text);
  free(text);
}

/* The runner went away under a call (or broke the protocol and was
 * killed): the call fails with how it went, once the supervisor knows. */
static void call_lost(ph__runner *r, proc *p, ph_call *call,
                      const ph__runner_req *req) {
  uint64_t until = now_ms() + REAP_WAIT_MS, now;
  char *reason, *message;

  uv_mutex_lock(&r->mu);
  while (!p->dead && (now = now_ms()) < until)
    uv_cond_timedwait(&r->cv, &r->mu, (until - now) * 1000000u);
  if (!p->dead)
    reason = ph__xstrdup("its channel closed");
  else if (p->kill_why != NULL)
    reason = ph__xasprintf("%s, %s", p->why, p->kill_why);
  else
    reason = ph__xstrdup(p->why);
  uv_mutex_unlock(&r->mu);
  message = ph__xasprintf("plugin instance %s failed during %s: its runner "
                          "%s; it is being restarted",
                          r->label, req->name, reason);
  fail_call(r, call, "crashed", message, reason);
  free(message);
  free(reason);
}

/* The round trips a handler makes through its call. Returns 0 or the
 * channel's error. */
static int round_trip(ph__runner *r, int fd, uint32_t seq, ph_call *call,
                      const ph__msg *m) {
  const ph_host_api *api = r->api;
  char *out = NULL;
  int rc, err;

  switch (m->type) {
  case PH__MSG_SERVICE:
    rc = api->service_call(call, m->s[0], m->s[1], &out);
    break;
  case PH__MSG_ASK:
    rc = api->client_request(call, m->s[0], m->s[1], m->s[2], &out);
    break;
  case PH__MSG_SET_STATE:
    rc = api->set_state(call, m->s[0]);
    break;
  default:
    rc = api->close_stream(call);
    break;
  }
  err = send_result(fd, seq, rc, out);
  api->free(out);
  return err;
}

/* Serves one call on channel ch of p. Returns non-zero when the channel
 * can take the next call. */
static int converse(ph__runner *r, proc *p, int ch, ph_call *call,
                    const ph__runner_req *req) {
  const ph_host_api *api = r->api;
  int fd = p->chans[ch], err = 0, done = 0, cancelled = 0, killed = 0;
  uint32_t seq = atomic_fetch_add(&r->seq, 1) + 1;
  uint64_t deadline = req->timeout_ms ? now_ms() + req->timeout_ms : 0;
  ph__msg m = {
      .type = PH__MSG_CALL, .seq = seq, .num = req->kind, .num2 = req->index};

  m.flags = (req->progress ? PH__CALLF_PROGRESS : 0) |
            (req->run_inline ? PH__CALLF_INLINE : 0);
  m.s[0] = req->item;
  m.s[1] = req->a;
  m.s[2] = req->b;
  m.s[3] = req->c;
  m.s[4] = req->principal;
  m.s[5] = req->state;
  atomic_store(&p->cancel[ch], 0);
  err = ph__msg_send(fd, &m);
  while (err == 0 && !done) {
    /* The channel's receive timeout (spawn) brings this thread back every
     * CHECK_MS while it waits, without a poll per message. */
    err = ph__msg_recv(fd, &m);
    if (err == UV_ETIMEDOUT) {
      err = 0;
      if (!cancelled && api->cancelled(call)) {
        cancelled = 1;
        atomic_store(&p->cancel[ch], seq);
      }
      if (deadline != 0 && !killed &&
          now_ms() >= deadline + PH__RUNNER_GRACE_MS) {
        killed = 1;
        proc_kill(r, p,
                  ph__xasprintf("%s was still running %d ms after its "
                                "deadline",
                                req->name, PH__RUNNER_GRACE_MS));
      }
      continue;
    }
    if (err)
      break;
    if (m.seq != seq) {
      proc_kill(
          r, p,
          ph__xasprintf("it answered call %u during call %u", m.seq, seq));
      err = PH__EINVAL;
      break;
    }
    switch (m.type) {
    case PH__MSG_REPLY:
      api->reply(call, m.s[0] ? m.s[0] : "");
      done = 1;
      break;
    case PH__MSG_REPLY_ERROR:
      api->reply_error(call, (int)m.num, m.s[0], m.s[1]);
      done = 1;
      break;
    case PH__MSG_DONE:
      done = 1;
      break;
    case PH__MSG_PROGRESS:
      api->progress(call, m.x, m.y, m.s[0]);
      break;
    case PH__MSG_MESSAGE:
      api->message(call, (int)m.num, m.s[0], m.s[1]);
      break;
    case PH__MSG_SERVICE:
    case PH__MSG_ASK:
    case PH__MSG_SET_STATE:
    case PH__MSG_CLOSE:
      err = round_trip(r, fd, seq, call, &m);
      break;
    default:
      proc_kill(r, p,
                ph__xasprintf("it sent message type %u during %s", m.type,
                              req->name));
      err = PH__EINVAL;
      break;
    }
    ph__msg_clear(&m);
  }
  if (err) {
    call_lost(r, p, call, req);
    return 0;
  }
  return !killed;
}

/* Whether a call that found the runner down waits for its restart: when
 * the next attempt is due within PH__RUNNER_DOWN_WAIT_MS of its arrival,
 * and until then. (mu) */
static int wait_for_restart(ph__runner *r, uint64_t arrival, uint64_t now) {
  return !r->stopping && r->down_why != NULL &&
         r->next_start <= arrival + PH__RUNNER_DOWN_WAIT_MS &&
         now < arrival + PH__RUNNER_DOWN_WAIT_MS;
}

void ph__runner_call(ph__runner *r, ph_call *call, const ph__runner_req *req) {
  uint64_t arrival = now_ms(), until = arrival + CHANNEL_WAIT_MS, now;
  char *why, *message;
  int ch, reusable;
  proc *p;

  uv_mutex_lock(&r->mu);
  for (;;) {
    why = down_text(r);
    now = now_ms();
    if (why != NULL && wait_for_restart(r, arrival, now)) {
      free(why);
      uv_cond_timedwait(&r->cv, &r->mu,
                        (arrival + PH__RUNNER_DOWN_WAIT_MS - now) * 1000000u);
      continue;
    }
    if (why != NULL) {
      uv_mutex_unlock(&r->mu);
      message =
          ph__xasprintf("plugin instance %s is unavailable: %s", r->label, why);
      fail_call(r, call, "restarting", message, why);
      free(message);
      free(why);
      return;
    }
    p = r->cur;
    if (p->nidle > 0)
      break;
    if (now >= until) {
      uv_mutex_unlock(&r->mu);
      message = ph__xasprintf("plugin instance %s is busy: all %d of its "
                              "channels are in use",
                              r->label, r->nchans);
      fail_call(r, call, "busy", message, "no free channel");
      free(message);
      return;
    }
    uv_cond_timedwait(&r->cv, &r->mu, (until - now) * 1000000u);
  }
  ch = p->idle[--p->nidle];
  atomic_fetch_add(&p->refs, 1);
  uv_mutex_unlock(&r->mu);

  reusable = converse(r, p, ch, call, req);

  uv_mutex_lock(&r->mu);
  if (reusable && !p->dead) {
    p->idle[p->nidle++] = ch;
    uv_cond_broadcast(&r->cv);
  }
  uv_mutex_unlock(&r->mu);
  proc_unref(p);
}
