//! OTLP/HTTP delivery: requests gzip-compressed and POSTed to
//! `{base}/v1/logs` and `{base}/v1/metrics` over HTTP/1.1 with keep-alive,
//! from the output's writer thread ([`netwho_sink::output::Output`]), so a
//! slow or absent collector never stalls the pipeline.
//!
//! Log records are gathered into requests of at most [`BATCH_RECORDS`]
//! records (or [`BATCH_BYTES`]), sent when full or a second old. A request
//! that fails in a way the OTLP specification calls retryable (429, 502,
//! 503, 504, or no connection) waits in a bounded backlog and is tried
//! again with exponential backoff (1 s doubling to 32 s, or the server's
//! `Retry-After`); any other refusal drops it. Whatever is dropped (a
//! refused request, the oldest request when the backlog is full, what is
//! left at exit, the records a collector's partial success rejects) is
//! counted in [`Delivery::lost`] and logged.

use super::encode;
use crate::net::{Delivery, frames};
use netwho_sink::output::Destination;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A frame holding one log record's fields.
pub const LOG: u8 = 10;
/// A frame holding a whole metrics request.
pub const METRICS: u8 = 11;

/// Most log records in one request.
pub const BATCH_RECORDS: usize = 1000;
/// Most bytes of log records (before compression) in one request.
pub const BATCH_BYTES: usize = 2 << 20;
/// Compressed requests kept while the collector is away.
const BACKLOG_BYTES: usize = 16 << 20;
/// Longest wait between tries.
const MAX_BACKOFF: Duration = Duration::from_secs(32);

/// Where to send: `http://HOST[:PORT][/PATH]`, the base the signal paths
/// are appended to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The host as given (a name, an IPv4 address, or `[IPv6]`).
    pub host: String,
    /// The port (4318, OTLP/HTTP's, when none is given).
    pub port: u16,
    /// The base path, without a trailing slash (empty for the root).
    pub base: String,
}

impl std::str::FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        use crate::http::UrlError;
        let u = crate::http::parse_url(s).map_err(|e| match e {
            UrlError::Https => format!(
                "'{s}': netwho sends OTLP over plain HTTP only; run a collector (or agent) on this host or a trusted network and point --otlp at http://HOST:4318"
            ),
            UrlError::Scheme(other) => {
                format!("'{other}://' is not OTLP/HTTP: give http://HOST[:PORT][/PATH]")
            }
            UrlError::NoScheme => format!(
                "'{s}' has no scheme: give http://HOST[:PORT][/PATH] (4318 is OTLP/HTTP's port)"
            ),
            UrlError::Path => format!(
                "'{s}': the path may not hold a query, a fragment, spaces or control characters"
            ),
            UrlError::Bracket => format!("'{s}': an IPv6 address needs its closing ']'"),
            UrlError::Host => format!("'{s}': no usable host name"),
            UrlError::Port => format!("'{s}': the port must be 1 to 65535"),
        })?;
        if u.path.contains('?') {
            return Err(format!(
                "'{s}': the path may not hold a query, a fragment, spaces or control characters"
            ));
        }
        Ok(Endpoint {
            host: u.host,
            port: u.port.unwrap_or(4318),
            base: u.path.trim_end_matches('/').to_string(),
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.base)
    }
}

/// Which signal a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Logs,
    Metrics,
}

impl Signal {
    fn path(self) -> &'static str {
        match self {
            Signal::Logs => "/v1/logs",
            Signal::Metrics => "/v1/metrics",
        }
    }
}

/// A compressed request waiting to go.
#[derive(Debug)]
struct Request {
    signal: Signal,
    /// Log records in it (0 for metrics).
    records: u64,
    body: Vec<u8>,
}

/// Why a request did not go.
#[derive(Debug)]
enum Failure {
    /// Try again later (no connection, a timeout, 429/502/503/504).
    Retry(String, Option<Duration>),
    /// The collector refused it for good.
    Refused(String),
}

/// The OTLP/HTTP destination (see the module's documentation).
#[derive(Debug)]
pub struct OtlpHttp {
    to: Endpoint,
    resource: Vec<u8>,
    version: String,
    /// Log records not yet in a request, as `log_records` entries
    /// ([`encode::log_entry`]), and how many.
    pending: Vec<u8>,
    pending_records: usize,
    pending_since: Option<Instant>,
    /// The request being made (reused).
    plain: Vec<u8>,
    backlog: VecDeque<Request>,
    backlog_bytes: usize,
    stream: Option<TcpStream>,
    /// No try before this (backoff).
    next_try: Option<Instant>,
    backoff: Duration,
    delivery: Arc<Delivery>,
    /// Failures since the last one logged (logged at most every 30 s).
    quiet_failures: u64,
    last_complaint: Option<Instant>,
}

impl OtlpHttp {
    /// A destination for `to`, naming `resource` (from
    /// [`encode::resource`]) in every request. Connects on first use.
    pub fn new(to: Endpoint, resource: Vec<u8>, version: String, delivery: Arc<Delivery>) -> Self {
        OtlpHttp {
            to,
            resource,
            version,
            pending: Vec::new(),
            pending_records: 0,
            pending_since: None,
            plain: Vec::new(),
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            stream: None,
            next_try: None,
            backoff: Duration::from_secs(1),
            delivery,
            quiet_failures: 0,
            last_complaint: None,
        }
    }

    #[expect(clippy::disallowed_methods, reason = "log-line pacing")]
    fn complain(&mut self, what: &str) {
        let now = Instant::now();
        if self
            .last_complaint
            .is_some_and(|l| now.duration_since(l) < Duration::from_secs(30))
        {
            self.quiet_failures += 1;
            return;
        }
        let more = std::mem::take(&mut self.quiet_failures);
        let more = if more > 0 {
            format!(" ({more} more failures since the last message)")
        } else {
            String::new()
        };
        log::warn!("export to {}: {what}{more}", self.to);
        self.last_complaint = Some(now);
    }

    fn lose(&mut self, records: u64, why: &str) {
        if records > 0 {
            self.delivery.lost.fetch_add(records, Ordering::Relaxed);
        }
        self.complain(why);
    }

    /// Gathers the pending records into a compressed request.
    fn seal(&mut self) {
        if self.pending_records == 0 {
            return;
        }
        let records = self.pending_records as u64;
        let mut plain = std::mem::take(&mut self.plain);
        encode::logs_request(&mut plain, &self.resource, &self.version, &self.pending);
        self.pending.clear();
        self.pending_records = 0;
        self.pending_since = None;
        self.queue(Signal::Logs, records, &plain);
        self.plain = plain;
    }

    fn queue(&mut self, signal: Signal, records: u64, plain: &[u8]) {
        let body = match gzip(plain) {
            Ok(b) => b,
            Err(e) => {
                self.lose(records, &format!("could not compress a request: {e}"));
                return;
            }
        };
        self.backlog_bytes += body.len();
        self.backlog.push_back(Request {
            signal,
            records,
            body,
        });
        while self.backlog_bytes > BACKLOG_BYTES {
            let Some(old) = self.backlog.pop_front() else {
                break;
            };
            self.backlog_bytes -= old.body.len();
            self.lose(
                old.records,
                &format!(
                    "the collector is behind: the oldest waiting request ({} records) was dropped",
                    old.records
                ),
            );
        }
    }

    /// Sends what waits, in order, until a failure (then waits its backoff).
    #[expect(clippy::disallowed_methods, reason = "retry pacing")]
    fn pump(&mut self) {
        let now = Instant::now();
        if self.next_try.is_some_and(|t| now < t) {
            return;
        }
        while let Some(req) = self.backlog.pop_front() {
            self.backlog_bytes -= req.body.len();
            match self.send(req.signal, &req.body) {
                Ok(rejected) => {
                    self.delivery.sent.fetch_add(1, Ordering::Relaxed);
                    self.next_try = None;
                    self.backoff = Duration::from_secs(1);
                    if let Some((n, msg)) = rejected
                        && n > 0
                    {
                        // logs: records; metrics: data points (not records)
                        let lost = if req.records > 0 {
                            n.min(req.records)
                        } else {
                            0
                        };
                        self.lose(
                            lost,
                            &format!("the collector rejected {n} of a request's items: {msg}"),
                        );
                    }
                }
                Err(Failure::Refused(why)) => self.lose(
                    req.records,
                    &format!("a request ({} records) was refused: {why}", req.records),
                ),
                Err(Failure::Retry(why, after)) => {
                    self.backlog_bytes += req.body.len();
                    self.backlog.push_front(req);
                    self.stream = None;
                    let wait = after.unwrap_or(self.backoff).min(MAX_BACKOFF);
                    self.next_try = Some(Instant::now() + wait);
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    self.complain(&format!(
                        "{why}; {} request(s) wait, next try in {} s",
                        self.backlog.len(),
                        wait.as_secs()
                    ));
                    return;
                }
            }
        }
    }

    fn connect(&mut self) -> io::Result<TcpStream> {
        crate::http::connect(&self.to.host, self.to.port)
    }

    /// One POST; a kept-alive connection that the server closed meanwhile
    /// is opened again once.
    fn send(&mut self, signal: Signal, body: &[u8]) -> Result<Option<(u64, String)>, Failure> {
        let reused = self.stream.is_some();
        match self.exchange(signal, body) {
            Err(Failure::Retry(..)) if reused => {
                self.stream = None;
                self.exchange(signal, body)
            }
            r => r,
        }
    }

    fn exchange(&mut self, signal: Signal, body: &[u8]) -> Result<Option<(u64, String)>, Failure> {
        let retry = |what: &str, e: io::Error| Failure::Retry(format!("{what}: {e}"), None);
        let mut stream = match self.stream.take() {
            Some(s) => s,
            None => self.connect().map_err(|e| retry("could not connect", e))?,
        };
        let head = format!(
            "POST {}{} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: netwho/{}\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            self.to.base,
            signal.path(),
            self.to.host,
            self.to.port,
            self.version,
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .and_then(|()| stream.flush())
            .map_err(|e| retry("sending", e))?;
        let answer =
            crate::http::read_answer(&mut stream).map_err(|e| retry("reading the answer", e))?;
        if answer.keep_alive {
            self.stream = Some(stream);
        }
        match answer.status {
            200..=299 => Ok(encode::rejected(&answer.body)),
            429 | 502 | 503 | 504 => Err(Failure::Retry(
                format!("the collector answered {}", answer.status),
                answer.retry_after,
            )),
            s => Err(Failure::Refused(format!(
                "the collector answered {s}{}",
                status_detail(&answer.body)
            ))),
        }
    }
}

/// A short, printable excerpt of an error answer (OTLP sends a
/// `google.rpc.Status`, whose field 2 is the message).
fn status_detail(body: &[u8]) -> String {
    let msg = super::pb::fields(body)
        .ok()
        .and_then(|f| {
            f.into_iter().find_map(|f| match f {
                super::pb::Field::Len(2, m) => Some(m),
                _ => None,
            })
        })
        .unwrap_or(body);
    let text: String = String::from_utf8_lossy(msg)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

fn gzip(plain: &[u8]) -> io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(plain.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(plain)?;
    enc.finish()
}

impl Destination for OtlpHttp {
    #[expect(clippy::disallowed_methods, reason = "a batch's age")]
    fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        for (kind, _, msg) in frames(chunk) {
            match kind {
                LOG => {
                    if self.pending_records >= BATCH_RECORDS
                        || self.pending.len() + msg.len() > BATCH_BYTES
                    {
                        self.seal();
                    }
                    encode::log_entry(&mut self.pending, msg);
                    self.pending_records += 1;
                    self.pending_since.get_or_insert_with(Instant::now);
                }
                METRICS => self.queue(Signal::Metrics, 0, msg),
                _ => {}
            }
        }
        if self.pending_records >= BATCH_RECORDS
            || self
                .pending_since
                .is_some_and(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.seal();
        }
        self.pump();
        Ok(())
    }

    fn lost(&mut self, records: u64) -> io::Result<()> {
        self.complain(&format!(
            "{records} record(s) were dropped before they reached the exporter (it was behind)"
        ));
        Ok(())
    }

    fn idle(&mut self) -> io::Result<()> {
        self.seal();
        self.pump();
        Ok(())
    }

    #[expect(clippy::disallowed_methods, reason = "bounded wait at exit")]
    fn close(&mut self) -> io::Result<()> {
        self.seal();
        // at exit, a few seconds for a collector that is coming back
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            self.next_try = None;
            self.pump();
            if self.backlog.is_empty() || Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let left: u64 = self.backlog.drain(..).map(|r| r.records).sum();
        if left > 0 {
            self.delivery.lost.fetch_add(left, Ordering::Relaxed);
            log::warn!(
                "export to {}: {left} record(s) not delivered at exit",
                self.to
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_parsed_or_refused_with_the_fix() {
        let e: Endpoint = "http://127.0.0.1:4318".parse().unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.base.as_str()),
            ("127.0.0.1", 4318, "")
        );
        let e: Endpoint = "http://collector.example/otlp/".parse().unwrap();
        assert_eq!((e.port, e.base.as_str()), (4318, "/otlp"));
        let e: Endpoint = "http://[fd00:231::1]:9000/x".parse().unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.base.as_str()),
            ("[fd00:231::1]", 9000, "/x")
        );
        assert_eq!(e.to_string(), "http://[fd00:231::1]:9000/x");
        for (bad, says) in [
            ("127.0.0.1:4318", "no scheme"),
            ("https://c:4318", "plain HTTP only"),
            ("grpc://c:4317", "not OTLP/HTTP"),
            ("http://:4318", "no usable host"),
            ("http://c:0", "1 to 65535"),
            ("http://c:99999", "1 to 65535"),
            ("http://c:4318/a b", "control characters"),
            ("http://c:4318/a\r\nX-Evil: 1", "control characters"),
            ("http://c/x?y=1", "query"),
            ("http://user@c:4318", "no usable host"),
            ("http://[::1:4318", "closing ']'"),
        ] {
            let e = bad.parse::<Endpoint>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
