#!/usr/bin/env bash
# run.sh: the database benchmark. In one run, against the same PostgreSQL
# table of 100,000 rows, plughost's db_query (database.so) and the reference
# server @modelcontextprotocol/server-postgres (its "query" tool), both over
# stdio, driven by bench/loadgen: a LIMIT 100 page and a primary-key point
# lookup, sequential and WINDOW in flight. Also plughost's point lookups on
# SQLite (the same rows). Each measurement is repeated RUNS times, servers
# interleaved so drifting noise hits them alike; the table shows medians.
#
# Usage: bench/db/run.sh              (from anywhere; needs root or a local
#                                      PostgreSQL for scripts/pg-start.sh)
# Environment: BUILD_DIR (default build-bench-db), RUNS (5), N_SEQUENTIAL
# (5000), N_PIPELINED (20000), WINDOW (32), WARMUP (1000), CLIENT_CPU (0),
# SERVER_CPU (1), POOL_SIZE (plughost's connections, 8), SKIP_BUILD=1 to use
# the binaries already in BUILD_DIR, RAW=1 to print every run's line.
#
# The client (loadgen) is pinned to CLIENT_CPU with taskset and the MCP
# server to SERVER_CPU (loadgen -s). PostgreSQL's backends are left to the
# scheduler: they serve both servers alike, and pinning them to either side
# would charge their work to it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
build=${BUILD_DIR:-build-bench-db}
runs=${RUNS:-5}
n_sequential=${N_SEQUENTIAL:-5000}
n_pipelined=${N_PIPELINED:-20000}
window=${WINDOW:-32}
warmup=${WARMUP:-1000}
client_cpu=${CLIENT_CPU:-0}
server_cpu=${SERVER_CPU:-1}
pool_size=${POOL_SIZE:-8}
rows=100000

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  # Only what the bench runs, so work in progress elsewhere in the tree
  # does not stop it.
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 --target plughost ph_bench_loadgen database \
    >/dev/null
fi
# The reference server, pinned by bench/db/package.json, in bench/db/
# node_modules (ignored by git).
if [ ! -x "$here/node_modules/.bin/mcp-server-postgres" ]; then
  (cd "$here" && npm install --no-package-lock --no-audit --no-fund --silent)
fi

scratch=$(mktemp -d)
pg_dir=
cleanup() {
  if [ -n "$pg_dir" ]; then
    scripts/pg-stop.sh "$pg_dir" || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

eval "$(PH_PG_NO_SEED=1 scripts/pg-start.sh)"
pg_dir=$PH_PG_DIR
pg_url=$PH_TEST_PG_URL

# The same rows in both engines: a key, text, an exact numeric, integers, a
# timestamp and a boolean, so the results exercise the usual value types.
psql "$pg_url" -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF
CREATE TABLE bench_items (
  id integer PRIMARY KEY,
  name text NOT NULL,
  category text NOT NULL,
  price numeric(10, 2) NOT NULL,
  quantity integer NOT NULL,
  created_at timestamptz NOT NULL,
  active boolean NOT NULL);
INSERT INTO bench_items
SELECT i, 'item ' || i,
       (ARRAY['tools', 'garden', 'books', 'toys', 'food'])[1 + i % 5],
       (i % 10000) / 100.0 + 0.99, i % 250,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute',
       i % 3 <> 0
FROM generate_series(1, $rows) AS i;
VACUUM ANALYZE bench_items;
EOF
# The plugin creates the SQLite file from this seed on first open.
cat >"$scratch/bench.sql" <<EOF
CREATE TABLE bench_items (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  category TEXT NOT NULL,
  price NUMERIC(10, 2) NOT NULL,
  quantity INTEGER NOT NULL,
  created_at TIMESTAMP NOT NULL,
  active BOOLEAN NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
INSERT INTO bench_items
SELECT i, 'item ' || i,
       CASE i % 5 WHEN 0 THEN 'tools' WHEN 1 THEN 'garden' WHEN 2 THEN 'books'
                  WHEN 3 THEN 'toys' ELSE 'food' END,
       (i % 10000) / 100.0 + 0.99, i % 250,
       datetime('2024-01-01 00:00:00', '+' || i || ' minutes'), i % 3 <> 0
FROM n;
EOF

# database.so alone in the plugin directory: the host loads every .so.
mkdir "$scratch/plugins"
cp "$build/plugins/database.so" "$scratch/plugins/"
for engine in pg sqlite; do
  if [ $engine = pg ]; then
    url=$pg_url
    extra=
  else
    url="sqlite:$scratch/bench.db"
    extra=",\"seed\":\"$scratch/bench.sql\""
  fi
  cat >"$scratch/$engine.json" <<EOF
{"plugin_dir":"$scratch/plugins","departments":{"default":{"plugins":[
 {"plugin":"database","prefix":"db",
  "config":{"url":"$url","pool_size":$pool_size$extra}}]}}}
EOF
done

plughost="$root/$build/plughost"
loadgen="$root/$build/bench/loadgen"
peer="$here/node_modules/.bin/mcp-server-postgres"
limit_sql='SELECT * FROM bench_items ORDER BY id LIMIT 100'
point_sql='SELECT * FROM bench_items WHERE id = 54321'
results="$scratch/results"
: >"$results"

# One measurement: server (ph-pg, ph-sqlite, peer), query (limit, point),
# window. Appends "server query window rps p50_us cpu_us_per_req".
measure() {
  local server=$1 query=$2 w=$3 n sql tool line
  sql=$limit_sql
  [ "$query" = point ] && sql=$point_sql
  n=$n_pipelined
  [ "$w" = 1 ] && n=$n_sequential
  case $server in
  ph-pg)
    set -- -t db_query -- "$plughost" --config "$scratch/pg.json" --stdio
    ;;
  ph-sqlite)
    set -- -t db_query -- "$plughost" --config "$scratch/sqlite.json" --stdio
    ;;
  peer) set -- -t query -- node "$peer" "$pg_url" ;;
  esac
  line=$(taskset -c "$client_cpu" "$loadgen" -m -n "$n" -W "$warmup" \
    -w "$w" -s "$server_cpu" -l "$server" -a "{\"sql\":\"$sql\"}" "$@")
  [ "${RAW:-0}" = 1 ] && echo "$query $line" >&2
  echo "$line" | awk -v q="$query" '{
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    print v["label"], q, v["w"], v["rps"], v["p50_us"], v["cpu_us_per_req"]
  }' >>"$results"
}

# Creates the SQLite file (from the seed, 100k rows) outside the timing.
taskset -c "$client_cpu" "$loadgen" -m -n 1 -W 0 -l warm -t db_query \
  -a "{\"sql\":\"$point_sql\"}" -- "$plughost" --config "$scratch/sqlite.json" \
  --stdio >/dev/null

for run in $(seq "$runs"); do
  echo "run $run of $runs" >&2
  for query in limit point; do
    for w in 1 "$window"; do
      measure ph-pg $query "$w"
      measure peer $query "$w"
    done
  done
  measure ph-sqlite point 1
  measure ph-sqlite point "$window"
done

# The median of one column over the runs of one server, query and window.
median() {
  awk -v s="$1" -v q="$2" -v w="$3" -v c="$4" \
    '$1 == s && $2 == q && $3 == w { print $c }' "$results" |
    sort -n | awk '{ v[NR] = $1 } END {
      if (NR == 0) { print "-"; exit }
      print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

target() {
  case "$1 $2" in
  "limit 1" | "limit $window") echo 3 ;;
  "point 1") echo 2 ;;
  *) echo 3 ;;
  esac
}

echo
echo "PostgreSQL, $rows rows; medians of $runs runs; server on CPU" \
  "$server_cpu, client on CPU $client_cpu"
echo
echo "| query | in flight | plughost req/s | server-postgres req/s | ratio" \
  "| target | p50 plughost / peer (us) | server CPU us/req plughost / peer |"
echo "|---|---|---|---|---|---|---|---|"
for query in limit point; do
  for w in 1 "$window"; do
    ph=$(median ph-pg $query "$w" 4)
    pe=$(median peer $query "$w" 4)
    ratio=$(awk -v a="$ph" -v b="$pe" 'BEGIN { printf "%.2f", a / b }')
    name="LIMIT 100"
    [ $query = point ] && name="point lookup"
    echo "| $name | $w | $ph | $pe | ${ratio}x | >= $(target $query "$w")x |" \
      "$(median ph-pg $query "$w" 5) / $(median peer $query "$w" 5) |" \
      "$(median ph-pg $query "$w" 6) / $(median peer $query "$w" 6) |"
  done
done
echo
echo "SQLite, the same $rows rows, plughost only"
echo
echo "| query | in flight | plughost req/s | p50 (us) | server CPU us/req |"
echo "|---|---|---|---|---|"
for w in 1 "$window"; do
  echo "| point lookup | $w | $(median ph-sqlite point "$w" 4) |" \
    "$(median ph-sqlite point "$w" 5) | $(median ph-sqlite point "$w" 6) |"
done
