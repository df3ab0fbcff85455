//! The fleet's store in PostgreSQL: one table of flow records, one row
//! per record, the host as a column, each local end's process as JSON.
//! Rows are keyed by (host, msg_id, line): a batch stored twice (NATS
//! redelivered it, or a daemon sent it again) is stored once.

use crate::FleetError;
use netwho_export::fleet::FleetRecord;
use std::net::IpAddr;
use tokio_postgres::{Client, NoTls};

/// The schema; `netwho collect` creates it if missing.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS netwho_flows (
    host        text     NOT NULL,
    msg_id      text     NOT NULL,
    line        integer  NOT NULL,
    start_ms    bigint   NOT NULL,
    end_ms      bigint   NOT NULL,
    end_reason  smallint NOT NULL,
    protocol    smallint NOT NULL,
    src         inet     NOT NULL,
    src_port    integer  NOT NULL,
    dst         inet     NOT NULL,
    dst_port    integer  NOT NULL,
    direction   smallint NOT NULL,
    octets      bigint   NOT NULL,
    packets     bigint   NOT NULL,
    rev_octets  bigint   NOT NULL,
    rev_packets bigint   NOT NULL,
    payload     bigint   NOT NULL,
    rev_payload bigint   NOT NULL,
    src_proc    jsonb,
    dst_proc    jsonb,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, msg_id, line)
);
-- (since 0.2: a table an older collector made gets the column)
ALTER TABLE netwho_flows ADD COLUMN IF NOT EXISTS community_id text;
CREATE INDEX IF NOT EXISTS netwho_flows_community_id ON netwho_flows (community_id);
CREATE INDEX IF NOT EXISTS netwho_flows_end ON netwho_flows (end_ms);
CREATE INDEX IF NOT EXISTS netwho_flows_host_end ON netwho_flows (host, end_ms);
CREATE TABLE IF NOT EXISTS netwho_dead_letters (
    host        text     NOT NULL,
    msg_id      text     NOT NULL,
    payload     bytea    NOT NULL,
    error       text     NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, msg_id)
);
";

/// Whether PostgreSQL refused for good (the data, not the server: a NUL
/// in `jsonb`, a value out of range): retrying would refuse it forever.
pub fn is_permanent(e: &FleetError) -> bool {
    match e {
        FleetError::Postgres(e) => e.code().is_some_and(|c| {
            let c = c.code();
            c.starts_with("22") || (c.starts_with("23") && c != "23505")
        }),
        _ => false,
    }
}

/// Keeps a message PostgreSQL refused, as it came, with why.
pub async fn dead_letter(
    client: &Client,
    host: &str,
    msg_id: &str,
    payload: &[u8],
    why: &str,
) -> Result<(), FleetError> {
    client
        .execute(
            "INSERT INTO netwho_dead_letters (host, msg_id, payload, error) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            &[&host, &msg_id, &payload, &why],
        )
        .await?;
    Ok(())
}

/// Connects (the connection's task runs on the current runtime).
pub async fn connect(conn: &str) -> Result<Client, FleetError> {
    let (client, connection) = tokio_postgres::connect(conn, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            log::warn!("PostgreSQL connection: {e}");
        }
    });
    Ok(client)
}

/// The database and server of a connection string, without secrets (for
/// messages and report headers).
pub fn describe(conn: &str) -> String {
    match conn.parse::<tokio_postgres::Config>() {
        Ok(c) => {
            let host = c
                .get_hosts()
                .first()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_else(|| "localhost".into());
            let port = c.get_ports().first().copied().unwrap_or(5432);
            format!(
                "{} on {host}:{port}",
                c.get_dbname().or(c.get_user()).unwrap_or("postgres")
            )
        }
        Err(_) => "PostgreSQL".into(),
    }
}

/// A record and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The daemon that sent it.
    pub host: String,
    /// The message it came in (its JetStream id).
    pub msg_id: String,
    /// Its line in the message.
    pub line: i32,
    /// The record.
    pub rec: FleetRecord,
}

fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const INSERT: &str = "
INSERT INTO netwho_flows (host, msg_id, line, start_ms, end_ms, end_reason, protocol,
    src, src_port, dst, dst_port, direction, octets, packets, rev_octets, rev_packets,
    payload, rev_payload, src_proc, dst_proc, community_id)
SELECT h, m, l, s, e, r, p, sa, sp, da, dp, d, o, k, ro, rk, pl, rpl, sj::jsonb, dj::jsonb, ci
FROM unnest($1::text[], $2::text[], $3::int4[], $4::int8[], $5::int8[], $6::int2[],
    $7::int2[], $8::inet[], $9::int4[], $10::inet[], $11::int4[], $12::int2[],
    $13::int8[], $14::int8[], $15::int8[], $16::int8[], $17::int8[], $18::int8[],
    $19::text[], $20::text[], $21::text[])
    AS u(h, m, l, s, e, r, p, sa, sp, da, dp, d, o, k, ro, rk, pl, rpl, sj, dj, ci)
ON CONFLICT DO NOTHING";

/// Stores `rows` in one transaction. Returns how many were new.
pub async fn insert(client: &mut Client, rows: &[Stored]) -> Result<u64, FleetError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let col = |f: &dyn Fn(&Stored) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let small = |f: &dyn Fn(&FleetRecord) -> u16| {
        rows.iter()
            .map(|r| i16::try_from(f(&r.rec)).unwrap_or(i16::MAX))
            .collect::<Vec<i16>>()
    };
    let port = |f: &dyn Fn(&FleetRecord) -> u16| {
        rows.iter()
            .map(|r| i32::from(f(&r.rec)))
            .collect::<Vec<i32>>()
    };
    let addr = |f: &dyn Fn(&FleetRecord) -> IpAddr| {
        rows.iter().map(|r| f(&r.rec)).collect::<Vec<IpAddr>>()
    };
    let proc = |f: &dyn Fn(&FleetRecord) -> Option<String>| {
        rows.iter()
            .map(|r| f(&r.rec))
            .collect::<Vec<Option<String>>>()
    };
    let json = |p: &Option<netwho_export::fleet::FleetProc>| {
        p.as_ref().and_then(|p| serde_json::to_string(p).ok())
    };
    let host: Vec<&str> = rows.iter().map(|r| r.host.as_str()).collect();
    let msg: Vec<&str> = rows.iter().map(|r| r.msg_id.as_str()).collect();
    let line: Vec<i32> = rows.iter().map(|r| r.line).collect();
    let start = col(&|r| big(r.rec.start_ms));
    let end = col(&|r| big(r.rec.end_ms));
    let reason = small(&|r| u16::from(r.end_reason));
    let protocol = small(&|r| u16::from(r.protocol));
    let src = addr(&|r| r.src);
    let src_port = port(&|r| r.src_port);
    let dst = addr(&|r| r.dst);
    let dst_port = port(&|r| r.dst_port);
    let direction = small(&|r| u16::from(r.direction));
    let octets = col(&|r| big(r.rec.octets));
    let packets = col(&|r| big(r.rec.packets));
    let rev_octets = col(&|r| big(r.rec.rev_octets));
    let rev_packets = col(&|r| big(r.rec.rev_packets));
    let payload = col(&|r| big(r.rec.payload));
    let rev_payload = col(&|r| big(r.rec.rev_payload));
    let src_proc = proc(&|r| json(&r.src_proc));
    let dst_proc = proc(&|r| json(&r.dst_proc));
    let community_id = proc(&|r| Some(r.community_id.clone()).filter(|c| !c.is_empty()));
    let tx = client.transaction().await?;
    let n = tx
        .execute(
            INSERT,
            &[
                &host,
                &msg,
                &line,
                &start,
                &end,
                &reason,
                &protocol,
                &src,
                &src_port,
                &dst,
                &dst_port,
                &direction,
                &octets,
                &packets,
                &rev_octets,
                &rev_packets,
                &payload,
                &rev_payload,
                &src_proc,
                &dst_proc,
                &community_id,
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(n)
}
