//! The `ca` backend: loads and checks the CA from its Secret, signs with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;

use super::reasons::*;
use super::spec::{CaIssuerSpec, FerrumIssuerSpec};
use crate::encoding::pem_encode;
use crate::policy::IssuerPolicy;
use crate::reasons::{CA_EXPIRING, INVALID_SPEC};
use crate::rotation::ActiveCa;
use crate::signer::{Health, IssuerContext, IssuerError, SignError, SignRequest, Signed, Signer, Warning};
use crate::trust::fingerprint;
use crate::x509::sign::days_until;
use crate::x509::verify::verify_ca_chain;
use crate::x509::{CaBundle, CertFacts, CrlContents, SigningKey, SoftwareKey, sign_crl, sign_with_ca};

/// A CA that expires within this window gets a Warning event.
pub(super) const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a loaded CA is reused for signing before the Secret is read again. A change to
/// the Secret re-checks the issuer, which reloads it at once.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// A loaded and checked CA.
#[derive(Debug)]
struct LoadedCa {
    bundle: CaBundle,
    key: SoftwareKey,
}

/// (namespace, name) of a Secret.
type SecretKey = (String, String);

/// The `ca` backend.
pub struct CaSigner {
    client: Client,
    cache: Mutex<HashMap<SecretKey, (Instant, Arc<LoadedCa>)>>,
}

impl CaSigner {
    /// A backend reading Secrets with `client`.
    pub fn new(client: Client) -> Self {
        Self { client, cache: Mutex::new(HashMap::new()) }
    }

    fn spec(spec: &FerrumIssuerSpec) -> Result<&CaIssuerSpec, IssuerError> {
        match (&spec.ca, spec.backend_count()) {
            (Some(ca), 1) => Ok(ca),
            _ => Err(IssuerError::new(INVALID_SPEC, "spec must set exactly one backend block: `ca` or `pkcs11`")),
        }
    }

    /// Reads Secret `namespace/name` and checks the CA in it.
    async fn load(&self, namespace: &str, name: &str) -> Result<Arc<LoadedCa>, LoadError> {
        let secret = match read_secret(&self.client, namespace, name).await {
            Ok(secret) => secret,
            Err(error) => {
                if let LoadError::Issuer(_) = error {
                    self.evict(namespace, name);
                }
                return Err(error);
            }
        };
        let checked = check_secret(namespace, name, &secret, SystemTime::now());
        self.store(namespace, name, checked).map_err(LoadError::Issuer)
    }

    /// Caches a CA just checked, or drops the one cached for that Secret if the check failed
    /// (nothing signs with the old one once the Secret no longer holds a usable CA). Entries
    /// past their time are dropped whenever the cache is written: it holds the CAs signed with
    /// in the last minute, not every CA ever loaded.
    fn store(
        &self,
        namespace: &str,
        name: &str,
        checked: Result<LoadedCa, IssuerError>,
    ) -> Result<Arc<LoadedCa>, IssuerError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
        let key = (namespace.to_owned(), name.to_owned());
        match checked {
            Ok(loaded) => {
                let loaded = Arc::new(loaded);
                cache.insert(key, (Instant::now(), loaded.clone()));
                Ok(loaded)
            }
            Err(error) => {
                cache.remove(&key);
                Err(error)
            }
        }
    }

    /// How many CAs are held in memory.
    #[cfg(test)]
    fn cached_count(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn evict(&self, namespace: &str, name: &str) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// The CA in Secret `namespace/name`: cached, else read and checked now.
    async fn loaded(&self, namespace: &str, name: &str) -> Result<Arc<LoadedCa>, SignError> {
        if let Some(ca) = self.cached(namespace, name) {
            return Ok(ca);
        }
        match self.load(namespace, name).await {
            Ok(ca) => Ok(ca),
            Err(LoadError::Issuer(e)) => Err(SignError::IssuerBroken(e)),
            Err(LoadError::Transient(message)) => Err(SignError::Retryable(message)),
        }
    }

    /// The CA that signs for `issuer` now: the spec's, or after a staged switch the next one,
    /// provided its root is still the one switched to.
    async fn active(&self, issuer: &IssuerContext<'_, FerrumIssuerSpec>) -> Result<Arc<LoadedCa>, SignError> {
        let spec = Self::spec(issuer.spec).map_err(SignError::IssuerBroken)?;
        let namespace = issuer.secret_namespace;
        let ActiveCa::Next { root_fingerprint } = &issuer.active else {
            return self.loaded(namespace, &spec.secret_name).await;
        };
        // A spec without `next` ended the rotation (completed: the next Secret is now
        // `secretName`; or withdrawn) before the status said so: its CA signs.
        let Some(next) = &spec.next else { return self.loaded(namespace, &spec.secret_name).await };
        let name = &next.secret_name;
        let ca = self.loaded(namespace, name).await?;
        if fingerprint(ca.bundle.root().der()) != *root_fingerprint {
            return Err(SignError::IssuerBroken(IssuerError::new(
                NEXT_CA_INVALID,
                format!(
                    "the root in Secret {namespace}/{name} is not the one the issuer switched to; restore it, or remove spec.ca.next"
                ),
            )));
        }
        Ok(ca)
    }

    fn cached(&self, namespace: &str, name: &str) -> Option<Arc<LoadedCa>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(&(namespace.to_owned(), name.to_owned()))
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, ca)| ca.clone())
    }
}

/// Why a backend's inputs could not be loaded.
pub(crate) enum LoadError {
    /// The issuer is not usable (a Secret missing or forbidden, its contents wrong).
    Issuer(IssuerError),
    /// The read itself failed (the apiserver restarting, a timeout): try again.
    Transient(String),
}

/// Reads Secret `namespace/name`: missing or forbidden is the issuer's problem
/// (`SecretNotFound`, `SecretUnreadable`), any other failure a transient one.
pub(crate) async fn read_secret(client: &Client, namespace: &str, name: &str) -> Result<Secret, LoadError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(secret)) => Ok(secret),
        Ok(None) => {
            Err(LoadError::Issuer(IssuerError::new(SECRET_NOT_FOUND, format!("Secret {namespace}/{name} not found"))))
        }
        Err(kube::Error::Api(status)) if status.code == 403 => Err(LoadError::Issuer(IssuerError::new(
            SECRET_UNREADABLE,
            format!("not allowed to read Secret {namespace}/{name}: {}", status.message),
        ))),
        Err(e) => Err(LoadError::Transient(format!("reading Secret {namespace}/{name}: {e}"))),
    }
}

/// Checks a CA certificate (from Secret `namespace/name`) at `now`: a CA that may sign
/// certificates, whose key `key_matches` (after the CA checks, before the dates), valid now,
/// with a chain that validates. Shared by every backend that keeps its CA certificate in a
/// Secret.
pub(crate) fn check_ca_certificate(
    bundle: &CaBundle,
    namespace: &str,
    name: &str,
    now: SystemTime,
    key_matches: impl FnOnce(&CertFacts) -> Result<(), IssuerError>,
) -> Result<(), IssuerError> {
    let ca = bundle.issuing();
    if !ca.is_ca {
        return Err(IssuerError::new(
            NOT_A_CA,
            format!("the certificate in Secret {namespace}/{name} is not a CA (basicConstraints cA is not true)"),
        ));
    }
    if !ca.may_sign_certificates {
        return Err(IssuerError::new(
            NOT_A_CA,
            format!(
                "the certificate in Secret {namespace}/{name} may not sign certificates (its keyUsage lacks keyCertSign)"
            ),
        ));
    }
    key_matches(ca)?;
    if now >= ca.not_after {
        return Err(IssuerError::new(CA_EXPIRED, format!("the CA in Secret {namespace}/{name} has expired")));
    }
    if now < ca.not_before {
        return Err(IssuerError::new(
            CA_NOT_YET_VALID,
            format!("the CA in Secret {namespace}/{name} is not valid yet"),
        ));
    }
    // The chain itself: certificates that do not link, a ca.crt that is not the chain's root,
    // an intermediate that expired or may not sign. Every certificate issued from it would fail
    // the path validation after signing; the issuer is not Ready instead.
    verify_ca_chain(bundle, now).map_err(|why| {
        IssuerError::new(INVALID_CHAIN, format!("the CA chain in Secret {namespace}/{name} does not validate: {why}"))
    })
}

/// The Ready health of a CA expiring at `not_after` (from Secret `namespace/name`): a Warning
/// when that is less than 30 days away.
pub(crate) fn ca_health(message: &str, not_after: SystemTime, namespace: &str, name: &str) -> Health {
    let now = SystemTime::now();
    let health = Health::ready(message).expiring_at(not_after);
    if not_after.duration_since(now).unwrap_or_default() >= EXPIRY_WARNING {
        return health;
    }
    let days = days_until(not_after, now);
    health
        .with_warning(Warning::new(CA_EXPIRING, format!("the CA in Secret {namespace}/{name} expires in {days} days")))
}

/// Checks a CA Secret's contents at `now`.
fn check_secret(namespace: &str, name: &str, secret: &Secret, now: SystemTime) -> Result<LoadedCa, IssuerError> {
    let data = secret.data.as_ref();
    let field = |key: &str| data.and_then(|d| d.get(key)).map(|b| b.0.as_slice());
    let invalid = |message: String| IssuerError::new(INVALID_SECRET, format!("Secret {namespace}/{name}: {message}"));
    let crt = field("tls.crt").ok_or_else(|| invalid("has no tls.crt".into()))?;
    let key = field("tls.key").ok_or_else(|| invalid("has no tls.key".into()))?;
    let bundle = CaBundle::parse(crt, field("ca.crt")).map_err(|e| invalid(e.to_string()))?;
    let key = SoftwareKey::from_pem(key).map_err(|e| invalid(format!("tls.key: {e}")))?;
    check_ca_certificate(&bundle, namespace, name, now, |ca| {
        (key.public_key() == ca.public_key.as_slice()).then_some(()).ok_or_else(|| {
            IssuerError::new(
                KEY_MISMATCH,
                format!("tls.key in Secret {namespace}/{name} is not the private key of the certificate in tls.crt"),
            )
        })
    })?;
    Ok(LoadedCa { bundle, key })
}

impl Signer for CaSigner {
    type Spec = FerrumIssuerSpec;

    async fn check(&self, issuer: &IssuerContext<'_, FerrumIssuerSpec>) -> Result<Health, IssuerError> {
        let spec = Self::spec(issuer.spec)?;
        let namespace = issuer.secret_namespace;
        let ca = match self.load(namespace, &spec.secret_name).await {
            Ok(ca) => ca,
            Err(LoadError::Issuer(e)) => return Err(e),
            Err(LoadError::Transient(message)) => return Err(IssuerError::transient(SECRET_UNREADABLE, message)),
        };
        let not_after = ca.bundle.issuing().not_after;
        let health =
            ca_health("Signing CA verified", not_after, namespace, &spec.secret_name).with_root(ca.bundle.root().der());
        let Some(next) = &spec.next else { return Ok(health) };
        // The next CA is checked like the current one: a rotation toward a CA that cannot sign
        // is said now, not at the switch. Before the switch the current CA still signs, so the
        // issuer stays Ready and the rotation waits (the next root is not handed out); after
        // it the next CA is the one that signs, and the issuer is not Ready.
        let unusable = |message: &str| {
            IssuerError::new(
                NEXT_CA_INVALID,
                format!("the next CA (spec.ca.next) is not usable: {message}; fix it or remove spec.ca.next"),
            )
        };
        let switched = matches!(issuer.active, ActiveCa::Next { .. });
        match self.load(namespace, &next.secret_name).await {
            Ok(next) => Ok(health.with_next(next.bundle.root().der(), next.bundle.issuer_info().not_after)),
            Err(LoadError::Issuer(e)) if switched => Err(unusable(&e.message)),
            Err(LoadError::Issuer(e)) => {
                Ok(health.with_warning(Warning::new(NEXT_CA_INVALID, unusable(&e.message).message)))
            }
            Err(LoadError::Transient(message)) => Err(IssuerError::transient(SECRET_UNREADABLE, message)),
        }
    }

    async fn sign(
        &self,
        request: &SignRequest<'_>,
        issuer: &IssuerContext<'_, FerrumIssuerSpec>,
    ) -> Result<Signed, SignError> {
        let spec = Self::spec(issuer.spec).map_err(SignError::IssuerBroken)?;
        let ca = self.active(issuer).await?;
        let urls = spec.published.with_distribution_point(request.crl_distribution_point);
        Ok(sign_with_ca(&ca.bundle, &ca.key, request.template, &urls, SystemTime::now())?.into())
    }

    async fn issuing_certificate(&self, issuer: &IssuerContext<'_, FerrumIssuerSpec>) -> Result<Vec<u8>, SignError> {
        Ok(self.active(issuer).await?.bundle.issuing().der().to_vec())
    }

    fn rotation<'a>(&self, spec: &'a FerrumIssuerSpec) -> Option<&'a crate::rotation::RotationSpec> {
        spec.ca.as_ref()?.next.as_ref().map(|next| &next.rotation)
    }

    async fn cross_certificate(
        &self,
        issuer: &IssuerContext<'_, FerrumIssuerSpec>,
        next_root: &[u8],
    ) -> Result<String, SignError> {
        let spec = Self::spec(issuer.spec).map_err(SignError::IssuerBroken)?;
        let current = self.loaded(issuer.secret_namespace, &spec.secret_name).await?;
        let next = CaBundle::parse(pem_encode("CERTIFICATE", next_root).as_bytes(), None)
            .map_err(|e| SignError::Permanent(format!("the next root: {e}")))?;
        let now = SystemTime::now();
        Ok(crate::x509::cross_certificate(&current.bundle, &current.key, next.root(), now)?)
    }

    async fn sign_crl(
        &self,
        issuer: &IssuerContext<'_, FerrumIssuerSpec>,
        contents: CrlContents,
    ) -> Result<Vec<u8>, SignError> {
        let ca = self.active(issuer).await?;
        // A long CRL takes a while to sign and check: off the async workers.
        tokio::task::spawn_blocking(move || sign_crl(&ca.bundle, &ca.key, &contents))
            .await
            .map_err(|e| SignError::Retryable(format!("the CRL signing task ended early: {e}")))?
            .map_err(SignError::from)
    }

    fn policy<'a>(&self, spec: &'a FerrumIssuerSpec) -> Option<&'a IssuerPolicy> {
        spec.policy.as_ref()
    }

    fn secret_names(&self, spec: &FerrumIssuerSpec) -> Vec<String> {
        let next = spec.ca.iter().filter_map(|ca| ca.next.as_ref()).map(|next| next.secret_name.clone());
        spec.ca.iter().map(|ca| ca.secret_name.clone()).chain(next).collect()
    }

    fn forget(&self, issuer: &IssuerContext<'_, FerrumIssuerSpec>) {
        for name in self.secret_names(issuer.spec) {
            self.evict(issuer.secret_namespace, &name);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    use super::*;

    fn ca(is_ca: bool, days: (i64, i64)) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        if is_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(days.0);
        params.not_after = now + time::Duration::days(days.1);
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn secret(fields: &[(&str, Vec<u8>)]) -> Secret {
        let data: BTreeMap<String, ByteString> =
            fields.iter().map(|(k, v)| (k.to_string(), ByteString(v.clone()))).collect();
        Secret { data: Some(data), ..Default::default() }
    }

    fn padded(pem: &str, len: usize) -> Vec<u8> {
        let mut bytes = pem.as_bytes().to_vec();
        bytes.resize(len, b'\n');
        bytes
    }

    /// Each Secret shape and the exact issuer reason and message it gets.
    #[tokio::test]
    async fn the_ca_cache_forgets_deleted_issuers_and_stale_entries() {
        let client = Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap();
        let signer = CaSigner::new(client);
        let (crt, key) = ca(true, (-1, 30));
        let secret = secret(&[("tls.crt", crt.into_bytes()), ("tls.key", key.into_bytes())]);
        let loaded = Arc::new(check_secret("ns", "ca", &secret, SystemTime::now()).unwrap());
        let insert = |ns: &str, name: &str, at: Instant| {
            signer.cache.lock().unwrap().insert((ns.into(), name.into()), (at, loaded.clone()));
        };
        insert("ns", "ca", Instant::now());
        insert("other", "ca", Instant::now());
        assert!(signer.cached("ns", "ca").is_some());
        let spec: FerrumIssuerSpec = serde_json::from_value(serde_json::json!({"ca": {"secretName": "ca"}})).unwrap();
        let issuer = IssuerContext {
            scope: crate::IssuerScope::Namespaced,
            name: "x",
            secret_namespace: "ns",
            spec: &spec,
            active: ActiveCa::Current,
        };
        signer.forget(&issuer);
        assert!(signer.cached("ns", "ca").is_none(), "the deleted issuer's key is gone");
        assert_eq!(signer.cached_count(), 1, "another namespace's CA of the same name stays");
        // A stale entry is swept at the next write of the cache; a failed check drops the
        // entry of its Secret.
        insert("old", "ca", Instant::now() - CACHE_TTL - Duration::from_secs(1));
        assert_eq!(signer.cached_count(), 2);
        let fresh = check_secret("ns", "ca", &secret, SystemTime::now());
        assert!(signer.store("ns", "ca", fresh).is_ok());
        assert_eq!(signer.cached_count(), 2, "the stale entry went, the new one came");
        assert!(signer.cached("old", "ca").is_none() && signer.cached("ns", "ca").is_some());
        let broken = Err(IssuerError::new(INVALID_SECRET, "now broken"));
        assert!(signer.store("ns", "ca", broken).is_err());
        assert!(signer.cached("ns", "ca").is_none(), "a Secret that no longer checks out is not signed with");
    }

    /// A CA `name` signed by `parent` (certificate and key PEM), valid `days` from now.
    fn intermediate(
        parent: &(String, String),
        name: &str,
        days: (i64, i64),
        usages: Vec<rcgen::KeyUsagePurpose>,
    ) -> (String, String) {
        let parent_key = KeyPair::from_pem(&parent.1).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&parent.0, parent_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = usages;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(days.0);
        params.not_after = now + time::Duration::days(days.1);
        (params.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
    }

    /// The chain in the Secret is validated when the issuer is checked: a chain that does not
    /// link, a `ca.crt` that is not its root, an expired root, a CA that may not sign
    /// certificates each make the issuer not Ready with the reason, not every request fail.
    #[test]
    fn broken_chains_make_the_issuer_not_ready() {
        use rcgen::KeyUsagePurpose::{CrlSign, DigitalSignature, KeyCertSign};
        let root = ca(true, (-1, 365));
        let other_root = ca(true, (-1, 365));
        let expired_root = ca(true, (-10, -1));
        let good = intermediate(&root, "Intermediate 1", (-1, 30), vec![KeyCertSign, CrlSign]);
        let second = intermediate(&good, "Intermediate 2", (-1, 20), vec![KeyCertSign]);
        let under_expired = intermediate(&expired_root, "Under expired", (-1, 30), vec![KeyCertSign]);
        let no_cert_sign = intermediate(&root, "No cert sign", (-1, 30), vec![DigitalSignature, CrlSign]);
        let fields = |crt: String, key: &str, ca_crt: &str| {
            vec![
                ("tls.crt", crt.into_bytes()),
                ("tls.key", key.as_bytes().to_vec()),
                ("ca.crt", ca_crt.as_bytes().to_vec()),
            ]
        };
        let check = |f: Vec<(&str, Vec<u8>)>| check_secret("ns", "s", &secret(&f), SystemTime::now());
        assert!(check(fields(good.0.clone(), &good.1, &root.0)).is_ok(), "two levels, ca.crt the root");
        let both = format!("{}{}", good.0, root.0);
        assert!(check(fields(both, &good.1, "")).is_ok(), "the root inside tls.crt");
        let three = format!("{}{}", second.0, good.0);
        let three_levels = check(fields(three, &second.1, &root.0));
        assert!(three_levels.is_ok(), "three levels: {three_levels:?}");
        for (name, f, reason, says) in [
            (
                "ca.crt is another root",
                fields(good.0.clone(), &good.1, &other_root.0),
                INVALID_CHAIN,
                // Both test roots have the same (empty) name: OpenSSL finds the other root by
                // name and its key does not verify the intermediate.
                "the CA chain in Secret ns/s does not validate: RFC 5280 path validation refused it: certificate signature failure (certificate at depth 0, the issuing CA)",
            ),
            (
                "a link is missing",
                fields(second.0.clone(), &second.1, &root.0),
                INVALID_CHAIN,
                "unable to get local issuer certificate",
            ),
            (
                "the root has expired",
                fields(under_expired.0.clone(), &under_expired.1, &expired_root.0),
                INVALID_CHAIN,
                "expired",
            ),
            (
                "keyUsage without keyCertSign",
                fields(no_cert_sign.0.clone(), &no_cert_sign.1, &root.0),
                NOT_A_CA,
                "the certificate in Secret ns/s may not sign certificates (its keyUsage lacks keyCertSign)",
            ),
        ] {
            let error = check(f).expect_err(name);
            assert_eq!(error.reason, reason, "{name}: {}", error.message);
            assert!(error.message.contains(says), "{name}: {}", error.message);
        }
    }

    #[test]
    fn secret_checks_table() {
        let (crt, key) = ca(true, (-1, 365));
        let (_, other_key) = ca(true, (-1, 365));
        let (leaf, leaf_key) = ca(false, (-1, 365));
        let (expired, expired_key) = ca(true, (-10, -1));
        let (future, future_key) = ca(true, (1, 10));
        let ok = |c: &str, k: &str| vec![("tls.crt", c.as_bytes().to_vec()), ("tls.key", k.as_bytes().to_vec())];
        type Fields<'a> = Vec<(&'a str, Vec<u8>)>;
        type Expected<'a> = Option<(&'a str, String)>;
        let cases: Vec<(&str, Fields<'_>, Expected<'_>)> = vec![
            ("valid", ok(&crt, &key), None),
            ("crt at the cap", vec![("tls.crt", padded(&crt, 95_000)), ("tls.key", key.clone().into_bytes())], None),
            ("key at the cap", vec![("tls.crt", crt.clone().into_bytes()), ("tls.key", padded(&key, 13_000))], None),
            (
                "crt over the cap",
                vec![("tls.crt", padded(&crt, 95_001)), ("tls.key", key.clone().into_bytes())],
                Some((INVALID_SECRET, "Secret ns/s: tls.crt is 95001 bytes, over the limit of 95000 bytes".into())),
            ),
            (
                "key over the cap",
                vec![("tls.crt", crt.clone().into_bytes()), ("tls.key", padded(&key, 13_001))],
                Some((
                    INVALID_SECRET,
                    "Secret ns/s: tls.key: the private key PEM is 13001 bytes, over the limit of 13000 bytes".into(),
                )),
            ),
            (
                "no tls.crt",
                vec![("tls.key", key.clone().into_bytes())],
                Some((INVALID_SECRET, "Secret ns/s: has no tls.crt".into())),
            ),
            (
                "no tls.key",
                vec![("tls.crt", crt.clone().into_bytes())],
                Some((INVALID_SECRET, "Secret ns/s: has no tls.key".into())),
            ),
            (
                "not a CA",
                ok(&leaf, &leaf_key),
                Some((NOT_A_CA, "the certificate in Secret ns/s is not a CA (basicConstraints cA is not true)".into())),
            ),
            (
                "key of another CA",
                ok(&crt, &other_key),
                Some((
                    KEY_MISMATCH,
                    "tls.key in Secret ns/s is not the private key of the certificate in tls.crt".into(),
                )),
            ),
            ("expired", ok(&expired, &expired_key), Some((CA_EXPIRED, "the CA in Secret ns/s has expired".into()))),
            (
                "not yet valid",
                ok(&future, &future_key),
                Some((CA_NOT_YET_VALID, "the CA in Secret ns/s is not valid yet".into())),
            ),
        ];
        for (name, fields, expected) in cases {
            let result = check_secret("ns", "s", &secret(&fields), SystemTime::now());
            match (result, expected) {
                (Ok(_), None) => {}
                (Err(e), Some((reason, message))) => {
                    assert_eq!((e.reason.as_str(), e.message.as_str()), (reason, message.as_str()), "{name}");
                    assert!(!e.message.contains("PRIVATE KEY"), "{name}: no key material in messages");
                }
                (Ok(_), Some(expected)) => panic!("{name}: accepted, expected {expected:?}"),
                (Err(e), None) => panic!("{name}: refused: {e}"),
            }
        }
    }
}
