//! The checks a configuration must pass before a run:
//! [`Config::validate`]. Every check of a run is here, made before anything
//! is created or written: options that contradict each other, and paths that
//! would collide (outputs inside the input, side files on the same file or
//! on the data stream, an index inside the input). A failed check is a
//! [`ConfigError`], which names the fields concerned; its message, which
//! names the command-line options users know the fields by, is written in
//! `cli.rs` (the one module that knows the command line).

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::{Config, Input, Output};
use crate::dedup::Scope;
use crate::error::{Error, Result};
use crate::side::Target;
use crate::write::resolve;

/// A side file of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// [`Config::report`].
    Report,
    /// [`Config::explain`].
    Explain,
    /// [`Config::rejects`].
    Rejects,
}

/// Why a configuration cannot be run (see [`Config::validate`]).
#[derive(Debug)]
pub enum ConfigError {
    /// [`Output::Dir`] or [`Output::InPlace`] with [`Input::Stdin`].
    StdinToFiles,
    /// [`Config::annotate`] names [`Config::text_field`].
    AnnotateIsTextField {
        /// The field.
        field: String,
    },
    /// [`Config::index`] with a document scope ([`crate::dedup::Rules::scope`]).
    IndexNeedsCorpusScope,
    /// A side file on standard output while [`Output::Stdout`] carries the data.
    SideOnStdout {
        /// Which.
        side: Side,
        /// Its path.
        path: PathBuf,
    },
    /// Two side files name the same file (or both standard output).
    SidesCollide {
        /// The later one.
        side: Side,
        /// The earlier one.
        other: Side,
        /// The path of the later one.
        path: PathBuf,
    },
    /// A side file inside the [`Output::Dir`] folder.
    SideInsideOut {
        /// Which.
        side: Side,
        /// Its path.
        path: PathBuf,
        /// The output folder.
        out: PathBuf,
    },
    /// A side file that is the input or inside it.
    SideIntoInput {
        /// Which.
        side: Side,
        /// Its path.
        path: PathBuf,
        /// The input.
        input: PathBuf,
    },
    /// The [`Output::Dir`] folder is the input.
    OutIsInput {
        /// The output folder.
        out: PathBuf,
    },
    /// The [`Output::Dir`] folder is inside the input tree.
    OutInsideInput {
        /// The output folder.
        out: PathBuf,
        /// The input.
        input: PathBuf,
    },
    /// The [`Output::Dir`] folder contains the input tree.
    OutContainsInput {
        /// The output folder.
        out: PathBuf,
        /// The input.
        input: PathBuf,
    },
    /// [`Config::index`] is the input or inside it.
    IndexInsideInput {
        /// The index folder.
        index: PathBuf,
        /// The input.
        input: PathBuf,
    },
    /// The input is inside [`Config::index`].
    InputInsideIndex {
        /// The index folder.
        index: PathBuf,
        /// The input.
        input: PathBuf,
    },
    /// A directory input with [`Output::Stdout`]: a tree is written to a folder.
    DirectoryToStdout {
        /// The input.
        input: PathBuf,
    },
    /// A file-name pattern of [`crate::walk::WalkOptions::globs`] is not valid.
    Glob(String),
    /// A usage error of the formats and conventions (several inputs,
    /// `--attributes`, `--annotate`): what is wrong and what to do.
    Usage(String),
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::Config(e)
    }
}

impl Config {
    /// Checks the configuration; an `Err` ([`Error::Config`], or an I/O
    /// error naming a path that cannot be resolved) says what to change.
    /// Made by [`crate::pipeline::run`] before anything else. Looks at the
    /// file system (paths are resolved) but changes nothing.
    pub fn validate(&self) -> Result<()> {
        if self.input == Input::Stdin && matches!(self.output, Output::InPlace { .. } | Output::Dir(_)) {
            return Err(ConfigError::StdinToFiles.into());
        }
        if let Some(field) = self.annotate.as_ref().filter(|f| **f == self.text_field) {
            return Err(ConfigError::AnnotateIsTextField { field: field.clone() }.into());
        }
        if self.index.is_some() && self.rules.scope != Scope::Corpus {
            return Err(ConfigError::IndexNeedsCorpusScope.into());
        }
        check_side_files(self)?;
        if self.input == Input::Stdin && self.attributes.is_some() {
            let msg = "--attributes needs file or directory inputs: standard input has no name to mirror";
            return Err(ConfigError::Usage(msg.into()).into());
        }
        for root in self.input.paths() {
            if self.output == Output::Stdout && root.is_dir() {
                return Err(ConfigError::DirectoryToStdout { input: root.clone() }.into());
            }
            if let Output::Dir(out) = &self.output {
                check_out_dir(root, out)?;
            }
            if let Some(index) = &self.index {
                check_apart(root, index)?;
            }
            if let Some(dir) = &self.attributes {
                // Attribute files inside an input would be read as documents by the next run.
                check_out_dir(root, dir)?;
            }
        }
        Ok(())
    }
}

/// Refuses side files that would overwrite each other, the cleaned output
/// or the input, and `-` when standard output carries the data.
fn check_side_files(cfg: &Config) -> Result<()> {
    let sides: Vec<(Side, &PathBuf)> =
        [(Side::Report, &cfg.report), (Side::Explain, &cfg.explain), (Side::Rejects, &cfg.rejects)]
            .into_iter()
            .filter_map(|(side, p)| p.as_ref().map(|p| (side, p)))
            .collect();
    let mut seen: Vec<(Side, &PathBuf, Option<PathBuf>)> = Vec::new();
    for (side, path) in sides {
        let target = Target::of(path).map_err(|e| Error::io(path, e))?;
        if target == Target::Stdout && cfg.output == Output::Stdout {
            return Err(ConfigError::SideOnStdout { side, path: path.clone() }.into());
        }
        let resolved = match &target {
            Target::Atomic(p) => Some(resolve(p).map_err(|e| Error::io(path, e))?),
            Target::Direct(p) => fs::canonicalize(p).ok(),
            _ => None,
        };
        let atomic = matches!(target, Target::Atomic(_));
        for &(other, other_path, ref other_resolved) in &seen {
            let same_stream = target == Target::Stdout && Target::of(other_path).ok() == Some(Target::Stdout);
            if same_stream || (resolved.is_some() && resolved == *other_resolved) {
                return Err(ConfigError::SidesCollide { side, other, path: path.clone() }.into());
            }
        }
        if let (true, Some(r), Output::Dir(out)) = (atomic, &resolved, &cfg.output) {
            let out_r = resolve(out).map_err(|e| Error::io(out, e))?;
            if r.starts_with(&out_r) {
                return Err(ConfigError::SideInsideOut { side, path: path.clone(), out: out.clone() }.into());
            }
        }
        for root in cfg.input.paths().iter().filter(|_| atomic) {
            check_side_file(root, path, side)?;
        }
        seen.push((side, path, resolved));
    }
    Ok(())
}

/// Refuses a side file that is the input or lies inside the input tree:
/// the input is never written.
pub fn check_side_file(input: &Path, path: &Path, side: Side) -> Result<()> {
    let i = resolve(input).map_err(|e| Error::io(input, e))?;
    let p = resolve(path).map_err(|e| Error::io(path, e))?;
    if p == i || p.starts_with(&i) {
        return Err(ConfigError::SideIntoInput { side, path: path.into(), input: input.into() }.into());
    }
    Ok(())
}

/// Refuses an output folder equal to, inside, or containing the input.
pub fn check_out_dir(input: &Path, out: &Path) -> Result<()> {
    let i = resolve(input).map_err(|e| Error::io(input, e))?;
    let o = resolve(out).map_err(|e| Error::io(out, e))?;
    let (out, input) = (out.to_path_buf(), input.to_path_buf());
    if o == i {
        return Err(ConfigError::OutIsInput { out }.into());
    }
    if o.starts_with(&i) {
        return Err(ConfigError::OutInsideInput { out, input }.into());
    }
    if i.starts_with(&o) {
        return Err(ConfigError::OutContainsInput { out, input }.into());
    }
    Ok(())
}

/// The index must not lie inside the input (its files would be read as
/// documents, and an in-place run would rewrite them), nor hold it.
fn check_apart(root: &Path, index: &Path) -> Result<()> {
    let r = resolve(root).map_err(|e| Error::io(root, e))?;
    let i = resolve(index).map_err(|e| Error::io(index, e))?;
    let (index, input) = (index.to_path_buf(), root.to_path_buf());
    if i == r || i.starts_with(&r) {
        return Err(ConfigError::IndexInsideInput { index, input }.into());
    }
    if r.starts_with(&i) {
        return Err(ConfigError::InputInsideIndex { index, input }.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        fs::create_dir(&input).unwrap();
        let mut cfg = Config::new(Input::Path(input.clone()), Output::Dir(dir.path().join("out")));
        cfg.report = Some(dir.path().join("r.json"));
        cfg.explain = Some(dir.path().join("e.jsonl"));
        assert!(check_side_files(&cfg).is_ok());
        cfg.rejects = Some(dir.path().join("./e.jsonl"));
        assert!(check_side_files(&cfg).unwrap_err().to_string().contains("--rejects and --explain name the same file"));
        cfg.rejects = Some(dir.path().join("out/x/rejects.jsonl"));
        assert!(check_side_files(&cfg).unwrap_err().to_string().contains("inside --out"));
        cfg.rejects = Some(input.join("rejects.jsonl"));
        assert!(check_side_files(&cfg).unwrap_err().to_string().contains("would write into the input"));
        cfg.rejects = None;
        cfg.report = Some("-".into());
        assert!(check_side_files(&cfg).is_ok(), "stdout is free with --out");
        cfg.output = Output::Stdout;
        assert!(check_side_files(&cfg).unwrap_err().to_string().contains("standard output carries the cleaned data"));
    }

    #[test]
    fn side_files_inside_the_input_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        fs::create_dir(&input).unwrap();
        assert!(check_side_file(&input, &input.join("a/1.txt"), Side::Explain).is_err());
        assert!(check_side_file(&input, &input, Side::Report).is_err());
        assert!(check_side_file(&input, &dir.path().join("report.json"), Side::Report).is_ok());
    }

    #[test]
    fn out_dir_inside_or_equal_or_around_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        fs::create_dir(&input).unwrap();
        assert!(check_out_dir(&input, &input).is_err());
        assert!(check_out_dir(&input, &input.join("clean/x")).is_err());
        assert!(check_out_dir(&input, &input.join("../in/sub")).is_err());
        assert!(check_out_dir(&input, dir.path()).is_err());
        assert!(check_out_dir(&input, &dir.path().join("out")).is_ok());
    }

    #[test]
    fn contradicting_options_are_refused() {
        let mut cfg = Config::new(Input::Stdin, Output::Dir("out".into()));
        assert!(cfg.validate().unwrap_err().to_string().contains("need a file or directory input"));
        cfg.output = Output::Stdout;
        assert!(cfg.validate().is_ok());
        cfg.annotate = Some("text".into());
        assert!(cfg.validate().unwrap_err().to_string().contains("must not be the text field"));
        cfg.annotate = Some("dropped".into());
        cfg.index = Some("ix".into());
        cfg.rules.scope = Scope::Document;
        assert_eq!(cfg.validate().unwrap_err().to_string(), "--index needs --scope corpus");
        cfg.rules.scope = Scope::Corpus;
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn an_index_inside_the_input_or_around_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        fs::create_dir(&input).unwrap();
        assert!(check_apart(&input, &input.join("ix")).unwrap_err().to_string().contains("is inside the input"));
        assert!(check_apart(&input, dir.path()).unwrap_err().to_string().contains("is inside --index"));
        assert!(check_apart(&input, &dir.path().join("ix")).is_ok());
    }
}
