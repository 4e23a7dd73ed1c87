/* principal.c: see principal.h. */
#include "principal.h"

#include <cJSON.h>
#include <string.h>

static int same_member(const cJSON *a, const cJSON *b, const char *key) {
  const char *x =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, key));
  const char *y =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, key));

  return (x == NULL && y == NULL) || (x && y && strcmp(x, y) == 0);
}

int ph__principal_same(const char *a, const char *b) {
  cJSON *pa, *pb;
  int same;

  if (a == NULL || b == NULL)
    return a == b;
  pa = cJSON_Parse(a);
  pb = cJSON_Parse(b);
  same = cJSON_IsObject(pa) && cJSON_IsObject(pb) &&
         same_member(pa, pb, "iss") && same_member(pa, pb, "sub") &&
         same_member(pa, pb, "key_id");
  cJSON_Delete(pa);
  cJSON_Delete(pb);
  return same;
}
