//! Ferrum's first backend: a CA whose certificate and key live in a Secret.

pub(crate) mod backend;
mod spec;

pub use backend::CaSigner;
pub use spec::{CaIssuerSpec, FerrumIssuerSpec, IssuerPolicy, NextCaSpec, kinds};

/// Issuer reasons of the `ca` backend.
pub mod reasons {
    /// The Secret does not exist.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// The Secret could not be read (permissions, network).
    pub const SECRET_UNREADABLE: &str = "SecretUnreadable";
    /// The Secret's contents are not a usable certificate and key.
    pub const INVALID_SECRET: &str = "InvalidSecret";
    /// The certificate is not a CA.
    pub const NOT_A_CA: &str = "NotACA";
    /// The CA's chain does not validate (does not link, `ca.crt` is not its root, a CA of it
    /// expired or may not sign).
    pub const INVALID_CHAIN: &str = "InvalidChain";
    /// The key does not belong to the certificate.
    pub const KEY_MISMATCH: &str = "KeyMismatch";
    pub use crate::reasons::CA_EXPIRED;
    /// The CA certificate is not valid yet.
    pub const CA_NOT_YET_VALID: &str = "CANotYetValid";
    /// The next CA of a staged rotation is not usable (its Secret's reason and message follow).
    pub const NEXT_CA_INVALID: &str = "NextCAInvalid";
}
