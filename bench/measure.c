/* measure.c: see measure.h. */
#include "measure.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

void die(const char *what) {
  fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
          strerror(errno));
  exit(1);
}

void fail(const char *message) {
  fprintf(stderr, "%s: %s\n", program_invocation_short_name, message);
  exit(1);
}

int64_t now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void *xrealloc(void *p, size_t size) {
  p = realloc(p, size);
  if (p == NULL)
    fail("out of memory");
  return p;
}

long parse_count(const char *text, long min) {
  char *end;
  long v;

  errno = 0;
  v = strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || v < min)
    usage();
  return v;
}

/* The server's user + system CPU in microseconds, all its threads
 * included, from /proc/<pid>/stat. */
int64_t server_cpu_us(pid_t pid) {
  char path[64], buf[1024], *p;
  unsigned long long utime, stime;
  ssize_t n;
  int fd;

  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  fd = open(path, O_RDONLY);
  if (fd < 0)
    die(path);
  n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    die(path);
  buf[n] = '\0';
  /* The command name may hold spaces and parentheses; the fields after
   * the last ')' are plain: utime is field 14, stime 15. */
  p = strrchr(buf, ')');
  if (p == NULL || sscanf(p + 2,
                          "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                          "%llu %llu",
                          &utime, &stime) != 2)
    fail("cannot parse /proc/<pid>/stat");
  return (int64_t)((utime + stime) * 1000000ULL /
                   (unsigned long long)sysconf(_SC_CLK_TCK));
}

int64_t own_cpu_us(void) {
  struct rusage ru;

  getrusage(RUSAGE_SELF, &ru);
  return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
         ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* The CPU this process is pinned to (by taskset), or -1. */
int pinned_cpu(void) {
  cpu_set_t set;
  int cpu;

  if (sched_getaffinity(0, sizeof(set), &set) != 0 || CPU_COUNT(&set) != 1)
    return -1;
  for (cpu = 0; !CPU_ISSET(cpu, &set); cpu++)
    continue;
  return cpu;
}

/* Microseconds CPU cpu spent busy, from /proc/stat: all but idle and
 * iowait; steal counts, as the hypervisor taking the CPU is noise too. */
int64_t cpu_busy_us(int cpu) {
  unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
  char line[512], name[16];
  int64_t busy = -1;
  FILE *f;

  if (cpu < 0)
    return 0;
  f = fopen("/proc/stat", "r");
  if (f == NULL)
    die("/proc/stat");
  snprintf(name, sizeof(name), "cpu%d ", cpu);
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, name, strlen(name)) != 0)
      continue;
    if (sscanf(line + strlen(name), "%llu %llu %llu %llu %llu %llu %llu %llu",
               &user, &nice, &sys, &idle, &iowait, &irq, &softirq, &steal) == 8)
      busy = (int64_t)((user + nice + sys + irq + softirq + steal) *
                       1000000ULL / (unsigned long long)sysconf(_SC_CLK_TCK));
    break;
  }
  fclose(f);
  if (busy < 0)
    fail("cannot parse /proc/stat");
  return busy;
}

/* The share of a pinned CPU's time that went to others than the process
 * measured, in percent, or -1 when the CPU is not known: on a shared
 * machine, other work on either core slows both sides. */
double noise_pct(int cpu, int64_t busy, int64_t own, int64_t elapsed_ns) {
  double other;

  if (cpu < 0 || elapsed_ns <= 0)
    return -1;
  other = (double)(busy - own) * 1000.0 / (double)elapsed_ns;
  return other < 0 ? 0 : 100.0 * other;
}

int compare_int64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

  return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
double percentile_us(const int64_t *sorted, long n, int pct) {
  long rank = (n * pct + 99) / 100;

  if (n == 0)
    return 0;
  return (double)sorted[rank > 0 ? rank - 1 : 0] / 1000.0;
}

/* ---- scan_response ---- */

/* Deeper than this is refused, as cJSON refuses past CJSON_NESTING_LIMIT;
 * the scanner recurses once per level. */
#define SCAN_MAX_DEPTH 1000

typedef struct {
  const char *p, *end;
} scan;

static void scan_ws(scan *s) {
  while (s->p < s->end &&
         (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    s->p++;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Skips the string whose opening quote is at s->p, checking its escapes
 * (cJSON refuses unknown ones and bad \u digits). The raw text between
 * the quotes is left in *raw / *raw_len for key comparison, *escaped set
 * when it holds a backslash. Returns 0, or -1 when it is malformed. */
static int scan_string(scan *s, const char **raw, size_t *raw_len,
                       int *escaped) {
  const char *p = s->p + 1, *end = s->end;

  *raw = p;
  *escaped = 0;
  for (;;) {
    /* Most of a result is plain text: eight bytes per step for it while
     * none of them is a quote or a backslash. */
    while (end - p >= 8) {
      uint64_t w, q, b;

      memcpy(&w, p, 8);
      q = w ^ 0x2222222222222222u; /* Zero where a byte is '"'. */
      b = w ^ 0x5c5c5c5c5c5c5c5cu; /* Zero where a byte is '\\'. */
      if (((q - 0x0101010101010101u) & ~q & 0x8080808080808080u) |
          ((b - 0x0101010101010101u) & ~b & 0x8080808080808080u))
        break;
      p += 8;
    }
    while (p < end && *p != '"' && *p != '\\')
      p++;
    if (p == end)
      return -1;
    if (*p == '"')
      break;
    *escaped = 1;
    if (end - p < 2)
      return -1;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
      p += 2;
      break;
    case 'u':
      if (end - p < 6 || hex_value(p[2]) < 0 || hex_value(p[3]) < 0 ||
          hex_value(p[4]) < 0 || hex_value(p[5]) < 0)
        return -1;
      p += 6;
      break;
    default:
      return -1;
    }
  }
  *raw_len = (size_t)(p - *raw);
  s->p = p + 1;
  return 0;
}

/* Whether a key's raw text, escapes and all, spells want (plain ASCII):
 * "\u0069d" is the key "id" to a JSON parser, so it is to us. */
static int key_is(const char *raw, size_t raw_len, int escaped,
                  const char *want) {
  const char *p = raw, *end = raw + raw_len;

  if (!escaped)
    return raw_len == strlen(want) && memcmp(raw, want, raw_len) == 0;
  for (; p < end; want++) {
    unsigned c = (unsigned char)*p++;

    if (c == '\\') {
      switch (*p++) {
      case 'b':
        c = '\b';
        break;
      case 'f':
        c = '\f';
        break;
      case 'n':
        c = '\n';
        break;
      case 'r':
        c = '\r';
        break;
      case 't':
        c = '\t';
        break;
      case 'u': /* Checked by scan_string: four hex digits follow. */
        c = (unsigned)(hex_value(p[0]) << 12 | hex_value(p[1]) << 8 |
                       hex_value(p[2]) << 4 | hex_value(p[3]));
        p += 4;
        break;
      default: /* '"', '\\', '/': the character itself. */
        c = (unsigned char)p[-1];
      }
    }
    if (*want == '\0' || c != (unsigned char)*want)
      return 0;
  }
  return *want == '\0';
}

/* Skips a number in JSON's grammar; *integral says whether it had no
 * fraction or exponent. */
static int scan_number(scan *s, int *integral) {
  const char *p = s->p, *end = s->end;

  *integral = 1;
  if (p < end && *p == '-')
    p++;
  if (p < end && *p == '0') {
    p++;
  } else if (p < end && *p >= '1' && *p <= '9') {
    while (p < end && *p >= '0' && *p <= '9')
      p++;
  } else {
    return -1;
  }
  if (p < end && *p == '.') {
    *integral = 0;
    if (++p == end || *p < '0' || *p > '9')
      return -1;
    while (p < end && *p >= '0' && *p <= '9')
      p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    *integral = 0;
    if (++p < end && (*p == '+' || *p == '-'))
      p++;
    if (p == end || *p < '0' || *p > '9')
      return -1;
    while (p < end && *p >= '0' && *p <= '9')
      p++;
  }
  s->p = p;
  return 0;
}

/* The value of the number text [p, end) as cJSON gives it: (long) of the
 * double, integers read exactly while they fit. */
static long number_value(const char *p, const char *end, int integral) {
  char buf[64];
  double d;

  if (integral && end - p <= 18) {
    int negative = *p == '-';
    long v = 0;

    for (p += negative; p < end; p++)
      v = v * 10 + (*p - '0');
    return negative ? -v : v;
  }
  if ((size_t)(end - p) >= sizeof(buf))
    return -1; /* No id we send is written like that. */
  memcpy(buf, p, (size_t)(end - p));
  buf[end - p] = '\0';
  d = strtod(buf, NULL);
  /* Converting an out-of-range double to long is undefined. */
  if (!(d > -9.2e18 && d < 9.2e18))
    return -1;
  return (long)d;
}

static int scan_value(scan *s, int depth);

/* Skips a literal: true, false or null. */
static int scan_literal(scan *s, const char *word) {
  size_t n = strlen(word);

  if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
    return -1;
  s->p += n;
  return 0;
}

/* Walks the members of the object whose '{' is at s->p. For each, calls
 * on_member with s->p at the value, which it must skip (scan_value, or
 * its own walk); on_member NULL skips them all. */
typedef int member_fn(scan *s, const char *raw, size_t raw_len, int escaped,
                      int depth, void *ctx);

static int scan_object(scan *s, int depth, member_fn *on_member, void *ctx) {
  const char *raw;
  size_t raw_len;
  int escaped;

  if (depth > SCAN_MAX_DEPTH)
    return -1;
  s->p++;
  scan_ws(s);
  if (s->p < s->end && *s->p == '}') {
    s->p++;
    return 0;
  }
  for (;;) {
    if (s->p == s->end || *s->p != '"' ||
        scan_string(s, &raw, &raw_len, &escaped) != 0)
      return -1;
    scan_ws(s);
    if (s->p == s->end || *s->p != ':')
      return -1;
    s->p++;
    scan_ws(s);
    if (on_member != NULL ? on_member(s, raw, raw_len, escaped, depth, ctx) != 0
                          : scan_value(s, depth) != 0)
      return -1;
    scan_ws(s);
    if (s->p == s->end)
      return -1;
    if (*s->p == '}') {
      s->p++;
      return 0;
    }
    if (*s->p++ != ',')
      return -1;
    scan_ws(s);
  }
}

static int scan_array(scan *s, int depth) {
  if (depth > SCAN_MAX_DEPTH)
    return -1;
  s->p++;
  scan_ws(s);
  if (s->p < s->end && *s->p == ']') {
    s->p++;
    return 0;
  }
  for (;;) {
    if (scan_value(s, depth) != 0)
      return -1;
    scan_ws(s);
    if (s->p == s->end)
      return -1;
    if (*s->p == ']') {
      s->p++;
      return 0;
    }
    if (*s->p++ != ',')
      return -1;
    scan_ws(s);
  }
}

/* Skips the value at s->p (whitespace before it already skipped); depth
 * is the nesting of the container it is in. */
static int scan_value(scan *s, int depth) {
  const char *raw;
  size_t raw_len;
  int escaped, integral;

  if (s->p == s->end)
    return -1;
  switch (*s->p) {
  case '"':
    return scan_string(s, &raw, &raw_len, &escaped);
  case '{':
    return scan_object(s, depth + 1, NULL, NULL);
  case '[':
    return scan_array(s, depth + 1);
  case 't':
    return scan_literal(s, "true");
  case 'f':
    return scan_literal(s, "false");
  case 'n':
    return scan_literal(s, "null");
  default:
    return scan_number(s, &integral);
  }
}

typedef struct {
  int id_seen, id_numeric;
  long id;
  int result_seen, result_is_error;
  int error_seen;
  int is_error_seen; /* Inside result: its first "isError" key was met. */
} response_facts;

/* A member of the result object: only its first "isError" matters. */
static int on_result_member(scan *s, const char *raw, size_t raw_len,
                            int escaped, int depth, void *ctx) {
  response_facts *f = ctx;

  if (!f->is_error_seen && key_is(raw, raw_len, escaped, "isError")) {
    f->is_error_seen = 1;
    f->result_is_error = s->p < s->end && *s->p == 't';
  }
  return scan_value(s, depth);
}

static int on_top_member(scan *s, const char *raw, size_t raw_len, int escaped,
                         int depth, void *ctx) {
  response_facts *f = ctx;
  const char *start = s->p;
  int integral;

  if (!f->id_seen && key_is(raw, raw_len, escaped, "id")) {
    f->id_seen = 1;
    if (s->p < s->end && (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))) {
      if (scan_number(s, &integral) != 0)
        return -1;
      f->id_numeric = 1;
      f->id = number_value(start, s->p, integral);
      return 0;
    }
  } else if (!f->result_seen && key_is(raw, raw_len, escaped, "result")) {
    f->result_seen = 1;
    if (s->p < s->end && *s->p == '{')
      return scan_object(s, depth + 1, on_result_member, f);
  } else if (!f->error_seen && key_is(raw, raw_len, escaped, "error")) {
    f->error_seen = 1;
  }
  return scan_value(s, depth);
}

int scan_response(const char *json, size_t len, long *id, int *is_error) {
  scan s = {json, json + len};
  response_facts f = {0};
  int rc;

  scan_ws(&s);
  if (s.p < s.end && *s.p == '{')
    rc = scan_object(&s, 1, on_top_member, &f);
  else
    rc = scan_value(&s, 0);
  scan_ws(&s);
  if (rc != 0 || s.p != s.end)
    return -1;
  *id = -1;
  if (!f.id_numeric)
    return 0;
  *id = f.id;
  *is_error = f.error_seen || !f.result_seen || f.result_is_error;
  return 1;
}
