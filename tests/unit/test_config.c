/* test_config.c: config parsing (strict keys, defaults, bounds, the prefix
 * and name rules) and the glob matcher used by allow/deny. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "plughost.h"
#include "unit_fixture.h"

static ph__config *parse(const char *text, char **err) {
  char *json = unit_dq(text);
  ph__config *cfg = ph__config_parse(json, "test.json", err);

  free(json);
  return cfg;
}

static ph__config *parse_ok(const char *text) {
  char *err = NULL;
  ph__config *cfg = parse(text, &err);

  cr_assert_not_null(cfg, "refused: %s", err ? err : "(no message)");
  cr_assert_null(err);
  return cfg;
}

/* Parses text expecting a refusal whose message contains every needle
 * (NULL-terminated) and the file name. */
static void parse_fails(const char *text, const char *const *needles) {
  char *err = NULL;
  ph__config *cfg = parse(text, &err);

  if (cfg != NULL) {
    ph__config_free(cfg);
    cr_assert_fail("accepted: %s", text);
  }
  cr_assert_not_null(err, "no message for: %s", text);
  cr_expect_not_null(strstr(err, "test.json"), "no file name in: %s", err);
  for (; *needles != NULL; needles++)
    cr_expect_not_null(strstr(err, *needles), "\"%s\" not in: %s", *needles,
                       err);
  free(err);
}

#define FAILS(text, ...)                                                       \
  parse_fails(text, (const char *const[]){__VA_ARGS__, NULL})

TestSuite(config);

/* ---- defaults ---- */

Test(config, empty_object_gets_the_defaults) {
  ph__config *cfg = parse_ok("{}");
  const ph__department_cfg *d;

  cr_expect_str_eq(cfg->plugin_dir, "build/plugins");
  cr_expect_str_eq(cfg->separator, "_");
  cr_expect_str_eq(cfg->listen, "127.0.0.1:8080");
  cr_expect_null(cfg->cache_dir);
  cr_expect_null(cfg->hmac_key);
  cr_expect_eq(cfg->page_size, 100);
  cr_expect_eq(cfg->log_level, PH_LOG_INFO);
  cr_expect_eq(cfg->limits.max_message_bytes, 4u << 20);
  cr_expect_eq(cfg->limits.max_json_depth, 64);
  cr_expect_eq(cfg->limits.max_batch_members, 100);
  cr_expect_eq(cfg->limits.max_json_values, 100000);
  cr_expect_eq(cfg->limits.call_timeout_ms, 60000);
  cr_expect_eq(cfg->limits.workers_per_plugin, 4);
  cr_expect_eq(cfg->limits.shutdown_timeout_ms, 10000);
  cr_expect_eq(cfg->limits.max_sessions, 10000);
  cr_expect_not_null(cfg->allowed_origins);
  cr_expect_null(cfg->allowed_origins[0]);
  /* Every config has a default department serving every plugin. */
  cr_expect_eq(cfg->ndepartments, 1);
  d = ph__config_department(cfg, "default");
  cr_assert_not_null(d);
  cr_expect(d->all_plugins);
  cr_expect_eq(d->ninstances, 0);
  cr_assert_not_null(d->allow);
  cr_expect_str_eq(d->allow[0], "*");
  cr_expect_null(d->allow[1]);
  cr_assert_not_null(d->deny);
  cr_expect_null(d->deny[0]);
  cr_expect_null(ph__config_department(cfg, "sales"));
  ph__config_free(cfg);
}

Test(config, instance_defaults) {
  ph__config *cfg = parse_ok("{'departments':{'default':{'plugins':["
                             "{'plugin':'ok'},"
                             "{'plugin':'db','prefix':'crm','workers':3,"
                             "'config':{'url':'x','n':[1,2]}}]}}}");
  const ph__department_cfg *d = ph__config_department(cfg, "default");

  cr_assert_not_null(d);
  cr_expect(!d->all_plugins);
  cr_assert_eq(d->ninstances, 2);
  cr_expect_str_eq(d->instances[0].plugin, "ok");
  cr_expect_str_eq(d->instances[0].prefix, "ok");
  cr_expect_str_eq(d->instances[0].config_json, "{}");
  cr_expect_eq(d->instances[0].workers, 0);
  cr_expect_str_eq(d->instances[1].prefix, "crm");
  cr_expect_eq(d->instances[1].workers, 3);
  cr_expect_str_eq(d->instances[1].config_json, "{\"url\":\"x\",\"n\":[1,2]}");
  ph__config_free(cfg);
}

Test(config, every_key_is_read) {
  ph__config *cfg = parse_ok(
      "{'plugin_dir':'p','cache_dir':'c','listen':'0.0.0.0:1','separator':"
      "'__','log_level':'warning','page_size':7,'hmac_key':'k',"
      "'allowed_origins':['http://a'],'allowed_hosts':['h1','h2'],"
      "'limits':{'max_message_bytes':2048,'max_json_depth':10,"
      "'call_timeout_ms':5,'workers_per_plugin':2,'queue_per_plugin':3,"
      "'max_inflight_per_session':4,'shutdown_timeout_ms':0,"
      "'drain_timeout_ms':6,'max_sessions':8,'session_idle_ms':1000,"
      "'max_header_bytes':1024,'max_connections':9,'header_timeout_ms':100,"
      "'idle_timeout_ms':200,'max_batch_members':12},"
      "'departments':{'sales':{'plugins':[],'allow':['s_*'],"
      "'deny':['s_x','s_y']}}}");
  const ph__department_cfg *d = ph__config_department(cfg, "sales");

  cr_expect_str_eq(cfg->plugin_dir, "p");
  cr_expect_str_eq(cfg->cache_dir, "c");
  cr_expect_str_eq(cfg->listen, "0.0.0.0:1");
  cr_expect_str_eq(cfg->separator, "__");
  cr_expect_eq(cfg->log_level, PH_LOG_WARNING);
  cr_expect_eq(cfg->page_size, 7);
  cr_expect_str_eq(cfg->hmac_key, "k");
  cr_expect_str_eq(cfg->allowed_origins[0], "http://a");
  cr_expect_str_eq(cfg->allowed_hosts[1], "h2");
  cr_expect_null(cfg->allowed_hosts[2]);
  cr_expect_eq(cfg->limits.max_message_bytes, 2048);
  cr_expect_eq(cfg->limits.max_json_depth, 10);
  cr_expect_eq(cfg->limits.call_timeout_ms, 5);
  cr_expect_eq(cfg->limits.workers_per_plugin, 2);
  cr_expect_eq(cfg->limits.queue_per_plugin, 3);
  cr_expect_eq(cfg->limits.max_inflight_per_session, 4);
  cr_expect_eq(cfg->limits.shutdown_timeout_ms, 0);
  cr_expect_eq(cfg->limits.drain_timeout_ms, 6);
  cr_expect_eq(cfg->limits.max_sessions, 8);
  cr_expect_eq(cfg->limits.session_idle_ms, 1000);
  cr_expect_eq(cfg->limits.max_header_bytes, 1024);
  cr_expect_eq(cfg->limits.max_connections, 9);
  cr_expect_eq(cfg->limits.header_timeout_ms, 100);
  cr_expect_eq(cfg->limits.idle_timeout_ms, 200);
  cr_expect_eq(cfg->limits.max_batch_members, 12);
  cr_assert_not_null(d);
  cr_expect(!d->all_plugins);
  cr_expect_eq(d->ninstances, 0);
  cr_expect_str_eq(d->allow[0], "s_*");
  cr_expect_str_eq(d->deny[1], "s_y");
  cr_expect_null(d->deny[2]);
  /* sales is not default: a default department is still added. */
  cr_expect_eq(cfg->ndepartments, 2);
  cr_expect_not_null(ph__config_department(cfg, "default"));
  ph__config_free(cfg);
}

Test(config, every_log_level_name_parses) {
  static const char *const names[] = {"debug",   "info",     "notice",
                                      "warning", "error",    "critical",
                                      "alert",   "emergency"};
  char text[64];
  int i;

  for (i = 0; i < 8; i++) {
    ph__config *cfg;

    snprintf(text, sizeof(text), "{'log_level':'%s'}", names[i]);
    cfg = parse_ok(text);
    cr_expect_eq(cfg->log_level, i, "%s", names[i]);
    ph__config_free(cfg);
  }
  FAILS("{'log_level':'verbose'}", "log_level", "verbose");
  FAILS("{'log_level':'INFO'}", "log_level");
}

/* ---- strict keys ---- */

Test(config, unknown_keys_are_errors_naming_the_key) {
  FAILS("{'plugin_dri':'x'}", "\"plugin_dri\"", "top level");
  FAILS("{'limits':{'max_mesage_bytes':4096}}", "\"max_mesage_bytes\"",
        "limits");
  FAILS("{'departments':{'default':{'plugin':[]}}}", "\"plugin\"",
        "department");
  FAILS("{'departments':{'default':{'plugins':[{'plugin':'ok','prefx':'a'}]}}"
        "}",
        "\"prefx\"", "instance");
  FAILS("{'departments':{'default':{'plugins':[{'plugin':'ok','Prefix':'a'}]}}"
        "}",
        "\"Prefix\"");
}

Test(config, wrong_types_are_errors) {
  FAILS("{'plugin_dir':5}", "plugin_dir");
  FAILS("{'separator':['_']}", "separator");
  FAILS("{'page_size':'10'}", "page_size");
  FAILS("{'page_size':2.5}", "page_size", "integer");
  FAILS("{'limits':[]}", "limits");
  FAILS("{'limits':{'call_timeout_ms':true}}", "call_timeout_ms");
  FAILS("{'limits':{'max_batch_members':'8'}}", "max_batch_members");
  FAILS("{'limits':{'max_batch_members':8.5}}", "max_batch_members", "integer");
  FAILS("{'allowed_origins':'http://a'}", "allowed_origins");
  FAILS("{'allowed_hosts':['a',1]}", "allowed_hosts");
  FAILS("{'departments':[]}", "departments");
  FAILS("{'departments':{'default':[]}}", "department");
  FAILS("{'departments':{'default':{'plugins':{}}}}", "plugins");
  FAILS("{'departments':{'default':{'plugins':['ok']}}}", "instance");
  FAILS("{'departments':{'default':{'allow':'*'}}}", "allow");
  FAILS("{'departments':{'default':{'deny':[null]}}}", "deny");
  FAILS("{'departments':{'default':{'plugins':[{'plugin':'ok','config':[]}]}}"
        "}",
        "config");
  FAILS("{'departments':{'default':{'plugins':[{'plugin':'ok','config':'x'}]}"
        "}}",
        "config");
  FAILS("{'departments':{'default':{'plugins':[{'plugin':7}]}}}", "plugin");
  FAILS("{'departments':{'default':{'plugins':[{'prefix':'a'}]}}}", "plugin");
}

Test(config, bounds_are_checked) {
  FAILS("{'page_size':0}", "page_size", "between");
  FAILS("{'page_size':10001}", "page_size");
  FAILS("{'page_size':-1}", "page_size");
  FAILS("{'limits':{'max_message_bytes':1023}}", "max_message_bytes");
  FAILS("{'limits':{'max_json_depth':3}}", "max_json_depth");
  FAILS("{'limits':{'max_batch_members':0}}", "max_batch_members", "between");
  FAILS("{'limits':{'max_json_values':15}}", "max_json_values", "between");
  FAILS("{'limits':{'max_batch_members':10001}}", "max_batch_members");
  FAILS("{'limits':{'max_batch_members':-1}}", "max_batch_members");
  FAILS("{'limits':{'call_timeout_ms':0}}", "call_timeout_ms");
  FAILS("{'limits':{'workers_per_plugin':257}}", "workers_per_plugin");
  FAILS("{'departments':{'default':{'plugins':[{'plugin':'ok','workers':0}]}}"
        "}",
        "workers");
}

Test(config, not_json_is_an_error) {
  FAILS("{", "not valid JSON");
  FAILS("", "not valid JSON");
  FAILS("[]", "top level");
  FAILS("'x'", "top level");
}

Test(config, load_reads_a_file_and_names_it) {
  char path[] = "/tmp/ph-config-XXXXXX";
  char *err = NULL, *json = unit_dq("{'page_size':3}");
  ph__config *cfg;
  int fd = mkstemp(path);

  cr_assert(fd >= 0);
  cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
  close(fd);
  free(json);
  cfg = ph__config_load(path, &err);
  cr_assert_not_null(cfg, "%s", err);
  cr_expect_eq(cfg->page_size, 3);
  cr_expect_str_eq(cfg->path, path);
  ph__config_free(cfg);
  unlink(path);

  cfg = ph__config_load(path, &err);
  cr_expect_null(cfg);
  cr_assert_not_null(err);
  cr_expect_not_null(strstr(err, path), "%s", err);
  free(err);
}

/* ---- prefixes, names, departments, separators ---- */

Test(config, prefix_rule) {
  static const char *const good[] = {
      "", "a", "db", "a-b", "x9", "abcdefghijklmnop", "a-"};
  static const char *const bad[] = {
      "A", "9a", "-a", "a_b", "a.b", "a b", "abcdefghijklmnopq", "é", "aB"};
  size_t i;

  for (i = 0; i < sizeof(good) / sizeof(*good); i++)
    cr_expect(ph__valid_prefix(good[i]), "\"%s\" refused", good[i]);
  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
    cr_expect(!ph__valid_prefix(bad[i]), "\"%s\" accepted", bad[i]);
}

Test(config, name_rule) {
  char max[66];
  static const char *const bad[] = {"",    "a b", "a.b", "a/b",
                                    "a:b", "é",   "a\tb"};
  size_t i;

  cr_expect(ph__valid_name("a"));
  cr_expect(ph__valid_name("A-z_0-9"));
  cr_expect(ph__valid_name("_"));
  memset(max, 'x', 64);
  max[64] = '\0';
  cr_expect(ph__valid_name(max));
  max[64] = 'x';
  max[65] = '\0';
  cr_expect(!ph__valid_name(max), "65 characters accepted");
  for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
    cr_expect(!ph__valid_name(bad[i]), "\"%s\" accepted", bad[i]);
}

Test(config, instance_prefix_is_checked) {
  ph__config *cfg;
  const ph__department_cfg *d;

  FAILS("{'departments':{'default':{'plugins':[{'plugin':'ok','prefix':"
        "'Bad'}]}}}",
        "\"Bad\"", "prefix");
  FAILS("{'departments':{'default':{'plugins':[{'plugin':'ok','prefix':"
        "'a_b'}]}}}",
        "\"a_b\"");
  FAILS("{'departments':{'default':{'plugins':[{'plugin':'ok','prefix':"
        "'abcdefghijklmnopq'}]}}}",
        "prefix");
  /* A plugin name that is no valid prefix needs an explicit one. */
  FAILS("{'departments':{'default':{'plugins':[{'plugin':'My_Plugin'}]}}}",
        "My_Plugin");
  cfg = parse_ok("{'departments':{'default':{'plugins':[{'plugin':"
                 "'My_Plugin','prefix':''}]}}}");
  d = ph__config_department(cfg, "default");
  cr_expect_str_eq(d->instances[0].prefix, "");
  ph__config_free(cfg);
}

Test(config, department_names_follow_the_prefix_rule) {
  ph__config *cfg;

  FAILS("{'departments':{'Sales':{}}}", "\"Sales\"");
  FAILS("{'departments':{'':{}}}", "department name");
  FAILS("{'departments':{'a_b':{}}}", "\"a_b\"");
  cfg = parse_ok("{'departments':{'sales-eu':{},'default':{}}}");
  cr_expect_eq(cfg->ndepartments, 2);
  cr_expect_not_null(ph__config_department(cfg, "sales-eu"));
  cr_expect(ph__config_department(cfg, "sales-eu")->all_plugins);
  ph__config_free(cfg);
}

Test(config, separator_rule) {
  ph__config *cfg;

  cfg = parse_ok("{'separator':''}");
  cr_expect_str_eq(cfg->separator, "");
  ph__config_free(cfg);
  cfg = parse_ok("{'separator':'-'}");
  cr_expect_str_eq(cfg->separator, "-");
  ph__config_free(cfg);
  FAILS("{'separator':'.'}", "separator");
  FAILS("{'separator':'/'}", "separator");
  FAILS("{'separator':'_____'}", "separator");
}

/* ---- globs ---- */

Test(config, glob_matching) {
  static const struct {
    const char *pattern, *text;
    int match;
  } cases[] = {
      {"*", "", 1},
      {"*", "anything", 1},
      {"", "", 1},
      {"", "a", 0},
      {"ok_*", "ok_echo", 1},
      {"ok_*", "ok_", 1},
      {"ok_*", "ok", 0},
      {"ok_*", "xok_echo", 0},
      {"*_echo", "ok_echo", 1},
      {"*_echo", "ok_echo2", 0},
      {"?k_echo", "ok_echo", 1},
      {"?k_echo", "k_echo", 0},
      {"ok_???", "ok_add", 1},
      {"ok_???", "ok_echo", 0},
      {"*o*o*", "foo", 1},
      {"*o*o*", "fo", 0},
      {"a*b*c", "abc", 1},
      {"a*b*c", "aXbYbZc", 1},
      {"a*b*c", "aXbYc_", 0},
      {"**", "x", 1},
      {"ok://*", "ok://items/42", 1},
      {"ok_echo", "ok_echo", 1},
      {"ok_echo", "OK_ECHO", 0},
      {"ok_echo", "ok_echoes", 0},
      {"*a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", 0},
      {"*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", 1},
  };
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(*cases); i++)
    cr_expect_eq(ph__glob_match(cases[i].pattern, cases[i].text),
                 cases[i].match, "glob \"%s\" on \"%s\"", cases[i].pattern,
                 cases[i].text);
}

Test(config, duplicate_keys_are_errors) {
  /* A department pasted twice must not silently drop one of the two. */
  FAILS("{'departments':{'sales':{'plugins':[{'plugin':'a'}]},"
        "'sales':{'plugins':[{'plugin':'b'}]}}}",
        "\"sales\"");
  FAILS("{'page_size':2,'page_size':3}", "\"page_size\"");
}

Test(config, per_client_session_limits) {
  ph__config *cfg = parse_ok("{}");

  cr_expect_eq(cfg->limits.max_sessions_per_client, 1000);
  cr_expect_eq(cfg->limits.session_rate_per_client, 10);
  cr_expect_eq(cfg->limits.session_burst_per_client, 100);
  ph__config_free(cfg);
  cfg = parse_ok("{'limits':{'max_sessions_per_client':3,"
                 "'session_rate_per_client':1,"
                 "'session_burst_per_client':10000000}}");
  cr_expect_eq(cfg->limits.max_sessions_per_client, 3);
  cr_expect_eq(cfg->limits.session_rate_per_client, 1);
  cr_expect_eq(cfg->limits.session_burst_per_client, 10000000);
  ph__config_free(cfg);
  FAILS("{'limits':{'max_sessions_per_client':0}}", "max_sessions_per_client",
        "between");
  FAILS("{'limits':{'max_sessions_per_client':10000001}}",
        "max_sessions_per_client");
  FAILS("{'limits':{'session_rate_per_client':0}}", "session_rate_per_client");
  FAILS("{'limits':{'session_rate_per_client':1000001}}",
        "session_rate_per_client");
  FAILS("{'limits':{'session_rate_per_client':1.5}}", "session_rate_per_client",
        "integer");
  FAILS("{'limits':{'session_burst_per_client':0}}",
        "session_burst_per_client");
  FAILS("{'limits':{'session_burst_per_client':'5'}}",
        "session_burst_per_client");
  FAILS("{'limits':{'sessions_per_client':5}}", "\"sessions_per_client\"");
}

/* The same checks in every build: the key alone chooses, strictly. */
Test(config, check_results_is_strict) {
  ph__config *cfg = parse_ok("{}");

  cr_expect_eq(cfg->check_results, PH__CHECK_STRUCTURAL);
  ph__config_free(cfg);
  cfg = parse_ok("{'check_results':'full'}");
  cr_expect_eq(cfg->check_results, PH__CHECK_FULL);
  ph__config_free(cfg);
  FAILS("{'check_results':'Full'}", "check_results", "structural");
  FAILS("{'check_results':true}", "check_results", "string");
}

/* ---- authorization (README: Authorization) ---- */

Test(config, auth_defaults_to_none_and_unaudited) {
  ph__config *cfg = parse_ok("{'departments':{'sales':{}}}");
  const ph__department_cfg *d = ph__config_department(cfg, "sales");

  cr_expect_eq(d->auth.mode, PH__AUTH_NONE);
  cr_expect_null(d->auth.public_url);
  cr_expect_null(d->auth.issuers);
  cr_expect_null(d->auth.scopes_supported[0]);
  cr_expect_null(d->auth.authorization_servers[0]);
  cr_expect_eq(d->auth.list_unauthorized_tools, 0);
  cr_expect_eq(d->auth.audit, 0);
  cr_expect_eq(ph__config_department(cfg, "default")->auth.mode, PH__AUTH_NONE);
  cr_expect_null(cfg->audit_log);
  ph__config_free(cfg);
}

Test(config, auth_keys_are_read) {
  ph__config *cfg = parse_ok(
      "{'audit_log':'/var/log/plughost-audit.jsonl','departments':{'sales':{"
      "'auth':'required','public_url':'https://mcp.example.com/mcp/sales',"
      "'issuers':['urn:plughost:auth','https://idp.example.com'],"
      "'scopes_supported':['read:sales','write:sales'],"
      "'tool_scopes':{'db_query':'read:sales','auth_login':null},"
      "'list_unauthorized_tools':true}}}");
  const ph__department_cfg *d = ph__config_department(cfg, "sales");

  cr_expect_str_eq(cfg->audit_log, "/var/log/plughost-audit.jsonl");
  cr_expect_eq(d->auth.mode, PH__AUTH_REQUIRED);
  cr_expect_str_eq(d->auth.public_url, "https://mcp.example.com/mcp/sales");
  cr_expect_str_eq(d->auth.issuers[1], "https://idp.example.com");
  cr_expect_null(d->auth.issuers[2]);
  /* Without authorization_servers, the PRM names the issuers. */
  cr_expect_str_eq(d->auth.authorization_servers[0], "urn:plughost:auth");
  cr_expect_str_eq(d->auth.scopes_supported[1], "write:sales");
  cr_expect_eq(d->auth.list_unauthorized_tools, 1);
  cr_expect_eq(d->auth.audit, 1);
  cr_expect_str_eq(ph__config_tool_scope(d, "db_query", NULL), "read:sales");
  cr_expect_null(ph__config_tool_scope(d, "auth_login", "auth:admin"));
  cr_expect_str_eq(ph__config_tool_scope(d, "auth_whoami", "x:y"), "x:y");
  cr_expect_null(ph__config_tool_scope(d, "other", NULL));
  ph__config_free(cfg);

  cfg = parse_ok("{'departments':{'default':{'auth':'optional',"
                 "'public_url':'http://127.0.0.1:8080/mcp','audit':false,"
                 "'authorization_servers':['https://as.example.com']}}}");
  d = ph__config_department(cfg, "default");
  cr_expect_eq(d->auth.mode, PH__AUTH_OPTIONAL);
  cr_expect_eq(d->auth.audit, 0);
  cr_expect_str_eq(d->auth.authorization_servers[0], "https://as.example.com");
  ph__config_free(cfg);
}

Test(config, auth_values_are_checked) {
  FAILS("{'departments':{'s':{'auth':'yes'}}}", "\"s\"", "\"auth\"",
        "required");
  FAILS("{'departments':{'s':{'auth':true}}}", "\"auth\"", "string");
  FAILS("{'departments':{'s':{'auth':'required'}}}", "\"s\"", "public_url");
  FAILS("{'departments':{'s':{'auth':'optional'}}}", "public_url");
  FAILS("{'departments':{'s':{'auth':'optional',"
        "'public_url':'https://mcp.example.com/mcp/s'}}}",
        "\"s\"", "authorization_servers");
  FAILS("{'departments':{'s':{'auth':'required','issuers':['i'],"
        "'public_url':'mcp.example.com/mcp/s'}}}",
        "public_url", "https://");
  FAILS("{'departments':{'s':{'auth':'required',"
        "'public_url':'https://mcp.example.com/mcp/s/'}}}",
        "public_url", "slash");
  FAILS("{'departments':{'s':{'auth':'required',"
        "'public_url':'https://MCP.example.com/mcp/s'}}}",
        "public_url", "lower case");
  FAILS("{'departments':{'s':{'auth':'required',"
        "'public_url':'https://mcp.example.com/mcp/s?x=1'}}}",
        "public_url", "query");
  FAILS("{'departments':{'s':{'auth':'required',"
        "'public_url':'https://u@mcp.example.com/mcp/s'}}}",
        "public_url", "userinfo");
  FAILS("{'departments':{'s':{'auth':'required',"
        "'public_url':'https:///mcp/s'}}}",
        "public_url", "host");
  FAILS("{'departments':{'s':{'auth':'required',"
        "'public_url':'https://mcp.example.com/m\\\"cp'}}}",
        "public_url", "quotes");
  FAILS("{'departments':{'s':{'scopes_supported':['a b']}}}",
        "scopes_supported", "a b");
  FAILS("{'departments':{'s':{'scopes_supported':'a'}}}", "scopes_supported",
        "array");
  FAILS("{'departments':{'s':{'issuers':[]}}}", "issuers", "empty");
  FAILS("{'departments':{'s':{'issuers':[1]}}}", "issuers");
  FAILS("{'departments':{'s':{'tool_scopes':['x']}}}", "tool_scopes", "object");
  FAILS("{'departments':{'s':{'tool_scopes':{'a b':'x'}}}}", "tool_scopes",
        "a b");
  FAILS("{'departments':{'s':{'tool_scopes':{'t':'x y'}}}}", "tool_scopes",
        "\"t\"", "scope token");
  FAILS("{'departments':{'s':{'tool_scopes':{'t':1}}}}", "\"t\"");
  FAILS("{'departments':{'s':{'list_unauthorized_tools':1}}}",
        "list_unauthorized_tools");
  FAILS("{'departments':{'s':{'audit':'yes'}}}", "\"audit\"");
  FAILS("{'departments':{'s':{'authorisation_servers':[]}}}",
        "\"authorisation_servers\"");
  FAILS("{'audit_log':true}", "audit_log");
  /* One audience names one department. */
  FAILS("{'departments':{'a':{'auth':'required','public_url':'https://x/mcp',"
        "'issuers':['i']},'b':{'auth':'optional','issuers':['i'],"
        "'public_url':'https://x/mcp'}}}",
        "\"a\"", "\"b\"", "same");
}

Test(config, scope_tokens) {
  cr_expect(ph__valid_scope("read:sales"));
  cr_expect(ph__valid_scope("https://api.example.com/.default"));
  cr_expect(!ph__valid_scope(""));
  cr_expect(!ph__valid_scope("a b"));
  cr_expect(!ph__valid_scope("a\"b"));
  cr_expect(!ph__valid_scope("a\\b"));
  cr_expect(!ph__valid_scope("caf\xc3\xa9"));
  cr_expect(!ph__valid_scope("a\tb"));
}
