//! The load driver: creates and approves the requests, and watches when each becomes Ready.
//!
//! One watch on the namespace's CertificateRequests, started before the first create, sees
//! every change. For each of the benchmark's requests it records the create time (when the
//! create call returned), the first time it is seen with `Ready=True`, and how many `MODIFIED`
//! events changed its `.status` (the driver's approval is one of them) or only its
//! metadata/spec. Requests of other names (the foreign load) are ignored.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
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

/// What the driver saw of one request. Times are offsets from the driver's start.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// When the create call returned.
    pub created: Option<Duration>,
    /// When an event first showed `Ready=True`.
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

    /// `since` → Ready (for a backlog: from the contender's start), if Ready.
    pub fn ready_after(&self, since: Duration) -> Option<Duration> {
        Some(self.ready?.saturating_sub(since))
    }
}

#[derive(Default)]
struct State {
    records: HashMap<String, Record>,
    /// A hash of each request's last `.status`, to tell status changes from others.
    last_status: HashMap<String, u64>,
    ready: usize,
    expected: usize,
}

/// A watch on one namespace's requests plus the means to create and approve them.
///
/// Only the benchmark's own requests (named [`crate::pki::REQUEST_PREFIX`]...) are recorded.
pub struct Driver {
    api: Api<CertificateRequest>,
    epoch: Instant,
    state: Arc<Mutex<State>>,
    all_ready: Arc<Notify>,
    watch: tokio::task::JoinHandle<()>,
}

impl Driver {
    /// Starts the watch on `namespace` and returns once it is established. Its start is the
    /// epoch of every time it records.
    pub async fn start(client: kube::Client, namespace: &str) -> anyhow::Result<Self> {
        let api: Api<CertificateRequest> = Api::namespaced(client.clone(), namespace);
        let ar = ApiResource::erase::<CertificateRequest>(&());
        let raw: Api<DynamicObject> = Api::namespaced_with(client, namespace, &ar);
        let epoch = Instant::now();
        let state = Arc::new(Mutex::new(State::default()));
        let all_ready = Arc::new(Notify::new());
        let (watching, established) = oneshot::channel();
        let watch = tokio::spawn(watch(raw, epoch, state.clone(), all_ready.clone(), watching));
        established.await.context("the driver's watch ended before it started")??;
        Ok(Driver { api, epoch, state, all_ready, watch })
    }

    /// Now, as an offset from the driver's start.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Creates one request per CSR naming `issuer_ref` and approves each right after its
    /// create, at most `concurrency` requests in flight, until done or `deadline`. Returns how
    /// many creates or approvals failed (those requests are not waited for); all of them if the
    /// deadline passed first.
    pub async fn create_and_approve(
        &self,
        csrs: &[Vec<u8>],
        issuer_ref: &IssuerReference,
        concurrency: usize,
        deadline: Instant,
    ) -> usize {
        lock(&self.state).expected = csrs.len();
        let creates = futures::stream::iter(csrs.iter().enumerate())
            .map(|(i, csr)| self.create_one(i, csr, issuer_ref))
            .buffer_unordered(concurrency.max(1))
            .filter(|result| futures::future::ready(result.is_err()))
            .inspect(|result| {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "create/approve failed");
                }
            })
            .count();
        match tokio::time::timeout_at(deadline.into(), creates).await {
            Ok(failed) => {
                lock(&self.state).expected = csrs.len() - failed;
                failed
            }
            Err(_) => {
                // Still expecting all of them: the wait that follows finds the deadline passed.
                tracing::warn!("the creates did not finish by the deadline");
                csrs.len()
            }
        }
    }

    /// Waits until every request created is Ready (`true`) or `deadline` passed (`false`).
    /// Checks `alive` every second and returns its error (a contender that exited).
    pub async fn wait_all_ready(
        &self,
        deadline: Instant,
        alive: impl Fn() -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        loop {
            let notified = self.all_ready.notified();
            {
                let state = lock(&self.state);
                if state.ready >= state.expected {
                    return Ok(true);
                }
            }
            alive()?;
            if Instant::now() >= deadline {
                return Ok(false);
            }
            let tick = deadline.min(Instant::now() + Duration::from_secs(1));
            let _ = tokio::time::timeout_at(tick.into(), notified).await;
        }
    }

    async fn create_one(&self, i: usize, csr: &[u8], issuer_ref: &IssuerReference) -> anyhow::Result<()> {
        let name = crate::pki::request_name(i);
        let spec =
            CertificateRequestSpec { request: csr.to_vec(), issuer_ref: issuer_ref.clone(), ..Default::default() };
        self.api.create(&PostParams::default(), &CertificateRequest::new(&name, spec)).await.context("create")?;
        lock(&self.state).records.entry(name.clone()).or_default().created = Some(self.epoch.elapsed());
        approve(&self.api, &name).await
    }

    /// Stops the watch and returns what it saw, by request name.
    pub fn finish(self) -> HashMap<String, Record> {
        self.watch.abort();
        std::mem::take(&mut lock(&self.state).records)
    }
}

/// Approves one request: a status apply of `Approved=True` (manager [`APPROVER`]).
pub async fn approve(api: &Api<CertificateRequest>, name: &str) -> anyhow::Result<()> {
    let body = json!({
        "apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
        "status": { "conditions": [{
            "type": "Approved", "status": "True", "reason": "BenchApproved",
            "message": "approved by the benchmark driver",
            "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
        }]}
    });
    api.patch_status(name, &PatchParams::apply(APPROVER).force(), &Patch::Apply(body)).await.context("approve")?;
    Ok(())
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
    epoch: Instant,
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
                    if observe(&state, &obj, epoch.elapsed()) {
                        all_ready.notify_waiters();
                    }
                }
                Ok(Some(WatchEvent::Bookmark(b))) => version = b.metadata.resource_version,
                Ok(Some(WatchEvent::Deleted(_))) => {}
                Ok(Some(WatchEvent::Error(e))) if e.code == 410 => {
                    // Our resourceVersion was compacted away: catch up from a list. Requests
                    // that became Ready meanwhile are recorded late, changes in between merge.
                    tracing::warn!(error = %e, "watch expired; re-listing (some times may be late)");
                    match relist(&api, epoch, &state, &all_ready).await {
                        Ok(v) => version = v,
                        Err(e) => {
                            tracing::warn!(error = %e, "re-list failed; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                    break;
                }
                Ok(Some(WatchEvent::Error(e))) => {
                    tracing::error!(error = %e, "watch error: events may be missing from the figures");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "watch stream error; re-watching");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
    }
}

/// Lists the namespace's requests page by page, observing each, and returns the list's
/// resourceVersion.
async fn relist(
    api: &Api<DynamicObject>,
    epoch: Instant,
    state: &Mutex<State>,
    all_ready: &Notify,
) -> anyhow::Result<String> {
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        for obj in &page.items {
            if observe(state, obj, epoch.elapsed()) {
                all_ready.notify_waiters();
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(page.metadata.resource_version.unwrap_or_default()),
        }
    }
}

/// Records one ADDED/MODIFIED event seen at `now`. Returns whether every expected request is
/// now Ready.
fn observe(state: &Mutex<State>, obj: &DynamicObject, now: Duration) -> bool {
    let Some(name) = obj.metadata.name.clone().filter(|n| n.starts_with(crate::pki::REQUEST_PREFIX)) else {
        return false;
    };
    let status = obj.data.get("status").unwrap_or(&Value::Null);
    let ready = status["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
    let digest = {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        status.to_string().hash(&mut hasher);
        hasher.finish()
    };
    let mut state = lock(state);
    // `None` on the first sight of a request (ADDED), else whether `.status` changed.
    let changed = state.last_status.insert(name.clone(), digest).map(|previous| previous != digest);
    let newly_ready = {
        let record = state.records.entry(name).or_default();
        match changed {
            Some(true) => record.status_changes += 1,
            Some(false) => record.other_changes += 1,
            None => {}
        }
        if ready && record.ready.is_none() {
            record.ready = Some(now);
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
