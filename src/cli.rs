//! The command line: clap's derive types and their one translation into a
//! [`Config`]. The only module that knows about clap.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::check::ConfigError;
use crate::config::{Config, Input, Output};
use crate::dedup::{DEFAULT_MIN_CHARS, DEFAULT_MIN_CHARS_WITHIN, Rules, Scope};
use crate::document::{Emit, TextOptions};
use crate::error::Error;
use crate::jsonl::{Compression, Format};
use crate::key::KeyMode;
use crate::normalize::QuoteMode;
use crate::read::EncodingPolicy;
use crate::split::SplitMode;
use crate::walk::{Filter, WalkOptions};

mod conventions;
mod index;
pub mod scale;
pub use conventions::print_help_file;
pub use index::IndexCommand;

/// Deduplicating ingester for news text.
///
/// Normalises quotes, whitespace and Unicode, splits each document into
/// paragraphs, hashes every paragraph with SHA-256 and keeps only the first
/// occurrence of each, in corpus order.
#[derive(Debug, Parser)]
#[command(name = "newsdedup", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Clean a document or a corpus: drop repeated paragraphs and blocks.
    ///
    /// The cleaner removes, it never rewrites: the output is the input with
    /// the dropped paragraphs (and the line breaks between them) cut out,
    /// every kept line normalised (see --emit) and kept with its line break.
    ///
    /// WHAT COUNTS AS A DUPLICATE: two paragraphs are the same when their
    /// keys are equal. A paragraph is a line, or the lines of a hard-wrapped
    /// paragraph (see --split); it is kept or dropped whole. The key is its
    /// words joined by one space after normalisation (quotes
    /// folded to ASCII, whitespace runs to one space, invisible characters
    /// removed, NFC), in NFKC; with --key loose also lower-cased and without
    /// punctuation (digits always count). The first occurrence in corpus
    /// order (relative path byte-wise, then paragraph) is kept; later ones are
    /// dropped. Short repeats are judged in context: a paragraph repeated
    /// from another document with fewer than --min-chars characters is kept
    /// (a fact of this story) unless the document repeats more of the same
    /// earlier document or it sits inside a run of dropped repeats; within a
    /// document, repeats under --min-chars-within characters ("he said.")
    /// are kept unless inside such a run. A document whose every
    /// paragraph repeats an earlier document in the same order is an exact
    /// duplicate and is not written.
    ///
    /// EXIT CODES: 0 ok; 1 some inputs were skipped (each is reported); 2
    /// usage or fatal error; 130 interrupted; 141 standard output was closed
    /// before everything was written.
    Clean(Box<CleanArgs>),
    /// Inspect or maintain a persistent index (see `clean --index`).
    #[command(subcommand)]
    Index(IndexCommand),
    /// The scale-out steps (see the README, "Scale-out").
    #[command(flatten)]
    Scale(scale::ScaleCommand),
    /// Print a shell completion script on standard output, e.g.
    /// `newsdedup completions bash > ~/.local/share/bash-completion/completions/newsdedup`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on standard output, e.g.
    /// `newsdedup man > ~/.local/share/man/man1/newsdedup.1`.
    Man,
}

/// Arguments of `newsdedup clean`.
#[derive(Debug, clap::Args)]
pub struct CleanArgs {
    /// Files, directory trees, or `-` for standard input. With several
    /// inputs the corpus order is the order given, then the relative path
    /// within each; each input is mirrored under --out by its own name (two
    /// inputs with the same name are refused).
    #[arg(value_name = "INPUT")]
    pub input: Vec<PathBuf>,

    /// Write the clean tree here, mirroring the input's layout. Required for
    /// a directory input. Files already there that this run does not write
    /// are left alone. Must not be inside (or contain) the input.
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Do everything but write the output (--out is then accepted and
    /// ignored; --attributes, --report, --explain are still written).
    #[arg(long, conflicts_with = "in_place")]
    pub dry_run: bool,

    /// Replace each input file with its clean version, atomically. Without
    /// this flag the input is never written to.
    #[arg(long, conflicts_with = "out")]
    pub in_place: bool,

    /// With --in-place: keep each original as FILE + SUFFIX.
    #[arg(long, value_name = "SUFFIX", requires = "in_place")]
    pub backup: Option<String>,

    /// How documents are cut into paragraphs (the units that are keyed and
    /// dropped whole). `auto`: a line continues the paragraph of the line
    /// before when that line was hard-wrapped (the document's width, its
    /// longest line, is at most 100 columns): it does not end a sentence,
    /// and either the break is inside one (the next line starts lower-case,
    /// or the line ends on "the", "of", "and" ...) or the line is at least
    /// half the width and the next line's first word would not have fitted;
    /// list items, table rows, headings and JSON/CSV/markup lines are never
    /// joined. Otherwise every line is a paragraph. `line`: every non-blank
    /// line. `blank`: blocks separated by blank lines (or a deeper indent).
    /// A paragraph's key is its words joined by one space, so the same text
    /// wrapped at another width is the same paragraph.
    #[arg(long, value_enum, default_value_t = SplitArg::Auto)]
    pub split: SplitArg,

    /// Write each kept paragraph on one line, a hard-wrapped paragraph's
    /// lines joined by one space. By default the kept lines are written as
    /// they were, line breaks included.
    #[arg(long, conflicts_with = "emit")]
    pub unwrap: bool,

    /// `exact`: the key is the normalised paragraph in NFKC. `loose`: also
    /// lower-cased, punctuation ignored (never digits: "4,000" ≠ "5,000").
    #[arg(long, value_enum, default_value_t = KeyArg::Exact)]
    pub key: KeyArg,

    /// `fold`: curly, angle and low quotes and primes become ' and ".
    /// `keep`: quotes are left as they are (in the output and the key).
    #[arg(long, value_enum, default_value_t = QuotesArg::Fold)]
    pub quotes: QuotesArg,

    /// A paragraph repeated from an earlier document is dropped on its own
    /// when its key has at least N characters. A shorter one ("Qtly div 10
    /// cts vs 10 cts prior", a venue, a referee's name) is a fact of this
    /// story and is kept, unless this document repeats another paragraph of
    /// the same earlier document, or it sits in a run of dropped repeats.
    /// Default chosen by measurement on BBC and Reuters (see README).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MIN_CHARS)]
    pub min_chars: usize,

    /// A paragraph repeated within the same document is dropped when its key
    /// has at least N characters; a shorter one ("he said.") only inside a
    /// run of dropped repeats (a pasted copy).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MIN_CHARS_WITHIN)]
    pub min_chars_within: usize,

    /// `corpus`: a paragraph is dropped if it occurred earlier anywhere in
    /// the corpus. `document`: only earlier in the same document.
    #[arg(long, value_enum, default_value_t = ScopeArg::Corpus)]
    pub scope: ScopeArg,

    /// `normalized`: write the kept lines normalised (quotes, whitespace,
    /// Unicode; line breaks as `\n`), nothing else changed. `original`:
    /// write kept paragraphs exactly as they were in the input.
    #[arg(long, value_enum, default_value_t = EmitArg::Normalized)]
    pub emit: EmitArg,

    /// Invalid UTF-8: `repair` decodes each bad byte as Windows-1252 (so a
    /// stray Latin-1 0xA3 becomes £), `strict` skips the file with an error
    /// naming the byte offset, `lossy` writes U+FFFD.
    #[arg(long, value_enum, default_value_t = EncodingArg::Repair)]
    pub encoding: EncodingArg,

    /// Only read files with these extensions (comma-separated, e.g.
    /// `txt,text`). Default: every regular, non-hidden, non-binary file.
    #[arg(long, value_delimiter = ',', value_name = "EXT")]
    pub ext: Vec<String>,

    /// Only read files whose relative path matches this glob; `!GLOB`
    /// excludes. Repeatable.
    #[arg(long, value_name = "GLOB")]
    pub glob: Vec<String>,

    /// Follow symbolic links (loops are detected and reported).
    #[arg(long, short = 'L')]
    pub follow: bool,

    /// Skip (and report) files larger than this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_bytes: Option<u64>,

    /// Worker threads (default: one per core). The output is identical for
    /// any value.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// Write a JSON report (totals and one row per file) here. For this and
    /// --explain and --rejects: `-` is standard output (unless it carries
    /// the data); a symlink is followed and its target replaced atomically; a
    /// FIFO or device is written directly. Must not be inside --out or the
    /// input, nor name the same file as another of them.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write one JSON line per dropped paragraph here: file, paragraph
    /// index, key digest, the kept first occurrence, and the reason.
    #[arg(long, value_name = "FILE")]
    pub explain: Option<PathBuf>,

    /// With --explain: also list each spared short repeat (kept), with
    /// reason `spared` and `"kept": true`.
    #[arg(long, requires = "explain")]
    pub explain_spared: bool,

    /// Print only errors on stderr: no progress bar, no summary.
    #[arg(long, short)]
    pub quiet: bool,

    /// Input format. `auto`: JSON Lines for files named *.jsonl, *.ndjson or
    /// *.json, CSV for *.csv (either optionally .gz or .zst), text
    /// otherwise; standard input, and a file given as the input under
    /// another name, are JSON Lines when their first line is a JSON object.
    /// `jsonl`: every input is JSON Lines, one document per line. `csv`:
    /// every input is CSV with a header row, one document per row (the text
    /// in the --text-field column; every other column, the header and the
    /// quoting passed through byte for byte). `parquet`: every input is
    /// Parquet (*.parquet under auto), one document per row; the output has
    /// the input's schema.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,

    /// JSONL and CSV: the field (column) that holds the document text.
    /// Every other field is passed through unchanged.
    #[arg(long, value_name = "NAME", default_value = "text")]
    pub text_field: String,

    /// JSONL and CSV: the field (column) naming each record. Explain lines,
    /// rejects, the report and --attributes name records by it as well as
    /// by file:line, when a record has it.
    #[arg(long, value_name = "NAME", default_value = "id")]
    pub id_field: String,

    /// JSONL and CSV: write dolma attributes here, one file per shard
    /// mirrored by its relative path: per record `{"id": ..., "attributes":
    /// {"newsdedup__paragraph_duplicates": [[start, end, 1.0], ...]}}`, the
    /// dropped spans in characters, for `dolma mix` span_replacement.
    #[arg(long, value_name = "DIR")]
    pub attributes: Option<PathBuf>,

    /// JSONL: keep a record left with no paragraph, with empty text (by
    /// default it is dropped and listed in the report).
    #[arg(long)]
    pub keep_empty: bool,

    /// JSONL: write lines that are not usable records (bad JSON, no text
    /// field, text not a string) here, unchanged. Each is also reported as
    /// FILE:LINE on stderr, and the exit code is 1.
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,

    /// JSONL and CSV: leave the text untouched and add a field (`--annotate`
    /// for `newsdedup`, or `--annotate FIELD`) with the dropped paragraphs
    /// as [start, end, reason] byte spans of the text, and counts (in CSV a
    /// last column holding that JSON). No record is dropped. A FIELD that
    /// names an existing file (or `-`) before any input is taken as the input.
    #[arg(long, value_name = "FIELD", num_args = 0..=1, default_missing_value = "newsdedup")]
    pub annotate: Option<String>,

    /// Persistent index folder (created if absent; not inside the input):
    /// paragraphs that earlier runs kept are dropped here; this run's first
    /// occurrences are added as its very last step. A retry (a run of a
    /// batch the index already holds) keeps exactly what the first run of
    /// that batch kept. Locked while in use. Neither created nor updated by
    /// --dry-run.
    #[arg(long, value_name = "DIR")]
    pub index: Option<PathBuf>,

    /// With --index: the batch this run belongs to (default: the canonical
    /// input path; standard input has none, so every stdin run is new). A
    /// run of a batch the index already holds is a retry of it.
    #[arg(long, value_name = "NAME", requires = "index")]
    pub batch: Option<std::ffi::OsString>,

    /// JSONL written to stdout: compress the stream. Output files take the
    /// compression of their name (.gz, .zst).
    #[arg(long, value_enum, default_value_t = CompressArg::None)]
    pub compress: CompressArg,
}

/// `--format`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// By file name.
    Auto,
    /// One document per file.
    Text,
    /// One JSON object per line.
    Jsonl,
    /// A header row, then one document per row.
    Csv,
    /// Apache Parquet: one document per row, the text in a string column.
    Parquet,
}

/// `--compress`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CompressArg {
    /// Plain.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// `--split`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SplitArg {
    /// Hard-wrapped paragraphs found line by line.
    Auto,
    /// Every non-blank line is a paragraph.
    Line,
    /// Blank-line separated blocks.
    Blank,
}

/// `--key`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KeyArg {
    /// NFKC of the normalised text.
    Exact,
    /// Also case-folded, punctuation ignored.
    Loose,
}

/// `--quotes`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum QuotesArg {
    /// Fold to ASCII.
    Fold,
    /// Leave as is.
    Keep,
}

/// `--scope`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScopeArg {
    /// Whole corpus.
    Corpus,
    /// Each document alone.
    Document,
}

/// `--emit`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EmitArg {
    /// Normalised text.
    Normalized,
    /// Input text.
    Original,
}

/// `--encoding`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EncodingArg {
    /// Windows-1252 for invalid bytes.
    Repair,
    /// Refuse invalid files.
    Strict,
    /// U+FFFD for invalid bytes.
    Lossy,
}

impl CleanArgs {
    /// The one translation from command line to [`Config`] (checked by
    /// [`Config::validate`] when it is run).
    pub fn into_config(mut self) -> Result<Config, Error> {
        let mut inputs = self.inputs()?;
        let input = match inputs.len() {
            1 if inputs[0].as_os_str() == "-" => Input::Stdin,
            1 => Input::Path(inputs.remove(0)),
            _ if inputs.iter().any(|p| p.as_os_str() == "-") => {
                return Err(ConfigError::Usage("standard input (`-`) cannot be one of several inputs".into()).into());
            }
            _ => Input::Paths(inputs),
        };
        let output = match (self.out, self.dry_run, self.in_place) {
            (_, true, _) => Output::DryRun,
            (Some(dir), _, _) => Output::Dir(dir),
            (None, false, true) => Output::InPlace { backup: self.backup },
            (None, false, false) => Output::Stdout,
        };
        let mut cfg = Config::new(input, output);
        cfg.text = TextOptions {
            split: match self.split {
                SplitArg::Auto => SplitMode::Auto,
                SplitArg::Line => SplitMode::Line,
                SplitArg::Blank => SplitMode::Blank,
            },
            quotes: match self.quotes {
                QuotesArg::Fold => QuoteMode::Fold,
                QuotesArg::Keep => QuoteMode::Keep,
            },
            key: match self.key {
                KeyArg::Exact => KeyMode::Exact,
                KeyArg::Loose => KeyMode::Loose,
            },
        };
        cfg.rules = Rules {
            scope: match self.scope {
                ScopeArg::Corpus => Scope::Corpus,
                ScopeArg::Document => Scope::Document,
            },
            min_chars: self.min_chars,
            min_chars_within: self.min_chars_within,
        };
        cfg.emit = match (self.emit, self.unwrap) {
            (_, true) => Emit::Unwrapped,
            (EmitArg::Normalized, false) => Emit::Normalized,
            (EmitArg::Original, false) => Emit::Original,
        };
        cfg.encoding = match self.encoding {
            EncodingArg::Repair => EncodingPolicy::Repair,
            EncodingArg::Strict => EncodingPolicy::Strict,
            EncodingArg::Lossy => EncodingPolicy::Lossy,
        };
        let exts =
            self.ext.iter().map(|e| e.trim_start_matches('.').to_lowercase()).filter(|e| !e.is_empty()).collect();
        let globs = Filter::new(&self.glob).map_err(|e| ConfigError::Glob(e.to_string()))?;
        cfg.walk = WalkOptions { follow: self.follow, exts, globs };
        cfg.max_bytes = self.max_bytes;
        cfg.threads = self.threads;
        cfg.report = self.report;
        cfg.explain = self.explain;
        cfg.explain_spared = self.explain_spared;
        cfg.quiet = self.quiet;
        cfg.progress = !self.quiet;
        cfg.format = match self.format {
            FormatArg::Auto => Format::Auto,
            FormatArg::Text => Format::Text,
            FormatArg::Jsonl => Format::Jsonl,
            FormatArg::Csv => Format::Csv,
            FormatArg::Parquet => Format::Parquet,
        };
        cfg.id_field = self.id_field;
        cfg.attributes = self.attributes;
        cfg.text_field = self.text_field;
        cfg.index = self.index;
        cfg.batch = self.batch.map(std::ffi::OsString::into_encoded_bytes);
        cfg.keep_empty = self.keep_empty;
        cfg.rejects = self.rejects;
        cfg.annotate = self.annotate;
        cfg.compress = match self.compress {
            CompressArg::None => Compression::None,
            CompressArg::Gzip => Compression::Gzip,
            CompressArg::Zstd => Compression::Zstd,
        };
        Ok(cfg)
    }
}

mod messages;

#[cfg(test)]
mod tests;
