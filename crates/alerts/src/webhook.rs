//! `[alerts] webhook = URL`: each alert POSTed as its JSON record, from a
//! thread of its own behind a bounded queue, so a slow or absent receiver
//! never stalls the daemon. A failed POST (no connection, a timeout, an
//! answer other than 2xx) is tried again with backoff (1 s doubling to
//! 60 s, or the receiver's `Retry-After`); every failed try is counted,
//! and alerts that do not fit the queue, or are still waiting at exit,
//! are counted as lost. A 4xx other than 408 and 429 drops the alert
//! (sending it again would be refused again), counted and logged.

use crate::board::Board;
use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// Alerts waiting for the receiver at most.
pub const QUEUE: usize = 1_024;
/// Longest wait between tries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long alerts still queued at exit are tried.
const DRAIN: Duration = Duration::from_secs(5);

/// Where alerts are POSTed: `http://HOST[:PORT]/PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// The host as given (a name, an IPv4 address, or `[IPv6]`).
    pub host: String,
    /// The port (80 when none is given).
    pub port: u16,
    /// The path (`/` when none is given).
    pub path: String,
}

impl std::str::FromStr for Url {
    type Err = String;
    fn from_str(s: &str) -> Result<Url, String> {
        use netwho_export::http::UrlError;
        let u = netwho_export::http::parse_url(s).map_err(|e| match e {
            UrlError::Https | UrlError::Scheme(_) | UrlError::NoScheme => format!(
                "alerts.webhook: '{s}' is not an http:// URL; netwho posts alerts over plain HTTP \
                 only: point it at a receiver on this host or a trusted network (a relay can add TLS)"
            ),
            UrlError::Path => format!(
                "alerts.webhook: '{s}': the path may not hold spaces, control characters or a fragment"
            ),
            UrlError::Bracket => {
                format!("alerts.webhook: '{s}': an IPv6 address needs its closing ']'")
            }
            UrlError::Host => format!("alerts.webhook: '{s}': no usable host name"),
            UrlError::Port => format!("alerts.webhook: '{s}': the port must be 1 to 65535"),
        })?;
        Ok(Url {
            host: u.host,
            port: u.port.unwrap_or(80),
            path: if u.path.is_empty() {
                "/".into()
            } else {
                u.path
            },
        })
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

/// The webhook's thread and its queue.
#[derive(Debug)]
pub struct Webhook {
    tx: Option<SyncSender<Arc<str>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
    board: Arc<Board>,
}

enum Outcome {
    Done,
    Retry(String, Option<Duration>),
    Refused(String),
}

impl Webhook {
    /// Starts the thread posting to `url`.
    pub fn start(url: Url, board: Arc<Board>) -> io::Result<Webhook> {
        let (tx, rx) = sync_channel(QUEUE);
        let b = Arc::clone(&board);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let st = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("netwho-webhook".into())
            .spawn(move || {
                // posting needs no privilege
                netwho_enrich::caps::drop_all_here("the alerts' webhook");
                run(&url, &rx, &b, &st);
            })?;
        Ok(Webhook {
            tx: Some(tx),
            stop,
            thread: Some(thread),
            board,
        })
    }

    /// Queues an alert record (a full queue drops it, counted).
    pub fn send(&self, record: Arc<str>) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.board
                    .counts
                    .webhook_lost
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Stops the thread after it tried what is queued (for a few seconds).
    pub fn finish(&mut self) {
        self.tx = None;
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.finish();
    }
}

#[expect(clippy::disallowed_methods, reason = "backoff and the drain at exit")]
fn run(url: &Url, rx: &Receiver<Arc<str>>, board: &Board, stop: &std::sync::atomic::AtomicBool) {
    let mut conn: Option<TcpStream> = None;
    let mut backoff = Duration::from_secs(1);
    let mut complained = false;
    let mut waiting: VecDeque<Arc<str>> = VecDeque::new();
    let mut closing: Option<std::time::Instant> = None;
    let lost = |n: u64| {
        board.counts.webhook_lost.fetch_add(n, Ordering::Relaxed);
    };
    loop {
        // take what came (the channel and this list hold QUEUE each)
        while waiting.len() < QUEUE {
            match rx.try_recv() {
                Ok(r) => waiting.push_back(r),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closing.get_or_insert_with(std::time::Instant::now);
                    break;
                }
            }
        }
        let Some(record) = waiting.front().cloned() else {
            if closing.is_some() {
                return;
            }
            match rx.recv() {
                Ok(r) => waiting.push_back(r),
                Err(_) => return,
            }
            continue;
        };
        match post(url, &mut conn, &record) {
            Outcome::Done => {
                waiting.pop_front();
                if complained {
                    log::info!("alerts: the webhook {url} takes alerts again");
                    complained = false;
                }
                backoff = Duration::from_secs(1);
            }
            Outcome::Refused(why) => {
                waiting.pop_front();
                board
                    .counts
                    .webhook_failures
                    .fetch_add(1, Ordering::Relaxed);
                lost(1);
                log::error!("alerts: the webhook {url} refused an alert ({why}); it is dropped");
            }
            Outcome::Retry(why, after) => {
                board
                    .counts
                    .webhook_failures
                    .fetch_add(1, Ordering::Relaxed);
                if !complained {
                    log::warn!(
                        "alerts: the webhook {url} did not take an alert ({why}); alerts wait (up to {QUEUE}) and are tried again"
                    );
                    complained = true;
                }
                let wait = after.unwrap_or(backoff).min(MAX_BACKOFF);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                let slept = std::time::Instant::now();
                while slept.elapsed() < wait {
                    if closing.is_some_and(|t| t.elapsed() >= DRAIN) {
                        let left = waiting.len() as u64 + rx.try_iter().count() as u64;
                        lost(left);
                        log::error!(
                            "alerts: {left} alert(s) not delivered to the webhook {url} at exit"
                        );
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    if closing.is_none() && stop.load(Ordering::Acquire) {
                        closing = Some(std::time::Instant::now());
                    }
                    if closing.is_none() && waiting.len() < QUEUE {
                        match rx.try_recv() {
                            Ok(r) => waiting.push_back(r),
                            Err(TryRecvError::Empty) => {}
                            Err(TryRecvError::Disconnected) => {
                                closing = Some(std::time::Instant::now());
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One POST; a kept-alive connection the receiver closed meanwhile is
/// opened again once.
fn post(url: &Url, conn: &mut Option<TcpStream>, body: &str) -> Outcome {
    let reused = conn.is_some();
    match exchange(url, conn, body) {
        Outcome::Retry(..) if reused => {
            *conn = None;
            exchange(url, conn, body)
        }
        o => o,
    }
}

fn exchange(url: &Url, conn: &mut Option<TcpStream>, body: &str) -> Outcome {
    let mut stream = match conn.take() {
        Some(s) => s,
        None => match netwho_export::http::connect(&url.host, url.port) {
            Ok(s) => s,
            Err(e) => return Outcome::Retry(format!("could not connect: {e}"), None),
        },
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: netwho/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        url.path,
        url.host,
        url.port,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    if let Err(e) = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .and_then(|()| stream.flush())
    {
        return Outcome::Retry(format!("sending: {e}"), None);
    }
    let answer = match netwho_export::http::read_answer(&mut stream) {
        Ok(a) => a,
        Err(e) => return Outcome::Retry(format!("reading the answer: {e}"), None),
    };
    if answer.keep_alive {
        *conn = Some(stream);
    }
    match answer.status {
        200..=299 => Outcome::Done,
        408 | 429 | 500..=599 => {
            Outcome::Retry(format!("it answered {}", answer.status), answer.retry_after)
        }
        s => Outcome::Refused(format!("it answered {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;
    use std::net::TcpListener;

    #[test]
    fn urls_are_parsed_or_refused_with_the_fix() {
        let u: Url = "http://127.0.0.1:9000/hook".parse().unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 9000, "/hook")
        );
        let u: Url = "http://[::1]".parse().unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("[::1]", 80, "/")
        );
        for bad in [
            "https://x/",
            "x:80",
            "http://:80/",
            "http://h:0/",
            "http://h/a b",
            "http://h/a\r\nX: y",
            "http://u@h/",
        ] {
            assert!(bad.parse::<Url>().is_err(), "{bad}");
        }
    }

    /// A receiver that answers 503 first, then 200: every alert arrives,
    /// in order, once; the failure is counted.
    #[test]
    fn a_failing_receiver_gets_every_alert_once_after_retries() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            let mut answered = 0;
            while bodies.len() < 3 {
                let (s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s);
                while let Ok(Some((_, body))) = netwho_export::http::read_request(&mut r) {
                    answered += 1;
                    let s = r.get_mut();
                    if answered == 1 {
                        s.write_all(
                            b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n",
                        )
                        .unwrap();
                    } else {
                        bodies.push(String::from_utf8(body).unwrap());
                        s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
                    }
                    if bodies.len() == 3 {
                        break;
                    }
                }
            }
            bodies
        });
        let board = Board::new();
        let mut w = Webhook::start(
            format!("http://127.0.0.1:{port}/alerts").parse().unwrap(),
            Arc::clone(&board),
        )
        .unwrap();
        for i in 0..3 {
            w.send(Arc::from(format!("{{\"n\":{i}}}")));
        }
        let bodies = got.join().unwrap();
        w.finish();
        assert_eq!(bodies, vec!["{\"n\":0}", "{\"n\":1}", "{\"n\":2}"]);
        assert_eq!(board.counts.webhook_failures.load(Ordering::Relaxed), 1);
        assert_eq!(board.counts.webhook_lost.load(Ordering::Relaxed), 0);
    }

    /// Nobody listening: what is queued at exit is tried for a few seconds
    /// and then counted as lost, never waited for without end.
    #[test]
    fn an_absent_receiver_loses_alerts_counted_at_exit() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let board = Board::new();
        let mut w = Webhook::start(
            format!("http://127.0.0.1:{port}/").parse().unwrap(),
            Arc::clone(&board),
        )
        .unwrap();
        w.send(Arc::from("{}"));
        w.finish();
        assert_eq!(board.counts.webhook_lost.load(Ordering::Relaxed), 1);
        assert!(board.counts.webhook_failures.load(Ordering::Relaxed) >= 1);
    }
}
