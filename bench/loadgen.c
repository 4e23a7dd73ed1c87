/* loadgen.c: drives one MCP server over stdio and measures it.
 *
 * It starts the server command with pipes, times the way to the
 * initialize response, reads the idle RSS, then sends tools/call requests
 * keeping a fixed number in flight and reports requests/s, latency
 * percentiles, the server's CPU time per request and its peak RSS. One run
 * measures one server; bench/run-stdio.sh repeats runs and takes medians. */
#include "measure.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  long requests;  /* Measured tools/call requests. */
  long warmup;    /* Requests sent first and not measured (JIT, caches). */
  int window;     /* Requests kept in flight. */
  int server_cpu; /* CPU the server is pinned to, or -1. */
  int settle_ms;  /* Pause after initialized before reading idle RSS. */
  int machine;    /* Print one key=value line instead of a report. */
  int verbose;    /* Let the server's stderr through. */
  int self_test;  /* -T: check scan_response and exit. */
  const char *tool;
  const char *arguments;
  const char *label;
  char **command;
} options;

typedef struct {
  pid_t pid;
  int to;   /* Our end of the server's stdin. */
  int from; /* Our end of the server's stdout. */
  char *in; /* Bytes read from the server, up to an incomplete line. */
  size_t in_len, in_cap;
  char *out; /* Bytes queued for the server, from out_off on. */
  size_t out_len, out_off, out_cap;
} server;

/* One phase of the run (warm-up or measured), request i having id
 * first + i. */
typedef struct {
  long first;       /* The id of the phase's first request. */
  long sent;        /* Requests written so far. */
  long answered;    /* Responses read so far. */
  long errors;      /* Responses that were errors or isError results. */
  int64_t *sent_at; /* Per request: when it was written (ns). */
  int64_t *latency; /* Per request: ns until answered, -1 before. */
} phase;

static const char *request_tail; /* Everything after a request's id. */

void usage(void) {
  fprintf(stderr,
          "usage: loadgen [options] -- SERVER-COMMAND [ARGS...]\n"
          "  -n N     measured tools/call requests (default 20000)\n"
          "  -w W     requests kept in flight (default 1)\n"
          "  -W N     warm-up requests before measuring (default 2000)\n"
          "  -t NAME  tool to call (default echo)\n"
          "  -a JSON  tool arguments (default {\"text\":\"hello\"})\n"
          "  -s CPU   pin the server to this CPU\n"
          "  -S MS    pause before reading idle RSS (default 200)\n"
          "  -l NAME  label for the machine-readable line\n"
          "  -m       print one machine-readable key=value line\n"
          "  -v       pass the server's stderr through\n"
          "  -T       check the response scanner and exit\n");
  exit(2);
}

static void parse_options(options *o, int argc, char **argv) {
  int c;

  *o = (options){.requests = 20000,
                 .warmup = 2000,
                 .window = 1,
                 .server_cpu = -1,
                 .settle_ms = 200,
                 .tool = "echo",
                 .arguments = "{\"text\":\"hello\"}",
                 .label = "server"};
  while ((c = getopt(argc, argv, "+n:w:W:t:a:s:S:l:mvT")) != -1) {
    switch (c) {
    case 'n':
      o->requests = parse_count(optarg, 0);
      break;
    case 'w':
      o->window = (int)parse_count(optarg, 1);
      break;
    case 'W':
      o->warmup = parse_count(optarg, 0);
      break;
    case 't':
      o->tool = optarg;
      break;
    case 'a':
      o->arguments = optarg;
      break;
    case 's':
      o->server_cpu = (int)parse_count(optarg, 0);
      break;
    case 'S':
      o->settle_ms = (int)parse_count(optarg, 0);
      break;
    case 'l':
      o->label = optarg;
      break;
    case 'm':
      o->machine = 1;
      break;
    case 'v':
      o->verbose = 1;
      break;
    case 'T':
      o->self_test = 1;
      return;
    default:
      usage();
    }
  }
  if (optind >= argc)
    usage();
  o->command = argv + optind;
}

/* Builds the constant part of every request once, so sending one costs a
 * number and two copies. The arguments are checked here because a typo
 * would otherwise show up as N error replies. */
static void build_request_tail(const options *o) {
  cJSON *args = cJSON_Parse(o->arguments);
  char *tail;
  size_t size;

  if (args == NULL || !cJSON_IsObject(args))
    fail("-a must be a JSON object");
  cJSON_Delete(args);
  size = strlen(o->tool) + strlen(o->arguments) + 128;
  tail = xrealloc(NULL, size);
  snprintf(tail, size,
           ",\"method\":\"tools/call\",\"params\":{\"name\":\"%s\","
           "\"arguments\":%s}}\n",
           o->tool, o->arguments);
  request_tail = tail;
}

static void spawn_server(server *s, const options *o) {
  int in[2], out[2];

  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
    die("pipe");
  s->pid = fork();
  if (s->pid < 0)
    die("fork");
  if (s->pid == 0) {
    if (o->server_cpu >= 0) {
      cpu_set_t set;

      CPU_ZERO(&set);
      CPU_SET(o->server_cpu, &set);
      if (sched_setaffinity(0, sizeof(set), &set) != 0)
        die("sched_setaffinity");
    }
    if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
      die("dup2");
    if (!o->verbose) {
      int null = open("/dev/null", O_WRONLY);

      if (null < 0 || dup2(null, 2) < 0)
        die("/dev/null");
    }
    execvp(o->command[0], o->command);
    die(o->command[0]);
  }
  close(in[0]);
  close(out[1]);
  s->to = in[1];
  s->from = out[0];
  /* Non-blocking both ways: a server that stops reading while we wait on
   * a full pipe would otherwise deadlock with us. */
  if (fcntl(s->to, F_SETFL, O_NONBLOCK) != 0 ||
      fcntl(s->from, F_SETFL, O_NONBLOCK) != 0)
    die("fcntl");
}

static void queue_bytes(server *s, const char *data, size_t len) {
  if (s->out_off == s->out_len)
    s->out_off = s->out_len = 0;
  if (s->out_cap - s->out_len < len) {
    s->out_cap = (s->out_len + len) * 2;
    s->out = xrealloc(s->out, s->out_cap);
  }
  memcpy(s->out + s->out_len, data, len);
  s->out_len += len;
}

static void queue_call(server *s, long id) {
  char head[48];
  int n = snprintf(head, sizeof(head), "{\"jsonrpc\":\"2.0\",\"id\":%ld", id);

  queue_bytes(s, head, (size_t)n);
  queue_bytes(s, request_tail, strlen(request_tail));
}

/* Writes what the pipe takes now; the rest waits for POLLOUT. */
static void flush_some(server *s) {
  while (s->out_off < s->out_len) {
    ssize_t n = write(s->to, s->out + s->out_off, s->out_len - s->out_off);

    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN)
        return;
      die("write to server");
    }
    s->out_off += (size_t)n;
  }
}

/* Waits until the server has output for us, writing queued input when the
 * pipe has room. */
static void wait_readable(server *s) {
  for (;;) {
    struct pollfd p[2] = {{.fd = s->from, .events = POLLIN},
                          {.fd = s->to, .events = POLLOUT}};
    int pending = s->out_off < s->out_len;

    if (poll(p, pending ? 2 : 1, -1) < 0) {
      if (errno == EINTR)
        continue;
      die("poll");
    }
    if (pending && (p[1].revents & (POLLOUT | POLLERR)))
      flush_some(s);
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
      return;
  }
}

/* Reads what is available and hands each complete line to on_line with
 * the time the read returned. Exits if the server closes its stdout. */
static void read_lines(server *s,
                       void (*on_line)(const char *, size_t, int64_t, void *),
                       void *ctx) {
  size_t start = 0, i;
  const char *nl;
  ssize_t n;
  int64_t t;

  wait_readable(s);
  if (s->in_cap - s->in_len < 65536) {
    s->in_cap = s->in_cap ? s->in_cap * 2 : 262144;
    s->in = xrealloc(s->in, s->in_cap);
  }
  n = read(s->from, s->in + s->in_len, s->in_cap - s->in_len);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n < 0)
    die("read from server");
  if (n == 0)
    fail("the server closed its stdout");
  t = now_ns();
  /* memchr rather than a byte loop: a database result is a line of tens
   * of kilobytes. */
  i = s->in_len;
  s->in_len += (size_t)n;
  while ((nl = memchr(s->in + i, '\n', s->in_len - i)) != NULL) {
    i = (size_t)(nl - s->in);
    on_line(s->in + start, i - start, t, ctx);
    start = ++i;
  }
  memmove(s->in, s->in + start, s->in_len - start);
  s->in_len -= start;
}

/* Returns the response's numeric id and whether it reports an error, or
 * -1 for a line that is not a response to us (a notification). */
static long response_id(const char *line, size_t len, int *is_error) {
  long id;

  if (scan_response(line, len, &id, is_error) < 0) {
    fprintf(stderr, "loadgen: unparseable line: %.*s\n", (int)len, line);
    exit(1);
  }
  return id;
}

static void on_initialize_line(const char *line, size_t len, int64_t t,
                               void *ctx) {
  int64_t *answered_at = ctx;
  int is_error;

  if (response_id(line, len, &is_error) != 0)
    return;
  if (is_error) {
    fprintf(stderr, "loadgen: initialize failed: %.*s\n", (int)len, line);
    exit(1);
  }
  *answered_at = t;
}

/* Returns the nanoseconds from spawning the server to the end of its
 * initialize response. */
static int64_t start_server(server *s, const options *o) {
  static const char initialize[] =
      "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
      "\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
      "\"clientInfo\":{\"name\":\"plughost-loadgen\",\"version\":\"1\"}}}\n";
  static const char initialized[] =
      "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";
  int64_t start = now_ns(), answered_at = 0;

  spawn_server(s, o);
  /* Sent at once: the pipe holds it until the server first reads, so the
   * time measured includes everything the server does before that. */
  queue_bytes(s, initialize, sizeof(initialize) - 1);
  flush_some(s);
  while (answered_at == 0)
    read_lines(s, on_initialize_line, &answered_at);
  queue_bytes(s, initialized, sizeof(initialized) - 1);
  flush_some(s);
  return answered_at - start;
}

static void on_call_line(const char *line, size_t len, int64_t t, void *ctx) {
  phase *p = ctx;
  int is_error = 0;
  long id = response_id(line, len, &is_error), i = id - p->first;

  if (id < 0)
    return;
  if (i < 0 || i >= p->sent || p->latency[i] >= 0) {
    fprintf(stderr, "loadgen: unexpected response: %.*s\n", (int)len, line);
    exit(1);
  }
  if (is_error && p->errors++ == 0)
    fprintf(stderr, "loadgen: error response: %.*s\n", (int)len, line);
  p->latency[i] = t - p->sent_at[i];
  p->answered++;
}

/* Sends count requests keeping window in flight: each batch of answers
 * read is replaced by as many new requests, sent in one write, as a
 * pipelining client does. */
static void run_phase(server *s, phase *p, long first, long count, int window) {
  *p = (phase){.first = first};
  p->sent_at = xrealloc(NULL, sizeof(int64_t) * (size_t)(count + 1));
  p->latency = xrealloc(NULL, sizeof(int64_t) * (size_t)(count + 1));
  memset(p->latency, 0xff, sizeof(int64_t) * (size_t)(count + 1));
  while (p->answered < count) {
    int64_t t = now_ns();

    for (; p->sent < count && p->sent - p->answered < window; p->sent++) {
      queue_call(s, first + p->sent);
      p->sent_at[p->sent] = t;
    }
    flush_some(s);
    read_lines(s, on_call_line, p);
  }
}

/* ---- -T: checks of scan_response ---- */

typedef struct {
  const char *json;
  int rc; /* What scan_response returns; id and is_error count when 1. */
  long id;
  int is_error;
} scan_case;

static const scan_case scan_cases[] = {
    {"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[]}}", 1, 7, 0},
    {"{\"id\":7,\"result\":{\"isError\":true}}", 1, 7, 1},
    {"{\"id\":7,\"result\":{\"isError\":false}}", 1, 7, 0},
    {"{\"id\":7,\"result\":{\"isError\":null}}", 1, 7, 0},
    {"{\"id\":7,\"result\":{\"isError\":\"true\"}}", 1, 7, 0},
    {"{\"id\":7,\"result\":{\"isError\":1}}", 1, 7, 0},
    {"{\"id\":7,\"error\":{\"code\":-32601,\"message\":\"no\"}}", 1, 7, 1},
    {"{\"id\":7}", 1, 7, 1},                   /* No result: an error. */
    {"{\"id\":7,\"result\":[true]}", 1, 7, 0}, /* Not an object. */
    {"{\"id\":7,\"result\":\"isError\"}", 1, 7, 0},
    {"{\"result\":{},\"id\":12345678901234}", 1, 12345678901234, 0},
    {"{\"id\":-3,\"result\":{}}", 1, -3, 0},
    {"{\"id\":0,\"result\":{}}", 1, 0, 0},
    {"{\"id\":2.9,\"result\":{}}", 1, 2, 0}, /* (long) of the double. */
    {"{\"id\":1.5e3,\"result\":{}}", 1, 1500, 0},
    {"{\"id\":25E-1,\"result\":{}}", 1, 2, 0},
    /* Notifications and ids that are not numbers. */
    {"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}", 0, -1, 0},
    {"{\"id\":null,\"error\":{\"code\":-32700}}", 0, -1, 0},
    {"{\"id\":\"7\",\"result\":{}}", 0, -1, 0},
    {"[1,2,3]", 0, -1, 0},
    {"42", 0, -1, 0},
    {"\"id\"", 0, -1, 0},
    /* Keys count at their own level only. */
    {"{\"result\":{\"id\":5,\"isError\":true}}", 0, -1, 0},
    {"{\"id\":1,\"result\":{\"content\":{\"isError\":true}}}", 1, 1, 0},
    {"{\"id\":1,\"result\":{\"content\":[{\"isError\":true}]}}", 1, 1, 0},
    {"{\"id\":1,\"result\":{\"x\":{\"error\":1}},\"y\":{\"error\":2}}", 1, 1,
     0},
    {"{\"params\":{\"id\":9},\"method\":\"x\"}", 0, -1, 0},
    /* Keys and look-alikes inside strings. */
    {"{\"id\":1,\"result\":{\"text\":\"\\\"isError\\\":true\"}}", 1, 1, 0},
    {"{\"id\":1,\"result\":{\"text\":\"\\\\\",\"isError\":true}}", 1, 1, 1},
    {"{\"x\":\"\\\"id\\\":5\",\"id\":6,\"result\":{}}", 1, 6, 0},
    {"{\"x\":\"\\\\\\\"id\\\":5,\",\"result\":{}}", 0, -1, 0},
    {"{\"x\":\"{\\\"id\\\":5}\",\"result\":{}}", 0, -1, 0},
    {"{\"id \":1,\"result\":{}}", 0, -1, 0},
    {"{\"Id\":1,\"result\":{}}", 0, -1, 0},
    {"{\"i\\\"d\":1,\"result\":{}}", 0, -1, 0},
    {"{\"\\u0069d\":4,\"result\":{\"is\\u0045rror\":true}}", 1, 4, 1},
    {"{\"id\":1,\"result\":{\"\\u00e9\":\"\\ud83d\\ude00\",\"\xc3\xa9\":1}}", 1,
     1, 0},
    /* Duplicates: the first counts. */
    {"{\"id\":1,\"id\":2,\"result\":{}}", 1, 1, 0},
    {"{\"id\":\"a\",\"id\":2,\"result\":{}}", 0, -1, 0},
    {"{\"id\":1,\"result\":{\"isError\":false,\"isError\":true}}", 1, 1, 0},
    {"{\"id\":1,\"result\":{\"isError\":true,\"isError\":false}}", 1, 1, 1},
    {"{\"id\":1,\"result\":{},\"result\":{\"isError\":true}}", 1, 1, 0},
    /* Whitespace anywhere JSON allows it. */
    {" \t{ \"id\" :\n3 , \"result\" : { \"isError\" : true } }\r\n", 1, 3, 1},
    {"{}", 0, -1, 0},
    /* Broken text. */
    {"", -1, 0, 0},
    {"   ", -1, 0, 0},
    {"{", -1, 0, 0},
    {"{\"id\":1", -1, 0, 0},
    {"{\"id\":1,\"result\":{}", -1, 0, 0},
    {"{\"id\":1,}", -1, 0, 0},
    {"{\"id\" 1}", -1, 0, 0},
    {"{\"id\":1 \"result\":{}}", -1, 0, 0},
    {"{id:1}", -1, 0, 0},
    {"{\"id\":01}", -1, 0, 0},
    {"{\"id\":-}", -1, 0, 0},
    {"{\"id\":1.}", -1, 0, 0},
    {"{\"id\":1e}", -1, 0, 0},
    {"{\"id\":tru}", -1, 0, 0},
    {"{\"id\":1,\"result\":{\"isError\":tru}}", -1, 0, 0},
    {"{\"id\":1,\"x\":\"abc}", -1, 0, 0},
    {"{\"id\":1,\"x\":\"abc\\\"}", -1, 0, 0},
    {"{\"id\":1,\"x\":\"\\q\"}", -1, 0, 0},
    {"{\"id\":1,\"x\":\"\\u12g4\"}", -1, 0, 0},
    {"{\"id\":1,\"x\":\"\\u12\"}", -1, 0, 0},
    {"{\"id\":1,\"x\":[1,2}", -1, 0, 0},
    {"{\"id\":1,\"x\":[1,]}", -1, 0, 0},
    {"{\"id\":1,\"x\":{\"a\"}}", -1, 0, 0},
    {"{\"id\":1}}", -1, 0, 0},
    {"{\"id\":1} x", -1, 0, 0},
    {"{\"id\":1}{}", -1, 0, 0},
};

/* What loadgen did before scan_response, with cJSON: the reference the
 * random documents are checked against. */
static int cjson_response(const char *json, size_t len, long *id,
                          int *is_error) {
  cJSON *msg = cJSON_ParseWithLength(json, len), *mid, *result;
  int rc = 0;

  if (msg == NULL)
    return -1;
  *id = -1;
  mid = cJSON_GetObjectItemCaseSensitive(msg, "id");
  result = cJSON_GetObjectItemCaseSensitive(msg, "result");
  if (cJSON_IsNumber(mid)) {
    rc = 1;
    /* Out of range, (long) is undefined; scan_response says -1. */
    *id = mid->valuedouble > -9.2e18 && mid->valuedouble < 9.2e18
              ? (long)mid->valuedouble
              : -1;
    /* scan_response also counts an "error" next to a "result". */
    *is_error =
        result == NULL ||
        cJSON_GetObjectItemCaseSensitive(msg, "error") != NULL ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "isError"));
  }
  cJSON_Delete(msg);
  return rc;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static unsigned rng(unsigned n) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (unsigned)(rng_state % n);
}

/* A random value, with the keys and strings most likely to fool a
 * scanner. */
static cJSON *random_value(int depth) {
  static const char *const keys[] = {"id",      "result", "error", "isError",
                                     "content", "text",   "i\"d",  "Id",
                                     "\\",      "\"id\"", "x"};
  static const char *const strings[] = {
      "",     "plain", "\"isError\":true",     "{\"id\":5}",         "\\",
      "\\\"", "\"",    "\xc3\xa9\xe2\x82\xac", "tab\tnew\nline\x01", "}]{[",
      "true"};
  static const double numbers[] = {
      0, 1, -1, 7, 123456789012.0, 2.5, -7.75, 1500.0, 1e9, 0.001, -0.5, 3e-7};
  cJSON *v;
  int n, i;

  switch (rng(depth > 4 ? 6 : 9)) {
  case 0:
    return cJSON_CreateNumber(numbers[rng(12)]);
  case 1:
    return cJSON_CreateString(strings[rng(11)]);
  case 2:
    return cJSON_CreateTrue();
  case 3:
    return cJSON_CreateFalse();
  case 4:
    return cJSON_CreateNull();
  case 5:
    return cJSON_CreateNumber((double)(int)rng(100000));
  case 6:
  case 7:
    v = cJSON_CreateObject();
    for (n = (int)rng(5), i = 0; i < n; i++)
      cJSON_AddItemToObject(v, keys[rng(11)], random_value(depth + 1));
    return v;
  default:
    v = cJSON_CreateArray();
    for (n = (int)rng(4), i = 0; i < n; i++)
      cJSON_AddItemToArray(v, random_value(depth + 1));
    return v;
  }
}

static int check_scan(const char *json, size_t len, int rc, long id,
                      int is_error) {
  long got_id = -1;
  int got_error = 0, got = scan_response(json, len, &got_id, &got_error);

  if (got == rc && (rc != 1 || (got_id == id && got_error == is_error)))
    return 0;
  fprintf(stderr,
          "loadgen -T: %.*s: got %d id %ld error %d, want %d id %ld "
          "error %d\n",
          (int)len, json, got, got_id, got_error, rc, id, is_error);
  return 1;
}

/* Table cases, then random documents printed by cJSON (compact and
 * indented) against the cJSON reading, then every prefix and random
 * one-byte changes of them: what scan_response accepts cJSON must read
 * the same, and what cJSON refuses it must refuse. */
static int self_test(void) {
  size_t i, len, cut;
  int failures = 0, round, stricter = 0;

  for (i = 0; i < sizeof(scan_cases) / sizeof(*scan_cases); i++)
    failures +=
        check_scan(scan_cases[i].json, strlen(scan_cases[i].json),
                   scan_cases[i].rc, scan_cases[i].id, scan_cases[i].is_error);
  for (round = 0; round < 4000; round++) {
    cJSON *msg = cJSON_CreateObject();
    char *text, *copy;
    long id = -1, want_id = -1;
    int is_error = 0, want_error = 0, rc, want;

    for (int n = (int)rng(6), k = 0; k < n; k++) {
      static const char *const top[] = {"jsonrpc", "id", "result", "error",
                                        "method"};
      const char *key = top[rng(5)];

      cJSON_AddItemToObject(msg, key,
                            strcmp(key, "id") == 0 && rng(2)
                                ? cJSON_CreateNumber((double)rng(1000000))
                                : random_value(1));
    }
    text = round % 2 ? cJSON_Print(msg) : cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    len = strlen(text);
    want = cjson_response(text, len, &want_id, &want_error);
    failures += check_scan(text, len, want, want_id, want_error);
    /* A prefix of an object is never a whole JSON value. */
    for (cut = 0; cut < len; cut += 1 + rng(7))
      failures += check_scan(text, cut, -1, 0, 0);
    copy = xrealloc(NULL, len);
    for (int m = 0; m < 8 && len > 0; m++) {
      static const char bytes[] = "{}[]\":,\\ 0-1.eEtrunlfa\x80";

      memcpy(copy, text, len);
      copy[rng((unsigned)len)] = bytes[rng(sizeof(bytes) - 1)];
      rc = scan_response(copy, len, &id, &is_error);
      want = cjson_response(copy, len, &want_id, &want_error);
      if (rc >= 0 && (rc != want ||
                      (rc == 1 && (id != want_id || is_error != want_error)))) {
        fprintf(stderr,
                "loadgen -T: %.*s: got %d id %ld error %d, cJSON "
                "%d id %ld error %d\n",
                (int)len, copy, rc, id, is_error, want, want_id, want_error);
        failures++;
      }
      /* Refusing what cJSON tolerates (trailing text, "01") is fine. */
      stricter += rc < 0 && want >= 0;
    }
    free(copy);
    free(text);
  }
  printf("loadgen -T: %zu table cases, 4000 random documents, %d failures "
         "(%d changed documents refused that cJSON accepts)\n",
         sizeof(scan_cases) / sizeof(*scan_cases), failures, stricter);
  return failures == 0 ? 0 : 1;
}

static void read_proc_line(pid_t pid, const char *key, long *kib) {
  char path[64], line[256];
  size_t key_len = strlen(key);
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  f = fopen(path, "r");
  if (f == NULL)
    die(path);
  *kib = -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, key, key_len) == 0 && line[key_len] == ':') {
      *kib = strtol(line + key_len + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
}

/* Closes the server's stdin, which asks an MCP stdio server to exit, and
 * reaps it, killing one that lingers. */
static void stop_server(server *s) {
  int status, waited_ms;

  close(s->to);
  close(s->from);
  for (waited_ms = 0; waited_ms < 2000; waited_ms++) {
    if (waitpid(s->pid, &status, WNOHANG) == s->pid)
      return;
    usleep(1000);
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, &status, 0);
}

int main(int argc, char **argv) {
  options o;
  server s = {0};
  phase warm, run;
  int64_t startup_ns, t0, t1, cpu0, cpu1, own0, own1;
  int64_t sbusy0 = 0, sbusy1 = 0, cbusy0 = 0, cbusy1 = 0;
  int client_cpu = pinned_cpu();
  long idle_kib, idle_anon_kib, peak_kib;
  double secs, rps, p50, p99, cpu_per, own_per, server_noise, client_noise;

  parse_options(&o, argc, argv);
  if (o.self_test)
    return self_test();
  build_request_tail(&o);
  signal(SIGPIPE, SIG_IGN);

  startup_ns = start_server(&s, &o);
  usleep((useconds_t)o.settle_ms * 1000);
  read_proc_line(s.pid, "VmRSS", &idle_kib);
  read_proc_line(s.pid, "RssAnon", &idle_anon_kib);

  run_phase(&s, &warm, 1, o.warmup, o.window);
  cpu0 = server_cpu_us(s.pid);
  own0 = own_cpu_us();
  if (o.server_cpu >= 0)
    sbusy0 = cpu_busy_us(o.server_cpu);
  if (client_cpu >= 0)
    cbusy0 = cpu_busy_us(client_cpu);
  t0 = now_ns();
  run_phase(&s, &run, 1 + o.warmup, o.requests, o.window);
  t1 = now_ns();
  cpu1 = server_cpu_us(s.pid);
  own1 = own_cpu_us();
  if (o.server_cpu >= 0)
    sbusy1 = cpu_busy_us(o.server_cpu);
  if (client_cpu >= 0)
    cbusy1 = cpu_busy_us(client_cpu);
  read_proc_line(s.pid, "VmHWM", &peak_kib);
  stop_server(&s);

  qsort(run.latency, (size_t)o.requests, sizeof(int64_t), compare_int64);
  secs = (double)(t1 - t0) / 1e9;
  rps = o.requests > 0 ? (double)o.requests / secs : 0;
  p50 = percentile_us(run.latency, o.requests, 50);
  p99 = percentile_us(run.latency, o.requests, 99);
  cpu_per = o.requests > 0 ? (double)(cpu1 - cpu0) / (double)o.requests : 0;
  own_per = o.requests > 0 ? (double)(own1 - own0) / (double)o.requests : 0;
  server_noise = noise_pct(o.server_cpu, sbusy1 - sbusy0, cpu1 - cpu0, t1 - t0);
  client_noise = noise_pct(client_cpu, cbusy1 - cbusy0, own1 - own0, t1 - t0);

  if (o.machine) {
    printf("label=%s w=%d n=%ld rps=%.0f p50_us=%.1f p99_us=%.1f "
           "cpu_us_per_req=%.2f client_cpu_us_per_req=%.2f "
           "startup_ms=%.2f idle_rss_kib=%ld idle_anon_kib=%ld "
           "peak_rss_kib=%ld server_core_noise_pct=%.1f "
           "client_core_noise_pct=%.1f errors=%ld\n",
           o.label, o.window, o.requests, rps, p50, p99, cpu_per, own_per,
           (double)startup_ns / 1e6, idle_kib, idle_anon_kib, peak_kib,
           server_noise, client_noise, warm.errors + run.errors);
  } else {
    printf("server          %s\n", o.command[0]);
    printf("startup         %.2f ms to the initialize response\n",
           (double)startup_ns / 1e6);
    printf("idle RSS        %ld KiB, %ld KiB of it anonymous\n", idle_kib,
           idle_anon_kib);
    printf("requests        %ld measured, %ld warm-up, %d in flight\n",
           o.requests, o.warmup, o.window);
    printf("throughput      %.0f requests/s\n", rps);
    printf("latency         p50 %.1f us, p99 %.1f us\n", p50, p99);
    printf("server CPU      %.2f us/request\n", cpu_per);
    printf("client CPU      %.2f us/request\n", own_per);
    printf("peak RSS        %ld KiB\n", peak_kib);
    printf("noise           %.1f%% of the server's core, %.1f%% of the "
           "client's went to other work (-1: not pinned)\n",
           server_noise, client_noise);
    printf("errors          %ld\n", warm.errors + run.errors);
  }
  free(warm.sent_at);
  free(warm.latency);
  free(run.sent_at);
  free(run.latency);
  free(s.in);
  free(s.out);
  free((void *)request_tail);
  return warm.errors + run.errors > 0;
}
