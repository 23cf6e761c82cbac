//! Revocation, the Kubernetes way: a `CertificateRevocation` object (RBAC decides who may
//! create one, in which namespace) names a certificate by its Certificate, its
//! CertificateRequest, or — for whoever may act for the issuer — by serial number. The leader
//! resolves it to a serial of one of its issuers, records it in the issuer's ledger and signs a
//! new CRL with the issuer's CA key, through the same [`crate::Signer`] seam as certificates
//! ([`crate::Signer::sign_crl`]), in one write of the issuer's CRL ConfigMap. Every replica
//! serves each issuer's current CRL over HTTP ([`serve`]).
//!
//! An issuer turns this on with a `crl` block ([`CrlSpec`], returned by
//! [`crate::Signer::revocation`]).

mod ledger;
pub(crate) mod publish;
pub mod reasons;
pub mod serve;
mod spec;

use std::time::Duration;

use crate::api::{IssuerKinds, IssuerScope};
pub(crate) use ledger::{Added, Entry, from_unix, hex, parse_serial, unix};
pub use publish::{CRL_KEY, LEDGER_KEY, MAX_CONFIG_MAP_BYTES};
pub use spec::{
    CertificateRevocation, CertificateRevocationSpec, CertificateRevocationStatus, CrlSpec, LocalRef, REVOCATION_KIND,
    Reason, RevocationIssuerRef, api_resource, crd,
};

/// How many unexpired revoked certificates one namespace may have on a cluster issuer's CRL
/// when the spec gives no number.
pub const DEFAULT_MAX_REVOCATIONS_PER_NAMESPACE: u32 = 1000;

/// A CRL's validity when the spec gives none.
pub const DEFAULT_CRL_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// The shortest CRL validity a spec may ask for.
pub const MIN_CRL_VALIDITY: Duration = Duration::from_secs(5 * 60);
/// The longest CRL validity a spec may ask for.
pub const MAX_CRL_VALIDITY: Duration = Duration::from_secs(8760 * 3600);

/// Label on every CRL ConfigMap Ferrum writes (value `true`): what the CRL servers watch.
pub fn crl_label(kinds: &IssuerKinds) -> String {
    format!("{}/crl", kinds.group)
}

/// Annotation naming the issuer kind whose CRL a ConfigMap holds.
pub(crate) fn kind_annotation(kinds: &IssuerKinds) -> String {
    format!("{}/crl-issuer-kind", kinds.group)
}

/// Annotation naming the issuer whose CRL a ConfigMap holds.
pub(crate) fn name_annotation(kinds: &IssuerKinds) -> String {
    format!("{}/crl-issuer-name", kinds.group)
}

/// Where an issuer's CRL is served, below the CRL server's root: the apiserver's path of the
/// issuer with `.crl`, e.g. `/namespaces/team-a/ferrumissuers/ca.crl` or
/// `/ferrumclusterissuers/root.crl`.
pub fn crl_path(kinds: &IssuerKinds, scope: IssuerScope, namespace: &str, name: &str) -> String {
    let plural = kinds.api_resource(scope).plural;
    match scope {
        IssuerScope::Namespaced => format!("/namespaces/{namespace}/{plural}/{name}.crl"),
        IssuerScope::Cluster => format!("/{plural}/{name}.crl"),
    }
}

/// The CRL distribution point an issuer writes into its certificates, if its spec has a base
/// URL.
pub fn distribution_point(
    kinds: &IssuerKinds,
    scope: IssuerScope,
    namespace: &str,
    name: &str,
    spec: &CrlSpec,
) -> Option<String> {
    let base = spec.base_url.as_deref()?.trim_end_matches('/');
    Some(format!("{base}{}", crl_path(kinds, scope, namespace, name)))
}

/// The name of the ConfigMap in the issuer's secret namespace that carries a copy of its CRL
/// (`ca.crl`) for consumers that read it from there.
pub fn config_map_name(spec: &CrlSpec, issuer: &str) -> String {
    spec.config_map_name.clone().unwrap_or_else(|| format!("{issuer}-crl"))
}

/// The name of the ConfigMap in the cluster resource namespace that holds an issuer's ledger and
/// CRL: `crl-<kind>-<16 hex digits of SHA-256 of kind/namespace/name>` (names may be too long to
/// put together; the annotations say whose it is).
pub fn ledger_config_map_name(kinds: &IssuerKinds, scope: IssuerScope, namespace: &str, name: &str) -> String {
    let kind = kinds.kind(scope);
    let namespace = if scope == IssuerScope::Cluster { "" } else { namespace };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, format!("{kind}/{namespace}/{name}").as_bytes());
    format!("crl-{}-{}", kind.to_lowercase(), hex(&digest.as_ref()[..8]))
}

/// Annotation naming the namespace of the (namespaced) issuer whose CRL a ConfigMap holds.
pub(crate) fn namespace_annotation(kinds: &IssuerKinds) -> String {
    format!("{}/crl-issuer-namespace", kinds.group)
}

/// A spec's CRL validity, checked; `Err` says what is wrong, for the issuer's status.
pub fn validity(spec: &CrlSpec) -> Result<Duration, String> {
    let Some(text) = spec.validity.as_deref() else {
        return Ok(DEFAULT_CRL_VALIDITY);
    };
    let validity = crate::x509::parse_go_duration(text).map_err(|e| format!("spec.crl.validity: {e}"))?;
    if !(MIN_CRL_VALIDITY..=MAX_CRL_VALIDITY).contains(&validity) {
        return Err(format!("spec.crl.validity must be between 5m and 8760h, not {text:?}"));
    }
    Ok(validity)
}

/// Checks a `crl` block; `Err` says what is wrong, for the issuer's status.
pub fn check_spec(spec: &CrlSpec) -> Result<(), String> {
    validity(spec)?;
    if let Some(url) = &spec.base_url {
        let printable = url.chars().all(|c| c.is_ascii_graphic());
        if !(url.starts_with("http://") || url.starts_with("https://")) || !printable || url.len() > 512 {
            return Err(format!(
                "spec.crl.baseURL must be an http:// or https:// URL of printable ASCII, at most 512 characters, not {url:?}"
            ));
        }
    }
    Ok(())
}

/// The bytes a CRL ConfigMap would hold for `entries` (their certificates expiring at
/// `not_after`) and the CRL `crl_der`: for the CRL benchmark only.
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub fn config_map_bytes_for_bench(
    entries: &[crate::x509::RevokedEntry],
    not_after: std::time::SystemTime,
    crl_der: &[u8],
) -> usize {
    let mut ledger = ledger::Ledger { number: unix(std::time::SystemTime::now()), ..Default::default() };
    for e in entries {
        let entry = Entry {
            revoked_at: unix(e.revoked_at),
            reason: e.reason,
            not_after: unix(not_after),
            namespace: "team-payments".into(),
            by: "3f2a9b1c".into(),
        };
        ledger.add(e.serial.clone(), entry);
    }
    ledger.render().len() + crate::encoding::pem_encode("X509 CRL", crl_der).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_apiserver_and_the_base_url() {
        let kinds = crate::issuer::kinds();
        assert_eq!(
            crl_path(&kinds, IssuerScope::Namespaced, "team-a", "ca"),
            "/namespaces/team-a/ferrumissuers/ca.crl"
        );
        assert_eq!(crl_path(&kinds, IssuerScope::Cluster, "ignored", "root"), "/ferrumclusterissuers/root.crl");
        let spec = CrlSpec { base_url: Some("http://crl.example/".into()), ..Default::default() };
        assert_eq!(
            distribution_point(&kinds, IssuerScope::Cluster, "x", "root", &spec).as_deref(),
            Some("http://crl.example/ferrumclusterissuers/root.crl")
        );
        assert_eq!(distribution_point(&kinds, IssuerScope::Cluster, "x", "root", &CrlSpec::default()), None);
        assert_eq!(config_map_name(&CrlSpec::default(), "ca"), "ca-crl");
        let ledger = |scope, ns: &str, name: &str| ledger_config_map_name(&kinds, scope, ns, name);
        assert_eq!(ledger(IssuerScope::Namespaced, "a", "ca").len(), "crl-ferrumissuer-".len() + 16);
        assert_ne!(ledger(IssuerScope::Namespaced, "a", "ca"), ledger(IssuerScope::Namespaced, "b", "ca"));
        assert_eq!(ledger(IssuerScope::Cluster, "x", "root"), ledger(IssuerScope::Cluster, "y", "root"));
    }

    #[test]
    fn crl_blocks_are_checked() {
        let with = |validity: Option<&str>, url: Option<&str>| {
            check_spec(&CrlSpec {
                validity: validity.map(Into::into),
                base_url: url.map(Into::into),
                ..Default::default()
            })
        };
        assert_eq!(with(None, None), Ok(()));
        assert_eq!(validity(&CrlSpec::default()), Ok(DEFAULT_CRL_VALIDITY));
        assert_eq!(with(Some("5m"), Some("https://x/y")), Ok(()));
        assert!(with(Some("4m"), None).unwrap_err().contains("between 5m and 8760h"));
        assert!(with(Some("soon"), None).unwrap_err().contains("spec.crl.validity"));
        assert!(with(None, Some("ftp://x")).unwrap_err().contains("spec.crl.baseURL"));
        assert!(with(None, Some("http://a b")).unwrap_err().contains("spec.crl.baseURL"));
    }
}
