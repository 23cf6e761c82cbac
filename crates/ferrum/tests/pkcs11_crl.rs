//! A CRL signed by a CA key that stays on a PKCS#11 token (SoftHSM2), through the same
//! `SigningKey` seam as certificates: `openssl crl -verify` accepts it with the CA certificate.
//! Needs Debian's `softhsm2` and `opensc` (`scripts/prereqs.sh` installs them).

use std::time::{Duration, SystemTime};

use ferrum::pkcs11::bench::Hsm;
use ferrum::x509::{CaBundle, CrlContents, RevocationReason, RevokedEntry, sign_crl};
use ferrum_testenv::softhsm::SoftHsm;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};

#[test]
fn a_key_on_a_token_signs_a_crl_openssl_accepts() {
    let hsm = SoftHsm::new();
    hsm.init_token("crl", "so-pin", "pin-1234");
    let (key, conf) = hsm.env();
    // SAFETY: the only test of this binary; nothing else reads the environment, and the module
    // (which reads SOFTHSM2_CONF when it is initialised) is loaded after this.
    unsafe { std::env::set_var(key, conf) };
    let ca_key = KeyPair::generate().unwrap();
    hsm.import_key("crl", "pin-1234", &ca_key.serialize_pem(), "ca", "01", false);
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "Token CRL CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_pem = params.self_signed(&ca_key).unwrap().pem();
    let ca = CaBundle::parse(ca_pem.as_bytes(), None).unwrap();
    let signer = Hsm::new(&hsm.module, 1).signer("crl", "pin-1234", "ca", &ca).expect("the key on the token");

    let now = SystemTime::now();
    let entries = [RevokedEntry {
        serial: vec![0x40, 0x01, 0x02],
        revoked_at: now,
        reason: RevocationReason::CessationOfOperation,
    }];
    let contents = CrlContents {
        number: 7,
        this_update: now,
        next_update: now + Duration::from_secs(600),
        entries: entries.to_vec(),
    };
    let crl = sign_crl(&ca, &signer, &contents).expect("a CRL signed on the token");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
    std::fs::write(dir.path().join("crl.der"), &crl).unwrap();
    let out = std::process::Command::new("openssl")
        .current_dir(dir.path())
        .args(["crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-verify", "-noout", "-text"])
        .output()
        .expect("the openssl CLI");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("verify OK"), "{text}");
    assert!(text.contains("Serial Number: 400102") && text.contains("Cessation Of Operation"), "{text}");
}
