//! Trust bundles that follow the CA: every root an issuer has signed with is remembered in its
//! status (a *CA generation*) for as long as a certificate it signed may still be valid, and
//! the roots still needed are handed out together — in `status.ca` of every request issued
//! (so each Secret's `ca.crt` carries the overlap) and, if the issuer asks, in a ConfigMap — so
//! that replacing an issuer's CA breaks no client that trusts the bundle.
//!
//! How long a superseded root stays: until the latest instant a certificate it signed can
//! expire, which is the expiry of the CA that signed it (Ferrum never issues past it).

use std::collections::HashSet;
use std::time::SystemTime;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::backoff::to_time;
use crate::encoding::{hex_encode, pem_encode};

/// The most CA generations an issuer's status keeps (the oldest superseded go first).
pub const MAX_GENERATIONS: usize = 8;

/// One root an issuer has signed under.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaGeneration {
    /// SHA-256 of the root certificate (DER), hex.
    pub fingerprint: String,
    /// The root certificate, PEM.
    pub certificate: String,
    /// No certificate signed under this root outlives this instant (the signing CA's expiry).
    pub leaves_expire_by: String,
    /// When another root replaced it; absent for the current root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_at: Option<String>,
}

/// How an issuer hands out its roots.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
pub enum BundleMode {
    /// The current root and every earlier one still needed (the default).
    #[default]
    Overlap,
    /// The current root only, as cert-manager's CA issuer does.
    Current,
}

/// An issuer's `caBundle` block.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustBundleSpec {
    /// What `status.ca` of each issued request carries: `Overlap` (default) or `Current`.
    #[serde(default)]
    pub mode: BundleMode,
    /// A ConfigMap of the issuer's secret namespace to publish the overlapping bundle in
    /// (`ca.crt`), for trust-manager or for pods to mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub config_map_name: Option<String>,
}

/// SHA-256 of a certificate, hex.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    hex_encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref())
}

fn parse_time(text: &str) -> Option<SystemTime> {
    let at: k8s_openapi::jiff::Timestamp = text.parse().ok()?;
    Some(SystemTime::from(at))
}

/// Whether a generation may still be needed at `now`: current, or superseded while a
/// certificate it signed may still be valid. A time that does not read counts as needed.
fn needed(generation: &CaGeneration, now: SystemTime) -> bool {
    generation.superseded_at.is_none() || parse_time(&generation.leaves_expire_by).is_none_or(|until| until > now)
}

/// The generations after a check found `root` (DER) current, its certificates expiring by
/// `leaves_expire_by`: the previous current one superseded if it differs, the ones no longer
/// needed dropped, at most [`MAX_GENERATIONS`].
pub(crate) fn next_generations(
    previous: &[CaGeneration],
    root: &[u8],
    leaves_expire_by: SystemTime,
    now: SystemTime,
) -> Vec<CaGeneration> {
    let fingerprint = fingerprint(root);
    let stamp = |t: SystemTime| to_time(t).0.to_string();
    let current = CaGeneration {
        fingerprint: fingerprint.clone(),
        certificate: pem_encode("CERTIFICATE", root),
        leaves_expire_by: stamp(leaves_expire_by),
        superseded_at: None,
    };
    let mut next = vec![current];
    for generation in previous.iter().filter(|g| g.fingerprint != fingerprint && needed(g, now)) {
        let mut generation = generation.clone();
        generation.superseded_at.get_or_insert_with(|| stamp(now));
        next.push(generation);
    }
    next.truncate(MAX_GENERATIONS);
    next
}

/// The roots to hand out at `now`: `current` (PEM, first), then every other root still needed,
/// each once.
pub(crate) fn bundle(current: &str, generations: &[CaGeneration], now: SystemTime) -> String {
    let mut seen = HashSet::new();
    let mut out = String::new();
    for pem in std::iter::once(current.to_owned())
        .chain(generations.iter().filter(|g| needed(g, now)).map(|g| g.certificate.clone()))
    {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        for der in CertificateDer::pem_slice_iter(pem.as_bytes()).flatten() {
            if seen.insert(fingerprint(&der)) {
                out.push_str(&pem_encode("CERTIFICATE", &der));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::from_unix;

    fn root(byte: u8) -> Vec<u8> {
        // Not a certificate: generations only hash and wrap it.
        vec![0x30, 0x03, 0x02, 0x01, byte]
    }

    #[test]
    fn a_new_root_supersedes_the_old_which_stays_while_its_leaves_may_be_valid() {
        let (t0, t1) = (from_unix(1_000), from_unix(2_000));
        let first = next_generations(&[], &root(1), from_unix(5_000), t0);
        assert_eq!(first.len(), 1);
        assert!(first[0].superseded_at.is_none());
        assert_eq!(next_generations(&first, &root(1), from_unix(5_000), t1), first, "the same root: nothing changes");

        let second = next_generations(&first, &root(2), from_unix(9_000), t1);
        assert_eq!(second.len(), 2);
        assert_eq!(second[0].fingerprint, fingerprint(&root(2)));
        assert_eq!(second[1].fingerprint, fingerprint(&root(1)));
        assert_eq!(second[1].superseded_at.as_deref(), Some("1970-01-01T00:33:20Z"));
        assert_eq!(next_generations(&second, &root(2), from_unix(9_000), from_unix(3_000)), second, "stable");
        // Once the old root's leaves have all expired, it goes.
        let later = next_generations(&second, &root(2), from_unix(9_000), from_unix(5_000));
        assert_eq!(later.len(), 1);
        // A rollback to the old root while it is still needed makes it current again.
        let back = next_generations(&second, &root(1), from_unix(5_000), from_unix(3_000));
        assert_eq!((back[0].fingerprint.clone(), back[0].superseded_at.clone()), (fingerprint(&root(1)), None));
        assert_eq!(back.len(), 2);
    }

    #[test]
    fn generations_are_bounded() {
        let mut generations = Vec::new();
        for i in 0..20u8 {
            generations = next_generations(&generations, &root(i), from_unix(1_000_000), from_unix(u64::from(i)));
        }
        assert_eq!(generations.len(), MAX_GENERATIONS);
        assert_eq!(generations[0].fingerprint, fingerprint(&root(19)));
    }

    #[test]
    fn bundles_hold_each_needed_root_once_current_first() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = |name: &str| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
            params.self_signed(&key).unwrap()
        };
        let (old, new) = (cert("old"), cert("new"));
        let generations = next_generations(
            &next_generations(&[], old.der(), from_unix(5_000), from_unix(1_000)),
            new.der(),
            from_unix(9_000),
            from_unix(2_000),
        );
        let pems = |bundle: &str| bundle.matches("BEGIN CERTIFICATE").count();
        let overlap = bundle(&new.pem(), &generations, from_unix(3_000));
        assert_eq!(pems(&overlap), 2);
        assert!(overlap.starts_with(&pem_encode("CERTIFICATE", new.der())), "current first");
        assert_eq!(pems(&bundle(&new.pem(), &generations, from_unix(5_000 + 1))), 1, "the old root has gone");
    }
}
