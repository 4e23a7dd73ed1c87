/* config.c: see config.h. */
#include "config.h"

#include "alloc.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every member of obj must be one of `keys` (NULL-terminated). */
static int check_keys(const cJSON *obj, const char *const *keys,
                      const char *where, const char *path, char **err) {
  const cJSON *item;
  const char *const *k;

  if (!cJSON_IsObject(obj))
    return ph__fail(err, "%s: %s must be an object", path, where);
  cJSON_ArrayForEach(item, obj) {
    const cJSON *earlier;

    /* cJSON keeps the first of two equal keys; a second is a typo that
     * would be silently ignored. */
    for (earlier = obj->child; earlier != item; earlier = earlier->next)
      if (strcmp(earlier->string, item->string) == 0)
        return ph__fail(err, "%s: key \"%s\" appears twice in %s", path,
                        item->string, where);
    for (k = keys; *k != NULL; k++)
      if (strcmp(item->string, *k) == 0)
        break;
    if (*k == NULL)
      return ph__fail(err, "%s: unknown key \"%s\" in %s", path, item->string,
                      where);
  }
  return 0;
}

static int get_string(const cJSON *obj, const char *key, const char *def,
                      char **out, const char *path, char **err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

  if (v == NULL) {
    *out = def ? ph__xstrdup(def) : NULL;
    return 0;
  }
  if (!cJSON_IsString(v))
    return ph__fail(err, "%s: \"%s\" must be a string", path, key);
  *out = ph__xstrdup(v->valuestring);
  return 0;
}

static int get_uint(const cJSON *obj, const char *key, double min, double max,
                    double *out, const char *path, char **err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

  if (v == NULL)
    return 0;
  if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble)
    return ph__fail(err, "%s: \"%s\" must be an integer", path, key);
  if (v->valuedouble < min || v->valuedouble > max)
    return ph__fail(err, "%s: \"%s\" must be between %.0f and %.0f", path, key,
                    min, max);
  *out = v->valuedouble;
  return 0;
}

static char **get_strings(const cJSON *obj, const char *key,
                          const char *const *def, const char *path, char **err,
                          int *failed) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key), *item;
  char **list;
  size_t n = 0;

  *failed = 0;
  if (v == NULL) {
    while (def != NULL && def[n] != NULL)
      n++;
    list = ph__xcalloc(n + 1, sizeof(char *));
    for (n = 0; def != NULL && def[n] != NULL; n++)
      list[n] = ph__xstrdup(def[n]);
    return list;
  }
  if (!cJSON_IsArray(v)) {
    *failed =
        ph__fail(err, "%s: \"%s\" must be an array of strings", path, key);
    return NULL;
  }
  list = ph__xcalloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(char *));
  cJSON_ArrayForEach(item, v) {
    if (!cJSON_IsString(item)) {
      *failed =
          ph__fail(err, "%s: \"%s\" must be an array of strings", path, key);
      break;
    }
    list[n++] = ph__xstrdup(item->valuestring);
  }
  return list;
}

static void free_strings(char **list) {
  char **p;

  if (list == NULL)
    return;
  for (p = list; *p != NULL; p++)
    free(*p);
  free(list);
}

int ph__valid_prefix(const char *p) {
  size_t i, n = strlen(p);

  if (n == 0)
    return 1;
  if (n > 16 || p[0] < 'a' || p[0] > 'z')
    return 0;
  for (i = 1; i < n; i++)
    if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') ||
          p[i] == '-'))
      return 0;
  return 1;
}

int ph__valid_name(const char *s) {
  size_t i, n = strlen(s);

  if (n < 1 || n > 64)
    return 0;
  for (i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
      return 0;
  return 1;
}

int ph__glob_match(const char *pat, const char *s) {
  const char *star = NULL, *resume = NULL;

  /* Iterative matching with one backtrack point: linear enough for names
   * of at most 64 characters, and no recursion on hostile patterns. */
  while (*s != '\0') {
    if (*pat == '*') {
      star = pat++;
      resume = s;
    } else if (*pat == '?' || *pat == *s) {
      pat++;
      s++;
    } else if (star != NULL) {
      pat = star + 1;
      s = ++resume;
    } else {
      return 0;
    }
  }
  while (*pat == '*')
    pat++;
  return *pat == '\0';
}

static const char *const top_keys[] = {
    "plugin_dir",       "cache_dir",      "listen",
    "separator",        "log_level",      "page_size",
    "watch_plugin_dir", "hmac_key",       "limits",
    "allowed_origins",  "allowed_hosts",  "departments",
    "stdio_scopes",     "check_results",  "audit_log",
    "metrics",          "metrics_listen", "log_format",
    "log_file",         "log_levels",     NULL};
static const char *const limit_keys[] = {"max_message_bytes",
                                         "max_json_depth",
                                         "call_timeout_ms",
                                         "workers_per_plugin",
                                         "queue_per_plugin",
                                         "max_inflight_per_session",
                                         "shutdown_timeout_ms",
                                         "drain_timeout_ms",
                                         "max_sessions",
                                         "session_idle_ms",
                                         "max_header_bytes",
                                         "max_connections",
                                         "header_timeout_ms",
                                         "idle_timeout_ms",
                                         "max_batch_members",
                                         "max_json_values",
                                         "max_sessions_per_client",
                                         "session_rate_per_client",
                                         "session_burst_per_client",
                                         NULL};
static const char *const dept_keys[] = {"plugins",
                                        "allow",
                                        "deny",
                                        "auth",
                                        "public_url",
                                        "authorization_servers",
                                        "scopes_supported",
                                        "issuers",
                                        "tool_scopes",
                                        "list_unauthorized_tools",
                                        "audit",
                                        NULL};
static const char *const inst_keys[] = {
    "plugin", "prefix", "config", "workers", "isolation", "limits", NULL};
static const char *const runner_limit_keys[] = {
    "address_space_mb", "cpu_seconds", "open_files", NULL};
static const char *const allow_all[] = {"*", NULL};

int ph__valid_scope(const char *s) {
  const unsigned char *p = (const unsigned char *)s;

  if (*p == '\0')
    return 0;
  for (; *p != '\0'; p++)
    if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\')
      return 0;
  return 1;
}

const char *ph__config_tool_scope(const ph__department_cfg *d, const char *tool,
                                  const char *declared) {
  size_t i;

  for (i = 0; d != NULL && i < d->auth.ntool_scopes; i++)
    if (strcmp(d->auth.tool_scopes[i].tool, tool) == 0)
      return d->auth.tool_scopes[i].scope;
  return declared;
}

/* A resource URL as MCP wants the audience (RFC 8707, RFC 9728 3.3): http
 * or https, a host, no userinfo, query or fragment, no trailing slash, and
 * the scheme and host in lower case, so that the one string clients use
 * is the one tokens name. It also lands in a challenge header, so no
 * quote, backslash, space or control character. */
static const char *public_url_problem(const char *url) {
  const char *p, *host, *end;

  if (strncmp(url, "https://", 8) == 0)
    host = url + 8;
  else if (strncmp(url, "http://", 7) == 0)
    host = url + 7;
  else
    return "must start with https:// or http://";
  for (p = url; *p != '\0'; p++)
    if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '"' ||
        *p == '\\')
      return "must be printable ASCII without spaces, quotes or backslashes";
  if (strchr(url, '?') != NULL || strchr(url, '#') != NULL)
    return "must have no query or fragment";
  end = host + strcspn(host, "/");
  if (end == host)
    return "must name a host";
  for (p = host; p < end; p++) {
    if (*p == '@')
      return "must have no userinfo";
    if (*p >= 'A' && *p <= 'Z')
      return "must have its host in lower case";
  }
  if (*end != '\0' && end[strlen(end) - 1] == '/')
    return "must not end with a slash";
  return NULL;
}

static int parse_auth(const cJSON *obj, ph__department_cfg *d, const char *path,
                      char **err) {
  ph__dept_auth *a = &d->auth;
  const cJSON *v, *item;
  const char *why;
  char **sc;
  char *mode = NULL;
  int failed;

  if (get_string(obj, "auth", "none", &mode, path, err) != 0)
    return -1;
  if (strcmp(mode, "none") == 0) {
    a->mode = PH__AUTH_NONE;
  } else if (strcmp(mode, "optional") == 0) {
    a->mode = PH__AUTH_OPTIONAL;
  } else if (strcmp(mode, "required") == 0) {
    a->mode = PH__AUTH_REQUIRED;
  } else {
    free(mode);
    return ph__fail(err,
                    "%s: department \"%s\": \"auth\" must be \"none\", "
                    "\"optional\" or \"required\"",
                    path, d->name);
  }
  free(mode);
  if (get_string(obj, "public_url", NULL, &a->public_url, path, err) != 0)
    return -1;
  if (a->public_url == NULL && a->mode != PH__AUTH_NONE)
    return ph__fail(err,
                    "%s: department \"%s\": \"auth\" needs \"public_url\", "
                    "the URL clients use for it (the tokens' audience)",
                    path, d->name);
  if (a->public_url != NULL && (why = public_url_problem(a->public_url)))
    return ph__fail(err, "%s: department \"%s\": \"public_url\" %s", path,
                    d->name, why);
  a->scopes_supported =
      get_strings(obj, "scopes_supported", NULL, path, err, &failed);
  if (failed)
    return -1;
  for (sc = a->scopes_supported; *sc != NULL; sc++)
    if (!ph__valid_scope(*sc))
      return ph__fail(err,
                      "%s: department \"%s\": scope \"%s\" in "
                      "\"scopes_supported\" is not a scope token",
                      path, d->name, *sc);
  if (cJSON_GetObjectItemCaseSensitive(obj, "issuers") != NULL) {
    a->issuers = get_strings(obj, "issuers", NULL, path, err, &failed);
    if (failed)
      return -1;
    if (a->issuers[0] == NULL)
      return ph__fail(err,
                      "%s: department \"%s\": \"issuers\" is empty, which "
                      "would refuse every token; leave it out to accept "
                      "every issuer of the auth plugin",
                      path, d->name);
  }
  /* RFC 9728 wants the authorization servers; the issuers are theirs. */
  a->authorization_servers =
      get_strings(obj, "authorization_servers", (const char *const *)a->issuers,
                  path, err, &failed);
  if (failed)
    return -1;
  if (a->mode != PH__AUTH_NONE && a->authorization_servers[0] == NULL)
    return ph__fail(err,
                    "%s: department \"%s\": \"auth\" needs "
                    "\"authorization_servers\" (or \"issuers\", which it "
                    "defaults to): MCP's resource metadata must name one",
                    path, d->name);
  v = cJSON_GetObjectItemCaseSensitive(obj, "tool_scopes");
  if (v != NULL && !cJSON_IsObject(v))
    return ph__fail(err,
                    "%s: department \"%s\": \"tool_scopes\" must be an object "
                    "of tool names to a scope or null",
                    path, d->name);
  a->tool_scopes =
      ph__xcalloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(*a->tool_scopes));
  cJSON_ArrayForEach(item, v) {
    ph__tool_scope *ts;

    if (!ph__valid_name(item->string))
      return ph__fail(err,
                      "%s: department \"%s\": \"tool_scopes\" names \"%s\", "
                      "which is not a tool name",
                      path, d->name, item->string);
    if (!cJSON_IsNull(item) &&
        !(cJSON_IsString(item) && ph__valid_scope(item->valuestring)))
      return ph__fail(err,
                      "%s: department \"%s\": \"tool_scopes\".\"%s\" must be "
                      "a scope token or null (public)",
                      path, d->name, item->string);
    ts = &a->tool_scopes[a->ntool_scopes++];
    ts->tool = ph__xstrdup(item->string);
    ts->scope = cJSON_IsString(item) ? ph__xstrdup(item->valuestring) : NULL;
  }
  v = cJSON_GetObjectItemCaseSensitive(obj, "list_unauthorized_tools");
  if (v != NULL && !cJSON_IsBool(v))
    return ph__fail(err,
                    "%s: department \"%s\": \"list_unauthorized_tools\" must "
                    "be true or false",
                    path, d->name);
  a->list_unauthorized_tools = cJSON_IsTrue(v);
  v = cJSON_GetObjectItemCaseSensitive(obj, "audit");
  if (v != NULL && !cJSON_IsBool(v))
    return ph__fail(err,
                    "%s: department \"%s\": \"audit\" must be true or false",
                    path, d->name);
  a->audit = v != NULL ? cJSON_IsTrue(v) : a->mode != PH__AUTH_NONE;
  return 0;
}

static int parse_limits(const cJSON *obj, ph__limits *l, const char *path,
                        char **err) {
  double v;

#define LIMIT(key, min, max, field, type)                                      \
  v = (double)l->field;                                                        \
  if (get_uint(obj, key, min, max, &v, path, err) != 0)                        \
    return -1;                                                                 \
  l->field = (type)v;

  if (obj == NULL)
    return 0;
  if (check_keys(obj, limit_keys, "\"limits\"", path, err) != 0)
    return -1;
  LIMIT("max_message_bytes", 1024, 1 << 30, max_message_bytes, size_t)
  LIMIT("max_json_depth", 4, 10000, max_json_depth, int)
  LIMIT("max_batch_members", 1, 10000, max_batch_members, int)
  LIMIT("max_json_values", 16, 1 << 30, max_json_values, int)
  LIMIT("call_timeout_ms", 1, 86400000, call_timeout_ms, uint32_t)
  LIMIT("workers_per_plugin", 1, 256, workers_per_plugin, int)
  LIMIT("queue_per_plugin", 1, 1 << 20, queue_per_plugin, int)
  LIMIT("max_inflight_per_session", 1, 1 << 20, max_inflight_per_session, int)
  LIMIT("shutdown_timeout_ms", 0, 3600000, shutdown_timeout_ms, uint32_t)
  LIMIT("drain_timeout_ms", 0, 86400000, drain_timeout_ms, uint32_t)
  LIMIT("max_sessions", 1, 10000000, max_sessions, int)
  LIMIT("session_idle_ms", 1000, 86400000, session_idle_ms, uint32_t)
  LIMIT("max_sessions_per_client", 1, 10000000, max_sessions_per_client,
        unsigned)
  LIMIT("session_rate_per_client", 1, 1000000, session_rate_per_client,
        unsigned)
  LIMIT("session_burst_per_client", 1, 10000000, session_burst_per_client,
        unsigned)
  LIMIT("max_header_bytes", 1024, 1 << 24, max_header_bytes, size_t)
  LIMIT("max_connections", 1, 1000000, max_connections, int)
  LIMIT("header_timeout_ms", 100, 3600000, header_timeout_ms, uint32_t)
  LIMIT("idle_timeout_ms", 100, 86400000, idle_timeout_ms, uint32_t)
#undef LIMIT
  return 0;
}

/* An instance's "isolation" and, for a process, its "limits". */
static int parse_isolation(const cJSON *obj, ph__instance_cfg *ic,
                           const char *dept, const char *path, char **err) {
  ph__runner_limits *l = &ic->limits;
  const cJSON *limits;
  char *mode = NULL;
  double v;

  if (get_string(obj, "isolation", "none", &mode, path, err) != 0)
    return -1;
  if (strcmp(mode, "none") == 0) {
    ic->isolation = PH__ISOLATION_NONE;
  } else if (strcmp(mode, "process") == 0) {
    ic->isolation = PH__ISOLATION_PROCESS;
  } else {
    free(mode);
    return ph__fail(err,
                    "%s: department \"%s\": instance of %s: \"isolation\" "
                    "must be \"none\" or \"process\"",
                    path, dept, ic->plugin);
  }
  free(mode);
  limits = cJSON_GetObjectItemCaseSensitive(obj, "limits");
  if (limits == NULL)
    return 0;
  if (ic->isolation != PH__ISOLATION_PROCESS)
    return ph__fail(err,
                    "%s: department \"%s\": instance of %s: \"limits\" "
                    "needs \"isolation\": \"process\"",
                    path, dept, ic->plugin);
  if (check_keys(limits, runner_limit_keys, "an instance's \"limits\"", path,
                 err) != 0)
    return -1;
#define RUNNER_LIMIT(key, max, field)                                          \
  v = 0;                                                                       \
  if (get_uint(limits, key, 1, max, &v, path, err) != 0)                       \
    return -1;                                                                 \
  l->field = (uint64_t)v;

  RUNNER_LIMIT("address_space_mb", 1 << 24, address_space_mb)
  RUNNER_LIMIT("cpu_seconds", 1 << 30, cpu_seconds)
  RUNNER_LIMIT("open_files", 1 << 20, open_files)
#undef RUNNER_LIMIT
  return 0;
}

static int parse_instance(const cJSON *obj, ph__instance_cfg *ic,
                          const char *dept, const char *path, char **err) {
  const cJSON *conf;
  double workers = 0;

  if (check_keys(obj, inst_keys, "a plugin instance", path, err) != 0)
    return -1;
  if (get_string(obj, "plugin", NULL, &ic->plugin, path, err) != 0)
    return -1;
  if (ic->plugin == NULL)
    return ph__fail(err, "%s: department \"%s\": an instance lacks \"plugin\"",
                    path, dept);
  if (get_string(obj, "prefix", ic->plugin, &ic->prefix, path, err) != 0)
    return -1;
  if (!ph__valid_prefix(ic->prefix))
    return ph__fail(err,
                    "%s: department \"%s\": prefix \"%s\" must match "
                    "^[a-z][a-z0-9-]{0,15}$ or be empty",
                    path, dept, ic->prefix);
  conf = cJSON_GetObjectItemCaseSensitive(obj, "config");
  if (conf != NULL && !cJSON_IsObject(conf))
    return ph__fail(err, "%s: department \"%s\": \"config\" must be an object",
                    path, dept);
  ic->config_json = conf ? cJSON_PrintUnformatted(conf) : ph__xstrdup("{}");
  if (get_uint(obj, "workers", 1, 256, &workers, path, err) != 0)
    return -1;
  ic->workers = (int)workers;
  return parse_isolation(obj, ic, dept, path, err);
}

static int parse_department(const cJSON *obj, ph__department_cfg *d,
                            const char *path, char **err) {
  const cJSON *plugins, *item;
  int failed;

  if (check_keys(obj, dept_keys, "a department", path, err) != 0)
    return -1;
  plugins = cJSON_GetObjectItemCaseSensitive(obj, "plugins");
  if (plugins == NULL) {
    d->all_plugins = 1;
  } else {
    if (!cJSON_IsArray(plugins))
      return ph__fail(err,
                      "%s: department \"%s\": \"plugins\" must be an array",
                      path, d->name);
    d->instances = ph__xcalloc((size_t)cJSON_GetArraySize(plugins) + 1,
                               sizeof(ph__instance_cfg));
    cJSON_ArrayForEach(item, plugins) {
      if (parse_instance(item, &d->instances[d->ninstances++], d->name, path,
                         err) != 0)
        return -1;
    }
  }
  d->allow = get_strings(obj, "allow", allow_all, path, err, &failed);
  if (failed)
    return -1;
  d->deny = get_strings(obj, "deny", NULL, path, err, &failed);
  if (failed)
    return -1;
  return parse_auth(obj, d, path, err);
}

static int get_bool(const cJSON *obj, const char *key, int def, int *out,
                    const char *path, char **err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

  if (v != NULL && !cJSON_IsBool(v))
    return ph__fail(err, "%s: \"%s\" must be true or false", path, key);
  *out = v == NULL ? def : cJSON_IsTrue(v);
  return 0;
}

/* The operations keys (README: Operations): metrics and logs. */
static int parse_ops(const cJSON *root, ph__config *cfg, const char *path,
                     char **err) {
  const cJSON *levels = cJSON_GetObjectItemCaseSensitive(root, "log_levels");
  const cJSON *item;
  char *format = NULL;
  int rc = -1;

  if (get_bool(root, "metrics", 1, &cfg->metrics, path, err) != 0 ||
      get_string(root, "metrics_listen", NULL, &cfg->metrics_listen, path,
                 err) != 0 ||
      get_string(root, "log_file", NULL, &cfg->log_file, path, err) != 0 ||
      get_string(root, "log_format", "text", &format, path, err) != 0)
    goto done;
  if (strcmp(format, "json") != 0 && strcmp(format, "text") != 0) {
    ph__fail(err, "%s: \"log_format\" must be \"json\" or \"text\"", path);
    goto done;
  }
  cfg->log_json = strcmp(format, "json") == 0;
  if (levels != NULL && !cJSON_IsObject(levels)) {
    ph__fail(err, "%s: \"log_levels\" must be an object of plugin names", path);
    goto done;
  }
  if (cJSON_GetArraySize(levels) > PH__LOG_MAX_PLUGIN_LEVELS) {
    ph__fail(err, "%s: \"log_levels\" names more than %d plugins", path,
             PH__LOG_MAX_PLUGIN_LEVELS);
    goto done;
  }
  cfg->log_levels = ph__xcalloc((size_t)cJSON_GetArraySize(levels) + 1,
                                sizeof(*cfg->log_levels));
  cJSON_ArrayForEach(item, levels) {
    ph__plugin_level *pl = &cfg->log_levels[cfg->nlog_levels];

    if (!cJSON_IsString(item) ||
        (pl->level = ph__log_level_parse(item->valuestring)) < 0) {
      ph__fail(err, "%s: \"log_levels\".\"%s\" must be a log level name", path,
               item->string);
      goto done;
    }
    pl->plugin = ph__xstrdup(item->string);
    cfg->nlog_levels++;
  }
  rc = 0;

done:
  free(format);
  return rc;
}

ph__config *ph__config_parse(const char *text, const char *path, char **err) {
  ph__config *cfg;
  cJSON *root;
  const cJSON *depts, *item;
  char *level = NULL, *checks = NULL;
  double page = 100;
  size_t i, j;
  int failed;

  *err = NULL;
  root = cJSON_Parse(text);
  if (root == NULL) {
    ph__fail(err, "%s: not valid JSON near \"%.20s\"", path,
             cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "");
    return NULL;
  }
  cfg = ph__xcalloc(1, sizeof(*cfg));
  cfg->path = ph__xstrdup(path);
  cfg->limits = (ph__limits){
      .max_message_bytes = 4u << 20,
      .max_json_depth = 64,
      .max_batch_members = 100,
      .max_json_values = 100000,
      .call_timeout_ms = 60000,
      .workers_per_plugin = 4,
      .queue_per_plugin = 1024,
      .max_inflight_per_session = 256,
      .shutdown_timeout_ms = 10000,
      .drain_timeout_ms = 30000,
      .max_sessions = 10000,
      .session_idle_ms = 30 * 60 * 1000,
      .max_header_bytes = 16384,
      .max_connections = 1024,
      .header_timeout_ms = 10000,
      .idle_timeout_ms = 60000,
      .max_sessions_per_client = 1000,
      .session_rate_per_client = 10,
      .session_burst_per_client = 100,
  };
  if (check_keys(root, top_keys, "the top level", path, err) != 0)
    goto fail;
  if (get_string(root, "plugin_dir", "build/plugins", &cfg->plugin_dir, path,
                 err) != 0 ||
      get_string(root, "cache_dir", NULL, &cfg->cache_dir, path, err) != 0 ||
      get_string(root, "listen", "127.0.0.1:8080", &cfg->listen, path, err) !=
          0 ||
      get_string(root, "separator", "_", &cfg->separator, path, err) != 0 ||
      get_string(root, "log_level", "info", &level, path, err) != 0 ||
      get_string(root, "hmac_key", NULL, &cfg->hmac_key, path, err) != 0 ||
      get_string(root, "check_results", "structural", &checks, path, err) !=
          0 ||
      get_string(root, "audit_log", NULL, &cfg->audit_log, path, err) != 0)
    goto fail;
  if (strcmp(checks, "structural") == 0) {
    cfg->check_results = PH__CHECK_STRUCTURAL;
  } else if (strcmp(checks, "full") == 0) {
    cfg->check_results = PH__CHECK_FULL;
  } else {
    ph__fail(err, "%s: \"check_results\" must be \"structural\" or \"full\"",
             path);
    goto fail;
  }
  if (strlen(cfg->separator) > 4 ||
      !(cfg->separator[0] == '\0' || ph__valid_name(cfg->separator))) {
    ph__fail(err, "%s: \"separator\" must be up to 4 of [A-Za-z0-9_-]", path);
    goto fail;
  }
  cfg->log_level = ph__log_level_parse(level);
  if (cfg->log_level < 0) {
    ph__fail(err, "%s: \"log_level\" \"%s\" is not a log level", path, level);
    goto fail;
  }
  if (get_uint(root, "page_size", 1, 10000, &page, path, err) != 0)
    goto fail;
  {
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "watch_plugin_dir");
    if (w != NULL && !cJSON_IsBool(w)) {
      ph__fail(err, "%s: \"watch_plugin_dir\" must be true or false", path);
      goto fail;
    }
    cfg->watch_plugin_dir = cJSON_IsTrue(w);
  }
  cfg->page_size = (int)page;
  cfg->allowed_origins =
      get_strings(root, "allowed_origins", NULL, path, err, &failed);
  if (failed)
    goto fail;
  cfg->allowed_hosts =
      get_strings(root, "allowed_hosts", NULL, path, err, &failed);
  if (failed)
    goto fail;
  cfg->stdio_scopes =
      get_strings(root, "stdio_scopes", NULL, path, err, &failed);
  if (failed)
    goto fail;
  if (parse_limits(cJSON_GetObjectItemCaseSensitive(root, "limits"),
                   &cfg->limits, path, err) != 0)
    goto fail;
  if (parse_ops(root, cfg, path, err) != 0)
    goto fail;

  depts = cJSON_GetObjectItemCaseSensitive(root, "departments");
  if (depts != NULL && !cJSON_IsObject(depts)) {
    ph__fail(err, "%s: \"departments\" must be an object", path);
    goto fail;
  }
  cfg->departments = ph__xcalloc((size_t)cJSON_GetArraySize(depts) + 1,
                                 sizeof(ph__department_cfg));
  cJSON_ArrayForEach(item, depts) {
    ph__department_cfg *d;

    if (ph__config_department(cfg, item->string) != NULL) {
      ph__fail(err, "%s: department \"%s\" appears twice", path, item->string);
      goto fail;
    }
    d = &cfg->departments[cfg->ndepartments++];

    d->name = ph__xstrdup(item->string);
    if (!ph__valid_prefix(d->name) || d->name[0] == '\0') {
      ph__fail(err,
               "%s: department name \"%s\" must match ^[a-z][a-z0-9-]{0,15}$",
               path, d->name);
      goto fail;
    }
    if (parse_department(item, d, path, err) != 0)
      goto fail;
  }
  if (ph__config_department(cfg, "default") == NULL) {
    /* Every config has a default department: all plugins, default names. */
    ph__department_cfg *d = &cfg->departments[cfg->ndepartments++];

    d->name = ph__xstrdup("default");
    d->all_plugins = 1;
    d->allow = get_strings(NULL, "allow", allow_all, path, err, &failed);
    d->deny = get_strings(NULL, "deny", NULL, path, err, &failed);
    parse_auth(NULL, d, path, err);
  }
  /* One audience, one department: else a token for one is good for both. */
  for (i = 0; i < cfg->ndepartments; i++)
    for (j = 0; j < i; j++)
      if (cfg->departments[i].auth.public_url != NULL &&
          cfg->departments[j].auth.public_url != NULL &&
          strcmp(cfg->departments[i].auth.public_url,
                 cfg->departments[j].auth.public_url) == 0) {
        ph__fail(err,
                 "%s: departments \"%s\" and \"%s\" have the same "
                 "\"public_url\"",
                 path, cfg->departments[j].name, cfg->departments[i].name);
        goto fail;
      }
  free(level);
  free(checks);
  cJSON_Delete(root);
  return cfg;

fail:
  free(level);
  free(checks);
  cJSON_Delete(root);
  ph__config_free(cfg);
  return NULL;
}

ph__config *ph__config_load(const char *path, char **err) {
  ph__config *cfg;
  FILE *f;
  char *text;
  long n;

  *err = NULL;
  f = fopen(path, "rb");
  if (f == NULL) {
    ph__fail(err, "%s: %s", path, strerror(errno));
    return NULL;
  }
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (n < 0 || n > (16 << 20)) {
    fclose(f);
    ph__fail(err, "%s: unreadable or larger than 16 MiB", path);
    return NULL;
  }
  text = ph__xmalloc((size_t)n + 1);
  if (fread(text, 1, (size_t)n, f) != (size_t)n) {
    fclose(f);
    free(text);
    ph__fail(err, "%s: read failed", path);
    return NULL;
  }
  fclose(f);
  text[n] = '\0';
  cfg = ph__config_parse(text, path, err);
  free(text);
  return cfg;
}

const ph__department_cfg *ph__config_department(const ph__config *cfg,
                                                const char *name) {
  size_t i;

  for (i = 0; i < cfg->ndepartments; i++)
    if (strcmp(cfg->departments[i].name, name) == 0)
      return &cfg->departments[i];
  return NULL;
}

void ph__config_free(ph__config *cfg) {
  size_t i, j;

  if (cfg == NULL)
    return;
  for (i = 0; i < cfg->ndepartments; i++) {
    ph__department_cfg *d = &cfg->departments[i];

    for (j = 0; j < d->ninstances; j++) {
      free(d->instances[j].plugin);
      free(d->instances[j].prefix);
      free(d->instances[j].config_json);
    }
    free(d->instances);
    free_strings(d->allow);
    free_strings(d->deny);
    free(d->auth.public_url);
    free_strings(d->auth.authorization_servers);
    free_strings(d->auth.scopes_supported);
    free_strings(d->auth.issuers);
    for (j = 0; j < d->auth.ntool_scopes; j++) {
      free(d->auth.tool_scopes[j].tool);
      free(d->auth.tool_scopes[j].scope);
    }
    free(d->auth.tool_scopes);
    free(d->name);
  }
  free(cfg->departments);
  free_strings(cfg->allowed_origins);
  free_strings(cfg->allowed_hosts);
  free_strings(cfg->stdio_scopes);
  free(cfg->audit_log);
  free(cfg->metrics_listen);
  free(cfg->log_file);
  for (i = 0; i < cfg->nlog_levels; i++)
    free(cfg->log_levels[i].plugin);
  free(cfg->log_levels);
  free(cfg->path);
  free(cfg->plugin_dir);
  free(cfg->cache_dir);
  free(cfg->listen);
  free(cfg->separator);
  free(cfg->hmac_key);
  free(cfg);
}
