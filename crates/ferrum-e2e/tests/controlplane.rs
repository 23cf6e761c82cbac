//! The test control plane is real: cert-manager's own controllers issue certificates through
//! it, kube-apiserver enforces RBAC, and a missing binary fails loudly.
//!
//! Run with `cargo test -p ferrum-e2e --test controlplane`. The tests share one control plane
//! per test binary (or the one named by `FERRUM_TESTENV_KUBECONFIG`), each in its own
//! namespace with its own cert-manager runner scoped to it. There is no cert-manager webhook:
//! every `issuerRef` names its group and kind.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use ferrum_testenv::{BUILD_COMMAND, CertManagerOptions, ControlPlane, ControlPlaneOptions, Error};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn self_signed_issuer_issues_a_certificate() -> anyhow::Result<()> {
    let env = ferrum_testenv::shared().await?;
    let client = env.client()?;
    let ns = env.fresh_namespace("selfsigned").await?;
    let _cert_manager = env.start_cert_manager(CertManagerOptions::default().in_namespace(&ns)).await?;

    create(&client, &ns, &ISSUER, self_signed_issuer("selfsigned")).await?;
    create(&client, &ns, &CERTIFICATE, leaf_certificate("leaf.ferrum.test", "selfsigned")).await?;

    wait_ready(&client, &ns, &CERTIFICATE, "leaf").await?;
    let cert_pem = secret_field(&client, &ns, "leaf-tls", "tls.crt").await?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&cert_pem).context("tls.crt is not PEM")?;
    let cert = pem.parse_x509().context("tls.crt is not an X.509 certificate")?;
    let san = cert.subject_alternative_name()?.context("tls.crt has no subjectAltName")?;
    let dns: Vec<String> = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(dns, ["leaf.ferrum.test"]);
    assert_eq!(cert.subject(), cert.issuer(), "a self-signed certificate");
    Ok(())
}

#[tokio::test]
async fn ca_issuer_chain_verifies_with_openssl() -> anyhow::Result<()> {
    let env = ferrum_testenv::shared().await?;
    let client = env.client()?;
    let ns = env.fresh_namespace("ca-chain").await?;
    let _cert_manager = env.start_cert_manager(CertManagerOptions::default().in_namespace(&ns)).await?;

    create(&client, &ns, &ISSUER, self_signed_issuer("selfsigned")).await?;
    create(
        &client,
        &ns,
        &CERTIFICATE,
        json!({
            "metadata": { "name": "root" },
            "spec": {
                "isCA": true,
                "commonName": "ferrum e2e root",
                "secretName": "root-ca",
                "privateKey": { "algorithm": "ECDSA", "size": 256 },
                "issuerRef": issuer_ref("selfsigned"),
            },
        }),
    )
    .await?;
    wait_ready(&client, &ns, &CERTIFICATE, "root").await?;

    create(
        &client,
        &ns,
        &ISSUER,
        json!({ "metadata": { "name": "ca" }, "spec": { "ca": { "secretName": "root-ca" } } }),
    )
    .await?;
    wait_ready(&client, &ns, &ISSUER, "ca").await?;
    create(&client, &ns, &CERTIFICATE, leaf_certificate("svc.ferrum.test", "ca")).await?;
    wait_ready(&client, &ns, &CERTIFICATE, "leaf").await?;

    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.crt");
    let leaf = dir.path().join("tls.crt");
    std::fs::write(&ca, secret_field(&client, &ns, "root-ca", "tls.crt").await?)?;
    std::fs::write(&leaf, secret_field(&client, &ns, "leaf-tls", "tls.crt").await?)?;
    let out = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&ca)
        .arg(&leaf)
        .output()
        .context("running the openssl CLI")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with(": OK"),
        "openssl verify failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        secret_field(&client, &ns, "leaf-tls", "ca.crt").await?,
        std::fs::read(&ca)?,
        "the leaf Secret's ca.crt is the root"
    );
    Ok(())
}

#[tokio::test]
async fn rbac_is_enforced_for_service_accounts() -> anyhow::Result<()> {
    let env = ferrum_testenv::shared().await?;
    let ns = env.fresh_namespace("rbac").await?;
    let account = env.service_account_kubeconfig(&ns, "reader").await?;
    let requests: Api<DynamicObject> = Api::namespaced_with(account.client.clone(), &ns, &*CERTIFICATE_REQUEST);

    match requests.list(&Default::default()).await {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => bail!("expected 403 Forbidden without a binding, got {other:?}"),
    }

    let admin = env.client()?;
    create(
        &admin,
        &ns,
        &ROLE,
        json!({
            "metadata": { "name": "read-certificaterequests" },
            "rules": [{
                "apiGroups": ["cert-manager.io"],
                "resources": ["certificaterequests"],
                "verbs": ["get", "list", "watch"],
            }],
        }),
    )
    .await?;
    create(
        &admin,
        &ns,
        &ROLE_BINDING,
        json!({
            "metadata": { "name": "reader" },
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "read-certificaterequests",
            },
            "subjects": [{ "kind": "ServiceAccount", "name": "reader", "namespace": ns }],
        }),
    )
    .await?;

    // The authorizer reads RBAC objects from an informer: allow it a moment to see them.
    let started = Instant::now();
    loop {
        match requests.list(&Default::default()).await {
            Ok(list) => {
                assert!(list.items.is_empty());
                break;
            }
            Err(kube::Error::Api(status)) if status.code == 403 && started.elapsed() < TIMEOUT => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => bail!("listing after the RoleBinding as {}: {e}", account.username),
        }
    }
    Ok(())
}

#[tokio::test]
async fn missing_binaries_name_the_build_command() {
    let empty = tempfile::tempdir().unwrap();
    let result = ControlPlane::start(ControlPlaneOptions {
        binaries_dir: Some(empty.path().to_path_buf()),
        ..ControlPlaneOptions::default()
    })
    .await;
    match result {
        Err(Error::MissingBinaries(message)) => {
            assert!(message.contains(BUILD_COMMAND), "{message}");
            assert!(message.contains("tools/controlplane/build.sh"), "{message}");
        }
        Err(other) => panic!("expected MissingBinaries, got: {other}"),
        Ok(_) => panic!("started a control plane from an empty directory"),
    }
}

#[tokio::test]
async fn a_server_that_fails_to_start_reports_its_log() {
    let result = ControlPlane::start(ControlPlaneOptions {
        extra_apiserver_args: vec!["--no-such-flag=1".into()],
        crd_files: Vec::new(),
        ..ControlPlaneOptions::default()
    })
    .await;
    match result {
        Err(Error::Exited { name, tail, .. }) => {
            assert_eq!(name, "kube-apiserver");
            assert!(tail.contains("no-such-flag"), "{tail}");
        }
        Err(other) => panic!("expected kube-apiserver to exit, got: {other}"),
        Ok(_) => panic!("kube-apiserver accepted --no-such-flag"),
    }
}

// ---- helpers ----

static ISSUER: std::sync::LazyLock<ApiResource> =
    std::sync::LazyLock::new(|| resource("cert-manager.io", "v1", "Issuer", "issuers"));
static CERTIFICATE: std::sync::LazyLock<ApiResource> =
    std::sync::LazyLock::new(|| resource("cert-manager.io", "v1", "Certificate", "certificates"));
static CERTIFICATE_REQUEST: std::sync::LazyLock<ApiResource> =
    std::sync::LazyLock::new(|| resource("cert-manager.io", "v1", "CertificateRequest", "certificaterequests"));
static ROLE: std::sync::LazyLock<ApiResource> =
    std::sync::LazyLock::new(|| resource("rbac.authorization.k8s.io", "v1", "Role", "roles"));
static ROLE_BINDING: std::sync::LazyLock<ApiResource> =
    std::sync::LazyLock::new(|| resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"));

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn self_signed_issuer(name: &str) -> Value {
    json!({ "metadata": { "name": name }, "spec": { "selfSigned": {} } })
}

/// Without cert-manager's webhook nothing defaults the group and kind.
fn issuer_ref(name: &str) -> Value {
    json!({ "name": name, "kind": "Issuer", "group": "cert-manager.io" })
}

/// Creates `body` (metadata and spec; apiVersion and kind are filled in) in `ns`.
async fn create(client: &Client, ns: &str, resource: &ApiResource, mut body: Value) -> anyhow::Result<()> {
    body["apiVersion"] = resource.api_version.clone().into();
    body["kind"] = resource.kind.clone().into();
    let object: DynamicObject = serde_json::from_value(body)?;
    let name = object.metadata.name.clone().unwrap_or_default();
    Api::<DynamicObject>::namespaced_with(client.clone(), ns, resource)
        .create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("creating {} {ns}/{name}", resource.kind))?;
    Ok(())
}

/// Waits until the object's Ready condition is True; fails early on a terminal Ready=False.
async fn wait_ready(client: &Client, ns: &str, resource: &ApiResource, name: &str) -> anyhow::Result<()> {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), ns, resource);
    let started = Instant::now();
    loop {
        let object = api.get(name).await?;
        let status = object.data.get("status").cloned().unwrap_or(Value::Null);
        let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
        let ready = conditions.iter().find(|c| c["type"] == "Ready");
        if ready.is_some_and(|c| c["status"] == "True") {
            return Ok(());
        }
        // A failed issuance backs off for an hour: say so instead of waiting it out.
        ensure!(!conditions.iter().any(|c| c["reason"] == "Failed"), "{} {ns}/{name} failed: {status}", resource.kind);
        if started.elapsed() > TIMEOUT {
            bail!("{} {ns}/{name} not Ready after {TIMEOUT:?}: {status}", resource.kind);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One data field of a Secret, decoded.
async fn secret_field(client: &Client, ns: &str, name: &str, key: &str) -> anyhow::Result<Vec<u8>> {
    let secret = Api::<Secret>::namespaced(client.clone(), ns).get(name).await?;
    let value = secret
        .data
        .and_then(|mut data| data.remove(key))
        .with_context(|| format!("Secret {ns}/{name} has no {key}"))?;
    Ok(value.0)
}

/// A Certificate `leaf` for `dns`, into Secret `leaf-tls`, from the Issuer `issuer`.
fn leaf_certificate(dns: &str, issuer: &str) -> serde_json::Value {
    json!({
        "metadata": { "name": "leaf" },
        "spec": {
            "secretName": "leaf-tls",
            "dnsNames": [dns],
            "privateKey": { "algorithm": "ECDSA", "size": 256 },
            "issuerRef": issuer_ref(issuer),
        },
    })
}
