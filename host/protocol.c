/* protocol.c: see protocol.h. Methods are looked up in one table; each
 * handler either answers at once or starts a call whose answer comes back
 * through on_call_answer(). Both eras share the handlers: the modern one
 * only adds per-request metadata checks and decorates results. */
#include "protocol.h"

#include "alloc.h"
#include "audit.h"
#include "call.h"
#include "jsonrpc.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "request_state.h"
#include "tasks.h"
#include "utf8.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define META_VERSION "io.modelcontextprotocol/protocolVersion"
#define META_CAPS "io.modelcontextprotocol/clientCapabilities"
#define META_LOGLEVEL "io.modelcontextprotocol/logLevel"
#define META_SERVERINFO "io.modelcontextprotocol/serverInfo"
#define META_SUBSCRIPTION "io.modelcontextprotocol/subscriptionId"

static const char *const legacy_versions[] = {"2025-11-25", "2025-06-18",
                                              "2025-03-26", "2024-11-05"};
#define NEWEST_LEGACY "2025-11-25"

static struct {
  const ph__config *cfg;
  /* cfg->check_results, read by the shape hook on workers. */
  atomic_int check_results;
} P;

/* The protocol's part of a call, allocated with it (ph__call_new's
 * proto_size): what rendering its events and its answer needs. Written on
 * the loop before the call starts; the shape hook reads era on the
 * replying thread after. */
typedef struct proto_call {
  char *id_json;        /* The request id as the client wrote it. */
  const char *method;   /* Static: the methods table's name. */
  char *progress_token; /* JSON text as the client wrote it, or NULL. */
  int modern;           /* The 2026-07-28 era. */
  int audited;          /* A tools/call of a department with audit on. */
  uint64_t started_ns;  /* uv_hrtime() at its creation: audit, metrics. */
} proto_call;

/* What one incoming request needs while it is being answered. */
typedef struct request {
  ph__session *s;
  ph__outlet *o;
  const char *method;
  const cJSON *id; /* NULL for notifications. */
  char *id_json;   /* The id as the client wrote it. */
  const cJSON *params;
  const char *text; /* The message as received (NULL in a task's rerun), */
  size_t len;       /* for the text of the values it echoes. */
  int modern;
  const cJSON *caps; /* Modern: from _meta; legacy: the session's. */
  int log_level;     /* Threshold for notifications/message; -1 none. */
  ph__generation *gen;
  const ph__dept *dept;
  int in_task;    /* A round of a task: it runs here, never as a new task. */
  int in_batch;   /* A member of a batch. */
  int started;    /* A call took the request over: it is timed there. */
  int error_code; /* The JSON-RPC error it was answered with, or 0. */
} request;

int ph__protocol_version_supported(const char *version) {
  size_t i;

  for (i = 0; i < sizeof(legacy_versions) / sizeof(*legacy_versions); i++)
    if (strcmp(version, legacy_versions[i]) == 0)
      return 1;
  return 0;
}

/* ---- Output helpers ---- */

static char *server_info_json(void) {
  return ph__xstrdup("{\"name\":\"plughost\",\"title\":\"plughost MCP server "
                     "host\",\"version\":\"" PH_VERSION "\"}");
}

/* Finishes with {"jsonrpc":"2.0","id":ID,"result":RESULT}. */
static void send_result(ph__outlet *o, const char *id_json,
                        const char *result) {
  size_t n = strlen(id_json) + strlen(result) + 40;
  char *msg = ph__xmalloc(n);
  int len;

  len = snprintf(msg, n, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":%s}",
                 id_json, result);
  o->finish(o, PH__OUTCOME_ANSWERED, msg, (size_t)len);
  free(msg);
}

static void send_error(ph__outlet *o, int outcome, const char *id_json,
                       int code, const char *message, const char *data_json) {
  char *text = ph__jsonrpc_error_text(id_json, code, message, data_json);

  o->finish(o, outcome, text, strlen(text));
  free(text);
}

void ph__protocol_reject(ph__outlet *o, int outcome, int code,
                         const char *message) {
  send_error(o, outcome, NULL, code, message, NULL);
}

/* Modern results carry resultType and serverInfo; lists and reads also
 * carry caching hints (cache_hints 1: public; 2: private, a list that
 * depends on who asks). Takes ownership of result. */
static char *decorate_modern(cJSON *result, int cache_hints) {
  cJSON *meta;
  char *text;

  if (cJSON_GetObjectItemCaseSensitive(result, "resultType") == NULL)
    cJSON_AddStringToObject(result, "resultType", "complete");
  meta = cJSON_GetObjectItemCaseSensitive(result, "_meta");
  if (!cJSON_IsObject(meta)) {
    cJSON_DeleteItemFromObjectCaseSensitive(result, "_meta");
    meta = cJSON_AddObjectToObject(result, "_meta");
  }
  text = server_info_json();
  cJSON_AddRawToObject(meta, META_SERVERINFO, text);
  free(text);
  if (cache_hints) {
    /* The lists only change on reload, when list_changed tells clients;
     * a minute bounds staleness for clients that do not listen. */
    cJSON_AddNumberToObject(result, "ttlMs", 60000);
    cJSON_AddStringToObject(result, "cacheScope",
                            cache_hints == 2 ? "private" : "public");
  }
  text = cJSON_PrintUnformatted(result);
  cJSON_Delete(result);
  return text;
}

/* Answers a request with a result given as text. */
static void answer_text(request *r, const char *result, int cache_hints) {
  char *text;

  if (!r->modern) {
    send_result(r->o, r->id_json, result);
    return;
  }
  text = decorate_modern(cJSON_Parse(result), cache_hints);
  send_result(r->o, r->id_json, text);
  free(text);
}

static void answer_json(request *r, cJSON *result, int cache_hints) {
  char *text;

  if (r->modern) {
    text = decorate_modern(result, cache_hints);
  } else {
    text = cJSON_PrintUnformatted(result);
    cJSON_Delete(result);
  }
  send_result(r->o, r->id_json, text);
  free(text);
}

static void answer_error(request *r, int code, const char *message,
                         const char *data_json) {
  int outcome = PH__OUTCOME_ANSWERED;

  r->error_code = code;
  /* The modern era gives protocol errors a meaning of their own (HTTP maps
   * them onto status codes); the legacy eras answer them. */
  if (r->modern) {
    if (code == PH__RPC_METHOD_NOT_FOUND)
      outcome = PH__OUTCOME_NOT_FOUND;
    else if (code == PH__RPC_INVALID_PARAMS ||
             code == PH__RPC_HEADER_MISMATCH ||
             code == PH__RPC_MISSING_CAPABILITY ||
             code == PH__RPC_UNSUPPORTED_VERSION ||
             code == PH__RPC_INVALID_REQUEST)
      outcome = PH__OUTCOME_REFUSED;
  }
  send_error(r->o, outcome, r->id_json, code, message, data_json);
}

/* params._meta.progressToken as the client wrote it, malloc'd; NULL if it
 * is neither a string nor a JSON number. */
static char *progress_token_text(const request *r, const cJSON *token) {
  static const char *const path[] = {"params", "_meta", "progressToken", NULL};
  const char *v, *e;

  if (r->text == NULL)
    return cJSON_PrintUnformatted(token); /* A task's rerun: no _meta. */
  v = ph__jsonrpc_value_at(r->text, r->text + r->len, path, &e);
  return v ? strndup(v, (size_t)(e - v)) : NULL;
}

/* ---- Capabilities ---- */

static cJSON *capabilities(const ph__dept *d) {
  cJSON *caps = cJSON_CreateObject(), *c;

  if (d == NULL)
    return caps;
  if (d->nitems[PH__TOOL] > 0) {
    c = cJSON_AddObjectToObject(caps, "tools");
    cJSON_AddBoolToObject(c, "listChanged", 1);
  }
  if (d->nitems[PH__RESOURCE] > 0 || d->nitems[PH__TEMPLATE] > 0) {
    c = cJSON_AddObjectToObject(caps, "resources");
    cJSON_AddBoolToObject(c, "subscribe", 1);
    cJSON_AddBoolToObject(c, "listChanged", 1);
  }
  if (d->nitems[PH__PROMPT] > 0) {
    c = cJSON_AddObjectToObject(caps, "prompts");
    cJSON_AddBoolToObject(c, "listChanged", 1);
  }
  cJSON_AddObjectToObject(caps, "logging");
  if (d->nitems[PH__PROMPT] > 0 || d->nitems[PH__TEMPLATE] > 0)
    cJSON_AddObjectToObject(caps, "completions");
  return caps;
}

/* ---- Calls ---- */

static proto_call *proto_of(ph_call *call) {
  return ph__call_proto(call);
}

static void release_call(ph_call *call) {
  proto_call *pc = proto_of(call);

  free(pc->id_json);
  free(pc->progress_token);
}

/* A new call of the protocol's, with its part. */
static ph_call *new_call(int kind, ph_instance *inst) {
  ph_call *call = ph__call_new(kind, inst, sizeof(proto_call));

  proto_of(call)->started_ns = uv_hrtime();
  return call;
}

static void session_forget_call(ph__session *s, ph_call *call) {
  size_t i;

  for (i = 0; i < s->ninflight; i++) {
    if (s->inflight[i] == call) {
      s->inflight[i] = s->inflight[--s->ninflight];
      return;
    }
  }
}

static int output_matches(const ph__tool_def *t, const cJSON *result,
                          char **why) {
  const cJSON *sc;

  *why = NULL;
  if (t->output_validator == NULL ||
      cJSON_IsTrue(cJSON_GetObjectItem(result, "isError")))
    return 1;
  sc = cJSON_GetObjectItemCaseSensitive(result, "structuredContent");
  if (sc == NULL) {
    *why = ph__xstrdup("declares an outputSchema but returned no "
                       "structuredContent");
    return 0;
  }
  return ph__schema_validate(t->output_validator, sc, why) == 0;
}

static cJSON *tool_error_result(const char *text) {
  cJSON *res = cJSON_CreateObject(), *content, *block;

  content = cJSON_AddArrayToObject(res, "content");
  block = cJSON_CreateObject();
  cJSON_AddStringToObject(block, "type", "text");
  cJSON_AddStringToObject(block, "text", text);
  cJSON_AddItemToArray(content, block);
  cJSON_AddBoolToObject(res, "isError", 1);
  return res;
}

/* Runs on the thread that replied (usually a worker), so checking and
 * reshaping a result never costs the event loop: validates the reply,
 * checks structured content against the output schema under "full", wraps
 * completions, refuses empty resource contents and adds the modern era's
 * fields. Returns the final result text, or NULL with *code and *message
 * (malloc'd) for an error answer. */
static char *shape_result(ph_call *call, const char *text, int *code,
                          char **message) {
  const proto_call *pc = proto_of(call);
  int kind = ph__call_kind(call);
  size_t len = strlen(text);
  int structural = atomic_load(&P.check_results) == PH__CHECK_STRUCTURAL;
  cJSON *result;
  int changed = 0;
  char msg[512];

  /* Under check_results "structural" (config.h), a legacy tool or prompt
   * result goes out as the plugin wrote it once the structural check
   * passes: valid UTF-8, balanced brackets and strings, one object. Plugins
   * are the operator's own code, and parsing and validating a large result
   * (a page of rows) against its outputSchema cost the host more than the
   * rest of the call (README: check_results); "full" does both, for plugin
   * development and CI. */
  if (structural && !pc->modern &&
      (kind == PH__CALL_PROMPT || kind == PH__CALL_TOOL) && len >= 2 &&
      text[0] == '{' && text[len - 1] == '}' &&
      ph__json_precheck(text, len, 1000) == NULL)
    return ph__xstrdup(text);
  result = cJSON_ParseWithLength(text, len);
  if (!cJSON_IsObject(result)) {
    cJSON_Delete(result);
    ph__error("%s on %s: reply is not a JSON object; answered as an error",
              ph__call_name(call), ph__call_instance(call)->label);
    *code = PH__RPC_INTERNAL_ERROR;
    *message = ph__xstrdup("plugin returned malformed JSON");
    return NULL;
  }
  if (kind == PH__CALL_TOOL && !structural) {
    char *why = NULL;

    if (!output_matches(ph__call_def(call), result, &why)) {
      ph__error("%s on %s: structured result violates its outputSchema: %s",
                ph__call_name(call), ph__call_instance(call)->label, why);
      snprintf(msg, sizeof(msg), "tool result violates its outputSchema: %s",
               why);
      cJSON_Delete(result);
      result = tool_error_result(msg);
      changed = 1;
    }
    free(why);
  }
  if (kind == PH__CALL_COMPLETE) {
    cJSON *wrap = cJSON_CreateObject();
    cJSON *values = cJSON_GetObjectItem(result, "values");

    if (!cJSON_IsArray(values))
      cJSON_AddItemToObject(result, "values", cJSON_CreateArray());
    while (cJSON_GetArraySize(cJSON_GetObjectItem(result, "values")) > 100)
      cJSON_DeleteItemFromArray(cJSON_GetObjectItem(result, "values"), 100);
    cJSON_AddItemToObject(wrap, "completion", result);
    result = wrap;
    changed = 1;
  }
  if (kind == PH__CALL_READ) {
    cJSON *contents = cJSON_GetObjectItem(result, "contents");
    if (!cJSON_IsArray(contents) || cJSON_GetArraySize(contents) == 0) {
      cJSON_Delete(result);
      *code = PH__RPC_INTERNAL_ERROR;
      *message = ph__xstrdup("resource handler returned no contents");
      return NULL;
    }
  }
  if (pc->modern)
    return decorate_modern(result, kind == PH__CALL_READ);
  if (!changed) {
    cJSON_Delete(result);
    return ph__xstrdup(text);
  }
  {
    char *out = cJSON_PrintUnformatted(result);
    cJSON_Delete(result);
    return out;
  }
}

static const char *capability_name(unsigned cap) {
  switch (cap) {
  case PH__CLIENT_SAMPLING:
    return "sampling";
  case PH__CLIENT_ELICITATION:
    return "elicitation";
  default:
    return "roots";
  }
}

/* ---- Audit ---- */

/* Whether the department's calls are audited (its config says). */
static int audited(const char *department) {
  const ph__department_cfg *dc = ph__config_department(P.cfg, department);

  return dc != NULL && dc->auth.audit;
}

static void audit_call(const ph__session *s, const char *principal,
                       const char *tool, const char *args, const char *outcome,
                       const char *reason, double duration_ms) {
  ph__audit_event e = {.event = "tools/call",
                       .principal = principal,
                       .department = s->department,
                       .tool = tool,
                       .args = args,
                       .args_len = args ? strlen(args) : 0,
                       .outcome = outcome,
                       .reason = reason,
                       .duration_ms = duration_ms,
                       .client =
                           s->client_address[0] ? s->client_address : NULL};

  ph__audit(P.cfg, &e);
}

/* How a started call ended, in the audit's words. */
static const char *answer_outcome(const ph__call_answer *a) {
  const char *v, *end;

  switch (a->kind) {
  case PH__ANSWER_CANCELLED:
    return "cancelled";
  case PH__ANSWER_TIMEOUT:
    return "timeout";
  case PH__ANSWER_INPUT:
    return "input_required";
  case PH__ANSWER_RESULT:
    end = a->result_json + strlen(a->result_json);
    v = ph__jsonrpc_member(ph__jsonrpc_skip_space(a->result_json, end), end,
                           "isError", &end);
    return v != NULL && strncmp(v, "true", 4) == 0 ? "tool_error" : "ok";
  default:
    return "error";
  }
}

/* ---- Metrics ---- */

/* A call's answer in the metrics: the operation's duration under
 * OpenTelemetry's error.type (the JSON-RPC code, "tool_error", or none),
 * and for a tool its department, name and outcome. */
static void count_call(ph_call *call, const ph__call_answer *a,
                       const char *outcome) {
  proto_call *pc = proto_of(call);
  const char *tool =
      ph__call_kind(call) == PH__CALL_TOOL ? ph__call_name(call) : NULL;
  const char *error_type = NULL;

  if (!ph__metrics_enabled())
    return;
  if (a->kind == PH__ANSWER_ERROR)
    error_type = ph__metrics_code_label(a->code);
  else if (a->kind == PH__ANSWER_MISSING)
    error_type = ph__metrics_code_label(PH__RPC_MISSING_CAPABILITY);
  else if (a->kind == PH__ANSWER_TIMEOUT || a->kind == PH__ANSWER_CANCELLED ||
           strcmp(outcome, "tool_error") == 0)
    error_type = outcome;
  ph__metrics_observe(PH__M_OPERATION, uv_hrtime() - pc->started_ns, pc->method,
                      tool, error_type);
  if (tool != NULL)
    ph__metrics_add(PH__M_TOOL_CALLS, 1, ph__call_session(call)->department,
                    tool, outcome);
}

/* A call its instance's queue had no room for. */
static void count_rejected(request *r, ph_call *call) {
  ph_instance *inst = ph__call_instance(call);

  r->error_code = PH__RPC_INTERNAL_ERROR;
  if (ph__call_kind(call) == PH__CALL_TOOL)
    ph__metrics_add(PH__M_TOOL_CALLS, 1, r->s->department, ph__call_name(call),
                    "queue_full");
  ph__metrics_add(PH__M_QUEUE_REJECTED, 1, inst->department, inst->prefix,
                  inst->plugin->name);
}

/* A request answered where it was handled, without a call: its duration
 * under its method (from the methods table, or _OTHER). */
static void count_request(const request *r, const char *method,
                          uint64_t started_ns) {
  if (r->started || !ph__metrics_enabled())
    return;
  ph__metrics_observe(
      PH__M_OPERATION, uv_hrtime() - started_ns, method ? method : "_OTHER",
      NULL, r->error_code ? ph__metrics_code_label(r->error_code) : NULL);
}

/* Loop thread: the one place a call's answer is written. */
static void on_call_answer(ph_call *call, const ph__call_answer *a) {
  proto_call *pc = proto_of(call);
  ph__session *s = ph__call_session(call);
  ph__outlet *o = ph__call_outlet(call);
  int kind = ph__call_kind(call);
  request r = {0};
  cJSON *result;
  char msg[256];

  session_forget_call(s, call);
  count_call(call, a, answer_outcome(a));
  if (pc->audited)
    audit_call(s, ph__call_principal(call), ph__call_name(call),
               ph__call_args(call), answer_outcome(a), NULL,
               (double)(uv_hrtime() - pc->started_ns) / 1e6);
  if (o == NULL)
    return;
  r.s = s;
  r.o = o;
  r.id_json = pc->id_json;
  r.modern = pc->modern;

  switch (a->kind) {
  case PH__ANSWER_CANCELLED:
    o->finish(o, PH__OUTCOME_ACCEPTED, NULL, 0); /* No response is due. */
    return;
  case PH__ANSWER_TIMEOUT:
    snprintf(msg, sizeof(msg), "%s timed out after %u ms", ph__call_name(call),
             ph__call_timeout_ms(call));
    if (kind == PH__CALL_TOOL)
      answer_json(&r, tool_error_result(msg), 0);
    else
      answer_error(&r, PH__RPC_INTERNAL_ERROR, msg, NULL);
    return;
  case PH__ANSWER_INPUT: {
    char *state =
        ph__request_state_sign(pc->method, ph__call_name(call), a->state);

    result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "resultType", "input_required");
    cJSON_AddItemToObject(result, "inputRequests",
                          cJSON_Duplicate(a->requests, 1));
    cJSON_AddStringToObject(result, "requestState", state);
    free(state);
    answer_json(&r, result, 0);
    return;
  }
  case PH__ANSWER_MISSING:
    snprintf(msg, sizeof(msg), "{\"requiredCapabilities\":{\"%s\":{}}}",
             capability_name(a->capability));
    answer_error(&r, PH__RPC_MISSING_CAPABILITY,
                 "Missing required client capability", msg);
    return;
  case PH__ANSWER_ERROR: {
    int code = a->code;
    char *data = NULL;

    if (code == PH__RPC_RESOURCE_NOT_FOUND && r.modern)
      code = PH__RPC_INVALID_PARAMS; /* 2026-07-28 must not emit -32002. */
    if (kind == PH__CALL_READ && a->data_json == NULL &&
        (code == PH__RPC_INVALID_PARAMS ||
         code == PH__RPC_RESOURCE_NOT_FOUND)) {
      cJSON *d = cJSON_CreateObject();
      cJSON_AddStringToObject(d, "uri", ph__call_uri(call));
      data = cJSON_PrintUnformatted(d);
      cJSON_Delete(d);
    }
    answer_error(&r, code, a->message, data ? data : a->data_json);
    free(data);
    return;
  }
  default:
    /* shape_result already checked and decorated the text on the plugin's
     * thread, so the loop only splices it into the response. */
    send_result(o, pc->id_json, a->result_json);
  }
}

/* The declared capabilities a call may need, as bits. */
static unsigned client_caps(const cJSON *caps) {
  unsigned bits = 0;

  if (cJSON_GetObjectItemCaseSensitive(caps, "sampling") != NULL)
    bits |= PH__CLIENT_SAMPLING;
  if (cJSON_GetObjectItemCaseSensitive(caps, "elicitation") != NULL)
    bits |= PH__CLIENT_ELICITATION;
  if (cJSON_GetObjectItemCaseSensitive(caps, "roots") != NULL)
    bits |= PH__CLIENT_ROOTS;
  return bits;
}

/* Common set-up and start of a call for request r. */
static void start_call(request *r, ph_call *call, uint32_t timeout_ms) {
  ph__session *s = r->s;
  proto_call *pc = proto_of(call);
  const cJSON *meta, *token;
  ph__call_client client = {0};
  uint32_t cap = P.cfg->limits.call_timeout_ms;
  int err;

  if (s->ninflight >= (size_t)P.cfg->limits.max_inflight_per_session) {
    ph__call_unref(call);
    r->error_code = PH__RPC_INTERNAL_ERROR;
    send_error(r->o, PH__OUTCOME_BUSY, r->id_json, PH__RPC_INTERNAL_ERROR,
               "too many requests in flight on this session", NULL);
    return;
  }
  ph__session_ref(s); /* The call's, dropped through the release hook. */
  ph__call_attach(call, s, r->o);
  pc->id_json = ph__xstrdup(r->id_json);
  pc->method = r->method;
  pc->modern = r->modern;
  meta = cJSON_GetObjectItemCaseSensitive(r->params, "_meta");
  token = cJSON_GetObjectItemCaseSensitive(meta, "progressToken");
  if (cJSON_IsString(token) || cJSON_IsNumber(token))
    pc->progress_token = progress_token_text(r, token);
  client.principal = s->principal;
  client.caps = client_caps(r->caps);
  client.log_level = r->log_level;
  client.progress = pc->progress_token != NULL;
  client.ask_mode = r->modern ? PH__ASK_ROUND : PH__ASK_WAIT;
  ph__call_set_client(call, &client);
  ph__call_set_timeout(call,
                       timeout_ms == 0 || timeout_ms > cap ? cap : timeout_ms);
  if (s->ninflight == s->capinflight) {
    s->capinflight = s->capinflight ? 2 * s->capinflight : 8;
    s->inflight =
        ph__xrealloc(s->inflight, s->capinflight * sizeof(*s->inflight));
  }
  s->inflight[s->ninflight++] = call;
  r->started = 1;
  err = ph__call_start(call);
  if (err) {
    r->started = 0;
    count_rejected(r, call);
    session_forget_call(s, call);
    send_error(r->o, PH__OUTCOME_UNAVAILABLE, r->id_json,
               PH__RPC_INTERNAL_ERROR,
               "the plugin's queue is full; try again later", NULL);
    ph__call_unref(call);
  }
}

/* Modern retries carry inputResponses and a signed requestState. Returns
 * -1 after answering when the state does not verify. */
static int take_round_state(request *r, ph_call *call) {
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(r->params, "requestState");
  const cJSON *resp =
      cJSON_GetObjectItemCaseSensitive(r->params, "inputResponses");
  char *state = NULL;

  if (!r->modern)
    return 0;
  if (st != NULL && (!cJSON_IsString(st) ||
                     ph__request_state_verify(st->valuestring, r->method,
                                              ph__call_name(call), &state))) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: requestState failed "
                 "verification",
                 NULL);
    return -1;
  }
  ph__call_take_round(
      call, cJSON_IsObject(resp) ? cJSON_Duplicate(resp, 1) : NULL, state);
  return 0;
}

/* ---- Scopes (README: Authorization) ----
 *
 * One rule decides what a caller may call and what tools/list shows it,
 * so that the two never disagree: a tool needs the scope its department
 * sets for it (tool_scopes) or else its own required_scope. */

/* A principal holds a scope when its "scope" claim (space-separated, as
 * OAuth puts it) or "scopes" array names it. No principal holds none. */
static int holds_scope(const cJSON *p, const char *scope) {
  const cJSON *sc, *item;
  const char *s, *e;
  size_t n = strlen(scope);

  sc = cJSON_GetObjectItemCaseSensitive(p, "scope");
  for (s = cJSON_IsString(sc) ? sc->valuestring : ""; *s; s = e) {
    while (*s == ' ')
      s++;
    e = s;
    while (*e != '\0' && *e != ' ')
      e++;
    if ((size_t)(e - s) == n && strncmp(s, scope, n) == 0)
      return 1;
  }
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(p, "scopes")) {
    if (cJSON_IsString(item) && strcmp(item->valuestring, scope) == 0)
      return 1;
  }
  return 0;
}

int ph__principal_has_scope(const char *principal, const char *scope) {
  cJSON *p = principal ? cJSON_Parse(principal) : NULL;
  int found = holds_scope(p, scope);

  cJSON_Delete(p);
  return found;
}

enum access {
  ACCESS_GRANTED,   /* Public, or the caller holds the scope. */
  ACCESS_ANONYMOUS, /* It needs a scope and the caller has no identity. */
  ACCESS_LACKS      /* It needs a scope this caller does not hold. */
};

/* Whether the caller (principal parsed, or NULL) may call tool it, and
 * the scope it needs in *scope (NULL: none). */
static int tool_access(const ph__department_cfg *dc, const ph__item *it,
                       const cJSON *principal, const char **scope) {
  const ph__tool_def *t = it->def;

  *scope = ph__config_tool_scope(dc, it->name, t->required_scope);
  if (*scope == NULL || holds_scope(principal, *scope))
    return ACCESS_GRANTED;
  return principal == NULL ? ACCESS_ANONYMOUS : ACCESS_LACKS;
}

/* Whether tools/list shows a tool of that access: with auth none
 * everything, as before auth existed; otherwise what the caller may
 * call, and with list_unauthorized_tools also what an authenticated
 * caller could step up to. An anonymous caller sees public tools. */
static int tool_listed(const ph__department_cfg *dc, int access) {
  return access == ACCESS_GRANTED || dc == NULL ||
         dc->auth.mode == PH__AUTH_NONE ||
         (access == ACCESS_LACKS && dc->auth.list_unauthorized_tools);
}

static const ph__department_cfg *request_dept_cfg(const request *r) {
  return ph__config_department(r->gen->config, r->dept->name);
}

/* The page of tools without those this caller is not shown: page itself
 * (not copied) when it shows them all, else a malloc'd text in *out. */
static const char *visible_tools(const request *r, const char *page,
                                 char **out) {
  const ph__department_cfg *dc = request_dept_cfg(r);
  cJSON *principal, *arr, *item, *next;
  const ph__item *it;
  const char *scope, *name;
  size_t i;
  int hidden = 0;

  *out = NULL;
  if (dc == NULL || dc->auth.mode == PH__AUTH_NONE)
    return page;
  principal = r->s->principal ? cJSON_Parse(r->s->principal) : NULL;
  for (i = 0; i < r->dept->nitems[PH__TOOL] && !hidden; i++)
    hidden = !tool_listed(
        dc, tool_access(dc, &r->dept->items[PH__TOOL][i], principal, &scope));
  if (!hidden || (arr = cJSON_Parse(page)) == NULL) {
    cJSON_Delete(principal);
    return page;
  }
  for (item = arr->child; item != NULL; item = next) {
    next = item->next;
    name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "name"));
    it = name ? ph__dept_lookup(r->dept, PH__TOOL, name) : NULL;
    if (it != NULL && !tool_listed(dc, tool_access(dc, it, principal, &scope)))
      cJSON_Delete(cJSON_DetachItemViaPointer(arr, item));
  }
  *out = ph__xjson_print(arr);
  cJSON_Delete(arr);
  cJSON_Delete(principal);
  return *out;
}

/* ---- Tasks (2026-07-28 extension io.modelcontextprotocol/tasks) ---- */

enum { TASKS_FORBIDDEN, TASKS_OPTIONAL, TASKS_REQUIRED };

/* A tool takes part through the standard listing member
 * execution.taskSupport in its extra_json; the server, not the client,
 * then decides that a call becomes a task (SEP-2663). */
static int task_support(const ph__tool_def *t) {
  const cJSON *exec = cJSON_GetObjectItemCaseSensitive(t->extra, "execution");
  const char *v = cJSON_GetStringValue(
      cJSON_GetObjectItemCaseSensitive(exec, "taskSupport"));

  if (v != NULL && strcmp(v, "required") == 0)
    return TASKS_REQUIRED;
  if (v != NULL && strcmp(v, "optional") == 0)
    return TASKS_OPTIONAL;
  return TASKS_FORBIDDEN;
}

/* Per request: the client lists the extension in its _meta capabilities
 * (2026-07-28 has no session to remember it). */
static int declares_tasks(const request *r) {
  const cJSON *ext = cJSON_GetObjectItemCaseSensitive(r->caps, "extensions");

  return r->modern &&
         cJSON_GetObjectItemCaseSensitive(ext, PH__TASKS_EXTENSION) != NULL;
}

static void answer_needs_tasks(request *r) {
  answer_error(r, PH__RPC_MISSING_CAPABILITY,
               "Missing required client capability: the " PH__TASKS_EXTENSION
               " extension",
               "{\"requiredCapabilities\":{\"extensions\":{"
               "\"" PH__TASKS_EXTENSION "\":{}}}}");
}

/* How a task handle goes out: like any modern result. */
static void answer_task_handle(ph__outlet *o, const char *id_json,
                               cJSON *result) {
  char *text = decorate_modern(result, 0);

  send_result(o, id_json, text);
  free(text);
}

/* Runs the call as a task: on the task's session and outlet, which answer
 * the request directly if the call settles within the grace period. */
static void start_task(request *r, ph_call *call, uint32_t timeout_ms) {
  ph__task *task =
      ph__task_new(r->s->department, r->s->principal, r->caps,
                   ph__call_name(call), ph__call_args(call), r->o, r->id_json);
  request tr = *r;

  if (task == NULL) {
    ph__call_unref(call);
    answer_error(r, PH__RPC_INTERNAL_ERROR,
                 "too many tasks are running; try again later", NULL);
    return;
  }
  tr.s = ph__task_session(task);
  tr.o = ph__task_outlet(task);
  tr.in_task = 1;
  start_call(&tr, call, timeout_ms);
  r->started = tr.started;
  r->error_code = tr.error_code;
  ph__task_started(task);
}

static void m_tools_call(request *r);

/* Every input the task waited for has arrived: the tool runs again with
 * all the answers, as the next round of an input_required exchange. */
static void run_task_round(ph__task *t) {
  request r = {0};
  const char *id_json, *department;
  cJSON *params = ph__task_rerun_params(t, &id_json, &department, &r.caps);

  r.s = ph__task_session(t);
  r.o = ph__task_outlet(t);
  r.method = "tools/call";
  r.id_json = ph__xstrdup(id_json);
  r.params = params;
  r.modern = 1;
  r.log_level = -1;
  r.in_task = 1;
  r.gen = ph__registry_acquire();
  r.dept = r.gen ? ph__generation_dept(r.gen, department) : NULL;
  if (r.dept == NULL)
    answer_error(&r, PH__RPC_INTERNAL_ERROR,
                 "Internal error: department is not served", NULL);
  else
    m_tools_call(&r);
  ph__generation_unref(r.gen);
  cJSON_Delete(params);
  free(r.id_json);
}

/* The task a tasks method names, or NULL after answering. Tasks of
 * another principal or department are unknown ids. */
static ph__task *find_task(request *r) {
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(r->params, "taskId");
  ph__task *t;

  if (!declares_tasks(r)) {
    answer_needs_tasks(r);
    return NULL;
  }
  if (!cJSON_IsString(id)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: taskId must be a string", NULL);
    return NULL;
  }
  t = ph__task_find(id->valuestring, r->s->department, r->s->principal);
  if (t == NULL)
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: unknown or expired taskId", NULL);
  return t;
}

static void m_tasks_get(request *r) {
  ph__task *t = find_task(r);

  if (t != NULL)
    answer_json(r, ph__task_detail(t), 0);
}

static void m_tasks_update(request *r) {
  const cJSON *responses =
      cJSON_GetObjectItemCaseSensitive(r->params, "inputResponses");
  ph__task *t = find_task(r);

  if (t == NULL)
    return;
  if (!cJSON_IsObject(responses)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: inputResponses must be an object", NULL);
    return;
  }
  /* An acknowledgement only; tasks/get shows what happened. */
  if (ph__task_update(t, responses)) {
    answer_text(r, "{}", 0);
    run_task_round(t);
  } else {
    answer_text(r, "{}", 0);
  }
}

static void m_tasks_cancel(request *r) {
  ph__task *t = find_task(r);

  if (t == NULL)
    return;
  ph__task_cancel(t); /* A terminal task stays as it is. */
  answer_text(r, "{}", 0);
}

/* ---- Methods ---- */

static void m_ping(request *r) {
  answer_text(r, "{}", 0);
}

static void m_initialize(request *r) {
  const cJSON *v =
      cJSON_GetObjectItemCaseSensitive(r->params, "protocolVersion");
  const cJSON *caps =
      cJSON_GetObjectItemCaseSensitive(r->params, "capabilities");
  cJSON *res;
  char *info;

  /* A session is negotiated once: a second initialize would switch its
   * version (and with it batches) under requests already made. */
  if (r->in_batch) {
    answer_error(r, PH__RPC_INVALID_REQUEST,
                 "Invalid Request: initialize must not be part of a batch",
                 NULL);
    return;
  }
  if (r->s->initialized) {
    answer_error(r, PH__RPC_INVALID_REQUEST,
                 "Invalid Request: the session is already initialized", NULL);
    return;
  }
  if (!cJSON_IsString(v)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: protocolVersion is required", NULL);
    return;
  }
  if (caps != NULL && !cJSON_IsObject(caps)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: capabilities must be an object", NULL);
    return;
  }
  snprintf(r->s->version, sizeof(r->s->version), "%s",
           ph__protocol_version_supported(v->valuestring) ? v->valuestring
                                                          : NEWEST_LEGACY);
  cJSON_Delete(r->s->client_caps);
  r->s->client_caps = caps ? cJSON_Duplicate(caps, 1) : cJSON_CreateObject();
  r->s->initialized = 1;
  res = cJSON_CreateObject();
  cJSON_AddStringToObject(res, "protocolVersion", r->s->version);
  cJSON_AddItemToObject(res, "capabilities", capabilities(r->dept));
  info = server_info_json();
  cJSON_AddRawToObject(res, "serverInfo", info);
  free(info);
  cJSON_AddStringToObject(res, "instructions",
                          "Tools, resources and prompts of the plugins "
                          "loaded in this department, named prefix_name.");
  answer_json(r, res, 0);
}

static void m_discover(request *r) {
  cJSON *res = cJSON_CreateObject(), *versions, *caps;
  size_t i;

  /* Dual era: the same list as an UnsupportedProtocolVersionError gives,
   * which clients check against this one. */
  versions = cJSON_AddArrayToObject(res, "supportedVersions");
  cJSON_AddItemToArray(versions, cJSON_CreateString(PH__MODERN_VERSION));
  for (i = 0; i < sizeof(legacy_versions) / sizeof(*legacy_versions); i++)
    cJSON_AddItemToArray(versions, cJSON_CreateString(legacy_versions[i]));
  caps = capabilities(r->dept);
  /* Extensions are a 2026-07-28 notion: initialize does not list them. */
  cJSON_AddObjectToObject(cJSON_AddObjectToObject(caps, "extensions"),
                          PH__TASKS_EXTENSION);
  cJSON_AddItemToObject(res, "capabilities", caps);
  cJSON_AddStringToObject(res, "instructions",
                          "Tools, resources and prompts of the plugins "
                          "loaded in this department, named prefix_name.");
  answer_json(r, res, 1);
}

static const char *const list_keys[] = {"tools", "resources",
                                        "resourceTemplates", "prompts"};

/* Tools listed per caller: a department with auth. */
static int private_list(const request *r, int kind) {
  const ph__department_cfg *dc = request_dept_cfg(r);

  return kind == PH__TOOL && dc != NULL && dc->auth.mode != PH__AUTH_NONE;
}

static void list(request *r, int kind) {
  const cJSON *cursor = cJSON_GetObjectItemCaseSensitive(r->params, "cursor");
  const char *page;
  char *next = NULL, *text, *filtered = NULL;
  size_t n;

  if (cursor != NULL && !cJSON_IsString(cursor) && !cJSON_IsNull(cursor)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: cursor must be a string", NULL);
    return;
  }
  page =
      ph__dept_page(r->dept, kind,
                    cJSON_IsString(cursor) ? cursor->valuestring : NULL, &next);
  if (page == NULL) {
    answer_error(r, PH__RPC_INVALID_PARAMS, "Invalid params: unknown cursor",
                 NULL);
    return;
  }
  if (kind == PH__TOOL)
    page = visible_tools(r, page, &filtered);
  n = strlen(page) + 64 + (next ? strlen(next) : 0);
  text = ph__xmalloc(n);
  if (next != NULL)
    snprintf(text, n, "{\"%s\":%s,\"nextCursor\":\"%s\"}", list_keys[kind],
             page, next);
  else
    snprintf(text, n, "{\"%s\":%s}", list_keys[kind], page);
  /* A list that depends on the caller is no one else's to cache. */
  answer_text(r, text, filtered || private_list(r, kind) ? 2 : 1);
  free(text);
  free(next);
  free(filtered);
}

static void m_tools_list(request *r) {
  list(r, PH__TOOL);
}
static void m_resources_list(request *r) {
  list(r, PH__RESOURCE);
}
static void m_templates_list(request *r) {
  list(r, PH__TEMPLATE);
}
static void m_prompts_list(request *r) {
  list(r, PH__PROMPT);
}

/* A call's arguments as the client wrote them, for the plugin: cJSON would
 * round integers past 2^53 and re-escape strings, and printing a large
 * tree costs more than the rest of the call. args is their parse (NULL or
 * null: none); a task's rerun has no text and prints the tree. */
static char *arguments_text(const request *r, const cJSON *args) {
  const char *end, *params, *pend, *v = NULL, *vend;
  char *out;

  if (args == NULL || cJSON_IsNull(args))
    return ph__xstrdup("{}");
  if (r->text != NULL) {
    end = r->text + r->len;
    params = ph__jsonrpc_member(ph__jsonrpc_skip_space(r->text, end), end,
                                "params", &pend);
    if (params != NULL)
      v = ph__jsonrpc_member(params, pend, "arguments", &vend);
  }
  if (v == NULL)
    return ph__xjson_print(args);
  out = ph__xmalloc((size_t)(vend - v) + 1);
  memcpy(out, v, (size_t)(vend - v));
  out[vend - v] = '\0';
  return out;
}

/* Applies the scope rule to a tools/call of it. Returns 1 when the call
 * may go on, else 0 after answering. Over HTTP with auth, a missing scope
 * is a 403 naming it (401 for an anonymous caller), so that the client
 * can step up (SEP-2350), and never "unknown tool"; elsewhere (auth none,
 * stdio, a batch member, a task's round) it is a tool error, as before. */
static int may_call(request *r, const ph__item *it) {
  const ph__department_cfg *dc = request_dept_cfg(r);
  cJSON *principal = r->s->principal ? cJSON_Parse(r->s->principal) : NULL;
  const char *scope;
  int access = tool_access(dc, it, principal, &scope);
  char msg[400], data[200], *args;

  cJSON_Delete(principal);
  if (access == ACCESS_GRANTED)
    return 1;
  if (dc != NULL && dc->auth.audit) {
    args = r->text ? arguments_text(r, cJSON_GetObjectItemCaseSensitive(
                                           r->params, "arguments"))
                   : NULL;
    audit_call(r->s, r->s->principal, it->name, args,
               access == ACCESS_ANONYMOUS ? "unauthenticated" : "forbidden",
               scope, -1);
    free(args);
  }
  snprintf(msg, sizeof(msg),
           "%s requires the scope \"%.100s\", which this client does not "
           "hold",
           it->name, scope);
  if (dc == NULL || dc->auth.mode == PH__AUTH_NONE ||
      r->o->need_scope == NULL) {
    answer_json(r, tool_error_result(msg), 0);
    return 0;
  }
  snprintf(data, sizeof(data), "{\"requiredScope\":\"%.100s\"}", scope);
  r->o->need_scope(r->o, scope);
  send_error(r->o, PH__OUTCOME_FORBIDDEN, r->id_json, PH__RPC_INVALID_REQUEST,
             msg, data);
  return 0;
}

static void m_tools_call(request *r) {
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(r->params, "name");
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(r->params, "arguments");
  const ph__item *it;
  const ph__tool_def *t;
  cJSON *empty = NULL;
  ph_call *call;
  char *why = NULL, msg[600];

  if (!cJSON_IsString(name)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: name must be a string", NULL);
    return;
  }
  it = ph__dept_lookup(r->dept, PH__TOOL, name->valuestring);
  if (it == NULL) {
    snprintf(msg, sizeof(msg), "Unknown tool: %.200s", name->valuestring);
    answer_error(r, PH__RPC_INVALID_PARAMS, msg, NULL);
    return;
  }
  t = it->def;
  if (args != NULL && !cJSON_IsObject(args) && !cJSON_IsNull(args)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: arguments must be an object", NULL);
    return;
  }
  if (!may_call(r, it))
    return;
  if (task_support(t) == TASKS_REQUIRED && r->modern && !declares_tasks(r)) {
    answer_needs_tasks(r);
    return;
  }
  if (args == NULL || cJSON_IsNull(args))
    args = empty = cJSON_CreateObject();
  /* Validation failures are tool errors (2025-11-25), so a model can read
   * them and correct its call. */
  if (ph__schema_validate(t->input_validator, args, &why) != 0) {
    snprintf(msg, sizeof(msg), "Invalid arguments for %s: %s", it->name,
             why ? why : "rejected by the input schema");
    free(why);
    cJSON_Delete(empty);
    answer_json(r, tool_error_result(msg), 0);
    return;
  }
  call = new_call(PH__CALL_TOOL, it->inst);
  ph__call_set_target(call, t, it->name);
  ph__call_take_args(call, arguments_text(r, args));
  if (audited(r->s->department))
    proto_of(call)->audited = 1;
  cJSON_Delete(empty);
  if (take_round_state(r, call) != 0) {
    ph__call_unref(call);
    return;
  }
  if (task_support(t) != TASKS_FORBIDDEN && !r->in_task && declares_tasks(r))
    start_task(r, call, t->timeout_ms);
  else
    start_call(r, call, t->timeout_ms);
}

static void m_resources_read(request *r) {
  const cJSON *uri = cJSON_GetObjectItemCaseSensitive(r->params, "uri");
  const ph__item *it;
  cJSON *vars = NULL, *data;
  ph_call *call;
  char *data_text;

  if (!cJSON_IsString(uri)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: uri must be a string", NULL);
    return;
  }
  it = ph__dept_lookup(r->dept, PH__RESOURCE, uri->valuestring);
  if (it == NULL)
    it = ph__dept_match_template(r->dept, uri->valuestring, &vars);
  if (it == NULL) {
    data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "uri", uri->valuestring);
    data_text = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    answer_error(
        r, r->modern ? PH__RPC_INVALID_PARAMS : PH__RPC_RESOURCE_NOT_FOUND,
        "Resource not found", data_text);
    free(data_text);
    return;
  }
  call = new_call(PH__CALL_READ, it->inst);
  ph__call_set_target(call, it->def, uri->valuestring);
  ph__call_set_resource(call, uri->valuestring,
                        vars ? ph__xjson_print(vars) : NULL);
  cJSON_Delete(vars);
  if (take_round_state(r, call) != 0) {
    ph__call_unref(call);
    return;
  }
  start_call(r, call, 0);
}

static void m_prompts_get(request *r) {
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(r->params, "name");
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(r->params, "arguments");
  const cJSON *a;
  const ph__item *it;
  const ph__prompt_def *p;
  ph_call *call;
  char msg[300];
  size_t i;

  if (!cJSON_IsString(name)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: name must be a string", NULL);
    return;
  }
  it = ph__dept_lookup(r->dept, PH__PROMPT, name->valuestring);
  if (it == NULL) {
    snprintf(msg, sizeof(msg), "Unknown prompt: %.200s", name->valuestring);
    answer_error(r, PH__RPC_INVALID_PARAMS, msg, NULL);
    return;
  }
  p = it->def;
  if (args != NULL && !cJSON_IsObject(args)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: arguments must be an object", NULL);
    return;
  }
  cJSON_ArrayForEach(a, args) {
    if (!cJSON_IsString(a)) {
      snprintf(msg, sizeof(msg),
               "Invalid params: argument \"%.100s\" must be a string",
               a->string);
      answer_error(r, PH__RPC_INVALID_PARAMS, msg, NULL);
      return;
    }
  }
  for (i = 0; i < p->nargs; i++) {
    if (p->args[i].required && !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(
                                   args, p->args[i].name))) {
      snprintf(msg, sizeof(msg),
               "Invalid params: missing required argument \"%.100s\"",
               p->args[i].name);
      answer_error(r, PH__RPC_INVALID_PARAMS, msg, NULL);
      return;
    }
  }
  call = new_call(PH__CALL_PROMPT, it->inst);
  ph__call_set_target(call, p, it->name);
  ph__call_take_args(call, arguments_text(r, args));
  if (take_round_state(r, call) != 0) {
    ph__call_unref(call);
    return;
  }
  start_call(r, call, 0);
}

static void m_complete(request *r) {
  const cJSON *ref = cJSON_GetObjectItemCaseSensitive(r->params, "ref");
  const cJSON *arg = cJSON_GetObjectItemCaseSensitive(r->params, "argument");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(ref, "type");
  const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(r->params, "context");
  const cJSON *aname = cJSON_GetObjectItemCaseSensitive(arg, "name");
  const cJSON *avalue = cJSON_GetObjectItemCaseSensitive(arg, "value");
  const ph__item *it = NULL;
  const ph_complete_fn *fn = NULL;
  ph_call *call;
  cJSON *vars = NULL;

  if (!cJSON_IsString(type) || !cJSON_IsString(aname) ||
      !cJSON_IsString(avalue)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: ref.type, argument.name and argument.value "
                 "are required",
                 NULL);
    return;
  }
  if (strcmp(type->valuestring, "ref/prompt") == 0) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(ref, "name");
    if (cJSON_IsString(n))
      it = ph__dept_lookup(r->dept, PH__PROMPT, n->valuestring);
    if (it != NULL)
      fn = &((const ph__prompt_def *)it->def)->complete;
  } else if (strcmp(type->valuestring, "ref/resource") == 0) {
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(ref, "uri");
    if (cJSON_IsString(u)) {
      it = ph__dept_template(r->dept, u->valuestring);
      if (it == NULL)
        it = ph__dept_match_template(r->dept, u->valuestring, &vars);
      cJSON_Delete(vars);
    }
    if (it != NULL)
      fn = &((const ph__template_def *)it->def)->complete;
  }
  if (it == NULL) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: unknown prompt or resource "
                 "template in ref",
                 NULL);
    return;
  }
  if (*fn == NULL) {
    answer_text(r, "{\"completion\":{\"values\":[],\"hasMore\":false}}", 0);
    return;
  }
  call = new_call(PH__CALL_COMPLETE, it->inst);
  ph__call_set_target(call, fn, it->name);
  ctx = cJSON_GetObjectItemCaseSensitive(ctx, "arguments");
  ph__call_set_completion(call, aname->valuestring, avalue->valuestring,
                          cJSON_IsObject(ctx) ? ph__xjson_print(ctx)
                                              : ph__xstrdup("{}"));
  start_call(r, call, 0);
}

static void m_set_level(request *r) {
  const cJSON *level = cJSON_GetObjectItemCaseSensitive(r->params, "level");
  int l = cJSON_IsString(level) ? ph__log_level_parse(level->valuestring) : -1;

  if (l < 0) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: level must be one of debug, "
                 "info, notice, warning, error, critical, alert, "
                 "emergency",
                 NULL);
    return;
  }
  r->s->log_level = l;
  answer_text(r, "{}", 0);
}

static void m_subscribe(request *r) {
  const cJSON *uri = cJSON_GetObjectItemCaseSensitive(r->params, "uri");
  ph__session *s = r->s;
  size_t i;

  if (!cJSON_IsString(uri)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: uri must be a string", NULL);
    return;
  }
  for (i = 0; i < s->nsubscriptions; i++)
    if (strcmp(s->subscriptions[i], uri->valuestring) == 0)
      break;
  if (i == s->nsubscriptions && s->nsubscriptions < 1024) {
    s->subscriptions = ph__xrealloc(s->subscriptions,
                                    (s->nsubscriptions + 1) * sizeof(char *));
    s->subscriptions[s->nsubscriptions++] = ph__xstrdup(uri->valuestring);
  }
  answer_text(r, "{}", 0);
}

static void m_unsubscribe(request *r) {
  const cJSON *uri = cJSON_GetObjectItemCaseSensitive(r->params, "uri");
  ph__session *s = r->s;
  size_t i;

  if (!cJSON_IsString(uri)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: uri must be a string", NULL);
    return;
  }
  for (i = 0; i < s->nsubscriptions; i++) {
    if (strcmp(s->subscriptions[i], uri->valuestring) == 0) {
      free(s->subscriptions[i]);
      s->subscriptions[i] = s->subscriptions[--s->nsubscriptions];
      break;
    }
  }
  answer_text(r, "{}", 0);
}

/* 2026-07-28: acknowledges at once and keeps the outlet open until the
 * session closes; send_unsolicited() filters and tags what follows. */
static void m_listen(request *r) {
  static const struct {
    const char *key;
    int kind;
  } flags[] = {{"toolsListChanged", PH__TOOL},
               {"promptsListChanged", PH__PROMPT},
               {"resourcesListChanged", PH__RESOURCE}};
  const cJSON *want =
      cJSON_GetObjectItemCaseSensitive(r->params, "notifications");
  const cJSON *uris =
      cJSON_GetObjectItemCaseSensitive(want, "resourceSubscriptions");
  const cJSON *u;
  ph__session *s = r->s;
  cJSON *ack, *params, *meta, *got, *list = NULL;
  char *text;
  size_t i;

  if ((want != NULL && !cJSON_IsObject(want)) ||
      (uris != NULL && !cJSON_IsArray(uris))) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: notifications must be an object and "
                 "resourceSubscriptions an array",
                 NULL);
    return;
  }
  if (s->listen_outlet != NULL) {
    answer_error(r, PH__RPC_INVALID_REQUEST,
                 "Invalid Request: already listening", NULL);
    return;
  }
  ack = cJSON_CreateObject();
  cJSON_AddStringToObject(ack, "jsonrpc", "2.0");
  cJSON_AddStringToObject(ack, "method",
                          "notifications/subscriptions/acknowledged");
  params = cJSON_AddObjectToObject(ack, "params");
  meta = cJSON_AddObjectToObject(params, "_meta");
  cJSON_AddRawToObject(meta, META_SUBSCRIPTION, r->id_json);
  got = cJSON_AddObjectToObject(params, "notifications");
  s->listen_kinds = 0;
  for (i = 0; i < sizeof(flags) / sizeof(*flags); i++) {
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(want, flags[i].key))) {
      s->listen_kinds |= 1u << flags[i].kind;
      cJSON_AddBoolToObject(got, flags[i].key, 1);
    }
  }
  cJSON_ArrayForEach(u, uris) {
    if (!cJSON_IsString(u) || s->nsubscriptions >= 1024)
      continue;
    if (list == NULL)
      list = cJSON_AddArrayToObject(got, "resourceSubscriptions");
    cJSON_AddItemToArray(list, cJSON_CreateString(u->valuestring));
    s->subscriptions = ph__xrealloc(s->subscriptions,
                                    (s->nsubscriptions + 1) * sizeof(char *));
    s->subscriptions[s->nsubscriptions++] = ph__xstrdup(u->valuestring);
  }
  s->listen_outlet = r->o;
  s->listen_id = ph__xstrdup(r->id_json);
  text = cJSON_PrintUnformatted(ack);
  cJSON_Delete(ack);
  ph__outlet_send(r->o, text, strlen(text));
  free(text);
}

enum { LEGACY = 1, MODERN = 2, BOTH = 3 };

static const struct method {
  const char *name;
  void (*fn)(request *r);
  int eras;
} methods[] = {
    {"initialize", m_initialize, LEGACY},
    {"ping", m_ping, LEGACY},
    {"server/discover", m_discover, MODERN},
    {"tools/list", m_tools_list, BOTH},
    {"tools/call", m_tools_call, BOTH},
    {"resources/list", m_resources_list, BOTH},
    {"resources/templates/list", m_templates_list, BOTH},
    {"resources/read", m_resources_read, BOTH},
    {"resources/subscribe", m_subscribe, LEGACY},
    {"resources/unsubscribe", m_unsubscribe, LEGACY},
    {"prompts/list", m_prompts_list, BOTH},
    {"prompts/get", m_prompts_get, BOTH},
    {"completion/complete", m_complete, BOTH},
    {"logging/setLevel", m_set_level, LEGACY},
    {"subscriptions/listen", m_listen, MODERN},
    {"tasks/get", m_tasks_get, MODERN},
    {"tasks/update", m_tasks_update, MODERN},
    {"tasks/cancel", m_tasks_cancel, MODERN},
};

static const struct method *find_method(const char *name) {
  size_t i;

  for (i = 0; i < sizeof(methods) / sizeof(*methods); i++)
    if (strcmp(methods[i].name, name) == 0)
      return &methods[i];
  return NULL;
}

/* ---- Messages ---- */

static void handle_notification(ph__session *s, const char *method,
                                const char *text, size_t len) {
  static const char *const request_id[] = {"params", "requestId", NULL};
  const char *v, *e;
  size_t i, n;

  if (strcmp(method, "notifications/initialized") == 0) {
    s->ready = 1;
  } else if (strcmp(method, "notifications/cancelled") == 0) {
    /* By its text, as the request's id was kept. */
    v = ph__jsonrpc_value_at(text, text + len, request_id, &e);
    if (v == NULL)
      return;
    n = (size_t)(e - v);
    for (i = 0; i < s->ninflight; i++) {
      const char *id = proto_of(s->inflight[i])->id_json;

      if (strlen(id) == n && memcmp(id, v, n) == 0) {
        ph__call_cancel(s->inflight[i]);
        break;
      }
    }
  }
  /* Other notifications (roots/list_changed, progress) need nothing. */
}

/* A response to one of our requests: its result goes to the call that
 * asked (an error as none). */
static void handle_response(ph__session *s, const cJSON *msg, const char *id,
                            size_t id_len) {
  const cJSON *result = cJSON_GetObjectItemCaseSensitive(msg, "result");
  size_t i;

  for (i = 0; i < s->npending; i++) {
    if (strlen(s->pending[i].id) == id_len &&
        memcmp(s->pending[i].id, id, id_len) == 0) {
      ph_call *call = s->pending[i].call;
      char *answer = result ? ph__xjson_print(result) : NULL;

      free(s->pending[i].id);
      s->pending[i] = s->pending[--s->npending];
      ph__call_client_answer(call, answer);
      ph__call_unref(call);
      free(answer);
      return;
    }
  }
  ph__debug("response to unknown request id %.*s ignored", (int)id_len, id);
}

/* Modern per-request metadata. Returns 0 or answers and returns -1. */
static int read_modern_meta(request *r, const cJSON *meta) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, META_VERSION);
  const cJSON *caps = cJSON_GetObjectItemCaseSensitive(meta, META_CAPS);
  const cJSON *level = cJSON_GetObjectItemCaseSensitive(meta, META_LOGLEVEL);
  cJSON *data, *sup;
  char *text;
  size_t i;

  if (!cJSON_IsString(v)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: _meta." META_VERSION " must be a string",
                 NULL);
    return -1;
  }
  if (strcmp(v->valuestring, PH__MODERN_VERSION) != 0) {
    data = cJSON_CreateObject();
    sup = cJSON_AddArrayToObject(data, "supported");
    cJSON_AddItemToArray(sup, cJSON_CreateString(PH__MODERN_VERSION));
    for (i = 0; i < sizeof(legacy_versions) / sizeof(*legacy_versions); i++)
      cJSON_AddItemToArray(sup, cJSON_CreateString(legacy_versions[i]));
    cJSON_AddStringToObject(data, "requested", v->valuestring);
    text = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    answer_error(r, PH__RPC_UNSUPPORTED_VERSION, "Unsupported protocol version",
                 text);
    free(text);
    return -1;
  }
  if (!cJSON_IsObject(caps)) {
    answer_error(r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: _meta." META_CAPS " must be an object", NULL);
    return -1;
  }
  r->caps = caps;
  r->log_level = -1; /* No logLevel: no notifications/message at all. */
  if (level != NULL) {
    r->log_level =
        cJSON_IsString(level) ? ph__log_level_parse(level->valuestring) : -1;
    if (r->log_level < 0) {
      answer_error(r, PH__RPC_INVALID_PARAMS,
                   "Invalid params: unknown _meta." META_LOGLEVEL, NULL);
      return -1;
    }
  }
  return 0;
}

static void handle_request(ph__session *s, ph__outlet *o, const cJSON *msg,
                           const char *method, const cJSON *id,
                           const char *id_text, size_t id_len, const char *text,
                           size_t len, int in_batch) {
  request r = {0};
  const cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(params, "_meta");
  uint64_t started_ns = ph__metrics_enabled() ? uv_hrtime() : 0;
  const struct method *m = NULL;
  size_t i;

  r.s = s;
  r.o = o;
  r.method = method;
  r.id = id;
  r.id_json = strndup(id_text, id_len);
  r.params = params;
  r.text = text;
  r.len = len;
  r.in_batch = in_batch;
  r.modern =
      cJSON_GetObjectItemCaseSensitive(meta, META_VERSION) != NULL || s->modern;
  if (params != NULL && !cJSON_IsObject(params)) {
    answer_error(&r, PH__RPC_INVALID_PARAMS,
                 "Invalid params: params must be an object", NULL);
    goto done;
  }
  for (i = 0; i < s->ninflight; i++) {
    if (strcmp(proto_of(s->inflight[i])->id_json, r.id_json) == 0) {
      answer_error(&r, PH__RPC_INVALID_REQUEST,
                   "Invalid Request: id is already in use by a "
                   "request in flight",
                   NULL);
      goto done;
    }
  }
  if (r.modern) {
    if (read_modern_meta(&r, meta) != 0)
      goto done;
  } else {
    r.caps = s->client_caps;
    r.log_level = s->log_level;
  }
  m = find_method(method);
  if (m != NULL)
    r.method = m->name; /* Static: calls keep it. */
  if (m == NULL || !(m->eras & (r.modern ? MODERN : LEGACY))) {
    char why[200];

    if (m == NULL && strcmp(method, "server/discover") != 0)
      snprintf(why, sizeof(why), "Method not found: %.100s", method);
    else if (r.modern)
      snprintf(why, sizeof(why),
               "Method not found: %.100s is not part of " PH__MODERN_VERSION,
               method);
    else
      snprintf(why, sizeof(why),
               "Method not found: %.100s needs the " PH__MODERN_VERSION
               " _meta fields",
               method);
    answer_error(&r, PH__RPC_METHOD_NOT_FOUND, why, NULL);
    goto done;
  }
  if (!r.modern && !s->initialized && m->fn != m_initialize &&
      m->fn != m_ping) {
    answer_error(&r, PH__RPC_INVALID_REQUEST,
                 "Invalid Request: the session is not initialized; send "
                 "initialize first",
                 NULL);
    goto done;
  }
  r.gen = ph__registry_acquire();
  r.dept = r.gen ? ph__generation_dept(r.gen, s->department) : NULL;
  if (r.dept == NULL) {
    answer_error(&r, PH__RPC_INTERNAL_ERROR,
                 "Internal error: department is not served", NULL);
    goto done;
  }
  m->fn(&r);

done:
  count_request(&r, m ? m->name : NULL, started_ns);
  ph__generation_unref(r.gen);
  free(r.id_json);
}

/* Refuses an invalid message with its id when it has one JSON-RPC allows,
 * so that the client's pending request gets its answer; else id null. */
static void refuse_invalid(ph__outlet *o, const char *id, const char *id_end,
                           int kind, const char *message) {
  char *id_text =
      ph__jsonrpc_id_echoes(kind) ? strndup(id, (size_t)(id_end - id)) : NULL;

  send_error(o, PH__OUTCOME_REFUSED, id_text, PH__RPC_INVALID_REQUEST, message,
             NULL);
  free(id_text);
}

/* One message, parsed as msg, whose text is text..len (from its first
 * byte). */
static void handle_message(ph__session *s, ph__outlet *o, const cJSON *msg,
                           const char *text, size_t len, int in_batch) {
  const cJSON *jsonrpc = cJSON_GetObjectItemCaseSensitive(msg, "jsonrpc");
  const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
  const char *v = NULL, *e = NULL;
  int kind = PH__ID_NONE;

  if (cJSON_IsObject(msg)) {
    v = ph__jsonrpc_member(text, text + len, "id", &e);
    kind = ph__jsonrpc_id_kind(v, e);
  }
  if (!cJSON_IsObject(msg) || !cJSON_IsString(jsonrpc) ||
      strcmp(jsonrpc->valuestring, "2.0") != 0) {
    refuse_invalid(o, v, e, kind,
                   "Invalid Request: not a JSON-RPC 2.0 message");
    return;
  }
  if (method == NULL) {
    /* A response to one of our requests. */
    if (ph__jsonrpc_id_serves(kind) && (cJSON_GetObjectItem(msg, "result") ||
                                        cJSON_GetObjectItem(msg, "error"))) {
      handle_response(s, msg, v, (size_t)(e - v));
      o->finish(o, PH__OUTCOME_ACCEPTED, NULL, 0);
      return;
    }
    refuse_invalid(o, v, e, kind,
                   "Invalid Request: neither a request, a notification nor a "
                   "response");
    return;
  }
  if (!cJSON_IsString(method)) {
    refuse_invalid(o, v, e, kind, "Invalid Request: method must be a string");
    return;
  }
  if (id == NULL) {
    handle_notification(s, method->valuestring, text, len);
    o->finish(o, PH__OUTCOME_ACCEPTED, NULL, 0);
    return;
  }
  if (!ph__jsonrpc_id_serves(kind)) {
    refuse_invalid(o, v, e, kind,
                   "Invalid Request: id must be a string or an integer");
    return;
  }
  handle_request(s, o, msg, method->valuestring, id, v, (size_t)(e - v), text,
                 len, in_batch);
}

/* ---- Batches (2025-03-26 only; jsonrpc.c assembles the answer) ---- */

/* arr is the parse of text..len; its members are handled as messages of
 * their own, each with its own text. */
static void handle_batch(ph__session *s, ph__outlet *o, const cJSON *arr,
                         const char *text, size_t len) {
  ph__jsonrpc_batch *b = ph__jsonrpc_batch_new(
      o, P.cfg->limits.max_message_bytes, cJSON_GetArraySize(arr));
  const char *end = text + len, *at = text + 1, *m, *mend;
  const cJSON *item;

  cJSON_ArrayForEach(item, arr) {
    /* cJSON keeps members in the order of the text. */
    m = ph__jsonrpc_next_member(&at, end, &mend);
    handle_message(s, ph__jsonrpc_batch_part(b), item, m, (size_t)(mend - m),
                   1);
  }
  ph__jsonrpc_batch_started(b);
}

/* Refuses a batch before its parse: on a session of another era, or past
 * limits.max_batch_members. Returns 1 if it answered. */
static int batch_refused(ph__session *s, ph__outlet *o, const char *start,
                         const char *end) {
  const ph__limits *l = &P.cfg->limits;
  char msg[160];

  if (strcmp(s->version, "2025-03-26") != 0 || !s->initialized) {
    send_error(o, PH__OUTCOME_REFUSED, NULL, PH__RPC_INVALID_REQUEST,
               "Invalid Request: batches are only accepted on a session "
               "that negotiated 2025-03-26",
               NULL);
    return 1;
  }
  if (ph__jsonrpc_batch_members(start, end, l->max_batch_members) >
      l->max_batch_members) {
    snprintf(msg, sizeof(msg),
             "Invalid Request: a batch of more than %d members "
             "(limits.max_batch_members)",
             l->max_batch_members);
    send_error(o, PH__OUTCOME_REFUSED, NULL, PH__RPC_INVALID_REQUEST, msg,
               NULL);
    return 1;
  }
  return 0;
}

void ph__protocol_handle(ph__session *s, ph__outlet *o, const char *text,
                         size_t len) {
  const ph__limits *l = &P.cfg->limits;
  const char *end = text + len, *start = ph__jsonrpc_skip_space(text, end),
             *why;
  cJSON *root;
  char msg[160];

  why = ph__json_precheck(text, len, l->max_json_depth);
  if (why != NULL)
    goto parse_error;
  if (start < end && *start == '[' && batch_refused(s, o, start, end))
    return;
  if ((why = ph__json_check_values(text, len, l->max_json_values)) != NULL) {
    char *id_json = ph__jsonrpc_id_text(text, len);

    snprintf(msg, sizeof(msg), "Invalid Request: %s", why);
    send_error(o, PH__OUTCOME_REFUSED, id_json, PH__RPC_INVALID_REQUEST, msg,
               NULL);
    free(id_json);
    return;
  }
  root = ph__json_parse_prechecked(text, len, &why);
  if (root == NULL)
    goto parse_error;
  if (!cJSON_IsArray(root))
    handle_message(s, o, root, start, (size_t)(end - start), 0);
  else if (cJSON_GetArraySize(root) == 0)
    send_error(o, PH__OUTCOME_REFUSED, NULL, PH__RPC_INVALID_REQUEST,
               "Invalid Request: empty batch", NULL);
  else
    handle_batch(s, o, root, start, (size_t)(end - start));
  cJSON_Delete(root);
  return;

parse_error:
  snprintf(msg, sizeof(msg), "Parse error: %s", why);
  send_error(o, PH__OUTCOME_REFUSED, NULL, PH__RPC_PARSE_ERROR, msg, NULL);
}

void ph__protocol_handle_parsed(ph__session *s, ph__outlet *o, const char *text,
                                size_t len, const cJSON *object) {
  const char *end = text + len, *start = ph__jsonrpc_skip_space(text, end);

  handle_message(s, o, object, start, (size_t)(end - start), 0);
}

/* ---- Notifications out ---- */

/* A listening session gets only what it asked for, tagged with its
 * subscription id (resources/updated is filtered by subscriptions). */
static void send_to_listener(ph__session *s, const char *json) {
  cJSON *msg = cJSON_Parse(json), *params, *meta;
  const char *method = cJSON_GetStringValue(cJSON_GetObjectItem(msg, "method"));
  unsigned need = 0;
  char *text;

  if (method == NULL) {
    cJSON_Delete(msg);
    return;
  }
  if (strcmp(method, "notifications/tools/list_changed") == 0)
    need = 1u << PH__TOOL;
  else if (strcmp(method, "notifications/prompts/list_changed") == 0)
    need = 1u << PH__PROMPT;
  else if (strcmp(method, "notifications/resources/list_changed") == 0)
    need = 1u << PH__RESOURCE;
  if (need != 0 && !(s->listen_kinds & need)) {
    cJSON_Delete(msg);
    return;
  }
  params = cJSON_GetObjectItem(msg, "params");
  if (!cJSON_IsObject(params))
    params = cJSON_AddObjectToObject(msg, "params");
  meta = cJSON_GetObjectItem(params, "_meta");
  if (!cJSON_IsObject(meta))
    meta = cJSON_AddObjectToObject(params, "_meta");
  cJSON_AddRawToObject(meta, META_SUBSCRIPTION, s->listen_id);
  text = cJSON_PrintUnformatted(msg);
  cJSON_Delete(msg);
  ph__outlet_send(s->listen_outlet, text, strlen(text));
  free(text);
}

static void send_unsolicited(ph__session *s, const char *json) {
  if (s->closed)
    return;
  if (s->listen_outlet != NULL)
    send_to_listener(s, json);
  else if (s->notify != NULL && s->initialized)
    s->notify(s, json, strlen(json));
}

void ph__protocol_lists_changed(const char *department, unsigned kinds) {
  static const char *const names[PH__NKINDS] = {
      "notifications/tools/list_changed",
      "notifications/resources/list_changed",
      "notifications/resources/list_changed",
      "notifications/prompts/list_changed"};
  char text[128];
  ph__session *s;
  int k, sent_resources;

  for (s = ph__session_first(); s != NULL; s = s->next) {
    if (strcmp(s->department, department) != 0)
      continue;
    sent_resources = 0;
    for (k = 0; k < PH__NKINDS; k++) {
      if (!(kinds & (1u << k)))
        continue;
      if (k == PH__RESOURCE || k == PH__TEMPLATE) {
        if (sent_resources++)
          continue;
      }
      snprintf(text, sizeof(text), "{\"jsonrpc\":\"2.0\",\"method\":\"%s\"}",
               names[k]);
      send_unsolicited(s, text);
    }
  }
}

static void on_plugin_notify(ph_instance *inst, int kind, const char *uri) {
  ph__session *s;
  cJSON *msg, *params;
  char *text;
  size_t i;

  switch (kind) {
  case PH_NOTIFY_TOOLS_CHANGED:
    ph__protocol_lists_changed(inst->department, 1u << PH__TOOL);
    return;
  case PH_NOTIFY_RESOURCES_CHANGED:
    ph__protocol_lists_changed(inst->department, 1u << PH__RESOURCE);
    return;
  case PH_NOTIFY_PROMPTS_CHANGED:
    ph__protocol_lists_changed(inst->department, 1u << PH__PROMPT);
    return;
  }
  msg = cJSON_CreateObject();
  cJSON_AddStringToObject(msg, "jsonrpc", "2.0");
  cJSON_AddStringToObject(msg, "method", "notifications/resources/updated");
  params = cJSON_AddObjectToObject(msg, "params");
  cJSON_AddStringToObject(params, "uri", uri);
  text = cJSON_PrintUnformatted(msg);
  cJSON_Delete(msg);
  for (s = ph__session_first(); s != NULL; s = s->next) {
    if (strcmp(s->department, inst->department) != 0)
      continue;
    for (i = 0; i < s->nsubscriptions; i++) {
      if (strcmp(s->subscriptions[i], uri) == 0) {
        send_unsolicited(s, text);
        break;
      }
    }
  }
  free(text);
}

/* PH__ASK_WAIT: our request goes out on the call's outlet with an id of
 * ours, and the response finds the call by it (handle_response). */
static void send_client_request(ph_call *call, const char *method,
                                const char *params_json) {
  static unsigned long long next_id;
  ph__session *s = ph__call_session(call);
  char *id, *json;

  if (s->closed) {
    ph__call_client_answer(call, NULL);
    return;
  }
  id = ph__xasprintf("\"ph-%llu\"", next_id++);
  json = ph__xasprintf(
      "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"%s\",\"params\":%s}", id,
      method, params_json);
  if (s->npending == s->cappending) {
    s->cappending = s->cappending ? 2 * s->cappending : 4;
    s->pending = ph__xrealloc(s->pending, s->cappending * sizeof(*s->pending));
  }
  s->pending[s->npending].id = id;
  s->pending[s->npending].call = call;
  s->npending++;
  ph__call_ref(call);
  ph__outlet_send(ph__call_outlet(call), json, strlen(json));
  free(json);
}

/* Loop thread: what a call sends before its answer, rendered. */
static void on_call_event(ph_call *call, const ph__call_event *e) {
  proto_call *pc = proto_of(call);
  cJSON *msg, *params, *data;
  char *text;

  if (e->kind == PH__EVENT_CLIENT_REQUEST) {
    send_client_request(call, e->method, e->params_json);
    return;
  }
  msg = ph__xcheck(cJSON_CreateObject());
  ph__xjson_put_string(msg, "jsonrpc", "2.0");
  params = ph__xcheck(cJSON_CreateObject());
  if (e->kind == PH__EVENT_PROGRESS) {
    ph__xjson_put_string(msg, "method", "notifications/progress");
    /* As the client wrote it: a parse would round integers past 2^53. */
    ph__xjson_put(params, "progressToken", cJSON_CreateRaw(pc->progress_token));
    ph__xjson_put_number(params, "progress", e->progress);
    if (e->total >= 0)
      ph__xjson_put_number(params, "total", e->total);
    if (e->message != NULL)
      ph__xjson_put_string(params, "message", e->message);
  } else {
    ph__xjson_put_string(msg, "method", "notifications/message");
    ph__xjson_put_string(params, "level", ph__log_level_name(e->level));
    if (e->logger != NULL)
      ph__xjson_put_string(params, "logger", e->logger);
    data = e->data_json ? cJSON_Parse(e->data_json) : cJSON_CreateNull();
    if (data == NULL)
      data = cJSON_CreateString(e->data_json); /* Not JSON: sent as text. */
    ph__xjson_put(params, "data", data);
  }
  ph__xjson_put(msg, "params", params);
  text = ph__xjson_print(msg);
  cJSON_Delete(msg);
  ph__outlet_send(ph__call_outlet(call), text, strlen(text));
  free(text);
}

/* A listen ends with a result for its request id (2026-07-28). */
static void on_session_close(ph__session *s) {
  ph__outlet *o = s->listen_outlet;
  char *msg;

  if (o == NULL)
    return;
  s->listen_outlet = NULL;
  msg = ph__xasprintf("{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{"
                      "\"resultType\":\"complete\",\"_meta\":{"
                      "\"" META_SUBSCRIPTION "\":%s}}}",
                      s->listen_id, s->listen_id);
  o->finish(o, PH__OUTCOME_ANSWERED, msg, strlen(msg));
  free(msg);
}

void ph__protocol_set_config(const ph__config *cfg) {
  P.cfg = cfg;
  atomic_store(&P.check_results, cfg->check_results);
}

int ph__protocol_init(const ph__config *cfg) {
  ph__protocol_set_config(cfg);
  if (ph__request_state_init(cfg->hmac_key) != 0)
    return -1;
  ph__calls_set_hooks(&(ph__call_hooks){.shape = shape_result,
                                        .answer = on_call_answer,
                                        .event = on_call_event,
                                        .release = release_call,
                                        .notify = on_plugin_notify});
  ph__sessions_set_close_hook(on_session_close);
  ph__tasks_init(answer_task_handle);
  return 0;
}
