/* registry.h: generations. A generation is one immutable picture of what is
 * served: per department its instances, the exposed names of their tools,
 * resources, templates and prompts, and the list responses precomputed page
 * by page. Requests look names up in the current generation; a reload
 * builds a new one and publishes it with one pointer swap.
 *
 * Layers: above instance.h (it creates, reuses and drops instances) and
 * config.h; below host_api.h (service calls resolve providers here), the
 * protocol and reload.h. It knows nothing of calls. */
#ifndef PH_REGISTRY_H
#define PH_REGISTRY_H

#include "config.h"
#include "instance.h"

#include <stdatomic.h>
#include <stdint.h>

enum ph__kind { PH__TOOL, PH__RESOURCE, PH__TEMPLATE, PH__PROMPT, PH__NKINDS };

typedef struct ph__item {
  char *name; /* Exposed name; URI or URI template for resources. */
  ph_instance *inst;
  const void *def; /* ph__tool_def etc., owned by inst->plugin. */
  size_t order;    /* Position in list order. */
} ph__item;

typedef struct ph__dept {
  char *name;
  ph_instance **instances;
  size_t ninstances;
  ph__item *items[PH__NKINDS]; /* In list order. */
  size_t nitems[PH__NKINDS];
  ph__item **sorted[PH__NKINDS]; /* By name, for lookups. */
  char **pages[PH__NKINDS];      /* JSON arrays of definitions. */
  size_t npages[PH__NKINDS];
  int has_completions; /* Some prompt or template completes. */
} ph__dept;

typedef struct ph__generation {
  atomic_long refs;
  uint64_t id;
  ph__config *config; /* Owned. */
  ph__plugin **plugins;
  size_t nplugins;
  ph__dept *depts;
  size_t ndepts;
} ph__generation;

/* Builds a generation from a config (ownership passes to the generation)
 * and loaded plugins (each that an instance uses gets a reference; the
 * rest are closed when the caller drops its own). Instances of `prev` whose
 * plugin, prefix and config are unchanged are reused rather than
 * re-initialised. Problems with single items or instances are logged and
 * skipped; the generation itself is always built. */
ph__generation *ph__generation_build(ph__config *cfg, ph__plugin **plugins,
                                     size_t nplugins,
                                     const ph__generation *prev);

void ph__generation_ref(ph__generation *g);
void ph__generation_unref(ph__generation *g);

/* The current generation with a reference the caller drops, or NULL. Any
 * thread. */
ph__generation *ph__registry_acquire(void);
/* Makes g current (taking over the caller's reference) and returns the
 * previous one, whose reference now belongs to the caller. */
ph__generation *ph__registry_publish(ph__generation *g);

const ph__dept *ph__generation_dept(const ph__generation *g, const char *name);

/* Looks up a tool or prompt by exposed name, a resource by URI. */
const ph__item *ph__dept_lookup(const ph__dept *d, int kind, const char *name);

/* The template matching uri, with its variables in *vars (a JSON object of
 * strings, caller frees), or NULL. */
const ph__item *ph__dept_match_template(const ph__dept *d, const char *uri,
                                        cJSON **vars);

/* The template whose URI template is exactly `uri_template`. */
const ph__item *ph__dept_template(const ph__dept *d, const char *uri_template);

/* The first instance in the department providing `service`, or NULL. */
ph_instance *ph__dept_service(const ph__dept *d, const char *service);

/* Page for a cursor (NULL or "" for the first). Returns the JSON array text
 * and sets *next to a malloc'd cursor or NULL at the end. Returns NULL for
 * an invalid cursor. */
const char *ph__dept_page(const ph__dept *d, int kind, const char *cursor,
                          char **next);

/* Which lists differ between two builds of a department, as bits
 * (1 << PH__TOOL) ...; everything when either is NULL. */
unsigned ph__dept_changes(const ph__dept *old, const ph__dept *now);

#endif
