/* loader.h: turning .so files into plugins and plugins into instances.
 *
 * A ph__plugin is loaded code: the private copy of one .so, dlopen'ed, with
 * every string and table of its descriptor copied into host memory. A
 * ph_instance is that code initialised with a prefix and a config inside a
 * department. Both are reference counted; the last reference to an instance
 * runs fini, the last reference to a plugin dlcloses it and removes its
 * cached copy. */
#ifndef PH_LOADER_H
#define PH_LOADER_H

#include "plughost.h"
#include "schema.h"

#include <cJSON.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ph__pool ph__pool;
typedef struct ph__watch ph__watch;

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

struct ph_instance {
  atomic_long refs; /* Generations using it + calls running on it. */
  ph__plugin *plugin;
  char *department;
  char *prefix;
  char *config_json;
  char *label; /* "department/prefix (plugin)" for log lines. */
  void *state;
  ph__pool *pool;
  int initialised;       /* init succeeded: fini is owed. */
  atomic_int stuck;      /* Retired but still busy past the drain deadline. */
  cJSON *tool_overrides; /* configure_tool during init: name -> object. */
  int initialising;      /* configure_tool is allowed. */
  atomic_int not_ready;  /* set_ready(0): /ready fails. */
  char *not_ready_why;   /* Guarded by the live list lock. */
  uint64_t retired_at;   /* Loop time it left the current generation, or 0. */
  ph__watch *watches;    /* watch_fd's, loop thread only; each holds a ref. */
  ph_instance *live_prev, *live_next; /* All instances not yet destroyed. */
};

/* Loads one .so: copies it into cache_dir, dlopens the copy and validates
 * and copies the descriptor. NULL on refusal with *err (malloc'd) saying
 * why; the caller logs "<file>: <err>". */
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

/* Creates an instance and runs init on it (on the calling thread). NULL on
 * failure with *err. The instance starts with one reference. */
ph_instance *ph__instance_create(ph__plugin *p, const char *department,
                                 const char *prefix, const char *config_json,
                                 int workers, int queue, char **err);

void ph__instance_ref(ph_instance *inst);
/* Drops a reference; the last one finalises the instance. Finalising joins
 * the worker threads, so the last reference must be dropped on a thread
 * that is not one of them (dispatch defers it to the loop thread). */
void ph__instance_unref(ph_instance *inst);

/* Runs fini and frees; only through ph__instance_finalise (dispatch.h). */
void ph__instance_destroy(ph_instance *inst);

/* Marks an instance as retired at loop time `now` (it left the current
 * generation and drains). */
void ph__instance_retire(ph_instance *inst, uint64_t now);

/* Marks retired instances busy for longer than drain_ms as stuck (they are
 * never unloaded) and logs each once. Returns how many are stuck. */
int ph__instances_check_stuck(uint64_t now, uint64_t drain_ms);

/* Instances marked stuck (a counter for /ready). */
int ph__instances_stuck(void);

/* Retired instances still draining (stuck ones included). */
int ph__instances_draining(void);

/* Stores a configure_tool override (init only). */
int ph__instance_configure_tool(ph_instance *inst, const char *tool,
                                const char *override_json);

/* Records set_ready; logs transitions. */
void ph__instance_set_ready(ph_instance *inst, int ready, const char *why);

/* Instances that reported not ready, as a malloc'd text "label: why; ..."
 * or NULL when all are ready. */
char *ph__instances_not_ready(void);

/* The override object for a tool of this instance, or NULL. */
const cJSON *ph__instance_tool_override(const ph_instance *inst,
                                        const char *tool);

/* The host API table handed to plugins (defined in dispatch.c). */
extern const ph_host_api ph__host_api;

#endif
