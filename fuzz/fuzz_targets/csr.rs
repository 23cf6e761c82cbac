//! `parse_csr` on arbitrary DER wrapped as a PEM block; on success, the name checks and the
//! signing policy with a few profiles.
#![no_main]

use ferrum::encoding::pem_encode;
use ferrum::x509::csr::{CsrError, MAX_CSR_PEM_BYTES, parse_csr};
use ferrum::x509::names::{NamePolicy, SanType, check_names};
use ferrum::x509::template::{RequestedProfile, certificate_template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pem = pem_encode("CERTIFICATE REQUEST", data);
    let csr = match parse_csr(pem.as_bytes()) {
        Ok(csr) => csr,
        // Our own PEM encoding is always read (only the DER inside may be refused).
        Err(CsrError::Pem(e)) if !data.is_empty() => panic!("pem_encode output refused: {e}"),
        Err(CsrError::TooLarge { .. }) => {
            assert!(pem.len() > MAX_CSR_PEM_BYTES);
            return;
        }
        Err(_) => return,
    };
    assert_eq!(csr.der, data, "the DER read is not the DER written");
    let _ = check_names(&csr, &NamePolicy::default());
    let _ = check_names(
        &csr,
        &NamePolicy::allowing(&[
            SanType::OtherName,
            SanType::X400Address,
            SanType::DirectoryName,
            SanType::EdiPartyName,
            SanType::RegisteredID,
        ]),
    );
    for profile in [
        RequestedProfile::default(),
        RequestedProfile { is_ca: true, ..Default::default() },
        RequestedProfile { usages: vec!["server auth".into()], ..Default::default() },
    ] {
        if let Ok(t) = certificate_template(&profile, &csr) {
            assert_eq!(t.is_ca, profile.is_ca);
            assert_eq!(t.subject, csr.subject);
        }
    }
});
