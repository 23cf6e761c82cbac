//! The order of decisions for a CertificateRequest (contract §1), as pure functions:
//! request and issuer state in, what to do out. No I/O; the controller carries it out.

use crate::api::{CertificateRequest, Issuer, IssuerKinds, IssuerScope};
use crate::reasons;
use crate::x509::csr::{ValidatedCsr, parse_csr};
use crate::x509::template::{CertificateTemplate, RequestedProfile, certificate_template};

/// Which issuer a request names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IssuerKey {
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
pub enum Gate {
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
pub fn gate(request: &CertificateRequest, kinds: &IssuerKinds, approval_check: bool) -> Gate {
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

/// Ready=True, or Ready=False with reason Failed or Denied, or a certificate already set.
pub fn is_terminal(request: &CertificateRequest) -> bool {
    if request.status.as_ref().is_some_and(|s| !s.certificate.is_empty()) {
        return true;
    }
    request.condition(reasons::READY).is_some_and(|c| {
        c.is_true() || matches!(c.reason.as_deref(), Some(reasons::FAILED) | Some(reasons::DENIED))
    })
}

/// An issuer's state as a request sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssuerReadiness {
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
pub fn issuer_readiness<S: Clone>(issuer: Option<&Issuer<S>>) -> IssuerReadiness {
    let Some(issuer) = issuer else {
        return IssuerReadiness::Missing;
    };
    let ready = issuer
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == reasons::READY));
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
pub enum Decision {
    /// Pending with this message, until the issuer changes.
    WaitForIssuer(String),
    /// Failed for good with this message.
    Fail(String),
    /// Sign this.
    Sign(Box<(ValidatedCsr, CertificateTemplate)>),
}

/// Applies steps 6 to 8.
pub fn decide(request: &CertificateRequest, key: &IssuerKey, kind: &str, issuer: IssuerReadiness) -> Decision {
    match issuer {
        IssuerReadiness::Missing => {
            return Decision::WaitForIssuer(format!("Referenced {kind} {key} not found"));
        }
        IssuerReadiness::NotReady { reason, message } => {
            return Decision::WaitForIssuer(format!("Referenced {kind} {key} is not ready: {reason}: {message}"));
        }
        IssuerReadiness::Ready => {}
    }
    match validate(request) {
        Ok(checked) => Decision::Sign(Box::new(checked)),
        Err(message) => Decision::Fail(message),
    }
}

/// Step 8: the CSR's own checks, then the policy.
pub fn validate(request: &CertificateRequest) -> Result<(ValidatedCsr, CertificateTemplate), String> {
    let csr = parse_csr(&request.spec.request).map_err(|e| e.to_string())?;
    let profile = RequestedProfile {
        duration: request.spec.duration.clone(),
        is_ca: request.spec.is_ca,
        usages: request.spec.usages.clone(),
    };
    let template = certificate_template(&profile, &csr).map_err(|e| e.to_string())?;
    Ok((csr, template))
}
