//! Tests of the seen-set: duplicates, history from the index, thresholds.
use super::*;
use crate::key::{KeyMode, Keyer};

fn keyed(paras: &[&str]) -> Vec<Keyed> {
    let mut k = Keyer::new(KeyMode::Exact);
    paras.iter().map(|p| k.keyed(p)).collect()
}

fn decide(d: &mut Deduper, paras: &[&str]) -> Plan {
    let keys = keyed(paras);
    d.decide(&keys, &document_key(&keys))
}

fn kept<'a>(paras: &[&'a str], plan: &Plan) -> Vec<&'a str> {
    paras.iter().zip(&plan.verdicts).filter(|(_, v)| v.is_kept()).map(|(p, _)| *p).collect()
}

const A: &str = "Interpol has identified over 4,000 foreign fighters who joined jihadist groups.";
const B: &str = "Stock was speaking at the opening of a meeting in the northeastern Spanish city.";
const C: &str = "A recent UN report showed an increase in the number of foreign fighters.";
const SAID: &str = "he said.";

#[test]
fn long_repeat_within_document_is_dropped() {
    let paras = [A, B, A];
    let plan = decide(&mut Deduper::new(Rules::default()), &paras);
    assert_eq!(kept(&paras, &plan), [A, B]);
    assert_eq!(
        plan.verdicts[2],
        Verdict::Drop { reason: Reason::WithinDocument, first: Occurrence { doc: 0, para: 0 } }
    );
}

#[test]
fn short_repeat_between_distinct_paragraphs_is_spared() {
    let paras = [A, SAID, B, SAID, C];
    let plan = decide(&mut Deduper::new(Rules::default()), &paras);
    assert_eq!(kept(&paras, &plan), paras);
    assert!(matches!(plan.verdicts[3], Verdict::Spared { .. }));
}

#[test]
fn short_repeat_inside_a_pasted_copy_is_dropped() {
    let paras = [A, SAID, B, A, SAID, B];
    let plan = decide(&mut Deduper::new(Rules::default()), &paras);
    assert_eq!(kept(&paras, &plan), [A, SAID, B]);
    assert!(matches!(plan.verdicts[4], Verdict::Drop { reason: Reason::InsideRepeatedBlock, .. }));
}

#[test]
fn short_repeat_between_a_dropped_repeat_and_the_end_is_dropped() {
    let paras = [A, SAID, A, SAID];
    let plan = decide(&mut Deduper::new(Rules::default()), &paras);
    assert_eq!(kept(&paras, &plan), [A, SAID]);
}

#[test]
fn short_repeat_next_to_a_kept_paragraph_is_spared() {
    let paras = [SAID, A, SAID, C];
    let plan = decide(&mut Deduper::new(Rules::default()), &paras);
    assert_eq!(kept(&paras, &plan), paras);
}

#[test]
fn document_of_only_short_repeats_is_kept() {
    let mut d = Deduper::new(Rules::default());
    decide(&mut d, &[SAID, A]);
    let plan = decide(&mut d, &[SAID]);
    assert_eq!(plan.verdicts, [Verdict::Spared { first: Occurrence { doc: 0, para: 0 } }]);
}

#[test]
fn across_documents_and_duplicate_documents() {
    let mut d = Deduper::new(Rules::default());
    decide(&mut d, &[A, B]);
    let second = decide(&mut d, &[C, B]);
    assert_eq!(
        second.verdicts[1],
        Verdict::Drop { reason: Reason::AcrossDocuments, first: Occurrence { doc: 0, para: 1 } }
    );
    let third = decide(&mut d, &[A, B]);
    assert_eq!(third.duplicate_of, Some(0));
    assert!(third.verdicts.iter().all(|v| matches!(v, Verdict::Drop { reason: Reason::DuplicateDocument, .. })));
    assert_eq!(d.distinct_keys(), 3);
}

#[test]
fn document_scope_forgets_between_documents() {
    let mut d = Deduper::new(Rules { scope: Scope::Document, ..Rules::default() });
    decide(&mut d, &[A, B]);
    let second = decide(&mut d, &[A, B, A]);
    assert_eq!(second.duplicate_of, None);
    assert_eq!(second.kept(), 2);
}

#[test]
fn documents_of_only_short_paragraphs_are_never_duplicates() {
    let mut d = Deduper::new(Rules::default());
    decide(&mut d, &[SAID]);
    let plan = decide(&mut d, &[SAID]);
    assert_eq!(plan.duplicate_of, None);
    assert_eq!(plan.kept(), 1);
}

#[test]
fn empty_documents_are_never_duplicates() {
    let mut d = Deduper::new(Rules::default());
    decide(&mut d, &[]);
    assert_eq!(decide(&mut d, &[]).duplicate_of, None);
}

// The decision with a persistent index (earlier batches, retries): `retry_tests.rs`.

#[test]
fn empty_keys_are_never_dropped_on_their_own() {
    let mut k = Keyer::new(KeyMode::Loose);
    let keys: Vec<Keyed> = ["---", "***", "---"].iter().map(|p| k.keyed(p)).collect();
    let plan = Deduper::new(Rules { min_chars: 0, ..Rules::default() }).decide(&keys, &document_key(&keys));
    assert_eq!(plan.kept(), 3);
}

#[test]
fn min_chars_zero_drops_every_repeat() {
    let paras = [SAID, A, SAID];
    let mut d = Deduper::new(Rules { min_chars: 0, min_chars_within: 0, ..Rules::default() });
    assert_eq!(kept(&paras, &decide(&mut d, &paras)), [SAID, A]);
    let next = [C, SAID];
    assert_eq!(kept(&next, &decide(&mut d, &next)), [C]);
}

const QTLY: &str = "Qtly div 10 cts vs 10 cts prior";

#[test]
fn a_short_line_from_an_unrelated_story_is_kept_once_per_story() {
    let mut d = Deduper::new(Rules::default());
    decide(&mut d, &[A, QTLY]);
    let plan = decide(&mut d, &[B, QTLY]);
    assert_eq!(plan.verdicts[1], Verdict::Spared { first: Occurrence { doc: 0, para: 1 } });
    // A story that repeats more of the first one loses the short line too.
    let plan = decide(&mut d, &[C, A, SAID, QTLY]);
    assert_eq!(kept(&[C, A, SAID, QTLY], &plan), [C, SAID]);
    assert!(matches!(plan.verdicts[3], Verdict::Drop { reason: Reason::SameSource, .. }));
}

#[test]
fn index_sources_group_like_run_sources() {
    // Story 0 was ingested by an earlier run; story 1 repeats two of its
    // short lines: the same verdicts as when both are in one run.
    const PAY: &str = "Pay April 13 Record March 13";
    let (k0, k1) = (keyed(&[A, QTLY, PAY]), keyed(&[B, QTLY, PAY]));
    let mut one_run = Deduper::new(Rules::default());
    one_run.decide(&k0, &document_key(&k0));
    let single = one_run.decide(&k1, &document_key(&k1));
    // The index names story 0 by its anchor (its first paragraph's key).
    let old = Earlier { batch: 0, doc: anchor(&k0[0].digest) };
    let find = |d: &Digest| k0.iter().any(|k| k.digest == *d).then_some(old);
    let h = History { paragraphs: k1.iter().map(|k| find(&k.digest)).collect(), document: None };
    let with_index = Deduper::new(Rules::default()).decide_with_history(&k1, &document_key(&k1), Some(&h));
    let kept = |p: &Plan| p.verdicts.iter().map(|v| v.is_kept()).collect::<Vec<_>>();
    assert_eq!(kept(&single), [true, false, false]);
    assert_eq!(kept(&with_index), kept(&single));
}

#[test]
fn a_reserved_seen_set_decides_as_one_that_grew() {
    let docs: Vec<Vec<String>> = (0..300)
        .map(|d| {
            (0..8).map(|p| format!("Paragraph {} of a story long enough to count as one.", (d * 5 + p) % 900)).collect()
        })
        .collect();
    let mut grown = Deduper::new(Rules::default());
    let mut reserved = Deduper::new(Rules::default());
    reserved.reserve_keys(2_000);
    let spots = reserved.seen.spots();
    assert!(spots >= 2_000 * 4 / 3, "{spots} spots");
    for doc in &docs {
        let paras: Vec<&str> = doc.iter().map(String::as_str).collect();
        assert_eq!(decide(&mut reserved, &paras), decide(&mut grown, &paras));
    }
    assert_eq!(reserved.seen.spots(), spots, "filled without growing");
    assert!(grown.seen.spots() < spots);
}

#[test]
fn a_seen_set_emptied_at_every_document_is_not_reserved() {
    let mut d = Deduper::new(Rules { scope: Scope::Document, ..Rules::default() });
    d.reserve_keys(1 << 20);
    assert_eq!(d.seen.spots(), 0);
    let mut d = Deduper::new(Rules::default());
    decide(&mut d, &["A paragraph already held before the reservation, long enough to count."]);
    let spots = d.seen.spots();
    d.reserve_keys(1 << 20);
    assert_eq!(d.seen.spots(), spots, "a seen-set that holds keys is left as it is");
}
