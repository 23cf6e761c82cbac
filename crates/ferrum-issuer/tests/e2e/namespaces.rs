//! Which namespaces Ferrum serves and where cluster issuers read Secrets, with the flags left
//! to their defaults: every other test gives `--namespace` and `--cluster-resource-namespace`.
//!
//! The control plane is shared by all tests at once, and every Ferrum of them serves the same
//! kinds. A Ferrum without `--namespace` watches every test's requests and issuers, so it
//! must not write to them: it runs with the chart's ClusterRole cut to reading, and its writes
//! (request and issuer status, events) granted by Roles in its two namespaces only. Elsewhere
//! its writes are refused by the apiserver and change nothing. (The alternatives: a control
//! plane of its own costs a second etcd and apiserver in the suite; the library with kinds of
//! its own would not run the binary's flags.) Its cluster resource namespace is the suite's,
//! so that it judges every FerrumClusterIssuer as the other Ferrums do.

use std::time::Duration;

use ferrum::{CertificateRequest, IssuerScope};
use serde_json::{Value, json};
use x509_parser::prelude::*;

use crate::support::*;

/// Verbs that change something.
const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// Cuts the chart's ClusterRole to its read verbs, and grants its write rules by a Role and
/// RoleBinding (to the ClusterRoleBinding's subjects) in each of `namespaces`.
fn confine_writes(objects: &mut Vec<Value>, namespaces: &[&str]) {
    let mut grants = Vec::new();
    for role in objects.iter_mut().filter(|o| o["kind"] == "ClusterRole") {
        let mut writes = Vec::new();
        let rules = role["rules"].as_array_mut().expect("rules");
        for rule in rules.iter_mut() {
            let verbs = rule["verbs"].as_array_mut().expect("verbs");
            let (write, read): (Vec<Value>, Vec<Value>) =
                verbs.drain(..).partition(|v| WRITES.contains(&v.as_str().unwrap_or_default()));
            *verbs = read;
            if !write.is_empty() {
                let mut granted = rule.clone();
                granted["verbs"] = json!(write);
                writes.push(granted);
            }
        }
        rules.retain(|rule| !rule["verbs"].as_array().is_some_and(Vec::is_empty));
        grants.push((role["metadata"]["name"].as_str().expect("name").to_owned(), writes));
    }
    assert!(grants.iter().any(|(_, writes)| !writes.is_empty()), "the chart's ClusterRole grants writes");
    for (role, writes) in grants {
        // Roles the chart aggregates into the built-in ones are bound to no one.
        let Some(subjects) = objects
            .iter()
            .find(|o| o["kind"] == "ClusterRoleBinding" && o["roleRef"]["name"] == role.as_str())
            .map(|b| b["subjects"].clone())
        else {
            continue;
        };
        for ns in namespaces {
            let name = format!("{role}-writes");
            objects.push(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": name, "namespace": ns}, "rules": writes,
            }));
            objects.push(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": subjects,
            }));
        }
    }
}

/// A CA Secret and a Ready FerrumIssuer `ca` in `h`'s namespace; an approved request `r1`.
async fn issuer_and_request(h: &Harness, ca: &TestCa) {
    h.create_secret(&h.ns, "ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    h.create_issuer(IssuerScope::Namespaced, "ca", "ca").await;
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    h.create_request("r1", &csr_pem(&format!("{}.example", h.ns)), ferrum_ref(IssuerScope::Namespaced, "ca")).await;
    h.decide("r1", true).await;
}

/// Asserts that `cr` holds a leaf for `dns` signed by `ca`, and `ca` as its root.
fn assert_issued_by(cr: &CertificateRequest, ca: &TestCa, dns: &str) {
    let status = cr.status.clone().expect("status");
    let ca_der = pem_certs(ca.cert_pem.as_bytes()).remove(0);
    assert_eq!(pem_certs(&status.ca), vec![ca_der.clone()], "status.ca is this CA");
    let leaf_der = pem_certs(&status.certificate).remove(0);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
    let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
    assert_eq!(leaf.issuer().as_raw(), ca_cert.subject().as_raw(), "issued by this CA");
    assert!(leaf.verify_signature(Some(ca_cert.public_key())).is_ok(), "signed by this CA's key");
    let cn = leaf.subject().iter_common_name().next().and_then(|c| c.as_str().ok());
    assert_eq!(cn, Some(dns));
}

/// Ferrum without `--namespace` issues in two namespaces: one process, each request signed by
/// its own namespace's CA, with its Issued event.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_namespace_flag_ferrum_serves_every_namespace() {
    let mut a = Harness::new("allns-a").await;
    let b = Harness::new("allns-b").await;
    let (ns_a, ns_b, lease) = (a.ns.clone(), b.ns.clone(), a.fullname());
    let flags = [
        "--cluster-resource-namespace",
        CLUSTER_RESOURCE_NAMESPACE,
        "--leader-election-namespace",
        &ns_a,
        "--leader-election-lease-name",
        &lease,
    ];
    a.start_ferrum_bare("ferrum-all-namespaces", &flags, &[], |objects| confine_writes(objects, &[&ns_a, &ns_b])).await;
    let (ca_a, ca_b) =
        (make_ca("Namespace A CA", CaOptions::default()), make_ca("Namespace B CA", CaOptions::default()));
    issuer_and_request(&a, &ca_a).await;
    issuer_and_request(&b, &ca_b).await;
    for (h, ca) in [(&a, &ca_a), (&b, &ca_b)] {
        let cr = h.request_reason("r1", "Issued", Duration::from_secs(20)).await;
        assert_issued_by(&cr, ca, &format!("{}.example", h.ns));
        assert_one_event(&h.settled_events_about("r1").await, "Normal", "Issued", &ready_message(&cr));
    }
}

/// `--cluster-resource-namespace` not given: a FerrumClusterIssuer reads its Secret from the
/// namespace Ferrum runs in (`POD_NAMESPACE`, as the chart sets it), not from the namespace it
/// serves (`--namespace`, which holds a decoy CA under the same name) nor from `default`.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_issuers_read_secrets_from_the_pods_namespace_by_default() {
    let mut h = Harness::new("default-crns").await;
    let (ns, lease, name) = (h.ns.clone(), h.fullname(), format!("default-crns-{}", h.ns));
    let ca = make_ca("Pod Namespace CA", CaOptions::default());
    let decoy = make_ca("Decoy CA", CaOptions::default());
    h.create_secret(
        CLUSTER_RESOURCE_NAMESPACE,
        &name,
        &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())],
    )
    .await;
    h.create_secret(&ns, &name, &[("tls.crt", decoy.cert_pem.as_bytes()), ("tls.key", decoy.key_pem.as_bytes())]).await;
    let flags = ["--namespace", &ns, "--leader-election-namespace", &ns, "--leader-election-lease-name", &lease];
    h.start_ferrum_bare("ferrum-default-crns", &flags, &[("POD_NAMESPACE", CLUSTER_RESOURCE_NAMESPACE)], |_| {}).await;
    h.create_issuer(IssuerScope::Cluster, &name, &name).await;
    h.issuer_ready(IssuerScope::Cluster, &name, "True").await;
    h.create_request("r1", &csr_pem("pod-namespace.example"), ferrum_ref(IssuerScope::Cluster, &name)).await;
    h.decide("r1", true).await;
    let cr = h.request_reason("r1", "Issued", Duration::from_secs(20)).await;
    assert_issued_by(&cr, &ca, "pod-namespace.example");
}
