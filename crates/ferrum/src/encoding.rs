//! Base64 and PEM helpers shared by the API types and the certificate code.

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

/// Go's `base64.StdEncoding` as its decoder behaves: padding required, non-zero trailing bits
/// accepted (Go's non-strict mode).
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Standard base64, as Go encodes `[]byte` in JSON.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes base64 exactly as Go's `encoding/json` decodes a `[]byte` field, which is how the
/// apiserver and cert-manager read `spec.request`: the standard alphabet with padding, carriage
/// returns and line feeds anywhere ignored, and non-zero trailing bits accepted.
///
/// Whatever Go accepts decodes here to the same bytes, and whatever Go refuses is refused, so
/// no object the apiserver stored can make Ferrum read something other than cert-manager does.
pub fn go_base64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    if text.contains(['\r', '\n']) {
        let compact: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
        return GO_STD.decode(compact);
    }
    GO_STD.decode(text)
}

/// Lower-case hexadecimal, two digits per byte.
pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hexadecimal, two digits per byte (either case); `None` for anything else.
pub(crate) fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
}

/// Encodes DER as a PEM block with the given label, lines of 64 characters.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = base64_encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in body.as_bytes().chunks(64) {
        // Invariant: base64 output is ASCII, so any byte slice of it is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_base64_rules() {
        // Line breaks anywhere are ignored, as Go's decoder does.
        assert_eq!(go_base64_decode("QU\r\nJD\nRA=\n=").unwrap(), b"ABCD");
        // Non-zero trailing bits: Go (non-strict) accepts "QR==" as "A".
        assert_eq!(go_base64_decode("QR==").unwrap(), b"A");
        assert_eq!(go_base64_decode("").unwrap(), b"");
        // Padding is required; spaces, the URL alphabet and data after padding are refused.
        for bad in ["QQ", "QQ=", "Q Q==", "-_8=", "QQ==QQ==", "QQ===", "===="] {
            assert!(go_base64_decode(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn pem_wraps_at_64() {
        let pem = pem_encode("CERTIFICATE", &[7u8; 100]);
        let lines: Vec<_> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END CERTIFICATE-----"));
        assert_eq!(go_base64_decode(&lines[1..lines.len() - 1].concat()).unwrap(), vec![7u8; 100]);
    }
}
