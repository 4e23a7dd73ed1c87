/* log.h: the host log. One line per event on stderr (stdout belongs to the
 * stdio transport), with a level, so operators can grep it. */
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

/* How many error lines were logged (also when filtered): --check uses it. */
long ph__log_errors(void);

/* Sets *err to a malloc'd message (NULL when out of memory) and returns
 * PH__EFAIL: the error out-parameter of loading and parsing functions,
 * whose code says only that they failed and whose message says why. */
int ph__fail(char **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void ph__log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ph__debug(...) ph__log(PH_LOG_DEBUG, __VA_ARGS__)
#define ph__info(...) ph__log(PH_LOG_INFO, __VA_ARGS__)
#define ph__warn(...) ph__log(PH_LOG_WARNING, __VA_ARGS__)
#define ph__error(...) ph__log(PH_LOG_ERROR, __VA_ARGS__)

#endif
