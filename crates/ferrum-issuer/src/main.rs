//! `ferrum-issuer`: the Ferrum cert-manager external issuer.

mod flags;
mod process_metrics;
mod serve;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use clap::Parser;
use ferrum::ca::{CaSigner, kinds};
use ferrum::controller::{Config, Observability, run_with};
use ferrum::leader::{LeaderElector, LeaseSettings};
use ferrum::metrics::Metrics;
use futures::FutureExt;
use prometheus_client::registry::Registry;
use tracing::{error, info, warn};

use crate::flags::Flags;
use crate::serve::Readiness;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    init_logging(&flags)?;
    let client = client(flags.kubeconfig.as_deref()).await?;
    let own_namespace = own_namespace();
    let mut config = Config::new(kinds(), flags.cluster_resource_namespace.clone().unwrap_or(own_namespace.clone()));
    config.field_manager = "ferrum".into();
    config.approval_check = !flags.disable_approval_check;
    config.max_retry_duration = flags.max_retry_duration;
    config.issuer_recheck_interval = flags.issuer_recheck_interval;
    config.concurrency = flags.concurrency;
    config.namespace = flags.namespace.clone();
    info!(version = env!("CARGO_PKG_VERSION"), cluster_resource_namespace = %config.cluster_resource_namespace, "starting");

    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    registry.register_collector(Box::new(process_metrics::ProcessCollector::new()));
    let readiness = Readiness::default();
    serve::serve(flags.health_probe_bind_address, flags.metrics_bind_address, readiness.clone(), registry).await?;
    let observability = Observability { metrics, ready: readiness.synced.clone(), watches: readiness.watches.clone() };
    let shutdown = shutdown_signal().shared();

    if !flags.leader_elect {
        run_with(client.clone(), config, CaSigner::new(client), shutdown, observability).await;
        stopped();
    }

    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| format!("{}-{:08x}", hostname(), rand_id()));
    let elector = LeaderElector::new(
        client.clone(),
        LeaseSettings {
            namespace: flags.leader_election_namespace.clone().unwrap_or(own_namespace),
            name: flags.leader_election_lease_name.clone(),
            identity,
            lease_duration: flags.leader_election_lease_duration,
            renew_deadline: flags.leader_election_renew_deadline,
            retry_period: flags.leader_election_retry_period,
        },
    );
    readiness.following.store(true, Ordering::SeqCst);
    tokio::select! {
        _ = elector.acquire() => {}
        _ = shutdown.clone() => {
            info!("shutdown before acquiring leadership");
            stopped();
        }
    }
    readiness.following.store(false, Ordering::SeqCst);
    tokio::select! {
        _ = run_with(client.clone(), config, CaSigner::new(client), shutdown, observability) => {
            // Bounded: an apiserver that does not answer must not hold the process.
            if tokio::time::timeout(LEASE_RELEASE_TIMEOUT, elector.release()).await.is_err() {
                warn!("could not release the lease in time; it expires on its own");
            }
            stopped();
        }
        lost = elector.hold() => {
            error!(?lost, "leadership lost; exiting so that another replica takes over cleanly");
            std::process::exit(1);
        }
    }
}

/// How long releasing the lease may take at shutdown.
const LEASE_RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Ends the process once the controllers have stopped. Exits rather than returning: dropping
/// the runtime would wait for any blocking task still running, and shutdown must not hang.
fn stopped() -> ! {
    info!("stopped");
    std::process::exit(0)
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

/// The pod's namespace: `POD_NAMESPACE`, else the service account mount, else `default`.
fn own_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .or_else(|| std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "ferrum".into())
}

fn rand_id() -> u32 {
    std::process::id()
        ^ (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
    info!("shutdown signal received");
}
