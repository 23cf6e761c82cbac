//! The CA of an issuer replaced: the roots still needed travel together (issue 15's trust
//! bundles), so old and new leaves both verify against what clients are handed.

use std::time::Duration;

use ferrum::IssuerScope;
use ferrum::rotation::RotationPhase;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
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
    // The status is written after the bundles.
    eventually("the status naming the ClusterTrustBundle", Duration::from_secs(30), || async {
        let said = issuers.get("ca").await.ok()?.status?.cluster_trust_bundle?;
        said.contains(&format!("published as ClusterTrustBundle {name}")).then_some(())
    })
    .await;

    let current_only = secret_data(&h, "new-current-tls", "ca.crt").await;
    assert_eq!(pem_certs(&current_only), pem_certs(second.cert_pem.as_bytes()), "mode Current: the new root only");
    let (ok, _) = verifies(&current_only, &old_leaf);
    assert!(!ok, "the old leaf does not verify against the new root alone");
}

/// The leaf of a `tls.crt` verified against `trusted` with the rest of the chain as untrusted
/// intermediates (what a TLS client does with the chain a server sends).
fn verifies_chain(trusted: &[u8], tls_crt: &[u8]) -> (bool, String) {
    let certs = pem_certs(tls_crt);
    let leaf = pem_encode("CERTIFICATE", &certs[0]);
    let rest: String = certs[1..].iter().map(|c| pem_encode("CERTIFICATE", c)).collect();
    openssl_verify(trusted, rest.as_bytes(), leaf.as_bytes())
}

/// Asserts that each `(name, tls.crt)` verifies against `trusted`, said as `against`.
fn all_verify(trusted: &[u8], leaves: &[(&str, &[u8])], against: &str) {
    for (name, leaf) in leaves {
        let (ok, out) = verifies_chain(trusted, leaf);
        assert!(ok, "{name} against {against}: {out}");
    }
}

/// A cert-manager Certificate `name` (Secret `name`) of an ECDSA CA signed by the SelfSigned
/// Issuer `selfsigned`, valid for `duration`.
async fn create_ca_certificate(h: &Harness, name: &str, common_name: &str, duration: &str) {
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": name},
        "spec": {
            "isCA": true, "commonName": common_name, "secretName": name, "duration": duration, "renewBefore": "10s",
            "privateKey": {"algorithm": "ECDSA", "size": 256},
            "issuerRef": {"name": "selfsigned", "kind": "Issuer", "group": "cert-manager.io"},
        },
    }))
    .expect("CA certificate");
    h.cert_manager("Certificate").create(&Default::default(), &obj).await.expect("create CA Certificate");
}

/// Waits for an event with `reason` about `name` (events are published after the status write
/// that records what they say).
async fn event_about(h: &Harness, name: &str, reason: &str) {
    eventually(&format!("a {reason} event about {name}"), Duration::from_secs(20), || async {
        h.events_about(name).await.iter().any(|e| e.reason.as_deref() == Some(reason)).then_some(())
    })
    .await;
}

/// The issuer's rotation status, once `accept` takes it.
async fn rotation_where(
    h: &Harness,
    name: &str,
    what: &str,
    timeout: Duration,
    accept: impl Fn(&ferrum::rotation::RotationStatus) -> bool,
) -> ferrum::rotation::RotationStatus {
    let issuers = h.issuers(IssuerScope::Namespaced);
    eventually(what, timeout, || async {
        let rotation = issuers.get(name).await.ok()?.status?.rotation?;
        accept(&rotation).then_some(rotation)
    })
    .await
}

/// The bundle ConfigMap's `ca.crt` once it holds `roots` roots.
async fn configmap_with(h: &Harness, roots: usize, timeout: Duration) -> Vec<u8> {
    eventually(&format!("the bundle ConfigMap with {roots} roots"), timeout, || async {
        let crt = h.api::<ConfigMap>().get("ca-bundle").await.ok()?.data?.get("ca.crt")?.clone();
        (pem_certs(crt.as_bytes()).len() == roots).then(|| crt.into_bytes())
    })
    .await
}

/// The issuer's ClusterTrustBundle once it holds `roots` roots.
async fn cluster_trust_bundle_with(h: &Harness, issuer: &str, roots: usize, timeout: Duration) -> Vec<u8> {
    let gvk = GroupVersionKind::gvk("certificates.k8s.io", "v1beta1", "ClusterTrustBundle");
    let bundles: Api<DynamicObject> =
        Api::all_with(h.client.clone(), &ApiResource::from_gvk_with_plural(&gvk, "clustertrustbundles"));
    let name = format!("ferrumissuers.ferrum.dev:{}.{issuer}:roots", h.ns);
    eventually(&format!("the ClusterTrustBundle with {roots} roots"), timeout, || async {
        let pem = bundles.get(&name).await.ok()?.data["spec"]["trustBundle"].as_str()?.to_owned();
        (pem_certs(pem.as_bytes()).len() == roots).then(|| pem.into_bytes())
    })
    .await
}

/// The Secret's `tls.crt` once its leaf was signed under `root` (PEM) — verified against that
/// root alone.
async fn leaf_under(h: &Harness, secret: &str, root: &[u8], timeout: Duration) -> Vec<u8> {
    eventually(&format!("{secret} re-issued under the new root"), timeout, || async {
        let crt = h.api::<Secret>().get(secret).await.ok()?.data?.get("tls.crt")?.0.clone();
        verifies_chain(root, &crt).0.then_some(crt)
    })
    .await
}

/// A whole staged rotation with cert-manager managing both CAs (a SelfSigned Issuer → two CA
/// Certificates → their Secrets), leaves from Ferrum, and at every phase `openssl verify` of
/// the old and the new leaves against what clients are handed:
/// - before: one root;
/// - `Publishing` (next CA in `spec.ca.next`, a 30 s window): both roots in the ConfigMap, the
///   ClusterTrustBundle and each new leaf's `ca.crt`; the current CA still signs;
/// - `Switched` (by the window): new leaves chain to the new root and, through the
///   cross-certificate, to the old root alone; every Certificate issued before is re-issued
///   under the new CA (re-issuance on, the chart's `rotation.reissue`);
/// - `Complete` (the spec names the new CA): the cross-certificate still follows new leaves;
/// - once the old leaves have expired (the old CA lives 3 minutes, and Ferrum never issues past
///   its CA's expiry): the old root is gone from every bundle and the rotation status with it.
///
/// A second issuer switches by hand (`switchTo` the next root's fingerprint).
#[tokio::test(flavor = "multi_thread")]
async fn a_staged_rotation_of_a_ca_cert_manager_manages_breaks_no_client() {
    let mut h = Harness::new("stage").await;
    h.chart_values.push("rotation.reissue=true".into());
    h.start_cert_manager(true).await;
    h.start_ferrum(&[]).await;
    let selfsigned: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "selfsigned"},
        "spec": {"selfSigned": {}},
    }))
    .expect("issuer");
    h.cert_manager("Issuer").create(&Default::default(), &selfsigned).await.expect("create SelfSigned Issuer");
    create_ca_certificate(&h, "ca-1", "Staged Root 1", "3m").await;
    create_ca_certificate(&h, "ca-2", "Staged Root 2", "2160h").await;
    certificate_ready(&h, "ca-1").await;
    certificate_ready(&h, "ca-2").await;
    let old_root = secret_data(&h, "ca-1", "ca.crt").await;
    let new_root = secret_data(&h, "ca-2", "ca.crt").await;
    h.create_issuer_spec(
        IssuerScope::Namespaced,
        "ca",
        json!({"ca": {"secretName": "ca-1"}, "caBundle": {"configMapName": "ca-bundle"}}),
    )
    .await;
    h.create_issuer_spec(IssuerScope::Namespaced, "manual", json!({"ca": {"secretName": "ca-1"}})).await;
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    let issuer_ref = |name: &str| json!({"name": name, "kind": "FerrumIssuer", "group": "ferrum.dev"});
    let leaf_spec = |dns: &str| json!({"dnsNames": [dns], "duration": "1h", "renewBefore": "10s", "privateKey": {"algorithm": "ECDSA"}});
    for name in ["app-1", "app-2"] {
        create_certificate(&h, name, issuer_ref("ca"), leaf_spec(&format!("{name}.example.com"))).await;
    }
    certificate_ready(&h, "app-1").await;
    certificate_ready(&h, "app-2").await;
    let old_1 = secret_data(&h, "app-1-tls", "tls.crt").await;
    let old_2 = secret_data(&h, "app-2-tls", "tls.crt").await;
    let bundle = configmap_with(&h, 1, Duration::from_secs(30)).await;
    all_verify(&bundle, &[("app-1", &old_1), ("app-2", &old_2)], "the ConfigMap before the rotation");
    let ca_crt_1 = secret_data(&h, "app-1-tls", "ca.crt").await;
    all_verify(&ca_crt_1, &[("app-1", &old_1), ("app-2", &old_2)], "app-1's ca.crt before the rotation");

    // Publishing: the next CA in every bundle, the current one still signing.
    let next = json!({"secretName": "ca-2", "switchAfter": "30s", "crossSign": true, "reissue": {"perMinute": 60}});
    let issuers = h.issuers(IssuerScope::Namespaced);
    let patch = json!({"spec": {"ca": {"next": next}}});
    issuers.patch("ca", &PatchParams::default(), &Patch::Merge(patch)).await.expect("name the next CA");
    let publishing = rotation_where(&h, "ca", "phase Publishing, bundles written", Duration::from_secs(30), |r| {
        r.phase == RotationPhase::Publishing && r.bundles_published_at.is_some()
    })
    .await;
    assert!(publishing.waiting_for.contains("the propagation window"), "{}", publishing.waiting_for);
    assert!(publishing.cross_certificate.is_none(), "cross-signed at the switch, not before");
    let bundle = configmap_with(&h, 2, Duration::from_secs(30)).await;
    assert_eq!(pem_certs(&bundle)[0], pem_certs(&old_root)[0], "the root that signs comes first");
    let trust_bundle = cluster_trust_bundle_with(&h, "ca", 2, Duration::from_secs(30)).await;
    create_certificate(&h, "app-3", issuer_ref("ca"), leaf_spec("app-3.example.com")).await;
    certificate_ready(&h, "app-3").await;
    let old_3 = secret_data(&h, "app-3-tls", "tls.crt").await;
    let ca_crt_3 = secret_data(&h, "app-3-tls", "ca.crt").await;
    assert_eq!(pem_certs(&ca_crt_3).len(), 2, "a leaf issued while publishing carries both roots");
    assert!(verifies_chain(&old_root, &old_3).0, "while publishing, the current CA still signs");
    let old = [("app-1", old_1.as_slice()), ("app-2", &old_2), ("app-3", &old_3)];
    for (against, trusted) in
        [("the ConfigMap", &bundle), ("the ClusterTrustBundle", &trust_bundle), ("ca.crt", &ca_crt_3)]
    {
        all_verify(trusted, &old, &format!("{against} while publishing"));
    }
    event_about(&h, "ca", "NextCAPublished").await;

    // The manual issuer: published, waiting for the user, then switched when told.
    let manual_next = json!({"spec": {"ca": {"next": {"secretName": "ca-2"}}}});
    issuers.patch("manual", &PatchParams::default(), &Patch::Merge(manual_next)).await.expect("next CA by hand");
    let waiting = rotation_where(&h, "manual", "manual Publishing", Duration::from_secs(30), |r| {
        r.phase == RotationPhase::Publishing && r.bundles_published_at.is_some()
    })
    .await;
    assert_eq!(waiting.waiting_for, format!("a switch by hand: set next.switchTo to {}", waiting.next));
    let switch_to = json!({"spec": {"ca": {"next": {"switchTo": waiting.next}}}});
    issuers.patch("manual", &PatchParams::default(), &Patch::Merge(switch_to)).await.expect("switch by hand");
    rotation_where(&h, "manual", "manual Switched", Duration::from_secs(30), |r| r.phase == RotationPhase::Switched)
        .await;
    create_certificate(&h, "by-hand", issuer_ref("manual"), leaf_spec("by-hand.example.com")).await;
    certificate_ready(&h, "by-hand").await;
    let by_hand = secret_data(&h, "by-hand-tls", "tls.crt").await;
    assert!(verifies_chain(&new_root, &by_hand).0, "the manual issuer signs with the next CA after switchTo");
    assert!(!verifies_chain(&old_root, &by_hand).0, "without crossSign, no chain to the old root");

    // Switched by the window: new leaves under the new root, the old ones re-issued.
    let switched =
        rotation_where(&h, "ca", "phase Switched", Duration::from_secs(60), |r| r.phase == RotationPhase::Switched)
            .await;
    let switched_at = std::time::Instant::now();
    assert!(switched.switched_at.is_some());
    for reason in ["CASwitched", "CrossSigned"] {
        event_about(&h, "ca", reason).await;
    }
    for (name, _) in &old {
        let renewed = leaf_under(&h, &format!("{name}-tls"), &new_root, Duration::from_secs(30)).await;
        let ca_crt = secret_data(&h, &format!("{name}-tls"), "ca.crt").await;
        all_verify(&ca_crt, &[(name, &renewed)], "its own ca.crt after the switch");
        all_verify(&ca_crt, &old, &format!("the ca.crt of the re-issued {name}"));
        all_verify(&bundle, &[(name, &renewed)], "the ConfigMap after the switch");
        all_verify(&old_root, &[(name, &renewed)], "the old root alone (cross-signed)");
        event_about(&h, name, "ReissueRequested").await;
    }
    println!("re-issued 3 Certificates {:?} after the switch was seen", switched_at.elapsed());
    all_verify(&configmap_with(&h, 2, Duration::from_secs(5)).await, &old, "the ConfigMap after the switch");
    let done = rotation_where(&h, "ca", "re-issuance done", Duration::from_secs(30), |r| {
        r.reissue.as_ref().is_some_and(|p| p.remaining == 0 && p.requested >= 3)
    })
    .await;
    assert!(done.waiting_for.starts_with("the spec: then name the next Secret"), "{}", done.waiting_for);
    let (_, metrics) = addresses(&h.ferrum_log()).expect("metrics address");
    let (_, text) = http_get(&metrics, "/metrics").await;
    let series = format!("ferrum_reissue_remaining{{kind=\"FerrumIssuer\",namespace=\"{}\",name=\"ca\"}}", h.ns);
    assert_eq!(metric(&text, &series), Some(0.0), "{series} in\n{text}");

    // Complete: the spec names the new CA; new leaves still carry the cross-certificate.
    let complete = json!({"spec": {"ca": {"secretName": "ca-2", "next": null}}});
    issuers.patch("ca", &PatchParams::default(), &Patch::Merge(complete)).await.expect("complete the rotation");
    rotation_where(&h, "ca", "phase Complete", Duration::from_secs(30), |r| r.phase == RotationPhase::Complete).await;
    create_certificate(&h, "app-4", issuer_ref("ca"), leaf_spec("app-4.example.com")).await;
    certificate_ready(&h, "app-4").await;
    let new_4 = secret_data(&h, "app-4-tls", "tls.crt").await;
    all_verify(&old_root, &[("app-4", &new_4)], "the old root alone after completion");
    let ca_crt_4 = secret_data(&h, "app-4-tls", "ca.crt").await;
    all_verify(&ca_crt_4, &[("app-4", &new_4)], "its ca.crt");
    all_verify(&ca_crt_4, &old, "app-4's ca.crt (the old leaves, still valid)");
    all_verify(&configmap_with(&h, 2, Duration::from_secs(5)).await, &old, "the ConfigMap after completion");

    // The old CA's expiry (3 minutes after it was made), which no leaf it signed outlives: the
    // old root leaves every bundle, and the rotation status goes with it.
    let bundle = configmap_with(&h, 1, Duration::from_secs(200)).await;
    println!("the old root left the bundles {:?} after the switch was seen", switched_at.elapsed());
    assert_eq!(pem_certs(&bundle), pem_certs(&new_root), "only the new root is handed out");
    let trust_bundle = cluster_trust_bundle_with(&h, "ca", 1, Duration::from_secs(30)).await;
    assert_eq!(pem_certs(&trust_bundle), pem_certs(&new_root));
    // The status is written after the bundles: one generation, and the rotation ended with the
    // overlap.
    eventually("one generation and no rotation in the status", Duration::from_secs(30), || async {
        let status = issuers.get("ca").await.ok()?.status?;
        (status.ca_generations.len() == 1 && status.rotation.is_none()).then_some(())
    })
    .await;
    event_about(&h, "ca", "RotationEnded").await;
    create_certificate(&h, "app-5", issuer_ref("ca"), leaf_spec("app-5.example.com")).await;
    certificate_ready(&h, "app-5").await;
    let ca_crt_5 = secret_data(&h, "app-5-tls", "ca.crt").await;
    assert_eq!(pem_certs(&ca_crt_5), pem_certs(&new_root), "a new leaf's ca.crt: the new root only");
    let new_5 = secret_data(&h, "app-5-tls", "tls.crt").await;
    assert_eq!(pem_certs(&new_5).len(), 1, "no cross-certificate once the old root is gone");
    all_verify(&ca_crt_5, &[("app-5", &new_5)], "its ca.crt at the end");
}

/// A next CA that is not usable (its Secret missing) is said on the issuer (a Warning event)
/// while the current CA goes on signing; nothing is published until it is usable, then the
/// rotation starts.
#[tokio::test(flavor = "multi_thread")]
async fn a_next_ca_that_cannot_sign_is_said_and_stops_nothing() {
    let (h, _) = ready_world("nextbad", &[]).await;
    let patch = json!({"spec": {"ca": {"next": {"secretName": "later"}}}});
    let issuers = h.issuers(IssuerScope::Namespaced);
    issuers.patch("ca", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    let warning = eventually("a NextCAInvalid event", Duration::from_secs(30), || async {
        let events = h.events_about("ca").await;
        events.into_iter().find(|e| e.reason.as_deref() == Some("NextCAInvalid"))
    })
    .await;
    let note = warning.note.unwrap_or_default();
    assert!(note.contains("Secret") && note.contains("later") && note.contains("spec.ca.next"), "{note}");
    assert_eq!(h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await.0, "Checked", "the current CA signs on");
    let status = issuers.get("ca").await.expect("issuer").status.expect("status");
    assert!(status.rotation.is_none() && status.ca_generations.len() == 1, "nothing published: {status:?}");
    let next = make_ca("Later CA", CaOptions::default());
    h.create_secret(&h.ns, "later", &[("tls.crt", next.cert_pem.as_bytes()), ("tls.key", next.key_pem.as_bytes())])
        .await;
    rotation_where(&h, "ca", "the rotation once the next CA is usable", Duration::from_secs(30), |r| {
        r.phase == RotationPhase::Publishing
    })
    .await;
}

/// Rotation settings a tenant may write to make the controller's time arithmetic overflow (a
/// window of 3×10^15 hours; a policy lifetime as long, then a CA change) stop nothing: the first
/// is `InvalidSpec`, the second bounds the old root by its CA's expiry, and the process goes on
/// signing for another issuer.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_rotation_settings_never_stop_the_controller() {
    let (h, _) = ready_world("rothostile", &[]).await;
    let (next, replacement) =
        (make_ca("Hostile Next", CaOptions::default()), make_ca("Hostile 2", CaOptions::default()));
    for (name, ca) in [("next", &next), ("replacement", &replacement)] {
        h.create_secret(&h.ns, name, &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    }
    let huge = "3000000000000000h";
    h.create_issuer_spec(
        IssuerScope::Namespaced,
        "window",
        json!({"ca": {"secretName": "ca", "next": {"secretName": "next", "switchAfter": huge}}}),
    )
    .await;
    h.create_issuer_spec(
        IssuerScope::Namespaced,
        "lifetime",
        json!({"ca": {"secretName": "ca"}, "policy": {"maxDuration": huge}}),
    )
    .await;
    let (reason, message) = h.issuer_ready(IssuerScope::Namespaced, "window", "False").await;
    assert_eq!(reason, "InvalidSpec");
    assert!(message.contains("next.switchAfter") && message.contains("87600h"), "{message}");
    h.issuer_ready(IssuerScope::Namespaced, "lifetime", "True").await;
    let patch = json!({"spec": {"ca": {"secretName": "replacement"}}});
    let issuers = h.issuers(IssuerScope::Namespaced);
    issuers.patch("lifetime", &PatchParams::default(), &Patch::Merge(patch)).await.expect("replace the CA");
    let generations = eventually("the old root superseded", Duration::from_secs(30), || async {
        let status = issuers.get("lifetime").await.ok()?.status?;
        (status.ca_generations.len() == 2).then_some(status.ca_generations)
    })
    .await;
    // Bounded by the old CA's expiry (the lifetime bound overflows, so it is not used).
    let by: k8s_openapi::jiff::Timestamp = generations[1].leaves_expire_by.parse().expect("a time");
    let now = k8s_openapi::jiff::Timestamp::now();
    assert!(by > now && by.as_second() < now.as_second() + 4 * 365 * 86_400, "{by}: the CA's expiry, not an overflow");
    // The controller is alive and signs for the issuer it had.
    let csr = csr_pem("alive.example.com");
    h.create_request("alive", &csr, ferrum_ref(IssuerScope::Namespaced, "ca")).await;
    h.decide("alive", true).await;
    h.request_reason("alive", "Issued", Duration::from_secs(30)).await;
}
