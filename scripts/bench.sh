#!/usr/bin/env bash
# The issuance benchmark (issues 5 and 9): Ferrum against cert-manager's CA issuer and the
# API-write floor, each alone on the same local control plane, in the arrival and backlog
# scenarios, several repetitions in alternating order. Not a test.
#
#   scripts/bench.sh [--count N] [any other `ferrum-bench run` flag, passed on as given]
#   e.g. scripts/bench.sh --count 10000 --contenders ferrum --scenario backlog --repetitions 1
#        scripts/bench.sh --count 1000 --contenders ferrum --foreign 20000 --foreign-csr-bytes 30000
#
# Builds the release binaries, makes sure the control plane binaries exist, runs
#   target/release/ferrum-bench run --count N --out-dir target/bench ...
# (tables on stdout, CSVs under the out dir), then draws <out dir>/issuance-N[-foreign-K].png
# with scripts/bench_plot.py (installs matplotlib from Debian's packages, or with pip, if
# missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

count=1000
out_dir=target/bench
foreign=0
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --count) count="$2"; shift 2 ;;
        --count=*) count="${1#--count=}"; shift ;;
        --out-dir) out_dir="$2"; shift 2 ;;
        --out-dir=*) out_dir="${1#--out-dir=}"; shift ;;
        # Passed on; it also names the CSVs.
        --foreign) foreign="$2"; args+=("$1" "$2"); shift 2 ;;
        --foreign=*) foreign="${1#--foreign=}"; args+=("$1"); shift ;;
        *) args+=("$1"); shift ;;
    esac
done
stem="issuance-$count"
[[ $foreign == 0 ]] || stem="$stem-foreign-$foreign"

echo "== control plane binaries (cold build: ~20 min on 2 cores; warm: instant)" >&2
tools/controlplane/build.sh >/dev/null
echo "== cargo build --release -p ferrum-issuer -p ferrum-bench" >&2
cargo build --release -p ferrum-issuer -p ferrum-bench
echo "== ferrum-bench run --count $count ${args[*]:-}" >&2
target/release/ferrum-bench run --count "$count" --out-dir "$out_dir" "${args[@]}"

csv="$out_dir/$stem.csv"
png="$out_dir/$stem.png"
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
