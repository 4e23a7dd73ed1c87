/* fuzz_params.c: the database plugin's parameter conversion for PostgreSQL
 * (pg_values.c), which turns a query's params into the text each
 * placeholder is sent as. The input is the params argument as JSON; like
 * the tools, only an array goes on. Each value must come back as a string
 * (or NULL for null), an array of scalars as an array literal in braces,
 * and everything must be freed whether the conversion worked or not. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "engine_pg.h"

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cJSON *params = cJSON_ParseWithLength((const char *)data, size);
  const cJSON *p;
  char **values = NULL, *err = NULL;
  int n = -1, i = 0, rc;

  if (!cJSON_IsArray(params))
    goto cleanup;
  rc = pg_param_texts(params, &values, &n, &err);
  if (n != cJSON_GetArraySize(params))
    abort();
  if (rc != DB_OK) {
    if (rc != DB_EINVALID || err == NULL)
      abort();
    goto cleanup;
  }
  cJSON_ArrayForEach(p, params) {
    size_t len = values[i] != NULL ? strlen(values[i]) : 0;

    if ((values[i] == NULL) != cJSON_IsNull(p))
      abort();
    if (cJSON_IsArray(p) &&
        (len < 2 || values[i][0] != '{' || values[i][len - 1] != '}'))
      abort();
    sink += len;
    i++;
  }

cleanup:
  pg_free_texts(values, n);
  free(err);
  cJSON_Delete(params);
  return 0;
}
