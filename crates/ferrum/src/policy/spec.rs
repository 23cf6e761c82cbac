//! The policy block of an issuer's spec, as users write it (`spec.policy`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::x509::SanType;

/// What an issuer accepts beyond Ferrum's default request rules. Every rule is optional; an
/// empty policy accepts every request the default rules accept, except CA certificates.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerPolicy {
    /// subjectAltName types to accept although cert-manager's approvers cannot see them
    /// (refused by default): `OtherName`, `X400Address`, `DirectoryName`, `EdiPartyName`,
    /// `RegisteredID`.
    #[serde(default, rename = "allowedSubjectAltNameTypes", skip_serializing_if = "Vec::is_empty")]
    pub allowed_subject_alt_name_types: Vec<SanType>,
    /// The names certificates may carry. When set, every name of a request must match one of
    /// its patterns (a list left empty allows no name of that kind); when unset, any name is
    /// allowed. Patterns may use `{namespace}`, the requesting namespace, and `*`, one or
    /// more characters (dots and slashes included), e.g. `*.{namespace}.svc.cluster.local` or
    /// `spiffe://cluster.local/ns/{namespace}/*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_names: Option<AllowedNames>,
    /// The key types and smallest sizes accepted. Empty: any key Ferrum accepts (RSA 2048 to
    /// 8192 bits, ECDSA P-256, P-384 and P-521, Ed25519).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_keys: Vec<AllowedKey>,
    /// The shortest certificate lifetime accepted, a Go duration such as `24h`; shorter
    /// requests are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration: Option<String>,
    /// The longest certificate lifetime issued, a Go duration such as `720h` (at least `1h`).
    /// Longer requests are not refused: their certificates live `maxDuration`, and the
    /// request's event says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    /// The usages certificates may have, in cert-manager's names (`digital signature`,
    /// `key encipherment`, `server auth`, `client auth`...). Empty: any. A request whose
    /// `spec.usages` is empty gets cert-manager's defaults, `digital signature` and
    /// `key encipherment`, so list both to allow such requests. `cert sign` added for a CA
    /// request is governed by `allowCA`, not by this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_usages: Vec<String>,
    /// Whether requests for CA certificates (`spec.isCA: true`) are accepted. Off by default:
    /// a sub-CA can sign any name, so it escapes every other rule here.
    #[serde(default, rename = "allowCA", skip_serializing_if = "std::ops::Not::not")]
    pub allow_ca: bool,
    /// FerrumClusterIssuer only: the namespaces whose requests it serves, by their labels.
    /// Unset: every namespace. Requests from other namespaces fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
}

// `LabelSelector` derives only `PartialEq`, but its equality compares strings, vectors and
// maps of strings, so it is reflexive: the derived `PartialEq` of `IssuerPolicy` is a full
// equivalence relation.
impl Eq for IssuerPolicy {}

/// Patterns for the names a certificate may carry. Each list allows names of one kind; an
/// empty list allows none of that kind. `directoryName` and the other subjectAltName types
/// are never allowed when these rules are set.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllowedNames {
    /// Patterns for the subject's commonName, matched without regard to case. Unset: the
    /// commonName must match a `dnsNames` pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), inner(length(max = 1024)))]
    pub common_names: Option<Vec<String>>,
    /// Patterns for DNS names, matched without regard to case, e.g.
    /// `*.{namespace}.svc.cluster.local`. A requested wildcard such as `*.a.example.com` is
    /// matched as written: its `*` is an ordinary character.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 1024)))]
    pub dns_names: Vec<String>,
    /// IP ranges in CIDR notation, e.g. `10.0.0.0/8` or `fd00::/8`. An IPv4 address matches
    /// only IPv4 ranges, an IPv6 address only IPv6 ranges.
    #[serde(default, rename = "ipRanges", skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 1024)))]
    pub ip_ranges: Vec<String>,
    /// Patterns for URIs, matched case-sensitively, e.g.
    /// `spiffe://cluster.local/ns/{namespace}/*`. URIs with `.` or `..` path segments or
    /// percent-encoded `.` or `/` are refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 1024)))]
    pub uris: Vec<String>,
    /// Patterns for email addresses (subjectAltName and the subject's emailAddress), matched
    /// without regard to case, e.g. `*@{namespace}.example.com`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 1024)))]
    pub emails: Vec<String>,
}

/// A key type accepted, and its smallest size.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllowedKey {
    /// `RSA`, `ECDSA` or `Ed25519`.
    pub algorithm: KeyAlgorithmName,
    /// The smallest size accepted: RSA modulus bits (2048 to 8192), or the ECDSA curve size
    /// (256, 384 or 521 for P-256, P-384, P-521). Unset: any size. Not used with Ed25519.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 8192))]
    pub min_size: Option<u32>,
}

/// A public key algorithm, as a policy names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum KeyAlgorithmName {
    /// RSA.
    #[serde(rename = "RSA")]
    Rsa,
    /// ECDSA on P-256, P-384 or P-521.
    #[serde(rename = "ECDSA")]
    Ecdsa,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithmName {
    /// The name as written in a policy: `RSA`, `ECDSA` or `Ed25519`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::Ecdsa => "ECDSA",
            Self::Ed25519 => "Ed25519",
        }
    }
}

impl std::fmt::Display for KeyAlgorithmName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
