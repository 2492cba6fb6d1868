//! Streamed outputs: a JSONL shard's cleaned lines, written as they are
//! decided, and standard output. A shard's output is a temporary file
//! renamed into place at the end (tree output, in place), the one stdout
//! stream shared by every shard, or nowhere (dry run). A closed stdout is
//! [`Error::BrokenPipe`].

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{TempPath, make_backup, temp_beside};
use crate::config::Output;
use crate::error::{Error, Result};
use crate::jsonl::{Compression, Sink};

/// The name standard output goes by in messages.
const STDOUT: &str = "<stdout>";

/// In place: the original's permissions, and the backup suffix if any.
pub struct InPlace {
    like: fs::Metadata,
    backup: Option<String>,
}

/// Where a shard's output goes.
pub enum ShardOut<'a> {
    /// A temporary file beside `dest`, renamed to it by [`ShardOut::commit`].
    File {
        /// The (compressing) writer of the temporary file.
        sink: Box<Sink>,
        /// The temporary file, removed unless committed.
        tmp: TempPath,
        /// The final name.
        dest: PathBuf,
        /// In place: what the replaced file had.
        in_place: Option<Box<InPlace>>,
    },
    /// The run's standard output stream, opened by the first shard.
    Stdout(&'a mut Option<Sink>),
    /// A dry run.
    Nowhere,
}

impl<'a> ShardOut<'a> {
    /// The output of the shard read from `path` (relative name `rel`), by
    /// the run's `output`; `stdout` is the run's shared stream.
    pub fn open(
        output: &Output,
        compress: Compression,
        path: &Path,
        rel: &Path,
        stdout: &'a mut Option<Sink>,
    ) -> Result<ShardOut<'a>> {
        let (dest, in_place) = match output {
            Output::DryRun => return Ok(ShardOut::Nowhere),
            Output::Stdout => {
                if stdout.is_none() {
                    let sink = Sink::new(Box::new(io::stdout()), compress).map_err(stdout_error)?;
                    *stdout = Some(sink);
                }
                return Ok(ShardOut::Stdout(stdout));
            }
            Output::Dir(out) => (out.join(rel), None),
            Output::InPlace { backup } => {
                let like = fs::metadata(path).map_err(|e| Error::io(path, e))?;
                (path.to_path_buf(), Some(Box::new(InPlace { like, backup: backup.clone() })))
            }
        };
        let (file, tmp) = temp_beside(&dest)?;
        let sink = Sink::new(Box::new(file), Compression::of_path(&dest)).map_err(|e| Error::io(&dest, e))?;
        Ok(ShardOut::File { sink: Box::new(sink), tmp, dest, in_place })
    }

    /// True when the shard is rewritten in place.
    pub fn is_in_place(&self) -> bool {
        matches!(self, ShardOut::File { in_place: Some(_), .. })
    }

    /// Appends bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            ShardOut::File { sink, dest, .. } => sink.write_all(bytes).map_err(|e| Error::io(dest, e)),
            ShardOut::Stdout(Some(sink)) => sink.write_all(bytes).map_err(stdout_error),
            _ => Ok(()),
        }
    }

    /// Completes the output: a file is renamed into place (in place, with
    /// the original's permissions, after its backup is made).
    pub fn commit(self) -> Result<()> {
        self.commit_with(|_| Ok(()))
    }

    /// [`ShardOut::commit`], calling `before` with the complete temporary
    /// file's path just before it is renamed into place (an in-place run
    /// records what replaces the shard, see [`crate::index::ReplayLog`]).
    pub fn commit_with(self, before: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        if let ShardOut::File { sink, tmp, dest, in_place } = self {
            let file = sink.finish().map_err(|e| Error::io(&dest, e))?;
            drop(file);
            before(tmp.path())?;
            if let Some(InPlace { like, backup }) = in_place.map(|b| *b) {
                fs::set_permissions(tmp.path(), like.permissions()).map_err(|e| Error::io(&dest, e))?;
                if let Some(suffix) = backup {
                    make_backup(&dest, &suffix)?;
                }
            }
            tmp.persist(&dest)?;
        }
        Ok(())
    }
}

/// A write error on standard output; a closed pipe is [`Error::BrokenPipe`].
fn stdout_error(e: io::Error) -> Error {
    Error::write(Path::new(STDOUT), e)
}

/// Ends the run's standard output stream (the compressor's trailer).
pub fn finish_stdout(stdout: Option<Sink>) -> Result<()> {
    match stdout {
        Some(sink) => sink.finish().map(drop).map_err(stdout_error),
        None => Ok(()),
    }
}

/// Writes a whole text document to standard output.
pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).map_err(stdout_error)
}
