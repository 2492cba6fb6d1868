//! Damage and crashes: corrupt and foreign files, crashes at the fail
//! points of a commit, background merges cancelled, SIGKILL during commits.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

/// Build an index with two segments of 3000 keys (which the next commit
/// merges) and return (dir, segment paths).
pub(super) fn two_segments(tmp: &tempfile::TempDir) -> (PathBuf, Vec<PathBuf>) {
    let dir = tmp.path().join("idx");
    Index::open(&dir).expect("open").commit(entries(0, 3000), run("a")).expect("commit");
    Index::open(&dir).expect("open").commit(entries(3000, 6000), run("b")).expect("commit");
    let segs = seg_files(&dir);
    assert_eq!(segs.len(), 2);
    (dir, segs)
}

fn expect_corrupt(dir: &Path, file: &Path) {
    match Index::open(dir) {
        Err(IndexError::Corrupt { path, reason }) => assert_eq!(path, file, "{reason}"),
        other => panic!("expected Corrupt({}), got {:?}", file.display(), other.map(|_| ())),
    }
}

#[test]
fn corruption_is_detected() {
    let _serial = shared();
    // Flip a byte anywhere in a segment of 3000 keys (keys, values,
    // directory, filter, header: dir_bits, filter block count).
    for pos in [40usize, 3000 * 16 + 100, 3000 * 28 + 40, usize::MAX, 13, 25] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (dir, segs) = two_segments(&tmp);
        let mut b = fs::read(&segs[0]).expect("read");
        let pos = pos.min(b.len() - 100);
        b[pos] ^= 0x40;
        fs::write(&segs[0], &b).expect("write");
        expect_corrupt(&dir, &segs[0]);
    }
    // Truncated segment.
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, segs) = two_segments(&tmp);
    let b = fs::read(&segs[1]).expect("read");
    fs::write(&segs[1], &b[..b.len() - 3]).expect("write");
    expect_corrupt(&dir, &segs[1]);
    // Missing segment.
    fs::remove_file(&segs[1]).expect("rm");
    expect_corrupt(&dir, &segs[1]);
    // Truncated / empty manifest.
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, _) = two_segments(&tmp);
    let man = dir.join(MANIFEST);
    let b = fs::read(&man).expect("read");
    for cut in [b.len() - 1, 20, 3, 0] {
        fs::write(&man, &b[..cut]).expect("write");
        expect_corrupt(&dir, &man);
    }
    // Manifest deleted while segments exist: refuse rather than start empty.
    fs::remove_file(&man).expect("rm");
    expect_corrupt(&dir, &man);
}

#[test]
fn foreign_and_future_files() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, segs) = two_segments(&tmp);
    let man = dir.join(MANIFEST);
    let good = fs::read(&man).expect("read");
    fs::write(&man, b"{\"some\": \"json config, not an index\"}\n").expect("write");
    match Index::open(&dir) {
        Err(IndexError::Foreign { path }) => assert_eq!(path, man),
        other => panic!("expected Foreign, got {:?}", other.map(|_| ())),
    }
    // A future manifest version, and version 1 (before segments had
    // filters): both refused, naming the version.
    for version in [FORMAT_VERSION + 1, 1] {
        let mut b = good.clone();
        b[8..12].copy_from_slice(&version.to_le_bytes());
        fs::write(&man, &b).expect("write");
        match Index::open(&dir) {
            Err(IndexError::UnsupportedVersion { path, found }) => {
                assert_eq!((path, found), (man.clone(), version));
            }
            other => panic!("expected UnsupportedVersion, got {:?}", other.map(|_| ())),
        }
    }
    fs::write(&man, &good).expect("restore");
    Index::open(&dir).expect("open restored");
    // Future segment version.
    let mut b = fs::read(&segs[0]).expect("read");
    b[8..12].copy_from_slice(&7u32.to_le_bytes());
    fs::write(&segs[0], &b).expect("write");
    match Index::open(&dir) {
        Err(IndexError::UnsupportedVersion { path, found }) => {
            assert_eq!((path, found), (segs[0].clone(), 7));
        }
        other => panic!("expected UnsupportedVersion, got {:?}", other.map(|_| ())),
    }
    // A foreign file in place of a segment (same length).
    let len = b.len();
    fs::write(&segs[0], vec![b'x'; len]).expect("write");
    match Index::open(&dir) {
        Err(IndexError::Foreign { path }) => assert_eq!(path, segs[0]),
        other => panic!("expected Foreign, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn refuses_to_adopt_unrelated_directory() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::write(tmp.path().join("notes.txt"), b"hello").expect("write");
    match Index::open(tmp.path()) {
        Err(IndexError::Foreign { path }) => assert_eq!(path, tmp.path()),
        other => panic!("expected Foreign, got {:?}", other.map(|_| ())),
    }
    assert!(!tmp.path().join("LOCK").exists(), "nothing created");
}

#[test]
fn crash_before_manifest_rename_keeps_old_state() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, segs) = two_segments(&tmp);
    let before = fs::read(dir.join(MANIFEST)).expect("read");
    let mut idx = Index::open(&dir).expect("open");
    idx.fail = Some(FailPoint::BeforeManifestRename);
    // Merges both old segments into one and writes the 2000 new keys as
    // another, then "crashes" before publishing either.
    assert!(idx.commit_in_place(entries(6000, 8000), run("c")).is_err());
    drop(idx);
    // Also leave a half-written manifest temp and a probe behind, and a
    // file the index did not write.
    fs::write(dir.join(MANIFEST_TMP), b"NDDXMANI garbage").expect("write");
    fs::write(dir.join(PROBE), b"").expect("write");
    fs::write(dir.join("seg-00000000000000ff.ndx.tmp"), b"junk").expect("write");
    assert_eq!(seg_files(&dir).len(), 4, "merged and new segments written, not published");
    let idx = Index::open(&dir).expect("reopen");
    assert_eq!(fs::read(dir.join(MANIFEST)).expect("read"), before);
    assert_eq!(idx.len(), 6000);
    check_all(&idx, 0, 6000);
    assert_eq!(idx.get(key(6000)), None);
    assert_eq!(idx.runs().len(), 2);
    assert_eq!(seg_files(&dir), segs, "orphan segment removed");
    assert!(!dir.join(MANIFEST_TMP).exists());
    assert!(!dir.join(PROBE).exists());
    assert!(dir.join("seg-00000000000000ff.ndx.tmp").exists(), "not the index's: left alone");
    // The next commit works and does not trip over the reused id.
    idx.commit(entries(6000, 8000), run("c")).expect("commit");
    let idx = Index::open(&dir).expect("reopen");
    check_all(&idx, 0, 8000);
}

#[test]
fn crash_after_rename_has_new_state() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, _) = two_segments(&tmp);
    let mut idx = Index::open(&dir).expect("open");
    idx.fail = Some(FailPoint::BeforeDeletingOld);
    assert!(idx.commit_in_place(entries(6000, 8000), run("c")).is_err());
    drop(idx);
    assert_eq!(seg_files(&dir).len(), 4, "old segments not yet deleted");
    let idx = Index::open(&dir).expect("reopen");
    assert_eq!(idx.len(), 8000);
    check_all(&idx, 0, 8000);
    assert_eq!(idx.stats().segment_keys, [6000, 2000]);
    assert_eq!(seg_files(&dir).len(), 2, "merged-away segments removed");
}

#[test]
fn background_merge_publishes_the_same_state_as_an_inline_one() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, _) = two_segments(&tmp);
    let inline = tmp.path().join("inline");
    for (d, lo, hi) in [(&inline, 0, 3000), (&inline, 3000, 6000)] {
        Index::open(d).expect("open").commit(entries(lo, hi), run("x")).expect("commit");
    }
    let mut idx = Index::open(&dir).expect("open");
    idx.start_merge().expect("start");
    idx.start_merge().expect("a second call is a no-op");
    // Lookups use the old segments while the merge runs.
    check_all(&idx, 0, 6000);
    assert_eq!(idx.get(key(6000)), None);
    idx.commit(entries(6000, 6500), run("c")).expect("commit");
    Index::open(&inline).expect("open").commit(entries(6000, 6500), run("c")).expect("commit");
    let (a, b) = (Index::open(&dir).expect("reopen"), Index::open(&inline).expect("reopen"));
    assert_eq!(a.stats().segment_keys, [6000, 500]);
    assert_eq!(a.stats().segment_keys, b.stats().segment_keys);
    check_all(&a, 0, 6500);
    assert_eq!(seg_files(&dir).len(), 2);
    // Byte-identical segment files: the merge does not depend on where it ran.
    for (x, y) in seg_files(&dir).iter().zip(seg_files(&inline)) {
        assert_eq!(fs::read(x).expect("read"), fs::read(y).expect("read"));
    }
}

#[test]
fn dropping_an_index_cancels_its_merge_and_leaves_no_file() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, segs) = two_segments(&tmp);
    let before = fs::read(dir.join(MANIFEST)).expect("read");
    let mut idx = Index::open(&dir).expect("open");
    idx.start_merge().expect("start");
    drop(idx);
    assert_eq!(seg_files(&dir), segs, "the unpublished merge was removed, not left for the next open");
    assert_eq!(fs::read(dir.join(MANIFEST)).expect("read"), before);
    let idx = Index::open(&dir).expect("reopen: the lock was released");
    check_all(&idx, 0, 6000);
}

#[test]
fn compact_after_start_merge_merges_everything() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, _) = two_segments(&tmp);
    Index::open(&dir).expect("open").commit(entries(6000, 6100), run("c")).expect("commit");
    let mut idx = Index::open(&dir).expect("open");
    idx.start_merge().expect("start");
    idx.compact().expect("compact");
    let idx = Index::open(&dir).expect("reopen");
    assert_eq!(idx.stats().segment_keys, [6100]);
    assert_eq!(seg_files(&dir).len(), 1);
    check_all(&idx, 0, 6100);
}

#[test]
fn filters_have_no_false_negatives_and_few_false_positives() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    Index::open(tmp.path()).expect("open").commit(entries(0, 100_000), run("a")).expect("commit");
    let idx = Index::open(tmp.path()).expect("reopen");
    let seg = &idx.segs[0];
    let admits = |i| seg.admits(key(i), &segment::FilterMask::of(key(i)));
    assert!((0..100_000).all(admits), "a filter never rejects a present key");
    let absent = 200_000u64;
    let admitted = (1_000_000..1_000_000 + absent).filter(|&i| admits(i)).count();
    let rate = admitted as f64 / absent as f64;
    // 10 bits per key, 8 bits set per key in a 512-bit block: about 1%.
    assert!(rate > 0.001 && rate < 0.02, "false-positive rate {rate}");
}

#[test]
fn label_too_long_is_rejected() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut idx = Index::open(tmp.path()).expect("open");
    let r = RunInfo { label: "x".repeat(MAX_LABEL + 1), ..RunInfo::default() };
    assert!(matches!(idx.commit_in_place(vec![], r), Err(IndexError::Invalid { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Random batches over a small key space (so keys repeat across batches,
    /// violating the contract on purpose): the index behaves like an
    /// insert-if-absent map, across reopen and compaction.
    #[test]
    fn behaves_like_first_wins_map(batches in prop::collection::vec(
        prop::collection::vec(0u64..3000, 0..400), 1..12)) {
        let _serial = shared();
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut model: HashMap<u128, u64> = HashMap::new();
        for (b, batch) in batches.iter().enumerate() {
            let new: Vec<Entry> = batch.iter().map(|&i| Entry { key: key(i), doc: b as u64, batch: 0 }).collect();
            for e in &new {
                model.entry(e.key).or_insert(e.doc);
            }
            Index::open(tmp.path()).expect("open").commit(new, run("p")).expect("commit");
        }
        let idx = Index::open(tmp.path()).expect("open");
        for i in 0..3000u64 {
            prop_assert_eq!(idx.get(key(i)).map(|v| v.0), model.get(&key(i)).copied());
        }
        idx.compact().expect("compact");
        let idx = Index::open(tmp.path()).expect("open");
        prop_assert_eq!(idx.len(), model.len() as u64);
        for i in 0..3000u64 {
            prop_assert_eq!(idx.get(key(i)).map(|v| v.0), model.get(&key(i)).copied());
        }
    }
}

/// Real crash test: a child process (this test binary, re-executed) commits in
/// a loop (every other commit with its merge running on a pool) and is
/// SIGKILLed at random moments; after each kill the index must open and hold
/// exactly the commits whose run records are in the manifest, with one
/// index-wide filter (the filter files of unpublished commits removed).
#[test]
fn sigkill_during_commits() {
    const K: u64 = 40_000;
    if let Ok(dir) = std::env::var("NDX_SIGKILL_CHILD") {
        let dir = PathBuf::from(dir);
        // Every other commit finds its due merge started as a job on a
        // pool (as a run does), so kills land during those merges too.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("pool");
        loop {
            pool.install(|| {
                let mut idx = Index::open(&dir).expect("child open");
                let c = idx.runs().len() as u64;
                if c % 2 == 1 {
                    idx.start_merge_in_pool().expect("child merge");
                }
                idx.commit(entries(c * K, (c + 1) * K), run(&c.to_string())).expect("child commit");
            });
        }
    }
    let _exclusive = SERIAL.write().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current_exe");
    let mut landed_total = 0;
    for trial in 0..10u64 {
        let mut child = std::process::Command::new(&exe)
            .args(["index::tests::damage::sigkill_during_commits", "--exact", "--test-threads=1"])
            .env("NDX_SIGKILL_CHILD", tmp.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        // Until a first commit has landed, the child gets longer (a loaded
        // machine's fsyncs can take longer than the random delays); after
        // that, kills land at random moments of the commit loop.
        let first = if landed_total == 0 { 400 * (trial + 1) } else { 0 };
        std::thread::sleep(std::time::Duration::from_millis(first + 30 + splitmix(trial) % 250));
        child.kill().expect("kill"); // SIGKILL on Unix
        child.wait().expect("wait");
        let idx = Index::open(tmp.path()).expect("open after SIGKILL");
        let r = idx.runs().len() as u64;
        for (i, rec) in idx.runs().iter().enumerate() {
            assert_eq!(rec.label, i.to_string());
        }
        assert_eq!(idx.len(), r * K, "trial {trial}");
        assert_eq!(idx.get(key(r * K)), None);
        for i in (0..r * K).step_by(97) {
            assert_eq!(idx.get(key(i)), Some((i * 7, 0)));
        }
        let live = idx.stats().segments;
        drop(idx);
        assert_eq!(seg_files(tmp.path()).len(), live, "orphans cleaned");
        let filters = fs::read_dir(tmp.path())
            .expect("ls")
            .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".ndf")));
        assert_eq!(filters.count(), usize::from(r > 0), "one index-wide filter, orphans cleaned");
        landed_total = r;
        eprintln!("trial {trial}: {r} commits landed, {live} segments");
    }
    assert!(landed_total > 0, "child never committed");
}
