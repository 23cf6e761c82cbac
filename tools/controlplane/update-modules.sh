#!/usr/bin/env bash
# Regenerates the go.mod/go.sum of every wrapper module under modules/ from
# versions.env. Run it after changing a version there, then commit the
# resulting go.mod/go.sum files (build.sh never edits them; it refuses to
# build when a wrapper module disagrees with versions.env).
#
# The kubernetes wrapper needs one replace line per staging module
# (k8s.io/api, k8s.io/client-go, ...): the k8s.io/kubernetes go.mod points
# them at ./staging/src/..., which only exists in a kubernetes checkout. The
# list is read from the go.mod that the module proxy serves for
# k8s.io/kubernetes@KUBERNETES_VERSION, and each one is replaced with its
# published twin v0.X.Y (for kubernetes v1.X.Y).
#
# Usage: tools/controlplane/update-modules.sh [module...]
#        (default: kubernetes etcd helm cmctl cm-runner)
set -euo pipefail
export GOTOOLCHAIN=local

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

# The go directive of every wrapper module. It also sets the default GODEBUG
# values of the binaries, so keep it equal to the go directive of the
# upstream modules (all of them say 1.26.0 for the pinned versions).
GO_DIRECTIVE=1.26.0

header() { # module-name
    printf 'module ferrum/tools/controlplane/modules/%s\n\ngo %s\n' "$1" "$GO_DIRECTIVE"
}

kubernetes_replaces() {
    local gomod staging_version
    gomod="$(cd / && GOFLAGS='' go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
        sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [[ -f "$gomod" ]] || { echo "cannot find the go.mod of k8s.io/kubernetes@$KUBERNETES_VERSION" >&2; exit 1; }
    staging_version="v0.${KUBERNETES_VERSION#v1.}"
    # Staging modules: replaced with ./staging/... upstream AND required by
    # k8s.io/kubernetes (sample-cli-plugin and sample-controller are replaced
    # upstream but not required, and the proxy does not serve all of them).
    awk -v ver="$staging_version" '
        /^require[[:space:]]*\(/ { inreq = 1; next }
        /^replace[[:space:]]*\(/ { inrep = 1; next }
        /^\)/ { inreq = 0; inrep = 0; next }
        inreq && $2 == "v0.0.0" { required[$1] = 1 }
        inrep && $2 == "=>" && $3 ~ /^\.\/staging\// { staged[++n] = $1 }
        END {
            print "replace ("
            for (i = 1; i <= n; i++) if (staged[i] in required) printf "\t%s => %s %s\n", staged[i], staged[i], ver
            print ")"
        }' "$gomod"
}

write_gomod() { # dir
    local dir="$1" name
    name="$(basename "$dir")"
    case "$name" in
    kubernetes)
        { header "$name"; printf '\nrequire k8s.io/kubernetes %s\n\n' "$KUBERNETES_VERSION"; kubernetes_replaces; } >"$dir/go.mod" ;;
    etcd)
        { header "$name"; printf '\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION"; } >"$dir/go.mod" ;;
    helm)
        { header "$name"; printf '\nrequire helm.sh/helm/v3 %s\n' "$HELM_VERSION"; } >"$dir/go.mod" ;;
    cmctl)
        { header "$name"; printf '\nrequire github.com/cert-manager/cmctl/v2 %s\n' "$CMCTL_VERSION"; } >"$dir/go.mod" ;;
    cm-runner)
        { header "$name"; printf '\nrequire github.com/cert-manager/cert-manager %s\n' "$CERT_MANAGER_VERSION"; } >"$dir/go.mod" ;;
    *)
        echo "unknown wrapper module: $name" >&2; exit 1 ;;
    esac
    rm -f "$dir/go.sum"
    echo "tidying modules/$name ..." >&2
    (cd "$dir" && go mod tidy)
}

modules=("$@")
[[ ${#modules[@]} -gt 0 ]] || modules=(kubernetes etcd helm cmctl cm-runner)
for m in "${modules[@]}"; do
    write_gomod "$here/modules/$m"
done
