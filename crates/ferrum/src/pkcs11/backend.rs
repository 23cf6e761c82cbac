//! The `pkcs11` backend: the CA certificate from a Secret, the key on a token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use kube::Client;

use super::login::Pin;
use super::mechanism::Scheme;
use super::modules::Modules;
use super::reasons::*;
use super::spec::Pkcs11IssuerSpec;
use super::token::{KeySelector, SessionPermit, Token, TokenError, TokenSelector};
use crate::ca::backend::{LoadError, ca_health, check_ca_certificate, read_secret};
use crate::ca::reasons::{INVALID_SECRET, KEY_MISMATCH, SECRET_UNREADABLE};
use crate::reasons::INVALID_SPEC;
use crate::signer::{Health, IssuerContext, IssuerError, SignError, SignRequest, Signed, Warning};
use crate::x509::{CaBundle, CaSignError, CrlContents, SigningError, SigningKey, sign_crl, sign_with_ca};

/// How long a checked issuer is signed with before its Secrets and key are looked at again.
/// A change to either Secret re-checks the issuer at once.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// How soon an issuer broken by something outside Kubernetes (module, token, key) is checked
/// again: nothing watches a token.
const TOKEN_RECHECK: Duration = Duration::from_secs(5);

/// Where PKCS#11 modules may come from, and how many sessions a token gets.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Pkcs11Settings {
    /// The module used when an issuer names none (`--pkcs11-module`).
    pub default_module: Option<PathBuf>,
    /// Other modules issuers may name (`--pkcs11-allowed-modules`).
    pub allowed_modules: Vec<PathBuf>,
    /// Sessions per token, at most (`--pkcs11-max-sessions`): this many signatures at once.
    pub max_sessions: usize,
}

impl Default for Pkcs11Settings {
    fn default() -> Self {
        Self { default_module: None, allowed_modules: Vec::new(), max_sessions: 4 }
    }
}

/// The `pkcs11` backend (see [`super`]).
pub struct Pkcs11Signer {
    client: Client,
    modules: Arc<Modules>,
    cache: Mutex<HashMap<CacheKey, (Instant, Arc<LoadedHsmCa>)>>,
}

/// (secret namespace, the spec as JSON): one entry per distinct issuer configuration.
type CacheKey = (String, String);

/// A checked CA: its certificate chain and its key on the token.
struct LoadedHsmCa {
    bundle: CaBundle,
    key: TokenKey,
    /// The key may leave its token (CKA_EXTRACTABLE true or CKA_SENSITIVE false).
    extractable: bool,
}

/// A key on a token, as a [`SigningKey`] once a session permit is held.
pub(crate) struct TokenKey {
    pub(crate) token: Arc<Token>,
    pub(crate) pin: Pin,
    pub(crate) selector: KeySelector,
    pub(crate) scheme: Scheme,
    /// The certificate's `subjectPublicKey` bits.
    pub(crate) public_key: Vec<u8>,
}

/// A [`TokenKey`] with a session permit: what `sign_with_ca` (and `sign_crl`) signs with.
pub(crate) struct PermittedKey<'a> {
    pub(crate) key: &'a TokenKey,
    pub(crate) permit: &'a SessionPermit,
}

impl SigningKey for PermittedKey<'_> {
    fn algorithm(&self) -> spki::AlgorithmIdentifierOwned {
        self.key.scheme.algorithm_identifier()
    }

    fn public_key(&self) -> &[u8] {
        &self.key.public_key
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let key = self.key;
        key.token.sign(self.permit, &key.pin, &key.selector, &key.scheme, message).map_err(|e| match e {
            TokenError::Busy(message) => SigningError::new(message),
            other => SigningError::key_unusable(other.to_string()),
        })
    }
}

impl Pkcs11Signer {
    /// A backend reading Secrets with `client`, loading modules as `settings` allow.
    pub fn new(client: Client, settings: Pkcs11Settings) -> Self {
        let modules = Modules::new(settings.default_module, settings.allowed_modules, settings.max_sessions);
        Self { client, modules: Arc::new(modules), cache: Mutex::new(HashMap::new()) }
    }

    /// Reads both Secrets, finds the token and the key, and proves the key is the
    /// certificate's with a test signature.
    async fn load(&self, namespace: &str, spec: &Pkcs11IssuerSpec) -> Result<Arc<LoadedHsmCa>, LoadError> {
        let (token_selector, key_selector) = selectors(spec).map_err(LoadError::Issuer)?;
        let cert_name = &spec.certificate_secret_name;
        let certificate = read_secret(&self.client, namespace, cert_name).await?;
        let pin_ref = &spec.pin_secret_ref;
        let pin_secret = read_secret(&self.client, namespace, &pin_ref.name).await?;
        let invalid = |name: &str, message: String| {
            LoadError::Issuer(IssuerError::new(INVALID_SECRET, format!("Secret {namespace}/{name}: {message}")))
        };
        let field = |secret: &k8s_openapi::api::core::v1::Secret, key: &str| {
            secret.data.as_ref().and_then(|d| d.get(key)).map(|b| b.0.clone())
        };
        let crt = field(&certificate, "tls.crt").ok_or_else(|| invalid(cert_name, "has no tls.crt".into()))?;
        let bundle = CaBundle::parse(&crt, field(&certificate, "ca.crt").as_deref())
            .map_err(|e| invalid(cert_name, e.to_string()))?;
        let pin_bytes = field(&pin_secret, pin_ref.key())
            .ok_or_else(|| invalid(&pin_ref.name, format!("has no {}", pin_ref.key())))?;
        let pin = Pin::new(&pin_bytes).map_err(|why| invalid(&pin_ref.name, format!("{}: {why}", pin_ref.key())))?;
        check_ca_certificate(&bundle, namespace, cert_name, SystemTime::now(), |_| Ok(()))
            .map_err(LoadError::Issuer)?;
        let ca = bundle.issuing();
        let scheme = Scheme::for_key(ca.public_key_info(), spec.rsa_signature_scheme.unwrap_or_default())
            .map_err(|e| LoadError::Issuer(IssuerError::new(KEY_TYPE_UNSUPPORTED, e.to_string())))?;

        let modules = self.modules.clone();
        let module = spec.module.clone();
        let token = blocking(move || modules.library(module.as_deref())?.token(&token_selector)).await?;
        let permit = token.permit().await.map_err(token_error)?;
        let key = TokenKey { token, pin, selector: key_selector, scheme, public_key: ca.public_key().to_vec() };
        let (key, extractable) = blocking(move || {
            let found = key.token.find_key(&permit, &key.pin, &key.selector, key.scheme.token_key_type())?;
            let challenge: [u8; 32] = rand::random();
            let message = [b"ferrum key check ".as_slice(), &challenge].concat();
            let signature = key.token.sign(&permit, &key.pin, &key.selector, &key.scheme, &message)?;
            if !key.scheme.verifies(&key.public_key, &message, &signature) {
                return Ok(Err(key));
            }
            Ok(Ok((key, found.extractable)))
        })
        .await?
        .map_err(|key| {
            LoadError::Issuer(IssuerError::new(
                KEY_MISMATCH,
                format!(
                    "the {} on the token does not belong to the certificate in Secret {namespace}/{cert_name}: a test signature did not verify with its public key",
                    key.selector
                ),
            ))
        })?;
        let loaded = Arc::new(LoadedHsmCa { bundle, key, extractable });
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
        cache.insert(cache_key(namespace, spec), (Instant::now(), loaded.clone()));
        Ok(loaded)
    }

    fn cached(&self, namespace: &str, spec: &Pkcs11IssuerSpec) -> Option<Arc<LoadedHsmCa>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(&cache_key(namespace, spec)).filter(|(at, _)| at.elapsed() < CACHE_TTL).map(|(_, ca)| ca.clone())
    }

    fn forget(&self, namespace: &str, spec: &Pkcs11IssuerSpec) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).remove(&cache_key(namespace, spec));
    }

    /// Checks an issuer with a `pkcs11` block.
    pub(crate) async fn check_spec(
        &self,
        issuer: &IssuerContext<'_, impl Sized>,
        spec: &Pkcs11IssuerSpec,
    ) -> Result<Health, IssuerError> {
        let namespace = issuer.secret_namespace;
        let loaded = match self.load(namespace, spec).await {
            Ok(loaded) => loaded,
            Err(LoadError::Issuer(e)) => {
                self.forget(namespace, spec);
                return Err(e);
            }
            Err(LoadError::Transient(message)) => return Err(IssuerError::transient(SECRET_UNREADABLE, message)),
        };
        let token = &loaded.key.token;
        let message = format!("Signing CA verified; its key is on token {:?}", token.label());
        let health = ca_health(&message, loaded.bundle.issuing().not_after(), namespace, &spec.certificate_secret_name)
            .with_root(loaded.bundle.root().der());
        if !loaded.extractable {
            return Ok(health);
        }
        Ok(health.with_warning(Warning::new(
            KEY_EXTRACTABLE,
            format!(
                "the {} on token {:?} may leave the token (CKA_EXTRACTABLE is true or CKA_SENSITIVE false); generate the CA key on the token as non-extractable",
                loaded.key.selector,
                token.label()
            ),
        )))
    }

    /// Signs a request for an issuer with a `pkcs11` block.
    pub(crate) async fn sign_spec(
        &self,
        request: &SignRequest<'_>,
        namespace: &str,
        spec: &Pkcs11IssuerSpec,
    ) -> Result<Signed, SignError> {
        let urls = spec.published.with_distribution_point(request.crl_distribution_point);
        let template = request.template.clone();
        let issued = self
            .with_key(namespace, spec, move |bundle, key| {
                sign_with_ca(bundle, key, &template, &urls, SystemTime::now())
            })
            .await?;
        Ok(issued.into())
    }

    /// Signs a CRL for an issuer with a `pkcs11` block.
    pub(crate) async fn sign_crl_spec(
        &self,
        namespace: &str,
        spec: &Pkcs11IssuerSpec,
        contents: CrlContents,
    ) -> Result<Vec<u8>, SignError> {
        self.with_key(namespace, spec, move |bundle, key| sign_crl(bundle, key, &contents)).await
    }

    /// The issuing CA certificate (DER) of an issuer with a `pkcs11` block.
    pub(crate) async fn issuing_certificate_spec(
        &self,
        namespace: &str,
        spec: &Pkcs11IssuerSpec,
    ) -> Result<Vec<u8>, SignError> {
        Ok(self.loaded(namespace, spec).await?.bundle.issuing().der().to_vec())
    }

    /// The issuer's CA and key: cached, else loaded and checked now.
    async fn loaded(&self, namespace: &str, spec: &Pkcs11IssuerSpec) -> Result<Arc<LoadedHsmCa>, SignError> {
        if let Some(loaded) = self.cached(namespace, spec) {
            return Ok(loaded);
        }
        match self.load(namespace, spec).await {
            Ok(loaded) => Ok(loaded),
            Err(LoadError::Issuer(e)) if e.transient => Err(SignError::Retryable(e.message)),
            Err(LoadError::Issuer(e)) => Err(SignError::IssuerBroken(e)),
            Err(LoadError::Transient(message)) => Err(SignError::Retryable(message)),
        }
    }

    /// Runs `work` with the issuer's CA and its key on the token, holding a session permit, on
    /// a blocking thread. A key or token gone makes the issuer broken (and forgotten).
    async fn with_key<T: Send + 'static>(
        &self,
        namespace: &str,
        spec: &Pkcs11IssuerSpec,
        work: impl FnOnce(&CaBundle, &PermittedKey<'_>) -> Result<T, CaSignError> + Send + 'static,
    ) -> Result<T, SignError> {
        let loaded = self.loaded(namespace, spec).await?;
        let permit = loaded.key.token.permit().await.map_err(|e| SignError::Retryable(e.to_string()))?;
        let ca = loaded.clone();
        let signed = tokio::task::spawn_blocking(move || {
            let key = PermittedKey { key: &ca.key, permit: &permit };
            work(&ca.bundle, &key)
        })
        .await
        .map_err(|e| SignError::Retryable(format!("the signing task ended early: {e}")))?;
        match signed {
            Ok(value) => Ok(value),
            Err(CaSignError::KeyUnusable(message)) => {
                // The key or the token went away: nothing signs with this entry any more; the
                // issuer is checked again (and stays not Ready until the token answers).
                self.forget(namespace, spec);
                let error =
                    IssuerError::new(crate::reasons::KEY_UNAVAILABLE, message).checked_again_after(TOKEN_RECHECK);
                Err(SignError::IssuerBroken(error))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Registers the per-token session gauges.
    pub(crate) fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register_collector(Box::new(super::metrics::SessionCollector { modules: self.modules.clone() }));
    }

    /// The issuer was deleted or changed: drop its entry.
    pub(crate) fn forget_spec(&self, namespace: &str, spec: &Pkcs11IssuerSpec) {
        self.forget(namespace, spec);
    }
}

fn cache_key(namespace: &str, spec: &Pkcs11IssuerSpec) -> CacheKey {
    (namespace.to_owned(), serde_json::to_string(spec).unwrap_or_default())
}

/// The token and key a spec selects; a spec that selects neither or both tokens, or no key, is
/// `InvalidSpec`.
fn selectors(spec: &Pkcs11IssuerSpec) -> Result<(TokenSelector, KeySelector), IssuerError> {
    let invalid = |message: &str| IssuerError::new(INVALID_SPEC, format!("spec.pkcs11: {message}"));
    let token = match (&spec.token_label, spec.slot) {
        (Some(label), None) => TokenSelector::Label(label.clone()),
        (None, Some(slot)) => TokenSelector::Slot(slot),
        _ => return Err(invalid("set exactly one of tokenLabel and slot")),
    };
    let id = match &spec.key_id {
        Some(hex) => Some(
            crate::encoding::hex_decode(hex)
                .ok_or_else(|| invalid("keyId must be hexadecimal, two digits per byte"))?,
        ),
        None => None,
    };
    if spec.key_label.is_none() && id.is_none() {
        return Err(invalid("set keyLabel, keyId or both"));
    }
    Ok((token, KeySelector { label: spec.key_label.clone(), id }))
}

/// Runs blocking PKCS#11 work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TokenError> + Send + 'static,
) -> Result<T, LoadError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(token_error),
        Err(e) => Err(LoadError::Transient(format!("the PKCS#11 task ended early: {e}"))),
    }
}

/// A token failure as the issuer's condition: a reason per cause, checked again soon for the
/// causes nothing in Kubernetes will announce the end of.
fn token_error(error: TokenError) -> LoadError {
    let (reason, recheck) = match &error {
        TokenError::ModuleNotAllowed(_) => (MODULE_NOT_ALLOWED, None),
        TokenError::ModuleNotLoadable(_) => (MODULE_NOT_LOADABLE, Some(TOKEN_RECHECK)),
        TokenError::TokenNotFound(_) => (TOKEN_NOT_FOUND, Some(TOKEN_RECHECK)),
        TokenError::TokenNotUnique(_) => (TOKEN_NOT_UNIQUE, None),
        TokenError::WrongPin(_) => (WRONG_PIN, Some(Duration::from_secs(60))),
        TokenError::KeyNotFound(_) => (KEY_NOT_FOUND, Some(TOKEN_RECHECK)),
        TokenError::KeyNotUnique(_) => (KEY_NOT_UNIQUE, None),
        TokenError::KeyUnsupported(_) => (KEY_TYPE_UNSUPPORTED, None),
        TokenError::Busy(_) | TokenError::Unavailable(_) => (TOKEN_UNAVAILABLE, Some(TOKEN_RECHECK)),
    };
    // A busy token (a session error, a PIN check put off) says nothing about the issuer: a
    // Ready issuer stays Ready and is checked again in seconds.
    let issuer_error = match error {
        TokenError::Busy(message) => IssuerError::transient(reason, message),
        other => IssuerError::new(reason, other.to_string()),
    };
    LoadError::Issuer(match recheck {
        Some(delay) => issuer_error.checked_again_after(delay),
        None => issuer_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Pkcs11IssuerSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn selectors_need_one_token_and_a_key() {
        let base = serde_json::json!({"pinSecretRef": {"name": "pin"}, "certificateSecretName": "ca"});
        let with = |extra: serde_json::Value| {
            let mut v = base.clone();
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            selectors(&spec(v))
        };
        let (token, key) = with(serde_json::json!({"tokenLabel": "t", "keyLabel": "k", "keyId": "0aFF"})).unwrap();
        assert_eq!(token, TokenSelector::Label("t".into()));
        assert_eq!(key.id, Some(vec![0x0a, 0xff]));
        assert_eq!(with(serde_json::json!({"slot": 7, "keyId": "01"})).unwrap().0, TokenSelector::Slot(7));
        for (bad, says) in [
            (serde_json::json!({"keyLabel": "k"}), "exactly one of tokenLabel and slot"),
            (serde_json::json!({"tokenLabel": "t", "slot": 1, "keyLabel": "k"}), "exactly one of tokenLabel and slot"),
            (serde_json::json!({"tokenLabel": "t"}), "set keyLabel, keyId or both"),
            (serde_json::json!({"tokenLabel": "t", "keyId": "0"}), "hexadecimal"),
            (serde_json::json!({"tokenLabel": "t", "keyId": "zz"}), "hexadecimal"),
        ] {
            let error = with(bad.clone()).expect_err(&bad.to_string());
            assert_eq!(error.reason, INVALID_SPEC);
            assert!(error.message.contains(says), "{bad}: {}", error.message);
        }
    }
}
