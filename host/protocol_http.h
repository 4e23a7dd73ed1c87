/* protocol_http.h: what MCP's HTTP binding asks of a message, kept on the
 * protocol's side of the transport: which era a POST that names no session
 * speaks, and whether a 2026-07-28 request's headers (MCP-Protocol-Version,
 * Mcp-Method, Mcp-Name, Mcp-Param-*) agree with its body, the last by the
 * x-mcp-header marks of the tool's input schema in the current generation.
 *
 * The transport hands in the body and, through a lookup, the header
 * values, and gets meanings back (enum ph__post_kind, enum
 * ph__header_verdict, a message) that it maps onto HTTP statuses; it walks
 * no JSON and no registry for them. Loop thread. */
#ifndef PH_PROTOCOL_HTTP_H
#define PH_PROTOCOL_HTTP_H

#include "config.h"

#include <cJSON.h>
#include <stddef.h>

/* What a POST outside a session is. */
enum ph__post_kind {
  PH__POST_UNPARSABLE,      /* Not a JSON message we parse: a parse error. */
  PH__POST_TOO_MANY_VALUES, /* JSON past limits.max_json_values, unparsed. */
  PH__POST_MODERN,          /* A 2026-07-28 request or notification. */
  PH__POST_INITIALIZE,      /* A legacy initialize: it may open a session. */
  PH__POST_NEEDS_SESSION,   /* Anything else, which only a session takes. */
};

/* A POST body read by ph__post_read(); the caller keeps it (on its stack)
 * and ends it with ph__post_release(). */
typedef struct ph__post {
  int kind;           /* enum ph__post_kind. */
  const char *method; /* The method, or NULL; borrowed from body. */
  const char *name;   /* Its params' name (tools/call, prompts/get), uri
                         (resources/read) or taskId (tasks/get, update,
                         cancel), or NULL; borrowed from body. */
  cJSON *body;        /* This file's: the parsed body, or NULL. */
} ph__post;

/* Reads a POST body that names no session: parses it as the protocol
 * will (ph__json_parse_message() within limits' max_json_depth and
 * max_json_values; the protocol then takes the parse, see
 * ph__protocol_handle_parsed()) and says which
 * era it speaks: modern when it is an object whose _meta names
 * io.modelcontextprotocol/protocolVersion, or version_header (the
 * MCP-Protocol-Version the request carries first, or NULL) is no legacy
 * version we speak. Returns p->kind; for PH__POST_UNPARSABLE and
 * PH__POST_TOO_MANY_VALUES *why is a reason. */
int ph__post_read(ph__post *p, const char *text, size_t len,
                  const ph__limits *limits, const char *version_header,
                  const char **why);

void ph__post_release(ph__post *p);

/* How the rules read the request's headers: sets *value to the value of
 * header `name` (any case) and returns how many the request carries (0, 1,
 * or 2 for more; *value is meaningful only for 1). */
typedef int (*ph__header_lookup)(const void *ctx, const char *name,
                                 const char **value);

enum ph__header_verdict {
  PH__HEADERS_AGREE,
  /* 2026-07-28 HeaderMismatch (PH__RPC_HEADER_MISMATCH, HTTP 400). */
  PH__HEADERS_MISMATCH
};

/* The 2026-07-28 header rules for a PH__POST_MODERN body of a request to
 * `department`: MCP-Protocol-Version once and equal to _meta's; Mcp-Method
 * once and equal to the method; Mcp-Name equal to p->name where the method
 * has one; and for tools/call, an Mcp-Param-<Name> mirroring each argument
 * with a value whose schema property is marked x-mcp-header. Values
 * "=?base64?...?=" are Base64 of UTF-8. Returns a verdict; for a mismatch
 * *why is a static message saying which. */
int ph__post_check_headers(const ph__post *p, const char *department,
                           ph__header_lookup get, const void *ctx,
                           const char **why);

#endif
