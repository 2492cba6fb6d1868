//! The index-wide filter (format 4): no false negatives over random key
//! sets with merges and growth, few false positives, damage to its file
//! detected, indexes of format 3 read and upgraded by their next commit.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn filter_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".ndf"))
        .collect();
    v.sort();
    v
}

/// `idx`'s index-wide filter admits every key of `keys` (the property that
/// makes it safe: a rejected key is absent).
fn admits_all(idx: &Index, keys: impl Iterator<Item = u128>) -> bool {
    let f = idx.filter.as_ref().expect("an index-wide filter");
    keys.into_iter().all(|k| admits(f, k))
}

/// `f` admits `k`, its bits tested a word at a time, and (where the
/// processor has AVX-512F) in a register to the same answer.
fn admits(f: &crate::index::global::GlobalFilter, k: u128) -> bool {
    let words = f.admits(k, bits::Words);
    #[cfg(target_arch = "x86_64")]
    if let Some(wide) = bits::Wide::new() {
        assert_eq!(f.admits(k, wide), words, "key {k:#x}: both ways answer alike");
    }
    words
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Random commits of random key sets (repeats across commits on
    /// purpose), tiering merges, background merges, growth of the filter
    /// past its size (1 to 64 blocks) and a compaction: the filter admits
    /// every key the index holds, and lookups answer like a first-wins map.
    #[test]
    fn the_filter_never_rejects_a_key_the_index_holds(commits in prop::collection::vec(
        (prop::collection::vec(0u64..1_000_000, 0..600), any::<bool>()), 1..10)) {
        let _serial = shared();
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut model: HashMap<u128, u64> = HashMap::new();
        for (c, (ids, early_merge)) in commits.iter().enumerate() {
            let new: Vec<Entry> = ids.iter().map(|&i| Entry { key: key(i), doc: c as u64, batch: 0 }).collect();
            for e in &new {
                model.entry(e.key).or_insert(e.doc);
            }
            let mut idx = Index::open(tmp.path()).expect("open");
            if *early_merge {
                idx.start_merge().expect("merge");
            }
            idx.commit(new, run("p")).expect("commit");
            let idx = Index::open(tmp.path()).expect("reopen");
            if !model.is_empty() {
                prop_assert!(admits_all(&idx, model.keys().copied()));
            }
            prop_assert!(filter_files(tmp.path()).len() <= 1);
        }
        let check = |idx: &Index| {
            let keys: Vec<u128> = (0..3000u64).map(key).chain(model.keys().copied()).collect();
            let mut out = vec![None; keys.len()];
            idx.get_many(&keys, &mut out);
            keys.iter().zip(&out).all(|(k, o)| o.map(|v| v.0) == model.get(k).copied() && *o == idx.get(*k))
        };
        let idx = Index::open(tmp.path()).expect("open");
        prop_assert!(check(&idx));
        idx.compact().expect("compact");
        let idx = Index::open(tmp.path()).expect("open");
        prop_assert!(check(&idx));
        if !model.is_empty() {
            prop_assert!(admits_all(&idx, model.keys().copied()));
        }
    }
}

#[test]
fn the_filter_rejects_most_absent_keys_and_grows_with_the_index() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut sizes = Vec::new();
    for c in 0..4u64 {
        Index::open(tmp.path()).expect("open").commit(entries(c * 40_000, (c + 1) * 40_000), run("a")).expect("commit");
        let idx = Index::open(tmp.path()).expect("reopen");
        let f = idx.filter.as_ref().expect("filter");
        sizes.push(f.meta.len);
        assert!(admits_all(&idx, (0..(c + 1) * 40_000).map(key)));
        let absent = 200_000u64;
        let admitted = (10_000_000..10_000_000 + absent).filter(|&i| admits(f, key(i)));
        let rate = admitted.count() as f64 / absent as f64;
        // 10 to 20 bits per key, 8 bits set per key in a 512-bit block.
        assert!(rate < 0.015, "false-positive rate {rate} at {} keys", (c + 1) * 40_000);
        assert_eq!(filter_files(tmp.path()).len(), 1, "the old filter is deleted");
    }
    // 40k keys: 1024 blocks (64 KiB); 160k keys: 4096 blocks.
    assert_eq!(sizes[0], 64 + 8 + (64 << 10));
    assert_eq!(sizes[3], 64 + 8 + (64 << 12));
}

#[test]
fn a_damaged_or_missing_filter_is_reported_naming_it() {
    let _serial = shared();
    // A flipped bit in the header, the blocks, the checksum; a truncation.
    for pos in [13usize, 20, 64, 5000, usize::MAX] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (dir, _) = two_segments(&tmp);
        let f = filter_files(&dir).pop().expect("a filter file");
        let mut b = fs::read(&f).expect("read");
        let pos = pos.min(b.len() - 8);
        b[pos] ^= 0x10;
        fs::write(&f, &b).expect("write");
        let err = Index::open(&dir).map(|_| ()).expect_err("damage detected");
        assert!(matches!(&err, IndexError::Corrupt { path, .. } if *path == f), "{err}");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, _) = two_segments(&tmp);
    let f = filter_files(&dir).pop().expect("a filter file");
    let b = fs::read(&f).expect("read");
    fs::write(&f, &b[..b.len() - 1]).expect("truncate");
    assert!(matches!(Index::open(&dir), Err(IndexError::Corrupt { path, .. }) if path == f));
    fs::write(&f, vec![b'x'; b.len()]).expect("foreign");
    assert!(matches!(Index::open(&dir), Err(IndexError::Foreign { path }) if path == f));
    fs::remove_file(&f).expect("rm");
    match Index::open(&dir) {
        Err(IndexError::Corrupt { path, reason }) => assert!(path == f && reason.contains("missing"), "{reason}"),
        other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
    }
}

/// `dir`'s manifest rewritten as format 3 (no filter field) and its filter
/// file removed: an index as the build before the filter left it.
pub(super) fn downgrade(dir: &Path) {
    let man = dir.join(MANIFEST);
    let b = fs::read(&man).expect("read");
    let m = manifest::Manifest::decode(&man, &b).expect("decode");
    let at = 36 + 28 * m.segs.len();
    let mut v = b[..b.len() - 4].to_vec();
    assert_eq!(v.remove(at), u8::from(m.filter.is_some()));
    if m.filter.is_some() {
        v.drain(at..at + 20);
    }
    v[8..12].copy_from_slice(&3u32.to_le_bytes());
    let crc = crc32fast::hash(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    fs::write(&man, &v).expect("write");
    for f in filter_files(dir) {
        fs::remove_file(f).expect("rm");
    }
}

#[test]
fn an_index_of_format_3_opens_answers_and_is_upgraded_by_its_next_commit() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, _) = two_segments(&tmp);
    let want = |idx: &Index| (0..6000).map(|i| idx.get(key(i))).collect::<Vec<_>>();
    let before = want(&Index::open(&dir).expect("open"));
    downgrade(&dir);
    let idx = Index::open(&dir).expect("format 3 opens");
    assert!(idx.filter.is_none());
    assert_eq!(want(&idx), before);
    let mut out = vec![None; 7000];
    idx.get_many(&(0..7000).map(key).collect::<Vec<_>>(), &mut out);
    assert_eq!(out[..6000], before[..]);
    assert!(out[6000..].iter().all(Option::is_none));
    // A dry look (open, drop) changes nothing; the next commit upgrades.
    drop(idx);
    assert_eq!(fs::read(dir.join(MANIFEST)).expect("read")[8], 3);
    Index::open(&dir).expect("open").commit(entries(6000, 6100), run("c")).expect("commit");
    assert_eq!(fs::read(dir.join(MANIFEST)).expect("read")[8], FORMAT_VERSION as u8);
    let idx = Index::open(&dir).expect("format 4 opens");
    assert!(admits_all(&idx, (0..6100).map(key)));
    assert_eq!(want(&idx), before);
    check_all(&idx, 0, 6100);
    // An empty commit upgrades too (what `index_bench --fill DIR 0 --settle` does).
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, _) = two_segments(&tmp);
    downgrade(&dir);
    Index::open(&dir).expect("open").commit(Vec::new(), run("upgrade")).expect("commit");
    let idx = Index::open(&dir).expect("reopen");
    assert!(admits_all(&idx, (0..6000).map(key)));
}

/// The commit writes the new segment and the filter at the same time: when
/// either fails, the commit fails naming the file, the index is as it was,
/// and what the other side wrote is an orphan removed by the next open.
#[test]
fn a_commit_whose_segment_or_filter_cannot_be_written_changes_nothing() {
    let _serial = shared();
    for blocked in ["segment", "filter"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        Index::open(tmp.path()).expect("open").commit(entries(0, 3000), run("a")).expect("commit");
        let idx = Index::open(tmp.path()).expect("open");
        let (next, before) = (idx.manifest.next_id, filter_files(tmp.path()));
        // A folder where the commit's file would go: its create fails.
        let name = if blocked == "segment" { seg_name(next) } else { global::filter_name(next + 1) };
        fs::create_dir(tmp.path().join(&name)).expect("mkdir");
        let err = idx.commit(entries(3000, 6000), run("b")).expect_err(blocked);
        assert!(err.to_string().contains(&name), "{blocked}: {err}");
        fs::remove_dir(tmp.path().join(&name)).expect("rmdir");
        let idx = Index::open(tmp.path()).expect("reopen");
        assert_eq!(idx.len(), 3000, "{blocked}");
        assert_eq!(idx.runs().len(), 1, "{blocked}");
        assert_eq!(filter_files(tmp.path()), before, "{blocked}: an orphan filter was left");
        let segs = fs::read_dir(tmp.path())
            .expect("ls")
            .filter(|e| is_segment_name(&e.as_ref().unwrap().file_name().to_string_lossy()))
            .count();
        assert_eq!(segs, idx.segs.len(), "{blocked}: an orphan segment was left");
    }
}

/// `get_many` through the index-wide filter answers like `get`, each key in
/// its place (each key of the index its own document): present keys from both segments
/// interleaved with absent ones, fewer than the 24 asked for ahead, exactly
/// one and two batches of 64 admitted keys and a partial one after them,
/// stale values in `out` overwritten, and `out` shorter than, as long as and
/// longer than the keys.
#[test]
fn get_many_through_the_filter_answers_each_key_in_its_place() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, _) = two_segments(&tmp);
    let idx = Index::open(&dir).expect("open");
    assert!(idx.filter.is_some());
    let stale = Some((u64::MAX, u32::MAX));
    for present in [0u64, 1, 23, 24, 25, 63, 64, 65, 127, 128, 129, 300] {
        for absent_after in [0u64, 1, 7] {
            let keys: Vec<u128> = (0..present)
                .flat_map(|p| {
                    std::iter::once(key(p * 29 % 6000))
                        .chain((0..absent_after).map(move |a| key(1_000_000 + 8 * p + a)))
                })
                .chain((0..absent_after * 3).map(|a| key(2_000_000 + a)))
                .collect();
            let want: Vec<_> = keys.iter().map(|&k| idx.get(k)).collect();
            assert_eq!(want.iter().flatten().count() as u64, present);
            let n = keys.len();
            for len in [0, n.saturating_sub(30), n.saturating_sub(1), n, n + 1, n + 70] {
                let m = len.min(n);
                let mut out = vec![stale; len];
                idx.get_many(&keys, &mut out);
                assert_eq!(out[..m], want[..m], "{present} present, {absent_after} absent after each, out of {len}");
                let mut out = vec![stale; len];
                idx.view().get_many(&keys, &mut out);
                assert_eq!(out[..m], want[..m], "view: {present} present, {absent_after} absent after each");
            }
        }
    }
}
