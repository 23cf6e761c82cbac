//! Leader election on a `coordination.k8s.io/v1` Lease, fenced by resourceVersion.
//!
//! - Every write carries the resourceVersion it read: a 409 means another replica wrote first,
//!   and this one has not won.
//! - Expiry is judged by when *this* replica last saw the lease record change, on its own
//!   monotonic clock, never by comparing the holder's timestamps with our wall clock.
//! - The holder renews every retry period; if it cannot renew within the renew deadline, or
//!   sees another holder, leadership is lost and the caller must stop (exit the process).
//! - Every attempt is bounded: the Lease client has timeouts and no retries of its own, and a
//!   renewal is cut off when the renew deadline (counted from when the last successful renewal
//!   was *sent*) runs out.
//! - The [`LeaderFence`] tells the controllers whether leadership is still confirmed: it lapses
//!   at the renew deadline, on this replica's monotonic clock, so a leader that was stalled
//!   (SIGSTOP, a long GC pause, a partition) stops writing when it wakes, before the watchdog
//!   in [`LeaderElector::hold`] has even run. Another replica cannot take over before the
//!   lease duration has passed, which the timings keep longer than the renew deadline.
//! - On graceful shutdown the lease is released (holder cleared, duration 1 s) so that another
//!   replica takes over at once.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tracing::{debug, info, warn};

/// How to run for leader.
#[derive(Clone, Debug)]
pub(crate) struct LeaseSettings {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (e.g. the pod name).
    pub identity: String,
    /// How long a lease lives without renewal.
    pub lease_duration: Duration,
    /// How long the holder keeps trying to renew before giving up leadership.
    pub renew_deadline: Duration,
    /// Time between attempts.
    pub retry_period: Duration,
}

/// Why leadership ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lost {
    /// Another replica holds the lease.
    TakenOver(String),
    /// No successful renewal within the renew deadline.
    RenewFailed,
}

/// The record last seen, and when.
#[derive(Clone, Debug)]
struct Observed {
    spec: LeaseSpec,
    seen_at: Instant,
}

/// Whether this replica may write as the leader: until the renew deadline after the last
/// successful renewal was sent.
#[derive(Debug, Default)]
pub(crate) struct LeaderFence {
    valid_until: Mutex<Option<Instant>>,
}

impl LeaderFence {
    /// Whether leadership is confirmed now.
    pub(crate) fn holds(&self) -> bool {
        self.valid_until.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|until| Instant::now() < until)
    }

    fn confirm(&self, until: Instant) {
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(until);
    }

    fn revoke(&self) {
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Runs for and holds a Lease.
pub(crate) struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    observed: Mutex<Option<Observed>>,
    fence: std::sync::Arc<LeaderFence>,
}

impl LeaderElector {
    /// An elector for `settings`. `client` should be [`lease_client`]'s: bounded, no retries.
    pub(crate) fn new(client: Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: Mutex::new(None),
            fence: Default::default(),
        }
    }

    /// The fence the controllers check before each write.
    pub(crate) fn fence(&self) -> std::sync::Arc<LeaderFence> {
        self.fence.clone()
    }

    /// One attempt, cut off at `deadline`; on success the fence holds until the renew deadline
    /// counted from when the attempt was sent.
    async fn attempt(&self, deadline: Duration) -> Result<bool, AttemptError> {
        let sent = Instant::now();
        match tokio::time::timeout(deadline, self.try_acquire_or_renew()).await {
            Ok(Ok(true)) => {
                self.fence.confirm(sent + self.settings.renew_deadline);
                Ok(true)
            }
            Ok(Ok(false)) => Ok(false),
            Ok(Err(error)) => Err(AttemptError::Api(error)),
            Err(_) => Err(AttemptError::TimedOut(deadline)),
        }
    }

    /// Waits until this replica holds the lease.
    pub(crate) async fn acquire(&self) {
        loop {
            match self.attempt(self.settings.renew_deadline).await {
                Ok(true) => {
                    info!(lease = %self.settings.name, identity = %self.settings.identity, "acquired leadership");
                    return;
                }
                Ok(false) => debug!("lease held by another replica"),
                Err(error) => warn!(%error, "could not read or write the lease"),
            }
            tokio::time::sleep(jittered(self.settings.retry_period)).await;
        }
    }

    /// Renews the lease until leadership is lost; returns why. Call after [`Self::acquire`].
    /// The fence is revoked before this returns.
    pub(crate) async fn hold(&self) -> Lost {
        let lost = self.renew_until_lost().await;
        self.fence.revoke();
        lost
    }

    async fn renew_until_lost(&self) -> Lost {
        // Counted from when the last successful renewal was sent (acquire confirmed the fence
        // just before this), so that no renewal outlives the renew deadline.
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.settings.retry_period).await;
            let Some(left) = self.settings.renew_deadline.checked_sub(last_renewal.elapsed()).filter(|d| !d.is_zero())
            else {
                return Lost::RenewFailed;
            };
            let sent = Instant::now();
            match self.attempt(left).await {
                Ok(true) => last_renewal = sent,
                Ok(false) => {
                    let holder = self.holder().unwrap_or_default();
                    return Lost::TakenOver(holder);
                }
                Err(error) => warn!(%error, "could not renew the lease"),
            }
        }
    }

    /// Gives the lease up, if this replica still holds it.
    pub(crate) async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.settings.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self.api.replace(&self.settings.name, &PostParams::default(), &lease).await {
            Ok(_) => info!(lease = %self.settings.name, "released leadership"),
            Err(error) => warn!(%error, "could not release the lease"),
        }
    }

    fn holder(&self) -> Option<String> {
        let observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        observed.as_ref().and_then(|o| o.spec.holder_identity.clone())
    }

    /// One attempt: `Ok(true)` if this replica holds the lease afterwards.
    async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let me = self.settings.identity.as_str();
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            let mut lease = Lease::default();
            lease.metadata.name = Some(self.settings.name.clone());
            lease.metadata.namespace = Some(self.settings.namespace.clone());
            lease.spec = Some(self.record(None, now));
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => Ok(self.remember(created)),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let current = lease.spec.clone().unwrap_or_default();
        let seen_at = self.observe(&current);
        if !may_take(&current, me, seen_at, self.settings.lease_duration, Instant::now()) {
            return Ok(false);
        }
        lease.spec = Some(self.record(Some(&current), now));
        // `replace` sends the resourceVersion we read: a concurrent writer makes this a 409.
        match self.api.replace(&self.settings.name, &PostParams::default(), &lease).await {
            Ok(written) => Ok(self.remember(written)),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The record this replica writes when it takes or renews the lease.
    fn record(&self, current: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
        let me = &self.settings.identity;
        let ours = current.and_then(|c| c.holder_identity.as_ref()) == Some(me);
        let transitions = current.and_then(|c| c.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(me.clone()),
            lease_duration_seconds: Some(self.settings.lease_duration.as_secs().max(1) as i32),
            acquire_time: if ours { current.and_then(|c| c.acquire_time.clone()) } else { Some(MicroTime(now)) },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if ours || current.is_none() { transitions } else { transitions + 1 }),
            ..Default::default()
        }
    }

    /// Notes the record; returns when it was first seen in this form.
    fn observe(&self, spec: &LeaseSpec) -> Instant {
        let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        match observed.as_ref() {
            Some(o) if &o.spec == spec => o.seen_at,
            _ => {
                let seen_at = Instant::now();
                *observed = Some(Observed { spec: spec.clone(), seen_at });
                seen_at
            }
        }
    }

    fn remember(&self, lease: Lease) -> bool {
        let spec = lease.spec.unwrap_or_default();
        let held = spec.holder_identity.as_deref() == Some(self.settings.identity.as_str());
        *self.observed.lock().unwrap_or_else(|e| e.into_inner()) = Some(Observed { spec, seen_at: Instant::now() });
        held
    }
}

/// Why one attempt on the Lease did not answer.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("{0}")]
    Api(kube::Error),
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
}

/// A client for the Lease alone: every request bounded by half the renew deadline (at least
/// 1 s), as client-go's leader election does, and no retries of its own (an elector that retries
/// inside a call cannot keep its deadline).
pub(crate) fn lease_client(mut config: kube::Config, renew_deadline: Duration) -> Result<Client, kube::Error> {
    let timeout = (renew_deadline / 2).max(Duration::from_secs(1));
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    config.default_retry = false;
    Client::try_from(config)
}

/// Whether `me` may write the lease: it is ours, free, or unchanged for longer than its
/// duration as measured from when we first saw it in this form. The record's duration counts
/// up to our own: every replica runs with the same timings, so a longer one was not written by
/// a replica (a Lease edited by hand to a holder that does not exist for a day must not stop
/// issuance for a day).
fn may_take(current: &LeaseSpec, me: &str, seen_at: Instant, default_duration: Duration, now: Instant) -> bool {
    match current.holder_identity.as_deref() {
        None | Some("") => true,
        Some(holder) if holder == me => true,
        Some(_) => {
            let duration = current
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs)
                .map_or(default_duration, |d| d.min(default_duration));
            now.duration_since(seen_at) > duration
        }
    }
}

fn jittered(period: Duration) -> Duration {
    period.mul_f64(1.0 + 0.2 * rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: Option<&str>, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(Into::into),
            lease_duration_seconds: Some(seconds),
            ..Default::default()
        }
    }

    #[test]
    fn free_or_own_lease_may_be_taken() {
        let now = Instant::now();
        let d = Duration::from_secs(15);
        assert!(may_take(&held_by(None, 15), "a", now, d, now));
        assert!(may_take(&held_by(Some(""), 15), "a", now, d, now));
        assert!(may_take(&held_by(Some("a"), 15), "a", now, d, now));
    }

    #[test]
    fn the_fence_holds_until_its_deadline_and_not_after_revoke() {
        let fence = LeaderFence::default();
        assert!(!fence.holds(), "never confirmed");
        fence.confirm(Instant::now() + Duration::from_secs(60));
        assert!(fence.holds());
        fence.confirm(Instant::now());
        assert!(!fence.holds(), "the deadline has passed");
        fence.confirm(Instant::now() + Duration::from_secs(60));
        fence.revoke();
        assert!(!fence.holds());
    }

    /// A local HTTP server that reads each request and then does `answer` with the socket;
    /// returns its URL and the number of requests it has read.
    async fn server(answer: Option<&'static [u8]>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {
                                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                match answer {
                                    Some(bytes) => socket.write_all(bytes).await.unwrap(),
                                    // Never answer; keep the socket open.
                                    None => tokio::time::sleep(Duration::from_secs(3600)).await,
                                }
                            }
                        }
                    }
                });
            }
        });
        (url, count)
    }

    fn lease_api(url: &str, renew_deadline: Duration) -> Api<Lease> {
        let config = kube::Config::new(url.parse().unwrap());
        Api::namespaced(lease_client(config, renew_deadline).unwrap(), "ns")
    }

    #[tokio::test]
    async fn a_silent_apiserver_does_not_hold_a_lease_call_past_its_timeout() {
        let (url, _) = server(None).await;
        let started = Instant::now();
        let result = lease_api(&url, Duration::from_secs(2)).get_opt("lease").await;
        let took = started.elapsed();
        assert!(result.is_err(), "no answer is an error");
        // Half the renew deadline, floored at 1 s: 1 s, with room for a slow machine.
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "took {took:?}");
    }

    #[tokio::test]
    async fn a_lease_call_is_not_retried_behind_the_electors_back() {
        let (url, count) =
            server(Some(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")).await;
        let result = lease_api(&url, Duration::from_secs(10)).get_opt("lease").await;
        assert!(result.is_err());
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1, "one attempt, one request");
    }

    #[test]
    fn another_holder_expires_by_our_clock() {
        let seen = Instant::now();
        let d = Duration::from_secs(15);
        let lease = held_by(Some("b"), 15);
        assert!(!may_take(&lease, "a", seen, d, seen + Duration::from_secs(14)));
        assert!(may_take(&lease, "a", seen, d, seen + Duration::from_secs(16)));
        // A record claiming a day counts as our 15 s.
        assert!(may_take(&held_by(Some("ghost"), 86_400), "a", seen, d, seen + Duration::from_secs(16)));
        // A released lease (duration 1 s) expires quickly.
        assert!(may_take(&held_by(Some("b"), 1), "a", seen, d, seen + Duration::from_millis(1100)));
    }
}
