/* sqlite_funcs.c: instr(), replace(), printf() (format()) and the
 * two-argument trim(), ltrim() and rtrim() for the SQLite engine's
 * connections, in place of SQLite's.
 *
 * SQLite checks its progress handler and sqlite3_interrupt() only between
 * instructions that loop, never inside a function, so no deadline stops
 * one slow call. SQLite's instr, replace and trim compare the needle,
 * pattern or character set at every position of the string, so one call
 * costs the product of its arguments' sizes (instr() of a 500 KB needle
 * in a 1 MB string took 35 s); these give the same results (the comments
 * say where SQLite's code was followed) at a cost linear in their
 * arguments: instr and replace search with memmem(), and trim looks a
 * character up only among the set's characters that start (or end) with
 * the same byte, with a bound on the work a crafted set may cost.
 * printf's %c repeats its character `precision` times one at a time, on
 * past the length limit (printf('%.*c', 900000000, 'x') took 15 s to
 * give NULL); this printf gives NULL at once when the repetitions alone
 * pass the limit, as SQLite's would in the end, and hands any other call
 * to SQLite's own printf on a private in-memory connection. */
#include "sqlite_guard.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Arguments a SQL function takes at most (SQLITE_MAX_FUNCTION_ARG). */
#define MAX_ARGS 127

/* One connection's printf: the private connection that runs SQLite's
 * own, and its statements by number of arguments. Owned by the function
 * registration; freed with the connection. */
typedef struct printf_state {
  sqlite3 *helper;
  sqlite3_stmt *stmts[MAX_ARGS + 1];
} printf_state;

/* Member tests trim may make in one call: far more than any character set
 * of real characters needs, and a few milliseconds of work. */
#define TRIM_WORK (1L << 24)

/* Non-zero for a UTF-8 continuation byte (10xxxxxx). */
static int continuation(unsigned char c) {
  return (c & 0xc0) == 0x80;
}

/* instr(haystack, needle): 1 + the characters (bytes, when both are
 * blobs) before the first occurrence of needle, or 0. As in SQLite, a text
 * match counts only where a character starts, and a blob beside a text
 * compares as text. */
static void instr_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  sqlite3_value *h = NULL, *n = NULL;
  const unsigned char *hay, *needle, *at, *from;
  int nhay, nneedle, text, type_h, type_n;
  long long count = 1;

  (void)argc;
  type_h = sqlite3_value_type(argv[0]);
  type_n = sqlite3_value_type(argv[1]);
  if (type_h == SQLITE_NULL || type_n == SQLITE_NULL)
    return;
  text = !(type_h == SQLITE_BLOB && type_n == SQLITE_BLOB);
  if (text && (type_h == SQLITE_BLOB || type_n == SQLITE_BLOB)) {
    /* A blob read as text: on copies, as SQLite does, so the arguments
     * themselves keep their type. */
    if ((h = sqlite3_value_dup(argv[0])) == NULL ||
        (n = sqlite3_value_dup(argv[1])) == NULL)
      goto nomem;
  }
  hay = text ? sqlite3_value_text(h != NULL ? h : argv[0])
             : sqlite3_value_blob(argv[0]);
  nhay = sqlite3_value_bytes(h != NULL ? h : argv[0]);
  needle = text ? sqlite3_value_text(n != NULL ? n : argv[1])
                : sqlite3_value_blob(argv[1]);
  nneedle = sqlite3_value_bytes(n != NULL ? n : argv[1]);
  if (nneedle == 0) {
    sqlite3_result_int(ctx, 1);
    goto cleanup;
  }
  if (needle == NULL || (nhay > 0 && hay == NULL))
    goto nomem;
  for (from = hay;;) {
    at = from < hay + nhay ? memmem(from, (size_t)(hay + nhay - from), needle,
                                    (size_t)nneedle)
                           : NULL;
    if (at == NULL) {
      sqlite3_result_int(ctx, 0);
      goto cleanup;
    }
    if (!text || at == hay || !continuation(*at))
      break;
    from = at + 1;
  }
  if (!text) {
    count += at - hay;
  } else if (at > hay) {
    /* SQLite steps a character at a time from the first byte, whatever
     * that byte is, so position 0 counts and then every lead byte. */
    for (from = hay + 1, count = 2; from < at; from++)
      count += !continuation(*from);
  }
  sqlite3_result_int64(ctx, count);
  goto cleanup;

nomem:
  sqlite3_result_error_nomem(ctx);
cleanup:
  sqlite3_value_free(h);
  sqlite3_value_free(n);
}

/* replace(string, pattern, with): every occurrence of pattern, left to
 * right and not overlapping, replaced. As in SQLite the result is text, a
 * pattern whose first byte is NUL leaves the string as it is, and a result
 * longer than SQLITE_LIMIT_LENGTH is an error. */
static void replace_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  const unsigned char *str, *pat, *rep, *p, *at, *end;
  int nstr, npat, nrep;
  sqlite3 *handle = sqlite3_context_db_handle(ctx);
  long long limit = sqlite3_limit(handle, SQLITE_LIMIT_LENGTH, -1);
  long long nout = 0;
  unsigned char *out, *o;

  (void)argc;
  str = sqlite3_value_text(argv[0]);
  if (str == NULL)
    return;
  nstr = sqlite3_value_bytes(argv[0]);
  pat = sqlite3_value_text(argv[1]);
  if (pat == NULL)
    return;
  if (pat[0] == '\0') {
    sqlite3_result_value(ctx, argv[0]);
    return;
  }
  npat = sqlite3_value_bytes(argv[1]);
  rep = sqlite3_value_text(argv[2]);
  if (rep == NULL)
    return;
  nrep = sqlite3_value_bytes(argv[2]);
  end = str + nstr;
  for (p = str; p < end; p = at + npat) {
    at = memmem(p, (size_t)(end - p), pat, (size_t)npat);
    if (at == NULL) {
      nout += end - p;
      break;
    }
    nout += (at - p) + nrep;
    if (nout > limit) {
      sqlite3_result_error_toobig(ctx);
      return;
    }
  }
  if (nout > limit) {
    sqlite3_result_error_toobig(ctx);
    return;
  }
  out = sqlite3_malloc64((sqlite3_uint64)nout + 1);
  if (out == NULL) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  for (p = str, o = out; p < end; p = at + npat) {
    at = memmem(p, (size_t)(end - p), pat, (size_t)npat);
    if (at == NULL) {
      memcpy(o, p, (size_t)(end - p));
      o += end - p;
      break;
    }
    memcpy(o, p, (size_t)(at - p));
    o += at - p;
    memcpy(o, rep, (size_t)nrep);
    o += nrep;
  }
  *o = '\0';
  sqlite3_result_text64(ctx, (const char *)out, (sqlite3_uint64)(o - out),
                        sqlite3_free, SQLITE_UTF8);
}

/* The end of the character at z, as SQLite's SQLITE_SKIP_UTF8 finds it: a
 * byte, and after one of 0xc0 or more every continuation byte that
 * follows (any number, valid UTF-8 or not). */
static const unsigned char *skip_char(const unsigned char *z) {
  if (*z++ >= 0xc0)
    while (continuation(*z))
      z++;
  return z;
}

/* One character of a trim set. */
typedef struct trim_char {
  const unsigned char *z;
  int len;
  int next_first; /* Next character with the same first byte, or -1. */
  int next_last;  /* Next character with the same last byte, or -1. */
} trim_char;

/* trim(string, set), ltrim and rtrim (user data 1 left, 2 right, 3 both):
 * strips characters of set from the ends. As in SQLite the set ends at
 * its first NUL, and at each end the set's first character (in the set's
 * order) that matches is the one stripped. Characters are chained by
 * their first and last byte, so each step tests only those that can
 * match there. SQLite keeps a character's length in a byte, so a
 * "character" of 256 bytes matches as empty there and loops forever; here
 * it has its length. */
static void trim_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  const unsigned char *in, *set, *z;
  int first[256], last[256], tail_first[256], tail_last[256];
  int nin, nchars = 0, i, k, flags;
  trim_char *chars = NULL;
  long work = 0;

  (void)argc;
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL)
    return;
  in = sqlite3_value_text(argv[0]);
  if (in == NULL)
    return;
  nin = sqlite3_value_bytes(argv[0]);
  set = sqlite3_value_text(argv[1]);
  if (set == NULL)
    return;
  for (z = set; *z != '\0'; nchars++)
    z = skip_char(z);
  if (nchars > 0) {
    chars = sqlite3_malloc64((sqlite3_uint64)nchars * sizeof(trim_char));
    if (chars == NULL) {
      sqlite3_result_error_nomem(ctx);
      return;
    }
  }
  for (i = 0; i < 256; i++)
    first[i] = last[i] = tail_first[i] = tail_last[i] = -1;
  for (z = set, k = 0; k < nchars; k++) {
    const unsigned char *start = z;

    z = skip_char(z);
    chars[k].z = start;
    chars[k].len = (int)(z - start);
    chars[k].next_first = chars[k].next_last = -1;
    /* Chains in the set's order, so the first match is SQLite's. */
    if (tail_first[start[0]] < 0)
      first[start[0]] = k;
    else
      chars[tail_first[start[0]]].next_first = k;
    tail_first[start[0]] = k;
    if (tail_last[z[-1]] < 0)
      last[z[-1]] = k;
    else
      chars[tail_last[z[-1]]].next_last = k;
    tail_last[z[-1]] = k;
  }
  flags = (int)(intptr_t)sqlite3_user_data(ctx);
  while ((flags & 1) && nin > 0) {
    for (k = first[in[0]]; k >= 0; k = chars[k].next_first) {
      if (++work > TRIM_WORK)
        goto too_much;
      if (chars[k].len <= nin && memcmp(in, chars[k].z, chars[k].len) == 0)
        break;
    }
    if (k < 0)
      break;
    in += chars[k].len;
    nin -= chars[k].len;
  }
  while ((flags & 2) && nin > 0) {
    for (k = last[in[nin - 1]]; k >= 0; k = chars[k].next_last) {
      if (++work > TRIM_WORK)
        goto too_much;
      if (chars[k].len <= nin &&
          memcmp(in + nin - chars[k].len, chars[k].z, chars[k].len) == 0)
        break;
    }
    if (k < 0)
      break;
    nin -= chars[k].len;
  }
  sqlite3_free(chars);
  sqlite3_result_text(ctx, (const char *)in, nin, SQLITE_TRANSIENT);
  return;

too_much:
  sqlite3_free(chars);
  sqlite3_result_error(ctx,
                       "trim(): the character set costs too much work on "
                       "this string",
                       -1);
}

/* The number of times printf's %c conversions in format repeat their
 * character, following SQLite's parse of a format (sqlite3_str_vappendf
 * with SQL arguments): flags, a width and a precision each given or taken
 * from the next argument ("*"), "l" or "ll", the conversion, which takes
 * the next argument but for %% and %n. A conversion SQLite does not know
 * ends the format there. */
static long long char_repeats(const unsigned char *f, int argc,
                              sqlite3_value **argv) {
  long long total = 0;
  int arg = 1, precision;
  unsigned px;

  for (; f != NULL && *f != '\0'; f++) {
    if (*f != '%')
      continue;
    f++;
    while (*f != '\0' && strchr("-+ #!0,", *f) != NULL)
      f++;
    if (*f == '*') {
      arg++;
      f++;
    } else {
      while (*f >= '0' && *f <= '9')
        f++;
    }
    precision = -1;
    if (*f == '.') {
      f++;
      if (*f == '*') {
        precision = arg < argc ? (int)sqlite3_value_int64(argv[arg]) : 0;
        if (precision < 0)
          precision = precision >= -2147483647 ? -precision : -1;
        arg++;
        f++;
      } else {
        for (px = 0; *f >= '0' && *f <= '9'; f++)
          px = px * 10 + (unsigned)(*f - '0');
        precision = (int)(px & 0x7fffffff);
      }
    }
    if (*f == 'l' && *++f == 'l')
      f++;
    if (*f == '\0' || strchr("dsgzqQwcouxXfeEGinp%r", *f) == NULL)
      break;
    if (*f == 'c' && precision > 1)
      total += precision;
    if (*f != '%' && *f != 'n')
      arg++;
  }
  return total;
}

static void printf_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  printf_state *ps = sqlite3_user_data(ctx);
  sqlite3 *handle = sqlite3_context_db_handle(ctx);
  int limit = sqlite3_limit(handle, SQLITE_LIMIT_LENGTH, -1), i, code;
  sqlite3_stmt *stmt;
  char sql[8 + 2 * MAX_ARGS + 8], *p;

  if (argc < 1 || argc > MAX_ARGS)
    return;
  if (char_repeats(sqlite3_value_text(argv[0]), argc, argv) > limit)
    return; /* NULL: SQLite's result for a string over the limit. */
  if (ps->helper == NULL &&
      sqlite3_open_v2(":memory:", &ps->helper,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    sqlite3_close(ps->helper);
    ps->helper = NULL;
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_limit(ps->helper, SQLITE_LIMIT_LENGTH, limit);
  stmt = ps->stmts[argc];
  if (stmt == NULL) {
    p = sql + sprintf(sql, "SELECT printf(");
    for (i = 0; i < argc; i++)
      p += sprintf(p, i > 0 ? ",?" : "?");
    sprintf(p, ")");
    if (sqlite3_prepare_v2(ps->helper, sql, -1, &ps->stmts[argc], NULL) !=
        SQLITE_OK) {
      sqlite3_result_error(ctx, sqlite3_errmsg(ps->helper), -1);
      return;
    }
    stmt = ps->stmts[argc];
  }
  for (i = 0; i < argc; i++)
    sqlite3_bind_value(stmt, i + 1, argv[i]);
  code = sqlite3_step(stmt);
  if (code == SQLITE_ROW)
    sqlite3_result_value(ctx, sqlite3_column_value(stmt, 0));
  else if (code == SQLITE_TOOBIG)
    sqlite3_result_error_toobig(ctx);
  else
    sqlite3_result_error(ctx, sqlite3_errmsg(ps->helper), -1);
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
}

static void printf_free(void *arg) {
  printf_state *ps = arg;
  int i;

  for (i = 0; i <= MAX_ARGS; i++)
    sqlite3_finalize(ps->stmts[i]);
  sqlite3_close(ps->helper);
  free(ps);
}

int sq_funcs_register(sqlite3 *handle) {
  /* Innocuous, as SQLite's are, so views and generated columns may still
   * use them on a connection that does not trust its schema. */
  const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  int code;

  code = sqlite3_create_function(handle, "instr", 2, flags, NULL, instr_func,
                                 NULL, NULL);
  if (code == SQLITE_OK)
    code = sqlite3_create_function(handle, "replace", 3, flags, NULL,
                                   replace_func, NULL, NULL);
  if (code == SQLITE_OK)
    code = sqlite3_create_function(handle, "ltrim", 2, flags, (void *)1,
                                   trim_func, NULL, NULL);
  if (code == SQLITE_OK)
    code = sqlite3_create_function(handle, "rtrim", 2, flags, (void *)2,
                                   trim_func, NULL, NULL);
  if (code == SQLITE_OK)
    code = sqlite3_create_function(handle, "trim", 2, flags, (void *)3,
                                   trim_func, NULL, NULL);
  if (code == SQLITE_OK) {
    printf_state *ps = calloc(1, sizeof(*ps));
    if (ps == NULL)
      return SQLITE_NOMEM;
    /* Both names share the state; printf's destructor frees it when the
     * connection closes, after which neither runs. */
    code = sqlite3_create_function_v2(handle, "format", -1, flags, ps,
                                      printf_func, NULL, NULL, NULL);
    if (code == SQLITE_OK)
      code = sqlite3_create_function_v2(handle, "printf", -1, flags, ps,
                                        printf_func, NULL, NULL, printf_free);
    else
      free(ps);
  }
  return code;
}
