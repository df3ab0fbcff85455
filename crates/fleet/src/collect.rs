//! `netwho collect`: a durable JetStream consumer that stores every
//! host's records in PostgreSQL. A message is acknowledged only after its
//! records are committed; if the collector, NATS or PostgreSQL stops in
//! between, the message comes again and the table's key drops the repeat.

use crate::pg::{self, Stored};
use crate::{FleetError, HOST_HEADER, SUBJECT_PREFIX};
use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;
use netwho_export::fleet::{FleetProc, FleetRecord};
use netwho_export::net::Complaints;
use netwho_model::text::{visible, visible_cut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
/// What `netwho collect` reads from and writes to.
pub struct CollectConfig {
    /// `nats://HOST:PORT`.
    pub nats: String,
    /// A libpq connection string or URL.
    pub postgres: String,
    /// The durable consumer's name (collectors sharing it share the work).
    pub consumer: String,
    /// Exit once nothing is pending (otherwise run until stopped).
    pub drain: bool,
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CollectStats {
    /// Messages fetched from JetStream.
    pub messages: u64,
    /// Records in them.
    pub records: u64,
    /// Records new to the database (the rest were there already).
    pub stored: u64,
    /// Lines that were not a fleet record (logged, not stored).
    pub rejected: u64,
    /// Messages PostgreSQL refused for good, kept in netwho_dead_letters.
    pub dead: u64,
}

/// Messages fetched at once.
const FETCH: usize = 256;
const RETRY: Duration = Duration::from_secs(1);
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Runs until `stop` (or, with `drain`, until nothing is pending).
pub fn collect(cfg: &CollectConfig, stop: &AtomicBool) -> Result<CollectStats, FleetError> {
    crate::runtime()?.block_on(run(cfg, stop))
}

/// The records of one message.
pub fn parse(host: &str, msg_id: &str, payload: &[u8], rejected: &mut u64) -> Vec<Stored> {
    let mut out = Vec::new();
    for (i, line) in payload.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let why = match serde_json::from_slice::<FleetRecord>(line) {
            Ok(mut rec) => match refused(&mut rec) {
                None => {
                    out.push(Stored {
                        host: host.to_string(),
                        msg_id: msg_id.to_string(),
                        line: i32::try_from(i).unwrap_or(i32::MAX),
                        rec,
                    });
                    continue;
                }
                Some(why) => why.to_string(),
            },
            Err(e) => e.to_string(),
        };
        *rejected += 1;
        // (the error can quote the line: whoever published chose it)
        log::warn!(
            "collect: host {}, message {}, line {}: not a fleet record ({}); skipped",
            visible(host),
            visible(msg_id),
            i + 1,
            visible_cut(&why, 200)
        );
    }
    out
}

/// Why a line that parsed is still not stored: what PostgreSQL would
/// refuse in it, which would send the whole message (its good records
/// too) to the dead letters, or a field not as netwho writes it. (Mutable
/// only to reach the text fields through `FleetProc::texts_mut`.)
fn refused(rec: &mut FleetRecord) -> Option<&'static str> {
    if !rec.community_id.is_empty() && !netwho_model::community::is_well_formed(&rec.community_id) {
        return Some("community_id is not `1:` and 28 base64 characters");
    }
    let nul = |p: &mut Option<FleetProc>| {
        p.as_mut()
            .is_some_and(|p| p.texts_mut().iter().any(|s| s.contains('\0')))
    };
    if nul(&mut rec.src_proc) || nul(&mut rec.dst_proc) {
        return Some("a process field holds a NUL character");
    }
    None
}

async fn connect_nats(cfg: &CollectConfig, stop: &AtomicBool) -> Option<async_nats::Client> {
    let mut complaints = Complaints::new(format!("collect: NATS {}", cfg.nats), "");
    loop {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let opts = async_nats::ConnectOptions::new()
            .name("netwho collect")
            .connection_timeout(Duration::from_secs(3))
            .max_reconnects(None);
        match opts.connect(&cfg.nats).await {
            Ok(c) => return Some(c),
            Err(e) => complaints.failed(&format_args!("{e}; retrying")),
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn consumer(
    js: &jetstream::Context,
    name: &str,
) -> Result<jetstream::consumer::Consumer<pull::Config>, String> {
    let stream = js
        .get_or_create_stream(crate::stream_config())
        .await
        .map_err(|e| format!("stream {}: {e}", crate::STREAM))?;
    stream
        .get_or_create_consumer(
            name,
            pull::Config {
                durable_name: Some(name.to_string()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 10_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("consumer {name}: {e}"))
}

/// Where a message came from: its headers, else its subject and stream
/// sequence.
fn origin(m: &jetstream::Message) -> (String, String) {
    let header = |k: &str| {
        m.headers
            .as_ref()
            .and_then(|h| h.get(k))
            .map(|v| v.as_str().to_string())
    };
    let host = header(HOST_HEADER).unwrap_or_else(|| {
        m.subject
            .strip_prefix(SUBJECT_PREFIX)
            .map_or("-", |s| s.trim_start_matches('.'))
            .to_string()
    });
    let id = header("Nats-Msg-Id").unwrap_or_else(|| match m.info() {
        Ok(i) => format!("seq-{}", i.stream_sequence),
        Err(_) => "-".to_string(),
    });
    // whoever can publish chose these: what a text column takes, bounded
    let clean = |s: String| -> String {
        s.chars()
            .map(|c| if c == '\0' { '\u{fffd}' } else { c })
            .take(255)
            .collect()
    };
    (clean(host), clean(id))
}

async fn run(cfg: &CollectConfig, stop: &AtomicBool) -> Result<CollectStats, FleetError> {
    let mut db = pg::connect(&cfg.postgres).await?;
    db.batch_execute(pg::SCHEMA).await?;
    let mut stats = CollectStats::default();
    let Some(client) = connect_nats(cfg, stop).await else {
        return Ok(stats);
    };
    let js = jetstream::new(client);
    let mut nats_trouble = Complaints::new(format!("collect: NATS {}", cfg.nats), "");
    let mut pg_trouble = Complaints::new("collect: PostgreSQL".to_string(), "");
    let mut cons = None;
    let mut progress = tokio::time::Instant::now();
    let mut reported = stats;
    log::info!(
        "collect: consuming stream {} as {} into PostgreSQL",
        crate::STREAM,
        cfg.consumer
    );
    while !stop.load(Ordering::Relaxed) {
        if progress.elapsed() >= PROGRESS_EVERY && stats != reported {
            log::info!(
                "collect: {} records stored ({} repeats dropped) from {} messages",
                stats.stored,
                stats.records - stats.stored,
                stats.messages
            );
            (progress, reported) = (tokio::time::Instant::now(), stats);
        }
        let c = match &mut cons {
            Some(c) => c,
            None => match consumer(&js, &cfg.consumer).await {
                Ok(c) => cons.insert(c),
                Err(e) => {
                    nats_trouble.failed(&e);
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            },
        };
        let fetched = c
            .batch()
            .max_messages(FETCH)
            .expires(Duration::from_secs(1))
            .messages()
            .await;
        let mut msgs = Vec::new();
        match fetched {
            Ok(mut batch) => {
                while let Some(m) = batch.next().await {
                    match m {
                        Ok(m) => msgs.push(m),
                        Err(e) => {
                            nats_trouble.failed(&e);
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                nats_trouble.failed(&e);
                cons = None;
                tokio::time::sleep(RETRY).await;
                continue;
            }
        }
        if msgs.is_empty() {
            if cfg.drain {
                match c.info().await {
                    Ok(i) if i.num_pending == 0 && i.num_ack_pending == 0 => break,
                    Ok(_) => {}
                    Err(e) => nats_trouble.failed(&e),
                }
            }
            continue;
        }
        nats_trouble.recovered("consuming again");
        let mut rows = Vec::new();
        let mut per_msg = Vec::new();
        for m in &msgs {
            let (host, id) = origin(m);
            let r = parse(&host, &id, &m.payload, &mut stats.rejected);
            per_msg.push((host, id, r.len()));
            rows.extend(r);
        }
        // stored before acknowledged: retried until PostgreSQL takes them;
        // a message it refuses for good is kept aside and acknowledged, so
        // that one hostile message never holds the stream
        let stored = loop {
            let r = match pg::insert(&mut db, &rows).await {
                Err(e) if pg::is_permanent(&e) => {
                    one_by_one(&mut db, &msgs, &per_msg, &rows, &mut stats).await
                }
                r => r,
            };
            match r {
                Ok(n) => break n,
                Err(e) => {
                    pg_trouble.failed(&format_args!("{e}; the messages wait in NATS"));
                    if stop.load(Ordering::Relaxed) {
                        return Ok(stats);
                    }
                    tokio::time::sleep(RETRY).await;
                    if db.is_closed() {
                        match pg::connect(&cfg.postgres).await {
                            Ok(new) => db = new,
                            Err(e) => pg_trouble.failed(&e),
                        }
                    }
                }
            }
        };
        pg_trouble.recovered("storing again");
        for m in &msgs {
            if let Err(e) = m.ack().await {
                // it comes again; the key drops the repeat
                nats_trouble.failed(&format_args!("acknowledging: {e}"));
            }
        }
        stats.messages += msgs.len() as u64;
        stats.records += rows.len() as u64;
        stats.stored += stored;
    }
    Ok(stats)
}

/// The fetched messages stored one at a time: those PostgreSQL refuses
/// for good go to `netwho_dead_letters` (counted). A passing failure of
/// the server is returned, and the whole fetch retried.
async fn one_by_one(
    db: &mut tokio_postgres::Client,
    msgs: &[jetstream::Message],
    per_msg: &[(String, String, usize)],
    rows: &[Stored],
    stats: &mut CollectStats,
) -> Result<u64, FleetError> {
    let mut stored = 0;
    let mut at = 0;
    for (m, (host, id, n)) in msgs.iter().zip(per_msg) {
        let mine = rows.get(at..at + n).unwrap_or(&[]);
        at += n;
        match pg::insert(db, mine).await {
            Ok(k) => stored += k,
            Err(e) if pg::is_permanent(&e) => {
                log::warn!(
                    "collect: host {}, message {}: PostgreSQL refuses it ({}); kept in netwho_dead_letters",
                    visible(host),
                    visible(id),
                    visible_cut(&e.to_string(), 200)
                );
                pg::dead_letter(db, host, id, &m.payload, &e.to_string()).await?;
                stats.dead += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_line_is_skipped_and_counted_the_rest_kept_with_their_lines() {
        let good = r#"{"start_ms":1,"end_ms":2,"end_reason":3,"protocol":6,"src":"10.231.31.1","src_port":40000,"dst":"10.231.31.2","dst_port":80,"direction":1,"octets":10,"packets":1,"rev_octets":20,"rev_packets":2,"payload":5,"rev_payload":6,"src_proc":{"pid":7,"name":"curl"}}"#;
        let payload = format!("{good}\nnot json\n{good}\n");
        let mut rejected = 0;
        let rows = parse("h1", "abc-1", payload.as_bytes(), &mut rejected);
        assert_eq!(rejected, 1);
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(rows[0].rec.src_proc.as_ref().map(|p| p.pid), Some(7));
        assert!(rows[0].rec.dst_proc.is_none());
        assert_eq!(
            (rows[1].host.as_str(), rows[1].msg_id.as_str()),
            ("h1", "abc-1")
        );
    }

    /// A publisher chose every byte: a record PostgreSQL would refuse (a
    /// NUL) or one with a forged Community ID is one rejected line, not a
    /// message of good records sent to the dead letters.
    #[test]
    fn hostile_fields_reject_their_line_only() {
        let rec = |cid: &str, name: &str| {
            serde_json::json!({
                "start_ms": 1, "end_ms": 2, "end_reason": 3, "protocol": 6,
                "src": "10.231.31.1", "src_port": 40000, "dst": "10.231.31.2", "dst_port": 80,
                "direction": 1, "octets": 10, "packets": 1, "rev_octets": 20, "rev_packets": 2,
                "payload": 5, "rev_payload": 6, "community_id": cid,
                "src_proc": {"pid": 7, "name": name, "cmdline": format!("{name} -x")},
                "dst_proc": {"pid": 8, "name": "srv", "sni": if name.is_empty() { "a\0b" } else { "ok" }},
            })
            .to_string()
        };
        let good_id = "1:LQU9qZlK+B5F3KDmev6m5PMibrg=";
        let long = "A".repeat(1 << 20);
        let lines = [
            rec(good_id, "curl"),
            rec("", "wget"),
            rec("1:short=", "curl"),
            rec(&format!("1:{long}"), "curl"),
            rec("1:LQU9qZlK+B5F3KDmev6m5PMibr\0=", "curl"),
            rec(good_id, "cu\0rl"),
            rec(good_id, ""),
            rec(good_id, "\u{1b}[31mred\nfake: line"),
        ];
        let payload = lines.join("\n");
        let mut rejected = 0;
        let rows = parse("h\u{1b}[2J", "m\n1", payload.as_bytes(), &mut rejected);
        assert_eq!(rejected, 5);
        assert_eq!(
            rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![0, 1, 7],
            "the well-formed lines are kept (escapes are data, stored as sent)"
        );
        assert_eq!(rows[0].rec.community_id, good_id);
        assert_eq!(rows[1].rec.community_id, "");
        let mut mutated = FleetRecord {
            community_id: "2:LQU9qZlK+B5F3KDmev6m5PMibrg=".into(),
            ..rows[0].rec.clone()
        };
        assert!(refused(&mut mutated).is_some());
        assert!(refused(&mut rows[2].rec.clone()).is_none());
    }
}
