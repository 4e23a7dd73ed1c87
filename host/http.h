/* http.h: a small HTTP/1.1 server on libuv, the layer the MCP Streamable
 * HTTP transport sits on.
 *
 * It owns sockets, parsing (http_parser), framing, keep-alive, pipelining,
 * limits and timeouts; it knows nothing about MCP. The layer above receives
 * complete requests and answers each one through a response handle, either
 * at once or later, with a complete response or a stream.
 *
 * Threading: every function here must be called on the loop thread. A worker
 * thread that computes a reply hands it back to the loop (uv_async_t) first.
 *
 * Lifetimes, in short:
 *   - ph__http_server_t: caller-owned memory, valid from init until its
 *     close callback has run.
 *   - ph__http_response_t: owned by this layer, lent to the upper layer from
 *     the request callback until the upper layer finishes it with exactly one
 *     of ph__http_respond(), ph__http_stream_end() or ph__http_response_close()
 *     (the latter two after ph__http_stream_begin()). It stays valid until
 *     then even when the client has disconnected or the server was closed;
 *     output to a gone client is dropped.
 *   - ph__http_request_t: part of its response; valid exactly as long.
 */
#ifndef PH_HOST_HTTP_H
#define PH_HOST_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct ph__http_server_s ph__http_server_t;
typedef struct ph__http_request_s ph__http_request_t;
typedef struct ph__http_response_s ph__http_response_t;
typedef struct ph__http_conn_s ph__http_conn_t;

/* Limits and timeouts of one server. Start from ph__http_config_init(). */
typedef struct {
  /* Request head: URL plus header names and values, 4 bytes framing per
   * header line (method and version uncounted); past it, 431. Chunk
   * extensions and trailers of a chunked body count against it too (413
   * and 431). */
  size_t max_header_bytes;
  /* Request body, announced or received; past it the client gets 413. */
  size_t max_body_bytes;
  /* Open client connections; the one past it gets 503 and is closed.
   * Each is a file descriptor: past RLIMIT_NOFILE a new client gets the
   * same 503, with one descriptor kept in reserve to tell it so. */
  unsigned max_connections;
  /* Requests of one connection awaiting or sending their response; at this
   * many the connection is not read until one of them finishes. */
  unsigned max_pipelined;
  /* Output bytes queued on one connection (kernel not yet accepting them);
   * a stream write that would pass it closes the connection instead. */
  size_t max_write_queue_bytes;
  /* From a request's first byte (or from accept) to the end of its header;
   * cuts off slowloris clients with 408. 0 disables it. */
  uint64_t header_timeout_ms;
  /* From the end of a request's header to the end of its body, 408 after
   * it. 0 disables it. */
  uint64_t body_timeout_ms;
  /* A keep-alive connection with nothing to do is closed after it; it also
   * bounds the time a final response may take to drain. 0 disables it. */
  uint64_t idle_timeout_ms;
  /* After the last response the connection still reads (and drops) input
   * this long, so that a client still sending sees our response instead of
   * a reset. */
  uint64_t linger_timeout_ms;
  /* Optional (NULL: empty bodies): the body of a response this layer
   * makes up itself (400, 408, 413, 431, 503, ...), so the protocol above
   * can explain the refusal in its own terms. `target` is the request
   * target as received, or NULL when none arrived whole. Returns a
   * malloc'd body of *len bytes and its Content-Type in *content_type
   * (static storage), or NULL for none. Loop thread. */
  char *(*error_body)(int status, const char *target, const char **content_type,
                      size_t *len);
} ph__http_config_t;

/* One extra response header. Both strings are borrowed for the call. */
typedef struct {
  const char *name;  /* a token, e.g. "Content-Type" */
  const char *value; /* no CR or LF */
} ph__http_header_t;

/* A complete request, read-only for the upper layer. Every string is
 * NUL-terminated and owned by the response it belongs to. */
struct ph__http_request_s {
  const char *method; /* "GET", "POST", ...; static storage */
  const char *path;   /* raw (not percent-decoded) path, e.g. "/mcp" */
  const char *query;  /* raw query after '?', "" when there is none */
  const char *host;   /* the authority the request names, "host[:port]"
                         checked to be one (ph__http_authority_parse()):
                         an absolute-form target's, else the Host
                         header's; NULL for HTTP/1.0 without either */
  const char *body;   /* body bytes plus a NUL (handy for text); "" if none */
  size_t body_len;    /* body length, without that NUL */
  unsigned short http_major; /* 1 */
  unsigned short http_minor; /* 0 or 1 */
  int keep_alive; /* nonzero when the connection outlives this request */
  struct sockaddr_storage remote;   /* peer address */
  char remote_ip[INET6_ADDRSTRLEN]; /* peer address as text */
  int remote_port;                  /* peer port */
};

/* Runs once per complete request, in request order per connection. The
 * request and response are valid until the response is finished; the
 * callback may finish it before returning or at any later time. */
typedef void (*ph__http_request_cb)(ph__http_server_t *server,
                                    const ph__http_request_t *req,
                                    ph__http_response_t *res);

/* Runs at most once per response, on the loop thread, when its connection
 * closes before the response was finished (client disconnect, timeout,
 * write error, backpressure, server close). Never runs from inside a call
 * into this API. The response must still be finished to release it, and
 * may be finished from inside this callback. */
typedef void (*ph__http_gone_cb)(ph__http_response_t *res);

/* Runs when every handle of the server has closed; the server memory may be
 * freed from then on. */
typedef void (*ph__http_server_close_cb)(ph__http_server_t *server);

/* A server. Caller-owned memory; the fields below `data` are private. */
struct ph__http_server_s {
  void *data; /* for the caller */

  uv_loop_t *loop;
  uv_poll_t listener;                /* readiness of listen_fd */
  uv_timer_t accept_retry;           /* resumes accepting after a pause */
  int listen_fd;                     /* the listening socket, or -1 */
  int reserve_fd;                    /* kept free to answer 503 with */
  uint64_t fd_report_at;             /* when running out was last logged */
  unsigned long fd_refused;          /* 503s for it since that line */
  ph__http_config_t config;          /* copied at init */
  ph__http_request_cb request_cb;    /* the upper layer */
  ph__http_server_close_cb close_cb; /* set by ph__http_server_close() */
  ph__http_conn_t *conns;            /* open connections, a list */
  unsigned nconns;                   /* counted against max_connections */
  unsigned nrejecting;               /* being told 503, not counted */
  unsigned handles;                  /* libuv handles not yet closed */
  int port;                          /* bound port, after listen */
  int stopping;                      /* ph__http_server_stop() was called */
  int closing;                       /* ph__http_server_close() was called */
  char *read_buf;                    /* one read buffer for all connections */
  int64_t date_second;               /* second the cached Date is for */
  char date[48];                     /* cached "Date: ...\r\n" line */
  uint64_t bytes_in, bytes_out;      /* read and written, all connections */
};

/* An authority as a Host header or an absolute URI carries it (RFC 3986
 * 3.2.2 and 3.2.3): uri-host [":" port], without userinfo. */
typedef struct {
  const char *host; /* into the parsed text; an IP-literal keeps "[]" */
  size_t host_len;
  int port;              /* 0-65535, or -1 when absent or empty */
  int is_ip6;            /* host is an IP-literal; its address: */
  struct in6_addr addr6; /* (IPvFuture is refused) */
} ph__http_authority_t;

/* Splits the `len` bytes at `text` into `out`. Returns 0, or UV_EINVAL when
 * they are not an authority: userinfo, a character outside reg-name, bad
 * percent-encoding, an IP-literal that is not IPv6, a port that is not
 * digits or past 65535. Case and percent-encoding are kept as they are;
 * comparing is the caller's. Any thread. */
int ph__http_authority_parse(const char *text, size_t len,
                             ph__http_authority_t *out);

/* Fills `config` with the defaults: 16 KiB header, 4 MiB body, 1024
 * connections, 16 pipelined requests, 8 MiB write queue, header timeout
 * 10 s, body timeout 60 s, idle timeout 60 s, linger 2 s, no error
 * bodies. */
void ph__http_config_init(ph__http_config_t *config);

/* Initialises `server` on `loop`. `config` is copied (NULL: defaults);
 * `request_cb` receives every request. Returns 0, UV_EINVAL for a limit of
 * zero (max_body_bytes and the timeouts may be zero) or UV_ENOMEM. After
 * success the server must be closed with ph__http_server_close(). */
int ph__http_server_init(uv_loop_t *loop, ph__http_server_t *server,
                         const ph__http_config_t *config,
                         ph__http_request_cb request_cb);

/* Binds `host` (an IPv4 or IPv6 literal, brackets optional) and `port` (0
 * for any free one) with SO_REUSEADDR and starts accepting. Returns 0 or a
 * negative libuv error; the bound port is then ph__http_server_port(). */
int ph__http_server_listen(ph__http_server_t *server, const char *host,
                           int port);

/* The bound port after a successful listen, else 0. */
int ph__http_server_port(const ph__http_server_t *server);

/* Bytes read from and written to every connection so far (the write
 * counted when it is handed to the socket). Loop thread. */
void ph__http_server_bytes(const ph__http_server_t *server, uint64_t *in,
                           uint64_t *out);

/* For the fuzz harness (tests/fuzz/fuzz_http.c): serves the connected
 * stream socket `fd`, e.g. one end of a socketpair, as a client accepted
 * from 127.0.0.1, so that bytes written to the other end take the path a
 * client's do (read, parse, pipeline, respond). Takes over `fd`. */
void ph__http_server_adopt(ph__http_server_t *server, int fd);

/* Drains: new connections get 503, requests already received are answered,
 * partial ones are dropped, each connection closes once it has nothing left
 * to send. One-way; the server still has to be closed. */
void ph__http_server_stop(ph__http_server_t *server);

/* Closes the listener and every connection now (unfinished responses get
 * their gone callback), then calls `cb` (may be NULL) once every handle has
 * closed. Responses the upper layer still holds stay valid until finished
 * and no longer touch the server. */
void ph__http_server_close(ph__http_server_t *server,
                           ph__http_server_close_cb cb);

/* The request a response answers; valid until the response is finished. */
const ph__http_request_t *
ph__http_response_request(const ph__http_response_t *res);

/* Value of the first request header called `name` (case-insensitive), or
 * NULL. Surrounding whitespace is stripped; the string belongs to `req`. */
const char *ph__http_request_header(const ph__http_request_t *req,
                                    const char *name);

/* Number of request headers, and the `index`th one in arrival order.
 * Returns 0, or UV_EINVAL when `index` is out of range. */
size_t ph__http_request_header_count(const ph__http_request_t *req);
int ph__http_request_header_at(const ph__http_request_t *req, size_t index,
                               const char **name, const char **value);

/* Upper-layer data and gone callback of a response. */
void ph__http_response_set_data(ph__http_response_t *res, void *data);
void *ph__http_response_get_data(const ph__http_response_t *res);
void ph__http_response_set_gone_cb(ph__http_response_t *res,
                                   ph__http_gone_cb cb);

/* Nonzero once output of this response can no longer reach the client
 * (connection closed or closing); the gone callback follows shortly. */
int ph__http_response_gone(const ph__http_response_t *res);

/* Sends a complete response and finishes `res`: status 200-599, `nheaders`
 * extra headers (Content-Length, Transfer-Encoding and Connection are this
 * layer's and refused), and `body_len` bytes of `body` (copied; not sent
 * for HEAD, and 204 and 304 take none). Returns 0, also when the client is
 * gone and the response was dropped. UV_EINVAL (bad status or header,
 * response already begun) leaves `res` untouched and still the caller's;
 * UV_ENOMEM closes the connection and finishes `res` all the same. */
int ph__http_respond(ph__http_response_t *res, int status,
                     const ph__http_header_t *headers, size_t nheaders,
                     const void *body, size_t body_len);

/* Begins a streamed response: status line and headers now, body later with
 * ph__http_stream_write(). Framed with chunked encoding for HTTP/1.1 and by
 * closing the connection for HTTP/1.0. Returns 0 (also when the client is
 * gone), UV_EINVAL as ph__http_respond() (and for 204 and 304), or
 * UV_ENOMEM (connection closed). Never finishes `res`: after a 0 or
 * UV_ENOMEM it must be ended or closed. */
int ph__http_stream_begin(ph__http_response_t *res, int status,
                          const ph__http_header_t *headers, size_t nheaders);

/* Queues `len` bytes of an already formatted body (e.g. SSE events); copied.
 * Returns 0, UV_EINVAL when no stream was begun, or UV_EPIPE when the
 * client is gone and the bytes were dropped. When the connection's queued
 * output would pass max_write_queue_bytes the connection is closed (the
 * client is not reading) and UV_EPIPE returned. */
int ph__http_stream_write(ph__http_response_t *res, const void *data,
                          size_t len);

/* Ends a stream cleanly and finishes `res`. Returns 0 or UV_EINVAL (no
 * stream begun; `res` is still the caller's). */
int ph__http_stream_end(ph__http_response_t *res);

/* Finishes `res` by closing its connection once what was queued has been
 * sent, without ending a stream (an SSE server may close the connection but
 * keep the stream resumable). Without a begun stream the client gets no
 * response at all. Requests pipelined behind it are dropped. */
void ph__http_response_close(ph__http_response_t *res);

#endif
