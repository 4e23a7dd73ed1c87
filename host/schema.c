/* schema.c: JSON Schema (draft-07 and 2020-12) compiled to a node graph.
 *
 * Compilation turns every schema object into a node holding its keywords in
 * parsed form (numbers, counts, compiled regexes, child nodes). "$ref" is
 * resolved against a private copy of the document after the first pass, from
 * a work list rather than by recursion, so long reference chains cost no
 * stack; a table from JSON value to node makes every subschema compile once
 * and lets recursive references form cycles in the graph.
 *
 * Validation walks the graph with a per-call context (instance path, depth,
 * step count, first error), so a compiled schema is never written to and can
 * be shared between threads. glibc's regexec() locks internally.
 */
#include "schema.h"

#include "alloc.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h> /* MB_CUR_MAX */
#include <string.h>

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* Instance types as a bit set; a whole number is both NUMBER and INTEGER. */
enum {
  T_NULL = 1u << 0,
  T_BOOLEAN = 1u << 1,
  T_OBJECT = 1u << 2,
  T_ARRAY = 1u << 3,
  T_NUMBER = 1u << 4,
  T_INTEGER = 1u << 5,
  T_STRING = 1u << 6
};

static const struct {
  unsigned bit;
  const char *name;
} type_names[] = {{T_NULL, "null"},     {T_BOOLEAN, "boolean"},
                  {T_OBJECT, "object"}, {T_ARRAY, "array"},
                  {T_NUMBER, "number"}, {T_INTEGER, "integer"},
                  {T_STRING, "string"}};

enum dialect { DRAFT_07, DRAFT_2020_12 };

enum format {
  FMT_NONE,
  FMT_DATE,
  FMT_DATE_TIME,
  FMT_TIME,
  FMT_EMAIL,
  FMT_URI,
  FMT_UUID,
  FMT_IPV4
};

/* Which optional numeric keywords a node has. */
enum {
  HAS_MINIMUM = 1u << 0,
  HAS_MAXIMUM = 1u << 1,
  HAS_EXCLUSIVE_MINIMUM = 1u << 2,
  HAS_EXCLUSIVE_MAXIMUM = 1u << 3,
  HAS_MULTIPLE_OF = 1u << 4
};

typedef struct node node;

/* A schema under a property name (properties, dependentSchemas). */
struct named {
  const char *name; /* Points into the schema's document copy. */
  node *schema;
};

/* A schema for the property names a regex matches (patternProperties). */
struct patterned {
  regex_t re;
  node *schema;
};

/* Properties required when another one is present (dependentRequired). */
struct dependency {
  const char *name;    /* The property that triggers the requirement. */
  const cJSON *needed; /* Array of property names, in the document copy. */
};

struct node {
  int boolean;              /* 1 for true, 0 for false, -1 for an object. */
  node *ref;                /* "$ref" target, or NULL. */
  unsigned types;           /* Allowed types; 0 when "type" is absent. */
  const cJSON *enum_values; /* Array in the document copy, or NULL. */
  const cJSON *const_value; /* Value in the document copy, or NULL. */

  unsigned numeric; /* HAS_* flags for the fields below. */
  double minimum, maximum, exclusive_minimum, exclusive_maximum;
  double multiple_of;

  size_t min_length, max_length; /* In code points. */
  regex_t *pattern;
  const char *pattern_text; /* The ECMA source, for messages. */
  enum format format;

  node **prefix; /* Positional item schemas. */
  size_t nprefix;
  node *items; /* Schema for the items after the prefix. */
  size_t min_items, max_items;
  int unique_items;
  node *contains;
  size_t min_contains, max_contains;

  struct named *props; /* Sorted by name for bsearch(). */
  size_t nprops;
  struct patterned *pattern_props;
  size_t npattern_props;
  node *additional_props;
  node *property_names;
  const cJSON *required; /* Array of names in the document copy, or NULL. */
  size_t min_props, max_props;
  struct dependency *dep_required;
  size_t ndep_required;
  struct named *dep_schemas;
  size_t ndep_schemas;

  node **all_of, **any_of, **one_of;
  size_t nall_of, nany_of, none_of;
  node *not_schema;
  node *if_schema, *then_schema, *else_schema;
};

struct ph__schema {
  cJSON *doc; /* Private copy; nodes point into it. */
  node *root;
  node **nodes; /* Every node, for ph__schema_free(). */
  size_t nnodes, cap_nodes;
};

/* A growable NUL-terminated string (JSON pointers, messages, regexes). */
struct buf {
  char *data;
  size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    char *p;
    while (cap < b->len + n + 1)
      cap *= 2;
    p = ph__xrealloc(b->data, cap);
    if (!p)
      return -1;
    b->data = p;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static int buf_adds(struct buf *b, const char *s) {
  return buf_add(b, s, strlen(s));
}

static int buf_addc(struct buf *b, char ch) {
  return buf_add(b, &ch, 1);
}

/* Appends "/" and a JSON pointer token, escaping '~' and '/' (RFC 6901). */
static int buf_add_token(struct buf *b, const char *token) {
  if (buf_addc(b, '/'))
    return -1;
  for (; *token; token++) {
    int rc = *token == '~'   ? buf_add(b, "~0", 2)
             : *token == '/' ? buf_add(b, "~1", 2)
                             : buf_addc(b, *token);
    if (rc)
      return -1;
  }
  return 0;
}

static void buf_truncate(struct buf *b, size_t len) {
  b->len = len;
  if (b->data)
    b->data[len] = '\0';
}

static char *vformat(const char *fmt, va_list ap) {
  va_list copy;
  char *out;
  int n;

  va_copy(copy, ap);
  n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n < 0)
    return NULL;
  out = ph__xmalloc((size_t)n + 1);
  if (out)
    vsnprintf(out, (size_t)n + 1, fmt, ap);
  return out;
}

static char *format(const char *fmt, ...) PRINTF_LIKE(1, 2);
static char *format(const char *fmt, ...) {
  va_list ap;
  char *out;

  va_start(ap, fmt);
  out = vformat(fmt, ap);
  va_end(ap);
  return out;
}

static char *copy_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *out = ph__xmalloc(n);
  if (out)
    memcpy(out, s, n);
  return out;
}

/* Returns array grown to hold at least need elements of size elem (and
 * updates *cap), or NULL with array untouched. */
static void *grow(void *array, size_t *cap, size_t need, size_t elem) {
  size_t n = *cap ? *cap : 8;
  void *bigger;

  if (need <= *cap)
    return array;
  while (n < need)
    n *= 2;
  bigger = ph__xrealloc(array, n * elem);
  if (bigger)
    *cap = n;
  return bigger;
}

/* ---- JSON values: equality and hashing ---------------------------------- */

static unsigned type_of(const cJSON *j) {
  if (cJSON_IsNull(j))
    return T_NULL;
  if (cJSON_IsBool(j))
    return T_BOOLEAN;
  if (cJSON_IsObject(j))
    return T_OBJECT;
  if (cJSON_IsArray(j))
    return T_ARRAY;
  if (cJSON_IsString(j))
    return T_STRING;
  if (cJSON_IsNumber(j)) {
    double d = j->valuedouble;
    return isfinite(d) && d == floor(d) ? T_NUMBER | T_INTEGER : T_NUMBER;
  }
  return 0;
}

static const char *type_name(const cJSON *j) {
  unsigned t = type_of(j);
  size_t i;

  if (t & T_INTEGER)
    return "integer";
  for (i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
    if (t & type_names[i].bit)
      return type_names[i].name;
  return "unknown";
}

/* JSON equality: numbers by value (1 == 1.0), objects regardless of order. */
static int json_equal(const cJSON *a, const cJSON *b) {
  const cJSON *x;
  size_t na = 0, nb = 0;

  if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
    return a->valuedouble == b->valuedouble;
  if ((a->type & 0xff) != (b->type & 0xff))
    return 0;
  if (cJSON_IsString(a))
    return strcmp(a->valuestring, b->valuestring) == 0;
  if (cJSON_IsArray(a)) {
    for (a = a->child, b = b->child; a && b; a = a->next, b = b->next)
      if (!json_equal(a, b))
        return 0;
    return !a && !b;
  }
  if (cJSON_IsObject(a)) {
    for (x = a->child; x; x = x->next)
      na++;
    for (x = b->child; x; x = x->next)
      nb++;
    if (na != nb)
      return 0;
    for (x = a->child; x; x = x->next) {
      const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
      if (!y || !json_equal(x, y))
        return 0;
    }
    return 1;
  }
  return 1; /* true, false, null: equal types are equal values. */
}

static uint64_t hash_mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

static uint64_t hash_text(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

/* A hash consistent with json_equal(): equal values hash equally. */
static uint64_t json_hash(const cJSON *j) {
  const cJSON *x;
  uint64_t h, sum = 0;

  if (cJSON_IsNumber(j)) {
    double d = j->valuedouble == 0 ? 0.0 : j->valuedouble; /* -0 == 0 */
    memcpy(&h, &d, sizeof h);
    return hash_mix(1, h);
  }
  if (cJSON_IsString(j))
    return hash_mix(2, hash_text(j->valuestring));
  if (cJSON_IsArray(j)) {
    h = 3;
    for (x = j->child; x; x = x->next)
      h = hash_mix(h, json_hash(x));
    return h;
  }
  if (cJSON_IsObject(j)) {
    /* A sum, so member order does not matter. */
    for (x = j->child; x; x = x->next)
      sum += hash_mix(hash_text(x->string), json_hash(x));
    return hash_mix(4, sum);
  }
  return hash_mix(5, (uint64_t)(j->type & 0xff));
}

/* ---- Formats --------------------------------------------------------- */

static int digits(const char *s, int n, int *out) {
  int v = 0, i;
  for (i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i]))
      return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 1;
}

/* RFC 3339 full-date: YYYY-MM-DD with a day that exists. */
static int is_full_date(const char *s) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y, m, d, max;

  if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &m) ||
      s[7] != '-' || !digits(s + 8, 2, &d))
    return 0;
  if (m < 1 || m > 12 || d < 1)
    return 0;
  max = days[m - 1];
  if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
    max = 29;
  return d <= max;
}

/* RFC 3339 full-time: HH:MM:SS[.frac](Z|+HH:MM|-HH:MM). A leap second is
 * only valid at 23:59 UTC. */
static int is_full_time(const char *s) {
  int h, m, sec, oh = 0, om = 0, sign = 0, utc;

  if (!digits(s, 2, &h) || s[2] != ':' || !digits(s + 3, 2, &m) ||
      s[5] != ':' || !digits(s + 6, 2, &sec))
    return 0;
  s += 8;
  if (*s == '.') {
    if (!isdigit((unsigned char)s[1]))
      return 0;
    for (s++; isdigit((unsigned char)*s); s++)
      ;
  }
  if ((*s == 'Z' || *s == 'z') && s[1] == '\0') {
    /* UTC: no offset. */
  } else if (*s == '+' || *s == '-') {
    sign = *s == '+' ? 1 : -1;
    if (!digits(s + 1, 2, &oh) || s[3] != ':' || !digits(s + 4, 2, &om) ||
        s[6] != '\0' || oh > 23 || om > 59)
      return 0;
  } else {
    return 0;
  }
  if (h > 23 || m > 59 || sec > 60)
    return 0;
  utc = ((h * 60 + m - sign * (oh * 60 + om)) % 1440 + 1440) % 1440;
  return sec < 60 || utc == 23 * 60 + 59;
}

static int is_date_time(const char *s) {
  return strlen(s) > 11 && is_full_date(s) && (s[10] == 'T' || s[10] == 't') &&
         is_full_time(s + 11);
}

static int is_atext(unsigned char ch) {
  return isalnum(ch) || (ch && strchr("!#$%&'*+-/=?^_`{|}~", ch));
}

/* A DNS name made of letters, digits and inner hyphens, dot separated. */
static int is_hostname(const char *s, size_t n) {
  size_t i, label = 0;

  if (n == 0 || n > 253)
    return 0;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '.') {
      if (label == 0 || s[i - 1] == '-')
        return 0;
      label = 0;
    } else if (isalnum(ch) || (ch == '-' && label > 0)) {
      if (++label > 63)
        return 0;
    } else {
      return 0;
    }
  }
  return label > 0 && s[n - 1] != '-';
}

/* RFC 5321 mailbox, simplified: dot-atom or quoted local part, then a host
 * name or an address literal in brackets. */
static int is_email(const char *s) {
  const char *at = strrchr(s, '@'), *p;
  size_t n;

  if (!at || at == s)
    return 0;
  if (*s == '"') {
    if (at - s < 2 || at[-1] != '"')
      return 0;
    for (p = s + 1; p < at - 1; p++)
      if ((unsigned char)*p < 0x20 || *p == '"')
        return 0;
  } else {
    if (*s == '.' || at[-1] == '.')
      return 0;
    for (p = s; p < at; p++)
      if (!(is_atext((unsigned char)*p) || (*p == '.' && p[1] != '.')))
        return 0;
  }
  n = strlen(at + 1);
  if (at[1] == '[')
    return n > 2 && at[n] == ']';
  return is_hostname(at + 1, n);
}

static int is_uri_char(unsigned char ch) {
  return isalnum(ch) || (ch && strchr("-._~:/?#[]@!$&'()*+,;=", ch));
}

/* RFC 3986 absolute URI: a scheme, then characters a URI may contain (with
 * well-formed percent escapes), one fragment at most, and when there is an
 * authority a numeric port. */
static int is_uri(const char *s) {
  const char *p = s, *auth, *end, *host, *q;

  if (!isalpha((unsigned char)*p))
    return 0;
  while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
    p++;
  if (*p != ':')
    return 0;
  for (q = p + 1; *q; q++) {
    if (*q == '%') {
      if (!isxdigit((unsigned char)q[1]) || !isxdigit((unsigned char)q[2]))
        return 0;
      q += 2;
    } else if (!is_uri_char((unsigned char)*q)) {
      return 0;
    }
  }
  if ((q = strchr(p + 1, '#')) && strchr(q + 1, '#'))
    return 0;
  if (strncmp(p + 1, "//", 2) != 0)
    return 1;
  auth = p + 3;
  end = auth + strcspn(auth, "/?#");
  host = auth;
  for (q = auth; q < end; q++)
    if (*q == '@')
      host = q + 1;
  if (*host == '[') {
    while (host < end && *host != ']')
      host++;
    if (host == end)
      return 0;
  }
  while (host < end && *host != ':')
    host++;
  for (q = host < end ? host + 1 : end; q < end; q++)
    if (!isdigit((unsigned char)*q))
      return 0;
  return 1;
}

static int is_uuid(const char *s) {
  int i;
  for (i = 0; i < 36; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
      return 0;
  }
  return s[36] == '\0';
}

/* Dotted quad, each part 0-255 without leading zeros. */
static int is_ipv4(const char *s) {
  int part, n, v;
  for (part = 0; part < 4; part++) {
    if (part > 0 && *s++ != '.')
      return 0;
    for (n = 0, v = 0; isdigit((unsigned char)s[n]) && n < 4; n++)
      v = v * 10 + (s[n] - '0');
    if (n == 0 || n > 3 || v > 255 || (n > 1 && *s == '0'))
      return 0;
    s += n;
  }
  return *s == '\0';
}

static int format_ok(enum format f, const char *s) {
  switch (f) {
  case FMT_DATE:
    return strlen(s) == 10 && is_full_date(s);
  case FMT_DATE_TIME:
    return is_date_time(s);
  case FMT_TIME:
    return is_full_time(s);
  case FMT_EMAIL:
    return is_email(s);
  case FMT_URI:
    return is_uri(s);
  case FMT_UUID:
    return is_uuid(s);
  case FMT_IPV4:
    return is_ipv4(s);
  case FMT_NONE:
    break;
  }
  return 1;
}

static const char *format_names[] = {NULL,    "date", "date-time", "time",
                                     "email", "uri",  "uuid",      "ipv4"};

/* ---- ECMA-262 regex to POSIX ERE --------------------------------------- */

struct regex_reader {
  const char *p;   /* Next character of the ECMA source. */
  struct buf out;  /* POSIX ERE text. */
  const char *why; /* Reason the pattern is refused. */
};

static int hex_value(const char *s, int n, unsigned *out) {
  unsigned v = 0;
  int i;
  for (i = 0; i < n; i++) {
    int ch = (unsigned char)s[i];
    if (!isxdigit(ch))
      return 0;
    v = v * 16 + (unsigned)(isdigit(ch) ? ch - '0' : tolower(ch) - 'a' + 10);
  }
  *out = v;
  return 1;
}

/* Reads \xHH or \uHHHH (with a surrogate pair) after the backslash and
 * letter; returns the code point or -1. */
static long read_hex_escape(struct regex_reader *r, char kind) {
  unsigned cp, lo;

  if (kind == 'x') {
    if (!hex_value(r->p, 2, &cp))
      return -1;
    r->p += 2;
    return (long)cp;
  }
  if (!hex_value(r->p, 4, &cp))
    return -1;
  r->p += 4;
  if (cp >= 0xd800 && cp < 0xdc00 && r->p[0] == '\\' && r->p[1] == 'u' &&
      hex_value(r->p + 2, 4, &lo) && lo >= 0xdc00 && lo < 0xe000) {
    r->p += 6;
    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
  }
  return (long)cp;
}

static int add_utf8(struct buf *b, unsigned long cp) {
  char s[4];
  size_t n;

  if (cp < 0x80) {
    s[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    s[0] = (char)(0xc0 | (cp >> 6));
    s[1] = (char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    s[0] = (char)(0xe0 | (cp >> 12));
    s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    s[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    s[0] = (char)(0xf0 | (cp >> 18));
    s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    s[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  return buf_add(b, s, n);
}

/* A literal character outside brackets. Multi-byte characters go in a group
 * so that a following quantifier applies to the whole character. */
static int emit_literal(struct buf *b, unsigned long cp) {
  if (cp >= 0x80)
    return buf_addc(b, '(') || add_utf8(b, cp) || buf_addc(b, ')');
  if (strchr(".[]\\()*+?{}|^$", (int)cp))
    if (buf_addc(b, '\\'))
      return -1;
  return buf_addc(b, (char)cp);
}

static long control_escape(char e) {
  switch (e) {
  case 't':
    return '\t';
  case 'n':
    return '\n';
  case 'r':
    return '\r';
  case 'f':
    return '\f';
  case 'v':
    return '\v';
  }
  return -1;
}

static void set_range(unsigned char *set, int lo, int hi) {
  for (; lo <= hi; lo++)
    set[lo] = 1;
}

/* Adds the characters of \d \w \s to a bracket set. */
static void set_class(unsigned char *set, char cls) {
  if (cls == 'd' || cls == 'w')
    set_range(set, '0', '9');
  if (cls == 'w') {
    set_range(set, 'a', 'z');
    set_range(set, 'A', 'Z');
    set['_'] = 1;
  }
  if (cls == 's') {
    set[' '] = 1;
    set_range(set, '\t', '\r');
  }
}

/* Reads one bracket atom: returns a character, -2 when a class escape was
 * added to set, or -1 with r->why set. */
static long bracket_atom(struct regex_reader *r, unsigned char *set) {
  unsigned char ch = (unsigned char)*r->p++;
  long cp;

  if (ch >= 0x80) {
    r->why = "non-ASCII character in a character class";
    return -1;
  }
  if (ch != '\\')
    return ch;
  if (*r->p == '\0') {
    r->why = "trailing backslash";
    return -1;
  }
  ch = (unsigned char)*r->p++;
  if (ch >= 0x80) {
    /* Escaped or not, it would index past the ASCII set. */
    r->why = "non-ASCII character in a character class";
    return -1;
  }
  if (ch == 'd' || ch == 'w' || ch == 's') {
    set_class(set, (char)ch);
    return -2;
  }
  if (ch == 'D' || ch == 'W' || ch == 'S') {
    r->why = "negated class escape inside a character class";
    return -1;
  }
  if (ch == 'b')
    return '\b';
  if ((cp = control_escape((char)ch)) >= 0)
    return cp;
  if (ch == 'x' || ch == 'u') {
    cp = read_hex_escape(r, (char)ch);
    if (cp < 0 || cp >= 0x80 || cp == 0) {
      r->why = "unsupported escape in a character class";
      return -1;
    }
    return cp;
  }
  if (ch && !isalnum(ch))
    return ch;
  r->why = "unsupported escape in a character class";
  return -1;
}

/* Emits a class of everything but the ASCII characters in rest (first is
 * "]" when ']' is among them: POSIX reads it literally only up front). In a
 * single-byte locale regexec() sees UTF-8 bytes, so a non-ASCII character is
 * spelled out as a lead byte and its continuation bytes: one character, as
 * ECMA counts. */
static int emit_negated(struct buf *b, const char *first, const char *rest) {
  int bytes = MB_CUR_MAX == 1;
  return (bytes && buf_addc(b, '(')) || buf_adds(b, "[^") ||
         buf_adds(b, first) || (bytes && buf_adds(b, "\x80-\xff")) ||
         buf_adds(b, rest) || buf_addc(b, ']') ||
         (bytes && buf_adds(b, "|[\xc0-\xff][\x80-\xbf]*)"));
}

/* Translates [...] (r->p just past '['). The set is re-emitted in an order
 * POSIX reads literally: ']' first, '[' and '^' late, '-' last. */
static int translate_bracket(struct regex_reader *r) {
  unsigned char set[128] = {0};
  struct buf body = {NULL, 0, 0};
  int negated = 0, empty = 1, c, rc;
  long lo, hi;

  if (*r->p == '^') {
    negated = 1;
    r->p++;
  }
  while (*r->p != ']') {
    if (*r->p == '\0') {
      r->why = "unterminated character class";
      return -1;
    }
    if ((lo = bracket_atom(r, set)) == -1)
      return -1;
    if (lo >= 0 && r->p[0] == '-' && r->p[1] != ']' && r->p[1] != '\0') {
      r->p++;
      if ((hi = bracket_atom(r, set)) == -1)
        return -1;
      if (hi == -2) {
        set[lo] = 1;
        set['-'] = 1;
      } else if (hi < lo) {
        r->why = "range out of order in a character class";
        return -1;
      } else {
        set_range(set, (int)lo, (int)hi);
      }
    } else if (lo >= 0) {
      set[lo] = 1;
    }
  }
  r->p++;
  for (c = 1; c < 128; c++)
    if (set[c])
      empty = 0;
  if (empty) {
    if (!negated) {
      r->why = "empty character class";
      return -1;
    }
    /* [^] is any character; POSIX '.' is, without REG_NEWLINE. */
    return MB_CUR_MAX == 1 ? emit_negated(&r->out, "", "")
                           : buf_addc(&r->out, '.');
  }
  if (!negated && set['^']) {
    int only = 1;
    for (c = 1; c < 128; c++)
      if (set[c] && c != '^')
        only = 0;
    if (only)
      return buf_add(&r->out, "\\^", 2);
  }
  rc = 0;
  for (c = 1; c < 128 && rc == 0; c++)
    if (set[c] && !strchr("]^-[", c))
      rc = buf_addc(&body, (char)c);
  if (rc == 0 && set['['])
    rc = buf_addc(&body, '[');
  /* "[^-]" would negate: a lone '^' and '-' go as "[-^]". */
  if (rc == 0 && set['-'] && !negated && !set[']'] && body.len == 0)
    rc = buf_add(&body, "-^", 2);
  else if (rc == 0)
    rc = (set['^'] && buf_addc(&body, '^')) ||
         (set['-'] && buf_addc(&body, '-'));
  if (rc == 0)
    rc = negated
             ? emit_negated(&r->out, set[']'] ? "]" : "",
                            body.data ? body.data : "")
             : buf_addc(&r->out, '[') || (set[']'] && buf_addc(&r->out, ']')) ||
                   buf_adds(&r->out, body.data ? body.data : "") ||
                   buf_addc(&r->out, ']');
  free(body.data);
  return rc;
}

/* Copies {n}, {n,} or {n,m}; returns 0 when the brace is no quantifier
 * (ECMA then reads it literally). */
static int quantifier_length(const char *p) {
  const char *q = p + 1;
  if (!isdigit((unsigned char)*q))
    return 0;
  while (isdigit((unsigned char)*q))
    q++;
  if (*q == ',')
    for (q++; isdigit((unsigned char)*q); q++)
      ;
  return *q == '}' ? (int)(q - p + 1) : 0;
}

static int translate_escape(struct regex_reader *r) {
  char e = *r->p;
  long cp;

  if (e == '\0') {
    r->why = "trailing backslash";
    return -1;
  }
  r->p++;
  switch (e) {
  case 'd':
    return buf_adds(&r->out, "[0-9]");
  case 'D':
    return emit_negated(&r->out, "", "0-9");
  case 'w':
    return buf_adds(&r->out, "[0-9A-Za-z_]");
  case 'W':
    return emit_negated(&r->out, "", "0-9A-Za-z_");
  case 's':
    return buf_adds(&r->out, "[[:space:]]");
  case 'S':
    return emit_negated(&r->out, "", "[:space:]");
  case 'x':
  case 'u':
    cp = read_hex_escape(r, e);
    if (cp <= 0) {
      r->why = "bad or NUL \\x or \\u escape";
      return -1;
    }
    return emit_literal(&r->out, (unsigned long)cp);
  case 'b':
  case 'B':
    r->why = "word boundaries are not supported";
    return -1;
  }
  if ((cp = control_escape(e)) >= 0)
    return buf_addc(&r->out, (char)cp);
  if (e && !isalnum((unsigned char)e))
    return emit_literal(&r->out, (unsigned char)e);
  r->why = isdigit((unsigned char)e) ? "backreferences are not supported"
                                     : "unsupported escape";
  return -1;
}

/* After a quantifier (and its lazy '?'): ECMA has nothing for another one
 * to repeat ("a++", "a?{2}"), and glibc's regcomp, which takes them,
 * copies the tree once per quantifier, so a run of them exhausts memory. */
static int refuse_stacked(struct regex_reader *r) {
  if (*r->p != '*' && *r->p != '+' && *r->p != '?' &&
      !(*r->p == '{' && quantifier_length(r->p) > 0))
    return 0;
  r->why = "nothing to repeat: a quantifier follows a quantifier";
  return -1;
}

/* Translates an ECMA-262 pattern; returns malloc'd ERE text or NULL with
 * *why set. ECMA '.' excludes line terminators, POSIX '.' does not. Lazy
 * quantifiers become greedy: only whether a match exists matters here. */
static char *translate_regex(const char *src, const char **why) {
  struct regex_reader r = {src, {NULL, 0, 0}, "out of memory"};
  int rc = 0, n;

  while (rc == 0 && *r.p) {
    char ch = *r.p++;
    switch (ch) {
    case '\\':
      rc = translate_escape(&r);
      break;
    case '[':
      rc = translate_bracket(&r);
      break;
    case '(':
      if (*r.p == '?') {
        if (r.p[1] != ':') {
          r.why = "lookaround and named groups are not supported";
          rc = -1;
          break;
        }
        r.p += 2;
      }
      rc = buf_addc(&r.out, '(');
      break;
    case '.':
      rc = emit_negated(&r.out, "", "\n\r");
      break;
    case '*':
    case '+':
    case '?':
      rc = buf_addc(&r.out, ch);
      if (*r.p == '?')
        r.p++;
      rc = rc || refuse_stacked(&r);
      break;
    case '{':
      n = quantifier_length(r.p - 1);
      if (n == 0) {
        rc = buf_add(&r.out, "\\{", 2);
        break;
      }
      rc = buf_add(&r.out, r.p - 1, (size_t)n);
      r.p += n - 1;
      if (*r.p == '?')
        r.p++;
      rc = rc || refuse_stacked(&r);
      break;
    case '}':
      rc = buf_add(&r.out, "\\}", 2);
      break;
    default:
      if ((unsigned char)ch >= 0xc0) {
        /* Group a UTF-8 sequence so that quantifiers see one character. */
        rc = buf_addc(&r.out, '(') || buf_addc(&r.out, ch);
        while (rc == 0 && ((unsigned char)*r.p & 0xc0) == 0x80)
          rc = buf_addc(&r.out, *r.p++);
        rc = rc || buf_addc(&r.out, ')');
      } else {
        rc = buf_addc(&r.out, ch);
      }
    }
  }
  if (rc == 0 && !r.out.data)
    rc = buf_add(&r.out, "", 0); /* The empty pattern matches everything. */
  if (rc) {
    free(r.out.data);
    *why = r.why;
    return NULL;
  }
  return r.out.data;
}

/* ---- Compiler ------------------------------------------------------- */

struct memo_slot {
  const cJSON *json;
  node *compiled;
};

struct pending_ref {
  node *owner;
  const char *ref; /* The "$ref" string, in the document copy. */
  char *where;     /* Schema path of the "$ref" keyword, for errors. */
};

typedef struct {
  ph__schema *s;
  enum dialect dialect;
  struct memo_slot *memo; /* Open addressing, keyed by JSON value. */
  size_t memo_cap, memo_len;
  struct pending_ref *pending;
  size_t npending, cap_pending;
  struct buf path; /* Schema location being compiled: "#/properties/a". */
  int depth;
  char *err;
} compiler;

static int compile_fail(compiler *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
static int compile_fail(compiler *c, const char *fmt, ...) {
  va_list ap;
  char *reason;

  if (c->err)
    return -1;
  va_start(ap, fmt);
  reason = vformat(fmt, ap);
  va_end(ap);
  if (reason)
    c->err = format("%s: %s", c->path.data ? c->path.data : "#", reason);
  free(reason);
  return -1;
}

/* As compile_fail, with the keyword appended to the schema path. */
static int keyword_fail(compiler *c, const char *keyword, const char *why) {
  size_t mark = c->path.len;

  if (buf_add_token(&c->path, keyword))
    return compile_fail(c, "out of memory");
  compile_fail(c, "%s", why);
  buf_truncate(&c->path, mark);
  return -1;
}

static size_t memo_index(const compiler *c, const cJSON *json) {
  size_t i = ((uintptr_t)json >> 4) * 0x9e3779b97f4a7c15ull;
  i &= c->memo_cap - 1;
  while (c->memo[i].json && c->memo[i].json != json)
    i = (i + 1) & (c->memo_cap - 1);
  return i;
}

static node *memo_find(const compiler *c, const cJSON *json) {
  return c->memo_cap ? c->memo[memo_index(c, json)].compiled : NULL;
}

static int memo_put(compiler *c, const cJSON *json, node *n) {
  if (2 * (c->memo_len + 1) > c->memo_cap) {
    struct memo_slot *old = c->memo;
    size_t old_cap = c->memo_cap, i;
    c->memo_cap = old_cap ? old_cap * 2 : 64;
    c->memo = ph__xcalloc(c->memo_cap, sizeof *c->memo);
    if (!c->memo) {
      c->memo = old;
      c->memo_cap = old_cap;
      return -1;
    }
    for (i = 0; i < old_cap; i++)
      if (old[i].json)
        c->memo[memo_index(c, old[i].json)] = old[i];
    free(old);
  }
  c->memo[memo_index(c, json)] = (struct memo_slot){json, n};
  c->memo_len++;
  return 0;
}

static node *compile_node(compiler *c, const cJSON *json);

/* Compiles json found at the current path plus one or two tokens. */
static node *compile_at(compiler *c, const cJSON *json, const char *token,
                        const char *token2) {
  size_t mark = c->path.len;
  node *n = NULL;

  if (buf_add_token(&c->path, token) ||
      (token2 && buf_add_token(&c->path, token2)))
    compile_fail(c, "out of memory");
  else
    n = compile_node(c, json);
  buf_truncate(&c->path, mark);
  return n;
}

static int compile_child(compiler *c, const cJSON *obj, const char *keyword,
                         node **out) {
  const cJSON *kw = cJSON_GetObjectItemCaseSensitive(obj, keyword);
  if (!kw)
    return 0;
  *out = compile_at(c, kw, keyword, NULL);
  return *out ? 0 : -1;
}

/* An array of schemas; allOf, anyOf and oneOf must not be empty. */
static int compile_list(compiler *c, const cJSON *obj, const char *keyword,
                        int may_be_empty, node ***out, size_t *count) {
  const cJSON *kw = cJSON_GetObjectItemCaseSensitive(obj, keyword), *x;
  size_t n = 0;
  char index[24];

  if (!kw)
    return 0;
  if (!cJSON_IsArray(kw))
    return keyword_fail(c, keyword, "expected an array of schemas");
  *count = (size_t)cJSON_GetArraySize(kw);
  if (*count == 0)
    return may_be_empty
               ? 0
               : keyword_fail(c, keyword, "expected a non-empty array");
  *out = ph__xcalloc(*count, sizeof **out);
  if (!*out)
    return compile_fail(c, "out of memory");
  for (x = kw->child; x; x = x->next, n++) {
    snprintf(index, sizeof index, "%zu", n);
    if (!((*out)[n] = compile_at(c, x, keyword, index)))
      return -1;
  }
  return 0;
}

static int compare_named(const void *a, const void *b) {
  return strcmp(((const struct named *)a)->name,
                ((const struct named *)b)->name);
}

/* An object of schemas under property names (properties,
 * dependentSchemas), sorted for lookup. */
static int compile_map(compiler *c, const cJSON *kw, const char *keyword,
                       struct named **out, size_t *count) {
  const cJSON *x;
  size_t n = 0;

  if (!cJSON_IsObject(kw))
    return keyword_fail(c, keyword, "expected an object of schemas");
  *count = (size_t)cJSON_GetArraySize(kw);
  if (*count == 0)
    return 0;
  *out = ph__xcalloc(*count, sizeof **out);
  if (!*out)
    return compile_fail(c, "out of memory");
  for (x = kw->child; x; x = x->next, n++) {
    (*out)[n].name = x->string;
    if (!((*out)[n].schema = compile_at(c, x, keyword, x->string)))
      return -1;
  }
  qsort(*out, *count, sizeof **out, compare_named);
  return 0;
}

static int compile_regex(compiler *c, regex_t *re, const char *src,
                         const char *keyword, const char *key) {
  const char *why = "not valid as a POSIX extended regex";
  char *ere = translate_regex(src, &why);
  size_t mark = c->path.len;
  int rc = ere ? regcomp(re, ere, REG_EXTENDED | REG_NOSUB) : -1;

  free(ere);
  if (rc == 0)
    return 0;
  if (buf_add_token(&c->path, keyword) || (key && buf_add_token(&c->path, key)))
    return compile_fail(c, "out of memory");
  compile_fail(c, "unsupported regex \"%s\": %s", src, why);
  buf_truncate(&c->path, mark);
  return -1;
}

static int read_count(compiler *c, const cJSON *obj, const char *keyword,
                      size_t *out) {
  const cJSON *kw = cJSON_GetObjectItemCaseSensitive(obj, keyword);
  double d;

  if (!kw)
    return 0;
  if (!cJSON_IsNumber(kw) || (d = kw->valuedouble) < 0 || d != floor(d))
    return keyword_fail(c, keyword, "expected a non-negative integer");
  *out = d >= (double)SIZE_MAX ? SIZE_MAX : (size_t)d;
  return 0;
}

static int read_number(compiler *c, const cJSON *obj, const char *keyword,
                       unsigned flag, node *n, double *out) {
  const cJSON *kw = cJSON_GetObjectItemCaseSensitive(obj, keyword);

  if (!kw)
    return 0;
  if (!cJSON_IsNumber(kw))
    return keyword_fail(c, keyword, "expected a number");
  *out = kw->valuedouble;
  n->numeric |= flag;
  return 0;
}

static int compile_type(compiler *c, node *n, const cJSON *kw) {
  const cJSON *x = cJSON_IsArray(kw) ? kw->child : kw;
  size_t i;

  if (!cJSON_IsArray(kw) && !cJSON_IsString(kw))
    return keyword_fail(c, "type", "expected a type name or an array");
  for (; x; x = cJSON_IsArray(kw) ? x->next : NULL) {
    unsigned bit = 0;
    for (i = 0; cJSON_IsString(x) && i < sizeof type_names / sizeof *type_names;
         i++)
      if (strcmp(x->valuestring, type_names[i].name) == 0)
        bit = type_names[i].bit;
    if (!bit)
      return keyword_fail(c, "type", "unknown type name");
    n->types |= bit;
  }
  return 0;
}

static int compile_format(compiler *c, node *n, const cJSON *kw) {
  size_t i;

  if (!cJSON_IsString(kw))
    return keyword_fail(c, "format", "expected a string");
  for (i = 1; i < sizeof format_names / sizeof *format_names; i++)
    if (strcmp(kw->valuestring, format_names[i]) == 0)
      n->format = (enum format)i;
  return 0;
}

static int compile_pattern_props(compiler *c, node *n, const cJSON *kw) {
  const cJSON *x;

  if (!cJSON_IsObject(kw))
    return keyword_fail(c, "patternProperties", "expected an object");
  n->pattern_props =
      ph__xcalloc((size_t)cJSON_GetArraySize(kw) + 1, sizeof *n->pattern_props);
  if (!n->pattern_props)
    return compile_fail(c, "out of memory");
  for (x = kw->child; x; x = x->next) {
    struct patterned *p = &n->pattern_props[n->npattern_props];
    if (compile_regex(c, &p->re, x->string, "patternProperties", x->string))
      return -1;
    n->npattern_props++; /* Counted once compiled, so free regfree()s it. */
    if (!(p->schema = compile_at(c, x, "patternProperties", x->string)))
      return -1;
  }
  return 0;
}

static int is_string_array(const cJSON *kw) {
  const cJSON *x;
  if (!cJSON_IsArray(kw))
    return 0;
  for (x = kw->child; x; x = x->next)
    if (!cJSON_IsString(x))
      return 0;
  return 1;
}

/* dependentRequired, dependentSchemas and draft-07 dependencies (which mixes
 * the two, told apart by the value's type). */
static int compile_dependencies(compiler *c, node *n, const cJSON *obj) {
  static const char *const keywords[] = {"dependencies", "dependentRequired",
                                         "dependentSchemas"};
  size_t k, total = 0;
  const cJSON *kw, *x;

  for (k = 0; k < 3; k++)
    if ((kw = cJSON_GetObjectItemCaseSensitive(obj, keywords[k]))) {
      if (!cJSON_IsObject(kw))
        return keyword_fail(c, keywords[k], "expected an object");
      total += (size_t)cJSON_GetArraySize(kw);
    }
  if (total == 0)
    return 0;
  n->dep_required = ph__xcalloc(total, sizeof *n->dep_required);
  n->dep_schemas = ph__xcalloc(total, sizeof *n->dep_schemas);
  if (!n->dep_required || !n->dep_schemas)
    return compile_fail(c, "out of memory");
  for (k = 0; k < 3; k++) {
    kw = cJSON_GetObjectItemCaseSensitive(obj, keywords[k]);
    for (x = kw ? kw->child : NULL; x; x = x->next) {
      if (k != 2 && is_string_array(x)) {
        n->dep_required[n->ndep_required++] = (struct dependency){x->string, x};
      } else if (k != 1) {
        struct named *d = &n->dep_schemas[n->ndep_schemas++];
        d->name = x->string;
        if (!(d->schema = compile_at(c, x, keywords[k], x->string)))
          return -1;
      } else {
        return keyword_fail(c, keywords[k], "expected arrays of names");
      }
    }
  }
  return 0;
}

static int compile_array_keywords(compiler *c, node *n, const cJSON *obj) {
  const cJSON *items = cJSON_GetObjectItemCaseSensitive(obj, "items");
  const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(obj, "prefixItems");
  const cJSON *kw;

  /* prefixItems + items (2020-12), or array items + additionalItems
   * (draft-07): either way a prefix of positional schemas and one schema for
   * the rest. */
  if (prefix || cJSON_IsArray(items)) {
    const char *keyword = prefix ? "prefixItems" : "items";
    if (compile_list(c, obj, keyword, 1, &n->prefix, &n->nprefix))
      return -1;
    if (compile_child(c, obj, prefix ? "items" : "additionalItems", &n->items))
      return -1;
  } else if (compile_child(c, obj, "items", &n->items)) {
    return -1;
  }
  if (read_count(c, obj, "minItems", &n->min_items) ||
      read_count(c, obj, "maxItems", &n->max_items) ||
      read_count(c, obj, "minContains", &n->min_contains) ||
      read_count(c, obj, "maxContains", &n->max_contains) ||
      compile_child(c, obj, "contains", &n->contains))
    return -1;
  if ((kw = cJSON_GetObjectItemCaseSensitive(obj, "uniqueItems"))) {
    if (!cJSON_IsBool(kw))
      return keyword_fail(c, "uniqueItems", "expected a boolean");
    n->unique_items = cJSON_IsTrue(kw);
  }
  return 0;
}

static int compile_object_keywords(compiler *c, node *n, const cJSON *obj) {
  const cJSON *kw;

  if ((kw = cJSON_GetObjectItemCaseSensitive(obj, "properties")) &&
      compile_map(c, kw, "properties", &n->props, &n->nprops))
    return -1;
  if ((kw = cJSON_GetObjectItemCaseSensitive(obj, "patternProperties")) &&
      compile_pattern_props(c, n, kw))
    return -1;
  if ((kw = cJSON_GetObjectItemCaseSensitive(obj, "required"))) {
    if (!is_string_array(kw))
      return keyword_fail(c, "required", "expected an array of strings");
    n->required = kw;
  }
  return compile_child(c, obj, "additionalProperties", &n->additional_props) ||
         compile_child(c, obj, "propertyNames", &n->property_names) ||
         read_count(c, obj, "minProperties", &n->min_props) ||
         read_count(c, obj, "maxProperties", &n->max_props) ||
         compile_dependencies(c, n, obj);
}

static int compile_string_keywords(compiler *c, node *n, const cJSON *obj) {
  const cJSON *kw;

  if (read_count(c, obj, "minLength", &n->min_length) ||
      read_count(c, obj, "maxLength", &n->max_length))
    return -1;
  if ((kw = cJSON_GetObjectItemCaseSensitive(obj, "format")) &&
      compile_format(c, n, kw))
    return -1;
  if (!(kw = cJSON_GetObjectItemCaseSensitive(obj, "pattern")))
    return 0;
  if (!cJSON_IsString(kw))
    return keyword_fail(c, "pattern", "expected a string");
  n->pattern = ph__xmalloc(sizeof *n->pattern);
  if (!n->pattern)
    return compile_fail(c, "out of memory");
  if (compile_regex(c, n->pattern, kw->valuestring, "pattern", NULL)) {
    free(n->pattern);
    n->pattern = NULL;
    return -1;
  }
  n->pattern_text = kw->valuestring;
  return 0;
}

static int add_ref(compiler *c, node *n, const cJSON *kw) {
  struct pending_ref *p;

  if (!cJSON_IsString(kw))
    return keyword_fail(c, "$ref", "expected a string");
  if (kw->valuestring[0] != '#')
    return keyword_fail(c, "$ref",
                        "remote $ref is not allowed (only local \"#...\" "
                        "references are resolved, nothing is fetched)");
  p = grow(c->pending, &c->cap_pending, c->npending + 1, sizeof *p);
  if (!p)
    return compile_fail(c, "out of memory");
  c->pending = p;
  p += c->npending;
  p->owner = n;
  p->ref = kw->valuestring;
  p->where = format("%s/$ref", c->path.data);
  if (!p->where)
    return compile_fail(c, "out of memory");
  c->npending++;
  return 0;
}

static int compile_keywords(compiler *c, node *n, const cJSON *obj) {
  static const char *const refused[] = {"unevaluatedProperties",
                                        "unevaluatedItems", "$dynamicRef",
                                        "$recursiveRef"};
  const cJSON *kw;
  size_t i;

  for (i = 0; i < sizeof refused / sizeof *refused; i++)
    if (cJSON_GetObjectItemCaseSensitive(obj, refused[i]))
      return keyword_fail(c, refused[i], "unsupported keyword");
  /* Definitions compile eagerly so a broken one fails at load time even if
   * nothing refers to it yet. */
  for (i = 0; i < 2; i++) {
    const char *keyword = i ? "definitions" : "$defs";
    const cJSON *x;
    if (!(kw = cJSON_GetObjectItemCaseSensitive(obj, keyword)))
      continue;
    if (!cJSON_IsObject(kw))
      return keyword_fail(c, keyword, "expected an object of schemas");
    for (x = kw->child; x; x = x->next)
      if (!compile_at(c, x, keyword, x->string))
        return -1;
  }
  if ((kw = cJSON_GetObjectItemCaseSensitive(obj, "$ref"))) {
    if (add_ref(c, n, kw))
      return -1;
    if (c->dialect == DRAFT_07)
      return 0; /* Draft-07: "$ref" overrides its siblings. */
  }
  if ((kw = cJSON_GetObjectItemCaseSensitive(obj, "type")) &&
      compile_type(c, n, kw))
    return -1;
  if ((kw = cJSON_GetObjectItemCaseSensitive(obj, "enum"))) {
    if (!cJSON_IsArray(kw))
      return keyword_fail(c, "enum", "expected an array");
    n->enum_values = kw;
  }
  n->const_value = cJSON_GetObjectItemCaseSensitive(obj, "const");
  if (read_number(c, obj, "minimum", HAS_MINIMUM, n, &n->minimum) ||
      read_number(c, obj, "maximum", HAS_MAXIMUM, n, &n->maximum) ||
      read_number(c, obj, "exclusiveMinimum", HAS_EXCLUSIVE_MINIMUM, n,
                  &n->exclusive_minimum) ||
      read_number(c, obj, "exclusiveMaximum", HAS_EXCLUSIVE_MAXIMUM, n,
                  &n->exclusive_maximum) ||
      read_number(c, obj, "multipleOf", HAS_MULTIPLE_OF, n, &n->multiple_of))
    return -1;
  if ((n->numeric & HAS_MULTIPLE_OF) && !(n->multiple_of > 0))
    return keyword_fail(c, "multipleOf", "expected a positive number");
  return compile_string_keywords(c, n, obj) ||
         compile_array_keywords(c, n, obj) ||
         compile_object_keywords(c, n, obj) ||
         compile_list(c, obj, "allOf", 0, &n->all_of, &n->nall_of) ||
         compile_list(c, obj, "anyOf", 0, &n->any_of, &n->nany_of) ||
         compile_list(c, obj, "oneOf", 0, &n->one_of, &n->none_of) ||
         compile_child(c, obj, "not", &n->not_schema) ||
         compile_child(c, obj, "if", &n->if_schema) ||
         compile_child(c, obj, "then", &n->then_schema) ||
         compile_child(c, obj, "else", &n->else_schema);
}

static node *compile_node(compiler *c, const cJSON *json) {
  ph__schema *s = c->s;
  node **nodes;
  node *n;

  if ((n = memo_find(c, json)))
    return n;
  if (!cJSON_IsBool(json) && !cJSON_IsObject(json)) {
    compile_fail(c, "a schema must be an object or a boolean");
    return NULL;
  }
  if (c->depth >= PH__SCHEMA_MAX_DEPTH) {
    compile_fail(c, "schema too deep");
    return NULL;
  }
  n = ph__xcalloc(1, sizeof *n);
  nodes = grow(s->nodes, &s->cap_nodes, s->nnodes + 1, sizeof *nodes);
  if (nodes)
    s->nodes = nodes;
  if (!n || !nodes || memo_put(c, json, n)) {
    free(n);
    compile_fail(c, "out of memory");
    return NULL;
  }
  s->nodes[s->nnodes++] = n;
  n->max_length = n->max_items = n->max_props = n->max_contains = SIZE_MAX;
  n->min_contains = 1;
  if (cJSON_IsBool(json)) {
    n->boolean = cJSON_IsTrue(json);
    return n;
  }
  n->boolean = -1;
  c->depth++;
  if (compile_keywords(c, n, json))
    n = NULL;
  c->depth--;
  return n;
}

/* Follows a local "$ref" ("#" plus a percent-encoded JSON pointer). */
static const cJSON *resolve_pointer(compiler *c, const char *ref) {
  const cJSON *cur = c->s->doc;
  char *ptr = ph__xmalloc(strlen(ref) + 1), *p, *out;
  const char *why = NULL;
  unsigned byte;

  if (!ptr) {
    compile_fail(c, "out of memory");
    return NULL;
  }
  /* Percent-decoding comes first: it is URI syntax around the pointer. */
  for (out = ptr, ref++; *ref; ref++) {
    if (*ref == '%') {
      if (!hex_value(ref + 1, 2, &byte) || byte == 0) {
        why = "bad percent-encoding";
        goto done;
      }
      *out++ = (char)byte;
      ref += 2;
    } else {
      *out++ = *ref;
    }
  }
  *out = '\0';
  if (ptr[0] != '\0' && ptr[0] != '/') {
    why = "not a JSON pointer (anchors are not supported)";
    goto done;
  }
  for (p = ptr; cur && *p == '/';) {
    char *token = ++p, *w = p, saved;
    /* Unescape the token in place: ~1 is '/', ~0 is '~'. */
    for (; *p && *p != '/'; p++) {
      if (*p == '~' && (p[1] == '0' || p[1] == '1')) {
        *w++ = p[1] == '0' ? '~' : '/';
        p++;
      } else if (*p == '~') {
        why = "bad ~ escape";
        goto done;
      } else {
        *w++ = *p;
      }
    }
    saved = *p;
    *w = '\0';
    if (cJSON_IsObject(cur)) {
      cur = cJSON_GetObjectItemCaseSensitive(cur, token);
    } else if (cJSON_IsArray(cur)) {
      char *end;
      unsigned long index = strtoul(token, &end, 10);
      int ok = end == w && w > token && (token[0] != '0' || w == token + 1);
      cur = ok && index < (unsigned long)cJSON_GetArraySize(cur)
                ? cJSON_GetArrayItem(cur, (int)index)
                : NULL;
    } else {
      cur = NULL;
    }
    *p = saved;
  }
  if (!cur)
    why = "no such location in the document";
done:
  free(ptr);
  if (why) {
    compile_fail(c, "unresolvable $ref: %s", why);
    return NULL;
  }
  return cur;
}

/* Resolves "$ref"s in the order they were found; compiling a target may
 * add more to the list. */
static int resolve_refs(compiler *c) {
  size_t i;

  for (i = 0; i < c->npending; i++) {
    struct pending_ref *p = &c->pending[i];
    node *owner = p->owner;
    const char *ref = p->ref;
    const cJSON *target;

    buf_truncate(&c->path, 0);
    if (buf_adds(&c->path, p->where))
      return compile_fail(c, "out of memory");
    if (!(target = resolve_pointer(c, ref)))
      return -1;
    buf_truncate(&c->path, 0);
    if (buf_adds(&c->path, ref))
      return compile_fail(c, "out of memory");
    /* p may move: compiling the target can grow c->pending. */
    if (!(owner->ref = compile_node(c, target)))
      return -1;
  }
  return 0;
}

static int check_dialect(compiler *c) {
  static const char *const draft7[] = {
      "http://json-schema.org/draft-07/schema",
      "https://json-schema.org/draft-07/schema"};
  static const char *const draft2020[] = {
      "https://json-schema.org/draft/2020-12/schema",
      "http://json-schema.org/draft/2020-12/schema"};
  const cJSON *kw = cJSON_GetObjectItemCaseSensitive(c->s->doc, "$schema");
  size_t len, i;

  c->dialect = DRAFT_2020_12;
  if (!cJSON_IsObject(c->s->doc) || !kw)
    return 0;
  if (!cJSON_IsString(kw))
    return keyword_fail(c, "$schema", "unsupported dialect");
  len = strlen(kw->valuestring);
  if (len > 0 && kw->valuestring[len - 1] == '#')
    len--;
  for (i = 0; i < 2; i++) {
    if (strlen(draft7[i]) == len &&
        strncmp(kw->valuestring, draft7[i], len) == 0)
      c->dialect = DRAFT_07;
    if (strlen(draft2020[i]) == len &&
        strncmp(kw->valuestring, draft2020[i], len) == 0)
      return 0;
  }
  if (c->dialect == DRAFT_07)
    return 0;
  return keyword_fail(c, "$schema", "unsupported dialect");
}

ph__schema *ph__schema_compile(const cJSON *schema, char **err) {
  compiler c;
  ph__schema *s = NULL;
  size_t i;
  int ok = 0;

  memset(&c, 0, sizeof c);
  if (err)
    *err = NULL;
  if (buf_add(&c.path, "#", 1)) {
    compile_fail(&c, "out of memory");
    goto done;
  }
  if (!schema) {
    compile_fail(&c, "no schema");
    goto done;
  }
  s = ph__xcalloc(1, sizeof *s);
  if (!s || !(s->doc = cJSON_Duplicate(schema, 1))) {
    compile_fail(&c, "out of memory");
    goto done;
  }
  c.s = s;
  if (check_dialect(&c) || !(s->root = compile_node(&c, s->doc)) ||
      resolve_refs(&c))
    goto done;
  ok = 1;
done:
  for (i = 0; i < c.npending; i++)
    free(c.pending[i].where);
  free(c.pending);
  free(c.memo);
  free(c.path.data);
  if (!ok) {
    if (err)
      *err = c.err ? c.err : copy_string("out of memory");
    else
      free(c.err);
    ph__schema_free(s);
    s = NULL;
  }
  return s;
}

ph__schema *ph__schema_compile_text(const char *json_text, char **err) {
  const char *end = NULL;
  cJSON *json;
  ph__schema *s;

  if (err)
    *err = NULL;
  json = json_text ? cJSON_ParseWithOpts(json_text, &end, 1) : NULL;
  if (!json) {
    if (err)
      *err = json_text ? format("#: invalid JSON at offset %td",
                                end ? end - json_text : 0)
                       : copy_string("#: no schema text");
    return NULL;
  }
  s = ph__schema_compile(json, err);
  cJSON_Delete(json);
  return s;
}

void ph__schema_free(ph__schema *s) {
  size_t i, j;

  if (!s)
    return;
  for (i = 0; i < s->nnodes; i++) {
    node *n = s->nodes[i];
    if (n->pattern)
      regfree(n->pattern);
    free(n->pattern);
    for (j = 0; j < n->npattern_props; j++)
      regfree(&n->pattern_props[j].re);
    free(n->pattern_props);
    free(n->prefix);
    free(n->props);
    free(n->dep_required);
    free(n->dep_schemas);
    free(n->all_of);
    free(n->any_of);
    free(n->one_of);
    free(n);
  }
  free(s->nodes);
  cJSON_Delete(s->doc);
  free(s);
}

/* ---- Validation ----------------------------------------------------- */

typedef struct {
  struct buf path; /* Instance location, a JSON pointer; "" is the root. */
  int depth;
  size_t steps;
  int want_err; /* 0 while only the verdict matters (not, if, contains). */
  char *err;    /* First failure: "<path>: <reason>". */
  int stop;     /* A limit was hit: the verdict is "invalid", no matter
                   how many "not"s are around. */
  char *stop_err;
} validator;

#define SUMMARY_BRANCHES 4 /* anyOf/oneOf branches quoted in a message. */
#define SUMMARY_REASON 160 /* Characters quoted per branch. */

static const char *where(const validator *v) {
  return v->path.len ? v->path.data : "/";
}

static int fail(validator *v, const char *fmt, ...) PRINTF_LIKE(2, 3);
static int fail(validator *v, const char *fmt, ...) {
  va_list ap;
  char *reason;

  if (!v->want_err || v->err)
    return 1;
  va_start(ap, fmt);
  reason = vformat(fmt, ap);
  va_end(ap);
  if (reason)
    v->err = format("%s: %s", where(v), reason);
  free(reason);
  return 1;
}

static int stop(validator *v, const char *reason) {
  if (!v->stop) {
    v->stop = 1;
    v->stop_err = format("%s: %s", where(v), reason);
  }
  return 1;
}

static int push_key(validator *v, const char *key) {
  return buf_add_token(&v->path, key) ? stop(v, "out of memory") : 0;
}

static int push_index(validator *v, size_t index) {
  char token[24];
  snprintf(token, sizeof token, "%zu", index);
  return push_key(v, token);
}

static int eval(validator *v, const node *n, const cJSON *inst);

/* Evaluates a branch whose failure is not itself an error (not, if,
 * contains, oneOf). */
static int probe(validator *v, const node *n, const cJSON *inst) {
  int saved = v->want_err, rc;
  v->want_err = 0;
  rc = eval(v, n, inst);
  v->want_err = saved;
  return rc;
}

static int eval_type(validator *v, const node *n, const cJSON *inst) {
  struct buf expected = {NULL, 0, 0};
  size_t i;

  if (!n->types || (n->types & type_of(inst)))
    return 0;
  if (!v->want_err)
    return 1;
  for (i = 0; i < sizeof type_names / sizeof *type_names; i++)
    if (n->types & type_names[i].bit)
      if ((expected.len && buf_adds(&expected, " or ")) ||
          buf_adds(&expected, type_names[i].name))
        break;
  fail(v, "expected type %s, got %s", expected.data ? expected.data : "?",
       type_name(inst));
  free(expected.data);
  return 1;
}

static int eval_number(validator *v, const node *n, double d) {
  if ((n->numeric & HAS_MINIMUM) && d < n->minimum)
    return fail(v, "%.15g is less than the minimum %.15g", d, n->minimum);
  if ((n->numeric & HAS_MAXIMUM) && d > n->maximum)
    return fail(v, "%.15g is greater than the maximum %.15g", d, n->maximum);
  if ((n->numeric & HAS_EXCLUSIVE_MINIMUM) && d <= n->exclusive_minimum)
    return fail(v, "%.15g is not greater than %.15g", d, n->exclusive_minimum);
  if ((n->numeric & HAS_EXCLUSIVE_MAXIMUM) && d >= n->exclusive_maximum)
    return fail(v, "%.15g is not less than %.15g", d, n->exclusive_maximum);
  if (n->numeric & HAS_MULTIPLE_OF) {
    /* Binary floating point: 0.0075 / 0.0001 is not exactly 75. */
    double q = d / n->multiple_of;
    if (!isfinite(q) || fabs(q - nearbyint(q)) > 1e-12 * fmax(1.0, fabs(q)))
      return fail(v, "%.15g is not a multiple of %.15g", d, n->multiple_of);
  }
  return 0;
}

static size_t code_points(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += ((unsigned char)*s & 0xc0) != 0x80;
  return n;
}

static int eval_string(validator *v, const node *n, const char *s) {
  size_t len;

  if (n->min_length > 0 || n->max_length < SIZE_MAX) {
    len = code_points(s);
    if (len < n->min_length)
      return fail(v, "string is shorter than %zu characters", n->min_length);
    if (len > n->max_length)
      return fail(v, "string is longer than %zu characters", n->max_length);
  }
  if (n->pattern && regexec(n->pattern, s, 0, NULL, 0) != 0)
    return fail(v, "string does not match pattern \"%s\"", n->pattern_text);
  if (n->format != FMT_NONE && !format_ok(n->format, s))
    return fail(v, "string is not a valid %s", format_names[n->format]);
  return 0;
}

struct hashed_item {
  uint64_t hash;
  size_t index;
  const cJSON *item;
};

static int compare_hashed(const void *a, const void *b) {
  const struct hashed_item *x = a, *y = b;
  if (x->hash != y->hash)
    return x->hash < y->hash ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* Hashing then sorting keeps uniqueItems O(n log n) on long arrays. */
static int eval_unique(validator *v, const cJSON *arr, size_t count) {
  struct hashed_item *items;
  const cJSON *x;
  size_t i, j, k;
  int rc = 0;

  if (count < 2)
    return 0;
  items = ph__xmalloc(count * sizeof *items);
  if (!items)
    return stop(v, "out of memory");
  for (i = 0, x = arr->child; x; x = x->next, i++)
    items[i] = (struct hashed_item){json_hash(x), i, x};
  qsort(items, count, sizeof *items, compare_hashed);
  for (i = 0; i < count && rc == 0; i = j) {
    for (j = i + 1; j < count && items[j].hash == items[i].hash; j++)
      ;
    for (k = i; k < j && rc == 0; k++) {
      size_t m;
      for (m = k + 1; m < j && rc == 0; m++)
        if (json_equal(items[k].item, items[m].item))
          rc = fail(v, "items %zu and %zu are equal, expected unique items",
                    items[k].index, items[m].index);
    }
  }
  free(items);
  return rc;
}

static int eval_array(validator *v, const node *n, const cJSON *arr) {
  size_t count = 0, i, matches = 0, mark = v->path.len;
  const cJSON *x;

  for (x = arr->child; x; x = x->next)
    count++;
  if (count < n->min_items)
    return fail(v, "expected at least %zu items, got %zu", n->min_items, count);
  if (count > n->max_items)
    return fail(v, "expected at most %zu items, got %zu", n->max_items, count);
  for (i = 0, x = arr->child; x; x = x->next, i++) {
    const node *sub = i < n->nprefix ? n->prefix[i] : n->items;
    int rc;
    if (!sub)
      break;
    if (sub->boolean == 0)
      return fail(v, "unexpected item at index %zu", i);
    if (push_index(v, i))
      return 1;
    rc = eval(v, sub, x);
    buf_truncate(&v->path, mark);
    if (rc)
      return 1;
  }
  if (n->contains) {
    for (i = 0, x = arr->child; x; x = x->next, i++) {
      if (push_index(v, i))
        return 1;
      matches += probe(v, n->contains, x) == 0;
      buf_truncate(&v->path, mark);
      if (v->stop)
        return 1;
    }
    if (matches < n->min_contains)
      return n->min_contains == 1
                 ? fail(v, "no item matches the \"contains\" schema")
                 : fail(v,
                        "%zu items match \"contains\", expected at least "
                        "%zu",
                        matches, n->min_contains);
    if (matches > n->max_contains)
      return fail(v, "%zu items match \"contains\", expected at most %zu",
                  matches, n->max_contains);
  }
  return n->unique_items ? eval_unique(v, arr, count) : 0;
}

static const struct named *find_named(const struct named *list, size_t count,
                                      const char *name) {
  struct named key = {name, NULL};
  return count ? bsearch(&key, list, count, sizeof key, compare_named) : NULL;
}

/* Applies propertyNames, properties, patternProperties and
 * additionalProperties to one member of an object. */
static int eval_member(validator *v, const node *n, const cJSON *m) {
  const struct named *prop = find_named(n->props, n->nprops, m->string);
  size_t mark = v->path.len, i;
  int matched = prop != NULL, rc = 1;

  if (push_key(v, m->string))
    return 1;
  if (n->property_names) {
    cJSON name;
    memset(&name, 0, sizeof name);
    name.type = cJSON_String;
    name.valuestring = m->string;
    if (eval(v, n->property_names, &name))
      goto done;
  }
  if (prop && eval(v, prop->schema, m))
    goto done;
  for (i = 0; i < n->npattern_props; i++) {
    if (regexec(&n->pattern_props[i].re, m->string, 0, NULL, 0) != 0)
      continue;
    matched = 1;
    if (eval(v, n->pattern_props[i].schema, m))
      goto done;
  }
  if (!matched && n->additional_props) {
    if (n->additional_props->boolean == 0) {
      buf_truncate(&v->path, mark);
      fail(v, "unexpected property \"%s\"", m->string);
      goto done;
    }
    if (eval(v, n->additional_props, m))
      goto done;
  }
  rc = 0;
done:
  buf_truncate(&v->path, mark);
  return rc;
}

static int eval_object(validator *v, const node *n, const cJSON *obj) {
  const cJSON *x, *r;
  size_t count = 0, i;

  for (x = obj->child; x; x = x->next)
    count++;
  if (count < n->min_props)
    return fail(v, "expected at least %zu properties, got %zu", n->min_props,
                count);
  if (count > n->max_props)
    return fail(v, "expected at most %zu properties, got %zu", n->max_props,
                count);
  for (r = n->required ? n->required->child : NULL; r; r = r->next)
    if (!cJSON_GetObjectItemCaseSensitive(obj, r->valuestring))
      return fail(v, "missing required property \"%s\"", r->valuestring);
  for (i = 0; i < n->ndep_required; i++) {
    if (!cJSON_GetObjectItemCaseSensitive(obj, n->dep_required[i].name))
      continue;
    for (r = n->dep_required[i].needed->child; r; r = r->next)
      if (!cJSON_GetObjectItemCaseSensitive(obj, r->valuestring))
        return fail(v, "property \"%s\" requires property \"%s\"",
                    n->dep_required[i].name, r->valuestring);
  }
  for (x = obj->child; x; x = x->next)
    if (eval_member(v, n, x))
      return 1;
  for (i = 0; i < n->ndep_schemas; i++)
    if (cJSON_GetObjectItemCaseSensitive(obj, n->dep_schemas[i].name) &&
        eval(v, n->dep_schemas[i].schema, obj))
      return 1;
  return 0;
}

/* Builds "<what> ([0] reason; [1] reason; ...)" from the branch errors,
 * bounded so nested combinators cannot make huge messages. */
static int fail_summary(validator *v, const char *what, char **reasons,
                        size_t count) {
  struct buf b = {NULL, 0, 0};
  size_t i;
  int oom = buf_adds(&b, what) || buf_adds(&b, " (");
  char head[16];

  for (i = 0; i < count && i < SUMMARY_BRANCHES && !oom; i++) {
    const char *r = reasons[i] ? reasons[i] : "invalid";
    size_t len = strlen(r);
    snprintf(head, sizeof head, "%s[%zu] ", i ? "; " : "", i);
    oom = buf_adds(&b, head) ||
          buf_add(&b, r, len > SUMMARY_REASON ? SUMMARY_REASON : len) ||
          (len > SUMMARY_REASON && buf_adds(&b, "..."));
  }
  if (!oom && count > SUMMARY_BRANCHES)
    oom = buf_adds(&b, "; ...");
  if (!oom)
    oom = buf_addc(&b, ')');
  fail(v, "%s", oom ? what : b.data);
  free(b.data);
  return 1;
}

/* anyOf (exactly_one = 0) or oneOf (exactly_one = 1). */
static int eval_choice(validator *v, node *const *branches, size_t count,
                       int exactly_one, const cJSON *inst) {
  const char *keyword = exactly_one ? "oneOf" : "anyOf";
  char *reasons[SUMMARY_BRANCHES] = {NULL};
  size_t i, passed = 0, first = 0;
  int rc = 1;

  for (i = 0; i < count; i++) {
    if (eval(v, branches[i], inst) == 0) {
      if (passed++ == 0)
        first = i;
      if (!exactly_one || passed > 1)
        break;
    } else if (i < SUMMARY_BRANCHES) {
      reasons[i] = v->err;
    } else {
      free(v->err);
    }
    v->err = NULL;
    if (v->stop)
      goto done;
  }
  if (passed == 1 || (passed > 1 && !exactly_one))
    rc = 0;
  else if (passed > 1)
    fail(v, "value matches %s schemas [%zu] and [%zu], expected exactly one",
         keyword, first, i);
  else if (v->want_err)
    fail_summary(v,
                 exactly_one ? "no schema in oneOf matched"
                             : "no schema in anyOf matched",
                 reasons, count);
done:
  for (i = 0; i < SUMMARY_BRANCHES; i++)
    free(reasons[i]);
  return rc;
}

static int eval_combinators(validator *v, const node *n, const cJSON *inst) {
  size_t i;

  for (i = 0; i < n->nall_of; i++)
    if (eval(v, n->all_of[i], inst))
      return 1;
  if (n->nany_of && eval_choice(v, n->any_of, n->nany_of, 0, inst))
    return 1;
  if (n->none_of && eval_choice(v, n->one_of, n->none_of, 1, inst))
    return 1;
  if (n->not_schema) {
    if (probe(v, n->not_schema, inst) == 0)
      return fail(v, "value must not match the \"not\" schema");
    if (v->stop)
      return 1;
  }
  if (n->if_schema) {
    int rc = probe(v, n->if_schema, inst);
    const node *next = rc == 0 ? n->then_schema : n->else_schema;
    if (v->stop)
      return 1;
    if (next && eval(v, next, inst))
      return 1;
  }
  return 0;
}

static int eval_keywords(validator *v, const node *n, const cJSON *inst) {
  const cJSON *x;

  if (n->ref && eval(v, n->ref, inst))
    return 1;
  if (eval_type(v, n, inst))
    return 1;
  if (n->enum_values) {
    for (x = n->enum_values->child; x; x = x->next)
      if (json_equal(x, inst))
        break;
    if (!x)
      return fail(v, "value is not one of the enum values");
  }
  if (n->const_value && !json_equal(n->const_value, inst))
    return fail(v, "value does not equal the const value");
  if (cJSON_IsNumber(inst) && eval_number(v, n, inst->valuedouble))
    return 1;
  if (cJSON_IsString(inst) && eval_string(v, n, inst->valuestring))
    return 1;
  if (cJSON_IsArray(inst) && eval_array(v, n, inst))
    return 1;
  if (cJSON_IsObject(inst) && eval_object(v, n, inst))
    return 1;
  return eval_combinators(v, n, inst);
}

static int eval(validator *v, const node *n, const cJSON *inst) {
  int rc;

  if (v->stop)
    return 1;
  if (n->boolean == 1)
    return 0;
  if (n->boolean == 0)
    return fail(v, "no value is allowed here (schema is false)");
  if (++v->steps > PH__SCHEMA_MAX_STEPS)
    return stop(v, "schema evaluation too expensive");
  if (v->depth >= PH__SCHEMA_MAX_DEPTH)
    return stop(v, "schema too deep");
  v->depth++;
  rc = eval_keywords(v, n, inst);
  v->depth--;
  return rc;
}

int ph__schema_validate(const ph__schema *s, const cJSON *instance,
                        char **err) {
  validator v;
  int rc;

  if (err)
    *err = NULL;
  if (!s || !instance) {
    if (err)
      *err = copy_string("/: no schema or no instance");
    return -1;
  }
  memset(&v, 0, sizeof v);
  v.want_err = err != NULL;
  rc = eval(&v, s->root, instance);
  if (rc && err) {
    char **winner = v.stop ? &v.stop_err : &v.err;
    *err = *winner ? *winner : copy_string("/: invalid (out of memory)");
    *winner = NULL;
  }
  free(v.stop_err);
  free(v.err);
  free(v.path.data);
  return rc ? -1 : 0;
}
