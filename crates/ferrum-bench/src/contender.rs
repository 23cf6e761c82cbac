//! The contenders: how each is started in its own namespace and which issuer it serves.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferrum::IssuerReference;
use ferrum_testenv::softhsm::SoftHsm;
use ferrum_testenv::{CertManagerOptions, ControlPlane, ProcessHandle};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use crate::pki::Ca;

/// The name of the CA Secret and of the issuer in each contender's namespace.
const ISSUER: &str = "bench-ca";

/// One contender of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Contender {
    /// `ferrum-issuer` with its `ca` backend.
    Ferrum,
    /// `ferrum-issuer` with its `pkcs11` backend: the same CA key, imported (non-extractable)
    /// into a SoftHSM2 token of the run's own.
    FerrumPkcs11,
    /// cert-manager's built-in CA issuer, through `cm-runner`.
    CertManager,
    /// cert-manager/sample-external-issuer (Go). Not available: see [`SAMPLE_UNAVAILABLE`].
    Sample,
    /// One apply of a precomputed certificate per request.
    Floor,
}

/// Why sample-external-issuer is not measured (the exact command and its error, 2026-05).
pub const SAMPLE_UNAVAILABLE: &str = "GOTOOLCHAIN=local go mod download -json \
github.com/cert-manager/sample-external-issuer@latest -> 403 Forbidden from the Go module proxy \
(\"This module version is not available.\"); also @main and @v0.4.0 and `go list -m -versions`";

impl Contender {
    /// The label in tables and CSVs.
    pub fn label(self) -> &'static str {
        match self {
            Contender::Ferrum => "ferrum",
            Contender::FerrumPkcs11 => "ferrum-pkcs11",
            Contender::CertManager => "cert-manager-ca",
            Contender::Sample => "sample-external-issuer",
            Contender::Floor => "floor",
        }
    }
}

/// How to start the contenders.
pub struct Settings<'a> {
    /// The `ferrum-issuer` binary.
    pub ferrum_bin: &'a Path,
    /// Worker concurrency given to every contender that has a knob.
    pub concurrency: usize,
    /// Extra `--log-level` for Ferrum.
    pub ferrum_log_level: &'a str,
    /// sample-external-issuer: a binary built by hand and its CRD folder, if given.
    pub sample: Option<(&'a Path, &'a Path)>,
    /// How long a contender may take to start and to see its issuer Ready (it grows with the
    /// requests present at its start).
    pub start_timeout: Duration,
}

/// A contender's namespace made ready for it: the objects exist, the process is not started.
pub struct Prepared {
    /// Which contender.
    pub contender: Contender,
    /// What the requests name as their issuer.
    pub issuer_ref: IssuerReference,
    /// The group, version and kind of the issuer object to wait for, if there is one.
    issuer: Option<(&'static str, &'static str, &'static str)>,
    /// The `pkcs11` contender's token (deleted with it).
    hsm: Option<SoftHsm>,
}

/// The token, PIN and key label of the `pkcs11` contender.
const HSM_TOKEN: &str = "bench";
const HSM_PIN: &str = "bench-pin";
const HSM_KEY: &str = "bench-ca";

/// Why `contender` cannot be run with these settings, if it cannot.
pub fn unavailable(contender: Contender, settings: &Settings<'_>) -> Option<String> {
    (contender == Contender::Sample && settings.sample.is_none()).then(|| {
        format!(
            "sample-external-issuer cannot be built from its Go module: {SAMPLE_UNAVAILABLE}; \
             pass --sample-bin and --sample-crds to measure a binary built by hand"
        )
    })
}

/// Creates what `contender` needs in `namespace` (its CRDs, the CA Secret, the issuer), without
/// starting it.
pub async fn prepare(
    contender: Contender,
    cp: &ControlPlane,
    namespace: &str,
    ca: &Ca,
    settings: &Settings<'_>,
) -> anyhow::Result<Prepared> {
    if let Some(reason) = unavailable(contender, settings) {
        anyhow::bail!(reason);
    }
    let client = cp.client()?;
    let mut hsm = None;
    let (issuer_ref, issuer) = match contender {
        Contender::FerrumPkcs11 => {
            let token = SoftHsm::new();
            token.init_token(HSM_TOKEN, "bench-so-pin", HSM_PIN);
            token.import_key(HSM_TOKEN, HSM_PIN, &ca.key_pem, HSM_KEY, "01", false);
            hsm = Some(token);
            create_secret(&client, namespace, ISSUER, "Opaque", &[("tls.crt", &ca.cert_pem)]).await?;
            create_secret(&client, namespace, "bench-pin", "Opaque", &[("pin", HSM_PIN)]).await?;
            let gvk = ("ferrum.dev", "v1alpha1", "FerrumIssuer");
            let spec = json!({ "pkcs11": {
                "tokenLabel": HSM_TOKEN, "keyLabel": HSM_KEY,
                "pinSecretRef": { "name": "bench-pin" }, "certificateSecretName": ISSUER,
            }});
            create_issuer_spec(&client, namespace, gvk, spec).await?;
            (issuer_ref("ferrum.dev", "FerrumIssuer"), Some(gvk))
        }
        Contender::Ferrum => {
            create_ca_secret(&client, namespace, ca).await?;
            let gvk = ("ferrum.dev", "v1alpha1", "FerrumIssuer");
            create_issuer(&client, namespace, gvk).await?;
            (issuer_ref("ferrum.dev", "FerrumIssuer"), Some(gvk))
        }
        Contender::CertManager => {
            create_ca_secret(&client, namespace, ca).await?;
            let gvk = ("cert-manager.io", "v1", "Issuer");
            create_issuer(&client, namespace, gvk).await?;
            (issuer_ref("cert-manager.io", "Issuer"), Some(gvk))
        }
        Contender::Floor => (issuer_ref("floor.bench.example", "Floor"), None),
        Contender::Sample => {
            let (_, crds) = settings.sample.context("no sample-external-issuer")?;
            let files: Vec<PathBuf> = std::fs::read_dir(crds)
                .with_context(|| format!("reading {}", crds.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect();
            let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
            ferrum_testenv::crds::install(&client, &refs, Duration::from_secs(60)).await?;
            // Its signer ignores the Secret's contents but requires it to exist.
            create_ca_secret(&client, namespace, ca).await?;
            let gvk = ("sample-issuer.example.com", "v1alpha1", "SampleIssuer");
            let object: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "sample-issuer.example.com/v1alpha1", "kind": "SampleIssuer",
                "metadata": { "name": ISSUER, "namespace": namespace },
                "spec": { "url": "https://sample-signer.example.com/api", "authSecretName": ISSUER },
            }))?;
            issuer_api(&client, namespace, gvk).create(&PostParams::default(), &object).await?;
            (issuer_ref("sample-issuer.example.com", "SampleIssuer"), Some(gvk))
        }
    };
    Ok(Prepared { contender, issuer_ref, issuer, hsm })
}

/// Starts the contender's process for `namespace` and waits for its own readiness signal
/// (cm-runner's and the floor's ready lines; Ferrum and sample-external-issuer have none).
pub async fn launch(
    prepared: &Prepared,
    cp: &ControlPlane,
    namespace: &str,
    settings: &Settings<'_>,
) -> anyhow::Result<ProcessHandle> {
    let workers = settings.concurrency.to_string();
    match prepared.contender {
        Contender::Ferrum | Contender::FerrumPkcs11 => {
            let mut cmd = Command::new(settings.ferrum_bin);
            if let Some(hsm) = &prepared.hsm {
                let (key, conf) = hsm.env();
                cmd.arg("--pkcs11-module").arg(&hsm.module).env(key, conf);
            }
            cmd.arg("--kubeconfig")
                .arg(cp.kubeconfig_path())
                .args(["--namespace", namespace, "--cluster-resource-namespace", namespace])
                .args(["--leader-elect=false", "--concurrency", &workers])
                .args(["--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"])
                .args(["--crl-bind-address", "127.0.0.1:0"])
                .args(["--log-level", settings.ferrum_log_level])
                .env("POD_NAME", "ferrum-bench")
                .env("POD_NAMESPACE", namespace);
            Ok(cp.spawn_process("ferrum-issuer", cmd)?)
        }
        Contender::CertManager => {
            let options = CertManagerOptions {
                controllers: vec!["certificaterequests-issuer-ca".into(), "issuers".into()],
                cluster_resource_namespace: namespace.into(),
                namespace: Some(namespace.into()),
                extra_args: vec!["--workers".into(), workers],
                ready_timeout: settings.start_timeout,
            };
            Ok(cp.start_cert_manager(options).await?)
        }
        Contender::Floor => {
            let exe = std::env::current_exe().context("locating ferrum-bench")?;
            let mut cmd = Command::new(exe);
            cmd.arg("floor").arg("--kubeconfig").arg(cp.kubeconfig_path()).args([
                "--namespace",
                namespace,
                "--concurrency",
                &workers,
            ]);
            let process = cp.spawn_process("floor", cmd)?;
            process.wait_for_log_line(crate::floor::READY_LINE, settings.start_timeout).await?;
            Ok(process)
        }
        Contender::Sample => {
            let (bin, _) = settings.sample.context("no sample-external-issuer")?;
            let mut cmd = Command::new(bin);
            cmd.arg("--kubeconfig")
                .arg(cp.kubeconfig_path())
                .args(["--cluster-resource-namespace", namespace, "--metrics-bind-address", "0"])
                .args(["--health-probe-bind-address", "127.0.0.1:0", "--zap-log-level", "info"]);
            Ok(cp.spawn_process("sample-external-issuer", cmd)?)
        }
    }
}

/// Waits until the contender's issuer is `Ready=True` (at once for the floor, which has none).
pub async fn wait_ready(
    prepared: &Prepared,
    cp: &ControlPlane,
    namespace: &str,
    process: &ProcessHandle,
    settings: &Settings<'_>,
) -> anyhow::Result<()> {
    match prepared.issuer {
        Some(gvk) => wait_issuer_ready(&cp.client()?, namespace, gvk, process, settings.start_timeout).await,
        None => Ok(()),
    }
}

/// The error to report if the contender's process has exited.
pub fn check_alive(process: &ProcessHandle) -> anyhow::Result<()> {
    match process.exit_status() {
        Some(status) => anyhow::bail!("{} exited ({status}):\n{}", process.name(), process.log_tail(30)),
        None => Ok(()),
    }
}

/// The default `ferrum-issuer`: the release build of this workspace.
pub fn default_ferrum_bin() -> PathBuf {
    ferrum_testenv::binaries::repo_root().join("target/release/ferrum-issuer")
}

fn issuer_ref(group: &str, kind: &str) -> IssuerReference {
    IssuerReference { name: ISSUER.into(), kind: Some(kind.into()), group: Some(group.into()) }
}

async fn create_ca_secret(client: &kube::Client, namespace: &str, ca: &Ca) -> anyhow::Result<()> {
    let data = [("tls.crt", ca.cert_pem.as_str()), ("tls.key", ca.key_pem.as_str())];
    create_secret(client, namespace, ISSUER, "kubernetes.io/tls", &data).await
}

async fn create_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    type_: &str,
    data: &[(&str, &str)],
) -> anyhow::Result<()> {
    let mut secret = Secret { type_: Some(type_.into()), ..Default::default() };
    secret.metadata.name = Some(name.into());
    secret.data = Some(data.iter().map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec()))).collect());
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await
        .with_context(|| format!("creating Secret {name}"))?;
    Ok(())
}

fn issuer_api(
    client: &kube::Client,
    namespace: &str,
    (group, version, kind): (&str, &str, &str),
) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    Api::namespaced_with(client.clone(), namespace, &ar)
}

/// Creates an issuer of the given kind whose `spec.ca.secretName` is the CA Secret (Ferrum's
/// and cert-manager's CA issuers share that shape).
async fn create_issuer(client: &kube::Client, namespace: &str, gvk: (&str, &str, &str)) -> anyhow::Result<()> {
    create_issuer_spec(client, namespace, gvk, json!({ "ca": { "secretName": ISSUER } })).await
}

/// Creates the issuer `gvk` with `spec`.
async fn create_issuer_spec(
    client: &kube::Client,
    namespace: &str,
    gvk: (&str, &str, &str),
    spec: serde_json::Value,
) -> anyhow::Result<()> {
    let (group, version, kind) = gvk;
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{group}/{version}"), "kind": kind,
        "metadata": { "name": ISSUER, "namespace": namespace },
        "spec": spec,
    }))?;
    issuer_api(client, namespace, gvk).create(&PostParams::default(), &object).await.context("creating the issuer")?;
    Ok(())
}

/// Polls the issuer every 100 ms until `Ready=True`, for at most `timeout`.
async fn wait_issuer_ready(
    client: &kube::Client,
    namespace: &str,
    gvk: (&str, &str, &str),
    process: &ProcessHandle,
    timeout: Duration,
) -> anyhow::Result<()> {
    let api = issuer_api(client, namespace, gvk);
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(issuer) = api.get(ISSUER).await
            && issuer.data["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        {
            return Ok(());
        }
        check_alive(process)?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("issuer {} not Ready after {:.0} s:\n{}", gvk.2, timeout.as_secs_f64(), process.log_tail(30))
}
