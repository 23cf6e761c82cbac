#!/usr/bin/env bash
# The issuance benchmark (issue 5): Ferrum against cert-manager's CA issuer and the API-write
# floor, each alone on the same local control plane. Not a test.
#
#   scripts/bench.sh [--count N] [any other `ferrum-bench run` flag]
#
# Builds the release binaries, makes sure the control plane binaries exist, runs
#   target/release/ferrum-bench run --count N ...
# (table on stdout, CSVs under target/bench/), then draws target/bench/issuance-N.png with
# scripts/bench_plot.py (installs matplotlib from Debian's packages, or with pip, if missing).
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
# The plot needs matplotlib: use a Python that has it, else install it (pip, or Debian's package).
plot_python=""
for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import matplotlib' 2>/dev/null; then plot_python=$py; break; fi
done
if [[ -z $plot_python ]]; then
    echo "== installing matplotlib for the plot" >&2
    if python3 -m pip install --quiet matplotlib >/dev/null 2>&1; then
        plot_python=python3
    elif [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq python3-matplotlib >/dev/null
        plot_python=/usr/bin/python3
    else
        echo "cannot install matplotlib: pip and apt-get failed; the tables and CSVs are above" >&2
        exit 1
    fi
fi
"$plot_python" scripts/bench_plot.py "$csv" "$png"
echo "plot: $png" >&2
