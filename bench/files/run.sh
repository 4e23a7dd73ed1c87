#!/usr/bin/env bash
# run.sh: the files benchmark. In one run, on the same scratch files,
# plughost's files plugin and the reference server
# @modelcontextprotocol/server-filesystem, both over stdio, driven by
# bench/loadgen: read a 4 KiB file, read a 1 MiB file, list a directory of
# 1,000 entries, search a tree of 10,000 files; each sequential and WINDOW
# in flight. Each measurement is repeated RUNS times, servers interleaved
# so drifting noise hits them alike; the table shows medians and the spread
# (min-max) of req/s, and the peak RSS of each server.
#
# Usage: bench/files/run.sh          (from anywhere)
# Environment: BUILD_DIR (default build-bench-files), RUNS (5), N_SMALL
# (requests for the 4 KiB read and the listing, 5000), N_LARGE (for the
# 1 MiB read, 500), N_SEARCH (for the search, 20: the reference takes
# seconds for each), WINDOW (32), WARMUP (200),
# CLIENT_CPU (0), SERVER_CPU (1), SKIP_BUILD=1 to use the binaries already
# in BUILD_DIR, RAW=1 to print every run's line.
#
# The client (loadgen) is pinned to CLIENT_CPU with taskset and the MCP
# server to SERVER_CPU (loadgen -s).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
build=${BUILD_DIR:-build-bench-files}
runs=${RUNS:-5}
n_small=${N_SMALL:-5000}
n_large=${N_LARGE:-500}
n_search=${N_SEARCH:-20}
window=${WINDOW:-32}
warmup=${WARMUP:-200}
client_cpu=${CLIENT_CPU:-0}
server_cpu=${SERVER_CPU:-1}

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  # Only what the bench runs, so work in progress elsewhere in the tree
  # does not stop it.
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 --target plughost ph_bench_loadgen files \
    >/dev/null
fi
# The reference server, pinned by bench/files/package.json, in
# bench/files/node_modules (ignored by git).
if [ ! -e "$here/node_modules/@modelcontextprotocol/server-filesystem/package.json" ]; then
  (cd "$here" && npm install --no-package-lock --no-audit --no-fund --silent)
fi
peer_js=$(node -e 'const p=require(process.argv[1]); const b=typeof p.bin==="string"?p.bin:Object.values(p.bin)[0]; console.log(require("path").join(require("path").dirname(process.argv[1]), b))' \
  "$here/node_modules/@modelcontextprotocol/server-filesystem/package.json")

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
data="$scratch/data"
mkdir -p "$data/list" "$data/tree"
# Text (base64 lines): the reference reads it as UTF-8. The pipes end early
# on purpose, which pipefail would count as a failure.
(head -c 4096 /dev/urandom | base64 -w 76 | head -c 4096 >"$data/small.txt") ||
  true
(head -c 1048576 /dev/urandom | base64 -w 76 |
  head -c 1048576 >"$data/large.txt") || true
for i in $(seq 1000); do : >"$data/list/entry-$i.txt"; done
# 10,000 files in 100 directories of 100, one of them named needle.md.
for d in $(seq 100); do
  mkdir "$data/tree/d$d"
  (cd "$data/tree/d$d" && for i in $(seq 100); do : >"f$i.txt"; done)
done
: >"$data/tree/d57/needle.md"

mkdir "$scratch/plugins"
cp "$build/plugins/files.so" "$scratch/plugins/"
# Caps as high as the peer's (it has none): a read of 1 MiB and a search of
# 10,000 files must both go through whole.
cat >"$scratch/files.json" <<JSON
{"plugin_dir":"$scratch/plugins","departments":{"default":{"plugins":[
 {"plugin":"files","prefix":"files","config":{"roots":["$data"],
  "watch":false,"max_walk":1000000}}]}}}
JSON

plughost="$root/$build/plughost"
loadgen="$root/$build/bench/loadgen"
results="$scratch/results"
: >"$results"

# One measurement: server (ph, peer), case (small, large, list, search),
# window. Appends "server case window rps p50_us cpu_us_per_req peak_mib".
measure() {
  local server=$1 case=$2 w=$3 n tool args line wu
  n=$n_small
  case $case in
  small) args="{\"path\":\"$data/small.txt\"}" ;;
  large) args="{\"path\":\"$data/large.txt\"}" n=$n_large ;;
  list) args="{\"path\":\"$data/list\"}" ;;
  search) args="{\"path\":\"$data/tree\",\"pattern\":\"**/needle.md\"}"
    n=$n_search ;;
  esac
  case "$server $case" in
  "ph small" | "ph large") tool=files_read_text ;;
  "ph list") tool=files_list ;;
  "ph search") tool=files_search ;;
  "peer small" | "peer large") tool=read_text_file ;;
  "peer list") tool=list_directory ;;
  "peer search") tool=search_files ;;
  esac
  if [ "$server" = ph ]; then
    set -- "$plughost" --config "$scratch/files.json" --stdio
  else
    set -- node "$peer_js" "$data"
  fi
  wu=$warmup
  [ "$case" = search ] && wu=2
  line=$(taskset -c "$client_cpu" "$loadgen" -m -n "$n" -W "$wu" \
    -w "$w" -s "$server_cpu" -l "$server" -t "$tool" -a "$args" -- "$@")
  [ "${RAW:-0}" = 1 ] && echo "$case $line" >&2
  echo "$line" | awk -v c="$case" '{
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    if (v["errors"] > 0)
      print "warning: " v["errors"] " errors: " $0 > "/dev/stderr"
    printf "%s %s %s %s %s %s %.1f\n", v["label"], c, v["w"], v["rps"],
      v["p50_us"], v["cpu_us_per_req"], v["peak_rss_kib"] / 1024
  }' >>"$results"
}

for run in $(seq "$runs"); do
  echo "run $run of $runs" >&2
  for case in small large list search; do
    for w in 1 "$window"; do
      measure ph $case "$w"
      measure peer $case "$w"
    done
  done
done

# One column over the runs of one server, case and window: the median, or
# with "spread" as the fifth argument, min-max.
stat() {
  awk -v s="$1" -v k="$2" -v w="$3" -v c="$4" \
    '$1 == s && $2 == k && $3 == w { print $c }' "$results" |
    sort -g | awk -v mode="${5:-median}" '{ v[NR] = $1 } END {
      if (NR == 0) { print "-"; exit }
      if (mode == "spread") { print v[1] "-" v[NR]; exit }
      print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
echo "Medians of $runs runs (spread min-max); server on CPU $server_cpu," \
  "client on CPU $client_cpu"
echo
echo "| case | in flight | plughost req/s | server-filesystem req/s | ratio" \
  "| p50 plughost / peer (us) | server CPU us/req plughost / peer" \
  "| peak RSS MiB plughost / peer |"
echo "|---|---|---|---|---|---|---|---|"
for case in small large list search; do
  for w in 1 "$window"; do
    ph=$(stat ph $case "$w" 4)
    pe=$(stat peer $case "$w" 4)
    ratio=$(awk -v a="$ph" -v b="$pe" 'BEGIN { printf "%.1f", a / b }')
    case $case in
    small) name="read 4 KiB" ;;
    large) name="read 1 MiB" ;;
    list) name="list 1,000 entries" ;;
    search) name="search 10,000 files" ;;
    esac
    echo "| $name | $w | $ph ($(stat ph $case "$w" 4 spread))" \
      "| $pe ($(stat peer $case "$w" 4 spread)) | ${ratio}x" \
      "| $(stat ph $case "$w" 5) / $(stat peer $case "$w" 5)" \
      "| $(stat ph $case "$w" 6) / $(stat peer $case "$w" 6)" \
      "| $(stat ph $case "$w" 7) / $(stat peer $case "$w" 7) |"
  done
done
