#!/usr/bin/env bash
# The whole test suite: builds (or reuses) the control plane binaries, then runs every test,
# unit and end-to-end, against a real etcd, kube-apiserver and cert-manager; then the node
# tests (scripts/test-node.sh: Ferrum's Helm chart running as pods on a real node; needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

. scripts/prereqs.sh
echo "== control plane binaries (cold build: ~20 min on 2 cores; warm: instant)" >&2
tools/controlplane/build.sh >/dev/null
echo "== cargo test --workspace" >&2
cargo test --workspace "$@"
echo "== the node tests" >&2
scripts/test-node.sh
