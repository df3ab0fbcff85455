//! Flow records written as JSON directly: the bytes `serde_json` writes for
//! a [`FlowRecord`] (the tests hold the two equal, field by field and for
//! hostile text), without its per-byte escaping loop and per-field calls.
//! A log at 500 connections/s spent a quarter of its CPU in them.

use crate::record::{FlowRecord, Parent};

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

#[cfg(test)]
mod tests {
    use super::*;
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
}
