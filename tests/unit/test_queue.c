/* test_queue.c: the intrusive list of queue.h, above all what broke the
 * HTTP session table's LRU list (issue 9): unlinking a node that is in no
 * list must leave every list whole, ends included. */
#include <criterion/criterion.h>

#include "queue.h"

typedef struct item {
  int value;
  ph__queue node;
} item;

static int value_at(const ph__queue *q) {
  return PH__QUEUE_DATA(q, item, node)->value;
}

/* The values of list h from head to tail, as digits. */
static int order(const ph__queue *h) {
  const ph__queue *q;
  int digits = 0;

  for (q = ph__queue_head(h); q != NULL; q = ph__queue_next(h, q))
    digits = digits * 10 + value_at(q);
  return digits;
}

TestSuite(queue);

Test(queue, insert_at_the_head_and_take_from_the_tail) {
  ph__queue h;
  item it[3] = {{1, {0}}, {2, {0}}, {3, {0}}};
  int i;

  ph__queue_init(&h);
  cr_expect(ph__queue_empty(&h));
  cr_expect_null(ph__queue_head(&h));
  cr_expect_null(ph__queue_tail(&h));
  for (i = 0; i < 3; i++) {
    ph__queue_init(&it[i].node);
    ph__queue_insert_head(&h, &it[i].node);
  }
  cr_expect_eq(order(&h), 321);
  cr_expect_eq(value_at(ph__queue_tail(&h)), 1);
  ph__queue_insert_head(&h, &it[0].node); /* Used again: moves. */
  cr_expect_eq(order(&h), 132);
  ph__queue_insert_head(&h, &it[0].node); /* Already the head. */
  cr_expect_eq(order(&h), 132);
}

Test(queue, unlinking_what_is_in_no_list_changes_nothing) {
  ph__queue h;
  item it[3] = {{1, {0}}, {2, {0}}, {3, {0}}}, loose = {9, {0}};
  int i;

  ph__queue_init(&h);
  for (i = 0; i < 3; i++) {
    ph__queue_init(&it[i].node);
    ph__queue_insert_head(&h, &it[i].node);
  }
  ph__queue_init(&loose.node);
  ph__queue_remove(&loose.node); /* Never linked. */
  cr_expect_eq(order(&h), 321);
  cr_expect_eq(value_at(ph__queue_tail(&h)), 1);
  ph__queue_remove(&it[1].node);
  ph__queue_remove(&it[1].node); /* Twice. */
  cr_expect(ph__queue_empty(&it[1].node));
  cr_expect_eq(order(&h), 31);
  ph__queue_insert_head(&h, &loose.node); /* A newcomer keeps the rest. */
  cr_expect_eq(order(&h), 931);
  cr_expect_eq(value_at(ph__queue_tail(&h)), 1);
}

Test(queue, a_node_moves_between_lists) {
  ph__queue a, b;
  item x = {1, {0}}, y = {2, {0}};

  ph__queue_init(&a);
  ph__queue_init(&b);
  ph__queue_init(&x.node);
  ph__queue_init(&y.node);
  ph__queue_insert_head(&a, &x.node);
  ph__queue_insert_head(&a, &y.node);
  ph__queue_insert_head(&b, &x.node);
  cr_expect_eq(order(&a), 2);
  cr_expect_eq(order(&b), 1);
  ph__queue_remove(&y.node);
  cr_expect(ph__queue_empty(&a));
}
