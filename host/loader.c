/* loader.c: see loader.h. */
#include "loader.h"

#include "alloc.h"
#include "config.h"
#include "log.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The layouts of every published minor, as plughost.h lists them: a plugin
 * built against minor m has exactly row m's sizes, and a size that no row
 * has would misread every item, so it is refused. A minor is frozen once
 * published, so rows never change; one that grows an item appends a row,
 * and its items are then read from older plugins through ph__table_item(),
 * with the fields they lack zeroed. */
typedef struct abi_layout {
  uint32_t desc;
  uint16_t tool, resource, template_, prompt;
} abi_layout;

#if defined(__LP64__)
/* The newest row, spelled once so that it is checked against this host's
 * own structs below. */
enum {
  DESC_1_3 = 120,
  TOOL_1_3 = 80,
  RES_1_3 = 56,
  TMPL_1_3 = 64,
  PR_1_3 = 56
};

static const abi_layout layouts[] = {
    {120, 80, 56, 64, 56}, /* 1.0 */
    {120, 80, 56, 64, 56}, /* 1.1: the host API table grew, items did not. */
    {120, 80, 56, 64, 56}, /* 1.2: the same. */
    {DESC_1_3, TOOL_1_3, RES_1_3, TMPL_1_3, PR_1_3}, /* 1.3: no new fields. */
};

_Static_assert(DESC_1_3 == sizeof(ph_plugin_desc) &&
                   TOOL_1_3 == sizeof(ph_tool) &&
                   RES_1_3 == sizeof(ph_resource) &&
                   TMPL_1_3 == sizeof(ph_resource_template) &&
                   PR_1_3 == sizeof(ph_prompt),
               "the newest published layout is this host's: a struct that "
               "grows needs a new minor and a new row");
#else
/* No item has grown since 1.0, so on other data models every minor's
 * layout is this header's own. Freeze real numbers here before one grows. */
#define THIS_LAYOUT                                                            \
  {                                                                            \
    sizeof(ph_plugin_desc), sizeof(ph_tool), sizeof(ph_resource),              \
        sizeof(ph_resource_template), sizeof(ph_prompt)                        \
  }

static const abi_layout layouts[] = {THIS_LAYOUT, THIS_LAYOUT, THIS_LAYOUT,
                                     THIS_LAYOUT};
#endif

_Static_assert(sizeof(layouts) / sizeof(layouts[0]) == PH_ABI_MINOR + 1,
               "one published layout per minor");

/* Every item's first member is the name or URI whose NULL ends a table. */
_Static_assert(offsetof(ph_tool, name) == 0 &&
                   offsetof(ph_resource, uri) == 0 &&
                   offsetof(ph_resource_template, uri_template) == 0 &&
                   offsetof(ph_prompt, name) == 0,
               "table terminators come first");

/* Copies src to a fresh file in cache_dir, hashing it on the way. A private
 * copy per load matters twice: dlopen caches by path (a new version at the
 * same path would not be loaded), and an operator overwriting the original
 * in place must never touch pages the process has mapped. */
static int copy_to_cache(const char *src, const char *cache_dir,
                         const char *base, char **out_path, char hash[65],
                         char **err) {
  static atomic_uint counter;
  unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0, i;
  EVP_MD_CTX *ctx = NULL;
  int in = -1, out = -1, rc = 0;
  char *path = NULL;
  ssize_t n;

  in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    rc = ph__fail(err, "cannot open: %s", strerror(errno));
    goto done;
  }
  path = ph__xasprintf("%s/%u-%u-%s", cache_dir, (unsigned)getpid(),
                       atomic_fetch_add(&counter, 1), base);
  out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
  if (out < 0) {
    rc =
        ph__fail(err, "cannot create cache copy %s: %s", path, strerror(errno));
    goto done;
  }
  ctx = ph__xcheck(EVP_MD_CTX_new());
  if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
    rc = ph__fail(err, "sha256 unavailable");
    goto done;
  }
  while ((n = read(in, buf, sizeof(buf))) > 0) {
    EVP_DigestUpdate(ctx, buf, (size_t)n);
    if (write(out, buf, (size_t)n) != n) {
      rc = ph__fail(err, "cannot write cache copy: %s", strerror(errno));
      goto done;
    }
  }
  if (n < 0) {
    rc = ph__fail(err, "read failed: %s", strerror(errno));
    goto done;
  }
  EVP_DigestFinal_ex(ctx, md, &mdlen);
  for (i = 0; i < mdlen && i < 32; i++)
    snprintf(hash + 2 * i, 3, "%02x", md[i]);

done:
  EVP_MD_CTX_free(ctx);
  if (in >= 0)
    close(in);
  if (out >= 0 && close(out) != 0 && rc == 0)
    rc = ph__fail(err, "cannot write cache copy: %s", strerror(errno));
  if (rc != 0 && path != NULL) {
    unlink(path);
    free(path);
    path = NULL;
  }
  *out_path = path;
  return rc;
}

/* Parses optional JSON text that must be an object. */
static int parse_object(const char *text, cJSON **out, const char *what,
                        const char *item, char **err) {
  *out = NULL;
  if (text == NULL)
    return 0;
  *out = cJSON_Parse(text);
  if (!cJSON_IsObject(*out)) {
    cJSON_Delete(*out);
    *out = NULL;
    return ph__fail(err, "%s of \"%s\" is not a JSON object", what, item);
  }
  return 0;
}

/* Copies what is owned into d, which plugin_free() frees whatever happens
 * here. */
static int copy_tool(ph__tool_def *d, const ph_tool *t, char **err) {
  char *why = NULL;
  int rc;

  if (!ph__valid_name(t->name))
    return ph__fail(err, "tool name \"%s\" must match [A-Za-z0-9_-]{1,64}",
                    t->name);
  d->name = ph__xstrdup(t->name);
  d->title = ph__xstrdup_or_null(t->title);
  d->description = ph__xstrdup_or_null(t->description);
  d->annotations = t->annotations;
  d->required_scope = ph__xstrdup_or_null(t->required_scope);
  d->timeout_ms = t->timeout_ms;
  d->run_inline = t->run_inline;
  d->handler = t->handler;
  if (t->handler == NULL)
    return ph__fail(err, "tool \"%s\" has no handler", t->name);
  rc = parse_object(t->input_schema ? t->input_schema : "{\"type\":\"object\"}",
                    &d->input_schema, "input schema", t->name, err);
  if (rc == 0)
    rc = parse_object(t->output_schema, &d->output_schema, "output schema",
                      t->name, err);
  if (rc == 0)
    rc = parse_object(t->extra_json, &d->extra, "extra_json", t->name, err);
  if (rc != 0)
    return rc;
  d->input_validator = ph__schema_compile(d->input_schema, &why);
  if (d->input_validator != NULL && d->output_schema != NULL)
    d->output_validator = ph__schema_compile(d->output_schema, &why);
  if (d->input_validator == NULL ||
      (d->output_schema != NULL && d->output_validator == NULL))
    rc = ph__fail(err, "tool \"%s\": schema refused: %s", t->name,
                  why ? why : "?");
  free(why);
  return rc;
}

int ph__uri_template_valid(const char *t) {
  const char *p;
  int in_var = 0, var_len = 0, vars = 0;

  for (p = t; *p != '\0'; p++) {
    if (*p == '{') {
      if (in_var)
        return 0;
      in_var = 1;
      var_len = 0;
    } else if (*p == '}') {
      if (!in_var || var_len == 0)
        return 0;
      in_var = 0;
      vars++;
    } else if (in_var) {
      if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || *p == '_'))
        return 0;
      var_len++;
    }
  }
  return !in_var && vars > 0 && strchr(t, ':') != NULL;
}

const void *ph__table_item(const void *table, size_t size, size_t host,
                           size_t idx, void *scratch) {
  const char *p = (const char *)table + idx * size;

  if (size >= host)
    return p;
  memset(scratch, 0, host);
  memcpy(scratch, p, size);
  return scratch;
}

/* Items of a plugin table (NULL: none) up to its terminator. */
static size_t count_items(const void *table, size_t size) {
  const char *key;
  size_t n;

  for (n = 0; table != NULL; n++) {
    memcpy(&key, (const char *)table + n * size, sizeof(key));
    if (key == NULL)
      break;
  }
  return n;
}

static char **copy_strings(const char *const *list) {
  char **out;
  size_t n = 0;

  while (list != NULL && list[n] != NULL)
    n++;
  out = ph__xcalloc(n + 1, sizeof(char *));
  for (n = 0; list != NULL && list[n] != NULL; n++)
    out[n] = ph__xstrdup(list[n]);
  return out;
}

/* The header fields read before anything else: the magic, the ABI version
 * and the sizes, which must be the layout its minor published. */
static int check_header(const ph_plugin_desc *d, char **err) {
  const abi_layout *want;
  static const char *const fields[] = {"tool_size", "resource_size",
                                       "template_size", "prompt_size"};
  unsigned have[4], expect[4];
  int i;

  if (d->magic != PH_MAGIC)
    return ph__fail(err, "wrong magic 0x%08x (not a plughost plugin)",
                    d->magic);
  if (d->abi_major != PH_ABI_MAJOR)
    return ph__fail(err, "ABI major %u, this host speaks %u", d->abi_major,
                    PH_ABI_MAJOR);
  if (d->abi_minor > PH_ABI_MINOR)
    return ph__fail(err, "ABI minor %u is newer than this host's %u",
                    d->abi_minor, PH_ABI_MINOR);
  want = &layouts[d->abi_minor];
  if (d->size != want->desc)
    return ph__fail(err,
                    "descriptor size %u matches no published layout (ABI "
                    "%u.%u: %u)",
                    d->size, PH_ABI_MAJOR, d->abi_minor, want->desc);
  have[0] = d->tool_size;
  have[1] = d->resource_size;
  have[2] = d->template_size;
  have[3] = d->prompt_size;
  expect[0] = want->tool;
  expect[1] = want->resource;
  expect[2] = want->template_;
  expect[3] = want->prompt;
  for (i = 0; i < 4; i++)
    if (have[i] != expect[i])
      return ph__fail(err, "%s %u matches no published layout (ABI %u.%u: %u)",
                      fields[i], have[i], PH_ABI_MAJOR, d->abi_minor,
                      expect[i]);
  return 0;
}

static int copy_tools(ph__plugin *p, const ph_plugin_desc *d, char **err) {
  ph_tool scratch;
  size_t n = count_items(d->tools, d->tool_size), i, j;
  int rc;

  p->tools = ph__xcalloc(n + 1, sizeof(ph__tool_def));
  for (i = 0; i < n; i++) {
    const ph_tool *t =
        ph__table_item(d->tools, d->tool_size, sizeof(ph_tool), i, &scratch);

    for (j = 0; j < i; j++)
      if (strcmp(p->tools[j].name, t->name) == 0)
        return ph__fail(err, "duplicate tool name \"%s\"", t->name);
    p->ntools++;
    rc = copy_tool(&p->tools[i], t, err);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int copy_resources(ph__plugin *p, const ph_plugin_desc *d, char **err) {
  ph_resource scratch;
  size_t n = count_items(d->resources, d->resource_size), i, j;

  p->resources = ph__xcalloc(n + 1, sizeof(ph__resource_def));
  for (i = 0; i < n; i++) {
    const ph_resource *r = ph__table_item(d->resources, d->resource_size,
                                          sizeof(ph_resource), i, &scratch);
    ph__resource_def *rd = &p->resources[i];

    if (strchr(r->uri, ':') == NULL || r->handler == NULL || r->name == NULL)
      return ph__fail(
          err, "resource \"%s\" needs an absolute uri, a name and a handler",
          r->uri);
    for (j = 0; j < i; j++)
      if (strcmp(p->resources[j].uri, r->uri) == 0)
        return ph__fail(err, "duplicate resource uri \"%s\"", r->uri);
    p->nresources++;
    rd->uri = ph__xstrdup(r->uri);
    rd->name = ph__xstrdup(r->name);
    rd->title = ph__xstrdup_or_null(r->title);
    rd->description = ph__xstrdup_or_null(r->description);
    rd->mime_type = ph__xstrdup_or_null(r->mime_type);
    rd->handler = r->handler;
    if (parse_object(r->extra_json, &rd->extra, "extra_json", r->uri, err))
      return PH__EFAIL;
  }
  return 0;
}

static int copy_templates(ph__plugin *p, const ph_plugin_desc *d, char **err) {
  ph_resource_template scratch;
  size_t n = count_items(d->templates, d->template_size), i, j;

  p->templates = ph__xcalloc(n + 1, sizeof(ph__template_def));
  for (i = 0; i < n; i++) {
    const ph_resource_template *rt =
        ph__table_item(d->templates, d->template_size,
                       sizeof(ph_resource_template), i, &scratch);
    ph__template_def *td = &p->templates[i];

    if (!ph__uri_template_valid(rt->uri_template) || rt->handler == NULL ||
        rt->name == NULL)
      return ph__fail(err,
                      "resource template \"%s\" must be an absolute RFC 6570 "
                      "level 1 template with a name and a handler",
                      rt->uri_template);
    for (j = 0; j < i; j++)
      if (strcmp(p->templates[j].uri_template, rt->uri_template) == 0)
        return ph__fail(err, "duplicate resource template \"%s\"",
                        rt->uri_template);
    p->ntemplates++;
    td->uri_template = ph__xstrdup(rt->uri_template);
    td->name = ph__xstrdup(rt->name);
    td->title = ph__xstrdup_or_null(rt->title);
    td->description = ph__xstrdup_or_null(rt->description);
    td->mime_type = ph__xstrdup_or_null(rt->mime_type);
    td->handler = rt->handler;
    td->complete = rt->complete;
    if (parse_object(rt->extra_json, &td->extra, "extra_json", rt->uri_template,
                     err))
      return PH__EFAIL;
  }
  return 0;
}

static int copy_prompts(ph__plugin *p, const ph_plugin_desc *d, char **err) {
  ph_prompt scratch;
  size_t n = count_items(d->prompts, d->prompt_size), i, j, a, na;

  p->prompts = ph__xcalloc(n + 1, sizeof(ph__prompt_def));
  for (i = 0; i < n; i++) {
    const ph_prompt *pr = ph__table_item(d->prompts, d->prompt_size,
                                         sizeof(ph_prompt), i, &scratch);
    ph__prompt_def *pd = &p->prompts[i];

    if (!ph__valid_name(pr->name) || pr->handler == NULL)
      return ph__fail(err, "prompt \"%s\" needs a valid name and a handler",
                      pr->name);
    for (j = 0; j < i; j++)
      if (strcmp(p->prompts[j].name, pr->name) == 0)
        return ph__fail(err, "duplicate prompt name \"%s\"", pr->name);
    p->nprompts++;
    pd->name = ph__xstrdup(pr->name);
    pd->title = ph__xstrdup_or_null(pr->title);
    pd->description = ph__xstrdup_or_null(pr->description);
    pd->handler = pr->handler;
    pd->complete = pr->complete;
    /* ph_prompt_arg has not grown since 1.0: read as is. */
    for (na = 0; pr->args != NULL && pr->args[na].name != NULL; na++)
      ;
    pd->args = ph__xcalloc(na + 1, sizeof(ph__prompt_arg_def));
    for (a = 0; a < na; a++) {
      pd->args[a].name = ph__xstrdup(pr->args[a].name);
      pd->args[a].title = ph__xstrdup_or_null(pr->args[a].title);
      pd->args[a].description = ph__xstrdup_or_null(pr->args[a].description);
      pd->args[a].required = pr->args[a].required;
      pd->nargs++;
    }
    if (parse_object(pr->extra_json, &pd->extra, "extra_json", pr->name, err))
      return PH__EFAIL;
  }
  return 0;
}

/* Checks the descriptor and copies what the host keeps into p, which
 * plugin_free() frees whatever is left half-done here. */
static int copy_descriptor(ph__plugin *p, const ph_plugin_desc *raw,
                           char **err) {
  const ph_plugin_desc *d;
  ph_plugin_desc scratch;
  int rc;

  rc = check_header(raw, err);
  if (rc != 0)
    return rc;
  /* Read at the plugin's size, which a later minor may exceed. */
  d = ph__table_item(raw, raw->size, sizeof(*d), 0, &scratch);
  if (d->name == NULL || !ph__valid_prefix(d->name) || d->name[0] == '\0')
    return ph__fail(err, "plugin name \"%s\" must match ^[a-z][a-z0-9-]{0,15}$",
                    d->name ? d->name : "(null)");
  p->name = ph__xstrdup(d->name);
  p->version = ph__xstrdup(d->version ? d->version : "0");
  p->description = ph__xstrdup_or_null(d->description);
  p->abi_minor = d->abi_minor;
  p->init = d->init;
  p->fini = d->fini;
  p->service = d->service;
  p->provides = copy_strings(d->provides);
  p->requires = copy_strings(d->requires);
  if (p->provides[0] != NULL && p->service == NULL)
    return ph__fail(err, "provides services but has no service handler");
  rc = copy_tools(p, d, err);
  if (rc == 0)
    rc = copy_resources(p, d, err);
  if (rc == 0)
    rc = copy_templates(p, d, err);
  if (rc == 0)
    rc = copy_prompts(p, d, err);
  return rc;
}

static void free_strings(char **list) {
  char **p;

  for (p = list; p != NULL && *p != NULL; p++)
    free(*p);
  free(list);
}

static void free_tool(ph__tool_def *t) {
  free(t->name);
  free(t->title);
  free(t->description);
  free(t->required_scope);
  cJSON_Delete(t->input_schema);
  cJSON_Delete(t->output_schema);
  cJSON_Delete(t->extra);
  ph__schema_free(t->input_validator);
  ph__schema_free(t->output_validator);
}

static void plugin_free(ph__plugin *p) {
  size_t i, a;

  /* A refused item is counted before it is copied: a half-copied one is
   * freed with the rest. */
  for (i = 0; i < p->ntools; i++)
    free_tool(&p->tools[i]);
  free(p->tools);
  for (i = 0; i < p->nresources; i++) {
    ph__resource_def *r = &p->resources[i];
    free(r->uri);
    free(r->name);
    free(r->title);
    free(r->description);
    free(r->mime_type);
    cJSON_Delete(r->extra);
  }
  free(p->resources);
  for (i = 0; i < p->ntemplates; i++) {
    ph__template_def *t = &p->templates[i];
    free(t->uri_template);
    free(t->name);
    free(t->title);
    free(t->description);
    free(t->mime_type);
    cJSON_Delete(t->extra);
  }
  free(p->templates);
  for (i = 0; i < p->nprompts; i++) {
    ph__prompt_def *pr = &p->prompts[i];
    free(pr->name);
    free(pr->title);
    free(pr->description);
    for (a = 0; a < pr->nargs; a++) {
      free(pr->args[a].name);
      free(pr->args[a].title);
      free(pr->args[a].description);
    }
    free(pr->args);
    cJSON_Delete(pr->extra);
  }
  free(p->prompts);
  free_strings(p->provides);
  free_strings(p->requires);
  if (p->dl != NULL)
    dlclose(p->dl);
  if (p->cache_path != NULL)
    unlink(p->cache_path);
  free(p->cache_path);
  free(p->source_path);
  free(p->name);
  free(p->version);
  free(p->description);
  free(p);
}

ph__plugin *ph__plugin_load(const char *path, const char *cache_dir,
                            char **err) {
  ph_plugin_entry_fn entry;
  const ph_plugin_desc *desc;
  const char *base;
  ph__plugin *p;

  *err = NULL;
  p = ph__xcalloc(1, sizeof(*p));
  atomic_init(&p->refs, 1);
  p->source_path = ph__xstrdup(path);
  base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (copy_to_cache(path, cache_dir, base, &p->cache_path, p->hash, err) != 0)
    goto fail;
  p->dl = dlopen(p->cache_path, RTLD_NOW | RTLD_LOCAL);
  if (p->dl == NULL) {
    ph__fail(err, "dlopen failed: %s", dlerror());
    goto fail;
  }
  *(void **)&entry = dlsym(p->dl, PH_ENTRY_SYMBOL);
  if (entry == NULL) {
    ph__fail(err, "no %s symbol (not a plughost plugin)", PH_ENTRY_SYMBOL);
    goto fail;
  }
  desc = entry();
  if (desc == NULL) {
    ph__fail(err, "%s returned NULL", PH_ENTRY_SYMBOL);
    goto fail;
  }
  if (copy_descriptor(p, desc, err) != 0)
    goto fail;
  return p;

fail:
  plugin_free(p);
  return NULL;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* SHA-256 of a file as hex, without copying it. Returns 0 or -errno (a
 * UV_E* code on Unix). */
static int hash_file(const char *path, char hash[65]) {
  unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0, i;
  EVP_MD_CTX *ctx;
  int fd, rc = 0;
  ssize_t n;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  ctx = ph__xcheck(EVP_MD_CTX_new());
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  while ((n = read(fd, buf, sizeof(buf))) > 0)
    EVP_DigestUpdate(ctx, buf, (size_t)n);
  if (n < 0)
    rc = -errno;
  close(fd);
  EVP_DigestFinal_ex(ctx, md, &mdlen);
  EVP_MD_CTX_free(ctx);
  if (rc != 0)
    return rc;
  for (i = 0; i < mdlen && i < 32; i++)
    snprintf(hash + 2 * i, 3, "%02x", md[i]);
  return 0;
}

static int is_current(ph__plugin *const *current, size_t n,
                      const ph__plugin *p) {
  size_t i;

  for (i = 0; i < n; i++)
    if (current[i] == p)
      return 1;
  return 0;
}

size_t ph__plugin_scan(const char *dir, const char *cache_dir,
                       ph__plugin ***out) {
  return ph__plugin_rescan(dir, cache_dir, NULL, 0, out);
}

size_t ph__plugin_rescan(const char *dir, const char *cache_dir,
                         ph__plugin *const *current, size_t ncurrent,
                         ph__plugin ***out) {
  struct dirent *de;
  ph__plugin **plugins, *p;
  char **names = NULL, *path, *err, hash[65];
  size_t n = 0, cap = 0, i, j, loaded = 0;
  DIR *d;

  *out = NULL;
  d = opendir(dir);
  if (d == NULL) {
    ph__error("plugin directory %s: %s", dir, strerror(errno));
    return 0;
  }
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (len < 4 || strcmp(de->d_name + len - 3, ".so") != 0 ||
        de->d_name[0] == '.')
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      names = ph__xrealloc(names, cap * sizeof(char *));
    }
    names[n++] = ph__xstrdup(de->d_name);
  }
  closedir(d);
  if (n > 0)
    qsort(names, n, sizeof(char *), by_name);
  plugins = ph__xcalloc(n + 1, sizeof(ph__plugin *));
  for (i = 0; i < n; i++) {
    path = ph__xasprintf("%s/%s", dir, names[i]);
    p = NULL;
    err = NULL;
    /* Identity is the content: an unchanged file keeps its loaded code and
     * its instances; a changed one is loaded afresh from a new copy. */
    if (ncurrent > 0 && hash_file(path, hash) == 0) {
      for (j = 0; j < ncurrent; j++) {
        if (strcmp(current[j]->hash, hash) == 0) {
          p = current[j];
          ph__plugin_ref(p);
          break;
        }
      }
    }
    if (p == NULL)
      p = ph__plugin_load(path, cache_dir, &err);
    if (p == NULL) {
      ph__error("refused plugin %s: %s", path, err ? err : "out of memory");
      free(err);
      /* Per-plugin rollback: the code loaded from this file before keeps
       * serving until a good build replaces it. */
      for (j = 0; j < ncurrent; j++) {
        if (strcmp(current[j]->source_path, path) == 0) {
          ph__error("keeping the previous build of %s (sha256 %.16s)",
                    current[j]->name, current[j]->hash);
          p = current[j];
          ph__plugin_ref(p);
          break;
        }
      }
    }
    if (p != NULL) {
      for (j = 0; j < loaded; j++)
        if (strcmp(plugins[j]->name, p->name) == 0)
          break;
      if (j < loaded && is_current(current, ncurrent, p) &&
          !is_current(current, ncurrent, plugins[j])) {
        /* A newcomer must not displace the plugin that is serving under
         * this name, whatever its file name sorts as. */
        ph__error("refused plugin %s: name \"%s\" already loaded from %s, "
                  "which is serving",
                  plugins[j]->source_path, p->name, path);
        ph__plugin_unref(plugins[j]);
        plugins[j] = p;
      } else if (j < loaded) {
        ph__error("refused plugin %s: name \"%s\" already loaded from %s", path,
                  p->name, plugins[j]->source_path);
        ph__plugin_unref(p);
      } else {
        ph__debug("loaded plugin %s from %s (sha256 %.16s)", p->name, path,
                  p->hash);
        plugins[loaded++] = p;
      }
    }
    free(path);
    free(names[i]);
  }
  free(names);
  *out = plugins;
  return loaded;
}

void ph__plugin_ref(ph__plugin *p) {
  atomic_fetch_add(&p->refs, 1);
}

void ph__plugin_unref(ph__plugin *p) {
  if (p != NULL && atomic_fetch_sub(&p->refs, 1) == 1)
    plugin_free(p);
}

int ph__plugin_provides(const ph__plugin *p, const char *service) {
  char **s;

  for (s = p->provides; *s != NULL; s++)
    if (strcmp(*s, service) == 0)
      return 1;
  return 0;
}
