//! Command-line interface.

// (doc comments here are clap's help text: `<FIELD>` is a placeholder for
// people, not HTML)
#![allow(
    rustdoc::invalid_html_tags,
    reason = "doc comments are --help text, where <NAME> is a placeholder"
)]

use clap::{Args, Parser, Subcommand, ValueEnum};
use netwho_report::ReportKind;
pub use netwho_report::request::TimeArg;
use std::path::PathBuf;
use std::time::Duration;

const ABOUT: &str = "Which process, user and service talks to whom, and how much: exactly.\n\n\
netwho attributes every connection and datagram on this host to the process that made it \
(pid, start time, command line, user, parent) with exact payload byte counts, using kernel \
hooks (eBPF). Nothing is missed: a TCP connection that lives 1 ms or a one-shot UDP datagram \
from a process that exits at once is still attributed. It needs root (or CAP_BPF, \
CAP_PERFMON and CAP_NET_ADMIN), a kernel with BTF, and cgroup v2.";

const AFTER: &str = "Examples:\n  \
netwho top --text --interval 2          per-process table every 2 s\n  \
netwho top --json --count 1             one table as JSON, then exit\n  \
netwho log                              one line per new connection or flow\n  \
netwho log --on both                    ... and one when it ends, with its bytes\n  \
netwho log --json --chain -o /var/log/netwho/flows.jsonl --rotate-size 100MiB\n  \
netwho log --verify /var/log/netwho/flows.jsonl*\n  \
netwho log unit = nginx.service and not fd.is_local\n  \
netwho log -f 'proc.cmdline contains \"--token\"'\n\n\
Exit status: 0 on success (also on SIGINT/SIGTERM, after final records), 2 if netwho cannot \
start (privileges, kernel support, bad arguments), 1 if output fails while running.";

#[derive(Debug, Parser)]
#[command(name = "netwho", version, about = ABOUT, after_help = AFTER, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub sensor: SensorArgs,

    /// More diagnostics on stderr (repeat for more)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Seed of every record's community_id (Community ID v1; sites that
    /// run Zeek or Suricata with a seed give theirs, so that the ids match)
    #[arg(long, global = true, default_value_t = 0, value_name = "N")]
    pub community_id_seed: u16,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Live view of who sends and receives how much (the default command): interactive on a terminal, a text table otherwise
    #[command(
        after_help = "On a terminal, an interactive view opens: processes, programs, users, \
units/containers, remotes, connections and server ports (keys 1-7), each row with sent and \
received rates, totals since start (and since a reset, z), open/total flows and a history \
sparkline. Enter drills down, / filters, < > sort, r reverses, space freezes, ? lists every key, \
q quits. With --text (or when standard output is not a terminal): a plain table every interval \
with PID, USER, COMM, rates, totals and FLOWS, the busiest now first as in the view (--sort total: \
the most bytes since start first). Processes that exited stay \
listed (dimmed, with their totals) for --keep."
    )]
    #[command(after_long_help = filter_help())]
    Top(TopArgs),
    /// An audit log: one record per new flow (and/or per ended flow, with its bytes)
    #[command(
        after_help = "A flow is one (process, socket, remote): a TCP connection, or a UDP \
socket's traffic with one remote. With --on both, text lines look like\n\n  \
2026-11-23T10:15:15.123Z open  tcp/ipv4 10.0.0.5:40412 -> 93.184.216.34:443 :: 4242 alice(1000):alice(1000) session-2.scope :: curl -s https://example.org\n  \
2026-11-23T10:15:15.340Z close tcp/ipv4 10.0.0.5:40412 -> 93.184.216.34:443 :: 4242 alice(1000):alice(1000) session-2.scope :: curl -s https://example.org :: sent 79 recv 1256 in 217.021 ms\n\n\
'->' means this host initiated the flow, '<-' that the remote did. With --json each line is a \
flow record (docs/specs/flow-record.md): the first line is a status record with \"ready\":true, \
written once every hook is attached; then \"open\" and \"close\" records; a status record with \
drop counters every 10 s (and within a second after output was lost); and on SIGINT/SIGTERM \
(with --on close or both) an \"update\" record with the totals of every flow still open, and a \
final status record. --help shows the --format placeholders, timestamp conversions and filters.",
        after_long_help = log_help()
    )]
    Log(Box<LogArgs>),
    /// Record flows into a compressed file, to analyse later (report, log -r, top -r)
    #[command(after_help = RECORD_AFTER)]
    Record(Box<RecordArgs>),
    /// Answer questions about a recording: top processes, connections, ports, remotes, users
    #[command(after_help = REPORT_AFTER, after_long_help = report_help())]
    Report(Box<ReportArgs>),
    /// Run in the background: keep months of history, serve the API, metrics and web page, alert on what is new
    #[command(after_help = DAEMON_AFTER)]
    Daemon(Box<DaemonArgs>),
    /// Export flows with their processes to a flow collector: IPFIX, NetFlow v9 or JSON lines
    #[command(after_help = EXPORT_AFTER)]
    Export(Box<ExportArgs>),
    /// Capture the packets of the flows a filter selects into a pcapng file, each with its process
    #[command(after_help = PCAP_AFTER)]
    #[command(after_long_help = filter_help())]
    Pcap(Box<PcapArgs>),
    /// Store the fleet's flow records (from NATS JetStream) in PostgreSQL, for 'report --postgres'
    #[command(after_help = COLLECT_AFTER)]
    Collect(Box<CollectArgs>),
    /// Say whether netwho can run on this machine: privileges, kernel, hooks, what is degraded
    #[command(after_help = DOCTOR_AFTER)]
    Doctor(DoctorArgs),
    /// Print a shell completion script: commands, options, report names and filter fields
    #[command(after_help = COMPLETIONS_AFTER)]
    Completions(CompletionsArgs),
    /// Write the manual pages into a directory (used to build the package)
    #[command(hide = true)]
    Man(ManArgs),
}

const DOCTOR_AFTER: &str = "netwho doctor checks, on this machine and as this user, what netwho needs: the capabilities, the kernel's BTF, cgroup v2, kernel lockdown, the BPF JIT and the kernel's configuration where it can be read; then it loads netwho's kernel programs and attaches every hook for a moment (nothing is counted; they are detached before it exits) and says which hooks work, which sensor path would be used and what would be degraded, with the kernel's reason. It changes nothing on the machine.\n\nExit status: 0 if netwho can run here (perhaps degraded), 1 if it cannot (each failed check says what to do), 2 on bad arguments.\n\nExamples:\n  sudo netwho doctor\n  sudo netwho doctor --json | jq .hooks";

/// `netwho doctor`.
#[derive(Debug, Args, Clone, Default)]
pub struct DoctorArgs {
    /// Print the findings as one JSON object
    #[arg(long)]
    pub json: bool,
    /// Only the checks that need no privileges: do not load the kernel programs
    #[arg(long)]
    pub no_load: bool,
}

const COMPLETIONS_AFTER: &str = "Install the script where the shell looks for completions (the Debian package does this):\n  netwho completions bash > /usr/share/bash-completion/completions/netwho\n  netwho completions zsh  > /usr/share/zsh/vendor-completions/_netwho\n  netwho completions fish > /usr/share/fish/vendor_completions.d/netwho.fish\n\nor, for the current shell only:\n  source <(netwho completions bash)\n\nBesides commands and options, the scripts complete report names, option values and the filter fields (proc.name, fd.rport, ...) after -f and among the trailing filter words.";

/// `netwho completions`.
#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `netwho man`.
#[derive(Debug, Args, Clone)]
pub struct ManArgs {
    /// The directory to write the pages into (man1/, man5/ and man7/ below it are created)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

const COLLECT_AFTER: &str = "Every daemon started with --fleet nats://HOST:PORT (or [fleet] nats in its configuration) publishes its flow records to the JetStream stream NETWHO_FLOWS (subject netwho.flows.HOST), spooling them on disk while the server is away. 'netwho collect' reads the stream as a durable consumer and stores every record in the PostgreSQL table netwho_flows (created if missing), one row per record with its host; the processes are JSON columns. A message is acknowledged only once its records are committed, and rows are keyed by host, message id and line: nothing is lost when NATS, PostgreSQL or the collector stops, and nothing is stored twice. Collectors started with the same --consumer share the work. 'netwho report REPORT --postgres CONN' answers every report over the whole fleet (--host to pick hosts). docs/specs/fleet.md describes the records and the table.\n\nExamples:\n  netwho collect --nats nats://10.0.0.2:4222 --postgres 'host=db1 user=netwho dbname=netwho'\n  netwho collect --nats 127.0.0.1:4222 --postgres postgresql://netwho@localhost/netwho --drain\n  netwho report by-user --postgres 'host=db1 user=netwho dbname=netwho' --since yesterday\n  netwho report top-procs --postgres 'host=db1 dbname=netwho' --host web1 --host web2";

#[derive(Debug, Args, Clone)]
pub struct CollectArgs {
    /// The NATS JetStream server the daemons publish to
    #[arg(long, value_name = "nats://HOST:PORT")]
    pub nats: String,
    /// The PostgreSQL database: a connection string ('host=H port=P user=U dbname=D') or URL (postgresql://U@H:P/D)
    #[arg(long, value_name = "CONN")]
    pub postgres: String,
    /// The durable consumer's name (collectors with the same name share the records)
    #[arg(long, value_name = "NAME", default_value = "netwho-collect")]
    pub consumer: String,
    /// Exit once every published record is stored (else run until SIGINT/SIGTERM)
    #[arg(long)]
    pub drain: bool,
}

const EXPORT_AFTER: &str = "Each flow record is one connection (or one UDP socket's traffic with one remote): the 5-tuple, wire bytes and packets each way (IN_ from SRC to DST, OUT_ back), start and end times, the end reason, and the process at each end as nProbe's process plugin exports it (ntop's enterprise 35632: pid, name, user, father pid and name, memory, CPU load, page faults, iowait), plus netwho's own elements (uid, unit, container, command line, exe hash, attribution, exact payload bytes) under --pen. SRC is the side that initiated the flow. When both ends are processes on this host (loopback, or two network namespaces), one record carries both, as SRC_ and DST_ process. A record is made when a flow ends (after --join-wait for its other end), every --active-timeout while it lasts, and after --idle-timeout without traffic; at exit every open flow gets a last record (end reason 4, forced end). docs/specs/ipfix.md lists every element with its numbers.\n\nOver UDP the template is sent first and every --template-refresh; over TCP (tcp://HOST:PORT, RFC 7011) once per connection, and messages wait (up to 16 MiB) while the collector is away, then go out in order. Records that cannot be delivered are counted in the status (output_dropped) and logged.\n\nOpenTelemetry (--otlp http://HOST:4318): each flow record (open, every --active-timeout while it lasts, close; --otlp-events) is one OTLP log record from the process's side, with the semantic conventions' attributes (process.pid, process.executable.path, process.owner, network.peer.address, ...) and netwho.* for the exact payload bytes, flow id, direction and community id; and every --otlp-metrics-every the payload bytes per executable, user and unit (process.network.io, at most 200 series) as cumulative sums. Requests are protobuf, gzip-compressed, POSTed to URL/v1/logs and URL/v1/metrics; a busy or absent collector's requests wait (16 MiB) and are retried with backoff. docs/specs/otlp.md lists every attribute.\n\nExamples:\n  netwho export --ipfix 192.0.2.10:4739\n  netwho export --ipfix tcp://collector.example:4739 --template '%IPV4_SRC_ADDR %IPV4_DST_ADDR %L4_DST_PORT %IN_BYTES %SRC_PROC_NAME %SRC_PROC_USER_NAME'\n  netwho export --netflow-v9 127.0.0.1:2055 proc.name = nginx\n  netwho export --jsonl - --active-timeout 60s | jq .\n  netwho export --otlp http://127.0.0.1:4318 --otlp-events close";

#[derive(Debug, Args, Clone, Default)]
pub struct ExportArgs {
    /// Send IPFIX to HOST:PORT (UDP), udp://HOST:PORT or tcp://HOST:PORT (repeat for more collectors)
    #[arg(long, value_name = "HOST:PORT")]
    pub ipfix: Vec<String>,
    /// Send NetFlow v9 to HOST:PORT (UDP; repeat for more collectors)
    #[arg(long = "netflow-v9", value_name = "HOST:PORT")]
    pub netflow_v9: Vec<String>,
    /// Write one JSON object per flow record and line to FILE (appended), or - for standard output
    #[arg(long, value_name = "FILE")]
    pub jsonl: Vec<PathBuf>,
    /// Send OpenTelemetry logs and metrics to an OTLP/HTTP collector at URL (http://HOST:4318; /v1/logs and /v1/metrics are appended)
    #[arg(long, value_name = "URL")]
    pub otlp: Vec<String>,
    /// Flow events sent to --otlp as log records: open, update (every --active-timeout), close, joined by commas; or none
    #[arg(long, value_name = "LIST", default_value = "open,update,close")]
    pub otlp_events: String,
    /// How often --otlp gets the traffic metrics (per executable, user and unit); off for none
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub otlp_metrics_every: String,
    /// The elements to export, nProbe style ('%IPV4_SRC_ADDR %IN_BYTES ...'); default: all of them
    #[arg(long, short = 'T', value_name = "TEMPLATE")]
    pub template: Option<String>,
    /// The enterprise number of netwho's own elements
    #[arg(long, value_name = "N", default_value_t = netwho_export::ie::DEFAULT_NETWHO_PEN)]
    pub pen: u32,
    /// The IPFIX observation domain / NetFlow v9 source id
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub domain: u32,
    /// A flow that lasts is exported at least this often
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_duration)]
    pub active_timeout: Duration,
    /// A flow quiet this long has its traffic exported (its next traffic starts a new record)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// How long an ended flow's record waits for the other end of a local connection
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub join_wait: Duration,
    /// The template is sent again this often over UDP
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub template_refresh: Duration,
    /// Export netwho's own flows too (its datagrams to the collectors, for one: left out by default)
    #[arg(long)]
    pub include_self: bool,
    /// Largest message in bytes (keep UDP datagrams under the path MTU)
    #[arg(long, value_name = "BYTES", default_value_t = 1400, value_parser = clap::value_parser!(u16).range(512..))]
    pub max_message: u16,
    #[command(flatten)]
    pub select: SelectArgs,
}

const DAEMON_AFTER: &str = "The daemon watches every flow, like the other commands, and keeps a history database (SQLite): each flow with its bytes per minute for keep_raw, and bytes per process, user, unit and remote per minute, hour and day for keep_minutes, keep_hours and keep_days. 'netwho report REPORT --db PATH' answers every report from it, over any range. A batch is committed every commit_every; a daemon killed at any moment loses at most the batch it had not committed, and a restarted one goes on counting the flows it knew.\n\nIt serves the live flows and processes, live updates, the reports and Prometheus metrics (/metrics) over HTTP on the Unix socket api.socket (/run/netwho/api.sock): anyone may connect; root and members of api.group (netwho) see everything, other users only their own processes' traffic. With api.listen (e.g. 127.0.0.1:9797) it also listens on TCP, where requests need the token in api.token_file; the web page is there. 'netwho top --connect' and 'netwho report --connect' use the API without privileges. docs/specs/api.md describes it.\n\nWith [alerts] enabled = true it learns what each program talks to (for alerts.learn, 7d, from its first start) and then alerts once for each new destination, new program and changed executable: to alerts.log, the journal, alerts.webhook, the API (/api/v1/alerts), the web page and /metrics. alerts.allow takes filter expressions whose flows never alert; --alerts-audit only logs. docs/specs/alerts.md describes it.\n\nThe configuration file is TOML; every key is optional. --print-config shows the defaults (or the file with them filled in).\n\nExamples:\n  netwho daemon --print-config > /etc/netwho/netwho.toml\n  netwho daemon                               with /etc/netwho/netwho.toml, if it exists\n  netwho daemon --db /var/tmp/h.db            a database elsewhere\n  netwho report by-unit --db /var/lib/netwho/history.db --since yesterday\n  netwho top --connect                        the live view, from the daemon, as any user\n  curl --unix-socket /run/netwho/api.sock http://localhost/api/v1/processes";

#[derive(Debug, Args, Clone, Default)]
pub struct DaemonArgs {
    /// The configuration file [default: /etc/netwho/netwho.toml, if it exists]
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The history database (overrides history.db)
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// How often counters are read and committed (overrides history.commit_every)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub commit_every: Option<Duration>,
    /// Publish flow records to the fleet's NATS JetStream server (overrides fleet.nats)
    #[arg(long, value_name = "nats://HOST:PORT")]
    pub fleet: Option<String>,
    /// Alerts only log what would alert (sets alerts.audit): to try allow rules
    #[arg(long)]
    pub alerts_audit: bool,
    /// Print the configuration in effect (defaults filled in) and exit
    #[arg(long)]
    pub print_config: bool,
    #[command(flatten)]
    pub select: SelectArgs,
}

const RECORD_AFTER: &str = "A recording holds every flow's open, its counters every --resolution while it lives, and its close, with the process, user and unit it belongs to, plus netwho's status records (drops, degradations): everything the live commands show. It is zstd-compressed in self-contained frames (about one per second): a recorder killed at any moment leaves a file that reads up to its last frame. The format is docs/specs/recording.md.\n\nExamples:\n  netwho record -w /var/tmp/act1.nwr                       until Ctrl-C\n  netwho record -w act1.nwr --duration 1h --rotate 512MiB  FILE, then FILE.0, FILE.1, ...\n  netwho record -w web.nwr unit = nginx.service            only what the filter passes\n  netwho report top-procs -r act1.nwr\n  netwho log -r act1.nwr --on both --json";

const REPORT_AFTER: &str = "Reports (sysdig chisel in brackets):\n  top-procs    processes by bytes sent+received [topprocs_net]\n  top-conns    connections by bytes [topconns]\n  top-ports    server ports by bytes: ports served here, and remote servers' ports [topports_server]\n  top-remotes  remote addresses by bytes, with their ports and processes\n  top-names    remotes by the name their processes resolved (else TLS server name)\n  by-user      bytes per user (--exclude-local: Internet traffic only; --interval: per interval)\n  by-unit      bytes per systemd unit (else container, else cgroup)\n  bytes        bytes of every process, and the total [iobytes_net]\n  timeline     bytes per interval of one process (--pid N): a text chart, or CSV to plot [the per-PID chart]\n  spy          every flow of one endpoint (--ip A or --port N), in time order [spy_ip, spy_port]\n  rare         destinations (protocol, remote, port of outbound flows) least used first, with the programs and users that used them (--below N: used fewer than N times) [Velociraptor's stacking]\n\nBytes are payload bytes (what send() and recv() returned). SENT is from this host's process to the remote. Reports read every segment of a rotated recording (FILE.0, FILE.1, ..., FILE). --help shows the filter fields.\n\nExamples:\n  netwho report top-procs -r act1.nwr\n  netwho report top-conns -r act1.nwr proc.name = httpd\n  netwho report by-user -r act1.nwr --exclude-local --interval 1h --csv\n  netwho report timeline -r act1.nwr --pid 4242 --csv > chart.csv\n  netwho report spy -r act1.nwr --ip 203.0.113.7 --since 2026-11-23T10:00:00Z\n  netwho report rare --db /var/lib/netwho/history.db --since +0s --below 3";

/// FILTERS and local networks, for `netwho report --help`.
pub fn report_help() -> String {
    format!(
        "LOCAL NETWORKS\n\n--exclude-local counts only traffic whose remote address is outside these networks (IPv4-mapped IPv6 addresses count as IPv4): {}. --local-nets LIST replaces the list; --local-nets +LIST adds to it.\n\nTIMES\n\n--since and --until take an RFC 3339 time (2026-11-23T10:00:00Z, or with an offset), or +DURATION from the start of the recording (+90s, +1h). Bytes are counted when they were recorded (at the recording's --resolution).\n\n{}",
        netwho_report::local::DEFAULT_LOCAL.join(", "),
        filter_help()
    )
}

/// The filter every command takes.
#[derive(Debug, Args, Clone, Default)]
pub struct SelectArgs {
    /// Only flows matching EXPR (see FILTERS below); the expression may also
    /// be given as trailing arguments
    #[arg(short, long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// proc.pid = N also matches N's descendants, including those forked later
    #[arg(long)]
    pub follow_children: bool,
    /// A filter expression, as words (quote values the shell would eat;
    /// options may come before, among or after the words; words after --
    /// may start with a hyphen)
    #[arg(value_name = "EXPR")]
    pub expr: Vec<String>,
}

impl SelectArgs {
    /// The expression, from -f or the trailing words (not both).
    pub fn expression(&self) -> Result<Option<String>, String> {
        match (&self.filter, self.expr.is_empty()) {
            (Some(_), false) => {
                Err("give the filter either with -f/--filter or as trailing words, not both".into())
            }
            (Some(f), true) => Ok(Some(f.clone())),
            (None, false) => Ok(Some(self.expr.join(" "))),
            (None, true) => Ok(None),
        }
    }
}

/// FILTERS, for the long help of every command that takes one.
pub fn filter_help() -> String {
    format!(
        "FILTERS\n\n\
A filter selects flows, sysdig style: `field op value`, joined with and, or, not and \
parentheses. Operators: = != < <= > >= contains startswith endswith in (a, b) =~ (regex). \
Address fields take addresses or networks (fd.rnet = 10.0.0.0/8); byte fields take units \
(flow.bytes > 10MiB); durations too (flow.duration > 250ms). Quote values with spaces or \
( ) , = ! < >. A bad filter exits with status 2 and a caret under the offending column.\n\n\
The part of a filter the kernel can check (uid, gid, unit or cgroup, pid, protocol, port, \
joined by 'and' at the top) is applied in the kernel: other traffic is never counted and \
costs almost nothing. Status records show it as \"scope\".\n\n\
Fields:\n{}\n\
Examples:\n  \
user.name in (alice, bob) and fd.proto = tcp\n  \
proc.name =~ '^(curl|wget)$' and fd.rport = 443\n  \
unit = nginx.service and not fd.is_local\n  \
proc.pid = 4242 --follow-children\n  \
fd.rnet != 10.0.0.0/8 and flow.bytes > 1MiB",
        netwho_query::fields::help_table()
    )
}

#[derive(Debug, Args, Clone)]
pub struct TopArgs {
    /// Print plain-text tables instead of the interactive view
    #[arg(long, conflicts_with = "json")]
    pub text: bool,
    /// Print one JSON object per interval
    #[arg(long)]
    pub json: bool,
    /// Seconds between tables
    #[arg(short, long, default_value = "1", value_parser = parse_seconds)]
    pub interval: Duration,
    /// Exit after this many tables
    #[arg(short = 'n', long)]
    pub count: Option<u64>,
    /// Rows per text table
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Show rates in bit/s instead of bytes/s
    #[arg(long)]
    pub bits: bool,
    /// Show processes as a tree under their parents, with subtree totals (--text tables only)
    #[arg(long, conflicts_with = "json")]
    pub tree: bool,
    /// Order of the rows: rate (the busiest now first) or total (the most bytes since start); the view's < and > change it too
    #[arg(long, value_enum, default_value = "rate", value_name = "ORDER")]
    pub sort: TopSort,
    /// How long processes without open flows and closed connections stay listed (dimmed)
    #[arg(long, default_value = "60", value_parser = parse_seconds, value_name = "SECONDS")]
    pub keep: Duration,
    /// Do not look up names of remote addresses (reverse DNS, /etc/hosts)
    #[arg(long)]
    pub no_dns: bool,
    /// No colours in the interactive view (also when NO_COLOR is set)
    #[arg(long)]
    pub no_color: bool,
    /// Let the mouse scroll and select in the interactive view (the terminal's own selection then needs Shift)
    #[arg(long)]
    pub mouse: bool,
    /// Replay a recording instead of watching live (with its rotated segments); in the interactive view space pauses, + - change the speed, [ ] seek 10 s ({ } 60 s); with --text on a terminal: space, + -, arrows
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Option<PathBuf>,
    /// Replay speed: recorded seconds per second (0: as fast as possible)
    #[arg(long, default_value_t = 1.0, requires = "read", value_parser = parse_speed)]
    pub speed: f64,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub select: SelectArgs,
}

/// Talking to a running daemon instead of watching the kernel.
#[derive(Debug, Args, Clone, Default)]
pub struct ConnectArgs {
    /// Ask the running daemon (no privileges needed): its Unix socket [default: /run/netwho/api.sock], or --connect=HOST:PORT with --token-file; a user outside the daemon's group sees their own processes' traffic only
    #[arg(
        long,
        value_name = "SOCKET|HOST:PORT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = netwho_api::DEFAULT_SOCKET,
        conflicts_with = "read"
    )]
    pub connect: Option<String>,
    /// The daemon's API token (for --connect=HOST:PORT)
    #[arg(long, value_name = "FILE", requires = "connect")]
    pub token_file: Option<PathBuf>,
}

impl ConnectArgs {
    /// Where to connect: a path is a socket, HOST:PORT is TCP (its token
    /// from --token-file, else $NETWHO_TOKEN).
    pub fn target(&self) -> Result<Option<netwho_api::client::Target>, String> {
        use netwho_api::client::Target;
        let Some(c) = &self.connect else {
            return Ok(None);
        };
        if c.contains('/') {
            return Ok(Some(Target::Unix(PathBuf::from(c))));
        }
        if !c.contains(':') {
            return Err(format!(
                "--connect={c} is neither a socket path (with a /) nor HOST:PORT"
            ));
        }
        let token = match &self.token_file {
            Some(p) => std::fs::read_to_string(p)
                .map(|t| t.trim().to_string())
                .map_err(|e| format!("reading the token {}: {e}", p.display()))?,
            None => std::env::var("NETWHO_TOKEN").map_err(|_| {
                format!("--connect={c} is TCP: give the daemon's token with --token-file FILE (or NETWHO_TOKEN)")
            })?,
        };
        Ok(Some(Target::Tcp {
            addr: c.clone(),
            token,
        }))
    }
}

impl Default for TopArgs {
    fn default() -> Self {
        TopArgs {
            text: false,
            json: false,
            interval: Duration::from_secs(1),
            count: None,
            limit: 20,
            bits: false,
            tree: false,
            sort: TopSort::Rate,
            keep: Duration::from_secs(60),
            no_dns: false,
            no_color: false,
            mouse: false,
            read: None,
            speed: 1.0,
            connect: ConnectArgs::default(),
            select: SelectArgs::default(),
        }
    }
}

/// FORMAT and FILTERS, for `netwho log --help`.
pub fn log_help() -> String {
    format!(
        "FORMAT\n\n\
--format TEMPLATE writes one line per record from a template (conntrack-logger style): \
{{name}} is a field of the record, {{name:12}} / {{name:<12}} / {{name:>12}} pad it, {{{{ and }}}} \
are braces, \\t is a tab. A missing value prints as -; control characters in values are \
escaped, so a record is always one line. Placeholders:\n\n{}\n\n\
conntrack-logger's own format works as it is:\n  --format '{}' --format-ts %s\n\n\
--format-ts FMT (strftime) formats every timestamp placeholder and the text line's time; UTC \
unless --local-time. Conversions: {}.\n\n\
CHAIN\n\n\
--chain makes the JSON log tamper-evident: every record ends with \"prev_hash\", the SHA-256 \
of the line before it (HMAC-SHA-256 with --chain-key FILE, so that a forger also needs the key). \
Each file starts with a \"chain\" record naming the host, the algorithm, the key's id and the \
segment; a rotated file's chain continues in the next; a restart (after a crash too) appends a \
\"chain\" record with reason \"restart\"; a clean stop writes \"chain_end\". \
netwho log --verify FILE... checks the chain across rotated files (any order, .zst or not) and \
names the first line where it breaks. With --chain-key every segment must be keyed with that key. \
Records the writer could not keep up with leave a \"gap\" record in the chain; a log whose start \
is missing (earlier files removed, or cut off at a restart) is incomplete unless \
--missing-start-ok says retention removed it. Exit 0 intact, 1 broken, 2 unreadable, \
3 unbroken but incomplete.\n\n{}",
        netwho_auditlog::template::help(),
        netwho_auditlog::template::CONNTRACK_LOGGER,
        netwho_auditlog::tsformat::HELP,
        filter_help()
    )
}

/// When `netwho log` writes a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnArg {
    /// When a flow starts
    Open,
    /// When it ends, with final counters and duration
    Close,
    /// Both
    Both,
}

/// `-p`: a protocol shorthand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProtoArg {
    Tcp,
    Udp,
    /// ICMP and ICMPv6
    Icmp,
}

#[derive(Debug, Args, Clone)]
pub struct LogArgs {
    /// Write JSON lines (one flow record per line) instead of text
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Write each record as a line from TEMPLATE ({ts} {proto} {src}:{sport} ...; see --help)
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// strftime format of timestamps in text lines and templates (%s, %F %T.%3N, ...)
    #[arg(long, value_name = "FMT")]
    pub format_ts: Option<String>,
    /// Timestamps of text lines and templates in local time (TZ), not UTC
    #[arg(long)]
    pub local_time: bool,
    /// Text lines show whole command lines (by default one is cut at 120 characters, marked with …)
    #[arg(long)]
    pub full_cmdline: bool,
    /// Which point of a flow's life makes a record
    #[arg(long, value_enum, default_value = "open", value_name = "WHEN")]
    pub on: OnArg,
    /// Only these protocols (repeat or separate by commas); adds to the filter
    #[arg(
        short = 'p',
        long = "proto",
        value_enum,
        value_delimiter = ',',
        value_name = "PROTO"
    )]
    pub protos: Vec<ProtoArg>,
    /// Append to FILE instead of writing to standard output (mode 0640)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Rotate FILE when it reaches SIZE (e.g. 100MiB); the old one becomes FILE.000001, ...
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "output")]
    pub rotate_size: Option<u64>,
    /// Rotate FILE at every multiple of DURATION, UTC (e.g. 1h, 1d)
    #[arg(long, value_name = "DURATION", value_parser = parse_period, requires = "output")]
    pub rotate_every: Option<Duration>,
    /// Keep only the newest N rotated files (default: keep all)
    #[arg(long, value_name = "N", requires = "output")]
    pub rotate_keep: Option<usize>,
    /// Leave rotated files uncompressed (default: zstd, FILE.000001.zst)
    #[arg(long, requires = "output")]
    pub no_compress: bool,
    /// Tamper evidence: each JSON record carries the hash of the one before (implies --json)
    #[arg(long, conflicts_with = "format")]
    pub chain: bool,
    /// HMAC key for the chain (implies --chain): the file's bytes are the key
    #[arg(long, value_name = "FILE", conflicts_with = "format")]
    pub chain_key: Option<PathBuf>,
    /// Also send each record to the journal, with every field as NETWHO_<FIELD>
    #[arg(long, value_name = "SOCKET", num_args = 0..=1, require_equals = true,
          default_missing_value = netwho_auditlog::journal::JOURNAL_SOCKET)]
    pub journal: Option<PathBuf>,
    /// Also send each record's line to the local syslog daemon
    #[arg(long, value_name = "SOCKET", num_args = 0..=1, require_equals = true,
          default_missing_value = netwho_auditlog::journal::SYSLOG_SOCKET)]
    pub syslog: Option<PathBuf>,
    /// Check the hash chain of FILE... (a log and its rotated files) and exit
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["output", "format", "json", "chain"])]
    pub verify: Vec<PathBuf>,
    /// With --verify: a log whose earlier files were removed by retention
    /// (--rotate-keep) is not an incomplete one
    #[arg(long, requires = "verify")]
    pub missing_start_ok: bool,
    /// Seconds between status records
    #[arg(long, default_value = "10", value_parser = parse_seconds)]
    pub status_interval: Duration,
    /// Also write everything logged into a recording (see netwho record)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["verify", "read"])]
    pub record: Option<PathBuf>,
    /// Print a recording as the log would have (as fast as it reads)
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        conflicts_with = "verify"
    )]
    pub read: Option<PathBuf>,
    /// With -r: only records from TIME on (RFC 3339, or +DURATION from the start)
    #[arg(long, value_name = "TIME", requires = "read", value_parser = parse_time)]
    pub since: Option<TimeArg>,
    /// With -r: only records before TIME
    #[arg(long, value_name = "TIME", requires = "read", value_parser = parse_time)]
    pub until: Option<TimeArg>,
    #[command(flatten)]
    pub select: SelectArgs,
}

#[derive(Debug, Args, Clone)]
pub struct RecordArgs {
    /// The recording to write (refuses to overwrite one unless --overwrite)
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: PathBuf,
    /// Stop after this long (e.g. 90s, 1h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many flows
    #[arg(short = 'n', long, value_name = "N")]
    pub count: Option<u64>,
    /// Start a new file when this one reaches SIZE; the full one becomes FILE.0, FILE.1, ...
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub rotate: Option<u64>,
    /// Seconds between counter readings: the time resolution of the bytes recorded
    #[arg(long, default_value = "1", value_parser = parse_seconds)]
    pub resolution: Duration,
    /// Keep the first SNAPLEN bytes of payload of each flow and direction (1..16384; off by default: payload is private)
    #[arg(short = 's', long, value_name = "SNAPLEN", value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub snaplen: Option<u32>,
    /// Replace FILE (and its segments) if it exists
    #[arg(long)]
    pub overwrite: bool,
    /// No progress lines on stderr
    #[arg(short, long)]
    pub quiet: bool,
    /// Write no summary (FILE.sum) at the end; reports then decode the whole recording
    #[arg(long)]
    pub no_summary: bool,
    /// Seconds between status records (and progress lines)
    #[arg(long, default_value = "10", value_parser = parse_seconds)]
    pub status_interval: Duration,
    #[command(flatten)]
    pub select: SelectArgs,
}

const PCAP_AFTER: &str = "Packets of the flows the filter selects, both directions, IPv4 and IPv6, TCP, UDP and ICMP, from their IP header (link type RAW), as the socket's cgroup hooks see them: a GSO or GRO packet is one packet of its whole length. They are taken in the kernel path that already knows each socket's owner, only for sockets in the filter's kernel scope (the others cost nothing more). Each packet carries its process: the pcapng process id option (epb_processid_threadid), a comment 'netwho pid=N comm=C exe=E user=U uid=N unit=S flow=ID' (spaces, '=', '\\' and control characters in a value written \\xNN) and netwho's custom option with the same fields in binary (docs/specs/pcapng.md). One interface per (interface, network namespace). Packets the kernel or netwho could not keep are counted, logged, and written as the first interface's drop count (isb_osdrop). The file is readable by root only.\n\nExamples:\n  netwho pcap -w curl.pcapng proc.name = curl\n  netwho pcap -w web.pcapng -s 128 unit = nginx.service\n  tshark -r curl.pcapng -Y 'frame.comment contains \"comm=curl\"'\n  tshark -r web.pcapng -q -z follow,tcp,ascii,0";

/// `netwho pcap`.
#[derive(Debug, Args, Clone)]
pub struct PcapArgs {
    /// The pcapng file to write (refuses to overwrite one unless --overwrite)
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: PathBuf,
    /// Bytes kept of each packet, from its IP header (1..16384)
    #[arg(short = 's', long, value_name = "SNAPLEN", default_value_t = 16384, value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub snaplen: u32,
    /// Stop after this long (e.g. 90s, 1h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Replace FILE if it exists
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub select: SelectArgs,
}

#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Which report (see below)
    #[arg(value_name = "REPORT", value_parser = report_kind())]
    pub report: ReportKind,
    /// The recording (with its rotated segments); repeat for several
    #[arg(short = 'r', long = "read", value_name = "FILE", conflicts_with = "db")]
    pub read: Vec<PathBuf>,
    /// The daemon's history database instead of a recording (see 'netwho daemon')
    #[arg(long, value_name = "PATH", conflicts_with = "connect")]
    pub db: Option<PathBuf>,
    /// The fleet's PostgreSQL database (see 'netwho collect'): the report over every host
    #[arg(long, value_name = "CONN", conflicts_with_all = ["connect", "db", "read"])]
    pub postgres: Option<String>,
    /// With --postgres: only this host's records (repeat for more)
    #[arg(long = "host", value_name = "HOST", requires = "postgres")]
    pub hosts: Vec<String>,
    /// Only bytes from TIME on (RFC 3339, +DURATION from the start, -DURATION before now, today, yesterday)
    #[arg(long, value_name = "TIME", value_parser = parse_time, allow_hyphen_values = true)]
    pub since: Option<TimeArg>,
    /// Only bytes before TIME
    #[arg(long, value_name = "TIME", value_parser = parse_time, allow_hyphen_values = true)]
    pub until: Option<TimeArg>,
    /// One JSON document (exact numbers)
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV with a header line (exact numbers)
    #[arg(long)]
    pub csv: bool,
    /// Rows (per interval); top-* default to 10, the others to all
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Rows per interval (e.g. 1h, 10m), aligned to UTC
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// Only traffic with non-local remotes (Internet accounting; see LOCAL NETWORKS)
    #[arg(long)]
    pub exclude_local: bool,
    /// The networks --exclude-local leaves out (comma-separated; +LIST adds to the default)
    #[arg(long, value_name = "LIST", requires = "exclude_local")]
    pub local_nets: Option<String>,
    /// timeline: the process id
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// spy: every flow to or from this address
    #[arg(long, value_name = "ADDR", conflicts_with = "port")]
    pub ip: Option<std::net::IpAddr>,
    /// spy: every flow on this port (local or remote)
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// rare: only destinations used fewer than N times
    #[arg(long, value_name = "N")]
    pub below: Option<u64>,
    /// spy: payload as printable text (other bytes as '.') instead of hex
    #[arg(short = 'A', long)]
    pub printable: bool,
    /// With -r: threads that decode the recording (default: one per CPU, at most 8; each holds its own groups)
    #[arg(long, value_name = "N", requires = "read", value_parser = clap::value_parser!(u16).range(1..=8))]
    pub threads: Option<u16>,
    /// With -r: decode the recording even where its summary (FILE.sum) answers the report
    #[arg(long, requires = "read")]
    pub no_summary: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub select: SelectArgs,
}

impl ReportArgs {
    /// How the report is printed (--json, --csv, else text).
    pub fn format(&self) -> netwho_report::request::Format {
        use netwho_report::request::Format;
        if self.json {
            Format::Json
        } else if self.csv {
            Format::Csv
        } else {
            Format::Text
        }
    }

    /// The report's options, as the pipeline (and the daemon's API) checks
    /// them (the Community ID seed is the command's, set by the caller).
    pub fn request(&self) -> netwho_report::request::ReportRequest {
        netwho_report::request::ReportRequest {
            limit: self.limit,
            interval_ns: self.interval.map(netwho_model::nanos),
            exclude_local: self.exclude_local,
            local_nets: self.local_nets.clone(),
            pid: self.pid,
            ip: self.ip,
            port: self.port,
            community_seed: 0,
            below: self.below,
        }
    }
}

/// The report names, listed in `--help` and in errors.
fn report_kind() -> impl clap::builder::TypedValueParser<Value = ReportKind> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(ReportKind::ALL.map(ReportKind::name))
        .try_map(|s| ReportKind::from_name(&s).ok_or("not a report"))
}

fn parse_time(s: &str) -> Result<TimeArg, String> {
    TimeArg::parse(s)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    match netwho_query::parse_duration_ns(s) {
        Some(n) if n > 0 => Ok(Duration::from_nanos(n)),
        _ => Err(format!(
            "'{s}' is not a duration: seconds, or a number with a unit (ms, s, m, h, d)"
        )),
    }
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1e6).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a speed: a factor like 1, 10 or 0.5 (0: as fast as possible)"
        )),
    }
}

/// Subcommands that never start a sensor: the sensor's options (global,
/// so that they may come anywhere on a command line that does) are hidden
/// from their help.
const NO_SENSOR: [&str; 4] = ["report", "completions", "man", "collect"];

/// Commands that show no Community ID (the seed means nothing there).
const NO_RECORDS: [&str; 6] = ["completions", "man", "collect", "doctor", "record", "pcap"];

/// The command line as netwho parses and documents it: [`Cli`] with the
/// sensor's options hidden where they mean nothing (and the Community ID
/// seed where no record is written).
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    let mut root = Cli::command();
    let ids: Vec<clap::Id> = SensorArgs::augment_args(clap::Command::new("x"))
        .get_arguments()
        .map(|a| a.get_id().clone())
        .collect();
    // a subcommand that has an argument already is not given the global
    // one: it gets the same argument, hidden
    let hidden = |keep: &dyn Fn(&clap::Id) -> bool| -> Vec<clap::Arg> {
        root.get_arguments()
            .filter(|a| keep(a.get_id()))
            .map(|a| a.clone().hide(true))
            .collect()
    };
    let sensor = hidden(&|id| ids.contains(id));
    let seed = hidden(&|id| id.as_str() == "community_id_seed");
    for name in NO_SENSOR.iter().chain(NO_RECORDS.iter()) {
        let (no_sensor, no_records) = (NO_SENSOR.contains(name), NO_RECORDS.contains(name));
        root = root.mut_subcommand(*name, |mut c| {
            let seed = seed.iter().filter(|_| no_records);
            for a in seed.chain(sensor.iter().filter(|_| no_sensor)) {
                if c.get_arguments().all(|x| x.get_id() != a.get_id()) {
                    c = c.arg(a.clone());
                }
            }
            c
        });
    }
    root
}

/// Kernel sensor tuning (rarely needed).
#[derive(Debug, Args, Clone)]
pub struct SensorArgs {
    /// Size of the kernel event ring buffer, in MiB (a power of two;
    /// default: 64 bytes per --max-flows, 8 to 256 MiB)
    #[arg(long, global = true, value_parser = parse_ring_mib)]
    pub ring_mib: Option<u32>,
    /// Most flows the kernel tracks at once
    #[arg(long, global = true, default_value_t = 131_072)]
    pub max_flows: u32,
    /// Most of those one user's processes may hold (0: a quarter of
    /// --max-flows); their further flows are still logged, their bytes
    /// counted per socket
    #[arg(long, global = true, default_value_t = 0, value_name = "N")]
    pub flows_per_uid: u32,
    /// A UDP/ICMP flow with no traffic for this many seconds is closed
    #[arg(long, global = true, default_value = "120", value_parser = parse_seconds)]
    pub udp_idle: Duration,
    /// Keep at most this many bytes of a command line (a longer one keeps
    /// its full length and SHA-256 in a last element), so that no process
    /// can make every record as large as its arguments
    #[arg(long, global = true, default_value = "4KiB", value_name = "BYTES", value_parser = parse_cmdline_cap)]
    pub max_cmdline: usize,
    /// Which kernel hooks count payload: the sock_send_length/sock_recv_length
    /// tracepoints (Linux 6.5+), fexit on the inet socket operations (older
    /// kernels), or auto: the tracepoints when the kernel's BTF has them
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "PATH"
    )]
    pub payload_hooks: PayloadHooks,
    /// Where the events come from: ebpf (the kernel programs: exact, every
    /// connection), sock-diag (reduced: every socket looked at each
    /// --look-interval, for kernels that refuse the programs), or auto:
    /// ebpf, and sock-diag if this kernel cannot run the programs
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "SENSOR"
    )]
    pub sensor: SensorKind,
    /// sock-diag sensor: seconds between two looks at every socket (a
    /// connection shorter than this may be missed; each one is counted)
    #[arg(long, global = true, default_value = "0.25", value_parser = parse_seconds, value_name = "SECONDS")]
    pub look_interval: Duration,
    /// Name each remote as its process knew it: rname from the DNS answers
    /// the process received (port 53 only), sni and alpn from the TLS or
    /// QUIC ClientHello it sent (a socket's first 2 KiB only). all, dns,
    /// tls (TLS and QUIC), or off
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "all",
        value_name = "WHAT"
    )]
    pub names: NamesArg,
    /// A network whose addresses are not marked "connected without
    /// resolving" (rname_source none) when nothing named them; repeat for
    /// more. Default: the private networks (10/8, 172.16/12, 192.168/16,
    /// 100.64/10, fc00::/7); "none": mark every address
    #[arg(long = "names-local", global = true, value_name = "CIDR", value_parser = parse_net)]
    pub names_local: Vec<Option<(std::net::IpAddr, u8)>>,
}

/// `--names`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum NamesArg {
    /// DNS answers, TLS and QUIC ClientHellos
    #[default]
    All,
    /// DNS answers only (rname)
    Dns,
    /// TLS and QUIC ClientHellos only (sni, alpn)
    Tls,
    /// Nothing is read for names
    Off,
}

impl SensorArgs {
    /// What the kernel reads for names (`netwho_bpf::abi::NAMES_*`).
    pub fn names_mask(&self) -> u32 {
        use netwho_bpf::abi::{NAMES_DNS, NAMES_QUIC, NAMES_TLS};
        match self.names {
            NamesArg::All => NAMES_DNS | NAMES_TLS | NAMES_QUIC,
            NamesArg::Dns => NAMES_DNS,
            NamesArg::Tls => NAMES_TLS | NAMES_QUIC,
            NamesArg::Off => 0,
        }
    }

    /// The flow table's names settings, if names are on.
    pub fn names_config(&self) -> Option<netwho_model::names::NamesConfig> {
        if self.names == NamesArg::Off {
            return None;
        }
        let mut cfg = netwho_model::names::NamesConfig::default();
        if !self.names_local.is_empty() {
            cfg.local = self.names_local.iter().flatten().copied().collect();
        }
        Some(cfg)
    }
}

/// `ADDR/LEN` (or a bare address), or `none`.
fn parse_net(s: &str) -> Result<Option<(std::net::IpAddr, u8)>, String> {
    if s == "none" {
        return Ok(None);
    }
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: std::net::IpAddr = a.parse().map_err(|_| {
        format!("'{s}' is not a network: ADDRESS/LENGTH, like 10.0.0.0/8 or fd00::/8")
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("'{s}': the prefix length must be 0 to {max}"))?,
        None => max,
    };
    Ok(Some((addr, len)))
}

/// `top --sort`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum TopSort {
    /// Bytes per second over the last interval, then totals
    #[default]
    Rate,
    /// Bytes since start
    Total,
}

/// `--sensor`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SensorKind {
    /// ebpf, or sock-diag where the kernel refuses the programs
    #[default]
    Auto,
    /// The kernel programs (exact)
    Ebpf,
    /// sock_diag looks, destroy notices and the proc connector (reduced)
    SockDiag,
}

/// `--payload-hooks`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum PayloadHooks {
    /// The tracepoints if the kernel has them, else fexit
    #[default]
    Auto,
    /// tp_btf/sock_send_length and sock_recv_length
    Tracepoints,
    /// fexit on inet_sendmsg, inet6_sendmsg, inet_recvmsg, inet6_recvmsg
    Fexit,
}

impl PayloadHooks {
    /// The sensor's name for it.
    pub fn path(self) -> netwho_sensor::ebpf::PayloadPath {
        use netwho_sensor::ebpf::PayloadPath;
        match self {
            PayloadHooks::Auto => PayloadPath::Auto,
            PayloadHooks::Tracepoints => PayloadPath::Tracepoints,
            PayloadHooks::Fexit => PayloadPath::Fexit,
        }
    }
}

fn parse_cmdline_cap(s: &str) -> Result<usize, String> {
    match netwho_query::parse_bytes(s) {
        Some(n) if (256..=1 << 20).contains(&n) => Ok(n as usize),
        Some(_) => Err("between 256 bytes and 1MiB".into()),
        None => Err(format!("'{s}' is not a size (like 4KiB)")),
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    match netwho_query::parse_bytes(s) {
        Some(n) if n >= 4096 => Ok(n),
        Some(_) => Err("a file must be allowed at least 4KiB".into()),
        None => Err(format!(
            "'{s}' is not a size: a number with an optional unit (K, M, G, KiB, MiB, GiB)"
        )),
    }
}

fn parse_period(s: &str) -> Result<Duration, String> {
    match netwho_query::parse_duration_ns(s) {
        Some(n) if n >= 1_000_000_000 => Ok(Duration::from_nanos(n)),
        Some(_) => Err("rotate at most every second".into()),
        None => Err(format!(
            "'{s}' is not a duration: seconds, or a number with a unit (s, m, h, d)"
        )),
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(0.05..=86_400.0).contains(&v) {
        return Err(format!("{v} s is out of range (0.05 to 86400)"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn parse_ring_mib(s: &str) -> Result<u32, String> {
    let v: u32 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number"))?;
    if !v.is_power_of_two() || !(1..=1024).contains(&v) {
        return Err(format!("{v} must be a power of two between 1 and 1024"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_interface_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The sensor's options are not in the help of commands that start no
    /// sensor, and still parse anywhere (as the global options they are).
    #[test]
    fn sensor_options_are_hidden_where_they_mean_nothing() {
        use clap::FromArgMatches as _;
        let mut root = command();
        root.build();
        let help = |name: &str, root: &mut clap::Command| {
            root.find_subcommand_mut(name)
                .unwrap()
                .render_long_help()
                .to_string()
        };
        assert!(!help("report", &mut root).contains("--ring-mib"));
        assert!(help("log", &mut root).contains("--ring-mib"));
        command().debug_assert();
        let parse = |v: &[&str]| {
            Cli::from_arg_matches(&command().try_get_matches_from(v).unwrap()).unwrap()
        };
        let c = parse(&[
            "netwho",
            "report",
            "top-procs",
            "-r",
            "x.nwr",
            "--max-flows",
            "77",
        ]);
        assert_eq!(c.sensor.max_flows, 77);
        let c = parse(&["netwho", "log", "--max-flows", "66"]);
        assert_eq!(c.sensor.max_flows, 66);
        let c = parse(&["netwho", "--max-flows", "55", "log"]);
        assert_eq!(c.sensor.max_flows, 55);
    }

    #[test]
    fn durations_and_sizes_are_checked() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("abc").unwrap_err().contains("not a number"));
        assert_eq!(parse_ring_mib("16"), Ok(16));
        assert!(parse_ring_mib("3").is_err());
    }

    #[test]
    fn bare_netwho_and_log_parse() {
        let c = Cli::try_parse_from(["netwho"]).unwrap();
        assert!(c.command.is_none());
        let c = Cli::try_parse_from(["netwho", "log", "--json", "-o", "/tmp/x"]).unwrap();
        assert!(matches!(c.command, Some(Command::Log(l)) if l.json));
        assert!(Cli::try_parse_from(["netwho", "top", "--text", "--json"]).is_err());
    }

    #[test]
    fn log_options_parse_and_conflict() {
        let log = |args: &[&str]| {
            let mut v = vec!["netwho", "log"];
            v.extend_from_slice(args);
            Cli::try_parse_from(v).map(|c| match c.command {
                Some(Command::Log(l)) => l,
                _ => panic!("not log"),
            })
        };
        let l = log(&["-p", "tcp,icmp", "-p", "udp", "--on", "both"]).unwrap();
        assert_eq!(l.protos, vec![ProtoArg::Tcp, ProtoArg::Icmp, ProtoArg::Udp]);
        assert_eq!(l.on, OnArg::Both);
        let l = log(&[
            "-o",
            "/x",
            "--rotate-size",
            "100MiB",
            "--rotate-every",
            "1d",
        ])
        .unwrap();
        assert_eq!(l.rotate_size, Some(100 << 20));
        assert_eq!(l.rotate_every, Some(Duration::from_secs(86_400)));
        let l = log(&["--journal", "--syslog=/tmp/s"]).unwrap();
        assert_eq!(
            l.journal.as_deref(),
            Some(std::path::Path::new("/run/systemd/journal/socket"))
        );
        assert_eq!(l.syslog.as_deref(), Some(std::path::Path::new("/tmp/s")));
        let l = log(&["--verify", "a", "b.zst"]).unwrap();
        assert_eq!(l.verify.len(), 2);
        // rotation needs a file; a template and JSON (or a chain) exclude each other
        assert!(log(&["--rotate-size", "1M"]).is_err());
        assert!(log(&["--json", "--format", "{pid}"]).is_err());
        assert!(log(&["--chain", "--format", "{pid}"]).is_err());
        assert!(log(&["--verify", "a", "-o", "b"]).is_err());
        assert!(log(&["-o", "x", "--rotate-every", "0.5"]).is_err());
    }

    #[test]
    fn record_and_report_options_parse_and_conflict() {
        let c = Cli::try_parse_from([
            "netwho",
            "record",
            "-w",
            "a.nwr",
            "--duration",
            "1h",
            "--rotate",
            "64MiB",
            "unit",
            "=",
            "x.service",
        ])
        .unwrap();
        let Some(Command::Record(r)) = c.command else {
            panic!("record")
        };
        assert_eq!(r.duration, Some(Duration::from_secs(3600)));
        assert_eq!(r.rotate, Some(64 << 20));
        assert_eq!(r.select.expression(), Ok(Some("unit = x.service".into())));
        assert!(
            Cli::try_parse_from(["netwho", "record"]).is_err(),
            "-w is required"
        );
        let c = Cli::try_parse_from([
            "netwho",
            "report",
            "by-user",
            "-r",
            "a.nwr",
            "--exclude-local",
            "--local-nets",
            "+203.0.113.0/24",
            "--since",
            "+90s",
            "--until",
            "2026-11-23T10:00:00Z",
            "--csv",
        ])
        .unwrap();
        let Some(Command::Report(r)) = c.command else {
            panic!("report")
        };
        assert_eq!(r.report, ReportKind::ByUser);
        assert_eq!(r.since, Some(TimeArg::FromStart(90_000_000_000)));
        assert!(matches!(r.until, Some(TimeArg::At(t)) if t > 0));
        // --connect alone takes no value: the next word stays the report
        let c = Cli::try_parse_from(["netwho", "report", "--connect", "by-user"]).unwrap();
        let Some(Command::Report(r)) = c.command else {
            panic!("report")
        };
        assert_eq!(r.report, ReportKind::ByUser);
        assert_eq!(
            r.connect.target(),
            Ok(Some(netwho_api::client::Target::Unix(
                netwho_api::DEFAULT_SOCKET.into()
            )))
        );
        let c = Cli::try_parse_from(["netwho", "top", "--connect=/tmp/s.sock"]).unwrap();
        let Some(Command::Top(t)) = c.command else {
            panic!("top")
        };
        assert_eq!(
            t.connect.target(),
            Ok(Some(netwho_api::client::Target::Unix("/tmp/s.sock".into())))
        );
        let c = Cli::try_parse_from(["netwho", "top", "--connect=sock"]).unwrap();
        let Some(Command::Top(t)) = c.command else {
            panic!("top")
        };
        assert!(t.connect.target().is_err());
        let bad = |args: &[&str]| {
            let mut v = vec!["netwho", "report"];
            v.extend_from_slice(args);
            Cli::try_parse_from(v).is_err()
        };
        // (a report with no source parses; the command names the four
        // sources: golden error-report-no-source)
        assert!(!bad(&["top-procs"]));
        assert!(bad(&["bogus", "-r", "x"]));
        assert!(bad(&["by-user", "-r", "x", "--local-nets", "10.0.0.0/8"]));
        assert!(bad(&["top-procs", "-r", "x", "--json", "--csv"]));
        assert!(bad(&["spy", "-r", "x", "--ip", "1.2.3.4", "--port", "53"]));
        assert!(bad(&["top-procs", "-r", "x", "--since", "next week"]));
        assert!(bad(&["top-procs", "-r", "x", "--db", "h.db"]));
        // replay options need a recording
        assert!(Cli::try_parse_from(["netwho", "top", "--speed", "2"]).is_err());
        assert!(Cli::try_parse_from(["netwho", "log", "--since", "+1s"]).is_err());
        assert!(Cli::try_parse_from(["netwho", "top", "-r", "x", "--speed", "-1"]).is_err());
        assert!(Cli::try_parse_from(["netwho", "log", "-r", "x", "--record", "y"]).is_err());
    }

    /// How a user writes options: attached values, options among and
    /// after the filter words, `--` before words that start with '-'.
    #[test]
    fn options_parse_as_clap_users_expect_around_filter_words() {
        let top = |args: &[&str]| {
            let mut v = vec!["netwho", "top"];
            v.extend_from_slice(args);
            match Cli::try_parse_from(v).map(|c| c.command) {
                Ok(Some(Command::Top(t))) => Ok(t),
                Ok(_) => Err("not top".to_string()),
                Err(e) => Err(e.to_string()),
            }
        };
        for args in [
            &["--text", "-n1"][..],
            &["-n1", "--text"],
            &["-n", "1", "--text"],
            &["--count=1", "--text"],
            &["--text", "proc.name", "=", "curl", "-n1"],
            &["proc.name", "=", "curl", "--text", "-n1"],
            &["--text", "-n1", "--", "proc.name", "=", "curl"],
        ] {
            let t = top(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(t.text, "{args:?}");
            assert_eq!(t.count, Some(1), "{args:?}");
        }
        let t = top(&["-i0.5", "--text"]).unwrap();
        assert_eq!(t.interval, Duration::from_millis(500));
        let t = top(&["--text", "proc.name", "=", "curl", "-n1"]).unwrap();
        assert_eq!(t.select.expression(), Ok(Some("proc.name = curl".into())));
        // after --, words that start with '-' are filter words
        let t = top(&["--text", "--", "proc.cmdline", "contains", "-x"]).unwrap();
        assert_eq!(
            t.select.expression(),
            Ok(Some("proc.cmdline contains -x".into()))
        );
        // an option netwho does not have is an error, not a filter word
        let e = top(&["proc.name", "=", "x", "--no-such"]).unwrap_err();
        assert!(e.contains("--no-such"), "{e}");

        let log = |args: &[&str]| {
            let mut v = vec!["netwho", "log"];
            v.extend_from_slice(args);
            match Cli::try_parse_from(v).map(|c| c.command) {
                Ok(Some(Command::Log(l))) => l,
                other => panic!("{args:?}: {other:?}"),
            }
        };
        let l = log(&["-o/tmp/x.log", "--json"]);
        assert_eq!(
            l.output.as_deref(),
            Some(std::path::Path::new("/tmp/x.log"))
        );
        assert!(l.json);
        let l = log(&["unit", "=", "a.service", "--on", "both", "-p", "tcp"]);
        assert_eq!(l.select.expression(), Ok(Some("unit = a.service".into())));
        let r = match Cli::try_parse_from(["netwho", "report", "top-procs", "-rfile.nwr"])
            .map(|c| c.command)
        {
            Ok(Some(Command::Report(r))) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(r.read, [PathBuf::from("file.nwr")]);
    }

    #[test]
    fn filters_come_as_an_option_or_as_words() {
        let c = Cli::try_parse_from([
            "netwho",
            "log",
            "proc.name",
            "=",
            "curl",
            "and",
            "not",
            "fd.is_local",
        ])
        .unwrap();
        let Some(Command::Log(l)) = c.command else {
            panic!("log")
        };
        assert_eq!(
            l.select.expression(),
            Ok(Some("proc.name = curl and not fd.is_local".into()))
        );
        let c = Cli::try_parse_from(["netwho", "top", "--text", "-f", "user.uid = 0", "--tree"])
            .unwrap();
        let Some(Command::Top(t)) = c.command else {
            panic!("top")
        };
        assert!(t.tree);
        assert_eq!(t.select.expression(), Ok(Some("user.uid = 0".into())));
        let c = Cli::try_parse_from(["netwho", "log", "-f", "a = 1", "b", "=", "2"]).unwrap();
        let Some(Command::Log(l)) = c.command else {
            panic!("log")
        };
        assert!(l.select.expression().is_err());
    }
}
