#!/usr/bin/env bash
# Prepares a copy of this checkout that runs under another Node (e.g. Node 24 from
# .ci/install-node.sh) without touching the checkout's own node_modules and dist, so one checkout
# can run the suite under both Nodes (.ci/run does: Node 20 here, Node 24 in the copy).
#
# Usage: .ci/node-tree.sh NODE_DIR DEST   (DEST must not exist or be empty; prints DEST last)
#
# What it does, with NODE_DIR/bin first on PATH (so npm, node-gyp, the tests' process.execPath and
# `#!/usr/bin/env node` scripts such as the provider plugin all run that Node):
#   1. copies the checkout's files (git ls-files: tracked and untracked-not-ignored; no
#      node_modules, no dist, no .git) to DEST;
#   2. `npm ci` there with npm_config_nodedir=NODE_DIR, so node-gyp builds pkcs11js (the one
#      native addon; package.json allowScripts approves its install script) against that Node's
#      own headers (NODE_DIR/include/node) instead of downloading headers;
#   3. checks pkcs11js was built for NODE_DIR (build/config.gypi nodedir) and loads under it;
#   4. `npm run build` (tsc) there.
# A copy is used rather than rebuilding pkcs11js in place and switching: nothing in the checkout
# changes, an interrupted run leaves nothing half-switched, and the copy is what a user of that
# Node gets from a fresh `npm ci`.
set -euo pipefail
die() { echo "node-tree: $*" >&2; exit 1; }
[ $# = 2 ] || die "usage: .ci/node-tree.sh NODE_DIR DEST"
NODE_DIR=$(cd "$1" && pwd) || die "no Node directory $1"
DEST=$2
[ -x "$NODE_DIR/bin/node" ] || die "$NODE_DIR/bin/node is missing (run .ci/install-node.sh)"
[ -f "$NODE_DIR/include/node/node.h" ] || die "$NODE_DIR/include/node/node.h is missing: node-gyp needs that Node's headers"
command -v npm >/dev/null || die "npm is required"
SRC=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
[ -z "$(ls -A "$DEST")" ] || die "$DEST is not empty"

cd "$SRC"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Files deleted in the work tree but still tracked are left out.
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -xf - -C "$DEST"
else
  tar --exclude=./node_modules --exclude=./dist --exclude=./.git -cf - . | tar -xf - -C "$DEST"
fi

cd "$DEST"
export PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR"
version=$(node --version)
[ "$(command -v node)" = "$NODE_DIR/bin/node" ] || die "PATH does not start with $NODE_DIR/bin"
echo "node-tree: npm ci under Node $version (npm $(npm --version)), pkcs11js against $NODE_DIR/include/node" >&2
npm ci --no-audit --no-fund >&2 || die "npm ci under Node $version failed"
gypi=node_modules/pkcs11js/build/config.gypi
[ -f "$gypi" ] || die "pkcs11js was not built (no $gypi): its install script did not run"
grep -qF "\"nodedir\": \"$NODE_DIR\"" "$gypi" || die "pkcs11js was built against $(grep -o '"nodedir": "[^"]*"' "$gypi"), not $NODE_DIR"
node -e 'require("pkcs11js")' || die "pkcs11js does not load under Node $version"
npm run build --silent >&2 || die "npm run build under Node $version failed"
echo "$DEST"
