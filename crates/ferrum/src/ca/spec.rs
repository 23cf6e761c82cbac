//! The spec of `FerrumIssuer` and `FerrumClusterIssuer`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::x509::PublishedUrls;

pub use crate::issuer::{FerrumIssuerSpec, kinds};
pub use crate::policy::IssuerPolicy;

/// A CA key pair in a Secret of the issuer's namespace (for a FerrumClusterIssuer: of the
/// cluster resource namespace).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaIssuerSpec {
    /// Name of a `kubernetes.io/tls` Secret: `tls.crt` (the CA, optionally followed by its
    /// chain), `tls.key` (PKCS#1, SEC1 or PKCS#8), optional `ca.crt` (the root).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub secret_name: String,
    /// CRL distribution points, OCSP responders and issuing-certificate URLs written into
    /// issued certificates.
    #[serde(flatten)]
    pub published: PublishedUrls,
    /// A staged rotation: the CA to switch to, published in every trust bundle before it signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<NextCaSpec>,
}

/// The next CA of a staged rotation (see [`crate::rotation`]).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NextCaSpec {
    /// A Secret of the same namespace and shape as `secretName`'s, holding the next CA.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub secret_name: String,
    /// When to switch, cross-signing, re-issuance.
    #[serde(flatten)]
    pub rotation: crate::rotation::RotationSpec,
}
