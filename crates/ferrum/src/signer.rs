//! The interface a backend implements: check an issuer, sign a request.
//!
//! Two calls, as cert-manager's issuer-lib, with typed outcomes. A software CA signs at once;
//! a key that never leaves an HSM implements [`crate::x509::SigningKey`] and is
//! driven the same way; a remote CA that answers later returns [`SignError::Pending`] and is
//! asked again (idempotently, keyed by the request UID) after the delay it named.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::IssuerScope;
use crate::policy::IssuerPolicy;
use crate::reasons::{CA_EXPIRED, DURATION_CLAMPED, KEY_UNAVAILABLE};
use crate::revocation::CrlSpec;
use crate::x509::{CaSignError, CertificateTemplate, CrlContents, IssuedCertificate, ValidatedCsr};

/// What a signer sees of an issuer.
#[derive(Debug)]
#[non_exhaustive]
pub struct IssuerContext<'a, S> {
    /// Namespaced or cluster-scoped.
    pub scope: IssuerScope,
    /// Issuer name.
    pub name: &'a str,
    /// The namespace the issuer may read Secrets from: its own for a namespaced issuer, the
    /// cluster resource namespace for a cluster issuer.
    pub secret_namespace: &'a str,
    /// The backend spec.
    pub spec: &'a S,
    /// Which CA signs: the spec's current one, or after a staged switch the next one (see
    /// [`crate::rotation`]). Backends without a next CA only ever see `Current`.
    pub active: crate::rotation::ActiveCa,
}

/// A request that passed every check, ready to be signed.
#[derive(Debug)]
#[non_exhaustive]
pub struct SignRequest<'a> {
    /// Namespace of the CertificateRequest.
    pub namespace: &'a str,
    /// Name of the CertificateRequest.
    pub name: &'a str,
    /// UID of the CertificateRequest: the idempotency key for remote CAs.
    pub uid: &'a str,
    /// The checked CSR.
    pub csr: &'a ValidatedCsr,
    /// The certificate to issue, as the policy built it.
    pub template: &'a CertificateTemplate,
    /// The issuer's own CRL distribution point (see [`crate::revocation`]), when it publishes
    /// CRLs with a base URL: the signer writes it into the certificate after those in its spec.
    pub crl_distribution_point: Option<&'a str>,
}

/// Something the user should know, published as a Warning event: on a request, folded into its
/// one `Issued` event; on an issuer, an event of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warning {
    /// CamelCase reason, e.g. `DurationClamped`.
    pub reason: String,
    /// What happened, for a person.
    pub message: String,
}

impl Warning {
    /// A warning with this reason and message.
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Self { reason: reason.to_owned(), message: message.into() }
    }
}

/// A signer's answer to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Signed {
    /// PEM: the leaf, then intermediates (no self-signed root).
    pub chain_pem: String,
    /// PEM of the root CA.
    pub ca_pem: String,
    /// Things the user should know (e.g. the lifetime was cut to the CA's expiry).
    pub warnings: Vec<Warning>,
}

impl Signed {
    /// A signed chain and its root, with no warnings.
    pub fn new(chain_pem: impl Into<String>, ca_pem: impl Into<String>) -> Self {
        Self { chain_pem: chain_pem.into(), ca_pem: ca_pem.into(), warnings: Vec::new() }
    }

    /// Adds a warning.
    pub fn with_warning(mut self, warning: Warning) -> Self {
        self.warnings.push(warning);
        self
    }
}

impl From<IssuedCertificate> for Signed {
    fn from(issued: IssuedCertificate) -> Self {
        let signed = Signed::new(issued.chain_pem, issued.ca_pem);
        match issued.clamped_to_days {
            Some(days) => signed.with_warning(Warning::new(
                DURATION_CLAMPED,
                format!(
                    "the requested duration runs past the CA's expiry; the certificate expires with the CA, in {days} days"
                ),
            )),
            None => signed,
        }
    }
}

impl From<CaSignError> for SignError {
    fn from(error: CaSignError) -> Self {
        match error {
            CaSignError::CaExpired => SignError::IssuerBroken(IssuerError::new(CA_EXPIRED, error.to_string())),
            CaSignError::Constraint(message) => SignError::Permanent(message),
            CaSignError::Unverifiable(message) => SignError::Permanent(format!(
                "the certificate built for this request does not validate against the issuer's chain, so it was not published: {message}"
            )),
            CaSignError::Encoding(message) => SignError::Permanent(message),
            CaSignError::Signing(message) => SignError::Retryable(message),
            CaSignError::KeyUnusable(message) => SignError::IssuerBroken(IssuerError::new(KEY_UNAVAILABLE, message)),
        }
    }
}

/// An issuer's health, when usable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// The Ready condition's message.
    pub message: String,
    /// Published as Warning events on the issuer, e.g. a CA expiring soon.
    pub warnings: Vec<Warning>,
    /// When the backend stops being usable (e.g. the CA's notAfter), for metrics and events.
    pub expires: Option<std::time::SystemTime>,
    /// The root (DER) of the chain the issuer signs under now: with `expires`, what the
    /// issuer's trust bundle remembers (see [`crate::trust`]).
    pub root: Option<Vec<u8>>,
    /// The next CA of a staged rotation (see [`crate::rotation`]), checked like the current one.
    pub next: Option<NextCa>,
}

/// The next CA of a staged rotation, as a check found it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NextCa {
    /// Its root (DER).
    pub root: Vec<u8>,
    /// When its chain expires.
    pub expires: std::time::SystemTime,
}

impl Health {
    /// Usable, with this message for the Ready condition.
    pub fn ready(message: impl Into<String>) -> Self {
        Self { message: message.into(), ..Default::default() }
    }

    /// Adds a warning.
    pub fn with_warning(mut self, warning: Warning) -> Self {
        self.warnings.push(warning);
        self
    }

    /// Records when the backend stops being usable.
    pub fn expiring_at(mut self, when: std::time::SystemTime) -> Self {
        self.expires = Some(when);
        self
    }

    /// Records the root the issuer signs under.
    pub fn with_root(mut self, root_der: impl Into<Vec<u8>>) -> Self {
        self.root = Some(root_der.into());
        self
    }

    /// Records the next CA of a staged rotation: its root and when its chain expires.
    pub fn with_next(mut self, root_der: impl Into<Vec<u8>>, expires: std::time::SystemTime) -> Self {
        self.next = Some(NextCa { root: root_der.into(), expires });
        self
    }
}

/// Why an issuer is not usable: becomes its Ready=False condition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
#[non_exhaustive]
pub struct IssuerError {
    /// CamelCase reason, e.g. `SecretNotFound`.
    pub reason: String,
    /// What is wrong and what to do about it.
    pub message: String,
    /// The check could not be made (a timeout, an apiserver restarting): a Ready issuer stays
    /// Ready and is checked again in seconds, rather than flapping to not Ready.
    pub transient: bool,
    /// Check again this soon: for causes outside Kubernetes that nothing watches (a token that
    /// was unplugged, an HSM restarting). Without it a broken issuer is checked again when its
    /// spec or Secrets change, and on the controller's recheck interval.
    pub recheck_after: Option<Duration>,
}

impl IssuerError {
    /// Builds an issuer error.
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Self { reason: reason.to_owned(), message: message.into(), transient: false, recheck_after: None }
    }

    /// Asks for another check after `delay` (see [`IssuerError::recheck_after`]).
    pub fn checked_again_after(mut self, delay: Duration) -> Self {
        self.recheck_after = Some(delay);
        self
    }

    /// An error of the check itself, not of the issuer (see [`IssuerError::transient`]).
    pub fn transient(reason: &str, message: impl Into<String>) -> Self {
        Self { transient: true, ..Self::new(reason, message) }
    }
}

/// Why signing did not produce a certificate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The CA refuses this request: the request fails for good.
    #[error("{0}")]
    Permanent(String),
    /// A failure that may pass (network, 5xx, HSM busy): retried with backoff until the
    /// maximum retry duration, counted from the first failure.
    #[error("{0}")]
    Retryable(String),
    /// Not done yet (a remote CA working on it): ask again after `retry_after`. Not a failure.
    #[error("{message}")]
    Pending {
        /// What is awaited.
        message: String,
        /// When to ask again.
        retry_after: Duration,
    },
    /// The issuer itself is broken (key gone, CA expired): the issuer is marked not Ready and
    /// the request waits for it.
    #[error("{0}")]
    IssuerBroken(IssuerError),
}

/// A signing backend. Implement this, pick names for your kinds, and call
/// [`crate::runtime::run`].
pub trait Signer: Send + Sync + 'static {
    /// The issuer spec this backend reads (the `spec` of both issuer kinds).
    type Spec: Clone + Debug + DeserializeOwned + Serialize + JsonSchema + Send + Sync + 'static;

    /// Checks that the issuer is usable.
    fn check(&self, issuer: &IssuerContext<'_, Self::Spec>)
    -> impl Future<Output = Result<Health, IssuerError>> + Send;

    /// Signs a checked request.
    fn sign(
        &self,
        request: &SignRequest<'_>,
        issuer: &IssuerContext<'_, Self::Spec>,
    ) -> impl Future<Output = Result<Signed, SignError>> + Send;

    /// The issuer's request policy (see [`crate::policy`]), enforced by the library before
    /// [`Signer::sign`] is called. `None`, the default, is the default policy: any name the
    /// CA may vouch for, any key Ferrum accepts, no CA certificates.
    fn policy<'a>(&self, _spec: &'a Self::Spec) -> Option<&'a IssuerPolicy> {
        None
    }

    /// Names of the Secrets (in the issuer's secret namespace) the spec depends on: a change to
    /// any of them re-checks the issuer at once.
    fn secret_names(&self, _spec: &Self::Spec) -> Vec<String> {
        Vec::new()
    }

    /// The issuer was deleted: drop whatever is cached for it (key material above all). By
    /// default, nothing is cached.
    fn forget(&self, _issuer: &IssuerContext<'_, Self::Spec>) {}

    /// Adds the backend's own metrics to the registry `/metrics` serves (called once, before
    /// the controllers start). By default, none.
    fn register_metrics(&self, _registry: &mut prometheus_client::registry::Registry) {}

    /// The issuer's revocation settings (see [`crate::revocation`]): `Some` has the library
    /// revoke what `CertificateRevocation` objects name, sign CRLs with
    /// [`Signer::sign_crl`] and serve them. By default, none.
    fn revocation<'a>(&self, _spec: &'a Self::Spec) -> Option<&'a CrlSpec> {
        None
    }

    /// How the issuer hands out its roots (see [`crate::trust`]). `None`, the default: the
    /// overlapping bundle in `status.ca`, no ConfigMap.
    fn trust_bundle<'a>(&self, _spec: &'a Self::Spec) -> Option<&'a crate::trust::TrustBundleSpec> {
        None
    }

    /// The issuer's staged rotation (see [`crate::rotation`]): `Some` when the spec names a
    /// next CA, which [`Signer::check`] then reports with [`Health::with_next`] and
    /// [`Signer::sign`] uses when [`IssuerContext::active`] says so. By default, none.
    fn rotation<'a>(&self, _spec: &'a Self::Spec) -> Option<&'a crate::rotation::RotationSpec> {
        None
    }

    /// A cross-certificate of `next_root` (DER) signed by the issuer's current CA, as PEM
    /// followed by the current CA's intermediates (e.g. with [`crate::x509::cross_certificate`]):
    /// served after each leaf of the next CA when the rotation asks for cross-signing.
    fn cross_certificate(
        &self,
        _issuer: &IssuerContext<'_, Self::Spec>,
        _next_root: &[u8],
    ) -> impl Future<Output = Result<String, SignError>> + Send {
        std::future::ready(Err(SignError::Permanent("this issuer does not cross-sign".into())))
    }

    /// The issuing CA certificate (DER): a certificate is revoked only if this CA signed it.
    /// Needed with [`Signer::revocation`].
    fn issuing_certificate(
        &self,
        _issuer: &IssuerContext<'_, Self::Spec>,
    ) -> impl Future<Output = Result<Vec<u8>, SignError>> + Send {
        std::future::ready(Err(SignError::Permanent("this issuer does not support revocation".into())))
    }

    /// Signs a CRL (DER) with the issuer's CA key, e.g. with [`crate::x509::sign_crl`]. Needed
    /// with [`Signer::revocation`]; errors mean what they mean for [`Signer::sign`].
    fn sign_crl(
        &self,
        _issuer: &IssuerContext<'_, Self::Spec>,
        _contents: CrlContents,
    ) -> impl Future<Output = Result<Vec<u8>, SignError>> + Send {
        std::future::ready(Err(SignError::Permanent("this issuer does not support revocation".into())))
    }
}
