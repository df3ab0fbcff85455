//! `netwho top` from a recording (`-r`), and `top`'s table sinks; the live
//! view is wired by [`crate::live`], the view itself is [`crate::view`].

use crate::args::TopArgs;
use crate::failure::Failure;
use crate::select::read_filter;
use netwho_pipeline::Sink;
use netwho_pipeline::replay::{Controls, ReplayConfig, ReplayPos};
use netwho_pipeline::topsink::{TopConfig, TopFormat, TopSink};
use netwho_sink::output::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// `top`'s text or JSON tables on standard output.
pub fn sinks(t: &TopArgs) -> Vec<Box<dyn Sink>> {
    let sink = TopSink::new(
        TopConfig {
            format: if t.json {
                TopFormat::Json
            } else {
                TopFormat::Text
            },
            interval: t.interval,
            count: t.count,
            limit: t.limit,
            bits: t.bits,
            tree: t.tree,
            by_total: t.sort == crate::args::TopSort::Total,
        },
        Output::stdout(),
    );
    vec![Box::new(sink)]
}

/// `netwho top -r FILE`.
pub fn replay(t: &TopArgs, community_seed: u16, stop: &Arc<AtomicBool>) -> Result<(), Failure> {
    let Some(path) = &t.read else {
        return Ok(());
    };
    let reader = crate::cmd::replay::open(std::slice::from_ref(path), community_seed)?;
    let filter = read_filter(&t.select, None)?;
    let speed = (t.speed > 0.0).then_some(t.speed);
    if crate::view::wanted(t) {
        // the view filters (its bar can change it), so the replay passes all
        let local = reader.header().local_addrs.iter().copied().collect();
        let (link, cmds, show) = crate::view::replay_link();
        let (sink, view) = crate::view::start(t, filter, local, Some(link), None, stop)?;
        let paths = vec![path.clone()];
        let controls = Controls {
            cmds,
            reopen: Box::new(move || crate::cmd::replay::reader(&paths, community_seed)),
            show,
        };
        let cfg = ReplayConfig {
            filter: None,
            since: None,
            until: None,
            speed,
            live: false,
        };
        let res = crate::cmd::replay::run(reader, vec![sink], cfg, Some(controls), stop);
        if res.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        let shown = view.join();
        return res.and(shown);
    }
    let cfg = ReplayConfig {
        filter,
        since: None,
        until: None,
        speed,
        live: false,
    };
    // on a terminal: keys pause, change the speed and seek
    let term = crate::keys::TermGuard::raw_keys();
    let controls = term.as_ref().map(|_| {
        eprintln!("netwho top -r: {}", crate::keys::HELP);
        let paths = vec![path.clone()];
        Controls {
            cmds: crate::keys::spawn_reader(),
            reopen: Box::new(move || crate::cmd::replay::reader(&paths, community_seed)),
            show: Box::new(|p: ReplayPos| {
                eprintln!("netwho top -r: {}", crate::view::position(&p))
            }),
        }
    });
    let res = crate::cmd::replay::run(reader, sinks(t), cfg, controls, stop);
    drop(term);
    res
}
