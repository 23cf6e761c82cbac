//! The user PIN and a token's login.
//!
//! PKCS#11 logs in an *application*, not a session: once one issuer's PIN has logged the token
//! in, every session of the process may use its keys. So a PIN is never taken on trust because
//! the token is already logged in: only a `C_Login` that succeeds with it proves it. A PIN other
//! than the one the token is logged in with is tried by logging out and in again. And since
//! tokens lock after a few wrong PINs, and a tenant who may create an issuer and a Secret could
//! otherwise make Ferrum guess for them:
//!
//! - a PIN the token refused is not tried again for [`BAD_PIN_MEMORY`];
//! - a PIN that has never logged the token in (an *unproven* PIN) is not tried when the token
//!   says one more failure locks it (`CKF_USER_PIN_FINAL_TRY`) or that it is locked; nor while
//!   it reports failed attempts (`CKF_USER_PIN_COUNT_LOW`) after a refusal of Ferrum's own in the
//!   last hour; nor when its flags cannot be read; nor after [`MAX_REFUSALS`] refusals in
//!   [`REFUSAL_WINDOW`]; and while the token is logged in with another PIN, at most once per
//!   [`PROBE_INTERVAL`] (checking it logs out every session);
//! - PINs that have logged the token in are always tried, so issuers with the right PIN go on
//!   signing.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::TokenInfo;
use cryptoki::types::AuthPin;

use super::token::TokenError;

/// How long a PIN the token refused is refused without asking the token.
pub(crate) const BAD_PIN_MEMORY: Duration = Duration::from_secs(600);
/// While the token is logged in with one PIN, a PIN not yet seen to work is checked (which
/// logs out every session) at most once per this interval, per token.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(30);
/// After this many refusals within [`REFUSAL_WINDOW`], no unproven PIN is tried until the
/// window has passed (for tokens that report no retry counter).
const MAX_REFUSALS: usize = 2;
/// See [`MAX_REFUSALS`].
const REFUSAL_WINDOW: Duration = Duration::from_secs(3600);
/// At most this many PIN digests are remembered per token, each way.
const MAX_REMEMBERED: usize = 64;

/// A digest that identifies a PIN inside this process: HMAC-SHA-256 under a key drawn at start,
/// so that a digest that ever leaked (a debug print) says nothing about the PIN.
type PinDigest = [u8; 32];

fn digest_key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let secret: [u8; 32] = rand::random();
        hmac::Key::new(hmac::HMAC_SHA256, &secret)
    })
}

/// A user PIN. `Debug` shows nothing of it.
pub(crate) struct Pin {
    secret: AuthPin,
    digest: PinDigest,
}

impl Pin {
    /// A PIN from the bytes of a Secret (surrounding whitespace, e.g. a final newline, removed).
    pub(crate) fn new(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "the PIN is not UTF-8".to_owned())?.trim();
        if text.is_empty() {
            return Err("the PIN is empty".into());
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(hmac::sign(digest_key(), text.as_bytes()).as_ref());
        Ok(Self { secret: AuthPin::from(text.to_owned()), digest })
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// A token's login as Ferrum knows it.
#[derive(Default)]
pub(crate) struct Login {
    /// The PIN the token is logged in with, if a login of Ferrum's proved it.
    with: Option<PinDigest>,
    /// PINs the token refused, and when.
    refused: HashMap<PinDigest, Instant>,
    /// PINs that logged the token in.
    accepted: HashSet<PinDigest>,
    /// When the token refused a PIN, within [`REFUSAL_WINDOW`].
    refusals: Vec<Instant>,
    /// When a PIN not yet seen to work was last checked by logging out another one.
    last_probe: Option<Instant>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("logged_in", &self.with.is_some())
            .field("refusals", &self.refusals.len())
            .finish_non_exhaustive()
    }
}

impl Login {
    /// The token is no longer logged in (the module was initialised again, or a call said so).
    pub(crate) fn forget(&mut self) {
        self.with = None;
    }

    /// Makes sure the token is logged in with `pin`, as the rules in the module docs allow.
    /// `info` reads the token's flags; `failed` classifies an unexpected PKCS#11 error;
    /// `token` describes the token for messages.
    pub(crate) fn ensure(
        &mut self,
        session: &Session,
        pin: &Pin,
        info: impl FnOnce() -> Result<TokenInfo, CkError>,
        failed: impl Fn(&str, &CkError) -> TokenError,
        token: &str,
    ) -> Result<(), TokenError> {
        if self.with == Some(pin.digest) {
            // Logged in with this PIN by a login of ours, if the token still says so (a reset,
            // or another logout, ends a login without telling us).
            match session.get_session_info() {
                Ok(info) if matches!(info.session_state(), SessionState::RoUser | SessionState::RwUser) => {
                    return Ok(());
                }
                Ok(_) => self.with = None,
                Err(e) => return Err(failed("reading the session's state", &e)),
            }
        }
        let wrong = |why: &str| TokenError::WrongPin(format!("the PIN for the {token} was {why}"));
        let now = Instant::now();
        self.refused.retain(|_, at| now.duration_since(*at) < BAD_PIN_MEMORY);
        self.refusals.retain(|at| now.duration_since(*at) < REFUSAL_WINDOW);
        if self.refused.contains_key(&pin.digest) {
            return Err(wrong(
                "refused by the token in the last 10 minutes; not tried again until then or until the PIN Secret changes",
            ));
        }
        let proven = self.accepted.contains(&pin.digest);
        if !proven {
            self.may_try_unproven(info, &wrong)?;
        }
        if self.with.is_some() && !proven {
            // Checking it means logging out every session of the process: not often.
            if self.last_probe.is_some_and(|at| now.duration_since(at) < PROBE_INTERVAL) {
                return Err(TokenError::Busy(format!(
                    "the {token} is logged in with another PIN, and a PIN not yet seen to work was checked less than {} s ago; this one is checked after that",
                    PROBE_INTERVAL.as_secs()
                )));
            }
            self.last_probe = Some(now);
        }
        if self.with.is_some() {
            // Logged in with another PIN: out, so that this one is checked by the token.
            match session.logout() {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _)) => self.with = None,
                Err(e) => return Err(TokenError::Busy(format!("logging out of the {token} to check a PIN: {e}"))),
            }
        }
        let mut outcome = session.login(UserType::User, Some(&pin.secret));
        if let Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) = outcome {
            // Logged in, but not by a login of ours that proved a PIN: out and in again.
            match session.logout() {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _)) => {}
                Err(e) => return Err(TokenError::Busy(format!("logging out of the {token} to check a PIN: {e}"))),
            }
            outcome = session.login(UserType::User, Some(&pin.secret));
        }
        match outcome {
            Ok(()) => {
                self.with = Some(pin.digest);
                remember(&mut self.accepted, pin.digest);
                Ok(())
            }
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Err(TokenError::Busy(format!(
                "the {token} stays logged in after a logout, so this PIN cannot be checked; it is not used"
            ))),
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange, _)) => {
                if self.refused.len() >= MAX_REMEMBERED {
                    self.refused.clear();
                }
                self.refused.insert(pin.digest, now);
                self.refusals.push(now);
                self.accepted.remove(&pin.digest);
                Err(wrong("refused by the token"))
            }
            Err(CkError::Pkcs11(RvError::PinLocked | RvError::PinExpired, _)) => {
                Err(wrong("locked or expired on the token; an administrator must reset it"))
            }
            Err(e) => Err(failed("logging in", &e)),
        }
    }

    /// Whether a PIN that has never logged the token in may be tried now.
    fn may_try_unproven(
        &self,
        info: impl FnOnce() -> Result<TokenInfo, CkError>,
        wrong: &dyn Fn(&str) -> TokenError,
    ) -> Result<(), TokenError> {
        if self.refusals.len() >= MAX_REFUSALS {
            return Err(wrong(&format!(
                "not tried: the token refused {MAX_REFUSALS} PINs in the last hour, and Ferrum tries no PIN it has not seen work until the hour has passed, so as not to lock the token"
            )));
        }
        let info = info().map_err(|e| {
            TokenError::Unavailable(format!(
                "the token's flags could not be read ({e}); a PIN not yet seen to work is not tried without them"
            ))
        })?;
        if info.user_pin_locked() {
            return Err(wrong("not tried: the token's user PIN is locked; an administrator must reset it"));
        }
        if info.user_pin_final_try() {
            return Err(wrong(
                "not tried: one more wrong PIN would lock the token, and Ferrum tries no PIN it has not seen work while that is so",
            ));
        }
        if info.user_pin_count_low() && !self.refusals.is_empty() {
            return Err(wrong(
                "not tried: the token reports failed PIN attempts since its last login, one of them Ferrum's in the last hour; Ferrum tries no PIN it has not seen work until a login succeeds or the hour has passed",
            ));
        }
        Ok(())
    }
}

fn remember(set: &mut HashSet<PinDigest>, digest: PinDigest) {
    if set.len() >= MAX_REMEMBERED {
        set.clear();
    }
    set.insert(digest);
}
