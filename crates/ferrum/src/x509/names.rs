//! The names a request asks for, parsed rather than passed through.
//!
//! The subject and the subjectAltName extension are copied into the certificate byte for byte,
//! so whatever they hold is vouched for by the CA. cert-manager's approvers read them through
//! Go's `crypto/x509`, which sees only DNS, email, URI and IP entries and skips the other
//! GeneralName types: an `otherName` or `directoryName` would reach the certificate without an
//! approver ever seeing it. So by default Ferrum refuses:
//!
//! - SAN entries of the types approvers do not see (otherName, x400Address, directoryName,
//!   ediPartyName, registeredID), unless the issuer opts in to that type;
//! - malformed entries: an IP address that is not 4 or 16 bytes, a DNS name or email that is
//!   empty or holds spaces or control characters, a URI that is not an absolute RFC 3986 URI;
//! - a subject with more than one commonName, which readers resolve differently (Go keeps the
//!   last, others the first).

use std::fmt;

use der::asn1::ObjectIdentifier;
use der::{Any, Decode, Tag, Tagged};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use x509_cert::name::Name;

use super::csr::ValidatedCsr;
use super::oids;

/// commonName (2.5.4.3).
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// A subjectAltName type that approvers do not see, refused unless an issuer allows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum SanType {
    /// `otherName` (e.g. a UPN or an SRV name).
    OtherName,
    /// `x400Address`.
    X400Address,
    /// `directoryName`.
    DirectoryName,
    /// `ediPartyName`.
    EdiPartyName,
    /// `registeredID`.
    RegisteredID,
}

impl fmt::Display for SanType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What an issuer allows beyond the default name rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamePolicy {
    /// SAN types accepted although approvers do not see them.
    pub allowed_san_types: Vec<SanType>,
}

impl NamePolicy {
    /// A policy allowing these extra SAN types.
    pub fn allowing(types: &[SanType]) -> Self {
        Self { allowed_san_types: types.to_vec() }
    }
}

/// Why the names of a request were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// More than one commonName in the subject.
    #[error("the CSR's subject has {0} commonName attributes; at most one is accepted")]
    DuplicateCommonName(usize),
    /// An empty subject and no subjectAltName: the certificate would name nothing.
    #[error("the CSR names nothing: its subject is empty and it requests no subjectAltName")]
    NamesNothing,
    /// The subject does not decode.
    #[error("the CSR's subject does not decode: {0}")]
    BadSubject(String),
    /// The subjectAltName extension does not decode.
    #[error("the CSR's subjectAltName extension does not decode: {0}")]
    BadSubjectAltName(String),
    /// A SAN type approvers do not see, not allowed by the issuer.
    #[error(
        "the CSR requests a subjectAltName of type {0}, which cert-manager's approvers cannot see; \
         the issuer must list it in spec.policy.allowedSubjectAltNameTypes to accept it"
    )]
    SanTypeNotAllowed(SanType),
    /// A malformed SAN entry.
    #[error("the CSR's subjectAltName entry {index} is a malformed {kind}: {why}")]
    Malformed {
        /// 1-based position in the extension.
        index: usize,
        /// `IP address`, `DNS name`, `email address` or `URI`.
        kind: &'static str,
        /// What is wrong.
        why: String,
    },
}

/// Checks the subject and subjectAltName of a checked CSR against the default rules and
/// `policy`.
pub fn check_names(csr: &ValidatedCsr, policy: &NamePolicy) -> Result<(), NameError> {
    let subject = Name::from_der(&csr.subject).map_err(|e| NameError::BadSubject(e.to_string()))?;
    let common_names = subject.iter().filter(|atv| atv.oid == COMMON_NAME).count();
    if common_names > 1 {
        return Err(NameError::DuplicateCommonName(common_names));
    }
    let Some(san) = csr.extension(oids::SUBJECT_ALT_NAME) else {
        return if subject.is_empty() { Err(NameError::NamesNothing) } else { Ok(()) };
    };
    let entries =
        Vec::<Any>::from_der(san.extn_value.as_bytes()).map_err(|e| NameError::BadSubjectAltName(e.to_string()))?;
    if entries.is_empty() {
        return Err(NameError::BadSubjectAltName("it holds no names".into()));
    }
    for (i, entry) in entries.iter().enumerate() {
        check_entry(i + 1, entry, policy)?;
    }
    Ok(())
}

fn check_entry(index: usize, entry: &Any, policy: &NamePolicy) -> Result<(), NameError> {
    let Tag::ContextSpecific { constructed, number } = entry.tag() else {
        return Err(NameError::BadSubjectAltName(format!("entry {index} is not a GeneralName")));
    };
    let value = entry.value();
    let malformed = |kind, why: String| NameError::Malformed { index, kind, why };
    let extra = |t: SanType| {
        if policy.allowed_san_types.contains(&t) { Ok(()) } else { Err(NameError::SanTypeNotAllowed(t)) }
    };
    match (number.value(), constructed) {
        (1, false) => check_text(value).map_err(|why| malformed("email address", why)),
        (2, false) => check_text(value).map_err(|why| malformed("DNS name", why)),
        (6, false) => check_uri(value).map_err(|why| malformed("URI", why)),
        (7, false) => match value.len() {
            4 | 16 => Ok(()),
            n => Err(malformed("IP address", format!("{n} bytes; an IP address is 4 (IPv4) or 16 (IPv6) bytes"))),
        },
        (0, true) => extra(SanType::OtherName),
        (3, true) => extra(SanType::X400Address),
        (4, true) => {
            extra(SanType::DirectoryName)?;
            Name::from_der(value).map(|_| ()).map_err(|e| NameError::BadSubjectAltName(format!("entry {index}: {e}")))
        }
        (5, true) => extra(SanType::EdiPartyName),
        (8, false) => {
            extra(SanType::RegisteredID)?;
            ObjectIdentifier::from_bytes(value)
                .map(|_| ())
                .map_err(|e| NameError::BadSubjectAltName(format!("entry {index}: {e}")))
        }
        (n, c) => Err(NameError::BadSubjectAltName(format!(
            "entry {index} has tag [{n}]{}, which is not a GeneralName",
            if c { " constructed" } else { "" }
        ))),
    }
}

/// DNS names and emails: non-empty printable ASCII without spaces (IA5, as RFC 5280 requires).
fn check_text(value: &[u8]) -> Result<(), String> {
    if value.is_empty() {
        return Err("it is empty".into());
    }
    match value.iter().find(|b| !b.is_ascii_graphic()) {
        Some(b) => Err(format!("it holds byte 0x{b:02x}; only printable ASCII without spaces is accepted")),
        None => Ok(()),
    }
}

/// An absolute URI by RFC 3986: a scheme, then only URI characters with well-formed
/// percent-escapes, and when there is an authority, a host of non-empty labels (or an IP
/// literal) and a numeric port.
fn check_uri(value: &[u8]) -> Result<(), String> {
    check_text(value)?;
    // Invariant: check_text passed, so the value is ASCII.
    let text = std::str::from_utf8(value).map_err(|e| e.to_string())?;
    let (scheme, rest) = text.split_once(':').ok_or("it has no scheme")?;
    let mut chars = scheme.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err("its scheme is not valid".into());
    }
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let escape = bytes.get(i + 1..i + 3).ok_or("it ends in an incomplete %-escape")?;
                if !escape.iter().all(u8::is_ascii_hexdigit) {
                    return Err("it holds an invalid %-escape".into());
                }
                i += 3;
                continue;
            }
            b if b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b) => {}
            b => return Err(format!("it holds {:?}, which a URI cannot", b as char)),
        }
        i += 1;
    }
    if let Some(after) = rest.strip_prefix("//") {
        let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        check_host(host_port)?;
    }
    Ok(())
}

fn check_host(host_port: &str) -> Result<(), String> {
    let (host, port) = if let Some(literal) = host_port.strip_prefix('[') {
        let (ip, port) = literal.split_once(']').ok_or("its IP literal is not closed")?;
        ip.parse::<std::net::Ipv6Addr>().map_err(|_| "its IP literal is not an IPv6 address")?;
        let port = match port {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("it has text after its IP literal")?),
        };
        ("", port)
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if let Some(port) = port
        && !port.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("its port is not a number".into());
    }
    if !host.is_empty()
        && !host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(
            "its host is not a valid name (empty label or characters other than letters, digits, '-', '_')".into()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        for ok in [
            "spiffe://cluster.local/ns/a/sa/b",
            "https://example.com:8443/a?b=c#d",
            "urn:uuid:123e4567-e89b-12d3-a456-426614174000",
            "https://[2001:db8::1]:443/",
            "file:///etc/x",
            "https://user@example.com/%41",
        ] {
            assert_eq!(check_uri(ok.as_bytes()), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "no-scheme",
            "1http://x",
            "https://exa mple.com",
            "https://example.com/%zz",
            "https://example.com/%4",
            "https://a..b/",
            "https://example.com:80x/",
            "https://[not-ip]/",
            "https://ex\"ample.com",
            "https://example.com./",
        ] {
            assert!(check_uri(bad.as_bytes()).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn text_names() {
        assert!(check_text(b"*.example.com").is_ok());
        assert!(check_text(b"").is_err());
        assert!(check_text(b"a b").is_err());
        assert!(check_text(b"a\0b").is_err());
        assert!(check_text("é".as_bytes()).is_err());
    }
}
