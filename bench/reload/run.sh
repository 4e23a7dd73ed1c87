#!/bin/sh
# run.sh: the reload benchmark (issue 4). Compiles bench/reload/
# reload_bench.c next to an existing build and runs it against that
# build's host and fixture plugins (the stamp builds come from tests/soak).
#
#   bench/reload/run.sh [--build DIR] [reload_bench options...]
#
# --build DIR defaults to $PH_BUILD_DIR, else ./build. Options after it go
# to the driver: --reloads N (50), --window N (32), --rounds N (3),
# --seconds S (3), --storm-ms N (100). Prints a Markdown table.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${PH_BUILD_DIR:-build}
if [ "${1:-}" = --build ]; then
  build=$2
  shift 2
fi
stamp_b=$build/tests/plugins/stamp/b/stamp.so
if [ ! -x "$build/plughost" ] || [ ! -f "$stamp_b" ]; then
  echo "run.sh: $build has no plughost or stamp fixtures; build it first" >&2
  exit 2
fi
driver=$build/bench/reload_bench
if [ ! -x "$driver" ] || [ "$here/reload_bench.c" -nt "$driver" ]; then
  mkdir -p "$build/bench"
  # shellcheck disable=SC2046
  ${CC:-cc} -std=c11 -O2 -Wall -Wextra -D_GNU_SOURCE \
    $(pkg-config --cflags libcjson) "$here/reload_bench.c" \
    $(pkg-config --libs libcjson) -o "$driver"
fi
exec "$driver" --host "$build/plughost" --fixtures "$build/tests/plugins" "$@"
