//! PKCS#11 modules, tokens and sessions: each module loaded and initialised once per process,
//! a bounded pool of logged-in sessions per token so that requests sign in parallel, sessions
//! dropped and opened again after a token reset, and the PIN each issuer presents checked
//! against the one the token was logged in with.
//!
//! PKCS#11 logs in an *application*, not a session: once one issuer's PIN logged the token in,
//! every session of the process may use its keys. So a PIN is never taken on trust because the
//! token is already logged in: an issuer whose PIN differs from the one that logged in has its
//! PIN tried by logging out and in again (at most once per [`PIN_PROBE_INTERVAL`] per token), and
//! a PIN the token refused is not tried again for [`BAD_PIN_MEMORY`]. A PIN that has not logged
//! the token in before is not tried when the token says one more failure locks it, nor while it
//! reports failed attempts after one of Ferrum's own in the last hour, nor after
//! [`MAX_REFUSALS`] refusals in an hour (for tokens that report no counter). So no issuer (or
//! tenant) can lock the token by making Ferrum try wrong PINs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::mechanism::Scheme;

/// How often a PIN other than the one the token is logged in with may be tried.
pub(crate) const PIN_PROBE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a PIN the token refused is refused without asking the token.
pub(crate) const BAD_PIN_MEMORY: Duration = Duration::from_secs(600);
/// At most this many refused PINs are remembered per token.
const MAX_BAD_PINS: usize = 64;
/// After this many refusals of a token within [`REFUSAL_WINDOW`], no PIN that has not logged
/// in before is tried on it until the window has passed: tokens lock after a few wrong PINs.
const MAX_REFUSALS: usize = 3;
/// See [`MAX_REFUSALS`].
const REFUSAL_WINDOW: Duration = Duration::from_secs(3600);

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
        let id = self.id.as_ref().map(|id| id.iter().map(|b| format!("{b:02x}")).collect::<String>());
        match (&self.label, id) {
            (Some(label), Some(id)) => write!(f, "private key labelled {label:?} with ID {id}"),
            (Some(label), None) => write!(f, "private key labelled {label:?}"),
            (None, Some(id)) => write!(f, "private key with ID {id}"),
            (None, None) => write!(f, "private key"),
        }
    }
}

/// The modules this process may load, and those it has loaded.
#[derive(Debug)]
pub(crate) struct Modules {
    default: Option<PathBuf>,
    allowed: Vec<PathBuf>,
    max_sessions: usize,
    loaded: Mutex<HashMap<PathBuf, Arc<Library>>>,
}

impl Modules {
    /// Modules: `default` (used when an issuer names none) and `allowed` may be loaded; each
    /// token gets at most `max_sessions` sessions.
    pub(crate) fn new(default: Option<PathBuf>, allowed: Vec<PathBuf>, max_sessions: usize) -> Self {
        Self { default, allowed, max_sessions: max_sessions.max(1), loaded: Mutex::new(HashMap::new()) }
    }

    /// The module an issuer asks for (`None`: the default), loaded and initialised once.
    /// Blocking (it may load a library).
    pub(crate) fn library(&self, requested: Option<&str>) -> Result<Arc<Library>, TokenError> {
        let path = match (requested, &self.default) {
            (Some(path), _) => PathBuf::from(path),
            (None, Some(default)) => default.clone(),
            (None, None) => {
                return Err(TokenError::ModuleNotAllowed(
                    "the issuer names no PKCS#11 module and the controller has no default (--pkcs11-module)".into(),
                ));
            }
        };
        if self.default.as_ref() != Some(&path) && !self.allowed.contains(&path) {
            return Err(TokenError::ModuleNotAllowed(format!(
                "PKCS#11 module {} is not one this controller may load; an administrator allows it with --pkcs11-module or --pkcs11-allowed-modules",
                path.display()
            )));
        }
        let mut loaded = lock(&self.loaded);
        if let Some(library) = loaded.get(&path) {
            return Ok(library.clone());
        }
        let library = Arc::new(Library::load(&path, self.max_sessions)?);
        loaded.insert(path, library.clone());
        Ok(library)
    }

    /// Every token in use, for metrics.
    pub(crate) fn tokens(&self) -> Vec<Arc<Token>> {
        lock(&self.loaded)
            .values()
            .flat_map(|library| lock(&library.tokens).values().cloned().collect::<Vec<_>>())
            .collect()
    }
}

/// One loaded PKCS#11 module.
#[derive(Debug)]
pub(crate) struct Library {
    path: PathBuf,
    shared: Arc<Shared>,
    max_sessions: usize,
    tokens: Mutex<HashMap<u64, Arc<Token>>>,
    last_reinitialised: Mutex<Option<Instant>>,
}

/// What a module's tokens share: the context, and the lock that keeps every call out while the
/// module is initialised again.
#[derive(Debug)]
struct Shared {
    context: Pkcs11,
    /// Held (shared) by every PKCS#11 call, taken (exclusive) to finalise and initialise again.
    calls: RwLock<()>,
    /// Counts initialisations: sessions of an earlier one are gone.
    generation: AtomicU64,
    /// Whether the last initialisation succeeded.
    initialized: AtomicBool,
}

/// How often a module may be finalised and initialised again (to see a token that came back).
const REINITIALISE_INTERVAL: Duration = Duration::from_secs(4);

fn init_args() -> CInitializeArgs {
    CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)
}

impl Library {
    fn load(path: &Path, max_sessions: usize) -> Result<Self, TokenError> {
        let shown = path.display();
        if !path.is_file() {
            return Err(TokenError::ModuleNotLoadable(format!("PKCS#11 module {shown} not found")));
        }
        let context = Pkcs11::new(path)
            .map_err(|e| TokenError::ModuleNotLoadable(format!("PKCS#11 module {shown} did not load: {e}")))?;
        match context.initialize(init_args()) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                return Err(TokenError::ModuleNotLoadable(format!(
                    "PKCS#11 module {shown} did not initialise: {e} (for SoftHSM2: is SOFTHSM2_CONF readable?)"
                )));
            }
        }
        let shared = Shared {
            context,
            calls: RwLock::new(()),
            generation: AtomicU64::new(0),
            initialized: AtomicBool::new(true),
        };
        Ok(Self {
            path: path.to_owned(),
            shared: Arc::new(shared),
            max_sessions,
            tokens: Mutex::new(HashMap::new()),
            last_reinitialised: Mutex::new(None),
        })
    }

    /// Finalises the module and initialises it again, so that it looks at its tokens afresh (a
    /// token that was unplugged or whose device restarted). Waits for the calls in progress;
    /// the sessions of the earlier initialisation are abandoned, never closed (their handles
    /// may be reused). At most once per [`REINITIALISE_INTERVAL`]; `false` if it was not time.
    fn reinitialise(&self) -> Result<bool, TokenError> {
        {
            let mut last = lock(&self.last_reinitialised);
            if last.is_some_and(|at| at.elapsed() < REINITIALISE_INTERVAL) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        let _exclusive = self.shared.calls.write().unwrap_or_else(|e| e.into_inner());
        if self.shared.initialized.load(Ordering::SeqCst) {
            let _ = self.shared.context.clone().finalize();
        }
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        match self.shared.context.initialize(init_args()) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {
                self.shared.initialized.store(true, Ordering::SeqCst);
                Ok(true)
            }
            Err(e) => {
                self.shared.initialized.store(false, Ordering::SeqCst);
                Err(TokenError::ModuleNotLoadable(format!(
                    "PKCS#11 module {} did not initialise again: {e} (for SoftHSM2: is SOFTHSM2_CONF readable?)",
                    self.path.display()
                )))
            }
        }
    }

    /// The token `selector` names; a token not found (or a module that stopped answering)
    /// makes the module initialise again, at most every few seconds, and look once more.
    /// Blocking.
    pub(crate) fn token(&self, selector: &TokenSelector) -> Result<Arc<Token>, TokenError> {
        match self.find_token(selector) {
            Err(TokenError::TokenNotFound(_) | TokenError::Unavailable(_) | TokenError::ModuleNotLoadable(_))
                if self.reinitialise()? =>
            {
                self.find_token(selector)
            }
            found => found,
        }
    }

    fn find_token(&self, selector: &TokenSelector) -> Result<Arc<Token>, TokenError> {
        let _calls = self.shared.calls.read().unwrap_or_else(|e| e.into_inner());
        if !self.shared.initialized.load(Ordering::SeqCst) {
            return Err(TokenError::ModuleNotLoadable(format!(
                "PKCS#11 module {} is not initialised (its last initialisation failed)",
                self.path.display()
            )));
        }
        let unavailable =
            |e: CkError| TokenError::Unavailable(format!("listing the tokens of {}: {e}", self.path.display()));
        let context = &self.shared.context;
        let slots = context.get_slots_with_token().map_err(unavailable)?;
        let mut found = None;
        for slot in slots {
            let label = match context.get_token_info(slot) {
                Ok(info) => info.label().trim_end().to_owned(),
                Err(_) => continue,
            };
            let matches = match selector {
                TokenSelector::Label(wanted) => &label == wanted,
                TokenSelector::Slot(id) => slot.id() == *id,
            };
            if matches {
                if found.is_some() {
                    return Err(TokenError::TokenNotFound(format!(
                        "more than one {selector} in PKCS#11 module {}; select it by slot",
                        self.path.display()
                    )));
                }
                found = Some((slot, label));
            }
        }
        let Some((slot, label)) = found else {
            return Err(TokenError::TokenNotFound(format!("no {selector} in PKCS#11 module {}", self.path.display())));
        };
        let mut tokens = lock(&self.tokens);
        let token = tokens.entry(slot.id()).or_insert_with(|| {
            Arc::new(Token::new(self.shared.clone(), slot, label, self.path.clone(), self.max_sessions))
        });
        Ok(token.clone())
    }
}

/// Which PIN logged the token in, and which it refused.
#[derive(Debug, Default)]
struct Login {
    /// SHA-256 of the PIN the token is logged in with, if Ferrum logged it in.
    with: Option<[u8; 32]>,
    /// SHA-256 of PINs the token refused, and when.
    refused: HashMap<[u8; 32], Instant>,
    /// When a PIN other than `with` was last tried.
    last_probe: Option<Instant>,
    /// SHA-256 of PINs that logged the token in (at most [`MAX_BAD_PINS`]).
    accepted: std::collections::HashSet<[u8; 32]>,
    /// When the token refused a PIN, within [`REFUSAL_WINDOW`].
    refusals: Vec<Instant>,
}

/// One token: its sessions and its login.
#[derive(Debug)]
pub(crate) struct Token {
    shared: Arc<Shared>,
    /// The module initialisation the idle sessions belong to.
    generation: AtomicU64,
    slot: Slot,
    label: String,
    module: PathBuf,
    idle: Mutex<Vec<Session>>,
    permits: Arc<Semaphore>,
    login: Mutex<Login>,
    keys: Mutex<HashMap<KeySelector, ObjectHandle>>,
    open: AtomicUsize,
    in_use: AtomicUsize,
    in_use_peak: AtomicUsize,
}

/// A session lent out of the pool, with the permit that bounds the pool.
#[derive(Debug)]
pub(crate) struct SessionPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl Token {
    fn new(shared: Arc<Shared>, slot: Slot, label: String, module: PathBuf, max_sessions: usize) -> Self {
        let generation = AtomicU64::new(shared.generation.load(Ordering::SeqCst));
        Self {
            shared,
            generation,
            slot,
            label,
            module,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max_sessions)),
            login: Mutex::new(Login::default()),
            keys: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
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
        (
            self.open.load(Ordering::Relaxed),
            self.in_use.load(Ordering::Relaxed),
            self.in_use_peak.load(Ordering::Relaxed),
        )
    }

    /// Waits for a free session slot (the pool's bound). Async: call it before moving to a
    /// blocking thread.
    pub(crate) async fn permit(&self) -> Result<SessionPermit, TokenError> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map(SessionPermit)
            .map_err(|_| TokenError::Unavailable("the session pool is closed".into()))
    }

    /// A session slot if one is free now (the signing benchmark's single-threaded use).
    #[cfg(feature = "bench-internals")]
    pub(crate) fn try_permit(&self) -> Option<SessionPermit> {
        self.permits.clone().try_acquire_owned().ok().map(SessionPermit)
    }

    /// Runs `operation` on a logged-in session (one from the pool, or a new one). Blocking;
    /// hold a [`SessionPermit`] while calling it. A session that failed is closed rather than
    /// returned; a device or token error drops every idle session and the login, so that the
    /// next call starts afresh (a token that was reset or came back is used again).
    fn with_session<T>(
        &self,
        _permit: &SessionPermit,
        pin: &Pin,
        operation: impl FnOnce(&Session) -> Result<T, CkError>,
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
        operation: impl FnOnce(&Session) -> Result<T, CkError>,
    ) -> Result<T, TokenError> {
        let _calls = self.shared.calls.read().unwrap_or_else(|e| e.into_inner());
        if !self.shared.initialized.load(Ordering::SeqCst) {
            return Err(TokenError::Unavailable(format!(
                "the PKCS#11 module of the {} is not initialised",
                self.describe()
            )));
        }
        let current = self.shared.generation.load(Ordering::SeqCst);
        if self.generation.swap(current, Ordering::SeqCst) != current {
            // The module was initialised again: the idle sessions, the login and the key
            // handles belong to the earlier initialisation. The sessions are abandoned, not
            // closed: their handles may now be other sessions'.
            for session in std::mem::take(&mut *lock(&self.idle)) {
                std::mem::forget(session);
            }
            self.open.store(0, Ordering::Relaxed);
            lock(&self.login).with = None;
            lock(&self.keys).clear();
        }
        let session = match lock(&self.idle).pop() {
            Some(session) => session,
            None => {
                let session =
                    self.shared.context.open_ro_session(self.slot).map_err(|e| self.failed("opening a session", &e))?;
                self.open.fetch_add(1, Ordering::Relaxed);
                session
            }
        };
        if let Err(error) = self.ensure_login(&session, pin) {
            self.discard(session, &error);
            return Err(error);
        }
        match operation(&session) {
            Ok(value) => {
                lock(&self.idle).push(session);
                Ok(value)
            }
            Err(e) => {
                let error = self.failed("signing", &e);
                if matches!(error, TokenError::Unavailable(_) | TokenError::Busy(_)) {
                    self.discard(session, &error);
                } else {
                    lock(&self.idle).push(session);
                }
                Err(error)
            }
        }
    }

    /// Closes a session that failed; after a device-level failure, every idle one too, and
    /// forgets the login and the key handles.
    fn discard(&self, session: Session, error: &TokenError) {
        drop(session);
        self.open.fetch_sub(1, Ordering::Relaxed);
        if matches!(error, TokenError::Unavailable(_)) {
            let idle = std::mem::take(&mut *lock(&self.idle));
            self.open.fetch_sub(idle.len(), Ordering::Relaxed);
            drop(idle);
            lock(&self.login).with = None;
            lock(&self.keys).clear();
        }
    }

    /// Makes sure the token is logged in with `pin` (see the module docs).
    fn ensure_login(&self, session: &Session, pin: &Pin) -> Result<(), TokenError> {
        let mut login = lock(&self.login);
        if login.with == Some(pin.digest) {
            return Ok(());
        }
        let now = Instant::now();
        login.refused.retain(|_, at| now.duration_since(*at) < BAD_PIN_MEMORY);
        if login.refused.contains_key(&pin.digest) {
            return Err(self.wrong_pin("refused by the token in the last 10 minutes; not tried again until then or until the PIN Secret changes"));
        }
        login.refusals.retain(|at| now.duration_since(*at) < REFUSAL_WINDOW);
        if !login.accepted.contains(&pin.digest) {
            // A PIN never seen to work: try it only if a wrong guess cannot lock the token.
            if login.refusals.len() >= MAX_REFUSALS {
                return Err(self.wrong_pin(&format!(
                    "not tried: the token refused {MAX_REFUSALS} PINs in the last hour, and Ferrum tries no PIN it has not seen work until the hour has passed, so as not to lock the token"
                )));
            }
            match self.shared.context.get_token_info(self.slot) {
                Ok(info) if info.user_pin_locked() => {
                    return Err(
                        self.wrong_pin("not tried: the token's user PIN is locked; an administrator must reset it")
                    );
                }
                Ok(info) if info.user_pin_final_try() => {
                    return Err(self.wrong_pin(
                        "not tried: one more wrong PIN would lock the token, and Ferrum tries no PIN it has not seen work while that is so",
                    ));
                }
                Ok(info) if info.user_pin_count_low() && !login.refusals.is_empty() => {
                    return Err(self.wrong_pin(
                        "not tried: the token reports failed PIN attempts since its last login, one of them Ferrum's in the last hour; Ferrum tries no PIN it has not seen work until a login succeeds or the hour has passed",
                    ));
                }
                _ => {}
            }
        }
        if login.with.is_some() {
            if login.last_probe.is_some_and(|at| now.duration_since(at) < PIN_PROBE_INTERVAL) {
                return Err(TokenError::Unavailable(format!(
                    "the {} is logged in with another issuer's PIN; this issuer's PIN is tried within {} s",
                    self.describe(),
                    PIN_PROBE_INTERVAL.as_secs()
                )));
            }
            login.last_probe = Some(now);
            let _ = session.logout();
            login.with = None;
        }
        let mut outcome = session.login(UserType::User, Some(&pin.secret));
        if let Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) = outcome {
            // Logged in by someone Ferrum did not see (a login before a reset): check this PIN.
            let _ = session.logout();
            outcome = session.login(UserType::User, Some(&pin.secret));
        }
        match outcome {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                login.with = Some(pin.digest);
                if login.accepted.len() >= MAX_BAD_PINS {
                    login.accepted.clear();
                }
                login.accepted.insert(pin.digest);
                Ok(())
            }
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange, _)) => {
                if login.refused.len() >= MAX_BAD_PINS {
                    login.refused.clear();
                }
                login.refused.insert(pin.digest, now);
                login.refusals.push(now);
                login.accepted.remove(&pin.digest);
                Err(self.wrong_pin("refused by the token"))
            }
            Err(CkError::Pkcs11(RvError::PinLocked | RvError::PinExpired, _)) => {
                Err(self.wrong_pin("locked or expired on the token; an administrator must reset it"))
            }
            Err(e) => Err(self.failed("logging in", &e)),
        }
    }

    fn wrong_pin(&self, why: &str) -> TokenError {
        TokenError::WrongPin(format!("the PIN for the {} was {why}", self.describe()))
    }

    fn describe(&self) -> String {
        format!("token {:?} (slot {}) of PKCS#11 module {}", self.label, self.slot.id(), self.module.display())
    }

    /// A PKCS#11 failure while doing `what`, classified.
    fn failed(&self, what: &str, error: &CkError) -> TokenError {
        let message = format!("{what} on the {}: {error}", self.describe());
        match error {
            CkError::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _) => {
                // A handle that went stale (the key was deleted, or the token reloaded its
                // objects): forgotten, so that the key is looked up again.
                lock(&self.keys).clear();
                TokenError::KeyNotFound(message)
            }
            CkError::Pkcs11(
                RvError::KeyFunctionNotPermitted | RvError::KeyTypeInconsistent | RvError::MechanismInvalid,
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
                | RvError::OperationNotInitialized,
                _,
            ) => TokenError::Busy(message),
            _ => TokenError::Unavailable(message),
        }
    }

    /// Finds the private key `selector` names and checks it may sign; returns its handle and
    /// whether it is extractable (or not sensitive). Blocking; hold a permit.
    pub(crate) fn find_key(
        &self,
        permit: &SessionPermit,
        pin: &Pin,
        selector: &KeySelector,
        expected: KeyType,
    ) -> Result<FoundKey, TokenError> {
        let described = self.describe();
        let found = self.with_session(permit, pin, |session| {
            let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Token(true)];
            if let Some(label) = &selector.label {
                template.push(Attribute::Label(label.as_bytes().to_vec()));
            }
            if let Some(id) = &selector.id {
                template.push(Attribute::Id(id.clone()));
            }
            let handles = session.find_objects(&template)?;
            let Some(&handle) = handles.first() else {
                return Ok(Err(TokenError::KeyNotFound(format!("no {selector} on the {described}"))));
            };
            if handles.len() > 1 {
                return Ok(Err(TokenError::KeyNotUnique(format!(
                    "{} private keys match ({selector}) on the {described}; give keyId too",
                    handles.len()
                ))));
            }
            let attributes = session.get_attributes(
                handle,
                &[AttributeType::KeyType, AttributeType::Sign, AttributeType::Extractable, AttributeType::Sensitive],
            )?;
            Ok(Ok((handle, attributes)))
        })??;
        let (handle, attributes) = found;
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
            return Err(TokenError::KeyUnsupported(format!(
                "the {selector} on the {described} is of type {shown}, not {} as the CA certificate's key",
                key_type_name(expected)
            )));
        }
        if !may_sign {
            return Err(TokenError::KeyUnsupported(format!(
                "the {selector} on the {described} may not sign (CKA_SIGN is false)"
            )));
        }
        lock(&self.keys).insert(selector.clone(), handle);
        Ok(key)
    }

    /// Signs `message` with the key `selector` names, as `scheme` says. Blocking; hold a permit.
    /// A key handle that went stale is looked up once more; a key no longer there is
    /// [`TokenError::KeyNotFound`].
    pub(crate) fn sign(
        &self,
        permit: &SessionPermit,
        pin: &Pin,
        selector: &KeySelector,
        scheme: &Scheme,
        message: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        let (mechanism, input) = scheme.token_input(message);
        let handle = match lock(&self.keys).get(selector).copied() {
            Some(handle) => handle,
            None => self.find_key(permit, pin, selector, scheme.token_key_type())?.handle,
        };
        let raw = match self.with_session(permit, pin, |session| session.sign(&mechanism, handle, &input)) {
            Ok(raw) => raw,
            Err(TokenError::KeyNotFound(_)) => {
                // The handle was refused (and forgotten): find the key again, once.
                let handle = self.find_key(permit, pin, selector, scheme.token_key_type())?.handle;
                self.with_session(permit, pin, |session| session.sign(&mechanism, handle, &input))?
            }
            Err(e) => return Err(e),
        };
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

/// A user PIN, with its digest to compare PINs without keeping copies around. `Debug` shows
/// neither.
pub(crate) struct Pin {
    secret: AuthPin,
    digest: [u8; 32],
}

impl Pin {
    /// A PIN from the bytes of a Secret (surrounding whitespace, e.g. a final newline, removed).
    pub(crate) fn new(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "the PIN is not UTF-8".to_owned())?.trim();
        if text.is_empty() {
            return Err("the PIN is empty".into());
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(digest::digest(&digest::SHA256, text.as_bytes()).as_ref());
        Ok(Self { secret: AuthPin::from(text.to_owned()), digest })
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// Locks `mutex`, also after a panic elsewhere (the data behind it stays consistent: every
/// critical section here leaves it whole).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
