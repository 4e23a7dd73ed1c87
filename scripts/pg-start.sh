#!/usr/bin/env bash
# pg-start.sh: start a throwaway PostgreSQL cluster for tests and benchmarks.
#
#   eval "$(scripts/pg-start.sh)"      # exports PH_TEST_PG_URL and PH_PG_DIR
#   trap 'scripts/pg-stop.sh "$PH_PG_DIR"' EXIT
#
# The cluster lives in a fresh mktemp directory, listens only on 127.0.0.1
# on a free port (and on a Unix socket inside that directory), trusts local
# connections, and is loaded with etc/data/sales.sql unless PH_PG_NO_SEED=1.
# Run as root, it installs Debian's postgresql package when no server is
# found and runs the server as the unprivileged `postgres` user (initdb
# refuses root). Only the export lines go to stdout; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

find_bin() {
  if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ]; then
    echo "$PG_BIN"
    return
  fi
  # The newest installed major version.
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

bin=$(find_bin)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "pg-start: no PostgreSQL server found; install the postgresql" \
      "package (or set PG_BIN)" >&2
    exit 1
  fi
  echo "pg-start: installing postgresql from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql postgresql-client >&2
  bin=$(find_bin)
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/ph-pg.XXXXXX")
run=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$dir"
  run=(runuser -u postgres --)
fi
chmod 700 "$dir"

"${run[@]}" "$bin/initdb" -D "$dir/data" -U plughost --auth=trust \
  --encoding=UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 || {
  cat "$dir/initdb.log" >&2
  exit 1
}

# A free port: try random ones until nothing answers and the server starts.
started=0
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  port=$((20000 + RANDOM % 20000))
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    continue
  fi
  if "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -t 30 -o "-c listen_addresses=127.0.0.1 -p $port -k $dir \
      -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
      -c max_connections=200" start >&2; then
    started=1
    break
  fi
done
if [ "$started" -ne 1 ]; then
  echo "pg-start: the server did not start; log follows" >&2
  cat "$dir/server.log" >&2 || true
  "$here/pg-stop.sh" "$dir"
  exit 1
fi

url="postgresql://plughost@127.0.0.1:$port/plughost"
"$bin/createdb" -h 127.0.0.1 -p "$port" -U plughost plughost >&2
if [ "${PH_PG_NO_SEED:-0}" != 1 ]; then
  "$here/pg-load-seed.sh" "$url" "$root/etc/data/sales.sql" >&2
fi
echo "pg-start: PostgreSQL at $url (data in $dir)" >&2
echo "export PH_TEST_PG_URL='$url'"
echo "export PH_PG_DIR='$dir'"
