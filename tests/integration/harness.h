/* harness.h: drive the real build/plughost binary over stdio pipes from
 * criterion tests. One message per line each way, as MCP stdio frames. */
#ifndef PH_TEST_HARNESS_H
#define PH_TEST_HARNESS_H

#include <cJSON.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct th_host th_host;

/* Starts `plughost --config <config> --stdio` plus the NULL-terminated
 * extra arguments (e.g. "--department", "sales", NULL). The host's stderr
 * goes to a temporary file readable with th_stderr(). Aborts the test on
 * failure. config is a path; see th_write_config to make one. */
th_host *th_start(const char *config, ...);

/* Writes `text` to a fresh temporary file and returns its path (static
 * storage until the next call from this thread is not promised: the string
 * is malloc'd and owned by the caller). Handy for per-test configs. */
char *th_write_temp(const char *text, const char *suffix);

/* Sends raw bytes followed by '\n'. Returns 0 or -1 (pipe closed). */
int th_send(th_host *h, const char *line);

/* Sends a raw buffer exactly as given (no newline added). */
int th_send_raw(th_host *h, const void *buf, size_t len);

/* Next message from the host in arrival order (responses and
 * notifications), or NULL after timeout_ms. Caller frees with
 * cJSON_Delete. */
cJSON *th_recv(th_host *h, int timeout_ms);

/* The same message as the line the host wrote, without its newline, for
 * checks a parsed tree cannot make (an id's digits past a double's
 * precision). Caller frees. NULL after timeout_ms. */
char *th_recv_text(th_host *h, int timeout_ms);

/* Sends a request with a fresh integer id and returns its response (the
 * whole message, with "result" or "error"). Notifications arriving meanwhile
 * are kept for th_notification(). NULL on timeout. */
cJSON *th_request(th_host *h, const char *method, const char *params_json,
                  int timeout_ms);

/* Sends a request with an explicit id given as JSON text ("7", "\"abc\"")
 * without waiting. */
int th_request_async(th_host *h, const char *id_json, const char *method,
                     const char *params_json);

/* Waits for the response whose id equals id_json; notifications and other
 * responses are kept. NULL on timeout. */
cJSON *th_response(th_host *h, const char *id_json, int timeout_ms);

/* Next kept or arriving notification named `method` (NULL: any), or NULL
 * after timeout_ms. */
cJSON *th_notification(th_host *h, const char *method, int timeout_ms);

/* initialize (protocolVersion `version`, capabilities JSON or NULL) plus
 * notifications/initialized; returns the initialize result's response. */
cJSON *th_initialize(th_host *h, const char *version, const char *caps);

/* Everything the host wrote to stderr so far (NUL-terminated, owned by h). */
const char *th_stderr(th_host *h);

/* Waits until stderr contains `needle` or timeout_ms passes; 1 if found. */
int th_wait_stderr(th_host *h, const char *needle, int timeout_ms);

/* Closes the host's stdin (EOF) but keeps reading its stdout; th_stop
 * still reaps it. */
void th_close_stdin(th_host *h);

/* Sends a signal to the host. */
void th_kill(th_host *h, int sig);

/* Closes stdin, waits up to timeout_ms for exit and returns the exit status
 * (as from waitpid: use WIFEXITED etc.), or -1 on timeout (then kills it).
 * Frees h. */
int th_stop(th_host *h, int timeout_ms);

/* The host's pid. */
pid_t th_pid(th_host *h);

/* Path of the built binary and source/build dirs, from compile
 * definitions. */
const char *th_binary(void);

/* Milliseconds on the monotonic clock. */
long long th_now_ms(void);

/* A copy of text with every ' turned into ": JSON written with single
 * quotes reads better in C. Caller frees. */
char *th_dq(const char *text);

/* Writes a config given with single quotes to a fresh temporary file: its
 * plugin_dir is plugin_dir (NULL: the fixture plugins) and its default
 * department serves `plugins` (instance objects). `top` and `dept`
 * (members each ending in a comma, or NULL) go at the top level and into
 * the department. Returns the path; the caller unlinks and frees it. */
char *th_write_config(const char *plugin_dir, const char *top, const char *dept,
                      const char *plugins);

/* th_write_config(NULL, top, dept, plugins) as the test's own config, which
 * the harness keeps until th_remove_config() (a second call replaces the
 * first). Returns the path, owned by the harness. */
const char *th_config(const char *top, const char *dept, const char *plugins);

/* Deletes the test's own config, if there is one. Also fit for a suite's
 * .fini, so that a test failing half-way leaves no file behind. */
void th_remove_config(void);

/* th_start on th_config(top, dept, plugins); with version not NULL, also
 * initializes a session of that version (see th_initialize). */
th_host *th_start_config(const char *top, const char *dept, const char *plugins,
                         const char *version);

/* th_stop(h, 5000), then th_remove_config(). Returns th_stop's status. */
int th_stop_config(th_host *h);

/* th_request with single-quoted params (NULL: none), waiting up to 5 s.
 * Aborts the test when no answer comes. */
cJSON *th_rpc(th_host *h, const char *method, const char *params);

/* th_send of a line given with single quotes; aborts the test if the
 * host's stdin is closed. */
void th_send_sq(th_host *h, const char *line);

/* Shorthands on cJSON: the string at a dotted path ("result.content.0.text")
 * or NULL; the number, or NaN. */
const char *th_str(const cJSON *j, const char *path);
double th_num(const cJSON *j, const char *path);
const cJSON *th_get(const cJSON *j, const char *path);

#endif
