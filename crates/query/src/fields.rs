//! The fields a filter can name, their types and what they mean.

/// What kind of values a field holds, which decides the operators and the
/// literals it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text: `= != contains startswith endswith in =~`.
    Str,
    /// One of a fixed set of words (checked when the filter is read).
    Enum(&'static [&'static str]),
    /// A whole number: every comparison, `in`.
    Num,
    /// Bytes: a number with an optional K/M/G (1000) or KiB/MiB/GiB suffix.
    Bytes,
    /// Seconds: a number with an optional ns/us/ms/s/m/h suffix.
    Duration,
    /// An IP address: `= != in` with addresses or CIDR networks.
    Addr,
    /// An IP address compared with networks (`fd.rnet = 10.0.0.0/8`).
    Net,
    /// True or false; alone (`fd.is_local`) or `= true|false`.
    Bool,
}

/// A field of the flow record a filter can test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `proc.name`: command name (comm).
    ProcName,
    /// `proc.pid`: process id (with --follow-children: or any ancestor's).
    ProcPid,
    /// `proc.exe`: executable path.
    ProcExe,
    /// `proc.cmdline`: command line, arguments joined by spaces.
    ProcCmdline,
    /// `proc.ppid`: parent process id.
    ProcPpid,
    /// `proc.pname`: parent's command name.
    ProcPname,
    /// `proc.apid`: any ancestor's process id.
    ProcApid,
    /// `proc.aname`: any ancestor's command name.
    ProcAname,
    /// `proc.sha256`: SHA-256 of the executable (hex).
    ProcSha256,
    /// `user.name`: user name of the effective uid.
    UserName,
    /// `user.uid`: effective uid.
    UserUid,
    /// `user.loginuid`: audit login uid (unset: no match).
    UserLoginUid,
    /// `group.name`: group name of the effective gid.
    GroupName,
    /// `group.gid`: effective gid.
    GroupGid,
    /// `unit`: systemd unit (service or scope).
    Unit,
    /// `cgroup`: cgroup v2 path.
    Cgroup,
    /// `container.id`: container id (64 hex digits).
    ContainerId,
    /// `fd.proto`: protocol.
    Proto,
    /// `fd.family`: address family.
    Family,
    /// `fd.lip`: local address.
    Lip,
    /// `fd.lport`: local port.
    Lport,
    /// `fd.rip`: remote address.
    Rip,
    /// `fd.rport`: remote port.
    Rport,
    /// `fd.cip`: client (initiator) address.
    Cip,
    /// `fd.cport`: client port.
    Cport,
    /// `fd.sip`: server address.
    Sip,
    /// `fd.sport`: server port.
    Sport,
    /// Either address.
    Ip,
    /// Either port.
    Port,
    /// `fd.net`: either address, compared with networks.
    Net,
    /// `fd.lnet`: local address, compared with networks.
    Lnet,
    /// `fd.rnet`: remote address, compared with networks.
    Rnet,
    /// `fd.cnet`: client address, compared with networks.
    Cnet,
    /// `fd.snet`: server address, compared with networks.
    Snet,
    /// `fd.is_local`: the remote is this host.
    IsLocal,
    /// `fd.direction`: who initiated.
    Direction,
    /// `fd.community_id`: the flow's Community ID v1.
    CommunityId,
    /// `fd.rname`: the name the process resolved to the remote address.
    Rname,
    /// `fd.rname_source`: whose answer gave it (`dns`, `shared`, `none`).
    RnameSource,
    /// `fd.sni`: the server name of the process's TLS or QUIC ClientHello.
    Sni,
    /// `fd.alpn`: the protocols it offered, comma-separated.
    Alpn,
    /// `flow.bytes`: payload bytes sent + received so far.
    Bytes,
    /// `flow.bytes_sent`: payload bytes sent so far.
    BytesSent,
    /// `flow.bytes_recv`: payload bytes received so far.
    BytesRecv,
    /// `flow.duration`: time since the flow opened (to its close).
    Duration,
}

/// Protocol names a filter may compare: the model's table, and `unknown`
/// (what a record says when the kernel entry knew no protocol).
pub const PROTOS: &[&str] = &[
    "tcp", "udp", "udplite", "icmp", "icmpv6", "sctp", "mptcp", "raw", "packet", "unknown",
];
/// Values of `fd.family`.
pub const FAMILIES: &[&str] = &["ipv4", "ipv6", "packet"];
/// Values of `fd.direction`.
pub const DIRECTIONS: &[&str] = &["outbound", "inbound", "unknown"];
/// Values of `fd.rname_source`.
pub const RNAME_SOURCES: &[&str] = &["dns", "shared", "none"];

/// (name, field, kind, meaning)
pub const FIELDS: &[(&str, Field, Kind, &str)] = &[
    (
        "proc.name",
        Field::ProcName,
        Kind::Str,
        "command name (comm)",
    ),
    (
        "proc.pid",
        Field::ProcPid,
        Kind::Num,
        "process id (with --follow-children: or any ancestor's)",
    ),
    ("proc.exe", Field::ProcExe, Kind::Str, "executable path"),
    (
        "proc.cmdline",
        Field::ProcCmdline,
        Kind::Str,
        "command line, arguments joined by spaces",
    ),
    ("proc.ppid", Field::ProcPpid, Kind::Num, "parent process id"),
    (
        "proc.pname",
        Field::ProcPname,
        Kind::Str,
        "parent's command name",
    ),
    (
        "proc.apid",
        Field::ProcApid,
        Kind::Num,
        "any ancestor's process id",
    ),
    (
        "proc.aname",
        Field::ProcAname,
        Kind::Str,
        "any ancestor's command name",
    ),
    (
        "proc.sha256",
        Field::ProcSha256,
        Kind::Str,
        "SHA-256 of the executable (hex)",
    ),
    (
        "user.name",
        Field::UserName,
        Kind::Str,
        "user name of the effective uid",
    ),
    ("user.uid", Field::UserUid, Kind::Num, "effective uid"),
    (
        "user.loginuid",
        Field::UserLoginUid,
        Kind::Num,
        "audit login uid (unset: no match)",
    ),
    (
        "group.name",
        Field::GroupName,
        Kind::Str,
        "group name of the effective gid",
    ),
    ("group.gid", Field::GroupGid, Kind::Num, "effective gid"),
    (
        "unit",
        Field::Unit,
        Kind::Str,
        "systemd unit (service or scope)",
    ),
    ("cgroup", Field::Cgroup, Kind::Str, "cgroup v2 path"),
    (
        "container.id",
        Field::ContainerId,
        Kind::Str,
        "container id (64 hex digits)",
    ),
    ("fd.proto", Field::Proto, Kind::Enum(PROTOS), "protocol"),
    (
        "fd.family",
        Field::Family,
        Kind::Enum(FAMILIES),
        "address family",
    ),
    ("fd.lip", Field::Lip, Kind::Addr, "local address"),
    ("fd.lport", Field::Lport, Kind::Num, "local port"),
    ("fd.rip", Field::Rip, Kind::Addr, "remote address"),
    ("fd.rport", Field::Rport, Kind::Num, "remote port"),
    (
        "fd.cip",
        Field::Cip,
        Kind::Addr,
        "client (initiator) address",
    ),
    ("fd.cport", Field::Cport, Kind::Num, "client port"),
    ("fd.sip", Field::Sip, Kind::Addr, "server address"),
    ("fd.sport", Field::Sport, Kind::Num, "server port"),
    ("fd.ip", Field::Ip, Kind::Addr, "either address"),
    ("fd.port", Field::Port, Kind::Num, "either port"),
    (
        "fd.net",
        Field::Net,
        Kind::Net,
        "either address, compared with networks",
    ),
    (
        "fd.lnet",
        Field::Lnet,
        Kind::Net,
        "local address, compared with networks",
    ),
    (
        "fd.rnet",
        Field::Rnet,
        Kind::Net,
        "remote address, compared with networks",
    ),
    (
        "fd.cnet",
        Field::Cnet,
        Kind::Net,
        "client address, compared with networks",
    ),
    (
        "fd.snet",
        Field::Snet,
        Kind::Net,
        "server address, compared with networks",
    ),
    (
        "fd.is_local",
        Field::IsLocal,
        Kind::Bool,
        "the remote is this host",
    ),
    (
        "fd.direction",
        Field::Direction,
        Kind::Enum(DIRECTIONS),
        "who initiated",
    ),
    (
        "fd.community_id",
        Field::CommunityId,
        Kind::Str,
        "Community ID v1 (1:...; none for packet and raw sockets)",
    ),
    (
        "fd.rname",
        Field::Rname,
        Kind::Str,
        "the name the process resolved to the remote address (its DNS answers)",
    ),
    (
        "fd.rname_source",
        Field::RnameSource,
        Kind::Enum(RNAME_SOURCES),
        "whose DNS answer named it: dns (its own), shared (another process's), none (connected without resolving)",
    ),
    (
        "fd.sni",
        Field::Sni,
        Kind::Str,
        "server name of the process's TLS or QUIC ClientHello",
    ),
    (
        "fd.alpn",
        Field::Alpn,
        Kind::Str,
        "protocols its ClientHello offered, comma-separated",
    ),
    (
        "flow.bytes",
        Field::Bytes,
        Kind::Bytes,
        "payload bytes sent + received so far",
    ),
    (
        "flow.bytes_sent",
        Field::BytesSent,
        Kind::Bytes,
        "payload bytes sent so far",
    ),
    (
        "flow.bytes_recv",
        Field::BytesRecv,
        Kind::Bytes,
        "payload bytes received so far",
    ),
    (
        "flow.duration",
        Field::Duration,
        Kind::Duration,
        "time since the flow opened (to its close)",
    ),
];

impl Field {
    /// A field and its kind by name.
    pub fn lookup(name: &str) -> Option<(Field, Kind)> {
        FIELDS
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|(_, f, k, _)| (*f, *k))
    }

    /// The field's name in the language.
    pub fn name(self) -> &'static str {
        FIELDS
            .iter()
            .find(|(_, f, ..)| *f == self)
            .map_or("?", |(n, ..)| n)
    }
}

/// The field names closest to a misspelt one.
pub fn suggest(name: &str) -> Option<&'static str> {
    nearest(name, FIELDS.iter().map(|(n, ..)| *n), 3)
}

/// Of `names`, the nearest to `name` by edit distance, if it is within
/// `max` edits (or a third of its length): for "did you mean".
pub fn nearest<'a>(
    name: &str,
    names: impl Iterator<Item = &'a str>,
    max: usize,
) -> Option<&'a str> {
    names
        .map(|n| (distance(name, n), n))
        .filter(|(d, n)| *d <= max.max(n.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A table of every field for `--help`.
pub fn help_table() -> String {
    let mut s = String::new();
    for (name, _, kind, what) in FIELDS {
        let k = match kind {
            Kind::Str => "text",
            Kind::Enum(_) => "word",
            Kind::Num => "number",
            Kind::Bytes => "bytes",
            Kind::Duration => "duration",
            Kind::Addr => "address",
            Kind::Net => "network",
            Kind::Bool => "bool",
        };
        s.push_str(&format!("  {name:<16} {k:<9} {what}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_suggestions_help() {
        for (n, f, ..) in FIELDS {
            assert_eq!(Field::lookup(n).map(|x| x.0), Some(*f));
            assert_eq!(f.name(), *n);
        }
        assert_eq!(suggest("proc.nam"), Some("proc.name"));
        assert_eq!(suggest("usr.name"), Some("user.name"));
        assert_eq!(suggest("fd.rnett"), Some("fd.rnet"));
        assert_eq!(suggest("completely.different"), None);
    }
}
