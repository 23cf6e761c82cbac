//! The whole flow through real cert-manager, and a side-by-side comparison with cert-manager's
//! built-in CA issuer.

use std::time::Duration;

use ferrum::{CertificateRequest, IssuerScope};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DynamicObject, ListParams, PostParams};
use serde_json::json;
use x509_parser::oid_registry::*;
use x509_parser::prelude::*;

use crate::support::*;

pub(crate) async fn certificate_ready(h: &Harness, name: &str) {
    let api = h.cert_manager("Certificate");
    eventually(&format!("Certificate {name} Ready"), Duration::from_secs(60), || async {
        let c = api.get(name).await.ok()?;
        let conditions = c.data["status"]["conditions"].as_array()?.clone();
        conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True").then_some(())
    })
    .await
}

pub(crate) async fn create_certificate(
    h: &Harness,
    name: &str,
    issuer_ref: serde_json::Value,
    extra: serde_json::Value,
) {
    let mut spec = json!({ "secretName": format!("{name}-tls"), "issuerRef": issuer_ref });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": { "name": name }, "spec": spec,
    }))
    .expect("certificate object");
    h.cert_manager("Certificate").create(&PostParams::default(), &obj).await.expect("create Certificate");
}

pub(crate) async fn secret_data(h: &Harness, name: &str, key: &str) -> Vec<u8> {
    let secret = h.api::<Secret>().get(name).await.expect("secret");
    secret.data.and_then(|d| d.get(key).map(|b| b.0.clone())).unwrap_or_default()
}

async fn full_flow(scope: IssuerScope) {
    let mut h = Harness::new("flow").await;
    h.start_cert_manager(true).await;
    h.start_ferrum(&[]).await;
    let ca = make_ca("Flow CA", CaOptions::default());
    let (secret_ns, issuer) = match scope {
        IssuerScope::Namespaced => (h.ns.clone(), "flow-ca".to_owned()),
        IssuerScope::Cluster => (CLUSTER_RESOURCE_NAMESPACE.to_owned(), format!("flow-{}", h.ns)),
    };
    h.create_secret(&secret_ns, &issuer, &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())])
        .await;
    h.create_issuer(scope, &issuer, &issuer).await;
    assert_eq!(h.issuer_ready(scope, &issuer, "True").await.0, "Checked");

    let kind = ferrum::ca::kinds().kind(scope).to_owned();
    create_certificate(
        &h,
        "leaf",
        json!({ "group": "ferrum.dev", "kind": kind, "name": issuer }),
        json!({ "dnsNames": ["leaf.example"], "privateKey": { "algorithm": "ECDSA", "size": 256 } }),
    )
    .await;
    certificate_ready(&h, "leaf").await;

    let tls_crt = secret_data(&h, "leaf-tls", "tls.crt").await;
    let ca_crt = secret_data(&h, "leaf-tls", "ca.crt").await;
    let chain = pem_certs(&tls_crt);
    assert_eq!(chain.len(), 1, "a root CA is not repeated in tls.crt");
    let (_, leaf) = X509Certificate::from_der(&chain[0]).expect("tls.crt parses");
    let san = leaf.subject_alternative_name().unwrap().expect("SAN").value;
    assert!(san.general_names.iter().any(|n| matches!(n, GeneralName::DNSName("leaf.example"))), "{san:?}");
    assert_eq!(pem_certs(&ca_crt), pem_certs(ca.cert_pem.as_bytes()), "ca.crt is the root");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca_crt).unwrap();
    std::fs::write(dir.path().join("leaf.pem"), &tls_crt).unwrap();
    let (ok, out) = openssl(dir.path(), &["verify", "-CAfile", "ca.pem", "leaf.pem"]);
    assert!(ok, "openssl verify: {out}");

    let requests = h.api::<CertificateRequest>().list(&ListParams::default()).await.unwrap();
    assert_eq!(requests.items.len(), 1);
    let cr = &requests.items[0];
    assert!(cr.condition_true("Approved"), "approved by cert-manager's approver");
    assert_eq!(cr.condition("Ready").and_then(|c| c.reason.as_deref()), Some("Issued"));
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_issued_through_cert_manager_by_a_ferrum_issuer() {
    full_flow(IssuerScope::Namespaced).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_issued_through_cert_manager_by_a_ferrum_cluster_issuer() {
    full_flow(IssuerScope::Cluster).await;
}

/// Everything but serial, validity instants, key ids and signature: version, subject and issuer
/// bytes, key and signature algorithms, and every other extension (value and criticality).
pub(crate) fn assert_same_certificate(ours: &X509Certificate<'_>, theirs: &X509Certificate<'_>, case: &str) {
    assert_eq!(ours.version(), theirs.version(), "{case}: version");
    assert_eq!(ours.subject().as_raw(), theirs.subject().as_raw(), "{case}: subject bytes");
    assert_eq!(ours.issuer().as_raw(), theirs.issuer().as_raw(), "{case}: issuer bytes");
    assert_eq!(ours.public_key().algorithm.algorithm, theirs.public_key().algorithm.algorithm, "{case}: key algorithm");
    assert_eq!(ours.signature_algorithm.algorithm, theirs.signature_algorithm.algorithm, "{case}: signature algorithm");
    let key_ids = [OID_X509_EXT_SUBJECT_KEY_IDENTIFIER, OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER];
    let compared = |c: &X509Certificate<'_>| -> Vec<(String, bool, Vec<u8>)> {
        let mut v: Vec<_> = c
            .extensions()
            .iter()
            .filter(|e| !key_ids.contains(&e.oid))
            .map(|e| (e.oid.to_id_string(), e.critical, e.value.to_vec()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(compared(ours), compared(theirs), "{case}: extensions other than key ids");
    // Ferrum always sets both key ids (the contract); cert-manager's Go sets AKI.
    assert!(ours.extensions_map().unwrap().contains_key(&OID_X509_EXT_SUBJECT_KEY_IDENTIFIER), "{case}: SKI");
    assert!(ours.extensions_map().unwrap().contains_key(&OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER), "{case}: AKI");
}

/// cert-manager (with its approver) and Ferrum side by side on one CA Secret `ca`: a
/// FerrumIssuer `ferrum` (Ready, sub-CAs allowed) and cert-manager's CA Issuer `builtin`.
async fn side_by_side(prefix: &str) -> Harness {
    let mut h = Harness::new(prefix).await;
    h.start_cert_manager(true).await;
    h.start_ferrum(&[]).await;
    let ca = make_ca("Compare CA", CaOptions::default());
    h.create_secret(&h.ns, "ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    // cert-manager's CA issuer signs sub-CAs; Ferrum's issuer must be told it may.
    let spec = json!({"ca": {"secretName": "ca"}, "policy": {"allowCA": true}});
    h.create_issuer_spec(IssuerScope::Namespaced, "ferrum", spec).await;
    let builtin: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
        "metadata": { "name": "builtin" }, "spec": { "ca": { "secretName": "ca" } },
    }))
    .unwrap();
    h.cert_manager("Issuer").create(&PostParams::default(), &builtin).await.expect("create Issuer");
    h.issuer_ready(IssuerScope::Namespaced, "ferrum", "True").await;
    h
}

/// The Certificate spec of the side-by-side comparisons: every kind of name, a subject, usages,
/// a duration.
pub(crate) fn parity_certificate_spec() -> serde_json::Value {
    json!({
        "commonName": "compare.example",
        "dnsNames": ["compare.example", "b.example"],
        "ipAddresses": ["10.0.0.1"],
        "uris": ["spiffe://cluster.local/ns/x/sa/y"],
        "emailAddresses": ["ops@example.com"],
        "subject": { "organizations": ["Ferrum"], "organizationalUnits": ["E2E", "Compare"] },
        "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
        "duration": "2160h",
        "privateKey": { "algorithm": "ECDSA", "size": 256 },
    })
}

/// The same Certificate spec and the same CA, issued once by cert-manager's CA issuer and once
/// by Ferrum: everything but serial, validity instants, key ids and signature must agree.
#[tokio::test(flavor = "multi_thread")]
async fn same_certificate_as_cert_managers_ca_issuer() {
    let h = side_by_side("compare").await;

    let spec = parity_certificate_spec();
    create_certificate(
        &h,
        "by-ferrum",
        json!({ "group": "ferrum.dev", "kind": "FerrumIssuer", "name": "ferrum" }),
        spec.clone(),
    )
    .await;
    create_certificate(
        &h,
        "by-builtin",
        json!({ "group": "cert-manager.io", "kind": "Issuer", "name": "builtin" }),
        spec,
    )
    .await;
    certificate_ready(&h, "by-ferrum").await;
    certificate_ready(&h, "by-builtin").await;

    let ours_pem = secret_data(&h, "by-ferrum-tls", "tls.crt").await;
    let theirs_pem = secret_data(&h, "by-builtin-tls", "tls.crt").await;
    let (ours_chain, theirs_chain) = (pem_certs(&ours_pem), pem_certs(&theirs_pem));
    assert_eq!(ours_chain.len(), theirs_chain.len(), "chain layout of tls.crt");
    assert_eq!(
        pem_certs(&secret_data(&h, "by-ferrum-tls", "ca.crt").await),
        pem_certs(&secret_data(&h, "by-builtin-tls", "ca.crt").await),
        "ca.crt"
    );
    let (_, ours) = X509Certificate::from_der(&ours_chain[0]).unwrap();
    let (_, theirs) = X509Certificate::from_der(&theirs_chain[0]).unwrap();
    assert_same_certificate(&ours, &theirs, "Certificate");

    // Validity: the same 90-day lifetime; Ferrum backdates notBefore by 60 s on purpose.
    let lifetime = |c: &X509Certificate<'_>| c.validity().not_after.timestamp() - c.validity().not_before.timestamp();
    assert_eq!(lifetime(&theirs), 2160 * 3600);
    assert_eq!(lifetime(&ours), 2160 * 3600 + 60, "requested lifetime plus the 60 s clock-skew backdate");
}

/// Raw CertificateRequests with the same CSR and spec, one to cert-manager's CA issuer and one to
/// Ferrum, both approved by cert-manager's approver: an RSA-PSS-signed request, and a sub-CA
/// request whose CSR asks for a path length and name constraints. The certificates must agree
/// as above.
#[tokio::test(flavor = "multi_thread")]
async fn same_certificate_as_cert_managers_ca_issuer_for_pss_and_sub_ca_requests() {
    let h = side_by_side("compare-raw").await;

    let pss = openssl_csr(
        RSA2048,
        "/O=Ferrum/CN=pss.example",
        &[
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
            "-sha256",
            "-addext",
            "subjectAltName=DNS:pss.example,IP:10.0.0.9",
        ],
    );
    let sub_ca = openssl_csr(
        P256,
        "/O=Ferrum/CN=Sub CA",
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext",
            "nameConstraints=critical,permitted;DNS:.team.example,permitted;IP:10.1.2.3/255.255.0.0,permitted;email:.team.example,excluded;DNS:secret.team.example",
        ],
    );
    let cases = [
        ("pss", pss, false, json!(["digital signature", "key encipherment", "server auth"])),
        ("sub-ca", sub_ca, true, json!([])),
    ];
    let requests = h.cert_manager("CertificateRequest");
    for (case, csr, is_ca, usages) in &cases {
        for (who, issuer_ref) in [
            ("ferrum", json!({"group": "ferrum.dev", "kind": "FerrumIssuer", "name": "ferrum"})),
            ("builtin", json!({"group": "cert-manager.io", "kind": "Issuer", "name": "builtin"})),
        ] {
            let object: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
                "metadata": {"name": format!("{case}-{who}")},
                "spec": {
                    "request": base64(csr), "issuerRef": issuer_ref,
                    "isCA": is_ca, "usages": usages, "duration": "2160h",
                },
            }))
            .unwrap();
            requests.create(&PostParams::default(), &object).await.expect("create CertificateRequest");
        }
    }
    for (case, _, is_ca, _) in &cases {
        let ours = h.request_reason(&format!("{case}-ferrum"), "Issued", Duration::from_secs(30)).await;
        let theirs = h.request_reason(&format!("{case}-builtin"), "Issued", Duration::from_secs(30)).await;
        let leaf = |cr: &CertificateRequest| pem_certs(&cr.status.clone().unwrap().certificate)[0].clone();
        let (ours_der, theirs_der) = (leaf(&ours), leaf(&theirs));
        let (_, ours_cert) = X509Certificate::from_der(&ours_der).unwrap();
        let (_, theirs_cert) = X509Certificate::from_der(&theirs_der).unwrap();
        assert_same_certificate(&ours_cert, &theirs_cert, case);
        assert_eq!(ours_cert.public_key().raw, theirs_cert.public_key().raw, "{case}: the requested key");
        assert_eq!(
            pem_certs(&ours.status.clone().unwrap().ca),
            pem_certs(&theirs.status.clone().unwrap().ca),
            "{case}: status.ca"
        );
        let bc = ours_cert.basic_constraints().unwrap().unwrap().value;
        assert_eq!(bc.ca, *is_ca, "{case}: isCA");
        if *is_ca {
            assert!(bc.path_len_constraint.is_none(), "the CSR's pathLen is not carried (as cert-manager)");
            let nc = ours_cert.extensions().iter().find(|e| e.oid == OID_X509_EXT_NAME_CONSTRAINTS);
            assert!(nc.is_some_and(|e| e.critical), "name constraints carried, critical as requested");
        }
    }
}

/// CAs held as intermediates, side by side with cert-manager's CA issuer on the same Secrets:
/// two levels (`tls.crt` the intermediate, `ca.crt` the root) and three levels (`tls.crt` the
/// issuing intermediate, its parent and the root). For the same request both issuers must
/// write the same chain after the leaf in `status.certificate` and the same `status.ca`, and
/// the leaves must agree as above.
#[tokio::test(flavor = "multi_thread")]
async fn same_chain_layout_as_cert_managers_ca_issuer_for_intermediates() {
    let mut h = Harness::new("compare-chain").await;
    h.start_cert_manager(true).await;
    h.start_ferrum(&[]).await;
    let root = make_ca("Chain Root", CaOptions::default());
    let first = make_intermediate(&root, "Chain Intermediate 1", CaOptions::default());
    let second = make_intermediate(&first, "Chain Intermediate 2", CaOptions::default());
    let three_levels = format!("{}{}{}", second.cert_pem, first.cert_pem, root.cert_pem);
    type SecretData<'a> = Vec<(&'a str, &'a [u8])>;
    let secrets: [(&str, SecretData<'_>); 2] = [
        (
            "two-levels",
            vec![
                ("tls.crt", first.cert_pem.as_bytes()),
                ("tls.key", first.key_pem.as_bytes()),
                ("ca.crt", root.cert_pem.as_bytes()),
            ],
        ),
        ("three-levels", vec![("tls.crt", three_levels.as_bytes()), ("tls.key", second.key_pem.as_bytes())]),
    ];
    let requests = h.cert_manager("CertificateRequest");
    for (name, data) in &secrets {
        h.create_secret(&h.ns, name, data).await;
        h.create_issuer(IssuerScope::Namespaced, name, name).await;
        let builtin: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
            "metadata": { "name": format!("{name}-builtin") }, "spec": { "ca": { "secretName": name } },
        }))
        .unwrap();
        h.cert_manager("Issuer").create(&PostParams::default(), &builtin).await.expect("create Issuer");
        h.issuer_ready(IssuerScope::Namespaced, name, "True").await;
        let csr = csr_pem(&format!("{name}.example"));
        for (who, issuer_ref) in [
            ("ferrum", json!({"group": "ferrum.dev", "kind": "FerrumIssuer", "name": name})),
            ("builtin", json!({"group": "cert-manager.io", "kind": "Issuer", "name": format!("{name}-builtin")})),
        ] {
            let object: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
                "metadata": {"name": format!("{name}-{who}")},
                "spec": {"request": base64(&csr), "issuerRef": issuer_ref, "duration": "2160h"},
            }))
            .unwrap();
            requests.create(&PostParams::default(), &object).await.expect("create CertificateRequest");
        }
    }
    for (name, _) in &secrets {
        let ours = h.request_reason(&format!("{name}-ferrum"), "Issued", Duration::from_secs(30)).await;
        let theirs = h.request_reason(&format!("{name}-builtin"), "Issued", Duration::from_secs(30)).await;
        let (ours, theirs) = (ours.status.unwrap(), theirs.status.unwrap());
        let (ours_chain, theirs_chain) = (pem_certs(&ours.certificate), pem_certs(&theirs.certificate));
        assert_eq!(ours_chain[1..], theirs_chain[1..], "{name}: status.certificate after the leaf");
        assert_eq!(pem_certs(&ours.ca), pem_certs(&theirs.ca), "{name}: status.ca");
        let (_, ours_leaf) = X509Certificate::from_der(&ours_chain[0]).unwrap();
        let (_, theirs_leaf) = X509Certificate::from_der(&theirs_chain[0]).unwrap();
        assert_same_certificate(&ours_leaf, &theirs_leaf, name);
        let (ok, out) = openssl_verify(&ours.ca, &ours.certificate, &ours.certificate);
        assert!(ok, "{name}: openssl verify of Ferrum's chain: {out}");
    }
}
