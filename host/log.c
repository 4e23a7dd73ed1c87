/* log.c: see log.h. Each line is formatted into one buffer and written with
 * a single write(2), so lines from worker threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int threshold = PH_LOG_INFO;
static atomic_long errors;

long ph__log_errors(void) {
  return atomic_load(&errors);
}

static const char *const level_names[] = {"debug",   "info",     "notice",
                                          "warning", "error",    "critical",
                                          "alert",   "emergency"};

void ph__log_set_level(int level) {
  atomic_store(&threshold, level);
}

int ph__log_level(void) {
  return atomic_load(&threshold);
}

int ph__log_level_parse(const char *name) {
  int i;

  for (i = 0; i <= PH_LOG_EMERGENCY; i++)
    if (strcmp(name, level_names[i]) == 0)
      return i;
  return -1;
}

const char *ph__log_level_name(int level) {
  if (level < 0 || level > PH_LOG_EMERGENCY)
    return "unknown";
  return level_names[level];
}

int ph__fail(char **err, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  if (vasprintf(err, fmt, ap) < 0)
    *err = NULL;
  va_end(ap);
  return PH__EFAIL;
}

void ph__log(int level, const char *fmt, ...) {
  char line[4096];
  struct timeval tv;
  struct tm tm;
  va_list ap;
  size_t n;
  int m;

  if (level >= PH_LOG_ERROR)
    atomic_fetch_add(&errors, 1);
  if (level < atomic_load(&threshold))
    return;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
  m = snprintf(line + n, sizeof(line) - n,
               ".%03dZ plughost[%d] %s: ", (int)(tv.tv_usec / 1000),
               (int)getpid(), ph__log_level_name(level));
  n += (size_t)m;
  va_start(ap, fmt);
  m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
  va_end(ap);
  n = m < 0 ? n : n + (size_t)m;
  if (n > sizeof(line) - 2)
    n = sizeof(line) - 2;
  line[n++] = '\n';
  if (write(STDERR_FILENO, line, n) < 0)
    return; /* Nowhere left to report it. */
}
