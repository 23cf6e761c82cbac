//! The keys and certificates of one control plane: a CA, kube-apiserver's serving certificate,
//! the admin client certificate and the ServiceAccount token signing key.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

use crate::error::{Error, Result};

/// The generated files, all PEM, in `<run dir>/pki/`.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The CA that signs the serving and client certificates (`ca.crt`).
    pub ca_cert: PathBuf,
    /// The CA certificate's PEM text.
    pub ca_cert_pem: String,
    /// kube-apiserver's serving certificate, for 127.0.0.1 and localhost.
    pub serving_cert: PathBuf,
    /// Its key.
    pub serving_key: PathBuf,
    /// The admin client certificate's PEM text (CN `ferrum-admin`, O `system:masters`).
    pub admin_cert_pem: String,
    /// Its key's PEM text.
    pub admin_key_pem: String,
    /// The ServiceAccount token signing key (ECDSA P-256, PKCS#8).
    pub service_account_key: PathBuf,
    /// Its public half, which kube-apiserver verifies tokens with.
    pub service_account_public_key: PathBuf,
    /// For a node (see [`crate::node`]): the kubelet's client certificate
    /// (`system:node:<name>`, O `system:nodes`), its serving certificate, and kube-apiserver's
    /// client certificate towards kubelets, each `<name>.crt` + `<name>.key` in the PKI
    /// directory.
    pub dir: PathBuf,
}

impl Pki {
    /// Generates fresh keys and certificates into `dir` (created if needed).
    pub fn generate(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;

        let ca_key = KeyPair::generate().map_err(rcgen_error("generating the CA key"))?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name.push(DnType::CommonName, "ferrum-testenv CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(rcgen_error("self-signing the CA"))?;
        let ca = Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate().map_err(rcgen_error("generating a key"))?;
        let mut serving = CertificateParams::default();
        serving.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        serving.subject_alt_names = vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::DnsName(dns("localhost")?),
            SanType::DnsName(dns("kubernetes")?),
            SanType::DnsName(dns("kubernetes.default.svc")?),
            // What pods of a node dial: the `kubernetes` Service's address and the node's bridge.
            SanType::IpAddress(crate::node::KUBERNETES_SERVICE_IP),
            SanType::IpAddress(IpAddr::V4(crate::node::GATEWAY)),
            SanType::DnsName(dns("kubernetes.default")?),
            SanType::DnsName(dns("kubernetes.default.svc.cluster.local")?),
        ];
        serving.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert =
            serving.signed_by(&serving_key, &ca).map_err(rcgen_error("signing the serving certificate"))?;

        let admin_key = KeyPair::generate().map_err(rcgen_error("generating a key"))?;
        let mut admin = CertificateParams::default();
        admin.distinguished_name.push(DnType::CommonName, "ferrum-admin");
        admin.distinguished_name.push(DnType::OrganizationName, "system:masters");
        admin.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = admin.signed_by(&admin_key, &ca).map_err(rcgen_error("signing the admin certificate"))?;

        let sa_key = KeyPair::generate().map_err(rcgen_error("generating a key"))?;

        // The node's identities (used only when a node runs).
        let client = |cn: &str, org: &str| -> Result<(String, String)> {
            let key = KeyPair::generate().map_err(rcgen_error("generating a key"))?;
            let mut params = CertificateParams::default();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.distinguished_name.push(DnType::OrganizationName, org);
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params.signed_by(&key, &ca).map_err(rcgen_error("signing a client certificate"))?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let kubelet = client(&format!("system:node:{}", crate::node::NODE_NAME), "system:nodes")?;
        let apiserver_kubelet = client("kube-apiserver-kubelet-client", "system:masters")?;
        let kubelet_serving_key = KeyPair::generate().map_err(rcgen_error("generating a key"))?;
        let mut kubelet_serving = CertificateParams::default();
        kubelet_serving.distinguished_name.push(DnType::CommonName, crate::node::NODE_NAME);
        kubelet_serving.subject_alt_names =
            vec![SanType::IpAddress(IpAddr::V4(crate::node::GATEWAY)), SanType::DnsName(dns(crate::node::NODE_NAME)?)];
        kubelet_serving.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        kubelet_serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let kubelet_serving_cert = kubelet_serving
            .signed_by(&kubelet_serving_key, &ca)
            .map_err(rcgen_error("signing the kubelet's serving certificate"))?;

        let pki = Pki {
            ca_cert: dir.join("ca.crt"),
            ca_cert_pem: ca_cert.pem(),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            admin_cert_pem: admin_cert.pem(),
            admin_key_pem: admin_key.serialize_pem(),
            service_account_key: dir.join("service-account.key"),
            service_account_public_key: dir.join("service-account.pub"),
            dir: dir.to_path_buf(),
        };
        write_file(&pki.ca_cert, &pki.ca_cert_pem)?;
        write_file(&pki.serving_cert, &serving_cert.pem())?;
        write_file(&pki.serving_key, &serving_key.serialize_pem())?;
        write_file(&dir.join("admin.crt"), &pki.admin_cert_pem)?;
        write_file(&dir.join("admin.key"), &pki.admin_key_pem)?;
        write_file(&pki.service_account_key, &sa_key.serialize_pem())?;
        write_file(&pki.service_account_public_key, &sa_key.public_key_pem())?;
        for (name, (cert, key)) in [("kubelet", &kubelet), ("apiserver-kubelet-client", &apiserver_kubelet)] {
            write_file(&dir.join(format!("{name}.crt")), cert)?;
            write_file(&dir.join(format!("{name}.key")), key)?;
        }
        write_file(&dir.join("kubelet-serving.crt"), &kubelet_serving_cert.pem())?;
        write_file(&dir.join("kubelet-serving.key"), &kubelet_serving_key.serialize_pem())?;
        Ok(pki)
    }
}

fn dns(name: &str) -> Result<rcgen::string::Ia5String> {
    name.try_into().map_err(|e| Error::Invalid(format!("DNS name {name:?}: {e}")))
}

fn rcgen_error(context: &'static str) -> impl FnOnce(rcgen::Error) -> Error {
    move |e| Error::Invalid(format!("{context}: {e}"))
}

/// Writes `text` to `path`, readable by the owner only (it may be a private key).
pub(crate) fn write_file(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io(format!("creating {}", path.display())))?;
    file.write_all(text.as_bytes()).map_err(Error::io(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_chain_signed_by_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path()).unwrap();
        for file in ["ca.crt", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key"] {
            assert!(dir.path().join(file).is_file(), "{file}");
        }
        assert!(pki.admin_cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pki.admin_key_pem.contains("PRIVATE KEY"));
    }
}
