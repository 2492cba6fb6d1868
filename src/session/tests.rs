use super::*;
use crate::dedup::{Reason, Verdict};

// Long enough (at least 60 characters) to be dropped on their own.
const A: &str = "Interpol has identified over 4,000 foreign fighters in the region.";
const B: &str = "Stock was speaking at the opening of a meeting of police chiefs.";
const C: &str = "A recent UN report showed an increase in fighters from abroad.";

fn corpus() -> Vec<(String, Option<String>)> {
    [format!("{A}\n{B}\n{A}\n"), format!("{C}\n{B}\n"), format!("{A}\n{B}\n"), format!("{A}\n{B}\n"), String::new()]
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, Some(format!("doc{i}"))))
        .collect()
}

#[test]
fn batch_equals_one_by_one_and_names_first_occurrences() {
    let mut one = Session::new(Options::default());
    let seq: Vec<Cleaned> = corpus().into_iter().map(|(t, n)| one.clean(t, n).unwrap()).collect();
    let mut batch = Session::new(Options::default());
    let par = batch.clean_batch(corpus()).unwrap();
    assert_eq!(seq.len(), par.len());
    for (s, p) in seq.iter().zip(&par) {
        assert_eq!((&s.text, &s.plan), (&p.text, &p.plan));
    }
    assert_eq!(seq[0].text, format!("{A}\n{B}\n"));
    assert_eq!(seq[1].text, format!("{C}\n"));
    assert_eq!(
        seq[1].plan.verdicts[1],
        Verdict::Drop { reason: Reason::AcrossDocuments, first: Occurrence { doc: 0, para: 1 } }
    );
    assert_eq!(batch.name_of(0), Some("doc0"));
    assert_eq!(seq[2].text, "", "every paragraph repeats");
    assert_eq!(seq[3].plan.duplicate_of, Some(2), "the same keys in the same order");
}

fn named(name: &str) -> Batch {
    Batch::Named(name.as_bytes().to_vec())
}

fn texts(cleaned: Vec<Cleaned>) -> Vec<String> {
    cleaned.into_iter().map(|c| c.text).collect()
}

#[test]
fn index_sessions_of_two_batches_match_one_session_and_retries_keep_what_was_kept() {
    let dir = tempfile::tempdir().unwrap();
    let ix = dir.path().join("ix");
    let docs = corpus();
    let mut whole = Session::new(Options::default());
    let want: Vec<String> = docs.iter().cloned().map(|(t, n)| whole.clean(t, n).unwrap().text).collect();
    let mut got = Vec::new();
    for (day, part) in [("day1", &docs[..2]), ("day2", &docs[2..])] {
        let mut s = Session::with_index(Options::default(), &ix, named(day), day).unwrap();
        assert!(!s.is_retry());
        assert!(matches!(
            Session::with_index(Options::default(), &ix, named(day), day),
            Err(SessionError::Index(IndexError::Locked { .. }))
        ));
        got.extend(texts(s.clean_batch(part.to_vec()).unwrap()));
        assert!(s.commit().unwrap() > 0);
        assert!(s.is_retry(), "after its commit the batch is in the index");
    }
    assert_eq!(got, want);
    // A retry of day 1 (names dropped: identity is batch and anchor) keeps
    // what day 1 kept, and records nothing.
    let mut s = Session::with_index(Options::default(), &ix, named("day1"), "again").unwrap();
    assert!(s.is_retry());
    let unnamed: Vec<(String, Option<String>)> = docs[..2].iter().map(|(t, _)| (t.clone(), None)).collect();
    assert_eq!(texts(s.clean_batch(unnamed).unwrap()), want[..2]);
    assert_eq!(s.commit().unwrap(), 0);
    s.close();
    assert!(matches!(s.clean("x".into(), Some("n".into())), Err(SessionError::Closed(_))));
    let runs = crate::index::Index::open_existing(&ix).unwrap().stats().runs;
    assert_eq!(runs, 2, "the retry was not recorded");
    // The same texts under the same names in another batch are repeats of
    // day 1, dropped; the first occurrence names day 1's batch.
    let mut s = Session::with_index(Options::default(), &ix, named("day3"), "day3").unwrap();
    let again = s.clean_batch(docs[..2].to_vec()).unwrap();
    assert!(again.iter().all(|c| c.text.is_empty()), "{:?}", texts(again));
    let c = s.clean(docs[0].0.clone(), Some("doc0".into())).unwrap();
    assert!(c.text.is_empty());
    assert_eq!(s.first_batch(c.history.as_ref(), 0), Some("day1"));
}

#[test]
fn a_session_committing_twice_decides_as_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let ix = dir.path().join("ix");
    let docs = corpus();
    let mut whole = Session::new(Options::default());
    let want: Vec<String> = docs.iter().cloned().map(|(t, n)| whole.clean(t, n).unwrap().text).collect();
    let mut s = Session::with_index(Options::default(), &ix, named("stream"), "stream").unwrap();
    let mut got = texts(s.clean_batch(docs[..2].to_vec()).unwrap());
    assert!(s.commit().unwrap() > 0);
    got.extend(texts(s.clean_batch(docs[2..].to_vec()).unwrap()));
    s.commit().unwrap();
    assert_eq!(got, want);
    drop(s);
    // And the whole stream again is a retry: the same output.
    let mut s = Session::with_index(Options::default(), &ix, named("stream"), "stream").unwrap();
    assert_eq!(texts(s.clean_batch(docs.clone()).unwrap()), want);
    assert_eq!(s.commit().unwrap(), 0);
}

#[test]
fn decisions_from_signatures_equal_decisions_from_text() {
    let mut direct = Session::new(Options::default());
    let mut split = Session::new(Options::default());
    for (text, name) in corpus() {
        let want = direct.clean(text.clone(), name.clone()).unwrap();
        let doc = Document::prepare(text, &TextOptions::default());
        let (keys, whole) = signature::decode(&signature::encode(&doc)).unwrap();
        let plan = split.decide_keys(&keys, &whole, name, None).unwrap();
        let verdicts = signature::decode_plan(&doc, &signature::encode_plan(&plan)).unwrap();
        assert_eq!(doc.render(&verdicts, Emit::Normalized), want.text);
    }
}
