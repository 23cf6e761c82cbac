//! The issuer controllers (one per scope): check the backend, write Ready, re-check on spec
//! change, on a change to a referenced Secret, and on a timer.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::context::Context;
use super::status::{TrustStatus, issuer_status_patch};
use crate::Error;
use crate::api::{IssuerScope, Parsed, WatchedIssuer};
use crate::metrics::IssuerLabels;
use crate::policy::{CompiledPolicy, InvalidPolicy};
use crate::signer::{Health, IssuerContext, IssuerError, Signer};

/// The context of one scope's controller.
pub(super) struct Scoped<S: Signer> {
    shared: Arc<Context<S>>,
    scope: IssuerScope,
}

/// The context for the controller of `scope`.
pub(super) fn scoped<S: Signer>(ctx: &Arc<Context<S>>, scope: IssuerScope) -> Arc<Scoped<S>> {
    Arc::new(Scoped { shared: ctx.clone(), scope })
}

/// Builds the controller of one scope, re-triggered by changes to the Secrets issuers use.
pub(super) fn controller<S: Signer>(
    ctx: &Arc<Context<S>>,
    scope: IssuerScope,
    api: Api<WatchedIssuer<S::Spec>>,
    client: &kube::Client,
) -> Controller<WatchedIssuer<S::Spec>> {
    let ar = ctx.config.kinds.api_resource(scope);
    let controller = Controller::new_with(api, watcher::Config::default(), ar.clone());
    let store = controller.store();
    let ctx = ctx.clone();
    // Metadata only: Secret contents (key material) are never cached. Cluster issuers read
    // the cluster resource namespace only, so only its Secrets are watched for them.
    let secrets = match (scope, &ctx.config.namespace) {
        (IssuerScope::Cluster, _) => {
            Api::<PartialObjectMeta<Secret>>::namespaced(client.clone(), &ctx.config.cluster_resource_namespace)
        }
        (IssuerScope::Namespaced, Some(ns)) => Api::<PartialObjectMeta<Secret>>::namespaced(client.clone(), ns),
        (IssuerScope::Namespaced, None) => Api::<PartialObjectMeta<Secret>>::all(client.clone()),
    };
    let mapper = move |secret: PartialObjectMeta<Secret>| {
        let secret_ns = secret.namespace().unwrap_or_default();
        let secret_name = secret.name_any();
        store
            .state()
            .iter()
            .filter(|issuer| {
                let names = issuer.spec.valid().map(|spec| ctx.signer.secret_names(spec)).unwrap_or_default();
                let reads_from = ctx.secret_namespace(scope, issuer.metadata.namespace.as_deref());
                uses_secret(reads_from, &names, &secret_ns, &secret_name)
            })
            .map(|issuer| ObjectRef::from_obj_with(issuer.as_ref(), ar.clone()))
            .collect::<Vec<_>>()
    };
    controller.watches_with(secrets, (), watcher::Config::default(), mapper)
}

/// Whether an issuer that reads Secrets from `reads_from` and names `names` depends on the
/// Secret `namespace/name`: what to re-check when that Secret changes.
fn uses_secret(reads_from: &str, names: &[String], namespace: &str, name: &str) -> bool {
    reads_from == namespace && names.iter().any(|n| n == name)
}

/// Checks one issuer and records the result.
pub(super) async fn reconcile<S: Signer>(
    issuer: Arc<WatchedIssuer<S::Spec>>,
    ctx: Arc<Scoped<S>>,
) -> Result<Action, Error> {
    let shared = &ctx.shared;
    // The policy first: a policy that cannot be applied makes the issuer unusable whatever its
    // backend says. Its summary is published in the status when it can be.
    let policy = issuer.spec.valid().map(|spec| compiled_policy(&shared.signer, spec, ctx.scope));
    let summary = policy.as_ref().and_then(|p| p.as_ref().ok()).map(|p| p.summary());
    let policy_max = policy.as_ref().and_then(|p| p.as_ref().ok()).and_then(|p| p.max_duration());
    let crl_error = issuer.spec.valid().and_then(|spec| {
        let rotation = shared.signer.rotation(spec).map(crate::rotation::check_spec).and_then(Result::err);
        crl_check(&shared.signer, spec).err().or(rotation)
    });
    let result = match (&issuer.spec, policy) {
        (Parsed::Invalid(why), _) => Err(IssuerError::new(crate::reasons::INVALID_SPEC, why.clone())),
        (_, Some(Err(invalid))) => Err(IssuerError::new(crate::reasons::INVALID_POLICY, invalid.message())),
        (Parsed::Valid(_), _) if crl_error.is_some() => {
            Err(IssuerError::new(crate::reasons::INVALID_SPEC, crl_error.unwrap_or_default()))
        }
        (Parsed::Valid(spec), _) => {
            let issuer_ctx = IssuerContext {
                scope: ctx.scope,
                name: issuer.metadata.name.as_deref().unwrap_or_default(),
                secret_namespace: shared.secret_namespace(ctx.scope, issuer.metadata.namespace.as_deref()),
                spec,
                // After a switch the next CA signs: the backend holds it to the issuer's health.
                active: issuer
                    .status
                    .as_ref()
                    .and_then(|s| s.rotation.as_ref())
                    .map(|r| r.active())
                    .unwrap_or_default(),
            };
            shared.signer.check(&issuer_ctx).await
        }
    };
    if let Some(error) = check_not_made(&result, &issuer) {
        // The check could not be made; the issuer was fine at the last one. Keep it Ready
        // and look again soon, instead of failing every request meanwhile.
        warn!(issuer = %issuer.name_any(), reason = %error.reason, message = %error.message,
            "issuer check could not be made; keeping its Ready condition and checking again");
        return Ok(Action::requeue(TRANSIENT_RECHECK));
    }
    // The roots it has signed under (see `crate::trust`) and a staged rotation (see
    // `crate::rotation`), when the backend says which roots.
    let now = std::time::SystemTime::now();
    let rotation_spec = issuer.spec.valid().and_then(|spec| shared.signer.rotation(spec));
    let followed = match &result {
        Ok(health) => match (&health.root, health.expires) {
            (Some(root), Some(expires)) => {
                let current = (root, expires);
                Some(follow_roots(shared, ctx.scope, &issuer, health, current, rotation_spec, policy_max, now).await)
            }
            _ => None,
        },
        Err(_) => None,
    };
    let (mut trust, result) = match followed {
        Some(Err(error)) => (None, Err(error)),
        Some(Ok(followed)) => (Some(followed), result),
        None => (None, result),
    };
    let ready = match &result {
        Ok(health) => Ok(health.message.as_str()),
        Err(e) => Err((e.reason.as_str(), e.message.as_str())),
    };
    // The roots clients need, published where the issuer asks (a ConfigMap) and, where the
    // apiserver serves them, as a ClusterTrustBundle. A next root counts as published once
    // every one of them was written with it.
    let config_map = issuer.spec.valid().and_then(|spec| shared.signer.trust_bundle(spec)?.config_map_name.as_deref());
    let mut cluster_trust_bundle = None;
    if let Some(trust) = trust.as_mut() {
        let mut everywhere = true;
        if let Some(name) = config_map {
            let namespace = shared.secret_namespace(ctx.scope, issuer.metadata.namespace.as_deref());
            if let Err(error) = publish_bundle(shared, namespace, name, &trust.bundle).await {
                warn!(issuer = %issuer.name_any(), %error, "the CA bundle ConfigMap was not written");
                everywhere = false;
            }
        }
        let (said, written) = publish_cluster_trust_bundle(shared, ctx.scope, &issuer, &trust.bundle).await;
        cluster_trust_bundle = Some(said);
        if let (true, true, Some(rotation), Some(spec)) = (everywhere, written, trust.rotation.as_mut(), rotation_spec)
        {
            crate::rotation::bundles_published(rotation, spec, now);
        }
    }
    let status_trust = TrustStatus {
        generations: trust.as_ref().map(|t| t.generations.as_slice()),
        cluster_trust_bundle: cluster_trust_bundle.as_deref(),
        rotation: trust.as_ref().map(|t| t.rotation.as_ref()),
    };
    if write(shared, ctx.scope, &issuer, ready, summary.as_deref(), status_trust).await? {
        match &result {
            Ok(_) => info!(issuer = %issuer.name_any(), "issuer ready"),
            Err(e) => warn!(issuer = %issuer.name_any(), reason = %e.reason, message = %e.message, "issuer not ready"),
        }
        // Each phase change of a rotation is an event, once it is recorded.
        let object = issuer.object_ref(&shared.config.kinds.api_resource(ctx.scope));
        for (reason, message) in trust.iter().flat_map(|t| t.transitions.iter()) {
            shared.event(&object, false, reason, message.clone(), "Rotate");
        }
    }
    let labels = IssuerLabels {
        kind: shared.config.kinds.kind(ctx.scope).to_owned(),
        namespace: issuer.metadata.namespace.clone().unwrap_or_default(),
        name: issuer.name_any(),
    };
    // The series keeps the last CA seen while the issuer exists, also once that CA has expired
    // (that is when an alert on it matters); it goes with the issuer (see `forget_issuer`).
    if let Some(expires) = result.as_ref().ok().and_then(|h| h.expires) {
        let unix = expires.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        shared.metrics.ca_not_after.get_or_create(&labels).set(unix);
    }
    // Each warning is published when it first appears (or changes), not on every re-check.
    let warnings = result.as_ref().map(|h| h.warnings.as_slice()).unwrap_or_default();
    let fresh = shared.fresh_warnings(issuer.metadata.uid.as_deref().unwrap_or_default(), warnings);
    if trust.as_ref().and_then(|t| t.rotation.as_ref()).and_then(|r| r.reissue.as_ref()).is_none() {
        shared.metrics.reissue_remaining.remove(&labels);
    }
    let object = issuer.object_ref(&shared.config.kinds.api_resource(ctx.scope));
    for warning in fresh {
        shared.event(&object, true, &warning.reason, warning.message, "Check");
    }
    match result {
        Err(error) if error.transient => Ok(Action::requeue(TRANSIENT_RECHECK)),
        Err(IssuerError { recheck_after: Some(delay), .. }) => {
            Ok(Action::requeue(delay.min(shared.config.issuer_recheck_interval)))
        }
        // A rotation's switch, a root leaving the bundles, re-issuance in progress: look again
        // then, not only at the recheck interval.
        _ => {
            let due = trust.and_then(|t| t.due).map(|at| at.duration_since(now).unwrap_or_default());
            let delay = due.map_or(shared.config.issuer_recheck_interval, |d| {
                d.max(Duration::from_secs(1)).min(shared.config.issuer_recheck_interval)
            });
            Ok(Action::requeue(delay))
        }
    }
}

/// What a check decided about an issuer's roots.
struct Followed {
    /// The generations to record.
    generations: Vec<crate::trust::CaGeneration>,
    /// The rotation to record (`None`: none in progress).
    rotation: Option<crate::rotation::RotationStatus>,
    /// The roots to hand out (PEM).
    bundle: String,
    /// Events to publish once recorded: (reason, message).
    transitions: Vec<(&'static str, String)>,
    /// When to look again for the roots' sake.
    due: Option<std::time::SystemTime>,
}

/// Advances the issuer's rotation and generations after a check found `current` (root DER,
/// expiry) and maybe a next CA; cross-signs at the switch and re-issues when the rotation asks
/// for it. `Err`: the issuer would need more roots than it may keep.
#[allow(clippy::too_many_arguments)]
async fn follow_roots<S: Signer>(
    ctx: &Context<S>,
    scope: IssuerScope,
    issuer: &WatchedIssuer<S::Spec>,
    health: &Health,
    current: (&Vec<u8>, std::time::SystemTime),
    spec: Option<&crate::rotation::RotationSpec>,
    longest_leaf: Option<Duration>,
    now: std::time::SystemTime,
) -> Result<Followed, IssuerError> {
    use crate::rotation::{Found, RotationPhase, advance};
    use crate::trust::{MAX_GENERATIONS, Roots, fingerprint, next_generations, overlapping};
    let status = issuer.status.clone().unwrap_or_default();
    let current_fingerprint = fingerprint(current.0);
    let next = health.next.as_ref();
    let next_fingerprint = next.map(|n| fingerprint(&n.root));
    let found = Found {
        current: &current_fingerprint,
        next: next_fingerprint.as_deref(),
        overlap: overlapping(&status.ca_generations, now),
    };
    let (mut rotation, transitions) = advance(status.rotation.as_ref(), spec, found, now);
    let phase = rotation.as_ref().map(|r| r.phase);
    let (signing, signing_expires) = match (phase, next) {
        (Some(RotationPhase::Switched), Some(next)) => (&next.root, next.expires),
        _ => current,
    };
    let pending = match (phase, next) {
        (Some(RotationPhase::Publishing), Some(next)) => Some((next.root.as_slice(), next.expires)),
        _ => None,
    };
    let roots = Roots { signing, signing_expires, next: pending, longest_leaf };
    let generations = next_generations(&status.ca_generations, roots, now);
    if generations.len() > MAX_GENERATIONS {
        return Err(IssuerError::new(
            crate::reasons::TOO_MANY_CA_GENERATIONS,
            format!(
                "this change of CA would leave {} roots to hand out (at most {MAX_GENERATIONS}): earlier roots still \
                 have valid leaves; wait for them to expire, or revert the CA",
                generations.len()
            ),
        ));
    }
    let bundle = crate::trust::bundle(&crate::encoding::pem_encode("CERTIFICATE", signing), &generations, now);
    let name = issuer.name_any();
    let mut said: Vec<(&'static str, String)> =
        transitions.iter().map(|t| (t.reason(), rotation_message(t, rotation.as_ref(), &name))).collect();
    if let (Some(rotation), Some(spec), Some(next)) = (rotation.as_mut(), spec, next) {
        // The cross-certificate is made at the switch, not before: a rotation withdrawn while
        // publishing leaves none behind.
        let wanted = spec.cross_sign
            && rotation.phase == RotationPhase::Switched
            && rotation.cross_certificate.is_none()
            && ctx.may_write().is_ok();
        if let (true, Some(issuer_ctx)) = (wanted, ctx.issuer_context_of(scope, issuer)) {
            match ctx.signer.cross_certificate(&issuer_ctx, &next.root).await {
                Ok(pem) => {
                    rotation.cross_certificate = Some(pem);
                    said.push(("CrossSigned", format!("the next root is cross-signed by the previous CA of {name}")));
                }
                Err(error) => {
                    warn!(issuer = %name, %error, "the next root could not be cross-signed");
                    said.push(("CrossSignFailed", format!("the next root could not be cross-signed: {error}")));
                }
            }
        }
        if let (RotationPhase::Switched, Some(reissue)) = (rotation.phase, &spec.reissue) {
            let switched_at = rotation.switched_at.as_deref().and_then(crate::backoff::parse_time);
            if let (Some(switched_at), Ok(())) = (switched_at, ctx.may_write()) {
                let progress =
                    super::reissue::pass(ctx, scope, issuer, switched_at, reissue, rotation.reissue.as_ref()).await;
                rotation.reissue = Some(progress);
            }
            rotation.waiting_for = crate::rotation::waiting_for(rotation, spec);
        }
    }
    let reissuing =
        rotation.as_ref().and_then(|r| r.reissue.as_ref()).is_some_and(|r| r.remaining > 0 || r.blocked.is_some());
    let unpublished =
        rotation.as_ref().is_some_and(|r| r.phase == RotationPhase::Publishing && r.bundles_published_at.is_none());
    let due = [
        rotation.as_ref().and_then(|r| r.due()),
        // Bundles that could not be written are tried again in a few seconds.
        unpublished.then(|| now + TRANSIENT_RECHECK),
        crate::trust::next_departure(&generations),
        reissuing.then(|| now + super::reissue::PASS_INTERVAL),
    ]
    .into_iter()
    .flatten()
    .min();
    Ok(Followed { generations, rotation, bundle, transitions: said, due })
}

/// The message of a rotation event.
fn rotation_message(
    transition: &crate::rotation::Transition,
    rotation: Option<&crate::rotation::RotationStatus>,
    issuer: &str,
) -> String {
    use crate::rotation::Transition;
    let next = rotation.map(|r| r.next.chars().take(16).collect::<String>()).unwrap_or_default();
    match transition {
        Transition::Published => format!(
            "next CA (root {next}...) published in the trust bundles of {issuer}; waiting for {}",
            rotation.map(|r| r.waiting_for.as_str()).unwrap_or_default()
        ),
        Transition::Switched => format!("{issuer} signs with the next CA (root {next}...) from now on"),
        Transition::Completed => {
            format!(
                "the spec of {issuer} names the new CA; the previous root stays in the bundles until its leaves expire"
            )
        }
        Transition::Cancelled => format!("the next CA of {issuer} was withdrawn; the CA of its spec signs"),
        Transition::Ended => format!("the previous root of {issuer} has left every bundle: the rotation is over"),
    }
}

/// Checks the issuer's `crl` block, if it has one.
fn crl_check<S: Signer>(signer: &S, spec: &S::Spec) -> Result<(), String> {
    signer.revocation(spec).map_or(Ok(()), crate::revocation::check_spec)
}

/// The issuer's policy, compiled: the signer's (see [`Signer::policy`]) or the default one.
pub(super) fn compiled_policy<S: Signer>(
    signer: &S,
    spec: &S::Spec,
    scope: IssuerScope,
) -> Result<CompiledPolicy, InvalidPolicy> {
    signer.policy(spec).cloned().unwrap_or_default().compile(scope)
}

/// How soon a check that could not be made is made again.
const TRANSIENT_RECHECK: Duration = Duration::from_secs(5);

/// The error of a check that could not be made (a transient error) on an issuer that is Ready:
/// such a check leaves the Ready condition as it is.
fn check_not_made<'a, S: Clone>(
    result: &'a Result<crate::signer::Health, IssuerError>,
    issuer: &WatchedIssuer<S>,
) -> Option<&'a IssuerError> {
    result.as_ref().err().filter(|error| error.transient && is_ready(issuer))
}

/// Whether the issuer's Ready condition is True.
fn is_ready<S: Clone>(issuer: &WatchedIssuer<S>) -> bool {
    issuer
        .status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == crate::reasons::READY && c.status == "True"))
}

async fn write<S: Signer>(
    ctx: &Context<S>,
    scope: IssuerScope,
    issuer: &WatchedIssuer<S::Spec>,
    ready: Result<&str, (&str, &str)>,
    policy: Option<&str>,
    trust: TrustStatus<'_>,
) -> Result<bool, Error> {
    let kinds = &ctx.config.kinds;
    let Some(patch) = issuer_status_patch(kinds, scope, issuer, ready, policy, trust, Time(Timestamp::now())) else {
        return Ok(false);
    };
    write_issuer_status(ctx, scope, issuer, patch).await?;
    Ok(true)
}

/// Writes an issuer's trust bundle into ConfigMap `namespace/name` (`ca.crt`), server-side
/// apply, not forced: a `ca.crt` someone else manages is left alone.
async fn publish_bundle<S: Signer>(ctx: &Context<S>, namespace: &str, name: &str, bundle: &str) -> Result<(), Error> {
    ctx.may_write()?;
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"ca.crt": bundle},
    });
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    api.patch(name, &PatchParams::apply(&ctx.config.field_manager), &Patch::Apply(body)).await?;
    Ok(())
}

/// The signer name of an issuer (the contract's section 4):
/// `<plural>.<group>/<namespace>.<name>`, or `<plural>.<group>/<name>` for a cluster issuer.
fn signer_name<T: Clone>(kinds: &crate::api::IssuerKinds, scope: IssuerScope, issuer: &WatchedIssuer<T>) -> String {
    let plural = kinds.api_resource(scope).plural;
    match scope {
        IssuerScope::Namespaced => {
            format!("{plural}.{}/{}.{}", kinds.group, issuer.namespace().unwrap_or_default(), issuer.name_any())
        }
        IssuerScope::Cluster => format!("{plural}.{}/{}", kinds.group, issuer.name_any()),
    }
}

/// Publishes `bundle` as the ClusterTrustBundle linked to the issuer's signer name (named
/// `<signer name, / as :>:roots`); returns what the issuer's status says about it, and whether
/// the bundle is where clients look (written, or the API not served: nothing to write).
async fn publish_cluster_trust_bundle<S: Signer>(
    ctx: &Context<S>,
    scope: IssuerScope,
    issuer: &WatchedIssuer<S::Spec>,
    bundle: &str,
) -> (String, bool) {
    let signer = signer_name(&ctx.config.kinds, scope, issuer);
    let name = format!("{}:roots", signer.replace('/', ":"));
    if ctx.may_write().is_err() {
        return (format!("ClusterTrustBundle {name}: not written (not the leader)"), false);
    }
    let gvk = kube::core::GroupVersionKind::gvk("certificates.k8s.io", "v1beta1", "ClusterTrustBundle");
    let ar = kube::core::ApiResource::from_gvk_with_plural(&gvk, "clustertrustbundles");
    let api: Api<kube::api::DynamicObject> = Api::all_with(ctx.client.clone(), &ar);
    let body = serde_json::json!({
        "apiVersion": "certificates.k8s.io/v1beta1",
        "kind": "ClusterTrustBundle",
        "metadata": {"name": name},
        "spec": {"signerName": signer, "trustBundle": bundle},
    });
    let written = api.patch(&name, &PatchParams::apply(&ctx.config.field_manager).force(), &Patch::Apply(body)).await;
    bundle_outcome(written.map(|_| ()), &name, &signer)
}

/// What the issuer's status says after publishing its ClusterTrustBundle: where, or why not —
/// an apiserver that does not serve them is said, not an error — and whether that is settled
/// (written, or not served).
fn bundle_outcome(written: Result<(), kube::Error>, name: &str, signer: &str) -> (String, bool) {
    match written {
        Ok(()) => (format!("published as ClusterTrustBundle {name} (signer {signer})"), true),
        Err(kube::Error::Api(status)) if status.code == 404 => (
            "not published: this apiserver does not serve ClusterTrustBundles (certificates.k8s.io/v1beta1 needs \
             --runtime-config and the ClusterTrustBundle feature gate)"
                .to_owned(),
            true,
        ),
        Err(error) => (format!("ClusterTrustBundle {name} not written: {error}"), false),
    }
}

/// Applies an issuer status patch.
pub(super) async fn write_issuer_status<S: Signer>(
    ctx: &Context<S>,
    scope: IssuerScope,
    issuer: &WatchedIssuer<S::Spec>,
    patch: serde_json::Value,
) -> Result<(), Error> {
    let kinds = &ctx.config.kinds;
    let ar = kinds.api_resource(scope);
    let api: Api<WatchedIssuer<S::Spec>> = match scope {
        IssuerScope::Namespaced => {
            Api::namespaced_with(ctx.client.clone(), issuer.metadata.namespace.as_deref().unwrap_or_default(), &ar)
        }
        IssuerScope::Cluster => Api::all_with(ctx.client.clone(), &ar),
    };
    let params = PatchParams::apply(&ctx.config.field_manager).force();
    ctx.may_write()?;
    api.patch_status(&issuer.name_any(), &params, &Patch::Apply(patch)).await?;
    Ok(())
}

/// Requeues an issuer whose check could not be recorded.
pub(super) fn error_policy<S: Signer>(
    issuer: Arc<WatchedIssuer<S::Spec>>,
    error: &Error,
    ctx: Arc<Scoped<S>>,
) -> Action {
    ctx.shared.count_error("issuer", error);
    warn!(issuer = %issuer.name_any(), %error, "issuer reconcile failed; retrying");
    if error.is_conflict() {
        // A newer version of the issuer exists; its own event reconciles it again soon.
        Action::requeue(Duration::from_millis(500))
    } else {
        Action::requeue(Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::{bundle_outcome, check_not_made, uses_secret};
    use crate::api::{Condition, IssuerKinds, IssuerStatus, Parsed, WatchedIssuer};
    use crate::signer::{Health, IssuerError};

    #[test]
    fn a_check_that_could_not_be_made_leaves_a_ready_issuer_ready() {
        let kinds = IssuerKinds::new("ferrum.dev", "v1alpha1", "Ferrum");
        let issuer = |ready: &str| {
            let mut issuer =
                WatchedIssuer::new("ca", &kinds.api_resource(crate::IssuerScope::Namespaced), Parsed::Valid(()));
            let condition = Condition { type_: "Ready".into(), status: ready.into(), ..Default::default() };
            issuer.status = Some(IssuerStatus { conditions: vec![condition], ..Default::default() });
            issuer
        };
        let transient = Err(IssuerError::transient("SecretUnreadable", "timeout reading Secret ns/ca"));
        let lasting = Err(IssuerError::new("SecretNotFound", "Secret ns/ca not found"));
        assert!(check_not_made(&transient, &issuer("True")).is_some(), "kept Ready, checked again soon");
        assert!(check_not_made(&transient, &issuer("False")).is_none(), "not Ready anyway: say why");
        assert!(check_not_made(&lasting, &issuer("True")).is_none(), "a real finding flips it");
        assert!(check_not_made(&Ok(Health::ready("ok")), &issuer("True")).is_none());
    }

    #[test]
    fn secret_changes_map_to_the_issuers_that_use_them() {
        let names = ["ca".to_owned()];
        assert!(uses_secret("ns", &names, "ns", "ca"));
        assert!(!uses_secret("ns", &names, "other", "ca"), "a Secret of the same name elsewhere");
        assert!(!uses_secret("ns", &names, "ns", "other"), "another Secret");
        assert!(!uses_secret("ns", &[], "ns", "ca"), "an issuer whose spec names no Secret (or cannot be read)");
    }

    #[test]
    fn an_apiserver_without_cluster_trust_bundles_is_said_not_an_error() {
        let status = |code: u16| {
            Err(kube::Error::Api(kube::core::Status::failure("not here", "NotFound").with_code(code).boxed()))
        };
        let (said, settled) = bundle_outcome(status(404), "s:x:roots", "s/x");
        assert!(said.starts_with("not published: this apiserver does not serve ClusterTrustBundles"), "{said}");
        assert!(settled, "nothing to wait for where the API is not served");
        let (said, settled) = bundle_outcome(status(403), "s:x:roots", "s/x");
        assert!(said.starts_with("ClusterTrustBundle s:x:roots not written") && !settled, "{said}");
        assert_eq!(
            bundle_outcome(Ok(()), "s:x:roots", "s/x"),
            ("published as ClusterTrustBundle s:x:roots (signer s/x)".to_owned(), true)
        );
    }
}
