//! Contract §1 row by row, driven by hand: no cert-manager, the test approves and denies.

use std::time::{Duration, Instant};

use ferrum::{CertificateRequest, CertificateRequestSpec, IssuerScope};
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn unapproved_request_waits_then_is_issued_with_one_status_write() {
    let (h, _ca) = ready_world("approval", &[]).await;
    let created = h.create_request("r1", &csr_pem("r1.example"), ferrum_ref(IssuerScope::Namespaced, "ca")).await;
    let versions = h.record_versions("r1", created.metadata.resource_version.as_deref().unwrap());

    tokio::time::sleep(Duration::from_secs(3)).await;
    let api = h.api::<CertificateRequest>();
    let waiting = api.get("r1").await.unwrap();
    assert!(waiting.status.is_none_or(|s| s.conditions.is_empty()), "nothing is written before approval");
    assert!(versions.lock().unwrap().is_empty(), "no write before approval");

    h.decide("r1", true).await;
    let issued = h.request_reason("r1", "Issued", Duration::from_secs(20)).await;
    let status = issued.status.clone().unwrap();
    assert!(!status.certificate.is_empty() && !status.ca.is_empty());
    assert!(status.failure_time.is_none());
    assert!(issued.condition_true("Approved"), "the approver's condition is kept");

    // A no-op reconcile: touch the request; Ferrum must write nothing more.
    api.patch("r1", &PatchParams::apply("e2e-touch"), &Patch::Apply(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest", "metadata": { "labels": { "touched": "yes" } }
    })))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let versions = versions.lock().unwrap().clone();
    // approve, issue, touch: three versions; the issuing one carries certificate and Ready together.
    assert_eq!(versions.len(), 3, "writes seen: {:#?}", versions.iter().map(|v| &v.status).collect::<Vec<_>>());
    assert!(versions[0].condition_true("Approved") && versions[0].condition("Ready").is_none());
    assert!(versions[1].condition_true("Ready") && !versions[1].status.as_ref().unwrap().certificate.is_empty());
    assert_eq!(versions[2].metadata.labels.as_ref().and_then(|l| l.get("touched")).map(String::as_str), Some("yes"));
    assert_eq!(versions[2].status, versions[1].status);
    // One event per issuance: Normal `Issued`, its note the Ready condition's message.
    let events = h.settled_events_about("r1").await;
    assert_eq!(ready_message(&issued), "Certificate fetched from issuer successfully");
    assert_one_event(&events, "Normal", "Issued", &ready_message(&issued));
    assert_eq!(events[0].reporting_controller.as_deref(), Some("ferrum"), "reported by Ferrum's field manager");
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_request_is_marked_denied_with_failure_time() {
    let (h, _ca) = ready_world("denied", &[]).await;
    h.create_request("r1", &csr_pem("r1.example"), ferrum_ref(IssuerScope::Namespaced, "ca")).await;
    h.decide("r1", false).await;
    let cr = h.request_reason("r1", "Denied", Duration::from_secs(20)).await;
    let status = cr.status.unwrap();
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "False");
    assert!(status.failure_time.is_some(), "failureTime set with Ready=False/Denied");
    assert!(status.certificate.is_empty(), "a denied request is never signed");
    assert!(!status.conditions.iter().any(|c| c.type_ == "Approved"));
    assert_eq!(ready.message.as_deref(), Some("The CertificateRequest was denied by an approval controller"));
    // One Warning event `Denied` carrying the same message.
    let events = h.settled_events_about("r1").await;
    assert_one_event(&events, "Warning", "Denied", ready.message.as_deref().unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread")]
async fn approval_gate_off_signs_unapproved_but_not_denied() {
    let (h, _ca) = ready_world("gateoff", &["--disable-approval-check"]).await;
    h.create_request("open", &csr_pem("open.example"), ferrum_ref(IssuerScope::Namespaced, "ca")).await;
    h.request_reason("open", "Issued", Duration::from_secs(20)).await;
    // Denied wins even with the gate off. Create, deny at once; Ferrum may race to sign it
    // first, so accept either outcome but never both.
    h.create_request("shut", &csr_pem("shut.example"), ferrum_ref(IssuerScope::Namespaced, "missing")).await;
    h.decide("shut", false).await;
    let cr = h.request_reason("shut", "Denied", Duration::from_secs(20)).await;
    assert!(cr.status.unwrap().certificate.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn request_waits_for_its_issuer_and_is_issued_when_it_turns_ready() {
    let mut h = Harness::new("late").await;
    h.start_ferrum(&[]).await;
    h.create_request("r1", &csr_pem("late.example"), ferrum_ref(IssuerScope::Namespaced, "late")).await;
    h.decide("r1", true).await;
    let pending = h.request_reason("r1", "Pending", Duration::from_secs(20)).await;
    let message = pending.condition("Ready").unwrap().message.clone().unwrap();
    assert!(message.contains("FerrumIssuer") && message.contains("late") && message.contains("not found"), "{message}");

    // Issuer appears, Secret missing: Pending carries the issuer's reason.
    h.create_issuer(IssuerScope::Namespaced, "late", "late-ca").await;
    h.issuer_ready(IssuerScope::Namespaced, "late", "False").await;
    let api = h.api::<CertificateRequest>();
    eventually("Pending message with the issuer's reason", Duration::from_secs(20), || async {
        let cr = api.get("r1").await.ok()?;
        cr.condition("Ready")?.message.as_deref()?.contains("SecretNotFound").then_some(())
    })
    .await;

    // The Secret appears: the issuer turns Ready through the Secret watch, and the request is
    // issued within seconds (the re-check timer is 5 minutes, so this is the watch).
    let ca = make_ca("Late CA", CaOptions::default());
    let start = Instant::now();
    h.create_secret(&h.ns, "late-ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    h.request_reason("r1", "Issued", Duration::from_secs(10)).await;
    eprintln!("issued {:?} after the CA Secret appeared", start.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_requests_fail_with_a_message_that_says_why() {
    let (h, _ca) = ready_world("invalid", &[]).await;
    let issuer = || ferrum_ref(IssuerScope::Namespaced, "ca");
    let valid = csr_pem("valid.example");
    let tampered = {
        let text = String::from_utf8(valid.clone()).unwrap();
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut der = ferrum::x509::go_base64_decode(&body).unwrap();
        let at = der.windows(5).position(|w| w == b"valid").unwrap();
        der[at] = b'V';
        pem_encode("CERTIFICATE REQUEST", &der).into_bytes()
    };
    let dir = tempfile::tempdir().unwrap();
    let openssl_csr = |keygen: &[&str], digest: &str| {
        let mut args = vec!["genpkey"];
        args.extend(keygen);
        args.extend(["-out", "k.pem"]);
        assert!(openssl(dir.path(), &args).0);
        let (ok, out) =
            openssl(dir.path(), &["req", "-new", "-key", "k.pem", "-subj", "/CN=x.example", digest, "-out", "r.pem"]);
        assert!(ok, "{out}");
        std::fs::read(dir.path().join("r.pem")).unwrap()
    };
    let sha1 = openssl_csr(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "-sha1");
    let rsa1024 = openssl_csr(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], "-sha256");
    let oversize = vec![b'A'; 40_000];
    // A CSR asking for `digital signature` only, while spec.usages is empty (the default is
    // digital signature + key encipherment).
    let digital_signature_only = {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["ku.example".into()]).unwrap();
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.serialize_request(&key).unwrap().pem().unwrap().into_bytes()
    };

    let cases: Vec<(&str, CertificateRequestSpec, &str)> = vec![
        (
            "garbage",
            spec(b"garbage".to_vec(), issuer()),
            "spec.request holds no PEM block; expected exactly one labelled CERTIFICATE REQUEST",
        ),
        ("tampered", spec(tampered, issuer()), "signature does not verify"),
        ("sha1", spec(sha1, issuer()), "SHA-1"),
        ("rsa1024", spec(rsa1024, issuer()), "RSA key of 1024 bits"),
        ("oversize", spec(oversize, issuer()), "over the limit of 36500 bytes"),
        ("usages", spec(digital_signature_only, issuer()), "the CSR requests key usages"),
        (
            "duration",
            CertificateRequestSpec { duration: Some("10m".into()), ..spec(valid.clone(), issuer()) },
            "shorter than the minimum",
        ),
    ];
    for (name, spec, _) in &cases {
        h.create_request_spec(name, spec.clone()).await;
        h.decide(name, true).await;
    }
    let mut messages = Vec::new();
    for (name, _, expected) in &cases {
        let cr = h.request_reason(name, "Failed", Duration::from_secs(20)).await;
        let status = cr.status.unwrap();
        let message = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap().message.clone().unwrap();
        assert!(message.contains(expected), "{name}: {message:?} should say {expected:?}");
        assert!(status.failure_time.is_some(), "{name}: failureTime");
        assert!(status.certificate.is_empty(), "{name}: not signed");
        messages.push((name, message));
    }
    // Each gets one Warning event `Failed` whose note is the condition's message.
    eventually("an event about every failed request", Duration::from_secs(20), || async {
        for (name, _) in &messages {
            h.events_about(name).await.first()?;
        }
        Some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (name, message) in &messages {
        assert_one_event(&h.events_about(name).await, "Warning", "Failed", message);
    }
    // Ferrum keeps serving.
    h.create_request("after", &valid, issuer()).await;
    h.decide("after", true).await;
    h.request_reason("after", "Issued", Duration::from_secs(20)).await;
    assert!(!h.ferrum_log().contains("panicked"), "no panic in Ferrum's log");
}

/// An isCA request whose CSR carries no basic constraints is accepted; one whose CSR says CA
/// while the spec says leaf is refused naming isCA.
#[tokio::test(flavor = "multi_thread")]
async fn is_ca_contradicting_the_csr_fails() {
    let (h, _ca) = ready_world("isca", &[]).await;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["ca.example".into()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let csr = params.serialize_request(&key).unwrap().pem().unwrap().into_bytes();
    h.create_request_spec("leaf-spec", spec(csr, ferrum_ref(IssuerScope::Namespaced, "ca"))).await;
    h.decide("leaf-spec", true).await;
    let cr = h.request_reason("leaf-spec", "Failed", Duration::from_secs(20)).await;
    let message = cr.condition("Ready").unwrap().message.clone().unwrap();
    assert!(message.contains("isCA=true") && message.contains("spec.isCA is false"), "{message}");
}

fn spec(request: Vec<u8>, issuer_ref: ferrum::IssuerReference) -> CertificateRequestSpec {
    CertificateRequestSpec { request, issuer_ref, ..Default::default() }
}
