//! The filter's spare (`global`, "The spare"): the previous filter's file is
//! kept and written over by the next commit of a filter of its size; never
//! one a lookup view still maps, never one of another size; a crash before
//! the manifest leaves the old state.

use std::os::unix::fs::MetadataExt;

use super::*;
use crate::index::global::SPARE;

/// The inode of `dir/name`, if it is there. (A test that compares the inode
/// of a file deleted since holds it open: a file system may give a deleted
/// file's inode number to the next file created.)
fn ino(dir: &Path, name: &str) -> Option<u64> {
    fs::symlink_metadata(dir.join(name)).ok().map(|m| m.ino())
}

/// The inode of the filter `idx`'s manifest names.
fn live(idx: &Index) -> u64 {
    let meta = idx.manifest.filter.expect("an index-wide filter");
    ino(&idx.dir, &filter_name(meta.id)).expect("the filter file")
}

/// Every key of `lo..hi` is found with its value, and the next 2000 keys
/// are not (through the filter, one key at a time and in one call).
fn answers(idx: &Index, lo: u64, hi: u64) {
    check_all(idx, lo, hi);
    let keys: Vec<u128> = (lo..hi + 2000).map(key).collect();
    let mut out = vec![Some((u64::MAX, u32::MAX)); keys.len()];
    idx.get_many(&keys, &mut out);
    for (i, got) in (lo..hi + 2000).zip(&out) {
        let want = (i < hi).then_some((i * 7, 0));
        assert_eq!(*got, want, "key {i}");
    }
}

/// `view` finds the keys `0..held` with their values and none of
/// `held..upto`.
fn view_answers(view: &IndexView, held: u64, upto: u64) {
    let keys: Vec<u128> = (0..upto).map(key).collect();
    let mut out = vec![None; keys.len()];
    view.get_many(&keys, &mut out);
    for (i, got) in (0..upto).zip(&out) {
        assert_eq!(*got, (i < held).then_some((i * 7, 0)), "key {i}");
    }
}

/// Keys chosen so that the filter keeps its size: 20,000 keys take 512
/// blocks (at 10 bits a key), and so do 22,000.
#[test]
fn the_previous_filter_is_kept_as_the_spare_and_written_over() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    Index::open(dir).expect("open").commit(entries(0, 20_000), run("a")).expect("commit");
    assert_eq!(ino(dir, SPARE), None, "the first filter replaced none");
    let first = live(&Index::open(dir).expect("open"));

    Index::open(dir).expect("open").commit(entries(20_000, 21_000), run("b")).expect("commit");
    let idx = Index::open(dir).expect("reopen");
    assert_eq!(ino(dir, SPARE), Some(first), "the replaced filter is the spare");
    let second = live(&idx);
    assert_ne!(second, first, "no spare to write over: a new file");
    answers(&idx, 0, 21_000);
    drop(idx);

    Index::open(dir).expect("open").commit(entries(21_000, 22_000), run("c")).expect("commit");
    let idx = Index::open(dir).expect("reopen");
    assert_eq!(live(&idx), first, "the spare was written over");
    assert_eq!(ino(dir, SPARE), Some(second));
    answers(&idx, 0, 22_000);
    // The spare counts as bytes on disk: every byte of the folder.
    let on_disk: u64 = fs::read_dir(dir).expect("ls").map(|e| e.expect("entry").metadata().expect("stat").len()).sum();
    assert_eq!(idx.stats().bytes_on_disk, on_disk);
}

/// The filter doubles as the index grows: a spare of the old size is not
/// written over but deleted, and the filter it would have been is right.
#[test]
fn a_spare_of_another_size_is_deleted() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // 64, then 128, then 256 blocks.
    for (c, (lo, hi)) in [(0, 3000), (3000, 6000), (6000, 12_000)].into_iter().enumerate() {
        let idx = Index::open(dir).expect("open");
        let (before, spare) = (idx.manifest.filter.map(|_| live(&idx)), ino(dir, SPARE));
        let _held = File::open(dir.join(SPARE)).ok();
        idx.commit(entries(lo, hi), run("g")).expect("commit");
        let idx = Index::open(dir).expect("reopen");
        assert_eq!(ino(dir, SPARE), before, "commit {c}: the replaced filter is the spare");
        assert!(spare.is_none_or(|s| live(&idx) != s), "commit {c}: a spare of another size was written over");
        answers(&idx, 0, hi);
    }
}

/// A lookup view mapping the filter a commit replaces: the file is deleted,
/// not kept to be written over, and the view goes on answering from it.
#[test]
fn a_filter_a_view_still_maps_is_deleted_not_kept() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    Index::open(dir).expect("open").commit(entries(0, 20_000), run("a")).expect("commit");
    let mut idx = Index::open(dir).expect("open");
    let view = idx.view();
    idx.commit_in_place(entries(20_000, 21_000), run("b")).expect("commit");
    assert_eq!(ino(dir, SPARE), None, "the view's filter is not the spare");
    let second = live(&idx);
    idx.commit_in_place(entries(21_000, 22_000), run("c")).expect("commit");
    assert_eq!(ino(dir, SPARE), Some(second), "a filter no view maps is");
    idx.commit_in_place(entries(22_000, 23_000), run("d")).expect("commit");
    assert_eq!(live(&idx), second, "and is written over");
    // The view sees the index as it was when it was taken.
    view_answers(&view, 20_000, 23_000);
    drop(idx);
    answers(&Index::open(dir).expect("reopen"), 0, 23_000);
}

/// A crash after the spare was renamed and written, before the manifest:
/// the old state, the written-over spare an orphan removed at the open, and
/// the next commit writes a new file.
#[test]
fn a_crash_after_writing_over_the_spare_keeps_the_old_state() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    Index::open(dir).expect("open").commit(entries(0, 20_000), run("a")).expect("commit");
    Index::open(dir).expect("open").commit(entries(20_000, 21_000), run("b")).expect("commit");
    let spare = ino(dir, SPARE).expect("a spare");
    let _held = File::open(dir.join(SPARE)).expect("the spare");
    let mut idx = Index::open(dir).expect("open");
    let (kept, next) = (live(&idx), idx.manifest.next_id + 1);
    idx.fail = Some(FailPoint::BeforeManifestRename);
    assert!(idx.commit_in_place(entries(21_000, 22_000), run("c")).is_err());
    drop(idx);
    assert_eq!(ino(dir, SPARE), None);
    assert_eq!(ino(dir, &filter_name(next)), Some(spare), "the spare, written under its new name");
    let idx = Index::open(dir).expect("reopen");
    assert_eq!(live(&idx), kept);
    assert_eq!(ino(dir, &filter_name(next)), None, "an orphan, removed");
    answers(&idx, 0, 21_000);
    idx.commit(entries(21_000, 22_000), run("c")).expect("commit");
    let idx = Index::open(dir).expect("reopen");
    assert_ne!(live(&idx), spare);
    assert_eq!(ino(dir, SPARE), Some(kept));
    answers(&idx, 0, 22_000);
}

/// A spare with another name too (a hard-linked snapshot of the folder) is
/// deleted, not written over: the snapshot's file keeps its bytes.
#[test]
fn a_hard_linked_spare_is_not_written_over() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("index");
    Index::open(&dir).expect("open").commit(entries(0, 20_000), run("a")).expect("commit");
    Index::open(&dir).expect("open").commit(entries(20_000, 21_000), run("b")).expect("commit");
    let snapshot = tmp.path().join("snapshot.ndf");
    fs::hard_link(dir.join(SPARE), &snapshot).expect("link");
    let before = fs::read(&snapshot).expect("read");
    let idx = Index::open(&dir).expect("open");
    let kept = live(&idx);
    idx.commit(entries(21_000, 22_000), run("c")).expect("commit");
    assert_eq!(fs::read(&snapshot).expect("read"), before, "the snapshot's file was written over");
    let idx = Index::open(&dir).expect("reopen");
    assert_ne!(Some(live(&idx)), ino(tmp.path(), "snapshot.ndf"));
    assert_eq!(ino(&dir, SPARE), Some(kept));
    answers(&idx, 0, 22_000);
}

/// A view that outlived its `Index` maps a filter that becomes the spare
/// of a later `Index`: that spare is not written over while the view maps
/// it, and the view answers as when taken.
#[test]
fn a_spare_a_view_of_an_earlier_index_maps_is_not_written_over() {
    let _serial = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    Index::open(dir).expect("open").commit(entries(0, 20_000), run("a")).expect("commit");
    let idx = Index::open(dir).expect("open");
    let view = idx.view();
    drop(idx);
    Index::open(dir).expect("open").commit(entries(20_000, 21_000), run("b")).expect("commit");
    // The view's file is the spare now; hold it to read it after.
    let spare = File::open(dir.join(SPARE)).expect("the spare");
    let before = fs::read(dir.join(SPARE)).expect("read");
    Index::open(dir).expect("open").commit(entries(21_000, 22_000), run("c")).expect("commit");
    let mut after = vec![0; before.len()];
    std::os::unix::fs::FileExt::read_exact_at(&spare, &mut after, 0).expect("read");
    assert!(after == before, "the file a view maps was written over");
    view_answers(&view, 20_000, 22_000);
    answers(&Index::open(dir).expect("reopen"), 0, 22_000);
}
