//! What every reconcile shares: client, config, signer, caches, retry state, events.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::reflector::{ObjectRef, Store};

use super::Config;
use super::events::{Note, Publisher};
use crate::api::{IssuerScope, WatchedIssuer};
use crate::backoff::RetryTracker;
use crate::decision::IssuerKey;
use crate::leader::LeaderFence;
use crate::metrics::{DeviationLabels, ErrorLabels, IssuerLabels, Metrics, ResultLabels};
use crate::signer::{Signed, Signer, Warning};

/// Shared state of the controllers.
pub(crate) struct Context<S: Signer> {
    /// Admin of the API calls.
    pub(crate) client: Client,
    /// Behaviour.
    pub(crate) config: Config,
    /// The backend.
    pub(crate) signer: S,
    namespaced: Store<WatchedIssuer<S::Spec>>,
    cluster: Store<WatchedIssuer<S::Spec>>,
    /// Retry state per request UID.
    pub(crate) retries: RetryTracker,
    /// UIDs of requests we wrote a terminal status to and whose echo we have not yet seen:
    /// guards against signing twice from a stale cache.
    finished: Mutex<HashSet<String>>,
    /// Certificates signed but not yet written (a conflict on the write), by request UID: the
    /// next attempt writes this one instead of signing again.
    unwritten: Mutex<HashMap<String, Signed>>,
    /// The warnings last published per issuer UID.
    warned: Mutex<HashMap<String, Vec<Warning>>>,
    events: Publisher,
    /// Metrics.
    pub(crate) metrics: std::sync::Arc<Metrics>,
    /// With leader election: whether this replica may write now.
    leadership: Option<std::sync::Arc<LeaderFence>>,
    /// Namespace labels read for namespace selectors, with when they were read.
    namespace_labels: Mutex<HashMap<String, (Instant, Labels)>>,
    /// Each issuer's CRL: whose turn, and when it is due.
    pub(crate) crls: super::revocation::CrlBook,
    /// Re-issuance budgets per issuer UID (see `super::reissue`).
    pub(crate) reissue_budgets: super::reissue::Budgets,
}

/// A namespace's labels.
pub(crate) type Labels = std::collections::BTreeMap<String, String>;

/// How long namespace labels read for a selector are reused: a namespace taken out of a
/// cluster issuer's selector is refused within this time.
const NAMESPACE_LABELS_TTL: Duration = Duration::from_secs(10);

impl<S: Signer> Context<S> {
    pub(crate) fn new(
        client: Client,
        config: Config,
        signer: S,
        namespaced: Store<WatchedIssuer<S::Spec>>,
        cluster: Store<WatchedIssuer<S::Spec>>,
        metrics: std::sync::Arc<Metrics>,
        leadership: Option<std::sync::Arc<LeaderFence>>,
    ) -> Self {
        Self {
            events: Publisher::spawn(client.clone(), config.field_manager.clone(), std::env::var("POD_NAME").ok()),
            retries: RetryTracker::default(),
            client,
            config,
            signer,
            namespaced,
            cluster,
            finished: Mutex::new(HashSet::new()),
            unwritten: Mutex::new(HashMap::new()),
            warned: Mutex::new(HashMap::new()),
            metrics,
            leadership,
            namespace_labels: Mutex::new(HashMap::new()),
            crls: Default::default(),
            reissue_budgets: Default::default(),
        }
    }

    /// The labels of `namespace`, for a cluster issuer's namespace selector: read with GET
    /// (the only right Ferrum has on namespaces) and reused for [`NAMESPACE_LABELS_TTL`].
    /// Entries past their time are dropped whenever one is added, so the cache holds only
    /// the namespaces of the last few seconds' requests.
    pub(crate) async fn namespace_labels(&self, namespace: &str) -> Result<Labels, crate::Error> {
        {
            let cache = self.namespace_labels.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, labels)) = cache.get(namespace).filter(|(at, _)| at.elapsed() < NAMESPACE_LABELS_TTL) {
                return Ok(labels.clone());
            }
        }
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(self.client.clone());
        let labels = api.get(namespace).await?.metadata.labels.unwrap_or_default();
        let mut cache = self.namespace_labels.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, (at, _)| at.elapsed() < NAMESPACE_LABELS_TTL);
        cache.insert(namespace.to_owned(), (Instant::now(), labels.clone()));
        Ok(labels)
    }

    /// Fails unless this replica may write now: without leader election always; with it only
    /// while leadership is confirmed (see [`LeaderFence`]). Checked before signing and before
    /// every write, so that a leader that stalled past its lease writes nothing when it wakes.
    pub(crate) fn may_write(&self) -> Result<(), crate::Error> {
        match &self.leadership {
            Some(fence) if !fence.holds() => Err(crate::Error::NotLeader),
            _ => Ok(()),
        }
    }

    /// The cached issuer a key names.
    pub(crate) fn issuer(&self, key: &IssuerKey) -> Option<std::sync::Arc<WatchedIssuer<S::Spec>>> {
        let ar = self.config.kinds.api_resource(key.scope);
        let mut object_ref = ObjectRef::new_with(&key.name, ar);
        if let Some(ns) = &key.namespace {
            object_ref = object_ref.within(ns);
        }
        self.store(key.scope).get(&object_ref)
    }

    /// The issuer cache of a scope.
    pub(crate) fn store(&self, scope: IssuerScope) -> &Store<WatchedIssuer<S::Spec>> {
        match scope {
            IssuerScope::Namespaced => &self.namespaced,
            IssuerScope::Cluster => &self.cluster,
        }
    }

    /// Where issuers of a scope read Secrets.
    pub(crate) fn secret_namespace<'a>(&'a self, scope: IssuerScope, issuer_namespace: Option<&'a str>) -> &'a str {
        match scope {
            IssuerScope::Namespaced => issuer_namespace.unwrap_or_default(),
            IssuerScope::Cluster => &self.config.cluster_resource_namespace,
        }
    }

    /// Of an issuer's current `warnings`, those not published at its last check; remembers the
    /// current set (an issuer without warnings forgets them, so a later one is said again).
    pub(crate) fn fresh_warnings(&self, issuer_uid: &str, warnings: &[Warning]) -> Vec<Warning> {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warnings.is_empty() {
            warned.remove(issuer_uid);
            return Vec::new();
        }
        let before = warned.insert(issuer_uid.to_owned(), warnings.to_vec()).unwrap_or_default();
        warnings.iter().filter(|w| !before.contains(w)).cloned().collect()
    }

    /// Notes that a terminal status was written for `uid`.
    pub(crate) fn mark_finished(&self, uid: &str) {
        self.finished.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.to_owned());
    }

    /// Whether a terminal status was written for `uid` and the cache has not caught up.
    pub(crate) fn finished_unseen(&self, uid: &str) -> bool {
        self.finished.lock().unwrap_or_else(|e| e.into_inner()).contains(uid)
    }

    /// The cache has seen the terminal status of `uid`: stop remembering it.
    pub(crate) fn forget_finished(&self, uid: &str) {
        self.finished.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
        self.unwritten.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }

    /// Drops everything kept about a request that is gone.
    pub(crate) fn forget_request(&self, uid: &str) {
        self.forget_finished(uid);
        self.retries.forget(uid);
        self.metrics.retries_waiting.set(self.retries.waiting() as i64);
    }

    /// Keeps a signed certificate until its status write succeeds.
    pub(crate) fn keep_unwritten(&self, uid: &str, signed: Signed) {
        self.unwritten.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.to_owned(), signed);
    }

    /// A certificate signed earlier for this request whose write did not go through.
    pub(crate) fn unwritten(&self, uid: &str) -> Option<Signed> {
        self.unwritten.lock().unwrap_or_else(|e| e.into_inner()).get(uid).cloned()
    }

    /// The certificate was written: nothing to keep.
    pub(crate) fn written(&self, uid: &str) {
        self.unwritten.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }

    /// Whether the issuer `request` names is in the cache.
    fn issuer_exists(&self, request: &crate::api::CertificateRequest, scope: Option<IssuerScope>) -> bool {
        let Some(scope) = scope else {
            return false;
        };
        let namespace = match scope {
            IssuerScope::Namespaced => Some(request.metadata.namespace.clone().unwrap_or_default()),
            IssuerScope::Cluster => None,
        };
        self.issuer(&IssuerKey { scope, namespace, name: request.spec.issuer_ref.name.clone() }).is_some()
    }

    /// Drops what is kept about an issuer that is gone: its CA-expiry series and its warnings.
    pub(crate) fn forget_issuer(&self, scope: IssuerScope, namespace: Option<String>, name: String, uid: &str) {
        let labels = IssuerLabels {
            kind: self.config.kinds.kind(scope).to_owned(),
            namespace: namespace.unwrap_or_default(),
            name,
        };
        self.metrics.ca_not_after.remove(&labels);
        self.metrics.crl_failures.remove(&labels);
        self.metrics.reissue_remaining.remove(&labels);
        self.reissue_budgets.forget(uid);
        self.warned.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }

    /// Counts a request outcome against the issuer it names.
    pub(crate) fn count_result(&self, request: &crate::api::CertificateRequest, reason: &str) {
        let issuer_ref = &request.spec.issuer_ref;
        let (scope, kind) = self.issuer_kind(request);
        let labels = ResultLabels {
            kind,
            namespace: match scope {
                Some(IssuerScope::Namespaced) => request.metadata.namespace.clone().unwrap_or_default(),
                _ => String::new(),
            },
            // Only the names of issuers that exist: a request may name anything, and each
            // distinct label value would be a series kept for the life of the process.
            name: if self.issuer_exists(request, scope) { issuer_ref.name.clone() } else { String::new() },
            reason: reason.to_owned(),
        };
        self.metrics.results.get_or_create(&labels).inc();
    }

    /// The scope of the issuer `request` names, and its kind as a metric label (empty if not
    /// one of ours).
    fn issuer_kind(&self, request: &crate::api::CertificateRequest) -> (Option<IssuerScope>, String) {
        let issuer_ref = &request.spec.issuer_ref;
        let scope = self.config.kinds.scope_of(issuer_ref.group.as_deref(), issuer_ref.kind.as_deref());
        (scope, scope.map(|s| self.config.kinds.kind(s).to_owned()).unwrap_or_default())
    }

    /// Counts the deviations of a certificate written for `request` (its warnings' reasons).
    pub(crate) fn count_deviations(&self, request: &crate::api::CertificateRequest, deviations: &[String]) {
        let (_, kind) = self.issuer_kind(request);
        for deviation in deviations {
            let labels = DeviationLabels { kind: kind.clone(), deviation: deviation.clone() };
            self.metrics.deviations.get_or_create(&labels).inc();
        }
    }

    /// Counts a failed reconcile.
    pub(crate) fn count_error(&self, controller: &str, error: &crate::Error) {
        let labels = ErrorLabels { controller: controller.to_owned(), error: error.metric_label().to_owned() };
        self.metrics.reconcile_errors.get_or_create(&labels).inc();
    }

    /// What the signer sees of the issuer `key` names, with its spec, signing with the CA its
    /// status says signs now.
    pub(crate) fn issuer_context<'a>(
        &'a self,
        key: &'a IssuerKey,
        spec: &'a S::Spec,
    ) -> crate::signer::IssuerContext<'a, S::Spec> {
        crate::signer::IssuerContext {
            scope: key.scope,
            name: &key.name,
            secret_namespace: self.secret_namespace(key.scope, key.namespace.as_deref()),
            spec,
            // The CA that signs now (after a staged switch, the next one): CRLs follow it too.
            active: self
                .issuer(key)
                .and_then(|issuer| Some(issuer.status.as_ref()?.rotation.as_ref()?.active()))
                .unwrap_or_default(),
        }
    }

    /// What the signer sees of `issuer` (signing with its current CA), if its spec reads.
    pub(crate) fn issuer_context_of<'a>(
        &'a self,
        scope: IssuerScope,
        issuer: &'a WatchedIssuer<S::Spec>,
    ) -> Option<crate::signer::IssuerContext<'a, S::Spec>> {
        Some(crate::signer::IssuerContext {
            scope,
            name: issuer.metadata.name.as_deref().unwrap_or_default(),
            secret_namespace: self.secret_namespace(scope, issuer.metadata.namespace.as_deref()),
            spec: issuer.spec.valid()?,
            active: crate::rotation::ActiveCa::Current,
        })
    }

    /// Queues an event for publication. Never waits for the API: a reconcile holds its worker
    /// only for its status write. If the queue is full the event is dropped and logged.
    pub(crate) fn event(&self, object: &ObjectReference, warning: bool, reason: &str, note: String, action: &str) {
        if self.may_write().is_err() {
            return;
        }
        self.events.send(Note {
            regarding: object.clone(),
            warning,
            reason: reason.to_owned(),
            note,
            action: action.to_owned(),
        });
    }
}
