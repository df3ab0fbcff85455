//! Packet captures annotated with their process (`netwho pcap -w FILE`):
//! the packets of the flows a filter selects, both directions, written as
//! pcapng (`docs/specs/pcapng.md`).
//!
//! The kernel program copies each packet of an in-scope socket (from its
//! IP header, up to the snap length) to the ring in chunks
//! ([`PacketChunk`]); the pipeline hands them to [`PcapSink`] before any
//! filter. The sink puts each packet's chunks together, joins it to the
//! flow of its (socket, remote) — known only if the filter passed that flow
//! to the sink — and writes it as an Enhanced Packet Block with the
//! process's id option, a comment naming the process, and netwho's custom
//! option; packets of flows the filter did not pass are never written.
//! Everything is bounded: packets in assembly, packets waiting for their
//! flow, flows remembered; what is dropped is counted, and written as the
//! interfaces' drop counts at the end.

use netwho_model::capture::{CaptureDir, PacketChunk};
use netwho_model::record::Context;
use netwho_model::time::WallClock;
use netwho_model::{FlowEvent, MonoNs, WireKey};
use netwho_sink::output::Output;
use netwho_sink::status::StatusRecord;
use netwho_sink::{RecordRef, Sink, SinkControl};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// `LINKTYPE_RAW`: packets begin with their IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u16 = 101;
/// netwho's enterprise number in its custom option (the documentation PEN
/// netwho's IPFIX elements use by default).
pub const PEN: u32 = 32473;
/// The custom option's format version.
pub const CUSTOM_VERSION: u8 = 1;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const EPB: u32 = 6;
const ISB: u32 = 5;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const EPB_FLAGS: u16 = 2;
const EPB_PID_TID: u16 = 8;
/// Custom option, binary, may be copied.
const OPT_CUSTOM_BINARY: u16 = 2989;
const IF_NAME: u16 = 2;
const IF_DESCRIPTION: u16 = 3;
const IF_TSRESOL: u16 = 9;
const SHB_USERAPPL: u16 = 4;
const ISB_STARTTIME: u16 = 2;
const ISB_ENDTIME: u16 = 3;
const ISB_IFRECV: u16 = 4;
const ISB_OSDROP: u16 = 7;

/// Longest process string kept in a comment or the custom option (bytes).
pub const MAX_NAME: usize = 256;
/// Packets being put together at once (at most 16 KiB each: 16 MiB).
const MAX_ASSEMBLING: usize = 1024;
/// Packets waiting for their flow's first event, and their bytes at most
/// (a flood of packets of flows the filter will not pass must not make
/// netwho hold much: the oldest go first, counted).
const MAX_WAITING: usize = 16_384;
const MAX_WAITING_BYTES: usize = 16 << 20;
/// How long a packet waits for its flow (ns of kernel time).
const WAIT_NS: u64 = 2_000_000_000;
/// Flows remembered (a flow's packets may come after its close event for
/// this long).
const MAX_FLOWS: usize = 1 << 18;
const CLOSED_KEEP_NS: u64 = 2_000_000_000;

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&value[..usize::from(len)]);
    pad4(out);
}

/// Appends a block: its type, its body (made by `body`, padded to 4
/// bytes), and its length before and after.
fn block(out: &mut Vec<u8>, kind: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    body(out);
    pad4(out);
    let len = u32::try_from(out.len() - start + 4).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
}

/// The Section Header Block.
pub fn section_header(out: &mut Vec<u8>, app: &str) {
    block(out, SHB, |b| {
        b.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        option(b, SHB_USERAPPL, app.as_bytes());
        option(b, OPT_END, &[]);
    });
}

/// An Interface Description Block: raw IP, nanosecond times.
pub fn interface(out: &mut Vec<u8>, snaplen: u32, name: &str, description: &str) {
    block(out, IDB, |b| {
        b.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&snaplen.to_le_bytes());
        option(b, IF_NAME, name.as_bytes());
        option(b, IF_DESCRIPTION, description.as_bytes());
        option(b, IF_TSRESOL, &[9]);
        option(b, OPT_END, &[]);
    });
}

/// Who a packet belongs to, as written with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// User id.
    pub uid: u32,
    /// netwho's flow id.
    pub flow_id: String,
    /// Process name.
    pub comm: String,
    /// Executable path.
    pub exe: String,
    /// User name.
    pub user: String,
    /// systemd unit.
    pub unit: String,
    /// Container id.
    pub container: String,
}

/// A string for a comment: cut to [`MAX_NAME`] bytes on a character, and
/// with backslash, space, `=` and control characters written `\xNN`, so
/// that no value can end its field, add one, or break a line.
fn escaped(s: &str, out: &mut String) -> bool {
    let mut cut = false;
    let mut n = 0;
    for c in s.chars() {
        if n + c.len_utf8() > MAX_NAME {
            cut = true;
            break;
        }
        n += c.len_utf8();
        if c.is_control() || c == '\\' || c == ' ' || c == '=' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            out.push(c);
        }
    }
    cut
}

fn cut_bytes(s: &str) -> &[u8] {
    let mut end = s.len().min(MAX_NAME);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s.as_bytes()[..end]
}

impl Owner {
    /// The comment: `pid=N comm=C exe=E user=U uid=N unit=S container=C
    /// flow=ID` (empty fields left out); `true` if a value was cut.
    pub fn comment(&self) -> (String, bool) {
        let mut s = format!("netwho pid={}", self.pid);
        let mut cut = false;
        for (k, v) in [
            ("comm", &self.comm),
            ("exe", &self.exe),
            ("user", &self.user),
        ] {
            if !v.is_empty() {
                s.push_str(&format!(" {k}="));
                cut |= escaped(v, &mut s);
            }
        }
        s.push_str(&format!(" uid={}", self.uid));
        for (k, v) in [("unit", &self.unit), ("container", &self.container)] {
            if !v.is_empty() {
                s.push_str(&format!(" {k}="));
                cut |= escaped(v, &mut s);
            }
        }
        s.push_str(&format!(" flow={}", self.flow_id));
        (s, cut)
    }

    /// netwho's custom option's value after the PEN: version 1, pid and uid
    /// (u32, little-endian), then flow id, comm, exe, user, unit,
    /// container, each a u16 length (little-endian) and its UTF-8 bytes.
    pub fn custom(&self) -> Vec<u8> {
        let mut v = vec![CUSTOM_VERSION];
        v.extend_from_slice(&self.pid.to_le_bytes());
        v.extend_from_slice(&self.uid.to_le_bytes());
        for s in [
            &self.flow_id,
            &self.comm,
            &self.exe,
            &self.user,
            &self.unit,
            &self.container,
        ] {
            let b = cut_bytes(s);
            v.extend_from_slice(&(b.len() as u16).to_le_bytes());
            v.extend_from_slice(b);
        }
        v
    }
}

/// One whole packet, ready to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Its interface's index in the file.
    pub interface: u32,
    /// Unix ns.
    pub ts_ns: u64,
    /// Its length.
    pub len: u32,
    /// Which way, seen from the process.
    pub dir: CaptureDir,
    /// The bytes captured (from the IP header).
    pub data: Vec<u8>,
}

/// An Enhanced Packet Block; `true` if a comment value was cut.
pub fn packet(out: &mut Vec<u8>, p: &Packet, who: &Owner) -> bool {
    let (comment, cut) = who.comment();
    block(out, EPB, |b| {
        b.extend_from_slice(&p.interface.to_le_bytes());
        b.extend_from_slice(&((p.ts_ns >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(p.ts_ns as u32).to_le_bytes());
        b.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
        b.extend_from_slice(&p.len.max(p.data.len() as u32).to_le_bytes());
        b.extend_from_slice(&p.data);
        pad4(b);
        option(b, OPT_COMMENT, comment.as_bytes());
        let flags: u32 = match p.dir {
            CaptureDir::Recv => 1,
            CaptureDir::Sent => 2,
        };
        option(b, EPB_FLAGS, &flags.to_le_bytes());
        let mut pid_tid = who.pid.to_le_bytes().to_vec();
        pid_tid.extend_from_slice(&0u32.to_le_bytes());
        option(b, EPB_PID_TID, &pid_tid);
        let mut custom = PEN.to_le_bytes().to_vec();
        custom.extend_from_slice(&who.custom());
        option(b, OPT_CUSTOM_BINARY, &custom);
        option(b, OPT_END, &[]);
    });
    cut
}

/// An Interface Statistics Block.
pub fn statistics(
    out: &mut Vec<u8>,
    interface: u32,
    (start, end): (u64, u64),
    received: u64,
    dropped: u64,
) {
    block(out, ISB, |b| {
        b.extend_from_slice(&interface.to_le_bytes());
        b.extend_from_slice(&((end >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(end as u32).to_le_bytes());
        let t = |ns: u64| {
            let mut v = ((ns >> 32) as u32).to_le_bytes().to_vec();
            v.extend_from_slice(&(ns as u32).to_le_bytes());
            v
        };
        option(b, ISB_STARTTIME, &t(start));
        option(b, ISB_ENDTIME, &t(end));
        option(b, ISB_IFRECV, &received.to_le_bytes());
        option(b, ISB_OSDROP, &dropped.to_le_bytes());
        option(b, OPT_END, &[]);
    });
}

/// A packet being put together from its chunks.
#[derive(Debug)]
struct Assembly {
    first: PacketChunk,
    data: Vec<u8>,
    got: usize,
}

/// A flow the filter passed: who it belongs to, its interface per
/// namespace, and when it closed.
#[derive(Debug)]
struct Known {
    owner: Owner,
    netns: u32,
    closed: Option<MonoNs>,
}

/// What the sink counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcapStats {
    /// Packets written.
    pub written: u64,
    /// Packets of flows the filter did not pass (or that never had a flow).
    pub unmatched: u64,
    /// Packets dropped here: incomplete (a chunk lost in the kernel), or
    /// past the bounds of assembly and waiting.
    pub dropped: u64,
    /// Packets the kernel could not give whole (its `packets_lost`).
    pub kernel_lost: u64,
    /// Comment values cut to their bound.
    pub truncated: u64,
}

/// The pcapng sink (see the module's documentation).
#[derive(Debug)]
pub struct PcapSink {
    out: Output,
    snaplen: u32,
    wall: Option<WallClock>,
    assembling: FxHashMap<u64, Assembly>,
    order: VecDeque<u64>,
    waiting: VecDeque<PacketChunk>,
    waiting_bytes: usize,
    flows: FxHashMap<WireKey, Known>,
    interfaces: FxHashMap<(u32, u32), u32>,
    /// Packets written per interface.
    per_interface: Vec<u64>,
    first_ns: Option<u64>,
    last_ns: u64,
    /// Stop after this long (from the first tick).
    duration: Option<std::time::Duration>,
    /// An interface's name from its namespace and index, where it can be
    /// known (the caller's own namespace).
    names: fn(u32, u32) -> Option<String>,
    started: Option<MonoNs>,
    /// What it counted.
    pub stats: PcapStats,
}

impl PcapSink {
    /// A sink writing a pcapng file to `out`, packets cut at `snaplen`,
    /// done after `duration` if given.
    pub fn new(mut out: Output, snaplen: u32, duration: Option<std::time::Duration>) -> Self {
        section_header(
            out.buf(),
            &format!("netwho {} pcap", env!("CARGO_PKG_VERSION")),
        );
        PcapSink {
            out,
            snaplen,
            wall: None,
            assembling: FxHashMap::default(),
            order: VecDeque::new(),
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            flows: FxHashMap::default(),
            interfaces: FxHashMap::default(),
            per_interface: Vec::new(),
            first_ns: None,
            last_ns: 0,
            duration,
            names: |_, _| None,
            started: None,
            stats: PcapStats::default(),
        }
    }

    /// Names interfaces with `names` (namespace, index) where it knows them.
    pub fn with_names(mut self, names: fn(u32, u32) -> Option<String>) -> Self {
        self.names = names;
        self
    }

    fn unix_ns(&self, t: MonoNs) -> u64 {
        self.wall
            .map_or(0, |w| u64::try_from(w.unix_ns(t)).unwrap_or(0))
    }

    /// The interface of (namespace, ifindex), described on first use.
    fn interface(&mut self, netns: u32, ifindex: u32) -> u32 {
        if let Some(i) = self.interfaces.get(&(netns, ifindex)) {
            return *i;
        }
        let i = u32::try_from(self.interfaces.len()).unwrap_or(u32::MAX);
        let name = (self.names)(netns, ifindex).map_or_else(
            || format!("if{ifindex}@netns{netns}"),
            |n| format!("{n}@netns{netns}"),
        );
        interface(
            self.out.buf(),
            self.snaplen,
            &name,
            &format!(
                "interface index {ifindex} in network namespace {netns} (IP packets as the socket's cgroup hooks saw them)"
            ),
        );
        self.interfaces.insert((netns, ifindex), i);
        self.per_interface.push(0);
        i
    }

    /// A whole packet: written if its flow is known, else it waits.
    fn whole(&mut self, first: PacketChunk, data: Vec<u8>) {
        let chunk = PacketChunk { data, ..first };
        if self.flows.contains_key(&chunk.key) {
            self.write(&chunk);
        } else {
            while !self.waiting.is_empty()
                && (self.waiting.len() >= MAX_WAITING
                    || self.waiting_bytes + chunk.data.len() > MAX_WAITING_BYTES)
            {
                if let Some(old) = self.waiting.pop_front() {
                    self.waiting_bytes -= old.data.len();
                }
                self.stats.dropped += 1;
            }
            self.waiting_bytes += chunk.data.len();
            self.waiting.push_back(chunk);
        }
    }

    fn write(&mut self, p: &PacketChunk) {
        let Some(k) = self.flows.get(&p.key) else {
            return;
        };
        let (owner, netns) = (k.owner.clone(), k.netns);
        let iface = self.interface(netns, p.ifindex);
        let ts = self.unix_ns(p.at);
        self.first_ns.get_or_insert(ts);
        self.last_ns = self.last_ns.max(ts);
        let pkt = Packet {
            interface: iface,
            ts_ns: ts,
            len: p.len,
            dir: p.dir,
            data: p.data.clone(),
        };
        if packet(self.out.buf(), &pkt, &owner) {
            self.stats.truncated += 1;
        }
        self.out.record_done();
        if let Some(n) = self.per_interface.get_mut(iface as usize) {
            *n += 1;
        }
        self.stats.written += 1;
    }

    /// Packets that waited: written once their flow is known, dropped
    /// (unmatched) after [`WAIT_NS`].
    fn settle(&mut self, now: MonoNs) {
        let waiting = std::mem::take(&mut self.waiting);
        self.waiting_bytes = 0;
        for p in waiting {
            if self.flows.contains_key(&p.key) {
                self.write(&p);
            } else if now.0.saturating_sub(p.at.0) >= WAIT_NS {
                self.stats.unmatched += 1;
            } else {
                self.waiting_bytes += p.data.len();
                self.waiting.push_back(p);
            }
        }
        // closed flows go once their stragglers had time
        self.flows.retain(|_, k| {
            k.closed
                .is_none_or(|c| now.0.saturating_sub(c.0) < CLOSED_KEEP_NS)
        });
        // packets whose chunks stopped coming (a chunk was lost)
        while let Some(id) = self.order.front().copied() {
            match self.assembling.get(&id) {
                Some(a) if now.0.saturating_sub(a.first.at.0) >= WAIT_NS => {
                    self.assembling.remove(&id);
                    self.order.pop_front();
                    self.stats.dropped += 1;
                }
                Some(_) => break,
                None => {
                    self.order.pop_front();
                }
            }
        }
    }
}

fn owner(ev: &FlowEvent, ctx: &Context) -> Owner {
    let f = ev.flow();
    Owner {
        pid: f.key.proc.tgid,
        uid: f.uid,
        flow_id: f.id.to_string(),
        comm: f.comm.clone(),
        exe: f.proc.exe.clone(),
        user: ctx.names.user.clone(),
        unit: ctx.names.unit.clone(),
        container: ctx.names.container_id.clone(),
    }
}

impl Sink for PcapSink {
    fn event(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        self.wall.get_or_insert(rec.wall());
        let f = ev.flow();
        let key = WireKey {
            cookie: f.key.cookie,
            remote: f.remote,
        };
        let closed = match ev {
            FlowEvent::Closed(f) => Some(f.closed.unwrap_or(rec.now())),
            _ => None,
        };
        if let Some(k) = self.flows.get_mut(&key) {
            k.closed = closed;
            return;
        }
        if self.flows.len() >= MAX_FLOWS {
            return;
        }
        let who = owner(ev, rec.context());
        self.flows.insert(
            key,
            Known {
                owner: who,
                netns: f.netns,
                closed,
            },
        );
    }

    fn packet(&mut self, c: &PacketChunk) {
        if c.offset == 0 && c.data.len() >= usize::from(c.caplen) {
            // the whole packet in one chunk (the common case)
            self.whole(c.clone(), c.data.clone());
            return;
        }
        let caplen = usize::from(c.caplen);
        if !self.assembling.contains_key(&c.id) {
            if self.assembling.len() >= MAX_ASSEMBLING
                && let Some(old) = self.order.pop_front()
                && self.assembling.remove(&old).is_some()
            {
                self.stats.dropped += 1;
            }
            self.assembling.insert(
                c.id,
                Assembly {
                    first: PacketChunk {
                        data: Vec::new(),
                        ..c.clone()
                    },
                    data: vec![0; caplen],
                    got: 0,
                },
            );
            self.order.push_back(c.id);
        }
        let Some(a) = self.assembling.get_mut(&c.id) else {
            return;
        };
        let start = usize::from(c.offset);
        let end = start + c.data.len();
        if end > a.data.len() || a.first.caplen != c.caplen {
            return;
        }
        a.data[start..end].copy_from_slice(&c.data);
        a.got += c.data.len();
        if start == 0 {
            a.first.at = c.at;
        }
        if a.got >= caplen
            && let Some(a) = self.assembling.remove(&c.id)
        {
            self.whole(a.first, a.data);
        }
    }

    fn status(&mut self, st: &StatusRecord) {
        self.stats.kernel_lost = st.kernel.packets_lost;
    }

    fn tick(&mut self, now: MonoNs, wall: WallClock) -> SinkControl {
        self.wall = Some(wall);
        self.settle(now);
        let started = *self.started.get_or_insert(now);
        match self.duration {
            Some(d)
                if now.0.saturating_sub(started.0)
                    >= u64::try_from(d.as_nanos()).unwrap_or(u64::MAX) =>
            {
                SinkControl::Done
            }
            _ => SinkControl::Continue,
        }
    }

    fn flush(&mut self) -> SinkControl {
        self.out.flush_control()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        // what waits for a flow that never came was not selected
        self.stats.unmatched += self.waiting.len() as u64;
        self.waiting.clear();
        self.waiting_bytes = 0;
        self.stats.dropped += self.assembling.len() as u64;
        self.assembling.clear();
        let span = (self.first_ns.unwrap_or(self.last_ns), self.last_ns);
        // losses are the capture's, not one interface's: the first says them
        let lost = self.stats.dropped + self.stats.kernel_lost;
        let counts = std::mem::take(&mut self.per_interface);
        for (i, n) in counts.iter().enumerate() {
            let dropped = if i == 0 { lost } else { 0 };
            statistics(self.out.buf(), i as u32, span, *n, dropped);
        }
        log::info!(
            "pcap: {} packets written, {} of other flows left out, {} dropped here, {} lost in the kernel",
            self.stats.written,
            self.stats.unmatched,
            self.stats.dropped,
            self.stats.kernel_lost
        );
        self.out.finish()
    }

    fn dropped(&self) -> u64 {
        self.out.dropped_records + self.stats.dropped
    }

    fn truncated(&self) -> u64 {
        self.stats.truncated
    }
}

#[cfg(test)]
mod tests;
