//! `newsdedup`: parse the command line, run, print the summary, exit.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use newsdedup::cli::{Cli, Command, IndexCommand};
use newsdedup::config::Input;
use newsdedup::diag;
use newsdedup::error::{Error, exit};
use newsdedup::interrupt;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Clean(args) => clean(*args),
        Command::Index(cmd) => index(cmd),
    };
    ExitCode::from(code as u8)
}

fn clean(args: newsdedup::cli::CleanArgs) -> i32 {
    let result = args.into_config().and_then(|cfg| {
        // Standard input is read in one blocking call that a flag cannot
        // stop: there the default signal behaviour (end at once) is kept.
        if matches!(cfg.input, Input::Path(_)) {
            interrupt::install().context("cannot install the signal handler")?;
        }
        newsdedup::pipeline::run(&cfg).map(|r| (cfg, r))
    });
    match result {
        Ok((cfg, report)) => {
            if !cfg.quiet {
                diag::text(&report.summary());
            }
            if report.has_failures() { exit::PARTIAL } else { exit::SUCCESS }
        }
        Err(err) if err.is::<newsdedup::pipeline::BrokenPipe>() => {
            diag::line(format_args!("newsdedup: {err}"));
            exit::BROKEN_PIPE
        }
        Err(err) => {
            diag::line(format_args!("newsdedup: {err:#}"));
            match err.downcast_ref::<Error>() {
                Some(Error::Interrupted) => exit::INTERRUPTED,
                _ => exit::FATAL,
            }
        }
    }
}

fn index(cmd: IndexCommand) -> i32 {
    match cmd.run() {
        Ok(()) => exit::SUCCESS,
        Err(err) => {
            diag::line(format_args!("newsdedup: {err}"));
            exit::FATAL
        }
    }
}
