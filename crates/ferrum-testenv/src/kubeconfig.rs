//! Writing and reading kubeconfig files.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{Error, Result};
use crate::pki::write_file;

/// How a kubeconfig's user proves who it is.
pub(crate) enum Credentials<'a> {
    /// A client certificate and its key, both PEM.
    ClientCert { cert_pem: &'a str, key_pem: &'a str },
    /// A bearer token (e.g. from a TokenRequest).
    Token(&'a str),
}

/// Writes a self-contained kubeconfig (everything inline) with one cluster, user and context.
pub(crate) fn write(
    path: &Path,
    server: &str,
    ca_pem: &str,
    user: &str,
    credentials: Credentials<'_>,
    namespace: Option<&str>,
) -> Result<()> {
    let user_entry = match credentials {
        Credentials::ClientCert { cert_pem, key_pem } => serde_json::json!({
            "client-certificate-data": BASE64.encode(cert_pem),
            "client-key-data": BASE64.encode(key_pem),
        }),
        Credentials::Token(token) => serde_json::json!({ "token": token }),
    };
    let mut context = serde_json::json!({ "cluster": "ferrum-testenv", "user": user });
    if let Some(ns) = namespace {
        context["namespace"] = ns.into();
    }
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "ferrum-testenv",
            "cluster": {
                "server": server,
                "certificate-authority-data": BASE64.encode(ca_pem),
            },
        }],
        "users": [{ "name": user, "user": user_entry }],
        "contexts": [{ "name": user, "context": context }],
        "current-context": user,
    });
    let text = serde_yaml::to_string(&doc).map_err(|e| Error::Invalid(format!("serialising a kubeconfig: {e}")))?;
    write_file(path, &text)
}

/// Loads a kubeconfig file into a client configuration (its current context).
pub async fn load(path: &Path) -> Result<kube::Config> {
    let kubeconfig = Kubeconfig::read_from(path)
        .map_err(|e| Error::Invalid(format!("reading kubeconfig {}: {e}", path.display())))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Invalid(format!("loading kubeconfig {}: {e}", path.display())))
}

/// The PEM text of the CA bundle a client configuration trusts.
pub(crate) fn ca_pem(config: &kube::Config) -> Result<String> {
    let certs = config.root_cert.as_deref().unwrap_or_default();
    if certs.is_empty() {
        return Err(Error::Invalid(
            "the kubeconfig names no certificate authority; cannot derive a ServiceAccount \
             kubeconfig from it"
                .into(),
        ));
    }
    Ok(certs.iter().map(|der| pem_encode("CERTIFICATE", der)).collect())
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn written_kubeconfig_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::pki::Pki::generate(&dir.path().join("pki")).unwrap();
        let path = dir.path().join("kubeconfig");
        write(&path, "https://127.0.0.1:6443", &pki.ca_cert_pem, "sa", Credentials::Token("abc"), Some("ns1")).unwrap();
        let config = load(&path).await.unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert_eq!(config.default_namespace, "ns1");
        assert_eq!(ca_pem(&config).unwrap(), pki.ca_cert_pem.replace("\r\n", "\n"));
    }
}
