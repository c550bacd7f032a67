#!/usr/bin/env bash
# Builds OpenTofu from the Go module proxy (no prebuilt binary downloads are reachable here)
# and caches the binary. `go install …@v` is refused because OpenTofu's go.mod has a replace
# directive, so we build inside a writable copy of the downloaded module.
# Usage: .ci/install-tofu.sh [BIN_DIR]   (prints the binary path on its last line)
set -euo pipefail
TOFU_VERSION="${TOFU_VERSION:-v1.10.10}"
CACHE="${KMS_TOOLS_CACHE:-$HOME/.cache/kms-tools}"
BIN="$CACHE/tofu-$TOFU_VERSION"
if [ -x "$BIN" ] && "$BIN" version >/dev/null 2>&1; then
  echo "$BIN"; exit 0
fi
command -v go >/dev/null || { echo "install-tofu: Go is required to build OpenTofu" >&2; exit 1; }
mkdir -p "$CACHE"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
dir=$(go mod download -json "github.com/opentofu/opentofu@$TOFU_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "install-tofu: go mod download gave no Dir for $TOFU_VERSION" >&2; exit 1; }
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
( cd "$work/src" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" -o "$BIN.tmp" ./cmd/tofu )
mv "$BIN.tmp" "$BIN"
"$BIN" version >&2
echo "$BIN"
