//! Sharing a socket's wire counters among the flows that use it.
//!
//! Packets are counted per (socket, remote) in softirq, where no process is
//! known. Almost always one process uses a socket and gets everything. When
//! several do (a socket shared after fork), each gets a share of the wire
//! counters in proportion to its payload in that direction; shares are
//! integers that always add up to the socket's total (largest remainder to
//! the heaviest flow). A flow that closes keeps the share it had; later
//! packets go to the flows still open.

use crate::flow::Wire;

/// Split `total` in proportion to `weights`. If every weight is zero the
/// first entry takes all. The result has `weights.len()` entries and sums to
/// `total` exactly.
pub(crate) fn split(total: u64, weights: &[u64]) -> Vec<u64> {
    let mut out = vec![0u64; weights.len()];
    if out.is_empty() {
        return out;
    }
    let sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    if sum == 0 {
        out[0] = total;
        return out;
    }
    let mut given: u64 = 0;
    for (o, w) in out.iter_mut().zip(weights) {
        // total * w / sum <= total, so it fits in u64
        *o = u64::try_from(u128::from(total) * u128::from(*w) / sum).unwrap_or(u64::MAX);
        given += *o;
    }
    let heaviest = weights
        .iter()
        .enumerate()
        .max_by_key(|(i, w)| (**w, std::cmp::Reverse(*i)))
        .map_or(0, |(i, _)| i);
    out[heaviest] += total - given;
    out
}

/// Shares of `remaining` wire counters for flows with the given payload
/// (sent, received) weights.
pub(crate) fn share(remaining: Wire, weights: &[(u64, u64)]) -> Vec<Wire> {
    let sent: Vec<u64> = weights.iter().map(|w| w.0).collect();
    let recv: Vec<u64> = weights.iter().map(|w| w.1).collect();
    let bs = split(remaining.bytes_sent, &sent);
    let ps = split(remaining.packets_sent, &sent);
    let br = split(remaining.bytes_recv, &recv);
    let pr = split(remaining.packets_recv, &recv);
    (0..weights.len())
        .map(|i| Wire {
            bytes_sent: bs[i],
            bytes_recv: br[i],
            packets_sent: ps[i],
            packets_recv: pr[i],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_flow_takes_everything() {
        assert_eq!(split(1234, &[0]), vec![1234]);
        assert_eq!(split(1234, &[55]), vec![1234]);
    }

    #[test]
    fn shares_are_proportional_and_exact() {
        let s = split(1000, &[1, 1, 1]);
        assert_eq!(s.iter().sum::<u64>(), 1000);
        assert_eq!(s, vec![334, 333, 333]);
        let s = split(10_000_000, &[9_000_000, 1_000_000]);
        assert_eq!(s, vec![9_000_000, 1_000_000]);
    }

    #[test]
    fn no_payload_yet_goes_to_the_first_flow() {
        assert_eq!(split(60, &[0, 0]), vec![60, 0]);
    }

    #[test]
    fn large_values_do_not_overflow() {
        let s = split(u64::MAX, &[u64::MAX, u64::MAX]);
        assert_eq!(
            s.iter().map(|v| u128::from(*v)).sum::<u128>(),
            u128::from(u64::MAX)
        );
    }

    #[test]
    fn directions_are_weighted_separately() {
        let w = Wire {
            bytes_sent: 100,
            bytes_recv: 100,
            packets_sent: 10,
            packets_recv: 10,
        };
        let s = share(w, &[(1, 0), (0, 1)]);
        assert_eq!(s[0].bytes_sent, 100);
        assert_eq!(s[0].bytes_recv, 0);
        assert_eq!(s[1].bytes_recv, 100);
        assert_eq!(s[1].packets_recv, 10);
    }
}
