/* request_state.h: the requestState of 2026-07-28 input-required rounds.
 * A plugin's state travels through the client between rounds, so it goes
 * out signed (HMAC-SHA256 under the host's key) and bound to the method,
 * the target and an expiry: a client can neither forge nor alter one, nor
 * replay it against another tool or after an hour. Hosts behind one load
 * balancer share the key (config hmac_key), so any of them takes a round
 * another signed. Loop thread. */
#ifndef PH_REQUEST_STATE_H
#define PH_REQUEST_STATE_H

/* Sets the key: SHA-256 of key_text, or random bytes when it is NULL or
 * empty (then only this process can verify). Returns 0, or -1. */
int ph__request_state_init(const char *key_text);

/* The signed requestState for the plugin's state (NULL: none) of a round
 * of `method` on `target` (malloc'd), or NULL. */
char *ph__request_state_sign(const char *method, const char *target,
                             const char *state);

/* Returns 0 and the plugin state (malloc'd, or NULL) in *state, or -1 if
 * the signed state was tampered with, has expired or was meant for another
 * method or target. */
int ph__request_state_verify(const char *signed_state, const char *method,
                             const char *target, char **state);

#endif
