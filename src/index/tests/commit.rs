//! The commit's sort of its keys and the tiering merge run as a job on a
//! rayon pool ([`Index::start_merge_in_pool`]).

use super::*;
use merge::sort_entries;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool")
}

/// Entries with repeated keys (same and different values) and the extreme keys.
fn shuffled(n: u64) -> Vec<Entry> {
    let mut v: Vec<Entry> =
        (0..n).map(|i| Entry { key: key(i % (n - n / 8)), doc: splitmix(i) % 5, batch: 0 }).collect();
    v.extend([u128::MAX, 0, u128::MAX, 1 << 127].map(|key| Entry { key, doc: 3, batch: 0 }));
    v
}

#[test]
fn the_commit_sort_orders_by_key_then_value_on_any_number_of_threads() {
    for n in [10, 1000, 200_000] {
        let mut want = shuffled(n);
        want.sort_by_key(|e| (e.key, e.doc, e.batch));
        for threads in [1, 3] {
            let got = pool(threads).install(|| sort_entries(shuffled(n)));
            assert!(got == want, "{n} entries on {threads} threads");
        }
    }
}

/// Keys that share their high bits: many entries of three keys (ties broken
/// by document, then batch), and keys differing only in their lowest bits.
#[test]
fn the_commit_sort_orders_keys_that_share_their_high_bits() {
    let base = 0xabcd_u128 << 112;
    let mut v: Vec<Entry> = (0..100_000u64)
        .map(|i| Entry { key: base + u128::from(i % 3), doc: splitmix(i) % 7, batch: (i % 2) as u32 })
        .collect();
    v.extend((0..50_000u64).map(|i| Entry { key: base + u128::from(splitmix(i) % 5000) * 977, doc: 1, batch: 0 }));
    let mut want = v.clone();
    want.sort_by_key(|e| (e.key, e.doc, e.batch));
    for threads in [1, 2] {
        let got = pool(threads).install(|| sort_entries(v.clone()));
        assert!(got == want, "on {threads} threads");
    }
}

#[test]
fn a_commit_with_repeated_keys_keeps_one_entry_of_each_the_smallest() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let new = shuffled(100_000);
    Index::open(tmp.path()).expect("open").commit(new.clone(), run("a")).expect("commit");
    let idx = Index::open(tmp.path()).expect("reopen");
    let mut want = std::collections::BTreeMap::new();
    for e in &new {
        let v = want.entry(e.key).or_insert((e.doc, e.batch));
        *v = (*v).min((e.doc, e.batch));
    }
    assert_eq!(idx.len(), want.len() as u64);
    for (k, v) in want {
        assert_eq!(idx.get(k), Some(v));
    }
}

/// A commit's sorted run is written without the merge (`sources::Run`),
/// whole or in pieces that follow one another in key order (a
/// [`NewKeys`]'s buckets); the file is the one the k-way merge writes from
/// the same entries cut into two sources anywhere (equal keys on both
/// sides of the cut too: the first source's entry wins, as the first of
/// equal keys in one run does). Pieces out of key order are merged.
#[test]
fn one_run_is_written_as_its_merge() {
    use sources::Source;
    use std::sync::atomic::AtomicBool;
    use writer::{write_segment, write_segment_merged};
    let tmp = tempfile::tempdir().expect("tempdir");
    let never = AtomicBool::new(false);
    let mut run = shuffled(20_000);
    run.sort_by_key(|e| (e.key, e.doc, e.batch));
    let read = |id| std::fs::read(tmp.path().join(segment::seg_name(id))).expect("read segment");
    let one = write_segment(tmp.path(), 1, &[Source::New(&run)], &never).expect("one run");
    assert_eq!(one.count, run.len() as u64 - run.windows(2).filter(|w| w[0].key == w[1].key).count() as u64);
    let equal_keys_cut = run.windows(2).position(|w| w[0].key == w[1].key).expect("a repeated key") + 1;
    let mut id = 2;
    for cut in [0, 1, equal_keys_cut, 12_345, run.len()] {
        let (a, b) = run.split_at(cut);
        let merged = write_segment_merged(tmp.path(), id, &[Source::New(a), Source::New(b)]).expect("merge");
        let pieces = write_segment(tmp.path(), id + 1, &[Source::New(a), Source::New(b)], &never).expect("pieces");
        for (meta, id) in [(merged, id), (pieces, id + 1)] {
            assert_eq!((meta.count, meta.crc), (one.count, one.crc), "cut at {cut}");
            assert!(read(id) == read(1), "cut at {cut}: the files differ");
        }
        id += 2;
    }
    // The halves swapped: the merge puts them back in order.
    let (a, b) = run.split_at(12_345);
    let swapped = write_segment(tmp.path(), id, &[Source::New(b), Source::New(a)], &never).expect("swapped");
    assert_eq!((swapped.count, swapped.crc), (one.count, one.crc));
    assert!(read(id) == read(1), "swapped halves: the files differ");
}

/// A commit of a [`NewKeys`] (bucketed, each bucket sorted apart) writes
/// the segment a commit of the same entries as one `Vec` writes.
#[test]
fn a_commit_of_bucketed_keys_writes_the_segment_of_one_sorted_vec() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let new = shuffled(50_000);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    Index::open(&a).expect("open").commit(new.clone(), run("x")).expect("commit");
    for threads in [1, 2] {
        let _ = fs::remove_dir_all(&b);
        pool(threads).install(|| {
            let mut idx = Index::open(&b).expect("open");
            idx.commit_keys(new.iter().copied().collect(), run("x")).expect("commit");
        });
        let (fa, fb) = (seg_files(&a), seg_files(&b));
        assert_eq!(fa.len(), 1);
        assert_eq!(fb.len(), 1);
        assert!(fs::read(&fa[0]).expect("read") == fs::read(&fb[0]).expect("read"), "on {threads} threads");
    }
}

#[test]
fn a_merge_on_the_pool_publishes_what_a_merge_on_its_thread_does() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, _) = two_segments(&tmp);
    let other = tmp.path().join("other");
    for (lo, hi) in [(0, 3000), (3000, 6000)] {
        Index::open(&other).expect("open").commit(entries(lo, hi), run("x")).expect("commit");
    }
    pool(2).install(|| {
        let mut idx = Index::open(&dir).expect("open");
        idx.start_merge_in_pool().expect("start");
        idx.start_merge_in_pool().expect("a second call is a no-op");
        check_all(&idx, 0, 6000);
        idx.commit(entries(6000, 6500), run("c")).expect("commit");
    });
    let mut idx = Index::open(&other).expect("open");
    idx.start_merge().expect("start");
    idx.commit(entries(6000, 6500), run("c")).expect("commit");
    let (a, b) = (Index::open(&dir).expect("reopen"), Index::open(&other).expect("reopen"));
    assert_eq!(a.stats().segment_keys, [6000, 500]);
    check_all(&a, 0, 6500);
    for (x, y) in seg_files(&dir).iter().zip(seg_files(&other)) {
        assert_eq!(fs::read(x).expect("read"), fs::read(y).expect("read"));
    }
    assert_eq!(seg_files(&dir).len(), 2);
    drop(b);
}

#[test]
fn a_merge_no_worker_has_started_is_done_by_the_commit() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, _) = two_segments(&tmp);
    let one = pool(1);
    // The only worker runs this closure, so the merge job cannot start
    // before the commit: the commit claims it and merges itself.
    one.install(|| {
        let mut idx = Index::open(&dir).expect("open");
        idx.start_merge_in_pool().expect("start");
        idx.commit(entries(6000, 6100), run("c")).expect("commit");
    });
    drop(one); // the job, claimed, now runs and does nothing
    let idx = Index::open(&dir).expect("reopen");
    assert_eq!(idx.stats().segment_keys, [6000, 100]);
    assert_eq!(seg_files(&dir).len(), 2, "no second merged file");
    check_all(&idx, 0, 6100);
}

#[test]
fn dropping_an_index_whose_merge_waits_in_the_pool_leaves_no_file() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, segs) = two_segments(&tmp);
    let before = fs::read(dir.join(MANIFEST)).expect("read");
    let one = pool(1);
    one.install(|| {
        let mut idx = Index::open(&dir).expect("open");
        idx.start_merge_in_pool().expect("start");
        drop(idx);
    });
    drop(one);
    assert_eq!(seg_files(&dir), segs, "the merge never ran: no file");
    assert_eq!(fs::read(dir.join(MANIFEST)).expect("read"), before);
    // And with the merge running on another worker when the index is dropped.
    pool(2).install(|| {
        let mut idx = Index::open(&dir).expect("open");
        idx.start_merge_in_pool().expect("start");
        drop(idx);
    });
    assert_eq!(seg_files(&dir), segs, "the running merge was cancelled or removed");
    check_all(&Index::open(&dir).expect("reopen"), 0, 6000);
}
