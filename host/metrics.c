/* metrics.c: see metrics.h.
 *
 * No library: Debian 12 packages no C client for the Prometheus format
 * (apt-cache search prometheus, libprom, prometheus-client: Go, Perl,
 * Python and Ruby clients only; prometheus-client-c is not packaged), so
 * the writer is here, checked by promtool in test_metrics.c. */
#include "metrics.h"

#include "alloc.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Histogram bucket bounds, in seconds as rendered and nanoseconds as
 * compared. OpenTelemetry's MCP conventions advise 0.01 s to 300 s; an
 * inline echo answers in microseconds, so the scale starts at 100 µs. */
#define NBUCKETS 20
static const char *const bucket_text[NBUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025",  "0.05",    "0.1",    "0.25",  "0.5",    "1",     "2.5",
    "5",      "10",      "30",     "60",    "120",    "300"};
static const uint64_t bucket_ns[NBUCKETS] = {
    100000ull,      250000ull,      500000ull,       1000000ull,
    2500000ull,     5000000ull,     10000000ull,     25000000ull,
    50000000ull,    100000000ull,   250000000ull,    500000000ull,
    1000000000ull,  2500000000ull,  5000000000ull,   10000000000ull,
    30000000000ull, 60000000000ull, 120000000000ull, 300000000000ull};

enum { LIVE_NONE = -1 };

typedef struct family {
  const char *name; /* Without _bucket, _sum, _count for histograms. */
  const char *help;
  int histogram;
  int nlabels;
  const char *labels[3];
  int live;           /* PH__METRICS_LIVE_* or LIVE_NONE. */
  int live_a, live_b; /* The labels live() gets; -1: NULL. */
} family;

static const family families[PH__M_NFAMILIES] = {
    [PH__M_TOOL_CALLS] = {"plughost_tool_calls_total",
                          "Tool calls answered, by department, exposed tool "
                          "name and outcome.",
                          0,
                          3,
                          {"department", "tool", "outcome"},
                          PH__METRICS_LIVE_TOOL,
                          0,
                          1},
    [PH__M_OPERATION] = {"mcp_server_operation_duration_seconds",
                         "Duration of MCP requests the server answered "
                         "(OpenTelemetry mcp.server.operation.duration).",
                         1,
                         3,
                         {"mcp_method_name", "gen_ai_tool_name", "error_type"},
                         PH__METRICS_LIVE_TOOL,
                         -1,
                         1},
    [PH__M_RPC_ERRORS] = {"plughost_jsonrpc_errors_total",
                          "JSON-RPC error responses sent, by code (_OTHER "
                          "for codes MCP does not define).",
                          0,
                          1,
                          {"code"},
                          LIVE_NONE,
                          -1,
                          -1},
    [PH__M_QUEUE_REJECTED] = {"plughost_instance_queue_rejections_total",
                              "Calls refused because the instance's queue "
                              "was full (limits.queue_per_plugin).",
                              0,
                              3,
                              {"department", "instance", "plugin"},
                              PH__METRICS_LIVE_INSTANCE,
                              0,
                              1},
    [PH__M_BREAKER_REJECTED] = {"plughost_breaker_rejections_total",
                                "Calls failed fast because the instance's "
                                "circuit breaker was open.",
                                0,
                                3,
                                {"department", "instance", "plugin"},
                                PH__METRICS_LIVE_INSTANCE,
                                0,
                                1},
    [PH__M_RATE_LIMITED] = {"plughost_rate_limit_rejections_total",
                            "Requests refused by a rate limit, by department "
                            "and limit.",
                            0,
                            2,
                            {"department", "limit"},
                            LIVE_NONE,
                            -1,
                            -1},
    [PH__M_RELOADS] = {"plughost_reloads_total",
                       "Reloads (SIGHUP or watch_plugin_dir), by result.",
                       0,
                       1,
                       {"result"},
                       LIVE_NONE,
                       -1,
                       -1},
    [PH__M_RELOAD_DURATION] = {"plughost_reload_duration_seconds",
                               "Time from a reload's start to its publication "
                               "or failure.",
                               1,
                               0,
                               {NULL},
                               LIVE_NONE,
                               -1,
                               -1},
};

/* One series: a family and its label values. Immutable once published but
 * for its atomics. */
typedef struct series {
  struct series *_Atomic next; /* Hash chain. */
  struct series *family_next;  /* The family's list, set before publish. */
  int family;
  uint64_t hash;
  char *labels[3];
  atomic_ullong value;  /* Counter value; histogram: sum in ns. */
  atomic_ullong hist[]; /* Histograms: NBUCKETS + 1 (the last is +Inf). */
} series;

#define NSLOTS 4096

static struct {
  atomic_int disabled;
  series *_Atomic slots[NSLOTS];
  series *_Atomic families[PH__M_NFAMILIES];
  uv_once_t once;
  uv_mutex_t mu; /* Inserts only. */
} M = {.once = UV_ONCE_INIT};

static void init_once(void) {
  uv_mutex_init(&M.mu);
}

void ph__metrics_set_enabled(int enabled) {
  atomic_store(&M.disabled, !enabled);
}

int ph__metrics_enabled(void) {
  return !atomic_load_explicit(&M.disabled, memory_order_relaxed);
}

static uint64_t hash_labels(int f, const char *const v[3]) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)f;
  const unsigned char *p;
  int i;

  for (i = 0; i < 3; i++) {
    for (p = (const unsigned char *)(v[i] ? v[i] : ""); *p; p++)
      h = (h ^ *p) * 1099511628211ull;
    h = (h ^ 0x1f) *
        1099511628211ull; /* Between values: "a","bc" != "ab","c". */
  }
  return h;
}

static int same(const series *s, int f, uint64_t h, const char *const v[3]) {
  int i;

  if (s->family != f || s->hash != h)
    return 0;
  for (i = 0; i < 3; i++)
    if (strcmp(s->labels[i] ? s->labels[i] : "", v[i] ? v[i] : "") != 0)
      return 0;
  return 1;
}

static series *find(int f, uint64_t h, const char *const v[3]) {
  series *s = atomic_load_explicit(&M.slots[h % NSLOTS], memory_order_acquire);

  for (; s != NULL; s = atomic_load_explicit(&s->next, memory_order_acquire))
    if (same(s, f, h, v))
      return s;
  return NULL;
}

/* The series of f with values a, b, c: found, or made and published. */
static series *lookup(int f, const char *a, const char *b, const char *c) {
  const char *v[3] = {a, b, c};
  uint64_t h;
  series *s;
  size_t extra;
  int i;

  for (i = families[f].nlabels; i < 3; i++)
    v[i] = NULL;
  h = hash_labels(f, v);
  if ((s = find(f, h, v)) != NULL)
    return s;
  uv_once(&M.once, init_once);
  uv_mutex_lock(&M.mu);
  if ((s = find(f, h, v)) == NULL) {
    extra = families[f].histogram ? (NBUCKETS + 1) * sizeof(atomic_ullong) : 0;
    s = ph__xcalloc(1, sizeof(*s) + extra);
    s->family = f;
    s->hash = h;
    for (i = 0; i < 3; i++)
      s->labels[i] = ph__xstrdup_or_null(v[i]);
    s->family_next = atomic_load(&M.families[f]);
    atomic_store_explicit(&s->next, atomic_load(&M.slots[h % NSLOTS]),
                          memory_order_relaxed);
    atomic_store_explicit(&M.slots[h % NSLOTS], s, memory_order_release);
    atomic_store_explicit(&M.families[f], s, memory_order_release);
  }
  uv_mutex_unlock(&M.mu);
  return s;
}

void ph__metrics_add(int f, uint64_t n, const char *a, const char *b,
                     const char *c) {
  if (!ph__metrics_enabled())
    return;
  atomic_fetch_add_explicit(&lookup(f, a, b, c)->value, n,
                            memory_order_relaxed);
}

void ph__metrics_observe(int f, uint64_t ns, const char *a, const char *b,
                         const char *c) {
  series *s;
  int i = 0;

  if (!ph__metrics_enabled())
    return;
  s = lookup(f, a, b, c);
  while (i < NBUCKETS && ns > bucket_ns[i])
    i++;
  atomic_fetch_add_explicit(&s->hist[i], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->value, ns, memory_order_relaxed);
}

const char *ph__metrics_code_label(int code) {
  static const struct {
    int code;
    const char *text;
  } known[] = {{-32700, "-32700"}, {-32600, "-32600"}, {-32601, "-32601"},
               {-32602, "-32602"}, {-32603, "-32603"}, {-32001, "-32001"},
               {-32002, "-32002"}, {-32020, "-32020"}, {-32021, "-32021"},
               {-32022, "-32022"}, {-32029, "-32029"}, {-32042, "-32042"}};
  size_t i;

  for (i = 0; i < sizeof(known) / sizeof(*known); i++)
    if (known[i].code == code)
      return known[i].text;
  return "_OTHER";
}

/* ---- The page ---- */

struct ph__metrics_page {
  char *buf;
  size_t len, cap;
};

ph__metrics_page *ph__metrics_page_new(void) {
  ph__metrics_page *p = ph__xcalloc(1, sizeof(*p));

  p->cap = 4096;
  p->buf = ph__xmalloc(p->cap);
  return p;
}

static void reserve(ph__metrics_page *p, size_t n) {
  if (p->len + n + 1 <= p->cap)
    return;
  while (p->len + n + 1 > p->cap)
    p->cap *= 2;
  p->buf = ph__xrealloc(p->buf, p->cap);
}

static void put(ph__metrics_page *p, const char *s, size_t n) {
  reserve(p, n);
  memcpy(p->buf + p->len, s, n);
  p->len += n;
}

static void puts_(ph__metrics_page *p, const char *s) {
  put(p, s, strlen(s));
}

static void printf_(ph__metrics_page *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void printf_(ph__metrics_page *p, const char *fmt, ...) {
  va_list ap;
  int n;

  reserve(p, 64);
  va_start(ap, fmt);
  n = vsnprintf(p->buf + p->len, p->cap - p->len, fmt, ap);
  va_end(ap);
  if ((size_t)n >= p->cap - p->len) {
    reserve(p, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(p->buf + p->len, p->cap - p->len, fmt, ap);
    va_end(ap);
  }
  p->len += (size_t)n;
}

/* A label value in the format's escapes: \\, \" and \n. */
static void put_escaped(ph__metrics_page *p, const char *v) {
  const char *run = v;

  for (; *v != '\0'; v++) {
    if (*v != '\\' && *v != '"' && *v != '\n')
      continue;
    put(p, run, (size_t)(v - run));
    put(p, *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : "\\n", 2);
    run = v + 1;
  }
  put(p, run, (size_t)(v - run));
}

void ph__metrics_page_family(ph__metrics_page *p, const char *name,
                             const char *type, const char *help) {
  printf_(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_value(ph__metrics_page *p, double v) {
  if (v == (double)(long long)v && v > -1e15 && v < 1e15)
    printf_(p, " %lld\n", (long long)v);
  else
    printf_(p, " %.17g\n", v);
}

void ph__metrics_page_sample(ph__metrics_page *p, const char *name,
                             double value, ...) {
  const char *k, *v;
  va_list ap;
  int n = 0;

  puts_(p, name);
  va_start(ap, value);
  while ((k = va_arg(ap, const char *)) != NULL) {
    v = va_arg(ap, const char *);
    if (v == NULL)
      continue;
    puts_(p, n++ ? "," : "{");
    puts_(p, k);
    puts_(p, "=\"");
    put_escaped(p, v);
    puts_(p, "\"");
  }
  va_end(ap);
  if (n > 0)
    puts_(p, "}");
  put_value(p, value);
}

/* name{labels of s[,extra="value"]}: a sample's name and labels. An empty
 * label value is the same as none (the format's rule), so it is left
 * out. */
static void put_series(ph__metrics_page *p, const char *name,
                       const char *suffix, const series *s, const char *extra,
                       const char *extra_value) {
  const family *fam = &families[s->family];
  int i, n = 0;

  puts_(p, name);
  puts_(p, suffix);
  for (i = 0; i < fam->nlabels; i++) {
    if (s->labels[i] == NULL || s->labels[i][0] == '\0')
      continue;
    puts_(p, n++ ? "," : "{");
    puts_(p, fam->labels[i]);
    puts_(p, "=\"");
    put_escaped(p, s->labels[i]);
    puts_(p, "\"");
  }
  if (extra != NULL) {
    puts_(p, n++ ? "," : "{");
    puts_(p, extra);
    puts_(p, "=\"");
    puts_(p, extra_value);
    puts_(p, "\"");
  }
  if (n > 0)
    puts_(p, "}");
}

static int is_live(const family *fam, const series *s, ph__metrics_live_fn live,
                   void *data) {
  const char *a, *b;

  if (fam->live == LIVE_NONE || live == NULL)
    return 1;
  a = fam->live_a >= 0 ? s->labels[fam->live_a] : NULL;
  b = fam->live_b >= 0 ? s->labels[fam->live_b] : NULL;
  if (b == NULL || b[0] == '\0')
    return 1; /* An operation that is not a tool call. */
  return live(data, fam->live, a, b);
}

static void put_histogram(ph__metrics_page *p, const series *s) {
  const char *name = families[s->family].name;
  unsigned long long cum = 0;
  int i;

  for (i = 0; i <= NBUCKETS; i++) {
    cum += atomic_load_explicit(&s->hist[i], memory_order_relaxed);
    put_series(p, name, "_bucket", s, "le",
               i < NBUCKETS ? bucket_text[i] : "+Inf");
    printf_(p, " %llu\n", cum);
  }
  put_series(p, name, "_sum", s, NULL, NULL);
  printf_(p, " %.9f\n",
          (double)atomic_load_explicit(&s->value, memory_order_relaxed) / 1e9);
  put_series(p, name, "_count", s, NULL, NULL);
  printf_(p, " %llu\n", cum);
}

void ph__metrics_page_stored(ph__metrics_page *p, ph__metrics_live_fn live,
                             void *data) {
  const family *fam;
  const series *s;
  int f;

  for (f = 0; f < PH__M_NFAMILIES; f++) {
    fam = &families[f];
    ph__metrics_page_family(
        p, fam->name, fam->histogram ? "histogram" : "counter", fam->help);
    s = atomic_load_explicit(&M.families[f], memory_order_acquire);
    for (; s != NULL; s = s->family_next) {
      if (!is_live(fam, s, live, data))
        continue;
      if (fam->histogram) {
        put_histogram(p, s);
      } else {
        put_series(p, fam->name, "", s, NULL, NULL);
        printf_(
            p, " %llu\n",
            atomic_load_explicit(&((series *)s)->value, memory_order_relaxed));
      }
    }
  }
}

char *ph__metrics_page_finish(ph__metrics_page *p, size_t *len) {
  char *text = p->buf;

  text[p->len] = '\0';
  *len = p->len;
  free(p);
  return text;
}
