//! `newsdedup index ...`: the maintenance commands of the persistent index
//! (stats, compact, merge) and its conversion to and from a cluster index.

use std::path::PathBuf;

use clap::Subcommand;

use super::conventions::stats_json;
use crate::error::Error;

/// `newsdedup index ...`.
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Keys, bytes on disk, segments, runs recorded and the last run.
    Stats {
        /// The index folder.
        path: PathBuf,
        /// Print the figures as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Merge all segments into one (atomically), for the fastest lookups.
    Compact {
        /// The index folder.
        path: PathBuf,
    },
    /// Add the keys of another index; where both hold a key, this index's
    /// first occurrence wins.
    Merge {
        /// The index folder to add to.
        path: PathBuf,
        /// The index folder to add from (read only).
        other: PathBuf,
    },
    /// Write a cluster index (a folder of Parquet batches, see the README,
    /// "Scale-out") holding the same batches, keys and anchors.
    Export {
        /// The index folder (read only).
        path: PathBuf,
        /// The cluster index folder to create.
        cluster: PathBuf,
    },
    /// Make a new single-node index from a cluster index.
    Import {
        /// The cluster index folder (read only).
        cluster: PathBuf,
        /// The index folder to create.
        path: PathBuf,
    },
}

impl IndexCommand {
    /// Runs the maintenance command; `stats` prints to stdout.
    pub fn run(self) -> Result<(), Error> {
        use crate::index::{Index, unix_now};
        match self {
            IndexCommand::Stats { path, json: false } => print!("{}", Index::open_existing(&path)?.stats()),
            IndexCommand::Stats { path, json: true } => {
                println!("{}", stats_json(&Index::open_existing(&path)?.stats()));
            }
            IndexCommand::Compact { path } => Index::open_existing(&path)?.compact()?,
            IndexCommand::Merge { path, other } => {
                let added = Index::open_existing(&path)?.merge_from(&other, unix_now())?;
                crate::diag::line(format_args!("added {added} keys from {}", other.display()));
            }
            IndexCommand::Export { path, cluster } => println!("{}", crate::index::cluster::export(&path, &cluster)?),
            IndexCommand::Import { cluster, path } => println!("{}", crate::index::cluster::import(&cluster, &path)?),
        }
        Ok(())
    }
}
