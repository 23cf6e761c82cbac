//! The order of decisions for a CertificateRequest (contract §1), as pure functions:
//! request and issuer state in, what to do out. No I/O; the controller carries it out.

use crate::api::{CertificateRequest, Issuer, IssuerKinds, IssuerScope};
use crate::reasons;
use std::collections::BTreeMap;

use crate::policy::{CompiledPolicy, InvalidPolicy, PolicyInput, PolicyViolation};
use crate::signer::Warning;
use crate::x509::{CertificateTemplate, RequestedProfile, ValidatedCsr, certificate_template, check_names, parse_csr};

/// Which issuer a request names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct IssuerKey {
    /// Namespaced or cluster.
    pub scope: IssuerScope,
    /// The issuer's namespace (the request's) for a namespaced issuer; `None` for a cluster one.
    pub namespace: Option<String>,
    /// Issuer name.
    pub name: String,
}

impl std::fmt::Display for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Steps 1 to 5: whether the request concerns us and may go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Not one of our kinds: do nothing at all.
    NotOurs,
    /// Already terminal or already carrying a certificate: do nothing, ever.
    Done,
    /// Denied by an approver: mark it Denied.
    Deny,
    /// Not approved yet: write nothing, wait for the approver.
    AwaitApproval,
    /// Go on with this issuer.
    Proceed(IssuerKey),
}

/// Applies steps 1 to 5.
pub(crate) fn gate(request: &CertificateRequest, kinds: &IssuerKinds, approval_check: bool) -> Gate {
    let issuer_ref = &request.spec.issuer_ref;
    let Some(scope) = kinds.scope_of(issuer_ref.group.as_deref(), issuer_ref.kind.as_deref()) else {
        return Gate::NotOurs;
    };
    if is_terminal(request) {
        return Gate::Done;
    }
    if request.condition_true(reasons::DENIED) {
        return Gate::Deny;
    }
    if approval_check && !request.condition_true(reasons::APPROVED) {
        return Gate::AwaitApproval;
    }
    let namespace = match scope {
        IssuerScope::Namespaced => Some(request.metadata.namespace.clone().unwrap_or_default()),
        IssuerScope::Cluster => None,
    };
    Gate::Proceed(IssuerKey { scope, namespace, name: issuer_ref.name.clone() })
}

/// The condition types the gate and the retry clock read (the rest need not be cached).
pub(crate) const CONDITIONS_READ: [&str; 4] =
    [reasons::READY, reasons::APPROVED, reasons::DENIED, reasons::SIGNING_RETRY];

/// Ready=True, or Ready=False with reason Failed or Denied, or a certificate already set, or a
/// status that cannot be fully read (it might hold any of these: never sign over it).
pub(crate) fn is_terminal(request: &CertificateRequest) -> bool {
    if request.status.as_ref().is_some_and(|s| !s.certificate.is_empty() || !s.problems.is_empty()) {
        return true;
    }
    request
        .condition(reasons::READY)
        .is_some_and(|c| c.is_true() || matches!(c.reason.as_deref(), Some(reasons::FAILED) | Some(reasons::DENIED)))
}

/// Whether `request` is a non-terminal request naming the issuer `name` of `scope` (in
/// `namespace` for a namespaced one): what to reconcile again when that issuer changes.
pub(crate) fn waits_on(
    request: &CertificateRequest,
    kinds: &IssuerKinds,
    scope: IssuerScope,
    name: &str,
    namespace: Option<&str>,
) -> bool {
    let issuer_ref = &request.spec.issuer_ref;
    issuer_ref.name == name
        && kinds.scope_of(issuer_ref.group.as_deref(), issuer_ref.kind.as_deref()) == Some(scope)
        && (scope == IssuerScope::Cluster || request.metadata.namespace.as_deref() == namespace)
        && !is_terminal(request)
}

/// An issuer's state as a request sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IssuerReadiness {
    /// No such issuer.
    Missing,
    /// It exists but is not Ready (or its condition is stale); the issuer's own reason.
    NotReady {
        /// The issuer's reason, or `Unknown`.
        reason: String,
        /// The issuer's message.
        message: String,
    },
    /// Ready for this generation.
    Ready,
}

/// Reads an issuer's readiness from its Ready condition and generation.
pub(crate) fn issuer_readiness<S: Clone>(issuer: Option<&Issuer<S>>) -> IssuerReadiness {
    let Some(issuer) = issuer else {
        return IssuerReadiness::Missing;
    };
    let ready = issuer.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == reasons::READY));
    match ready {
        None => IssuerReadiness::NotReady {
            reason: "Unknown".into(),
            message: "the issuer has not been checked yet".into(),
        },
        Some(c) if c.observed_generation.is_some() && c.observed_generation < issuer.metadata.generation => {
            IssuerReadiness::NotReady {
                reason: "Stale".into(),
                message: "the issuer's Ready condition is older than its spec; waiting for a re-check".into(),
            }
        }
        Some(c) if c.is_true() => IssuerReadiness::Ready,
        Some(c) => IssuerReadiness::NotReady {
            reason: c.reason.clone().unwrap_or_else(|| "Unknown".into()),
            message: c.message.clone().unwrap_or_default(),
        },
    }
}

/// Steps 6 to 8: what to do once approved.
#[derive(Clone, Debug)]
pub(crate) enum Decision {
    /// Pending with this message, until the issuer changes.
    WaitForIssuer(String),
    /// Pending with this message; look again soon (something the checks need is not known).
    WaitBriefly(String),
    /// Failed for good with this message.
    Fail(String),
    /// Sign this.
    Sign(Box<CheckedRequest>),
}

/// Applies steps 6 to 8 under the issuer's `policy` (its compilation: an issuer whose policy
/// does not compile is not Ready, so a failure here is a stale cache) with the request
/// namespace's labels when the policy needs them.
pub(crate) fn decide(
    request: &CertificateRequest,
    key: &IssuerKey,
    kind: &str,
    issuer: IssuerReadiness,
    policy: Result<&CompiledPolicy, &InvalidPolicy>,
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> Decision {
    match issuer {
        IssuerReadiness::Missing => {
            return Decision::WaitForIssuer(format!("Referenced {kind} {key} not found"));
        }
        IssuerReadiness::NotReady { reason, message } => {
            return Decision::WaitForIssuer(format!("Referenced {kind} {key} is not ready: {reason}: {message}"));
        }
        IssuerReadiness::Ready => {}
    }
    let policy = match policy {
        Ok(policy) => policy,
        Err(invalid) => {
            let reason = reasons::INVALID_POLICY;
            return Decision::WaitForIssuer(format!("Referenced {kind} {key} is not ready: {reason}: {invalid}"));
        }
    };
    match validate(request, policy, namespace_labels) {
        Ok(checked) => Decision::Sign(Box::new(checked)),
        Err(Refusal::Invalid(message)) => Decision::Fail(message),
        Err(Refusal::NotYet(message)) => Decision::WaitBriefly(message),
    }
}

/// A request that passed every check before signing.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CheckedRequest {
    /// The checked CSR.
    pub csr: ValidatedCsr,
    /// The certificate to issue, its lifetime cut to the policy's maximum if need be.
    pub template: CertificateTemplate,
    /// How the certificate will differ from the request (said in the request's event).
    pub warnings: Vec<Warning>,
}

/// Why [`validate`] did not pass a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The request breaks a rule: it fails for good, with this message.
    #[error("{0}")]
    Invalid(String),
    /// Something the checks need is not known yet (the namespace's labels): not a verdict.
    #[error("{0}")]
    NotYet(String),
}

/// Step 8: the request must be readable, then the CSR's own checks, its names, the profile,
/// and the issuer's policy (with the request namespace's labels if the policy selects
/// namespaces).
pub fn validate(
    request: &CertificateRequest,
    policy: &CompiledPolicy,
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> Result<CheckedRequest, Refusal> {
    if !request.spec.problems.is_empty() {
        return Err(Refusal::Invalid(format!("the request cannot be read: {}", request.spec.problems.join("; "))));
    }
    let invalid = |e: &dyn std::fmt::Display| Refusal::Invalid(e.to_string());
    let csr = parse_csr(&request.spec.request).map_err(|e| invalid(&e))?;
    check_names(&csr, &policy.name_policy()).map_err(|e| invalid(&e))?;
    let profile = RequestedProfile {
        duration: request.spec.duration.clone(),
        is_ca: request.spec.is_ca,
        usages: request.spec.usages.clone(),
    };
    let mut template = certificate_template(&profile, &csr).map_err(|e| invalid(&e))?;
    let input = PolicyInput {
        namespace: request.metadata.namespace.as_deref().unwrap_or_default(),
        namespace_labels,
        csr: &csr,
        template: &template,
    };
    let outcome = match policy.check(&input) {
        Ok(outcome) => outcome,
        Err(wait @ PolicyViolation::NamespaceLabelsUnknown { .. }) => return Err(Refusal::NotYet(wait.to_string())),
        Err(violation) => return Err(invalid(&violation)),
    };
    template.duration = outcome.duration;
    Ok(CheckedRequest { csr, template, warnings: outcome.warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CertificateRequestSpec, CertificateRequestStatus, Condition, IssuerReference, IssuerStatus};
    use crate::ca::kinds;

    fn cond(type_: &str, status: &str, reason: &str) -> Condition {
        Condition { type_: type_.into(), status: status.into(), reason: Some(reason.into()), ..Default::default() }
    }

    fn request(group: Option<&str>, kind: Option<&str>, conditions: Vec<Condition>) -> CertificateRequest {
        let spec = CertificateRequestSpec {
            issuer_ref: IssuerReference { name: "ca".into(), kind: kind.map(Into::into), group: group.map(Into::into) },
            ..Default::default()
        };
        let mut cr = CertificateRequest::new("r", spec);
        cr.metadata.namespace = Some("ns".into());
        cr.status = Some(CertificateRequestStatus { conditions, ..Default::default() });
        cr
    }

    const G: Option<&str> = Some("ferrum.dev");

    #[test]
    fn gate_table() {
        let k = kinds();
        let approved = || cond("Approved", "True", "ok");
        let proceed_ns = Gate::Proceed(IssuerKey {
            scope: IssuerScope::Namespaced,
            namespace: Some("ns".into()),
            name: "ca".into(),
        });
        let proceed_cl = Gate::Proceed(IssuerKey { scope: IssuerScope::Cluster, namespace: None, name: "ca".into() });
        let cases = [
            (request(Some("cert-manager.io"), Some("Issuer"), vec![approved()]), true, Gate::NotOurs),
            (request(G, Some("OtherIssuer"), vec![approved()]), true, Gate::NotOurs),
            (request(None, Some("FerrumIssuer"), vec![approved()]), true, Gate::NotOurs),
            (request(G, None, vec![approved()]), true, proceed_ns.clone()),
            (request(G, Some("FerrumIssuer"), vec![approved()]), true, proceed_ns.clone()),
            (request(G, Some("FerrumClusterIssuer"), vec![approved()]), true, proceed_cl),
            (request(G, None, vec![]), true, Gate::AwaitApproval),
            (request(G, None, vec![]), false, proceed_ns.clone()),
            (request(G, None, vec![cond("Denied", "True", "no")]), true, Gate::Deny),
            (request(G, None, vec![cond("Denied", "True", "no")]), false, Gate::Deny),
            (request(G, None, vec![approved(), cond("Ready", "True", "Issued")]), true, Gate::Done),
            (request(G, None, vec![approved(), cond("Ready", "False", "Failed")]), true, Gate::Done),
            (request(G, None, vec![cond("Denied", "True", "no"), cond("Ready", "False", "Denied")]), true, Gate::Done),
            (request(G, None, vec![approved(), cond("Ready", "False", "Pending")]), true, proceed_ns),
        ];
        for (i, (cr, check, want)) in cases.into_iter().enumerate() {
            assert_eq!(gate(&cr, &k, check), want, "case {i}");
        }
        let mut with_cert = request(G, None, vec![approved()]);
        with_cert.status.as_mut().unwrap().certificate = b"pem".to_vec();
        assert_eq!(gate(&with_cert, &k, true), Gate::Done, "a certificate already set is terminal");
    }

    #[test]
    fn issuer_changes_map_to_the_requests_waiting_on_them() {
        let k = kinds();
        let (ns, cl) = (IssuerScope::Namespaced, IssuerScope::Cluster);
        let waiting = request(G, None, vec![cond("Approved", "True", "ok")]);
        let cases = [
            ("namespaced issuer, same name and namespace", waiting.clone(), ns, "ca", Some("ns"), true),
            ("another namespace", waiting.clone(), ns, "ca", Some("other"), false),
            ("another name", waiting.clone(), ns, "other", Some("ns"), false),
            ("a cluster issuer of the same name", waiting.clone(), cl, "ca", None, false),
            ("a cluster request, any namespace", request(G, Some("FerrumClusterIssuer"), vec![]), cl, "ca", None, true),
            ("not ours", request(Some("cert-manager.io"), Some("Issuer"), vec![]), ns, "ca", Some("ns"), false),
            ("terminal", request(G, None, vec![cond("Ready", "True", "Issued")]), ns, "ca", Some("ns"), false),
        ];
        for (name, cr, scope, issuer, namespace, want) in cases {
            assert_eq!(waits_on(&cr, &k, scope, issuer, namespace), want, "{name}");
        }
    }

    fn issuer(generation: i64, ready: Option<Condition>) -> Issuer<crate::ca::FerrumIssuerSpec> {
        let ar = kinds().api_resource(IssuerScope::Namespaced);
        let mut i = Issuer::new("ca", &ar, Default::default());
        i.metadata.generation = Some(generation);
        i.status = ready.map(|c| IssuerStatus { conditions: vec![c], ..Default::default() });
        i
    }

    #[test]
    fn issuer_readiness_table() {
        let ready = |g| Condition { observed_generation: Some(g), ..cond("Ready", "True", "Checked") };
        let broken = Condition {
            message: Some("gone".into()),
            observed_generation: Some(1),
            ..cond("Ready", "False", "SecretNotFound")
        };
        assert_eq!(issuer_readiness::<crate::ca::FerrumIssuerSpec>(None), IssuerReadiness::Missing);
        assert_eq!(issuer_readiness(Some(&issuer(1, Some(ready(1))))), IssuerReadiness::Ready);
        assert!(
            matches!(issuer_readiness(Some(&issuer(2, Some(ready(1))))), IssuerReadiness::NotReady { reason, .. } if reason == "Stale")
        );
        assert!(matches!(issuer_readiness(Some(&issuer(1, None))), IssuerReadiness::NotReady { .. }));
        assert_eq!(
            issuer_readiness(Some(&issuer(1, Some(broken)))),
            IssuerReadiness::NotReady { reason: "SecretNotFound".into(), message: "gone".into() }
        );
    }

    #[test]
    fn decide_orders_issuer_before_validation() {
        let cr = request(G, None, vec![cond("Approved", "True", "ok")]); // empty spec.request
        let key = IssuerKey { scope: IssuerScope::Namespaced, namespace: Some("ns".into()), name: "ca".into() };
        let policy = crate::policy::IssuerPolicy::default().compile(IssuerScope::Namespaced).unwrap();
        match decide(&cr, &key, "FerrumIssuer", IssuerReadiness::Missing, Ok(&policy), None) {
            Decision::WaitForIssuer(m) => assert_eq!(m, "Referenced FerrumIssuer ns/ca not found"),
            other => panic!("{other:?}"),
        }
        match decide(&cr, &key, "FerrumIssuer", IssuerReadiness::Ready, Ok(&policy), None) {
            Decision::Fail(m) => assert_eq!(m, "spec.request is empty"),
            other => panic!("{other:?}"),
        }
        // A policy that no longer compiles (a stale cache: the issuer says Ready) holds the
        // request, it does not fail it.
        let selector = serde_json::json!({"namespaceSelector": {"matchLabels": {"a": "b"}}});
        let invalid = serde_json::from_value::<crate::policy::IssuerPolicy>(selector)
            .unwrap()
            .compile(IssuerScope::Namespaced)
            .unwrap_err();
        match decide(&cr, &key, "FerrumIssuer", IssuerReadiness::Ready, Err(&invalid), None) {
            Decision::WaitForIssuer(m) => assert!(m.contains("InvalidPolicy"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
