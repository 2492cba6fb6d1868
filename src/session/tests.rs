use super::*;
use crate::dedup::{Reason, Verdict};

const A: &str = "Interpol has identified over 4,000 foreign fighters.";
const B: &str = "Stock was speaking at the opening of a meeting.";
const C: &str = "A recent UN report showed an increase in fighters.";

fn corpus() -> Vec<(String, Option<String>)> {
    [format!("{A}\n{B}\n{A}\n"), format!("{C}\n{B}\n"), format!("{A}\n{B}\n"), format!("{A}\n{B}\n"), String::new()]
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, Some(format!("doc{i}"))))
        .collect()
}

#[test]
fn batch_equals_one_by_one_and_names_first_occurrences() {
    let mut one = Session::new(Options::default(), None).unwrap();
    let seq: Vec<Cleaned> = corpus().into_iter().map(|(t, n)| one.clean(t, n).unwrap()).collect();
    let mut batch = Session::new(Options::default(), None).unwrap();
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

#[test]
fn index_sessions_match_one_session_and_need_names() {
    let dir = tempfile::tempdir().unwrap();
    let ix = dir.path().join("ix");
    let docs = corpus();
    let mut whole = Session::new(Options::default(), None).unwrap();
    let want: Vec<String> = docs.iter().cloned().map(|(t, n)| whole.clean(t, n).unwrap().text).collect();
    let mut got = Vec::new();
    for part in [&docs[..2], &docs[2..]] {
        let mut s = Session::new(Options::default(), Some(&ix)).unwrap();
        assert!(matches!(
            Session::new(Options::default(), Some(&ix)),
            Err(SessionError::Index(IndexError::Locked { .. }))
        ));
        assert!(matches!(s.clean("x".into(), None), Err(SessionError::Unnamed(_))));
        got.extend(s.clean_batch(part.to_vec()).unwrap().into_iter().map(|c| c.text));
        assert!(s.commit("test").unwrap() > 0);
    }
    assert_eq!(got, want);
    // A retry of the first day keeps what it kept.
    let mut s = Session::new(Options::default(), Some(&ix)).unwrap();
    let retry: Vec<String> = s.clean_batch(docs[..2].to_vec()).unwrap().into_iter().map(|c| c.text).collect();
    assert_eq!(retry, want[..2]);
    s.close();
    assert!(matches!(s.clean("x".into(), Some("n".into())), Err(SessionError::Closed(_))));
}

#[test]
fn decisions_from_signatures_equal_decisions_from_text() {
    let mut direct = Session::new(Options::default(), None).unwrap();
    let mut split = Session::new(Options::default(), None).unwrap();
    for (text, name) in corpus() {
        let want = direct.clean(text.clone(), name.clone()).unwrap();
        let doc = Document::prepare(text, &TextOptions::default());
        let (keys, whole) = signature::decode(&signature::encode(&doc)).unwrap();
        let plan = split.decide_keys(&keys, &whole, name, None).unwrap();
        let verdicts = signature::decode_plan(&doc, &signature::encode_plan(&plan)).unwrap();
        assert_eq!(doc.render(&verdicts, Emit::Normalized), want.text);
    }
}
