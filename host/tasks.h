/* tasks.h: the 2026-07-28 tasks extension (io.modelcontextprotocol/tasks,
 * SEP-2663) on the host side: a bounded table of tasks, each a tools/call
 * that outlived its request.
 *
 * A task runs its tool as an ordinary call on a session of its own, and the
 * call answers through the task's outlet instead of the request's. For a
 * short grace period the outlet still forwards to the request, so a call
 * that settles quickly (a result, an error, an input_required round) is
 * answered directly, as SEP-2663 allows. A call still running after it
 * becomes visible: the request gets the task handle (resultType "task")
 * and what the call answers later is kept for tasks/get. Tasks expire a
 * fixed time after creation; their ids come from a CSPRNG and they belong
 * to the principal and department that created them. Loop thread only. */
#ifndef PH_TASKS_H
#define PH_TASKS_H

#include "session.h"

#include <cJSON.h>

#define PH__TASKS_EXTENSION "io.modelcontextprotocol/tasks"

typedef struct ph__task ph__task;

enum ph__task_status {
  PH__TASK_WORKING,
  PH__TASK_INPUT_REQUIRED,
  PH__TASK_COMPLETED,
  PH__TASK_FAILED,
  PH__TASK_CANCELLED
};

/* How the protocol sends a modern result to an outlet: finishes `o` with
 * {"jsonrpc":"2.0","id":id_json,"result":result} after decorating it.
 * Takes ownership of result. */
typedef void (*ph__task_answer_fn)(ph__outlet *o, const char *id_json,
                                   cJSON *result);

/* Once, before the first task: how task handles go out. */
void ph__tasks_init(ph__task_answer_fn answer);

/* A new task for a tools/call of `tool` with `args_json`, made by a request
 * that answers through `origin` with id `id_json`; principal may be NULL
 * (anonymous). caps are the request's client capabilities (copied; re-runs
 * after tasks/update use them). Returns the task with two references (the
 * table's and the caller's), or NULL when the table is full of live
 * tasks. The caller starts the call on ph__task_session() with
 * ph__task_outlet() as its outlet, then calls ph__task_started(). */
ph__task *ph__task_new(const char *department, const char *principal,
                       const cJSON *caps, const char *tool,
                       const char *args_json, ph__outlet *origin,
                       const char *id_json);

/* The session the task's calls run on and the outlet they answer to;
 * borrowed, valid while the task is in the table. */
ph__session *ph__task_session(ph__task *t);
ph__outlet *ph__task_outlet(ph__task *t);

/* The call was started (or answered already): the grace period begins and
 * the caller's reference is dropped. */
void ph__task_started(ph__task *t);

/* A visible, unexpired task of this department and caller, or NULL: the
 * caller is compared as ph__principal_same does (issuer and subject), so
 * a refreshed token still finds its tasks. Borrowed. */
ph__task *ph__task_find(const char *id, const char *department,
                        const char *principal);

/* tasks/get: the DetailedTask (status, times, and the result, the error or
 * the pending input requests), without resultType and _meta. */
cJSON *ph__task_detail(const ph__task *t);

/* tasks/cancel: a task not yet terminal becomes cancelled and its call is
 * cancelled; a terminal one is left as it is. */
void ph__task_cancel(ph__task *t);

/* tasks/update: answers to pending input requests (keys that are not
 * pending are ignored). Returns 1 when nothing is pending any more and the
 * tool must run again (ph__task_rerun_params), else 0. */
int ph__task_update(ph__task *t, const cJSON *responses);

/* The tools/call params of the next round: name, arguments, every answer
 * so far as inputResponses and the last requestState. The task is working
 * again from here on. Caller owns the result. Also the id and department
 * the round runs under, borrowed. */
cJSON *ph__task_rerun_params(ph__task *t, const char **id_json,
                             const char **department, const cJSON **caps);

/* Cancels every task (shutdown): their calls stop holding it up. */
void ph__tasks_cancel_all(void);

#endif
