/* test_stdio.c: the stdio transport and the JSON-RPC layer of the real host:
 * version negotiation, the initialize gate, error codes for every kind of
 * bad message, batches, size and encoding limits, framing, pipelining, and
 * an orderly exit on stdin EOF and SIGTERM. */
#include "harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 5000

static th_host *start(const char *top, const char *plugins) {
  return th_start_config(top, NULL, plugins, NULL);
}

static th_host *start_ready(const char *version, const char *plugins) {
  return th_start_config(NULL, NULL, plugins, version);
}

/* The next message from the host, which the test expects to exist. */
static cJSON *next(th_host *h) {
  cJSON *msg = th_recv(h, WAIT_MS);

  cr_assert_not_null(msg, "no message from the host; stderr:\n%s",
                     th_stderr(h));
  return msg;
}

static void expect_error(const cJSON *msg, int code, const char *id_json) {
  const cJSON *id = th_get(msg, "id");
  char *text = cJSON_PrintUnformatted(msg);
  char *got = id ? cJSON_PrintUnformatted(id) : strdup("(absent)");

  cr_expect_null(th_get(msg, "result"), "unexpected result: %s", text);
  cr_expect_eq(th_num(msg, "error.code"), code, "want code %d: %s", code, text);
  cr_expect_str_eq(th_str(msg, "jsonrpc"), "2.0", "%s", text);
  cr_expect_str_eq(got, id_json, "want id %s: %s", id_json, text);
  free(got);
  free(text);
}

/* Sends a ping with id 424242 and checks that it is the very next message:
 * nothing else was answered in between and the host still serves. */
static void expect_ping_next(th_host *h) {
  cJSON *msg;
  char *text;

  th_send(h, "{\"jsonrpc\":\"2.0\",\"id\":424242,\"method\":\"ping\"}");
  msg = next(h);
  text = cJSON_PrintUnformatted(msg);
  cr_assert_eq(th_num(msg, "id"), 424242,
               "expected the ping's response, "
               "got %s",
               text);
  cr_assert(cJSON_IsObject(th_get(msg, "result")), "%s", text);
  free(text);
  cJSON_Delete(msg);
}

TestSuite(stdio, .timeout = 30, .fini = th_remove_config);

/* ---- initialize ---- */

Test(stdio, initialize_echoes_each_supported_version) {
  static const char *const versions[] = {"2024-11-05", "2025-03-26",
                                         "2025-06-18", "2025-11-25"};
  size_t i;

  for (i = 0; i < sizeof(versions) / sizeof(*versions); i++) {
    th_host *h = start(NULL, "{'plugin':'ok','prefix':'ok'}");
    cJSON *res = th_initialize(h, versions[i], NULL);

    cr_expect_str_eq(th_str(res, "result.protocolVersion"), versions[i]);
    cr_expect_str_eq(th_str(res, "result.serverInfo.name"), "plughost");
    cr_expect_not_null(th_str(res, "result.serverInfo.version"));
    cJSON_Delete(res);
    cr_expect_eq(th_stop_config(h), 0);
  }
}

Test(stdio, initialize_unknown_version_offers_the_newest) {
  th_host *h = start(NULL, "{'plugin':'ok','prefix':'ok'}");
  cJSON *res = th_initialize(h, "2099-01-01", NULL);

  cr_expect_str_eq(th_str(res, "result.protocolVersion"), "2025-11-25");
  cJSON_Delete(res);
  expect_ping_next(h);
  th_stop_config(h);
}

Test(stdio, initialize_without_version_is_invalid_params) {
  th_host *h = start(NULL, "{'plugin':'ok','prefix':'ok'}");
  cJSON *res = th_request(h, "initialize", "{\"capabilities\":{}}", WAIT_MS);

  cr_assert_not_null(res);
  cr_expect_eq(th_num(res, "error.code"), -32602);
  cJSON_Delete(res);
  th_stop_config(h);
}

Test(stdio, capabilities_reflect_what_is_loaded) {
  th_host *h = start(NULL, "{'plugin':'ok','prefix':'ok'}");
  cJSON *res = th_initialize(h, "2025-06-18", NULL);
  const cJSON *caps = th_get(res, "result.capabilities");

  cr_assert(cJSON_IsObject(caps));
  cr_expect(cJSON_IsObject(th_get(caps, "tools")));
  cr_expect(cJSON_IsObject(th_get(caps, "resources")));
  cr_expect(cJSON_IsObject(th_get(caps, "prompts")));
  cr_expect(cJSON_IsObject(th_get(caps, "logging")));
  cr_expect(cJSON_IsObject(th_get(caps, "completions")));
  cJSON_Delete(res);
  th_stop_config(h);

  /* slow has tools only: nothing about resources, prompts, completions. */
  h = start(NULL, "{'plugin':'slow','prefix':'slow'}");
  res = th_initialize(h, "2025-06-18", NULL);
  caps = th_get(res, "result.capabilities");
  cr_assert(cJSON_IsObject(caps));
  cr_expect(cJSON_IsObject(th_get(caps, "tools")));
  cr_expect_null(th_get(caps, "resources"));
  cr_expect_null(th_get(caps, "prompts"));
  cr_expect_null(th_get(caps, "completions"));
  cJSON_Delete(res);
  th_stop_config(h);

  /* Nothing loaded: no tools either. */
  h = start(NULL, "");
  res = th_initialize(h, "2025-06-18", NULL);
  caps = th_get(res, "result.capabilities");
  cr_assert(cJSON_IsObject(caps));
  cr_expect_null(th_get(caps, "tools"));
  cJSON_Delete(res);
  th_stop_config(h);
}

Test(stdio, requests_before_initialize_are_refused_but_ping_works) {
  th_host *h = start(NULL, "{'plugin':'ok','prefix':'ok'}");
  cJSON *msg;

  th_send_sq(h, "{'jsonrpc':'2.0','id':1,'method':'tools/list'}");
  msg = next(h);
  cr_expect(cJSON_IsObject(th_get(msg, "error")));
  cr_expect_eq(th_num(msg, "id"), 1);
  cJSON_Delete(msg);

  th_send_sq(h, "{'jsonrpc':'2.0','id':'c','method':'tools/call','params':"
                "{'name':'ok_echo','arguments':{'text':'x'}}}");
  msg = next(h);
  cr_expect(cJSON_IsObject(th_get(msg, "error")));
  cr_expect_str_eq(th_str(msg, "id"), "c");
  cJSON_Delete(msg);

  th_send_sq(h, "{'jsonrpc':'2.0','id':2,'method':'ping'}");
  msg = next(h);
  cr_expect_eq(th_num(msg, "id"), 2);
  cr_expect(cJSON_IsObject(th_get(msg, "result")));
  cJSON_Delete(msg);

  /* After initialize the same request is served. */
  cJSON_Delete(th_initialize(h, "2025-11-25", NULL));
  msg = th_request(h, "tools/list", NULL, WAIT_MS);
  cr_assert_not_null(msg);
  cr_expect(cJSON_IsArray(th_get(msg, "result.tools")));
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(stdio, notifications_get_no_reply) {
  th_host *h = start_ready("2025-11-25", "{'plugin':'ok','prefix':'ok'}");

  th_send_sq(h, "{'jsonrpc':'2.0','method':'notifications/initialized'}");
  th_send_sq(h, "{'jsonrpc':'2.0','method':'notifications/no-such-thing',"
                "'params':{'x':1}}");
  th_send_sq(h, "{'jsonrpc':'2.0','method':'notifications/cancelled',"
                "'params':{'requestId':999}}");
  th_send_sq(h, "{'jsonrpc':'2.0','method':'tools/list'}");
  expect_ping_next(h);
  th_stop_config(h);
}

/* ---- JSON-RPC errors ---- */

Test(stdio, malformed_json_is_a_parse_error_with_null_id) {
  static const char *const bad[] = {
      "{", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"", "nope",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",}", "[1,2"};
  th_host *h = start_ready("2025-11-25", "{'plugin':'ok','prefix':'ok'}");
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    cJSON *msg;

    th_send(h, bad[i]);
    msg = next(h);
    expect_error(msg, -32700, "null");
    cJSON_Delete(msg);
  }
  expect_ping_next(h);
  th_stop_config(h);
}

Test(stdio, invalid_requests_are_refused) {
  /* With the id when it is one JSON-RPC allows (a string or a number), so
   * the client's pending request gets its answer; null otherwise. */
  static const struct {
    const char *line, *id;
  } bad[] = {
      {"{'jsonrpc':'1.0','id':1,'method':'ping'}", "1"},
      {"{'id':1,'method':'ping'}", "1"},
      {"{'jsonrpc':2,'id':1,'method':'ping'}", "1"},
      {"42", "null"},
      {"'just a string'", "null"},
      {"null", "null"},
      {"true", "null"},
      {"{'jsonrpc':'2.0','id':null,'method':'ping'}", "null"},
      {"{'jsonrpc':'2.0','id':1.5,'method':'ping'}", "1.5"},
      {"{'jsonrpc':'2.0','id':{'a':1},'method':'ping'}", "null"},
      {"{'jsonrpc':'2.0','id':[1],'method':'ping'}", "null"},
      {"{'jsonrpc':'2.0','id':true,'method':'ping'}", "null"},
      {"{'jsonrpc':'2.0','id':3}", "3"},
  };
  th_host *h = start_ready("2025-11-25", "{'plugin':'ok','prefix':'ok'}");
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    cJSON *msg;

    th_send_sq(h, bad[i].line);
    msg = next(h);
    expect_error(msg, -32600, bad[i].id);
    cJSON_Delete(msg);
  }
  expect_ping_next(h);
  th_stop_config(h);
}

Test(stdio, non_string_method_keeps_a_valid_id) {
  th_host *h = start_ready("2025-11-25", "{'plugin':'ok','prefix':'ok'}");
  cJSON *msg;

  th_send_sq(h, "{'jsonrpc':'2.0','id':8,'method':7}");
  msg = next(h);
  expect_error(msg, -32600, "8");
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(stdio, unknown_method_echoes_the_id) {
  static const struct {
    const char *line, *id;
  } cases[] = {
      {"{'jsonrpc':'2.0','id':'abc','method':'no/such'}", "\"abc\""},
      {"{'jsonrpc':'2.0','id':17,'method':'no/such'}", "17"},
      {"{'jsonrpc':'2.0','id':0,'method':'tools/nope'}", "0"},
      {"{'jsonrpc':'2.0','id':-5,'method':'x'}", "-5"},
      {"{'jsonrpc':'2.0','id':'','method':'x'}", "\"\""},
  };
  th_host *h = start_ready("2025-11-25", "{'plugin':'ok','prefix':'ok'}");
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    cJSON *msg;

    th_send_sq(h, cases[i].line);
    msg = next(h);
    expect_error(msg, -32601, cases[i].id);
    cJSON_Delete(msg);
  }
  th_stop_config(h);
}

Test(stdio, params_must_be_an_object) {
  th_host *h = start_ready("2025-11-25", "{'plugin':'ok','prefix':'ok'}");
  cJSON *msg;

  th_send_sq(h, "{'jsonrpc':'2.0','id':4,'method':'tools/list','params':[1]}");
  msg = next(h);
  expect_error(msg, -32602, "4");
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(stdio, duplicate_id_in_flight_is_refused) {
  th_host *h = start_ready("2025-11-25", "{'plugin':'slow','prefix':'slow'}");
  cJSON *msg;

  th_send_sq(h, "{'jsonrpc':'2.0','id':9,'method':'tools/call','params':"
                "{'name':'slow_sleep','arguments':{'ms':300}}}");
  th_send_sq(h, "{'jsonrpc':'2.0','id':9,'method':'ping'}");
  msg = next(h);
  expect_error(msg, -32600, "9");
  cJSON_Delete(msg);
  msg = next(h);
  cr_expect_eq(th_num(msg, "id"), 9);
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "slept 300 ms");
  cJSON_Delete(msg);
  th_stop_config(h);
}

/* ---- Batches ---- */

Test(stdio, batch_is_refused_outside_2025_03_26) {
  static const char *const versions[] = {"2024-11-05", "2025-06-18",
                                         "2025-11-25"};
  size_t i;

  for (i = 0; i < sizeof(versions) / sizeof(*versions); i++) {
    th_host *h = start_ready(versions[i], "{'plugin':'ok','prefix':'ok'}");
    cJSON *msg;

    th_send_sq(h, "[{'jsonrpc':'2.0','id':1,'method':'ping'},"
                  "{'jsonrpc':'2.0','id':2,'method':'ping'}]");
    msg = next(h);
    cr_assert(cJSON_IsObject(msg), "a batch answer on %s", versions[i]);
    expect_error(msg, -32600, "null");
    cJSON_Delete(msg);
    expect_ping_next(h);
    th_stop_config(h);
  }
}

Test(stdio, batch_is_answered_as_an_array_on_2025_03_26) {
  th_host *h = start_ready("2025-03-26", "{'plugin':'ok','prefix':'ok'}");
  cJSON *msg, *item;
  int seen = 0;

  th_send_sq(h, "[{'jsonrpc':'2.0','id':1,'method':'ping'},"
                "{'jsonrpc':'2.0','method':'notifications/whatever'},"
                "{'jsonrpc':'2.0','id':'e','method':'tools/call','params':"
                "{'name':'ok_echo','arguments':{'text':'in a batch'}}},"
                "{'jsonrpc':'2.0','id':3,'method':'no/such'}]");
  msg = next(h);
  cr_assert(cJSON_IsArray(msg), "batch answer is not an array");
  cr_expect_eq(cJSON_GetArraySize(msg), 3);
  cJSON_ArrayForEach(item, msg) {
    const cJSON *id = th_get(item, "id");

    if (cJSON_IsNumber(id) && id->valueint == 1) {
      cr_expect(cJSON_IsObject(th_get(item, "result")));
      seen |= 1;
    } else if (cJSON_IsString(id) && strcmp(id->valuestring, "e") == 0) {
      cr_expect_str_eq(th_str(item, "result.content.0.text"), "in a batch");
      seen |= 2;
    } else if (cJSON_IsNumber(id) && id->valueint == 3) {
      cr_expect_eq(th_num(item, "error.code"), -32601);
      seen |= 4;
    }
  }
  cr_expect_eq(seen, 7, "missing responses in the batch answer");
  cJSON_Delete(msg);

  /* Notifications alone: nothing at all comes back. */
  th_send_sq(h, "[{'jsonrpc':'2.0','method':'notifications/a'},"
                "{'jsonrpc':'2.0','method':'notifications/b'}]");
  expect_ping_next(h);

  th_send_sq(h, "[]");
  msg = next(h);
  expect_error(msg, -32600, "null");
  cJSON_Delete(msg);

  /* A single request is still answered as an object. */
  expect_ping_next(h);
  th_stop_config(h);
}

/* ---- Bad input ---- */

/* A ping padded to `size` bytes, plus the newline, so that one write
 * hands the host the whole line. */
static char *padded_ping(int id, size_t size) {
  char head[64];
  const char *tail = "\"}}";
  size_t hlen, tlen = strlen(tail);
  char *line;

  hlen = (size_t)snprintf(head, sizeof(head),
                          "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"ping\","
                          "\"params\":{\"pad\":\"",
                          id);
  cr_assert_gt(size, hlen + tlen);
  line = malloc(size + 2);
  memcpy(line, head, hlen);
  memset(line + hlen, 'x', size - hlen - tlen);
  memcpy(line + size - tlen, tail, tlen);
  line[size] = '\n';
  line[size + 1] = '\0';
  return line;
}

Test(stdio, message_at_the_size_limit_is_served) {
  th_host *h = start("'limits':{'max_message_bytes':4096},",
                     "{'plugin':'ok','prefix':'ok'}");
  char *line;
  cJSON *msg;

  cJSON_Delete(th_initialize(h, "2025-11-25", NULL));
  line = padded_ping(5, 4000);
  cr_assert_eq(th_send_raw(h, line, strlen(line)), 0);
  free(line);
  msg = next(h);
  cr_expect_eq(th_num(msg, "id"), 5);
  cr_expect(cJSON_IsObject(th_get(msg, "result")));
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(stdio, oversized_message_in_one_write_is_rejected) {
  th_host *h = start("'limits':{'max_message_bytes':4096},",
                     "{'plugin':'ok','prefix':'ok'}");
  char *line;
  cJSON *msg;

  cJSON_Delete(th_initialize(h, "2025-11-25", NULL));
  line = padded_ping(6, 10000);
  cr_assert_eq(th_send_raw(h, line, strlen(line)), 0);
  free(line);
  msg = next(h);
  cr_expect(cJSON_IsObject(th_get(msg, "error")),
            "a 10000-byte message passed a 4096-byte limit");
  cr_expect_null(th_get(msg, "result"));
  cJSON_Delete(msg);
  expect_ping_next(h);
  th_stop_config(h);
}

Test(stdio, oversized_message_across_reads_is_rejected) {
  th_host *h = start("'limits':{'max_message_bytes':4096},",
                     "{'plugin':'ok','prefix':'ok'}");
  char *line;
  cJSON *msg;

  cJSON_Delete(th_initialize(h, "2025-11-25", NULL));
  line = padded_ping(7, 300000);
  cr_assert_eq(th_send_raw(h, line, strlen(line)), 0);
  free(line);
  msg = next(h);
  cr_expect(cJSON_IsObject(th_get(msg, "error")));
  cr_expect(cJSON_IsNull(th_get(msg, "id")));
  cJSON_Delete(msg);
  expect_ping_next(h);
  th_stop_config(h);
}

Test(stdio, invalid_utf8_is_rejected) {
  static const char *const bad[] = {
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":"
      "{\"s\":\"\xff\"}}",
      /* An overlong encoding of '/'. */
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":"
      "{\"s\":\"\xc0\xaf\"}}",
      /* A UTF-16 surrogate encoded as UTF-8. */
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":"
      "{\"s\":\"\xed\xa0\x80\"}}",
      /* A truncated sequence. */
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":"
      "{\"s\":\"\xe2\x82\"}}",
  };
  th_host *h = start_ready("2025-11-25", "{'plugin':'ok','prefix':'ok'}");
  size_t i;
  cJSON *msg;

  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    th_send(h, bad[i]);
    msg = next(h);
    expect_error(msg, -32700, "null");
    cJSON_Delete(msg);
  }
  /* Valid multi-byte text passes through untouched. */
  msg = th_request(h, "tools/call",
                   "{\"name\":\"ok_echo\",\"arguments\":{\"text\":"
                   "\"gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80\"}}",
                   WAIT_MS);
  cr_assert_not_null(msg);
  cr_expect_str_eq(th_str(msg, "result.content.0.text"),
                   "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80");
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(stdio, deeply_nested_json_is_rejected) {
  th_host *h = start_ready("2025-11-25", "{'plugin':'ok','prefix':'ok'}");
  char *line = malloc(10001);
  cJSON *msg;

  memset(line, '[', 10000);
  line[10000] = '\0';
  th_send(h, line);
  msg = next(h);
  cr_expect(cJSON_IsObject(th_get(msg, "error")));
  cr_expect(cJSON_IsNull(th_get(msg, "id")));
  cJSON_Delete(msg);

  /* The same depth inside a well-formed request. */
  memset(line, '{', 10000);
  th_send(h, line);
  msg = next(h);
  cr_expect(cJSON_IsObject(th_get(msg, "error")));
  cJSON_Delete(msg);
  free(line);

  /* Modest nesting is fine. */
  msg =
      th_request(h, "ping", "{\"n\":[[[[[[[[[[{\"a\":[1]}]]]]]]]]]]}", WAIT_MS);
  cr_assert_not_null(msg);
  cr_expect(cJSON_IsObject(th_get(msg, "result")));
  cJSON_Delete(msg);
  expect_ping_next(h);
  th_stop_config(h);
}

Test(stdio, empty_lines_are_ignored) {
  th_host *h = start_ready("2025-11-25", "{'plugin':'ok','prefix':'ok'}");
  const char *blanks = "\n\n   \n\t\n\r\n";

  cr_assert_eq(th_send_raw(h, blanks, strlen(blanks)), 0);
  expect_ping_next(h);
  th_stop_config(h);
}

Test(stdio, crlf_line_endings_are_accepted) {
  th_host *h = start_ready("2025-11-25", "{'plugin':'ok','prefix':'ok'}");
  const char *two = "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"ping\"}\r\n"
                    "{\"jsonrpc\":\"2.0\",\"id\":12,\"method\":\"tools/call\","
                    "\"params\":{\"name\":\"ok_echo\",\"arguments\":"
                    "{\"text\":\"crlf\"}}}\r\n";
  cJSON *msg;

  cr_assert_eq(th_send_raw(h, two, strlen(two)), 0);
  msg = th_response(h, "11", WAIT_MS);
  cr_assert_not_null(msg);
  cr_expect(cJSON_IsObject(th_get(msg, "result")));
  cJSON_Delete(msg);
  msg = th_response(h, "12", WAIT_MS);
  cr_assert_not_null(msg);
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "crlf");
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(stdio, a_message_split_across_writes_is_reassembled) {
  th_host *h = start_ready("2025-11-25", "{'plugin':'ok','prefix':'ok'}");
  const char *line = "{\"jsonrpc\":\"2.0\",\"id\":21,\"method\":\"ping\"}\n";
  size_t i, len = strlen(line);
  cJSON *msg;

  for (i = 0; i < len; i += 7) {
    cr_assert_eq(th_send_raw(h, line + i, len - i < 7 ? len - i : 7), 0);
    usleep(2000);
  }
  msg = th_response(h, "21", WAIT_MS);
  cr_assert_not_null(msg);
  cr_expect(cJSON_IsObject(th_get(msg, "result")));
  cJSON_Delete(msg);
  th_stop_config(h);
}

Test(stdio, pipelined_requests_are_all_answered) {
  enum { N = 50 };
  th_host *h = start_ready("2025-11-25", "{'plugin':'ok','prefix':'ok'},"
                                         "{'plugin':'echo','prefix':'e'}");
  char *buf = malloc(N * 200), *w = buf, id[16], want[32];
  cJSON *msg;
  int i;

  for (i = 1; i <= N; i++)
    w += sprintf(w,
                 "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\","
                 "\"params\":{\"name\":\"%s\",\"arguments\":"
                 "{\"text\":\"m%d\"}}}\n",
                 i,
                 i % 3 == 0 ? "e_echo_inline"
                 : i % 2    ? "ok_echo"
                            : "e_echo",
                 i);
  cr_assert_eq(th_send_raw(h, buf, (size_t)(w - buf)), 0);
  free(buf);
  for (i = 1; i <= N; i++) {
    snprintf(id, sizeof(id), "%d", i);
    snprintf(want, sizeof(want), "m%d", i);
    msg = th_response(h, id, WAIT_MS);
    cr_assert_not_null(msg, "no response for id %d", i);
    cr_expect_str_eq(th_str(msg, "result.content.0.text"), want);
    cJSON_Delete(msg);
  }
  /* Exactly one response per request: nothing is left over. */
  expect_ping_next(h);
  th_stop_config(h);
}

/* ---- Lifecycle ---- */

/* A host run by hand, for what the harness hides: closing stdin while
 * still reading stdout, and the raw bytes of stdout. */
typedef struct {
  pid_t pid;
  int in, out, err;
} proc;

/* Starts the host on pipes; with stdin_path, stdin is that file instead
 * and p.in is -1. */
static proc spawn_host(const char *config, const char *stdin_path) {
  int in[2], out[2], err[2];
  proc p;

  cr_assert_eq(pipe(in), 0);
  cr_assert_eq(pipe(out), 0);
  cr_assert_eq(pipe(err), 0);
  signal(SIGPIPE, SIG_IGN);
  p.pid = fork();
  cr_assert(p.pid >= 0);
  if (p.pid == 0) {
    int file = stdin_path ? open(stdin_path, O_RDONLY) : -1;

    dup2(file >= 0 ? file : in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    close(err[0]);
    close(err[1]);
    if (chdir(PH_SOURCE_DIR) != 0)
      _exit(126);
    execl(th_binary(), th_binary(), "--config", config, "--stdio",
          (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  p.in = in[1];
  p.out = out[0];
  p.err = err[0];
  if (stdin_path != NULL) {
    close(p.in);
    p.in = -1;
  }
  return p;
}

/* Reads stdout and stderr until both close or timeout_ms passes. */
static void drain(proc *p, char **out, char **err, int timeout_ms) {
  struct pollfd fds[2] = {{p->out, POLLIN, 0}, {p->err, POLLIN, 0}};
  char *bufs[2] = {NULL, NULL};
  size_t lens[2] = {0, 0};
  long long deadline = th_now_ms() + timeout_ms;
  int open = 2, i;

  while (open > 0 && th_now_ms() < deadline) {
    if (poll(fds, 2, (int)(deadline - th_now_ms())) <= 0)
      continue;
    for (i = 0; i < 2; i++) {
      char chunk[4096];
      ssize_t n;

      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
        continue;
      n = read(fds[i].fd, chunk, sizeof(chunk));
      if (n <= 0) {
        fds[i].fd = -1;
        open--;
        continue;
      }
      bufs[i] = realloc(bufs[i], lens[i] + (size_t)n + 1);
      memcpy(bufs[i] + lens[i], chunk, (size_t)n);
      lens[i] += (size_t)n;
      bufs[i][lens[i]] = '\0';
    }
  }
  *out = bufs[0] ? bufs[0] : strdup("");
  *err = bufs[1] ? bufs[1] : strdup("");
}

/* Waits up to timeout_ms for the exit status; kills and fails on timeout. */
static int reap(pid_t pid, int timeout_ms) {
  long long deadline = th_now_ms() + timeout_ms;
  int status;

  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (th_now_ms() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      cr_assert_fail("the host did not exit within %d ms", timeout_ms);
    }
    usleep(5000);
  }
  return status;
}

/* Every stdout line must be one JSON message; returns the one with `id`. */
static cJSON *find_in_stdout(const char *out, int id) {
  const char *p = out, *nl;
  cJSON *found = NULL;

  while (*p != '\0') {
    cJSON *msg;

    nl = strchr(p, '\n');
    cr_assert_not_null(nl, "stdout ends without a newline: %.200s", p);
    msg = cJSON_ParseWithLength(p, (size_t)(nl - p));
    cr_assert_not_null(msg, "non-JSON line on stdout: %.*s", (int)(nl - p), p);
    if (found == NULL && th_num(msg, "id") == id)
      found = msg;
    else
      cJSON_Delete(msg);
    p = nl + 1;
  }
  return found;
}

static void write_all(int fd, const char *text) {
  size_t len = strlen(text);

  cr_assert_eq(write(fd, text, len), (ssize_t)len);
}

Test(stdio, stdin_eof_finishes_the_call_in_flight_and_exits_zero) {
  const char *config =
      th_config(NULL, NULL, "{'plugin':'slow','prefix':'slow'}");
  proc p = spawn_host(config, NULL);
  char *out, *err;
  cJSON *msg;
  int status;

  write_all(p.in, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
                  "\"params\":{\"protocolVersion\":\"2025-11-25\","
                  "\"capabilities\":{},\"clientInfo\":{\"name\":\"t\","
                  "\"version\":\"1\"}}}\n"
                  "{\"jsonrpc\":\"2.0\",\"method\":"
                  "\"notifications/initialized\"}\n"
                  "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\","
                  "\"params\":{\"name\":\"slow_sleep\",\"arguments\":"
                  "{\"ms\":300}}}\n");
  close(p.in);
  drain(&p, &out, &err, WAIT_MS);
  status = reap(p.pid, WAIT_MS);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "exit status %d; stderr:\n%s", status, err);
  msg = find_in_stdout(out, 2);
  cr_assert_not_null(msg, "the call in flight got no response; stdout:\n%s",
                     out);
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "slept 300 ms");
  cJSON_Delete(msg);
  msg = find_in_stdout(out, 1);
  cr_expect_not_null(msg);
  cJSON_Delete(msg);
  /* The log goes to stderr, never stdout. */
  cr_expect_not_null(strstr(err, "plughost"), "stderr:\n%s", err);
  free(out);
  free(err);
  close(p.out);
  close(p.err);
}

Test(stdio, sigterm_finishes_the_call_in_flight_and_exits_zero) {
  th_host *h = start_ready("2025-11-25", "{'plugin':'slow','prefix':'slow'}");
  cJSON *msg;
  int status;

  th_request_async(h, "\"long\"", "tools/call",
                   "{\"name\":\"slow_sleep\",\"arguments\":{\"ms\":400}}");
  /* Once a later ping is answered, the call has surely started. */
  msg = th_request(h, "ping", NULL, WAIT_MS);
  cr_assert_not_null(msg);
  cJSON_Delete(msg);
  th_kill(h, SIGTERM);
  msg = th_response(h, "\"long\"", WAIT_MS);
  cr_assert_not_null(msg, "no response after SIGTERM; stderr:\n%s",
                     th_stderr(h));
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "slept 400 ms");
  cJSON_Delete(msg);
  status = th_stop_config(h);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}

Test(stdio, shutdown_waits_only_up_to_its_limit) {
  const char *config = th_config("'limits':{'shutdown_timeout_ms':200},", NULL,
                                 "{'plugin':'slow','prefix':'slow',"
                                 "'workers':16}");
  char calls[4096], *w, tmpdir[] = "/tmp/ph-test-tmp-XXXXXX";
  char cleanup[64];
  int round, i;

  w = calls + sprintf(calls, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
                             "\"initialize\",\"params\":{\"protocolVersion\":"
                             "\"2025-11-25\",\"capabilities\":{}}}\n");
  for (i = 2; i < 18; i++)
    w += sprintf(w,
                 "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\","
                 "\"params\":{\"name\":\"slow_sleep\",\"arguments\":"
                 "{\"ms\":20000}}}\n",
                 i);
  /* The host leaves its plugin cache behind when calls outlive it; keep
   * that in a directory of our own. */
  cr_assert_not_null(mkdtemp(tmpdir));
  setenv("TMPDIR", tmpdir, 1);
  /* Calls still running past the limit are cancelled while the host goes
   * away; their late replies must not crash it. The race is narrow, so it
   * gets several tries. */
  for (round = 0; round < 8; round++) {
    proc p = spawn_host(config, NULL);
    long long started;
    char *out, *err;
    int status;

    write_all(p.in, calls);
    usleep(100000);
    started = th_now_ms();
    close(p.in);
    drain(&p, &out, &err, 10000);
    status = reap(p.pid, 10000);
    cr_expect_lt(th_now_ms() - started, 5000, "exit took %lld ms",
                 th_now_ms() - started);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "round %d: status %d (signal %d); stderr:\n%s", round, status,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0, err);
    cJSON_Delete(find_in_stdout(out, 1));
    free(out);
    free(err);
    close(p.out);
    close(p.err);
  }
  snprintf(cleanup, sizeof(cleanup), "rm -rf '%s'", tmpdir);
  cr_expect_eq(system(cleanup), 0);
}

Test(stdio, stdin_may_be_a_regular_file) {
  const char *config = th_config(NULL, NULL, "{'plugin':'ok','prefix':'ok'}");
  char *input = th_write_temp(
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
      "{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{}}}\n"
      "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":"
      "{\"name\":\"ok_echo\",\"arguments\":{\"text\":\"from a file\"}}}\n",
      ".jsonl");
  /* `plughost --stdio < requests.jsonl`. */
  proc p = spawn_host(config, input);
  char *out, *err;
  cJSON *msg;
  int status;

  drain(&p, &out, &err, WAIT_MS);
  status = reap(p.pid, WAIT_MS);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "status %d; stderr:\n%s", status, err);
  msg = find_in_stdout(out, 2);
  cr_expect_not_null(msg, "no answer with stdin from a file; stderr:\n%s", err);
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "from a file");
  cJSON_Delete(msg);
  free(out);
  free(err);
  close(p.out);
  close(p.err);
  unlink(input);
  free(input);
}

Test(stdio, a_regular_file_without_a_final_newline_is_served) {
  const char *config = th_config(NULL, NULL, "{'plugin':'ok','prefix':'ok'}");
  char *input = th_write_temp(
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
      "{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{}}}\n"
      "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":"
      "{\"name\":\"ok_echo\",\"arguments\":{\"text\":\"no newline\"}}}",
      ".jsonl");
  proc p = spawn_host(config, input);
  char *out, *err;
  cJSON *msg;
  int status;

  drain(&p, &out, &err, WAIT_MS);
  status = reap(p.pid, WAIT_MS);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "status %d; stderr:\n%s", status, err);
  msg = find_in_stdout(out, 2);
  cr_expect_not_null(msg, "the last line went unanswered; stdout:\n%s", out);
  cr_expect_str_eq(th_str(msg, "result.content.0.text"), "no newline");
  cJSON_Delete(msg);
  free(out);
  free(err);
  close(p.out);
  close(p.err);
  unlink(input);
  free(input);
}

/* Lines are served a slice of loop time at a time, so a file of many
 * requests, read in one large piece, cannot hold the loop while a worker's
 * answer waits: that answer comes out a few thousand pings after its
 * request, not after every ping of the piece. The long line first makes the
 * host's read buffer (and so each read from the file) megabytes large; the
 * call sits deep enough among the pings to be read with ~80000 of them. */
Test(stdio, a_flood_of_lines_from_a_file_does_not_hold_the_loop) {
  const char *config =
      th_config(NULL, NULL, "{'plugin':'slow','prefix':'slow'}");
  size_t cap = 8u << 20, len = 0, i;
  char *text = malloc(cap), *input, *out, *err, *at, *q;
  int npings = 0, status, call_at = 30000;
  long lines_before = 0;
  proc p;

  len += (size_t)sprintf(
      text + len,
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
      "{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{}}}\n"
      "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\",\"params\":"
      "{\"pad\":\"");
  for (i = 0; i < 3500000; i++)
    text[len++] = 'x';
  len += (size_t)sprintf(text + len, "\"}}\n");
  while (len + 200 < cap - (1u << 20)) {
    if (npings == call_at)
      len += (size_t)sprintf(text + len,
                             "{\"jsonrpc\":\"2.0\",\"id\":\"worker\","
                             "\"method\":\"tools/call\",\"params\":{\"name\":"
                             "\"slow_sleep\",\"arguments\":{\"ms\":0}}}\n");
    len += (size_t)sprintf(text + len,
                           "{\"jsonrpc\":\"2.0\",\"id\":%d,"
                           "\"method\":\"ping\"}\n",
                           1000 + npings);
    npings++;
  }
  text[len] = '\0';
  input = th_write_temp(text, ".jsonl");
  free(text);
  p = spawn_host(config, input);
  drain(&p, &out, &err, 30000);
  status = reap(p.pid, WAIT_MS);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "status %d; stderr:\n%.2000s", status, err);
  at = strstr(out, "\"id\":\"worker\"");
  cr_assert_not_null(at, "no answer to the worker's call");
  cr_expect_null(strstr(out, "\"error\""), "every line served once, whole");
  for (q = out; q < at; q++)
    lines_before += *q == '\n';
  /* Less the answers to initialize and the long ping. */
  cr_expect_lt(lines_before - 2 - call_at, 20000,
               "the worker's answer came %ld pings after its request",
               lines_before - 2 - call_at);
  free(out);
  free(err);
  close(p.out);
  close(p.err);
  unlink(input);
  free(input);
}
