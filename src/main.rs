//! `newsdedup`: parse the command line, run, print the summary, exit.

use clap::Parser;
use newsdedup::cli::scale::ScaleCommand;
use newsdedup::cli::{Cli, Command, IndexCommand};
use newsdedup::config::Input;
use newsdedup::error::{Error, ExitCode};
use newsdedup::{diag, interrupt, threads};

/// mimalloc, called as `newsdedup::allocator` explains.
#[global_allocator]
static GLOBAL: newsdedup::allocator::Mimalloc = newsdedup::allocator::Mimalloc;

fn main() -> std::process::ExitCode {
    newsdedup::allocator::tune();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Clean(args) => clean(*args),
        Command::Index(cmd) => index(cmd),
        Command::Scale(ScaleCommand::Plan(_)) => {
            // The arguments as given are frozen in the manifest.
            let args: Vec<std::ffi::OsString> = std::env::args_os().skip(2).collect();
            scaled(newsdedup::scale::plan_args(&args))
        }
        Command::Scale(ScaleCommand::Keys { work, shard }) => scaled(newsdedup::scale::keys(&work, shard)),
        Command::Scale(ScaleCommand::Apply { work, shard, out }) => scaled(newsdedup::scale::apply(&work, shard, &out)),
        Command::Scale(ScaleCommand::MergeReport { work, report, explain, rejects }) => {
            scaled(newsdedup::scale::merge_report(&work, report.as_deref(), explain.as_deref(), rejects.as_deref()))
        }
        cmd @ (Command::Completions { .. } | Command::Man) => match newsdedup::cli::print_help_file(&cmd) {
            Ok(()) => ExitCode::Success,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::of(&Error::BrokenPipe),
            Err(e) => {
                diag::line(format_args!("newsdedup: <stdout>: {e}"));
                ExitCode::Fatal
            }
        },
    };
    if let Some(peak) = threads::peak() {
        diag::line(format_args!("newsdedup: threads: at most {peak} alive"));
    }
    code.into()
}

fn clean(args: newsdedup::cli::CleanArgs) -> ExitCode {
    let result = args.into_config().and_then(|cfg| {
        // Standard input is read in one blocking call that a flag cannot
        // stop: there the default signal behaviour (end at once) is kept.
        if !matches!(cfg.input, Input::Stdin) {
            interrupt::install().map_err(|e| Error::Signal(e.to_string()))?;
        }
        newsdedup::pipeline::run(&cfg).map(|r| (cfg, r))
    });
    match result {
        Ok((cfg, report)) => {
            if !cfg.quiet {
                diag::text(&report.summary());
            }
            ExitCode::of_run(report.has_failures())
        }
        Err(err) => {
            diag::line(format_args!("newsdedup: {err}"));
            ExitCode::of(&err)
        }
    }
}

/// A scale-out step: its JSON summary on stdout.
fn scaled(outcome: Result<String, Error>) -> ExitCode {
    match outcome {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::Success
        }
        Err(err) => {
            diag::line(format_args!("newsdedup: {err}"));
            ExitCode::of(&err)
        }
    }
}

fn index(cmd: IndexCommand) -> ExitCode {
    match cmd.run() {
        Ok(()) => ExitCode::Success,
        Err(err) => {
            diag::line(format_args!("newsdedup: {err}"));
            ExitCode::Fatal
        }
    }
}
