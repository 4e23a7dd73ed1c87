/* soak.c: hot reload under load.
 *
 * Starts the real host over stdio on a private plugin directory holding
 * two plugins, stamp and provider, keeps a fixed number of tools/call
 * requests in flight against them, and meanwhile performs N reloads: each
 * installs the other build of both plugins (temporary file + rename(2))
 * and sends SIGHUP, then waits for "reload k: generation" on the host's
 * stderr before the next one. Reload k serves builds "a"/"1" when k is
 * even and "b"/"2" when it is odd.
 *
 * Every answer names the build that produced it. A call sent after the
 * driver saw reload k published, and answered once it had seen reload m,
 * ran on a generation between k and m (the host logs a publish before it
 * reads any later request, and before it writes any answer from the new
 * generation), so its build must be one of theirs. Anything else, any
 * error, and any call never answered is a failure.
 *
 * At the end the host must be back where it was: the same open fds and
 * threads as at a baseline taken after the first reloads, RSS within a
 * slack, one cached copy per served plugin, every retired instance
 * finalised, and a clean exit that leaves the cache directory empty.
 * Exit status 0 when all of that holds. */
#include <cJSON.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum target { T_STAMP_BUILD, T_STAMP_SLEEP, T_PROVIDER, T_COUNT };

typedef struct {
  const char *host;
  const char *fixtures;
  int reloads;
  int inflight;
  int interval_ms; /* Pause between one reload's publish and the next. */
  long rss_slack_kib;
  int exit_timeout_ms;
  char **wrap; /* Command prefix (valgrind ...), NULL-terminated. */
  int nwrap;
} options;

typedef struct {
  int target;
  int seen_at_send; /* Reloads seen published when it was sent. */
  int answered;
} request;

typedef struct {
  char *buf;
  size_t len, cap;
} linebuf;

static struct {
  options o;
  char work[64], plugins[128], cache[128], config[128];
  pid_t pid;
  int to, from, err;
  linebuf out, errbuf;
  request *reqs;
  long nreqs, cap;
  long inflight, answered, failed, invalid;
  int seen;         /* Reloads seen published. */
  int sent_reloads; /* SIGHUPs sent. */
  long fini_stamp, fini_provider, host_errors;
  int initialized; /* The initialize response (id -1) arrived. */
  int64_t reload_sent_at, reload_worst_ms, reload_total_ms;
} S;

static int64_t now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  fprintf(stderr, "soak: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  if (S.pid > 0)
    kill(S.pid, SIGKILL);
  exit(2);
}

static void usage(void) {
  fprintf(stderr,
          "usage: soak --host BIN --fixtures DIR [--reloads N] "
          "[--inflight N]\n"
          "            [--interval-ms N] [--rss-slack-kib N] "
          "[--exit-timeout-ms N]\n"
          "            [--wrap ARG]...\n"
          "  --fixtures DIR  the built fixture plugins (build/tests/plugins)\n"
          "  --wrap ARG      prefix the host command (repeat: --wrap valgrind "
          "--wrap -q)\n");
  exit(2);
}

static void parse_options(int argc, char **argv) {
  static const struct option longs[] = {
      {"host", required_argument, NULL, 'h'},
      {"fixtures", required_argument, NULL, 'f'},
      {"reloads", required_argument, NULL, 'r'},
      {"inflight", required_argument, NULL, 'i'},
      {"interval-ms", required_argument, NULL, 'm'},
      {"rss-slack-kib", required_argument, NULL, 's'},
      {"exit-timeout-ms", required_argument, NULL, 'x'},
      {"wrap", required_argument, NULL, 'w'},
      {NULL, 0, NULL, 0}};
  options *o = &S.o;
  int c;

  o->reloads = 1000;
  o->inflight = 32;
  o->rss_slack_kib = 8192;
  o->exit_timeout_ms = 60000;
  o->wrap = calloc((size_t)argc + 1, sizeof(char *));
  while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    switch (c) {
    case 'h':
      o->host = optarg;
      break;
    case 'f':
      o->fixtures = optarg;
      break;
    case 'r':
      o->reloads = atoi(optarg);
      break;
    case 'i':
      o->inflight = atoi(optarg);
      break;
    case 'm':
      o->interval_ms = atoi(optarg);
      break;
    case 's':
      o->rss_slack_kib = atol(optarg);
      break;
    case 'x':
      o->exit_timeout_ms = atoi(optarg);
      break;
    case 'w':
      o->wrap[o->nwrap++] = optarg;
      break;
    default:
      usage();
    }
  }
  if (o->host == NULL || o->fixtures == NULL || o->reloads < 1 ||
      o->inflight < 1)
    usage();
}

static void write_file(const char *path, const void *data, size_t len) {
  char tmp[512];
  int fd;

  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) != 0)
    die("write %s: %s", tmp, strerror(errno));
  if (rename(tmp, path) != 0)
    die("rename %s: %s", tmp, strerror(errno));
}

/* Installs a fixture as `name` the way operators must: never over the
 * file in place, always a new file renamed into place. */
static void install(const char *fixture, const char *name) {
  char src[512], dst[512];
  struct stat st;
  char *data;
  int fd;

  snprintf(src, sizeof(src), "%s/%s", S.o.fixtures, fixture);
  snprintf(dst, sizeof(dst), "%s/%s", S.plugins, name);
  fd = open(src, O_RDONLY);
  if (fd < 0 || fstat(fd, &st) != 0)
    die("%s: %s (are the fixtures built?)", src, strerror(errno));
  data = malloc((size_t)st.st_size);
  if (read(fd, data, (size_t)st.st_size) != st.st_size)
    die("read %s", src);
  close(fd);
  write_file(dst, data, (size_t)st.st_size);
  free(data);
}

/* Installs what generation k serves. */
static void install_generation(int k) {
  install(k % 2 ? "stamp/b/stamp.so" : "stamp/a/stamp.so", "stamp.so");
  install(k % 2 ? "v2/provider.so" : "provider.so", "provider.so");
}

static int count_dir(const char *dir) {
  struct dirent *de;
  DIR *d = opendir(dir);
  int n = 0;

  if (d == NULL)
    return -1;
  while ((de = readdir(d)) != NULL)
    n += de->d_name[0] != '.';
  closedir(d);
  return n;
}

static void remove_dir(const char *dir) {
  struct dirent *de;
  char path[512];
  DIR *d = opendir(dir);

  if (d == NULL)
    return;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

static void setup(void) {
  char text[1024];

  snprintf(S.work, sizeof(S.work), "/tmp/ph-soak-XXXXXX");
  if (mkdtemp(S.work) == NULL)
    die("mkdtemp: %s", strerror(errno));
  snprintf(S.plugins, sizeof(S.plugins), "%s/plugins", S.work);
  snprintf(S.cache, sizeof(S.cache), "%s/cache", S.work);
  snprintf(S.config, sizeof(S.config), "%s/plughost.json", S.work);
  if (mkdir(S.plugins, 0700) != 0 || mkdir(S.cache, 0700) != 0)
    die("mkdir: %s", strerror(errno));
  /* Debug level for the "finalised instance" lines. */
  snprintf(text, sizeof(text),
           "{\"plugin_dir\":\"%s\",\"cache_dir\":\"%s\","
           "\"log_level\":\"debug\",\"limits\":{\"call_timeout_ms\":60000}}",
           S.plugins, S.cache);
  write_file(S.config, text, strlen(text));
  install_generation(0);
}

static void spawn_host(void) {
  int in[2], out[2], err[2], i, argc = 0;
  char **argv = calloc((size_t)S.o.nwrap + 8, sizeof(char *));

  for (i = 0; i < S.o.nwrap; i++)
    argv[argc++] = S.o.wrap[i];
  argv[argc++] = (char *)S.o.host;
  argv[argc++] = "--config";
  argv[argc++] = S.config;
  argv[argc++] = "--stdio";
  if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0)
    die("pipe: %s", strerror(errno));
  S.pid = fork();
  if (S.pid < 0)
    die("fork: %s", strerror(errno));
  if (S.pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(in[1]);
    close(out[0]);
    close(err[0]);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  S.to = in[1];
  S.from = out[0];
  S.err = err[0];
  fcntl(S.from, F_SETFL, O_NONBLOCK);
  fcntl(S.err, F_SETFL, O_NONBLOCK);
  free(argv);
}

static void send_line(const char *line) {
  size_t len = strlen(line), off = 0;
  ssize_t n;

  while (off < len) {
    n = write(S.to, line + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      die("write to host: %s", strerror(errno));
    off += (size_t)n;
  }
}

/* Reads what is there; returns 0 at EOF. */
static int fill(int fd, linebuf *b) {
  ssize_t n;

  for (;;) {
    if (b->cap - b->len < 65536) {
      b->cap = b->cap ? b->cap * 2 : 131072;
      b->buf = realloc(b->buf, b->cap);
    }
    n = read(fd, b->buf + b->len, b->cap - b->len - 1);
    if (n > 0) {
      b->len += (size_t)n;
      continue;
    }
    if (n == 0)
      return 0;
    if (errno == EINTR)
      continue;
    return 1;
  }
}

/* Calls fn on each complete line and keeps the incomplete rest. */
static void take_lines(linebuf *b, void (*fn)(char *line)) {
  char *start = b->buf, *nl;

  if (b->len == 0)
    return;
  b->buf[b->len] = '\0';
  while ((nl = memchr(start, '\n', b->len - (size_t)(start - b->buf)))) {
    *nl = '\0';
    fn(start);
    start = nl + 1;
  }
  b->len -= (size_t)(start - b->buf);
  memmove(b->buf, start, b->len);
}

static void on_log_line(char *line) {
  const char *p = strstr(line, "reload ");
  int k;

  if (p != NULL && sscanf(p, "reload %d: generation", &k) == 1 && k > S.seen)
    S.seen = k;
  if (strstr(line, "finalised instance default/stamp") != NULL)
    S.fini_stamp++;
  if (strstr(line, "finalised instance default/provider") != NULL)
    S.fini_provider++;
  if (strstr(line, " error: ") != NULL || strstr(line, " warning: ") != NULL) {
    if (S.host_errors++ < 10)
      fprintf(stderr, "soak: host: %s\n", line);
  }
}

static void drain_log(void) {
  fill(S.err, &S.errbuf);
  take_lines(&S.errbuf, on_log_line);
}

static const char *const tool_of[T_COUNT] = {"stamp_build", "stamp_sleep",
                                             "provider_version"};

static void send_call(void) {
  char line[256];
  request *r;
  long id;

  if (S.nreqs == S.cap) {
    S.cap = S.cap ? S.cap * 2 : 4096;
    S.reqs = realloc(S.reqs, (size_t)S.cap * sizeof(request));
  }
  id = S.nreqs++;
  r = &S.reqs[id];
  r->target = (int)(id % T_COUNT);
  r->seen_at_send = S.seen;
  r->answered = 0;
  snprintf(line, sizeof(line),
           "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"tools/call\","
           "\"params\":{\"name\":\"%s\",\"arguments\":%s}}\n",
           id, tool_of[r->target],
           r->target == T_STAMP_SLEEP ? "{\"ms\":1}" : "{}");
  send_line(line);
  S.inflight++;
}

/* The answer generation k gives for a target. */
static const char *expected(int target, int k) {
  switch (target) {
  case T_STAMP_BUILD:
    return k % 2 ? "b" : "a";
  case T_STAMP_SLEEP:
    return k % 2 ? "b slept 1" : "a slept 1";
  default:
    return k % 2 ? "2" : "1";
  }
}

static void on_response(char *line) {
  cJSON *msg = cJSON_Parse(line), *id, *result, *content, *text;
  const char *got;
  request *r;
  int k, ok = 0;

  id = cJSON_GetObjectItemCaseSensitive(msg, "id");
  if (cJSON_IsNumber(id) && id->valuedouble == -1) {
    S.initialized = cJSON_GetObjectItem(msg, "result") != NULL;
    cJSON_Delete(msg);
    return;
  }
  if (!cJSON_IsNumber(id)) {
    /* Only responses are expected; a list_changed would be a bug too. */
    if (S.invalid++ < 10)
      fprintf(stderr, "soak: unexpected message: %.200s\n", line);
    cJSON_Delete(msg);
    return;
  }
  if (id->valuedouble < 0 || id->valuedouble >= S.nreqs ||
      S.reqs[(long)id->valuedouble].answered)
    die("answer to an unknown or already answered id: %.200s", line);
  r = &S.reqs[(long)id->valuedouble];
  r->answered = 1;
  S.inflight--;
  S.answered++;
  result = cJSON_GetObjectItemCaseSensitive(msg, "result");
  content = cJSON_GetArrayItem(
      cJSON_GetObjectItemCaseSensitive(result, "content"), 0);
  text = cJSON_GetObjectItemCaseSensitive(content, "text");
  if (result == NULL || cJSON_IsTrue(cJSON_GetObjectItem(result, "isError")) ||
      !cJSON_IsString(text)) {
    if (S.failed++ < 10)
      fprintf(stderr, "soak: failed call: %.300s\n", line);
    cJSON_Delete(msg);
    return;
  }
  got = text->valuestring;
  for (k = r->seen_at_send; k <= S.seen && !ok; k++)
    ok = strcmp(got, expected(r->target, k)) == 0;
  if (!ok && S.invalid++ < 10)
    fprintf(stderr, "soak: %s answered \"%s\", not from generations %d..%d\n",
            tool_of[r->target], got, r->seen_at_send, S.seen);
  cJSON_Delete(msg);
}

/* Stdout first, then stderr: a publish logged before an answer was
 * written is then always known when the answer is checked. */
static int pump(int timeout_ms) {
  struct pollfd p[2] = {{S.from, POLLIN, 0}, {S.err, POLLIN, 0}};
  int open_out;

  poll(p, 2, timeout_ms);
  open_out = fill(S.from, &S.out);
  drain_log();
  take_lines(&S.out, on_response);
  return open_out;
}

static long proc_status(const char *key) {
  char path[64], line[256];
  long value = -1;
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/status", (int)S.pid);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, key, strlen(key)) == 0)
      value = atol(line + strlen(key) + 1);
  fclose(f);
  return value;
}

static int open_fds(void) {
  char path[64];

  snprintf(path, sizeof(path), "/proc/%d/fd", (int)S.pid);
  return count_dir(path);
}

typedef struct {
  int fds;
  long rss_kib, threads;
} usage_sample;

/* Samples only when every retired plugin is gone (one cached copy per
 * served plugin), so the two samples compare like with like. */
static int sample(usage_sample *u) {
  if (count_dir(S.cache) != 2)
    return 0;
  u->fds = open_fds();
  u->rss_kib = proc_status("VmRSS:");
  u->threads = proc_status("Threads:");
  return 1;
}

static void initialize(void) {
  int64_t deadline = now_ms() + 60000;

  send_line("{\"jsonrpc\":\"2.0\",\"id\":-1,\"method\":\"initialize\","
            "\"params\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":"
            "{},\"clientInfo\":{\"name\":\"soak\",\"version\":\"1\"}}}\n");
  while (!S.initialized) {
    if (now_ms() > deadline)
      die("no initialize result");
    if (!pump(100))
      die("host exited during start-up");
  }
  send_line("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
}

int main(int argc, char **argv) {
  usage_sample before = {0}, after = {0};
  int baseline_at, have_baseline = 0, status = 0, problems = 0;
  int64_t start, next_reload = 0, last_progress, deadline;
  long lost, fini_stamp, fini_provider;

  parse_options(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  setup();
  spawn_host();
  initialize();
  /* The baseline waits for a few reloads so allocator pools and the
   * first lazy allocations are already in it. */
  baseline_at = S.o.reloads / 10 < 20 ? S.o.reloads / 10 : 20;
  if (baseline_at < 1)
    baseline_at = 1;
  start = last_progress = now_ms();

  while (S.sent_reloads < S.o.reloads || S.seen < S.sent_reloads) {
    while (S.inflight < S.o.inflight)
      send_call();
    if (S.seen == S.sent_reloads && S.seen == baseline_at && !have_baseline)
      have_baseline = sample(&before);
    if (S.seen == S.sent_reloads && now_ms() >= next_reload &&
        (have_baseline || S.seen != baseline_at)) {
      install_generation(++S.sent_reloads);
      S.reload_sent_at = now_ms();
      kill(S.pid, SIGHUP);
    }
    if (!pump(S.seen < S.sent_reloads ? 5 : 1))
      die("the host exited (see its log above)");
    if (S.seen == S.sent_reloads && S.reload_sent_at != 0) {
      int64_t took = now_ms() - S.reload_sent_at;

      S.reload_total_ms += took;
      if (took > S.reload_worst_ms)
        S.reload_worst_ms = took;
      S.reload_sent_at = 0;
      next_reload = now_ms() + S.o.interval_ms;
      last_progress = now_ms();
    }
    if (now_ms() - last_progress > 60000)
      die("reload %d not published after 60 s", S.sent_reloads);
  }

  /* Let every call finish, then every retired instance go. */
  deadline = now_ms() + 60000;
  while (S.inflight > 0 && now_ms() < deadline)
    if (!pump(50))
      break;
  lost = S.inflight;
  deadline = now_ms() + 60000;
  while ((!sample(&after) || S.fini_stamp < S.o.reloads ||
          S.fini_provider < S.o.reloads) &&
         now_ms() < deadline)
    pump(50);
  /* Counted before exit, which finalises the last generation too. */
  fini_stamp = S.fini_stamp;
  fini_provider = S.fini_provider;

  close(S.to);
  deadline = now_ms() + S.o.exit_timeout_ms;
  while (waitpid(S.pid, &status, WNOHANG) != S.pid) {
    if (now_ms() > deadline) {
      kill(S.pid, SIGKILL);
      waitpid(S.pid, &status, 0);
      status = -1;
      break;
    }
    pump(50);
  }
  drain_log();

  printf("soak: %ld calls answered in %.1f s with %d reloads "
         "(%d in flight, reload mean %.1f ms, worst %lld ms)\n",
         S.answered, (now_ms() - start) / 1e3, S.seen, S.o.inflight,
         S.seen ? (double)S.reload_total_ms / S.seen : 0.0,
         (long long)S.reload_worst_ms);
  printf("soak: failed %ld, lost %ld, invalid %ld, host errors/warnings %ld\n",
         S.failed, lost, S.invalid, S.host_errors);
  printf("soak: finalised stamp %ld, provider %ld (want %d each)\n", fini_stamp,
         fini_provider, S.o.reloads);
  printf("soak: fds %d -> %d, threads %ld -> %ld, rss %ld -> %ld KiB "
         "(slack %ld)\n",
         before.fds, after.fds, before.threads, after.threads, before.rss_kib,
         after.rss_kib, S.o.rss_slack_kib);
  printf("soak: host exit status %d, cached copies left %d\n",
         WIFEXITED(status) ? WEXITSTATUS(status) : -1, count_dir(S.cache));

  problems += S.failed > 0 || lost > 0 || S.invalid > 0 || S.host_errors > 0;
  problems += fini_stamp != S.o.reloads || fini_provider != S.o.reloads;
  problems += !have_baseline || after.fds != before.fds ||
              after.threads != before.threads ||
              after.rss_kib > before.rss_kib + S.o.rss_slack_kib;
  problems += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  problems += count_dir(S.cache) != 0;
  printf("soak: %s\n", problems ? "FAILED" : "passed");
  if (problems) {
    printf("soak: kept %s for inspection\n", S.work);
    return 1;
  }
  remove_dir(S.plugins);
  remove_dir(S.cache);
  unlink(S.config);
  rmdir(S.work);
  return 0;
}
