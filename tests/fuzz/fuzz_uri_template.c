/* fuzz_uri_template.c: resource templates, from the loader's check of a
 * plugin's uriTemplate to the registry's match of a client's URI against
 * it. The input is templates separated by newlines, a NUL byte, and a URI
 * (a client's resources/read, so a C string); the templates the loader
 * accepts become one department's, in order, and the URI is matched
 * against them. A match must name a template of the department and give
 * an object of strings, one for each variable, none holding a NUL. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "loader.h"
#include "registry.h"

/* Templates of one input that are tried; the rest are ignored. */
#define MAX_TEMPLATES 8

static volatile size_t sink;

static void check_vars(const cJSON *vars) {
  const cJSON *v;

  if (!cJSON_IsObject(vars))
    abort();
  cJSON_ArrayForEach(v, vars) {
    if (!cJSON_IsString(v) || v->string == NULL)
      abort();
    sink += strlen(v->valuestring);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, '\0', size);
  size_t tlen = nul != NULL ? (size_t)(nul - data) : size;
  ph__item items[MAX_TEMPLATES];
  char *text = malloc(tlen + 1), *uri, *line, *save = NULL;
  const ph__item *hit;
  ph__dept dept;
  cJSON *vars = NULL;

  if (text == NULL)
    abort();
  memcpy(text, data, tlen);
  text[tlen] = '\0';
  memset(&dept, 0, sizeof(dept));
  memset(items, 0, sizeof(items));
  dept.name = "fuzz";
  dept.items[PH__TEMPLATE] = items;
  for (line = strtok_r(text, "\n", &save);
       line != NULL && dept.nitems[PH__TEMPLATE] < MAX_TEMPLATES;
       line = strtok_r(NULL, "\n", &save))
    if (ph__uri_template_valid(line)) {
      items[dept.nitems[PH__TEMPLATE]].name = line;
      items[dept.nitems[PH__TEMPLATE]].order = dept.nitems[PH__TEMPLATE];
      dept.nitems[PH__TEMPLATE]++;
    }
  /* The URI in a buffer of its own, ending where the input does. */
  if (nul != NULL) {
    size_t ulen = size - tlen - 1;

    uri = malloc(ulen + 1);
    if (uri == NULL)
      abort();
    memcpy(uri, nul + 1, ulen);
    uri[ulen] = '\0';
  } else {
    uri = strdup("ok://items/42");
    if (uri == NULL)
      abort();
  }
  hit = ph__dept_match_template(&dept, uri, &vars);
  if (hit != NULL) {
    if (hit < items || hit >= items + dept.nitems[PH__TEMPLATE])
      abort();
    check_vars(vars);
  } else if (vars != NULL) {
    abort();
  }
  if (dept.nitems[PH__TEMPLATE] > 0 &&
      ph__dept_template(&dept, items[0].name) != &items[0])
    abort();
  cJSON_Delete(vars);
  free(uri);
  free(text);
  return 0;
}
