/* reload_bench.c: what a reload costs, measured on the real host.
 *
 * Serves four fixture plugins (stamp, provider, consumer, ok) over stdio
 * from a private plugin directory, then measures:
 *
 *  1. Reload latency: install the other build of stamp (temporary file +
 *     rename), send SIGHUP, and call stamp_build back to back until the
 *     new build answers. The time from the signal to that answer, over
 *     --reloads reloads: median, p90, worst.
 *  2. Throughput during a reload storm: calls per second with --window
 *     calls in flight, alternating steady phases with storm phases (one
 *     reload every --storm-ms, each swapping the builds of stamp and
 *     provider), --rounds of each, --seconds long; medians compared.
 *
 * Prints a Markdown table. Exit status 1 if a call failed. */
#include <cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct {
  const char *host, *fixtures;
  int reloads, window, rounds, storm_ms;
  double seconds;
  char work[64], plugins[128];
  pid_t pid;
  int to, from, err;
  char *out;
  size_t out_len, out_cap;
  long next_id, inflight, answered, failed;
  int build; /* Which stamp/provider build is installed: 0 or 1. */
  char last_text[64];
  long last_id;
} B;

static int64_t now_us(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what) {
  fprintf(stderr, "reload_bench: %s: %s\n", what, strerror(errno));
  if (B.pid > 0)
    kill(B.pid, SIGKILL);
  exit(2);
}

static void install(const char *fixture, const char *name) {
  char src[512], dst[512], tmp[520];
  struct stat st;
  char *data;
  int in, out;

  snprintf(src, sizeof(src), "%s/%s", B.fixtures, fixture);
  snprintf(dst, sizeof(dst), "%s/%s", B.plugins, name);
  snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
  in = open(src, O_RDONLY);
  if (in < 0 || fstat(in, &st) != 0)
    die(src);
  data = malloc((size_t)st.st_size);
  if (read(in, data, (size_t)st.st_size) != st.st_size)
    die(src);
  close(in);
  out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  if (out < 0 || write(out, data, (size_t)st.st_size) != st.st_size ||
      close(out) != 0 || rename(tmp, dst) != 0)
    die(dst);
  free(data);
}

/* Swaps stamp (and with `both`, provider) to the other build. */
static void swap_builds(int both) {
  B.build = !B.build;
  install(B.build ? "stamp/b/stamp.so" : "stamp/a/stamp.so", "stamp.so");
  if (both)
    install(B.build ? "v2/provider.so" : "provider.so", "provider.so");
}

static void setup(void) {
  char config[256], text[512];
  int fd;

  snprintf(B.work, sizeof(B.work), "/tmp/ph-reload-bench-XXXXXX");
  if (mkdtemp(B.work) == NULL)
    die("mkdtemp");
  snprintf(B.plugins, sizeof(B.plugins), "%s/plugins", B.work);
  if (mkdir(B.plugins, 0700) != 0)
    die("mkdir");
  install("stamp/a/stamp.so", "stamp.so");
  install("provider.so", "provider.so");
  install("consumer.so", "consumer.so");
  install("ok.so", "ok.so");
  snprintf(config, sizeof(config), "%s/plughost.json", B.work);
  snprintf(text, sizeof(text),
           "{\"plugin_dir\":\"%s\",\"cache_dir\":\"%s/cache\","
           "\"log_level\":\"warning\"}",
           B.plugins, B.work);
  fd = open(config, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
    die(config);
  close(fd);
}

static void spawn_host(void) {
  char config[256];
  int in[2], out[2];

  snprintf(config, sizeof(config), "%s/plughost.json", B.work);
  if (pipe(in) != 0 || pipe(out) != 0)
    die("pipe");
  B.pid = fork();
  if (B.pid < 0)
    die("fork");
  if (B.pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    execl(B.host, B.host, "--config", config, "--stdio", (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  B.to = in[1];
  B.from = out[0];
  fcntl(B.from, F_SETFL, O_NONBLOCK);
}

static void send_text(const char *s) {
  size_t len = strlen(s), off = 0;
  ssize_t n;

  while (off < len) {
    n = write(B.to, s + off, len - off);
    if (n < 0 && errno != EINTR)
      die("write");
    if (n > 0)
      off += (size_t)n;
  }
}

static void send_call(const char *tool) {
  char line[256];

  snprintf(line, sizeof(line),
           "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"tools/call\","
           "\"params\":{\"name\":\"%s\",\"arguments\":{}}}\n",
           B.next_id++, tool);
  send_text(line);
  B.inflight++;
}

/* Counts each response; keeps the last one's id and text. */
static void on_line(char *line) {
  cJSON *msg = cJSON_Parse(line), *id, *text;

  id = cJSON_GetObjectItemCaseSensitive(msg, "id");
  if (cJSON_IsNumber(id) && id->valuedouble == 0) {
    B.inflight--; /* The initialize result. */
  } else if (cJSON_IsNumber(id)) {
    text = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(
            cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(msg, "result"), "content"),
            0),
        "text");
    B.inflight--;
    B.answered++;
    B.last_id = (long)id->valuedouble;
    if (!cJSON_IsString(text) ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(msg, "result"), "isError"))) {
      if (B.failed++ < 5)
        fprintf(stderr, "reload_bench: failed: %.200s\n", line);
      B.last_text[0] = '\0';
    } else {
      snprintf(B.last_text, sizeof(B.last_text), "%s", text->valuestring);
    }
  }
  cJSON_Delete(msg);
}

static void pump(int timeout_ms) {
  struct pollfd p = {B.from, POLLIN, 0};
  char *start, *nl;
  ssize_t n;

  if (poll(&p, 1, timeout_ms) <= 0)
    return;
  for (;;) {
    if (B.out_cap - B.out_len < 65536) {
      B.out_cap = B.out_cap ? B.out_cap * 2 : 262144;
      B.out = realloc(B.out, B.out_cap);
    }
    n = read(B.from, B.out + B.out_len, B.out_cap - B.out_len - 1);
    if (n == 0) {
      errno = EPIPE;
      die("the host exited");
    }
    if (n < 0)
      break;
    B.out_len += (size_t)n;
  }
  B.out[B.out_len] = '\0';
  start = B.out;
  while ((nl = memchr(start, '\n', B.out_len - (size_t)(start - B.out)))) {
    *nl = '\0';
    on_line(start);
    start = nl + 1;
  }
  B.out_len -= (size_t)(start - B.out);
  memmove(B.out, start, B.out_len);
}

/* One call at a time; returns its text. */
static const char *call_once(const char *tool) {
  long id = B.next_id;

  send_call(tool);
  while (B.inflight > 0)
    pump(1000);
  if (B.last_id != id)
    die("response out of order");
  return B.last_text;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;

  return x < y ? -1 : x > y;
}

static double percentile(double *v, int n, int pct) {
  int i = (n * pct + 99) / 100 - 1;

  return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* Calls per second over `seconds` with B.window in flight; with storm_ms
 * > 0, a reload every storm_ms. */
static double throughput(int storm_ms, int *reloads) {
  static const char *const tools[] = {"stamp_build", "provider_version"};
  int64_t start = now_us(), end = start + (int64_t)(B.seconds * 1e6);
  int64_t next_reload = start + storm_ms * 1000;
  long before = B.answered;
  long i = 0;

  *reloads = 0;
  while (now_us() < end) {
    while (B.inflight < B.window)
      send_call(tools[i++ % 2]);
    if (storm_ms > 0 && now_us() >= next_reload) {
      swap_builds(1);
      kill(B.pid, SIGHUP);
      (*reloads)++;
      next_reload += storm_ms * 1000;
    }
    pump(1);
  }
  end = now_us();
  i = B.answered - before;
  while (B.inflight > 0)
    pump(1000);
  return i / ((end - start) / 1e6);
}

int main(int argc, char **argv) {
  static const struct option longs[] = {
      {"host", required_argument, NULL, 'h'},
      {"fixtures", required_argument, NULL, 'f'},
      {"reloads", required_argument, NULL, 'r'},
      {"window", required_argument, NULL, 'w'},
      {"rounds", required_argument, NULL, 'n'},
      {"seconds", required_argument, NULL, 's'},
      {"storm-ms", required_argument, NULL, 'm'},
      {NULL, 0, NULL, 0}};
  double *lat, steady[32], storm[32], s_med, t_med;
  int c, i, storm_reloads = 0, r, status;
  const char *want;
  int64_t t0;

  B.reloads = 50;
  B.window = 32;
  B.rounds = 3;
  B.seconds = 3;
  B.storm_ms = 100;
  while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    switch (c) {
    case 'h':
      B.host = optarg;
      break;
    case 'f':
      B.fixtures = optarg;
      break;
    case 'r':
      B.reloads = atoi(optarg);
      break;
    case 'w':
      B.window = atoi(optarg);
      break;
    case 'n':
      B.rounds = atoi(optarg);
      break;
    case 's':
      B.seconds = atof(optarg);
      break;
    case 'm':
      B.storm_ms = atoi(optarg);
      break;
    default:
      exit(2);
    }
  }
  if (B.host == NULL || B.fixtures == NULL || B.reloads < 1 || B.rounds < 1 ||
      B.rounds > 32) {
    fprintf(stderr, "usage: reload_bench --host BIN --fixtures DIR "
                    "[--reloads N] [--window N] [--rounds N] [--seconds S] "
                    "[--storm-ms N]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  setup();
  spawn_host();
  send_text("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\","
            "\"params\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":"
            "{},\"clientInfo\":{\"name\":\"bench\",\"version\":\"1\"}}}\n");
  B.inflight = 1;
  B.next_id = 1;
  while (B.inflight > 0)
    pump(1000);
  send_text("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
  for (i = 0; i < 200; i++)
    call_once("stamp_build"); /* Warm up. */

  lat = calloc((size_t)B.reloads, sizeof(double));
  for (r = 0; r < B.reloads; r++) {
    swap_builds(0);
    want = B.build ? "b" : "a";
    t0 = now_us();
    kill(B.pid, SIGHUP);
    while (strcmp(call_once("stamp_build"), want) != 0)
      ;
    lat[r] = (now_us() - t0) / 1e3;
    /* Let the old instance drain so reloads never overlap. */
    usleep(20000);
  }
  qsort(lat, (size_t)B.reloads, sizeof(double), cmp_double);

  for (i = 0; i < B.rounds; i++) {
    steady[i] = throughput(0, &c);
    storm[i] = throughput(B.storm_ms, &c);
    storm_reloads += c;
  }
  qsort(steady, (size_t)B.rounds, sizeof(double), cmp_double);
  qsort(storm, (size_t)B.rounds, sizeof(double), cmp_double);
  s_med = steady[B.rounds / 2];
  t_med = storm[B.rounds / 2];

  close(B.to);
  waitpid(B.pid, &status, 0);
  printf("| Measure | Result | Target |\n|---|---|---|\n");
  printf("| Reload latency, SIGHUP to first answer from the new code "
         "(%d reloads) | median %.1f ms, p90 %.1f ms, worst %.1f ms | "
         "median <= 50 ms |\n",
         B.reloads, percentile(lat, B.reloads, 50),
         percentile(lat, B.reloads, 90), lat[B.reloads - 1]);
  printf("| Throughput, steady (%d in flight, median of %d x %.0f s) | "
         "%.0f calls/s | |\n",
         B.window, B.rounds, B.seconds, s_med);
  printf("| Throughput, one reload every %d ms (%d reloads) | %.0f calls/s "
         "= %.1f%% of steady | >= 90%% |\n",
         B.storm_ms, storm_reloads, t_med, 100 * t_med / s_med);
  printf("| Failed calls | %ld of %ld | 0 |\n", B.failed, B.answered);
  return B.failed > 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}
