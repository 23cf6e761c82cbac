//! A CA's certificate bundle (`tls.crt`, optional `ca.crt`): parsing, the facts a signer needs,
//! and the chain layout written into a request's status.

use std::time::SystemTime;

use der::{Decode, Encode};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};

use super::issue::{IssuerInfo, key_identifier};
use crate::encoding::pem_encode;

/// cert-manager's cap on the PEM size of a certificate chain.
pub const MAX_CHAIN_PEM_BYTES: usize = 95_000;

/// Why a CA bundle is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// Over the PEM size cap.
    #[error("{field} is {size} bytes, over the limit of {MAX_CHAIN_PEM_BYTES} bytes")]
    TooLarge {
        /// Which Secret key.
        field: &'static str,
        /// Size seen.
        size: usize,
    },
    /// No certificate in the PEM.
    #[error("{0} holds no PEM block labelled CERTIFICATE")]
    Empty(&'static str),
    /// A certificate does not parse.
    #[error("{field} holds a certificate that does not parse: {reason}")]
    Malformed {
        /// Which Secret key.
        field: &'static str,
        /// The parser's complaint.
        reason: String,
    },
}

/// One parsed certificate with the facts we use.
#[derive(Clone, Debug)]
pub struct CertFacts {
    /// DER.
    pub(crate) der: Vec<u8>,
    /// Subject Name DER.
    pub(crate) subject: Vec<u8>,
    /// Issuer Name DER.
    pub(crate) issuer: Vec<u8>,
    /// `subjectPublicKey` bits.
    pub(crate) public_key: Vec<u8>,
    /// The whole SubjectPublicKeyInfo DER (algorithm and parameters with the key).
    pub(crate) public_key_info: Vec<u8>,
    /// Subject key identifier extension, if present.
    pub(crate) subject_key_id: Option<Vec<u8>>,
    /// Basic constraints `cA`.
    pub(crate) is_ca: bool,
    /// Whether the key may sign certificates: no keyUsage extension, or one with keyCertSign.
    pub(crate) may_sign_certificates: bool,
    /// `notBefore`.
    pub(crate) not_before: SystemTime,
    /// `notAfter`.
    pub(crate) not_after: SystemTime,
}

impl CertFacts {
    fn parse(der: &[u8], field: &'static str) -> Result<Self, ChainError> {
        let malformed = |e: der::Error| ChainError::Malformed { field, reason: e.to_string() };
        let cert = Certificate::from_der(der).map_err(malformed)?;
        let tbs = cert.tbs_certificate();
        let is_ca = tbs.get_extension::<BasicConstraints>().map_err(malformed)?.is_some_and(|(_, bc)| bc.ca);
        let subject_key_id =
            tbs.get_extension::<SubjectKeyIdentifier>().map_err(malformed)?.map(|(_, ski)| ski.0.as_bytes().to_vec());
        let may_sign_certificates = tbs
            .get_extension::<KeyUsage>()
            .map_err(malformed)?
            .is_none_or(|(_, ku)| ku.0.contains(KeyUsages::KeyCertSign));
        Ok(Self {
            der: der.to_vec(),
            subject: tbs.subject().to_der().map_err(malformed)?,
            issuer: tbs.issuer().to_der().map_err(malformed)?,
            public_key: tbs.subject_public_key_info().subject_public_key.raw_bytes().to_vec(),
            public_key_info: tbs.subject_public_key_info().to_der().map_err(malformed)?,
            subject_key_id,
            is_ca,
            may_sign_certificates,
            not_before: tbs.validity().not_before.to_system_time(),
            not_after: tbs.validity().not_after.to_system_time(),
        })
    }

    /// The certificate's DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Whether basicConstraints says cA.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    /// notBefore.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// notAfter.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The `subjectPublicKey` bits.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn public_key_info(&self) -> &[u8] {
        &self.public_key_info
    }

    pub(crate) fn self_issued(&self) -> bool {
        self.subject == self.issuer
    }
}

/// A CA bundle: the issuing certificate first, then the rest of its chain.
#[derive(Clone, Debug)]
pub struct CaBundle {
    /// `tls.crt`, in order.
    pub(crate) chain: Vec<CertFacts>,
    /// The root: the self-issued end of the chain, else `ca.crt`, else the chain's last cert.
    pub(crate) root: CertFacts,
    /// PEM of the chain without a self-issued root, encoded once (it follows every leaf).
    intermediates_pem: String,
    /// PEM of the root, encoded once.
    root_pem: String,
    /// The chain as OpenSSL objects for [`super::verify`], parsed at the first signing.
    pub(crate) openssl: super::verify::OpenSslChain,
    /// The name constraints and path lengths of every CA, read once for
    /// [`super::ca_constraints`].
    pub(crate) limits: super::ca_constraints::ChainLimits,
}

impl CaBundle {
    /// Parses `tls.crt` and the optional `ca.crt`.
    pub fn parse(tls_crt: &[u8], ca_crt: Option<&[u8]>) -> Result<Self, ChainError> {
        let chain = parse_pem_certs(tls_crt, "tls.crt")?;
        let root = match chain.last() {
            Some(last) if last.self_issued() => last.clone(),
            Some(last) => match ca_crt.filter(|c| !c.is_empty()) {
                Some(ca) => parse_pem_certs(ca, "ca.crt")?.swap_remove(0),
                None => last.clone(),
            },
            None => return Err(ChainError::Empty("tls.crt")),
        };
        let intermediates_pem =
            chain.iter().filter(|c| !c.self_issued()).map(|c| pem_encode("CERTIFICATE", &c.der)).collect();
        let root_pem = pem_encode("CERTIFICATE", &root.der);
        let limits = super::ca_constraints::ChainLimits::of(&chain, &root);
        Ok(Self { chain, root, intermediates_pem, root_pem, openssl: Default::default(), limits })
    }

    /// The issuing certificate.
    /// `tls.crt`, in order: the issuing CA first.
    pub fn chain(&self) -> &[CertFacts] {
        &self.chain
    }

    /// The root: the self-issued end of the chain, else `ca.crt`, else the chain's last cert.
    pub fn root(&self) -> &CertFacts {
        &self.root
    }

    /// The CA that signs: the first certificate of `tls.crt`.
    pub fn issuing(&self) -> &CertFacts {
        // Invariant: `parse` refuses an empty chain.
        &self.chain[0]
    }

    /// What a certificate signed by this CA takes from it. Its `not_after` is the earliest
    /// expiry in the chain (root included): a certificate that outlives any of them would
    /// stop validating before it expires.
    pub(crate) fn issuer_info(&self) -> IssuerInfo {
        let ca = self.issuing();
        let chain_not_after =
            self.chain.iter().chain(std::iter::once(&self.root)).map(|c| c.not_after).min().unwrap_or(ca.not_after);
        IssuerInfo {
            subject: ca.subject.clone(),
            key_id: ca.subject_key_id.clone().unwrap_or_else(|| key_identifier(&ca.public_key)),
            not_after: chain_not_after,
        }
    }

    /// `status.certificate`: the leaf, then the chain without a self-issued root.
    pub fn chain_pem(&self, leaf_der: &[u8]) -> String {
        let mut out = pem_encode("CERTIFICATE", leaf_der);
        out.push_str(&self.intermediates_pem);
        out
    }

    /// `status.ca`: the root.
    pub fn ca_pem(&self) -> String {
        self.root_pem.clone()
    }
}

fn parse_pem_certs(pem: &[u8], field: &'static str) -> Result<Vec<CertFacts>, ChainError> {
    if pem.len() > MAX_CHAIN_PEM_BYTES {
        return Err(ChainError::TooLarge { field, size: pem.len() });
    }
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        let der = item.map_err(|e| ChainError::Malformed { field, reason: e.to_string() })?;
        certs.push(CertFacts::parse(&der, field)?);
    }
    if certs.is_empty() {
        return Err(ChainError::Empty(field));
    }
    Ok(certs)
}
