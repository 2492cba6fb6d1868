//! One shard of a scale-out run ([`crate::scale`]): the walk of
//! [`super::run`] frozen into a list of files, and the same steps (read,
//! prepare, ordered decide, write) over one shard's files, with a scale-out
//! step plugged into the ordered step:
//!
//! * `keys` ([`KeySink`]): every prepared document's keys go to a sink, in
//!   corpus order, and nothing is decided or written;
//! * `apply` ([`ShardHistory`]): a fresh [`crate::dedup::Deduper`] decides the
//!   shard, and each document's history (which of its keys another shard or
//!   the cluster index kept first, and where) comes from the shard's drop
//!   list. Explain lines, report rows and outputs are then those of the
//!   single-node run.

use std::fs;
use std::path::PathBuf;

use indicatif::ProgressBar;

use super::decider::Decider;
pub(crate) use super::decider::Scaled;
use super::{inputs, run_files, sniff_single_file};
use crate::config::{Config, Output};
use crate::dedup::History;
use crate::error::{Error, Result};
use crate::key::{Digest, Keyed};
use crate::report::{FileRow, Report};
use crate::threads::Budget;
use crate::walk::InputFile;

/// Where the `keys` step sends each prepared document.
pub(crate) trait KeySink: Send {
    /// The next document of the shard in corpus order: the name of its
    /// input (as in explain lines), its line (0 for a whole file) and id,
    /// its paragraph keys and whole-document key.
    fn document(&mut self, file: &str, at: (u64, Option<&str>), keys: &[Keyed], whole: &Digest) -> Result<()>;
    /// After the shard's last document: finishes the output; returns a
    /// one-line JSON summary.
    fn finish(self: Box<Self>) -> Result<String>;
}

/// What the `apply` step knows about first occurrences outside the shard.
pub(crate) trait ShardHistory: Send {
    /// The history of the next document of the shard, in corpus order.
    /// `local` is the number of documents decided so far: a document of
    /// another shard must be given a number above every local one (see
    /// [`crate::dedup::Earlier::other_shard`]).
    fn history(&mut self, keys: &[Keyed], whole: &Digest, local: u32) -> Result<Option<History>>;
    /// Name, line and id of the document of another shard numbered `number`.
    fn document(&self, number: u32) -> Option<(&str, u64, Option<&str>)>;
    /// The name of a batch of the cluster index.
    fn batch_name(&self, batch: u32) -> Option<String>;
    /// After the shard's last document: an error if the drop list names
    /// rows the shard does not have.
    fn finish(&self) -> Result<()>;
}

/// The frozen walk of a run: the configuration as the run would use it
/// (a single file sniffed as JSON Lines is read as such), the files in
/// corpus order and the report rows of what the walk passed over.
pub(crate) struct Listing {
    /// The configuration, after sniffing.
    pub cfg: Config,
    /// The files, in corpus order.
    pub files: Vec<InputFile>,
    /// Rows of the entries the walk did not take.
    pub skipped: Vec<FileRow>,
    /// Backups of earlier `--in-place` runs passed over.
    pub left_alone: u64,
}

/// Walks the inputs exactly as [`super::run`] does.
pub(crate) fn listing(cfg: &Config) -> Result<Listing> {
    cfg.validate()?;
    let roots = cfg.input.paths();
    let mut metas = Vec::with_capacity(roots.len());
    for root in roots {
        metas.push(fs::metadata(root).map_err(|e| Error::io(root, e))?);
    }
    if roots.len() > 1 {
        inputs::check_names(roots)?;
    }
    let sniffed = match (roots, &metas[..]) {
        ([root], [meta]) => sniff_single_file(cfg, root, meta),
        _ => None,
    };
    let cfg = sniffed.unwrap_or_else(|| cfg.clone());
    // On the run's own threads: the walk lists folders on the rayon pool.
    let pool = Budget::of_run(&cfg).pool()?;
    let (walk, left_alone) = pool.install(|| inputs::walk_all(roots, &metas, &cfg.walk, false))?;
    let skipped = walk.skipped.iter().map(|s| FileRow::skipped(&s.rel, &s.error, s.failure)).collect();
    Ok(Listing { cfg, files: walk.files, skipped, left_alone })
}

/// What one shard's step produced.
pub(crate) struct ShardOutcome {
    /// The shard's report (its rows, totals and distinct keys).
    pub report: Report,
    /// `apply`: the first occurrences the shard added, `(key, anchor)`.
    pub firsts: Vec<(u128, u64)>,
    /// `keys`: the sink's summary.
    pub keys: Option<String>,
}

/// Runs one shard's files through the pipeline with `scaled` plugged in.
/// The explain and rejects files of `cfg` are written (atomically); the
/// report is returned, not written.
pub(crate) fn run(cfg: &Config, files: &[InputFile], scaled: Scaled) -> Result<ShardOutcome> {
    // Folders shared with tasks on other machines: no temporary is stale.
    let _no_sweep = crate::write::NoSweep::new();
    cfg.validate()?;
    if let Output::Dir(out) = &cfg.output {
        fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    }
    let budget = Budget::of_run(cfg);
    let pool = budget.pool()?;
    pool.install(|| {
        let mut decider = Decider::new(cfg, &budget)?;
        if matches!(scaled, Scaled::Apply(..)) {
            decider.deduper.record_new_firsts();
        }
        decider.scaled = Some(scaled);
        run_files(cfg, &mut decider, files, &ProgressBar::hidden())?;
        let (firsts, keys) = match decider.scaled.take() {
            Some(Scaled::Apply(history, firsts)) => {
                history.finish()?;
                (firsts, None)
            }
            Some(Scaled::Keys(sink)) => (Vec::new(), Some(sink.finish()?)),
            None => (Vec::new(), None),
        };
        let rels: Vec<PathBuf> = files.iter().map(|f| f.rel.clone()).collect();
        let mut finished = decider.finish()?;
        finished.report.sort_rows(&rels);
        Ok(ShardOutcome { report: finished.report, firsts, keys })
    })
}
