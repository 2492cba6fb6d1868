//! The checks a configuration must pass before a run:
//! [`Config::validate`]. Every check of a run is here, made before anything
//! is created or written: options that contradict each other, and paths that
//! would collide (outputs inside the input, side files on the same file or
//! on the data stream, an index inside the input). The messages name the
//! command-line options, the names users know the fields by.

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::{Config, Input, Output};
use crate::dedup::Scope;
use crate::error::{Error, Result};
use crate::side::Target;
use crate::write::resolve;

impl Config {
    /// Checks the configuration; an `Err` names what to change. Made by
    /// [`crate::pipeline::run`] before anything else, and by the command
    /// line as soon as it is parsed. Looks at the file system (paths are
    /// resolved) but changes nothing.
    pub fn validate(&self) -> Result<()> {
        if self.input == Input::Stdin && matches!(self.output, Output::InPlace { .. } | Output::Dir(_)) {
            return Err(Error::Config(
                "--in-place and --out need a file or directory input; standard input is cleaned to standard output"
                    .into(),
            ));
        }
        if let Some(field) = self.annotate.as_ref().filter(|f| **f == self.text_field) {
            return Err(Error::Config(format!(
                "--annotate={field}: the annotation field must not be the text field {field:?}"
            )));
        }
        if self.index.is_some() && self.rules.scope != Scope::Corpus {
            return Err(Error::Config("--index needs --scope corpus".into()));
        }
        check_side_files(self)?;
        if let (Input::Path(root), Output::Dir(out)) = (&self.input, &self.output) {
            check_out_dir(root, out)?;
        }
        if let (Input::Path(root), Some(index)) = (&self.input, &self.index) {
            check_apart(root, index)?;
        }
        Ok(())
    }
}

/// Refuses side files that would overwrite each other, the cleaned output
/// or the input, and `-` when standard output carries the data. Called
/// before anything is created or written.
fn check_side_files(cfg: &Config) -> Result<()> {
    let sides: Vec<(&str, &PathBuf)> =
        [("--report", &cfg.report), ("--explain", &cfg.explain), ("--rejects", &cfg.rejects)]
            .into_iter()
            .filter_map(|(flag, p)| p.as_ref().map(|p| (flag, p)))
            .collect();
    let mut seen: Vec<(&str, &PathBuf, Option<PathBuf>)> = Vec::new();
    for (flag, path) in sides {
        let target = Target::of(path).map_err(|e| Error::io(path, e))?;
        if target == Target::Stdout && cfg.output == Output::Stdout {
            return Err(Error::invalid(
                path,
                format!("{flag}: standard output carries the cleaned data; give a file name (or --out DIR)"),
            ));
        }
        let resolved = match &target {
            Target::Atomic(p) => Some(resolve(p).map_err(|e| Error::io(path, e))?),
            Target::Direct(p) => fs::canonicalize(p).ok(),
            _ => None,
        };
        let atomic = matches!(target, Target::Atomic(_));
        for (other, other_path, other_resolved) in &seen {
            let same_stream = target == Target::Stdout && Target::of(other_path).ok() == Some(Target::Stdout);
            if same_stream || (resolved.is_some() && resolved == *other_resolved) {
                return Err(Error::invalid(path, format!("{flag} and {other} name the same file; give each its own")));
            }
        }
        if let (true, Some(r), Output::Dir(out)) = (atomic, &resolved, &cfg.output) {
            let out_r = resolve(out).map_err(|e| Error::io(out, e))?;
            if r.starts_with(&out_r) {
                return Err(Error::invalid(
                    path,
                    format!("{flag} is inside --out {}: it could overwrite a cleaned file", out.display()),
                ));
            }
        }
        if let (true, Input::Path(root)) = (atomic, &cfg.input) {
            check_side_file(root, path, flag)?;
        }
        seen.push((flag, path, resolved));
    }
    Ok(())
}

/// Refuses a side file (`--report`, `--explain`, `--rejects`) that is the
/// input or lies inside the input tree: the input is never written.
pub fn check_side_file(input: &Path, path: &Path, flag: &str) -> Result<()> {
    let i = resolve(input).map_err(|e| Error::io(input, e))?;
    let p = resolve(path).map_err(|e| Error::io(path, e))?;
    if p == i || p.starts_with(&i) {
        return Err(Error::invalid(path, format!("{flag} would write into the input {}", input.display())));
    }
    Ok(())
}

/// Refuses an output folder equal to, inside, or containing the input.
pub fn check_out_dir(input: &Path, out: &Path) -> Result<()> {
    let i = resolve(input).map_err(|e| Error::io(input, e))?;
    let o = resolve(out).map_err(|e| Error::io(out, e))?;
    if o == i {
        return Err(Error::invalid(
            out,
            "--out is the input itself; the input is never modified (use --in-place to clean it in place)",
        ));
    }
    if o.starts_with(&i) {
        return Err(Error::invalid(out, format!("--out is inside the input tree {}", input.display())));
    }
    if i.starts_with(&o) {
        return Err(Error::invalid(out, format!("--out contains the input tree {}", input.display())));
    }
    Ok(())
}

/// `--index` must not lie inside the input (its files would be read as
/// documents, and `--in-place` would rewrite them), nor hold it.
fn check_apart(root: &Path, index: &Path) -> Result<()> {
    let r = resolve(root).map_err(|e| Error::io(root, e))?;
    let i = resolve(index).map_err(|e| Error::io(index, e))?;
    if i == r || i.starts_with(&r) {
        let msg = format!(
            "--index {} is inside the input {}: give an index folder outside it",
            index.display(),
            root.display()
        );
        return Err(Error::Config(msg));
    }
    if r.starts_with(&i) {
        return Err(Error::Config(format!("the input {} is inside --index {}", root.display(), index.display())));
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
        assert!(check_side_file(&input, &input.join("a/1.txt"), "--explain").is_err());
        assert!(check_side_file(&input, &input, "--report").is_err());
        assert!(check_side_file(&input, &dir.path().join("report.json"), "--report").is_ok());
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
