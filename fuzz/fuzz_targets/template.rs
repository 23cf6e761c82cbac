//! The signing policy on checked CSRs, with the CSR's extension bytes mutated.
//!
//! Input: flags byte (bit 0 isCA, bits 1-3 a usage list, bit 4 spec.duration set, bit 5 allow
//! every SAN type), a length byte, that many bytes of duration text, then a CSR's DER. The DER
//! is tried as it is (seeds are real CSRs with real signatures), then re-signed with a fixed
//! Ed25519 key, so that a mutated extension still gets past the self-signature check and into
//! the template code (basicConstraints, keyUsage, extKeyUsage, subjectAltName, nameConstraints).
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use der::asn1::{BitString, SetOfVec};
use der::{Decode, Encode};
use ferrum::x509::{
    CsrError, NamePolicy, RequestedProfile, ValidatedCsr, certificate_template, check_names, parse_csr,
};
use ferrum_fuzz::{ALL_SAN_TYPES, ED25519, NAME_CONSTRAINTS, SUBJECT_ALT_NAME, extension, pem_encode};
use libfuzzer_sys::fuzz_target;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::{KeyUsages, NameConstraints};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, ExtensionReq};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

static KEY: LazyLock<Ed25519KeyPair> =
    LazyLock::new(|| Ed25519KeyPair::from_seed_unchecked(&[7; 32]).expect("fixed Ed25519 seed"));

/// cert-manager's bounds (template.rs keeps its own constants private).
const MIN_DURATION: Duration = Duration::from_secs(3600);
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

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
fn resign(mut req: CertReq) -> Option<Vec<u8>> {
    let ed25519 = AlgorithmIdentifierOwned { oid: ED25519, parameters: None };
    req.info.public_key = SubjectPublicKeyInfoOwned {
        algorithm: ed25519.clone(),
        subject_public_key: BitString::from_bytes(KEY.public_key().as_ref()).ok()?,
    };
    let info = req.info.to_der().ok()?;
    req.algorithm = ed25519;
    req.signature = BitString::from_bytes(KEY.sign(&info).as_ref()).ok()?;
    req.to_der().ok()
}

fn read(der: &[u8]) -> Result<ValidatedCsr, CsrError> {
    parse_csr(pem_encode("CERTIFICATE REQUEST", der).as_bytes())
}

fn exercise(profile: &RequestedProfile, csr: &ValidatedCsr, names: &NamePolicy) {
    let _ = check_names(csr, names);
    let Ok(t) = certificate_template(profile, csr) else { return };
    assert_eq!(t.is_ca(), profile.is_ca);
    assert_eq!(t.subject(), csr.subject());
    assert_eq!(t.public_key_info(), csr.public_key_info());
    assert!(!t.is_ca() || t.key_usage().contains(KeyUsages::KeyCertSign), "a CA without cert sign");
    assert!((MIN_DURATION..=MAX_DURATION).contains(&t.duration()), "duration {:?} out of bounds", t.duration());
    match (t.subject_alt_name(), extension(csr, SUBJECT_ALT_NAME)) {
        (None, None) => {}
        (Some(issued), Some(asked)) => {
            assert_eq!(issued.extn_value, asked.extn_value, "SANs not copied byte for byte");
            let subject_is_empty = Name::from_der(csr.subject()).expect("checked subject").is_empty();
            assert_eq!(issued.critical, subject_is_empty, "SAN criticality");
        }
        (issued, asked) => panic!("SAN issued {issued:?} for requested {asked:?}"),
    }
    match (t.name_constraints(), extension(csr, NAME_CONSTRAINTS)) {
        (None, None) => {}
        (Some(issued), Some(_)) => {
            assert!(t.is_ca(), "name constraints on a non-CA");
            NameConstraints::from_der(issued.extn_value.as_bytes()).expect("issued nameConstraints must decode");
            // What we issue, requested again, is issued unchanged (a fixed point).
            let exts: Vec<_> = csr
                .extensions()
                .iter()
                .map(|e| if e.extn_id == NAME_CONSTRAINTS { issued.clone() } else { e.clone() })
                .collect();
            let mut req = CertReq::from_der(csr.der()).expect("a checked CSR decodes");
            let attribute = Attribute::try_from(ExtensionReq(exts)).expect("extensionRequest encodes");
            req.info.attributes = SetOfVec::try_from(vec![attribute]).expect("one attribute");
            let again = read(&resign(req).expect("re-signs")).expect("the same request with our nameConstraints");
            let t2 = certificate_template(profile, &again).expect("the same profile with our nameConstraints");
            assert_eq!(t2.name_constraints(), Some(issued), "nameConstraints are not a fixed point");
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
    let names = if flags & 0x20 != 0 { NamePolicy::allowing(&ALL_SAN_TYPES) } else { NamePolicy::default() };

    if let Ok(csr) = read(der) {
        exercise(&profile, &csr, &names);
    }
    let Some(signed) = CertReq::from_der(der).ok().and_then(resign) else { return };
    match read(&signed) {
        Ok(csr) => exercise(&profile, &csr, &names),
        Err(e @ (CsrError::BadSignature | CsrError::Pem(_) | CsrError::AlgorithmMismatch { .. })) => {
            panic!("a correctly signed Ed25519 request is refused: {e}")
        }
        Err(_) => {}
    }
});
