/* alloc.c: see alloc.h. */
#include "alloc.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void ph__oom(void) {
  /* ph__log formats into a buffer on the stack: it allocates nothing. */
  ph__log(PH_LOG_EMERGENCY, "out of memory; aborting");
  abort();
}

void *ph__xcheck(void *ptr) {
  if (ptr == NULL)
    ph__oom();
  return ptr;
}

void *ph__xmalloc(size_t size) {
  /* malloc(0) may return NULL without failing. */
  return ph__xcheck(malloc(size ? size : 1));
}

void *ph__xcalloc(size_t n, size_t size) {
  return ph__xcheck(calloc(n ? n : 1, size ? size : 1));
}

void *ph__xrealloc(void *ptr, size_t size) {
  return ph__xcheck(realloc(ptr, size ? size : 1));
}

char *ph__xstrdup(const char *s) {
  return ph__xcheck(strdup(s));
}

char *ph__xstrdup_or_null(const char *s) {
  return s ? ph__xstrdup(s) : NULL;
}

char *ph__xasprintf(const char *fmt, ...) {
  char *out;
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vasprintf(&out, fmt, ap);
  va_end(ap);
  if (n < 0)
    ph__oom();
  return out;
}

void ph__xjson_put(cJSON *obj, const char *key, cJSON *item) {
  if (!cJSON_AddItemToObject(obj, key, ph__xcheck(item)))
    ph__oom();
}

void ph__xjson_put_string(cJSON *obj, const char *key, const char *value) {
  ph__xjson_put(obj, key, cJSON_CreateString(value));
}

void ph__xjson_put_number(cJSON *obj, const char *key, double value) {
  ph__xjson_put(obj, key, cJSON_CreateNumber(value));
}

void ph__xjson_put_bool(cJSON *obj, const char *key, int value) {
  ph__xjson_put(obj, key, cJSON_CreateBool(value));
}

void ph__xjson_append(cJSON *arr, cJSON *item) {
  if (!cJSON_AddItemToArray(arr, ph__xcheck(item)))
    ph__oom();
}

char *ph__xjson_print(const cJSON *json) {
  return ph__xcheck(cJSON_PrintUnformatted(json));
}
