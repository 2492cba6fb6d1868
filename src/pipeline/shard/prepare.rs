//! A batch of a record shard prepared in parallel: each line parsed,
//! its text normalised, split and keyed (the fused pass where it can be),
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

/// Parses and prepares one line (`raw` exactly as read, without the `\n`);
/// `whole`: the original whole-document key of a record cleaned in place
/// by an earlier run (see [`crate::pipeline::replay`]).
/// Its history in the persistent index is looked up after, with its
/// neighbours' ([`look_up`]).
pub(super) fn prepare_line(
    (line, raw, whole): (u64, SharedLine, Option<[u8; 32]>),
    cfg: &Config,
    parser: &Parser,
) -> Parsed {
    let bytes = raw.len() as u64 + u64::from(parser.csv.is_none());
    // The text split while it is decoded (the fused pass), when it can be.
    let len = if parser.csv.is_none() { raw.len() } else { 0 };
    let mut lines = LineBuilder::new(len, cfg.text.split, cfg.text.quotes);
    match parser.parse_fed(raw, &mut lines) {
        Ok((record, text, fed, repaired)) => {
            let mut doc = if fed {
                let split = lines.finish(&text);
                Document::from_split(text, split, &cfg.text)
            } else {
                Document::prepare(text, &cfg.text)
            };
            if let Some(whole) = whole {
                doc.whole = crate::key::Digest(whole);
            }
            let history = None;
            // Decoded here, in parallel, not in the ordered step.
            let id = parser.id(&record);
            let made_on = crate::threads::here();
            Parsed::Doc { line, record, doc, history, repaired, bytes, id, made_on }
        }
        Err((raw, error)) => Parsed::Rejected { line, raw, error },
    }
}

/// Parses and prepares a batch of lines in parallel.
pub(super) fn prepare_batch(
    cfg: &Config,
    parser: &Parser,
    ix: Option<&Lookup>,
    batch: Vec<(u64, SharedLine)>,
) -> Vec<Parsed> {
    let mut lines: Vec<Parsed> =
        batch.into_par_iter().map(|(n, raw)| prepare_line((n, raw, None), cfg, parser)).collect();
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
