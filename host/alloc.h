/* alloc.h: the host's allocator. At the bottom of host/, with error.h and
 * log.h; every layer above may include it.
 *
 * Memory the host takes for itself comes from these functions and is never
 * NULL: when the system has none left they log one line and abort(). Why
 * abort rather than check and unwind: a failed allocation while building a
 * generation, copying a descriptor or starting a call has no useful way to
 * go on, every call site would need a failure branch of its own (hundreds,
 * none of them exercised by the tests), and the only honest recovery is a
 * restart, which the service manager does. This is Redis's policy
 * (zmalloc); libuv and SQLite check instead because they are libraries and
 * must hand the failure to their caller, which the host has no need to do.
 * Two places keep a checked path because failing there is an answer, not a
 * crash: http.c refuses one response and keeps its connections, and
 * api->alloc returns NULL to the plugin, as plughost.h promises.
 *
 * cJSON allocates with its own malloc (its hooks are process-wide and shared
 * with plugins, so the host leaves them alone). A builder or printer of
 * cJSON returns NULL only when memory is gone: its result goes through
 * ph__xcheck(), so it aborts the same way. A NULL from cJSON_Parse is a
 * refusal of the text, handled where it is parsed.
 *
 * Any thread. */
#ifndef PH_ALLOC_H
#define PH_ALLOC_H

#include <cJSON.h>
#include <stddef.h>

void *ph__xmalloc(size_t size);
void *ph__xcalloc(size_t n, size_t size);
void *ph__xrealloc(void *ptr, size_t size);

/* A copy of s, which must not be NULL. */
char *ph__xstrdup(const char *s);

/* A copy of s, or NULL for NULL: for optional strings. */
char *ph__xstrdup_or_null(const char *s);

/* printf into fresh memory. */
char *ph__xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Returns ptr, the result of a library call that returns NULL only when
 * memory is gone (cJSON_CreateObject, cJSON_PrintUnformatted, ...), and
 * aborts when it is NULL. */
void *ph__xcheck(void *ptr);

/* cJSON under the same policy. put: adds item (a cJSON_Create* result,
 * checked here) to the object obj under key. */
void ph__xjson_put(cJSON *obj, const char *key, cJSON *item);
void ph__xjson_put_string(cJSON *obj, const char *key, const char *value);
void ph__xjson_put_number(cJSON *obj, const char *key, double value);
void ph__xjson_put_bool(cJSON *obj, const char *key, int value);

/* Appends item (checked) to the array arr. */
void ph__xjson_append(cJSON *arr, cJSON *item);

/* cJSON_PrintUnformatted(json), checked. Caller frees. */
char *ph__xjson_print(const cJSON *json);

/* Logs that memory is gone and aborts: for library calls that report it by
 * a false return (cJSON_AddItemToObject). */
_Noreturn void ph__oom(void);

#endif
