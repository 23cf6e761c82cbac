//! Kubernetes API types: cert-manager's CertificateRequest, conditions, and generic issuers.

pub(crate) mod certificate_request;
pub(crate) mod condition;
pub(crate) mod issuer;
pub(crate) mod lenient;

pub use certificate_request::{CertificateRequest, CertificateRequestSpec, CertificateRequestStatus, IssuerReference};
pub use condition::Condition;
pub(crate) use condition::ConditionStatus;
pub(crate) use issuer::WatchedIssuer;
pub use issuer::{Issuer, IssuerKinds, IssuerScope, IssuerStatus};
pub use lenient::Parsed;
