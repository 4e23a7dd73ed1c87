/* floor.c: the least a line-based JSON-RPC server over stdio can do, as
 * the floor plughost is measured against: parse each line with cJSON and
 * answer a request with a canned result carrying its id. It reads all it
 * can, answers every complete line, and writes all answers in one write,
 * so it costs one read and one write per batch whatever the pipelining. */
#include <cjson/cJSON.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char initialize_result[] =
    "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{\"tools\":{}},"
    "\"serverInfo\":{\"name\":\"floor\",\"version\":\"1.0.0\"}}";
static const char call_result[] =
    "{\"content\":[{\"type\":\"text\",\"text\":\"hello\"}]}";

static struct {
  char *data;
  size_t len, cap;
} out;

static void append(const char *data, size_t len) {
  if (out.cap - out.len < len) {
    out.cap = (out.len + len) * 2;
    out.data = realloc(out.data, out.cap);
    if (out.data == NULL) {
      fputs("floor: out of memory\n", stderr);
      exit(1);
    }
  }
  memcpy(out.data + out.len, data, len);
  out.len += len;
}

static void answer(const char *line, size_t len) {
  static const char head[] = "{\"jsonrpc\":\"2.0\",\"id\":";
  cJSON *msg = cJSON_ParseWithLength(line, len), *id, *method;
  char id_text[128];
  const char *result;

  if (msg == NULL)
    return;
  id = cJSON_GetObjectItemCaseSensitive(msg, "id");
  method = cJSON_GetObjectItemCaseSensitive(msg, "method");
  /* Notifications get no answer; neither do ids too long to copy. */
  if (id != NULL && cJSON_IsString(method) &&
      cJSON_PrintPreallocated(id, id_text, sizeof(id_text), 0)) {
    result = strcmp(method->valuestring, "initialize") == 0 ? initialize_result
                                                            : call_result;
    append(head, sizeof(head) - 1);
    append(id_text, strlen(id_text));
    append(",\"result\":", 10);
    append(result, strlen(result));
    append("}\n", 2);
  }
  cJSON_Delete(msg);
}

static int write_all(void) {
  size_t off = 0;

  while (off < out.len) {
    ssize_t n = write(1, out.data + off, out.len - off);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    off += (size_t)n;
  }
  out.len = 0;
  return 0;
}

int main(void) {
  size_t cap = 262144, len = 0, start, i;
  char *in = malloc(cap);
  ssize_t n;

  if (in == NULL)
    return 1;
  for (;;) {
    if (len == cap) {
      cap *= 2;
      in = realloc(in, cap);
      if (in == NULL)
        return 1;
    }
    n = read(0, in + len, cap - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    start = 0;
    for (i = len, len += (size_t)n; i < len; i++) {
      if (in[i] != '\n')
        continue;
      answer(in + start, i - start);
      start = i + 1;
    }
    memmove(in, in + start, len - start);
    len -= start;
    if (write_all() != 0)
      break;
  }
  free(in);
  free(out.data);
  return 0;
}
