//! newsdedup: a deduplicating ingester for news text.
//!
//! The data flow, one module per step:
//! [`walk`] (sorted inputs) → [`read`] (bytes to text) → [`normalize`] →
//! [`split`] (paragraphs with byte spans) → [`key`] (SHA-256 digests) →
//! [`dedup`] (first occurrence in corpus order wins) → [`document`]
//! (render the kept paragraphs) → [`mod@write`] (atomic output) → [`report`].
//! [`pipeline`] drives them; every thread of a run comes from the one
//! budget of [`threads`]. Errors are [`error::Error`]; the command maps
//! them to an [`error::ExitCode`]. See the ARCHITECTURE section of the
//! README for the module diagram.
//! [`session`] makes the same decisions for documents held in memory (the
//! Python package in `python/` is built on it).
//!
//! Cleaning one text:
//!
//! ```
//! use newsdedup::{clean_text, CleanOptions};
//! let text = "He said \"no.\" Then he left the room quietly.\n\
//!             He said \u{201C}no.\u{201D} Then he left the room quietly.\n";
//! assert_eq!(clean_text(text, &CleanOptions::default()), "He said \"no.\" Then he left the room quietly.\n");
//! ```
#![deny(missing_docs)]

pub mod allocator;
pub mod backups;
pub mod check;
// The command line and signal handling belong to the binary: public only so
// `main.rs` can reach them, not library API.
#[doc(hidden)]
pub mod cli;
pub mod config;
pub mod dedup;
pub mod diag;
pub mod document;
pub mod error;
#[cfg(target_os = "linux")]
mod folder;
pub mod formats;
pub mod index;
#[doc(hidden)]
pub mod interrupt;
pub mod jsonl;
pub mod key;
pub mod normalize;
pub mod pipeline;
mod prefetch;
pub mod read;
pub mod report;
pub mod scale;
pub mod session;
pub mod side;
pub mod split;
pub mod threads;
pub mod walk;
pub mod wrap;
pub mod write;

use dedup::{Deduper, Rules, Scope};
use document::{Document, Emit, TextOptions};

/// Options for cleaning a single text with [`clean_text`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanOptions {
    /// Splitting, quotes and keys.
    pub text: TextOptions,
    /// The dedup rules (the scope is always the one document).
    pub rules: Rules,
    /// What to write for kept paragraphs.
    pub emit: Emit,
}

/// Cleans one document on its own: repeats within it are dropped by the
/// rules of [`dedup`], and the kept paragraphs are rendered.
pub fn clean_text(text: &str, opts: &CleanOptions) -> String {
    let doc = Document::prepare(text.to_owned(), &opts.text);
    let mut deduper = Deduper::new(Rules { scope: Scope::Document, ..opts.rules });
    let plan = deduper.decide(&doc.keys, &doc.whole);
    doc.render(&plan.verdicts, opts.emit)
}
