/* jsonrpc.h: JSON-RPC 2.0 framing, below MCP: the structural precheck every
 * received message passes before cJSON sees it, the message parse, values
 * read as the client wrote them (ids, progress tokens), the error message,
 * batch scanning and the assembly of a batch's answer, and the error codes
 * JSON-RPC and MCP define. Nothing here knows eras, methods or HTTP.
 *
 * Layers: above outlet.h (a batch's answer goes to one); below the
 * protocol and the transports. Pure functions but the batch, which is loop
 * thread only like the outlets it wraps. */
#ifndef PH_JSONRPC_H
#define PH_JSONRPC_H

#include "outlet.h"

#include <cJSON.h>
#include <stddef.h>

/* Error codes: JSON-RPC 2.0's and MCP's (sdk/include/plughost.h has the
 * ones plugins use, PH_RPC_*, with the same values). */
#define PH__RPC_PARSE_ERROR (-32700)
#define PH__RPC_INVALID_REQUEST (-32600)
#define PH__RPC_METHOD_NOT_FOUND (-32601)
#define PH__RPC_INVALID_PARAMS (-32602)
#define PH__RPC_INTERNAL_ERROR (-32603)
/* Legacy HTTP: the Mcp-Session-Id names no session (ours, not the spec's). */
#define PH__RPC_SESSION_NOT_FOUND (-32001)
/* Legacy eras only: resources/read of an unknown URI. */
#define PH__RPC_RESOURCE_NOT_FOUND (-32002)
/* 2026-07-28: HeaderMismatch, MissingRequiredClientCapability,
 * UnsupportedProtocolVersion. */
#define PH__RPC_HEADER_MISMATCH (-32020)
#define PH__RPC_MISSING_CAPABILITY (-32021)
#define PH__RPC_UNSUPPORTED_VERSION (-32022)

/* A JSON-RPC error message as text (malloc'd); id_json NULL gives
 * "id":null, data_json may be NULL. */
char *ph__jsonrpc_error_text(const char *id_json, int code, const char *message,
                             const char *data_json);

/* Checks that text is valid UTF-8 without raw control characters (but
 * whitespace outside strings) or \u0000, balances its strings and brackets
 * and nests at most max_depth deep. Returns NULL or a static reason. */
const char *ph__json_precheck(const char *text, size_t len, int max_depth);

/* Parses text that ph__json_precheck() passed: cJSON, and nothing but
 * whitespace after the value. Returns the tree (the caller deletes it), or
 * NULL with a static reason in *why. */
cJSON *ph__json_parse_prechecked(const char *text, size_t len,
                                 const char **why);

/* Refuses text that holds more than max_values values (a container, its
 * members and elements each count one): cJSON spends a node and tens of
 * nanoseconds on each, so the count, not the size, bounds what one message
 * costs the loop to parse, walk and free. Text shorter than 2 * max_values
 * bytes cannot hold more and is not scanned. For text the precheck passed;
 * returns NULL or a reason (thread-local, valid until the next call). */
const char *ph__json_check_values(const char *text, size_t len, int max_values);

/* The precheck, the values check, then ph__json_parse_prechecked(). */
cJSON *ph__json_parse_message(const char *text, size_t len, int max_depth,
                              int max_values, const char **why);

/* The "id" of a message that ph__json_parse_message() accepted, as the
 * client wrote it (malloc'd), if it is a string or a number; else NULL. */
char *ph__jsonrpc_id_text(const char *text, size_t len);

/* Values as the client wrote them, in text the precheck passed (cJSON
 * would round integers past 2^53 and re-escape strings). They copy and
 * build nothing. */

/* Past JSON whitespace from p. */
const char *ph__jsonrpc_skip_space(const char *p, const char *end);

/* The value of the first member called key of the object whose text is
 * obj..end (cJSON too takes the first of equal keys), or NULL; its end
 * goes to *vend. obj NULL or not an object: NULL. */
const char *ph__jsonrpc_member(const char *obj, const char *end,
                               const char *key, const char **vend);

/* What the value v..e is as an id (v NULL: PH__ID_NONE). */
enum {
  PH__ID_NONE,
  PH__ID_OTHER, /* null, true, an array, numbers JSON does not allow. */
  PH__ID_STRING,
  PH__ID_INTEGER, /* A number whose value is an integer: 1e3, 2.0. */
  PH__ID_FRACTION
};
int ph__jsonrpc_id_kind(const char *v, const char *e);

/* A request id: a string or an integer (MCP allows no other). */
int ph__jsonrpc_id_serves(int kind);
/* An id worth echoing on an error: any string or number (JSON-RPC's). */
int ph__jsonrpc_id_echoes(int kind);

/* The text of the value at path (member names, NULL-terminated) in the
 * object text..end, if ph__jsonrpc_id_echoes() takes it; else NULL. */
const char *ph__jsonrpc_value_at(const char *text, const char *end,
                                 const char *const *path, const char **vend);

/* Batches. The next member of the array whose text goes on at *at (past
 * its "[" or a comma), or NULL after the last; its end goes to *mend and
 * *at moves past it and its comma. */
const char *ph__jsonrpc_next_member(const char **at, const char *end,
                                    const char **mend);

/* The members of the array at text, counted up to max + 1, before any
 * parse. */
int ph__jsonrpc_batch_members(const char *text, const char *end, int max);

/* A batch's answer, assembled from its members' and finished on parent
 * once every member has finished and ph__jsonrpc_batch_started() ran. At
 * most room bytes of answers; past that a member gets a short error. */
typedef struct ph__jsonrpc_batch ph__jsonrpc_batch;
ph__jsonrpc_batch *ph__jsonrpc_batch_new(ph__outlet *parent, size_t room,
                                         int members);
/* The outlet of the next member (freed when it finishes). */
ph__outlet *ph__jsonrpc_batch_part(ph__jsonrpc_batch *b);
/* Every member has been handed its outlet; frees b once all finish. */
void ph__jsonrpc_batch_started(ph__jsonrpc_batch *b);

#endif
