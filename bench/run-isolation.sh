#!/usr/bin/env bash
# run-isolation.sh: the crash isolation benchmark (issue 15). Builds the
# host, plughost-runner, bench/loadgen and the echo fixture, then measures
# the worker-pool echo tool in the host and the same tool in an instance
# with "isolation": "process", at W in flight and at W=1, in one run: each
# measurement RUNS times, the two servers interleaved so drifting noise hits
# them alike; the table shows medians and the targets as ratios.
#
# The server is pinned to SERVER_CPU and the runner, its child, inherits the
# pin: host and runner share one core, as the client has the other. The
# loadgen's server CPU and noise figures see only the host's process, so
# for the isolated rows the runner's work shows up as noise; they are
# printed, not used to retry.
#
# Usage: bench/run-isolation.sh            (from anywhere)
# Environment: BUILD_DIR (default build-bench), RUNS (5), N_PIPELINED
# (50000), N_SEQUENTIAL (20000), WINDOW (32), WARMUP (2000), CLIENT_CPU (0),
# SERVER_CPU (1), SKIP_BUILD=1 to use the binaries already in BUILD_DIR.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build-bench}
runs=${RUNS:-5}
n_pipelined=${N_PIPELINED:-50000}
n_sequential=${N_SEQUENTIAL:-20000}
window=${WINDOW:-32}
warmup=${WARMUP:-2000}
client_cpu=${CLIENT_CPU:-0}
server_cpu=${SERVER_CPU:-1}

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 --target plughost plughost-runner \
    ph_bench_loadgen fixture_echo >/dev/null
fi

loadgen="$root/$build/bench/loadgen"
plughost="$root/$build/plughost"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# echo.so alone, in the host and isolated; the default 4 workers, so the
# isolated instance has 4 channels.
mkdir "$scratch/echo-only"
cp "$root/$build/tests/plugins/echo.so" "$scratch/echo-only/"
for mode in none process; do
  cat >"$scratch/$mode.json" <<EOF
{"plugin_dir": "$scratch/echo-only",
 "departments": {"default": {"plugins": [
   {"plugin": "echo", "prefix": "echo", "isolation": "$mode"}]}}}
EOF
done

results="$root/$build/bench/run-isolation.results"
: >"$results"

measure() {
  local label=$1 mode=$2 w=$3 n=$4 line
  if line=$(taskset -c "$client_cpu" "$loadgen" -m -l "$label" -t echo_echo \
    -w "$w" -n "$n" -W "$warmup" -s "$server_cpu" -- \
    "$plughost" --config "$scratch/$mode.json" --stdio); then
    echo "$line" >>"$results"
  else
    echo "run-isolation: $label W=$w failed" >&2
  fi
}

for ((r = 1; r <= runs; r++)); do
  echo "run-isolation: round $r of $runs" >&2
  for s in worker isolated; do
    mode=none
    [ $s = isolated ] && mode=process
    measure "$s" "$mode" "$window" "$n_pipelined"
    measure "$s" "$mode" 1 "$n_sequential"
  done
done

awk -v window="$window" -v runs="$runs" '
function median(key,   n, i, j, v, a) {
  n = count[key]
  if (n == 0)
    return 0
  for (i = 1; i <= n; i++)
    a[i] = vals[key, i] + 0
  for (i = 2; i <= n; i++) {
    v = a[i]
    for (j = i - 1; j >= 1 && a[j] > v; j--)
      a[j + 1] = a[j]
    a[j + 1] = v
  }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function m(label, w, metric) {
  return median(label SUBSEP w SUBSEP metric)
}
function verdict(ok) {
  return ok ? "met" : "**missed**"
}
{
  label = ""; w = ""
  for (i = 1; i <= NF; i++) {
    split($i, kv, "=")
    if (kv[1] == "label") label = kv[2]
    else if (kv[1] == "w") w = kv[2]
  }
  for (i = 1; i <= NF; i++) {
    split($i, kv, "=")
    key = label SUBSEP w SUBSEP kv[1]
    vals[key, ++count[key]] = kv[2]
  }
}
END {
  name["worker"] = "plughost, worker-pool echo (in the host)"
  name["isolated"] = "plughost, isolated echo (plughost-runner)"
  print "| server | W | req/s | p50 µs | p99 µs | host CPU µs/req" \
        " | server core noise % |"
  print "|---|---:|---:|---:|---:|---:|---:|"
  split("worker isolated", order, " ")
  split(window " 1", ws, " ")
  for (o = 1; o <= 2; o++)
    for (k = 1; k <= 2; k++) {
      l = order[o]; w = ws[k]
      printf "| %s | %s | %d | %.1f | %.1f | %.2f | %.0f |\n", name[l], w,
             m(l, w, "rps"), m(l, w, "p50_us"), m(l, w, "p99_us"),
             m(l, w, "cpu_us_per_req"), m(l, w, "server_core_noise_pct")
    }
  print ""
  printf "Medians of %d runs.\n\n", runs
  pw = m("worker", window, "rps"); pi = m("isolated", window, "rps")
  lw = m("worker", 1, "p50_us"); li = m("isolated", 1, "p50_us")
  print "| target | measured | |"
  print "|---|---:|---|"
  if (pw > 0)
    printf "| isolated echo W=%s req/s ≥ 50%% of the worker-pool echo" \
           " | %.0f%% | %s |\n", window, 100 * pi / pw, verdict(pi >= 0.5 * pw)
  if (lw > 0)
    printf "| isolated echo W=1 p50 latency ≤ 2× the worker-pool echo" \
           " | %.2f× | %s |\n", li / lw, verdict(li <= 2 * lw)
}' "$results"
