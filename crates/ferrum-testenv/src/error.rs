//! The one error type of this crate.

use std::time::Duration;

/// Everything that can go wrong while starting, using or stopping the control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A binary or the CRD file of the control plane is not there. The message names the build
    /// command (`tools/controlplane/build.sh`): a missing binary is a failure, never a skip.
    #[error("{0}")]
    MissingBinaries(String),

    /// A file or process operation failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A request to kube-apiserver failed.
    #[error("{context}")]
    Kube {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: kube::Error,
    },

    /// Something did not become ready in time.
    #[error("timed out after {after:?} waiting for {what} (last seen: {last})")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        after: Duration,
        /// The last error or state observed while waiting.
        last: String,
    },

    /// A process exited while we waited for it to become ready.
    #[error("{name} exited ({status}) before it was ready; last lines of its log:\n{tail}")]
    Exited {
        /// The process name given to the supervisor.
        name: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The tail of its log.
        tail: String,
    },

    /// Input we read (versions file, YAML, kubeconfig, state dir) was not what we expect.
    #[error("{0}")]
    Invalid(String),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    /// Wraps a kube error with what was being done.
    pub(crate) fn kube(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let context = context.into();
        move |source| Error::Kube { context, source }
    }
}
