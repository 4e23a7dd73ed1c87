/* transport_http.h: MCP over Streamable HTTP, both eras on one endpoint per
 * department (/mcp for "default", /mcp/<department> for the others), on
 * top of the plain HTTP server in http.h. It owns the legacy sessions
 * (Mcp-Session-Id, idle TTL, hard cap, per-client limits, DELETE), SSE
 * framing with event ids and a replay buffer per session (Last-Event-ID),
 * the standalone GET stream, the modern per-request sessions with their
 * header checks, the Host/Origin checks, CORS, /health, /ready and
 * /metrics (also on metrics_listen, a listener of its own). */
#ifndef PH_TRANSPORT_HTTP_H
#define PH_TRANSPORT_HTTP_H

#include "config.h"

#include <uv.h>

/* Binds `listen` ("HOST:PORT", "[V6]:PORT"; port 0 picks a free one) and
 * starts serving, and binds cfg->metrics_listen when set. Returns 0 or a
 * negative libuv error (logged). */
int ph__mcp_http_start(uv_loop_t *loop, const ph__config *cfg,
                       const char *listen);

/* The bound port, or 0 when not listening. */
int ph__mcp_http_port(void);

/* Uses a new configuration (limits, allowed hosts and origins) after a
 * reload. The listening address and the HTTP parser limits stay. */
void ph__mcp_http_set_config(const ph__config *cfg);

/* Stops accepting work: new connections get 503 and open SSE streams are
 * ended; calls in flight still get their answers. */
void ph__mcp_http_stop(void);

/* Ends every session (cancelling its calls) and closes the server. */
void ph__mcp_http_close(void);

#endif
