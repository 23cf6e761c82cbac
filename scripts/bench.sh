#!/usr/bin/env bash
# The issuance benchmark (issue 5): Ferrum against cert-manager's CA issuer and the API-write
# floor, each alone on the same local control plane. Not a test.
#
#   scripts/bench.sh [--count N] [any other `ferrum-bench run` flag]
#
# Builds the release binaries, makes sure the control plane binaries exist, runs
#   target/release/ferrum-bench run --count N ...
# (table on stdout, CSVs under target/bench/), then draws target/bench/issuance-N.png with
# scripts/bench_plot.py (needs matplotlib: pip install matplotlib).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

count=1000
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --count) count="$2"; shift 2 ;;
        --count=*) count="${1#--count=}"; shift ;;
        *) args+=("$1"); shift ;;
    esac
done

echo "== control plane binaries (cold build: ~20 min on 2 cores; warm: instant)" >&2
tools/controlplane/build.sh >/dev/null
echo "== cargo build --release -p ferrum-issuer -p ferrum-bench" >&2
cargo build --release -p ferrum-issuer -p ferrum-bench
echo "== ferrum-bench run --count $count ${args[*]:-}" >&2
target/release/ferrum-bench run --count "$count" --out-dir target/bench "${args[@]}"

csv="target/bench/issuance-$count.csv"
png="target/bench/issuance-$count.png"
if python3 -c 'import matplotlib' 2>/dev/null; then
    python3 scripts/bench_plot.py "$csv" "$png"
else
    echo "matplotlib is missing: pip install matplotlib, then python3 scripts/bench_plot.py $csv $png" >&2
fi
