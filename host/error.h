/* error.h: the host's one error domain. At the bottom of host/: it needs
 * only plughost.h and libuv, and every layer above may include it.
 *
 * A host function that can fail returns 0 or a negative code, and each code
 * means one thing wherever it comes from:
 *   - UV_E*, libuv's codes (negative errno on Unix, libuv's own from -3000
 *     down): what the platform reports, and what the layers written in
 *     libuv's manner (pool.c, http.c) report of themselves;
 *   - PH__E*, the host's own, from -30001 down: the conditions of the plugin
 *     ABI, which the plugin-facing layers (loader, instance, call, registry,
 *     host_api) decide themselves. They pass UV_E* from below unchanged.
 *
 * The public PH_E* codes (-1 to -8, fixed by the ABI) are the same numbers as
 * UV_EPERM to UV_ENOEXEC, so they never appear inside the host: host_api.c,
 * the one file plugins call into, converts with ph__abi_error() as it
 * returns. Why not the simpler rule of using PH_E* inside and telling them
 * apart by context: then -1 in a log line or a comparison would read as
 * "invalid argument" or "operation not permitted" depending on who produced
 * it. Shifted out of errno's range, every code names itself, so
 * ph__strerror() needs no context. Any thread. */
#ifndef PH_ERROR_H
#define PH_ERROR_H

#include "plughost.h"

/* PH__E(x) is PH_E(x) moved below errno's and libuv's ranges. */
#define PH__EBASE (-30000)
#define PH__EINVAL (PH__EBASE + PH_EINVAL)         /* Malformed argument. */
#define PH__ENOMEM (PH__EBASE + PH_ENOMEM)         /* Out of memory. */
#define PH__ENOTSUP (PH__EBASE + PH_ENOTSUP)       /* Not possible here. */
#define PH__EALREADY (PH__EBASE + PH_EALREADY)     /* Replied already. */
#define PH__ENOSERVICE (PH__EBASE + PH_ENOSERVICE) /* No provider. */
#define PH__ECANCELED (PH__EBASE + PH_ECANCELED)   /* Cancelled or late. */
#define PH__EINPUT (PH__EBASE + PH_EINPUT)         /* Input is required. */
#define PH__EFAIL (PH__EBASE + PH_EFAIL)           /* Failed; see message. */

/* The name and meaning of any code of the domain (and of 0), e.g.
 * "PH_ENOSERVICE (no live instance provides the service)" or "EBUSY
 * (resource busy or locked)". The text lives in static or thread-local
 * storage: valid until this thread's next call. */
const char *ph__strerror(int err);

/* The PH_E* code a plugin gets for err: PH__E* map back one to one,
 * UV_ENOMEM, UV_ECANCELED and UV_ENOTSUP to their namesakes, UV_EBUSY (a
 * full queue) to PH_ENOTSUP, and every other libuv code to PH_EINVAL (the
 * platform refused what the plugin passed, e.g. an fd epoll cannot poll).
 * Only host_api.c calls this. */
int ph__abi_error(int err);

#endif
