/* registry.c: see registry.h. */
#include "registry.h"

#include "alloc.h"
#include "log.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uv_mutex_t current_lock;
static uv_once_t current_once = UV_ONCE_INIT;
static ph__generation *current;
static atomic_ullong next_generation_id = 1;

static void init_lock(void) {
  uv_mutex_init(&current_lock);
}

static const char *kind_noun(int kind) {
  static const char *const nouns[] = {"tool", "resource", "resource template",
                                      "prompt"};
  return nouns[kind];
}

static ph__plugin *find_plugin(ph__plugin **plugins, size_t n,
                               const char *name) {
  size_t i;

  for (i = 0; i < n; i++)
    if (strcmp(plugins[i]->name, name) == 0)
      return plugins[i];
  return NULL;
}

/* Whether inst runs where isolate (NULL: in the host) says, with the same
 * limits. */
static int same_isolation(const ph_instance *inst,
                          const ph__runner_limits *isolate) {
  if (isolate == NULL || inst->runner == NULL)
    return isolate == NULL && inst->runner == NULL;
  return memcmp(&inst->limits, isolate, sizeof(*isolate)) == 0;
}

/* An instance of prev that can be carried over unchanged, or NULL. */
static ph_instance *reusable(const ph__generation *prev, const char *dept,
                             const ph__plugin *p, const char *prefix,
                             const char *config_json,
                             const ph__runner_limits *isolate) {
  const ph__dept *d;
  size_t i;

  if (prev == NULL || (d = ph__generation_dept(prev, dept)) == NULL)
    return NULL;
  for (i = 0; i < d->ninstances; i++) {
    ph_instance *inst = d->instances[i];
    if (inst->plugin == p && strcmp(inst->prefix, prefix) == 0 &&
        strcmp(inst->config_json, config_json) == 0 &&
        same_isolation(inst, isolate))
      return inst;
  }
  return NULL;
}

static ph_instance *previous_instance(const ph__generation *prev,
                                      const char *dept, const char *prefix) {
  const ph__dept *d;
  size_t i;

  if (prev == NULL || (d = ph__generation_dept(prev, dept)) == NULL)
    return NULL;
  for (i = 0; i < d->ninstances; i++)
    if (strcmp(d->instances[i]->prefix, prefix) == 0)
      return d->instances[i];
  return NULL;
}

static int allowed(const ph__department_cfg *dc, const char *name) {
  char **g;
  int ok = 0;

  for (g = dc->allow; g != NULL && *g != NULL && !ok; g++)
    ok = ph__glob_match(*g, name);
  for (g = dc->deny; g != NULL && *g != NULL && ok; g++)
    ok = !ph__glob_match(*g, name);
  return ok;
}

/* Drops instances whose `requires` no other live instance of the
 * department provides; repeats because dropping a provider may strand a
 * consumer. */
static void drop_unmet_requires(ph__dept *d) {
  size_t i, j, k;
  int changed = 1;

  while (changed) {
    changed = 0;
    for (i = 0; i < d->ninstances; i++) {
      ph_instance *inst = d->instances[i];
      char **req;

      for (req = inst->plugin->requires; *req != NULL; req++) {
        for (j = 0; j < d->ninstances; j++)
          if (j != i && ph__plugin_provides(d->instances[j]->plugin, *req))
            break;
        if (j == d->ninstances)
          break;
      }
      if (*req == NULL)
        continue;
      ph__error("refused instance %s from %s: requires service \"%s\", "
                "which no instance in department \"%s\" provides",
                inst->label, inst->plugin->source_path, *req, d->name);
      ph__instance_unref(inst);
      for (k = i; k + 1 < d->ninstances; k++)
        d->instances[k] = d->instances[k + 1];
      d->ninstances--;
      changed = 1;
      break;
    }
  }
}

static void add_optional(cJSON *obj, const char *key, const char *value) {
  if (value != NULL)
    ph__xjson_put_string(obj, key, value);
}

static void merge_extra(cJSON *obj, const cJSON *extra) {
  const cJSON *m;

  cJSON_ArrayForEach(m, extra) {
    if (cJSON_GetObjectItemCaseSensitive(obj, m->string) == NULL)
      ph__xjson_put(obj, m->string, cJSON_Duplicate(m, 1));
  }
}

static void add_hint(cJSON *ann, const char *key, uint8_t hint) {
  if (hint != PH_HINT_UNSET)
    ph__xjson_put_bool(ann, key, hint == PH_HINT_TRUE);
}

/* The definition of an item as clients see it in a list. */
static char *item_json(int kind, const ph__item *it) {
  cJSON *o = ph__xcheck(cJSON_CreateObject());
  char *text;

  switch (kind) {
  case PH__TOOL: {
    const ph__tool_def *t = it->def;
    const cJSON *ov = ph__instance_tool_override(it->inst, t->name);
    const char *title = t->title, *description = t->description;
    cJSON *ann;

    if (cJSON_IsString(cJSON_GetObjectItem(ov, "title")))
      title = cJSON_GetObjectItem(ov, "title")->valuestring;
    if (cJSON_IsString(cJSON_GetObjectItem(ov, "description")))
      description = cJSON_GetObjectItem(ov, "description")->valuestring;
    ph__xjson_put_string(o, "name", it->name);
    add_optional(o, "title", title);
    add_optional(o, "description", description);
    ph__xjson_put(o, "inputSchema", cJSON_Duplicate(t->input_schema, 1));
    if (t->output_schema != NULL)
      ph__xjson_put(o, "outputSchema", cJSON_Duplicate(t->output_schema, 1));
    ann = ph__xcheck(cJSON_CreateObject());
    add_optional(ann, "title", title);
    add_hint(ann, "readOnlyHint", t->annotations.read_only);
    add_hint(ann, "destructiveHint", t->annotations.destructive);
    add_hint(ann, "idempotentHint", t->annotations.idempotent);
    add_hint(ann, "openWorldHint", t->annotations.open_world);
    if (cJSON_GetArraySize(ann) > 0)
      ph__xjson_put(o, "annotations", ann);
    else
      cJSON_Delete(ann);
    merge_extra(o, t->extra);
    break;
  }
  case PH__RESOURCE: {
    const ph__resource_def *r = it->def;

    ph__xjson_put_string(o, "uri", r->uri);
    ph__xjson_put_string(o, "name", r->name);
    add_optional(o, "title", r->title);
    add_optional(o, "description", r->description);
    add_optional(o, "mimeType", r->mime_type);
    merge_extra(o, r->extra);
    break;
  }
  case PH__TEMPLATE: {
    const ph__template_def *t = it->def;

    ph__xjson_put_string(o, "uriTemplate", t->uri_template);
    ph__xjson_put_string(o, "name", t->name);
    add_optional(o, "title", t->title);
    add_optional(o, "description", t->description);
    add_optional(o, "mimeType", t->mime_type);
    merge_extra(o, t->extra);
    break;
  }
  case PH__PROMPT: {
    const ph__prompt_def *p = it->def;
    cJSON *args = ph__xcheck(cJSON_CreateArray());
    size_t i;

    ph__xjson_put(o, "arguments", args);
    ph__xjson_put_string(o, "name", it->name);
    add_optional(o, "title", p->title);
    add_optional(o, "description", p->description);
    for (i = 0; i < p->nargs; i++) {
      cJSON *a = ph__xcheck(cJSON_CreateObject());
      ph__xjson_put_string(a, "name", p->args[i].name);
      add_optional(a, "title", p->args[i].title);
      add_optional(a, "description", p->args[i].description);
      ph__xjson_put_bool(a, "required", p->args[i].required != 0);
      ph__xjson_append(args, a);
    }
    merge_extra(o, p->extra);
    break;
  }
  }
  text = ph__xjson_print(o);
  cJSON_Delete(o);
  return text;
}

static int cmp_item_ptr(const void *a, const void *b) {
  const ph__item *x = *(ph__item *const *)a, *y = *(ph__item *const *)b;
  int c = strcmp(x->name, y->name);

  if (c != 0)
    return c;
  return x->order < y->order ? -1 : x->order > y->order;
}

/* Adds one candidate item unless its name is malformed or filtered. */
static void add_candidate(ph__dept *d, const ph__department_cfg *dc, int kind,
                          ph_instance *inst, const char *sep, const char *name,
                          const void *def) {
  ph__item *it;
  char *exposed;

  if (kind == PH__TOOL || kind == PH__PROMPT) {
    if (inst->prefix[0] == '\0')
      exposed = ph__xstrdup(name);
    else
      exposed = ph__xasprintf("%s%s%s", inst->prefix, sep, name);
    if (!ph__valid_name(exposed)) {
      ph__error("refused %s \"%s\" of %s: exposed name \"%s\" must match "
                "[A-Za-z0-9_-]{1,64}",
                kind_noun(kind), name, inst->label, exposed);
      free(exposed);
      return;
    }
  } else {
    exposed = ph__xstrdup(name);
  }
  if (!allowed(dc, exposed)) {
    ph__debug("department %s: %s \"%s\" filtered by allow/deny", d->name,
              kind_noun(kind), exposed);
    free(exposed);
    return;
  }
  it = &d->items[kind][d->nitems[kind]];
  it->name = exposed;
  it->inst = inst;
  it->def = def;
  it->order = d->nitems[kind]++;
}

/* Sorts the lookup index, refusing every later duplicate of a name. */
static void index_items(ph__dept *d, int kind) {
  ph__item *items = d->items[kind], **sorted;
  size_t n = d->nitems[kind], i, kept = 0;
  char *drop;

  sorted = ph__xcalloc(n + 1, sizeof(ph__item *));
  for (i = 0; i < n; i++)
    sorted[i] = &items[i];
  qsort(sorted, n, sizeof(ph__item *), cmp_item_ptr);
  drop = ph__xcalloc(n + 1, 1);
  for (i = 1; i < n; i++) {
    if (strcmp(sorted[i]->name, sorted[i - 1]->name) != 0)
      continue;
    /* Equal names sort by order, so sorted[i] came later. Point at the
     * first holder for the log line. */
    {
      size_t first = i - 1;
      while (drop[sorted[first]->order])
        first--;
      ph__error("refused %s \"%s\" of %s: collides with the one from %s "
                "(nothing is shadowed)",
                kind_noun(kind), sorted[i]->name, sorted[i]->inst->label,
                sorted[first]->inst->label);
    }
    drop[sorted[i]->order] = 1;
  }
  /* Compact in list order, then rebuild the index over the survivors. */
  for (i = 0; i < n; i++) {
    if (drop[i]) {
      free(items[i].name);
      continue;
    }
    items[kept] = items[i];
    items[kept].order = kept;
    kept++;
  }
  d->nitems[kind] = kept;
  for (i = 0; i < kept; i++)
    sorted[i] = &items[i];
  qsort(sorted, kept, sizeof(ph__item *), cmp_item_ptr);
  d->sorted[kind] = sorted;
  free(drop);
}

static void paginate(ph__dept *d, int kind, int page_size) {
  size_t n = d->nitems[kind], npages, p, i, len;
  char **defs;

  npages = n == 0 ? 1 : (n + (size_t)page_size - 1) / (size_t)page_size;
  defs = ph__xcalloc(n + 1, sizeof(char *));
  for (i = 0; i < n; i++)
    defs[i] = item_json(kind, &d->items[kind][i]);
  d->pages[kind] = ph__xcalloc(npages, sizeof(char *));
  d->npages[kind] = npages;
  for (p = 0; p < npages; p++) {
    size_t from = p * (size_t)page_size, to = from + (size_t)page_size;
    char *page, *w;

    if (to > n)
      to = n;
    len = 3;
    for (i = from; i < to; i++)
      len += strlen(defs[i]) + 1;
    page = w = ph__xmalloc(len);
    *w++ = '[';
    for (i = from; i < to; i++) {
      if (i > from)
        *w++ = ',';
      w = stpcpy(w, defs[i]);
    }
    *w++ = ']';
    *w = '\0';
    d->pages[kind][p] = page;
  }
  for (i = 0; i < n; i++)
    free(defs[i]);
  free(defs);
}

static void build_dept(ph__dept *d, const ph__department_cfg *dc,
                       const ph__config *cfg, ph__plugin **plugins,
                       size_t nplugins, const ph__generation *prev) {
  size_t ninst = dc->all_plugins ? nplugins : dc->ninstances, i, j;
  size_t cap[PH__NKINDS] = {0};
  int k;

  d->name = ph__xstrdup(dc->name);
  d->instances = ph__xcalloc(ninst + 1, sizeof(ph_instance *));
  for (i = 0; i < ninst; i++) {
    const char *pname =
        dc->all_plugins ? plugins[i]->name : dc->instances[i].plugin;
    const char *prefix =
        dc->all_plugins ? plugins[i]->name : dc->instances[i].prefix;
    const char *conf = dc->all_plugins ? "{}" : dc->instances[i].config_json;
    int workers = dc->all_plugins || dc->instances[i].workers == 0
                      ? cfg->limits.workers_per_plugin
                      : dc->instances[i].workers;
    const ph__runner_limits *isolate =
        !dc->all_plugins && dc->instances[i].isolation == PH__ISOLATION_PROCESS
            ? &dc->instances[i].limits
            : NULL;
    ph__plugin *p = find_plugin(plugins, nplugins, pname);
    ph_instance *inst;
    char *err = NULL;

    if (p == NULL) {
      ph__error("department %s: no loaded plugin named \"%s\" (see the "
                "plugin directory %s)",
                dc->name, pname, cfg->plugin_dir);
      continue;
    }
    for (j = 0; j < d->ninstances; j++)
      if (strcmp(d->instances[j]->prefix, prefix) == 0)
        break;
    if (j < d->ninstances && prefix[0] != '\0') {
      ph__error("department %s: prefix \"%s\" is used twice; refused the "
                "instance of %s",
                dc->name, prefix, pname);
      continue;
    }
    inst = reusable(prev, dc->name, p, prefix, conf, isolate);
    if (inst != NULL) {
      ph__instance_ref(inst);
    } else {
      inst = ph__instance_create(p, dc->name, prefix, conf, workers,
                                 cfg->limits.queue_per_plugin, isolate, &err);
      if (inst == NULL) {
        ph__error("refused plugin %s in department %s: %s", p->source_path,
                  dc->name, err ? err : "out of memory");
        free(err);
        /* Per-plugin rollback: the instance that served this prefix
         * before keeps serving. */
        inst = previous_instance(prev, dc->name, prefix);
        if (inst == NULL)
          continue;
        ph__error("keeping the previous instance %s (sha256 %.16s)",
                  inst->label, inst->plugin->hash);
        ph__instance_ref(inst);
      }
    }
    d->instances[d->ninstances++] = inst;
  }
  drop_unmet_requires(d);

  for (i = 0; i < d->ninstances; i++) {
    const ph__plugin *p = d->instances[i]->plugin;
    cap[PH__TOOL] += p->ntools;
    cap[PH__RESOURCE] += p->nresources;
    cap[PH__TEMPLATE] += p->ntemplates;
    cap[PH__PROMPT] += p->nprompts;
  }
  for (k = 0; k < PH__NKINDS; k++)
    d->items[k] = ph__xcalloc(cap[k] + 1, sizeof(ph__item));
  for (i = 0; i < d->ninstances; i++) {
    ph_instance *inst = d->instances[i];
    const ph__plugin *p = inst->plugin;

    for (j = 0; j < p->ntools; j++) {
      const cJSON *ov = ph__instance_tool_override(inst, p->tools[j].name);
      if (cJSON_IsFalse(cJSON_GetObjectItem(ov, "enabled")))
        continue; /* The instance turned it off (configure_tool). */
      add_candidate(d, dc, PH__TOOL, inst, cfg->separator, p->tools[j].name,
                    &p->tools[j]);
    }
    for (j = 0; j < p->nresources; j++)
      add_candidate(d, dc, PH__RESOURCE, inst, cfg->separator,
                    p->resources[j].uri, &p->resources[j]);
    for (j = 0; j < p->ntemplates; j++) {
      add_candidate(d, dc, PH__TEMPLATE, inst, cfg->separator,
                    p->templates[j].uri_template, &p->templates[j]);
      d->has_completions |= p->templates[j].complete != NULL;
    }
    for (j = 0; j < p->nprompts; j++) {
      add_candidate(d, dc, PH__PROMPT, inst, cfg->separator, p->prompts[j].name,
                    &p->prompts[j]);
      d->has_completions |= p->prompts[j].complete != NULL;
    }
  }
  for (k = 0; k < PH__NKINDS; k++) {
    index_items(d, k);
    paginate(d, k, cfg->page_size);
  }
  ph__info("department %s: %zu instances, %zu tools, %zu resources, %zu "
           "templates, %zu prompts",
           d->name, d->ninstances, d->nitems[PH__TOOL], d->nitems[PH__RESOURCE],
           d->nitems[PH__TEMPLATE], d->nitems[PH__PROMPT]);
}

static int generation_uses(const ph__generation *g, const ph__plugin *p) {
  size_t i, j;

  for (i = 0; i < g->ndepts; i++)
    for (j = 0; j < g->depts[i].ninstances; j++)
      if (g->depts[i].instances[j]->plugin == p)
        return 1;
  return 0;
}

ph__generation *ph__generation_build(ph__config *cfg, ph__plugin **plugins,
                                     size_t nplugins,
                                     const ph__generation *prev) {
  ph__generation *g;
  size_t i;

  g = ph__xcalloc(1, sizeof(*g));
  atomic_init(&g->refs, 1);
  g->id = atomic_fetch_add(&next_generation_id, 1);
  g->config = cfg;
  g->depts = ph__xcalloc(cfg->ndepartments + 1, sizeof(ph__dept));
  for (i = 0; i < cfg->ndepartments; i++)
    build_dept(&g->depts[g->ndepts++], &cfg->departments[i], cfg, plugins,
               nplugins, prev);
  /* Only the plugins an instance uses stay loaded: one that no department
   * names was opened and checked (its refusals logged) and is closed when
   * the caller drops the scan, so the libraries it pulls in (libsodium,
   * libpq...) cost nothing idle. The next reload opens it again if a
   * department comes to name it. */
  g->plugins = ph__xcalloc(nplugins + 1, sizeof(ph__plugin *));
  for (i = 0; i < nplugins; i++) {
    if (!generation_uses(g, plugins[i]))
      continue;
    ph__plugin_ref(plugins[i]);
    g->plugins[g->nplugins++] = plugins[i];
  }
  return g;
}

void ph__generation_ref(ph__generation *g) {
  atomic_fetch_add(&g->refs, 1);
}

void ph__generation_unref(ph__generation *g) {
  size_t i, j;
  int k;

  if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
    return;
  for (i = 0; i < g->ndepts; i++) {
    ph__dept *d = &g->depts[i];

    for (k = 0; k < PH__NKINDS; k++) {
      for (j = 0; j < d->nitems[k]; j++)
        free(d->items[k][j].name);
      free(d->items[k]);
      free(d->sorted[k]);
      for (j = 0; j < d->npages[k]; j++)
        free(d->pages[k][j]);
      free(d->pages[k]);
    }
    for (j = 0; j < d->ninstances; j++)
      ph__instance_unref(d->instances[j]);
    free(d->instances);
    free(d->name);
  }
  free(g->depts);
  for (i = 0; i < g->nplugins; i++)
    ph__plugin_unref(g->plugins[i]);
  free(g->plugins);
  ph__config_free(g->config);
  free(g);
}

unsigned ph__dept_changes(const ph__dept *old, const ph__dept *now) {
  unsigned kinds = 0;
  size_t i;
  int k;

  for (k = 0; k < PH__NKINDS; k++) {
    if (old == NULL || now == NULL) {
      kinds |= 1u << k;
      continue;
    }
    if (old->npages[k] != now->npages[k]) {
      kinds |= 1u << k;
      continue;
    }
    for (i = 0; i < now->npages[k]; i++) {
      if (strcmp(old->pages[k][i], now->pages[k][i]) != 0) {
        kinds |= 1u << k;
        break;
      }
    }
  }
  return kinds;
}

ph__generation *ph__registry_acquire(void) {
  ph__generation *g;

  uv_once(&current_once, init_lock);
  uv_mutex_lock(&current_lock);
  g = current;
  if (g != NULL)
    ph__generation_ref(g);
  uv_mutex_unlock(&current_lock);
  return g;
}

ph__generation *ph__registry_publish(ph__generation *g) {
  ph__generation *old;

  uv_once(&current_once, init_lock);
  uv_mutex_lock(&current_lock);
  old = current;
  current = g;
  uv_mutex_unlock(&current_lock);
  return old;
}

const ph__dept *ph__generation_dept(const ph__generation *g, const char *name) {
  size_t i;

  for (i = 0; i < g->ndepts; i++)
    if (strcmp(g->depts[i].name, name) == 0)
      return &g->depts[i];
  return NULL;
}

const ph__item *ph__dept_lookup(const ph__dept *d, int kind, const char *name) {
  size_t lo = 0, hi = d->nitems[kind], mid;
  int c;

  while (lo < hi) {
    mid = lo + (hi - lo) / 2;
    c = strcmp(name, d->sorted[kind][mid]->name);
    if (c == 0)
      return d->sorted[kind][mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Matches uri against a level 1 template; a variable takes one or more
 * characters up to the next literal, never '/', and is percent-decoded (a
 * '%' without two hex digits stays as it is). A URI names a resource
 * exactly or not at all: a variable whose decoded bytes hold NUL or are
 * not UTF-8 matches nothing, since the plugin gets the value as a C string
 * in JSON, where "orders%00" would arrive as "orders". */
static int match_template(const char *tpl, const char *uri, cJSON *vars) {
  while (*tpl != '\0') {
    if (*tpl == '{') {
      const char *close = strchr(tpl, '}'), *stop_at = close + 1;
      char name[128], *val, *w;
      const char *start = uri;
      size_t nlen = (size_t)(close - tpl - 1);

      /* The value runs until the next literal character of the template. */
      while (*uri != '\0' && *uri != '/' && *uri != *stop_at)
        uri++;
      if (uri == start || nlen >= sizeof(name))
        return 0;
      memcpy(name, tpl + 1, nlen);
      name[nlen] = '\0';
      val = w = ph__xmalloc((size_t)(uri - start) + 1);
      for (; start < uri; start++) {
        if (*start == '%' && start + 2 < uri && hexval(start[1]) >= 0 &&
            hexval(start[2]) >= 0) {
          *w++ = (char)(hexval(start[1]) * 16 + hexval(start[2]));
          start += 2;
        } else {
          *w++ = *start;
        }
      }
      if (!ph__utf8_valid(val, (size_t)(w - val))) {
        free(val);
        return 0;
      }
      *w = '\0';
      ph__xjson_put_string(vars, name, val);
      free(val);
      tpl = stop_at;
    } else {
      if (*tpl != *uri)
        return 0;
      tpl++;
      uri++;
    }
  }
  return *uri == '\0';
}

const ph__item *ph__dept_match_template(const ph__dept *d, const char *uri,
                                        cJSON **vars) {
  size_t i;

  for (i = 0; i < d->nitems[PH__TEMPLATE]; i++) {
    const ph__item *it = &d->items[PH__TEMPLATE][i];
    cJSON *v = ph__xcheck(cJSON_CreateObject());

    if (match_template(it->name, uri, v)) {
      *vars = v;
      return it;
    }
    cJSON_Delete(v);
  }
  *vars = NULL;
  return NULL;
}

const ph__item *ph__dept_template(const ph__dept *d, const char *uri_template) {
  size_t i;

  for (i = 0; i < d->nitems[PH__TEMPLATE]; i++)
    if (strcmp(d->items[PH__TEMPLATE][i].name, uri_template) == 0)
      return &d->items[PH__TEMPLATE][i];
  return NULL;
}

ph_instance *ph__dept_service(const ph__dept *d, const char *service) {
  size_t i;

  for (i = 0; i < d->ninstances; i++)
    if (ph__plugin_provides(d->instances[i]->plugin, service))
      return d->instances[i];
  return NULL;
}

/* Cursors are "p" + page number in hex: opaque to clients, cheap to check,
 * and still meaningful after a reload (a shorter list just ends sooner). */
const char *ph__dept_page(const ph__dept *d, int kind, const char *cursor,
                          char **next) {
  unsigned long page = 0;
  char *end;

  *next = NULL;
  if (cursor != NULL && cursor[0] != '\0') {
    if (cursor[0] != 'p' || cursor[1] == '\0' ||
        strspn(cursor + 1, "0123456789abcdef") != strlen(cursor + 1) ||
        strlen(cursor) > 9)
      return NULL;
    page = strtoul(cursor + 1, &end, 16);
    if (*end != '\0' || page >= d->npages[kind])
      return NULL;
  }
  if (page + 1 < d->npages[kind])
    *next = ph__xasprintf("p%lx", page + 1);
  return d->pages[kind][page];
}
