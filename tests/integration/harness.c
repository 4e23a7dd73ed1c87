/* harness.c: see harness.h. A tiny line-oriented client for the real host,
 * built on fork/exec, pipes and poll. */
#include "harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEPT 4096

struct th_host {
  pid_t pid;
  int in_fd;  /* host's stdin */
  int out_fd; /* host's stdout */
  int err_fd; /* the stderr file, for reading */
  char *err_path;
  char *errbuf;
  size_t errlen;
  char *rbuf; /* bytes read from stdout, not yet split into lines */
  size_t rlen, rcap;
  cJSON *kept[MAX_KEPT];     /* messages received but not yet consumed */
  char *kept_text[MAX_KEPT]; /* the line each of them came as */
  int nkept;
  long next_id;
};

/* How long th_rpc and th_stop_config wait. */
#define WAIT_MS 5000

/* The test's own config (th_config), or NULL. */
static char *test_config;

long long th_now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *th_binary(void) {
  return PH_BUILD_DIR "/plughost";
}

char *th_write_temp(const char *text, const char *suffix) {
  char *path;
  int fd;
  size_t len = strlen(text);

  if (asprintf(&path, "/tmp/ph-test-XXXXXX%s", suffix) < 0)
    cr_assert_fail("asprintf");
  fd = mkstemps(path, (int)strlen(suffix));
  cr_assert(fd >= 0, "mkstemps: %s", strerror(errno));
  cr_assert_eq(write(fd, text, len), (ssize_t)len);
  close(fd);
  return path;
}

th_host *th_start(const char *config, ...) {
  const char *argv[32];
  int argc = 0, in[2], out[2];
  th_host *h;
  va_list ap;
  const char *a;

  h = calloc(1, sizeof(*h));
  cr_assert_not_null(h);
  h->err_path = th_write_temp("", ".log");
  argv[argc++] = th_binary();
  argv[argc++] = "--config";
  argv[argc++] = config;
  argv[argc++] = "--stdio";
  va_start(ap, config);
  while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
    argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;

  cr_assert_eq(pipe(in), 0);
  cr_assert_eq(pipe(out), 0);
  h->pid = fork();
  cr_assert(h->pid >= 0);
  if (h->pid == 0) {
    int errfd = open(h->err_path, O_WRONLY | O_APPEND);

    /* A failed assertion ends the test process: take the host along. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(errfd, 2);
    close(in[1]);
    close(out[0]);
    if (chdir(PH_SOURCE_DIR) != 0)
      _exit(126);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  h->in_fd = in[1];
  h->out_fd = out[0];
  fcntl(h->out_fd, F_SETFL, O_NONBLOCK);
  h->err_fd = open(h->err_path, O_RDONLY);
  signal(SIGPIPE, SIG_IGN);
  h->next_id = 1000;
  return h;
}

pid_t th_pid(th_host *h) {
  return h->pid;
}

int th_send_raw(th_host *h, const void *buf, size_t len) {
  const char *p = buf;
  ssize_t n;

  while (len > 0) {
    n = write(h->in_fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int th_send(th_host *h, const char *line) {
  if (th_send_raw(h, line, strlen(line)) != 0)
    return -1;
  return th_send_raw(h, "\n", 1);
}

/* Reads what is available from stdout within timeout_ms and splits complete
 * lines into kept messages. Returns 0 if something arrived, -1 otherwise. */
static int pump(th_host *h, int timeout_ms) {
  struct pollfd pfd = {h->out_fd, POLLIN, 0};
  char *nl, *line;
  ssize_t n;
  int got = -1;

  if (poll(&pfd, 1, timeout_ms) <= 0)
    return -1;
  for (;;) {
    if (h->rcap - h->rlen < 65536) {
      h->rcap = h->rcap ? h->rcap * 2 : 131072;
      h->rbuf = realloc(h->rbuf, h->rcap);
      cr_assert_not_null(h->rbuf);
    }
    n = read(h->out_fd, h->rbuf + h->rlen, h->rcap - h->rlen - 1);
    if (n <= 0)
      break;
    h->rlen += (size_t)n;
  }
  h->rbuf[h->rlen] = '\0';
  while ((nl = memchr(h->rbuf, '\n', h->rlen)) != NULL) {
    *nl = '\0';
    line = h->rbuf;
    if (*line != '\0') {
      cJSON *msg = cJSON_Parse(line);
      cr_assert_not_null(msg, "host wrote a non-JSON line to stdout: %.200s",
                         line);
      cr_assert_lt(h->nkept, MAX_KEPT);
      h->kept_text[h->nkept] = strdup(line);
      h->kept[h->nkept++] = msg;
      got = 0;
    }
    h->rlen -= (size_t)(nl + 1 - h->rbuf);
    memmove(h->rbuf, nl + 1, h->rlen);
  }
  return got;
}

/* Removes kept message i; its line goes to *text, or is freed. */
static cJSON *take_with_text(th_host *h, int i, char **text) {
  cJSON *msg = h->kept[i];

  if (text != NULL)
    *text = h->kept_text[i];
  else
    free(h->kept_text[i]);
  memmove(&h->kept[i], &h->kept[i + 1],
          (size_t)(h->nkept - i - 1) * sizeof(cJSON *));
  memmove(&h->kept_text[i], &h->kept_text[i + 1],
          (size_t)(h->nkept - i - 1) * sizeof(char *));
  h->nkept--;
  return msg;
}

static cJSON *take(th_host *h, int i) {
  return take_with_text(h, i, NULL);
}

/* Waits for the first kept message that `match` accepts. */
static cJSON *wait_for(th_host *h, int (*match)(const cJSON *, const void *),
                       const void *arg, int timeout_ms) {
  long long deadline = th_now_ms() + timeout_ms;
  int i, left;

  for (;;) {
    for (i = 0; i < h->nkept; i++)
      if (match(h->kept[i], arg))
        return take(h, i);
    left = (int)(deadline - th_now_ms());
    if (left <= 0)
      return NULL;
    pump(h, left);
  }
}

static int match_any(const cJSON *m, const void *arg) {
  (void)m;
  (void)arg;
  return 1;
}

cJSON *th_recv(th_host *h, int timeout_ms) {
  return wait_for(h, match_any, NULL, timeout_ms);
}

char *th_recv_text(th_host *h, int timeout_ms) {
  long long deadline = th_now_ms() + timeout_ms;
  char *text;

  while (h->nkept == 0) {
    int left = (int)(deadline - th_now_ms());

    if (left <= 0)
      return NULL;
    pump(h, left);
  }
  cJSON_Delete(take_with_text(h, 0, &text));
  return text;
}

static int match_id(const cJSON *m, const void *arg) {
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
  cJSON *want = cJSON_Parse(arg);
  int same;

  same = id != NULL && cJSON_GetObjectItem(m, "method") == NULL &&
         cJSON_Compare(id, want, 1);
  cJSON_Delete(want);
  return same;
}

cJSON *th_response(th_host *h, const char *id_json, int timeout_ms) {
  return wait_for(h, match_id, id_json, timeout_ms);
}

static int match_method(const cJSON *m, const void *arg) {
  const cJSON *method = cJSON_GetObjectItemCaseSensitive(m, "method");

  if (!cJSON_IsString(method) || cJSON_GetObjectItem(m, "id") != NULL)
    return 0;
  return arg == NULL || strcmp(method->valuestring, arg) == 0;
}

cJSON *th_notification(th_host *h, const char *method, int timeout_ms) {
  return wait_for(h, match_method, method, timeout_ms);
}

int th_request_async(th_host *h, const char *id_json, const char *method,
                     const char *params_json) {
  char *line;
  int err;

  if (params_json != NULL)
    err = asprintf(&line,
                   "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"%s\","
                   "\"params\":%s}",
                   id_json, method, params_json);
  else
    err = asprintf(&line, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"%s\"}",
                   id_json, method);
  cr_assert(err > 0);
  err = th_send(h, line);
  free(line);
  return err;
}

cJSON *th_request(th_host *h, const char *method, const char *params_json,
                  int timeout_ms) {
  char id[32];

  snprintf(id, sizeof(id), "%ld", h->next_id++);
  if (th_request_async(h, id, method, params_json) != 0)
    return NULL;
  return th_response(h, id, timeout_ms);
}

cJSON *th_initialize(th_host *h, const char *version, const char *caps) {
  char params[1024];
  cJSON *res;

  snprintf(params, sizeof(params),
           "{\"protocolVersion\":\"%s\",\"capabilities\":%s,"
           "\"clientInfo\":{\"name\":\"harness\",\"version\":\"1\"}}",
           version, caps ? caps : "{}");
  res = th_request(h, "initialize", params, 5000);
  cr_assert_not_null(res, "no initialize response; stderr:\n%s", th_stderr(h));
  th_send(h, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
  return res;
}

const char *th_stderr(th_host *h) {
  char chunk[4096];
  ssize_t n;

  while ((n = read(h->err_fd, chunk, sizeof(chunk))) > 0) {
    h->errbuf = realloc(h->errbuf, h->errlen + (size_t)n + 1);
    memcpy(h->errbuf + h->errlen, chunk, (size_t)n);
    h->errlen += (size_t)n;
  }
  if (h->errbuf == NULL)
    h->errbuf = calloc(1, 1);
  h->errbuf[h->errlen] = '\0';
  return h->errbuf;
}

int th_wait_stderr(th_host *h, const char *needle, int timeout_ms) {
  long long deadline = th_now_ms() + timeout_ms;

  for (;;) {
    if (strstr(th_stderr(h), needle) != NULL)
      return 1;
    if (th_now_ms() >= deadline)
      return 0;
    usleep(10000);
  }
}

void th_close_stdin(th_host *h) {
  if (h->in_fd >= 0)
    close(h->in_fd);
  h->in_fd = -1;
}

void th_kill(th_host *h, int sig) {
  kill(h->pid, sig);
}

int th_stop(th_host *h, int timeout_ms) {
  long long deadline = th_now_ms() + timeout_ms;
  int status = -1, i;
  pid_t r;

  th_close_stdin(h);
  for (;;) {
    r = waitpid(h->pid, &status, WNOHANG);
    if (r == h->pid)
      break;
    if (th_now_ms() >= deadline) {
      kill(h->pid, SIGKILL);
      waitpid(h->pid, NULL, 0);
      status = -1;
      break;
    }
    /* Drain stdout so a chatty host never blocks on a full pipe. */
    pump(h, 10);
  }
  for (i = 0; i < h->nkept; i++) {
    cJSON_Delete(h->kept[i]);
    free(h->kept_text[i]);
  }
  close(h->out_fd);
  close(h->err_fd);
  unlink(h->err_path);
  free(h->err_path);
  free(h->errbuf);
  free(h->rbuf);
  free(h);
  return status;
}

const cJSON *th_get(const cJSON *j, const char *path) {
  char key[256];
  const char *p = path, *dot;
  size_t n;

  while (j != NULL && *p != '\0') {
    dot = strchr(p, '.');
    n = dot ? (size_t)(dot - p) : strlen(p);
    if (n >= sizeof(key))
      return NULL;
    memcpy(key, p, n);
    key[n] = '\0';
    if (cJSON_IsArray(j) && key[0] >= '0' && key[0] <= '9')
      j = cJSON_GetArrayItem(j, atoi(key));
    else
      j = cJSON_GetObjectItemCaseSensitive(j, key);
    p += n + (dot ? 1 : 0);
  }
  return j;
}

const char *th_str(const cJSON *j, const char *path) {
  const cJSON *v = th_get(j, path);

  return cJSON_IsString(v) ? v->valuestring : NULL;
}

double th_num(const cJSON *j, const char *path) {
  const cJSON *v = th_get(j, path);

  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

char *th_dq(const char *text) {
  char *s = strdup(text), *p;

  cr_assert_not_null(s);
  for (p = s; *p != '\0'; p++)
    if (*p == '\'')
      *p = '"';
  return s;
}

char *th_write_config(const char *plugin_dir, const char *top, const char *dept,
                      const char *plugins) {
  char *text, *json, *path;

  cr_assert(asprintf(&text,
                     "{'plugin_dir':'%s',%s'departments':{'default':"
                     "{%s'plugins':[%s]}}}",
                     plugin_dir ? plugin_dir : PH_TEST_PLUGIN_DIR,
                     top ? top : "", dept ? dept : "", plugins) > 0);
  json = th_dq(text);
  path = th_write_temp(json, ".json");
  free(text);
  free(json);
  return path;
}

const char *th_config(const char *top, const char *dept, const char *plugins) {
  th_remove_config();
  test_config = th_write_config(NULL, top, dept, plugins);
  return test_config;
}

void th_remove_config(void) {
  if (test_config != NULL)
    unlink(test_config);
  free(test_config);
  test_config = NULL;
}

th_host *th_start_config(const char *top, const char *dept, const char *plugins,
                         const char *version) {
  th_host *h = th_start(th_config(top, dept, plugins), NULL);

  if (version != NULL)
    cJSON_Delete(th_initialize(h, version, NULL));
  return h;
}

int th_stop_config(th_host *h) {
  int status = th_stop(h, WAIT_MS);

  th_remove_config();
  return status;
}

cJSON *th_rpc(th_host *h, const char *method, const char *params) {
  char *json = params ? th_dq(params) : NULL;
  cJSON *msg = th_request(h, method, json, WAIT_MS);

  free(json);
  cr_assert_not_null(msg, "no answer to %s; stderr:\n%s", method, th_stderr(h));
  return msg;
}

void th_send_sq(th_host *h, const char *line) {
  char *json = th_dq(line);

  cr_assert_eq(th_send(h, json), 0);
  free(json);
}
