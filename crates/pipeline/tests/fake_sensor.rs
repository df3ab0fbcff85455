//! The whole run loop without root: a scripted sensor and a manual clock
//! drive `Pipeline::run` into the real JSON log sink. What comes out is what
//! `netwho log --json --on both` prints: the ready status first, the flows'
//! records, a status that carries the sensor's losses, the totals of a flow
//! still open at the end, and the final status.

use netwho_auditlog::logsink::{LogFormat, LogSink, On};
use netwho_enrich::procfs::Procfs;
use netwho_model::collector::{SensorInfo, SensorStats};
use netwho_model::{
    Attribution, CounterHint, Direction, Endpoint, FlowOpen, KernelKey, MonoNs, Payload, ProcKey,
    Proto, SensorEvent, SockCookie, SocketTuple,
};
use netwho_pipeline::enricher::Enricher;
use netwho_pipeline::{Clocks, Pipeline, PipelineConfig, Sink, Stopped};
use netwho_sensor::{Sensor, SensorError};
use netwho_sink::output::Output;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

type Shared = netwho_sink::output::MemoryOutput;

/// A sensor that plays a script: one list of events per poll, then asks
/// the run to stop. Its losses grow as the script says.
struct Scripted {
    polls: VecDeque<(Vec<SensorEvent>, u64)>,
    at_finish: Vec<SensorEvent>,
    ringbuf_drops: u64,
    stop: Arc<AtomicBool>,
}

impl Sensor for Scripted {
    fn info(&self) -> SensorInfo {
        SensorInfo {
            attribution: "ebpf",
            hooks: vec!["scripted"],
            degradations: Vec::new(),
        }
    }

    fn startup(&mut self, _out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        Ok(())
    }

    fn poll(&mut self, _timeout: Duration, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        match self.polls.pop_front() {
            Some((events, drops)) => {
                out.extend(events);
                self.ringbuf_drops += drops;
            }
            None => self.stop.store(true, Ordering::Relaxed),
        }
        Ok(())
    }

    fn scan(&mut self, _out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<SensorEvent>) -> Result<(), SensorError> {
        out.append(&mut self.at_finish);
        Ok(())
    }

    fn stats(&mut self) -> SensorStats {
        SensorStats {
            ringbuf_drops: self.ringbuf_drops,
            ..SensorStats::default()
        }
    }
}

const SEC: u64 = 1_000_000_000;

fn open(tgid: u32, cookie: u64, proto: Proto, rport: u16, at: u64) -> SensorEvent {
    let remote = Endpoint::new([10, 231, 9, 2].into(), rport);
    SensorEvent::FlowOpen(FlowOpen {
        key: KernelKey {
            tgid,
            cookie: SockCookie(cookie),
            remote,
        },
        proc: ProcKey {
            tgid,
            start_ticks: 7,
        },
        at: MonoNs(at),
        tuple: SocketTuple {
            proto,
            local: Endpoint::new([10, 231, 9, 1].into(), 40000 + rport),
            remote,
            tcp_state: None,
            netns: 1,
            packet: false,
        },
        direction: Direction::Outbound,
        comm: format!("fake{tgid}"),
        uid: 0,
        gid: 0,
        cgroup_id: 0,
        attribution: Attribution::Ebpf,
        untracked: false,
    })
}

fn counters(tgid: u32, cookie: u64, rport: u16, sent: u64, recv: u64) -> SensorEvent {
    SensorEvent::Counters {
        key: KernelKey {
            tgid,
            cookie: SockCookie(cookie),
            remote: Endpoint::new([10, 231, 9, 2].into(), rport),
        },
        payload: Payload {
            bytes_sent: sent,
            bytes_recv: recv,
        },
        hint: CounterHint::default(),
    }
}

#[test]
fn a_scripted_sensor_drives_the_whole_loop_into_the_log() {
    // an empty /proc: no process of this machine enters the run
    let proc_dir = std::env::temp_dir().join(format!("netwho-fake-proc-{}", std::process::id()));
    std::fs::create_dir_all(&proc_dir).expect("a directory");
    let stop = Arc::new(AtomicBool::new(false));
    let sensor = Scripted {
        polls: VecDeque::from([
            (
                vec![
                    open(4242, 1, Proto::Tcp, 443, 10 * SEC),
                    open(4243, 2, Proto::Udp, 53, 10 * SEC),
                ],
                0,
            ),
            (
                vec![
                    counters(4242, 1, 443, 1000, 2000),
                    SensorEvent::SockClosed {
                        cookie: SockCookie(1),
                        at: MonoNs(11 * SEC),
                    },
                ],
                3,
            ),
            (Vec::new(), 0),
            (Vec::new(), 0),
            (Vec::new(), 0),
        ]),
        at_finish: vec![counters(4243, 2, 53, 64, 128)],
        ringbuf_drops: 0,
        stop: Arc::clone(&stop),
    };
    // a manual clock: each read is 400 ms later
    let now = Arc::new(AtomicU64::new(10 * SEC));
    let tick = Arc::clone(&now);
    let clocks = Clocks {
        boot: Box::new(move || MonoNs(tick.fetch_add(400_000_000, Ordering::Relaxed))),
        wall: Box::new(|| netwho_model::time::WallClock {
            boot_to_unix_ns: 1_800_000_000 * i128::from(SEC),
        }),
    };
    let buf = Shared::default();
    let sink: Box<dyn Sink> = Box::new(LogSink::new(
        LogFormat::Json,
        On::Both,
        Output::spawn(Box::new(buf.clone())),
    ));
    let cfg = PipelineConfig {
        status_every: Duration::from_secs(1),
        ..PipelineConfig::default()
    };
    let mut p = Pipeline::new(
        sensor,
        Enricher::new(Procfs::at(&proc_dir), None),
        vec![sink],
        cfg,
        clocks,
    );
    let stopped = p.run(&stop).expect("the run");
    let _ = std::fs::remove_dir_all(&proc_dir);
    assert_eq!(stopped, Stopped::Signal);

    let text = String::from_utf8(buf.bytes()).expect("UTF-8");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| l["event"].as_str().unwrap_or("?"))
        .collect();
    // the ready status comes before anything else
    assert_eq!(lines[0]["event"], "status", "{kinds:?}");
    assert_eq!(lines[0]["ready"], true, "{}", lines[0]);
    // the TCP flow: opened, then closed with its exact bytes
    let tcp: Vec<&Value> = lines.iter().filter(|l| l["pid"] == 4242).collect();
    assert_eq!(tcp.len(), 2, "{kinds:?}");
    assert_eq!(tcp[0]["event"], "open");
    assert_eq!(tcp[1]["event"], "close");
    assert_eq!(tcp[1]["bytes_sent"], 1000);
    assert_eq!(tcp[1]["bytes_recv"], 2000);
    assert_eq!(tcp[1]["comm"], "fake4242");
    // a status during the run carries the ring buffer's loss
    let statuses: Vec<&Value> = lines.iter().filter(|l| l["event"] == "status").collect();
    assert!(
        statuses
            .iter()
            .any(|s| s["drops"]["ringbuf"] == 3 && s["final"] != true),
        "{statuses:?}"
    );
    // the UDP flow still open at the end: its totals, then the final status
    let udp: Vec<&Value> = lines.iter().filter(|l| l["pid"] == 4243).collect();
    let last = udp.last().expect("the UDP flow's records");
    assert_eq!(last["bytes_sent"], 64, "{udp:?}");
    assert_eq!(last["bytes_recv"], 128, "{udp:?}");
    let end = lines.last().expect("a line");
    assert_eq!(end["event"], "status");
    assert_eq!(end["final"], true, "{end}");
    assert_eq!(end["drops"]["ringbuf"], 3);
}
