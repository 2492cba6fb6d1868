//! Record formats and CLI conventions end to end: CSV in and out (read back
//! by independent readers: the `csv` crate, and Python's `csv` module when
//! `python3` is on PATH), several inputs in one call, record ids, dolma
//! attributes (checked against a reference implementation of dolma's span
//! removal), completions, the man page and `index stats --json`.

mod util;

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use util::{TestDir, read_report};

const NEWS: [&str; 4] = [
    "The council approved the new budget for the coming year after a long debate.",
    "Police said the suspect was arrested on Tuesday night near the central station.",
    "Subscribe to our newsletter for the latest news and updates delivered every day.",
    "Shares in the company rose sharply after it reported better than expected profits.",
];

/// Records (id, title, text): repeats across records, a quoted title with a
/// comma and doubled quotes, curly quotes and non-ASCII text.
fn records() -> Vec<(String, String, String)> {
    let [a, b, boiler, d] = NEWS;
    vec![
        ("r1".into(), "Budget, \"final\"".into(), format!("{a}\n{boiler}\n")),
        ("r2".into(), "  Arrest  ".into(), format!("{b}\n\u{201C}Caf\u{e9}\u{201D} owners welcomed it.\n{boiler}\n")),
        ("r3".into(), "".into(), format!("{a}\n{boiler}\n")),
        ("r4".into(), "Profits".into(), format!("{d}\n{b}\n")),
    ]
}

fn csv_of(rows: &[(String, String, String)], newline: &str) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(if newline == "\r\n" { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
        .from_writer(Vec::new());
    w.write_record(["id", "title", "text"]).unwrap();
    for (id, title, text) in rows {
        w.write_record([id, title, text]).unwrap();
    }
    w.into_inner().unwrap()
}

fn jsonl_of(rows: &[(String, String, String)]) -> String {
    rows.iter().map(|(id, title, text)| format!("{}\n", json!({"id": id, "title": title, "text": text}))).collect()
}

/// Rows as an independent reader sees them.
fn read_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes);
    r.records().map(|rec| rec.expect("valid CSV").iter().map(str::to_owned).collect()).collect()
}

#[test]
fn csv_round_trip_keeps_other_columns_and_matches_jsonl_mode() {
    for newline in ["\n", "\r\n"] {
        let t = TestDir::new();
        let rows = records();
        let input = t.write("news.csv", csv_of(&rows, newline));
        let csv_out = t.clean(&input, &["-q"]).expect(0).stdout.clone();
        let shard = t.write("news.jsonl", jsonl_of(&rows));
        let jsonl_out = t.clean(&shard, &["-q"]).expect(0).stdout.clone();

        let got = read_csv(&csv_out);
        assert_eq!(got[0], ["id", "title", "text"]);
        let from_jsonl: Vec<Value> =
            String::from_utf8(jsonl_out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(got.len() - 1, from_jsonl.len(), "the same records are written");
        for (row, rec) in got[1..].iter().zip(&from_jsonl) {
            assert_eq!(row[0], rec["id"].as_str().unwrap());
            assert_eq!(row[1], rec["title"].as_str().unwrap(), "pass-through column");
            assert_eq!(row[2], rec["text"].as_str().unwrap(), "the same kept text as JSONL mode");
        }
        // r3 repeats r1 whole: not written; r2 loses the boilerplate only.
        assert_eq!(got[1..].iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["r1", "r2", "r4"]);
        assert!(!got[2][2].contains("Subscribe"));
        assert!(got[2][2].contains("\"Caf\u{e9}\" owners"), "curly quotes folded: {}", got[2][2]);

        // Byte for byte: the header and an unchanged row as read, and in a
        // changed row every byte but the text field's.
        let text = String::from_utf8(csv_out).unwrap();
        let input_text = String::from_utf8(fs::read(&input).unwrap()).unwrap();
        let header = format!("id,title,text{newline}");
        assert!(text.starts_with(&header));
        let r1 = &input_text[header.len()..input_text.find("r2,").unwrap()];
        assert_eq!(&text[header.len()..header.len() + r1.len()], r1, "an unchanged row is copied as read");
        let r2_start = text.find("r2,").unwrap();
        assert!(text[r2_start..].starts_with("r2,  Arrest  ,\""), "{}", &text[r2_start..]);
        assert!(text.ends_with(&format!("\"{newline}")), "rows keep their line break");
    }
}

#[test]
fn python_csv_reads_the_output_back() {
    // python3 is part of the set-up (.ci/run builds the Python package with it).
    let probe = Command::new("python3").arg("--version").output();
    assert!(probe.is_ok_and(|o| o.status.success()), "python3 is needed (the standard library's csv module)");
    let t = TestDir::new();
    let input = t.write("news.csv", csv_of(&records(), "\r\n"));
    let out = t.clean(&input, &["-q"]).expect(0).stdout.clone();
    let clean = t.write("clean.csv", &out);
    let script = "import csv, json, sys\nwith open(sys.argv[1], newline='', encoding='utf-8') as f:\n    print(json.dumps(list(csv.reader(f))))\n";
    let py = Command::new("python3").args(["-c", script]).arg(&clean).output().unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let rows: Vec<Vec<String>> = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(rows, read_csv(&out), "Python's csv module and the csv crate agree");
    assert_eq!(rows[1][1], "Budget, \"final\"");
}

#[test]
fn malformed_csv_rows_go_to_rejects_with_their_line_and_id() {
    let t = TestDir::new();
    let [a, b, ..] = NEWS;
    let body = format!("id,text\nx1,\"{a}\"\nx2,\"{b}\",extra\nx3,\"two\nlines\",\"and\"\n\"x4\",{b}\n");
    let input = t.write("bad.csv", &body);
    let o = t.clean(&input, &["--rejects", "rejects.csv", "--report", "r.json", "-q"]).expect(1);
    o.stderr_has("bad.csv:3: 3 fields where the header has 2 (id x2)");
    o.stderr_has("bad.csv:4: 3 fields where the header has 2 (id x3)");
    assert_eq!(
        fs::read_to_string(t.join("rejects.csv")).unwrap(),
        format!("x2,\"{b}\",extra\nx3,\"two\nlines\",\"and\"\n"),
        "rejected rows exactly as read"
    );
    let rows = read_csv(&o.stdout);
    assert_eq!(rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["id", "x1", "x4"]);
    let report = read_report(&t.join("r.json"));
    assert_eq!(report["files"][0]["rejected_lines"], json!([3, 4]));
    assert_eq!(report["files"][0]["rejected_ids"], json!({"3": "x2", "4": "x3"}));
}

#[test]
fn a_csv_without_the_text_column_is_a_clear_error() {
    let t = TestDir::new();
    let input = t.write("a.csv", "article_id,body\n1,hello\n");
    t.clean(&input, &["-q"]).expect(2).stderr_has("no column \"text\" in the header (columns: article_id, body)");
    t.clean(&input, &["-q", "--text-field", "body"]).expect(0).stdout_is(b"article_id,body\n1,hello\n");
}

#[test]
fn several_inputs_keep_the_order_given_and_mirror_by_name() {
    let t = TestDir::new();
    let [a, b, c, d] = NEWS;
    t.write("late/one.txt", format!("{a}\n{b}\n"));
    t.write("early/two.txt", format!("{a}\n{c}\n{d}\n"));
    t.write("s.jsonl", format!("{}\n", json!({"id": "j", "text": format!("{b}\n{c}\n")})));
    let args = ["clean", "late", "s.jsonl", "early", "--out", "out", "--explain", "ex.jsonl", "-q"];
    t.cmd(args).expect(0);
    // late/ comes first although it sorts after early/: the order given wins.
    assert_eq!(fs::read_to_string(t.join("out/late/one.txt")).unwrap(), format!("{a}\n{b}\n"));
    assert_eq!(fs::read_to_string(t.join("out/early/two.txt")).unwrap(), format!("{d}\n"));
    assert_eq!(
        fs::read_to_string(t.join("out/s.jsonl")).unwrap(),
        format!("{}\n", json!({"id": "j", "text": format!("{c}\n")}))
    );
    let explain: Vec<Value> =
        fs::read_to_string(t.join("ex.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(explain[0]["file"], "s.jsonl");
    assert_eq!(explain[0]["id"], "j");
    assert_eq!(explain[0]["first_file"], "late/one.txt");
    assert_eq!(explain[1]["file"], "early/two.txt");
    assert_eq!(explain[1]["first_file"], "late/one.txt");
    assert_eq!(explain[2]["first_file"], "s.jsonl");
    assert_eq!(explain[2]["first_id"], "j");

    // Two inputs with one name would write to one place: refused, nothing written.
    t.write("x/news/a.txt", format!("{a}\n"));
    t.write("y/news/b.txt", format!("{b}\n"));
    t.cmd(["clean", "x/news", "y/news", "--out", "out2"]).expect(2).stderr_has("two inputs are named \"news\"");
    assert!(!t.join("out2").exists());
    t.cmd(["clean", "x/news", "-", "--out", "out3"]).expect(2).stderr_has("standard input");
}

/// dolma's mixer span removal (`span_replacement` with an empty
/// replacement): characters whose index is inside a span are dropped.
fn dolma_remove(text: &str, spans: &[(usize, usize)]) -> String {
    text.chars().enumerate().filter(|(i, _)| !spans.iter().any(|&(s, e)| *i >= s && *i < e)).map(|(_, c)| c).collect()
}

#[test]
fn attributes_are_character_spans_that_dolma_removal_turns_into_the_annotated_text() {
    let t = TestDir::new();
    let [a, b, boiler, _] = NEWS;
    // Non-ASCII before the repeats, so byte and character offsets differ.
    let texts = [
        format!("\u{c9}t\u{e9} \u{1F600} {a}\n{boiler}\n"),
        format!("Caf\u{e9} \u{201C}news\u{201D} today in the city centre.\n\n{boiler}\n{b}\n"),
        format!("\u{e9}\u{e9}\u{e9} {b}\n{boiler}\n"),
        format!("\u{c9}t\u{e9} \u{1F600} {a}\n{boiler}\n"),
    ];
    let shard: String = texts.iter().enumerate().map(|(i, x)| format!("{}\n", json!({"id": i, "text": x}))).collect();
    t.write("in/s.jsonl", &shard);
    t.cmd(["clean", "in", "--out", "out", "--attributes", "attrs", "-q", "--emit", "original", "--keep-empty"])
        .expect(0);
    let annotated = t.clean(&t.join("in/s.jsonl"), &["--annotate", "dd", "-q"]).expect(0).stdout.clone();
    let annotated: Vec<Value> =
        String::from_utf8(annotated).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let cleaned: Vec<Value> =
        fs::read_to_string(t.join("out/s.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let attrs = fs::read_to_string(t.join("attrs/s.jsonl")).unwrap();
    let attrs: Vec<Value> = attrs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(attrs.len(), texts.len(), "one attribute line per record");
    let mut removed_any = 0;
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(attrs[i]["id"], i, "ids line up with the documents");
        let spans: Vec<(usize, usize)> = attrs[i]["attributes"]["newsdedup__paragraph_duplicates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert_eq!(s[2], 1.0);
                (s[0].as_u64().unwrap() as usize, s[1].as_u64().unwrap() as usize)
            })
            .collect();
        removed_any += spans.len();
        // The byte spans --annotate reports, as characters.
        let byte_spans = annotated[i]["dd"]["spans"].as_array().unwrap();
        assert_eq!(byte_spans.len(), spans.len());
        for (bs, &(s, e)) in byte_spans.iter().zip(&spans) {
            let (bs0, bs1) = (bs[0].as_u64().unwrap() as usize, bs[1].as_u64().unwrap() as usize);
            assert_eq!(text[..bs0].chars().count(), s);
            assert_eq!(text[..bs1].chars().count(), e);
        }
        let expected = cleaned[i]["text"].as_str().unwrap();
        assert_eq!(dolma_remove(text, &spans), expected, "record {i}: dolma's removal gives the clean text");
    }
    assert!(removed_any >= 3, "the test removes something ({removed_any} spans)");
}

#[test]
fn attributes_with_a_dry_run_are_the_only_output() {
    let t = TestDir::new();
    let [a, ..] = NEWS;
    let rows = vec![("1".to_owned(), "t".to_owned(), format!("{a}\n")), ("2".into(), "u".into(), format!("{a}\n"))];
    t.write("in/x.csv", csv_of(&rows, "\n"));
    t.cmd(["clean", "in", "--dry-run", "--out", "ignored", "--attributes", "attrs", "-q"]).expect(0);
    assert!(!t.join("ignored").exists(), "--dry-run ignores --out");
    let attrs = fs::read_to_string(t.join("attrs/x.csv")).unwrap();
    let n = a.chars().count() + 1;
    assert_eq!(
        attrs,
        format!(
            "{{\"id\":\"1\",\"attributes\":{{\"newsdedup__paragraph_duplicates\":[]}}}}\n\
             {{\"id\":\"2\",\"attributes\":{{\"newsdedup__paragraph_duplicates\":[[0,{n},1.0]]}}}}\n"
        )
    );
}

#[test]
fn annotate_takes_a_field_after_a_space_and_csv_gets_a_column() {
    let t = TestDir::new();
    let [a, ..] = NEWS;
    let rows = vec![("1".to_owned(), "t".to_owned(), format!("{a}\n")), ("2".into(), "u".into(), format!("{a}\n"))];
    let input = t.write("x.csv", csv_of(&rows, "\n"));
    let o = t.clean(&input, &["--annotate", "dups", "-q"]).expect(0);
    let got = read_csv(&o.stdout);
    assert_eq!(got[0], ["id", "title", "text", "dups"]);
    assert_eq!(got.len(), 3, "no record is dropped");
    let note: Value = serde_json::from_str(&got[2][3]).unwrap();
    assert_eq!(note["dropped"], 1);
    // A value that names an existing file before any input is the input.
    let o = t.cmd(["clean", "--annotate", "x.csv", "-q"]).expect(0);
    assert_eq!(read_csv(&o.stdout)[0], ["id", "title", "text", "newsdedup"]);
    t.cmd(["clean", "--annotate", "x.csv", "x.csv"]).expect(2).stderr_has("--annotate=FIELD");
    t.clean(&input, &["--annotate", "title"]).expect(2).stderr_has("already has a column \"title\"");
}

#[test]
fn completions_and_man_page() {
    let t = TestDir::new();
    for shell in ["bash", "zsh", "fish"] {
        let o = t.cmd(["completions", shell]).expect(0);
        assert!(o.stdout_str().contains("--text-field"), "{shell} completion names the flags");
    }
    let man = t.cmd(["man"]).expect(0);
    assert!(man.stdout_str().starts_with(".ie"), "roff");
    assert!(man.stdout_str().contains(".TH newsdedup 1"));
    t.cmd(["completions", "tcsh"]).expect(2);
}

#[test]
fn index_stats_as_json() {
    let t = TestDir::new();
    let [a, b, ..] = NEWS;
    let input = t.write("in/a.txt", format!("{a}\n{b}\n"));
    t.clean(&input, &["--index", "ix", "--out", "out", "-q"]).expect(0);
    let o = t.cmd(["index", "stats", "--json", "ix"]).expect(0);
    let stats: Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = t.cmd(["index", "stats", "ix"]).expect(0).stdout_str();
    assert!(text.starts_with(&format!("keys: {}\n", stats["keys"])), "the same figures as the text: {text}");
    assert!(stats["keys"].as_u64().unwrap() >= 2);
    assert_eq!(stats["runs"], 1);
    assert!(stats["bytes_on_disk"].as_u64().unwrap() > 0);
    assert!(Path::new(&t.join("ix")).is_dir());
}

/// The Dai et al. (2017) news CSV, cleaned directly: every row's
/// `article_id` makes the rows differ as lines, but the text column is what
/// is keyed. Ignored by default (`cargo test -- --ignored needs_corpora_`,
/// which `.ci/run` does when `../shared/corpora` is present).
#[test]
#[ignore = "needs ../shared/corpora/newsarticles-dai2017; .ci/run runs it when present"]
fn needs_corpora_dai_csv_corpus_is_cleaned_directly() {
    let csv_path = util::env::corpus("newsarticles-dai2017").join("NewsArticles.csv");
    let t = TestDir::new();
    let flags = ["--out", "out", "--report", "r.json", "--id-field", "article_id", "-q"];
    t.clean(&csv_path, &flags).expect(0);
    let totals = read_report(&t.join("r.json"))["totals"].clone();
    eprintln!("dai totals: {totals}");
    assert_eq!(totals["documents_read"], 3824);
    assert_eq!(totals["documents_duplicate"], 3);
    assert_eq!(totals["documents_empty"], 36);
    assert_eq!(totals["records_rejected"], 0);
    assert_eq!(totals["documents_written"], 3824 - 3 - 36);
    // Read back independently: the header and every column but the text
    // equal the input's, row by row (matched by article_id).
    let input = fs::read(&csv_path).unwrap();
    let output = fs::read(t.join("out/NewsArticles.csv")).unwrap();
    let (inp, out) = (read_csv_bytes(&input), read_csv_bytes(&output));
    assert_eq!(inp[0], out[0]);
    assert_eq!(out.len() - 1, 3824 - 3 - 36);
    let by_id: std::collections::HashMap<&[u8], &Vec<Vec<u8>>> =
        inp[1..].iter().map(|r| (r[0].as_slice(), r)).collect();
    for row in &out[1..] {
        assert_eq!(by_id[row[0].as_slice()][..5], row[..5], "pass-through columns of article {:?}", row[0]);
    }
}

/// Rows as byte fields (the Dai corpus is not all valid UTF-8).
fn read_csv_bytes(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes);
    r.byte_records().map(|rec| rec.expect("valid CSV").iter().map(<[u8]>::to_vec).collect()).collect()
}

#[test]
fn csv_output_is_the_same_for_any_thread_count_and_in_place_keeps_bad_rows() {
    let t = TestDir::new();
    let mut rows = Vec::new();
    for i in 0..3000 {
        let text = format!("{}\nStory number {i} has its own line of news text, long enough.\n", NEWS[i % 4]);
        rows.push((format!("n{i}"), format!("title {}", i % 7), text));
    }
    let mut body = csv_of(&rows, "\r\n");
    body.extend_from_slice(b"bad,row,with,too,many\r\n");
    let input = t.write("in/big.csv", &body);
    let one = t.clean(&input, &["-q", "--threads", "1"]).expect(1).stdout.clone();
    let three = t.clean(&input, &["-q", "--threads", "3"]).expect(1).stdout.clone();
    assert_eq!(one, three);
    assert_eq!(read_csv(&one).len(), 3001, "every row keeps its own line");
    t.clean(&input, &["-q", "--in-place"]).expect(1);
    let after = fs::read(&input).unwrap();
    assert_eq!(&after[..one.len()], &one[..], "in place: the cleaned rows");
    assert_eq!(&after[one.len()..], b"bad,row,with,too,many\r\n", "and the rejected row, as read, at its place");
    t.cmd(["clean", "in", "--out", "o", "--attributes", "in/attrs"]).expect(2).stderr_has("inside the input");
}
