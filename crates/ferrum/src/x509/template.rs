//! The signing policy: a CertificateRequest's spec and its checked CSR in, the certificate
//! to issue (less issuer, serial and validity instants) or a refusal out. Pure.
//!
//! The rules follow cert-manager's own CA issuer, so that the two issue the same certificate
//! for the same request: subject and SANs copied byte for byte, key usages from `spec.usages`
//! (default `digital signature`, `key encipherment`; `cert sign` added for a CA), basic
//! constraints from `spec.isCA`, and any of these the CSR itself requests must agree.

use std::time::Duration;

use const_oid::ObjectIdentifier;
use der::Decode;
use der::flagset::FlagSet;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};

use super::constraints::{ConstraintError, requested_name_constraints};
use super::csr::ValidatedCsr;
use super::duration::parse_go_duration;
use super::oids::{self, eku};

/// Lifetime when `spec.duration` is empty: 90 days, as cert-manager.
pub(crate) const DEFAULT_DURATION: Duration = Duration::from_secs(90 * 24 * 3600);
/// Shortest lifetime accepted: one hour, as cert-manager's webhook.
pub(crate) const MIN_DURATION: Duration = Duration::from_secs(3600);
/// Longest lifetime accepted: 100 years (the CA's own expiry clamps it further).
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What the request's spec asks for, in cert-manager's terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestedProfile {
    /// `spec.duration`, a Go duration string.
    pub duration: Option<String>,
    /// `spec.isCA`.
    pub is_ca: bool,
    /// `spec.usages`.
    pub usages: Vec<String>,
}

/// Why the policy refused a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// `spec.duration` does not parse or is out of bounds.
    #[error("spec.duration: {0}")]
    Duration(String),
    /// A usage cert-manager does not define.
    #[error("spec.usages: unknown key usage {0:?}")]
    UnknownUsage(String),
    /// The CSR's basic constraints disagree with `spec.isCA`.
    #[error("the CSR requests isCA={csr} but spec.isCA is {spec}")]
    IsCaMismatch {
        /// What the CSR asks.
        csr: bool,
        /// What the spec asks.
        spec: bool,
    },
    /// The CSR's key usages disagree with `spec.usages`.
    #[error("the CSR requests key usages [{csr}] but spec.usages/spec.isCA give [{spec}]")]
    KeyUsageMismatch {
        /// What the CSR asks.
        csr: String,
        /// What the spec gives.
        spec: String,
    },
    /// The CSR's extended key usages disagree with `spec.usages`.
    #[error("the CSR requests extended key usages [{csr}] but spec.usages gives [{spec}]")]
    ExtKeyUsageMismatch {
        /// What the CSR asks.
        csr: String,
        /// What the spec gives.
        spec: String,
    },
    /// A requested extension does not decode.
    #[error("the CSR's {0} extension does not decode")]
    BadExtension(&'static str),
    /// Requested name constraints cannot be carried.
    #[error(transparent)]
    NameConstraints(#[from] ConstraintError),
}

/// The certificate to issue, apart from what only the issuer knows.
#[derive(Clone, Debug)]
pub struct CertificateTemplate {
    /// Subject Name DER, copied from the CSR.
    pub(crate) subject: Vec<u8>,
    /// SubjectPublicKeyInfo DER, copied from the CSR.
    pub(crate) public_key_info: Vec<u8>,
    /// The `subjectPublicKey` bits, for the subject key identifier.
    pub(crate) public_key: Vec<u8>,
    /// Requested lifetime.
    pub(crate) duration: Duration,
    /// Whether the certificate is a CA.
    pub(crate) is_ca: bool,
    /// Key usage bits.
    pub(crate) key_usage: FlagSet<KeyUsages>,
    /// Extended key usages, in the order given.
    pub(crate) ext_key_usage: Vec<ObjectIdentifier>,
    /// The subjectAltName extension, copied from the CSR; critical when the subject is empty.
    pub(crate) subject_alt_name: Option<Extension>,
    /// Name constraints requested by a sub-CA's CSR (see [`super::constraints`]).
    pub(crate) name_constraints: Option<Extension>,
}

impl CertificateTemplate {
    /// Subject Name DER, copied from the CSR.
    pub fn subject(&self) -> &[u8] {
        &self.subject
    }

    /// SubjectPublicKeyInfo DER, copied from the CSR.
    pub fn public_key_info(&self) -> &[u8] {
        &self.public_key_info
    }

    /// Requested lifetime.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Whether the certificate is a CA.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    /// Key usage bits.
    pub fn key_usage(&self) -> FlagSet<KeyUsages> {
        self.key_usage
    }

    /// Extended key usages, in the order given.
    pub fn ext_key_usage(&self) -> &[ObjectIdentifier] {
        &self.ext_key_usage
    }

    /// The subjectAltName extension, copied from the CSR.
    pub fn subject_alt_name(&self) -> Option<&Extension> {
        self.subject_alt_name.as_ref()
    }

    /// Name constraints requested by a sub-CA's CSR.
    pub fn name_constraints(&self) -> Option<&Extension> {
        self.name_constraints.as_ref()
    }
}

/// Applies the policy.
pub fn certificate_template(
    profile: &RequestedProfile,
    csr: &ValidatedCsr,
) -> Result<CertificateTemplate, PolicyError> {
    let duration = requested_duration(profile.duration.as_deref())?;
    let (key_usage, ext_key_usage) = usages(&profile.usages, profile.is_ca)?;

    if let Some(ext) = csr.extension(oids::BASIC_CONSTRAINTS) {
        let bc = BasicConstraints::from_der(ext.extn_value.as_bytes())
            .map_err(|_| PolicyError::BadExtension("basicConstraints"))?;
        if bc.ca != profile.is_ca {
            return Err(PolicyError::IsCaMismatch { csr: bc.ca, spec: profile.is_ca });
        }
    }
    let csr_ku = csr.extension(oids::KEY_USAGE);
    let csr_eku = csr.extension(oids::EXT_KEY_USAGE);
    if csr_ku.is_some() || csr_eku.is_some() {
        let requested_ku = match csr_ku {
            Some(ext) => {
                KeyUsage::from_der(ext.extn_value.as_bytes()).map_err(|_| PolicyError::BadExtension("keyUsage"))?.0
            }
            None => FlagSet::default(),
        };
        if requested_ku != key_usage {
            return Err(PolicyError::KeyUsageMismatch {
                csr: key_usage_names(requested_ku),
                spec: key_usage_names(key_usage),
            });
        }
        let requested_eku = match csr_eku {
            Some(ext) => {
                ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
                    .map_err(|_| PolicyError::BadExtension("extKeyUsage"))?
                    .0
            }
            None => Vec::new(),
        };
        if !same_set(&requested_eku, &ext_key_usage) {
            return Err(PolicyError::ExtKeyUsageMismatch {
                csr: oid_names(&requested_eku),
                spec: oid_names(&ext_key_usage),
            });
        }
    }

    let name_constraints = requested_name_constraints(csr, profile.is_ca)?;
    let subject_alt_name =
        csr.extension(oids::SUBJECT_ALT_NAME).map(|ext| Extension { critical: csr.subject_is_empty, ..ext.clone() });
    Ok(CertificateTemplate {
        subject: csr.subject.clone(),
        public_key_info: csr.public_key_info.clone(),
        public_key: csr.public_key.clone(),
        duration,
        is_ca: profile.is_ca,
        key_usage,
        ext_key_usage,
        subject_alt_name,
        name_constraints,
    })
}

fn requested_duration(text: Option<&str>) -> Result<Duration, PolicyError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_DURATION);
    };
    let duration = parse_go_duration(text).map_err(PolicyError::Duration)?;
    if duration < MIN_DURATION {
        return Err(PolicyError::Duration(format!("{text} is shorter than the minimum of 1h")));
    }
    if duration > MAX_DURATION {
        return Err(PolicyError::Duration(format!("{text} is longer than the maximum of 100 years")));
    }
    Ok(duration)
}

/// cert-manager's usage names and what they mean.
pub(crate) enum Usage {
    /// A key usage bit.
    Key(KeyUsages),
    /// An extended key usage.
    Extended(ObjectIdentifier),
}

/// What a cert-manager usage name means; `None` for a name cert-manager does not define.
pub(crate) fn usage(name: &str) -> Option<Usage> {
    use KeyUsages::*;
    use Usage::{Extended, Key};
    Some(match name {
        "signing" | "digital signature" => Key(DigitalSignature),
        "content commitment" => Key(NonRepudiation),
        "key encipherment" => Key(KeyEncipherment),
        "key agreement" => Key(KeyAgreement),
        "data encipherment" => Key(DataEncipherment),
        "cert sign" => Key(KeyCertSign),
        "crl sign" => Key(CRLSign),
        "encipher only" => Key(EncipherOnly),
        "decipher only" => Key(DecipherOnly),
        "any" => Extended(eku::ANY),
        "server auth" => Extended(eku::SERVER_AUTH),
        "client auth" => Extended(eku::CLIENT_AUTH),
        "code signing" => Extended(eku::CODE_SIGNING),
        "email protection" | "s/mime" => Extended(eku::EMAIL_PROTECTION),
        "ipsec end system" => Extended(eku::IPSEC_END_SYSTEM),
        "ipsec tunnel" => Extended(eku::IPSEC_TUNNEL),
        "ipsec user" => Extended(eku::IPSEC_USER),
        "timestamping" => Extended(eku::TIME_STAMPING),
        "ocsp signing" => Extended(eku::OCSP_SIGNING),
        "microsoft sgc" => Extended(eku::MICROSOFT_SGC),
        "netscape sgc" => Extended(eku::NETSCAPE_SGC),
        _ => return None,
    })
}

fn usages(names: &[String], is_ca: bool) -> Result<(FlagSet<KeyUsages>, Vec<ObjectIdentifier>), PolicyError> {
    let mut ku = FlagSet::default();
    if is_ca {
        ku |= KeyUsages::KeyCertSign;
    }
    let defaults = ["digital signature".to_owned(), "key encipherment".to_owned()];
    let names = if names.is_empty() { &defaults[..] } else { names };
    let mut ext = Vec::new();
    for name in names {
        match usage(name) {
            Some(Usage::Key(k)) => ku |= k,
            Some(Usage::Extended(oid)) => ext.push(oid),
            None => return Err(PolicyError::UnknownUsage(name.clone())),
        }
    }
    Ok((ku, ext))
}

/// The same OIDs, whatever the order or repetition: extended key usages are a set.
fn same_set(a: &[ObjectIdentifier], b: &[ObjectIdentifier]) -> bool {
    a.iter().all(|oid| b.contains(oid)) && b.iter().all(|oid| a.contains(oid))
}

fn key_usage_names(ku: FlagSet<KeyUsages>) -> String {
    ku.into_iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ")
}

fn oid_names(oids: &[ObjectIdentifier]) -> String {
    oids.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ")
}
