/* notify.h: readiness for a service manager. Under systemd (Type=notify)
 * the host says READY=1 once it serves (its listener bound, its first
 * generation published) and STOPPING=1 when it begins to shut down, as
 * datagrams to the socket systemd names in $NOTIFY_SOCKET; without it
 * these do nothing. A reload is SIGHUP (ExecReload), served in place.
 * Loop thread. */
#ifndef PH_NOTIFY_H
#define PH_NOTIFY_H

/* Sends `state` (e.g. "READY=1") if a service manager listens. Returns 0
 * (also when none does), or a negative errno. */
int ph__notify(const char *state);

#endif
