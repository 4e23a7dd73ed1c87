/* text.c: what the files plugin does to bytes once the sandbox has opened
 * them: error and buffer helpers, UTF-8 checks, globs, the edit tool's
 * replacements (exact, then the reference server's whitespace-tolerant
 * line match) and the unified diff it answers with. No I/O here. */
#include "files.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Edit distance past which the diff stops looking for the shortest script
 * and shows the rest as removed and added: Myers' trace costs D^2. */
#define DIFF_MAX_D 1000
#define DIFF_CONTEXT 3

int fs_fail(fs_err *e, int kind, const char *fmt, ...) {
  va_list ap;

  if (e == NULL || e->kind != FS_OK)
    return -1;
  e->kind = kind;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- buffer ---- */

int fs_buf_reserve(fs_buf *b, size_t n) {
  size_t cap;
  char *grown;

  if (b->failed)
    return -1;
  if (b->len + n + 1 <= b->cap)
    return 0;
  cap = b->cap > 0 ? b->cap : 256;
  while (cap < b->len + n + 1)
    cap *= 2;
  grown = realloc(b->data, cap);
  if (grown == NULL) {
    b->failed = 1;
    return -1;
  }
  b->data = grown;
  b->cap = cap;
  return 0;
}

void fs_buf_put(fs_buf *b, const char *s, size_t n) {
  if (fs_buf_reserve(b, n) != 0)
    return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void fs_buf_puts(fs_buf *b, const char *s) {
  fs_buf_put(b, s, strlen(s));
}

void fs_buf_printf(fs_buf *b, const char *fmt, ...) {
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || fs_buf_reserve(b, (size_t)n) != 0)
    return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* Eight bytes at a time, as ph_json_escape() reads them: a word without
 * a byte to escape adds nothing. */
static uint64_t special8(uint64_t w) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');

  return ((w - ones * 0x20) | (q - ones) | (b - ones)) & ~w & highs;
}

static size_t escape_extra(unsigned c) {
  if (c >= 0x20 && c != '"' && c != '\\')
    return 0;
  return (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t' ||
          c == '"' || c == '\\')
             ? 1
             : 5;
}

size_t fs_json_len(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  size_t extra = 0;
  uint64_t w;
  int i;

  for (; end - p >= 8; p += 8) {
    memcpy(&w, p, 8);
    if (special8(w) != 0)
      for (i = 0; i < 8; i++)
        extra += escape_extra(p[i]);
  }
  for (; p < end; p++)
    extra += escape_extra(*p);
  return n + extra;
}

void fs_buf_json_measured(fs_buf *b, const char *s, size_t n, size_t escaped) {
  char *end;

  if (fs_buf_reserve(b, escaped + 2) != 0)
    return;
  b->data[b->len++] = '"';
  end = ph_json_escape(b->data + b->len, s, n);
  b->len = (size_t)(end - b->data);
  b->data[b->len++] = '"';
  b->data[b->len] = '\0';
}

void fs_buf_json(fs_buf *b, const char *s, size_t n) {
  /* Room for exactly what ph_json_escape will write, measured first: its
   * worst case (six bytes a byte) would make a buffer sized for a large
   * reply grow and be copied for nothing. */
  fs_buf_json_measured(b, s, n, fs_json_len(s, n));
}

void fs_buf_free(fs_buf *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}

void fs_uri(fs_buf *out, const char *abs_path) {
  static const char hex[] = "0123456789ABCDEF";
  const unsigned char *p;

  fs_buf_puts(out, "file://");
  for (p = (const unsigned char *)abs_path; *p != '\0'; p++) {
    if (isalnum(*p) || strchr("/-._~!$&'()*+,;=:@", *p) != NULL) {
      fs_buf_put(out, (const char *)p, 1);
    } else {
      char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      fs_buf_put(out, esc, 3);
    }
  }
}

/* ---- UTF-8 ---- */

long long fs_utf8_invalid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  const unsigned char *start;
  unsigned c, need, cp, min;

  while (p < end) {
    /* ASCII runs eight bytes at a time: text is mostly ASCII. */
    while (end - p >= 8) {
      uint64_t w;
      memcpy(&w, p, 8);
      if (w & 0x8080808080808080ull)
        break;
      p += 8;
    }
    if (p >= end)
      break;
    start = p;
    c = *p++;
    if (c < 0x80)
      continue;
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return (long long)(start - (const unsigned char *)s);
    }
    if ((size_t)(end - p) < need)
      return (long long)(start - (const unsigned char *)s);
    while (need-- > 0) {
      if ((*p & 0xc0) != 0x80)
        return (long long)(start - (const unsigned char *)s);
      cp = (cp << 6) | (*p++ & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return (long long)(start - (const unsigned char *)s);
  }
  return -1;
}

int fs_looks_binary(const char *s, size_t len) {
  return memchr(s, '\0', len < 8192 ? len : 8192) != NULL;
}

/* ---- globs ---- */

/* One bracket class at p (after '['); *matched set, returns the end, or
 * NULL when the class is not closed (then '[' is literal). */
static const char *glob_class(const char *p, char c, int *matched) {
  int negate = 0, hit = 0;
  const char *start;

  if (*p == '!' || *p == '^') {
    negate = 1;
    p++;
  }
  start = p;
  while (*p != '\0' && (*p != ']' || p == start)) {
    if (p[1] == '-' && p[2] != ']' && p[2] != '\0') {
      if (c >= p[0] && c <= p[2])
        hit = 1;
      p += 3;
    } else {
      if (c == *p)
        hit = 1;
      p++;
    }
  }
  if (*p != ']')
    return NULL;
  *matched = hit != negate;
  return p + 1;
}

int fs_glob(const char *pat, const char *s) {
  const char *end;
  int matched;

  for (; *pat != '\0'; pat++) {
    switch (*pat) {
    case '*':
      if (pat[1] == '*') {
        /* "**": any run of characters, '/' included; "**\/" also none. */
        pat += 2;
        if (*pat == '/' && fs_glob(pat + 1, s))
          return 1;
        for (;; s++) {
          if (fs_glob(pat, s))
            return 1;
          if (*s == '\0')
            return 0;
        }
      }
      for (pat++;; s++) {
        if (fs_glob(pat, s))
          return 1;
        if (*s == '\0' || *s == '/')
          return 0;
      }
    case '?':
      if (*s == '\0' || *s == '/')
        return 0;
      s++;
      break;
    case '[':
      if (*s == '\0' || *s == '/')
        return 0;
      end = glob_class(pat + 1, *s, &matched);
      if (end == NULL) {
        if (*s != '[')
          return 0;
        s++;
        break;
      }
      if (!matched)
        return 0;
      s++;
      pat = end - 1;
      break;
    case '\\':
      if (pat[1] != '\0')
        pat++;
      /* fall through */
    default:
      if (*s != *pat)
        return 0;
      s++;
    }
  }
  return *s == '\0';
}

int fs_glob_path(const char *pattern, const char *rel, const char *name) {
  return strchr(pattern, '/') != NULL ? fs_glob(pattern, rel)
                                      : fs_glob(pattern, name);
}

/* ---- lines ---- */

typedef struct line {
  const char *s;
  size_t n; /* Without the '\n'. */
} line;

/* Splits text into lines (a final line without '\n' counts; a text ending
 * in '\n' has no empty last line). *count gets the number. */
static line *split_lines(const char *text, size_t len, size_t *count) {
  size_t cap = 16, n = 0;
  line *lines = malloc(cap * sizeof(*lines)), *grown;
  const char *p = text, *end = text + len, *nl;

  while (lines != NULL && p < end) {
    if (n == cap) {
      cap *= 2;
      grown = realloc(lines, cap * sizeof(*lines));
      if (grown == NULL) {
        free(lines);
        return NULL;
      }
      lines = grown;
    }
    nl = memchr(p, '\n', (size_t)(end - p));
    lines[n].s = p;
    lines[n].n = (size_t)((nl != NULL ? nl : end) - p);
    n++;
    p = nl != NULL ? nl + 1 : end;
  }
  *count = n;
  return lines;
}

static void trim(const char **s, size_t *n) {
  while (*n > 0 && isspace((unsigned char)**s)) {
    (*s)++;
    (*n)--;
  }
  while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
    (*n)--;
}

static size_t indent_of(const char *s, size_t n) {
  size_t i = 0;

  while (i < n && (s[i] == ' ' || s[i] == '\t'))
    i++;
  return i;
}

/* ---- edits ---- */

/* text with every "\r\n" turned into "\n" (malloc'd, *len updated). */
static char *to_lf(const char *text, size_t *len) {
  char *out = malloc(*len + 1), *o = out;
  size_t i;

  if (out == NULL)
    return NULL;
  for (i = 0; i < *len; i++)
    if (!(text[i] == '\r' && i + 1 < *len && text[i + 1] == '\n'))
      *o++ = text[i];
  *o = '\0';
  *len = (size_t)(o - out);
  return out;
}

static size_t line_of(const char *text, const char *at) {
  size_t n = 1;

  for (; text < at; text++)
    n += *text == '\n';
  return n;
}

/* Replaces [at, at+n) of *text (*len) with rep; 0 or -1. */
static int splice(char **text, size_t *len, size_t at, size_t n,
                  const char *rep, size_t rlen) {
  char *out = malloc(*len - n + rlen + 1);

  if (out == NULL)
    return -1;
  memcpy(out, *text, at);
  memcpy(out + at, rep, rlen);
  memcpy(out + at + rlen, *text + at + n, *len - at - n);
  *len = *len - n + rlen;
  out[*len] = '\0';
  free(*text);
  *text = out;
  return 0;
}

/* The exact matches of old in text: count, and the first two offsets. */
static size_t count_exact(const char *text, size_t len, const char *old,
                          size_t olen, size_t at[2]) {
  const char *p = text, *end = text + len, *hit;
  size_t n = 0;

  while ((hit = memmem(p, (size_t)(end - p), old, olen)) != NULL) {
    if (n < 2)
      at[n] = (size_t)(hit - text);
    n++;
    p = hit + olen;
  }
  return n;
}

/* The reference's fallback: old's lines equal to a run of text's lines
 * once both are trimmed; the replacement takes the indentation of the
 * first matched line, and later lines keep their indentation relative to
 * old's. Returns 0 (applied), 1 (no match) or -1 with e. */
static int fuzzy_edit(char **text, size_t *len, const char *old, size_t olen,
                      const char *rep, size_t rlen, int replace_all, int index,
                      fs_err *e) {
  size_t nt = 0, no = 0, nr = 0, i, j, hits = 0, first = 0, second = 0;
  line *tl = NULL, *ol = NULL, *rl = NULL;
  fs_buf out = {0};
  int rc = -1;

  tl = split_lines(*text, *len, &nt);
  ol = split_lines(old, olen, &no);
  rl = split_lines(rep, rlen, &nr);
  if (tl == NULL || ol == NULL || rl == NULL) {
    fs_fail(e, FS_FAILED, "out of memory");
    goto cleanup;
  }
  if (no == 0 || no > nt) {
    rc = 1;
    goto cleanup;
  }
  for (i = 0; i + no <= nt; i++) {
    for (j = 0; j < no; j++) {
      const char *a = tl[i + j].s, *b = ol[j].s;
      size_t an = tl[i + j].n, bn = ol[j].n;
      trim(&a, &an);
      trim(&b, &bn);
      if (an != bn || memcmp(a, b, an) != 0)
        break;
    }
    if (j == no) {
      if (hits == 0)
        first = i;
      else if (hits == 1)
        second = i;
      hits++;
      i += no - 1;
    }
  }
  if (hits == 0) {
    rc = 1;
    goto cleanup;
  }
  if (hits > 1 && !replace_all) {
    fs_fail(e, FS_REFUSED,
            "edit %d: oldText matches %zu places (ignoring whitespace), at "
            "lines %zu and %zu; add surrounding lines to oldText so that it "
            "matches once, or set replaceAll. Nothing was changed.",
            index + 1, hits, first + 1, second + 1);
    goto cleanup;
  }
  /* Rebuild the text, replacing every matched run. */
  for (i = 0; i < nt;) {
    int match = i + no <= nt;
    for (j = 0; match && j < no; j++) {
      const char *a = tl[i + j].s, *b = ol[j].s;
      size_t an = tl[i + j].n, bn = ol[j].n;
      trim(&a, &an);
      trim(&b, &bn);
      match = an == bn && memcmp(a, b, an) == 0;
    }
    if (!match) {
      fs_buf_put(&out, tl[i].s, tl[i].n);
      if (tl[i].s + tl[i].n < *text + *len)
        fs_buf_put(&out, "\n", 1);
      i++;
      continue;
    }
    {
      /* Each new line keeps its indentation relative to oldText's first
       * line, moved to where the file's first matched line is indented. */
      size_t base = indent_of(tl[i].s, tl[i].n);
      long shift = (long)base - (long)indent_of(ol[0].s, ol[0].n);
      for (j = 0; j < nr; j++) {
        size_t ind = indent_of(rl[j].s, rl[j].n), k;
        long want = (long)ind + shift;
        if (ind < rl[j].n) {
          if (want < 0)
            want = 0;
          /* The file's own indentation characters, then spaces. */
          fs_buf_put(&out, tl[i].s, (size_t)want < base ? (size_t)want : base);
          for (k = base; k < (size_t)want; k++)
            fs_buf_put(&out, " ", 1);
        }
        fs_buf_put(&out, rl[j].s + ind, rl[j].n - ind);
        if (j + 1 < nr || tl[i + no - 1].s + tl[i + no - 1].n < *text + *len)
          fs_buf_put(&out, "\n", 1);
      }
      i += no;
    }
  }
  if (out.failed) {
    fs_fail(e, FS_FAILED, "out of memory");
    goto cleanup;
  }
  free(*text);
  *text = out.data != NULL ? out.data : strdup("");
  *len = out.len;
  out.data = NULL;
  rc = 0;

cleanup:
  fs_buf_free(&out);
  free(tl);
  free(ol);
  free(rl);
  return rc;
}

char *fs_apply_edits(const char *text, size_t len, const fs_edit *edits,
                     int nedits, size_t *out_len, fs_err *e) {
  size_t n = len, olen, rlen, hits, at[2], crlf = 0, lf = 0, i;
  char *cur = NULL, *old = NULL, *rep = NULL, *result = NULL, *o;
  int k, r;

  /* A file with CRLF endings is edited as LF and written back as CRLF. */
  for (i = 0; i < len; i++)
    if (text[i] == '\n') {
      if (i > 0 && text[i - 1] == '\r')
        crlf++;
      else
        lf++;
    }
  cur = to_lf(text, &n);
  if (cur == NULL)
    goto oom;
  for (k = 0; k < nedits; k++) {
    olen = strlen(edits[k].old_text);
    rlen = strlen(edits[k].new_text);
    old = to_lf(edits[k].old_text, &olen);
    rep = to_lf(edits[k].new_text, &rlen);
    if (old == NULL || rep == NULL)
      goto oom;
    if (olen == 0) {
      fs_fail(e, FS_REFUSED, "edit %d: oldText is empty. Nothing was changed.",
              k + 1);
      goto cleanup;
    }
    hits = count_exact(cur, n, old, olen, at);
    if (hits > 1 && !edits[k].replace_all) {
      fs_fail(e, FS_REFUSED,
              "edit %d: oldText matches %zu places, at lines %zu and %zu; "
              "add surrounding lines to oldText so that it matches once, or "
              "set replaceAll. Nothing was changed.",
              k + 1, hits, line_of(cur, cur + at[0]),
              line_of(cur, cur + at[1]));
      goto cleanup;
    }
    if (hits == 1) {
      if (splice(&cur, &n, at[0], olen, rep, rlen) != 0)
        goto oom;
    } else if (hits > 1) {
      fs_buf all = {0};
      const char *p = cur, *end = cur + n, *hit;
      while ((hit = memmem(p, (size_t)(end - p), old, olen)) != NULL) {
        fs_buf_put(&all, p, (size_t)(hit - p));
        fs_buf_put(&all, rep, rlen);
        p = hit + olen;
      }
      fs_buf_put(&all, p, (size_t)(end - p));
      if (all.failed || all.data == NULL) {
        fs_buf_free(&all);
        goto oom;
      }
      free(cur);
      cur = all.data;
      n = all.len;
    } else {
      r = fuzzy_edit(&cur, &n, old, olen, rep, rlen, edits[k].replace_all, k,
                     e);
      if (r < 0)
        goto cleanup;
      if (r > 0) {
        fs_fail(e, FS_REFUSED,
                "edit %d: could not find oldText in the file, exactly or "
                "ignoring whitespace: %.200s%s. Read the file again and copy "
                "the text exactly. Nothing was changed.",
                k + 1, edits[k].old_text,
                strlen(edits[k].old_text) > 200 ? "..." : "");
        goto cleanup;
      }
    }
    free(old);
    free(rep);
    old = rep = NULL;
  }
  if (crlf > lf) {
    size_t nl = 0;
    for (i = 0; i < n; i++)
      nl += cur[i] == '\n';
    result = malloc(n + nl + 1);
    if (result == NULL)
      goto oom;
    for (o = result, i = 0; i < n; i++) {
      if (cur[i] == '\n')
        *o++ = '\r';
      *o++ = cur[i];
    }
    *o = '\0';
    *out_len = (size_t)(o - result);
  } else {
    result = cur;
    cur = NULL;
    *out_len = n;
  }
  goto cleanup;

oom:
  fs_fail(e, FS_FAILED, "out of memory");
cleanup:
  free(cur);
  free(old);
  free(rep);
  return result;
}

/* ---- unified diff (Myers) ---- */

static int line_eq(const line *a, const line *b) {
  return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
}

/* One step of the edit script: ' ' keep, '-' a's line, '+' b's line. */
typedef struct op {
  char kind;
  size_t ai, bi;
} op;

/* The shortest edit script from a to b between the common prefix and
 * suffix (Myers 1986, with the V arrays kept for the way back). Past
 * DIFF_MAX_D, the middle is all removed then all added. */
static op *diff_script(const line *a, size_t na, const line *b, size_t nb,
                       size_t *nops) {
  const long off = DIFF_MAX_D + 1;
  size_t pre = 0, suf = 0, n, m, d, i, count = 0, nr = 0;
  size_t found = (size_t)-1;
  long k, x, y, *v = NULL, **trace = NULL;
  op *ops = malloc((na + nb + 1) * sizeof(*ops)), *rev = NULL;
  int done = 0;

  if (ops == NULL)
    return NULL;
  while (pre < na && pre < nb && line_eq(&a[pre], &b[pre]))
    pre++;
  while (suf < na - pre && suf < nb - pre &&
         line_eq(&a[na - 1 - suf], &b[nb - 1 - suf]))
    suf++;
  n = na - pre - suf;
  m = nb - pre - suf;
  for (i = 0; i < pre; i++)
    ops[count++] = (op){' ', i, i};
  trace = calloc(DIFF_MAX_D + 1, sizeof(*trace));
  v = calloc(2 * (size_t)off + 1, sizeof(*v));
  if (n + m > 0 && trace != NULL && v != NULL) {
    for (d = 0; d <= n + m && d <= DIFF_MAX_D && found == (size_t)-1; d++) {
      for (k = -(long)d; k <= (long)d; k += 2) {
        if (k == -(long)d || (k != (long)d && v[off + k - 1] < v[off + k + 1]))
          x = v[off + k + 1];
        else
          x = v[off + k - 1] + 1;
        y = x - k;
        while (x < (long)n && y < (long)m &&
               line_eq(&a[pre + (size_t)x], &b[pre + (size_t)y]))
          x++, y++;
        v[off + k] = x;
        if (x >= (long)n && y >= (long)m) {
          found = d;
          break;
        }
      }
      /* Only diagonals -d..d matter at step d: D^2 in all, not D*(n+m). */
      trace[d] = malloc((2 * d + 1) * sizeof(long));
      if (trace[d] == NULL)
        break;
      memcpy(trace[d], v + off - (long)d, (2 * d + 1) * sizeof(long));
    }
    if (found != (size_t)-1 && trace[found] != NULL)
      rev = malloc((n + m + 1) * sizeof(*rev));
  }
  if (rev != NULL) {
    x = (long)n;
    y = (long)m;
    for (d = found; d > 0; d--) {
      long *pv = trace[d - 1] + (d - 1), prev_k, px, py;
      k = x - y;
      if (k == -(long)d || (k != (long)d && pv[k - 1] < pv[k + 1]))
        prev_k = k + 1;
      else
        prev_k = k - 1;
      px = pv[prev_k];
      py = px - prev_k;
      while (x > px && y > py) {
        x--, y--;
        rev[nr++] = (op){' ', pre + (size_t)x, pre + (size_t)y};
      }
      if (x == px) {
        y--;
        rev[nr++] = (op){'+', pre + (size_t)x, pre + (size_t)y};
      } else {
        x--;
        rev[nr++] = (op){'-', pre + (size_t)x, pre + (size_t)y};
      }
    }
    while (x > 0 && y > 0) {
      x--, y--;
      rev[nr++] = (op){' ', pre + (size_t)x, pre + (size_t)y};
    }
    while (nr > 0)
      ops[count++] = rev[--nr];
    free(rev);
    done = 1;
  }
  if (!done) {
    for (i = 0; i < n; i++)
      ops[count++] = (op){'-', pre + i, pre};
    for (i = 0; i < m; i++)
      ops[count++] = (op){'+', pre + n, pre + i};
  }
  for (i = 0; i < suf; i++)
    ops[count++] = (op){' ', pre + n + i, pre + m + i};
  if (trace != NULL)
    for (d = 0; d <= DIFF_MAX_D; d++)
      free(trace[d]);
  free(trace);
  free(v);
  *nops = count;
  return ops;
}

static void put_line(fs_buf *out, char kind, const line *l, int last_no_nl) {
  fs_buf_put(out, &kind, 1);
  fs_buf_put(out, l->s, l->n > 0 && l->s[l->n - 1] == '\r' ? l->n - 1 : l->n);
  fs_buf_put(out, "\n", 1);
  if (last_no_nl)
    fs_buf_puts(out, "\\ No newline at end of file\n");
}

void fs_unified_diff(fs_buf *out, const char *path, const char *a, size_t alen,
                     const char *b, size_t blen) {
  size_t na = 0, nb = 0, nops = 0, i, j, start, end, as, bs, ac, bc;
  line *la = split_lines(a, alen, &na), *lb = split_lines(b, blen, &nb);
  op *ops = NULL;
  int a_nl = alen == 0 || a[alen - 1] == '\n';
  int b_nl = blen == 0 || b[blen - 1] == '\n';

  if (la == NULL || lb == NULL)
    goto cleanup;
  ops = diff_script(la, na, lb, nb, &nops);
  if (ops == NULL)
    goto cleanup;
  for (i = 0; i < nops && ops[i].kind == ' '; i++)
    ;
  if (i == nops)
    goto cleanup;
  fs_buf_printf(out, "--- %s\toriginal\n+++ %s\tmodified\n", path, path);
  for (i = 0; i < nops;) {
    if (ops[i].kind == ' ') {
      i++;
      continue;
    }
    /* A hunk: from CONTEXT before this change to CONTEXT after the last
     * change that is within 2*CONTEXT of the previous one. */
    start = i > DIFF_CONTEXT ? i - DIFF_CONTEXT : 0;
    end = i;
    for (j = i; j < nops; j++) {
      if (ops[j].kind != ' ')
        end = j;
      else if (j - end > 2 * DIFF_CONTEXT)
        break;
    }
    end = end + DIFF_CONTEXT + 1 < nops ? end + DIFF_CONTEXT + 1 : nops;
    as = ops[start].ai;
    bs = ops[start].bi;
    ac = bc = 0;
    for (j = start; j < end; j++) {
      ac += ops[j].kind != '+';
      bc += ops[j].kind != '-';
    }
    fs_buf_printf(out, "@@ -%zu,%zu +%zu,%zu @@\n", ac ? as + 1 : as, ac,
                  bc ? bs + 1 : bs, bc);
    for (j = start; j < end; j++) {
      if (ops[j].kind == '+')
        put_line(out, '+', &lb[ops[j].bi], !b_nl && ops[j].bi == nb - 1);
      else
        put_line(out, ops[j].kind, &la[ops[j].ai],
                 !a_nl && ops[j].ai == na - 1 &&
                     (ops[j].kind == '-' || !b_nl ? 1 : 0));
    }
    i = end;
  }

cleanup:
  free(ops);
  free(la);
  free(lb);
}
