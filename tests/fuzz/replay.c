/* replay.c: a harness without libFuzzer. Runs LLVMFuzzerTestOneInput once
 * over every file named on the command line, or in a directory named there
 * (not recursively), in name order, so the seeds and the regression inputs
 * of each harness are a test of the normal build and of the sanitizer one.
 * A directory that does not exist is skipped (a harness may have no
 * regressions yet); a file that cannot be read fails the run. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Runs the harness on one file. Returns 0, or -1 if it cannot be read. */
static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *data = NULL;
  long size;
  int rc = -1;

  if (f == NULL)
    goto cleanup;
  if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
      fseek(f, 0, SEEK_SET) != 0)
    goto cleanup;
  /* One byte more, so an empty file still has a buffer of its own. */
  data = malloc((size_t)size + 1);
  if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size)
    goto cleanup;
  LLVMFuzzerTestOneInput(data, (size_t)size);
  rc = 0;

cleanup:
  if (rc != 0)
    fprintf(stderr, "replay: cannot read %s\n", path);
  free(data);
  if (f != NULL)
    fclose(f);
  return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_entry(const struct dirent *d) {
  return d->d_name[0] != '.';
}

/* Runs the harness on a file or on each file of a directory; adds the
 * inputs run to *count. Returns the number of failures. */
static int replay_path(const char *path, int *count) {
  struct dirent **names;
  struct stat st;
  char file[4096];
  int n, i, failures = 0;

  if (stat(path, &st) != 0)
    return 0;
  if (!S_ISDIR(st.st_mode)) {
    (*count)++;
    return replay_file(path) != 0;
  }
  n = scandir(path, &names, skip_entry, by_name);
  if (n < 0) {
    fprintf(stderr, "replay: cannot list %s\n", path);
    return 1;
  }
  for (i = 0; i < n; i++) {
    snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
    if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
      (*count)++;
      failures += replay_file(file) != 0;
    }
    free(names[i]);
  }
  free(names);
  return failures;
}

int main(int argc, char **argv) {
  int i, count = 0, failures = 0;

  if (LLVMFuzzerInitialize != NULL)
    LLVMFuzzerInitialize(&argc, &argv);
  for (i = 1; i < argc; i++)
    failures += replay_path(argv[i], &count);
  printf("replay: %d inputs, %d unreadable\n", count, failures);
  return failures != 0 || count == 0;
}
