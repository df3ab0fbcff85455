//! The daemon's side: the export sink's fleet records (JSON lines) come
//! to [`FleetDestination`] on the output's writer thread, which spools
//! them; a thread of its own publishes the spool to JetStream in order,
//! a few batches in flight, and removes a batch once it is acknowledged.
//! When NATS is away nothing is lost: batches wait in the spool (up to its
//! bound) and go out, oldest first, when it is back.

use crate::spool::{Batch, Spool};
use crate::{FleetError, HOST_HEADER, RECORDS_HEADER, subject_for};
use async_nats::jetstream;
use netwho_export::net::Complaints;
use netwho_export::net::Delivery;
use netwho_sink::output::Destination;
use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Clone, Debug, PartialEq, Eq)]
/// How the daemon publishes to the fleet.
pub struct FleetConfig {
    /// `nats://HOST:PORT`.
    pub url: String,
    /// This host's name in the fleet.
    pub host: String,
    /// Where batches wait while NATS is away.
    pub spool_dir: PathBuf,
    /// Bytes the spool may hold while NATS is away.
    pub spool_max: u64,
    /// How long the daemon waits at exit for the spool to drain.
    pub drain: Duration,
}

/// Largest batch (one JetStream message; NATS's default limit is 1 MiB).
const MAX_BATCH: usize = 256 * 1024;
/// Batches published and not yet acknowledged.
const WINDOW: usize = 16;
/// How long an acknowledgement may take.
const ACK_WAIT: Duration = Duration::from_secs(5);
const RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Shared {
    wake: Notify,
    stop: AtomicBool,
}

/// An output destination that publishes to the fleet.
#[derive(Debug)]
pub struct FleetDestination {
    spool: Arc<Spool>,
    shared: Arc<Shared>,
    delivery: Arc<Delivery>,
    publisher: Option<JoinHandle<()>>,
    complaints: Complaints,
}

/// A fresh message-id prefix for this run.
fn instance() -> String {
    let mut b = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut b))
        .is_ok();
    if !random {
        // (no /dev/urandom: the pid and the address of a stack value)
        let x = (u64::from(std::process::id()) << 32) ^ (&raw const b as usize as u64);
        b = x.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl FleetDestination {
    /// Opens the spool (keeping what an earlier run left) and starts the
    /// publisher. `delivery`: batches sent, records lost for room.
    pub fn start(cfg: FleetConfig, delivery: Arc<Delivery>) -> Result<Self, FleetError> {
        let spool = Arc::new(Spool::open(&cfg.spool_dir, cfg.spool_max, instance())?);
        let (batches, records, _) = spool.pending();
        if batches > 0 {
            log::info!(
                "fleet: {records} records in {batches} batches wait in {} from an earlier run; they go first",
                cfg.spool_dir.display()
            );
        }
        let shared = Arc::new(Shared::default());
        let publisher = {
            let (spool, shared, delivery) = (spool.clone(), shared.clone(), delivery.clone());
            std::thread::Builder::new()
                .name("netwho-fleet".into())
                .spawn(move || {
                    netwho_enrich::caps::drop_all_here("the fleet publisher");
                    publisher(&cfg, &spool, &shared, &delivery);
                })
                .map_err(FleetError::Runtime)?
        };
        Ok(FleetDestination {
            complaints: Complaints::new(format!("fleet spool {}", spool.dir().display()), ""),
            spool,
            shared,
            delivery,
            publisher: Some(publisher),
        })
    }
}

/// Batches of whole lines, at most `MAX_BATCH` bytes each (a longer line
/// is a batch of its own), with their line counts.
fn batches(chunk: &[u8]) -> Vec<(&[u8], u32)> {
    let mut out = Vec::new();
    let (mut start, mut end, mut lines) = (0, 0, 0u32);
    for (i, b) in chunk.iter().enumerate() {
        if *b != b'\n' {
            continue;
        }
        if i + 1 - start > MAX_BATCH && end > start {
            out.push((&chunk[start..end], lines));
            (start, lines) = (end, 0);
        }
        end = i + 1;
        lines += 1;
    }
    if end > start {
        out.push((&chunk[start..end], lines));
    }
    out
}

impl Destination for FleetDestination {
    fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        for (batch, records) in batches(chunk) {
            match self.spool.push(batch, records) {
                Ok(lost) => {
                    if lost > 0 {
                        self.delivery.lost.fetch_add(lost, Ordering::Relaxed);
                        self.complaints.failed(&format_args!(
                            "full; dropped the oldest {lost} records (NATS unreachable for long? raise fleet.spool_max)"
                        ));
                    }
                }
                Err(e) => {
                    // a full disk loses these records, not the daemon
                    self.delivery
                        .lost
                        .fetch_add(u64::from(records), Ordering::Relaxed);
                    self.complaints.failed(&e);
                }
            }
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
        if let Some(p) = self.publisher.take() {
            let _ = p.join();
        }
        let (batches, records, _) = self.spool.pending();
        if batches > 0 {
            log::warn!(
                "fleet: {records} records stay spooled in {}; the next start sends them",
                self.spool.dir().display()
            );
        }
        Ok(())
    }
}

impl Drop for FleetDestination {
    fn drop(&mut self) {
        if self.publisher.is_some() {
            let _ = self.close();
        }
    }
}

fn publisher(cfg: &FleetConfig, spool: &Spool, shared: &Shared, delivery: &Delivery) {
    match crate::runtime() {
        Ok(rt) => rt.block_on(Publisher::new(cfg, spool, shared, delivery).run()),
        Err(e) => log::error!("fleet: {e}; records stay in the spool"),
    }
}

struct Publisher<'a> {
    cfg: &'a FleetConfig,
    spool: &'a Spool,
    shared: &'a Shared,
    delivery: &'a Delivery,
    subject: String,
    complaints: Complaints,
    /// When the drain at exit ends.
    deadline: Option<tokio::time::Instant>,
}

impl<'a> Publisher<'a> {
    fn new(
        cfg: &'a FleetConfig,
        spool: &'a Spool,
        shared: &'a Shared,
        delivery: &'a Delivery,
    ) -> Self {
        Publisher {
            cfg,
            spool,
            shared,
            delivery,
            subject: subject_for(&cfg.host),
            complaints: Complaints::new(format!("fleet: NATS {}", cfg.url), ""),
            deadline: None,
        }
    }

    /// Stopping, and nothing waits or the drain is over.
    fn done(&mut self) -> bool {
        if !self.shared.stop.load(Ordering::Relaxed) {
            return false;
        }
        let deadline = *self
            .deadline
            .get_or_insert_with(|| tokio::time::Instant::now() + self.cfg.drain);
        self.spool.pending().0 == 0 || tokio::time::Instant::now() >= deadline
    }

    /// Sleeps `d`, or less when records come or the run stops.
    async fn pause(&self, d: Duration) {
        let _ = tokio::time::timeout(d, self.shared.wake.notified()).await;
    }

    async fn run(mut self) {
        let client = loop {
            if self.done() {
                return;
            }
            let opts = async_nats::ConnectOptions::new()
                .name(format!("netwho daemon {}", self.cfg.host))
                .connection_timeout(Duration::from_secs(3))
                .max_reconnects(None);
            match opts.connect(&self.cfg.url).await {
                Ok(c) => break c,
                Err(e) => {
                    self.complaints
                        .failed(&format_args!("{e}; records wait in the spool"));
                    self.pause(RETRY).await;
                }
            }
        };
        let js = jetstream::ContextBuilder::new()
            .timeout(ACK_WAIT)
            .build(client);
        log::info!(
            "fleet: publishing to {} as host '{}' (stream {}, subject {})",
            self.cfg.url,
            self.cfg.host,
            crate::STREAM,
            self.subject
        );
        let mut stream_ok = false;
        while !self.done() {
            if !stream_ok {
                match js.get_or_create_stream(crate::stream_config()).await {
                    Ok(_) => stream_ok = true,
                    Err(e) => {
                        self.complaints.failed(&format_args!(
                            "stream {}: {e}; records wait in the spool",
                            crate::STREAM
                        ));
                        self.pause(RETRY).await;
                        continue;
                    }
                }
            }
            match self.publish_all(&js).await {
                Ok(()) => self.pause(RETRY).await,
                Err(e) => {
                    let (_, records, _) = self.spool.pending();
                    self.complaints
                        .failed(&format_args!("{e}; {records} records wait in the spool"));
                    stream_ok = false;
                    self.pause(RETRY).await;
                }
            }
        }
    }

    /// Publishes what the spool holds, in order, until it is empty.
    async fn publish_all(&mut self, js: &jetstream::Context) -> Result<(), String> {
        let mut inflight: VecDeque<(u64, jetstream::context::PublishAckFuture)> = VecDeque::new();
        let mut last: Option<u64> = None;
        loop {
            while inflight.len() < WINDOW {
                let Some(b) = self.spool.next_after(last).map_err(|e| e.to_string())? else {
                    break;
                };
                last = Some(b.order);
                let ack = self.send(js, &b).await?;
                inflight.push_back((b.order, ack));
            }
            let Some((order, ack)) = inflight.pop_front() else {
                return Ok(());
            };
            ack.await.map_err(|e| e.to_string())?;
            self.spool.remove(order).map_err(|e| e.to_string())?;
            self.delivery.sent.fetch_add(1, Ordering::Relaxed);
            self.complaints.recovered("delivering again");
        }
    }

    async fn send(
        &self,
        js: &jetstream::Context,
        b: &Batch,
    ) -> Result<jetstream::context::PublishAckFuture, String> {
        let mut h = async_nats::HeaderMap::new();
        h.insert(async_nats::header::NATS_MESSAGE_ID, b.msg_id.as_str());
        h.insert(HOST_HEADER, self.cfg.host.as_str());
        h.insert(RECORDS_HEADER, b.records.to_string().as_str());
        js.publish_with_headers(self.subject.clone(), h, b.payload.clone().into())
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_into_batches_of_whole_lines() {
        let line = |n: usize| {
            let mut v = vec![b'x'; n - 1];
            v.push(b'\n');
            v
        };
        let mut chunk = Vec::new();
        for _ in 0..3 {
            chunk.extend(line(100_000));
        }
        chunk.extend(line(MAX_BATCH + 10));
        chunk.extend(line(5));
        let b = batches(&chunk);
        let sizes: Vec<(usize, u32)> = b.iter().map(|(s, n)| (s.len(), *n)).collect();
        assert_eq!(
            sizes,
            vec![(200_000, 2), (100_000, 1), (MAX_BATCH + 10, 1), (5, 1)]
        );
        assert_eq!(b.iter().map(|x| x.0).collect::<Vec<_>>().concat(), chunk);
        assert!(batches(b"").is_empty());
        // a chunk always ends with a newline; a stray tail would be kept out
        assert_eq!(batches(b"a\nb").len(), 1);
    }

    #[test]
    fn instances_differ() {
        assert_ne!(instance(), instance());
        assert_eq!(instance().len(), 16);
    }
}
