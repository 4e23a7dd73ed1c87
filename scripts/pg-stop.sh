#!/usr/bin/env bash
# pg-stop.sh DIR: stop the cluster pg-start.sh made in DIR and delete DIR.
# Safe in a trap: a missing, empty or half-made DIR is fine, and it never
# fails. Refuses to delete anything that does not look like pg-start's.
dir=${1:-${PH_PG_DIR:-}}
[ -n "$dir" ] && [ -d "$dir" ] || exit 0
case "$(basename "$dir")" in
ph-pg.*) ;;
*)
  echo "pg-stop: $dir is not a pg-start directory; leaving it" >&2
  exit 0
  ;;
esac
bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -f "$dir/data/postmaster.pid" ] && [ -x "$bin/pg_ctl" ]; then
  run=()
  [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres --)
  "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 20 stop \
    >/dev/null 2>&1 ||
    kill -9 "$(head -n 1 "$dir/data/postmaster.pid")" 2>/dev/null || true
fi
rm -rf "$dir"
exit 0
