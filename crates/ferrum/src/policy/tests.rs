//! The policy table: compile errors, names, keys, lifetimes, usages, CA requests, namespace
//! selectors and summaries, on CSRs made with rcgen and templates made by the signing policy.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use der::asn1::OctetString;
use serde_json::{Value, json};
use x509_cert::ext::Extension;

use super::*;
use crate::x509::{RequestedProfile, certificate_template, oids, parse_csr};

fn policy(value: Value) -> IssuerPolicy {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{value}: {e}"))
}

/// `value` compiled for a cluster issuer (every rule applies there).
fn compiled(value: Value) -> CompiledPolicy {
    policy(value.clone()).compile(IssuerScope::Cluster).unwrap_or_else(|e| panic!("{value}: {e}"))
}

/// A checked CSR and the certificate it would get.
struct Request {
    csr: ValidatedCsr,
    template: CertificateTemplate,
}

fn request_for(key: &rcgen::KeyPair, params: &rcgen::CertificateParams, profile: &RequestedProfile) -> Request {
    let pem = params.serialize_request(key).unwrap().pem().unwrap();
    let csr = parse_csr(pem.as_bytes()).unwrap();
    let template = certificate_template(profile, &csr).unwrap();
    Request { csr, template }
}

/// A P-256 request for these SANs (and commonName), with the default profile.
fn named(cn: Option<&str>, sans: Vec<rcgen::SanType>) -> Request {
    let mut params = rcgen::CertificateParams::default();
    // Not rcgen's default commonName.
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    }
    params.subject_alt_names = sans;
    request_for(&rcgen::KeyPair::generate().unwrap(), &params, &RequestedProfile::default())
}

fn dns(name: &str) -> rcgen::SanType {
    rcgen::SanType::DnsName(name.try_into().unwrap())
}

fn uri(name: &str) -> rcgen::SanType {
    rcgen::SanType::URI(name.try_into().unwrap())
}

fn email(name: &str) -> rcgen::SanType {
    rcgen::SanType::Rfc822Name(name.try_into().unwrap())
}

fn ip(address: &str) -> rcgen::SanType {
    rcgen::SanType::IpAddress(address.parse().unwrap())
}

/// A P-256 request for `db.a.example.com` with this profile.
fn profiled(duration: Option<&str>, is_ca: bool, usages: &[&str]) -> Request {
    let profile = RequestedProfile {
        duration: duration.map(str::to_owned),
        is_ca,
        usages: usages.iter().map(|u| u.to_string()).collect(),
    };
    let params = rcgen::CertificateParams::new(vec!["db.a.example.com".to_owned()]).unwrap();
    request_for(&rcgen::KeyPair::generate().unwrap(), &params, &profile)
}

fn check(policy: &CompiledPolicy, namespace: &str, request: &Request) -> Result<PolicyOutcome, PolicyViolation> {
    policy.check(&PolicyInput { namespace, namespace_labels: None, csr: &request.csr, template: &request.template })
}

/// `Ok(())` when accepted unchanged, the rule's message when refused.
fn verdict(policy: &CompiledPolicy, namespace: &str, request: &Request) -> Result<(), String> {
    match check(policy, namespace, request) {
        Ok(outcome) => {
            assert_eq!(outcome.duration, request.template.duration());
            assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
            Ok(())
        }
        Err(PolicyViolation::Rule(message)) => Err(message),
        Err(other) => panic!("not a rule: {other}"),
    }
}

#[test]
fn compile_errors() {
    use IssuerScope::{Cluster, Namespaced};
    let table = [
        (
            json!({"allowedNames": {"dnsNames": ["*.{namespace}.example.com", "*.{ns}.example.com"]}}),
            Cluster,
            r#"spec.policy.allowedNames.dnsNames[1]: "*.{ns}.example.com": unknown placeholder {ns}; the only placeholder is {namespace}"#,
        ),
        (
            json!({"allowedNames": {"uris": [""]}}),
            Cluster,
            r#"spec.policy.allowedNames.uris[0]: "": the pattern is empty"#,
        ),
        (
            json!({"allowedNames": {"commonNames": ["my service"]}}),
            Cluster,
            r#"spec.policy.allowedNames.commonNames[0]: "my service": contains ' ', which is not printable ASCII; patterns hold no spaces or control characters"#,
        ),
        (
            json!({"allowedNames": {"dnsNames": ["a.example.com\t"]}}),
            Cluster,
            r#"spec.policy.allowedNames.dnsNames[0]: "a.example.com\t": contains '\t', which is not printable ASCII; patterns hold no spaces or control characters"#,
        ),
        (
            json!({"allowedNames": {"emails": ["*@{namespace.example.com"]}}),
            Cluster,
            r#"spec.policy.allowedNames.emails[0]: "*@{namespace.example.com": unclosed "{"; the only placeholder is {namespace}"#,
        ),
        (
            json!({"allowedNames": {"dnsNames": ["namespace}.example.com"]}}),
            Cluster,
            r#"spec.policy.allowedNames.dnsNames[0]: "namespace}.example.com": "}" without "{"; the only placeholder is {namespace}"#,
        ),
        (
            json!({"allowedNames": {"dnsNames": ["*.example.com:443"]}}),
            Cluster,
            r#"spec.policy.allowedNames.dnsNames[0]: "*.example.com:443": contains ':', which a DNS name cannot hold (letters, digits, "-", ".", "_", "*" and {namespace} only)"#,
        ),
        (
            json!({"allowedNames": {"dnsNames": ["*.{namespace}..example.com"]}}),
            Cluster,
            r#"spec.policy.allowedNames.dnsNames[0]: "*.{namespace}..example.com": has an empty label ("..", or a leading or trailing ".")"#,
        ),
        (
            json!({"allowedNames": {"dnsNames": ["*.example.com."]}}),
            Cluster,
            r#"spec.policy.allowedNames.dnsNames[0]: "*.example.com.": has an empty label ("..", or a leading or trailing ".")"#,
        ),
        (
            json!({"allowedNames": {"emails": ["{namespace}.example.com"]}}),
            Cluster,
            r#"spec.policy.allowedNames.emails[0]: "{namespace}.example.com": an email pattern has exactly one "@" (found 0)"#,
        ),
        (
            json!({"allowedNames": {"uris": ["cluster.local/ns/{namespace}/*"]}}),
            Cluster,
            r#"spec.policy.allowedNames.uris[0]: "cluster.local/ns/{namespace}/*": has no scheme; a URI pattern starts with a literal one, such as "spiffe:" or "https:""#,
        ),
        (
            json!({"allowedNames": {"ipRanges": ["10.0.0.0/8", "10.0.0.1"]}}),
            Cluster,
            r#"spec.policy.allowedNames.ipRanges[1]: "10.0.0.1": not a CIDR range such as 10.0.0.0/8 or fd00::/8"#,
        ),
        (
            json!({"allowedNames": {"ipRanges": ["10.0.0.0/40"]}}),
            Cluster,
            r#"spec.policy.allowedNames.ipRanges[0]: "10.0.0.0/40": prefix /40 is longer than 32, the length of an IPv4 address"#,
        ),
        (
            json!({"allowedNames": {"ipRanges": ["10.1.0.0/8"]}}),
            Cluster,
            r#"spec.policy.allowedNames.ipRanges[0]: "10.1.0.0/8": host bits set; did you mean 10.0.0.0/8?"#,
        ),
        (
            json!({"minDuration": "1d"}),
            Cluster,
            r#"spec.policy.minDuration: "1d" is not a duration such as "2160h0m0s" or "90m""#,
        ),
        (
            json!({"maxDuration": "30m"}),
            Cluster,
            "spec.policy.maxDuration: 30m is shorter than 1h, the shortest lifetime cert-manager requests",
        ),
        (
            json!({"minDuration": "876001h"}),
            Cluster,
            "spec.policy.minDuration: 876001h is longer than 100 years, the longest lifetime cert-manager requests",
        ),
        (
            json!({"minDuration": "48h", "maxDuration": "24h"}),
            Cluster,
            "spec.policy.minDuration: 48h is longer than spec.policy.maxDuration 24h; no lifetime satisfies both",
        ),
        (
            json!({"allowedKeys": [{"algorithm": "ECDSA"}, {"algorithm": "RSA", "minSize": 1024}]}),
            Cluster,
            "spec.policy.allowedKeys[1].minSize: 1024 is outside the RSA sizes Ferrum accepts (2048 to 8192 bits)",
        ),
        (
            json!({"allowedKeys": [{"algorithm": "RSA", "minSize": 16384}]}),
            Cluster,
            "spec.policy.allowedKeys[0].minSize: 16384 is outside the RSA sizes Ferrum accepts (2048 to 8192 bits)",
        ),
        (
            json!({"allowedKeys": [{"algorithm": "ECDSA", "minSize": 255}]}),
            Cluster,
            "spec.policy.allowedKeys[0].minSize: 255 is not an ECDSA curve size: 256 (P-256), 384 (P-384) or 521 (P-521)",
        ),
        (
            json!({"allowedKeys": [{"algorithm": "Ed25519", "minSize": 256}]}),
            Cluster,
            "spec.policy.allowedKeys[0].minSize: Ed25519 keys have one size; leave minSize unset",
        ),
        (
            json!({"allowedUsages": ["server auth", "server-auth"]}),
            Cluster,
            r#"spec.policy.allowedUsages[1]: unknown usage "server-auth"; use cert-manager's names, such as "digital signature", "key encipherment", "server auth" or "client auth""#,
        ),
        (
            json!({"namespaceSelector": {"matchLabels": {"team": "a"}}}),
            Namespaced,
            "spec.policy.namespaceSelector: applies only to cluster-scoped issuers; a namespaced issuer serves its own namespace only",
        ),
        (
            json!({"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Equals", "values": ["a"]}]}}),
            Cluster,
            r#"spec.policy.namespaceSelector.matchExpressions[0].operator: unknown operator "Equals"; the operators are In, NotIn, Exists and DoesNotExist"#,
        ),
        (
            json!({"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In"}]}}),
            Cluster,
            "spec.policy.namespaceSelector.matchExpressions[0].values: In needs at least one value",
        ),
        (
            json!({"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists", "values": ["a"]}]}}),
            Cluster,
            "spec.policy.namespaceSelector.matchExpressions[0].values: Exists takes no values",
        ),
        (
            json!({"allowedSubjectAltNameTypes": ["OtherName"], "allowedNames": {"dnsNames": ["*.example.com"]}}),
            Cluster,
            "spec.policy.allowedSubjectAltNameTypes: OtherName cannot be allowed together with spec.policy.allowedNames, \
             which has no rule for that type; remove one of the two",
        ),
    ];
    for (value, scope, message) in table {
        let error = policy(value.clone()).compile(scope).unwrap_err();
        assert_eq!(error.to_string(), message, "{value}");
        assert_eq!(error.message(), message);
    }
    assert_eq!(INVALID_POLICY, "InvalidPolicy");
}

#[test]
fn accepted_policies() {
    let full = json!({
        "allowedSubjectAltNameTypes": ["OtherName"],
        "allowedKeys": [{"algorithm": "RSA", "minSize": 3072}, {"algorithm": "ECDSA", "minSize": 384}, {"algorithm": "Ed25519"}],
        "minDuration": "1h",
        "maxDuration": "720h",
        "allowedUsages": ["digital signature", "signing", "s/mime", "server auth"],
        "allowCA": true,
        "namespaceSelector": {"matchLabels": {"team": "a"}, "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]},
    });
    assert!(policy(full.clone()).compile(IssuerScope::Cluster).is_ok());
    // The same without the selector is fine for a namespaced issuer.
    let mut namespaced = full;
    namespaced.as_object_mut().unwrap().remove("namespaceSelector");
    assert!(policy(namespaced).compile(IssuerScope::Namespaced).is_ok());
    let names = json!({"allowedNames": {
        "commonNames": ["{namespace}:*"],
        "dnsNames": ["*.{namespace}.svc.cluster.local", "{namespace}.example.com", "_acme.{namespace}.example.com"],
        "ipRanges": ["10.0.0.0/8", "fd00::/8", "0.0.0.0/0", "192.0.2.7/32"],
        "uris": ["spiffe://cluster.local/ns/{namespace}/*", "urn:example:{namespace}"],
        "emails": ["*@{namespace}.example.com"],
    }});
    assert!(policy(names).compile(IssuerScope::Namespaced).is_ok());
    for scope in [IssuerScope::Namespaced, IssuerScope::Cluster] {
        let default = IssuerPolicy::default().compile(scope).unwrap();
        assert!(!default.needs_namespace_labels());
        assert!(default.allowed_san_types().is_empty());
    }
}

#[test]
fn serde_shape() {
    let value = json!({
        "allowedSubjectAltNameTypes": ["DirectoryName"],
        "allowedNames": {"commonNames": [], "dnsNames": ["a.example.com"], "ipRanges": ["10.0.0.0/8"], "uris": ["urn:x"], "emails": ["a@b"]},
        "allowedKeys": [{"algorithm": "RSA", "minSize": 2048}, {"algorithm": "ECDSA"}, {"algorithm": "Ed25519"}],
        "minDuration": "1h",
        "maxDuration": "720h",
        "allowedUsages": ["server auth"],
        "allowCA": true,
        "namespaceSelector": {"matchLabels": {"team": "a"}},
    });
    let parsed = policy(value.clone());
    assert_eq!(parsed.allowed_keys[1], AllowedKey { algorithm: KeyAlgorithmName::Ecdsa, min_size: None });
    assert_eq!(parsed.allowed_names.as_ref().unwrap().common_names, Some(vec![]));
    assert!(parsed.allow_ca);
    assert_eq!(serde_json::to_value(&parsed).unwrap(), value);
    assert_eq!(parsed.clone(), parsed);
    assert_eq!(serde_json::to_value(IssuerPolicy::default()).unwrap(), json!({}));
    assert!(serde_json::from_value::<IssuerPolicy>(json!({"allowedKeys": [{"algorithm": "rsa"}]})).is_err());
    let schema = serde_json::to_value(schemars::schema_for!(IssuerPolicy)).unwrap().to_string();
    for field in ["allowedSubjectAltNameTypes", "allowCA", "ipRanges", "minSize", "namespaceSelector", "Ed25519"] {
        assert!(schema.contains(field), "{field} missing from the schema");
    }
}

#[test]
fn names() {
    let tenants = compiled(json!({"allowedNames": {
        "dnsNames": ["*.{namespace}.svc.cluster.local", "{namespace}.example.com"],
        "ipRanges": ["10.0.0.0/16", "fd00::/8"],
        "uris": ["spiffe://cluster.local/ns/{namespace}/*"],
        "emails": ["*@{namespace}.example.com"],
    }}));
    let cns = compiled(
        json!({"allowedNames": {"commonNames": ["{namespace}:*"], "dnsNames": ["*.{namespace}.example.com"]}}),
    );
    let no_cn = compiled(json!({"allowedNames": {"commonNames": [], "dnsNames": ["*.{namespace}.example.com"]}}));
    let ok = Ok(());
    // (policy, namespace, request, verdict)
    let table: Vec<(&CompiledPolicy, &str, Request, Result<(), &str>)> = vec![
        (&tenants, "a", named(Some("db.a.svc.cluster.local"), vec![dns("db.a.svc.cluster.local")]), ok),
        (
            &tenants,
            "a",
            named(None, vec![dns("db.b.svc.cluster.local")]),
            Err(
                r#"spec.policy.allowedNames.dnsNames: DNS name "db.b.svc.cluster.local" is not allowed for namespace "a" (allowed: "*.a.svc.cluster.local", "a.example.com")"#,
            ),
        ),
        (&tenants, "b", named(None, vec![dns("db.b.svc.cluster.local")]), ok),
        (&tenants, "a", named(None, vec![dns("*.a.svc.cluster.local"), dns("a.example.com")]), ok),
        (&tenants, "a", named(None, vec![dns("DB.A.SVC.Cluster.Local"), dns("A.EXAMPLE.COM")]), ok),
        (
            &tenants,
            "a",
            named(None, vec![dns("a.svc.cluster.local")]),
            Err(
                r#"spec.policy.allowedNames.dnsNames: DNS name "a.svc.cluster.local" is not allowed for namespace "a" (allowed: "*.a.svc.cluster.local", "a.example.com")"#,
            ),
        ),
        (
            &tenants,
            "a",
            named(None, vec![dns("ab.example.com")]),
            Err(
                r#"spec.policy.allowedNames.dnsNames: DNS name "ab.example.com" is not allowed for namespace "a" (allowed: "*.a.svc.cluster.local", "a.example.com")"#,
            ),
        ),
        (
            &tenants,
            "a",
            named(Some("db.b.svc.cluster.local"), vec![dns("db.a.svc.cluster.local")]),
            Err(
                r#"spec.policy.allowedNames.dnsNames: commonName "db.b.svc.cluster.local" is not allowed for namespace "a" (allowed: "*.a.svc.cluster.local", "a.example.com"); with commonNames unset, the commonName must match dnsNames"#,
            ),
        ),
        (&tenants, "a", named(None, vec![uri("spiffe://cluster.local/ns/a/sa/web")]), ok),
        (
            &tenants,
            "a",
            named(None, vec![uri("spiffe://cluster.local/ns/b/sa/web")]),
            Err(
                r#"spec.policy.allowedNames.uris: URI "spiffe://cluster.local/ns/b/sa/web" is not allowed for namespace "a" (allowed: "spiffe://cluster.local/ns/a/*")"#,
            ),
        ),
        (
            &tenants,
            "a",
            named(None, vec![uri("spiffe://cluster.local/ns/a/../b/sa/web")]),
            Err(
                r#"spec.policy.allowedNames.uris: URI "spiffe://cluster.local/ns/a/../b/sa/web" has a "." or ".." segment in its path, which could resolve outside the allowed patterns; request the resolved form"#,
            ),
        ),
        (
            &tenants,
            "a",
            named(None, vec![uri("spiffe://cluster.local/ns/a/%2E%2E/b/sa/web")]),
            Err(
                r#"spec.policy.allowedNames.uris: URI "spiffe://cluster.local/ns/a/%2E%2E/b/sa/web" holds a percent-encoded "." or "/" (%2e, %2f), which could hide a dot segment or a path separator from the allowed patterns; request the plain form"#,
            ),
        ),
        (
            &tenants,
            "a",
            named(None, vec![uri("SPIFFE://cluster.local/ns/a/sa/web")]),
            Err(
                r#"spec.policy.allowedNames.uris: URI "SPIFFE://cluster.local/ns/a/sa/web" is not allowed for namespace "a" (allowed: "spiffe://cluster.local/ns/a/*")"#,
            ),
        ),
        (&tenants, "a", named(None, vec![ip("10.0.255.1"), ip("fd00::7")]), ok),
        (
            &tenants,
            "a",
            named(None, vec![ip("10.1.0.1")]),
            Err(
                "spec.policy.allowedNames.ipRanges: IP address 10.1.0.1 is not allowed (allowed: 10.0.0.0/16, fd00::/8)",
            ),
        ),
        (
            &tenants,
            "a",
            named(None, vec![ip("::ffff:10.0.0.1")]),
            Err(
                "spec.policy.allowedNames.ipRanges: IP address ::ffff:10.0.0.1 is not allowed (allowed: 10.0.0.0/16, fd00::/8)",
            ),
        ),
        (&tenants, "a", named(None, vec![email("Ops@A.example.com")]), ok),
        (
            &tenants,
            "a",
            named(None, vec![email("ops@b.example.com")]),
            Err(
                r#"spec.policy.allowedNames.emails: email address "ops@b.example.com" is not allowed for namespace "a" (allowed: "*@a.example.com")"#,
            ),
        ),
        (&cns, "a", named(Some("a:web"), vec![dns("web.a.example.com")]), ok),
        (
            &cns,
            "a",
            named(Some("web.a.example.com"), vec![dns("web.a.example.com")]),
            Err(
                r#"spec.policy.allowedNames.commonNames: commonName "web.a.example.com" is not allowed for namespace "a" (allowed: "a:*")"#,
            ),
        ),
        (&no_cn, "a", named(None, vec![dns("web.a.example.com")]), ok),
        (
            &no_cn,
            "a",
            named(Some("web.a.example.com"), vec![dns("web.a.example.com")]),
            Err(
                r#"spec.policy.allowedNames.commonNames: commonName "web.a.example.com" is not allowed for namespace "a" (allowed: none)"#,
            ),
        ),
        // A kind with no list allows none of that kind.
        (
            &cns,
            "a",
            named(None, vec![uri("spiffe://cluster.local/ns/a/sa/web")]),
            Err(
                r#"spec.policy.allowedNames.uris: URI "spiffe://cluster.local/ns/a/sa/web" is not allowed for namespace "a" (allowed: none)"#,
            ),
        ),
        (
            &cns,
            "a",
            named(None, vec![ip("10.0.0.1")]),
            Err("spec.policy.allowedNames.ipRanges: IP address 10.0.0.1 is not allowed (allowed: none)"),
        ),
        (
            &tenants,
            "a",
            named(
                None,
                vec![
                    dns("db.a.svc.cluster.local"),
                    rcgen::SanType::OtherName((
                        vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                        rcgen::OtherNameValue::Utf8String("db@a".into()),
                    )),
                ],
            ),
            Err(
                "spec.policy.allowedNames: the request has a otherName subjectAltName, which no rule can allow: under allowedNames only DNS names, IP addresses, URIs and email addresses are accepted",
            ),
        ),
    ];
    for (i, (policy, namespace, request, expected)) in table.into_iter().enumerate() {
        assert_eq!(verdict(policy, namespace, &request), expected.map_err(str::to_owned), "row {i}");
    }
}

#[test]
fn subject_emails_and_directory_names() {
    let policy = compiled(json!({"allowedNames": {"commonNames": ["*"], "emails": ["*@{namespace}.example.com"]}}));
    let with_email = |address: &str| {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, "web");
        params.distinguished_name.push(rcgen::DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]), address);
        request_for(&rcgen::KeyPair::generate().unwrap(), &params, &RequestedProfile::default())
    };
    assert_eq!(verdict(&policy, "a", &with_email("ops@a.example.com")), Ok(()));
    assert_eq!(
        verdict(&policy, "a", &with_email("ops@b.example.com")),
        Err(r#"spec.policy.allowedNames.emails: subject emailAddress "ops@b.example.com" is not allowed for namespace "a" (allowed: "*@a.example.com")"#.into())
    );

    // A directoryName SAN (an empty Name): no rule can allow it.
    let mut request = named(Some("web"), vec![]);
    let san = OctetString::new(vec![0x30, 0x04, 0xa4, 0x02, 0x30, 0x00]).unwrap();
    request.template.subject_alt_name =
        Some(Extension { extn_id: oids::SUBJECT_ALT_NAME, critical: false, extn_value: san });
    assert_eq!(
        verdict(&policy, "a", &request),
        Err("spec.policy.allowedNames: the request has a directoryName subjectAltName, which no rule can allow: under allowedNames only DNS names, IP addresses, URIs and email addresses are accepted".into())
    );
    // Without allowedNames the policy does not read names at all.
    assert_eq!(verdict(&compiled(json!({})), "a", &request), Ok(()));
}

/// RSA keys are slow to make: one of each size for the whole run.
fn rsa(bits: u32) -> &'static Request {
    static RSA_2048: OnceLock<Request> = OnceLock::new();
    static RSA_3072: OnceLock<Request> = OnceLock::new();
    let (cell, size) = match bits {
        2048 => (&RSA_2048, rcgen::RsaKeySize::_2048),
        _ => (&RSA_3072, rcgen::RsaKeySize::_3072),
    };
    cell.get_or_init(|| {
        let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size).unwrap();
        let params = rcgen::CertificateParams::new(vec!["db.a.example.com".to_owned()]).unwrap();
        request_for(&key, &params, &RequestedProfile::default())
    })
}

fn keyed(algorithm: &'static rcgen::SignatureAlgorithm) -> Request {
    let params = rcgen::CertificateParams::new(vec!["db.a.example.com".to_owned()]).unwrap();
    request_for(&rcgen::KeyPair::generate_for(algorithm).unwrap(), &params, &RequestedProfile::default())
}

#[test]
fn keys() {
    let strong = compiled(
        json!({"allowedKeys": [{"algorithm": "RSA", "minSize": 3072}, {"algorithm": "ECDSA", "minSize": 384}]}),
    );
    let edwards = compiled(json!({"allowedKeys": [{"algorithm": "Ed25519"}]}));
    let any_ecdsa = compiled(json!({"allowedKeys": [{"algorithm": "ECDSA"}]}));
    let any = compiled(json!({}));
    let p256 = keyed(&rcgen::PKCS_ECDSA_P256_SHA256);
    let p384 = keyed(&rcgen::PKCS_ECDSA_P384_SHA384);
    let p521 = keyed(&rcgen::PKCS_ECDSA_P521_SHA512);
    let ed25519 = keyed(&rcgen::PKCS_ED25519);
    let refused = |key: &str| {
        Err(format!(
            "spec.policy.allowedKeys: the CSR's key is {key}, which is not allowed (allowed: RSA>=3072, ECDSA>=384)"
        ))
    };
    // (policy, request, verdict)
    let table: Vec<(&CompiledPolicy, &Request, Result<(), String>)> = vec![
        (&strong, &p256, refused("ECDSA P-256")),
        (&strong, &p384, Ok(())),
        (&strong, &p521, Ok(())),
        (&strong, rsa(2048), refused("RSA 2048 bits")),
        (&strong, rsa(3072), Ok(())),
        (&strong, &ed25519, refused("Ed25519")),
        (&edwards, &ed25519, Ok(())),
        (
            &edwards,
            &p256,
            Err("spec.policy.allowedKeys: the CSR's key is ECDSA P-256, which is not allowed (allowed: Ed25519)".into()),
        ),
        (&any_ecdsa, &p256, Ok(())),
        (
            &any_ecdsa,
            rsa(2048),
            Err("spec.policy.allowedKeys: the CSR's key is RSA 2048 bits, which is not allowed (allowed: ECDSA)".into()),
        ),
        (&any, rsa(2048), Ok(())),
        (&any, &ed25519, Ok(())),
    ];
    for (i, (policy, request, expected)) in table.into_iter().enumerate() {
        assert_eq!(verdict(policy, "a", request), expected, "row {i}");
    }
}

#[test]
fn durations() {
    let bounded = compiled(json!({"minDuration": "24h", "maxDuration": "720h"}));
    let open = compiled(json!({}));
    let clamped = |requested: &str| PolicyOutcome {
        duration: Duration::from_secs(720 * 3600),
        warnings: vec![Warning::new(
            "DurationClampedByPolicy",
            format!("spec.duration {requested} exceeds the issuer's maxDuration 720h; the certificate lives 720h"),
        )],
    };
    let unchanged = |hours: u64| PolicyOutcome { duration: Duration::from_secs(hours * 3600), warnings: vec![] };
    // (policy, spec.duration, outcome)
    let table: Vec<(&CompiledPolicy, Option<&str>, Result<PolicyOutcome, PolicyViolation>)> = vec![
        (
            &bounded,
            Some("2h"),
            Err(PolicyViolation::Rule(
                "spec.policy.minDuration: spec.duration 2h is shorter than the issuer's minDuration 24h".into(),
            )),
        ),
        (
            &bounded,
            Some("23h59m59s"),
            Err(PolicyViolation::Rule(
                "spec.policy.minDuration: spec.duration 23h59m59s is shorter than the issuer's minDuration 24h".into(),
            )),
        ),
        (&bounded, Some("24h"), Ok(unchanged(24))),
        (&bounded, Some("720h"), Ok(unchanged(720))),
        (&bounded, Some("100h"), Ok(unchanged(100))),
        (&bounded, Some("2160h0m0s"), Ok(clamped("2160h"))),
        (&bounded, Some("720h0m1s"), Ok(clamped("720h1s"))),
        // No spec.duration: cert-manager's default, 90 days, is clamped too.
        (&bounded, None, Ok(clamped("2160h"))),
        (&open, Some("876000h"), Ok(unchanged(876_000))),
    ];
    for (policy, duration, expected) in table {
        assert_eq!(check(policy, "a", &profiled(duration, false, &[])), expected, "{duration:?}");
    }
}

#[test]
fn usages() {
    let web = compiled(json!({"allowedUsages": ["signing", "key encipherment", "server auth"]}));
    let ca = compiled(json!({"allowedUsages": ["digital signature"], "allowCA": true}));
    let server_only = compiled(json!({"allowedUsages": ["digital signature", "server auth"]}));
    let open = compiled(json!({}));
    let refused = |usage: &str, allowed: &str| {
        Err(format!("spec.policy.allowedUsages: usage {usage:?} is not allowed (allowed: {allowed})"))
    };
    let web_allowed = r#""signing", "key encipherment", "server auth""#;
    // (policy, isCA, spec.usages, verdict)
    type Row<'a> = (&'a CompiledPolicy, bool, &'a [&'a str], Result<(), String>);
    let table: Vec<Row<'_>> = vec![
        (&web, false, &["digital signature", "key encipherment", "server auth"], Ok(())),
        (&web, false, &["signing", "server auth"], Ok(())),
        (&web, false, &[], Ok(())),
        (&web, false, &["digital signature", "client auth"], refused("client auth", web_allowed)),
        (&web, false, &["digital signature", "cert sign"], refused("cert sign", web_allowed)),
        (&web, false, &["digital signature", "s/mime"], refused("email protection", web_allowed)),
        // cert sign on a CA is judged by allowCA.
        (&ca, true, &["digital signature"], Ok(())),
        (&ca, true, &["digital signature", "crl sign"], refused("crl sign", r#""digital signature""#)),
        // The defaults are named, with a hint.
        (
            &server_only,
            false,
            &[],
            Err(r#"spec.policy.allowedUsages: usage "key encipherment" is not allowed (allowed: "digital signature", "server auth"); a request without spec.usages gets cert-manager's defaults, "digital signature" and "key encipherment""#.into()),
        ),
        (&open, false, &["code signing", "ocsp signing"], Ok(())),
    ];
    for (i, (policy, is_ca, usages, expected)) in table.into_iter().enumerate() {
        assert_eq!(verdict(policy, "a", &profiled(None, is_ca, usages)), expected, "row {i}");
    }
}

#[test]
fn ca_requests() {
    let refused = Err(
        "the issuer does not allow CA certificates (spec.isCA); set spec.policy.allowCA on the issuer to allow them"
            .to_owned(),
    );
    assert_eq!(verdict(&compiled(json!({})), "a", &profiled(None, true, &[])), refused);
    assert_eq!(verdict(&compiled(json!({"allowCA": false})), "a", &profiled(None, true, &[])), refused);
    assert_eq!(verdict(&compiled(json!({"allowCA": true})), "a", &profiled(None, true, &[])), Ok(()));
    assert_eq!(verdict(&compiled(json!({})), "a", &profiled(None, false, &[])), Ok(()));
}

#[test]
fn namespace_selectors() {
    type Labels = BTreeMap<String, String>;
    let labels =
        |pairs: &[(&str, &str)]| -> Labels { pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
    let team_a = labels(&[("team", "a"), ("env", "prod")]);
    let team_b = labels(&[("team", "b")]);
    let bare = labels(&[]);
    let expression = |operator: &str, values: &[&str]| {
        compiled(
            json!({"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": operator, "values": values}]}}),
        )
    };
    let by_team = compiled(json!({"namespaceSelector": {"matchLabels": {"team": "a"}}}));
    let request = profiled(None, false, &[]);
    let verdict = |policy: &CompiledPolicy, labels: Option<&Labels>| {
        policy
            .check(&PolicyInput {
                namespace: "ns1",
                namespace_labels: labels,
                csr: &request.csr,
                template: &request.template,
            })
            .map(|_| ())
    };
    let not_selected = |selector: &str| {
        Err(PolicyViolation::Rule(format!(
            "spec.policy.namespaceSelector: namespace \"ns1\" is not selected by the issuer's namespaceSelector ({selector})"
        )))
    };
    // (policy, labels, verdict)
    type Row<'a> = (CompiledPolicy, Option<&'a Labels>, Result<(), PolicyViolation>);
    let table: Vec<Row<'_>> = vec![
        (by_team.clone(), Some(&team_a), Ok(())),
        (by_team.clone(), Some(&team_b), not_selected("team=a")),
        (by_team.clone(), Some(&bare), not_selected("team=a")),
        (by_team, None, Err(PolicyViolation::NamespaceLabelsUnknown { namespace: "ns1".into() })),
        (expression("In", &["prod", "staging"]), Some(&team_a), Ok(())),
        (expression("In", &["prod", "staging"]), Some(&team_b), not_selected("env in (prod,staging)")),
        (expression("NotIn", &["prod"]), Some(&team_a), not_selected("env notin (prod)")),
        (expression("NotIn", &["prod"]), Some(&team_b), Ok(())),
        (expression("Exists", &[]), Some(&team_a), Ok(())),
        (expression("Exists", &[]), Some(&bare), not_selected("env")),
        (expression("DoesNotExist", &[]), Some(&team_a), not_selected("!env")),
        (expression("DoesNotExist", &[]), Some(&bare), Ok(())),
        (compiled(json!({"namespaceSelector": {}})), Some(&bare), Ok(())),
        // No selector: labels are not needed.
        (compiled(json!({})), None, Ok(())),
    ];
    for (i, (policy, labels, expected)) in table.into_iter().enumerate() {
        assert_eq!(policy.needs_namespace_labels(), policy.namespace_selector.is_some(), "row {i}");
        assert_eq!(verdict(&policy, labels), expected, "row {i}");
    }
    assert_eq!(
        PolicyViolation::NamespaceLabelsUnknown { namespace: "ns1".into() }.to_string(),
        "the labels of namespace \"ns1\" are not known yet; they are needed for the issuer's spec.policy.namespaceSelector"
    );
}

#[test]
fn summaries() {
    let table = [
        (json!({}), "names: any; keys: any; duration: any; isCA: no"),
        (
            json!({
                "allowedNames": {"dnsNames": ["*.{namespace}.svc", "{namespace}.example.com"], "uris": ["spiffe://x/ns/{namespace}/*"]},
                "allowedKeys": [{"algorithm": "RSA", "minSize": 3072}, {"algorithm": "ECDSA", "minSize": 256}],
                "minDuration": "1h",
                "maxDuration": "720h",
                "namespaceSelector": {"matchLabels": {"team": "a"}},
            }),
            "names: 2 dns, 1 uri; keys: RSA>=3072, ECDSA>=256; duration: 1h-720h; isCA: no; namespaces: selector",
        ),
        (
            json!({"allowedNames": {}, "allowedKeys": [{"algorithm": "Ed25519"}], "maxDuration": "2160h0m0s", "allowCA": true}),
            "names: none; keys: Ed25519; duration: <=2160h; isCA: yes",
        ),
        (
            json!({
                "allowedNames": {"commonNames": ["x"], "ipRanges": ["10.0.0.0/8"], "emails": ["*@x"]},
                "minDuration": "90m",
                "allowedUsages": ["server auth", "client auth"],
                "allowedSubjectAltNameTypes": [],
            }),
            "names: 1 ip, 1 email, 1 cn; keys: any; duration: >=1h30m; usages: server auth, client auth; isCA: no",
        ),
        (
            json!({"allowedSubjectAltNameTypes": ["OtherName", "DirectoryName"]}),
            "names: any; keys: any; duration: any; isCA: no; extra SAN types: OtherName, DirectoryName",
        ),
    ];
    for (value, summary) in table {
        assert_eq!(compiled(value.clone()).summary(), summary, "{value}");
    }
}

#[test]
fn san_types_pass_through() {
    let policy = compiled(json!({"allowedSubjectAltNameTypes": ["OtherName"]}));
    assert_eq!(policy.allowed_san_types(), [SanType::OtherName]);
    assert_eq!(policy.name_policy(), NamePolicy::allowing(&[SanType::OtherName]));
}

#[test]
fn messages_are_bounded() {
    let patterns: Vec<String> = (0..20).map(|i| format!("s{i}.{{namespace}}.example.com")).collect();
    let policy = compiled(json!({"allowedNames": {"dnsNames": patterns}}));
    let long = format!("{}.example.com", "x".repeat(240));
    let message = verdict(&policy, "a", &named(None, vec![dns(&long)])).unwrap_err();
    assert_eq!(
        message,
        format!(
            "spec.policy.allowedNames.dnsNames: DNS name \"{}\"... is not allowed for namespace \"a\" (allowed: \
             \"s0.a.example.com\", \"s1.a.example.com\", \"s2.a.example.com\", \"s3.a.example.com\", \
             \"s4.a.example.com\" and 15 more)",
            "x".repeat(200)
        )
    );
}

#[test]
fn go_durations() {
    let table = [
        (Duration::from_secs(720 * 3600), "720h"),
        (Duration::from_secs(5400), "1h30m"),
        (Duration::from_secs(3601), "1h1s"),
        (Duration::from_secs(90), "1m30s"),
        (Duration::from_millis(1500), "1.5s"),
        (Duration::ZERO, "0s"),
    ];
    for (duration, text) in table {
        assert_eq!(go_duration(duration), text);
        assert_eq!(parse_go_duration(text), Ok(duration), "{text} reads back");
    }
}

/// One issuer's policy cannot make every request of the shared workers slow: lists and
/// patterns are capped, at the exact limits.
#[test]
fn pattern_lists_and_lengths_are_capped() {
    let many = |n: usize| (0..n).map(|i| format!("h{i}.example.com")).collect::<Vec<_>>();
    let at_cap = json!({"allowedNames": {"dnsNames": many(MAX_PATTERNS)}});
    assert!(policy(at_cap).compile(IssuerScope::Namespaced).is_ok());
    let over = json!({"allowedNames": {"dnsNames": many(MAX_PATTERNS + 1)}});
    assert_eq!(
        policy(over).compile(IssuerScope::Namespaced).unwrap_err().message(),
        "spec.policy.allowedNames.dnsNames: 257 entries; at most 256 are accepted"
    );
    let ranges: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect();
    assert!(policy(json!({"allowedNames": {"ipRanges": ranges}})).compile(IssuerScope::Namespaced).is_err());
    let long = |n: usize| format!("spiffe://x/{}", "a".repeat(n - 11));
    assert!(
        policy(json!({"allowedNames": {"uris": [long(MAX_PATTERN_BYTES)]}})).compile(IssuerScope::Namespaced).is_ok()
    );
    assert_eq!(
        policy(json!({"allowedNames": {"uris": ["spiffe://x/a", long(MAX_PATTERN_BYTES + 1)]}}))
            .compile(IssuerScope::Namespaced)
            .unwrap_err()
            .message(),
        "spec.policy.allowedNames.uris[1]: 1025 bytes; at most 1024 are accepted"
    );
}
