#!/bin/sh
# run.sh: the full reload soak against an existing build. Builds nothing.
#
#   tests/soak/run.sh [--build DIR] [--reloads N] [--interval-ms N]
#                     [--valgrind]
#
# --build DIR   a configured and built tree (default: $PH_BUILD_DIR, else
#               ./build); an ASan/UBSan tree works the same way.
# --reloads N   reloads to perform (default 1000; 50 under --valgrind).
# --valgrind    run the host under valgrind (memcheck): any error or
#               definite leak fails the run. Slow, hence fewer reloads.
#
# The driver keeps 32 calls in flight against two plugins while it installs
# the other build of both and sends SIGHUP, N times; see soak.c.
set -eu

build=${PH_BUILD_DIR:-build}
reloads=
interval=2
valgrind=0
while [ $# -gt 0 ]; do
  case $1 in
  --build) build=$2; shift 2 ;;
  --reloads) reloads=$2; shift 2 ;;
  --interval-ms) interval=$2; shift 2 ;;
  --valgrind) valgrind=1; shift ;;
  -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
  *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

driver=$build/tests/soak/soak
if [ ! -x "$driver" ] || [ ! -x "$build/plughost" ]; then
  echo "run.sh: no $driver or $build/plughost; build first" >&2
  exit 2
fi

# Under ASan, RSS is not a leak signal: every dlopen at a new address
# touches fresh shadow memory, and freed blocks sit in quarantine. There the
# leak check at exit (a non-zero exit status) catches leaks instead.
slack=8192
if nm "$build/plughost" 2>/dev/null | grep -q __asan_init; then
  echo "run.sh: ASan build: RSS is reported, not checked; LSan checks leaks"
  slack=1048576
fi
ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=4:detect_leaks=1}
export ASAN_OPTIONS

if [ "$valgrind" = 1 ]; then
  log=$(mktemp /tmp/ph-soak-valgrind-XXXXXX.log)
  echo "run.sh: valgrind log in $log"
  set +e
  "$driver" --host "$build/plughost" --fixtures "$build/tests/plugins" \
    --reloads "${reloads:-50}" --interval-ms "$interval" \
    --exit-timeout-ms 300000 --rss-slack-kib 65536 \
    --wrap valgrind --wrap --error-exitcode=99 --wrap --leak-check=full \
    --wrap --errors-for-leak-kinds=definite --wrap --log-file="$log"
  rc=$?
  set -e
  grep -E "ERROR SUMMARY|definitely lost|indirectly lost" "$log" || true
  exit $rc
fi
exec "$driver" --host "$build/plughost" --fixtures "$build/tests/plugins" \
  --reloads "${reloads:-1000}" --interval-ms "$interval" \
  --rss-slack-kib "$slack"
