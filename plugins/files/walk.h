/* walk.h: directory traversal (walk.c) for the tools and the watcher. */
#ifndef PH_FILES_WALK_H
#define PH_FILES_WALK_H

#include "files.h"

long long fs_now_ms(void);

/* One directory entry; type is a DT_* value (DT_UNKNOWN when lstat
 * failed, DT_FIFO for any special file). */
typedef struct fs_dirent {
  char *name;
  unsigned char type;
} fs_dirent;

/* Reads the visible entries of directory fd (opened for reading), sorted
 * by name. rel is the directory's path relative to its allowed directory,
 * for patterns with '/'. *out is malloc'd (fs_dirents_free). */
int fs_read_dir(const fs_box *b, int fd, const char *rel, fs_dirent **out,
                size_t *count, fs_err *e);
void fs_dirents_free(fs_dirent *d, size_t n);

/* Why a walk stopped early. */
enum { FS_STOP_NONE = 0, FS_STOP_ENTRIES, FS_STOP_TIME, FS_STOP_VISITOR };

/* Called for each visible entry not excluded, in name order, depth 0 for
 * the start directory's entries; returns 1 to enter a directory, 0 not
 * to, -1 to stop the walk. fd is the entry's directory (for openat). */
typedef int (*fs_visit_fn)(void *ctx, int fd, const char *rel, const char *name,
                           unsigned char type, int depth);
/* Called after a directory's entries, when visit entered it. */
typedef void (*fs_leave_fn)(void *ctx, const char *rel, int depth);

typedef struct fs_walk_opts {
  const fs_box *b;
  const char *start_rel; /* The start's path relative to its allowed dir. */
  char **excludes;       /* Globs (fs_glob_path) on relative paths. */
  int nexcludes;
  int max_depth;          /* Levels entered below the start; -1: any. */
  size_t max_entries;     /* Entries visited at most. */
  long long deadline_ms;  /* fs_now_ms() past which it stops; 0: none. */
  const ph_host_api *api; /* With call: stops when the call is cancelled. */
  ph_call *call;
  fs_visit_fn visit;
  fs_leave_fn leave; /* Or NULL. */
  void *ctx;
} fs_walk_opts;

typedef struct fs_walk_state {
  size_t entries; /* Visited. */
  int stopped;    /* FS_STOP_*. */
} fs_walk_state;

/* Walks directory fd (opened for reading). 0, or -1 with e when the start
 * cannot be read; unreadable subdirectories are skipped. */
int fs_walk(const fs_walk_opts *o, int fd, fs_walk_state *s, fs_err *e);

#endif
