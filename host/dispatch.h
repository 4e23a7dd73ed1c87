/* dispatch.h: transitional, the old name of call.h. protocol.c and
 * transport_http.c, which work in progress for another issue is editing,
 * still include this file and set the protocol's hooks by their old names.
 * Once that work lands they include call.h and call ph__calls_set_*, and
 * this file goes. */
#ifndef PH_DISPATCH_H
#define PH_DISPATCH_H

#include "call.h"

#define ph__dispatch_set_notify_hook ph__calls_set_notify_hook
#define ph__dispatch_set_reply_shaper ph__calls_set_reply_shaper
#define ph__dispatch_set_client_request_hook ph__calls_set_client_request_hook

#endif
