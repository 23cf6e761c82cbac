//! Key material made before any timing: one CA shared by every contender, N P-256 CSRs, the
//! foreign load's padded CSR, and the floor's precomputed certificate.

use anyhow::Context;
use ferrum_testenv::fixtures::{self, CaOptions, TestCa};
use rcgen::{CertificateParams, CustomExtension, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};

/// The prefix of the benchmark's own request names (see [`request_name`]).
pub const REQUEST_PREFIX: &str = "bench-";

/// cert-manager's cap on a CSR's PEM (and Ferrum's): the largest padded CSR we make.
pub use ferrum::x509::MAX_CSR_PEM_BYTES;

/// The OID of the padding extension: under IANA's example enterprise number 32473 (RFC 5612),
/// so it can mean nothing to anyone. Non-critical.
const PADDING_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 32473, 1];

/// A CA as PEM, for a `kubernetes.io/tls` Secret.
pub type Ca = TestCa;

/// Makes a self-signed P-256 CA valid for ten years.
pub fn make_ca() -> anyhow::Result<Ca> {
    Ok(fixtures::make_ca("Ferrum bench CA", CaOptions { days: 3650, ..Default::default() }))
}

/// The kind of the CA's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CaKey {
    /// ECDSA P-256 (signatures with SHA-256).
    P256,
    /// RSA-2048 (PKCS#1 v1.5 with SHA-256).
    Rsa2048,
}

/// A self-signed CA with a key of `kind`, valid for ten years.
pub fn make_ca_with(kind: CaKey) -> anyhow::Result<Ca> {
    let key = match kind {
        CaKey::P256 => return make_ca(),
        CaKey::Rsa2048 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).context("RSA-2048 CA key")?
        }
    };
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::OrganizationName, "Ferrum E2E");
    params.distinguished_name.push(DnType::CommonName, "Ferrum bench CA (RSA-2048)");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&key).context("self-signed RSA CA")?;
    Ok(Ca { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
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
    format!("{REQUEST_PREFIX}{i:05}")
}

/// A valid PEM CSR (P-256, CN and DNS SAN `dns`) of at most `target` bytes and within 100 bytes
/// of it: a non-critical extension request carries an OCTET STRING of padding.
pub fn padded_csr(dns: &str, target: usize) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(target <= MAX_CSR_PEM_BYTES, "a CSR of {target} bytes is over the cap of {MAX_CSR_PEM_BYTES}");
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("padded CSR key")?;
    let make = |padding: usize| -> anyhow::Result<Vec<u8>> {
        let mut params = CertificateParams::new(vec![dns.to_owned()]).context("padded CSR params")?;
        params.distinguished_name.push(DnType::CommonName, dns);
        if padding > 0 {
            params.custom_extensions.push(CustomExtension::from_oid_content(PADDING_OID, octet_string(padding)));
        }
        Ok(params.serialize_request(&key).context("padded CSR")?.pem().context("padded CSR PEM")?.into_bytes())
    };
    let bare = make(0)?.len();
    anyhow::ensure!(target >= bare + 100, "a CSR needs about {} bytes at least; asked for {target}", bare + 100);
    // PEM is 4/3 of the DER plus a newline per 64 characters: 48 DER bytes per 65 PEM bytes.
    let mut padding = (target - bare) * 48 / 65;
    for _ in 0..8 {
        let pem = make(padding)?;
        if pem.len() <= target && target - pem.len() < 100 {
            return Ok(pem);
        }
        let step = (pem.len().abs_diff(target) * 48 / 65).max(1);
        padding = if pem.len() > target { padding.saturating_sub(step) } else { padding + step };
    }
    anyhow::bail!("could not pad a CSR to {target} bytes")
}

/// The DER of an OCTET STRING of `len` bytes (the extension's value must be DER).
fn octet_string(len: usize) -> Vec<u8> {
    let mut der = vec![0x04];
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.resize(der.len() + len, b'F');
    der
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

    #[test]
    fn padded_csrs_have_the_asked_size() {
        for target in [1000, 30_000, MAX_CSR_PEM_BYTES] {
            let pem = padded_csr("foreign.bench.example", target).unwrap();
            assert!(pem.len() <= target && target - pem.len() < 100, "{target}: {}", pem.len());
            // Ferrum's own parser: PEM, DER, the cap and the CSR's self-signature.
            ferrum::x509::parse_csr(&pem).unwrap();
        }
        assert!(padded_csr("x.example", MAX_CSR_PEM_BYTES + 1).is_err());
        assert!(padded_csr("x.example", 300).is_err());
        assert_eq!(octet_string(3), [4, 3, b'F', b'F', b'F']);
        assert_eq!(&octet_string(300)[..4], [4, 0x82, 1, 44]);
    }
}
