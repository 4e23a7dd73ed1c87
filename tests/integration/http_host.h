/* http_host.h: the real build/plughost listening on Streamable HTTP for
 * criterion tests, and raw-socket HTTP/1.1 requests to it. The host runs
 * as `plughost --config <config> --listen 127.0.0.1:0` with its stderr in a
 * log file; the port it picked is read from that log. */
#ifndef PH_TEST_HTTP_HOST_H
#define PH_TEST_HTTP_HOST_H

#include <sys/types.h>

/* A listening host. Zeroed, it is one that never started, which
 * th_http_stop() accepts too (a suite's .fini after a failed .init). */
typedef struct th_http_host {
  pid_t pid;      /* The host process, or 0 before it started. */
  int port;       /* The port it listens on, or 0. */
  char *log_path; /* Its stderr: a temporary file, owned. */
} th_http_host;

/* Starts the host on config (a path) and waits up to timeout_ms for the
 * port in its log. Aborts the test if none appears. The host is killed if
 * the test process dies first. */
void th_http_start(th_http_host *h, const char *config, int timeout_ms);

/* The same on a given address ("127.0.0.1:8123"), for a config whose
 * public_url must name the port before the host starts. */
void th_http_start_on(th_http_host *h, const char *config, const char *listen,
                      int timeout_ms);

/* Sends SIGTERM, reaps the host and removes its log. Returns the exit
 * status (as from waitpid: use WIFEXITED etc.), or -1 if it never started.
 * Leaves h zeroed. */
int th_http_stop(th_http_host *h);

/* Waits up to timeout_ms until the host's log contains needle. Returns the
 * whole log (caller frees), or NULL on timeout. */
char *th_http_wait_log(const th_http_host *h, const char *needle,
                       int timeout_ms);

/* A socket connected to 127.0.0.1:port. Aborts the test on failure. */
int th_dial(int port);

/* Reads fd until EOF, until `until` (NULL: nothing) appears, until nothing
 * arrives for timeout_ms. Returns what was read,
 * NUL-terminated; caller frees. */
char *th_read_some(int fd, const char *until, int timeout_ms);

/* Sends a request for /mcp on a fresh connection and leaves it open for
 * the (streamed) response. headers holds extra header lines, each ending
 * in "\r\n" ("" for none); body may be NULL. Returns the socket. */
int th_http_send(int port, const char *method, const char *headers,
                 const char *body);

/* The same with "Connection: close": returns th_read_some(fd, until,
 * timeout_ms) and closes the socket. */
char *th_http(int port, const char *method, const char *headers,
              const char *body, const char *until, int timeout_ms);

/* Sends the `len` bytes at `request` exactly as they are (a hostile
 * client's, NULs included) on a fresh connection, and returns
 * th_read_some(fd, NULL, timeout_ms); caller frees. */
char *th_http_raw(int port, const char *request, size_t len, int timeout_ms);

/* The status of the answer (0 for none) to the request formatted from fmt,
 * sent by th_http_raw() with a 3 s timeout; the request should end its
 * connection (Connection: close, or one the host refuses). */
int th_http_raw_status(int port, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The status code of a response, or 0 if it has no status line. */
int th_http_status(const char *response);

/* The value of a response's Mcp-Session-Id header (caller frees), or NULL
 * if it has none. */
char *th_http_session_id(const char *response);

#endif
