use super::encode::{self, Attrs, MAX_ARGS, MAX_VALUE};
use super::http::{LOG, METRICS, OtlpHttp};
use super::pb::{self, Field};
use super::*;
use netwho_model::record::FlowRecord;
use netwho_model::{Endpoint, Flow};
use netwho_sink::benchkit::{WALL, context};
use netwho_sink::output::Destination;
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};

/// An attribute's value as read back.
#[derive(Clone, Debug, PartialEq)]
enum Any {
    Str(String),
    Int(i64),
    Bool(bool),
    Double(f64),
    Strs(Vec<String>),
}

fn any(b: &[u8]) -> Any {
    match pb::fields(b).unwrap()[..] {
        [Field::Len(1, s)] => Any::Str(String::from_utf8(s.to_vec()).expect("UTF-8")),
        [Field::Varint(2, v)] => Any::Bool(v != 0),
        [Field::Varint(3, v)] => Any::Int(v as i64),
        [Field::I64(4, v)] => Any::Double(f64::from_bits(v)),
        [Field::Len(5, arr)] => Any::Strs(
            pb::fields(arr)
                .unwrap()
                .into_iter()
                .map(|f| match f {
                    Field::Len(1, v) => match any(v) {
                        Any::Str(s) => s,
                        other => panic!("{other:?}"),
                    },
                    other => panic!("{other:?}"),
                })
                .collect(),
        ),
        ref other => panic!("{other:?}"),
    }
}

/// The `KeyValue`s in field `field` of a message.
fn attrs(msg: &[u8], field: u32) -> BTreeMap<String, Any> {
    let mut out = BTreeMap::new();
    for f in pb::fields(msg).unwrap() {
        if let Field::Len(n, kv) = f
            && n == field
        {
            let kv = pb::fields(kv).unwrap();
            let [Field::Len(1, k), Field::Len(2, v)] = kv[..] else {
                panic!("{kv:?}")
            };
            let k = String::from_utf8(k.to_vec()).unwrap();
            assert!(out.insert(k.clone(), any(v)).is_none(), "{k} twice");
        }
    }
    out
}

fn field<'a>(msg: &'a [u8], n: u32) -> Vec<Field<'a>> {
    pb::fields(msg)
        .unwrap()
        .into_iter()
        .filter(|f| f.number() == n)
        .collect()
}

fn s(v: &str) -> Any {
    Any::Str(v.into())
}

#[test]
fn a_flow_record_reads_back_with_the_conventions_names() {
    let r = FlowRecord::example();
    let mut a = Attrs::default();
    let msg = encode::log_record(
        &r,
        1_795_392_000_123_000_000,
        1_795_392_001_000_000_000,
        &mut a,
    );
    assert_eq!(field(&msg, 1), [Field::I64(1, 1_795_392_000_123_000_000)]);
    assert_eq!(field(&msg, 11), [Field::I64(11, 1_795_392_001_000_000_000)]);
    assert_eq!(field(&msg, 2), [Field::Varint(2, 9)], "INFO");
    assert_eq!(field(&msg, 12), [Field::Len(12, &b"netwho.flow.close"[..])]);
    let [Field::Len(5, body)] = field(&msg, 5)[..] else {
        panic!()
    };
    assert_eq!(
        any(body),
        s("close tcp 10.0.0.5:40412 -> 93.184.216.34:443 curl[4242] sent 79 received 1256"),
        "{r:?}"
    );
    let at = attrs(&msg, 6);
    let want = [
        ("process.pid", Any::Int(i64::from(r.pid))),
        ("process.parent_pid", Any::Int(i64::from(r.ppid))),
        ("process.executable.path", s(&r.exe)),
        ("process.executable.name", s("curl")),
        ("process.command_args", Any::Strs(r.cmdline.to_vec())),
        ("process.owner", s(&r.user)),
        ("process.user.id", Any::Int(i64::from(r.uid))),
        ("network.transport", s("tcp")),
        ("network.type", s("ipv4")),
        ("network.local.address", s("10.0.0.5")),
        ("network.local.port", Any::Int(40412)),
        ("network.peer.address", s("93.184.216.34")),
        ("network.peer.port", Any::Int(443)),
        ("netwho.event", s("close")),
        ("netwho.flow.id", s(&r.flow_id)),
        ("netwho.flow.direction", s("outbound")),
        ("netwho.payload.bytes_sent", Any::Int(r.bytes_sent as i64)),
        (
            "netwho.payload.bytes_received",
            Any::Int(r.bytes_recv as i64),
        ),
        ("netwho.payload.complete", Any::Bool(true)),
        ("netwho.attribution", s("ebpf")),
        ("netwho.community_id", s(r.community_id.as_deref().unwrap())),
        ("netwho.flow.duration_ms", Any::Double(217.021)),
    ];
    for (k, v) in want {
        assert_eq!(at.get(k), Some(&v), "{k} in {at:#?}");
    }
    assert_eq!(a.truncated, 0);
}

#[test]
fn hostile_strings_are_cut_on_a_character_and_counted() {
    let mut r = FlowRecord::example();
    // a 3-byte character straddles the cut
    r.exe = format!("/tmp/{}€€", "x".repeat(MAX_VALUE - 6)).into();
    let mut args: Vec<String> = (0..MAX_ARGS + 50).map(|i| format!("a{i}")).collect();
    args[3] = "é".repeat(MAX_VALUE);
    r.cmdline = args.into();
    r.comm = "evil\n\u{1b}[2J".into();
    let mut a = Attrs::default();
    let msg = encode::log_record(&r, 1, 2, &mut a);
    let at = attrs(&msg, 6);
    let Some(Any::Str(exe)) = at.get("process.executable.path") else {
        panic!()
    };
    assert!(
        exe.len() <= MAX_VALUE && exe.len() >= MAX_VALUE - 3,
        "{}",
        exe.len()
    );
    let Some(Any::Strs(args)) = at.get("process.command_args") else {
        panic!()
    };
    assert_eq!(args.len(), MAX_ARGS);
    assert_eq!(
        args[3].len(),
        MAX_VALUE,
        "two-byte characters, cut between them"
    );
    // exe and its base name (also in the body), an argument, the list
    assert_eq!(a.truncated, 4, "{at:#?}");
    // bytes protobuf carries as they are: the collector escapes for display
    assert_eq!(at.get("netwho.process.comm"), Some(&s("evil\n\u{1b}[2J")));
}

type Buf = netwho_sink::output::MemoryOutput;

fn feed(sink: &mut OtlpSink, ev: &FlowEvent, at_s: u64) {
    let mut lookup = |_: &FlowEvent| context();
    let at = MonoNs(at_s * 1_000_000_000);
    let mut rec = RecordRef::new(ev, at, WALL, &mut lookup);
    sink.event(ev, &mut rec);
    sink.tick(at, WALL);
}

/// The frames a sink wrote: (kind, message).
fn frames_of(b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    crate::net::frames(b)
        .map(|(k, _, m)| (k, m.to_vec()))
        .collect()
}

#[test]
fn the_sink_logs_opens_updates_when_due_and_closes_and_sums_the_series() {
    let buf = Buf::default();
    let mut own = Flow::example(4000, 1, Endpoint::new([10, 231, 1, 9].into(), 4318));
    own.key.proc = ProcKey::from_start_ticks(4000, 1);
    let mut f = Flow::example(5000, 2, Endpoint::new([10, 231, 1, 9].into(), 443));
    f.key.proc = ProcKey::from_start_ticks(5000, 9);
    let cfg = OtlpConfig {
        update_every: Duration::from_secs(30),
        metrics_every: Some(Duration::from_secs(60)),
        skip_proc: Some(own.key.proc),
        ..OtlpConfig::default()
    };
    let mut sink = OtlpSink::new(
        cfg,
        Output::spawn(Box::new(buf.clone())),
        Arc::new(Delivery::default()),
    );
    feed(&mut sink, &FlowEvent::Opened(own.clone()), 1);
    feed(&mut sink, &FlowEvent::Opened(f.clone()), 1);
    f.payload.bytes_sent = 100;
    feed(&mut sink, &FlowEvent::Updated(f.clone()), 10); // not due
    f.payload.bytes_sent = 300;
    f.payload.bytes_recv = 7;
    feed(&mut sink, &FlowEvent::Updated(f.clone()), 31); // due
    f.payload.bytes_sent = 1000;
    f.closed = Some(MonoNs(70_000_000_000));
    feed(&mut sink, &FlowEvent::Closed(f.clone()), 70); // and the metrics
    sink.finish().unwrap();
    let frames = frames_of(&buf.bytes());
    let logs: Vec<String> = frames
        .iter()
        .filter(|(k, _)| *k == LOG)
        .map(|(_, m)| match attrs(m, 6).get("netwho.event") {
            Some(Any::Str(e)) => e.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(logs, ["open", "update", "close"]);
    assert_eq!(sink.own_left_out, 1);
    let metrics: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|(k, _)| *k == METRICS)
        .map(|(_, m)| m)
        .collect();
    // due from 61 s: sent at the 70 s tick, after the close; not again at
    // exit (nothing changed)
    assert_eq!(metrics.len(), 1);
    // the flow's whole bytes in its series, by direction
    let points = io_points(metrics[0]);
    assert_eq!(
        points,
        [
            ("receive".to_string(), "alice".to_string(), 7),
            ("transmit".to_string(), "alice".to_string(), 1000)
        ]
    );
}

/// `process.network.io`'s points: (direction, owner, bytes), sorted.
fn io_points(req: &[u8]) -> Vec<(String, String, i64)> {
    let [Field::Len(1, rm)] = field(req, 1)[..] else {
        panic!()
    };
    let [Field::Len(2, sm)] = field(rm, 2)[..] else {
        panic!()
    };
    let mut out = Vec::new();
    for m in field(sm, 2) {
        let Field::Len(2, m) = m else { panic!() };
        if field(m, 1) != [Field::Len(1, &b"process.network.io"[..])] {
            continue;
        }
        let [Field::Len(7, sum)] = field(m, 7)[..] else {
            panic!()
        };
        assert_eq!(field(sum, 2), [Field::Varint(2, 2)], "cumulative");
        assert_eq!(field(sum, 3), [Field::Varint(3, 1)], "monotonic");
        for p in field(sum, 1) {
            let Field::Len(1, p) = p else { panic!() };
            let a = attrs(p, 7);
            let [Field::I64(6, v)] = field(p, 6)[..] else {
                panic!()
            };
            let (Some(Any::Str(d)), Some(Any::Str(u))) =
                (a.get("network.io.direction"), a.get("process.owner"))
            else {
                panic!("{a:?}")
            };
            out.push((d.clone(), u.clone(), v as i64));
        }
    }
    out.sort();
    out
}

/// A request a test collector got: its path and decompressed body.
type Got = (String, Vec<u8>);

/// A collector on the loopback that answers each request with the next
/// of `answers`, and hands back what it got (path, decompressed body).
fn collector(answers: Vec<&'static str>) -> (String, std::thread::JoinHandle<Vec<Got>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/base", l.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut answers = answers.into_iter();
        'conns: while let Ok((s, _)) = l.accept() {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            loop {
                let Ok(Some((path, body))) = crate::http::read_request(&mut r) else {
                    continue 'conns;
                };
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut plain)
                    .unwrap();
                got.push((path, plain));
                let Some(a) = answers.next() else {
                    return got;
                };
                w.write_all(a.as_bytes()).unwrap();
                if answers.len() == 0 {
                    return got;
                }
            }
        }
        got
    });
    (url, t)
}

fn log_frames(n: u32) -> Vec<u8> {
    let mut chunk = Vec::new();
    for i in 0..n {
        let mut r = FlowRecord::example();
        r.pid = i;
        let body = encode::log_record(&r, 1, 2, &mut Attrs::default());
        put_frame(&mut chunk, LOG, 1, &body);
    }
    chunk
}

/// The pids of the log records in a logs request.
fn pids(req: &[u8]) -> Vec<i64> {
    let [Field::Len(1, rl)] = field(req, 1)[..] else {
        panic!()
    };
    let res = field(rl, 1);
    let [Field::Len(1, res)] = res[..] else {
        panic!()
    };
    assert_eq!(attrs(res, 1).get("service.name"), Some(&s("netwho")));
    let [Field::Len(2, sl)] = field(rl, 2)[..] else {
        panic!()
    };
    field(sl, 2)
        .into_iter()
        .map(|f| {
            let Field::Len(2, lr) = f else { panic!() };
            match attrs(lr, 6).get("process.pid") {
                Some(Any::Int(p)) => *p,
                other => panic!("{other:?}"),
            }
        })
        .collect()
}

const OK: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";

#[test]
fn a_busy_collector_gets_the_same_request_again_and_nothing_twice() {
    let (url, t) = collector(vec![
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
        OK,
    ]);
    let delivery = Arc::new(Delivery::default());
    let res = encode::resource(&encode::Resource::default());
    let mut d = OtlpHttp::new(url.parse().unwrap(), res, "0".into(), Arc::clone(&delivery));
    d.write_chunk(&log_frames(3)).unwrap();
    d.close().unwrap();
    let got = t.join().unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], got[1], "the same request, again");
    assert_eq!(got[1].0, "/base/v1/logs");
    assert_eq!(pids(&got[1].1), [0, 1, 2]);
    assert_eq!(delivery.lost.load(Ordering::Relaxed), 0);
    assert_eq!(delivery.sent.load(Ordering::Relaxed), 1);
}

#[test]
fn refusals_and_partial_successes_are_counted_as_lost() {
    // partial success: 2 rejected (field 1 { field 1 = 2, field 2 = "bad" })
    let partial: &'static str = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}",
            "\x0a\x07\x08\x02\x12\x03bad"
        )
        .into_boxed_str(),
    );
    let (url, t) = collector(vec![
        "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        partial,
    ]);
    let delivery = Arc::new(Delivery::default());
    let res = encode::resource(&encode::Resource::default());
    let mut d = OtlpHttp::new(url.parse().unwrap(), res, "0".into(), Arc::clone(&delivery));
    d.write_chunk(&log_frames(4)).unwrap();
    d.idle().unwrap(); // the first request: refused
    d.write_chunk(&log_frames(5)).unwrap();
    d.close().unwrap(); // the second: 2 of 5 rejected
    let got = t.join().unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(delivery.lost.load(Ordering::Relaxed), 4 + 2);
}

#[test]
fn requests_hold_at_most_a_batch() {
    let (url, t) = collector(vec![OK, OK]);
    let delivery = Arc::new(Delivery::default());
    let res = encode::resource(&encode::Resource::default());
    let mut d = OtlpHttp::new(url.parse().unwrap(), res, "0".into(), Arc::clone(&delivery));
    let n = u32::try_from(http::BATCH_RECORDS).unwrap() + 7;
    d.write_chunk(&log_frames(n)).unwrap();
    d.close().unwrap();
    let got = t.join().unwrap();
    let sizes: Vec<usize> = got.iter().map(|(_, b)| pids(b).len()).collect();
    assert_eq!(sizes, [http::BATCH_RECORDS, 7]);
}

#[test]
fn event_lists_read_and_print_back() {
    for (text, want) in [
        ("open,update,close", "open,update,close"),
        ("close, open", "open,close"),
        ("none", "none"),
        ("update", "update"),
    ] {
        assert_eq!(text.parse::<Events>().unwrap().to_string(), want);
    }
    let e = "open,closed".parse::<Events>().unwrap_err();
    assert!(e.contains("'closed' is not a flow event"), "{e}");
    assert!("".parse::<Events>().is_err());
}

#[test]
fn metrics_just_sent_are_not_sent_again_at_exit() {
    let buf = Buf::default();
    let mut sink = OtlpSink::new(
        OtlpConfig {
            metrics_every: Some(Duration::from_secs(10)),
            ..OtlpConfig::default()
        },
        Output::spawn(Box::new(buf.clone())),
        Arc::new(Delivery::default()),
    );
    let f = Flow::example(5000, 2, Endpoint::new([10, 231, 1, 9].into(), 443));
    feed(&mut sink, &FlowEvent::Opened(f), 1);
    sink.tick(MonoNs(11_000_000_000), WALL); // sent now
    sink.finish().unwrap(); // nothing new since
    let n = frames_of(&buf.bytes())
        .iter()
        .filter(|(k, _)| *k == METRICS)
        .count();
    assert_eq!(n, 1);
}
