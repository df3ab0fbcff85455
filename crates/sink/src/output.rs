//! Where sinks write: a writer thread behind a bounded channel.
//!
//! Sinks encode records into a buffer in the pipeline's thread; `flush`
//! hands the buffer to the writer as one chunk. If the destination is slower
//! than the events (a paused terminal, a slow disk), chunks queue up to the
//! channel's bound; beyond it a chunk is dropped and its records counted,
//! so the sensor never stalls and loss is never silent. A closed
//! destination (`netwho log | head`) ends the run cleanly.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// Output kept in memory, readable while another thread writes it: what
/// tests and benchmarks give a sink in place of a file (clones share the
/// bytes).
#[derive(Clone, Debug, Default)]
pub struct MemoryOutput(Arc<std::sync::Mutex<Vec<u8>>>);

impl MemoryOutput {
    /// The bytes written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The bytes written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

impl Write for MemoryOutput {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the writer thread puts chunks: a plain writer, or a log file that
/// rotates and chains (`netwho_auditlog::logfile`).
pub trait Destination: Send {
    /// Write one chunk of whole lines.
    fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()>;
    /// `records` records were dropped before the next chunk (the queue
    /// was full). A chained log writes a `gap` record, so that the hole is
    /// in the chain itself, never verified over as intact.
    fn lost(&mut self, records: u64) -> io::Result<()> {
        let _ = records;
        Ok(())
    }
    /// Called about once a second while nothing comes (time-based work).
    fn idle(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// The run is over: write what ends the output, release it.
    fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Any writer, chunk by chunk.
struct Plain(Box<dyn Write + Send>);

impl Destination for Plain {
    fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.0.write_all(chunk)?;
        self.0.flush()
    }
}

/// Chunks (one per flush, about a tenth of a second of output) that may
/// wait for the writer.
const QUEUE_CHUNKS: usize = 1024;

/// A chunk for the writer, with the records dropped just before it.
type Chunk = (u64, Vec<u8>);

/// A buffer starts with this much room.
const BUF_START: usize = 64 * 1024;
/// Written chunks go back to be filled again (a buffer that grew to a
/// tenth of a second of output is not grown again, copy by copy, for the
/// next one), unless they grew beyond this in a burst.
const BUF_KEEP: usize = 4 << 20;

/// A sink's way out: records are encoded into [`Output::buf`], handed to a
/// writer thread over a bounded queue in chunks, and counted as dropped
/// when the writer cannot keep up (never blocking the collector).
#[derive(Debug)]
pub struct Output {
    tx: Option<SyncSender<Chunk>>,
    /// Written chunks, emptied, to be filled again.
    spare: Receiver<Vec<u8>>,
    writer: Option<JoinHandle<io::Result<()>>>,
    closed: Arc<AtomicBool>,
    buf: Vec<u8>,
    buffered_records: u64,
    /// Records lost because the writer could not keep up.
    pub dropped_records: u64,
    /// Of those, the ones the writer has not been told about yet.
    untold: u64,
}

impl Output {
    /// Standard output, written by a thread of its own.
    pub fn stdout() -> Self {
        Self::spawn(Box::new(io::stdout()))
    }

    /// Standard error, written by a thread of its own.
    pub fn stderr() -> Self {
        Self::spawn(Box::new(io::stderr()))
    }

    /// Write into any writer (tests use a shared buffer).
    pub fn spawn(w: Box<dyn Write + Send>) -> Self {
        Self::spawn_to(Box::new(Plain(w)))
    }

    /// Write into a destination, from a thread of its own.
    pub fn spawn_to(mut dest: Box<dyn Destination>) -> Self {
        let (tx, rx) = sync_channel::<Chunk>(QUEUE_CHUNKS);
        let (back, spare) = sync_channel::<Vec<u8>>(2);
        let closed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&closed);
        let writer = std::thread::Builder::new()
            .name("netwho-output".into())
            .spawn(move || {
                // it writes to what it was given: no privilege needed
                netwho_enrich::caps::drop_all_here("the output writer");
                let r = (|| {
                    loop {
                        match rx.recv_timeout(Duration::from_secs(1)) {
                            Ok((lost, chunk)) => {
                                if lost > 0 {
                                    dest.lost(lost)?;
                                }
                                if !chunk.is_empty() {
                                    dest.write_chunk(&chunk)?;
                                }
                                if chunk.capacity() <= BUF_KEEP {
                                    let mut chunk = chunk;
                                    chunk.clear();
                                    // (none wanted now: it is freed)
                                    let _ = back.try_send(chunk);
                                }
                            }
                            Err(RecvTimeoutError::Timeout) => dest.idle()?,
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                    }
                    dest.close()
                })();
                flag.store(true, Ordering::Relaxed);
                r
            })
            .ok();
        if writer.is_none() {
            closed.store(true, Ordering::Relaxed);
        }
        Output {
            tx: Some(tx),
            spare,
            writer,
            closed,
            buf: Vec::with_capacity(BUF_START),
            buffered_records: 0,
            dropped_records: 0,
            untold: 0,
        }
    }

    /// Encode one record into the returned buffer, then call `record_done`.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// One more record is complete in the buffer (drops are counted in
    /// records).
    pub fn record_done(&mut self) {
        self.buffered_records += 1;
    }

    /// The destination is gone (closed pipe, I/O error).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Hand what is buffered to the writer. Returns false once the
    /// destination is closed.
    pub fn flush(&mut self) -> bool {
        if self.buf.is_empty() {
            return !self.is_closed();
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.buf.len().clamp(BUF_START, BUF_KEEP)));
        let chunk = std::mem::replace(&mut self.buf, next);
        let n = std::mem::take(&mut self.buffered_records);
        match self.tx.as_ref().map(|tx| tx.try_send((self.untold, chunk))) {
            Some(Ok(())) => self.untold = 0,
            Some(Err(TrySendError::Full(_))) => {
                self.dropped_records += n;
                self.untold += n;
            }
            Some(Err(TrySendError::Disconnected(_))) | None => {
                self.dropped_records += n;
                self.closed.store(true, Ordering::Relaxed);
            }
        }
        !self.is_closed()
    }

    /// `flush`, as a sink reports it.
    pub fn flush_control(&mut self) -> crate::SinkControl {
        if self.flush() {
            crate::SinkControl::Continue
        } else {
            crate::SinkControl::Closed
        }
    }

    /// Flush, wait for the writer to finish, and report its error if any
    /// (a closed pipe is not an error: the reader just stopped reading).
    pub fn finish(&mut self) -> io::Result<()> {
        if (!self.buf.is_empty() || self.untold > 0)
            && let Some(tx) = &self.tx
        {
            // at exit, wait for room instead of dropping the last records
            // (and say what was lost before them)
            let chunk = std::mem::take(&mut self.buf);
            if tx.send((std::mem::take(&mut self.untold), chunk)).is_err() {
                self.dropped_records += std::mem::take(&mut self.buffered_records);
            }
        }
        self.tx = None;
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
            Some(Err(_)) => Err(io::Error::other("output thread panicked")),
            _ => Ok(()),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    type Shared = MemoryOutput;

    /// A writer that blocks until released, to fill the queue.
    struct Gate(Arc<Mutex<()>>);
    impl Write for Gate {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            drop(self.0.lock().unwrap());
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn records_arrive_whole_and_in_order() {
        let sink = Shared::default();
        let mut o = Output::spawn(Box::new(sink.clone()));
        for i in 0..100 {
            o.buf().extend_from_slice(format!("line {i}\n").as_bytes());
            o.record_done();
            if i % 7 == 0 {
                assert!(o.flush());
            }
        }
        o.finish().unwrap();
        let text = String::from_utf8(sink.bytes()).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 100);
        assert_eq!(lines[99], "line 99");
        assert_eq!(o.dropped_records, 0);
    }

    #[test]
    fn buffers_given_back_by_the_writer_start_empty() {
        // chunks of every size, large ones among them (a burst beyond what
        // is kept), each flushed while earlier ones come back to be filled
        let sink = Shared::default();
        let mut o = Output::spawn(Box::new(sink.clone()));
        let mut want = Vec::new();
        for i in 0..300usize {
            let n = if i % 50 == 0 {
                BUF_KEEP + 1
            } else {
                i * 37 % 5000
            };
            let line = format!("{i}:{}\n", "y".repeat(n));
            o.buf().extend_from_slice(line.as_bytes());
            want.extend_from_slice(line.as_bytes());
            o.record_done();
            assert!(o.flush());
            if i % 3 == 0 {
                std::thread::yield_now();
            }
        }
        o.finish().unwrap();
        assert!(
            sink.bytes() == want,
            "the output differs from what was written"
        );
        assert_eq!(o.dropped_records, 0);
    }

    #[test]
    fn a_stuck_writer_costs_counted_records_not_a_stall() {
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let mut o = Output::spawn(Box::new(Gate(Arc::clone(&gate))));
        for _ in 0..QUEUE_CHUNKS + 10 {
            o.buf().extend_from_slice(b"x\n");
            o.record_done();
            o.flush();
        }
        assert!(o.dropped_records >= 9, "dropped {}", o.dropped_records);
        drop(held);
        o.finish().unwrap();
    }

    /// A destination that waits at a gate and notes what it is told lost.
    struct Noting(Arc<Mutex<()>>, Arc<Mutex<Vec<u64>>>);
    impl Destination for Noting {
        fn write_chunk(&mut self, _: &[u8]) -> io::Result<()> {
            drop(self.0.lock().unwrap());
            Ok(())
        }
        fn lost(&mut self, records: u64) -> io::Result<()> {
            self.1.lock().unwrap().push(records);
            Ok(())
        }
    }

    /// Every record dropped is told to the destination, before what came
    /// after it (a chained log writes it as a gap) or at the end.
    #[test]
    fn the_destination_is_told_every_record_lost_in_order() {
        let gate = Arc::new(Mutex::new(()));
        let told = Arc::new(Mutex::new(Vec::new()));
        let held = gate.lock().unwrap();
        let mut o = Output::spawn_to(Box::new(Noting(Arc::clone(&gate), Arc::clone(&told))));
        for _ in 0..QUEUE_CHUNKS + 10 {
            o.buf().extend_from_slice(b"x\n");
            o.record_done();
            o.buf().extend_from_slice(b"y\n");
            o.record_done();
            o.flush();
        }
        let dropped = o.dropped_records;
        assert!(dropped >= 18, "{dropped}");
        drop(held);
        o.finish().unwrap();
        assert_eq!(told.lock().unwrap().iter().sum::<u64>(), dropped);
    }

    #[test]
    fn a_closed_pipe_ends_quietly() {
        let mut o = Output::spawn(Box::new(Broken));
        o.buf().extend_from_slice(b"x\n");
        o.record_done();
        o.flush();
        for _ in 0..1000 {
            if o.is_closed() {
                break;
            }
            std::thread::yield_now();
            o.buf().extend_from_slice(b"x\n");
            o.record_done();
            o.flush();
        }
        assert!(o.finish().is_ok(), "a broken pipe is not an error");
        assert!(o.is_closed());
    }
}
