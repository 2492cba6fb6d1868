//! What `Deduper.clean` returns: the clean text, and every paragraph with
//! its byte span, verdict and first occurrence. Paragraph objects are built
//! only when asked for, so a batch costs one Python object per document.

use newsdedup::dedup::{Occurrence, Verdict};
use newsdedup::session::{Cleaned, Session, in_session};
use pyo3::prelude::*;

use crate::deduper::Deduper;

/// `repr` of an optional value as Python writes it.
fn py_repr<T: std::fmt::Debug>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "None".to_owned(), |v| format!("{v:?}"))
}

/// Where a repeated paragraph (or a duplicate document) first occurred.
///
/// ``doc`` is the document's number in the Deduper's corpus order, ``id``
/// the id it was given and ``paragraph`` the paragraph's index in it
/// (``None`` for a duplicate document). When an earlier run kept it and it
/// was found in the persistent index (``in_index``), all three are ``None``
/// and ``batch`` names that run's batch (the CLI's explain file writes
/// ``"first_file": "<index>"`` and ``first_batch``). In a retry, what the
/// batch kept first is found in this Deduper, not in the index.
#[pyclass(frozen, get_all, module = "newsdedup._core")]
#[derive(Clone, Debug)]
pub struct First {
    /// Id of the document, if it was given one.
    pub id: Option<String>,
    /// Number of the document in corpus order (``None``: an earlier run).
    pub doc: Option<u32>,
    /// Paragraph index in that document.
    pub paragraph: Option<u32>,
    /// The earlier batch that kept it (first occurrences in the index).
    pub batch: Option<String>,
}

#[pymethods]
impl First {
    /// True when the first occurrence was found in the persistent index.
    #[getter]
    fn in_index(&self) -> bool {
        self.doc.is_none()
    }

    fn __repr__(&self) -> String {
        match &self.batch {
            Some(b) => format!("First(in_index, batch={b:?})"),
            None => format!(
                "First(id={}, doc={}, paragraph={})",
                py_repr(&self.id),
                py_repr(&self.doc),
                py_repr(&self.paragraph)
            ),
        }
    }
}

/// One paragraph of a cleaned document.
///
/// ``start``/``end`` are UTF-8 byte offsets of the paragraph in the input text
/// (as in the CLI's ``--annotate`` spans); ``char_start``/``char_end`` are the
/// same span in code points, for slicing a Python ``str``. ``text`` is the
/// normalised paragraph. ``reason`` is ``None`` for a kept paragraph, else one
/// of ``within-document``, ``across-documents``, ``same-source``,
/// ``inside-repeated-block``, ``duplicate-document`` (see "What counts as a
/// duplicate" in the README). ``spared`` marks a short repeat that was kept
/// (shorter than ``min_chars``, alone: the CLI's ``--explain-spared``); its
/// ``first`` names the first occurrence too.
#[pyclass(frozen, get_all, module = "newsdedup._core")]
#[derive(Clone, Debug)]
pub struct Paragraph {
    /// Index in the document.
    pub index: usize,
    /// Byte offset of the start in the input (UTF-8).
    pub start: usize,
    /// Byte offset of the end in the input (UTF-8).
    pub end: usize,
    /// Code-point offset of the start in the input.
    pub char_start: usize,
    /// Code-point offset of the end in the input.
    pub char_end: usize,
    /// The normalised paragraph.
    pub text: String,
    /// Written to the output.
    pub kept: bool,
    /// A short repeat that was kept (the context rule spared it).
    pub spared: bool,
    /// Why it was dropped.
    pub reason: Option<&'static str>,
    /// Where its key first occurred (dropped and spared paragraphs).
    pub first: Option<First>,
}

#[pymethods]
impl Paragraph {
    fn __repr__(&self) -> String {
        let what = match self.reason {
            Some(r) => format!("dropped: {r}"),
            None if self.spared => "kept (spared)".to_owned(),
            None => "kept".to_owned(),
        };
        format!("Paragraph({}, bytes {}..{}, {what}, {:?})", self.index, self.start, self.end, self.text)
    }
}

/// The result of ``Deduper.clean``: the clean text and the decision for
/// every paragraph.
#[pyclass(frozen, module = "newsdedup._core")]
pub struct CleanResult {
    cleaned: Cleaned,
    /// The Deduper that decided it: ids of first occurrences are looked up
    /// there when paragraphs are asked for (most results are never asked).
    owner: Py<Deduper>,
}

/// The first occurrence `occ` of paragraph `para` of a document (for a
/// duplicate document, `para` is `None` and the document key is meant).
fn first(session: &Session, cleaned: &Cleaned, occ: Occurrence, para: Option<usize>) -> First {
    match in_session(occ) {
        Some(o) => First {
            id: session.name_of(o.doc).map(str::to_owned),
            doc: Some(o.doc),
            paragraph: para.map(|_| o.para),
            batch: None,
        },
        None => {
            let batch = session.first_batch(cleaned.history.as_ref(), para.unwrap_or(usize::MAX));
            First { id: None, doc: None, paragraph: None, batch: batch.map(str::to_owned) }
        }
    }
}

impl CleanResult {
    /// Wraps a decided document.
    pub fn new(cleaned: Cleaned, owner: Py<Deduper>) -> CleanResult {
        CleanResult { cleaned, owner }
    }

    fn paragraphs_where(&self, py: Python<'_>, keep: impl Fn(&Verdict) -> bool + Send + Sync) -> Vec<Paragraph> {
        let owner = self.owner.get();
        py.detach(|| owner.with_session(|session| self.build(session, keep)))
    }

    fn build(&self, session: &Session, keep: impl Fn(&Verdict) -> bool) -> Vec<Paragraph> {
        let doc = &self.cleaned.doc;
        let (mut at_byte, mut at_char) = (0, 0);
        let mut chars_to = |byte: usize| {
            at_char += doc.original.get(at_byte..byte).map_or(0, |s| s.chars().count());
            at_byte = byte;
            at_char
        };
        let mut out = Vec::new();
        for (i, (span, v)) in doc.split.spans.iter().zip(&self.cleaned.plan.verdicts).enumerate() {
            let (char_start, char_end) = (chars_to(span.orig.start), chars_to(span.orig.end));
            if !keep(v) {
                continue;
            }
            out.push(Paragraph {
                index: i,
                start: span.orig.start,
                end: span.orig.end,
                char_start,
                char_end,
                text: doc.split.text.get(span.text.clone()).unwrap_or_default().to_owned(),
                kept: v.is_kept(),
                spared: matches!(v, Verdict::Spared { .. }),
                reason: match v {
                    Verdict::Drop { reason, .. } => Some(reason.as_str()),
                    _ => None,
                },
                first: match *v {
                    Verdict::Keep => None,
                    Verdict::Spared { first: f } | Verdict::Drop { first: f, .. } => {
                        Some(first(session, &self.cleaned, f, Some(i)))
                    }
                },
            });
        }
        out
    }
}

#[pymethods]
impl CleanResult {
    /// The clean text, exactly what ``newsdedup clean`` writes for this
    /// document ("" when no paragraph is kept).
    #[getter]
    fn text(&self) -> &str {
        &self.cleaned.text
    }

    /// The id given to ``clean``, if any.
    #[getter]
    fn id(&self) -> Option<&str> {
        self.cleaned.name.as_deref()
    }

    /// The document's number in the Deduper's corpus order (from 0).
    #[getter]
    fn doc(&self) -> u32 {
        self.cleaned.plan.doc
    }

    /// The input text (decoded); byte spans refer to its UTF-8 encoding.
    #[getter]
    fn original(&self) -> &str {
        &self.cleaned.doc.original
    }

    /// Every paragraph, in order.
    #[getter]
    fn paragraphs(&self, py: Python<'_>) -> Vec<Paragraph> {
        self.paragraphs_where(py, |_| true)
    }

    /// The kept paragraphs (including spared short repeats).
    #[getter]
    fn kept(&self, py: Python<'_>) -> Vec<Paragraph> {
        self.paragraphs_where(py, |v| v.is_kept())
    }

    /// The dropped paragraphs, each with its reason and first occurrence.
    #[getter]
    fn dropped(&self, py: Python<'_>) -> Vec<Paragraph> {
        self.paragraphs_where(py, |v| !v.is_kept())
    }

    /// Number of kept paragraphs.
    #[getter]
    fn n_kept(&self) -> usize {
        self.cleaned.plan.kept()
    }

    /// Number of dropped paragraphs.
    #[getter]
    fn n_dropped(&self) -> usize {
        self.cleaned.plan.verdicts.len() - self.cleaned.plan.kept()
    }

    /// True when nothing is kept (an empty, emptied or duplicate document).
    #[getter]
    fn is_empty(&self) -> bool {
        self.cleaned.plan.kept() == 0
    }

    /// For a duplicate document, the earlier document it repeats.
    #[getter]
    fn duplicate_of(&self, py: Python<'_>) -> Option<First> {
        let earlier = self.cleaned.plan.duplicate_of?;
        let owner = self.owner.get();
        let occ = Occurrence { doc: earlier, para: 0 };
        Some(py.detach(|| owner.with_session(|s| first(s, &self.cleaned, occ, None))))
    }

    /// ``(start, end, reason)`` byte ranges of the input to delete so that
    /// exactly the dropped paragraphs disappear (the CLI's ``--annotate``
    /// spans; deleting them gives the ``emit="original"`` text).
    #[getter]
    fn removal_spans(&self) -> Vec<(usize, usize, &'static str)> {
        let verdicts = &self.cleaned.plan.verdicts;
        self.cleaned
            .doc
            .removal_spans(verdicts)
            .into_iter()
            .map(|(r, i)| {
                let reason = match verdicts.get(i) {
                    Some(Verdict::Drop { reason, .. }) => reason.as_str(),
                    _ => "",
                };
                (r.start, r.end, reason)
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "CleanResult(doc={}, id={}, kept={}, dropped={})",
            self.cleaned.plan.doc,
            py_repr(&self.cleaned.name),
            self.n_kept(),
            self.n_dropped()
        )
    }
}
