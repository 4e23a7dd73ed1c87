/* test_notify.c: readiness for systemd (Type=notify, the unit in
 * etc/systemd/): with $NOTIFY_SOCKET naming a datagram socket, the real
 * host sends READY=1 once it answers on its listener, and STOPPING=1 on
 * SIGTERM; a path socket and an abstract one ('@') both work. */
#include "harness.h"
#include "http_host.h"

#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char config[] = "{\"plugin_dir\":\"" PH_TEST_PLUGIN_DIR "\","
                             "\"departments\":{\"default\":{\"plugins\":["
                             "{\"plugin\":\"ok\",\"prefix\":\"ok\"}]}}}";

/* A datagram socket bound to name (a path, or '@' for abstract). */
static int listen_at(const char *name) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  size_t n = strlen(name);
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

  cr_assert(fd >= 0);
  memcpy(addr.sun_path, name, n);
  if (name[0] == '@')
    addr.sun_path[0] = '\0';
  cr_assert_eq(bind(fd, (struct sockaddr *)&addr,
                    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
               0);
  return fd;
}

/* The next datagram within timeout_ms, or "" (static). */
static const char *next_state(int fd, int timeout_ms) {
  static char buf[256];
  struct pollfd p = {.fd = fd, .events = POLLIN};
  ssize_t n;

  buf[0] = '\0';
  if (poll(&p, 1, timeout_ms) == 1 &&
      (n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0)
    buf[n] = '\0';
  return buf;
}

static void ready_then_stopping(const char *name) {
  static const char get[] = "GET /health HTTP/1.1\r\nHost: localhost\r\n"
                            "Connection: close\r\n\r\n";
  th_http_host host;
  char *cfg = th_write_temp(config, ".json"), *r;
  int fd = listen_at(name), c;

  setenv("NOTIFY_SOCKET", name, 1);
  th_http_start(&host, cfg, 10000);
  unsetenv("NOTIFY_SOCKET");
  cr_expect_str_eq(next_state(fd, 5000), "READY=1");
  /* Ready means serving. */
  c = th_dial(host.port);
  cr_assert(write(c, get, sizeof(get) - 1) == (ssize_t)(sizeof(get) - 1));
  r = th_read_some(c, "}", 3000);
  close(c);
  cr_expect_eq(th_http_status(r), 200, "%s", r);
  free(r);
  cr_expect_eq(th_http_stop(&host), 0);
  cr_expect_str_eq(next_state(fd, 5000), "STOPPING=1");
  close(fd);
  unlink(cfg);
  free(cfg);
}

Test(notify, ready_and_stopping_on_a_path_socket, .timeout = 30) {
  char name[64];

  snprintf(name, sizeof(name), "/tmp/ph-notify-%d.sock", (int)getpid());
  unlink(name);
  ready_then_stopping(name);
  unlink(name);
}

Test(notify, ready_and_stopping_on_an_abstract_socket, .timeout = 30) {
  char name[64];

  snprintf(name, sizeof(name), "@ph-notify-%d", (int)getpid());
  ready_then_stopping(name);
}
