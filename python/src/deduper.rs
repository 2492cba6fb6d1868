//! `newsdedup.Deduper`: a [`Session`] behind a mutex. Every call releases
//! the GIL before taking the mutex, so Python threads run while Rust works
//! and two threads sharing one Deduper take turns instead of deadlocking.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use newsdedup::dedup::{DEFAULT_MIN_CHARS, DEFAULT_MIN_CHARS_WITHIN};
use newsdedup::document::Document;
use newsdedup::read::{DecodeError, EncodingPolicy};
use newsdedup::session::{Session, SessionError, signature};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};
use rayon::prelude::*;

use crate::args::{OptionArgs, Raw, batch_name, raw};
use crate::errors::{decode_error, session_error};
use crate::result::CleanResult;

/// A failure inside Rust, turned into an exception once the GIL is back.
enum Fail {
    Decode(DecodeError, Option<String>),
    Session(SessionError),
    Signature(signature::SignatureError),
}

impl Fail {
    fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            Fail::Decode(cause, name) => decode_error(py, &cause, name.as_deref()),
            Fail::Session(e) => session_error(py, &e),
            Fail::Signature(e) => PyValueError::new_err(e.to_string()),
        }
    }
}

impl From<SessionError> for Fail {
    fn from(e: SessionError) -> Fail {
        Fail::Session(e)
    }
}

/// A corpus-order deduper: each call to ``clean`` / ``clean_batch`` decides
/// the next documents against every earlier one (the call order is the
/// corpus order), with the rules of ``newsdedup clean`` and its options.
///
/// With ``index=PATH`` the persistent index of ``newsdedup clean --index``
/// is opened (created if absent) and locked (``IndexLockedError`` for a
/// second user), and ``batch=NAME`` is required: the Deduper is a run of that
/// batch, like ``newsdedup clean --index PATH --batch NAME``. Paragraphs
/// that earlier runs kept are dropped, and ``commit()`` adds this Deduper's
/// first occurrences atomically (crash-safe: the index is either as before
/// or fully updated). A Deduper of a batch the index already holds is a
/// *retry*: it keeps exactly what that batch kept first (documents are
/// recognised by their first kept paragraph, not by ``id``, which is only a
/// label) and its commit records nothing new. Give each distinct input its
/// own batch name (a day, a crawl, a shard set). Commit once the output is
/// stored. As a context manager the Deduper commits on a clean exit and
/// releases the index either way.
#[pyclass(frozen, module = "newsdedup._core")]
pub struct Deduper {
    session: Mutex<Session>,
    encoding: EncodingPolicy,
}

impl Deduper {
    fn lock(&self) -> MutexGuard<'_, Session> {
        // A panic while locked cannot leave the session half-updated in a
        // way that matters more than the panic itself: keep going.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the session (call without the GIL).
    pub fn with_session<R>(&self, f: impl FnOnce(&Session) -> R) -> R {
        f(&self.lock())
    }

    fn decode(&self, raw: Raw, name: &Option<String>) -> Result<String, Fail> {
        raw.text(self.encoding).map_err(|e| Fail::Decode(e, name.clone()))
    }
}

#[pymethods]
impl Deduper {
    #[new]
    #[pyo3(signature = (*, split="auto", quotes="fold", key="exact", min_chars=DEFAULT_MIN_CHARS,
                        min_chars_within=DEFAULT_MIN_CHARS_WITHIN, scope="corpus", emit="normalized",
                        encoding="repair", index=None, batch=None, label=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        split: &str,
        quotes: &str,
        key: &str,
        min_chars: usize,
        min_chars_within: usize,
        scope: &str,
        emit: &str,
        encoding: &str,
        index: Option<PathBuf>,
        batch: Option<&Bound<'_, PyAny>>,
        label: Option<String>,
    ) -> PyResult<Deduper> {
        let opts = OptionArgs { split, quotes, key, min_chars, min_chars_within, scope, emit, encoding }.options()?;
        let session = match (index, batch) {
            (None, None) => Session::new(opts),
            (None, Some(_)) => return Err(PyValueError::new_err("batch= needs index= (a batch is a run of an index)")),
            (Some(path), None) => {
                return Err(PyValueError::new_err(format!(
                    "{}: index= needs batch=NAME, the name of the input this Deduper cleans (a day, a crawl): \
                     a Deduper of a batch the index holds is a retry and keeps what that batch kept",
                    path.display()
                )));
            }
            (Some(path), Some(batch)) => {
                let batch = batch_name(batch)?;
                let label = label.unwrap_or_else(|| batch.display());
                py.detach(|| Session::with_index(opts, &path, batch, &label)).map_err(|e| session_error(py, &e))?
            }
        };
        Ok(Deduper { session: Mutex::new(session), encoding: opts.encoding })
    }

    /// Cleans the next document in corpus order and returns a
    /// ``CleanResult``: ``.text`` is what ``newsdedup clean`` writes for it.
    /// ``text`` is ``str`` or ``bytes`` (decoded like a file, by
    /// ``encoding``; a ``DecodeError`` carries the id and byte offset).
    #[pyo3(signature = (text, id=None))]
    fn clean(slf: &Bound<'_, Self>, text: &Bound<'_, PyAny>, id: Option<String>) -> PyResult<CleanResult> {
        let (py, this) = (slf.py(), slf.get());
        let raw = raw(text, this.encoding, id.as_deref())?;
        let cleaned = py
            .detach(|| -> Result<_, Fail> { Ok(this.lock().clean(this.decode(raw, &id)?, id)?) })
            .map_err(|f| f.into_py(py))?;
        Ok(CleanResult::new(cleaned, slf.clone().unbind()))
    }

    /// Cleans the documents of ``texts`` (an iterable of ``str``/``bytes``) in
    /// order and returns their ``CleanResult`` list: the same results as
    /// ``clean`` called on each in turn. Splitting, hashing, index lookups and
    /// rendering run on all cores with the GIL released; ``ids`` (same
    /// length) labels the documents. A document that cannot be decoded, or a
    /// closed index, raises before any document of the batch is decided. The threads are rayon's (one per core; ``RAYON_NUM_THREADS``
    /// sets the number).
    #[pyo3(signature = (texts, ids=None))]
    fn clean_batch(
        slf: &Bound<'_, Self>,
        texts: &Bound<'_, PyAny>,
        ids: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<CleanResult>> {
        let (py, this) = (slf.py(), slf.get());
        let names: Vec<Option<String>> = match ids {
            Some(ids) => ids.try_iter()?.map(|i| i?.extract::<Option<String>>()).collect::<PyResult<_>>()?,
            None => Vec::new(),
        };
        let mut raws = Vec::with_capacity(names.len());
        for (i, t) in texts.try_iter()?.enumerate() {
            raws.push(raw(&t?, this.encoding, names.get(i).and_then(|n| n.as_deref()))?);
        }
        if ids.is_some() && names.len() != raws.len() {
            return Err(PyValueError::new_err(format!("{} texts but {} ids", raws.len(), names.len())));
        }
        let mut names = names.into_iter();
        let docs: Vec<(Raw, Option<String>)> = raws.into_iter().map(|r| (r, names.next().flatten())).collect();
        let cleaned = py
            .detach(|| -> Result<_, Fail> {
                let docs: Vec<(String, Option<String>)> = docs
                    .into_par_iter()
                    .map(|(r, name)| this.decode(r, &name).map(|t| (t, name)))
                    .collect::<Result<_, _>>()?;
                Ok(this.lock().clean_batch(docs)?)
            })
            .map_err(|f| f.into_py(py))?;
        Ok(cleaned.into_iter().map(|c| CleanResult::new(c, slf.clone().unbind())).collect())
    }

    /// Stage 1 of a run split over processes: the document's paragraph keys,
    /// as bytes (no decision, nothing remembered).
    fn signature<'py>(&self, py: Python<'py>, text: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let raw = raw(text, self.encoding, None)?;
        let sig = py
            .detach(|| -> Result<Vec<u8>, Fail> {
                let text = self.decode(raw, &None)?;
                let opts = *self.lock().options();
                Ok(signature::encode(&Document::prepare(text, &opts.text)))
            })
            .map_err(|f| f.into_py(py))?;
        Ok(PyBytes::new(py, &sig))
    }

    /// Stage 2 of a split run: decides the next document in corpus order from
    /// its ``signature`` bytes, as ``clean`` would, and returns its plan (one
    /// byte per paragraph).
    #[pyo3(signature = (signature, id=None))]
    fn decide_signature<'py>(
        &self,
        py: Python<'py>,
        signature: &[u8],
        id: Option<String>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let plan = py
            .detach(|| -> Result<Vec<u8>, Fail> {
                let (keys, whole) = signature::decode(signature).map_err(Fail::Signature)?;
                let plan = self.lock().decide_keys(&keys, &whole, id, None)?;
                Ok(signature::encode_plan(&plan))
            })
            .map_err(|f| f.into_py(py))?;
        Ok(PyBytes::new(py, &plan))
    }

    /// Stage 3 of a split run: the clean text of ``text`` by the ``plan`` that
    /// ``decide_signature`` made for it ("" when nothing is kept).
    /// ``ValueError`` if the plan does not fit the text.
    fn apply_plan(&self, py: Python<'_>, text: &Bound<'_, PyAny>, plan: &[u8]) -> PyResult<String> {
        let raw = raw(text, self.encoding, None)?;
        py.detach(|| -> Result<String, Fail> {
            let text = self.decode(raw, &None)?;
            let opts = *self.lock().options();
            let doc = Document::prepare(text, &opts.text);
            let verdicts = signature::decode_plan(&doc, plan).map_err(Fail::Signature)?;
            Ok(doc.render(&verdicts, opts.emit))
        })
        .map_err(|f| f.into_py(py))
    }

    /// Adds the first occurrences decided since the last commit to the index,
    /// in one atomic step, and records them as a run of the batch (labelled
    /// ``label``); the index stays open, and later documents of this Deduper
    /// are decided as before. Returns the number of keys added: 0 without an
    /// index, and 0 with nothing recorded for a retry that found nothing new.
    fn commit(&self, py: Python<'_>) -> PyResult<u64> {
        py.detach(|| self.lock().commit()).map_err(|e| session_error(py, &e))
    }

    /// Releases the index and its lock without committing; later documents
    /// raise ``NewsdedupError`` (kind "closed"). No effect without an index.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.lock().close());
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyType>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let committed = if exc_type.is_none() { self.commit(py).map(drop) } else { Ok(()) };
        self.close(py);
        committed.map(|()| false)
    }

    /// Documents decided so far.
    #[getter]
    fn documents(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().documents())
    }

    /// Distinct paragraph keys seen in this session.
    #[getter]
    fn distinct_keys(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().distinct_keys())
    }

    /// The index folder, or None.
    #[getter]
    fn index(&self, py: Python<'_>) -> Option<String> {
        py.detach(|| self.lock().index_path().map(|p| p.to_string_lossy().into_owned()))
    }

    /// True while the index is open and locked by this Deduper.
    #[getter]
    fn index_open(&self, py: Python<'_>) -> bool {
        py.detach(|| self.lock().index_open())
    }

    /// True when the index already held a committed run of this Deduper's
    /// batch when it was opened (or at its last ``commit()``): a retry.
    #[getter]
    fn is_retry(&self, py: Python<'_>) -> bool {
        py.detach(|| self.lock().is_retry())
    }
}
