/* transport_http.c: see transport_http.h.
 *
 * Every POST becomes an exchange: the outlet the protocol answers through.
 * A legacy exchange answers with JSON, or turns into an SSE stream the
 * first time the protocol sends a related message (progress, a log line, a
 * request to the client). Streams of a legacy session carry event ids
 * "<stream>-<seq>" and every event is kept in the session's bounded replay
 * buffer, so a client that lost a stream GETs it back with Last-Event-ID.
 * A modern exchange has a session of its own that ends with the exchange;
 * its stream has no ids, because 2026-07-28 has no resumption, and closing
 * it cancels the request. */
#include "transport_http.h"

#include "alloc.h"
#include "audit.h"
#include "authz.h"
#include "clients.h"
#include "call.h"
#include "http.h"
#include "http_session.h"
#include "jsonrpc.h"
#include "log.h"
#include "metrics.h"
#include "protocol.h"
#include "protocol_http.h"
#include "registry.h"
#include "session.h"
#include "tasks.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Idle sessions, abandoned streams and keep-alives are checked this
 * often. */
#define SWEEP_MS 1000
#define KEEPALIVE_MS 15000

typedef struct exchange exchange;

struct exchange {
  ph__outlet base;
  exchange *prev, *next;    /* Live exchanges. */
  ph__http_response_t *res; /* Until answered (or moved to a stream). */
  ph__http_session *ms;     /* Legacy: held. */
  ph__session *s;           /* Referenced. */
  unsigned stream_id;       /* Legacy SSE stream, once begun, else 0. */
  int modern;
  int sse;          /* Modern SSE begun on res. */
  int answered;     /* finish() ran. */
  int busy;         /* Inside a call that may answer; do not free. */
  int minting;      /* An initialize that creates ms. */
  int prime;        /* Legacy: send the SEP-1699 priming event. */
  char *cors;       /* Origin to allow in the response, or NULL. */
  char *need_scope; /* The scope a PH__OUTCOME_FORBIDDEN answer is about. */
};

static struct {
  uv_loop_t *loop;
  const ph__config *cfg;
  ph__http_server_t server;
  int listening, stopping, closed;
  char bound_ip[64];
  uv_timer_t sweep;
  uint64_t last_keepalive;
  exchange *exchanges;
  ph__http_server_t metrics_server; /* metrics_listen, when set. */
  int metrics_listening;
} H;

/* ---- Small helpers ---- */

typedef struct headers {
  ph__http_header_t h[12];
  size_t n;
} headers;

static void add_header(headers *h, const char *name, const char *value) {
  if (value != NULL && h->n < sizeof(h->h) / sizeof(*h->h))
    h->h[h->n++] = (ph__http_header_t){name, value};
}

static void add_cors(headers *h, const char *origin) {
  if (origin == NULL)
    return;
  add_header(h, "Access-Control-Allow-Origin", origin);
  add_header(h, "Access-Control-Expose-Headers",
             "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate");
  add_header(h, "Vary", "Origin");
}

static void respond_json(ph__http_response_t *res, int status, headers *h,
                         const char *json, size_t len) {
  add_header(h, "Content-Type", "application/json");
  add_header(h, "Cache-Control", "no-store");
  ph__http_respond(res, status, h->h, h->n, json, len);
}

/* A JSON-RPC error as the whole response; id_json NULL gives id null. */
static void respond_error(ph__http_response_t *res, const char *cors,
                          int status, const char *id_json, int code,
                          const char *message, const char *data_json) {
  headers h = {0};
  char *text = ph__jsonrpc_error_text(id_json, code, message, data_json);

  add_cors(&h, cors);
  if (status == 405)
    add_header(&h, "Allow", "GET, POST, DELETE, OPTIONS");
  respond_json(res, status, &h, text, strlen(text));
  free(text);
}

static void begin_sse(ph__http_response_t *res, const char *session_id,
                      const char *cors) {
  headers h = {0};

  add_header(&h, "Content-Type", "text/event-stream");
  add_header(&h, "Cache-Control", "no-cache, no-transform");
  add_header(&h, "X-Accel-Buffering", "no");
  add_header(&h, "Mcp-Session-Id", session_id);
  add_cors(&h, cors);
  ph__http_stream_begin(res, 200, h.h, h.n);
}

/* ---- Legacy sessions ---- */

/* The client a request comes from, for the per-client limits: its peer
 * address. The principal authenticate() learns could become the key here,
 * so that clients behind one proxy or NAT are told apart and one client
 * on many addresses is one; clients.h has no such key kind yet. */
static ph__client *client_of(const ph__http_request_t *req) {
  ph__client_key key;

  ph__client_key_of_addr((const struct sockaddr *)&req->remote, &key);
  return ph__client_get(&key, uv_now(H.loop),
                        H.cfg->limits.session_burst_per_client);
}

/* ---- Exchanges (one per POST) ---- */

/* The legacy stream the exchange feeds, or NULL. Looked up, not kept: the
 * session frees its streams when it ends. */
static ph__sse_stream *exchange_stream(const exchange *ex) {
  return ex->stream_id != 0 ? ph__sse_stream_find(ex->ms, ex->stream_id) : NULL;
}

static void exchange_maybe_free(exchange *ex) {
  if (!ex->answered || ex->res != NULL || ex->busy)
    return;
  if (ex->prev != NULL)
    ex->prev->next = ex->next;
  else
    H.exchanges = ex->next;
  if (ex->next != NULL)
    ex->next->prev = ex->prev;
  if (ex->ms != NULL)
    ph__http_session_release(ex->ms);
  ph__session_unref(ex->s);
  free(ex->cors);
  free(ex->need_scope);
  free(ex);
}

/* Cancels the calls this exchange is waiting for (the client is gone). */
static void exchange_cancel_calls(exchange *ex) {
  ph__session *s = ex->s;
  size_t i = 0;

  while (i < s->ninflight) {
    if (ph__call_outlet(s->inflight[i]) == &ex->base)
      ph__call_cancel(s->inflight[i]); /* Leaves the inflight array. */
    else
      i++;
  }
}

/* Turns a legacy exchange's response into a numbered SSE stream of its
 * session. Returns the stream, or NULL when there is no response or
 * session left. */
static ph__sse_stream *stream_open(exchange *ex, int priming) {
  ph__sse_stream *st;

  if (ex->res == NULL || ex->ms == NULL || ph__http_session_closed(ex->ms))
    return NULL;
  st = ph__sse_stream_open(ex->ms, ex->res, ex);
  ex->stream_id = ph__sse_stream_id(st);
  begin_sse(ex->res, ph__http_session_id(ex->ms), ex->cors);
  ex->res = NULL;
  if (priming)
    ph__sse_stream_prime(st);
  return st;
}

static void ex_send(ph__outlet *o, const char *json, size_t len) {
  exchange *ex = (exchange *)((char *)o - offsetof(exchange, base));
  ph__sse_stream *st;

  if (ex->answered)
    return;
  if (ex->modern) {
    if (ex->res == NULL)
      return;
    if (!ex->sse) {
      begin_sse(ex->res, NULL, ex->cors);
      ex->sse = 1;
    }
    ph__sse_event(ex->res, NULL, json, len, 0);
    return;
  }
  st = exchange_stream(ex);
  if (st == NULL && (st = stream_open(ex, ex->prime)) == NULL)
    return;
  ph__sse_stream_emit(st, json, len);
}

/* SEP-1699 polling: ends the connection of the call's stream but not the
 * stream. The last event names where to resume and the retry field when;
 * the client comes back with GET and Last-Event-ID and is replayed what
 * the call sent meanwhile (on_get). The priming event goes out whatever
 * version the request header named: a client cannot resume without it. */
static void ex_close_stream(ph__outlet *o) {
  exchange *ex = (exchange *)((char *)o - offsetof(exchange, base));
  ph__sse_stream *st;

  if (ex->answered || ex->modern)
    return;
  st = exchange_stream(ex);
  if (st == NULL && (st = stream_open(ex, 0)) == NULL)
    return;
  ph__sse_stream_detach(st);
}

/* What the protocol's answer means, as an HTTP status (outlet.h). */
static int outcome_status(int outcome) {
  switch (outcome) {
  case PH__OUTCOME_ACCEPTED:
    return 202;
  case PH__OUTCOME_REFUSED:
    return 400;
  case PH__OUTCOME_NOT_FOUND:
    return 404;
  case PH__OUTCOME_TOO_LARGE:
    return 413;
  case PH__OUTCOME_BUSY:
    return 429;
  case PH__OUTCOME_UNAVAILABLE:
    return 503;
  case PH__OUTCOME_FORBIDDEN:
    return 403;
  default:
    return 200;
  }
}

static void ex_finish(ph__outlet *o, int outcome, const char *json,
                      size_t len) {
  exchange *ex = (exchange *)((char *)o - offsetof(exchange, base));
  ph__sse_stream *st = exchange_stream(ex);
  int status = outcome_status(outcome);
  const ph__department_cfg *dc;
  char *challenge = NULL;
  headers h = {0};

  if (ex->answered)
    return;
  ex->answered = 1;
  if (status == 403 &&
      (dc = ph__config_department(H.cfg, ex->s->department)) != NULL &&
      dc->auth.public_url != NULL) {
    /* Who has no identity yet needs one first; who has one steps up. */
    if (ex->s->principal == NULL) {
      status = 401;
      challenge = ph__bearer_challenge(dc, ex->need_scope, NULL, NULL);
    } else {
      challenge = ph__bearer_challenge(
          dc, ex->need_scope, "insufficient_scope",
          "the tool needs a scope this token does not grant");
    }
    add_header(&h, "WWW-Authenticate", challenge);
  }
  if (st != NULL) {
    ex->stream_id = 0;
    ph__sse_stream_finish(st, json, len);
  } else if (ex->res != NULL) {
    if (ex->minting) {
      if (ph__http_session_protocol(ex->ms)->initialized) {
        add_header(&h, "Mcp-Session-Id", ph__http_session_id(ex->ms));
      } else {
        /* A failed initialize mints nothing. */
        ph__http_session_close(ex->ms);
      }
    } else if (ex->ms != NULL) {
      add_header(&h, "Mcp-Session-Id", ph__http_session_id(ex->ms));
    }
    add_cors(&h, ex->cors);
    if (ex->sse) {
      if (json != NULL)
        ph__sse_event(ex->res, NULL, json, len, 0);
      ph__http_stream_end(ex->res);
    } else if (json != NULL) {
      respond_json(ex->res, status, &h, json, len);
    } else {
      ph__http_respond(ex->res, status == 200 ? 202 : status, h.h, h.n, NULL,
                       0);
    }
    ex->res = NULL;
  }
  free(challenge);
  if (ex->modern)
    ph__session_close(ex->s); /* Its one request is answered. */
  exchange_maybe_free(ex);
}

static void ex_need_scope(ph__outlet *o, const char *scope) {
  exchange *ex = (exchange *)((char *)o - offsetof(exchange, base));

  free(ex->need_scope);
  ex->need_scope = ph__xstrdup(scope);
}

static void on_gone(ph__http_response_t *res);

static exchange *exchange_new(ph__http_response_t *res, ph__session *s,
                              ph__http_session *ms, const char *cors) {
  exchange *ex = ph__xcalloc(1, sizeof(*ex));

  ex->base.send = ex_send;
  ex->base.finish = ex_finish;
  ex->base.close_stream = ex_close_stream;
  ex->base.need_scope = ex_need_scope;
  ex->res = res;
  ex->s = s;
  ph__session_ref(s);
  if (ms != NULL) {
    ex->ms = ms;
    ph__http_session_hold(ms);
  }
  ex->cors = cors ? ph__xstrdup(cors) : NULL;
  ex->next = H.exchanges;
  if (H.exchanges != NULL)
    H.exchanges->prev = ex;
  H.exchanges = ex;
  ph__http_response_set_data(res, ex);
  ph__http_response_set_gone_cb(res, on_gone);
  return ex;
}

/* parsed: the body's parse by ph__post_read(), or NULL to have the
 * protocol parse it. */
static void exchange_run(exchange *ex, const char *body, size_t len,
                         const cJSON *parsed) {
  ex->busy = 1;
  if (parsed != NULL)
    ph__protocol_handle_parsed(ex->s, &ex->base, body, len, parsed);
  else
    ph__protocol_handle(ex->s, &ex->base, body, len);
  ex->busy = 0;
  exchange_maybe_free(ex);
}

/* An exchange's connection went before its answer (a stream's is the
 * session's, see ph__sse_stream_open()). */
static void on_gone(ph__http_response_t *res) {
  exchange *ex = ph__http_response_get_data(res);

  ph__http_response_close(res);
  ex->res = NULL;
  if (ex->answered) {
    exchange_maybe_free(ex);
    return;
  }
  ex->busy = 1;
  if (ex->modern)
    ph__session_close(ex->s); /* Closing the stream is the cancellation. */
  else
    exchange_cancel_calls(ex); /* Nothing to resume: no stream began. */
  ex->busy = 0;
  exchange_maybe_free(ex);
}

/* A legacy POST whose stream nobody resumed in time. */
static void exchange_give_up(void *feeder) {
  exchange *ex = feeder;

  ex->busy = 1;
  exchange_cancel_calls(ex);
  ex->busy = 0;
  exchange_maybe_free(ex);
}

/* ---- Request checks ---- */

/* A header the request carries exactly once: its value, NULL when it has
 * none, or `repeated` when it has more, for headers a second copy of which
 * could steer an intermediary one way while we check the other. */
static const char repeated[] = "";

static const char *single_header(const ph__http_request_t *req,
                                 const char *name) {
  size_t i, n = ph__http_request_header_count(req);
  const char *k, *v, *found = NULL;

  for (i = 0; i < n; i++) {
    ph__http_request_header_at(req, i, &k, &v);
    if ((k[0] | 0x20) != (name[0] | 0x20) || strcasecmp(k, name) != 0)
      continue;
    if (found != NULL)
      return repeated;
    found = v;
  }
  return found;
}

/* Media types (RFC 9110 8.3.1 and 12.5.1): type "/" subtype, then
 * *( OWS ";" OWS [ name "=" ( token / quoted-string ) ] ), compared by
 * type and subtype without case; of the parameters only Accept's q
 * counts. */
typedef struct media {
  const char *type, *subtype;
  size_t type_len, subtype_len;
  int q; /* weight in thousandths */
} media;

/* tchar (RFC 9110 5.6.2): ALPHA DIGIT !#$%&'*+-.^_`|~ as a bitmap of the
 * ASCII characters, since Accept and Content-Type are read on every
 * POST. */
static const uint64_t tchars[2] = {0x03ff6cfa00000000u, 0x57ffffffc7fffffeu};

static int is_tchar(unsigned char c) {
  return c < 128 && (tchars[c >> 6] >> (c & 63) & 1);
}

static const char *skip_token(const char *p) {
  while (is_tchar((unsigned char)*p))
    p++;
  return p;
}

static const char *skip_ows(const char *p) {
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ). */
static int parse_qvalue(const char *p, const char *end, int *q) {
  int v, scale = 100;

  if (p == end || (*p != '0' && *p != '1'))
    return -1;
  v = (*p++ - '0') * 1000;
  if (p < end && *p++ != '.')
    return -1;
  for (; p < end; p++) {
    if (scale == 0 || *p < '0' || *p > '9')
      return -1;
    v += (*p - '0') * scale;
    scale /= 10;
  }
  if (v > 1000)
    return -1;
  *q = v;
  return 0;
}

/* Parses the media type or range at *pp, up to a "," or the end, and
 * leaves *pp there. Returns 0, or -1 for bad syntax (then *pp is as it
 * was). */
static int parse_media(const char **pp, media *m, int with_q) {
  const char *p = skip_ows(*pp), *name, *value;

  m->type = p;
  p = skip_token(p);
  m->type_len = (size_t)(p - m->type);
  if (m->type_len == 0 || *p != '/')
    return -1;
  m->subtype = ++p;
  p = skip_token(p);
  m->subtype_len = (size_t)(p - m->subtype);
  if (m->subtype_len == 0)
    return -1;
  m->q = 1000;
  for (;;) {
    p = skip_ows(p);
    if (*p != ';')
      break;
    p = skip_ows(p + 1);
    if (*p == ';' || *p == ',' || *p == '\0')
      continue;
    name = p;
    p = skip_token(p);
    if (p == name || *p != '=')
      return -1;
    value = ++p;
    if (*p == '"') {
      for (p++; *p != '"'; p++)
        if (*p == '\0' || (*p == '\\' && *++p == '\0'))
          return -1;
      p++;
    } else {
      p = skip_token(p);
      if (p == value)
        return -1;
    }
    if (with_q && p - name == 3 && (name[0] | 0x20) == 'q' &&
        parse_qvalue(value, p, &m->q) != 0)
      return -1;
  }
  if (*p != ',' && *p != '\0')
    return -1;
  *pp = p;
  return 0;
}

static int span_is(const char *s, size_t len, const char *want, size_t n) {
  return len == n && strncasecmp(s, want, n) == 0;
}

/* A Content-Type that is application/json, with any parameters. */
static int json_media_type(const char *value) {
  media m;

  return value != NULL && parse_media(&value, &m, 0) == 0 && *value == '\0' &&
         span_is(m.type, m.type_len, "application", 11) &&
         span_is(m.subtype, m.subtype_len, "json", 4);
}

/* How specifically range m names type/subtype: 3 by both, 2 by type with
 * a wildcard subtype, 1 as the all-wildcard range, 0 not at all (a
 * wildcard type with a named subtype is no range). */
static int range_matches(const media *m, const char *type, size_t type_len,
                         const char *subtype) {
  int any_subtype = m->subtype_len == 1 && m->subtype[0] == '*';

  if (m->type_len == 1 && m->type[0] == '*')
    return any_subtype ? 1 : 0;
  if (!span_is(m->type, m->type_len, type, type_len))
    return 0;
  if (any_subtype)
    return 2;
  return span_is(m->subtype, m->subtype_len, subtype, strlen(subtype)) ? 3 : 0;
}

/* Whether an Accept value takes `type` ("application/json"): the most
 * specific range naming it has a weight above 0 (RFC 9110 12.5.1). So the
 * wildcard ranges do, "application/jsonx" and "application/json;q=0" do
 * not. Malformed elements are skipped. */
static int accepts(const char *accept, const char *type) {
  const char *slash = strchr(type, '/'), *p = accept;
  int best = 0, q = 0, level, quoted;
  media m;

  if (accept == NULL)
    return 0;
  while (*p != '\0') {
    if (*p == ',' || *p == ' ' || *p == '\t') {
      p++;
      continue;
    }
    if (parse_media(&p, &m, 1) != 0) {
      for (quoted = 0; *p != '\0' && (quoted || *p != ','); p++)
        if (*p == '"')
          quoted = !quoted;
        else if (quoted && *p == '\\' && p[1] != '\0')
          p++;
      continue;
    }
    level = range_matches(&m, type, (size_t)(slash - type), slash + 1);
    if (level > 0 && (level > best || (level == best && m.q > q))) {
      best = level;
      q = m.q;
    }
  }
  return best > 0 && q > 0;
}

/* Loopback as a Host or Origin names it: localhost, 127.0.0.1, or ::1 in
 * any of its IPv6 spellings; nothing else, not even "localhost." or
 * "127.1", which name it too but no browser page on loopback sends. */
static int loopback_host(const ph__http_authority_t *a) {
  if (a->is_ip6)
    return IN6_IS_ADDR_LOOPBACK(&a->addr6);
  return span_is(a->host, a->host_len, "localhost", 9) ||
         span_is(a->host, a->host_len, "127.0.0.1", 9);
}

/* The address we listen on, unless it is the unspecified one. */
static int bound_host(const ph__http_authority_t *a) {
  struct in6_addr bound;

  if (a->is_ip6)
    return inet_pton(AF_INET6, H.bound_ip, &bound) == 1 &&
           !IN6_IS_ADDR_UNSPECIFIED(&bound) &&
           memcmp(&bound, &a->addr6, sizeof(bound)) == 0;
  return strcmp(H.bound_ip, "0.0.0.0") != 0 &&
         span_is(a->host, a->host_len, H.bound_ip, strlen(H.bound_ip));
}

/* Host and port both equal; an absent port equals only an absent one. */
static int authority_equal(const ph__http_authority_t *a,
                           const ph__http_authority_t *b) {
  if (a->port != b->port || a->is_ip6 != b->is_ip6)
    return 0;
  if (a->is_ip6)
    return memcmp(&a->addr6, &b->addr6, sizeof(a->addr6)) == 0;
  return span_is(a->host, a->host_len, b->host, b->host_len);
}

/* Loopback and our own address with any port, or an allowed_hosts entry
 * whole ("example.com" is not "example.com:8443"), or any with "*". */
static int host_value_allowed(const char *value) {
  ph__http_authority_t a, entry;
  char **e;

  if (ph__http_authority_parse(value, strlen(value), &a) != 0)
    return 0;
  if (loopback_host(&a) || bound_host(&a))
    return 1;
  for (e = H.cfg->allowed_hosts; e != NULL && *e != NULL; e++)
    if (strcmp(*e, "*") == 0 ||
        (ph__http_authority_parse(*e, strlen(*e), &entry) == 0 &&
         authority_equal(&a, &entry)))
      return 1;
  return 0;
}

/* DNS rebinding: a Host that is not ours means a page elsewhere got the
 * browser to talk to us. The HTTP layer has checked there is one Host
 * (HTTP/1.1) and that it is an authority. */
static int host_allowed(const ph__http_request_t *req) {
  const char *header = ph__http_request_header(req, "Host");

  if (req->host == NULL)
    return 1; /* HTTP/1.0 without Host: not a browser. */
  /* An absolute-form target names the host (RFC 9112 3.2.2); a Host line
   * beside it must be ours all the same, as it had to be before. */
  return host_value_allowed(req->host) &&
         (header == NULL || header == req->host || host_value_allowed(header));
}

/* An origin as browsers serialise it (RFC 6454 6.2): scheme "://" host
 * [":" port] and nothing after; "null" and anything else is none. */
static int parse_origin(const char *text, size_t *scheme_len,
                        ph__http_authority_t *a) {
  const char *sep = strstr(text, "://"), *p, *rest;

  if (sep == NULL || sep == text)
    return -1;
  for (p = text; p < sep; p++)
    if (!(((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') ||
          (p > text && ((*p >= '0' && *p <= '9') || strchr("+-.", *p)))))
      return -1;
  *scheme_len = (size_t)(sep - text);
  rest = sep + 3;
  if (ph__http_authority_parse(rest, strlen(rest), a) != 0 || a->host_len == 0)
    return -1;
  /* Nor is an empty port ("http://localhost:") ever serialised. */
  return a->port < 0 && a->host_len != strlen(rest) ? -1 : 0;
}

/* Returns the origin to allow for CORS in *cors (NULL: none), and whether
 * the request may talk to us at all: no Origin (not a browser), an
 * allowed_origins entry (scheme, host and port equal; any with "*"), or an
 * http(s) origin on loopback. A user agent sends one Origin (RFC 6454
 * 7.3); two are refused. */
static int origin_allowed(const ph__http_request_t *req, const char **cors) {
  const char *origin = single_header(req, "Origin");
  ph__http_authority_t a, entry;
  size_t scheme_len, entry_scheme_len;
  char **e;

  *cors = NULL;
  if (origin == NULL)
    return 1;
  if (origin == repeated)
    return 0;
  for (e = H.cfg->allowed_origins; e != NULL && *e != NULL; e++)
    if (strcmp(*e, "*") == 0) {
      *cors = origin;
      return 1;
    }
  if (parse_origin(origin, &scheme_len, &a) != 0)
    return 0;
  for (e = H.cfg->allowed_origins; e != NULL && *e != NULL; e++)
    if (parse_origin(*e, &entry_scheme_len, &entry) == 0 &&
        span_is(origin, scheme_len, *e, entry_scheme_len) &&
        authority_equal(&a, &entry)) {
      *cors = origin;
      return 1;
    }
  return (span_is(origin, scheme_len, "http", 4) ||
          span_is(origin, scheme_len, "https", 5)) &&
         loopback_host(&a);
}

/* The header lookup of the 2026-07-28 rules (protocol_http.h). */
static int count_header(const void *req, const char *name, const char **value) {
  *value = single_header(req, name);
  if (*value == NULL)
    return 0;
  return *value == repeated ? 2 : 1;
}

/* ---- Endpoints ---- */

/* 429 for an initialize, as a JSON-RPC error for its id; Retry-After (in
 * seconds) when waiting is what helps. */
static void respond_too_many(ph__http_response_t *res, const char *cors,
                             const char *id_json, const char *retry_after,
                             const char *message, const char *data_json) {
  headers h = {0};
  char *text = ph__jsonrpc_error_text(id_json, PH__RPC_INTERNAL_ERROR, message,
                                      data_json);

  add_cors(&h, cors);
  add_header(&h, "Retry-After", retry_after);
  respond_json(res, 429, &h, text, strlen(text));
  free(text);
}

/* initialize outside a session: mints one if its client may open one more
 * now and the table has room. The per-client limits come first, so that a
 * client refused by them ends nobody's session. */
static void on_initialize(const ph__http_request_t *req, const cJSON *parsed,
                          ph__http_response_t *res, const char *department,
                          const char *cors, const char *principal) {
  const ph__limits *l = &H.cfg->limits;
  ph__client *c = client_of(req);
  char *id_json = NULL, msg[256], data[128], retry[24];
  uint64_t wait;
  ph__http_session *ms;
  exchange *ex;

  id_json = ph__jsonrpc_id_text(req->body, req->body_len);
  if (ph__client_members(c) >= l->max_sessions_per_client) {
    snprintf(msg, sizeof(msg),
             "Too Many Requests: this client already holds %u sessions "
             "(limits.max_sessions_per_client); end one with DELETE or let "
             "one expire",
             ph__client_members(c));
    snprintf(data, sizeof(data),
             "{\"limit\":\"max_sessions_per_client\",\"sessions\":%u}",
             ph__client_members(c));
    respond_too_many(res, cors, id_json, NULL, msg, data);
  } else if ((wait = ph__client_admit(c, uv_now(H.loop),
                                      l->session_rate_per_client,
                                      l->session_burst_per_client)) > 0) {
    snprintf(retry, sizeof(retry), "%llu",
             (unsigned long long)(wait + 999) / 1000);
    snprintf(msg, sizeof(msg),
             "Too Many Requests: this client opens sessions faster than "
             "limits.session_rate_per_client allows; retry after %s s",
             retry);
    snprintf(data, sizeof(data),
             "{\"limit\":\"session_rate_per_client\",\"retryAfterMs\":%llu}",
             (unsigned long long)wait);
    respond_too_many(res, cors, id_json, retry, msg, data);
  } else if (ph__http_sessions_make_room(c, l->max_sessions) != 0) {
    respond_error(res, cors, 503, id_json, PH__RPC_INTERNAL_ERROR,
                  "Service Unavailable: too many sessions; try again later",
                  NULL);
  } else if ((ms = ph__http_session_new(department, c)) == NULL) {
    respond_error(res, cors, 503, id_json, PH__RPC_INTERNAL_ERROR,
                  "Service Unavailable: no random source for a session id",
                  NULL);
  } else {
    ph__debug("http: session %.8s… opened for %s", ph__http_session_id(ms),
              req->remote_ip);
    /* The session is its first caller's for good (session_caller()). */
    ph__http_session_protocol(ms)->principal = ph__xstrdup_or_null(principal);
    snprintf(ph__http_session_protocol(ms)->client_address,
             sizeof(ph__http_session_protocol(ms)->client_address), "%s",
             req->remote_ip);
    ex = exchange_new(res, ph__http_session_protocol(ms), ms, cors);
    ex->minting = 1;
    exchange_run(ex, req->body, req->body_len, parsed);
  }
  free(id_json);
}

/* Whether a legacy session may serve this caller: the one that opened it
 * (the same iss, sub and key), so that a session id that leaks is no
 * use with another credential. The session then carries the latest of
 * the caller's principals, with the scopes granted now. */
static int session_caller(ph__session *s, const char *principal) {
  if (!ph__principal_same(s->principal, principal))
    return 0;
  if (principal != NULL && strcmp(s->principal, principal) != 0) {
    free(s->principal);
    s->principal = ph__xstrdup(principal);
  }
  return 1;
}

static void on_post(const ph__http_request_t *req, ph__http_response_t *res,
                    const char *department, const char *cors,
                    const char *principal) {
  const char *ctype = single_header(req, "Content-Type");
  const char *accept = ph__http_request_header(req, "Accept");
  const char *sid = ph__http_request_header(req, "Mcp-Session-Id");
  const char *hv = ph__http_request_header(req, "MCP-Protocol-Version");
  ph__http_session *ms;
  exchange *ex;
  ph__session *s;
  char *id_json = NULL;
  const char *why;
  ph__post post;

  if (!json_media_type(ctype)) {
    respond_error(res, cors, 415, NULL, PH__RPC_INVALID_REQUEST,
                  "Unsupported Media Type: send application/json", NULL);
    return;
  }
  if (sid != NULL) {
    ms = ph__http_session_find(sid);
    s = ms != NULL ? ph__http_session_protocol(ms) : NULL;
    if (s == NULL || strcmp(s->department, department) != 0 ||
        !session_caller(s, principal)) {
      respond_error(res, cors, 404, NULL, PH__RPC_SESSION_NOT_FOUND,
                    "Session not found: initialize a new session", NULL);
    } else if (hv != NULL && !ph__protocol_version_supported(hv)) {
      respond_error(res, cors, 400, NULL, PH__RPC_INVALID_REQUEST,
                    "Bad Request: unsupported MCP-Protocol-Version", NULL);
    } else if (!accepts(accept, "application/json") ||
               !accepts(accept, "text/event-stream")) {
      respond_error(res, cors, 406, NULL, PH__RPC_INVALID_REQUEST,
                    "Not Acceptable: accept both application/json and "
                    "text/event-stream",
                    NULL);
    } else {
      ex = exchange_new(res, s, ms, cors);
      ex->prime = strcmp(hv ? hv : s->version, "2025-11-25") >= 0;
      exchange_run(ex, req->body, req->body_len, NULL);
    }
    return;
  }
  /* Outside a session the body itself says which era it speaks; the
   * protocol takes the parse, so a body is parsed once. */
  switch (ph__post_read(&post, req->body, req->body_len, &H.cfg->limits, hv,
                        &why)) {
  case PH__POST_UNPARSABLE: {
    char msg[128];

    snprintf(msg, sizeof(msg), "Parse error: %s", why);
    respond_error(res, cors, 400, NULL, PH__RPC_PARSE_ERROR, msg, NULL);
    break;
  }
  case PH__POST_TOO_MANY_VALUES: {
    char msg[128];

    snprintf(msg, sizeof(msg), "Invalid Request: %s", why);
    id_json = ph__jsonrpc_id_text(req->body, req->body_len);
    respond_error(res, cors, 400, id_json, PH__RPC_INVALID_REQUEST, msg, NULL);
    free(id_json);
    break;
  }
  case PH__POST_MODERN:
    if (accept != NULL && !accepts(accept, "application/json") &&
        !accepts(accept, "text/event-stream")) {
      respond_error(res, cors, 406, NULL, PH__RPC_INVALID_REQUEST,
                    "Not Acceptable: accept application/json or "
                    "text/event-stream",
                    NULL);
    } else if (ph__post_check_headers(&post, department, count_header, req,
                                      &why) != PH__HEADERS_AGREE) {
      id_json = ph__jsonrpc_id_text(req->body, req->body_len);
      respond_error(res, cors, 400, id_json, PH__RPC_HEADER_MISMATCH, why,
                    NULL);
      free(id_json);
    } else {
      s = ph__session_new(department);
      s->modern = 1;
      snprintf(s->version, sizeof(s->version), "%s", PH__MODERN_VERSION);
      s->principal = ph__xstrdup_or_null(principal);
      snprintf(s->client_address, sizeof(s->client_address), "%s",
               req->remote_ip);
      ex = exchange_new(res, s, NULL, cors);
      ex->modern = 1;
      exchange_run(ex, req->body, req->body_len, post.body);
    }
    break;
  case PH__POST_INITIALIZE:
    if (!accepts(accept, "application/json") ||
        !accepts(accept, "text/event-stream")) {
      respond_error(res, cors, 406, NULL, PH__RPC_INVALID_REQUEST,
                    "Not Acceptable: accept both application/json and "
                    "text/event-stream",
                    NULL);
    } else {
      on_initialize(req, post.body, res, department, cors, principal);
    }
    break;
  default:
    respond_error(res, cors, 400, NULL, PH__RPC_INVALID_REQUEST,
                  "Bad Request: Mcp-Session-Id header is required (send "
                  "initialize first, or 2026-07-28 _meta)",
                  NULL);
    break;
  }
  ph__post_release(&post);
}

static void on_get(const ph__http_request_t *req, ph__http_response_t *res,
                   const char *department, const char *cors,
                   const char *principal) {
  const char *sid = ph__http_request_header(req, "Mcp-Session-Id");
  const char *last = ph__http_request_header(req, "Last-Event-ID");
  const char *accept = ph__http_request_header(req, "Accept");
  const char *hv = ph__http_request_header(req, "MCP-Protocol-Version");
  unsigned stream_id = 0, after = 0;
  ph__http_session *ms;
  ph__sse_stream *st;
  ph__session *s;

  if (sid == NULL) {
    respond_error(res, cors, 405, NULL, PH__RPC_INVALID_REQUEST,
                  "Method Not Allowed: GET needs an Mcp-Session-Id", NULL);
    return;
  }
  ms = ph__http_session_find(sid);
  s = ms != NULL ? ph__http_session_protocol(ms) : NULL;
  if (s == NULL || strcmp(s->department, department) != 0 ||
      !session_caller(s, principal)) {
    respond_error(res, cors, 404, NULL, PH__RPC_SESSION_NOT_FOUND,
                  "Session not found", NULL);
    return;
  }
  if (hv != NULL && !ph__protocol_version_supported(hv)) {
    respond_error(res, cors, 400, NULL, PH__RPC_INVALID_REQUEST,
                  "Bad Request: unsupported MCP-Protocol-Version", NULL);
    return;
  }
  if (!accepts(accept, "text/event-stream")) {
    respond_error(res, cors, 406, NULL, PH__RPC_INVALID_REQUEST,
                  "Not Acceptable: GET serves text/event-stream", NULL);
    return;
  }
  if (last != NULL && sscanf(last, "%u-%u", &stream_id, &after) != 2) {
    respond_error(res, cors, 400, NULL, PH__RPC_INVALID_REQUEST,
                  "Bad Request: Last-Event-ID is not one of ours", NULL);
    return;
  }
  ph__http_session_touch(ms);
  st = ph__sse_stream_find(ms, stream_id);
  if (st != NULL && ph__sse_stream_attached(st)) {
    respond_error(res, cors, 409, NULL, PH__RPC_INVALID_REQUEST,
                  "Conflict: this stream is already open", NULL);
    return;
  }
  begin_sse(res, ph__http_session_id(ms), cors);
  if (last != NULL)
    ph__http_session_replay(ms, res, stream_id, after);
  if (st == NULL && stream_id != 0) {
    /* That stream has ended: what the buffer held was all of it. */
    ph__http_stream_end(res);
    return;
  }
  if (st == NULL)
    st = ph__sse_stream_standalone(ms);
  if (ph__sse_stream_attach(st, res) != 0)
    return;                   /* It had ended: the replay was the rest of it. */
  ph__http_session_touch(ms); /* Busy while the stream is attached. */
  if (last == NULL && strcmp(s->version, "2025-11-25") >= 0)
    ph__sse_stream_prime(st);
}

static void on_delete(const ph__http_request_t *req, ph__http_response_t *res,
                      const char *department, const char *cors,
                      const char *principal) {
  const char *sid = ph__http_request_header(req, "Mcp-Session-Id");
  ph__http_session *ms;
  headers h = {0};

  if (sid == NULL) {
    respond_error(res, cors, 405, NULL, PH__RPC_INVALID_REQUEST,
                  "Method Not Allowed: DELETE needs an Mcp-Session-Id", NULL);
    return;
  }
  ms = ph__http_session_find(sid);
  if (ms == NULL ||
      strcmp(ph__http_session_protocol(ms)->department, department) != 0 ||
      !session_caller(ph__http_session_protocol(ms), principal)) {
    respond_error(res, cors, 404, NULL, PH__RPC_SESSION_NOT_FOUND,
                  "Session not found", NULL);
    return;
  }
  ph__http_session_close(ms);
  add_cors(&h, cors);
  ph__http_respond(res, 204, h.h, h.n, NULL, 0);
}

static void on_preflight(const ph__http_request_t *req,
                         ph__http_response_t *res, const char *cors) {
  const char *want =
      ph__http_request_header(req, "Access-Control-Request-Headers");
  headers h = {0};
  const char *p;

  if (cors == NULL) {
    respond_error(res, NULL, 403, NULL, PH__RPC_INVALID_REQUEST,
                  "Forbidden: origin not allowed", NULL);
    return;
  }
  /* Echo the asked-for headers (Mcp-Param-* are open-ended) when they are
   * plain tokens. */
  for (p = want; p != NULL && *p != '\0'; p++)
    if (!(isalnum((unsigned char)*p) || strchr("-_, ", *p) != NULL))
      want = NULL;
  add_header(&h, "Access-Control-Allow-Origin", cors);
  add_header(&h, "Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
  add_header(&h, "Access-Control-Allow-Headers",
             want ? want
                  : "Content-Type, Accept, Authorization, Mcp-Session-Id, "
                    "MCP-Protocol-Version, Mcp-Method, Mcp-Name, "
                    "Last-Event-ID");
  add_header(&h, "Access-Control-Expose-Headers",
             "Mcp-Session-Id, MCP-Protocol-Version");
  add_header(&h, "Access-Control-Max-Age", "86400");
  add_header(&h, "Vary", "Origin");
  ph__http_respond(res, 204, h.h, h.n, NULL, 0);
}

/* Ready: a generation is published, it serves every configured
 * department, every plugin instance the config names is live, and none
 * reported itself not ready (set_ready) or is an isolated one restarting.
 * The body also counts instances still draining after a reload, those
 * stuck past the drain deadline and those restarting. */
static void on_ready(ph__http_response_t *res) {
  ph__generation *gen = ph__registry_acquire();
  char *not_ready = ph__instances_not_ready(), *text;
  headers h = {0};
  const ph__dept *d;
  cJSON *body;
  size_t i;
  int ok = gen != NULL && not_ready == NULL;

  for (i = 0; gen != NULL && ok && i < H.cfg->ndepartments; i++) {
    d = ph__generation_dept(gen, H.cfg->departments[i].name);
    ok = d != NULL && (H.cfg->departments[i].all_plugins ||
                       d->ninstances >= H.cfg->departments[i].ninstances);
  }
  body = cJSON_CreateObject();
  cJSON_AddStringToObject(body, "status", ok ? "ready" : "not ready");
  if (gen != NULL)
    cJSON_AddNumberToObject(body, "generation", (double)gen->id);
  cJSON_AddNumberToObject(body, "draining", ph__instances_draining());
  cJSON_AddNumberToObject(body, "stuck", ph__instances_stuck());
  cJSON_AddNumberToObject(body, "restarting", ph__instances_restarting());
  if (not_ready != NULL)
    cJSON_AddStringToObject(body, "reason", not_ready);
  else if (!ok)
    cJSON_AddStringToObject(body, "reason",
                            gen == NULL ? "no generation published"
                                        : "a configured instance is not live");
  text = cJSON_PrintUnformatted(body);
  cJSON_Delete(body);
  ph__generation_unref(gen);
  respond_json(res, ok ? 200 : 503, &h, text, strlen(text));
  free(text);
  free(not_ready);
}

/* ---- Metrics (metrics.h) ---- */

/* Whether a stored series names a tool or an instance of gen. */
static int metrics_live(void *data, int what, const char *a, const char *b) {
  const ph__generation *gen = data;
  const ph__dept *d;
  size_t i, j;

  for (i = 0; gen != NULL && i < gen->ndepts; i++) {
    d = &gen->depts[i];
    if (a != NULL && strcmp(d->name, a) != 0)
      continue;
    if (what == PH__METRICS_LIVE_TOOL && ph__dept_lookup(d, PH__TOOL, b))
      return 1;
    for (j = 0; what == PH__METRICS_LIVE_INSTANCE && j < d->ninstances; j++)
      if (strcmp(d->instances[j]->prefix, b) == 0)
        return 1;
  }
  return 0;
}

/* The gauges read now: what the layers below hold, as this scrape finds
 * it. */
static void metrics_gauges(ph__metrics_page *p, const ph__generation *gen) {
  const ph__dept *d;
  ph_instance *inst;
  uint64_t in = 0, out = 0;
  int serving = 0, not_ready = 0, stuck = ph__instances_stuck();
  size_t i, j;

  ph__metrics_page_family(p, "plughost_generation", "gauge",
                          "The id of the published generation.");
  ph__metrics_page_sample(p, "plughost_generation", gen ? (double)gen->id : 0,
                          NULL);
  ph__metrics_page_family(p, "plughost_instance_queue_depth", "gauge",
                          "Calls waiting for a worker of the instance.");
  for (i = 0; gen != NULL && i < gen->ndepts; i++) {
    d = &gen->depts[i];
    for (j = 0; j < d->ninstances; j++) {
      inst = d->instances[j];
      serving++;
      not_ready += atomic_load(&inst->not_ready) != 0;
      ph__metrics_page_sample(p, "plughost_instance_queue_depth",
                              inst->pool ? ph__pool_queued(inst->pool) : 0,
                              "department", d->name, "instance", inst->prefix,
                              "plugin", inst->plugin->name, NULL);
    }
  }
  ph__metrics_page_family(p, "plughost_instances", "gauge",
                          "Plugin instances by state: serving (in the "
                          "published generation), not_ready (of those, "
                          "reporting not ready), restarting (isolated, "
                          "runner down), draining (retired, still busy), "
                          "stuck (draining past drain_timeout_ms).");
  ph__metrics_page_sample(p, "plughost_instances", serving, "state", "serving",
                          NULL);
  ph__metrics_page_sample(p, "plughost_instances", not_ready, "state",
                          "not_ready", NULL);
  ph__metrics_page_sample(p, "plughost_instances", ph__instances_restarting(),
                          "state", "restarting", NULL);
  ph__metrics_page_sample(p, "plughost_instances",
                          ph__instances_draining() - stuck, "state", "draining",
                          NULL);
  ph__metrics_page_sample(p, "plughost_instances", stuck, "state", "stuck",
                          NULL);
  ph__metrics_page_family(p, "plughost_calls_in_flight", "gauge",
                          "Calls started and not yet answered.");
  ph__metrics_page_sample(p, "plughost_calls_in_flight",
                          (double)ph__calls_unanswered(), NULL);
  ph__metrics_page_family(p, "plughost_http_legacy_sessions", "gauge",
                          "Legacy HTTP sessions (Mcp-Session-Id) open.");
  ph__metrics_page_sample(p, "plughost_http_legacy_sessions",
                          ph__http_sessions_count(), NULL);
  ph__http_server_bytes(&H.server, &in, &out);
  ph__metrics_page_family(p, "plughost_http_received_bytes_total", "counter",
                          "Bytes read from HTTP clients of the MCP listener.");
  ph__metrics_page_sample(p, "plughost_http_received_bytes_total", (double)in,
                          NULL);
  ph__metrics_page_family(p, "plughost_http_sent_bytes_total", "counter",
                          "Bytes written to HTTP clients of the MCP listener.");
  ph__metrics_page_sample(p, "plughost_http_sent_bytes_total", (double)out,
                          NULL);
}

/* GET /metrics: the Prometheus text format (version 0.0.4). */
static void on_metrics(ph__http_response_t *res) {
  ph__generation *gen = ph__registry_acquire();
  ph__metrics_page *p = ph__metrics_page_new();
  ph__http_header_t h[] = {
      {"Content-Type", "text/plain; version=0.0.4; charset=utf-8"},
      {"Cache-Control", "no-store"}};
  size_t len;
  char *text;

  metrics_gauges(p, gen);
  ph__metrics_page_stored(p, metrics_live, gen);
  text = ph__metrics_page_finish(p, &len);
  ph__generation_unref(gen);
  ph__http_respond(res, 200, h, 2, text, len);
  free(text);
}

/* The metrics_listen listener serves /metrics and nothing else. */
static void on_metrics_request(ph__http_server_t *server,
                               const ph__http_request_t *req,
                               ph__http_response_t *res) {
  (void)server;
  if (strcmp(req->path, "/metrics") == 0 && strcmp(req->method, "GET") == 0)
    on_metrics(res);
  else
    ph__http_respond(res, 404, NULL, 0, "Not Found\n", 10);
}

/* The department a path names, or NULL. */
static char *path_department(const char *path) {
  ph__generation *gen;
  char *name;

  if (strcmp(path, "/mcp") == 0 || strcmp(path, "/mcp/") == 0)
    return ph__xstrdup("default");
  if (strncmp(path, "/mcp/", 5) != 0 || strchr(path + 5, '/') != NULL)
    return NULL;
  gen = ph__registry_acquire();
  name =
      gen && ph__generation_dept(gen, path + 5) ? ph__xstrdup(path + 5) : NULL;
  ph__generation_unref(gen);
  return name;
}

/* ---- Authorization (README: Authorization) ---- */

#define PRM_PATH "/.well-known/oauth-protected-resource"

/* Serves a request whose caller is known: principal is its claims JSON,
 * or NULL for anonymous (or auth none). */
static void serve(const ph__http_request_t *req, ph__http_response_t *res,
                  const char *department, const char *cors,
                  const char *principal) {
  if (strcmp(req->method, "POST") == 0) {
    on_post(req, res, department, cors, principal);
  } else if (strcmp(req->method, "GET") == 0) {
    on_get(req, res, department, cors, principal);
  } else if (strcmp(req->method, "DELETE") == 0) {
    on_delete(req, res, department, cors, principal);
  } else {
    respond_error(res, cors, 405, NULL, PH__RPC_INVALID_REQUEST,
                  "Method Not Allowed", NULL);
  }
}

static void audit_refusal(const ph__department_cfg *dc,
                          const ph__http_request_t *req, const char *outcome,
                          const char *reason) {
  ph__audit_event e = {.event = "authentication",
                       .department = dc->name,
                       .outcome = outcome,
                       .reason = reason,
                       .duration_ms = -1,
                       .client = req->remote_ip};

  if (dc->auth.audit)
    ph__audit(H.cfg, &e);
}

/* A refusal with its challenge: status, WWW-Authenticate, and the reason
 * as a JSON-RPC error (id null: the body was never read). */
static void respond_challenge(ph__http_response_t *res, const char *cors,
                              int status, const char *challenge,
                              const char *message) {
  headers h = {0};
  char *text =
      ph__jsonrpc_error_text(NULL, PH__RPC_INVALID_REQUEST, message, NULL);

  add_cors(&h, cors);
  add_header(&h, "WWW-Authenticate", challenge);
  if (status == 503)
    add_header(&h, "Retry-After", "1");
  respond_json(res, status, &h, text, strlen(text));
  free(text);
}

/* 401 for a request without a bearer credential (RFC 6750 3.1: no error
 * code), naming where the metadata is and the scopes to ask for. */
static void refuse_unauthenticated(const ph__http_request_t *req,
                                   ph__http_response_t *res,
                                   const ph__department_cfg *dc,
                                   const char *cors, const char *outcome) {
  char *challenge = ph__bearer_challenge(dc, NULL, NULL, NULL);

  audit_refusal(dc, req, outcome, NULL);
  respond_challenge(res, cors, 401, challenge,
                    "Unauthorized: send Authorization: Bearer <token> (or "
                    "X-API-Key)");
  free(challenge);
}

/* A request waiting for its credential's check. Two hold it: the
 * response side, until the check answers or the connection goes first,
 * and the check, until its callback. */
typedef struct waiting {
  ph__http_response_t *res; /* NULL once the connection went. */
  char *department;
  char *cors;
  int refs;
} waiting;

static void waiting_unref(waiting *w) {
  if (--w->refs > 0)
    return;
  free(w->department);
  free(w->cors);
  free(w);
}

static void waiting_gone(ph__http_response_t *res) {
  waiting *w = ph__http_response_get_data(res);

  ph__http_response_close(res);
  w->res = NULL;
  waiting_unref(w);
}

static void on_authenticated(const ph__authn_result *r, void *data) {
  waiting *w = data;
  ph__http_response_t *res = w->res;
  const ph__http_request_t *req;
  const ph__department_cfg *dc;
  char *challenge, msg[300];

  if (res == NULL) {
    waiting_unref(w);
    return;
  }
  ph__http_response_set_data(res, NULL);
  ph__http_response_set_gone_cb(res, NULL);
  w->refs--; /* The response side's: answered below. */
  req = ph__http_response_request(res);
  /* A reload may have come meanwhile: the department as it is now. */
  dc = ph__config_department(H.cfg, w->department);
  if (dc == NULL || dc->auth.public_url == NULL) {
    respond_error(res, w->cors, 404, NULL, PH__RPC_INVALID_REQUEST,
                  "Not Found: no such endpoint", NULL);
  } else if (H.stopping) {
    respond_error(res, w->cors, 503, NULL, PH__RPC_INTERNAL_ERROR,
                  "Service Unavailable: shutting down", NULL);
  } else if (r->status == PH__AUTHN_OK) {
    serve(req, res, w->department, w->cors, r->principal);
  } else if (r->status == PH__AUTHN_INVALID) {
    audit_refusal(dc, req, "invalid_token", r->reason);
    challenge = ph__bearer_challenge(dc, NULL, "invalid_token", r->description);
    snprintf(msg, sizeof(msg), "Unauthorized: %.250s", r->description);
    respond_challenge(res, w->cors, 401, challenge, msg);
    free(challenge);
  } else if (r->status == PH__AUTHN_UNAVAILABLE) {
    audit_refusal(dc, req, "unavailable", r->reason);
    respond_error(res, w->cors, 503, NULL, PH__RPC_INTERNAL_ERROR,
                  "Service Unavailable: credentials cannot be checked now; "
                  "try again",
                  NULL);
  } else {
    audit_refusal(dc, req, "failed", NULL);
    respond_error(res, w->cors, 500, NULL, PH__RPC_INTERNAL_ERROR,
                  "Internal Server Error: the credential check failed", NULL);
  }
  waiting_unref(w);
}

/* The credential a request carries: Authorization: Bearer (the scheme in
 * any case, RFC 9110 11.1) or X-API-Key. Returns 1 with *token and
 * *scheme, 0 for none, -1 for an Authorization of another scheme, or -2
 * for one that is unusable (repeated, both headers, empty). */
static int credential(const ph__http_request_t *req, const char **token,
                      const char **scheme) {
  const char *authz = single_header(req, "Authorization");
  const char *key = single_header(req, "X-API-Key");

  if (authz == repeated || key == repeated || (authz && key))
    return -2;
  if (key != NULL) {
    *token = key;
    *scheme = "api_key";
    return *key != '\0' ? 1 : -2;
  }
  if (authz == NULL)
    return 0;
  if (strncasecmp(authz, "Bearer", 6) != 0 ||
      (authz[6] != ' ' && authz[6] != '\0'))
    return -1;
  *token = skip_ows(authz + 6);
  *scheme = "bearer";
  return **token != '\0' ? 1 : -2;
}

/* Decides who the caller of department dc is, then serves the request or
 * refuses it. The department comes first, from the path alone, so the
 * check is the one of the department that serves the request. */
static void authenticate(const ph__http_request_t *req,
                         ph__http_response_t *res, const char *department,
                         const char *cors) {
  const ph__department_cfg *dc = ph__config_department(H.cfg, department);
  const char *token = NULL, *scheme = NULL;
  char *challenge;
  waiting *w;
  int err;

  if (dc == NULL) { /* Served but not configured: never unchecked. */
    respond_error(res, cors, 404, NULL, PH__RPC_INVALID_REQUEST,
                  "Not Found: no such endpoint", NULL);
    return;
  }
  if (dc->auth.mode == PH__AUTH_NONE) {
    serve(req, res, department, cors, NULL);
    return;
  }
  switch (credential(req, &token, &scheme)) {
  case 0:
    if (dc->auth.mode == PH__AUTH_OPTIONAL)
      serve(req, res, department, cors, NULL);
    else
      refuse_unauthenticated(req, res, dc, cors, "missing_token");
    return;
  case -1:
    refuse_unauthenticated(req, res, dc, cors, "unsupported_scheme");
    return;
  case -2:
    audit_refusal(dc, req, "invalid_request", NULL);
    challenge = ph__bearer_challenge(
        dc, NULL, "invalid_request",
        "send one credential: one Authorization or one X-API-Key header");
    respond_challenge(res, cors, 400, challenge,
                      "Bad Request: send one credential");
    free(challenge);
    return;
  }
  w = ph__xcalloc(1, sizeof(*w));
  w->res = res;
  w->department = ph__xstrdup(department);
  w->cors = ph__xstrdup_or_null(cors);
  w->refs = 2;
  err = ph__authn_start(H.loop, H.cfg, dc, token, scheme, on_authenticated, w);
  if (err != 0) {
    free(w->department);
    free(w->cors);
    free(w);
    if (err == PH__ENOSERVICE)
      ph__error("department %s has auth %s but no plugin provides authn",
                dc->name,
                dc->auth.mode == PH__AUTH_REQUIRED ? "required" : "optional");
    audit_refusal(dc, req, "unavailable", ph__strerror(err));
    respond_error(res, cors, 503, NULL, PH__RPC_INTERNAL_ERROR,
                  err == UV_EBUSY
                      ? "Service Unavailable: too many credential checks "
                        "waiting; try again"
                      : "Service Unavailable: credentials cannot be checked",
                  NULL);
    return;
  }
  ph__http_response_set_data(res, w);
  ph__http_response_set_gone_cb(res, waiting_gone);
}

/* The department whose Protected Resource Metadata a well-known path
 * asks for (RFC 9728 3.1), or NULL: after the well-known prefix, the
 * path of an MCP endpoint ("/mcp", "/mcp/<name>") or of a department's
 * public_url, which a proxy in front may have chosen; with no path, the
 * default department, or the one department with auth. Compared
 * exactly, as the endpoints are. */
static const ph__department_cfg *prm_department(const char *suffix) {
  const ph__department_cfg *d, *only = NULL;
  const char *host, *path;
  size_t i, n = 0;

  if (*suffix == '\0') {
    d = ph__config_department(H.cfg, "default");
    if (d != NULL && d->auth.mode != PH__AUTH_NONE)
      return d;
    for (i = 0; i < H.cfg->ndepartments; i++)
      if (H.cfg->departments[i].auth.mode != PH__AUTH_NONE) {
        only = &H.cfg->departments[i];
        n++;
      }
    return n == 1 ? only : NULL;
  }
  for (i = 0; i < H.cfg->ndepartments; i++) {
    d = &H.cfg->departments[i];
    if (d->auth.mode == PH__AUTH_NONE)
      continue;
    if (strncmp(suffix, "/mcp", 4) == 0 &&
        ((suffix[4] == '\0' && strcmp(d->name, "default") == 0) ||
         (suffix[4] == '/' && strcmp(suffix + 5, d->name) == 0)))
      return d;
    host = strstr(d->auth.public_url, "://") + 3;
    path = host + strcspn(host, "/");
    if (*path != '\0' && strcmp(path, suffix) == 0)
      return d;
  }
  return NULL;
}

/* GET of the metadata: public, so any origin may read it. */
static void on_prm(const ph__http_request_t *req, ph__http_response_t *res) {
  const ph__department_cfg *d = prm_department(req->path + strlen(PRM_PATH));
  headers h = {0};
  char *doc;

  add_header(&h, "Access-Control-Allow-Origin", "*");
  if (d == NULL) {
    respond_error(res, NULL, 404, NULL, PH__RPC_INVALID_REQUEST,
                  "Not Found: no protected resource here", NULL);
  } else if (strcmp(req->method, "OPTIONS") == 0) {
    add_header(&h, "Access-Control-Allow-Methods", "GET, OPTIONS");
    add_header(&h, "Access-Control-Max-Age", "86400");
    ph__http_respond(res, 204, h.h, h.n, NULL, 0);
  } else if (strcmp(req->method, "GET") != 0 &&
             strcmp(req->method, "HEAD") != 0) {
    add_header(&h, "Allow", "GET, OPTIONS");
    respond_json(res, 405, &h, "{\"error\":\"method not allowed\"}", 30);
  } else {
    doc = ph__prm_document(d);
    respond_json(res, 200, &h, doc, strlen(doc));
    free(doc);
  }
}

static void on_request(ph__http_server_t *server, const ph__http_request_t *req,
                       ph__http_response_t *res) {
  const char *cors = NULL;
  headers h = {0};
  char *department;

  (void)server;
  if (!host_allowed(req)) {
    respond_error(res, NULL, 403, NULL, PH__RPC_INVALID_REQUEST,
                  "Forbidden: Host or Origin not allowed", NULL);
    return;
  }
  if (strncmp(req->path, PRM_PATH, strlen(PRM_PATH)) == 0 &&
      (req->path[strlen(PRM_PATH)] == '\0' ||
       req->path[strlen(PRM_PATH)] == '/')) {
    on_prm(req, res);
    return;
  }
  if (!origin_allowed(req, &cors)) {
    respond_error(res, NULL, 403, NULL, PH__RPC_INVALID_REQUEST,
                  "Forbidden: Host or Origin not allowed", NULL);
    return;
  }
  if (strcmp(req->path, "/health") == 0 && strcmp(req->method, "GET") == 0) {
    respond_json(res, 200, &h, "{\"status\":\"ok\"}", 15);
    return;
  }
  if (strcmp(req->path, "/ready") == 0 && strcmp(req->method, "GET") == 0) {
    on_ready(res);
    return;
  }
  if (strcmp(req->path, "/metrics") == 0 && strcmp(req->method, "GET") == 0 &&
      H.cfg->metrics) {
    on_metrics(res);
    return;
  }
  department = path_department(req->path);
  if (department == NULL) {
    respond_error(res, cors, 404, NULL, PH__RPC_INVALID_REQUEST,
                  "Not Found: no such endpoint", NULL);
    return;
  }
  if (strcmp(req->method, "OPTIONS") == 0) {
    on_preflight(req, res, cors);
  } else if (H.stopping) {
    respond_error(res, cors, 503, NULL, PH__RPC_INTERNAL_ERROR,
                  "Service Unavailable: shutting down", NULL);
  } else {
    authenticate(req, res, department, cors);
  }
  free(department);
}

/* ---- Housekeeping ---- */

/* Sessions first (see ph__http_sessions_sweep()), then the keep-alives of
 * modern streams and the clients no longer worth remembering. */
static void on_sweep(uv_timer_t *t) {
  const ph__limits *l = &H.cfg->limits;
  uint64_t now = uv_now(H.loop);
  exchange *ex;
  int keepalive = now - H.last_keepalive >= KEEPALIVE_MS;

  (void)t;
  ph__http_sessions_sweep(now, l->session_idle_ms, keepalive, exchange_give_up);
  if (keepalive) {
    H.last_keepalive = now;
    for (ex = H.exchanges; ex != NULL; ex = ex->next)
      if (ex->sse && ex->res != NULL)
        ph__http_stream_write(ex->res, ": keep-alive\n\n", 14);
  }
  ph__clients_sweep(now, l->session_rate_per_client,
                    l->session_burst_per_client);
}

/* The HTTP layer's own refusals (a body or head too large, a request too
 * slow, malformed HTTP) carry a JSON-RPC error on the MCP endpoints, where
 * clients look for one; elsewhere the status says it all. */
static char *http_error_body(int status, const char *target,
                             const char **content_type, size_t *len) {
  char msg[160], *body;
  int n;

  if (target == NULL || strncmp(target, "/mcp", 4) != 0 ||
      (target[4] != '\0' && target[4] != '/' && target[4] != '?'))
    return NULL;
  switch (status) {
  case 413:
    snprintf(msg, sizeof(msg),
             "Payload Too Large: a message may have at most %zu bytes",
             H.cfg->limits.max_message_bytes);
    break;
  case 431:
    snprintf(msg, sizeof(msg),
             "Request Header Fields Too Large: the head may have at most "
             "%zu bytes",
             H.cfg->limits.max_header_bytes);
    break;
  case 408:
    snprintf(msg, sizeof(msg), "Request Timeout: the request came too slowly");
    break;
  default:
    snprintf(msg, sizeof(msg), "Bad Request: malformed HTTP (status %d)",
             status);
    break;
  }
  n = asprintf(&body,
               "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":%d,"
               "\"message\":\"%s\"}}",
               PH__RPC_INVALID_REQUEST, msg);
  if (n < 0)
    return NULL;
  *content_type = "application/json";
  *len = (size_t)n;
  return body;
}

static void http_config_from(const ph__config *cfg, ph__http_config_t *hc) {
  ph__http_config_init(hc);
  hc->error_body = http_error_body;
  hc->max_header_bytes = cfg->limits.max_header_bytes;
  hc->max_body_bytes = cfg->limits.max_message_bytes;
  hc->max_connections = (unsigned)cfg->limits.max_connections;
  hc->header_timeout_ms = cfg->limits.header_timeout_ms;
  hc->idle_timeout_ms = cfg->limits.idle_timeout_ms;
}

/* Splits HOST:PORT ("[v6]:port" too; localhost is 127.0.0.1) into host
 * (of hostsize bytes) and *port. Returns 0 or UV_EINVAL, logged. */
static int split_listen(const char *listen, char *host, size_t hostsize,
                        int *port) {
  const char *colon = strrchr(listen, ':');
  size_t n;

  if (colon == NULL || sscanf(colon + 1, "%d", port) != 1 || *port < 0 ||
      *port > 65535) {
    ph__error("listen address \"%s\" is not HOST:PORT", listen);
    return UV_EINVAL;
  }
  n = (size_t)(colon - listen);
  if (n > 0 && listen[0] == '[' && listen[n - 1] == ']')
    listen++, n -= 2;
  if (n == 0 || n >= hostsize) {
    ph__error("listen address \"%s\" has no usable host", listen);
    return UV_EINVAL;
  }
  memcpy(host, listen, n);
  host[n] = '\0';
  if (strcmp(host, "localhost") == 0)
    snprintf(host, hostsize, "127.0.0.1");
  return 0;
}

/* metrics_listen: a second listener, so that /metrics need not be public.
 * It checks no Host: it serves nothing a browser could be tricked into
 * changing. */
static int metrics_listen(uv_loop_t *loop, const char *listen) {
  ph__http_config_t hc;
  char host[64];
  int port, err;

  if ((err = split_listen(listen, host, sizeof(host), &port)) != 0)
    return err;
  ph__http_config_init(&hc);
  err = ph__http_server_init(loop, &H.metrics_server, &hc, on_metrics_request);
  if (err == 0)
    err = ph__http_server_listen(&H.metrics_server, host, port);
  if (err != 0) {
    ph__error("cannot listen on %s (metrics_listen): %s", listen,
              uv_strerror(err));
    return err;
  }
  H.metrics_listening = 1;
  ph__info("serving metrics on http://%s:%d/metrics", host,
           ph__http_server_port(&H.metrics_server));
  return 0;
}

int ph__mcp_http_start(uv_loop_t *loop, const ph__config *cfg,
                       const char *listen) {
  ph__http_config_t hc;
  char host[64];
  int port, err;

  H.loop = loop;
  H.cfg = cfg;
  if ((err = split_listen(listen, host, sizeof(host), &port)) != 0)
    return err;
  snprintf(H.bound_ip, sizeof(H.bound_ip), "%s", host);
  http_config_from(cfg, &hc);
  err = ph__http_server_init(loop, &H.server, &hc, on_request);
  if (err == 0)
    err = ph__http_server_listen(&H.server, host, port);
  if (err != 0) {
    ph__error("cannot listen on %s: %s", listen, uv_strerror(err));
    return err;
  }
  H.listening = 1;
  ph__http_sessions_init(loop);
  uv_timer_init(loop, &H.sweep);
  uv_timer_start(&H.sweep, on_sweep, SWEEP_MS, SWEEP_MS);
  H.last_keepalive = uv_now(loop);
  ph__info("serving MCP over HTTP on http://%s%s%s:%d/mcp",
           strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
           ph__http_server_port(&H.server));
  if (cfg->metrics && cfg->metrics_listen != NULL)
    return metrics_listen(loop, cfg->metrics_listen);
  return 0;
}

int ph__mcp_http_port(void) {
  return H.listening ? ph__http_server_port(&H.server) : 0;
}

void ph__mcp_http_set_config(const ph__config *cfg) {
  if (!H.listening)
    return;
  H.cfg = cfg;
  /* Limits the HTTP layer reads on every request. */
  H.server.config.max_body_bytes = cfg->limits.max_message_bytes;
  H.server.config.max_header_bytes = cfg->limits.max_header_bytes;
  H.server.config.max_connections = (unsigned)cfg->limits.max_connections;
  H.server.config.header_timeout_ms = cfg->limits.header_timeout_ms;
  H.server.config.idle_timeout_ms = cfg->limits.idle_timeout_ms;
}

static void end_open_streams(void) {
  exchange *ex, *next;

  ph__http_sessions_end_get_streams();
  /* Listen streams end with their result. */
  for (ex = H.exchanges; ex != NULL; ex = next) {
    next = ex->next;
    if (ex->modern && ex->s->listen_outlet == &ex->base)
      ph__session_close(ex->s);
  }
}

void ph__mcp_http_stop(void) {
  if (!H.listening || H.stopping)
    return;
  H.stopping = 1;
  ph__http_server_stop(&H.server);
  end_open_streams();
  /* Nobody will poll them again, and their calls would hold up the
   * drain. */
  ph__tasks_cancel_all();
}

void ph__mcp_http_close(void) {
  exchange *ex, *next;

  if (!H.listening || H.closed)
    return;
  H.closed = 1;
  H.stopping = 1;
  ph__http_sessions_close_all();
  ph__clients_free_all();
  for (ex = H.exchanges; ex != NULL; ex = next) {
    next = ex->next;
    if (ex->modern)
      ph__session_close(ex->s);
  }
  uv_timer_stop(&H.sweep);
  uv_close((uv_handle_t *)&H.sweep, NULL);
  ph__http_server_close(&H.server, NULL);
  if (H.metrics_listening)
    ph__http_server_close(&H.metrics_server, NULL);
}
