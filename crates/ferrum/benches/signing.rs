//! Signing micro-benchmark (issue 5, item 3; issue 12, "the cost"): Ferrum's whole signing
//! path next to the crypto floor, for P-256, Ed25519 and RSA-2048 request keys and P-256 and
//! RSA-2048 CAs, and what guarded issuance and the issuer policy add to it.
//!
//! Every row signs one request (CN `web.bench.svc.cluster.local`; SANs that name, plus
//! `bench.example.com` and `10.96.0.10`) with one CA, four ways:
//!
//! - **floor**: the cryptography alone, with aws-lc-rs — a verify of the CSR's signature with its
//!   own key (same key type and size, inputs already extracted) plus a sign, with a CA key of the
//!   same type, of a message as long as the TBSCertificate Ferrum produces for that row.
//! - **unguarded**: Ferrum's path without the guards of issue 12 — [`parse_csr`] (PEM, DER,
//!   algorithm and key checks, the CSR's self-signature), [`certificate_template`] (the signing
//!   profile) and `IssuedCertificate::sign_with_ca_unguarded` (TBS assembly, random serial, the
//!   CA's signature, certificate DER and the chain PEM), a baseline compiled only with the
//!   crate's `bench-internals` feature, which the crate's dev-dependency on itself turns on.
//! - **guarded**: what the `ca` backend does per request once the CA is loaded — the same, with
//!   [`sign_with_ca`], which checks the CA chain's name constraints and path lengths before
//!   signing and validates the certificate with OpenSSL's RFC 5280 path validation after.
//! - **guarded + policy**: the guarded path plus what the controller does with the issuer's
//!   `spec.policy` per request: [`IssuerPolicy::compile`] and [`CompiledPolicy::check`] of a
//!   policy with `{namespace}` name patterns, IP ranges, key, lifetime and usage rules, which the
//!   request satisfies (namespace `bench`).
//!
//! The [`CaBundle`] and the [`SoftwareKey`] are parsed once, outside the loop, as the backend
//! caches them (and so is the OpenSSL form of the CA's chain, which the bundle keeps after its
//! first validation). The CAs: self-signed P-256 and RSA-2048 roots; the same with name
//! constraints (permitted DNS subtrees `svc.cluster.local` and `example.com`, IP `10.0.0.0/8`,
//! excluded `kube-system.svc.cluster.local`), which the guard's constraint check and OpenSSL's
//! then have to walk; and a P-256 intermediate under a P-256 root, a path of two signatures.
//!
//! Run with `cargo bench -p ferrum --bench signing`. After criterion's own report the bench
//! measures each row once more with batches of the four contenders interleaved (see
//! [`paired`]) and prints Markdown tables: criterion's medians (read back from its
//! `estimates.json` files); the interleaved ratios guarded/unguarded and (guarded +
//! policy)/unguarded (median and interquartile range over the repetitions) against issue 12's
//! target of 10% and guarded/floor against issue 5's 1.5x; per CA, the parts of the OpenSSL
//! validation timed alone (see [`breakdown`]); and the policy's compile and check timed alone
//! (see [`policy_steps`]).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, UnparsedPublicKey, VerificationAlgorithm};
use criterion::{BenchmarkId, Criterion};
use ferrum::IssuerScope;
use ferrum::policy::{AllowedKey, AllowedNames, CompiledPolicy, IssuerPolicy, KeyAlgorithmName, PolicyInput};
use ferrum::x509::{
    CaBundle, IssuedCertificate, PublishedUrls, RequestedProfile, SoftwareKey, certificate_template, parse_csr,
    sign_with_ca,
};
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509StoreContext};
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, GeneralSubtree, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, NameConstraints, RsaKeySize, SignatureAlgorithm,
};
use x509_parser::prelude::{FromDer, X509CertificationRequest};

/// Issue 5's target: the (guarded) signing path within this factor of the crypto floor.
const TARGET_RATIO: f64 = 1.5;

/// Issue 12's target: guarded issuance plus the policy within this factor of the unguarded
/// signing path.
const GUARD_TARGET: f64 = 1.10;

/// How long the interleaved measurement runs per row.
const PAIRED_TIME: Duration = Duration::from_secs(4);

/// Criterion's group name; results land in `<output>/signing/<contender>/<row>/`.
const GROUP: &str = "signing";

/// The requesting namespace, as the policy's `{namespace}` sees it.
const NAMESPACE: &str = "bench";

/// The request's commonName, also its first DNS SAN.
const COMMON_NAME: &str = "web.bench.svc.cluster.local";

/// The request's subjectAltNames (rcgen makes the address an iPAddress SAN).
const SANS: [&str; 3] = [COMMON_NAME, "bench.example.com", "10.96.0.10"];

/// A CA as the backend holds it, plus the same key loaded straight into aws-lc-rs for the floor.
struct Ca {
    /// As shown in the tables, e.g. `P-256 +NC`.
    name: &'static str,
    /// As in benchmark ids and directory names, e.g. `p256nc`.
    id: &'static str,
    /// The parsed `tls.crt` (and `ca.crt`).
    bundle: CaBundle,
    /// The parsed `tls.key`.
    key: SoftwareKey,
    /// The same private key, for the floor's bare sign.
    floor_key: FloorKey,
    /// The OpenSSL form of the chain, for [`breakdown`].
    openssl: OpenSslChain,
}

/// A CA's certificates as OpenSSL objects, for [`breakdown`].
struct OpenSslChain {
    /// The trust anchor.
    root: X509,
    /// The certificates between the root and the leaf.
    untrusted: Stack<X509>,
    /// The certificate that signs the leaf.
    issuer: X509,
}

/// What a CA looks like besides its key.
#[derive(Clone, Copy)]
enum Shape {
    /// A self-signed root without constraints.
    Root,
    /// A self-signed root with name constraints that admit the bench's names.
    Constrained,
    /// An intermediate (this key) under a self-signed P-256 root (`ca.crt`).
    Intermediate,
}

/// A CA private key loaded directly into aws-lc-rs.
enum FloorKey {
    /// ECDSA P-256 with SHA-256 (what `SoftwareKey` picks for P-256).
    P256(EcdsaKeyPair),
    /// RSA PKCS#1 v1.5 with SHA-256 (what `SoftwareKey` picks for 2048-bit keys).
    Rsa(RsaKeyPair),
}

impl FloorKey {
    /// A bare aws-lc-rs signature over `message`.
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Self::P256(k) => k.sign(&rng, message).expect("ECDSA sign").as_ref().to_vec(),
            Self::Rsa(k) => {
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(&sig::RSA_PKCS1_SHA256, &rng, message, &mut out).expect("RSA sign");
                out
            }
        }
    }

    /// The aws-lc-rs algorithm that verifies this key's signatures, for [`breakdown`].
    fn verify_algorithm(&self) -> &'static dyn VerificationAlgorithm {
        match self {
            Self::P256(_) => &sig::ECDSA_P256_SHA256_ASN1,
            Self::Rsa(_) => &sig::RSA_PKCS1_2048_8192_SHA256,
        }
    }
}

/// A certificate request, as PEM for Ferrum and pre-split for the floor's verify.
struct Request {
    /// Key type, e.g. `Ed25519`.
    name: &'static str,
    /// The CSR PEM, as found in `spec.request`.
    pem: Vec<u8>,
    /// The aws-lc-rs algorithm that verifies this CSR's signature.
    verify: &'static dyn VerificationAlgorithm,
    /// DER of the CertificationRequestInfo (the signed bytes).
    info: Vec<u8>,
    /// The `subjectPublicKey` bits.
    public_key: Vec<u8>,
    /// The signature bits.
    signature: Vec<u8>,
}

/// One row of the tables: a request key type signed by a CA.
struct Row<'a> {
    /// `<request>-csr_<ca>-ca`, the criterion parameter.
    id: String,
    /// The request signed in this row.
    request: &'a Request,
    /// The CA that signs it.
    ca: &'a Ca,
    /// The floor's message: as long as the TBSCertificate Ferrum signs for this row.
    message: Vec<u8>,
    /// A certificate the guarded path issued for this row, DER, for [`breakdown`].
    leaf: Vec<u8>,
}

/// What every row shares: the request's profile, the issuer's URLs and its policy.
struct Setup {
    /// `spec.duration`, `spec.isCA`, `spec.usages`: all cert-manager's defaults.
    profile: RequestedProfile,
    /// No CRL or OCSP URLs.
    urls: PublishedUrls,
    /// The issuer's `spec.policy`, as the controller holds it (compiled per request).
    policy: IssuerPolicy,
}

/// The four ways a row's request is signed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Contender {
    /// The cryptography alone.
    Floor,
    /// Ferrum without the guards.
    Unguarded,
    /// Ferrum as it issues: [`sign_with_ca`].
    Guarded,
    /// Ferrum as it issues, with the issuer's policy.
    Policy,
}

impl Contender {
    /// All four, in the order of the tables.
    const ALL: [Self; 4] = [Self::Floor, Self::Unguarded, Self::Guarded, Self::Policy];

    /// Criterion's function id.
    fn id(self) -> &'static str {
        match self {
            Self::Floor => "floor",
            Self::Unguarded => "unguarded",
            Self::Guarded => "guarded",
            Self::Policy => "guarded_policy",
        }
    }

    /// One request of this contender for `row`.
    fn run(self, row: &Row<'_>, setup: &Setup) {
        match self {
            Self::Floor => {
                black_box(floor_path(black_box(row.request), row.ca, black_box(&row.message)));
            }
            Self::Unguarded => {
                black_box(ferrum_path(black_box(row.request), row.ca, setup, Guards::Off));
            }
            Self::Guarded => {
                black_box(ferrum_path(black_box(row.request), row.ca, setup, Guards::On));
            }
            Self::Policy => {
                black_box(ferrum_path(black_box(row.request), row.ca, setup, Guards::OnWithPolicy));
            }
        }
    }
}

/// Which of issue 12's checks [`ferrum_path`] runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Guards {
    /// None: the baseline.
    Off,
    /// The CA's constraints and the path validation ([`sign_with_ca`]).
    On,
    /// Those and the issuer's policy.
    OnWithPolicy,
}

/// A self-signed CA certificate's parameters, named after `name`, with `shape`'s constraints.
fn ca_params(cn: &str, shape: Shape) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    if let Shape::Constrained = shape {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![
                GeneralSubtree::DnsName("svc.cluster.local".into()),
                GeneralSubtree::DnsName("example.com".into()),
                GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([10, 0, 0, 0], 8)),
            ],
            excluded_subtrees: vec![GeneralSubtree::DnsName("kube-system.svc.cluster.local".into())],
        });
    }
    params
}

/// A CA with `key` of `shape`, loaded the way the `ca` backend loads its Secret.
fn ca(name: &'static str, id: &'static str, key: KeyPair, shape: Shape) -> Ca {
    let params = ca_params(&format!("Ferrum bench CA ({name})"), shape);
    let (tls_crt, ca_crt) = match shape {
        Shape::Root | Shape::Constrained => (params.self_signed(&key).expect("self-signed CA").pem(), None),
        Shape::Intermediate => {
            let root_key = self::key(&rcgen::PKCS_ECDSA_P256_SHA256);
            let root_params = ca_params("Ferrum bench root (P-256)", Shape::Root);
            let root = root_params.self_signed(&root_key).expect("self-signed root");
            let issuer = Issuer::from_params(&root_params, &root_key);
            (params.signed_by(&key, &issuer).expect("intermediate").pem(), Some(root.pem()))
        }
    };
    let bundle = CaBundle::parse(tls_crt.as_bytes(), ca_crt.as_deref().map(str::as_bytes)).expect("CaBundle::parse");
    let soft = SoftwareKey::from_pem(key.serialize_pem().as_bytes()).expect("SoftwareKey::from_pem");
    let pkcs8 = key.serialize_der();
    let floor_key = if key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
        FloorKey::P256(EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8).expect("P-256 key"))
    } else {
        FloorKey::Rsa(RsaKeyPair::from_pkcs8(&pkcs8).expect("RSA key"))
    };
    let issuer = X509::from_pem(tls_crt.as_bytes()).expect("OpenSSL reads the CA");
    let root = X509::from_pem(ca_crt.as_deref().unwrap_or(&tls_crt).as_bytes()).expect("OpenSSL reads the root");
    let mut untrusted = Stack::new().expect("stack");
    if ca_crt.is_some() {
        untrusted.push(issuer.clone()).expect("push");
    }
    Ca { name, id, bundle, key: soft, floor_key, openssl: OpenSslChain { root, untrusted, issuer } }
}

/// A CSR like cert-manager's for a service's certificate (CN plus DNS and IP SANs), signed by
/// `key`.
fn request(name: &'static str, key: KeyPair, verify: &'static dyn VerificationAlgorithm) -> Request {
    let mut params = CertificateParams::new(SANS.map(str::to_owned).to_vec()).expect("CSR params");
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, COMMON_NAME);
    let csr = params.serialize_request(&key).expect("CSR");
    let pem = csr.pem().expect("CSR PEM").into_bytes();
    let (_, parsed) = X509CertificationRequest::from_der(csr.der()).expect("CSR parses");
    Request {
        name,
        verify,
        info: parsed.certification_request_info.raw.to_vec(),
        public_key: parsed.certification_request_info.subject_pki.subject_public_key.data.to_vec(),
        signature: parsed.signature_value.data.to_vec(),
        pem,
    }
}

/// A realistic tenant policy that the bench's requests satisfy.
fn policy() -> IssuerPolicy {
    let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    IssuerPolicy {
        allowed_names: Some(AllowedNames {
            dns_names: strings(&[
                "*.{namespace}.svc.cluster.local",
                "{namespace}.example.com",
                "*.{namespace}.example.com",
            ]),
            ip_ranges: strings(&["10.96.0.0/12", "fd00::/8"]),
            ..AllowedNames::default()
        }),
        allowed_keys: vec![
            AllowedKey { algorithm: KeyAlgorithmName::Ecdsa, min_size: Some(256) },
            AllowedKey { algorithm: KeyAlgorithmName::Rsa, min_size: Some(2048) },
            AllowedKey { algorithm: KeyAlgorithmName::Ed25519, min_size: None },
        ],
        min_duration: Some("1h".to_owned()),
        max_duration: Some("8760h".to_owned()),
        allowed_usages: strings(&["digital signature", "key encipherment", "server auth", "client auth"]),
        ..IssuerPolicy::default()
    }
}

/// A key type as it appears in benchmark ids and directory names: `P-256` → `p256`.
fn slug(name: &str) -> String {
    name.to_lowercase().replace('-', "")
}

/// A fresh key pair for `alg`.
fn key(alg: &'static SignatureAlgorithm) -> KeyPair {
    KeyPair::generate_for(alg).expect("key generation")
}

/// A fresh RSA-2048 key pair (aws-lc-rs key generation, through rcgen).
fn rsa2048() -> KeyPair {
    KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048).expect("RSA key generation")
}

/// Ferrum's path for one request: parse and check the CSR, apply the signing profile (and with
/// [`Guards::OnWithPolicy`] compile and apply the issuer's policy), sign (guarded unless
/// [`Guards::Off`]).
fn ferrum_path(request: &Request, ca: &Ca, setup: &Setup, guards: Guards) -> IssuedCertificate {
    let csr = parse_csr(&request.pem).expect("parse_csr");
    let template = certificate_template(&setup.profile, &csr).expect("certificate_template");
    let now = SystemTime::now();
    match guards {
        Guards::Off => IssuedCertificate::sign_with_ca_unguarded(&ca.bundle, &ca.key, &template, &setup.urls, now)
            .expect("sign_with_ca_unguarded"),
        Guards::On => sign_with_ca(&ca.bundle, &ca.key, &template, &setup.urls, now).expect("sign_with_ca"),
        Guards::OnWithPolicy => {
            let policy: CompiledPolicy = setup.policy.compile(IssuerScope::Namespaced).expect("the policy compiles");
            let input = PolicyInput { namespace: NAMESPACE, namespace_labels: None, csr: &csr, template: &template };
            let outcome = policy.check(&input).expect("the policy allows the request");
            // The controller would cut the lifetime to `outcome.duration`; maxDuration is longer
            // than the request's, so the template stands as it is.
            assert_eq!(outcome.duration, template.duration(), "the policy keeps the lifetime");
            black_box(outcome.warnings);
            sign_with_ca(&ca.bundle, &ca.key, &template, &setup.urls, now).expect("sign_with_ca")
        }
    }
}

/// The crypto floor for one request: verify the CSR's signature, sign a TBS-sized message.
fn floor_path(request: &Request, ca: &Ca, message: &[u8]) -> Vec<u8> {
    UnparsedPublicKey::new(request.verify, &request.public_key)
        .verify(&request.info, &request.signature)
        .expect("CSR signature verifies");
    ca.floor_key.sign(message)
}

/// The first certificate of `chain_pem`, DER.
fn leaf_der(chain_pem: &str) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem.as_bytes()).expect("chain PEM");
    pem.contents
}

/// The length of the TBSCertificate of `der`.
fn tbs_len(der: &[u8]) -> usize {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("issued certificate parses");
    cert.tbs_certificate.as_ref().len()
}

/// Where criterion writes its estimates, resolved the way criterion does (`CRITERION_HOME`,
/// then `CARGO_TARGET_DIR`), else from this executable's place in `target/<profile>/deps/`,
/// so the summary reads exactly what this run wrote.
fn output_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Path::new(&target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|target| target.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The median time per iteration, in ns, from `<dir>/signing/<function>/<row>/new/estimates.json`.
fn criterion_median_ns(dir: &Path, function: &str, row: &str) -> Option<f64> {
    let path = dir.join(GROUP).join(function).join(row).join("new").join("estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// A median and the interquartile range of a sample.
#[derive(Clone, Copy)]
struct Spread {
    /// The 25th percentile.
    q1: f64,
    /// The median.
    median: f64,
    /// The 75th percentile.
    q3: f64,
}

impl Spread {
    /// The quartiles of `values` (not empty).
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Self { q1: at(0.25), median: at(0.5), q3: at(0.75) }
    }

    /// `1.23x (1.20–1.26)`.
    fn ratio(self) -> String {
        format!("{:.3}x ({:.3}–{:.3})", self.median, self.q1, self.q3)
    }

    /// `12.3 (11.0–13.1)`, from ns to µs.
    fn micros(self) -> String {
        format!("{:.1} ({:.1}–{:.1})", self.median / 1e3, self.q1 / 1e3, self.q3 / 1e3)
    }
}

/// The interleaved measurement of one row.
struct Paired {
    /// Repetitions: rounds of one batch of each contender.
    reps: usize,
    /// Requests per batch.
    batch: u32,
    /// Fastest batch of each contender, ns per request, in [`Contender::ALL`]'s order.
    best: [f64; 4],
    /// guarded / unguarded, per repetition.
    guard_ratio: Spread,
    /// (guarded + policy) / unguarded, per repetition.
    policy_ratio: Spread,
    /// guarded / floor, per repetition.
    floor_ratio: Spread,
    /// guarded − unguarded, ns per request, per repetition.
    guard_ns: Spread,
    /// (guarded + policy) − guarded, ns per request, per repetition.
    policy_ns: Spread,
}

/// Times batches of the four contenders back to back for `duration`, changing their order
/// every repetition (each contender takes each place, forwards and backwards, in turn). A
/// repetition runs within a few tens of milliseconds, so load from other processes (this is a
/// shared 2-core machine) hits its four batches alike and the ratios within a repetition stay
/// put where criterion's separate runs minutes apart do not.
fn paired(row: &Row<'_>, setup: &Setup, duration: Duration) -> Paired {
    let batch = |contender: Contender, n: u32| {
        let start = Instant::now();
        for _ in 0..n {
            contender.run(row, setup);
        }
        start.elapsed().as_nanos() as f64 / f64::from(n)
    };
    // Batches of about 3 ms of unguarded work.
    let one = batch(Contender::Unguarded, 20);
    let n = ((3e6 / one) as u32).max(1);
    let mut times: Vec<[f64; 4]> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration {
        let rep = times.len();
        let mut order = Contender::ALL;
        order.rotate_left(rep % 4);
        if (rep / 4) % 2 == 1 {
            order.reverse();
        }
        let mut t = [0.0; 4];
        for contender in order {
            let slot = Contender::ALL.iter().position(|c| *c == contender).expect("a contender");
            t[slot] = batch(contender, n);
        }
        times.push(t);
    }
    let [floor, unguarded, guarded, policy] = [0, 1, 2, 3];
    let over = |f: &dyn Fn(&[f64; 4]) -> f64| Spread::of(times.iter().map(f).collect());
    let best = std::array::from_fn(|i| times.iter().map(|t| t[i]).fold(f64::MAX, f64::min));
    Paired {
        reps: times.len(),
        batch: n,
        best,
        guard_ratio: over(&|t| t[guarded] / t[unguarded]),
        policy_ratio: over(&|t| t[policy] / t[unguarded]),
        floor_ratio: over(&|t| t[guarded] / t[floor]),
        guard_ns: over(&|t| t[guarded] - t[unguarded]),
        policy_ns: over(&|t| t[policy] - t[guarded]),
    }
}

/// The median time of each of `pieces`, in ns per call: `rounds` rounds of one batch of `batch`
/// calls of each, their order rotated every round, so that a slow spell of the machine hits
/// them all alike.
fn interleaved<const N: usize>(pieces: [&dyn Fn(); N], rounds: usize, batch: u32) -> [f64; N] {
    let mut times: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(rounds));
    for round in 0..rounds {
        for k in 0..N {
            let i = (round + k) % N;
            let start = Instant::now();
            for _ in 0..batch {
                pieces[i]();
            }
            times[i].push(start.elapsed().as_nanos() as f64 / f64::from(batch));
        }
    }
    times.map(|t| Spread::of(t).median)
}

/// The parts of the guard's OpenSSL validation of one row's certificate, timed alone.
struct Breakdown {
    /// `d2i_X509` of the new certificate.
    parse_ns: f64,
    /// `d2i_PUBKEY` of the new certificate's public key alone (part of `d2i_X509`).
    key_parse_ns: f64,
    /// `X509_verify`: the new certificate's signature checked with its issuer's key.
    signature_ns: f64,
    /// The same signature checked by aws-lc-rs, for comparison.
    aws_lc_signature_ns: f64,
    /// The whole validation as the guard sets it up (a store, its parameters, a context,
    /// `X509_verify_cert`), the certificate already parsed.
    validation_ns: f64,
}

/// Times, for `row`'s CA and a certificate it issued, the pieces of OpenSSL's validation: what
/// the guard's cost is made of.
fn breakdown(row: &Row<'_>) -> Breakdown {
    let chain = &row.ca.openssl;
    let issuer_key = chain.issuer.public_key().expect("the CA's public key");
    let leaf = X509::from_der(&row.leaf).expect("OpenSSL reads the certificate");
    let (_, parsed) = x509_parser::parse_x509_certificate(&row.leaf).expect("certificate parses");
    let (tbs, signature) = (parsed.tbs_certificate.as_ref(), parsed.signature_value.data.as_ref());
    let leaf_spki = parsed.tbs_certificate.subject_pki.raw;
    let issuer_spki = issuer_key.public_key_to_der().expect("SPKI");
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&issuer_spki).expect("SPKI parses");
    let issuer_bits = spki.subject_public_key.data.to_vec();
    let algorithm = row.ca.floor_key.verify_algorithm();
    // Valid at the certificate's notAfter − 1 s, as the guard validates.
    let time = parsed.validity().not_after.timestamp() - 1;
    let validate = || {
        let mut param = X509VerifyParam::new().expect("param");
        param.set_time(time);
        let mut store = X509StoreBuilder::new().expect("store");
        store.add_cert(chain.root.clone()).expect("add root");
        store.set_param(&param).expect("set param");
        let store = store.build();
        let mut context = X509StoreContext::new().expect("context");
        let ok = context.init(&store, &leaf, &chain.untrusted, |c| c.verify_cert()).expect("verify_cert");
        assert!(ok, "the certificate validates");
    };
    let [parse_ns, key_parse_ns, signature_ns, aws_lc_signature_ns, validation_ns] = interleaved(
        [
            &|| {
                black_box(X509::from_der(black_box(&row.leaf)).expect("d2i_X509"));
            },
            &|| {
                black_box(PKey::public_key_from_der(black_box(leaf_spki)).expect("d2i_PUBKEY"));
            },
            &|| assert!(leaf.verify(&issuer_key).expect("X509_verify")),
            &|| {
                UnparsedPublicKey::new(algorithm, &issuer_bits).verify(tbs, signature).expect("signature verifies");
            },
            &validate,
        ],
        300,
        10,
    );
    Breakdown { parse_ns, key_parse_ns, signature_ns, aws_lc_signature_ns, validation_ns }
}

/// The policy's two steps for one request, timed alone: [`IssuerPolicy::compile`] and
/// [`CompiledPolicy::check`], in ns.
fn policy_steps(request: &Request, setup: &Setup) -> [f64; 2] {
    let csr = parse_csr(&request.pem).expect("parse_csr");
    let template = certificate_template(&setup.profile, &csr).expect("certificate_template");
    let compiled = setup.policy.compile(IssuerScope::Namespaced).expect("the policy compiles");
    let input = PolicyInput { namespace: NAMESPACE, namespace_labels: None, csr: &csr, template: &template };
    interleaved(
        [
            &|| {
                black_box(setup.policy.compile(IssuerScope::Namespaced).expect("the policy compiles"));
            },
            &|| {
                black_box(compiled.check(black_box(&input)).expect("the policy allows the request"));
            },
        ],
        300,
        20,
    )
}

/// Prints the tables, as Markdown: criterion's medians (read back from its `estimates.json`
/// files), the interleaved ratios, which decide the verdicts, and the guard's breakdown.
fn print_summary(
    dir: &Path,
    rows: &[Row<'_>],
    paired: &[Paired],
    breakdowns: &[(usize, Breakdown)],
    policy: &[(&str, [f64; 2])],
) {
    let us = |ns: f64| format!("{:.1}", ns / 1e3);
    println!();
    println!("Criterion medians, µs per request");
    println!();
    println!(
        "| CSR key | CA | TBS bytes | floor | unguarded | guarded | guarded + policy \
         | guarded/unguarded | (guarded + policy)/unguarded | guarded/floor |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        let medians = Contender::ALL.map(|c| criterion_median_ns(dir, c.id(), &row.id));
        let cell = |m: Option<f64>| m.map_or_else(|| "-".to_owned(), us);
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.3}x", a / b),
            _ => "-".to_owned(),
        };
        let [floor, unguarded, guarded, policy] = medians;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.request.name,
            row.ca.name,
            row.message.len(),
            cell(floor),
            cell(unguarded),
            cell(guarded),
            cell(policy),
            ratio(guarded, unguarded),
            ratio(policy, unguarded),
            ratio(guarded, floor),
        );
    }
    println!();
    println!(
        "Interleaved: median (interquartile range) over repetitions; targets (guarded + policy)/unguarded <= \
         {GUARD_TARGET}x, guarded/floor <= {TARGET_RATIO}x; times in µs per request"
    );
    println!();
    println!(
        "| CSR key | CA | reps x batch | unguarded best | guarded best | guard adds | policy adds \
         | guarded/unguarded | (guarded + policy)/unguarded | target | guarded/floor | target |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |");
    for (row, p) in rows.iter().zip(paired) {
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "| {} | {} | {} x {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.request.name,
            row.ca.name,
            p.reps,
            p.batch,
            us(p.best[1]),
            us(p.best[2]),
            p.guard_ns.micros(),
            p.policy_ns.micros(),
            p.guard_ratio.ratio(),
            p.policy_ratio.ratio(),
            verdict(p.policy_ratio.median <= GUARD_TARGET),
            p.floor_ratio.ratio(),
            verdict(p.floor_ratio.median <= TARGET_RATIO),
        );
    }
    println!();
    println!(
        "The guard's OpenSSL validation in parts, for a P-256 request's certificate (medians of interleaved \
         batches, µs)"
    );
    println!();
    println!(
        "| CA | d2i_X509 of the certificate | of which d2i_PUBKEY of its key | its signature, OpenSSL \
         | its signature, aws-lc-rs | store + X509_verify_cert (certificate parsed) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (i, b) in breakdowns {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            rows[*i].ca.name,
            us(b.parse_ns),
            us(b.key_parse_ns),
            us(b.signature_ns),
            us(b.aws_lc_signature_ns),
            us(b.validation_ns)
        );
    }
    println!();
    println!("The policy's steps alone (medians of interleaved batches, µs)");
    println!();
    println!("| CSR key | compile | check |");
    println!("| --- | ---: | ---: |");
    for (name, [compile, check]) in policy {
        println!("| {name} | {} | {} |", us(*compile), us(*check));
    }
}

fn main() {
    let dir = output_dir();
    let mut criterion = Criterion::default()
        .output_directory(&dir)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(40)
        .configure_from_args();

    // Keys, CAs and CSRs, generated once up front.
    let p256_ca = ca("P-256", "p256", key(&rcgen::PKCS_ECDSA_P256_SHA256), Shape::Root);
    let rsa_ca = ca("RSA-2048", "rsa2048", rsa2048(), Shape::Root);
    let p256_nc = ca("P-256 +NC", "p256nc", key(&rcgen::PKCS_ECDSA_P256_SHA256), Shape::Constrained);
    let rsa_nc = ca("RSA-2048 +NC", "rsa2048nc", rsa2048(), Shape::Constrained);
    let p256_int = ca("P-256 int. (P-256 root)", "p256int", key(&rcgen::PKCS_ECDSA_P256_SHA256), Shape::Intermediate);
    let p256 = request("P-256", key(&rcgen::PKCS_ECDSA_P256_SHA256), &sig::ECDSA_P256_SHA256_ASN1);
    let ed25519 = request("Ed25519", key(&rcgen::PKCS_ED25519), &sig::ED25519);
    let rsa = request("RSA-2048", rsa2048(), &sig::RSA_PKCS1_2048_8192_SHA256);

    let setup = Setup { profile: RequestedProfile::default(), urls: PublishedUrls::default(), policy: policy() };
    let rows: Vec<Row<'_>> = [
        (&p256, &p256_ca),
        (&ed25519, &p256_ca),
        (&rsa, &p256_ca),
        (&p256, &rsa_ca),
        (&rsa, &rsa_ca),
        (&p256, &p256_nc),
        (&p256, &rsa_nc),
        (&p256, &p256_int),
    ]
    .into_iter()
    .map(|(request, ca)| {
        // One real run of each path: checks that they work (the request passes the guards and
        // the policy) and sizes the floor's message.
        let signed = ferrum_path(request, ca, &setup, Guards::OnWithPolicy);
        ferrum_path(request, ca, &setup, Guards::Off);
        let leaf = leaf_der(&signed.chain_pem);
        let message = vec![0x5a; tbs_len(&leaf)];
        Row { id: format!("{}-csr_{}-ca", slug(request.name), ca.id), request, ca, message, leaf }
    })
    .collect();

    let mut group = criterion.benchmark_group(GROUP);
    for row in &rows {
        for contender in Contender::ALL {
            group.bench_with_input(BenchmarkId::new(contender.id(), &row.id), row, |b, row| {
                b.iter(|| contender.run(row, &setup))
            });
        }
    }
    group.finish();
    criterion.final_summary();

    // Only a real benchmark run (`cargo bench`) writes estimates; `cargo test --benches` runs
    // each routine once and has nothing to summarise.
    if std::env::args().any(|a| a == "--bench") {
        let paired: Vec<Paired> = rows.iter().map(|row| paired(row, &setup, PAIRED_TIME)).collect();
        // One P-256 request per CA.
        let breakdowns: Vec<(usize, Breakdown)> = rows
            .iter()
            .enumerate()
            .filter(|(_, row)| row.request.name == "P-256")
            .map(|(i, row)| (i, breakdown(row)))
            .collect();
        let policy: Vec<(&str, [f64; 2])> =
            [&p256, &ed25519, &rsa].map(|request| (request.name, policy_steps(request, &setup))).to_vec();
        print_summary(&dir, &rows, &paired, &breakdowns, &policy);
    }
}
