//! Status patches as values (pure): what Ferrum would write over an object's current status,
//! or `None` when that would change nothing. The controllers send them with server-side apply.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use crate::api::{CertificateRequest, Condition, ConditionStatus, Issuer, IssuerKinds, IssuerScope};
use crate::encoding::base64_encode;
use crate::reasons;

/// The end state of one reconcile of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Denied by an approver.
    Denied,
    /// Waiting; the message says for what.
    Pending(String),
    /// Refused for good; the message says why.
    Failed(String),
    /// Issued.
    Issued {
        /// Leaf then intermediates, PEM.
        chain_pem: String,
        /// Root, PEM.
        ca_pem: String,
    },
}

impl Outcome {
    /// The Ready condition's reason for this outcome.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Outcome::Denied => reasons::DENIED,
            Outcome::Pending(_) => reasons::PENDING,
            Outcome::Failed(_) => reasons::FAILED,
            Outcome::Issued { .. } => reasons::ISSUED,
        }
    }
}

/// Message of an issued request, as cert-manager's built-in issuers write it.
pub(crate) const ISSUED_MESSAGE: &str = "Certificate fetched from issuer successfully";
/// Message of a denied request.
pub(crate) const DENIED_MESSAGE: &str = "The CertificateRequest was denied by an approval controller";

/// What an issuer status write says about the issuer's roots (see [`crate::trust`]); `None`
/// fields keep what the status says.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TrustStatus<'a> {
    /// The CA generations after this check.
    pub(crate) generations: Option<&'a [crate::trust::CaGeneration]>,
    /// Where the roots are published as a ClusterTrustBundle, or why not.
    pub(crate) cluster_trust_bundle: Option<&'a str>,
    /// The rotation after this check: `None` keeps the previous one, `Some(None)` ends it.
    pub(crate) rotation: Option<Option<&'a crate::rotation::RotationStatus>>,
}

/// The apply body for a request, or `None` if its status already says this.
///
/// Carries only Ferrum's fields (its Ready condition, the retry condition `retry` if given,
/// `certificate`, `ca`, `failureTime`) and the `resourceVersion` it was computed from, so that
/// a write based on a stale read fails with a conflict instead of overwriting a newer state.
/// Server-side apply removes what Ferrum wrote before and leaves out now (a retry condition
/// once the request settles).
pub(crate) fn request_status_patch(
    request: &CertificateRequest,
    outcome: &Outcome,
    retry: Option<Condition>,
    now: Time,
) -> Option<Value> {
    let previous = request.condition(reasons::READY);
    let (status, message) = match outcome {
        Outcome::Denied => (ConditionStatus::False, DENIED_MESSAGE),
        Outcome::Pending(m) | Outcome::Failed(m) => (ConditionStatus::False, m.as_str()),
        Outcome::Issued { .. } => (ConditionStatus::True, ISSUED_MESSAGE),
    };
    let reason = outcome.reason();
    let condition = Condition::transition(reasons::READY, status, reason, message, None, previous, now.clone());
    let previous_retry = request.condition(reasons::SIGNING_RETRY);
    if previous.is_some_and(|p| p.same_meaning(&condition)) && previous_retry == retry.as_ref() {
        return None;
    }
    let conditions: Vec<Condition> = std::iter::once(condition).chain(retry).collect();
    let mut status = json!({ "conditions": conditions });
    match outcome {
        Outcome::Denied | Outcome::Failed(_) => {
            let failure_time = request.status.as_ref().and_then(|s| s.failure_time.clone()).unwrap_or(now);
            status["failureTime"] = json!(failure_time);
        }
        Outcome::Issued { chain_pem, ca_pem } => {
            status["certificate"] = json!(base64_encode(chain_pem.as_bytes()));
            status["ca"] = json!(base64_encode(ca_pem.as_bytes()));
        }
        Outcome::Pending(_) => {}
    }
    Some(json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "CertificateRequest",
        "metadata": {
            "name": request.metadata.name,
            "namespace": request.metadata.namespace,
            "resourceVersion": request.metadata.resource_version,
        },
        "status": status,
    }))
}

/// The apply body for an issuer's Ready condition, or `None` if it already says this.
///
/// Fenced like the request's: it carries the `resourceVersion` the check was based on, so a
/// check of a stale copy (the spec or the Secret changed meanwhile) conflicts instead of
/// overwriting the newer result.
pub(crate) fn issuer_status_patch<S: Clone>(
    kinds: &IssuerKinds,
    scope: IssuerScope,
    issuer: &Issuer<S>,
    ready: Result<&str, (&str, &str)>,
    policy: Option<&str>,
    trust: TrustStatus<'_>,
    now: Time,
) -> Option<Value> {
    let TrustStatus { generations, cluster_trust_bundle, rotation } = trust;
    let previous = issuer.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == reasons::READY));
    let previous_policy = issuer.status.as_ref().and_then(|s| s.policy.as_deref());
    // Server-side apply drops what Ferrum no longer sends: the generations are always sent,
    // the previous ones when this write has none of its own.
    let previous_generations = issuer.status.as_ref().map(|s| s.ca_generations.as_slice()).unwrap_or_default();
    let generations = generations.unwrap_or(previous_generations);
    let previous_bundle = issuer.status.as_ref().and_then(|s| s.cluster_trust_bundle.as_deref());
    let cluster_trust_bundle = cluster_trust_bundle.or(previous_bundle);
    let previous_rotation = issuer.status.as_ref().and_then(|s| s.rotation.as_ref());
    let rotation = rotation.unwrap_or(previous_rotation);
    // (An ended rotation is simply not sent: server-side apply removes what Ferrum stops owning.)
    let (status, reason, message) = match ready {
        Ok(message) => (ConditionStatus::True, reasons::CHECKED, message),
        Err((reason, message)) => (ConditionStatus::False, reason, message),
    };
    let generation = issuer.metadata.generation;
    let condition = Condition::transition(reasons::READY, status, reason, message, generation, previous, now);
    if previous.is_some_and(|p| p.same_meaning(&condition))
        && previous_policy == policy
        && previous_generations == generations
        && previous_bundle == cluster_trust_bundle
        && previous_rotation == rotation
    {
        return None;
    }
    let mut metadata = json!({ "name": issuer.metadata.name, "resourceVersion": issuer.metadata.resource_version });
    if scope == IssuerScope::Namespaced {
        metadata["namespace"] = json!(issuer.metadata.namespace);
    }
    let mut status = json!({ "conditions": [condition] });
    if let Some(policy) = policy {
        status["policy"] = json!(policy);
    }
    if !generations.is_empty() {
        status["caGenerations"] = json!(generations);
    }
    if let Some(bundle) = cluster_trust_bundle {
        status["clusterTrustBundle"] = json!(bundle);
    }
    if let Some(rotation) = rotation {
        status["rotation"] = json!(rotation);
    }
    Some(json!({
        "apiVersion": format!("{}/{}", kinds.group, kinds.version),
        "kind": kinds.kind(scope),
        "metadata": metadata,
        "status": status,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CertificateRequestSpec, CertificateRequestStatus};
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn request(conditions: Vec<Condition>) -> CertificateRequest {
        let mut cr = CertificateRequest::new("r", CertificateRequestSpec::default());
        cr.metadata.namespace = Some("ns".into());
        cr.metadata.resource_version = Some("7".into());
        cr.status = Some(CertificateRequestStatus { conditions, ..Default::default() });
        cr
    }

    fn approved() -> Condition {
        Condition { type_: "Approved".into(), status: "True".into(), ..Default::default() }
    }

    #[test]
    fn issued_patch_has_only_our_fields() {
        let cr = request(vec![approved()]);
        let patch = request_status_patch(
            &cr,
            &Outcome::Issued { chain_pem: "chain".into(), ca_pem: "root".into() },
            None,
            at(100),
        )
        .unwrap();
        assert_eq!(
            patch,
            json!({
                "apiVersion": "cert-manager.io/v1",
                "kind": "CertificateRequest",
                "metadata": { "name": "r", "namespace": "ns", "resourceVersion": "7" },
                "status": {
                    "conditions": [{
                        "type": "Ready", "status": "True", "reason": "Issued",
                        "message": ISSUED_MESSAGE, "lastTransitionTime": "1970-01-01T00:01:40Z",
                    }],
                    "certificate": base64_encode(b"chain"),
                    "ca": base64_encode(b"root"),
                }
            })
        );
    }

    #[test]
    fn failure_time_only_with_failed_or_denied() {
        let cr = request(vec![approved()]);
        let failed = request_status_patch(&cr, &Outcome::Failed("bad".into()), None, at(5)).unwrap();
        assert_eq!(failed["status"]["failureTime"], json!("1970-01-01T00:00:05Z"));
        assert_eq!(failed["status"]["conditions"][0]["reason"], json!("Failed"));
        let denied = request_status_patch(&cr, &Outcome::Denied, None, at(5)).unwrap();
        assert_eq!(denied["status"]["conditions"][0]["reason"], json!("Denied"));
        assert!(denied["status"]["failureTime"].is_string());
        let pending = request_status_patch(&cr, &Outcome::Pending("wait".into()), None, at(5)).unwrap();
        assert!(pending["status"].get("failureTime").is_none());
    }

    #[test]
    fn same_pending_writes_nothing_and_time_is_kept() {
        let first = request_status_patch(&request(vec![]), &Outcome::Pending("wait".into()), None, at(5)).unwrap();
        let written: Condition = serde_json::from_value(first["status"]["conditions"][0].clone()).unwrap();
        let cr = request(vec![written.clone()]);
        assert_eq!(request_status_patch(&cr, &Outcome::Pending("wait".into()), None, at(9)), None);
        let changed = request_status_patch(&cr, &Outcome::Pending("other".into()), None, at(9)).unwrap();
        assert_eq!(changed["status"]["conditions"][0]["lastTransitionTime"], json!("1970-01-01T00:00:05Z"));
        let failed = request_status_patch(&cr, &Outcome::Failed("x".into()), None, at(9)).unwrap();
        assert_eq!(failed["status"]["conditions"][0]["lastTransitionTime"], json!("1970-01-01T00:00:05Z"));
    }

    /// Server-side apply drops what Ferrum stops sending: every issuer status write carries the
    /// CA generations (new ones, else the previous), and a write that changes only them is made.
    #[test]
    fn issuer_patches_always_carry_the_ca_generations() {
        let kinds = crate::issuer::kinds();
        let generation = crate::trust::CaGeneration {
            fingerprint: "aa".into(),
            certificate: "PEM".into(),
            leaves_expire_by: "2030-01-01T00:00:00Z".into(),
            ..Default::default()
        };
        let ready = Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: Some("Checked".into()),
            message: Some("ok".into()),
            last_transition_time: Some(at(1)),
            observed_generation: Some(1),
        };
        let mut issuer: Issuer<()> = Issuer::new("ca", &kinds.api_resource(IssuerScope::Namespaced), ());
        issuer.metadata.generation = Some(1);
        issuer.status = Some(crate::api::IssuerStatus {
            conditions: vec![ready],
            ca_generations: vec![generation.clone()],
            ..Default::default()
        });
        let patch = |generations: Option<&[crate::trust::CaGeneration]>, ready: Result<&str, (&str, &str)>| {
            let trust = TrustStatus { generations, cluster_trust_bundle: None, rotation: None };
            issuer_status_patch(&kinds, IssuerScope::Namespaced, &issuer, ready, None, trust, at(2))
        };
        assert_eq!(patch(None, Ok("ok")), None, "nothing changed");
        let broken = patch(None, Err(("SecretNotFound", "gone"))).expect("a write");
        assert_eq!(broken["status"]["caGenerations"], json!([generation]), "the previous generations kept");
        let second = crate::trust::CaGeneration { fingerprint: "bb".into(), ..generation.clone() };
        let both = [second.clone(), generation.clone()];
        let rotated = patch(Some(&both), Ok("ok")).expect("a write for the generations alone");
        assert_eq!(rotated["status"]["caGenerations"], json!(both));
        // A rotation is kept by a check that says nothing of it, written when it changes, and
        // gone from the body (so removed by server-side apply) when it ends.
        let rotation = crate::rotation::RotationStatus {
            phase: crate::rotation::RotationPhase::Publishing,
            next: "bb".into(),
            published_at: "2029-01-01T00:00:00Z".into(),
            bundles_published_at: None,
            switch_at: None,
            switched_at: None,
            waiting_for: "a switch by hand".into(),
            cross_certificate: None,
            reissue: None,
        };
        let with = |rotation: Option<Option<&crate::rotation::RotationStatus>>| {
            let trust = TrustStatus { generations: None, cluster_trust_bundle: None, rotation };
            issuer_status_patch(&kinds, IssuerScope::Namespaced, &issuer, Ok("ok"), None, trust, at(2))
        };
        let started = with(Some(Some(&rotation))).expect("a write for the rotation");
        assert_eq!(started["status"]["rotation"]["phase"], "Publishing");
        issuer.status.as_mut().unwrap().rotation = Some(rotation.clone());
        let with = |rotation: Option<Option<&crate::rotation::RotationStatus>>| {
            let trust = TrustStatus { generations: None, cluster_trust_bundle: None, rotation };
            issuer_status_patch(&kinds, IssuerScope::Namespaced, &issuer, Ok("ok"), None, trust, at(2))
        };
        assert_eq!(with(None), None, "kept");
        assert_eq!(with(Some(Some(&rotation))), None, "unchanged");
        let ended = with(Some(None)).expect("a write when it ends");
        assert!(ended["status"].get("rotation").is_none(), "{ended}");
    }
}
