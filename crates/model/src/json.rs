//! Flow records written as JSON directly: the bytes `serde_json` writes for
//! a [`FlowRecord`] (the tests hold the two equal, field by field and for
//! hostile text), without its per-byte escaping loop and per-field calls.
//! A log at 500 connections/s spent a quarter of its CPU in them.
//!
//! A record's process fields (`pid` … `container_id`, with the command line
//! and the ancestors: about half its bytes) are the same in every record of
//! a process: [`ProcJsonCache`] keeps their JSON per process and copies it.

use crate::record::{Context, FlowRecord, Names, Parent};
use crate::time::WallClock;
use crate::{Flow, ProcInfo, ProcKey};
use std::collections::HashMap;
use std::sync::Arc;

/// What a byte turns into inside a JSON string (0: itself), as
/// `serde_json` escapes it: the control bytes, `"` and `\`.
const fn escape_of(b: u8) -> u8 {
    match b {
        0x08 => b'b',
        0x09 => b't',
        0x0A => b'n',
        0x0C => b'f',
        0x0D => b'r',
        b'"' => b'"',
        b'\\' => b'\\',
        0x00..=0x1F => b'u',
        _ => 0,
    }
}

const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = escape_of(i as u8);
        i += 1;
    }
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of eight bytes needs escaping (exact: no byte is missed;
/// a word it flags is looked at byte by byte).
#[inline]
fn word_needs_escape(w: u64) -> bool {
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    (control | zero_in(w ^ (ONES * u64::from(b'"'))) | zero_in(w ^ (ONES * u64::from(b'\\')))) != 0
}

/// `s` as a JSON string, quoted and escaped.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        while let Some(w) = b.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            if word_needs_escape(u64::from_le_bytes(word)) {
                break;
            }
            i += 8;
        }
        let Some(&c) = b.get(i) else { break };
        let esc = ESCAPE[usize::from(c)];
        i += 1;
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&b[start..i - 1]);
        start = i;
        if esc == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 0xF)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// A record's fields, written one by one.
struct Obj<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> Obj<'o> {
    fn new(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// `"name":` (names are plain: written as they are).
    fn key(&mut self, name: &str) -> &mut Vec<u8> {
        if !std::mem::replace(&mut self.first, false) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn str(&mut self, name: &str, v: &str) {
        write_str(self.key(name), v);
    }

    fn opt_str(&mut self, name: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(name, v);
        }
    }

    fn uint(&mut self, name: &str, v: impl itoa::Integer) {
        let mut b = itoa::Buffer::new();
        self.key(name).extend_from_slice(b.format(v).as_bytes());
    }

    fn opt_uint(&mut self, name: &str, v: Option<impl itoa::Integer>) {
        if let Some(v) = v {
            self.uint(name, v);
        }
    }

    /// A number as `serde_json` writes it (a non-finite one as `null`).
    fn opt_f64(&mut self, name: &str, v: Option<f64>) {
        if let Some(v) = v {
            let out = self.key(name);
            let at = out.len();
            if serde_json::to_writer(&mut *out, &v).is_err() {
                out.truncate(at);
                out.extend_from_slice(b"null");
            }
        }
    }

    fn strs(&mut self, name: &str, v: &[String]) {
        let out = self.key(name);
        out.push(b'[');
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, s);
        }
        out.push(b']');
    }

    fn parents(&mut self, name: &str, v: &[Parent<'_>]) {
        let out = self.key(name);
        out.push(b'[');
        for (i, p) in v.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let mut o = Obj::new(out);
            o.uint("pid", p.pid);
            o.str("comm", &p.comm);
            o.str("exe", &p.exe);
            o.end();
        }
        out.push(b']');
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

impl FlowRecord<'_> {
    /// Append the record as one JSON object (no newline): the bytes
    /// `serde_json::to_writer` writes for it.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_json_with(out, None);
    }

    /// The JSON of its process fields alone (what [`ProcJsonCache`]
    /// keeps): a comma, then `"pid":` … up to `container_id`'s value.
    pub fn proc_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_proc(&mut Obj {
            out: &mut out,
            first: false,
        });
        out
    }

    /// [`write_json`](Self::write_json), with the process fields (`pid` …
    /// `container_id`) as [`proc_json`](Self::proc_json) wrote them of
    /// this process: what this record says of them is not used (it may
    /// be a record made without them,
    /// [`FlowRecord::from_event_without_proc`]).
    pub fn write_json_with_proc(&self, out: &mut Vec<u8>, proc_json: &[u8]) {
        self.write_json_with(out, Some(proc_json));
    }

    /// The process fields, `pid` … `container_id` (after `state`, so
    /// never the first field).
    fn write_proc(&self, o: &mut Obj<'_>) {
        let r = self;
        o.uint("pid", r.pid);
        o.uint("ppid", r.ppid);
        o.str("proc_start", &r.proc_start);
        o.str("comm", &r.comm);
        o.str("exe", &r.exe);
        o.strs("cmdline", &r.cmdline);
        o.str("parent_comm", &r.parent_comm);
        o.parents("parents", &r.parents);
        o.opt_str("exe_sha256", r.exe_sha256.as_deref());
        o.opt_uint("login_uid", r.login_uid);
        o.opt_uint("session", r.session);
        o.uint("uid", r.uid);
        o.str("user", &r.user);
        o.uint("gid", r.gid);
        o.str("group", &r.group);
        o.str("cgroup", &r.cgroup);
        o.str("unit", &r.unit);
        o.str("container_id", &r.container_id);
    }

    /// [`write_json`](Self::write_json), the process fields given as
    /// [`proc_json`](Self::proc_json) wrote them (`None`: written here).
    fn write_json_with(&self, out: &mut Vec<u8>, proc_json: Option<&[u8]>) {
        let r = self;
        let mut o = Obj::new(out);
        o.str("event", r.event.name());
        o.str("flow_id", &r.flow_id);
        o.str("ts_open", &r.ts_open);
        o.opt_str("ts_close", r.ts_close.as_deref());
        o.str("ts", &r.ts);
        o.opt_f64("duration_ms", r.duration_ms);
        o.opt_str("community_id", r.community_id.as_deref());
        o.str("proto", &r.proto);
        o.str("family", &r.family);
        o.str("laddr", &r.laddr);
        o.uint("lport", r.lport);
        o.str("raddr", &r.raddr);
        o.uint("rport", r.rport);
        o.opt_str("rname", r.rname.as_deref());
        o.opt_str("rname_source", r.rname_source.as_deref());
        o.opt_str("sni", r.sni.as_deref());
        o.opt_str("alpn", r.alpn.as_deref());
        o.str("direction", &r.direction);
        o.str("state", &r.state);
        match proc_json {
            Some(b) => o.out.extend_from_slice(b),
            None => r.write_proc(&mut o),
        }
        o.uint("netns", r.netns);
        o.uint("bytes_sent", r.bytes_sent);
        o.uint("bytes_recv", r.bytes_recv);
        o.uint("wire_bytes_sent", r.wire_bytes_sent);
        o.uint("wire_bytes_recv", r.wire_bytes_recv);
        o.uint("packets_sent", r.packets_sent);
        o.uint("packets_recv", r.packets_recv);
        if !r.bytes_complete {
            o.key("bytes_complete").extend_from_slice(b"false");
        }
        o.str("attribution", &r.attribution);
        o.opt_str("close_reason", r.close_reason.as_deref());
        o.opt_uint("rss_bytes", r.rss_bytes);
        o.opt_uint("rss_peak_bytes", r.rss_peak_bytes);
        o.opt_f64("cpu_pct", r.cpu_pct);
        o.opt_uint("major_faults", r.major_faults);
        o.opt_f64("iowait_ms", r.iowait_ms);
        o.end();
    }
}

/// What a record's process fields are made of: a kept JSON is used only
/// for a record made of the same. The process is held (its `Arc`), so no
/// other can take its place at the same address while kept.
#[derive(Debug)]
struct ProcSource {
    proc: Arc<ProcInfo>,
    comm: String,
    uid: u32,
    gid: u32,
    names: Arc<Names>,
    exe_sha256: Option<Arc<str>>,
    wall: i128,
}

impl ProcSource {
    fn same(&self, f: &Flow, ctx: &Context, wall: WallClock) -> bool {
        Arc::ptr_eq(&self.proc, &f.proc)
            && self.uid == f.uid
            && self.gid == f.gid
            && self.wall == wall.boot_to_unix_ns
            && self.comm == f.comm
            && (Arc::ptr_eq(&self.names, &ctx.names) || self.names == ctx.names)
            && self.exe_sha256 == ctx.exe_sha256
    }
}

/// The JSON of records' process fields, kept per process (see
/// [`FlowRecord::proc_json`]): a busy host's records come from a few
/// processes, and escaping their command lines and ancestors again for
/// every record was most of the writing. Bounded by count and bytes (full:
/// it starts afresh); a process's entry goes when it exits.
#[derive(Debug, Default)]
pub struct ProcJsonCache {
    kept: HashMap<ProcKey, (ProcSource, Vec<u8>)>,
    bytes: usize,
    hits: u64,
    misses: u64,
}

impl ProcJsonCache {
    /// At most this many processes are kept.
    pub const MAX_PROCS: usize = 1024;
    /// At most this many bytes of JSON are kept.
    pub const MAX_BYTES: usize = 4 << 20;

    /// Append record `r` (built from flow `f`, `ctx` and `wall`, with its
    /// process fields) as one JSON object, the same bytes as
    /// [`FlowRecord::write_json`], and keep its process fields for the
    /// process's next records. For a record whose fields are not
    /// [`kept`](Self::kept).
    pub fn write(
        &mut self,
        r: &FlowRecord<'_>,
        f: &Flow,
        ctx: &Context,
        wall: WallClock,
        out: &mut Vec<u8>,
    ) {
        let key = f.key.proc;
        self.misses += 1;
        let json = r.proc_json();
        r.write_json_with(out, Some(&json));
        if let Some((_, old)) = self.kept.remove(&key) {
            self.bytes -= old.len();
        }
        if self.kept.len() >= Self::MAX_PROCS || self.bytes + json.len() > Self::MAX_BYTES {
            self.kept.clear();
            self.bytes = 0;
        }
        self.bytes += json.len();
        let src = ProcSource {
            proc: Arc::clone(&f.proc),
            comm: f.comm.clone(),
            uid: f.uid,
            gid: f.gid,
            names: Arc::clone(&ctx.names),
            exe_sha256: ctx.exe_sha256.clone(),
            wall: wall.boot_to_unix_ns,
        };
        self.kept.insert(key, (src, json));
    }

    /// The process fields of flow `f`'s records (with `ctx` and `wall`),
    /// if they are kept and still what a record would say: then a record
    /// without them will do ([`FlowRecord::from_event_without_proc`]).
    pub fn kept(&mut self, f: &Flow, ctx: &Context, wall: WallClock) -> Option<&[u8]> {
        let (src, json) = self.kept.get(&f.key.proc)?;
        if !src.same(f, ctx, wall) {
            return None;
        }
        self.hits += 1;
        Some(json)
    }

    /// The process exited: its records' fields are not needed any more.
    pub fn forget(&mut self, proc: ProcKey) {
        if let Some((_, json)) = self.kept.remove(&proc) {
            self.bytes -= json.len();
        }
    }

    /// Records whose process fields were copied, and written afresh.
    pub fn counts(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// Processes and bytes kept now.
    pub fn held(&self) -> (usize, usize) {
        (self.kept.len(), self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Flow;
    use crate::record::RecordKind;
    use proptest::prelude::*;

    fn direct(r: &FlowRecord<'_>) -> String {
        let mut out = Vec::new();
        r.write_json(&mut out);
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    fn serde(r: &FlowRecord<'_>) -> String {
        serde_json::to_string(r).expect("a record serializes")
    }

    #[test]
    fn every_byte_is_escaped_as_serde_json_escapes_it() {
        // each byte at every place in a word, and after a whole word
        for b in 0u8..=0x7F {
            for at in 0..18 {
                let s = format!("{}{}tail", "a".repeat(at), char::from(b));
                let mut out = Vec::new();
                write_str(&mut out, &s);
                assert_eq!(
                    String::from_utf8(out).expect("UTF-8"),
                    serde_json::to_string(&s).expect("serializes"),
                    "byte {b:#x} at {at}"
                );
            }
        }
    }

    #[test]
    fn the_example_record_is_written_as_serde_json_writes_it() {
        let r = FlowRecord::example();
        assert_eq!(direct(&r), serde(&r));
        // every optional field present
        let mut full = r.clone();
        full.iowait_ms = Some(1.5);
        assert!(serde(&full).contains("\"iowait_ms\":1.5"));
        assert_eq!(direct(&full), serde(&full));
        // and with every optional field absent, and the rest at its edge
        let mut bare = r.clone();
        bare.ts_close = None;
        bare.duration_ms = None;
        bare.community_id = None;
        bare.rname = None;
        bare.rname_source = None;
        bare.sni = None;
        bare.alpn = None;
        bare.exe_sha256 = None;
        bare.login_uid = None;
        bare.session = None;
        bare.close_reason = None;
        bare.rss_bytes = None;
        bare.rss_peak_bytes = None;
        bare.cpu_pct = None;
        bare.major_faults = None;
        bare.parents.clear();
        bare.cmdline = Vec::new().into();
        bare.bytes_complete = false;
        bare.iowait_ms = Some(f64::NAN);
        bare.bytes_sent = u64::MAX;
        bare.event = RecordKind::Update;
        assert_eq!(direct(&bare), serde(&bare));
    }

    /// Text as a hostile process gives it: controls, quotes, backslashes,
    /// multi-byte characters, at every offset of an eight-byte word.
    fn hostile() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\u{7f}'),
                Just('\u{e9}'),
                Just('\u{2028}'),
                Just('\u{1f600}'),
                (0u8..0x20).prop_map(char::from),
                (0x20u8..0x7f).prop_map(char::from),
            ],
            0..40,
        )
        .prop_map(|c| c.into_iter().collect())
    }

    proptest! {
        #[test]
        fn hostile_records_are_written_as_serde_json_writes_them(
            comm in hostile(),
            exe in hostile(),
            args in proptest::collection::vec(hostile(), 0..4),
            user in hostile(),
            pexe in hostile(),
            rname in proptest::option::of(hostile()),
            cpu in proptest::option::of(any::<f64>()),
            dur in proptest::option::of(0.0f64..1e12),
        ) {
            let mut r = FlowRecord::example();
            r.comm = comm.into();
            r.exe = exe.into();
            r.cmdline = args.into();
            r.user = user.into();
            r.parents[0].exe = pexe.into();
            r.rname = rname.map(Into::into);
            r.cpu_pct = cpu;
            r.duration_ms = dur;
            prop_assert_eq!(direct(&r), serde(&r));
        }
    }

    /// Records of flows of `f`'s kind, each written through the cache and
    /// afresh: the same bytes.
    fn both_ways(
        cache: &mut ProcJsonCache,
        f: &Flow,
        ctx: &Context,
        wall: WallClock,
        kind: RecordKind,
    ) -> (String, String) {
        // as the log sink writes them
        let ev = match kind {
            RecordKind::Open => crate::FlowEvent::Opened(f.clone()),
            RecordKind::Update => crate::FlowEvent::Updated(f.clone()),
            RecordKind::Close => crate::FlowEvent::Closed(f.clone()),
        };
        let now = crate::MonoNs(7_000_000_000);
        let mut kept = Vec::new();
        match cache.kept(f, ctx, wall) {
            Some(json) => FlowRecord::from_event_without_proc(&ev, now, wall, ctx)
                .write_json_with_proc(&mut kept, json),
            None => {
                let r = FlowRecord::from_event(&ev, now, wall, ctx);
                cache.write(&r, f, ctx, wall, &mut kept);
            }
        }
        let fresh = direct(&FlowRecord::build(kind, f, now, wall, ctx));
        (String::from_utf8(kept).expect("UTF-8"), fresh)
    }

    fn flow_of(tgid: u32, cookie: u64) -> Flow {
        let remote = crate::Endpoint::new(std::net::Ipv4Addr::new(10, 231, 9, 9).into(), 443);
        Flow::example(tgid, cookie, remote)
    }

    #[test]
    fn kept_process_fields_are_what_each_record_says() {
        let mut cache = ProcJsonCache::default();
        let wall = WallClock {
            boot_to_unix_ns: 1_765_000_000_000_000_000,
        };
        let mut ctx = Context::default();
        let mut f = flow_of(4242, 1);
        let check = |cache: &mut ProcJsonCache, f: &Flow, ctx: &Context, wall| {
            for kind in [RecordKind::Open, RecordKind::Close, RecordKind::Update] {
                let (kept, fresh) = both_ways(cache, f, ctx, wall, kind);
                assert_eq!(kept, fresh, "{kind:?}");
            }
        };
        check(&mut cache, &f, &ctx, wall);
        // another flow of the same process: copied
        let mut g = f.clone();
        g.id = crate::FlowId(99);
        g.local.port = 40_001;
        check(&mut cache, &g, &ctx, wall);
        let (hits, misses) = cache.counts();
        assert_eq!((hits, misses), (5, 1), "written once, copied after");
        // whatever a record's process fields are made of changes: written
        // afresh, never an old copy
        let mut names = (*ctx.names).clone();
        names.user = "mallory\"\n".into();
        ctx.names = Arc::new(names);
        check(&mut cache, &f, &ctx, wall);
        ctx.exe_sha256 = Some("ab".repeat(32).into());
        check(&mut cache, &f, &ctx, wall);
        f.comm = "renamed\u{1b}[2J".into();
        check(&mut cache, &f, &ctx, wall);
        f.uid = 0;
        check(&mut cache, &f, &ctx, wall);
        f.gid = 7;
        check(&mut cache, &f, &ctx, wall);
        check(&mut cache, &f, &ctx, WallClock { boot_to_unix_ns: 5 });
        // the same pid and start, another image (an exec): a new process
        // record, its own command line
        let mut p = (*f.proc).clone();
        p.cmdline = vec!["/bin/sh".into(), "-c".into(), "\"quoted\"".into()];
        p.exe = "/bin/sh".into();
        f.proc = Arc::new(p);
        check(&mut cache, &f, &ctx, WallClock { boot_to_unix_ns: 5 });
        let (_, misses) = cache.counts();
        assert_eq!(misses, 8, "each of the seven changes was written afresh");
        // gone with its process
        cache.forget(f.key.proc);
        assert_eq!(cache.held(), (0, 0));
    }

    #[test]
    fn the_kept_fields_stay_within_their_bounds() {
        let mut cache = ProcJsonCache::default();
        let ctx = Context::default();
        let wall = WallClock::default();
        for i in 0..(ProcJsonCache::MAX_PROCS as u32 + 300) {
            let mut f = flow_of(10_000 + i, u64::from(i));
            if i % 3 == 0 {
                // hostile command lines, large and full of escapes
                let mut p = (*f.proc).clone();
                p.cmdline = vec!["\u{1}\"".repeat(700); 2];
                f.proc = Arc::new(p);
            }
            let (kept, fresh) = both_ways(&mut cache, &f, &ctx, wall, RecordKind::Open);
            assert_eq!(kept, fresh);
            let (procs, bytes) = cache.held();
            assert!(procs <= ProcJsonCache::MAX_PROCS, "{procs} processes");
            assert!(bytes <= ProcJsonCache::MAX_BYTES, "{bytes} bytes");
        }
        let (_, bytes) = cache.held();
        assert!(bytes > 0);
    }
}
