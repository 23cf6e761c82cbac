//! A CA Secret: `tls.crt` and `tls.key`, split at the first NUL byte (PEM holds none).
#![no_main]

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use ferrum::x509::chain::CaBundle;
use ferrum::x509::csr::Curve;
use ferrum::x509::key::{CertificateSigner, SoftwareKey};
use ferrum::x509::oids;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (crt, key) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };

    if let Ok(bundle) = CaBundle::parse(crt, None) {
        let info = bundle.issuer_info();
        assert_eq!(info.subject, bundle.issuing().subject);
        let chain = bundle.chain_pem(b"leaf");
        assert!(chain.starts_with("-----BEGIN CERTIFICATE-----\n"));
        // What Ferrum writes as ca.crt reads back as the same root.
        let again = CaBundle::parse(bundle.ca_pem().as_bytes(), None).expect("ca.crt we wrote must parse");
        assert_eq!(again.issuing().der, bundle.root.der);
        // The bundle again, with the key part as ca.crt.
        let _ = CaBundle::parse(crt, Some(key));
    }

    if let Ok(signer) = SoftwareKey::from_pem(key) {
        // A loaded key signs, and its signature verifies against the public key it reports.
        let message = b"fuzz";
        let signature = signer.sign(message).expect("a loaded key signs");
        let algorithm = signer.algorithm().oid;
        let verifier: &dyn VerificationAlgorithm = match &signer {
            SoftwareKey::Rsa(_) if algorithm == oids::SHA512_WITH_RSA => &sig::RSA_PKCS1_2048_8192_SHA512,
            SoftwareKey::Rsa(_) if algorithm == oids::SHA384_WITH_RSA => &sig::RSA_PKCS1_2048_8192_SHA384,
            SoftwareKey::Rsa(_) => &sig::RSA_PKCS1_2048_8192_SHA256,
            SoftwareKey::Ecdsa(_, Curve::P256) => &sig::ECDSA_P256_SHA256_ASN1,
            SoftwareKey::Ecdsa(_, Curve::P384) => &sig::ECDSA_P384_SHA384_ASN1,
            SoftwareKey::Ecdsa(_, Curve::P521) => &sig::ECDSA_P521_SHA512_ASN1,
            SoftwareKey::Ed25519(_) => &sig::ED25519,
        };
        UnparsedPublicKey::new(verifier, signer.public_key())
            .verify(message, &signature)
            .expect("the signature verifies against the reported public key");
    }
});
