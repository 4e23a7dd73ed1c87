/* test_protocol.c: MCP over JSON-RPC without a transport. The UTF-8 and
 * nesting precheck, scopes and versions, then ph__protocol_handle() driven
 * with an outlet that records what it is sent and how it is finished, on a
 * generation of fixture plugins published for the test: initialize, the
 * JSON-RPC error codes, modern _meta errors, list pages, tool calls,
 * deadlines, cancellation and batches. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "call.h"
#include "config.h"
#include "host_api.h"
#include "log.h"
#include "protocol.h"
#include "registry.h"
#include "session.h"
#include "unit_fixture.h"

#define MODERN_META                                                            \
  "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","     \
  "\"io.modelcontextprotocol/clientCapabilities\":{}}"

static ph__session *sessions[8];
static size_t nsessions;

static void setup(void) {
  ph__generation *g;

  unit_setup();
  unit_load("ok.so");
  unit_load("slow.so");
  unit_load("hang.so");
  g = unit_publish("{'page_size':3,'hmac_key':'unit',"
                   "'limits':{'max_json_depth':8,'max_inflight_per_session':2,"
                   "'max_batch_members':4},"
                   "'departments':{'default':{'plugins':[{'plugin':'ok'},"
                   "{'plugin':'slow'},{'plugin':'hang'}]}}}",
                   "protocol.json");
  cr_assert_eq(ph__protocol_init(g->config), 0);
}

static void teardown(void) {
  size_t i;

  for (i = 0; i < nsessions; i++)
    ph__session_close(sessions[i]);
  nsessions = 0;
  RUN_UNTIL(ph__calls_live() == 0, 5000);
  unit_teardown();
}

TestSuite(protocol, .timeout = 30);
TestSuite(protocol_handle, .init = setup, .fini = teardown, .timeout = 30);

static ph__session *session(void) {
  ph__session *s = ph__session_new("default");

  sessions[nsessions++] = s;
  return s;
}

/* Hands in a request and waits for its answer, parsed. */
static cJSON *ask(ph__session *s, const char *text, int *outcome) {
  unit_sink k;
  cJSON *reply;

  unit_sink_init(&k);
  unit_handle(s, &k, text);
  RUN_UNTIL(k.finished == 1, 5000);
  cr_assert_not_null(k.answer, "no response to %s", text);
  reply = cJSON_Parse(k.answer);
  cr_assert_not_null(reply, "%s", k.answer);
  if (outcome != NULL)
    *outcome = k.outcome;
  unit_sink_free(&k);
  return reply;
}

static ph__session *legacy_session(const char *version) {
  ph__session *s = session();
  char text[256];
  cJSON *reply;

  snprintf(text, sizeof(text),
           "{'jsonrpc':'2.0','id':0,'method':'initialize','params':"
           "{'protocolVersion':'%s','capabilities':{},"
           "'clientInfo':{'name':'unit','version':'1'}}}",
           version);
  reply = ask(s, text, NULL);
  cr_assert_not_null(cJSON_GetObjectItem(reply, "result"));
  cJSON_Delete(reply);
  return s;
}

static const cJSON *at(const cJSON *j, const char *path) {
  char buf[256], *name, *save = NULL;

  snprintf(buf, sizeof(buf), "%s", path);
  for (name = strtok_r(buf, ".", &save); name != NULL && j != NULL;
       name = strtok_r(NULL, ".", &save))
    j = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, atoi(name))
                         : cJSON_GetObjectItemCaseSensitive(j, name);
  return j;
}

static double num_at(const cJSON *j, const char *path) {
  const cJSON *n = at(j, path);

  cr_assert(cJSON_IsNumber(n), "%s is not a number", path);
  return n->valuedouble;
}

static const char *str_at(const cJSON *j, const char *path) {
  const char *s = cJSON_GetStringValue(at(j, path));

  cr_assert_not_null(s, "%s is not a string", path);
  return s;
}

/* Expects an error response with `code` and a message containing `part`. */
static void expect_error(const cJSON *reply, int code, const char *part) {
  char *text = cJSON_PrintUnformatted(reply);

  cr_expect_null(at(reply, "result"), "%s", text);
  cr_expect_eq(num_at(reply, "error.code"), code, "%s", text);
  cr_expect_not_null(strstr(str_at(reply, "error.message"), part), "%s", text);
  free(text);
}

/* ---- precheck ---- */

static const char *precheck(const char *text, size_t len) {
  return ph__json_precheck(text, len, 4);
}

#define PRE(lit) precheck(lit, sizeof(lit) - 1)

Test(protocol, precheck_accepts_valid_utf8) {
  cr_expect_null(PRE("{\"a\":\"plain\"}"));
  cr_expect_null(PRE("\"\xc3\xa9\""));                      /* U+00E9 */
  cr_expect_null(PRE("\"\xc2\x80\""));                      /* U+0080 */
  cr_expect_null(PRE("\"\xe2\x82\xac\""));                  /* U+20AC */
  cr_expect_null(PRE("\"\xe0\xa0\x80\""));                  /* U+0800 */
  cr_expect_null(PRE("\"\xed\x9f\xbf\""));                  /* U+D7FF */
  cr_expect_null(PRE("\"\xee\x80\x80\""));                  /* U+E000 */
  cr_expect_null(PRE("\"\xef\xbf\xbf\""));                  /* U+FFFF */
  cr_expect_null(PRE("\"\xf0\x9f\x98\x80\""));              /* U+1F600 */
  cr_expect_null(PRE("\"\xf4\x8f\xbf\xbf\""));              /* U+10FFFF */
  cr_expect_null(PRE("{\"\xc3\xa9\":[\"\xe2\x82\xac\"]}")); /* In keys. */
  cr_expect_null(PRE(""));
}

Test(protocol, precheck_refuses_invalid_utf8) {
  static const char *const bad[] = {
      "\"\x80\"",                     /* A lone continuation byte. */
      "\"\xbf\"",                     /* Another. */
      "\"\xc0\x80\"",                 /* Overlong NUL. */
      "\"\xc1\xbf\"",                 /* Overlong U+007F. */
      "\"\xe0\x80\x80\"",             /* Overlong 3-byte NUL. */
      "\"\xe0\x9f\xbf\"",             /* Overlong U+07FF. */
      "\"\xf0\x80\x80\x80\"",         /* Overlong 4-byte NUL. */
      "\"\xf0\x8f\xbf\xbf\"",         /* Overlong U+FFFF. */
      "\"\xed\xa0\x80\"",             /* High surrogate U+D800. */
      "\"\xed\xbf\xbf\"",             /* Low surrogate U+DFFF. */
      "\"\xed\xa0\xbd\xed\xb8\x80\"", /* A CESU-8 pair. */
      "\"\xf4\x90\x80\x80\"",         /* U+110000. */
      "\"\xf5\x80\x80\x80\"",         /* Lead byte past F4. */
      "\"\xf8\x88\x80\x80\x80\"",     /* Five-byte form. */
      "\"\xff\"",
      "\"\xe2\x28\xa1\"", /* Continuation missing. */
      "\"\xc3\"",         /* Truncated before the quote. */
  };
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
    cr_expect_str_eq(precheck(bad[i], strlen(bad[i])), "invalid UTF-8",
                     "case %zu", i);
  /* Truncated at the very end of the text. */
  cr_expect_str_eq(PRE("\"\xe2\x82"), "invalid UTF-8");
  cr_expect_str_eq(PRE("\xf0\x9f\x98"), "invalid UTF-8");
  cr_expect_str_eq(PRE("\xc3"), "invalid UTF-8");
}

Test(protocol, precheck_limits_depth_outside_strings) {
  cr_expect_null(PRE("[[[[1]]]]"), "exactly the limit");
  cr_expect_str_eq(PRE("[[[[[1]]]]]"), "JSON nested too deeply");
  cr_expect_str_eq(PRE("{\"a\":{\"b\":[{\"c\":[]}]}}"),
                   "JSON nested too deeply");
  cr_expect_null(PRE("[[[[]]],[[[]]],[[[]]]]"), "siblings do not add up");
  cr_expect_null(PRE("[\"[[[[[[[[\"]"), "brackets in strings do not count");
  cr_expect_null(PRE("[\"\\\"[[[[[[\"]"), "nor after an escaped quote");
  cr_expect_str_eq(PRE("[\"\\\\\",[[[[]]]]]"), "JSON nested too deeply",
                   "an escaped backslash ends the string");
  cr_expect_null(ph__json_precheck("[[[[[[[[[[]]]]]]]]]]", 20, 64),
                 "the limit is a parameter");
}

Test(protocol, precheck_refuses_unbalanced_text) {
  cr_expect_str_eq(PRE("[[1]"), "unbalanced brackets");
  cr_expect_str_eq(PRE("[1]]"), "unbalanced brackets");
  cr_expect_str_eq(PRE("}{"), "unbalanced brackets");
  cr_expect_str_eq(PRE("{\"a\":\"b}"), "unterminated string");
  cr_expect_null(PRE("{\"a\":\"]}\"}"), "brackets inside strings");
}

Test(protocol, precheck_refuses_nul) {
  cr_expect_str_eq(precheck("{\"a\":1}\0", 8), "NUL byte in message");
  cr_expect_str_eq(precheck("\0{}", 3), "NUL byte in message");
}

Test(protocol, precheck_refuses_nul_inside_strings) {
  /* The old check let these through; JSON allows no raw NUL anywhere. */
  cr_expect_str_eq(precheck("[\"a\0b\"]", 7), "NUL byte in message");
  cr_expect_str_eq(precheck("[\"a\\\0\"]", 7), "NUL byte in message",
                   "nor escaped");
  /* Nor as an escape, which cJSON decodes to a NUL that ends the C
   * string early: "ping\u0000x" would be served as ping. */
  cr_expect_str_eq(PRE("[\"a\\u0000b\"]"), "\\u0000 in a string");
  cr_expect_null(PRE("[\"a\\u0001b\\u00100\"]"), "other escapes are fine");
}

Test(protocol, precheck_refuses_raw_control_characters) {
  char text[16];
  int c;

  for (c = 1; c < 0x20; c++) {
    snprintf(text, sizeof(text), "[\"a%cb\"]", c);
    cr_expect_str_eq(precheck(text, strlen(text)),
                     "control character in a string", "0x%02x", c);
    snprintf(text, sizeof(text), "[1,%c2]", c);
    if (c == '\t' || c == '\n' || c == '\r')
      cr_expect_null(precheck(text, strlen(text)), "whitespace 0x%02x", c);
    else
      cr_expect_str_eq(precheck(text, strlen(text)),
                       "control character in message", "0x%02x", c);
  }
  cr_expect_null(PRE("[\"\\t\\n\\u001f\\u007f\"]"), "escaped, they are fine");
  cr_expect_null(PRE("[\"\x7f\"]"), "DEL is not a control character to JSON");
}

Test(protocol, precheck_escapes) {
  cr_expect_null(PRE("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"]"));
  cr_expect_null(PRE("[\"\\q\"]"), "escapes are not checked, only skipped");
  cr_expect_str_eq(PRE("[\"\\"), "unterminated string", "backslash at end");
  cr_expect_str_eq(PRE("[\"\\\"]"), "unterminated string",
                   "the quote is escaped");
  /* A backslash before a non-ASCII byte: the old check skipped that one
   * byte, refusing the sequence's next byte (always a continuation) or
   * silently passing a lone byte. Both are refused now. */
  cr_expect_str_eq(PRE("[\"\\\xc3\xa9\"]"), "invalid UTF-8");
  cr_expect_str_eq(PRE("[\"\\\xe2\x82\xac\"]"), "invalid UTF-8");
  cr_expect_str_eq(PRE("[\"\\\xff\"]"), "invalid UTF-8", "was accepted");
  cr_expect_str_eq(PRE("[\"\\\xc3\"]"), "invalid UTF-8", "was accepted");
  cr_expect_str_eq(PRE("[\"\\\x80\"]"), "invalid UTF-8", "was accepted");
}

/* Every error at every offset from the start of a run, across the
 * four-byte steps the check takes through plain bytes. */
Test(protocol, precheck_finds_errors_at_any_offset) {
  static const struct {
    const char *bad;
    size_t len;
    const char *why;
  } in_string[] = {{"\xff", 1, "invalid UTF-8"},
                   {"\xc3", 1, "invalid UTF-8"},
                   {"\xed\xa0\x80", 3, "invalid UTF-8"},
                   {"\0", 1, "NUL byte in message"},
                   {"\\\xc3\xa9", 3, "invalid UTF-8"},
                   {"\x01", 1, "control character in a string"},
                   {"\t", 1, "control character in a string"},
                   {"\\u0000", 6, "\\u0000 in a string"}},
    outside[] = {{"\xff", 1, "invalid UTF-8"},
                 {"\0", 1, "NUL byte in message"},
                 {"\x1f", 1, "control character in message"},
                 {"]]", 2, "unbalanced brackets"},
                 {"[[[[", 4, "JSON nested too deeply"}};
  char text[64];
  size_t i, k, n;

  for (n = 0; n < 20; n++) {
    for (k = 0; k < sizeof(in_string) / sizeof(*in_string); k++) {
      text[0] = '[';
      text[1] = '"';
      memset(text + 2, 'a', n);
      memcpy(text + 2 + n, in_string[k].bad, in_string[k].len);
      memcpy(text + 2 + n + in_string[k].len, "\"]", 2);
      i = 2 + n + in_string[k].len + 2;
      cr_expect_str_eq(precheck(text, i), in_string[k].why, "%zu/%zu", n, k);
      /* The same run, fine: it ends the string where it should. */
      memcpy(text + 2 + n, "\xc3\xa9\"]", 4);
      cr_expect_null(precheck(text, 2 + n + 4), "%zu", n);
      text[2 + n] = '"';
      cr_expect_str_eq(precheck(text, 2 + n + 1), "unbalanced brackets", "%zu",
                       n);
      cr_expect_str_eq(precheck(text, 2 + n), "unterminated string", "%zu", n);
    }
    for (k = 0; k < sizeof(outside) / sizeof(*outside); k++) {
      text[0] = '[';
      memset(text + 1, '1', n);
      memcpy(text + 1 + n, outside[k].bad, outside[k].len);
      text[1 + n + outside[k].len] = ']';
      cr_expect_str_eq(precheck(text, 1 + n + outside[k].len + 1),
                       outside[k].why, "%zu/%zu", n, k);
    }
  }
}

/* ---- precheck against the byte-at-a-time original ---- */

/* The check as it was before its fast loops, kept to test them against.
 * strict adds what the new one refuses on purpose: NUL inside a string,
 * after a backslash NUL or a non-ASCII byte, raw control characters (but
 * whitespace outside strings) and the escape \u0000. */
static const char *old_precheck(const char *text, size_t len, int max_depth,
                                int strict) {
  const unsigned char *p = (const unsigned char *)text, *end = p + len;
  int depth = 0, in_string = 0;

  while (p < end) {
    unsigned c = *p;

    if (c >= 0x80) {
      int n;
      unsigned cp;

      if ((c & 0xE0) == 0xC0 && c >= 0xC2)
        n = 1, cp = c & 0x1F;
      else if ((c & 0xF0) == 0xE0)
        n = 2, cp = c & 0x0F;
      else if ((c & 0xF8) == 0xF0 && c <= 0xF4)
        n = 3, cp = c & 0x07;
      else
        return "invalid UTF-8";
      if (end - p <= n)
        return "invalid UTF-8";
      for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80)
          return "invalid UTF-8";
        cp = cp << 6 | (p[i] & 0x3F);
      }
      if ((n == 2 && cp < 0x800) ||
          (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
          (cp >= 0xD800 && cp <= 0xDFFF))
        return "invalid UTF-8";
      p += n + 1;
      continue;
    }
    if (in_string) {
      if (strict && c == '\0')
        return "NUL byte in message";
      if (strict && c < 0x20)
        return "control character in a string";
      if (strict && c == '\\' && end - p >= 6 && memcmp(p + 1, "u0000", 5) == 0)
        return "\\u0000 in a string";
      if (strict && c == '\\' && end - p >= 2 && p[1] == '\0')
        return "NUL byte in message";
      if (strict && c == '\\' && end - p >= 2 && p[1] >= 0x80)
        return "invalid UTF-8";
      if (c == '\\')
        p++;
      else if (c == '"')
        in_string = 0;
    } else if (c == '"') {
      in_string = 1;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return "JSON nested too deeply";
    } else if (c == ']' || c == '}') {
      if (--depth < 0)
        return "unbalanced brackets";
    } else if (c == '\0') {
      return "NUL byte in message";
    } else if (strict && c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      return "control character in message";
    }
    p++;
  }
  if (in_string)
    return "unterminated string";
  if (depth != 0)
    return "unbalanced brackets";
  return NULL;
}

static unsigned long long rng_state = 0x2545F4914F6CDD1DULL;

static unsigned rng(unsigned n) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (unsigned)(rng_state % n);
}

/* Compares the check with the original on one text: equal to the strict
 * original always, equal to the plain one whenever that refuses the text
 * or the strict one accepts it, so nothing it let through before is let
 * through now unless it was exactly the same. */
static void differ(const char *text, size_t len, int max_depth, int round) {
  const char *got = ph__json_precheck(text, len, max_depth),
             *strict = old_precheck(text, len, max_depth, 1),
             *plain = old_precheck(text, len, max_depth, 0);

  cr_assert((got == NULL && strict == NULL) ||
                (got != NULL && strict != NULL && strcmp(got, strict) == 0),
            "round %d (len %zu, depth %d): %s, strict original %s", round, len,
            max_depth, got ? got : "ok", strict ? strict : "ok");
  if (plain == NULL && got != NULL)
    cr_assert(strcmp(got, "NUL byte in message") == 0 ||
                  strcmp(got, "invalid UTF-8") == 0 ||
                  strcmp(got, "control character in a string") == 0 ||
                  strcmp(got, "control character in message") == 0 ||
                  strcmp(got, "\\u0000 in a string") == 0,
              "round %d", round);
  if (plain != NULL)
    cr_assert_not_null(got, "round %d: the original refused it", round);
}

Test(protocol, precheck_matches_original_on_random_bytes) {
  /* Bytes that matter, and UTF-8 pieces both whole and broken. */
#define PIECE(lit)                                                             \
  { lit, sizeof(lit) - 1 }
  static const struct {
    const char *text;
    size_t len;
  } pieces[] = {
      PIECE("\""),
      PIECE("\\"),
      PIECE("["),
      PIECE("]"),
      PIECE("{"),
      PIECE("}"),
      PIECE("\0"),
      PIECE("a"),
      PIECE("1"),
      PIECE(","),
      PIECE(":"),
      PIECE(" "),
      PIECE("\\\""),
      PIECE("\\\\"),
      PIECE("\xc3\xa9"),
      PIECE("\xe2\x82\xac"),
      PIECE("\xf0\x9f\x98\x80"),
      PIECE("\xc3"),
      PIECE("\x80"),
      PIECE("\xff"),
      PIECE("\xed\xa0\x80"),
      PIECE("\xe0\x80\x80"),
      PIECE("\xf4\x90\x80\x80"),
      PIECE("plain text run "),
      PIECE("\"k\":\"v\","),
      PIECE("\x01"),
      PIECE("\t"),
      PIECE("\n"),
      PIECE("\x1f"),
      PIECE("\\u0000"),
      PIECE("\\u00001"),
      PIECE("u0000"),
  };
#undef PIECE
  char text[40 * 16];
  int round;

  for (round = 0; round < 20000; round++) {
    size_t len = 0;
    int pieces_n = (int)rng(40);

    for (int k = 0; k < pieces_n; k++) {
      /* Mostly harmless pieces, so some texts get far before failing. */
      unsigned i = rng(8) < 5 ? (rng(2) ? 7 + rng(6) : 23 + rng(2))
                              : rng(sizeof(pieces) / sizeof(*pieces));

      memcpy(text + len, pieces[i].text, pieces[i].len);
      len += pieces[i].len;
    }
    differ(text, len, 1 + (int)rng(6), round);
  }
}

Test(protocol, precheck_matches_original_on_changed_json) {
  static const char *const seeds[] = {
      "{\"content\":[{\"type\":\"text\",\"text\":\"{\\\"columns\\\":[{\\\""
      "name\\\":\\\"id\\\",\\\"type\\\":\\\"integer\\\"}],\\\"rows\\\":[[1,"
      "\\\"item 1\\\",true],[2,\\\"item \\\\\\\\ 2\\\",null]]}\"}],"
      "\"structuredContent\":{\"columns\":[{\"name\":\"id\",\"type\":"
      "\"integer\"}],\"rows\":[[1,\"item 1\",true],[2,\"item \\\\ 2\",null]],"
      "\"row_count\":2,\"truncated\":false,\"next_cursor\":null}}",
      "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":"
      "{\"name\":\"echo\",\"arguments\":{\"text\":\"caf\xc3\xa9 \xe2\x82\xac "
      "\xf0\x9f\x98\x80 \\u00e9 [{\\\"\"}}}",
      "[[[[{\"a\":[\"]]]]\",{\"b\":\"\\\\\"}]}]]]]",
      "{\"k\xc3\xa9y\":"
      "\"\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\","
      "\"n\":-1.5e3,\"e\":{},\"l\":[]}",
  };
  static const char bytes[] = "\"\\[]{}\0a:, \x80\xbf\xc2\xc3\xe2\xed\xf0\xf4"
                              "\xf5\xff\x01\t\n\x1f"
                              "0u";
  char text[1024];
  int round;

  for (round = 0; round < 20000; round++) {
    const char *seed = seeds[rng(sizeof(seeds) / sizeof(*seeds))];
    size_t len = strlen(seed), changes = rng(4), k;

    memcpy(text, seed, len);
    cr_assert_null(ph__json_precheck(text, len, 1000), "seed %s", seed);
    for (k = 0; k < changes; k++) {
      size_t at = rng((unsigned)len);

      switch (rng(4)) {
      case 0: /* Replace a byte. */
        text[at] = bytes[rng(sizeof(bytes) - 1)];
        break;
      case 1: /* Delete one. */
        memmove(text + at, text + at + 1, len - at - 1);
        len--;
        break;
      case 2: /* Insert one. */
        memmove(text + at + 1, text + at, len - at);
        text[at] = bytes[rng(sizeof(bytes) - 1)];
        len++;
        break;
      default: /* Cut the end off. */
        len = at;
      }
      if (len == 0)
        break;
    }
    differ(text, len, rng(2) ? 1000 : 2 + (int)rng(4), round);
  }
}

/* ---- scopes and versions ---- */

Test(protocol, principal_scopes) {
  cr_expect_not(ph__principal_has_scope(NULL, "read"));
  cr_expect_not(ph__principal_has_scope("{}", "read"));
  cr_expect_not(ph__principal_has_scope("not json", "read"));
  cr_expect(ph__principal_has_scope("{\"scope\":\"read\"}", "read"));
  cr_expect(ph__principal_has_scope("{\"scope\":\"a read b\"}", "read"));
  cr_expect(ph__principal_has_scope("{\"scope\":\"  a   b \"}", "b"));
  cr_expect_not(ph__principal_has_scope("{\"scope\":\"reader\"}", "read"));
  cr_expect_not(ph__principal_has_scope("{\"scope\":\"re\"}", "read"));
  cr_expect_not(ph__principal_has_scope("{\"scope\":\"a:read\"}", "read"));
  cr_expect_not(ph__principal_has_scope("{\"scope\":[\"read\"]}", "read"));
  cr_expect(ph__principal_has_scope("{\"scopes\":[\"x\",\"read\"]}", "read"));
  cr_expect_not(ph__principal_has_scope("{\"scopes\":[\"readx\",1]}", "read"));
  cr_expect_not(ph__principal_has_scope("{\"Scope\":\"read\"}", "read"));
}

Test(protocol, legacy_versions) {
  cr_expect(ph__protocol_version_supported("2025-11-25"));
  cr_expect(ph__protocol_version_supported("2025-06-18"));
  cr_expect(ph__protocol_version_supported("2025-03-26"));
  cr_expect(ph__protocol_version_supported("2024-11-05"));
  cr_expect_not(ph__protocol_version_supported(PH__MODERN_VERSION),
                "the modern era has no initialize");
  cr_expect_not(ph__protocol_version_supported("2024-10-07"));
  cr_expect_not(ph__protocol_version_supported("2025-11-25 "));
  cr_expect_not(ph__protocol_version_supported(""));
}

/* ---- initialize ---- */

Test(protocol_handle, initialize_negotiates_the_version) {
  ph__session *s = session(), *t = session();
  cJSON *reply;

  reply = ask(s,
              "{'jsonrpc':'2.0','id':1,'method':'initialize','params':"
              "{'protocolVersion':'2025-06-18','capabilities':"
              "{'sampling':{}}}}",
              NULL);
  cr_expect_eq(num_at(reply, "id"), 1);
  cr_expect_str_eq(str_at(reply, "result.protocolVersion"), "2025-06-18");
  cr_expect_str_eq(str_at(reply, "result.serverInfo.name"), "plughost");
  cr_expect(cJSON_IsTrue(at(reply, "result.capabilities.tools.listChanged")));
  cr_expect(cJSON_IsTrue(at(reply, "result.capabilities.resources.subscribe")));
  cr_expect_not_null(at(reply, "result.capabilities.prompts"));
  cr_expect_not_null(at(reply, "result.capabilities.logging"));
  cr_expect_not_null(at(reply, "result.capabilities.completions"));
  cr_expect_null(at(reply, "result.capabilities.extensions"));
  cr_expect(s->initialized);
  cr_expect_str_eq(s->version, "2025-06-18");
  cr_expect_not_null(cJSON_GetObjectItem(s->client_caps, "sampling"));
  cJSON_Delete(reply);

  reply = ask(t,
              "{'jsonrpc':'2.0','id':'a','method':'initialize','params':"
              "{'protocolVersion':'2099-01-01'}}",
              NULL);
  cr_expect_str_eq(str_at(reply, "id"), "a");
  cr_expect_str_eq(str_at(reply, "result.protocolVersion"), "2025-11-25",
                   "an unknown version gets our newest");
  cJSON_Delete(reply);
}

Test(protocol_handle, initialize_checks_its_params) {
  ph__session *s = session();
  cJSON *reply;

  reply = ask(s, "{'jsonrpc':'2.0','id':1,'method':'initialize'}", NULL);
  expect_error(reply, -32602, "protocolVersion is required");
  cJSON_Delete(reply);
  reply = ask(s,
              "{'jsonrpc':'2.0','id':1,'method':'initialize','params':"
              "{'protocolVersion':'2025-06-18','capabilities':[]}}",
              NULL);
  expect_error(reply, -32602, "capabilities must be an object");
  cJSON_Delete(reply);
  cr_expect_not(s->initialized);
}

Test(protocol_handle, requests_before_initialize_are_refused) {
  ph__session *s = session();
  cJSON *reply;

  reply = ask(s, "{'jsonrpc':'2.0','id':1,'method':'tools/list'}", NULL);
  expect_error(reply, -32600, "not initialized");
  cJSON_Delete(reply);
  reply = ask(s, "{'jsonrpc':'2.0','id':2,'method':'ping'}", NULL);
  cr_expect(cJSON_IsObject(at(reply, "result")), "ping is always allowed");
  cJSON_Delete(reply);
}

/* ---- JSON-RPC errors ---- */

Test(protocol_handle, parse_errors) {
  ph__session *s = session();
  int outcome;
  cJSON *reply;
  unit_sink k;

  reply = ask(s, "{'jsonrpc':'2.0','id':1,", &outcome);
  expect_error(reply, -32700, "Parse error");
  cr_expect(cJSON_IsNull(at(reply, "id")));
  cr_expect_eq(outcome, PH__OUTCOME_REFUSED);
  cJSON_Delete(reply);
  reply = ask(s, "{'jsonrpc':'2.0','id':1,'method':'p\xc0\xafng'}", &outcome);
  expect_error(reply, -32700, "Parse error: invalid UTF-8");
  cr_expect_eq(outcome, PH__OUTCOME_REFUSED, "the same on every transport");
  cJSON_Delete(reply);
  reply = ask(s, "[[[[[[[[[[[[1]]]]]]]]]]]]", NULL);
  expect_error(reply, -32700, "nested too deeply");
  cJSON_Delete(reply);

  unit_sink_init(&k);
  ph__protocol_reject(&k.base, 413, -32600, "message too large");
  cr_expect_eq(k.finished, 1);
  cr_expect_str_eq(k.answer, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{"
                             "\"code\":-32600,\"message\":\"message too "
                             "large\"}}");
  unit_sink_free(&k);
}

Test(protocol_handle, invalid_requests) {
  static const char *const bad[] = {
      "{'id':1,'method':'ping'}",
      "{'jsonrpc':'1.0','id':1,'method':'ping'}",
      "{'jsonrpc':2,'id':1,'method':'ping'}",
      "'ping'",
      "{'jsonrpc':'2.0','id':1}",
      "{'jsonrpc':'2.0','id':1,'method':7}",
      "{'jsonrpc':'2.0','id':1.5,'method':'ping'}",
      "{'jsonrpc':'2.0','id':{},'method':'ping'}",
      "{'jsonrpc':'2.0','id':true,'method':'ping'}",
      "{'jsonrpc':'2.0','id':01,'method':'ping'}",
      "[{'jsonrpc':'2.0','id':1,'method':'ping'}]",
  };
  ph__session *s = legacy_session("2025-06-18");
  cJSON *reply;
  size_t i;
  int outcome;

  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    reply = ask(s, bad[i], &outcome);
    expect_error(reply, -32600, "Invalid Request");
    cr_expect_eq(outcome, PH__OUTCOME_REFUSED, "%s", bad[i]);
    cJSON_Delete(reply);
  }
  reply = ask(s, "{'jsonrpc':'2.0','id':9,'method':7}", NULL);
  cr_expect_eq(num_at(reply, "id"), 9, "a valid id is echoed");
  cJSON_Delete(reply);
  reply = ask(s, "{'jsonrpc':'2.0','id':9,'method':'ping','params':[1]}", NULL);
  expect_error(reply, -32602, "params must be an object");
  cJSON_Delete(reply);
}

Test(protocol_handle, unknown_methods) {
  ph__session *s = legacy_session("2025-11-25");
  cJSON *reply;
  int outcome;

  reply = ask(s, "{'jsonrpc':'2.0','id':1,'method':'tools/lisst'}", &outcome);
  expect_error(reply, -32601, "Method not found: tools/lisst");
  cr_expect_eq(outcome, PH__OUTCOME_ANSWERED, "legacy errors keep 200");
  cJSON_Delete(reply);
  reply = ask(s, "{'jsonrpc':'2.0','id':2,'method':'server/discover'}", NULL);
  expect_error(reply, -32601, "needs the 2026-07-28 _meta fields");
  cJSON_Delete(reply);
  reply =
      ask(s,
          "{'jsonrpc':'2.0','id':3,'method':'initialize','params':{" MODERN_META
          ",'protocolVersion':'2025-11-25'}}",
          &outcome);
  expect_error(reply, -32601, "is not part of 2026-07-28");
  cr_expect_eq(outcome, PH__OUTCOME_NOT_FOUND,
               "modern: -32601 means not found");
  cJSON_Delete(reply);
}

Test(protocol_handle, notifications_and_responses_get_no_answer) {
  ph__session *s = legacy_session("2025-11-25");
  unit_sink k;

  unit_sink_init(&k);
  unit_handle(s, &k, "{'jsonrpc':'2.0','method':'notifications/initialized'}");
  cr_expect_eq(k.finished, 1);
  cr_expect_eq(k.outcome, PH__OUTCOME_ACCEPTED);
  cr_expect_null(k.answer);
  cr_expect(s->ready);
  unit_sink_free(&k);
  unit_sink_init(&k);
  unit_handle(s, &k, "{'jsonrpc':'2.0','id':'ph-99','result':{}}");
  cr_expect_eq(k.finished, 1);
  cr_expect_eq(k.outcome, PH__OUTCOME_ACCEPTED);
  cr_expect_null(k.answer);
  unit_sink_free(&k);
}

/* ---- modern _meta ---- */

Test(protocol_handle, modern_meta_errors) {
  ph__session *s = session();
  cJSON *reply;
  int outcome;

  reply = ask(s,
              "{'jsonrpc':'2.0','id':1,'method':'tools/list','params':{"
              "'_meta':{'io.modelcontextprotocol/protocolVersion':"
              "'2025-06-18','io.modelcontextprotocol/clientCapabilities':{}}"
              "}}",
              &outcome);
  expect_error(reply, -32022, "Unsupported protocol version");
  cr_expect_eq(outcome, PH__OUTCOME_REFUSED);
  cr_expect_str_eq(str_at(reply, "error.data.requested"), "2025-06-18");
  cr_expect_eq(cJSON_GetArraySize(at(reply, "error.data.supported")), 5);
  cr_expect_str_eq(str_at(reply, "error.data.supported.0"), "2026-07-28");
  cJSON_Delete(reply);

  reply = ask(s,
              "{'jsonrpc':'2.0','id':2,'method':'tools/list','params':{"
              "'_meta':{'io.modelcontextprotocol/protocolVersion':"
              "'2026-07-28'}}}",
              &outcome);
  expect_error(reply, -32602, "clientCapabilities must be an object");
  cr_expect_eq(outcome, PH__OUTCOME_REFUSED);
  cJSON_Delete(reply);

  reply = ask(s,
              "{'jsonrpc':'2.0','id':3,'method':'tools/list','params':{"
              "'_meta':{'io.modelcontextprotocol/protocolVersion':"
              "'2026-07-28','io.modelcontextprotocol/clientCapabilities':{},"
              "'io.modelcontextprotocol/logLevel':'loud'}}}",
              NULL);
  expect_error(reply, -32602, "logLevel");
  cJSON_Delete(reply);

  reply = ask(s,
              "{'jsonrpc':'2.0','id':4,'method':'tools/list','params':{"
              "'_meta':{'io.modelcontextprotocol/protocolVersion':20260728,"
              "'io.modelcontextprotocol/clientCapabilities':{}}}}",
              NULL);
  expect_error(reply, -32602, "protocolVersion must be a string");
  cJSON_Delete(reply);

  s->modern = 1; /* A stateless HTTP request: _meta is required. */
  reply = ask(s, "{'jsonrpc':'2.0','id':5,'method':'tools/list'}", NULL);
  expect_error(reply, -32602, "protocolVersion must be a string");
  cJSON_Delete(reply);
}

Test(protocol_handle, modern_results_are_decorated) {
  ph__session *s = session();
  const cJSON *info;
  cJSON *reply;
  int outcome;

  reply = ask(s,
              "{'jsonrpc':'2.0','id':1,'method':'server/"
              "discover','params':{" MODERN_META "}}",
              &outcome);
  cr_expect_eq(outcome, PH__OUTCOME_ANSWERED);
  cr_expect_str_eq(str_at(reply, "result.resultType"), "complete");
  cr_expect_str_eq(str_at(reply, "result.supportedVersions.0"), "2026-07-28");
  info = cJSON_GetObjectItem(at(reply, "result._meta"),
                             "io.modelcontextprotocol/serverInfo");
  cr_expect_str_eq(str_at(info, "name"), "plughost");
  cJSON_Delete(reply);
  reply =
      ask(s,
          "{'jsonrpc':'2.0','id':2,'method':'tools/list','params':{" MODERN_META
          "}}",
          NULL);
  cr_expect_eq(num_at(reply, "result.ttlMs"), 60000);
  cr_expect_str_eq(str_at(reply, "result.cacheScope"), "public");
  cr_expect_eq(cJSON_GetArraySize(at(reply, "result.tools")), 3);
  cJSON_Delete(reply);
  cr_expect_not(s->initialized, "modern requests need no initialize");
}

/* ---- lists ---- */

Test(protocol_handle, tools_list_pages) {
  ph__session *s = legacy_session("2025-11-25");
  char text[512], names[1024] = "";
  const cJSON *tool;
  char *cursor = NULL;
  cJSON *reply;
  int pages = 0;

  do {
    if (cursor == NULL)
      snprintf(text, sizeof(text),
               "{'jsonrpc':'2.0','id':1,'method':'tools/list'}");
    else
      snprintf(text, sizeof(text),
               "{'jsonrpc':'2.0','id':1,'method':'tools/list','params':"
               "{'cursor':'%s'}}",
               cursor);
    free(cursor);
    cursor = NULL;
    reply = ask(s, text, NULL);
    cr_assert_not_null(at(reply, "result.tools"), "%s", text);
    cr_expect_leq(cJSON_GetArraySize(at(reply, "result.tools")), 3);
    cJSON_ArrayForEach(tool, at(reply, "result.tools")) {
      strcat(names, str_at(tool, "name"));
      strcat(names, ",");
      cr_expect_not_null(at(tool, "inputSchema"));
    }
    if (at(reply, "result.nextCursor") != NULL)
      cursor = strdup(str_at(reply, "result.nextCursor"));
    cJSON_Delete(reply);
    pages++;
  } while (cursor != NULL && pages < 10);
  cr_expect_eq(pages, 4);
  cr_expect_str_eq(names, "ok_echo,ok_add,ok_fail,ok_progress,ok_log,"
                          "slow_sleep,slow_now,hang_forever,hang_twice,"
                          "hang_never,");
}

Test(protocol_handle, bad_cursors) {
  ph__session *s = legacy_session("2025-11-25");
  cJSON *reply;

  reply = ask(s,
              "{'jsonrpc':'2.0','id':1,'method':'tools/list','params':"
              "{'cursor':'p99'}}",
              NULL);
  expect_error(reply, -32602, "unknown cursor");
  cJSON_Delete(reply);
  reply = ask(s,
              "{'jsonrpc':'2.0','id':1,'method':'tools/list','params':"
              "{'cursor':2}}",
              NULL);
  expect_error(reply, -32602, "cursor must be a string");
  cJSON_Delete(reply);
  reply = ask(s,
              "{'jsonrpc':'2.0','id':1,'method':'tools/list','params':"
              "{'cursor':null}}",
              NULL);
  cr_expect_eq(cJSON_GetArraySize(at(reply, "result.tools")), 3,
               "a null cursor is the first page");
  cJSON_Delete(reply);
}

Test(protocol_handle, other_lists) {
  ph__session *s = legacy_session("2025-11-25");
  cJSON *reply;

  reply = ask(s, "{'jsonrpc':'2.0','id':1,'method':'prompts/list'}", NULL);
  cr_expect_str_eq(str_at(reply, "result.prompts.0.name"), "ok_greet");
  cr_expect_str_eq(str_at(reply, "result.prompts.0.arguments.0.name"), "name");
  cJSON_Delete(reply);
  reply = ask(s, "{'jsonrpc':'2.0','id':2,'method':'resources/list'}", NULL);
  cr_expect_str_eq(str_at(reply, "result.resources.0.uri"), "ok://hello");
  cJSON_Delete(reply);
  reply = ask(s, "{'jsonrpc':'2.0','id':3,'method':'resources/templates/list'}",
              NULL);
  cr_expect_str_eq(str_at(reply, "result.resourceTemplates.0.uriTemplate"),
                   "ok://items/{id}");
  cJSON_Delete(reply);
}

/* ---- calls ---- */

Test(protocol_handle, tools_call) {
  ph__session *s = legacy_session("2025-11-25");
  cJSON *reply;

  reply = ask(s,
              "{'jsonrpc':'2.0','id':1,'method':'tools/call','params':"
              "{'name':'ok_echo','arguments':{'text':'hello'}}}",
              NULL);
  cr_expect_str_eq(str_at(reply, "result.content.0.text"), "hello");
  cr_expect_null(at(reply, "result.isError"));
  cJSON_Delete(reply);
  reply = ask(s,
              "{'jsonrpc':'2.0','id':2,'method':'tools/call','params':"
              "{'name':'slow_now'}}",
              NULL);
  cr_expect_not_null(at(reply, "result.content.0.text"), "inline, no args");
  cJSON_Delete(reply);
  cr_expect_eq(ph__session_inflight(s), 0);
}

Test(protocol_handle, unknown_tool_and_bad_arguments) {
  ph__session *s = legacy_session("2025-11-25");
  cJSON *reply;

  reply = ask(s,
              "{'jsonrpc':'2.0','id':1,'method':'tools/call','params':"
              "{'name':'ok_nope','arguments':{}}}",
              NULL);
  expect_error(reply, -32602, "Unknown tool: ok_nope");
  cJSON_Delete(reply);
  reply = ask(s,
              "{'jsonrpc':'2.0','id':2,'method':'tools/call','params':"
              "{'name':'echo','arguments':{}}}",
              NULL);
  expect_error(reply, -32602, "Unknown tool: echo");
  cJSON_Delete(reply);
  reply = ask(s,
              "{'jsonrpc':'2.0','id':3,'method':'tools/call','params':"
              "{'arguments':{}}}",
              NULL);
  expect_error(reply, -32602, "name must be a string");
  cJSON_Delete(reply);
  reply = ask(s,
              "{'jsonrpc':'2.0','id':4,'method':'tools/call','params':"
              "{'name':'ok_echo','arguments':[1]}}",
              NULL);
  expect_error(reply, -32602, "arguments must be an object");
  cJSON_Delete(reply);
  /* Schema failures are tool results a model can read. */
  reply = ask(s,
              "{'jsonrpc':'2.0','id':5,'method':'tools/call','params':"
              "{'name':'ok_add','arguments':{'a':1}}}",
              NULL);
  cr_expect(cJSON_IsTrue(at(reply, "result.isError")));
  cr_expect_not_null(strstr(str_at(reply, "result.content.0.text"),
                            "Invalid arguments for ok_add"));
  cJSON_Delete(reply);
}

Test(protocol_handle, resources_not_found_per_era) {
  ph__session *s = legacy_session("2025-11-25");
  cJSON *reply;

  reply = ask(s,
              "{'jsonrpc':'2.0','id':1,'method':'resources/read','params':"
              "{'uri':'ok://missing'}}",
              NULL);
  expect_error(reply, -32002, "Resource not found");
  cr_expect_str_eq(str_at(reply, "error.data.uri"), "ok://missing");
  cJSON_Delete(reply);
  reply = ask(
      s,
      "{'jsonrpc':'2.0','id':2,'method':'resources/read','params':{" MODERN_META
      ",'uri':'ok://missing'}}",
      NULL);
  expect_error(reply, -32602, "Resource not found");
  cJSON_Delete(reply);
  reply = ask(s,
              "{'jsonrpc':'2.0','id':3,'method':'resources/read','params':"
              "{'uri':'ok://items/42'}}",
              NULL);
  cr_expect_str_eq(str_at(reply, "result.contents.0.text"), "42");
  cJSON_Delete(reply);
}

Test(protocol_handle, deadline_gives_a_tool_error) {
  ph__session *s = legacy_session("2025-11-25");
  ph_call *call;
  cJSON *reply;
  unit_sink k;

  unit_sink_init(&k);
  unit_handle(s, &k,
              "{'jsonrpc':'2.0','id':1,'method':'tools/call','params':"
              "{'name':'hang_never'}}");
  cr_assert_eq(ph__session_inflight(s), 1);
  call = s->inflight[0];
  ph__call_ref(call); /* To reply late in the plugin's place. */
  RUN_UNTIL(k.finished == 1, 5000);
  reply = cJSON_Parse(k.answer);
  cr_expect(cJSON_IsTrue(at(reply, "result.isError")), "%s", k.answer);
  cr_expect_str_eq(str_at(reply, "result.content.0.text"),
                   "hang_never timed out after 200 ms");
  cJSON_Delete(reply);
  cr_expect_eq(ph__session_inflight(s), 0);
  cr_expect_eq(ph__calls_unanswered(), 0);
  /* hang_never never replies, so its call lives on; a late reply is
   * refused politely and frees it. */
  cr_expect_eq(ph__calls_live(), 1);
  cr_expect_eq(ph__host_api.reply(call, "{\"content\":[]}"), PH_ECANCELED);
  ph__call_unref(call);
  RUN_UNTIL(ph__calls_live() == 0, 2000);
  cr_expect_eq(k.finished, 1, "the late reply is not sent");
  unit_sink_free(&k);
}

Test(protocol_handle, cancelled_requests_get_no_answer) {
  ph__session *s = legacy_session("2025-11-25");
  unit_sink call, note;

  unit_sink_init(&call);
  unit_handle(s, &call,
              "{'jsonrpc':'2.0','id':'c1','method':'tools/call','params':"
              "{'name':'slow_sleep','arguments':{'ms':10000}}}");
  cr_expect_eq(call.finished, 0);
  cr_expect_eq(ph__session_inflight(s), 1);
  unit_sink_init(&note);
  unit_handle(s, &note,
              "{'jsonrpc':'2.0','method':'notifications/cancelled','params':"
              "{'requestId':'c1','reason':'user'}}");
  cr_expect_eq(note.outcome, PH__OUTCOME_ACCEPTED);
  cr_expect_eq(call.finished, 1, "answered by the cancel");
  cr_expect_eq(call.outcome, PH__OUTCOME_ACCEPTED);
  cr_expect_null(call.answer, "no response for a cancelled request");
  cr_expect_eq(ph__session_inflight(s), 0);
  RUN_UNTIL(ph__calls_live() == 0, 2000);
  cr_expect_eq(call.finished, 1);
  unit_sink_free(&call);
  unit_sink_free(&note);
}

Test(protocol_handle, ids_in_flight_and_the_session_limit) {
  ph__session *s = legacy_session("2025-11-25");
  unit_sink a, b;
  cJSON *reply;
  int outcome;

  unit_sink_init(&a);
  unit_handle(s, &a,
              "{'jsonrpc':'2.0','id':7,'method':'tools/call','params':"
              "{'name':'slow_sleep','arguments':{'ms':10000}}}");
  reply = ask(s, "{'jsonrpc':'2.0','id':7,'method':'ping'}", NULL);
  expect_error(reply, -32600, "already in use");
  cJSON_Delete(reply);
  unit_sink_init(&b);
  unit_handle(s, &b,
              "{'jsonrpc':'2.0','id':8,'method':'tools/call','params':"
              "{'name':'slow_sleep','arguments':{'ms':10000}}}");
  reply = ask(s,
              "{'jsonrpc':'2.0','id':9,'method':'tools/call','params':"
              "{'name':'ok_echo','arguments':{'text':'x'}}}",
              &outcome);
  expect_error(reply, -32603, "too many requests in flight");
  cr_expect_eq(outcome, PH__OUTCOME_BUSY);
  cJSON_Delete(reply);
  cr_expect_eq(ph__session_inflight(s), 2);
  /* Closing the session cancels both: no response is due. */
  nsessions--;
  ph__session_close(s);
  cr_expect_eq(a.finished, 1);
  cr_expect_eq(a.outcome, PH__OUTCOME_ACCEPTED);
  cr_expect_null(a.answer);
  cr_expect_eq(b.finished, 1);
  cr_expect_null(b.answer);
  unit_sink_free(&a);
  unit_sink_free(&b);
}

Test(protocol_handle, progress_and_messages_go_to_the_request) {
  ph__session *s = legacy_session("2025-11-25");
  cJSON *reply;
  unit_sink k;

  unit_sink_init(&k);
  unit_handle(s, &k,
              "{'jsonrpc':'2.0','id':1,'method':'tools/call','params':"
              "{'name':'ok_progress','_meta':{'progressToken':'t'}}}");
  RUN_UNTIL(k.finished == 1, 5000);
  cr_assert_eq(k.nsent, 3);
  cr_expect_not_null(strstr(k.sent[0], "\"progressToken\":\"t\","
                                       "\"progress\":1,\"total\":3"));
  cr_expect_not_null(strstr(k.sent[2], "\"progress\":3"));
  unit_sink_free(&k);

  reply = ask(s,
              "{'jsonrpc':'2.0','id':2,'method':'logging/setLevel','params':"
              "{'level':'error'}}",
              NULL);
  cr_expect_not_null(at(reply, "result"));
  cJSON_Delete(reply);
  unit_sink_init(&k);
  unit_handle(s, &k,
              "{'jsonrpc':'2.0','id':3,'method':'tools/call','params':"
              "{'name':'ok_log'}}");
  RUN_UNTIL(k.finished == 1, 5000);
  cr_expect_eq(k.nsent, 1, "only the error message passes");
  unit_sink_free(&k);
}

/* ---- batches ---- */

Test(protocol_handle, batches_only_on_2025_03_26) {
  ph__session *old = legacy_session("2025-03-26");
  ph__session *now = legacy_session("2025-06-18");
  cJSON *reply;
  unit_sink k;

  unit_sink_init(&k);
  unit_handle(old, &k,
              "[{'jsonrpc':'2.0','id':1,'method':'ping'},"
              "{'jsonrpc':'2.0','method':'notifications/initialized'},"
              "{'jsonrpc':'2.0','id':2,'method':'tools/call','params':"
              "{'name':'ok_echo','arguments':{'text':'b'}}},"
              "{'jsonrpc':'2.0','id':3,'method':'nope'}]");
  RUN_UNTIL(k.finished == 1, 5000);
  cr_expect_eq(k.outcome, PH__OUTCOME_ANSWERED);
  reply = cJSON_Parse(k.answer);
  cr_assert_eq(cJSON_GetArraySize(reply), 3, "%s", k.answer);
  cr_expect_eq(num_at(reply, "0.id"), 1, "in the order they completed");
  cr_expect_eq(num_at(reply, "1.error.code"), -32601);
  cr_expect_str_eq(str_at(reply, "2.result.content.0.text"), "b");
  cJSON_Delete(reply);
  unit_sink_free(&k);

  unit_sink_init(&k);
  unit_handle(old, &k,
              "[{'jsonrpc':'2.0','method':'notifications/initialized'}]");
  cr_expect_eq(k.outcome, PH__OUTCOME_ACCEPTED);
  cr_expect_null(k.answer);
  unit_sink_free(&k);

  reply = ask(old, "[]", NULL);
  expect_error(reply, -32600, "empty batch");
  cJSON_Delete(reply);
  reply = ask(now, "[{'jsonrpc':'2.0','id':1,'method':'ping'}]", NULL);
  expect_error(reply, -32600, "only accepted on a session that negotiated");
  cJSON_Delete(reply);
}

Test(protocol_handle, batch_members_are_bounded) {
  ph__session *s = legacy_session("2025-03-26");
  cJSON *reply;
  unit_sink k;

  unit_sink_init(&k);
  unit_handle(s, &k,
              "[{'jsonrpc':'2.0','id':1,'method':'ping'},"
              "{'jsonrpc':'2.0','id':2,'method':'ping'},"
              "{'jsonrpc':'2.0','id':3,'method':'ping'},"
              "{'jsonrpc':'2.0','id':4,'method':'ping'}]");
  RUN_UNTIL(k.finished == 1, 5000);
  reply = cJSON_Parse(k.answer);
  cr_expect_eq(cJSON_GetArraySize(reply), 4, "%s", k.answer);
  cJSON_Delete(reply);
  unit_sink_free(&k);
  /* Five members of anything, even invalid JSON past them, are refused
   * before a tree is built. */
  reply = ask(s, "[1,2,3,4,5,", NULL);
  expect_error(reply, -32700, "unbalanced");
  cJSON_Delete(reply);
  reply = ask(s, "[1,2,3,4,5,{]", NULL);
  expect_error(reply, -32700, "unbalanced");
  cJSON_Delete(reply);
  reply = ask(s, "[1,2,3,4,{},'x',[]]", NULL);
  expect_error(reply, -32600, "a batch of more than 4 members");
  cr_expect(cJSON_IsNull(at(reply, "id")));
  cJSON_Delete(reply);
  reply = ask(s, " [1,2,3,4] ", NULL);
  cr_assert(cJSON_IsArray(reply));
  cr_expect_eq(cJSON_GetArraySize(reply), 4, "four invalid members");
  cJSON_Delete(reply);
}

/* An answer's text as the protocol wrote it. */
static char *answer_to(ph__session *s, const char *text) {
  unit_sink k;
  char *answer;

  unit_sink_init(&k);
  unit_handle(s, &k, text);
  RUN_UNTIL(k.finished == 1, 5000);
  cr_assert_not_null(k.answer, "no answer to %s", text);
  answer = strdup(k.answer);
  unit_sink_free(&k);
  return answer;
}

Test(protocol_handle, ids_are_echoed_as_written) {
  static const char *const ids[] = {
      "9007199254740993",
      "-9007199254740993",
      "18446744073709551617",
      "-0",
      "1e3",
      "100e-2",
      "2.50e1",
      "0.0",
      "'\\u0041'",
      "'\\/'",
      "'\\ud83d\\ude00'",
  };
  ph__session *s = legacy_session("2025-11-25");
  char text[256], want[128], *answer;
  size_t i;

  for (i = 0; i < sizeof(ids) / sizeof(*ids); i++) {
    char *id = unit_dq(ids[i]);

    snprintf(want, sizeof(want), "\"id\":%s,", id);
    snprintf(text, sizeof(text), "{'jsonrpc':'2.0','id':%s,'method':'ping'}",
             ids[i]);
    answer = answer_to(s, text);
    cr_expect_not_null(strstr(answer, want), "want %s: %s", want, answer);
    cr_expect_not_null(strstr(answer, "\"result\""), "%s", answer);
    free(answer);
    snprintf(text, sizeof(text), "{'jsonrpc':'2.0','id':%s,'method':'nope'}",
             ids[i]);
    answer = answer_to(s, text);
    cr_expect_not_null(strstr(answer, want), "want %s: %s", want, answer);
    free(answer);
    snprintf(text, sizeof(text),
             "{'jsonrpc':'2.0','id':%s,'method':'tools/call','params':"
             "{'name':'ok_echo','arguments':{'text':'x'}}}",
             ids[i]);
    answer = answer_to(s, text);
    cr_expect_not_null(strstr(answer, want), "want %s: %s", want, answer);
    free(answer);
    free(id);
  }
}

Test(protocol_handle, invalid_requests_keep_their_id) {
  static const struct {
    const char *text, *id;
  } cases[] = {
      {"{'jsonrpc':'1.0','id':6,'method':'ping'}", "6"},
      {"{'method':'ping','id':9007199254740993}", "9007199254740993"},
      {"{'jsonrpc':'1.0','i\\u0064':7,'method':'ping','id':8,'x':[]}", "7"},
      {"{'jsonrpc':'2.0','id':'a','params':{'id':3}}", "\"a\""},
      {"{'jsonrpc':'2.0','id':1.5,'method':'ping'}", "1.5"},
      {"{'jsonrpc':'2.0','id':1e-3,'method':'ping'}", "1e-3"},
      {"{'jsonrpc':'2.0','id':01,'method':'ping'}", "null"},
      {"{'jsonrpc':'2.0','id':[6],'method':'ping'}", "null"},
      {"{'jsonrpc':'2.0','id':false,'method':'ping'}", "null"},
      {"{'jsonrpc':'2.0','id':null,'method':'ping'}", "null"},
      {"{'jsonrpc':'2.0','id':{'id':6},'method':'ping'}", "null"},
      {"[6]", "null"},
  };
  ph__session *s = legacy_session("2025-03-26");
  char want[64], *answer;
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    snprintf(want, sizeof(want), "\"id\":%s,", cases[i].id);
    answer = answer_to(s, cases[i].text);
    cr_expect_not_null(strstr(answer, want), "want %s: %s", want, answer);
    cr_expect_not_null(strstr(answer, "-32600"), "%s", answer);
    free(answer);
  }
}

Test(protocol_handle, a_session_is_initialized_once) {
  ph__session *s = legacy_session("2025-11-25"), *b;
  cJSON *reply;

  reply = ask(s,
              "{'jsonrpc':'2.0','id':1,'method':'initialize','params':"
              "{'protocolVersion':'2025-03-26','capabilities':{}}}",
              NULL);
  expect_error(reply, -32600, "already initialized");
  cJSON_Delete(reply);
  cr_expect_str_eq(s->version, "2025-11-25");
  /* A failed initialize is no initialize: the client may try again. */
  b = session();
  reply = ask(b, "{'jsonrpc':'2.0','id':1,'method':'initialize'}", NULL);
  expect_error(reply, -32602, "protocolVersion");
  cJSON_Delete(reply);
  reply = ask(b,
              "{'jsonrpc':'2.0','id':2,'method':'initialize','params':"
              "{'protocolVersion':'2025-03-26','capabilities':{}}}",
              NULL);
  cr_expect_str_eq(str_at(reply, "result.protocolVersion"), "2025-03-26");
  cJSON_Delete(reply);
  reply = ask(b,
              "[{'jsonrpc':'2.0','id':3,'method':'initialize','params':"
              "{'protocolVersion':'2025-11-25','capabilities':{}}}]",
              NULL);
  expect_error(at(reply, "0"), -32600, "must not be part of a batch");
  cJSON_Delete(reply);
  cr_expect_str_eq(b->version, "2025-03-26");
}

Test(protocol_handle, bytes_after_the_value_are_refused) {
  static const char *const bad[] = {
      "{'jsonrpc':'2.0','id':1,'method':'ping'}{}",
      "{'jsonrpc':'2.0','id':1,'method':'ping'} x",
      "{'jsonrpc':'2.0','id':1,'method':'ping'},",
      "1 2",
      "[] []",
  };
  ph__session *s = legacy_session("2025-03-26");
  cJSON *reply;
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    reply = ask(s, bad[i], NULL);
    expect_error(reply, -32700, "bytes after the JSON value");
    cJSON_Delete(reply);
  }
  reply = ask(s, "\r\n {'jsonrpc':'2.0','id':1,'method':'ping'} \t\r\n", NULL);
  cr_expect_not_null(at(reply, "result"));
  cJSON_Delete(reply);
}

Test(protocol_handle, cancellations_and_progress_by_text) {
  ph__session *s = legacy_session("2025-11-25");
  unit_sink call, note;

  unit_sink_init(&call);
  unit_handle(s, &call,
              "{'jsonrpc':'2.0','id':9007199254740993,'method':'tools/call',"
              "'params':{'name':'slow_sleep','arguments':{'ms':10000}}}");
  cr_expect_eq(ph__session_inflight(s), 1);
  unit_sink_init(&note);
  /* The same double, another id. */
  unit_handle(s, &note,
              "{'jsonrpc':'2.0','method':'notifications/cancelled','params':"
              "{'requestId':9007199254740992}}");
  cr_expect_eq(call.finished, 0, "another id cancels nothing");
  unit_sink_free(&note);
  unit_sink_init(&note);
  unit_handle(s, &note,
              "{'jsonrpc':'2.0','method':'notifications/cancelled','params':"
              "{'reason':'x','requestId':9007199254740993}}");
  cr_expect_eq(call.finished, 1, "its own id cancels it");
  cr_expect_null(call.answer);
  RUN_UNTIL(ph__calls_live() == 0, 2000);
  unit_sink_free(&call);
  unit_sink_free(&note);

  unit_sink_init(&call);
  unit_handle(s, &call,
              "{'jsonrpc':'2.0','id':1,'method':'tools/call','params':"
              "{'_meta':{'progressToken':18446744073709551617},"
              "'name':'ok_progress'}}");
  RUN_UNTIL(call.finished == 1, 5000);
  cr_assert_eq(call.nsent, 3);
  cr_expect_not_null(
      strstr(call.sent[0], "\"progressToken\":18446744073709551617,"), "%s",
      call.sent[0]);
  unit_sink_free(&call);
}

/* Containers, members and elements count; commas in strings do not; text
 * too short to hold more than the limit is not refused. */
Test(protocol, values_check_counts_what_cjson_builds) {
  static const char five[] = "{\"a\":[1,2],\"b\":\",,,,,,,,,,,,,,,,\"}";
  const char *why;

  cr_expect_null(ph__json_check_values(five, strlen(five), 5));
  why = ph__json_check_values(five, strlen(five), 4);
  cr_expect_str_eq(why, "more than 4 JSON values (limits.max_json_values)");
  cr_expect_null(ph__json_check_values("[1,2,3,4,5,6]", 13, 7));
  cr_expect_not_null(ph__json_check_values("[1,2,3,4,5,6]", 13, 6));
  cr_expect_null(ph__json_parse_message("[1,2,3,4,5,6]", 13, 8, 4, &why));
  cr_expect_str_eq(why, "more than 4 JSON values (limits.max_json_values)");
}

Test(protocol, parse_message_and_id_text) {
  const char *why;
  cJSON *j;
  char *id;

  j = ph__json_parse_message("{\"id\":1} ", 9, 8, 100, &why);
  cr_expect_not_null(j);
  cJSON_Delete(j);
  cr_expect_null(ph__json_parse_message("{\"id\":1} 2", 10, 8, 100, &why));
  cr_expect_str_eq(why, "bytes after the JSON value");
  cr_expect_null(ph__json_parse_message("{\"id\":\"\x01\"}", 10, 8, 100, &why));
  cr_expect_str_eq(why, "control character in a string");
  cr_expect_null(ph__json_parse_message("{\"id\":}", 7, 8, 100, &why));
  cr_expect_str_eq(why, "not valid JSON");

  id = ph__jsonrpc_id_text(" {\"a\":{\"id\":2},\"id\":-1.50E+3}", 29);
  cr_expect_str_eq(id, "-1.50E+3");
  free(id);
  id = ph__jsonrpc_id_text("{\"id\":\"a\\\"}\"}", 13);
  cr_expect_str_eq(id, "\"a\\\"}\"");
  free(id);
  cr_expect_null(ph__jsonrpc_id_text("{\"id\":true}", 11));
  cr_expect_null(ph__jsonrpc_id_text("{\"x\":1}", 7));
  cr_expect_null(ph__jsonrpc_id_text("[1]", 3));
}
