//! The spec of `FerrumIssuer` and `FerrumClusterIssuer`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::IssuerKinds;
pub use crate::policy::IssuerPolicy;

/// Ferrum's kinds: `FerrumIssuer` and `FerrumClusterIssuer` in `ferrum.dev/v1alpha1`.
pub fn kinds() -> IssuerKinds {
    IssuerKinds::new("ferrum.dev", "v1alpha1", "Ferrum")
}

/// The spec of both Ferrum issuer kinds: exactly one backend block.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FerrumIssuerSpec {
    /// Sign with a CA certificate and private key stored in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaIssuerSpec>,
    /// What this issuer signs: names (patterns that may use the requesting namespace), keys,
    /// lifetimes, usages, CA certificates, and for a cluster issuer which namespaces it serves.
    /// Not a backend. Without it: any name the CA may vouch for, no CA certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<IssuerPolicy>,
}

impl FerrumIssuerSpec {
    /// How many backend blocks are set.
    pub fn backend_count(&self) -> usize {
        usize::from(self.ca.is_some())
    }
}

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
    /// CRL distribution point URLs written into issued certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crl_distribution_points: Vec<String>,
    /// OCSP responder URLs written into issued certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ocsp_servers: Vec<String>,
    /// URLs where the issuing certificate can be fetched, written into issued certificates.
    #[serde(default, rename = "issuingCertificateURLs", skip_serializing_if = "Vec::is_empty")]
    pub issuing_certificate_urls: Vec<String>,
}
