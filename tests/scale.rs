//! Scale-out (README, "Scale-out"): plan → keys (every shard) → decide
//! (the test-only reference of the SQL, `scale/reference.rs`) → apply
//! (every shard, in reverse order, one twice as a retried task would) →
//! merge-report gives the single-node run's output tree, explain file,
//! rejects file and report, byte for byte (bar the timing fields).

mod util;

#[path = "scale/reference.rs"]
mod reference;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use newsdedup::scale;
use util::{Rng, TestDir, diff_bytes, diff_trees, snapshot};

/// What a run leaves: the output tree, explain, rejects and report (timing removed).
#[derive(Debug, PartialEq)]
struct Run {
    tree: BTreeMap<PathBuf, Vec<u8>>,
    explain: Vec<u8>,
    rejects: Vec<u8>,
    report: String,
}

fn stripped(report: &Path) -> String {
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(report).expect("report")).expect("json");
    for field in ["elapsed_seconds", "mb_per_second", "threads"] {
        v.as_object_mut().expect("object").remove(field);
    }
    serde_json::to_string_pretty(&v).expect("json")
}

fn collect(t: &TestDir, tag: &str) -> Run {
    let read = |name: &str| fs::read(t.join(&format!("{name}-{tag}"))).unwrap_or_default();
    Run {
        tree: snapshot(&t.join(&format!("out-{tag}"))),
        explain: read("explain"),
        rejects: read("rejects"),
        report: stripped(&t.join(&format!("report-{tag}"))),
    }
}

/// `newsdedup clean INPUTS FLAGS --out out-TAG ...` (the binary).
fn single(t: &TestDir, inputs: &[&Path], flags: &[&str], index: Option<&Path>, tag: &str) -> Run {
    let mut args: Vec<OsString> = vec!["clean".into()];
    args.extend(inputs.iter().map(|p| p.as_os_str().to_owned()));
    args.extend(flags.iter().map(OsString::from));
    for (flag, name) in [("--out", "out"), ("--explain", "explain"), ("--rejects", "rejects"), ("--report", "report")] {
        args.push(flag.into());
        args.push(t.join(&format!("{name}-{tag}")).into());
    }
    if let Some(ix) = index {
        args.push("--index".into());
        args.push(ix.into());
    }
    args.push("--quiet".into());
    let out = t.cmd(&args).run();
    assert!(matches!(out.code, Some(0 | 1)), "single-node run failed:\n{}", out.stderr_str());
    collect(t, tag)
}

/// The same through the library's scale-out steps; with `index`, the run
/// reads the cluster index and appends its new keys as batch `batch`.
fn distributed(
    t: &TestDir,
    inputs: &[&Path],
    flags: &[&str],
    shard_bytes: u64,
    index: Option<(&Path, &str)>,
    tag: &str,
) -> Run {
    let work = t.join(&format!("work-{tag}"));
    let mut args: Vec<OsString> = inputs.iter().map(|p| p.as_os_str().to_owned()).collect();
    args.extend(flags.iter().map(OsString::from));
    args.extend(["--work".into(), work.clone().into(), "--shard-bytes".into(), shard_bytes.to_string().into()]);
    let manifest: serde_json::Value = serde_json::from_str(&scale::plan_args(&args).expect("plan")).expect("json");
    let shards = manifest["shards"].as_array().expect("shards").len() as u32;
    for r in 0..shards {
        scale::keys(&work, r).expect("keys");
    }
    reference::decide(&work, index.map(|i| i.0));
    let out = t.join(&format!("out-{tag}"));
    // Any order; then shard 0 again (a task retried after it wrote
    // everything): it rewrites the same bytes, in OUT and in WORK.
    for r in (0..shards).rev() {
        scale::apply(&work, r, &out).expect("apply");
    }
    let before = (snapshot(&out), snapshot(&work));
    scale::apply(&work, 0, &out).expect("apply again");
    assert!(before == (snapshot(&out), snapshot(&work)), "a retried apply changed a file");
    let file = |name: &str| t.join(&format!("{name}-{tag}"));
    let (report, explain, rejects) = (file("report"), file("explain"), file("rejects"));
    scale::merge_report(&work, Some(&report), Some(&explain), Some(&rejects)).expect("merge-report");
    if let Some((ix, name)) = index {
        let done: serde_json::Value =
            serde_json::from_str(&newsdedup::index::cluster::append(ix, &work, name).expect("append")).expect("json");
        assert_eq!(done["committed"], true);
        let again = newsdedup::index::cluster::append(ix, &work, name).expect("append again");
        assert!(again.contains("\"committed\":false"), "a retried commit writes nothing: {again}");
    }
    collect(t, tag)
}

fn assert_same(single: &Run, distributed: &Run, what: &str) {
    if let Some(d) = diff_trees(&single.tree, &distributed.tree) {
        panic!("{what}: output trees differ:\n{d}");
    }
    assert!(
        single.explain == distributed.explain,
        "{what}: explain differs:\n{}",
        diff_bytes(&single.explain, &distributed.explain)
    );
    assert!(
        single.rejects == distributed.rejects,
        "{what}: rejects differ:\n{}",
        diff_bytes(&single.rejects, &distributed.rejects)
    );
    assert_eq!(single.report, distributed.report, "{what}: reports differ");
}

#[test]
fn every_fixture_distributed_equals_single_node() {
    let mut cases: Vec<PathBuf> = fs::read_dir(util::fixture(""))
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "fixtures found: {cases:?}");
    for case in cases {
        let name = case.file_name().expect("name").to_string_lossy().into_owned();
        let t = TestDir::new();
        let input = t.copy_input(&name);
        for (i, flags) in [&[][..], &["--explain-spared", "--key", "loose", "--min-chars", "30"][..]].iter().enumerate()
        {
            let a = single(&t, &[&input], flags, None, &format!("s{i}"));
            let b = distributed(&t, &[&input], flags, 1, None, &format!("d{i}"));
            assert_same(&a, &b, &format!("{name} {flags:?}"));
            assert!(!a.tree.is_empty(), "{name}: nothing written");
        }
    }
}

const LONG: [&str; 8] = [
    "The harbour council voted on Tuesday to extend the ferry timetable through the winter months.",
    "Police said the storm had closed the coastal rail line between the two towns for a second day.",
    "The minister told reporters the budget would restore school funding cut three years ago.",
    "Union leaders said the strike would continue until the court ruled on the pension dispute.",
    "Market traders reported a quiet morning, with prices little changed after the election result.",
    "Fans queued overnight outside the stadium for tickets to the final, organisers said on Monday.",
    "The river burst its banks near the old mill, flooding a dozen homes and the village school.",
    "Talks between the two sides lasted fourteen hours and ended without agreement late on Sunday.",
];
const SHORT: [&str; 6] =
    ["he said.", "Reuters", "Qtly div 10 cts vs 10 cts prior", "More", "Lansdowne Road, Dublin", "Pay April 13"];

/// A record's text: long and short paragraphs from the pools, sometimes
/// doubled, sometimes a copy of an earlier record, sometimes empty.
fn story(rng: &mut Rng, earlier: &[String], n: usize) -> String {
    match rng.below(10) {
        0 if !earlier.is_empty() => earlier[rng.below(earlier.len())].clone(),
        1 => String::new(),
        _ => {
            let mut paras: Vec<String> =
                (0..1 + rng.below(4)).map(|_| LONG[rng.below(LONG.len())].to_owned()).collect();
            paras.push(format!("Story {n} has its own line number {}.", rng.below(1000)));
            for _ in 0..rng.below(3) {
                paras.insert(rng.below(paras.len() + 1), SHORT[rng.below(SHORT.len())].to_owned());
            }
            if rng.below(6) == 0 {
                let copy = paras.clone();
                paras.extend(copy);
            }
            paras.join("\n")
        }
    }
}

/// JSONL shards with ids, cross-shard repeats, doubled articles, exact
/// duplicates, short repeats, empty texts and rejected lines, and a text
/// subtree between them.
fn jsonl_corpus(root: &Path, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut earlier = Vec::new();
    let mut n = 0;
    for shard in ["a.jsonl", "b/c.jsonl", "b/d.jsonl", "e.jsonl"] {
        let mut lines = Vec::new();
        for _ in 0..25 {
            n += 1;
            let text = story(&mut rng, &earlier, n);
            let id = if rng.below(5) == 0 { serde_json::Value::Null } else { format!("id-{n}").into() };
            lines.push(serde_json::json!({"id": id, "text": text, "n": n}).to_string());
            earlier.push(text);
        }
        lines.insert(rng.below(lines.len()), "not json at all".to_owned());
        lines.insert(rng.below(lines.len()), r#"{"id": "bad", "text": 5}"#.to_owned());
        let path = root.join(shard);
        fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        fs::write(path, lines.join("\n") + "\n").expect("write");
    }
    // A compressed shard (written compressed too) and a CSV shard.
    let gz: Vec<String> = (0..8)
        .map(|i| serde_json::json!({"id": format!("gz-{i}"), "text": story(&mut rng, &earlier, 500 + i)}).to_string())
        .collect();
    fs::write(root.join("c.jsonl.gz"), util::gz((gz.join("\n") + "\n").as_bytes())).expect("write");
    let mut csv = String::from("id,text\n");
    for i in 0..8 {
        let text = story(&mut rng, &earlier, 600 + i).replace('"', "\"\"");
        csv.push_str(&format!("csv-{i},\"{text}\"\n"));
    }
    fs::write(root.join("d.csv"), csv).expect("write");
    for i in 0..6 {
        let text = story(&mut rng, &earlier, 1000 + i);
        fs::create_dir_all(root.join("b/text")).expect("dir");
        fs::write(root.join(format!("b/text/{i}.txt")), text + "\n").expect("write");
    }
}

#[test]
fn generated_jsonl_shards_distributed_equal_single_node() {
    for seed in [1, 2, 3] {
        let t = TestDir::new();
        let input = t.join("corpus");
        jsonl_corpus(&input, seed);
        let flags = ["--explain-spared", "--id-field", "id"];
        let a = single(&t, &[&input], &flags, None, "s");
        let b = distributed(&t, &[&input], &flags, 200, None, "d");
        assert_same(&a, &b, &format!("seed {seed}"));
        assert!(!a.rejects.is_empty() && !a.explain.is_empty(), "the corpus has rejects and drops");
        // Not vacuous: repeats across shards came from the drop lists, and
        // without them apply would keep what single-node drops.
        let drops = t.join("work-d/drops");
        assert!(fs::read_dir(&drops).expect("drops").count() >= 2, "cross-shard drops in several shards");
        fs::remove_dir_all(&drops).expect("rm drops");
        fs::create_dir(&drops).expect("an empty drop list");
        let m = scale::Manifest::read(&t.join("work-d")).expect("manifest");
        let last = m.shards.last().expect("shards");
        assert_eq!(last.files, ["e.jsonl"]);
        scale::apply(&t.join("work-d"), last.rank, &t.join("out-x")).expect("apply with an empty drop list");
        let without = snapshot(&t.join("out-x"));
        assert!(without.contains_key(Path::new("e.jsonl")));
        assert_ne!(without.get(Path::new("e.jsonl")), b.tree.get(Path::new("e.jsonl")));
    }
}

#[test]
fn a_text_tree_split_into_many_shards_equals_single_node() {
    let t = TestDir::new();
    let input = t.join("tree");
    util::generate_corpus(&input, 7, 80);
    for (i, bytes) in [1u64, 300, 4000, 1 << 30].iter().enumerate() {
        let a = single(&t, &[&input], &[], None, &format!("s{i}"));
        let b = distributed(&t, &[&input], &[], *bytes, None, &format!("d{i}"));
        assert_same(&a, &b, &format!("--shard-bytes {bytes}"));
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(t.join("work-d1/manifest.json")).expect("manifest")).expect("json");
    assert!(manifest["shards"].as_array().expect("shards").len() > 5, "300-byte shards: several");
}

#[test]
fn random_corpora_cut_at_random_shard_sizes_equal_single_node() {
    let mut rng = Rng::new(99);
    for seed in 0..8 {
        let t = TestDir::new();
        let input = t.join("mixed");
        jsonl_corpus(&input, 100 + seed);
        util::generate_corpus(&input.join("b/tree"), 200 + seed, 10 + rng.below(40));
        let bytes = [1, 64, 512, 4096, 1 << 20][rng.below(5)];
        let flags: &[&str] = [&[][..], &["--min-chars", "20"], &["--explain-spared", "--id-field", "id"]][rng.below(3)];
        let a = single(&t, &[&input], flags, None, "s");
        let b = distributed(&t, &[&input], flags, bytes, None, "d");
        assert_same(&a, &b, &format!("seed {seed}, --shard-bytes {bytes}, {flags:?}"));
    }
}

#[test]
fn a_single_file_sniffed_as_json_lines_is_a_jsonl_shard() {
    let t = TestDir::new();
    jsonl_corpus(&t.join("c"), 51);
    let feed = t.join("feed.log");
    fs::copy(t.join("c/a.jsonl"), &feed).expect("copy");
    let a = single(&t, &[&feed], &[], None, "s");
    let b = distributed(&t, &[&feed], &[], 1, None, "d");
    assert_same(&a, &b, "sniffed");
    let m = scale::Manifest::read(&t.join("work-d")).expect("manifest");
    assert_eq!((m.shards.len(), m.shards[0].kind.as_str()), (1, "jsonl"));
}

#[test]
fn several_inputs_distributed_equal_single_node() {
    let t = TestDir::new();
    jsonl_corpus(&t.join("one"), 11);
    util::generate_corpus(&t.join("two"), 12, 20);
    let (one, two) = (t.join("one"), t.join("two"));
    let a = single(&t, &[&two, &one], &["--id-field", "id"], None, "s");
    let b = distributed(&t, &[&two, &one], &["--id-field", "id"], 500, None, "d");
    assert_same(&a, &b, "two inputs");
}

#[test]
fn keys_rerun_writes_the_same_bytes() {
    let t = TestDir::new();
    let input = t.join("corpus");
    jsonl_corpus(&input, 5);
    let work = t.join("work");
    let args: Vec<OsString> = vec![input.into(), "--work".into(), work.clone().into()];
    scale::plan_args(&args).expect("plan");
    let summary: serde_json::Value = serde_json::from_str(&scale::keys(&work, 0).expect("keys")).expect("json");
    let first = snapshot(&work);
    scale::keys(&work, 0).expect("keys again");
    assert_eq!(first, snapshot(&work));
    assert!(summary["rows"].as_u64().expect("rows") > 25, "{summary}");
    // The contract's physical layout: signed INT64 (no unsigned logical
    // type: Spark would read DECIMAL), zstd, `pos` delta-encoded.
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(fs::File::open(work.join("keys/part-000000.parquet")).expect("open"))
        .expect("parquet");
    let meta = reader.metadata();
    assert_eq!(meta.file_metadata().created_by(), Some(concat!("newsdedup ", env!("CARGO_PKG_VERSION"))));
    for col in meta.row_group(0).columns() {
        let name = col.column_path().string();
        assert_eq!(col.column_type(), parquet::basic::Type::INT64, "{name}");
        assert!(col.column_descr().logical_type_ref().is_none(), "{name}: plain signed INT64");
        assert!(matches!(col.compression(), parquet::basic::Compression::ZSTD(_)), "{name}");
        let delta = col.encodings().any(|e| e == parquet::basic::Encoding::DELTA_BINARY_PACKED);
        assert_eq!(delta, name == "pos" || name == "doc", "{name}: {:?}", col.encodings().collect::<Vec<_>>());
    }
}

/// A Parquet shard of `texts` (`id` INT64, `text`), in row groups of 4.
fn write_parquet(path: &Path, first_id: i64, texts: &[String]) {
    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let ids: Vec<i64> = (first_id..).take(texts.len()).collect();
    let columns: Vec<ArrayRef> =
        vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from_iter_values(texts.iter()))];
    let batch = RecordBatch::try_from_iter(["id", "text"].into_iter().zip(columns)).expect("batch");
    let props = parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(4)).build();
    let file = fs::File::create(path).expect("create");
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

#[test]
fn parquet_shards_distributed_equal_single_node() {
    let t = TestDir::new();
    let input = t.join("pq");
    fs::create_dir_all(&input).expect("dir");
    let mut rng = Rng::new(41);
    let mut earlier = Vec::new();
    for (i, name) in ["a.parquet", "b.parquet", "c.parquet"].iter().enumerate() {
        let texts: Vec<String> = (0..15).map(|n| story(&mut rng, &earlier, i * 100 + n)).collect();
        earlier.extend(texts.iter().cloned());
        write_parquet(&input.join(name), (i * 100) as i64, &texts);
    }
    let flags = ["--id-field", "id", "--explain-spared"];
    let a = single(&t, &[&input], &flags, None, "s");
    let b = distributed(&t, &[&input], &flags, 1, None, "d");
    assert_same(&a, &b, "parquet shards");
    assert!(String::from_utf8_lossy(&a.explain).contains("\"first_file\":\"a.parquet\""), "cross-shard repeats");
}

#[path = "scale/index.rs"]
mod index;

#[path = "scale/errors.rs"]
mod errors;
