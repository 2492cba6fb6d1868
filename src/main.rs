//! `newsdedup`: parse the command line, run, print the summary, exit.

use std::process::ExitCode;

use clap::Parser;
use newsdedup::cli::{Cli, Command};
use newsdedup::error::exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Clean(args) => clean(args),
    };
    ExitCode::from(code as u8)
}

fn clean(args: newsdedup::cli::CleanArgs) -> i32 {
    let result = args.into_config().and_then(|cfg| newsdedup::pipeline::run(&cfg).map(|r| (cfg, r)));
    match result {
        Ok((cfg, report)) => {
            if !cfg.quiet {
                eprint!("{}", report.summary());
            }
            if report.has_failures() { exit::PARTIAL } else { exit::SUCCESS }
        }
        Err(err) if err.is::<newsdedup::pipeline::BrokenPipe>() => exit::SUCCESS,
        Err(err) => {
            eprintln!("newsdedup: {err:#}");
            exit::FATAL
        }
    }
}
