//! The leader's side of revocation: `CertificateRevocation` objects resolved and recorded,
//! each issuer's CRL signed again when it is due, and certificates revoked when their
//! Certificate is deleted (if the issuer asks for it). See [`crate::revocation`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info, warn};

use super::Context;
use crate::Error;
use crate::api::{CertificateRequest, Condition, ConditionStatus, IssuerScope, WatchedIssuer};
use crate::backoff::to_time;
use crate::decision::{IssuerKey, IssuerReadiness, issuer_readiness};
use crate::metrics::{IssuerLabels, ResultLabels};
use crate::revocation::publish::{CrlIssuer, PublishError, Published, publish, write_copy};
use crate::revocation::reasons::{self, REVOKED_CONDITION};
use crate::revocation::{
    Added, CertificateRevocation, CertificateRevocationSpec, Entry, Reason, from_unix, hex, parse_serial, unix,
};
use crate::signer::Signer;
use crate::x509::{LeafFacts, RevocationReason, issued_by};

/// How often the leader looks at every issuer's CRL.
const REFRESH_TICK: Duration = Duration::from_secs(5);
/// How often the leader asks each issuer's signer whether its CA changed.
const CA_CHECK_INTERVAL: Duration = Duration::from_secs(15);
/// How often the leader deletes the spent ledgers of issuers that are gone.
const COLLECT_INTERVAL: Duration = Duration::from_secs(600);
/// How long the refresher waits for one issuer's CRL before it goes on to the others.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
/// How soon a CRL that failed is tried again.
const FAILED_RETRY: Duration = Duration::from_secs(10);
/// How many characters of a revocation's UID its ledger entries carry.
const BY_CHARS: usize = 8;
/// The `by` of entries revoked because their Certificate was deleted.
const BY_DELETION: &str = "deleted";

/// The leader's book of CRLs: one lock per issuer (revocations and refreshes of one issuer
/// take turns), and when each issuer's CRL is due.
#[derive(Default)]
pub(crate) struct CrlBook {
    locks: Mutex<HashMap<IssuerKey, Arc<tokio::sync::Mutex<()>>>>,
    due: Mutex<HashMap<IssuerKey, Due>>,
}

/// When an issuer's CRL must be signed next, and by which CA it was signed last.
#[derive(Clone, Debug)]
struct Due {
    at: SystemTime,
    ca: Vec<u8>,
    ca_checked: Instant,
    last_failure: Option<String>,
    /// The copy for consumers that could not be written, to try again.
    pending_copy: Option<PendingCopy>,
}

/// A copy of the CRL for consumers not written yet.
#[derive(Clone, Debug)]
struct PendingCopy {
    error: String,
    pem: String,
    tried: Instant,
}

impl CrlBook {
    fn lock(&self, key: &IssuerKey) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).entry(key.clone()).or_default().clone()
    }

    fn due(&self, key: &IssuerKey) -> Option<Due> {
        self.due.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    fn set(&self, key: &IssuerKey, due: Due) {
        self.due.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone(), due);
    }

    /// Drops what is kept about issuers no longer in `present`.
    fn retain(&self, present: &[IssuerKey]) {
        self.due.lock().unwrap_or_else(|e| e.into_inner()).retain(|k, _| present.contains(k));
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, l| present.contains(k) || Arc::strong_count(l) > 1);
    }
}

/// The key of a cached issuer.
fn key_of<T: Clone>(scope: IssuerScope, issuer: &WatchedIssuer<T>) -> IssuerKey {
    IssuerKey {
        scope,
        namespace: match scope {
            IssuerScope::Namespaced => issuer.metadata.namespace.clone(),
            IssuerScope::Cluster => None,
        },
        name: issuer.name_any(),
    }
}

/// The issuer whose CRL is published: its spec's `crl` block and validity, checked.
fn crl_issuer<'a, S: Signer>(
    ctx: &'a Context<S>,
    key: &'a IssuerKey,
    spec: &'a S::Spec,
) -> Result<CrlIssuer<'a, S::Spec>, PublishError> {
    let broken = |reason: &'static str, message: String| PublishError::Broken { reason, message };
    let crl = ctx.signer.revocation(spec).ok_or_else(|| {
        broken(reasons::CRLS_NOT_ENABLED, format!("issuer {key} does not publish CRLs: give it a spec.crl block"))
    })?;
    let validity = crate::revocation::validity(crl).map_err(|m| broken(reasons::ISSUER_NOT_READY, m))?;
    Ok(CrlIssuer {
        kinds: &ctx.config.kinds,
        issuer: ctx.issuer_context(key, spec),
        crl,
        validity,
        store_namespace: &ctx.config.cluster_resource_namespace,
    })
}

/// Signs and publishes an issuer's CRL with `change` applied, taking the issuer's turn. `ca` is
/// the issuing CA certificate if the caller has just read it.
async fn publish_for<S: Signer>(
    ctx: &Context<S>,
    key: &IssuerKey,
    issuer: &WatchedIssuer<S::Spec>,
    change: Option<(Vec<u8>, Entry)>,
    ca: Option<Vec<u8>>,
) -> Result<Published, PublishError> {
    let spec = issuer.spec.valid().ok_or_else(|| PublishError::Broken {
        reason: reasons::ISSUER_NOT_READY,
        message: format!("issuer {key} has an invalid spec"),
    })?;
    let target = crl_issuer(ctx, key, spec)?;
    let validity = target.validity;
    let lock = ctx.crls.lock(key);
    let _turn = lock.lock().await;
    let ca = match ca {
        Some(ca) => ca,
        None => ctx.signer.issuing_certificate(&target.issuer).await.map_err(|e| PublishError::Retry(e.to_string()))?,
    };
    let result =
        publish(&ctx.client, &ctx.signer, &target, change, SystemTime::now(), || ctx.may_write().is_ok()).await;
    match &result {
        Ok(published) => {
            if let Some(this_update) = published.this_update {
                info!(issuer = %key, number = published.number, entries = published.entries, "CRL published");
                let half = this_update + validity / 2;
                let at = published.earliest_expiry.map_or(half, |expiry| expiry.min(half));
                let previous = ctx.crls.due(key).and_then(|d| d.pending_copy).map(|p| p.error);
                let pending_copy = published.copy_error.clone().map(|(error, pem)| {
                    copy_failed(ctx, key, issuer, &error, previous.as_deref());
                    PendingCopy { error, pem, tried: Instant::now() }
                });
                ctx.crls.set(key, Due { at, ca, ca_checked: Instant::now(), last_failure: None, pending_copy });
            }
        }
        Err(error) => {
            let labels = IssuerLabels {
                kind: ctx.config.kinds.kind(key.scope).to_owned(),
                namespace: key.namespace.clone().unwrap_or_default(),
                name: key.name.clone(),
            };
            ctx.metrics.crl_failures.get_or_create(&labels).inc();
            let previous = ctx.crls.due(key);
            let message = error.to_string();
            if previous.as_ref().and_then(|d| d.last_failure.as_ref()) != Some(&message) {
                warn!(issuer = %key, error = %message, "CRL not published");
                let reference = issuer.object_ref(&ctx.config.kinds.api_resource(key.scope));
                ctx.event(
                    &reference,
                    true,
                    "CRLNotPublished",
                    format!("the CRL could not be published: {message}"),
                    "SignCRL",
                );
            }
            ctx.crls.set(key, failed(previous, message));
        }
    }
    result
}

/// The book's entry after a failure: try again in [`FAILED_RETRY`], keeping what it knew.
fn failed(previous: Option<Due>, message: String) -> Due {
    let (ca, pending_copy) = previous.map(|d| (d.ca, d.pending_copy)).unwrap_or_default();
    Due {
        at: SystemTime::now() + FAILED_RETRY,
        ca,
        ca_checked: Instant::now(),
        last_failure: Some(message),
        pending_copy,
    }
}

/// Says (once per distinct error) that the copy of a CRL for consumers was not written.
fn copy_failed<S: Signer>(
    ctx: &Context<S>,
    key: &IssuerKey,
    issuer: &WatchedIssuer<S::Spec>,
    error: &str,
    previous: Option<&str>,
) {
    warn!(issuer = %key, %error, "CRL published; its copy for consumers was not written");
    if previous != Some(error) {
        let reference = issuer.object_ref(&ctx.config.kinds.api_resource(key.scope));
        ctx.event(&reference, true, "CRLCopyNotWritten", error.to_owned(), "SignCRL");
    }
}

/// Writes again a copy for consumers that could not be written, without signing a new CRL.
async fn retry_copy<S: Signer>(ctx: &Context<S>, key: &IssuerKey, issuer: &WatchedIssuer<S::Spec>, spec: &S::Spec) {
    let lock = ctx.crls.lock(key);
    let _turn = lock.lock().await;
    let Some(due) = ctx.crls.due(key) else { return };
    let Some(pending) = due.pending_copy.clone().filter(|p| p.tried.elapsed() >= FAILED_RETRY) else { return };
    let Ok(target) = crl_issuer(ctx, key, spec) else { return };
    let pending_copy = match write_copy(&ctx.client, &target, &pending.pem).await {
        Ok(()) => {
            info!(issuer = %key, "the copy of the CRL for consumers is written");
            None
        }
        Err(error) => {
            copy_failed(ctx, key, issuer, &error, Some(&pending.error));
            Some(PendingCopy { error, pem: pending.pem, tried: Instant::now() })
        }
    };
    ctx.crls.set(key, Due { pending_copy, ..due });
}

/// Signs each issuer's CRL again when it is due: on a new leader at once, then at half its
/// validity, when an entry's certificate expires, and when the issuer's CA changed. Runs until
/// `shutdown`.
pub(crate) async fn refresh<S: Signer>(ctx: Arc<Context<S>>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    // The first collection waits a whole interval: the issuer caches are complete by then.
    let mut last_collection = Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep(REFRESH_TICK) => {}
            () = &mut shutdown => return,
        }
        if ctx.may_write().is_err() {
            continue;
        }
        let mut present = Vec::new();
        for scope in [IssuerScope::Namespaced, IssuerScope::Cluster] {
            for issuer in ctx.store(scope).state() {
                let Some(spec) = issuer.spec.valid() else { continue };
                if ctx.signer.revocation(spec).is_none() || issuer_readiness(Some(&*issuer)) != IssuerReadiness::Ready {
                    continue;
                }
                let key = key_of(scope, &issuer);
                present.push(key.clone());
                if is_due(&ctx, &key, spec).await {
                    // One slow issuer (a token that does not answer) does not hold the others.
                    let published =
                        tokio::time::timeout(PUBLISH_TIMEOUT, publish_for(&ctx, &key, &issuer, None, None)).await;
                    if published.is_err() {
                        warn!(issuer = %key, timeout = ?PUBLISH_TIMEOUT, "signing the CRL took too long; trying again later");
                        let message = format!("signing the CRL took longer than {PUBLISH_TIMEOUT:?}");
                        ctx.crls.set(&key, failed(ctx.crls.due(&key), message));
                    }
                } else {
                    retry_copy(&ctx, &key, &issuer, spec).await;
                }
            }
        }
        ctx.crls.retain(&present);
        if last_collection.elapsed() >= COLLECT_INTERVAL {
            last_collection = Instant::now();
            collect_spent_ledgers(&ctx).await;
        }
    }
}

/// Deletes the ledgers of issuers that no longer exist once nothing on them would still be
/// listed (every entry past its certificate's expiry and one CRL validity). Only issuers this
/// replica serves are judged; a namespaced issuer recreated later starts a new ledger.
async fn collect_spent_ledgers<S: Signer>(ctx: &Context<S>) {
    let kinds = &ctx.config.kinds;
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.config.cluster_resource_namespace);
    let selector = format!("{}=true", crate::revocation::crl_label(kinds));
    let Ok(list) = api.list(&ListParams::default().labels(&selector)).await else { return };
    for cm in list.items {
        let Some((scope, namespace, name)) = crate::revocation::publish::issuer_of(kinds, &cm) else { continue };
        if scope == IssuerScope::Namespaced
            && ctx.config.namespace.as_ref().is_some_and(|ns| Some(ns) != namespace.as_ref())
        {
            continue;
        }
        let key = IssuerKey { scope, namespace, name };
        if ctx.issuer(&key).is_some()
            || !crate::revocation::publish::spent(&cm, SystemTime::now())
            || ctx.may_write().is_err()
        {
            continue;
        }
        let preconditions =
            kube::api::Preconditions { resource_version: cm.metadata.resource_version.clone(), uid: None };
        let params = kube::api::DeleteParams { preconditions: Some(preconditions), ..Default::default() };
        if api.delete(&cm.name_any(), &params).await.is_ok() {
            info!(issuer = %key, ledger = %cm.name_any(), "the ledger of an issuer that no longer exists, with nothing left to list, deleted");
        }
    }
}

/// Whether an issuer's CRL must be signed now.
async fn is_due<S: Signer>(ctx: &Context<S>, key: &IssuerKey, spec: &S::Spec) -> bool {
    let Some(due) = ctx.crls.due(key) else { return true };
    if due.at <= SystemTime::now() {
        return true;
    }
    if due.ca_checked.elapsed() < CA_CHECK_INTERVAL || due.last_failure.is_some() {
        return false;
    }
    let issuer_ctx = ctx.issuer_context(key, spec);
    match ctx.signer.issuing_certificate(&issuer_ctx).await {
        Ok(ca) if ca != due.ca => {
            info!(issuer = %key, "the issuer's CA changed; signing its CRL with the new one");
            true
        }
        _ => {
            ctx.crls.set(key, Due { ca_checked: Instant::now(), ..due });
            false
        }
    }
}

/// What a revocation came to.
#[derive(Clone, Debug, PartialEq)]
enum Verdict {
    /// On the CRL.
    Revoked(Facts),
    /// Refused for good; the status says why.
    Refused { reason: &'static str, message: String, facts: Option<Facts> },
    /// Not yet; looked at again after `retry`.
    Waiting { reason: &'static str, message: String, retry: Duration },
}

/// What the status says about a revoked serial.
#[derive(Clone, Debug, PartialEq)]
struct Facts {
    serial: String,
    issuer: String,
    revoked_at: Option<SystemTime>,
    not_after: SystemTime,
}

/// What a revocation names, resolved.
struct Target {
    key: IssuerKey,
    /// The certificate (DER) and its notAfter, unless named by serial.
    leaf: Option<(Vec<u8>, SystemTime)>,
    serial: Vec<u8>,
    /// Described for messages.
    what: String,
}

fn refused(reason: &'static str, message: impl Into<String>) -> Verdict {
    Verdict::Refused { reason, message: message.into(), facts: None }
}

fn waiting(reason: &'static str, message: impl Into<String>, retry: Duration) -> Verdict {
    Verdict::Waiting { reason, message: message.into(), retry }
}

/// Reconciles one `CertificateRevocation`.
pub(crate) async fn reconcile<S: Signer>(
    revocation: Arc<CertificateRevocation>,
    ctx: Arc<Context<S>>,
) -> Result<Action, Error> {
    let previous = revocation.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == REVOKED_CONDITION));
    let settled = previous.is_some_and(|c| {
        c.observed_generation == revocation.metadata.generation
            && (c.is_true() || !matches!(c.reason.as_deref(), Some(r) if is_waiting_reason(r)))
    });
    if settled {
        return Ok(Action::await_change());
    }
    ctx.may_write()?;
    let verdict = decide(&ctx, &revocation).await;
    let requeue = match &verdict {
        Verdict::Waiting { retry, .. } => Action::requeue(*retry),
        _ => Action::await_change(),
    };
    write_status(&ctx, &revocation, &verdict).await?;
    Ok(requeue)
}

/// Whether a reason is one of the waiting ones (looked at again), not a final answer.
fn is_waiting_reason(reason: &str) -> bool {
    [
        reasons::NOT_ISSUED,
        reasons::ISSUER_NOT_FOUND,
        reasons::CRLS_NOT_ENABLED,
        reasons::ISSUER_NOT_READY,
        reasons::PENDING,
    ]
    .contains(&reason)
        || reason.starts_with("CRL")
        || reason.starts_with("Ledger")
}

/// Error policy: requeue with a delay, count it.
pub(crate) fn error_policy<S: Signer>(_: Arc<CertificateRevocation>, error: &Error, ctx: Arc<Context<S>>) -> Action {
    if !matches!(error, Error::NotLeader) {
        warn!(%error, "revocation reconcile failed");
    }
    ctx.count_error("revocation", error);
    Action::requeue(Duration::from_secs(5))
}

async fn decide<S: Signer>(ctx: &Context<S>, revocation: &CertificateRevocation) -> Verdict {
    let namespace = revocation.metadata.namespace.clone().unwrap_or_default();
    let spec = match &revocation.spec {
        crate::api::Parsed::Valid(spec) => spec,
        crate::api::Parsed::Invalid(why) => return refused(reasons::INVALID_SPEC, why.clone()),
    };
    let target = match resolve(ctx, &namespace, spec).await {
        Ok(target) => target,
        Err(verdict) => return verdict,
    };
    let kinds = &ctx.config.kinds;
    let label = format!("{}/{}", kinds.kind(target.key.scope), target.key);
    let Some(issuer) = ctx.issuer(&target.key) else {
        return waiting(
            reasons::ISSUER_NOT_FOUND,
            format!("issuer {label} of {} does not exist", target.what),
            Duration::from_secs(30),
        );
    };
    let Some(issuer_spec) = issuer.spec.valid() else {
        return waiting(
            reasons::ISSUER_NOT_READY,
            format!("issuer {label} has an invalid spec"),
            Duration::from_secs(30),
        );
    };
    if ctx.signer.revocation(issuer_spec).is_none() {
        return waiting(
            reasons::CRLS_NOT_ENABLED,
            format!("issuer {label} does not publish CRLs: give it a spec.crl block"),
            Duration::from_secs(60),
        );
    }
    if let IssuerReadiness::NotReady { reason, message } = issuer_readiness(Some(&*issuer)) {
        return waiting(
            reasons::ISSUER_NOT_READY,
            format!("issuer {label} is not Ready ({reason}: {message})"),
            Duration::from_secs(15),
        );
    }
    let issuer_ctx = ctx.issuer_context(&target.key, issuer_spec);
    let ca = match ctx.signer.issuing_certificate(&issuer_ctx).await {
        Ok(ca) => ca,
        Err(e) => {
            return waiting(
                reasons::PENDING,
                format!("reading the CA of issuer {label}: {e}"),
                Duration::from_secs(10),
            );
        }
    };
    let not_after = match &target.leaf {
        Some((leaf, not_after)) => {
            if let Err(why) = issued_by(leaf, &ca) {
                return refused(
                    reasons::NOT_ISSUED_BY_US,
                    format!("the certificate of {} was not signed by the CA of issuer {label}: {why}", target.what),
                );
            }
            *not_after
        }
        // A bare serial is kept until the CA itself expires.
        None => match LeafFacts::parse(&ca) {
            Ok(facts) => facts.not_after,
            Err(e) => {
                return waiting(reasons::PENDING, format!("the CA of issuer {label}: {e}"), Duration::from_secs(30));
            }
        },
    };
    let now = SystemTime::now();
    let mut facts = Facts { serial: hex(&target.serial), issuer: label.clone(), revoked_at: None, not_after };
    if not_after < now {
        return Verdict::Refused {
            reason: reasons::EXPIRED,
            message: format!(
                "the certificate of {} has expired; an expired certificate is not listed on a CRL",
                target.what
            ),
            facts: Some(facts),
        };
    }
    let by: String = revocation
        .metadata
        .uid
        .as_deref()
        .unwrap_or("unknown")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(BY_CHARS)
        .collect();
    let entry = Entry {
        revoked_at: unix(now),
        reason: RevocationReason::from(spec.reason),
        not_after: unix(not_after),
        namespace: revocation.metadata.namespace.clone().unwrap_or_default(),
        by: by.clone(),
    };
    // Bounded: an apiserver or a token that does not answer must not hold a worker and the
    // issuer's turn for long.
    let change = Some((target.serial.clone(), entry));
    let published = tokio::time::timeout(PUBLISH_TIMEOUT, publish_for(ctx, &target.key, &issuer, change, Some(ca)))
        .await
        .unwrap_or_else(|_| {
            Err(PublishError::Retry(format!("publishing the CRL took longer than {PUBLISH_TIMEOUT:?}")))
        });
    match published {
        Ok(published) => match published.added {
            Some(Added::Present(existing)) if existing.by != by => {
                facts.revoked_at = Some(from_unix(existing.revoked_at));
                Verdict::Refused {
                    reason: reasons::ALREADY_REVOKED,
                    message: format!(
                        "serial {} of issuer {label} was already revoked{}; nothing changed",
                        facts.serial,
                        if existing.by == BY_DELETION {
                            " when its Certificate was deleted"
                        } else {
                            " by another revocation"
                        }
                    ),
                    facts: Some(facts),
                }
            }
            Some(Added::Present(existing)) => {
                facts.revoked_at = Some(from_unix(existing.revoked_at));
                Verdict::Revoked(facts)
            }
            _ => {
                count_revocation(ctx, &target.key, "revocation");
                facts.revoked_at = Some(from_unix(unix(now)));
                Verdict::Revoked(facts)
            }
        },
        Err(PublishError::Retry(message)) => waiting(reasons::PENDING, message, Duration::from_secs(5)),
        // A full ledger or a namespace at its quota changes only as entries expire.
        Err(PublishError::Broken { reason, message })
            if [reasons::LEDGER_QUOTA, reasons::LEDGER_FULL].contains(&reason) =>
        {
            waiting(reason, message, Duration::from_secs(300))
        }
        Err(PublishError::Broken { reason, message }) => waiting(reason, message, Duration::from_secs(30)),
    }
}

fn count_revocation<S: Signer>(ctx: &Context<S>, key: &IssuerKey, how: &str) {
    ctx.metrics
        .revocations
        .get_or_create(&ResultLabels {
            kind: ctx.config.kinds.kind(key.scope).to_owned(),
            namespace: key.namespace.clone().unwrap_or_default(),
            name: key.name.clone(),
            reason: how.to_owned(),
        })
        .inc();
}

/// Finds what the spec names: exactly one of a CertificateRequest, a Certificate or a serial.
async fn resolve<S: Signer>(
    ctx: &Context<S>,
    namespace: &str,
    spec: &CertificateRevocationSpec,
) -> Result<Target, Verdict> {
    let named = usize::from(spec.certificate_ref.is_some())
        + usize::from(spec.certificate_request_ref.is_some())
        + usize::from(spec.serial_number.is_some());
    if named != 1 {
        return Err(refused(
            reasons::INVALID_SPEC,
            "name exactly one of spec.certificateRef, spec.certificateRequestRef or spec.serialNumber (with spec.issuerRef)",
        ));
    }
    if spec.issuer_ref.is_some() != spec.serial_number.is_some() {
        return Err(refused(reasons::INVALID_SPEC, "spec.issuerRef goes with spec.serialNumber, and only with it"));
    }
    if let Some(reference) = &spec.certificate_request_ref {
        let what = format!("CertificateRequest {namespace}/{}", reference.name);
        let api: Api<CertificateRequest> = Api::namespaced(ctx.client.clone(), namespace);
        let request = match api.get_opt(&reference.name).await {
            Ok(Some(request)) => request,
            Ok(None) => return Err(refused(reasons::NOT_FOUND, format!("{what} does not exist"))),
            Err(e) => return Err(waiting(reasons::PENDING, format!("reading {what}: {e}"), Duration::from_secs(5))),
        };
        return from_request(ctx, namespace, &request, what);
    }
    if let Some(reference) = &spec.certificate_ref {
        let request = current_request(ctx, namespace, &reference.name).await?;
        let what = format!("Certificate {namespace}/{} (CertificateRequest {})", reference.name, request.name_any());
        return from_request(ctx, namespace, &request, what);
    }
    // By serial number, for whoever may act for the issuer.
    let serial = parse_serial(spec.serial_number.as_deref().unwrap_or_default())
        .map_err(|e| refused(reasons::INVALID_SPEC, format!("spec.serialNumber: {e}")))?;
    let reference =
        spec.issuer_ref.as_ref().ok_or_else(|| refused(reasons::INVALID_SPEC, "spec.issuerRef is missing"))?;
    let kinds = &ctx.config.kinds;
    let group = reference.group.as_deref().unwrap_or(&kinds.group);
    let Some(scope) = kinds.scope_of(Some(group), reference.kind.as_deref()) else {
        return Err(refused(
            reasons::FOREIGN_ISSUER,
            format!(
                "spec.issuerRef names {} of group {group}, which this controller does not serve (it serves {} and {} of {})",
                reference.kind.as_deref().unwrap_or("an issuer"),
                kinds.namespaced,
                kinds.cluster,
                kinds.group
            ),
        ));
    };
    let key = match scope {
        IssuerScope::Namespaced => {
            IssuerKey { scope, namespace: Some(namespace.to_owned()), name: reference.name.clone() }
        }
        IssuerScope::Cluster => {
            let allowed = &ctx.config.cluster_resource_namespace;
            if namespace != allowed {
                return Err(refused(
                    reasons::FORBIDDEN,
                    format!(
                        "a serial number of cluster issuer {} may be revoked only from the cluster resource namespace {allowed}; from namespace {namespace}, revoke by certificateRef or certificateRequestRef",
                        reference.name
                    ),
                ));
            }
            IssuerKey { scope, namespace: None, name: reference.name.clone() }
        }
    };
    Ok(Target { key, leaf: None, what: format!("serial {}", hex(&serial)), serial })
}

/// The target of a CertificateRequest of `namespace`: its issuer must be one of ours and it
/// must carry a certificate.
fn from_request<S: Signer>(
    ctx: &Context<S>,
    namespace: &str,
    request: &CertificateRequest,
    what: String,
) -> Result<Target, Verdict> {
    let issuer_ref = &request.spec.issuer_ref;
    let kinds = &ctx.config.kinds;
    let Some(scope) = kinds.scope_of(issuer_ref.group.as_deref(), issuer_ref.kind.as_deref()) else {
        return Err(refused(
            reasons::NOT_ISSUED_BY_US,
            format!(
                "{what} was issued by {} {} of group {}, not by this controller",
                issuer_ref.kind.as_deref().unwrap_or("an issuer"),
                issuer_ref.name,
                issuer_ref.group.as_deref().unwrap_or("cert-manager.io")
            ),
        ));
    };
    let certificate = request.status.as_ref().map(|s| s.certificate.as_slice()).unwrap_or_default();
    let Some(leaf) = first_certificate(certificate) else {
        return Err(waiting(reasons::NOT_ISSUED, format!("{what} has no certificate yet"), Duration::from_secs(30)));
    };
    let facts = LeafFacts::parse(&leaf).map_err(|e| refused(reasons::NOT_ISSUED_BY_US, format!("{what}: {e}")))?;
    // The certificate must be the one issued for this request: its key is the CSR's (whose
    // self-signature proves the requester held it). A status filled in by hand with another
    // namespace's certificate is refused.
    let csr = crate::x509::parse_csr(&request.spec.request).map_err(|e| {
        refused(
            reasons::NOT_ISSUED_BY_US,
            format!("the CSR of {what} does not read ({e}), so its certificate cannot be tied to it"),
        )
    })?;
    if csr.public_key_info() != facts.public_key_info.as_slice() {
        return Err(refused(
            reasons::NOT_ISSUED_BY_US,
            format!(
                "the certificate in the status of {what} is not for the key of its CSR: it was not issued for this request"
            ),
        ));
    }
    let (serial, not_after) = (facts.serial, facts.not_after);
    let key = IssuerKey {
        scope,
        namespace: (scope == IssuerScope::Namespaced).then(|| namespace.to_owned()),
        name: issuer_ref.name.clone(),
    };
    Ok(Target { key, leaf: Some((leaf, not_after)), serial, what })
}

/// The first certificate (DER) of a PEM chain.
fn first_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem).next()?.ok().map(|der| der.to_vec())
}

/// cert-manager's Certificate resource.
pub(super) fn certificates() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate"), "certificates")
}

/// The CertificateRequest of a Certificate's current revision: owned by it (by UID) and
/// annotated with its name and revision, as cert-manager creates them.
async fn current_request<S: Signer>(
    ctx: &Context<S>,
    namespace: &str,
    name: &str,
) -> Result<CertificateRequest, Verdict> {
    let what = format!("Certificate {namespace}/{name}");
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &certificates());
    let certificate = match api.get_opt(name).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(refused(reasons::NOT_FOUND, format!("{what} does not exist"))),
        Err(e) => return Err(waiting(reasons::PENDING, format!("reading {what}: {e}"), Duration::from_secs(5))),
    };
    let Some(revision) = certificate.data.pointer("/status/revision").and_then(serde_json::Value::as_i64) else {
        return Err(waiting(reasons::NOT_ISSUED, format!("{what} has not been issued yet"), Duration::from_secs(30)));
    };
    let uid = certificate.metadata.uid.clone().unwrap_or_default();
    let requests: Api<CertificateRequest> = Api::namespaced(ctx.client.clone(), namespace);
    let mut params = ListParams::default().limit(200);
    loop {
        let page = requests.list(&params).await.map_err(|e| {
            waiting(reasons::PENDING, format!("listing CertificateRequests: {e}"), Duration::from_secs(5))
        })?;
        let found = page.items.into_iter().find(|request| {
            let annotation = |key: &str| request.annotations().get(key).cloned();
            let owned = request.owner_references().iter().any(|o| o.uid == uid && o.kind == "Certificate");
            owned
                && annotation("cert-manager.io/certificate-name").as_deref() == Some(name)
                && annotation("cert-manager.io/certificate-revision") == Some(revision.to_string())
        });
        if let Some(request) = found {
            return Ok(request);
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => {
                return Err(refused(
                    reasons::NOT_FOUND,
                    format!("{what} is at revision {revision}, but no CertificateRequest of that revision exists"),
                ));
            }
        }
    }
}

/// Writes the `Revoked` condition and the facts, unless the status says this already; an event
/// when the condition changes.
async fn write_status<S: Signer>(
    ctx: &Context<S>,
    revocation: &CertificateRevocation,
    verdict: &Verdict,
) -> Result<(), Error> {
    let (status, reason, message, facts) = match verdict {
        Verdict::Revoked(facts) => (
            ConditionStatus::True,
            reasons::REVOKED,
            format!("serial {} is on the CRL of issuer {}", facts.serial, facts.issuer),
            Some(facts),
        ),
        Verdict::Refused { reason, message, facts } => {
            (ConditionStatus::False, *reason, message.clone(), facts.as_ref())
        }
        Verdict::Waiting { reason, message, .. } => (ConditionStatus::False, *reason, message.clone(), None),
    };
    let previous = revocation.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == REVOKED_CONDITION));
    let now = to_time(SystemTime::now());
    let condition = Condition::transition(
        REVOKED_CONDITION,
        status,
        reason,
        message.clone(),
        revocation.metadata.generation,
        previous,
        now,
    );
    let time = |t: SystemTime| to_time(t).0.to_string();
    let unchanged = previous.is_some_and(|p| p.same_meaning(&condition))
        && revocation.status.as_ref().and_then(|s| s.serial_number.clone()) == facts.map(|f| f.serial.clone());
    if unchanged {
        return Ok(());
    }
    let ar = crate::revocation::api_resource(&ctx.config.kinds);
    let mut body = json!({
        "apiVersion": ar.api_version,
        "kind": crate::revocation::REVOCATION_KIND,
        "status": { "conditions": [condition] },
    });
    if let Some(facts) = facts {
        body["status"]["serialNumber"] = json!(facts.serial);
        body["status"]["issuer"] = json!(facts.issuer);
        body["status"]["notAfter"] = json!(time(facts.not_after));
        if let Some(at) = facts.revoked_at {
            body["status"]["revokedAt"] = json!(time(at));
        }
    }
    ctx.may_write()?;
    let namespace = revocation.metadata.namespace.clone().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &namespace, &ar);
    let params = PatchParams::apply(&ctx.config.field_manager).force();
    api.patch_status(&revocation.name_any(), &params, &Patch::Apply(body)).await?;
    debug!(revocation = %revocation.name_any(), %namespace, reason, "revocation status written");
    if previous.is_none_or(|p| p.status != condition.status || p.reason != condition.reason) {
        let reference = revocation.object_ref(&ar);
        ctx.event(&reference, status != ConditionStatus::True, reason, message, "Revoke");
    }
    Ok(())
}

/// A CertificateRequest was deleted: if its Certificate is gone (or going) and its issuer
/// revokes on deletion, its certificate is revoked with reason `cessationOfOperation`. A request
/// deleted on its own (cert-manager trimming old revisions) revokes nothing.
pub(crate) fn on_request_deleted<S: Signer>(ctx: Arc<Context<S>>, request: &CertificateRequest) {
    let Some(owner) = request
        .owner_references()
        .iter()
        .find(|o| o.kind == "Certificate" && o.api_version.starts_with("cert-manager.io/"))
        .cloned()
    else {
        return;
    };
    let has_certificate = request.status.as_ref().is_some_and(|s| !s.certificate.is_empty());
    let ours = ctx
        .config
        .kinds
        .scope_of(request.spec.issuer_ref.group.as_deref(), request.spec.issuer_ref.kind.as_deref())
        .is_some();
    if !has_certificate || !ours || ctx.may_write().is_err() {
        return;
    }
    // cert-manager deletes old revisions all the time: only issuers that ask go further.
    let namespace = request.metadata.namespace.clone().unwrap_or_default();
    let asks = |key: &IssuerKey| {
        ctx.issuer(key).is_some_and(|issuer| {
            let crl = issuer.spec.valid().and_then(|spec| ctx.signer.revocation(spec));
            crl.is_some_and(|crl| crl.revoke_on_certificate_deletion)
        })
    };
    let scope =
        ctx.config.kinds.scope_of(request.spec.issuer_ref.group.as_deref(), request.spec.issuer_ref.kind.as_deref());
    let key = scope.map(|scope| IssuerKey {
        scope,
        namespace: (scope == IssuerScope::Namespaced).then(|| namespace.clone()),
        name: request.spec.issuer_ref.name.clone(),
    });
    if !key.as_ref().is_some_and(asks) {
        return;
    }
    let request = request.clone();
    tokio::spawn(async move {
        let what = format!("CertificateRequest {namespace}/{}", request.name_any());
        let Ok(target) = from_request(&ctx, &namespace, &request, what.clone()) else { return };
        let Some(issuer) = ctx.issuer(&target.key) else { return };
        let Some(spec) = issuer.spec.valid() else { return };
        // Only when the Certificate itself is gone or going.
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &namespace, &certificates());
        let gone = match api.get_opt(&owner.name).await {
            Ok(None) => true,
            Ok(Some(c)) => {
                c.metadata.uid.as_deref() != Some(owner.uid.as_str()) || c.metadata.deletion_timestamp.is_some()
            }
            Err(e) => {
                warn!(%what, error = %e, "could not read the Certificate of a deleted request; not revoking");
                false
            }
        };
        if !gone {
            return;
        }
        let issuer_ctx = ctx.issuer_context(&target.key, spec);
        let (Some((leaf, not_after)), Ok(ca)) =
            (target.leaf.as_ref(), ctx.signer.issuing_certificate(&issuer_ctx).await)
        else {
            return;
        };
        if issued_by(leaf, &ca).is_err() || *not_after < SystemTime::now() {
            return;
        }
        let entry = Entry {
            revoked_at: unix(SystemTime::now()),
            reason: RevocationReason::from(Reason::CessationOfOperation),
            not_after: unix(*not_after),
            namespace: namespace.clone(),
            by: BY_DELETION.into(),
        };
        // Tried a few times: nothing else will ask again, so a failure is said on the issuer.
        let mut failure = String::new();
        for attempt in 0..5u32 {
            let change = Some((target.serial.clone(), entry.clone()));
            match publish_for(&ctx, &target.key, &issuer, change, Some(ca.clone())).await {
                Ok(published) => {
                    if published.added == Some(Added::New) {
                        count_revocation(&ctx, &target.key, "deletion");
                        info!(%what, serial = %hex(&target.serial), "revoked: its Certificate was deleted");
                    }
                    return;
                }
                Err(PublishError::Retry(message)) => {
                    failure = message;
                    tokio::time::sleep(Duration::from_secs(2u64.pow(attempt))).await;
                }
                Err(error @ PublishError::Broken { .. }) => {
                    failure = error.to_string();
                    break;
                }
            }
        }
        warn!(%what, serial = %hex(&target.serial), error = %failure, "its Certificate was deleted, but it could not be revoked");
        let reference = issuer.object_ref(&ctx.config.kinds.api_resource(target.key.scope));
        let note = format!(
            "the certificate of {what} (serial {}) was not revoked when its Certificate was deleted: {failure}; revoke it with a CertificateRevocation by serialNumber",
            hex(&target.serial)
        );
        ctx.event(&reference, true, "CertificateNotRevoked", note, "Revoke");
    });
}
