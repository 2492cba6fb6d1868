//! `merge-report`: the report, explain and rejects files of a whole
//! scale-out run, from the shards' parts in rank (corpus) order.

use std::path::Path;

use super::manifest::{Manifest, part};
use crate::config::Output;
use crate::dedup::Scope;
use crate::error::{Error, Result};
use crate::report::Report;
use crate::side::SideFile;

/// Joins the parts of every shard: the report (totals summed, rows in
/// corpus order, distinct keys summed: each key enters the seen-set of
/// exactly one shard; with `--scope document`, the last document's, as
/// single-node) and the explain and rejects lines, each written
/// atomically where given (`-` is standard output). Returns the report as
/// the JSON text the single-node run writes (`elapsed_seconds`,
/// `mb_per_second` and `threads` are 0: they describe no single process).
pub fn merge_report(
    work: &Path,
    report: Option<&Path>,
    explain: Option<&Path>,
    rejects: Option<&Path>,
) -> Result<String> {
    let m = Manifest::read(work)?;
    let mpath = super::manifest::manifest_path(work);
    let scope = crate::cli::scale::shard_config(&m.options, &m.roots, Output::DryRun, &mpath)?.rules.scope;
    let mut merged = Report::default();
    for row in &m.skipped {
        merged.push(row.clone());
    }
    for shard in &m.shards {
        let path = part(work, "report", shard.rank, "json");
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let r: Report =
            serde_json::from_slice(&bytes).map_err(|e| Error::invalid(&path, format!("not a shard report: {e}")))?;
        merged.distinct_keys = match scope {
            Scope::Corpus => merged.distinct_keys + r.distinct_keys,
            // The seen-set holds the last decided document's keys only.
            Scope::Document if r.totals.documents_read > 0 => r.distinct_keys,
            Scope::Document => merged.distinct_keys,
        };
        for row in r.files {
            merged.push(row);
        }
    }
    merged.sort_rows(&[]);
    merged.backups_left_alone = m.backups_left_alone;
    for (target, dir) in [(explain, "explain"), (rejects, "rejects")] {
        let Some(target) = target else { continue };
        let mut out =
            SideFile::create(&Some(target.to_path_buf()))?.ok_or_else(|| Error::invalid(target, "no file"))?;
        for shard in &m.shards {
            let path = part(work, dir, shard.rank, "jsonl");
            out.write(&std::fs::read(&path).map_err(|e| Error::io(&path, e))?)?;
        }
        out.commit()?;
    }
    let mut text = Vec::new();
    crate::report::json::write_report(&mut text, &merged).map_err(|e| Error::invalid(work, e.to_string()))?;
    text.push(b'\n');
    let text = String::from_utf8(text).map_err(|e| Error::invalid(work, e.to_string()))?;
    if let Some(target) = report {
        let mut out =
            SideFile::create(&Some(target.to_path_buf()))?.ok_or_else(|| Error::invalid(target, "no file"))?;
        out.write(text.as_bytes())?;
        out.commit()?;
    }
    Ok(text)
}

/// True when a merged report (the JSON [`merge_report`] returns) records a
/// failed input or a rejected line: `clean` would exit 1.
pub fn has_failures(report: &str) -> bool {
    serde_json::from_str::<Report>(report).is_ok_and(|r| r.has_failures())
}
