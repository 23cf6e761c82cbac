//! Issuer resources, generic over the backend spec a signer understands.
//!
//! An issuer library has to serve kinds it does not know at compile time, so an issuer is a
//! [`kube::core::Object`] with a typed `spec` and the shared [`IssuerStatus`], addressed through
//! an [`ApiResource`] built from [`IssuerKinds`]. The CRDs are generated from the same spec
//! type by [`IssuerKinds::crds`].

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceStatus,
    CustomResourceSubresources, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, GroupVersionKind, Object};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::Condition;
use super::lenient::{Fields, Parsed, any_value};

/// An issuer object of either scope, with backend spec `S`.
pub type Issuer<S> = Object<S, IssuerStatus>;

/// An issuer as the controllers read it from a watch: its spec may not fit the backend's type
/// (see [`Parsed`]), and that must not stop the watch.
pub(crate) type WatchedIssuer<S> = Object<Parsed<S>, IssuerStatus>;

/// `status` shared by every issuer kind built on this library.
#[derive(Clone, Debug, Default, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerStatus {
    /// Conditions; Ferrum owns `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The issuer's request policy in one line (see [`crate::policy`]), as last checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The roots this issuer has signed under that are still needed, the current one first
    /// (see [`crate::trust`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_generations: Vec<crate::trust::CaGeneration>,
    /// Where the issuer's roots are published as a ClusterTrustBundle, or why they are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_trust_bundle: Option<String>,
    /// A staged CA rotation in progress (see [`crate::rotation`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<crate::rotation::RotationStatus>,
}

/// Read leniently (field by field, see `api::lenient`): never fails.
impl<'de> Deserialize<'de> for IssuerStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut f = Fields::new("status", any_value(d)?);
        Ok(Self {
            conditions: Condition::read_list(f.raw("conditions")),
            policy: f.take("policy"),
            ca_generations: f.take("caGenerations").unwrap_or_default(),
            cluster_trust_bundle: f.take("clusterTrustBundle"),
            rotation: f.take("rotation"),
        })
    }
}

/// Whether an issuer kind is namespaced or cluster-scoped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IssuerScope {
    /// A namespaced issuer: serves requests of its own namespace, reads Secrets there.
    Namespaced,
    /// A cluster issuer: serves every namespace, reads Secrets from the cluster resource
    /// namespace.
    Cluster,
}

/// The names of the two issuer kinds a signer serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerKinds {
    /// API group, e.g. `ferrum.dev`.
    pub group: String,
    /// API version, e.g. `v1alpha1`.
    pub version: String,
    /// Namespaced kind, e.g. `FerrumIssuer`. An empty `issuerRef.kind` means this kind.
    pub namespaced: String,
    /// Cluster-scoped kind, e.g. `FerrumClusterIssuer`.
    pub cluster: String,
}

impl IssuerKinds {
    /// Kinds named `<prefix>Issuer` and `<prefix>ClusterIssuer` in `group`/`version`.
    pub fn new(group: &str, version: &str, prefix: &str) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            namespaced: format!("{prefix}Issuer"),
            cluster: format!("{prefix}ClusterIssuer"),
        }
    }

    /// The scope of `issuerRef` (group, kind) if it points at one of these kinds.
    pub fn scope_of(&self, group: Option<&str>, kind: Option<&str>) -> Option<IssuerScope> {
        if group != Some(self.group.as_str()) {
            return None;
        }
        match kind {
            None | Some("") => Some(IssuerScope::Namespaced),
            Some(k) if k == self.namespaced => Some(IssuerScope::Namespaced),
            Some(k) if k == self.cluster => Some(IssuerScope::Cluster),
            Some(_) => None,
        }
    }

    /// The kind name of a scope.
    pub fn kind(&self, scope: IssuerScope) -> &str {
        match scope {
            IssuerScope::Namespaced => &self.namespaced,
            IssuerScope::Cluster => &self.cluster,
        }
    }

    /// The [`ApiResource`] of a scope, for typed access through [`kube::Api`].
    pub fn api_resource(&self, scope: IssuerScope) -> ApiResource {
        let gvk = GroupVersionKind::gvk(&self.group, &self.version, self.kind(scope));
        ApiResource::from_gvk_with_plural(&gvk, &plural(self.kind(scope)))
    }

    /// The two CRDs, with the OpenAPI schema generated from `S`.
    pub fn crds<S: JsonSchema>(&self) -> [CustomResourceDefinition; 2] {
        [IssuerScope::Namespaced, IssuerScope::Cluster].map(|scope| self.crd::<S>(scope))
    }

    fn crd<S: JsonSchema>(&self, scope: IssuerScope) -> CustomResourceDefinition {
        let kind = self.kind(scope).to_owned();
        let plural = plural(&kind);
        let column = |name: &str, type_: &str, path: &str| CustomResourceColumnDefinition {
            name: name.to_owned(),
            type_: type_.to_owned(),
            json_path: path.to_owned(),
            ..Default::default()
        };
        CustomResourceDefinition {
            metadata: ObjectMeta { name: Some(format!("{plural}.{}", self.group)), ..Default::default() },
            spec: CustomResourceDefinitionSpec {
                group: self.group.clone(),
                names: CustomResourceDefinitionNames {
                    kind: kind.clone(),
                    list_kind: Some(format!("{kind}List")),
                    plural: plural.clone(),
                    singular: Some(kind.to_lowercase()),
                    categories: Some(vec!["cert-manager".to_owned()]),
                    ..Default::default()
                },
                scope: match scope {
                    IssuerScope::Namespaced => "Namespaced",
                    IssuerScope::Cluster => "Cluster",
                }
                .to_owned(),
                versions: vec![CustomResourceDefinitionVersion {
                    name: self.version.clone(),
                    served: true,
                    storage: true,
                    schema: Some(CustomResourceValidation {
                        open_api_v3_schema: Some(object_schema::<S, IssuerStatus>()),
                    }),
                    subresources: Some(CustomResourceSubresources {
                        status: Some(CustomResourceSubresourceStatus(serde_json::json!({}))),
                        ..Default::default()
                    }),
                    additional_printer_columns: Some(vec![
                        column("Ready", "string", r#".status.conditions[?(@.type=="Ready")].status"#),
                        column("Reason", "string", r#".status.conditions[?(@.type=="Ready")].reason"#),
                        column("Message", "string", r#".status.conditions[?(@.type=="Ready")].message"#),
                        column("Age", "date", ".metadata.creationTimestamp"),
                        CustomResourceColumnDefinition {
                            priority: Some(1),
                            ..column("Policy", "string", ".status.policy")
                        },
                    ]),
                    ..Default::default()
                }],
                ..Default::default()
            },
            status: None,
        }
    }
}

/// Lower-case plural of a kind: `FerrumIssuer` → `ferrumissuers`.
fn plural(kind: &str) -> String {
    format!("{}s", kind.to_lowercase())
}

/// The object schema `{spec: S, status: T}` as the apiserver wants it: structural, inlined,
/// no `$schema`.
pub(crate) fn object_schema<S: JsonSchema, T: JsonSchema>() -> JSONSchemaProps {
    #[derive(JsonSchema)]
    #[allow(dead_code)] // only its schema is used
    struct Shape<S, T> {
        spec: S,
        status: Option<T>,
    }
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .into_generator();
    let mut value = serde_json::to_value(generator.into_root_schema_for::<Shape<S, T>>()).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("title");
        map.remove("description");
    }
    // Invariant: the generator emits a JSON schema object, which always deserializes.
    serde_json::from_value(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds() -> IssuerKinds {
        IssuerKinds::new("ferrum.dev", "v1alpha1", "Ferrum")
    }

    #[test]
    fn scope_matches_group_and_kind() {
        let k = kinds();
        assert_eq!(k.scope_of(Some("ferrum.dev"), None), Some(IssuerScope::Namespaced));
        assert_eq!(k.scope_of(Some("ferrum.dev"), Some("")), Some(IssuerScope::Namespaced));
        assert_eq!(k.scope_of(Some("ferrum.dev"), Some("FerrumIssuer")), Some(IssuerScope::Namespaced));
        assert_eq!(k.scope_of(Some("ferrum.dev"), Some("FerrumClusterIssuer")), Some(IssuerScope::Cluster));
        assert_eq!(k.scope_of(Some("ferrum.dev"), Some("Issuer")), None);
        assert_eq!(k.scope_of(Some("cert-manager.io"), Some("FerrumIssuer")), None);
        assert_eq!(k.scope_of(None, Some("FerrumIssuer")), None);
    }

    #[test]
    fn crds_have_status_subresource_and_condition_map() {
        let [namespaced, cluster] = kinds().crds::<crate::ca::FerrumIssuerSpec>();
        assert_eq!(namespaced.spec.scope, "Namespaced");
        assert_eq!(cluster.spec.scope, "Cluster");
        let yaml = serde_json::to_value(&namespaced).unwrap();
        let version = &yaml["spec"]["versions"][0];
        assert_eq!(version["subresources"]["status"], serde_json::json!({}));
        let conditions = &version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], serde_json::json!(["type"]));
        let columns: Vec<_> =
            version["additionalPrinterColumns"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect();
        assert_eq!(columns, ["Ready", "Reason", "Message", "Age", "Policy"]);
    }

    #[test]
    fn api_resource_has_plural() {
        let ar = kinds().api_resource(IssuerScope::Cluster);
        assert_eq!(ar.plural, "ferrumclusterissuers");
        assert_eq!(ar.api_version, "ferrum.dev/v1alpha1");
    }
}
