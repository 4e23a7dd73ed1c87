#!/usr/bin/env bash
# Installs what plughost needs on Debian 12 (as root or through sudo), the
# npm packages the tests use into .deps/, and builds everything with CMake.
# Idempotent: a second run only rebuilds what changed.
#   scripts/setup.sh [--no-npm] [extra cmake -D options...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

APT_PACKAGES="build-essential cmake pkg-config libuv1-dev libcjson-dev
  libsqlite3-dev libpq-dev libcriterion-dev libhttp-parser-dev libssl-dev
  json-schema-test-suite postgresql sqlite3 valgrind libpcre2-dev
  libsodium-dev libcurl4-openssl-dev clang prometheus"
# Node and npm only from Debian when the machine has none of its own (a
# distribution's nodejs conflicts with a node installed some other way).
command -v npm >/dev/null 2>&1 || APT_PACKAGES="$APT_PACKAGES nodejs npm"

npm_wanted=1
cmake_args=()
for a in "$@"; do
  case "$a" in
    --no-npm) npm_wanted=0 ;;
    *) cmake_args+=("$a") ;;
  esac
done

missing=()
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if [ "$npm_wanted" = 1 ]; then
  # Node 22 for the conformance suite and the Inspector (they need >= 22;
  # Debian ships older), plus the official clients and, for test_oidc, a
  # real identity provider (oidc-provider, OpenID Certified), all
  # project-local.
  mkdir -p .deps/npm
  if [ ! -f .deps/npm/.installed-v4 ]; then
    (cd .deps/npm &&
      { [ -f package.json ] || npm init -y >/dev/null; } &&
      npm install --no-audit --no-fund --loglevel=error \
        node@22 @modelcontextprotocol/sdk@1 \
        @modelcontextprotocol/inspector@2.12 oidc-provider@9 >/dev/null &&
      touch .installed-v4)
  fi
  for v in 0.1.16 0.2.0-alpha.12; do
    d=.deps/conformance-$v
    if [ ! -f $d/.installed ]; then
      mkdir -p $d
      (cd $d && { [ -f package.json ] || npm init -y >/dev/null; } &&
        npm install --no-audit --no-fund --loglevel=error \
          @modelcontextprotocol/conformance@$v >/dev/null && touch .installed)
    fi
  done
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "${cmake_args[@]}" \
  >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built $ROOT/build/plughost"
