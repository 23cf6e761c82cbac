//! The CA of an issuer replaced: the roots still needed travel together (issue 15's trust
//! bundles), so old and new leaves both verify against what clients are handed.

use std::time::Duration;

use ferrum::IssuerScope;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use crate::flow::{certificate_ready, create_certificate, secret_data};
use crate::support::*;

/// Verifies `leaf` (its first certificate) against the roots in `bundle` with `openssl verify`.
fn verifies(bundle: &[u8], leaf: &[u8]) -> (bool, String) {
    let leaf = pem_encode("CERTIFICATE", &pem_certs(leaf)[0]);
    openssl_verify(bundle, b"", leaf.as_bytes())
}

/// A FerrumIssuer's Secret gets a new CA (new key, new root). The issuer's status remembers
/// both roots; a leaf issued after the switch carries both in its Secret's `ca.crt` (current
/// first), as does the issuer's bundle ConfigMap, and each verifies both the old leaf and the new
/// one; an issuer with `caBundle.mode: Current` hands out the new root only, as cert-manager's
/// CA issuer does.
#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_ca_leaves_a_bundle_that_trusts_old_and_new_leaves() {
    let mut h = Harness::new("rotate").await;
    h.start_cert_manager(true).await;
    h.start_ferrum(&[]).await;
    let (first, second) =
        (make_ca("Rotation CA 1", CaOptions::default()), make_ca("Rotation CA 2", CaOptions::default()));
    h.create_secret(&h.ns, "ca", &[("tls.crt", first.cert_pem.as_bytes()), ("tls.key", first.key_pem.as_bytes())])
        .await;
    h.create_issuer_spec(
        IssuerScope::Namespaced,
        "ca",
        json!({"ca": {"secretName": "ca"}, "caBundle": {"configMapName": "ca-bundle"}}),
    )
    .await;
    h.create_issuer_spec(
        IssuerScope::Namespaced,
        "current",
        json!({"ca": {"secretName": "ca"}, "caBundle": {"mode": "Current"}}),
    )
    .await;
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    h.issuer_ready(IssuerScope::Namespaced, "current", "True").await;
    let issuer_ref = |name: &str| json!({"name": name, "kind": "FerrumIssuer", "group": "ferrum.dev"});
    create_certificate(&h, "old", issuer_ref("ca"), json!({"dnsNames": ["old.example.com"]})).await;
    certificate_ready(&h, "old").await;
    let old_leaf = secret_data(&h, "old-tls", "tls.crt").await;
    assert_eq!(pem_certs(&secret_data(&h, "old-tls", "ca.crt").await).len(), 1, "one root before the switch");

    h.replace_secret(&h.ns, "ca", &[("tls.crt", second.cert_pem.as_bytes()), ("tls.key", second.key_pem.as_bytes())])
        .await;
    let issuers = h.issuers(IssuerScope::Namespaced);
    let generations = eventually("the issuer remembers both roots", Duration::from_secs(30), || async {
        let status = issuers.get("ca").await.ok()?.status?;
        (status.ca_generations.len() == 2).then_some(status.ca_generations)
    })
    .await;
    assert!(generations[0].superseded_at.is_none() && generations[1].superseded_at.is_some(), "{generations:?}");
    assert_eq!(pem_certs(generations[0].certificate.as_bytes()), pem_certs(second.cert_pem.as_bytes()));

    create_certificate(&h, "new", issuer_ref("ca"), json!({"dnsNames": ["new.example.com"]})).await;
    create_certificate(&h, "new-current", issuer_ref("current"), json!({"dnsNames": ["current.example.com"]})).await;
    certificate_ready(&h, "new").await;
    certificate_ready(&h, "new-current").await;
    let new_leaf = secret_data(&h, "new-tls", "tls.crt").await;
    let bundle = secret_data(&h, "new-tls", "ca.crt").await;
    let roots = pem_certs(&bundle);
    assert_eq!(roots.len(), 2, "the overlap in ca.crt");
    assert_eq!(roots[0], pem_certs(second.cert_pem.as_bytes())[0], "the current root first");
    for (name, leaf) in [("old", &old_leaf), ("new", &new_leaf)] {
        let (ok, out) = verifies(&bundle, leaf);
        assert!(ok, "the {name} leaf against the new leaf's ca.crt: {out}");
    }
    let configmap = eventually("the bundle ConfigMap holds both roots", Duration::from_secs(30), || async {
        let cm = h.api::<ConfigMap>().get("ca-bundle").await.ok()?;
        let crt = cm.data?.get("ca.crt")?.clone();
        (pem_certs(crt.as_bytes()).len() == 2).then_some(crt)
    })
    .await;
    for (name, leaf) in [("old", &old_leaf), ("new", &new_leaf)] {
        let (ok, out) = verifies(configmap.as_bytes(), leaf);
        assert!(ok, "the {name} leaf against the ConfigMap: {out}");
    }
    // The same bundle as a ClusterTrustBundle linked to the issuer's signer name (this control
    // plane serves certificates.k8s.io/v1beta1 with the ClusterTrustBundle feature gate).
    let gvk = GroupVersionKind::gvk("certificates.k8s.io", "v1beta1", "ClusterTrustBundle");
    let bundles: Api<DynamicObject> =
        Api::all_with(h.client.clone(), &ApiResource::from_gvk_with_plural(&gvk, "clustertrustbundles"));
    let signer = format!("ferrumissuers.ferrum.dev/{}.ca", h.ns);
    let name = format!("ferrumissuers.ferrum.dev:{}.ca:roots", h.ns);
    let trust_bundle = eventually("the ClusterTrustBundle holds both roots", Duration::from_secs(30), || async {
        let object = bundles.get(&name).await.ok()?;
        let spec = object.data.get("spec")?.clone();
        let pem = spec["trustBundle"].as_str()?.to_owned();
        (spec["signerName"] == json!(signer) && pem_certs(pem.as_bytes()).len() == 2).then_some(pem)
    })
    .await;
    for (which, leaf) in [("old", &old_leaf), ("new", &new_leaf)] {
        let (ok, out) = verifies(trust_bundle.as_bytes(), leaf);
        assert!(ok, "the {which} leaf against the ClusterTrustBundle: {out}");
    }
    let status = issuers.get("ca").await.expect("issuer").status.expect("status");
    let said = status.cluster_trust_bundle.unwrap_or_default();
    assert!(said.contains(&format!("published as ClusterTrustBundle {name}")), "{said}");

    let current_only = secret_data(&h, "new-current-tls", "ca.crt").await;
    assert_eq!(pem_certs(&current_only), pem_certs(second.cert_pem.as_bytes()), "mode Current: the new root only");
    let (ok, _) = verifies(&current_only, &old_leaf);
    assert!(!ok, "the old leaf does not verify against the new root alone");
}
