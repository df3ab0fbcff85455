//! Round trips and damaged input.

use super::format::{FRAME_MAGIC, Header, MAJOR, MINOR};
use super::*;
use crate::StoreError;
use netwho_model::record::{Context, Names};
use netwho_model::{
    Capture, CaptureDir, CapturePiece, CloseReason, Endpoint, Flow, FlowEvent, FlowUsage, MonoNs,
    Proto, TcpState, Usage, UsageTrack,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn flow(tgid: u32, cookie: u64, remote: &str, port: u16) -> Flow {
    Flow::example(
        tgid,
        cookie,
        Endpoint::new(remote.parse::<IpAddr>().unwrap(), port),
    )
}

fn ctx(sha: Option<&str>) -> Context {
    Context {
        names: Arc::new(Names {
            user: "alice".into(),
            group: "users".into(),
            cgroup: "/user.slice".into(),
            unit: "user.slice".into(),
            container_id: String::new(),
        }),
        exe_sha256: sha.map(Arc::from),
        usage: None,
        track: Some(UsageTrack {
            last: Usage {
                cpu_ns: 5,
                rss_bytes: 4096,
                rss_peak_bytes: 8192,
                major_faults: 1,
                iowait_ns: None,
            },
            at: MonoNs(5_100_000_000),
            prev: Some((MonoNs(4_100_000_000), 2)),
            exited: false,
        }),
        community_seed: 0,
    }
}

/// A recording in memory: header, then one frame per group of entries.
struct Mem {
    enc: Encoder,
    frames: FrameEncoder,
    bytes: Vec<u8>,
    raw: Vec<u8>,
}

impl Mem {
    fn new() -> Self {
        let h = Header {
            host: "h".into(),
            resolution_ns: 1_000_000_000,
            boot_to_unix_ns: 1_700_000_000_000_000_000,
            ..Header::default()
        };
        Mem {
            enc: Encoder::new(),
            frames: FrameEncoder::new().unwrap(),
            bytes: write::header_bytes(&h).unwrap(),
            raw: Vec::new(),
        }
    }
    fn ev(&mut self, kind: Kind, f: &Flow, c: &Context, at: u64) {
        self.enc.flow(&mut self.raw, kind, f, c, MonoNs(at));
    }
    fn seal(&mut self) {
        let fr = self.frames.frame(&self.raw).unwrap();
        self.bytes.extend_from_slice(&fr);
        self.raw.clear();
        self.enc.seal();
    }
}

fn read_all(bytes: &[u8]) -> Result<(Vec<Item>, ReadStats), StoreError> {
    let fr = FrameReader::new(bytes, Path::new("mem"))?;
    let mut r = Reader::from_readers(vec![("mem".into(), fr)])?;
    let mut items = Vec::new();
    while let Some(it) = r.next_item()? {
        items.push(it);
    }
    Ok((items, r.stats()))
}

/// A reader of recordings in memory (named mem0, mem1, ...).
fn reader_of(files: &[Vec<u8>]) -> Result<Reader<std::io::Cursor<Vec<u8>>>, StoreError> {
    let mut readers = Vec::new();
    for (i, b) in files.iter().enumerate() {
        let name = PathBuf::from(format!("mem{i}"));
        let fr = FrameReader::new(std::io::Cursor::new(b.clone()), &name)?;
        readers.push((name, fr));
    }
    Reader::from_readers(readers)
}

/// Every flow event of a recording in memory, frame by frame, with a look
/// at the decoder after each frame; the orphans counted.
fn each_flow(
    bytes: &[u8],
    flow: &mut dyn FnMut(&FlowRef<'_>),
    frame: &mut dyn FnMut(&Decoder),
) -> u64 {
    let mut r = reader_of(&[bytes.to_vec()]).unwrap();
    while r
        .visit_frame(&mut |v| {
            if let Visit::Flow(f) = v {
                flow(&f);
            }
        })
        .unwrap()
    {
        frame(&r.decoder);
    }
    r.stats().orphans
}

/// Every file's items, counts and warnings, read with frames read ahead
/// on a thread of their own, or inline; `visit` reads frame by frame.
fn read_files(
    files: &[Vec<u8>],
    ahead: bool,
    visit: bool,
) -> Result<(Vec<Item>, ReadStats, Vec<String>), StoreError> {
    let mut r = reader_of(files)?;
    if ahead {
        r.read_ahead();
    }
    let mut items = Vec::new();
    if visit {
        while r.visit_frame(&mut |v| items.push(v.into_item()))? {}
    } else {
        while let Some(it) = r.next_item()? {
            items.push(it);
        }
    }
    Ok((items, r.stats(), r.warnings().to_vec()))
}

/// Reading ahead on a thread gives what reading inline gives: the same
/// items in the same order, the same counts and warnings.
fn ahead_agrees(files: &[Vec<u8>]) {
    let inline = read_files(files, false, false).map_err(|e| e.to_string());
    for visit in [false, true] {
        let ahead = read_files(files, true, visit).map_err(|e| e.to_string());
        assert_eq!(ahead, inline, "visit {visit}");
    }
}

/// Flow events, other items, counts and warnings of a reading.
type Read = (Vec<Item>, Vec<Item>, ReadStats, Vec<String>);

/// The files read in `parts` parts: every part's flow events put back in
/// recording order (by their position), the other items (every part gets
/// all of them, the same), counts and warnings.
fn read_parts(files: &[Vec<u8>], parts: usize) -> Result<Read, StoreError> {
    let mut r = reader_of(files)?;
    let states: Vec<Vec<(Option<u64>, Item)>> = vec![Vec::new(); parts];
    let got = r
        .visit_parts(
            states,
            |st, v| {
                let seq = match &v {
                    Visit::Flow(f) => Some(f.seq),
                    Visit::Item(_) => None,
                };
                st.push((seq, v.into_item()));
            },
            &mut |_| true,
        )?
        .expect("not stopped");
    assert_eq!(got.len(), parts);
    let others = |p: &Vec<(Option<u64>, Item)>| -> Vec<Item> {
        p.iter()
            .filter(|(s, _)| s.is_none())
            .map(|(_, i)| i.clone())
            .collect()
    };
    for p in &got {
        assert_eq!(
            others(p),
            others(&got[0]),
            "every part has every other item"
        );
    }
    let mut flows: Vec<(u64, Item)> = Vec::new();
    for p in &got {
        let mine: Vec<(u64, Item)> = p
            .iter()
            .filter_map(|(s, i)| Some(((*s)?, i.clone())))
            .collect();
        assert!(
            mine.windows(2).all(|w| w[0].0 < w[1].0),
            "a part's events in order"
        );
        flows.extend(mine);
    }
    flows.sort_by_key(|(s, _)| *s);
    let flows = flows.into_iter().map(|(_, i)| i).collect();
    Ok((flows, others(&got[0]), r.stats(), r.warnings().to_vec()))
}

/// Reading in parts gives what reading in one piece gives: the same flow
/// events (each in exactly one part, in order), the same other items, the
/// same counts and warnings.
fn parts_agree(files: &[Vec<u8>]) {
    let whole = read_files(files, false, false).map_err(|e| e.to_string());
    let split = |(items, stats, warnings): (Vec<Item>, ReadStats, Vec<String>)| {
        let (flows, others): (Vec<Item>, Vec<Item>) =
            items.into_iter().partition(|i| matches!(i, Item::Flow(_)));
        (flows, others, stats, warnings)
    };
    let whole = whole.map(split);
    for parts in [1, 2, 3] {
        let got = read_parts(files, parts).map_err(|e| e.to_string());
        assert_eq!(got, whole, "{parts} parts");
    }
}

/// Many flows over many frames: opened in one frame, updated and closed in
/// later ones, some named, some still open at the end.
fn many(m: &mut Mem, n: u64) {
    let c = ctx(Some("ab12"));
    let mut open = Vec::new();
    for i in 0..n {
        let mut f = flow(
            100 + (i % 7) as u32,
            1000 + i,
            "10.231.0.9",
            80 + (i % 3) as u16,
        );
        if i % 4 == 0 {
            f.remote_name = Some(Arc::new(netwho_model::names::RemoteName {
                rname: Some(format!("n{i}.example").into()),
                source: Some(netwho_model::names::RnameSource::Dns),
                sni: None,
                alpn: None,
            }));
        }
        let t = 1_000_000_000 + i * 10_000_000;
        m.ev(Kind::Open, &f, &c, t);
        open.push((f, t));
        if i % 5 == 4 {
            m.seal();
        }
        if open.len() > 12 {
            let (mut g, t0) = open.remove(0);
            g.payload.bytes_sent = 10 * i;
            m.ev(Kind::Update, &g, &c, t0 + 1);
            g.payload.bytes_recv = 7 * i;
            g.closed = Some(MonoNs(t + 2));
            m.ev(Kind::Close, &g, &c, t + 3);
        }
    }
    for (mut g, t0) in open {
        g.payload.bytes_sent = 1;
        m.ev(Kind::Final, &g, &c, t0 + 5);
    }
    m.enc
        .end(&mut m.raw, MonoNs(1_000_000_000 + n * 10_000_000 + 10));
    m.seal();
}

/// Reading in parts (one thread each) agrees with reading in one piece,
/// over many flows and frames, segments with a clock change between them,
/// damage and orphans (and unknown entries: their own test).
#[test]
fn reading_in_parts_agrees_with_reading_in_one_piece() {
    let mut m = Mem::new();
    many(&mut m, 300);
    parts_agree(&[m.bytes.clone()]);
    // every part had flows of its own
    let (_, _, _, _) = read_parts(&[m.bytes.clone()], 3).unwrap();
    let segment = |n: u32, clock: i128| {
        let mut m = Mem::new();
        m.bytes = write::header_bytes(&Header {
            host: "h".into(),
            boot_to_unix_ns: clock,
            segment: n,
            ..Header::default()
        })
        .unwrap();
        lifecycle(&mut m);
        many(&mut m, 40);
        m.bytes
    };
    let a = segment(0, 1_700_000_000_000_000_000);
    let b = segment(1, 1_700_000_000_500_000_000);
    parts_agree(&[a.clone(), b.clone()]);
    let mut cut = a.clone();
    cut.truncate(a.len() - 20);
    let mut bad = b.clone();
    let at = bad.len() - 30;
    bad[at] ^= 0x5a;
    parts_agree(&[cut, bad]);
    // closes whose opens were in a damaged frame: orphans, counted once
    let mut m = Mem::new();
    many(&mut m, 60);
    let cut_from = format::FILE_MAGIC.len() + 8;
    let hdr_len = u32::from_le_bytes(m.bytes[12..16].try_into().unwrap()) as usize + 4;
    let first_frame = cut_from + hdr_len;
    let mut b = m.bytes.clone();
    b[first_frame] = b'X';
    let (_, stats) = read_all(&b).unwrap();
    assert!(stats.orphans > 0, "{stats:?}");
    parts_agree(&[b]);
}

/// Each part gets its share of the flows (a cookie's hash, not its
/// parity: cookies are handed out in order).
#[test]
fn parts_share_the_flows() {
    let mut m = Mem::new();
    many(&mut m, 300);
    let mut r = reader_of(std::slice::from_ref(&m.bytes)).unwrap();
    let got = r
        .visit_parts(
            vec![0u64; 3],
            |n, v| {
                if let Visit::Flow(f) = v
                    && f.kind == EventKind::Opened
                {
                    *n += 1;
                }
            },
            &mut |_| true,
        )
        .unwrap()
        .unwrap();
    assert_eq!(got.iter().sum::<u64>(), 300);
    assert!(got.iter().all(|n| *n > 50), "{got:?}");
    // and stopping says so
    let mut r = reader_of(&[m.bytes]).unwrap();
    let stopped = r
        .visit_parts(vec![(); 2], |_, _| {}, &mut |_| false)
        .unwrap();
    assert!(stopped.is_none());
}

fn piece(dir: CaptureDir, offset: u32, data: &[u8]) -> CapturePiece {
    CapturePiece {
        dir,
        offset,
        data: data.to_vec(),
    }
}

fn lifecycle(m: &mut Mem) -> Vec<Item> {
    let mut expect = Vec::new();
    let mut f = flow(4242, 7, "93.184.216.34", 443);
    // its process resolved the name; the ClientHello comes later
    let named = |sni: Option<&str>| {
        Some(Arc::new(netwho_model::names::RemoteName {
            rname: Some("example.org".into()),
            source: Some(netwho_model::names::RnameSource::Dns),
            sni: sni.map(Into::into),
            alpn: sni.map(|_| "h2".into()),
        }))
    };
    f.remote_name = named(None);
    let c0 = ctx(None);
    m.ev(Kind::Open, &f, &c0, 5_200_000_000);
    expect.push((
        FlowEvent::Opened(f.clone()),
        c0.clone(),
        5_200_000_000,
        false,
    ));
    m.seal();
    f.payload.bytes_sent = 79;
    f.remote_name = named(Some("www.example.org"));
    // payload capture: the request, in two pieces out of order
    let mut cap = Capture::default();
    cap.add(piece(CaptureDir::Sent, 6, b"HTTP/1.1\r\n"));
    cap.add(piece(CaptureDir::Sent, 0, b"GET / "));
    f.capture = Some(Arc::new(cap.clone()));
    f.wire.bytes_sent = 79 + 52;
    f.wire.packets_sent = 2;
    let mut c1 = ctx(Some("ab12"));
    c1.usage = Some(FlowUsage {
        rss_bytes: 1,
        rss_peak_bytes: 2,
        cpu_pct: Some(3.5),
        major_faults: 4,
        iowait_ns: None,
    });
    m.ev(Kind::Update, &f, &c1, 6_200_000_000);
    expect.push((
        FlowEvent::Updated(f.clone()),
        c1.clone(),
        6_200_000_000,
        false,
    ));
    f.payload.bytes_recv = 1256;
    cap.add(piece(CaptureDir::Recv, 0, b"HTTP/1.1 200 OK\r\n"));
    f.capture = Some(Arc::new(cap));
    f.closed = Some(MonoNs(6_500_000_000));
    f.close_reason = Some(CloseReason::SocketClosed);
    f.tcp_state = Some(TcpState::Close);
    m.ev(Kind::Close, &f, &c1, 6_600_000_000);
    expect.push((
        FlowEvent::Closed(f.clone()),
        c1.clone(),
        6_600_000_000,
        false,
    ));
    // a second flow, still open at the end
    let mut g = flow(4243, 8, "fd00:231::9", 53);
    g.proto = Proto::Udp;
    g.tcp_state = None;
    m.ev(Kind::Open, &g, &c0, 6_700_000_000);
    expect.push((
        FlowEvent::Opened(g.clone()),
        c0.clone(),
        6_700_000_000,
        false,
    ));
    g.payload.bytes_sent = 40;
    // its uid held its share of the flow map: its later bytes are on its
    // socket (a Completeness entry)
    g.bytes_complete = false;
    m.ev(Kind::Final, &g, &c0, 7_000_000_000);
    expect.push((
        FlowEvent::Updated(g.clone()),
        c0.clone(),
        7_000_000_000,
        true,
    ));
    m.enc.end(&mut m.raw, MonoNs(7_000_000_001));
    m.seal();
    let mut items: Vec<Item> = expect
        .into_iter()
        .map(|(ev, ctx, at, is_final)| {
            Item::Flow(Box::new(FlowItem {
                ev,
                ctx,
                at: MonoNs(at),
                is_final,
            }))
        })
        .collect();
    items.push(Item::End {
        at: MonoNs(7_000_000_001),
    });
    items
}

#[test]
fn flows_read_back_as_the_sinks_saw_them() {
    let mut m = Mem::new();
    let expect = lifecycle(&mut m);
    let (items, stats) = read_all(&m.bytes).unwrap();
    assert_eq!(items, expect);
    assert!(stats.clean_end);
    assert_eq!(stats.frames, 2);
    assert!(stats.warnings("x").is_empty(), "{:?}", stats.warnings("x"));
}

/// Reading frame by frame with borrowed flows (what reports do) gives
/// exactly the events reading item by item gives.
#[test]
fn visiting_frames_gives_the_same_events_as_reading_items() {
    let mut m = Mem::new();
    let expect = lifecycle(&mut m);
    let fr = FrameReader::new(&m.bytes[..], Path::new("mem")).unwrap();
    let mut r = Reader::from_readers(vec![("mem".into(), fr)]).unwrap();
    let mut got = Vec::new();
    while r.visit_frame(&mut |v| got.push(v.into_item())).unwrap() {}
    assert_eq!(got, expect);
    assert!(r.stats().clean_end);
}

#[test]
fn a_flow_first_seen_at_an_update_is_defined_silently() {
    let mut m = Mem::new();
    let mut f = flow(1, 2, "10.231.0.9", 80);
    f.payload.bytes_recv = 5000;
    m.ev(Kind::Update, &f, &ctx(None), 9);
    m.seal();
    let (items, _) = read_all(&m.bytes).unwrap();
    assert_eq!(items.len(), 1);
    assert!(matches!(&items[0], Item::Flow(it) if it.ev == FlowEvent::Updated(f.clone())));
}

#[test]
fn a_truncated_tail_reads_up_to_the_last_whole_frame() {
    let mut m = Mem::new();
    let expect = lifecycle(&mut m);
    let full = m.bytes.clone();
    // cut inside the second frame: the first frame's open survives
    for cut in [full.len() - 1, full.len() - 30, full.len() - 200] {
        let (items, stats) = read_all(&full[..cut]).unwrap();
        assert_eq!(items, expect[..1], "cut at {cut}");
        assert!(stats.truncated_bytes > 0);
        assert_eq!(stats.frames_corrupt, 0);
        assert!(stats.warnings("rec")[0].contains("ends inside a frame"));
    }
}

#[test]
fn a_corrupt_frame_is_skipped_and_counted() {
    let mut m = Mem::new();
    let f = flow(1, 1, "10.231.0.9", 80);
    let c = ctx(None);
    m.ev(Kind::Open, &f, &c, 1);
    m.seal();
    let start_second = m.bytes.len();
    let g = flow(2, 2, "10.231.0.9", 81);
    m.ev(Kind::Open, &g, &c, 2);
    m.seal();
    let h = flow(3, 3, "10.231.0.9", 82);
    m.ev(Kind::Open, &h, &c, 3);
    m.seal();
    // flip one byte in each position of the second frame: frames one and
    // three always survive, the second never comes back wrong
    for i in start_second..start_second + 40 {
        let mut b = m.bytes.clone();
        b[i] ^= 0x5a;
        let (items, stats) = read_all(&b).unwrap();
        let pids: Vec<u32> = items
            .iter()
            .map(|it| match it {
                Item::Flow(it) => it.ev.flow().key.proc.tgid,
                _ => 0,
            })
            .collect();
        assert_eq!(pids, vec![1, 3], "byte {i}");
        assert_eq!(stats.frames_corrupt, 1, "byte {i}");
        assert_eq!(stats.frames, 2);
    }
}

#[test]
fn unknown_major_versions_and_other_files_are_refused() {
    let m = Mem::new();
    let mut b = m.bytes.clone();
    b[8..10].copy_from_slice(&(MAJOR + 1).to_le_bytes());
    let e = read_all(&b).err().unwrap().to_string();
    assert!(e.contains(&format!("format version 2.{MINOR}")), "{e}");
    assert!(e.contains("reads version 1.x"), "{e}");
    let e = read_all(b"{\"event\":\"open\"}\n")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is not a netwho recording"), "{e}");
    let mut b = m.bytes.clone();
    let n = b.len();
    b[n - 1] ^= 1;
    let e = read_all(&b).err().unwrap().to_string();
    assert!(e.contains("header checksum"), "{e}");
    assert!(read_all(&m.bytes[..10]).is_err());
}

#[test]
fn entries_of_an_unknown_kind_are_skipped() {
    let mut m = Mem::new();
    let f = flow(1, 1, "10.231.0.9", 80);
    m.ev(Kind::Open, &f, &ctx(None), 1);
    // a kind from the future: tag 200, some body
    encode::put_varint(&mut m.raw, 3);
    m.raw.extend_from_slice(&[200, 1, 7]);
    m.ev(Kind::Close, &f, &ctx(None), 2);
    m.seal();
    let (items, stats) = read_all(&m.bytes).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(stats.entries_unknown, 1);
    // read in parts too (skipped and counted once)
    parts_agree(&[m.bytes]);
}

#[test]
fn updates_of_flows_from_a_lost_frame_are_orphans() {
    let mut m = Mem::new();
    let f = flow(1, 1, "10.231.0.9", 80);
    m.ev(Kind::Open, &f, &ctx(None), 1);
    m.seal();
    let cut_from = format::FILE_MAGIC.len() + 8;
    let hdr_len = u32::from_le_bytes(m.bytes[12..16].try_into().unwrap()) as usize + 4;
    let first_frame = cut_from + hdr_len;
    m.ev(Kind::Close, &f, &ctx(None), 2);
    m.seal();
    // damage the first frame's magic
    let mut b = m.bytes.clone();
    assert_eq!(b[first_frame..first_frame + 4], FRAME_MAGIC);
    b[first_frame] = b'X';
    let (items, stats) = read_all(&b).unwrap();
    assert!(items.is_empty());
    assert_eq!(stats.orphans, 1);
    assert_eq!(stats.frames_corrupt, 1);
}

#[test]
fn files_rotate_by_size_and_read_back_as_one() {
    let dir = std::env::temp_dir().join(format!("netwho-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.nwr");
    let mut rf = RecordingFile::create(&path, Header::default(), Some(200), false).unwrap();
    let mut enc = Encoder::new();
    let c = ctx(None);
    let mut want = Vec::new();
    for i in 0..20u32 {
        let f = flow(100 + i, u64::from(i), "10.231.0.9", 80);
        let mut raw = Vec::new();
        enc.flow(&mut raw, Kind::Open, &f, &c, MonoNs(u64::from(i)));
        enc.seal();
        rf.write_frame(&raw).unwrap();
        want.push(100 + i);
    }
    rf.sync().unwrap();
    assert!(segment_path(&path, 3).exists());
    // every segment holds every user's flows: only its owner reads it
    for p in [path.clone(), segment_path(&path, 3)] {
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
    }
    let again = RecordingFile::create(&path, Header::default(), None, false);
    assert!(again.err().unwrap().to_string().contains("already exists"));
    let mut r = Reader::open(std::slice::from_ref(&path)).unwrap();
    let mut got = Vec::new();
    while let Some(it) = r.next_item().unwrap() {
        if let Item::Flow(it) = it {
            got.push(it.ev.flow().key.proc.tgid);
        }
    }
    assert_eq!(got, want);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Counts the frames it is given; its summary is that count and the
/// frames' bytes.
struct Counting(u64, Vec<u8>);

impl Summarizer for Counting {
    fn frame(&mut self, raw: &[u8]) {
        self.0 += 1;
        self.1.extend_from_slice(raw);
    }
    fn finish(&mut self) -> Result<Vec<u8>, String> {
        let mut b = self.0.to_le_bytes().to_vec();
        b.extend_from_slice(&self.1);
        Ok(b)
    }
}

fn write_summarized(path: &Path, rotate: Option<u64>, frames: u32) -> RecordingFile {
    let mut rf = RecordingFile::create(path, Header::default(), rotate, true).unwrap();
    rf.summarize(Box::new(Counting(0, Vec::new())));
    let mut enc = Encoder::new();
    for i in 0..frames {
        let mut raw = Vec::new();
        let f = flow(100 + i, u64::from(i), "10.231.0.9", 80);
        enc.flow(&mut raw, Kind::Open, &f, &ctx(None), MonoNs(u64::from(i)));
        enc.seal();
        rf.write_frame(&raw).unwrap();
    }
    rf
}

/// A summary is written at the clean end only, private, describing the
/// file's exact bytes: a reader gets it back while the file is unchanged,
/// and not once a byte changed, after a rotation, for a killed writer, or
/// after a new recording replaced the old one.
#[test]
fn a_summary_describes_exactly_the_file_it_was_written_with() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = std::env::temp_dir().join(format!("netwho-sum-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.nwr");
    let files = vec![path.clone()];
    let mut rf = write_summarized(&path, None, 3);
    assert!(
        summary::load(&files)
            .unwrap_err()
            .contains("does not exist")
    );
    assert!(rf.finish().unwrap().is_empty());
    let sum = summary_path(&path);
    assert_eq!(std::fs::metadata(&sum).unwrap().mode() & 0o777, 0o600);
    let (at, body) = summary::load(&files).unwrap();
    assert_eq!(at, sum);
    assert_eq!(body[..8], 3u64.to_le_bytes());
    // more files than the one it describes
    let other = dir.join("other.nwr");
    std::fs::write(&other, b"x").unwrap();
    assert!(summary::load(&[path.clone(), other]).is_err());
    // the file grew since
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, b"!").unwrap();
    assert!(summary::load(&files).unwrap_err().contains("changed since"));
    // a new recording at the same path removes the old summary at once
    let rf = write_summarized(&path, None, 2);
    assert!(!sum.exists());
    drop(rf); // killed: no finish, no summary
    assert!(!sum.exists());
    // a rotation gives the summary up, and finish says why
    let mut rf = write_summarized(&path, Some(200), 20);
    assert!(segment_path(&path, 0).exists());
    let why = rf.finish().unwrap().join(" ");
    assert!(why.contains("rotated"), "{why}");
    assert!(!sum.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two segments of one recording, the wall clock moved between them, each
/// with damage: reading ahead agrees with reading inline, and the clock
/// change comes between the segments' items.
#[test]
fn reading_ahead_agrees_with_reading_inline() {
    let segment = |n: u32, clock: i128| {
        let mut m = Mem::new();
        let h = Header {
            host: "h".into(),
            boot_to_unix_ns: clock,
            segment: n,
            ..Header::default()
        };
        m.bytes = write::header_bytes(&h).unwrap();
        lifecycle(&mut m);
        m.bytes
    };
    let a = segment(0, 1_700_000_000_000_000_000);
    let b = segment(1, 1_700_000_000_500_000_000);
    ahead_agrees(&[a.clone(), b.clone()]);
    let (items, stats, warnings) = read_files(&[b.clone(), a.clone()], true, false).unwrap();
    let clocks: Vec<usize> = (0..items.len())
        .filter(|&i| matches!(items[i], Item::Clock(_)))
        .collect();
    assert_eq!(clocks.len(), 1, "{items:?}");
    assert!(matches!(items[clocks[0] - 1], Item::End { .. }));
    assert_eq!(stats.frames, 4);
    assert!(stats.clean_end && warnings.is_empty(), "{warnings:?}");
    // the first segment cut short, the second with a damaged frame
    let mut cut = a.clone();
    cut.truncate(a.len() - 20);
    let mut bad = b.clone();
    let at = bad.len() - 30;
    bad[at] ^= 0x5a;
    ahead_agrees(&[cut.clone(), bad.clone()]);
    let (_, stats, warnings) = read_files(&[cut, bad], true, true).unwrap();
    assert!(
        stats.truncated_bytes > 0 && stats.frames_corrupt == 1,
        "{stats:?}"
    );
    assert_eq!(warnings.len(), 3, "{warnings:?}");
}

/// Processes are remembered across frames up to a bound: a recording of
/// more distinct processes than that (a fork storm) reads back whole,
/// every flow with its own process, in bounded memory.
#[test]
fn more_processes_than_the_decoder_remembers_read_back_whole() {
    let mut m = Mem::new();
    let c = ctx(None);
    let n = decode::KNOWN_PROCS as u32 + 3000;
    for i in 0..n {
        m.ev(
            Kind::Open,
            &flow(100 + i, u64::from(i), "10.231.0.9", 80),
            &c,
            u64::from(i),
        );
        if i % 4096 == 4095 {
            m.seal();
        }
    }
    m.seal();
    let mut pids = Vec::new();
    let mut most = 0;
    let orphans = each_flow(
        &m.bytes,
        &mut |f| {
            pids.push(f.flow.key.proc.tgid);
            assert_eq!(f.flow.proc.key.tgid, f.flow.key.proc.tgid);
        },
        &mut |d| most = most.max(d.known_procs()),
    );
    assert_eq!(pids, (100..100 + n).collect::<Vec<_>>());
    assert!(most <= decode::KNOWN_PROCS, "{most}");
    assert!(most > 0);
    assert_eq!(orphans, 0);
}

/// A flood of processes with long command lines, each opening flows in
/// two frames far apart: the process entries the decoder remembers by
/// their bytes stay within their bounds (count, bytes; an entry over the
/// per-entry bound is decoded every time and never kept), and every flow
/// reads back with its own process, command line whole.
#[test]
fn a_flood_of_large_processes_stays_within_the_decoders_bounds() {
    let mut m = Mem::new();
    let c = ctx(None);
    let n = 9000u32;
    let cmdline = |i: u32| {
        let len = if i.is_multiple_of(10) {
            20 << 10
        } else {
            4 << 10
        };
        vec![format!("{i}:{}", "a".repeat(len))]
    };
    let mut want = Vec::new();
    for round in 0..2u64 {
        for i in 0..n {
            let cookie = round * u64::from(n) + u64::from(i);
            let mut f = flow(100 + i, cookie, "10.231.0.9", 80);
            Arc::make_mut(&mut f.proc).cmdline = cmdline(i);
            m.ev(Kind::Open, &f, &c, cookie);
            want.push(100 + i);
            if i % 512 == 511 {
                m.seal();
            }
        }
        m.seal();
    }
    let mut pids = Vec::new();
    let (mut most, mut most_bytes) = (0, 0);
    let orphans = each_flow(
        &m.bytes,
        &mut |f| {
            let tgid = f.flow.key.proc.tgid;
            pids.push(tgid);
            assert_eq!(f.flow.proc.key.tgid, tgid);
            assert!(f.flow.proc.cmdline == cmdline(tgid - 100), "{tgid}");
        },
        &mut |d| {
            let (count, bytes, held, largest) = d.raw_procs();
            assert_eq!(bytes, held, "the bytes kept are counted as they are");
            assert!(count <= decode::KNOWN_PROCS, "{count}");
            assert!(bytes <= decode::RAW_PROCS_BYTES, "{bytes}");
            assert!(largest <= decode::RAW_PROC_MAX, "{largest}");
            most = most.max(count);
            most_bytes = most_bytes.max(bytes);
        },
    );
    assert_eq!(pids, want);
    // the flood reached the bound on bytes
    assert!(most_bytes > decode::RAW_PROCS_BYTES * 3 / 4, "{most_bytes}");
    assert!(most > 0);
    assert_eq!(orphans, 0);
}

/// A reader dropped with most of a recording unread stops its thread
/// (the drop waits for it: a thread that kept reading would hang here).
#[test]
fn a_reader_dropped_early_stops_reading_ahead() {
    let mut m = Mem::new();
    let c = ctx(None);
    for i in 0..200u32 {
        m.ev(
            Kind::Open,
            &flow(i, u64::from(i), "10.231.0.9", 80),
            &c,
            u64::from(i),
        );
        m.seal();
    }
    let fr = FrameReader::new(std::io::Cursor::new(m.bytes), Path::new("mem")).unwrap();
    let mut r = Reader::from_readers(vec![("mem".into(), fr)]).unwrap();
    r.read_ahead();
    let mut seen = 0;
    assert!(r.visit_frame(&mut |_| seen += 1).unwrap());
    assert_eq!(seen, 1);
    drop(r);
}

/// The lifecycle recording with bytes flipped (`(where, xor)`) and cut
/// short.
fn damaged(flips: Vec<(usize, u8)>, cut: usize) -> Vec<u8> {
    let mut m = Mem::new();
    lifecycle(&mut m);
    let mut b = m.bytes;
    for (i, x) in flips {
        let n = b.len();
        b[i % n] ^= x;
    }
    let n = b.len();
    b.truncate(cut % (n + 1));
    b
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
    /// Whatever the damage, reading ahead agrees with reading inline.
    #[test]
    fn reading_ahead_agrees_on_damaged_recordings(
        flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..6),
        cut in proptest::prelude::any::<usize>(),
    ) {
        let b = damaged(flips, cut);
        ahead_agrees(std::slice::from_ref(&b));
        parts_agree(&[b]);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
    /// The reader never panics, whatever the bytes after a valid header.
    #[test]
    fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
        let mut b = Mem::new().bytes;
        b.extend_from_slice(&tail);
        fuzz_read(&b);
    }

    /// Nor do mutations of a valid recording.
    #[test]
    fn mutated_recordings_never_panic(
        flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..8),
        cut in proptest::prelude::any::<usize>(),
    ) {
        fuzz_read(&damaged(flips, cut));
    }
}

/// The lifecycle recording, byte for byte, is a golden file: the format
/// changes only on purpose (`NETWHO_BLESS=1` rewrites it, and the fuzz
/// corpus starts from it).
#[test]
fn the_format_matches_its_golden_file() {
    let mut m = Mem::new();
    let expect = lifecycle(&mut m);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/lifecycle.nwr");
    if std::env::var_os("NETWHO_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &m.bytes).unwrap();
    }
    let golden = std::fs::read(&path).unwrap();
    assert!(
        golden == m.bytes,
        "the encoding changed: bump the format version or bless"
    );
    let (items, _) = read_all(&golden).unwrap();
    assert_eq!(items, expect);
}

/// An older recording (`golden`, of minor version `minor`) still reads:
/// what the lifecycle recording holds, less what `older` takes out of
/// each flow (the fields that version did not have).
fn older_version_reads(golden: &str, minor: u16, older: fn(&mut Flow)) {
    let mut m = Mem::new();
    let mut expect = lifecycle(&mut m);
    for it in &mut expect {
        if let Item::Flow(f) = it {
            match &mut f.ev {
                FlowEvent::Opened(x) | FlowEvent::Updated(x) | FlowEvent::Closed(x) => older(x),
            }
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(golden);
    let old = std::fs::read(&path).unwrap();
    assert_eq!(u16::from_le_bytes([old[10], old[11]]), minor, "{golden}");
    let (items, stats) = read_all(&old).unwrap();
    assert!(stats.clean_end);
    assert_eq!(items, expect);
}

/// A 1.1 recording (before `Completeness`) still reads, every flow complete
/// and without names.
#[test]
fn an_older_minor_version_still_reads() {
    older_version_reads("lifecycle-1.1.nwr", 1, |x| {
        x.bytes_complete = true;
        x.remote_name = None;
    });
}

/// A 1.2 recording (before `Named`) still reads: its flows have no names.
#[test]
fn a_recording_made_before_names_still_reads() {
    older_version_reads("lifecycle-1.2.nwr", 2, |x| x.remote_name = None);
}

/// A crafted recording's names are cut to what netwho writes, and a name
/// entry for a flow that never opens names nothing.
#[test]
fn crafted_names_are_bounded() {
    use super::format::{Entry, NamedRec};
    let huge = "x".repeat(1 << 20);
    let n = Entry::Named(NamedRec {
        flow: 99,
        rname: Some(huge.clone()),
        source: 200,
        sni: Some(huge),
        alpn: None,
    });
    let bytes = postcard::to_allocvec(&n).unwrap();
    let back: Entry = postcard::from_bytes(&bytes).unwrap();
    let Entry::Named(rec) = back else { panic!() };
    let name = convert::bounded_name(rec.rname.unwrap());
    assert_eq!(name.len(), netwho_model::names::NAME_MAX);
    assert_eq!(convert::rname_source(200), None);
}
