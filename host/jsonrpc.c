/* jsonrpc.c: see jsonrpc.h. */
#include "jsonrpc.h"

#include "alloc.h"
#include "metrics.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *copy_text(const char *text, size_t len) {
  char *copy = ph__xmalloc(len + 1);

  memcpy(copy, text, len);
  copy[len] = '\0';
  return copy;
}

/* ---- Messages out ---- */

char *ph__jsonrpc_error_text(const char *id_json, int code, const char *message,
                             const char *data_json) {
  cJSON *msg = ph__xcheck(cJSON_CreateObject());
  cJSON *err = ph__xcheck(cJSON_CreateObject());
  char *text;

  ph__xjson_put_string(msg, "jsonrpc", "2.0");
  ph__xjson_put(msg, "id",
                id_json != NULL ? cJSON_CreateRaw(id_json)
                                : cJSON_CreateNull());
  /* Every error answer is written here, so it is counted here. */
  ph__metrics_add(PH__M_RPC_ERRORS, 1, ph__metrics_code_label(code), NULL,
                  NULL);
  ph__xjson_put_number(err, "code", code);
  ph__xjson_put_string(err, "message", message);
  if (data_json != NULL)
    ph__xjson_put(err, "data", cJSON_CreateRaw(data_json));
  ph__xjson_put(msg, "error", err);
  text = ph__xjson_print(msg);
  cJSON_Delete(msg);
  return text;
}

/* ---- UTF-8 and nesting check (the structural precheck) ---- */

/* Bytes that end a run ph__json_precheck passes over without looking at
 * them one by one: PC_STR inside a string ('"', '\\', control characters,
 * non-ASCII), PC_OUT outside one ('"', brackets, control characters but the
 * whitespace among them, non-ASCII). Everything else, the bulk of a reply,
 * costs one table load. Each PC_HIGH16 fills the sixteen entries from its
 * index on, each PC_CTRL8 eight. */
enum { PC_STR = 1, PC_OUT = 2, PC_BOTH = 3 };

#define PC_CTRL8                                                               \
  PC_BOTH, PC_BOTH, PC_BOTH, PC_BOTH, PC_BOTH, PC_BOTH, PC_BOTH, PC_BOTH
#define PC_HIGH16 PC_CTRL8, PC_CTRL8

static const unsigned char pc_stop[256] = {
    [0x00] = PC_CTRL8,  [0x08] = PC_BOTH,   ['\t'] = PC_STR,
    ['\n'] = PC_STR,    [0x0B] = PC_BOTH,   [0x0C] = PC_BOTH,
    ['\r'] = PC_STR,    [0x0E] = PC_BOTH,   [0x0F] = PC_BOTH,
    [0x10] = PC_CTRL8,  [0x18] = PC_CTRL8,  ['"'] = PC_BOTH,
    ['\\'] = PC_STR,    ['['] = PC_OUT,     [']'] = PC_OUT,
    ['{'] = PC_OUT,     ['}'] = PC_OUT,     [0x80] = PC_HIGH16,
    [0x90] = PC_HIGH16, [0xA0] = PC_HIGH16, [0xB0] = PC_HIGH16,
    [0xC0] = PC_HIGH16, [0xD0] = PC_HIGH16, [0xE0] = PC_HIGH16,
    [0xF0] = PC_HIGH16};

/* Runs on every plugin reply and client message, so it skips runs of
 * plain bytes in tight loops, four table loads to a branch, and only
 * looks closely at the bytes pc_stop names. NUL is refused inside strings
 * too, where JSON does not allow it raw either, and so is the escape
 * \u0000: past this check, C strings would silently end there, and a name
 * or URI would name something other than what the client sent. Other raw
 * control characters are refused inside strings (JSON has no place for
 * them there) and outside (where JSON allows only its four whitespace
 * characters, and cJSON would skip any). The byte after a backslash is
 * skipped unseen unless it is NUL or non-ASCII, which are refused: JSON
 * escapes only ASCII, and skipping one byte of a sequence would let invalid
 * UTF-8 through. */
const char *ph__json_precheck(const char *text, size_t len, int max_depth) {
  const unsigned char *p = (const unsigned char *)text, *end = p + len;
  int depth = 0, n;

  for (;;) {
    /* Outside strings: numbers, literals, punctuation, whitespace. */
    while (end - p >= 4 &&
           !((pc_stop[p[0]] | pc_stop[p[1]] | pc_stop[p[2]] | pc_stop[p[3]]) &
             PC_OUT))
      p += 4;
    while (p < end && !(pc_stop[*p] & PC_OUT))
      p++;
    if (p == end)
      return depth != 0 ? "unbalanced brackets" : NULL;
    switch (*p) {
    case '[':
    case '{':
      if (++depth > max_depth)
        return "JSON nested too deeply";
      p++;
      continue;
    case ']':
    case '}':
      if (--depth < 0)
        return "unbalanced brackets";
      p++;
      continue;
    case '\0':
      return "NUL byte in message";
    case '"':
      p++;
      break;
    default:
      if (*p < 0x20)
        return "control character in message";
      if ((n = ph__utf8_length(p, end)) == 0)
        return "invalid UTF-8";
      p += n;
      continue;
    }
    /* Inside a string, until its closing quote. */
    for (;;) {
      /* Not eight bytes at a time: runs between escapes in the text of
       * a result (JSON in a string) are mostly shorter than that, and a
       * word test that fails costs more than the bytes it skips. */
      while (end - p >= 4 &&
             !((pc_stop[p[0]] | pc_stop[p[1]] | pc_stop[p[2]] | pc_stop[p[3]]) &
               PC_STR))
        p += 4;
      while (p < end && !(pc_stop[*p] & PC_STR))
        p++;
      if (p == end)
        return "unterminated string";
      if (*p == '"') {
        p++;
        break;
      }
      if (*p == '\\') {
        if (end - p < 2)
          return "unterminated string";
        if (p[1] == '\0')
          return "NUL byte in message";
        if (p[1] >= 0x80)
          return "invalid UTF-8";
        if (p[1] == 'u' && end - p >= 6 && memcmp(p + 2, "0000", 4) == 0)
          return "\\u0000 in a string";
        p += 2;
      } else if (*p == '\0') {
        return "NUL byte in message";
      } else if (*p < 0x20) {
        return "control character in a string";
      } else {
        if ((n = ph__utf8_length(p, end)) == 0)
          return "invalid UTF-8";
        p += n;
      }
    }
  }
}

/* ---- Values as the client wrote them ---- */

/* An id, a requestId or a progress token goes back exactly as the client
 * wrote it: cJSON keeps numbers as doubles, which changes integers past
 * 2^53, and escapes strings its own way. So these read a value's text out
 * of the message, which the precheck and cJSON have both passed: strings
 * and brackets balance and the grammar holds, and a scan that only follows
 * strings and brackets finds where each value ends. It copies nothing and
 * builds nothing; it reads the members before the one it wants. */

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

const char *ph__jsonrpc_skip_space(const char *p, const char *end) {
  while (p < end && is_space(*p))
    p++;
  return p;
}

/* Past the closing quote of the string whose opening quote is at p. */
static const char *string_end(const char *p, const char *end) {
  const char *q, *b;

  for (p++; (q = memchr(p, '"', (size_t)(end - p))) != NULL; p = q + 1) {
    for (b = q; b > p && b[-1] == '\\'; b--)
      ;
    if ((q - b) % 2 == 0)
      return q + 1; /* Not escaped: an even run of backslashes before it. */
  }
  return end;
}

/* The end of the value that starts at p. Inside a container only strings
 * and brackets matter, and pc_stop finds them with one load a byte. */
static const char *value_end(const char *p, const char *end) {
  int depth = 0;

  if (p < end && *p == '"')
    return string_end(p, end);
  if (p < end && *p != '{' && *p != '[') {
    /* A number or a literal: up to what follows it. */
    while (p < end && *p != ',' && *p != '}' && *p != ']' && !is_space(*p))
      p++;
    return p;
  }
  while (p < end) {
    switch (*p) {
    case '"':
      p = string_end(p, end);
      break;
    case '{':
    case '[':
      depth++;
      p++;
      break;
    case '}':
    case ']':
      if (--depth == 0)
        return p + 1;
      p++;
      break;
    default: /* Nothing else stops it in text the precheck passed. */
      p++;
    }
    while (p < end && !(pc_stop[(unsigned char)*p] & PC_OUT))
      p++;
  }
  return p;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Whether the string q..e (its quotes included) decodes to key, which is
 * ASCII: "i\u0064" is "id" to cJSON, so it is to us. */
static int key_is(const char *q, const char *e, const char *key) {
  static const char unescape[128] = {
      ['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['b'] = '\b',
      ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t'};
  const char *p = q + 1, *stop = e - 1;
  size_t n = strlen(key);
  int c, i;

  if ((size_t)(stop - p) == n && memcmp(p, key, n) == 0)
    return 1;
  if (memchr(p, '\\', (size_t)(stop - p)) == NULL)
    return 0;
  for (; p < stop; p++, key++) {
    c = (unsigned char)*p;
    if (c == '\\' && p[1] == 'u' && stop - p >= 6) {
      for (c = 0, i = 2; i < 6; i++) {
        int d = hex_digit(p[i]);

        if (d < 0)
          return 0; /* Unparsed text (see ph__jsonrpc_id_text) may hold it. */
        c = c << 4 | d;
      }
      p += 5;
    } else if (c == '\\' && (unsigned char)p[1] < 128) {
      c = unescape[(unsigned char)*++p];
    }
    if (*key == '\0' || c != (unsigned char)*key)
      return 0;
  }
  return *key == '\0';
}

/* The value of the first member called key of the object whose text is
 * obj..end (cJSON too takes the first of equal keys), or NULL; its end goes
 * to *vend. obj NULL or not an object: NULL. */
const char *ph__jsonrpc_member(const char *obj, const char *end,
                               const char *key, const char **vend) {
  const char *p, *k, *kend, *v;

  if (obj == NULL || obj >= end || *obj != '{')
    return NULL;
  for (p = obj + 1;; p++) {
    p = ph__jsonrpc_skip_space(p, end);
    if (p >= end || *p != '"')
      return NULL;
    k = p;
    kend = string_end(p, end);
    p = ph__jsonrpc_skip_space(kend, end);
    if (p >= end || *p != ':')
      return NULL;
    v = ph__jsonrpc_skip_space(p + 1, end);
    p = value_end(v, end);
    if (key_is(k, kend, key)) {
      *vend = p;
      return v;
    }
    p = ph__jsonrpc_skip_space(p, end);
    if (p >= end || *p != ',')
      return NULL;
  }
}

/* What the value v..e is as an id: PH__ID_NONE (v NULL), a string, a number in
 * JSON's grammar whose value is an integer (1e3 and 2.0 are, 1.5 is not)
 * or is not, or anything else (null, true, an array, and the numbers
 * cJSON takes but JSON does not, such as 01 or 1.). Only the text says
 * whether 9007199254740993.5 is an integer. */

int ph__jsonrpc_id_kind(const char *v, const char *e) {
  const char *p = v, *int_start, *int_end, *frac = NULL, *frac_end = NULL, *q;
  long exp = 0, zeros = 0, nfrac = 0;
  int negative_exp = 0;

  if (v == NULL || v == e)
    return PH__ID_NONE; /* v == e: unparsed text that ends after "id": */
  if (*v == '"')
    return PH__ID_STRING;
  if (p < e && *p == '-')
    p++;
  int_start = p;
  if (p == e || *p < '0' || *p > '9')
    return PH__ID_OTHER;
  if (*p == '0')
    p++;
  else
    while (p < e && *p >= '0' && *p <= '9')
      p++;
  int_end = p;
  if (p < e && *p == '.') {
    frac = ++p;
    while (p < e && *p >= '0' && *p <= '9')
      p++;
    if (p == frac)
      return PH__ID_OTHER;
    frac_end = p;
    nfrac = frac_end - frac;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < e && (*p == '+' || *p == '-'))
      negative_exp = *p++ == '-';
    if (p == e || *p < '0' || *p > '9')
      return PH__ID_OTHER;
    for (; p < e && *p >= '0' && *p <= '9'; p++)
      if (exp < 1000000000L)
        exp = exp * 10 + (*p - '0');
  }
  if (p != e)
    return PH__ID_OTHER;
  /* digits * 10^(exp - nfrac) is an integer when the digits end in at
   * least nfrac - exp zeros, or are all zero. */
  q = frac_end;
  if (frac != NULL)
    for (; q > frac && q[-1] == '0'; q--)
      zeros++;
  if (frac == NULL || q == frac) {
    for (q = int_end; q > int_start && q[-1] == '0'; q--)
      zeros++;
    if (q == int_start)
      return PH__ID_INTEGER; /* Zero. */
  }
  if (negative_exp)
    exp = -exp;
  return exp - nfrac + zeros >= 0 ? PH__ID_INTEGER : PH__ID_FRACTION;
}

/* A request id: a string or an integer (MCP allows no other). An id that
 * is worth echoing on an error: any string or number (JSON-RPC's). */
int ph__jsonrpc_id_serves(int kind) {
  return kind == PH__ID_STRING || kind == PH__ID_INTEGER;
}

int ph__jsonrpc_id_echoes(int kind) {
  return ph__jsonrpc_id_serves(kind) || kind == PH__ID_FRACTION;
}

/* The text of the value at path (member names, NULL-terminated) in the
 * object text..end, if it is one ph__jsonrpc_id_echoes() accepts; else NULL. */
const char *ph__jsonrpc_value_at(const char *text, const char *end,
                                 const char *const *path, const char **vend) {
  const char *v = text;

  *vend = end;
  for (; *path != NULL && v != NULL; path++)
    v = ph__jsonrpc_member(v, *vend, *path, vend);
  return ph__jsonrpc_id_echoes(ph__jsonrpc_id_kind(v, *vend)) ? v : NULL;
}

/* Parses a message the precheck passed: cJSON, then nothing but whitespace
 * after the value, which cJSON would silently ignore. */
cJSON *ph__json_parse_prechecked(const char *text, size_t len,
                                 const char **why) {
  const char *end = NULL;
  cJSON *root;

  root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (root == NULL) {
    *why = "not valid JSON";
    return NULL;
  }
  if (ph__jsonrpc_skip_space(end, text + len) != text + len) {
    cJSON_Delete(root);
    *why = "bytes after the JSON value";
    return NULL;
  }
  return root;
}

const char *ph__json_check_values(const char *text, size_t len,
                                  int max_values) {
  static _Thread_local char reason[96];
  const char *p = text, *end = text + len;
  long values = 1;

  if (len / 2 < (size_t)max_values)
    return NULL;
  /* Every value but the first follows a comma or opens a container's
   * first place; strings are skipped whole, so their commas do not count.
   * (An empty container counts one value too many, harmlessly.) */
  while (p < end) {
    switch (*p) {
    case '"':
      p = string_end(p, end);
      continue;
    case ',':
    case '[':
    case '{':
      if (++values > max_values) {
        snprintf(reason, sizeof(reason),
                 "more than %d JSON values (limits.max_json_values)",
                 max_values);
        return reason;
      }
      break;
    }
    p++;
  }
  return NULL;
}

cJSON *ph__json_parse_message(const char *text, size_t len, int max_depth,
                              int max_values, const char **why) {
  *why = ph__json_precheck(text, len, max_depth);
  if (*why == NULL)
    *why = ph__json_check_values(text, len, max_values);
  return *why == NULL ? ph__json_parse_prechecked(text, len, why) : NULL;
}

char *ph__jsonrpc_id_text(const char *text, size_t len) {
  static const char *const path[] = {"id", NULL};
  const char *end = text + len, *v, *e;

  text = ph__jsonrpc_skip_space(text, end);
  v = ph__jsonrpc_value_at(text, end, path, &e);
  return v ? copy_text(v, (size_t)(e - v)) : NULL;
}

/* ---- Batches ---- */

/* The next member of the array whose text goes on at *at (past its "[" or
 * a comma), or NULL after the last; its end goes to *mend and *at moves
 * past it and its comma. */
const char *ph__jsonrpc_next_member(const char **at, const char *end,
                                    const char **mend) {
  const char *p = ph__jsonrpc_skip_space(*at, end), *m;

  if (p >= end || *p == ']')
    return NULL;
  m = p;
  *mend = p = value_end(p, end);
  p = ph__jsonrpc_skip_space(p, end);
  *at = p < end && *p == ',' ? p + 1 : end;
  return m;
}

/* The members of the array at text, counted up to max + 1. It only
 * follows strings and brackets, so it runs before parsing: a batch past
 * the limit never becomes a tree of two million nodes. */
int ph__jsonrpc_batch_members(const char *text, const char *end, int max) {
  const char *at = text + 1, *mend;
  int n = 0;

  while (n <= max && ph__jsonrpc_next_member(&at, end, &mend) != NULL)
    n++;
  return n;
}

/* A batch's answer grows in one buffer ("[" answer "," answer ...) as its
 * members finish, in the order they finish. Members' answers add up to at
 * most max_message_bytes: one that would pass it is answered with a short
 * error instead, so every request still gets an answer and the whole stays
 * within the limit plus one such error per member. */
struct ph__jsonrpc_batch {
  ph__outlet *parent;
  int pending; /* Members not finished, plus one until all have started. */
  size_t room; /* Bytes of answers still allowed. */
  char *buf;   /* The answer so far, from its "[". */
  size_t len, cap;
};

typedef struct batch_part {
  ph__outlet base;
  ph__jsonrpc_batch *b;
} batch_part;

static void part_send(ph__outlet *o, const char *json, size_t len) {
  batch_part *p = (batch_part *)o;

  p->b->parent->send(p->b->parent, json, len);
}

static void batch_add(ph__jsonrpc_batch *b, const char *json, size_t len) {
  size_t need = b->len + len + 2; /* Its "[" or ",", and the final "]". */

  if (need > b->cap) {
    b->cap = b->cap ? b->cap : 256;
    while (b->cap < need)
      b->cap *= 2;
    b->buf = ph__xrealloc(b->buf, b->cap);
  }
  b->buf[b->len] = b->len == 0 ? '[' : ',';
  memcpy(b->buf + b->len + 1, json, len);
  b->len += len + 1;
}

static void part_finish(ph__outlet *o, int outcome, const char *json,
                        size_t len) {
  batch_part *p = (batch_part *)o;
  ph__jsonrpc_batch *b = p->b;
  const char *id, *id_end;
  char *id_text, *text;

  (void)outcome;
  free(p);
  if (json != NULL && len <= b->room) {
    b->room -= len;
    batch_add(b, json, len);
  } else if (json != NULL) {
    /* The answer is the protocol's own, its id as the client wrote it. */
    id = ph__jsonrpc_member(json, json + len, "id", &id_end);
    id_text = id ? copy_text(id, (size_t)(id_end - id)) : NULL;
    text = ph__jsonrpc_error_text(
        id_text, PH__RPC_INTERNAL_ERROR,
        "Internal error: this answer would take the batch's past "
        "limits.max_message_bytes; send the request on its own",
        NULL);
    batch_add(b, text, strlen(text));
    free(text);
    free(id_text);
  }
  if (--b->pending > 0)
    return;
  if (b->len == 0) {
    b->parent->finish(b->parent, PH__OUTCOME_ACCEPTED, NULL, 0);
  } else {
    b->buf[b->len++] = ']';
    b->parent->finish(b->parent, PH__OUTCOME_ANSWERED, b->buf, b->len);
  }
  free(b->buf);
  free(b);
}

ph__jsonrpc_batch *ph__jsonrpc_batch_new(ph__outlet *parent, size_t room,
                                         int members) {
  ph__jsonrpc_batch *b = ph__xcalloc(1, sizeof(*b));

  b->parent = parent;
  b->room = room;
  b->pending = members + 1; /* +1 until all are started. */
  return b;
}

ph__outlet *ph__jsonrpc_batch_part(ph__jsonrpc_batch *b) {
  batch_part *p = ph__xcalloc(1, sizeof(*p));

  p->base.send = part_send;
  p->base.finish = part_finish;
  p->b = b;
  return &p->base;
}

void ph__jsonrpc_batch_started(ph__jsonrpc_batch *b) {
  part_finish(ph__jsonrpc_batch_part(b), PH__OUTCOME_ANSWERED, NULL, 0);
}
