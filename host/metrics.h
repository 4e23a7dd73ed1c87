/* metrics.h: the host's metrics, and the Prometheus text exposition format
 * (version 0.0.4) they are rendered in at GET /metrics.
 *
 * Two kinds. Stored metrics are counters and histograms in a fixed table of
 * families (enum ph__metric), each with up to three labels whose values
 * come from bounded sets: a department, a tool or an instance of the
 * configuration, an outcome or a JSON-RPC code of a fixed list. Never a
 * session, user or request id. Scraped metrics are gauges whose value is
 * read when the page is rendered (instances by state, queue depths,
 * sessions): the layer that owns the value writes them with the page
 * functions below, so this file knows nothing above it.
 *
 * Updates are lock-free: a series is found in a hash table that only
 * grows, and read without a lock (inserting takes one, once per series);
 * its values are atomics. Any thread. A series whose tool or instance is
 * not in the current generation is kept but not rendered (the live
 * callback), so the page only names what exists now.
 *
 * Cost: an update hashes its label values (tens of bytes) and does one or
 * two relaxed atomic adds; ph__metrics_set_enabled(0) makes every update a
 * load and a branch (the benchmark's "off").
 *
 * Layers: the base, beside log.h and alloc.h. */
#ifndef PH_METRICS_H
#define PH_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Stored families; metrics.c's table names them and their labels. */
enum ph__metric {
  PH__M_TOOL_CALLS,       /* department, tool, outcome. */
  PH__M_OPERATION,        /* Histogram: method, tool, error_type. */
  PH__M_RPC_ERRORS,       /* code: JSON-RPC errors answered. */
  PH__M_QUEUE_REJECTED,   /* department, instance, plugin. */
  PH__M_BREAKER_REJECTED, /* department, instance, plugin. */
  PH__M_RATE_LIMITED,     /* department, limit. */
  PH__M_RELOADS,          /* result. */
  PH__M_RELOAD_DURATION,  /* Histogram. */
  PH__M_NFAMILIES
};

/* Whether updates count (default 1). Any thread. */
void ph__metrics_set_enabled(int enabled);
int ph__metrics_enabled(void);

/* Adds n to the counter family f with label values a, b, c (as many as the
 * family has; NULL for the rest). Strings are copied the first time a
 * series is seen. Any thread. */
void ph__metrics_add(int f, uint64_t n, const char *a, const char *b,
                     const char *c);

/* Observes a duration in nanoseconds in the histogram family f. */
void ph__metrics_observe(int f, uint64_t ns, const char *a, const char *b,
                         const char *c);

/* The label value of a JSON-RPC error code: one of the codes JSON-RPC and
 * MCP define (static text) or "_OTHER", so a plugin's own codes cannot
 * grow the label set. */
const char *ph__metrics_code_label(int code);

/* ---- The page ---- */

typedef struct ph__metrics_page ph__metrics_page;

/* Which series are live: what is 0 for a tool (a = department, or NULL
 * for any department; b = the exposed tool name) and 1 for an instance
 * (a = department, b = prefix). Returns non-zero to render the series. */
typedef int (*ph__metrics_live_fn)(void *data, int what, const char *a,
                                   const char *b);
enum { PH__METRICS_LIVE_TOOL, PH__METRICS_LIVE_INSTANCE };

/* A new, empty page. */
ph__metrics_page *ph__metrics_page_new(void);

/* Starts a family: its # HELP and # TYPE lines (type "counter", "gauge",
 * "histogram"). name must follow Prometheus' rules; help is one line. */
void ph__metrics_page_family(ph__metrics_page *p, const char *name,
                             const char *type, const char *help);

/* One sample of the family begun last: name, value, then label name and
 * value pairs ended by NULL. Values are escaped; a NULL value leaves its
 * label out. */
void ph__metrics_page_sample(ph__metrics_page *p, const char *name,
                             double value, ...);

/* Appends every stored family, with the series live() lets through. */
void ph__metrics_page_stored(ph__metrics_page *p, ph__metrics_live_fn live,
                             void *data);

/* The text (NUL-terminated, malloc'd, the caller frees) and its length;
 * frees the page. */
char *ph__metrics_page_finish(ph__metrics_page *p, size_t *len);

#endif
