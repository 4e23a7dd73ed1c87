/* clients.h: who is asking, so that one HTTP client cannot crowd out the
 * others. A client is a peer address: an IPv4 address, or the /64 of an
 * IPv6 one, since a single host commonly holds a whole /64 and could
 * otherwise be any number of clients. Once bearer authentication lands,
 * a principal becomes a key kind of its own.
 *
 * Each client counts the members it holds (the transport's legacy
 * sessions), keeps its idle members in least recently used order, and has
 * a token bucket for new members. A client lives while it has members and
 * then until its bucket is full again, so forgetting it gives nothing
 * away. Loop thread only. */
#ifndef PH_CLIENTS_H
#define PH_CLIENTS_H

#include "queue.h"

#include <stdint.h>
#include <sys/socket.h>

typedef struct ph__client ph__client;

enum ph__client_kind {
  PH__CLIENT_OTHER = 0, /* An address of no family we know: all share one. */
  PH__CLIENT_IPV4 = 4,  /* bytes[0..3]; IPv4-mapped IPv6 too. */
  PH__CLIENT_IPV6 = 6   /* bytes[0..7]: the /64. */
};

/* What identifies a client. Unused bytes are zero, so keys compare with
 * memcmp. */
typedef struct ph__client_key {
  unsigned char kind;     /* enum ph__client_kind. */
  unsigned char bytes[8]; /* The address, or its /64. */
} ph__client_key;

/* The key of a peer address. */
void ph__client_key_of_addr(const struct sockaddr *sa, ph__client_key *key);

/* The client with this key, made with a full bucket of `burst` tokens when
 * there is none. Borrowed: valid while it has members, and otherwise until
 * the next ph__clients_sweep(). */
ph__client *ph__client_get(const ph__client_key *key, uint64_t now_ms,
                           unsigned burst);

/* Token bucket for new members, refilled at rate_per_s up to burst: takes
 * a token and returns 0, or returns the milliseconds until one is there
 * (at least 1). rate_per_s and burst are read on every call, so a reload
 * applies at once. */
uint64_t ph__client_admit(ph__client *c, uint64_t now_ms, unsigned rate_per_s,
                          unsigned burst);

/* Members. `member` is the node the member embeds for its client (one per
 * member, initialised with ph__queue_init()); it stays the member's and is
 * only linked here. A member that joins is busy until marked idle. */
void ph__client_join(ph__client *c, ph__queue *member);
void ph__client_leave(ph__client *c, ph__queue *member);
unsigned ph__client_members(const ph__client *c);

/* A member is idle (now its client's most recently used idle member) or
 * busy (in no order; never the answer of ph__client_oldest_idle()). */
void ph__client_idle(ph__client *c, ph__queue *member);
void ph__client_busy(ph__queue *member);

/* The client's least recently used idle member, or NULL. */
ph__queue *ph__client_oldest_idle(const ph__client *c);

/* Whether c holds more members than the average client that holds any. */
int ph__client_over_share(const ph__client *c);

/* The client with the most members, or NULL when none has any. Exact after
 * a sweep and whenever a client joins past it; between sweeps, members
 * leaving may leave it a little behind, which is why callers check
 * ph__client_over_share() before acting on it. */
ph__client *ph__clients_heaviest(void);

/* Forgets clients without members whose buckets are full again, and finds
 * the heaviest client anew. Costs one pass over the clients. */
void ph__clients_sweep(uint64_t now_ms, unsigned rate_per_s, unsigned burst);

/* Number of clients known (tests and logs). */
unsigned ph__clients_count(void);

/* Forgets every client; their members must have left. */
void ph__clients_free_all(void);

#endif
