//! Certificate revocation lists: an X.509 v2 CRL (RFC 5280, section 5) signed by the issuing CA
//! through the same [`SigningKey`] seam as certificates, so that a key on a token signs CRLs too.
//!
//! The CRL carries the CA's subject as its issuer (byte for byte), thisUpdate and nextUpdate, one
//! entry per revoked serial with its revocation date and reason (no reasonCode for
//! `unspecified`, as RFC 5280 asks), and the authority key identifier and CRL number extensions.
//! Before it is returned, its signature is verified with the CA certificate's public key by
//! OpenSSL: a CRL that would not verify is never published.

use std::time::SystemTime;

use der::asn1::{AnyRef, OctetString, Uint};
use der::{Decode, Encode, Enumerated, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::time::Time;

use super::chain::CaBundle;
use super::issue::{assemble, extension};
use super::key::SigningKey;
use super::oids;
use super::sign::CaSignError;

/// Why a certificate was revoked: RFC 5280's CRLReason (value 7 is not used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumerated)]
#[repr(u32)]
#[non_exhaustive]
pub enum RevocationReason {
    /// No reason given (written as no reasonCode at all).
    Unspecified = 0,
    /// The certificate's key was compromised.
    KeyCompromise = 1,
    /// The CA's key was compromised.
    CaCompromise = 2,
    /// The subject's name or other information changed.
    AffiliationChanged = 3,
    /// The certificate was replaced.
    Superseded = 4,
    /// The certificate is no longer needed.
    CessationOfOperation = 5,
    /// On hold (may be released).
    CertificateHold = 6,
    /// Released from hold (delta CRLs only).
    RemoveFromCrl = 8,
    /// A privilege was withdrawn.
    PrivilegeWithdrawn = 9,
    /// An attribute authority's key was compromised.
    AaCompromise = 10,
}

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The certificate's serial number: big-endian, as it appears in the certificate (leading
    /// zero bytes are dropped).
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub revoked_at: SystemTime,
    /// Why.
    pub reason: RevocationReason,
}

/// What a CRL says, apart from who signs it.
#[derive(Clone, Debug)]
pub struct CrlContents {
    /// The CRL number: grows with every CRL the CA issues.
    pub number: u64,
    /// thisUpdate.
    pub this_update: SystemTime,
    /// nextUpdate: when the next CRL will be out at the latest.
    pub next_update: SystemTime,
    /// The revoked certificates.
    pub entries: Vec<RevokedEntry>,
}

#[derive(Sequence)]
struct RevokedCertificate {
    serial: Uint,
    revocation_date: Time,
    #[asn1(optional = "true")]
    extensions: Option<Vec<Extension>>,
}

#[derive(Sequence)]
struct TbsCertList<'a> {
    version: u8,
    signature: AlgorithmIdentifierOwned,
    issuer: AnyRef<'a>,
    this_update: Time,
    next_update: Time,
    #[asn1(optional = "true")]
    revoked: Option<Vec<RevokedCertificate>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

/// Signs a CRL for the issuing CA of `ca` with `key` (which must be that CA's key): DER.
pub fn sign_crl(ca: &CaBundle, key: &impl SigningKey, contents: &CrlContents) -> Result<Vec<u8>, CaSignError> {
    let encoding = |e: der::Error| CaSignError::Encoding(format!("CRL encoding failed: {e}"));
    if contents.next_update <= contents.this_update {
        return Err(CaSignError::Encoding("the CRL's nextUpdate must come after its thisUpdate".into()));
    }
    let issuer = ca.issuer_info();
    let algorithm = key.algorithm();
    let mut revoked = Vec::with_capacity(contents.entries.len());
    for entry in &contents.entries {
        let extensions = match entry.reason {
            RevocationReason::Unspecified => None,
            reason => Some(vec![extension(oids::CRL_REASON, false, &reason).map_err(encoding)?]),
        };
        let serial = Uint::new(&entry.serial).map_err(encoding)?;
        revoked.push(RevokedCertificate {
            serial,
            revocation_date: Time::try_from(entry.revoked_at).map_err(encoding)?,
            extensions,
        });
    }
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(issuer.key_id.clone()).map_err(encoding)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let number = Uint::new(&contents.number.to_be_bytes()).map_err(encoding)?;
    let tbs = TbsCertList {
        version: 1, // v2
        signature: algorithm.clone(),
        issuer: AnyRef::from_der(&issuer.subject).map_err(encoding)?,
        this_update: Time::try_from(contents.this_update).map_err(encoding)?,
        next_update: Time::try_from(contents.next_update).map_err(encoding)?,
        revoked: (!revoked.is_empty()).then_some(revoked),
        extensions: vec![
            extension(oids::AUTHORITY_KEY_IDENTIFIER, false, &aki).map_err(encoding)?,
            extension(oids::CRL_NUMBER, false, &number).map_err(encoding)?,
        ],
    }
    .to_der()
    .map_err(encoding)?;
    let signature = key.sign(&tbs)?;
    let crl = assemble(&tbs, &algorithm, &signature)
        .map_err(|e| CaSignError::Encoding(format!("CRL encoding failed: {e}")))?;
    super::verify::verify_crl_signature(&crl, ca).map_err(CaSignError::Unverifiable)?;
    Ok(crl)
}

impl RevocationReason {
    /// The reason with RFC 5280 code `code`, if there is one (7 is unused).
    pub fn from_code(code: u8) -> Option<Self> {
        use RevocationReason::*;
        [
            Unspecified,
            KeyCompromise,
            CaCompromise,
            AffiliationChanged,
            Superseded,
            CessationOfOperation,
            CertificateHold,
            RemoveFromCrl,
            PrivilegeWithdrawn,
            AaCompromise,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }

    /// RFC 5280's code.
    pub fn code(self) -> u8 {
        // Invariant: every discriminant is at most 10.
        self as u8
    }
}

/// What revocation needs to know of an issued certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafFacts {
    /// The serial number, big-endian without leading zero bytes (as a CRL entry carries it).
    pub serial: Vec<u8>,
    /// notAfter: the entry may leave the CRL after it.
    pub not_after: SystemTime,
    /// The SubjectPublicKeyInfo DER.
    pub public_key_info: Vec<u8>,
}

impl LeafFacts {
    /// Reads a certificate (DER).
    pub fn parse(der: &[u8]) -> Result<Self, String> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| format!("the certificate does not parse: {e}"))?;
        let tbs = cert.tbs_certificate();
        Ok(Self {
            serial: trim_serial(tbs.serial_number().as_bytes()),
            not_after: tbs.validity().not_after.to_system_time(),
            public_key_info: tbs
                .subject_public_key_info()
                .to_der()
                .map_err(|e| format!("the certificate's key does not encode: {e}"))?,
        })
    }
}

/// A serial number's bytes without leading zero bytes (one zero byte for zero itself).
pub fn trim_serial(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len().saturating_sub(1));
    bytes[first..].to_vec()
}

/// What a published CRL says about itself, for metrics and for deciding when to sign again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlFacts {
    /// The CRL number extension, if present and at most 64 bits.
    pub number: Option<u64>,
    /// thisUpdate.
    pub this_update: SystemTime,
    /// nextUpdate, if present.
    pub next_update: Option<SystemTime>,
    /// How many certificates it lists.
    pub entries: usize,
}

impl CrlFacts {
    /// Reads a CRL (DER). Its signature is not checked.
    pub fn parse(der: &[u8]) -> Result<Self, String> {
        let crl = x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der)
            .map_err(|e| format!("the CRL does not parse: {e}"))?;
        let tbs = &crl.tbs_cert_list;
        let number = tbs.crl_extensions.iter().flatten().find(|e| e.extn_id == oids::CRL_NUMBER).and_then(|e| {
            let value = Uint::from_der(e.extn_value.as_bytes()).ok()?;
            let bytes = trim_serial(value.as_bytes());
            (bytes.len() <= 8).then(|| bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
        });
        Ok(Self {
            number,
            this_update: tbs.this_update.to_system_time(),
            next_update: tbs.next_update.map(|t| t.to_system_time()),
            entries: tbs.revoked_certificates.as_ref().map_or(0, Vec::len),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};

    use super::*;
    use crate::x509::{PublishedUrls, RequestedProfile, SoftwareKey, certificate_template, parse_csr, sign_with_ca};

    fn run(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("the openssl CLI (scripts/prereqs.sh installs it)");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    }

    fn pem_der(pem: &str) -> Vec<u8> {
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap().1.contents
    }

    fn leaf(ca: &CaBundle, key: &SoftwareKey, name: &str) -> (String, Vec<u8>) {
        let leaf_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let csr = params.serialize_request(&leaf_key).unwrap().pem().unwrap();
        let csr = parse_csr(csr.as_bytes()).unwrap();
        let template = certificate_template(&RequestedProfile::default(), &csr).unwrap();
        let issued = sign_with_ca(ca, key, &template, &PublishedUrls::default(), SystemTime::now()).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(issued.chain_pem.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents).unwrap();
        (issued.chain_pem, cert.raw_serial().to_vec())
    }

    /// A CRL revoking two of three leaves: `openssl crl -verify` accepts it with the CA, and
    /// `openssl verify -crl_check` refuses exactly the two revoked leaves; the CRL says what it
    /// was given (number, dates, reasons; no reasonCode for unspecified).
    #[test]
    fn openssl_accepts_the_crl_and_refuses_exactly_the_revoked_leaves() {
        let rsa = || KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
        let keys: [(&str, KeyPair); 4] = [
            ("P-256", KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()),
            ("P-384", KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap()),
            ("Ed25519", KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap()),
            ("RSA-2048", rsa()),
        ];
        for (alg, ca_key) in keys {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(rcgen::DnType::CommonName, "CRL test CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let ca_pem = params.self_signed(&ca_key).unwrap().pem();
            let ca = CaBundle::parse(ca_pem.as_bytes(), None).unwrap();
            let key = SoftwareKey::from_pem(ca_key.serialize_pem().as_bytes()).unwrap();
            let leaves: Vec<(String, Vec<u8>)> =
                ["a.example", "b.example", "c.example"].iter().map(|n| leaf(&ca, &key, n)).collect();
            let now = SystemTime::now();
            let entries = [
                RevokedEntry { serial: leaves[0].1.clone(), revoked_at: now, reason: RevocationReason::KeyCompromise },
                RevokedEntry { serial: leaves[1].1.clone(), revoked_at: now, reason: RevocationReason::Unspecified },
            ];
            let contents = CrlContents {
                number: 300,
                this_update: now - Duration::from_secs(60),
                next_update: now + Duration::from_secs(3600),
                entries: entries.to_vec(),
            };
            let crl = sign_crl(&ca, &key, &contents).unwrap();
            let facts = CrlFacts::parse(&crl).unwrap();
            assert_eq!((facts.number, facts.entries), (Some(300), 2), "{alg}");
            assert_eq!(
                facts.next_update,
                Some(
                    contents.next_update
                        - Duration::from_nanos(u64::from(
                            contents.next_update.duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
                        ))
                )
            );
            assert_eq!(LeafFacts::parse(&pem_der(&leaves[0].0)).unwrap().serial, trim_serial(&leaves[0].1));

            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
            std::fs::write(dir.path().join("crl.der"), &crl).unwrap();
            let (ok, out) = run(
                dir.path(),
                &["crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-verify", "-noout", "-text"],
            );
            assert!(ok && out.contains("verify OK"), "{alg}: {out}");
            assert!(out.contains("X509v3 CRL Number: \n                300"), "{alg}: {out}");
            assert!(out.contains("Key Compromise") && out.matches("CRL Reason Code").count() == 1, "{alg}: {out}");
            assert!(out.contains("Version 2"), "{alg}: {out}");
            let (ok, pem) = run(dir.path(), &["crl", "-inform", "DER", "-in", "crl.der", "-outform", "PEM"]);
            assert!(ok);
            std::fs::write(dir.path().join("crl.pem"), pem).unwrap();
            for (i, (chain, _)) in leaves.iter().enumerate() {
                let file = format!("leaf{i}.pem");
                std::fs::write(dir.path().join(&file), chain).unwrap();
                let (ok, out) =
                    run(dir.path(), &["verify", "-crl_check", "-CAfile", "ca.pem", "-CRLfile", "crl.pem", &file]);
                if i < 2 {
                    assert!(!ok && out.contains("certificate revoked"), "{alg} leaf {i}: {out}");
                } else {
                    assert!(ok, "{alg} leaf {i}: {out}");
                }
            }
        }
    }

    /// The CRL's signature is checked before it is returned: signed with another key, nothing is
    /// returned; dates out of order are refused.
    #[test]
    fn a_crl_that_would_not_verify_is_not_returned() {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CaBundle::parse(params.self_signed(&ca_key).unwrap().pem().as_bytes(), None).unwrap();
        let other = SoftwareKey::from_pem(KeyPair::generate().unwrap().serialize_pem().as_bytes()).unwrap();
        let now = SystemTime::now();
        let contents = CrlContents {
            number: 1,
            this_update: now,
            next_update: now + Duration::from_secs(60),
            entries: Vec::new(),
        };
        assert!(matches!(sign_crl(&ca, &other, &contents), Err(CaSignError::Unverifiable(_))));
        let key = SoftwareKey::from_pem(ca_key.serialize_pem().as_bytes()).unwrap();
        assert!(sign_crl(&ca, &key, &contents).is_ok(), "an empty CRL");
        let backwards = CrlContents { next_update: now, ..contents.clone() };
        assert!(matches!(sign_crl(&ca, &key, &backwards), Err(CaSignError::Encoding(_))));
    }
}
