//! The name book: what each process was told by DNS, what every process of
//! a network namespace was told (for processes that resolve through
//! another: nscd, a caching resolver behind a Unix socket), and the first
//! bytes of the streams that carry a ClientHello, all bounded.

use crate::dns;
use crate::quic;
use crate::tls::{self, Parse};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

/// Where a flow's `rname` came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RnameSource {
    /// A DNS answer the flow's own process received.
    Dns,
    /// A DNS answer another process of the same network namespace received
    /// (the process resolved through it).
    Shared,
    /// No process was told this address, and no ClientHello named it: the
    /// process connected to an address it never resolved.
    None,
}

impl RnameSource {
    /// `dns`, `shared` or `none`, as records carry it.
    pub fn name(self) -> &'static str {
        match self {
            RnameSource::Dns => "dns",
            RnameSource::Shared => "shared",
            RnameSource::None => "none",
        }
    }

    /// The source a record names.
    pub fn parse(s: &str) -> Option<RnameSource> {
        match s {
            "dns" => Some(RnameSource::Dns),
            "shared" => Some(RnameSource::Shared),
            "none" => Some(RnameSource::None),
            _ => None,
        }
    }
}

/// What a ClientHello asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Hello {
    /// The server name (SNI), printable.
    pub sni: Option<String>,
    /// The application protocols offered (ALPN), comma-separated.
    pub alpn: Option<String>,
}

/// A name found for an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The name.
    pub name: Arc<str>,
    /// Whose answer it was.
    pub source: RnameSource,
}

/// The book's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// (process, address) entries kept.
    pub own: usize,
    /// (network namespace, address) entries kept.
    pub shared: usize,
    /// Streams being put together (TLS, TCP DNS, QUIC CRYPTO) at once.
    pub streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            own: 65_536,
            shared: 65_536,
            streams: 4_096,
        }
    }
}

/// What the book did, for `/metrics` and the status record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameStats {
    /// DNS answers read.
    pub dns_answers: u64,
    /// Addresses learnt from them.
    pub dns_addrs: u64,
    /// Messages that were not answers to be read: malformed, cut past
    /// reading, queries, error codes.
    pub dns_unreadable: u64,
    /// Addresses an answer had past the per-answer bound.
    pub dns_addrs_dropped: u64,
    /// Entries pushed out by newer ones (process or namespace book full).
    pub evicted: u64,
    /// Entries not kept: their user's processes held their share (a
    /// quarter) of the book.
    pub refused: u64,
    /// ClientHellos read (TLS and QUIC).
    pub hellos: u64,
    /// Streams whose first bytes were not a ClientHello.
    pub not_hello: u64,
    /// QUIC datagrams that were not readable Initials.
    pub quic_unreadable: u64,
    /// Streams dropped unfinished (too many at once).
    pub streams_evicted: u64,
}

struct Entry {
    name: Arc<str>,
    until_ns: u64,
    seq: u64,
    /// Whose process received the answer (its share of the map).
    uid: u32,
}

/// A map bounded to `cap` entries, the oldest written pushed out first,
/// of which one user's processes may hold a quarter: a user who floods
/// itself with answers cannot push out everyone else's names.
struct Bounded<K> {
    map: FxHashMap<K, Entry>,
    order: VecDeque<(K, u64)>,
    cap: usize,
    seq: u64,
    per_uid: FxHashMap<u32, usize>,
}

/// What writing an entry did.
#[derive(Default)]
struct Put {
    evicted: u64,
    refused: bool,
}

impl<K: Hash + Eq + Copy> Bounded<K> {
    fn new(cap: usize) -> Self {
        Bounded {
            map: FxHashMap::default(),
            order: VecDeque::new(),
            cap: cap.max(1),
            seq: 0,
            per_uid: FxHashMap::default(),
        }
    }

    fn share(&self) -> usize {
        (self.cap / 4).max(1)
    }

    fn forget(&mut self, uid: u32) {
        if let Some(n) = self.per_uid.get_mut(&uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_uid.remove(&uid);
            }
        }
    }

    /// Write `k` for `uid`'s process: pushes out the oldest entries past
    /// the bound; refused (nothing written) when `uid` holds its share
    /// and `k` is not already its own.
    fn put(&mut self, k: K, uid: u32, name: &Arc<str>, until_ns: u64) -> Put {
        let old_uid = self.map.get(&k).map(|e| e.uid);
        if old_uid != Some(uid) && self.per_uid.get(&uid).copied().unwrap_or(0) >= self.share() {
            return Put {
                refused: true,
                ..Put::default()
            };
        }
        if let Some(o) = old_uid {
            self.forget(o);
        }
        *self.per_uid.entry(uid).or_default() += 1;
        self.seq += 1;
        let seq = self.seq;
        self.map.insert(
            k,
            Entry {
                name: Arc::clone(name),
                until_ns,
                seq,
                uid,
            },
        );
        self.order.push_back((k, seq));
        let mut evicted = 0;
        while self.map.len() > self.cap {
            let Some((old, s)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|e| e.seq == s)
                && let Some(e) = self.map.remove(&old)
            {
                self.forget(e.uid);
                evicted += 1;
            }
        }
        // rewritten keys leave stale places in the order: drop them when
        // they outnumber the live ones
        if self.order.len() > 2 * self.cap {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|e| e.seq == *s));
        }
        Put {
            evicted,
            refused: false,
        }
    }

    fn get(&self, k: &K, at_ns: u64) -> Option<&Arc<str>> {
        self.map
            .get(k)
            .filter(|e| at_ns <= e.until_ns)
            .map(|e| &e.name)
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// The start of one socket's stream, put together by offset.
#[derive(Default)]
struct Stream {
    /// Bytes from offset 0, contiguous.
    buf: Vec<u8>,
    /// Pieces that came before the bytes in front of them.
    early: Vec<(usize, Vec<u8>)>,
    /// TCP DNS: bytes of `buf` already read as messages; QUIC: Initials
    /// read.
    read: usize,
    /// Decided: nothing more is read of it.
    done: bool,
}

/// Early pieces a stream keeps at most.
const EARLY: usize = 8;

impl Stream {
    /// Add bytes at `offset`, keeping at most `cap` bytes of the stream.
    fn add(&mut self, offset: usize, data: &[u8], cap: usize) {
        if offset >= cap {
            return;
        }
        let data = &data[..data.len().min(cap - offset)];
        if offset <= self.buf.len() {
            let skip = self.buf.len() - offset;
            if skip < data.len() {
                self.buf.extend_from_slice(&data[skip..]);
            }
            // pieces that now join
            loop {
                let len = self.buf.len();
                let Some(i) = self.early.iter().position(|(o, _)| *o <= len) else {
                    break;
                };
                let (o, d) = self.early.swap_remove(i);
                let skip = len - o;
                if skip < d.len() {
                    self.buf.extend_from_slice(&d[skip..]);
                }
            }
        } else if self.early.len() < EARLY {
            self.early.push((offset, data.to_vec()));
        }
    }
}

/// Bytes of a TLS stream's start kept (the kernel sends no more).
pub const TLS_CAP: usize = 2048;
/// Bytes of a QUIC CRYPTO stream kept.
pub const QUIC_CAP: usize = 4096;
/// QUIC datagrams the kernel hands over per socket: a hello not whole by
/// then is read as far as it goes.
pub const QUIC_DATAGRAMS: usize = 2;
/// Bytes of a TCP DNS stream kept.
pub const TCP_DNS_CAP: usize = 16384;

/// Names as processes saw them; `P` identifies a process.
pub struct NameBook<P> {
    own: Bounded<(P, IpAddr)>,
    shared: Bounded<(u32, IpAddr)>,
    streams: FxHashMap<u64, Stream>,
    stream_order: VecDeque<u64>,
    limits: Limits,
    stats: NameStats,
}

impl<P> std::fmt::Debug for NameBook<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameBook")
            .field("own", &self.own.map.len())
            .field("shared", &self.shared.map.len())
            .field("streams", &self.streams.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl<P: Hash + Eq + Copy> NameBook<P> {
    /// An empty book.
    pub fn new(limits: Limits) -> Self {
        NameBook {
            own: Bounded::new(limits.own),
            shared: Bounded::new(limits.shared),
            streams: FxHashMap::default(),
            stream_order: VecDeque::new(),
            limits,
            stats: NameStats::default(),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> NameStats {
        self.stats
    }

    /// Entries held: (process book, namespace book, streams).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.own.len(), self.shared.len(), self.streams.len())
    }

    /// A DNS answer `proc` (of user `uid`) received in network namespace
    /// `netns` at `at_ns` (`whole`: not cut by the kernel).
    pub fn dns(&mut self, proc: P, uid: u32, netns: u32, at_ns: u64, msg: &[u8], whole: bool) {
        let a = match dns::answer(msg, whole) {
            Ok(a) => a,
            Err(_) => {
                self.stats.dns_unreadable += 1;
                return;
            }
        };
        self.stats.dns_answers += 1;
        self.stats.dns_addrs_dropped += a.dropped as u64;
        if a.addrs.is_empty() || a.name.is_empty() {
            return;
        }
        let name: Arc<str> = a.name.into();
        for (addr, ttl) in a.addrs {
            // a TTL of 0 still names the connection the answer was for
            let until = at_ns.saturating_add(u64::from(ttl.max(1)) * 1_000_000_000);
            let addr = canonical(addr);
            self.stats.dns_addrs += 1;
            for put in [
                self.own.put((proc, addr), uid, &name, until),
                self.shared.put((netns, addr), uid, &name, until),
            ] {
                self.stats.evicted += put.evicted;
                self.stats.refused += u64::from(put.refused);
            }
        }
    }

    /// Bytes of a TCP DNS stream `proc` received on socket `cookie`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one answer's context, as dns() takes it"
    )]
    pub fn dns_tcp(
        &mut self,
        cookie: u64,
        proc: P,
        uid: u32,
        netns: u32,
        at_ns: u64,
        offset: u32,
        data: &[u8],
    ) {
        let msgs: Vec<Vec<u8>> = {
            let Some(s) = self.stream(cookie) else { return };
            s.add(offset as usize, data, TCP_DNS_CAP);
            let (msgs, used) = dns::tcp_messages(&s.buf[s.read..]);
            let msgs = msgs.into_iter().map(<[u8]>::to_vec).collect();
            s.read += used;
            msgs
        };
        for m in msgs {
            self.dns(proc, uid, netns, at_ns, &m, true);
        }
    }

    /// Bytes a TCP socket sent from `offset` on; the ClientHello they
    /// hold once it is read (once per socket).
    pub fn tls(&mut self, cookie: u64, offset: u32, data: &[u8]) -> Option<Hello> {
        let s = self.stream(cookie)?;
        s.add(offset as usize, data, TLS_CAP);
        let parsed = tls::from_records(&s.buf);
        let full = s.buf.len() >= TLS_CAP;
        self.decide(cookie, parsed, full)
    }

    /// A datagram a UDP socket sent to port 443; the ClientHello its
    /// Initials hold once read.
    pub fn quic(&mut self, cookie: u64, datagram: &[u8]) -> Option<Hello> {
        if self.streams.get(&cookie).is_some_and(|s| s.done) {
            return None;
        }
        let frames = match quic::initial_crypto(datagram) {
            Ok(f) => f,
            Err(_) => {
                self.stats.quic_unreadable += 1;
                // it still counts against what the kernel sends: a hello
                // begun earlier is read as far as it goes
                let s = self.streams.get_mut(&cookie)?;
                s.read += 1;
                if s.read < QUIC_DATAGRAMS {
                    return None;
                }
                let parsed = tls::handshake(&s.buf);
                return self.decide(cookie, parsed, true);
            }
        };
        let s = self.stream(cookie)?;
        for (off, d) in frames {
            if let Ok(off) = usize::try_from(off) {
                s.add(off, &d, QUIC_CAP);
            }
        }
        s.read += 1;
        let parsed = tls::handshake(&s.buf);
        let full = s.buf.len() >= QUIC_CAP || s.read >= QUIC_DATAGRAMS;
        self.decide(cookie, parsed, full)
    }

    fn decide(&mut self, cookie: u64, parsed: Parse, full: bool) -> Option<Hello> {
        let hello = match parsed {
            Parse::Done(h) => h,
            Parse::Partial(h) if full => h,
            Parse::Partial(_) => return None,
            Parse::NotHello => {
                self.stats.not_hello += 1;
                self.finish(cookie);
                return None;
            }
        };
        self.stats.hellos += 1;
        self.finish(cookie);
        Some(hello)
    }

    fn finish(&mut self, cookie: u64) {
        if let Some(s) = self.streams.get_mut(&cookie) {
            *s = Stream {
                done: true,
                ..Stream::default()
            };
        }
    }

    /// The stream of `cookie`, made if new (the oldest pushed out when
    /// there are too many); `None` once it was decided.
    fn stream(&mut self, cookie: u64) -> Option<&mut Stream> {
        if !self.streams.contains_key(&cookie) {
            while self.streams.len() >= self.limits.streams.max(1) {
                let Some(old) = self.stream_order.pop_front() else {
                    break;
                };
                if let Some(s) = self.streams.remove(&old)
                    && !s.done
                {
                    self.stats.streams_evicted += 1;
                }
            }
            self.stream_order.push_back(cookie);
            if self.stream_order.len() > 2 * self.limits.streams.max(1) {
                let streams = &self.streams;
                self.stream_order
                    .retain(|c| streams.contains_key(c) || *c == cookie);
            }
        }
        let s = self.streams.entry(cookie).or_default();
        (!s.done).then_some(s)
    }

    /// The socket is gone: forget its stream.
    pub fn socket_closed(&mut self, cookie: u64) {
        self.streams.remove(&cookie);
    }

    /// The name `addr` had for `proc` (its own answers) or, failing that,
    /// for its network namespace, at `at_ns`.
    pub fn lookup(&self, proc: P, netns: u32, addr: IpAddr, at_ns: u64) -> Option<Lookup> {
        let addr = canonical(addr);
        if let Some(n) = self.own.get(&(proc, addr), at_ns) {
            return Some(Lookup {
                name: Arc::clone(n),
                source: RnameSource::Dns,
            });
        }
        self.shared.get(&(netns, addr), at_ns).map(|n| Lookup {
            name: Arc::clone(n),
            source: RnameSource::Shared,
        })
    }
}

/// IPv4-mapped IPv6 addresses as IPv4 (a flow's remote and an A record
/// must meet).
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether a flow to `a` that no answer named is worth marking
/// (`rname_source: none`): not loopback, link-local, multicast, broadcast,
/// unspecified, or in `local` (private networks by default).
pub fn is_unresolved_worthy(a: IpAddr, local: &[(IpAddr, u8)]) -> bool {
    let a = canonical(a);
    let special = match a {
        IpAddr::V4(v) => {
            v.is_loopback()
                || v.is_link_local()
                || v.is_multicast()
                || v.is_broadcast()
                || v.is_unspecified()
        }
        IpAddr::V6(v) => {
            v.is_loopback() || v.is_multicast() || v.is_unspecified() || v.is_unicast_link_local()
        }
    };
    !special && !local.iter().any(|&(net, len)| in_net(a, net, len))
}

/// Whether `a` is in `net`/`len`.
pub fn in_net(a: IpAddr, net: IpAddr, len: u8) -> bool {
    match (canonical(a), canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let len = u32::from(len.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let len = u32::from(len.min(128));
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Private networks (RFC 1918, shared address space, ULA): flows to them
/// are not marked `none` unless the site says otherwise.
pub fn private_nets() -> Vec<(IpAddr, u8)> {
    [
        ("10.0.0.0", 8),
        ("172.16.0.0", 12),
        ("192.168.0.0", 16),
        ("100.64.0.0", 10),
        ("fc00::", 7),
    ]
    .iter()
    .filter_map(|(n, l)| n.parse().ok().map(|a| (a, *l)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::example_answer as build;
    use crate::tls::{example_hello as hello, example_records as records};

    const S: u64 = 1_000_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_process_sees_its_own_name_for_a_shared_address() {
        let mut b: NameBook<u32> = NameBook::new(Limits::default());
        b.dns(
            1,
            1000,
            7,
            S,
            &build("a.example", &[("a.example", 1, "192.0.2.1")], 60),
            true,
        );
        b.dns(
            2,
            1000,
            7,
            2 * S,
            &build("b.example", &[("b.example", 1, "192.0.2.1")], 60),
            true,
        );
        let l1 = b.lookup(1, 7, ip("192.0.2.1"), 3 * S).unwrap();
        let l2 = b.lookup(2, 7, ip("::ffff:192.0.2.1"), 3 * S).unwrap();
        assert_eq!((&*l1.name, l1.source), ("a.example", RnameSource::Dns));
        assert_eq!((&*l2.name, l2.source), ("b.example", RnameSource::Dns));
        // a third process of the namespace: the latest answer, shared
        let l3 = b.lookup(3, 7, ip("192.0.2.1"), 3 * S).unwrap();
        assert_eq!((&*l3.name, l3.source), ("b.example", RnameSource::Shared));
        // another namespace: nothing
        assert_eq!(b.lookup(3, 8, ip("192.0.2.1"), 3 * S), None);
    }

    #[test]
    fn answers_expire_with_their_ttl() {
        let mut b: NameBook<u32> = NameBook::new(Limits::default());
        b.dns(
            1,
            1000,
            7,
            10 * S,
            &build("t.example", &[("t.example", 28, "2001:db8::1")], 30),
            true,
        );
        assert!(b.lookup(1, 7, ip("2001:db8::1"), 40 * S).is_some());
        assert_eq!(b.lookup(1, 7, ip("2001:db8::1"), 40 * S + 1), None);
        // TTL 0: good for the connection it was asked for
        b.dns(
            1,
            1000,
            7,
            50 * S,
            &build("z.example", &[("z.example", 1, "192.0.2.9")], 0),
            true,
        );
        assert!(b.lookup(1, 7, ip("192.0.2.9"), 50 * S + S / 2).is_some());
    }

    #[test]
    fn the_book_is_bounded_and_counts_what_it_pushes_out() {
        let mut b: NameBook<u32> = NameBook::new(Limits {
            own: 100,
            shared: 50,
            streams: 4,
        });
        for i in 0..1_000u32 {
            let a = format!("10.9.{}.{}", i / 250, i % 250);
            b.dns(
                i % 3,
                i,
                7,
                S,
                &build("flood.example", &[("flood.example", 1, &a)], 600),
                true,
            );
        }
        let (own, shared, _) = b.sizes();
        assert_eq!((own, shared), (100, 50));
        assert_eq!(b.stats().evicted, 900 + 950);
        // the newest are there, the oldest not
        assert!(b.lookup(999 % 3, 7, ip("10.9.3.249"), S).is_some());
        assert!(b.lookup(0, 7, ip("10.9.0.0"), S).is_none());
        // rewriting one address over and over does not grow anything
        for _ in 0..10_000 {
            b.dns(
                1,
                1000,
                7,
                S,
                &build("same.example", &[("same.example", 1, "192.0.2.5")], 600),
                true,
            );
        }
        assert!(b.own.order.len() <= 200 && b.shared.order.len() <= 100);
        // streams: at most 4, the oldest unfinished counted
        for c in 0..10u64 {
            assert_eq!(b.tls(c, 0, &[22, 3, 1, 0, 200, 1]), None);
        }
        assert_eq!(b.sizes().2, 4);
        assert_eq!(b.stats().streams_evicted, 6);
    }

    /// One user flooding itself with answers holds a quarter of the book
    /// at most: everyone else's names stay, what it lost is counted.
    #[test]
    fn one_user_cannot_push_out_everyone_elses_names() {
        let mut b: NameBook<u32> = NameBook::new(Limits {
            own: 100,
            shared: 100,
            streams: 4,
        });
        for i in 0..50u32 {
            let a = format!("10.8.0.{i}");
            b.dns(
                i,
                1000 + i,
                7,
                S,
                &build("good.example", &[("good.example", 1, &a)], 600),
                true,
            );
        }
        for i in 0..10_000u32 {
            let a = format!("10.7.{}.{}", i / 250, i % 250);
            b.dns(
                9999,
                666,
                7,
                S,
                &build("evil.example", &[("evil.example", 1, &a)], 600),
                true,
            );
        }
        let (own, shared, _) = b.sizes();
        assert_eq!((own, shared), (75, 75));
        assert_eq!(b.stats().refused, 2 * (10_000 - 25));
        for i in 0..50u32 {
            let l = b
                .lookup(i, 7, format!("10.8.0.{i}").parse().unwrap(), S)
                .unwrap();
            assert_eq!(&*l.name, "good.example");
        }
        // its own names can be rewritten within its share
        b.dns(
            9999,
            666,
            7,
            S,
            &build("evil2.example", &[("evil2.example", 1, "10.7.0.0")], 600),
            true,
        );
        assert_eq!(
            &*b.lookup(9999, 7, ip("10.7.0.0"), S).unwrap().name,
            "evil2.example"
        );
    }

    #[test]
    fn a_hello_split_and_out_of_order_is_read_once() {
        let mut b: NameBook<u32> = NameBook::new(Limits::default());
        let s = records(&hello(b"split.example", &["h2"], 900), 16384);
        let (a, rest) = s.split_at(500);
        let (m, z) = rest.split_at(300);
        assert_eq!(b.tls(9, 800, z), None);
        assert_eq!(b.tls(9, 0, a), None);
        // a retransmission of the first part changes nothing
        assert_eq!(b.tls(9, 0, a), None);
        let h = b.tls(9, 500, m).unwrap();
        assert_eq!(h.sni.as_deref(), Some("split.example"));
        assert_eq!(b.tls(9, 0, &s), None, "decided once");
        assert_eq!(b.stats().hellos, 1);
        // plain HTTP: decided at once, not a hello
        assert_eq!(b.tls(10, 0, b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(b.stats().not_hello, 1);
        b.socket_closed(9);
        b.socket_closed(10);
        assert_eq!(b.sizes().2, 0);
    }

    /// A real ClientHello (aioquic, 30 extra ALPN protocols) over two
    /// Initials, in either order: read once both are there; the first
    /// alone is read as far as it goes once the kernel has sent all it
    /// sends.
    #[test]
    fn a_quic_hello_over_two_initials_is_put_together() {
        const A: &[u8] = include_bytes!("../tests/data/aioquic-split-0.bin");
        const B: &[u8] = include_bytes!("../tests/data/aioquic-split-1.bin");
        let mut b: NameBook<u32> = NameBook::new(Limits::default());
        assert_eq!(b.quic(1, B), None);
        let h = b.quic(1, A).expect("both Initials");
        assert_eq!(h.sni.as_deref(), Some("split.example.org"));
        let alpn = h.alpn.expect("alpn");
        assert!(alpn.starts_with("h3,proto-00-"), "{alpn}");
        assert_eq!(alpn.split(',').count(), tls::MAX_ALPN);
        assert_eq!(b.quic(1, A), None, "decided once");
        // the first Initial, then something that is not one: decided with
        // what the first held
        let mut b: NameBook<u32> = NameBook::new(Limits::default());
        assert_eq!(b.quic(2, A), None);
        let mut junk = A.to_vec();
        junk[300] ^= 1;
        let h = b.quic(2, &junk).expect("decided after two datagrams");
        assert_eq!(h.sni.as_deref(), Some("split.example.org"));
        assert_eq!(b.stats().quic_unreadable, 1);
    }

    #[test]
    fn tcp_dns_answers_are_read_from_their_stream() {
        let mut b: NameBook<u32> = NameBook::new(Limits::default());
        let m = build("tcp.example", &[("tcp.example", 1, "192.0.2.44")], 60);
        let mut s = u16::try_from(m.len()).unwrap().to_be_bytes().to_vec();
        s.extend_from_slice(&m);
        b.dns_tcp(5, 1, 1000, 7, S, 0, &s[..10]);
        assert_eq!(b.lookup(1, 7, ip("192.0.2.44"), S), None);
        b.dns_tcp(5, 1, 1000, 7, S, 10, &s[10..]);
        assert_eq!(
            &*b.lookup(1, 7, ip("192.0.2.44"), S).unwrap().name,
            "tcp.example"
        );
        assert_eq!(b.stats().dns_answers, 1);
    }

    #[test]
    fn what_counts_as_connected_without_resolving() {
        let private = private_nets();
        assert!(is_unresolved_worthy(ip("192.0.2.1"), &private));
        assert!(is_unresolved_worthy(ip("2001:db8::1"), &private));
        for a in [
            "10.1.2.3",
            "127.0.0.1",
            "::1",
            "fe80::1",
            "224.0.0.1",
            "fd00:231::1",
            "172.20.0.1",
        ] {
            assert!(!is_unresolved_worthy(ip(a), &private), "{a}");
        }
        assert!(is_unresolved_worthy(ip("10.231.0.1"), &[]));
        assert!(in_net(ip("::ffff:10.0.0.1"), ip("10.0.0.0"), 8));
    }
}
