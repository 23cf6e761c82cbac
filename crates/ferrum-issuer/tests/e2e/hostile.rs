//! Hostile input on the real control plane: what an approver saw is what gets signed, and no
//! object the apiserver accepts can stop Ferrum.

use std::time::{Duration, Instant};

use ferrum::ca::{CaIssuerSpec, FerrumIssuerSpec, IssuerPolicy, kinds};
use ferrum::x509::SanType;
use ferrum::{CertificateRequest, IssuerScope};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::support::*;

async fn world(h: &mut Harness) {
    h.start_ferrum(&[]).await;
    let ca = make_ca("Hostile CA", CaOptions::default());
    h.create_secret(&h.ns, "ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    h.create_issuer(IssuerScope::Namespaced, "ca", "ca").await;
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
}

/// Creates a CertificateRequest from raw JSON, so that `spec.request` can be any string the
/// apiserver accepts (the typed client would re-encode it canonically).
async fn create_raw(h: &Harness, name: &str, request: Value, issuer_ref: Value) {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("cert-manager.io", "v1", "CertificateRequest"));
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
        "metadata": {"name": name},
        "spec": {"request": request, "issuerRef": issuer_ref},
    }))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(h.client.clone(), &h.ns, &ar)
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("the apiserver must accept {name}: {e}"));
}

fn b64(bytes: &[u8]) -> String {
    base64(bytes)
}

/// The base64 of `bytes` as the apiserver accepts and Go reads it, but a strict decoder does
/// not: non-zero trailing bits before the padding. (The apiserver's `format: byte` check refuses
/// line breaks, so those never reach a watch.) Pads `bytes` with newlines so that there is
/// padding to play with.
fn go_only_base64(bytes: &[u8]) -> String {
    let mut bytes = bytes.to_vec();
    while bytes.len().is_multiple_of(3) {
        bytes.push(b'\n');
    }
    let text = b64(&bytes);
    let trimmed = text.trim_end_matches('=');
    let padding = text.len() - trimmed.len();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let last = ALPHABET.iter().position(|c| *c == trimmed.as_bytes()[trimmed.len() - 1]).unwrap();
    let unused = if padding == 1 { 0b11 } else { 0b1111 };
    let changed = ALPHABET[last | unused] as char;
    let odd = format!("{}{changed}{}", &trimmed[..trimmed.len() - 1], "=".repeat(padding));
    use ::base64::Engine;
    let strict = ::base64::engine::general_purpose::STANDARD.decode(&odd);
    assert!(strict.is_err(), "a strict decoder refuses it");
    odd
}

fn relabel(pem: &[u8], label: &str) -> String {
    String::from_utf8_lossy(pem).replace("CERTIFICATE REQUEST", label)
}

/// Every refusal of the decoding and naming rules, with its exact reason, through the
/// apiserver; and what must still be issued (RSA-PSS, Go-style base64, an opted-in otherName).
#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_fail_with_the_exact_reason() {
    let mut h = Harness::new("hostile").await;
    world(&mut h).await;
    let approved = openssl_csr(P256, "/CN=approved.example", &["-addext", "subjectAltName=DNS:approved.example"]);
    let attacker = openssl_csr(P256, "/CN=attacker.example", &["-addext", "subjectAltName=DNS:attacker.example"]);
    let other_name = openssl_csr(
        P256,
        "/CN=o.example",
        &["-addext", "subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:admin@corp"],
    );
    let many_blocks: String = (0..60).map(|_| relabel(&approved, &"LONG".repeat(10))).collect();

    let cases: Vec<(&str, String, String)> = vec![
        (
            "bypass",
            format!("{}{}", relabel(&approved, "FOO"), String::from_utf8_lossy(&attacker)),
            "spec.request holds 2 PEM blocks (\"FOO\", \"CERTIFICATE REQUEST\"); exactly one, labelled CERTIFICATE REQUEST, is accepted".into(),
        ),
        ("label", relabel(&approved, "CERTIFICATE"), "spec.request holds a PEM block labelled \"CERTIFICATE\"; only CERTIFICATE REQUEST is accepted".into()),
        (
            "text-before",
            format!("hello\n{}", String::from_utf8_lossy(&approved)),
            "spec.request has 5 bytes of text before the PEM block; only whitespace may surround it".into(),
        ),
        (
            "other-name",
            String::from_utf8_lossy(&other_name).into_owned(),
            "the CSR requests a subjectAltName of type OtherName, which cert-manager's approvers cannot see; the issuer must list it in spec.policy.allowedSubjectAltNameTypes to accept it".into(),
        ),
        (
            "duplicate-cn",
            String::from_utf8_lossy(&openssl_csr(P256, "/CN=a.example/CN=b.example", &[])).into_owned(),
            "the CSR's subject has 2 commonName attributes; at most one is accepted".into(),
        ),
        (
            "bad-ip",
            String::from_utf8_lossy(&openssl_csr(P256, "/CN=x", &["-addext", "subjectAltName=DER:300a87050102030405820161"]))
                .into_owned(),
            "the CSR's subjectAltName entry 1 is a malformed IP address: 5 bytes; an IP address is 4 (IPv4) or 16 (IPv6) bytes"
                .into(),
        ),
        ("many-blocks", many_blocks, "spec.request holds 60 PEM blocks".into()),
        (
            "names-nothing",
            String::from_utf8_lossy(&openssl_csr(P256, "/", &[])).into_owned(),
            "the CSR names nothing: its subject is empty and it requests no subjectAltName".into(),
        ),
    ];
    let ours = json!({"name": "ca", "kind": "FerrumIssuer", "group": "ferrum.dev"});
    for (name, pem, _) in &cases {
        create_raw(&h, name, json!(b64(pem.as_bytes())), ours.clone()).await;
        h.decide(name, true).await;
    }
    for (name, _, expected) in &cases {
        let cr = h.request_reason(name, "Failed", Duration::from_secs(20)).await;
        let message = ready_message(&cr);
        assert!(message.starts_with(expected.as_str()), "{name}: {message:?} should start with {expected:?}");
        let status = cr.status.unwrap();
        assert!(status.certificate.is_empty() && status.failure_time.is_some(), "{name}: Failed, not signed");
    }

    // The long message reaches the event cut to what an event allows, not dropped.
    let events = eventually("the many-blocks event", Duration::from_secs(10), || async {
        let list = h.api::<Event>().list(&Default::default()).await.ok()?;
        list.items.into_iter().find(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("many-blocks"))
    })
    .await;
    let note = events.note.unwrap_or_default();
    assert!(
        note.len() <= 1024 && note.ends_with("...") && note.starts_with("spec.request holds 60 PEM blocks"),
        "{note}"
    );
    assert_eq!((events.type_.as_deref(), events.reason.as_deref()), (Some("Warning"), Some("Failed")));

    // Issued: an RSA-PSS request, and a request whose base64 only Go's reading accepts.
    let pss = openssl_csr(
        RSA2048,
        "/CN=pss.example",
        &["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest", "-sha256"],
    );
    create_raw(&h, "pss", json!(b64(&pss)), ours.clone()).await;
    create_raw(&h, "go-base64", json!(go_only_base64(&approved)), ours.clone()).await;
    for name in ["pss", "go-base64"] {
        h.decide(name, true).await;
        let cr = h.request_reason(name, "Issued", Duration::from_secs(20)).await;
        let leaf = String::from_utf8(cr.status.unwrap().certificate).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(leaf.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents).unwrap();
        let expected_cn = if name == "pss" { "pss.example" } else { "approved.example" };
        assert_eq!(cert.subject().iter_common_name().next().unwrap().as_str().unwrap(), expected_cn, "{name}");
    }

    // An issuer that opts in to otherName issues the request the default refuses.
    let spec = FerrumIssuerSpec {
        ca: Some(CaIssuerSpec { secret_name: "ca".into(), ..Default::default() }),
        policy: Some(IssuerPolicy { allowed_subject_alt_name_types: vec![SanType::OtherName], ..Default::default() }),
        ..Default::default()
    };
    let issuer = ferrum::Issuer::new("upn", &kinds().api_resource(IssuerScope::Namespaced), spec);
    h.issuers(IssuerScope::Namespaced).create(&PostParams::default(), &issuer).await.unwrap();
    h.issuer_ready(IssuerScope::Namespaced, "upn", "True").await;
    create_raw(
        &h,
        "upn",
        json!(b64(&other_name)),
        json!({"name": "upn", "kind": "FerrumIssuer", "group": "ferrum.dev"}),
    )
    .await;
    h.decide("upn", true).await;
    h.request_reason("upn", "Issued", Duration::from_secs(20)).await;
    assert!(!h.ferrum_log().contains("panicked"));
}

/// The apiserver refuses a `secretName` that is not a Kubernetes name.
#[tokio::test(flavor = "multi_thread")]
async fn issuer_names_are_validated_by_the_apiserver() {
    let h = Harness::new("names").await;
    for bad in ["Upper", "with space", "-dash", &"a".repeat(254), ""] {
        let spec = FerrumIssuerSpec {
            ca: Some(CaIssuerSpec { secret_name: bad.into(), ..Default::default() }),
            ..Default::default()
        };
        let issuer = ferrum::Issuer::new("bad", &kinds().api_resource(IssuerScope::Namespaced), spec);
        let err = h.issuers(IssuerScope::Namespaced).create(&PostParams::default(), &issuer).await.unwrap_err();
        assert!(err.to_string().contains("secretName"), "{bad:?}: {err}");
    }
}

/// Objects the apiserver accepts but a strict reader would not: a request for another issuer
/// whose base64 has non-zero trailing bits (Go reads it, a strict decoder does not), one whose
/// Approved condition carries a timestamp that the apiserver's date-time pattern accepts (any
/// character before the fraction, any two-digit offset) and `Time` does not, and one of ours with such base64. Ferrum,
/// started and restarted with them present, syncs, reports ready and issues within 20 s.
#[tokio::test(flavor = "multi_thread")]
async fn poisoned_objects_do_not_stop_ferrum() {
    let mut h = Harness::new("poison").await;
    let ca = make_ca("Poison CA", CaOptions::default());
    h.create_secret(&h.ns, "ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    h.create_issuer(IssuerScope::Namespaced, "ca", "ca").await;
    let foreign = json!({"name": "other", "kind": "Issuer", "group": "cert-manager.io"});
    create_raw(&h, "foreign-base64", json!(go_only_base64(&csr_pem("f.example"))), foreign.clone()).await;
    create_raw(&h, "foreign-time", json!(b64(&csr_pem("t.example"))), foreign).await;
    let odd_time = json!({"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest", "status": {"conditions": [{
        "type": "Approved", "status": "True", "reason": "x", "message": "x",
        "lastTransitionTime": "2026-11-30T10:00:00x5+99:00"}]}});
    h.api::<CertificateRequest>()
        .patch_status("foreign-time", &PatchParams::apply("e2e-odd").force(), &Patch::Apply(odd_time))
        .await
        .expect("the apiserver accepts the timestamp");
    let ours = json!({"name": "ca", "kind": "FerrumIssuer", "group": "ferrum.dev"});
    create_raw(&h, "ours-base64", json!(go_only_base64(&csr_pem("o.example"))), ours).await;
    h.decide("ours-base64", true).await;

    for round in 0..2 {
        let replica = format!("ferrum-{round}");
        let started = Instant::now();
        h.start_ferrum_replica(&replica, &[]).await;
        h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
        let name = format!("normal-{round}");
        h.create_request(&name, &csr_pem("n.example"), ferrum_ref(IssuerScope::Namespaced, "ca")).await;
        h.decide(&name, true).await;
        h.request_reason(&name, "Issued", Duration::from_secs(20)).await;
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "round {round}: issued {:?} after start",
            started.elapsed()
        );
        let log = std::fs::read_to_string(h.process(&replica).log_path()).unwrap();
        let (health, _) = addresses(&log).expect("probe addresses in the log");
        eventually("/readyz 200", Duration::from_secs(10), || async {
            (http_get(&health, "/readyz").await.0 == 200).then_some(())
        })
        .await;
        h.request_reason("ours-base64", "Issued", Duration::from_secs(5)).await;
        h.process(&replica).stop();
    }
    // The foreign requests were left alone.
    for name in ["foreign-base64", "foreign-time"] {
        let cr = h.api::<CertificateRequest>().get(name).await.unwrap();
        assert!(cr.condition("Ready").is_none(), "{name} is not ours: nothing written");
    }
    assert!(!h.ferrum_log().contains("failed to deserialize"), "no deserialization failure");
}
