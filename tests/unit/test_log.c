/* test_log.c: the host log: level names both ways, threshold filtering,
 * the error counter that --check relies on, the line format, truncation of
 * long lines and whole lines from concurrent threads. stderr is pointed at
 * a temporary file while a test logs, and read back. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int saved_stderr = -1;
static char capture_path[64];

/* Sends fd 2 to a fresh temporary file until capture_end(). */
static void capture_begin(void) {
  int fd;

  snprintf(capture_path, sizeof(capture_path), "/tmp/ph-log-XXXXXX");
  fd = mkstemp(capture_path);

  cr_assert_geq(fd, 0);
  saved_stderr = dup(STDERR_FILENO);
  cr_assert_geq(saved_stderr, 0);
  cr_assert_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
  close(fd);
}

/* Restores stderr and returns everything logged meanwhile (malloc'd). */
static char *capture_end(void) {
  FILE *f;
  char *text;
  long len;

  cr_assert_eq(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
  close(saved_stderr);
  saved_stderr = -1;
  f = fopen(capture_path, "rb");
  cr_assert_not_null(f);
  fseek(f, 0, SEEK_END);
  len = ftell(f);
  fseek(f, 0, SEEK_SET);
  text = calloc(1, (size_t)len + 1);
  cr_assert_not_null(text);
  cr_assert_eq(fread(text, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  unlink(capture_path);
  return text;
}

static size_t count_lines(const char *text) {
  size_t n = 0;

  for (; *text != '\0'; text++)
    n += *text == '\n';
  return n;
}

TestSuite(log);

Test(log, every_level_name_round_trips) {
  static const char *const names[] = {"debug",   "info",     "notice",
                                      "warning", "error",    "critical",
                                      "alert",   "emergency"};
  int level;

  for (level = PH_LOG_DEBUG; level <= PH_LOG_EMERGENCY; level++) {
    cr_expect_str_eq(ph__log_level_name(level), names[level]);
    cr_expect_eq(ph__log_level_parse(names[level]), level, "%s", names[level]);
    cr_expect_eq(ph__log_level_parse(ph__log_level_name(level)), level);
  }
}

Test(log, unknown_levels) {
  cr_expect_eq(ph__log_level_parse("warn"), -1);
  cr_expect_eq(ph__log_level_parse("DEBUG"), -1);
  cr_expect_eq(ph__log_level_parse(""), -1);
  cr_expect_eq(ph__log_level_parse("debug "), -1);
  cr_expect_eq(ph__log_level_parse("unknown"), -1);
  cr_expect_str_eq(ph__log_level_name(-1), "unknown");
  cr_expect_str_eq(ph__log_level_name(PH_LOG_EMERGENCY + 1), "unknown");
}

Test(log, set_level_is_read_back) {
  cr_expect_eq(ph__log_level(), PH_LOG_INFO, "the default threshold");
  ph__log_set_level(PH_LOG_ERROR);
  cr_expect_eq(ph__log_level(), PH_LOG_ERROR);
  ph__log_set_level(PH_LOG_DEBUG);
  cr_expect_eq(ph__log_level(), PH_LOG_DEBUG);
}

Test(log, lines_below_the_threshold_are_dropped) {
  char *out;

  ph__log_set_level(PH_LOG_WARNING);
  capture_begin();
  ph__debug("dropped debug");
  ph__info("dropped info");
  ph__log(PH_LOG_NOTICE, "dropped notice");
  ph__warn("kept warning %d", 1);
  ph__error("kept error %s", "two");
  ph__log(PH_LOG_EMERGENCY, "kept emergency");
  out = capture_end();
  cr_expect_eq(count_lines(out), 3, "%s", out);
  cr_expect_null(strstr(out, "dropped"), "%s", out);
  cr_expect_not_null(strstr(out, " warning: kept warning 1\n"), "%s", out);
  cr_expect_not_null(strstr(out, " error: kept error two\n"), "%s", out);
  cr_expect_not_null(strstr(out, " emergency: kept emergency\n"), "%s", out);
  free(out);
}

Test(log, debug_threshold_keeps_everything) {
  char *out;
  int level;

  ph__log_set_level(PH_LOG_DEBUG);
  capture_begin();
  for (level = PH_LOG_DEBUG; level <= PH_LOG_EMERGENCY; level++)
    ph__log(level, "line %d", level);
  out = capture_end();
  cr_expect_eq(count_lines(out), PH_LOG_EMERGENCY + 1, "%s", out);
  free(out);
}

Test(log, line_format) {
  char *out, pattern[256];
  regex_t re;

  ph__log_set_level(PH_LOG_INFO);
  capture_begin();
  ph__info("hello %s", "world");
  out = capture_end();
  snprintf(pattern, sizeof(pattern),
           "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
           "\\.[0-9]{3}Z plughost\\[%d\\] info: hello world\n$",
           (int)getpid());
  cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
  cr_expect_eq(regexec(&re, out, 0, NULL, 0), 0, "%s", out);
  regfree(&re);
  free(out);
}

Test(log, error_counter_counts_filtered_lines) {
  long before = ph__log_errors();
  char *out;

  ph__log_set_level(PH_LOG_EMERGENCY);
  capture_begin();
  ph__error("filtered error");
  ph__log(PH_LOG_CRITICAL, "filtered critical");
  ph__log(PH_LOG_ALERT, "filtered alert");
  ph__warn("a warning is not an error");
  ph__info("nor is info");
  out = capture_end();
  cr_expect_eq(ph__log_errors() - before, 3);
  cr_expect_str_empty(out, "%s", out);
  free(out);

  ph__log_set_level(PH_LOG_DEBUG);
  capture_begin();
  ph__error("shown error");
  ph__log(PH_LOG_EMERGENCY, "shown emergency");
  out = capture_end();
  cr_expect_eq(ph__log_errors() - before, 5);
  cr_expect_eq(count_lines(out), 2);
  free(out);
}

Test(log, long_lines_are_cut_to_one_line) {
  size_t len = 10000;
  char *big = malloc(len + 1), *out;

  cr_assert_not_null(big);
  memset(big, 'x', len);
  big[len] = '\0';
  ph__log_set_level(PH_LOG_INFO);
  capture_begin();
  ph__info("%s", big);
  ph__info("after");
  out = capture_end();
  cr_expect_eq(count_lines(out), 2);
  cr_expect_leq(strchr(out, '\n') - out + 1, 4096, "one write of at most 4096");
  cr_expect_gt(strchr(out, '\n') - out, 4000, "the message is kept up to it");
  cr_expect_not_null(strstr(out, "info: after\n"));
  free(big);
  free(out);
}

#define THREADS 4
#define LINES_PER_THREAD 200

static void *log_many(void *arg) {
  int i, id = (int)(intptr_t)arg;

  for (i = 0; i < LINES_PER_THREAD; i++)
    ph__info("thread %d line %d %s", id, i,
             "padding padding padding padding padding padding padding");
  return NULL;
}

Test(log, concurrent_lines_never_interleave) {
  pthread_t threads[THREADS];
  char *out, *line, *save = NULL;
  size_t n = 0;
  regex_t re;
  int i;

  cr_assert_eq(regcomp(&re,
                       "^[0-9T:.-]+Z plughost\\[[0-9]+\\] info: thread [0-9] "
                       "line [0-9]+ (padding ?){7}$",
                       REG_EXTENDED | REG_NOSUB),
               0);
  ph__log_set_level(PH_LOG_INFO);
  capture_begin();
  for (i = 0; i < THREADS; i++)
    cr_assert_eq(
        pthread_create(&threads[i], NULL, log_many, (void *)(intptr_t)i), 0);
  for (i = 0; i < THREADS; i++)
    pthread_join(threads[i], NULL);
  out = capture_end();
  for (line = strtok_r(out, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    cr_expect_eq(regexec(&re, line, 0, NULL, 0), 0, "torn line: %s", line);
    n++;
  }
  cr_expect_eq(n, THREADS * LINES_PER_THREAD);
  regfree(&re);
  free(out);
}
