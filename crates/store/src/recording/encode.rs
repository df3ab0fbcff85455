//! Flow events to entries: the pure half of the recorder. The caller owns
//! the buffer and decides where a frame ends ([`Encoder::seal`]); the
//! encoder only remembers what it defined in the current frame.

use super::convert;
use super::format::{CaptureRec, CountRec, Entry, NamedRec, NamesRec, OpenRec};
use netwho_model::record::{Context, Names};
use netwho_model::{CaptureDir, Flow, FlowKey, MonoNs, ProcInfo, ProcKey};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Which lifecycle point a flow entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A flow opened.
    Open,
    /// Its counters changed.
    Update,
    /// The recording ends with the flow still open.
    Final,
    /// It closed.
    Close,
}

/// Definitions of the current frame.
#[derive(Debug, Default)]
struct FrameDefs {
    procs: FxHashMap<ProcKey, (u32, Arc<ProcInfo>)>,
    names: FxHashMap<Arc<Names>, u32>,
    shas: FxHashMap<Arc<str>, u32>,
    next: u32,
}

#[derive(Clone, Copy, Debug)]
struct FlowState {
    number: u64,
    has_sha: bool,
    /// Capture pieces written so far (pieces are only ever appended).
    pieces: usize,
    /// `bytes_complete` as last written (a flow starts complete).
    complete: bool,
}

/// Turns flow events, status records and clock changes into entries.
#[derive(Debug, Default)]
pub struct Encoder {
    defs: FrameDefs,
    flows: FxHashMap<FlowKey, FlowState>,
    next_flow: u64,
    last_at: u64,
    scratch: Vec<u8>,
    /// Flows defined so far (opened or first seen).
    pub flows_recorded: u64,
    /// The remote names written last, per open flow that has them.
    named: FxHashMap<FlowKey, Arc<netwho_model::names::RemoteName>>,
}

impl Encoder {
    /// An encoder at the start of a recording.
    pub fn new() -> Self {
        Self::default()
    }

    /// Flows open now (defined and not closed).
    pub fn flows_open(&self) -> usize {
        self.flows.len()
    }

    /// The frame ends here: the next entry starts a frame that defines its
    /// processes and names again, so that each frame reads on its own.
    pub fn seal(&mut self) {
        self.defs = FrameDefs::default();
        self.last_at = 0;
    }

    fn put(&mut self, out: &mut Vec<u8>, e: &Entry) {
        self.scratch.clear();
        // Serializing plain structs into a Vec only fails on a length that
        // does not fit a u32 (a string over 4 GiB); such an entry is left
        // out rather than corrupting the frame.
        if let Ok(bytes) = postcard::to_extend(e, std::mem::take(&mut self.scratch)) {
            put_varint(out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
            self.scratch = bytes;
        }
    }

    fn dt(&mut self, at: MonoNs) -> i64 {
        let dt = (i128::from(at.0) - i128::from(self.last_at))
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        self.last_at = at.0;
        dt
    }

    fn proc_ref(&mut self, out: &mut Vec<u8>, p: &Arc<ProcInfo>) -> u32 {
        if let Some((id, known)) = self.defs.procs.get(&p.key)
            && (Arc::ptr_eq(known, p) || **known == **p)
        {
            return *id;
        }
        let id = self.defs.next;
        self.defs.next += 1;
        self.put(out, &Entry::Proc(convert::proc_rec(id, p)));
        self.defs.procs.insert(p.key, (id, Arc::clone(p)));
        id
    }

    fn names_ref(&mut self, out: &mut Vec<u8>, n: &Arc<Names>) -> u32 {
        if let Some(id) = self.defs.names.get(n) {
            return *id;
        }
        let id = self.defs.next;
        self.defs.next += 1;
        self.put(
            out,
            &Entry::Names(NamesRec {
                id,
                user: n.user.clone(),
                group: n.group.clone(),
                cgroup: n.cgroup.clone(),
                unit: n.unit.clone(),
                container_id: n.container_id.clone(),
            }),
        );
        self.defs.names.insert(Arc::clone(n), id);
        id
    }

    fn sha_ref(&mut self, out: &mut Vec<u8>, sha: &Arc<str>) -> u32 {
        if let Some(id) = self.defs.shas.get(sha) {
            return *id;
        }
        let id = self.defs.next;
        self.defs.next += 1;
        self.put(
            out,
            &Entry::Sha {
                id,
                hex: sha.to_string(),
            },
        );
        self.defs.shas.insert(Arc::clone(sha), id);
        id
    }

    fn open(&mut self, out: &mut Vec<u8>, f: &Flow, ctx: &Context, at: MonoNs, announced: bool) {
        let proc = self.proc_ref(out, &f.proc);
        let names = self.names_ref(out, &ctx.names);
        let sha = ctx.exe_sha256.as_ref().map(|s| self.sha_ref(out, s));
        let number = self.next_flow;
        self.next_flow += 1;
        self.flows_recorded += 1;
        // before the open, so the open's record has them
        self.named(out, f, number);
        self.flows.insert(
            f.key,
            FlowState {
                number,
                has_sha: sha.is_some(),
                pieces: 0,
                complete: true,
            },
        );
        let rec = OpenRec {
            flow: number,
            dt_ns: self.dt(at),
            announced,
            flow_id: f.id.0,
            cookie: f.key.cookie.0,
            proc,
            names,
            sha,
            proto: convert::proto_rec(f.proto),
            local: (f.local.addr, f.local.port),
            remote: (f.remote.addr, f.remote.port),
            packet: f.packet,
            netns: f.netns,
            direction: convert::direction_code(f.direction),
            tcp_state: f.tcp_state.map(convert::tcp_code),
            opened_ns: f.opened.0,
            comm: f.comm.clone(),
            uid: f.uid,
            gid: f.gid,
            cgroup_id: f.cgroup_id,
            attribution: convert::attribution_code(f.attribution),
            counters: convert::counters(f),
            cpu_base: f.cpu_base.map(|(t, c)| (t.0, c)),
            track: ctx.track.as_ref().map(convert::track_rec),
        };
        self.put(out, &Entry::Open(rec));
        self.completeness(out, f);
        self.pieces(out, f);
    }

    /// A `Named` entry if the flow's remote names changed since the last.
    fn named(&mut self, out: &mut Vec<u8>, f: &Flow, number: u64) {
        let Some(rn) = &f.remote_name else {
            return;
        };
        if self
            .named
            .get(&f.key)
            .is_some_and(|w| Arc::ptr_eq(w, rn) || **w == **rn)
        {
            return;
        }
        self.named.insert(f.key, Arc::clone(rn));
        let rec = NamedRec {
            flow: number,
            rname: rn.rname.as_deref().map(str::to_string),
            source: convert::rname_source_code(rn.source),
            sni: rn.sni.as_deref().map(str::to_string),
            alpn: rn.alpn.as_deref().map(str::to_string),
        };
        self.put(out, &Entry::Named(rec));
    }

    /// A `Completeness` entry if the flow's changed since the last one.
    fn completeness(&mut self, out: &mut Vec<u8>, f: &Flow) {
        let Some(st) = self.flows.get_mut(&f.key) else {
            return;
        };
        if st.complete == f.bytes_complete {
            return;
        }
        st.complete = f.bytes_complete;
        let flow = st.number;
        self.put(
            out,
            &Entry::Completeness {
                flow,
                complete: f.bytes_complete,
            },
        );
    }

    /// The flow's capture pieces not written yet.
    fn pieces(&mut self, out: &mut Vec<u8>, f: &Flow) {
        let Some(cap) = &f.capture else {
            return;
        };
        let Some(st) = self.flows.get_mut(&f.key) else {
            return;
        };
        let (number, from) = (st.number, st.pieces);
        st.pieces = cap.pieces().len();
        for p in cap.pieces().iter().skip(from) {
            let rec = CaptureRec {
                flow: number,
                recv: p.dir == CaptureDir::Recv,
                offset: p.offset,
                data: p.data.clone(),
            };
            self.put(out, &Entry::Capture(rec));
        }
    }

    /// One flow event at boot time `at`.
    pub fn flow(&mut self, out: &mut Vec<u8>, kind: Kind, f: &Flow, ctx: &Context, at: MonoNs) {
        if kind == Kind::Open {
            self.open(out, f, ctx, at, true);
            return;
        }
        if !self.flows.contains_key(&f.key) {
            self.open(out, f, ctx, at, false);
        }
        self.completeness(out, f);
        self.pieces(out, f);
        let Some(st) = self.flows.get(&f.key).copied() else {
            return;
        };
        self.named(out, f, st.number);
        let sha = match &ctx.exe_sha256 {
            Some(s) if !st.has_sha => {
                if let Some(fs) = self.flows.get_mut(&f.key) {
                    fs.has_sha = true;
                }
                Some(self.sha_ref(out, s))
            }
            _ => None,
        };
        let rec = CountRec {
            flow: st.number,
            dt_ns: self.dt(at),
            counters: convert::counters(f),
            tcp_state: f.tcp_state.map(convert::tcp_code),
            closed: match kind {
                Kind::Close => Some((
                    f.closed.unwrap_or(at).0,
                    f.close_reason.map(convert::reason_code),
                )),
                _ => None,
            },
            sha,
            usage: ctx.usage.as_ref().map(convert::usage_rec),
            track: ctx.track.as_ref().map(convert::track_rec),
        };
        let e = match kind {
            Kind::Close => Entry::Close(rec),
            Kind::Final => Entry::Final(rec),
            _ => Entry::Update(rec),
        };
        self.put(out, &e);
        if matches!(kind, Kind::Close | Kind::Final) {
            self.flows.remove(&f.key);
            self.named.remove(&f.key);
        }
    }

    /// A status record (its JSON) at boot time `at`.
    pub fn status(&mut self, out: &mut Vec<u8>, json: String, at: MonoNs) {
        let dt_ns = self.dt(at);
        self.put(out, &Entry::Status { dt_ns, json });
    }

    /// The wall clock's offset to boot time changed.
    pub fn clock(&mut self, out: &mut Vec<u8>, boot_to_unix_ns: i128) {
        self.put(out, &Entry::Clock { boot_to_unix_ns });
    }

    /// The recording ends cleanly.
    pub fn end(&mut self, out: &mut Vec<u8>, at: MonoNs) {
        let dt_ns = self.dt(at);
        self.put(out, &Entry::End { dt_ns });
    }
}

/// LEB128, as postcard writes its own varints.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A LEB128 value at the start of `b`, and the bytes it took.
pub fn get_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}
