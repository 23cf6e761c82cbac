//! Issue 12: guarded issuance on the real control plane — the CA's own name constraints, the
//! per-issuer policy with tenancy (namespace patterns, a namespace selector), sub-CAs off by
//! default, bad policy reported on the issuer, deviations said and counted, and the OpenSSL
//! path validation that keeps a certificate its chain does not validate from being published.

use std::time::Duration;

use ferrum::{CertificateRequest, CertificateRequestSpec, IssuerScope};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{Patch, PatchParams};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyPair,
    KeyUsagePurpose, NameConstraints,
};
use serde_json::{Value, json};
use x509_parser::prelude::*;

use crate::support::*;

/// A self-signed CA made with `edit` applied to its parameters.
fn ca_with(common_name: &str, edit: impl FnOnce(&mut CertificateParams)) -> TestCa {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = ::time::OffsetDateTime::now_utc();
    params.not_before = now - ::time::Duration::days(1);
    params.not_after = now + ::time::Duration::days(365);
    edit(&mut params);
    let cert = params.self_signed(&key).expect("self-sign");
    TestCa { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

/// Creates the CA Secret `name` in `namespace` and an issuer `name` of `scope` on it whose spec
/// is `{ca: {secretName: name}}` plus `extra` (e.g. a `policy` block).
async fn issuer_with(h: &Harness, scope: IssuerScope, namespace: &str, name: &str, ca: &TestCa, extra: Value) {
    h.create_secret(namespace, name, &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    let mut spec = json!({"ca": {"secretName": name}});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    h.create_issuer_spec(scope, name, spec).await;
}

/// Creates and approves a request `name` for `csr` with `spec` fields from `extra`.
async fn request(h: &Harness, name: &str, csr: Vec<u8>, issuer: (IssuerScope, &str), extra: Value) {
    let mut spec = json!({"request": base64(&csr), "issuerRef": ferrum_ref(issuer.0, issuer.1)});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    let spec: CertificateRequestSpec = serde_json::from_value(spec).expect("request spec");
    h.create_request_spec(name, spec).await;
    h.decide(name, true).await;
}

/// Waits for `name` to be Failed and returns its message; asserts no certificate was written.
async fn failed(h: &Harness, name: &str) -> String {
    let cr = h.request_reason(name, "Failed", Duration::from_secs(30)).await;
    assert!(cr.status.as_ref().is_none_or(|s| s.certificate.is_empty()), "{name}: no certificate published");
    ready_message(&cr)
}

/// Waits for `name` to be Issued and returns its leaf certificate's DER and status.certificate.
async fn issued(h: &Harness, name: &str) -> (Vec<u8>, Vec<u8>) {
    let cr: CertificateRequest = h.request_reason(name, "Issued", Duration::from_secs(30)).await;
    let chain = cr.status.expect("status").certificate;
    (pem_certs(&chain).remove(0), chain)
}

/// A CA whose name constraints permit `example.com` and `10.0.0.0/8` and exclude
/// `secret.example.com`: Ferrum issues inside the tree, refuses outside it (naming the
/// constraint and the CA) before signing, and what it issues passes `openssl verify`.
#[tokio::test(flavor = "multi_thread")]
async fn the_cas_name_constraints_are_enforced() {
    let mut h = Harness::new("nc").await;
    h.start_ferrum(&[]).await;
    let ca = ca_with("Constrained CA", |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![
                GeneralSubtree::DnsName("example.com".into()),
                GeneralSubtree::IpAddress(rcgen::CidrSubnet::V4([10, 0, 0, 0], [255, 0, 0, 0])),
            ],
            excluded_subtrees: vec![GeneralSubtree::DnsName("secret.example.com".into())],
        });
    });
    let ns = h.ns.clone();
    issuer_with(&h, IssuerScope::Namespaced, &ns, "nc", &ca, json!({})).await;
    h.issuer_ready(IssuerScope::Namespaced, "nc", "True").await;
    let to = (IssuerScope::Namespaced, "nc");
    request(&h, "inside", csr_pem("app.example.com"), to, json!({})).await;
    request(&h, "outside", csr_pem("app.example.org"), to, json!({})).await;
    request(&h, "excluded", csr_pem("db.secret.example.com"), to, json!({})).await;
    let ip_outside = {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["ip.example.com".into()]).unwrap();
        p.subject_alt_names.push(rcgen::SanType::IpAddress("192.168.1.1".parse().unwrap()));
        p.serialize_request(&key).unwrap().pem().unwrap().into_bytes()
    };
    request(&h, "ip-outside", ip_outside, to, json!({})).await;

    let (_, chain) = issued(&h, "inside").await;
    let (ok, out) = openssl_verify(ca.cert_pem.as_bytes(), b"", &chain);
    assert!(ok, "openssl verify of the certificate issued inside the tree: {out}");
    let message = failed(&h, "outside").await;
    assert!(
        message.contains("app.example.org") && message.contains("permitted") && message.contains("Constrained CA"),
        "{message}"
    );
    let message = failed(&h, "excluded").await;
    assert!(message.contains("excluded") && message.contains("secret.example.com"), "{message}");
    let message = failed(&h, "ip-outside").await;
    assert!(message.contains("192.168.1.1") && message.contains("permitted"), "{message}");
}

/// One FerrumClusterIssuer for many tenants: names patterned on the requesting namespace,
/// namespaces chosen by a label selector. Tenant A gets A's names and is refused B's; a
/// namespace outside the selector is refused; the issuer's status summarises its policy.
#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_issuer_serves_each_tenant_its_own_names() {
    let mut tenant = Harness::new("tenant").await;
    tenant.start_ferrum(&[]).await;
    let mut outsider = Harness::new("outsider").await;
    outsider.start_ferrum(&[]).await;
    let label = "e2e.ferrum.dev/tenant";
    Api::<Namespace>::all(tenant.client.clone())
        .patch(
            &tenant.ns,
            &PatchParams::apply("e2e"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"labels": {label: "yes"}}})),
        )
        .await
        .expect("label the tenant's namespace");

    let name = format!("tenants-{}", tenant.ns);
    let policy = json!({"policy": {
        "allowedNames": {
            "dnsNames": ["*.{namespace}.svc.cluster.local", "{namespace}.svc.cluster.local"],
            "uris": ["spiffe://cluster.local/ns/{namespace}/*"],
        },
        "namespaceSelector": {"matchLabels": {label: "yes"}},
    }});
    let ca = ca_with("Tenants CA", |_| {});
    issuer_with(&tenant, IssuerScope::Cluster, CLUSTER_RESOURCE_NAMESPACE, &name, &ca, policy).await;
    tenant.issuer_ready(IssuerScope::Cluster, &name, "True").await;
    let summary = tenant.issuers(IssuerScope::Cluster).get(&name).await.unwrap().status.unwrap().policy;
    let summary = summary.expect("status.policy");
    assert!(summary.contains("dns") && summary.contains("uri") && summary.contains("isCA: no"), "{summary}");

    let to = (IssuerScope::Cluster, name.as_str());
    let own = format!("web.{}.svc.cluster.local", tenant.ns);
    let others = format!("web.{}.svc.cluster.local", outsider.ns);
    let spiffe = |ns: &str| format!("spiffe://cluster.local/ns/{ns}/sa/web");
    let with_uri = |dns: &str, uri: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![dns.to_owned()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, dns);
        p.subject_alt_names.push(rcgen::SanType::URI(uri.try_into().unwrap()));
        p.serialize_request(&key).unwrap().pem().unwrap().into_bytes()
    };
    request(&tenant, "own", with_uri(&own, &spiffe(&tenant.ns)), to, json!({})).await;
    request(&tenant, "others-dns", csr_pem(&others), to, json!({})).await;
    request(&tenant, "others-uri", with_uri(&own, &spiffe(&outsider.ns)), to, json!({})).await;
    let traversal = format!("spiffe://cluster.local/ns/{}/../{}/sa/web", tenant.ns, outsider.ns);
    request(&tenant, "dot-segments", with_uri(&own, &traversal), to, json!({})).await;
    request(&outsider, "unselected", csr_pem(&others), to, json!({})).await;

    let (leaf, chain) = issued(&tenant, "own").await;
    let (ok, out) = openssl_verify(ca.cert_pem.as_bytes(), b"", &chain);
    assert!(ok, "{out}");
    let (_, cert) = X509Certificate::from_der(&leaf).unwrap();
    let san = cert.subject_alternative_name().unwrap().expect("SAN").value;
    assert!(san.general_names.iter().any(|n| matches!(n, GeneralName::DNSName(d) if *d == own)), "{san:?}");

    let message = failed(&tenant, "others-dns").await;
    assert!(message.contains("dnsNames") && message.contains(&others), "{message}");
    let message = failed(&tenant, "others-uri").await;
    assert!(message.contains("uris") && message.contains(&spiffe(&outsider.ns)), "{message}");
    let message = failed(&tenant, "dot-segments").await;
    assert!(message.contains("dot segment") || message.contains(".."), "{message}");
    let message = failed(&outsider, "unselected").await;
    assert!(message.contains("namespaceSelector") && message.contains(&outsider.ns), "{message}");
    tenant.issuers(IssuerScope::Cluster).delete(&name, &Default::default()).await.expect("delete the issuer");
}

/// Sub-CA requests are refused unless the issuer allows them; with `allowCA` the same request
/// is issued as a CA.
#[tokio::test(flavor = "multi_thread")]
async fn sub_ca_requests_are_refused_unless_allowed() {
    let mut h = Harness::new("isca").await;
    h.start_ferrum(&[]).await;
    let ns = h.ns.clone();
    let ca = ca_with("Parent CA", |_| {});
    issuer_with(&h, IssuerScope::Namespaced, &ns, "default", &ca, json!({})).await;
    issuer_with(&h, IssuerScope::Namespaced, &ns, "allows", &ca, json!({"policy": {"allowCA": true}})).await;
    h.issuer_ready(IssuerScope::Namespaced, "default", "True").await;
    h.issuer_ready(IssuerScope::Namespaced, "allows", "True").await;
    let sub_ca = || openssl_csr(P256, "/O=Ferrum/CN=Sub CA", &[]);
    request(&h, "refused", sub_ca(), (IssuerScope::Namespaced, "default"), json!({"isCA": true})).await;
    request(&h, "allowed", sub_ca(), (IssuerScope::Namespaced, "allows"), json!({"isCA": true})).await;
    let message = failed(&h, "refused").await;
    assert!(message.contains("allowCA"), "{message}");
    let (leaf, _) = issued(&h, "allowed").await;
    let (_, cert) = X509Certificate::from_der(&leaf).unwrap();
    assert!(cert.basic_constraints().unwrap().expect("basicConstraints").value.ca, "issued as a CA");
}

/// A malformed policy makes the issuer not Ready with reason InvalidPolicy naming the field; a
/// request waits (Pending, not Failed); once the policy is fixed the issuer is Ready and the
/// request issued.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_policy_is_reported_on_the_issuer_and_can_be_fixed() {
    let mut h = Harness::new("badpolicy").await;
    h.start_ferrum(&[]).await;
    let ns = h.ns.clone();
    let ca = ca_with("Policy CA", |_| {});
    let bad = json!({"policy": {"allowedNames": {"dnsNames": ["*.{ns}.example.com"]}}});
    issuer_with(&h, IssuerScope::Namespaced, &ns, "p", &ca, bad).await;
    let (reason, message) = h.issuer_ready(IssuerScope::Namespaced, "p", "False").await;
    assert_eq!(reason, "InvalidPolicy", "{message}");
    assert!(message.contains("dnsNames") && message.contains("{ns}"), "{message}");
    let minmax = json!({"policy": {"minDuration": "48h", "maxDuration": "24h"}});
    issuer_with(&h, IssuerScope::Namespaced, &ns, "minmax", &ca, minmax).await;
    let (reason, message) = h.issuer_ready(IssuerScope::Namespaced, "minmax", "False").await;
    assert_eq!(reason, "InvalidPolicy", "an impossible range: {message}");

    // A pattern that would let one namespace match another's names (`a` those of `a-b`).
    let leaky = json!({"policy": {"allowedNames": {"dnsNames": ["{namespace}-*.example.com"]}}});
    issuer_with(&h, IssuerScope::Namespaced, &ns, "leaky", &ca, leaky).await;
    let (reason, message) = h.issuer_ready(IssuerScope::Namespaced, "leaky", "False").await;
    assert_eq!(reason, "InvalidPolicy", "{message}");
    assert!(message.contains("set off"), "{message}");
    // More patterns than one issuer may carry: the apiserver refuses the object (the CRD's
    // maxItems), before Ferrum ever reads it.
    let too_many: Vec<String> = (0..257).map(|i| format!("h{i}.example.com")).collect();
    let spec = json!({"ca": {"secretName": "p"}, "policy": {"allowedNames": {"dnsNames": too_many}}});
    let issuer = ferrum::Issuer::new(
        "too-many",
        &ferrum::ca::kinds().api_resource(IssuerScope::Namespaced),
        serde_json::from_value::<ferrum::ca::FerrumIssuerSpec>(spec).expect("spec"),
    );
    let refused = h.issuers(IssuerScope::Namespaced).create(&Default::default(), &issuer).await;
    let error = refused.expect_err("257 dnsNames must be refused").to_string();
    assert!(error.contains("dnsNames") && error.contains("256"), "{error}");

    request(&h, "waits", csr_pem("app.team.example.com"), (IssuerScope::Namespaced, "p"), json!({})).await;
    let cr = h.request_reason("waits", "Pending", Duration::from_secs(20)).await;
    assert!(ready_message(&cr).contains("InvalidPolicy"), "{}", ready_message(&cr));
    let fixed = json!({"spec": {"policy": {"allowedNames": {"dnsNames": ["*.team.example.com"]}}}});
    h.issuers(IssuerScope::Namespaced)
        .patch("p", &PatchParams::default(), &Patch::Merge(fixed))
        .await
        .expect("fix the policy");
    h.issuer_ready(IssuerScope::Namespaced, "p", "True").await;
    issued(&h, "waits").await;
}

/// What differs from the request is said, never silent: a duration over the policy's maximum
/// is clamped (the Issued event says so, the metric counts it); what breaks a rule — a key too
/// small, a usage not allowed, a duration under the minimum — fails naming the rule.
#[tokio::test(flavor = "multi_thread")]
async fn deviations_are_said_and_counted_and_rules_are_named() {
    let mut h = Harness::new("deviate").await;
    h.start_ferrum(&[]).await;
    let ns = h.ns.clone();
    let ca = ca_with("Rules CA", |_| {});
    let policy = json!({"policy": {
        "minDuration": "2h", "maxDuration": "24h",
        "allowedKeys": [{"algorithm": "ECDSA", "minSize": 256}, {"algorithm": "RSA", "minSize": 3072}],
        "allowedUsages": ["digital signature", "key encipherment", "server auth"],
    }});
    issuer_with(&h, IssuerScope::Namespaced, &ns, "rules", &ca, policy).await;
    h.issuer_ready(IssuerScope::Namespaced, "rules", "True").await;
    let to = (IssuerScope::Namespaced, "rules");
    request(&h, "long", csr_pem("long.example.com"), to, json!({"duration": "48h"})).await;
    request(&h, "short", csr_pem("short.example.com"), to, json!({"duration": "1h"})).await;
    let rsa = openssl_csr(RSA2048, "/CN=rsa.example.com", &["-addext", "subjectAltName=DNS:rsa.example.com"]);
    request(&h, "small-key", rsa, to, json!({})).await;
    let usages = json!({"usages": ["digital signature", "key encipherment", "client auth"]});
    request(&h, "usage", csr_pem("client.example.com"), to, usages).await;

    let (leaf, _) = issued(&h, "long").await;
    let (_, cert) = X509Certificate::from_der(&leaf).unwrap();
    let lifetime = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert!((24 * 3600..=24 * 3600 + 600).contains(&lifetime), "clamped to 24h (plus the backdate): {lifetime}s");
    let events = h.settled_events_about("long").await;
    let note = "Certificate fetched from issuer successfully; DurationClampedByPolicy: spec.duration 48h exceeds \
                the issuer's maxDuration 24h; the certificate lives 24h";
    assert_one_event(&events, "Warning", "Issued", note);
    assert!(failed(&h, "short").await.contains("minDuration"));
    let message = failed(&h, "small-key").await;
    assert!(message.contains("allowedKeys") && message.contains("2048"), "{message}");
    let message = failed(&h, "usage").await;
    assert!(message.contains("allowedUsages") && message.contains("client auth"), "{message}");

    let (_, metrics_addr) = addresses(&h.ferrum_log()).expect("metrics address");
    let (_, text) = http_get(&metrics_addr, "/metrics").await;
    let series = r#"ferrum_certificate_deviations_total{kind="FerrumIssuer",deviation="DurationClampedByPolicy"}"#;
    assert_eq!(metric(&text, series), Some(1.0), "{text}");
}

/// The guard: a CA whose extended key usage allows server authentication only. A server
/// certificate is issued; a client certificate is built, refused by the RFC 5280 path
/// validation (OpenSSL) and never published — the request is Failed naming the rule.
#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_the_chain_does_not_validate_is_never_published() {
    let mut h = Harness::new("guard").await;
    h.start_ferrum(&[]).await;
    let ns = h.ns.clone();
    let ca = ca_with("Servers-only CA", |p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]);
    issuer_with(&h, IssuerScope::Namespaced, &ns, "servers", &ca, json!({})).await;
    h.issuer_ready(IssuerScope::Namespaced, "servers", "True").await;
    let to = (IssuerScope::Namespaced, "servers");
    let usages = |u: &str| json!({"usages": ["digital signature", "key encipherment", u]});
    request(&h, "server", csr_pem("server.example.com"), to, usages("server auth")).await;
    request(&h, "client", csr_pem("client.example.com"), to, usages("client auth")).await;
    let (_, chain) = issued(&h, "server").await;
    let (ok, out) = openssl_verify(ca.cert_pem.as_bytes(), b"", &chain);
    assert!(ok, "{out}");
    let message = failed(&h, "client").await;
    assert!(message.contains("does not validate against the issuer's chain"), "{message}");
}

/// Without the right to read namespaces (the chart's `get` on namespaces taken out), a request
/// to a cluster issuer that selects namespaces waits, saying why, instead of failing.
#[tokio::test(flavor = "multi_thread")]
async fn unreadable_namespace_labels_hold_the_request_without_failing_it() {
    let mut h = Harness::new("nolabels").await;
    let replica = h.fullname();
    h.start_ferrum_with_rbac(&replica, &[], |objects| {
        for role in objects.iter_mut().filter(|o| o["kind"] == "ClusterRole") {
            if let Some(rules) = role["rules"].as_array_mut() {
                rules.retain(|rule| rule["resources"] != json!(["namespaces"]));
            }
        }
    })
    .await;
    let name = format!("selects-{}", h.ns);
    let policy = json!({"policy": {"namespaceSelector": {"matchLabels": {"e2e.ferrum.dev/any": "yes"}}}});
    issuer_with(&h, IssuerScope::Cluster, CLUSTER_RESOURCE_NAMESPACE, &name, &ca_with("Selecting CA", |_| {}), policy)
        .await;
    h.issuer_ready(IssuerScope::Cluster, &name, "True").await;
    request(&h, "held", csr_pem("held.example.com"), (IssuerScope::Cluster, &name), json!({})).await;
    let cr = h.request_reason("held", "Pending", Duration::from_secs(20)).await;
    let message = ready_message(&cr);
    assert!(message.contains("cannot read the labels of namespace") && message.contains(&h.ns), "{message}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let cr: CertificateRequest = h.api::<CertificateRequest>().get("held").await.unwrap();
    assert_eq!(cr.condition("Ready").and_then(|c| c.reason.clone()).as_deref(), Some("Pending"), "still waiting");
    h.issuers(IssuerScope::Cluster).delete(&name, &Default::default()).await.expect("delete the issuer");
}

/// A root that expires before the issuing intermediate: the leaf's lifetime is cut to the root's
/// expiry (a certificate that outlives its root would stop validating first), and the Issued
/// event says so; the chain verifies.
#[tokio::test(flavor = "multi_thread")]
async fn the_lifetime_is_cut_to_the_earliest_expiry_in_the_chain() {
    let mut h = Harness::new("chainclamp").await;
    h.start_ferrum(&[]).await;
    let root = make_ca("Short Root", CaOptions { days: 10, ..Default::default() });
    let intermediate = make_intermediate(&root, "Long Intermediate", CaOptions { days: 365, ..Default::default() });
    let data = [
        ("tls.crt", intermediate.cert_pem.as_bytes()),
        ("tls.key", intermediate.key_pem.as_bytes()),
        ("ca.crt", root.cert_pem.as_bytes()),
    ];
    h.create_secret(&h.ns, "clamp", &data).await;
    h.create_issuer(IssuerScope::Namespaced, "clamp", "clamp").await;
    h.issuer_ready(IssuerScope::Namespaced, "clamp", "True").await;
    request(&h, "long", csr_pem("long.example.com"), (IssuerScope::Namespaced, "clamp"), json!({"duration": "2160h"}))
        .await;
    let (leaf, chain) = issued(&h, "long").await;
    let (_, cert) = X509Certificate::from_der(&leaf).unwrap();
    let root_der = pem_certs(root.cert_pem.as_bytes()).remove(0);
    let (_, root_cert) = X509Certificate::from_der(&root_der).unwrap();
    assert_eq!(cert.validity().not_after, root_cert.validity().not_after, "the leaf expires with the root");
    let events = h.settled_events_about("long").await;
    let clamped = events.iter().any(|e| e.note.as_deref().is_some_and(|n| n.contains("DurationClamped")));
    assert!(clamped, "the Issued event says the lifetime was cut: {events:?}");
    let (ok, out) = openssl_verify(root.cert_pem.as_bytes(), intermediate.cert_pem.as_bytes(), &chain);
    assert!(ok, "{out}");
}
