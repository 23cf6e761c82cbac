//! `decode_csr_pem` on arbitrary bytes. When it accepts, a Go-like reader must see the same
//! thing: one block, first in the input, labelled CERTIFICATE REQUEST, with the same bytes.
#![no_main]

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use ferrum::x509::decode_csr_pem;
use ferrum_fuzz::pem_encode;
use libfuzzer_sys::fuzz_target;

const BEGIN_LINE: &[u8] = b"-----BEGIN CERTIFICATE REQUEST-----";
/// Go's `base64.StdEncoding` (padding required, trailing bits ignored), as `encoding/pem` uses.
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

fn is_space(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let Ok(der) = decode_csr_pem(data) else { return };

    let start = data.iter().position(|b| !is_space(b)).expect("accepted input is not all whitespace");
    let end = data.iter().rposition(|b| !is_space(b)).expect("accepted input is not all whitespace") + 1;
    let trimmed = &data[start..end];
    assert!(trimmed.starts_with(BEGIN_LINE), "accepted input does not start with the BEGIN line");
    assert_eq!(count(data, b"-----BEGIN "), 1, "accepted input holds more than one BEGIN");
    assert!(start == 0 || data[start - 1] == b'\n', "the BEGIN line must start a line");

    // An independent reading of the body: everything between the BEGIN line and the first END,
    // line breaks dropped, decoded as Go does.
    let body_start = start + BEGIN_LINE.len();
    let body_end = body_start + find(&data[body_start..], b"-----END ").expect("accepted input has an END");
    let body: Vec<u8> = data[body_start..body_end].iter().copied().filter(|b| !matches!(b, b'\r' | b'\n')).collect();
    assert_eq!(GO_STD.decode(&body).expect("Go would decode the body"), der, "two readings disagree");
    assert!(trimmed.ends_with(b"-----END CERTIFICATE REQUEST-----"));

    // Round trip: our own encoding of the DER is accepted and reads the same.
    assert_eq!(decode_csr_pem(pem_encode("CERTIFICATE REQUEST", &der).as_bytes()).as_ref(), Ok(&der));
});
