//! The issuing CA's own limits, checked before anything is signed: the name constraints and the
//! path lengths of every CA certificate in the issuer's chain, the root included.
//!
//! A certificate that breaks them would be refused by every RFC 5280 validator, so Ferrum
//! refuses the request instead (`Failed`, with the constraint, the name and the CA named),
//! before the key signs anything. The OpenSSL path validation that follows signing
//! ([`super::verify`]) is the second guard; this check is the one that explains.
//!
//! # Name constraints: OpenSSL 3.0's rules
//!
//! The semantics are OpenSSL 3.0's (`NAME_CONSTRAINTS_check` and `NAME_CONSTRAINTS_check_CN`
//! in `crypto/x509/v3_ncons.c`, called from `check_name_constraints` in `x509_vfy.c`), which
//! the tests use as their oracle (`tests/name_constraints.rs` runs `openssl verify` on every
//! case). OpenSSL applies the constraints of every CA above a certificate, the trust anchor
//! included, and so does Ferrum: each CA of [`CaBundle::chain`] and [`CaBundle::root`].
//! For one CA's constraints and one name of the certificate:
//!
//! - only subtrees of the name's own type count; if there are permitted ones, the name must be
//!   inside at least one, and it must be inside no excluded one;
//! - **dNSName**: the subtree's text is a case-insensitive (ASCII) suffix of the name, and either
//!   the name is the subtree itself or the character before the suffix is a `.`; a subtree
//!   written `.example.com` is compared as text too, so it matches only names below
//!   `example.com`. An empty subtree matches every name;
//! - **the subject commonName** is judged as a dNSName when the certificate has no dNSName and
//!   the commonName looks like a host name: only letters, digits, `_`, and `-` and `.` that
//!   are neither first nor last, no `.` next to another `.` or a `-`, and at least one `.`
//!   (a single label such as `localhost` is not a host name; a wildcard `*` is not either, so
//!   a wildcard commonName is never judged). Trailing NUL characters are dropped; an embedded
//!   NUL makes it unjudgeable. OpenSSL does this only for the end of the path it validates;
//!   Ferrum's guard validates every certificate it issues, sub-CAs included, as the end of its
//!   path, so the commonName of a sub-CA is judged too;
//! - **rfc822Name** (subjectAltName emails and the subject's emailAddress attributes, which
//!   must be IA5Strings): a subtree `.example.com` matches an address ending in `.example.com`;
//!   `user@example.com` matches that mailbox (local part compared byte for byte, host without
//!   case); `example.com` (or `@example.com`) matches every mailbox at exactly that host. An
//!   address without `@` cannot be judged;
//! - **uniformResourceIdentifier**: the host is what follows `scheme://`, up to the first `:`
//!   after it, else the first `/`, else the end (OpenSSL 3.0's reading, which keeps
//!   `user@` in the host and stops an IPv6 literal at its first `:`); it must equal the
//!   subtree (case-insensitive), or end with it when the subtree starts with `.`. A URI with no
//!   `scheme://` or an empty host cannot be judged;
//! - **iPAddress**: address AND mask = subtree address AND mask, byte for byte; an IPv4 address
//!   never matches an IPv6 subtree nor the reverse. A subtree that is not 8 or 32 bytes makes
//!   every iPAddress unjudgeable;
//! - **directoryName** (the subject, unless it is empty, and directoryName subjectAltNames):
//!   the subtree's RDNs must be the first RDNs of the name. OpenSSL compares canonical forms
//!   (string types unified, case and spaces folded); Ferrum compares each RDN's DER byte for
//!   byte. That is stricter for permitted subtrees (an `O=Example` PrintableString subtree does
//!   not admit an `O=example` UTF8String subject, which OpenSSL admits) and laxer for excluded
//!   ones (an excluded `O=Example` does not catch `O=EXAMPLE` here); the OpenSSL guard after
//!   signing catches the latter, so such a request fails there, with OpenSSL's message;
//! - any other subjectAltName type (otherName, x400Address, ediPartyName, registeredID) cannot
//!   be judged: it is refused when the CA has subtrees of that type. An otherName is also
//!   refused when the CA has rfc822Name subtrees, since it may be an `SmtpUTF8Mailbox`, which
//!   OpenSSL judges against those (stricter than OpenSSL for other otherNames: [`CertNames`]
//!   keeps no otherName's type);
//! - a subtree with a `minimum` other than 0 or any `maximum` (RFC 5280 forbids both) makes every
//!   name of its type unjudgeable, as does more than 2^20 names × subtrees (OpenSSL's limit);
//! - a CA whose nameConstraints extension does not decode (or appears twice) is refused outright.
//!
//! ## The one deliberate difference: wildcards
//!
//! OpenSSL compares a wildcard dNSName as plain text, so `*.example.com` passes an excluded
//! `internal.example.com` although it would be accepted by TLS clients for
//! `internal.example.com`. Ferrum refuses a dNSName with a `*` when any name it could match
//! (each `*` standing for any run of characters inside its label) is inside an excluded subtree,
//! and admits it under a permitted subtree only when every name it could match is inside (the
//! part of the name compared with the subtree holds no `*`; for the usual leftmost-label wildcard
//! this is exactly OpenSSL's verdict, so `*.example.com` is admitted under `example.com` and
//! `*.com` is not, as by OpenSSL).
//!
//! # Path length
//!
//! For a sub-CA request, each CA with a pathLenConstraint must leave room for one more CA
//! below the issuing CA: the new certificate and every CA certificate between it and that CA
//! that is not self-issued count, as OpenSSL counts them (`check_extensions` in `x509_vfy.c`);
//! so an issuing CA with pathLenConstraint 0 issues no sub-CA. A leaf request is only refused
//! when the chain itself already breaks a pathLenConstraint (then nothing it issues validates).
//! A sub-CA whose subject is the issuing CA's (self-issued) does not count.
//!
//! # Cost
//!
//! Everything read from the CA certificates is read once, when the [`CaBundle`] is parsed
//! ([`ChainLimits::of`]); a chain without name constraints costs a walk over its CAs' path
//! lengths per request.

use std::fmt::Write as _;
use std::net::IpAddr;

use der::asn1::ObjectIdentifier;
use der::{Any, Decode, Encode, Reader, SliceReader, Tag, Tagged};
use x509_cert::Certificate;
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::name::{Name, RelativeDistinguishedName};

use super::cert_names::CertNames;
use super::chain::{CaBundle, CertFacts};
use super::oids;

/// PKCS #9 emailAddress (1.2.840.113549.1.9.1), an email in the subject.
const EMAIL_ADDRESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1");

/// OpenSSL's cap on names × subtrees for one CA (`NAME_CHECK_MAX`): beyond it, it refuses.
const NAME_CHECK_MAX: usize = 1 << 20;

/// Longest name, subtree or CA subject quoted in a message, in characters.
const MAX_QUOTED_CHARS: usize = 100;

/// Most subtrees listed in a message.
const MAX_LISTED: usize = 5;

/// Why a request is outside what the CA may vouch for. The text is for a person: it names the
/// constraint, the name and the CA, and is bounded in length.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CaConstraintError {
    /// A name outside every permitted subtree of its type.
    #[error("{name} is outside the permitted {kind} subtrees {subtrees} of the CA \"{ca}\"")]
    NotPermitted {
        /// The name, described.
        name: String,
        /// The GeneralName type of the subtrees.
        kind: &'static str,
        /// The permitted subtrees of that type, listed.
        subtrees: String,
        /// The CA's subject.
        ca: String,
    },
    /// A name inside an excluded subtree.
    #[error("{name} is inside the excluded {kind} subtree {subtree} of the CA \"{ca}\"")]
    Excluded {
        /// The name, described.
        name: String,
        /// The GeneralName type of the subtree.
        kind: &'static str,
        /// The subtree.
        subtree: String,
        /// The CA's subject.
        ca: String,
    },
    /// A wildcard dNSName that could match a name inside an excluded subtree.
    #[error(
        "{name} is a wildcard that covers names inside the excluded {kind} subtree {subtree} of the CA \"{ca}\" \
         (a wildcard is refused when any name it covers is excluded)"
    )]
    WildcardExcluded {
        /// The name, described.
        name: String,
        /// The GeneralName type of the subtree.
        kind: &'static str,
        /// The subtree.
        subtree: String,
        /// The CA's subject.
        ca: String,
    },
    /// A name that cannot be judged against the CA's subtrees of its type.
    #[error("{name} cannot be judged against the {kind} subtrees of the CA \"{ca}\": {why}")]
    Unjudgeable {
        /// The name, described.
        name: String,
        /// The GeneralName type of the subtrees.
        kind: &'static str,
        /// The CA's subject.
        ca: String,
        /// Why.
        why: String,
    },
    /// A subtree no validator uses, so no name of its type passes.
    #[error("the CA \"{ca}\" has a {kind} subtree {subtree} {why}, so no certificate with a {kind} validates below it")]
    BadSubtree {
        /// The CA's subject.
        ca: String,
        /// The GeneralName type of the subtree.
        kind: &'static str,
        /// The subtree.
        subtree: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The CA's nameConstraints extension does not decode.
    #[error("the nameConstraints extension of the CA \"{ca}\" does not decode: {why}")]
    Malformed {
        /// The CA's subject.
        ca: String,
        /// The decoder's complaint.
        why: String,
    },
    /// More names × subtrees than OpenSSL compares.
    #[error(
        "the certificate's {names} names against the {constraints} name constraints of the CA \"{ca}\" exceed \
         OpenSSL's limit of {NAME_CHECK_MAX} comparisons"
    )]
    TooMany {
        /// Subject attributes plus subjectAltNames.
        names: usize,
        /// Permitted plus excluded subtrees.
        constraints: usize,
        /// The CA's subject.
        ca: String,
    },
    /// A sub-CA request to an issuing CA with pathLenConstraint 0.
    #[error("the issuing CA \"{ca}\" has pathLenConstraint {path_len}: it may not issue sub-CA certificates")]
    IssuingPathLength {
        /// The issuing CA's subject.
        ca: String,
        /// Its pathLenConstraint.
        path_len: u8,
    },
    /// A sub-CA request that would put more CAs below a CA higher in the chain than it allows.
    #[error(
        "the CA \"{ca}\" has pathLenConstraint {path_len}: at most {path_len} CA certificate(s) may follow it in \
         a path, and a sub-CA certificate issued here would be number {below}"
    )]
    PathLength {
        /// The CA's subject.
        ca: String,
        /// Its pathLenConstraint.
        path_len: u8,
        /// The CA certificates below it, the new one included.
        below: usize,
    },
    /// A chain that already breaks a pathLenConstraint, so nothing it issues validates.
    #[error(
        "the CA \"{ca}\" has pathLenConstraint {path_len} but {below} CA certificate(s) already follow it in the \
         issuer's chain, so no certificate issued by this chain validates"
    )]
    ChainPathLength {
        /// The CA's subject.
        ca: String,
        /// Its pathLenConstraint.
        path_len: u8,
        /// The CA certificates below it in the chain.
        below: usize,
    },
}

/// Checks `names` (and a CA request's place in the path) against every CA in `ca`'s chain.
pub(crate) fn check_ca_constraints(names: &CertNames, is_ca: bool, ca: &CaBundle) -> Result<(), CaConstraintError> {
    ca.limits.check(names, is_ca)
}

/// The limits of every CA of a bundle, read once when the bundle is parsed.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChainLimits {
    /// From the issuing CA up to the root.
    cas: Vec<CaLimits>,
    /// The issuing CA's subject RDNs, each as DER (to tell a self-issued sub-CA).
    issuing_rdns: Vec<Vec<u8>>,
    /// Whether any CA has a nameConstraints extension (else only path lengths are checked).
    constrained: bool,
}

/// What one CA certificate limits.
#[derive(Clone, Debug)]
struct CaLimits {
    /// Its subject, for messages (RFC 4514, bounded).
    name: String,
    /// Whether subject and issuer are the same name (such a CA does not count in path lengths).
    self_issued: bool,
    /// basicConstraints pathLenConstraint.
    path_len: Option<u8>,
    /// Its nameConstraints: none, read, or why they do not decode.
    constraints: Option<Result<NameConstraints, String>>,
}

/// A nameConstraints extension, read.
#[derive(Clone, Debug, Default)]
struct NameConstraints {
    /// permittedSubtrees.
    permitted: Vec<Subtree>,
    /// excludedSubtrees.
    excluded: Vec<Subtree>,
}

/// One GeneralSubtree.
#[derive(Clone, Debug)]
struct Subtree {
    /// The type of its base.
    kind: Kind,
    /// The base's content: the text of a dNSName, rfc822Name or URI, the address and mask of
    /// an iPAddress; empty for the other types.
    value: Vec<u8>,
    /// A directoryName's RDNs, each as DER.
    rdns: Vec<Vec<u8>>,
    /// For messages: quoted text, `address/prefix`, or a quoted RFC 4514 name.
    shown: String,
    /// Whether it has a `minimum` other than 0 or a `maximum`.
    bounded: bool,
}

/// The GeneralName types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `[0] otherName`.
    OtherName,
    /// `[1] rfc822Name`.
    Email,
    /// `[2] dNSName`.
    Dns,
    /// `[3] x400Address`.
    X400Address,
    /// `[4] directoryName`.
    Directory,
    /// `[5] ediPartyName`.
    EdiPartyName,
    /// `[6] uniformResourceIdentifier`.
    Uri,
    /// `[7] iPAddress`.
    Ip,
    /// `[8] registeredID`.
    RegisteredId,
}

impl Kind {
    /// The type of a GeneralName with this tag number and constructed bit, if it is one.
    fn of_tag(number: u32, constructed: bool) -> Option<Self> {
        Some(match (number, constructed) {
            (0, true) => Self::OtherName,
            (1, false) => Self::Email,
            (2, false) => Self::Dns,
            (3, true) => Self::X400Address,
            (4, true) => Self::Directory,
            (5, true) => Self::EdiPartyName,
            (6, false) => Self::Uri,
            (7, false) => Self::Ip,
            (8, false) => Self::RegisteredId,
            _ => return None,
        })
    }

    /// The type of a subjectAltName that [`CertNames`] keeps only as a tag number (the types it
    /// does not read, and judged types in an encoding it does not read, e.g. a constructed
    /// dNSName, which then cannot be judged).
    fn of_other(number: u32) -> Self {
        match number {
            0 => Self::OtherName,
            1 => Self::Email,
            2 => Self::Dns,
            3 => Self::X400Address,
            4 => Self::Directory,
            5 => Self::EdiPartyName,
            6 => Self::Uri,
            7 => Self::Ip,
            // 8, and tag numbers no GeneralName has.
            _ => Self::RegisteredId,
        }
    }

    /// RFC 5280's name of the type.
    fn name(self) -> &'static str {
        match self {
            Self::OtherName => "otherName",
            Self::Email => "rfc822Name",
            Self::Dns => "dNSName",
            Self::X400Address => "x400Address",
            Self::Directory => "directoryName",
            Self::EdiPartyName => "ediPartyName",
            Self::Uri => "uniformResourceIdentifier",
            Self::Ip => "iPAddress",
            Self::RegisteredId => "registeredID",
        }
    }
}

impl ChainLimits {
    /// Reads the limits of `chain` (the issuing CA first) and `root` (if not in `chain`). Never
    /// fails: what does not decode is kept as a reason to refuse every request.
    pub(crate) fn of(chain: &[CertFacts], root: &CertFacts) -> Self {
        let mut cas: Vec<CaLimits> = chain.iter().map(CaLimits::of).collect();
        if !chain.iter().any(|c| c.der == root.der) {
            cas.push(CaLimits::of(root));
        }
        let issuing_rdns = chain
            .first()
            .and_then(|c| Name::from_der(&c.subject).ok())
            .map(|n| n.iter_rdn().filter_map(|rdn| rdn.to_der().ok()).collect())
            .unwrap_or_default();
        let constrained = cas.iter().any(|ca| ca.constraints.is_some());
        Self { cas, issuing_rdns, constrained }
    }

    /// Checks `names` and, for a sub-CA (`is_ca`), its place in the path.
    fn check(&self, names: &CertNames, is_ca: bool) -> Result<(), CaConstraintError> {
        let self_issued = !names.subject_rdns.is_empty() && names.subject_rdns == self.issuing_rdns;
        self.check_path_length(is_ca && !self_issued)?;
        if !self.constrained {
            return Ok(());
        }
        let subject = SubjectView::of(names);
        // Root first, as OpenSSL walks them: the first refusal is the one named.
        for ca in self.cas.iter().rev() {
            match &ca.constraints {
                None => {}
                Some(Err(why)) => return Err(CaConstraintError::Malformed { ca: ca.name.clone(), why: why.clone() }),
                Some(Ok(nc)) => check_names(names, &subject, nc, &ca.name)?,
            }
        }
        Ok(())
    }

    /// Whether a CA certificate for another subject (a cross-certificate) may be issued under
    /// this chain: refuses when a pathLenConstraint leaves no room for one more CA.
    pub(crate) fn check_new_ca(&self) -> Result<(), CaConstraintError> {
        self.check_path_length(true)
    }

    /// Refuses when a pathLenConstraint leaves no room: `new_ca` is whether the certificate to
    /// issue counts as one more CA below the issuing CA.
    fn check_path_length(&self, new_ca: bool) -> Result<(), CaConstraintError> {
        // Non-self-issued CA certificates of the chain below the CA at hand.
        let mut in_chain = 0;
        for (position, ca) in self.cas.iter().enumerate() {
            if let Some(path_len) = ca.path_len {
                let ca_name = || ca.name.clone();
                if usize::from(path_len) < in_chain {
                    return Err(CaConstraintError::ChainPathLength { ca: ca_name(), path_len, below: in_chain });
                }
                if new_ca && usize::from(path_len) < in_chain + 1 {
                    return Err(if position == 0 {
                        CaConstraintError::IssuingPathLength { ca: ca_name(), path_len }
                    } else {
                        CaConstraintError::PathLength { ca: ca_name(), path_len, below: in_chain + 1 }
                    });
                }
            }
            if !ca.self_issued {
                in_chain += 1;
            }
        }
        Ok(())
    }
}

impl CaLimits {
    /// Reads one CA certificate.
    fn of(facts: &CertFacts) -> Self {
        let cert = match Certificate::from_der(&facts.der) {
            Ok(cert) => cert,
            Err(e) => {
                return Self {
                    name: "(a certificate that does not decode)".into(),
                    self_issued: facts.self_issued(),
                    path_len: None,
                    constraints: Some(Err(e.to_string())),
                };
            }
        };
        let tbs = cert.tbs_certificate();
        let path_len = match tbs.get_extension::<BasicConstraints>() {
            Ok(Some((_, bc))) => bc.path_len_constraint,
            _ => None,
        };
        let mut found = tbs.extensions().into_iter().flatten().filter(|e| e.extn_id == oids::NAME_CONSTRAINTS);
        let constraints = match (found.next(), found.next()) {
            (None, _) => None,
            (Some(ext), None) => Some(read_name_constraints(ext.extn_value.as_bytes())),
            (Some(_), Some(_)) => Some(Err("the certificate has more than one nameConstraints extension".into())),
        };
        Self { name: bounded_text(&tbs.subject().to_string()), self_issued: facts.self_issued(), path_len, constraints }
    }
}

/// Reads a NameConstraints value: `SEQUENCE { permittedSubtrees [0] OPTIONAL, excludedSubtrees
/// [1] OPTIONAL }`, each a SEQUENCE OF GeneralSubtree.
fn read_name_constraints(bytes: &[u8]) -> Result<NameConstraints, String> {
    let outer = Any::from_der(bytes).map_err(|e| e.to_string())?;
    if outer.tag() != Tag::Sequence {
        return Err(format!("it is a {}, not a SEQUENCE", outer.tag()));
    }
    let mut nc = NameConstraints::default();
    let mut reader = SliceReader::new(outer.value()).map_err(|e| e.to_string())?;
    let mut next = 0;
    while !reader.is_finished() {
        let part = Any::decode(&mut reader).map_err(|e| e.to_string())?;
        match part.tag() {
            Tag::ContextSpecific { constructed: true, number } if number.value() >= next => {
                match number.value() {
                    0 => nc.permitted = read_subtrees(part.value())?,
                    1 => nc.excluded = read_subtrees(part.value())?,
                    _ => return Err(format!("unexpected element {}", part.tag())),
                }
                next = number.value() + 1;
            }
            other => return Err(format!("unexpected element {other}")),
        }
    }
    Ok(nc)
}

/// Reads the GeneralSubtree SEQUENCEs in `bytes`.
fn read_subtrees(bytes: &[u8]) -> Result<Vec<Subtree>, String> {
    let mut reader = SliceReader::new(bytes).map_err(|e| e.to_string())?;
    let mut subtrees = Vec::new();
    while !reader.is_finished() {
        let subtree = Any::decode(&mut reader).map_err(|e| e.to_string())?;
        if subtree.tag() != Tag::Sequence {
            return Err("a GeneralSubtree is not a SEQUENCE".into());
        }
        let mut fields = SliceReader::new(subtree.value()).map_err(|e| e.to_string())?;
        let base = Any::decode(&mut fields).map_err(|e| e.to_string())?;
        let mut bounded = false;
        let mut next = 0;
        while !fields.is_finished() {
            let bound = Any::decode(&mut fields).map_err(|e| e.to_string())?;
            match bound.tag() {
                Tag::ContextSpecific { constructed: false, number } if number.value() >= next => {
                    let value = bound.value();
                    if value.is_empty() {
                        return Err("a GeneralSubtree's minimum or maximum is an empty INTEGER".into());
                    }
                    match number.value() {
                        // minimum: only 0 is allowed.
                        0 => bounded |= value.iter().any(|b| *b != 0),
                        // maximum: never allowed.
                        1 => bounded = true,
                        _ => return Err(format!("unexpected GeneralSubtree element {}", bound.tag())),
                    }
                    next = number.value() + 1;
                }
                other => return Err(format!("unexpected GeneralSubtree element {other}")),
            }
        }
        subtrees.push(read_base(&base, bounded)?);
    }
    Ok(subtrees)
}

/// Reads a GeneralSubtree's base GeneralName.
fn read_base(base: &Any, bounded: bool) -> Result<Subtree, String> {
    let kind = match base.tag() {
        Tag::ContextSpecific { constructed, number } => Kind::of_tag(number.value(), constructed),
        _ => None,
    }
    .ok_or_else(|| format!("a GeneralSubtree's base is a {}, not a GeneralName", base.tag()))?;
    let value = base.value();
    let (value, rdns, shown) = match kind {
        Kind::Dns | Kind::Email | Kind::Uri => (value.to_vec(), Vec::new(), quoted(value)),
        Kind::Ip => (value.to_vec(), Vec::new(), show_ip_range(value)),
        Kind::Directory => {
            let name = Name::from_der(value).map_err(|e| format!("a directoryName subtree does not decode: {e}"))?;
            let rdns = name
                .iter_rdn()
                .map(|rdn| rdn.to_der().map_err(|e| format!("a directoryName subtree does not encode: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            (Vec::new(), rdns, format!("\"{}\"", bounded_text(&name.to_string())))
        }
        other => (Vec::new(), Vec::new(), format!("(an {})", other.name())),
    };
    Ok(Subtree { kind, value, rdns, shown, bounded })
}

/// What the subject holds that the checks read beyond [`CertNames`]: its attribute count and
/// its emailAddress attributes with their string type.
struct SubjectView {
    /// Attributes in the subject (OpenSSL's `X509_NAME_entry_count`).
    entries: usize,
    /// emailAddress attributes: their content and ASN.1 type.
    emails: Vec<(Vec<u8>, Tag)>,
}

impl SubjectView {
    /// Reads the subject's RDNs (already decoded once by [`CertNames::of`], so they decode).
    fn of(names: &CertNames) -> Self {
        let mut view = Self { entries: 0, emails: Vec::new() };
        for rdn in &names.subject_rdns {
            let Ok(rdn) = RelativeDistinguishedName::from_der(rdn) else {
                // Counted as one attribute; nothing to read in it.
                view.entries += 1;
                continue;
            };
            for atv in rdn.iter() {
                view.entries += 1;
                if atv.oid == EMAIL_ADDRESS {
                    view.emails.push((atv.value.value().to_vec(), atv.value.tag()));
                }
            }
        }
        view
    }
}

/// One name of the certificate, as judged against subtrees of its type.
#[derive(Clone, Copy, Debug)]
enum Candidate<'a> {
    /// A dNSName, or the subject commonName taken as one (`cn`).
    Dns {
        /// The name.
        name: &'a [u8],
        /// Whether it is the subject commonName.
        cn: bool,
    },
    /// An rfc822Name, or a subject emailAddress (`subject`).
    Email {
        /// The address.
        address: &'a [u8],
        /// Whether it is a subject emailAddress.
        subject: bool,
    },
    /// A uniformResourceIdentifier.
    Uri(&'a [u8]),
    /// An iPAddress.
    Ip(IpAddr),
    /// The subject (`subject`) or a directoryName, as RDN DERs.
    Directory {
        /// The RDNs.
        rdns: &'a [Vec<u8>],
        /// Whether it is the subject.
        subject: bool,
    },
    /// A subjectAltName of another type.
    Other(Kind),
}

/// Why a name could not be compared with a subtree.
enum Unmatchable {
    /// The name's own form.
    Name(&'static str),
    /// The subtree's form.
    Subtree(&'static str),
}

/// How a name relates to an excluded subtree.
#[derive(Debug, PartialEq, Eq)]
enum Overlap {
    /// Outside it.
    None,
    /// Inside it.
    Inside,
    /// A wildcard, some of whose names are inside it.
    Wildcard,
}

impl Candidate<'_> {
    /// The subtree type that judges it.
    fn kind(&self) -> Kind {
        match self {
            Self::Dns { .. } => Kind::Dns,
            Self::Email { .. } => Kind::Email,
            Self::Uri(_) => Kind::Uri,
            Self::Ip(_) => Kind::Ip,
            Self::Directory { .. } => Kind::Directory,
            Self::Other(kind) => *kind,
        }
    }

    /// The name, for a person.
    fn describe(&self) -> String {
        match self {
            Self::Dns { name, cn: false } => format!("dNSName {}", quoted(name)),
            Self::Dns { name, cn: true } => format!(
                "the subject commonName {} (judged as a dNSName, as OpenSSL does when the certificate has no dNSName)",
                quoted(name)
            ),
            Self::Email { address, subject: false } => format!("rfc822Name {}", quoted(address)),
            Self::Email { address, subject: true } => format!("the subject emailAddress {}", quoted(address)),
            Self::Uri(uri) => format!("uniformResourceIdentifier {}", quoted(uri)),
            Self::Ip(ip) => format!("iPAddress {ip}"),
            Self::Directory { rdns, subject: true } => format!("the subject \"{}\"", show_rdns(rdns)),
            Self::Directory { rdns, subject: false } => format!("directoryName \"{}\"", show_rdns(rdns)),
            Self::Other(kind) => format!("a subjectAltName of type {}", kind.name()),
        }
    }

    /// Whether it is inside `subtree` (of its type), all of it for a wildcard.
    fn inside(&self, subtree: &Subtree) -> Result<bool, Unmatchable> {
        match self {
            Self::Dns { name, .. } if is_wildcard(name) => Ok(wildcard_inside(name, &subtree.value)),
            Self::Dns { name, .. } => Ok(dns_in_subtree(name, &subtree.value)),
            Self::Email { address, .. } => email_in_subtree(address, &subtree.value),
            Self::Uri(uri) => {
                let host = uri_host(uri).ok_or(Unmatchable::Name(
                    "OpenSSL finds no host in it (a host follows \"scheme://\" and ends at the next ':' or '/')",
                ))?;
                Ok(uri_host_in_subtree(host, &subtree.value))
            }
            Self::Ip(ip) => match ip {
                IpAddr::V4(v4) => ip_in_subtree(&v4.octets(), &subtree.value),
                IpAddr::V6(v6) => ip_in_subtree(&v6.octets(), &subtree.value),
            },
            Self::Directory { rdns, .. } => Ok(dn_in_subtree(rdns, &subtree.rdns)),
            Self::Other(_) => Err(Unmatchable::Name("no validator compares names of this type with subtrees")),
        }
    }

    /// How it relates to the excluded `subtree` (of its type).
    fn overlap(&self, subtree: &Subtree) -> Result<Overlap, Unmatchable> {
        if let Self::Dns { name, .. } = self {
            return Ok(if dns_in_subtree(name, &subtree.value) {
                Overlap::Inside
            } else if is_wildcard(name) && wildcard_may_match(name, &subtree.value) {
                Overlap::Wildcard
            } else {
                Overlap::None
            });
        }
        Ok(if self.inside(subtree)? { Overlap::Inside } else { Overlap::None })
    }
}

/// Checks every name of the certificate against one CA's constraints.
fn check_names(
    names: &CertNames,
    subject: &SubjectView,
    nc: &NameConstraints,
    ca: &str,
) -> Result<(), CaConstraintError> {
    let san_count = names.dns.len()
        + names.ips.len()
        + names.emails.len()
        + names.uris.len()
        + names.directory_names.len()
        + names.other_types.len();
    let name_count = subject.entries + san_count;
    let constraint_count = nc.permitted.len() + nc.excluded.len();
    if name_count > 0 && constraint_count > NAME_CHECK_MAX / name_count {
        return Err(CaConstraintError::TooMany { names: name_count, constraints: constraint_count, ca: ca.into() });
    }
    if !names.subject_rdns.is_empty() {
        judge(Candidate::Directory { rdns: &names.subject_rdns, subject: true }, nc, ca)?;
        for (address, tag) in &subject.emails {
            let candidate = Candidate::Email { address, subject: true };
            if *tag != Tag::Ia5String {
                return Err(CaConstraintError::Unjudgeable {
                    name: candidate.describe(),
                    kind: Kind::Email.name(),
                    ca: ca.into(),
                    why: format!("it is a {tag}, and OpenSSL judges only an IA5String emailAddress"),
                });
            }
            judge(candidate, nc, ca)?;
        }
    }
    for name in &names.dns {
        judge(Candidate::Dns { name: name.as_bytes(), cn: false }, nc, ca)?;
    }
    for ip in &names.ips {
        judge(Candidate::Ip(*ip), nc, ca)?;
    }
    for address in &names.emails {
        judge(Candidate::Email { address: address.as_bytes(), subject: false }, nc, ca)?;
    }
    for uri in &names.uris {
        judge(Candidate::Uri(uri.as_bytes()), nc, ca)?;
    }
    for rdns in &names.directory_names {
        judge(Candidate::Directory { rdns, subject: false }, nc, ca)?;
    }
    for number in &names.other_types {
        judge(Candidate::Other(Kind::of_other(*number)), nc, ca)?;
    }
    if names.dns.is_empty()
        && let Some(cn) = &names.common_name
    {
        match common_name_as_dns(cn) {
            Ok(Some(host)) => judge(Candidate::Dns { name: host.as_bytes(), cn: true }, nc, ca)?,
            Ok(None) => {}
            Err(why) => {
                return Err(CaConstraintError::Unjudgeable {
                    name: format!("the subject commonName {}", quoted(cn.as_bytes())),
                    kind: Kind::Dns.name(),
                    ca: ca.into(),
                    why: why.into(),
                });
            }
        }
    }
    Ok(())
}

/// Judges one name against one CA's subtrees of its type.
fn judge(candidate: Candidate<'_>, nc: &NameConstraints, ca: &str) -> Result<(), CaConstraintError> {
    let kind = candidate.kind();
    let unjudgeable = |why: &str, kind: Kind| CaConstraintError::Unjudgeable {
        name: candidate.describe(),
        kind: kind.name(),
        ca: ca.into(),
        why: why.into(),
    };
    if kind == Kind::OtherName && nc.permitted.iter().chain(&nc.excluded).any(|s| s.kind == Kind::Email) {
        return Err(unjudgeable(
            "an otherName may be an SmtpUTF8Mailbox, which OpenSSL judges against rfc822Name subtrees, \
             and Ferrum does not read otherNames",
            Kind::Email,
        ));
    }
    let failed = |why: Unmatchable, subtree: &Subtree| match why {
        Unmatchable::Name(why) => unjudgeable(why, kind),
        Unmatchable::Subtree(why) => {
            CaConstraintError::BadSubtree { ca: ca.into(), kind: kind.name(), subtree: subtree.shown.clone(), why }
        }
    };
    let bad_bounds = |subtree: &Subtree| CaConstraintError::BadSubtree {
        ca: ca.into(),
        kind: kind.name(),
        subtree: subtree.shown.clone(),
        why: "with a minimum or maximum (which RFC 5280 forbids and OpenSSL refuses)",
    };
    let mut permitted = nc.permitted.iter().filter(|s| s.kind == kind).peekable();
    if permitted.peek().is_some() {
        if let Some(subtree) = nc.permitted.iter().find(|s| s.kind == kind && s.bounded) {
            return Err(bad_bounds(subtree));
        }
        let mut inside = false;
        for subtree in permitted {
            if candidate.inside(subtree).map_err(|why| failed(why, subtree))? {
                inside = true;
                break;
            }
        }
        if !inside {
            return Err(CaConstraintError::NotPermitted {
                name: candidate.describe(),
                kind: kind.name(),
                subtrees: list(nc.permitted.iter().filter(|s| s.kind == kind)),
                ca: ca.into(),
            });
        }
    }
    for subtree in nc.excluded.iter().filter(|s| s.kind == kind) {
        if subtree.bounded {
            return Err(bad_bounds(subtree));
        }
        let error = match candidate.overlap(subtree).map_err(|why| failed(why, subtree))? {
            Overlap::None => continue,
            Overlap::Inside => CaConstraintError::Excluded {
                name: candidate.describe(),
                kind: kind.name(),
                subtree: subtree.shown.clone(),
                ca: ca.into(),
            },
            Overlap::Wildcard => CaConstraintError::WildcardExcluded {
                name: candidate.describe(),
                kind: kind.name(),
                subtree: subtree.shown.clone(),
                ca: ca.into(),
            },
        };
        return Err(error);
    }
    Ok(())
}

/// OpenSSL's dNSName rule: `base` is a case-insensitive suffix of `name`, and either they are
/// equal in length, or `base` starts with `.`, or the character before the suffix is `.`. An
/// empty `base` matches every name.
fn dns_in_subtree(name: &[u8], base: &[u8]) -> bool {
    if base.is_empty() {
        return true;
    }
    let Some(start) = name.len().checked_sub(base.len()) else {
        return false;
    };
    if start > 0 && base[0] != b'.' && name[start - 1] != b'.' {
        return false;
    }
    name[start..].eq_ignore_ascii_case(base)
}

/// Whether a dNSName holds a wildcard.
fn is_wildcard(name: &[u8]) -> bool {
    name.contains(&b'*')
}

/// Whether every name the wildcard `name` could match is inside `base`: OpenSSL's rule, and the
/// part of `name` compared with `base` holds no `*`.
fn wildcard_inside(name: &[u8], base: &[u8]) -> bool {
    dns_in_subtree(name, base) && !name[name.len().saturating_sub(base.len())..].contains(&b'*')
}

/// Whether some name the wildcard `name` could match is inside `base`: label by label from the
/// right, each of `base`'s labels could be matched by the label of `name` in its place (a `*`
/// standing for any run of characters within a label), and `name` has enough labels (one more
/// than `base`'s when `base` starts with `.`).
fn wildcard_may_match(name: &[u8], base: &[u8]) -> bool {
    if base.is_empty() {
        return true;
    }
    let (strict, base) = match base.strip_prefix(b".") {
        Some(rest) => (true, rest),
        None => (false, base),
    };
    let name_labels = name.split(|c| *c == b'.').count();
    let base_labels = base.split(|c| *c == b'.').count();
    if name_labels < base_labels + usize::from(strict) {
        return false;
    }
    name.rsplit(|c| *c == b'.').zip(base.rsplit(|c| *c == b'.')).all(|(pattern, label)| label_may_match(pattern, label))
}

/// Whether the label `pattern` (whose `*`s stand for any run of characters, none included)
/// could match `label`, ignoring ASCII case.
fn label_may_match(pattern: &[u8], label: &[u8]) -> bool {
    let (mut p, mut l) = (0, 0);
    // The last `*` seen and the position in `label` it is tried up to.
    let mut star: Option<(usize, usize)> = None;
    while l < label.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, l));
                p += 1;
            }
            Some(c) if c.eq_ignore_ascii_case(&label[l]) => {
                p += 1;
                l += 1;
            }
            _ => match star {
                Some((star_p, star_l)) => {
                    p = star_p + 1;
                    l = star_l + 1;
                    star = Some((star_p, star_l + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// The subject commonName as OpenSSL judges it against dNSName subtrees: trailing NULs dropped,
/// then a host name only if it is made of letters, digits and `_`, with `-` and `.` allowed
/// inside (not first or last), no `.` next to a `.` or a `-`, and at least one `.`. `Ok(None)`:
/// not a host name, not judged. `Err`: an embedded NUL, which OpenSSL refuses.
fn common_name_as_dns(cn: &str) -> Result<Option<&str>, &'static str> {
    let cn = cn.trim_end_matches('\0');
    if cn.contains('\0') {
        return Err("it holds a NUL character, which OpenSSL refuses in a commonName it may judge as a host name");
    }
    let bytes = cn.as_bytes();
    let mut host = false;
    for (i, &c) in bytes.iter().enumerate() {
        if c.is_ascii_alphanumeric() || c == b'_' {
            continue;
        }
        let inside = i > 0 && i + 1 < bytes.len();
        if inside && c == b'-' {
            continue;
        }
        if inside && c == b'.' && bytes[i + 1] != b'.' && bytes[i + 1] != b'-' && bytes[i - 1] != b'-' {
            host = true;
            continue;
        }
        return Ok(None);
    }
    Ok(host.then_some(cn))
}

/// OpenSSL's rfc822Name rule. A `base` starting with `.` (and without `@`) matches an address
/// that ends with it and is longer; otherwise a `base` with a local part (`user@host`) needs the
/// same local part, byte for byte, and then the host after the address's last `@` must equal
/// the base's host (the text after its last `@`, or all of it) ignoring ASCII case.
fn email_in_subtree(address: &[u8], base: &[u8]) -> Result<bool, Unmatchable> {
    let at = address.iter().rposition(|c| *c == b'@').ok_or(Unmatchable::Name("it has no '@'"))?;
    let base_at = base.iter().rposition(|c| *c == b'@');
    if base_at.is_none() && base.first() == Some(&b'.') {
        return Ok(address.len() > base.len() && address[address.len() - base.len()..].eq_ignore_ascii_case(base));
    }
    let mut host = base;
    if let Some(base_at) = base_at {
        if base_at > 0 {
            let (local, base_local) = (&address[..at], &base[..base_at]);
            if local.len() != base_local.len() {
                return Ok(false);
            }
            if local.contains(&0) || base_local.contains(&0) {
                return Err(Unmatchable::Name("its local part or the subtree's holds a NUL character"));
            }
            if local != base_local {
                return Ok(false);
            }
        }
        host = &base[base_at + 1..];
    }
    Ok(address[at + 1..].eq_ignore_ascii_case(host))
}

/// The host of a URI as OpenSSL 3.0 reads it: after the first `:`, which must be followed by
/// `//`, up to the next `:`, else the next `/`, else the end. `None` if there is none.
fn uri_host(uri: &[u8]) -> Option<&[u8]> {
    let colon = uri.iter().position(|c| *c == b':')?;
    let rest = uri[colon + 1..].strip_prefix(b"//")?;
    let end =
        rest.iter().position(|c| *c == b':').or_else(|| rest.iter().position(|c| *c == b'/')).unwrap_or(rest.len());
    let host = &rest[..end];
    (!host.is_empty()).then_some(host)
}

/// OpenSSL's URI host rule: a `base` starting with `.` matches a longer host ending with it;
/// any other `base` must equal the host; both ignoring ASCII case.
fn uri_host_in_subtree(host: &[u8], base: &[u8]) -> bool {
    if base.first() == Some(&b'.') {
        return host.len() > base.len() && host[host.len() - base.len()..].eq_ignore_ascii_case(base);
    }
    host.eq_ignore_ascii_case(base)
}

/// OpenSSL's iPAddress rule: `base` is an address and a mask (8 or 32 bytes); `ip` (4 or 16
/// bytes) matches when it is of the same family and equal to the base under the mask.
fn ip_in_subtree(ip: &[u8], base: &[u8]) -> Result<bool, Unmatchable> {
    if base.len() != 8 && base.len() != 32 {
        return Err(Unmatchable::Subtree("that is neither 8 nor 32 bytes (an address and its mask)"));
    }
    if ip.len() * 2 != base.len() {
        return Ok(false);
    }
    let (address, mask) = base.split_at(ip.len());
    Ok(ip.iter().zip(address).zip(mask).all(|((i, a), m)| i & m == a & m))
}

/// Whether the RDNs of `base` are the first RDNs of `rdns`, each compared as DER byte for byte.
fn dn_in_subtree(rdns: &[Vec<u8>], base: &[Vec<u8>]) -> bool {
    rdns.starts_with(base)
}

/// `text` cut to [`MAX_QUOTED_CHARS`] characters.
fn bounded_text(text: &str) -> String {
    if text.chars().count() <= MAX_QUOTED_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_QUOTED_CHARS).collect();
    cut.push('…');
    cut
}

/// Bytes as a quoted, escaped, bounded string.
fn quoted(bytes: &[u8]) -> String {
    format!("{:?}", bounded_text(&String::from_utf8_lossy(bytes)))
}

/// An iPAddress subtree as `address/prefix` (or `address/mask` when the mask has holes).
fn show_ip_range(value: &[u8]) -> String {
    let address = |bytes: &[u8]| match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).map(IpAddr::from).ok(),
        16 => <[u8; 16]>::try_from(bytes).map(IpAddr::from).ok(),
        _ => None,
    };
    let (base, mask) = value.split_at(value.len() / 2);
    let (Some(base), Some(mask_address)) = (address(base), address(mask)) else {
        return format!("(an iPAddress range of {} bytes)", value.len());
    };
    let ones = mask.iter().map(|b| b.count_ones()).sum::<u32>();
    let contiguous = mask.iter().enumerate().all(|(i, b)| {
        let bits = ones.saturating_sub(8 * i as u32).min(8);
        *b == if bits == 0 { 0 } else { 0xffu8 << (8 - bits) }
    });
    if contiguous { format!("{base}/{ones}") } else { format!("{base}/{mask_address}") }
}

/// RDN DERs as an RFC 4514 string (last RDN first), bounded.
fn show_rdns(rdns: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match RelativeDistinguishedName::from_der(rdn) {
            Ok(rdn) => {
                let _ = write!(out, "{rdn}");
            }
            Err(_) => out.push_str("(an RDN that does not decode)"),
        }
        if out.len() > 4 * MAX_QUOTED_CHARS {
            break;
        }
    }
    bounded_text(&out)
}

/// Subtrees as `[a, b, … and N more]`, at most [`MAX_LISTED`] shown.
fn list<'a>(subtrees: impl Iterator<Item = &'a Subtree>) -> String {
    let mut out = String::from("[");
    let mut more = 0;
    for (i, subtree) in subtrees.enumerate() {
        if i >= MAX_LISTED {
            more += 1;
            continue;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&subtree.shown);
    }
    if more > 0 {
        let _ = write!(out, ", … and {more} more");
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rcgen::{
        BasicConstraints as Bc, CertificateParams, CidrSubnet, CustomExtension, DistinguishedName, DnType, DnValue,
        GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints as Nc, SanType,
    };

    use super::*;
    use crate::x509::template::CertificateTemplate;
    use crate::x509::{RequestedProfile, certificate_template, parse_csr};

    #[test]
    fn dns_names_follow_openssl() {
        let table: &[(&str, &str, bool)] = &[
            ("example.com", "example.com", true),
            ("db.example.com", "example.com", true),
            ("a.b.example.com", "example.com", true),
            ("DB.Example.COM", "example.com", true),
            ("db.example.com", "EXAMPLE.com", true),
            ("badexample.com", "example.com", false),
            ("example.com.evil", "example.com", false),
            ("com", "example.com", false),
            ("example.com", ".example.com", false),
            ("db.example.com", ".example.com", true),
            // OpenSSL compares text: with a leading '.', any suffix counts.
            ("db.badexample.com", ".example.com", false),
            ("anything.at.all", "", true),
            ("", "", true),
            ("", "example.com", false),
            ("*.example.com", "example.com", true),
            ("*.example.com", "internal.example.com", false),
        ];
        for (name, base, expected) in table {
            assert_eq!(dns_in_subtree(name.as_bytes(), base.as_bytes()), *expected, "{name:?} in {base:?}");
        }
    }

    #[test]
    fn wildcards_inside_and_overlapping() {
        // (name, subtree, every covered name inside, some covered name inside)
        let table: &[(&str, &str, bool, bool)] = &[
            ("*.example.com", "example.com", true, true),
            ("*.example.com", ".example.com", true, true),
            ("*.com", "example.com", false, true),
            ("*.com", ".example.com", false, false),
            ("*.example.com", "internal.example.com", false, true),
            ("*.example.com", "a.internal.example.com", false, false),
            ("*.example.com", ".internal.example.com", false, false),
            ("*.internal.example.com", "internal.example.com", true, true),
            ("*.public.example.com", "internal.example.com", false, false),
            ("int*.example.com", "internal.example.com", false, true),
            ("*nal.example.com", "internal.example.com", false, true),
            ("ext*.example.com", "internal.example.com", false, false),
            ("i*l.example.com", "internal.example.com", false, true),
            ("foo.*.example.com", "bar.example.com", false, true),
            ("foo.*.example.com", "example.com", true, true),
            ("*.example.org", "example.com", false, false),
            ("*", "example.com", false, false),
            ("*", "com", false, true),
            ("*.example.com", "", true, true),
            ("*.EXAMPLE.com", "Internal.Example.Com", false, true),
        ];
        for (name, base, inside, overlaps) in table {
            let (n, b) = (name.as_bytes(), base.as_bytes());
            assert_eq!(wildcard_inside(n, b), *inside, "{name:?} all inside {base:?}");
            assert_eq!(dns_in_subtree(n, b) || wildcard_may_match(n, b), *overlaps, "{name:?} overlaps {base:?}");
        }
    }

    #[test]
    fn label_globs() {
        let table: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("*", "", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ba", false),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*c", "abbbc", true),
            ("a*c", "abcd", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("abc", "ABC", true),
            ("abc", "abd", false),
            ("**", "x", true),
        ];
        for (pattern, label, expected) in table {
            assert_eq!(label_may_match(pattern.as_bytes(), label.as_bytes()), *expected, "{pattern:?} ~ {label:?}");
        }
    }

    #[test]
    fn common_names_as_host_names() {
        let table: &[(&str, Result<Option<&str>, ()>)] = &[
            ("db.example.com", Ok(Some("db.example.com"))),
            ("my_host.example.com", Ok(Some("my_host.example.com"))),
            ("a-b.example.com", Ok(Some("a-b.example.com"))),
            ("db.example.com\0\0", Ok(Some("db.example.com"))),
            ("localhost", Ok(None)),
            ("Example Root CA", Ok(None)),
            ("*.example.com", Ok(None)),
            (".example.com", Ok(None)),
            ("example.com.", Ok(None)),
            ("-a.example.com", Ok(None)),
            ("a-.example.com", Ok(None)),
            ("a.-example.com", Ok(None)),
            ("a..example.com", Ok(None)),
            ("a/b.example.com", Ok(None)),
            ("dé.example.com", Ok(None)),
            ("", Ok(None)),
            ("db\0.example.com", Err(())),
        ];
        for (cn, expected) in table {
            assert_eq!(common_name_as_dns(cn).map_err(|_| ()), *expected, "{cn:?}");
        }
    }

    #[test]
    fn emails_follow_openssl() {
        // None: cannot be judged.
        let table: &[(&str, &str, Option<bool>)] = &[
            ("admin@example.com", "admin@example.com", Some(true)),
            ("admin@EXAMPLE.com", "admin@example.com", Some(true)),
            ("Admin@example.com", "admin@example.com", Some(false)),
            ("other@example.com", "admin@example.com", Some(false)),
            ("admin@mail.example.com", "admin@example.com", Some(false)),
            ("x@example.com", "example.com", Some(true)),
            ("x@Example.Com", "example.com", Some(true)),
            ("x@mail.example.com", "example.com", Some(false)),
            ("x@example.com", "@example.com", Some(true)),
            ("x@mail.example.com", ".example.com", Some(true)),
            ("x@example.com", ".example.com", Some(false)),
            ("x@badexample.com", ".example.com", Some(false)),
            ("a@b@example.com", "example.com", Some(true)),
            ("no-at-sign", "example.com", None),
            ("x@", "", Some(true)),
            ("x@example.com", "", Some(false)),
        ];
        for (address, base, expected) in table {
            let got = email_in_subtree(address.as_bytes(), base.as_bytes()).ok();
            assert_eq!(got, *expected, "{address:?} in {base:?}");
        }
    }

    #[test]
    fn uri_hosts_follow_openssl_3_0() {
        let table: &[(&str, Option<&str>)] = &[
            ("https://example.com/path", Some("example.com")),
            ("https://example.com", Some("example.com")),
            ("https://example.com:8443/x", Some("example.com")),
            ("spiffe://cluster.local/ns/a/sa/b", Some("cluster.local")),
            // OpenSSL 3.0 stops at the first ':' after "//", even in the path...
            ("https://example.com/a:b", Some("example.com/a")),
            // ...keeps userinfo in the host...
            ("https://user@example.com/", Some("user@example.com")),
            // ...and cuts an IPv6 literal at its first ':'.
            ("https://[2001:db8::1]/", Some("[2001")),
            ("https://example.com?q=1", Some("example.com?q=1")),
            ("urn:uuid:0f6b", None),
            ("mailto:x@example.com", None),
            ("https:///path", None),
            ("no-scheme", None),
        ];
        for (uri, expected) in table {
            assert_eq!(uri_host(uri.as_bytes()), expected.map(str::as_bytes), "{uri:?}");
        }
        let subtrees: &[(&str, &str, bool)] = &[
            ("example.com", "example.com", true),
            ("EXAMPLE.com", "example.com", true),
            ("db.example.com", "example.com", false),
            ("db.example.com", ".example.com", true),
            ("example.com", ".example.com", false),
            ("example.com", "", false),
        ];
        for (host, base, expected) in subtrees {
            assert_eq!(uri_host_in_subtree(host.as_bytes(), base.as_bytes()), *expected, "{host:?} in {base:?}");
        }
    }

    #[test]
    fn ip_ranges_follow_openssl() {
        let v4 = |s: &str| s.parse::<std::net::Ipv4Addr>().unwrap().octets().to_vec();
        let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets().to_vec();
        let range = |a: Vec<u8>, m: Vec<u8>| [a, m].concat();
        let table: Vec<(Vec<u8>, Vec<u8>, Option<bool>)> = vec![
            (v4("10.1.2.3"), range(v4("10.0.0.0"), v4("255.0.0.0")), Some(true)),
            (v4("11.1.2.3"), range(v4("10.0.0.0"), v4("255.0.0.0")), Some(false)),
            (v4("10.1.2.3"), range(v4("10.1.2.3"), v4("255.255.255.255")), Some(true)),
            (v4("10.1.2.4"), range(v4("10.1.2.3"), v4("255.255.255.255")), Some(false)),
            // A base with host bits set is compared under its mask.
            (v4("10.9.9.9"), range(v4("10.1.2.3"), v4("255.0.0.0")), Some(true)),
            (v4("1.2.3.4"), range(v4("0.0.0.0"), v4("0.0.0.0")), Some(true)),
            // Holes in the mask: compared as given.
            (v4("10.7.2.7"), range(v4("10.0.2.0"), v4("255.0.255.0")), Some(true)),
            (v6("2001:db8::1"), range(v6("2001:db8::"), v6("ffff:ffff::")), Some(true)),
            (v6("2001:db9::1"), range(v6("2001:db8::"), v6("ffff:ffff::")), Some(false)),
            (v6("::ffff:10.0.0.1"), range(v4("10.0.0.0"), v4("255.0.0.0")), Some(false)),
            (v4("10.0.0.1"), range(v6("::"), v6("::")), Some(false)),
            (v4("10.0.0.1"), vec![10, 0, 0, 0, 255], None),
        ];
        for (ip, base, expected) in table {
            assert_eq!(ip_in_subtree(&ip, &base).ok(), expected, "{ip:?} in {base:?}");
        }
        assert_eq!(show_ip_range(&range(v4("10.0.0.0"), v4("255.0.0.0"))), "10.0.0.0/8");
        assert_eq!(show_ip_range(&range(v4("10.0.2.0"), v4("255.0.255.0"))), "10.0.2.0/255.0.255.0");
        assert_eq!(show_ip_range(&range(v6("2001:db8::"), v6("ffff:ffff::"))), "2001:db8::/32");
        assert_eq!(show_ip_range(&[1, 2, 3]), "(an iPAddress range of 3 bytes)");
    }

    #[test]
    fn directory_names_are_rdn_prefixes() {
        let rdn = |s: &str| Name::from_str_rdns(s);
        let table: &[(&str, &str, bool)] = &[
            ("O=Example,CN=db", "O=Example", true),
            ("O=Example,OU=Team,CN=db", "O=Example,OU=Team", true),
            ("O=Example,CN=db", "O=Example,OU=Team", false),
            ("O=Other,CN=db", "O=Example", false),
            ("O=Example", "O=Example", true),
            ("O=Example", "O=Example,CN=db", false),
            ("O=Example,CN=db", "", true),
            // Byte for byte: case matters here (OpenSSL's canonical form would fold it).
            ("O=example,CN=db", "O=Example", false),
        ];
        for (name, base, expected) in table {
            assert_eq!(dn_in_subtree(&rdn(name), &rdn(base)), *expected, "{name:?} under {base:?}");
        }
    }

    /// Builds RDN DERs from `O=..,CN=..` (first RDN first) for the tests.
    trait FromStrRdns {
        fn from_str_rdns(s: &str) -> Vec<Vec<u8>>;
    }

    impl FromStrRdns for Name {
        fn from_str_rdns(s: &str) -> Vec<Vec<u8>> {
            if s.is_empty() {
                return Vec::new();
            }
            // RFC 4514 strings list the last RDN first.
            let reversed: Vec<&str> = s.split(',').rev().collect();
            let name: Name = reversed.join(",").parse().unwrap();
            name.iter_rdn().map(|rdn| rdn.to_der().unwrap()).collect()
        }
    }

    /// DER of one TLV with a short length.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        assert!(content.len() < 0x80);
        [&[tag, content.len() as u8][..], content].concat()
    }

    #[test]
    fn reads_name_constraints_and_refuses_malformed_ones() {
        let dns = |s: &str| tlv(0x30, &tlv(0x82, s.as_bytes()));
        let nc = tlv(0x30, &[tlv(0xa0, &dns("example.com")), tlv(0xa1, &dns("internal.example.com"))].concat());
        let read = read_name_constraints(&nc).unwrap();
        assert_eq!(read.permitted.len(), 1);
        assert_eq!(read.permitted[0].kind, Kind::Dns);
        assert_eq!(read.permitted[0].shown, "\"example.com\"");
        assert_eq!(read.excluded[0].value, b"internal.example.com");
        assert!(!read.permitted[0].bounded);

        let with_bounds =
            |bounds: &[u8]| tlv(0x30, &tlv(0xa0, &tlv(0x30, &[tlv(0x82, b"example.com"), bounds.to_vec()].concat())));
        assert!(!read_name_constraints(&with_bounds(&[0x80, 1, 0])).unwrap().permitted[0].bounded, "minimum 0");
        assert!(read_name_constraints(&with_bounds(&[0x80, 1, 1])).unwrap().permitted[0].bounded, "minimum 1");
        assert!(read_name_constraints(&with_bounds(&[0x81, 1, 5])).unwrap().permitted[0].bounded, "maximum");

        let malformed: &[(&str, Vec<u8>)] = &[
            ("not DER", vec![0x30, 5, 1]),
            ("not a SEQUENCE", tlv(0x31, &[])),
            ("excluded before permitted", tlv(0x30, &[tlv(0xa1, &dns("a")), tlv(0xa0, &dns("b"))].concat())),
            ("twice permitted", tlv(0x30, &[tlv(0xa0, &dns("a")), tlv(0xa0, &dns("b"))].concat())),
            ("unknown element", tlv(0x30, &tlv(0xa2, &dns("a")))),
            ("subtree not a SEQUENCE", tlv(0x30, &tlv(0xa0, &tlv(0x82, b"a")))),
            ("base not a GeneralName", tlv(0x30, &tlv(0xa0, &tlv(0x30, &tlv(0x04, b"a"))))),
            ("dNSName constructed", tlv(0x30, &tlv(0xa0, &tlv(0x30, &tlv(0xa2, b""))))),
            ("bad directoryName", tlv(0x30, &tlv(0xa0, &tlv(0x30, &tlv(0xa4, &tlv(0x04, b"x")))))),
            ("empty minimum", with_bounds(&[0x80, 0])),
            ("trailing data", [nc.clone(), vec![0]].concat()),
        ];
        for (why, bytes) in malformed {
            assert!(read_name_constraints(bytes).is_err(), "{why}");
        }
        // Empty lists and an empty extension are read (OpenSSL reads them too).
        assert!(read_name_constraints(&tlv(0x30, &[])).is_ok());
        assert!(read_name_constraints(&tlv(0x30, &tlv(0xa0, &[]))).is_ok());
    }

    /// A CA built with rcgen, with what is needed to sign below it.
    struct TestCa {
        params: CertificateParams,
        key: KeyPair,
        pem: String,
    }

    impl TestCa {
        /// A CA named `cn` under `parent` (self-signed without one).
        fn new(cn: &str, parent: Option<&TestCa>, nc: Option<Nc>, path_len: Option<u8>) -> Self {
            Self::with(cn, parent, nc, path_len, Vec::new())
        }

        /// As [`TestCa::new`], with extra extensions.
        fn with(
            cn: &str,
            parent: Option<&TestCa>,
            nc: Option<Nc>,
            path_len: Option<u8>,
            extensions: Vec<CustomExtension>,
        ) -> Self {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.is_ca = IsCa::Ca(path_len.map_or(Bc::Unconstrained, Bc::Constrained));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.name_constraints = nc;
            params.custom_extensions = extensions;
            let key = KeyPair::generate().unwrap();
            let cert = match parent {
                Some(parent) => params.signed_by(&key, &Issuer::from_params(&parent.params, &parent.key)).unwrap(),
                None => params.self_signed(&key).unwrap(),
            };
            Self { pem: cert.pem(), params, key }
        }
    }

    /// `tls.crt` = `chain` (the issuing CA first), `ca.crt` = `root`.
    fn bundle(chain: &[&TestCa], root: &TestCa) -> CaBundle {
        let tls: String = chain.iter().map(|c| c.pem.as_str()).collect();
        CaBundle::parse(tls.as_bytes(), Some(root.pem.as_bytes())).unwrap()
    }

    /// The template of a request with `params`.
    fn template(params: &CertificateParams, is_ca: bool) -> CertificateTemplate {
        let key = KeyPair::generate().unwrap();
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        let csr = parse_csr(pem.as_bytes()).unwrap();
        certificate_template(&RequestedProfile { is_ca, ..RequestedProfile::default() }, &csr).unwrap()
    }

    /// The names of a request with `params`.
    fn names(params: &CertificateParams) -> CertNames {
        CertNames::of(&template(params, false)).unwrap()
    }

    /// Request parameters: subject `cn` (none if empty) and DNS SANs.
    fn request(cn: &str, dns: &[&str]) -> CertificateParams {
        let mut params = CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        if !cn.is_empty() {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params
    }

    fn permit_dns(names: &[&str]) -> Option<Nc> {
        Some(Nc {
            permitted_subtrees: names.iter().map(|n| GeneralSubtree::DnsName(n.to_string())).collect(),
            excluded_subtrees: Vec::new(),
        })
    }

    fn exclude_dns(names: &[&str]) -> Option<Nc> {
        Some(Nc {
            permitted_subtrees: Vec::new(),
            excluded_subtrees: names.iter().map(|n| GeneralSubtree::DnsName(n.to_string())).collect(),
        })
    }

    #[test]
    fn path_lengths() {
        let refused = |chain: &[&TestCa], root: &TestCa, is_ca: bool| {
            let names = names(&request("Sub CA", &[]));
            check_ca_constraints(&names, is_ca, &bundle(chain, root)).err().map(|e| e.to_string())
        };
        let root0 = TestCa::new("Root 0", None, None, Some(0));
        assert_eq!(
            refused(&[&root0], &root0, true).as_deref(),
            Some("the issuing CA \"CN=Root 0\" has pathLenConstraint 0: it may not issue sub-CA certificates")
        );
        assert_eq!(refused(&[&root0], &root0, false), None, "a leaf is not a CA below it");

        let root1 = TestCa::new("Root 1", None, None, Some(1));
        assert_eq!(refused(&[&root1], &root1, true), None, "one sub-CA below a pathLen 1 root");
        let inter = TestCa::new("Intermediate", Some(&root1), None, None);
        assert_eq!(refused(&[&inter], &root1, false), None);
        let why = refused(&[&inter], &root1, true).unwrap();
        assert!(why.starts_with("the CA \"CN=Root 1\" has pathLenConstraint 1"), "{why}");
        assert!(why.contains("would be number 2"), "{why}");
        // The same with the root in tls.crt.
        assert!(refused(&[&inter, &root1], &root1, true).is_some());

        let inter0 = TestCa::new("Intermediate 0", Some(&root1), None, Some(0));
        assert!(refused(&[&inter0], &root1, true).unwrap().starts_with("the issuing CA \"CN=Intermediate 0\""));
        assert_eq!(refused(&[&inter0], &root1, false), None);

        // A chain that already breaks its root's pathLen: even a leaf is refused.
        let below_root0 = TestCa::new("Below Root 0", Some(&root0), None, None);
        let why = refused(&[&below_root0], &root0, false).unwrap();
        assert!(why.contains("already follow it"), "{why}");

        let root2 = TestCa::new("Root 2", None, None, Some(2));
        let inter = TestCa::new("Intermediate", Some(&root2), None, None);
        assert_eq!(refused(&[&inter], &root2, true), None);

        // A self-issued intermediate does not count, nor does a self-issued sub-CA.
        let rollover = TestCa::new("Root 1", Some(&root1), None, None);
        assert_eq!(refused(&[&rollover], &root1, false), None);
        let bundle_rollover = bundle(&[&rollover], &root1);
        assert!(bundle_rollover.limits.cas[0].self_issued);
        let sub = names(&request("Sub CA", &[]));
        assert!(
            check_ca_constraints(&sub, true, &bundle_rollover).is_ok(),
            "a self-issued intermediate is not counted"
        );
        let issuing0 = TestCa::new("Issuing 0", Some(&root1), None, Some(0));
        let self_issued_sub = names(&request("Issuing 0", &[]));
        assert!(check_ca_constraints(&self_issued_sub, true, &bundle(&[&issuing0], &root1)).is_ok());
    }

    #[test]
    fn every_ca_of_the_chain_judges_and_messages_name_it() {
        let root = TestCa::new("Example Root", None, permit_dns(&["example.com"]), None);
        let inter = TestCa::new(
            "Team Intermediate",
            Some(&root),
            Some(Nc {
                permitted_subtrees: vec![GeneralSubtree::DnsName("team.example.com".into())],
                excluded_subtrees: vec![GeneralSubtree::DnsName("secret.team.example.com".into())],
            }),
            None,
        );
        let ca = bundle(&[&inter], &root);
        let check = |cn: &str, dns: &[&str]| check_ca_constraints(&names(&request(cn, dns)), false, &ca);
        assert_eq!(check("", &["db.team.example.com"]), Ok(()));
        assert_eq!(
            check("", &["db.other.example"]).unwrap_err().to_string(),
            "dNSName \"db.other.example\" is outside the permitted dNSName subtrees [\"example.com\"] of the CA \
             \"CN=Example Root\""
        );
        assert_eq!(
            check("", &["db.example.com"]).unwrap_err().to_string(),
            "dNSName \"db.example.com\" is outside the permitted dNSName subtrees [\"team.example.com\"] of the CA \
             \"CN=Team Intermediate\""
        );
        assert_eq!(
            check("", &["x.secret.team.example.com"]).unwrap_err().to_string(),
            "dNSName \"x.secret.team.example.com\" is inside the excluded dNSName subtree \
             \"secret.team.example.com\" of the CA \"CN=Team Intermediate\""
        );
        let wildcard = check("", &["*.team.example.com"]).unwrap_err();
        assert!(matches!(wildcard, CaConstraintError::WildcardExcluded { .. }), "{wildcard}");
        // The commonName, when there is no dNSName and it looks like a host name.
        let cn = check("db.other.example", &[]).unwrap_err().to_string();
        assert!(cn.starts_with("the subject commonName \"db.other.example\" (judged as a dNSName"), "{cn}");
        assert_eq!(check("db.team.example.com", &[]), Ok(()));
        assert_eq!(check("Database server", &[]), Ok(()));
        assert_eq!(check("db.other.example", &["db.team.example.com"]), Ok(()), "a dNSName: the CN is not judged");
        // A sub-CA's commonName is judged as well (the guard validates it as a leaf).
        assert!(check_ca_constraints(&names(&request("ca.other.example", &[])), true, &ca).is_err());
    }

    #[test]
    fn no_constraints_no_checks() {
        let root = TestCa::new("Plain Root", None, None, None);
        let ca = bundle(&[&root], &root);
        assert!(!ca.limits.constrained);
        let mut params = request("anything.example", &["*", "x.y"]);
        params.subject_alt_names.push(SanType::URI("urn:x".try_into().unwrap()));
        assert_eq!(check_ca_constraints(&names(&params), true, &ca), Ok(()));
    }

    #[test]
    fn the_subject_and_its_emails() {
        let root = TestCa::new(
            "Dir Root",
            None,
            Some(Nc {
                permitted_subtrees: vec![
                    GeneralSubtree::DirectoryName({
                        let mut dn = DistinguishedName::new();
                        dn.push(DnType::OrganizationName, "Example");
                        dn
                    }),
                    GeneralSubtree::Rfc822Name("example.com".into()),
                ],
                excluded_subtrees: Vec::new(),
            }),
            None,
        );
        let ca = bundle(&[&root], &root);
        let subject = |entries: &[(DnType, DnValue)]| {
            let mut params = request("", &["db.example.com"]);
            for (ty, value) in entries {
                params.distinguished_name.push(ty.clone(), value.clone());
            }
            check_ca_constraints(&names(&params), false, &ca)
        };
        let o = |v: &str| (DnType::OrganizationName, DnValue::Utf8String(v.into()));
        let cn = |v: &str| (DnType::CommonName, DnValue::Utf8String(v.into()));
        let email = DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]);
        assert_eq!(subject(&[o("Example"), cn("db")]), Ok(()));
        assert_eq!(subject(&[]), Ok(()), "an empty subject is not judged");
        let why = subject(&[o("Other"), cn("db")]).unwrap_err().to_string();
        assert_eq!(
            why,
            "the subject \"CN=db,O=Other\" is outside the permitted directoryName subtrees [\"O=Example\"] of the \
             CA \"CN=Dir Root\""
        );
        let ia5 = |v: &str| (email.clone(), DnValue::Ia5String(v.try_into().unwrap()));
        assert_eq!(subject(&[o("Example"), ia5("ops@example.com")]), Ok(()));
        let why = subject(&[o("Example"), ia5("ops@other.example")]).unwrap_err().to_string();
        assert!(why.starts_with("the subject emailAddress \"ops@other.example\" is outside the permitted rfc822Name"));
        let utf8 = (email.clone(), DnValue::Utf8String("ops@example.com".into()));
        let why = subject(&[o("Example"), utf8]).unwrap_err().to_string();
        assert!(why.contains("OpenSSL judges only an IA5String emailAddress"), "{why}");
    }

    #[test]
    fn other_san_types_cannot_be_judged() {
        let upn = || {
            let mut params = request("", &["db.example.com"]);
            params.subject_alt_names.push(SanType::OtherName((
                vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                rcgen::OtherNameValue::Utf8String("u@example.com".into()),
            )));
            names(&params)
        };
        let dns_only = TestCa::new("DNS Root", None, permit_dns(&["example.com"]), None);
        assert_eq!(check_ca_constraints(&upn(), false, &bundle(&[&dns_only], &dns_only)), Ok(()));
        let email_root = TestCa::new(
            "Email Root",
            None,
            Some(Nc {
                permitted_subtrees: vec![GeneralSubtree::Rfc822Name("example.com".into())],
                excluded_subtrees: Vec::new(),
            }),
            None,
        );
        let why = check_ca_constraints(&upn(), false, &bundle(&[&email_root], &email_root)).unwrap_err();
        assert!(why.to_string().contains("SmtpUTF8Mailbox"), "{why}");
        // An otherName subtree: built by hand (rcgen has none).
        let other_subtree = tlv(0xa0, &[&[0x06, 0x03, 0x2a, 0x03, 0x04][..], &tlv(0xa0, &tlv(0x0c, b"x"))].concat());
        let nc = tlv(0x30, &tlv(0xa1, &tlv(0x30, &other_subtree)));
        let root = TestCa::with("Other Root", None, None, None, vec![ext(&nc)]);
        let why = check_ca_constraints(&upn(), false, &bundle(&[&root], &root)).unwrap_err().to_string();
        assert!(why.starts_with("a subjectAltName of type otherName cannot be judged against the otherName"), "{why}");
    }

    /// A critical nameConstraints extension with `value`.
    fn ext(value: &[u8]) -> CustomExtension {
        let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], value.to_vec());
        ext.set_criticality(true);
        ext
    }

    #[test]
    fn unusable_constraints_refuse() {
        let any = names(&request("", &["db.example.com"]));
        let root = TestCa::with("Broken Root", None, None, None, vec![ext(&[0x30, 0x03, 0xa0, 0x01, 0x00])]);
        let why = check_ca_constraints(&any, false, &bundle(&[&root], &root)).unwrap_err().to_string();
        assert!(why.starts_with("the nameConstraints extension of the CA \"CN=Broken Root\" does not decode"), "{why}");

        let max = tlv(0x30, &tlv(0xa0, &tlv(0x30, &[tlv(0x82, b"example.com"), vec![0x81, 1, 3]].concat())));
        let root = TestCa::with("Bounded Root", None, None, None, vec![ext(&max)]);
        let ca = bundle(&[&root], &root);
        let why = check_ca_constraints(&any, false, &ca).unwrap_err().to_string();
        assert!(why.contains("with a minimum or maximum"), "{why}");
        // Only names of that type are affected.
        assert_eq!(check_ca_constraints(&names(&request("Just a person", &[])), false, &ca), Ok(()));

        let short_ip = tlv(0x30, &tlv(0xa0, &tlv(0x30, &tlv(0x87, &[10, 0, 0, 0, 255]))));
        let root = TestCa::with("Short IP Root", None, None, None, vec![ext(&short_ip)]);
        let mut params = request("", &[]);
        params.subject_alt_names.push(SanType::IpAddress("10.0.0.1".parse().unwrap()));
        let why = check_ca_constraints(&names(&params), false, &bundle(&[&root], &root)).unwrap_err().to_string();
        assert!(why.contains("neither 8 nor 32 bytes"), "{why}");
    }

    #[test]
    fn messages_are_bounded() {
        let many: Vec<String> = (0..40).map(|i| format!("allowed-{i}.example.com")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let root = TestCa::new(&"R".repeat(300), None, permit_dns(&refs), None);
        let long = format!("{}.other.example", "a".repeat(60));
        let why = check_ca_constraints(&names(&request("", &[&long])), false, &bundle(&[&root], &root))
            .unwrap_err()
            .to_string();
        assert!(why.contains("… and 35 more]"), "{why}");
        assert!(why.len() < 700, "{} bytes: {why}", why.len());
    }

    #[test]
    fn too_many_comparisons_refuse() {
        // 1,100 subtrees × 1,000 names > 2^20.
        let subtrees: Vec<String> = (0..1100).map(|i| format!("n{i}.example.com")).collect();
        let refs: Vec<&str> = subtrees.iter().map(String::as_str).collect();
        let root = TestCa::new("Big Root", None, exclude_dns(&refs), None);
        let ca = bundle(&[&root], &root);
        let sans: Vec<String> = (0..1000).map(|i| format!("h{i}.test")).collect();
        let sans: Vec<&str> = sans.iter().map(String::as_str).collect();
        let why = check_ca_constraints(&names(&request("", &sans)), false, &ca).unwrap_err();
        assert!(matches!(why, CaConstraintError::TooMany { names: 1000, constraints: 1100, .. }), "{why}");
        assert_eq!(check_ca_constraints(&names(&request("", &sans[..900])), false, &ca), Ok(()));
    }

    /// Median µs per call of `check_ca_constraints`, for the report (run with `--ignored`, in
    /// release for meaningful numbers).
    #[test]
    #[ignore = "timing, not a check"]
    fn timing() {
        let median = |ca: &CaBundle, names: &CertNames| {
            let mut samples: Vec<f64> = (0..200)
                .map(|_| {
                    let start = Instant::now();
                    for _ in 0..100 {
                        std::hint::black_box(check_ca_constraints(names, false, ca)).unwrap();
                    }
                    start.elapsed().as_secs_f64() * 1e6 / 100.0
                })
                .collect();
            samples.sort_by(f64::total_cmp);
            samples[samples.len() / 2]
        };
        let mut params = request("db.example.com", &["db.example.com", "api.example.com", "*.apps.example.com"]);
        params.distinguished_name.push(DnType::OrganizationName, "Example");
        params.subject_alt_names.push(SanType::IpAddress("10.1.2.3".parse().unwrap()));
        params.subject_alt_names.push(SanType::URI("spiffe://example.com/ns/a/sa/b".try_into().unwrap()));
        let names = names(&params);

        let plain_root = TestCa::new("Plain Root", None, None, None);
        let plain_inter = TestCa::new("Plain Intermediate", Some(&plain_root), None, None);
        let plain = bundle(&[&plain_inter], &plain_root);
        let nc = || Nc {
            permitted_subtrees: vec![
                GeneralSubtree::DnsName("example.com".into()),
                GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix("10.0.0.0".parse().unwrap(), 8)),
                GeneralSubtree::Rfc822Name("example.com".into()),
            ],
            excluded_subtrees: vec![
                GeneralSubtree::DnsName("internal.example.com".into()),
                GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix("10.9.0.0".parse().unwrap(), 16)),
            ],
        };
        let root = TestCa::new("Constrained Root", None, Some(nc()), None);
        let inter = TestCa::new("Constrained Intermediate", Some(&root), Some(nc()), Some(0));
        let constrained = bundle(&[&inter], &root);
        let parse = |ca: &CaBundle| {
            let mut samples: Vec<f64> = (0..200)
                .map(|_| {
                    let start = Instant::now();
                    std::hint::black_box(ChainLimits::of(&ca.chain, &ca.root));
                    start.elapsed().as_secs_f64() * 1e6
                })
                .collect();
            samples.sort_by(f64::total_cmp);
            samples[samples.len() / 2]
        };
        println!(
            "no constraints:   {:.2} µs per check (reading the chain once: {:.1} µs)",
            median(&plain, &names),
            parse(&plain)
        );
        println!(
            "two constrained CAs: {:.2} µs per check (reading the chain once: {:.1} µs)",
            median(&constrained, &names),
            parse(&constrained)
        );
    }
}
