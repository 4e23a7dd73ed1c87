#!/usr/bin/env bash
# check.sh BUILD_DIR: `cmake --install` into a temporary prefix puts the
# binaries, the shipped plugins, the SDK, the default config, the sample
# data and the systemd unit where they belong, with their paths filled in;
# systemd-analyze finds nothing to say about the unit; and the installed
# host, with the installed config and plugins, serves db_query over stdio.
set -euo pipefail
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
fail() { echo "install: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/plughost bin/plughost-runner include/plughost.h \
  lib/libplughost_sdk.a lib/pkgconfig/plughost.pc \
  lib/plughost/plugins/database.so lib/plughost/plugins/files.so \
  lib/plughost/plugins/auth.so share/plughost/sales.sql \
  etc/plughost/plughost.json lib/systemd/system/plughost.service; do
  [ -e "$prefix/$f" ] || fail "missing $f"
done
unit=$prefix/lib/systemd/system/plughost.service
grep -q "^ExecStart=$prefix/bin/plughost --config $prefix/etc/plughost/plughost.json$" "$unit" ||
  fail "ExecStart does not name the installed binary and config"
grep -q '^Type=notify$' "$unit" || fail "the unit is not Type=notify"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$unit" || fail "no ExecReload"
for key in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes \
  ReadWritePaths=; do
  grep -q "^$key" "$unit" || fail "the unit lacks $key"
done
if command -v systemd-analyze >/dev/null 2>&1; then
  out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze: $out"
  [ -z "$out" ] || fail "systemd-analyze: $out"
fi
grep -q "\"plugin_dir\": \"$prefix/lib/plughost/plugins\"" \
  "$prefix/etc/plughost/plughost.json" || fail "plugin_dir not filled in"

# The installed host, config and plugins, with the data in a scratch
# directory instead of /var/lib/plughost.
data=$prefix/data
mkdir "$data"
sed "s#/var/lib/plughost#$data#" "$prefix/etc/plughost/plughost.json" \
  >"$prefix/test.json"
"$prefix/bin/plughost" --config "$prefix/test.json" --check >/dev/null 2>&1 ||
  fail "plughost --check refused the installed config"
answer=$(printf '%s\n' \
  '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}' \
  '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
  '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"db_query","arguments":{"sql":"SELECT count(*) AS n FROM regions"}}}' |
  "$prefix/bin/plughost" --config "$prefix/test.json" --stdio 2>/dev/null)
echo "$answer" | grep -q '"id":2,"result"' ||
  fail "the installed host did not answer db_query: $answer"
[ -f "$data/sales.db" ] || fail "the sample database was not seeded"
echo "install: ok"
