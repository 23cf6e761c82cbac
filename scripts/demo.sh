#!/usr/bin/env bash
# The demo: a local control plane (etcd, kube-apiserver, cert-manager), Ferrum installed from its
# Helm chart's rendered manifests and running as the chart's ServiceAccount, a CA FerrumIssuer, a
# Certificate issued through cert-manager, and the chain shown and verified; then the
# certificate revoked with a CertificateRevocation and the CRL Ferrum serves checked by OpenSSL.
# Leaves it running; prints how to stop.
#
#   scripts/demo.sh            the CA key pair in a Secret (the `ca` backend)
#   scripts/demo.sh --pkcs11   the CA key generated on a SoftHSM2 token and never leaving it (the
#                              `pkcs11` backend); the CA certificate, signed by a demo root, in a
#                              Secret, the token's PIN in another
#   scripts/demo.sh --node     a real node too (containerd, kubelet, kube-proxy, scheduler,
#                              controller-manager; needs root): Ferrum's image built here from the
#                              release binary, `helm install` of the chart, two replicas as pods
set -euo pipefail
backend=ca
node=false
case "${1:-}" in
  --pkcs11) backend=pkcs11 ;;
  --node) node=true ;;
  "") ;;
  *) echo "usage: $0 [--pkcs11 | --node]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
state=${FERRUM_DEMO_STATE:-${XDG_RUNTIME_DIR:-/tmp}/ferrum-demo}

. scripts/prereqs.sh

node_flag=()
if $node; then
  . scripts/node-prereqs.sh
  node_flag=(--node)
fi
echo "== building the control plane binaries (first time: ~20 min on 2 cores, with progress)"
bin=$(tools/controlplane/build.sh "${node_flag[@]}" | tail -n 1)/bin
echo "== building Ferrum"
cargo build --quiet -p ferrum-issuer -p ferrum-testenv
$node && cargo build --quiet --release -p ferrum-issuer --bin ferrum-issuer
kubectl() { "$bin/kubectl" "$@"; }

if [ -f "$state/ferrum.pid" ]; then kill "$(cat "$state/ferrum.pid")" 2>/dev/null || true; fi
target/debug/controlplane --state-dir "$state" down >/dev/null 2>&1 || true
echo "== starting the control plane${node_flag:+ and a node}"
eval "$(target/debug/controlplane --state-dir "$state" up "${node_flag[@]}")"
work=$(mktemp -d)
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 365 \
  -subj "/O=Ferrum Demo/CN=Ferrum Demo CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null

if $node; then
  echo "== Ferrum's image, built here with buildah from the release binary, imported into the node"
  target/debug/controlplane --state-dir "$state" load-image --binary target/release/ferrum-issuer \
    --name ghcr.io/ferrum-dev/ferrum-issuer:0.1.0
  echo "== helm install (namespace ferrum-system enforces the restricted Pod Security profile)"
  kubectl create namespace ferrum-system >/dev/null
  kubectl label namespace ferrum-system pod-security.kubernetes.io/enforce=restricted >/dev/null
  kubectl create namespace demo >/dev/null
  "$bin/helm" install ferrum deploy/chart/ferrum-issuer -n ferrum-system --wait --timeout 120s 2>&1 \
    | grep -E '^(NAME|STATUS|REVISION)' | sed 's/^/   /'
  kubectl -n ferrum-system get pods -o wide
  kubectl -n ferrum-system get lease ferrum -o jsonpath='   leader: {.spec.holderIdentity}{"\n"}'
else
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

  pkcs11_flags=()
  if [ "$backend" = pkcs11 ]; then
    echo "== a SoftHSM2 token with a P-256 key generated on it (never extractable)"
    hsm="$state/softhsm"
    rm -rf "$hsm" && mkdir -p "$hsm/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$hsm/tokens" >"$hsm/softhsm2.conf"
    export SOFTHSM2_CONF="$hsm/softhsm2.conf"
    module=$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so 2>/dev/null | head -n 1)
    softhsm2-util --init-token --free --label demo-ca --so-pin 1234-so --pin 5678 >/dev/null
    p11() { pkcs11-tool --module "$module" --token-label demo-ca --login --pin 5678 "$@"; }
    p11 --keypairgen --key-type EC:prime256v1 --label demo-ca-key --id 01 --usage-sign 2>/dev/null | sed 's/^/   /'
    p11 --read-object --type pubkey --label demo-ca-key -o "$work/hsm.pub.der" >/dev/null 2>&1
    openssl pkey -pubin -inform DER -in "$work/hsm.pub.der" -out "$work/hsm.pub.pem"
    printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$work/ext.cnf"
    # The demo root (ca.crt/ca.key, above) signs the certificate of the key on the token.
    openssl x509 -new -subj "/O=Ferrum Demo/CN=Ferrum Demo HSM CA" -force_pubkey "$work/hsm.pub.pem" \
      -CA "$work/ca.crt" -CAkey "$work/ca.key" -extfile "$work/ext.cnf" -days 180 -out "$work/hsm.crt" 2>/dev/null
    pkcs11_flags=(--pkcs11-module "$module")
  fi

  echo "== starting Ferrum (log: $state/ferrum.log)"
  POD_NAMESPACE=ferrum-system POD_NAME=ferrum-demo nohup target/debug/ferrum-issuer --kubeconfig "$sa_kubeconfig" \
    --leader-election-lease-name ferrum --metrics-bind-address 127.0.0.1:8080 \
    --health-probe-bind-address 127.0.0.1:8081 --crl-bind-address 127.0.0.1:8082 "${pkcs11_flags[@]}" >"$state/ferrum.log" 2>&1 &
  echo $! >"$state/ferrum.pid"
fi

crl_spec='crl: { baseURL: "http://127.0.0.1:8082", validity: 1h }'
$node && crl_spec=''  # the demo's revocation part needs Ferrum on the loopback
if [ "$backend" = pkcs11 ]; then
  echo "== the CA certificate and the PIN in Secrets, a FerrumIssuer with a pkcs11 block, a Certificate"
  kubectl -n demo create secret generic demo-ca --from-file=tls.crt="$work/hsm.crt" --from-file=ca.crt="$work/ca.crt" >/dev/null
  kubectl -n demo create secret generic demo-ca-pin --from-literal=pin=5678 >/dev/null
  issuer_spec='pkcs11: { tokenLabel: demo-ca, keyLabel: demo-ca-key, pinSecretRef: { name: demo-ca-pin }, certificateSecretName: demo-ca }'
else
  echo "== a CA key pair in a Secret, a FerrumIssuer, a Certificate"
  kubectl -n demo create secret tls demo-ca --cert="$work/ca.crt" --key="$work/ca.key" >/dev/null
  issuer_spec='ca: { secretName: demo-ca }'
fi
kubectl apply -f - >/dev/null <<YAML
apiVersion: ferrum.dev/v1alpha1
kind: FerrumIssuer
metadata: { name: demo-ca, namespace: demo }
spec:
  $issuer_spec
  $crl_spec
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
if $node; then
  echo "== openssl verify"
  openssl verify -CAfile "$work/ca-from-secret.crt" "$work/tls.crt"
  cat <<EOT

The control plane, the node and Ferrum's pods are still running:
  export KUBECONFIG=$KUBECONFIG
Stop everything (pods, containers, the node's bridge, cgroups and iptables chains) with:
  target/debug/controlplane --state-dir $state down
EOT
  exit 0
fi
echo "== a metric"
curl -s 127.0.0.1:8080/metrics | grep '^ferrum_certificaterequests_total' || true
echo "== openssl verify"
openssl verify -CAfile "$work/ca-from-secret.crt" -untrusted "$work/tls.crt" "$work/tls.crt"

echo "== revoking it: a CertificateRevocation, then the CRL every Ferrum replica serves"
kubectl apply -f - >/dev/null <<YAML
apiVersion: ferrum.dev/v1alpha1
kind: CertificateRevocation
metadata: { name: web-key-leaked, namespace: demo }
spec: { certificateRef: { name: web }, reason: keyCompromise }
YAML
kubectl -n demo wait --for=condition=Revoked certificaterevocation/web-key-leaked --timeout=30s
kubectl -n demo get certificaterevocation
crl_url=$(openssl x509 -in "$work/tls.crt" -noout -ext crlDistributionPoints | sed -n 's/.*URI://p' | head -n 1)
echo "   the certificate's CRL distribution point: $crl_url"
curl -sf "$crl_url" -o "$work/crl.der"
issuing_ca="$work/ca.crt"
[ "$backend" = pkcs11 ] && issuing_ca="$work/hsm.crt"
openssl crl -inform DER -in "$work/crl.der" -CAfile "$issuing_ca" -verify -noout -text 2>&1 \
  | grep -E 'verify|CRL Number|Serial Number|Key Compromise' -A1 | grep -v '^--' | sed 's/^/   /'
openssl crl -inform DER -in "$work/crl.der" -out "$work/crl.pem"
if openssl verify -crl_check -CAfile "$work/ca-from-secret.crt" -untrusted "$work/tls.crt" -CRLfile "$work/crl.pem" "$work/tls.crt" >"$work/verify.out" 2>&1; then
  echo "openssl verify -crl_check: accepted (unexpected)"; cat "$work/verify.out"; exit 1
fi
echo "openssl verify -crl_check: refused: $(grep -o 'certificate revoked' "$work/verify.out" | head -n 1)"
cat <<EOT

The control plane and Ferrum are still running:
  export KUBECONFIG=$KUBECONFIG
Stop them with:
  kill \$(cat $state/ferrum.pid); target/debug/controlplane --state-dir $state down
EOT
