/* plughost.h: the plugin ABI of plughost, the only header a plugin includes.
 *
 * A plugin is a shared object exporting one function, ph_plugin_entry(),
 * which returns a const descriptor (ph_plugin_desc). The host copies every
 * string and table it needs out of the descriptor at load time, so nothing
 * dangles after dlclose(). JSON crosses the boundary as text, never as parser
 * objects: host and plugin share no library state.
 *
 * Threading: a handler runs either on a worker thread of the plugin's own
 * pool or, for tools marked inline, on the host's event loop thread (so it
 * must not block). Every host API function is safe to call from any thread
 * except watch_fd, which belongs to the loop. An inline handler that finds it
 * has to wait hands the call to a watch (a socket, a pipe) or to its pool
 * (run_in_pool) and returns.
 *
 * Compatibility: a host accepts plugins built for the same ABI major and an
 * equal or older minor. A minor, once published, is frozen: structs only
 * grow at their end, and only in a new minor whose number marks what it
 * added. The host API table is append-only; a plugin that also runs on
 * older hosts checks PH_API_HAS(api, field) before using a field newer than
 * the oldest host it supports. The item tables are read at the item size
 * the plugin was compiled with, which must be the size its minor published;
 * fields a plugin's minor did not have read as zero. The published layouts
 * (bytes on LP64; the host refuses any other size, naming the field):
 *
 *   minor  descriptor  tool  resource  template  prompt  ph_host_api
 *   1.0    120         80    56        64        56      120
 *   1.1    120         80    56        64        56      144
 *   1.2    120         80    56        64        56      160
 *   1.3    120         80    56        64        56      160
 *
 * 1.1 was published with close_stream (an earlier commit had 1.1 without it,
 * but never shipped). 1.3 adds no fields: it adds the promise behind
 * ph_call_api() and ph_instance_api(), which is why it is a minor of its own.
 * tests/abi/ builds plugins against frozen copies of the 1.0 and 1.2 headers
 * and serves them on the current host.
 */
#ifndef PLUGHOST_H
#define PLUGHOST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PH_MAGIC 0x31474850u /* "PHG1" read as little-endian bytes. */
#define PH_ABI_MAJOR 1
#define PH_ABI_MINOR 3

#if defined(__GNUC__)
#define PH_EXPORT __attribute__((visibility("default")))
#else
#define PH_EXPORT
#endif

/* Return codes of host API functions: 0 or a negative number. */
#define PH_OK 0
#define PH_EINVAL (-1)     /* An argument is malformed (bad JSON, NULL). */
#define PH_ENOMEM (-2)     /* Out of memory. */
#define PH_ENOTSUP (-3)    /* Not possible in this session or host. */
#define PH_EALREADY (-4)   /* The call was already replied to. */
#define PH_ENOSERVICE (-5) /* No live instance provides the service. */
#define PH_ECANCELED (-6)  /* The call was cancelled or timed out. */
#define PH_EINPUT (-7)     /* Input is required: return, the host re-calls. */
#define PH_EFAIL (-8)      /* The callee failed; see its error reply. */

/* JSON-RPC error codes a handler may pass to reply_error(). */
#define PH_RPC_INVALID_PARAMS (-32602)
#define PH_RPC_INTERNAL_ERROR (-32603)
#define PH_RPC_RESOURCE_NOT_FOUND (-32002) /* Mapped per protocol era. */

/* Log levels, RFC 5424 order as MCP uses them. */
enum ph_log_level {
  PH_LOG_DEBUG = 0,
  PH_LOG_INFO,
  PH_LOG_NOTICE,
  PH_LOG_WARNING,
  PH_LOG_ERROR,
  PH_LOG_CRITICAL,
  PH_LOG_ALERT,
  PH_LOG_EMERGENCY
};

/* What notify() reports. */
enum ph_notify_kind {
  PH_NOTIFY_RESOURCE_UPDATED = 1, /* uri: the resource that changed. */
  PH_NOTIFY_TOOLS_CHANGED,        /* The plugin's tool list changed. */
  PH_NOTIFY_RESOURCES_CHANGED,    /* The plugin's resource list changed. */
  PH_NOTIFY_PROMPTS_CHANGED       /* The plugin's prompt list changed. */
};

/* Tri-state tool annotation hints; 0 leaves the hint out of the listing. */
enum ph_hint { PH_HINT_UNSET = 0, PH_HINT_TRUE, PH_HINT_FALSE };

/* One in-flight request to the plugin: a tool call, a resource read, a
 * prompt get, a completion or a service call. Opaque; valid from the moment
 * the handler is entered until the plugin has replied. */
typedef struct ph_call ph_call;

/* A loaded instance of the plugin (code + prefix + config). Opaque; valid
 * from init until fini returns. Used for logging and notifications that do
 * not belong to a call. */
typedef struct ph_instance ph_instance;

/* What a watch waits for and reports (see watch_fd). */
#define PH_WATCH_READ 1
#define PH_WATCH_WRITE 2

/* A watch callback. Called on the loop thread, so it must not block; events:
 * PH_WATCH_* that are ready (both on a poll error, so the plugin's next
 * read/write finds the error). */
typedef void (*ph_watch_fn)(int fd, int events, void *data);

/* The host's function table, handed to init. Append-only: a field's comment
 * names the ABI minor that added it; check `size` before using a newer one. */
typedef struct ph_host_api {
  /* sizeof(ph_host_api) as compiled into the host. */
  size_t size;

  /* 1.0: Finish a call with its result, a JSON object in the method's
   * result shape: tools {"content":[...], "structuredContent":{...},
   * "isError":bool}; resources {"contents":[...]}; prompts
   * {"description":..., "messages":[...]}; completions {"values":[...],
   * "total":n, "hasMore":bool}; services any JSON value. Exactly once per
   * call; a second reply returns PH_EALREADY and is logged. The host copies
   * the text. Any thread. */
  int (*reply)(ph_call *call, const char *result_json);

  /* 1.0: Finish a call with a JSON-RPC error (code from PH_RPC_*, message,
   * optional data as JSON text or NULL). Counts as the one reply. */
  int (*reply_error)(ph_call *call, int code, const char *message,
                     const char *data_json);

  /* 1.0: Write a line to the host log (stderr), tagged with the instance.
   * printf-style. Never reaches clients. */
  void (*log)(ph_instance *self, int level, const char *fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 3, 4)))
#endif
      ;

  /* 1.0: Send a notifications/message to the client that made the call, if
   * its log level lets `level` through. data_json is any JSON value; logger
   * may be NULL. Returns PH_OK even when the level filters it out. */
  int (*message)(ph_call *call, int level, const char *logger,
                 const char *data_json);

  /* 1.0: Report progress on the call with the client's progress token, if
   * it sent one. `progress` must increase; total < 0 leaves it out;
   * message may be NULL. Returns PH_ENOTSUP when the client sent no token. */
  int (*progress)(ph_call *call, double progress, double total,
                  const char *message);

  /* 1.0: Non-zero once the client cancelled the call or its deadline passed.
   * Long-running handlers poll it and stop early. */
  int (*cancelled)(const ph_call *call);

  /* 1.0: The caller's identity as a JSON object of claims (set by an auth
   * plugin, a later issue), or NULL for an anonymous caller. Valid for the
   * call's lifetime. */
  const char *(*principal)(const ph_call *call);

  /* 1.0: Call the service `service` of whichever live instance provides it
   * in the caller's department, resolved by name on every call.
   * request_json is the request; on PH_OK *response_json is the provider's
   * reply, on PH_EFAIL its error object {"code":..,"message":..}; either
   * way free it with api->free. Blocks the calling thread until the
   * provider replies, so never call it from an inline tool. */
  int (*service_call)(ph_call *call, const char *service,
                      const char *request_json, char **response_json);

  /* 1.0: Tell subscribed clients something changed (ph_notify_kind); uri
   * only for PH_NOTIFY_RESOURCE_UPDATED. Any thread, also outside calls. */
  int (*notify)(ph_instance *self, int kind, const char *uri);

  /* 1.0: Memory for strings the host frees or hands back. */
  void *(*alloc)(size_t size);
  void (*free)(void *ptr);

  /* 1.0: Ask the client for input while handling a call: method is
   * "elicitation/create", "sampling/createMessage" or "roots/list", params
   * its params as JSON, key a name unique within the call. On PH_OK
   * *result_json holds the client's result (free with api->free). On a
   * legacy session the host sends the request and blocks until the answer
   * arrives. On a modern (stateless) request it returns PH_EINPUT when the
   * answer is not yet known: the handler should record what it needs with
   * set_state, reply with anything, and return; the host answers
   * input_required and calls the handler again with the answers. Returns
   * PH_ENOTSUP when the client lacks the capability. */
  int (*client_request)(ph_call *call, const char *key, const char *method,
                        const char *params_json, char **result_json);

  /* 1.0: Opaque state carried across input-required rounds of a modern
   * request (the host signs it). get_state returns NULL on the first round;
   * the pointer is valid for the call's lifetime. */
  int (*set_state)(ph_call *call, const char *state);
  const char *(*get_state)(const ph_call *call);

  /* 1.1: During init only: adjust one of the plugin's tools for this
   * instance. override_json is an object with any of "enabled" (false
   * hides the tool, e.g. writes the operator did not enable), "description"
   * and "title" (e.g. naming the engine an instance talks to). Returns
   * PH_EINVAL for an unknown tool or a bad object, PH_ENOTSUP after init. */
  int (*configure_tool)(ph_instance *self, const char *tool,
                        const char *override_json);

  /* 1.1: Reports whether the instance can serve (a database reachable, a
   * token fresh); `why` says what is wrong, or NULL. Instances start ready.
   * The host's readiness (/ready) needs every instance ready. Any thread. */
  int (*set_ready)(ph_instance *self, int ready, const char *why);

  /* 1.1: HTTP legacy sessions (2025-11-25, SEP-1699): close the request's
   * SSE stream now, after an event the client can resume from; the client
   * resumes with GET + Last-Event-ID and gets what the call sends later,
   * its result included. For long calls behind proxies that cut idle
   * connections. A service call closes its caller's stream. Returns
   * PH_ENOTSUP where there is no such stream (stdio, 2026-07-28); any
   * thread. */
  int (*close_stream)(ph_call *call);

  /* 1.2: Watch a file descriptor on the host's event loop, as Redis modules
   * do with RM_EventLoopAdd: with events a non-zero mix of PH_WATCH_*,
   * start watching fd for this instance or change the events, cb and data
   * of its watch; with events 0, stop (cb and data are then ignored). cb
   * runs on the loop thread and may reply to calls, hand them to
   * run_in_pool and call watch_fd itself, also to stop its own watch or
   * another. Once a stop has returned cb is never called again for that
   * watch, even for events already pending, so the fd may be closed at
   * once; close it only after the stop. The host makes fd non-blocking.
   * One watch per fd: an fd that another instance or the host itself
   * watches is refused. After a poll error cb gets both events and the fd
   * is not polled again until the watch is changed or stopped.
   * A watch holds its instance: the plugin's code stays loaded and fini is
   * not called while it watches, also after a reload retired the instance
   * (which then counts as busy, and past the drain deadline as stuck), so
   * a plugin stops its watches as soon as their work is done. Watches left
   * at host shutdown are closed and logged.
   * Loop thread only (an inline tool handler or a watch callback): returns
   * PH_ENOTSUP on any other thread and during init and fini; PH_EINVAL for
   * fd < 0, unknown events bits, a NULL cb with events, stopping an fd not
   * watched, or an fd that cannot be polled (a regular file). */
  int (*watch_fd)(ph_instance *self, int fd, int events, ph_watch_fn cb,
                  void *data);

  /* 1.2: From an inline tool handler (or a watch callback) whose call turns
   * out to need blocking work: run fn(call, arg) on a worker thread of the
   * instance's pool. The call stays open; fn replies (exactly once, as
   * ever). fn always runs, also when the call was cancelled meanwhile (it
   * frees arg; it should check cancelled()). Returns PH_OK, PH_EINVAL (NULL
   * fn, or call already replied/queued), or PH_ENOTSUP when the pool's
   * queue is full or stopping, or for a service call (then the caller
   * replies itself, e.g. a 'busy' error). Any thread. */
  int (*run_in_pool)(ph_call *call, void (*fn)(ph_call *call, void *arg),
                     void *arg);
} ph_host_api;

/* Whether the host's table has `field`: a plugin that also loads on hosts
 * older than its own minor checks this before calling a newer function,
 * e.g. PH_API_HAS(api, watch_fd). */
#define PH_API_HAS(api, field)                                                 \
  ((api)->size >= offsetof(ph_host_api, field) + sizeof((api)->field))

/* 1.3: every ph_call and ph_instance a host hands a plugin begins with a
 * pointer to the host's API table, so a handler reaches the table from its
 * call (or instance) and needs no static pointer saved at init. A plugin
 * built for 1.3 is refused by older hosts, so the promise holds wherever it
 * loads. */
static inline const ph_host_api *ph_call_api(const ph_call *call) {
  const ph_host_api *api;

  memcpy(&api, (const void *)call, sizeof(api));
  return api;
}

static inline const ph_host_api *ph_instance_api(const ph_instance *self) {
  const ph_host_api *api;

  memcpy(&api, (const void *)self, sizeof(api));
  return api;
}

/* A tool handler. args_json is the validated "arguments" object. */
typedef void (*ph_tool_fn)(ph_call *call, const char *args_json, void *state);

/* A resource read. uri is the requested URI; vars_json holds the template
 * variables as a JSON object of strings ("{}" for a static resource). */
typedef void (*ph_read_fn)(ph_call *call, const char *uri,
                           const char *vars_json, void *state);

/* A prompt get. args_json is an object of string arguments. */
typedef void (*ph_prompt_fn)(ph_call *call, const char *args_json, void *state);

/* A completion: the partial `value` of argument `arg`; context_json holds
 * the other arguments already chosen ("{}" if none). Replies with
 * {"values":[...]}. */
typedef void (*ph_complete_fn)(ph_call *call, const char *arg,
                               const char *value, const char *context_json,
                               void *state);

/* A service request from another plugin (see service_call). Must reply
 * before returning. `service` names which of `provides` is meant. */
typedef void (*ph_service_fn)(ph_call *call, const char *service,
                              const char *request_json, void *state);

/* Instance set-up. config_json is the instance's "config" object from the
 * host config ("{}" if none). Stores the instance state in *state and
 * returns 0, or returns non-zero and logs why through api->log. */
typedef int (*ph_init_fn)(ph_instance *self, const ph_host_api *api,
                          const char *config_json, void **state);

/* Instance tear-down; runs after the last call on the instance finished. */
typedef void (*ph_fini_fn)(void *state);

typedef struct ph_tool_annotations {
  uint8_t read_only;   /* readOnlyHint (ph_hint). */
  uint8_t destructive; /* destructiveHint (ph_hint). */
  uint8_t idempotent;  /* idempotentHint (ph_hint). */
  uint8_t open_world;  /* openWorldHint (ph_hint). */
} ph_tool_annotations;

typedef struct ph_tool {
  const char *name;          /* Unprefixed name: [A-Za-z0-9_-]{1,64}. */
  const char *title;         /* Display name, or NULL. */
  const char *description;   /* What it does, for the model. */
  const char *input_schema;  /* JSON Schema text; NULL: any object. */
  const char *output_schema; /* JSON Schema of structuredContent, or NULL. */
  ph_tool_annotations annotations; /* Behaviour hints for clients. */
  const char *required_scope;      /* Scope the principal needs, or NULL. */
  uint32_t timeout_ms;             /* 0: the host's default; capped by it. */
  int run_inline;                  /* Non-zero: run on the loop; never block. */
  ph_tool_fn handler;              /* Called once per tools/call. */
  const char *extra_json;          /* Members merged into the listing ({"icons":
                                      [...], "_meta":{...}}), or NULL. */
} ph_tool;

typedef struct ph_resource {
  const char *uri;         /* Absolute URI, unique within the department. */
  const char *name;        /* Short name. */
  const char *title;       /* Display name, or NULL. */
  const char *description; /* What it holds, or NULL. */
  const char *mime_type;   /* MIME type, or NULL. */
  ph_read_fn handler;      /* Called once per resources/read. */
  const char *extra_json;  /* Members merged into the listing, or NULL. */
} ph_resource;

typedef struct ph_resource_template {
  const char *uri_template; /* RFC 6570 level 1: literal text and {var}. */
  const char *name;         /* Short name. */
  const char *title;        /* Display name, or NULL. */
  const char *description;  /* What it yields, or NULL. */
  const char *mime_type;    /* MIME type, or NULL. */
  ph_read_fn handler;       /* Called with the matched variables. */
  ph_complete_fn complete;  /* Completes a variable, or NULL. */
  const char *extra_json;   /* Members merged into the listing, or NULL. */
} ph_resource_template;

typedef struct ph_prompt_arg {
  const char *name;        /* Argument name; NULL ends the array. */
  const char *title;       /* Display name, or NULL. */
  const char *description; /* What to pass, or NULL. */
  int required;            /* Non-zero: prompts/get fails without it. */
} ph_prompt_arg;

typedef struct ph_prompt {
  const char *name;          /* Unprefixed name: [A-Za-z0-9_-]{1,64}. */
  const char *title;         /* Display name, or NULL. */
  const char *description;   /* What it is for. */
  const ph_prompt_arg *args; /* NULL-name-terminated, or NULL. */
  ph_prompt_fn handler;      /* Called once per prompts/get. */
  ph_complete_fn complete;   /* Completes an argument, or NULL. */
  const char *extra_json;    /* Members merged into the listing, or NULL. */
} ph_prompt;

typedef struct ph_plugin_desc {
  uint32_t magic;              /* PH_MAGIC. */
  uint32_t size;               /* sizeof(ph_plugin_desc) in the plugin. */
  uint16_t abi_major;          /* PH_ABI_MAJOR the plugin was built with. */
  uint16_t abi_minor;          /* PH_ABI_MINOR the plugin was built with. */
  uint16_t tool_size;          /* sizeof(ph_tool) in the plugin. */
  uint16_t resource_size;      /* sizeof(ph_resource) in the plugin. */
  uint16_t template_size;      /* sizeof(ph_resource_template) in the plugin. */
  uint16_t prompt_size;        /* sizeof(ph_prompt) in the plugin. */
  const char *name;            /* Plugin name and default prefix. */
  const char *version;         /* Free-form version string. */
  const char *description;     /* One line for operators. */
  const char *const *provides; /* Service names, NULL-terminated, or NULL. */
  const char *const *requires; /* Services needed, NULL-terminated, or NULL. */
  ph_init_fn init;             /* Called per instance, or NULL. */
  ph_fini_fn fini;             /* Called per instance, or NULL. */
  const ph_tool *tools;        /* Ended by an item with a NULL name. */
  const ph_resource *resources;          /* Ended by an item with a NULL uri. */
  const ph_resource_template *templates; /* Ended by a NULL uri_template. */
  const ph_prompt *prompts; /* Ended by an item with a NULL name. */
  ph_service_fn service;    /* Serves `provides`, or NULL. */
} ph_plugin_desc;

/* The one symbol the host looks up. */
typedef const ph_plugin_desc *(*ph_plugin_entry_fn)(void);
#define PH_ENTRY_SYMBOL "ph_plugin_entry"

/* Defines ph_plugin_entry() returning a descriptor with the ABI header filled
 * in and the designated initializers given, e.g.
 *   PH_PLUGIN(.name = "files", .version = "1.0", .tools = files_tools);
 * Array fields may be compound literals ending in an empty item {0}. */
#define PH_PLUGIN(...)                                                         \
  static const ph_plugin_desc ph__desc = {                                     \
      .magic = PH_MAGIC,                                                       \
      .size = sizeof(ph_plugin_desc),                                          \
      .abi_major = PH_ABI_MAJOR,                                               \
      .abi_minor = PH_ABI_MINOR,                                               \
      .tool_size = sizeof(ph_tool),                                            \
      .resource_size = sizeof(ph_resource),                                    \
      .template_size = sizeof(ph_resource_template),                           \
      .prompt_size = sizeof(ph_prompt),                                        \
      __VA_ARGS__};                                                            \
  PH_EXPORT const ph_plugin_desc *ph_plugin_entry(void);                       \
  const ph_plugin_desc *ph_plugin_entry(void) {                                \
    return &ph__desc;                                                          \
  }

/* The layout is the ABI: these pin it on LP64 targets. */
#if defined(__LP64__)
_Static_assert(sizeof(ph_tool_annotations) == 4, "ph_tool_annotations");
_Static_assert(offsetof(ph_tool, handler) == 64, "ph_tool layout");
_Static_assert(sizeof(ph_tool) == 80, "ph_tool size");
_Static_assert(sizeof(ph_resource) == 56, "ph_resource size");
_Static_assert(sizeof(ph_resource_template) == 64, "template size");
_Static_assert(sizeof(ph_prompt_arg) == 32, "ph_prompt_arg size");
_Static_assert(sizeof(ph_prompt) == 56, "ph_prompt size");
_Static_assert(offsetof(ph_plugin_desc, name) == 24, "desc header");
_Static_assert(sizeof(ph_plugin_desc) == 120, "ph_plugin_desc size");
_Static_assert(offsetof(ph_host_api, reply) == 8, "api: size first");
_Static_assert(offsetof(ph_host_api, get_state) == 112, "api 1.0 layout");
_Static_assert(offsetof(ph_host_api, set_ready) == 128, "api 1.1 layout");
_Static_assert(offsetof(ph_host_api, close_stream) == 136, "api 1.1 layout");
_Static_assert(offsetof(ph_host_api, watch_fd) == 144, "api 1.2 layout");
_Static_assert(offsetof(ph_host_api, run_in_pool) == 152, "api 1.2 layout");
_Static_assert(sizeof(ph_host_api) == 160, "ph_host_api size");
#endif

/* ---- SDK helpers (libplughost_sdk.a): cJSON-free conveniences for the
 * common replies. Each formats JSON text and calls api->reply. ---- */

/* Replies to a tool call with one text block (isError when is_error). */
int ph_reply_text(const ph_host_api *api, ph_call *call, const char *text,
                  int is_error);

/* Replies to a tool call with printf-formatted text. */
int ph_reply_textf(const ph_host_api *api, ph_call *call, int is_error,
                   const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Replies to a tool call with structured content (a JSON object as text)
 * plus the same serialised as a text block, as the spec recommends. */
int ph_reply_structured(const ph_host_api *api, ph_call *call,
                        const char *structured_json, int is_error);

/* Replies to a resource read with one text content. */
int ph_reply_resource_text(const ph_host_api *api, ph_call *call,
                           const char *uri, const char *mime_type,
                           const char *text);

/* Replies to a resource read with one blob content (data is base64-encoded
 * by the helper). */
int ph_reply_resource_blob(const ph_host_api *api, ph_call *call,
                           const char *uri, const char *mime_type,
                           const void *data, size_t len);

/* Returns the JSON string escape of s in memory from api->alloc (quotes
 * included), or NULL when out of memory. */
char *ph_json_quote(const ph_host_api *api, const char *s);

/* Base64 of len bytes in memory from api->alloc, or NULL. */
char *ph_base64(const ph_host_api *api, const void *data, size_t len);

/* Writes the len bytes at s, escaped as the body of a JSON string (no
 * quotes), to out and returns the end of what it wrote. out must have room
 * for 6 * len bytes (every byte a \u00XX escape at worst). Escapes as cJSON
 * does: short forms where JSON has them, \u00XX for other control bytes;
 * other bytes are copied, so s should be UTF-8. No allocation: for plugins
 * that write JSON into a buffer of their own. */
char *ph_json_escape(char *out, const char *s, size_t len);

/* ---- Reading a call's arguments (SDK, with ABI 1.3) ----
 * The host has validated the arguments against the tool's input schema
 * before the handler runs; these read them as C values and, for what a
 * schema cannot say or a plugin without one, record the first problem as a
 * message naming the argument ("limit: must be an integer from 1 to 100"),
 * which the plugin replies with once:
 *
 *   ph_args *a = ph_args_parse(args_json);
 *   const char *path = ph_args_string(a, "path", NULL);
 *   long long limit = ph_args_int(a, "limit", 1, 100, 10);
 *   if (ph_args_error(a) != NULL)
 *     ph_reply_text(api, call, ph_args_error(a), 1);
 *   ...
 *   ph_args_free(a);
 *
 * An absent argument (or a JSON null) yields the fallback without an
 * error. Strings returned are owned by the ph_args and valid until
 * ph_args_free. A ph_args belongs to one thread at a time. */
typedef struct ph_args ph_args;

/* Parses args_json, which should be an object (anything else records an
 * error). NULL only when out of memory. */
ph_args *ph_args_parse(const char *args_json);

/* Non-zero when the argument is present and not null. */
int ph_args_has(const ph_args *a, const char *name);

/* The string argument, or fallback when absent; an error when it is not a
 * string. (Arguments with an escaped NUL anywhere are refused whole by
 * ph_args_parse, so a string never reads shorter than the client sent.) */
const char *ph_args_string(ph_args *a, const char *name, const char *fallback);

/* The integer argument in [min, max], or fallback when absent; an error
 * when it is not an integer or out of range. */
long long ph_args_int(ph_args *a, const char *name, long long min,
                      long long max, long long fallback);

/* The number argument in [min, max], or fallback when absent. */
double ph_args_number(ph_args *a, const char *name, double min, double max,
                      double fallback);

/* The boolean argument (1 or 0), or fallback when absent. */
int ph_args_bool(ph_args *a, const char *name, int fallback);

/* The argument as compact JSON text (an array or object to hand on, say),
 * or NULL when absent. */
const char *ph_args_json(ph_args *a, const char *name);

/* The first problem recorded, or NULL. */
const char *ph_args_error(const ph_args *a);

void ph_args_free(ph_args *a);

#ifdef __cplusplus
}
#endif
#endif /* PLUGHOST_H */
