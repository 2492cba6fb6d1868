//! A batch of a record shard prepared in parallel: each line parsed,
//! its text normalised, split (the fused pass where it can be) and keyed
//! a few records together,
//! then the documents looked up in the persistent index a few at a time.

use rayon::prelude::*;

use super::super::index_run::Lookup;
use crate::config::Config;
use crate::dedup::History;
use crate::document::Document;
use crate::formats::{Parser, Row};
use crate::jsonl::{RecordError, SharedLine};
use crate::split::LineBuilder;

/// One line of a shard after parsing and preparation (parallel step).
// Nearly every line is a `Doc`; boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(in crate::pipeline) enum Parsed {
    Doc {
        line: u64,
        record: Row,
        doc: Document,
        history: Option<History>,
        repaired: bool,
        bytes: u64,
        id: Option<String>,
        /// The pool thread that prepared it, where it is freed
        /// ([`crate::threads::Frees`]).
        made_on: Option<usize>,
    },
    Rejected {
        line: u64,
        raw: SharedLine,
        error: RecordError,
    },
}

/// Records whose paragraphs are keyed together ([`Document::from_splits`]:
/// enough paragraphs to fill the sixteen lanes of AVX-512 where SHA-256
/// takes them, a bench record having about nine; and as many documents,
/// whose document keys are hashed together after).
const KEYED_TOGETHER: usize = 16;

/// A line of a group parsed, its text decoded and split: all but its keys.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// Keyed with the rest of the group.
    Fed { line: u64, record: Row, whole: Option<[u8; 32]>, repaired: bool, bytes: u64 },
    /// Prepared by itself (the general path), or rejected.
    Done(Parsed),
}

/// Parses and prepares lines (`raw` exactly as read, without the `\n`;
/// `whole`: the original whole-document key of a record cleaned in place by
/// an earlier run, see [`crate::pipeline::replay`]), in parallel,
/// [`KEYED_TOGETHER`] at a time, in their order. Their history in the
/// persistent index is looked up after, with their neighbours' ([`look_up`]).
pub(super) fn prepare_lines(
    items: Vec<(u64, SharedLine, Option<[u8; 32]>)>,
    cfg: &Config,
    parser: &Parser,
) -> Vec<Parsed> {
    items.into_par_iter().chunks(KEYED_TOGETHER).flat_map_iter(|group| prepare_group(group, cfg, parser)).collect()
}

/// Parses a group of lines, splits their texts (the fused pass where it
/// can be) and keys the split ones together.
fn prepare_group(group: Vec<(u64, SharedLine, Option<[u8; 32]>)>, cfg: &Config, parser: &Parser) -> Vec<Parsed> {
    let mut steps = Vec::with_capacity(group.len());
    let mut parts = Vec::with_capacity(group.len());
    for (line, raw, whole) in group {
        let bytes = raw.len() as u64 + u64::from(parser.csv.is_none());
        // The text split while it is decoded (the fused pass), when it can be.
        let len = if parser.csv.is_none() { raw.len() } else { 0 };
        let mut lines = LineBuilder::new(len, cfg.text.split, cfg.text.quotes);
        steps.push(match parser.parse_fed(raw, &mut lines) {
            Ok((record, text, true, repaired)) => {
                let split = lines.finish(&text);
                parts.push((text, split));
                Step::Fed { line, record, whole, repaired, bytes }
            }
            Ok((record, text, false, repaired)) => {
                let doc = Document::prepare(text, &cfg.text);
                Step::Done(parsed(line, record, doc, whole, repaired, bytes, parser))
            }
            Err((raw, error)) => Step::Done(Parsed::Rejected { line, raw, error }),
        });
    }
    let mut docs = Document::from_splits(parts, &cfg.text).into_iter();
    steps
        .into_iter()
        .map(|step| match step {
            Step::Fed { line, record, whole, repaired, bytes } => {
                let doc = docs.next().expect("one document per split line");
                parsed(line, record, doc, whole, repaired, bytes, parser)
            }
            Step::Done(p) => p,
        })
        .collect()
}

/// A prepared line, its document keyed.
fn parsed(
    line: u64,
    record: Row,
    mut doc: Document,
    whole: Option<[u8; 32]>,
    repaired: bool,
    bytes: u64,
    parser: &Parser,
) -> Parsed {
    if let Some(whole) = whole {
        doc.whole = crate::key::Digest(whole);
    }
    let history = None;
    // Decoded here, in parallel, not in the ordered step.
    let id = parser.id(&record);
    let made_on = crate::threads::here();
    Parsed::Doc { line, record, doc, history, repaired, bytes, id, made_on }
}

/// Parses and prepares a batch of lines in parallel.
pub(super) fn prepare_batch(
    cfg: &Config,
    parser: &Parser,
    ix: Option<&Lookup>,
    batch: Vec<(u64, SharedLine)>,
) -> Vec<Parsed> {
    let items = batch.into_iter().map(|(n, raw)| (n, raw, None)).collect();
    let mut lines = prepare_lines(items, cfg, parser);
    look_up(ix, &mut lines);
    lines
}

/// Documents looked up in the persistent index together ([`Lookup::histories`]).
const LOOKED_UP_TOGETHER: usize = 8;

/// The history of every document of `lines` in the persistent index, in
/// parallel, [`LOOKED_UP_TOGETHER`] documents at a time.
pub(super) fn look_up(ix: Option<&Lookup>, lines: &mut [Parsed]) {
    let Some(ix) = ix else { return };
    lines.par_chunks_mut(LOOKED_UP_TOGETHER).for_each(|chunk| {
        let docs: Vec<_> = chunk
            .iter()
            .filter_map(|l| match l {
                Parsed::Doc { doc, .. } => Some((&doc.keys[..], &doc.whole)),
                Parsed::Rejected { .. } => None,
            })
            .collect();
        let mut found = ix.histories(&docs).into_iter();
        for l in chunk {
            if let Parsed::Doc { history, .. } = l {
                *history = found.next();
            }
        }
    });
}
