use super::*;
use netwho_model::{Endpoint, Flow, SockCookie};
use netwho_sink::benchkit::{WALL, context};

type Buf = netwho_sink::output::MemoryOutput;

/// The blocks of a pcapng file: (type, body), every length checked.
fn blocks(b: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let kind = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
        assert_eq!(len % 4, 0, "block {kind:#x} not aligned");
        let trailer = u32::from_le_bytes(b[at + len - 4..at + len].try_into().unwrap()) as usize;
        assert_eq!(len, trailer, "block {kind:#x}: lengths differ");
        out.push((kind, b[at + 8..at + len - 4].to_vec()));
        at += len;
    }
    assert_eq!(at, b.len());
    out
}

/// The options after `fixed` bytes of a body: (code, value).
fn options(body: &[u8], fixed: usize) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = fixed;
    loop {
        let code = u16::from_le_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_le_bytes([body[at + 2], body[at + 3]]));
        if code == 0 {
            break;
        }
        out.push((code, body[at + 4..at + 4 + len].to_vec()));
        at += 4 + len.div_ceil(4) * 4;
    }
    out
}

fn opt(opts: &[(u16, Vec<u8>)], code: u16) -> Vec<u8> {
    opts.iter()
        .find(|(c, _)| *c == code)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no option {code}: {opts:?}"))
}

fn flow(pid: u32, cookie: u64) -> Flow {
    let mut f = Flow::example(pid, cookie, Endpoint::new([10, 231, 1, 2].into(), 443));
    f.netns = 4_026_531_840;
    f
}

fn event(sink: &mut PcapSink, ev: &FlowEvent, at: MonoNs) {
    let mut lookup = |_: &FlowEvent| context();
    let mut rec = RecordRef::new(ev, at, WALL, &mut lookup);
    sink.event(ev, &mut rec);
}

fn chunk(cookie: u64, id: u64, caplen: u16, offset: u16, data: &[u8], at_s: u64) -> PacketChunk {
    PacketChunk {
        key: WireKey {
            cookie: SockCookie(cookie),
            remote: Endpoint::new([10, 231, 1, 2].into(), 443),
        },
        id,
        at: MonoNs(at_s * 1_000_000_000),
        len: 1500,
        caplen,
        offset,
        ifindex: 3,
        dir: CaptureDir::Sent,
        segs: 1,
        data: data.to_vec(),
    }
}

#[test]
fn packets_of_passed_flows_are_written_with_their_process_others_never() {
    let buf = Buf::default();
    let mut sink = PcapSink::new(Output::spawn(Box::new(buf.clone())), 16384, None);
    sink.tick(MonoNs(1_000_000_000), WALL);
    // a packet before its flow's first event waits for it
    sink.packet(&chunk(1, 10, 4, 0, b"\x45abc", 1));
    let f = flow(4242, 1);
    event(
        &mut sink,
        &FlowEvent::Opened(f.clone()),
        MonoNs(1_000_000_000),
    );
    // a packet in two chunks, the second first
    sink.packet(&chunk(1, 11, 6, 3, b"def", 1));
    sink.packet(&chunk(1, 11, 6, 0, b"\x45bc", 1));
    // a packet of a socket whose flow the filter did not pass
    sink.packet(&chunk(2, 12, 4, 0, b"\x45xyz", 1));
    sink.tick(MonoNs(2_000_000_000), WALL);
    sink.tick(MonoNs(4_000_000_000), WALL);
    sink.finish().unwrap();
    assert_eq!(
        (sink.stats.written, sink.stats.unmatched, sink.stats.dropped),
        (2, 1, 0)
    );
    let b = blocks(&buf.bytes());
    let kinds: Vec<u32> = b.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [SHB, IDB, EPB, EPB, ISB]);
    // the interface: raw IP, nanoseconds
    let idb = &b[1].1;
    assert_eq!(u16::from_le_bytes([idb[0], idb[1]]), LINKTYPE_RAW);
    assert_eq!(opt(&options(idb, 8), IF_TSRESOL), [9]);
    // the packets, in the order they became whole
    let datas: Vec<Vec<u8>> = b[2..4]
        .iter()
        .map(|(_, e)| {
            let cap = u32::from_le_bytes(e[12..16].try_into().unwrap()) as usize;
            e[20..20 + cap].to_vec()
        })
        .collect();
    assert_eq!(datas, [b"\x45bcdef".to_vec(), b"\x45abc".to_vec()]);
    let e = &b[2].1;
    let cap = u32::from_le_bytes(e[12..16].try_into().unwrap()) as usize;
    let opts = options(e, 20 + cap.div_ceil(4) * 4);
    let comment = String::from_utf8(opt(&opts, OPT_COMMENT)).unwrap();
    assert_eq!(
        comment,
        format!(
            "netwho pid=4242 comm={} exe={} user=alice uid={} unit=web.service flow={}",
            f.comm, f.proc.exe, f.uid, f.id
        )
    );
    assert_eq!(opt(&opts, EPB_FLAGS), 2u32.to_le_bytes(), "outbound");
    assert_eq!(opt(&opts, EPB_PID_TID)[..4], 4242u32.to_le_bytes());
    let custom = opt(&opts, OPT_CUSTOM_BINARY);
    assert_eq!(custom[..4], PEN.to_le_bytes());
    assert_eq!(custom[4], CUSTOM_VERSION);
    assert_eq!(custom[5..9], 4242u32.to_le_bytes());
    // the time: the wall clock of the kernel's time
    let ts = (u64::from(u32::from_le_bytes(e[4..8].try_into().unwrap())) << 32)
        | u64::from(u32::from_le_bytes(e[8..12].try_into().unwrap()));
    assert_eq!(ts, 1_795_000_001_000_000_000);
    // the statistics: two packets on it, none lost
    let isb = options(&b[4].1, 12);
    assert_eq!(opt(&isb, ISB_IFRECV), 2u64.to_le_bytes());
    assert_eq!(opt(&isb, ISB_OSDROP), 0u64.to_le_bytes());
}

#[test]
fn hostile_names_cannot_forge_fields_and_are_bounded() {
    let who = Owner {
        pid: 7,
        comm: "evil pid=1\nx".into(),
        exe: format!("/tmp/{}", "é".repeat(MAX_NAME)),
        user: "a\\b=c".into(),
        flow_id: "f".into(),
        ..Owner::default()
    };
    let (c, cut) = who.comment();
    assert!(cut);
    assert!(
        c.starts_with("netwho pid=7 comm=evil\\x20pid\\x3d1\\x0ax exe=/tmp/"),
        "{c}"
    );
    assert!(c.contains(" user=a\\x5cb\\x3dc uid=0 flow=f"), "{c}");
    assert_eq!(c.matches(" pid=").count(), 1, "{c}");
    assert!(!c.contains('\n'));
    // the binary form: lengths in front, strings cut on a character
    let v = who.custom();
    let mut at = 9;
    let mut fields = Vec::new();
    while at < v.len() {
        let n = usize::from(u16::from_le_bytes([v[at], v[at + 1]]));
        fields.push(String::from_utf8(v[at + 2..at + 2 + n].to_vec()).unwrap());
        at += 2 + n;
    }
    assert_eq!(fields.len(), 6);
    assert_eq!(fields[1], "evil pid=1\nx");
    assert!(fields[2].len() <= MAX_NAME && fields[2].len() > MAX_NAME - 2);
}

#[test]
fn lost_chunks_and_floods_are_bounded_and_counted() {
    let buf = Buf::default();
    let mut sink = PcapSink::new(Output::spawn(Box::new(buf.clone())), 16384, None);
    event(
        &mut sink,
        &FlowEvent::Opened(flow(1, 1)),
        MonoNs(1_000_000_000),
    );
    // a packet whose second chunk never comes goes after the wait
    sink.packet(&chunk(1, 1, 1000, 0, &[0x45; 512], 1));
    sink.tick(MonoNs(4_000_000_000), WALL);
    assert_eq!(sink.stats.dropped, 1);
    // more half packets than assembly holds: the oldest go, counted
    for id in 0..(MAX_ASSEMBLING as u64 + 10) {
        sink.packet(&chunk(1, 100 + id, 1000, 0, &[0x45; 512], 5));
    }
    assert_eq!(sink.assembling.len(), MAX_ASSEMBLING);
    assert_eq!(sink.stats.dropped, 11);
    // a chunk that does not fit its packet is ignored
    sink.packet(&chunk(
        1,
        100 + MAX_ASSEMBLING as u64,
        1000,
        900,
        &[0; 512],
        5,
    ));
    // packets of no flow: at most MAX_WAITING wait
    for id in 0..(MAX_WAITING as u64 + 5) {
        sink.packet(&chunk(9, 1_000_000 + id, 4, 0, b"\x45abc", 5));
    }
    assert_eq!(sink.waiting.len(), MAX_WAITING);
    assert_eq!(sink.stats.dropped, 16);
    // big packets of no flow: held up to MAX_WAITING_BYTES, the oldest go
    let big = vec![0x45; 16384];
    for id in 0..2000u64 {
        sink.packet(&chunk(9, 2_000_000 + id, 16384, 0, &big, 5));
    }
    assert!(
        sink.waiting_bytes <= MAX_WAITING_BYTES,
        "{}",
        sink.waiting_bytes
    );
    assert_eq!(
        sink.waiting_bytes,
        sink.waiting.iter().map(|c| c.data.len()).sum::<usize>()
    );
    assert!(sink.stats.dropped > 1000);
    sink.finish().unwrap();
    assert_eq!(sink.stats.written, 0);
    // the losses are the first interface's drop count (none here: nothing
    // was written, so there is no interface) and the sink's dropped()
    assert_eq!(sink.dropped(), sink.stats.dropped);
}

#[test]
fn a_duration_ends_the_capture() {
    let mut sink = PcapSink::new(
        Output::spawn(Box::new(Buf::default())),
        128,
        Some(std::time::Duration::from_secs(5)),
    );
    assert_eq!(
        sink.tick(MonoNs(1_000_000_000), WALL),
        SinkControl::Continue
    );
    assert_eq!(
        sink.tick(MonoNs(5_000_000_000), WALL),
        SinkControl::Continue
    );
    assert_eq!(sink.tick(MonoNs(6_000_000_000), WALL), SinkControl::Done);
}
