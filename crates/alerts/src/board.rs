//! The alerts the daemon shows: the newest, shared between the alert sink
//! (which posts them) and the API (which lists them, streams them and
//! takes acknowledgements), with the counters `/metrics` exports.

use crate::engine::Kind;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Alerts the board holds (the database keeps more).
pub const BOARD_MAX: usize = 1_000;

/// One alert as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    /// Its id (increasing; the database's).
    pub id: i64,
    /// The uid of the process it is about (who may see it).
    pub uid: u32,
    /// Its kind's name.
    pub kind: String,
    /// When (Unix ns).
    pub ts_ns: i64,
    /// The alert record (JSON).
    pub record: Arc<str>,
    /// When it was acknowledged (Unix ns).
    pub acked_ns: Option<i64>,
}

/// What the board counts, for `/metrics` and the status.
#[derive(Debug, Default)]
pub struct BoardCounts {
    /// Alerts raised, by [`Kind::index`].
    pub raised: [AtomicU64; 3],
    /// Flows an allow rule kept from alerting.
    pub allowed: AtomicU64,
    /// Alerts over the rate bound.
    pub suppressed: AtomicU64,
    /// Programs, destinations or hashes that did not fit the baseline.
    pub unlearned: AtomicU64,
    /// Alerts the webhook could not deliver (dropped).
    pub webhook_lost: AtomicU64,
    /// Webhook requests that failed (each try).
    pub webhook_failures: AtomicU64,
    /// Baseline writes the database refused.
    pub storage_failures: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    alerts: VecDeque<Posted>,
    /// Acknowledgements not yet written.
    acks: Vec<(i64, i64)>,
}

/// The newest alerts and the counters.
#[derive(Debug, Default)]
pub struct Board {
    inner: Mutex<Inner>,
    /// The counters.
    pub counts: BoardCounts,
    /// When learning ends (Unix ns).
    pub learn_until_ns: AtomicI64,
    /// Changes with every post or acknowledgement (streams wait on it).
    pub seq: AtomicU64,
}

/// Why an acknowledgement was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckError {
    /// No such alert on the board (or not the caller's).
    NotFound,
}

impl Board {
    /// An empty board.
    pub fn new() -> Arc<Board> {
        Arc::new(Board::default())
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // a panic elsewhere leaves the list usable
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an alert (the oldest goes past [`BOARD_MAX`]).
    pub fn post(&self, a: Posted) {
        let mut i = self.inner();
        if i.alerts.len() >= BOARD_MAX {
            i.alerts.pop_front();
        }
        i.alerts.push_back(a);
        drop(i);
        self.seq.fetch_add(1, Ordering::Release);
    }

    /// Counts one raised alert of `kind`.
    pub fn raised(&self, kind: Kind) {
        if let Some(c) = self.counts.raised.get(kind.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Alerts with an id above `after`, oldest first, at most `limit`;
    /// `uid`: only those about that user's processes.
    pub fn list(&self, uid: Option<u32>, after: i64, limit: usize) -> Vec<Posted> {
        let i = self.inner();
        let mut out: Vec<Posted> = i
            .alerts
            .iter()
            .rev()
            .filter(|a| a.id > after && uid.is_none_or(|u| a.uid == u))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// Acknowledges alert `id` at `now_ns` (`uid`: only that user's).
    pub fn ack(&self, id: i64, uid: Option<u32>, now_ns: i64) -> Result<Posted, AckError> {
        let mut i = self.inner();
        let a = i
            .alerts
            .iter_mut()
            .find(|a| a.id == id && uid.is_none_or(|u| a.uid == u))
            .ok_or(AckError::NotFound)?;
        if a.acked_ns.is_none() {
            a.acked_ns = Some(now_ns);
            let done = a.clone();
            i.acks.push((id, now_ns));
            drop(i);
            self.seq.fetch_add(1, Ordering::Release);
            return Ok(done);
        }
        Ok(a.clone())
    }

    /// Acknowledgements to write, taken.
    pub fn take_acks(&self) -> Vec<(i64, i64)> {
        std::mem::take(&mut self.inner().acks)
    }

    /// Acknowledgements that could not be handed to the writer yet, back
    /// for the next turn.
    pub fn return_acks(&self, mut acks: Vec<(i64, i64)>) {
        let mut i = self.inner();
        acks.append(&mut i.acks);
        i.acks = acks;
    }

    /// Raised alerts by kind, with the kinds' names.
    pub fn raised_by_kind(&self) -> [(&'static str, u64); 3] {
        Kind::ALL.map(|k| {
            (
                k.name(),
                self.counts
                    .raised
                    .get(k.index())
                    .map_or(0, |c| c.load(Ordering::Relaxed)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(id: i64, uid: u32) -> Posted {
        Posted {
            id,
            uid,
            kind: "new_program".into(),
            ts_ns: id,
            record: Arc::from("{}"),
            acked_ns: None,
        }
    }

    #[test]
    fn users_see_and_acknowledge_only_their_own() {
        let b = Board::new();
        for id in 1..=5 {
            b.post(posted(id, if id % 2 == 0 { 1000 } else { 1001 }));
        }
        let ids = |v: Vec<Posted>| v.iter().map(|a| a.id).collect::<Vec<_>>();
        assert_eq!(ids(b.list(None, 0, 10)), vec![1, 2, 3, 4, 5]);
        assert_eq!(ids(b.list(Some(1000), 0, 10)), vec![2, 4]);
        assert_eq!(ids(b.list(None, 3, 10)), vec![4, 5]);
        assert_eq!(ids(b.list(None, 0, 2)), vec![4, 5], "the newest");
        assert_eq!(b.ack(3, Some(1000), 9), Err(AckError::NotFound));
        assert_eq!(b.ack(4, Some(1000), 9).map(|a| a.acked_ns), Ok(Some(9)));
        assert_eq!(b.ack(4, None, 10).map(|a| a.acked_ns), Ok(Some(9)));
        assert_eq!(b.take_acks(), vec![(4, 9)]);
    }

    #[test]
    fn the_board_is_bounded() {
        let b = Board::new();
        for id in 0..(BOARD_MAX as i64 + 50) {
            b.post(posted(id, 0));
        }
        let all = b.list(None, -1, usize::MAX);
        assert_eq!(all.len(), BOARD_MAX);
        assert_eq!(all.first().map(|a| a.id), Some(50));
    }
}
