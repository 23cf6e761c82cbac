//! The load driver: creates and approves the requests, and watches when each becomes Ready.
//!
//! One watch on the namespace's CertificateRequests, started before the first create, sees
//! every change. For each request it records the create time (when the create call returned),
//! the first time it is seen with `Ready=True`, and how many `MODIFIED` events changed its
//! `.status` (the driver's approval is one of them) or only its metadata/spec.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use ferrum::{CertificateRequest, CertificateRequestSpec, IssuerReference};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::ApiResource;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

/// The field manager of the driver's approval writes.
pub const APPROVER: &str = "bench-approver";

/// What the driver saw of one request.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// Offset of the create call's return from the first create.
    pub created: Option<Duration>,
    /// Offset of the first event showing `Ready=True` from the first create.
    pub ready: Option<Duration>,
    /// `MODIFIED` events that changed `.status` (including the driver's approval).
    pub status_changes: u32,
    /// `MODIFIED` events that left `.status` as it was.
    pub other_changes: u32,
}

impl Record {
    /// Create → Ready latency, if both happened.
    pub fn latency(&self) -> Option<Duration> {
        Some(self.ready?.saturating_sub(self.created?))
    }
}

/// How a batch of requests went.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// First create to the last request Ready; `None` if not all were Ready in time.
    pub all_ready: Option<Duration>,
    /// Creates or approvals that failed.
    pub failed_writes: usize,
}

#[derive(Default)]
struct State {
    started: Option<Instant>,
    records: HashMap<String, Record>,
    last_status: HashMap<String, Value>,
    ready: usize,
    expected: usize,
}

/// A watch on one namespace's requests plus the means to create and approve them.
pub struct Driver {
    api: Api<CertificateRequest>,
    state: Arc<Mutex<State>>,
    all_ready: Arc<Notify>,
    watch: tokio::task::JoinHandle<()>,
}

impl Driver {
    /// Starts the watch on `namespace` and returns once it is established.
    pub async fn start(client: kube::Client, namespace: &str) -> anyhow::Result<Self> {
        let api: Api<CertificateRequest> = Api::namespaced(client.clone(), namespace);
        let ar = ApiResource::erase::<CertificateRequest>(&());
        let raw: Api<DynamicObject> = Api::namespaced_with(client, namespace, &ar);
        let state = Arc::new(Mutex::new(State::default()));
        let all_ready = Arc::new(Notify::new());
        let (watching, established) = oneshot::channel();
        let watch = tokio::spawn(watch(raw, state.clone(), all_ready.clone(), watching));
        established.await.context("the driver's watch ended before it started")??;
        Ok(Driver { api, state, all_ready, watch })
    }

    /// Creates one request per CSR naming `issuer_ref`, approves each right after its create
    /// (at most `concurrency` requests in flight), and waits until all are Ready or `timeout`
    /// has passed since the first create.
    pub async fn issue(
        &self,
        csrs: &[Vec<u8>],
        issuer_ref: &IssuerReference,
        concurrency: usize,
        timeout: Duration,
    ) -> anyhow::Result<Timing> {
        let started = Instant::now();
        {
            let mut state = lock(&self.state);
            state.started = Some(started);
            state.expected = csrs.len();
        }
        let deadline = started + timeout;
        let creates = futures::stream::iter(csrs.iter().enumerate())
            .map(|(i, csr)| self.create_and_approve(i, csr, issuer_ref, started))
            .buffer_unordered(concurrency.max(1))
            .filter(|result| futures::future::ready(result.is_err()))
            .inspect(|result| {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "create/approve failed");
                }
            })
            .count();
        let failed_writes = tokio::time::timeout_at(deadline.into(), creates).await.unwrap_or(csrs.len());
        let all_ready = loop {
            let notified = self.all_ready.notified();
            {
                let state = lock(&self.state);
                if state.ready >= state.expected {
                    break Some(started.elapsed());
                }
            }
            if tokio::time::timeout_at(deadline.into(), notified).await.is_err() {
                break None;
            }
        };
        Ok(Timing { all_ready, failed_writes })
    }

    async fn create_and_approve(
        &self,
        i: usize,
        csr: &[u8],
        issuer_ref: &IssuerReference,
        started: Instant,
    ) -> anyhow::Result<()> {
        let name = crate::pki::request_name(i);
        let spec =
            CertificateRequestSpec { request: csr.to_vec(), issuer_ref: issuer_ref.clone(), ..Default::default() };
        self.api.create(&PostParams::default(), &CertificateRequest::new(&name, spec)).await.context("create")?;
        lock(&self.state).records.entry(name.clone()).or_default().created = Some(started.elapsed());
        let body = json!({
            "apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
            "status": { "conditions": [{
                "type": "Approved", "status": "True", "reason": "BenchApproved",
                "message": "approved by the benchmark driver",
                "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
            }]}
        });
        self.api
            .patch_status(&name, &PatchParams::apply(APPROVER).force(), &Patch::Apply(body))
            .await
            .context("approve")?;
        Ok(())
    }

    /// Stops the watch and returns what it saw, by request name.
    pub fn finish(self) -> HashMap<String, Record> {
        self.watch.abort();
        std::mem::take(&mut lock(&self.state).records)
    }
}

/// Locks the state. A poisoned lock means a panic in another task, which already ended the
/// benchmark's usefulness; the data is plain counters, so carrying on with it is safe.
fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Lists (to get a resourceVersion), then watches from it, re-watching after the server's
/// timeout, until aborted. Signals `established` once the first watch call succeeded.
async fn watch(
    api: Api<DynamicObject>,
    state: Arc<Mutex<State>>,
    all_ready: Arc<Notify>,
    established: oneshot::Sender<anyhow::Result<()>>,
) {
    let mut established = Some(established);
    let mut version = match api.list_metadata(&ListParams::default()).await {
        Ok(list) => list.metadata.resource_version.unwrap_or_default(),
        Err(e) => {
            if let Some(tx) = established.take() {
                let _ = tx.send(Err(e.into()));
            }
            return;
        }
    };
    // Bounded: each watch lasts at most 290 s and the caller aborts this task when done.
    loop {
        let params = WatchParams::default().timeout(290);
        let stream = match api.watch(&params, &version).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "watch failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if let Some(tx) = established.take() {
            let _ = tx.send(Ok(()));
        }
        let mut stream = std::pin::pin!(stream);
        loop {
            match stream.try_next().await {
                Ok(Some(WatchEvent::Added(obj) | WatchEvent::Modified(obj))) => {
                    if let Some(v) = obj.metadata.resource_version.clone() {
                        version = v;
                    }
                    if observe(&state, &obj) {
                        all_ready.notify_waiters();
                    }
                }
                Ok(Some(WatchEvent::Bookmark(b))) => version = b.metadata.resource_version,
                Ok(Some(WatchEvent::Deleted(_))) => {}
                Ok(Some(WatchEvent::Error(e))) => {
                    tracing::error!(error = %e, "watch error: events may be missing from the figures");
                    break;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "watch stream error; re-watching");
                    break;
                }
            }
        }
    }
}

/// Records one ADDED/MODIFIED event. Returns whether every expected request is now Ready.
fn observe(state: &Mutex<State>, obj: &DynamicObject) -> bool {
    let Some(name) = obj.metadata.name.clone() else { return false };
    let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
    let ready = status["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
    let mut state = lock(state);
    let now = state.started.map(|s| s.elapsed());
    // `None` on the first sight of a request (ADDED), else whether `.status` changed.
    let changed = state.last_status.insert(name.clone(), status.clone()).map(|previous| previous != status);
    let newly_ready = {
        let record = state.records.entry(name).or_default();
        match changed {
            Some(true) => record.status_changes += 1,
            Some(false) => record.other_changes += 1,
            None => {}
        }
        if ready && record.ready.is_none() {
            record.ready = now;
            true
        } else {
            false
        }
    };
    if newly_ready {
        state.ready += 1;
    }
    state.expected > 0 && state.ready >= state.expected
}
