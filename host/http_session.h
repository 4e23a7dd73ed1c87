/* http_session.h: the legacy sessions of the Streamable HTTP transport
 * (2024-11-05 to 2025-11-25): the table of them by Mcp-Session-Id, its
 * least recently used lists, their SSE streams and the bounded replay
 * buffer each session keeps of what its streams sent, for Last-Event-ID.
 *
 * A session wraps the protocol's session (session.h) with what only HTTP
 * needs. It lives while the table or an exchange (the transport's POST)
 * holds it. It is busy while an exchange holds it or one of its streams
 * has a connection attached, else idle; only idle sessions expire or are
 * ended to make room, and idle ones are also kept in order per client
 * (clients.h) for the per-client limits.
 *
 * A stream is one SSE stream of a session: the standalone GET stream (id
 * 0) or a POST's (ids from 1). Its events carry ids "<stream>-<seq>"; its
 * connection may come and go, and it outlives the POST that fed it until
 * the client has read its end. Loop thread only. */
#ifndef PH_HTTP_SESSION_H
#define PH_HTTP_SESSION_H

#include "clients.h"
#include "http.h"
#include "session.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ph__http_session ph__http_session;
typedef struct ph__sse_stream ph__sse_stream;

/* Once, before the first session: the loop whose clock says when a
 * session was last used. */
void ph__http_sessions_init(uv_loop_t *loop);

/* A new session in `department` for client c, which it joins: in the
 * table (its one reference) and idle. Returns NULL when the random source
 * for its id fails. Its protocol session sends unsolicited messages on its
 * GET stream. */
ph__http_session *ph__http_session_new(const char *department, ph__client *c);

/* The session with this Mcp-Session-Id, or NULL (also once it ended).
 * Borrowed. */
ph__http_session *ph__http_session_find(const char *id);

/* Makes room for one more session of client c in a table of at most
 * `max` (also when a reload left it over full) by ending idle sessions,
 * never busy ones. Each time the one to end is the least recently used
 * idle session of
 *   1. c itself, when c holds more than its share of the table;
 *   2. else the heaviest client, when it holds more than its share;
 *   3. else the whole table.
 * So a flood ends the flooder's own sessions, and a client within its
 * share loses an idle session to another's request only when it is the
 * least recently used of all and the heaviest client has none to give.
 * Returns 0, or -1 when every session is busy. */
int ph__http_sessions_make_room(ph__client *c, int max);

/* Sessions in the table now (the metrics' gauge). */
int ph__http_sessions_count(void);

/* Ends a session: its protocol session closes (its calls are cancelled,
 * so their exchanges finish), its streams end and are freed, its id is
 * found no more. The table's reference goes; exchanges keep theirs. */
void ph__http_session_close(ph__http_session *ms);

/* An exchange begins on the session: a reference, and busy until the
 * matching ph__http_session_release(), which may free it. */
void ph__http_session_hold(ph__http_session *ms);
void ph__http_session_release(ph__http_session *ms);

/* Marks the session used now and files it as busy or idle. Called
 * whenever a session is used or stops being busy. */
void ph__http_session_touch(ph__http_session *ms);

/* Its Mcp-Session-Id (32 hex digits), its protocol session (borrowed,
 * valid while the session is held), and whether it has ended. */
const char *ph__http_session_id(const ph__http_session *ms);
ph__session *ph__http_session_protocol(const ph__http_session *ms);
int ph__http_session_closed(const ph__http_session *ms);

/* Writes to res, as SSE events, what the replay buffer holds of stream
 * stream_id after event `after`. */
void ph__http_session_replay(const ph__http_session *ms,
                             ph__http_response_t *res, unsigned stream_id,
                             unsigned after);

/* Once a second: ends idle sessions unused for more than idle_ms (oldest
 * first; the pass stops at the first still within it), then walks the
 * busy ones: with `keepalive` it writes an SSE comment on every attached
 * stream, and a POST whose stream stayed detached longer than the resume
 * grace period is given up, give_up(feeder), as nobody is left to read
 * it. A pass costs what expires plus what is busy, not the whole table. */
void ph__http_sessions_sweep(uint64_t now, uint64_t idle_ms, int keepalive,
                             void (*give_up)(void *feeder));

/* Shutdown: ends the connection of every GET stream. */
void ph__http_sessions_end_get_streams(void);

/* Ends every session. */
void ph__http_sessions_close_all(void);

/* A new stream of the session for the POST `feeder`, with the next id,
 * attached to res (whose data and gone callback become the stream's). The
 * caller begins the SSE response. Borrowed, valid until the session ends
 * or ph__sse_stream_finish() frees it. */
ph__sse_stream *ph__sse_stream_open(ph__http_session *ms,
                                    ph__http_response_t *res, void *feeder);

/* The session's standalone GET stream (id 0), made when there is none. */
ph__sse_stream *ph__sse_stream_standalone(ph__http_session *ms);

/* The session's stream `id`, or NULL: never begun, freed, or the session
 * ended. */
ph__sse_stream *ph__sse_stream_find(const ph__http_session *ms, unsigned id);

unsigned ph__sse_stream_id(const ph__sse_stream *st);

/* Whether a connection is attached to the stream. */
int ph__sse_stream_attached(const ph__sse_stream *st);

/* Attaches a GET's response, whose SSE response the caller has begun.
 * Returns 0, or 1 when the stream had already sent its answer: then res
 * is ended and the stream freed. */
int ph__sse_stream_attach(ph__sse_stream *st, ph__http_response_t *res);

/* Sends a message: numbered, kept for replay, written when a connection
 * is attached. */
void ph__sse_stream_emit(ph__sse_stream *st, const char *json, size_t len);

/* The SEP-1699 priming event: the current id, no data, and the retry
 * delay, so the client knows where and when to resume. */
void ph__sse_stream_prime(ph__sse_stream *st);

/* SEP-1699 polling: primes the stream and ends its connection, not the
 * stream. */
void ph__sse_stream_detach(ph__sse_stream *st);

/* The POST's answer: json (unless NULL) is the stream's last message and
 * the stream has no feeder any more. With a connection attached, that
 * connection ends and the stream is freed; a detached stream stays until
 * the client resumes it or the session ends, so the answer can still be
 * replayed. */
void ph__sse_stream_finish(ph__sse_stream *st, const char *json, size_t len);

/* Writes one SSE event on res: the retry delay when `retry`, the id
 * unless it is NULL, then the data, split into data lines so that the
 * framing holds whatever the payload is. */
void ph__sse_event(ph__http_response_t *res, const char *id, const char *data,
                   size_t len, int retry);

#endif
