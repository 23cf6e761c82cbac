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
mod login;
mod mechanism;
mod metrics;
mod modules;
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
    /// More than one token with that label.
    pub const TOKEN_NOT_UNIQUE: &str = "TokenNotUnique";
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

/// Keys on tokens as [`crate::x509::SigningKey`]s, without Kubernetes: only for the signing
/// micro-benchmark (`benches/pkcs11_signing.rs`) and the token tests (`tests/pkcs11_*.rs`),
/// compiled with the `bench-internals` feature, never in a build that issues. Not an API.
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench {
    use std::path::Path;

    use super::backend::{PermittedKey, TokenKey};
    use super::login::Pin;
    use super::mechanism::Scheme;
    use super::modules::Modules;
    use super::spec::RsaSignatureScheme;
    use super::token::{KeySelector, SessionPermit, TokenSelector};
    use crate::x509::{CaBundle, SigningError, SigningKey};

    /// One module, as the `pkcs11` backend holds it (one login state per token).
    pub struct Hsm {
        modules: Modules,
    }

    impl Hsm {
        /// `module`, with `sessions` sessions per token.
        pub fn new(module: &Path, sessions: usize) -> Self {
            Self { modules: Modules::new(Some(module.to_owned()), Vec::new(), sessions) }
        }

        /// The key `key_label` on token `token_label`, for the CA `ca`, logged in with `pin`
        /// (an error says why not, as the issuer's condition would).
        pub fn signer(
            &self,
            token_label: &str,
            pin: &str,
            key_label: &str,
            ca: &CaBundle,
        ) -> Result<TokenSigner, String> {
            let token = self.modules.library(None).and_then(|l| l.token(&TokenSelector::Label(token_label.into())));
            let token = token.map_err(|e| e.to_string())?;
            let permit = token.try_permit().ok_or("no free session")?;
            let pin = Pin::new(pin.as_bytes())?;
            let selector = KeySelector { label: Some(key_label.into()), id: None };
            let scheme =
                Scheme::for_key(ca.issuing().public_key_info(), RsaSignatureScheme::Pkcs1v15).map_err(|e| e.0)?;
            token.find_key(&permit, &pin, &selector, scheme.token_key_type()).map_err(|e| e.to_string())?;
            let key = TokenKey { token, pin, selector, scheme, public_key: ca.issuing().public_key().to_vec() };
            Ok(TokenSigner { key, permit })
        }
    }

    /// One session of a token, held while it lives, signing with one key as the backend does.
    pub struct TokenSigner {
        key: TokenKey,
        permit: SessionPermit,
    }

    impl TokenSigner {
        fn permitted(&self) -> PermittedKey<'_> {
            PermittedKey { key: &self.key, permit: &self.permit }
        }
    }

    impl SigningKey for TokenSigner {
        fn algorithm(&self) -> spki::AlgorithmIdentifierOwned {
            self.permitted().algorithm()
        }

        fn public_key(&self) -> &[u8] {
            &self.key.public_key
        }

        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
            self.permitted().sign(message)
        }
    }
}
