//! Per-request retry state for failures that may pass.
//!
//! kube's controller does not tell its error policy about successes, so the request
//! controller keeps this small table itself: per request UID, the first failure's time, the
//! attempt count and the earliest next attempt. What to do with a failure is decided by the
//! pure `controller::settle`; this module only stores the state and computes delays:
//! 1 s doubling to 5 min, jittered by ±20 %.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Shortest delay.
pub(crate) const BASE_DELAY: Duration = Duration::from_secs(1);
/// Longest delay.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(300);

/// One request's failures so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryState {
    /// When the first of them happened.
    pub(crate) first_failure: SystemTime,
    /// How many there were.
    pub(crate) attempts: u32,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    state: RetryState,
    next_attempt: SystemTime,
}

/// Failure state per request UID.
#[derive(Debug, Default)]
pub(crate) struct RetryTracker {
    entries: Mutex<HashMap<String, Entry>>,
}

impl RetryTracker {
    /// The state of a request, if it is failing.
    pub(crate) fn state(&self, uid: &str) -> Option<RetryState> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(uid).map(|e| e.state)
    }

    /// Records a request's new state; it is not tried again before `next_attempt`.
    pub(crate) fn record(&self, uid: &str, state: RetryState, next_attempt: SystemTime) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.to_owned(), Entry { state, next_attempt });
    }

    /// How long until this request may be tried again, if it is backing off. A reconcile
    /// triggered early (for instance by our own Pending write) must wait this out.
    pub(crate) fn backoff_remaining(&self, uid: &str, now: SystemTime) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(uid).and_then(|e| e.next_attempt.duration_since(now).ok()).filter(|d| !d.is_zero())
    }

    /// Forgets a request (it succeeded, failed for good, or went away).
    pub(crate) fn forget(&self, uid: &str) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }

    /// How many requests are waiting to retry.
    pub(crate) fn waiting(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The delay before attempt `attempt + 1`: `1 s · 2^attempt`, capped at 5 min, times a
/// factor in `[0.8, 1.2)` from `jitter` in `[0, 1)`, and never above 5 min.
pub(crate) fn delay(attempt: u32, jitter: f64) -> Duration {
    let base = BASE_DELAY.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX)).min(MAX_DELAY);
    base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0)).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    #[test]
    fn delay_doubles_and_caps() {
        assert_eq!(delay(0, 0.5), Duration::from_secs(1));
        assert_eq!(delay(1, 0.5), Duration::from_secs(2));
        assert_eq!(delay(5, 0.5), Duration::from_secs(32));
        assert_eq!(delay(9, 0.5), MAX_DELAY);
        assert_eq!(delay(40, 0.5), MAX_DELAY);
        assert_eq!(delay(40, 1.0), MAX_DELAY, "jitter never exceeds the cap");
        assert!(delay(3, 0.0) < delay(3, 0.99));
    }

    #[test]
    fn state_is_kept_per_request_until_forgotten() {
        let t = RetryTracker::default();
        let a = RetryState { first_failure: T0, attempts: 2 };
        t.record("a", a, T0 + Duration::from_secs(3));
        assert_eq!(t.state("a"), Some(a));
        assert_eq!(t.state("b"), None, "a second request's clock is its own");
        assert_eq!(t.backoff_remaining("a", T0 + Duration::from_secs(2)), Some(Duration::from_secs(1)));
        assert_eq!(t.backoff_remaining("a", T0 + Duration::from_secs(3)), None);
        assert_eq!(t.waiting(), 1);
        t.forget("a");
        assert_eq!((t.state("a"), t.waiting()), (None, 0));
    }
}
