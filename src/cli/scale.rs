//! The scale-out subcommands (`plan`, `keys`, `apply`, `merge-report`) and
//! the parsing of the clean options a manifest freezes (see
//! [`crate::scale`]). Thin: each calls one library function.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Parser;

use super::CleanArgs;
use crate::check::ConfigError;
use crate::config::{Config, Input, Output};
use crate::error::Error;

/// The scale-out subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ScaleCommand {
    /// Scale-out, step 0: walk the inputs as `clean` would and freeze the
    /// shards and options in WORK/manifest.json (see the README,
    /// "Scale-out").
    Plan(Box<PlanArgs>),
    /// Scale-out, step 1: write the keys and documents of one shard
    /// (WORK/keys, WORK/docs) as Parquet.
    Keys {
        /// The working folder of `plan`.
        #[arg(long, value_name = "DIR")]
        work: PathBuf,
        /// The shard's rank in the manifest.
        #[arg(long, value_name = "R")]
        shard: u32,
    },
    /// Scale-out, step 3: clean one shard with its drop list
    /// (WORK/drops/shard=R) into OUT; per-shard explain, rejects, report
    /// and new keys go to WORK.
    Apply {
        /// The working folder of `plan`.
        #[arg(long, value_name = "DIR")]
        work: PathBuf,
        /// The shard's rank in the manifest.
        #[arg(long, value_name = "R")]
        shard: u32,
        /// The clean tree, as `clean --out`.
        #[arg(long, short, value_name = "DIR")]
        out: PathBuf,
    },
    /// Scale-out, last step: the report (and explain, rejects files) of the
    /// whole run, from the shards' parts.
    MergeReport {
        /// The working folder of `plan`.
        #[arg(long, value_name = "DIR")]
        work: PathBuf,
        /// Write the JSON report here.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Write the explain lines here.
        #[arg(long, value_name = "FILE")]
        explain: Option<PathBuf>,
        /// Write the rejected lines here.
        #[arg(long, value_name = "FILE")]
        rejects: Option<PathBuf>,
    },
}

/// `newsdedup plan`: the clean options and inputs, the working folder and
/// the size of text shards.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The inputs and clean options, as for `newsdedup clean` (without
    /// --out, --in-place, --dry-run, --index, --report, --explain,
    /// --rejects, --attributes: the driver gives the outputs).
    #[command(flatten)]
    pub clean: CleanArgs,
    /// The working folder shared by every task (created if absent).
    #[arg(long, value_name = "DIR")]
    pub work: PathBuf,
    /// Text files are grouped into shards of at most this many bytes
    /// (a larger file is a shard of its own).
    #[arg(long, value_name = "N", default_value_t = crate::scale::DEFAULT_SHARD_BYTES)]
    pub shard_bytes: u64,
}

/// The parser of `newsdedup plan ARGS...` on its own (the library's
/// [`crate::scale::plan_args`] and the manifest's frozen options).
#[derive(Debug, Parser)]
#[command(name = "newsdedup plan", no_binary_name = true)]
struct PlanCli {
    #[command(flatten)]
    args: PlanArgs,
}

/// Stands in for `--explain` while parsing: `--explain-spared` requires an
/// explain file, which in a scale-out run is merge-report's to write.
const EXPLAIN_LATER: &str = "\0explain written by merge-report";

/// Parses plan arguments (without the `plan` word).
pub fn parse_plan(args: &[OsString]) -> Result<PlanArgs, Error> {
    let mut args = args.to_vec();
    let named = |a: &OsString, flag: &str| a == flag || a.to_str().is_some_and(|a| a.starts_with(&format!("{flag}=")));
    if args.iter().any(|a| a == "--explain-spared") && !args.iter().any(|a| named(a, "--explain")) {
        args.extend(["--explain".into(), EXPLAIN_LATER.into()]);
    }
    let mut parsed =
        PlanCli::try_parse_from(args).map(|c| c.args).map_err(|e| ConfigError::Usage(e.render().to_string()))?;
    if parsed.clean.explain.as_deref() == Some(Path::new(EXPLAIN_LATER)) {
        parsed.clean.explain = None;
    }
    Ok(parsed)
}

/// The configuration `plan` freezes: the clean options with the (absolute)
/// inputs, writing nothing. Refuses what makes no sense distributed.
pub fn plan_config(args: PlanArgs) -> Result<Config, Error> {
    let c = &args.clean;
    let refused = [
        (c.out.is_some(), "--out (give it to apply)"),
        (c.in_place, "--in-place"),
        (c.dry_run, "--dry-run"),
        (c.index.is_some(), "--index (a cluster index is a folder of Parquet batches; see `index export`)"),
        (c.report.is_some(), "--report (give it to merge-report)"),
        (c.explain.is_some(), "--explain (give it to merge-report)"),
        (c.rejects.is_some(), "--rejects (give it to merge-report)"),
        (c.attributes.is_some(), "--attributes"),
        (c.input.iter().any(|p| p.as_os_str() == "-"), "standard input (`-`)"),
        (c.input.is_empty(), "no input"),
    ];
    if let Some((_, what)) = refused.iter().find(|(bad, _)| *bad) {
        return Err(ConfigError::Usage(format!("plan: {what} is not available in a scale-out run")).into());
    }
    let mut clean = args.clean;
    clean.input =
        clean.input.iter().map(|p| std::path::absolute(p).map_err(|e| Error::io(p, e))).collect::<Result<_, _>>()?;
    clean.dry_run = true;
    clean.into_config()
}

/// The configuration of one shard's step: the options frozen in the
/// manifest, the manifest's roots as inputs, and `output`.
pub fn shard_config(options: &[String], roots: &[PathBuf], output: Output, manifest: &Path) -> Result<Config, Error> {
    let args: Vec<OsString> = options.iter().map(OsString::from).collect();
    let parsed = parse_plan(&args).map_err(|e| Error::invalid(manifest, format!("options: {e}")))?;
    let mut cfg = plan_config(parsed).map_err(|e| Error::invalid(manifest, format!("options: {e}")))?;
    cfg.input = match roots {
        [one] => Input::Path(one.clone()),
        _ => Input::Paths(roots.to_vec()),
    };
    cfg.output = output;
    cfg.quiet = true;
    cfg.progress = false;
    Ok(cfg)
}
