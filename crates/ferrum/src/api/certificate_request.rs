//! cert-manager's `CertificateRequest` (cert-manager.io/v1), reduced to the fields an issuer
//! reads and writes.
//!
//! Hand-written rather than generated: the published binding crates sit on older kube majors.
//! Every optional field carries `#[serde(default)]` so that fields added upstream never break
//! deserialization.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::condition::Condition;

/// `spec` of a cert-manager `CertificateRequest`.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "cert-manager.io",
    version = "v1",
    kind = "CertificateRequest",
    namespaced,
    status = "CertificateRequestStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequestSpec {
    /// PEM-encoded PKCS#10 request, base64 in JSON (as a `[]byte` in Go).
    #[serde(default, with = "base64_bytes")]
    pub request: Vec<u8>,
    /// The issuer asked to sign.
    #[serde(default)]
    pub issuer_ref: IssuerReference,
    /// Requested lifetime, a Go duration string such as `2160h0m0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Whether the certificate is to be a CA.
    #[serde(default, rename = "isCA")]
    pub is_ca: bool,
    /// Requested key usages, in cert-manager's spelling (`digital signature`, `server auth`...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usages: Vec<String>,
    /// Name of the user who created the request (set by cert-manager's webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// UID of the user who created the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// Reference from a request to the issuer it asks.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
pub struct IssuerReference {
    /// Issuer name.
    #[serde(default)]
    pub name: String,
    /// Issuer kind; empty means the group's namespaced kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// API group of the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// `status` of a cert-manager `CertificateRequest`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequestStatus {
    /// Conditions: `Ready`, `Approved`, `Denied`, `InvalidRequest`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// PEM chain: leaf first, then intermediates.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "base64_bytes")]
    pub certificate: Vec<u8>,
    /// PEM of the root CA.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "base64_bytes")]
    pub ca: Vec<u8>,
    /// When the request failed for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_time: Option<Time>,
}

impl CertificateRequest {
    /// The condition of the given type, if present.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
    }

    /// Whether the condition of the given type is present with status `True`.
    pub fn condition_true(&self, type_: &str) -> bool {
        self.condition(type_).is_some_and(|c| c.status == "True")
    }
}

/// Serde adapter for Go's `[]byte` JSON encoding (standard base64).
pub(crate) mod base64_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::encoding::{base64_decode, base64_encode};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64_encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        base64_decode(&text).map_err(serde::de::Error::custom)
    }
}
