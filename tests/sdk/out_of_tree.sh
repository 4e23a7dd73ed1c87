#!/bin/sh
# out_of_tree.sh BUILD_DIR: install the SDK from BUILD_DIR into a temporary
# prefix, build tests/sdk/hello.c from another temporary directory with only
# what pkg-config reports, and check the result is a loadable plugin. When
# BUILD_DIR holds the host binary, also load hello.so into it over stdio.
set -eu

build=$(cd "${1:?usage: out_of_tree.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ph-sdk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
  echo "out_of_tree: $*" >&2
  exit 1
}

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }
test -f "$tmp/prefix/include/plughost.h" || fail "plughost.h not installed"
test -f "$tmp/prefix/lib/libplughost_sdk.a" || fail "SDK library not installed"

export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
flags=$(pkg-config --cflags --libs plughost) || fail "pkg-config failed"
# A .pc file that names the configure-time prefix instead of where it was
# installed would build against some other copy of the SDK, or none; a
# relocatable one (prefix=${pcfiledir}/../..) resolves into $tmp/prefix.
want=$(cd "$tmp/prefix/include" && pwd -P)
found=
for flag in $flags; do
  case "$flag" in
  -I*)
    dir=$(cd "${flag#-I}" 2>/dev/null && pwd -P) || continue
    test "$dir" = "$want" && found=yes
    ;;
  esac
done
test -n "$found" ||
  fail "plughost.pc does not point into the install prefix: $flags"

# Build from an unrelated directory so nothing in the source tree is found.
mkdir "$tmp/work"
cp "$src/hello.c" "$tmp/work/"
cd "$tmp/work"
# $flags is split on purpose: it is a list of compiler arguments.
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror -shared -o hello.so hello.c $flags ||
  fail "building hello.c against the installed SDK failed"

nm -D --defined-only hello.so | grep -q ' T ph_plugin_entry$' ||
  fail "hello.so does not export ph_plugin_entry"
leaked=$(nm -D --defined-only hello.so | awk '$3 ~ /^ph_/ && \
  $3 != "ph_plugin_entry" { print $3 }')
test -z "$leaked" || fail "hello.so exports SDK internals: $leaked"

if [ -x "$build/plughost" ]; then
  mkdir plugins cache
  cp hello.so plugins/
  cat >config.json <<JSON
{"plugin_dir": "plugins", "cache_dir": "cache",
 "departments": {"default": {"plugins": [{"plugin": "hello"}]}}}
JSON
  # stdin stays open for a moment so the call finishes before EOF.
  {
    echo '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{'\
'"protocolVersion":"2025-11-25","capabilities":{},'\
'"clientInfo":{"name":"out_of_tree","version":"1"}}}'
    echo '{"jsonrpc":"2.0","method":"notifications/initialized"}'
    echo '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{'\
'"name":"hello_greet","arguments":{}}}'
    sleep 2
  } | timeout 20 "$build/plughost" --config config.json --stdio \
    >out.txt 2>err.txt || true
  grep -q 'Hello from outside the tree' out.txt || {
    cat out.txt err.txt >&2
    fail "the host did not serve hello_greet from hello.so"
  }
fi
echo "out_of_tree: ok"
