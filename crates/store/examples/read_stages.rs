//! Where reading a recording spends its time, stage by stage: frames
//! only (read, checksum, decompress), entries parsed, events decoded.
//! `cargo run --release -p netwho-store --example read_stages -- FILE.nwr`

#![expect(
    clippy::expect_used,
    clippy::disallowed_methods,
    reason = "a measurement: it times itself, and a file it cannot read ends it"
)]

use netwho_store::recording::{Decoder, Entries, FrameReader, ReadStats, Visit};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

fn frames(path: &Path) -> FrameReader<BufReader<File>> {
    let f = File::open(path).expect("open");
    FrameReader::new(BufReader::new(f), path).expect("a recording")
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: read_stages FILE.nwr");
        std::process::exit(2);
    };
    let path = Path::new(&path);
    // a second argument runs that stage only (1, 2, 3: to profile it)
    let only: Option<u8> = std::env::args().nth(2).and_then(|s| s.parse().ok());
    let run = |n: u8| only.is_none_or(|o| o == n);
    let mut raw = Vec::new();

    if run(1) {
        let t = Instant::now();
        let mut fr = frames(path);
        let mut bytes = 0usize;
        while fr.next_frame_into(&mut raw).expect("read") {
            bytes += raw.len();
        }
        println!(
            "frames only:   {:6.2} s ({bytes} bytes)",
            t.elapsed().as_secs_f64()
        );
    }

    if run(2) {
        let t = Instant::now();
        let mut fr = frames(path);
        let mut n = 0u64;
        while fr.next_frame_into(&mut raw).expect("read") {
            n += Entries::new(&raw).count() as u64;
        }
        println!(
            "+ entries:     {:6.2} s ({n} entries)",
            t.elapsed().as_secs_f64()
        );
    }

    if run(3) {
        let t = Instant::now();
        let mut fr = frames(path);
        let mut dec = Decoder::new();
        let mut stats = ReadStats::default();
        let mut flows = 0u64;
        while fr.next_frame_into(&mut raw).expect("read") {
            dec.frame_visit(&raw, &mut stats, &mut |v| {
                if let Visit::Flow(_) = v {
                    flows += 1;
                }
            });
        }
        println!(
            "+ decoded:     {:6.2} s ({flows} flow events)",
            t.elapsed().as_secs_f64()
        );
    }
}
