/* test_request_state.c: a signed requestState verifies for its own round
 * only: altered, truncated, re-signed under another key, or presented for
 * another method or target, it is refused. */
#include "request_state.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static char *signed_for(const char *state) {
  char *s = ph__request_state_sign("tools/call", "ok_ask", state);

  cr_assert_not_null(s);
  return s;
}

Test(request_state, a_state_verifies_for_its_round) {
  char *s, *state;

  cr_assert_eq(ph__request_state_init("key one"), 0);
  s = signed_for("{\"step\":2}");
  cr_expect_eq(ph__request_state_verify(s, "tools/call", "ok_ask", &state), 0);
  cr_expect_str_eq(state, "{\"step\":2}");
  free(state);
  free(s);
  s = signed_for(NULL);
  cr_expect_eq(ph__request_state_verify(s, "tools/call", "ok_ask", &state), 0);
  cr_expect_null(state);
  free(s);
}

Test(request_state, another_round_or_key_is_refused) {
  char *s, *state = (char *)"x";

  cr_assert_eq(ph__request_state_init("key one"), 0);
  s = signed_for("{}");
  cr_expect_eq(ph__request_state_verify(s, "tools/call", "ok_other", &state),
               -1);
  cr_expect_null(state);
  cr_expect_eq(ph__request_state_verify(s, "prompts/get", "ok_ask", &state),
               -1);
  cr_assert_eq(ph__request_state_init("key two"), 0);
  cr_expect_eq(ph__request_state_verify(s, "tools/call", "ok_ask", &state), -1);
  /* The same key text is the same key: another host of the cluster. */
  cr_assert_eq(ph__request_state_init("key one"), 0);
  cr_expect_eq(ph__request_state_verify(s, "tools/call", "ok_ask", &state), 0);
  free(state);
  free(s);
}

Test(request_state, altered_states_are_refused) {
  char *s, *t, *state;
  size_t i, n;

  cr_assert_eq(ph__request_state_init(NULL), 0);
  s = signed_for("{\"amount\":10}");
  n = strlen(s);
  /* Every single-character change, in the payload and in the MAC. */
  for (i = 0; i < n; i++) {
    t = strdup(s);
    t[i] = t[i] == 'A' ? 'B' : 'A';
    cr_expect_eq(ph__request_state_verify(t, "tools/call", "ok_ask", &state),
                 -1, "changed at %zu: %s", i, t);
    free(t);
  }
  for (i = 0; i < n; i++) {
    t = strndup(s, i);
    cr_expect_eq(ph__request_state_verify(t, "tools/call", "ok_ask", &state),
                 -1, "cut at %zu", i);
    free(t);
  }
  cr_expect_eq(ph__request_state_verify("", "tools/call", "ok_ask", &state),
               -1);
  cr_expect_eq(ph__request_state_verify(".", "tools/call", "ok_ask", &state),
               -1);
  free(s);
}

/* Base64 text whose last character differs only in bits the decoder drops
 * names the same bytes; only the canonical text is taken. */
Test(request_state, only_canonical_base64_is_taken) {
  static const char digits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *s, *t, *state;
  size_t n;
  int low, tries = 0;

  cr_assert_eq(ph__request_state_init("key one"), 0);
  s = signed_for("{}");
  n = strlen(s); /* The MAC's 32 bytes end in "x=": x carries two spare bits. */
  cr_assert_eq(s[n - 1], '=');
  low = (int)(strchr(digits, s[n - 2]) - digits);
  t = strdup(s);
  for (int spare = 1; spare < 4; spare++, tries++) {
    t[n - 2] = digits[(low & ~3) | ((low + spare) & 3)];
    cr_expect_eq(ph__request_state_verify(t, "tools/call", "ok_ask", &state),
                 -1, "%s", t);
  }
  cr_expect_eq(tries, 3);
  free(t);
  free(s);
}
