//! Signing micro-benchmark (issue 5, item 3): Ferrum's whole signing path next to the crypto
//! floor, for P-256, Ed25519 and RSA-2048 request keys.
//!
//! For each row:
//!
//! - **ferrum**: what the `ca` backend does per request once the CA is loaded —
//!   [`parse_csr`] (PEM, DER, algorithm and key checks, the CSR's self-signature),
//!   [`certificate_template`] (the signing policy) and [`sign_with_ca`] (TBS assembly, random
//!   serial, the CA's signature, certificate DER and the chain PEM). The [`CaBundle`] and the
//!   [`SoftwareKey`] are parsed once, outside the loop, as the backend caches them.
//! - **floor**: the cryptography alone, with aws-lc-rs — a verify of the CSR's signature with its
//!   own key (same key type and size, inputs already extracted) plus a sign, with a CA key of the
//!   same type, of a message as long as the TBSCertificate Ferrum produces for that row.
//!
//! Run with `cargo bench -p ferrum --bench signing`. After criterion's own report the bench
//! measures each row once more with ferrum and floor batches interleaved (see [`paired`]) and
//! prints a Markdown table: criterion's medians (read back from its `estimates.json` files), the
//! fastest batches, and the interleaved ratio ferrum/floor against the target of 1.5x.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, UnparsedPublicKey, VerificationAlgorithm};
use criterion::{BenchmarkId, Criterion};
use ferrum::x509::{
    CaBundle, IssuedCertificate, PublishedUrls, RequestedProfile, SoftwareKey, certificate_template, parse_csr,
    sign_with_ca,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose, RsaKeySize,
    SignatureAlgorithm,
};
use x509_parser::prelude::{FromDer, X509CertificationRequest};

/// The target: the signing path within this factor of the crypto floor.
const TARGET_RATIO: f64 = 1.5;

/// How long the interleaved measurement runs per row.
const PAIRED_TIME: Duration = Duration::from_secs(3);

/// Criterion's group name; results land in `<output>/signing/{ferrum,floor}/<row>/`.
const GROUP: &str = "signing";

/// A CA as the backend holds it, plus the same key loaded straight into aws-lc-rs for the floor.
struct Ca {
    /// Key type, e.g. `P-256`.
    name: &'static str,
    /// The parsed `tls.crt`.
    bundle: CaBundle,
    /// The parsed `tls.key`.
    key: SoftwareKey,
    /// The same private key, for the floor's bare sign.
    floor_key: FloorKey,
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

/// One row of the table: a request key type signed by a CA.
struct Row<'a> {
    /// `<request>_<ca>`, the criterion parameter.
    id: String,
    /// The request signed in this row.
    request: &'a Request,
    /// The CA that signs it.
    ca: &'a Ca,
    /// The floor's message: as long as the TBSCertificate Ferrum signs for this row.
    message: Vec<u8>,
}

/// A self-signed CA with `key`, loaded the way the `ca` backend loads its Secret.
fn ca(name: &'static str, key: KeyPair) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, format!("Ferrum bench CA ({name})"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key).expect("self-signed CA");
    let bundle = CaBundle::parse(cert.pem().as_bytes(), None).expect("CaBundle::parse");
    let soft = SoftwareKey::from_pem(key.serialize_pem().as_bytes()).expect("SoftwareKey::from_pem");
    let pkcs8 = key.serialize_der();
    let floor_key = if key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
        FloorKey::P256(EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8).expect("P-256 key"))
    } else {
        FloorKey::Rsa(RsaKeyPair::from_pkcs8(&pkcs8).expect("RSA key"))
    };
    Ca { name, bundle, key: soft, floor_key }
}

/// A CSR like cert-manager's for a DNS certificate (CN plus two DNS SANs), signed by `key`.
fn request(name: &'static str, key: KeyPair, verify: &'static dyn VerificationAlgorithm) -> Request {
    let mut params = CertificateParams::new(vec!["bench.example.com".to_owned(), "www.bench.example.com".to_owned()])
        .expect("CSR params");
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "bench.example.com");
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

/// Ferrum's path for one request: parse and check the CSR, apply the policy, sign.
fn ferrum_path(request: &Request, ca: &Ca, profile: &RequestedProfile, urls: &PublishedUrls) -> IssuedCertificate {
    let csr = parse_csr(&request.pem).expect("parse_csr");
    let template = certificate_template(profile, &csr).expect("certificate_template");
    sign_with_ca(&ca.bundle, &ca.key, &template, urls, SystemTime::now()).expect("sign_with_ca")
}

/// The crypto floor for one request: verify the CSR's signature, sign a TBS-sized message.
fn floor_path(request: &Request, ca: &Ca, message: &[u8]) -> Vec<u8> {
    UnparsedPublicKey::new(request.verify, &request.public_key)
        .verify(&request.info, &request.signature)
        .expect("CSR signature verifies");
    ca.floor_key.sign(message)
}

/// The length of the TBSCertificate in the first certificate of `chain_pem`.
fn tbs_len(chain_pem: &str) -> usize {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem.as_bytes()).expect("chain PEM");
    let cert = pem.parse_x509().expect("issued certificate parses");
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
fn median_ns(dir: &Path, function: &str, row: &str) -> Option<f64> {
    let path = dir.join(GROUP).join(function).join(row).join("new").join("estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// The interleaved A/B measurement of one row.
struct Paired {
    /// Median over pairs of (ferrum batch time / floor batch time).
    ratio: f64,
    /// Fastest ferrum batch, ns per request.
    ferrum_best_ns: f64,
    /// Fastest floor batch, ns per request.
    floor_best_ns: f64,
}

/// Times batches of the ferrum path and of the floor back to back, alternating which goes
/// first, for `duration`. Each pair runs within a few milliseconds, so load from other processes
/// (this is a shared 2-core machine) hits both sides of a pair alike and the median ratio stays
/// put where criterion's separate runs minutes apart do not.
fn paired(row: &Row<'_>, profile: &RequestedProfile, urls: &PublishedUrls, duration: Duration) -> Paired {
    let ferrum = || {
        black_box(ferrum_path(black_box(row.request), row.ca, profile, urls));
    };
    let floor = || {
        black_box(floor_path(black_box(row.request), row.ca, black_box(&row.message)));
    };
    let batch = |f: &dyn Fn(), n: u32| {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed().as_nanos() as f64 / f64::from(n)
    };
    // Batches of about 2 ms of floor work.
    let one = batch(&floor, 20);
    let n = ((2e6 / one) as u32).max(1);
    let (mut ratios, mut ferrum_best, mut floor_best) = (Vec::new(), f64::MAX, f64::MAX);
    let start = Instant::now();
    while start.elapsed() < duration {
        let (ours, theirs) = if ratios.len() % 2 == 0 {
            let ours = batch(&ferrum, n);
            (ours, batch(&floor, n))
        } else {
            let theirs = batch(&floor, n);
            (batch(&ferrum, n), theirs)
        };
        ratios.push(ours / theirs);
        ferrum_best = ferrum_best.min(ours);
        floor_best = floor_best.min(theirs);
    }
    ratios.sort_by(f64::total_cmp);
    Paired { ratio: ratios[ratios.len() / 2], ferrum_best_ns: ferrum_best, floor_best_ns: floor_best }
}

/// Prints the table, as Markdown: criterion's medians (read back from its `estimates.json`
/// files) and the interleaved ratio, which decides the verdict.
fn print_summary(dir: &Path, rows: &[Row<'_>], paired: &[Paired]) {
    println!();
    println!("Signing path vs crypto floor, ns per request; target ferrum/floor <= {TARGET_RATIO}x (interleaved)");
    println!();
    println!(
        "| CSR key | CA key | TBS bytes | ferrum median | floor median | ratio of medians \
         | ferrum best | floor best | interleaved ratio | target |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for (row, p) in rows.iter().zip(paired) {
        let (csr, ca, tbs) = (row.request.name, row.ca.name, row.message.len());
        let medians = match (median_ns(dir, "ferrum", &row.id), median_ns(dir, "floor", &row.id)) {
            (Some(ours), Some(floor)) => format!("{ours:.0} | {floor:.0} | {:.2}x", ours / floor),
            _ => "- | - | -".to_owned(),
        };
        let verdict = if p.ratio <= TARGET_RATIO { "met" } else { "MISSED" };
        println!(
            "| {csr} | {ca} | {tbs} | {medians} | {:.0} | {:.0} | {:.2}x | {verdict} |",
            p.ferrum_best_ns, p.floor_best_ns, p.ratio
        );
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
    let p256_ca = ca("P-256", key(&rcgen::PKCS_ECDSA_P256_SHA256));
    let rsa_ca = ca("RSA-2048", rsa2048());
    let p256 = request("P-256", key(&rcgen::PKCS_ECDSA_P256_SHA256), &sig::ECDSA_P256_SHA256_ASN1);
    let ed25519 = request("Ed25519", key(&rcgen::PKCS_ED25519), &sig::ED25519);
    let rsa = request("RSA-2048", rsa2048(), &sig::RSA_PKCS1_2048_8192_SHA256);

    let profile = RequestedProfile::default();
    let urls = PublishedUrls::default();
    let rows: Vec<Row<'_>> = [(&p256, &p256_ca), (&ed25519, &p256_ca), (&rsa, &p256_ca), (&rsa, &rsa_ca)]
        .into_iter()
        .map(|(request, ca)| {
            // One real run: checks the path works and sizes the floor's message.
            let signed = ferrum_path(request, ca, &profile, &urls);
            let message = vec![0x5a; tbs_len(&signed.chain_pem)];
            Row { id: format!("{}-csr_{}-ca", slug(request.name), slug(ca.name)), request, ca, message }
        })
        .collect();

    let mut group = criterion.benchmark_group(GROUP);
    for row in &rows {
        group.bench_with_input(BenchmarkId::new("ferrum", &row.id), row, |b, row| {
            b.iter(|| ferrum_path(black_box(row.request), row.ca, &profile, &urls))
        });
        group.bench_with_input(BenchmarkId::new("floor", &row.id), row, |b, row| {
            b.iter(|| floor_path(black_box(row.request), row.ca, black_box(&row.message)))
        });
    }
    group.finish();
    criterion.final_summary();

    // Only a real benchmark run (`cargo bench`) writes estimates; `cargo test --benches` runs
    // each routine once and has nothing to summarise.
    if std::env::args().any(|a| a == "--bench") {
        let paired: Vec<Paired> = rows.iter().map(|row| paired(row, &profile, &urls, PAIRED_TIME)).collect();
        print_summary(&dir, &rows, &paired);
    }
}
