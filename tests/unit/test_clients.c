/* test_clients.c: the HTTP client table: which peer addresses are one
 * client (an IPv4 address, an IPv6 /64), the token bucket for new
 * sessions, members in least recently used order, shares, and when a
 * client is forgotten. Time is passed in, so nothing here sleeps. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "clients.h"

static void fini(void) {
  ph__clients_free_all();
}

TestSuite(clients, .fini = fini);

static ph__client_key key4(const char *ip) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  ph__client_key k;

  cr_assert_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
  ph__client_key_of_addr((struct sockaddr *)&a, &k);
  return k;
}

static ph__client_key key6(const char *ip) {
  struct sockaddr_in6 a = {.sin6_family = AF_INET6};
  ph__client_key k;

  cr_assert_eq(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
  ph__client_key_of_addr((struct sockaddr *)&a, &k);
  return k;
}

static int same(ph__client_key a, ph__client_key b) {
  return memcmp(&a, &b, sizeof(a)) == 0;
}

Test(clients, an_ipv4_address_is_a_client) {
  cr_expect(same(key4("192.0.2.1"), key4("192.0.2.1")));
  cr_expect(!same(key4("192.0.2.1"), key4("192.0.2.2")));
  cr_expect_eq(key4("192.0.2.1").kind, PH__CLIENT_IPV4);
}

Test(clients, an_ipv6_64_is_a_client) {
  cr_expect(same(key6("2001:db8:1:2::1"), key6("2001:db8:1:2:ffff::9")));
  cr_expect(!same(key6("2001:db8:1:2::1"), key6("2001:db8:1:3::1")));
  cr_expect_eq(key6("2001:db8::1").kind, PH__CLIENT_IPV6);
}

Test(clients, a_mapped_ipv4_address_is_that_address) {
  cr_expect(same(key6("::ffff:192.0.2.1"), key4("192.0.2.1")));
  cr_expect(!same(key6("::ffff:192.0.2.1"), key4("192.0.2.2")));
  /* Neither is an IPv6 client whose /64 happens to start alike. */
  cr_expect(!same(key6("::ffff:192.0.2.1"), key6("::1")));
}

Test(clients, get_finds_the_same_client) {
  ph__client_key a = key4("192.0.2.1"), b = key6("2001:db8::1");
  ph__client *ca = ph__client_get(&a, 0, 5), *cb = ph__client_get(&b, 0, 5);

  cr_assert(ca != NULL && cb != NULL && ca != cb);
  cr_expect_eq(ph__client_get(&a, 10, 5), ca);
  cr_expect_eq(ph__clients_count(), 2);
}

Test(clients, the_bucket_holds_a_burst_and_refills_at_the_rate) {
  ph__client_key k = key4("192.0.2.1");
  ph__client *c = ph__client_get(&k, 1000, 3);

  cr_expect_eq(ph__client_admit(c, 1000, 2, 3), 0);
  cr_expect_eq(ph__client_admit(c, 1000, 2, 3), 0);
  cr_expect_eq(ph__client_admit(c, 1000, 2, 3), 0);
  cr_expect_eq(ph__client_admit(c, 1000, 2, 3), 500, "2/s: one in 500 ms");
  cr_expect_eq(ph__client_admit(c, 1200, 2, 3), 300);
  cr_expect_eq(ph__client_admit(c, 1500, 2, 3), 0);
  cr_expect_eq(ph__client_admit(c, 1500, 2, 3), 500);
  /* A long pause fills the bucket to the burst, no further. */
  cr_expect_eq(ph__client_admit(c, 100000, 2, 3), 0);
  cr_expect_eq(ph__client_admit(c, 100000, 2, 3), 0);
  cr_expect_eq(ph__client_admit(c, 100000, 2, 3), 0);
  cr_expect_gt(ph__client_admit(c, 100000, 2, 3), 0);
}

Test(clients, a_lower_burst_applies_at_once) {
  ph__client_key k = key4("192.0.2.1");
  ph__client *c = ph__client_get(&k, 0, 100);

  cr_expect_eq(ph__client_admit(c, 0, 1, 1), 0);
  cr_expect_eq(ph__client_admit(c, 0, 1, 1), 1000);
}

Test(clients, idle_members_are_in_least_recently_used_order) {
  ph__client_key k = key4("192.0.2.1");
  ph__client *c = ph__client_get(&k, 0, 5);
  ph__queue m[3];
  int i;

  for (i = 0; i < 3; i++) {
    ph__queue_init(&m[i]);
    ph__client_join(c, &m[i]);
  }
  cr_expect_eq(ph__client_members(c), 3);
  cr_expect_null(ph__client_oldest_idle(c), "members join busy");
  for (i = 0; i < 3; i++)
    ph__client_idle(c, &m[i]);
  cr_expect_eq(ph__client_oldest_idle(c), &m[0]);
  ph__client_idle(c, &m[0]); /* Used again: now the newest. */
  cr_expect_eq(ph__client_oldest_idle(c), &m[1]);
  ph__client_busy(&m[1]);
  cr_expect_eq(ph__client_oldest_idle(c), &m[2]);
  ph__client_busy(&m[1]); /* Twice, or when in no order, is harmless. */
  ph__client_leave(c, &m[2]);
  cr_expect_eq(ph__client_oldest_idle(c), &m[0]);
  ph__client_leave(c, &m[0]);
  ph__client_leave(c, &m[1]);
  cr_expect_null(ph__client_oldest_idle(c));
  cr_expect_eq(ph__client_members(c), 0);
}

Test(clients, shares_and_the_heaviest_client) {
  ph__client_key ka = key4("192.0.2.1"), kb = key4("192.0.2.2");
  ph__client *a = ph__client_get(&ka, 0, 5), *b = ph__client_get(&kb, 0, 5);
  ph__queue ma[3], mb;
  int i;

  cr_expect_null(ph__clients_heaviest());
  ph__queue_init(&mb);
  ph__client_join(b, &mb);
  cr_expect(!ph__client_over_share(b), "alone, a client holds its share");
  cr_expect_eq(ph__clients_heaviest(), b);
  for (i = 0; i < 3; i++) {
    ph__queue_init(&ma[i]);
    ph__client_join(a, &ma[i]);
  }
  cr_expect_eq(ph__clients_heaviest(), a);
  cr_expect(ph__client_over_share(a)); /* 3 of 4 between two clients. */
  cr_expect(!ph__client_over_share(b));
  ph__client_leave(a, &ma[0]);
  ph__client_leave(a, &ma[1]);
  cr_expect(!ph__client_over_share(a)); /* 1 and 1. */
  ph__clients_sweep(0, 1, 5);
  cr_expect_not_null(ph__clients_heaviest());
  ph__client_leave(a, &ma[2]);
  ph__client_leave(b, &mb);
  cr_expect_null(ph__clients_heaviest());
}

Test(clients, a_client_is_forgotten_once_it_has_nothing_to_remember) {
  ph__client_key ka = key4("192.0.2.1"), kb = key4("192.0.2.2");
  ph__client_key kc = key4("192.0.2.3");
  ph__client *a = ph__client_get(&ka, 0, 2), *b = ph__client_get(&kb, 0, 2);
  ph__client *c = ph__client_get(&kc, 0, 2);
  ph__queue m;

  ph__queue_init(&m);
  ph__client_join(a, &m);
  cr_expect_eq(ph__client_admit(b, 0, 1, 2), 0);
  (void)c; /* No members, a full bucket. */
  ph__clients_sweep(0, 1, 2);
  cr_expect_eq(ph__clients_count(), 2, "c is forgotten, a and b are not");
  ph__clients_sweep(999, 1, 2);
  cr_expect_eq(ph__clients_count(), 2, "b's bucket is not full yet");
  ph__clients_sweep(1000, 1, 2);
  cr_expect_eq(ph__clients_count(), 1, "only a, which has a member");
  ph__client_leave(a, &m);
  ph__clients_sweep(1000, 1, 2);
  cr_expect_eq(ph__clients_count(), 0);
}
