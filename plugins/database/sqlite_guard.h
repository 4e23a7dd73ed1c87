/* sqlite_guard.h: two safety layers of the SQLite engine kept out of
 * engine_sqlite.c, which calls them on its own connections:
 *
 * sqlite_plan.c checks what a statement's compiled program reads against
 * the hidden tables and masked columns, which the authorizer alone cannot
 * (a column merged by USING or NATURAL is never resolved as a read).
 *
 * sqlite_funcs.c replaces, per connection, the built-in functions whose
 * cost is the product of their arguments' sizes: one such call runs
 * between two checks of the deadline, so it must be cheap.
 *
 * Every function here runs on the thread that holds the connection. */
#ifndef PH_DATABASE_SQLITE_GUARD_H
#define PH_DATABASE_SQLITE_GUARD_H

#include "db.h"

#include <sqlite3.h>

/* What the b-trees of one connection's file hold that the plan check
 * must see: the tables, indexes and catalog tables that are hidden, hold
 * masked columns or are statistics, by root page; and the names whose
 * mention makes a statement worth checking. Opaque; owned by the
 * connection that built it. */
typedef struct sq_map sq_map;

/* Builds the map of handle's main database for d's hidden tables and
 * masked columns into *map (freeing the old one). Runs the catalog
 * queries in one read transaction, so the map, its schema_version and its
 * data version describe one state of the file; the caller's authorizer
 * must let the plugin's own catalog queries through. Returns DB_OK or
 * DB_EINTERNAL with *err. */
int sq_map_build(const db *d, sqlite3 *handle, sq_map **map, char **err);

void sq_map_free(sq_map *map);

/* Non-zero when the file may have a schema other than map's: its data
 * version moved since the map was built and its schema_version differs.
 * A moved data version with the same schema is recorded in map, so the
 * next call costs one file_control again. -1 when the check failed. */
int sq_map_stale(sq_map *map, sqlite3 *handle);

/* Non-zero when sql mentions (anywhere, case-insensitively) a name in
 * map: a table that is hidden or has masked columns, a view, or the
 * catalog. A statement that mentions none can reach no b-tree the check
 * must see, so only these pay for it. */
int sq_map_mentions(const sq_map *map, const char *sql);

/* Walks the rows of `explain`, a prepared "EXPLAIN <statement>" not yet
 * stepped, and refuses (DB_EREFUSED, *err) a program that reads a masked
 * column or a b-tree ordered by one, or opens a hidden table, a catalog
 * closed while tables are hidden, the statistics, or a virtual table when
 * one of those is hidden or masked. Returns DB_OK, the refusal, or the
 * SQLite error code of a failed step as DB_EINVALID (with *err). */
int sq_plan_check(const sq_map *map, sqlite3_stmt *explain, char **err);

/* Registers on handle instr(), replace() and the two-argument trim(),
 * ltrim() and rtrim() in place of SQLite's built-ins, with the same
 * results but a cost linear in their arguments (trim's character set is
 * bounded in the work it may cost). Returns SQLITE_OK or an error. */
int sq_funcs_register(sqlite3 *handle);

#endif
