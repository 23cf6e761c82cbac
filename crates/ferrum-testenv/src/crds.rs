//! Installing CustomResourceDefinitions with server-side apply and waiting until they are
//! Established.
//!
//! Server-side apply because two of cert-manager's CRDs are too big for the annotation that
//! client-side apply writes. The documents are sent as they are (untyped), so fields newer than
//! our `k8s-openapi` survive.

use std::path::Path;
use std::time::Duration;

use futures::future::try_join_all;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Deserialize as _;

use crate::error::{Error, Result};
use crate::wait::{Probe, poll};

/// The field manager of everything this crate applies.
pub const FIELD_MANAGER: &str = "ferrum-testenv";

/// The CRD documents in a multi-document YAML file (other kinds and empty documents skipped).
pub fn parse_crd_file(path: &Path) -> Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path).map_err(Error::io(format!("reading CRDs from {}", path.display())))?;
    parse_crds(&text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// The CRD documents in multi-document YAML text.
pub fn parse_crds(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut crds = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value =
            serde_json::Value::deserialize(document).map_err(|e| format!("YAML document {}: {e}", index + 1))?;
        if value.get("kind").and_then(|k| k.as_str()) != Some("CustomResourceDefinition") {
            continue;
        }
        if crd_name(&value).is_none() {
            return Err(format!("YAML document {}: a CRD without metadata.name", index + 1));
        }
        crds.push(value);
    }
    Ok(crds)
}

/// Applies every CRD in `files` (server-side, forced) and waits until all are Established.
/// Returns their names.
pub async fn install(client: &kube::Client, files: &[&Path], timeout: Duration) -> Result<Vec<String>> {
    let mut crds = Vec::new();
    for file in files {
        crds.extend(parse_crd_file(file)?);
    }
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let names = try_join_all(crds.iter().map(|crd| {
        let (api, params) = (&api, &params);
        async move {
            // parse_crds keeps only documents with a name.
            let name = crd_name(crd).unwrap_or_default().to_string();
            api.patch(&name, params, &Patch::Apply(crd)).await.map_err(Error::kube(format!("applying CRD {name}")))?;
            Ok::<_, Error>(name)
        }
    }))
    .await?;
    try_join_all(names.iter().map(|name| wait_established(&api, name, timeout))).await?;
    Ok(names)
}

async fn wait_established(api: &Api<CustomResourceDefinition>, name: &str, timeout: Duration) -> Result<()> {
    poll(&format!("CRD {name} Established"), timeout, Duration::from_millis(100), || async {
        let crd = api.get(name).await.map_err(|e| Probe::NotYet(e.to_string()))?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        Ok(established.then_some(()))
    })
    .await
}

fn crd_name(crd: &serde_json::Value) -> Option<&str> {
    crd.pointer("/metadata/name").and_then(|n| n.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_named_crds() {
        let text = "---\n# comment only\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n\
                    apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
                    metadata:\n  name: things.example.com\nspec: {group: example.com}\n";
        let crds = parse_crds(text).unwrap();
        assert_eq!(crds.len(), 1);
        assert_eq!(crd_name(&crds[0]), Some("things.example.com"));
    }

    #[test]
    fn rejects_nameless_crds() {
        let text = "kind: CustomResourceDefinition\nmetadata: {}\n";
        assert!(parse_crds(text).is_err());
    }
}
