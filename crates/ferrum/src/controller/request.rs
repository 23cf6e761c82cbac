//! The CertificateRequest controller: carries out [`crate::decision`] for each request.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use tracing::{debug, info, warn};

use super::context::Context;
use super::issuer::{compiled_policy, write_issuer_status};
use super::settle::{Attempt, RetryUpdate, Settlement, settle_outcome, settle_signing};
use super::status::Outcome;
use crate::Error;
use crate::api::{CertificateRequest, IssuerScope, WatchedIssuer};
use crate::backoff::RetryState;
use crate::decision::{CheckedRequest, Decision, Gate, IssuerReadiness, decide, gate, issuer_readiness, waits_on};
use crate::metrics::KindLabels;
use crate::policy::IssuerPolicy;
use crate::signer::{SignRequest, Signer};

/// Reconciles one request.
pub(super) async fn reconcile<S: Signer>(
    cached: Arc<CertificateRequest>,
    ctx: Arc<Context<S>>,
) -> Result<Action, Error> {
    let uid = cached.metadata.uid.clone().unwrap_or_default();
    match gate(&cached, &ctx.config.kinds, ctx.config.approval_check) {
        Gate::NotOurs | Gate::AwaitApproval => return Ok(Action::await_change()),
        Gate::Done => return Ok(settled(&ctx, &cached, &uid)),
        _ if ctx.finished_unseen(&uid) => return Ok(Action::await_change()),
        Gate::Deny => {
            let settled = settle_outcome(&cached, Outcome::Denied, &[], SystemTime::now());
            return apply(&ctx, &cached, settled).await;
        }
        Gate::Proceed(_) => {}
    }
    // A request backing off waits it out, whatever woke it (our own Pending write, say).
    if let Some(remaining) = ctx.retries.backoff_remaining(&uid, Instant::now()) {
        return Ok(Action::requeue(remaining));
    }
    // A signable request is cached whole; one cached before it became signable (approval
    // with no watch event since, say) is not: read it then.
    let request = if cached.spec.request.is_empty() {
        let api: Api<CertificateRequest> =
            Api::namespaced(ctx.client.clone(), cached.metadata.namespace.as_deref().unwrap_or_default());
        let Some(request) = api.get_opt(&cached.name_any()).await? else {
            ctx.forget_request(&uid);
            return Ok(Action::await_change());
        };
        if request.metadata.uid.as_deref() != Some(uid.as_str()) {
            // Deleted and created again under the same name: the new one has its own event.
            ctx.forget_request(&uid);
            return Ok(Action::await_change());
        }
        request
    } else {
        CertificateRequest::clone(&cached)
    };
    let key = match gate(&request, &ctx.config.kinds, ctx.config.approval_check) {
        Gate::Proceed(key) => key,
        Gate::Done => return Ok(settled(&ctx, &request, &uid)),
        // Changed since the cache saw it (approval withdrawn, denied, issuer changed): the
        // watch brings that change as an event of its own.
        _ => return Ok(Action::await_change()),
    };
    // The issuer cache is fed by this controller's own issuer watch: until it has listed once,
    // "not found" would be a guess.
    super::wait_synced(ctx.store(key.scope)).await;
    let kind = ctx.config.kinds.kind(key.scope).to_owned();
    let issuer = ctx.issuer(&key);
    let spec = issuer.as_ref().and_then(|i| i.spec.valid());
    let readiness = issuer_readiness(issuer.as_deref());
    let policy = match spec {
        Some(spec) => compiled_policy(&ctx.signer, spec, key.scope),
        None => IssuerPolicy::default().compile(key.scope),
    };
    // A cluster issuer that selects namespaces needs the request namespace's labels; read
    // them only for a request that would otherwise be judged now.
    let labels = match &policy {
        Ok(p) if p.needs_namespace_labels() && readiness == IssuerReadiness::Ready => {
            let namespace = request.metadata.namespace.as_deref().unwrap_or_default();
            match ctx.namespace_labels(namespace).await {
                Ok(labels) => Some(labels),
                Err(e) => {
                    // Not a verdict on the request: say why it waits, and look again.
                    let message = format!(
                        "cannot read the labels of namespace {namespace}, which the issuer's spec.policy.namespaceSelector needs: {e}"
                    );
                    warn!(request = %request.name_any(), namespace, error = %e, "reading namespace labels failed");
                    let settled = settle_outcome(&request, Outcome::Pending(message), &[], SystemTime::now());
                    return apply(&ctx, &request, Settlement { requeue: Some(Duration::from_secs(5)), ..settled })
                        .await;
                }
            }
        }
        _ => None,
    };
    match decide(&request, &key, &kind, readiness, policy.as_ref(), labels.as_ref()) {
        Decision::WaitForIssuer(message) => {
            apply(&ctx, &request, settle_outcome(&request, Outcome::Pending(message), &[], SystemTime::now())).await
        }
        Decision::WaitBriefly(message) => {
            let settled = settle_outcome(&request, Outcome::Pending(message), &[], SystemTime::now());
            apply(&ctx, &request, Settlement { requeue: Some(Duration::from_secs(2)), ..settled }).await
        }
        Decision::Fail(message) => {
            apply(&ctx, &request, settle_outcome(&request, Outcome::Failed(message), &[], SystemTime::now())).await
        }
        Decision::Sign(checked) => {
            let (Some(issuer), Some(spec)) = (issuer.as_ref(), spec) else {
                return Ok(Action::requeue(Duration::from_secs(1)));
            };
            let CheckedRequest { csr, template, warnings, .. } = &*checked;
            let secret_namespace = ctx.secret_namespace(key.scope, key.namespace.as_deref());
            let distribution_point = ctx.signer.revocation(spec).and_then(|crl| {
                crate::revocation::distribution_point(&ctx.config.kinds, key.scope, secret_namespace, &key.name, crl)
            });
            let sign_request = SignRequest {
                namespace: request.metadata.namespace.as_deref().unwrap_or_default(),
                name: request.metadata.name.as_deref().unwrap_or_default(),
                uid: &uid,
                csr,
                template,
                crl_distribution_point: distribution_point.as_deref(),
            };
            let mut issuer_ctx = ctx.issuer_context(&key, spec);
            // After a staged switch the next CA signs (see `crate::rotation`).
            let rotation = issuer.status.as_ref().and_then(|s| s.rotation.as_ref());
            if let Some(rotation) = rotation {
                issuer_ctx.active = rotation.active();
            }
            // A certificate signed before whose write conflicted is written now, never signed
            // twice (a request is signed at most once, contract row 2).
            let result = match ctx.unwritten(&uid) {
                Some(signed) => {
                    debug!(request = %request.name_any(), "writing the certificate signed before");
                    Ok(signed)
                }
                None => {
                    ctx.may_write()?;
                    let started = std::time::Instant::now();
                    let mut result = ctx.signer.sign(&sign_request, &issuer_ctx).await;
                    // What the policy changed is said with what the signer changed.
                    if let Ok(signed) = &mut result {
                        signed.warnings.splice(0..0, warnings.iter().cloned());
                        // A leaf of the rotation's new root is followed by its cross-certificate,
                        // for clients that trust only the old root.
                        if let Some(cross) = rotation.and_then(|r| crate::rotation::cross_chain(r, &signed.ca_pem)) {
                            signed.chain_pem.push_str(cross);
                        }
                        // The roots clients need: the current one and, unless the issuer asks
                        // for the current one only, every earlier one still needed.
                        let mode = ctx.signer.trust_bundle(spec).map(|b| b.mode).unwrap_or_default();
                        if mode == crate::trust::BundleMode::Overlap {
                            let generations =
                                issuer.status.as_ref().map(|s| s.ca_generations.as_slice()).unwrap_or_default();
                            signed.ca_pem = crate::trust::bundle(&signed.ca_pem, generations, SystemTime::now());
                        }
                    }
                    ctx.metrics
                        .signing_seconds
                        .get_or_create(&KindLabels { kind: kind.clone() })
                        .observe(started.elapsed().as_secs_f64());
                    if let Ok(signed) = &result {
                        ctx.keep_unwritten(&uid, signed.clone());
                    }
                    result
                }
            };
            let attempt = Attempt {
                request: &request,
                issuer,
                key: &key,
                kinds: &ctx.config.kinds,
                retry: ctx.retries.state(&uid).or_else(|| RetryState::recorded(&request, SystemTime::now())),
                max_retry: ctx.config.max_retry_duration,
                jitter: rand::random(),
                now: SystemTime::now(),
            };
            let settled = settle_signing(&attempt, result);
            if let Some(patch) = &settled.issuer_patch {
                warn!(issuer = %key, "signer reports the issuer broken");
                write_issuer_status(&ctx, key.scope, issuer, patch.clone()).await?;
            }
            apply(&ctx, &request, settled).await
        }
    }
}

/// A request found settled: forget it (its status is not ours to touch again).
fn settled<S: Signer>(ctx: &Context<S>, request: &CertificateRequest, uid: &str) -> Action {
    if let Some(problems) = request.status.as_ref().map(|s| &s.problems).filter(|p| !p.is_empty()) {
        warn!(request = %request.name_any(), namespace = request.namespace().unwrap_or_default(), ?problems,
            "the request's status cannot be read; it is left alone (it may already carry a certificate)");
    }
    ctx.forget_request(uid);
    Action::await_change()
}

/// Applies a settlement: the request's status (if it changes), then, once written, the
/// bookkeeping, the metrics and the event. Returns when to look again.
async fn apply<S: Signer>(
    ctx: &Context<S>,
    request: &CertificateRequest,
    settled: Settlement,
) -> Result<Action, Error> {
    let uid = request.metadata.uid.as_deref().unwrap_or_default();
    // A failure is recorded at once (the backoff holds even if the write below fails); the
    // state is forgotten only once the settling write went through, so that a conflict on it
    // does not restart the retry clock.
    match settled.retry {
        RetryUpdate::Failed { state, wait } => ctx.retries.record(uid, state, wait),
        RetryUpdate::Wait { wait } => ctx.retries.hold_off(uid, wait),
        RetryUpdate::Keep | RetryUpdate::Forget => {}
    }
    let forget = settled.retry == RetryUpdate::Forget;
    let action = settled.requeue.map(Action::requeue).unwrap_or_else(Action::await_change);
    let terminal = settled.terminal();
    let Some(patch) = settled.request_patch else {
        if forget {
            ctx.retries.forget(uid);
        }
        return Ok(action);
    };
    let api: Api<CertificateRequest> =
        Api::namespaced(ctx.client.clone(), request.metadata.namespace.as_deref().unwrap_or_default());
    let params = PatchParams::apply(&ctx.config.field_manager).force();
    ctx.may_write()?;
    api.patch_status(&request.name_any(), &params, &Patch::Apply(patch)).await?;
    if forget {
        ctx.retries.forget(uid);
    }
    if terminal {
        ctx.written(uid);
    }
    let reason = settled.outcome.reason();
    ctx.count_result(request, reason);
    ctx.count_deviations(request, &settled.deviations);
    ctx.metrics.retries_waiting.set(ctx.retries.waiting() as i64);
    if terminal {
        ctx.mark_finished(uid);
        info!(request = %request.name_any(), namespace = request.namespace().unwrap_or_default(), reason, "request finished");
    } else {
        debug!(request = %request.name_any(), reason, "request waiting");
    }
    if let Some(event) = settled.event {
        ctx.event(&request.object_ref(&()), event.warning, &event.reason, event.note, "Sign");
    }
    Ok(action)
}

/// Maps an issuer change to the non-terminal requests that reference it.
pub(super) fn mapper<S: Signer>(
    ctx: Arc<Context<S>>,
    requests: Store<CertificateRequest>,
    scope: IssuerScope,
) -> impl Fn(WatchedIssuer<S::Spec>) -> Vec<ObjectRef<CertificateRequest>> + Send + Sync + 'static {
    move |issuer| {
        let name = issuer.name_any();
        let namespace = issuer.namespace();
        requests
            .state()
            .iter()
            .filter(|r| waits_on(r, &ctx.config.kinds, scope, &name, namespace.as_deref()))
            .map(|r| ObjectRef::from_obj(r.as_ref()))
            .collect()
    }
}

/// Requeues a request whose reconcile failed (API errors: conflicts, timeouts).
pub(super) fn error_policy<S: Signer>(request: Arc<CertificateRequest>, error: &Error, ctx: Arc<Context<S>>) -> Action {
    ctx.count_error("request", error);
    warn!(request = %request.name_any(), namespace = request.namespace().unwrap_or_default(), %error, "reconcile failed; retrying");
    if error.is_conflict() {
        Action::requeue(Duration::from_millis(500))
    } else {
        Action::requeue(Duration::from_secs(5))
    }
}
