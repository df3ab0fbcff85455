//! What a sensor says about itself: how it attributes traffic, what it
//! runs on, and every counter of what it lost. Plain data, so status
//! records and every output carry it without depending on a sensor.

/// How a sensor attributes traffic, and what it runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensorInfo {
    /// `ebpf`, `sock_diag`, ... (the `attribution` of its records).
    pub attribution: &'static str,
    /// The kernel hooks attached.
    pub hooks: Vec<&'static str>,
    /// Hooks or features that are missing, each in a sentence.
    pub degradations: Vec<String>,
}

/// Everything a sensor lost or could not attribute, and how busy it is.
/// Counters only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SensorStats {
    /// Kernel events lost because the ring buffer was full.
    pub ringbuf_drops: u64,
    /// Flows not tracked because the kernel flow map was full...
    pub flows_map_full: u64,
    /// ...and the payload bytes that went uncounted with them.
    pub bytes_lost: u64,
    /// (Socket, remote)s whose wire counters found the wire map full.
    pub wire_map_full: u64,
    /// Datagrams whose remote address could not be found.
    pub remote_unknown: u64,
    /// Socket storage that could not be allocated.
    pub storage_fail: u64,
    /// Packets without a full socket (time-wait, request sockets).
    pub wire_no_socket: u64,
    /// Packets on a socket after it was finalized.
    pub wire_after_close: u64,
    /// Packets on listening sockets (handshakes; not attributed).
    pub wire_handshake: u64,
    /// Ring records that did not decode.
    pub decode_errors: u64,
    /// Failed reads or deletes on kernel maps.
    pub map_errors: u64,
    /// Flow opens that came after their flow's counters.
    pub late_opens: u64,
    /// Kernel flow entries whose open event never arrived.
    pub unannounced: u64,
    /// Wire counters of sockets no process claimed, dropped.
    pub wire_orphaned: u64,
    /// send/recv calls with payload, and packets, seen by the kernel side.
    pub payload_calls: u64,
    /// See `payload_calls`.
    pub packets: u64,
    /// Sockets (and datagram flows) outside the kernel scope, not counted.
    pub scoped_out: u64,
    /// Payload capture records the ring had no room for (`record -s`).
    pub capture_lost: u64,
    /// Packets the ring had no room for, or took only in part (`netwho pcap`).
    pub packets_lost: u64,
    /// Packets read for names (DNS answers, ClientHellos) given to the ring.
    pub names: u64,
    /// Of those, what the ring had no room for.
    pub names_lost: u64,
    /// Kernel flow entries alive now.
    pub flows_tracked: u64,
    /// Of `ringbuf_drops`: flow opens (and inbound handshakes), socket
    /// closes, process events (exec, fork, exit).
    pub ringbuf_open: u64,
    /// See `ringbuf_open`.
    pub ringbuf_close: u64,
    /// See `ringbuf_open`.
    pub ringbuf_proc: u64,
    /// Flows counted on their socket (their uid held its share of the flow
    /// map, or it was full): present, bytes per socket.
    pub untracked: u64,
    /// Lost closes and exits the kernel had no room left to keep.
    pub lost_full: u64,
    /// Packets of (socket, remote)s over their uid's share of the wire map.
    pub wire_untracked: u64,
    /// Lost closes and exits the kernel kept, finished from its maps.
    pub lost_recovered: u64,
    /// TCP bytes applications took past recv() (splice, zero-copy).
    pub bypass_recv: u64,
    /// Reduced mode: sockets that opened and ended between two looks, so
    /// nobody to attribute them to...
    pub missed_sockets: u64,
    /// ...and their payload, with payload moved while nobody held a socket.
    pub missed_bytes: u64,
    /// Reduced mode: destroy and process notices the kernel dropped (their
    /// socket's buffer was full).
    pub notices_lost: u64,
}

/// Uids shown as having hit their share of the kernel maps (the most).
pub const UIDS_LIMITED_SHOWN: usize = 10;

/// A uid that went over its share of the kernel maps, and how often.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UidLimit {
    /// The user.
    pub uid: u32,
    /// New flows counted on their socket instead of their own entry.
    pub flows_refused: u64,
    /// Packets of (socket, remote)s that got no wire entry.
    pub wire_refused: u64,
}
