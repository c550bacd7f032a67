#!/usr/bin/env bash
# Builds HashiCorp Vault from the Go module proxy (no prebuilt binary downloads are reachable
# here) and caches the binary. Only the benchmark uses it (bench/vault.ts); CI does not.
# Usage: .ci/install-vault.sh   (prints the binary path on its last line; a cold build takes
# about 16-20 minutes on 2 cores, a cached one returns at once)
#
# How: `go mod download` the Vault module, copy it to a writable temp dir, and build `.`
# there (`go install …@v` is refused because Vault's go.mod has replace directives). The copy is
# adjusted programmatically; no Vault code and no patch file lives in this repository:
#   1. go.mod replaces github.com/hashicorp/vault/api, api/auth/{approle,kubernetes,userpass}
#      and sdk with nested folders (./api, ./sdk, ...) that the module zip leaves out. We drop
#      those replaces and build against the published versions go.mod requires
#      (api v1.22.0, sdk v0.21.0). The proxy refuses sdk v0.21.1; v0.24.0 breaks more.
#   2. The published sdk v0.21.0 differs from Vault's release branch in two signatures, fixed
#      by two small compatibility edits away from the encrypt/decrypt path:
#      a. framework.Backend.ActivationFunc takes a third argument (string) in the sdk:
#         IdentityStore.activateDeduplication gains an ignored `_ string` parameter
#         (vault/identity_store_util.go) and its one caller passes "" as that argument
#         (vault/logical_system_activation_flags.go).
#      b. keysutil.LockManager.RestorePolicy returns only an error in the sdk: the transit
#         restore handler (builtin/logical/transit/path_restore.go, `POST transit/restore`,
#         not used by the bench) takes the key name it was given instead of the returned one;
#         it only feeds an observation record.
#   Each edit is checked: if a pattern no longer matches, the script stops with a clear error.
set -euo pipefail
VAULT_VERSION="${VAULT_VERSION:-v1.21.4}"
CACHE="${KMS_TOOLS_CACHE:-$HOME/.cache/kms-tools}"
BIN="$CACHE/vault-$VAULT_VERSION"
die() { echo "install-vault: $*" >&2; exit 1; }
if [ -x "$BIN" ] && "$BIN" version >/dev/null 2>&1; then
  echo "$BIN"; exit 0
fi
command -v go >/dev/null || die "Go is required to build Vault (apt-get install golang, or a Go toolchain on PATH)"
mkdir -p "$CACHE" || die "cannot create cache dir $CACHE"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
json=$(go mod download -json "github.com/hashicorp/vault@$VAULT_VERSION") \
  || die "go mod download github.com/hashicorp/vault@$VAULT_VERSION failed: $json"
dir=$(printf '%s\n' "$json" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || die "go mod download gave no Dir for $VAULT_VERSION: $json"
work=$(mktemp -d)
trap 'rm -f "$BIN.tmp"; chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
echo "install-vault: building Vault $VAULT_VERSION in $work (takes a while)" >&2
cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
cd "$work/src"

# 1. Drop the replaces that point at folders the module zip does not contain.
for m in api api/auth/approle api/auth/kubernetes api/auth/userpass sdk; do
  grep -q "^replace github.com/hashicorp/vault/$m => ./$m\$" go.mod \
    || die "go.mod has no 'replace github.com/hashicorp/vault/$m => ./$m' (Vault changed; update this script)"
  go mod edit -dropreplace "github.com/hashicorp/vault/$m"
done
echo "install-vault: building against $(go list -m github.com/hashicorp/vault/api github.com/hashicorp/vault/sdk | tr '\n' ' ')" >&2

# edit FILE SED-EXPR CHECK-PATTERN: apply a sed edit and require CHECK-PATTERN afterwards.
edit() {
  local file=$1 expr=$2 check=$3
  [ -f "$file" ] || die "$file not found (Vault changed; update this script)"
  sed -i -e "$expr" "$file"
  grep -qF -- "$check" "$file" || die "compatibility edit did not apply to $file (Vault changed; update this script)"
}
# 2a. ActivationFunc(ctx, req, string) in sdk v0.21.0.
edit vault/identity_store_util.go \
  's/^func (i \*IdentityStore) activateDeduplication(ctx context.Context, req \*logical.Request) error {$/func (i *IdentityStore) activateDeduplication(ctx context.Context, req *logical.Request, _ string) error {/' \
  'activateDeduplication(ctx context.Context, req *logical.Request, _ string) error {'
edit vault/logical_system_activation_flags.go \
  's/b\.idStoreBackend\.ActivationFunc(ctx, nil)/b.idStoreBackend.ActivationFunc(ctx, nil, "")/' \
  'b.idStoreBackend.ActivationFunc(ctx, nil, "")'
# 2b. RestorePolicy(...) error in sdk v0.21.0.
edit builtin/logical/transit/path_restore.go \
  's/restoredKeyName, err := b\.lm\.RestorePolicy(ctx, req\.Storage, keyName, backupB64, force)/restoredKeyName, err := keyName, b.lm.RestorePolicy(ctx, req.Storage, keyName, backupB64, force)/' \
  'restoredKeyName, err := keyName, b.lm.RestorePolicy('

start=$(date +%s)
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN.tmp" . \
  || die "go build failed (see the compiler output above)"
mv "$BIN.tmp" "$BIN"
echo "install-vault: built in $(( $(date +%s) - start )) s" >&2
"$BIN" version >&2
echo "$BIN"
