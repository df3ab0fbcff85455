//! The `netwho` binary: `main` parses the command line, runs the command
//! ([`cmd::run`]) and turns its failure into an exit code. The commands
//! live in `cmd/`, one file each; the one place that wires filter → scope →
//! sensor → pipeline is [`live`].

mod args;
mod cmd;
mod config;
mod failure;
mod keys;
mod live;
mod logger;
mod select;
mod view;

use args::Cli;
use failure::Failure;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = {
        use clap::FromArgMatches as _;
        let m = args::command().get_matches();
        Cli::from_arg_matches(&m).unwrap_or_else(|e| e.exit())
    };
    logger::init(cli.verbose);
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            let mut shown = error.to_string();
            eprintln!("netwho: error: {shown}");
            // a cause the message already quotes is not said twice
            for cause in error.chain().skip(1) {
                let c = cause.to_string();
                if !shown.contains(&c) {
                    eprintln!("  caused by: {c}");
                    shown.push_str(&c);
                }
            }
            ExitCode::from(code)
        }
    }
}
