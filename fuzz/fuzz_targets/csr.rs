//! `parse_csr` on arbitrary DER wrapped as a PEM block; on success, the name checks and the
//! signing policy with a few profiles.
#![no_main]

use ferrum::x509::{
    CsrError, MAX_CSR_PEM_BYTES, NamePolicy, RequestedProfile, certificate_template, check_names, parse_csr,
};
use ferrum_fuzz::{ALL_SAN_TYPES, pem_encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pem = pem_encode("CERTIFICATE REQUEST", data);
    let csr = match parse_csr(pem.as_bytes()) {
        Ok(csr) => csr,
        // A block as Go writes it is always read (only the DER inside may be refused).
        Err(CsrError::Pem(e)) if !data.is_empty() => panic!("a well-formed PEM block refused: {e}"),
        Err(CsrError::TooLarge { .. }) => {
            assert!(pem.len() > MAX_CSR_PEM_BYTES);
            return;
        }
        Err(_) => return,
    };
    assert_eq!(csr.der(), data, "the DER read is not the DER written");
    let _ = check_names(&csr, &NamePolicy::default());
    let _ = check_names(&csr, &NamePolicy::allowing(&ALL_SAN_TYPES));
    for profile in [
        RequestedProfile::default(),
        RequestedProfile { is_ca: true, ..Default::default() },
        RequestedProfile { usages: vec!["server auth".into()], ..Default::default() },
    ] {
        if let Ok(t) = certificate_template(&profile, &csr) {
            assert_eq!(t.is_ca(), profile.is_ca);
            assert_eq!(t.subject(), csr.subject());
        }
    }
});
