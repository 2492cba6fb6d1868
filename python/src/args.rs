//! Python arguments to library types: option names (the CLI's flag values)
//! and texts given as `str` or `bytes`.

use newsdedup::dedup::{Rules, Scope};
use newsdedup::document::{Emit, TextOptions};
use newsdedup::index::Batch;
use newsdedup::key::KeyMode;
use newsdedup::normalize::QuoteMode;
use newsdedup::read::{EncodingPolicy, decode};
use newsdedup::session::Options;
use newsdedup::split::SplitMode;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};

/// The keyword options shared by every entry point, as the CLI spells them.
pub struct OptionArgs<'a> {
    pub split: &'a str,
    pub quotes: &'a str,
    pub key: &'a str,
    pub min_chars: usize,
    pub min_chars_within: usize,
    pub scope: &'a str,
    pub emit: &'a str,
    pub encoding: &'a str,
}

fn pick<T: Copy>(what: &str, value: &str, choices: &[(&str, T)]) -> PyResult<T> {
    choices.iter().find(|(name, _)| *name == value).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        PyValueError::new_err(format!("{what}={value:?}: expected one of {}", names.join(", ")))
    })
}

impl OptionArgs<'_> {
    /// The library options, or `ValueError` naming the bad value.
    pub fn options(&self) -> PyResult<Options> {
        use SplitMode as S;
        Ok(Options {
            text: TextOptions {
                split: pick("split", self.split, &[("auto", S::Auto), ("line", S::Line), ("blank", S::Blank)])?,
                quotes: pick("quotes", self.quotes, &[("fold", QuoteMode::Fold), ("keep", QuoteMode::Keep)])?,
                key: pick("key", self.key, &[("exact", KeyMode::Exact), ("loose", KeyMode::Loose)])?,
            },
            rules: Rules {
                scope: pick("scope", self.scope, &[("corpus", Scope::Corpus), ("document", Scope::Document)])?,
                min_chars: self.min_chars,
                min_chars_within: self.min_chars_within,
            },
            emit: pick("emit", self.emit, &[("normalized", Emit::Normalized), ("original", Emit::Original)])?,
            encoding: encoding_policy(self.encoding)?,
        })
    }
}

/// The `batch` option: `str` (UTF-8; lone surrogates from
/// `surrogateescape` back to their bytes), `bytes` or a path-like object,
/// as `os.fsencode` turns them into bytes, so that
/// `batch=os.path.realpath(folder)` names the batch the CLI gives a run over
/// `folder` by default. An empty name is refused.
pub fn batch_name(obj: &Bound<'_, PyAny>) -> PyResult<Batch> {
    let bytes = obj.py().import("os")?.call_method1("fsencode", (obj,))?;
    let name = bytes.cast::<PyBytes>()?.as_bytes().to_vec();
    if name.is_empty() {
        return Err(PyValueError::new_err("batch: an empty name (give the batch a name)"));
    }
    Ok(Batch::Named(name))
}

/// The `encoding` option.
pub fn encoding_policy(value: &str) -> PyResult<EncodingPolicy> {
    use EncodingPolicy as E;
    pick("encoding", value, &[("repair", E::Repair), ("strict", E::Strict), ("lossy", E::Lossy)])
}

/// A document as Python gave it, copied out so it can cross into Rust
/// threads without the GIL.
pub enum Raw {
    /// A `str` (valid Unicode).
    Text(String),
    /// `bytes`, or a `str` holding lone surrogates as `surrogateescape`d bytes.
    Bytes(Vec<u8>),
}

/// Copies a `str` or `bytes` argument. A `str` with lone surrogates (what
/// `errors="surrogateescape"` makes of undecodable bytes) is turned back into
/// those bytes and decoded by the encoding policy, like a file's bytes; any
/// other lone surrogate is an error under `strict`, else U+FFFD.
pub fn raw(obj: &Bound<'_, PyAny>, policy: EncodingPolicy, name: Option<&str>) -> PyResult<Raw> {
    if let Ok(s) = obj.cast::<PyString>() {
        if let Ok(text) = s.to_cow() {
            return Ok(Raw::Text(text.into_owned()));
        }
        if let Ok(b) = s.call_method1("encode", ("utf-8", "surrogateescape")) {
            return Ok(Raw::Bytes(b.cast::<PyBytes>()?.as_bytes().to_vec()));
        }
        if policy == EncodingPolicy::Strict {
            let msg = "text holds lone surrogates (not valid Unicode)";
            return Err(crate::errors::raise(obj.py(), "DecodeError", msg, name, None, None, "encoding"));
        }
        return Ok(Raw::Text(s.to_string_lossy().into_owned()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Raw::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Raw::Bytes(b.to_vec()));
    }
    let ty = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    Err(pyo3::exceptions::PyTypeError::new_err(format!("expected str or bytes, got {ty}")))
}

impl Raw {
    /// The text, decoding bytes by `policy` (UTF-16 with a byte order mark,
    /// Windows-1252 repair, NUL bytes refused: as for a file).
    pub fn text(self, policy: EncodingPolicy) -> Result<String, newsdedup::read::DecodeError> {
        match self {
            Raw::Text(t) => Ok(t),
            Raw::Bytes(b) => decode(b, policy).map(|(t, _)| t),
        }
    }
}
