//! Traffic history of one row: bytes sent and received per slot of
//! [`SLOT_NS`], the last [`SLOTS`] slots (ten minutes). Slots are numbered
//! by boot time, so histories of different rows line up and can be added.

use netwho_model::MonoNs;

/// Length of one slot: 10 s.
pub const SLOT_NS: u64 = 10_000_000_000;
/// Slots kept: ten minutes.
pub const SLOTS: usize = 60;

#[derive(Clone, Debug, PartialEq, Eq)]
/// A row's rates over the last ten minutes, in slots.
pub struct Hist {
    /// Slot number (boot time / SLOT_NS) of the newest slot.
    head: u64,
    /// `ring[head % SLOTS]` is the newest slot; [sent, recv].
    ring: [[u64; 2]; SLOTS],
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            head: 0,
            ring: [[0; 2]; SLOTS],
        }
    }
}

fn slot_of(at: MonoNs) -> u64 {
    at.0 / SLOT_NS
}

impl Hist {
    /// Move the newest slot up to `slot`, clearing the ones skipped.
    fn advance(&mut self, slot: u64) {
        if slot <= self.head {
            return;
        }
        let skipped = (slot - self.head).min(SLOTS as u64);
        for i in 0..skipped {
            let s = slot - i;
            self.ring[(s % SLOTS as u64) as usize] = [0; 2];
        }
        self.head = slot;
    }

    /// Bytes that moved at `at` (late bytes of an older slot still kept go
    /// to that slot; older ones are dropped with their slot).
    pub fn add(&mut self, at: MonoNs, sent: u64, recv: u64) {
        let slot = slot_of(at);
        self.advance(slot);
        if self.head - slot >= SLOTS as u64 {
            return;
        }
        let r = &mut self.ring[(slot % SLOTS as u64) as usize];
        r[0] = r[0].saturating_add(sent);
        r[1] = r[1].saturating_add(recv);
    }

    /// Add another row's history (both are first moved to `now`).
    pub fn merge(&mut self, other: &Hist, now: MonoNs) {
        self.advance(slot_of(now));
        let mut o = other.clone();
        o.advance(slot_of(now));
        for (a, b) in self.ring.iter_mut().zip(o.ring.iter()) {
            a[0] = a[0].saturating_add(b[0]);
            a[1] = a[1].saturating_add(b[1]);
        }
    }

    /// The last `n` slots up to `now`, oldest first: [sent, recv] each.
    pub fn last(&self, n: usize, now: MonoNs) -> Vec<[u64; 2]> {
        let now_slot = slot_of(now).max(self.head);
        let n = n.min(SLOTS);
        (0..n as u64)
            .rev()
            .map(|back| {
                let Some(s) = now_slot.checked_sub(back) else {
                    return [0; 2];
                };
                if s > self.head || self.head - s >= SLOTS as u64 {
                    [0; 2]
                } else {
                    self.ring[(s % SLOTS as u64) as usize]
                }
            })
            .collect()
    }
}

/// One line of block characters for a series, scaled to its own maximum
/// (a zero is a blank, anything else at least the lowest block).
pub fn sparkline(values: &[u64]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if v == 0 || max == 0 {
                ' '
            } else {
                let i = ((v as f64 / max as f64) * 7.0).round() as usize;
                BLOCKS[i.min(7)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> MonoNs {
        MonoNs(s * 1_000_000_000)
    }

    #[test]
    fn slots_hold_ten_seconds_each_and_old_ones_fall_off() {
        let mut h = Hist::default();
        h.add(at(1000), 10, 1);
        h.add(at(1005), 5, 0);
        h.add(at(1012), 7, 2);
        assert_eq!(h.last(3, at(1015)), [[0, 0], [15, 1], [7, 2]]);
        // nothing new for 30 s: three empty slots follow
        assert_eq!(h.last(4, at(1045)), [[7, 2], [0, 0], [0, 0], [0, 0]]);
        // eleven minutes later the old slots are gone, also after an add
        h.add(at(1000 + 660), 1, 1);
        assert_eq!(h.last(SLOTS, at(1660)).iter().map(|s| s[0]).sum::<u64>(), 1);
        // a late add for a slot older than ten minutes is dropped
        h.add(at(1000), 100, 100);
        assert_eq!(h.last(SLOTS, at(1660)).iter().map(|s| s[0]).sum::<u64>(), 1);
    }

    #[test]
    fn merged_histories_add_slot_by_slot() {
        let mut a = Hist::default();
        let mut b = Hist::default();
        a.add(at(100), 1, 0);
        b.add(at(100), 2, 0);
        b.add(at(125), 0, 4);
        a.merge(&b, at(125));
        assert_eq!(a.last(3, at(125)), [[3, 0], [0, 0], [0, 4]]);
    }

    #[test]
    fn sparklines_scale_to_their_maximum() {
        assert_eq!(sparkline(&[0, 1, 4, 8]), " ▂▅█");
        assert_eq!(sparkline(&[0, 0]), "  ");
    }
}
