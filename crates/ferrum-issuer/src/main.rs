//! `ferrum-issuer`: the Ferrum cert-manager external issuer. Flags in, the library's runtime
//! runs the rest.

mod flags;

use clap::Parser;
use ferrum::Config;
use ferrum::issuer::{FerrumSigner, kinds};
use ferrum::pkcs11::Pkcs11Settings;
use ferrum::runtime::{LeaderElection, LogFormat, RuntimeConfig, identity, own_namespace, run};
use tracing::{error, info};

use crate::flags::Flags;

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    let namespace = own_namespace();
    let mut config = Config::new(kinds(), flags.cluster_resource_namespace.clone().unwrap_or(namespace.clone()));
    config.field_manager = "ferrum".into();
    config.approval_check = !flags.disable_approval_check;
    config.max_retry_duration = flags.max_retry_duration;
    config.issuer_recheck_interval = flags.issuer_recheck_interval;
    config.concurrency = flags.concurrency;
    config.namespace = flags.namespace.clone();

    let mut runtime = RuntimeConfig::from_env(&flags.leader_election_lease_name);
    runtime.kubeconfig = flags.kubeconfig.clone();
    runtime.log_format = if flags.log_format == "json" { LogFormat::Json } else { LogFormat::Text };
    runtime.log_level = flags.log_level.clone();
    runtime.health_address = flags.health_probe_bind_address;
    runtime.metrics_address = flags.metrics_bind_address;
    runtime.crl_address = Some(flags.crl_bind_address);
    runtime.leader_election = flags.leader_elect.then(|| {
        let lease = &flags.leader_election_lease_name;
        let lease_namespace = flags.leader_election_namespace.clone().unwrap_or(namespace);
        let mut election = LeaderElection::new(lease_namespace, lease, identity(lease));
        election.lease_duration = flags.leader_election_lease_duration;
        election.renew_deadline = flags.leader_election_renew_deadline;
        election.retry_period = flags.leader_election_retry_period;
        election
    });
    // Contradicting flags end the process before it does anything (exit code 2, like a bad flag).
    let checked = config.validate().map_err(|e| e.to_string()).and_then(|()| match &runtime.leader_election {
        Some(election) => election.validate().map_err(|e| e.to_string()),
        None => Ok(()),
    });
    if let Err(why) = checked {
        eprintln!("ferrum-issuer: {why}");
        std::process::exit(2);
    }
    let cluster_resource_namespace = config.cluster_resource_namespace.clone();
    let mut pkcs11 = Pkcs11Settings::default();
    pkcs11.default_module = flags.pkcs11_module.clone();
    pkcs11.allowed_modules = flags.pkcs11_allowed_modules.clone();
    pkcs11.max_sessions = usize::from(flags.pkcs11_max_sessions);
    let started = async {
        ferrum::runtime::init_logging(runtime.log_format, &runtime.log_level)?;
        info!(version = env!("CARGO_PKG_VERSION"), %cluster_resource_namespace, "starting");
        run(runtime, config, |client| FerrumSigner::new(client, pkcs11)).await
    };
    // Exit rather than return: dropping the runtime would wait for any blocking task still
    // running, and shutdown must not hang.
    match started.await {
        Ok(()) => {
            info!("stopped");
            std::process::exit(0)
        }
        Err(e) => {
            error!(error = %e, "stopped");
            eprintln!("ferrum-issuer: {e}");
            std::process::exit(1)
        }
    }
}
