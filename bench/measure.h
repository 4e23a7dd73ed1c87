/* measure.h: what both load generators (loadgen for stdio, http_loadgen for
 * HTTP) measure the same way: time, CPU of the server and of the client,
 * other work on the pinned cores, percentiles. */
#ifndef PH_BENCH_MEASURE_H
#define PH_BENCH_MEASURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Print "<program>: <what>: <errno text>" or "<program>: <message>" and
 * exit 1. */
void die(const char *what);
void fail(const char *message);

int64_t now_ns(void);
void *xrealloc(void *p, size_t size);

/* Each program's own: prints its options and exits 2. */
void usage(void);

/* A count given on the command line, at least min; usage() otherwise. */
long parse_count(const char *text, long min);

/* User + system CPU in µs: the server's (all threads, /proc/<pid>/stat)
 * and our own. */
int64_t server_cpu_us(pid_t pid);
int64_t own_cpu_us(void);

/* The one CPU this process is pinned to, or -1. */
int pinned_cpu(void);

/* Busy time of a CPU in µs from /proc/stat (0 for cpu < 0). */
int64_t cpu_busy_us(int cpu);

/* Percentage of cpu that went to other work during elapsed_ns: its busy
 * time minus what we account for (own µs); -1 when not pinned. */
double noise_pct(int cpu, int64_t busy, int64_t own, int64_t elapsed_ns);

/* qsort comparator and percentile of sorted ns samples, in µs. */
int compare_int64(const void *a, const void *b);
double percentile_us(const int64_t *sorted, long n, int pct);

/* What a load generator reads from each JSON-RPC message it receives,
 * found by walking the text once without building a tree: a parse costs
 * the client tens of microseconds on a database result, time added to
 * every request's cycle in sequential runs.
 *
 * Returns -1 when the text is not one JSON value (whitespace around it
 * allowed), 0 when it is but has no numeric top-level "id" (a
 * notification, or not an object), and 1 for a response: *id is the id,
 * and *is_error whether the response has a top-level "error", lacks a
 * "result", or has a "result" object whose "isError" is the literal true.
 * Keys are matched exactly at their level, after unescaping; with
 * duplicates the first counts, as cJSON_GetObjectItem would find it. */
int scan_response(const char *json, size_t len, long *id, int *is_error);

#endif
