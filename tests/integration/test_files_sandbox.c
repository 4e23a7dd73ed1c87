/* test_files_sandbox.c: the files plugin's sandbox through the real host.
 *
 * A scratch directory holds the served root, hostile set-ups inside it
 * (symlinks out, chains, loops, /proc magic links, a FIFO, a socket, a
 * device node, hidden files, oversized, binary and non-UTF-8 files) and a
 * canary outside. Every case of the corpus must come back as a refusal
 * with a message saying what and why, and after each one everything
 * outside the root must be byte for byte what it was. The corpus runs on
 * openat2 and on the component walk (config "resolve": "walk").
 *
 * The race test swaps a directory for a symlink to outside, thousands of
 * times, while the host reads through it: never a byte from outside. */
#include "files_fixture.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

static fx X;

static void teardown(void) {
  fx_teardown(&X);
}

/* The hostile set-ups inside the root, next to a few harmless files. */
static void hostile_setup(fx *x) {
  char p[PATH_MAX + 64], big[8192];
  struct sockaddr_un sa;
  int s;

  fx_setup(x);
  fx_puts(x->root, "ok.txt", "inside\n");
  fx_mkdir(x->root, "sub");
  fx_puts(x->root, "sub/inner.txt", "inner\n");
  snprintf(p, sizeof(p), "%s/canary.txt", x->outside);
  fx_link(p, x->root, "esc_abs");
  fx_link("../outside/canary.txt", x->root, "esc_rel");
  fx_link("../outside", x->root, "esc_dir");
  fx_link("chain2", x->root, "chain1");
  fx_link("chain3", x->root, "chain2");
  fx_link("../outside/canary.txt", x->root, "chain3");
  fx_link("loop2", x->root, "loop1");
  fx_link("loop1", x->root, "loop2");
  fx_link("self", x->root, "self");
  fx_link("/proc/self/root/etc/passwd", x->root, "proc_root");
  fx_link("/proc/self/fd/0", x->root, "proc_fd");
  fx_link("/proc/self/cwd", x->root, "proc_cwd");
  fx_link("../../outside/canary.txt", x->root, "sub/up_file");
  fx_link("../../outside", x->root, "sub/up_dir");
  fx_link("../sub/../../outside/canary.txt", x->root, "sub/zigzag");
  snprintf(p, sizeof(p), "%s/../outside/canary.txt", x->root);
  fx_link(p, x->root, "abs_dotdot");
  snprintf(p, sizeof(p), "%s/rootx/canary.txt", x->base);
  fx_link(p, x->root, "sibling");
  fx_link(".env", x->root, "to_hidden");
  fx_link("sub/../.git/config", x->root, "to_git");
  fx_link("nothing-here", x->root, "dangling");
  fx_puts(x->root, ".env", "SECRET=1\n");
  fx_mkdir(x->root, ".git");
  fx_puts(x->root, ".git/config", "[core]\n");
  fx_puts(x->root, "server.pem", "-----BEGIN-----\n");
  fx_puts(x->root, "deploy.key", "key\n");
  fx_puts(x->root, "id_rsa", "key\n");
  fx_puts(x->root, "sub/.env", "SECRET=2\n");
  memset(big, 'x', sizeof(big));
  fx_write(x->root, "big.txt", big, sizeof(big));
  fx_write(x->root, "binary.dat", "ab\0cd", 5);
  fx_puts(x->root, "latin1.txt", "caf\xe9 au lait\n");
  fx_puts(x->root, "overlong.txt", "ok \xc0\xaf no\n");
  memset(big, 'a', 4000);
  big[4000] = 'b';
  fx_write(x->root, "aaaa.txt", big, 4001);
  fx_path(p, x->root, "fifo");
  cr_assert(mkfifo(p, 0644) == 0);
  fx_path(p, x->root, "sock");
  s = socket(AF_UNIX, SOCK_STREAM, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  cr_assert(strlen(p) < sizeof(sa.sun_path));
  memcpy(sa.sun_path, p, strlen(p) + 1);
  cr_assert(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
  close(s);
  fx_path(p, x->root, "null_dev");
  /* A device node needs root; without it that case reads not found. */
  if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) != 0)
    fx_puts(x->root, "null_dev", "");
}

/* One case: a tool, its arguments ($R the root, $B the scratch base, $O
 * the outside directory) and what the message must contain. */
typedef struct hostile {
  const char *tool;
  const char *args;
  const char *expect; /* A substring of the refusal. */
} hostile;

#define DENIED "Access denied"
#define OUTSIDE "outside the allowed directories"

static const hostile corpus[] = {
    /* Lexical escapes. */
    {"read_text", "{'path':'../outside/canary.txt'}", "contains '..'"},
    {"read_text", "{'path':'sub/../../outside/canary.txt'}", "contains '..'"},
    {"read_text", "{'path':'./././../outside/canary.txt'}", "contains '..'"},
    {"read_text", "{'path':'sub//..//..//outside/canary.txt'}", "'..'"},
    {"read_text", "{'path':'..'}", "contains '..'"},
    {"read_text", "{'path':'/etc/passwd'}", OUTSIDE},
    {"read_text", "{'path':'$O/canary.txt'}", OUTSIDE},
    {"read_text", "{'path':'$R/../outside/canary.txt'}", "contains '..'"},
    {"read_text", "{'path':'$Bx/root/ok.txt'}", OUTSIDE},
    {"read_text", "{'path':'$Rx/canary.txt'}", OUTSIDE},
    {"read_text", "{'path':'$B/rootx/canary.txt'}", OUTSIDE},
    {"read_text", "{'path':'~/.bashrc'}", "'~' is not expanded"},
    {"read_text", "{'path':'/proc/self/root$O/canary.txt'}", OUTSIDE},
    {"read_text", "{'path':'/proc/self/cwd/etc/passwd'}", OUTSIDE},
    {"read_text", "{'path':'a\\u0001b'}", "control character"},
    {"read_text", "{'path':'sub\\ninner.txt'}", "control character"},
    {"read_text", "{'path':'%2e%2e/outside/canary.txt'}", "does not exist"},
    /* Symlinks out, chains, loops, magic links. */
    {"read_text", "{'path':'esc_abs'}", OUTSIDE},
    {"read_text", "{'path':'esc_rel'}", OUTSIDE},
    {"read_text", "{'path':'esc_dir/canary.txt'}", OUTSIDE},
    {"read_text", "{'path':'esc_dir/dir/canary.txt'}", OUTSIDE},
    {"read_text", "{'path':'chain1'}", OUTSIDE},
    {"read_text", "{'path':'loop1'}", "symlink loop"},
    {"read_text", "{'path':'self'}", "symlink loop"},
    {"read_text", "{'path':'proc_root'}", DENIED},
    {"read_text", "{'path':'proc_fd'}", DENIED},
    {"read_text", "{'path':'proc_cwd/etc/passwd'}", DENIED},
    {"read_text", "{'path':'sub/up_file'}", OUTSIDE},
    {"read_text", "{'path':'sub/up_dir/canary.txt'}", OUTSIDE},
    {"read_text", "{'path':'sub/zigzag'}", OUTSIDE},
    {"read_text", "{'path':'abs_dotdot'}", OUTSIDE},
    {"read_text", "{'path':'sibling'}", OUTSIDE},
    {"read_text", "{'path':'dangling'}", "does not exist"},
    /* Hidden names, directly and through symlinks. */
    {"read_text", "{'path':'.env'}", "hidden"},
    {"read_text", "{'path':'.git/config'}", "hidden"},
    {"read_text", "{'path':'server.pem'}", "hidden"},
    {"read_text", "{'path':'deploy.key'}", "hidden"},
    {"read_text", "{'path':'id_rsa'}", "hidden"},
    {"read_text", "{'path':'sub/.env'}", "hidden"},
    {"read_text", "{'path':'.ENV'}", "hidden"},
    {"read_text", "{'path':'to_hidden'}", "hidden"},
    {"read_text", "{'path':'to_git'}", "hidden"},
    {"list", "{'path':'.git'}", "hidden"},
    /* Special files: a FIFO must not hang the worker. */
    {"read_text", "{'path':'fifo'}", "special file"},
    {"read_media", "{'path':'fifo'}", "special file"},
    {"read_text", "{'path':'sock'}", "special file"},
    {"read_text", "{'path':'null_dev'}", ""},
    /* Sizes, binary, encodings. */
    {"read_text", "{'path':'big.txt'}", "exceeds the maximum"},
    {"read_media", "{'path':'big.txt'}", "exceeds the maximum"},
    {"read_text", "{'path':'binary.dat'}", "use read_media"},
    {"read_text", "{'path':'latin1.txt'}", "byte offset 3"},
    {"read_text", "{'path':'overlong.txt'}", "byte offset 3"},
    {"write", "{'path':'huge.txt','content':'$BIG'}", "exceeds the maximum"},
    /* Over-long paths and names. */
    {"read_text", "{'path':'$LONGPATH'}", "longer than 4095"},
    {"read_text", "{'path':'$LONGNAME'}", "limited to 255"},
    /* Writes, moves, copies, deletes that would reach outside. */
    {"write", "{'path':'esc_dir/new.txt','content':'x'}", OUTSIDE},
    {"write", "{'path':'esc_abs','content':'x'}", "symbolic link"},
    {"write", "{'path':'../outside/new.txt','content':'x'}", "'..'"},
    {"write", "{'path':'$O/new.txt','content':'x'}", OUTSIDE},
    {"write", "{'path':'.env','content':'x'}", "hidden"},
    {"write", "{'path':'sub','content':'x'}", "a directory"},
    {"write", "{'path':'.','content':'x'}", "allowed directory itself"},
    {"write", "{'path':'fifo','content':'x'}", "special file"},
    {"edit", "{'path':'esc_rel','edits':[{'oldText':'C','newText':'D'}]}",
     OUTSIDE},
    {"edit", "{'path':'ok.txt','edits':[{'oldText':'zzz','newText':'D'}]}",
     "could not find"},
    {"mkdir", "{'path':'esc_dir/newdir'}", OUTSIDE},
    {"mkdir", "{'path':'$O/newdir'}", OUTSIDE},
    {"mkdir", "{'path':'sub/up_dir/newdir'}", OUTSIDE},
    {"delete", "{'path':'../outside/canary.txt'}", "'..'"},
    {"delete", "{'path':'esc_dir/canary.txt'}", OUTSIDE},
    {"delete", "{'path':'$O/canary.txt'}", OUTSIDE},
    {"delete", "{'path':'sub'}", "never a directory"},
    {"delete", "{'path':'.'}", "allowed directory itself"},
    {"move", "{'source':'$O/canary.txt','destination':'stolen.txt'}", OUTSIDE},
    {"move", "{'source':'esc_dir/canary.txt','destination':'stolen.txt'}",
     OUTSIDE},
    {"move", "{'source':'ok.txt','destination':'../outside/x.txt'}", "'..'"},
    {"move", "{'source':'ok.txt','destination':'esc_dir/x.txt'}", OUTSIDE},
    {"move", "{'source':'ok.txt','destination':'sub/inner.txt'}",
     "already exists"},
    {"move", "{'source':'.','destination':'elsewhere'}",
     "allowed directory itself"},
    {"move", "{'source':'.env','destination':'visible.txt'}", "hidden"},
    {"copy", "{'source':'esc_abs','destination':'copy.txt'}", OUTSIDE},
    {"copy", "{'source':'ok.txt','destination':'esc_dir/copy.txt'}", OUTSIDE},
    {"copy", "{'source':'ok.txt','destination':'sub/inner.txt'}",
     "already exists"},
    /* Reads of other kinds. */
    {"list", "{'path':'esc_dir'}", OUTSIDE},
    {"list", "{'path':'/'}", OUTSIDE},
    {"list_with_sizes", "{'path':'sub/up_dir'}", OUTSIDE},
    {"tree", "{'path':'esc_dir'}", OUTSIDE},
    {"search", "{'path':'esc_dir','pattern':'*'}", OUTSIDE},
    {"grep", "{'path':'esc_dir','pattern':'CANARY'}", OUTSIDE},
    {"grep", "{'path':'.','pattern':'^(a|a)*$','regex':true}", "limit"},
    {"info", "{'path':'esc_abs'}", OUTSIDE},
    {"info", "{'path':'$O'}", OUTSIDE},
    {"read_media", "{'path':'esc_abs'}", OUTSIDE},
    {"read_text", "{'path':'sub'}", "is a directory"},
    {NULL, NULL, NULL}};

/* args with $R, $B, $O, $BIG, $LONGPATH and $LONGNAME expanded and single
 * quotes made double (malloc'd). */
static char *expand(const fx *x, const char *args) {
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  const char *p;
  int i;

  for (p = args; *p != '\0'; p++) {
    if (strncmp(p, "$LONGPATH", 9) == 0) {
      for (i = 0; i < 1100; i++)
        fputs("abc/", f);
      p += 8;
    } else if (strncmp(p, "$LONGNAME", 9) == 0) {
      for (i = 0; i < 300; i++)
        fputc('n', f);
      p += 8;
    } else if (strncmp(p, "$BIG", 4) == 0) {
      for (i = 0; i < 5000; i++)
        fputc('y', f);
      p += 3;
    } else if (strncmp(p, "$R", 2) == 0) {
      fputs(x->root, f);
      p++;
    } else if (strncmp(p, "$B", 2) == 0) {
      fputs(x->base, f);
      p++;
    } else if (strncmp(p, "$O", 2) == 0) {
      fputs(x->outside, f);
      p++;
    } else {
      fputc(*p == '\'' ? '"' : *p, f);
    }
  }
  fclose(f);
  return out;
}

static void run_corpus(int walk) {
  char *before, *after, *args;
  cJSON *res;
  int i, n = 0;

  hostile_setup(&X);
  before = fx_snapshot(&X);
  fx_start(&X, "\"max_file_size\":4096", walk);
  for (i = 0; corpus[i].tool != NULL; i++, n++) {
    long long t0 = th_now_ms();
    args = expand(&X, corpus[i].args);
    res = fx_call(&X, corpus[i].tool, args);
    cr_expect(fx_is_error(res), "%s %s (%s) was not refused: %s",
              corpus[i].tool, args, walk ? "walk" : "openat2",
              cJSON_PrintUnformatted(res));
    cr_expect(fx_text(res)[0] != '\0', "%s %s: no message", corpus[i].tool,
              args);
    cr_expect(strstr(fx_text(res), corpus[i].expect) != NULL,
              "%s %s (%s): message %s lacks '%s'", corpus[i].tool, args,
              walk ? "walk" : "openat2", fx_text(res), corpus[i].expect);
    cr_expect(th_now_ms() - t0 < 5000, "%s %s took %lld ms", corpus[i].tool,
              args, th_now_ms() - t0);
    after = fx_snapshot(&X);
    cr_expect_str_eq(after, before, "%s %s changed something outside",
                     corpus[i].tool, args);
    free(after);
    free(args);
    cJSON_Delete(res);
  }
  cr_expect_geq(n, 60, "the corpus has %d cases", n);
  /* The harmless files still read, and nothing was created inside. */
  res = fx_call(&X, "read_text", "{\"path\":\"ok.txt\"}");
  cr_expect_str_eq(fx_text(res), "inside\n");
  cJSON_Delete(res);
  cr_expect(access("/dev/null", F_OK) == 0);
  {
    char p[PATH_MAX];
    fx_path(p, X.root, "stolen.txt");
    cr_expect(access(p, F_OK) != 0, "stolen.txt was created");
    fx_path(p, X.root, "huge.txt");
    cr_expect(access(p, F_OK) != 0, "huge.txt was created");
  }
  /* Every refusal was logged at info with the instance. */
  cr_expect(th_wait_stderr(X.h,
                           "[default/files (files)] files: read_text "
                           "refused: Access denied",
                           2000),
            "no refusal logged; stderr:\n%s", th_stderr(X.h));
  free(before);
}

Test(files_sandbox, corpus_openat2, .fini = teardown, .timeout = 120) {
  run_corpus(0);
}

Test(files_sandbox, corpus_walk, .fini = teardown, .timeout = 120) {
  run_corpus(1);
}

/* Symlinks that stay inside work on both paths, including absolute ones
 * (which RESOLVE_BENEATH refuses and the walk resolves). */
static void run_inside_links(int walk) {
  char p[PATH_MAX + 64];
  cJSON *res;

  fx_setup(&X);
  fx_puts(X.root, "ok.txt", "inside\n");
  fx_mkdir(X.root, "sub");
  fx_puts(X.root, "sub/inner.txt", "inner\n");
  fx_link("ok.txt", X.root, "rel");
  fx_link("sub", X.root, "dirlink");
  fx_link("../ok.txt", X.root, "sub/up");
  snprintf(p, sizeof(p), "%s/sub/inner.txt", X.root);
  fx_link(p, X.root, "abs_inside");
  fx_start(&X, NULL, walk);
  res = fx_call(&X, "read_text", "{\"path\":\"rel\"}");
  cr_expect_str_eq(fx_text(res), "inside\n");
  cJSON_Delete(res);
  res = fx_call(&X, "read_text", "{\"path\":\"dirlink/inner.txt\"}");
  cr_expect_str_eq(fx_text(res), "inner\n");
  cJSON_Delete(res);
  res = fx_call(&X, "read_text", "{\"path\":\"sub/up\"}");
  cr_expect_str_eq(fx_text(res), "inside\n");
  cJSON_Delete(res);
  res = fx_call(&X, "read_text", "{\"path\":\"abs_inside\"}");
  cr_expect_str_eq(fx_text(res), "inner\n", "%s", fx_text(res));
  cJSON_Delete(res);
}

Test(files_sandbox, inside_links_openat2, .fini = teardown) {
  run_inside_links(0);
}

Test(files_sandbox, inside_links_walk, .fini = teardown) {
  run_inside_links(1);
}

/* ---- the race ---- */

typedef struct swapper {
  fx *x;
  int absolute;
  volatile int stop;
  long swaps;
} swapper;

/* Swaps root/swap (a directory holding f.txt) for a symlink to outside and
 * back, as fast as it can. */
static void *swap_main(void *arg) {
  swapper *s = arg;
  char dir[PATH_MAX], real[PATH_MAX], target[PATH_MAX];

  fx_path(dir, s->x->root, "swap");
  fx_path(real, s->x->root, "swap.real");
  if (s->absolute)
    fx_path(target, s->x->outside, "dir");
  else
    snprintf(target, sizeof(target), "../outside/dir");
  while (!s->stop) {
    if (rename(dir, real) != 0)
      continue;
    if (symlink(target, dir) == 0) {
      sched_yield();
      unlink(dir);
    }
    rename(real, dir);
    sched_yield();
    s->swaps++;
  }
  return NULL;
}

static void run_race(int walk, int absolute) {
  swapper s = {&X, absolute, 0, 0};
  pthread_t thread;
  cJSON *res;
  int i, inside = 0, refused = 0;

  fx_setup(&X);
  fx_mkdir(X.root, "swap");
  fx_puts(X.root, "swap/canary.txt", "INSIDE\n");
  fx_start(&X, NULL, walk);
  cr_assert_eq(pthread_create(&thread, NULL, swap_main, &s), 0);
  /* Thousands of reads, and at least a thousand swaps among them. */
  for (i = 0; i < 3000 || (s.swaps < 1000 && i < 100000); i++) {
    res = fx_call(&X, i % 2 ? "read_text" : "read_media",
                  "{\"path\":\"swap/canary.txt\"}");
    if (fx_is_error(res)) {
      refused++;
    } else {
      const char *t = fx_text(res);
      const char *blob = th_str(res, "result.content.0.resource.blob");
      cr_assert(strstr(t, "CANARY") == NULL, "read outside: %s", t);
      /* "CANARY" and "INSIDE\n" in base64. */
      cr_assert(blob == NULL || strcmp(blob, "SU5TSURFCg==") == 0,
                "read outside: %s", blob);
      inside++;
    }
    cJSON_Delete(res);
  }
  s.stop = 1;
  pthread_join(thread, NULL);
  cr_log_info("race (%s, %s link): %d inside, %d refused, %ld swaps",
              walk ? "walk" : "openat2", absolute ? "absolute" : "relative",
              inside, refused, s.swaps);
  cr_expect_geq(s.swaps, 1000, "the swapper barely ran");
  cr_expect_gt(inside, 0);
}

Test(files_sandbox, race_openat2_relative, .fini = teardown, .timeout = 120) {
  run_race(0, 0);
}

Test(files_sandbox, race_openat2_absolute, .fini = teardown, .timeout = 120) {
  run_race(0, 1);
}

Test(files_sandbox, race_walk_relative, .fini = teardown, .timeout = 120) {
  run_race(1, 0);
}

Test(files_sandbox, race_walk_absolute, .fini = teardown, .timeout = 120) {
  run_race(1, 1);
}
