/* test_schema.c: the JSON Schema validator against the official JSON Schema
 * Test Suite (draft-07, installed by the json-schema-test-suite package) and
 * against cases of our own for what the suite does not cover: 2020-12, the
 * refusals, the cost bounds and the error text. */
#include <criterion/criterion.h>

#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

#define SUITE_DIR "/usr/share/json-schema-test-suite/tests/draft7/"
#define DRAFT_07 "http://json-schema.org/draft-07/schema#"

/* Suite cases the validator refuses by design, matched by description. The
 * run checks that each is refused at compile time rather than mis-validated.
 */
static const char *const refused_cases[] = {
    /* ref.json: "$ref" to the draft-07 metaschema by URL, a remote fetch. */
    "remote ref, containing refs itself",
    /* ref.json: "$id" moves the base URI so that "$ref": "node" resolves to
     * another resource; base-URI changes are not supported. */
    "Recursive references between schemas",
    /* definitions.json: both cases validate a schema against the remote
     * draft-07 metaschema. */
    "valid definition",
    "invalid definition",
};

static int is_refused(const char *description) {
  size_t i;
  for (i = 0; i < sizeof refused_cases / sizeof *refused_cases; i++)
    if (strcmp(description, refused_cases[i]) == 0)
      return 1;
  return 0;
}

static cJSON *load_json(const char *path) {
  FILE *f = fopen(path, "rb");
  cJSON *json = NULL;
  char *text = NULL;
  long size;

  cr_assert_not_null(f,
                     "cannot open %s (is json-schema-test-suite "
                     "installed?)",
                     path);
  if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
      fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)size + 1)) &&
      fread(text, 1, (size_t)size, f) == (size_t)size) {
    text[size] = '\0';
    json = cJSON_Parse(text);
  }
  free(text);
  fclose(f);
  cr_assert_not_null(json, "cannot parse %s", path);
  return json;
}

/* Runs every case of one suite file, declaring draft-07 (the suite's dialect)
 * on each schema, and fails listing every test that came out wrong. */
static void run_suite_file(const char *file) {
  char path[512];
  cJSON *cases, *c;
  int misses = 0, passes = 0, refusals = 0;

  snprintf(path, sizeof path, "%s%s", SUITE_DIR, file);
  cases = load_json(path);
  cJSON_ArrayForEach(c, cases) {
    const char *desc =
        cJSON_GetObjectItemCaseSensitive(c, "description")->valuestring;
    cJSON *schema =
        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(c, "schema"), 1);
    cJSON *t;
    char *err = NULL;
    ph__schema *s;

    if (cJSON_IsObject(schema) &&
        !cJSON_GetObjectItemCaseSensitive(schema, "$schema"))
      cJSON_AddStringToObject(schema, "$schema", DRAFT_07);
    s = ph__schema_compile(schema, &err);
    cJSON_Delete(schema);
    if (is_refused(desc)) {
      if (s) {
        cr_log_error("MISS %s | %s: expected a compile-time refusal", file,
                     desc);
        misses++;
      }
      refusals++;
      ph__schema_free(s);
      free(err);
      continue;
    }
    if (!s) {
      cr_log_error("MISS %s | %s: compile error: %s", file, desc, err);
      free(err);
      misses++;
      continue;
    }
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(c, "tests")) {
      const cJSON *data = cJSON_GetObjectItemCaseSensitive(t, "data");
      int valid = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "valid"));
      int rc = ph__schema_validate(s, data, &err);
      if ((rc == 0) != valid) {
        cr_log_error(
            "MISS %s | %s | %s: expected %s, got %s", file, desc,
            cJSON_GetObjectItemCaseSensitive(t, "description")->valuestring,
            valid ? "valid" : "invalid", err ? err : "valid");
        misses++;
      } else {
        passes++;
      }
      free(err);
      err = NULL;
    }
    ph__schema_free(s);
  }
  cJSON_Delete(cases);
  cr_expect_eq(misses, 0, "%s: %d test(s) missed", file, misses);
  cr_expect_gt(passes + refusals, 0, "%s: no test ran", file);
  cr_log_info("%s: %d tests passed, %d cases refused by design", file, passes,
              refusals);
}

#define SUITE(name, file)                                                      \
  Test(suite_draft7, name) {                                                   \
    run_suite_file(file);                                                      \
  }

SUITE(type, "type.json")
SUITE(properties, "properties.json")
SUITE(required, "required.json")
SUITE(additional_properties, "additionalProperties.json")
SUITE(pattern_properties, "patternProperties.json")
SUITE(property_names, "propertyNames.json")
SUITE(min_properties, "minProperties.json")
SUITE(max_properties, "maxProperties.json")
SUITE(dependencies, "dependencies.json")
SUITE(enum_, "enum.json")
SUITE(const_, "const.json")
SUITE(minimum, "minimum.json")
SUITE(maximum, "maximum.json")
SUITE(exclusive_minimum, "exclusiveMinimum.json")
SUITE(exclusive_maximum, "exclusiveMaximum.json")
SUITE(multiple_of, "multipleOf.json")
SUITE(min_length, "minLength.json")
SUITE(max_length, "maxLength.json")
SUITE(pattern, "pattern.json")
SUITE(items, "items.json")
SUITE(additional_items, "additionalItems.json")
SUITE(min_items, "minItems.json")
SUITE(max_items, "maxItems.json")
SUITE(unique_items, "uniqueItems.json")
SUITE(contains, "contains.json")
SUITE(one_of, "oneOf.json")
SUITE(any_of, "anyOf.json")
SUITE(all_of, "allOf.json")
SUITE(not_, "not.json")
SUITE(if_then_else, "if-then-else.json")
SUITE(ref, "ref.json")
SUITE(definitions, "definitions.json")
SUITE(boolean_schema, "boolean_schema.json")
SUITE(default_, "default.json")
SUITE(format_date, "optional/format/date.json")
SUITE(format_date_time, "optional/format/date-time.json")
SUITE(format_time, "optional/format/time.json")
SUITE(format_email, "optional/format/email.json")
SUITE(format_uri, "optional/format/uri.json")
SUITE(format_ipv4, "optional/format/ipv4.json")

/* ---- Our own cases ---------------------------------------------------- */

static ph__schema *compile_ok(const char *schema) {
  char *err = NULL;
  ph__schema *s = ph__schema_compile_text(schema, &err);
  cr_assert_not_null(s, "schema %s failed to compile: %s", schema, err);
  cr_assert_null(err);
  return s;
}

/* Validates instance against schema; returns the error text (malloc'd) or
 * NULL when valid. */
static char *check(const char *schema, const char *instance) {
  ph__schema *s = compile_ok(schema);
  cJSON *inst = cJSON_Parse(instance);
  char *err = NULL;
  int rc;

  cr_assert_not_null(inst, "bad test instance %s", instance);
  rc = ph__schema_validate(s, inst, &err);
  cr_assert_eq(rc != 0, err != NULL, "rc %d and err %s disagree", rc, err);
  cJSON_Delete(inst);
  ph__schema_free(s);
  return err;
}

static void expect_valid(const char *schema, const char *instance) {
  char *err = check(schema, instance);
  cr_expect_null(err, "%s against %s: unexpected error %s", instance, schema,
                 err);
  free(err);
}

/* Expects an error containing want (the whole text when exact). */
static void expect_error(const char *schema, const char *instance,
                         const char *want, int exact) {
  char *err = check(schema, instance);
  cr_expect_not_null(err, "%s against %s: expected invalid", instance, schema);
  if (err)
    cr_expect(exact ? strcmp(err, want) == 0 : strstr(err, want) != NULL,
              "%s against %s: error \"%s\", expected %s\"%s\"", instance,
              schema, err, exact ? "" : "it to contain ", want);
  free(err);
}

static void expect_compile_error(const char *schema, const char *want) {
  char *err = NULL;
  ph__schema *s = ph__schema_compile_text(schema, &err);
  cr_expect_null(s, "schema %s compiled, expected an error", schema);
  cr_expect(err && strstr(err, want),
            "schema %s: error \"%s\", expected "
            "it to contain \"%s\"",
            schema, err, want);
  ph__schema_free(s);
  free(err);
}

Test(schema, defs_and_definitions) {
  const char *schema =
      "{\"$defs\": {\"pos\": {\"type\": \"integer\", \"minimum\": 1}},"
      " \"definitions\": {\"name\": {\"type\": \"string\"}},"
      " \"properties\": {\"n\": {\"$ref\": \"#/$defs/pos\"},"
      "                  \"s\": {\"$ref\": \"#/definitions/name\"}}}";
  expect_valid(schema, "{\"n\": 3, \"s\": \"x\"}");
  expect_error(schema, "{\"n\": 0}", "/n: 0 is less than the minimum 1", 1);
  expect_error(schema, "{\"s\": 1}", "/s: expected type string, got integer",
               1);
  /* Percent-encoded and ~-escaped pointers into $defs. */
  expect_valid("{\"$defs\": {\"a b\": {\"const\": 1}, \"c/d\": {}},"
               " \"allOf\": [{\"$ref\": \"#/$defs/a%20b\"},"
               "             {\"$ref\": \"#/$defs/c~1d\"}]}",
               "1.0");
  /* A broken definition fails at load time even when unused. */
  expect_compile_error("{\"$defs\": {\"x\": {\"pattern\": \"(?=a)\"}}}",
                       "#/$defs/x/pattern: unsupported regex");
}

Test(schema, default_dialect_is_2020_12) {
  /* 2020-12 applies the siblings of "$ref"; draft-07 ignores them. */
  const char *body = "\"$defs\": {\"a\": {\"type\": \"array\"}},"
                     " \"$ref\": \"#/$defs/a\", \"maxItems\": 2}";
  char schema[256];

  snprintf(schema, sizeof schema, "{%s", body);
  expect_error(schema, "[1, 2, 3]", "/: expected at most 2 items, got 3", 1);
  snprintf(schema, sizeof schema,
           "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\","
           " %s",
           body);
  expect_error(schema, "[1, 2, 3]", "expected at most 2 items", 0);
  snprintf(schema, sizeof schema, "{\"$schema\": \"%s\", %s", DRAFT_07, body);
  expect_valid(schema, "[1, 2, 3]");
  /* 2020-12 tuples: prefixItems, then items for the rest. */
  expect_valid("{\"prefixItems\": [{\"type\": \"string\"}],"
               " \"items\": {\"type\": \"integer\"}}",
               "[\"a\", 1, 2]");
  expect_error("{\"prefixItems\": [{\"type\": \"string\"}],"
               " \"items\": false}",
               "[\"a\", 1]", "/: unexpected item at index 1", 1);
  expect_error("{\"dependentRequired\": {\"a\": [\"b\"]}}", "{\"a\": 1}",
               "/: property \"a\" requires property \"b\"", 1);
}

Test(schema, unsupported_dialect) {
  expect_compile_error(
      "{\"$schema\": \"http://json-schema.org/draft-04/schema#\"}",
      "#/$schema: unsupported dialect");
  expect_compile_error(
      "{\"$schema\": \"https://json-schema.org/draft/2019-09/schema\"}",
      "unsupported dialect");
  expect_compile_error("{\"$schema\": 7}", "unsupported dialect");
  expect_compile_error("{\"$schema\": \"https://example.com/my-dialect\"}",
                       "unsupported dialect");
}

Test(schema, refs_are_local_only) {
  expect_compile_error("{\"$ref\": \"https://example.com/s.json\"}",
                       "#/$ref: remote $ref is not allowed");
  expect_compile_error(
      "{\"properties\": {\"a\": {\"$ref\": \"other.json#/x\"}}}",
      "#/properties/a/$ref: remote $ref is not allowed");
  expect_compile_error("{\"$ref\": \"#anchor\"}", "unresolvable $ref");
  expect_compile_error("{\"$ref\": \"#/$defs/missing\"}",
                       "#/$ref: unresolvable $ref");
  expect_compile_error("{\"$ref\": \"#/a~2b\"}", "bad ~ escape");
  /* An error in a schema reached only through $ref names its pointer. */
  expect_compile_error("{\"$ref\": \"#/x\", \"x\": {\"minLength\": -1}}",
                       "#/x/minLength: expected a non-negative integer");
}

static char *nested_object(int depth) {
  size_t n = (size_t)depth * 6 + 8, len = 0;
  char *s = malloc(n);
  int i;

  cr_assert_not_null(s);
  for (i = 0; i < depth; i++)
    len += (size_t)sprintf(s + len, "{\"a\":");
  len += (size_t)sprintf(s + len, "1");
  for (i = 0; i < depth; i++)
    s[len++] = '}';
  s[len] = '\0';
  return s;
}

Test(schema, recursion_is_bounded) {
  const char *tree = "{\"properties\": {\"a\": {\"$ref\": \"#\"}}}";
  const char *negated = "{\"$defs\": {\"t\": {\"properties\":"
                        " {\"a\": {\"$ref\": \"#/$defs/t\"}}}},"
                        " \"not\": {\"$ref\": \"#/$defs/t\"}}";
  char *shallow = nested_object(10), *deep = nested_object(500);

  expect_valid(tree, shallow);
  expect_error(tree, deep, "schema too deep", 0);
  /* The bound is an error, not a verdict that "not" could turn around. */
  expect_error(negated, deep, "schema too deep", 0);
  expect_error("{\"$ref\": \"#\"}", "1", "/: schema too deep", 1);
  free(shallow);
  free(deep);
}

Test(schema, literal_nesting_is_bounded) {
  size_t len = 0, i;
  char *s = malloc(100 * 10 + 16);

  cr_assert_not_null(s);
  for (i = 0; i < 100; i++)
    len += (size_t)sprintf(s + len, "{\"not\":");
  s[len++] = '{';
  for (i = 0; i <= 100; i++)
    s[len++] = '}';
  s[len] = '\0';
  expect_compile_error(s, "schema too deep");
  free(s);
}

Test(schema, work_is_bounded) {
  /* Eight references per level: 8^18 evaluations unless the step budget
   * stops it. */
  char schema[512];
  char *instance = nested_object(18);
  const char *r = "{\"$ref\": \"#/$defs/t\"}";

  snprintf(schema, sizeof schema,
           "{\"$defs\": {\"t\": {\"properties\": {\"a\": {\"allOf\":"
           " [%s, %s, %s, %s, %s, %s, %s, %s]}}}}, \"$ref\": \"#/$defs/t\"}",
           r, r, r, r, r, r, r, r);
  expect_error(schema, instance, "schema evaluation too expensive", 0);
  free(instance);
}

Test(schema, string_length_counts_code_points) {
  const char *three = "{\"minLength\": 3, \"maxLength\": 3}";
  /* Three CJK characters, nine bytes. */
  expect_valid(three, "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"");
  expect_valid(three, "\"h\xc3\xa9h\"");
  expect_error(three, "\"ab\"", "/: string is shorter than 3 characters", 1);
  expect_error(three, "\"abcd\"", "/: string is longer than 3 characters", 1);
  /* A surrogate pair escape is one code point (U+1F600). */
  expect_valid("{\"maxLength\": 1}", "\"\\ud83d\\ude00\"");
  expect_error("{\"minLength\": 2}", "\"\\ud83d\\ude00\"", "shorter", 0);
}

Test(schema, error_paths) {
  expect_error("{\"type\": \"object\", \"properties\": {\"address\":"
               " {\"type\": \"object\", \"properties\":"
               " {\"zip\": {\"type\": \"string\"}}}}}",
               "{\"address\": {\"zip\": 12345}}",
               "/address/zip: expected type string, got integer", 1);
  expect_error("{\"required\": [\"name\"]}", "{}",
               "/: missing required property \"name\"", 1);
  expect_error("{\"properties\": {\"a/b\": {\"properties\":"
               " {\"c~d\": {\"type\": \"null\"}}}}}",
               "{\"a/b\": {\"c~d\": 1.5}}",
               "/a~1b/c~0d: expected type null, got number", 1);
  expect_error("{\"properties\": {\"tags\": {\"items\":"
               " {\"type\": \"string\"}}}}",
               "{\"tags\": [\"x\", \"y\", 3]}",
               "/tags/2: expected type string, got integer", 1);
  expect_error("{\"properties\": {\"a\": {}}, \"additionalProperties\":"
               " false}",
               "{\"a\": 1, \"x\": 2}", "/: unexpected property \"x\"", 1);
  expect_error("{\"type\": [\"integer\", \"string\"]}", "true",
               "/: expected type integer or string, got boolean", 1);
  expect_error("{\"enum\": [\"a\", \"b\"]}", "\"c\"",
               "/: value is not one of the enum values", 1);
  expect_error("{\"items\": {\"pattern\": \"^\\\\d+$\"}}", "[\"1\", \"x\"]",
               "/1: string does not match pattern \"^\\d+$\"", 1);
  expect_error("{\"uniqueItems\": true}", "[1, 2, 1.0]",
               "/: items 0 and 2 are equal, expected unique items", 1);
}

Test(schema, combinator_messages) {
  expect_error("{\"anyOf\": [{\"type\": \"integer\"},"
               " {\"type\": \"string\", \"minLength\": 2}]}",
               "\"a\"",
               "/: no schema in anyOf matched ([0] /: expected type "
               "integer, got string; [1] /: string is shorter than 2 "
               "characters)",
               1);
  expect_error("{\"properties\": {\"v\": {\"oneOf\": [{\"type\": \"integer\"},"
               " {\"minimum\": 0}]}}}",
               "{\"v\": 1}",
               "/v: value matches oneOf schemas [0] and [1], expected "
               "exactly one",
               1);
  expect_error("{\"oneOf\": [{\"type\": \"null\"}, {\"type\": \"array\"}]}",
               "{}",
               "/: no schema in oneOf matched ([0] /: expected type "
               "null, got object; [1] /: expected type array, got "
               "object)",
               1);
  expect_error("{\"not\": {\"type\": \"string\"}}", "\"x\"",
               "/: value must not match the \"not\" schema", 1);
  /* The summary stays short however many branches fail. */
  expect_error("{\"anyOf\": [false, false, false, false, false, false]}", "1",
               "[3] /: no value is allowed here (schema is false); ...)", 0);
}

Test(schema, deep_equality) {
  expect_valid("{\"const\": 1}", "1.0");
  expect_valid("{\"const\": {\"a\": [1, {\"b\": null}], \"c\": true}}",
               "{\"c\": true, \"a\": [1.0, {\"b\": null}]}");
  expect_error("{\"const\": {\"a\": 1}}", "{\"a\": 1, \"b\": 2}",
               "/: value does not equal the const value", 1);
  expect_valid("{\"enum\": [{\"a\": [1, 2]}]}", "{\"a\": [1.0, 2]}");
  expect_error("{\"uniqueItems\": true}",
               "[{\"a\": 1, \"b\": 2}, {\"b\": 2, \"a\": 1}]", "items 0 and 1",
               0);
  expect_valid("{\"uniqueItems\": true}", "[1, \"1\", true, [1], {\"1\": 1}]");
  expect_valid("{\"uniqueItems\": true}", "[0, -0.5, 0.5, [], {}, null]");
  expect_error("{\"uniqueItems\": true}", "[0, -0]", "items 0 and 1", 0);
}

Test(schema, unique_items_long_array) {
  size_t n = 5000, i, len = 0;
  char *text = malloc(n * 8 + 16);

  cr_assert_not_null(text);
  text[len++] = '[';
  for (i = 0; i < n; i++)
    len += (size_t)sprintf(text + len, "%s%zu", i ? "," : "", i);
  text[len++] = ']';
  text[len] = '\0';
  expect_valid("{\"uniqueItems\": true}", text);
  len -= 1;
  len += (size_t)sprintf(text + len, ",17]");
  expect_error("{\"uniqueItems\": true}", text, "items 17 and 5000 are equal",
               0);
  free(text);
}

/* Shared by the two locale variants below: regcomp() reads patterns by the
 * process locale, so the translation differs between them. */
static void check_patterns(void) {
  expect_valid("{\"pattern\": \"^\\\\d{3}-\\\\w+$\"}", "\"123-ab_c\"");
  expect_error("{\"pattern\": \"^\\\\d{3}-\\\\w+$\"}", "\"12-abc\"",
               "does not match", 0);
  expect_valid("{\"pattern\": \"^(?:ab)+$\"}", "\"abab\"");
  expect_valid("{\"pattern\": \"^a+?b??c*?$\"}", "\"aab\"");
  expect_valid("{\"pattern\": \"^\\\\S+\\\\s\\\\S+$\"}", "\"a\\tb\"");
  expect_valid("{\"pattern\": \"^[\\\\w.+-]+@[^\\\\s@]+$\"}",
               "\"a.b+c-d@x.y\"");
  expect_error("{\"pattern\": \"^[^\\\\d]+$\"}", "\"ab1\"", "does not match",
               0);
  expect_valid("{\"pattern\": \"^\\\\$\\\\.\\\\*\\\\[\\\\]\\\\\\\\$\"}",
               "\"$.*[]\\\\\"");
  expect_valid("{\"pattern\": \"^[\\\\]\\\\[^-]+$\"}", "\"][^-\"");
  expect_valid("{\"pattern\": \"^[\\\\^]$\"}", "\"^\"");
  expect_valid("{\"pattern\": \"^a{2}$\"}", "\"aa\"");
  expect_valid("{\"pattern\": \"^x{y}$\"}", "\"x{y}\"");
  expect_valid("{\"pattern\": \"^\\\\u0041\\\\x42$\"}", "\"AB\"");
  /* A multi-byte character is one character for a quantifier. */
  expect_valid("{\"pattern\": \"^\xc3\xa9+$\"}", "\"\xc3\xa9\xc3\xa9\"");
  /* '.', \\D and negated classes match a whole non-ASCII character. */
  expect_valid("{\"pattern\": \"^.{3}$\"}",
               "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"");
  expect_valid("{\"pattern\": \"^[^a]\\\\D\\\\W\\\\S$\"}",
               "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"");
  expect_error("{\"pattern\": \"^[^a]$\"}", "\"\xc3\xa9x\"", "does not match",
               0);
  expect_valid("{\"pattern\": \"^[^]{2}$\"}", "\"\xc3\xa9\\n\"");
  expect_valid("{\"pattern\": \"^[-^]+$\"}", "\"-^\"");
  expect_error("{\"pattern\": \"^[-^]+$\"}", "\"a\"", "does not match", 0);
  expect_valid("{\"pattern\": \"^[^-^]$\"}", "\"a\"");
  expect_compile_error("{\"pattern\": \"[]\"}", "empty character class");
  /* ECMA '.' does not match a line terminator. */
  expect_error("{\"pattern\": \"^a.b$\"}", "\"a\\nb\"", "does not match", 0);
  expect_valid("{\"patternProperties\": {\"^x-\\\\d+$\": {\"type\": "
               "\"integer\"}}, \"additionalProperties\": false}",
               "{\"x-1\": 1, \"x-22\": 2}");
  /* What POSIX cannot express is refused at compile time, not a crash. */
  expect_compile_error("{\"pattern\": \"a(?=b)\"}",
                       "#/pattern: unsupported regex \"a(?=b)\": lookaround");
  expect_compile_error("{\"pattern\": \"(a)\\\\1\"}", "backreferences");
  expect_compile_error("{\"pattern\": \"\\\\bword\"}", "word boundaries");
  expect_compile_error("{\"pattern\": \"[z-a]\"}", "out of order");
  expect_compile_error("{\"pattern\": \"[abc\"}", "unterminated");
  expect_compile_error("{\"pattern\": \"abc\\\\\"}", "trailing backslash");
  expect_compile_error("{\"pattern\": \"[a\\\\\"}", "trailing backslash");
  expect_compile_error("{\"pattern\": \"(ab\"}", "unsupported regex");
  expect_compile_error("{\"patternProperties\": {\"(?<n>x)\": {}}}",
                       "#/patternProperties/(?<n>x): unsupported regex");
}

Test(schema, patterns) {
  check_patterns();
}

Test(schema, patterns_in_utf8_locale) {
  cr_assert_not_null(setlocale(LC_CTYPE, "C.UTF-8"));
  check_patterns();
}

Test(schema, formats) {
  const char *uuid = "{\"format\": \"uuid\"}";
  expect_valid(uuid, "\"123e4567-e89b-12d3-a456-426614174000\"");
  expect_error(uuid, "\"123e4567e89b12d3a456426614174000\"",
               "/: string is not a valid uuid", 1);
  expect_error(uuid, "\"123e4567-e89b-12d3-a456-42661417400g\"", "uuid", 0);
  expect_valid("{\"format\": \"date\"}", "\"2024-02-29\"");
  expect_error("{\"format\": \"date\"}", "\"2023-02-29\"", "valid date", 0);
  expect_valid("{\"format\": \"date-time\"}", "\"1998-12-31T23:59:60Z\"");
  expect_error("{\"format\": \"date-time\"}", "\"1998-12-31T22:59:60Z\"",
               "valid date-time", 0);
  expect_valid("{\"format\": \"email\"}", "\"first.last+tag@example.co\"");
  expect_error("{\"format\": \"email\"}", "\"a..b@example.com\"", "email", 0);
  expect_valid("{\"format\": \"uri\"}", "\"https://example.com:8443/a?b#c\"");
  expect_error("{\"format\": \"uri\"}", "\"https://example.com:port/\"", "uri",
               0);
  /* Unknown formats are annotations; formats only constrain strings. */
  expect_valid("{\"format\": \"no-such-format\"}", "\"anything\"");
  expect_valid("{\"format\": \"uuid\"}", "42");
}

Test(schema, keyword_values_are_checked) {
  expect_compile_error("{\"minLength\": -1}",
                       "#/minLength: expected a non-negative integer");
  expect_compile_error("{\"type\": \"strin\"}", "#/type: unknown type name");
  expect_compile_error("{\"properties\": {\"a\": 3}}",
                       "#/properties/a: a schema must be an object or a "
                       "boolean");
  expect_compile_error("{\"required\": [1]}", "#/required: expected");
  expect_compile_error("{\"multipleOf\": 0}", "#/multipleOf: expected a "
                                              "positive number");
  expect_compile_error("{\"unevaluatedProperties\": false}",
                       "#/unevaluatedProperties: unsupported keyword");
  expect_compile_error("{\"items\": [{}, 7]}", "#/items/1: a schema must be");
  expect_compile_error("{\"anyOf\": []}", "#/anyOf: expected a non-empty");
  expect_compile_error("[1, 2", "#: invalid JSON");
  expect_compile_error("42", "#: a schema must be an object or a boolean");
}

Test(schema, null_arguments) {
  ph__schema *s = compile_ok("{\"type\": \"string\"}");
  cJSON *num = cJSON_CreateNumber(1);
  char *err = NULL;

  /* Without an error pointer validation still answers. */
  cr_expect_neq(ph__schema_validate(s, num, NULL), 0);
  cr_expect_neq(ph__schema_validate(s, NULL, &err), 0);
  cr_expect_not_null(err);
  free(err);
  cr_expect_null(ph__schema_compile(NULL, &err));
  cr_expect_not_null(err);
  free(err);
  cr_expect_null(ph__schema_compile_text("{", NULL));
  ph__schema_free(NULL);
  cJSON_Delete(num);
  ph__schema_free(s);
}

struct shared_check {
  const ph__schema *schema;
  const cJSON *good, *bad;
  int wrong;
};

static void *validate_many(void *arg) {
  struct shared_check *c = arg;
  int i;

  for (i = 0; i < 2000; i++) {
    char *err = NULL;
    if (ph__schema_validate(c->schema, c->good, NULL) != 0)
      c->wrong++;
    if (ph__schema_validate(c->schema, c->bad, &err) == 0 ||
        strcmp(err, "/id: string does not match pattern \"^[a-z]+-\\d+$\""))
      c->wrong++;
    free(err);
  }
  return NULL;
}

Test(schema, shared_between_threads) {
  ph__schema *s =
      compile_ok("{\"type\": \"object\", \"required\": [\"id\"],"
                 " \"properties\": {\"id\": {\"type\": \"string\","
                 " \"pattern\": \"^[a-z]+-\\\\d+$\"},"
                 " \"tags\": {\"type\": \"array\", \"uniqueItems\": true}}}");
  cJSON *good = cJSON_Parse("{\"id\": \"ab-12\", \"tags\": [\"x\", \"y\"]}");
  cJSON *bad = cJSON_Parse("{\"id\": \"AB-12\"}");
  struct shared_check checks[4];
  pthread_t threads[4];
  int i;

  for (i = 0; i < 4; i++) {
    checks[i] = (struct shared_check){s, good, bad, 0};
    cr_assert_eq(pthread_create(&threads[i], NULL, validate_many, &checks[i]),
                 0);
  }
  for (i = 0; i < 4; i++) {
    pthread_join(threads[i], NULL);
    cr_expect_eq(checks[i].wrong, 0, "thread %d: %d wrong verdicts", i,
                 checks[i].wrong);
  }
  cJSON_Delete(good);
  cJSON_Delete(bad);
  ph__schema_free(s);
}
