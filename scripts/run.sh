#!/usr/bin/env bash
# Installs what is missing, builds, and starts plughost on the embedded
# default configuration (every plugin, SQLite sample data). Extra arguments
# go to plughost, e.g. scripts/run.sh --stdio
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-npm
exec build/plughost --config etc/plughost.json "$@"
