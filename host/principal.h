/* principal.h: who a caller is, as the rest of the host compares it. A
 * principal is the claims JSON the authn service answered (authz.h), or
 * NULL for an anonymous caller. Its text changes when the caller's token
 * is refreshed (exp, scopes), its identity does not: these functions say
 * what counts as the same caller, for every layer that keeps something
 * per caller (a legacy session, a task).
 *
 * Layers: at the bottom with alloc.h. Any thread. */
#ifndef PH_PRINCIPAL_H
#define PH_PRINCIPAL_H

/* Whether two principals (claims JSON, or NULL for anonymous) are the
 * same caller: the same iss, sub and, for API keys, key_id. Text that is
 * not a JSON object is nobody's, not even equal text's. */
int ph__principal_same(const char *a, const char *b);

#endif
