/* test_stdio_jsonrpc.c: what a hostile client found in the JSON-RPC layer
 * of the real host over stdio (issue 9): ids echoed exactly as written,
 * ids kept on invalid requests, a second initialize, bounded batches,
 * strict JSON (trailing bytes, control characters) and percent-escapes in
 * resource URIs. Responses are checked as the lines the host wrote, since a
 * parsed tree cannot tell 9007199254740993 from 9007199254740992. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 5000

TestSuite(stdio_jsonrpc, .timeout = 60, .fini = th_remove_config);

/* The next line from the host, which the test expects to exist. */
static char *next_text(th_host *h) {
  char *text = th_recv_text(h, WAIT_MS);

  cr_assert_not_null(text, "no message from the host; stderr:\n%s",
                     th_stderr(h));
  return text;
}

/* The text of the top-level "id" of a response line as the host wrote it
 * (its answers put "jsonrpc" first, so the first "id" member is it), or
 * "(absent)". Returns a pointer into a static buffer. */
static const char *id_text(const char *line) {
  static char buf[512];
  const char *p = strstr(line, "\"id\":"), *q;
  int depth = 0, in_string = 0;

  if (p == NULL)
    return "(absent)";
  p += 5;
  for (q = p; *q != '\0'; q++) {
    if (in_string) {
      if (*q == '\\')
        q++;
      else if (*q == '"')
        in_string = 0;
    } else if (*q == '"') {
      in_string = 1;
    } else if (*q == '{' || *q == '[') {
      depth++;
    } else if ((*q == '}' || *q == ']') && depth-- == 0) {
      break;
    } else if (*q == ',' && depth == 0) {
      break;
    }
  }
  snprintf(buf, sizeof(buf), "%.*s", (int)(q - p), p);
  return buf;
}

/* Expects the line to be an error with `code` and the id text `id`. */
static void expect_error_text(const char *line, int code, const char *id) {
  cJSON *msg = cJSON_Parse(line);
  const cJSON *c = th_get(msg, "error.code");

  cr_assert_not_null(msg, "not JSON: %s", line);
  cr_expect(cJSON_IsNumber(c) && c->valueint == code, "want code %d: %s", code,
            line);
  cr_expect_str_eq(id_text(line), id, "want id %s: %s", id, line);
  cJSON_Delete(msg);
}

/* Sends a ping and expects its answer next: nothing else came between. */
static void expect_ping_next(th_host *h) {
  char *line;

  th_send(h, "{\"jsonrpc\":\"2.0\",\"id\":424242,\"method\":\"ping\"}");
  line = next_text(h);
  cr_expect_str_eq(id_text(line), "424242", "expected the ping's answer: %s",
                   line);
  free(line);
}

static th_host *start_ready(const char *top, const char *plugins,
                            const char *version) {
  return th_start_config(top, NULL, plugins, version);
}

/* ---- ids (issue 9, item 9) ---- */

/* Integers past a double's precision, past 64 bits, in exponent form, and
 * strings whose escapes a re-serialiser would rewrite: each is echoed byte
 * for byte. */
static const char *const exact_ids[] = {
    "9007199254740991",
    "9000000000000001",
    "9007199254740993",
    "-9007199254740993",
    "18446744073709551617",
    "-123456789012345678901234567890",
    "-0",
    "0",
    "1e3",
    "1E+2",
    "10e-1",
    "2.0",
    "\"\\u0041\"",
    "\"a\\\"b\\\\c\\/d\"",
    "\"\\ud83d\\ude00\"",
    "\"caf\xc3\xa9\"",
    "\"\"",
};

Test(stdio_jsonrpc, ids_are_echoed_as_written_on_results) {
  th_host *h = start_ready(NULL, "{'plugin':'ok','prefix':'ok'}", "2025-11-25");
  size_t i;

  for (i = 0; i < sizeof(exact_ids) / sizeof(*exact_ids); i++) {
    char *line;

    th_request_async(h, exact_ids[i], "ping", NULL);
    line = next_text(h);
    cr_expect_str_eq(id_text(line), exact_ids[i], "%s", line);
    free(line);
    /* Through a plugin call and back. */
    th_request_async(h, exact_ids[i], "tools/call",
                     "{\"name\":\"ok_echo\",\"arguments\":{\"text\":\"x\"}}");
    line = next_text(h);
    cr_expect_str_eq(id_text(line), exact_ids[i], "%s", line);
    cr_expect_not_null(strstr(line, "\"result\""), "%s", line);
    free(line);
  }
  th_stop_config(h);
}

Test(stdio_jsonrpc, ids_are_echoed_as_written_on_errors) {
  th_host *h = start_ready(NULL, "{'plugin':'ok','prefix':'ok'}", "2025-11-25");
  size_t i;

  for (i = 0; i < sizeof(exact_ids) / sizeof(*exact_ids); i++) {
    char *line;

    th_request_async(h, exact_ids[i], "no/such", NULL);
    line = next_text(h);
    expect_error_text(line, -32601, exact_ids[i]);
    free(line);
    th_request_async(h, exact_ids[i], "tools/call",
                     "{\"name\":\"ok_nope\",\"arguments\":{}}");
    line = next_text(h);
    expect_error_text(line, -32602, exact_ids[i]);
    free(line);
    th_request_async(h, exact_ids[i], "tools/list", "[1]");
    line = next_text(h);
    expect_error_text(line, -32602, exact_ids[i]);
    free(line);
  }
  th_stop_config(h);
}

/* Before a session exists too: the initialize gate answers with the id. */
Test(stdio_jsonrpc, ids_are_echoed_as_written_before_initialize) {
  th_host *h = start_ready(NULL, "{'plugin':'ok','prefix':'ok'}", NULL);
  char *line;

  th_request_async(h, "9007199254740993", "tools/list", NULL);
  line = next_text(h);
  expect_error_text(line, -32600, "9007199254740993");
  free(line);
  th_stop_config(h);
}

/* Two ids a double cannot tell apart are two requests: both run, and a
 * cancellation names one of them by its text. */
Test(stdio_jsonrpc, ids_in_flight_and_cancellations_match_by_text) {
  th_host *h =
      start_ready(NULL, "{'plugin':'slow','prefix':'slow'}", "2025-11-25");
  const char *args = "{\"name\":\"slow_sleep\",\"arguments\":{\"ms\":400}}";
  int got_992 = 0, got_993 = 0;
  char *line;

  th_request_async(h, "9007199254740993", "tools/call", args);
  th_request_async(h, "9007199254740992", "tools/call", args);
  th_send(h, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
             "\"params\":{\"requestId\":9007199254740993}}");
  th_send(h, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
             "\"params\":{\"requestId\":9007199254740994}}");
  /* Both answers (if any) come before a ping sent once the sleeps end. */
  usleep(700 * 1000);
  th_send(h, "{\"jsonrpc\":\"2.0\",\"id\":424242,\"method\":\"ping\"}");
  for (;;) {
    line = next_text(h);
    if (strcmp(id_text(line), "424242") == 0) {
      free(line);
      break;
    }
    if (strcmp(id_text(line), "9007199254740992") == 0) {
      cr_expect_not_null(strstr(line, "slept 400 ms"), "%s", line);
      got_992++;
    } else if (strcmp(id_text(line), "9007199254740993") == 0) {
      got_993++;
    }
    free(line);
  }
  cr_expect_eq(got_992, 1, "the call that was not cancelled: one answer");
  cr_expect_eq(got_993, 0, "the cancelled call is not answered");
  th_stop_config(h);
}

Test(stdio_jsonrpc, progress_tokens_are_echoed_as_written) {
  static const char *const tokens[] = {"9007199254740993", "-0", "1e3",
                                       "\"\\u0041b\""};
  th_host *h = start_ready(NULL, "{'plugin':'ok','prefix':'ok'}", "2025-11-25");
  size_t i;

  for (i = 0; i < sizeof(tokens) / sizeof(*tokens); i++) {
    char params[256], want[128], *line;
    int progress = 0;

    snprintf(params, sizeof(params),
             "{\"name\":\"ok_progress\",\"arguments\":{},"
             "\"_meta\":{\"progressToken\":%s}}",
             tokens[i]);
    snprintf(want, sizeof(want), "\"progressToken\":%s,", tokens[i]);
    th_request_async(h, "77", "tools/call", params);
    for (;;) {
      line = next_text(h);
      if (strstr(line, "notifications/progress") != NULL) {
        cr_expect_not_null(strstr(line, want), "want %s: %s", want, line);
        progress++;
        free(line);
        continue;
      }
      cr_expect_str_eq(id_text(line), "77", "%s", line);
      free(line);
      break;
    }
    cr_expect_eq(progress, 3, "token %s", tokens[i]);
  }
  th_stop_config(h);
}

/* ---- invalid requests keep a valid id (item 10) ---- */

Test(stdio_jsonrpc, invalid_requests_keep_a_valid_id) {
  static const struct {
    const char *line, *id;
  } cases[] = {
      {"{'jsonrpc':'1.0','id':6,'method':'ping'}", "6"},
      {"{'id':'six','method':'ping'}", "\"six\""},
      {"{'jsonrpc':2,'id':9007199254740993,'method':'ping'}",
       "9007199254740993"},
      {"{'method':'ping','params':{},'id':7,'jsonrpc':'2'}", "7"},
      {"{'jsonrpc':'2.0','id':8}", "8"},
      {"{'jsonrpc':'2.0','id':9,'method':7}", "9"},
      /* JSON-RPC allows a number; MCP wants an integer, so the request is
       * refused, but with its id so the client can match the answer. */
      {"{'jsonrpc':'2.0','id':1.5,'method':'ping'}", "1.5"},
      {"{'jsonrpc':'2.0','id':-2.25e-3,'method':'ping'}", "-2.25e-3"},
      /* Ids that are no ids at all: null. */
      {"{'jsonrpc':'2.0','id':null,'method':'ping'}", "null"},
      {"{'jsonrpc':'2.0','id':true,'method':'ping'}", "null"},
      {"{'jsonrpc':'2.0','id':[1],'method':'ping'}", "null"},
      {"{'jsonrpc':'2.0','id':{'a':1},'method':'ping'}", "null"},
      {"{'jsonrpc':'1.0','id':false,'method':'ping'}", "null"},
      {"42", "null"},
      {"'a string'", "null"},
      {"null", "null"},
  };
  th_host *h = start_ready(NULL, "{'plugin':'ok','prefix':'ok'}", "2025-11-25");
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    char *line;

    th_send_sq(h, cases[i].line);
    line = next_text(h);
    expect_error_text(line, -32600, cases[i].id);
    free(line);
  }
  expect_ping_next(h);
  th_stop_config(h);
}

/* ---- a second initialize (item 7) ---- */

Test(stdio_jsonrpc, a_second_initialize_is_refused) {
  th_host *h = start_ready(NULL, "{'plugin':'ok','prefix':'ok'}", "2025-11-25");
  char *line;

  th_request_async(h, "2", "initialize",
                   "{\"protocolVersion\":\"2025-03-26\",\"capabilities\":{}}");
  line = next_text(h);
  expect_error_text(line, -32600, "2");
  cr_expect_not_null(strstr(line, "already initialized"), "%s", line);
  free(line);
  /* The session still speaks 2025-11-25: no batches. */
  th_send(h, "[{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}]");
  line = next_text(h);
  expect_error_text(line, -32600, "null");
  free(line);
  /* Nor does the same version renegotiate. */
  th_request_async(h, "4", "initialize",
                   "{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{}}");
  line = next_text(h);
  expect_error_text(line, -32600, "4");
  free(line);
  expect_ping_next(h);
  th_stop_config(h);
}

Test(stdio_jsonrpc, initialize_inside_a_batch_is_refused) {
  th_host *h = start_ready(NULL, "{'plugin':'ok','prefix':'ok'}", "2025-03-26");
  cJSON *msg;
  char *line;

  th_send(h, "[{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"initialize\","
             "\"params\":{\"protocolVersion\":\"2025-11-25\","
             "\"capabilities\":{}}},"
             "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\"}]");
  line = next_text(h);
  msg = cJSON_Parse(line);
  cr_assert(cJSON_IsArray(msg), "%s", line);
  cr_assert_eq(cJSON_GetArraySize(msg), 2, "%s", line);
  cr_expect_eq(th_num(msg, "0.id"), 5, "%s", line);
  cr_expect_eq(th_num(msg, "0.error.code"), -32600, "%s", line);
  cr_expect_not_null(th_str(msg, "0.error.message"), "%s", line);
  cr_expect_not_null(strstr(th_str(msg, "0.error.message") ?: "", "batch"),
                     "%s", line);
  cr_expect(cJSON_IsObject(th_get(msg, "1.result")), "%s", line);
  cJSON_Delete(msg);
  free(line);
  /* Still 2025-03-26: batches are still accepted. */
  th_send(h, "[{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}]");
  line = next_text(h);
  cr_expect_eq(line[0], '[', "%s", line);
  free(line);
  th_stop_config(h);
}

/* ---- batches (item 6) ---- */

static char *batch_of_pings(int n) {
  size_t cap = (size_t)n * 64 + 8, len = 0;
  char *text = malloc(cap);
  int i;

  text[len++] = '[';
  for (i = 0; i < n; i++)
    len += (size_t)snprintf(text + len, cap - len,
                            "%s{\"jsonrpc\":\"2.0\",\"id\":%d,"
                            "\"method\":\"ping\"}",
                            i ? "," : "", i + 1);
  text[len++] = ']';
  text[len] = '\0';
  return text;
}

Test(stdio_jsonrpc, batch_members_are_bounded) {
  th_host *h = start_ready("'limits':{'max_batch_members':4},",
                           "{'plugin':'ok','prefix':'ok'}", "2025-03-26");
  cJSON *msg;
  char *text, *line;

  text = batch_of_pings(4);
  th_send(h, text);
  free(text);
  line = next_text(h);
  msg = cJSON_Parse(line);
  cr_expect(cJSON_IsArray(msg) && cJSON_GetArraySize(msg) == 4, "%s", line);
  cJSON_Delete(msg);
  free(line);

  text = batch_of_pings(5);
  th_send(h, text);
  free(text);
  line = next_text(h);
  expect_error_text(line, -32600, "null");
  cr_expect_not_null(strstr(line, "more than 4 members"), "%s", line);
  free(line);
  expect_ping_next(h);
  th_stop_config(h);
}

/* The peak resident set of the host, from /proc, in KiB. Not under ASan,
 * whose quarantine holds freed memory. */
#ifndef PH_TEST_ASAN
static long peak_rss_kib(th_host *h) {
  char path[64], row[256];
  long kib = -1;
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/status", (int)th_pid(h));
  f = fopen(path, "r");
  cr_assert_not_null(f);
  while (fgets(row, sizeof(row), f) != NULL)
    if (sscanf(row, "VmHWM: %ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib;
}
#endif

/* The input: a body at the size limit of two million members that
 * are all invalid. One small error comes back at once. */
Test(stdio_jsonrpc, a_huge_batch_of_invalid_members_is_one_error) {
  th_host *h = start_ready(NULL, "{'plugin':'ok','prefix':'ok'}", "2025-03-26");
  size_t n = (4u << 20) - 16, i;
  char *text = malloc(n + 2), *line;
  long long started;

  text[0] = '[';
  for (i = 1; i + 2 < n; i += 2)
    memcpy(text + i, "1,", 2);
  text[i++] = '1';
  text[i++] = ']';
  text[i++] = '\n';
  started = th_now_ms();
  cr_assert_eq(th_send_raw(h, text, i), 0);
  free(text);
  line = next_text(h);
  cr_expect_lt(th_now_ms() - started, 2000, "answered after %lld ms",
               th_now_ms() - started);
  cr_expect_lt(strlen(line), 1024, "a %zu-byte answer", strlen(line));
  expect_error_text(line, -32600, "null");
  free(line);
#ifndef PH_TEST_ASAN
  cr_expect_lt(peak_rss_kib(h), 64 * 1024, "peak RSS %ld KiB", peak_rss_kib(h));
#endif
  expect_ping_next(h);
  th_stop_config(h);
}

/* Members' answers add up to at most max_message_bytes: past it a member
 * gets a short error instead of its result, so every request is answered
 * and the whole stays bounded. A page of tools/list is far larger than the
 * request for it. */
Test(stdio_jsonrpc, batch_response_is_bounded) {
  th_host *h = start_ready("'limits':{'max_message_bytes':4096},",
                           "{'plugin':'ok','prefix':'ok'}", "2025-03-26");
  char text[4096], *line;
  int i, results = 0, errors = 0;
  size_t len = 0;
  cJSON *msg, *item;

  len += (size_t)snprintf(text + len, sizeof(text) - len, "[");
  for (i = 0; i < 8; i++)
    len += (size_t)snprintf(text + len, sizeof(text) - len,
                            "%s{\"jsonrpc\":\"2.0\",\"id\":%d,"
                            "\"method\":\"tools/list\"}",
                            i ? "," : "", i + 1);
  snprintf(text + len, sizeof(text) - len, "]");
  th_send(h, text);
  line = next_text(h);
  msg = cJSON_Parse(line);
  cr_assert(cJSON_IsArray(msg), "%s", line);
  cr_expect_eq(cJSON_GetArraySize(msg), 8, "%s", line);
  cJSON_ArrayForEach(item, msg) {
    if (cJSON_IsArray(th_get(item, "result.tools")))
      results++;
    else if (th_num(item, "error.code") == -32603)
      errors++;
  }
  cr_expect_gt(results, 0, "%s", line);
  cr_expect_gt(errors, 0, "%s", line);
  cr_expect_eq(results + errors, 8, "%s", line);
  cJSON_Delete(msg);
  cr_expect_leq(strlen(line), 4096 + 8 * 200, "%zu bytes", strlen(line));
  free(line);
  expect_ping_next(h);
  th_stop_config(h);
}

/* ---- strict JSON (item 13) ---- */

Test(stdio_jsonrpc, bytes_after_the_value_are_a_parse_error) {
  static const char *const bad[] = {
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"
      "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} garbage",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}x",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} 1",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\"\"",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}[]",
      "1 2",
      "\"a\" \"b\"",
  };
  th_host *h = start_ready(NULL, "{'plugin':'ok','prefix':'ok'}", "2025-11-25");
  char *line;
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    th_send(h, bad[i]);
    line = next_text(h);
    expect_error_text(line, -32700, "null");
    free(line);
  }
  /* Whitespace after the value is fine. */
  th_send(h, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"} \t \r");
  line = next_text(h);
  cr_expect_str_eq(id_text(line), "3", "%s", line);
  cr_expect_not_null(strstr(line, "\"result\""), "%s", line);
  free(line);
  expect_ping_next(h);
  th_stop_config(h);
}

/* Every control character, raw, in a method name, a params string, an id
 * string and a member name; outside strings all but tab and CR (the
 * newline ends the line). \u0000 names a different string to C code than
 * to the client, so it is refused too. */
Test(stdio_jsonrpc, control_characters_in_strings_are_refused) {
  static const char *const places[] = {
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"pi%sng\"}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
      "{\"name\":\"ok_echo\",\"arguments\":{\"text\":\"a%sb\"}}}",
      "{\"jsonrpc\":\"2.0\",\"id\":\"a%sb\",\"method\":\"ping\"}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":"
      "{\"k%s\":1}}",
  };
  th_host *h = start_ready(NULL, "{'plugin':'ok','prefix':'ok'}", "2025-11-25");
  char text[512], c[2] = {0, 0}, *line;
  size_t i;

  for (i = 0; i < sizeof(places) / sizeof(*places); i++) {
    for (c[0] = 1; c[0] < 0x20; c[0]++) {
      if (c[0] == '\n')
        continue;
      snprintf(text, sizeof(text), places[i], c);
      th_send(h, text);
      line = next_text(h);
      expect_error_text(line, -32700, "null");
      free(line);
    }
    snprintf(text, sizeof(text), places[i], "\\u0000");
    th_send(h, text);
    line = next_text(h);
    expect_error_text(line, -32700, "null");
    free(line);
  }
  for (c[0] = 1; c[0] < 0x20; c[0]++) {
    if (c[0] == '\n' || c[0] == '\t' || c[0] == '\r')
      continue;
    snprintf(text, sizeof(text),
             "{\"jsonrpc\":\"2.0\",%s\"id\":1,\"method\":\"ping\"}", c);
    th_send(h, text);
    line = next_text(h);
    expect_error_text(line, -32700, "null");
    free(line);
  }
  /* Escaped, they are fine. */
  th_send(h,
          "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":"
          "{\"name\":\"ok_echo\",\"arguments\":{\"text\":\"a\\u0001\\tb\"}}}");
  line = next_text(h);
  cr_expect_not_null(strstr(line, "\"result\""), "%s", line);
  free(line);
  expect_ping_next(h);
  th_stop_config(h);
}

/* ---- resource URIs (item 13) ---- */

static char *read_resource(th_host *h, const char *uri_json) {
  char params[512];

  snprintf(params, sizeof(params), "{\"uri\":%s}", uri_json);
  th_request_async(h, "1", "resources/read", params);
  return next_text(h);
}

Test(stdio_jsonrpc, percent_escapes_never_name_another_resource) {
  static const char *const not_found[] = {
      "\"ok://items/42%00\"", "\"ok://items/42%00x\"", "\"ok://items/%00\"",
      "\"ok://items/%ff\"",   "\"ok://items/%c3\"",    "\"ok://hello%00\"",
  };
  th_host *h = start_ready(NULL, "{'plugin':'ok','prefix':'ok'}", "2025-11-25");
  cJSON *msg;
  char *line;
  size_t i;

  for (i = 0; i < sizeof(not_found) / sizeof(*not_found); i++) {
    line = read_resource(h, not_found[i]);
    expect_error_text(line, -32002, "1");
    free(line);
  }
  /* An escape of a character the URI may hold names the same resource
   * (RFC 3986, 6.2.2.2): the variable gets the decoded text. */
  line = read_resource(h, "\"ok://items/4%32\"");
  msg = cJSON_Parse(line);
  cr_expect_str_eq(th_str(msg, "result.contents.0.text"), "42", "%s", line);
  cJSON_Delete(msg);
  free(line);
  line = read_resource(h, "\"ok://items/caf%C3%A9\"");
  msg = cJSON_Parse(line);
  cr_expect_str_eq(th_str(msg, "result.contents.0.text"), "caf\xc3\xa9", "%s",
                   line);
  cJSON_Delete(msg);
  free(line);
  th_stop_config(h);
}

/* The database plugin, with the URI of the issue. */
Test(stdio_jsonrpc, a_nul_escape_does_not_read_a_table) {
  char *cfg = th_write_config(PH_BUILD_DIR "/plugins", NULL, NULL,
                              "{'plugin':'database','prefix':'db','config':"
                              "{'url':'sqlite:etc/data/sales.db'}}");
  th_host *h = th_start(cfg, NULL);
  cJSON *msg;
  char *line;

  cJSON_Delete(th_initialize(h, "2025-11-25", NULL));
  line = read_resource(h, "\"db://tables/orders\"");
  msg = cJSON_Parse(line);
  cr_expect_not_null(th_get(msg, "result.contents.0"), "%s", line);
  cJSON_Delete(msg);
  free(line);
  line = read_resource(h, "\"db://tables/orders%00\"");
  expect_error_text(line, -32002, "1");
  free(line);
  line = read_resource(h, "\"db://tables/orders%00junk\"");
  expect_error_text(line, -32002, "1");
  free(line);
  th_stop(h, WAIT_MS);
  unlink(cfg);
  free(cfg);
}

/* ---- stdin ends (item 11) ---- */

Test(stdio_jsonrpc, a_last_line_without_newline_is_served) {
  th_host *h =
      start_ready(NULL, "{'plugin':'slow','prefix':'slow'}", "2025-11-25");
  const char *last = "{\"jsonrpc\":\"2.0\",\"id\":\"last\",\"method\":"
                     "\"tools/call\",\"params\":{\"name\":\"slow_sleep\","
                     "\"arguments\":{\"ms\":100}}}";
  char *line;
  int status;

  cr_assert_eq(th_send_raw(h, last, strlen(last)), 0);
  th_close_stdin(h);
  line = next_text(h);
  cr_expect_str_eq(id_text(line), "\"last\"", "%s", line);
  cr_expect_not_null(strstr(line, "slept 100 ms"), "%s", line);
  free(line);
  status = th_stop_config(h);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}

/* What a client that was cut off mid-message expects: an answer that says
 * the message was not JSON, then the orderly exit EOF always gives. */
Test(stdio_jsonrpc, a_cut_off_last_line_is_a_parse_error) {
  th_host *h = start_ready(NULL, "{'plugin':'ok','prefix':'ok'}", "2025-11-25");
  const char *cut = "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"pi";
  char *line;
  int status;

  cr_assert_eq(th_send_raw(h, cut, strlen(cut)), 0);
  th_close_stdin(h);
  line = next_text(h);
  expect_error_text(line, -32700, "null");
  free(line);
  status = th_stop_config(h);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}
