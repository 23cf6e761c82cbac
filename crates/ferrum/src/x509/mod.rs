//! X.509 without Kubernetes: reading and checking a request, the signing policy, and signing
//! certificates with a CA held in memory ([`CaBundle`], [`SoftwareKey`], [`sign_with_ca`]) or
//! with any [`SigningKey`] (an HSM, a remote service).

pub(crate) mod ca_constraints;
pub(crate) mod cert_names;
pub(crate) mod chain;
pub(crate) mod constraints;
pub(crate) mod crl;
pub(crate) mod cross;
pub(crate) mod csr;
pub(crate) mod duration;
pub(crate) mod issue;
pub(crate) mod key;
pub(crate) mod names;
pub(crate) mod oids;
pub(crate) mod pem;
pub(crate) mod sign;
pub(crate) mod template;
pub(crate) mod verify;

pub use chain::{CaBundle, CertFacts, ChainError, MAX_CHAIN_PEM_BYTES};
pub use constraints::ConstraintError;
pub use crl::{CrlContents, CrlFacts, LeafFacts, RevocationReason, RevokedEntry, sign_crl, trim_serial};
pub use cross::cross_certificate;
pub use csr::{CsrError, Curve, Hash, KeyAlgorithm, MAX_CSR_PEM_BYTES, SignatureAlgorithm, ValidatedCsr, parse_csr};
pub use duration::parse_go_duration;
pub use issue::PublishedUrls;
pub use key::{KeyError, MAX_KEY_PEM_BYTES, SigningError, SigningKey, SoftwareKey};
pub use names::{NameError, NamePolicy, SanType, check_names};
pub use pem::{PemError, decode_csr_pem};
pub use sign::{CaSignError, IssuedCertificate, sign_with_ca};
pub use template::{CertificateTemplate, PolicyError, RequestedProfile, certificate_template};
pub use verify::issued_by;

/// Decodes base64 as Go's `encoding/json` decodes a `[]byte` (how the apiserver and
/// cert-manager read `spec.request`); see `docs/security.md`.
pub use crate::encoding::go_base64_decode;

#[cfg(test)]
mod tests;
