/* clients.c: see clients.h. */
#include "clients.h"

#include "alloc.h"

#include <math.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

/* Clients are few next to sessions (one per address), so a fixed table
 * keeps chains short for thousands of them. */
#define CLIENT_BUCKETS 4096

struct ph__client {
  ph__client *hnext; /* Hash chain. */
  ph__client_key key;
  unsigned members;     /* Members that joined and have not left. */
  ph__queue idle;       /* Idle members, most recently used first. */
  double tokens;        /* The bucket, refilled up to the burst. */
  uint64_t refilled_ms; /* When the tokens were last brought up to date. */
};

static struct {
  ph__client *buckets[CLIENT_BUCKETS];
  unsigned count;       /* Clients in the table. */
  unsigned active;      /* Clients with members. */
  unsigned members;     /* Members of all clients. */
  ph__client *heaviest; /* See ph__clients_heaviest(). */
  uint32_t seed;        /* Keeps chosen addresses from sharing a chain. */
  int seeded;
} C;

void ph__client_key_of_addr(const struct sockaddr *sa, ph__client_key *key) {
  const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
  const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;

  memset(key, 0, sizeof(*key));
  if (sa->sa_family == AF_INET) {
    key->kind = PH__CLIENT_IPV4;
    memcpy(key->bytes, &in4->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6 &&
             IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
    /* A dual-stack listener sees IPv4 clients this way. */
    key->kind = PH__CLIENT_IPV4;
    memcpy(key->bytes, in6->sin6_addr.s6_addr + 12, 4);
  } else if (sa->sa_family == AF_INET6) {
    key->kind = PH__CLIENT_IPV6;
    memcpy(key->bytes, in6->sin6_addr.s6_addr, 8);
  }
}

static unsigned hash_key(const ph__client_key *key) {
  const unsigned char *p = (const unsigned char *)key;
  uint32_t h = 2166136261u ^ C.seed;
  size_t i;

  for (i = 0; i < sizeof(*key); i++)
    h = (h ^ p[i]) * 16777619u;
  return h % CLIENT_BUCKETS;
}

ph__client *ph__client_get(const ph__client_key *key, uint64_t now_ms,
                           unsigned burst) {
  ph__client *c;
  unsigned b;

  if (!C.seeded) {
    if (RAND_bytes((unsigned char *)&C.seed, sizeof(C.seed)) != 1)
      C.seed = 0;
    C.seeded = 1;
  }
  b = hash_key(key);
  for (c = C.buckets[b]; c != NULL; c = c->hnext)
    if (memcmp(&c->key, key, sizeof(*key)) == 0)
      return c;
  c = ph__xcalloc(1, sizeof(*c));
  c->key = *key;
  ph__queue_init(&c->idle);
  c->tokens = burst;
  c->refilled_ms = now_ms;
  c->hnext = C.buckets[b];
  C.buckets[b] = c;
  C.count++;
  return c;
}

static void refill(ph__client *c, uint64_t now_ms, unsigned rate_per_s,
                   unsigned burst) {
  if (now_ms > c->refilled_ms)
    c->tokens += (double)(now_ms - c->refilled_ms) * rate_per_s / 1000.0;
  if (c->tokens > burst)
    c->tokens = burst; /* Also when a reload lowered the burst. */
  c->refilled_ms = now_ms;
}

uint64_t ph__client_admit(ph__client *c, uint64_t now_ms, unsigned rate_per_s,
                          unsigned burst) {
  double wait;

  refill(c, now_ms, rate_per_s, burst);
  if (c->tokens >= 1) {
    c->tokens -= 1;
    return 0;
  }
  wait = ceil((1 - c->tokens) * 1000.0 / rate_per_s);
  return wait < 1 ? 1 : (uint64_t)wait;
}

void ph__client_join(ph__client *c, ph__queue *member) {
  ph__queue_remove(member);
  if (c->members++ == 0)
    C.active++;
  C.members++;
  if (C.heaviest == NULL || c->members > C.heaviest->members)
    C.heaviest = c;
}

void ph__client_leave(ph__client *c, ph__queue *member) {
  ph__queue_remove(member);
  if (--c->members == 0)
    C.active--;
  C.members--;
}

unsigned ph__client_members(const ph__client *c) {
  return c->members;
}

void ph__client_idle(ph__client *c, ph__queue *member) {
  ph__queue_insert_head(&c->idle, member);
}

void ph__client_busy(ph__queue *member) {
  ph__queue_remove(member);
}

ph__queue *ph__client_oldest_idle(const ph__client *c) {
  return ph__queue_tail(&c->idle);
}

int ph__client_over_share(const ph__client *c) {
  return (uint64_t)c->members * C.active > C.members;
}

ph__client *ph__clients_heaviest(void) {
  return C.heaviest != NULL && C.heaviest->members > 0 ? C.heaviest : NULL;
}

void ph__clients_sweep(uint64_t now_ms, unsigned rate_per_s, unsigned burst) {
  ph__client **p, *c;
  unsigned b;

  C.heaviest = NULL;
  for (b = 0; b < CLIENT_BUCKETS; b++) {
    for (p = &C.buckets[b]; (c = *p) != NULL;) {
      if (c->members == 0) {
        refill(c, now_ms, rate_per_s, burst);
        if (c->tokens >= burst) {
          *p = c->hnext;
          C.count--;
          free(c);
          continue;
        }
      }
      if (c->members > 0 &&
          (C.heaviest == NULL || c->members > C.heaviest->members))
        C.heaviest = c;
      p = &c->hnext;
    }
  }
}

unsigned ph__clients_count(void) {
  return C.count;
}

void ph__clients_free_all(void) {
  ph__client *c;
  unsigned b;

  for (b = 0; b < CLIENT_BUCKETS; b++) {
    while ((c = C.buckets[b]) != NULL) {
      C.buckets[b] = c->hnext;
      free(c);
    }
  }
  C.count = C.active = C.members = 0;
  C.heaviest = NULL;
}
