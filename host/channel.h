/* channel.h: the wire between the host and a plugin runner (runner.c), one
 * message at a time over a blocking stream socket. Generic framing plus the
 * message types both sides agree on; it knows no calls and no instances.
 *
 * A message is a fixed header (ph__wire_head: its type, a call's sequence
 * number, flags, two integers and two doubles) followed by up to
 * PH__MSG_STRS strings, each a 32-bit length, its bytes and a NUL (a
 * length of PH__WIRE_NULL is a NULL string with no bytes). Integers are in
 * host byte order: both ends are the same machine. Why not JSON for the
 * header too: a call's arguments already are JSON text, and the proxy
 * would parse and print every message twice for nothing.
 *
 * A channel carries one conversation at a time and never interleaves two:
 * the host writes a call, the runner answers with events and round trips
 * until its reply; the control channel carries what belongs to the
 * instance (logs, notifications, readiness, init). Which side may send
 * what is listed with the types below.
 *
 * Layers: the bottom of host/, beside pool.c; only alloc.h and error.h.
 * Any thread; a message belongs to one thread at a time. */
#ifndef PH_CHANNEL_H
#define PH_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

/* The descriptors a runner finds open when it starts (isolate.c sets them
 * up, runner.c expects them): the control channel, the shared page of
 * cancel flags (one uint32_t per call channel: the sequence number of its
 * call once that was cancelled) and the call channels, in order. stdin is
 * /dev/null; stdout and stderr both go to the host's log. */
#define PH__RUNNER_FD_CONTROL 3
#define PH__RUNNER_FD_CANCEL 4
#define PH__RUNNER_FD_CHANNEL 5

/* Strings a message carries at most. */
#define PH__MSG_STRS 6

/* A message larger than this is refused: the peer is broken. */
#define PH__MSG_MAX (256u << 20)

/* Length on the wire of a NULL string. */
#define PH__WIRE_NULL 0xffffffffu

enum ph__msg_type {
  /* Host -> runner, call channels. */
  PH__MSG_CALL = 1, /* num: kind (ph__wire_kind), num2: item index; flags:
                       PH__CALLF_*; s: name, a, b, c (per kind, see
                       runner.c), principal, state. */
  PH__MSG_RESULT,   /* The answer to a round trip: num: PH_E* code or 0;
                       s[0]: the text it returned, or NULL. Also on the
                       control channel for CONFIGURE. */

  /* Runner -> host, call channels. The first three end the call. */
  PH__MSG_REPLY,       /* s[0]: result JSON. */
  PH__MSG_REPLY_ERROR, /* num: code; s[0]: message, s[1]: data JSON. */
  PH__MSG_DONE,        /* The handler returned without replying (a
                          service; the host logs it). */
  PH__MSG_PROGRESS,    /* x: progress, y: total (< 0: none); s[0]: text. */
  PH__MSG_MESSAGE,     /* num: level; s[0]: logger, s[1]: data. */
  PH__MSG_SERVICE,     /* Round trip. s[0]: service, s[1]: request. */
  PH__MSG_ASK,         /* Round trip (client_request). s[0]: key, s[1]:
                          method, s[2]: params. */
  PH__MSG_SET_STATE,   /* Round trip. s[0]: state. */
  PH__MSG_CLOSE,       /* Round trip (close_stream). */

  /* Host -> runner, control channel. */
  PH__MSG_CONFIG, /* The first message: s[0]: the instance's config. */
  PH__MSG_FINI,   /* Drained: run fini and exit. */

  /* Runner -> host, control channel. */
  PH__MSG_LOG,       /* num: level; s[0]: the line. */
  PH__MSG_NOTIFY,    /* num: PH_NOTIFY_*; s[0]: uri or NULL. */
  PH__MSG_READY,     /* num: ready; s[0]: why, or NULL. */
  PH__MSG_CONFIGURE, /* During init, round trip: s[0]: tool, s[1]: JSON. */
  PH__MSG_INIT_DONE  /* num: what init returned (0: serving). */
};

/* What a PH__MSG_CALL runs, from the descriptor's tables. */
enum ph__wire_kind {
  PH__WIRE_TOOL = 1,        /* a: args. */
  PH__WIRE_RESOURCE,        /* a: uri. */
  PH__WIRE_TEMPLATE,        /* a: uri, b: vars. */
  PH__WIRE_PROMPT,          /* a: args. */
  PH__WIRE_COMPLETE_TMPL,   /* a: argument, b: value, c: context. */
  PH__WIRE_COMPLETE_PROMPT, /* The same, a prompt's complete. */
  PH__WIRE_SERVICE          /* a: service, b: request. */
};

/* PH__MSG_CALL flags. */
enum {
  PH__CALLF_PROGRESS = 1u << 0, /* The client sent a progress token. */
  PH__CALLF_INLINE = 1u << 1    /* An inline tool: the runner's loop. */
};

/* The fixed part of every message, as it travels. */
typedef struct ph__wire_head {
  uint32_t len;   /* Bytes of strings after the header. */
  uint32_t type;  /* enum ph__msg_type. */
  uint32_t seq;   /* The call it belongs to (PH__MSG_CALL's number). */
  uint32_t flags; /* Per type. */
  int64_t num, num2;
  double x, y;
} ph__wire_head;

/* A message in memory. Strings point into buf (owned) after a receive;
 * before a send they are the sender's, borrowed. */
typedef struct ph__msg {
  uint32_t type, seq, flags;
  int64_t num, num2;
  double x, y;
  const char *s[PH__MSG_STRS];
  char *buf;
} ph__msg;

/* Writes m to fd whole (retrying short writes and EINTR; no SIGPIPE).
 * Returns 0 or a negative errno (UV_EPIPE when the peer is gone). */
int ph__msg_send(int fd, const ph__msg *m);

/* Reads one message from fd, blocking until it is whole. Returns 0 with
 * *m filled (free with ph__msg_clear), UV_EOF when the peer closed between
 * messages or inside one, PH__EINVAL for a malformed or oversized one,
 * UV_ETIMEDOUT when fd has a receive timeout (SO_RCVTIMEO) that passed
 * before a message began (one that has begun is read whole), or a
 * negative errno. On an error *m is left cleared. */
int ph__msg_recv(int fd, ph__msg *m);

/* Frees what a receive allocated and zeroes m. */
void ph__msg_clear(ph__msg *m);

#endif
