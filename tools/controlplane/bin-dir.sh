#!/usr/bin/env bash
# Prints the directory that build.sh builds into, without building:
#   ${FERRUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrum}/controlplane/<key>
# where <key> is every value of versions.env joined with '-', in file order
# (e.g. v1.36.3-v3.6.16-v1.21.2-v2.5.0-v3.22.0-1). An unset or empty
# variable counts as unset. The binaries are in <dir>/bin, the CRDs in
# <dir>/crds, and <dir>/.complete exists once everything is built.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
key="$(sed -n 's/^[A-Za-z_][A-Za-z0-9_]*=//p' "$here/versions.env" | paste -sd- -)"
[[ -n "$key" ]] || { echo "bin-dir.sh: no NAME=value line in $here/versions.env" >&2; exit 1; }
echo "${FERRUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrum}/controlplane/$key"
