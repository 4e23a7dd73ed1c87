/* queue.h: an intrusive circular doubly linked list with a sentinel, as in
 * libuv's queue.h. A list is a ph__queue of its own (the sentinel); a
 * member embeds one ph__queue per list it can be in. An unlinked node
 * points at itself, so unlinking it again, or unlinking a node that was
 * never linked, changes nothing: no list can lose its ends that way.
 * Every node, sentinel or member, starts with ph__queue_init(). */
#ifndef PH_QUEUE_H
#define PH_QUEUE_H

#include <stddef.h>

typedef struct ph__queue {
  struct ph__queue *next; /* Towards the tail; the sentinel after it. */
  struct ph__queue *prev; /* Towards the head; the sentinel before it. */
} ph__queue;

/* The member a node is embedded in, as field `field` of `type`. */
#define PH__QUEUE_DATA(node, type, field)                                      \
  ((type *)((char *)(node)-offsetof(type, field)))

static inline void ph__queue_init(ph__queue *q) {
  q->next = q->prev = q;
}

/* For a sentinel: the list is empty. For a member: it is in no list. */
static inline int ph__queue_empty(const ph__queue *q) {
  return q->next == q;
}

/* The first or last member of list h, or NULL when it is empty. */
static inline ph__queue *ph__queue_head(const ph__queue *h) {
  return h->next == h ? NULL : h->next;
}

static inline ph__queue *ph__queue_tail(const ph__queue *h) {
  return h->prev == h ? NULL : h->prev;
}

/* The member after q in list h, or NULL when q is its last. */
static inline ph__queue *ph__queue_next(const ph__queue *h,
                                        const ph__queue *q) {
  return q->next == h ? NULL : q->next;
}

/* Unlinks q from whatever list holds it, if any. */
static inline void ph__queue_remove(ph__queue *q) {
  q->prev->next = q->next;
  q->next->prev = q->prev;
  ph__queue_init(q);
}

/* Moves q to the head of list h, out of any list it was in. */
static inline void ph__queue_insert_head(ph__queue *h, ph__queue *q) {
  ph__queue_remove(q);
  q->next = h->next;
  q->prev = h;
  h->next->prev = q;
  h->next = q;
}

#endif
