//! Guarded issuance: every certificate Ferrum builds is validated against its issuer's chain by
//! OpenSSL's RFC 5280 path validation (`X509_verify_cert`, through the `openssl` crate, with
//! OpenSSL 3.6 built from its bundled sources and linked statically) before it is published. A certificate that fails is never returned, and the
//! request is failed with OpenSSL's reason, the depth and the certificate it concerns.
//!
//! # How the validation is set up
//!
//! - **Trust anchor**: only [`CaBundle::root`]. If that certificate is not self-signed (a
//!   `tls.crt` that stops at an intermediate and no `ca.crt`), `X509_V_FLAG_PARTIAL_CHAIN` lets
//!   it anchor the path anyway. "Self-signed" is OpenSSL's own notion (`X509_check_issued` of the
//!   certificate by itself: same name, matching key identifiers, keyUsage allowing keyCertSign).
//! - **Untrusted intermediates**: the certificates of `tls.crt` other than the root, in order.
//! - **No `X509_V_FLAG_X509_STRICT`**: it refuses CA certificates that cert-manager's CA issuer
//!   accepts (basicConstraints not marked critical, no keyUsage, no subject or authority key
//!   identifier).
//! - **Time — validity nesting**: the path is validated at the leaf's `notAfter` (the `at`
//!   argument), so the check proves that every certificate of the chain is still valid at the
//!   instant the new certificate expires, i.e. the leaf's validity nests inside its issuers'.
//!   OpenSSL treats `notAfter` as *exclusive* (`X509_cmp_time` counts "equal" as "before": a
//!   certificate is "expired" at its `notAfter` second) whereas RFC 5280 §4.1.2.5 makes it
//!   inclusive; validating at `at` itself would therefore refuse every leaf (and every leaf
//!   clamped to its CA's expiry). We validate one second earlier, the last second OpenSSL
//!   considers the leaf valid; certificate times have one-second resolution, so a CA that
//!   expires before the leaf is still caught.
//! - **Purpose — the CAs' extended key usage**: chosen from the leaf's extendedKeyUsage:
//!   serverAuth → OpenSSL's "SSL server" purpose, else clientAuth → "SSL client", else none.
//!   With a purpose, OpenSSL checks the leaf (its EKU, and a keyUsage compatible with TLS:
//!   digitalSignature, keyEncipherment or keyAgreement for a server; digitalSignature or
//!   keyAgreement for a client) and every CA, the root included: an EKU, if present, must include
//!   the purpose's key purpose (OpenSSL 3.0 and 3.6 do not let anyExtendedKeyUsage stand in for it: a
//!   CA whose EKU is only anyExtendedKeyUsage is refused). Without a purpose (a leaf
//!   without EKU, or with only other purposes such as codeSigning), no EKU is checked at all:
//!   OpenSSL has no purpose for the other key purposes that constrains the CAs' EKU the same way.
//!   A leaf with **both** serverAuth and clientAuth is validated twice, once per purpose, so
//!   that a CA whose EKU allows only one of them refuses it. The `openssl` crate exposes no safe
//!   `X509_check_purpose` and this crate forbids `unsafe`, so checking the second purpose on
//!   each CA certificate through `openssl-sys` was not an option; a second full path validation
//!   is the cost (measured in the tests' `#[ignore]`d timing test).
//! - **Key usage**: OpenSSL refuses an issuer whose keyUsage lacks keyCertSign, whatever the
//!   purpose (as "invalid CA certificate", which the message then spells out).
//! - **Also checked** by OpenSSL: every signature but the self-signed root's, basicConstraints
//!   cA on every intermediate, path length, name constraints (on the SANs, and on the subject CN
//!   taken as a DNS name when there is no DNS SAN), unknown critical extensions, every
//!   certificate's validity at the verification time. **Not checked**: revocation (no CRL or
//!   OCSP is consulted), certificate policies (no policy flags are set), the nesting of
//!   `notBefore`s (RFC 5280 does not require it), the self-signed root's own signature, a
//!   pathLenConstraint against the new certificate itself (RFC 5280 counts only the
//!   intermediates below a CA, so a CA with pathLen 0 may sign a sub-CA certificate; Ferrum's
//!   own [`super::ca_constraints`] decides that), and the presence of basicConstraints on the trust anchor (a
//!   root without it passes if its keyUsage, when present, has keyCertSign).
//!
//! The error is for a person: OpenSSL's verify error string, the depth and the certificate
//! (`the new certificate` at depth 0, else `the CA "<subject>"`, the subject cut to
//! [`MAX_SUBJECT_CHARS`] characters). It never carries DER, PEM or key material.

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use const_oid::ObjectIdentifier;
use der::Decode;
use openssl::error::ErrorStack;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509PurposeId, X509Ref, X509StoreContext, X509StoreContextRef, X509VerifyResult};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};

use super::chain::CaBundle;
use super::oids::eku;

/// Longest CA subject quoted in an error, in characters.
pub(crate) const MAX_SUBJECT_CHARS: usize = 200;

/// The prefix of every refusal.
const REFUSED: &str = "RFC 5280 path validation refused it";

/// Validates `leaf_der` against `ca`'s chain as of the instant `at`, the leaf's `notAfter` (in
/// OpenSSL's terms one second earlier; see the module doc), for the purposes its
/// extendedKeyUsage calls for, `ext_key_usage` (the signer built the certificate, so it passes
/// them rather than have them read back from the DER). `Err` says, for a person, which rule was
/// broken and by which certificate.
pub(crate) fn verify_certificate(
    leaf_der: &[u8],
    ca: &CaBundle,
    at: SystemTime,
    ext_key_usage: &[ObjectIdentifier],
) -> Result<(), String> {
    let purposes = purposes(ext_key_usage);
    let openssl_failed = |e: ErrorStack| format!("OpenSSL could not run path validation: {e}");
    let leaf = X509::from_der(leaf_der).map_err(|e| format!("OpenSSL could not read the new certificate: {e}"))?;
    let path = ca.openssl.get(ca)?;
    let time = verification_time(at);
    for purpose in purposes {
        validate(&leaf, path, time, purpose, "the new certificate").map_err(openssl_failed)??;
    }
    Ok(())
}

/// Validates the issuer's own chain as of `at`: the issuing CA (the first certificate of
/// `tls.crt`) against the rest of the chain and the root, with the same path validation (links,
/// signatures, basicConstraints and keyUsage of the CAs above it, path lengths, validity at
/// `at`). A single self-issued root has nothing to link and passes. `Err` says which rule broke
/// and at which certificate; the issuer is then not Ready, rather than every request failing
/// at the guard for a fault of the issuer's.
pub(crate) fn verify_ca_chain(ca: &CaBundle, at: SystemTime) -> Result<(), String> {
    let issuing = ca.issuing().der();
    if issuing == ca.root().der() {
        return Ok(());
    }
    let openssl_failed = |e: ErrorStack| format!("OpenSSL could not run path validation: {e}");
    let path = ca.openssl.get(ca)?;
    // The issuing CA is not the root, so it is the first of the parsed untrusted certificates.
    let cert = path.untrusted.iter().next().ok_or("the CA's chain holds no issuing certificate")?;
    validate(cert, path, unix_seconds(at), None, "the issuing CA").map_err(openssl_failed)?
}

/// A [`CaBundle`]'s certificates as OpenSSL objects, parsed at the first validation and
/// kept with the bundle: `d2i_X509` costs 20–30 µs a certificate with OpenSSL 3.6 (100–200 µs
/// with 3.0, most of it decoding the public key through its provider decoders). Clones of
/// the bundle share it. Only a successful parse is kept; a failed one is tried again next time.
#[derive(Clone, Default)]
pub(crate) struct OpenSslChain(Arc<OnceLock<Path>>);

impl std::fmt::Debug for OpenSslChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "OpenSslChain(parsed)" } else { "OpenSslChain(not parsed)" })
    }
}

impl OpenSslChain {
    /// The parsed chain of `ca` (the bundle this belongs to), parsing it on the first call.
    fn get(&self, ca: &CaBundle) -> Result<&Path, String> {
        if let Some(path) = self.0.get() {
            return Ok(path);
        }
        let parsed = Path::of(ca).map_err(|e| format!("OpenSSL could not read the CA's certificates: {e}"))?;
        // Two threads may both parse; the first to store its result wins, the other's is dropped.
        let _ = self.0.set(parsed);
        // Set just above, by this thread or another; never cleared.
        self.0.get().ok_or_else(|| "the CA's certificates were parsed but not kept".to_owned())
    }
}

/// The CA's certificates as OpenSSL objects. OpenSSL's `X509` is reference counted and safe to
/// share between threads (it locks its own lazily computed fields).
struct Path {
    /// The trust anchor: [`CaBundle::root`].
    root: X509,
    /// `tls.crt` without the root.
    untrusted: Stack<X509>,
    /// Whether the root is not self-signed, so `X509_V_FLAG_PARTIAL_CHAIN` is needed.
    partial: bool,
}

impl Path {
    /// Parses `ca`'s root and chain.
    fn of(ca: &CaBundle) -> Result<Self, ErrorStack> {
        let root_der = ca.root().der();
        let root = X509::from_der(root_der)?;
        let mut untrusted = Stack::new()?;
        for cert in ca.chain().iter().filter(|c| c.der() != root_der) {
            untrusted.push(X509::from_der(cert.der())?)?;
        }
        let partial = root.issued(&root) != X509VerifyResult::OK;
        Ok(Self { root, untrusted, partial })
    }
}

/// One path validation of `leaf` over `path` at `time` (seconds since the epoch) for `purpose`;
/// `target` names `leaf` in messages. The outer `Err` is OpenSSL failing to run; the inner one
/// is its verdict.
fn validate(
    leaf: &X509Ref,
    path: &Path,
    time: i64,
    purpose: Option<X509PurposeId>,
    target: &str,
) -> Result<Result<(), String>, ErrorStack> {
    let mut param = X509VerifyParam::new()?;
    param.set_time(time);
    if path.partial {
        param.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
    }
    if let Some(purpose) = purpose {
        param.set_purpose(purpose)?;
    }
    let mut store = X509StoreBuilder::new()?;
    store.add_cert(path.root.clone())?;
    store.set_param(&param)?;
    let store = store.build();
    let mut context = X509StoreContext::new()?;
    context.init(&store, leaf, &path.untrusted, |context| {
        Ok(if context.verify_cert()? { Ok(()) } else { Err(refusal(context, purpose, target)) })
    })
}

/// `X509_V_ERR_INVALID_CA` in OpenSSL 3 (`X509_check_ca` refused an issuer).
const INVALID_CA: i32 = 79;
/// `X509_V_ERR_INVALID_PURPOSE`.
const INVALID_PURPOSE: i32 = 26;

/// The person-facing reason of a failed validation for `purpose`: OpenSSL's error string, the
/// depth and which certificate, and for the two errors whose string does not name the rule,
/// the rule.
fn refusal(context: &X509StoreContextRef, purpose: Option<X509PurposeId>, target: &str) -> String {
    let error = context.error();
    let depth = context.error_depth();
    let cert = context.current_cert();
    let which = if depth == 0 {
        target.to_owned()
    } else {
        match cert.and_then(|cert| cert.subject_name().to_der().ok()) {
            Some(subject) => format!("the CA \"{}\"", readable_subject(&subject)),
            None => "a CA of the chain".to_owned(),
        }
    };
    let rule = match error.as_raw() {
        INVALID_CA => cert.map_or(String::new(), not_a_ca),
        INVALID_PURPOSE => unsuitable(depth, purpose),
        _ => String::new(),
    };
    format!("{REFUSED}: {}{rule} (certificate at depth {depth}, {which})", error.error_string())
}

/// Why OpenSSL's `X509_check_ca` refused `cert` as an issuer: its keyUsage lacks keyCertSign,
/// or its basicConstraints does not say cA (read here only to word the message).
fn not_a_ca(cert: &X509Ref) -> String {
    let Some(cert) = cert.to_der().ok().and_then(|der| Certificate::from_der(&der).ok()) else {
        return String::new();
    };
    let tbs = cert.tbs_certificate();
    let key_usage = tbs.get_extension::<KeyUsage>().ok().flatten();
    if key_usage.is_some_and(|(_, ku)| !ku.key_cert_sign()) {
        return ": its keyUsage lacks keyCertSign".to_owned();
    }
    match tbs.get_extension::<BasicConstraints>().ok().flatten() {
        Some((_, bc)) if bc.ca => String::new(),
        _ => ": its basicConstraints does not say cA=TRUE".to_owned(),
    }
}

/// What OpenSSL's purpose check asks of the certificate at `depth` for `purpose`.
fn unsuitable(depth: u32, purpose: Option<X509PurposeId>) -> String {
    let (eku, key_usage) = match purpose {
        Some(p) if p == X509PurposeId::SSL_SERVER => {
            ("serverAuth", "digitalSignature, keyEncipherment or keyAgreement")
        }
        Some(p) if p == X509PurposeId::SSL_CLIENT => ("clientAuth", "digitalSignature or keyAgreement"),
        _ => return String::new(),
    };
    if depth == 0 {
        format!(": for {eku}, the new certificate's keyUsage must include {key_usage}")
    } else {
        format!(": a CA's extendedKeyUsage, if present, must include {eku}, which the new certificate has")
    }
}

/// `subject` (a Name's DER) as RFC 4514 text, control characters replaced, cut to
/// [`MAX_SUBJECT_CHARS`] characters.
fn readable_subject(subject: &[u8]) -> String {
    let Ok(name) = x509_cert::name::Name::from_der(subject) else {
        return "(a subject that does not parse)".to_owned();
    };
    let text = name.to_string();
    let mut out: String = text.chars().take(MAX_SUBJECT_CHARS).map(|c| if c.is_control() { '?' } else { c }).collect();
    if text.chars().count() > MAX_SUBJECT_CHARS {
        out.push('…');
    }
    out
}

/// [`verify_certificate`] with the extended key usages read from the certificate itself.
/// Verifies the signature of a CRL (DER) with the public key of the issuing CA of `ca`.
pub(crate) fn verify_crl_signature(crl: &[u8], ca: &CaBundle) -> Result<(), String> {
    let crl = openssl::x509::X509Crl::from_der(crl).map_err(|e| format!("OpenSSL does not read the CRL: {e}"))?;
    let issuer = X509::from_der(ca.issuing().der()).map_err(|e| format!("OpenSSL does not read the CA: {e}"))?;
    let key = issuer.public_key().map_err(|e| format!("the CA's public key: {e}"))?;
    match crl.verify(&key) {
        Ok(true) => Ok(()),
        Ok(false) => Err("the CRL's signature does not verify with the CA's public key".into()),
        Err(e) => Err(format!("the CRL's signature could not be checked: {e}")),
    }
}

/// Whether the certificate `leaf_der` was signed by the CA certificate `ca_der`: its issuer
/// name is the CA's subject and its signature verifies with the CA's public key. `Err` says
/// why not.
pub fn issued_by(leaf_der: &[u8], ca_der: &[u8]) -> Result<(), String> {
    let leaf = X509::from_der(leaf_der).map_err(|e| format!("the certificate does not parse: {e}"))?;
    let ca = X509::from_der(ca_der).map_err(|e| format!("the CA certificate does not parse: {e}"))?;
    let named = leaf.issuer_name().to_der().ok() == ca.subject_name().to_der().ok();
    let key = ca.public_key().map_err(|e| format!("the CA's public key: {e}"))?;
    match (named, leaf.verify(&key)) {
        (true, Ok(true)) => Ok(()),
        (false, _) => Err("its issuer is not the issuer's CA".into()),
        (true, _) => Err("its signature does not verify with the issuer's CA key".into()),
    }
}

#[cfg(test)]
pub(crate) fn verify_issued(leaf_der: &[u8], ca: &CaBundle, at: SystemTime) -> Result<(), String> {
    let unreadable = |e: der::Error| format!("the new certificate does not parse: {e}");
    let cert = Certificate::from_der(leaf_der).map_err(unreadable)?;
    let ekus = cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>()
        .map_err(unreadable)?
        .map(|(_, e)| e.0);
    verify_certificate(leaf_der, ca, at, &ekus.unwrap_or_default())
}

/// The OpenSSL purposes to validate for, from the leaf's extendedKeyUsage (see the module doc).
/// `None` is a validation without a purpose.
fn purposes(ext_key_usage: &[ObjectIdentifier]) -> Vec<Option<X509PurposeId>> {
    let has = |oid| ext_key_usage.contains(&oid);
    match (has(eku::SERVER_AUTH), has(eku::CLIENT_AUTH)) {
        (true, true) => vec![Some(X509PurposeId::SSL_SERVER), Some(X509PurposeId::SSL_CLIENT)],
        (true, false) => vec![Some(X509PurposeId::SSL_SERVER)],
        (false, true) => vec![Some(X509PurposeId::SSL_CLIENT)],
        (false, false) => vec![None],
    }
}

/// Seconds since the epoch at which to validate: one second before `at` (OpenSSL's `notAfter`
/// is exclusive; see the module doc), never before the epoch.
fn verification_time(at: SystemTime) -> i64 {
    unix_seconds(at).saturating_sub(1).max(0)
}

/// Whole seconds since the epoch (0 before it), as OpenSSL takes a verification time.
fn unix_seconds(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair,
        KeyUsagePurpose, NameConstraints, PKCS_RSA_SHA256,
    };
    use time::OffsetDateTime;

    use super::*;

    /// Whole seconds from now, as rcgen takes them and as certificates store them.
    fn at(days: i64, secs: i64) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        OffsetDateTime::from_unix_timestamp(now + days * 86_400 + secs).unwrap()
    }

    /// A CA: its parameters (to sign with), key and PEM.
    struct Ca {
        params: CertificateParams,
        key: KeyPair,
        pem: String,
    }

    impl Ca {
        /// A CA named `cn`, valid from yesterday for a year, adjusted by `edit`, signed by
        /// `parent` (self-signed without one), with a P-256 key unless `key` is given.
        fn new(cn: &str, parent: Option<&Ca>, edit: impl FnOnce(&mut CertificateParams)) -> Self {
            Self::with_key(cn, parent, KeyPair::generate().unwrap(), edit)
        }

        /// [`Ca::new`] with `key`.
        fn with_key(cn: &str, parent: Option<&Ca>, key: KeyPair, edit: impl FnOnce(&mut CertificateParams)) -> Self {
            let mut params = CertificateParams::new(Vec::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.not_before = at(-1, 0);
            params.not_after = at(365, 0);
            edit(&mut params);
            let cert = match parent {
                Some(parent) => params.signed_by(&key, &parent.issuer()).unwrap(),
                None => params.self_signed(&key).unwrap(),
            };
            Self { pem: cert.pem(), params, key }
        }

        /// This CA as rcgen's signer.
        fn issuer(&self) -> Issuer<'_, &KeyPair> {
            Issuer::from_params(&self.params, &self.key)
        }
    }

    /// A leaf for `dns` with `ekus`, valid from a minute ago for 30 days, signed by `issuer`;
    /// its DER and its `notAfter`.
    fn leaf_with(
        dns: &str,
        ekus: &[ExtendedKeyUsagePurpose],
        issuer: &Issuer<'_, &KeyPair>,
        edit: impl FnOnce(&mut CertificateParams),
    ) -> (Vec<u8>, SystemTime) {
        let mut params = CertificateParams::new(vec![dns.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, dns);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = ekus.to_vec();
        params.not_before = at(0, -60);
        params.not_after = at(30, 0);
        edit(&mut params);
        let not_after = SystemTime::from(params.not_after);
        let cert = params.signed_by(&KeyPair::generate().unwrap(), issuer).unwrap();
        (cert.der().to_vec(), not_after)
    }

    /// [`leaf_with`] unchanged, signed by `issuer`.
    fn leaf(dns: &str, ekus: &[ExtendedKeyUsagePurpose], issuer: &Ca) -> (Vec<u8>, SystemTime) {
        leaf_with(dns, ekus, &issuer.issuer(), |_| {})
    }

    /// `tls.crt` from `chain` (issuing CA first), `ca.crt` from `root`.
    fn bundle(chain: &[&Ca], root: Option<&Ca>) -> CaBundle {
        let tls: String = chain.iter().map(|c| c.pem.as_str()).collect();
        CaBundle::parse(tls.as_bytes(), root.map(|r| r.pem.as_bytes())).unwrap()
    }

    /// serverAuth.
    const SERVER: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ServerAuth];
    /// clientAuth.
    const CLIENT: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ClientAuth];
    /// serverAuth and clientAuth.
    const BOTH: &[ExtendedKeyUsagePurpose] =
        &[ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];

    /// `verify_issued` of `leaf` under `ca` at the leaf's `notAfter`, its error expected.
    fn refused(leaf: (Vec<u8>, SystemTime), ca: &CaBundle) -> String {
        let err = verify_issued(&leaf.0, ca, leaf.1).unwrap_err();
        assert!(err.starts_with(REFUSED), "{err}");
        err
    }

    /// Test 1: good leaves pass under a root, a two-level chain and a partial chain; the same
    /// leaf under another root does not.
    #[test]
    fn good_leaves_validate_under_a_root_and_under_a_two_level_chain() {
        let root = Ca::new("Root", None, |_| {});
        for ekus in [SERVER, CLIENT, BOTH, &[ExtendedKeyUsagePurpose::CodeSigning], &[]] {
            let (der, not_after) = leaf("a.example.com", ekus, &root);
            assert_eq!(verify_issued(&der, &bundle(&[&root], None), not_after), Ok(()), "{ekus:?}");
        }
        let intermediate = Ca::new("Intermediate", Some(&root), |_| {});
        let (der, not_after) = leaf("a.example.com", BOTH, &intermediate);
        // tls.crt = intermediate, ca.crt = root; then the root in tls.crt too.
        assert_eq!(verify_issued(&der, &bundle(&[&intermediate], Some(&root)), not_after), Ok(()));
        assert_eq!(verify_issued(&der, &bundle(&[&intermediate, &root], None), not_after), Ok(()));
        // No root at all: the intermediate anchors the path (X509_V_FLAG_PARTIAL_CHAIN).
        assert_eq!(verify_issued(&der, &bundle(&[&intermediate], None), not_after), Ok(()));
        // The same leaf against an unrelated root is refused: the check can fail.
        let other = Ca::new("Other Root", None, |_| {});
        let err = refused((der.clone(), not_after), &bundle(&[&intermediate], Some(&other)));
        assert_eq!(
            err,
            "RFC 5280 path validation refused it: unable to get local issuer certificate (certificate at depth 1, \
             the CA \"CN=Intermediate\")"
        );
        // A root of the same name with another key: its signature on the intermediate fails.
        let other = Ca::new("Root", None, |_| {});
        let err = refused((der, not_after), &bundle(&[&intermediate], Some(&other)));
        assert!(err.contains("certificate signature failure (certificate at depth 1"), "{err}");
    }

    /// Test 2: a DNS name in an excluded subtree, and one outside the permitted subtree.
    #[test]
    fn names_outside_the_name_constraints_are_refused() {
        let root = Ca::new("Root", None, |p| {
            p.name_constraints = Some(NameConstraints {
                permitted_subtrees: vec![GeneralSubtree::DnsName("example.com".into())],
                excluded_subtrees: vec![GeneralSubtree::DnsName("secret.example.com".into())],
            })
        });
        let ca = bundle(&[&root], None);
        let inside = leaf("a.example.com", SERVER, &root);
        assert_eq!(verify_issued(&inside.0, &ca, inside.1), Ok(()));
        let err = refused(leaf("db.secret.example.com", SERVER, &root), &ca);
        assert_eq!(
            err,
            "RFC 5280 path validation refused it: excluded subtree violation (certificate at depth 0, the new \
             certificate)"
        );
        let err = refused(leaf("a.example.org", SERVER, &root), &ca);
        assert!(err.contains("permitted subtree violation") && err.contains("depth 0"), "{err}");
    }

    /// Test 3: root with pathLen 0 → intermediate → leaf.
    #[test]
    fn a_path_longer_than_a_pathlen_allows_is_refused() {
        let root = Ca::new("Root", None, |p| p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0)));
        let intermediate = Ca::new("Intermediate", Some(&root), |_| {});
        let err = refused(leaf("a.example.com", SERVER, &intermediate), &bundle(&[&intermediate], Some(&root)));
        assert_eq!(
            err,
            "RFC 5280 path validation refused it: path length constraint exceeded (certificate at depth 2, the \
             CA \"CN=Root\")"
        );
        // pathlen 1 allows it.
        let root = Ca::new("Root", None, |p| p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1)));
        let intermediate = Ca::new("Intermediate", Some(&root), |_| {});
        let good = leaf("a.example.com", SERVER, &intermediate);
        assert_eq!(verify_issued(&good.0, &bundle(&[&intermediate], Some(&root)), good.1), Ok(()));
    }

    /// Test 4: an intermediate whose keyUsage lacks keyCertSign (with and without a purpose),
    /// and one whose basicConstraints says it is no CA.
    #[test]
    fn a_ca_whose_key_usage_lacks_key_cert_sign_is_refused() {
        let root = Ca::new("Root", None, |_| {});
        let intermediate = Ca::new("Intermediate", Some(&root), |p| {
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign]
        });
        for ekus in [SERVER, &[]] {
            let err = refused(leaf("a.example.com", ekus, &intermediate), &bundle(&[&intermediate], Some(&root)));
            assert_eq!(
                err,
                "RFC 5280 path validation refused it: invalid CA certificate: its keyUsage lacks keyCertSign \
                 (certificate at depth 1, the CA \"CN=Intermediate\")",
                "{ekus:?}"
            );
        }
        let not_ca = Ca::new("Intermediate", Some(&root), |p| p.is_ca = IsCa::ExplicitNoCa);
        let err = refused(leaf("a.example.com", SERVER, &not_ca), &bundle(&[&not_ca], Some(&root)));
        assert!(err.contains("invalid CA certificate: its basicConstraints does not say cA=TRUE"), "{err}");
    }

    /// Test 5: a CA whose EKU lacks the leaf's: clientAuth alone, and the second purpose of a
    /// serverAuth+clientAuth leaf.
    #[test]
    fn a_ca_whose_extended_key_usage_lacks_the_leafs_is_refused() {
        let root = Ca::new("Root", None, |p| p.extended_key_usages = SERVER.to_vec());
        let ca = bundle(&[&root], None);
        let server = leaf("a.example.com", SERVER, &root);
        assert_eq!(verify_issued(&server.0, &ca, server.1), Ok(()));
        let err = refused(leaf("a.example.com", CLIENT, &root), &ca);
        assert!(err.contains("unsuitable certificate purpose") && err.contains("extendedKeyUsage"), "{err}");
        assert!(err.contains("depth 1, the CA \"CN=Root\""), "{err}");
        // Both serverAuth and clientAuth: the second purpose is checked too.
        let err = refused(leaf("a.example.com", BOTH, &root), &ca);
        assert!(err.contains("unsuitable certificate purpose") && err.contains("depth 1"), "{err}");
        // An intermediate's EKU counts as much as the root's.
        let root = Ca::new("Root", None, |_| {});
        let intermediate = Ca::new("Intermediate", Some(&root), |p| p.extended_key_usages = CLIENT.to_vec());
        let err = refused(leaf("a.example.com", BOTH, &intermediate), &bundle(&[&intermediate], Some(&root)));
        assert!(err.contains("unsuitable certificate purpose") && err.contains("\"CN=Intermediate\""), "{err}");
    }

    /// What the bundled OpenSSL does with a CA whose only extended key usage is
    /// anyExtendedKeyUsage (cert-manager's CA issuer signs under it): pinned so that a change
    /// of OpenSSL that changes the answer is seen (docs/policy.md says which it is).
    #[test]
    fn a_ca_whose_only_extended_key_usage_is_any() {
        let root = Ca::new("Root", None, |p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any]);
        let ca = bundle(&[&root], None);
        let server = leaf("a.example.com", SERVER, &root);
        let err = refused(server, &ca);
        assert!(err.contains("unsuitable certificate purpose") && err.contains("depth 1"), "{err}");
        let plain = leaf("a.example.com", &[], &root);
        assert_eq!(verify_issued(&plain.0, &ca, plain.1), Ok(()), "no purpose, no EKU check");
    }

    /// Test 6: an intermediate that expires before the leaf; one that expires with it is fine.
    #[test]
    fn a_ca_that_expires_before_the_leaf_is_refused() {
        let root = Ca::new("Root", None, |_| {});
        let intermediate = Ca::new("Intermediate", Some(&root), |p| p.not_after = at(10, 0));
        let ca = bundle(&[&intermediate], Some(&root));
        let err = refused(leaf("a.example.com", SERVER, &intermediate), &ca);
        assert_eq!(
            err,
            "RFC 5280 path validation refused it: certificate has expired (certificate at depth 1, the CA \
             \"CN=Intermediate\")"
        );
        // A leaf clamped to the CA's expiry (same notAfter) is fine; one second more is not.
        let clamped = leaf_with("a.example.com", SERVER, &intermediate.issuer(), |p| p.not_after = at(10, 0));
        assert_eq!(verify_issued(&clamped.0, &ca, clamped.1), Ok(()));
        let over = leaf_with("a.example.com", SERVER, &intermediate.issuer(), |p| p.not_after = at(10, 1));
        assert!(refused(over, &ca).contains("certificate has expired (certificate at depth 1"));
    }

    /// Test 7: a leaf that names the root (and its key identifier) but is signed by another key.
    #[test]
    fn a_leaf_signed_by_another_key_is_refused() {
        let root = Ca::new("Root", None, |_| {});
        let impostor = KeyPair::generate().unwrap();
        // The root's name and key identifier, another key: only the signature tells them apart.
        let mut params = root.params.clone();
        params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(root.params.key_identifier(&root.key));
        let issuer = Issuer::new(params, &impostor);
        let err = refused(leaf_with("a.example.com", SERVER, &issuer, |_| {}), &bundle(&[&root], None));
        assert_eq!(
            err,
            "RFC 5280 path validation refused it: certificate signature failure (certificate at depth 0, the new \
             certificate)"
        );
    }

    /// A CA subject of 500 characters is quoted cut to [`MAX_SUBJECT_CHARS`].
    #[test]
    fn long_subjects_are_cut() {
        let long = "x".repeat(500);
        let root = Ca::new(&long, None, |p| p.not_after = at(10, 0));
        let err = refused(leaf("a.example.com", SERVER, &root), &bundle(&[&root], None));
        assert!(err.contains(&format!("\"CN={}…\")", "x".repeat(MAX_SUBJECT_CHARS - 3))), "{err}");
        assert!(err.len() < 400, "{err}");
    }

    /// Microseconds per `verify_issued`, median of many runs, for a P-256 and an RSA-2048 CA.
    /// `cargo test -p ferrum --lib x509::verify::tests::timing -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn timing() {
        /// The median of `runs` timings of `f`, in microseconds.
        fn median_micros(runs: usize, mut f: impl FnMut()) -> f64 {
            let mut times: Vec<Duration> = (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    f();
                    start.elapsed()
                })
                .collect();
            times.sort();
            times[runs / 2].as_secs_f64() * 1e6
        }
        for (name, key) in
            [("P-256", KeyPair::generate().unwrap()), ("RSA-2048", KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap())]
        {
            let root = Ca::with_key("Root", None, key, |_| {});
            let ca = bundle(&[&root], None);
            for (label, ekus) in [("serverAuth", SERVER), ("serverAuth+clientAuth", BOTH)] {
                let (der, not_after) = leaf("a.example.com", ekus, &root);
                let total = median_micros(5000, || assert_eq!(verify_issued(&der, &ca, not_after), Ok(())));
                let ca_parse = median_micros(5000, || assert!(Path::of(&ca).is_ok()));
                let leaf_parse = median_micros(5000, || assert!(X509::from_der(&der).is_ok()));
                println!(
                    "{name} CA, {label} P-256 leaf: verify_issued {total:.0} µs with the CA's parse cached \
                     (parsing the CA would add {ca_parse:.0} µs; parsing the leaf, included, {leaf_parse:.0} µs)"
                );
            }
        }
    }
}
