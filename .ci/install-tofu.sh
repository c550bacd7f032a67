#!/usr/bin/env bash
# Kept for existing callers: builds OpenTofu $TOFU_VERSION (default v1.10.10) from the Go module
# proxy and caches it, like every Go tool of .ci/install-go-tools.sh. Prints the binary path last.
set -euo pipefail
exec "$(dirname "$0")/install-go-tools.sh" tofu "${TOFU_VERSION:-v1.10.10}"
