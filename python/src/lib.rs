//! The `newsdedup._core` extension module: thin bindings over the
//! `newsdedup` library ([`newsdedup::clean_text`],
//! [`newsdedup::session`], and the scale-out steps of [`newsdedup::scale`]
//! that `newsdedup.spark` drives). The Python package `newsdedup` re-exports it;
//! its documentation is in the docstrings and `newsdedup/__init__.pyi`.
#![deny(missing_docs)]

use std::path::PathBuf;

use newsdedup::CleanOptions;
use newsdedup::dedup::{DEFAULT_MIN_CHARS, DEFAULT_MIN_CHARS_WITHIN};
use pyo3::prelude::*;

mod args;
mod deduper;
mod errors;
mod result;
mod scale;

use args::{OptionArgs, raw};

/// Cleans one document on its own, like ``newsdedup clean FILE``.
#[pyfunction]
#[pyo3(signature = (text, *, split="auto", quotes="fold", key="exact", min_chars=DEFAULT_MIN_CHARS,
                    min_chars_within=DEFAULT_MIN_CHARS_WITHIN, emit="normalized", encoding="repair"))]
#[allow(clippy::too_many_arguments)]
fn clean_text(
    py: Python<'_>,
    text: &Bound<'_, PyAny>,
    split: &str,
    quotes: &str,
    key: &str,
    min_chars: usize,
    min_chars_within: usize,
    emit: &str,
    encoding: &str,
) -> PyResult<String> {
    let opts =
        OptionArgs { split, quotes, key, min_chars, min_chars_within, scope: "document", emit, encoding }.options()?;
    let raw = raw(text, opts.encoding, None)?;
    let text = py.detach(|| raw.text(opts.encoding)).map_err(|e| errors::decode_error(py, &e, None))?;
    let clean = CleanOptions { text: opts.text, rules: opts.rules, emit: opts.emit };
    Ok(py.detach(|| newsdedup::clean_text(&text, &clean)))
}

/// Reads and decodes a file as the CLI does (``--encoding``).
#[pyfunction]
#[pyo3(signature = (path, *, encoding="repair"))]
fn read_text(py: Python<'_>, path: PathBuf, encoding: &str) -> PyResult<String> {
    let policy = args::encoding_policy(encoding)?;
    py.detach(|| newsdedup::read::read_file(&path, policy)).map_err(|e| errors::file_error(py, &e))
}

/// The module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(clean_text, m)?)?;
    m.add_function(wrap_pyfunction!(read_text, m)?)?;
    scale::register(m)?;
    m.add_class::<deduper::Deduper>()?;
    m.add_class::<result::CleanResult>()?;
    m.add_class::<result::Paragraph>()?;
    m.add_class::<result::First>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
