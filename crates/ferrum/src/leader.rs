//! Leader election on a `coordination.k8s.io/v1` Lease, fenced by resourceVersion.
//!
//! - Every write carries the resourceVersion it read: a 409 means another replica wrote first,
//!   and this one has not won.
//! - Expiry is judged by when *this* replica last saw the lease record change, on its own
//!   monotonic clock, never by comparing the holder's timestamps with our wall clock.
//! - The holder renews every retry period; if it cannot renew within the renew deadline, or
//!   sees another holder, leadership is lost and the caller must stop (exit the process).
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

/// Runs for and holds a Lease.
pub(crate) struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    observed: Mutex<Option<Observed>>,
}

impl LeaderElector {
    /// An elector for `settings`.
    pub(crate) fn new(client: Client, settings: LeaseSettings) -> Self {
        Self { api: Api::namespaced(client, &settings.namespace), settings, observed: Mutex::new(None) }
    }

    /// Waits until this replica holds the lease.
    pub(crate) async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
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

    /// Renews the lease until leadership is lost; returns why.
    pub(crate) async fn hold(&self) -> Lost {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.settings.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewal = Instant::now(),
                Ok(false) => {
                    let holder = self.holder().unwrap_or_default();
                    return Lost::TakenOver(holder);
                }
                Err(error) => warn!(%error, "could not renew the lease"),
            }
            if last_renewal.elapsed() > self.settings.renew_deadline {
                return Lost::RenewFailed;
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

/// Whether `me` may write the lease: it is ours, free, or unchanged for longer than its
/// duration as measured from when we first saw it in this form.
fn may_take(current: &LeaseSpec, me: &str, seen_at: Instant, default_duration: Duration, now: Instant) -> bool {
    match current.holder_identity.as_deref() {
        None | Some("") => true,
        Some(holder) if holder == me => true,
        Some(_) => {
            let duration = current
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs)
                .unwrap_or(default_duration);
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
    fn another_holder_expires_by_our_clock() {
        let seen = Instant::now();
        let d = Duration::from_secs(15);
        let lease = held_by(Some("b"), 15);
        assert!(!may_take(&lease, "a", seen, d, seen + Duration::from_secs(14)));
        assert!(may_take(&lease, "a", seen, d, seen + Duration::from_secs(16)));
        // A released lease (duration 1 s) expires quickly.
        assert!(may_take(&held_by(Some("b"), 1), "a", seen, d, seen + Duration::from_millis(1100)));
    }
}
