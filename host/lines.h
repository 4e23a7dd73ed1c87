/* lines.h: newline-delimited framing for the stdio transport, over a
 * buffer and nothing else (no libuv, no fd), so the transport reads into
 * it and a fuzzer can drive it with any split of any bytes.
 *
 * Bytes go in at the end (ph__lines_room, ph__lines_added); complete lines
 * come out in order (ph__lines_next), and the last line of the input,
 * which may lack its newline, at the end (ph__lines_last). A line longer
 * than max bytes is never kept whole: its start is dropped as soon as it
 * is known to be too long, and when its end arrives it comes out as
 * PH__LINES_TOO_LARGE, so the transport can answer it. */
#ifndef PH_LINES_H
#define PH_LINES_H

#include <stddef.h>

typedef struct ph__lines {
  char *buf;
  /* Lines from head; the newline search goes on from scan. Input is only
   * added while no complete line is left, and then head is 0. */
  size_t head, scan, len, cap;
  size_t max;   /* The longest line kept (max_message_bytes). */
  int skipping; /* Dropping an oversized line up to its newline. */
} ph__lines;

enum ph__lines_kind {
  PH__LINES_NONE,     /* No complete line is left. */
  PH__LINES_MESSAGE,  /* *line, *len: a line without its newline. */
  PH__LINES_TOO_LARGE /* An oversized line ended; nothing of it is kept. */
};

void ph__lines_init(ph__lines *l, size_t max);
void ph__lines_free(ph__lines *l);

/* Room for more input: sets *at and returns how many bytes fit there (at
 * least 64 KiB). */
size_t ph__lines_room(ph__lines *l, char **at);

/* n bytes were written at the room's start. */
void ph__lines_added(ph__lines *l, size_t n);

/* The next complete line, valid until the next call on l. When none is
 * left, the partial line moves to the front for more input (and if it is
 * already longer than max, it is dropped and skipped to its newline). */
int ph__lines_next(ph__lines *l, const char **line, size_t *len);

/* At the end of input: what is left after the last newline, if anything,
 * as a last line (PH__LINES_MESSAGE, or PH__LINES_TOO_LARGE if it was too
 * long); l is empty afterwards. */
int ph__lines_last(ph__lines *l, const char **line, size_t *len);

#endif
