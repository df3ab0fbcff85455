//! `netwho report --postgres`: the reports over the fleet's records.
//!
//! Each stored record becomes a flow item per local end (a record of a
//! connection between two processes of one host gives both), with the
//! connection's counters summed over its records, so the one
//! [`Reporter`] counts bytes, flows, filters and windows as it does for a
//! recording. A record's time is its end; `--since/--until` select
//! records by it. Processes and connections are told apart by host; by
//! user, unit, remote and port, hosts merge.

use crate::FleetError;
use crate::pg;
use futures_util::{StreamExt, pin_mut};
use netwho_export::fleet::{FleetProc, FleetRecord};
use netwho_model::record::{Context, Names};
use netwho_model::time::WallClock;
use netwho_model::{
    Attribution, CloseReason, Direction, Endpoint, Flow, FlowEvent, FlowId, FlowKey, MonoNs,
    Payload, ProcInfo, ProcKey, ProcSource, Proto, SockCookie, Wire,
};
use netwho_report::request::TimeArg;
use netwho_report::table::Table;
use netwho_report::{
    ReportConfig, ReportError, ReportKind, ReportSource, Reporter, SourceReport, Totals,
};
use netwho_store::recording::FlowItem;
use rustc_hash::FxHashMap;
use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

#[derive(Debug)]
/// A report over the fleet's records, before it is printed.
pub struct FleetReport {
    /// The rows.
    pub table: Table,
    /// What they add up to.
    pub totals: Totals,
    /// Unix ns of the first and last record counted.
    pub first: Option<i128>,
    /// See `first`.
    pub last: Option<i128>,
    /// Records read.
    pub rows_read: u64,
    /// The hosts whose records were read.
    pub hosts: Vec<String>,
}

const MS: i128 = 1_000_000;

/// The fleet's database, opened once for a report (its window and rows).
pub struct FleetDb {
    rt: tokio::runtime::Runtime,
    db: tokio_postgres::Client,
}

impl std::fmt::Debug for FleetDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetDb")
    }
}

impl FleetDb {
    /// Connects, and checks that the collector's table is there.
    pub fn open(pg_conn: &str) -> Result<FleetDb, FleetError> {
        let rt = crate::runtime()?;
        let db = rt.block_on(async {
            let db = pg::connect(pg_conn).await?;
            let row = db
                .query_one("SELECT to_regclass('netwho_flows') IS NOT NULL", &[])
                .await?;
            if row.get::<_, bool>(0) {
                Ok(db)
            } else {
                Err(FleetError::NoTable(pg::describe(pg_conn)))
            }
        })?;
        Ok(FleetDb { rt, db })
    }

    /// `since` and `until` as Unix ns: `+DURATION` counts from the first
    /// record (of the hosts asked for).
    pub fn window(
        &self,
        hosts: &[String],
        since: Option<TimeArg>,
        until: Option<TimeArg>,
        now_unix_ns: i128,
    ) -> Result<(Option<i128>, Option<i128>), FleetError> {
        if since.is_none() && until.is_none() {
            return Ok((None, None));
        }
        let row = self.rt.block_on(self.db.query_one(
            "SELECT min(start_ms) FROM netwho_flows WHERE cardinality($1::text[]) = 0 OR host = ANY($1)",
            &[&hosts],
        ))?;
        let first: Option<i64> = row.try_get(0)?;
        let start = i128::from(first.unwrap_or(0)) * MS;
        let at = |t: TimeArg| t.resolve(start, now_unix_ns);
        Ok((since.map(at), until.map(at)))
    }

    /// Runs a report over the records of `hosts` (all: empty) that ended
    /// in `[cfg.since, cfg.until)`.
    pub fn report(
        &self,
        kind: ReportKind,
        cfg: ReportConfig,
        hosts: &[String],
    ) -> Result<FleetReport, FleetError> {
        self.rt.block_on(run(&self.db, kind, cfg, hosts))
    }
}

/// The fleet's database as a report source (`netwho report --postgres`):
/// the records of `hosts` (all: empty).
#[derive(Debug)]
pub struct FleetSource {
    db: FleetDb,
    conn: String,
    hosts: Vec<String>,
}

impl FleetSource {
    /// Connect to `pg_conn` and report over the records of `hosts`.
    pub fn open(pg_conn: &str, hosts: Vec<String>) -> Result<FleetSource, FleetError> {
        Ok(FleetSource {
            db: FleetDb::open(pg_conn)?,
            conn: pg_conn.to_string(),
            hosts,
        })
    }
}

impl ReportSource for FleetSource {
    fn window(
        &mut self,
        since: Option<TimeArg>,
        until: Option<TimeArg>,
        now_unix_ns: i128,
    ) -> Result<(Option<i128>, Option<i128>), ReportError> {
        self.db
            .window(&self.hosts, since, until, now_unix_ns)
            .map_err(|e| ReportError::Source(Box::new(e)))
    }

    fn run(&mut self, kind: ReportKind, cfg: ReportConfig) -> Result<SourceReport, ReportError> {
        let r = self
            .db
            .report(kind, cfg, &self.hosts)
            .map_err(|e| ReportError::Source(Box::new(e)))?;
        let shown = pg::describe(&self.conn);
        let hosts = r.hosts.join(" ");
        Ok(SourceReport {
            source_json: (
                "fleet",
                serde_json::json!({
                    "postgres": shown,
                    "hosts": r.hosts,
                    "records_read": r.rows_read,
                }),
            ),
            source_text: format!(
                "fleet database {shown} ({} records of {hosts})",
                r.rows_read
            ),
            table: r.table,
            totals: r.totals,
            first: r.first,
            last: r.last,
            notes: Vec::new(),
            read: None,
        })
    }
}

const SELECT: &str = "
SELECT host, start_ms, end_ms, end_reason, protocol, src, src_port, dst, dst_port,
    direction, octets, packets, rev_octets, rev_packets, payload, rev_payload,
    src_proc::text, dst_proc::text
FROM netwho_flows
WHERE (cardinality($1::text[]) = 0 OR host = ANY($1))
    AND ($2::int8 IS NULL OR end_ms >= $2) AND ($3::int8 IS NULL OR end_ms < $3)
ORDER BY end_ms, host, msg_id, line";

async fn run(
    db: &tokio_postgres::Client,
    kind: ReportKind,
    cfg: ReportConfig,
    hosts: &[String],
) -> Result<FleetReport, FleetError> {
    let since_ms = cfg
        .since
        .map(|t| i64::try_from(t.div_euclid(MS)).unwrap_or(i64::MIN));
    let until_ms = cfg
        .until
        .map(|t| i64::try_from((t + MS - 1).div_euclid(MS)).unwrap_or(i64::MAX));
    let cfg = ReportConfig { hosts: true, ..cfg };
    // the reporter's clock: record times are Unix time already
    let mut rep = Reporter::new(kind, cfg, WallClock { boot_to_unix_ns: 0 }, HashSet::new());
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&hosts, &since_ms, &until_ms];
    let rows = db.query_raw(SELECT, params).await?;
    pin_mut!(rows);
    let mut conns = Conns::default();
    let mut names: FxHashMap<String, Arc<str>> = FxHashMap::default();
    let mut seen_hosts = BTreeSet::new();
    let mut rows_read = 0u64;
    while let Some(row) = rows.next().await {
        let row = row?;
        rows_read += 1;
        let host: String = row.try_get(0)?;
        let host = match names.get(&host) {
            Some(h) => Arc::clone(h),
            None => {
                seen_hosts.insert(host.clone());
                let h: Arc<str> = Arc::from(host.as_str());
                names.insert(host, Arc::clone(&h));
                h
            }
        };
        let num = |i: usize| {
            row.try_get::<_, i64>(i)
                .map(|n| u64::try_from(n).unwrap_or(0))
        };
        let small = |i: usize| {
            row.try_get::<_, i16>(i)
                .map(|n| u8::try_from(n).unwrap_or(0))
        };
        let port = |i: usize| {
            row.try_get::<_, i32>(i)
                .map(|n| u16::try_from(n).unwrap_or(0))
        };
        let proc = |i: usize| -> Result<Option<FleetProc>, FleetError> {
            let text: Option<String> = row.try_get(i)?;
            Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
        };
        let rec = FleetRecord {
            start_ms: num(1)?,
            end_ms: num(2)?,
            end_reason: small(3)?,
            protocol: small(4)?,
            src: row.try_get::<_, IpAddr>(5)?,
            src_port: port(6)?,
            dst: row.try_get::<_, IpAddr>(7)?,
            dst_port: port(8)?,
            direction: small(9)?,
            octets: num(10)?,
            packets: num(11)?,
            rev_octets: num(12)?,
            rev_packets: num(13)?,
            payload: num(14)?,
            rev_payload: num(15)?,
            src_proc: proc(16)?,
            dst_proc: proc(17)?,
            // (a report computes a connection's id with its own seed)
            community_id: String::new(),
        };
        for item in conns.items(&host, &rec) {
            rep.counted_on(&host, &item, 1);
        }
    }
    let (totals, first, last) = (rep.totals, rep.first, rep.last);
    Ok(FleetReport {
        table: rep.finish()?,
        totals,
        first,
        last,
        rows_read,
        hosts: seen_hosts.into_iter().collect(),
    })
}

/// A connection's end: host, protocol, local and remote, process.
type ConnKey = (Arc<str>, u8, SocketAddr, SocketAddr, u32, u64);

#[derive(Debug)]
struct Conn {
    id: u64,
    opened_ms: u64,
    payload: Payload,
    wire: Wire,
}

/// Connections seen so far, with their counters summed over records.
#[derive(Debug, Default)]
pub struct Conns {
    open: FxHashMap<ConnKey, Conn>,
    next: u64,
}

impl Conns {
    /// The flow items of one record: one per local end.
    pub fn items(&mut self, host: &Arc<str>, r: &FleetRecord) -> Vec<FlowItem> {
        let mut out = Vec::with_capacity(2);
        let src = SocketAddr::new(r.src, r.src_port);
        let dst = SocketAddr::new(r.dst, r.dst_port);
        let fwd = (r.payload, r.octets, r.packets);
        let back = (r.rev_payload, r.rev_octets, r.rev_packets);
        if let Some(p) = &r.src_proc {
            out.push(self.item(host, r, p, (src, dst), Direction::Outbound, (fwd, back)));
        }
        if let Some(p) = &r.dst_proc {
            out.push(self.item(host, r, p, (dst, src), Direction::Inbound, (back, fwd)));
        }
        out
    }

    fn item(
        &mut self,
        host: &Arc<str>,
        r: &FleetRecord,
        p: &FleetProc,
        (local, remote): (SocketAddr, SocketAddr),
        direction: Direction,
        (out, back): ((u64, u64, u64), (u64, u64, u64)),
    ) -> FlowItem {
        let key: ConnKey = (
            Arc::clone(host),
            r.protocol,
            local,
            remote,
            p.pid,
            p.start_ticks,
        );
        let next = &mut self.next;
        let c = self.open.entry(key.clone()).or_insert_with(|| {
            *next += 1;
            Conn {
                id: *next,
                opened_ms: r.start_ms,
                payload: Payload::default(),
                wire: Wire::default(),
            }
        });
        c.payload.bytes_sent += out.0;
        c.payload.bytes_recv += back.0;
        c.wire.bytes_sent += out.1;
        c.wire.bytes_recv += back.1;
        c.wire.packets_sent += out.2;
        c.wire.packets_recv += back.2;
        let ended = r.end_reason == netwho_export::flows::end::END_OF_FLOW;
        let f = flow(c, p, local, remote, direction, r, ended);
        if ended {
            self.open.remove(&key);
        }
        let (ctx, at) = (context(p), mono_ms(r.end_ms));
        FlowItem {
            ev: if ended {
                FlowEvent::Closed(f)
            } else {
                FlowEvent::Updated(f)
            },
            ctx,
            at,
            is_final: false,
        }
    }
}

fn mono_ms(ms: u64) -> MonoNs {
    MonoNs(ms.saturating_mul(1_000_000))
}

fn flow(
    c: &Conn,
    p: &FleetProc,
    local: SocketAddr,
    remote: SocketAddr,
    direction: Direction,
    r: &FleetRecord,
    ended: bool,
) -> Flow {
    let mut info = ProcInfo::unknown(
        ProcKey::from_start_ticks(p.pid, p.start_ticks),
        &p.name,
        p.uid,
        0,
    );
    info.ppid = p.ppid;
    info.parent_comm = p.parent.clone();
    info.cmdline = p
        .cmdline
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    info.source = ProcSource::Exec;
    let info = Arc::new(info);
    let remote_ep = Endpoint::new(remote.ip(), remote.port());
    Flow {
        key: FlowKey {
            proc: info.key,
            cookie: SockCookie(c.id),
            remote: remote_ep,
        },
        id: FlowId(c.id),
        proto: Proto::from_ip_number(r.protocol),
        local: Endpoint::new(local.ip(), local.port()),
        remote: remote_ep,
        packet: false,
        netns: 0,
        direction,
        tcp_state: None,
        opened: mono_ms(c.opened_ms),
        closed: ended.then(|| mono_ms(r.end_ms)),
        close_reason: ended.then_some(CloseReason::SocketClosed),
        comm: p.name.clone(),
        uid: p.uid,
        gid: 0,
        cgroup_id: 0,
        proc: info,
        payload: c.payload,
        wire: c.wire,
        attribution: Attribution::from_name(&p.attribution).unwrap_or(Attribution::Unknown),
        cpu_base: None,
        bytes_complete: true,
        capture: None,
        remote_name: remote_name(p),
    }
}

/// The names a host's record gave its process's view of the other end
/// (records of hosts from before names have none). Cut to what netwho
/// writes: a hostile row cannot make every output carry megabytes.
fn remote_name(p: &FleetProc) -> Option<Arc<netwho_model::names::RemoteName>> {
    use netwho_model::names::{NAME_MAX, RemoteName, RnameSource};
    let take = |s: &str| -> Option<Arc<str>> {
        if s.is_empty() {
            return None;
        }
        let mut end = s.len().min(NAME_MAX);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Some(Arc::from(&s[..end]))
    };
    let rn = RemoteName {
        rname: take(&p.rname),
        source: RnameSource::parse(&p.rname_source),
        sni: take(&p.sni),
        alpn: take(&p.alpn),
    };
    (rn != RemoteName::default()).then(|| Arc::new(rn))
}

fn context(p: &FleetProc) -> Context {
    Context {
        names: Arc::new(Names {
            user: p.user.clone(),
            unit: p.unit.clone(),
            container_id: p.container.clone(),
            ..Names::default()
        }),
        exe_sha256: (!p.exe_sha256.is_empty()).then(|| Arc::from(p.exe_sha256.as_str())),
        usage: None,
        track: None,
        community_seed: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(end_ms: u64, reason: u8, payload: u64, joined: bool) -> FleetRecord {
        let p = |pid: u32, name: &str| FleetProc {
            pid,
            name: name.into(),
            ..FleetProc::default()
        };
        FleetRecord {
            start_ms: end_ms - 10,
            end_ms,
            end_reason: reason,
            protocol: 6,
            src: "10.231.31.1".parse().unwrap(),
            src_port: 40_000,
            dst: "10.231.31.2".parse().unwrap(),
            dst_port: 80,
            direction: 1,
            octets: payload + 100,
            packets: 2,
            rev_octets: 50,
            rev_packets: 1,
            payload,
            rev_payload: 10,
            src_proc: Some(p(7, "curl")),
            dst_proc: joined.then(|| p(8, "nginx")),
            community_id: String::new(),
        }
    }

    #[test]
    fn records_of_a_connection_add_up_and_both_local_ends_count() {
        let mut c = Conns::default();
        let h: Arc<str> = Arc::from("h1");
        let a = c.items(&h, &rec(1_000, 2, 300, true));
        assert_eq!(a.len(), 2);
        let b = c.items(&h, &rec(2_000, 3, 200, true));
        let client = b[0].ev.flow();
        let server = b[1].ev.flow();
        assert!(matches!(b[0].ev, FlowEvent::Closed(_)));
        // cumulative over the connection's records, each end's view
        assert_eq!(
            (client.payload.bytes_sent, client.payload.bytes_recv),
            (500, 20)
        );
        assert_eq!(
            (server.payload.bytes_sent, server.payload.bytes_recv),
            (20, 500)
        );
        assert_eq!(
            (client.direction, server.direction),
            (Direction::Outbound, Direction::Inbound)
        );
        assert_eq!(server.local.port, 80);
        assert_eq!(client.key.cookie, a[0].ev.flow().key.cookie);
        assert_eq!(client.opened, mono_ms(990));
        // ended: the same 5-tuple later is a new connection
        let again = c.items(&h, &rec(3_000, 3, 1, false));
        assert_eq!(again.len(), 1);
        assert_ne!(again[0].ev.flow().key.cookie, client.key.cookie);
        assert_eq!(again[0].ev.flow().payload.bytes_sent, 1);
        // another host's identical connection is its own
        let other = c.items(&Arc::from("h2"), &rec(3_000, 2, 1, false));
        assert_ne!(other[0].ev.flow().key.cookie, again[0].ev.flow().key.cookie);
    }

    /// Each local end's names come back from its process's JSON, as the
    /// host's record carried them (the line round trip included); a hostile
    /// row's names are cut, an unknown source is none.
    #[test]
    fn each_ends_names_come_back_from_its_record() {
        let mut r = rec(1_000, 3, 10, true);
        if let Some(p) = &mut r.src_proc {
            p.rname = "a.example".into();
            p.rname_source = "dns".into();
            p.sni = "api.a.example".into();
        }
        if let Some(p) = &mut r.dst_proc {
            p.rname = "x".repeat(10_000);
            p.rname_source = "forged".into();
        }
        let line = serde_json::to_vec(&r).unwrap();
        let back: FleetRecord = serde_json::from_slice(&line).unwrap();
        let items = Conns::default().items(&Arc::from("h1"), &back);
        let client = items[0].ev.flow().remote_name.clone().unwrap();
        assert_eq!(client.rname.as_deref(), Some("a.example"));
        assert_eq!(client.sni.as_deref(), Some("api.a.example"));
        assert_eq!(client.source.map(|s| s.name()), Some("dns"));
        let server = items[1].ev.flow().remote_name.clone().unwrap();
        assert_eq!(
            server.rname.as_deref().map(str::len),
            Some(netwho_model::names::NAME_MAX)
        );
        assert_eq!(server.source, None);
        // a record from before names: nothing
        let old = rec(1_000, 3, 10, false);
        let items = Conns::default().items(&Arc::from("h1"), &old);
        assert!(items[0].ev.flow().remote_name.is_none());
    }
}
