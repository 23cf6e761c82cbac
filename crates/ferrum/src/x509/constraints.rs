//! Name constraints requested in a sub-CA's CSR, carried into its certificate as cert-manager's
//! CA issuer carries them.
//!
//! cert-manager (`pkg/util/pki` `UnmarshalNameConstraints`, then Go's `x509.CreateCertificate`)
//! reads the permitted and excluded subtrees of DNS names, IP ranges, emails and URIs, refuses
//! every other name type, drops the subtrees' minimum and maximum, masks each IP range with its
//! mask, and encodes the result again: within each of permitted and excluded, DNS names, then IP
//! ranges, then emails, then URIs, each kind in the order requested; criticality as requested.
//! Ferrum does the same, so the two issue the same extension for the same request. Unlike
//! cert-manager, Ferrum refuses name constraints on a request that is not for a CA: RFC 5280
//! allows them only in CA certificates (cert-manager's own Certificate validation says so too).

use der::{Any, Decode, Reader, SliceReader, Tag, Tagged};
use x509_cert::ext::Extension;

use super::csr::ValidatedCsr;
use super::oids;

/// Why requested name constraints were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConstraintError {
    /// Name constraints on a request that is not for a CA.
    #[error("the CSR requests name constraints, which only a CA certificate may carry (spec.isCA is false)")]
    NotACa,
    /// The extension does not decode.
    #[error("the CSR's nameConstraints extension does not decode: {0}")]
    Malformed(String),
    /// A name type cert-manager does not carry.
    #[error(
        "the CSR's nameConstraints hold a name of type [{0}]; only DNS names, IP ranges, emails and URIs are accepted"
    )]
    UnsupportedType(u32),
    /// An IP range that is not address + contiguous mask of the same family.
    #[error("the CSR's nameConstraints hold an IP range of {0} bytes or a mask that is not contiguous")]
    BadIpRange(usize),
    /// A DNS, email or URI constraint that is not ASCII.
    #[error("the CSR's nameConstraints hold a name that is not ASCII (IA5String)")]
    NotAscii,
    /// Neither permitted nor excluded subtrees.
    #[error("the CSR's nameConstraints permit and exclude nothing")]
    Empty,
}

/// The constraints of one subtree list, by kind, in request order.
#[derive(Default)]
struct Subtrees {
    dns: Vec<Vec<u8>>,
    ip: Vec<Vec<u8>>,
    email: Vec<Vec<u8>>,
    uri: Vec<Vec<u8>>,
}

/// The nameConstraints extension to put in the certificate, if the CSR requests one.
pub(crate) fn requested_name_constraints(
    csr: &ValidatedCsr,
    is_ca: bool,
) -> Result<Option<Extension>, ConstraintError> {
    let Some(requested) = csr.extension(oids::NAME_CONSTRAINTS) else {
        return Ok(None);
    };
    if !is_ca {
        return Err(ConstraintError::NotACa);
    }
    let malformed = |e: der::Error| ConstraintError::Malformed(e.to_string());
    let parts = Vec::<Any>::from_der(requested.extn_value.as_bytes()).map_err(malformed)?;
    let (mut permitted, mut excluded) = (Subtrees::default(), Subtrees::default());
    for part in &parts {
        let target = match part.tag() {
            Tag::ContextSpecific { constructed: true, number } if number.value() == 0 => &mut permitted,
            Tag::ContextSpecific { constructed: true, number } if number.value() == 1 => &mut excluded,
            other => return Err(ConstraintError::Malformed(format!("unexpected element {other}"))),
        };
        read_subtrees(part.value(), target)?;
    }
    let (permitted, excluded) = (encode_subtrees(&permitted), encode_subtrees(&excluded));
    if permitted.is_empty() && excluded.is_empty() {
        return Err(ConstraintError::Empty);
    }
    let mut body = Vec::new();
    if !permitted.is_empty() {
        body.extend(tlv(0xa0, &permitted));
    }
    if !excluded.is_empty() {
        body.extend(tlv(0xa1, &excluded));
    }
    let value = der::asn1::OctetString::new(tlv(0x30, &body)).map_err(malformed)?;
    Ok(Some(Extension { extn_id: oids::NAME_CONSTRAINTS, critical: requested.critical, extn_value: value }))
}

/// Reads the GeneralSubtree SEQUENCEs in `bytes` into `out`.
fn read_subtrees(bytes: &[u8], out: &mut Subtrees) -> Result<(), ConstraintError> {
    let malformed = |e: der::Error| ConstraintError::Malformed(e.to_string());
    let mut reader = SliceReader::new(bytes).map_err(malformed)?;
    while !reader.is_finished() {
        let subtree = Any::decode(&mut reader).map_err(malformed)?;
        if subtree.tag() != Tag::Sequence {
            return Err(ConstraintError::Malformed("a GeneralSubtree is not a SEQUENCE".into()));
        }
        // base GeneralName, then the minimum and maximum, which cert-manager drops.
        let mut fields = SliceReader::new(subtree.value()).map_err(malformed)?;
        let base = Any::decode(&mut fields).map_err(malformed)?;
        let Tag::ContextSpecific { constructed, number } = base.tag() else {
            return Err(ConstraintError::Malformed("a GeneralSubtree's base is not a GeneralName".into()));
        };
        let value = base.value().to_vec();
        let ascii = |v: Vec<u8>| if v.is_ascii() { Ok(v) } else { Err(ConstraintError::NotAscii) };
        match (number.value(), constructed) {
            (2, false) => out.dns.push(ascii(value)?),
            (1, false) => out.email.push(ascii(value)?),
            (6, false) => out.uri.push(ascii(value)?),
            (7, false) => out.ip.push(masked_range(&value)?),
            (n, _) => return Err(ConstraintError::UnsupportedType(n)),
        }
    }
    Ok(())
}

/// An IP range as Go keeps it: address masked by its mask, then the mask.
fn masked_range(range: &[u8]) -> Result<Vec<u8>, ConstraintError> {
    let half = match range.len() {
        8 | 32 => range.len() / 2,
        n => return Err(ConstraintError::BadIpRange(n)),
    };
    let (address, mask) = range.split_at(half);
    let ones = mask.iter().map(|b| b.count_ones()).sum::<u32>() as usize;
    let contiguous = mask.iter().enumerate().all(|(i, b)| {
        let expected = ones.saturating_sub(i * 8).min(8);
        *b == if expected == 0 { 0 } else { 0xffu8 << (8 - expected) }
    });
    if !contiguous {
        return Err(ConstraintError::BadIpRange(range.len()));
    }
    Ok(address.iter().zip(mask).map(|(a, m)| a & m).chain(mask.iter().copied()).collect())
}

/// GeneralSubtrees in Go's order: DNS, IP, email, URI.
fn encode_subtrees(s: &Subtrees) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, names) in [(0x82, &s.dns), (0x87, &s.ip), (0x81, &s.email), (0x86, &s.uri)] {
        for name in names {
            out.extend(tlv(0x30, &tlv(tag, name)));
        }
    }
    out
}

/// One DER TLV with a definite length.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges_are_masked_and_checked() {
        assert_eq!(masked_range(&[10, 1, 2, 3, 255, 0, 0, 0]).unwrap(), [10, 0, 0, 0, 255, 0, 0, 0]);
        assert_eq!(masked_range(&[10, 1, 2, 3, 255, 255, 255, 255]).unwrap(), [10, 1, 2, 3, 255, 255, 255, 255]);
        assert_eq!(masked_range(&[10, 1, 2, 3, 0, 0, 0, 0]).unwrap(), [0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(masked_range(&[10, 1, 2, 3, 255, 0, 255, 0]).is_err(), "holes in the mask");
        assert!(masked_range(&[10, 1, 2, 3]).is_err(), "no mask");
        let mut v6 = vec![0x20, 0x01, 0x0d, 0xb8];
        v6.extend([0xff; 12]);
        v6.extend([0xff, 0xff, 0xff, 0xf0]);
        v6.extend([0; 12]);
        let masked = masked_range(&v6).unwrap();
        assert_eq!(&masked[..4], &[0x20, 0x01, 0x0d, 0xb0]);
        assert!(masked[4..16].iter().all(|b| *b == 0));
    }

    #[test]
    fn long_lengths() {
        let content = vec![7u8; 300];
        let t = tlv(0x30, &content);
        assert_eq!(&t[..4], &[0x30, 0x82, 0x01, 0x2c]);
        assert_eq!(t.len(), 304);
    }
}
