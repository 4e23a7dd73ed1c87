/* fuzz_schema.c: the JSON Schema compiler and validator (schema.c). The
 * input is a schema, a NUL byte and an instance; without a NUL the whole
 * input is the schema and is validated against itself, as a schema is
 * JSON too. Both go in as a tool's inputSchema and arguments do: text
 * that cJSON parsed, then compiled once and validated. Every refusal must
 * say why, and validating the same instance twice must give the same
 * answer, since a compiled schema is read-only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "log.h"
#include "schema.h"

/* A validation's verdict, and a refusal must come with its reason. */
static int validate(const ph__schema *s, const cJSON *instance) {
  char *err = NULL;
  int rc = ph__schema_validate(s, instance, &err);

  if ((rc != 0) != (err != NULL))
    abort();
  free(err);
  return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  ph__log_set_level(PH_LOG_EMERGENCY);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, '\0', size);
  size_t schema_len = nul != NULL ? (size_t)(nul - data) : size;
  char *schema_text = malloc(schema_len + 1), *err = NULL;
  cJSON *instance = NULL;
  ph__schema *s;
  int rc;

  if (schema_text == NULL)
    abort();
  memcpy(schema_text, data, schema_len);
  schema_text[schema_len] = '\0';
  s = ph__schema_compile_text(schema_text, &err);
  if (s == NULL) {
    if (err == NULL)
      abort();
    goto cleanup;
  }
  if (nul != NULL)
    instance =
        cJSON_ParseWithLength((const char *)nul + 1, size - schema_len - 1);
  else
    instance = cJSON_Parse(schema_text);
  if (instance == NULL)
    goto cleanup;
  rc = validate(s, instance);
  if (validate(s, instance) != rc)
    abort();

cleanup:
  cJSON_Delete(instance);
  ph__schema_free(s);
  free(schema_text);
  free(err);
  return 0;
}
