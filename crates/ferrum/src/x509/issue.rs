//! Assembling a certificate: the TBSCertificate from a template and the issuing CA, then the
//! signed certificate from the TBS and a signature made elsewhere.

use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use der::asn1::{AnyRef, BitString, Ia5String, OctetString, Uint};
use der::{Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints,
    ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use x509_cert::time::{Time, Validity};

use super::oids;
use super::template::CertificateTemplate;

/// Backdate of `notBefore`, for clocks that run a little behind ours.
pub(crate) const CLOCK_SKEW_BACKDATE: Duration = Duration::from_secs(60);

/// What the certificate takes from its issuer.
#[derive(Clone, Debug)]
pub(crate) struct IssuerInfo {
    /// The issuer's subject Name DER (becomes our issuer name, byte for byte).
    pub subject: Vec<u8>,
    /// The issuer's key identifier (its SKI, else one computed from its key).
    pub key_id: Vec<u8>,
    /// The issuer's `notAfter`.
    pub not_after: SystemTime,
}

/// URLs an issuer may publish in the certificates it signs. Also the spec fields of both of
/// Ferrum's backends (flattened into their blocks).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishedUrls {
    /// CRL distribution point URLs written into issued certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crl_distribution_points: Vec<String>,
    /// OCSP responder URLs written into issued certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ocsp_servers: Vec<String>,
    /// URLs where the issuing certificate can be fetched, written into issued certificates.
    #[serde(default, rename = "issuingCertificateURLs", skip_serializing_if = "Vec::is_empty")]
    pub issuing_certificate_urls: Vec<String>,
}

impl PublishedUrls {
    /// These URLs with one more CRL distribution point after the others, if there is one.
    pub fn with_distribution_point(&self, extra: Option<&str>) -> Self {
        let mut urls = self.clone();
        urls.crl_distribution_points.extend(extra.map(str::to_owned));
        urls
    }
}

/// The lifetime chosen for a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lifetime {
    /// `notBefore`.
    pub not_before: SystemTime,
    /// `notAfter`.
    pub not_after: SystemTime,
    /// Whether `notAfter` was cut back to the issuer's expiry.
    pub clamped: bool,
}

impl Lifetime {
    /// From `now` for `duration`, backdated by [`CLOCK_SKEW_BACKDATE`], never past `ca_not_after`.
    pub(crate) fn new(now: SystemTime, duration: Duration, ca_not_after: SystemTime) -> Self {
        let wanted = now + duration;
        let clamped = wanted > ca_not_after;
        Self { not_before: now - CLOCK_SKEW_BACKDATE, not_after: if clamped { ca_not_after } else { wanted }, clamped }
    }
}

/// Errors while encoding a certificate.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EncodeError {
    /// DER encoding failed (an input was not valid DER, or a URL not IA5).
    #[error("certificate encoding failed: {0}")]
    Der(#[from] der::Error),
}

#[derive(Sequence)]
struct TbsCertificate<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: u8,
    serial_number: Uint,
    signature: AlgorithmIdentifierOwned,
    issuer: AnyRef<'a>,
    validity: Validity,
    subject: AnyRef<'a>,
    subject_public_key_info: AnyRef<'a>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

#[derive(Sequence)]
struct Certificate<'a> {
    tbs_certificate: AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// A random positive serial number with 127 random bits.
pub(crate) fn random_serial() -> [u8; 16] {
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f;
    serial[0] |= 0x40; // keep the encoding 16 bytes long
    serial
}

/// A key identifier: SHA-256 of the `subjectPublicKey` bits, truncated to 160 bits
/// (RFC 7093, method 1).
pub(crate) fn key_identifier(public_key: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, public_key).as_ref()[..20].to_vec()
}

/// The DER of the TBSCertificate. Extensions are in the order Go's `x509` writes them.
pub(crate) fn tbs_certificate(
    template: &CertificateTemplate,
    issuer: &IssuerInfo,
    lifetime: &Lifetime,
    serial: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    urls: &PublishedUrls,
) -> Result<Vec<u8>, EncodeError> {
    let mut extensions = Vec::new();
    if !template.key_usage.is_empty() {
        extensions.push(extension(oids::KEY_USAGE, true, &KeyUsage(template.key_usage))?);
    }
    if !template.ext_key_usage.is_empty() {
        extensions.push(extension(oids::EXT_KEY_USAGE, false, &ExtendedKeyUsage(template.ext_key_usage.clone()))?);
    }
    let bc = BasicConstraints { ca: template.is_ca, path_len_constraint: None };
    extensions.push(extension(oids::BASIC_CONSTRAINTS, true, &bc)?);
    let ski = SubjectKeyIdentifier(OctetString::new(key_identifier(&template.public_key))?);
    extensions.push(extension(oids::SUBJECT_KEY_IDENTIFIER, false, &ski)?);
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(issuer.key_id.clone())?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    extensions.push(extension(oids::AUTHORITY_KEY_IDENTIFIER, false, &aki)?);
    if !urls.ocsp_servers.is_empty() || !urls.issuing_certificate_urls.is_empty() {
        let access = |method, url: &String| -> Result<AccessDescription, der::Error> {
            Ok(AccessDescription {
                access_method: method,
                access_location: GeneralName::UniformResourceIdentifier(Ia5String::new(url)?),
            })
        };
        let mut aia = Vec::new();
        for url in &urls.ocsp_servers {
            aia.push(access(oids::AD_OCSP, url)?);
        }
        for url in &urls.issuing_certificate_urls {
            aia.push(access(oids::AD_CA_ISSUERS, url)?);
        }
        extensions.push(extension(oids::AUTHORITY_INFO_ACCESS, false, &AuthorityInfoAccessSyntax(aia))?);
    }
    if let Some(san) = &template.subject_alt_name {
        extensions.push(san.clone());
    }
    if let Some(constraints) = &template.name_constraints {
        extensions.push(constraints.clone());
    }
    if !urls.crl_distribution_points.is_empty() {
        let mut points = Vec::new();
        for url in &urls.crl_distribution_points {
            points.push(DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![
                    GeneralName::UniformResourceIdentifier(Ia5String::new(url)?),
                ])),
                reasons: None,
                crl_issuer: None,
            });
        }
        extensions.push(extension(oids::CRL_DISTRIBUTION_POINTS, false, &CrlDistributionPoints(points))?);
    }

    let subject = Subject { name: &template.subject, public_key_info: &template.public_key_info };
    encode_tbs(subject, issuer, lifetime, serial, algorithm, extensions)
}

/// Whom a certificate is for: its subject Name DER and SubjectPublicKeyInfo DER.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Subject<'a> {
    pub name: &'a [u8],
    pub public_key_info: &'a [u8],
}

/// The DER of a TBSCertificate (v3) from its parts.
pub(crate) fn encode_tbs(
    subject: Subject<'_>,
    issuer: &IssuerInfo,
    lifetime: &Lifetime,
    serial: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    extensions: Vec<Extension>,
) -> Result<Vec<u8>, EncodeError> {
    let tbs = TbsCertificate {
        version: 2,
        serial_number: Uint::new(serial)?,
        signature: algorithm.clone(),
        issuer: AnyRef::from_der(&issuer.subject)?,
        validity: Validity::new(Time::try_from(lifetime.not_before)?, Time::try_from(lifetime.not_after)?),
        subject: AnyRef::from_der(subject.name)?,
        subject_public_key_info: AnyRef::from_der(subject.public_key_info)?,
        extensions,
    };
    Ok(tbs.to_der()?)
}

/// The certificate DER from its TBS DER and a signature over it (a CRL's `CertificateList` has
/// the same shape: the TBS, the algorithm, the signature).
pub(crate) fn assemble(
    tbs: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    signature: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let cert = Certificate {
        tbs_certificate: AnyRef::from_der(tbs)?,
        signature_algorithm: algorithm.clone(),
        signature: BitString::from_bytes(signature)?,
    };
    Ok(cert.to_der()?)
}

/// An extension with `value` DER-encoded.
pub(crate) fn extension(
    oid: const_oid::ObjectIdentifier,
    critical: bool,
    value: &impl Encode,
) -> Result<Extension, der::Error> {
    Ok(Extension { extn_id: oid, critical, extn_value: OctetString::new(value.to_der()?)? })
}
