//! Scale-out: the single-node result, byte for byte, from independent
//! tasks (Spark, DuckDB, a process pool) — see the README, "Scale-out".
//!
//! 1. [`plan_args`] walks the inputs as `newsdedup clean` does and freezes
//!    the shards and the options in `WORK/manifest.json` ([`manifest`]).
//! 2. [`keys`], one task per shard: every document prepared exactly as the
//!    single-node run prepares it (the same pipeline, with a key sink in
//!    its ordered step), its keys written to Parquet.
//! 3. decide: plain SQL in the engine (not here), giving each shard its drop
//!    list: the rows whose first occurrence is in an earlier shard or in
//!    the cluster index.
//! 4. [`apply`], one task per shard: the single-node pipeline over the
//!    shard's files with a fresh [`crate::dedup::Deduper`] (it finds every
//!    repeat whose first occurrence is in the shard) and the drop list as
//!    the history of each document (the others). [`crate::dedup::judge`]
//!    depends only on the document and *which* document first kept each
//!    key, so outputs, explain lines and report rows are the single-node
//!    run's. Every file is written atomically; a rerun writes the same bytes.
//! 5. [`merge_report`] joins the shards' report, explain and rejects parts.

use std::ffi::OsString;
use std::path::Path;

use crate::cli::scale::{parse_plan, plan_config, shard_config};
use crate::config::{Config, Output};
use crate::dedup::Scope;
use crate::error::{Error, Result};
use crate::formats::Kind;
use crate::pipeline::scaled::{self, Scaled};
use crate::write::write_atomic;

mod drops;
mod keys;
pub mod manifest;
mod merge;
pub(crate) mod parts;

pub use manifest::{CONTRACT, Manifest, ShardEntry};
pub use merge::{has_failures, merge_report};

/// The default size of a shard of text files (`--shard-bytes`): 64 MiB.
pub const DEFAULT_SHARD_BYTES: u64 = 64 << 20;

/// `newsdedup plan ARGS...` as a function: `args` are the command-line
/// arguments after `plan` (inputs, clean options, `--work DIR`,
/// `--shard-bytes N`). Writes `WORK/manifest.json` (atomically) and
/// returns it as JSON text.
pub fn plan_args(args: &[OsString]) -> Result<String> {
    let mut options = Vec::with_capacity(args.len());
    for a in args {
        let text =
            a.to_str().ok_or_else(|| Error::invalid(Path::new(a), "a non-UTF-8 argument (not supported by plan)"))?;
        options.push(text.to_owned());
    }
    let parsed = parse_plan(args)?;
    let (work, shard_bytes) = (parsed.work.clone(), parsed.shard_bytes.max(1));
    let cfg = plan_config(parsed)?;
    let abs_work = std::path::absolute(&work).map_err(|e| Error::io(&work, e))?;
    if let Some(root) = cfg.input.paths().iter().find(|r| abs_work.starts_with(r)) {
        let msg = format!("--work is inside the input {}: the next walk would read its parts", root.display());
        return Err(Error::invalid(&work, msg));
    }
    let listing = scaled::listing(&cfg)?;
    let mut shards: Vec<ShardEntry> = Vec::new();
    let mut open_text = false;
    for f in &listing.files {
        let kind = Kind::of(&f.rel, listing.cfg.format);
        let rel = f.rel.to_str().ok_or_else(|| non_utf8(&f.path))?;
        f.path.to_str().ok_or_else(|| non_utf8(&f.path))?;
        let joins = open_text && kind.is_none() && shards.last().is_some_and(|s| s.bytes + f.size <= shard_bytes);
        if !joins {
            let rank = u32::try_from(shards.len()).map_err(|_| Error::invalid(&f.path, "more than 2^32 shards"))?;
            let kind = manifest::kind_name(kind).to_owned();
            shards.push(ShardEntry { rank, kind, files: vec![], paths: vec![], sizes: vec![], bytes: 0 });
        }
        open_text = kind.is_none();
        if let Some(s) = shards.last_mut() {
            s.files.push(rel.to_owned());
            s.paths.push(f.path.clone());
            s.sizes.push(f.size);
            s.bytes += f.size;
        }
    }
    if shards.len() > i32::MAX as usize {
        return Err(Error::invalid(&work, "more than 2^31 shards"));
    }
    let roots = cfg.input.paths().to_vec();
    if let Some(root) = roots.iter().find(|r| r.to_str().is_none()) {
        return Err(non_utf8(root));
    }
    let m = Manifest {
        contract: CONTRACT,
        newsdedup: env!("CARGO_PKG_VERSION").to_owned(),
        roots,
        options,
        shards,
        skipped: listing.skipped,
        backups_left_alone: listing.left_alone,
    };
    let mut text = serde_json::to_string_pretty(&m).map_err(|e| Error::invalid(&work, e.to_string()))?;
    text.push('\n');
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    clear_steps(&work)?;
    write_atomic(&manifest::manifest_path(&work), text.as_bytes(), None)?;
    Ok(text)
}

/// The folders the steps (and the driver's DuckDB spill) write under `WORK`.
const STEP_FOLDERS: [&str; 9] =
    ["keys", "docs", "drops", "drops.tmp", "explain", "rejects", "report", "newkeys", "duckdb-tmp"];

/// Empties a reused working folder of an earlier run's parts, so that no
/// step (nor the driver's index commit) can take a part of another run for
/// one of this run's. A non-empty folder without a manifest is not a
/// working folder: it is refused, never emptied.
fn clear_steps(work: &Path) -> Result<()> {
    let mut entries = std::fs::read_dir(work).map_err(|e| Error::io(work, e))?;
    if !manifest::manifest_path(work).exists() && entries.next().is_some() {
        let msg = "not a working folder of newsdedup (no manifest.json, not empty): give a new or empty --work";
        return Err(Error::invalid(work, msg));
    }
    for name in STEP_FOLDERS {
        let dir = work.join(name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&dir, e)),
            _ => {}
        }
    }
    Ok(())
}

fn non_utf8(path: &Path) -> Error {
    Error::invalid(path, "a path that is not UTF-8: a scale-out manifest stores paths as UTF-8 text")
}

/// The configuration of shard `rank`'s step, and its files.
fn shard_setup(work: &Path, rank: u32, output: Output) -> Result<(Config, Vec<crate::walk::InputFile>)> {
    let m = Manifest::read(work)?;
    let shard = m.shard(work, rank)?;
    let mpath = manifest::manifest_path(work);
    let mut cfg = shard_config(&m.options, &m.roots, output, &mpath)?;
    let files = shard.files(&mpath)?;
    // A single input sniffed as JSON Lines by plan is read as such.
    if let (Some(format), Some(first)) = (manifest::format_of(&shard.kind), files.first())
        && Kind::of(&first.rel, cfg.format).is_none()
    {
        cfg.format = format;
    }
    Ok((cfg, files))
}

/// Writes the keys and documents of shard `rank` (`WORK/keys/part-RRRRRR.parquet`,
/// `WORK/docs/part-RRRRRR.parquet`); returns a one-line JSON summary
/// `{"rank","documents","rows","bytes"}`.
pub fn keys(work: &Path, rank: u32) -> Result<String> {
    let (cfg, files) = shard_setup(work, rank, Output::DryRun)?;
    let keys_part = manifest::part(work, "keys", rank, "parquet");
    let writer = keys::KeysWriter::create(&keys_part, &manifest::part(work, "docs", rank, "parquet"), rank)?;
    let outcome = scaled::run(&cfg, &files, Scaled::Keys(Box::new(writer)))?;
    outcome.keys.ok_or_else(|| Error::invalid(&keys_part, "no summary"))
}

/// Cleans shard `rank` into `out` with its drop list (`WORK/drops/shard=R/`),
/// as `newsdedup clean --out OUT` would; writes the shard's explain, rejects,
/// new keys and report parts under `WORK`. Returns a one-line JSON summary
/// `{"rank","documents","paragraphs_in","paragraphs_kept","bytes_in","bytes_out","new_keys"}`.
pub fn apply(work: &Path, rank: u32, out: &Path) -> Result<String> {
    let (mut cfg, files) = shard_setup(work, rank, Output::Dir(out.to_path_buf()))?;
    for dir in ["explain", "rejects", "report"] {
        let d = work.join(dir);
        std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
    }
    cfg.explain = Some(manifest::part(work, "explain", rank, "jsonl"));
    cfg.rejects = Some(manifest::part(work, "rejects", rank, "jsonl"));
    let all_drops = work.join("drops");
    if !all_drops.is_dir() {
        // Without it, apply would keep every repeat of another shard.
        let msg =
            "no drop list: run the decide step first (it writes this folder, empty when no shard repeats another)";
        return Err(Error::invalid(&all_drops, msg));
    }
    let history = drops::DropHistory::read(&manifest::drops_dir(work, rank), rank, cfg.rules.scope == Scope::Document)?;
    let outcome = scaled::run(&cfg, &files, Scaled::Apply(Box::new(history), Vec::new()))?;
    let newkeys = manifest::part(work, "newkeys", rank, "parquet");
    let mut w = parts::PartWriter::create(&newkeys, parts::schema(&["k_hi", "k_lo", "anchor"], &[]), &[])?;
    let mut cols: [Vec<i64>; 3] = Default::default();
    for &(key, anchor) in &outcome.firsts {
        cols[0].push((key >> 64) as u64 as i64);
        cols[1].push(key as u64 as i64);
        cols[2].push(anchor as i64);
        if cols[0].len() >= parts::BATCH_ROWS {
            w.write_ints(&mut cols)?;
        }
    }
    w.write_ints(&mut cols)?;
    w.commit()?;
    let report = &outcome.report;
    let report_part = manifest::part(work, "report", rank, "json");
    let json = serde_json::to_vec(report).map_err(|e| Error::invalid(&report_part, e.to_string()))?;
    write_atomic(&report_part, &json, None)?;
    let t = &report.totals;
    Ok(serde_json::json!({
        "rank": rank, "documents": t.documents_read, "paragraphs_in": t.paragraphs_in,
        "paragraphs_kept": t.paragraphs_kept, "bytes_in": t.bytes_in, "bytes_out": t.bytes_out,
        "new_keys": outcome.firsts.len(),
    })
    .to_string())
}
