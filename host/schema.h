/* schema.h: the host's JSON Schema validator.
 *
 * The host checks tool arguments against a tool's inputSchema before the
 * plugin runs, and tests check structured results against outputSchema. A
 * schema is compiled once (when the plugin loads) and then used read-only,
 * from any number of threads at once.
 *
 * Dialects: draft-07 and 2020-12. A schema without "$schema" is 2020-12, as
 * MCP 2025-11-25 specifies; any other "$schema" is refused at compile time.
 * The dialect matters for "$ref" (draft-07 ignores its sibling keywords,
 * 2020-12 applies them) and for tuple validation ("items" as an array and
 * "additionalItems" in draft-07, "prefixItems" and "items" in 2020-12; the
 * draft-07 spelling is also accepted in 2020-12 for old schemas).
 *
 * References: only local ones ("#", "#/$defs/x", "#/definitions/x", any JSON
 * pointer into the document, with ~0 ~1 and percent escapes). Anything else
 * is a compile error: the validator never fetches, and never resolves "$id".
 *
 * Keywords: type, enum, const, the numeric bounds and multipleOf, minLength
 * and maxLength (in code points), pattern, format (date, date-time, time,
 * email, uri, uuid, ipv4; other formats are annotations), properties,
 * patternProperties, additionalProperties, required, min/maxProperties,
 * propertyNames, dependentRequired, dependentSchemas, dependencies, items,
 * prefixItems, additionalItems, min/maxItems, uniqueItems, contains with
 * min/maxContains, allOf, anyOf, oneOf, not, if/then/else, boolean schemas.
 * Keywords that would need annotation tracking (unevaluatedProperties,
 * unevaluatedItems) or dynamic scopes ($dynamicRef, $recursiveRef) are a
 * compile error rather than silently ignored. Unknown keywords are ignored.
 *
 * Patterns are ECMA-262 regular expressions translated to POSIX extended
 * ones: \d \w \s (and negations), the usual escapes, (?:...), and lazy
 * quantifiers are understood; '.', negated classes and a quantified
 * non-ASCII character each match one code point. Lookaround, backreferences,
 * word boundaries and non-ASCII characters inside [...] are a compile error.
 *
 * Cost: one validation evaluates at most PH__SCHEMA_MAX_DEPTH nested schemas
 * and at most PH__SCHEMA_MAX_STEPS schemas in all, so a recursive "$ref" or a
 * combinatorial schema cannot exhaust the stack or the CPU; exceeding either
 * makes the instance invalid ("schema too deep", "schema evaluation too
 * expensive"). Literal schema nesting beyond the same depth fails to compile.
 */
#ifndef PH_SCHEMA_H
#define PH_SCHEMA_H

#include <cJSON.h>

/* Nested schema evaluations allowed in one validation (and schema nesting
 * allowed at compile time). */
#define PH__SCHEMA_MAX_DEPTH 64
/* Schema evaluations allowed in one validation, all branches counted. */
#define PH__SCHEMA_MAX_STEPS 2000000

/* A compiled schema: immutable, safe to validate with from many threads. */
typedef struct ph__schema ph__schema;

/* Compiles a schema. Borrows schema (deep-copies what it keeps). Returns the
 * compiled schema, owned by the caller (ph__schema_free), or NULL and, when
 * err is not NULL, a malloc'd message in *err naming the schema location,
 * e.g. "#/properties/a/pattern: unsupported regex: lookaround". */
ph__schema *ph__schema_compile(const cJSON *schema, char **err);

/* As ph__schema_compile, from JSON text (NUL-terminated). */
ph__schema *ph__schema_compile_text(const char *json_text, char **err);

/* Validates instance (borrowed) against s (borrowed). Returns 0 when valid;
 * otherwise -1 and, when err is not NULL, a malloc'd message in *err:
 * "<JSON pointer of the instance location>: <reason>", the root being "/",
 * e.g. "/address/zip: expected type string, got integer". */
int ph__schema_validate(const ph__schema *s, const cJSON *instance, char **err);

/* Frees a compiled schema; NULL is a no-op. */
void ph__schema_free(ph__schema *s);

#endif /* PH_SCHEMA_H */
