//! The messages of a configuration that cannot be run ([`ConfigError`]),
//! in terms of the command line: the library names fields, this names the
//! options that set them.

use crate::check::{ConfigError, Side};

/// The option of a side file.
fn side_flag(side: Side) -> &'static str {
    match side {
        Side::Report => "--report",
        Side::Explain => "--explain",
        Side::Rejects => "--rejects",
    }
}

/// The messages of [`ConfigError`], in terms of the command line.
impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::StdinToFiles => f.write_str(
                "--in-place and --out need a file or directory input; standard input is cleaned to standard output",
            ),
            ConfigError::AnnotateIsTextField { field } => {
                write!(f, "--annotate={field}: the annotation field must not be the text field {field:?}")
            }
            ConfigError::IndexNeedsCorpusScope => f.write_str("--index needs --scope corpus"),
            ConfigError::SideOnStdout { side, path } => write!(
                f,
                "{}: {}: standard output carries the cleaned data; give a file name (or --out DIR)",
                path.display(),
                side_flag(*side)
            ),
            ConfigError::SidesCollide { side, other, path } => write!(
                f,
                "{}: {} and {} name the same file; give each its own",
                path.display(),
                side_flag(*side),
                side_flag(*other)
            ),
            ConfigError::SideInsideOut { side, path, out } => write!(
                f,
                "{}: {} is inside --out {}: it could overwrite a cleaned file",
                path.display(),
                side_flag(*side),
                out.display()
            ),
            ConfigError::SideIntoInput { side, path, input } => {
                write!(f, "{}: {} would write into the input {}", path.display(), side_flag(*side), input.display())
            }
            ConfigError::OutIsInput { out } => write!(
                f,
                "{}: --out is the input itself; the input is never modified (use --in-place to clean it in place)",
                out.display()
            ),
            ConfigError::OutInsideInput { out, input } => {
                write!(f, "{}: --out is inside the input tree {}", out.display(), input.display())
            }
            ConfigError::OutContainsInput { out, input } => {
                write!(f, "{}: --out contains the input tree {}", out.display(), input.display())
            }
            ConfigError::IndexInsideInput { index, input } => write!(
                f,
                "--index {} is inside the input {}: give an index folder outside it",
                index.display(),
                input.display()
            ),
            ConfigError::InputInsideIndex { index, input } => {
                write!(f, "the input {} is inside --index {}", input.display(), index.display())
            }
            ConfigError::DirectoryToStdout { input } => {
                write!(f, "{}: is a directory; give --out DIR (or --dry-run, or --in-place)", input.display())
            }
            ConfigError::Glob(e) => write!(f, "--glob: {e}"),
            ConfigError::Usage(m) => f.write_str(m),
        }
    }
}
