/* audit.c: see audit.h. */
#include "audit.h"

#include "alloc.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
  char *path; /* The file open now, or NULL. */
  int fd;     /* Its descriptor; 2 when path is NULL. */
  int failed; /* A write failed and was logged. */
} A = {NULL, 2, 0};

void ph__audit_sha256(const char *data, size_t len, char out[65]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char md[32];
  unsigned int n = 0, i;

  if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
    strcpy(out, "");
    return;
  }
  for (i = 0; i < 32; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[64] = '\0';
}

/* Points A at cfg's destination, opening it when it changed. */
static void point_at(const ph__config *cfg) {
  const char *want = cfg->audit_log;
  int fd;

  if (want != NULL && strcmp(want, "stderr") == 0)
    want = NULL;
  if ((want == NULL && A.path == NULL) ||
      (want != NULL && A.path != NULL && strcmp(want, A.path) == 0))
    return;
  if (want != NULL) {
    fd = open(want, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      ph__error("audit_log %s: %s; audit lines go to stderr", want,
                strerror(errno));
      return;
    }
  } else {
    fd = 2;
  }
  ph__audit_close();
  A.fd = fd;
  A.path = want ? ph__xstrdup(want) : NULL;
  A.failed = 0;
}

static void put_or_null(cJSON *o, const char *key, const char *value) {
  ph__xjson_put(o, key, value ? cJSON_CreateString(value) : cJSON_CreateNull());
}

void ph__audit(const ph__config *cfg, const ph__audit_event *e) {
  cJSON *line = ph__xcheck(cJSON_CreateObject()), *p = NULL;
  char when[40], hash[65];
  struct timeval tv;
  struct tm tm;
  char *text;
  size_t len;

  point_at(cfg);
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03dZ",
           (int)(tv.tv_usec / 1000));
  ph__xjson_put_string(line, "time", when);
  ph__xjson_put_string(line, "event", e->event);
  if (e->principal != NULL)
    p = cJSON_Parse(e->principal);
  put_or_null(line, "sub",
              cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "sub")));
  put_or_null(
      line, "tenant",
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "tenant")));
  if (cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "key_id")))
    ph__xjson_put_string(
        line, "key_id",
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "key_id")));
  cJSON_Delete(p);
  put_or_null(line, "department", e->department);
  if (e->tool != NULL)
    ph__xjson_put_string(line, "tool", e->tool);
  if (e->args != NULL) {
    ph__audit_sha256(e->args, e->args_len, hash);
    ph__xjson_put_string(line, "args_sha256", hash);
  }
  ph__xjson_put_string(line, "outcome", e->outcome);
  if (e->reason != NULL)
    ph__xjson_put_string(line, "reason", e->reason);
  if (e->duration_ms >= 0)
    ph__xjson_put_number(line, "duration_ms",
                         (double)(long long)(e->duration_ms * 1000) / 1000);
  put_or_null(line, "client", e->client);
  text = ph__xjson_print(line);
  cJSON_Delete(line);
  len = strlen(text);
  text[len] = '\n';
  if (write(A.fd, text, len + 1) != (ssize_t)(len + 1) && !A.failed) {
    A.failed = 1;
    ph__error("audit: cannot write to %s: %s", A.path ? A.path : "stderr",
              strerror(errno));
  }
  free(text);
}

void ph__audit_close(void) {
  if (A.path != NULL) {
    close(A.fd);
    free(A.path);
  }
  A.path = NULL;
  A.fd = 2;
}
