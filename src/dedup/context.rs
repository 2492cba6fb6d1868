//! The context rule: one document's verdicts from its keys and, per
//! paragraph, where its key was first kept.
//!
//! [`judge`] is a pure function. Its inputs are the document's keys and one
//! [`Origin`] per paragraph: kept first by no other document, or first kept by
//! another document whose identity is a [`Source`]. Nothing else — not the
//! order of other documents, not the paragraph index of a first occurrence —
//! changes a verdict (the [`Occurrence`] carried along only labels it). So a
//! single run, a run against a persistent index, and any other engine that
//! can tell, per key, *which document* first kept it decide the same.
//!
//! # The rule
//!
//! Each paragraph is first classified:
//!
//! * **first occurrence** — no other document kept the key, and it is the
//!   key's first paragraph in this document: **kept**;
//! * **within-document repeat** — the key occurs earlier in this document
//!   (whatever happened before it elsewhere);
//! * **cross-document repeat** — another document kept the key first, and
//!   this is the key's first paragraph here.
//!
//! Then:
//!
//! 1. A within-document repeat of at least [`Rules::min_chars_within`]
//!    characters is **dropped** (`within-document`). A shorter one of a key
//!    another document kept first goes with that document like the key's
//!    first paragraph here (rule 3): otherwise, once its first paragraph is
//!    dropped, cleaning the output again would judge it differently.
//! 2. A cross-document repeat of at least [`Rules::min_chars`] characters is
//!    **dropped** (`across-documents`): long enough to be news on its own.
//! 3. A shorter cross-document repeat is **dropped** (`same-source`) when the
//!    document repeats another key of at least [`Rules::min_chars_within`]
//!    characters first kept by the *same* earlier document: this document is
//!    copying that one, and the short line goes with it. Keys shorter than
//!    that (a "Reuter" sign-off, "More", "he said.") recur in every other
//!    story, so they are no evidence of copying — but they do go with a
//!    copy.
//! 4. The remaining short repeats are judged by runs, as before: take each
//!    maximal run of consecutive undecided short repeats; if the paragraph
//!    before it is a dropped repeat or the start of the document, and the one
//!    after it is a dropped repeat or the end, and at least one of the two is
//!    a dropped repeat, the run is part of a pasted copy and is **dropped**
//!    (`inside-repeated-block`). Otherwise it is **spared** (kept, counted).
//!
//! Alone and short, a line repeated from an unrelated story — "Qtly div 10
//! cts vs 10 cts prior", a referee's name, a venue — is that story's fact,
//! not a duplicate.

use crate::key::Keyed;

use super::{Occurrence, Reason, Rules, Verdict};

/// The identity of the document that first kept a key. Two paragraphs of a
/// document have the same source exactly when their keys were first kept by
/// the same document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A document of this run, by number in corpus order.
    Run(u32),
    /// A document of an earlier run, by its 64-bit identity in the
    /// persistent index: its anchor (see [`super::anchor`]), unique across
    /// batches since every key is first kept by one document.
    Index(u64),
}

/// Where a paragraph's key was first kept, as far as [`judge`] needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// By no other document: this is the key's first occurrence, or a repeat
    /// of an earlier paragraph of this document (the keys tell which).
    Here,
    /// By another document.
    Elsewhere {
        /// Which document.
        source: Source,
        /// The first occurrence (a label for reports; not used to decide).
        first: Occurrence,
    },
    /// By an earlier run of this very document, at another paragraph (a
    /// retried document whose paragraphs moved): judged as a repeat within
    /// the document.
    EarlierRunOfThis {
        /// The first occurrence (a label for reports).
        first: Occurrence,
    },
}

/// A paragraph's class (see the module docs).
#[derive(Clone, Copy, Debug)]
enum Class {
    First,
    /// Repeats paragraph `of` of this document.
    Within {
        of: usize,
    },
    /// Repeats the key an earlier run of this document kept.
    WithinEarlierRun(Occurrence),
    Across(Source, Occurrence),
}

/// A paragraph's state before the runs of short repeats are resolved.
#[derive(Clone, Copy, Debug)]
enum Pass1 {
    Final(Verdict),
    ShortRepeat(Occurrence),
}

/// The verdicts of document number `doc` (used in the labels of repeats
/// within it): one per key. `origins` has one entry per key; a missing
/// entry counts as [`Origin::Here`].
pub fn judge(doc: u32, keys: &[Keyed], origins: &[Origin], rules: &Rules) -> Vec<Verdict> {
    Scratch::default().judge(doc, keys, origins, rules)
}

/// Documents of at most this many paragraphs find their repeated keys by
/// comparing each key with the ones before it; longer ones sort them.
const PAIRWISE: usize = 24;

/// For each `(key, i)` of `order` (in paragraph order), the first paragraph
/// with the same key when that is an earlier one, into `earlier[i]` (all
/// `None` on entry). `pairwise`: each key compared with the ones before it
/// (for a news article's ten or so paragraphs, cheaper than sorting);
/// otherwise `order` is sorted and its runs of equal keys read.
fn first_of_each_key(order: &mut [(u128, usize)], earlier: &mut [Option<usize>], pairwise: bool) {
    if pairwise {
        for i in 1..order.len() {
            earlier[i] = order[..i].iter().position(|e| e.0 == order[i].0);
        }
        return;
    }
    order.sort_unstable();
    for group in order.chunk_by(|a, b| a.0 == b.0) {
        for &(_, i) in &group[1..] {
            earlier[i] = Some(group[0].1);
        }
    }
}

/// The working lists of [`judge`], kept between documents by a caller that
/// judges many (the run's ordered step), so that judging a document
/// allocates only its verdicts.
#[derive(Debug, Default)]
pub struct Scratch {
    order: Vec<(u128, usize)>,
    earlier: Vec<Option<usize>>,
    classes: Vec<Class>,
    sources: Vec<Source>,
    evidence: Vec<(Source, usize)>,
    pass1: Vec<Pass1>,
}

impl Scratch {
    /// [`judge`], with these lists.
    pub fn judge(&mut self, doc: u32, keys: &[Keyed], origins: &[Origin], rules: &Rules) -> Vec<Verdict> {
        self.classify(keys, origins);
        self.evidence(keys, rules.min_chars_within);
        let Scratch { classes, evidence, pass1, .. } = self;
        let evidence = Evidence(evidence);
        let long = |min: usize, k: &Keyed| k.chars >= min.max(1);
        pass1.clear();
        pass1.extend(classes.iter().zip(keys).map(|(c, k)| match *c {
            Class::First => Pass1::Final(Verdict::Keep),
            Class::Within { .. } | Class::WithinEarlierRun(_) => {
                let first = if let Class::WithinEarlierRun(f) = *c { f } else { Occurrence::default() };
                // The key's source, when another document kept it first.
                let source = match *c {
                    Class::Within { of } => match classes[of] {
                        Class::Across(source, _) => Some(source),
                        _ => None,
                    },
                    _ => None,
                };
                if long(rules.min_chars_within, k) {
                    Pass1::Final(Verdict::Drop { reason: Reason::WithinDocument, first })
                } else if source.is_some_and(|s| evidence.others(s, false)) {
                    // Goes with its source like the key's first paragraph here.
                    Pass1::Final(Verdict::Drop { reason: Reason::SameSource, first })
                } else {
                    Pass1::ShortRepeat(first)
                }
            }
            Class::Across(source, first) => {
                if long(rules.min_chars, k) {
                    Pass1::Final(Verdict::Drop { reason: Reason::AcrossDocuments, first })
                } else if evidence.others(source, long(rules.min_chars_within, k)) {
                    Pass1::Final(Verdict::Drop { reason: Reason::SameSource, first })
                } else {
                    Pass1::ShortRepeat(first)
                }
            }
        }));
        let mut verdicts = resolve_short_runs(pass1);
        // A repeat within the document names the kept paragraph of its key:
        // the earlier one here when that was kept, else the one that one
        // repeats.
        for (i, c) in classes.iter().enumerate() {
            if let Class::Within { of } = *c {
                let first = match verdicts[of] {
                    Verdict::Keep | Verdict::Spared { .. } => {
                        Occurrence { doc, para: u32::try_from(of).unwrap_or(u32::MAX) }
                    }
                    Verdict::Drop { first, .. } => first,
                };
                set_first(&mut verdicts[i], first);
            }
        }
        verdicts
    }

    /// Classifies each paragraph (into `classes`); the first paragraph of
    /// each key in this document takes its origin, later ones are repeats
    /// within the document.
    fn classify(&mut self, keys: &[Keyed], origins: &[Origin]) {
        let Scratch { order, earlier, classes, .. } = self;
        order.clear();
        order.extend(keys.iter().enumerate().map(|(i, k)| (k.digest.prefix(), i)));
        earlier.clear();
        earlier.resize(keys.len(), None);
        first_of_each_key(order, earlier, keys.len() <= PAIRWISE);
        classes.clear();
        classes.extend((0..keys.len()).map(|i| match (earlier[i], origins.get(i).copied().unwrap_or(Origin::Here)) {
            (Some(of), _) => Class::Within { of },
            (None, Origin::Here) => Class::First,
            (None, Origin::Elsewhere { source, first }) => Class::Across(source, first),
            (None, Origin::EarlierRunOfThis { first }) => Class::WithinEarlierRun(first),
        }));
    }

    /// Per source, how many of this document's keys it first kept that are
    /// long enough to count as evidence of copying (at least `min`
    /// characters), into `evidence` (sorted by source).
    fn evidence(&mut self, keys: &[Keyed], min: usize) {
        let Scratch { classes, sources, evidence, .. } = self;
        sources.clear();
        sources.extend(classes.iter().zip(keys).filter_map(|(c, k)| match *c {
            Class::Across(s, _) if k.chars >= min.max(1) => Some(s),
            _ => None,
        }));
        sources.sort_unstable();
        evidence.clear();
        evidence.extend(sources.chunk_by(|a, b| a == b).map(|g| (g[0], g.len())));
    }
}

fn set_first(v: &mut Verdict, to: Occurrence) {
    match v {
        Verdict::Keep => {}
        Verdict::Spared { first } | Verdict::Drop { first, .. } => *first = to,
    }
}

/// Per source (sorted), how many of a document's keys it first kept that
/// count as evidence (see [`Scratch::evidence`]).
struct Evidence<'a>(&'a [(Source, usize)]);

impl Evidence<'_> {
    /// True when `source` first kept evidence other than the paragraph
    /// asking (`is_evidence`: whether that paragraph counts itself).
    fn others(&self, source: Source, is_evidence: bool) -> bool {
        let n = self.0.binary_search_by_key(&source, |e| e.0).map_or(0, |i| self.0[i].1);
        n > usize::from(is_evidence)
    }
}

/// Rule 4: a run of short repeats is dropped when both its neighbours are
/// dropped repeats or document boundaries, and at least one is a repeat.
fn resolve_short_runs(pass1: &[Pass1]) -> Vec<Verdict> {
    let dropped = |i: usize| matches!(pass1[i], Pass1::Final(Verdict::Drop { .. }));
    let mut out = Vec::with_capacity(pass1.len());
    let mut i = 0;
    while i < pass1.len() {
        match pass1[i] {
            Pass1::Final(v) => {
                out.push(v);
                i += 1;
            }
            Pass1::ShortRepeat(_) => {
                let end = (i..pass1.len()).find(|&j| matches!(pass1[j], Pass1::Final(_))).unwrap_or(pass1.len());
                let left = if i == 0 { None } else { Some(dropped(i - 1)) };
                let right = if end == pass1.len() { None } else { Some(dropped(end)) };
                let inside = left != Some(false) && right != Some(false) && (left.is_some() || right.is_some());
                for p in &pass1[i..end] {
                    if let Pass1::ShortRepeat(first) = *p {
                        out.push(if inside {
                            Verdict::Drop { reason: Reason::InsideRepeatedBlock, first }
                        } else {
                            Verdict::Spared { first }
                        });
                    }
                }
                i = end;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyMode, Keyer};

    fn keyed(paras: &[&str]) -> Vec<Keyed> {
        let mut k = Keyer::new(KeyMode::Exact);
        paras.iter().map(|p| k.keyed(p)).collect()
    }

    fn from(doc: u32, para: u32) -> Origin {
        Origin::Elsewhere { source: Source::Run(doc), first: Occurrence { doc, para } }
    }

    fn kept(verdicts: &[Verdict]) -> Vec<bool> {
        verdicts.iter().map(|v| v.is_kept()).collect()
    }

    const QTLY: &str = "Qtly div 10 cts vs 10 cts prior";
    const PAY: &str = "Pay April 13 Record March 13";
    const NEW: &str = "Knutson Mortgage Corp said its board raised the payout.";
    const LONG: &str = "Dock workers at the port of Northbay ended a two-week strike on Tuesday after a pay offer.";
    const LONG2: &str = "The agreement raises hourly wages by 4.5% over two years and restores overtime rates.";

    #[test]
    fn a_short_repeat_alone_is_spared() {
        let keys = keyed(&[NEW, QTLY, PAY]);
        let v = judge(5, &keys, &[Origin::Here, from(1, 0), Origin::Here], &Rules::default());
        assert_eq!(v[1], Verdict::Spared { first: Occurrence { doc: 1, para: 0 } });
        assert_eq!(kept(&v), [true, true, true]);
    }

    #[test]
    fn short_repeats_from_different_documents_are_each_alone() {
        let keys = keyed(&[NEW, QTLY, PAY]);
        let v = judge(5, &keys, &[Origin::Here, from(1, 0), from(2, 1)], &Rules::default());
        assert_eq!(kept(&v), [true, true, true]);
    }

    #[test]
    fn short_repeats_from_the_same_document_are_dropped() {
        let keys = keyed(&[NEW, QTLY, PAY]);
        let v = judge(5, &keys, &[Origin::Here, from(1, 0), from(1, 1)], &Rules::default());
        assert_eq!(kept(&v), [true, false, false]);
        assert!(matches!(v[1], Verdict::Drop { reason: Reason::SameSource, .. }));
    }

    #[test]
    fn a_tiny_line_from_the_same_document_is_no_evidence_but_goes_with_a_copy() {
        let keys = keyed(&[NEW, QTLY, "Reuter"]);
        let v = judge(5, &keys, &[Origin::Here, from(1, 0), from(1, 1)], &Rules::default());
        assert!(matches!(v[1], Verdict::Spared { .. }), "a sign-off does not make the fact a copy");
        assert!(matches!(v[2], Verdict::Drop { reason: Reason::SameSource, .. }));
    }

    #[test]
    fn a_short_repeat_goes_with_a_long_one_from_its_source() {
        let keys = keyed(&[NEW, QTLY, LONG, PAY]);
        let v = judge(5, &keys, &[Origin::Here, from(1, 0), from(1, 3), Origin::Here], &Rules::default());
        assert_eq!(kept(&v), [true, false, false, true]);
        assert!(matches!(v[2], Verdict::Drop { reason: Reason::AcrossDocuments, .. }));
    }

    #[test]
    fn the_source_identity_is_all_that_counts() {
        let keys = keyed(&[NEW, QTLY, PAY]);
        let index = |id: u64, para: u32| Origin::Elsewhere {
            source: Source::Index(id),
            first: Occurrence { doc: super::super::EARLIER_RUN, para },
        };
        let same = judge(0, &keys, &[Origin::Here, index(7, 4), index(7, 9)], &Rules::default());
        let other = judge(0, &keys, &[Origin::Here, index(7, 4), index(8, 4)], &Rules::default());
        assert_eq!(kept(&same), [true, false, false]);
        assert_eq!(kept(&other), [true, true, true]);
    }

    #[test]
    fn a_short_repeat_between_dropped_repeats_is_dropped() {
        let keys = keyed(&[NEW, LONG, QTLY, LONG2]);
        let v = judge(5, &keys, &[Origin::Here, from(1, 0), from(2, 0), from(3, 0)], &Rules::default());
        assert_eq!(kept(&v), [true, false, false, false]);
        assert!(matches!(v[2], Verdict::Drop { reason: Reason::InsideRepeatedBlock, .. }));
    }

    #[test]
    fn one_short_key_twice_is_one_source_key_and_the_second_is_within() {
        let keys = keyed(&[QTLY, NEW, QTLY]);
        let rules = Rules { min_chars_within: 40, ..Rules::default() };
        let v = judge(5, &keys, &[from(1, 0), Origin::Here, from(1, 0)], &rules);
        assert_eq!(v[0], Verdict::Spared { first: Occurrence { doc: 1, para: 0 } });
        // Short for the within threshold too, next to a kept paragraph: spared,
        // and it names the spared paragraph of this document.
        assert_eq!(v[2], Verdict::Spared { first: Occurrence { doc: 5, para: 0 } });
        let v = judge(5, &keys, &[from(1, 0), Origin::Here, from(1, 0)], &Rules::default());
        assert_eq!(v[2], Verdict::Drop { reason: Reason::WithinDocument, first: Occurrence { doc: 5, para: 0 } });
    }

    #[test]
    fn a_tiny_line_twice_goes_with_its_source_both_times() {
        // Found by the property test: the second "he said." used to survive
        // as a within-document repeat, then lose to its source once the
        // first had gone, so cleaning the output changed it.
        let keys = keyed(&["he said.", QTLY, NEW, "he said."]);
        let v = judge(5, &keys, &[from(1, 1), from(1, 0), Origin::Here, from(1, 1)], &Rules::default());
        assert_eq!(kept(&v), [false, true, true, false]);
        assert_eq!(v[3], Verdict::Drop { reason: Reason::SameSource, first: Occurrence { doc: 1, para: 1 } });
    }

    #[test]
    fn a_within_repeat_of_a_dropped_paragraph_names_the_kept_one() {
        let keys = keyed(&[NEW, LONG, LONG]);
        let v = judge(5, &keys, &[Origin::Here, from(1, 2), from(1, 2)], &Rules::default());
        assert_eq!(v[2], Verdict::Drop { reason: Reason::WithinDocument, first: Occurrence { doc: 1, para: 2 } });
    }

    #[test]
    fn min_chars_zero_drops_every_cross_document_repeat() {
        let keys = keyed(&[NEW, QTLY]);
        let v = judge(5, &keys, &[Origin::Here, from(1, 0)], &Rules { min_chars: 0, ..Rules::default() });
        assert!(matches!(v[1], Verdict::Drop { reason: Reason::AcrossDocuments, .. }));
    }

    #[test]
    fn missing_origins_count_as_here() {
        let keys = keyed(&[NEW, QTLY, NEW]);
        let v = judge(0, &keys, &[], &Rules::default());
        assert_eq!(kept(&v), [true, true, false]);
    }

    /// The ordered step judges every document with one [`Scratch`]: what an
    /// earlier, longer document left in its lists must not reach a later one.
    #[test]
    fn a_reused_scratch_judges_as_a_fresh_one() {
        let cases: Vec<(Vec<Keyed>, Vec<Origin>)> = vec![
            (keyed(&[NEW, LONG, QTLY, LONG2, LONG]), vec![Origin::Here, from(1, 0), from(2, 0), from(3, 0)]),
            // Five distinct keys right after a document whose fifth repeats its second.
            (keyed(&[NEW, QTLY, PAY, LONG2, LONG]), vec![]),
            (keyed(&[QTLY, NEW]), vec![from(1, 1), Origin::Here]),
            // A short repeat from a source that only the document before gave evidence for.
            (keyed(&[NEW, LONG, LONG2]), vec![Origin::Here, from(4, 0), from(4, 1)]),
            (keyed(&[NEW, "he said."]), vec![Origin::Here, from(4, 2)]),
            (keyed(&["he said.", QTLY, NEW, "he said."]), vec![from(1, 1), from(1, 0), Origin::Here, from(1, 1)]),
            (keyed(&[NEW]), vec![]),
            (keyed(&[NEW, QTLY, PAY]), vec![Origin::Here, from(7, 4), from(8, 4)]),
        ];
        let mut scratch = Scratch::default();
        for round in 0..2 {
            for (i, (keys, origins)) in cases.iter().enumerate() {
                let fresh = judge(9, keys, origins, &Rules::default());
                assert_eq!(scratch.judge(9, keys, origins, &Rules::default()), fresh, "round {round}, case {i}");
            }
        }
    }

    proptest::proptest! {
        /// Comparing pairwise and sorting find the same first paragraph of
        /// each repeated key.
        #[test]
        fn pairwise_and_sorted_repeats_agree(keys in proptest::collection::vec(0u128..6, 0..60)) {
            let run = |pairwise: bool| {
                let mut order: Vec<(u128, usize)> = keys.iter().copied().zip(0..).collect();
                let mut earlier = vec![None; keys.len()];
                first_of_each_key(&mut order, &mut earlier, pairwise);
                earlier
            };
            let expected: Vec<Option<usize>> =
                (0..keys.len()).map(|i| keys[..i].iter().position(|&k| k == keys[i])).collect();
            proptest::prop_assert_eq!(run(true), expected.clone());
            proptest::prop_assert_eq!(run(false), expected);
        }
    }
}
