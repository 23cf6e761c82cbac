//! Signing a template with a CA whose key signs here (in memory or through an HSM session).

use std::time::SystemTime;

use super::chain::CaBundle;
use super::issue::{EncodeError, Lifetime, PublishedUrls, assemble, random_serial, tbs_certificate};
use super::key::CertificateSigner;
use super::template::CertificateTemplate;
use crate::reasons::{CA_EXPIRED, DURATION_CLAMPED};
use crate::signer::{IssuerError, SignError, Signed};

/// Issues `template` from `ca` at `now`: lifetime clamped to the CA's expiry (with a warning),
/// random serial, the CA's chain in the answer.
pub fn sign_with_ca(
    ca: &CaBundle,
    key: &impl CertificateSigner,
    template: &CertificateTemplate,
    urls: &PublishedUrls,
    now: SystemTime,
) -> Result<Signed, SignError> {
    let issuer = ca.issuer_info();
    if now >= issuer.not_after {
        return Err(SignError::IssuerBroken(IssuerError::new(CA_EXPIRED, "the CA has expired")));
    }
    let lifetime = Lifetime::new(now, template.duration, issuer.not_after);
    let algorithm = key.algorithm();
    let encode_failed = |e: EncodeError| SignError::Permanent(e.to_string());
    let tbs =
        tbs_certificate(template, &issuer, &lifetime, &random_serial(), &algorithm, urls).map_err(encode_failed)?;
    let signature = key.sign(&tbs).map_err(|e| SignError::Retryable(e.to_string()))?;
    let der = assemble(&tbs, &algorithm, &signature).map_err(encode_failed)?;
    let mut warnings = Vec::new();
    if lifetime.clamped {
        warnings.push((
            DURATION_CLAMPED.to_owned(),
            format!(
                "the requested duration runs past the CA's expiry; the certificate expires with the CA, in {} days",
                days_until(issuer.not_after, now)
            ),
        ));
    }
    Ok(Signed { chain_pem: ca.chain_pem(&der), ca_pem: ca.ca_pem(), warnings })
}

/// Whole days from `now` until `when` (0 if past).
pub fn days_until(when: SystemTime, now: SystemTime) -> u64 {
    when.duration_since(now).unwrap_or_default().as_secs() / 86_400
}
