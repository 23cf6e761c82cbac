//! The one reading of `spec.request`: exactly one PEM block labelled `CERTIFICATE REQUEST`,
//! with nothing but whitespace around it.
//!
//! cert-manager and its approvers decode `spec.request` with Go's `pem.Decode`, which takes the
//! *first* block whatever its label and ignores everything after it. If Ferrum read anything
//! else (say the first block that has the right label), a request could be approved as one CSR
//! and signed as another. So Ferrum accepts only inputs on which every reasonable reader agrees:
//!
//! - optional whitespace (space, tab, CR, LF), ending in a line break if there is any, so that
//!   the BEGIN line starts a line (Go does not see a block whose BEGIN is indented);
//! - `-----BEGIN CERTIFICATE REQUEST-----`, a line break;
//! - lines of base64 alphabet characters only: no headers, no spaces, no other block;
//! - `-----END CERTIFICATE REQUEST-----` at the start of a line;
//! - optional whitespace.
//!
//! The body is decoded as Go's `encoding/pem` does (standard base64, padding required). On every
//! input accepted here, Go's `pem.Decode` returns the same block with the same bytes; everything
//! else is refused with a message that says what was found. `tools/csr-oracle` and the
//! differential test hold Ferrum to that.

use crate::encoding::go_base64_decode;

const BEGIN: &[u8] = b"-----BEGIN ";
const LABEL: &str = "CERTIFICATE REQUEST";
const BEGIN_LINE: &[u8] = b"-----BEGIN CERTIFICATE REQUEST-----";
const END_LINE: &[u8] = b"-----END CERTIFICATE REQUEST-----";

/// Why `spec.request` is not exactly one `CERTIFICATE REQUEST` PEM block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// Nothing but whitespace.
    #[error("spec.request is empty")]
    Empty,
    /// No BEGIN line at all.
    #[error("spec.request holds no PEM block; expected exactly one labelled CERTIFICATE REQUEST")]
    NoBlock,
    /// More than one BEGIN line.
    #[error(
        "spec.request holds {} PEM blocks ({}); exactly one, labelled CERTIFICATE REQUEST, is accepted",
        .0.len(),
        .0.join(", ")
    )]
    SeveralBlocks(Vec<String>),
    /// One block, with another label.
    #[error("spec.request holds a PEM block labelled {0}; only CERTIFICATE REQUEST is accepted")]
    WrongLabel(String),
    /// Something other than whitespace before the block.
    #[error("spec.request has {0} bytes of text before the PEM block; only whitespace may surround it")]
    TextBefore(usize),
    /// Something other than whitespace after the block.
    #[error("spec.request has {0} bytes of text after the PEM block; only whitespace may surround it")]
    TextAfter(usize),
    /// The BEGIN line does not start a line or does not end where it should.
    #[error("spec.request: the BEGIN line must be exactly -----BEGIN CERTIFICATE REQUEST----- on a line of its own")]
    BadBeginLine,
    /// No END line for the block.
    #[error("spec.request: the PEM block has no -----END CERTIFICATE REQUEST----- line")]
    NoEndLine,
    /// The END line is not the matching one on a line of its own.
    #[error("spec.request: the END line must be exactly -----END CERTIFICATE REQUEST----- on a line of its own")]
    BadEndLine,
    /// `Key: value` headers inside the block.
    #[error("spec.request: the PEM block carries headers (line {0}); none are accepted")]
    Headers(usize),
    /// A character outside the base64 alphabet in the body.
    #[error("spec.request: line {line} of the PEM body holds {found}, which is not base64")]
    BadCharacter {
        /// 1-based line within the body.
        line: usize,
        /// The character, described (never more than one character).
        found: String,
    },
    /// The body's base64 does not decode.
    #[error("spec.request: the PEM body is not valid base64: {0}")]
    BadBase64(String),
}

/// Returns the DER inside `input` if it is exactly one `CERTIFICATE REQUEST` PEM block with
/// nothing but whitespace around it.
pub fn decode_csr_pem(input: &[u8]) -> Result<Vec<u8>, PemError> {
    if input.iter().all(|b| is_space(*b)) {
        return Err(PemError::Empty);
    }
    let begins: Vec<usize> = find_all(input, BEGIN);
    match begins.as_slice() {
        [] => return Err(PemError::NoBlock),
        [_] => {}
        several => return Err(PemError::SeveralBlocks(several.iter().map(|&at| label_at(input, at)).collect())),
    }
    let begin = begins[0];
    let before = &input[..begin];
    if let Some(text) = non_space_len(before) {
        return Err(PemError::TextBefore(text));
    }
    if begin > 0 && input[begin - 1] != b'\n' {
        return Err(PemError::BadBeginLine);
    }
    let after_begin = &input[begin..];
    if !after_begin.starts_with(BEGIN_LINE) {
        let label = label_at(input, begin);
        return Err(if label == format!("{LABEL:?}") { PemError::BadBeginLine } else { PemError::WrongLabel(label) });
    }
    let body_start = begin + BEGIN_LINE.len() + line_break(&input[begin + BEGIN_LINE.len()..])?;
    let end =
        find_all(&input[body_start..], b"-----END ").first().map(|at| body_start + at).ok_or(PemError::NoEndLine)?;
    if end > body_start && input[end - 1] != b'\n' {
        return Err(PemError::BadEndLine);
    }
    if !input[end..].starts_with(END_LINE) {
        return Err(PemError::BadEndLine);
    }
    if let Some(text) = non_space_len(&input[end + END_LINE.len()..]) {
        return Err(PemError::TextAfter(text));
    }
    let mut base64 = String::with_capacity(end - body_start);
    for (number, line) in input[body_start..end].split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.contains(&b':') {
            return Err(PemError::Headers(number + 1));
        }
        if let Some(bad) = line.iter().find(|b| !is_base64(**b)) {
            return Err(PemError::BadCharacter { line: number + 1, found: describe(*bad) });
        }
        // Invariant: every byte is in the base64 alphabet (checked above), hence ASCII.
        base64.push_str(std::str::from_utf8(line).unwrap_or_default());
    }
    go_base64_decode(&base64).map_err(|e| PemError::BadBase64(e.to_string()))
}

/// Consumes the line break right after the BEGIN line: `\n` or `\r\n`; returns its length.
fn line_break(rest: &[u8]) -> Result<usize, PemError> {
    if rest.starts_with(b"\n") {
        Ok(1)
    } else if rest.starts_with(b"\r\n") {
        Ok(2)
    } else {
        Err(PemError::BadBeginLine)
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// Length of `text` without surrounding whitespace, if any non-whitespace is left.
fn non_space_len(text: &[u8]) -> Option<usize> {
    let first = text.iter().position(|b| !is_space(*b))?;
    let last = text.iter().rposition(|b| !is_space(*b)).unwrap_or(first);
    Some(last - first + 1)
}

/// Where `needle` starts in `haystack`. Scans for its first byte and compares only there: PEM
/// text holds few dashes, and comparing every window costs more than the rest of the decoding.
fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    let Some(&first) = needle.first() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = haystack[from..].iter().position(|&b| b == first) {
        let at = from + offset;
        if haystack[at..].starts_with(needle) {
            found.push(at);
        }
        from = at + 1;
    }
    found
}

/// The label of the BEGIN line at `at`, quoted and cut to printable ASCII for messages.
fn label_at(input: &[u8], at: usize) -> String {
    let rest = &input[at + BEGIN.len()..];
    let line_end = rest.iter().position(|b| *b == b'\n' || *b == b'\r').unwrap_or(rest.len());
    let line = &rest[..line_end];
    let label = match find_all(line, b"-----").first() {
        Some(end) => &line[..*end],
        None => line,
    };
    let shown: String =
        label.iter().take(64).map(|b| if b.is_ascii_graphic() || *b == b' ' { *b as char } else { '?' }).collect();
    if label.len() > 64 { format!("{shown:?}...") } else { format!("{shown:?}") }
}

fn describe(b: u8) -> String {
    match b {
        b' ' => "a space".into(),
        b'\t' => "a tab".into(),
        b'\r' => "a carriage return".into(),
        b'-' => "'-' (another PEM boundary?)".into(),
        b if b.is_ascii_graphic() => format!("{:?}", b as char),
        b => format!("byte 0x{b:02x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::pem_encode;

    fn block(label: &str, der: &[u8]) -> String {
        pem_encode(label, der)
    }

    #[test]
    fn one_block_with_whitespace_around() {
        let der = b"0123456789abcdef".to_vec();
        let pem = block(LABEL, &der);
        assert_eq!(decode_csr_pem(pem.as_bytes()).unwrap(), der);
        assert_eq!(decode_csr_pem(format!("\n \t\n{pem}\n\n  \t").as_bytes()).unwrap(), der);
        assert_eq!(decode_csr_pem(pem.replace('\n', "\r\n").as_bytes()).unwrap(), der);
        assert_eq!(decode_csr_pem(pem.trim_end().as_bytes()).unwrap(), der, "no final newline");
    }

    #[test]
    fn every_other_shape_is_refused_with_what_was_found() {
        let der = b"0123456789abcdef".to_vec();
        let pem = block(LABEL, &der);
        let other = block("CERTIFICATE", &der);
        let cases: Vec<(String, PemError)> = vec![
            ("".into(), PemError::Empty),
            (" \n".into(), PemError::Empty),
            ("hello".into(), PemError::NoBlock),
            (
                format!("{other}{pem}"),
                PemError::SeveralBlocks(vec!["\"CERTIFICATE\"".into(), "\"CERTIFICATE REQUEST\"".into()]),
            ),
            (format!("{pem}{pem}"), PemError::SeveralBlocks(vec![format!("{LABEL:?}"), format!("{LABEL:?}")])),
            (other.clone(), PemError::WrongLabel("\"CERTIFICATE\"".into())),
            (block("NEW CERTIFICATE REQUEST", &der), PemError::WrongLabel("\"NEW CERTIFICATE REQUEST\"".into())),
            (block("certificate request", &der), PemError::WrongLabel("\"certificate request\"".into())),
            (format!("x\n{pem}"), PemError::TextBefore(1)),
            (format!("{pem}trailing"), PemError::TextAfter(8)),
            (format!("  {pem}"), PemError::BadBeginLine),
            (pem.replacen("-----\n", "----- \n", 1), PemError::BadBeginLine),
            (pem.replace("-----END CERTIFICATE REQUEST-----\n", ""), PemError::NoEndLine),
            (pem.replace("-----END CERTIFICATE REQUEST-----", "-----END CERTIFICATE-----"), PemError::BadEndLine),
            (pem.replace("\n-----END", "-----END"), PemError::BadEndLine),
            (pem.replacen("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1), PemError::Headers(1)),
            (pem.replacen("-----\n", "-----\n  ", 1), PemError::BadCharacter { line: 1, found: "a space".into() }),
            (pem.replacen("-----\n", "-----\nMDEy*\n", 1), PemError::BadCharacter { line: 1, found: "'*'".into() }),
        ];
        for (input, expected) in cases {
            assert_eq!(decode_csr_pem(input.as_bytes()), Err(expected), "input {input:?}");
        }
        let truncated = pem.replacen("MDEyMzQ1Njc4OWFiY2RlZg==", "MDEyMzQ1Njc4OWFiY2RlZg", 1);
        assert!(matches!(decode_csr_pem(truncated.as_bytes()), Err(PemError::BadBase64(_))));
    }

    #[test]
    fn labels_in_messages_are_cut_and_printable() {
        let long = "A".repeat(100);
        let input = format!("-----BEGIN {long}\u{1}-----\n-----END X-----\n");
        let Err(PemError::WrongLabel(label)) = decode_csr_pem(input.as_bytes()) else { panic!() };
        assert!(label.len() < 80 && label.ends_with("...") && !label.contains('\u{1}'), "{label}");
    }
}
