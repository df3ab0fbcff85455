//! Which remote addresses are "local" for `report --exclude-local`
//! (per-UID Internet accounting): by default loopback, private (RFC 1918),
//! shared (CGNAT), link-local, unique-local, multicast, broadcast and
//! unspecified addresses. IPv4-mapped IPv6 addresses count as IPv4.

use netwho_query::{Cidr, canonical};
use std::net::IpAddr;

/// The networks `--exclude-local` leaves out unless told otherwise.
pub const DEFAULT_LOCAL: &[&str] = &[
    "0.0.0.0/8",
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "224.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
    "ff00::/8",
];

/// A list of local networks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalNets(Vec<Cidr>);

impl Default for LocalNets {
    fn default() -> Self {
        LocalNets(
            DEFAULT_LOCAL
                .iter()
                .filter_map(|s| Cidr::parse(s))
                .collect(),
        )
    }
}

impl LocalNets {
    /// `--local-nets LIST`: networks separated by commas, replacing the
    /// default list; a list that starts with `+` adds to it instead.
    pub fn parse(spec: &str) -> Result<LocalNets, String> {
        let (mut nets, list) = match spec.strip_prefix('+') {
            Some(rest) => (LocalNets::default().0, rest),
            None => (Vec::new(), spec),
        };
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            nets.push(Cidr::parse(part).ok_or_else(|| {
                format!("'{part}' is not an address or network (like 10.0.0.0/8 or fd00::/8)")
            })?);
        }
        Ok(LocalNets(nets))
    }

    /// Whether `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_list_keeps_only_internet_addresses() {
        let l = LocalNets::default();
        for local in [
            "127.0.0.1",
            "10.231.1.1",
            "172.31.255.1",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.1.1",
            "224.0.0.251",
            "239.255.255.250",
            "255.255.255.255",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fd00:231::1",
            "fc00::1",
            "ff02::fb",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(l.contains(ip(local)), "{local} is local");
        }
        for internet in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
            "2001:db8::1",
        ] {
            assert!(!l.contains(ip(internet)), "{internet} is not local");
        }
    }

    #[test]
    fn the_list_can_be_replaced_or_extended() {
        let l = LocalNets::parse("10.231.1.0/24, fd00:231::/64").unwrap();
        assert!(l.contains(ip("10.231.1.9")));
        assert!(!l.contains(ip("10.231.2.9")));
        assert!(!l.contains(ip("127.0.0.1")));
        let l = LocalNets::parse("+93.184.216.0/24").unwrap();
        assert!(l.contains(ip("93.184.216.34")) && l.contains(ip("127.0.0.1")));
        assert!(
            LocalNets::parse("10.0.0.0/33")
                .unwrap_err()
                .contains("10.0.0.0/33")
        );
    }
}
