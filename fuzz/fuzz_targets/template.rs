//! The signing policy on checked CSRs, with the CSR's extension bytes mutated.
//!
//! Input: flags byte (bit 0 isCA, bits 1-3 a usage list, bit 4 spec.duration set, bit 5 allow
//! every SAN type), a length byte, that many bytes of duration text, then a CSR's DER. The DER
//! is tried as it is (seeds are real CSRs with real signatures), then re-signed with a fixed
//! Ed25519 key, so that a mutated extension still gets past the self-signature check and into
//! the template code (basicConstraints, keyUsage, extKeyUsage, subjectAltName, nameConstraints).
#![no_main]

use std::sync::LazyLock;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use der::asn1::BitString;
use der::{Decode, Encode};
use ferrum::encoding::pem_encode;
use ferrum::x509::constraints::requested_name_constraints;
use ferrum::x509::csr::{CsrError, ValidatedCsr, parse_csr};
use ferrum::x509::names::{NamePolicy, SanType, check_names};
use ferrum::x509::oids;
use ferrum::x509::template::{MAX_DURATION, MIN_DURATION, RequestedProfile, certificate_template};
use libfuzzer_sys::fuzz_target;
use x509_cert::ext::pkix::{KeyUsages, NameConstraints};
use x509_cert::request::CertReq;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

static KEY: LazyLock<Ed25519KeyPair> =
    LazyLock::new(|| Ed25519KeyPair::from_seed_unchecked(&[7; 32]).expect("fixed Ed25519 seed"));

const USAGES: [&[&str]; 8] = [
    &[],
    &["server auth"],
    &["digital signature", "key encipherment"],
    &["digital signature", "key encipherment", "server auth"],
    &["digital signature", "key encipherment", "server auth", "client auth"],
    &["cert sign", "crl sign", "digital signature"],
    &["any", "signing", "content commitment"],
    &["no such usage"],
];

/// The request with the fixed key put in and its self-signature made again.
fn resign(der: &[u8]) -> Option<Vec<u8>> {
    let mut req = CertReq::from_der(der).ok()?;
    let ed25519 = AlgorithmIdentifierOwned { oid: oids::ED25519, parameters: None };
    req.info.public_key = SubjectPublicKeyInfoOwned {
        algorithm: ed25519.clone(),
        subject_public_key: BitString::from_bytes(KEY.public_key().as_ref()).ok()?,
    };
    let info = req.info.to_der().ok()?;
    req.algorithm = ed25519;
    req.signature = BitString::from_bytes(KEY.sign(&info).as_ref()).ok()?;
    req.to_der().ok()
}

fn exercise(profile: &RequestedProfile, csr: &ValidatedCsr, names: &NamePolicy) {
    let _ = check_names(csr, names);
    let Ok(t) = certificate_template(profile, csr) else { return };
    assert_eq!(t.is_ca, profile.is_ca);
    assert_eq!(t.subject, csr.subject);
    assert_eq!(t.public_key_info, csr.public_key_info);
    assert!(!t.is_ca || t.key_usage.contains(KeyUsages::KeyCertSign), "a CA without cert sign");
    assert!((MIN_DURATION..=MAX_DURATION).contains(&t.duration), "duration {:?} out of bounds", t.duration);
    match (&t.subject_alt_name, csr.extension(oids::SUBJECT_ALT_NAME)) {
        (None, None) => {}
        (Some(issued), Some(asked)) => {
            assert_eq!(issued.extn_value, asked.extn_value, "SANs not copied byte for byte");
            assert_eq!(issued.critical, csr.subject_is_empty);
        }
        (issued, asked) => panic!("SAN issued {issued:?} for requested {asked:?}"),
    }
    match (&t.name_constraints, csr.extension(oids::NAME_CONSTRAINTS)) {
        (None, None) => {}
        (Some(issued), Some(_)) => {
            assert!(t.is_ca, "name constraints on a non-CA");
            NameConstraints::from_der(issued.extn_value.as_bytes()).expect("issued nameConstraints must decode");
            // What we issue, requested again, is issued unchanged.
            let mut again = csr.clone();
            for e in &mut again.extensions {
                if e.extn_id == oids::NAME_CONSTRAINTS {
                    *e = issued.clone();
                }
            }
            let reissued = requested_name_constraints(&again, true).expect("issued nameConstraints re-read");
            assert_eq!(reissued.as_ref(), Some(issued), "nameConstraints are not a fixed point");
        }
        (issued, asked) => panic!("nameConstraints issued {issued:?} for requested {asked:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, len, rest @ ..] = data else { return };
    let len = (*len as usize % 24).min(rest.len());
    let (duration, der) = rest.split_at(len);
    let profile = RequestedProfile {
        duration: (flags & 0x10 != 0).then(|| String::from_utf8_lossy(duration).into_owned()),
        is_ca: flags & 1 != 0,
        usages: USAGES[usize::from(flags >> 1) & 7].iter().map(|u| u.to_string()).collect(),
    };
    let names = if flags & 0x20 != 0 {
        NamePolicy::allowing(&[
            SanType::OtherName,
            SanType::X400Address,
            SanType::DirectoryName,
            SanType::EdiPartyName,
            SanType::RegisteredID,
        ])
    } else {
        NamePolicy::default()
    };

    if let Ok(csr) = parse_csr(pem_encode("CERTIFICATE REQUEST", der).as_bytes()) {
        exercise(&profile, &csr, &names);
    }
    let Some(signed) = resign(der) else { return };
    match parse_csr(pem_encode("CERTIFICATE REQUEST", &signed).as_bytes()) {
        Ok(csr) => exercise(&profile, &csr, &names),
        Err(e @ (CsrError::BadSignature | CsrError::Pem(_) | CsrError::AlgorithmMismatch { .. })) => {
            panic!("a correctly signed Ed25519 request is refused: {e}")
        }
        Err(_) => {}
    }
});
