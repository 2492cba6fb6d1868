//! Per-file and total statistics: the human summary (stderr) and the JSON
//! report (`--report`).
//!
//! [`Stats`] are mergeable with `+=`, so per-file figures add up to the
//! totals. Timing (`elapsed_seconds`, `mb_per_second`) is the only part of
//! the report that differs between two runs over the same input.

use std::fmt::Write as _;
use std::ops::AddAssign;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dedup::{Plan, Reason, Verdict};

pub mod json;

/// Counts for one file, or for the whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Documents read and prepared (files, or JSONL records).
    pub documents_read: u64,
    /// Documents written out (with at least one kept paragraph).
    pub documents_written: u64,
    /// Documents that exactly repeat an earlier one (not written).
    pub documents_duplicate: u64,
    /// Documents with paragraphs, all dropped, that are not exact duplicates (not written).
    pub documents_emptied: u64,
    /// Documents without any paragraph in the input (not written).
    pub documents_empty: u64,
    /// Inputs skipped because of an error (reported with the reason).
    pub inputs_failed: u64,
    /// Inputs deliberately passed over (e.g. symbolic links not followed).
    pub inputs_passed_over: u64,
    /// Inputs whose invalid UTF-8 was repaired or replaced.
    pub inputs_repaired: u64,
    /// JSONL lines that are not usable records (reported, written to `--rejects`).
    pub records_rejected: u64,
    /// Paragraphs read.
    pub paragraphs_in: u64,
    /// Paragraphs written (first occurrences and spared short repeats).
    pub paragraphs_kept: u64,
    /// Dropped: repeat of an earlier paragraph of the same document.
    pub dropped_within_document: u64,
    /// Dropped: repeat of a paragraph of an earlier document.
    pub dropped_across_documents: u64,
    /// Dropped: part of an exact duplicate document.
    pub dropped_duplicate_document: u64,
    /// Dropped: short repeat inside a run of dropped repeats.
    pub dropped_inside_repeated_block: u64,
    /// Dropped: short repeat of an earlier document that this document
    /// repeats other paragraphs of.
    pub dropped_same_source: u64,
    /// Short repeats kept: alone (no other paragraph of the same earlier
    /// document) and not inside a run of dropped repeats.
    pub short_spared: u64,
    /// Input bytes.
    pub bytes_in: u64,
    /// Output bytes.
    pub bytes_out: u64,
}

impl AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.documents_read += o.documents_read;
        self.documents_written += o.documents_written;
        self.documents_duplicate += o.documents_duplicate;
        self.documents_emptied += o.documents_emptied;
        self.documents_empty += o.documents_empty;
        self.inputs_failed += o.inputs_failed;
        self.inputs_passed_over += o.inputs_passed_over;
        self.inputs_repaired += o.inputs_repaired;
        self.records_rejected += o.records_rejected;
        self.paragraphs_in += o.paragraphs_in;
        self.paragraphs_kept += o.paragraphs_kept;
        self.dropped_within_document += o.dropped_within_document;
        self.dropped_across_documents += o.dropped_across_documents;
        self.dropped_duplicate_document += o.dropped_duplicate_document;
        self.dropped_inside_repeated_block += o.dropped_inside_repeated_block;
        self.dropped_same_source += o.dropped_same_source;
        self.short_spared += o.short_spared;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
    }
}

impl Stats {
    /// The counts with their names, in the order serde writes them (the
    /// report's hand-written rows, [`json::row_into`]).
    pub fn fields(&self) -> [(&'static str, u64); 19] {
        let Stats {
            documents_read,
            documents_written,
            documents_duplicate,
            documents_emptied,
            documents_empty,
            inputs_failed,
            inputs_passed_over,
            inputs_repaired,
            records_rejected,
            paragraphs_in,
            paragraphs_kept,
            dropped_within_document,
            dropped_across_documents,
            dropped_duplicate_document,
            dropped_inside_repeated_block,
            dropped_same_source,
            short_spared,
            bytes_in,
            bytes_out,
        } = *self;
        [
            ("documents_read", documents_read),
            ("documents_written", documents_written),
            ("documents_duplicate", documents_duplicate),
            ("documents_emptied", documents_emptied),
            ("documents_empty", documents_empty),
            ("inputs_failed", inputs_failed),
            ("inputs_passed_over", inputs_passed_over),
            ("inputs_repaired", inputs_repaired),
            ("records_rejected", records_rejected),
            ("paragraphs_in", paragraphs_in),
            ("paragraphs_kept", paragraphs_kept),
            ("dropped_within_document", dropped_within_document),
            ("dropped_across_documents", dropped_across_documents),
            ("dropped_duplicate_document", dropped_duplicate_document),
            ("dropped_inside_repeated_block", dropped_inside_repeated_block),
            ("dropped_same_source", dropped_same_source),
            ("short_spared", short_spared),
            ("bytes_in", bytes_in),
            ("bytes_out", bytes_out),
        ]
    }

    /// Paragraph and document counts of one decided document.
    pub fn of_plan(plan: &Plan) -> Stats {
        let mut s = Stats { documents_read: 1, paragraphs_in: plan.verdicts.len() as u64, ..Stats::default() };
        for v in &plan.verdicts {
            match v {
                Verdict::Keep => s.paragraphs_kept += 1,
                Verdict::Spared { .. } => {
                    s.paragraphs_kept += 1;
                    s.short_spared += 1;
                }
                Verdict::Drop { reason, .. } => match reason {
                    Reason::WithinDocument => s.dropped_within_document += 1,
                    Reason::AcrossDocuments => s.dropped_across_documents += 1,
                    Reason::DuplicateDocument => s.dropped_duplicate_document += 1,
                    Reason::InsideRepeatedBlock => s.dropped_inside_repeated_block += 1,
                    Reason::SameSource => s.dropped_same_source += 1,
                },
            }
        }
        match unwritten_status(plan) {
            Some("duplicate") => s.documents_duplicate = 1,
            Some("empty") => s.documents_empty = 1,
            Some(_) => s.documents_emptied = 1,
            None => {}
        }
        s
    }

    /// Paragraphs dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_within_document
            + self.dropped_across_documents
            + self.dropped_duplicate_document
            + self.dropped_inside_repeated_block
            + self.dropped_same_source
    }
}

/// The status of a decided document that is not written: `duplicate`,
/// `empty` (no paragraph in the input) or `emptied` (every paragraph
/// dropped); `None` when it keeps a paragraph.
pub fn unwritten_status(plan: &Plan) -> Option<&'static str> {
    if plan.duplicate_of.is_some() {
        Some("duplicate")
    } else if plan.verdicts.is_empty() {
        Some("empty")
    } else if !plan.verdicts.iter().any(|v| v.is_kept()) {
        Some("emptied")
    } else {
        None
    }
}

/// One row of the report: a file (tree mode) or a shard (JSONL mode).
// Deserialize: an in-place run's rows are replayed by its retries (see
// `crate::index::ReplayFile`), and a scale-out run's shard reports are
// merged (`crate::scale::merge_report`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileRow {
    /// Path relative to the input root.
    pub path: String,
    /// `written`, `duplicate`, `emptied`, `empty`, `failed` or `passed-over`
    /// (`dry-run` when nothing is written).
    pub status: String,
    /// For a duplicate document, the earlier file it repeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// The error or reason for a failed or passed-over input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Byte offset of the first invalid UTF-8 byte, when it was repaired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired_at: Option<usize>,
    /// JSONL: records not written (duplicate, emptied or empty), by line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped_records: Vec<DroppedRecord>,
    /// JSONL: line numbers of rejected lines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected_lines: Vec<u64>,
    /// The ids (`--id-field`) of rejected records that have one, by line.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub rejected_ids: std::collections::BTreeMap<u64, String>,
    /// The counts.
    #[serde(flatten)]
    pub stats: Stats,
}

impl FileRow {
    /// The row of an entry the walk did not take: a failure (counted as
    /// failed) or a deliberate pass-over such as an unfollowed symlink.
    pub fn skipped(rel: &std::path::Path, error: &crate::error::Error, failure: bool) -> FileRow {
        FileRow {
            path: rel.to_string_lossy().into_owned(),
            status: if failure { "failed" } else { "passed-over" }.into(),
            error: Some(error.to_string()),
            stats: Stats {
                inputs_failed: u64::from(failure),
                inputs_passed_over: u64::from(!failure),
                ..Stats::default()
            },
            ..FileRow::default()
        }
    }

    /// The row of an input that could not be read (counted as failed).
    pub fn failed(rel: &std::path::Path, error: &crate::error::Error) -> FileRow {
        FileRow {
            path: rel.to_string_lossy().into_owned(),
            status: "failed".into(),
            error: Some(format!("{error} [{}]", error.kind())),
            stats: Stats { inputs_failed: 1, ..Stats::default() },
            ..FileRow::default()
        }
    }
}

/// A JSONL record that was not written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DroppedRecord {
    /// Line number (1-based) in the shard.
    pub line: u64,
    /// `duplicate`, `emptied` or `empty`.
    pub status: String,
    /// For a duplicate, the earlier document (`shard:line`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// The record's id (`--id-field`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// For a duplicate, the earlier record's id, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of_id: Option<String>,
}

/// The outcome of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    /// Totals.
    pub totals: Stats,
    /// Distinct paragraph keys held in memory at the end.
    pub distinct_keys: u64,
    /// Threads used.
    pub threads: usize,
    /// Wall time.
    pub elapsed_seconds: f64,
    /// Input megabytes (10⁶ bytes) per second of wall time.
    pub mb_per_second: f64,
    /// Backups made by earlier `--in-place` runs that this run passed over
    /// (never read, rewritten or removed; see [`crate::backups`]).
    pub backups_left_alone: u64,
    /// Per-file rows, in corpus order (failed and passed-over inputs
    /// included, where their path sorts).
    // Written by `json::write_report` (in parallel, without serde) in a run.
    pub files: Vec<FileRow>,
}

impl Report {
    /// The report without its rows (`files` empty).
    pub fn without_rows(&self) -> Report {
        let Report { totals, distinct_keys, threads, elapsed_seconds, mb_per_second, backups_left_alone, files: _ } =
            self;
        Report {
            totals: *totals,
            distinct_keys: *distinct_keys,
            threads: *threads,
            elapsed_seconds: *elapsed_seconds,
            mb_per_second: *mb_per_second,
            backups_left_alone: *backups_left_alone,
            files: Vec::new(),
        }
    }

    /// True when some input failed (the exit code is then non-zero).
    pub fn has_failures(&self) -> bool {
        self.totals.inputs_failed > 0 || self.totals.records_rejected > 0
    }

    /// Adds a row and its counts to the totals.
    pub fn push(&mut self, row: FileRow) {
        self.totals += row.stats;
        self.files.push(row);
    }

    /// Puts the rows in corpus order: the relative paths compared byte-wise.
    /// `rels` are relative paths of the rows' inputs, in any order; only
    /// those that are not UTF-8 matter (a row's path is the lossy UTF-8 form
    /// of its input's name, which for any other name is its bytes). The sort
    /// is stable, so rows of equal path keep their order.
    ///
    /// Rows already in order (a tree run's, but for its skipped
    /// entries) are left as they are: on the bench tree (182,715 rows) the
    /// map of every name and a copied key per row were ~65 ms at the end of
    /// the run, on one thread.
    pub fn sort_rows(&mut self, rels: &[std::path::PathBuf]) {
        let raw: std::collections::HashMap<String, &[u8]> = rels
            .iter()
            .map(|r| r.as_os_str().as_encoded_bytes())
            .filter(|b| std::str::from_utf8(b).is_err())
            .map(|b| (String::from_utf8_lossy(b).into_owned(), b))
            .collect();
        fn key<'a>(raw: &std::collections::HashMap<String, &'a [u8]>, row: &'a FileRow) -> &'a [u8] {
            // Only a lossy form holds U+FFFD: no other row needs the map.
            if raw.is_empty() || !row.path.contains('\u{FFFD}') {
                row.path.as_bytes()
            } else {
                raw.get(&row.path).copied().unwrap_or(row.path.as_bytes())
            }
        }
        if !self.files.is_sorted_by(|a, b| key(&raw, a) <= key(&raw, b)) {
            self.files.sort_by(|a, b| key(&raw, a).cmp(key(&raw, b)));
        }
    }

    /// Records the wall time.
    pub fn finish(&mut self, elapsed: Duration) {
        self.elapsed_seconds = elapsed.as_secs_f64();
        self.mb_per_second =
            if self.elapsed_seconds > 0.0 { self.totals.bytes_in as f64 / 1e6 / self.elapsed_seconds } else { 0.0 };
    }

    /// The human summary printed on stderr.
    pub fn summary(&self) -> String {
        let t = &self.totals;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "documents: {} read, {} written, {} duplicate, {} emptied, {} empty; inputs: {} failed, {} passed over, {} repaired; {} records rejected",
            t.documents_read,
            t.documents_written,
            t.documents_duplicate,
            t.documents_emptied,
            t.documents_empty,
            t.inputs_failed,
            t.inputs_passed_over,
            t.inputs_repaired,
            t.records_rejected
        );
        let _ = writeln!(
            s,
            "paragraphs: {} in, {} kept, {} dropped ({} within a document, {} across documents, {} short with their source, {} in duplicate documents, {} inside repeated blocks), {} short repeats spared",
            t.paragraphs_in,
            t.paragraphs_kept,
            t.dropped(),
            t.dropped_within_document,
            t.dropped_across_documents,
            t.dropped_same_source,
            t.dropped_duplicate_document,
            t.dropped_inside_repeated_block,
            t.short_spared
        );
        let _ = writeln!(
            s,
            "bytes: {} in, {} out; {:.1} MB/s; {:.3} s on {} threads; {} distinct keys",
            t.bytes_in, t.bytes_out, self.mb_per_second, self.elapsed_seconds, self.threads, self.distinct_keys
        );
        if self.backups_left_alone > 0 {
            let _ = writeln!(s, "backups: {} made by earlier --in-place runs, left alone", self.backups_left_alone);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::Occurrence;

    #[cfg(unix)]
    #[test]
    fn rows_sort_by_the_bytes_of_their_names() {
        use std::os::unix::ffi::OsStrExt;
        use std::path::PathBuf;
        // `a\xC0` sorts before `aé` by its bytes (C0 < C3), after it by its
        // lossy form (`a\u{FFFD}`: EF BF BD).
        let raw = PathBuf::from(std::ffi::OsStr::from_bytes(b"a\xC0"));
        let rels = vec![PathBuf::from("z"), PathBuf::from("a\u{e9}"), raw.clone(), PathBuf::from("b")];
        let row = |rel: &PathBuf, status: &str| FileRow {
            path: rel.to_string_lossy().into_owned(),
            status: status.into(),
            ..FileRow::default()
        };
        let files =
            vec![row(&rels[0], "1"), row(&rels[1], "2"), row(&rels[2], "3"), row(&rels[3], "4"), row(&rels[3], "5")];
        let mut report = Report { files, ..Report::default() };
        report.sort_rows(&rels);
        let order = |report: &Report| report.files.iter().map(|r| r.status.clone()).collect::<Vec<_>>();
        assert_eq!(order(&report), ["3", "2", "4", "5", "1"]);
        // Rows in order stay as they are; equal paths keep their order.
        report.sort_rows(&rels);
        assert_eq!(order(&report), ["3", "2", "4", "5", "1"]);
        // Without the names, the lossy forms decide.
        report.sort_rows(&[]);
        assert_eq!(order(&report), ["2", "3", "4", "5", "1"]);
    }

    #[test]
    fn stats_of_plan_count_each_verdict() {
        let first = Occurrence::default();
        let plan = Plan {
            doc: 1,
            verdicts: vec![
                Verdict::Keep,
                Verdict::Spared { first },
                Verdict::Drop { reason: Reason::WithinDocument, first },
                Verdict::Drop { reason: Reason::InsideRepeatedBlock, first },
                Verdict::Drop { reason: Reason::SameSource, first },
            ],
            duplicate_of: None,
        };
        let s = Stats::of_plan(&plan);
        assert_eq!((s.paragraphs_in, s.paragraphs_kept, s.short_spared, s.dropped()), (5, 2, 1, 3));
        assert_eq!(s.dropped_same_source, 1);
        let mut total = Stats::default();
        total += s;
        total += s;
        assert_eq!(total.paragraphs_in, 10);
        assert_eq!(total.documents_read, 2);
    }
}
