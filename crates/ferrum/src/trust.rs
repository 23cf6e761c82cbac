//! Trust bundles that follow the CA: every root an issuer has signed with is remembered in its
//! status (a *CA generation*) for as long as a certificate it signed may still be valid, and
//! the roots still needed are handed out together — in `status.ca` of every request issued
//! (so each Secret's `ca.crt` carries the overlap) and, if the issuer asks, in a ConfigMap — so
//! that replacing an issuer's CA breaks no client that trusts the bundle.
//!
//! How long a superseded root stays: until the latest instant a certificate it signed can
//! expire. That is the expiry of the CA that signed it (Ferrum never issues past it) or, when
//! every policy the issuer had while that root was current limited lifetimes, the time it was
//! superseded plus the longest lifetime allowed (and ten minutes for signatures in flight).
//!
//! A *next* root (see [`crate::rotation`]) is handed out before it signs anything.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::backoff::{parse_time, to_time};
use crate::encoding::{hex_encode, pem_encode};

/// The most CA generations an issuer may need at once; a CA change that would need more makes
/// the issuer not Ready (`TooManyCAGenerations`) rather than drop a root still needed.
pub const MAX_GENERATIONS: usize = 16;

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
    /// Published ahead of a staged switch: in every bundle, not signing yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub next: bool,
    /// The longest lifetime (seconds) any policy allowed while this root was current; absent
    /// when one did not limit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_leaf_seconds: Option<u64>,
}

/// Signatures that started before a root was superseded finish within this time: it covers a
/// request controller whose copy of the issuer is late by up to this much.
pub(crate) const IN_FLIGHT_MARGIN: Duration = Duration::from_secs(600);

/// The longest lifetime recorded: 100 years, what cert-manager may request at most.
const LONGEST_LEAF_SECONDS: u64 = 100 * 365 * 24 * 3600;

/// What an issuer check found about its roots.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Roots<'a> {
    /// The root (DER) of the CA that signs now.
    pub signing: &'a [u8],
    /// Nothing it signs outlives this (its chain's expiry).
    pub signing_expires: SystemTime,
    /// A next root published ahead of a switch, with its expiry.
    pub next: Option<(&'a [u8], SystemTime)>,
    /// The longest lifetime the issuer's policy allows now; `None`: unlimited.
    pub longest_leaf: Option<Duration>,
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

/// Whether a generation may still be needed at `now`: current, or superseded while a
/// certificate it signed may still be valid. A time that does not read counts as needed.
fn needed(generation: &CaGeneration, now: SystemTime) -> bool {
    generation.superseded_at.is_none() || parse_time(&generation.leaves_expire_by).is_none_or(|until| until > now)
}

/// The generations after a check at `now` found `roots`: the signing root first (the previous
/// one superseded if it differs, its `leavesExpireBy` tightened by the longest lifetime its
/// policies allowed), then a next root if one is published, then the superseded ones still
/// needed. Never drops a root that may still be needed; the caller refuses more than
/// [`MAX_GENERATIONS`].
pub(crate) fn next_generations(previous: &[CaGeneration], roots: Roots<'_>, now: SystemTime) -> Vec<CaGeneration> {
    let stamp = |t: SystemTime| to_time(t).0.to_string();
    let fingerprint_of_signing = fingerprint(roots.signing);
    let next_fingerprint = roots.next.map(|(der, _)| fingerprint(der));
    // A generation that signed at some time (current, or superseded) has a history to keep; one
    // only ever published ahead of a switch has none.
    let signed = |g: &CaGeneration| !g.next || g.superseded_at.is_some();
    let history = |fp: &str| previous.iter().find(|g| g.fingerprint == fp && signed(g));
    // The lifetime bound of the signing root: every policy seen while it was current, an
    // unlimited one for good.
    let was_current = history(&fingerprint_of_signing);
    let longest = match (was_current, roots.longest_leaf) {
        (_, None) => None,
        (Some(g), Some(now_longest)) => g.longest_leaf_seconds.map(|s| s.max(now_longest.as_secs())),
        (None, Some(now_longest)) => Some(now_longest.as_secs()),
    }
    // The apiserver stores integers as int64; no request lives longer than 100 years anyway.
    .map(|seconds| seconds.min(LONGEST_LEAF_SECONDS));
    let mut next = vec![CaGeneration {
        fingerprint: fingerprint_of_signing.clone(),
        certificate: pem_encode("CERTIFICATE", roots.signing),
        leaves_expire_by: stamp(roots.signing_expires),
        superseded_at: None,
        next: false,
        longest_leaf_seconds: longest,
    }];
    if let (Some((der, expires)), Some(fp)) = (roots.next, &next_fingerprint) {
        // A root that signed before (a rollback) keeps its bound and history while published
        // again as the next one.
        next.push(match history(fp) {
            Some(earlier) => CaGeneration { next: true, ..earlier.clone() },
            None => CaGeneration {
                fingerprint: fp.clone(),
                certificate: pem_encode("CERTIFICATE", der),
                leaves_expire_by: stamp(expires),
                superseded_at: None,
                next: true,
                longest_leaf_seconds: None,
            },
        });
    }
    let others = previous.iter().filter(|g| {
        g.fingerprint != fingerprint_of_signing && Some(&g.fingerprint) != next_fingerprint.as_ref() && signed(g)
    });
    for generation in others.filter(|g| needed(g, now)) {
        let mut generation = CaGeneration { next: false, ..generation.clone() };
        if generation.superseded_at.is_none() {
            generation.superseded_at = Some(stamp(now));
            // Nothing signs under it from now on: its leaves expire within the longest lifetime.
            let bound = generation
                .longest_leaf_seconds
                .and_then(|seconds| now.checked_add(Duration::from_secs(seconds))?.checked_add(IN_FLIGHT_MARGIN));
            if let (Some(bound), Some(by)) = (bound, parse_time(&generation.leaves_expire_by)) {
                generation.leaves_expire_by = stamp(bound.min(by));
            }
        }
        next.push(generation);
    }
    next
}

/// The earliest instant a superseded root leaves the bundles: when the issuer should look again.
pub(crate) fn next_departure(generations: &[CaGeneration]) -> Option<SystemTime> {
    generations.iter().filter(|g| g.superseded_at.is_some()).filter_map(|g| parse_time(&g.leaves_expire_by)).min()
}

/// Whether a superseded root is still handed out at `now`.
pub(crate) fn overlapping(generations: &[CaGeneration], now: SystemTime) -> bool {
    generations.iter().any(|g| g.superseded_at.is_some() && needed(g, now))
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

    /// The generations after a check found `signing` current, no next root, no lifetime limit.
    fn next_generations(
        previous: &[CaGeneration],
        signing: &[u8],
        signing_expires: SystemTime,
        now: SystemTime,
    ) -> Vec<CaGeneration> {
        let roots = Roots { signing, signing_expires, next: None, longest_leaf: None };
        super::next_generations(previous, roots, now)
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
    fn a_next_root_is_handed_out_before_it_signs_and_lifetimes_bound_the_old_root() {
        let hour = Duration::from_secs(3600);
        let roots = |signing: &'static [u8], next: Option<&'static [u8]>, longest: Option<Duration>| Roots {
            signing,
            signing_expires: from_unix(1_000_000),
            next: next.map(|n| (n, from_unix(2_000_000))),
            longest_leaf: longest,
        };
        let (old, new): (&'static [u8], &'static [u8]) = (&[0x30, 0x03, 0x02, 0x01, 1], &[0x30, 0x03, 0x02, 0x01, 2]);
        let first = super::next_generations(&[], roots(old, None, Some(hour)), from_unix(1_000));
        assert_eq!(first[0].longest_leaf_seconds, Some(3600));
        // A longer policy later: the longest one counts.
        let longer = super::next_generations(&first, roots(old, Some(new), Some(2 * hour)), from_unix(2_000));
        assert_eq!(longer.len(), 2);
        assert_eq!((longer[0].longest_leaf_seconds, longer[1].next), (Some(7200), true));
        assert!(longer[1].superseded_at.is_none(), "the next root is needed, not superseded");
        let handed_out = bundle(&first[0].certificate, &longer, from_unix(2_000));
        assert_eq!(handed_out.matches("BEGIN CERTIFICATE").count(), 2, "the next root is handed out with the current");
        // The switch: the next root signs, the old one is superseded and bounded by the longest
        // lifetime plus the margin, not by its CA's expiry.
        let switched = super::next_generations(&longer, roots(new, None, Some(hour)), from_unix(3_000));
        assert_eq!(switched.len(), 2);
        assert_eq!((switched[0].fingerprint.clone(), switched[0].next), (fingerprint(new), false));
        assert_eq!(switched[0].longest_leaf_seconds, Some(3600), "the policies seen while it was current");
        assert_eq!(switched[1].leaves_expire_by, to_time(from_unix(3_000 + 7_200 + 600)).0.to_string());
        assert_eq!(next_departure(&switched), Some(from_unix(3_000 + 7_200 + 600)));
        assert!(overlapping(&switched, from_unix(10_000)) && !overlapping(&switched, from_unix(10_800)));
        // An unlimited policy at any time while a root is current: bounded by its CA only.
        let unlimited = super::next_generations(&longer, roots(old, Some(new), None), from_unix(2_500));
        assert_eq!(unlimited[0].longest_leaf_seconds, None);
        let after = super::next_generations(&unlimited, roots(new, None, Some(hour)), from_unix(3_000));
        assert_eq!(after[1].leaves_expire_by, to_time(from_unix(1_000_000)).0.to_string());
        // A next root withdrawn before the switch leaves the bundles at once.
        let withdrawn = super::next_generations(&longer, roots(old, None, Some(hour)), from_unix(2_600));
        assert_eq!(withdrawn.len(), 1);
        // A rollback: the old root named as next again keeps its bound, and stays needed when
        // withdrawn again.
        let rollback = super::next_generations(&switched, roots(new, Some(old), Some(hour)), from_unix(3_100));
        assert_eq!(rollback.len(), 2);
        assert_eq!(
            (rollback[1].next, rollback[1].leaves_expire_by.clone()),
            (true, switched[1].leaves_expire_by.clone())
        );
        let again = super::next_generations(&rollback, roots(new, None, Some(hour)), from_unix(3_200));
        assert_eq!(again.len(), 2, "a root that signed stays while its leaves may be valid");
        assert_eq!((again[1].next, again[1].superseded_at.clone()), (false, switched[1].superseded_at.clone()));
        // A lifetime bound far in the future does not overflow.
        let huge =
            super::next_generations(&[], roots(old, None, Some(Duration::from_secs(u64::MAX / 2))), from_unix(1));
        let after = super::next_generations(&huge, roots(new, None, None), from_unix(2));
        assert_eq!(after[1].leaves_expire_by, to_time(from_unix(1_000_000)).0.to_string(), "the CA's expiry");
    }

    #[test]
    fn no_needed_generation_is_dropped_to_make_room() {
        let mut generations = Vec::new();
        for i in 0..20u8 {
            generations = next_generations(&generations, &root(i), from_unix(1_000_000), from_unix(u64::from(i)));
        }
        assert_eq!(generations.len(), 20, "every root whose leaves may be valid is kept (the caller refuses more)");
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
