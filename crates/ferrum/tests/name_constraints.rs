//! The issuing CA's own name constraints and path lengths, with `openssl verify` as the oracle.
//!
//! Every case builds a CA chain with rcgen (a root, maybe an intermediate, with name
//! constraints and path lengths), a request, and then:
//!
//! - **Ferrum**: the CSR through [`parse_csr`], [`certificate_template`] and [`sign_with_ca`],
//!   as the `ca` backend does;
//! - **the oracle**: the certificate Ferrum would issue, built independently with rcgen (same
//!   subject, same subjectAltNames, signed by the issuing CA's key) and given to the `openssl
//!   verify` CLI (`-CAfile` the root, `-untrusted` the intermediates). For a sub-CA request,
//!   OpenSSL must accept both the would-be sub-CA itself and a leaf signed by it (a
//!   "grandchild"; path lengths only show below the sub-CA).
//!
//! For every case: Ferrum issues exactly when OpenSSL accepts, except the rows marked
//! `Diverge`, where Ferrum is deliberately stricter (it refuses, OpenSSL accepts; the reason is
//! in the row), and the `GuardCatches` row, where Ferrum's pre-check is deliberately laxer and
//! the OpenSSL path validation after signing must refuse (while that guard is a placeholder,
//! Ferrum issues there, and the summary says so). A refusal is `CaSignError::Constraint` whose
//! message names the constraint and the subtree (the row lists the words it must hold), and
//! every certificate Ferrum issues is itself accepted by `openssl verify` (with, for a sub-CA,
//! a grandchild signed by it).
//!
//! Run with `cargo test -p ferrum --test name_constraints -- --nocapture` to see the table.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use ferrum::x509::{
    CaBundle, CaSignError, PublishedUrls, RequestedProfile, SoftwareKey, certificate_template, parse_csr, sign_with_ca,
};
use rcgen::string::PrintableString;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, CustomExtension, DistinguishedName, DnType, DnValue,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, OtherNameValue, SanType,
};

/// One subtree of a test CA's name constraints.
#[derive(Clone)]
enum Sub {
    /// dNSName.
    Dns(&'static str),
    /// rfc822Name.
    Email(&'static str),
    /// uniformResourceIdentifier (rcgen has none: the extension is then built by hand).
    Uri(&'static str),
    /// iPAddress, as `address/prefix`.
    Ip(&'static str),
    /// directoryName.
    Dir(Vec<(DnType, DnValue)>),
}

/// A test CA's name constraints.
#[derive(Clone, Default)]
struct Constraints {
    /// permittedSubtrees.
    permitted: Vec<Sub>,
    /// excludedSubtrees.
    excluded: Vec<Sub>,
    /// The extension's value as given, instead of the lists.
    raw: Option<Vec<u8>>,
}

/// A CA of a test chain.
#[derive(Clone)]
struct CaSpec {
    /// Its subject.
    subject: Vec<(DnType, DnValue)>,
    /// Its name constraints (none if empty).
    constraints: Constraints,
    /// Its pathLenConstraint.
    path_len: Option<u8>,
}

/// The request of a case.
#[derive(Clone, Default)]
struct Req {
    /// The subject.
    subject: Vec<(DnType, DnValue)>,
    /// subjectAltNames rcgen can write.
    sans: Vec<SanType>,
    /// A subjectAltName extension value written by hand (directoryName, SmtpUTF8Mailbox).
    raw_san: Option<Vec<u8>>,
    /// `spec.isCA`.
    is_ca: bool,
}

/// What a case expects.
enum Expect {
    /// Ferrum issues, OpenSSL accepts.
    Issue,
    /// Ferrum refuses (its message holds these words), OpenSSL refuses.
    Refuse(&'static [&'static str]),
    /// Deliberately stricter: Ferrum refuses (its message holds these words), OpenSSL accepts.
    Diverge(&'static [&'static str], &'static str),
    /// Deliberately laxer pre-check: OpenSSL refuses, Ferrum's pre-check lets it through and
    /// the OpenSSL guard after signing must refuse it (`Unverifiable`).
    GuardCatches(&'static str),
}

/// One row of the table.
struct Case {
    /// Its name.
    name: &'static str,
    /// The chain, root first; the last CA issues.
    cas: Vec<CaSpec>,
    /// The request.
    req: Req,
    /// What must happen.
    expect: Expect,
}

// ---------------------------------------------------------------------------------------------
// Builders for the table.

/// A UTF8String attribute.
fn utf8(ty: DnType, value: &str) -> (DnType, DnValue) {
    (ty, DnValue::Utf8String(value.into()))
}

/// `CN=<value>`.
fn cn(value: &str) -> Vec<(DnType, DnValue)> {
    vec![utf8(DnType::CommonName, value)]
}

/// `O=<o>` then the other attributes.
fn org(o: &str, rest: &[(DnType, &str)]) -> Vec<(DnType, DnValue)> {
    let mut dn = vec![utf8(DnType::OrganizationName, o)];
    dn.extend(rest.iter().map(|(ty, v)| utf8(ty.clone(), v)));
    dn
}

/// Permitted subtrees only.
fn permit(subs: Vec<Sub>) -> Constraints {
    Constraints { permitted: subs, ..Constraints::default() }
}

/// Excluded subtrees only.
fn exclude(subs: Vec<Sub>) -> Constraints {
    Constraints { excluded: subs, ..Constraints::default() }
}

/// Both.
fn both(permitted: Vec<Sub>, excluded: Vec<Sub>) -> Constraints {
    Constraints { permitted, excluded, raw: None }
}

/// A self-signed root `CN=Example Root` with `constraints`.
fn root(constraints: Constraints) -> Vec<CaSpec> {
    vec![CaSpec { subject: cn("Example Root"), constraints, path_len: None }]
}

/// A CA named `name` with `constraints` and `path_len`.
fn ca(subject: Vec<(DnType, DnValue)>, constraints: Constraints, path_len: Option<u8>) -> CaSpec {
    CaSpec { subject, constraints, path_len }
}

/// A leaf request, subject `CN=Test Leaf` (not a host name), with `sans`.
fn leaf(sans: Vec<SanType>) -> Req {
    Req { subject: cn("Test Leaf"), sans, ..Req::default() }
}

/// A dNSName.
fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().expect("IA5 DNS name"))
}

/// An rfc822Name.
fn email(address: &str) -> SanType {
    SanType::Rfc822Name(address.try_into().expect("IA5 email"))
}

/// A URI.
fn uri(value: &str) -> SanType {
    SanType::URI(value.try_into().expect("IA5 URI"))
}

/// An iPAddress.
fn ip(address: &str) -> SanType {
    SanType::IpAddress(address.parse().expect("IP address"))
}

/// A request with subject `subject` and no subjectAltName.
fn subject_only(subject: Vec<(DnType, DnValue)>) -> Req {
    Req { subject, ..Req::default() }
}

/// A sub-CA request with subject `subject`.
fn sub_ca(subject: Vec<(DnType, DnValue)>) -> Req {
    Req { subject, is_ca: true, ..Req::default() }
}

/// The PKCS #9 emailAddress attribute type.
fn email_address_type() -> DnType {
    DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1])
}

// ---------------------------------------------------------------------------------------------
// The table.

/// Every case.
fn cases() -> Vec<Case> {
    use Expect::*;
    use Sub::*;
    let case = |name, cas, req, expect| Case { name, cas, req, expect };
    let team_intermediate = |constraints, path_len| ca(cn("Team Intermediate"), constraints, path_len);
    let example_org = || vec![Dir(org("Example", &[]))];
    vec![
        // dNSName.
        case(
            "dns: permitted, subdomain",
            root(permit(vec![Dns("example.com")])),
            leaf(vec![dns("db.example.com")]),
            Issue,
        ),
        case(
            "dns: permitted, the subtree itself",
            root(permit(vec![Dns("example.com")])),
            leaf(vec![dns("example.com")]),
            Issue,
        ),
        case(
            "dns: permitted, outside",
            root(permit(vec![Dns("example.com")])),
            leaf(vec![dns("db.other.example")]),
            Refuse(&["dNSName", "outside the permitted", "\"example.com\"", "CN=Example Root"]),
        ),
        case(
            "dns: permitted, text suffix but not a label",
            root(permit(vec![Dns("example.com")])),
            leaf(vec![dns("badexample.com")]),
            Refuse(&["dNSName", "\"example.com\""]),
        ),
        case(
            "dns: permitted '.example.com' excludes the apex",
            root(permit(vec![Dns(".example.com")])),
            leaf(vec![dns("example.com")]),
            Refuse(&["dNSName", "\".example.com\""]),
        ),
        case(
            "dns: permitted '.example.com', subdomain",
            root(permit(vec![Dns(".example.com")])),
            leaf(vec![dns("db.example.com")]),
            Issue,
        ),
        case("dns: case-insensitive", root(permit(vec![Dns("Example.COM")])), leaf(vec![dns("DB.example.com")]), Issue),
        case(
            "dns: one name outside among several",
            root(permit(vec![Dns("example.com"), Dns("example.org")])),
            leaf(vec![dns("a.example.com"), dns("b.example.org"), dns("evil.test")]),
            Refuse(&["\"evil.test\"", "\"example.com\", \"example.org\""]),
        ),
        case(
            "dns: excluded, subdomain",
            root(exclude(vec![Dns("internal.example.com")])),
            leaf(vec![dns("db.internal.example.com")]),
            Refuse(&["dNSName", "inside the excluded", "\"internal.example.com\""]),
        ),
        case(
            "dns: excluded, the subtree itself",
            root(exclude(vec![Dns("internal.example.com")])),
            leaf(vec![dns("internal.example.com")]),
            Refuse(&["dNSName", "excluded", "\"internal.example.com\""]),
        ),
        case(
            "dns: excluded, sibling",
            root(exclude(vec![Dns("internal.example.com")])),
            leaf(vec![dns("www.example.com")]),
            Issue,
        ),
        case(
            "dns: permitted and excluded",
            root(both(vec![Dns("example.com")], vec![Dns("internal.example.com")])),
            leaf(vec![dns("a.example.com"), dns("b.internal.example.com")]),
            Refuse(&["\"b.internal.example.com\"", "excluded", "\"internal.example.com\""]),
        ),
        case(
            "dns: constraints of another type only",
            root(permit(vec![Email("example.com")])),
            leaf(vec![dns("anything.test")]),
            Issue,
        ),
        // Wildcards.
        case(
            "wildcard: inside a permitted subtree",
            root(permit(vec![Dns("example.com")])),
            leaf(vec![dns("*.example.com")]),
            Issue,
        ),
        case(
            "wildcard: broader than the permitted subtree",
            root(permit(vec![Dns("example.com")])),
            leaf(vec![dns("*.com")]),
            Refuse(&["dNSName \"*.com\"", "outside the permitted", "\"example.com\""]),
        ),
        case(
            "wildcard: covers an excluded subtree",
            root(exclude(vec![Dns("internal.example.com")])),
            leaf(vec![dns("*.example.com")]),
            Diverge(
                &["wildcard", "excluded dNSName subtree \"internal.example.com\""],
                "OpenSSL compares '*.example.com' with 'internal.example.com' as text; TLS clients would accept \
                 the certificate for internal.example.com",
            ),
        ),
        case(
            "wildcard: partial label covers an excluded subtree",
            root(exclude(vec![Dns("internal.example.com")])),
            leaf(vec![dns("int*.example.com")]),
            Diverge(&["wildcard", "\"internal.example.com\""], "'int*' matches the label 'internal'"),
        ),
        case(
            "wildcard: partial label that cannot match",
            root(exclude(vec![Dns("internal.example.com")])),
            leaf(vec![dns("ext*.example.com")]),
            Issue,
        ),
        case(
            "wildcard: inside an excluded subtree",
            root(exclude(vec![Dns("internal.example.com")])),
            leaf(vec![dns("*.internal.example.com")]),
            Refuse(&["excluded", "\"internal.example.com\""]),
        ),
        case(
            "wildcard: beside an excluded subtree",
            root(exclude(vec![Dns("internal.example.com")])),
            leaf(vec![dns("*.public.example.com")]),
            Issue,
        ),
        case(
            "wildcard: excluded '.internal.example.com' is out of its reach",
            root(exclude(vec![Dns(".internal.example.com")])),
            leaf(vec![dns("*.example.com")]),
            Issue,
        ),
        // The subject commonName, judged as a dNSName.
        case(
            "cn: host name outside, no SAN",
            root(permit(vec![Dns("example.com")])),
            subject_only(cn("db.other.example")),
            Refuse(&["commonName \"db.other.example\"", "dNSName", "\"example.com\""]),
        ),
        case(
            "cn: host name inside, no SAN",
            root(permit(vec![Dns("example.com")])),
            subject_only(cn("db.example.com")),
            Issue,
        ),
        case("cn: not a host name", root(permit(vec![Dns("example.com")])), subject_only(cn("Database Server")), Issue),
        case(
            "cn: single label is not a host name",
            root(permit(vec![Dns("example.com")])),
            subject_only(cn("localhost")),
            Issue,
        ),
        case(
            "cn: not judged when there is a dNSName",
            root(permit(vec![Dns("example.com")])),
            Req { subject: cn("db.other.example"), sans: vec![dns("db.example.com")], ..Req::default() },
            Issue,
        ),
        case(
            "cn: judged when the SANs hold no dNSName",
            root(permit(vec![Dns("example.com")])),
            Req { subject: cn("db.other.example"), sans: vec![ip("10.0.0.1")], ..Req::default() },
            Refuse(&["commonName", "\"example.com\""]),
        ),
        case(
            "cn: excluded",
            root(exclude(vec![Dns("internal.example.com")])),
            subject_only(cn("db.internal.example.com")),
            Refuse(&["commonName", "excluded", "\"internal.example.com\""]),
        ),
        case(
            "cn: a wildcard is not a host name (as OpenSSL)",
            root(exclude(vec![Dns("internal.example.com")])),
            subject_only(cn("*.internal.example.com")),
            Issue,
        ),
        // rfc822Name: a mailbox, a host, a domain.
        case(
            "email: mailbox, the same",
            root(permit(vec![Email("admin@example.com")])),
            leaf(vec![email("admin@EXAMPLE.com")]),
            Issue,
        ),
        case(
            "email: mailbox, another local part",
            root(permit(vec![Email("admin@example.com")])),
            leaf(vec![email("other@example.com")]),
            Refuse(&["rfc822Name \"other@example.com\"", "\"admin@example.com\""]),
        ),
        case(
            "email: mailbox, local part is case-sensitive",
            root(permit(vec![Email("admin@example.com")])),
            leaf(vec![email("Admin@example.com")]),
            Refuse(&["rfc822Name", "\"admin@example.com\""]),
        ),
        case(
            "email: host, at the host",
            root(permit(vec![Email("example.com")])),
            leaf(vec![email("x@example.com")]),
            Issue,
        ),
        case(
            "email: host, at a subdomain",
            root(permit(vec![Email("example.com")])),
            leaf(vec![email("x@mail.example.com")]),
            Refuse(&["rfc822Name", "\"example.com\""]),
        ),
        case(
            "email: domain, at a subdomain",
            root(permit(vec![Email(".example.com")])),
            leaf(vec![email("x@mail.example.com")]),
            Issue,
        ),
        case(
            "email: domain, at the apex",
            root(permit(vec![Email(".example.com")])),
            leaf(vec![email("x@example.com")]),
            Refuse(&["rfc822Name", "\".example.com\""]),
        ),
        case(
            "email: excluded host",
            root(exclude(vec![Email("example.com")])),
            leaf(vec![email("x@example.com")]),
            Refuse(&["rfc822Name", "excluded", "\"example.com\""]),
        ),
        case(
            "email: excluded mailbox, another mailbox",
            root(exclude(vec![Email("ceo@example.com")])),
            leaf(vec![email("x@example.com")]),
            Issue,
        ),
        case(
            "email: no '@'",
            root(permit(vec![Email("example.com")])),
            leaf(vec![email("not-an-address")]),
            Refuse(&["rfc822Name", "cannot be judged", "'@'"]),
        ),
        case(
            "email: subject emailAddress outside",
            root(permit(vec![Email("example.com")])),
            subject_only(vec![
                utf8(DnType::CommonName, "Test Leaf"),
                (email_address_type(), DnValue::Ia5String("ops@other.example".try_into().expect("IA5"))),
            ]),
            Refuse(&["emailAddress \"ops@other.example\"", "rfc822Name", "\"example.com\""]),
        ),
        case(
            "email: subject emailAddress inside",
            root(permit(vec![Email("example.com")])),
            subject_only(vec![
                utf8(DnType::CommonName, "Test Leaf"),
                (email_address_type(), DnValue::Ia5String("ops@example.com".try_into().expect("IA5"))),
            ]),
            Issue,
        ),
        case(
            "email: subject emailAddress as UTF8String",
            root(permit(vec![Dns("example.com")])),
            subject_only(vec![
                utf8(DnType::CommonName, "Test Leaf"),
                (email_address_type(), DnValue::Utf8String("ops@example.com".into())),
            ]),
            Refuse(&["emailAddress", "IA5String"]),
        ),
        case(
            "email: SmtpUTF8Mailbox otherName outside",
            root(permit(vec![Email("example.com")])),
            Req {
                subject: cn("Test Leaf"),
                raw_san: Some(san(&[smtp_utf8_mailbox("ops@other.example")])),
                ..Req::default()
            },
            Refuse(&["otherName", "SmtpUTF8Mailbox", "rfc822Name"]),
        ),
        case(
            "email: SmtpUTF8Mailbox otherName inside",
            root(permit(vec![Email("example.com")])),
            Req {
                subject: cn("Test Leaf"),
                raw_san: Some(san(&[smtp_utf8_mailbox("ops@example.com")])),
                ..Req::default()
            },
            Diverge(
                &["otherName", "SmtpUTF8Mailbox"],
                "Ferrum does not read otherNames, so it cannot judge an SmtpUTF8Mailbox against rfc822Name subtrees",
            ),
        ),
        case(
            "email: UPN otherName under rfc822Name constraints",
            root(permit(vec![Email("example.com")])),
            leaf(vec![SanType::OtherName((
                vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                OtherNameValue::Utf8String("u@other.example".into()),
            ))]),
            Diverge(
                &["otherName", "rfc822Name"],
                "Ferrum keeps no otherName's type, so any otherName may be an SmtpUTF8Mailbox to it",
            ),
        ),
        case(
            "email: UPN otherName under dNSName constraints",
            root(permit(vec![Dns("example.com")])),
            leaf(vec![SanType::OtherName((
                vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                OtherNameValue::Utf8String("u@other.example".into()),
            ))]),
            Issue,
        ),
        // uniformResourceIdentifier: the host.
        case(
            "uri: host equal",
            root(permit(vec![Uri("example.com")])),
            leaf(vec![uri("https://example.com/path")]),
            Issue,
        ),
        case(
            "uri: host with a port",
            root(permit(vec![Uri("example.com")])),
            leaf(vec![uri("https://EXAMPLE.com:8443/x")]),
            Issue,
        ),
        case(
            "uri: host outside",
            root(permit(vec![Uri("example.com")])),
            leaf(vec![uri("https://other.example/")]),
            Refuse(&["uniformResourceIdentifier \"https://other.example/\"", "\"example.com\""]),
        ),
        case(
            "uri: host subdomain of a host subtree",
            root(permit(vec![Uri("example.com")])),
            leaf(vec![uri("https://db.example.com/")]),
            Refuse(&["uniformResourceIdentifier", "\"example.com\""]),
        ),
        case(
            "uri: domain subtree, SPIFFE ID",
            root(permit(vec![Uri(".example.com")])),
            leaf(vec![uri("spiffe://cluster.example.com/ns/a/sa/b")]),
            Issue,
        ),
        case(
            "uri: domain subtree, the apex",
            root(permit(vec![Uri(".example.com")])),
            leaf(vec![uri("https://example.com/")]),
            Refuse(&["uniformResourceIdentifier", "\".example.com\""]),
        ),
        case(
            "uri: excluded",
            root(exclude(vec![Uri(".internal.example.com")])),
            leaf(vec![uri("https://db.internal.example.com/")]),
            Refuse(&["uniformResourceIdentifier", "excluded", "\".internal.example.com\""]),
        ),
        case(
            "uri: no host",
            root(exclude(vec![Uri(".internal.example.com")])),
            leaf(vec![uri("urn:uuid:0f6b6c6e-8f21-4c44-9d5c-3c2ab1b4f7a0")]),
            Refuse(&["uniformResourceIdentifier", "cannot be judged", "no host"]),
        ),
        case(
            "uri: ':' in the path ends the host (OpenSSL 3.0)",
            root(permit(vec![Uri("example.com")])),
            leaf(vec![uri("https://example.com/a:b")]),
            Refuse(&["uniformResourceIdentifier", "\"example.com\""]),
        ),
        case(
            "uri: userinfo stays in the host (OpenSSL 3.0)",
            root(permit(vec![Uri("example.com")])),
            leaf(vec![uri("https://user@example.com/")]),
            Refuse(&["uniformResourceIdentifier", "\"example.com\""]),
        ),
        case(
            "uri: no URI constraints",
            root(permit(vec![Dns("example.com")])),
            leaf(vec![uri("urn:example:x")]),
            Issue,
        ),
        // iPAddress, v4 and v6.
        case("ip: v4 inside", root(permit(vec![Ip("10.0.0.0/8")])), leaf(vec![ip("10.1.2.3")]), Issue),
        case(
            "ip: v4 outside",
            root(permit(vec![Ip("10.0.0.0/8")])),
            leaf(vec![ip("192.168.1.1")]),
            Refuse(&["iPAddress 192.168.1.1", "outside the permitted", "10.0.0.0/8"]),
        ),
        case("ip: v4 /32 exact", root(permit(vec![Ip("192.0.2.7/32")])), leaf(vec![ip("192.0.2.7")]), Issue),
        case(
            "ip: v4 /32 neighbour",
            root(permit(vec![Ip("192.0.2.7/32")])),
            leaf(vec![ip("192.0.2.8")]),
            Refuse(&["iPAddress", "192.0.2.7/32"]),
        ),
        case(
            "ip: v4 excluded",
            root(both(vec![Ip("10.0.0.0/8")], vec![Ip("10.1.0.0/16")])),
            leaf(vec![ip("10.1.2.3")]),
            Refuse(&["iPAddress 10.1.2.3", "excluded", "10.1.0.0/16"]),
        ),
        case(
            "ip: v4 beside the excluded range",
            root(both(vec![Ip("10.0.0.0/8")], vec![Ip("10.1.0.0/16")])),
            leaf(vec![ip("10.2.0.1")]),
            Issue,
        ),
        case("ip: v6 inside", root(permit(vec![Ip("2001:db8::/32")])), leaf(vec![ip("2001:db8:1::1")]), Issue),
        case(
            "ip: v6 outside",
            root(permit(vec![Ip("2001:db8::/32")])),
            leaf(vec![ip("2001:db9::1")]),
            Refuse(&["iPAddress 2001:db9::1", "2001:db8::/32"]),
        ),
        case(
            "ip: v6 excluded",
            root(exclude(vec![Ip("fd00::/8")])),
            leaf(vec![ip("fd12:3456::1")]),
            Refuse(&["iPAddress", "excluded", "fd00::/8"]),
        ),
        case(
            "ip: v6 (v4-mapped) against a v4 subtree",
            root(permit(vec![Ip("10.0.0.0/8")])),
            leaf(vec![ip("::ffff:10.0.0.1")]),
            Refuse(&["iPAddress", "10.0.0.0/8"]),
        ),
        case(
            "ip: v4 against a v6 subtree",
            root(permit(vec![Ip("2001:db8::/32")])),
            leaf(vec![ip("10.0.0.1")]),
            Refuse(&["iPAddress 10.0.0.1", "2001:db8::/32"]),
        ),
        case(
            "ip: v4 exclusion does not reach v6",
            root(exclude(vec![Ip("0.0.0.0/0")])),
            leaf(vec![ip("2001:db8::1")]),
            Issue,
        ),
        case(
            "ip: v4 and v6 subtrees, one of each",
            root(permit(vec![Ip("10.0.0.0/8"), Ip("2001:db8::/32")])),
            leaf(vec![ip("10.0.0.1"), ip("2001:db8::1")]),
            Issue,
        ),
        // directoryName.
        case(
            "dir: subject under the permitted subtree",
            root(permit(example_org())),
            subject_only(org("Example", &[(DnType::CommonName, "db")])),
            Issue,
        ),
        case(
            "dir: subject outside",
            root(permit(example_org())),
            subject_only(org("Other", &[(DnType::CommonName, "db")])),
            Refuse(&["the subject \"CN=db,O=Other\"", "directoryName", "\"O=Example\""]),
        ),
        case(
            "dir: excluded",
            root(exclude(vec![Dir(org("Example", &[(DnType::OrganizationalUnitName, "Internal")]))])),
            subject_only(org("Example", &[(DnType::OrganizationalUnitName, "Internal"), (DnType::CommonName, "x")])),
            Refuse(&["directoryName", "excluded", "\"OU=Internal,O=Example\""]),
        ),
        case(
            "dir: beside the excluded subtree",
            root(exclude(vec![Dir(org("Example", &[(DnType::OrganizationalUnitName, "Internal")]))])),
            subject_only(org("Example", &[(DnType::OrganizationalUnitName, "Public"), (DnType::CommonName, "x")])),
            Issue,
        ),
        case(
            "dir: an empty subject is not judged",
            root(permit(example_org())),
            Req { sans: vec![dns("db.example.com")], ..Req::default() },
            Issue,
        ),
        case(
            "dir: directoryName SAN outside",
            root(permit(example_org())),
            Req {
                subject: org("Example", &[(DnType::CommonName, "db")]),
                raw_san: Some(san(&[directory_name("Other")])),
                ..Req::default()
            },
            Refuse(&["directoryName \"O=Other\"", "\"O=Example\""]),
        ),
        case(
            "dir: PrintableString subtree, UTF8String subject",
            root(permit(vec![Dir(vec![(
                DnType::OrganizationName,
                DnValue::PrintableString(PrintableString::try_from("Example").expect("printable")),
            )])])),
            subject_only(org("example", &[(DnType::CommonName, "db")])),
            Diverge(
                &["directoryName", "\"O=Example\""],
                "Ferrum compares RDNs byte for byte; OpenSSL compares canonical forms (string type and case folded)",
            ),
        ),
        case(
            "dir: excluded subtree, subject differing only in case",
            root(exclude(example_org())),
            subject_only(org("EXAMPLE", &[(DnType::CommonName, "db")])),
            GuardCatches(
                "Ferrum's byte-for-byte comparison misses the canonical match OpenSSL finds; the guard after \
                 signing refuses it",
            ),
        ),
        // Nested: a constrained root, an intermediate with constraints of its own.
        case(
            "nested: inside both",
            vec![
                root(permit(vec![Dns("example.com")])).remove(0),
                team_intermediate(permit(vec![Dns("team.example.com")]), None),
            ],
            leaf(vec![dns("db.team.example.com")]),
            Issue,
        ),
        case(
            "nested: inside the root's, outside the intermediate's",
            vec![
                root(permit(vec![Dns("example.com")])).remove(0),
                team_intermediate(permit(vec![Dns("team.example.com")]), None),
            ],
            leaf(vec![dns("db.example.com")]),
            Refuse(&["dNSName \"db.example.com\"", "\"team.example.com\"", "CN=Team Intermediate"]),
        ),
        case(
            "nested: an intermediate broader than its root",
            vec![
                root(permit(vec![Dns("team.example.com")])).remove(0),
                team_intermediate(permit(vec![Dns("example.com")]), None),
            ],
            leaf(vec![dns("db.example.com")]),
            Refuse(&["\"team.example.com\"", "CN=Example Root"]),
        ),
        case(
            "nested: the root's exclusion applies below the intermediate",
            vec![
                root(exclude(vec![Dns("internal.example.com")])).remove(0),
                team_intermediate(permit(vec![Dns("example.com")]), None),
            ],
            leaf(vec![dns("db.internal.example.com")]),
            Refuse(&["excluded", "\"internal.example.com\"", "CN=Example Root"]),
        ),
        case(
            "nested: IP ranges, inside both",
            vec![
                root(permit(vec![Ip("10.0.0.0/8")])).remove(0),
                team_intermediate(permit(vec![Ip("10.1.0.0/16")]), None),
            ],
            leaf(vec![ip("10.1.2.3")]),
            Issue,
        ),
        case(
            "nested: IP ranges, outside the intermediate's",
            vec![
                root(permit(vec![Ip("10.0.0.0/8")])).remove(0),
                team_intermediate(permit(vec![Ip("10.1.0.0/16")]), None),
            ],
            leaf(vec![ip("10.2.0.1")]),
            Refuse(&["iPAddress 10.2.0.1", "10.1.0.0/16", "CN=Team Intermediate"]),
        ),
        case(
            "nested: directory names",
            vec![
                ca(cn("Example Root"), permit(example_org()), None),
                ca(
                    org("Example", &[(DnType::CommonName, "Team Intermediate")]),
                    permit(vec![Dir(org("Example", &[(DnType::OrganizationalUnitName, "Team")]))]),
                    None,
                ),
            ],
            subject_only(org("Example", &[(DnType::OrganizationalUnitName, "Team"), (DnType::CommonName, "db")])),
            Issue,
        ),
        case(
            "nested: directory names, outside the intermediate's",
            vec![
                ca(cn("Example Root"), permit(example_org()), None),
                ca(
                    org("Example", &[(DnType::CommonName, "Team Intermediate")]),
                    permit(vec![Dir(org("Example", &[(DnType::OrganizationalUnitName, "Team")]))]),
                    None,
                ),
            ],
            subject_only(org("Example", &[(DnType::OrganizationalUnitName, "Other"), (DnType::CommonName, "db")])),
            Refuse(&["directoryName", "\"OU=Team,O=Example\"", "CN=Team Intermediate"]),
        ),
        // Sub-CA requests: their names are judged too.
        case(
            "sub-CA: commonName outside the permitted dNSName subtree",
            root(permit(vec![Dns("example.com")])),
            sub_ca(cn("ca.other.example")),
            Refuse(&["commonName", "\"example.com\""]),
        ),
        case("sub-CA: inside", root(permit(vec![Dns("example.com")])), sub_ca(cn("ca.example.com")), Issue),
        // Path length.
        case(
            "pathlen: issuing CA with 0, sub-CA request",
            vec![
                ca(cn("Example Root"), Constraints::default(), None),
                ca(cn("Intermediate"), Constraints::default(), Some(0)),
            ],
            sub_ca(cn("Sub CA")),
            Refuse(&["the issuing CA \"CN=Intermediate\" has pathLenConstraint 0", "sub-CA"]),
        ),
        case(
            "pathlen: issuing CA with 0, leaf request",
            vec![
                ca(cn("Example Root"), Constraints::default(), None),
                ca(cn("Intermediate"), Constraints::default(), Some(0)),
            ],
            leaf(vec![dns("db.example.com")]),
            Issue,
        ),
        case(
            "pathlen: issuing root with 0, sub-CA request",
            vec![ca(cn("Example Root"), Constraints::default(), Some(0))],
            sub_ca(cn("Sub CA")),
            Refuse(&["the issuing CA \"CN=Example Root\" has pathLenConstraint 0"]),
        ),
        case(
            "pathlen: issuing root with 0, leaf request",
            vec![ca(cn("Example Root"), Constraints::default(), Some(0))],
            leaf(vec![dns("db.example.com")]),
            Issue,
        ),
        case(
            "pathlen: root with 1 above an intermediate, sub-CA request",
            vec![
                ca(cn("Example Root"), Constraints::default(), Some(1)),
                ca(cn("Intermediate"), Constraints::default(), None),
            ],
            sub_ca(cn("Sub CA")),
            Refuse(&["the CA \"CN=Example Root\" has pathLenConstraint 1"]),
        ),
        case(
            "pathlen: root with 1 above an intermediate, leaf request",
            vec![
                ca(cn("Example Root"), Constraints::default(), Some(1)),
                ca(cn("Intermediate"), Constraints::default(), None),
            ],
            leaf(vec![dns("db.example.com")]),
            Issue,
        ),
        case(
            "pathlen: root with 0 above an intermediate, sub-CA request",
            vec![
                ca(cn("Example Root"), Constraints::default(), Some(0)),
                ca(cn("Intermediate"), Constraints::default(), None),
            ],
            sub_ca(cn("Sub CA")),
            Refuse(&["the CA \"CN=Example Root\" has pathLenConstraint 0", "already follow it"]),
        ),
        case(
            "pathlen: root with 0 above an intermediate, leaf request (chain already broken)",
            vec![
                ca(cn("Example Root"), Constraints::default(), Some(0)),
                ca(cn("Intermediate"), Constraints::default(), None),
            ],
            leaf(vec![dns("db.example.com")]),
            Refuse(&["the CA \"CN=Example Root\" has pathLenConstraint 0", "already follow it"]),
        ),
        case(
            "pathlen: root with 2 above an intermediate, sub-CA request",
            vec![
                ca(cn("Example Root"), Constraints::default(), Some(2)),
                ca(cn("Intermediate"), Constraints::default(), None),
            ],
            sub_ca(cn("Sub CA")),
            Issue,
        ),
        case(
            "pathlen: issuing CA with 1, sub-CA request",
            vec![
                ca(cn("Example Root"), Constraints::default(), None),
                ca(cn("Intermediate"), Constraints::default(), Some(1)),
            ],
            sub_ca(cn("Sub CA")),
            Issue,
        ),
        case(
            "pathlen: unconstrained, sub-CA request",
            vec![
                ca(cn("Example Root"), Constraints::default(), None),
                ca(cn("Intermediate"), Constraints::default(), None),
            ],
            sub_ca(cn("Sub CA")),
            Issue,
        ),
        // Constraints no validator uses.
        case(
            "malformed: nameConstraints that do not decode",
            root(Constraints { raw: Some(vec![0x30, 0x03, 0xa0, 0x01, 0x00]), ..Constraints::default() }),
            leaf(vec![dns("db.example.com")]),
            Refuse(&["nameConstraints", "does not decode"]),
        ),
        case(
            "malformed: a dNSName subtree with a maximum",
            root(Constraints { raw: Some(nc_with_maximum("example.com")), ..Constraints::default() }),
            leaf(vec![dns("db.example.com")]),
            Refuse(&["dNSName subtree \"example.com\"", "minimum or maximum"]),
        ),
        case(
            "malformed: a dNSName subtree with a maximum, no dNSName",
            root(Constraints { raw: Some(nc_with_maximum("example.com")), ..Constraints::default() }),
            leaf(vec![ip("10.0.0.1")]),
            Issue,
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// DER written by hand: what rcgen cannot write.

/// One DER TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A subjectAltName value holding `names` (GeneralName DERs).
fn san(names: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &names.concat())
}

/// A directoryName GeneralName `O=<o>` (UTF8String, as rcgen writes the subject).
fn directory_name(o: &str) -> Vec<u8> {
    let atv = tlv(0x30, &[&[0x06, 0x03, 0x55, 0x04, 0x0a][..], &tlv(0x0c, o.as_bytes())].concat());
    tlv(0xa4, &tlv(0x30, &tlv(0x31, &atv)))
}

/// An otherName GeneralName of type id-on-SmtpUTF8Mailbox (1.3.6.1.5.5.7.8.9).
fn smtp_utf8_mailbox(address: &str) -> Vec<u8> {
    let oid = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x09];
    tlv(0xa0, &[&oid[..], &tlv(0xa0, &tlv(0x0c, address.as_bytes()))].concat())
}

/// A NameConstraints value permitting `dns` with a `maximum` of 3.
fn nc_with_maximum(dns: &str) -> Vec<u8> {
    tlv(0x30, &tlv(0xa0, &tlv(0x30, &[tlv(0x82, dns.as_bytes()), vec![0x81, 0x01, 0x03]].concat())))
}

/// `address/prefix` as the address and its mask.
fn ip_range(spec: &str) -> (IpAddr, u8) {
    let (address, prefix) = spec.split_once('/').expect("address/prefix");
    (address.parse().expect("IP address"), prefix.parse().expect("prefix"))
}

/// A NameConstraints value written by hand (for URI subtrees, which rcgen lacks).
fn encode_constraints(c: &Constraints) -> Vec<u8> {
    let subtrees = |subs: &[Sub]| -> Vec<u8> {
        subs.iter()
            .map(|sub| {
                let base = match sub {
                    Sub::Dns(v) => tlv(0x82, v.as_bytes()),
                    Sub::Email(v) => tlv(0x81, v.as_bytes()),
                    Sub::Uri(v) => tlv(0x86, v.as_bytes()),
                    Sub::Ip(spec) => {
                        let (address, prefix) = ip_range(spec);
                        let mut bytes = match address {
                            IpAddr::V4(a) => a.octets().to_vec(),
                            IpAddr::V6(a) => a.octets().to_vec(),
                        };
                        let mask: Vec<u8> = (0..bytes.len())
                            .map(|i| {
                                let bits = usize::from(prefix).saturating_sub(8 * i).min(8);
                                if bits == 0 { 0 } else { 0xffu8 << (8 - bits) }
                            })
                            .collect();
                        bytes.extend(mask);
                        tlv(0x87, &bytes)
                    }
                    Sub::Dir(_) => panic!("a directoryName subtree with a URI subtree: not supported by this test"),
                };
                tlv(0x30, &base)
            })
            .collect::<Vec<_>>()
            .concat()
    };
    let mut body = Vec::new();
    if !c.permitted.is_empty() {
        body.extend(tlv(0xa0, &subtrees(&c.permitted)));
    }
    if !c.excluded.is_empty() {
        body.extend(tlv(0xa1, &subtrees(&c.excluded)));
    }
    tlv(0x30, &body)
}

/// A critical extension `oid` with `value`.
fn extension(oid: &[u64], value: Vec<u8>) -> CustomExtension {
    let mut ext = CustomExtension::from_oid_content(oid, value);
    ext.set_criticality(true);
    ext
}

/// The nameConstraints OID.
const NAME_CONSTRAINTS: &[u64] = &[2, 5, 29, 30];

/// The subjectAltName OID.
const SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];

// ---------------------------------------------------------------------------------------------
// Building certificates.

/// A built CA.
struct BuiltCa {
    /// Its parameters (rcgen signs below it from these).
    params: CertificateParams,
    /// Its key.
    key: KeyPair,
    /// Its certificate.
    pem: String,
}

/// `entries` as an rcgen name.
fn distinguished_name(entries: &[(DnType, DnValue)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (ty, value) in entries {
        dn.push(ty.clone(), value.clone());
    }
    dn
}

/// Builds the chain `specs` (root first).
fn build_chain(specs: &[CaSpec]) -> Vec<BuiltCa> {
    let mut built: Vec<BuiltCa> = Vec::new();
    for spec in specs {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name = distinguished_name(&spec.subject);
        params.is_ca = IsCa::Ca(spec.path_len.map_or(BasicConstraints::Unconstrained, BasicConstraints::Constrained));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let c = &spec.constraints;
        let by_hand = c.raw.is_some() || c.permitted.iter().chain(&c.excluded).any(|s| matches!(s, Sub::Uri(_)));
        if by_hand {
            let value = c.raw.clone().unwrap_or_else(|| encode_constraints(c));
            params.custom_extensions.push(extension(NAME_CONSTRAINTS, value));
        } else if !c.permitted.is_empty() || !c.excluded.is_empty() {
            let subtrees = |subs: &[Sub]| -> Vec<GeneralSubtree> {
                subs.iter()
                    .map(|sub| match sub {
                        Sub::Dns(v) => GeneralSubtree::DnsName(v.to_string()),
                        Sub::Email(v) => GeneralSubtree::Rfc822Name(v.to_string()),
                        Sub::Ip(spec) => {
                            let (address, prefix) = ip_range(spec);
                            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(address, prefix))
                        }
                        Sub::Dir(entries) => GeneralSubtree::DirectoryName(distinguished_name(entries)),
                        Sub::Uri(_) => unreachable!("written by hand"),
                    })
                    .collect()
            };
            params.name_constraints = Some(NameConstraints {
                permitted_subtrees: subtrees(&c.permitted),
                excluded_subtrees: subtrees(&c.excluded),
            });
        }
        let key = KeyPair::generate().expect("CA key");
        let cert = match built.last() {
            Some(parent) => params.signed_by(&key, &Issuer::from_params(&parent.params, &parent.key)),
            None => params.self_signed(&key),
        }
        .expect("CA certificate");
        built.push(BuiltCa { pem: cert.pem(), params, key });
    }
    built
}

/// The request's parameters (no CA flag: the CSR leaves that to `spec.isCA`).
fn request_params(req: &Req) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("request params");
    params.distinguished_name = distinguished_name(&req.subject);
    params.subject_alt_names = req.sans.clone();
    if let Some(value) = &req.raw_san {
        params.custom_extensions.push(extension(SUBJECT_ALT_NAME, value.clone()));
    }
    params
}

/// The certificate of `params` as a CA or a leaf, signed by `issuer`.
fn sign_like_ferrum(params: &CertificateParams, is_ca: bool, key: &KeyPair, issuer: &Issuer<'_, &KeyPair>) -> String {
    let mut params = params.clone();
    if is_ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment, KeyUsagePurpose::KeyCertSign];
    } else {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    }
    params.signed_by(key, issuer).expect("would-be certificate").pem()
}

/// A leaf signed by the sub-CA `sub_ca_pem` (key `sub_ca_key`), its subject the request's with
/// commonName `grandchild leaf` (so that directoryName subtrees treat it like the sub-CA).
fn grandchild(req: &Req, sub_ca_pem: &str, sub_ca_key: &KeyPair) -> String {
    let issuer = Issuer::from_ca_cert_pem(sub_ca_pem, sub_ca_key).expect("sub-CA as issuer");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("grandchild params");
    params.distinguished_name = distinguished_name(&req.subject);
    params.distinguished_name.push(DnType::CommonName, "grandchild leaf");
    let key = KeyPair::generate().expect("grandchild key");
    params.signed_by(&key, &issuer).expect("grandchild").pem()
}

// ---------------------------------------------------------------------------------------------
// openssl verify.

/// Fails the test with the install hint when there is no `openssl` CLI.
fn require_openssl() {
    match Command::new("openssl").arg("version").output() {
        Ok(out) if out.status.success() => {}
        _ => panic!("the openssl CLI is needed for this test (the oracle): apt-get install openssl"),
    }
}

/// `openssl verify -CAfile <root> [-untrusted <untrusted>] <leaf>` in `dir`: `Ok` or the error.
fn openssl_verify(dir: &Path, root: &str, untrusted: &[&str], leaf: &str) -> Result<(), String> {
    std::fs::write(dir.join("root.pem"), root).expect("write root.pem");
    std::fs::write(dir.join("leaf.pem"), leaf).expect("write leaf.pem");
    let mut args = vec!["verify", "-CAfile", "root.pem"];
    if !untrusted.is_empty() {
        std::fs::write(dir.join("untrusted.pem"), untrusted.concat()).expect("write untrusted.pem");
        args.extend(["-untrusted", "untrusted.pem"]);
    }
    args.push("leaf.pem");
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(&args)
        .output()
        .expect("the openssl CLI is needed for this test: apt-get install openssl");
    if out.status.success() {
        return Ok(());
    }
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let error = text.lines().find(|l| l.contains("error")).unwrap_or(text.trim()).trim();
    // "error 47 at 0 depth lookup: permitted subtree violation" -> what follows "lookup: ".
    Err(error.split("lookup: ").nth(1).unwrap_or(error).to_owned())
}

/// The PEM blocks of `pem`, each with its lines.
fn pem_blocks(pem: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in pem.lines() {
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END") {
            blocks.push(std::mem::take(&mut current));
        }
    }
    blocks
}

// ---------------------------------------------------------------------------------------------
// The test.

/// What one case gave.
struct Outcome {
    /// Ferrum's verdict, for the table.
    ferrum: String,
    /// The oracle's, for the table.
    openssl: String,
    /// What went wrong, if anything.
    failures: Vec<String>,
}

/// Runs one case.
fn run(case: &Case, dir: &Path) -> Outcome {
    let chain = build_chain(&case.cas);
    let (root, issuing) = (&chain[0], &chain[chain.len() - 1]);
    // The intermediates, issuing CA first (tls.crt), without the root.
    let intermediates: Vec<&str> = chain[1..].iter().rev().map(|c| c.pem.as_str()).collect();
    let tls_crt = if intermediates.is_empty() { root.pem.clone() } else { intermediates.concat() };

    // Ferrum.
    let request_key = KeyPair::generate().expect("request key");
    let params = request_params(&case.req);
    let csr = params.serialize_request(&request_key).expect("CSR").pem().expect("CSR PEM");
    let bundle = CaBundle::parse(tls_crt.as_bytes(), Some(root.pem.as_bytes())).expect("CaBundle::parse");
    let ca_key = SoftwareKey::from_pem(issuing.key.serialize_pem().as_bytes()).expect("SoftwareKey");
    let csr = parse_csr(csr.as_bytes()).expect("parse_csr");
    let profile = RequestedProfile { is_ca: case.req.is_ca, ..RequestedProfile::default() };
    let template = certificate_template(&profile, &csr).expect("certificate_template");
    let signed = sign_with_ca(&bundle, &ca_key, &template, &PublishedUrls::default(), SystemTime::now());

    // The oracle.
    let issuer = Issuer::from_params(&issuing.params, &issuing.key);
    let would_be = sign_like_ferrum(&params, case.req.is_ca, &request_key, &issuer);
    let mut oracle = openssl_verify(dir, &root.pem, &intermediates, &would_be);
    if case.req.is_ca && oracle.is_ok() {
        let below = grandchild(&case.req, &would_be, &request_key);
        let mut untrusted = intermediates.clone();
        untrusted.push(&would_be);
        oracle = openssl_verify(dir, &root.pem, &untrusted, &below).map_err(|e| format!("grandchild: {e}"));
    }

    let mut failures = Vec::new();
    let mut fail = |what: String| failures.push(format!("{}: {what}", case.name));
    let ferrum = match &signed {
        Ok(_) => "issued".to_owned(),
        Err(CaSignError::Constraint(m)) => format!("refused: {m}"),
        Err(CaSignError::Unverifiable(m)) => format!("refused by the guard: {m}"),
        Err(other) => format!("error: {other}"),
    };
    let openssl = match &oracle {
        Ok(()) => "accepts".to_owned(),
        Err(e) => format!("refuses: {e}"),
    };
    let constraint_message = |needles: &[&str], fail: &mut dyn FnMut(String)| match &signed {
        Err(CaSignError::Constraint(message)) => {
            for needle in needles {
                if !message.contains(needle) {
                    fail(format!("the refusal does not say {needle:?}: {message}"));
                }
            }
        }
        _ => fail(format!("expected a Constraint refusal, got {ferrum}")),
    };
    let mut guard_placeholder = false;
    match case.expect {
        Expect::Issue => {
            if signed.is_err() || oracle.is_err() {
                fail(format!("expected issued and accepted; Ferrum {ferrum}; openssl {openssl}"));
            }
        }
        Expect::Refuse(needles) => {
            if oracle.is_ok() {
                fail("expected openssl to refuse; it accepts".into());
            }
            constraint_message(needles, &mut fail);
        }
        Expect::Diverge(needles, _) => {
            if oracle.is_err() {
                fail(format!("a documented divergence, but openssl refuses too ({openssl}): update the row"));
            }
            constraint_message(needles, &mut fail);
        }
        Expect::GuardCatches(_) => {
            if oracle.is_ok() {
                fail("expected openssl to refuse; it accepts".into());
            }
            match &signed {
                Err(CaSignError::Unverifiable(_)) => {}
                // The guard in x509::verify is still a placeholder.
                Ok(_) => guard_placeholder = true,
                _ => fail(format!("expected the pre-check to let it through to the guard; Ferrum {ferrum}")),
            }
        }
    }

    // Whatever Ferrum issued must validate (and, for a sub-CA, sign a leaf that validates).
    if let Ok(issued) = &signed
        && !guard_placeholder
    {
        let blocks = pem_blocks(&issued.chain_pem);
        let rest: Vec<&str> = blocks[1..].iter().map(String::as_str).collect();
        let mut verdict = openssl_verify(dir, &issued.ca_pem, &rest, &blocks[0]);
        if case.req.is_ca && verdict.is_ok() {
            let below = grandchild(&case.req, &blocks[0], &request_key);
            let mut untrusted = rest.clone();
            untrusted.push(&blocks[0]);
            verdict = openssl_verify(dir, &issued.ca_pem, &untrusted, &below).map_err(|e| format!("grandchild: {e}"));
        }
        if let Err(e) = verdict {
            fail(format!("Ferrum issued a certificate openssl refuses: {e}"));
        }
    }
    let ferrum =
        if guard_placeholder { "issued (the OpenSSL guard is still a placeholder)".to_owned() } else { ferrum };
    Outcome { ferrum, openssl, failures }
}

/// The first `n` characters of `text`.
fn cut(text: &str, n: usize) -> String {
    if text.chars().count() <= n { text.to_owned() } else { format!("{}…", text.chars().take(n).collect::<String>()) }
}

#[test]
fn ferrum_issues_exactly_when_openssl_accepts() {
    require_openssl();
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = cases();
    let mut table = String::from("| case | expected | ferrum | openssl |\n| --- | --- | --- | --- |\n");
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    for case in &cases {
        let outcome = run(case, dir.path());
        let expected = match case.expect {
            Expect::Issue => "issue",
            Expect::Refuse(_) => "refuse",
            Expect::Diverge(_, reason) => {
                notes.push(format!("- {}: Ferrum refuses, openssl accepts: {reason}", case.name));
                "DIVERGE"
            }
            Expect::GuardCatches(reason) => {
                notes.push(format!("- {}: {reason}", case.name));
                "guard"
            }
        };
        let _ = writeln!(
            table,
            "| {} | {expected} | {} | {} |",
            case.name,
            cut(&outcome.ferrum, 150),
            cut(&outcome.openssl, 60)
        );
        failures.extend(outcome.failures);
    }
    println!("{table}");
    println!("Deliberate differences:\n{}", notes.join("\n"));
    println!("{} cases, {} failures", cases.len(), failures.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
