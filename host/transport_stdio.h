/* transport_stdio.h: MCP over stdin/stdout, one JSON message per line.
 * Nothing but JSON-RPC goes to stdout; the log goes to stderr. */
#ifndef PH_TRANSPORT_STDIO_H
#define PH_TRANSPORT_STDIO_H

#include "config.h"

#include <uv.h>

/* Starts reading stdin on loop for `department`. on_end runs once when
 * stdin ends or fails (status 0), or when the client is refused before
 * anything is read, its PLUGHOST_TOKEN not accepted (status 1, logged
 * here); the caller then shuts down and exits with status. */
int ph__stdio_start(uv_loop_t *loop, const ph__config *cfg,
                    const char *department, void (*on_end)(int status));

/* Uses a new configuration's limits after a reload. */
void ph__stdio_set_config(const ph__config *cfg);

/* Stops reading; pending writes still flush. */
void ph__stdio_stop(void);

/* Closes the handles (after the loop has no more calls to answer). */
void ph__stdio_close(void);

#endif
