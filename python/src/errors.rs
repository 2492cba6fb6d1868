//! Rust errors as Python exceptions (the classes live in
//! `newsdedup/_errors.py`), carrying the path, line and byte offset that the
//! Rust error carries, and the kind names of the CLI's report.

use std::path::Path;

use newsdedup::error::Error;
use newsdedup::index::IndexError;
use newsdedup::read::DecodeError;
use newsdedup::session::SessionError;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// An instance of `newsdedup._errors.<class>` as a `PyErr`.
pub fn raise(
    py: Python<'_>,
    class: &str,
    message: &str,
    path: Option<&str>,
    line: Option<u64>,
    offset: Option<usize>,
    kind: &str,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = py.import("newsdedup._errors")?.getattr(class)?;
        let kw = PyDict::new(py);
        kw.set_item("path", path)?;
        kw.set_item("line", line)?;
        kw.set_item("offset", offset)?;
        kw.set_item("kind", kind)?;
        Ok(PyErr::from_value(cls.call((message,), Some(&kw))?))
    };
    build().unwrap_or_else(|e| e)
}

fn offset_of(cause: &DecodeError) -> usize {
    match *cause {
        DecodeError::InvalidUtf8 { offset } | DecodeError::InvalidUtf16 { offset } | DecodeError::Binary { offset } => {
            offset
        }
    }
}

/// A document that cannot be decoded; `name` is its id or path.
pub fn decode_error(py: Python<'_>, cause: &DecodeError, name: Option<&str>) -> PyErr {
    let kind = if matches!(cause, DecodeError::Binary { .. }) { "binary" } else { "encoding" };
    let message = match name {
        Some(n) => format!("{n}: {cause}"),
        None => cause.to_string(),
    };
    raise(py, "DecodeError", &message, name, None, Some(offset_of(cause)), kind)
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A file error of the library (reading a document).
pub fn file_error(py: Python<'_>, e: &Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Decode { path, cause } => {
            raise(py, "DecodeError", &message, Some(&path_str(path)), None, Some(offset_of(cause)), e.kind())
        }
        Error::Io { path, .. } | Error::TooLarge { path, .. } => {
            raise(py, "FileError", &message, Some(&path_str(path)), None, None, e.kind())
        }
        Error::Invalid { path, .. } => {
            raise(py, "NewsdedupError", &message, Some(&path_str(path)), None, None, e.kind())
        }
        Error::Record { path, line, .. } => {
            raise(py, "NewsdedupError", &message, Some(&path_str(path)), Some(*line), None, e.kind())
        }
        Error::Index(ix) => index_error(py, ix),
        Error::Config(_) => PyValueError::new_err(message),
        Error::TooManyDocuments { .. }
        | Error::Threads(_)
        | Error::Signal(_)
        | Error::BrokenPipe
        | Error::Interrupted => raise(py, "NewsdedupError", &message, None, None, None, e.kind()),
    }
}

/// An error of the persistent index.
pub fn index_error(py: Python<'_>, e: &IndexError) -> PyErr {
    let message = e.to_string();
    #[allow(unreachable_patterns)] // other variants may be added: they stay errors
    let (class, kind, path) = match e {
        IndexError::Io { path, .. } => ("FileError", "index-io", Some(path)),
        IndexError::NotADirectory { path } => ("FileError", "index-not-a-directory", Some(path)),
        IndexError::Locked { path } => ("IndexLockedError", "index-locked", Some(path)),
        IndexError::Corrupt { path, .. } => ("IndexCorruptError", "index-corrupt", Some(path)),
        IndexError::Foreign { path } => ("IndexCorruptError", "index-foreign", Some(path)),
        IndexError::UnsupportedVersion { path, .. } => ("IndexCorruptError", "index-version", Some(path)),
        IndexError::Invalid { path, .. } => ("NewsdedupError", "index-invalid", Some(path)),
        _ => ("NewsdedupError", "index", None),
    };
    raise(py, class, &message, path.map(|p| path_str(p)).as_deref(), None, None, kind)
}

/// An error of a [`newsdedup::session::Session`].
pub fn session_error(py: Python<'_>, e: &SessionError) -> PyErr {
    let message = e.to_string();
    match e {
        SessionError::Index(ix) => index_error(py, ix),
        SessionError::DocumentScope(_) => PyValueError::new_err(message),
        SessionError::Closed(path) => {
            raise(py, "NewsdedupError", &message, Some(&path_str(path)), None, None, "closed")
        }
        SessionError::TooManyDocuments => raise(py, "NewsdedupError", &message, None, None, None, "too-many-documents"),
    }
}
