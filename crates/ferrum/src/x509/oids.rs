//! Object identifiers this crate recognises.

use const_oid::ObjectIdentifier as Oid;

/// rsaEncryption.
pub(crate) const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// SHA-256 (as a hash algorithm, in PSS parameters).
pub(crate) const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
/// SHA-384.
pub(crate) const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
/// SHA-512.
pub(crate) const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
/// MGF1, the mask generation function of RSASSA-PSS.
pub(crate) const MGF1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.8");
/// RSASSA-PSS.
pub(crate) const RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
/// sha1WithRSAEncryption.
pub(crate) const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
/// sha256WithRSAEncryption.
pub(crate) const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// sha384WithRSAEncryption.
pub(crate) const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
/// sha512WithRSAEncryption.
pub(crate) const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
/// id-ecPublicKey.
pub(crate) const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// ecdsa-with-SHA1.
pub(crate) const ECDSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10045.4.1");
/// ecdsa-with-SHA256.
pub(crate) const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384.
pub(crate) const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
/// ecdsa-with-SHA512.
pub(crate) const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
/// NIST P-256 (prime256v1).
pub(crate) const P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
/// NIST P-384 (secp384r1).
pub(crate) const P384: Oid = Oid::new_unwrap("1.3.132.0.34");
/// NIST P-521 (secp521r1).
pub(crate) const P521: Oid = Oid::new_unwrap("1.3.132.0.35");
/// Ed25519, as a key and as a signature algorithm.
pub(crate) const ED25519: Oid = Oid::new_unwrap("1.3.101.112");
/// DSA public key.
pub(crate) const DSA: Oid = Oid::new_unwrap("1.2.840.10040.4.1");
/// dsa-with-sha1.
pub(crate) const DSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10040.4.3");
/// dsa-with-sha256.
pub(crate) const DSA_WITH_SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.3.2");
/// PKCS#9 extensionRequest attribute.
pub(crate) const EXTENSION_REQUEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.14");
/// Subject key identifier extension.
pub(crate) const SUBJECT_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.14");
/// Key usage extension.
pub(crate) const KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
/// Subject alternative name extension.
pub(crate) const SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
/// Basic constraints extension.
pub(crate) const BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
/// Name constraints extension.
pub(crate) const NAME_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.30");
/// CRL distribution points extension.
pub(crate) const CRL_DISTRIBUTION_POINTS: Oid = Oid::new_unwrap("2.5.29.31");
/// CRL number extension (of a CRL).
pub(crate) const CRL_NUMBER: Oid = Oid::new_unwrap("2.5.29.20");
/// Reason code extension (of a CRL entry).
pub(crate) const CRL_REASON: Oid = Oid::new_unwrap("2.5.29.21");
/// Authority key identifier extension.
pub(crate) const AUTHORITY_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.35");
/// Extended key usage extension.
pub(crate) const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
/// Authority information access extension.
pub(crate) const AUTHORITY_INFO_ACCESS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.1");
/// id-ad-ocsp.
pub(crate) const AD_OCSP: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1");
/// id-ad-caIssuers.
pub(crate) const AD_CA_ISSUERS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.2");

/// Extended key usages, in cert-manager's spelling.
pub(crate) mod eku {
    use super::Oid;

    /// anyExtendedKeyUsage.
    pub(crate) const ANY: Oid = Oid::new_unwrap("2.5.29.37.0");
    /// id-kp-serverAuth.
    pub(crate) const SERVER_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.1");
    /// id-kp-clientAuth.
    pub(crate) const CLIENT_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.2");
    /// id-kp-codeSigning.
    pub(crate) const CODE_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.3");
    /// id-kp-emailProtection.
    pub(crate) const EMAIL_PROTECTION: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.4");
    /// id-kp-ipsecEndSystem.
    pub(crate) const IPSEC_END_SYSTEM: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.5");
    /// id-kp-ipsecTunnel.
    pub(crate) const IPSEC_TUNNEL: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.6");
    /// id-kp-ipsecUser.
    pub(crate) const IPSEC_USER: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.7");
    /// id-kp-timeStamping.
    pub(crate) const TIME_STAMPING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.8");
    /// id-kp-OCSPSigning.
    pub(crate) const OCSP_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.9");
    /// Microsoft Server Gated Crypto.
    pub(crate) const MICROSOFT_SGC: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.10.3.3");
    /// Netscape Server Gated Crypto.
    pub(crate) const NETSCAPE_SGC: Oid = Oid::new_unwrap("2.16.840.1.113730.4.1");
}
