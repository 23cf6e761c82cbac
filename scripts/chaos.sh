#!/usr/bin/env bash
# The leader-kill fault test at scale (issue 9): three Ferrum replicas on the local control
# plane, the leader of the moment SIGKILLed on a fixed clock while requests arrive at 12 a
# second; the test then checks every request Issued, each certificate written exactly once (a
# watch of every request) and no serial twice. Not part of scripts/test.sh (minutes long).
#
#   scripts/chaos.sh [REQUESTS] [KILL_EVERY_MS]     defaults: 1000 3000
#
# Prints the test's own report line ("fault: N leaders killed ...") and its verdict. The
# record of runs is docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
requests=${1:-1000}
kill_every_ms=${2:-3000}
echo "== control plane binaries (cold build: ~20 min on 2 cores; warm: instant)" >&2
tools/controlplane/build.sh >/dev/null
echo "== $requests requests, the leader killed every ${kill_every_ms} ms" >&2
start=$(date +%s)
FERRUM_CHAOS_REQUESTS=$requests FERRUM_CHAOS_KILL_EVERY_MS=$kill_every_ms \
    cargo test -p ferrum-issuer --test e2e -- --exact \
    faults::three_replicas_with_the_leader_killed_every_few_seconds --nocapture 2>&1 |
    grep -E '^fault:|^test |test result|panicked|timed out|written|serial'
echo "== done in $(( $(date +%s) - start )) s" >&2
