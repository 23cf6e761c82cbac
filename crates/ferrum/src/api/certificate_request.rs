//! cert-manager's `CertificateRequest` (cert-manager.io/v1), reduced to the fields an issuer
//! reads and writes.
//!
//! Hand-written rather than generated: the published binding crates sit on older kube majors.
//! Read leniently: fields added upstream are ignored, and a field that does not fit its type is
//! recorded as a problem instead of failing the watch that carries it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use serde::{Deserialize, Deserializer, Serialize};

use super::condition::Condition;
use super::lenient::{Fields, any_value};
use crate::encoding::go_base64_decode;

/// `spec` of a cert-manager `CertificateRequest`.
///
/// Read field by field (field by field, see `api::lenient`): a field the apiserver accepted that does not fit
/// is listed in [`Self::problems`] and never fails a list or a watch. `spec.request` is decoded
/// as Go's `encoding/json` decodes a `[]byte`, so Ferrum reads the bytes cert-manager reads.
#[derive(CustomResource, Clone, Debug, Default, Serialize, PartialEq)]
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
    #[serde(with = "base64_bytes")]
    pub request: Vec<u8>,
    /// The issuer asked to sign.
    pub issuer_ref: IssuerReference,
    /// Requested lifetime, a Go duration string such as `2160h0m0s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Whether the certificate is to be a CA.
    #[serde(rename = "isCA")]
    pub is_ca: bool,
    /// Requested key usages, in cert-manager's spelling (`digital signature`, `server auth`...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub usages: Vec<String>,
    /// Name of the user who created the request (set by cert-manager's webhook).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// UID of the user who created the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Fields present in the object that could not be read, as `spec.field: why`. A request
    /// of ours with any of these is refused (`Failed`) rather than signed half-read.
    #[serde(skip)]
    pub problems: Vec<String>,
}

impl<'de> Deserialize<'de> for CertificateRequestSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut f = Fields::new("spec", any_value(d)?);
        let request = match f.take::<String>("request") {
            Some(text) => go_base64_decode(&text).unwrap_or_else(|e| {
                f.problem("request", format!("not valid base64: {e}"));
                Vec::new()
            }),
            None => Vec::new(),
        };
        let issuer_ref = IssuerReference::read(&mut f);
        let spec = Self {
            request,
            issuer_ref,
            duration: f.take("duration"),
            is_ca: f.take("isCA").unwrap_or_default(),
            usages: f.take("usages").unwrap_or_default(),
            username: f.take("username"),
            uid: f.take("uid"),
            problems: Vec::new(),
        };
        Ok(Self { problems: f.problems, ..spec })
    }
}

/// Reference from a request to the issuer it asks.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq, Hash)]
pub struct IssuerReference {
    /// Issuer name.
    pub name: String,
    /// Issuer kind; empty means the group's namespaced kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// API group of the issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl IssuerReference {
    /// Reads `issuerRef` from the spec's fields. A part that does not fit reads as absent (and
    /// is a problem of the spec): a group that cannot be read names nobody, so the request is
    /// not ours and is left alone.
    fn read(spec: &mut Fields) -> Self {
        let mut f = Fields::new("spec.issuerRef", spec.raw("issuerRef"));
        let reference = Self { name: f.take("name").unwrap_or_default(), kind: f.take("kind"), group: f.take("group") };
        spec.problems.append(&mut f.problems);
        reference
    }
}

/// `status` of a cert-manager `CertificateRequest`, read leniently like the spec.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequestStatus {
    /// Conditions: `Ready`, `Approved`, `Denied`, `InvalidRequest`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// PEM chain: leaf first, then intermediates.
    #[serde(skip_serializing_if = "Vec::is_empty", with = "base64_bytes")]
    pub certificate: Vec<u8>,
    /// PEM of the root CA.
    #[serde(skip_serializing_if = "Vec::is_empty", with = "base64_bytes")]
    pub ca: Vec<u8>,
    /// When the request failed for good.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_time: Option<Time>,
    /// Fields present that could not be read. A request whose status cannot be fully read is
    /// never signed: it might already carry a certificate.
    #[serde(skip)]
    pub problems: Vec<String>,
}

impl<'de> Deserialize<'de> for CertificateRequestStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut f = Fields::new("status", any_value(d)?);
        let conditions = match f.raw("conditions") {
            None => Vec::new(),
            Some(list @ serde_json::Value::Array(_)) => Condition::read_list(Some(list)),
            Some(_) => {
                f.problem("conditions", "expected a list");
                Vec::new()
            }
        };
        let bytes = |f: &mut Fields, key: &str| match f.take::<String>(key) {
            Some(text) => go_base64_decode(&text).unwrap_or_else(|e| {
                f.problem(key, format!("not valid base64: {e}"));
                // Present but unreadable still counts as present: never sign over it.
                b"?".to_vec()
            }),
            None => Vec::new(),
        };
        let certificate = bytes(&mut f, "certificate");
        let ca = bytes(&mut f, "ca");
        let status = Self {
            conditions,
            certificate,
            ca,
            failure_time: f.raw("failureTime").and_then(|v| serde_json::from_value(v).ok()),
            problems: Vec::new(),
        };
        Ok(Self { problems: f.problems, ..status })
    }
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

/// Serde adapter for Go's `[]byte` JSON encoding (standard base64); reading goes through
/// [`go_base64_decode`] in the lenient readers above.
pub(crate) mod base64_bytes {
    use serde::Serializer;

    use crate::encoding::base64_encode;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64_encode(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: serde_json::Value) -> CertificateRequest {
        serde_json::from_value(value).expect("reading a CertificateRequest never fails")
    }

    #[test]
    fn go_base64_in_spec_request() {
        // Line breaks and non-zero trailing bits: Go accepts both, so must we (same bytes).
        let cr =
            read(json!({"metadata": {"name": "a"}, "spec": {"request": "QU\nJD\r\nRR==", "issuerRef": {"name": "i"}}}));
        assert_eq!(cr.spec.request, b"ABCE");
        assert!(cr.spec.problems.is_empty());
    }

    #[test]
    fn odd_fields_become_problems_not_errors() {
        let cr = read(json!({
            "metadata": {"name": "a"},
            "spec": {"request": "not base64!", "issuerRef": {"name": "i", "group": "ferrum.dev"}, "isCA": "yes", "usages": [1]},
            "status": {"certificate": 5, "conditions": [{"type": "Approved", "status": "True", "lastTransitionTime": "2026-11-30T10:00:00+0000"}]}
        }));
        assert_eq!(cr.spec.issuer_ref.group.as_deref(), Some("ferrum.dev"));
        assert_eq!(cr.spec.problems.len(), 3, "{:?}", cr.spec.problems);
        assert!(cr.spec.problems[0].starts_with("spec.request: not valid base64"));
        assert!(cr.condition_true("Approved"), "an odd timestamp does not hide the condition");
        let status = cr.status.as_ref().unwrap();
        assert_eq!(status.problems.len(), 1, "{:?}", status.problems);
    }

    #[test]
    fn missing_or_wrong_shaped_spec() {
        let cr = read(json!({"metadata": {"name": "a"}}));
        assert_eq!(cr.spec.issuer_ref.name, "");
        let cr = read(json!({"metadata": {"name": "a"}, "spec": "x", "status": 3}));
        assert_eq!(cr.spec.problems, ["spec: expected an object, found a string"]);
        assert_eq!(cr.status.unwrap().problems, ["status: expected an object, found a number"]);
        let cr = read(json!({"metadata": {"name": "a"}, "spec": {"issuerRef": {"group": ["ferrum.dev"]}}}));
        assert_eq!(cr.spec.issuer_ref.group, None, "an unreadable group names nobody");
    }

    #[test]
    fn a_list_with_a_poisoned_item_still_reads() {
        let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": [
            {"metadata": {"name": "bad"}, "spec": {"request": "QR=\n=", "issuerRef": 7}},
            {"metadata": {"name": "good"}, "spec": {"request": "QQ==", "issuerRef": {"name": "i"}}}
        ]});
        let list: kube::core::ObjectList<CertificateRequest> = serde_json::from_value(list).unwrap();
        assert_eq!(list.items.len(), 2);
        assert_eq!(list.items[1].spec.request, b"A");
    }
}
