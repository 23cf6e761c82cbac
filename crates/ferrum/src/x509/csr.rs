//! Parsing and checking a PKCS#10 certificate request: size cap, PEM, DER, algorithms,
//! key sizes and the self-signature. The only way to get a [`ValidatedCsr`] is [`parse_csr`].

use aws_lc_rs::signature::{self as sig, RsaParameters, UnparsedPublicKey, VerificationAlgorithm};
use const_oid::ObjectIdentifier;
use der::{Decode, Encode, Tagged};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;
use x509_cert::request::{CertReq, ExtensionReq};

use super::oids;
use super::pem::{PemError, decode_csr_pem};

/// cert-manager's cap on the PEM size of `spec.request`.
pub const MAX_CSR_PEM_BYTES: usize = 36_500;

/// Smallest RSA modulus accepted, in bits.
pub(crate) const MIN_RSA_BITS: u32 = 2048;
/// Largest RSA modulus accepted, in bits.
pub(crate) const MAX_RSA_BITS: u32 = 8192;

/// A hash function used in a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// A named elliptic curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// NIST P-521.
    P521,
}

/// The kind and size of a public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus size.
        bits: u32,
    },
    /// ECDSA on a named curve.
    Ecdsa(Curve),
    /// Ed25519.
    Ed25519,
}

/// An accepted signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1(Hash),
    /// RSASSA-PSS with MGF1 of the same hash and a salt as long as the hash (the only PSS
    /// parameters Go's `crypto/x509`, and so cert-manager, accepts).
    RsaPss(Hash),
    /// ECDSA.
    Ecdsa(Hash),
    /// Ed25519.
    Ed25519,
}

/// Why a request was refused. Every message says what was wrong and what is accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    /// Over the PEM size cap.
    #[error("spec.request is {size} bytes, over the limit of {MAX_CSR_PEM_BYTES} bytes")]
    TooLarge {
        /// Size seen.
        size: usize,
    },
    /// Not exactly one `CERTIFICATE REQUEST` PEM block with only whitespace around it.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// The DER is not a PKCS#10 request.
    #[error("spec.request is not a valid PKCS#10 certificate request: {0}")]
    Malformed(String),
    /// SHA-1 signatures are refused.
    #[error("the CSR is signed with SHA-1, which is refused; sign it with SHA-256 or stronger")]
    Sha1Signature,
    /// DSA keys or signatures are refused.
    #[error("DSA keys are not accepted; use RSA (2048-8192 bits), ECDSA (P-256, P-384, P-521) or Ed25519")]
    Dsa,
    /// RSA modulus out of bounds.
    #[error("RSA key of {bits} bits is not accepted: the size must be between {MIN_RSA_BITS} and {MAX_RSA_BITS} bits")]
    RsaKeySize {
        /// Modulus size seen.
        bits: u32,
    },
    /// A curve other than P-256/384/521.
    #[error("elliptic curve {0} is not accepted; use P-256, P-384 or P-521")]
    UnsupportedCurve(String),
    /// An unknown public key algorithm.
    #[error("public key algorithm {0} is not accepted; use RSA, ECDSA or Ed25519")]
    UnsupportedKey(String),
    /// An unknown or unsupported signature algorithm.
    #[error(
        "signature algorithm {0} is not accepted; use RSA (PKCS#1 v1.5, or PSS with MGF1 of the same hash and a \
         salt of the hash's length) or ECDSA with SHA-256/384/512, or Ed25519"
    )]
    UnsupportedSignature(String),
    /// The signature algorithm does not belong to the key type.
    #[error("signature algorithm {signature:?} does not match the CSR's {key:?} key")]
    AlgorithmMismatch {
        /// Signature algorithm.
        signature: SignatureAlgorithm,
        /// Key algorithm.
        key: KeyAlgorithm,
    },
    /// The self-signature does not verify.
    #[error("the CSR's signature does not verify against its own public key (was the request altered?)")]
    BadSignature,
}

/// A request whose encoding, algorithms, key size and self-signature have been checked.
#[derive(Clone, Debug)]
pub struct ValidatedCsr {
    /// The request's DER.
    pub(crate) der: Vec<u8>,
    /// The subject Name, DER, exactly as requested.
    pub(crate) subject: Vec<u8>,
    /// Whether the subject has no RDNs.
    pub(crate) subject_is_empty: bool,
    /// SubjectPublicKeyInfo DER, exactly as requested.
    pub(crate) public_key_info: Vec<u8>,
    /// The `subjectPublicKey` bits (used for key identifiers).
    pub(crate) public_key: Vec<u8>,
    /// Kind and size of the key.
    pub(crate) key: KeyAlgorithm,
    /// The algorithm the request was signed with.
    pub(crate) signature: SignatureAlgorithm,
    /// Extensions asked for in the `extensionRequest` attribute, in order.
    pub(crate) extensions: Vec<Extension>,
}

impl ValidatedCsr {
    /// The request's DER, exactly as received.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject Name, DER, exactly as requested.
    pub fn subject(&self) -> &[u8] {
        &self.subject
    }

    /// SubjectPublicKeyInfo DER, exactly as requested.
    pub fn public_key_info(&self) -> &[u8] {
        &self.public_key_info
    }

    /// Kind and size of the key.
    pub fn key(&self) -> KeyAlgorithm {
        self.key
    }

    /// The algorithm the request was signed with.
    pub fn signature(&self) -> SignatureAlgorithm {
        self.signature
    }

    /// Extensions asked for in the `extensionRequest` attribute, in order.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// The requested extension with this OID, if any.
    pub(crate) fn extension(&self, oid: ObjectIdentifier) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.extn_id == oid)
    }
}

/// Parses and checks a PEM-encoded request.
pub fn parse_csr(pem: &[u8]) -> Result<ValidatedCsr, CsrError> {
    if pem.len() > MAX_CSR_PEM_BYTES {
        return Err(CsrError::TooLarge { size: pem.len() });
    }
    let der = decode_csr_pem(pem)?;
    let req = CertReq::from_der(&der).map_err(|e| CsrError::Malformed(e.to_string()))?;
    let spki = &req.info.public_key;
    // Keys and signatures are whole bytes: a BIT STRING with unused bits is not DER that Go
    // (and so cert-manager) reads, and must not be signed either.
    if spki.subject_public_key.unused_bits() != 0 || req.signature.unused_bits() != 0 {
        return Err(CsrError::Malformed("a key or signature BIT STRING has unused bits".into()));
    }
    let key =
        key_algorithm(&spki.algorithm.oid, spki.algorithm.parameters.as_ref(), spki.subject_public_key.raw_bytes())?;
    let signature = signature_algorithm(&req.algorithm)?;
    let verifier = verifier(signature, key)?;
    let info = req.info.to_der().map_err(|e| CsrError::Malformed(e.to_string()))?;
    UnparsedPublicKey::new(verifier, spki.subject_public_key.raw_bytes())
        .verify(&info, req.signature.raw_bytes())
        .map_err(|_| CsrError::BadSignature)?;
    Ok(ValidatedCsr {
        der,
        subject: req.info.subject.to_der().map_err(|e| CsrError::Malformed(e.to_string()))?,
        subject_is_empty: req.info.subject.is_empty(),
        public_key_info: spki.to_der().map_err(|e| CsrError::Malformed(e.to_string()))?,
        public_key: spki.subject_public_key.raw_bytes().to_vec(),
        key,
        signature,
        extensions: requested_extensions(&req)?,
    })
}

pub(crate) fn key_algorithm(
    oid: &ObjectIdentifier,
    params: Option<&der::Any>,
    key: &[u8],
) -> Result<KeyAlgorithm, CsrError> {
    match *oid {
        oids::RSA_ENCRYPTION => {
            let bits = RsaParameters::public_modulus_len(key)
                .map_err(|_| CsrError::Malformed("the RSA public key does not parse".into()))?;
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(CsrError::RsaKeySize { bits });
            }
            Ok(KeyAlgorithm::Rsa { bits })
        }
        oids::EC_PUBLIC_KEY => {
            let curve = params
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or_else(|| CsrError::Malformed("the EC public key names no curve".into()))?;
            match curve {
                oids::P256 => Ok(KeyAlgorithm::Ecdsa(Curve::P256)),
                oids::P384 => Ok(KeyAlgorithm::Ecdsa(Curve::P384)),
                oids::P521 => Ok(KeyAlgorithm::Ecdsa(Curve::P521)),
                other => Err(CsrError::UnsupportedCurve(other.to_string())),
            }
        }
        oids::ED25519 => Ok(KeyAlgorithm::Ed25519),
        oids::DSA => Err(CsrError::Dsa),
        other => Err(CsrError::UnsupportedKey(other.to_string())),
    }
}

fn signature_algorithm(algorithm: &AlgorithmIdentifierOwned) -> Result<SignatureAlgorithm, CsrError> {
    use SignatureAlgorithm::*;
    match algorithm.oid {
        oids::SHA256_WITH_RSA => Ok(RsaPkcs1(Hash::Sha256)),
        oids::SHA384_WITH_RSA => Ok(RsaPkcs1(Hash::Sha384)),
        oids::SHA512_WITH_RSA => Ok(RsaPkcs1(Hash::Sha512)),
        oids::ECDSA_WITH_SHA256 => Ok(Ecdsa(Hash::Sha256)),
        oids::ECDSA_WITH_SHA384 => Ok(Ecdsa(Hash::Sha384)),
        oids::ECDSA_WITH_SHA512 => Ok(Ecdsa(Hash::Sha512)),
        oids::ED25519 => Ok(Ed25519),
        oids::SHA1_WITH_RSA | oids::ECDSA_WITH_SHA1 => Err(CsrError::Sha1Signature),
        oids::DSA_WITH_SHA1 | oids::DSA_WITH_SHA256 => Err(CsrError::Dsa),
        oids::RSASSA_PSS => pss_hash(algorithm.parameters.as_ref()).map(RsaPss),
        other => Err(CsrError::UnsupportedSignature(other.to_string())),
    }
}

/// RSASSA-PSS-params (RFC 4055). Absent fields take their ASN.1 defaults (SHA-1, MGF1 with
/// SHA-1, salt 20, trailer 1), which the checks below then refuse by name, as Go does.
#[derive(der::Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u32>,
}

/// The hash of an accepted set of PSS parameters: the only ones Go's `crypto/x509` verifies
/// (SHA-256/384/512, MGF1 with the same hash, salt as long as the hash, trailer field 1).
/// Anything else is refused, naming what differs.
fn pss_hash(params: Option<&der::Any>) -> Result<Hash, CsrError> {
    let refuse = |why: &str| CsrError::UnsupportedSignature(format!("RSASSA-PSS with {why}"));
    let params = params
        .and_then(|p| p.to_der().ok())
        .and_then(|der| PssParams::from_der(&der).ok())
        .ok_or_else(|| refuse("missing or malformed parameters"))?;
    let null_or_absent =
        |p: &Option<der::Any>| p.as_ref().is_none_or(|a| a.tag() == der::Tag::Null && a.value().is_empty());
    let Some(hash_algorithm) = params.hash else {
        return Err(refuse("SHA-1 (the default hash); use SHA-256, SHA-384 or SHA-512"));
    };
    let (hash, salt) = match hash_algorithm.oid {
        oids::SHA256 => (Hash::Sha256, 32),
        oids::SHA384 => (Hash::Sha384, 48),
        oids::SHA512 => (Hash::Sha512, 64),
        other => return Err(refuse(&format!("hash {other}; use SHA-256, SHA-384 or SHA-512"))),
    };
    if !null_or_absent(&hash_algorithm.parameters) {
        return Err(refuse("parameters on its hash algorithm"));
    }
    let mgf_hash = params
        .mask_gen
        .as_ref()
        .filter(|m| m.oid == oids::MGF1)
        .and_then(|m| m.parameters.as_ref())
        .and_then(|p| p.to_der().ok())
        .and_then(|der| AlgorithmIdentifierOwned::from_der(&der).ok());
    match mgf_hash {
        Some(mgf) if mgf.oid == hash_algorithm.oid && null_or_absent(&mgf.parameters) => {}
        _ => return Err(refuse("a mask generation other than MGF1 with the signature's own hash")),
    }
    let salt_length = params.salt_length.unwrap_or(20);
    if salt_length != salt {
        return Err(refuse(&format!("a salt of {salt_length} bytes; the salt must be as long as the hash ({salt})")));
    }
    if params.trailer_field.is_some_and(|t| t != 1) {
        return Err(refuse("a trailer field other than 1"));
    }
    Ok(hash)
}

pub(crate) fn verifier(
    signature: SignatureAlgorithm,
    key: KeyAlgorithm,
) -> Result<&'static dyn VerificationAlgorithm, CsrError> {
    use {Curve::*, Hash::*};
    let v: &'static dyn VerificationAlgorithm = match (signature, key) {
        (SignatureAlgorithm::RsaPkcs1(Sha256), KeyAlgorithm::Rsa { .. }) => &sig::RSA_PKCS1_2048_8192_SHA256,
        (SignatureAlgorithm::RsaPkcs1(Sha384), KeyAlgorithm::Rsa { .. }) => &sig::RSA_PKCS1_2048_8192_SHA384,
        (SignatureAlgorithm::RsaPkcs1(Sha512), KeyAlgorithm::Rsa { .. }) => &sig::RSA_PKCS1_2048_8192_SHA512,
        (SignatureAlgorithm::RsaPss(Sha256), KeyAlgorithm::Rsa { .. }) => &sig::RSA_PSS_2048_8192_SHA256,
        (SignatureAlgorithm::RsaPss(Sha384), KeyAlgorithm::Rsa { .. }) => &sig::RSA_PSS_2048_8192_SHA384,
        (SignatureAlgorithm::RsaPss(Sha512), KeyAlgorithm::Rsa { .. }) => &sig::RSA_PSS_2048_8192_SHA512,
        (SignatureAlgorithm::Ecdsa(Sha256), KeyAlgorithm::Ecdsa(P256)) => &sig::ECDSA_P256_SHA256_ASN1,
        (SignatureAlgorithm::Ecdsa(Sha384), KeyAlgorithm::Ecdsa(P256)) => &sig::ECDSA_P256_SHA384_ASN1,
        (SignatureAlgorithm::Ecdsa(Sha512), KeyAlgorithm::Ecdsa(P256)) => &sig::ECDSA_P256_SHA512_ASN1,
        (SignatureAlgorithm::Ecdsa(Sha256), KeyAlgorithm::Ecdsa(P384)) => &sig::ECDSA_P384_SHA256_ASN1,
        (SignatureAlgorithm::Ecdsa(Sha384), KeyAlgorithm::Ecdsa(P384)) => &sig::ECDSA_P384_SHA384_ASN1,
        (SignatureAlgorithm::Ecdsa(Sha512), KeyAlgorithm::Ecdsa(P384)) => &sig::ECDSA_P384_SHA512_ASN1,
        (SignatureAlgorithm::Ecdsa(Sha256), KeyAlgorithm::Ecdsa(P521)) => &sig::ECDSA_P521_SHA256_ASN1,
        (SignatureAlgorithm::Ecdsa(Sha384), KeyAlgorithm::Ecdsa(P521)) => &sig::ECDSA_P521_SHA384_ASN1,
        (SignatureAlgorithm::Ecdsa(Sha512), KeyAlgorithm::Ecdsa(P521)) => &sig::ECDSA_P521_SHA512_ASN1,
        (SignatureAlgorithm::Ed25519, KeyAlgorithm::Ed25519) => &sig::ED25519,
        (signature, key) => return Err(CsrError::AlgorithmMismatch { signature, key }),
    };
    Ok(v)
}

fn requested_extensions(req: &CertReq) -> Result<Vec<Extension>, CsrError> {
    let mut out = Vec::new();
    for attr in req.info.attributes.iter().filter(|a| a.oid == oids::EXTENSION_REQUEST) {
        for value in attr.values.iter() {
            let bytes = value.to_der().map_err(|e| CsrError::Malformed(e.to_string()))?;
            let ExtensionReq(exts) = ExtensionReq::from_der(&bytes)
                .map_err(|e| CsrError::Malformed(format!("extensionRequest attribute: {e}")))?;
            out.extend(exts);
        }
    }
    for (i, e) in out.iter().enumerate() {
        if out[..i].iter().any(|p| p.extn_id == e.extn_id) {
            return Err(CsrError::Malformed(format!("extension {} is requested twice", e.extn_id)));
        }
    }
    Ok(out)
}

/// The hash of an RSASSA-PSS AlgorithmIdentifier, as certificates and CSRs are judged (tests of
/// other modules).
#[cfg(test)]
pub(crate) fn pss_hash_for_tests(algorithm: &AlgorithmIdentifierOwned) -> Result<Hash, String> {
    match signature_algorithm(algorithm) {
        Ok(SignatureAlgorithm::RsaPss(hash)) => Ok(hash),
        other => Err(format!("{other:?}")),
    }
}
