//! Contract §3, what goes into the certificate, checked field by field on certificates Ferrum
//! issued through the apiserver: serial numbers, published URLs, key types, CA requests, the
//! default usages and chains from an intermediate CA.

use std::time::Duration;

use ferrum::ca::{CaIssuerSpec, FerrumIssuerSpec, kinds};
use ferrum::x509::PublishedUrls;
use ferrum::{CertificateRequest, CertificateRequestSpec, Issuer, IssuerScope};
use kube::api::PostParams;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::oid_registry::{OID_PKIX_AUTHORITY_INFO_ACCESS, OID_X509_EXT_CRL_DISTRIBUTION_POINTS};
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

use crate::support::*;

/// Creates and approves requests (name, spec) and returns them once issued, in order.
async fn issue_all(h: &Harness, requests: Vec<(&str, CertificateRequestSpec)>) -> Vec<CertificateRequest> {
    for (name, spec) in &requests {
        h.create_request_spec(name, spec.clone()).await;
        h.decide(name, true).await;
    }
    let mut issued = Vec::new();
    for (name, _) in &requests {
        issued.push(h.request_reason(name, "Issued", Duration::from_secs(20)).await);
    }
    issued
}

/// A request spec for `csr` to the FerrumIssuer `issuer`.
fn spec_for(csr: Vec<u8>, issuer: &str) -> CertificateRequestSpec {
    CertificateRequestSpec {
        request: csr,
        issuer_ref: ferrum_ref(IssuerScope::Namespaced, issuer),
        ..Default::default()
    }
}

/// (status.certificate as DER certificates, status.ca as DER certificates).
fn chain_of(cr: &CertificateRequest) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let status = cr.status.clone().expect("status");
    (pem_certs(&status.certificate), pem_certs(&status.ca))
}

/// The key usage bits of a certificate as names, and whether the extension is critical.
fn key_usages(cert: &X509Certificate<'_>) -> (Vec<&'static str>, bool) {
    let ku = cert.key_usage().expect("keyUsage parses").expect("keyUsage present");
    let v = ku.value;
    let named = [
        (v.digital_signature(), "digitalSignature"),
        (v.non_repudiation(), "nonRepudiation"),
        (v.key_encipherment(), "keyEncipherment"),
        (v.data_encipherment(), "dataEncipherment"),
        (v.key_agreement(), "keyAgreement"),
        (v.key_cert_sign(), "keyCertSign"),
        (v.crl_sign(), "cRLSign"),
        (v.encipher_only(), "encipherOnly"),
        (v.decipher_only(), "decipherOnly"),
    ];
    (named.into_iter().filter(|(set, _)| *set).map(|(_, name)| name).collect(), ku.critical)
}

/// Eight certificates from one issuer: serial numbers distinct, positive, at most 20 octets,
/// minimally encoded, and random: a counter or a clock varies in few bit positions, while 64
/// random bits leave each position constant across eight serials with probability 2^-7, so
/// that at least 56 of the low 64 positions must vary (a random serial misses this with
/// probability about 10^-9).
#[tokio::test(flavor = "multi_thread")]
async fn serial_numbers_are_random_positive_and_distinct() {
    let (h, _ca) = ready_world("serials", &[]).await;
    let names: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
    let requests = names.iter().map(|n| (n.as_str(), spec_for(csr_pem(&format!("{n}.example")), "ca"))).collect();
    let issued = issue_all(&h, requests).await;
    let serials: Vec<Vec<u8>> = issued
        .iter()
        .map(|cr| {
            let der = chain_of(cr).0.remove(0);
            let (_, cert) = X509Certificate::from_der(&der).expect("leaf parses");
            cert.raw_serial().to_vec()
        })
        .collect();
    for serial in &serials {
        let hex = hex(serial);
        assert!(!serial.is_empty() && serial.len() <= 20, "at most 20 octets: {hex}");
        assert!(serial[0] & 0x80 == 0, "positive: {hex}");
        assert!(serial.iter().any(|b| *b != 0), "not zero: {hex}");
        assert!(!(serial.len() > 1 && serial[0] == 0 && serial[1] & 0x80 == 0), "minimal DER: {hex}");
    }
    let mut distinct = serials.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), serials.len(), "distinct: {:?}", serials.iter().map(|s| hex(s)).collect::<Vec<_>>());
    // The low 64 bits of each serial (right-aligned, zero-padded).
    let low: Vec<u64> =
        serials.iter().map(|s| s.iter().rev().take(8).rev().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))).collect();
    let varying = (0..64).filter(|bit| low.iter().any(|v| (v >> bit) & 1 != (low[0] >> bit) & 1)).count();
    assert!(
        varying >= 56,
        "only {varying} of 64 bit positions vary across the serials: {:?}",
        serials.iter().map(|s| hex(s)).collect::<Vec<_>>()
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An issuer with CRL distribution points, OCSP servers and issuing-certificate URLs writes
/// exactly those, in order, non-critical: the CRL distribution points each as one fullName URI,
/// authorityInfoAccess with the OCSP entries then the caIssuers entries. An issuer without URLs
/// writes neither extension.
#[tokio::test(flavor = "multi_thread")]
async fn published_urls_are_written_with_their_exact_values() {
    let (h, ca) = ready_world("urls", &[]).await;
    let crl = ["http://crl.example/ca.crl", "ldap://ldap.example/cn=CA?certificateRevocationList"];
    let ocsp = ["http://ocsp.example", "http://ocsp2.example/path"];
    let issuing = ["http://certs.example/ca.der"];
    let spec = FerrumIssuerSpec {
        ca: Some(CaIssuerSpec {
            secret_name: "ca".into(),
            published: PublishedUrls {
                crl_distribution_points: crl.iter().map(|s| s.to_string()).collect(),
                ocsp_servers: ocsp.iter().map(|s| s.to_string()).collect(),
                issuing_certificate_urls: issuing.iter().map(|s| s.to_string()).collect(),
            },
            next: None,
        }),
        ..Default::default()
    };
    let issuer = Issuer::new("published", &kinds().api_resource(IssuerScope::Namespaced), spec);
    h.issuers(IssuerScope::Namespaced).create(&PostParams::default(), &issuer).await.unwrap();
    h.issuer_ready(IssuerScope::Namespaced, "published", "True").await;

    let issued = issue_all(
        &h,
        vec![
            ("with-urls", spec_for(csr_pem("urls.example"), "published")),
            ("without-urls", spec_for(csr_pem("plain.example"), "ca")),
        ],
    )
    .await;
    let der = chain_of(&issued[0]).0.remove(0);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();

    let crl_ext =
        cert.get_extension_unique(&OID_X509_EXT_CRL_DISTRIBUTION_POINTS).unwrap().expect("CRL distribution points");
    assert!(!crl_ext.critical);
    let ParsedExtension::CRLDistributionPoints(points) = crl_ext.parsed_extension() else {
        panic!("CRL distribution points do not parse: {:?}", crl_ext.parsed_extension());
    };
    let crl_urls: Vec<&str> = points
        .iter()
        .map(|p| {
            assert!(p.reasons.is_none() && p.crl_issuer.is_none(), "{p:?}");
            match &p.distribution_point {
                Some(DistributionPointName::FullName(names)) => match names.as_slice() {
                    [GeneralName::URI(uri)] => *uri,
                    other => panic!("one URI per point: {other:?}"),
                },
                other => panic!("a fullName: {other:?}"),
            }
        })
        .collect();
    assert_eq!(crl_urls, crl);

    let aia_ext = cert.get_extension_unique(&OID_PKIX_AUTHORITY_INFO_ACCESS).unwrap().expect("authorityInfoAccess");
    assert!(!aia_ext.critical);
    let ParsedExtension::AuthorityInfoAccess(aia) = aia_ext.parsed_extension() else {
        panic!("authorityInfoAccess does not parse: {:?}", aia_ext.parsed_extension());
    };
    let access: Vec<(String, &str)> = aia
        .iter()
        .map(|d| match &d.access_location {
            GeneralName::URI(uri) => (d.access_method.to_id_string(), *uri),
            other => panic!("a URI: {other:?}"),
        })
        .collect();
    let expected: Vec<(String, &str)> = ocsp
        .iter()
        .map(|u| ("1.3.6.1.5.5.7.48.1".to_owned(), *u))
        .chain(issuing.iter().map(|u| ("1.3.6.1.5.5.7.48.2".to_owned(), *u)))
        .collect();
    assert_eq!(access, expected, "OCSP entries, then caIssuers");

    let der = chain_of(&issued[1]).0.remove(0);
    let (_, plain) = X509Certificate::from_der(&der).unwrap();
    for oid in [OID_X509_EXT_CRL_DISTRIBUTION_POINTS, OID_PKIX_AUTHORITY_INFO_ACCESS] {
        assert!(plain.get_extension_unique(&oid).unwrap().is_none(), "no {oid} without URLs in the issuer");
    }
    let (ok, out) = openssl_verify(ca.cert_pem.as_bytes(), b"", &issued[0].status.clone().unwrap().certificate);
    assert!(ok, "openssl verify: {out}");
}

/// An RSA-2048 leaf, an Ed25519 leaf, a CA (spec.isCA with a CSR that asks nothing) and a leaf
/// with no spec.usages, from one issuer: each carries the requested key, the issuer's name,
/// and cert-manager's profile: keyUsage digitalSignature + keyEncipherment (critical) when no
/// usages are given, keyCertSign added for a CA, no extendedKeyUsage, basicConstraints
/// critical with cA as requested and no path length; each verifies with openssl.
#[tokio::test(flavor = "multi_thread")]
async fn rsa_ed25519_ca_and_default_usage_certificates() {
    let (h, ca) = ready_world("keys", &[]).await;
    h.allow_ca(IssuerScope::Namespaced, "ca").await;
    let ed25519 = &["-algorithm", "ED25519"][..];
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("rsa", openssl_csr(RSA2048, "/CN=rsa.example", &["-addext", "subjectAltName=DNS:rsa.example"]), false),
        ("ed25519", openssl_csr(ed25519, "/CN=ed.example", &["-addext", "subjectAltName=DNS:ed.example"]), false),
        ("sub-ca", openssl_csr(P256, "/O=Ferrum/CN=Sub CA", &[]), true),
        ("defaults", csr_pem("defaults.example"), false),
    ];
    let requests = cases
        .iter()
        .map(|(name, csr, is_ca)| (*name, CertificateRequestSpec { is_ca: *is_ca, ..spec_for(csr.clone(), "ca") }))
        .collect();
    let issued = issue_all(&h, requests).await;
    let ca_der = pem_certs(ca.cert_pem.as_bytes()).remove(0);
    let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();

    for ((name, csr, is_ca), cr) in cases.iter().zip(&issued) {
        let (chain, roots) = chain_of(cr);
        assert_eq!(chain.len(), 1, "{name}: a leaf, the self-signed root not repeated");
        assert_eq!(roots, vec![ca_der.clone()], "{name}: status.ca is the CA");
        let (_, cert) = X509Certificate::from_der(&chain[0]).unwrap();
        let csr_der = x509_parser::pem::parse_x509_pem(csr).unwrap().1.contents;
        let (_, request) = X509CertificationRequest::from_der(&csr_der).unwrap();
        assert_eq!(cert.public_key().raw, request.certification_request_info.subject_pki.raw, "{name}: the CSR's key");
        assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw(), "{name}: issuer = the CA's subject");
        assert_eq!(cert.subject().as_raw(), request.certification_request_info.subject.as_raw(), "{name}: subject");

        let bc = cert.basic_constraints().unwrap().expect("basicConstraints");
        assert!(bc.critical, "{name}: basicConstraints critical");
        assert_eq!(bc.value.ca, *is_ca, "{name}: cA");
        assert_eq!(bc.value.path_len_constraint, None, "{name}: no path length");
        let (usages, critical) = key_usages(&cert);
        let expected = if *is_ca {
            vec!["digitalSignature", "keyEncipherment", "keyCertSign"]
        } else {
            vec!["digitalSignature", "keyEncipherment"]
        };
        assert_eq!((usages, critical), (expected, true), "{name}: keyUsage");
        assert!(cert.extended_key_usage().unwrap().is_none(), "{name}: no extendedKeyUsage without usages");

        let (ok, out) = openssl_verify(ca.cert_pem.as_bytes(), b"", &cr.status.clone().unwrap().certificate);
        assert!(ok, "{name}: openssl verify: {out}");
    }
    match issued[0].status.clone().map(|s| pem_certs(&s.certificate).remove(0)) {
        Some(der) => {
            let (_, cert) = X509Certificate::from_der(&der).unwrap();
            match cert.public_key().parsed() {
                Ok(PublicKey::RSA(rsa)) => assert_eq!(rsa.key_size(), 2048, "an RSA-2048 key"),
                other => panic!("an RSA key: {other:?}"),
            }
        }
        None => panic!("no status"),
    }
    let der = pem_certs(&issued[1].status.clone().unwrap().certificate).remove(0);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(cert.public_key().algorithm.algorithm.to_id_string(), "1.3.101.112", "an Ed25519 key");
}

/// A FerrumIssuer whose Secret holds an intermediate CA: with `ca.crt` = the root, and with
/// `tls.crt` = two intermediates then the root (no `ca.crt`). status.certificate is the leaf
/// followed by the intermediates (issuing one first), never the root; status.ca is the root;
/// openssl verifies the leaf against the root only through the intermediates.
#[tokio::test(flavor = "multi_thread")]
async fn intermediate_ca_chains_to_its_root() {
    let mut h = Harness::new("intermediate").await;
    h.start_ferrum(&[]).await;
    let root = make_ca("Root CA", CaOptions::default());
    let first = make_intermediate(&root, "Intermediate CA 1", CaOptions::default());
    let second = make_intermediate(&first, "Intermediate CA 2", CaOptions::default());
    h.create_secret(
        &h.ns,
        "one-level",
        &[
            ("tls.crt", first.cert_pem.as_bytes()),
            ("tls.key", first.key_pem.as_bytes()),
            ("ca.crt", root.cert_pem.as_bytes()),
        ],
    )
    .await;
    let two_levels = format!("{}{}{}", second.cert_pem, first.cert_pem, root.cert_pem);
    h.create_secret(&h.ns, "two-levels", &[("tls.crt", two_levels.as_bytes()), ("tls.key", second.key_pem.as_bytes())])
        .await;
    for name in ["one-level", "two-levels"] {
        h.create_issuer(IssuerScope::Namespaced, name, name).await;
        h.issuer_ready(IssuerScope::Namespaced, name, "True").await;
    }
    let issued = issue_all(
        &h,
        vec![
            ("from-one", spec_for(csr_pem("one.example"), "one-level")),
            ("from-two", spec_for(csr_pem("two.example"), "two-levels")),
        ],
    )
    .await;
    let der = |pem: &str| pem_certs(pem.as_bytes()).remove(0);
    let cases =
        [(&issued[0], vec![der(&first.cert_pem)]), (&issued[1], vec![der(&second.cert_pem), der(&first.cert_pem)])];
    for (cr, intermediates) in cases {
        let name = cr.metadata.name.clone().unwrap_or_default();
        let (chain, roots) = chain_of(cr);
        assert_eq!(&chain[1..], intermediates.as_slice(), "{name}: status.certificate = leaf + intermediates");
        assert_eq!(roots, vec![der(&root.cert_pem)], "{name}: status.ca = the root");
        let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
        let (_, issuing) = X509Certificate::from_der(&intermediates[0]).unwrap();
        assert_eq!(leaf.issuer().as_raw(), issuing.subject().as_raw(), "{name}: signed by the issuing intermediate");
        assert!(leaf.verify_signature(Some(issuing.public_key())).is_ok(), "{name}: the intermediate's signature");

        let status = cr.status.clone().unwrap();
        let leaf_pem = pem_encode("CERTIFICATE", &chain[0]);
        let (ok, out) = openssl_verify(&status.ca, &status.certificate, leaf_pem.as_bytes());
        assert!(ok, "{name}: openssl verify with the chain: {out}");
        let (ok, out) = openssl_verify(&status.ca, b"", leaf_pem.as_bytes());
        assert!(!ok, "{name}: without the intermediates the root alone does not verify it: {out}");
    }
}
