#!/usr/bin/env bash
# Smoke test of the built control plane, and the reference for the flags the
# Rust test-support code uses: starts etcd and kube-apiserver on free
# loopback ports with throwaway certificates, applies cert-manager's CRDs
# server-side, starts cm-runner with an admin kubeconfig, and checks that a
# SelfSigned Issuer, a CA Issuer and their Certificates become Ready with
# their Secrets. Stops everything it started (by PID) on exit.
#
# Usage: tools/controlplane/smoke-test.sh [--keep]
#   --keep   leave the control plane running until Ctrl-C (prints KUBECONFIG)
# Needs: a complete build (build.sh), openssl, curl.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$("$here/bin-dir.sh")"
bin="$dir/bin"
keep=false
[[ "${1:-}" == "--keep" ]] && keep=true
[[ -f "$dir/.complete" ]] || { echo "no complete build in $dir; run $here/build.sh" >&2; exit 1; }
for tool in openssl curl; do
    command -v "$tool" >/dev/null || { echo "smoke-test.sh needs $tool" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/ferrum-cp.XXXXXX")"
pids=()
names=()
cleanup() {
    local rc=$? i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
        # etcd and kube-apiserver stop within a few seconds of SIGTERM
        for _ in $(seq 50); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
    if [[ $rc -ne 0 ]]; then
        for i in "${!names[@]}"; do
            echo "----- last lines of ${names[i]}.log -----" >&2
            tail -n 25 "$work/${names[i]}.log" >&2 || true
        done
        echo "smoke test FAILED; logs kept in $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'if $keep; then exit 0; else exit 130; fi' INT TERM

step() { echo "smoke: $*" >&2; }
# free_port: a loopback port nobody is listening on (racy, as any such check).
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    echo "no free port found" >&2; return 1
}
start() { # name cmd...
    local name="$1"; shift
    "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    names+=("$name")
}
wait_for() { # description timeout-seconds command...
    local what="$1" timeout="$2" start=$SECONDS; shift 2
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS - start >= timeout)); then echo "timed out after ${timeout}s waiting for $what" >&2; return 1; fi
        kill -0 "${pids[-1]}" 2>/dev/null || { echo "${names[-1]} exited while waiting for $what" >&2; return 1; }
        sleep 0.2
    done
    step "$what after $((SECONDS - start))s"
}

# --- certificates ------------------------------------------------------
step "work dir $work"
pki="$work/pki"
mkdir -p "$pki"
(
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
        -subj "/CN=ferrum-test-ca" 2>/dev/null
    # serving certificate for 127.0.0.1 / localhost
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
        -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    # admin client certificate: O=system:masters is bound to cluster-admin
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
        -subj "/O=system:masters/CN=ferrum-admin" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile admin.ext -out admin.crt 2>/dev/null
    # service account token signing key (TokenRequest)
    openssl genrsa -out sa.key 2048 2>/dev/null
)

# --- etcd --------------------------------------------------------------
etcd_port="$(free_port)"
peer_port="$(free_port)"
step "starting etcd on 127.0.0.1:$etcd_port"
start etcd "$bin/etcd" \
    --name=ferrum \
    --data-dir="$work/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="ferrum=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync \
    --log-level=warn
wait_for "etcd /health" 30 curl -fsS "http://127.0.0.1:$etcd_port/health"

# --- kube-apiserver ----------------------------------------------------
api_port="$(free_port)"
server="https://127.0.0.1:$api_port"
step "starting kube-apiserver on $server"
start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$api_port" \
    --cert-dir="$work/apiserver-certs" \
    --tls-cert-file="$pki/apiserver.crt" \
    --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --authorization-mode=RBAC \
    --service-account-issuer="$server" \
    --service-account-key-file="$pki/sa.key" \
    --service-account-signing-key-file="$pki/sa.key" \
    --disable-admission-plugins=ServiceAccount \
    --service-cluster-ip-range=10.0.0.0/24 \
    --allow-privileged=true \
    --endpoint-reconciler-type=none

cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ferrum
  cluster:
    server: $server
    certificate-authority: $pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: ferrum
  context: {cluster: ferrum, user: admin}
current-context: ferrum
EOF
export KUBECONFIG="$work/kubeconfig"
kubectl() { "$bin/kubectl" "$@"; }
curl_admin() { curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$@"; }
wait_for "kube-apiserver /readyz" 90 curl_admin "$server/readyz"
wait_for "namespace default" 30 kubectl get namespace default
kubectl version >&2

# --- cert-manager CRDs and controllers --------------------------------
step "applying cert-manager CRDs (server-side)"
kubectl apply --server-side --field-manager=ferrum-test -f "$dir/crds/cert-manager.crds.yaml" >&2
kubectl wait --for=condition=Established --timeout=60s crd --all >&2
kubectl create namespace cert-manager >&2

step "starting cm-runner"
start cm-runner "$bin/cm-runner" --kubeconfig="$KUBECONFIG" --cluster-resource-namespace=cert-manager
wait_for "cm-runner: ready" 60 grep -qx 'cm-runner: ready' "$work/cm-runner.log"

# --- a SelfSigned Issuer, a CA Issuer, and a Certificate of each -------
# No cert-manager webhook: nothing defaults issuerRef, so group and kind are
# always given.
kubectl create namespace smoke >&2
kubectl apply -n smoke -f - >&2 <<'EOF'
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: selfsigned}
spec: {selfSigned: {}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: root-ca}
spec:
  isCA: true
  commonName: smoke-root-ca
  secretName: root-ca
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {name: selfsigned, kind: Issuer, group: cert-manager.io}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: ca}
spec: {ca: {secretName: root-ca}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: leaf}
spec:
  commonName: leaf.smoke.test
  dnsNames: [leaf.smoke.test]
  secretName: leaf-tls
  issuerRef: {name: ca, kind: Issuer, group: cert-manager.io}
EOF
start_ready=$SECONDS
kubectl wait -n smoke --for=condition=Ready --timeout=60s certificate/root-ca certificate/leaf >&2
step "both Certificates Ready after $((SECONDS - start_ready))s"
kubectl get -n smoke issuers,certificates,certificaterequests,secrets >&2
kubectl get -n smoke secret leaf-tls -o jsonpath='{.data.tls\.crt}' | base64 -d |
    openssl x509 -noout -subject -issuer -ext subjectAltName >&2
"$bin/cmctl" status certificate -n smoke leaf >&2 || true

# --- TokenRequest and RBAC: a ServiceAccount token works, and is denied
# what no Role grants it (no kube-controller-manager: create SAs by hand).
kubectl create serviceaccount -n smoke probe >&2
token="$(kubectl create token -n smoke probe --duration=10m)"
as_probe() { "$bin/kubectl" --kubeconfig=/dev/null --server="$server" --certificate-authority="$pki/ca.crt" --token="$token" "$@"; }
whoami="$(as_probe auth whoami -o jsonpath='{.status.userInfo.username}')"
[[ "$whoami" == "system:serviceaccount:smoke:probe" ]] || { echo "token authenticates as '$whoami'" >&2; exit 1; }
can="$(as_probe auth can-i list secrets -n smoke || true)"
[[ "$can" == "no" ]] || { echo "RBAC: the probe ServiceAccount may list secrets ($can)" >&2; exit 1; }
step "ServiceAccount token authenticates as $whoami; RBAC denies it secrets"

if $keep; then
    echo "export KUBECONFIG=$KUBECONFIG" >&2
    echo "control plane running; Ctrl-C stops it" >&2
    wait
fi
echo "smoke test passed"
