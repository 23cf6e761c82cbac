//! Helpers shared by the fuzz targets. Kept here rather than taken from `ferrum`, whose PEM
//! encoder and OID table are private.

use der::asn1::ObjectIdentifier as Oid;
use ferrum::x509::{SanType, ValidatedCsr};
use x509_cert::ext::Extension;

pub const SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
pub const NAME_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.30");
pub const ED25519: Oid = Oid::new_unwrap("1.3.101.112");
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");

pub const ALL_SAN_TYPES: [SanType; 5] =
    [SanType::OtherName, SanType::X400Address, SanType::DirectoryName, SanType::EdiPartyName, SanType::RegisteredID];

/// A PEM block as Go's `pem.Encode` writes it: lines of 64 base64 characters.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The requested extension with this OID, if any.
pub fn extension(csr: &ValidatedCsr, oid: Oid) -> Option<&Extension> {
    csr.extensions().iter().find(|e| e.extn_id == oid)
}
