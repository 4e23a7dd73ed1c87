/* loader.h: turning a .so file into a plugin, and nothing else. A
 * ph__plugin is loaded code: the private copy of one .so, dlopen'ed, its
 * descriptor checked against the published ABI layouts, and every string
 * and table of the descriptor copied into host memory. It is reference
 * counted; the last reference dlcloses it and removes its cached copy.
 * Initialising the code into instances is instance.h's.
 *
 * Layers: the bottom of the plugin stack, above only schema.h, config.h
 * (name rules) and log.h; instance.h builds on it. Any thread: a reload
 * loads off the loop. */
#ifndef PH_LOADER_H
#define PH_LOADER_H

#include "plughost.h"
#include "schema.h"

#include <cJSON.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ph__tool_def {
  char *name, *title, *description;
  cJSON *input_schema;  /* Always an object schema. */
  cJSON *output_schema; /* NULL if none. */
  ph__schema *input_validator;
  ph__schema *output_validator; /* NULL if none. */
  ph_tool_annotations annotations;
  char *required_scope;
  uint32_t timeout_ms;
  int run_inline;
  ph_tool_fn handler;
  cJSON *extra; /* Members merged into the listing, or NULL. */
} ph__tool_def;

typedef struct ph__resource_def {
  char *uri, *name, *title, *description, *mime_type;
  ph_read_fn handler;
  cJSON *extra;
} ph__resource_def;

typedef struct ph__template_def {
  char *uri_template, *name, *title, *description, *mime_type;
  ph_read_fn handler;
  ph_complete_fn complete;
  cJSON *extra;
} ph__template_def;

typedef struct ph__prompt_arg_def {
  char *name, *title, *description;
  int required;
} ph__prompt_arg_def;

typedef struct ph__prompt_def {
  char *name, *title, *description;
  ph__prompt_arg_def *args;
  size_t nargs;
  ph_prompt_fn handler;
  ph_complete_fn complete;
  cJSON *extra;
} ph__prompt_def;

typedef struct ph__plugin {
  atomic_long refs;
  char *name, *version, *description;
  char *source_path; /* The .so in the plugin directory. */
  char *cache_path;  /* The private copy actually mapped. */
  char hash[65];     /* SHA-256 of the file, hex: its identity. */
  void *dl;
  uint16_t abi_minor;
  ph_init_fn init;
  ph_fini_fn fini;
  ph_service_fn service;
  char **provides, **requires; /* NULL-terminated. */
  ph__tool_def *tools;
  size_t ntools;
  ph__resource_def *resources;
  size_t nresources;
  ph__template_def *templates;
  size_t ntemplates;
  ph__prompt_def *prompts;
  size_t nprompts;
} ph__plugin;

/* Loads one .so: copies it into cache_dir, dlopens the copy and validates
 * and copies the descriptor. Returns it with one reference, or NULL on
 * refusal with *err (malloc'd) saying why; the caller logs
 * "<file>: <err>". */
ph__plugin *ph__plugin_load(const char *path, const char *cache_dir,
                            char **err);

/* Loads every *.so in dir, in name order, logging each refusal. Returns the
 * count; *out is a malloc'd array the caller owns (with one reference on
 * each plugin). */
size_t ph__plugin_scan(const char *dir, const char *cache_dir,
                       ph__plugin ***out);

/* The same, for a reload: a file whose content hash equals one of
 * `current` reuses that plugin (no new dlopen); a file that fails to load
 * keeps the plugin `current` had loaded from the same path. */
size_t ph__plugin_rescan(const char *dir, const char *cache_dir,
                         ph__plugin *const *current, size_t ncurrent,
                         ph__plugin ***out);

void ph__plugin_ref(ph__plugin *p);
void ph__plugin_unref(ph__plugin *p);

/* Whether the plugin provides `service`. */
int ph__plugin_provides(const ph__plugin *p, const char *service);

/* Whether t is a resource template the host serves: an absolute RFC 6570
 * level 1 template (literal text and {name} expressions, at least one),
 * which is what ph__dept_match_template() expects. */
int ph__uri_template_valid(const char *t);

/* Reads the idx-th item of a plugin table whose items are `size` bytes
 * (the size the plugin's minor published) as an item of this host's `host`
 * bytes: the item itself when the sizes agree, else a copy in scratch
 * (`host` bytes) with the fields the plugin's minor did not have zeroed. */
const void *ph__table_item(const void *table, size_t size, size_t host,
                           size_t idx, void *scratch);

#endif
