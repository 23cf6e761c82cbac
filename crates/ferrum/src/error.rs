//! The library's error type for controller operations.

/// A reconcile could not finish (it is retried), or the controllers could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An API call failed.
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A kind the controllers need is not served; says how to install it.
    #[error("{0}")]
    NotInstalled(String),
    /// Leadership is not confirmed (the Lease could not be renewed in time): nothing is written.
    #[error("leadership is not confirmed; not writing")]
    NotLeader,
}

impl Error {
    /// Whether this is a 409 Conflict (a write based on a stale read).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(status)) if status.code == 409)
    }

    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "client",
            Error::NotInstalled(_) => "not_installed",
            Error::InvalidConfig(_) => "invalid_config",
            Error::NotLeader => "not_leader",
        }
    }
}
