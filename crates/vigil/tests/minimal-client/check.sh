#!/usr/bin/env bash
# Builds and runs the client of vigil with `default-features = false` in
# this directory, as a crate outside the workspace would depend on vigil,
# and fails if its normal dependencies include a crate that only vigil's
# features should bring.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$here/Cargo.toml" "$here/src" "$work/"
sed -i "s|path = \"../..\"|path = \"$root/crates/vigil\"|" "$work/Cargo.toml"
# The workspace's lock file: the same versions, resolved without the network.
cp "$root/Cargo.lock" "$work/Cargo.lock"
export CARGO_TARGET_DIR="$root/target"

cargo run --quiet --offline --manifest-path "$work/Cargo.toml"
tree="$(cargo tree --offline --manifest-path "$work/Cargo.toml" -e normal --prefix none)"
status=0
for crate in hyper hyper-util tokio regex serde_yaml_ng toml moka reqwest sysinfo axum tower; do
  if grep -q "^$crate v" <<<"$tree"; then
    echo "check.sh: vigil without default features pulls in $crate:" >&2
    cargo tree --offline --manifest-path "$work/Cargo.toml" -e normal -i "$crate" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "check.sh: $(sort -u <<<"$tree" | wc -l) crates, none of the heavy ones"
exit "$status"
