//! Condition types and reasons, as cert-manager and `kubectl` users read them.

/// The condition Ferrum owns on requests and issuers.
pub(crate) const READY: &str = "Ready";
/// The approver's condition.
pub(crate) const APPROVED: &str = "Approved";
/// The approver's refusal.
pub(crate) const DENIED: &str = "Denied";

/// Request: the condition that keeps a failing request's retry clock in the request itself
/// (so that a restart or a new leader counts `--max-retry-duration` from the same first
/// failure). `lastTransitionTime` is the first failure; removed once the request settles.
pub(crate) const SIGNING_RETRY: &str = "ferrum.dev/SigningRetry";
/// Its reason.
pub(crate) const RETRYABLE_FAILURE: &str = "RetryableFailure";

/// Request: waiting (issuer missing or not ready, or a retryable failure).
pub(crate) const PENDING: &str = "Pending";
/// Request: refused for good.
pub(crate) const FAILED: &str = "Failed";
/// Request: issued.
pub(crate) const ISSUED: &str = "Issued";
/// Issuer: backend checked and usable.
pub(crate) const CHECKED: &str = "Checked";
/// Issuer: the spec itself is wrong (no backend, two backends...).
pub(crate) const INVALID_SPEC: &str = "InvalidSpec";
/// Issuer: the policy cannot be applied.
pub(crate) use crate::policy::INVALID_POLICY;
/// Event: certificate lifetime cut to the CA's expiry.
pub(crate) const DURATION_CLAMPED: &str = "DurationClamped";
/// Event: the CA expires soon.
pub(crate) const CA_EXPIRING: &str = "CAExpiringSoon";
/// Issuer: a change of CA would leave more roots to hand out than an issuer keeps.
pub(crate) const TOO_MANY_CA_GENERATIONS: &str = "TooManyCAGenerations";
/// Issuer: the CA certificate has expired (any backend that holds a CA certificate).
pub const CA_EXPIRED: &str = "CAExpired";
/// Issuer: the signing key disappeared or may no longer sign (any backend whose key lives
/// elsewhere, e.g. on a PKCS#11 token).
pub const KEY_UNAVAILABLE: &str = "KeyUnavailable";
