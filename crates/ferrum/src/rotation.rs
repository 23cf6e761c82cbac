//! Staged CA rotation: an issuer names a *next* CA that is published in every trust bundle
//! before it signs anything, switches to it when the user says so or after a propagation
//! window, can serve a cross-certificate so that clients trusting only the old root accept the
//! new leaves, and can ask cert-manager to re-issue what the retired CA signed.
//!
//! The phases, kept in the issuer's `status.rotation` (durable across restarts):
//!
//! | phase | what signs | waits for |
//! |---|---|---|
//! | `Publishing` | the current CA; the next root is in every bundle | the bundles written, then the window or `switchTo` |
//! | `Switched` | the next CA | re-issuance (if on), then the spec naming the next Secret as the CA |
//! | `Complete` | the CA of the spec (the former next) | the old root's leaves to expire |
//!
//! The state machine is [`advance`], a pure function of the previous status, the spec and
//! what the backend found; the controller writes what it returns and publishes an event for
//! each [`Transition`]. A root never signs in the check that first sees it: it is recorded as
//! `Publishing`, the bundles are written with it, and only a later check may switch to it, and
//! only once every bundle was written with it (`bundlesPublishedAt`).

use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::backoff::{parse_time, to_time};

/// The settings of a staged rotation (the backend names the next CA itself, e.g. the `ca`
/// backend's `next.secretName`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationSpec {
    /// Switch this long after every bundle was written with the next root (a Go duration, e.g.
    /// `168h`; more than zero, at most 10 years): the time clients have to pick up the new
    /// bundle. Without it the switch waits for `switchTo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub switch_after: Option<String>,
    /// Switch now to the next root with this SHA-256 fingerprint (`status.rotation.next`),
    /// once every bundle was written with it. Naming the root, not just "now", means a next CA
    /// replaced meanwhile is never switched to unseen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub switch_to: Option<String>,
    /// Sign a cross-certificate of the next root with the current CA and serve it after each
    /// new leaf, so that a client trusting only the old root accepts leaves of the next CA.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cross_sign: bool,
    /// After the switch, ask cert-manager to re-issue every Certificate of this issuer issued
    /// before it (the status change `cmctl renew` makes). Needs the chart's
    /// `rotation.reissue=true` (the right to update `certificates/status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reissue: Option<ReissueSpec>,
}

/// How fast re-issuance goes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReissueSpec {
    /// Certificates asked to re-issue per minute at most (default 10).
    #[serde(default = "default_per_minute")]
    #[schemars(range(min = 1, max = 6000))]
    pub per_minute: u32,
}

fn default_per_minute() -> u32 {
    10
}

impl Default for ReissueSpec {
    fn default() -> Self {
        Self { per_minute: default_per_minute() }
    }
}

/// Where a rotation stands.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
pub enum RotationPhase {
    /// The next root is in every bundle; the current CA still signs.
    Publishing,
    /// The next CA signs.
    Switched,
    /// The spec names the former next CA as its CA; the old root stays in the bundles while
    /// leaves it signed may be valid.
    Complete,
}

/// Re-issuance progress.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReissueStatus {
    /// Certificates of this issuer whose certificate was issued before the switch (as last
    /// counted; not a count while `blocked`).
    pub remaining: u32,
    /// Certificates asked to re-issue so far.
    pub requested: u32,
    /// Why re-issuance cannot proceed, if it cannot (e.g. a missing right).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

/// `status.rotation`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationStatus {
    /// Where the rotation stands.
    pub phase: RotationPhase,
    /// SHA-256 fingerprint (hex) of the next root.
    pub next: String,
    /// When the next root was first seen and handed out.
    pub published_at: String,
    /// When every bundle (the ConfigMap, the ClusterTrustBundle where served) was first written
    /// with the next root: no switch before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundles_published_at: Option<String>,
    /// When the switch happens by itself (`switchAfter` after `bundlesPublishedAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_at: Option<String>,
    /// When the next CA started signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<String>,
    /// What the rotation waits for, for a person.
    pub waiting_for: String,
    /// PEM: the cross-certificate of the next root signed by the previous CA at the switch,
    /// then that CA's intermediates; served after each leaf of the next CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_certificate: Option<String>,
    /// Re-issuance progress, when it is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reissue: Option<ReissueStatus>,
}

/// A change of phase, published as an event on the issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// A next CA was published in the bundles.
    Published,
    /// The next CA signs now.
    Switched,
    /// The spec names the new CA: the rotation is done.
    Completed,
    /// The next CA was withdrawn before or after the switch; the spec's CA signs.
    Cancelled,
    /// The previous root has left every bundle: the rotation is over.
    Ended,
}

impl Transition {
    /// The event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Transition::Published => "NextCAPublished",
            Transition::Switched => "CASwitched",
            Transition::Completed => "RotationComplete",
            Transition::Cancelled => "RotationCancelled",
            Transition::Ended => "RotationEnded",
        }
    }
}

/// What the backend found at a check.
#[derive(Clone, Copy, Debug)]
pub struct Found<'a> {
    /// Fingerprint of the root of the CA the spec names as current.
    pub current: &'a str,
    /// Fingerprint of the next root, when the spec names a next CA.
    pub next: Option<&'a str>,
    /// Whether a superseded root is still in the bundles (the rotation status stays while it is,
    /// for its cross-certificate).
    pub overlap: bool,
}

/// Which CA signs a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ActiveCa {
    /// The CA the spec names as current.
    #[default]
    Current,
    /// The next CA, after the switch: the backend signs only if its root has this fingerprint.
    Next {
        /// SHA-256 of the next root (hex), as recorded at the switch.
        root_fingerprint: String,
    },
}

impl RotationStatus {
    /// The CA that signs while this status holds.
    pub fn active(&self) -> ActiveCa {
        match self.phase {
            RotationPhase::Switched => ActiveCa::Next { root_fingerprint: self.next.clone() },
            _ => ActiveCa::Current,
        }
    }

    /// When a check is due because of this rotation (the automatic switch).
    pub fn due(&self) -> Option<SystemTime> {
        if self.phase != RotationPhase::Publishing {
            return None;
        }
        // Not yet written everywhere: the write that records it brings the next check.
        self.bundles_published_at.as_ref().and(self.switch_at.as_deref()).and_then(parse_time)
    }
}

fn stamp(at: SystemTime) -> String {
    to_time(at).0.to_string()
}

/// The longest propagation window: ten years.
const MAX_WINDOW: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Checks a rotation spec: the window must read, be more than zero and at most ten years.
pub fn check_spec(spec: &RotationSpec) -> Result<Option<Duration>, String> {
    let Some(text) = spec.switch_after.as_deref() else { return Ok(None) };
    let window = crate::x509::parse_go_duration(text).map_err(|e| format!("next.switchAfter: {e}"))?;
    if window.is_zero() || window > MAX_WINDOW {
        return Err(format!("next.switchAfter: {text} is not between 1s and 87600h (ten years)"));
    }
    Ok(Some(window))
}

/// The next rotation status after a check at `now`, and the transitions to announce.
pub fn advance(
    previous: Option<&RotationStatus>,
    spec: Option<&RotationSpec>,
    found: Found<'_>,
    now: SystemTime,
) -> (Option<RotationStatus>, Vec<Transition>) {
    let mut transitions = Vec::new();
    match (spec, found.next) {
        (Some(spec), Some(next)) if next != found.current => {
            // The same next CA as before keeps its history; another one starts over, and is
            // never switched to in the check that first sees it.
            let same = previous.filter(|p| p.next == next && p.phase != RotationPhase::Complete);
            let published_at = same.and_then(|p| parse_time(&p.published_at)).unwrap_or(now);
            if same.is_none() {
                transitions.push(Transition::Published);
            }
            let bundles_at = same.and_then(|p| p.bundles_published_at.as_deref()).and_then(parse_time);
            let window = check_spec(spec).ok().flatten();
            let switch_at = bundles_at.zip(window).and_then(|(at, window)| at.checked_add(window));
            let asked = spec.switch_to.as_deref() == Some(next);
            let switched_at = same.and_then(|p| p.switched_at.as_deref()).and_then(parse_time).or_else(|| {
                let due = asked || switch_at.is_some_and(|at| at <= now);
                (bundles_at.is_some() && due).then(|| {
                    transitions.push(Transition::Switched);
                    now
                })
            });
            let phase = if switched_at.is_some() { RotationPhase::Switched } else { RotationPhase::Publishing };
            let cross = same.and_then(|p| p.cross_certificate.clone()).filter(|_| spec.cross_sign);
            let reissue = same.and_then(|p| p.reissue.clone()).filter(|_| spec.reissue.is_some());
            let mut status = RotationStatus {
                phase,
                next: next.to_owned(),
                published_at: stamp(published_at),
                bundles_published_at: bundles_at.map(stamp),
                switch_at: switch_at.map(stamp),
                switched_at: switched_at.map(stamp),
                waiting_for: String::new(),
                cross_certificate: cross,
                reissue,
            };
            status.waiting_for = waiting_for(&status, spec);
            (Some(status), transitions)
        }
        _ => {
            let Some(previous) = previous else { return (None, transitions) };
            // The spec's CA is the one switched to: done, and kept while the old root is
            // still handed out (for the cross-certificate).
            let switched = previous.switched_at.is_some();
            if switched && previous.next == found.current {
                if previous.phase != RotationPhase::Complete {
                    transitions.push(Transition::Completed);
                }
                if !found.overlap {
                    transitions.push(Transition::Ended);
                    return (None, transitions);
                }
                let status = RotationStatus {
                    phase: RotationPhase::Complete,
                    waiting_for: "the leaves of the previous root to expire (it stays in the bundles until then)"
                        .to_owned(),
                    reissue: None,
                    ..previous.clone()
                };
                return (Some(status), transitions);
            }
            if previous.phase != RotationPhase::Complete {
                transitions.push(Transition::Cancelled);
            }
            (None, transitions)
        }
    }
}

/// Records that every bundle was written with the next root at `now` (the first time only).
pub fn bundles_published(status: &mut RotationStatus, spec: &RotationSpec, now: SystemTime) {
    if status.phase == RotationPhase::Publishing && status.bundles_published_at.is_none() {
        status.bundles_published_at = Some(stamp(now));
        let window = check_spec(spec).ok().flatten();
        status.switch_at = window.and_then(|w| now.checked_add(w)).map(stamp);
        status.waiting_for = waiting_for(status, spec);
    }
}

/// The cross-certificate chain (PEM) to serve after a leaf whose root is `root_pem`: the
/// rotation's, if it has one, the leaf's root is the rotation's new root, and the switch happened.
pub fn cross_chain<'a>(rotation: &'a RotationStatus, root_pem: &str) -> Option<&'a str> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    if rotation.phase == RotationPhase::Publishing {
        return None;
    }
    let root = CertificateDer::pem_slice_iter(root_pem.as_bytes()).next()?.ok()?;
    (crate::trust::fingerprint(&root) == rotation.next).then_some(rotation.cross_certificate.as_deref()).flatten()
}

/// What a rotation in progress waits for.
pub(crate) fn waiting_for(status: &RotationStatus, spec: &RotationSpec) -> String {
    match status.phase {
        RotationPhase::Publishing => match (&status.bundles_published_at, &status.switch_at) {
            (None, _) => "every bundle (ConfigMap, ClusterTrustBundle) to be written with the next root".to_owned(),
            (Some(_), Some(at)) => {
                format!("the propagation window: the next CA signs from {at} (or set next.switchTo to {})", status.next)
            }
            (Some(_), None) => format!("a switch by hand: set next.switchTo to {}", status.next),
        },
        RotationPhase::Switched => {
            let finish = "then name the next Secret as the CA and remove next";
            match (&spec.reissue, &status.reissue) {
                (Some(_), Some(ReissueStatus { blocked: Some(why), .. })) => format!("re-issuance, blocked: {why}"),
                (Some(_), None) => format!("re-issuance to start; {finish}"),
                (Some(_), Some(progress)) if progress.remaining > 0 => {
                    format!("{} Certificates to re-issue; {finish}", progress.remaining)
                }
                _ => format!("the spec: {finish}"),
            }
        }
        RotationPhase::Complete => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::from_unix;

    fn spec(after: Option<&str>, to: Option<&str>) -> RotationSpec {
        RotationSpec { switch_after: after.map(str::to_owned), switch_to: to.map(str::to_owned), ..Default::default() }
    }

    fn found<'a>(current: &'a str, next: Option<&'a str>, overlap: bool) -> Found<'a> {
        Found { current, next, overlap }
    }

    /// A rotation seen once and written to every bundle at `at`.
    fn published(spec: &RotationSpec, at: u64) -> RotationStatus {
        let (status, said) = advance(None, Some(spec), found("old", Some("new"), false), from_unix(at));
        assert_eq!(said, [Transition::Published]);
        let mut status = status.unwrap();
        bundles_published(&mut status, spec, from_unix(at));
        status
    }

    #[test]
    fn a_next_ca_is_published_then_switched_to_after_the_window() {
        let spec = spec(Some("10m"), None);
        let (first, _) = advance(None, Some(&spec), found("old", Some("new"), false), from_unix(1_000));
        let first = first.unwrap();
        assert_eq!((first.phase, first.active()), (RotationPhase::Publishing, ActiveCa::Current));
        assert_eq!(first.due(), None, "nothing is due before the bundles are written");
        assert!(first.waiting_for.starts_with("every bundle"), "{}", first.waiting_for);
        // The window counts from when every bundle carries the next root.
        let mut written = first.clone();
        bundles_published(&mut written, &spec, from_unix(1_005));
        assert_eq!(written.due(), Some(from_unix(1_605)));
        assert!(written.waiting_for.contains("the next CA signs from 1970-01-01T00:26:45Z"), "{}", written.waiting_for);
        let (same, said) = advance(Some(&written), Some(&spec), found("old", Some("new"), false), from_unix(1_604));
        assert_eq!((same.as_ref(), said.len()), (Some(&written), 0), "stable within the window, across restarts");
        let (switched, said) = advance(Some(&written), Some(&spec), found("old", Some("new"), true), from_unix(1_605));
        let switched = switched.unwrap();
        assert_eq!(said, [Transition::Switched]);
        assert_eq!(switched.active(), ActiveCa::Next { root_fingerprint: "new".into() });
        assert_eq!(switched.switched_at.as_deref(), Some("1970-01-01T00:26:45Z"));
        assert!(switched.waiting_for.starts_with("the spec: then name the next Secret"), "{}", switched.waiting_for);
        // Once switched it stays switched, even if the window is lengthened afterwards.
        let longer = self::spec(Some("100h"), None);
        let (still, said) = advance(Some(&switched), Some(&longer), found("old", Some("new"), true), from_unix(1_700));
        assert_eq!((still.unwrap().phase, said.len()), (RotationPhase::Switched, 0));
        // The spec names the new CA and drops next: complete, kept while the old root is handed
        // out, then ended.
        let (complete, said) = advance(Some(&switched), None, found("new", None, true), from_unix(1_800));
        let complete = complete.unwrap();
        assert_eq!((complete.phase, said), (RotationPhase::Complete, vec![Transition::Completed]));
        assert_eq!(complete.active(), ActiveCa::Current);
        let (kept, said) = advance(Some(&complete), None, found("new", None, true), from_unix(1_900));
        assert_eq!((kept.is_some(), said.len()), (true, 0));
        let (gone, said) = advance(Some(&complete), None, found("new", None, false), from_unix(2_000));
        assert_eq!((gone, said), (None, vec![Transition::Ended]));
    }

    #[test]
    fn nothing_switches_before_every_bundle_carries_the_next_root() {
        // Asked to switch to the root at once: the first check only publishes it.
        let asked = spec(None, Some("new"));
        let (first, said) = advance(None, Some(&asked), found("old", Some("new"), false), from_unix(1_000));
        assert_eq!(
            (first.as_ref().map(|s| s.phase), said),
            (Some(RotationPhase::Publishing), vec![Transition::Published])
        );
        // Bundles not written yet (a failed ConfigMap write): still no switch.
        let (again, said) = advance(first.as_ref(), Some(&asked), found("old", Some("new"), false), from_unix(1_001));
        assert_eq!((again.unwrap().phase, said.len()), (RotationPhase::Publishing, 0));
        let written = published(&asked, 1_002);
        let (switched, said) =
            advance(Some(&written), Some(&asked), found("old", Some("new"), false), from_unix(1_003));
        assert_eq!((switched.unwrap().phase, said), (RotationPhase::Switched, vec![Transition::Switched]));
        // switchTo names a root: a next CA replaced meanwhile is published, not switched to.
        let (other, said) = advance(Some(&written), Some(&asked), found("old", Some("other"), false), from_unix(1_004));
        assert_eq!((other.unwrap().phase, said), (RotationPhase::Publishing, vec![Transition::Published]));
    }

    #[test]
    fn without_a_window_the_switch_waits_for_the_user() {
        let manual = spec(None, None);
        let written = published(&manual, 1_000);
        assert_eq!(written.due(), None);
        assert_eq!(written.waiting_for, "a switch by hand: set next.switchTo to new");
        let (later, said) =
            advance(Some(&written), Some(&manual), found("old", Some("new"), false), from_unix(999_999));
        assert_eq!((later.unwrap().phase, said.len()), (RotationPhase::Publishing, 0));
        let wrong = spec(None, Some("another"));
        let (later, _) = advance(Some(&written), Some(&wrong), found("old", Some("new"), false), from_unix(2_000));
        assert_eq!(later.unwrap().phase, RotationPhase::Publishing, "a switchTo for another root changes nothing");
    }

    #[test]
    fn withdrawing_or_replacing_the_next_ca_is_said() {
        let manual = spec(None, None);
        let written = published(&manual, 1_000);
        let (none, said) = advance(Some(&written), None, found("old", None, false), from_unix(1_100));
        assert_eq!((none, said), (None, vec![Transition::Cancelled]));
        // Another next CA starts over: published again, its window from its own publication.
        let (other, said) =
            advance(Some(&written), Some(&manual), found("old", Some("other"), false), from_unix(1_100));
        assert_eq!(said, [Transition::Published]);
        let other = other.unwrap();
        assert_eq!(
            (other.published_at.as_str(), other.bundles_published_at.as_deref()),
            ("1970-01-01T00:18:20Z", None)
        );
        // Switched, then the spec went back to the old CA alone: cancelled, the old CA signs.
        let asked = spec(None, Some("new"));
        let (switched, _) =
            advance(Some(&published(&asked, 1_000)), Some(&asked), found("old", Some("new"), false), from_unix(1_001));
        let (back, said) = advance(switched.as_ref(), None, found("old", None, true), from_unix(1_100));
        assert_eq!((back, said), (None, vec![Transition::Cancelled]));
        // A next CA that is the current one is no rotation.
        let (same, said) = advance(None, Some(&manual), found("old", Some("old"), false), from_unix(1_000));
        assert_eq!((same, said.len()), (None, 0));
    }

    #[test]
    fn windows_are_bounded_so_no_time_overflows() {
        for bad in ["0s", "87601h", "3000000000000000h", "soon"] {
            let spec = spec(Some(bad), None);
            assert!(check_spec(&spec).is_err(), "{bad}");
            // advance never panics on it either: the window is ignored (no switch by time).
            let written = published(&spec, 1_000);
            let (after, _) =
                advance(Some(&written), Some(&spec), found("old", Some("new"), false), from_unix(u64::MAX / 4));
            assert_eq!(after.unwrap().phase, RotationPhase::Publishing, "{bad}");
        }
        assert_eq!(check_spec(&spec(Some("87600h"), None)), Ok(Some(MAX_WINDOW)));
    }

    #[test]
    fn the_cross_certificate_follows_only_leaves_of_the_new_root_after_the_switch() {
        let root = |byte: u8| crate::encoding::pem_encode("CERTIFICATE", &[0x30, 0x03, 0x02, 0x01, byte]);
        let (old, new) = (root(1), root(2));
        let new_fingerprint = crate::trust::fingerprint(&[0x30, 0x03, 0x02, 0x01, 2]);
        let mut rotation = published(&spec(None, None), 1_000);
        rotation.next = new_fingerprint;
        rotation.cross_certificate = Some("CROSS".into());
        assert_eq!(cross_chain(&rotation, &new), None, "not before the switch");
        rotation.phase = RotationPhase::Switched;
        assert_eq!(cross_chain(&rotation, &new), Some("CROSS"));
        assert_eq!(cross_chain(&rotation, &old), None, "a leaf of the old root needs none");
        rotation.phase = RotationPhase::Complete;
        assert_eq!(cross_chain(&rotation, &new), Some("CROSS"), "still during the overlap");
        rotation.cross_certificate = None;
        assert_eq!(cross_chain(&rotation, &new), None, "cross-signing off");
    }

    #[test]
    fn re_issuance_is_what_the_switch_waits_for_while_it_runs() {
        let spec =
            RotationSpec { switch_to: Some("new".into()), reissue: Some(ReissueSpec::default()), ..Default::default() };
        let (switched, _) =
            advance(Some(&published(&spec, 1_000)), Some(&spec), found("old", Some("new"), false), from_unix(1_001));
        let mut switched = switched.unwrap();
        assert!(switched.waiting_for.starts_with("re-issuance to start"), "{}", switched.waiting_for);
        switched.reissue = Some(ReissueStatus { remaining: 3, requested: 1, blocked: None });
        let (again, _) = advance(Some(&switched), Some(&spec), found("old", Some("new"), false), from_unix(1_010));
        let mut again = again.unwrap();
        assert_eq!(again.reissue, switched.reissue, "progress is carried");
        assert!(again.waiting_for.starts_with("3 Certificates to re-issue"), "{}", again.waiting_for);
        again.reissue = Some(ReissueStatus { remaining: 0, requested: 0, blocked: Some("not allowed".into()) });
        assert_eq!(waiting_for(&again, &spec), "re-issuance, blocked: not allowed", "never 'done' while blocked");
    }
}
