//! Per-request retry state for failures that may pass.
//!
//! kube's controller does not tell its error policy about successes, so the request
//! controller keeps this small table itself: the first failure's time and the attempt count.
//! Delay: 1 s doubling to 5 min, jittered by ±20 %. Give up once the first failure is older
//! than the maximum retry duration.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Shortest delay.
pub(crate) const BASE_DELAY: Duration = Duration::from_secs(1);
/// Longest delay.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(300);

/// What to do after a retryable failure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Retry {
    /// Try again after this delay.
    After(Duration),
    /// Stop: the first failure was this long ago, over the limit.
    GiveUp(Duration),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    first_failure: SystemTime,
    attempts: u32,
    next_attempt: SystemTime,
}

/// Failure state per request UID.
#[derive(Debug)]
pub(crate) struct RetryTracker {
    max_retry: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl RetryTracker {
    /// A tracker that gives up `max_retry` after a request's first failure.
    pub(crate) fn new(max_retry: Duration) -> Self {
        Self { max_retry, entries: Mutex::new(HashMap::new()) }
    }

    /// Records a failure at `now`; `jitter` in `[0, 1)` spreads the delay.
    pub(crate) fn failed(&self, uid: &str, now: SystemTime, jitter: f64) -> Retry {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry =
            entries.entry(uid.to_owned()).or_insert(Entry { first_failure: now, attempts: 0, next_attempt: now });
        let elapsed = now.duration_since(entry.first_failure).unwrap_or_default();
        if elapsed >= self.max_retry {
            entries.remove(uid);
            return Retry::GiveUp(elapsed);
        }
        let delay = delay(entry.attempts, jitter);
        entry.attempts = entry.attempts.saturating_add(1);
        let remaining = self.max_retry - elapsed;
        // Never sleep past the deadline: the request must turn Failed on time.
        let delay = delay.min(remaining.max(BASE_DELAY));
        entry.next_attempt = now + delay;
        Retry::After(delay)
    }

    /// How long until this request may be tried again, if it is backing off. A reconcile
    /// triggered early (for instance by our own Pending write) must wait this out.
    pub(crate) fn backoff_remaining(&self, uid: &str, now: SystemTime) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(uid).and_then(|e| e.next_attempt.duration_since(now).ok()).filter(|d| !d.is_zero())
    }

    /// When this request first failed, if it is failing.

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
impl RetryTracker {
    fn first_failure(&self, uid: &str) -> Option<SystemTime> {
        let entries = self.entries.lock().unwrap();
        entries.get(uid).map(|e| e.first_failure)
    }
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
    fn gives_up_after_max_counted_from_first_failure() {
        let t = RetryTracker::new(Duration::from_secs(600));
        assert_eq!(t.failed("a", T0, 0.5), Retry::After(Duration::from_secs(1)));
        assert_eq!(t.failed("a", T0 + Duration::from_secs(1), 0.5), Retry::After(Duration::from_secs(2)));
        assert_eq!(t.first_failure("a"), Some(T0));
        // A second request's clock is its own.
        assert_eq!(t.failed("b", T0 + Duration::from_secs(599), 0.5), Retry::After(Duration::from_secs(1)));
        assert_eq!(t.failed("a", T0 + Duration::from_secs(600), 0.5), Retry::GiveUp(Duration::from_secs(600)));
        assert_eq!(t.first_failure("a"), None);
        assert_eq!(t.waiting(), 1);
    }

    #[test]
    fn backoff_remaining_counts_down() {
        let t = RetryTracker::new(Duration::from_secs(600));
        assert_eq!(t.backoff_remaining("a", T0), None);
        t.failed("a", T0, 0.5);
        t.failed("a", T0 + Duration::from_secs(1), 0.5); // next attempt at T0 + 3 s
        assert_eq!(t.backoff_remaining("a", T0 + Duration::from_secs(2)), Some(Duration::from_secs(1)));
        assert_eq!(t.backoff_remaining("a", T0 + Duration::from_secs(3)), None);
    }

    #[test]
    fn delay_never_passes_deadline() {
        let t = RetryTracker::new(Duration::from_secs(10));
        for _ in 0..4 {
            t.failed("a", T0, 0.5);
        }
        assert_eq!(t.failed("a", T0 + Duration::from_secs(9), 0.5), Retry::After(Duration::from_secs(1)));
    }

    #[test]
    fn forget_resets_the_clock() {
        let t = RetryTracker::new(Duration::from_secs(600));
        t.failed("a", T0, 0.5);
        t.forget("a");
        assert_eq!(t.failed("a", T0 + Duration::from_secs(900), 0.5), Retry::After(Duration::from_secs(1)));
    }
}
