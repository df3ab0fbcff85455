//! OTLP messages (opentelemetry-proto v1): a flow record as a `LogRecord`,
//! the traffic series as `process.network.io` and `netwho.flows` sums, and
//! the requests that carry them with their resource. Pure: times and names
//! are inputs.
//!
//! Attribute names follow the OpenTelemetry semantic conventions where
//! one exists (`process.*`, `network.*`, `container.id`); netwho's own
//! fields are `netwho.*`. `docs/specs/otlp.md` lists them all.

use super::pb;
use netwho_model::record::{FlowRecord, RecordKind};
use netwho_sink::series::{Key, Vals};

/// Longest string value, bytes (longer ones are cut at a character
/// boundary and counted).
pub const MAX_VALUE: usize = 4096;
/// Most command-line arguments in `process.command_args` (more are left
/// out and counted).
pub const MAX_ARGS: usize = 256;

/// `SeverityNumber` INFO.
const SEVERITY_INFO: u64 = 9;
/// `AggregationTemporality` CUMULATIVE.
const CUMULATIVE: u64 = 2;

/// Who is reporting: the resource every request names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    /// `host.name`.
    pub host_name: String,
    /// `host.id`: the machine id (`/etc/machine-id`), the same across boots.
    pub host_id: String,
    /// `service.version`.
    pub version: String,
}

/// Writes attributes, cutting what is too long and counting it.
#[derive(Debug, Default)]
pub struct Attrs {
    /// Values cut to [`MAX_VALUE`], or arguments past [`MAX_ARGS`].
    pub truncated: u64,
}

fn cut(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

impl Attrs {
    /// A `KeyValue` with a string value (field `field` of the parent).
    pub fn str(&mut self, out: &mut Vec<u8>, field: u32, key: &str, v: &str) {
        let (v, was_cut) = cut(v, MAX_VALUE);
        self.truncated += u64::from(was_cut);
        // lengths known in advance: written in front, nothing moved
        let any = 1 + pb::varint_len(v.len() as u64) + v.len();
        kv_head(out, field, key, any);
        pb::bytes(out, 1, v.as_bytes());
    }

    /// A `KeyValue` with an integer value.
    pub fn int(&mut self, out: &mut Vec<u8>, field: u32, key: &str, v: i64) {
        let any = 1 + pb::varint_len(v as u64);
        kv_head(out, field, key, any);
        pb::uint(out, 3, v as u64);
    }

    /// A `KeyValue` with an unsigned counter (saturated at `i64::MAX`).
    pub fn count(&mut self, out: &mut Vec<u8>, field: u32, key: &str, v: u64) {
        self.int(out, field, key, i64::try_from(v).unwrap_or(i64::MAX));
    }

    /// A `KeyValue` with a boolean value.
    pub fn boolean(&mut self, out: &mut Vec<u8>, field: u32, key: &str, v: bool) {
        kv_head(out, field, key, 2);
        pb::boolean(out, 2, v);
    }

    /// A `KeyValue` with a double value.
    pub fn double(&mut self, out: &mut Vec<u8>, field: u32, key: &str, v: f64) {
        kv_head(out, field, key, 9);
        pb::double(out, 4, v);
    }

    /// A `KeyValue` with an array of strings.
    pub fn strs(&mut self, out: &mut Vec<u8>, field: u32, key: &str, v: &[String]) {
        let mut truncated = u64::from(v.len() > MAX_ARGS);
        pb::message(out, field, |kv| {
            pb::bytes(kv, 1, key.as_bytes());
            pb::message(kv, 2, |any| {
                pb::message(any, 5, |arr| {
                    for s in v.iter().take(MAX_ARGS) {
                        let (s, was_cut) = cut(s, MAX_VALUE);
                        truncated += u64::from(was_cut);
                        pb::message(arr, 1, |a| pb::bytes(a, 1, s.as_bytes()));
                    }
                });
            });
        });
        self.truncated += truncated;
    }
}

/// A `KeyValue`'s head up to its value's fields: the caller appends the
/// `AnyValue`'s `any` bytes.
fn kv_head(out: &mut Vec<u8>, field: u32, key: &str, any: usize) {
    let key_len = 1 + pb::varint_len(key.len() as u64) + key.len();
    let kv = key_len + 1 + pb::varint_len(any as u64) + any;
    pb::message_head(out, field, kv);
    pb::bytes(out, 1, key.as_bytes());
    pb::message_head(out, 2, any);
}

/// The `Resource` message's fields.
pub fn resource(r: &Resource) -> Vec<u8> {
    let mut out = Vec::new();
    let mut a = Attrs::default();
    a.str(&mut out, 1, "service.name", "netwho");
    a.str(&mut out, 1, "service.version", &r.version);
    if !r.host_name.is_empty() {
        a.str(&mut out, 1, "host.name", &r.host_name);
    }
    if !r.host_id.is_empty() {
        a.str(&mut out, 1, "host.id", &r.host_id);
    }
    a.str(&mut out, 1, "os.type", "linux");
    out
}

fn scope(out: &mut Vec<u8>, version: &str) {
    pb::message(out, 1, |s| {
        pb::bytes(s, 1, b"netwho");
        pb::bytes(s, 2, version.as_bytes());
    });
}

/// `network.transport` as the conventions name it (their values where
/// they have one, netwho's protocol name otherwise).
fn transport(proto: &str) -> &str {
    match proto {
        "mptcp" => "tcp",
        p => p,
    }
}

/// The base name of an executable path.
fn base_name(exe: &str) -> &str {
    exe.rsplit('/').next().unwrap_or(exe)
}

/// One flow record as a `LogRecord`'s fields: `time_ns` when the event
/// happened, `observed_ns` when netwho made the record (Unix ns).
pub fn log_record(r: &FlowRecord<'_>, time_ns: u64, observed_ns: u64, a: &mut Attrs) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    log_record_into(&mut out, r, time_ns, observed_ns, a);
    out
}

/// [`log_record`], appended to `out`.
pub fn log_record_into(
    out: &mut Vec<u8>,
    r: &FlowRecord<'_>,
    time_ns: u64,
    observed_ns: u64,
    a: &mut Attrs,
) {
    let event = match r.event {
        RecordKind::Open => "open",
        RecordKind::Update => "update",
        RecordKind::Close => "close",
    };
    let name = if r.exe.is_empty() {
        &*r.comm
    } else {
        base_name(&r.exe)
    };
    pb::fixed64(out, 1, time_ns);
    pb::uint(out, 2, SEVERITY_INFO);
    pb::bytes(out, 3, b"INFO");
    // the body: one line a person reads in any backend
    let body = format!(
        "{event} {} {}:{} {} {}:{} {}[{}] sent {} received {}",
        r.proto,
        r.laddr,
        r.lport,
        if r.direction == "inbound" { "<-" } else { "->" },
        r.raddr,
        r.rport,
        name,
        r.pid,
        r.bytes_sent,
        r.bytes_recv,
    );
    let (body, was_cut) = cut(&body, MAX_VALUE);
    a.truncated += u64::from(was_cut);
    pb::message(out, 5, |any| pb::bytes(any, 1, body.as_bytes()));

    // semantic conventions
    a.int(out, 6, "process.pid", i64::from(r.pid));
    a.int(out, 6, "process.parent_pid", i64::from(r.ppid));
    if !r.exe.is_empty() {
        a.str(out, 6, "process.executable.path", &r.exe);
    }
    a.str(out, 6, "process.executable.name", name);
    if !r.cmdline.is_empty() {
        a.strs(out, 6, "process.command_args", &r.cmdline);
    }
    a.str(out, 6, "process.owner", &r.user);
    a.int(out, 6, "process.user.id", i64::from(r.uid));
    a.int(out, 6, "process.group.id", i64::from(r.gid));
    a.str(out, 6, "process.creation.time", &r.proc_start);
    if !r.cgroup.is_empty() {
        a.str(out, 6, "process.linux.cgroup", &r.cgroup);
    }
    if !r.container_id.is_empty() {
        a.str(out, 6, "container.id", &r.container_id);
    }
    a.str(out, 6, "network.transport", transport(&r.proto));
    if r.family == "ipv4" || r.family == "ipv6" {
        a.str(out, 6, "network.type", &r.family);
    }
    a.str(out, 6, "network.local.address", &r.laddr);
    a.int(out, 6, "network.local.port", i64::from(r.lport));
    a.str(out, 6, "network.peer.address", &r.raddr);
    a.int(out, 6, "network.peer.port", i64::from(r.rport));

    // netwho's own
    a.str(out, 6, "netwho.event", event);
    a.str(out, 6, "netwho.flow.id", &r.flow_id);
    a.str(out, 6, "netwho.flow.direction", &r.direction);
    a.str(out, 6, "netwho.flow.start", &r.ts_open);
    if let Some(t) = &r.ts_close {
        a.str(out, 6, "netwho.flow.end", t);
    }
    if let Some(d) = r.duration_ms {
        a.double(out, 6, "netwho.flow.duration_ms", d);
    }
    if !r.state.is_empty() {
        a.str(out, 6, "netwho.tcp.state", &r.state);
    }
    if let Some(c) = &r.close_reason {
        a.str(out, 6, "netwho.close_reason", c);
    }
    if let Some(c) = &r.community_id {
        a.str(out, 6, "netwho.community_id", c);
    }
    a.count(out, 6, "netwho.payload.bytes_sent", r.bytes_sent);
    a.count(out, 6, "netwho.payload.bytes_received", r.bytes_recv);
    a.boolean(out, 6, "netwho.payload.complete", r.bytes_complete);
    a.count(out, 6, "netwho.wire.bytes_sent", r.wire_bytes_sent);
    a.count(out, 6, "netwho.wire.bytes_received", r.wire_bytes_recv);
    a.count(out, 6, "netwho.wire.packets_sent", r.packets_sent);
    a.count(out, 6, "netwho.wire.packets_received", r.packets_recv);
    a.str(out, 6, "netwho.attribution", &r.attribution);
    a.str(out, 6, "netwho.process.comm", &r.comm);
    if !r.parent_comm.is_empty() {
        a.str(out, 6, "netwho.process.parent_comm", &r.parent_comm);
    }
    if let Some(h) = &r.exe_sha256 {
        a.str(out, 6, "netwho.process.exe_sha256", h);
    }
    a.str(out, 6, "netwho.group", &r.group);
    if !r.unit.is_empty() {
        a.str(out, 6, "netwho.unit", &r.unit);
    }
    a.int(out, 6, "netwho.netns", i64::from(r.netns));
    if let Some(l) = r.login_uid {
        a.int(out, 6, "netwho.login_uid", i64::from(l));
    }
    pb::fixed64(out, 11, observed_ns);
    let event_name = format!("netwho.flow.{event}");
    pb::bytes(out, 12, event_name.as_bytes());
}

/// A log record's fields as an entry of `ScopeLogs.log_records`: what a
/// request's [`logs_request`] takes, concatenated.
pub fn log_entry(out: &mut Vec<u8>, record: &[u8]) {
    pb::bytes(out, 2, record);
}

/// An `ExportLogsServiceRequest` into `out` (cleared first): `resource`
/// ([`resource`]) and `entries`, log records each made a `log_records`
/// entry by [`log_entry`]. Every length is known in advance: nothing is
/// written twice.
pub fn logs_request(out: &mut Vec<u8>, resource: &[u8], version: &str, entries: &[u8]) {
    out.clear();
    let mut scope_msg = Vec::with_capacity(32 + version.len());
    scope(&mut scope_msg, version);
    let field = |len: usize| 1 + pb::varint_len(len as u64) + len;
    let scope_logs = scope_msg.len() + entries.len();
    let resource_logs = field(resource.len()) + field(scope_logs);
    out.reserve(field(resource_logs));
    pb::message_head(out, 1, resource_logs);
    pb::message_head(out, 1, resource.len());
    out.extend_from_slice(resource);
    pb::message_head(out, 2, scope_logs);
    out.extend_from_slice(&scope_msg);
    out.extend_from_slice(entries);
}

/// The attributes of a series: those its labels fill.
fn series_attrs(out: &mut Vec<u8>, k: &Key, a: &mut Attrs) {
    if !k.2.is_empty() {
        a.str(out, 7, "process.executable.path", &k.2);
    }
    if !k.1.is_empty() {
        a.str(out, 7, "process.owner", &k.1);
    }
    if !k.0.is_empty() {
        a.str(out, 7, "netwho.unit", &k.0);
    }
}

fn point(
    out: &mut Vec<u8>,
    k: &Key,
    extra: Option<&str>,
    v: u64,
    (start_ns, now_ns): (u64, u64),
    a: &mut Attrs,
) {
    pb::message(out, 1, |p| {
        pb::fixed64(p, 2, start_ns);
        pb::fixed64(p, 3, now_ns);
        pb::fixed64(p, 6, i64::try_from(v).unwrap_or(i64::MAX) as u64);
        series_attrs(p, k, a);
        if let Some(d) = extra {
            a.str(p, 7, "network.io.direction", d);
        }
    });
}

/// An `ExportMetricsServiceRequest`: for each series, payload bytes by
/// direction (`process.network.io`, bytes) and flows opened
/// (`netwho.flows`), cumulative since `start_ns`, at `now_ns`.
pub fn metrics_request(
    resource: &[u8],
    version: &str,
    rows: &[(Key, Vals)],
    start_ns: u64,
    now_ns: u64,
    a: &mut Attrs,
) -> Vec<u8> {
    let mut out = Vec::new();
    let span = (start_ns, now_ns);
    pb::message(&mut out, 1, |rm| {
        pb::message(rm, 1, |r| r.extend_from_slice(resource));
        pb::message(rm, 2, |sm| {
            scope(sm, version);
            pb::message(sm, 2, |m| {
                pb::bytes(m, 1, b"process.network.io");
                pb::bytes(
                    m,
                    2,
                    b"Application payload bytes (what send and recv returned), by executable, user and unit",
                );
                pb::bytes(m, 3, b"By");
                pb::message(m, 7, |sum| {
                    for (k, v) in rows {
                        point(sum, k, Some("transmit"), v.sent, span, a);
                        point(sum, k, Some("receive"), v.recv, span, a);
                    }
                    pb::uint(sum, 2, CUMULATIVE);
                    pb::boolean(sum, 3, true);
                });
            });
            pb::message(sm, 2, |m| {
                pb::bytes(m, 1, b"netwho.flows");
                pb::bytes(
                    m,
                    2,
                    b"Flows opened (connections, and datagram flows per remote), by executable, user and unit",
                );
                pb::bytes(m, 3, b"{flow}");
                pb::message(m, 7, |sum| {
                    for (k, v) in rows {
                        point(sum, k, None, v.conns, span, a);
                    }
                    pb::uint(sum, 2, CUMULATIVE);
                    pb::boolean(sum, 3, true);
                });
            });
        });
    });
    out
}

/// Records (logs) or data points (metrics) a collector's answer says it
/// rejected (`partial_success`), and its message; none for an empty or
/// unreadable answer.
pub fn rejected(answer: &[u8]) -> Option<(u64, String)> {
    let top = pb::fields(answer).ok()?;
    let partial = top.iter().find_map(|f| match f {
        pb::Field::Len(1, b) => Some(*b),
        _ => None,
    })?;
    let mut n = 0;
    let mut msg = String::new();
    for f in pb::fields(partial).ok()? {
        match f {
            pb::Field::Varint(1, v) => n = v,
            pb::Field::Len(2, m) => msg = String::from_utf8_lossy(m).chars().take(200).collect(),
            _ => {}
        }
    }
    Some((n, msg))
}
