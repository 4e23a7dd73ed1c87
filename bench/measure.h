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

#endif
