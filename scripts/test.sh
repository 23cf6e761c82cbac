#!/usr/bin/env bash
# The whole test suite: builds (or reuses) the control plane binaries, then runs every test,
# unit and end-to-end, against a real etcd, kube-apiserver and cert-manager.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

# The openssl CLI, and libssl-dev with pkg-config: the openssl crate links the system libssl 3
# (issued certificates are validated with it, crates/ferrum/src/x509/verify.rs). Installed when
# missing if we are root with apt-get, as .ci/run does; else said how.
need=()
command -v openssl >/dev/null || need+=(openssl)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"
  else
    echo "missing: ${need[*]}; install them, e.g.: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
echo "== control plane binaries (cold build: ~20 min on 2 cores; warm: instant)" >&2
tools/controlplane/build.sh >/dev/null
echo "== cargo test --workspace" >&2
cargo test --workspace "$@"
