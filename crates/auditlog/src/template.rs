//! `--format`: log lines from a template, conntrack-logger style.
//!
//! `{name}` is replaced by a field of the flow record, `{name:>8}` /
//! `{name:<8}` / `{name:8}` pad it to a width (numbers to the right, text to
//! the left by default), `{{` and `}}` are braces, `\t` a tab. conntrack-
//! logger's `{ev.src}`, `{info.pid}`, `{info.service}`... are accepted as
//! they are. A missing value prints as `-`; control characters in values
//! are escaped, so a record is always exactly one line.

use crate::tsformat::TsFormat;
use netwho_model::record::FlowRecord;
use netwho_model::time::unix_ns_from_rfc3339;
use netwho_query::{FilterError, Span};
use netwho_sink::fmt;
use std::borrow::Cow;
use std::fmt::Write as _;

/// conntrack-logger's default format, as netwho reads it.
pub const CONNTRACK_LOGGER: &str = "{ts}: {ev.proto} {ev.src}/{ev.sport} > {ev.dst}/{ev.dport} :: {info.pid} {info.uid}:{info.gid} {info.service} :: {info.cmdline}";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Ts,
    TsOpen,
    TsClose,
    ProcStart,
    Event,
    FlowId,
    DurationMs,
    Proto,
    FamilyProto,
    Family,
    Src,
    Sport,
    Dst,
    Dport,
    Laddr,
    Lport,
    Raddr,
    Rport,
    Direction,
    State,
    Pid,
    Ppid,
    Comm,
    Exe,
    Cmdline,
    ParentComm,
    Parents,
    ExeSha256,
    LoginUid,
    Session,
    Uid,
    User,
    Gid,
    Group,
    Cgroup,
    Unit,
    Service,
    ContainerId,
    Netns,
    BytesSent,
    BytesRecv,
    Bytes,
    WireBytesSent,
    WireBytesRecv,
    PacketsSent,
    PacketsRecv,
    Attribution,
    CloseReason,
    RssBytes,
    RssPeakBytes,
    CpuPct,
    MajorFaults,
    IowaitMs,
    CommunityId,
    /// `rname`.
    Rname,
    /// `rname_source`.
    RnameSource,
    /// `sni`.
    Sni,
    /// `alpn`.
    Alpn,
}

/// Every placeholder: name, field, what it prints.
const PLACEHOLDERS: &[(&str, Field, &str)] = &[
    (
        "ts",
        Field::Ts,
        "when the record was written (--format-ts; default RFC 3339 UTC, ms)",
    ),
    (
        "ts_open",
        Field::TsOpen,
        "when the flow opened (--format-ts)",
    ),
    (
        "ts_close",
        Field::TsClose,
        "when the flow closed (--format-ts; - until then)",
    ),
    (
        "proc_start",
        Field::ProcStart,
        "when the process started (--format-ts)",
    ),
    ("event", Field::Event, "open, close or update"),
    (
        "flow_id",
        Field::FlowId,
        "the flow's id, stable for its life",
    ),
    (
        "duration_ms",
        Field::DurationMs,
        "how long the flow lasted, ms (close records; - otherwise)",
    ),
    ("proto", Field::Proto, "tcp, udp, icmp, icmpv6, raw..."),
    (
        "community_id",
        Field::CommunityId,
        "the flow's Community ID v1 (- for packet and raw sockets)",
    ),
    (
        "ev.proto",
        Field::FamilyProto,
        "family/protocol, as conntrack-logger prints it: ipv4/tcp",
    ),
    ("family", Field::Family, "ipv4 or ipv6"),
    (
        "src",
        Field::Src,
        "address of the side that initiated the flow",
    ),
    (
        "sport",
        Field::Sport,
        "port of the side that initiated the flow",
    ),
    ("dst", Field::Dst, "address of the side that was contacted"),
    ("dport", Field::Dport, "port of the side that was contacted"),
    ("laddr", Field::Laddr, "this host's address"),
    ("lport", Field::Lport, "this host's port"),
    ("raddr", Field::Raddr, "the remote address"),
    ("rport", Field::Rport, "the remote port"),
    (
        "direction",
        Field::Direction,
        "outbound (this host initiated) or inbound",
    ),
    ("state", Field::State, "TCP state, or udp"),
    ("pid", Field::Pid, "process id (tgid) of the owner"),
    ("ppid", Field::Ppid, "its parent's pid"),
    ("comm", Field::Comm, "the process name (15 characters)"),
    ("exe", Field::Exe, "the executable's path"),
    (
        "cmdline",
        Field::Cmdline,
        "the command line (arguments with spaces quoted)",
    ),
    ("parent_comm", Field::ParentComm, "the parent's name"),
    (
        "parents",
        Field::Parents,
        "the ancestors, parent first: bash(812),sshd(640),systemd(1)",
    ),
    (
        "exe_sha256",
        Field::ExeSha256,
        "SHA-256 of the executable (- if not hashed yet)",
    ),
    (
        "login_uid",
        Field::LoginUid,
        "audit login uid (who logged in, across sudo)",
    ),
    ("session", Field::Session, "audit session id"),
    ("uid", Field::Uid, "user id"),
    ("user", Field::User, "user name"),
    ("gid", Field::Gid, "group id"),
    ("group", Field::Group, "group name"),
    ("cgroup", Field::Cgroup, "cgroup v2 path"),
    ("unit", Field::Unit, "systemd unit (service or scope)"),
    (
        "service",
        Field::Service,
        "the unit, else the cgroup path (conntrack-logger's info.service)",
    ),
    ("container_id", Field::ContainerId, "container id"),
    ("netns", Field::Netns, "network namespace inode"),
    ("bytes_sent", Field::BytesSent, "payload bytes sent"),
    ("bytes_recv", Field::BytesRecv, "payload bytes received"),
    ("bytes", Field::Bytes, "payload bytes both ways"),
    (
        "wire_bytes_sent",
        Field::WireBytesSent,
        "IP bytes sent (headers included)",
    ),
    ("wire_bytes_recv", Field::WireBytesRecv, "IP bytes received"),
    ("packets_sent", Field::PacketsSent, "packets sent"),
    ("packets_recv", Field::PacketsRecv, "packets received"),
    (
        "attribution",
        Field::Attribution,
        "how the owner was found: ebpf, procfs, unknown...",
    ),
    (
        "close_reason",
        Field::CloseReason,
        "why a flow closed (close records)",
    ),
    (
        "rss_bytes",
        Field::RssBytes,
        "the process's resident memory (close and update records)",
    ),
    (
        "rss_peak_bytes",
        Field::RssPeakBytes,
        "its peak resident memory",
    ),
    (
        "cpu_pct",
        Field::CpuPct,
        "its CPU use over the flow's life, %",
    ),
    ("major_faults", Field::MajorFaults, "its major page faults"),
    (
        "iowait_ms",
        Field::IowaitMs,
        "its time waiting for block I/O, ms (needs delay accounting)",
    ),
    (
        "rname",
        Field::Rname,
        "the name the process resolved to the remote address (- if none)",
    ),
    (
        "rname_source",
        Field::RnameSource,
        "dns, shared, none (connected without resolving), or -",
    ),
    (
        "sni",
        Field::Sni,
        "server name of its TLS/QUIC ClientHello (- if none)",
    ),
    (
        "alpn",
        Field::Alpn,
        "protocols its ClientHello offered (- if none)",
    ),
];

/// The placeholders as help text: one per line, name and meaning.
pub fn help() -> String {
    let mut s = String::new();
    for (name, _, what) in PLACEHOLDERS {
        let _ = writeln!(
            s,
            "  {{{name}}}{:w$} {what}",
            "",
            w = 18 - name.len().min(18)
        );
    }
    s.push_str(
        "  conntrack-logger's {ev.X} and {info.X} are read as {X} ({info.service} as {service})",
    );
    s
}

fn lookup(name: &str) -> Option<Field> {
    if let Some((_, f, _)) = PLACEHOLDERS.iter().find(|(n, _, _)| *n == name) {
        return Some(*f);
    }
    let bare = name
        .strip_prefix("ev.")
        .or_else(|| name.strip_prefix("info."))?;
    PLACEHOLDERS
        .iter()
        .find(|(n, _, _)| *n == bare)
        .map(|(_, f, _)| *f)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Align {
    Auto,
    Left,
    Right,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Field {
        field: Field,
        width: usize,
        align: Align,
    },
}

/// A compiled `--format`.
#[derive(Clone, Debug)]
pub struct Template {
    pieces: Vec<Piece>,
    ts: TsFormat,
}

impl Template {
    /// Compile `src`; timestamps are written with `ts`. Errors carry the
    /// span of the offending part.
    pub fn new(src: &str, ts: TsFormat) -> Result<Template, FilterError> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut it = src.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            match c {
                '{' if it.peek().map(|p| p.1) == Some('{') => {
                    it.next();
                    lit.push('{');
                }
                '}' if it.peek().map(|p| p.1) == Some('}') => {
                    it.next();
                    lit.push('}');
                }
                '}' => {
                    return Err(FilterError::new(
                        Span::new(i, i + 1),
                        "a lone '}': write }} for a brace",
                    ));
                }
                '\\' if it.peek().map(|p| p.1) == Some('t') => {
                    it.next();
                    lit.push('\t');
                }
                '\\' if it.peek().map(|p| p.1) == Some('\\') => {
                    it.next();
                    lit.push('\\');
                }
                '{' => {
                    let Some(close) = src[i..].find('}').map(|j| i + j) else {
                        return Err(FilterError::new(
                            Span::new(i, src.len()),
                            "'{' without its '}': write {{ for a brace",
                        ));
                    };
                    let inner = &src[i + 1..close];
                    let (name, spec) = inner.split_once(':').unwrap_or((inner, ""));
                    let span = Span::new(i, close + 1);
                    let Some(field) = lookup(name.trim()) else {
                        return Err(FilterError::new(
                            span,
                            format!(
                                "'{{{name}}}' is not a placeholder{}",
                                suggest(name)
                                    .map(|s| format!(" (did you mean {{{s}}}?)"))
                                    .unwrap_or_default()
                            ),
                        ));
                    };
                    let (align, digits) = match spec.as_bytes().first() {
                        Some(b'<') => (Align::Left, &spec[1..]),
                        Some(b'>') => (Align::Right, &spec[1..]),
                        _ => (Align::Auto, spec),
                    };
                    let width = if digits.is_empty() {
                        0
                    } else {
                        match digits.parse::<usize>() {
                            Ok(w) if w <= 200 => w,
                            _ => {
                                return Err(FilterError::new(
                                    span,
                                    format!(
                                        "'{spec}' is not a width: write {{{name}:12}}, \
                                         {{{name}:<12}} or {{{name}:>12}} (at most 200)"
                                    ),
                                ));
                            }
                        }
                    };
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Field {
                        field,
                        width,
                        align,
                    });
                    while it.peek().is_some_and(|(j, _)| *j <= close) {
                        it.next();
                    }
                }
                c if c == '\n' || c == '\r' => {
                    return Err(FilterError::new(
                        Span::new(i, i + 1),
                        "a format is one line: records are one line each",
                    ));
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(Template { pieces, ts })
    }

    /// Append the line for `r` (without a newline) to `out`.
    pub fn write(&self, r: &FlowRecord<'_>, out: &mut String) {
        for p in &self.pieces {
            match p {
                Piece::Lit(l) => out.push_str(l),
                Piece::Field {
                    field,
                    width,
                    align,
                } => {
                    let v = self.value(*field, r);
                    let numeric = matches!(v, Value::Num(_));
                    let text: Cow<'_, str> = match v {
                        Value::Num(n) => Cow::Owned(n.to_string()),
                        Value::Text(t) if t.is_empty() => Cow::Borrowed("-"),
                        Value::Text(t) => escape(t),
                        Value::Missing => Cow::Borrowed("-"),
                    };
                    let pad = width.saturating_sub(text.chars().count());
                    let right = match align {
                        Align::Auto => numeric,
                        Align::Left => false,
                        Align::Right => true,
                    };
                    if right {
                        out.extend(std::iter::repeat_n(' ', pad));
                    }
                    out.push_str(&text);
                    if !right {
                        out.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
        }
    }

    /// The line for `r`, as a new string.
    #[cfg(test)]
    fn line(&self, r: &FlowRecord<'_>) -> String {
        let mut s = String::with_capacity(160);
        self.write(r, &mut s);
        s
    }

    fn time(&self, rfc3339: &str) -> Value<'static> {
        match unix_ns_from_rfc3339(rfc3339) {
            Some(ns) => Value::Text(Cow::Owned(self.ts.format(ns))),
            None => Value::Missing,
        }
    }

    fn value<'r>(&self, f: Field, r: &'r FlowRecord<'_>) -> Value<'r> {
        use Value::{Missing, Num, Text};
        let t = |s: &'r str| Text(Cow::Borrowed(s));
        let opt = |v: Option<u64>| v.map_or(Missing, Num);
        let float = |v: Option<f64>, digits: usize| {
            v.map_or(Missing, |x| Text(Cow::Owned(format!("{x:.digits$}"))))
        };
        let outbound = r.direction != "inbound";
        match f {
            Field::Ts => self.time(&r.ts),
            Field::TsOpen => self.time(&r.ts_open),
            Field::TsClose => r.ts_close.as_deref().map_or(Missing, |s| self.time(s)),
            Field::ProcStart => self.time(&r.proc_start),
            Field::Event => t(match r.event {
                netwho_model::record::RecordKind::Open => "open",
                netwho_model::record::RecordKind::Update => "update",
                netwho_model::record::RecordKind::Close => "close",
            }),
            Field::FlowId => t(&r.flow_id),
            Field::DurationMs => float(r.duration_ms, 3),
            Field::Proto => t(&r.proto),
            Field::CommunityId => r.community_id.as_deref().map_or(Missing, t),
            Field::FamilyProto => Text(Cow::Owned(format!("{}/{}", r.family, r.proto))),
            Field::Family => t(&r.family),
            Field::Src => t(if outbound { &r.laddr } else { &r.raddr }),
            Field::Sport => Num(u64::from(if outbound { r.lport } else { r.rport })),
            Field::Dst => t(if outbound { &r.raddr } else { &r.laddr }),
            Field::Dport => Num(u64::from(if outbound { r.rport } else { r.lport })),
            Field::Laddr => t(&r.laddr),
            Field::Lport => Num(u64::from(r.lport)),
            Field::Raddr => t(&r.raddr),
            Field::Rport => Num(u64::from(r.rport)),
            Field::Rname => r.rname.as_deref().map_or(Missing, t),
            Field::RnameSource => r.rname_source.as_deref().map_or(Missing, t),
            Field::Sni => r.sni.as_deref().map_or(Missing, t),
            Field::Alpn => r.alpn.as_deref().map_or(Missing, t),
            Field::Direction => t(&r.direction),
            Field::State => t(&r.state),
            Field::Pid => Num(u64::from(r.pid)),
            Field::Ppid => Num(u64::from(r.ppid)),
            Field::Comm => t(&r.comm),
            Field::Exe => t(&r.exe),
            // quoted and escaped already
            Field::Cmdline if r.cmdline.is_empty() => Missing,
            Field::Cmdline => Text(Cow::Owned(fmt::cmdline(&r.cmdline, usize::MAX))),
            Field::ParentComm => t(&r.parent_comm),
            Field::Parents => {
                let mut s = String::new();
                for (i, p) in r.parents.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    let _ = write!(s, "{}({})", p.comm, p.pid);
                }
                Text(Cow::Owned(s))
            }
            Field::ExeSha256 => r.exe_sha256.as_deref().map_or(Missing, t),
            Field::LoginUid => opt(r.login_uid.map(u64::from)),
            Field::Session => opt(r.session.map(u64::from)),
            Field::Uid => Num(u64::from(r.uid)),
            Field::User => t(&r.user),
            Field::Gid => Num(u64::from(r.gid)),
            Field::Group => t(&r.group),
            Field::Cgroup => t(&r.cgroup),
            Field::Unit => t(&r.unit),
            Field::Service => t(if r.unit.is_empty() {
                &r.cgroup
            } else {
                &r.unit
            }),
            Field::ContainerId => t(&r.container_id),
            Field::Netns => Num(u64::from(r.netns)),
            Field::BytesSent => Num(r.bytes_sent),
            Field::BytesRecv => Num(r.bytes_recv),
            Field::Bytes => Num(r.bytes_sent.saturating_add(r.bytes_recv)),
            Field::WireBytesSent => Num(r.wire_bytes_sent),
            Field::WireBytesRecv => Num(r.wire_bytes_recv),
            Field::PacketsSent => Num(r.packets_sent),
            Field::PacketsRecv => Num(r.packets_recv),
            Field::Attribution => t(&r.attribution),
            Field::CloseReason => r.close_reason.as_deref().map_or(Missing, t),
            Field::RssBytes => opt(r.rss_bytes),
            Field::RssPeakBytes => opt(r.rss_peak_bytes),
            Field::CpuPct => float(r.cpu_pct, 1),
            Field::MajorFaults => opt(r.major_faults),
            Field::IowaitMs => float(r.iowait_ms, 3),
        }
    }
}

enum Value<'r> {
    Num(u64),
    Text(Cow<'r, str>),
    Missing,
}

/// Control characters as escapes: a value never breaks a line. (The
/// command line is quoted and escaped by `fmt::cmdline`; escaping it again
/// leaves it as it is, having no control characters left.)
fn escape(s: Cow<'_, str>) -> Cow<'_, str> {
    match s {
        Cow::Borrowed(b) => netwho_model::text::visible(b),
        Cow::Owned(o) => match netwho_model::text::visible(&o) {
            Cow::Borrowed(_) => Cow::Owned(o),
            Cow::Owned(e) => Cow::Owned(e),
        },
    }
}

/// Words people write for a placeholder that has another name.
const ALIASES: &[(&str, &str)] = &[
    ("command", "cmdline"),
    ("cmd", "cmdline"),
    ("args", "cmdline"),
    ("argv", "cmdline"),
    ("process", "comm"),
    ("name", "comm"),
    ("program", "exe"),
    ("path", "exe"),
    ("username", "user"),
    ("time", "ts"),
    ("timestamp", "ts"),
];

/// The nearest placeholder name, for "did you mean": by spelling, or by a
/// word people use for it (`{comand}`: `{cmdline}`).
fn suggest(name: &str) -> Option<&'static str> {
    let name = name.trim();
    netwho_query::fields::nearest(name, PLACEHOLDERS.iter().map(|(n, _, _)| *n), 2).or_else(|| {
        let alias = netwho_query::fields::nearest(name, ALIASES.iter().map(|(a, _)| *a), 2)?;
        ALIASES.iter().find(|(a, _)| *a == alias).map(|(_, p)| *p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netwho_model::record::RecordKind;

    fn close() -> FlowRecord<'static> {
        FlowRecord::example()
    }

    fn render(f: &str, r: &FlowRecord<'_>) -> String {
        Template::new(f, TsFormat::default()).unwrap().line(r)
    }

    /// The golden line of every placeholder.
    #[test]
    fn every_placeholder() {
        let r = close();
        let golden = [
            ("ts", "2026-11-23T10:15:15.340Z"),
            ("ts_open", "2026-11-23T10:15:15.123Z"),
            ("ts_close", "2026-11-23T10:15:15.340Z"),
            ("proc_start", "2026-11-23T10:15:14.900Z"),
            ("event", "close"),
            ("flow_id", "7f3a-19"),
            ("duration_ms", "217.021"),
            ("proto", "tcp"),
            ("community_id", "1:OiHIYNeKzaNKlMed1mfsmhHBvP0="),
            ("ev.proto", "ipv4/tcp"),
            ("family", "ipv4"),
            ("src", "10.0.0.5"),
            ("sport", "40412"),
            ("dst", "93.184.216.34"),
            ("dport", "443"),
            ("laddr", "10.0.0.5"),
            ("lport", "40412"),
            ("raddr", "93.184.216.34"),
            ("rport", "443"),
            ("rname", "example.org"),
            ("rname_source", "dns"),
            ("sni", "example.org"),
            ("alpn", "h2,http/1.1"),
            ("direction", "outbound"),
            ("state", "CLOSE"),
            ("pid", "4242"),
            ("ppid", "812"),
            ("comm", "curl"),
            ("exe", "/usr/bin/curl"),
            ("cmdline", "curl -s https://example.org"),
            ("parent_comm", "bash"),
            ("parents", "bash(812),systemd(1)"),
            ("exe_sha256", "ab12"),
            ("login_uid", "1000"),
            ("session", "2"),
            ("uid", "1000"),
            ("user", "alice"),
            ("gid", "100"),
            ("group", "users"),
            ("cgroup", "/user.slice/user-1000.slice/session-2.scope"),
            ("unit", "session-2.scope"),
            ("service", "session-2.scope"),
            ("container_id", "-"),
            ("netns", "4026531840"),
            ("bytes_sent", "79"),
            ("bytes_recv", "1256"),
            ("bytes", "1335"),
            ("wire_bytes_sent", "431"),
            ("wire_bytes_recv", "1708"),
            ("packets_sent", "7"),
            ("packets_recv", "6"),
            ("attribution", "ebpf"),
            ("close_reason", "closed"),
            ("rss_bytes", "9437184"),
            ("rss_peak_bytes", "10485760"),
            ("cpu_pct", "3.2"),
            ("major_faults", "2"),
            ("iowait_ms", "-"),
        ];
        assert_eq!(
            golden.len(),
            PLACEHOLDERS.len(),
            "a placeholder lacks a golden value"
        );
        for (name, want) in golden {
            assert_eq!(render(&format!("{{{name}}}"), &r), want, "{{{name}}}");
        }
    }

    #[test]
    fn conntrack_loggers_default_format() {
        let mut r = close();
        r.event = RecordKind::Open;
        let ts = TsFormat::new("%s", false).unwrap();
        let t = Template::new(CONNTRACK_LOGGER, ts).unwrap();
        assert_eq!(
            t.line(&r),
            "1795428915: ipv4/tcp 10.0.0.5/40412 > 93.184.216.34/443 :: 4242 1000:100 \
             session-2.scope :: curl -s https://example.org"
        );
        // inbound: the remote initiated, so it is the source
        r.direction = "inbound".into();
        r.unit = "".into();
        assert_eq!(
            t.line(&r),
            "1795428915: ipv4/tcp 93.184.216.34/443 > 10.0.0.5/40412 :: 4242 1000:100 \
             /user.slice/user-1000.slice/session-2.scope :: curl -s https://example.org"
        );
    }

    #[test]
    fn widths_braces_tabs_and_missing_values() {
        let mut r = close();
        assert_eq!(render("[{pid:8}|{comm:6}]", &r), "[    4242|curl  ]");
        assert_eq!(render("[{pid:<6}|{comm:>6}]", &r), "[4242  |  curl]");
        assert_eq!(render("{{pid}} {{{pid}}}\\t\\\\x", &r), "{pid} {4242}\t\\x");
        r.event = RecordKind::Open;
        r.ts_close = None;
        r.duration_ms = None;
        r.cmdline = Vec::new().into();
        r.user = "".into();
        assert_eq!(
            render("{ts_close} {duration_ms} {cmdline} {user} {uid}", &r),
            "- - - - 1000"
        );
    }

    #[test]
    fn a_value_never_breaks_the_line() {
        let mut r = close();
        r.comm = "evil\nline".into();
        r.exe = "/tmp/a\tb\u{1b}".into();
        r.cmdline = vec!["sh".into(), "-c".into(), "x\ny".into()].into();
        let line = render("{comm} {exe} {cmdline}", &r);
        assert_eq!(line, "evil\\nline /tmp/a\\tb\\u{1b} sh -c \"x\\ny\"");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn every_alias_names_a_placeholder() {
        for (_, p) in ALIASES {
            assert!(PLACEHOLDERS.iter().any(|(n, _, _)| n == p), "alias of {p}");
        }
    }

    #[test]
    fn bad_templates_say_where() {
        for (f, col, what) in [
            ("{pid} {pdi}", 6, "did you mean {pid}"),
            ("{comand}", 0, "did you mean {cmdline}"),
            ("{pid} {proces}", 6, "did you mean {comm}"),
            ("{pid} {nonsense}", 6, "is not a placeholder"),
            ("{pid", 0, "without its '}'"),
            ("pid}", 3, "lone '}'"),
            ("{pid:x}", 0, "not a width"),
            ("{pid:999}", 0, "at most 200"),
            ("a\nb", 1, "one line"),
        ] {
            let e = Template::new(f, TsFormat::default()).unwrap_err();
            assert_eq!(e.span.start, col, "{f}");
            assert!(e.message.contains(what), "{f}: {}", e.message);
        }
    }

    #[test]
    fn help_names_every_placeholder() {
        let h = help();
        for (name, _, _) in PLACEHOLDERS {
            assert!(h.contains(&format!("{{{name}}}")), "{name}");
        }
    }
}
