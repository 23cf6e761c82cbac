//! The floor contender: the cost of the API writes alone.
//!
//! Watches the CertificateRequests of one namespace and, for each approved one that has no
//! certificate yet, writes one precomputed certificate and `Ready=True` with a single
//! server-side apply on `/status` (field manager `floor`). No CSR parsing, no signing, no
//! issuer lookup.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ferrum::CertificateRequest;
use futures::StreamExt;
use futures::channel::mpsc;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

/// The line printed on stderr once the initial list is done and the floor is serving.
pub const READY_LINE: &str = "floor: ready";

/// Flags of `ferrum-bench floor`.
#[derive(Args, Debug)]
pub struct FloorArgs {
    /// Kubeconfig to use.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Namespace whose requests to serve.
    #[arg(long)]
    namespace: String,
    /// Status writes in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Exit after this long whatever happens (a bound, not a goal).
    #[arg(long, default_value = "2h", value_parser = crate::parse_duration)]
    max_runtime: Duration,
}

/// Runs the floor until the watch ends, SIGTERM, or `--max-runtime`.
pub async fn run(args: FloorArgs) -> anyhow::Result<()> {
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig).context("reading the kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = kube::Client::try_from(config)?;
    let api: Api<CertificateRequest> = Api::namespaced(client, &args.namespace);
    let certificate = crate::pki::floor_certificate()?;
    let serve = serve(api, certificate, args.concurrency.max(1));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = serve => result,
        _ = term.recv() => Ok(()),
        _ = tokio::time::sleep(args.max_runtime) => anyhow::bail!("floor: --max-runtime reached"),
    }
}

/// Feeds approved, unserved requests from the watch to `concurrency` writers.
async fn serve(api: Api<CertificateRequest>, certificate: String, concurrency: usize) -> anyhow::Result<()> {
    let (queue, requests) = mpsc::unbounded::<String>();
    let writers = requests.for_each_concurrent(concurrency, |name| {
        let api = api.clone();
        let certificate = certificate.clone();
        async move {
            if let Err(e) = write(&api, &name, &certificate).await {
                tracing::warn!(%name, error = %e, "floor: status write failed");
            }
        }
    });
    let watch = async {
        let mut seen: HashSet<String> = HashSet::new();
        let mut events = std::pin::pin!(watcher::watcher(api.clone(), watcher::Config::default()));
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Apply(cr) | Event::InitApply(cr)) => {
                    if wants_certificate(&cr) {
                        let name = kube::ResourceExt::name_any(&cr);
                        if seen.insert(name.clone()) && queue.unbounded_send(name).is_err() {
                            break;
                        }
                    }
                }
                Ok(Event::InitDone) => eprintln!("{READY_LINE}"),
                Ok(Event::Init | Event::Delete(_)) => {}
                Err(e) => tracing::warn!(error = %e, "floor: watch error (retrying)"),
            }
        }
        drop(queue);
    };
    futures::join!(watch, writers);
    Ok(())
}

/// Approved, not denied, and without a certificate or a Ready condition.
fn wants_certificate(cr: &CertificateRequest) -> bool {
    cr.condition_true("Approved")
        && !cr.condition_true("Denied")
        && cr.status.as_ref().is_none_or(|s| s.certificate.is_empty())
        && cr.condition("Ready").is_none()
}

/// The one status write per request.
async fn write(api: &Api<CertificateRequest>, name: &str, certificate: &str) -> anyhow::Result<()> {
    let encoded = ferrum_testenv::fixtures::base64(certificate.as_bytes());
    let body = json!({
        "apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
        "status": {
            "certificate": encoded, "ca": encoded,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "Issued", "message": "floor",
                "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
            }],
        }
    });
    api.patch_status(name, &PatchParams::apply("floor").force(), &Patch::Apply(body)).await?;
    Ok(())
}
