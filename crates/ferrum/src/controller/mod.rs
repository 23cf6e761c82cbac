//! The controllers: CertificateRequests and both issuer kinds, wired to a [`Signer`].

mod context;
mod events;
mod issuer;
mod reissue;
mod request;
mod revocation;
mod settle;
mod status;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt, future};
use kube::Client;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::Store;
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, watcher};

use prometheus_client::registry::Registry;
use tracing::warn;

use crate::Error;
use crate::api::{CertificateRequest, IssuerKinds, IssuerScope, WatchedIssuer};
use crate::decision;
use crate::metrics::Metrics;
use crate::signer::Signer;
pub(crate) use context::Context;

/// How the controllers behave.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The issuer kinds served.
    pub kinds: IssuerKinds,
    /// Field manager for server-side apply, and the events' reporting controller.
    pub field_manager: String,
    /// Wait for `Approved=True` before signing (turn off only for cert-manager < 1.3).
    pub approval_check: bool,
    /// Give up on retryable failures this long after the first one.
    pub max_retry_duration: Duration,
    /// Re-check every issuer this often.
    pub issuer_recheck_interval: Duration,
    /// Where cluster issuers read Secrets.
    pub cluster_resource_namespace: String,
    /// Requests reconciled at once.
    pub concurrency: u16,
    /// Serve requests and namespaced issuers of this namespace only (`None`: all namespaces).
    /// Cluster issuers are served either way.
    pub namespace: Option<String>,
}

impl Config {
    /// Defaults for the given kinds: approval check on, 10 min retry limit, 5 min re-check.
    pub fn new(kinds: IssuerKinds, cluster_resource_namespace: impl Into<String>) -> Self {
        Self {
            field_manager: kinds.group.clone(),
            kinds,
            approval_check: true,
            max_retry_duration: Duration::from_secs(600),
            issuer_recheck_interval: Duration::from_secs(300),
            cluster_resource_namespace: cluster_resource_namespace.into(),
            concurrency: 8,
            namespace: None,
        }
    }
}

/// How long in-flight reconciles (a slow signer, say) may go on after shutdown was asked for;
/// then the controllers stop regardless. Nothing is lost: a request whose status was not
/// written is signed again by whoever runs next.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

impl Config {
    /// Checks that every setting is usable: a zero re-check interval would re-check issuers in
    /// a hot loop, a zero retry limit or concurrency would sign nothing.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |why: &str| Err(Error::InvalidConfig(why.to_owned()));
        if self.issuer_recheck_interval.is_zero() {
            return invalid("the issuer re-check interval must be positive");
        }
        if self.max_retry_duration.is_zero() {
            return invalid("the maximum retry duration must be positive");
        }
        if self.concurrency == 0 {
            return invalid("the concurrency must be at least 1");
        }
        Ok(())
    }
}

/// What the controllers report to the process around them.
#[derive(Clone, Debug)]
pub(crate) struct Observability {
    /// Metrics, registered in the caller's registry.
    pub metrics: Arc<Metrics>,
    /// Set once every cache has listed its objects (the readiness probe).
    pub ready: Arc<AtomicBool>,
    /// Whether the watches are currently healthy (the readiness probe).
    pub watches: Arc<WatchHealth>,
    /// With leader election: whether leadership is confirmed now. No write is sent without it.
    pub leadership: Option<Arc<crate::leader::LeaderFence>>,
}

impl Default for Observability {
    /// Metrics in a private registry, nobody watching readiness.
    fn default() -> Self {
        Self {
            metrics: Arc::new(Metrics::new(&mut Registry::default())),
            ready: Arc::default(),
            watches: Arc::default(),
            leadership: None,
        }
    }
}

/// The watches the controllers depend on, and whether each last answered or failed.
#[derive(Debug, Default)]
pub(crate) struct WatchHealth {
    /// One bit per [`Watch`] whose last event was an error.
    failing: AtomicU8,
}

/// A watch whose health is tracked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Watch {
    /// CertificateRequests.
    Requests = 1,
    /// Namespaced issuers.
    NamespacedIssuers = 2,
    /// Cluster issuers.
    ClusterIssuers = 4,
}

impl WatchHealth {
    /// Whether no watch is failing now.
    pub(crate) fn healthy(&self) -> bool {
        self.failing.load(Ordering::SeqCst) == 0
    }

    fn record(&self, watch: Watch, ok: bool) {
        if ok {
            self.failing.fetch_and(!(watch as u8), Ordering::SeqCst);
        } else {
            self.failing.fetch_or(watch as u8, Ordering::SeqCst);
        }
    }
}

/// Passes a watch's events on, recording its health and logging its errors at warn.
fn tracked<K, S>(stream: S, watch: Watch, health: Arc<WatchHealth>) -> impl Stream<Item = S::Item> + Send
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    stream.inspect(move |event| match event {
        Ok(_) => health.record(watch, true),
        Err(error) => {
            warn!(?watch, %error, "watch failed; retrying with backoff");
            health.record(watch, false);
        }
    })
}

/// Runs the request controller and both issuer controllers until `shutdown` resolves.
///
/// Fails at start if CertificateRequests or the issuer kinds are not served (cert-manager or
/// the CRDs not installed), saying how to install them.
pub async fn run<S: Signer>(
    client: Client,
    config: Config,
    signer: S,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    run_with(client, config, signer, shutdown, Observability::default()).await
}

/// [`run`], reporting metrics and readiness through `observability`.
pub(crate) async fn run_with<S: Signer>(
    client: Client,
    config: Config,
    signer: S,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    observability: Observability,
) -> Result<(), Error> {
    config.validate()?;
    let shutdown = shutdown.shared();
    let kinds = config.kinds.clone();
    let ar_ns = kinds.api_resource(IssuerScope::Namespaced);
    let ar_cl = kinds.api_resource(IssuerScope::Cluster);
    let wc = watcher::Config::default();
    let ns_api = match &config.namespace {
        Some(ns) => Api::<WatchedIssuer<S::Spec>>::namespaced_with(client.clone(), ns, &ar_ns),
        None => Api::<WatchedIssuer<S::Spec>>::all_with(client.clone(), &ar_ns),
    };
    let requests_api = match &config.namespace {
        Some(ns) => Api::<CertificateRequest>::namespaced(client.clone(), ns),
        None => Api::<CertificateRequest>::all(client.clone()),
    };
    let cl_api = Api::<WatchedIssuer<S::Spec>>::all_with(client.clone(), &ar_cl);
    let installed = async {
        served(&requests_api, "CertificateRequests (cert-manager.io/v1) are not served: install cert-manager").await?;
        for (api, ar) in [(&ns_api, &ar_ns), (&cl_api, &ar_cl)] {
            let hint = format!(
                "the CRD {}.{} is not installed: apply the CRDs `IssuerKinds::crds` generates (for Ferrum: \
                 deploy/crds/ferrum.crds.yaml, or the Helm chart with crds.enabled=true)",
                ar.plural, ar.group
            );
            served(api, &hint).await?;
        }
        Ok::<(), Error>(())
    };
    tokio::select! {
        checked = tokio::time::timeout(INSTALL_CHECK_TIMEOUT, installed) => match checked {
            Ok(result) => result?,
            Err(_) => warn!("could not check within {INSTALL_CHECK_TIMEOUT:?} that the CRDs are installed; going on"),
        },
        () = shutdown.clone() => return Ok(()),
    }

    // The request controller's view of the issuers: a reflector updates its store before it
    // passes an event on, so a request reconciled because its issuer changed sees the change.
    let ns_writer = Writer::new(ar_ns.clone());
    let cl_writer = Writer::new(ar_cl.clone());
    let (ns_store, cl_store) = (ns_writer.as_reader(), cl_writer.as_reader());

    let ctx = Arc::new(Context::new(
        client.clone(),
        config,
        signer,
        ns_store.clone(),
        cl_store.clone(),
        observability.metrics.clone(),
        observability.leadership.clone(),
    ));
    let health = observability.watches.clone();
    let ns_events = tracked(watcher(ns_api.clone(), wc.clone()), Watch::NamespacedIssuers, health.clone())
        .inspect(forget_deleted_issuers(ctx.clone(), IssuerScope::Namespaced))
        .default_backoff()
        .reflect(ns_writer)
        .applied_objects();
    let cl_events = tracked(watcher(cl_api.clone(), wc.clone()), Watch::ClusterIssuers, health.clone())
        .inspect(forget_deleted_issuers(ctx.clone(), IssuerScope::Cluster))
        .default_backoff()
        .reflect(cl_writer)
        .applied_objects();

    // Requests are cached compacted (see `compact`): at scale the cache is most of the memory.
    let request_writer = Writer::<CertificateRequest>::default();
    let request_store = request_writer.as_reader();
    let forgetting = ctx.clone();
    // Small list pages: a page is held whole (as JSON, then as values) before compaction, and
    // other tenants' requests may carry CSRs of tens of KB each.
    let request_watch = wc.clone().page_size(REQUEST_LIST_PAGE);
    let request_events = tracked(watcher(requests_api, request_watch), Watch::Requests, health)
        // A deleted request leaves no state behind (retry clock, unwritten certificate).
        .inspect(move |event| {
            if let Ok(watcher::Event::Delete(request)) = event {
                forgetting.forget_request(request.metadata.uid.as_deref().unwrap_or_default());
                revocation::on_request_deleted(forgetting.clone(), request);
            }
        })
        .default_backoff()
        // Other issuers' requests are not cached at all: an update that makes a request not
        // ours (its issuerRef changed) removes it from the cache.
        .filter_map({
            let kinds = ctx.config.kinds.clone();
            move |event| future::ready(only_ours(&kinds, event))
        })
        .modify({
            let (kinds, approval_check) = (ctx.config.kinds.clone(), ctx.config.approval_check);
            move |request| compact(request, &kinds, approval_check)
        })
        .reflect(request_writer)
        .applied_objects();
    let requests = Controller::for_stream(request_events, request_store.clone());
    let ready_stores = (request_store.clone(), ns_store.clone(), cl_store.clone());
    tokio::spawn(async move {
        let (requests, namespaced, cluster) = ready_stores;
        wait_synced(&requests).await;
        wait_synced(&namespaced).await;
        wait_synced(&cluster).await;
        observability.ready.store(true, Ordering::SeqCst);
    });
    let requests_controller = requests
        .watches_stream_with(
            ns_events,
            request::mapper(ctx.clone(), request_store.clone(), IssuerScope::Namespaced),
            ar_ns.clone(),
        )
        .watches_stream_with(
            cl_events,
            request::mapper(ctx.clone(), request_store, IssuerScope::Cluster),
            ar_cl.clone(),
        )
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency))
        .graceful_shutdown_on(shutdown.clone());

    let issuers_ns = issuer::controller(&ctx, IssuerScope::Namespaced, ns_api, &client)
        .graceful_shutdown_on(shutdown.clone())
        .run(issuer::reconcile, issuer::error_policy, issuer::scoped(&ctx, IssuerScope::Namespaced))
        .for_each(log_watch_error);
    let issuers_cl = issuer::controller(&ctx, IssuerScope::Cluster, cl_api, &client)
        .graceful_shutdown_on(shutdown.clone())
        .run(issuer::reconcile, issuer::error_policy, issuer::scoped(&ctx, IssuerScope::Cluster))
        .for_each(log_watch_error);

    let requests =
        requests_controller.run(request::reconcile, request::error_policy, ctx.clone()).for_each(|_| future::ready(()));
    let revocations = revocations(&ctx, &client, shutdown.clone());
    let deadline = shutdown.then(|()| tokio::time::sleep(SHUTDOWN_GRACE));
    tokio::select! {
        _ = async { tokio::join!(requests, issuers_ns, issuers_cl, revocations) } => {}
        () = deadline => warn!(grace = ?SHUTDOWN_GRACE, "in-flight reconciles did not finish in time; stopping anyway"),
    }
    Ok(())
}

/// The revocation controller and the CRL refresher, if the revocation CRD is installed (an
/// issuer built on this library without it simply has no revocation).
async fn revocations<S: Signer>(
    ctx: &Arc<Context<S>>,
    client: &Client,
    shutdown: future::Shared<impl Future<Output = ()> + Send + Sync + 'static>,
) {
    let ar = crate::revocation::api_resource(&ctx.config.kinds);
    let api = match &ctx.config.namespace {
        Some(ns) => Api::<crate::revocation::CertificateRevocation>::namespaced_with(client.clone(), ns, &ar),
        None => Api::<crate::revocation::CertificateRevocation>::all_with(client.clone(), &ar),
    };
    if let Err(Error::NotInstalled(_)) = served(&api, "").await {
        tracing::info!(crd = %format!("{}.{}", ar.plural, ar.group), "not installed: revocation is off");
        return;
    }
    let controller = Controller::new_with(api, watcher::Config::default(), ar)
        .with_config(kube::runtime::controller::Config::default().concurrency(2))
        .graceful_shutdown_on(shutdown.clone())
        .run(revocation::reconcile, revocation::error_policy, ctx.clone())
        .for_each(log_watch_error);
    tokio::join!(controller, revocation::refresh(ctx.clone(), shutdown));
}

/// Requests per page of the initial list (and of every re-list).
const REQUEST_LIST_PAGE: u32 = 100;

/// How long the start-up check that the kinds are served may take.
const INSTALL_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Fails with `hint` if the apiserver does not serve `api`'s resource (404). Other errors (RBAC,
/// network) are left to the watches, which retry and report them.
async fn served<K>(api: &Api<K>, hint: &str) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.list_metadata(&kube::api::ListParams::default().limit(1)).await {
        Err(kube::Error::Api(status)) if status.code == 404 => Err(Error::NotInstalled(hint.to_owned())),
        _ => Ok(()),
    }
}

/// One item of an issuer watch.
type IssuerWatchItem<S> = Result<watcher::Event<WatchedIssuer<S>>, watcher::Error>;

/// Drops what the controllers keep about an issuer when its watch reports it deleted.
fn forget_deleted_issuers<S: Signer>(ctx: Arc<Context<S>>, scope: IssuerScope) -> impl Fn(&IssuerWatchItem<S::Spec>) {
    move |event| {
        if let Ok(watcher::Event::Delete(issuer)) = event {
            let meta = &issuer.metadata;
            let name = meta.name.clone().unwrap_or_default();
            if let Some(spec) = issuer.spec.valid() {
                let issuer_ctx = crate::signer::IssuerContext {
                    scope,
                    name: &name,
                    secret_namespace: ctx.secret_namespace(scope, meta.namespace.as_deref()),
                    spec,
                    active: crate::rotation::ActiveCa::Current,
                };
                ctx.signer.forget(&issuer_ctx);
            }
            ctx.forget_issuer(scope, meta.namespace.clone(), name, meta.uid.as_deref().unwrap_or_default());
        }
    }
}

/// Logs the watch errors a controller's own watches report (reconcile errors are logged by the
/// error policies).
fn log_watch_error<T, E>(result: Result<T, kube::runtime::controller::Error<E, watcher::Error>>) -> future::Ready<()>
where
    E: std::error::Error + 'static,
{
    if let Err(kube::runtime::controller::Error::QueueError(error)) = result {
        warn!(%error, "issuer or Secret watch failed; retrying with backoff");
    }
    future::ready(())
}

/// Keeps the watch events of requests that name one of `kinds`: an update of any other request
/// becomes its deletion (it leaves the cache if it was there), a listed one is dropped.
fn only_ours<E>(
    kinds: &IssuerKinds,
    event: Result<watcher::Event<CertificateRequest>, E>,
) -> Option<Result<watcher::Event<CertificateRequest>, E>> {
    let ours = |cr: &CertificateRequest| {
        kinds.scope_of(cr.spec.issuer_ref.group.as_deref(), cr.spec.issuer_ref.kind.as_deref()).is_some()
    };
    match event {
        Ok(watcher::Event::Apply(cr)) if !ours(&cr) => Some(Ok(watcher::Event::Delete(cr))),
        Ok(watcher::Event::InitApply(cr)) if !ours(&cr) => None,
        other => Some(other),
    }
}

/// Drops from a cached request what Ferrum will not read. A request Ferrum is about to sign
/// (ours, approved, not settled: `Gate::Proceed`) keeps its spec and conditions whole — that is
/// Ferrum's own work, signed within moments. Every other request keeps only what the gate and
/// the issuer mapper read: name, namespace, UID, resourceVersion, `issuerRef`, the conditions
/// the gate reads (without messages) and a one-byte "certificate set" marker; it is read whole
/// from the API if it becomes signable without a watch event (which would carry it whole).
/// Labels, annotations and managed fields always go.
fn compact(request: &mut CertificateRequest, kinds: &IssuerKinds, approval_check: bool) {
    let meta = &mut request.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    meta.labels = None;
    meta.owner_references = None;
    meta.finalizers = None;
    if matches!(decision::gate(request, kinds, approval_check), decision::Gate::Proceed(_)) {
        return;
    }
    let spec = &mut request.spec;
    spec.request = Vec::new();
    spec.usages = Vec::new();
    spec.username = None;
    spec.uid = None;
    spec.duration = None;
    spec.problems = Vec::new();
    if let Some(status) = request.status.as_mut() {
        if !status.certificate.is_empty() {
            status.certificate = b"-".to_vec();
        }
        status.ca = Vec::new();
        status.conditions.retain(|c| decision::CONDITIONS_READ.contains(&c.type_.as_str()));
        for condition in &mut status.conditions {
            condition.message = None;
        }
    }
}

/// Waits until `store` has listed its objects once.
///
/// Polls instead of awaiting [`Store::wait_until_ready`]: its one-shot channel keeps only the
/// last waiter's waker, so two tasks awaiting the same store can leave one asleep for good
/// (kube-runtime 5.0).
pub(crate) async fn wait_synced<K>(store: &Store<K>)
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        if let Some(Ok(())) = store.wait_until_ready().now_or_never() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CertificateRequestSpec, CertificateRequestStatus, Condition};

    #[test]
    fn other_issuers_requests_are_not_cached() {
        let kinds = IssuerKinds::new("ferrum.dev", "v1alpha1", "Ferrum");
        let with_ref = |group: &str, kind: &str| {
            CertificateRequest::new(
                "r",
                CertificateRequestSpec {
                    issuer_ref: crate::api::IssuerReference {
                        name: "x".into(),
                        kind: Some(kind.into()),
                        group: Some(group.into()),
                    },
                    ..Default::default()
                },
            )
        };
        let foreign = with_ref("example.com", "OtherIssuer");
        let ours = with_ref("ferrum.dev", "FerrumIssuer");
        let kept = |event| only_ours::<()>(&kinds, Ok(event));
        assert!(kept(watcher::Event::InitApply(foreign.clone())).is_none(), "not listed into the cache");
        assert!(matches!(kept(watcher::Event::Apply(foreign.clone())), Some(Ok(watcher::Event::Delete(_)))));
        assert!(matches!(kept(watcher::Event::Apply(ours.clone())), Some(Ok(watcher::Event::Apply(_)))));
        assert!(matches!(kept(watcher::Event::InitApply(ours)), Some(Ok(watcher::Event::InitApply(_)))));
        assert!(matches!(kept(watcher::Event::Delete(foreign)), Some(Ok(watcher::Event::Delete(_)))));
        assert!(matches!(kept(watcher::Event::InitDone), Some(Ok(watcher::Event::InitDone))));
    }

    #[test]
    fn compaction_keeps_what_decisions_read() {
        let kinds = IssuerKinds::new("ferrum.dev", "v1alpha1", "Ferrum");
        let condition = |type_: &str, status: &str| Condition {
            type_: type_.into(),
            status: status.into(),
            message: Some("a long message".repeat(100)),
            ..Default::default()
        };
        let mut cr = CertificateRequest::new(
            "r",
            CertificateRequestSpec {
                request: vec![b'x'; 30_000],
                usages: vec!["digital signature".into()],
                issuer_ref: crate::api::IssuerReference {
                    name: "ca".into(),
                    kind: Some("FerrumIssuer".into()),
                    group: Some("ferrum.dev".into()),
                },
                ..Default::default()
            },
        );
        cr.metadata.namespace = Some("ns".into());
        cr.metadata.annotations = Some([("a".to_owned(), "x".repeat(10_000))].into());
        cr.metadata.managed_fields = Some(vec![Default::default()]);
        cr.status =
            Some(CertificateRequestStatus { conditions: vec![condition("Other", "True")], ..Default::default() });

        // Not approved yet: only what the gate reads.
        let mut waiting = cr.clone();
        let gate_before = decision::gate(&waiting, &kinds, true);
        compact(&mut waiting, &kinds, true);
        assert_eq!(decision::gate(&waiting, &kinds, true), gate_before, "the gate decides the same");
        assert_eq!(gate_before, decision::Gate::AwaitApproval);
        assert!(waiting.spec.request.is_empty() && waiting.spec.usages.is_empty(), "no CSR");
        assert!(waiting.metadata.annotations.is_none() && waiting.metadata.managed_fields.is_none());
        assert!(waiting.status.as_ref().unwrap().conditions.is_empty(), "only the conditions the gate reads");
        assert!(serde_json::to_vec(&waiting).unwrap().len() < 1_000, "a few hundred bytes whatever it held");

        // Approved: Ferrum's own work, kept whole but for metadata.
        let mut signable = cr.clone();
        signable.status.as_mut().unwrap().conditions.push(condition("Approved", "True"));
        compact(&mut signable, &kinds, true);
        assert!(matches!(decision::gate(&signable, &kinds, true), decision::Gate::Proceed(_)));
        assert_eq!(signable.spec.request.len(), 30_000, "the CSR it is about to sign");
        assert!(signable.status.as_ref().unwrap().conditions.iter().all(|c| c.message.is_some()));
        assert!(signable.metadata.annotations.is_none());

        // Issued: terminal, the certificate a marker.
        let mut issued = signable.clone();
        issued.status.as_mut().unwrap().certificate = b"long chain".to_vec();
        issued.status.as_mut().unwrap().ca = b"root".to_vec();
        compact(&mut issued, &kinds, true);
        assert!(decision::is_terminal(&issued), "still terminal");
        assert_eq!(issued.status.as_ref().unwrap().certificate, b"-");
        assert!(issued.status.as_ref().unwrap().ca.is_empty() && issued.spec.request.is_empty());
    }
}
