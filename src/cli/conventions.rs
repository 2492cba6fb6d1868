//! The command line's conventions: completions and the man page, `index
//! stats --json`, and the inputs of `clean` (several paths; a `--annotate`
//! value that is really an input).

use std::path::PathBuf;

use super::{CleanArgs, Cli, Command};
use crate::check::ConfigError;
use crate::error::Error;

/// `index stats --json`: the figures as one JSON object.
pub(super) fn stats_json(s: &crate::index::IndexStats) -> serde_json::Value {
    let last_run = s.last_run.as_ref().map(|r| serde_json::json!({"batch": r.batch, "label": r.label}));
    serde_json::json!({
        "keys": s.keys,
        "bytes_on_disk": s.bytes_on_disk,
        "segments": s.segments,
        "segment_keys": s.segment_keys,
        "runs": s.runs,
        "batches": s.batches,
        "last_run": last_run,
        "last_batch": s.last_batch.as_ref().map(|b| format!("{b:?}")),
    })
}

/// Prints a completion script (`completions`) or the man page (`man`).
pub fn print_help_file(command: &Command) -> std::io::Result<()> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    // Rendered in memory first: clap_complete panics on a write error.
    let mut buf = Vec::new();
    match command {
        Command::Completions { shell } => clap_complete::generate(*shell, &mut cmd, "newsdedup", &mut buf),
        Command::Man => clap_mangen::Man::new(cmd).render(&mut buf)?,
        _ => {}
    }
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, &buf)?;
    std::io::Write::flush(&mut out)
}

impl CleanArgs {
    /// The inputs, with a `--annotate` value that is really an input (an
    /// existing path or `-`, given before any input) moved back among them.
    pub(super) fn inputs(&mut self) -> Result<Vec<PathBuf>, Error> {
        let mut inputs = std::mem::take(&mut self.input);
        if let Some(value) = self.annotate.clone()
            && (value == "-" || std::path::Path::new(&value).exists())
        {
            if !inputs.is_empty() {
                let msg = format!(
                    "--annotate {value}: {value:?} names a file; write --annotate=FIELD, or put --annotate after \
                     the inputs"
                );
                return Err(ConfigError::Usage(msg).into());
            }
            inputs.push(PathBuf::from(value));
            self.annotate = Some("newsdedup".to_owned());
        }
        if inputs.is_empty() {
            let msg = "no input given: name files, directories, or `-` for standard input";
            return Err(ConfigError::Usage(msg.into()).into());
        }
        Ok(inputs)
    }
}
