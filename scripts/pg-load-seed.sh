#!/usr/bin/env bash
# pg-load-seed.sh URL [SEED]: load the sample sales data into PostgreSQL.
#
# The seed (default etc/data/sales.sql) is written in SQL that SQLite and
# PostgreSQL share. Table comments live in it as "-- text" on the CREATE
# TABLE line, which SQLite keeps in its schema; here they become COMMENT ON
# TABLE, and ANALYZE gives the planner (and list_tables) row estimates.
set -euo pipefail
url=${1:?usage: pg-load-seed.sh URL [SEED]}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
seed=${2:-$(dirname "$here")/etc/data/sales.sql}

psql "$url" -X -q -v ON_ERROR_STOP=1 -f "$seed"
sed -n "s/^CREATE TABLE \([a-z_]*\) ( -- \(.*\)$/\1|\2/p" "$seed" |
  while IFS='|' read -r table comment; do
    printf "COMMENT ON TABLE %s IS '%s';\n" "$table" \
      "$(printf '%s' "$comment" | sed "s/'/''/g")"
  done | psql "$url" -X -q -v ON_ERROR_STOP=1
psql "$url" -X -q -v ON_ERROR_STOP=1 -c ANALYZE
