/* protocol.h: MCP over JSON-RPC, both eras, independent of the transport.
 * A transport hands in each message it receives with the session it
 * belongs to and an outlet for what goes back. */
#ifndef PH_PROTOCOL_H
#define PH_PROTOCOL_H

#include "config.h"
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
 * cost on the loop is bounded by max_message_bytes and max_batch_members.
 * Loop thread. */
void ph__protocol_handle(ph__session *s, ph__outlet *o, const char *text,
                         size_t len);

/* A JSON-RPC error message as text (malloc'd); id_json NULL gives
 * "id":null, data_json may be NULL. */
char *ph__jsonrpc_error_text(const char *id_json, int code, const char *message,
                             const char *data_json);

/* Answers a message that was refused before parsing (too large): an error
 * with the given code and message, id null. */
void ph__protocol_reject(ph__outlet *o, int status, int code,
                         const char *message);

/* Checks that text is valid UTF-8 without raw control characters (but
 * whitespace outside strings) or \u0000, balances its strings and brackets
 * and nests at most max_depth deep. Returns NULL or a static reason. */
const char *ph__json_precheck(const char *text, size_t len, int max_depth);

/* Parses a message as ph__protocol_handle() does: the precheck, cJSON, and
 * nothing but whitespace after the value. Returns the tree (the caller
 * deletes it), or NULL with a static reason in *why. */
cJSON *ph__json_parse_message(const char *text, size_t len, int max_depth,
                              const char **why);

/* The "id" of a message that ph__json_parse_message() accepted, as the
 * client wrote it (malloc'd), if it is a string or a number; else NULL. */
char *ph__jsonrpc_id_text(const char *text, size_t len);

/* Whether a principal (claims JSON or NULL) holds `scope`. */
int ph__principal_has_scope(const char *principal, const char *scope);

/* Whether a legacy version string is one we speak. */
int ph__protocol_version_supported(const char *version);

/* Tells every session whose department lists changed (used by reload).
 * kinds: bit (1 << PH__TOOL) etc. */
void ph__protocol_lists_changed(const char *department, unsigned kinds);

#endif
