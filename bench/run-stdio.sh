#!/usr/bin/env bash
# run-stdio.sh: the stdio benchmark (issue 2). Builds the host and the
# bench programs, installs the official TypeScript SDK into bench/
# (node_modules, git-ignored), then measures four servers with bench/loadgen
# in one run: plughost with the inline echo tool, plughost with the
# worker-pool echo tool, the TypeScript SDK with the same tool, and the
# floor (bench/floor.c). Each measurement is repeated RUNS times, servers
# interleaved so drifting noise hits them alike; the table shows medians.
#
# Usage: bench/run-stdio.sh            (from anywhere)
# Environment: BUILD_DIR (default build-bench), RUNS (5), N_PIPELINED
# (100000), N_SEQUENTIAL (20000), WINDOW (32), WARMUP (2000 requests),
# CLIENT_CPU (0), SERVER_CPU (1), MAX_NOISE (10 %), NOISE_ATTEMPTS (5),
# SKIP_BUILD=1 to use the binaries already in BUILD_DIR.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build-bench}
runs=${RUNS:-5}
n_pipelined=${N_PIPELINED:-100000}
n_sequential=${N_SEQUENTIAL:-20000}
window=${WINDOW:-32}
warmup=${WARMUP:-2000}
client_cpu=${CLIENT_CPU:-0}
server_cpu=${SERVER_CPU:-1}
max_noise=${MAX_NOISE:-10}
noise_attempts=${NOISE_ATTEMPTS:-5}

# The fixture plugins of the "every fixture" config below.
fixture_plugins=(echo ok conformance provider consumer slow hang)
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  # Only what the bench runs, so work in progress elsewhere in the tree
  # (a test that does not compile yet) does not stop it. Each folder of
  # plugins/ builds a target of its own name.
  targets=(plughost ph_bench_loadgen ph_bench_floor)
  for p in "${fixture_plugins[@]}"; do
    targets+=("fixture_$p")
  done
  for d in plugins/*/; do
    targets+=("$(basename "$d")")
  done
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 --target "${targets[@]}" >/dev/null
fi
if [ ! -d bench/node_modules/@modelcontextprotocol/sdk ]; then
  (cd bench && npm install --no-package-lock --no-audit --no-fund --silent)
fi

loadgen="$root/$build/bench/loadgen"
plughost="$root/$build/plughost"
fixtures="$root/$build/tests/plugins"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The echo rows load echo.so alone, so they show the host, not the other
# fixtures the directory holds.
mkdir "$scratch/echo-only"
cp "$fixtures/echo.so" "$scratch/echo-only/"
cat >"$scratch/echo.json" <<EOF
{"plugin_dir": "$scratch/echo-only",
 "departments": {"default": {"plugins": [
   {"plugin": "echo", "prefix": "echo"}]}}}
EOF
# Every fixture plugin that loads cleanly, for the start-up and idle RSS
# targets; the refused fixtures are still opened and checked at start.
instances=$(printf '{"plugin": "%s"},' "${fixture_plugins[@]}")
cat >"$scratch/fixtures.json" <<EOF
{"plugin_dir": "$fixtures",
 "departments": {"default": {"plugins": [${instances%,}]}}}
EOF
# The default config ("every plugin"), pointed at this build's plugins.
have_default=0
if [ -f etc/plughost.json ]; then
  node -e '
    const fs = require("fs");
    const c = JSON.parse(fs.readFileSync("etc/plughost.json", "utf8"));
    c.plugin_dir = process.argv[1];
    fs.writeFileSync(process.argv[2], JSON.stringify(c));
  ' "$root/$build/plugins" "$scratch/default.json"
  have_default=1
fi

# The raw loadgen lines stay in the build folder for a closer look.
results="$root/$build/bench/run-stdio.results"
: >"$results"

# noise_of LINE: the larger share of either core that went to other work
# during a loadgen run (its *_noise_pct fields).
noise_of() {
  awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "=")
           if (kv[1] ~ /noise_pct$/ && kv[2] + 0 > m) m = kv[2] + 0 } }
       END { print m + 0 }' <<<"$1"
}

# measure LABEL TOOL W N COMMAND...: one loadgen run, its line appended to
# the results. The machine is shared, so a run during which other work
# took more than MAX_NOISE % of either core is tried again, up to
# NOISE_ATTEMPTS times, keeping the quietest; a failed run is reported and
# left out of the medians.
measure() {
  local label=$1 tool=$2 w=$3 n=$4 attempt line noise best="" best_noise=
  local warm=$warmup
  shift 4
  if [ "$n" = 0 ]; then
    warm=0 # A start-up run makes no calls at all.
  fi
  for ((attempt = 1; attempt <= noise_attempts; attempt++)); do
    if ! line=$(taskset -c "$client_cpu" "$loadgen" -m -l "$label" \
      -t "$tool" -w "$w" -n "$n" -W "$warm" -s "$server_cpu" -- "$@"); then
      echo "run-stdio: $label W=$w failed" >&2
      continue
    fi
    noise=$(noise_of "$line")
    if [ -z "$best" ] || awk -v a="$noise" -v b="$best_noise" \
      'BEGIN { exit !(a < b) }'; then
      best=$line
      best_noise=$noise
    fi
    if awk -v a="$noise" -v m="$max_noise" 'BEGIN { exit !(a <= m) }'; then
      break
    fi
    sleep 1
  done
  if [ -n "$best" ]; then
    echo "$best" >>"$results"
  fi
}

servers=(inline worker ts floor)
run_server() {
  local w=$1 n=$2
  case $3 in
  inline)
    measure plughost-inline echo_echo_inline "$w" "$n" \
      "$plughost" --config "$scratch/echo.json" --stdio ;;
  worker)
    measure plughost-worker echo_echo "$w" "$n" \
      "$plughost" --config "$scratch/echo.json" --stdio ;;
  ts)
    measure ts-sdk echo "$w" "$n" node bench/ts-echo-server.mjs ;;
  floor)
    measure floor echo "$w" "$n" "$root/$build/bench/floor" ;;
  esac
}

for ((r = 1; r <= runs; r++)); do
  echo "run-stdio: round $r of $runs" >&2
  for s in "${servers[@]}"; do
    run_server "$window" "$n_pipelined" "$s"
    run_server 1 "$n_sequential" "$s"
  done
  # Start-up and idle RSS only: no calls.
  measure plughost-fixtures echo 1 0 \
    "$plughost" --config "$scratch/fixtures.json" --stdio
  if [ $have_default = 1 ]; then
    measure plughost-default echo 1 0 \
      "$plughost" --config "$scratch/default.json" --stdio
  fi
done

# Medians per label and W, then the table and the targets as ratios.
awk -v window="$window" -v runs="$runs" -v max_noise="$max_noise" \
  -v noise_attempts="$noise_attempts" '
function median(key,   n, i, j, v, a) {
  n = count[key]
  if (n == 0)
    return ""
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
function mib(kib) {
  return kib == "" ? "n/a" : sprintf("%.1f", kib / 1024)
}
function verdict(ok) {
  return ok ? "met" : "**missed**"
}
{
  label = ""; w = ""; noise = 0
  for (i = 1; i <= NF; i++) {
    split($i, kv, "=")
    if (kv[1] == "label") label = kv[2]
    else if (kv[1] == "w") w = kv[2]
  }
  for (i = 1; i <= NF; i++) {
    split($i, kv, "=")
    key = label SUBSEP w SUBSEP kv[1]
    vals[key, ++count[key]] = kv[2]
    if (kv[1] ~ /noise_pct$/ && kv[2] + 0 > noise)
      noise = kv[2] + 0
  }
  key = label SUBSEP w SUBSEP "noise"
  vals[key, ++count[key]] = noise
  if ($0 !~ / n=0 /) {
    lines++
    if (noise > max_noise)
      noisy++
  }
  seen[label] = 1
}
END {
  name["floor"] = "floor (cJSON parse + canned reply)"
  name["plughost-inline"] = "plughost, inline echo"
  name["plughost-worker"] = "plughost, worker-pool echo"
  name["ts-sdk"] = "TypeScript SDK, echo"
  order[1] = "floor"; order[2] = "plughost-inline"
  order[3] = "plughost-worker"; order[4] = "ts-sdk"
  print "| server | W | req/s | p50 µs | p99 µs | server CPU µs/req" \
        " | peak RSS MiB | start-up ms | idle RSS MiB | idle anon MiB" \
        " | noise % |"
  print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for (o = 1; o <= 4; o++) {
    l = order[o]
    if (!(l in seen))
      continue
    split(window " 1", ws, " ")
    for (k = 1; k <= 2; k++) {
      w = ws[k]
      printf "| %s | %s | %d | %.1f | %.1f | %.2f | %s | %.2f | %s | %s" \
             " | %.0f |\n",
             name[l], w, m(l, w, "rps"), m(l, w, "p50_us"),
             m(l, w, "p99_us"), m(l, w, "cpu_us_per_req"),
             mib(m(l, w, "peak_rss_kib")), m(l, w, "startup_ms"),
             mib(m(l, w, "idle_rss_kib")), mib(m(l, w, "idle_anon_kib")),
             m(l, w, "noise")
    }
  }
  for (l in seen) {
    if (l !~ /^plughost-(fixtures|default)$/)
      continue
    what = "every loadable fixture plugin"
    if (l == "plughost-default")
      what = "etc/plughost.json"
    printf "| plughost, %s, no calls | - | - | - | - | - | %s | %.2f | %s |" \
           " %s | - |\n",
           what, mib(m(l, 1, "peak_rss_kib")), m(l, 1, "startup_ms"),
           mib(m(l, 1, "idle_rss_kib")), mib(m(l, 1, "idle_anon_kib"))
  }
  print ""
  printf "Medians of %d runs. Noise: the share of either core that went" \
         " to other work during a run; %d of %d runs with calls stayed" \
         " above %s%% after %d attempts.\n\n", runs, noisy, lines,
         max_noise, noise_attempts

  pi = m("plughost-inline", window, "rps")
  pt = m("ts-sdk", window, "rps")
  pf = m("floor", window, "rps")
  ci = m("plughost-inline", window, "cpu_us_per_req")
  ct = m("ts-sdk", window, "cpu_us_per_req")
  li = m("plughost-inline", 1, "p50_us")
  lf = m("floor", 1, "p50_us")
  print "| target | measured | |"
  print "|---|---:|---|"
  if (pt > 0)
    printf "| inline echo W=%s req/s ≥ 3× TypeScript SDK | %.1f× | %s |\n",
           window, pi / pt, verdict(pi >= 3 * pt)
  if (pf > 0)
    printf "| inline echo W=%s req/s ≥ 50%% of floor | %.0f%% | %s |\n",
           window, 100 * pi / pf, verdict(pi >= 0.5 * pf)
  if (ci > 0)
    printf "| server CPU/req ≤ 1/4 of TypeScript SDK (W=%s) | 1/%.1f |" \
           " %s |\n", window, ct / ci, verdict(4 * ci <= ct)
  if (lf > 0)
    printf "| W=1 p50 latency ≤ 1.3× floor | %.2f× | %s |\n",
           li / lf, verdict(li <= 1.3 * lf)
  split("plughost-default plughost-fixtures", boots, " ")
  config["plughost-default"] = "etc/plughost.json"
  config["plughost-fixtures"] = "fixture plugins"
  for (k = 1; k <= 2; k++) {
    b = boots[k]
    if (!(b in seen))
      continue
    su = m(b, 1, "startup_ms")
    ir = m(b, 1, "idle_rss_kib")
    printf "| start to initialize response ≤ 10 ms (%s) | %.2f ms | %s |\n",
           config[b], su, verdict(su <= 10)
    printf "| idle RSS ≤ 8 MiB (%s) | %.1f MiB | %s |\n",
           config[b], ir / 1024, verdict(ir <= 8 * 1024)
  }
}' "$results"
