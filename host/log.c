/* log.c: see log.h. Each line is formatted into one buffer and written with
 * a single write(2), so lines from worker threads never interleave. */
#include "log.h"

#include "utf8.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* A message longer than this is cut, and so is a context member longer
 * than CTX_MAX (left out); a JSON line has room for every byte of them
 * escaped as \uXXXX. */
#define MSG_MAX 4096
#define CTX_MAX 256
#define LINE_MAX_JSON (6 * MSG_MAX + 6 * 6 * CTX_MAX + 256)

static atomic_int threshold = PH_LOG_INFO;
static atomic_long errors;
static atomic_int json;
static atomic_int log_fd = STDERR_FILENO;
/* Loop thread: the file log_fd is, or "" for stderr. A fixed buffer, as
 * the plugin levels below: alloc.c logs, so log.c allocates nothing. */
static char log_path[PATH_MAX];

/* What a line is about; any member may be NULL. */
typedef struct ph__log_ctx {
  const char *dept;       /* Department. */
  const char *plugin;     /* Plugin name. */
  const char *instance;   /* The instance's prefix. */
  const char *request_id; /* Not set yet. */
  const char *session;    /* Not set yet. */
  const char *trace_id;   /* Not set yet. */
} ph__log_ctx;

/* Per-plugin thresholds: read from any thread, replaced on the loop. Plugin
 * names are at most 16 bytes (loader.c). */
static struct {
  uv_once_t once;
  uv_mutex_t mu;
  atomic_size_t n;
  char plugins[PH__LOG_MAX_PLUGIN_LEVELS][17];
  int levels[PH__LOG_MAX_PLUGIN_LEVELS];
} PL = {.once = UV_ONCE_INIT};

long ph__log_errors(void) {
  return atomic_load(&errors);
}

static const char *const level_names[] = {"debug",   "info",     "notice",
                                          "warning", "error",    "critical",
                                          "alert",   "emergency"};

void ph__log_set_level(int level) {
  atomic_store(&threshold, level);
}

int ph__log_level(void) {
  return atomic_load(&threshold);
}

int ph__log_level_parse(const char *name) {
  int i;

  for (i = 0; i <= PH_LOG_EMERGENCY; i++)
    if (strcmp(name, level_names[i]) == 0)
      return i;
  return -1;
}

const char *ph__log_level_name(int level) {
  if (level < 0 || level > PH_LOG_EMERGENCY)
    return "unknown";
  return level_names[level];
}

void ph__log_set_json(int on) {
  atomic_store(&json, on != 0);
}

int ph__log_open(const char *path) {
  int fd, cur = atomic_load(&log_fd);

  if (path == NULL)
    path = "";
  if (strcmp(path, log_path) == 0)
    return 0;
  if (strlen(path) >= sizeof(log_path))
    return -ENAMETOOLONG;
  if (*path == '\0') {
    /* The number stays in use: a worker may be writing to it now. */
    if (dup2(STDERR_FILENO, cur) < 0)
      return -errno;
    log_path[0] = '\0';
    return 0;
  }
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0)
    return -errno;
  if (cur == STDERR_FILENO) {
    atomic_store(&log_fd, fd);
  } else {
    if (dup2(fd, cur) < 0) {
      close(fd);
      return -errno;
    }
    close(fd);
  }
  snprintf(log_path, sizeof(log_path), "%s", path);
  return 0;
}

int ph__log_reopen(void) {
  int fd;

  if (log_path[0] == '\0')
    return 0;
  fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0)
    return -errno;
  if (dup2(fd, atomic_load(&log_fd)) < 0) {
    close(fd);
    return -errno;
  }
  close(fd);
  return 0;
}

static void plugin_levels_init(void) {
  uv_mutex_init(&PL.mu);
}

void ph__log_set_plugin_levels(const char *const *plugins, const int *levels,
                               size_t n) {
  size_t i;

  if (n > PH__LOG_MAX_PLUGIN_LEVELS)
    n = PH__LOG_MAX_PLUGIN_LEVELS;
  uv_once(&PL.once, plugin_levels_init);
  uv_mutex_lock(&PL.mu);
  for (i = 0; i < n; i++) {
    snprintf(PL.plugins[i], sizeof(PL.plugins[i]), "%s", plugins[i]);
    PL.levels[i] = levels[i];
  }
  atomic_store(&PL.n, n);
  uv_mutex_unlock(&PL.mu);
}

int ph__log_plugin_level(const char *plugin) {
  int level = atomic_load(&threshold);
  size_t i;

  if (atomic_load_explicit(&PL.n, memory_order_relaxed) == 0 || plugin == NULL)
    return level;
  uv_mutex_lock(&PL.mu);
  for (i = 0; i < atomic_load(&PL.n); i++)
    if (strcmp(PL.plugins[i], plugin) == 0)
      level = PL.levels[i];
  uv_mutex_unlock(&PL.mu);
  return level;
}

int ph__fail(char **err, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  if (vasprintf(err, fmt, ap) < 0)
    *err = NULL;
  va_end(ap);
  return PH__EFAIL;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" at out; returns its length. */
static size_t timestamp(char *out, size_t size) {
  struct timeval tv;
  struct tm tm;
  size_t n;

  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(out + n, size - n, ".%03dZ", (int)(tv.tv_usec / 1000));
  return n;
}

/* Appends s as a JSON string (quotes included) at line + *n; bytes that are
 * not well-formed UTF-8 become U+FFFD. line has room (LINE_MAX_JSON). */
static void put_json_string(char *line, size_t *n, const char *s) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
  char *o = line + *n;
  int k;

  *o++ = '"';
  while (p < end) {
    if (*p == '"' || *p == '\\') {
      *o++ = '\\';
      *o++ = (char)*p++;
    } else if (*p == '\n') {
      *o++ = '\\', *o++ = 'n', p++;
    } else if (*p < 0x20 || *p == 0x7f) {
      memcpy(o, "\\u00", 4);
      o[4] = hex[*p >> 4];
      o[5] = hex[*p & 15];
      o += 6, p++;
    } else if (*p < 0x80) {
      *o++ = (char)*p++;
    } else if ((k = ph__utf8_length(p, end)) > 0) {
      memcpy(o, p, (size_t)k + 1);
      o += k + 1, p += k + 1;
    } else {
      memcpy(o, "\\ufffd", 6);
      o += 6, p++;
    }
  }
  *o++ = '"';
  *n = (size_t)(o - line);
}

static void put_key(char *line, size_t *n, const char *key, const char *value) {
  size_t k = strlen(key);

  line[(*n)++] = ',';
  line[(*n)++] = '"';
  memcpy(line + *n, key, k);
  *n += k;
  memcpy(line + *n, "\":", 2);
  *n += 2;
  if (value == NULL) {
    memcpy(line + *n, "null", 4);
    *n += 4;
    return;
  }
  put_json_string(line, n, value);
}

/* Writes one line of msg at level, about ctx (NULL: none). */
static void emit(int level, const ph__log_ctx *ctx, const char *msg) {
  static const ph__log_ctx none;
  char line[LINE_MAX_JSON];
  size_t n;
  int m;

  if (!atomic_load_explicit(&json, memory_order_relaxed)) {
    n = timestamp(line, MSG_MAX);
    m = snprintf(line + n, MSG_MAX - n, " plughost[%d] %s: %s", (int)getpid(),
                 ph__log_level_name(level), msg);
    n = m < 0 ? n : n + (size_t)m;
    if (n > MSG_MAX - 2)
      n = MSG_MAX - 2;
  } else {
    if (ctx == NULL)
      ctx = &none;
    memcpy(line, "{\"ts\":\"", 7);
    n = 7 + timestamp(line + 7, 64);
    line[n++] = '"';
    put_key(line, &n, "level", ph__log_level_name(level));
    put_key(line, &n, "msg", msg);
    put_key(line, &n, "dept", ctx->dept);
    put_key(line, &n, "plugin", ctx->plugin);
    put_key(line, &n, "instance", ctx->instance);
    put_key(line, &n, "request_id", ctx->request_id);
    put_key(line, &n, "session", ctx->session);
    put_key(line, &n, "trace_id", ctx->trace_id);
    line[n++] = '}';
  }
  line[n++] = '\n';
  if (write(atomic_load_explicit(&log_fd, memory_order_relaxed), line, n) < 0)
    return; /* Nowhere left to report it. */
}

static int ctx_fits(const ph__log_ctx *c) {
  return c == NULL || ((!c->dept || strlen(c->dept) < CTX_MAX) &&
                       (!c->plugin || strlen(c->plugin) < CTX_MAX) &&
                       (!c->instance || strlen(c->instance) < CTX_MAX) &&
                       (!c->request_id || strlen(c->request_id) < CTX_MAX) &&
                       (!c->session || strlen(c->session) < CTX_MAX) &&
                       (!c->trace_id || strlen(c->trace_id) < CTX_MAX));
}

void ph__log(int level, const char *fmt, ...) {
  char msg[MSG_MAX];
  va_list ap;

  if (level >= PH_LOG_ERROR)
    atomic_fetch_add(&errors, 1);
  if (level < atomic_load(&threshold))
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  emit(level, NULL, msg);
}

void ph__log_from_plugin(int level, const char *dept, const char *plugin,
                         const char *prefix, const char *label,
                         const char *text) {
  ph__log_ctx ctx = {0};
  char msg[MSG_MAX];

  if (level >= PH_LOG_ERROR)
    atomic_fetch_add(&errors, 1);
  if (level < ph__log_plugin_level(plugin))
    return;
  ctx.dept = dept;
  ctx.plugin = plugin;
  ctx.instance = prefix;
  snprintf(msg, sizeof(msg), "[%s] %s", label ? label : "plugin", text);
  emit(level, ctx_fits(&ctx) ? &ctx : NULL, msg);
}
