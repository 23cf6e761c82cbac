#!/usr/bin/env bash
# Builds the local test control plane from the Go modules pinned in
# versions.env, into a cache directory outside the repo (see bin-dir.sh):
#
#   <dir>/bin/etcd             etcd server (go.etcd.io/etcd/server/v3)
#   <dir>/bin/kube-apiserver   k8s.io/kubernetes/cmd/kube-apiserver
#   <dir>/bin/kubectl          k8s.io/kubernetes/cmd/kubectl
#   <dir>/bin/cm-runner        cert-manager's controllers (modules/cm-runner)
#   <dir>/bin/helm             helm.sh/helm/v3/cmd/helm
#   <dir>/bin/cmctl            github.com/cert-manager/cmctl/v2
#   <dir>/crds/cert-manager.crds.yaml   cert-manager's CRDs, plain YAML
#   <dir>/.complete            written once all of the above exist
#
# With --node, also the node's binaries, from the same wrapper module as
# kube-apiserver (for a node that runs real pods; see README.md here):
#
#   <dir>/bin/kubelet, kube-proxy, kube-scheduler, kube-controller-manager
#   <dir>/.node-complete       written once those exist too
#
# Each item that already exists is skipped; when <dir>/.complete (and, with
# --node, <dir>/.node-complete) exists the script only prints <dir>. Progress
# goes to stderr; stdout gets exactly one line, <dir> (so its last line is
# always the directory).
#
# Needs Go >= the go directive of the wrapper modules (1.26.0) and the Go
# module proxy (or a warm module cache). Never downloads a Go toolchain.
set -euo pipefail

export GOTOOLCHAIN=local
export CGO_ENABLED=0
# Our own flags, not the caller's: go.mod/go.sum must be used as committed.
export GOFLAGS="-mod=readonly -buildvcs=false"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
modules="$here/modules"
# shellcheck source=versions.env
source "$here/versions.env"
dir="$("$here/bin-dir.sh")"
bin="$dir/bin"
crds="$dir/crds"

log() { echo "controlplane: $*" >&2; }

node=false
case "${1:-}" in
    --node) node=true ;;
    "") ;;
    *) log "usage: $0 [--node]"; exit 2 ;;
esac
# done_already: everything asked for is built.
done_already() { [[ -f "$dir/.complete" ]] && { ! $node || [[ -f "$dir/.node-complete" ]]; }; }

if done_already; then
    echo "$dir"
    exit 0
fi

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }
mkdir -p "$bin" "$crds"

# One build at a time per cache directory (parallel test binaries may all
# call this script).
if command -v flock >/dev/null; then
    exec 9>"$dir/.lock"
    if ! flock -n 9; then
        log "another build.sh is building $dir; waiting for it..."
        flock 9
    fi
    if done_already; then
        echo "$dir"
        exit 0
    fi
fi

total_start=$SECONDS

# check_module <wrapper> <module> <expected version>: the committed go.mod of
# a wrapper module must agree with versions.env (update-modules.sh rewrites it).
check_module() {
    local actual
    actual="$(cd "$modules/$1" && go list -m -f '{{.Version}}' "$2")"
    if [[ "$actual" != "$3" ]]; then
        log "modules/$1 requires $2 $actual but versions.env says $3; run tools/controlplane/update-modules.sh $1"
        exit 1
    fi
}

# build <name> <wrapper> <package> <ldflags> [note]
build() {
    local name="$1" wrapper="$2" pkg="$3" ldflags="$4" note="${5:-}" start
    if [[ -x "$bin/$name" ]]; then
        log "$name: already built"
        return
    fi
    log "building $name${note:+ ($note)}..."
    start=$SECONDS
    (cd "$modules/$wrapper" && go build -trimpath -p 2 -ldflags "$ldflags" -o "$bin/.$name.tmp" "$pkg")
    mv -f "$bin/.$name.tmp" "$bin/$name"
    log "built $name in $((SECONDS - start))s"
}

# Kubernetes version stamps (what hack/lib/version.sh sets); without them the
# server reports v0.0.0-master and helm refuses charts with a kubeVersion
# constraint.
kube_major="${KUBERNETES_VERSION#v}"; kube_major="${kube_major%%.*}"
kube_minor="${KUBERNETES_VERSION#v*.}"; kube_minor="${kube_minor%%.*}"
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    kube_ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$kube_major"
    kube_ldflags+=" -X $pkg.gitMinor=$kube_minor -X $pkg.gitTreeState=clean"
done

check_module etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
build etcd etcd go.etcd.io/etcd/server/v3 "-s -w"

check_module kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION"
build kube-apiserver kubernetes k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags" "cold build takes minutes"
build kubectl kubernetes k8s.io/kubernetes/cmd/kubectl "$kube_ldflags"
if $node; then
    for cmd in kubelet kube-proxy kube-scheduler kube-controller-manager; do
        build "$cmd" kubernetes "k8s.io/kubernetes/cmd/$cmd" "$kube_ldflags" "for the node"
    done
    # The pod sandbox's process, from the same module's build/pause/linux/pause.c, linked
    # statically (the node packs it into the image its containerd uses as sandbox image).
    if [[ ! -x "$bin/pause" ]]; then
        kube_src="$(cd "$modules/kubernetes" && go mod download -json k8s.io/kubernetes |
            sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
        gcc -Os -static -DVERSION="$KUBERNETES_VERSION" -o "$bin/pause.tmp" "$kube_src/build/pause/linux/pause.c"
        strip "$bin/pause.tmp"
        mv -f "$bin/pause.tmp" "$bin/pause"
        log "pause: built"
    fi
fi

check_module cm-runner github.com/cert-manager/cert-manager "$CERT_MANAGER_VERSION"
build cm-runner cm-runner . \
    "-s -w -X github.com/cert-manager/cert-manager/pkg/util.AppVersion=$CERT_MANAGER_VERSION"

# helm's own Makefile stamps its version and, for `helm template`/`helm lint`,
# the Kubernetes version of the client-go it was built with.
check_module helm helm.sh/helm/v3 "$HELM_VERSION"
if [[ ! -x "$bin/helm" ]]; then
    helm_k8s="$(cd "$modules/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)" # v0.X.Y
    helm_k8s_minor="${helm_k8s#v0.}"; helm_k8s_minor="${helm_k8s_minor%%.*}"
    helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
        helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$helm_k8s_minor"
    done
    build helm helm helm.sh/helm/v3/cmd/helm "$helm_ldflags"
else
    log "helm: already built"
fi

check_module cmctl github.com/cert-manager/cmctl/v2 "$CMCTL_VERSION"
build cmctl cmctl github.com/cert-manager/cmctl/v2 \
    "-s -w -X github.com/cert-manager/cert-manager/pkg/util.AppVersion=$CMCTL_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$CMCTL_VERSION"

# cert-manager's CRDs. deploy/crds/ in the module holds plain controller-gen
# YAML (no helm templating); the only differences from the chart's
# templates/crd-*.yaml are the chart's labels and the helm.sh/resource-policy
# annotation. Join them into one multi-document file, each document opened
# by a single '---' line.
crd_file="$crds/cert-manager.crds.yaml"
if [[ -s "$crd_file" ]]; then
    log "cert-manager.crds.yaml: already extracted"
else
    log "extracting cert-manager CRDs..."
    start=$SECONDS
    cm_dir="$(cd "$modules/cm-runner" && go mod download -json github.com/cert-manager/cert-manager |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    shopt -s nullglob
    crd_srcs=("$cm_dir"/deploy/crds/*.yaml)
    shopt -u nullglob
    if [[ ${#crd_srcs[@]} -eq 0 ]]; then
        log "no CRD YAML in $cm_dir/deploy/crds"
        exit 1
    fi
    if grep -l '{{' "${crd_srcs[@]}" >&2; then
        log "the files above are helm templates, not plain YAML; render them with helm template instead"
        exit 1
    fi
    {
        echo "# cert-manager $CERT_MANAGER_VERSION CRDs, joined from deploy/crds/ of github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION"
        for f in "${crd_srcs[@]}"; do
            echo "---"
            awk 'NR == 1 && $0 == "---" { next } { print }' "$f"
        done
    } >"$crd_file.tmp"
    mv -f "$crd_file.tmp" "$crd_file"
    log "extracted ${#crd_srcs[@]} CRDs in $((SECONDS - start))s"
fi

for f in etcd kube-apiserver kubectl cm-runner helm cmctl; do
    [[ -x "$bin/$f" ]] || { log "missing $bin/$f"; exit 1; }
done
{
    cat "$here/versions.env"
    echo "# built $(date -u +%Y-%m-%dT%H:%M:%SZ) with $(go version)"
} >"$dir/.complete"
if $node; then
    for f in kubelet kube-proxy kube-scheduler kube-controller-manager pause; do
        [[ -x "$bin/$f" ]] || { log "missing $bin/$f"; exit 1; }
    done
    cp "$dir/.complete" "$dir/.node-complete"
fi
log "control plane complete in $((SECONDS - total_start))s: $dir"
echo "$dir"
