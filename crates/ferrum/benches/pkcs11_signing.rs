//! What a key on a PKCS#11 token costs per issued certificate, against the same key in memory.
//!
//!     cargo bench -p ferrum --bench pkcs11_signing
//!
//! One SoftHSM2 token (Debian's `softhsm2`, `opensc`; `scripts/prereqs.sh` installs them) holds
//! a P-256 and an RSA-2048 CA key, imported non-extractable; the same keys are loaded as
//! [`SoftwareKey`]s. For each key, the whole guarded signing path (`sign_with_ca`: the CA's
//! constraints, the TBS, the signature, OpenSSL's path validation) runs in batches, alternating
//! which key goes first in each round; and the bare signature of a TBS-sized message likewise.
//! Printed: the median microseconds per operation over the rounds with min–max, and the median
//! of the per-round ratios (token / memory). One session, one thread: the token's latency, not
//! its throughput (the e2e test runs four sessions at once).

use std::hint::black_box;
use std::time::{Instant, SystemTime};

use ferrum::pkcs11::bench::{Hsm, TokenSigner};
use ferrum::x509::{
    CaBundle, CertificateTemplate, PublishedUrls, RequestedProfile, SigningKey, SoftwareKey, certificate_template,
    parse_csr, sign_with_ca,
};
use ferrum_testenv::softhsm::SoftHsm;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, RsaKeySize};

const TOKEN: &str = "bench";
const PIN: &str = "bench-pin";
/// Rounds per measurement; each round times one batch of each contender.
const ROUNDS: usize = 21;

/// A CA key held two ways.
struct Contenders {
    name: &'static str,
    bundle: CaBundle,
    memory: SoftwareKey,
    token: TokenSigner,
    batch: usize,
}

fn ca_certificate(key: &KeyPair, name: &str) -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, format!("Ferrum HSM bench CA ({name})"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.self_signed(key).expect("self-signed CA").pem()
}

fn template() -> CertificateTemplate {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("leaf key");
    let mut params =
        CertificateParams::new(vec!["web.team-a.svc.cluster.local".to_owned(), "web.example.com".to_owned()])
            .expect("CSR params");
    params.distinguished_name.push(DnType::CommonName, "web.team-a.svc.cluster.local");
    let pem = params.serialize_request(&key).expect("CSR").pem().expect("CSR PEM");
    let csr = parse_csr(pem.as_bytes()).expect("parse_csr");
    certificate_template(&RequestedProfile::default(), &csr).expect("certificate_template")
}

/// Microseconds per call of `f`, over `batch` calls.
fn per_call(batch: usize, f: &dyn Fn()) -> f64 {
    let start = Instant::now();
    for _ in 0..batch {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / batch as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// (memory µs per call per round, token µs per call per round), the order alternating.
fn rounds(batch: usize, memory: &dyn Fn(), token: &dyn Fn()) -> (Vec<f64>, Vec<f64>) {
    let (mut m, mut t) = (Vec::new(), Vec::new());
    per_call(batch / 4 + 1, memory);
    per_call(batch / 4 + 1, token);
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            m.push(per_call(batch, memory));
            t.push(per_call(batch, token));
        } else {
            t.push(per_call(batch, token));
            m.push(per_call(batch, memory));
        }
    }
    (m, t)
}

fn report(row: &str, (memory, token): (Vec<f64>, Vec<f64>)) {
    let ratios: Vec<f64> = memory.iter().zip(&token).map(|(m, t)| t / m).collect();
    let span = |v: &[f64]| {
        let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        format!("[{lo:.0}–{hi:.0}]")
    };
    let (ratio_lo, ratio_hi) = ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    println!(
        "| {row} | {:.0} {} | {:.0} {} | {:.2}x [{ratio_lo:.2}–{ratio_hi:.2}] |",
        median(memory.clone()),
        span(&memory),
        median(token.clone()),
        span(&token),
        median(ratios.clone()),
    );
}

fn main() {
    let hsm = SoftHsm::new();
    hsm.init_token(TOKEN, "bench-so-pin", PIN);
    let (conf_key, conf) = hsm.env();
    // SAFETY: single-threaded here; nothing else reads the environment yet, and the module
    // (which reads SOFTHSM2_CONF when initialised) is loaded below.
    unsafe { std::env::set_var(conf_key, conf) };
    let keys = [
        ("P-256", KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key"), 200),
        ("RSA-2048", KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048).expect("RSA key"), 60),
    ];
    let module = Hsm::new(&hsm.module, 2);
    let mut contenders = Vec::new();
    for (name, key, batch) in keys {
        let label = format!("ca-{}", name.to_lowercase());
        hsm.import_key(TOKEN, PIN, &key.serialize_pem(), &label, if name == "P-256" { "01" } else { "02" }, false);
        let bundle = CaBundle::parse(ca_certificate(&key, name).as_bytes(), None).expect("CaBundle::parse");
        let memory = SoftwareKey::from_pem(key.serialize_pem().as_bytes()).expect("SoftwareKey::from_pem");
        let token = module.signer(TOKEN, PIN, &label, &bundle).expect("the key on the token");
        contenders.push(Contenders { name, bundle, memory, token, batch });
    }
    let template = template();
    let urls = PublishedUrls::default();
    let message = vec![0x5a; 700];
    println!(
        "SoftHSM2 {} — µs per operation, median [min–max] of {ROUNDS} rounds; ratio: median of per-round token/memory",
        hsm.module.display()
    );
    println!("| row | key in memory | key on the token | token / memory |");
    println!("| --- | --- | --- | --- |");
    for c in &contenders {
        let issue = |key: &dyn SigningKey| {
            black_box(sign_with_ca(&c.bundle, &Dyn(key), &template, &urls, SystemTime::now()).expect("sign_with_ca"));
        };
        report(
            &format!("{} guarded issuance (sign_with_ca)", c.name),
            rounds(c.batch, &|| issue(&c.memory), &|| issue(&c.token)),
        );
        let sign = |key: &dyn SigningKey| {
            black_box(key.sign(&message).expect("sign"));
        };
        report(&format!("{} signature of 700 bytes", c.name), rounds(c.batch, &|| sign(&c.memory), &|| sign(&c.token)));
    }
}

/// A `&dyn SigningKey` as an `impl SigningKey`.
struct Dyn<'a>(&'a dyn SigningKey);

impl SigningKey for Dyn<'_> {
    fn algorithm(&self) -> spki::AlgorithmIdentifierOwned {
        self.0.algorithm()
    }

    fn public_key(&self) -> &[u8] {
        self.0.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ferrum::x509::SigningError> {
        self.0.sign(message)
    }
}
