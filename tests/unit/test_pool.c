/* test_pool.c: the generic job queue: jobs embedded in their owner's
 * struct run on a worker thread, a job is queued once at most, a full queue
 * refuses at once, and destroying the pool runs what is still queued. */
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <uv.h>

#include "pool.h"

typedef struct task {
  int id;
  ph__job job;
  atomic_int started, ran;
  uv_thread_t thread;
  uv_sem_t *gate; /* Waited for before returning, or NULL. */
} task;

static void run_task(ph__job *job) {
  task *t = PH__CONTAINER_OF(job, task, job);

  t->thread = uv_thread_self();
  atomic_store(&t->started, 1);
  if (t->gate != NULL)
    uv_sem_wait(t->gate);
  atomic_fetch_add(&t->ran, 1);
}

static void wait_ran(task *t, int n) {
  int i;

  for (i = 0; i < 5000 && atomic_load(&t->ran) < n; i++)
    uv_sleep(1);
  cr_assert_eq(atomic_load(&t->ran), n);
}

Test(pool, a_job_runs_on_a_worker_and_may_run_again) {
  ph__pool *pool = ph__pool_create(2, 4);
  uv_thread_t self = uv_thread_self();
  task t = {.id = 1};

  cr_assert_not_null(pool);
  cr_assert_eq(ph__pool_submit(pool, &t.job, run_task), 0);
  wait_ran(&t, 1);
  cr_expect_not(uv_thread_equal(&t.thread, &self));
  cr_assert_eq(ph__pool_submit(pool, &t.job, run_task), 0,
               "out of the queue once taken");
  wait_ran(&t, 2);
  ph__pool_destroy(pool);
}

Test(pool, a_full_queue_and_a_queued_job_are_refused) {
  ph__pool *pool = ph__pool_create(1, 1);
  uv_sem_t gate;
  task busy = {.id = 1, .gate = &gate}, waiting = {.id = 2},
       refused = {.id = 3};

  cr_assert_eq(uv_sem_init(&gate, 0), 0);
  cr_assert_eq(ph__pool_submit(pool, &busy.job, run_task), 0);
  while (!atomic_load(&busy.started)) /* The worker took it. */
    uv_sleep(1);
  cr_assert_eq(ph__pool_submit(pool, &waiting.job, run_task), 0);
  cr_expect_eq(ph__pool_submit(pool, &waiting.job, run_task), UV_EALREADY);
  cr_expect_eq(ph__pool_submit(pool, &refused.job, run_task), UV_EBUSY);
  uv_sem_post(&gate);
  wait_ran(&busy, 1);
  wait_ran(&waiting, 1);
  cr_expect_eq(atomic_load(&refused.ran), 0);
  ph__pool_destroy(pool);
  uv_sem_destroy(&gate);
}

Test(pool, destroy_runs_what_is_queued) {
  ph__pool *pool = ph__pool_create(1, 8);
  uv_sem_t gate;
  task first = {.id = 1, .gate = &gate}, rest[4];
  int i;

  cr_assert_eq(uv_sem_init(&gate, 0), 0);
  cr_assert_eq(ph__pool_submit(pool, &first.job, run_task), 0);
  for (i = 0; i < 4; i++) {
    rest[i] = (task){.id = 2 + i};
    cr_assert_eq(ph__pool_submit(pool, &rest[i].job, run_task), 0);
  }
  uv_sem_post(&gate);
  ph__pool_destroy(pool);
  for (i = 0; i < 4; i++)
    cr_expect_eq(atomic_load(&rest[i].ran), 1);
  uv_sem_destroy(&gate);
}
