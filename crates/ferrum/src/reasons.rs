//! Condition types and reasons, as cert-manager and `kubectl` users read them.

/// The condition Ferrum owns on requests and issuers.
pub const READY: &str = "Ready";
/// The approver's condition.
pub const APPROVED: &str = "Approved";
/// The approver's refusal.
pub const DENIED: &str = "Denied";

/// Request: waiting (issuer missing or not ready, or a retryable failure).
pub const PENDING: &str = "Pending";
/// Request: refused for good.
pub const FAILED: &str = "Failed";
/// Request: issued.
pub const ISSUED: &str = "Issued";
/// Issuer: backend checked and usable.
pub const CHECKED: &str = "Checked";
/// Issuer: the spec itself is wrong (no backend, two backends...).
pub const INVALID_SPEC: &str = "InvalidSpec";
/// Event: certificate lifetime cut to the CA's expiry.
pub const DURATION_CLAMPED: &str = "DurationClamped";
/// Event: the CA expires soon.
pub const CA_EXPIRING: &str = "CAExpiringSoon";
/// Issuer: the CA certificate has expired (any backend that holds a CA certificate).
pub const CA_EXPIRED: &str = "CAExpired";
