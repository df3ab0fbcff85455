//! Command-line interface.

use clap::{Args, Parser, Subcommand};
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
netwho log                              one line per connection, as it opens and closes\n  \
netwho log --json -o /var/log/flows.jsonl   JSON lines for machines\n  \
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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Live per-process table: who sends and receives how much (the default command)
    #[command(
        after_help = "Columns: PID, USER, COMM, sent and received payload rate over the \
last interval, payload totals since netwho started, and FLOWS as open/total. Rows are sorted by \
total bytes. Processes that exited stay listed (with their totals) for a minute."
    )]
    #[command(after_long_help = filter_help())]
    Top(TopArgs),
    /// One record per flow: when it opens, and with final byte counts when it closes
    #[command(
        after_help = "A flow is one (process, socket, remote): a TCP connection, or a UDP \
socket's traffic with one remote. Text lines look like\n\n  \
2026-11-23T10:15:15.123Z open  tcp/ipv4 10.0.0.5:40412 -> 93.184.216.34:443 :: 4242 alice(1000):alice(1000) session-2.scope :: curl -s https://example.org\n  \
2026-11-23T10:15:15.340Z close tcp/ipv4 10.0.0.5:40412 -> 93.184.216.34:443 :: 4242 alice(1000):alice(1000) session-2.scope :: curl -s https://example.org :: sent 79 recv 1256 in 217.021 ms\n\n\
'->' means this host initiated the flow, '<-' that the remote did. With --json each line is a \
flow record (docs/specs/flow-record.md): the first line is a status record with \"ready\":true, \
written once every hook is attached; then \"open\" and \"close\" records; a status record with \
drop counters every 10 s; and on SIGINT/SIGTERM an \"update\" record with the totals of every \
flow still open and a final status record.",
        after_long_help = filter_help()
    )]
    Log(LogArgs),
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
    /// A filter expression, as words (quote values the shell would eat)
    #[arg(
        value_name = "EXPR",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
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
    /// Print plain-text tables (the default until the interactive view exists)
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
    /// Show processes as a tree under their parents, with subtree totals
    #[arg(long)]
    pub tree: bool,
    #[command(flatten)]
    pub select: SelectArgs,
}

impl Default for TopArgs {
    fn default() -> Self {
        TopArgs {
            text: true,
            json: false,
            interval: Duration::from_secs(1),
            count: None,
            limit: 20,
            bits: false,
            tree: false,
            select: SelectArgs::default(),
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct LogArgs {
    /// Write JSON lines (one flow record per line) instead of text
    #[arg(long)]
    pub json: bool,
    /// Append to FILE instead of writing to standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Seconds between status records
    #[arg(long, default_value = "10", value_parser = parse_seconds)]
    pub status_interval: Duration,
    #[command(flatten)]
    pub select: SelectArgs,
}

/// Kernel sensor tuning (rarely needed).
#[derive(Debug, Args, Clone)]
pub struct SensorArgs {
    /// Size of the kernel event ring buffer, in MiB (a power of two)
    #[arg(long, global = true, default_value_t = 8, value_parser = parse_ring_mib)]
    pub ring_mib: u32,
    /// Most flows the kernel tracks at once
    #[arg(long, global = true, default_value_t = 131_072)]
    pub max_flows: u32,
    /// A UDP/ICMP flow with no traffic for this many seconds is closed
    #[arg(long, global = true, default_value = "120", value_parser = parse_seconds)]
    pub udp_idle: Duration,
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
        assert!(matches!(
            c.command,
            Some(Command::Log(LogArgs { json: true, .. }))
        ));
        assert!(Cli::try_parse_from(["netwho", "top", "--text", "--json"]).is_err());
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
