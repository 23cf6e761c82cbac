//! The process around the controllers: client, logs, signals, leader election, probes and
//! metrics. An issuer binary is flags → [`RuntimeConfig`] and [`Config`] → [`run`].
//!
//! ```no_run
//! # use ferrum::{Config, IssuerKinds, Signer};
//! # async fn example<S: Signer>(signer: S) -> Result<(), ferrum::runtime::RuntimeError> {
//! let kinds = IssuerKinds::new("example.com", "v1", "Example");
//! let runtime = ferrum::runtime::RuntimeConfig::from_env("example-issuer");
//! let config = Config::new(kinds, runtime.namespace.clone());
//! ferrum::runtime::run(runtime, config, |_client| signer).await
//! # }
//! ```

mod process_metrics;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use kube::Client;
use prometheus_client::registry::Registry;
use tracing::{error, info, warn};

use crate::controller::{Config, Observability, run_with};
use crate::leader::{LeaderElector, LeaseSettings, lease_client};
use crate::metrics::Metrics;
use crate::signer::Signer;

/// How long releasing the lease may take at shutdown.
const LEASE_RELEASE_TIMEOUT: Duration = Duration::from_secs(1);

/// How logs are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Leader election on a Lease: only the holder reconciles.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LeaderElection {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a Lease lives without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up (and the process ends).
    pub renew_deadline: Duration,
    /// Time between attempts.
    pub retry_period: Duration,
}

impl LeaderElection {
    /// A Lease `lease_name` in `namespace`, held as `identity`: 15 s lease, 10 s renew
    /// deadline, 2 s between attempts.
    pub fn new(namespace: impl Into<String>, lease_name: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            lease_name: lease_name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl LeaderElection {
    /// Checks the timings as client-go does: the lease must outlive the renew deadline, and the
    /// renew deadline must exceed the retry period with its jitter (×1.2); none may be zero.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let invalid = |why: String| Err(RuntimeError::InvalidConfig(why));
        let (lease, renew, retry) = (self.lease_duration, self.renew_deadline, self.retry_period);
        if retry.is_zero() {
            return invalid("the leader-election retry period must be positive".into());
        }
        if lease <= renew {
            return invalid(format!(
                "the lease duration ({lease:?}) must be longer than the renew deadline ({renew:?})"
            ));
        }
        if renew <= retry.mul_f64(1.2) {
            return invalid(format!(
                "the renew deadline ({renew:?}) must be longer than 1.2 × the retry period ({retry:?})"
            ));
        }
        Ok(())
    }
}

/// This replica's identity: `POD_NAME`, else `<name>-<random>`.
pub fn identity(name: &str) -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| format!("{name}-{:08x}", rand::random::<u32>()))
}

/// How the process runs, apart from what the controllers do ([`Config`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// A kubeconfig file; in-cluster configuration when `None`.
    pub kubeconfig: Option<PathBuf>,
    /// The namespace this process runs in (the pod's).
    pub namespace: String,
    /// Log format.
    pub log_format: LogFormat,
    /// A `tracing` filter, e.g. `info,ferrum=debug`.
    pub log_level: String,
    /// Leader election; `None` runs the controllers at once (one replica only).
    pub leader_election: Option<LeaderElection>,
    /// Where `/healthz` and `/readyz` are served.
    pub health_address: SocketAddr,
    /// Where `/metrics` is served.
    pub metrics_address: SocketAddr,
    /// Where every replica serves the issuers' CRLs (see [`crate::revocation::serve`]);
    /// `None`: not served.
    pub crl_address: Option<SocketAddr>,
}

impl RuntimeConfig {
    /// Defaults for an issuer called `name`, read from the environment where set: `KUBECONFIG`,
    /// `POD_NAMESPACE` (else the service account's namespace, else `default`), `POD_NAME` (the
    /// leader-election identity), `LOG_LEVEL`, `LOG_FORMAT` (`text` or `json`),
    /// `LEADER_ELECT` (`false` turns it off), `HEALTH_PROBE_BIND_ADDRESS` (`0.0.0.0:8081`),
    /// `METRICS_BIND_ADDRESS` (`0.0.0.0:8080`), `CRL_BIND_ADDRESS` (`0.0.0.0:8082`; empty or `off`
    /// serves no CRLs). The Lease is `name` in the pod's namespace,
    /// 15 s / 10 s / 2 s.
    pub fn from_env(name: &str) -> Self {
        let var = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        let address = |key: &str, default: SocketAddr| var(key).and_then(|v| v.parse().ok()).unwrap_or(default);
        let namespace = own_namespace();
        let leader_election = (var("LEADER_ELECT").as_deref() != Some("false"))
            .then(|| LeaderElection::new(namespace.clone(), name, identity(name)));
        Self {
            kubeconfig: var("KUBECONFIG").map(PathBuf::from),
            namespace,
            log_format: if var("LOG_FORMAT").as_deref() == Some("json") { LogFormat::Json } else { LogFormat::Text },
            log_level: var("LOG_LEVEL").unwrap_or_else(|| "info".into()),
            leader_election,
            health_address: address("HEALTH_PROBE_BIND_ADDRESS", SocketAddr::from(([0, 0, 0, 0], 8081))),
            metrics_address: address("METRICS_BIND_ADDRESS", SocketAddr::from(([0, 0, 0, 0], 8080))),
            crl_address: match std::env::var("CRL_BIND_ADDRESS").ok().as_deref() {
                Some("" | "off") => None,
                _ => Some(address("CRL_BIND_ADDRESS", SocketAddr::from(([0, 0, 0, 0], 8082)))),
            },
        }
    }
}

/// Why the process stopped other than by a shutdown signal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The log filter does not parse.
    #[error("log level {0:?} is not a valid filter: {1}")]
    LogFilter(String, String),
    /// No client could be built.
    #[error("Kubernetes client: {0}")]
    Client(String),
    /// The probe, metrics or CRL address could not be bound.
    #[error("serving probes, metrics or CRLs: {0}")]
    Serve(#[from] std::io::Error),
    /// A setting is out of range (e.g. leader-election timings that contradict each other).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The controllers could not start (e.g. a CRD is not installed).
    #[error(transparent)]
    Controllers(#[from] crate::Error),
    /// Leadership was lost; another replica takes over. Exit the process.
    #[error("leadership lost: {0}")]
    LeadershipLost(String),
}

/// Runs an issuer until SIGTERM or Ctrl-C: sets up logging, builds the client, serves probes
/// and metrics, waits for leadership if configured, runs the controllers with the signer
/// `signer(client)` returns, and releases the Lease on the way out. Every phase ends within
/// 5 s of the signal. Exit the process when it returns.
pub async fn run<S: Signer>(
    runtime: RuntimeConfig,
    config: Config,
    signer: impl FnOnce(Client) -> S,
) -> Result<(), RuntimeError> {
    if let Some(election) = &runtime.leader_election {
        election.validate()?;
    }
    config.validate()?;
    init_logging(runtime.log_format, &runtime.log_level)?;
    let mut client_config = client_config(runtime.kubeconfig.as_deref()).await?;
    // Which replica made a call, in the apiserver's audit log and its request logs.
    let instance =
        runtime.leader_election.as_ref().map(|e| e.identity.clone()).or_else(|| std::env::var("POD_NAME").ok());
    client_config.headers.push((http::header::USER_AGENT, user_agent(&config.field_manager, instance.as_deref())));
    let client = Client::try_from(client_config.clone()).map_err(|e| RuntimeError::Client(e.to_string()))?;
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    registry.register_collector(Box::new(process_metrics::ProcessCollector::new()));
    let signer = signer(client.clone());
    signer.register_metrics(&mut registry);
    // Every replica serves CRLs, the leader and its followers alike.
    if let Some(address) = runtime.crl_address {
        let crl_config = crate::revocation::serve::CrlServerConfig {
            kinds: config.kinds.clone(),
            cluster_resource_namespace: config.cluster_resource_namespace.clone(),
            address,
        };
        crate::revocation::serve::serve(client.clone(), crl_config, &mut registry).await?;
    }
    let readiness = serve::Readiness::default();
    serve::serve(runtime.health_address, runtime.metrics_address, readiness.clone(), registry).await?;
    let mut observability = Observability {
        metrics,
        ready: readiness.synced.clone(),
        watches: readiness.watches.clone(),
        leadership: None,
    };
    let shutdown = shutdown_signal().shared();

    let Some(election) = runtime.leader_election else {
        return Ok(run_with(client, config, signer, shutdown, observability).await?);
    };
    let lease_client =
        lease_client(client_config, election.renew_deadline).map_err(|e| RuntimeError::Client(e.to_string()))?;
    let elector = LeaderElector::new(
        lease_client,
        LeaseSettings {
            namespace: election.namespace,
            name: election.lease_name,
            identity: election.identity,
            lease_duration: election.lease_duration,
            renew_deadline: election.renew_deadline,
            retry_period: election.retry_period,
        },
    );
    readiness.following.store(true, Ordering::SeqCst);
    tokio::select! {
        _ = elector.acquire() => {}
        _ = shutdown.clone() => {
            info!("shutdown before acquiring leadership");
            return Ok(());
        }
    }
    readiness.following.store(false, Ordering::SeqCst);
    observability.leadership = Some(elector.fence());
    tokio::select! {
        result = run_with(client, config, signer, shutdown, observability) => {
            // Bounded: an apiserver that does not answer must not hold the process.
            if tokio::time::timeout(LEASE_RELEASE_TIMEOUT, elector.release()).await.is_err() {
                warn!("could not release the lease in time; it expires on its own");
            }
            Ok(result?)
        }
        lost = elector.hold() => {
            error!(?lost, "leadership lost; stopping so that another replica takes over cleanly");
            Err(RuntimeError::LeadershipLost(format!("{lost:?}")))
        }
    }
}

/// Installs a `tracing` subscriber writing to stderr, unless one is installed already.
pub fn init_logging(format: LogFormat, level: &str) -> Result<(), RuntimeError> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| RuntimeError::LogFilter(level.to_owned(), e.to_string()))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    // An error here means a subscriber is already installed, which is the caller's choice.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    Ok(())
}

/// A client from `kubeconfig`, or in-cluster (or `KUBECONFIG`) configuration when `None`.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<Client, RuntimeError> {
    let config = client_config(kubeconfig).await?;
    Client::try_from(config).map_err(|e| RuntimeError::Client(e.to_string()))
}

/// The client configuration from `kubeconfig`, or in-cluster (or `KUBECONFIG`) when `None`.
async fn client_config(kubeconfig: Option<&std::path::Path>) -> Result<kube::Config, RuntimeError> {
    let failed = |e: &dyn std::fmt::Display| RuntimeError::Client(e.to_string());
    match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| RuntimeError::Client(format!("reading {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.map_err(|e| failed(&e))
        }
        None => kube::Config::infer().await.map_err(|e| failed(&e)),
    }
}

/// `<component>/<version of this library> (<instance>)`, as a header value (characters a header
/// cannot hold are dropped).
fn user_agent(component: &str, instance: Option<&str>) -> http::HeaderValue {
    let mut text = format!("{component}/{}", env!("CARGO_PKG_VERSION"));
    if let Some(instance) = instance {
        text.push_str(&format!(" ({instance})"));
    }
    text.retain(|c| c.is_ascii_graphic() || c == ' ');
    http::HeaderValue::from_str(&text).unwrap_or_else(|_| http::HeaderValue::from_static("ferrum"))
}

/// The pod's namespace: `POD_NAMESPACE`, else the service account mount, else `default`.
pub fn own_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .or_else(|| std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// Resolves on SIGTERM or Ctrl-C.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_agent_names_the_replica() {
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(user_agent("ferrum.dev", Some("ferrum-0")), format!("ferrum.dev/{version} (ferrum-0)").as_str());
        assert_eq!(user_agent("ferrum.dev", None), format!("ferrum.dev/{version}").as_str());
        assert_eq!(user_agent("x", Some("a\nb")), format!("x/{version} (ab)").as_str(), "no control characters");
    }

    #[test]
    fn leader_election_timings_are_checked_as_client_go_does() {
        let with = |lease: u64, renew: u64, retry: u64| {
            let mut e = LeaderElection::new("ns", "lease", "me");
            (e.lease_duration, e.renew_deadline, e.retry_period) =
                (Duration::from_secs(lease), Duration::from_secs(renew), Duration::from_secs(retry));
            e.validate().map_err(|e| e.to_string())
        };
        assert_eq!(with(15, 10, 2), Ok(()));
        assert!(
            with(10, 10, 2).unwrap_err().contains("lease duration (10s) must be longer than the renew deadline (10s)")
        );
        assert!(
            with(15, 2, 2).unwrap_err().contains("renew deadline (2s) must be longer than 1.2 × the retry period (2s)")
        );
        assert!(with(15, 10, 0).unwrap_err().contains("retry period must be positive"));
    }
}
