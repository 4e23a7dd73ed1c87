/* audit.h: the audit trail. One JSON line per tools/call and per refused
 * authentication, for a department with audit on (config.h): when, who
 * (the principal's sub and tenant), where (department, client address),
 * what (the tool and the SHA-256 of its arguments as the client wrote
 * them), how it ended and how long it took. Never a token, a password or
 * an argument's value: the hash lets an investigator match arguments
 * they hold without the trail holding them.
 *
 * Lines go to the file audit_log names (opened for appending, mode 0600,
 * reopened when a reload names another) or to stderr. Each line is one
 * write(2) on a descriptor opened with O_APPEND, so lines from one
 * process never interleave. A failed write is logged once and the call
 * goes on: the trail does not take the service down.
 *
 * Layers: above config.h and log.h; below the protocol and the
 * transports. Loop thread. */
#ifndef PH_AUDIT_H
#define PH_AUDIT_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>

/* One line's facts; NULL members are written as null (or left out). */
typedef struct ph__audit_event {
  const char *event;      /* "tools/call" or "authentication". */
  const char *principal;  /* Claims JSON, or NULL for anonymous. */
  const char *department; /* The department it was for. */
  const char *tool;       /* tools/call: the exposed name. */
  const char *args;       /* tools/call: the arguments' text, hashed. */
  size_t args_len;
  const char *outcome; /* "ok", "tool_error", "error", "forbidden", ... */
  const char *reason;  /* Why, for refusals: authn's reason, a scope. */
  double duration_ms;  /* < 0: not measured. */
  const char *client;  /* The peer address, or "stdio", or NULL. */
} ph__audit_event;

/* Writes the line for e to cfg->audit_log or stderr. */
void ph__audit(const ph__config *cfg, const ph__audit_event *e);

/* The SHA-256 of len bytes at data, as 64 hex digits and a NUL. Any
 * thread. */
void ph__audit_sha256(const char *data, size_t len, char out[65]);

/* Closes the audit file (at exit). */
void ph__audit_close(void);

#endif
