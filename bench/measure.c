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
