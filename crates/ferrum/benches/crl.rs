//! What a CRL of 100,000 entries costs to sign and to serve.
//!
//!     cargo bench -p ferrum --bench crl
//!
//! Signing: `ferrum::x509::sign_crl` (the TBS of 100,000 entries with their reasons, the CA's
//! signature, OpenSSL's check of that signature before the CRL is returned) with a P-256 and an
//! RSA-2048 CA key, alternating which goes first in each round. Printed: the median time over
//! the rounds with min–max, and the peak heap it took (a counting allocator around the system
//! one: bytes allocated at the worst moment of the call, above what was allocated before it).
//!
//! Serving: the CRL served by Ferrum's CRL server (`ferrum::revocation::serve::listen`, the
//! handler every replica runs) to sequential HTTP/1.1 clients on 127.0.0.1, and to 8 at once.
//! Printed: the median time per fetch (whole body read) with min–max, and the peak heap during
//! the concurrent fetches (the clients read into one small buffer and keep nothing, so the peak
//! is the server's; the CRL is held once and shared, not copied per request).
//!
//! Also printed: the bytes the issuer's CRL ConfigMap (ledger and PEM CRL) would need for these
//! entries, against the ConfigMap limit Ferrum keeps to.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ferrum::revocation::serve::{CrlCache, listen};
use ferrum::x509::{CaBundle, CrlContents, RevocationReason, RevokedEntry, SoftwareKey, sign_crl};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, RsaKeySize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Counts the heap in use and its peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ENTRIES: usize = 100_000;
const SIGN_ROUNDS: usize = 7;
const FETCHES: usize = 31;
const CONCURRENT: usize = 8;

/// Runs `f`; (its result, wall time, peak heap above the heap in use when it started).
fn measured<T>(f: impl FnOnce() -> T) -> (T, Duration, usize) {
    let base = IN_USE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let start = Instant::now();
    let value = f();
    let elapsed = start.elapsed();
    (value, elapsed, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

fn ca(name: &str, key: &KeyPair) -> (CaBundle, SoftwareKey) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, format!("Ferrum CRL bench CA ({name})"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = params.self_signed(key).expect("self-signed CA").pem();
    let bundle = CaBundle::parse(pem.as_bytes(), None).expect("CA bundle");
    let key = SoftwareKey::from_pem(key.serialize_pem().as_bytes()).expect("CA key");
    (bundle, key)
}

fn entries(now: SystemTime) -> Vec<RevokedEntry> {
    let reasons = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
    ];
    (0..ENTRIES)
        .map(|i| {
            let mut serial: [u8; 16] = rand::random();
            serial[0] &= 0x7f;
            serial[0] |= 0x01;
            RevokedEntry {
                serial: serial.to_vec(),
                revoked_at: now - Duration::from_secs(i as u64),
                reason: reasons[i % reasons.len()],
            }
        })
        .collect()
}

fn median_spread(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    format!("{:.1} ({:.1}–{:.1})", values[values.len() / 2], values[0], values[values.len() - 1])
}

async fn fetch(addr: std::net::SocketAddr, path: &str) -> usize {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    // Read into one small buffer: the client keeps nothing, so the heap measured is the server's.
    let mut buffer = [0u8; 16 * 1024];
    let mut total = 0;
    let mut first = true;
    loop {
        let n = stream.read(&mut buffer).await.expect("read");
        if n == 0 {
            break;
        }
        if first {
            assert!(buffer.starts_with(b"HTTP/1.1 200"), "the CRL is served");
            first = false;
        }
        total += n;
    }
    total
}

fn main() {
    let now = SystemTime::now();
    let list = entries(now);
    let p256 = ca("P-256", &KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key"));
    let rsa = ca("RSA-2048", &KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048).expect("RSA key"));
    let contenders = [("P-256", &p256), ("RSA-2048", &rsa)];
    let mut times: [Vec<f64>; 2] = Default::default();
    let mut peaks: [Vec<f64>; 2] = Default::default();
    let mut crl = Vec::new();
    for round in 0..SIGN_ROUNDS {
        for turn in 0..2 {
            let which = (round + turn) % 2;
            let (_, (bundle, key)) = contenders[which];
            let contents = CrlContents {
                number: round as u64 + 1,
                this_update: now,
                next_update: now + Duration::from_secs(86_400),
                entries: list.clone(),
            };
            let (der, elapsed, peak) = measured(|| sign_crl(bundle, key, &contents).expect("sign_crl"));
            times[which].push(elapsed.as_secs_f64() * 1e3);
            peaks[which].push(peak as f64 / 1048576.0);
            crl = der;
        }
    }
    println!("CRL of {ENTRIES} entries, DER {:.2} MiB", crl.len() as f64 / 1048576.0);
    for (i, (name, _)) in contenders.iter().enumerate() {
        println!(
            "sign_crl {name:>8}: {} ms, peak heap {} MiB   (median (min–max) of {SIGN_ROUNDS})",
            median_spread(times[i].clone()),
            median_spread(peaks[i].clone())
        );
    }
    let bytes = ferrum::revocation::config_map_bytes_for_bench(&list, now + Duration::from_secs(86_400 * 90), &crl);
    let per_entry = bytes as f64 / ENTRIES as f64;
    println!(
        "ConfigMap (ledger + PEM CRL): {per_entry:.1} bytes per entry; {} entries fit in the {} bytes Ferrum allows",
        (ferrum::revocation::MAX_CONFIG_MAP_BYTES as f64 / per_entry) as usize,
        ferrum::revocation::MAX_CONFIG_MAP_BYTES
    );

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let cache = CrlCache::default();
        let path = "/ferrumclusterissuers/bench.crl";
        let before = IN_USE.load(Ordering::Relaxed);
        let der = crl.clone();
        let (_, _, ingest_peak) = measured(|| cache.insert_for_bench(path, der).expect("insert"));
        let held = IN_USE.load(Ordering::Relaxed).saturating_sub(before);
        let addr = listen("127.0.0.1:0".parse().expect("address"), cache.clone()).await.expect("listen");
        fetch(addr, path).await;
        let mut sequential = Vec::new();
        for _ in 0..FETCHES {
            let start = Instant::now();
            fetch(addr, path).await;
            sequential.push(start.elapsed().as_secs_f64() * 1e3);
        }
        let mut concurrent = Vec::new();
        let mut peaks = Vec::new();
        for _ in 0..5 {
            let base = IN_USE.load(Ordering::Relaxed);
            PEAK.store(base, Ordering::Relaxed);
            let start = Instant::now();
            let fetches: Vec<_> = (0..CONCURRENT).map(|_| tokio::spawn(fetch(addr, path))).collect();
            for f in fetches {
                f.await.expect("fetch");
            }
            concurrent.push(start.elapsed().as_secs_f64() * 1e3);
            peaks.push(PEAK.load(Ordering::Relaxed).saturating_sub(base) as f64 / 1048576.0);
        }
        println!(
            "CRL server: holds {:.2} MiB for this CRL; taking it in (parsing its number, dates and size) peaked at {:.2} MiB",
            held as f64 / 1048576.0,
            ingest_peak as f64 / 1048576.0
        );
        println!("serve, 1 client:  {} ms per fetch (median (min–max) of {FETCHES})", median_spread(sequential));
        println!(
            "serve, {CONCURRENT} clients: {} ms for all {CONCURRENT}, server heap peak {} MiB (median (min–max) of 5)",
            median_spread(concurrent),
            median_spread(peaks)
        );
    });
}
