/* protocol.h: MCP over JSON-RPC, both eras, independent of the transport.
 * A transport hands in each message it receives with the session it
 * belongs to and an outlet for what goes back. */
#ifndef PH_PROTOCOL_H
#define PH_PROTOCOL_H

#include "config.h"
#include "jsonrpc.h" /* What transports use of the framing. */
#include "session.h"

#include <stddef.h>

#define PH__MODERN_VERSION "2026-07-28"

/* Sets up protocol state (serverInfo, HMAC key for request state) and
 * hooks into the call layer. Loop thread, once. */
int ph__protocol_init(const ph__config *cfg);

/* Points the protocol at a new configuration after a reload (loop). */
void ph__protocol_set_config(const ph__config *cfg);

/* Handles one received message (a JSON object or, on a 2025-03-26
 * session, a batch array of at most limits.max_batch_members). Answers go
 * to `o` (see ph__outlet), every id in them as the client wrote it. Its
 * cost on the loop is bounded by max_json_values (and max_message_bytes,
 * max_batch_members). Loop thread. */
void ph__protocol_handle(ph__session *s, ph__outlet *o, const char *text,
                         size_t len);

/* The same for a message the transport has already read with
 * ph__post_read() (protocol_http.h): object is its parse of text, which
 * the caller keeps and deletes, so a body is parsed once. */
void ph__protocol_handle_parsed(ph__session *s, ph__outlet *o, const char *text,
                                size_t len, const cJSON *object);

/* Answers a message that was refused before parsing (too large): an error
 * with the given code and message, id null, finished with outcome
 * (enum ph__outcome). */
void ph__protocol_reject(ph__outlet *o, int outcome, int code,
                         const char *message);

/* Whether a principal (claims JSON or NULL) holds `scope`. */
int ph__principal_has_scope(const char *principal, const char *scope);

/* Whether a legacy version string is one we speak. */
int ph__protocol_version_supported(const char *version);

/* Tells every session whose department lists changed (used by reload).
 * kinds: bit (1 << PH__TOOL) etc. */
void ph__protocol_lists_changed(const char *department, unsigned kinds);

#endif
