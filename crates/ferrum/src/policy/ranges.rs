//! IP ranges in CIDR notation.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A checked CIDR range: its network address has no host bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses `address/prefix`; the error says what is wrong, for a person.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let not_cidr = || "not a CIDR range such as 10.0.0.0/8 or fd00::/8".to_owned();
        let (address, prefix) = text.split_once('/').ok_or_else(not_cidr)?;
        let address: IpAddr = address.parse().map_err(|_| not_cidr())?;
        if prefix.is_empty()
            || !prefix.bytes().all(|b| b.is_ascii_digit())
            || (prefix.len() > 1 && prefix.starts_with('0'))
        {
            return Err(not_cidr());
        }
        let bits = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let family = if bits == 32 { "IPv4" } else { "IPv6" };
        let prefix: u8 = match prefix.parse() {
            Ok(p) if p <= bits => p,
            _ => return Err(format!("prefix /{prefix} is longer than {bits}, the length of an {family} address")),
        };
        let network = masked(address, prefix);
        if network != address {
            return Err(format!("host bits set; did you mean {network}/{prefix}?"));
        }
        Ok(Self { network, prefix })
    }

    /// Whether `ip` lies in the range. An address matches only a range of its own family: an
    /// IPv4-mapped IPv6 address is not in an IPv4 range, nor an IPv4 address in `::ffff:0:0/96`.
    pub(super) fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => masked(ip, self.prefix) == self.network,
            _ => false,
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `ip` with every bit after the first `prefix` cleared (`prefix` at most the address length).
fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_ranges() {
        let table = [
            ("10.0.0.0", "not a CIDR range such as 10.0.0.0/8 or fd00::/8"),
            ("10.0.0.0/", "not a CIDR range such as 10.0.0.0/8 or fd00::/8"),
            ("10.0.0/8", "not a CIDR range such as 10.0.0.0/8 or fd00::/8"),
            ("10.0.0.0/+8", "not a CIDR range such as 10.0.0.0/8 or fd00::/8"),
            ("10.0.0.0/08", "not a CIDR range such as 10.0.0.0/8 or fd00::/8"),
            ("example.com/8", "not a CIDR range such as 10.0.0.0/8 or fd00::/8"),
            ("10.0.0.0/33", "prefix /33 is longer than 32, the length of an IPv4 address"),
            ("fd00::/129", "prefix /129 is longer than 128, the length of an IPv6 address"),
            ("10.0.0.0/999", "prefix /999 is longer than 32, the length of an IPv4 address"),
            ("10.1.0.0/8", "host bits set; did you mean 10.0.0.0/8?"),
            ("192.168.1.1/24", "host bits set; did you mean 192.168.1.0/24?"),
            ("fd00::1/8", "host bits set; did you mean fd00::/8?"),
        ];
        for (text, message) in table {
            assert_eq!(IpRange::parse(text).unwrap_err(), message, "{text}");
        }
    }

    #[test]
    fn membership() {
        // (range, address, inside)
        let table = [
            ("10.0.0.0/8", "10.255.0.1", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.1.2.3/32", "10.1.2.3", true),
            ("10.1.2.3/32", "10.1.2.4", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "::1", false),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::/0", "2001:db8::1", true),
            ("::/0", "10.0.0.1", false),
            // No family crossing in either direction.
            ("10.0.0.0/8", "::ffff:10.0.0.1", false),
            ("::ffff:0:0/96", "10.0.0.1", false),
            ("::ffff:0:0/96", "::ffff:10.0.0.1", true),
        ];
        for (range, address, inside) in table {
            let range = IpRange::parse(range).unwrap();
            assert_eq!(range.contains(address.parse().unwrap()), inside, "{range} {address}");
        }
        assert_eq!(IpRange::parse("fd00::/8").unwrap().to_string(), "fd00::/8");
    }
}
