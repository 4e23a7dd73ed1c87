/* config.h: the host configuration (etc/plughost.json). Parsing is strict:
 * an unknown key is an error naming it, so a typo never passes silently. */
#ifndef PH_CONFIG_H
#define PH_CONFIG_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* Where an instance's plugin code runs (isolation). */
enum ph__isolation {
  PH__ISOLATION_NONE,   /* In the host, on its worker threads. */
  PH__ISOLATION_PROCESS /* In a plughost-runner child process. */
};

/* An isolated instance's runner limits (an instance's "limits"); 0 leaves
 * the host's own limit in place. */
typedef struct ph__runner_limits {
  uint64_t address_space_mb; /* RLIMIT_AS, MiB. */
  uint64_t cpu_seconds;      /* RLIMIT_CPU: SIGXCPU, a second later SIGKILL. */
  uint64_t open_files;       /* RLIMIT_NOFILE. */
} ph__runner_limits;

typedef struct ph__instance_cfg {
  char *plugin;             /* Plugin name (the descriptor's name). */
  char *prefix;             /* Exposed prefix; "" for bare names. */
  char *config_json;        /* The instance's "config" object as text. */
  int workers;              /* Worker threads; 0: limits.workers_per_plugin. */
  int isolation;            /* enum ph__isolation. */
  ph__runner_limits limits; /* PH__ISOLATION_PROCESS only. */
} ph__instance_cfg;

/* Who may call a department over HTTP (auth). */
enum ph__auth_mode {
  PH__AUTH_NONE,     /* No authentication; scopes come only from
                        stdio_scopes (the default, as before). */
  PH__AUTH_OPTIONAL, /* A credential is checked when sent; anonymous
                        callers see and call only public tools. */
  PH__AUTH_REQUIRED  /* Every request carries a valid credential. */
};

/* A department's override of a tool's required_scope (tool_scopes). */
typedef struct ph__tool_scope {
  char *tool;  /* Exposed name, matched exactly. */
  char *scope; /* The scope it needs; NULL: public, none needed. */
} ph__tool_scope;

/* A department's authorization settings (README: Authorization). */
typedef struct ph__dept_auth {
  int mode;         /* enum ph__auth_mode. */
  char *public_url; /* The resource URL clients use: the audience and
                       the PRM's resource. NULL for mode none. */
  char **authorization_servers; /* For the PRM; NULL-terminated. */
  char **scopes_supported;      /* For the PRM and the 401 challenge. */
  char **issuers; /* Accepted iss values, passed to authn; NULL (not an
                     empty list): every issuer of the provider. */
  ph__tool_scope *tool_scopes;
  size_t ntool_scopes;
  int list_unauthorized_tools; /* tools/list shows tools the caller lacks
                                  the scope for (calls still get 403). */
  int audit; /* Audit lines for its calls (default: mode is not none). */
} ph__dept_auth;

typedef struct ph__department_cfg {
  char *name;
  ph__dept_auth auth;
  int all_plugins; /* No "plugins" key: every plugin, default prefixes. */
  ph__instance_cfg *instances;
  size_t ninstances;
  char **allow; /* Globs over exposed names; NULL-terminated. */
  char **deny;
} ph__department_cfg;

typedef struct ph__limits {
  size_t max_message_bytes;     /* One JSON-RPC message (stdio line, body). */
  int max_batch_members;        /* Members of one JSON-RPC batch. */
  int max_json_values;          /* Values in one message (jsonrpc.h). */
  int max_json_depth;           /* Nesting of arrays and objects. */
  uint32_t call_timeout_ms;     /* Cap on every call's deadline. */
  int workers_per_plugin;       /* Default worker pool size per instance. */
  int queue_per_plugin;         /* Waiting calls per instance pool. */
  int max_inflight_per_session; /* Calls running for one session. */
  uint32_t shutdown_timeout_ms; /* Bounded wait for calls at exit. */
  uint32_t drain_timeout_ms;    /* Retired instance: mark stuck after this. */
  int max_sessions;             /* HTTP sessions. */
  uint32_t session_idle_ms;     /* HTTP session idle TTL. */
  size_t max_header_bytes;      /* HTTP request head. */
  int max_connections;          /* HTTP connections. */
  uint32_t header_timeout_ms;   /* HTTP: whole head must arrive in this. */
  uint32_t idle_timeout_ms;     /* HTTP keep-alive idle. */

  /* One HTTP client (clients.h) against the others: */
  unsigned max_sessions_per_client;  /* Legacy sessions it holds. */
  unsigned session_rate_per_client;  /* New sessions per second, sustained. */
  unsigned session_burst_per_client; /* New sessions at once. */
} ph__limits;

/* How much of a plugin's result the host checks (check_results). */
enum ph__check_results {
  PH__CHECK_STRUCTURAL, /* A legacy tool or prompt result: UTF-8, strings
                           and brackets, one object; the rest is parsed
                           for what the host adds to it. */
  PH__CHECK_FULL        /* Every result parsed, and structuredContent
                           validated against the tool's outputSchema. */
};

/* A plugin's own log threshold (log_levels). */
typedef struct ph__plugin_level {
  char *plugin; /* The plugin's name. */
  int level;    /* enum ph_log_level. */
} ph__plugin_level;

typedef struct ph__config {
  char *path;           /* Where it was read from. */
  char *plugin_dir;     /* Relative to the working directory. */
  char *cache_dir;      /* Private copies of loaded .so files. */
  char *listen;         /* HOST:PORT for HTTP. */
  char *separator;      /* Between prefix and name. */
  int log_level;        /* enum ph_log_level. */
  int page_size;        /* Items per list page. */
  int watch_plugin_dir; /* Reload by itself when the directory changes. */
  char *hmac_key;       /* Signs cursors and request state; random if unset. */
  int check_results;    /* enum ph__check_results. */
  char **allowed_origins;       /* Browser origins for CORS; NULL-terminated. */
  char **allowed_hosts;         /* Extra Host header values; NULL-terminated. */
  char **stdio_scopes;          /* Scopes the local stdio client holds. */
  char *audit_log;              /* Audit lines go here; NULL: stderr. */
  int metrics;                  /* GET /metrics is served and metrics count. */
  char *metrics_listen;         /* HOST:PORT serving /metrics alone, or NULL. */
  int log_json;                 /* log_format "json": one JSON object a line. */
  char *log_file;               /* Log lines go here (SIGUSR1 reopens); NULL:
                                   stderr. */
  ph__plugin_level *log_levels; /* Per-plugin thresholds. */
  size_t nlog_levels;
  ph__limits limits;
  ph__department_cfg *departments;
  size_t ndepartments;
} ph__config;

/* Reads and validates the file. On error returns NULL and sets *err to a
 * malloc'd message naming the file and the key. */
ph__config *ph__config_load(const char *path, char **err);

/* Same, from text (path is used in messages only). */
ph__config *ph__config_parse(const char *text, const char *path, char **err);

void ph__config_free(ph__config *cfg);

/* The department called name, or NULL. */
const ph__department_cfg *ph__config_department(const ph__config *cfg,
                                                const char *name);

/* The scope a department requires for a tool: its tool_scopes override
 * when it has one, else `declared` (the tool's required_scope). NULL:
 * none, the tool is public. */
const char *ph__config_tool_scope(const ph__department_cfg *d, const char *tool,
                                  const char *declared);

/* Whether s is a scope token (RFC 6749 3.3: printable ASCII but space,
 * '"' and '\\'), so that it can stand in a challenge header as it is. */
int ph__valid_scope(const char *s);

/* Prefix rule: ^[a-z][a-z0-9-]{0,15}$ or empty. */
int ph__valid_prefix(const char *prefix);

/* Exposed/item name rule: [A-Za-z0-9_-]{1,64}. */
int ph__valid_name(const char *name);

/* Shell-style glob with * and ?, whole-string match. */
int ph__glob_match(const char *pattern, const char *text);

#endif
