//! The names a certificate built from a template will carry, read once into plain values for
//! the checks that judge them: the issuing CA's name constraints and the issuer's policy.
//!
//! The template's subject and subjectAltName were checked when the CSR was (see
//! [`super::names`]), so a failure here means a name of a form those checks let through but
//! that cannot be judged as text (a commonName in an unusual string type, say): the caller
//! refuses the request rather than skip the name.

use std::net::IpAddr;

use der::asn1::ObjectIdentifier;
use der::{Any, Decode, Encode, Tag, Tagged};
use x509_cert::name::Name;

use super::template::CertificateTemplate;

/// commonName (2.5.4.3).
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// PKCS #9 emailAddress (1.2.840.113549.1.9.1), an email in the subject.
const EMAIL_ADDRESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1");

/// Every name of a certificate, by kind, in the order requested.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CertNames {
    /// The subject's commonName, as text (at most one: the CSR checks refuse more).
    pub(crate) common_name: Option<String>,
    /// emailAddress attributes of the subject.
    pub(crate) subject_emails: Vec<String>,
    /// The subject's RDNs, each as its DER, for directoryName subtrees (empty subject: none).
    pub(crate) subject_rdns: Vec<Vec<u8>>,
    /// dNSName SANs.
    pub(crate) dns: Vec<String>,
    /// iPAddress SANs.
    pub(crate) ips: Vec<IpAddr>,
    /// rfc822Name SANs.
    pub(crate) emails: Vec<String>,
    /// uniformResourceIdentifier SANs.
    pub(crate) uris: Vec<String>,
    /// directoryName SANs, each as its RDNs' DER.
    pub(crate) directory_names: Vec<Vec<Vec<u8>>>,
    /// Tag numbers of the other SAN types present (otherName 0, x400Address 3,
    /// ediPartyName 5, registeredID 8), which no rule here can judge.
    pub(crate) other_types: Vec<u32>,
}

impl CertNames {
    /// Reads the names of `template`.
    pub(crate) fn of(template: &CertificateTemplate) -> Result<Self, String> {
        let subject = Name::from_der(&template.subject).map_err(|e| format!("the subject does not decode: {e}"))?;
        let mut names = Self { subject_rdns: rdns(&subject)?, ..Self::default() };
        for rdn in subject.iter_rdn() {
            for atv in rdn.iter() {
                if atv.oid == COMMON_NAME {
                    names.common_name = Some(text(&atv.value).map_err(|why| format!("the commonName {why}"))?);
                } else if atv.oid == EMAIL_ADDRESS {
                    names.subject_emails.push(text(&atv.value).map_err(|why| format!("the emailAddress {why}"))?);
                }
            }
        }
        let Some(san) = &template.subject_alt_name else {
            return Ok(names);
        };
        let entries = Vec::<Any>::from_der(san.extn_value.as_bytes())
            .map_err(|e| format!("the subjectAltName does not decode: {e}"))?;
        for entry in &entries {
            let Tag::ContextSpecific { constructed, number } = entry.tag() else {
                return Err("a subjectAltName entry is not a GeneralName".into());
            };
            let ascii = || {
                std::str::from_utf8(entry.value())
                    .map(str::to_owned)
                    .map_err(|_| "a subjectAltName entry is not ASCII".to_owned())
            };
            match (number.value(), constructed) {
                (1, false) => names.emails.push(ascii()?),
                (2, false) => names.dns.push(ascii()?),
                (6, false) => names.uris.push(ascii()?),
                (7, false) => names.ips.push(ip(entry.value())?),
                (4, true) => {
                    let name = Name::from_der(entry.value())
                        .map_err(|e| format!("a directoryName subjectAltName does not decode: {e}"))?;
                    names.directory_names.push(rdns(&name)?);
                }
                (n, _) => names.other_types.push(n),
            }
        }
        Ok(names)
    }
}

/// The RDNs of a name, each as DER.
fn rdns(name: &Name) -> Result<Vec<Vec<u8>>, String> {
    name.iter_rdn().map(|rdn| rdn.to_der().map_err(|e| format!("a name does not encode: {e}"))).collect()
}

/// An IP address SAN: 4 or 16 bytes.
fn ip(bytes: &[u8]) -> Result<IpAddr, String> {
    match bytes.len() {
        4 => Ok(IpAddr::from(<[u8; 4]>::try_from(bytes).map_err(|e| e.to_string())?)),
        16 => Ok(IpAddr::from(<[u8; 16]>::try_from(bytes).map_err(|e| e.to_string())?)),
        n => Err(format!("an IP address subjectAltName is {n} bytes")),
    }
}

/// A directory string attribute as text: UTF8String, PrintableString, IA5String,
/// VisibleString or BMPString (UTF-16).
fn text(value: &Any) -> Result<String, String> {
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            String::from_utf8(value.value().to_vec()).map_err(|_| "is not valid UTF-8".to_owned())
        }
        Tag::BmpString => {
            if !value.value().len().is_multiple_of(2) {
                return Err("is a BMPString of odd length".into());
            }
            let units: Vec<u16> = value.value().chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).map_err(|_| "is not valid UTF-16".to_owned())
        }
        other => Err(format!("is a {other}, which is not read as text")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::{RequestedProfile, certificate_template, parse_csr};

    fn template(params: rcgen::CertificateParams) -> CertificateTemplate {
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        let csr = parse_csr(pem.as_bytes()).unwrap();
        certificate_template(&RequestedProfile::default(), &csr).unwrap()
    }

    #[test]
    fn reads_every_kind() {
        let mut params = rcgen::CertificateParams::new(vec!["a.example.com".into(), "b.example.com".into()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "a.example.com");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Example");
        params.subject_alt_names.extend([
            rcgen::SanType::IpAddress("10.1.2.3".parse().unwrap()),
            rcgen::SanType::IpAddress("2001:db8::1".parse().unwrap()),
            rcgen::SanType::Rfc822Name("ops@example.com".try_into().unwrap()),
            rcgen::SanType::URI("spiffe://cluster.local/ns/a/sa/b".try_into().unwrap()),
        ]);
        let names = CertNames::of(&template(params)).unwrap();
        assert_eq!(names.common_name.as_deref(), Some("a.example.com"));
        assert_eq!(names.dns, ["a.example.com", "b.example.com"]);
        assert_eq!(names.ips, ["10.1.2.3".parse::<IpAddr>().unwrap(), "2001:db8::1".parse().unwrap()]);
        assert_eq!(names.emails, ["ops@example.com"]);
        assert_eq!(names.uris, ["spiffe://cluster.local/ns/a/sa/b"]);
        assert_eq!(names.subject_rdns.len(), 2);
        assert!(names.subject_emails.is_empty() && names.directory_names.is_empty() && names.other_types.is_empty());
    }

    #[test]
    fn bmp_strings_are_text() {
        let mut der = vec![0x1e, 4];
        der.extend([0, b'h', 0, b'i']);
        assert_eq!(text(&Any::from_der(&der).unwrap()).unwrap(), "hi");
        let odd = [0x1e, 3, 0, b'h', 0];
        assert!(text(&Any::from_der(&odd).unwrap()).is_err());
    }
}
