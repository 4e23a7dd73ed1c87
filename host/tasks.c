/* tasks.c: see tasks.h. */
#include "tasks.h"

#include "alloc.h"
#include "call.h"
#include "log.h"
#include "principal.h"

#include <openssl/rand.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Live tasks at once; past it the oldest finished one makes room. */
#define MAX_TASKS 1024
/* How long a task is kept after creation, result included. */
#define TASK_TTL_MS (10 * 60 * 1000)
/* A call that settles within this is answered directly, without a task. */
#define TASK_GRACE_MS 100
/* What we suggest between two tasks/get. */
#define POLL_INTERVAL_MS 500
#define TASK_ID_BYTES 16

struct ph__task {
  ph__task *prev, *next; /* The table, oldest first. */
  int refs;
  int visible; /* The client got the handle. */
  int retired; /* Out of the table; freed with the last reference. */
  char id[2 * TASK_ID_BYTES + 1];
  char *department, *principal;
  char *tool, *args_json;
  cJSON *caps;
  int status;
  uint64_t created_at, grace_until; /* uv_now() */
  char created[32], updated[32];    /* ISO 8601, UTC. */
  cJSON *result;                    /* Completed: the tool result. */
  cJSON *error;                     /* Failed: the JSON-RPC error object. */
  cJSON *pending;   /* Input required: the open input requests by key. */
  cJSON *responses; /* Every answer so far, by key. */
  char *request_state;
  ph__session *s; /* The calls' session; NULL once retired. */
  ph__outlet out;
  ph__outlet *origin; /* The creating request, during the grace period. */
  char *origin_id;
};

static struct {
  ph__task *head, *tail;
  size_t n;
  uv_timer_t timer;
  int timer_ready;
  ph__task_answer_fn answer;
} T;

static const char *const status_names[] = {"working", "input_required",
                                           "completed", "failed", "cancelled"};

static void iso_now(char *buf, size_t size) {
  struct timespec ts;
  struct tm tm;
  size_t n;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static int terminal(const ph__task *t) {
  return t->status == PH__TASK_COMPLETED || t->status == PH__TASK_FAILED ||
         t->status == PH__TASK_CANCELLED;
}

/* Not inlined: at -O3 GCC follows the free into callers that hold a
 * second reference and reports a use after free it cannot rule out. */
__attribute__((noinline)) static void task_unref(ph__task *t) {
  if (--t->refs > 0)
    return;
  free(t->department);
  free(t->principal);
  free(t->tool);
  free(t->args_json);
  cJSON_Delete(t->caps);
  cJSON_Delete(t->result);
  cJSON_Delete(t->error);
  cJSON_Delete(t->pending);
  cJSON_Delete(t->responses);
  free(t->request_state);
  free(t->origin_id);
  free(t);
}

/* Takes the task out of the table and cancels whatever it still runs. */
static void task_retire(ph__task *t) {
  ph__session *s = t->s;

  if (t->retired)
    return;
  t->retired = 1;
  if (t->prev != NULL)
    t->prev->next = t->next;
  else
    T.head = t->next;
  if (t->next != NULL)
    t->next->prev = t->prev;
  else
    T.tail = t->prev;
  T.n--;
  t->s = NULL;
  if (s != NULL)
    ph__session_close(s); /* Its calls answer the retired outlet: ignored. */
  task_unref(t);
}

static cJSON *handle_json(const ph__task *t) {
  cJSON *o = cJSON_CreateObject();

  cJSON_AddStringToObject(o, "taskId", t->id);
  cJSON_AddStringToObject(o, "status", status_names[t->status]);
  cJSON_AddStringToObject(o, "createdAt", t->created);
  cJSON_AddStringToObject(o, "lastUpdatedAt", t->updated);
  cJSON_AddNumberToObject(o, "ttlMs", TASK_TTL_MS);
  cJSON_AddNumberToObject(o, "pollIntervalMs", POLL_INTERVAL_MS);
  return o;
}

/* The grace period is over and the call still runs: the request gets the
 * handle, and the task answers tasks/get from now on. */
static void promote(ph__task *t) {
  ph__outlet *origin = t->origin;
  cJSON *handle = handle_json(t);

  t->origin = NULL;
  t->visible = 1;
  cJSON_AddStringToObject(handle, "resultType", "task");
  T.answer(origin, t->origin_id, handle);
}

static void arm(void);

static void on_tick(uv_timer_t *timer) {
  uint64_t now = uv_now(timer->loop);
  ph__task *t, *next;

  for (t = T.head; t != NULL; t = next) {
    next = t->next;
    if (t->origin != NULL && now >= t->grace_until)
      promote(t);
    else if (t->origin == NULL && now - t->created_at >= TASK_TTL_MS)
      task_retire(t);
  }
  arm();
}

/* Wakes up at the next grace deadline or expiry, whichever is first. */
static void arm(void) {
  uint64_t now, due = UINT64_MAX, at;
  ph__task *t;

  if (!T.timer_ready)
    return;
  if (T.head == NULL) {
    uv_timer_stop(&T.timer);
    return;
  }
  now = uv_now(T.timer.loop);
  for (t = T.head; t != NULL; t = t->next) {
    at = t->origin != NULL ? t->grace_until : t->created_at + TASK_TTL_MS;
    if (at < due)
      due = at;
  }
  uv_timer_start(&T.timer, on_tick, due > now ? due - now : 0, 0);
}

/* Keeps what a call answered: a result, an input_required round, an error,
 * or nothing (the call was cancelled). */
static void settle(ph__task *t, const char *json, size_t len) {
  cJSON *msg = json ? cJSON_ParseWithLength(json, len) : NULL;
  cJSON *result = cJSON_GetObjectItemCaseSensitive(msg, "result");
  cJSON *error = cJSON_GetObjectItemCaseSensitive(msg, "error");
  cJSON *meta, *state;
  const char *type;

  iso_now(t->updated, sizeof(t->updated));
  type = cJSON_GetStringValue(
      cJSON_GetObjectItemCaseSensitive(result, "resultType"));
  if (cJSON_IsObject(error)) {
    t->status = PH__TASK_FAILED;
    t->error = cJSON_DetachItemViaPointer(msg, error);
  } else if (type != NULL && strcmp(type, "input_required") == 0) {
    t->status = PH__TASK_INPUT_REQUIRED;
    cJSON_Delete(t->pending);
    t->pending =
        cJSON_DetachItemFromObjectCaseSensitive(result, "inputRequests");
    state = cJSON_GetObjectItemCaseSensitive(result, "requestState");
    free(t->request_state);
    t->request_state =
        cJSON_IsString(state) ? ph__xstrdup(state->valuestring) : NULL;
  } else if (cJSON_IsObject(result)) {
    t->status = PH__TASK_COMPLETED;
    /* The tasks/get response carries serverInfo; the result need not. */
    meta = cJSON_GetObjectItemCaseSensitive(result, "_meta");
    cJSON_DeleteItemFromObjectCaseSensitive(
        meta, "io.modelcontextprotocol/serverInfo");
    if (cJSON_IsObject(meta) && meta->child == NULL)
      cJSON_DeleteItemFromObjectCaseSensitive(result, "_meta");
    t->result = cJSON_DetachItemViaPointer(msg, result);
  } else {
    t->status = PH__TASK_CANCELLED;
  }
  cJSON_Delete(msg);
}

static ph__task *task_of(ph__outlet *o) {
  return (ph__task *)(void *)((char *)o - offsetof(ph__task, out));
}

/* Notifications of the call reach the client only while the request is
 * open; a task has no stream of its own. */
static void out_send(ph__outlet *o, const char *json, size_t len) {
  ph__task *t = task_of(o);

  if (t->origin != NULL)
    ph__outlet_send(t->origin, json, len);
}

static void out_finish(ph__outlet *o, int outcome, const char *json,
                       size_t len) {
  ph__task *t = task_of(o);
  ph__outlet *origin = t->origin;

  if (t->retired)
    return;
  if (origin != NULL) {
    /* Settled within the grace period: answered as a plain call, and the
     * task never existed for the client. */
    t->origin = NULL;
    origin->finish(origin, outcome, json, len);
    task_retire(t);
    arm();
    return;
  }
  if (t->status != PH__TASK_CANCELLED)
    settle(t, json, len);
}

void ph__tasks_init(ph__task_answer_fn answer) {
  T.answer = answer;
}

/* Room for one more task: the oldest finished one goes when full. */
static int make_room(void) {
  ph__task *t;

  if (T.n < MAX_TASKS)
    return 0;
  for (t = T.head; t != NULL; t = t->next) {
    if (t->visible && terminal(t)) {
      task_retire(t);
      return 0;
    }
  }
  return -1;
}

ph__task *ph__task_new(const char *department, const char *principal,
                       const cJSON *caps, const char *tool,
                       const char *args_json, ph__outlet *origin,
                       const char *id_json) {
  unsigned char raw[TASK_ID_BYTES];
  ph__task *t;
  int i;

  if (make_room() != 0) {
    ph__warn("tasks: %d tasks are running; refusing another", MAX_TASKS);
    return NULL;
  }
  if (RAND_bytes(raw, sizeof(raw)) != 1)
    return NULL;
  if (!T.timer_ready) {
    uv_timer_init(ph__calls_loop(), &T.timer);
    /* Tasks alone do not keep the host running. */
    uv_unref((uv_handle_t *)&T.timer);
    T.timer_ready = 1;
  }
  t = ph__xcalloc(1, sizeof(*t));
  t->refs = 2;
  for (i = 0; i < TASK_ID_BYTES; i++)
    sprintf(t->id + 2 * i, "%02x", raw[i]);
  t->department = ph__xstrdup(department);
  t->principal = principal ? ph__xstrdup(principal) : NULL;
  t->tool = ph__xstrdup(tool);
  t->args_json = ph__xstrdup(args_json);
  t->caps = caps ? cJSON_Duplicate(caps, 1) : cJSON_CreateObject();
  t->status = PH__TASK_WORKING;
  t->created_at = uv_now(ph__calls_loop());
  iso_now(t->created, sizeof(t->created));
  memcpy(t->updated, t->created, sizeof(t->updated));
  t->responses = cJSON_CreateObject();
  t->s = ph__session_new(department);
  t->s->modern = 1;
  snprintf(t->s->version, sizeof(t->s->version), "%s", "2026-07-28");
  t->s->principal = principal ? ph__xstrdup(principal) : NULL;
  t->out.send = out_send;
  t->out.finish = out_finish;
  t->origin = origin;
  t->origin_id = ph__xstrdup(id_json);
  t->prev = T.tail;
  if (T.tail != NULL)
    T.tail->next = t;
  else
    T.head = t;
  T.tail = t;
  T.n++;
  return t;
}

ph__session *ph__task_session(ph__task *t) {
  return t->s;
}

ph__outlet *ph__task_outlet(ph__task *t) {
  return &t->out;
}

void ph__task_started(ph__task *t) {
  if (!t->retired) {
    t->grace_until = uv_now(ph__calls_loop()) + TASK_GRACE_MS;
    arm();
  }
  task_unref(t);
}

ph__task *ph__task_find(const char *id, const char *department,
                        const char *principal) {
  uint64_t now = uv_now(ph__calls_loop());
  ph__task *t;

  for (t = T.head; t != NULL; t = t->next) {
    if (!t->visible || strcmp(t->id, id) != 0)
      continue;
    /* Another principal's task does not exist for this one. */
    if (strcmp(t->department, department) != 0 ||
        !ph__principal_same(t->principal, principal) ||
        now - t->created_at >= TASK_TTL_MS)
      return NULL;
    return t;
  }
  return NULL;
}

cJSON *ph__task_detail(const ph__task *t) {
  cJSON *o = handle_json(t);

  if (t->status == PH__TASK_COMPLETED && t->result != NULL)
    cJSON_AddItemToObject(o, "result", cJSON_Duplicate(t->result, 1));
  else if (t->status == PH__TASK_FAILED && t->error != NULL)
    cJSON_AddItemToObject(o, "error", cJSON_Duplicate(t->error, 1));
  else if (t->status == PH__TASK_INPUT_REQUIRED && t->pending != NULL)
    cJSON_AddItemToObject(o, "inputRequests", cJSON_Duplicate(t->pending, 1));
  return o;
}

void ph__task_cancel(ph__task *t) {
  ph__session *s = t->s;

  if (terminal(t))
    return;
  t->status = PH__TASK_CANCELLED;
  iso_now(t->updated, sizeof(t->updated));
  cJSON_Delete(t->pending);
  t->pending = NULL;
  if (s == NULL)
    return;
  /* Each cancelled call answers the outlet with nothing; the status
   * stays cancelled. The session may be closed on the way. */
  ph__session_ref(s);
  while (s->ninflight > 0)
    ph__call_cancel(s->inflight[s->ninflight - 1]);
  ph__session_unref(s);
}

int ph__task_update(ph__task *t, const cJSON *responses) {
  const cJSON *r;

  if (t->status != PH__TASK_INPUT_REQUIRED || !cJSON_IsObject(t->pending))
    return 0;
  cJSON_ArrayForEach(r, responses) {
    if (r->string == NULL ||
        cJSON_GetObjectItemCaseSensitive(t->pending, r->string) == NULL)
      continue;
    cJSON_DeleteItemFromObjectCaseSensitive(t->responses, r->string);
    cJSON_AddItemToObject(t->responses, r->string, cJSON_Duplicate(r, 1));
    cJSON_DeleteItemFromObjectCaseSensitive(t->pending, r->string);
  }
  iso_now(t->updated, sizeof(t->updated));
  return t->pending->child == NULL;
}

cJSON *ph__task_rerun_params(ph__task *t, const char **id_json,
                             const char **department, const cJSON **caps) {
  cJSON *params = cJSON_CreateObject(), *args;

  t->status = PH__TASK_WORKING;
  iso_now(t->updated, sizeof(t->updated));
  cJSON_Delete(t->pending);
  t->pending = NULL;
  cJSON_AddStringToObject(params, "name", t->tool);
  args = cJSON_Parse(t->args_json);
  cJSON_AddItemToObject(params, "arguments",
                        args ? args : cJSON_CreateObject());
  cJSON_AddItemToObject(params, "inputResponses",
                        cJSON_Duplicate(t->responses, 1));
  if (t->request_state != NULL)
    cJSON_AddStringToObject(params, "requestState", t->request_state);
  *id_json = t->origin_id;
  *department = t->department;
  *caps = t->caps;
  return params;
}

void ph__tasks_cancel_all(void) {
  ph__task *t;

  while ((t = T.head) != NULL) {
    t->refs++;
    /* A request still in its grace period gets its (empty) answer. */
    ph__task_cancel(t);
    task_retire(t);
    task_unref(t);
  }
  arm();
}
