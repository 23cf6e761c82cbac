//! One token: a bounded pool of logged-in sessions, so that requests sign in parallel; the
//! private keys found on it; signing. Sessions of an earlier initialisation of the module are
//! abandoned, a session that failed is closed, and the login is checked for every PIN
//! ([`super::login`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::login::{Login, Pin};
use super::mechanism::Scheme;
use super::modules::Shared;

/// Why a module, token or key could not be used. Messages carry no PIN and no key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    /// The issuer names a module the controller was not started with.
    #[error("{0}")]
    ModuleNotAllowed(String),
    /// The module is missing or did not load and initialise.
    #[error("{0}")]
    ModuleNotLoadable(String),
    /// No token with that label or slot.
    #[error("{0}")]
    TokenNotFound(String),
    /// More than one token with that label.
    #[error("{0}")]
    TokenNotUnique(String),
    /// The token refused the PIN (or it was refused recently).
    #[error("{0}")]
    WrongPin(String),
    /// No private key matches, or the one that did is gone.
    #[error("{0}")]
    KeyNotFound(String),
    /// More than one private key matches.
    #[error("{0}")]
    KeyNotUnique(String),
    /// The key is of a type Ferrum does not sign with, or may not sign.
    #[error("{0}")]
    KeyUnsupported(String),
    /// A session-level failure (a session closed under us, too many sessions, device memory):
    /// the next attempt, on another session, may succeed.
    #[error("{0}")]
    Busy(String),
    /// The token or the device is not there or not working (removed, reset, failing): nothing
    /// signs with it until it answers again.
    #[error("{0}")]
    Unavailable(String),
}

/// Which token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum TokenSelector {
    /// By token label.
    Label(String),
    /// By slot ID.
    Slot(u64),
}

impl std::fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSelector::Label(label) => write!(f, "token labelled {label:?}"),
            TokenSelector::Slot(slot) => write!(f, "token in slot {slot}"),
        }
    }
}

/// Which private key on a token: its label, its ID, or both.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct KeySelector {
    /// CKA_LABEL.
    pub label: Option<String>,
    /// CKA_ID.
    pub id: Option<Vec<u8>>,
}

impl std::fmt::Display for KeySelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = self.id.as_deref().map(crate::encoding::hex_encode);
        match (&self.label, id) {
            (Some(label), Some(id)) => write!(f, "private key labelled {label:?} with ID {id}"),
            (Some(label), None) => write!(f, "private key labelled {label:?}"),
            (None, Some(id)) => write!(f, "private key with ID {id}"),
            (None, None) => write!(f, "private key"),
        }
    }
}

/// The idle sessions of one initialisation of the module.
#[derive(Debug, Default)]
struct Pool {
    /// The module initialisation these sessions belong to.
    generation: u64,
    idle: Vec<Session>,
    /// Sessions open, idle or in use.
    open: usize,
}

/// One token: its sessions, its login and the keys found on it.
#[derive(Debug)]
pub(crate) struct Token {
    shared: Arc<Shared>,
    slot: Slot,
    label: String,
    module: PathBuf,
    pool: Mutex<Pool>,
    permits: Arc<Semaphore>,
    login: Mutex<Login>,
    /// Handles of the keys found, with the module initialisation they belong to.
    keys: Mutex<HashMap<KeySelector, (u64, ObjectHandle)>>,
    in_use: AtomicUsize,
    in_use_peak: AtomicUsize,
}

/// A place in a token's session pool: hold one while calling [`Token::sign`] or
/// [`Token::find_key`].
#[derive(Debug)]
pub(crate) struct SessionPermit(#[allow(dead_code)] OwnedSemaphorePermit);

/// What an operation on a session failed with: a PKCS#11 call, or a finding of ours.
enum OpError {
    Call(CkError),
    Token(TokenError),
}

impl From<CkError> for OpError {
    fn from(error: CkError) -> Self {
        OpError::Call(error)
    }
}

impl Token {
    pub(crate) fn new(shared: Arc<Shared>, slot: Slot, label: String, module: PathBuf, max_sessions: usize) -> Self {
        let generation = shared.generation.load(Ordering::SeqCst);
        Self {
            shared,
            slot,
            label,
            module,
            pool: Mutex::new(Pool { generation, ..Pool::default() }),
            permits: Arc::new(Semaphore::new(max_sessions)),
            login: Mutex::new(Login::default()),
            keys: Mutex::new(HashMap::new()),
            in_use: AtomicUsize::new(0),
            in_use_peak: AtomicUsize::new(0),
        }
    }

    /// The token's label.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// The module's path.
    pub(crate) fn module(&self) -> &Path {
        &self.module
    }

    /// (sessions open, sessions in use now, most sessions in use at once since start).
    pub(crate) fn session_counts(&self) -> (usize, usize, usize) {
        let open = lock(&self.pool).open;
        (open, self.in_use.load(Ordering::Relaxed), self.in_use_peak.load(Ordering::Relaxed))
    }

    /// Waits for a place in the session pool. Async: call it before moving to a blocking
    /// thread.
    pub(crate) async fn permit(&self) -> Result<SessionPermit, TokenError> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map(SessionPermit)
            .map_err(|_| TokenError::Unavailable("the session pool is closed".into()))
    }

    /// A place in the pool if one is free now (the benchmark's and tests' single-threaded use).
    #[cfg(feature = "bench-internals")]
    pub(crate) fn try_permit(&self) -> Option<SessionPermit> {
        self.permits.clone().try_acquire_owned().ok().map(SessionPermit)
    }

    /// Runs `operation` on a logged-in session (one from the pool, or a new one), with the
    /// module initialisation it belongs to. Blocking; hold a [`SessionPermit`].
    fn with_session<T>(
        &self,
        _permit: &SessionPermit,
        pin: &Pin,
        operation: impl FnOnce(&Session, u64) -> Result<T, OpError>,
    ) -> Result<T, TokenError> {
        let in_use = self.in_use.fetch_add(1, Ordering::Relaxed) + 1;
        self.in_use_peak.fetch_max(in_use, Ordering::Relaxed);
        let result = self.with_session_counted(pin, operation);
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        result
    }

    fn with_session_counted<T>(
        &self,
        pin: &Pin,
        operation: impl FnOnce(&Session, u64) -> Result<T, OpError>,
    ) -> Result<T, TokenError> {
        // No re-initialisation while this runs: the generation read here stays current.
        let _calls = self.shared.calls.read().unwrap_or_else(|e| e.into_inner());
        if !self.shared.initialized.load(Ordering::SeqCst) {
            return Err(TokenError::Unavailable(format!(
                "the PKCS#11 module of the {} is not initialised",
                self.describe()
            )));
        }
        let generation = self.shared.generation.load(Ordering::SeqCst);
        let idle = self.take_idle(generation);
        let session = match idle {
            Some(session) => session,
            None => {
                let session =
                    self.shared.context.open_ro_session(self.slot).map_err(|e| self.failed("opening a session", &e))?;
                lock(&self.pool).open += 1;
                session
            }
        };
        let describe = self.describe();
        let login = lock(&self.login).ensure(
            &session,
            pin,
            || self.shared.context.get_token_info(self.slot),
            |what, e| self.failed(what, e),
            &describe,
        );
        if let Err(error) = login {
            self.put_back_or_close(session, generation, &error);
            return Err(error);
        }
        match operation(&session, generation) {
            Ok(value) => {
                self.give_back(session, generation);
                Ok(value)
            }
            Err(OpError::Token(error)) => {
                self.give_back(session, generation);
                Err(error)
            }
            Err(OpError::Call(CkError::Pkcs11(RvError::UserNotLoggedIn, _))) => {
                // Logged out under us (another PIN was being checked, the token was reset):
                // logged in again at the next call.
                lock(&self.login).forget();
                self.give_back(session, generation);
                Err(TokenError::Busy(format!("the {describe} was logged out while signing")))
            }
            Err(OpError::Call(e)) => {
                let error = self.failed("signing", &e);
                self.put_back_or_close(session, generation, &error);
                Err(error)
            }
        }
    }

    /// An idle session of initialisation `generation`, if any. Sessions of an earlier one are
    /// abandoned (not closed: their handles may now be other sessions'), with the login and
    /// the key handles.
    fn take_idle(&self, generation: u64) -> Option<Session> {
        let mut pool = lock(&self.pool);
        if pool.generation != generation {
            for stale in std::mem::take(&mut pool.idle) {
                std::mem::forget(stale);
            }
            pool.open = 0;
            pool.generation = generation;
            lock(&self.login).forget();
            lock(&self.keys).clear();
        }
        pool.idle.pop()
    }

    /// Returns a session to the pool.
    fn give_back(&self, session: Session, generation: u64) {
        let mut pool = lock(&self.pool);
        if pool.generation == generation {
            pool.idle.push(session);
        } else {
            // Cannot happen while the caller holds the calls lock; abandoned, not closed.
            std::mem::forget(session);
        }
    }

    /// After `error`: a session whose state is in doubt (a session or device error) is closed,
    /// and after a device error the idle ones too; otherwise it goes back to the pool.
    fn put_back_or_close(&self, session: Session, generation: u64, error: &TokenError) {
        match error {
            TokenError::Busy(_) | TokenError::Unavailable(_) => {
                let mut pool = lock(&self.pool);
                let mut closing = vec![session];
                if matches!(error, TokenError::Unavailable(_)) {
                    closing.append(&mut pool.idle);
                }
                pool.open = pool.open.saturating_sub(closing.len());
                drop(pool);
                drop(closing);
            }
            _ => self.give_back(session, generation),
        }
    }

    fn describe(&self) -> String {
        format!("token {:?} (slot {}) of PKCS#11 module {}", self.label, self.slot.id(), self.module.display())
    }

    /// A PKCS#11 failure while doing `what`, classified. Takes no lock but `keys`.
    fn failed(&self, what: &str, error: &CkError) -> TokenError {
        let message = format!("{what} on the {}: {error}", self.describe());
        match error {
            CkError::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _) => {
                // A handle that went stale (the key was deleted, or the token reloaded its
                // objects): forgotten, so that the key is looked up again.
                lock(&self.keys).clear();
                TokenError::KeyNotFound(message)
            }
            // What this key or this token cannot do: no retry will change it.
            CkError::Pkcs11(
                RvError::KeyFunctionNotPermitted
                | RvError::KeyTypeInconsistent
                | RvError::KeySizeRange
                | RvError::MechanismInvalid
                | RvError::MechanismParamInvalid
                | RvError::FunctionNotSupported
                | RvError::DataLenRange,
                _,
            ) => TokenError::KeyUnsupported(message),
            CkError::Pkcs11(
                RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::SessionCount
                | RvError::DeviceMemory
                | RvError::HostMemory
                | RvError::FunctionCanceled
                | RvError::OperationActive
                | RvError::OperationNotInitialized
                | RvError::UserNotLoggedIn,
                _,
            ) => TokenError::Busy(message),
            _ => TokenError::Unavailable(message),
        }
    }

    /// Finds the private key `selector` names on `session` and checks it may sign as
    /// `expected`; remembers its handle for initialisation `generation`.
    fn find_on(
        &self,
        session: &Session,
        generation: u64,
        selector: &KeySelector,
        expected: KeyType,
    ) -> Result<FoundKey, OpError> {
        let described = self.describe();
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Token(true)];
        if let Some(label) = &selector.label {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &selector.id {
            template.push(Attribute::Id(id.clone()));
        }
        let handles = session.find_objects(&template)?;
        let Some(&handle) = handles.first() else {
            return Err(OpError::Token(TokenError::KeyNotFound(format!("no {selector} on the {described}"))));
        };
        if handles.len() > 1 {
            return Err(OpError::Token(TokenError::KeyNotUnique(format!(
                "{} private keys match ({selector}) on the {described}; give keyId too",
                handles.len()
            ))));
        }
        let attributes = session.get_attributes(
            handle,
            &[AttributeType::KeyType, AttributeType::Sign, AttributeType::Extractable, AttributeType::Sensitive],
        )?;
        let mut key = FoundKey { handle, extractable: false };
        let (mut key_type, mut may_sign, mut sensitive) = (None, false, false);
        for attribute in attributes {
            match attribute {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::Sign(s) => may_sign = s,
                Attribute::Extractable(e) => key.extractable |= e,
                Attribute::Sensitive(s) => sensitive = s,
                _ => {}
            }
        }
        key.extractable |= !sensitive;
        if key_type != Some(expected) {
            let shown = key_type.map(key_type_name).unwrap_or_else(|| "unknown".into());
            return Err(OpError::Token(TokenError::KeyUnsupported(format!(
                "the {selector} on the {described} is of type {shown}, not {} as the CA certificate's key",
                key_type_name(expected)
            ))));
        }
        if !may_sign {
            return Err(OpError::Token(TokenError::KeyUnsupported(format!(
                "the {selector} on the {described} may not sign (CKA_SIGN is false)"
            ))));
        }
        lock(&self.keys).insert(selector.clone(), (generation, handle));
        Ok(key)
    }

    /// Finds the private key `selector` names and checks it may sign as `expected`. Blocking;
    /// hold a permit.
    pub(crate) fn find_key(
        &self,
        permit: &SessionPermit,
        pin: &Pin,
        selector: &KeySelector,
        expected: KeyType,
    ) -> Result<FoundKey, TokenError> {
        self.with_session(permit, pin, |session, generation| self.find_on(session, generation, selector, expected))
    }

    /// Signs `message` with the key `selector` names, as `scheme` says. Blocking; hold a permit.
    /// The key's handle is looked up (or found) on the same session that signs; a handle that
    /// went stale is found once more; a key no longer there is [`TokenError::KeyNotFound`].
    pub(crate) fn sign(
        &self,
        permit: &SessionPermit,
        pin: &Pin,
        selector: &KeySelector,
        scheme: &Scheme,
        message: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        let (mechanism, input) = scheme.token_input(message);
        let raw = self.with_session(permit, pin, |session, generation| {
            let cached = lock(&self.keys).get(selector).filter(|(g, _)| *g == generation).map(|(_, h)| *h);
            let handle = match cached {
                Some(handle) => handle,
                None => self.find_on(session, generation, selector, scheme.token_key_type())?.handle,
            };
            match session.sign(&mechanism, handle, &input) {
                Err(CkError::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _))
                    if cached.is_some() =>
                {
                    lock(&self.keys).remove(selector);
                    let handle = self.find_on(session, generation, selector, scheme.token_key_type())?.handle;
                    Ok(session.sign(&mechanism, handle, &input)?)
                }
                other => Ok(other?),
            }
        })?;
        scheme.encode_signature(raw).map_err(TokenError::Unavailable)
    }
}

/// A key type as people name it.
fn key_type_name(key_type: KeyType) -> String {
    match key_type {
        KeyType::RSA => "RSA".into(),
        KeyType::EC => "EC".into(),
        KeyType::EC_EDWARDS => "EdDSA".into(),
        other => other.to_string(),
    }
}

/// A private key found on a token.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FoundKey {
    /// Its handle.
    pub handle: ObjectHandle,
    /// Whether it may leave the token (CKA_EXTRACTABLE true or CKA_SENSITIVE false).
    pub extractable: bool,
}

/// Locks `mutex`, also after a panic elsewhere (every critical section here leaves the data
/// whole).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
