//! Contract §2: issuer health, Secret scoping, re-checks on Secret changes.

use std::time::Duration;

use ferrum::ca::{FerrumIssuerSpec, kinds};
use ferrum::{CertificateRequest, Issuer, IssuerScope};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, PostParams};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn issuer_reports_each_broken_ca_precisely_and_recovers() {
    let mut h = Harness::new("health").await;
    h.start_ferrum(&[]).await;
    let ns = h.ns.clone();
    let good = make_ca("Good CA", CaOptions::default());
    let other = make_ca("Other CA", CaOptions::default());
    let leaf = make_ca("Not a CA", CaOptions { is_ca: false, ..Default::default() });
    let expired = make_ca("Expired CA", CaOptions { expired: true, ..Default::default() });
    let foreign_intermediate = make_intermediate(&other, "Other's intermediate", CaOptions::default());

    h.create_issuer(IssuerScope::Namespaced, "ca", "ca").await;
    let (reason, message) = h.issuer_ready(IssuerScope::Namespaced, "ca", "False").await;
    assert_eq!(reason, "SecretNotFound");
    assert!(message.contains(&format!("{ns}/ca")), "{message}");

    // A request waits while the issuer is broken.
    h.create_request("waiting", &csr_pem("waiting.example"), ferrum_ref(IssuerScope::Namespaced, "ca")).await;
    h.decide("waiting", true).await;
    h.request_reason("waiting", "Pending", Duration::from_secs(20)).await;

    type Data<'a> = Vec<(&'a str, &'a [u8])>;
    let cases: Vec<(&str, Data, &str)> = vec![
        (
            "junk key",
            vec![
                ("tls.crt", good.cert_pem.as_bytes()),
                ("tls.key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            ],
            "InvalidSecret",
        ),
        ("no key", vec![("tls.crt", good.cert_pem.as_bytes())], "InvalidSecret"),
        ("not a CA", vec![("tls.crt", leaf.cert_pem.as_bytes()), ("tls.key", leaf.key_pem.as_bytes())], "NotACA"),
        (
            "key mismatch",
            vec![("tls.crt", good.cert_pem.as_bytes()), ("tls.key", other.key_pem.as_bytes())],
            "KeyMismatch",
        ),
        (
            "expired",
            vec![("tls.crt", expired.cert_pem.as_bytes()), ("tls.key", expired.key_pem.as_bytes())],
            "CAExpired",
        ),
        (
            // An intermediate of another root, with `good` as ca.crt: every certificate would
            // fail path validation; the issuer says why and the request waits.
            "chain that does not link",
            vec![
                ("tls.crt", foreign_intermediate.cert_pem.as_bytes()),
                ("tls.key", foreign_intermediate.key_pem.as_bytes()),
                ("ca.crt", good.cert_pem.as_bytes()),
            ],
            "InvalidChain",
        ),
    ];
    let mut created = false;
    for (what, data, expected) in cases {
        if created {
            h.replace_secret(&ns, "ca", &data).await;
        } else {
            h.create_secret(&ns, "ca", &data).await;
            created = true;
        }
        let api = h.issuers(IssuerScope::Namespaced);
        let message = eventually(&format!("{what}: reason {expected}"), Duration::from_secs(20), || async {
            let issuer = api.get("ca").await.ok()?;
            let c = issuer.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
            (c.reason.as_deref() == Some(expected)).then(|| c.message.unwrap_or_default())
        })
        .await;
        assert!(!message.contains("AAAA") && !message.contains("PRIVATE KEY"), "{what}: no key material: {message}");
        let issuer = api.get("ca").await.unwrap();
        let ready = issuer.status.unwrap().conditions.into_iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.observed_generation, issuer.metadata.generation, "{what}: observedGeneration");
        let cr = h.api::<CertificateRequest>().get("waiting").await.unwrap();
        assert_eq!(cr.condition("Ready").and_then(|c| c.reason.as_deref()), Some("Pending"), "{what}");
    }

    h.replace_secret(&ns, "ca", &[("tls.crt", good.cert_pem.as_bytes()), ("tls.key", good.key_pem.as_bytes())]).await;
    assert_eq!(h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await.0, "Checked");
    h.request_reason("waiting", "Issued", Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_issuer_reads_secrets_only_from_the_cluster_resource_namespace() {
    let mut h = Harness::new("crns").await;
    h.start_ferrum(&[]).await;
    let ca = make_ca("Cluster CA", CaOptions::default());
    let name = format!("crns-{}", h.ns);
    // The Secret exists in the test's namespace only.
    h.create_secret(&h.ns, &name, &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    h.create_issuer(IssuerScope::Cluster, &name, &name).await;
    let (reason, message) = h.issuer_ready(IssuerScope::Cluster, &name, "False").await;
    assert_eq!(reason, "SecretNotFound");
    assert!(message.contains(&format!("{CLUSTER_RESOURCE_NAMESPACE}/{name}")), "{message}");
    // Put it in the cluster resource namespace: the issuer turns Ready.
    h.create_secret(
        CLUSTER_RESOURCE_NAMESPACE,
        &name,
        &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())],
    )
    .await;
    h.issuer_ready(IssuerScope::Cluster, &name, "True").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn issuer_without_a_backend_is_invalid() {
    let mut h = Harness::new("nobackend").await;
    h.start_ferrum(&[]).await;
    let issuer = Issuer::new("empty", &kinds().api_resource(IssuerScope::Namespaced), FerrumIssuerSpec::default());
    h.issuers(IssuerScope::Namespaced).create(&PostParams::default(), &issuer).await.unwrap();
    let (reason, message) = h.issuer_ready(IssuerScope::Namespaced, "empty", "False").await;
    assert_eq!(reason, "InvalidSpec");
    assert!(message.contains("exactly one backend"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ca_expiring_within_30_days_gets_a_warning_event() {
    let mut h = Harness::new("expiring").await;
    h.start_ferrum(&[]).await;
    let ca = make_ca("Short CA", CaOptions { days: 10, ..Default::default() });
    h.create_secret(&h.ns, "ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    h.create_issuer(IssuerScope::Namespaced, "ca", "ca").await;
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    let events = h.api::<Event>();
    let note = eventually("CAExpiringSoon event", Duration::from_secs(20), || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| e.reason.as_deref() == Some("CAExpiringSoon")).and_then(|e| e.note)
    })
    .await;
    assert!(note.contains("expires in 9 days") || note.contains("expires in 10 days"), "{note}");

    // A request for 90 days (the CA has 10 left) is clamped to the CA's expiry: the certificate
    // ends with the CA, and the request's one event is `Issued` (contract row 9), a Warning that
    // says so.
    let spec = ferrum::CertificateRequestSpec {
        request: csr_pem("clamped.example"),
        issuer_ref: ferrum_ref(IssuerScope::Namespaced, "ca"),
        duration: Some("2160h".into()),
        ..Default::default()
    };
    h.create_request_spec("clamped", spec).await;
    h.decide("clamped", true).await;
    let issued = h.request_reason("clamped", "Issued", Duration::from_secs(20)).await;
    assert_eq!(ready_message(&issued), "Certificate fetched from issuer successfully");
    let chain = pem_certs(&issued.status.unwrap().certificate);
    let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    let ca_der = pem_certs(ca.cert_pem.as_bytes()).remove(0);
    let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    assert_eq!(
        leaf.validity().not_after.timestamp(),
        ca_cert.validity().not_after.timestamp(),
        "clamped to the CA's notAfter, not 90 days"
    );
    let events = h.settled_events_about("clamped").await;
    assert_eq!(events.len(), 1, "one event per issuance: {events:#?}");
    assert_eq!((events[0].type_.as_deref(), events[0].reason.as_deref()), (Some("Warning"), Some("Issued")));
    let note = events[0].note.clone().unwrap_or_default();
    let expected = "Certificate fetched from issuer successfully; DurationClamped: the requested duration runs past \
                    the CA's expiry; the certificate expires with the CA, in";
    assert!(note.starts_with(expected) && (note.ends_with(" 9 days") || note.ends_with(" 10 days")), "{note}");
}

/// Re-checks every second for five seconds: the CA's expiry warning is published once, not on
/// every re-check.
#[tokio::test(flavor = "multi_thread")]
async fn ca_expiring_soon_is_said_once_not_on_every_recheck() {
    let mut h = Harness::new("expiring-once").await;
    h.start_ferrum(&["--issuer-recheck-interval", "1s"]).await;
    let ca = make_ca("Short CA", CaOptions { days: 10, ..Default::default() });
    h.create_secret(&h.ns, "ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    h.create_issuer(IssuerScope::Namespaced, "ca", "ca").await;
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let list = h.api::<Event>().list(&ListParams::default()).await.unwrap();
    let warnings = list.items.iter().filter(|e| e.reason.as_deref() == Some("CAExpiringSoon")).count();
    assert_eq!(warnings, 1, "one CAExpiringSoon event over five re-checks (it was one per re-check)");
}
