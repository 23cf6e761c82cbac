//! Per-request retry state for failures that may pass.
//!
//! The first failure's time lives in the request itself (the `ferrum.dev/SigningRetry`
//! condition, see [`RetryState::condition`]), so that a restart or a new leader keeps counting
//! `--max-retry-duration` from it. This process also keeps, per request UID, the attempt count
//! and the earliest next attempt on the monotonic clock (a wall-clock jump neither skips nor
//! stretches a backoff). What to do with a failure is decided by the pure `controller::settle`;
//! this module stores the state and computes delays: 1 s doubling to 5 min, jittered by ±20 %.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{CertificateRequest, Condition};
use crate::reasons::{RETRYABLE_FAILURE, SIGNING_RETRY};

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

impl RetryState {
    /// The state recorded in `request`'s retry condition, if any. The attempt count is not
    /// recorded there; it is taken as the number of doubling delays that fit in the time since
    /// the first failure (what an uninterrupted backoff would have made). A first failure in
    /// the future counts as now.
    pub(crate) fn recorded(request: &CertificateRequest, now: SystemTime) -> Option<Self> {
        let condition = request.condition(SIGNING_RETRY).filter(|c| c.status == "True")?;
        let at = condition.last_transition_time.as_ref()?.0;
        let since_epoch = Duration::try_from(at.duration_since(Timestamp::UNIX_EPOCH)).ok()?;
        let first_failure = (SystemTime::UNIX_EPOCH + since_epoch).min(now);
        let elapsed = now.duration_since(first_failure).unwrap_or_default().as_secs();
        Some(Self { first_failure, attempts: (elapsed + 1).ilog2().max(1) })
    }

    /// The condition that records this state in the request.
    pub(crate) fn condition(&self, max_retry: Duration) -> Condition {
        let first = to_time(self.first_failure);
        let gives_up = to_time(self.first_failure + max_retry);
        let plural = if self.attempts == 1 { "" } else { "s" };
        Condition {
            type_: SIGNING_RETRY.to_owned(),
            status: "True".to_owned(),
            reason: Some(RETRYABLE_FAILURE.to_owned()),
            message: Some(format!(
                "{} signing attempt{plural} failed since {}; the request fails if signing still fails at {}",
                self.attempts, first.0, gives_up.0
            )),
            last_transition_time: Some(first),
            observed_generation: None,
        }
    }
}

/// A wall-clock time as the API writes it (whole seconds).
/// Reads an RFC 3339 time (what [`to_time`] writes); `None` if it does not read.
pub(crate) fn parse_time(text: &str) -> Option<SystemTime> {
    let at: Timestamp = text.parse().ok()?;
    Some(SystemTime::from(at))
}

pub(crate) fn to_time(at: SystemTime) -> Time {
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    Time(Timestamp::from_second(i64::try_from(secs).unwrap_or(0)).unwrap_or(Timestamp::UNIX_EPOCH))
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// `None`: not failing, only asked to wait (a signer's `Pending`).
    state: Option<RetryState>,
    next_attempt: Instant,
}

/// Failure state per request UID.
#[derive(Debug, Default)]
pub(crate) struct RetryTracker {
    entries: Mutex<HashMap<String, Entry>>,
}

impl RetryTracker {
    /// The state of a request, if it is failing.
    pub(crate) fn state(&self, uid: &str) -> Option<RetryState> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(uid).and_then(|e| e.state)
    }

    /// Records a request's new state; it is not tried again before `wait` has passed (on the
    /// monotonic clock).
    pub(crate) fn record(&self, uid: &str, state: RetryState, wait: Duration) {
        let entry = Entry { state: Some(state), next_attempt: Instant::now() + wait };
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.to_owned(), entry);
    }

    /// The request is not to be tried again before `wait` has passed; its failure state (if
    /// any) stays as it is.
    pub(crate) fn hold_off(&self, uid: &str, wait: Duration) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let state = entries.get(uid).and_then(|e| e.state);
        entries.insert(uid.to_owned(), Entry { state, next_attempt: Instant::now() + wait });
    }

    /// How long until this request may be tried again, if it is backing off. A reconcile
    /// triggered early (for instance by our own Pending write) must wait this out.
    pub(crate) fn backoff_remaining(&self, uid: &str, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(uid).map(|e| e.next_attempt.saturating_duration_since(now)).filter(|d| !d.is_zero())
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

    fn request_with(condition: Option<Condition>) -> CertificateRequest {
        let mut cr = CertificateRequest::new("r", Default::default());
        cr.status = Some(crate::api::CertificateRequestStatus {
            conditions: condition.into_iter().collect(),
            ..Default::default()
        });
        cr
    }

    #[test]
    fn the_first_failure_survives_in_the_request() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let state = RetryState { first_failure: t0, attempts: 4 };
        let condition = state.condition(Duration::from_secs(600));
        assert_eq!(condition.type_, "ferrum.dev/SigningRetry");
        assert_eq!(
            condition.message.as_deref(),
            Some(
                "4 signing attempts failed since 2026-01-01T00:00:00Z; the request fails if signing still fails at \
                 2026-01-01T00:10:00Z"
            )
        );
        let request = request_with(Some(condition));
        // Read back 7 s later (a restart): same first failure, attempts as an unbroken backoff.
        let read = RetryState::recorded(&request, t0 + Duration::from_secs(7)).unwrap();
        assert_eq!(read, RetryState { first_failure: t0, attempts: 3 });
        let read = RetryState::recorded(&request, t0 + Duration::from_secs(600)).unwrap();
        assert_eq!(read.attempts, 9);
        // A first failure in the future counts as now.
        let read = RetryState::recorded(&request, t0 - Duration::from_secs(60)).unwrap();
        assert_eq!(read, RetryState { first_failure: t0 - Duration::from_secs(60), attempts: 1 });
        assert_eq!(RetryState::recorded(&request_with(None), t0), None);
        let mut not_true = state.condition(Duration::from_secs(600));
        not_true.status = "False".into();
        assert_eq!(RetryState::recorded(&request_with(Some(not_true)), t0), None);
    }

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
        let now = Instant::now();
        t.record("a", a, Duration::from_secs(3));
        assert_eq!(t.state("a"), Some(a));
        assert_eq!(t.state("b"), None, "a second request's clock is its own");
        let left = t.backoff_remaining("a", now + Duration::from_secs(2)).unwrap();
        assert!(left >= Duration::from_secs(1) && left < Duration::from_millis(1100), "{left:?}");
        assert_eq!(t.backoff_remaining("a", now + Duration::from_secs(4)), None);
        assert_eq!(t.waiting(), 1);
        t.hold_off("a", Duration::from_secs(30));
        assert_eq!(t.state("a"), Some(a), "waiting keeps the failure state");
        assert!(t.backoff_remaining("a", Instant::now()).unwrap() > Duration::from_secs(29));
        t.hold_off("b", Duration::from_secs(30));
        assert_eq!(t.state("b"), None, "a wait is not a failure");
        assert_eq!(t.waiting(), 2);
        t.forget("b");
        t.forget("a");
        assert_eq!((t.state("a"), t.waiting()), (None, 0));
    }
}
