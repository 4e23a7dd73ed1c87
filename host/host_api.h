/* host_api.h: the plugin ABI's function table (ph_host_api, plughost.h)
 * mapped onto the host's internals. This is where the ABI's rules are kept
 * (arguments, threads, call states) and the one place PH_E* codes are made:
 * internal codes (error.h) are converted as each function returns.
 *
 * Layers: above call.h, instance.h and registry.h (a service call resolves
 * its provider in the current generation); below only main.c and the tests.
 * No layer under it includes this header: the table reaches every instance
 * and call through ph__instances_set_api(), which main.c calls once at
 * start-up with &ph__host_api. */
#ifndef PH_HOST_API_H
#define PH_HOST_API_H

#include "plughost.h"

/* The table init receives and every ph_call and ph_instance points at.
 * Immutable; any thread (watch_fd: the loop's only). */
extern const ph_host_api ph__host_api;

#endif
