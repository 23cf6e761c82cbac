//! CA private keys held in memory, and the [`SigningKey`] trait that lets the
//! signature come from anywhere (this software key, an HSM, a remote service).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use der::asn1::{Any, Null};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use spki::AlgorithmIdentifierOwned;

use super::csr::Curve;
use super::oids;

/// cert-manager's cap on the PEM size of a private key.
pub const MAX_KEY_PEM_BYTES: usize = 13_000;

/// Something that signs the DER of a TBSCertificate.
pub trait SigningKey: Send + Sync {
    /// The AlgorithmIdentifier of the signatures this signer makes.
    fn algorithm(&self) -> AlgorithmIdentifierOwned;
    /// The `subjectPublicKey` bits of the signing key, to match against the CA certificate.
    fn public_key(&self) -> &[u8];
    /// Signs `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError>;
}

/// The signing operation failed. Carries no key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("signing failed: {message}")]
#[non_exhaustive]
pub struct SigningError {
    /// What went wrong.
    pub message: String,
    /// The key itself is gone or may no longer sign (deleted from its token, say): the issuer
    /// is broken until it is checked again, rather than this one request failing for a while.
    pub key_unusable: bool,
}

impl SigningError {
    /// A failure that may pass (a busy device, a session that closed): retried.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), key_unusable: false }
    }

    /// The key is gone or may no longer sign: the issuer is not usable until checked again.
    pub fn key_unusable(message: impl Into<String>) -> Self {
        Self { message: message.into(), key_unusable: true }
    }
}

/// Why a private key was not usable. Messages never contain key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Over the PEM size cap.
    #[error("the private key PEM is {0} bytes, over the limit of {MAX_KEY_PEM_BYTES} bytes")]
    TooLarge(usize),
    /// No private-key PEM block.
    #[error("no PEM block labelled PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY was found")]
    NotPem,
    /// The key did not load as any accepted type.
    #[error("the {0} private key could not be loaded as RSA (2048-8192 bits), ECDSA P-256/P-384/P-521 or Ed25519")]
    Unsupported(&'static str),
}

/// A CA private key held in memory. `Debug` prints no key material.
pub struct SoftwareKey(Inner);

/// The loaded key; private so that a key and its algorithm can only come from the key itself.
enum Inner {
    /// RSA, signing with PKCS#1 v1.5 and SHA-256/384/512 by key size (as Go does).
    Rsa(RsaKeyPair),
    /// ECDSA, hash by curve (as Go does): SHA-256 for P-256, SHA-384 for P-384, SHA-512 for P-521.
    Ecdsa(EcdsaKeyPair, Curve),
    /// Ed25519.
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.0 {
            Inner::Rsa(_) => "Rsa",
            Inner::Ecdsa(..) => "Ecdsa",
            Inner::Ed25519(_) => "Ed25519",
        };
        write!(f, "SoftwareKey::{kind}(<redacted>)")
    }
}

impl SoftwareKey {
    /// Loads a PKCS#1, SEC1 or PKCS#8 PEM key.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        if pem.len() > MAX_KEY_PEM_BYTES {
            return Err(KeyError::TooLarge(pem.len()));
        }
        let key = PrivateKeyDer::from_pem_slice(pem).map_err(|_| KeyError::NotPem)?;
        let ecdsa = |der: &[u8]| {
            [
                (&sig::ECDSA_P256_SHA256_ASN1_SIGNING, Curve::P256),
                (&sig::ECDSA_P384_SHA384_ASN1_SIGNING, Curve::P384),
                (&sig::ECDSA_P521_SHA512_ASN1_SIGNING, Curve::P521),
            ]
            .into_iter()
            .find_map(|(alg, curve)| EcdsaKeyPair::from_private_key_der(alg, der).ok().map(|k| Inner::Ecdsa(k, curve)))
        };
        let loaded = match &key {
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()).ok().map(Inner::Rsa),
            PrivateKeyDer::Sec1(k) => ecdsa(k.secret_sec1_der()),
            PrivateKeyDer::Pkcs8(k) => {
                let der = k.secret_pkcs8_der();
                RsaKeyPair::from_pkcs8(der)
                    .ok()
                    .map(Inner::Rsa)
                    .or_else(|| ecdsa(der))
                    .or_else(|| Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).ok().map(Inner::Ed25519))
            }
            _ => None,
        };
        let label = match key {
            PrivateKeyDer::Pkcs1(_) => "PKCS#1",
            PrivateKeyDer::Sec1(_) => "SEC1",
            _ => "PKCS#8",
        };
        let loaded = loaded.ok_or(KeyError::Unsupported(label))?;
        if let Inner::Rsa(k) = &loaded {
            let bits = k.public_modulus_len() * 8;
            if !(2048..=8192).contains(&bits) {
                return Err(KeyError::Unsupported(label));
            }
        }
        Ok(Self(loaded))
    }

    fn rsa_hash(key: &RsaKeyPair) -> (&'static dyn sig::RsaEncoding, const_oid::ObjectIdentifier) {
        match key.public_modulus_len() * 8 {
            bits if bits >= 4096 => (&sig::RSA_PKCS1_SHA512, oids::SHA512_WITH_RSA),
            bits if bits >= 3072 => (&sig::RSA_PKCS1_SHA384, oids::SHA384_WITH_RSA),
            _ => (&sig::RSA_PKCS1_SHA256, oids::SHA256_WITH_RSA),
        }
    }
}

impl SigningKey for SoftwareKey {
    fn algorithm(&self) -> AlgorithmIdentifierOwned {
        match &self.0 {
            Inner::Rsa(k) => AlgorithmIdentifierOwned {
                oid: Self::rsa_hash(k).1,
                // RFC 4055: the parameters of PKCS#1 v1.5 signature algorithms are NULL.
                parameters: Some(Any::from(Null)),
            },
            Inner::Ecdsa(_, curve) => {
                let oid = match curve {
                    Curve::P256 => oids::ECDSA_WITH_SHA256,
                    Curve::P384 => oids::ECDSA_WITH_SHA384,
                    Curve::P521 => oids::ECDSA_WITH_SHA512,
                };
                AlgorithmIdentifierOwned { oid, parameters: None }
            }
            Inner::Ed25519(_) => AlgorithmIdentifierOwned { oid: oids::ED25519, parameters: None },
        }
    }

    fn public_key(&self) -> &[u8] {
        match &self.0 {
            Inner::Rsa(k) => k.public_key().as_ref(),
            Inner::Ecdsa(k, _) => k.public_key().as_ref(),
            Inner::Ed25519(k) => k.public_key().as_ref(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let rng = SystemRandom::new();
        match &self.0 {
            Inner::Rsa(k) => {
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(Self::rsa_hash(k).0, &rng, message, &mut out)
                    .map_err(|_| SigningError::new("RSA signing failed"))?;
                Ok(out)
            }
            Inner::Ecdsa(k, _) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SigningError::new("ECDSA signing failed")),
            Inner::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}
