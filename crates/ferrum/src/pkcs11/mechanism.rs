//! From a CA key to what the token is asked and what goes into the certificate: the hash is
//! computed here, the token signs it with its raw mechanism (`CKM_RSA_PKCS`, `CKM_RSA_PKCS_PSS`,
//! `CKM_ECDSA`; `CKM_EDDSA` signs the whole message), and the answer is encoded as X.509 wants
//! it (an ECDSA signature from `r || s` to DER).

use aws_lc_rs::digest;
use aws_lc_rs::signature::UnparsedPublicKey;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use der::asn1::{Any, Null, Uint};
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};

use super::spec::RsaSignatureScheme;
use crate::x509::csr::{key_algorithm, verifier};
use crate::x509::oids;
use crate::x509::{Curve, Hash, KeyAlgorithm, SignatureAlgorithm};

/// How one CA key signs: chosen from the CA certificate's key (as the `ca` backend chooses for a
/// key in a Secret: the hash by RSA size or by curve) and the issuer's RSA scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scheme {
    key: KeyAlgorithm,
    signature: SignatureAlgorithm,
}

/// The CA certificate's key is of a kind Ferrum does not sign with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UnsupportedKey(pub String);

impl Scheme {
    /// The scheme for the key in `public_key_info` (SubjectPublicKeyInfo DER).
    pub(crate) fn for_key(public_key_info: &[u8], rsa: RsaSignatureScheme) -> Result<Self, UnsupportedKey> {
        let spki = SubjectPublicKeyInfoRef::from_der(public_key_info)
            .map_err(|e| UnsupportedKey(format!("the CA certificate's public key does not parse: {e}")))?;
        let key = key_algorithm(
            &spki.algorithm.oid,
            spki.algorithm.parameters.map(Any::from).as_ref(),
            spki.subject_public_key.raw_bytes(),
        )
        .map_err(|e| UnsupportedKey(format!("the CA certificate's key: {e}")))?;
        let signature = match key {
            KeyAlgorithm::Rsa { bits } => {
                let hash = match bits {
                    b if b >= 4096 => Hash::Sha512,
                    b if b >= 3072 => Hash::Sha384,
                    _ => Hash::Sha256,
                };
                match rsa {
                    RsaSignatureScheme::Pkcs1v15 => SignatureAlgorithm::RsaPkcs1(hash),
                    RsaSignatureScheme::Pss => SignatureAlgorithm::RsaPss(hash),
                }
            }
            KeyAlgorithm::Ecdsa(Curve::P256) => SignatureAlgorithm::Ecdsa(Hash::Sha256),
            KeyAlgorithm::Ecdsa(Curve::P384) => SignatureAlgorithm::Ecdsa(Hash::Sha384),
            KeyAlgorithm::Ecdsa(Curve::P521) => SignatureAlgorithm::Ecdsa(Hash::Sha512),
            KeyAlgorithm::Ed25519 => SignatureAlgorithm::Ed25519,
        };
        Ok(Self { key, signature })
    }

    /// The PKCS#11 key type the token's key must have.
    pub(crate) fn token_key_type(&self) -> cryptoki::object::KeyType {
        use cryptoki::object::KeyType;
        match self.key {
            KeyAlgorithm::Rsa { .. } => KeyType::RSA,
            KeyAlgorithm::Ecdsa(_) => KeyType::EC,
            KeyAlgorithm::Ed25519 => KeyType::EC_EDWARDS,
        }
    }

    /// The signatureAlgorithm written into certificates.
    pub(crate) fn algorithm_identifier(&self) -> AlgorithmIdentifierOwned {
        use SignatureAlgorithm::*;
        let plain = |oid| AlgorithmIdentifierOwned { oid, parameters: None };
        // RFC 4055: the parameters of PKCS#1 v1.5 signature algorithms are NULL.
        let null = |oid| AlgorithmIdentifierOwned { oid, parameters: Some(Any::from(Null)) };
        match self.signature {
            RsaPkcs1(Hash::Sha256) => null(oids::SHA256_WITH_RSA),
            RsaPkcs1(Hash::Sha384) => null(oids::SHA384_WITH_RSA),
            RsaPkcs1(Hash::Sha512) => null(oids::SHA512_WITH_RSA),
            RsaPss(hash) => AlgorithmIdentifierOwned { oid: oids::RSASSA_PSS, parameters: Some(pss_parameters(hash)) },
            Ecdsa(Hash::Sha256) => plain(oids::ECDSA_WITH_SHA256),
            Ecdsa(Hash::Sha384) => plain(oids::ECDSA_WITH_SHA384),
            Ecdsa(Hash::Sha512) => plain(oids::ECDSA_WITH_SHA512),
            // Every SignatureAlgorithm `for_key` chooses is above; Ed25519 is the rest.
            _ => plain(oids::ED25519),
        }
    }

    /// What the token signs for `message`, with which mechanism.
    pub(crate) fn token_input(&self, message: &[u8]) -> (Mechanism<'static>, Vec<u8>) {
        use SignatureAlgorithm::*;
        match self.signature {
            RsaPkcs1(hash) => {
                let mut input = digest_info_prefix(hash).to_vec();
                input.extend_from_slice(digest::digest(digest_algorithm(hash), message).as_ref());
                (Mechanism::RsaPkcs, input)
            }
            RsaPss(hash) => {
                let (hash_alg, mgf, salt) = match hash {
                    Hash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32u64),
                    Hash::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384, 48),
                    _ => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512, 64),
                };
                let params = PkcsPssParams { hash_alg, mgf, s_len: salt.into() };
                (Mechanism::RsaPkcsPss(params), digest::digest(digest_algorithm(hash), message).as_ref().to_vec())
            }
            Ecdsa(hash) => (Mechanism::Ecdsa, digest::digest(digest_algorithm(hash), message).as_ref().to_vec()),
            _ => (Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)), message.to_vec()),
        }
    }

    /// The signature as X.509 carries it, from the token's answer.
    pub(crate) fn encode_signature(&self, raw: Vec<u8>) -> Result<Vec<u8>, String> {
        match self.signature {
            SignatureAlgorithm::Ecdsa(_) => ecdsa_der(&raw),
            _ => Ok(raw),
        }
    }

    /// Whether `signature` (as X.509 carries it) over `message` verifies with `public_key`
    /// (`subjectPublicKey` bits): the test that the key on the token is the certificate's.
    pub(crate) fn verifies(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        verifier(self.signature, self.key)
            .is_ok_and(|v| UnparsedPublicKey::new(v, public_key).verify(message, signature).is_ok())
    }
}

fn digest_algorithm(hash: Hash) -> &'static digest::Algorithm {
    match hash {
        Hash::Sha256 => &digest::SHA256,
        Hash::Sha384 => &digest::SHA384,
        _ => &digest::SHA512,
    }
}

/// The DER of `DigestInfo` up to the digest's bytes (RFC 8017, section 9.2, note 1).
fn digest_info_prefix(hash: Hash) -> &'static [u8] {
    match hash {
        Hash::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
            0x20,
        ],
        Hash::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04,
            0x30,
        ],
        _ => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04,
            0x40,
        ],
    }
}

/// RSASSA-PSS-params (RFC 4055) as Go writes them: the hash (NULL parameters), MGF1 with that
/// hash, a salt as long as the hash, the trailer field left at its default.
fn pss_parameters(hash: Hash) -> Any {
    let (oid, salt) = match hash {
        Hash::Sha256 => (oids::SHA256, 32u32),
        Hash::Sha384 => (oids::SHA384, 48),
        _ => (oids::SHA512, 64),
    };
    let hash_algorithm = AlgorithmIdentifierOwned { oid, parameters: Some(Any::from(Null)) };
    let params = PssParams {
        hash: hash_algorithm.clone(),
        mask_gen: AlgorithmIdentifierOwned { oid: oids::MGF1, parameters: Some(any_of(&hash_algorithm)) },
        salt_length: salt,
    };
    any_of(&params)
}

/// `value` re-read as an ANY (infallible for the fixed structures above).
fn any_of(value: &impl Encode) -> Any {
    // Invariant: the values passed here are built above from constants and always encode.
    value.to_der().ok().and_then(|der| Any::from_der(&der).ok()).unwrap_or_else(|| Any::from(Null))
}

#[derive(Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mask_gen: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    salt_length: u32,
}

#[derive(Sequence)]
struct EcdsaSignature {
    r: Uint,
    s: Uint,
}

/// `r || s` (each half the length) to DER `Ecdsa-Sig-Value`.
fn ecdsa_der(raw: &[u8]) -> Result<Vec<u8>, String> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(format!("the token returned an ECDSA signature of {} bytes", raw.len()));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let bad = |e: der::Error| format!("the token's ECDSA signature does not encode: {e}");
    EcdsaSignature { r: Uint::new(r).map_err(bad)?, s: Uint::new(s).map_err(bad)? }.to_der().map_err(bad)
}

#[cfg(test)]
mod tests {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::ecdsa::EcdsaSig;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::pkey_ctx::PkeyCtx;
    use openssl::rsa::{Padding, Rsa};

    use super::*;

    /// The `subjectPublicKey` bits of a SubjectPublicKeyInfo.
    fn key_bits(spki: &[u8]) -> Vec<u8> {
        SubjectPublicKeyInfoRef::from_der(spki).unwrap().subject_public_key.raw_bytes().to_vec()
    }

    /// OpenSSL plays the token: it gets exactly what the token would get (`token_input`) and
    /// does the raw operation of the mechanism; the encoded answer must verify as the
    /// certificate's signature would.
    #[test]
    fn what_the_token_signs_verifies_for_every_scheme() {
        let message = b"a TBSCertificate";
        for (bits, rsa_scheme) in [
            (2048, RsaSignatureScheme::Pkcs1v15),
            (3072, RsaSignatureScheme::Pkcs1v15),
            (2048, RsaSignatureScheme::Pss),
            (4096, RsaSignatureScheme::Pss),
        ] {
            let key = PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap();
            let spki = key.public_key_to_der().unwrap();
            let scheme = Scheme::for_key(&spki, rsa_scheme).unwrap();
            let (mechanism, input) = scheme.token_input(message);
            let mut signature = vec![0; key.size()];
            let mut ctx = PkeyCtx::new(&key).unwrap();
            ctx.sign_init().unwrap();
            match mechanism {
                Mechanism::RsaPkcs => ctx.set_rsa_padding(Padding::PKCS1).unwrap(),
                Mechanism::RsaPkcsPss(params) => {
                    let md = match input.len() {
                        32 => openssl::md::Md::sha256(),
                        48 => openssl::md::Md::sha384(),
                        _ => openssl::md::Md::sha512(),
                    };
                    assert_eq!(u64::from(params.s_len), input.len() as u64, "salt as long as the hash");
                    ctx.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
                    ctx.set_signature_md(md).unwrap();
                    ctx.set_rsa_mgf1_md(md).unwrap();
                    ctx.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::DIGEST_LENGTH).unwrap();
                }
                other => panic!("RSA {bits} {rsa_scheme:?}: mechanism {other:?}"),
            }
            let n = ctx.sign(&input, Some(&mut signature)).unwrap();
            signature.truncate(n);
            let encoded = scheme.encode_signature(signature).unwrap();
            assert!(scheme.verifies(&key_bits(&spki), message, &encoded), "RSA {bits} {rsa_scheme:?}");
            assert!(!scheme.verifies(&key_bits(&spki), b"another message", &encoded), "RSA {bits} {rsa_scheme:?}");
        }
        for (nid, size) in [(Nid::X9_62_PRIME256V1, 32), (Nid::SECP384R1, 48), (Nid::SECP521R1, 66)] {
            let group = EcGroup::from_curve_name(nid).unwrap();
            let ec = EcKey::generate(&group).unwrap();
            let spki = PKey::from_ec_key(ec.clone()).unwrap().public_key_to_der().unwrap();
            let scheme = Scheme::for_key(&spki, RsaSignatureScheme::Pkcs1v15).unwrap();
            let (mechanism, input) = scheme.token_input(message);
            assert!(matches!(mechanism, Mechanism::Ecdsa), "{nid:?}");
            let sig = EcdsaSig::sign(&input, &ec).unwrap();
            // A token answers r || s, each as long as the curve's order.
            let raw = [sig.r().to_vec_padded(size).unwrap(), sig.s().to_vec_padded(size).unwrap()].concat();
            let encoded = scheme.encode_signature(raw).unwrap();
            assert!(scheme.verifies(&key_bits(&spki), message, &encoded), "{nid:?}");
        }
        let ed = PKey::generate_ed25519().unwrap();
        let spki = ed.public_key_to_der().unwrap();
        let scheme = Scheme::for_key(&spki, RsaSignatureScheme::Pkcs1v15).unwrap();
        let (mechanism, input) = scheme.token_input(message);
        assert!(matches!(mechanism, Mechanism::Eddsa(_)));
        assert_eq!(input, message, "EdDSA signs the message itself");
        let mut signer = openssl::sign::Signer::new_without_digest(&ed).unwrap();
        let signature = signer.sign_oneshot_to_vec(&input).unwrap();
        assert!(scheme.verifies(&key_bits(&spki), message, &scheme.encode_signature(signature).unwrap()));
    }

    #[test]
    fn algorithm_identifiers_are_the_ones_certificates_carry() {
        let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap().public_key_to_der().unwrap();
        let pkcs1 = Scheme::for_key(&rsa, RsaSignatureScheme::Pkcs1v15).unwrap().algorithm_identifier();
        assert_eq!(pkcs1.oid, oids::SHA256_WITH_RSA);
        assert_eq!(pkcs1.parameters, Some(Any::from(Null)), "RFC 4055: NULL parameters");
        for hash in [Hash::Sha256, Hash::Sha384, Hash::Sha512] {
            let id = AlgorithmIdentifierOwned { oid: oids::RSASSA_PSS, parameters: Some(pss_parameters(hash)) };
            assert_eq!(crate::x509::csr::pss_hash_for_tests(&id), Ok(hash), "PSS parameters as Go accepts them");
        }
        let ec = EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap()).unwrap();
        let p384 = PKey::from_ec_key(ec).unwrap().public_key_to_der().unwrap();
        let ecdsa = Scheme::for_key(&p384, RsaSignatureScheme::Pss).unwrap().algorithm_identifier();
        assert_eq!((ecdsa.oid, ecdsa.parameters), (oids::ECDSA_WITH_SHA384, None), "the RSA scheme does not matter");
    }

    #[test]
    fn ecdsa_signatures_become_der() {
        let der = ecdsa_der(&[[0x80; 32], [0x01; 32]].concat()).unwrap();
        // r gets a leading zero (its top bit is set), s does not.
        assert_eq!(&der[..4], &[0x30, 0x45, 0x02, 0x21]);
        assert_eq!(der[4], 0x00);
        assert!(ecdsa_der(&[1, 2, 3]).is_err());
        assert!(ecdsa_der(&[]).is_err());
    }

    #[test]
    fn unsupported_keys_are_named() {
        let dsa = openssl::dsa::Dsa::generate(2048).unwrap();
        let spki = PKey::from_dsa(dsa).unwrap().public_key_to_der().unwrap();
        let error = Scheme::for_key(&spki, RsaSignatureScheme::Pkcs1v15).unwrap_err();
        assert!(error.0.contains("DSA"), "{error}");
        assert!(Scheme::for_key(b"not DER", RsaSignatureScheme::Pkcs1v15).is_err());
    }
}
