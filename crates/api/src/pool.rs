//! The threads that run history reports.
//!
//! Reports read SQLite, which blocks, so they run on threads of their own
//! rather than the API's. These threads are started by the daemon's main
//! thread before the API gives up root: they stay uid 0 (the database is
//! root's, 0600 or 0640) but hold no capability, and they only ever run a
//! report the API has already checked. Jobs wait in a short queue; when
//! it is full the request is refused at once (503), never queued without
//! bound. Every job carries a stop flag: set when its client leaves, when
//! its deadline passes, or when the daemon stops; the report checks it
//! between rows and SQLite every thousand steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Whether a job should stop (its client left, its time is up, or the
/// daemon stops).
pub type Stopped = Arc<dyn Fn() -> bool + Send + Sync>;

/// A report to run, given its [`Stopped`].
pub type Job = Box<dyn FnOnce(Stopped) + Send>;

/// Jobs that may wait for a thread.
const QUEUE: usize = 16;

/// A queued job and its stop flag.
type Queued = (Job, Arc<AtomicBool>);

/// The report threads.
#[derive(Debug)]
pub struct Pool {
    tx: Mutex<Option<SyncSender<Queued>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Set when the daemon stops: every job's stop flag reads it too.
    shutdown: Arc<AtomicBool>,
}

/// The queue is full.
#[derive(Debug)]
pub struct Busy;

impl Pool {
    /// `n` threads named `netwho-report`, without capabilities.
    pub fn start(n: usize) -> std::io::Result<Pool> {
        let (tx, rx) = sync_channel::<Queued>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let shutdown = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for _ in 0..n.max(1) {
            let (rx, shutdown) = (Arc::clone(&rx), Arc::clone(&shutdown));
            threads.push(
                std::thread::Builder::new()
                    .name("netwho-report".into())
                    .spawn(move || {
                        netwho_enrich::caps::drop_all_here("a report thread");
                        work(&rx, &shutdown);
                    })?,
            );
        }
        Ok(Pool {
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
            shutdown,
        })
    }

    /// Queues `job`; `stop` is set by the caller when it no longer wants
    /// the answer.
    pub fn submit(&self, job: Job, stop: Arc<AtomicBool>) -> Result<(), Busy> {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match tx.as_ref() {
            Some(tx) => tx.try_send((job, stop)).map_err(|e| match e {
                TrySendError::Full(_) | TrySendError::Disconnected(_) => Busy,
            }),
            None => Err(Busy),
        }
    }

    /// Tells every running and waiting job to stop.
    pub fn cancel_all(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }

    /// Stops every running and waiting job and waits for the threads.
    pub fn stop(&self) {
        self.cancel_all();
        self.tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let threads = std::mem::take(
            &mut *self
                .threads
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for t in threads {
            if t.join().is_err() {
                log::error!("api: a report thread panicked");
            }
        }
    }
}

fn work(rx: &Mutex<Receiver<Queued>>, shutdown: &Arc<AtomicBool>) {
    loop {
        let next = rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        let Ok((job, stop)) = next else {
            return;
        };
        let shutdown = Arc::clone(shutdown);
        let stopped: Stopped =
            Arc::new(move || stop.load(Ordering::Relaxed) || shutdown.load(Ordering::Relaxed));
        if stopped() {
            // its client left while it waited: drop it (and what it holds)
            drop(job);
            continue;
        }
        job(stopped);
    }
}

/// Sets a job's stop flag when the request that wanted it is dropped
/// (its client left, or it timed out).
#[derive(Debug)]
pub struct StopOnDrop(pub Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn jobs_run_stop_when_asked_and_a_full_queue_refuses() {
        let pool = Pool::start(1).unwrap();
        // a job that runs until it is told to stop
        let (started, running) = sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done) = sync_channel(1);
        pool.submit(
            Box::new(move |stopped: Stopped| {
                let _ = started.send(());
                while !stopped() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let _ = done_tx.send("stopped");
            }),
            Arc::clone(&stop),
        )
        .unwrap();
        running.recv().unwrap();
        // the queue fills while the only thread is busy
        let mut refused = 0;
        for _ in 0..QUEUE + 4 {
            let never = Arc::new(AtomicBool::new(true));
            if pool.submit(Box::new(|_| {}), never).is_err() {
                refused += 1;
            }
        }
        assert_eq!(refused, 4);
        drop(StopOnDrop(stop));
        assert_eq!(
            done.recv_timeout(Duration::from_secs(10)).unwrap(),
            "stopped"
        );
        pool.stop();
        assert!(pool.submit(Box::new(|_| {}), Arc::default()).is_err());
    }
}
