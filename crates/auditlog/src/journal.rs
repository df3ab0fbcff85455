//! `netwho log --journal` and `--syslog`: records to the system log.
//!
//! * journald's native protocol (`/run/systemd/journal/socket`): one
//!   datagram per record, `MESSAGE` the readable line and every field of the
//!   flow record as `NETWHO_<FIELD>` (`journalctl NETWHO_USER=alice
//!   NETWHO_DPORT=443`); values with newlines use the protocol's
//!   length-prefixed form.
//! * local syslog (`/dev/log`, what rsyslog, syslog-ng and journald
//!   listen on): `<PRI>TIMESTAMP netwho[PID]: LINE`.
//!
//! The message is the log's line: the readable one, the `--format`
//! template's, or (with `--json`) the JSON record.
//!
//! Sends never block: when the log daemon cannot keep up (its socket queue
//! is full) the record is dropped and counted, and status records report it.

use crate::logsink::{Announcer, LogFormat, On};
use netwho_model::FlowEvent;
use netwho_model::record::FlowRecord;
use netwho_sink::status::StatusRecord;
use netwho_sink::{RecordRef, Sink};
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// journald's native socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// The local syslog socket.
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// Which protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// journald's native protocol (fields as `NETWHO_<FIELD>`).
    Journal,
    /// Local syslog.
    Syslog,
}

#[derive(Debug)]
/// The log sent to journald or syslog, one datagram per record.
pub struct JournalSink {
    proto: Protocol,
    sock: UnixDatagram,
    path: PathBuf,
    on: On,
    format: LogFormat,
    pid: u32,
    dropped: u64,
    buf: Vec<u8>,
    line: String,
    announce: Announcer,
}

impl JournalSink {
    /// Connect to the log daemon's socket at `path`.
    pub fn connect(proto: Protocol, path: &Path, on: On, format: LogFormat) -> io::Result<Self> {
        let sock = UnixDatagram::unbound()?;
        sock.connect(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot reach the {} at {}: {e} (is it running? another socket can be \
                     given as --{}=PATH)",
                    match proto {
                        Protocol::Journal => "journal",
                        Protocol::Syslog => "syslog daemon",
                    },
                    path.display(),
                    match proto {
                        Protocol::Journal => "journal",
                        Protocol::Syslog => "syslog",
                    },
                ),
            )
        })?;
        sock.set_nonblocking(true)?;
        Ok(JournalSink {
            proto,
            sock,
            path: path.to_owned(),
            on,
            format,
            pid: std::process::id(),
            dropped: 0,
            buf: Vec::with_capacity(4096),
            line: String::new(),
            announce: Announcer::default(),
        })
    }

    fn send(&mut self) {
        match self.sock.send(&self.buf) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.dropped += 1,
            Err(e) => {
                self.dropped += 1;
                log::debug!("sending to {}: {e}", self.path.display());
            }
        }
    }

    fn record(&mut self, r: &FlowRecord<'_>) {
        self.line.clear();
        self.format.write_line(r, &mut self.line);
        self.buf.clear();
        match self.proto {
            Protocol::Journal => journal_entry(r, &self.line, &mut self.buf),
            Protocol::Syslog => syslog_line(&r.ts, self.pid, &self.line, &mut self.buf),
        }
        self.send();
    }
}

/// One field in journald's native format.
pub fn field(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(key.as_bytes());
    if value.contains('\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

/// A journal entry: MESSAGE, priority, identifier, and every field of the
/// record as `NETWHO_<FIELD>` (arrays joined: the command line as one string,
/// ancestors as `comm(pid)` by commas).
pub fn journal_entry(r: &FlowRecord<'_>, message: &str, out: &mut Vec<u8>) {
    field(out, "MESSAGE", message);
    field(out, "PRIORITY", "6");
    field(out, "SYSLOG_IDENTIFIER", "netwho");
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(r) else {
        return;
    };
    let mut key = String::with_capacity(32);
    for (k, v) in &map {
        key.clear();
        key.push_str("NETWHO_");
        key.extend(k.chars().map(|c| c.to_ascii_uppercase()));
        let value = match (k.as_str(), v) {
            ("cmdline", _) => netwho_sink::fmt::cmdline(&r.cmdline, usize::MAX),
            ("parents", _) => r
                .parents
                .iter()
                .map(|p| format!("{}({})", p.comm, p.pid))
                .collect::<Vec<_>>()
                .join(","),
            (_, serde_json::Value::String(s)) => s.clone(),
            (_, serde_json::Value::Null) => continue,
            (_, other) => other.to_string(),
        };
        field(out, &key, &value);
    }
}

/// `<PRI>TIMESTAMP netwho[PID]: MSG`, facility daemon, severity info, the
/// timestamp as RFC 3339 (which rsyslog, syslog-ng and journald accept).
pub fn syslog_line(ts: &str, pid: u32, msg: &str, out: &mut Vec<u8>) {
    // daemon (3) * 8 + info (6)
    out.extend_from_slice(format!("<30>{ts} netwho[{pid}]: ").as_bytes());
    out.extend_from_slice(msg.as_bytes());
}

impl Sink for JournalSink {
    fn event(&mut self, ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        if self.on.wants(ev) {
            self.record(&rec.get());
        }
    }

    fn final_update(&mut self, _ev: &FlowEvent, rec: &mut RecordRef<'_>) {
        if self.on.wants_final() {
            self.record(&rec.get());
        }
    }

    fn status(&mut self, st: &StatusRecord) {
        // the summary when netwho is ready, when something was lost, at exit
        if !self.announce.due(st) {
            return;
        }
        let loss = st.drops.total();
        self.buf.clear();
        let msg = st.summary();
        match self.proto {
            Protocol::Journal => {
                field(&mut self.buf, "MESSAGE", &msg);
                field(&mut self.buf, "PRIORITY", if loss > 0 { "4" } else { "6" });
                field(&mut self.buf, "SYSLOG_IDENTIFIER", "netwho");
                field(&mut self.buf, "NETWHO_EVENT", "status");
            }
            Protocol::Syslog => syslog_line(&st.ts, self.pid, &msg, &mut self.buf),
        }
        self.send();
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse journald's native format back into (key, value) pairs.
    fn parse(mut b: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let nl = b.iter().position(|c| *c == b'\n').unwrap();
            let line = &b[..nl];
            if let Some(eq) = line.iter().position(|c| *c == b'=') {
                out.push((
                    String::from_utf8(line[..eq].to_vec()).unwrap(),
                    String::from_utf8(line[eq + 1..].to_vec()).unwrap(),
                ));
                b = &b[nl + 1..];
            } else {
                let key = String::from_utf8(line.to_vec()).unwrap();
                let len = u64::from_le_bytes(b[nl + 1..nl + 9].try_into().unwrap()) as usize;
                let v = String::from_utf8(b[nl + 9..nl + 9 + len].to_vec()).unwrap();
                assert_eq!(b[nl + 9 + len], b'\n');
                out.push((key, v));
                b = &b[nl + 10 + len..];
            }
        }
        out
    }

    #[test]
    fn a_journal_entry_has_every_field() {
        let mut r = FlowRecord::example();
        r.comm = "two\nlines".into();
        let mut out = Vec::new();
        journal_entry(&r, "the line", &mut out);
        let f = parse(&out);
        let get = |k: &str| {
            f.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{k} missing"))
        };
        assert_eq!(get("MESSAGE"), "the line");
        assert_eq!(get("SYSLOG_IDENTIFIER"), "netwho");
        assert_eq!(get("NETWHO_PID"), "4242");
        assert_eq!(get("NETWHO_USER"), "alice");
        assert_eq!(get("NETWHO_RPORT"), "443");
        assert_eq!(get("NETWHO_BYTES_RECV"), "1256");
        assert_eq!(get("NETWHO_CMDLINE"), "curl -s https://example.org");
        assert_eq!(get("NETWHO_PARENTS"), "bash(812),systemd(1)");
        assert_eq!(get("NETWHO_COMM"), "two\nlines");
        assert!(f.iter().all(|(k, _)| {
            k.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        }));
    }

    #[test]
    fn records_reach_the_socket_and_a_full_socket_counts_drops() {
        let dir = std::env::temp_dir().join(format!("netwho-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let mut s = JournalSink::connect(
            Protocol::Syslog,
            &path,
            On::Open,
            LogFormat::Text(
                crate::tsformat::TsFormat::default(),
                crate::logsink::TEXT_CMDLINE,
            ),
        )
        .unwrap();
        let r = FlowRecord::example();
        s.record(&r);
        let mut buf = vec![0u8; 65536];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            got.starts_with(&format!("<30>{} netwho[{}]: ", r.ts, std::process::id())),
            "{got}"
        );
        assert!(got.contains("curl -s https://example.org"), "{got}");
        // nobody reads: the queue fills, sends fail fast and are counted
        for _ in 0..10_000 {
            s.record(&r);
        }
        assert!(s.dropped() > 0);
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
        // no daemon: a clear error
        let e = JournalSink::connect(
            Protocol::Journal,
            &dir.join("none"),
            On::Open,
            LogFormat::Json,
        )
        .unwrap_err();
        assert!(e.to_string().contains("--journal=PATH"), "{e}");
    }
}
