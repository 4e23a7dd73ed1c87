/* notify.c: see notify.h. The protocol is one datagram of "KEY=value"
 * lines to the AF_UNIX socket in $NOTIFY_SOCKET (a path, or an abstract
 * name written with a leading '@'), which systemd documents as stable for
 * others to speak (sd_notify(3)). Speaking it here costs a dozen lines;
 * libsystemd would map a megabyte of libraries into every host for them. */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int ph__notify(const char *state) {
  const char *path = getenv("NOTIFY_SOCKET");
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  size_t n;
  ssize_t sent;
  int fd, err = 0;

  if (path == NULL || (path[0] != '/' && path[0] != '@'))
    return 0;
  n = strlen(path);
  if (n >= sizeof(addr.sun_path))
    return -ENAMETOOLONG;
  memcpy(addr.sun_path, path, n);
  if (addr.sun_path[0] == '@')
    addr.sun_path[0] = '\0'; /* Abstract namespace. */
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                (const struct sockaddr *)&addr,
                (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
  if (sent < 0)
    err = -errno;
  close(fd);
  return err;
}
