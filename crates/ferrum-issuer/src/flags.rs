//! Command-line flags; each also reads an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Ferrum: a cert-manager external issuer signing with a CA kept in a Secret or on a PKCS#11 token.
#[derive(Debug, Parser)]
#[command(name = "ferrum-issuer", version)]
pub struct Flags {
    /// Path to a kubeconfig; in-cluster configuration when unset.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace FerrumClusterIssuers read Secrets from [default: the namespace Ferrum runs in].
    #[arg(long, env = "FERRUM_CLUSTER_RESOURCE_NAMESPACE")]
    pub cluster_resource_namespace: Option<String>,
    /// Serve CertificateRequests and FerrumIssuers of this namespace only [default: all].
    #[arg(long, env = "FERRUM_NAMESPACE")]
    pub namespace: Option<String>,
    /// Sign requests without waiting for Approved=True (cert-manager older than 1.3 only).
    #[arg(long, env = "FERRUM_DISABLE_APPROVAL_CHECK")]
    pub disable_approval_check: bool,
    /// Give up on retryable signing failures this long after the first one (e.g. 10m, 90s).
    #[arg(long, env = "FERRUM_MAX_RETRY_DURATION", default_value = "10m", value_parser = duration)]
    pub max_retry_duration: Duration,
    /// Re-check every issuer this often.
    #[arg(long, env = "FERRUM_ISSUER_RECHECK_INTERVAL", default_value = "5m", value_parser = duration)]
    pub issuer_recheck_interval: Duration,
    /// Requests reconciled concurrently.
    #[arg(long, env = "FERRUM_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// Run for leadership on a Lease; only the leader reconciles.
    #[arg(long, env = "FERRUM_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease [default: the namespace Ferrum runs in].
    #[arg(long, env = "FERRUM_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, env = "FERRUM_LEADER_ELECTION_LEASE_NAME", default_value = "ferrum-issuer")]
    pub leader_election_lease_name: String,
    /// How long a Lease lives without renewal.
    #[arg(long, env = "FERRUM_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = duration)]
    pub leader_election_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up (and exits).
    #[arg(long, env = "FERRUM_LEADER_ELECTION_RENEW_DEADLINE", default_value = "10s", value_parser = duration)]
    pub leader_election_renew_deadline: Duration,
    /// Time between leader-election attempts.
    #[arg(long, env = "FERRUM_LEADER_ELECTION_RETRY_PERIOD", default_value = "2s", value_parser = duration)]
    pub leader_election_retry_period: Duration,
    /// Address of the Prometheus `/metrics` endpoint.
    #[arg(long, env = "FERRUM_METRICS_BIND_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_bind_address: SocketAddr,
    /// Address of the `/healthz` and `/readyz` probes.
    #[arg(long, env = "FERRUM_HEALTH_PROBE_BIND_ADDRESS", default_value = "0.0.0.0:8081")]
    pub health_probe_bind_address: SocketAddr,
    /// Address where every replica serves the issuers' CRLs (DER, `application/pkix-crl`).
    #[arg(long, env = "FERRUM_CRL_BIND_ADDRESS", default_value = "0.0.0.0:8082")]
    pub crl_bind_address: SocketAddr,
    /// PKCS#11 module (shared library path) for issuers with a `pkcs11` block that name none.
    #[arg(long, env = "FERRUM_PKCS11_MODULE")]
    pub pkcs11_module: Option<PathBuf>,
    /// Other PKCS#11 modules issuers may name (comma-separated paths). No other path is loaded:
    /// loading a library runs its code.
    #[arg(long, env = "FERRUM_PKCS11_ALLOWED_MODULES", value_delimiter = ',')]
    pub pkcs11_allowed_modules: Vec<PathBuf>,
    /// PKCS#11 sessions per token, at most: how many signatures a token makes at once.
    #[arg(long, env = "FERRUM_PKCS11_MAX_SESSIONS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub pkcs11_max_sessions: u16,
    /// Log format.
    #[arg(long, env = "FERRUM_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Log filter, e.g. `info` or `info,ferrum=debug`.
    #[arg(long, env = "FERRUM_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

fn duration(text: &str) -> Result<Duration, String> {
    ferrum::x509::parse_go_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let f = Flags::try_parse_from(["ferrum-issuer"]).unwrap();
        assert!(f.leader_elect);
        assert_eq!(f.max_retry_duration, Duration::from_secs(600));
        assert_eq!(f.leader_election_lease_duration, Duration::from_secs(15));
        assert_eq!(f.metrics_bind_address.port(), 8080);
        let f =
            Flags::try_parse_from(["ferrum-issuer", "--leader-elect=false", "--max-retry-duration", "90s"]).unwrap();
        assert!(!f.leader_elect);
        assert_eq!(f.max_retry_duration, Duration::from_secs(90));
        assert!(Flags::try_parse_from(["ferrum-issuer", "--max-retry-duration", "soon"]).is_err());
        assert!(Flags::try_parse_from(["ferrum-issuer", "--log-format", "xml"]).is_err());
    }
}
