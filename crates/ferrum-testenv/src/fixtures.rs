//! Fixtures every test suite shares: test CAs and CSRs, the openssl CLI, polling, base64 and
//! PEM, the rendered Helm chart, CRD installation, and the repository root.

use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde::Deserialize;

pub use crate::binaries::repo_root;
use crate::binaries::{Binaries, Tool};

/// The Helm chart's directory.
pub fn chart_dir() -> std::path::PathBuf {
    repo_root().join("deploy/chart/ferrum-issuer")
}

/// `helm <args>` with the helm binary from the control plane cache, and no user configuration,
/// repositories or plugins (a missing helm fails saying how to build it).
pub fn helm(args: &[&str]) -> std::process::Output {
    let helm = Binaries::locate()
        .and_then(|b| b.path(Tool::Helm))
        .unwrap_or_else(|e| panic!("helm is needed; build it with tools/controlplane/build.sh ({e})"));
    let home = std::env::temp_dir().join("ferrum-test-helm");
    Command::new(helm)
        .args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm")
}

/// `helm template <release> <chart> --namespace <namespace> <extra>`, parsed into its
/// non-empty documents; fails the test if helm does.
pub fn helm_template(release: &str, namespace: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let chart = chart_dir();
    let mut args = vec!["template", release, chart.to_str().expect("UTF-8 path"), "--namespace", namespace];
    args.extend_from_slice(extra);
    let out = helm(&args);
    assert!(out.status.success(), "helm template {extra:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    parse_documents(&String::from_utf8(out.stdout).expect("UTF-8 output"))
}

/// The non-empty documents of a multi-document YAML text.
pub fn parse_documents(text: &str) -> Vec<serde_json::Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| serde_json::Value::deserialize(doc).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The chart's objects for a release in `namespace`, with `fullnameOverride=<fullname>` (so
/// that cluster-scoped names do not collide between tests), without CRDs and approver RBAC.
pub fn render_chart(namespace: &str, fullname: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let fullname = format!("fullnameOverride={fullname}");
    let mut args = vec!["--set", &fullname, "--set", "crds.enabled=false", "--set", "approver.enabled=false"];
    for set in extra {
        args.extend(["--set", set]);
    }
    helm_template("ferrum", namespace, &args)
}

/// Polls `probe` every 200 ms until it gives `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A CA key pair as PEM (certificate, key).
pub struct TestCa {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

/// Options for a test CA.
#[derive(Clone, Copy)]
pub struct CaOptions {
    /// basicConstraints cA (false makes a leaf that cannot issue).
    pub is_ca: bool,
    /// Valid 2020-2021 only.
    pub expired: bool,
    /// Days of validity from now (when not expired).
    pub days: i64,
}

impl Default for CaOptions {
    fn default() -> Self {
        Self { is_ca: true, expired: false, days: 365 }
    }
}

/// Makes a self-signed CA with rcgen.
pub fn make_ca(common_name: &str, options: CaOptions) -> TestCa {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::OrganizationName, "Ferrum E2E");
    params.distinguished_name.push(DnType::CommonName, common_name);
    if options.is_ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    }
    let now = time::OffsetDateTime::now_utc();
    if options.expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    } else {
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(options.days);
    }
    let cert = params.self_signed(&key).expect("self-sign");
    TestCa { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

/// A P-256 CSR for `dns` as PEM.
pub fn csr_pem(dns: &str) -> Vec<u8> {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec![dns.to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, dns);
    params.serialize_request(&key).expect("csr").pem().expect("pem").into_bytes()
}

/// A CSR made by the openssl CLI: `genpkey` arguments, subject, extra `req` arguments.
pub fn openssl_csr(keygen: &[&str], subject: &str, extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec!["genpkey"];
    args.extend(keygen);
    args.extend(["-out", "k.pem"]);
    let (ok, out) = openssl(dir.path(), &args);
    assert!(ok, "{out}");
    let mut args = vec!["req", "-new", "-key", "k.pem", "-subj", subject, "-out", "r.pem"];
    args.extend(extra);
    let (ok, out) = openssl(dir.path(), &args);
    assert!(ok, "{out}");
    std::fs::read(dir.path().join("r.pem")).expect("read CSR")
}

/// `genpkey` arguments for a P-256 key.
pub const P256: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
/// `genpkey` arguments for an RSA-2048 key.
pub const RSA2048: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];

/// Runs `openssl` with `args` in `dir`, returning (success, stdout+stderr).
pub fn openssl(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl CLI is needed: apt-get install openssl");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Standard base64, as Go encodes a `[]byte` in JSON.
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A PEM block with `label` around `der`, 64-character lines.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = base64(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// Applies rendered objects (JSON, any kind) by server-side apply, forced, as `field_manager`;
/// fails the test naming the object that was refused.
pub async fn apply_objects(client: &kube::Client, field_manager: &str, objects: &[serde_json::Value]) {
    use kube::api::DynamicObject;
    use kube::core::{ApiResource, GroupVersionKind};
    for object in objects {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        api.patch(name, &PatchParams::apply(field_manager).force(), &Patch::Apply(object))
            .await
            .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
    }
}

/// Applies `crds` by server-side apply and waits until each is Established.
pub async fn install_crds(client: &kube::Client, crds: impl IntoIterator<Item = CustomResourceDefinition>) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds {
        let name = crd.metadata.name.clone().expect("a CRD has a name");
        let mut body = serde_json::to_value(&crd).expect("a CRD serializes");
        body["apiVersion"] = serde_json::json!("apiextensions.k8s.io/v1");
        body["kind"] = serde_json::json!("CustomResourceDefinition");
        api.patch(&name, &PatchParams::apply("e2e").force(), &Patch::Apply(body)).await.expect("apply CRD");
        eventually(&format!("CRD {name} Established"), Duration::from_secs(30), || async {
            let crd = api.get(&name).await.ok()?;
            let conditions = crd.status?.conditions?;
            conditions.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
        })
        .await;
    }
}
