//! Tests for the index module.

use super::*;

mod commit;
mod damage;
mod global;
mod keys;
mod spare;
use damage::two_segments;
use keys::{key, splitmix};

/// The SIGKILL test forks; a forked child shares the `LOCK` file description
/// of any index open in another test thread until it execs, which would make
/// that test's next `open` fail with `Locked`. So the SIGKILL test runs alone.
static SERIAL: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    SERIAL.read().unwrap_or_else(|e| e.into_inner())
}

fn entries(lo: u64, hi: u64) -> Vec<Entry> {
    (lo..hi).map(|i| Entry { key: key(i), doc: i * 7, batch: 0 }).collect()
}

fn run(label: &str) -> RunInfo {
    RunInfo {
        timestamp: 1_700_000_000,
        docs: 1,
        paragraphs: 2,
        label: label.into(),
        batch: Batch::Named(b"tests".to_vec()),
    }
}

fn check_all(idx: &Index, lo: u64, hi: u64) {
    for e in entries(lo, hi) {
        assert_eq!(idx.get(e.key), Some((e.doc, e.batch)), "key {}", e.key);
    }
}

fn seg_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".ndx"))
        .collect();
    v.sort();
    v
}

#[test]
fn index_is_sync_and_send() {
    let _serial = shared();
    fn assert_sync<T: Sync + Send>() {}
    assert_sync::<Index>();
}

/// A segment of a few keys: lookups and prefetches near the start of the
/// file must not step before it (found by the pipeline's tests in a debug
/// build: an offset underflow in `prefetch`).
#[test]
fn tiny_segments_look_up_and_prefetch_safely() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("idx");
    Index::open(&dir).expect("open new").commit(entries(0, 3), run("tiny")).expect("commit");
    let idx = Index::open(&dir).expect("reopen");
    let keys: Vec<u128> = (0..6).map(key).chain([0, u128::MAX]).collect();
    let mut out = vec![None; keys.len()];
    idx.get_many(&keys, &mut out);
    for (k, o) in keys.iter().zip(&out) {
        idx.prefetch(*k);
        assert_eq!(*o, idx.get(*k));
    }
    assert_eq!(out.iter().filter(|o| o.is_some()).count(), 3);
}

#[test]
fn roundtrip() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("idx");
    let idx = Index::open(&dir).expect("open new");
    assert!(idx.is_empty());
    assert_eq!(idx.get(key(1)), None);
    idx.commit(entries(0, 20_000), run("first")).expect("commit");
    let idx = Index::open(&dir).expect("reopen");
    assert_eq!(idx.len(), 20_000);
    check_all(&idx, 0, 20_000);
    for i in 1_000_000..1_020_000 {
        assert_eq!(idx.get(key(i)), None);
    }
    // Boundary keys.
    for k in [0u128, 1, u128::MAX, u128::MAX - 1, 1 << 127] {
        assert_eq!(idx.get(k), None);
    }
    // get_many agrees with get, including a ragged last group.
    let keys: Vec<u128> = (19_990..20_013).map(key).collect();
    let mut out = vec![Some((0, 0)); keys.len()];
    idx.get_many(&keys, &mut out);
    for (k, o) in keys.iter().zip(&out) {
        assert_eq!(*o, idx.get(*k));
    }
    for k in &keys {
        idx.prefetch(*k);
    }
    let st = idx.stats();
    assert_eq!(st.keys, 20_000);
    assert_eq!(st.segments, 1);
    assert_eq!(st.runs, 1);
    let last = st.last_run.expect("last run");
    assert_eq!(last.label, "first");
    assert_eq!((last.new_keys, last.total_keys), (20_000, 20_000));
    assert!(st.bytes_on_disk > 20_000 * 28);
}

#[test]
fn extreme_keys_and_duplicates_in_batch() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut idx = Index::open(dir).expect("open");
    let mk = |key, doc| Entry { key, doc, batch: 0 };
    let batch = vec![mk(u128::MAX, 1), mk(0, 2), mk(5, 3), mk(5, 3), mk(1 << 127, 4)];
    idx.commit_in_place(batch, run("x")).expect("commit");
    assert_eq!(idx.len(), 4);
    assert_eq!(idx.get(u128::MAX), Some((1, 0)));
    assert_eq!(idx.get(0), Some((2, 0)));
    assert_eq!(idx.get(5), Some((3, 0)));
    assert_eq!(idx.get(1 << 127), Some((4, 0)));
    // Contract violation (key already present): the old entry still wins.
    idx.commit_in_place(vec![mk(5, 99)], run("y")).expect("commit");
    assert_eq!(idx.get(5), Some((3, 0)));
    drop(idx);
    let idx = Index::open(dir).expect("reopen");
    assert_eq!(idx.get(5), Some((3, 0)));
    idx.compact().expect("compact");
    let idx = Index::open(dir).expect("reopen");
    assert_eq!((idx.len(), idx.get(5)), (4, Some((3, 0))));
}

#[test]
fn empty_commit_records_run() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    Index::open(tmp.path()).expect("open").commit(Vec::new(), run("nothing new")).expect("commit");
    let idx = Index::open(tmp.path()).expect("reopen");
    assert_eq!((idx.len(), idx.stats().segments, idx.runs().len()), (0, 0, 1));
    assert_eq!(idx.runs()[0].label, "nothing new");
}

#[test]
fn many_commits_stay_logarithmic_then_compact_and_merge() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("a");
    let mut next = 0u64;
    for c in 0..60u64 {
        let n = 1 + splitmix(c) % 3000;
        let idx = Index::open(&dir).expect("open");
        idx.commit(entries(next, next + n), run(&format!("run {c}"))).expect("commit");
        next += n;
        let idx = Index::open(&dir).expect("reopen");
        let st = idx.stats();
        let bound = 64 - st.keys.leading_zeros() as usize + 2;
        assert!(st.segments <= bound, "{} segments for {} keys", st.segments, st.keys);
        // Every segment but the newest (this commit's keys, merged by the
        // next one) holds more than TIER_RATIO times the next.
        let older = &st.segment_keys[..st.segments.saturating_sub(1)];
        for w in older.windows(2) {
            assert!(w[0] > TIER_RATIO * w[1], "tiering invariant {:?}", st.segment_keys);
        }
        assert_eq!(st.segment_keys.last(), Some(&n), "the newest segment is this commit's keys");
        assert_eq!(seg_files(&dir).len(), st.segments, "no stray files");
    }
    let idx = Index::open(&dir).expect("open");
    assert_eq!(idx.len(), next);
    assert_eq!(idx.runs().len(), 60);
    check_all(&idx, 0, next);
    idx.compact().expect("compact");
    let idx = Index::open(&dir).expect("open");
    assert_eq!(idx.stats().segments, 1);
    assert_eq!(idx.len(), next);
    check_all(&idx, 0, next);
    assert_eq!(idx.get(key(next + 1)), None);
    assert_eq!(seg_files(&dir).len(), 1);

    // merge_from: overlapping ranges; on conflict the existing entry wins.
    let other = tmp.path().join("b");
    let conflicting: Vec<Entry> =
        entries(next - 100, next + 500).into_iter().map(|e| Entry { doc: 424242, ..e }).collect();
    Index::open(&other).expect("open other").commit(conflicting, run("other")).expect("commit other");
    let mut idx = idx;
    let added = idx.merge_from(&other, 1_800_000_000).expect("merge");
    assert_eq!(added, 500);
    assert_eq!(idx.len(), next + 500);
    check_all(&idx, 0, next);
    for i in next..next + 500 {
        assert_eq!(idx.get(key(i)).map(|v| v.0), Some(424242));
    }
    assert!(idx.runs().last().expect("run").label.starts_with("merge_from"));
    // The other index was unlocked again and is intact.
    assert_eq!(Index::open(&other).expect("reopen other").len(), 600);
}

#[test]
fn lock_is_exclusive() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = Index::open(tmp.path()).expect("open");
    match Index::open(tmp.path()) {
        Err(IndexError::Locked { path }) => assert_eq!(path, tmp.path()),
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    let msg = Index::open(tmp.path()).err().expect("err").to_string();
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    drop(a);
    let b = Index::open(tmp.path()).expect("open after drop");
    b.commit(entries(0, 10), run("r")).expect("commit");
    Index::open(tmp.path()).expect("open after commit");
}

/// Issue 13: once the manifest names the new state the commit has
/// succeeded; an old segment that cannot be deleted afterwards is left as
/// an orphan instead of failing a run that was in fact recorded.
#[test]
fn a_failed_delete_after_the_commit_is_not_an_error() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, segs) = two_segments(&tmp);
    let mut idx = Index::open(&dir).expect("open");
    // The mapped segments stay readable; their names now hold folders,
    // which `remove_file` cannot delete (a real failure, like EIO).
    for s in &segs {
        fs::rename(s, s.with_extension("moved")).expect("move");
        fs::create_dir(s).expect("mkdir");
    }
    idx.commit_in_place(entries(6000, 7000), run("c")).expect("the commit succeeded");
    assert!(segs.iter().all(|s| s.is_dir()), "the undeletable names are left");
    check_all(&idx, 0, 7000);
    drop(idx);
    for s in &segs {
        fs::remove_dir(s).expect("rmdir");
    }
    let idx = Index::open(&dir).expect("reopen");
    check_all(&idx, 0, 7000);
    assert_eq!(idx.runs().len(), 3);
}

/// Batches: numbers are stable, retries are found by name (raw bytes),
/// anonymous batches are never found, merges carry batches over.
#[test]
fn batches_are_numbered_found_by_name_and_merged() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let named = |n: &[u8]| Batch::Named(n.to_vec());
    let mut idx = Index::open(&a).expect("open");
    assert_eq!(idx.batch_id(&named(b"day1")), BatchId { number: 0, retry: false });
    let info = |batch: Batch| RunInfo { batch, ..RunInfo::default() };
    idx.commit_in_place(vec![Entry { key: key(1), doc: 5, batch: 0 }], info(named(b"day1"))).expect("commit");
    assert_eq!(idx.batch_id(&named(b"day1")), BatchId { number: 0, retry: true });
    assert_eq!(idx.batch_id(&named(b"day1\xff")), BatchId { number: 1, retry: false });
    idx.commit_in_place(vec![], info(Batch::Anonymous)).expect("commit");
    assert_eq!(idx.batch_id(&Batch::Anonymous), BatchId { number: 2, retry: false });
    let bad = idx.commit_in_place(vec![Entry { key: key(2), doc: 5, batch: 7 }], info(named(b"x")));
    assert!(matches!(bad, Err(IndexError::Invalid { .. })), "an entry naming an unknown batch");
    drop(idx);
    let mut other = Index::open(&b).expect("open");
    other.commit_in_place(vec![Entry { key: key(3), doc: 9, batch: 0 }], info(named(b"day2"))).expect("commit");
    drop(other);
    let mut idx = Index::open(&a).expect("reopen");
    assert_eq!(idx.merge_from(&b, 0).expect("merge"), 1);
    let day2 = idx.batch_id(&named(b"day2"));
    assert!(day2.retry);
    assert_eq!(idx.get(key(3)), Some((9, day2.number)));
    assert_eq!(idx.batch(day2.number), Some(&named(b"day2")));
    assert_eq!(idx.get(key(1)), Some((5, 0)));
}

/// The journal of a run that changes its input: entries come back for the
/// same batch name only, a torn chunk ends it, and the batch's commit
/// removes it.
#[test]
fn journal_round_trip_torn_tail_and_removal_by_commit() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("idx");
    let day = Batch::Named(b"day\xff".to_vec());
    let idx = Index::open(&dir).expect("open");
    assert!(idx.pending(&day, 0).expect("none yet").is_empty());
    let mut j = idx.journal(&day).expect("journal").expect("named batch");
    j.append(&[(key(1), 10), (key(2), 10)]).expect("append");
    j.append(&[(key(3), 30)]).expect("append");
    drop(j);
    let jnl = fs::read_dir(&dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "jnl"))
        .expect("a journal file");
    // A chunk torn by a crash: its count and part of a record.
    let mut f = OpenOptions::new().append(true).open(&jnl).expect("open journal");
    std::io::Write::write_all(&mut f, &[5, 0, 0, 0, 1, 2, 3]).expect("write");
    drop(f);
    let want = |n| [(1, 10), (2, 10), (3, 30)].map(|(k, doc)| Entry { key: key(k), doc, batch: n }).to_vec();
    assert_eq!(idx.pending(&day, 4).expect("pending"), want(4));
    assert!(idx.pending(&Batch::Named(b"day\xfe".to_vec()), 0).expect("other").is_empty());
    assert!(idx.journal(&Batch::Anonymous).expect("anonymous").is_none());
    drop(idx);
    // Reopening keeps it (not an orphan); the batch's commit removes it.
    let mut idx = Index::open(&dir).expect("reopen");
    assert!(jnl.exists());
    idx.commit_in_place(want(0), RunInfo { batch: day.clone(), ..RunInfo::default() }).expect("commit");
    assert!(!jnl.exists());
    assert!(idx.pending(&day, 0).expect("pending").is_empty());
}
