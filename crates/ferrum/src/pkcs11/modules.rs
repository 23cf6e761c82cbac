//! PKCS#11 modules: only those the controller was started with, each loaded and initialised
//! once per process (by its canonical path), its tokens found by label or slot, and the module
//! finalised and initialised again — at most every [`REINITIALISE_INTERVAL`] — when a token it
//! had shown is gone or the module stops answering, so that a token that comes back is seen.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};

use super::token::{Token, TokenError, TokenSelector, lock};

/// How often a module may be finalised and initialised again.
const REINITIALISE_INTERVAL: Duration = Duration::from_secs(4);

/// The modules this process may load, and those it has loaded.
#[derive(Debug)]
pub(crate) struct Modules {
    default: Option<PathBuf>,
    allowed: Vec<PathBuf>,
    max_sessions: usize,
    loaded: Mutex<HashMap<PathBuf, Arc<Library>>>,
    /// Held while a module loads.
    loading: Mutex<()>,
}

impl Modules {
    /// Modules: `default` (used when an issuer names none) and `allowed` may be loaded; each
    /// token gets at most `max_sessions` sessions.
    pub(crate) fn new(default: Option<PathBuf>, allowed: Vec<PathBuf>, max_sessions: usize) -> Self {
        let loaded = Mutex::new(HashMap::new());
        Self { default, allowed, max_sessions: max_sessions.max(1), loaded, loading: Mutex::new(()) }
    }

    /// The module an issuer asks for (`None`: the default), loaded and initialised once.
    /// The path is checked against the allowed ones before anything touches the file system.
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
        // One library per file, whatever the path that names it (a symlink, say): two would
        // share the module's state without knowing it.
        let canonical = std::fs::canonicalize(&path)
            .map_err(|_| TokenError::ModuleNotLoadable(format!("PKCS#11 module {} not found", path.display())))?;
        if let Some(library) = lock(&self.loaded).get(&canonical) {
            return Ok(library.clone());
        }
        // One load at a time (a module's C_Initialize must not run twice at once); `loaded`
        // itself is only held briefly, so that a metrics scrape never waits for a load.
        let _loading = lock(&self.loading);
        if let Some(library) = lock(&self.loaded).get(&canonical) {
            return Ok(library.clone());
        }
        let library = Arc::new(Library::load(&canonical, &path, self.max_sessions)?);
        lock(&self.loaded).insert(canonical, library.clone());
        Ok(library)
    }

    /// Every token in use, for metrics.
    pub(crate) fn tokens(&self) -> Vec<Arc<Token>> {
        let libraries: Vec<Arc<Library>> = lock(&self.loaded).values().cloned().collect();
        libraries.iter().flat_map(|library| lock(&library.tokens).values().cloned().collect::<Vec<_>>()).collect()
    }
}

/// What a module's tokens share: the context, and the lock that keeps every call out while the
/// module is initialised again.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The module.
    pub(crate) context: Pkcs11,
    /// Held (shared) by every PKCS#11 call, taken (exclusive) to finalise and initialise again.
    pub(crate) calls: RwLock<()>,
    /// Counts initialisations: sessions, logins and handles of an earlier one are gone.
    pub(crate) generation: AtomicU64,
    /// Whether the last initialisation succeeded.
    pub(crate) initialized: AtomicBool,
}

fn init_args() -> CInitializeArgs {
    CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)
}

/// One loaded PKCS#11 module.
#[derive(Debug)]
pub(crate) struct Library {
    /// The path as the issuer or the flag gave it, for messages.
    path: PathBuf,
    shared: Arc<Shared>,
    max_sessions: usize,
    tokens: Mutex<HashMap<u64, Arc<Token>>>,
    /// Selectors that found a token: only their absence makes the module initialise again (a
    /// label that never matched — a typo, a tenant's guess — must not disturb everyone else).
    /// Bounded by the tokens the module ever showed.
    seen: Mutex<HashSet<TokenSelector>>,
    last_reinitialised: Mutex<Option<Instant>>,
}

impl Library {
    fn load(canonical: &Path, path: &Path, max_sessions: usize) -> Result<Self, TokenError> {
        let shown = path.display();
        if !canonical.is_file() {
            return Err(TokenError::ModuleNotLoadable(format!("PKCS#11 module {shown} not found")));
        }
        let context = Pkcs11::new(canonical)
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
            seen: Mutex::new(HashSet::new()),
            last_reinitialised: Mutex::new(None),
        })
    }

    /// Finalises the module and initialises it again, so that it looks at its tokens afresh.
    /// Waits for the calls in progress; the sessions of the earlier initialisation are
    /// abandoned by their tokens, never closed (their handles may be reused). At most once per
    /// [`REINITIALISE_INTERVAL`]; `false` if it was not time.
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
        let outcome = self.shared.context.initialize(init_args());
        tracing::info!(module = %self.path.display(), ok = outcome.is_ok(), "PKCS#11 module initialised again");
        match outcome {
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

    /// The token `selector` names. If a token this selector found before is gone, or the module
    /// stopped answering, the module is initialised again (at most every few seconds) and
    /// asked once more. Blocking.
    pub(crate) fn token(&self, selector: &TokenSelector) -> Result<Arc<Token>, TokenError> {
        let error = match self.find_token(selector) {
            Ok(token) => {
                lock(&self.seen).insert(selector.clone());
                return Ok(token);
            }
            Err(error) => error,
        };
        let worth_it = match &error {
            TokenError::TokenNotFound(_) => lock(&self.seen).contains(selector),
            TokenError::Unavailable(_) | TokenError::ModuleNotLoadable(_) => true,
            _ => false,
        };
        if !worth_it || !self.reinitialise()? {
            return Err(error);
        }
        // A selector stays `seen` while its token is away: the module keeps looking for it
        // (every few seconds at most), so that it is found when it comes back.
        self.find_token(selector)
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
                    return Err(TokenError::TokenNotUnique(format!(
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
        // A slot may hold another token after the module was initialised again.
        if let Some(token) = tokens.get(&slot.id()).filter(|t| t.label() == label) {
            return Ok(token.clone());
        }
        let token = Arc::new(Token::new(self.shared.clone(), slot, label, self.path.clone(), self.max_sessions));
        tokens.insert(slot.id(), token.clone());
        Ok(token)
    }
}
