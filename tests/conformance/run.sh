#!/usr/bin/env bash
# The official MCP conformance suite against plughost over Streamable HTTP:
#   tests/conformance/run.sh [path/to/plughost]
# Starts plughost with the conformance fixture plugin (bare names) on a free
# loopback port, then runs
#   @modelcontextprotocol/conformance@0.1.16 server --suite all
#   @modelcontextprotocol/conformance@0.2.0-alpha.12 --requirements 2025-11-25
#   @modelcontextprotocol/conformance@0.2.0-alpha.12 --requirements 2026-07-28
# and fails on any failed check (no expected-failures file). With
# --requirements the suite's exit status scores only the scenarios a
# revision requires; we also hold the unscored ones it runs (the tasks-*
# extension, pending scenarios) to zero failed checks, through the Total
# line that counts every check of the run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PLUGHOST=$(realpath "${1:-$ROOT/build/plughost}")
cd "$ROOT"
. scripts/env.sh

node_major() { "$1" -e 'console.log(process.versions.node.split(".")[0])'; }

# Node >= 22 (the suite imports fs.globSync); from npm when the system's is
# older.
if [ -z "${PH_NODE:-}" ] || [ "$(node_major "$PH_NODE")" -lt 22 ]; then
  mkdir -p .deps/npm
  (cd .deps/npm && { [ -f package.json ] || npm init -y >/dev/null; } &&
    npm install --no-audit --no-fund --loglevel=error node@22 >/dev/null)
  PH_NODE=$ROOT/.deps/npm/node_modules/.bin/node
fi
export PATH=$(dirname "$PH_NODE"):$PATH

for v in 0.1.16 0.2.0-alpha.12; do
  d=.deps/conformance-$v
  if [ ! -f $d/.installed ]; then
    mkdir -p $d
    (cd $d && { [ -f package.json ] || npm init -y >/dev/null; } &&
      npm install --no-audit --no-fund --loglevel=error \
        @modelcontextprotocol/conformance@$v >/dev/null && touch .installed)
  fi
done

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The shipped config, with the fixture plugins of the build under test.
plugins=$(dirname "$PLUGHOST")/tests/plugins
sed "s#\"build/tests/plugins\"#\"$plugins\"#" tests/conformance/plughost.json \
  >"$work/plughost.json"
port=$("$PH_NODE" -e 'const s=require("net").createServer();
  s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
"$PLUGHOST" --config "$work/plughost.json" --listen "127.0.0.1:$port" \
  2>"$work/plughost.log" &
server_pid=$!
url=http://127.0.0.1:$port/mcp
for _ in $(seq 1 100); do
  if "$PH_NODE" -e "fetch('http://127.0.0.1:$port/ready').then(r=>
      process.exit(r.ok?0:1),()=>process.exit(1))"; then
    break
  fi
  sleep 0.1
done

status=0
run() { # name, dir, args...
  local name=$1 dir=$2 out=$work/$1.out rc=0
  shift 2
  echo "conformance: $name"
  (cd "$dir" && "$PH_NODE" node_modules/@modelcontextprotocol/conformance/dist/index.js \
    server --url "$url" "$@") >"$out" 2>&1 || rc=$?
  sed -n '/=== SUMMARY ===/,$p' "$out"
  if [ "$rc" != 0 ]; then
    echo "conformance: $name FAILED (exit $rc)"
    status=1
  fi
  echo "$name" >>"$work/ran"
}
run "0.1.16 --suite all" .deps/conformance-0.1.16 --suite all
grep -q '^Total: [0-9]* passed, 0 failed' "$work/0.1.16 --suite all.out" ||
  status=1
run "0.2.0-alpha.12 --requirements 2025-11-25" \
  .deps/conformance-0.2.0-alpha.12 --requirements 2025-11-25
grep -q '^Total: [0-9]* passed, 0 failed' \
  "$work/0.2.0-alpha.12 --requirements 2025-11-25.out" || status=1
run "0.2.0-alpha.12 --requirements 2026-07-28" \
  .deps/conformance-0.2.0-alpha.12 --requirements 2026-07-28
grep -q '^Total: [0-9]* passed, 0 failed' \
  "$work/0.2.0-alpha.12 --requirements 2026-07-28.out" || status=1

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "conformance: plughost died during the run"
  status=1
fi
if [ "$status" != 0 ]; then
  echo "conformance: FAILED; plughost log:"
  tail -50 "$work/plughost.log"
fi
exit $status
