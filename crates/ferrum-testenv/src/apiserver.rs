//! Starting etcd and kube-apiserver on free loopback ports and waiting until they serve.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::binaries::{Binaries, Tool};
use crate::error::{Error, Result};
use crate::pki::Pki;
use crate::process::{ProcessHandle, Supervisor};
use crate::wait::{Probe, poll};

/// How often a start is retried when a port picked as free was taken in the meantime.
const PORT_RETRIES: usize = 3;

/// A running etcd.
pub(crate) struct Etcd {
    pub(crate) process: ProcessHandle,
    /// `http://127.0.0.1:<client port>`.
    pub(crate) url: String,
}

/// A running kube-apiserver.
pub(crate) struct Apiserver {
    pub(crate) process: ProcessHandle,
}

/// Starts etcd with its data in `data_dir` (and `extra_args` last) and waits for `/health`.
pub(crate) async fn start_etcd(
    supervisor: &Supervisor,
    binaries: &Binaries,
    data_dir: &Path,
    extra_args: &[String],
    timeout: Duration,
) -> Result<Etcd> {
    let program = binaries.path(Tool::Etcd)?;
    retry_on_port_clash(|| async {
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut cmd = Command::new(&program);
        cmd.arg("--name=ferrum-testenv")
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=ferrum-testenv={peer_url}"))
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn")
            .args(extra_args);
        let process = supervisor.spawn("etcd", cmd)?;
        poll("etcd /health", timeout, Duration::from_millis(50), || async {
            if let Some(status) = process.exit_status() {
                return Err(Probe::Fatal(Error::Exited { name: "etcd".into(), status, tail: process.log_tail(30) }));
            }
            match http_get(client_port, "/health").await {
                Ok(body) if body.contains(r#""health":"true""#) => Ok(Some(())),
                Ok(body) => Err(Probe::NotYet(body)),
                Err(e) => Err(Probe::NotYet(e.to_string())),
            }
        })
        .await?;
        Ok(Etcd { process, url: client_url })
    })
    .await
}

/// Starts kube-apiserver against `etcd` and waits for `/readyz` and namespace `default`.
///
/// `client_for` turns the server URL into an admin client (the caller writes the kubeconfig).
pub(crate) async fn start_apiserver(
    supervisor: &Supervisor,
    binaries: &Binaries,
    pki: &Pki,
    etcd: &Etcd,
    settings: &ApiserverSettings<'_>,
    client_for: impl AsyncFn(&str) -> Result<kube::Client>,
) -> Result<(Apiserver, kube::Client)> {
    let program = binaries.path(Tool::KubeApiserver)?;
    let client_for = &client_for;
    retry_on_port_clash(|| async {
        let port = free_port()?;
        let url = format!("https://127.0.0.1:{port}");
        let mut cmd = Command::new(&program);
        cmd.arg(format!("--etcd-servers={}", etcd.url));
        if settings.node {
            // Pods reach it through the `kubernetes` Service; its ServiceAccount admission gives
            // them tokens.
            cmd.args(crate::node::apiserver_args(pki));
        } else {
            // No pods without a node: no ServiceAccount admission (it would wait for tokens).
            cmd.args([
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--authorization-mode=RBAC",
                "--disable-admission-plugins=ServiceAccount",
            ]);
        }
        cmd.arg(format!("--secure-port={port}"))
            .arg(format!("--tls-cert-file={}", pki.serving_cert.display()))
            .arg(format!("--tls-private-key-file={}", pki.serving_key.display()))
            .arg(format!("--client-ca-file={}", pki.ca_cert.display()))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-account-key-file={}", pki.service_account_public_key.display()))
            .arg(format!("--service-account-signing-key-file={}", pki.service_account_key.display()))
            // ClusterTrustBundles (certificates.k8s.io/v1beta1) are served on 1.36 only with both.
            .arg("--runtime-config=certificates.k8s.io/v1beta1=true")
            .arg("--feature-gates=ClusterTrustBundle=true")
            .arg(format!("--service-cluster-ip-range={}", settings.service_cluster_ip_range))
            .arg(format!("--cert-dir={}", settings.cert_dir.display()))
            .args(settings.extra_args);
        let process = supervisor.spawn("kube-apiserver", cmd)?;
        let client = client_for(&url).await?;
        wait_ready(&process, &client, settings.timeout).await?;
        Ok((Apiserver { process }, client))
    })
    .await
}

/// What [`start_apiserver`] needs besides the PKI and etcd.
pub(crate) struct ApiserverSettings<'a> {
    pub(crate) service_cluster_ip_range: &'a str,
    /// Where kube-apiserver may write generated certificates (it needs none, but wants a dir).
    pub(crate) cert_dir: &'a Path,
    pub(crate) extra_args: &'a [String],
    pub(crate) timeout: Duration,
    /// Whether a node runs pods against it (see [`crate::node`]).
    pub(crate) node: bool,
}

/// Waits for `/readyz` (which includes the RBAC bootstrap) and for namespace `default`.
async fn wait_ready(process: &ProcessHandle, client: &kube::Client, timeout: Duration) -> Result<()> {
    let exited = || {
        process.exit_status().map(|status| {
            Probe::Fatal(Error::Exited { name: process.name().to_string(), status, tail: process.log_tail(30) })
        })
    };
    poll("kube-apiserver /readyz", timeout, Duration::from_millis(100), || async {
        if let Some(fatal) = exited() {
            return Err(fatal);
        }
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| Probe::Fatal(Error::Invalid(format!("building /readyz request: {e}"))))?;
        match client.request_text(request).await {
            Ok(body) if body.trim() == "ok" => Ok(Some(())),
            Ok(body) => Err(Probe::NotYet(body)),
            Err(e) => Err(Probe::NotYet(e.to_string())),
        }
    })
    .await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    poll("namespace default", timeout, Duration::from_millis(100), || async {
        if let Some(fatal) = exited() {
            return Err(fatal);
        }
        match namespaces.get_opt("default").await {
            Ok(found) => Ok(found.map(|_| ())),
            Err(e) => Err(Probe::NotYet(e.to_string())),
        }
    })
    .await
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(Error::io("binding a free loopback port"))?;
    let port = listener.local_addr().map_err(Error::io("reading a bound port"))?.port();
    Ok(port)
}

/// Runs `start` again (with new ports) when the process died because its port was taken.
async fn retry_on_port_clash<T, F, Fut>(mut start: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match start().await {
            Err(Error::Exited { tail, .. }) if attempt < PORT_RETRIES && tail.contains("address already in use") => {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A plain HTTP/1.0 GET on loopback, returning the body (etcd serves `/health` without TLS).
async fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut response))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 2 s"))??;
    Ok(response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or(response))
}
