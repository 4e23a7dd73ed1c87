/* test_sdk.c: the SDK's pure helpers, which every plugin links: the JSON
 * escaper (checked against cJSON's own printing, byte for byte, at every
 * place of the words it reads) and the
 * argument readers with their messages. */
#include <plughost.h>

#include <cJSON.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* Escapes s with the SDK and with cJSON and compares the two. */
static void same_as_cjson(const char *s, size_t len) {
  char *out = malloc(6 * len + 3), *end, *want;
  cJSON *str;

  cr_assert_not_null(out);
  out[0] = '"';
  end = ph_json_escape(out + 1, s, len);
  *end++ = '"';
  *end = '\0';
  str = cJSON_CreateString(s);
  want = cJSON_PrintUnformatted(str);
  cr_assert_str_eq(out, want);
  cr_assert_leq((size_t)(end - out), 6 * len + 2);
  cJSON_free(want);
  cJSON_Delete(str);
  free(out);
}

Test(sdk, escape_matches_cjson_for_every_byte) {
  char all[256];
  int i;

  for (i = 1; i < 256; i++)
    all[i - 1] = (char)i;
  all[255] = '\0';
  /* cJSON prints bytes >= 0x80 as they are, as ph_json_escape does. */
  same_as_cjson(all, 255);
  same_as_cjson("", 0);
  same_as_cjson("plain text", strlen("plain text"));
  same_as_cjson("\"\\\b\f\n\r\t\x01\x1f", 9);
  same_as_cjson("caf\xc3\xa9 \xe2\x82\xac", 9);
}

/* The escaper takes eight bytes at a time: every byte value, at every
 * place of a word and in the tail, among bytes that need no escape and
 * among bytes that do. */
Test(sdk, escape_matches_cjson_at_every_place_of_a_word) {
  char buf[20];
  int c, at, fill;

  for (fill = 0; fill < 2; fill++)
    for (c = 1; c < 256; c++)
      for (at = 0; at < 19; at++) {
        memset(buf, fill ? '"' : 'a', 19);
        buf[at] = (char)c;
        buf[19] = '\0';
        same_as_cjson(buf, 19);
      }
}

Test(sdk, escape_stays_within_six_bytes_a_byte) {
  char in[64], out[6 * 64];

  memset(in, 0x01, sizeof(in));
  cr_assert_eq(ph_json_escape(out, in, sizeof(in)), out + sizeof(out));
}

Test(sdk, args_read_typed_values_and_fallbacks) {
  ph_args *a = ph_args_parse("{\"path\":\"a/b.txt\",\"limit\":25,"
                             "\"ratio\":0.5,\"all\":true,\"none\":null,"
                             "\"list\":[1,\"x\"]}");

  cr_assert_not_null(a);
  cr_assert_str_eq(ph_args_string(a, "path", NULL), "a/b.txt");
  cr_assert_eq(ph_args_int(a, "limit", 1, 100, 10), 25);
  cr_assert_float_eq(ph_args_number(a, "ratio", 0, 1, 0), 0.5, 1e-12);
  cr_assert_eq(ph_args_bool(a, "all", 0), 1);
  cr_assert_eq(ph_args_int(a, "missing", 1, 100, 10), 10);
  cr_assert_str_eq(ph_args_string(a, "none", "dflt"), "dflt");
  cr_assert(ph_args_has(a, "path"));
  cr_assert_not(ph_args_has(a, "none"));
  cr_assert_str_eq(ph_args_json(a, "list"), "[1,\"x\"]");
  cr_assert_null(ph_args_json(a, "missing"));
  cr_assert_null(ph_args_error(a));
  ph_args_free(a);
}

Test(sdk, args_name_the_first_problem) {
  ph_args *a = ph_args_parse("{\"limit\":250,\"path\":7,\"all\":\"yes\"}");

  cr_assert_eq(ph_args_int(a, "limit", 1, 100, 10), 10);
  cr_assert_str_eq(ph_args_error(a), "limit: must be an integer from 1 to 100");
  cr_assert_null(ph_args_string(a, "path", NULL));
  cr_assert_eq(ph_args_bool(a, "all", 0), 0);
  /* The first problem stays: it is the one to fix first. */
  cr_assert_str_eq(ph_args_error(a), "limit: must be an integer from 1 to 100");
  ph_args_free(a);

  a = ph_args_parse("{\"n\":1.5}");
  ph_args_int(a, "n", 0, 10, 0);
  cr_assert_str_eq(ph_args_error(a), "n: must be an integer from 0 to 10");
  ph_args_free(a);

  a = ph_args_parse("{\"path\":7}");
  ph_args_string(a, "path", NULL);
  cr_assert_str_eq(ph_args_error(a), "path: must be a string");
  ph_args_free(a);
}

Test(sdk, args_refuse_what_is_not_an_object_or_holds_a_nul) {
  static const char *const bad[] = {"[1]", "\"s\"", "nope", "", NULL};
  ph_args *a;
  int i;

  for (i = 0; bad[i] != NULL; i++) {
    a = ph_args_parse(bad[i]);
    cr_assert_str_eq(ph_args_error(a), "arguments must be a JSON object", "%s",
                     bad[i]);
    cr_assert_null(ph_args_string(a, "x", NULL));
    ph_args_free(a);
  }
  a = ph_args_parse(NULL);
  cr_assert_not_null(ph_args_error(a));
  ph_args_free(a);

  /* cJSON would read "a.txt\u0000.png" as "a.txt". */
  a = ph_args_parse("{\"path\":\"a.txt\\u0000.png\"}");
  cr_assert_str_eq(ph_args_error(a),
                   "arguments must not contain NUL characters");
  cr_assert_null(ph_args_string(a, "path", NULL));
  ph_args_free(a);

  /* An escaped backslash followed by "u0000" is no NUL. */
  a = ph_args_parse("{\"path\":\"a\\\\u0000\"}");
  cr_assert_null(ph_args_error(a));
  cr_assert_str_eq(ph_args_string(a, "path", NULL), "a\\u0000");
  ph_args_free(a);
}
