//! What follows a decision or a signing attempt, as values (pure): the request's status patch,
//! the issuer's, the event, when to look again, and the retry bookkeeping. The controller
//! computes a [`Settlement`] from (request, issuer, signing result, retry state, now) and then
//! applies it; the table tests below pin every arm with a fixed clock.

use std::time::{Duration, SystemTime};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::status::{DENIED_MESSAGE, ISSUED_MESSAGE, Outcome, issuer_status_patch, request_status_patch};
use crate::api::{CertificateRequest, Condition, IssuerKinds, WatchedIssuer};
use crate::backoff::{BASE_DELAY, RetryState, delay};
use crate::decision::IssuerKey;
use crate::reasons;
use crate::signer::{SignError, Signed, Warning};

/// One event to publish about the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EventNote {
    /// Warning rather than Normal.
    pub(crate) warning: bool,
    /// CamelCase reason.
    pub(crate) reason: String,
    /// The note.
    pub(crate) note: String,
}

/// What happens to the retry bookkeeping of the request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum RetryUpdate {
    /// Leave it as it is.
    Keep,
    /// Drop it (the request is settled).
    Forget,
    /// Do not try again before `wait` has passed (the signer asked for it); no failure.
    Wait {
        /// How long.
        wait: Duration,
    },
    /// Record another failure; do not try again before `wait` has passed.
    Failed {
        /// The new state.
        state: RetryState,
        /// The backoff.
        wait: Duration,
    },
}

/// Everything one reconcile decides, to be applied in this order: issuer patch, request patch,
/// then (if the request patch was written) bookkeeping and the event.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Settlement {
    /// The outcome written (its reason labels the metrics).
    pub(crate) outcome: Outcome,
    /// Apply body for the issuer's status (the signer reported it broken).
    pub(crate) issuer_patch: Option<Value>,
    /// Apply body for the request's status; `None` when its status already says this.
    pub(crate) request_patch: Option<Value>,
    /// The event, published only if the request patch was written.
    pub(crate) event: Option<EventNote>,
    /// Look again after this long; `None` waits for a change.
    pub(crate) requeue: Option<Duration>,
    /// Retry bookkeeping.
    pub(crate) retry: RetryUpdate,
    /// How the certificate written differs from what was asked (the reasons of its warnings),
    /// counted once the request patch is written.
    pub(crate) deviations: Vec<String>,
}

impl Settlement {
    /// Whether the outcome ends the request for good.
    pub(crate) fn terminal(&self) -> bool {
        !matches!(self.outcome, Outcome::Pending(_))
    }
}

/// The settlement of a plain outcome (denied, failed before signing, issued, waiting):
/// terminal outcomes get their event and forget the retry state (the retry condition goes);
/// waiting keeps the retry condition as it is.
pub(crate) fn settle_outcome(
    request: &CertificateRequest,
    outcome: Outcome,
    warnings: &[Warning],
    now: SystemTime,
) -> Settlement {
    let retry = match outcome {
        Outcome::Pending(_) => request.condition(reasons::SIGNING_RETRY).cloned(),
        _ => None,
    };
    settle_with_retry(request, outcome, warnings, retry, now)
}

fn settle_with_retry(
    request: &CertificateRequest,
    outcome: Outcome,
    warnings: &[Warning],
    retry_condition: Option<Condition>,
    now: SystemTime,
) -> Settlement {
    let request_patch = request_status_patch(request, &outcome, retry_condition, time(now));
    let event = request_patch.as_ref().and_then(|_| event_for(&outcome, warnings));
    let retry = if matches!(outcome, Outcome::Pending(_)) { RetryUpdate::Keep } else { RetryUpdate::Forget };
    let deviations = match (&outcome, &request_patch) {
        (Outcome::Issued { .. }, Some(_)) => warnings.iter().map(|w| w.reason.clone()).collect(),
        _ => Vec::new(),
    };
    Settlement { outcome, issuer_patch: None, request_patch, event, requeue: None, retry, deviations }
}

/// What the request and its issuer say after a signing attempt.
pub(crate) struct Attempt<'a, S: Clone> {
    /// The request.
    pub(crate) request: &'a CertificateRequest,
    /// The issuer it names, as read.
    pub(crate) issuer: &'a WatchedIssuer<S>,
    /// Which issuer that is.
    pub(crate) key: &'a IssuerKey,
    /// The kinds served.
    pub(crate) kinds: &'a IssuerKinds,
    /// The request's retry state before this attempt (this process's, else the one recorded
    /// in the request).
    pub(crate) retry: Option<RetryState>,
    /// `--max-retry-duration`.
    pub(crate) max_retry: Duration,
    /// In `[0, 1)`: spreads the backoff delay.
    pub(crate) jitter: f64,
    /// The clock.
    pub(crate) now: SystemTime,
}

/// The settlement of a signing attempt.
pub(crate) fn settle_signing<S: Clone>(attempt: &Attempt<'_, S>, result: Result<Signed, SignError>) -> Settlement {
    let (request, now) = (attempt.request, attempt.now);
    match result {
        Ok(signed) => {
            let outcome = Outcome::Issued { chain_pem: signed.chain_pem, ca_pem: signed.ca_pem };
            settle_outcome(request, outcome, &signed.warnings, now)
        }
        Err(SignError::Permanent(message)) => {
            settle_outcome(request, Outcome::Failed(format!("The issuer refused the request: {message}")), &[], now)
        }
        Err(SignError::Retryable(message)) => {
            let state = attempt.retry.unwrap_or(RetryState { first_failure: now, attempts: 0 });
            let elapsed = now.duration_since(state.first_failure).unwrap_or_default();
            if elapsed >= attempt.max_retry {
                let message = format!(
                    "Signing kept failing for {}s (limit {}s): {message}",
                    elapsed.as_secs(),
                    attempt.max_retry.as_secs()
                );
                return settle_outcome(request, Outcome::Failed(message), &[], now);
            }
            // Never sleep past the deadline: the request must turn Failed on time.
            let wait = delay(state.attempts, attempt.jitter).min((attempt.max_retry - elapsed).max(BASE_DELAY));
            let state = RetryState { attempts: state.attempts.saturating_add(1), ..state };
            let outcome = Outcome::Pending(format!("Signing failed, will retry: {message}"));
            let condition = state.condition(attempt.max_retry);
            Settlement {
                requeue: Some(wait),
                retry: RetryUpdate::Failed { state, wait },
                ..settle_with_retry(request, outcome, &[], Some(condition), now)
            }
        }
        Err(SignError::Pending { message, retry_after }) => {
            // Held off in the tracker too: the echo of the Pending write must not ask at once.
            Settlement {
                requeue: Some(retry_after),
                retry: RetryUpdate::Wait { wait: retry_after },
                ..settle_outcome(request, Outcome::Pending(message), &[], now)
            }
        }
        Err(SignError::IssuerBroken(error)) => {
            let broken = Err((error.reason.as_str(), error.message.as_str()));
            // The policy summary stays as the issuer's last check wrote it.
            let policy = attempt.issuer.status.as_ref().and_then(|s| s.policy.as_deref());
            let issuer_patch = issuer_status_patch(
                attempt.kinds,
                attempt.key.scope,
                attempt.issuer,
                broken,
                policy,
                Default::default(),
                time(now),
            );
            let kind = attempt.kinds.kind(attempt.key.scope);
            let message =
                format!("Referenced {kind} {} is not ready: {}: {}", attempt.key, error.reason, error.message);
            Settlement { issuer_patch, ..settle_outcome(request, Outcome::Pending(message), &[], now) }
        }
    }
}

/// The one event of a terminal outcome: `Issued` (contract row 9; a Warning when the signer had
/// something to say, every warning in the note with its reason), `Denied` or `Failed`. Waiting
/// has none.
fn event_for(outcome: &Outcome, warnings: &[Warning]) -> Option<EventNote> {
    let (warning, reason, note) = match outcome {
        Outcome::Issued { .. } if warnings.is_empty() => {
            (false, outcome.reason().to_owned(), ISSUED_MESSAGE.to_owned())
        }
        Outcome::Issued { .. } => {
            let notes: Vec<String> = warnings.iter().map(|w| format!("{}: {}", w.reason, w.message)).collect();
            (true, outcome.reason().to_owned(), format!("{ISSUED_MESSAGE}; {}", notes.join("; ")))
        }
        Outcome::Denied => (true, outcome.reason().to_owned(), DENIED_MESSAGE.to_owned()),
        Outcome::Failed(message) => (true, outcome.reason().to_owned(), message.clone()),
        Outcome::Pending(_) => return None,
    };
    Some(EventNote { warning, reason, note })
}

fn time(now: SystemTime) -> Time {
    let nanos = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
    Time(Timestamp::from_nanosecond(i128::try_from(nanos).unwrap_or(0)).unwrap_or(Timestamp::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::{CertificateRequestSpec, CertificateRequestStatus, Condition, IssuerScope, IssuerStatus, Parsed};
    use crate::signer::IssuerError;

    /// 2026-01-01T00:00:00Z.
    const NOW: Duration = Duration::from_secs(1_767_225_600);

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + NOW
    }

    fn kinds() -> IssuerKinds {
        IssuerKinds::new("ferrum.dev", "v1alpha1", "Ferrum")
    }

    fn key() -> IssuerKey {
        IssuerKey { scope: IssuerScope::Namespaced, namespace: Some("ns".into()), name: "ca".into() }
    }

    fn request(conditions: Vec<Condition>) -> CertificateRequest {
        let mut cr = CertificateRequest::new("cr", CertificateRequestSpec::default());
        cr.metadata.namespace = Some("ns".into());
        cr.metadata.resource_version = Some("7".into());
        cr.status = Some(CertificateRequestStatus { conditions, ..Default::default() });
        cr
    }

    fn approved() -> Condition {
        Condition { type_: "Approved".into(), status: "True".into(), ..Default::default() }
    }

    fn issuer() -> WatchedIssuer<()> {
        let mut issuer = WatchedIssuer::new("ca", &kinds().api_resource(IssuerScope::Namespaced), Parsed::Valid(()));
        issuer.metadata.namespace = Some("ns".into());
        issuer.metadata.generation = Some(3);
        issuer.metadata.resource_version = Some("5".into());
        let ready = Condition { type_: "Ready".into(), status: "True".into(), ..Default::default() };
        issuer.status = Some(IssuerStatus { conditions: vec![ready], ..Default::default() });
        issuer
    }

    /// The request patch for a Ready condition at NOW, with extra status fields.
    fn request_patch(status: &str, reason: &str, message: &str, extra: Value) -> Value {
        let mut status = json!({"conditions": [{
            "type": "Ready", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }]});
        status.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({
            "apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
            "metadata": {"name": "cr", "namespace": "ns", "resourceVersion": "7"},
            "status": status,
        })
    }

    /// What a retryable "HSM busy" settles to: Pending with the retry condition of `after`,
    /// tried again after `wait`.
    fn busy(after: RetryState, wait: Duration) -> Settlement {
        let message = "Signing failed, will retry: HSM busy";
        Settlement {
            outcome: Outcome::Pending(message.into()),
            issuer_patch: None,
            request_patch: Some(with_retry(request_patch("False", "Pending", message, json!({})), after)),
            event: None,
            requeue: Some(wait),
            retry: RetryUpdate::Failed { state: after, wait },
            deviations: vec![],
        }
    }

    /// `patch` with the retry condition of `state` after the Ready condition.
    fn with_retry(mut patch: Value, state: RetryState) -> Value {
        let condition = serde_json::to_value(state.condition(Duration::from_secs(600))).unwrap();
        patch["status"]["conditions"].as_array_mut().unwrap().push(condition);
        patch
    }

    fn event(warning: bool, reason: &str, note: &str) -> Option<EventNote> {
        Some(EventNote { warning, reason: reason.into(), note: note.into() })
    }

    /// cert-manager's ca_test.go style: named cases, a fixed clock, exact patches and events.
    #[test]
    fn every_signing_result() {
        let failing_since =
            |secs: u64, attempts: u32| RetryState { first_failure: now() - Duration::from_secs(secs), attempts };
        let failed_extra = json!({"failureTime": "2026-01-01T00:00:00Z"});
        struct Case {
            name: &'static str,
            retry: Option<RetryState>,
            result: Result<Signed, SignError>,
            want: Settlement,
        }
        let cases = vec![
            Case {
                name: "issued: one write with chain and root, a Normal Issued event, retry state dropped",
                retry: None,
                result: Ok(Signed::new("LEAF", "ROOT")),
                want: Settlement {
                    outcome: Outcome::Issued { chain_pem: "LEAF".into(), ca_pem: "ROOT".into() },
                    issuer_patch: None,
                    request_patch: Some(request_patch(
                        "True",
                        "Issued",
                        ISSUED_MESSAGE,
                        json!({"certificate": "TEVBRg==", "ca": "Uk9PVA=="}),
                    )),
                    event: event(false, "Issued", ISSUED_MESSAGE),
                    requeue: None,
                    retry: RetryUpdate::Forget,
                    deviations: vec![],
                },
            },
            Case {
                name: "issued with a warning: the one event is still Issued, a Warning carrying it",
                retry: Some(failing_since(5, 2)),
                result: Ok(Signed::new("LEAF", "ROOT").with_warning(Warning::new("DurationClamped", "cut to 3 days"))),
                want: Settlement {
                    outcome: Outcome::Issued { chain_pem: "LEAF".into(), ca_pem: "ROOT".into() },
                    issuer_patch: None,
                    request_patch: Some(request_patch(
                        "True",
                        "Issued",
                        ISSUED_MESSAGE,
                        json!({"certificate": "TEVBRg==", "ca": "Uk9PVA=="}),
                    )),
                    event: event(true, "Issued", &format!("{ISSUED_MESSAGE}; DurationClamped: cut to 3 days")),
                    requeue: None,
                    retry: RetryUpdate::Forget,
                    deviations: vec!["DurationClamped".into()],
                },
            },
            Case {
                name: "permanent: Failed with failureTime and a Warning event",
                retry: None,
                result: Err(SignError::Permanent("name not allowed".into())),
                want: Settlement {
                    outcome: Outcome::Failed("The issuer refused the request: name not allowed".into()),
                    issuer_patch: None,
                    request_patch: Some(request_patch(
                        "False",
                        "Failed",
                        "The issuer refused the request: name not allowed",
                        failed_extra.clone(),
                    )),
                    event: event(true, "Failed", "The issuer refused the request: name not allowed"),
                    requeue: None,
                    retry: RetryUpdate::Forget,
                    deviations: vec![],
                },
            },
            Case {
                name: "retryable, first failure: Pending, 1 s backoff (jitter 0.5), clock starts now",
                retry: None,
                result: Err(SignError::Retryable("HSM busy".into())),
                want: busy(RetryState { first_failure: now(), attempts: 1 }, Duration::from_secs(1)),
            },
            Case {
                name: "retryable, fourth failure: 8 s, counted from the first failure",
                retry: Some(failing_since(7, 3)),
                result: Err(SignError::Retryable("HSM busy".into())),
                want: busy(failing_since(7, 4), Duration::from_secs(8)),
            },
            Case {
                name: "retryable near the deadline: the wait is cut to the deadline",
                retry: Some(failing_since(597, 9)),
                result: Err(SignError::Retryable("HSM busy".into())),
                want: busy(failing_since(597, 10), Duration::from_secs(3)),
            },
            Case {
                name: "retryable past the limit since the FIRST failure: Failed",
                retry: Some(failing_since(600, 12)),
                result: Err(SignError::Retryable("HSM busy".into())),
                want: Settlement {
                    outcome: Outcome::Failed("Signing kept failing for 600s (limit 600s): HSM busy".into()),
                    issuer_patch: None,
                    request_patch: Some(request_patch(
                        "False",
                        "Failed",
                        "Signing kept failing for 600s (limit 600s): HSM busy",
                        failed_extra.clone(),
                    )),
                    event: event(true, "Failed", "Signing kept failing for 600s (limit 600s): HSM busy"),
                    requeue: None,
                    retry: RetryUpdate::Forget,
                    deviations: vec![],
                },
            },
            Case {
                name: "pending (a remote CA working on it): Pending, asked again when it said",
                retry: Some(failing_since(5, 1)),
                result: Err(SignError::Pending {
                    message: "order 42 queued".into(),
                    retry_after: Duration::from_secs(30),
                }),
                want: Settlement {
                    outcome: Outcome::Pending("order 42 queued".into()),
                    issuer_patch: None,
                    request_patch: Some(request_patch("False", "Pending", "order 42 queued", json!({}))),
                    event: None,
                    requeue: Some(Duration::from_secs(30)),
                    retry: RetryUpdate::Wait { wait: Duration::from_secs(30) },
                    deviations: vec![],
                },
            },
            Case {
                name: "issuer broken: the issuer Ready=False with the signer's reason, the request waits for it",
                retry: None,
                result: Err(SignError::IssuerBroken(IssuerError::new("KeyGone", "the key is gone"))),
                want: Settlement {
                    outcome: Outcome::Pending(
                        "Referenced FerrumIssuer ns/ca is not ready: KeyGone: the key is gone".into(),
                    ),
                    issuer_patch: Some(json!({
                        "apiVersion": "ferrum.dev/v1alpha1", "kind": "FerrumIssuer",
                        "metadata": {"name": "ca", "namespace": "ns", "resourceVersion": "5"},
                        "status": {"conditions": [{
                            "type": "Ready", "status": "False", "reason": "KeyGone", "message": "the key is gone",
                            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 3,
                        }]},
                    })),
                    request_patch: Some(request_patch(
                        "False",
                        "Pending",
                        "Referenced FerrumIssuer ns/ca is not ready: KeyGone: the key is gone",
                        json!({}),
                    )),
                    event: None,
                    requeue: None,
                    retry: RetryUpdate::Keep,
                    deviations: vec![],
                },
            },
        ];
        let (kinds, key, issuer, request) = (kinds(), key(), issuer(), request(vec![approved()]));
        for case in cases {
            let attempt = Attempt {
                request: &request,
                issuer: &issuer,
                key: &key,
                kinds: &kinds,
                retry: case.retry,
                max_retry: Duration::from_secs(600),
                jitter: 0.5,
                now: now(),
            };
            assert_eq!(settle_signing(&attempt, case.result), case.want, "{}", case.name);
        }
    }

    #[test]
    fn a_status_that_already_says_it_writes_nothing_and_publishes_nothing() {
        let pending = Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: Some("Pending".into()),
            message: Some("Signing failed, will retry: HSM busy".into()),
            ..Default::default()
        };
        let retrying = RetryState { first_failure: now(), attempts: 1 }.condition(Duration::from_secs(600));
        let request = request(vec![approved(), pending, retrying]);
        let (kinds, key, issuer) = (kinds(), key(), issuer());
        let attempt = Attempt {
            request: &request,
            issuer: &issuer,
            key: &key,
            kinds: &kinds,
            retry: None,
            max_retry: Duration::from_secs(600),
            jitter: 0.0,
            now: now(),
        };
        let settled = settle_signing(&attempt, Err(SignError::Retryable("HSM busy".into())));
        assert_eq!((settled.request_patch, settled.event), (None, None));
        assert_eq!(settled.requeue, Some(Duration::from_millis(800)), "the backoff still runs (jitter 0 = 0.8 s)");
    }

    #[test]
    fn plain_outcomes() {
        let request = request(vec![]);
        let denied = settle_outcome(&request, Outcome::Denied, &[], now());
        assert_eq!(
            denied.request_patch,
            Some(request_patch("False", "Denied", DENIED_MESSAGE, json!({"failureTime": "2026-01-01T00:00:00Z"})))
        );
        assert_eq!(denied.event, event(true, "Denied", DENIED_MESSAGE));
        assert!(denied.terminal() && denied.retry == RetryUpdate::Forget);
        // A request that was failing: waiting keeps its retry condition, settling removes it
        // (server-side apply drops what the manager owned and no longer sends).
        let retrying = RetryState { first_failure: now(), attempts: 3 }.condition(Duration::from_secs(600));
        let failing = self::request(vec![retrying.clone()]);
        let waiting = settle_outcome(&failing, Outcome::Pending("issuer not ready".into()), &[], now());
        let sent = &waiting.request_patch.unwrap()["status"]["conditions"];
        assert_eq!(sent[1], serde_json::to_value(&retrying).unwrap(), "kept as it was");
        let issued =
            settle_outcome(&failing, Outcome::Issued { chain_pem: "L".into(), ca_pem: "R".into() }, &[], now());
        let sent = issued.request_patch.unwrap()["status"]["conditions"].as_array().unwrap().clone();
        assert_eq!(sent.len(), 1, "only Ready: the retry condition goes");
        let waiting =
            settle_outcome(&request, Outcome::Pending("Referenced FerrumIssuer ns/ca not found".into()), &[], now());
        assert_eq!(waiting.event, None);
        assert!(!waiting.terminal() && waiting.retry == RetryUpdate::Keep && waiting.requeue.is_none());
    }
}
