//! Several inputs in one run (`newsdedup clean a/ b/ c.jsonl --out clean/`),
//! as rg and fd take many paths.
//!
//! The corpus order is the order the inputs are given, then the relative
//! path within each (byte-wise, as for one input). Each input is mirrored
//! under `--out` by its own name: a directory `a/` as `clean/a/...`, a file
//! `c.jsonl` as `clean/c.jsonl`; names in the report, explain lines and
//! `--attributes` are these mirrored paths. Two inputs with the same name
//! would write to the same place and are refused before anything is read.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::backups;
use crate::check::ConfigError;
use crate::error::{Error, Result};
use crate::walk::{Walk, WalkOptions, walk};

/// The name an input is mirrored by: its last component (resolved for `.`
/// or `..`).
fn name(root: &Path) -> Result<PathBuf> {
    let named = root.file_name().map(PathBuf::from);
    let resolved = || fs::canonicalize(root).ok().and_then(|p| p.file_name().map(PathBuf::from));
    named.or_else(resolved).ok_or_else(|| Error::invalid(root, "an input without a name to mirror"))
}

/// The names the files of several inputs are listed under, in input
/// order (empty for one input).
pub(super) fn mirrored_names(roots: &[PathBuf]) -> Result<Vec<Vec<u8>>> {
    if roots.len() < 2 {
        return Ok(Vec::new());
    }
    roots.iter().map(|r| name(r).map(|n| n.into_os_string().into_encoded_bytes())).collect()
}

/// Refuses two inputs with the same name.
pub(super) fn check_names(roots: &[PathBuf]) -> Result<()> {
    let mut seen = HashSet::new();
    for root in roots {
        let n = name(root)?;
        if !seen.insert(n.clone()) {
            let msg = format!(
                "two inputs are named {:?}: each input is mirrored by its name, so they would clash; \
                 give them different names or clean them in separate runs",
                n.display().to_string()
            );
            return Err(ConfigError::Usage(msg).into());
        }
    }
    Ok(())
}

/// Walks every input in order; with several inputs, the files of a
/// directory are named under the directory's name. Returns the listing and
/// the number of backups passed over (see [`crate::backups`]).
pub(super) fn walk_all(
    roots: &[PathBuf],
    metas: &[fs::Metadata],
    opts: &WalkOptions,
    in_place: bool,
) -> Result<(Walk, u64)> {
    let mut all = Walk::default();
    let mut left_alone = 0;
    for (root, meta) in roots.iter().zip(metas) {
        let mut listing = walk(root, opts);
        left_alone += backups::pass_over(&mut listing, meta.is_file(), in_place)?;
        if roots.len() > 1 && meta.is_dir() {
            let prefix = name(root)?;
            listing.files.iter_mut().for_each(|f| f.rel = prefix.join(&f.rel));
            listing.skipped.iter_mut().for_each(|s| s.rel = prefix.join(&s.rel));
        }
        // One input's list is taken as it is (not copied into fresh pages).
        if all.files.is_empty() {
            all.files = listing.files;
        } else {
            all.files.extend(listing.files);
        }
        all.skipped.extend(listing.skipped);
    }
    Ok((all, left_alone))
}
