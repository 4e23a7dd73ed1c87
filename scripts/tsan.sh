#!/usr/bin/env bash
# tsan.sh: the ThreadSanitizer pass. Builds the host, its plugins and the
# fixtures with -fsanitize=thread (build-tsan), then runs the integration
# and soak tests against that binary, so the worker pools, the completion
# queue, reload and the database plugin's threads run under TSan with real
# clients. Every host process the tests start writes what TSan finds to
# its own file; the pass fails if any report exists, and prints them.
#
# The unit tests are left out: they run the host's code inside Criterion,
# which cannot start under TSan (upstream issue #274). No suppressions:
# tests/tsan.supp, if it ever exists, must say why each entry is false.
#
# Usage: scripts/tsan.sh   (scripts/test.sh runs it; it needs the
# PostgreSQL cluster the caller started, PH_TEST_PG_URL, or starts one)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/env.sh

pg_started=0
reports=$(mktemp -d)
cleanup() {
  if [ "$pg_started" = 1 ]; then scripts/pg-stop.sh "$PH_PG_DIR" || true; fi
  rm -rf "$reports"
}
trap cleanup EXIT
if [ -z "${PH_TEST_PG_URL:-}" ] && [ -x scripts/pg-start.sh ]; then
  eval "$(scripts/pg-start.sh)"
  pg_started=1
fi

# RelWithDebInfo: TSan costs 5-15x already; -O0 would double it.
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPH_WERROR=ON \
  -DPH_TSAN=ON >/dev/null
cmake --build build-tsan -j"$(nproc)" >/dev/null

status=0
supp=""
if [ -f tests/tsan.supp ]; then supp=" suppressions=$ROOT/tests/tsan.supp"; fi
(cd build-tsan && TSAN_OPTIONS="log_path=$reports/tsan halt_on_error=0 \
second_deadlock_stack=1$supp" \
  ctest --output-on-failure -j2 -L 'integration|soak' --timeout 900) ||
  status=1

# The crashy fixture segfaults on purpose (test_isolation: in the host,
# which must die, and in a runner, which must be restarted): TSan writes a
# report for that signal like any other. A report whose every finding is
# that SEGV in tests/plugins/crashy.c is the test doing its job; any other
# finding, in the same file or not, fails the pass.
expected_crash() {
  ! grep '^SUMMARY: ThreadSanitizer:' "$1" |
    grep -qv 'SUMMARY: ThreadSanitizer: SEGV .*/tests/plugins/crashy\.c:'
}
found=0
for f in "$reports"/tsan.*; do
  [ -e "$f" ] || continue
  if expected_crash "$f"; then continue; fi
  found=$((found + 1))
  echo "== $f" >&2
  cat "$f" >&2
done
if [ "$found" -gt 0 ]; then
  echo "tsan: $found process(es) reported" >&2
  status=1
fi
if [ "$status" = 0 ]; then echo "tsan: no reports"; else echo "tsan: FAILED"; fi
exit $status
