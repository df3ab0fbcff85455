use crate::ie::{self, DEFAULT_NETWHO_PEN, parse_template};
use crate::msg::{Encoder, Own, Proc, Record, Version};

pub(crate) fn record(src: &str, dst: &str) -> Record {
    Record {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        src_port: 40_000,
        dst_port: 443,
        protocol: 6,
        octets: 123_456,
        packets: 99,
        rev_octets: 654_321,
        rev_packets: 98,
        payload: 120_000,
        rev_payload: 650_000,
        start_ms: 1_795_392_000_123,
        end_ms: 1_795_392_001_456,
        end_reason: 3,
        direction: 1,
        src_proc: Some(Proc {
            pid: 4242,
            start_ticks: 0,
            name: "curl".into(),
            user: "alice".into(),
            father_pid: 812,
            father_name: "bash".into(),
            actual_memory: 10 << 20,
            peak_memory: 12 << 20,
            cpu_load: 250,
            page_faults: 17,
            iowait: 3,
        }),
        dst_proc: None,
        own: Own {
            uid: 1000,
            unit: "user@1000.service".into(),
            container: String::new(),
            cmdline: "curl -s https://example.invalid/".into(),
            exe_sha256: "ab".repeat(32),
            attribution: "ebpf".into(),
            community_id: "1:LQU9qZlK+B5F3KDmev6m5PMibrg=".into(),
            rname: "example.invalid".into(),
            rname_source: "dns".into(),
            sni: "example.invalid".into(),
            alpn: "h2,http/1.1".into(),
        },
        dst_own: None,
    }
}

#[test]
fn golden_ipfix_message() {
    let t = parse_template("%IPV4_SRC_ADDR %L4_DST_PORT %SRC_PROC_NAME").unwrap();
    let mut e = Encoder::new(Version::Ipfix, t, DEFAULT_NETWHO_PEN, 7);
    let r = record("10.231.1.2", "10.231.1.3");
    let m = e.messages(std::slice::from_ref(&r), true, 1_700_000_000, 1000, 1400);
    let want: Vec<u8> = [
        &[0x00, 0x0a, 0x00, 0x37][..], // version 10, length 55
        &[0x65, 0x53, 0xf1, 0x00],     // export time
        &[0, 0, 0, 0],                 // sequence: no data record before
        &[0, 0, 0, 7],                 // observation domain
        &[0x00, 0x02, 0x00, 0x18],     // template set, 24 bytes
        &[0x01, 0x00, 0x00, 0x03],     // template 256, 3 fields
        &[0x00, 0x08, 0x00, 0x04],     // sourceIPv4Address
        &[0x00, 0x0b, 0x00, 0x02],     // destinationTransportPort
        &[0x80, 0xa9, 0xff, 0xff, 0x00, 0x00, 0x8b, 0x30], // 35632.169, variable
        &[0x01, 0x00, 0x00, 0x0f],     // data set, 15 bytes
        &[10, 231, 1, 2, 0x01, 0xbb, 4, b'c', b'u', b'r', b'l'],
    ]
    .concat();
    assert_eq!(m, vec![want]);
    // the next message's sequence counts the record sent
    let m = e.messages(&[r], false, 1_700_000_001, 2000, 1400);
    assert_eq!(&m[0][8..12], &[0, 0, 0, 1]);
}

#[test]
fn golden_netflow_v9_message() {
    let t = parse_template("%IPV4_SRC_ADDR %L4_DST_PORT %SRC_PROC_NAME").unwrap();
    let mut e = Encoder::new(Version::V9, t, DEFAULT_NETWHO_PEN, 7);
    let m = e.messages(
        &[record("10.231.1.2", "10.231.1.3")],
        true,
        1_700_000_000,
        1000,
        1400,
    );
    let want: Vec<u8> = [
        &[0x00, 0x09, 0x00, 0x02][..], // version 9, 2 records
        &[0x00, 0x00, 0x03, 0xe8],     // sysUptime
        &[0x65, 0x53, 0xf1, 0x00],     // unix seconds
        &[0, 0, 0, 0],                 // packet sequence
        &[0, 0, 0, 7],                 // source id
        &[0x00, 0x00, 0x00, 0x14],     // template flowset, 20 bytes
        &[0x01, 0x00, 0x00, 0x03],
        &[0x00, 0x08, 0x00, 0x04],
        &[0x00, 0x0b, 0x00, 0x02],
        &[0xe1, 0x29, 0x00, 0x10], // 57641 SRC_PROC_NAME, 16 bytes
        &[0x01, 0x00, 0x00, 0x1c], // data flowset, 28 bytes (padded)
        &[10, 231, 1, 2, 0x01, 0xbb],
        b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
        &[0, 0],
    ]
    .concat();
    assert_eq!(m, vec![want]);
}

/// What netflow_parser (an independent decoder) makes of our messages.
fn decoded(bytes: &[Vec<u8>]) -> serde_json::Value {
    let mut p = netflow_parser::NetflowParser::default();
    let mut all = Vec::new();
    for b in bytes {
        let r = p.parse_bytes(b);
        assert!(r.error.is_none(), "{:?}", r.error);
        all.extend(r.packets);
    }
    serde_json::to_value(&all).unwrap()
}

/// A local connection: both ends' processes, every text non-empty
/// (netflow_parser 1.0.6 drops a record with a zero-length
/// variable-length field, which RFC 7011 allows and netwho sends for a
/// remote end's missing process).
pub(crate) fn local(src: &str, dst: &str) -> Record {
    let mut r = record(src, dst);
    r.dst_proc = Some(Proc {
        pid: 777,
        start_ticks: 0,
        name: "nginx".into(),
        user: "www-data".into(),
        father_pid: 1,
        father_name: "systemd".into(),
        actual_memory: 5 << 20,
        peak_memory: 6 << 20,
        cpu_load: 10,
        page_faults: 3,
        iowait: 0,
    });
    r.own.container = "c0ffee".into();
    r
}

/// The decoded records as (field name or "PEN.ID", value as text).
fn fields(v: &serde_json::Value) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    for p in v.as_array().unwrap() {
        let (fs, key) = match (p.get("IPFix"), p.get("V9")) {
            (Some(x), _) => (x, "flowsets"),
            (_, Some(x)) => (x, "flowsets"),
            _ => continue,
        };
        for set in fs[key].as_array().unwrap() {
            let Some(data) = set["body"].get("Data") else {
                continue;
            };
            for rec in data["fields"].as_array().unwrap() {
                let mut row = Vec::new();
                for pair in rec.as_array().unwrap() {
                    let name = match &pair[0] {
                        serde_json::Value::Object(o) => match o.iter().next() {
                            Some((k, v)) if k == "Enterprise" => {
                                format!("{}.{}", v["enterprise_number"], v["field_number"])
                            }
                            Some((_, v)) => v.as_str().unwrap_or("?").to_string(),
                            None => String::new(),
                        },
                        other => other.as_str().unwrap_or("?").to_string(),
                    };
                    row.push((name, pair[1].to_string()));
                }
                out.push(row);
            }
        }
    }
    out
}

#[test]
fn an_independent_decoder_reads_every_record_and_field() {
    for version in [Version::Ipfix, Version::V9] {
        let t = parse_template(ie::DEFAULT_TEMPLATE).unwrap();
        let n = t.len();
        let mut e = Encoder::new(version, t, DEFAULT_NETWHO_PEN, 1);
        let recs = [
            local("10.231.1.2", "10.231.1.3"),
            local("fd00:231::2", "fd00:231::3"),
        ];
        let m = e.messages(&recs, true, 1_700_000_000, 1000, 1400);
        let rows = fields(&decoded(&m));
        assert_eq!(rows.len(), 2, "{version:?}: {rows:?}");
        for row in &rows {
            assert_eq!(row.len(), n, "{version:?}: {row:?}");
        }
        let text = format!("{rows:?}");
        for want in ["10.231.1.2", "fd00:231::3", "123456"] {
            assert!(text.contains(want), "{version:?}: no {want} in {text}");
        }
        let port = rows[0]
            .iter()
            .find(|(k, _)| k.contains("DestinationTransportPort") || k.contains("L4DstPort"))
            .map(|(_, v)| v.clone());
        assert!(
            port.is_some_and(|p| p.contains("443")),
            "{version:?}: {:?}",
            rows[0]
        );
        // the processes' text as sent (IPFIX: exact; v9: NUL-padded)
        let bytes = |s: &str| {
            s.bytes()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        for want in [
            "curl",
            "alice",
            "bash",
            "nginx",
            "www-data",
            "systemd",
            "user@1000.service",
            // the names (DNS_QUERY, TLS_SERVER_NAME, NETWHO_ALPN)
            "example.invalid",
            "h2,http/1.1",
        ] {
            assert!(
                text.contains(&bytes(want)) || text.contains(want),
                "{version:?}: no {want} in {text}"
            );
        }
    }
}

#[test]
fn messages_stay_under_the_size_and_sequence_numbers_count() {
    let t = parse_template(ie::DEFAULT_TEMPLATE).unwrap();
    let mut e = Encoder::new(Version::Ipfix, t.clone(), DEFAULT_NETWHO_PEN, 1);
    let recs: Vec<Record> = (0..40).map(|_| local("10.231.1.2", "10.231.1.3")).collect();
    let m = e.messages(&recs, true, 1, 1, 1400);
    assert!(m.len() > 1);
    // each message's sequence number is the count of data records before it
    for i in 0..m.len() {
        let msg = &m[i];
        assert!(msg.len() <= 1400, "{}", msg.len());
        assert_eq!(u16::from_be_bytes([msg[2], msg[3]]) as usize, msg.len());
        let before = if i == 0 {
            0
        } else {
            fields(&decoded(&m[..i])).len()
        };
        assert_eq!(
            u32::from_be_bytes([msg[8], msg[9], msg[10], msg[11]]) as usize,
            before
        );
    }
    assert_eq!(fields(&decoded(&m)).len(), 40);
    // v9 counts messages
    let mut e = Encoder::new(Version::V9, t, DEFAULT_NETWHO_PEN, 1);
    let m = e.messages(&recs, true, 1, 1, 1400);
    for (i, msg) in m.iter().enumerate() {
        assert!(msg.len() <= 1400);
        assert_eq!(
            u32::from_be_bytes([msg[12], msg[13], msg[14], msg[15]]),
            i as u32
        );
    }
    assert_eq!(fields(&decoded(&m)).len(), 40);
}

#[test]
fn the_spec_lists_every_element() {
    let doc = include_str!("../../../docs/specs/ipfix.md");
    for ie in ie::ALL {
        assert!(doc.contains(&format!("`%{}`", ie.name)), "{}", ie.name);
    }
}

#[test]
fn json_lines_hold_the_template_and_leave_out_what_is_not_there() {
    let t = parse_template(ie::DEFAULT_TEMPLATE).unwrap();
    let mut out = Vec::new();
    crate::sink::write_json(&record("10.231.1.2", "10.231.1.3"), &t, &mut out);
    let mut r = local("fd00:231::2", "fd00:231::3");
    r.own.cmdline = "say \"hi\"\n".into();
    crate::sink::write_json(&r, &t, &mut out);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let (v4, v6) = (&lines[0], &lines[1]);
    assert_eq!(v4["ipv4_src_addr"], "10.231.1.2");
    assert_eq!(v4["in_bytes"], 123_456);
    assert_eq!(v4["src_proc_name"], "curl");
    assert!(v4.get("ipv6_src_addr").is_none());
    assert!(v4.get("dst_proc_pid").is_none(), "no DST process");
    assert_eq!(v6["ipv6_dst_addr"], "fd00:231::3");
    assert!(v6.get("ipv4_src_addr").is_none());
    assert_eq!(v6["dst_proc_name"], "nginx");
    assert_eq!(v6["netwho_cmdline"], "say \"hi\"\n");
    // every element of the template, less the four left out
    assert_eq!(v4.as_object().unwrap().len(), t.len() - 2 - 10);
}

/// A process whose command line is 70,000 bytes (and executable path and
/// names as long as the kernel allows) still exports valid messages: each
/// within --max-message, every set and message length right, the text cut
/// (and counted), never a length field that wrapped.
#[test]
fn hostile_lengths_still_make_valid_bounded_messages() {
    for max in [512usize, 1400, 65_535] {
        for version in [Version::Ipfix, Version::V9] {
            let t = parse_template(ie::DEFAULT_TEMPLATE).unwrap();
            let mut e = Encoder::new(version, t, DEFAULT_NETWHO_PEN, 1);
            let mut r = local("10.231.1.2", "10.231.1.3");
            r.own.cmdline = "A".repeat(70_000);
            r.own.unit = "u".repeat(40_000);
            if let Some(p) = &mut r.src_proc {
                p.name = "n".repeat(300);
                p.user = "é".repeat(20_000);
            }
            let m = e.messages(&[r.clone(), r.clone(), r], true, 1_700_000_000, 1000, max);
            // (a v9 record has the template's fixed size: the CLI refuses a
            // smaller --max-message)
            let bound = match version {
                Version::Ipfix => max,
                Version::V9 => max.max(crate::msg::v9_min_message(
                    &parse_template(ie::DEFAULT_TEMPLATE).unwrap(),
                )),
            };
            for msg in &m {
                assert!(
                    msg.len() <= bound,
                    "{version:?} {max}: a message of {}",
                    msg.len()
                );
                if version == Version::Ipfix {
                    let len = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
                    assert_eq!(len, msg.len(), "{max}: the header's length");
                }
                // every set's length lands exactly on the message's end
                let mut at = if version == Version::Ipfix { 16 } else { 20 };
                while at < msg.len() {
                    let set = usize::from(u16::from_be_bytes([msg[at + 2], msg[at + 3]]));
                    assert!(set >= 4, "{version:?} {max}: a set of {set} at {at}");
                    at += set;
                }
                assert_eq!(at, msg.len(), "{version:?} {max}: sets overrun the message");
            }
            let rows = fields(&decoded(&m));
            assert_eq!(rows.len(), 3, "{version:?} {max}: every record decodes");
            if version == Version::Ipfix {
                assert!(e.truncated >= 3, "{max}: cut values are counted");
            }
        }
    }
}

/// netwho's own flows (its datagrams to the collectors) are left out of
/// what it exports, and counted; everyone else's are exported.
#[test]
fn netwhos_own_flows_are_not_exported() {
    use netwho_model::record::Context;
    use netwho_model::time::WallClock;
    use netwho_model::{Endpoint, Flow, FlowEvent, MonoNs};
    use netwho_sink::{RecordRef, Sink as _};
    use std::sync::Arc;
    type Buf = netwho_sink::output::MemoryOutput;
    let buf = Buf::default();
    let mut own = Flow::example(4000, 1, Endpoint::new([10, 231, 1, 9].into(), 4739));
    let mut other = Flow::example(5000, 2, Endpoint::new([10, 231, 1, 9].into(), 443));
    other.key.proc = netwho_model::ProcKey::from_start_ticks(5000, 9);
    let mut cfg = crate::sink::ExportConfig::new(
        crate::sink::Format::Jsonl,
        parse_template(ie::DEFAULT_TEMPLATE).unwrap(),
    );
    cfg.skip_proc = Some(own.key.proc);
    let mut sink = crate::sink::ExportSink::new(
        cfg,
        netwho_sink::output::Output::spawn(Box::new(buf.clone())),
        Arc::new(crate::net::Delivery::default()),
    );
    let wall = WallClock {
        boot_to_unix_ns: 1_700_000_000_000_000_000,
    };
    for f in [&mut own, &mut other] {
        f.payload.bytes_sent = 1_400;
        f.closed = Some(MonoNs(6_000_000_000));
        let ev = FlowEvent::Closed(f.clone());
        let mut lookup = |_: &FlowEvent| Context::default();
        let mut rec = RecordRef::new(&ev, MonoNs(6_000_000_000), wall, &mut lookup);
        sink.event(&ev, &mut rec);
    }
    sink.tick(MonoNs(9_000_000_000), wall);
    sink.finish().unwrap();
    let text = String::from_utf8(buf.bytes()).unwrap();
    let pids: Vec<u64> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| v["src_proc_pid"].as_u64())
        .collect();
    assert_eq!(pids, [5000], "{text}");
    assert_eq!(sink.own_left_out, 1);
}
