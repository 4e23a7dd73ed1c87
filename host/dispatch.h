/* dispatch.h: transitional, the old name of call.h. transport_http.c, which
 * work in progress for another issue is editing, still includes it; once
 * that work lands it includes call.h, and this file goes. */
#ifndef PH_DISPATCH_H
#define PH_DISPATCH_H

#include "call.h"

#endif
