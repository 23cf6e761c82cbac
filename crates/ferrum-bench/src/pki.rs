//! Key material made before any timing: one CA shared by every contender, N P-256 CSRs, and
//! the floor's precomputed certificate.

use anyhow::Context;
use ferrum_testenv::fixtures::{self, CaOptions, TestCa};
use rcgen::{CertificateParams, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};

/// A CA as PEM, for a `kubernetes.io/tls` Secret.
pub type Ca = TestCa;

/// Makes a self-signed P-256 CA valid for ten years.
pub fn make_ca() -> anyhow::Result<Ca> {
    Ok(fixtures::make_ca("Ferrum bench CA", CaOptions { days: 3650, ..Default::default() }))
}

/// A PEM CSR for `dns` (also its common name) with a fresh P-256 key.
pub fn make_csr(dns: &str) -> anyhow::Result<Vec<u8>> {
    Ok(fixtures::csr_pem(dns))
}

/// `count` CSRs, named after [`request_name`]`(i)`'s DNS name.
pub fn make_csrs(count: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    (0..count).map(|i| make_csr(&format!("{}.bench.example", request_name(i)))).collect()
}

/// The name of the `i`-th CertificateRequest.
pub fn request_name(i: usize) -> String {
    format!("bench-{i:05}")
}

/// A self-signed leaf certificate (PEM) the floor writes into every request.
pub fn floor_certificate() -> anyhow::Result<String> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("floor key")?;
    let mut params = CertificateParams::new(vec!["floor.bench.example".to_owned()]).context("floor params")?;
    params.distinguished_name.push(DnType::CommonName, "floor.bench.example");
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    Ok(params.self_signed(&key).context("floor certificate")?.pem())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material() {
        let ca = make_ca().unwrap();
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let csrs = make_csrs(2).unwrap();
        assert_eq!(csrs.len(), 2);
        assert!(String::from_utf8_lossy(&csrs[0]).contains("CERTIFICATE REQUEST"));
        assert_eq!(request_name(7), "bench-00007");
    }
}
