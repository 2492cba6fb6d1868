//! Parquet shards end to end: the cleaned file is read back with the
//! `parquet` crate's reader; the schema (metadata included) is the input's,
//! other columns pass through, and the kept text equals JSONL mode's on the
//! same records.

mod util;

use std::collections::HashMap;
use std::fs::{self, File};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::{Value, json};
use util::{TestDir, read_report};

const A: &str = "The council approved the new budget for the coming year after a long debate.";
const B: &str = "Police said the suspect was arrested on Tuesday night near the central station.";
const BOILER: &str = "Subscribe to our newsletter for the latest news and updates delivered every day.";

fn rows() -> Vec<(i64, Option<&'static str>, String, f64)> {
    vec![
        (10, Some("Budget"), format!("{A}\n{BOILER}\n"), 0.5),
        (11, None, format!("{B}\n\u{201C}Caf\u{e9}\u{201D} owners welcomed the plan.\n{BOILER}\n"), 1.5),
        (12, Some("Again"), format!("{A}\n{BOILER}\n"), 2.5),
        (13, Some("Last"), format!("Shares rose sharply after better than expected profits.\n{B}\n"), 3.5),
    ]
}

fn schema() -> Arc<Schema> {
    let fields = vec![
        Field::new("id", DataType::Int64, false),
        Field::new("title", DataType::Utf8, true),
        Field::new("text", DataType::Utf8, false),
        Field::new("score", DataType::Float64, false),
    ];
    let meta = HashMap::from([("huggingface".to_owned(), "{\"info\": {\"features\": {}}}".to_owned())]);
    Arc::new(Schema::new(fields).with_metadata(meta))
}

/// Writes the rows in row groups of two (several row groups, streamed).
fn write_parquet(path: &std::path::Path) {
    let rows = rows();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.2.as_str()).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
    ];
    let batch = RecordBatch::try_new(schema(), columns).unwrap();
    let props =
        WriterProperties::builder().set_compression(Compression::SNAPPY).set_max_row_group_row_count(Some(2)).build();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn read_parquet(path: &std::path::Path) -> (Arc<Schema>, Vec<RecordBatch>, usize) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let groups = builder.metadata().num_row_groups();
    (schema, builder.build().unwrap().map(Result::unwrap).collect(), groups)
}

#[test]
fn parquet_round_trip_keeps_schema_and_other_columns_and_matches_jsonl_mode() {
    let t = TestDir::new();
    fs::create_dir_all(t.join("in")).unwrap();
    write_parquet(&t.join("in/news.parquet"));
    assert_eq!(read_parquet(&t.join("in/news.parquet")).2, 2, "the input has several row groups");
    t.cmd(["clean", "in", "--out", "out", "--report", "r.json", "--explain", "ex.jsonl", "-q"]).expect(0);
    let (out_schema, batches, _) = read_parquet(&t.join("out/news.parquet"));
    assert_eq!(out_schema, schema(), "the output schema, metadata included, is the input's");

    let shard: String = rows()
        .iter()
        .map(|(id, title, text, score)| {
            format!("{}\n", json!({"id": id, "title": title, "text": text, "score": score}))
        })
        .collect();
    t.write("s.jsonl", &shard);
    let jsonl = t.clean(&t.join("s.jsonl"), &["-q"]).expect(0).stdout_str();
    let expected: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();

    let mut got = Vec::new();
    for b in &batches {
        let id = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let title = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        let text = b.column(2).as_any().downcast_ref::<StringArray>().unwrap();
        let score = b.column(3).as_any().downcast_ref::<Float64Array>().unwrap();
        for i in 0..b.num_rows() {
            let title = (!title.is_null(i)).then(|| title.value(i).to_owned());
            got.push(json!({"id": id.value(i), "title": title, "text": text.value(i), "score": score.value(i)}));
        }
    }
    assert_eq!(got, expected, "the same records and kept text as JSONL mode; other columns as they were");
    assert_eq!(got.len(), 3, "row 12 repeats row 10 whole and is not written");

    let report = read_report(&t.join("r.json"));
    let row = &report["files"][0];
    assert_eq!(
        row["dropped_records"],
        json!([{"line": 3, "id": "12", "status": "duplicate", "duplicate_of": "news.parquet:1", "duplicate_of_id": "10"}])
    );
    let explain = fs::read_to_string(t.join("ex.jsonl")).unwrap();
    assert!(explain.lines().any(|l| l.contains("\"id\":\"11\"") && l.contains("\"first_id\":\"10\"")), "{explain}");
}

#[test]
fn parquet_refuses_stdout_and_a_missing_column() {
    let t = TestDir::new();
    write_parquet(&t.join("news.parquet"));
    t.clean(&t.join("news.parquet"), &[]).expect(2).stderr_has("Parquet needs a file in and --out");
    t.clean(&t.join("news.parquet"), &["--out", "o", "--text-field", "body"])
        .expect(2)
        .stderr_has("no column \"body\" (columns: id, title, text, score)");
    t.clean(&t.join("news.parquet"), &["--out", "o2", "--text-field", "score"])
        .expect(2)
        .stderr_has("not a string column");
}

#[test]
fn parquet_in_place_with_a_backup() {
    let t = TestDir::new();
    write_parquet(&t.join("news.parquet"));
    let before = fs::read(t.join("news.parquet")).unwrap();
    t.clean(&t.join("news.parquet"), &["--in-place", "--backup", ".orig", "-q"]).expect(0);
    assert_eq!(fs::read(t.join("news.parquet.orig")).unwrap(), before);
    let (schema_after, batches, _) = read_parquet(&t.join("news.parquet"));
    assert_eq!(schema_after, schema());
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
}

/// pyarrow (in the Python named by `NEWSDEDUP_TEST_PYTHON`, default
/// `python3`) reads the cleaned file back: the schema and the pass-through
/// columns as written. Ignored by default: it needs pyarrow.
#[test]
#[ignore = "needs pyarrow (NEWSDEDUP_TEST_PYTHON=a Python that has it)"]
fn needs_pyarrow_reads_the_output_back() {
    let python = std::env::var("NEWSDEDUP_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = std::process::Command::new(&python).args(["-c", "import pyarrow"]).output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "this test needs pyarrow in {python}; leave it ignored without it"
    );
    let t = TestDir::new();
    write_parquet(&t.join("news.parquet"));
    t.clean(&t.join("news.parquet"), &["--out", "out", "-q"]).expect(0);
    let script = "import json, sys, pyarrow.parquet as pq\n\
                  a, b = pq.read_table(sys.argv[1]), pq.read_table(sys.argv[2])\n\
                  print(json.dumps({'same_schema': a.schema.equals(b.schema, check_metadata=True),\n\
                  'meta': b.schema.metadata[b'huggingface'].decode(), 'rows': b.to_pylist()}))\n";
    let o = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(t.join("news.parquet"))
        .arg(t.join("out/news.parquet"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["same_schema"], true);
    assert_eq!(v["meta"], "{\"info\": {\"features\": {}}}");
    let rows = v["rows"].as_array().unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [10, 11, 13]);
    assert_eq!(rows[1]["title"], Value::Null);
    assert_eq!(rows[2]["score"], 3.5);
    assert_eq!(rows[0]["text"], format!("{A}\n{BOILER}\n"));
}

/// Issue 13: a retry over a Parquet shard cleaned in place reports what the
/// first run did: b.jsonl repeats row 4 as it was (row 3 once the duplicate
/// row 3 is gone, and cleaned), and is still named its duplicate.
#[test]
fn an_in_place_parquet_retry_reports_what_the_first_run_did() {
    let t = TestDir::new();
    fs::create_dir_all(t.join("news")).unwrap();
    write_parquet(&t.join("news/a.parquet"));
    let b = format!("{}\n", json!({"id": 99, "text": rows()[3].2}));
    t.write("news/b.jsonl", &b);
    let index = t.join("index");
    let run = |name: &str| {
        let (explain, report) = (t.join(&format!("{name}.explain")), t.join(&format!("{name}.json")));
        let flags = ["--in-place", "--index", index.to_str().unwrap(), "-q", "--explain", explain.to_str().unwrap()];
        t.clean(&t.join("news"), &[&flags[..], &["--report", report.to_str().unwrap()]].concat()).expect(0);
        (fs::read_to_string(explain).unwrap(), read_report(&report))
    };
    let first = run("first");
    assert!(first.0.contains(r#""file":"b.jsonl","line":1,"id":"99","paragraph":0"#), "{}", first.0);
    assert!(first.0.contains(r#""first_file":"a.parquet","first_line":4,"first_id":"13""#), "{}", first.0);
    let b_row = first.1["files"].as_array().unwrap().iter().find(|r| r["path"] == "b.jsonl").unwrap().clone();
    assert_eq!(b_row["dropped_records"][0]["duplicate_of"], "a.parquet:4", "{b_row}");
    // As if the run had been killed after replacing a.parquet.
    t.write("news/b.jsonl", &b);
    assert_eq!(run("retry"), first);
    assert_eq!(run("again"), first);
}
