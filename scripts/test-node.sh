#!/usr/bin/env bash
# The node tests (issue 14): Ferrum's Helm chart installed and running as pods on a real node
# (containerd, runc, kubelet, kube-proxy, kube-scheduler, kube-controller-manager) next to the
# test control plane, its image built here from the release binary. Needs root. Installs the
# node's Debian packages, builds the node's binaries and the release binary, then runs
# crates/ferrum-issuer/tests/node.rs (one at a time: one node runs per machine).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

. scripts/prereqs.sh
. scripts/node-prereqs.sh
echo "== control plane and node binaries (warm: instant)" >&2
tools/controlplane/build.sh --node >/dev/null
echo "== the release binary the image is built from" >&2
cargo build --release --locked -p ferrum-issuer --bin ferrum-issuer
echo "== cargo test --test node" >&2
cargo test -p ferrum-issuer --test node -- --ignored --nocapture --test-threads=1 "$@"
