//! Signing a template with a CA whose key signs here (in memory or through an HSM session).
//!
//! Guarded issuance: before anything is signed, the template's names and CA flag are checked
//! against the name constraints and path lengths of every CA in the issuer's chain
//! ([`super::ca_constraints`]); after it is signed, the certificate is validated against that
//! chain by OpenSSL's RFC 5280 path validation ([`super::verify`]) at the instant it expires.
//! A certificate that fails either is never returned, so never published.

use std::time::SystemTime;

use super::ca_constraints::check_ca_constraints;
use super::cert_names::CertNames;
use super::chain::CaBundle;
use super::issue::{EncodeError, Lifetime, PublishedUrls, assemble, random_serial, tbs_certificate};
use super::key::{SigningError, SigningKey};
use super::template::CertificateTemplate;

/// A certificate issued by [`sign_with_ca`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedCertificate {
    /// PEM: the certificate, then the CA's intermediates (no self-signed root).
    pub chain_pem: String,
    /// PEM of the root.
    pub ca_pem: String,
    /// When the requested lifetime ran past the CA's expiry: the whole days the certificate
    /// now lives (it expires with the CA).
    pub clamped_to_days: Option<u64>,
}

/// Why [`sign_with_ca`] issued nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaSignError {
    /// The CA has expired.
    #[error("the CA has expired")]
    CaExpired,
    /// The request is outside what the CA may vouch for: its name constraints, its path length.
    #[error("{0}")]
    Constraint(String),
    /// The certificate built does not validate against the CA's chain (RFC 5280 path
    /// validation); it was not published.
    #[error("{0}")]
    Unverifiable(String),
    /// The certificate could not be encoded (a bad URL in the issuer, say).
    #[error("{0}")]
    Encoding(String),
    /// The key did not sign (a failure that may pass).
    #[error("{0}")]
    Signing(String),
    /// The key is gone or may no longer sign.
    #[error("{0}")]
    KeyUnusable(String),
}

impl From<SigningError> for CaSignError {
    fn from(error: SigningError) -> Self {
        match error.key_unusable {
            true => CaSignError::KeyUnusable(error.to_string()),
            false => CaSignError::Signing(error.to_string()),
        }
    }
}

/// Issues `template` from `ca` at `now`: the CA's constraints checked first, lifetime clamped
/// to the expiry of the CA's chain (and said so), random serial, the certificate validated
/// against the chain before it is returned, the CA's chain in the answer.
pub fn sign_with_ca(
    ca: &CaBundle,
    key: &impl SigningKey,
    template: &CertificateTemplate,
    urls: &PublishedUrls,
    now: SystemTime,
) -> Result<IssuedCertificate, CaSignError> {
    sign(ca, key, template, urls, now, Guard::On)
}

/// Whether [`sign`] runs the guards of guarded issuance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Guard {
    /// The CA's constraints before signing and the path validation after it: every issuance.
    On,
    /// Neither: only the signing micro-benchmark's baseline
    /// (`IssuedCertificate::sign_with_ca_unguarded`), to measure what the guards cost.
    #[cfg_attr(not(feature = "bench-internals"), allow(dead_code))]
    Off,
}

#[cfg(feature = "bench-internals")]
impl IssuedCertificate {
    /// [`sign_with_ca`] without its guards: neither the CA's name constraints and path lengths
    /// ([`super::ca_constraints`]) nor the RFC 5280 path validation of the certificate
    /// ([`super::verify`]) are checked, so what it returns may be a certificate no validator
    /// accepts. Only for the signing micro-benchmark (`benches/signing.rs`), which measures the
    /// guards' cost against it; compiled only with the `bench-internals` feature, never
    /// enabled by Ferrum's own builds, and not part of the API. (An associated function because
    /// the `x509::sign` module is private and this file is its only home.)
    #[doc(hidden)]
    pub fn sign_with_ca_unguarded(
        ca: &CaBundle,
        key: &impl SigningKey,
        template: &CertificateTemplate,
        urls: &PublishedUrls,
        now: SystemTime,
    ) -> Result<IssuedCertificate, CaSignError> {
        sign(ca, key, template, urls, now, Guard::Off)
    }
}

/// [`sign_with_ca`], with its guards on or (for the benchmark's baseline) off.
fn sign(
    ca: &CaBundle,
    key: &impl SigningKey,
    template: &CertificateTemplate,
    urls: &PublishedUrls,
    now: SystemTime,
    guard: Guard,
) -> Result<IssuedCertificate, CaSignError> {
    let issuer = ca.issuer_info();
    if now >= issuer.not_after {
        return Err(CaSignError::CaExpired);
    }
    if guard == Guard::On {
        let names =
            CertNames::of(template).map_err(|why| CaSignError::Constraint(format!("the request's names: {why}")))?;
        check_ca_constraints(&names, template.is_ca, ca).map_err(|e| CaSignError::Constraint(e.to_string()))?;
    }
    let lifetime = Lifetime::new(now, template.duration, issuer.not_after);
    let algorithm = key.algorithm();
    let encode_failed = |e: EncodeError| CaSignError::Encoding(e.to_string());
    let tbs =
        tbs_certificate(template, &issuer, &lifetime, &random_serial(), &algorithm, urls).map_err(encode_failed)?;
    let signature = key.sign(&tbs)?;
    let der = assemble(&tbs, &algorithm, &signature).map_err(encode_failed)?;
    if guard == Guard::On {
        super::verify::verify_certificate(&der, ca, lifetime.not_after, &template.ext_key_usage)
            .map_err(CaSignError::Unverifiable)?;
    }
    Ok(IssuedCertificate {
        chain_pem: ca.chain_pem(&der),
        ca_pem: ca.ca_pem(),
        clamped_to_days: lifetime.clamped.then(|| days_until(issuer.not_after, now)),
    })
}

/// Whole days from `now` until `when` (0 if past).
pub(crate) fn days_until(when: SystemTime, now: SystemTime) -> u64 {
    when.duration_since(now).unwrap_or_default().as_secs() / 86_400
}
