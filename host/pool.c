/* pool.c: see pool.h. */
#include "pool.h"

#include "alloc.h"

#include <stdlib.h>
#include <uv.h>

struct ph__pool {
  uv_thread_t *threads;
  int nthreads;
  uv_mutex_t mu;
  uv_cond_t cv;  /* Signalled for each job queued, broadcast on stop. */
  ph__job *head; /* Taken from here... */
  ph__job *tail; /* ...queued here. */
  int queued, cap;
  int stopping;
};

static void worker_main(void *arg) {
  void (*work)(ph__job * job);
  ph__pool *pool = arg;
  ph__job *job;

  for (;;) {
    uv_mutex_lock(&pool->mu);
    while (pool->head == NULL && !pool->stopping)
      uv_cond_wait(&pool->cv, &pool->mu);
    job = pool->head;
    if (job == NULL) {
      uv_mutex_unlock(&pool->mu);
      return;
    }
    pool->head = job->next;
    if (pool->head == NULL)
      pool->tail = NULL;
    pool->queued--;
    job->next = NULL;
    job->queued = 0;
    /* Read under the lock: once unlocked, job may be queued again with
     * other work. */
    work = job->work;
    uv_mutex_unlock(&pool->mu);
    work(job);
  }
}

ph__pool *ph__pool_create(int workers, int queue) {
  uv_thread_options_t opts = {UV_THREAD_HAS_STACK_SIZE, 1 << 20};
  ph__pool *pool = ph__xcalloc(1, sizeof(*pool));
  int i;

  pool->cap = queue;
  uv_mutex_init(&pool->mu);
  uv_cond_init(&pool->cv);
  pool->threads = ph__xcalloc((size_t)workers, sizeof(uv_thread_t));
  for (i = 0; i < workers; i++) {
    if (uv_thread_create_ex(&pool->threads[i], &opts, worker_main, pool))
      break;
    pool->nthreads++;
  }
  if (pool->nthreads == 0) {
    ph__pool_destroy(pool);
    return NULL;
  }
  return pool;
}

void ph__pool_destroy(ph__pool *pool) {
  int i;

  if (pool == NULL)
    return;
  uv_mutex_lock(&pool->mu);
  pool->stopping = 1;
  uv_cond_broadcast(&pool->cv);
  uv_mutex_unlock(&pool->mu);
  for (i = 0; i < pool->nthreads; i++)
    uv_thread_join(&pool->threads[i]);
  uv_mutex_destroy(&pool->mu);
  uv_cond_destroy(&pool->cv);
  free(pool->threads);
  free(pool);
}

int ph__pool_submit(ph__pool *pool, ph__job *job, void (*work)(ph__job *job)) {
  uv_mutex_lock(&pool->mu);
  if (job->queued) {
    uv_mutex_unlock(&pool->mu);
    return UV_EALREADY;
  }
  if (pool->queued >= pool->cap || pool->stopping) {
    uv_mutex_unlock(&pool->mu);
    return UV_EBUSY;
  }
  job->work = work;
  job->queued = 1;
  job->next = NULL;
  if (pool->tail != NULL)
    pool->tail->next = job;
  else
    pool->head = job;
  pool->tail = job;
  pool->queued++;
  uv_cond_signal(&pool->cv);
  uv_mutex_unlock(&pool->mu);
  return 0;
}

int ph__pool_queued(ph__pool *pool) {
  int n;

  uv_mutex_lock(&pool->mu);
  n = pool->queued;
  uv_mutex_unlock(&pool->mu);
  return n;
}
