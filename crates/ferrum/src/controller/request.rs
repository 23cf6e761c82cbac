//! The CertificateRequest controller: carries out [`crate::decision`] for each request.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use tracing::{debug, info, warn};

use super::context::Context;
use super::issuer::mark_not_ready;
use super::status::{ISSUED_MESSAGE, Outcome, request_status_patch};
use crate::Error;
use crate::api::{CertificateRequest, IssuerScope, WatchedIssuer};
use crate::backoff::Retry;
use crate::decision::{Decision, Gate, IssuerKey, decide, gate, is_terminal, issuer_readiness};
use crate::metrics::KindLabels;
use crate::signer::{IssuerContext, SignError, SignRequest, Signer, Warning};

/// Reconciles one request.
pub(super) async fn reconcile<S: Signer>(
    request: Arc<CertificateRequest>,
    ctx: Arc<Context<S>>,
) -> Result<Action, Error> {
    let uid = request.metadata.uid.clone().unwrap_or_default();
    let key = match gate(&request, &ctx.config.kinds, ctx.config.approval_check) {
        Gate::NotOurs | Gate::AwaitApproval => return Ok(Action::await_change()),
        Gate::Done => {
            if let Some(problems) = request.status.as_ref().map(|s| &s.problems).filter(|p| !p.is_empty()) {
                warn!(request = %request.name_any(), namespace = request.namespace().unwrap_or_default(), ?problems,
                    "the request's status cannot be read; it is left alone (it may already carry a certificate)");
            }
            ctx.forget_finished(&uid);
            ctx.retries.forget(&uid);
            return Ok(Action::await_change());
        }
        _ if ctx.finished_unseen(&uid) => return Ok(Action::await_change()),
        Gate::Deny => {
            finish(&ctx, &request, Outcome::Denied).await?;
            return Ok(Action::await_change());
        }
        Gate::Proceed(key) => key,
    };
    // The issuer cache is fed by this controller's own issuer watch: until it has listed once,
    // "not found" would be a guess.
    super::wait_synced(ctx.store(key.scope)).await;
    let kind = ctx.config.kinds.kind(key.scope).to_owned();
    let issuer = ctx.issuer(&key);
    let spec = issuer.as_ref().and_then(|i| i.spec.valid());
    let names = spec.map(|spec| ctx.signer.name_policy(spec)).unwrap_or_default();
    match decide(&request, &key, &kind, issuer_readiness(issuer.as_deref()), &names) {
        Decision::WaitForIssuer(message) => {
            write(&ctx, &request, &Outcome::Pending(message)).await?;
            Ok(Action::await_change())
        }
        Decision::Fail(message) => {
            finish(&ctx, &request, Outcome::Failed(message)).await?;
            Ok(Action::await_change())
        }
        Decision::Sign(checked) => {
            if let Some(remaining) = ctx.retries.backoff_remaining(&uid, SystemTime::now()) {
                return Ok(Action::requeue(remaining));
            }
            let (Some(issuer), Some(spec)) = (issuer.as_ref(), spec) else {
                return Ok(Action::requeue(Duration::from_secs(1)));
            };
            let (csr, template) = &*checked;
            let sign_request = SignRequest {
                namespace: request.metadata.namespace.as_deref().unwrap_or_default(),
                name: request.metadata.name.as_deref().unwrap_or_default(),
                uid: &uid,
                csr,
                template,
            };
            let issuer_ctx = IssuerContext {
                scope: key.scope,
                name: &key.name,
                secret_namespace: ctx.secret_namespace(key.scope, key.namespace.as_deref()),
                spec,
            };
            let started = std::time::Instant::now();
            let result = ctx.signer.sign(&sign_request, &issuer_ctx).await;
            ctx.metrics
                .signing_seconds
                .get_or_create(&KindLabels { kind: kind.clone() })
                .observe(started.elapsed().as_secs_f64());
            handle_signing(&ctx, &request, &key, &kind, issuer, result).await
        }
    }
}

async fn handle_signing<S: Signer>(
    ctx: &Context<S>,
    request: &CertificateRequest,
    key: &IssuerKey,
    kind: &str,
    issuer: &WatchedIssuer<S::Spec>,
    result: Result<crate::signer::Signed, SignError>,
) -> Result<Action, Error> {
    let uid = request.metadata.uid.as_deref().unwrap_or_default();
    match result {
        Ok(signed) => {
            let outcome = Outcome::Issued { chain_pem: signed.chain_pem, ca_pem: signed.ca_pem };
            finish_with(ctx, request, outcome, &signed.warnings).await?;
            Ok(Action::await_change())
        }
        Err(SignError::Permanent(message)) => {
            finish(ctx, request, Outcome::Failed(format!("The issuer refused the request: {message}"))).await?;
            Ok(Action::await_change())
        }
        Err(SignError::Retryable(message)) => match ctx.retries.failed(uid, SystemTime::now(), rand::random()) {
            Retry::After(delay) => {
                debug!(%message, ?delay, "signing failed; retrying");
                write(ctx, request, &Outcome::Pending(format!("Signing failed, will retry: {message}"))).await?;
                Ok(Action::requeue(delay))
            }
            Retry::GiveUp(elapsed) => {
                let message = format!(
                    "Signing kept failing for {}s (limit {}s): {message}",
                    elapsed.as_secs(),
                    ctx.config.max_retry_duration.as_secs()
                );
                finish(ctx, request, Outcome::Failed(message)).await?;
                Ok(Action::await_change())
            }
        },
        Err(SignError::Pending { message, retry_after }) => {
            write(ctx, request, &Outcome::Pending(message)).await?;
            Ok(Action::requeue(retry_after))
        }
        Err(SignError::IssuerBroken(error)) => {
            warn!(issuer = %key, reason = %error.reason, "signer reports the issuer broken");
            mark_not_ready(ctx, key.scope, issuer, &error).await?;
            let message = format!("Referenced {kind} {key} is not ready: {}: {}", error.reason, error.message);
            write(ctx, request, &Outcome::Pending(message)).await?;
            Ok(Action::await_change())
        }
    }
}

/// Writes a terminal outcome, remembers it, and publishes its event.
async fn finish<S: Signer>(ctx: &Context<S>, request: &CertificateRequest, outcome: Outcome) -> Result<(), Error> {
    finish_with(ctx, request, outcome, &[]).await
}

/// [`finish`], folding the signer's warnings into the one event: a successful issuance costs
/// one status write and one event, a Warning naming the first warning's reason if there are any.
async fn finish_with<S: Signer>(
    ctx: &Context<S>,
    request: &CertificateRequest,
    outcome: Outcome,
    warnings: &[Warning],
) -> Result<(), Error> {
    let uid = request.metadata.uid.as_deref().unwrap_or_default();
    if !write(ctx, request, &outcome).await? {
        return Ok(());
    }
    ctx.mark_finished(uid);
    ctx.retries.forget(uid);
    let (warning, reason, note) = match &outcome {
        Outcome::Issued { .. } if !warnings.is_empty() => {
            let notes: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
            (true, warnings[0].reason.as_str(), format!("{ISSUED_MESSAGE}; {}", notes.join("; ")))
        }
        Outcome::Issued { .. } => (false, outcome.reason(), ISSUED_MESSAGE.to_owned()),
        Outcome::Denied => (true, outcome.reason(), super::status::DENIED_MESSAGE.to_owned()),
        Outcome::Failed(message) => (true, outcome.reason(), message.clone()),
        Outcome::Pending(message) => (false, outcome.reason(), message.clone()),
    };
    info!(request = %request.name_any(), namespace = request.namespace().unwrap_or_default(), reason, "request finished");
    ctx.event(&request.object_ref(&()), warning, reason, note, "Sign");
    Ok(())
}

/// Applies the status for `outcome` if it changes anything. Returns whether it wrote.
async fn write<S: Signer>(ctx: &Context<S>, request: &CertificateRequest, outcome: &Outcome) -> Result<bool, Error> {
    let Some(patch) = request_status_patch(request, outcome, Time(Timestamp::now())) else {
        return Ok(false);
    };
    let api: Api<CertificateRequest> =
        Api::namespaced(ctx.client.clone(), request.metadata.namespace.as_deref().unwrap_or_default());
    let params = PatchParams::apply(&ctx.config.field_manager).force();
    api.patch_status(&request.name_any(), &params, &Patch::Apply(patch)).await?;
    ctx.count_result(request, outcome.reason());
    ctx.metrics.retries_waiting.set(ctx.retries.waiting() as i64);
    Ok(true)
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
            .filter(|r| {
                let issuer_ref = &r.spec.issuer_ref;
                issuer_ref.name == name
                    && ctx.config.kinds.scope_of(issuer_ref.group.as_deref(), issuer_ref.kind.as_deref()) == Some(scope)
                    && (scope == IssuerScope::Cluster || r.namespace() == namespace)
                    && !is_terminal(r)
            })
            .map(|r| ObjectRef::from_obj(r.as_ref()))
            .collect()
    }
}

/// Requeues a request whose reconcile failed (API errors: conflicts, timeouts).
pub(super) fn error_policy<S: Signer>(
    request: Arc<CertificateRequest>,
    error: &Error,
    _ctx: Arc<Context<S>>,
) -> Action {
    warn!(request = %request.name_any(), namespace = request.namespace().unwrap_or_default(), %error, "reconcile failed; retrying");
    if error.is_conflict() {
        Action::requeue(Duration::from_millis(500))
    } else {
        Action::requeue(Duration::from_secs(5))
    }
}
