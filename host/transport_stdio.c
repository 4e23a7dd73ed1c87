/* transport_stdio.c: see transport_stdio.h. */
#include "transport_stdio.h"

#include "alloc.h"
#include "authz.h"
#include "error.h"
#include "lines.h"
#include "log.h"
#include "protocol.h"
#include "session.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Stop reading stdin while this much output waits for a slow client, so a
 * client that never reads cannot make us buffer without bound. */
#define OUTPUT_HIGH_WATER (16u << 20)

/* Complete lines are served for at most this long per turn of the loop;
 * the rest wait for the next turn (an idle handle keeps it from blocking),
 * so one large read of many small messages (a file after a long line is
 * read megabytes at a time) cannot hold timers, workers' answers and the
 * output flush behind it. The message being served when the slice ends
 * still runs to its end: its own cost is bounded by max_message_bytes and
 * max_batch_members. 2 ms is hundreds of small messages, so pipelined
 * clients, whose reads hold a few dozen, never see a slice end. */
#define LINE_SLICE_NS (2u * 1000 * 1000)

static struct {
  uv_loop_t *loop;
  union {
    uv_pipe_t pipe;
    uv_tty_t tty;
  } in, out;
  int in_open, out_open, reading, eof;
  int in_file, out_file; /* Redirected to or from a regular file. */
  uv_fs_t file_read;
  /* Write the lines of one loop iteration at once: the check phase follows
   * I/O callbacks; the prepare phase catches lines written by timers before
   * the loop blocks in poll (check handles do not keep poll from
   * blocking). */
  uv_check_t flush;
  uv_prepare_t flush_early;
  int flush_ready;
  char *out_buf;
  size_t outlen, outcap;
  ph__session *session;
  ph__outlet outlet;
  ph__lines lines; /* Bytes read and not yet served. */
  uv_idle_t more;  /* Serves the next slice of lines. */
  void (*on_end)(int status);
} S;

typedef struct {
  uv_write_t req;
  char *data;
} write_req;

static void on_write(uv_write_t *req, int status) {
  write_req *w = (write_req *)req;

  if (status < 0 && status != UV_ECANCELED)
    ph__debug("stdout write failed: %s", uv_strerror(status));
  free(w->data);
  free(w);
}

/* Lines produced in one loop iteration go out in one write: a burst of
 * pipelined answers costs one syscall, not one each. */
static void flush_now(void) {
  write_req *w;
  uv_buf_t b;

  uv_check_stop(&S.flush);
  uv_prepare_stop(&S.flush_early);
  if (S.outlen == 0 || !S.out_open)
    return;
  w = ph__xmalloc(sizeof(*w));
  w->data = S.out_buf;
  b = uv_buf_init(w->data, (unsigned)S.outlen);
  S.out_buf = NULL;
  S.outlen = S.outcap = 0;
  if (uv_write(&w->req, (uv_stream_t *)&S.out, &b, 1, on_write) != 0) {
    free(w->data);
    free(w);
  }
}

static void on_flush_check(uv_check_t *h) {
  (void)h;
  flush_now();
}

static void on_flush_prepare(uv_prepare_t *h) {
  (void)h;
  flush_now();
}

static void start_flush(void) {
  uv_check_start(&S.flush, on_flush_check);
  uv_prepare_start(&S.flush_early, on_flush_prepare);
}

static void write_line(const char *json, size_t len) {
  if (!S.out_open)
    return;
  if (S.out_file) {
    /* A regular file never blocks for long; write it through. */
    const char *p = json;
    size_t left = len;
    ssize_t n;

    while (left > 0) {
      n = write(STDOUT_FILENO, p, left);
      if (n < 0)
        return;
      p += n;
      left -= (size_t)n;
    }
    if (write(STDOUT_FILENO, "\n", 1) < 0)
      return;
    return;
  }
  if (S.outlen + len + 1 > S.outcap) {
    size_t cap = S.outcap ? S.outcap : 65536;
    while (cap < S.outlen + len + 1)
      cap *= 2;
    S.out_buf = ph__xrealloc(S.out_buf, cap);
    S.outcap = cap;
  }
  memcpy(S.out_buf + S.outlen, json, len);
  S.out_buf[S.outlen + len] = '\n';
  if (S.outlen == 0)
    start_flush();
  S.outlen += len + 1;
}

static void outlet_send(ph__outlet *o, const char *json, size_t len) {
  (void)o;
  write_line(json, len);
}

static void outlet_finish(ph__outlet *o, int outcome, const char *json,
                          size_t len) {
  (void)o;
  (void)outcome; /* A line says everything; stdio has no statuses. */
  if (json != NULL)
    write_line(json, len);
}

static void session_notify(ph__session *s, const char *json, size_t len) {
  (void)s;
  write_line(json, len);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  char *at;
  size_t room = ph__lines_room(&S.lines, &at);

  *buf = uv_buf_init(at, (unsigned)(room < UINT32_MAX ? room : UINT32_MAX));
}

static void handle_line(char *line, size_t len) {
  if (len > 0 && line[len - 1] == '\r')
    len--;
  while (len > 0 && (*line == ' ' || *line == '\t'))
    line++, len--;
  if (len == 0)
    return;
  ph__protocol_handle(S.session, &S.outlet, line, len);
}

/* A line that ended in a newline, or the last one at EOF. */
static void serve_line(int kind, char *line, size_t len) {
  if (kind == PH__LINES_TOO_LARGE) {
    ph__warn("stdin: skipped a message larger than %zu bytes", S.lines.max);
    ph__protocol_reject(&S.outlet, PH__OUTCOME_TOO_LARGE,
                        PH__RPC_INVALID_REQUEST,
                        "Invalid Request: message exceeds the size limit");
  } else if (kind == PH__LINES_MESSAGE) {
    handle_line(line, len);
  }
}

/* Serves complete lines for one slice. Returns 1 if some may be left. */
static int serve_lines(void) {
  uint64_t deadline = uv_hrtime() + LINE_SLICE_NS;
  const char *line;
  size_t len;
  int served = 0, kind;

  for (;;) {
    if (served++ && uv_hrtime() >= deadline)
      return 1;
    kind = ph__lines_next(&S.lines, &line, &len);
    if (kind == PH__LINES_NONE)
      return 0;
    serve_line(kind, (char *)line, len);
    if (S.eof)
      return 0; /* Stopped meanwhile: the rest is not served. */
  }
}

static int output_backed_up(void) {
  return S.out_open && !S.out_file &&
         uv_stream_get_write_queue_size((uv_stream_t *)&S.out) >
             OUTPUT_HIGH_WATER;
}

static void read_file_chunk(void);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_more(uv_idle_t *h);
static void on_resume_check(uv_timer_t *t);
static uv_timer_t resume_timer;

/* Serves what has been read, then asks for more: each time input arrives,
 * each turn while lines are left, and while output waits for the client
 * (the timer looks again). */
static void pump(void) {
  int more;

  if (S.eof)
    return;
  if (output_backed_up()) {
    /* Resume once the client has taken most of our output. */
    if (S.reading && !S.in_file) {
      uv_read_stop((uv_stream_t *)&S.in);
      S.reading = 0;
    }
    uv_idle_stop(&S.more);
    uv_timer_start(&resume_timer, on_resume_check, 10, 0);
    return;
  }
  more = serve_lines();
  if (S.eof)
    return;
  if (more) {
    if (S.reading && !S.in_file) {
      uv_read_stop((uv_stream_t *)&S.in);
      S.reading = 0;
    }
    uv_idle_start(&S.more, on_more);
    return;
  }
  uv_idle_stop(&S.more);
  if (S.reading || !S.in_open)
    return;
  if (S.in_file) {
    read_file_chunk();
  } else if (uv_read_start((uv_stream_t *)&S.in, on_alloc, on_read) == 0) {
    S.reading = 1;
  }
}

static void on_more(uv_idle_t *h) {
  (void)h;
  pump();
}

static void on_resume_check(uv_timer_t *t) {
  (void)t;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&S.out) <
      OUTPUT_HIGH_WATER / 2)
    pump();
  else
    uv_timer_start(&resume_timer, on_resume_check, 10, 0);
}

/* The end of input. Its last line may lack a newline and is still a
 * message: it is served, and if it was cut off in the middle, the client
 * gets the parse error that says its message never arrived whole (rather
 * than silence, after which it would wait for an answer that never
 * comes). */
static void end_of_input(ssize_t nread) {
  if (nread != UV_EOF)
    ph__error("stdin: %s", uv_strerror((int)nread));
  else {
    const char *line;
    size_t len;
    int kind = ph__lines_last(&S.lines, &line, &len);

    serve_line(kind, (char *)line, len);
  }
  ph__stdio_stop();
  if (S.on_end != NULL)
    S.on_end(0);
}

static void consume(ssize_t nread) {
  if (nread < 0) {
    end_of_input(nread);
    return;
  }
  ph__lines_added(&S.lines, (size_t)nread);
  pump();
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  (void)stream;
  (void)buf;
  consume(nread);
}

static void on_file_read(uv_fs_t *req) {
  ssize_t n = req->result;

  uv_fs_req_cleanup(req);
  S.reading = 0;
  if (S.eof)
    return; /* Shutting down: the rest of the file is not read. */
  consume(n == 0 ? UV_EOF : n);
}

/* stdin redirected from a file: libuv streams cannot read regular files,
 * so read it chunk by chunk on the threadpool. */
static void read_file_chunk(void) {
  uv_buf_t buf;

  on_alloc(NULL, 0, &buf);
  if (uv_fs_read(S.loop, &S.file_read, STDIN_FILENO, &buf, 1, -1,
                 on_file_read) == 0)
    S.reading = 1;
}

static int open_stream(uv_loop_t *loop, int fd, void *handle, int readable) {
  uv_handle_type t = uv_guess_handle(fd);
  int err;

  if (t == UV_TTY)
    return uv_tty_init(loop, handle, fd, readable);
  if (t == UV_NAMED_PIPE || t == UV_TCP) {
    err = uv_pipe_init(loop, handle, 0);
    if (err)
      return err;
    return uv_pipe_open(handle, fd);
  }
  return UV_EINVAL;
}

static int start_reading(void) {
  int err;

  if (S.in_file) {
    read_file_chunk();
    return 0;
  }
  err = uv_read_start((uv_stream_t *)&S.in, on_alloc, on_read);
  if (err)
    return err;
  S.reading = 1;
  return 0;
}

/* PLUGHOST_TOKEN checked: the client is its principal, or nobody is
 * served. */
static void on_token_checked(const ph__authn_result *r, void *data) {
  (void)data;
  if (S.session == NULL || S.eof)
    return; /* Shut down meanwhile. */
  if (r->status != PH__AUTHN_OK) {
    ph__error("PLUGHOST_TOKEN refused for department %s: %s%s%s",
              S.session->department, r->reason[0] ? r->reason : "refused",
              r->description[0] ? ": " : "", r->description);
    ph__stdio_stop();
    if (S.on_end != NULL)
      S.on_end(1); /* Shuts the host down: nobody is served. */
    return;
  }
  free(S.session->principal);
  S.session->principal = ph__xstrdup(r->principal);
  ph__info("stdio: the client is authenticated by PLUGHOST_TOKEN");
  if (start_reading() != 0) {
    ph__stdio_stop();
    if (S.on_end != NULL)
      S.on_end(1);
  }
}

/* Who the local client is. Without auth, stdio_scopes (the operator's
 * word, as before). With auth, a token in PLUGHOST_TOKEN is checked by
 * authn as an HTTP bearer token would be, and reading waits for it;
 * without one, stdio_scopes still stands for a trusted local client,
 * and a department that requires auth refuses to start with neither.
 * Returns 0, 1 when reading must wait for the check, or an error. */
static int stdio_caller(const ph__config *cfg, const char *department) {
  const ph__department_cfg *dc = ph__config_department(cfg, department);
  const char *token = getenv("PLUGHOST_TOKEN");
  int err;

  if (dc == NULL || dc->auth.mode == PH__AUTH_NONE)
    return 0;
  if (token != NULL && token[0] != '\0') {
    err = ph__authn_start(S.loop, cfg, dc, token, "bearer", on_token_checked,
                          NULL);
    if (err != 0) {
      ph__error("cannot check PLUGHOST_TOKEN for department %s: %s", department,
                ph__strerror(err));
      return err;
    }
    return 1;
  }
  if (dc->auth.mode == PH__AUTH_REQUIRED && S.session->principal == NULL) {
    ph__error("department %s requires authentication: set PLUGHOST_TOKEN "
              "(a token or API key) or, for a trusted local client, "
              "stdio_scopes",
              department);
    return UV_EACCES;
  }
  return 0;
}

int ph__stdio_start(uv_loop_t *loop, const ph__config *cfg,
                    const char *department, void (*on_end)(int status)) {
  int err;

  S.loop = loop;
  ph__lines_init(&S.lines, cfg->limits.max_message_bytes);
  S.on_end = on_end;
  S.outlet.send = outlet_send;
  S.outlet.finish = outlet_finish;
  err = open_stream(loop, STDOUT_FILENO, &S.out, 0);
  if (err == UV_EINVAL && uv_guess_handle(STDOUT_FILENO) == UV_FILE) {
    S.out_file = 1;
    err = 0;
  }
  if (err) {
    ph__error("stdout must be a pipe or a terminal: %s", uv_strerror(err));
    return err;
  }
  S.out_open = 1;
  err = open_stream(loop, STDIN_FILENO, &S.in, 1);
  if (err == UV_EINVAL && uv_guess_handle(STDIN_FILENO) == UV_FILE) {
    S.in_file = 1;
    err = 0;
  }
  if (err) {
    ph__error("stdin must be a pipe or a terminal: %s", uv_strerror(err));
    return err;
  }
  S.in_open = 1;
  uv_timer_init(loop, &resume_timer);
  uv_idle_init(loop, &S.more);
  uv_check_init(loop, &S.flush);
  uv_prepare_init(loop, &S.flush_early);
  S.flush_ready = 1;
  S.session = ph__session_new(department);
  if (cfg->stdio_scopes != NULL && cfg->stdio_scopes[0] != NULL) {
    /* stdio takes credentials from the operator, not from HTTP auth: the
     * local client holds the scopes the config grants it. */
    cJSON *p = cJSON_CreateObject(), *list;
    char **sc;

    cJSON_AddStringToObject(p, "sub", "stdio");
    list = cJSON_AddArrayToObject(p, "scopes");
    for (sc = cfg->stdio_scopes; *sc != NULL; sc++)
      cJSON_AddItemToArray(list, cJSON_CreateString(*sc));
    S.session->principal = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
  }
  S.session->notify = session_notify;
  snprintf(S.session->client_address, sizeof(S.session->client_address),
           "stdio");
  err = stdio_caller(cfg, department);
  if (err != 0)
    return err < 0 ? err : 0;
  return start_reading();
}

void ph__stdio_set_config(const ph__config *cfg) {
  S.lines.max = cfg->limits.max_message_bytes;
}

void ph__stdio_stop(void) {
  if (S.reading && !S.in_file) {
    uv_read_stop((uv_stream_t *)&S.in);
    S.reading = 0;
  }
  if (S.in_open)
    uv_idle_stop(&S.more); /* Lines read but not served are dropped. */
  S.eof = 1;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  uv_close((uv_handle_t *)req->handle, NULL);
}

void ph__stdio_close(void) {
  if (S.session != NULL) {
    ph__session_close(S.session);
    S.session = NULL;
  }
  if (S.in_open) {
    if (!S.in_file)
      uv_close((uv_handle_t *)&S.in, NULL);
    uv_close((uv_handle_t *)&resume_timer, NULL);
    uv_close((uv_handle_t *)&S.more, NULL);
    S.in_open = 0;
  }
  if (S.flush_ready) {
    flush_now();
    uv_close((uv_handle_t *)&S.flush, NULL);
    uv_close((uv_handle_t *)&S.flush_early, NULL);
    S.flush_ready = 0;
  }
  if (S.out_open && S.out_file) {
    S.out_open = 0;
  } else if (S.out_open) {
    /* Shut down rather than close, so queued responses reach the client
     * before the handle goes. */
    static uv_shutdown_t req;
    if (uv_shutdown(&req, (uv_stream_t *)&S.out, on_shutdown) != 0)
      uv_close((uv_handle_t *)&S.out, NULL);
    S.out_open = 0;
  }
  if (S.in_file && S.reading)
    return; /* The threadpool still writes into the buffer; the process
             * ends. */
  ph__lines_free(&S.lines);
}
