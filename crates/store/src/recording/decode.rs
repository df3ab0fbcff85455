//! Entries back to what the live run's sinks saw: each flow entry becomes
//! the [`FlowEvent`] and [`Context`] the recorder was given, with the
//! recorded time. Pure: frames in, items out.

use super::convert;
use super::encode::{Kind, get_varint};
use super::format::{CountRec, Entry, OpenRec};
use super::read::ReadStats;
use netwho_model::record::{Context, Names};
use netwho_model::time::WallClock;
use netwho_model::{
    CaptureDir, CapturePiece, Endpoint, Flow, FlowEvent, FlowId, FlowKey, MonoNs, ProcInfo,
    SockCookie, TcpState,
};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// What a recording replays.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A flow event as the sinks saw it live.
    Flow(Box<FlowItem>),
    /// A status record (JSON).
    Status {
        /// The record (JSON).
        json: String,
        /// When (boot time).
        at: MonoNs,
    },
    /// Wall time moved relative to boot time from here on.
    Clock(WallClock),
    /// The recorder stopped cleanly.
    End {
        /// When (boot time).
        at: MonoNs,
    },
}

/// A flow event, its context and time.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowItem {
    /// The flow event.
    pub ev: FlowEvent,
    /// Its names, hash and resources.
    pub ctx: Context,
    /// When (boot time).
    pub at: MonoNs,
    /// The totals of a flow still open when the recording ended.
    pub is_final: bool,
}

impl FlowItem {
    /// The item, borrowed.
    pub fn as_flow_ref(&self) -> FlowRef<'_> {
        FlowRef {
            kind: match self.ev {
                FlowEvent::Opened(_) => EventKind::Opened,
                FlowEvent::Updated(_) => EventKind::Updated,
                FlowEvent::Closed(_) => EventKind::Closed,
            },
            flow: self.ev.flow(),
            ctx: &self.ctx,
            at: self.at,
            is_final: self.is_final,
            seq: 0,
        }
    }
}

/// Which lifecycle point a [`FlowRef`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A flow opened.
    Opened,
    /// Its counters changed (or, with `is_final`, the recording ended).
    Updated,
    /// It closed.
    Closed,
}

/// A flow event as the decoder holds it, borrowed: what a reader that
/// only looks at each event (a report) is given, without the copy an
/// owned [`FlowItem`] costs.
#[derive(Clone, Copy, Debug)]
pub struct FlowRef<'a> {
    /// Which event.
    pub kind: EventKind,
    /// The flow as of the event.
    pub flow: &'a Flow,
    /// Its names, hash and resources.
    pub ctx: &'a Context,
    /// When (boot time).
    pub at: MonoNs,
    /// The totals of a flow still open when the recording ended.
    pub is_final: bool,
    /// Where in the recording the event is (orders the events of parts
    /// decoded apart; 0 for an owned item).
    pub seq: u64,
}

impl FlowRef<'_> {
    /// The event, owned.
    pub fn to_item(&self) -> FlowItem {
        let f = self.flow.clone();
        FlowItem {
            ev: match self.kind {
                EventKind::Opened => FlowEvent::Opened(f),
                EventKind::Updated => FlowEvent::Updated(f),
                EventKind::Closed => FlowEvent::Closed(f),
            },
            ctx: self.ctx.clone(),
            at: self.at,
            is_final: self.is_final,
        }
    }
}

/// What a frame gives a visitor: flow events borrowed, the rest owned.
#[derive(Debug)]
pub enum Visit<'a> {
    /// A flow event.
    Flow(FlowRef<'a>),
    /// A status record, a clock change or the end (never [`Item::Flow`]).
    Item(Item),
}

impl Visit<'_> {
    /// The event as an owned item (a flow event copied).
    pub fn into_item(self) -> Item {
        match self {
            Visit::Flow(r) => Item::Flow(Box::new(r.to_item())),
            Visit::Item(i) => i,
        }
    }
}

#[derive(Debug)]
struct OpenFlow {
    flow: Flow,
    /// Names and hash; resources as of the flow's last entry.
    ctx: Context,
}

/// Definitions of the current frame.
#[derive(Debug, Default)]
struct Defs {
    procs: FxHashMap<u32, Arc<ProcInfo>>,
    names: FxHashMap<u32, Arc<Names>>,
    shas: FxHashMap<u32, Arc<str>>,
}

/// Processes remembered across frames, at most (then forgotten at once:
/// a bound on memory, not on correctness).
pub(crate) const KNOWN_PROCS: usize = 16_384;

/// Turns frames into items, keeping the flows that are open.
#[derive(Debug, Default)]
pub struct Decoder {
    defs: Defs,
    /// Processes as earlier frames defined them: a frame that defines one
    /// again, unchanged, shares it (each frame reads on its own, so every
    /// frame defines its processes; most are the same as before).
    known: FxHashMap<netwho_model::ProcKey, Arc<ProcInfo>>,
    flows: FxHashMap<u64, OpenFlow>,
    last_at: u64,
    /// The seed of the records' Community IDs.
    community_seed: u16,
    /// Remote names written just before their flow's open.
    next_named: Option<(u64, Arc<netwho_model::names::RemoteName>)>,
    /// Decoding one part of the recording's flows (see [`Decoder::part`]).
    part: Option<PartState>,
    /// Entries read so far (every part counts every entry: a position in
    /// the recording).
    seq: u64,
    /// Processes by their entry's bytes (after the frame's number for
    /// them): a frame that defines a process as an earlier frame did is
    /// not decoded again (most frames define the same processes).
    raw_procs: FxHashMap<u64, (Box<[u8]>, Arc<ProcInfo>)>,
    /// The bytes `raw_procs` holds.
    raw_bytes: usize,
}

/// A process entry longer than this is decoded every time.
pub(crate) const RAW_PROC_MAX: usize = 16 << 10;
/// `raw_procs` holds at most this many bytes (then starts again).
pub(crate) const RAW_PROCS_BYTES: usize = 32 << 20;

/// A well-mixed hash of an entry's bytes (the map's own hash of a byte
/// string puts too many alike entries in one group: every probe then
/// compares whole entries).
fn bytes_hash(b: &[u8]) -> u64 {
    const K: u64 = 0xff51_afd7_ed55_8ccd;
    let mut h = 0x9e37_79b9_7f4a_7c15 ^ b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w).wrapping_mul(K).rotate_left(31);
    }
    let mut w = 0u64;
    for (i, x) in chunks.remainder().iter().enumerate() {
        w |= u64::from(*x) << (8 * i);
    }
    h = (h ^ w).wrapping_mul(K);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A process entry's number in its frame and the bytes that define it.
fn proc_body(body: &[u8]) -> Option<(u32, &[u8])> {
    let (variant, a) = get_varint(body)?;
    if variant != 0 {
        return None;
    }
    let (id, b) = get_varint(body.get(a..)?)?;
    Some((u32::try_from(id).ok()?, body.get(a + b..)?))
}

/// One part of a recording's flows: those whose socket cookie hashes to
/// `index` of `of`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// This part.
    pub index: u32,
    /// How many parts.
    pub of: u32,
}

impl Part {
    /// Whether a flow of this socket is this part's (a multiplicative
    /// hash: cookies are handed out in order).
    fn owns(self, cookie: u64) -> bool {
        let h = cookie.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        h % u64::from(self.of.max(1)) == u64::from(self.index)
    }
}

/// What a part's decoder counted that the parts' counts are put together
/// from (see [`Decoder::take_part_counts`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartCounts {
    /// Its stats (entries counted by part 0 only).
    pub stats: ReadStats,
    /// Entries of a flow after its open that this part had the flow of.
    pub owned: u64,
    /// Part 0: all entries of a flow after its open (any part's, or none's:
    /// an orphan is an entry no part had the flow of).
    pub flow_entries: u64,
}

#[derive(Debug)]
struct PartState {
    part: Part,
    owned: u64,
    flow_entries: u64,
    /// A remote name written before an open this part has not seen yet:
    /// its flow and entry, decoded only if the open is this part's.
    named: Option<(u64, Vec<u8>)>,
}

/// The start of a flow entry: its kind's number, its flow, its time step
/// (entries that carry one), and an open's socket cookie.
#[derive(Clone, Copy, Debug)]
struct Peek {
    variant: u64,
    flow: u64,
    dt_ns: Option<i64>,
    cookie: Option<u64>,
}

/// `Entry`'s variant numbers (postcard: the declaration order).
mod variant {
    pub const OPEN: u64 = 3;
    pub const CLOSE: u64 = 6;
    pub const CAPTURE: u64 = 10;
    pub const NAMED: u64 = 12;
}

/// Read the start of a flow entry without decoding the rest (None: not a
/// flow entry, or not readable: decode it whole).
fn peek(body: &[u8]) -> Option<Peek> {
    fn next(body: &[u8], at: &mut usize) -> Option<u64> {
        let (v, used) = get_varint(body.get(*at..)?)?;
        *at += used;
        Some(v)
    }
    let mut at = 0;
    let variant = next(body, &mut at)?;
    if !matches!(
        variant,
        variant::OPEN..=variant::CLOSE | variant::CAPTURE..=variant::NAMED
    ) {
        return None;
    }
    let flow = next(body, &mut at)?;
    let mut p = Peek {
        variant,
        flow,
        dt_ns: None,
        cookie: None,
    };
    if variant <= variant::CLOSE {
        let z = next(body, &mut at)?;
        // zigzag
        p.dt_ns = Some(((z >> 1) as i64) ^ -((z & 1) as i64));
    }
    if variant == variant::OPEN {
        // announced (one byte), flow_id, cookie
        if body.get(at).is_none_or(|b| *b > 1) {
            return None;
        }
        at += 1;
        let _flow_id = next(body, &mut at)?;
        p.cookie = Some(next(body, &mut at)?);
    }
    Some(p)
}

impl Decoder {
    /// A decoder at the start of a recording.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder like this one (its Community ID seed) for one part of
    /// the recording's flows: it gives the events of the flows whose socket
    /// falls in `part` (and every status, clock change and end), skipping
    /// the others' entries after reading their first few bytes. The parts'
    /// reports, put together, are the whole recording's.
    pub fn part(&self, part: Part) -> Decoder {
        Decoder {
            community_seed: self.community_seed,
            part: Some(PartState {
                part,
                owned: 0,
                flow_entries: 0,
                named: None,
            }),
            ..Decoder::default()
        }
    }

    /// What this part counted since the last call (see [`PartCounts`]).
    pub fn take_part_counts(&mut self, stats: &mut ReadStats) -> PartCounts {
        let (owned, flow_entries) = self.part.as_mut().map_or((0, 0), |p| {
            (
                std::mem::take(&mut p.owned),
                std::mem::take(&mut p.flow_entries),
            )
        });
        PartCounts {
            stats: std::mem::take(stats),
            owned,
            flow_entries,
        }
    }

    /// Processes remembered across frames (at most `KNOWN_PROCS`).
    #[cfg(test)]
    pub(crate) fn known_procs(&self) -> usize {
        self.known.len()
    }

    /// Process entries remembered by their bytes: how many, their bytes as
    /// counted, their bytes as held, the largest.
    #[cfg(test)]
    pub(crate) fn raw_procs(&self) -> (usize, usize, usize, usize) {
        let held = self.raw_procs.values().map(|(b, _)| b.len());
        (
            self.raw_procs.len(),
            self.raw_bytes,
            held.clone().sum(),
            held.max().unwrap_or(0),
        )
    }

    /// Records made of what this decoder gives carry Community IDs with
    /// this seed (`--community-id-seed`; 0 by default).
    pub fn set_community_seed(&mut self, seed: u16) {
        self.community_seed = seed;
    }

    /// Decode one frame's entries, appending items.
    pub fn frame(&mut self, raw: &[u8], stats: &mut ReadStats, out: &mut Vec<Item>) {
        self.frame_visit(raw, stats, &mut |v| out.push(v.into_item()));
    }

    /// Decode one frame's entries, handing each event to `emit` as it is
    /// decoded (flow events borrowed from the decoder's own state).
    pub fn frame_visit(
        &mut self,
        raw: &[u8],
        stats: &mut ReadStats,
        emit: &mut dyn FnMut(Visit<'_>),
    ) {
        self.begin_frame();
        let mut it = Entries::new(raw);
        let Some(part) = self.part.as_ref().map(|p| p.part) else {
            while let Some(body) = it.next_body() {
                self.seq += 1;
                self.decode_entry(&mut it, body, stats, emit);
            }
            it.count_into(stats);
            return;
        };
        while let Some(body) = it.next_body() {
            self.seq += 1;
            if let Some(p) = peek(body)
                && !self.mine(part, p, body)
            {
                if let Some(dt) = p.dt_ns {
                    self.at(dt);
                }
                continue;
            }
            self.decode_entry(&mut it, body, stats, emit);
        }
        if part.index == 0 {
            it.count_into(stats);
        }
    }

    /// Decode one entry (a process defined as before: from memory).
    fn decode_entry(
        &mut self,
        it: &mut Entries<'_>,
        body: &[u8],
        stats: &mut ReadStats,
        emit: &mut dyn FnMut(Visit<'_>),
    ) {
        let proc = proc_body(body).map(|(id, rest)| (id, rest, bytes_hash(rest)));
        if let Some((id, rest, h)) = proc
            && let Some((bytes, known)) = self.raw_procs.get(&h)
            && **bytes == *rest
        {
            self.defs.procs.insert(id, Arc::clone(known));
            return;
        }
        let Some(e) = super::fast::flow_entry(body).or_else(|| it.decode(body)) else {
            return;
        };
        self.entry(e, stats, emit);
        if let Some((id, rest, h)) = proc
            && rest.len() <= RAW_PROC_MAX
            && let Some(info) = self.defs.procs.get(&id)
        {
            if self.raw_bytes + rest.len() > RAW_PROCS_BYTES || self.raw_procs.len() >= KNOWN_PROCS
            {
                self.raw_procs.clear();
                self.raw_bytes = 0;
            }
            self.raw_bytes += rest.len();
            // (a hash shared with another entry: the newer one is kept)
            if let Some((old, _)) = self.raw_procs.insert(h, (rest.into(), Arc::clone(info))) {
                self.raw_bytes -= old.len();
            }
        }
    }

    /// Whether a flow entry is this part's to decode (counting it).
    fn mine(&mut self, part: Part, p: Peek, body: &[u8]) -> bool {
        let Some(ps) = self.part.as_mut() else {
            return true;
        };
        match p.variant {
            variant::OPEN => {
                let ours = p.cookie.is_some_and(|c| part.owns(c));
                let named = ps.named.take();
                if ours
                    && let Some((flow, raw)) = named
                    && flow == p.flow
                    && let Ok((Entry::Named(n), _)) = postcard::take_from_bytes::<Entry>(&raw)
                {
                    self.next_named = Some((n.flow, named_of(n)));
                }
                ours
            }
            variant::NAMED if !self.flows.contains_key(&p.flow) => {
                // before its open: kept until the open says whose it is
                let (_, raw) = ps.named.get_or_insert_with(|| (0, Vec::new()));
                raw.clear();
                raw.extend_from_slice(body);
                if let Some(n) = &mut ps.named {
                    n.0 = p.flow;
                }
                false
            }
            variant::NAMED => true,
            _ => {
                if part.index == 0 {
                    ps.flow_entries += 1;
                }
                let ours = self.flows.contains_key(&p.flow);
                if ours && let Some(ps) = self.part.as_mut() {
                    ps.owned += 1;
                }
                ours
            }
        }
    }

    /// A new frame starts: its definitions replace the last frame's.
    fn begin_frame(&mut self) {
        // (emptied, not replaced: their room serves the next frame)
        self.defs.procs.clear();
        self.defs.names.clear();
        self.defs.shas.clear();
        self.last_at = 0;
    }

    fn at(&mut self, dt_ns: i64) -> MonoNs {
        self.last_at = self.last_at.saturating_add_signed(dt_ns);
        MonoNs(self.last_at)
    }

    fn entry(&mut self, e: Entry, stats: &mut ReadStats, emit: &mut dyn FnMut(Visit<'_>)) {
        match e {
            Entry::Proc(p) => {
                let id = p.id;
                let info = convert::proc_info(p);
                let shared = match self.known.get(&info.key) {
                    Some(k) if **k == info => Arc::clone(k),
                    _ => {
                        if self.known.len() >= KNOWN_PROCS {
                            self.known.clear();
                        }
                        let a = Arc::new(info);
                        self.known.insert(a.key, Arc::clone(&a));
                        a
                    }
                };
                self.defs.procs.insert(id, shared);
            }
            Entry::Names(n) => {
                self.defs.names.insert(
                    n.id,
                    Arc::new(Names {
                        user: n.user,
                        group: n.group,
                        cgroup: n.cgroup,
                        unit: n.unit,
                        container_id: n.container_id,
                    }),
                );
            }
            Entry::Sha { id, hex } => {
                self.defs.shas.insert(id, Arc::from(hex));
            }
            Entry::Open(o) => self.open(o, stats, emit),
            Entry::Update(c) => self.count(c, Kind::Update, stats, emit),
            Entry::Final(c) => self.count(c, Kind::Final, stats, emit),
            Entry::Close(c) => self.count(c, Kind::Close, stats, emit),
            Entry::Status { dt_ns, json } => {
                let at = self.at(dt_ns);
                emit(Visit::Item(Item::Status { json, at }));
            }
            Entry::Clock { boot_to_unix_ns } => {
                emit(Visit::Item(Item::Clock(WallClock { boot_to_unix_ns })));
            }
            Entry::End { dt_ns } => {
                let at = self.at(dt_ns);
                stats.clean_end = true;
                emit(Visit::Item(Item::End { at }));
            }
            Entry::Named(n) => {
                let rn = named_of(n.clone());
                match self.flows.get_mut(&n.flow) {
                    Some(live) => live.flow.remote_name = Some(rn),
                    // the next open takes it (one at most waits)
                    None => self.next_named = Some((n.flow, rn)),
                }
            }
            Entry::Completeness { flow, complete } => match self.flows.get_mut(&flow) {
                Some(live) => live.flow.bytes_complete = complete,
                None => stats.orphans += 1,
            },
            Entry::Capture(c) => {
                // the flow's next item carries it
                let Some(live) = self.flows.get_mut(&c.flow) else {
                    stats.orphans += 1;
                    return;
                };
                let piece = CapturePiece {
                    dir: if c.recv {
                        CaptureDir::Recv
                    } else {
                        CaptureDir::Sent
                    },
                    offset: c.offset,
                    data: c.data,
                };
                Arc::make_mut(live.flow.capture.get_or_insert_with(Arc::default)).add(piece);
            }
        }
    }

    fn open(&mut self, o: OpenRec, stats: &mut ReadStats, emit: &mut dyn FnMut(Visit<'_>)) {
        let at = self.at(o.dt_ns);
        let (Some(proc), Some(names)) = (
            self.defs.procs.get(&o.proc).cloned(),
            self.defs.names.get(&o.names).cloned(),
        ) else {
            stats.orphans += 1;
            return;
        };
        let sha = o.sha.and_then(|id| self.defs.shas.get(&id).cloned());
        let remote = Endpoint::new(o.remote.0, o.remote.1);
        let mut flow = Flow {
            key: FlowKey {
                proc: proc.key,
                cookie: SockCookie(o.cookie),
                remote,
            },
            id: FlowId(o.flow_id),
            proto: convert::proto(o.proto),
            local: Endpoint::new(o.local.0, o.local.1),
            remote,
            packet: o.packet,
            netns: o.netns,
            direction: convert::direction(o.direction),
            tcp_state: o.tcp_state.and_then(|s| TcpState::try_from(s).ok()),
            opened: MonoNs(o.opened_ns),
            closed: None,
            close_reason: None,
            comm: o.comm,
            uid: o.uid,
            gid: o.gid,
            cgroup_id: o.cgroup_id,
            proc,
            payload: Default::default(),
            wire: Default::default(),
            attribution: convert::attribution(o.attribution),
            cpu_base: o.cpu_base.map(|(t, c)| (MonoNs(t), c)),
            bytes_complete: true,
            capture: None,
            remote_name: self
                .next_named
                .take()
                .filter(|(n, _)| *n == o.flow)
                .map(|(_, rn)| rn),
        };
        convert::set_counters(&mut flow, &o.counters);
        let ctx = Context {
            names,
            exe_sha256: sha,
            usage: None,
            track: o.track.as_ref().map(convert::track),
            community_seed: self.community_seed,
        };
        if o.announced {
            emit(Visit::Flow(FlowRef {
                kind: EventKind::Opened,
                flow: &flow,
                ctx: &ctx,
                at,
                is_final: false,
                seq: self.seq,
            }));
        }
        self.flows.insert(o.flow, OpenFlow { flow, ctx });
    }

    fn count(
        &mut self,
        c: CountRec,
        kind: Kind,
        stats: &mut ReadStats,
        emit: &mut dyn FnMut(Visit<'_>),
    ) {
        let at = self.at(c.dt_ns);
        let sha = c.sha.and_then(|id| self.defs.shas.get(&id).cloned());
        let state = c.tcp_state.and_then(|s| TcpState::try_from(s).ok());
        // an update changes the flow in place and shows it; a closing entry
        // takes it
        let apply = |live: &mut OpenFlow| {
            convert::set_counters(&mut live.flow, &c.counters);
            if state.is_some() {
                live.flow.tcp_state = state;
            }
            if sha.is_some() {
                live.ctx.exe_sha256.clone_from(&sha);
            }
            if let Some((closed, reason)) = c.closed {
                live.flow.closed = Some(MonoNs(closed));
                live.flow.close_reason = reason.and_then(convert::reason);
            }
            live.ctx.usage = c.usage.as_ref().map(convert::usage);
            live.ctx.track = c.track.as_ref().map(convert::track);
        };
        if kind == Kind::Update {
            let Some(live) = self.flows.get_mut(&c.flow) else {
                stats.orphans += 1;
                return;
            };
            apply(live);
            emit(Visit::Flow(FlowRef {
                kind: EventKind::Updated,
                flow: &live.flow,
                ctx: &live.ctx,
                at,
                is_final: false,
                seq: self.seq,
            }));
            return;
        }
        let Some(mut live) = self.flows.remove(&c.flow) else {
            stats.orphans += 1;
            return;
        };
        apply(&mut live);
        emit(Visit::Flow(FlowRef {
            kind: if kind == Kind::Close {
                EventKind::Closed
            } else {
                EventKind::Updated
            },
            flow: &live.flow,
            ctx: &live.ctx,
            at,
            is_final: kind == Kind::Final,
            seq: self.seq,
        }));
    }
}

/// A remote name as the model holds it.
fn named_of(n: super::format::NamedRec) -> Arc<netwho_model::names::RemoteName> {
    Arc::new(netwho_model::names::RemoteName {
        rname: n.rname.map(convert::bounded_name),
        source: convert::rname_source(n.source),
        sni: n.sni.map(convert::bounded_name),
        alpn: n.alpn.map(convert::bounded_name),
    })
}

/// A frame's entries, parsed one by one (pure: no decoder state). An entry that
/// does not decode passed the frame's checksum: a kind (or a longer form)
/// from a newer minor version, skipped and counted; a broken length ends
/// the frame, counted.
#[derive(Debug)]
pub struct Entries<'a> {
    rest: &'a [u8],
    /// Entries read.
    pub entries: u64,
    /// Entries skipped (unknown, or the frame's broken tail).
    pub unknown: u64,
}

impl<'a> Entries<'a> {
    /// The entries of one decompressed frame.
    pub fn new(raw: &'a [u8]) -> Self {
        Entries {
            rest: raw,
            entries: 0,
            unknown: 0,
        }
    }

    /// Add what was counted to a file's counts.
    pub fn count_into(&self, stats: &mut ReadStats) {
        stats.entries += self.entries;
        stats.entries_unknown += self.unknown;
    }
}

impl<'a> Entries<'a> {
    /// The next entry's bytes, undecoded (counted as read).
    pub fn next_body(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((len, used)) = get_varint(self.rest) else {
            self.unknown += 1;
            self.rest = &[];
            return None;
        };
        let Some(body) = usize::try_from(len)
            .ok()
            .and_then(|len| self.rest.get(used..used.checked_add(len)?))
        else {
            self.unknown += 1;
            self.rest = &[];
            return None;
        };
        self.rest = &self.rest[used + body.len()..];
        self.entries += 1;
        Some(body)
    }

    /// An entry's bytes decoded (None, counted: a kind or form this reader
    /// does not know).
    pub fn decode(&mut self, body: &[u8]) -> Option<Entry> {
        match postcard::take_from_bytes::<Entry>(body) {
            Ok((e, _)) => Some(e),
            Err(_) => {
                self.unknown += 1;
                None
            }
        }
    }
}

impl Iterator for Entries<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        while let Some(body) = self.next_body() {
            if let Some(e) = self.decode(body) {
                return Some(e);
            }
        }
        None
    }
}
