//! The CSR table and the signing path, with the `openssl` CLI as an independent generator
//! and verifier.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use x509_parser::oid_registry;
use x509_parser::prelude::*;

use super::chain::CaBundle;
use super::constraints::ConstraintError;
use super::csr::{CsrError, Curve, Hash, KeyAlgorithm, MAX_CSR_PEM_BYTES, SignatureAlgorithm, parse_csr};
use super::issue::{Lifetime, PublishedUrls, assemble, random_serial, tbs_certificate};
use super::key::{SigningKey, SoftwareKey};
use super::names::{NameError, NamePolicy, SanType, check_names};
use super::pem::PemError;
use super::template::{PolicyError, RequestedProfile, certificate_template};
use crate::encoding::pem_encode;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl CLI is needed for these tests: apt-get install openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Generates a key with `keygen` (openssl genpkey arguments) and a CSR for it.
fn csr(keygen: &[&str], digest: Option<&str>, subject: &str, extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["genpkey"];
    args.extend(keygen);
    args.extend(["-out", "key.pem"]);
    openssl(dir.path(), &args);
    csr_for_key(dir.path(), digest, subject, extra)
}

fn csr_for_key(dir: &Path, digest: Option<&str>, subject: &str, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["req", "-new", "-key", "key.pem", "-subj", subject, "-out", "csr.pem"];
    args.extend(digest);
    args.extend(extra);
    openssl(dir, &args);
    std::fs::read(dir.join("csr.pem")).unwrap()
}

const K_RSA2048: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
const K_P256: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
const K_P384: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"];
const K_P521: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"];
const K_ED25519: &[&str] = &["-algorithm", "ED25519"];

#[test]
fn accepted_requests() {
    use {Curve::*, Hash::*};
    let table: Vec<(&[&str], Option<&str>, KeyAlgorithm, SignatureAlgorithm)> = vec![
        (K_RSA2048, Some("-sha256"), KeyAlgorithm::Rsa { bits: 2048 }, SignatureAlgorithm::RsaPkcs1(Sha256)),
        (
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"],
            Some("-sha512"),
            KeyAlgorithm::Rsa { bits: 4096 },
            SignatureAlgorithm::RsaPkcs1(Sha512),
        ),
        (K_P256, Some("-sha256"), KeyAlgorithm::Ecdsa(P256), SignatureAlgorithm::Ecdsa(Sha256)),
        (K_P256, Some("-sha384"), KeyAlgorithm::Ecdsa(P256), SignatureAlgorithm::Ecdsa(Sha384)),
        (K_P256, Some("-sha512"), KeyAlgorithm::Ecdsa(P256), SignatureAlgorithm::Ecdsa(Sha512)),
        (K_P384, Some("-sha256"), KeyAlgorithm::Ecdsa(P384), SignatureAlgorithm::Ecdsa(Sha256)),
        (K_P384, Some("-sha384"), KeyAlgorithm::Ecdsa(P384), SignatureAlgorithm::Ecdsa(Sha384)),
        (K_P384, Some("-sha512"), KeyAlgorithm::Ecdsa(P384), SignatureAlgorithm::Ecdsa(Sha512)),
        (K_P521, Some("-sha256"), KeyAlgorithm::Ecdsa(P521), SignatureAlgorithm::Ecdsa(Sha256)),
        (K_P521, Some("-sha384"), KeyAlgorithm::Ecdsa(P521), SignatureAlgorithm::Ecdsa(Sha384)),
        (K_P521, Some("-sha512"), KeyAlgorithm::Ecdsa(P521), SignatureAlgorithm::Ecdsa(Sha512)),
        (K_ED25519, None, KeyAlgorithm::Ed25519, SignatureAlgorithm::Ed25519),
    ];
    for (keygen, digest, key, signature) in table {
        let pem = csr(keygen, digest, "/CN=accepted.example", &[]);
        let checked = parse_csr(&pem).unwrap_or_else(|e| panic!("{keygen:?} {digest:?}: {e}"));
        assert_eq!((checked.key, checked.signature), (key, signature), "{keygen:?} {digest:?}");
    }
}

#[test]
fn refused_requests() {
    let rsa1024 = csr(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], Some("-sha256"), "/CN=x", &[]);
    assert_eq!(parse_csr(&rsa1024).unwrap_err(), CsrError::RsaKeySize { bits: 1024 });
    let sha1 = csr(K_RSA2048, Some("-sha1"), "/CN=x", &[]);
    assert_eq!(parse_csr(&sha1).unwrap_err(), CsrError::Sha1Signature);
    let p224 = csr(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-224"], Some("-sha256"), "/CN=x", &[]);
    assert!(matches!(parse_csr(&p224).unwrap_err(), CsrError::UnsupportedCurve(_)));

    let dir = tempfile::tempdir().unwrap();
    openssl(dir.path(), &["dsaparam", "-genkey", "-noout", "-out", "key.pem", "1024"]);
    let dsa = csr_for_key(dir.path(), Some("-sha256"), "/CN=x", &[]);
    assert_eq!(parse_csr(&dsa).unwrap_err(), CsrError::Dsa);

    assert!(matches!(parse_csr(&vec![b'a'; 36_501]).unwrap_err(), CsrError::TooLarge { size: 36_501 }));
    assert_eq!(parse_csr(b"not a csr").unwrap_err(), CsrError::Pem(PemError::NoBlock));
    let junk = pem_encode("CERTIFICATE REQUEST", b"\x30\x03\x02\x01\x01");
    assert!(matches!(parse_csr(junk.as_bytes()).unwrap_err(), CsrError::Malformed(_)));
}

#[test]
fn tampered_signature_is_refused() {
    let pem = csr(K_P256, Some("-sha256"), "/CN=honest.example", &[]);
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(&pem)
        .map(|d: rustls_pki_types::CertificateSigningRequestDer<'_>| d.as_ref().to_vec())
        .unwrap();
    // Change one letter of the subject: "honest" → "hunest".
    let at = der.windows(6).position(|w| w == b"honest").unwrap() + 1;
    let mut tampered = der.clone();
    tampered[at] = b'u';
    let err = parse_csr(pem_encode("CERTIFICATE REQUEST", &tampered).as_bytes()).unwrap_err();
    assert_eq!(err, CsrError::BadSignature);
    assert!(err.to_string().contains("does not verify"));
}

fn profile(is_ca: bool, usages: &[&str]) -> RequestedProfile {
    RequestedProfile { duration: None, is_ca, usages: usages.iter().map(|u| u.to_string()).collect() }
}

#[test]
fn policy_checks_csr_extensions_against_spec() {
    let ca_csr =
        parse_csr(&csr(K_P256, Some("-sha256"), "/CN=x", &["-addext", "basicConstraints=critical,CA:TRUE"])).unwrap();
    assert_eq!(
        certificate_template(&profile(false, &[]), &ca_csr).unwrap_err(),
        PolicyError::IsCaMismatch { csr: true, spec: false }
    );
    assert!(certificate_template(&profile(true, &[]), &ca_csr).is_ok());

    let ds_only = parse_csr(&csr(K_P256, Some("-sha256"), "/CN=x", &["-addext", "keyUsage=digitalSignature"])).unwrap();
    let err = certificate_template(&profile(false, &[]), &ds_only).unwrap_err();
    assert!(matches!(err, PolicyError::KeyUsageMismatch { .. }), "{err}");
    assert!(certificate_template(&profile(false, &["digital signature"]), &ds_only).is_ok());

    let with_eku = parse_csr(&csr(
        K_P256,
        Some("-sha256"),
        "/CN=x",
        &["-addext", "keyUsage=digitalSignature,keyEncipherment", "-addext", "extendedKeyUsage=serverAuth"],
    ))
    .unwrap();
    let err = certificate_template(&profile(false, &[]), &with_eku).unwrap_err();
    assert!(matches!(err, PolicyError::ExtKeyUsageMismatch { .. }), "{err}");
    let ok = profile(false, &["digital signature", "key encipherment", "server auth"]);
    assert!(certificate_template(&ok, &with_eku).is_ok());

    // Extended key usages are a set: the CSR's order need not be the spec's.
    let two_ekus = parse_csr(&csr(
        K_P256,
        Some("-sha256"),
        "/CN=x",
        &["-addext", "keyUsage=digitalSignature,keyEncipherment", "-addext", "extendedKeyUsage=clientAuth,serverAuth"],
    ))
    .unwrap();
    let reordered = profile(false, &["digital signature", "key encipherment", "server auth", "client auth"]);
    assert!(certificate_template(&reordered, &two_ekus).is_ok(), "same EKUs in another order");
    let fewer = profile(false, &["digital signature", "key encipherment", "server auth"]);
    assert!(matches!(certificate_template(&fewer, &two_ekus).unwrap_err(), PolicyError::ExtKeyUsageMismatch { .. }));

    assert!(matches!(
        certificate_template(&profile(false, &["flying"]), &ds_only).unwrap_err(),
        PolicyError::UnknownUsage(_)
    ));
}

#[test]
fn policy_bounds_duration() {
    let checked = parse_csr(&csr(K_P256, Some("-sha256"), "/CN=x", &[])).unwrap();
    let with = |d: &str| RequestedProfile { duration: Some(d.into()), ..profile(false, &[]) };
    assert_eq!(certificate_template(&with("2160h0m0s"), &checked).unwrap().duration, Duration::from_secs(2160 * 3600));
    assert!(matches!(certificate_template(&with("30m"), &checked).unwrap_err(), PolicyError::Duration(_)));
    assert!(matches!(certificate_template(&with("1000000h"), &checked).unwrap_err(), PolicyError::Duration(_)));
    assert!(matches!(certificate_template(&with("soon"), &checked).unwrap_err(), PolicyError::Duration(_)));
    assert_eq!(certificate_template(&profile(false, &[]), &checked).unwrap().duration, Duration::from_secs(90 * 86400));
}

/// A self-signed CA made by openssl; returns (dir, cert PEM, key PEM).
fn openssl_ca(keygen: &[&str], key_format: &[&str]) -> (tempfile::TempDir, Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["genpkey"];
    args.extend(keygen);
    args.extend(["-out", "ca.key"]);
    openssl(dir.path(), &args);
    let mut convert = vec!["pkey", "-in", "ca.key", "-out", "ca-converted.key"];
    convert.extend(key_format);
    openssl(dir.path(), &convert);
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/O=Ferrum Test/CN=Ferrum Test CA",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "ca.crt",
        ],
    );
    let crt = std::fs::read(dir.path().join("ca.crt")).unwrap();
    let key = std::fs::read(dir.path().join("ca-converted.key")).unwrap();
    (dir, crt, key)
}

fn issue(
    ca_crt: &[u8],
    ca_key: &[u8],
    csr_pem: &[u8],
    profile: &RequestedProfile,
    urls: &PublishedUrls,
) -> (Vec<u8>, Lifetime) {
    let bundle = CaBundle::parse(ca_crt, None).unwrap();
    let key = SoftwareKey::from_pem(ca_key).unwrap();
    assert_eq!(key.public_key(), bundle.issuing().public_key.as_slice(), "the CA key matches its certificate");
    let checked = parse_csr(csr_pem).unwrap();
    let template = certificate_template(profile, &checked).unwrap();
    let info = bundle.issuer_info();
    let lifetime = Lifetime::new(SystemTime::now(), template.duration, info.not_after);
    let tbs = tbs_certificate(&template, &info, &lifetime, &random_serial(), &key.algorithm(), urls).unwrap();
    let signature = key.sign(&tbs).unwrap();
    (assemble(&tbs, &key.algorithm(), &signature).unwrap(), lifetime)
}

#[test]
fn issued_certificates_verify_with_openssl_for_each_ca_key_type() {
    let cases: Vec<(&[&str], &[&str])> = vec![
        (K_RSA2048, &["-traditional"]), // PKCS#1
        (K_P256, &["-traditional"]),    // SEC1
        (K_P384, &[]),                  // PKCS#8
        (K_P521, &[]),
        (K_ED25519, &[]),
    ];
    for (keygen, format) in cases {
        let (dir, ca_crt, ca_key) = openssl_ca(keygen, format);
        let leaf_csr =
            csr(K_P256, Some("-sha256"), "/CN=leaf.example", &["-addext", "subjectAltName=DNS:leaf.example"]);
        let (der, lifetime) = issue(&ca_crt, &ca_key, &leaf_csr, &profile(false, &[]), &PublishedUrls::default());
        assert!(lifetime.clamped, "a 90-day request against a 30-day CA is clamped");
        std::fs::write(dir.path().join("leaf.pem"), pem_encode("CERTIFICATE", &der)).unwrap();
        let out = Command::new("openssl")
            .current_dir(dir.path())
            .args(["verify", "-CAfile", "ca.crt", "leaf.pem"])
            .output()
            .unwrap();
        assert!(out.status.success(), "CA {keygen:?}: {}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn subject_sans_and_extensions_are_as_requested() {
    let (_dir, ca_crt, ca_key) = openssl_ca(K_P256, &[]);
    let request = csr(
        K_P256,
        Some("-sha256"),
        "/O=Team/O=Team/OU=a/CN=repeat.example",
        &["-addext", "subjectAltName=DNS:a.example,IP:10.1.2.3,URI:spiffe://cluster/ns/x,email:ops@example.com"],
    );
    let urls = PublishedUrls {
        crl_distribution_points: vec!["http://crl.example/ca.crl".into()],
        ocsp_servers: vec!["http://ocsp.example".into()],
        issuing_certificate_urls: vec!["http://ca.example/ca.crt".into()],
    };
    let usages = profile(false, &["digital signature", "key encipherment", "server auth", "client auth"]);
    let (der, _) = issue(&ca_crt, &ca_key, &request, &usages, &urls);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let csr_der = rustls_pki_types::pem::PemObject::from_pem_slice(&request)
        .map(|d: rustls_pki_types::CertificateSigningRequestDer<'_>| d.as_ref().to_vec())
        .unwrap();
    let (_, parsed_csr) = X509CertificationRequest::from_der(&csr_der).unwrap();
    assert_eq!(
        cert.subject().as_raw(),
        parsed_csr.certification_request_info.subject.as_raw(),
        "subject byte for byte"
    );
    assert_eq!(cert.subject().iter_organization().count(), 2, "repeated RDNs kept");
    let bundle = CaBundle::parse(&ca_crt, None).unwrap();
    let (_, ca) = X509Certificate::from_der(&bundle.issuing().der).unwrap();
    assert_eq!(cert.issuer().as_raw(), ca.subject().as_raw(), "issuer = the CA's subject bytes");

    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert!(!san.critical);
    let names: Vec<String> = san.value.general_names.iter().map(|n| n.to_string()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical && ku.value.digital_signature() && ku.value.key_encipherment() && !ku.value.key_cert_sign());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth && !eku.code_signing);
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && !bc.value.ca);
    assert!(cert.serial.bits() >= 64, "serial has at least 64 random bits");
    let exts = cert.extensions_map().unwrap();
    assert!(exts.contains_key(&oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER));
    assert!(exts.contains_key(&oid_registry::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER));
    assert!(exts.contains_key(&oid_registry::OID_X509_EXT_CRL_DISTRIBUTION_POINTS));
    assert!(exts.contains_key(&oid_registry::OID_PKIX_AUTHORITY_INFO_ACCESS));
}

#[test]
fn keys_that_do_not_load_say_so_without_key_material() {
    let err = SoftwareKey::from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap_err();
    assert!(err.to_string().contains("could not be loaded"), "{err}");
    assert!(!err.to_string().contains("AAAA"));
    let key = SoftwareKey::from_pem(&openssl_ca(K_P256, &[]).2).unwrap();
    assert_eq!(format!("{key:?}"), "SoftwareKey::Ecdsa(<redacted>)");
}

const PSS: &[&str] = &["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"];

#[test]
fn rsa_pss_requests_are_accepted_with_go_parameters_only() {
    use Hash::*;
    for (digest, hash) in [("-sha256", Sha256), ("-sha384", Sha384), ("-sha512", Sha512)] {
        let pem = csr(K_RSA2048, Some(digest), "/CN=pss.example", PSS);
        let checked = parse_csr(&pem).unwrap_or_else(|e| panic!("{digest}: {e}"));
        assert_eq!(checked.signature, SignatureAlgorithm::RsaPss(hash), "{digest}");
    }
    let salt20 = csr(
        K_RSA2048,
        Some("-sha256"),
        "/CN=pss.example",
        &["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:20"],
    );
    let err = parse_csr(&salt20).unwrap_err();
    assert_eq!(
        err,
        CsrError::UnsupportedSignature(
            "RSASSA-PSS with a salt of 20 bytes; the salt must be as long as the hash (32)".into()
        )
    );
    let mgf_sha1 = csr(
        K_RSA2048,
        Some("-sha256"),
        "/CN=pss.example",
        &["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest", "-sigopt", "rsa_mgf1_md:sha1"],
    );
    assert_eq!(
        parse_csr(&mgf_sha1).unwrap_err(),
        CsrError::UnsupportedSignature(
            "RSASSA-PSS with a mask generation other than MGF1 with the signature's own hash".into()
        )
    );
}

#[test]
fn csr_size_cap_is_exact() {
    let pem = csr(K_P256, Some("-sha256"), "/CN=cap.example", &[]);
    // Whitespace around the block counts towards the cap, as cert-manager counts the field.
    let padded = |len: usize| {
        let mut p = pem.clone();
        p.resize(len, b'\n');
        p
    };
    assert!(parse_csr(&padded(MAX_CSR_PEM_BYTES)).is_ok(), "36,500 bytes are accepted");
    assert_eq!(parse_csr(&padded(MAX_CSR_PEM_BYTES + 1)).unwrap_err(), CsrError::TooLarge { size: 36_501 });
}

fn names_of(extra: &[&str], subject: &str) -> Result<(), NameError> {
    let checked = parse_csr(&csr(K_P256, Some("-sha256"), subject, extra)).unwrap();
    check_names(&checked, &NamePolicy::default())
}

#[test]
fn names_are_parsed_and_refused_with_the_reason() {
    let san = |value: &str| vec!["-addext".to_owned(), format!("subjectAltName={value}")];
    let ok = san("DNS:a.example,DNS:*.b.example,IP:10.0.0.1,IP:2001:db8::1,URI:spiffe://c/ns/x,email:o@example.com");
    assert_eq!(names_of(&ok.iter().map(String::as_str).collect::<Vec<_>>(), "/CN=a.example"), Ok(()));
    assert_eq!(names_of(&[], "/CN=a/CN=b"), Err(NameError::DuplicateCommonName(2)));
    assert_eq!(names_of(&[], "/"), Err(NameError::NamesNothing), "empty subject, no SAN");
    assert_eq!(names_of(&["-addext", "subjectAltName=DNS:only-san.example"], "/"), Ok(()), "a SAN alone names it");
    assert_eq!(names_of(&[], "/O=x/CN=a/OU=y/CN=b/CN=c"), Err(NameError::DuplicateCommonName(3)));

    let refused: Vec<(String, SanType)> = vec![
        ("otherName:1.3.6.1.4.1.311.20.2.3;UTF8:user@example.com".into(), SanType::OtherName),
        ("dirName:dir_sect".into(), SanType::DirectoryName),
        ("RID:1.2.3.4".into(), SanType::RegisteredID),
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dir.cnf"), "[req]\ndistinguished_name=dn\n[dn]\n[dir_sect]\nCN=Hidden\n").unwrap();
    let config = dir.path().join("dir.cnf");
    for (value, t) in refused {
        let pem = csr(
            K_P256,
            Some("-sha256"),
            "/CN=x",
            &["-config", config.to_str().unwrap(), "-addext", &format!("subjectAltName={value}")],
        );
        let checked = parse_csr(&pem).unwrap();
        assert_eq!(check_names(&checked, &NamePolicy::default()), Err(NameError::SanTypeNotAllowed(t)), "{value}");
        assert!(
            check_names(&checked, &NamePolicy::default())
                .unwrap_err()
                .to_string()
                .contains("allowedSubjectAltNameTypes")
        );
        assert_eq!(check_names(&checked, &NamePolicy::allowing(&[t])), Ok(()), "{value} allowed by the issuer");
    }

    // Malformed entries, written as raw DER: [7] of 5 bytes, an empty [2], a URI with a space.
    let raw = |der: &str| vec!["-addext".to_owned(), format!("subjectAltName=DER:{der}")];
    let cases = [
        ("300a87050102030405820161", "IP address"),
        ("30058200820161", "DNS name"),
        ("300b8609687474703a2f2f6120", "URI"),
    ];
    for (der, kind) in cases {
        let args = raw(der);
        let err = names_of(&args.iter().map(String::as_str).collect::<Vec<_>>(), "/CN=x").unwrap_err();
        assert!(matches!(&err, NameError::Malformed { index: 1, kind: k, .. } if *k == kind), "{der}: {err}");
    }
}

#[test]
fn sub_ca_name_constraints_are_carried_as_cert_manager_does() {
    let (dir, ca_crt, ca_key) = openssl_ca(K_P256, &[]);
    let request = csr(
        K_P256,
        Some("-sha256"),
        "/CN=Sub CA",
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext",
            "nameConstraints=critical,permitted;email:.example.com,permitted;IP:10.1.2.3/255.255.0.0,permitted;DNS:.example.com,excluded;DNS:bad.example.com",
        ],
    );
    let (der, _) = issue(&ca_crt, &ca_key, &request, &profile(true, &[]), &PublishedUrls::default());
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(
        bc.value.ca && bc.value.path_len_constraint.is_none(),
        "the CSR's pathLen is dropped, as cert-manager does"
    );
    let nc = cert.extensions().iter().find(|e| e.oid == oid_registry::OID_X509_EXT_NAME_CONSTRAINTS).unwrap();
    assert!(nc.critical);
    // Re-encoded in Go's order (DNS, IP, email), the IP range masked.
    let expected =
        hex("3043 a02c 300e820c2e6578616d706c652e636f6d 300a87080a010000ffff0000 300e810c2e6578616d706c652e636f6d
                        a113 3011820f6261642e6578616d706c652e636f6d");
    assert_eq!(nc.value, expected.as_slice());
    std::fs::write(dir.path().join("sub.pem"), pem_encode("CERTIFICATE", &der)).unwrap();
    let out = Command::new("openssl")
        .current_dir(dir.path())
        .args(["verify", "-CAfile", "ca.crt", "sub.pem"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    let leaf =
        parse_csr(&csr(K_P256, Some("-sha256"), "/CN=x", &["-addext", "nameConstraints=permitted;DNS:.example.com"]))
            .unwrap();
    assert_eq!(
        certificate_template(&profile(false, &[]), &leaf).unwrap_err(),
        PolicyError::NameConstraints(ConstraintError::NotACa)
    );
    let dir_constraint = parse_csr(&csr(
        K_P256,
        Some("-sha256"),
        "/CN=x",
        &["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "nameConstraints=permitted;RID:1.2.3"],
    ))
    .unwrap();
    assert_eq!(
        certificate_template(&profile(true, &[]), &dir_constraint).unwrap_err(),
        PolicyError::NameConstraints(ConstraintError::UnsupportedType(8))
    );
}

fn hex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}
