#!/usr/bin/env bash
# check-include-cycles.sh: fails when the modules of host/ include each other
# in a circle. A module is x.c with x.h; it depends on y when x.c or x.h
# includes "y.h". tsort(1) orders the dependencies and names the modules of
# any loop it finds.
#
#   scripts/check-include-cycles.sh [DIR]     (default: host)
set -euo pipefail

dir=${1:-$(cd "$(dirname "$0")/.." && pwd)/host}
edges=$(
  for f in "$dir"/*.c "$dir"/*.h; do
    from=$(basename "${f%.*}")
    sed -n 's/^#include "\([^"]*\)\.h".*/\1/p' "$f" | while read -r to; do
      if [ "$to" != "$from" ] && [ -e "$dir/$to.h" ]; then
        echo "$from $to"
      fi
    done
  done
)
# tsort reports a loop on stderr; some versions still exit 0.
out=$(printf '%s\n' "$edges" | tsort 2>&1 >/dev/null) || true
if [ -n "$out" ]; then
  echo "check-include-cycles: $dir has an include cycle:" >&2
  echo "$out" >&2
  exit 1
fi
echo "check-include-cycles: no cycle among the modules of $dir"
