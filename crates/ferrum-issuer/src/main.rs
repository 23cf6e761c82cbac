//! `ferrum-issuer`: the Ferrum cert-manager external issuer.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use ferrum::ca::{CaSigner, kinds};
use ferrum::controller::{Config, run};
use tracing::info;

/// Flags; each also reads an environment variable.
#[derive(Debug, Parser)]
#[command(
    name = "ferrum-issuer",
    version,
    about = "Ferrum: a cert-manager external issuer signing with a CA kept in a Secret"
)]
struct Flags {
    /// Path to a kubeconfig; in-cluster configuration when unset.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,
    /// Namespace FerrumClusterIssuers read Secrets from (default: the namespace Ferrum runs in).
    #[arg(long, env = "FERRUM_CLUSTER_RESOURCE_NAMESPACE")]
    cluster_resource_namespace: Option<String>,
    /// Serve CertificateRequests and FerrumIssuers of this namespace only (default: all).
    #[arg(long, env = "FERRUM_NAMESPACE")]
    namespace: Option<String>,
    /// Sign requests without waiting for Approved=True (cert-manager older than 1.3 only).
    #[arg(long, env = "FERRUM_DISABLE_APPROVAL_CHECK")]
    disable_approval_check: bool,
    /// Give up on retryable signing failures this long after the first one (e.g. 10m, 90s).
    #[arg(long, env = "FERRUM_MAX_RETRY_DURATION", default_value = "10m", value_parser = parse_duration)]
    max_retry_duration: Duration,
    /// Re-check every issuer this often.
    #[arg(long, env = "FERRUM_ISSUER_RECHECK_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    issuer_recheck_interval: Duration,
    /// Requests reconciled concurrently.
    #[arg(long, env = "FERRUM_CONCURRENCY", default_value_t = 8)]
    concurrency: u16,
    /// Log format.
    #[arg(long, env = "FERRUM_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Log filter, e.g. `info` or `ferrum=debug,kube=info`.
    #[arg(long, env = "FERRUM_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    ferrum::x509::duration::parse_go_duration(text)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    init_logging(&flags)?;
    let client = client(flags.kubeconfig.as_deref()).await?;
    let namespace = match flags.cluster_resource_namespace.clone() {
        Some(ns) => ns,
        None => own_namespace(),
    };
    let mut config = Config::new(kinds(), namespace);
    config.field_manager = "ferrum".into();
    config.approval_check = !flags.disable_approval_check;
    config.max_retry_duration = flags.max_retry_duration;
    config.issuer_recheck_interval = flags.issuer_recheck_interval;
    config.concurrency = flags.concurrency;
    config.namespace = flags.namespace.clone();
    info!(version = env!("CARGO_PKG_VERSION"), cluster_resource_namespace = %config.cluster_resource_namespace, "starting");
    let signer = CaSigner::new(client.clone());
    run(client, config, signer, shutdown_signal()).await;
    info!("stopped");
    Ok(())
}

fn init_logging(flags: &Flags) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&flags.log_level).context("--log-level")?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if flags.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}

async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc =
                kube::config::Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// The namespace of the pod (from the service account mount), else `default`.
fn own_namespace() -> String {
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "default".into())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            return;
        }
    }
    let _ = ctrl_c.await;
}
