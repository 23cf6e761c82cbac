//! The revocation ledger: what an issuer has revoked, kept (with the CRL number) in the issuer's
//! CRL ConfigMap so that it survives restarts, leader changes and the deletion of the
//! `CertificateRevocation` objects that asked for it.
//!
//! One line per entry, text, so that an administrator can read it:
//!
//! ```text
//! ferrum-ledger v1
//! number 1764500000
//! 7f3a9c... 1764499000 1 1772275000 team-a 3f2a9b1c
//! ```
//!
//! serial (hex), revocation time (Unix seconds), RFC 5280 reason code, the certificate's
//! notAfter (Unix seconds), the namespace it was revoked from, and who asked (the first
//! characters of the revocation's UID, or `deleted` for a Certificate deleted with
//! revoke-on-deletion on). A ledger that does not read is never
//! overwritten: that would un-revoke what it holds.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::x509::{RevocationReason, RevokedEntry};

const HEADER: &str = "ferrum-ledger v1";
/// The longest serial number RFC 5280 allows, in bytes.
pub(crate) const MAX_SERIAL_BYTES: usize = 20;
/// The longest `by` token.
const MAX_BY_CHARS: usize = 16;
/// The latest time a ledger may name: 9999-12-31T23:59:59Z, the last instant X.509 can encode.
pub(crate) const MAX_TIME: u64 = 253_402_300_799;
/// The highest CRL number a ledger may hold: far beyond any clock, far below overflow.
const MAX_NUMBER: u64 = i64::MAX as u64;

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Revocation time, Unix seconds.
    pub revoked_at: u64,
    /// Why.
    pub reason: RevocationReason,
    /// The certificate's notAfter, Unix seconds: the entry leaves the CRL after it.
    pub not_after: u64,
    /// The namespace it was revoked from (the certificate's).
    pub namespace: String,
    /// Who asked: a short revocation UID, or `deleted`.
    pub by: String,
}

/// An issuer's revocations and the last CRL number it used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ledger {
    /// The number of the last CRL signed.
    pub number: u64,
    /// Entries by serial (big-endian, no leading zero bytes).
    pub entries: BTreeMap<Vec<u8>, Entry>,
}

/// What adding an entry did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Added {
    /// The serial is new.
    New,
    /// The serial was revoked before, by this entry's `by` (the same asker, or someone else).
    Present(Entry),
}

impl Ledger {
    /// Reads a ledger; `Err` says which line is wrong.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines().enumerate();
        if lines.next().map(|(_, l)| l.trim()) != Some(HEADER) {
            return Err(format!("the first line is not {HEADER:?}"));
        }
        let mut ledger = Ledger::default();
        for (index, line) in lines {
            let wrong = |why: &str| format!("line {}: {why}", index + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [] => {}
                ["number", n] => {
                    ledger.number = n
                        .parse()
                        .ok()
                        .filter(|n| *n <= MAX_NUMBER)
                        .ok_or_else(|| wrong("the CRL number is not a number up to 2^63 - 1"))?;
                }
                [serial, revoked_at, reason, not_after, namespace, by] => {
                    let serial = parse_serial(serial).map_err(|e| wrong(&e))?;
                    let number = |s: &str| {
                        s.parse::<u64>()
                            .ok()
                            .filter(|t| *t <= MAX_TIME)
                            .ok_or_else(|| wrong("a time is not a number of seconds up to the year 9999"))
                    };
                    let reason = reason
                        .parse::<u8>()
                        .ok()
                        .and_then(RevocationReason::from_code)
                        .filter(|r| !matches!(r, RevocationReason::CertificateHold | RevocationReason::RemoveFromCrl))
                        .ok_or_else(|| wrong("unknown reason code"))?;
                    if by.len() > MAX_BY_CHARS || !by.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                        return Err(wrong("the asker is not a short token"));
                    }
                    if namespace.len() > 63
                        || !namespace.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    {
                        return Err(wrong("the namespace is not a namespace name"));
                    }
                    let entry = Entry {
                        revoked_at: number(revoked_at)?,
                        reason,
                        not_after: number(not_after)?,
                        namespace: (*namespace).into(),
                        by: (*by).into(),
                    };
                    if ledger.entries.insert(serial, entry).is_some() {
                        return Err(wrong("the serial number is listed twice"));
                    }
                }
                _ => return Err(wrong("expected `<serial> <revoked> <reason> <notAfter> <namespace> <by>`")),
            }
        }
        Ok(ledger)
    }

    /// The ledger as text.
    pub(crate) fn render(&self) -> String {
        let mut out = format!("{HEADER}\nnumber {}\n", self.number);
        for (serial, e) in &self.entries {
            out.push_str(&format!(
                "{} {} {} {} {} {}\n",
                hex(serial),
                e.revoked_at,
                e.reason.code(),
                e.not_after,
                e.namespace,
                e.by
            ));
        }
        out
    }

    /// Adds `entry` for `serial` unless the serial is there already.
    pub(crate) fn add(&mut self, serial: Vec<u8>, entry: Entry) -> Added {
        match self.entries.get(&serial) {
            Some(present) => Added::Present(present.clone()),
            None => {
                self.entries.insert(serial, entry);
                Added::New
            }
        }
    }

    /// How many entries a namespace has.
    pub(crate) fn count_of(&self, namespace: &str) -> usize {
        self.entries.values().filter(|e| e.namespace == namespace).count()
    }

    /// Drops the entries of certificates that expired more than `grace` before `now` (RFC 5280,
    /// 5.1.2.6: an entry stays until it has been on a CRL issued after its certificate expired;
    /// with `grace` = the CRL's validity, at least two CRLs are); how many went.
    pub(crate) fn expire(&mut self, now: SystemTime, grace: Duration) -> usize {
        let cutoff = unix(now).saturating_sub(grace.as_secs());
        let before = self.entries.len();
        self.entries.retain(|_, e| e.not_after >= cutoff);
        before - self.entries.len()
    }

    /// The number of the next CRL: above the last one, and at least the current Unix time, so
    /// that it keeps growing even if the ledger is lost and started again.
    pub(crate) fn next_number(&self, now: SystemTime) -> u64 {
        self.number.saturating_add(1).max(unix(now)).min(MAX_NUMBER)
    }

    /// When the first entry may leave (its certificate's notAfter + `grace`): the CRL is signed
    /// again then, without it.
    pub(crate) fn earliest_expiry(&self, grace: Duration) -> Option<SystemTime> {
        self.entries.values().map(|e| from_unix(e.not_after.saturating_add(grace.as_secs()).saturating_add(1))).min()
    }

    /// The entries as a CRL lists them.
    pub(crate) fn crl_entries(&self) -> Vec<RevokedEntry> {
        self.entries
            .iter()
            .map(|(serial, e)| RevokedEntry {
                serial: serial.clone(),
                revoked_at: from_unix(e.revoked_at),
                reason: e.reason,
            })
            .collect()
    }
}

pub(crate) use crate::encoding::hex_encode as hex;

/// A serial number written in hexadecimal (colons and spaces allowed, an optional `0x`):
/// big-endian bytes without leading zero bytes.
pub(crate) fn parse_serial(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text.trim().trim_start_matches("0x").chars().filter(|c| *c != ':' && *c != ' ').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("a serial number is hexadecimal digits (colons allowed)".into());
    }
    let padded = if digits.len() % 2 == 1 { format!("0{digits}") } else { digits };
    let bytes = crate::encoding::hex_decode(&padded).ok_or("a serial number is hexadecimal digits")?;
    let serial = crate::x509::trim_serial(&bytes);
    if serial.len() > MAX_SERIAL_BYTES {
        return Err(format!("a serial number has at most {MAX_SERIAL_BYTES} bytes"));
    }
    Ok(serial)
}

/// Unix seconds (0 before the epoch).
pub(crate) fn unix(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The instant `seconds` after the epoch (at most [`MAX_TIME`]: never overflows).
pub(crate) fn from_unix(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds.min(MAX_TIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(not_after: u64, by: &str) -> Entry {
        Entry {
            revoked_at: 1_000,
            reason: RevocationReason::KeyCompromise,
            not_after,
            namespace: "team-a".into(),
            by: by.into(),
        }
    }

    #[test]
    fn a_ledger_reads_back_what_it_wrote() {
        let mut ledger = Ledger { number: 42, ..Default::default() };
        assert_eq!(ledger.add(vec![0x7f, 1], entry(5_000, "3f2a9b1c")), Added::New);
        assert_eq!(ledger.add(vec![1], entry(6_000, "deleted")), Added::New);
        assert_eq!(ledger.add(vec![1], entry(7_000, "other")), Added::Present(entry(6_000, "deleted")));
        let text = ledger.render();
        assert_eq!(
            text,
            "ferrum-ledger v1\nnumber 42\n01 1000 1 6000 team-a deleted\n7f01 1000 1 5000 team-a 3f2a9b1c\n"
        );
        assert_eq!(ledger.count_of("team-a"), 2);
        assert_eq!(ledger.count_of("team-b"), 0);
        assert_eq!(Ledger::parse(&text).unwrap(), ledger);
    }

    #[test]
    fn a_ledger_that_does_not_read_says_where() {
        for (text, why) in [
            ("", "first line"),
            ("something else\n", "first line"),
            ("ferrum-ledger v1\nnumber x\n", "line 2: the CRL number"),
            ("ferrum-ledger v1\nzz 1 1 1 ns a\n", "line 2: a serial number"),
            ("ferrum-ledger v1\n01 1 7 1 ns a\n", "line 2: unknown reason"),
            ("ferrum-ledger v1\n01 1 1 1 a\n", "line 2: expected"),
            ("ferrum-ledger v1\n01 1 1 1 ns a b\n", "line 2: expected"),
            ("ferrum-ledger v1\n01 1 1 1 ns a;rm\n", "line 2: the asker"),
            ("ferrum-ledger v1\n01 1 1 1 NS a\n", "line 2: the namespace"),
            ("ferrum-ledger v1\n01 -1 1 1 ns a\n", "line 2: a time"),
            ("ferrum-ledger v1\n01 18446744073709551615 1 1 ns a\n", "line 2: a time"),
            ("ferrum-ledger v1\n01 1 1 253402300800 ns a\n", "line 2: a time"),
            ("ferrum-ledger v1\nnumber 18446744073709551615\n", "line 2: the CRL number"),
            ("ferrum-ledger v1\n01 1 6 1 ns a\n", "line 2: unknown reason"),
            ("ferrum-ledger v1\n01 1 1 1 ns a\n1 1 1 1 ns b\n", "line 3: the serial number is listed twice"),
        ] {
            let error = Ledger::parse(text).unwrap_err();
            assert!(error.contains(why), "{text:?}: {error}");
        }
    }

    #[test]
    fn entries_leave_after_their_certificate_expired() {
        let mut ledger = Ledger::default();
        ledger.add(vec![1], entry(100, "a"));
        ledger.add(vec![2], entry(200, "b"));
        let grace = Duration::from_secs(10);
        assert_eq!(ledger.earliest_expiry(grace), Some(from_unix(111)));
        assert_eq!(ledger.expire(from_unix(110), grace), 0, "kept until its notAfter + grace has passed");
        assert_eq!(ledger.expire(from_unix(111), grace), 1);
        assert_eq!(ledger.entries.keys().collect::<Vec<_>>(), [&vec![2u8]]);
    }

    #[test]
    fn crl_numbers_keep_growing() {
        let ledger = Ledger { number: 10, ..Default::default() };
        assert_eq!(ledger.next_number(from_unix(5)), 11);
        assert_eq!(ledger.next_number(from_unix(1_000)), 1_000, "a lost ledger starts at the clock");
        let ledger = Ledger { number: MAX_NUMBER, ..Default::default() };
        assert_eq!(ledger.next_number(from_unix(5)), MAX_NUMBER, "never wraps");
        assert_eq!(from_unix(u64::MAX), from_unix(MAX_TIME), "never overflows");
    }

    #[test]
    fn serial_numbers_are_read_as_people_write_them() {
        assert_eq!(parse_serial("0a:1B:ff").unwrap(), vec![0x0a, 0x1b, 0xff]);
        assert_eq!(parse_serial("0x00ab").unwrap(), vec![0xab]);
        assert_eq!(parse_serial("abc").unwrap(), vec![0x0a, 0xbc]);
        assert_eq!(parse_serial("00").unwrap(), vec![0]);
        assert!(parse_serial("").is_err() && parse_serial("xyz").is_err() && parse_serial("é1").is_err());
        assert!(parse_serial(&"ab".repeat(21)).unwrap_err().contains("at most 20 bytes"));
        assert_eq!(parse_serial(&format!("00{}", "ab".repeat(20))).unwrap().len(), 20);
    }
}
