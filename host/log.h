/* log.h: the host log. One line per event on stderr (stdout belongs to the
 * stdio transport) or in log_file, with a level, so operators can grep it.
 *
 * Two formats. Text (log_format "text") is a line for a terminal:
 *   2026-11-21T10:00:00.123Z plughost[42] info: message
 * JSON (log_format "json") is one object a line, for a collector:
 *   {"ts":..,"level":..,"msg":..,"dept":..,"plugin":..,"instance":..,
 *    "request_id":..,"session":..,"trace_id":..}
 * where a plugin's lines (api->log) name their department, plugin and
 * instance. request_id, session and trace_id are null for now: the
 * correlation ids of issue 14 are not in yet. */
#ifndef PH_LOG_H
#define PH_LOG_H

#include "error.h"
#include "plughost.h"

/* Lines below this level (enum ph_log_level) are dropped. */
void ph__log_set_level(int level);
int ph__log_level(void);

/* Parses an MCP/RFC 5424 level name ("debug" ... "emergency"); -1 if
 * unknown. */
int ph__log_level_parse(const char *name);
const char *ph__log_level_name(int level);

/* Where lines go: the file at path (opened for appending, created 0640),
 * or stderr for NULL. Returns 0, or a negative errno (the destination is
 * then unchanged). ph__log_reopen() opens the same path again, for
 * logrotate's SIGUSR1; the descriptor number stays, so a line written
 * meanwhile goes to the old file or the new, never nowhere. Loop thread. */
int ph__log_open(const char *path);
int ph__log_reopen(void);

/* 1: JSON lines; 0: text. */
void ph__log_set_json(int json);

/* Per-plugin thresholds: n pairs of plugin names and levels (copied),
 * replacing the ones before; past PH__LOG_MAX_PLUGIN_LEVELS they are
 * ignored (config.c refuses more). A plugin not named uses the host's
 * level. */
#define PH__LOG_MAX_PLUGIN_LEVELS 64
void ph__log_set_plugin_levels(const char *const *plugins, const int *levels,
                               size_t n);

/* The threshold of lines a plugin logs through api->log. Any thread. */
int ph__log_plugin_level(const char *plugin);

/* How many error lines were logged (also when filtered): --check uses it. */
long ph__log_errors(void);

/* Sets *err to a malloc'd message (NULL when out of memory) and returns
 * PH__EFAIL: the error out-parameter of loading and parsing functions,
 * whose code says only that they failed and whose message says why. */
int ph__fail(char **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void ph__log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A line from a plugin (api->log): the context's plugin and instance are
 * these, the rest the thread's; its text, label and fields stay as the
 * text format always had them ("[label] text"). */
void ph__log_from_plugin(int level, const char *dept, const char *plugin,
                         const char *prefix, const char *label,
                         const char *text);

#define ph__debug(...) ph__log(PH_LOG_DEBUG, __VA_ARGS__)
#define ph__info(...) ph__log(PH_LOG_INFO, __VA_ARGS__)
#define ph__warn(...) ph__log(PH_LOG_WARNING, __VA_ARGS__)
#define ph__error(...) ph__log(PH_LOG_ERROR, __VA_ARGS__)

#endif
