//! Revocation on the real control plane: `CertificateRevocation` objects, CRLs signed by the
//! issuer's CA and served by every replica, judged by OpenSSL.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ferrum::IssuerScope;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::flow::{certificate_ready, create_certificate, secret_data};
use crate::support::*;

fn revocations_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("ferrum.dev", "v1alpha1", "CertificateRevocation"),
        "certificaterevocations",
    )
}

fn revocations(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &revocations_resource())
}

pub(crate) async fn create_revocation(
    client: &kube::Client,
    ns: &str,
    name: &str,
    spec: Value,
) -> Result<(), kube::Error> {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "ferrum.dev/v1alpha1", "kind": "CertificateRevocation",
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("revocation object");
    revocations(client, ns).create(&PostParams::default(), &object).await.map(|_| ())
}

/// Waits until the revocation's `Revoked` condition has a reason, and returns its status.
pub(crate) async fn settled(h: &Harness, ns: &str, name: &str, reason: &str) -> Value {
    let api = revocations(&h.client, ns);
    eventually(&format!("revocation {name} reason {reason}"), Duration::from_secs(30), || async {
        let object = api.get(name).await.ok()?;
        let status = object.data.get("status")?.clone();
        let condition = status["conditions"].as_array()?.iter().find(|c| c["type"] == "Revoked")?.clone();
        (condition["reason"] == reason).then_some(status)
    })
    .await
}

/// The serial (lower-case hex, no leading zeros) of the first certificate of a PEM chain.
pub(crate) fn serial_of(pem: &[u8]) -> String {
    let der = pem_certs(pem).into_iter().next().expect("a certificate");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("certificate parses");
    hex_serial(cert.raw_serial())
}

/// A serial's bytes as the ledger and statuses write it: lower-case hex, no leading zero bytes.
fn hex_serial(bytes: &[u8]) -> String {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len().saturating_sub(1));
    bytes[first..].iter().map(|b| format!("{b:02x}")).collect()
}

/// The CRL distribution point URIs of the first certificate of a PEM chain.
fn distribution_points(pem: &[u8]) -> Vec<String> {
    use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
    let der = pem_certs(pem).into_iter().next().expect("a certificate");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("certificate parses");
    let mut out = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let GeneralName::URI(uri) = name {
                            out.push((*uri).to_owned());
                        }
                    }
                }
            }
        }
    }
    out
}

/// The serials a CRL (DER) lists, and its CRL number.
pub(crate) fn crl_contents(der: &[u8]) -> (BTreeSet<String>, u64) {
    let (_, crl) = x509_parser::parse_x509_crl(der).expect("the CRL parses");
    let serials = crl.iter_revoked_certificates().map(|r| hex_serial(r.raw_serial())).collect();
    let number = crl.crl_number().and_then(|n| u64::try_from(n).ok()).expect("a CRL number");
    (serials, number)
}

/// The name of the CertificateRequest cert-manager made for a Certificate.
async fn request_of(h: &Harness, certificate: &str) -> String {
    let requests = h.api::<ferrum::CertificateRequest>().list(&ListParams::default()).await.expect("list requests");
    requests
        .items
        .into_iter()
        .find(|r| {
            r.metadata.annotations.as_ref().and_then(|a| a.get("cert-manager.io/certificate-name")).map(String::as_str)
                == Some(certificate)
        })
        .and_then(|r| r.metadata.name)
        .unwrap_or_else(|| panic!("no CertificateRequest of Certificate {certificate}"))
}

/// Fetches the CRL from a replica until `ready` accepts it; (DER, when it was accepted).
pub(crate) async fn fetch_crl_until(
    addr: &str,
    path: &str,
    ready: impl Fn(&BTreeSet<String>) -> bool,
) -> (Vec<u8>, Instant) {
    eventually(&format!("a CRL at {addr}{path}"), Duration::from_secs(30), || async {
        let (status, head, body) = http_get_bytes(addr, path).await;
        if status != 200 {
            return None;
        }
        assert!(head.to_ascii_lowercase().contains("content-type: application/pkix-crl"), "{head}");
        let (serials, _) = crl_contents(&body);
        ready(&serials).then(|| (body, Instant::now()))
    })
    .await
}

async fn crl_issuer(h: &Harness, name: &str, extra: Value) {
    let mut crl = json!({"baseURL": "http://ferrum-crl.test", "validity": "10m"});
    if let (Some(crl), Some(extra)) = (crl.as_object_mut(), extra.as_object()) {
        crl.extend(extra.clone());
    }
    h.create_issuer_spec(IssuerScope::Namespaced, name, json!({"ca": {"secretName": name}, "crl": crl})).await;
    h.issuer_ready(IssuerScope::Namespaced, name, "True").await;
}

/// The issue's main scenario: three leaves through cert-manager, one revoked by Certificate and
/// one by CertificateRequest; the CRL over HTTP within 5 s, verified by OpenSSL, rejecting
/// exactly those two; the follower serving the same bytes; the entries kept after the
/// revocation objects are deleted and the leader restarts, with a higher CRL number.
#[tokio::test(flavor = "multi_thread")]
async fn revoked_certificates_are_on_the_crl_every_replica_serves() {
    let mut h = Harness::new("revoke").await;
    h.start_cert_manager(true).await;
    let leader = h.start_ferrum_replica("ferrum-a", &[]).await.name().to_owned();
    eventually("replica a leads", Duration::from_secs(30), || async {
        (lease_holder(&h).await.as_deref() == Some("ferrum-a")).then_some(())
    })
    .await;
    h.start_ferrum_replica("ferrum-b", &[]).await;
    let ca = make_ca("Revocation CA", CaOptions::default());
    h.create_secret(&h.ns, "ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    crl_issuer(&h, "ca", json!({})).await;

    let issuer_ref = json!({"name": "ca", "kind": "FerrumIssuer", "group": "ferrum.dev"});
    for name in ["one", "two", "three"] {
        create_certificate(&h, name, issuer_ref.clone(), json!({"dnsNames": [format!("{name}.example.com")]})).await;
    }
    let mut leaves = Vec::new();
    for name in ["one", "two", "three"] {
        certificate_ready(&h, name).await;
        leaves.push(secret_data(&h, &format!("{name}-tls"), "tls.crt").await);
    }
    let path = format!("/namespaces/{}/ferrumissuers/ca.crl", h.ns);
    for leaf in &leaves {
        assert_eq!(distribution_points(leaf), [format!("http://ferrum-crl.test{path}")], "the CRL's URL in every leaf");
    }
    let serials: Vec<String> = leaves.iter().map(|l| serial_of(l)).collect();

    let leader_addr = crl_address(&h.process(&leader).log_tail(2000)).expect("replica a serves CRLs");
    let follower_addr = crl_address(&h.process("ferrum-b").log_tail(2000)).expect("replica b serves CRLs");
    // Before any revocation: the leader publishes an empty CRL for the issuer.
    let (_, _) = fetch_crl_until(&leader_addr, &path, |s| s.is_empty()).await;

    let two_request = request_of(&h, "two").await;
    let asked = Instant::now();
    create_revocation(
        &h.client,
        &h.ns,
        "revoke-one",
        json!({"certificateRef": {"name": "one"}, "reason": "keyCompromise"}),
    )
    .await
    .expect("create revocation by Certificate");
    create_revocation(&h.client, &h.ns, "revoke-two", json!({"certificateRequestRef": {"name": two_request}}))
        .await
        .expect("create revocation by CertificateRequest");
    let wanted: BTreeSet<String> = serials[..2].iter().cloned().collect();
    let (crl, listed) = fetch_crl_until(&leader_addr, &path, |s| *s == wanted).await;
    let latency = listed - asked;
    eprintln!("both revocations on the served CRL {latency:?} after they were created");
    assert!(latency < Duration::from_secs(5), "the CRL listed them after {latency:?}");

    for (name, serial) in [("revoke-one", &serials[0]), ("revoke-two", &serials[1])] {
        let status = settled(&h, &h.ns, name, "Revoked").await;
        assert_eq!(status["serialNumber"], json!(serial), "{status}");
        assert_eq!(status["issuer"], json!(format!("FerrumIssuer/{}/ca", h.ns)), "{status}");
        assert!(status["revokedAt"].is_string() && status["notAfter"].is_string(), "{status}");
    }

    // OpenSSL: the CRL verifies with the CA; exactly the two revoked leaves are refused.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), &ca.cert_pem).expect("write");
    std::fs::write(dir.path().join("crl.der"), &crl).expect("write");
    let (ok, out) = openssl(
        dir.path(),
        &["crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-verify", "-noout", "-text"],
    );
    assert!(ok && out.contains("verify OK"), "{out}");
    assert!(out.contains("Key Compromise"), "the reason of revoke-one: {out}");
    let (ok, pem) = openssl(dir.path(), &["crl", "-inform", "DER", "-in", "crl.der", "-outform", "PEM"]);
    assert!(ok, "{pem}");
    std::fs::write(dir.path().join("crl.pem"), &pem).expect("write");
    for (i, leaf) in leaves.iter().enumerate() {
        let file = format!("leaf{i}.pem");
        std::fs::write(dir.path().join(&file), leaf).expect("write");
        let (ok, out) =
            openssl(dir.path(), &["verify", "-crl_check", "-CAfile", "ca.pem", "-CRLfile", "crl.pem", &file]);
        if i < 2 {
            assert!(!ok && out.contains("certificate revoked"), "leaf {i} must be refused: {out}");
        } else {
            assert!(ok, "leaf {i} must be accepted: {out}");
        }
    }

    // The follower serves the same CRL, byte for byte; the ConfigMap holds it as PEM.
    let (follower_crl, _) = fetch_crl_until(&follower_addr, &path, |s| *s == wanted).await;
    assert_eq!(follower_crl, crl, "the follower serves the leader's CRL");
    let cm = h.api::<ConfigMap>().get("ca-crl").await.expect("the CRL ConfigMap");
    let data = cm.data.unwrap_or_default();
    assert_eq!(data.get("ca.crl").map(|p| p.trim().to_owned()), Some(pem.trim().to_owned()), "ca.crl in the ConfigMap");
    let (_, follower_metrics) = addresses(&h.process("ferrum-b").log_tail(2000)).expect("follower metrics address");
    let (_, text) = http_get(&follower_metrics, "/metrics").await;
    let series = format!(r#"ferrum_crl_entries{{kind="FerrumIssuer",namespace="{}",name="ca"}}"#, h.ns);
    assert_eq!(metric(&text, &series), Some(2.0), "{text}");
    let age = format!(r#"ferrum_crl_age_seconds{{kind="FerrumIssuer",namespace="{}",name="ca"}}"#, h.ns);
    assert!(metric(&text, &age).is_some_and(|a| (0.0..600.0).contains(&a)), "{text}");
    let (_, leader_metrics) = addresses(&h.process(&leader).log_tail(2000)).expect("leader metrics address");
    let (_, text) = http_get(&leader_metrics, "/metrics").await;
    let revoked = format!(
        r#"ferrum_revocations_total{{kind="FerrumIssuer",namespace="{}",name="ca",reason="revocation"}}"#,
        h.ns
    );
    assert_eq!(metric(&text, &revoked), Some(2.0), "{text}");

    // Deleting the revocations un-revokes nothing. Leadership moves to b, which signs a CRL of
    // its own; then every replica stops and a fresh one starts: its CRL still lists both, with a
    // higher number again.
    let (_, number_before) = crl_contents(&crl);
    for name in ["revoke-one", "revoke-two"] {
        revocations(&h.client, &h.ns).delete(name, &DeleteParams::default()).await.expect("delete revocation");
    }
    h.process(&leader).stop();
    eventually("replica b leads", Duration::from_secs(40), || async {
        (lease_holder(&h).await.as_deref() == Some("ferrum-b")).then_some(())
    })
    .await;
    let (after, number_b) = eventually("a CRL from the new leader", Duration::from_secs(30), || async {
        let (status, _, body) = http_get_bytes(&follower_addr, &path).await;
        let number = crl_contents(&body).1;
        (status == 200 && number > number_before).then_some((body, number))
    })
    .await;
    assert_eq!(crl_contents(&after).0, wanted, "the entries outlive their revocation objects and the leader");
    h.process("ferrum-b").stop();
    let fresh = h.start_ferrum_replica("ferrum-c", &[]).await.name().to_owned();
    let fresh_addr = eventually("replica c serves CRLs", Duration::from_secs(20), || async {
        crl_address(&h.process(&fresh).log_tail(2000))
    })
    .await;
    let (restarted, number_c) = eventually("a CRL from the restarted Ferrum", Duration::from_secs(40), || async {
        let (status, _, body) = http_get_bytes(&fresh_addr, &path).await;
        let number = crl_contents(&body).1;
        (status == 200 && number > number_b).then_some((body, number))
    })
    .await;
    assert_eq!(crl_contents(&restarted).0, wanted, "the entries outlive a restart of every replica");
    eprintln!("CRL numbers: {number_before}, then {number_b} (leader change), then {number_c} (restart)");
}

/// Hostile and mistaken revocations each get a clear status, and the CRL does not change.
#[tokio::test(flavor = "multi_thread")]
async fn bad_revocations_get_a_clear_status_and_change_nothing() {
    let mut h = Harness::new("revoke-bad").await;
    h.start_cert_manager(true).await;
    h.start_ferrum(&[]).await;
    let ca = make_ca("Revocation CA", CaOptions::default());
    h.create_secret(&h.ns, "ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    crl_issuer(&h, "ca", json!({})).await;
    let issuer_ref = json!({"name": "ca", "kind": "FerrumIssuer", "group": "ferrum.dev"});
    create_certificate(&h, "web", issuer_ref.clone(), json!({"dnsNames": ["web.example.com"]})).await;
    create_certificate(&h, "victim", issuer_ref, json!({"dnsNames": ["victim.example.com"]})).await;
    certificate_ready(&h, "web").await;
    certificate_ready(&h, "victim").await;
    let web_request = request_of(&h, "web").await;
    create_revocation(&h.client, &h.ns, "first", json!({"certificateRequestRef": {"name": web_request}}))
        .await
        .expect("create");
    settled(&h, &h.ns, "first", "Revoked").await;
    let configmaps = h.api::<ConfigMap>();
    let before = configmaps.get("ca-crl").await.expect("the CRL's copy for consumers");
    let ledgers: Api<ConfigMap> = Api::namespaced(h.client.clone(), CLUSTER_RESOURCE_NAMESPACE);
    let ledger_name =
        ferrum::revocation::ledger_config_map_name(&ferrum::issuer::kinds(), IssuerScope::Namespaced, &h.ns, "ca");
    let ledger_before = ledgers.get(&ledger_name).await.expect("the ledger");

    // Requests Ferrum never signed, whose status someone with status rights (an approver) filled
    // by hand: with another CA's leaf, and with a real leaf of the same issuer issued for
    // another request (as another namespace's would be).
    let stranger_leaf = leaf_signed_by(&make_ca("Stranger CA", CaOptions::default()), "stranger.example.com");
    let victim_leaf = String::from_utf8(secret_data(&h, "victim-tls", "tls.crt").await).expect("PEM");
    for (name, leaf) in [("forged", stranger_leaf), ("stolen", victim_leaf)] {
        h.create_request(name, &csr_pem("stranger.example.com"), ferrum_ref(IssuerScope::Namespaced, "ca")).await;
        let status = json!({"status": {"certificate": k8s_openapi::ByteString(leaf.into_bytes())}});
        h.api::<ferrum::CertificateRequest>()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .expect("fill the forged request's status");
    }
    // A request for another controller's issuer.
    let foreign = ferrum::IssuerReference {
        name: "elsewhere".into(),
        kind: Some("Issuer".into()),
        group: Some("cert-manager.io".into()),
    };
    h.create_request("foreign", &csr_pem("foreign.example.com"), foreign).await;

    let cases: [(&str, Value, &str, &str); 9] = [
        ("nothing", json!({}), "InvalidSpec", "name exactly one of"),
        (
            "two-things",
            json!({"certificateRef": {"name": "web"}, "serialNumber": "01", "issuerRef": {"name": "ca"}}),
            "InvalidSpec",
            "name exactly one of",
        ),
        ("missing", json!({"certificateRequestRef": {"name": "no-such-request"}}), "NotFound", "does not exist"),
        (
            "missing-certificate",
            json!({"certificateRef": {"name": "no-such-certificate"}}),
            "NotFound",
            "does not exist",
        ),
        (
            "forged",
            json!({"certificateRequestRef": {"name": "forged"}}),
            "NotIssuedByFerrum",
            "not for the key of its CSR",
        ),
        (
            "stolen",
            json!({"certificateRequestRef": {"name": "stolen"}}),
            "NotIssuedByFerrum",
            "not for the key of its CSR",
        ),
        (
            "foreign-request",
            json!({"certificateRequestRef": {"name": "foreign"}}),
            "NotIssuedByFerrum",
            "not by this controller",
        ),
        (
            "foreign-issuer",
            json!({"serialNumber": "0a:0b", "issuerRef": {"name": "x", "kind": "Issuer", "group": "cert-manager.io"}}),
            "ForeignIssuer",
            "does not serve",
        ),
        (
            "again",
            json!({"certificateRef": {"name": "web"}}),
            "AlreadyRevoked",
            "already revoked by another revocation",
        ),
    ];
    for (name, spec, _, _) in &cases {
        create_revocation(&h.client, &h.ns, name, spec.clone()).await.expect("create revocation");
    }
    for (name, _, reason, message) in &cases {
        let status = settled(&h, &h.ns, name, reason).await;
        let condition =
            status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Revoked").unwrap().clone();
        assert_eq!(condition["status"], "False", "{name}: {condition}");
        assert!(condition["message"].as_str().unwrap_or_default().contains(message), "{name}: {condition}");
        // Events are published off the reconcile path: they may follow the status by a moment.
        eventually(&format!("{name}: a Warning event {reason}"), Duration::from_secs(10), || async {
            let events = h.events_about(name).await;
            events
                .iter()
                .any(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some(*reason))
                .then_some(())
        })
        .await;
    }
    // A cluster issuer's serial, revoked from a tenant namespace: refused by Ferrum.
    create_revocation(
        &h.client,
        &h.ns,
        "not-here",
        json!({"serialNumber": "01", "issuerRef": {"name": "root", "kind": "FerrumClusterIssuer"}}),
    )
    .await
    .expect("create");
    let status = settled(&h, &h.ns, "not-here", "Forbidden").await;
    assert!(status.to_string().contains("only from the cluster resource namespace"), "{status}");
    // The spec cannot be changed afterwards.
    let change = json!({"spec": {"certificateRequestRef": {"name": "other"}}});
    let refused = revocations(&h.client, &h.ns).patch("nothing", &PatchParams::default(), &Patch::Merge(change)).await;
    assert!(matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 422), "{refused:?}");

    let after = configmaps.get("ca-crl").await.expect("the CRL's copy");
    assert_eq!(after.metadata.resource_version, before.metadata.resource_version, "the CRL was not written again");
    assert_eq!(after.data, before.data);
    let ledger_after = ledgers.get(&ledger_name).await.expect("the ledger");
    assert_eq!(ledger_after.metadata.resource_version, ledger_before.metadata.resource_version, "nor the ledger");

    // By bare serial, in the namespaced issuer's own namespace: revoked, kept until the CA
    // itself expires (the certificate's own expiry is not known).
    let victim_serial = serial_of(&secret_data(&h, "victim-tls", "tls.crt").await);
    let colons: Vec<String> =
        victim_serial.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).to_uppercase()).collect();
    create_revocation(
        &h.client,
        &h.ns,
        "by-serial",
        json!({"serialNumber": colons.join(":"), "issuerRef": {"name": "ca"}, "reason": "superseded"}),
    )
    .await
    .expect("create");
    let status = settled(&h, &h.ns, "by-serial", "Revoked").await;
    assert_eq!(status["serialNumber"], json!(victim_serial), "{status}");
    let ca_not_after = x509_parser::pem::parse_x509_pem(ca.cert_pem.as_bytes()).unwrap().1;
    let ca_not_after = x509_parser::parse_x509_certificate(&ca_not_after.contents).unwrap().1.validity().not_after;
    let not_after = status["notAfter"].as_str().unwrap_or_default().to_owned();
    let expected = ca_not_after.to_datetime();
    assert!(
        not_after.starts_with(&format!(
            "{:04}-{:02}-{:02}",
            expected.year(),
            u8::from(expected.month()),
            expected.day()
        )),
        "kept until the CA's notAfter ({expected}): {status}"
    );
    let ledger_after = ledgers.get(&ledger_name).await.expect("the ledger");

    // A ledger that does not read (an administrator's slip) is never overwritten: that would
    // un-revoke. The revocation waits, and the issuer says why.
    let mut data = ledger_after.data.clone().unwrap_or_default();
    data.insert("ledger".into(), "ferrum-ledger v1\nnot a line of a ledger\n".into());
    let broken = ConfigMap { data: Some(data.clone()), ..ledger_after.clone() };
    let broken = ledgers.replace(&ledger_name, &PostParams::default(), &broken).await.expect("break the ledger");
    create_revocation(&h.client, &h.ns, "after-break", json!({"certificateRef": {"name": "victim"}}))
        .await
        .expect("create");
    let status = settled(&h, &h.ns, "after-break", "LedgerUnreadable").await;
    assert!(status.to_string().contains("it is not overwritten"), "{status}");
    let still = ledgers.get(&ledger_name).await.expect("the ledger");
    assert_eq!(still.metadata.resource_version, broken.metadata.resource_version, "the broken ledger was left alone");
    assert_eq!(still.data, Some(data));
    eventually("a Warning CRLNotPublished on the issuer", Duration::from_secs(10), || async {
        h.events_about("ca")
            .await
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("CRLNotPublished")
                    && e.note.as_deref().unwrap_or_default().contains("LedgerUnreadable")
            })
            .then_some(())
    })
    .await;
}

/// A leaf for `name` signed by `ca` (PEM), outside Ferrum.
fn leaf_signed_by(ca: &TestCa, name: &str) -> String {
    let issuer_key = rcgen::KeyPair::from_pem(&ca.key_pem).expect("CA key");
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca.cert_pem, issuer_key).expect("issuer");
    let key = rcgen::KeyPair::generate().expect("key");
    rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params").signed_by(&key, &issuer).expect("sign").pem()
}

/// RBAC: a tenant bound to the chart's revocation role in its namespace may revoke there and
/// nowhere else; and with the rights, revoking another namespace's certificate by serial through
/// a cluster issuer is still refused by Ferrum (tested above as `Forbidden`).
#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_revokes_only_in_its_own_namespace() {
    let h = Harness::new("revoke-rbac").await;
    let other = h.env.fresh_namespace("revoke-other").await.expect("namespace");
    install_rbac(&h.client, &h.ns, &h.fullname(), &[], |_| {}).await;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "tenant-revokes"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("{}-revocations-edit", h.fullname())},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": h.ns}],
    }))
    .expect("binding");
    h.api::<RoleBinding>().create(&PostParams::default(), &binding).await.expect("bind the tenant");
    let tenant = h.env.service_account_kubeconfig(&h.ns, "tenant").await.expect("tenant");
    let spec = json!({"certificateRef": {"name": "web"}});
    eventually("the tenant may revoke in its namespace", Duration::from_secs(10), || async {
        create_revocation(&tenant.client, &h.ns, "mine", spec.clone()).await.ok()
    })
    .await;
    let refused = create_revocation(&tenant.client, &other, "theirs", spec).await;
    assert!(matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 403), "{refused:?}");
}

/// With `revokeOnCertificateDeletion`, deleting a Certificate revokes its certificate
/// (cessationOfOperation); deleting only an old CertificateRequest revokes nothing. There is no
/// garbage collector in this control plane, so the test deletes the Certificate's requests after
/// it, as the garbage collector does.
#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_certificate_revokes_it_when_the_issuer_asks() {
    let mut h = Harness::new("revoke-del").await;
    h.start_cert_manager(true).await;
    h.start_ferrum(&[]).await;
    let ca = make_ca("Revocation CA", CaOptions::default());
    h.create_secret(&h.ns, "ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    crl_issuer(&h, "ca", json!({"revokeOnCertificateDeletion": true})).await;
    let issuer_ref = json!({"name": "ca", "kind": "FerrumIssuer", "group": "ferrum.dev"});
    for name in ["kept", "gone"] {
        create_certificate(&h, name, issuer_ref.clone(), json!({"dnsNames": [format!("{name}.example.com")]})).await;
    }
    certificate_ready(&h, "kept").await;
    certificate_ready(&h, "gone").await;
    let kept_serial = serial_of(&secret_data(&h, "kept-tls", "tls.crt").await);
    let gone_serial = serial_of(&secret_data(&h, "gone-tls", "tls.crt").await);
    let requests = h.api::<ferrum::CertificateRequest>();
    // A request deleted on its own (as cert-manager trims old revisions): nothing is revoked.
    requests.delete(&request_of(&h, "kept").await, &DeleteParams::default()).await.expect("delete request");
    // The Certificate deleted, then its requests, as the garbage collector would.
    let gone_request = request_of(&h, "gone").await;
    h.cert_manager("Certificate").delete("gone", &DeleteParams::default()).await.expect("delete Certificate");
    requests.delete(&gone_request, &DeleteParams::default()).await.expect("delete its request");

    let addr = crl_address(&h.process(&h.fullname()).log_tail(2000)).expect("Ferrum serves CRLs");
    let path = format!("/namespaces/{}/ferrumissuers/ca.crl", h.ns);
    let (crl, _) = fetch_crl_until(&addr, &path, |s| s.contains(&gone_serial)).await;
    // Give the deletion of the lone request time to have been judged too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, _, latest) = http_get_bytes(&addr, &path).await;
    let (listed, _) = crl_contents(&latest);
    assert_eq!(listed, BTreeSet::from([gone_serial.clone()]), "only the deleted Certificate's; not {kept_serial}");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("crl.der"), &crl).expect("write");
    let (ok, text) = openssl(dir.path(), &["crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text"]);
    assert!(ok && text.contains("Cessation Of Operation"), "{text}");

    // The issuer's CA replaced in its Secret (a new key): within seconds the CRL is signed by
    // the new CA, its entries carried over (see docs/revocation.md on rotation).
    let next = make_ca("Revocation CA, next", CaOptions::default());
    h.replace_secret(&h.ns, "ca", &[("tls.crt", next.cert_pem.as_bytes()), ("tls.key", next.key_pem.as_bytes())]).await;
    std::fs::write(dir.path().join("next.pem"), &next.cert_pem).expect("write");
    eventually("a CRL signed by the new CA", Duration::from_secs(45), || async {
        let (status, _, body) = http_get_bytes(&addr, &path).await;
        if status != 200 {
            return None;
        }
        std::fs::write(dir.path().join("now.der"), &body).ok()?;
        let (ok, out) = openssl(
            dir.path(),
            &["crl", "-inform", "DER", "-in", "now.der", "-CAfile", "next.pem", "-verify", "-noout"],
        );
        (ok && out.contains("verify OK") && crl_contents(&body).0.contains(&gone_serial)).then_some(())
    })
    .await;
}

/// A cluster issuer's CRL is served at its cluster path, and one namespace may put only
/// `maxRevocationsPerNamespace` of its certificates on it: the next waits, nothing changes.
#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_issuers_crl_has_a_quota_per_namespace() {
    let mut h = Harness::new("revoke-quota").await;
    h.start_cert_manager(true).await;
    h.start_ferrum(&[]).await;
    let ca = make_ca("Shared CA", CaOptions::default());
    let issuer = format!("quota-{}", h.ns);
    h.create_secret(
        CLUSTER_RESOURCE_NAMESPACE,
        &issuer,
        &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())],
    )
    .await;
    let spec = json!({"ca": {"secretName": issuer}, "crl": {"validity": "10m", "maxRevocationsPerNamespace": 1}});
    h.create_issuer_spec(IssuerScope::Cluster, &issuer, spec).await;
    h.issuer_ready(IssuerScope::Cluster, &issuer, "True").await;
    let issuer_ref = json!({"name": issuer, "kind": "FerrumClusterIssuer", "group": "ferrum.dev"});
    for name in ["first", "second"] {
        create_certificate(&h, name, issuer_ref.clone(), json!({"dnsNames": [format!("{name}.example.com")]})).await;
    }
    certificate_ready(&h, "first").await;
    certificate_ready(&h, "second").await;
    let first_serial = serial_of(&secret_data(&h, "first-tls", "tls.crt").await);
    create_revocation(&h.client, &h.ns, "first", json!({"certificateRef": {"name": "first"}})).await.expect("create");
    let status = settled(&h, &h.ns, "first", "Revoked").await;
    assert_eq!(status["issuer"], json!(format!("FerrumClusterIssuer/{issuer}")));
    create_revocation(&h.client, &h.ns, "second", json!({"certificateRef": {"name": "second"}})).await.expect("create");
    let status = settled(&h, &h.ns, "second", "LedgerQuotaExceeded").await;
    assert!(
        status.to_string().contains("has 1 unexpired revoked certificates on the CRL of FerrumClusterIssuer"),
        "{status}"
    );

    let addr = crl_address(&h.process(&h.fullname()).log_tail(2000)).expect("Ferrum serves CRLs");
    let path = format!("/ferrumclusterissuers/{issuer}.crl");
    let (crl, _) = fetch_crl_until(&addr, &path, |s| s.contains(&first_serial)).await;
    assert_eq!(crl_contents(&crl).0, BTreeSet::from([first_serial]), "the second is not listed");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), &ca.cert_pem).expect("write");
    std::fs::write(dir.path().join("crl.der"), &crl).expect("write");
    let (ok, out) =
        openssl(dir.path(), &["crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-verify", "-noout"]);
    assert!(ok && out.contains("verify OK"), "{out}");
    // The cluster issuer's copy for consumers is in the cluster resource namespace.
    let copies: Api<ConfigMap> = Api::namespaced(h.client.clone(), CLUSTER_RESOURCE_NAMESPACE);
    let copy = copies.get(&format!("{issuer}-crl")).await.expect("the copy");
    assert!(copy.data.unwrap_or_default().get("ca.crl").is_some_and(|p| p.contains("BEGIN X509 CRL")));
}
