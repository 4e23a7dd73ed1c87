# Sourced by the scripts: where the project-local tools live.
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export PH_NODE_MODULES=$ROOT/.deps/npm/node_modules
if [ -x "$PH_NODE_MODULES/.bin/node" ]; then
  export PH_NODE=$PH_NODE_MODULES/.bin/node
else
  export PH_NODE=$(command -v node || true)
fi
