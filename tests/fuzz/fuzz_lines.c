/* fuzz_lines.c: the stdio transport's framing (host/lines.c). The input's
 * first two bytes choose the longest line kept (1 to 512 bytes) and how
 * the rest arrives (reads of 1 to 256 bytes, sized by the bytes of the
 * input itself); the rest is what a client writes to stdin. What comes out
 * must be exactly the input split at its newlines, in order, each line
 * longer than the limit reported as too large and nothing of it kept, and
 * what follows the last newline, if anything, as the last line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lines.h"

/* The answer the framing must give for the line s..s+n. */
static void expect(int kind, const char *line, size_t len, size_t max,
                   const uint8_t *s, size_t n) {
  if (n > max) {
    if (kind != PH__LINES_TOO_LARGE)
      abort();
    return;
  }
  if (kind != PH__LINES_MESSAGE || len != n ||
      (n > 0 && memcmp(line, s, n) != 0) || memchr(line, '\n', len) != NULL)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *in, *end, *want, *nl;
  size_t max, step, n, got;
  const char *line;
  ph__lines l;
  char *room;
  int kind;

  if (size < 2)
    return 0;
  max = 1 + data[0] * 2u;
  step = 1 + data[1];
  in = want = data + 2;
  end = data + size;
  ph__lines_init(&l, max);
  while (in < end) {
    /* A read of up to `step` bytes, its size varied by the data. */
    n = 1 + (*in % step);
    if (n > (size_t)(end - in))
      n = (size_t)(end - in);
    got = ph__lines_room(&l, &room);
    if (got < n)
      abort();
    memcpy(room, in, n);
    ph__lines_added(&l, n);
    in += n;
    while ((kind = ph__lines_next(&l, &line, &got)) != PH__LINES_NONE) {
      nl = memchr(want, '\n', (size_t)(in - want));
      if (nl == NULL)
        abort(); /* A line came out before its newline came in. */
      expect(kind, line, got, max, want, (size_t)(nl - want));
      want = nl + 1;
    }
    /* Every complete line that came in has come out. */
    if (memchr(want, '\n', (size_t)(in - want)) != NULL)
      abort();
  }
  kind = ph__lines_last(&l, &line, &got);
  if (want == end) {
    if (kind != PH__LINES_NONE)
      abort();
  } else {
    expect(kind, line, got, max, want, (size_t)(end - want));
  }
  ph__lines_free(&l);
  return 0;
}
