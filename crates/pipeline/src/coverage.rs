//! Coverage: the share of the collector's network namespace's IP bytes
//! that netwho attributed to a flow, since the run started — computed once
//! here and carried in every status record, so the log, the API, the
//! metrics and the view all show the same figure. The interface side is
//! `/proc/net/dev` (link-layer headers taken off, `enrich::net`); the
//! attributed side is the flow table's wire bytes in that namespace.

use netwho_sink::status::Coverage;
use std::collections::HashMap;

/// The share is shown once this much went through the interfaces.
const SHOWN_AFTER: u64 = 65536;

/// The baseline and what is needed to read the interfaces.
#[derive(Debug)]
pub struct CoverageMeter {
    netns: u32,
    base: Option<(u64, u64)>,
    l2: HashMap<String, u64>,
}

impl CoverageMeter {
    /// A meter for network namespace `netns` (the collector's own).
    pub fn new(netns: u32) -> Self {
        CoverageMeter {
            netns,
            base: None,
            l2: HashMap::new(),
        }
    }

    /// The namespace measured.
    pub fn netns(&self) -> u32 {
        self.netns
    }

    /// Coverage from the interfaces' IP bytes and the attributed bytes now
    /// (both cumulative); the first call sets the baseline.
    pub fn update(&mut self, interface: u64, attributed: u64) -> Coverage {
        let (i0, a0) = *self.base.get_or_insert((interface, attributed));
        let di = interface.saturating_sub(i0);
        let da = attributed.saturating_sub(a0);
        Coverage {
            netns: self.netns,
            interface_bytes: di,
            attributed_bytes: da,
            // at most 1: the two sides are read a moment apart, and count
            // the headers of segmented packets a little differently (the
            // byte counts beside it stay as measured)
            share: (di >= SHOWN_AFTER).then(|| (da as f64 / di as f64).min(1.0)),
        }
    }

    /// Read the interfaces, then [`update`](Self::update); None if
    /// `/proc/net/dev` cannot be read.
    pub fn measure(&mut self, attributed: u64) -> Option<Coverage> {
        let interface = netwho_enrich::net::interface_ip_bytes(&mut self.l2)?;
        Some(self.update(interface, attributed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_counts_from_the_start_and_waits_for_64_kib() {
        let mut m = CoverageMeter::new(9);
        // before the run: a million bytes that are nobody's business
        let c = m.update(1_000_000, 50);
        assert_eq!(
            (c.interface_bytes, c.attributed_bytes, c.share),
            (0, 0, None)
        );
        let c = m.update(1_010_000, 9_050);
        assert_eq!(c.share, None, "too little to say");
        let c = m.update(1_100_000, 97_550);
        assert_eq!((c.interface_bytes, c.attributed_bytes), (100_000, 97_500));
        assert_eq!(c.share, Some(0.975));
        assert_eq!(c.netns, 9);
        // a little more attributed than the interfaces carried: 100 %, not
        // 100.1 %
        let c = m.update(2_000_000, 1_001_050);
        assert_eq!((c.attributed_bytes, c.share), (1_001_000, Some(1.0)));
    }
}
