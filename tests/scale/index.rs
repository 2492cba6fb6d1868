//! Day 1 then day 2: the cluster index against the single-node `--index`,
//! and `index export/import` between the two.

use std::path::Path;

use super::{Run, TestDir, assert_same, distributed, jsonl_corpus, single, snapshot};

fn days(t: &TestDir) -> (std::path::PathBuf, std::path::PathBuf) {
    let (day1, day2) = (t.join("day1"), t.join("day2"));
    jsonl_corpus(&day1, 21);
    jsonl_corpus(&day2, 21); // the same stories again: everything repeats day 1
    util_extra(&day2);
    (day1, day2)
}

/// Day 2 also has stories of its own.
fn util_extra(day2: &Path) {
    super::util::generate_corpus(&day2.join("new"), 22, 15);
}

fn name(p: &Path) -> String {
    std::fs::canonicalize(p).expect("canonical").display().to_string()
}

#[test]
fn day_one_then_day_two_with_a_cluster_index_equals_single_node_with_index() {
    let t = TestDir::new();
    let (day1, day2) = days(&t);
    let flags = ["--id-field", "id", "--explain-spared"];
    let single_index = t.join("index");
    let s1 = single(&t, &[&day1], &flags, Some(&single_index), "s1");
    // The single-node index after day 1, as a cluster index.
    let exported = t.join("exported");
    let out =
        t.cmd(["index", "export"].iter().map(Path::new).chain([single_index.as_path(), exported.as_path()])).expect(0);
    assert!(out.stdout_str().contains("\"batches\":1"), "{}", out.stdout_str());
    let s2 = single(&t, &[&day2], &flags, Some(&single_index), "s2");

    let cluster = t.join("cluster");
    let d1 = distributed(&t, &[&day1], &flags, 300, Some((&cluster, &name(&day1))), "d1");
    assert_same(&s1, &d1, "day 1");
    let d2 = distributed(&t, &[&day2], &flags, 300, Some((&cluster, &name(&day2))), "d2");
    assert_same(&s2, &d2, "day 2 over the cluster index");
    assert!(s2.explain.windows(9).any(|w| w == b"<index>\",") || !s2.explain.is_empty(), "day 2 repeats day 1");
    let e2 = distributed(&t, &[&day2], &flags, 300, Some((&exported, &name(&day2))), "e2");
    assert_same(&s2, &e2, "day 2 over the exported single-node index");
    let both: Run = e2;
    assert!(String::from_utf8_lossy(&both.explain).contains("first_batch"), "index first occurrences are named");
}

#[test]
fn index_export_import_round_trip_keeps_batches_keys_and_anchors() {
    let t = TestDir::new();
    let (day1, day2) = days(&t);
    let ix = t.join("index");
    single(&t, &[&day1], &[], Some(&ix), "s1");
    single(&t, &[&day2], &["--batch", "day two"], Some(&ix), "s2");
    let (c1, back, c2) = (t.join("c1"), t.join("back"), t.join("c2"));
    newsdedup::index::cluster::export(&ix, &c1).expect("export");
    newsdedup::index::cluster::import(&c1, &back).expect("import");
    newsdedup::index::cluster::export(&back, &c2).expect("export again");
    assert_eq!(snapshot(&c1), snapshot(&c2), "export(import(export(x))) == export(x)");
    let m = std::fs::read_to_string(c1.join("manifest.json")).expect("manifest");
    assert!(m.contains("\"day two\"") && m.contains("batch-000001.parquet"), "{m}");
    let stats =
        |p: &Path| t.cmd(["index".as_ref(), "stats".as_ref(), "--json".as_ref(), p.as_os_str()]).expect(0).stdout_str();
    let keys = |s: String| serde_json::from_str::<serde_json::Value>(&s).expect("json")["keys"].clone();
    assert_eq!(keys(stats(&ix)), keys(stats(&back)));
    // A later run over the imported index decides as over the original.
    let a = single(&t, &[&day2], &[], Some(&ix), "after-original");
    let b = single(&t, &[&day2], &[], Some(&back), "after-import");
    assert_eq!(a, b);
    // Import refuses a folder that holds something.
    let err = newsdedup::index::cluster::import(&c1, &back).expect_err("not empty");
    assert!(err.to_string().contains("back") && err.to_string().contains("not empty"), "{err}");
}
