/* sql_scan.c: a lexer that knows just enough SQL to find statement
 * boundaries, the first keyword and every identifier, skipping strings and
 * comments the way SQLite and PostgreSQL do. It is the first safety layer,
 * not the only one: it gives clear messages for the common hostile inputs,
 * while the engines' read-only transactions, authorizers and plan checks
 * stop whatever it lets through. */
#include "db.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Records len bytes of text: a plain word (lower-cased), or the inside of
 * a quoted name or string, whose doubled quote characters q stand for one
 * (q is 0 for [x], which has no escape). */
static int push_ident(sql_scan *s, const char *text, size_t len, int quoted,
                      int literal, char q) {
  sql_ident *grown;
  char *copy;
  size_t i, n = 0;

  if (s->nidents % 32 == 0) {
    grown = realloc(s->idents, (size_t)(s->nidents + 32) * sizeof(*grown));
    if (grown == NULL)
      return -1;
    s->idents = grown;
  }
  copy = malloc(len + 1);
  if (copy == NULL)
    return -1;
  for (i = 0; i < len; i++) {
    if (!quoted && !literal)
      copy[n++] = (char)tolower((unsigned char)text[i]);
    else if (q == 0 || text[i] != q || i + 1 >= len || text[i + 1] != q)
      copy[n++] = text[i];
    else
      copy[n++] = text[i++];
  }
  copy[n] = '\0';
  s->idents[s->nidents].text = copy;
  s->idents[s->nidents].quoted = quoted;
  s->idents[s->nidents].literal = literal;
  s->nidents++;
  return 0;
}

static int ident_start(int c) {
  return isalpha(c) || c == '_' || c >= 0x80;
}

static int ident_char(int c) {
  return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* Skips a quoted run starting after its opening quote `q`; a doubled quote
 * stands for itself. Returns the position after the closing quote, or NULL
 * when the text ends first. backslash: E'' strings, where \x escapes. */
static const char *skip_quoted(const char *p, char q, int backslash) {
  for (; *p != '\0'; p++) {
    if (backslash && *p == '\\' && p[1] != '\0') {
      p++;
      continue;
    }
    if (*p == q) {
      if (p[1] == q) {
        p++;
        continue;
      }
      return p + 1;
    }
  }
  return NULL;
}

/* PostgreSQL dollar quoting: $tag$ ... $tag$. p points at the first '$'.
 * Returns the end, p itself if this is no dollar quote, or NULL when it
 * never ends. */
static const char *skip_dollar(const char *p) {
  const char *tag_end = p + 1, *end;
  size_t tag_len;

  if (isdigit((unsigned char)*tag_end))
    return p; /* $1: a parameter. */
  while (ident_char((unsigned char)*tag_end) && *tag_end != '$')
    tag_end++;
  if (*tag_end != '$')
    return p;
  tag_len = (size_t)(tag_end - p) + 1;
  for (end = tag_end + 1; *end != '\0'; end++)
    if (*end == '$' && strncmp(end, p, tag_len) == 0)
      return end + tag_len;
  return NULL;
}

/* Skips a block comment starting at "/ *"; PostgreSQL nests them. */
static const char *skip_block_comment(const char *p, db_kind kind) {
  int depth = 0;

  while (*p != '\0') {
    if (p[0] == '/' && p[1] == '*') {
      if (depth == 0 || kind == DB_POSTGRES)
        depth++;
      p += 2;
    } else if (p[0] == '*' && p[1] == '/') {
      depth--;
      p += 2;
      if (depth == 0)
        return p;
    } else {
      p++;
    }
  }
  return NULL;
}

int sql_scan_run(sql_scan *s, const char *sql, db_kind kind) {
  const char *p = sql, *start, *end;
  int in_statement = 0, first_done = 0, depth = 0, ended = 0;
  char q;

  memset(s, 0, sizeof(*s));
  s->end = strlen(sql);
  while (*p != '\0') {
    unsigned char c = (unsigned char)*p;

    if (isspace(c)) {
      p++;
      continue;
    }
    if (c == '-' && p[1] == '-') {
      p += strcspn(p, "\n");
      continue;
    }
    if (c == '/' && p[1] == '*') {
      end = skip_block_comment(p, kind);
      if (end == NULL)
        goto unterminated;
      p = end;
      continue;
    }
    if (c == ';') {
      if (!ended)
        s->end = (size_t)(p - sql);
      ended = 1;
      in_statement = 0;
      p++;
      continue;
    }
    if (!in_statement) {
      in_statement = 1;
      s->statements++;
    }
    if ((c == 'U' || c == 'u') && p[1] == '&' && p[2] == '"') {
      s->unicode_ident = 1;
      p += 2;
      continue;
    }
    if (c == '\'') {
      end = skip_quoted(p + 1, '\'', 0);
      if (end == NULL)
        goto unterminated;
      /* SQLite reads a string where a name belongs as that name. */
      if (kind == DB_SQLITE &&
          push_ident(s, p + 1, (size_t)(end - 1 - (p + 1)), 0, 1, '\'') != 0)
        return -1;
      p = end;
      continue;
    }
    if ((c == 'E' || c == 'e') && p[1] == '\'' && kind == DB_POSTGRES) {
      end = skip_quoted(p + 2, '\'', 1);
      if (end == NULL)
        goto unterminated;
      p = end;
      continue;
    }
    if (c == '$' && kind == DB_POSTGRES) {
      end = skip_dollar(p);
      if (end == NULL)
        goto unterminated;
      p = end == p ? p + 1 : end;
      continue;
    }
    if (c == '"' || (kind == DB_SQLITE && (c == '`' || c == '['))) {
      q = c == '[' ? ']' : (char)c;
      start = p + 1;
      end = c == '[' ? strchr(start, ']') : skip_quoted(start, q, 0);
      if (end == NULL)
        goto unterminated;
      if (c == '[')
        end++;
      if (push_ident(s, start, (size_t)(end - 1 - start), 1, 0,
                     c == '[' ? 0 : q) != 0)
        return -1;
      p = end;
      continue;
    }
    if (ident_start(c)) {
      start = p;
      while (ident_char((unsigned char)*p))
        p++;
      /* A string prefix (X'', B'', N'') is part of the literal. */
      if (*p == '\'' && p - start == 1)
        continue;
      if (push_ident(s, start, (size_t)(p - start), 0, 0, 0) != 0)
        return -1;
      if (!first_done && (size_t)(p - start) < sizeof(s->first)) {
        size_t i, n = (size_t)(p - start);
        for (i = 0; i < n; i++)
          s->first[i] = (char)toupper((unsigned char)start[i]);
        s->first[n] = '\0';
      }
      first_done = 1;
      continue;
    }
    /* A leading "(" belongs to a parenthesised SELECT; anything else
     * before the first word leaves `first` empty. */
    if (c != '(')
      first_done = 1;
    if (c == '(') {
      depth++;
    } else if (c == ')') {
      if (depth == 0)
        s->unbalanced = 1;
      else
        depth--;
    }
    p++;
  }
  if (depth > 0)
    s->unbalanced = 1;
  return 0;

unterminated:
  s->unterminated = 1;
  return 0;
}

void sql_scan_free(sql_scan *s) {
  int i;

  for (i = 0; i < s->nidents; i++)
    free(s->idents[i].text);
  free(s->idents);
  memset(s, 0, sizeof(*s));
}

/* Functions that act outside the statement (signals, files, settings,
 * locks that outlive it) or run SQL text of their own, which would go
 * around every check here; statistics and activity views, which hold
 * values of every column (masked ones too) and other sessions' statements;
 * and json_patch, whose cost in SQLite is the product of its arguments'
 * sizes, spent in one call no deadline can stop. Whole names, then
 * prefixes. */
static const char *const denied_names[] = {"pg_terminate_backend",
                                           "pg_cancel_backend",
                                           "pg_reload_conf",
                                           "pg_rotate_logfile",
                                           "pg_promote",
                                           "pg_switch_wal",
                                           "pg_create_restore_point",
                                           "pg_backup_start",
                                           "pg_backup_stop",
                                           "pg_start_backup",
                                           "pg_stop_backup",
                                           "set_config",
                                           "pg_notify",
                                           "pg_read_file",
                                           "pg_read_binary_file",
                                           "pg_stat_file",
                                           "loread",
                                           "lowrite",
                                           "ts_stat",
                                           "ts_rewrite",
                                           "query_to_xml",
                                           "query_to_xml_and_xmlschema",
                                           "query_to_xmlschema",
                                           "nextval",
                                           "setval",
                                           "pg_log_backend_memory_contexts",
                                           "pg_import_system_collations",
                                           "pg_stats",
                                           "pg_stats_ext",
                                           "pg_stats_ext_exprs",
                                           "pg_statistic",
                                           "pg_statistic_ext",
                                           "pg_statistic_ext_data",
                                           "pg_mcv_list_items",
                                           "pg_stat_activity",
                                           "pg_stat_statements",
                                           "json_patch",
                                           "pg_drop_replication_slot",
                                           "load_extension",
                                           "fts3_tokenizer",
                                           "readfile",
                                           "writefile",
                                           "edit",
                                           NULL};
static const char *const denied_prefixes[] = {"lo_",
                                              "pg_advisory_",
                                              "pg_try_advisory_",
                                              "pg_ls_",
                                              "dblink",
                                              "table_to_xml",
                                              "schema_to_xml",
                                              "database_to_xml",
                                              "cursor_to_xml",
                                              "pg_logical_",
                                              "pg_replication_",
                                              "pg_create_",
                                              "pg_copy_",
                                              "pg_stat_reset",
                                              "pg_wal_replay_",
                                              "pg_file_",
                                              NULL};

int sql_function_denied(db_kind kind, const char *ident) {
  int i;

  (void)kind; /* One list serves both: the names do not collide. */
  for (i = 0; denied_names[i] != NULL; i++)
    if (strcasecmp(ident, denied_names[i]) == 0)
      return 1;
  for (i = 0; denied_prefixes[i] != NULL; i++)
    if (strncasecmp(ident, denied_prefixes[i], strlen(denied_prefixes[i])) == 0)
      return 1;
  return 0;
}

/* PostgreSQL's ways to name a relation in a string or by its number, and
 * the schemas that list relations: open, they tell a hidden table's name,
 * size, columns and comments, or whether it exists at all, and no plan
 * shows that they did. Refused while any table is hidden. */
static const char *const pg_catalog_names[] = {"information_schema",
                                               "pg_catalog",
                                               "pg_toast",
                                               "regclass",
                                               "regtype",
                                               "regproc",
                                               "regprocedure",
                                               "regoper",
                                               "regoperator",
                                               "regnamespace",
                                               "regrole",
                                               "regconfig",
                                               "regdictionary",
                                               "regcollation",
                                               "obj_description",
                                               "col_description",
                                               "shobj_description",
                                               "format_type",
                                               "currval",
                                               "lastval",
                                               "row_security_active",
                                               "pg_column_is_updatable",
                                               "pg_describe_object",
                                               "pg_identify_object",
                                               "pg_identify_object_as_address",
                                               "pg_type_is_visible",
                                               "pg_options_to_table",
                                               NULL};
static const char *const pg_catalog_prefixes[] = {
    "pg_stat",     "pg_get_",       "pg_relation_", "pg_table_",
    "pg_total_",   "pg_index",      "pg_partition", "pg_filenode",
    "pg_sequence", "pg_tablespace", "has_",         "to_reg",
    NULL};

int sql_catalog_denied(db_kind kind, const char *ident) {
  int i;

  if (kind != DB_POSTGRES)
    return 0; /* SQLite's catalog is closed by its authorizer. */
  for (i = 0; pg_catalog_names[i] != NULL; i++)
    if (strcasecmp(ident, pg_catalog_names[i]) == 0)
      return 1;
  for (i = 0; pg_catalog_prefixes[i] != NULL; i++)
    if (strncasecmp(ident, pg_catalog_prefixes[i],
                    strlen(pg_catalog_prefixes[i])) == 0)
      return 1;
  return 0;
}

/* Non-zero when word names a hidden table: as it is, or (PostgreSQL) as
 * the array type of one, which is the table's name after an underscore. */
static int names_hidden(const db *d, const char *word) {
  return db_table_hidden(d, word) ||
         (d->kind == DB_POSTGRES && word[0] == '_' && word[1] != '\0' &&
          db_table_hidden(d, word + 1));
}

/* What a write may not hold beyond a read's rules. SQLite's program of a
 * write reads every column of the rows it changes, so no plan check can
 * tell its uses of a masked column, and SQLite's authorizer sees neither
 * a NATURAL join nor the columns an INSERT fills: a masked column named
 * anywhere (a UNIQUE one would answer whether a guess exists) and any
 * NATURAL join (whose columns are not named) are refused on both engines
 * alike. */
static int check_write(const db *d, const sql_scan *s, char **err) {
  int i;

  for (i = 0; i < s->nidents; i++) {
    if (s->idents[i].literal)
      continue;
    if (db_column_masked(d, NULL, s->idents[i].text)) {
      db_errorf(err, "Column '%s' is masked by the operator",
                s->idents[i].text);
      return DB_EREFUSED;
    }
    if (!s->idents[i].quoted && strcmp(s->idents[i].text, "natural") == 0) {
      db_errorf(err, "NATURAL joins are not allowed in writes: name the "
                     "columns to join on");
      return DB_EREFUSED;
    }
  }
  return DB_OK;
}

static int first_in(const char *first, const char *const *list) {
  int i;

  for (i = 0; list[i] != NULL; i++)
    if (strcmp(first, list[i]) == 0)
      return 1;
  return 0;
}

static int keyword_at(const sql_scan *s, int i, const char *word) {
  return i >= 0 && i < s->nidents && !s->idents[i].quoted &&
         strcmp(s->idents[i].text, word) == 0;
}

int sql_check(const db *d, const sql_scan *s, int write, char **err) {
  static const char *const pg_read[] = {"SELECT", "WITH", "VALUES",
                                        "TABLE",  "SHOW", NULL};
  static const char *const sqlite_read[] = {"SELECT", "WITH", "VALUES",
                                            "PRAGMA", NULL};
  static const char *const writes[] = {"INSERT", "UPDATE", "DELETE", NULL};
  const char *word;
  int i, has_where = 0;

  if (s->unterminated) {
    db_errorf(err, "Unterminated string, quoted identifier or comment");
    return DB_EINVALID;
  }
  if (s->statements == 0) {
    db_errorf(err, "Query cannot be empty");
    return DB_EINVALID;
  }
  if (s->statements > 1) {
    db_errorf(err, "Multiple statements are not allowed: send one "
                   "statement per call");
    return DB_EREFUSED;
  }
  if (s->unicode_ident) {
    db_errorf(err, "Unicode-escaped identifiers (U&\"...\") are not allowed");
    return DB_EREFUSED;
  }
  if (write) {
    if (!first_in(s->first, writes)) {
      db_errorf(err,
                "execute runs one INSERT, UPDATE or DELETE statement; "
                "'%s' is not allowed",
                s->first[0] ? s->first : "this statement");
      return DB_EREFUSED;
    }
  } else if (!first_in(s->first,
                       d->kind == DB_POSTGRES ? pg_read : sqlite_read)) {
    db_errorf(err,
              "Only read-only SELECT statements are allowed; '%s' "
              "operations are not permitted%s",
              s->first[0] ? s->first : "this statement",
              first_in(s->first, writes) && d->allow_writes
                  ? " (use the execute tool for writes)"
                  : "");
    return DB_EREFUSED;
  }
  for (i = 0; i < s->nidents; i++) {
    word = s->idents[i].text;
    if (names_hidden(d, word)) {
      db_errorf(err, "Table '%s' is not accessible", word);
      return DB_EREFUSED;
    }
    if (s->idents[i].literal)
      continue;
    if (sql_function_denied(d->kind, word)) {
      db_errorf(err, "'%s' is not allowed in queries", word);
      return DB_EREFUSED;
    }
    if (d->nhidden > 0 && sql_catalog_denied(d->kind, word)) {
      db_errorf(err,
                "'%s' is not allowed while tables are hidden: it reads "
                "the catalog; use list_tables and describe_table",
                word);
      return DB_EREFUSED;
    }
    if (s->idents[i].quoted)
      continue;
    if (strcmp(word, "where") == 0)
      has_where = 1;
    if (write || i == 0)
      continue;
    /* Data-modifying CTEs and SELECT ... INTO, which creates a table. Row
     * locks (FOR UPDATE, FOR NO KEY UPDATE) are no writes. */
    if ((strcmp(word, "insert") == 0 || strcmp(word, "delete") == 0 ||
         strcmp(word, "merge") == 0 ||
         (strcmp(word, "update") == 0 && !keyword_at(s, i - 1, "for") &&
          !keyword_at(s, i - 1, "key")))) {
      db_errorf(err,
                "Data-modifying statements are not allowed in queries "
                "('%s')",
                word);
      return DB_EREFUSED;
    }
    if (strcmp(word, "into") == 0) {
      db_errorf(err, "SELECT ... INTO is not allowed: it creates a table");
      return DB_EREFUSED;
    }
  }
  if (write && strcmp(s->first, "INSERT") != 0 && !has_where) {
    db_errorf(err, "%s without a WHERE clause is not allowed", s->first);
    return DB_EREFUSED;
  }
  return write ? check_write(d, s, err) : DB_OK;
}
