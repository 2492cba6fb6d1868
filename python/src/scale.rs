//! The scale-out steps (`newsdedup::scale`, README "Scale-out"): thin
//! bindings, each releasing the GIL for the whole call, so that a Spark
//! executor or the DuckDB engine's thread pool runs them in parallel. Every
//! function returns the one-line JSON summary the library returns; the
//! driver (`newsdedup.spark`) passes only paths and these summaries around.

use std::ffi::OsString;
use std::path::PathBuf;

use pyo3::prelude::*;

use crate::errors;

/// ``newsdedup plan ARGS...``: walks the inputs and writes ``WORK/manifest.json``.
#[pyfunction]
pub fn plan(py: Python<'_>, args: Vec<String>) -> PyResult<String> {
    let args: Vec<OsString> = args.into_iter().map(OsString::from).collect();
    py.detach(|| newsdedup::scale::plan_args(&args)).map_err(|e| errors::file_error(py, &e))
}

/// The keys step of shard ``rank``.
#[pyfunction]
pub fn keys(py: Python<'_>, work: PathBuf, rank: u32) -> PyResult<String> {
    py.detach(|| newsdedup::scale::keys(&work, rank)).map_err(|e| errors::file_error(py, &e))
}

/// The apply step of shard ``rank``, writing the clean files under ``out``.
#[pyfunction]
pub fn apply(py: Python<'_>, work: PathBuf, rank: u32, out: PathBuf) -> PyResult<String> {
    py.detach(|| newsdedup::scale::apply(&work, rank, &out)).map_err(|e| errors::file_error(py, &e))
}

/// Concatenates the shards' parts into the report, explain and rejects files.
#[pyfunction]
#[pyo3(signature = (work, report=None, explain=None, rejects=None))]
pub fn merge_report(
    py: Python<'_>,
    work: PathBuf,
    report: Option<PathBuf>,
    explain: Option<PathBuf>,
    rejects: Option<PathBuf>,
) -> PyResult<String> {
    py.detach(|| newsdedup::scale::merge_report(&work, report.as_deref(), explain.as_deref(), rejects.as_deref()))
        .map_err(|e| errors::file_error(py, &e))
}

/// ``newsdedup index export``: a single-node index to a cluster index folder.
#[pyfunction]
pub fn index_export(py: Python<'_>, index: PathBuf, cluster: PathBuf) -> PyResult<String> {
    py.detach(|| newsdedup::index::cluster::export(&index, &cluster)).map_err(|e| errors::file_error(py, &e))
}

/// ``newsdedup index import``: a cluster index folder to a single-node index.
#[pyfunction]
pub fn index_import(py: Python<'_>, cluster: PathBuf, index: PathBuf) -> PyResult<String> {
    py.detach(|| newsdedup::index::cluster::import(&cluster, &index)).map_err(|e| errors::file_error(py, &e))
}

/// Adds the functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(keys, m)?)?;
    m.add_function(wrap_pyfunction!(apply, m)?)?;
    m.add_function(wrap_pyfunction!(merge_report, m)?)?;
    m.add_function(wrap_pyfunction!(index_export, m)?)?;
    m.add_function(wrap_pyfunction!(index_import, m)?)?;
    Ok(())
}
