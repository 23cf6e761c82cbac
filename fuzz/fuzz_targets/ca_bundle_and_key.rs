//! A CA Secret: `tls.crt` and `tls.key`, split at the first NUL byte (PEM holds none).
#![no_main]

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use ferrum::x509::{CaBundle, SigningKey, SoftwareKey};
use ferrum_fuzz as f;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (crt, key) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };

    if let Ok(bundle) = CaBundle::parse(crt, None) {
        assert!(!bundle.chain().is_empty());
        assert_eq!(bundle.issuing().der(), bundle.chain()[0].der());
        let chain = bundle.chain_pem(b"leaf");
        assert!(chain.starts_with("-----BEGIN CERTIFICATE-----\n"));
        // What Ferrum writes as ca.crt reads back as the same root.
        let again = CaBundle::parse(bundle.ca_pem().as_bytes(), None).expect("the ca.crt we write must parse");
        assert_eq!(again.issuing().der(), bundle.root().der());
        // The bundle again, with the key part as ca.crt.
        let _ = CaBundle::parse(crt, Some(key));
    }

    if let Ok(signer) = SoftwareKey::from_pem(key) {
        // A loaded key signs, and its signature verifies against the public key it reports
        // with the algorithm it announces.
        let message = b"fuzz";
        let signature = signer.sign(message).expect("a loaded key signs");
        let algorithm = signer.algorithm().oid;
        let verifier: &dyn VerificationAlgorithm = match algorithm {
            f::SHA256_WITH_RSA => &sig::RSA_PKCS1_2048_8192_SHA256,
            f::SHA384_WITH_RSA => &sig::RSA_PKCS1_2048_8192_SHA384,
            f::SHA512_WITH_RSA => &sig::RSA_PKCS1_2048_8192_SHA512,
            f::ECDSA_WITH_SHA256 => &sig::ECDSA_P256_SHA256_ASN1,
            f::ECDSA_WITH_SHA384 => &sig::ECDSA_P384_SHA384_ASN1,
            f::ECDSA_WITH_SHA512 => &sig::ECDSA_P521_SHA512_ASN1,
            f::ED25519 => &sig::ED25519,
            other => panic!("unexpected signature algorithm {other}"),
        };
        UnparsedPublicKey::new(verifier, signer.public_key())
            .verify(message, &signature)
            .expect("the signature verifies against the reported public key and algorithm");
    }
});
