//! Redraw benchmark of the interactive view: the cost of one frame (build
//! the view state from the model, render it at 200×50) and of folding one
//! interval's batch, with 100 open flows as the baseline and 1,000 and
//! 10,000 as the load, every figure as a ratio to the baseline measured in
//! the same run. Not a test: run by `bench/run`, or
//!
//!     cargo run --release -p netwho-tui --example redraw_bench

#![expect(
    clippy::expect_used,
    reason = "a benchmark: a failed draw ends it, with the reason"
)]
#![expect(clippy::disallowed_methods, reason = "a benchmark measures real time")]

use netwho_model::record::{Context, Names};
use netwho_model::time::WallClock;
use netwho_model::{Endpoint, Flow, FlowKey, MonoNs, ProcKey, SockCookie};
use netwho_tui::state::model::Model;
use netwho_tui::state::screen;
use netwho_tui::state::ui::Ui;
use netwho_tui::state::{Batch, FlowUpdate, ViewKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::sync::Arc;
use std::time::Instant;

const S: u64 = 1_000_000_000;

/// `n` open flows of n/10 processes, with bytes moving on every one.
fn batch(n: u64, now: MonoNs, round: u64, names: &Arc<Names>) -> Batch {
    let flows = (0..n)
        .map(|i| {
            let remote = Endpoint::new(
                std::net::IpAddr::from([10, 231, (i / 250) as u8, (i % 250) as u8 + 1]),
                443,
            );
            let mut f = Flow::example(1000 + (i / 10) as u32, i + 1, remote);
            f.key = FlowKey {
                proc: ProcKey::from_start_ticks(1000 + (i / 10) as u32, 400),
                cookie: SockCookie(i + 1),
                remote,
            };
            f.payload.bytes_sent = round * (100 + i);
            f.payload.bytes_recv = round * (1000 + 3 * i);
            FlowUpdate {
                flow: f,
                ctx: Context {
                    names: names.clone(),
                    ..Context::default()
                },
                closed: false,
            }
        })
        .collect();
    Batch {
        now,
        wall: WallClock::default(),
        flows,
        ..Batch::default()
    }
}

struct Cost {
    apply_us: f64,
    frame_us: [f64; 2],
}

fn measure(n: u64, frames: u32) -> Cost {
    let names = Arc::new(Names {
        user: "alice".into(),
        unit: "session-3.scope".into(),
        ..Names::default()
    });
    let mut m = Model::new(60 * S, None, Default::default());
    let mut now = MonoNs(1000 * S);
    let rounds = 20;
    let mut apply = 0.0;
    for r in 1..=rounds {
        now = now.add_ns(S);
        let b = batch(n, now, r, &names);
        let t = Instant::now();
        m.apply(b);
        apply += t.elapsed().as_secs_f64();
    }
    let mut ui = Ui::new(true, false);
    ui.page = 46;
    let mut term = Terminal::new(TestBackend::new(200, 50)).expect("a test terminal");
    let mut frame_us = [0.0; 2];
    for (i, view) in [ViewKind::Processes, ViewKind::Connections]
        .into_iter()
        .enumerate()
    {
        ui.view = view;
        let t = Instant::now();
        for _ in 0..frames {
            let vs = screen::build(&m, &ui);
            term.draw(|f| netwho_tui::view::render(f, &vs))
                .expect("drawn");
        }
        frame_us[i] = t.elapsed().as_secs_f64() * 1e6 / f64::from(frames);
    }
    Cost {
        apply_us: apply * 1e6 / rounds as f64,
        frame_us,
    }
}

fn main() {
    let frames = 40;
    let base = measure(100, frames);
    println!("interactive view: one frame at 200x50 and one interval's batch (every flow moved)");
    println!(
        "{:>12} {:>14} {:>8} {:>16} {:>8} {:>16} {:>8}",
        "open flows", "batch µs", "ratio", "frame procs µs", "ratio", "frame conns µs", "ratio"
    );
    for n in [100, 1_000, 10_000] {
        let c = measure(n, frames);
        println!(
            "{n:>12} {:>14.0} {:>8.2} {:>16.0} {:>8.2} {:>16.0} {:>8.2}",
            c.apply_us,
            c.apply_us / base.apply_us,
            c.frame_us[0],
            c.frame_us[0] / base.frame_us[0],
            c.frame_us[1],
            c.frame_us[1] / base.frame_us[1],
        );
    }
}
