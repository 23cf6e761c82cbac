//! The shapes revocation reads and writes: an issuer's `crl` block, and the
//! `CertificateRevocation` resource (spec, status, CRD).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceStatus,
    CustomResourceSubresources, CustomResourceValidation, ValidationRule,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, GroupVersionKind, Object};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::issuer::object_schema;
use crate::api::lenient::{Fields, any_value};
use crate::api::{Condition, IssuerKinds, Parsed};
use crate::x509::RevocationReason;

/// The kind of the revocation resource.
pub const REVOCATION_KIND: &str = "CertificateRevocation";

/// An issuer's `crl` block: revocation turned on for it. The issuer's CA key signs a CRL that
/// lists every certificate revoked through a `CertificateRevocation` (and, if asked, every
/// certificate whose Certificate was deleted) until it expires; every replica serves it over
/// HTTP, and it is published into a ConfigMap of the issuer's secret namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrlSpec {
    /// Base URL of Ferrum's CRL service, e.g. `http://ferrum-crl.cert-manager.svc`. Every
    /// certificate the issuer signs names `<baseURL>/<path of this issuer's CRL>` as its CRL
    /// distribution point. Without it no distribution point is written.
    #[serde(default, rename = "baseURL", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512), regex(pattern = r"^https?://[!-~]+$"))]
    pub base_url: Option<String>,
    /// How long each CRL is valid (nextUpdate − thisUpdate), a Go duration between `5m` and
    /// `8760h`; default `24h`. A CRL is signed again when half of it has passed, and within
    /// seconds of a revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<String>,
    /// The ConfigMap (in the issuer's secret namespace) that gets a copy of the CRL (`ca.crl`,
    /// PEM) for consumers that read it from there. Default `<issuer name>-crl`. (The ledger, the
    /// record of what was revoked, is kept in the cluster resource namespace.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub config_map_name: Option<String>,
    /// Revoke (reason `cessationOfOperation`) the certificates of a cert-manager Certificate
    /// when it is deleted. Off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoke_on_certificate_deletion: bool,
    /// For a cluster issuer: how many unexpired revoked certificates one namespace may have on
    /// its CRL (default 1000), so that one tenant cannot fill the CRL for everyone. Not applied
    /// to namespaced issuers, nor to the cluster resource namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_revocations_per_namespace: Option<u32>,
}

/// A local object reference: a name in the revocation's namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
pub struct LocalRef {
    /// Name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
}

/// The issuer whose CA signed a certificate named by serial number.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
pub struct RevocationIssuerRef {
    /// Issuer name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Issuer kind (default: the namespaced kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Issuer group (default: this issuer's group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Why a certificate is revoked: RFC 5280's CRLReason names. `certificateHold` and
/// `removeFromCRL` are not offered: a revocation here is permanent.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
pub enum Reason {
    /// No reason given.
    #[default]
    #[serde(rename = "unspecified")]
    Unspecified,
    /// The certificate's private key was compromised.
    #[serde(rename = "keyCompromise")]
    KeyCompromise,
    /// The CA's key was compromised.
    #[serde(rename = "cACompromise")]
    CaCompromise,
    /// The subject's name or other information changed.
    #[serde(rename = "affiliationChanged")]
    AffiliationChanged,
    /// The certificate was replaced.
    #[serde(rename = "superseded")]
    Superseded,
    /// The certificate is no longer needed.
    #[serde(rename = "cessationOfOperation")]
    CessationOfOperation,
    /// A privilege was withdrawn.
    #[serde(rename = "privilegeWithdrawn")]
    PrivilegeWithdrawn,
    /// An attribute authority's key was compromised.
    #[serde(rename = "aACompromise")]
    AaCompromise,
}

impl From<Reason> for RevocationReason {
    fn from(reason: Reason) -> Self {
        match reason {
            Reason::Unspecified => RevocationReason::Unspecified,
            Reason::KeyCompromise => RevocationReason::KeyCompromise,
            Reason::CaCompromise => RevocationReason::CaCompromise,
            Reason::AffiliationChanged => RevocationReason::AffiliationChanged,
            Reason::Superseded => RevocationReason::Superseded,
            Reason::CessationOfOperation => RevocationReason::CessationOfOperation,
            Reason::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
            Reason::AaCompromise => RevocationReason::AaCompromise,
        }
    }
}

/// The spec of a `CertificateRevocation`: exactly one of `certificateRef`,
/// `certificateRequestRef` or `serialNumber` (with `issuerRef`). Immutable once created.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRevocationSpec {
    /// Revoke the current certificate of this cert-manager Certificate (of this namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_ref: Option<LocalRef>,
    /// Revoke the certificate issued for this CertificateRequest (of this namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_request_ref: Option<LocalRef>,
    /// Revoke this serial number (hexadecimal, colons allowed) of `issuerRef`'s CA. For a
    /// cluster issuer only in the cluster resource namespace; for a namespaced issuer only in
    /// its namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub serial_number: Option<String>,
    /// The issuer of `serialNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<RevocationIssuerRef>,
    /// Why: an RFC 5280 reason. Default `unspecified`.
    #[serde(default)]
    pub reason: Reason,
}

/// The status of a `CertificateRevocation`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRevocationStatus {
    /// Conditions; Ferrum owns `Revoked`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The revoked serial number, lower-case hexadecimal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// The issuer whose CRL lists it: `<Kind>/<name>` or `<Kind>/<namespace>/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// When it was revoked (RFC 3339): the CRL entry's revocation date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// Until when the entry stays on the CRL: the certificate's notAfter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

/// Read leniently (field by field): never fails.
impl<'de> Deserialize<'de> for CertificateRevocationStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut f = Fields::new("status", any_value(d)?);
        Ok(Self {
            conditions: Condition::read_list(f.raw("conditions")),
            serial_number: f.take("serialNumber"),
            issuer: f.take("issuer"),
            revoked_at: f.take("revokedAt"),
            not_after: f.take("notAfter"),
        })
    }
}

/// A `CertificateRevocation` as the controller reads it (a spec that does not parse is kept as
/// [`Parsed::Invalid`] and answered with a status, never stops the watch).
pub type CertificateRevocation = Object<Parsed<CertificateRevocationSpec>, CertificateRevocationStatus>;

/// The revocation resource of `kinds`' group and version.
pub fn api_resource(kinds: &IssuerKinds) -> ApiResource {
    let gvk = GroupVersionKind::gvk(&kinds.group, &kinds.version, REVOCATION_KIND);
    ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", REVOCATION_KIND.to_lowercase()))
}

/// The CRD of `CertificateRevocation` in `kinds`' group: namespaced, status subresource, the
/// spec immutable, printer columns Revoked, Reason, Serial, Issuer, Age.
pub fn crd(kinds: &IssuerKinds) -> CustomResourceDefinition {
    let ar = api_resource(kinds);
    let column = |name: &str, type_: &str, path: &str| CustomResourceColumnDefinition {
        name: name.to_owned(),
        type_: type_.to_owned(),
        json_path: path.to_owned(),
        ..Default::default()
    };
    let mut schema = object_schema::<CertificateRevocationSpec, CertificateRevocationStatus>();
    if let Some(spec) = schema.properties.as_mut().and_then(|p| p.get_mut("spec")) {
        spec.x_kubernetes_validations = Some(vec![ValidationRule {
            rule: "self == oldSelf".into(),
            message: Some("a revocation cannot be changed: create another one".into()),
            ..Default::default()
        }]);
    }
    CustomResourceDefinition {
        metadata: ObjectMeta { name: Some(format!("{}.{}", ar.plural, kinds.group)), ..Default::default() },
        spec: CustomResourceDefinitionSpec {
            group: kinds.group.clone(),
            names: CustomResourceDefinitionNames {
                kind: REVOCATION_KIND.to_owned(),
                list_kind: Some(format!("{REVOCATION_KIND}List")),
                plural: ar.plural.clone(),
                singular: Some(REVOCATION_KIND.to_lowercase()),
                short_names: Some(vec!["certrevocation".into()]),
                categories: Some(vec!["cert-manager".to_owned()]),
            },
            scope: "Namespaced".into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: kinds.version.clone(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation { open_api_v3_schema: Some(schema) }),
                subresources: Some(CustomResourceSubresources {
                    status: Some(CustomResourceSubresourceStatus(serde_json::json!({}))),
                    ..Default::default()
                }),
                additional_printer_columns: Some(vec![
                    column("Revoked", "string", r#".status.conditions[?(@.type=="Revoked")].status"#),
                    column("Reason", "string", r#".status.conditions[?(@.type=="Revoked")].reason"#),
                    column("Serial", "string", ".status.serialNumber"),
                    column("Issuer", "string", ".status.issuer"),
                    column("Age", "date", ".metadata.creationTimestamp"),
                    CustomResourceColumnDefinition {
                        priority: Some(1),
                        ..column("Message", "string", r#".status.conditions[?(@.type=="Revoked")].message"#)
                    },
                ]),
                ..Default::default()
            }],
            ..Default::default()
        },
        status: None,
    }
}
