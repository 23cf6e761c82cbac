//! Cross-certificates: the next root of a staged rotation (see [`crate::rotation`]) certified
//! by the CA that signs today, so that a client trusting only the old root accepts leaves of
//! the new one (the chain leaf → cross-certificate → old CA).

use std::time::SystemTime;

use der::Decode;
use der::asn1::OctetString;
use der::flagset::FlagSet;
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};

use super::chain::{CaBundle, CertFacts};
use super::issue::{EncodeError, Lifetime, Subject, assemble, encode_tbs, extension, key_identifier, random_serial};
use super::key::SigningKey;
use super::oids;
use super::sign::CaSignError;

/// Certifies `next_root` (its subject, key and key identifier, so that what it signed links to
/// this certificate as to the root itself; its basic constraints, key usage, name constraints
/// and extended key usage copied, so that old-root clients trust it no more widely than its own
/// root allows) with `current` at `now`, valid until the earlier of the two expiries. Refused
/// when a pathLenConstraint of the current chain leaves no room for one more CA. Returns the PEM
/// to serve after a leaf of the next CA: the cross-certificate, then `current`'s intermediates.
/// The signature is checked before the certificate is returned.
pub fn cross_certificate(
    current: &CaBundle,
    key: &impl SigningKey,
    next_root: &CertFacts,
    now: SystemTime,
) -> Result<String, CaSignError> {
    let issuer = current.issuer_info();
    if now >= issuer.not_after {
        return Err(CaSignError::CaExpired);
    }
    // A cross-certificate for the same name is self-issued: it does not count against a
    // path length (RFC 5280 6.1.4 (l)).
    if next_root.subject != current.issuing().subject {
        current.limits.check_new_ca().map_err(|e| CaSignError::Constraint(format!("the cross-certificate: {e}")))?;
    }
    let lifetime = Lifetime::new(now, next_root.not_after.duration_since(now).unwrap_or_default(), issuer.not_after);
    let encoding = |e: der::Error| CaSignError::Encoding(format!("the cross-certificate: {e}"));
    let key_id = next_root.subject_key_id.clone().unwrap_or_else(|| key_identifier(&next_root.public_key));
    let mut extensions = copied_constraints(next_root).map_err(encoding)?;
    if !extensions.iter().any(|e| e.extn_id == oids::BASIC_CONSTRAINTS) {
        let ca = BasicConstraints { ca: true, path_len_constraint: None };
        extensions.push(extension(oids::BASIC_CONSTRAINTS, true, &ca).map_err(encoding)?);
    }
    if !extensions.iter().any(|e| e.extn_id == oids::KEY_USAGE) {
        let usages: FlagSet<KeyUsages> = KeyUsages::KeyCertSign | KeyUsages::CRLSign;
        extensions.push(extension(oids::KEY_USAGE, true, &KeyUsage(usages)).map_err(encoding)?);
    }
    let ski = SubjectKeyIdentifier(OctetString::new(key_id).map_err(encoding)?);
    extensions.push(extension(oids::SUBJECT_KEY_IDENTIFIER, false, &ski).map_err(encoding)?);
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(issuer.key_id.clone()).map_err(encoding)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    extensions.push(extension(oids::AUTHORITY_KEY_IDENTIFIER, false, &aki).map_err(encoding)?);
    let algorithm = key.algorithm();
    let subject = Subject { name: &next_root.subject, public_key_info: &next_root.public_key_info };
    let failed = |e: EncodeError| CaSignError::Encoding(e.to_string());
    let tbs = encode_tbs(subject, &issuer, &lifetime, &random_serial(), &algorithm, extensions).map_err(failed)?;
    let signature = key.sign(&tbs)?;
    let der = assemble(&tbs, &algorithm, &signature).map_err(failed)?;
    super::verify::issued_by(&der, current.issuing().der())
        .map_err(|why| CaSignError::Unverifiable(format!("the cross-certificate: {why}")))?;
    Ok(current.chain_pem(&der))
}

/// The extensions of `root` that say what it may do, as they are.
fn copied_constraints(root: &CertFacts) -> Result<Vec<Extension>, der::Error> {
    let certificate = Certificate::from_der(&root.der)?;
    let copied = [oids::BASIC_CONSTRAINTS, oids::KEY_USAGE, oids::NAME_CONSTRAINTS, oids::EXT_KEY_USAGE];
    Ok(certificate
        .tbs_certificate()
        .extensions()
        .into_iter()
        .flatten()
        .filter(|e| copied.contains(&e.extn_id))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::Command;

    use rcgen::{BasicConstraints as Bc, CertificateParams, DnType, IsCa, KeyPair};

    use super::*;
    use crate::x509::SoftwareKey;

    fn root(name: &str) -> (rcgen::Certificate, KeyPair) {
        root_with(name, Bc::Unconstrained)
    }

    fn root_with(name: &str, constraints: Bc) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(constraints);
        (params.self_signed(&key).unwrap(), key)
    }

    fn leaf(issuer_cert: &rcgen::Certificate, issuer_key: &KeyPair) -> String {
        let issuer = rcgen::Issuer::from_ca_cert_der(issuer_cert.der(), issuer_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["new.example.com".to_owned()]).unwrap();
        // As Ferrum's leaves: the AKI tells roots of the same name apart.
        params.use_authority_key_identifier_extension = true;
        params.signed_by(&key, &issuer).unwrap().pem()
    }

    fn verify(trusted: &str, chain: &str, leaf: &str) -> std::process::Output {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
            path
        };
        let (ca, untrusted, cert) = (write("ca.pem", trusted), write("chain.pem", chain), write("leaf.pem", leaf));
        Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(ca)
            .arg("-untrusted")
            .arg(untrusted)
            .arg(cert)
            .output()
            .expect("openssl must be installed (apt-get install openssl)")
    }

    /// A leaf of the new root, served with the cross-certificate, verifies for a client that
    /// trusts only the old root and for one that trusts only the new root; without the
    /// cross-certificate the old-root client refuses it.
    #[test]
    fn a_cross_certificate_lets_old_root_clients_accept_new_leaves() {
        let (old, old_key) = root("Old Root");
        let (new, new_key) = root("New Root");
        let current = CaBundle::parse(old.pem().as_bytes(), None).unwrap();
        let next = CaBundle::parse(new.pem().as_bytes(), None).unwrap();
        let signing = SoftwareKey::from_pem(old_key.serialize_pem().as_bytes()).unwrap();
        let cross = cross_certificate(&current, &signing, next.root(), SystemTime::now()).unwrap();
        assert_eq!(cross.matches("BEGIN CERTIFICATE").count(), 1, "a root has no intermediates to follow");
        let leaf = leaf(&new, &new_key);
        let old_only = verify(&old.pem(), &cross, &leaf);
        assert!(old_only.status.success(), "old root only: {}", String::from_utf8_lossy(&old_only.stderr));
        let new_only = verify(&new.pem(), &cross, &leaf);
        assert!(new_only.status.success(), "new root only: {}", String::from_utf8_lossy(&new_only.stderr));
        let without = verify(&old.pem(), &new.pem(), &leaf);
        assert!(!without.status.success(), "without the cross-certificate the old root cannot accept it");
    }

    /// cert-manager renewing a CA Certificate makes a new root with the same name: the chain
    /// still builds both ways.
    #[test]
    fn roots_with_the_same_name_cross_sign_too() {
        let (old, old_key) = root("Same Name Root");
        let (new, new_key) = root("Same Name Root");
        let current = CaBundle::parse(old.pem().as_bytes(), None).unwrap();
        let next = CaBundle::parse(new.pem().as_bytes(), None).unwrap();
        let signing = SoftwareKey::from_pem(old_key.serialize_pem().as_bytes()).unwrap();
        let cross = cross_certificate(&current, &signing, next.root(), SystemTime::now()).unwrap();
        let leaf = leaf(&new, &new_key);
        for (who, trusted) in [("old root only", old.pem()), ("new root only", new.pem())] {
            let out = verify(&trusted, &cross, &leaf);
            assert!(out.status.success(), "{who}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }

    /// The next root's constraints travel with it; a current CA whose pathLenConstraint leaves no
    /// room for one more CA cross-signs nothing.
    #[test]
    fn constraints_are_copied_and_path_lengths_respected() {
        let (old, old_key) = root("Old Root");
        let (new, _) = root_with("New Root", Bc::Constrained(1));
        let current = CaBundle::parse(old.pem().as_bytes(), None).unwrap();
        let next = CaBundle::parse(new.pem().as_bytes(), None).unwrap();
        let signing = SoftwareKey::from_pem(old_key.serialize_pem().as_bytes()).unwrap();
        let cross = cross_certificate(&current, &signing, next.root(), SystemTime::now()).unwrap();
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(cross.as_bytes())
            .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
            .unwrap();
        let facts = CaBundle::parse(cross.as_bytes(), None).unwrap();
        assert!(facts.issuing().is_ca());
        let cert = Certificate::from_der(&der).unwrap();
        let bc = cert.tbs_certificate().get_extension::<BasicConstraints>().unwrap().unwrap().1;
        assert_eq!((bc.ca, bc.path_len_constraint), (true, Some(1)), "the next root's pathLen");

        let (limited, limited_key) = root_with("Limited Root", Bc::Constrained(0));
        let current = CaBundle::parse(limited.pem().as_bytes(), None).unwrap();
        let signing = SoftwareKey::from_pem(limited_key.serialize_pem().as_bytes()).unwrap();
        let refused = cross_certificate(&current, &signing, next.root(), SystemTime::now());
        assert!(
            matches!(&refused, Err(CaSignError::Constraint(m)) if m.contains("pathLenConstraint 0")),
            "{refused:?}"
        );
    }

    #[test]
    fn an_expired_ca_certifies_nothing() {
        let (new, _) = root("New Root");
        let (old, old_key) = root("Old Root");
        let current = CaBundle::parse(old.pem().as_bytes(), None).unwrap();
        let next = CaBundle::parse(new.pem().as_bytes(), None).unwrap();
        let signing = SoftwareKey::from_pem(old_key.serialize_pem().as_bytes()).unwrap();
        // rcgen's roots last until 4096.
        let far = SystemTime::now() + std::time::Duration::from_secs(2_200 * 365 * 86_400);
        assert_eq!(cross_certificate(&current, &signing, next.root(), far), Err(CaSignError::CaExpired));
    }
}
