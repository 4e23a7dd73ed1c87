/* lines.c: see lines.h. */
#include "lines.h"

#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#define MIN_ROOM 65536

void ph__lines_init(ph__lines *l, size_t max) {
  memset(l, 0, sizeof(*l));
  l->max = max;
}

void ph__lines_free(ph__lines *l) {
  free(l->buf);
  ph__lines_init(l, l->max);
}

size_t ph__lines_room(ph__lines *l, char **at) {
  if (l->cap - l->len < MIN_ROOM) {
    l->cap = l->cap ? l->cap * 2 : 2 * MIN_ROOM;
    l->buf = ph__xrealloc(l->buf, l->cap);
  }
  *at = l->buf + l->len;
  return l->cap - l->len;
}

void ph__lines_added(ph__lines *l, size_t n) {
  l->len += n;
}

/* The line head..end (its newline excluded), as it comes out. */
static int take(ph__lines *l, size_t start, size_t end, const char **line,
                size_t *len) {
  if (l->skipping || end - start > l->max) {
    l->skipping = 0;
    *line = NULL;
    *len = 0;
    return PH__LINES_TOO_LARGE;
  }
  *line = l->buf + start;
  *len = end - start;
  return PH__LINES_MESSAGE;
}

int ph__lines_next(ph__lines *l, const char **line, size_t *len) {
  char *nl = l->len > l->scan ? memchr(l->buf + l->scan, '\n', l->len - l->scan)
                              : NULL;
  size_t start = l->head, end;

  if (nl != NULL) {
    end = (size_t)(nl - l->buf);
    l->head = l->scan = end + 1;
    return take(l, start, end, line, len);
  }
  /* Only part of a line is left: move it to the front for more input. */
  if (l->head > 0)
    memmove(l->buf, l->buf + l->head, l->len - l->head);
  l->len -= l->head;
  l->scan = l->len;
  l->head = 0;
  if (l->skipping || l->len > l->max) {
    l->skipping = 1; /* Nothing of an oversized line is worth keeping. */
    l->len = l->scan = 0;
  }
  return PH__LINES_NONE;
}

int ph__lines_last(ph__lines *l, const char **line, size_t *len) {
  int kind = PH__LINES_NONE;

  if (l->skipping || l->len > l->head)
    kind = take(l, l->head, l->len, line, len);
  l->head = l->len = l->scan = 0;
  return kind;
}
