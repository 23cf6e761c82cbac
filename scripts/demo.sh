#!/usr/bin/env bash
# The demo: a local control plane (etcd, kube-apiserver, cert-manager), Ferrum installed from its
# Helm chart's rendered manifests and running as the chart's ServiceAccount, a CA FerrumIssuer, a
# Certificate issued through cert-manager, and the chain shown and verified. Leaves it running;
# prints how to stop.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
state=${FERRUM_DEMO_STATE:-${XDG_RUNTIME_DIR:-/tmp}/ferrum-demo}

. scripts/prereqs.sh

echo "== building the control plane binaries (first time: ~20 min on 2 cores, with progress)"
bin=$(tools/controlplane/build.sh | tail -n 1)/bin
echo "== building Ferrum"
cargo build --quiet -p ferrum-issuer -p ferrum-testenv
kubectl() { "$bin/kubectl" "$@"; }

if [ -f "$state/ferrum.pid" ]; then kill "$(cat "$state/ferrum.pid")" 2>/dev/null || true; fi
target/debug/controlplane --state-dir "$state" down >/dev/null 2>&1 || true
echo "== starting the control plane"
eval "$(target/debug/controlplane --state-dir "$state" up)"

echo "== installing Ferrum from the Helm chart's rendered manifests"
# No kubelet runs here, so the Deployment is applied but never scheduled: the demo runs the
# same binary locally, as the chart's ServiceAccount, bound only to the chart's RBAC.
"$bin/helm" template ferrum deploy/chart/ferrum-issuer --namespace ferrum-system >"$state/ferrum.yaml"
kubectl create namespace ferrum-system >/dev/null
kubectl create namespace demo >/dev/null
kubectl apply --server-side --force-conflicts -f "$state/ferrum.yaml" | sed 's/^/   /'
token=$(kubectl -n ferrum-system create token ferrum --duration=24h)
sa_kubeconfig="$state/ferrum.kubeconfig"
cp "$KUBECONFIG" "$sa_kubeconfig"
KUBECONFIG="$sa_kubeconfig" "$bin/kubectl" config set-credentials ferrum --token="$token" >/dev/null
KUBECONFIG="$sa_kubeconfig" "$bin/kubectl" config set-context --current --user=ferrum >/dev/null

echo "== starting Ferrum (log: $state/ferrum.log)"
POD_NAMESPACE=ferrum-system POD_NAME=ferrum-demo nohup target/debug/ferrum-issuer --kubeconfig "$sa_kubeconfig" \
  --leader-election-lease-name ferrum --metrics-bind-address 127.0.0.1:8080 \
  --health-probe-bind-address 127.0.0.1:8081 >"$state/ferrum.log" 2>&1 &
echo $! >"$state/ferrum.pid"

echo "== a CA key pair in a Secret, a FerrumIssuer, a Certificate"
work=$(mktemp -d)
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 365 \
  -subj "/O=Ferrum Demo/CN=Ferrum Demo CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
kubectl -n demo create secret tls demo-ca --cert="$work/ca.crt" --key="$work/ca.key" >/dev/null
kubectl apply -f - >/dev/null <<YAML
apiVersion: ferrum.dev/v1alpha1
kind: FerrumIssuer
metadata: { name: demo-ca, namespace: demo }
spec:
  ca: { secretName: demo-ca }
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: { name: web, namespace: demo }
spec:
  secretName: web-tls
  commonName: web.demo.example
  dnsNames: [web.demo.example, api.demo.example]
  privateKey: { algorithm: ECDSA, size: 256 }
  issuerRef: { group: ferrum.dev, kind: FerrumIssuer, name: demo-ca }
YAML
kubectl -n demo wait --for=condition=Ready ferrumissuer/demo-ca --timeout=60s
kubectl -n demo wait --for=condition=Ready certificate/web --timeout=60s
kubectl -n demo get ferrumissuer,certificate,certificaterequest

echo "== the issued certificate"
kubectl -n demo get secret web-tls -o jsonpath='{.data.tls\.crt}' | base64 -d >"$work/tls.crt"
kubectl -n demo get secret web-tls -o jsonpath='{.data.ca\.crt}' | base64 -d >"$work/ca-from-secret.crt"
openssl x509 -in "$work/tls.crt" -noout -subject -issuer -dates -ext subjectAltName,keyUsage,extendedKeyUsage,basicConstraints
echo "== a metric"
curl -s 127.0.0.1:8080/metrics | grep '^ferrum_certificaterequests_total' || true
echo "== openssl verify"
openssl verify -CAfile "$work/ca-from-secret.crt" "$work/tls.crt"
cat <<EOT

The control plane and Ferrum are still running:
  export KUBECONFIG=$KUBECONFIG
Stop them with:
  kill \$(cat $state/ferrum.pid); target/debug/controlplane --state-dir $state down
EOT
