//! The status record: what netwho runs on and everything it lost or could
//! not attribute, emitted when every hook is attached (`ready`), every
//! status interval, and at exit (`final`). Loss is never silent: every
//! counter here only grows, and every view shows them.

use netwho_model::ModelStats;
use netwho_model::collector::{SensorInfo, SensorStats};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Events and records that were lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drops {
    /// Kernel events lost in a full ring buffer.
    pub ringbuf: u64,
    /// Flows not tracked because the kernel flow map was full, and the
    /// payload bytes that went uncounted with them.
    pub flow_map_full: u64,
    /// Payload bytes that went uncounted with them.
    pub bytes_lost: u64,
    /// (Socket, remote)s whose wire counters found the wire map full.
    pub wire_map_full: u64,
    /// Records the output could not keep up with.
    pub output: u64,
    /// Ring records that did not decode.
    pub decode_errors: u64,
    /// Failed reads or deletes on the kernel maps.
    pub map_errors: u64,
    /// Kernel socket storage that could not be created, and batches the
    /// history database refused (each kept and retried; what it had to let
    /// go is in `output`).
    pub storage_fail: u64,
    /// Of `ringbuf`: flow opens (the flow's bytes still arrive with a scan,
    /// as `opens_missing`), socket closes (kept by the kernel and finished
    /// from its maps: `partial.lost_recovered`), process events.
    #[serde(default)]
    pub ringbuf_open: u64,
    /// Of `ringbuf`: socket closes.
    #[serde(default)]
    pub ringbuf_close: u64,
    /// Of `ringbuf`: process events (exec, fork, exit).
    #[serde(default)]
    pub ringbuf_proc: u64,
    /// Lost closes and exits the kernel had no room left to keep.
    #[serde(default)]
    pub lost_full: u64,
    /// Reduced (sock_diag) mode: sockets that opened and ended between two
    /// looks, with nobody to attribute them to.
    #[serde(default)]
    pub missed_sockets: u64,
    /// Their payload, and payload moved while no process held a socket.
    #[serde(default)]
    pub missed_bytes: u64,
    /// Reduced mode: destroy and process notices the kernel dropped.
    #[serde(default)]
    pub notices_lost: u64,
}

impl Drops {
    /// Every loss counted here (`bytes_lost`, `missed_bytes` and the per-kind parts of
    /// `ringbuf` are not events of their own).
    pub fn total(&self) -> u64 {
        self.ringbuf
            + self.flow_map_full
            + self.wire_map_full
            + self.output
            + self.decode_errors
            + self.map_errors
            + self.storage_fail
            + self.lost_full
            + self.missed_sockets
            + self.notices_lost
    }
}

/// Things seen but only partly attributed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    /// Datagrams whose remote address could not be found.
    pub remote_unknown: u64,
    /// Flows whose open event was lost (counted, details partial).
    pub opens_missing: u64,
    /// Flows of a process netwho knew nothing about.
    pub procs_unknown: u64,
    /// Inbound connections no process touched (given to the listener).
    pub inbound_unclaimed: u64,
    /// Processes whose /proc entry could not be read.
    pub proc_lookup_failures: u64,
    /// Users and groups whose names could not be found.
    pub name_lookup_failures: u64,
    /// Cgroup ids whose path could not be found.
    pub cgroup_lookup_failures: u64,
    /// Packets with no owned socket (time-wait, kernel replies).
    pub wire_no_socket: u64,
    /// Packets on a socket after its flows were finalized.
    pub wire_after_close: u64,
    /// Packets on listening sockets (handshakes; no process's yet).
    pub wire_handshake: u64,
    /// Wire counters of sockets no process claimed, let go.
    pub wire_orphaned: u64,
    /// Executables that could not be hashed, and hash requests dropped.
    pub hash_failures: u64,
    /// Hash requests dropped (the hashing queue was full).
    pub hash_dropped: u64,
    /// Resource samples that could not be read.
    pub sample_failures: u64,
    /// Values kept shorter than they were: process strings over their cap
    /// (command lines, paths; their full length and hash are kept), and
    /// export fields cut to fit a message or a payload limit.
    #[serde(default)]
    pub values_truncated: u64,
    /// Flows the kernel counted on their socket, not per flow (their uid
    /// held its share of the flow map, or it was full): present, with
    /// `bytes_complete: false`; their bytes on the socket's aggregate.
    #[serde(default)]
    pub untracked: u64,
    /// Packets of (socket, remote)s with no wire entry (their uid held its
    /// share of the wire map): payload exact, wire bytes partial.
    #[serde(default)]
    pub wire_untracked: u64,
    /// Socket closes and process exits the ring lost, which the kernel
    /// kept aside and netwho finished from its maps (nothing leaked).
    #[serde(default)]
    pub lost_recovered: u64,
}

/// How busy the kernel side is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelCounters {
    /// send/recv calls with payload the programs saw.
    pub payload_calls: u64,
    /// Packets the programs saw.
    pub packets: u64,
    /// Kernel flow entries alive now.
    pub flows_tracked: u64,
    /// Sockets and datagram flows outside the kernel scope, never counted.
    pub scoped_out: u64,
    /// Payload capture records lost (`record -s`; absent in older records).
    #[serde(default)]
    pub capture_lost: u64,
    /// Packets lost to `netwho pcap`: no room in the ring, or only part of
    /// them taken (absent in older records, and 0 unless capturing).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub packets_lost: u64,
    /// TCP bytes applications took past recv() (splice, zero-copy
    /// receive), added to their flows' `bytes_recv` at close.
    #[serde(default)]
    pub bypass_recv: u64,
}

/// A uid that went over its share of the kernel maps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UidLimit {
    /// The user.
    pub uid: u32,
    /// New flows counted on their socket instead of an entry of their own.
    pub flows_refused: u64,
    /// Packets of (socket, remote)s that got no wire entry.
    pub wire_refused: u64,
}

/// `{"event":"status"}`: what netwho runs on and everything it lost or
/// could not attribute (`docs/specs/flow-record.md`, "Status records").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusRecord {
    /// Always `status`.
    pub event: Cow<'static, str>,
    /// When it was made (RFC 3339, UTC).
    pub ts: String,
    /// Every hook is attached and every older socket is known.
    pub ready: bool,
    /// The last record of the run.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// How flows are attributed (`ebpf`).
    pub attribution: Cow<'static, str>,
    /// The kernel hooks attached.
    pub hooks: Vec<Cow<'static, str>>,
    /// What does not work here, each in a sentence that says what to do.
    pub degradations: Vec<String>,
    /// Seconds since the sensor attached.
    pub uptime_s: f64,
    /// Flows open now.
    pub flows_open: u64,
    /// Flows opened and closed since the start.
    pub flows_opened: u64,
    /// See `flows_opened`.
    pub flows_closed: u64,
    /// Processes tracked now.
    pub procs_tracked: u64,
    /// Events and records lost.
    pub drops: Drops,
    /// Things seen but only partly attributed.
    pub partial: Partial,
    /// How busy the kernel side is.
    pub kernel: KernelCounters,
    /// The filter records must match, and the part the kernel applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The part of the filter the kernel applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Flow events the filter did not pass.
    pub filtered_out: u64,
    /// Uids that went over their share of the kernel maps (`--flows-per-uid`),
    /// the ten most refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<UidLimit>,
    /// The share of the collector's network namespace's IP bytes that
    /// flows were given (live runs; absent in replays of older recordings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// Names (`rname`, `sni`): what was read and what could not be (names
    /// on only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<NamesCounters>,
}

/// What names cost and lost (`docs/specs/names.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamesCounters {
    /// Packets the kernel read for names (DNS answers, ClientHellos).
    pub kernel_records: u64,
    /// Of those, what the ring had no room for.
    pub kernel_lost: u64,
    /// DNS answers read.
    pub dns_answers: u64,
    /// Addresses they named.
    pub dns_addrs: u64,
    /// DNS messages not read: malformed, cut, queries, error codes.
    pub dns_unreadable: u64,
    /// Addresses past the per-answer bound.
    pub dns_addrs_dropped: u64,
    /// Names pushed out of the full book by newer ones.
    pub evicted: u64,
    /// Names not kept: their user's processes held their share (a
    /// quarter) of the book.
    #[serde(default)]
    pub refused: u64,
    /// ClientHellos read (TLS and QUIC).
    pub hellos: u64,
    /// Streams whose first bytes were not a ClientHello.
    pub not_hello: u64,
    /// QUIC datagrams that were not readable Initials.
    pub quic_unreadable: u64,
    /// Streams dropped unfinished (too many at once).
    pub streams_evicted: u64,
    /// Pieces of sockets no flow was seen on in time.
    pub orphaned: u64,
}

/// Interface bytes against attributed bytes in one network namespace,
/// since the run started. Forwarded traffic and traffic that is not IP are
/// not any process's: on a router the share is low, and that is the truth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// The network namespace (inode) measured: the collector's own.
    pub netns: u32,
    /// IP bytes its interfaces carried (link-layer headers taken off).
    pub interface_bytes: u64,
    /// IP bytes netwho gave to a flow there.
    pub attributed_bytes: u64,
    /// `attributed / interface`, once 64 KiB went through.
    pub share: Option<f64>,
}

impl StatusRecord {
    /// The record as a caller who sees only their own traffic is shown
    /// it: health (hooks, degradations, losses) as it is, but no figure of
    /// everyone's activity: `flows_open` is `own_open` (their own open
    /// flows) and the counts of all flows, processes and kernel calls are
    /// zero.
    #[must_use]
    pub fn scoped(&self, uid: u32, own_open: u64) -> StatusRecord {
        StatusRecord {
            flows_open: own_open,
            // whether they were limited themselves, not who else was
            limits: self
                .limits
                .iter()
                .filter(|l| l.uid == uid)
                .cloned()
                .collect(),
            flows_opened: 0,
            flows_closed: 0,
            procs_tracked: 0,
            filtered_out: 0,
            // the share, not everyone's byte counts
            coverage: self.coverage.map(|c| Coverage {
                interface_bytes: 0,
                attributed_bytes: 0,
                ..c
            }),
            kernel: KernelCounters {
                payload_calls: 0,
                packets: 0,
                flows_tracked: 0,
                scoped_out: 0,
                ..self.kernel
            },
            ..self.clone()
        }
    }
}

/// Lookup failures counted outside the model and the sensor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnrichCounts {
    /// Processes whose /proc entry could not be read.
    pub proc_lookup_failures: u64,
    /// Users and groups whose names could not be found.
    pub name_lookup_failures: u64,
    /// Cgroup ids whose path could not be found.
    pub cgroup_lookup_failures: u64,
    /// Executables that could not be hashed.
    pub hash_failures: u64,
    /// Hash requests dropped (the queue was full).
    pub hash_dropped: u64,
    /// Resource samples that could not be read.
    pub sample_failures: u64,
    /// Process strings kept shorter than they were (their cap).
    pub strings_capped: u64,
}

/// What the run was asked to select.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// The filter (its canonical text).
    pub filter: Option<String>,
    /// The part of it the kernel applies.
    pub scope: Option<String>,
    /// Flow events it did not pass.
    pub filtered_out: u64,
}

/// Everything a status record is made of, from each part of the run.
#[derive(Debug)]
pub struct StatusInput<'a> {
    /// When (RFC 3339).
    pub ts: String,
    /// Seconds since the sensor attached.
    pub uptime_s: f64,
    /// The run's last record.
    pub is_final: bool,
    /// What the sensor runs on.
    pub info: &'a SensorInfo,
    /// The sensor's counters.
    pub sensor: SensorStats,
    /// The flow table's counters.
    pub model: ModelStats,
    /// The enricher's failures.
    pub enrich: EnrichCounts,
    /// Records the outputs dropped.
    pub output_drops: u64,
    /// Values the outputs cut to fit (export fields, fleet records).
    pub output_truncated: u64,
    /// Writes the sinks' stores refused (the history database).
    pub storage_failures: u64,
    /// Uids over their share of the kernel maps.
    pub limits: Vec<UidLimit>,
    /// The coverage last measured.
    pub coverage: Option<Coverage>,
    /// The filter and what it kept out.
    pub selection: Selection,
    /// Degradations found outside the sensor.
    pub more_degradations: &'a [String],
    /// Names are on.
    pub names_on: bool,
}

impl StatusRecord {
    /// The record from its parts.
    pub fn build(i: StatusInput<'_>) -> Self {
        let s = i.sensor;
        StatusRecord {
            event: Cow::Borrowed("status"),
            ts: i.ts,
            ready: true,
            is_final: i.is_final,
            attribution: Cow::Borrowed(i.info.attribution),
            hooks: i.info.hooks.iter().map(|h| Cow::Borrowed(*h)).collect(),
            degradations: i
                .info
                .degradations
                .iter()
                .chain(i.more_degradations)
                .cloned()
                .collect(),
            uptime_s: (i.uptime_s * 1000.0).round() / 1000.0,
            flows_open: i.model.flows_open,
            flows_opened: i.model.flows_opened,
            flows_closed: i.model.flows_closed,
            procs_tracked: i.model.procs_tracked,
            drops: Drops {
                ringbuf: s.ringbuf_drops,
                flow_map_full: s.flows_map_full,
                bytes_lost: s.bytes_lost,
                wire_map_full: s.wire_map_full,
                output: i.output_drops,
                decode_errors: s.decode_errors,
                map_errors: s.map_errors,
                storage_fail: s.storage_fail + i.storage_failures,
                ringbuf_open: s.ringbuf_open,
                ringbuf_close: s.ringbuf_close,
                ringbuf_proc: s.ringbuf_proc,
                lost_full: s.lost_full,
                missed_sockets: s.missed_sockets,
                missed_bytes: s.missed_bytes,
                notices_lost: s.notices_lost,
            },
            partial: Partial {
                remote_unknown: s.remote_unknown,
                opens_missing: i.model.opens_missing,
                procs_unknown: i.model.procs_unknown,
                inbound_unclaimed: i.model.inbound_unclaimed,
                proc_lookup_failures: i.enrich.proc_lookup_failures,
                name_lookup_failures: i.enrich.name_lookup_failures,
                cgroup_lookup_failures: i.enrich.cgroup_lookup_failures,
                wire_no_socket: s.wire_no_socket,
                wire_after_close: s.wire_after_close,
                wire_handshake: s.wire_handshake,
                wire_orphaned: s.wire_orphaned,
                hash_failures: i.enrich.hash_failures,
                hash_dropped: i.enrich.hash_dropped,
                sample_failures: i.enrich.sample_failures,
                values_truncated: i.enrich.strings_capped + i.output_truncated,
                untracked: s.untracked.max(i.model.untracked),
                wire_untracked: s.wire_untracked,
                lost_recovered: s.lost_recovered,
            },
            kernel: KernelCounters {
                payload_calls: s.payload_calls,
                packets: s.packets,
                flows_tracked: s.flows_tracked,
                scoped_out: s.scoped_out,
                capture_lost: s.capture_lost,
                packets_lost: s.packets_lost,
                bypass_recv: s.bypass_recv,
            },
            filter: i.selection.filter,
            scope: i.selection.scope,
            filtered_out: i.selection.filtered_out,
            limits: i.limits,
            coverage: i.coverage,
            names: i.names_on.then(|| {
                let n = i.model.names;
                NamesCounters {
                    kernel_records: s.names,
                    kernel_lost: s.names_lost,
                    dns_answers: n.dns_answers,
                    dns_addrs: n.dns_addrs,
                    dns_unreadable: n.dns_unreadable,
                    dns_addrs_dropped: n.dns_addrs_dropped,
                    evicted: n.evicted,
                    refused: n.refused,
                    hellos: n.hellos,
                    not_hello: n.not_hello,
                    quic_unreadable: n.quic_unreadable,
                    streams_evicted: n.streams_evicted,
                    orphaned: i.model.names_orphaned,
                }
            }),
        }
    }

    /// One line for people (text mode, on stderr).
    pub fn summary(&self) -> String {
        let d = &self.drops;
        let mut s = format!(
            "netwho: {} ({}), {} open, {} opened, {} closed",
            self.attribution,
            crate::fmt::count(self.hooks.len() as u64, "hook", "hooks"),
            crate::fmt::count(self.flows_open, "flow", "flows"),
            self.flows_opened,
            self.flows_closed
        );
        if d.total() > 0 {
            s.push_str(&format!(
                "; LOST: {} kernel events, {} flows ({} bytes) to a full map, {} output records, \
                 {} map errors",
                d.ringbuf, d.flow_map_full, d.bytes_lost, d.output, d.map_errors
            ));
        } else {
            s.push_str("; nothing lost");
        }
        for deg in &self.degradations {
            s.push_str(&format!("; degraded: {deg}"));
        }
        s
    }
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if signature"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller who sees only their own traffic learns whether they were
    /// limited, not which other users were, nor everyone's activity.
    #[test]
    fn a_scoped_status_names_only_its_callers_limits() {
        let info = SensorInfo {
            attribution: "ebpf",
            hooks: Vec::new(),
            degradations: Vec::new(),
        };
        let limit = |uid| UidLimit {
            uid,
            flows_refused: 5,
            wire_refused: 1,
        };
        let all = StatusRecord::build(StatusInput {
            ts: String::new(),
            uptime_s: 1.0,
            is_final: false,
            info: &info,
            sensor: SensorStats::default(),
            model: ModelStats {
                flows_opened: 100,
                ..ModelStats::default()
            },
            enrich: EnrichCounts::default(),
            output_drops: 0,
            output_truncated: 0,
            storage_failures: 0,
            limits: vec![limit(1000), limit(1001)],
            coverage: Some(Coverage {
                netns: 7,
                interface_bytes: 1000,
                attributed_bytes: 990,
                share: Some(0.99),
            }),
            selection: Selection::default(),
            more_degradations: &[],
            names_on: false,
        });
        let mine = all.scoped(1001, 3);
        assert_eq!(mine.limits, vec![limit(1001)]);
        assert_eq!((mine.flows_open, mine.flows_opened), (3, 0));
        assert!(all.scoped(1002, 0).limits.is_empty());
        assert_eq!(all.limits.len(), 2);
        // the share, not everyone's byte counts
        let c = mine.coverage.unwrap_or_default();
        assert_eq!(
            (c.share, c.interface_bytes, c.attributed_bytes),
            (Some(0.99), 0, 0)
        );
    }
}
