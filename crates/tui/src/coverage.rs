//! Coverage: the share of this network namespace's interface bytes that
//! netwho attributed to a flow, since the view started. Interfaces count
//! link-layer frames; flows count IP packets, so the Ethernet header (14
//! bytes a packet, loopback too) is taken off the interface side first.
//! Forwarded traffic and traffic that is not IP are not any process's:
//! on a router the share is low, and that is the truth.

use crate::state::model::Model;
use std::collections::HashMap;

/// One interface's counters from `/proc/net/dev`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfCounters {
    pub name: String,
    pub bytes: u64,
    pub packets: u64,
}

/// Parse `/proc/net/dev` (rx and tx added up).
pub fn parse_net_dev(text: &[u8]) -> Vec<IfCounters> {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let v: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().ok())
                .collect::<Option<Vec<u64>>>()?;
            if v.len() < 10 {
                return None;
            }
            Some(IfCounters {
                name: name.trim().to_string(),
                bytes: v[0].saturating_add(v[8]),
                packets: v[1].saturating_add(v[9]),
            })
        })
        .collect()
}

/// Link-layer header bytes per packet: Ethernet and loopback devices.
fn l2_header(name: &str) -> u64 {
    let t = std::fs::read_to_string(format!("/sys/class/net/{name}/type")).unwrap_or_default();
    match t.trim() {
        // ARPHRD_ETHER, ARPHRD_LOOPBACK
        "1" | "772" => 14,
        _ => 0,
    }
}

#[derive(Debug)]
pub struct Coverage {
    netns: u32,
    base: Option<(u64, u64)>,
    /// Link-layer header bytes per interface (read once per interface).
    l2: HashMap<String, u64>,
}

impl Coverage {
    pub fn new(netns: u32) -> Self {
        Coverage {
            netns,
            base: None,
            l2: HashMap::new(),
        }
    }

    /// IP bytes through this namespace's interfaces so far.
    fn ip_bytes(&mut self) -> Option<u64> {
        let text = std::fs::read("/proc/net/dev").ok()?;
        let mut sum = 0u64;
        for c in parse_net_dev(&text) {
            let h = *self.l2.entry(c.name).or_insert_with_key(|n| l2_header(n));
            sum = sum.saturating_add(c.bytes.saturating_sub(c.packets.saturating_mul(h)));
        }
        Some(sum)
    }

    /// The share since the first call (None until 64 KiB went through).
    pub fn update(&mut self, m: &Model) -> Option<f64> {
        let iface = self.ip_bytes()?;
        let attributed = m.wire_bytes(self.netns);
        let (i0, a0) = *self.base.get_or_insert((iface, attributed));
        let di = iface.saturating_sub(i0);
        (di >= 65536).then(|| attributed.saturating_sub(a0) as f64 / di as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_adds_receive_and_transmit() {
        let t = b"Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo: 1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n  \
eth0: 5000 20 0 0 0 0 0 0 700 7 0 0 0 0 0 0\n";
        let c = parse_net_dev(t);
        assert_eq!(
            c,
            [
                IfCounters {
                    name: "lo".into(),
                    bytes: 2000,
                    packets: 20
                },
                IfCounters {
                    name: "eth0".into(),
                    bytes: 5700,
                    packets: 27
                },
            ]
        );
    }
}
