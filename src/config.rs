//! The validated run configuration: what the pipeline sees, and all it sees.
//!
//! `cli.rs` builds it from the command line in one function; library users
//! build it directly. [`Config::validate`] (in [`crate::check`], beside the
//! path checks it makes) holds every check; [`crate::pipeline::run`] calls it
//! first.

use std::path::PathBuf;

use crate::dedup::Rules;
use crate::document::{Emit, TextOptions};
use crate::jsonl::{Compression, Format};
use crate::read::EncodingPolicy;
use crate::walk::WalkOptions;

/// Where documents come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Standard input.
    Stdin,
    /// A file or a directory tree.
    Path(PathBuf),
    /// Several files or trees, in corpus order; each is mirrored under the
    /// output folder by its file name.
    Paths(Vec<PathBuf>),
}

impl Input {
    /// The input paths (none for standard input).
    pub fn paths(&self) -> &[PathBuf] {
        match self {
            Input::Stdin => &[],
            Input::Path(p) => std::slice::from_ref(p),
            Input::Paths(ps) => ps,
        }
    }
}

/// Where the clean text goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Standard output (single file or stdin input).
    Stdout,
    /// A folder mirroring the input tree.
    Dir(PathBuf),
    /// Nowhere: everything but writing.
    DryRun,
    /// Each input file atomically replaced; optional backup suffix.
    InPlace {
        /// Suffix of the backup copy of each original, if any.
        backup: Option<String>,
    },
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The input.
    pub input: Input,
    /// The output.
    pub output: Output,
    /// Splitting, quotes, keys.
    pub text: TextOptions,
    /// Dedup rules.
    pub rules: Rules,
    /// What is written for kept paragraphs.
    pub emit: Emit,
    /// Invalid UTF-8 policy.
    pub encoding: EncodingPolicy,
    /// Which files of a tree are read.
    pub walk: WalkOptions,
    /// Files larger than this are skipped (reported).
    pub max_bytes: Option<u64>,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Where to write the JSON report.
    pub report: Option<PathBuf>,
    /// Where to write one JSON line per dropped paragraph.
    pub explain: Option<PathBuf>,
    /// Also list spared short repeats in the explain file.
    pub explain_spared: bool,
    /// Show a progress bar (only honoured when stderr is a terminal).
    pub progress: bool,
    /// Print nothing on stderr but errors.
    pub quiet: bool,
    /// Text files or JSON Lines.
    pub format: Format,
    /// JSONL: the field holding the document text.
    pub text_field: String,
    /// Records: the field (JSONL) or column (CSV) naming each record in
    /// explain lines, rejects, reports and attributes, when present.
    pub id_field: String,
    /// Write dolma attribute files (one per record shard) under this folder.
    pub attributes: Option<PathBuf>,
    /// JSONL: keep a record left with no paragraph (with empty text) instead of dropping it.
    pub keep_empty: bool,
    /// JSONL: write lines that are not usable records here, unchanged.
    pub rejects: Option<PathBuf>,
    /// JSONL: leave the text alone and add this field describing the drops.
    pub annotate: Option<String>,
    /// JSONL to stdout: compression of the stream.
    pub compress: Compression,
    /// The persistent index of keys kept by earlier runs.
    pub index: Option<PathBuf>,
    /// The batch the run belongs to in the index (raw bytes); `None`: the
    /// canonical input path, or an anonymous batch for standard input.
    pub batch: Option<Vec<u8>>,
}

impl Config {
    /// A configuration with every option at its default.
    pub fn new(input: Input, output: Output) -> Config {
        Config {
            input,
            output,
            text: TextOptions::default(),
            rules: Rules::default(),
            emit: Emit::default(),
            encoding: EncodingPolicy::default(),
            walk: WalkOptions::default(),
            max_bytes: None,
            threads: 0,
            report: None,
            explain: None,
            explain_spared: false,
            progress: true,
            quiet: false,
            format: Format::Auto,
            text_field: "text".to_owned(),
            id_field: "id".to_owned(),
            attributes: None,
            keep_empty: false,
            rejects: None,
            annotate: None,
            compress: Compression::None,
            index: None,
            batch: None,
        }
    }
}
