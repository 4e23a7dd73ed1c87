#!/usr/bin/env bash
# The whole test suite, from a fresh clone: setup, a -Werror build, a
# throwaway PostgreSQL, unit and integration tests, the out-of-tree SDK
# build, the official conformance suite, the unit and integration tests
# again under ASan and UBSan, and a short run of every fuzz harness (the
# ThreadSanitizer pass is scripts/tsan.sh, on demand: see README). Exits
# non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/setup.sh -DPH_WERROR=ON
. scripts/env.sh

pg_started=0
cleanup() {
  if [ "$pg_started" = 1 ]; then scripts/pg-stop.sh "$PH_PG_DIR" || true; fi
}
trap cleanup EXIT
if [ -x scripts/pg-start.sh ]; then
  eval "$(scripts/pg-start.sh)"
  pg_started=1
fi

status=0
(cd build && ctest --output-on-failure -j2 --timeout 600) || status=1

# The reload soak once under valgrind, with few reloads (the long soak is
# tests/soak/run.sh, run on demand).
tests/soak/run.sh --build build --valgrind --reloads 30 || status=1

if [ -x tests/conformance/run.sh ]; then
  tests/conformance/run.sh build/plughost || status=1
fi

# Sanitizers: the same unit, integration and short soak tests on an
# ASan+UBSan build.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPH_WERROR=ON \
  -DPH_ASAN=ON -DPH_UBSAN=ON >/dev/null
cmake --build build-asan -j"$(nproc)" >/dev/null
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 \
  LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp \
  ctest --output-on-failure -j2 -L 'unit|integration|soak' --timeout 600) ||
  status=1

# Each libFuzzer harness for a few seconds (the long campaign is
# scripts/fuzz.sh --long, see tests/fuzz/README.md).
scripts/fuzz.sh --short || status=1

if [ "$status" = 0 ]; then echo "test: all passed"; else echo "test: FAILED"; fi
exit $status
