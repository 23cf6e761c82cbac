//! `parse_go_duration` on arbitrary text, held to a port of Go's `time.ParseDuration`
//! (integer nanoseconds): the same inputs accepted and refused, the same value within float
//! rounding. Ferrum knowingly differs on negative durations (refused) and on values past Go's
//! int64 nanoseconds (accepted), which are not compared.
#![no_main]

use ferrum::x509::parse_go_duration;
use libfuzzer_sys::fuzz_target;

#[derive(Debug)]
enum Go {
    Ok { nanos: u64, components: u32 },
    Invalid,
    Overflow,
}

const LIMIT: u64 = 1 << 63;

/// Go 1.2x `time.ParseDuration`, byte for byte, with overflow told apart from invalid input.
fn go_parse(orig: &str) -> Go {
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            s = &s[1..];
        }
    }
    if s == b"0" {
        return Go::Ok { nanos: 0, components: 0 };
    }
    if s.is_empty() {
        return Go::Invalid;
    }
    let (mut d, mut components) = (0u64, 0u32);
    while !s.is_empty() {
        components += 1;
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Go::Invalid;
        }
        // leadingInt
        let (mut v, mut i) = (0u64, 0);
        while i < s.len() && s[i].is_ascii_digit() {
            if v > LIMIT / 10 {
                return Go::Overflow;
            }
            v = v * 10 + u64::from(s[i] - b'0');
            if v > LIMIT {
                return Go::Overflow;
            }
            i += 1;
        }
        let pre = i > 0;
        s = &s[i..];
        // leadingFraction
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let (mut i, mut overflow) = (0, false);
            while i < s.len() && s[i].is_ascii_digit() {
                if !overflow {
                    if f > (LIMIT - 1) / 10 {
                        overflow = true;
                    } else {
                        let y = f * 10 + u64::from(s[i] - b'0');
                        if y > LIMIT {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10.0;
                        }
                    }
                }
                i += 1;
            }
            post = i > 0;
            s = &s[i..];
        }
        if !pre && !post {
            return Go::Invalid;
        }
        let i = s.iter().position(|c| *c == b'.' || c.is_ascii_digit()).unwrap_or(s.len());
        if i == 0 {
            return Go::Invalid;
        }
        let unit: u64 = match &s[..i] {
            b"ns" => 1,
            b"us" => 1_000,
            b"\xc2\xb5s" | b"\xce\xbcs" => 1_000, // µs (micro sign), μs (Greek mu)
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => return Go::Invalid,
        };
        s = &s[i..];
        if v > LIMIT / unit {
            return Go::Overflow;
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Go::Overflow;
            }
        }
        d += v;
        if d > LIMIT {
            return Go::Overflow;
        }
    }
    if neg {
        return Go::Invalid; // valid in Go, negative: not compared
    }
    if d > LIMIT - 1 {
        return Go::Overflow;
    }
    Go::Ok { nanos: d, components }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ours = parse_go_duration(&text);
    if text.trim_start_matches('+').starts_with('-') {
        assert!(ours.is_err(), "negative durations are refused: {text:?}");
        return;
    }
    match (go_parse(&text), &ours) {
        (Go::Overflow, _) => {}
        (Go::Invalid, Err(_)) => {}
        (Go::Invalid, Ok(d)) => panic!("Go refuses {text:?}, Ferrum reads {d:?}"),
        (Go::Ok { nanos, .. }, Err(e)) => panic!("Go reads {text:?} as {nanos}ns, Ferrum refuses: {e}"),
        (Go::Ok { nanos, components }, Ok(d)) => {
            let ours = d.as_nanos() as f64;
            let go = nanos as f64;
            // Go truncates each component to whole nanoseconds; Ferrum sums seconds in f64.
            let tolerance = 1.0 + f64::from(components) + go * 1e-12;
            assert!((ours - go).abs() <= tolerance, "{text:?}: Go {nanos}ns, Ferrum {}ns", d.as_nanos());
        }
    }
});
