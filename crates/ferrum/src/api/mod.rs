//! Kubernetes API types: cert-manager's CertificateRequest, conditions, and generic issuers.

pub mod certificate_request;
pub mod condition;
pub mod issuer;
pub(crate) mod lenient;

pub use certificate_request::{CertificateRequest, CertificateRequestSpec, CertificateRequestStatus, IssuerReference};
pub use condition::{Condition, ConditionStatus};
pub use issuer::{Issuer, IssuerKinds, IssuerScope, IssuerStatus, WatchedIssuer};
pub use lenient::Parsed;
