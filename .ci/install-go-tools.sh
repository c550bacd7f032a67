#!/usr/bin/env bash
# Builds the Go tools the CI matrix, the docs and the bench need from the Go module proxy (no
# download site for prebuilt binaries is reachable here) and caches each binary under
# ~/.cache/kms-tools. A cached binary that runs is reused, so a warm run costs nothing.
#
#   .ci/install-go-tools.sh tofu v1.12.6         OpenTofu (built inside a writable copy of the module:
#                                                `go install` refuses its go.mod replace directive)
#   .ci/install-go-tools.sh terraform v1.5.7     Terraform (1.5.7 is the last MPL release; later ones
#                                                use local-path replaces the proxy does not ship)
#   .ci/install-go-tools.sh tfplugindocs v0.24.0 github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs
#   .ci/install-go-tools.sh peer                 bench/peer: the minimal terraform-plugin-framework
#                                                provider the bench compares against
#
# Prints the binary path on its last line.
set -euo pipefail
CACHE="${KMS_TOOLS_CACHE:-$HOME/.cache/kms-tools}"
mkdir -p "$CACHE"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS=-mod=mod CGO_ENABLED=0
command -v go >/dev/null || { echo "install-go-tools: Go is required" >&2; exit 1; }
here="$(cd "$(dirname "$0")/.." && pwd)"

runs() { [ -x "$1" ] && "$1" "${@:2}" >/dev/null 2>&1; }

# Builds package $3 of module $1@$2 inside a writable copy of the module into $4.
build_in_module() {
  local module=$1 version=$2 pkg=$3 out=$4 ldflags=$5 dir work
  dir=$(go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "install-go-tools: go mod download gave no Dir for $module@$version" >&2; exit 1; }
  work=$(mktemp -d)
  cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
  ( cd "$work/src" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg" ) || { chmod -R u+w "$work"; rm -rf "$work"; exit 1; }
  chmod -R u+w "$work"; rm -rf "$work"
  mv "$out.tmp" "$out"
}

tool=${1:?usage: install-go-tools.sh tofu|terraform|tfplugindocs|peer [VERSION]}
case "$tool" in
  tofu)
    version=${2:-v1.10.10}; bin="$CACHE/tofu-$version"
    runs "$bin" version || build_in_module github.com/opentofu/opentofu "$version" ./cmd/tofu "$bin" \
      "-s -w -X github.com/opentofu/opentofu/version.dev=no"
    ;;
  terraform)
    version=${2:-v1.5.7}; bin="$CACHE/terraform-$version"
    runs "$bin" version || build_in_module github.com/hashicorp/terraform "$version" . "$bin" "-s -w"
    ;;
  tfplugindocs)
    version=${2:-v0.24.0}; bin="$CACHE/tfplugindocs-$version"
    if ! runs "$bin" --help; then
      tmp=$(mktemp -d)
      GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs@$version"
      mv "$tmp/tfplugindocs" "$bin"; rm -rf "$tmp"
    fi
    ;;
  peer)
    # Keyed by the hash of its sources, so an edit rebuilds it.
    sum=$(cat "$here/bench/peer/go.mod" "$here/bench/peer/go.sum" "$here"/bench/peer/*.go | sha256sum | cut -c1-12)
    bin="$CACHE/terraform-provider-kmspeer-$sum"
    if [ ! -x "$bin" ]; then
      ( cd "$here/bench/peer" && go build -trimpath -ldflags "-s -w" -o "$bin.tmp" . )
      mv "$bin.tmp" "$bin"
    fi
    ;;
  *) echo "install-go-tools: unknown tool $tool" >&2; exit 1 ;;
esac
echo "$bin"
