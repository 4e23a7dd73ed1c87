#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz with clang (PH_FUZZ: the
# whole tree instrumented, ASan and UBSan) in build-fuzz, and runs them.
#
#   scripts/fuzz.sh --short [harness...]
#       Each harness for FUZZ_SHORT_SECONDS (default 8), two at a time: the
#       test command's run, about a minute in all once built.
#   scripts/fuzz.sh --long [seconds] [harness...]
#       A campaign: each harness for `seconds` (default 1800), two at a
#       time (FUZZ_JOBS to change that). Record what it found in
#       tests/fuzz/README.md.
#
# Harnesses are the names of tests/fuzz/fuzz_<name>.c (all by default).
# Inputs that reach new code are kept in build-fuzz/fuzz-corpus/<name>,
# so each run starts where the last one ended; the checked-in seeds in
# tests/fuzz/corpus/<name> are read, never written. Any crash, sanitizer
# report, leak or input slower than FUZZ_TIMEOUT seconds (default 10)
# fails the run and saves the input as
# build-fuzz/fuzz-artifacts/<name>/{crash,leak,timeout,oom}-<sha1>.
# Reproduce it with build-fuzz/fuzz/fuzz_<name> <file>; once fixed, check
# the input in under tests/fuzz/regressions/<name>/, where the unit test
# unit/fuzz_<name> replays it in every build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=$ROOT/build-fuzz

usage() {
  sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

mode=${1:-}
shift || true
case "$mode" in
  --short) seconds=${FUZZ_SHORT_SECONDS:-8} ;;
  --long)
    seconds=1800
    if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
      seconds=$1
      shift
    fi
    ;;
  *) usage ;;
esac
jobs=${FUZZ_JOBS:-2}
timeout=${FUZZ_TIMEOUT:-10}

if [ $# -gt 0 ]; then
  harnesses=("$@")
else
  harnesses=()
  for f in tests/fuzz/fuzz_*.c; do
    n=${f#tests/fuzz/fuzz_}
    harnesses+=("${n%.c}")
  done
fi

if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz: clang is needed (apt-get install clang)" >&2
  exit 1
fi
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  CC=clang cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPH_FUZZ=ON -DPH_TESTS=OFF -DPH_PLUGINS=OFF >/dev/null
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$BUILD" -j2 --target "${targets[@]}" >/dev/null

# The dictionary of a harness: HTTP for http, JSON for what reads JSON.
dict_for() {
  case "$1" in
    http) echo "$ROOT/tests/fuzz/http.dict" ;;
    jsonrpc | schema | cursor | params) echo "$ROOT/tests/fuzz/json.dict" ;;
    *) echo "" ;;
  esac
}

# Runs one harness for $seconds; its output goes to a log, shown on
# failure. Returns libFuzzer's status.
run_one() {
  local h=$1 corpus=$BUILD/fuzz-corpus/$1 art=$BUILD/fuzz-artifacts/$1
  local log=$BUILD/fuzz-logs/$1.log dict args=()
  mkdir -p "$corpus" "$art" "$(dirname "$log")"
  dict=$(dict_for "$h")
  [ -n "$dict" ] && args+=("-dict=$dict")
  # LeakSanitizer's report on a harness comes from libFuzzer's own leak
  # check after each input; libcriterion's are not ours (tests/lsan.supp).
  if ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$BUILD/fuzz/fuzz_$h" "${args[@]}" -max_total_time="$seconds" \
    -timeout="$timeout" -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$art/" "$corpus" "$ROOT/tests/fuzz/corpus/$h" \
    >"$log" 2>&1; then
    printf 'fuzz: %-14s ok   %s\n' "$h" "$(summary "$log")"
    return 0
  fi
  printf 'fuzz: %-14s FAILED (log %s)\n' "$h" "$log"
  grep -E '^(==[0-9]+==ERROR|SUMMARY|Test unit written|No such)' "$log" |
    head -n 20 >&2 || true
  return 1
}

# "<runs> runs, <coverage> edges, <corpus> inputs" from a libFuzzer log.
summary() {
  local runs cov units
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$1" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$1" | tail -n 1 | cut -d' ' -f2)
  units=$(grep -o 'corp: [0-9]*' "$1" | tail -n 1 | cut -d' ' -f2)
  echo "${runs:-?} runs, ${cov:-?} edges, ${units:-?} inputs"
}

status=0
pids=()
wait_one() {
  if ! wait "${pids[0]}"; then status=1; fi
  pids=("${pids[@]:1}")
}
for h in "${harnesses[@]}"; do
  while [ "${#pids[@]}" -ge "$jobs" ]; do wait_one; done
  run_one "$h" &
  pids+=($!)
done
while [ "${#pids[@]}" -gt 0 ]; do wait_one; done

if [ "$status" = 0 ]; then
  echo "fuzz: ${#harnesses[@]} harnesses, ${seconds}s each: no findings"
else
  echo "fuzz: FAILED; inputs in $BUILD/fuzz-artifacts"
fi
exit $status
