//! The probe and metrics endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::controller::WatchHealth;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

/// Whether the process is ready: a follower waiting for the lease is; a leader is once its
/// caches have synced and while its watches answer.
#[derive(Clone, Debug, Default)]
pub(crate) struct Readiness {
    /// Set while this replica waits for leadership.
    pub(crate) following: Arc<AtomicBool>,
    /// Set by the controllers once their caches are complete.
    pub(crate) synced: Arc<AtomicBool>,
    /// Whether the controllers' watches are answering.
    pub(crate) watches: Arc<WatchHealth>,
}

impl Readiness {
    /// `None` when ready, else why not.
    fn not_ready(&self) -> Option<&'static str> {
        if self.following.load(Ordering::SeqCst) {
            None
        } else if !self.synced.load(Ordering::SeqCst) {
            Some("caches not synced")
        } else if !self.watches.healthy() {
            Some("a watch is failing")
        } else {
            None
        }
    }
}

/// Serves `/healthz` and `/readyz` on `health`, `/metrics` on `metrics`.
pub(crate) async fn serve(
    health: SocketAddr,
    metrics: SocketAddr,
    readiness: Readiness,
    registry: Registry,
) -> std::io::Result<()> {
    let probes =
        Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(readyz)).with_state(readiness);
    let metrics_app = Router::new().route("/metrics", get(render)).with_state(Arc::new(registry));
    let health = tokio::net::TcpListener::bind(health).await?;
    let metrics = tokio::net::TcpListener::bind(metrics).await?;
    tracing::info!(health = %health.local_addr()?, metrics = %metrics.local_addr()?, "serving probes and metrics");
    tokio::spawn(async move { axum::serve(health, probes).await });
    tokio::spawn(async move { axum::serve(metrics, metrics_app).await });
    Ok(())
}

async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    match readiness.not_ready() {
        None => (StatusCode::OK, "ready"),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn render(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &registry) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            text,
        ),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/plain")], String::new()),
    }
}
