//! Ferrum's own issuer: the spec of `FerrumIssuer` and `FerrumClusterIssuer` (exactly one
//! backend block, and a policy) and the signer that hands each issuer to its backend.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::IssuerKinds;
use crate::ca::{CaIssuerSpec, CaSigner};
use crate::pkcs11::{Pkcs11IssuerSpec, Pkcs11Settings, Pkcs11Signer};
use crate::policy::IssuerPolicy;
use crate::reasons::INVALID_SPEC;
use crate::revocation::CrlSpec;
use crate::signer::{Health, IssuerContext, IssuerError, SignError, SignRequest, Signed, Signer};
use crate::x509::CrlContents;

/// Ferrum's kinds: `FerrumIssuer` and `FerrumClusterIssuer` in `ferrum.dev/v1alpha1`.
pub fn kinds() -> IssuerKinds {
    IssuerKinds::new("ferrum.dev", "v1alpha1", "Ferrum")
}

/// The spec of both Ferrum issuer kinds: exactly one backend block.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FerrumIssuerSpec {
    /// Sign with a CA certificate and private key stored in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaIssuerSpec>,
    /// Sign with a CA key that stays on a PKCS#11 token (an HSM); the certificate comes from a
    /// Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs11: Option<Pkcs11IssuerSpec>,
    /// What this issuer signs: names (patterns that may use the requesting namespace), keys,
    /// lifetimes, usages, CA certificates, and for a cluster issuer which namespaces it serves.
    /// Not a backend. Without it: any name the CA may vouch for, no CA certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<IssuerPolicy>,
    /// Revocation: CRLs signed with the CA key, served by every replica and published in a
    /// ConfigMap, listing what `CertificateRevocation` objects revoke. Not a backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<CrlSpec>,
    /// How the issuer hands out its roots when its CA changes: `status.ca` of each request
    /// carries the current root and every earlier one still needed (`mode: Overlap`, the
    /// default) or the current one only (`Current`); optionally a ConfigMap with that bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<crate::trust::TrustBundleSpec>,
}

impl FerrumIssuerSpec {
    /// How many backend blocks are set.
    pub fn backend_count(&self) -> usize {
        usize::from(self.ca.is_some()) + usize::from(self.pkcs11.is_some())
    }
}

/// The backend an issuer uses.
enum Backend<'a> {
    Ca,
    Pkcs11(&'a Pkcs11IssuerSpec),
}

fn backend(spec: &FerrumIssuerSpec) -> Result<Backend<'_>, IssuerError> {
    match (&spec.ca, &spec.pkcs11) {
        (Some(_), None) => Ok(Backend::Ca),
        (None, Some(pkcs11)) => Ok(Backend::Pkcs11(pkcs11)),
        _ => Err(IssuerError::new(INVALID_SPEC, "spec must set exactly one backend block: `ca` or `pkcs11`")),
    }
}

/// Ferrum's signer: the `ca` backend for issuers with a `ca` block, the `pkcs11` backend for
/// those with a `pkcs11` block.
pub struct FerrumSigner {
    ca: CaSigner,
    pkcs11: Pkcs11Signer,
}

impl FerrumSigner {
    /// Both backends, reading Secrets with `client`; PKCS#11 modules as `pkcs11` allows.
    pub fn new(client: kube::Client, pkcs11: Pkcs11Settings) -> Self {
        Self { ca: CaSigner::new(client.clone()), pkcs11: Pkcs11Signer::new(client, pkcs11) }
    }
}

impl Signer for FerrumSigner {
    type Spec = FerrumIssuerSpec;

    async fn check(&self, issuer: &IssuerContext<'_, FerrumIssuerSpec>) -> Result<Health, IssuerError> {
        match backend(issuer.spec)? {
            Backend::Ca => self.ca.check(issuer).await,
            Backend::Pkcs11(spec) => self.pkcs11.check_spec(issuer, spec).await,
        }
    }

    async fn sign(
        &self,
        request: &SignRequest<'_>,
        issuer: &IssuerContext<'_, FerrumIssuerSpec>,
    ) -> Result<Signed, SignError> {
        match backend(issuer.spec).map_err(SignError::IssuerBroken)? {
            Backend::Ca => self.ca.sign(request, issuer).await,
            Backend::Pkcs11(spec) => self.pkcs11.sign_spec(request, issuer.secret_namespace, spec).await,
        }
    }

    fn policy<'a>(&self, spec: &'a FerrumIssuerSpec) -> Option<&'a IssuerPolicy> {
        spec.policy.as_ref()
    }

    fn secret_names(&self, spec: &FerrumIssuerSpec) -> Vec<String> {
        let mut names = self.ca.secret_names(spec);
        if let Some(pkcs11) = &spec.pkcs11 {
            names.push(pkcs11.certificate_secret_name.clone());
            names.push(pkcs11.pin_secret_ref.name.clone());
        }
        names
    }

    fn forget(&self, issuer: &IssuerContext<'_, FerrumIssuerSpec>) {
        self.ca.forget(issuer);
        if let Some(pkcs11) = &issuer.spec.pkcs11 {
            self.pkcs11.forget_spec(issuer.secret_namespace, pkcs11);
        }
    }

    fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.pkcs11.register_metrics(registry);
    }

    fn revocation<'a>(&self, spec: &'a FerrumIssuerSpec) -> Option<&'a CrlSpec> {
        spec.crl.as_ref()
    }

    fn trust_bundle<'a>(&self, spec: &'a FerrumIssuerSpec) -> Option<&'a crate::trust::TrustBundleSpec> {
        spec.ca_bundle.as_ref()
    }

    fn rotation<'a>(&self, spec: &'a FerrumIssuerSpec) -> Option<&'a crate::rotation::RotationSpec> {
        // Only the `ca` backend names a next CA (a PKCS#11 issuer has no `next` block).
        self.ca.rotation(spec)
    }

    async fn cross_certificate(
        &self,
        issuer: &IssuerContext<'_, FerrumIssuerSpec>,
        next_root: &[u8],
    ) -> Result<String, SignError> {
        match backend(issuer.spec).map_err(SignError::IssuerBroken)? {
            Backend::Ca => self.ca.cross_certificate(issuer, next_root).await,
            Backend::Pkcs11(_) => Err(SignError::Permanent("a pkcs11 issuer has no next CA to cross-sign".into())),
        }
    }

    async fn issuing_certificate(&self, issuer: &IssuerContext<'_, FerrumIssuerSpec>) -> Result<Vec<u8>, SignError> {
        match backend(issuer.spec).map_err(SignError::IssuerBroken)? {
            Backend::Ca => self.ca.issuing_certificate(issuer).await,
            Backend::Pkcs11(spec) => self.pkcs11.issuing_certificate_spec(issuer.secret_namespace, spec).await,
        }
    }

    async fn sign_crl(
        &self,
        issuer: &IssuerContext<'_, FerrumIssuerSpec>,
        contents: CrlContents,
    ) -> Result<Vec<u8>, SignError> {
        match backend(issuer.spec).map_err(SignError::IssuerBroken)? {
            Backend::Ca => self.ca.sign_crl(issuer, contents).await,
            Backend::Pkcs11(spec) => self.pkcs11.sign_crl_spec(issuer.secret_namespace, spec, contents).await,
        }
    }
}
