//! Sending messages to a collector: UDP datagrams, or an IPFIX stream over
//! TCP (RFC 7011 §10.4). Runs on the output's writer thread
//! ([`netwho_sink::output::Output`]), so a slow or absent collector
//! never stalls the pipeline: its queue is bounded and what overflows is
//! counted.
//!
//! The sink hands chunks of frames: `kind` (data, or a template-only
//! message), the number of flow records in it, the length, the message.

use netwho_sink::output::Destination;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A frame holding data records.
pub const DATA: u8 = 0;
/// A frame holding only the template.
pub const TEMPLATE: u8 = 1;

/// Appends one frame to `chunk`.
pub fn put_frame(chunk: &mut Vec<u8>, kind: u8, records: u32, msg: &[u8]) {
    chunk.push(kind);
    chunk.extend_from_slice(&records.to_be_bytes());
    chunk.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    chunk.extend_from_slice(msg);
}

/// The frames of a chunk: (kind, records, message).
pub(crate) fn frames(mut chunk: &[u8]) -> impl Iterator<Item = (u8, u32, &[u8])> {
    std::iter::from_fn(move || {
        let head = chunk.get(..9)?;
        let records = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        let len = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) as usize;
        let msg = chunk.get(9..9 + len)?;
        let kind = head[0];
        chunk = &chunk[9 + len..];
        Some((kind, records, msg))
    })
}

/// What the exporter tells about delivery (shared with the sink).
#[derive(Debug, Default)]
pub struct Delivery {
    /// Records in messages that could not be sent.
    pub lost: AtomicU64,
    /// Messages sent.
    pub sent: AtomicU64,
}

/// Where to send, as given: `HOST:PORT`, `udp://HOST:PORT` or
/// `tcp://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collector {
    /// An IPFIX stream over TCP (else UDP datagrams).
    pub tcp: bool,
    /// `HOST:PORT`.
    pub host_port: String,
}

impl std::str::FromStr for Collector {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (tcp, rest) = match s.split_once("://") {
            Some(("tcp", r)) => (true, r),
            Some(("udp", r)) => (false, r),
            Some((other, _)) => {
                return Err(format!(
                    "'{other}://' is not a transport netwho exports over: use udp:// or tcp://"
                ));
            }
            None => (false, s),
        };
        match rest.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(Collector {
                    tcp,
                    host_port: rest.to_string(),
                })
            }
            _ => Err(format!(
                "'{s}' is not HOST:PORT (e.g. 127.0.0.1:4739, tcp://collector:4739, [fd00::1]:2055)"
            )),
        }
    }
}

impl Collector {
    /// The collector's addresses (the name resolved now).
    pub fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = self.host_port.to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} has no address", self.host_port),
            ));
        }
        Ok(addrs)
    }
}

/// Logs a repeated failure (of a delivery, a connection): the first at
/// once, then at most once a minute with the count since.
#[derive(Debug)]
pub struct Complaints {
    /// What fails, as the message starts.
    what: String,
    /// Appended to the count (what the failure means).
    note: &'static str,
    last: Option<Instant>,
    since: u64,
}

impl Complaints {
    /// Complaints about `what`, rate-limited; `note` follows each.
    pub fn new(what: String, note: &'static str) -> Self {
        Complaints {
            what,
            note,
            last: None,
            since: 0,
        }
    }

    #[expect(clippy::disallowed_methods, reason = "rate limit of a log line")]
    /// A send failed: logged at most once a minute, with how many since.
    pub fn failed(&mut self, e: &dyn std::fmt::Display) {
        self.since += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|l| now.duration_since(l) >= Duration::from_secs(60))
        {
            log::warn!(
                "{}: {e} ({} failure(s) since the last message{})",
                self.what,
                self.since,
                self.note
            );
            self.last = Some(now);
            self.since = 0;
        }
    }

    /// It works again: says so if it had been failing.
    pub fn recovered(&mut self, what: &str) {
        if self.last.take().is_some() {
            log::info!("{}: {what}", self.what);
            self.since = 0;
        }
    }
}

/// What an exporter's failure means.
const LOST: &str = "; records are counted as lost";

/// UDP: each message one datagram.
#[derive(Debug)]
pub struct Udp {
    sock: UdpSocket,
    delivery: Arc<Delivery>,
    complaints: Complaints,
}

impl Udp {
    /// A UDP socket connected to the collector.
    pub fn connect(to: &Collector, delivery: Arc<Delivery>) -> io::Result<Udp> {
        let addr = to.resolve()?[0];
        let bind: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind)?;
        sock.connect(addr)?;
        Ok(Udp {
            sock,
            delivery,
            complaints: Complaints::new(format!("export to udp://{addr}"), LOST),
        })
    }
}

impl Destination for Udp {
    fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        for (_, records, msg) in frames(chunk) {
            // (a collector not listening yet shows as ECONNREFUSED)
            match self.sock.send(msg) {
                Ok(_) => {
                    self.delivery.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    self.delivery
                        .lost
                        .fetch_add(u64::from(records), Ordering::Relaxed);
                    self.complaints.failed(&e);
                }
            }
        }
        Ok(())
    }
}

/// Messages kept while the TCP collector is unreachable.
const BACKLOG_BYTES: usize = 16 << 20;

/// TCP: one stream; the template first on every connection (and never
/// again on it, as RFC 7011 asks); messages wait in a bounded backlog
/// while the collector is away and go out, in order, when it is back.
#[derive(Debug)]
pub struct Tcp {
    to: Collector,
    stream: Option<TcpStream>,
    template: Option<Vec<u8>>,
    backlog: VecDeque<(u32, Vec<u8>)>,
    backlog_bytes: usize,
    last_try: Option<Instant>,
    delivery: Arc<Delivery>,
    complaints: Complaints,
}

impl Tcp {
    /// Connects now if it can; if not, it keeps trying (about once a
    /// second) while messages wait.
    pub fn new(to: Collector, delivery: Arc<Delivery>) -> Tcp {
        let what = format!("export to tcp://{}", to.host_port);
        let mut t = Tcp {
            to,
            stream: None,
            template: None,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            last_try: None,
            delivery,
            complaints: Complaints::new(what, LOST),
        };
        if let Err(e) = t.connect() {
            t.complaints.failed(&e);
        }
        t
    }

    fn connect(&mut self) -> io::Result<()> {
        let mut last = io::Error::other("no address");
        for a in self.to.resolve()? {
            match TcpStream::connect_timeout(&a, Duration::from_secs(2)) {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    s.set_write_timeout(Some(Duration::from_secs(5)))?;
                    self.stream = Some(s);
                    log::info!("export: connected to tcp://{a}");
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Sends the backlog; on failure the connection is dropped and what
    /// was not sent stays.
    #[expect(clippy::disallowed_methods, reason = "reconnect pacing")]
    fn pump(&mut self) {
        if self.backlog.is_empty() {
            return;
        }
        if self.stream.is_none() {
            let now = Instant::now();
            if self
                .last_try
                .is_some_and(|l| now.duration_since(l) < Duration::from_secs(1))
            {
                return;
            }
            self.last_try = Some(now);
            if let Err(e) = self.connect() {
                self.complaints.failed(&e);
                return;
            }
            // a new connection starts with the template
            if let (Some(s), Some(t)) = (self.stream.as_mut(), self.template.as_ref())
                && let Err(e) = s.write_all(t)
            {
                self.stream = None;
                self.complaints.failed(&e);
                return;
            }
        }
        while let Some((_, msg)) = self.backlog.front() {
            let Some(s) = self.stream.as_mut() else {
                return;
            };
            // (a message cut by a failure is sent whole on the next
            // connection, after the template)
            if let Err(e) = s.write_all(msg) {
                self.stream = None;
                self.complaints.failed(&e);
                return;
            }
            if let Some((_, m)) = self.backlog.pop_front() {
                self.backlog_bytes -= m.len();
            }
            self.delivery.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Destination for Tcp {
    fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        for (kind, records, msg) in frames(chunk) {
            if kind == TEMPLATE {
                if self.template.is_none()
                    && let Some(s) = self.stream.as_mut()
                    && let Err(e) = s.write_all(msg)
                {
                    self.stream = None;
                    self.complaints.failed(&e);
                }
                self.template = Some(msg.to_vec());
                continue;
            }
            self.backlog_bytes += msg.len();
            self.backlog.push_back((records, msg.to_vec()));
            while self.backlog_bytes > BACKLOG_BYTES {
                let Some((n, m)) = self.backlog.pop_front() else {
                    break;
                };
                self.backlog_bytes -= m.len();
                self.delivery
                    .lost
                    .fetch_add(u64::from(n), Ordering::Relaxed);
            }
        }
        self.pump();
        Ok(())
    }

    fn idle(&mut self) -> io::Result<()> {
        self.pump();
        Ok(())
    }

    #[expect(clippy::disallowed_methods, reason = "bounded wait at exit")]
    fn close(&mut self) -> io::Result<()> {
        // at exit, a few seconds for a collector that is coming back
        let until = Instant::now() + Duration::from_secs(5);
        while !self.backlog.is_empty() && Instant::now() < until {
            self.pump();
            if !self.backlog.is_empty() {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        let left: u64 = self.backlog.drain(..).map(|(n, _)| u64::from(n)).sum();
        if left > 0 {
            self.delivery.lost.fetch_add(left, Ordering::Relaxed);
            log::warn!(
                "export to tcp://{}: {left} record(s) not delivered at exit",
                self.to.host_port
            );
        }
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn collectors_parse_and_mistakes_say_what_to_write() {
        let c: Collector = "127.0.0.1:4739".parse().unwrap();
        assert!(!c.tcp);
        let c: Collector = "tcp://[::1]:4739".parse().unwrap();
        assert!(c.tcp);
        assert_eq!(c.host_port, "[::1]:4739");
        for bad in ["127.0.0.1", "sctp://h:1", "h:0", ":4739", "h:port"] {
            let e = bad.parse::<Collector>().unwrap_err();
            assert!(e.contains(bad.split("://").next().unwrap()), "{e}");
        }
    }

    fn chunk(frames: &[(u8, u32, &[u8])]) -> Vec<u8> {
        let mut c = Vec::new();
        for (k, n, m) in frames {
            put_frame(&mut c, *k, *n, m);
        }
        c
    }

    #[test]
    fn udp_sends_a_datagram_per_message_and_counts_what_is_refused() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let to: Collector = rx.local_addr().unwrap().to_string().parse().unwrap();
        let d = Arc::new(Delivery::default());
        let mut u = Udp::connect(&to, Arc::clone(&d)).unwrap();
        u.write_chunk(&chunk(&[(TEMPLATE, 0, b"tpl"), (DATA, 3, b"data")]))
            .unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"tpl");
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"data");
        assert_eq!(d.sent.load(Ordering::Relaxed), 2);
        // nobody listening: the kernel says so on a later send
        drop(rx);
        for _ in 0..3 {
            u.write_chunk(&chunk(&[(DATA, 2, b"x")])).unwrap();
        }
        assert!(d.lost.load(Ordering::Relaxed) >= 2);
    }

    #[test]
    fn tcp_keeps_messages_while_the_collector_is_away_and_resends_the_template() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let d = Arc::new(Delivery::default());
        let mut t = Tcp::new(addr.to_string().parse().unwrap(), Arc::clone(&d));
        t.write_chunk(&chunk(&[(TEMPLATE, 0, b"T"), (DATA, 1, b"a")]))
            .unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut got = [0u8; 2];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"Ta");
        // the collector goes away: the next write fails at some point
        drop(s);
        drop(l);
        for i in 0..50u8 {
            t.write_chunk(&chunk(&[(DATA, 1, &[b'0' + i % 10])]))
                .unwrap();
            if t.stream.is_none() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(t.stream.is_none(), "the broken connection was noticed");
        let waiting = t.backlog.len();
        assert!(waiting >= 1);
        // back on the same port: the template first, then what waited
        let l = TcpListener::bind(addr).unwrap();
        t.last_try = None;
        t.idle().unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut got = vec![0u8; 1 + waiting];
        s.read_exact(&mut got).unwrap();
        assert_eq!(got[0], b'T');
        assert!(t.backlog.is_empty());
        assert_eq!(d.lost.load(Ordering::Relaxed), 0);
    }
}
