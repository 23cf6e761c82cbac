//! Ferrum's second backend: a CA whose private key never leaves a PKCS#11 token (an HSM, a
//! cloud HSM's PKCS#11 library, SoftHSM2).
//!
//! The CA certificate and its chain come from a Secret, the user PIN from another; the key is
//! found on the token by label and/or ID and never read, wrapped or exported: Ferrum hashes
//! what it signs and asks the token for the signature ([`spec::Pkcs11IssuerSpec`]). Each module
//! is loaded once per process, each token gets a bounded pool of logged-in sessions, and the
//! issuer's health names what is wrong: the module, the token, the PIN, the key, the key's
//! type, a key that is not the certificate's, the CA's dates.

mod backend;
mod mechanism;
mod metrics;
mod spec;
mod token;

pub use backend::{Pkcs11Settings, Pkcs11Signer};
pub use spec::{PinSecretRef, Pkcs11IssuerSpec, RsaSignatureScheme};

/// Issuer reasons of the `pkcs11` backend (with the `ca` backend's for the CA certificate:
/// `SecretNotFound`, `InvalidSecret`, `NotACA`, `KeyMismatch`, `CAExpired`, ...).
pub mod reasons {
    /// The issuer names a module the controller may not load (`--pkcs11-module`,
    /// `--pkcs11-allowed-modules`), or names none and there is no default.
    pub const MODULE_NOT_ALLOWED: &str = "Pkcs11ModuleNotAllowed";
    /// The module file is missing, or did not load or initialise.
    pub const MODULE_NOT_LOADABLE: &str = "Pkcs11ModuleNotLoadable";
    /// No token with that label or in that slot.
    pub const TOKEN_NOT_FOUND: &str = "TokenNotFound";
    /// The token refused the PIN.
    pub const WRONG_PIN: &str = "WrongPIN";
    /// No private key with that label and/or ID on the token.
    pub const KEY_NOT_FOUND: &str = "KeyNotFound";
    /// More than one private key matches.
    pub const KEY_NOT_UNIQUE: &str = "KeyNotUnique";
    /// The key (or the CA certificate's key) is of a type Ferrum does not sign with, or the key
    /// may not sign.
    pub const KEY_TYPE_UNSUPPORTED: &str = "KeyTypeUnsupported";
    /// The token or device does not answer (removed, reset, failing).
    pub const TOKEN_UNAVAILABLE: &str = "TokenUnavailable";
    pub use crate::reasons::KEY_UNAVAILABLE;
    /// Warning: the key may leave the token.
    pub const KEY_EXTRACTABLE: &str = "KeyExtractable";
}
