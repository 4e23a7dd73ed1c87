/* channel.c: see channel.h. */
#include "channel.h"

#include "alloc.h"
#include "error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

_Static_assert(sizeof(ph__wire_head) == 48, "the header travels as it is");

int ph__msg_send(int fd, const ph__msg *m) {
  /* Header, then a length, the bytes and a NUL per string. */
  struct iovec iov[1 + 3 * PH__MSG_STRS];
  uint32_t lens[PH__MSG_STRS];
  static const char nul = '\0';
  struct msghdr mh = {0};
  ph__wire_head h = {0};
  size_t total = 0, left;
  int n = 1, i;
  ssize_t w;

  for (i = 0; i < PH__MSG_STRS; i++) {
    iov[n].iov_base = &lens[i];
    iov[n++].iov_len = sizeof(lens[i]);
    total += sizeof(lens[i]);
    if (m->s[i] == NULL) {
      lens[i] = PH__WIRE_NULL;
      continue;
    }
    lens[i] = (uint32_t)strlen(m->s[i]);
    iov[n].iov_base = (void *)m->s[i];
    iov[n++].iov_len = lens[i];
    iov[n].iov_base = (void *)&nul;
    iov[n++].iov_len = 1;
    total += (size_t)lens[i] + 1;
  }
  if (total > PH__MSG_MAX)
    return PH__EINVAL;
  h.len = (uint32_t)total;
  h.type = m->type;
  h.seq = m->seq;
  h.flags = m->flags;
  h.num = m->num;
  h.num2 = m->num2;
  h.x = m->x;
  h.y = m->y;
  iov[0].iov_base = &h;
  iov[0].iov_len = sizeof(h);
  left = total + sizeof(h);
  mh.msg_iov = iov;
  mh.msg_iovlen = (size_t)n;
  while (left > 0) {
    w = sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    left -= (size_t)w;
    /* A short write: skip what went out and send the rest. */
    while (mh.msg_iovlen > 0 && (size_t)w >= mh.msg_iov[0].iov_len) {
      w -= (ssize_t)mh.msg_iov[0].iov_len;
      mh.msg_iov++;
      mh.msg_iovlen--;
    }
    if (mh.msg_iovlen > 0) {
      mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + w;
      mh.msg_iov[0].iov_len -= (size_t)w;
    }
  }
  return 0;
}

/* Reads exactly len bytes. UV_EOF when the peer closed first; with a
 * receive timeout on fd, UV_ETIMEDOUT when it passes before the first
 * byte of a message (start), and waiting on once the message has begun. */
static int read_full(int fd, void *buf, size_t len, int start) {
  char *p = buf;
  ssize_t r;

  while (len > 0) {
    r = read(fd, p, len);
    if (r == 0)
      return UV_EOF;
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (start && p == (char *)buf)
          return UV_ETIMEDOUT;
        continue;
      }
      return errno == ECONNRESET ? UV_EOF : -errno;
    }
    p += r;
    len -= (size_t)r;
  }
  return 0;
}

/* Points m->s at the strings in buf (len bytes). */
static int split_strings(ph__msg *m, size_t len) {
  size_t off = 0;
  uint32_t n;
  int i;

  for (i = 0; i < PH__MSG_STRS; i++) {
    if (len - off < sizeof(n))
      return PH__EINVAL;
    memcpy(&n, m->buf + off, sizeof(n));
    off += sizeof(n);
    if (n == PH__WIRE_NULL)
      continue;
    if (n >= len - off || m->buf[off + n] != '\0')
      return PH__EINVAL;
    m->s[i] = m->buf + off;
    off += (size_t)n + 1;
  }
  return off == len ? 0 : PH__EINVAL;
}

int ph__msg_recv(int fd, ph__msg *m) {
  ph__wire_head h;
  int err;

  memset(m, 0, sizeof(*m));
  err = read_full(fd, &h, sizeof(h), 1);
  if (err)
    return err;
  if (h.len > PH__MSG_MAX)
    return PH__EINVAL;
  m->buf = ph__xmalloc((size_t)h.len + 1);
  err = read_full(fd, m->buf, h.len, 0);
  if (err == 0)
    err = split_strings(m, h.len);
  if (err) {
    ph__msg_clear(m);
    return err;
  }
  m->type = h.type;
  m->seq = h.seq;
  m->flags = h.flags;
  m->num = h.num;
  m->num2 = h.num2;
  m->x = h.x;
  m->y = h.y;
  return 0;
}

void ph__msg_clear(ph__msg *m) {
  free(m->buf);
  memset(m, 0, sizeof(*m));
}
