/* utf8.h: the one definition of well-formed UTF-8 the host checks text
 * against (the JSON precheck, percent-decoded URI variables). Inline, since
 * the precheck calls it for every non-ASCII byte of every message. */
#ifndef PH_UTF8_H
#define PH_UTF8_H

#include <stddef.h>

/* The length of the well-formed UTF-8 sequence at p (whose first byte is
 * >= 0x80), or 0: no overlongs, surrogates or code points past U+10FFFF. */
static inline int ph__utf8_length(const unsigned char *p,
                                  const unsigned char *end) {
  unsigned c = *p, cp;
  int n;

  if ((c & 0xE0) == 0xC0 && c >= 0xC2)
    n = 1, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0)
    n = 2, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0 && c <= 0xF4)
    n = 3, cp = c & 0x07;
  else
    return 0;
  if (end - p <= n)
    return 0;
  for (int i = 1; i <= n; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    cp = cp << 6 | (p[i] & 0x3F);
  }
  if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n + 1;
}

/* Whether the len bytes at s are UTF-8 without NUL. */
static inline int ph__utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  int n;

  while (p < end) {
    if (*p == 0)
      return 0;
    if (*p < 0x80) {
      p++;
      continue;
    }
    if ((n = ph__utf8_length(p, end)) == 0)
      return 0;
    p += n;
  }
  return 1;
}

#endif
