//! The `pkcs11` block of both Ferrum issuer kinds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::x509::PublishedUrls;

/// Kubernetes object names (DNS subdomains), as the apiserver checks them.
const NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// A CA whose private key stays on a PKCS#11 token (an HSM, a cloud HSM, SoftHSM2): Ferrum
/// logs in, finds the key and asks the token to sign; it never reads, wraps or exports the key.
/// The CA certificate (and its chain) comes from a Secret.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pkcs11IssuerSpec {
    /// Path of the PKCS#11 module (the vendor's shared library) inside the Ferrum container.
    /// Unset: the controller's default (`--pkcs11-module`). A path the controller was not
    /// started with (`--pkcs11-module`, `--pkcs11-allowed-modules`) is refused: loading a
    /// library runs its code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub module: Option<String>,
    /// The token, by its label (CKA_LABEL of the token). Exactly one of `tokenLabel` and `slot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub token_label: Option<String>,
    /// The token, by slot ID. Exactly one of `tokenLabel` and `slot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    /// The private key's label (CKA_LABEL). At least one of `keyLabel` and `keyId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub key_label: Option<String>,
    /// The private key's ID (CKA_ID) in hexadecimal, e.g. `01` or `a1b2c3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 256), regex(pattern = r"^([0-9a-fA-F]{2})+$"))]
    pub key_id: Option<String>,
    /// The Secret holding the token's user PIN.
    pub pin_secret_ref: PinSecretRef,
    /// Name of a Secret holding the CA certificate: `tls.crt` (the certificate of the key on
    /// the token, optionally followed by its chain) and optional `ca.crt` (the root). Any
    /// `tls.key` in it is ignored.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub certificate_secret_name: String,
    /// RSA keys only: `PKCS1v15` (the default, as cert-manager's CA issuer signs) or `PSS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsa_signature_scheme: Option<RsaSignatureScheme>,
    /// CRL distribution points, OCSP responders and issuing-certificate URLs written into
    /// issued certificates.
    #[serde(flatten)]
    pub published: PublishedUrls,
}

/// A key of a Secret in the issuer's namespace (for a FerrumClusterIssuer: the cluster resource
/// namespace).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PinSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// The key in the Secret's data [default: `pin`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub key: Option<String>,
}

impl PinSecretRef {
    /// The key in the Secret's data.
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or("pin")
    }
}

/// How an RSA key signs.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
pub enum RsaSignatureScheme {
    /// RSASSA-PKCS1-v1_5.
    #[default]
    #[serde(rename = "PKCS1v15")]
    Pkcs1v15,
    /// RSASSA-PSS, MGF1 with the signature's hash and a salt as long as the hash.
    #[serde(rename = "PSS")]
    Pss,
}
