//! The decision with a persistent index: earlier batches, retries, retries
//! over text cleaned in place. The index is modelled by a map from key to
//! [`Earlier`], filled the way the pipeline fills the real one.

use std::collections::HashMap;

use super::*;
use crate::key::{KeyMode, Keyer};

const A: &str = "Interpol has identified over 4,000 foreign fighters.";
const B: &str = "Stock was speaking at the opening of a meeting.";
const C: &str = "A recent UN report showed an increase in fighters.";
const D: &str = "The ministers agreed on a common list of measures.";
const SAID: &str = "he said.";

/// The paragraphs above are news on their own (`min_chars` 20), so a
/// repeat of one is dropped by itself.
fn rules() -> Rules {
    Rules { min_chars: 20, ..Rules::default() }
}

fn keyed(paras: &[&str]) -> Vec<Keyed> {
    let mut k = Keyer::new(KeyMode::Exact);
    paras.iter().map(|p| k.keyed(p)).collect()
}

/// A stand-in for the persistent index.
#[derive(Default)]
struct FakeIndex(HashMap<u128, Earlier>);

impl FakeIndex {
    fn history(&self, keys: &[Keyed]) -> History {
        History {
            paragraphs: keys.iter().map(|k| self.0.get(&k.digest.prefix()).copied()).collect(),
            document: self.0.get(&document_key(keys).prefix()).copied(),
        }
    }

    /// One run of `batch` over `docs`: the plans, and what it would commit.
    fn run(&self, batch: u32, docs: &[Vec<&str>]) -> (Vec<Plan>, Vec<(u128, Earlier)>) {
        let mut d = Deduper::new(rules());
        d.record_new_firsts();
        d.set_batch(batch);
        let mut new = Vec::new();
        let plans = docs
            .iter()
            .map(|paras| {
                let keys = keyed(paras);
                let plan = d.decide_with_history(&keys, &document_key(&keys), Some(&self.history(&keys)));
                new.extend(d.take_new_firsts().map(|(k, doc)| (k, Earlier { batch, doc })));
                plan
            })
            .collect();
        (plans, new)
    }

    /// [`FakeIndex::run`] with the first occurrences kept in the tables
    /// ([`Deduper::keep_firsts_in_tables`]) and read from them at the end.
    fn run_tables(&self, batch: u32, docs: &[Vec<&str>]) -> (Vec<Plan>, Vec<(u128, Earlier)>) {
        let mut d = Deduper::new(rules());
        d.record_new_firsts();
        d.set_batch(batch);
        assert!(d.keep_firsts_in_tables());
        let plans = docs
            .iter()
            .map(|paras| {
                let keys = keyed(paras);
                let plan = d.decide_with_history(&keys, &document_key(&keys), Some(&self.history(&keys)));
                assert_eq!(d.take_new_firsts().count(), 0, "nothing listed");
                plan
            })
            .collect();
        let new: Vec<(u128, Earlier)> =
            sorted_firsts(d).into_iter().map(|(k, doc)| (k, Earlier { batch, doc })).collect();
        (plans, new)
    }

    fn commit(&mut self, new: Vec<(u128, Earlier)>) {
        for (k, e) in new {
            self.0.entry(k).or_insert(e);
        }
    }
}

fn kept<'a>(paras: &[&'a str], plan: &Plan) -> Vec<&'a str> {
    paras.iter().zip(&plan.verdicts).filter(|(_, v)| v.is_kept()).map(|(p, _)| *p).collect()
}

#[test]
fn keys_of_an_earlier_batch_are_repeats_whatever_the_document() {
    let mut ix = FakeIndex::default();
    let day1 = vec![vec![A, B]];
    let (_, new) = ix.run(0, &day1);
    ix.commit(new);
    // Day 2 has "the same document" (same text, as a same-named file would):
    // a different batch, so a duplicate; a document sharing one paragraph
    // drops that paragraph, naming the earlier run.
    let (plans, new) = ix.run(1, &[vec![A, B], vec![C, B]]);
    assert_eq!(plans[0].duplicate_of, Some(EARLIER_RUN));
    assert_eq!(
        plans[1].verdicts,
        [
            Verdict::Keep,
            Verdict::Drop { reason: Reason::AcrossDocuments, first: Occurrence { doc: EARLIER_RUN, para: 0 } }
        ]
    );
    // New to the index: C and the second document's key, anchored at C.
    let c = keyed(&[C])[0].digest;
    let anchor_c = anchor(&c);
    assert_eq!(new.len(), 2);
    assert!(new.iter().all(|(_, e)| *e == Earlier { batch: 1, doc: anchor_c }), "{new:?}");
    assert!(new.iter().any(|(k, _)| *k == c.prefix()));
}

#[test]
fn a_retry_decides_exactly_as_the_first_run_and_adds_nothing() {
    let mut ix = FakeIndex::default();
    let (_, new) = ix.run(0, &[vec![D]]);
    ix.commit(new);
    // Within-document and across-document repeats, a duplicate document, a
    // spared short repeat, a key of the earlier batch.
    let day = vec![vec![A, SAID, B, A], vec![C, SAID, B, D], vec![A, SAID, B, A], vec![SAID, C]];
    let (first, new) = ix.run(1, &day);
    assert_eq!(first[2].duplicate_of, Some(0));
    ix.commit(new);
    let (retry, new) = ix.run(1, &day);
    assert_eq!(retry, first, "same verdicts, same first occurrences, same duplicate_of");
    assert!(new.is_empty(), "a retry adds nothing: {new:?}");
}

#[test]
fn a_retry_over_text_cleaned_in_place_keeps_everything_the_first_run_kept() {
    let mut ix = FakeIndex::default();
    let (_, new) = ix.run(0, &[vec![D]]);
    ix.commit(new);
    let day = vec![vec![D, A, SAID, B, A], vec![C, SAID, B, D], vec![A, SAID, B, A], vec![B, C, SAID]];
    let (first, new) = ix.run(1, &day);
    ix.commit(new);
    // What --in-place left: the kept paragraphs; documents with nothing left are gone.
    let cleaned: Vec<Vec<&str>> =
        day.iter().zip(&first).map(|(d, p)| kept(d, p)).filter(|d: &Vec<&str>| !d.is_empty()).collect();
    // (The last document loses "he said." with B: both first kept by the first.)
    assert_eq!(cleaned, [vec![A, SAID, B], vec![C]]);
    let (retry, new) = ix.run(1, &cleaned);
    for (d, p) in cleaned.iter().zip(&retry) {
        assert_eq!(kept(d, p), *d, "{p:?}");
    }
    assert!(new.is_empty(), "the cleaned documents' keys are not new: {new:?}");
}

#[test]
fn a_copy_of_another_documents_anchor_does_not_make_a_document_its_own() {
    let mut ix = FakeIndex::default();
    // The second document starts with a copy of the first one's anchor (A),
    // then its own first paragraph (C).
    let day = vec![vec![A, B], vec![A, C, D]];
    let (first, new) = ix.run(0, &day);
    ix.commit(new);
    let (retry, _) = ix.run(0, &day);
    assert_eq!(retry, first);
    assert_eq!(kept(&day[1], &retry[1]), [C, D]);
}

#[test]
fn a_document_of_only_repeats_is_recognised_by_its_document_key() {
    let mut ix = FakeIndex::default();
    let day = vec![vec![A], vec![B], vec![A, B]];
    let (first, new) = ix.run(0, &day);
    assert_eq!(first[2].kept(), 0);
    assert_eq!(first[2].duplicate_of, None);
    ix.commit(new);
    let (retry, new) = ix.run(0, &day);
    assert_eq!(retry, first, "not a duplicate of itself");
    assert!(new.is_empty());
    // Another batch with the same document: a duplicate.
    let (other, _) = ix.run(1, &[vec![A, B]]);
    assert_eq!(other[0].duplicate_of, Some(EARLIER_RUN));
}

#[test]
fn without_a_batch_every_index_hit_is_a_repeat() {
    let mut ix = FakeIndex::default();
    let (_, new) = ix.run(0, &[vec![A, B]]);
    ix.commit(new);
    let keys = keyed(&[A, C]);
    let mut d = Deduper::new(rules());
    let plan = d.decide_with_history(&keys, &document_key(&keys), Some(&ix.history(&keys)));
    assert!(!plan.verdicts[0].is_kept());
    assert!(plan.verdicts[1].is_kept());
}

/// Found by the property test: cleaned in place, a document can equal a
/// later document of its batch (made only of repeats) whose document key
/// the first run recorded; the retry must still keep it.
#[test]
fn a_cleaned_document_equal_to_a_later_one_is_still_kept() {
    let mut ix = FakeIndex::default();
    let day = vec![vec![A, B], vec![C, A, B], vec![C]];
    let (first, new) = ix.run(0, &day);
    assert_eq!(kept(&day[1], &first[1]), [C]);
    assert_eq!(first[2].kept(), 0);
    assert_eq!(first[2].duplicate_of, None, "[C] is not a duplicate: no earlier document is [C]");
    ix.commit(new);
    let cleaned = vec![vec![A, B], vec![C]];
    let (retry, new) = ix.run(0, &cleaned);
    assert_eq!(kept(&cleaned[1], &retry[1]), [C], "{:?}", retry[1]);
    assert!(new.is_empty());
    // And a later batch's document equal to the cleaned one does not make
    // it a duplicate in a retry of the first batch either.
    let (_, new) = ix.run(1, &[vec![C, A]]);
    ix.commit(new);
    let (retry, _) = ix.run(0, &cleaned);
    assert_eq!(kept(&cleaned[1], &retry[1]), [C]);
}

/// Found by the property test: a document made only of repeats (recognised
/// in a retry by its document key) followed by an identical one: the second
/// is a duplicate of the first, in the retry as in the first run.
#[test]
fn a_retried_document_of_repeats_still_has_its_duplicates() {
    let mut ix = FakeIndex::default();
    let (_, new) = ix.run(0, &[vec![A]]);
    ix.commit(new);
    let day = vec![vec![A], vec![B], vec![A]];
    let (first, new) = ix.run(1, &day);
    assert_eq!(first[0].duplicate_of, Some(EARLIER_RUN));
    let day = vec![vec![C, A], vec![A, B], vec![A, B]];
    let (first, new2) = ix.run(1, &day);
    assert_eq!(first[2].duplicate_of, Some(1));
    drop(new);
    ix.commit(new2);
    let (retry, _) = ix.run(1, &day);
    assert_eq!(retry, first);
}

/// A document a retry no longer reads (removed in place) takes its number
/// and, when its run remembered it, its whole-document key: a later copy is
/// its duplicate, as in the first run. One that was not remembered (itself
/// a duplicate) leaves the earlier document the original.
#[test]
fn a_phantom_document_is_the_original_of_its_copies() {
    let mut first = Deduper::new(rules());
    let keys = |p: &[&str]| keyed(p);
    let a = first.decide(&keys(&[A]), &document_key(&keys(&[A])));
    let emptied = [A, A];
    let e = first.decide(&keys(&emptied), &document_key(&keys(&emptied)));
    assert_eq!(e.kept(), 0);
    assert!(first.remembers(&document_key(&keys(&emptied)), e.doc), "an emptied document is remembered");
    let copy = first.decide(&keys(&emptied), &document_key(&keys(&emptied)));
    assert_eq!(copy.duplicate_of, Some(e.doc));
    assert!(!first.remembers(&document_key(&keys(&emptied)), copy.doc), "a duplicate is not");
    // The retry: a is read, e is gone (a phantom), its copy is read.
    let mut retry = Deduper::new(rules());
    assert_eq!(retry.decide(&keys(&[A]), &document_key(&keys(&[A]))).doc, a.doc);
    assert_eq!(retry.phantom(&document_key(&keys(&emptied)), true), e.doc);
    assert_eq!(retry.decide(&keys(&emptied), &document_key(&keys(&emptied))), copy);
    let mut forgotten = Deduper::new(rules());
    forgotten.decide(&keys(&[A]), &document_key(&keys(&[A])));
    forgotten.phantom(&document_key(&keys(&emptied)), false);
    assert_eq!(forgotten.decide(&keys(&emptied), &document_key(&keys(&emptied))).duplicate_of, None);
}

#[test]
fn first_occurrences_read_from_the_tables_are_those_listed_decision_by_decision() {
    // Days of documents drawn from long paragraphs, short ones and
    // repeats, some of them of earlier days: whole copies, shared
    // paragraphs, documents of only short lines, empty documents. A day
    // whose firsts are kept in the tables decides the same and commits the
    // same (key, anchor) pairs as one that lists them.
    let words = ["fighters", "ministers", "meeting", "report", "measures", "city", "talks", "market"];
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let paragraph = |n: u64| match n % 3 {
        0 => format!("Line {n}."),
        _ => format!("The {} of {} were reported on day {} by the wire.", words[(n % 8) as usize], n, n / 8),
    };
    let mut ix = FakeIndex::default();
    let mut documents: Vec<Vec<String>> = Vec::new();
    for day in 0..6u32 {
        let mut docs: Vec<Vec<String>> = Vec::new();
        for _ in 0..120 {
            let doc = match next(10) {
                0 if !documents.is_empty() => documents[next(documents.len() as u64) as usize].clone(),
                1 => Vec::new(),
                _ => (0..next(7)).map(|_| paragraph(next(400))).collect(),
            };
            docs.push(doc.clone());
            documents.push(doc);
        }
        let docs: Vec<Vec<&str>> = docs.iter().map(|d| d.iter().map(String::as_str).collect()).collect();
        let (plans, mut listed) = ix.run(day, &docs);
        let (plans_t, mut tabled) = ix.run_tables(day, &docs);
        assert_eq!(plans, plans_t, "day {day}: the same decisions");
        assert!(!listed.is_empty(), "day {day}: new keys");
        listed.sort_by_key(|&(k, e)| (k, e.doc));
        tabled.sort_by_key(|&(k, e)| (k, e.doc));
        assert_eq!(listed, tabled, "day {day}: the same first occurrences");
        ix.commit(listed);
    }
}

#[test]
fn firsts_stay_in_a_list_under_document_scope_or_without_recording() {
    let mut d = Deduper::new(Rules { scope: Scope::Document, ..rules() });
    d.record_new_firsts();
    assert!(!d.keep_firsts_in_tables(), "a seen-set emptied at every document");
    assert!(d.into_key_docs().is_none());
    let mut d = Deduper::new(rules());
    assert!(!d.keep_firsts_in_tables(), "nothing recorded");
    d.record_new_firsts();
    assert!(d.keep_firsts_in_tables());
    d.record_new_firsts();
    assert!(!d.keeps_firsts_in_tables(), "listing again");
}

/// The first occurrences a deduper kept in its tables, each sequence in
/// key order (checked), all of them in key order.
fn sorted_firsts(d: Deduper) -> Vec<(u128, u64)> {
    let seqs = d.into_key_docs().expect("kept in the tables");
    assert_eq!(seqs.len(), 2, "the seen-set's keys and the documents' keys");
    let mut all = Vec::new();
    for s in &seqs {
        let one: Vec<(u128, u64)> = s.pieces().into_iter().flatten().map(|k| (k.key(), k.doc)).collect();
        assert!(one.windows(2).all(|w| w[0].0 < w[1].0), "in key order, each key once");
        all.extend(one);
    }
    all.sort_unstable();
    all
}

#[test]
fn a_large_seen_set_sorted_where_it_stands_holds_the_firsts_a_list_holds() {
    // 150,000 distinct keys and 15,000 document keys: a seen-set of 4.8 MB,
    // a mapping on Linux, sorted in its chunks on a pool of two.
    let decide_all = |d: &mut Deduper, listed: &mut Vec<(u128, u64)>| {
        let mut k = Keyer::new(KeyMode::Exact);
        for doc in 0..15_000 {
            let keys: Vec<Keyed> = (0..10).map(|p| k.keyed(&format!("Paragraph {p} of document {doc}."))).collect();
            d.decide(&keys, &document_key(&keys));
            listed.extend(d.take_new_firsts());
        }
    };
    let (mut listing, mut keeping) = (Deduper::new(rules()), Deduper::new(rules()));
    listing.record_new_firsts();
    keeping.record_new_firsts();
    assert!(keeping.keep_firsts_in_tables());
    let mut listed = Vec::new();
    decide_all(&mut listing, &mut listed);
    decide_all(&mut keeping, &mut Vec::new());
    listed.sort_unstable();
    assert_eq!(listed.len(), 165_000, "10 paragraphs and a document key each");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
    assert!(pool.install(|| sorted_firsts(keeping)) == listed, "the same keys and anchors");
}

#[test]
fn a_run_of_keys_that_wraps_past_the_end_comes_out_whole_and_in_order() {
    // A mapped seen-set of 262,144 spots: the last byte's region (1,024
    // spots) full and 10 of its keys wrapped to the array's start, then 5
    // keys of byte 254 homed on that byte's last spot, which probe through
    // the whole last region and wrap as well, and keys homed at the start.
    let mut d = Deduper::new(rules());
    d.record_new_firsts();
    assert!(d.keep_firsts_in_tables());
    d.seen.reserve(196_608);
    assert_eq!(d.seen.spots(), 262_144);
    let region = 1u64 << 46;
    for n in 0..1_034u64 {
        let k = super::table::Slot((0xFF << 56) | ((n % 1_024) * region) | (n / 1_024), n + 1);
        d.seen.insert(k, Occurrence { doc: 0, para: n as u32 });
    }
    for n in 0..5u64 {
        let k = super::table::Slot(0xFEFF_FFFF_FFFF_FFFF - n, 7);
        d.seen.insert(k, Occurrence { doc: 0, para: 5_000 + n as u32 });
        d.seen.insert(super::table::Slot(n, 1), Occurrence { doc: 0, para: 6_000 + n as u32 });
    }
    let mut expected: Vec<u128> = d.seen.iter().map(|(k, _)| k.prefix()).collect();
    expected.sort_unstable();
    assert_eq!(expected.len(), 1_044);
    let seqs = d.into_key_docs().expect("kept");
    let got: Vec<u128> = seqs[0].pieces().into_iter().flatten().map(|k| k.key()).collect();
    assert_eq!(got, expected, "every key once, in key order");
}
