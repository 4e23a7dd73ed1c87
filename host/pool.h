/* pool.h: a bounded job queue served by worker threads. Generic: it knows
 * nothing of calls or instances, needs only libuv and the allocator, and
 * sits at the bottom of host/ beside http.c; an instance owns one pool
 * (instance.c), and the call layer (call.c) queues its calls on it.
 *
 * As with libuv's struct uv__work, the job is embedded in the caller's own
 * struct and the caller gets back to that struct from the job with
 * PH__CONTAINER_OF, so queueing allocates nothing. A job is in the queue at
 * most once: submitting one that is still queued is refused. It leaves the
 * queue when a worker takes it, before its work runs, so work may submit
 * its own job again; after that the pool never touches the job, so work may
 * also free it.
 *
 * When the pool is destroyed the workers first run every job still queued.
 * Errors are libuv's (error.h). Any thread, except that ph__pool_destroy
 * must not run on one of the pool's own workers (it joins them). */
#ifndef PH_POOL_H
#define PH_POOL_H

#include <stddef.h>

/* The struct of type `type` whose member `member` ptr points at. */
#define PH__CONTAINER_OF(ptr, type, member)                                    \
  ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct ph__pool ph__pool;
typedef struct ph__job ph__job;

/* Zeroed by its owner before its first submission; the fields are the
 * pool's. */
struct ph__job {
  void (*work)(ph__job *job); /* Runs on a worker; set by ph__pool_submit. */
  ph__job *next;              /* The queue's link. */
  int queued;                 /* In the queue (guarded by the pool's lock). */
};

/* A pool of `workers` threads (1 MiB stacks) and room for `queue` waiting
 * jobs. NULL when not even one thread starts. The caller owns it. */
ph__pool *ph__pool_create(int workers, int queue);

/* Stops taking jobs, lets the workers run what is queued, joins them and
 * frees the pool. NULL is a no-op. */
void ph__pool_destroy(ph__pool *pool);

/* Queues job (borrowed until its work starts) to run work(job) on a worker.
 * Returns 0, UV_EALREADY when job is queued already, or UV_EBUSY when the
 * queue is full or the pool is stopping; on an error nothing was queued. */
int ph__pool_submit(ph__pool *pool, ph__job *job, void (*work)(ph__job *job));

/* Jobs waiting for a worker now (the metrics' queue depth). */
int ph__pool_queued(ph__pool *pool);

#endif
