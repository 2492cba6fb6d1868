//! In-process cleaning for programs that hold their documents in memory: the
//! library side of the Python package (`python/`).
//!
//! A [`Session`] is the sequential part of a run ([`crate::pipeline`]'s
//! decider) without files: documents are decided **in the order they are
//! given** (that order is the corpus order), each against every earlier one
//! and, with a persistent index, against earlier runs. [`Session::clean_batch`]
//! prepares (splits, keys, looks up the index) and renders in parallel on the
//! rayon pool while the decisions stay sequential, so its results equal
//! calling [`Session::clean`] once per document in order.
//!
//! With an index ([`Session::with_index`]) the session is a run of
//! `newsdedup clean --index DIR --batch NAME`, through the CLI's own
//! [`IndexRun`]: the index is opened and locked at once (a second user gets
//! [`IndexError::Locked`]), its tiering merge starts in the background, the
//! session belongs to a *batch* (see [`crate::pipeline::index_run`]), and
//! nothing is written to the index until [`Session::commit`], which adds the
//! first occurrences decided since the previous commit in one atomic step
//! (see [`crate::index`] for the crash-safety argument). A session of a
//! batch the index already holds is a *retry*: it keeps exactly what the
//! batch kept first, recognising documents by their anchor (see
//! [`crate::dedup::anchor`]), not by name, so document names are only
//! labels. Commit only once the clean output is stored: a process that dies
//! before leaves the index as it was, and a rerun gives the same output; one
//! that dies after is retried by the rerun of its batch, which keeps what it
//! kept and records nothing new.
//!
//! [`signature`] holds the compact per-document keys and plans used to split
//! the work of a session over many processes.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dedup::{Deduper, EARLIER_RUN, History, Occurrence, Plan, Rules, Scope};
use crate::document::{Document, Emit, TextOptions};
use crate::index::{Batch, IndexError};
use crate::key::{Digest, Keyed};
use crate::pipeline::index_run::{self, IndexRun};
use crate::read::EncodingPolicy;

pub mod signature;

/// Everything that decides how documents are cleaned (the `clean` flags that
/// do not concern files).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Splitting, quotes and keys (`--split`, `--quotes`, `--key`).
    pub text: TextOptions,
    /// Scope and `--min-chars`.
    pub rules: Rules,
    /// `--emit`.
    pub emit: Emit,
    /// `--encoding`, for documents given as bytes.
    pub encoding: EncodingPolicy,
}

/// What can go wrong in a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The persistent index failed (it names its file).
    #[error(transparent)]
    Index(#[from] IndexError),
    /// `--index` needs `--scope corpus`.
    #[error("{index}: an index needs scope corpus", index = .0.display())]
    DocumentScope(PathBuf),
    /// The session's index was closed.
    #[error("{index}: the index was closed", index = .0.display())]
    Closed(PathBuf),
    /// More documents than a session can number.
    #[error("more than {} documents in one session; start a new one", EARLIER_RUN - 1)]
    TooManyDocuments,
}

/// A document split, keyed and looked up, not yet decided.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The document.
    pub doc: Document,
    /// Its name, if given.
    pub name: Option<String>,
    /// What the index said about it (`None` without an index).
    pub history: Option<History>,
}

/// A decided document: its paragraphs, the plan, and the clean text.
#[derive(Clone, Debug)]
pub struct Cleaned {
    /// The document (original text, paragraphs with byte spans, keys).
    pub doc: Document,
    /// Its name, if given.
    pub name: Option<String>,
    /// One verdict per paragraph; `plan.doc` is its number in the session.
    pub plan: Plan,
    /// The clean text, as `newsdedup clean` writes it (empty when nothing
    /// is kept).
    pub text: String,
    /// What the index said about it (`None` without an index): with
    /// [`Session::first_batch`], the batch of a first occurrence found there.
    pub history: Option<History>,
}

/// The in-process deduper; see the module documentation.
pub struct Session {
    opts: Options,
    deduper: Deduper,
    index: Option<IndexRun>,
    index_path: Option<PathBuf>,
    /// Names of the batches of first occurrences found in the index, by
    /// number (kept when the index is closed, for results decided before).
    batch_names: std::collections::BTreeMap<u32, String>,
    names: Vec<Option<String>>,
    /// Documents and paragraphs decided since the last commit.
    uncommitted: (u64, u64),
}

impl Session {
    /// A session without a persistent index.
    pub fn new(opts: Options) -> Session {
        Session {
            opts,
            deduper: Deduper::new(opts.rules),
            index: None,
            index_path: None,
            batch_names: Default::default(),
            names: Vec::new(),
            uncommitted: (0, 0),
        }
    }

    /// A session with the persistent index at `path`, opened (created if
    /// absent) and locked until [`Session::close`] or drop, as a run of
    /// `batch` (`label` is recorded with each commit): like `newsdedup
    /// clean --index PATH --batch NAME`.
    pub fn with_index(opts: Options, path: &Path, batch: Batch, label: &str) -> Result<Session, SessionError> {
        if opts.rules.scope == Scope::Document {
            return Err(SessionError::DocumentScope(path.into()));
        }
        let label: String = label.chars().take(crate::index::MAX_LABEL / 4).collect();
        let run = IndexRun::open_batch(path, batch, label)?;
        let mut session = Session::new(opts);
        session.deduper.set_batch(run.batch_number());
        session.deduper.record_new_firsts();
        session.index = Some(run);
        session.index_path = Some(path.to_path_buf());
        Ok(session)
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The index folder, if the session has one (also after it was closed).
    pub fn index_path(&self) -> Option<&Path> {
        self.index_path.as_deref()
    }

    /// True while the index is open (and locked by this session).
    pub fn index_open(&self) -> bool {
        self.index.is_some()
    }

    /// True when the session's batch was already in the index when it was
    /// opened or last committed: the session is a retry of that batch.
    pub fn is_retry(&self) -> bool {
        self.index.as_ref().is_some_and(IndexRun::is_retry)
    }

    /// Number of documents decided so far.
    pub fn documents(&self) -> usize {
        self.names.len()
    }

    /// Number of distinct paragraph keys remembered in this session.
    pub fn distinct_keys(&self) -> usize {
        self.deduper.distinct_keys()
    }

    /// The name of document number `doc`, if it was given one; `None` too
    /// for [`EARLIER_RUN`] (a first occurrence found in the index).
    pub fn name_of(&self, doc: u32) -> Option<&str> {
        self.names.get(doc as usize).and_then(|n| n.as_deref())
    }

    /// For paragraph `para` of a decided document whose first occurrence
    /// is in the index (`first.doc` is [`EARLIER_RUN`]), the name of the
    /// earlier batch that kept it, as `--explain` writes in `first_batch`
    /// (with `para` out of range: the batch of the whole-document key, for a
    /// duplicate document).
    pub fn first_batch(&self, history: Option<&History>, para: usize) -> Option<&str> {
        let h = history?;
        let e = h.paragraphs.get(para).copied().flatten().or(h.document)?;
        self.batch_names.get(&e.batch).map(String::as_str)
    }

    /// Splits and keys `text` and looks it up in the index. Needs only
    /// `&self`: call it from many threads.
    pub fn prepare(&self, text: String, name: Option<String>) -> Result<Prepared, SessionError> {
        let doc = Document::prepare(text, &self.opts.text);
        let history = self.lookup(&doc.keys, &doc.whole)?;
        Ok(Prepared { doc, name, history })
    }

    /// What the index says about a document (`None` without an index): the
    /// CLI's lookup.
    fn lookup(&self, keys: &[Keyed], whole: &Digest) -> Result<Option<History>, SessionError> {
        match (&self.index_path, &self.index) {
            (None, _) => Ok(None),
            (Some(p), None) => Err(SessionError::Closed(p.clone())),
            (Some(_), Some(run)) => Ok(Some(index_run::history(run, keys, whole))),
        }
    }

    /// Decides the next document in corpus order.
    pub fn decide(&mut self, p: &Prepared) -> Result<Plan, SessionError> {
        self.decide_keys(&p.doc.keys, &p.doc.whole, p.name.clone(), p.history.as_ref())
    }

    /// Decides the next document from its keys alone (a [`signature`]).
    /// With an index, `history` is looked up here when `None`.
    pub fn decide_keys(
        &mut self,
        keys: &[Keyed],
        whole: &Digest,
        name: Option<String>,
        history: Option<&History>,
    ) -> Result<Plan, SessionError> {
        if self.names.len() >= EARLIER_RUN as usize {
            return Err(SessionError::TooManyDocuments);
        }
        let looked_up;
        let history = match history {
            Some(h) => Some(h),
            None if self.index_path.is_some() => {
                looked_up = self.lookup(keys, whole)?;
                looked_up.as_ref()
            }
            None => None,
        };
        if self.index_path.is_some() && self.index.is_none() {
            return Err(SessionError::Closed(self.index_path.clone().unwrap_or_default()));
        }
        let plan = self.deduper.decide_with_history(keys, whole, history);
        if let Some(run) = &mut self.index {
            run.add(self.deduper.take_new_firsts());
            if let Some(h) = history {
                for e in h.paragraphs.iter().flatten().chain(&h.document) {
                    self.batch_names.entry(e.batch).or_insert_with(|| run.batch_name(e.batch));
                }
            }
        }
        self.names.push(name);
        self.uncommitted.0 += 1;
        self.uncommitted.1 += keys.len() as u64;
        Ok(plan)
    }

    /// Cleans the next document in corpus order.
    pub fn clean(&mut self, text: String, name: Option<String>) -> Result<Cleaned, SessionError> {
        let p = self.prepare(text, name)?;
        let plan = self.decide(&p)?;
        Ok(render(p, plan, self.opts.emit))
    }

    /// Cleans documents in order: the same results as [`Session::clean`] on
    /// each in turn, with preparation and rendering on all cores. A
    /// preparation error (a closed index) comes before any
    /// document of the batch is decided.
    pub fn clean_batch(&mut self, docs: Vec<(String, Option<String>)>) -> Result<Vec<Cleaned>, SessionError> {
        let prepared: Vec<Prepared> =
            docs.into_par_iter().map(|(text, name)| self.prepare(text, name)).collect::<Result<_, _>>()?;
        let plans: Vec<Plan> = prepared.iter().map(|p| self.decide(p)).collect::<Result<_, _>>()?;
        let emit = self.opts.emit;
        Ok(prepared.into_par_iter().zip(plans).map(|(p, plan)| render(p, plan, emit)).collect())
    }

    /// Adds the first occurrences decided since the last commit to the
    /// index, atomically, and records them as a run of the session's batch
    /// (the CLI's commit, [`IndexRun::commit_counts`]); the index stays open
    /// and locked. Returns the number of keys added: 0, and nothing
    /// recorded, for a retry that found nothing new. Without an index, does
    /// nothing and returns 0.
    pub fn commit(&mut self) -> Result<u64, SessionError> {
        let Some(path) = &self.index_path else { return Ok(0) };
        let Some(run) = self.index.as_mut() else { return Err(SessionError::Closed(path.clone())) };
        let added = run.commit_counts(self.uncommitted.0, self.uncommitted.1)?;
        // A named batch keeps its number; an anonymous one gets a new one.
        self.deduper.set_batch(run.batch_number());
        self.uncommitted = (0, 0);
        Ok(added)
    }

    /// Releases the index (and its lock) without committing: what was
    /// decided since the last commit is not added. Later documents are an
    /// error ([`SessionError::Closed`]).
    pub fn close(&mut self) {
        self.index = None;
    }
}

/// Renders a decided document.
fn render(p: Prepared, plan: Plan, emit: Emit) -> Cleaned {
    let text = p.doc.render(&plan.verdicts, emit);
    Cleaned { doc: p.doc, name: p.name, plan, text, history: p.history }
}

/// The first occurrence of a dropped or spared paragraph, when it lies in
/// this session (`None` for one found in the index).
pub fn in_session(first: Occurrence) -> Option<Occurrence> {
    (first.doc != EARLIER_RUN).then_some(first)
}

#[cfg(test)]
mod tests;
