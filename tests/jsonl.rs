//! End-to-end tests of the JSONL pipeline mode.

mod util;

use std::fs;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use util::{BIN, Cmd, Outcome, Rng, gunzip, gz};

/// Runs the binary with `args` and optional standard input.
fn run(args: &[&str], stdin: Option<&[u8]>) -> Outcome {
    let cmd = Cmd::new(args);
    match stdin {
        Some(bytes) => cmd.stdin(bytes).run(),
        None => cmd.run(),
    }
}

/// [`run`], demanding exit code 0.
fn ok(args: &[&str], stdin: Option<&[u8]>) -> Outcome {
    let out = run(args, stdin);
    if out.code != Some(0) {
        out.fail("expected success");
    }
    out
}

fn records(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8(bytes.to_vec())
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect()
}

const SEED: &str = include_str!("../fixtures/doubled-article/input/doubled-article.txt");

/// A small news stream: a doubled article, a syndicated copy, boilerplate,
/// a new story, an exact duplicate and an empty text.
fn stream() -> Vec<Value> {
    let lines: Vec<&str> = SEED.lines().collect();
    vec![
        json!({"id": "1", "text": SEED, "source": "wire", "metadata": {"n": 1.50, "tags": ["a", "b"]}}),
        json!({"id": "2", "text": format!("{}\n{}\nCopyright Example News, all rights reserved. Not to be redistributed.", lines[2], "A fresh paragraph about something else entirely."), "source": "outlet"}),
        json!({"id": "3", "text": "Another story starts here, with its own words.\nCopyright Example News, all rights reserved. Not to be redistributed.", "source": "outlet"}),
        json!({"id": "4", "text": SEED, "source": "copy"}),
        json!({"id": "5", "text": "", "source": "empty"}),
    ]
}

fn to_jsonl(values: &[Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

#[test]
fn jsonl_in_jsonl_out_preserves_fields_and_order() {
    let input = stream();
    let out = ok(&["clean", "--format", "jsonl", "-q", "-"], Some(to_jsonl(&input).as_bytes()));
    let got = records(&out.stdout);
    let ids: Vec<&str> = got.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "2", "3"], "duplicate (4) and empty (5) records are dropped");
    for r in &got {
        let orig = input.iter().find(|o| o["id"] == r["id"]).unwrap();
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        let orig_keys: Vec<&String> = orig.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), orig_keys.len());
        for k in orig_keys.iter().filter(|k| k.as_str() != "text") {
            assert_eq!(r[k.as_str()], orig[k.as_str()], "field {k} passed through");
        }
    }
    let first: Vec<&str> = SEED.lines().take(8).collect();
    assert_eq!(got[0]["text"].as_str().unwrap(), format!("{}\n", first.join("\n")));
    assert_eq!(
        got[1]["text"],
        "A fresh paragraph about something else entirely.\nCopyright Example News, all rights reserved. Not to be redistributed."
    );
    assert_eq!(got[2]["text"], "Another story starts here, with its own words.\n");
}

#[test]
fn field_values_are_passed_through_byte_for_byte() {
    let line = "{\"id\": 7, \"metadata\": {\"score\": 1.50, \"big\": 12345678901234567890}, \"text\": \"Hello there, this is a paragraph.\"}\n";
    let out = ok(&["clean", "--format", "jsonl", "-q", "-"], Some(line.as_bytes()));
    // Nothing to drop or normalise: the record is written as it was read.
    assert_eq!(String::from_utf8(out.stdout).unwrap(), line);
}

#[test]
fn keep_empty_keeps_records_with_empty_text() {
    let input = stream();
    let out = ok(&["clean", "--format", "jsonl", "--keep-empty", "-q", "-"], Some(to_jsonl(&input).as_bytes()));
    let got = records(&out.stdout);
    assert_eq!(got.len(), 5);
    assert_eq!(got[3]["text"], "");
    assert_eq!(got[4]["text"], "");
}

#[test]
fn clean_text_equals_tree_mode_for_the_same_texts() {
    let dir = tempfile::tempdir().unwrap();
    let input = stream();
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    for (i, v) in input.iter().enumerate() {
        fs::write(tree.join(format!("{i:04}.txt")), v["text"].as_str().unwrap()).unwrap();
    }
    let shard = dir.path().join("s.jsonl");
    fs::write(&shard, to_jsonl(&input)).unwrap();
    let out_tree = dir.path().join("out");
    ok(&["clean", tree.to_str().unwrap(), "--out", out_tree.to_str().unwrap(), "-q"], None);
    let out = ok(&["clean", shard.to_str().unwrap(), "--keep-empty", "-q"], None);
    let got = records(&out.stdout);
    for (i, r) in got.iter().enumerate() {
        let file = out_tree.join(format!("{i:04}.txt"));
        let expected = fs::read_to_string(&file).unwrap_or_default();
        assert_eq!(r["text"].as_str().unwrap(), expected, "record {i} vs {}", file.display());
    }
}

#[test]
fn compressed_shards_in_and_out_mirror_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let input = stream();
    let shards = dir.path().join("shards");
    fs::create_dir_all(shards.join("b")).unwrap();
    fs::write(shards.join("a.jsonl.gz"), gz(to_jsonl(&input[..2]).as_bytes())).unwrap();
    fs::write(shards.join("b/c.jsonl.zst"), zstd::encode_all(to_jsonl(&input[2..]).as_bytes(), 3).unwrap()).unwrap();
    let out = dir.path().join("out");
    let report = dir.path().join("report.json");
    ok(
        &[
            "clean",
            shards.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "-q",
        ],
        None,
    );
    let a = records(&gunzip(&fs::read(out.join("a.jsonl.gz")).unwrap()));
    let c = records(&zstd::decode_all(&fs::read(out.join("b/c.jsonl.zst")).unwrap()[..]).unwrap());
    assert_eq!(a.iter().map(|r| r["id"].clone()).collect::<Vec<_>>(), [json!("1"), json!("2")]);
    assert_eq!(c.iter().map(|r| r["id"].clone()).collect::<Vec<_>>(), [json!("3")]);
    // The same stream uncompressed gives the same records.
    let plain = records(&ok(&["clean", "--format", "jsonl", "-q", "-"], Some(to_jsonl(&input).as_bytes())).stdout);
    assert_eq!([a, c].concat(), plain);
    let rep: Value = serde_json::from_slice(&fs::read(&report).unwrap()).unwrap();
    let row = rep["files"].as_array().unwrap().iter().find(|r| r["path"] == "b/c.jsonl.zst").unwrap();
    assert_eq!(
        row["dropped_records"],
        json!([
            {"line": 2, "id": "4", "status": "duplicate", "duplicate_of": "a.jsonl.gz:1", "duplicate_of_id": "1"},
            {"line": 3, "id": "5", "status": "empty"}
        ])
    );
}

#[test]
fn stdout_compression_flag() {
    let input = to_jsonl(&stream());
    let plain = ok(&["clean", "--format", "jsonl", "-q", "-"], Some(input.as_bytes())).stdout;
    let zipped = ok(&["clean", "--format", "jsonl", "--compress", "gzip", "-q", "-"], Some(input.as_bytes())).stdout;
    assert_eq!(gunzip(&zipped), plain);
}

#[test]
fn bad_lines_are_reported_with_file_and_line_and_written_to_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let shard = dir.path().join("s.jsonl");
    let good = json!({"id": 1, "text": "A perfectly good paragraph of news text, long enough to be news on its own."});
    let body = format!("{good}\n{{not json\n{{\"id\":2,\"body\":\"x\"}}\n\n{{\"id\":3,\"text\":42}}\n{good}\n");
    fs::write(&shard, &body).unwrap();
    let rejects = dir.path().join("rejects.jsonl");
    let out = run(&["clean", shard.to_str().unwrap(), "--rejects", rejects.to_str().unwrap()], None);
    assert_eq!(out.code, Some(1), "rejects give exit code 1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = shard.display().to_string();
    assert!(stderr.contains(&format!("{name}:2: not a JSON object")), "{stderr}");
    assert!(stderr.contains(&format!("{name}:3: no \"text\" field")), "{stderr}");
    assert!(stderr.contains(&format!("{name}:5: field \"text\" is not a string")), "{stderr}");
    assert_eq!(fs::read_to_string(&rejects).unwrap(), "{not json\n{\"id\":2,\"body\":\"x\"}\n{\"id\":3,\"text\":42}\n");
    let got = records(&out.stdout);
    assert_eq!(got.len(), 1, "the repeated good record is a duplicate");
    assert_eq!(got[0]["id"], 1);
}

#[test]
fn annotate_spans_applied_give_the_clean_text() {
    let input = stream();
    let jsonl = to_jsonl(&input);
    let annotated =
        records(&ok(&["clean", "--format", "jsonl", "--annotate", "-q", "-"], Some(jsonl.as_bytes())).stdout);
    let original = records(
        &ok(&["clean", "--format", "jsonl", "--emit", "original", "--keep-empty", "-q", "-"], Some(jsonl.as_bytes()))
            .stdout,
    );
    assert_eq!(annotated.len(), input.len(), "annotate drops no record");
    for ((a, o), clean) in annotated.iter().zip(&input).zip(&original) {
        assert_eq!(a["text"], o["text"], "text untouched");
        let text = a["text"].as_str().unwrap().as_bytes();
        let mut applied = Vec::new();
        let mut at = 0;
        for span in a["newsdedup"]["spans"].as_array().unwrap() {
            let (s, e) = (span[0].as_u64().unwrap() as usize, span[1].as_u64().unwrap() as usize);
            assert!(s >= at && e >= s && e <= text.len());
            applied.extend_from_slice(&text[at..s]);
            at = e;
        }
        applied.extend_from_slice(&text[at..]);
        assert_eq!(String::from_utf8(applied).unwrap(), clean["text"].as_str().unwrap());
    }
    assert_eq!(annotated[0]["newsdedup"]["dropped"], 8);
    assert_eq!(annotated[0]["newsdedup"]["spans"][0][2], "within-document");
    assert_eq!(annotated[3]["newsdedup"]["spans"][0][2], "duplicate-document");
}

#[test]
fn output_is_identical_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let shard = dir.path().join("big.jsonl");
    let paras: Vec<String> =
        (0..400).map(|i| format!("Paragraph number {i} of the generated wire stream, long enough.")).collect();
    let mut body = String::new();
    let mut rng = Rng::new(12345);
    for id in 0..3000 {
        let mut text = String::new();
        for _ in 0..6 {
            text.push_str(&paras[rng.below(paras.len())]);
            text.push('\n');
        }
        body.push_str(&format!("{}\n", json!({"id": id, "text": text})));
    }
    fs::write(&shard, body).unwrap();
    // A batch holds 192 records per thread (two threads at least): 1, 3 and
    // 4 threads cut these 3,000 records into batches at different places.
    let mut outputs = Vec::new();
    for threads in ["1", "3", "4"] {
        let explain = dir.path().join(format!("explain-{threads}.jsonl"));
        let out = ok(
            &["clean", shard.to_str().unwrap(), "--threads", threads, "--explain", explain.to_str().unwrap(), "-q"],
            None,
        );
        outputs.push((out.stdout, fs::read(&explain).unwrap()));
    }
    assert!(!outputs[0].0.is_empty() && !outputs[0].1.is_empty());
    assert!(outputs[0] == outputs[1], "threads 1 and 3 differ");
    assert!(outputs[0] == outputs[2], "threads 1 and 4 differ");
}

#[test]
fn the_misconfiguration_check_sees_the_same_first_records_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    // 1,000 objects without the text field (more than a one- or two-thread
    // batch), then one with it: not a misconfiguration, at any thread count.
    let shard = dir.path().join("late.jsonl");
    let mut body: String = (0..1000).map(|i| format!("{}\n", json!({"id": i, "body": "x"}))).collect();
    body.push_str(&format!("{}\n", json!({"id": 1000, "text": "The one record with a text field, long enough."})));
    fs::write(&shard, &body).unwrap();
    for threads in ["1", "2", "4"] {
        let out = run(&["clean", shard.to_str().unwrap(), "--threads", threads, "-q"], None);
        assert_eq!(out.code, Some(1), "{threads} threads: the 1,000 lines are rejected one by one");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("no record of the first batch"), "{threads} threads: {stderr}");
        assert!(stderr.contains(&format!("{}:1000: no \"text\" field", shard.display())), "{stderr}");
        assert_eq!(records(&out.stdout).len(), 1, "{threads} threads");
    }
    // Past the first batch's 2,048 records, it is one, at any thread count.
    let shard = dir.path().join("too-late.jsonl");
    let mut body: String = (0..2048).map(|i| format!("{}\n", json!({"id": i, "body": "x"}))).collect();
    body.push_str(&format!("{}\n", json!({"id": 2048, "text": "Too late to be seen by the check."})));
    fs::write(&shard, &body).unwrap();
    for threads in ["1", "4"] {
        let out = run(&["clean", shard.to_str().unwrap(), "--threads", threads, "-q"], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no record of the first batch has a \"text\" field"), "{threads} threads: {stderr}");
        assert!(out.stdout.is_empty(), "{threads} threads");
    }
}

#[test]
fn batches_grow_with_the_pool_and_give_every_thread_records() {
    use newsdedup::pipeline::batch_limits;
    // One thread reads as two do: a batch's records are then prepared in
    // one pass while the next half batch is.
    assert_eq!(batch_limits(1), batch_limits(2));
    assert_eq!(batch_limits(0), batch_limits(2));
    let (lines, bytes) = batch_limits(2);
    assert_eq!(batch_limits(8), (4 * lines, 4 * bytes));
    for threads in 1..=128 {
        let (lines, bytes) = batch_limits(threads);
        // A half batch (the one prepared ahead) holds dozens of records for each thread.
        assert!(lines / 2 >= 64 * threads, "{threads} threads: {lines} records");
        assert!(bytes / lines >= 2048, "{threads} threads: {bytes} bytes for {lines} records");
    }
}

#[test]
fn non_jsonl_name_in_a_tree_is_text_but_a_lone_file_is_judged_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in/data.txt");
    fs::create_dir(dir.path().join("in")).unwrap();
    let line = json!({"text": "Looks like JSON but is a text file here.", "id": 1}).to_string();
    fs::write(&f, format!("{line}\n")).unwrap();
    // In a tree, names decide: data.txt is a text document.
    let out = dir.path().join("out");
    ok(&["clean", dir.path().join("in").to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"], None);
    assert_eq!(fs::read_to_string(out.join("data.txt")).unwrap(), format!("{line}\n"));
    // Given alone, its first line is a JSON object: JSON Lines.
    let alone = ok(&["clean", f.to_str().unwrap(), "-q"], None);
    assert_eq!(records(&alone.stdout)[0]["text"], "Looks like JSON but is a text file here.");
    assert_eq!(records(&alone.stdout)[0]["id"], 1);
    let as_text = ok(&["clean", f.to_str().unwrap(), "--format", "text", "-q"], None);
    assert_eq!(as_text.stdout, format!("{line}\n").into_bytes());
}

#[test]
fn broken_pipe_ends_the_run_with_an_exit_code_saying_the_output_is_incomplete() {
    let input: String = (0..20000)
        .map(|i| format!("{}\n", json!({"id": i, "text": format!("Unique paragraph {i} with enough characters.")})))
        .collect();
    let mut child = Command::new(BIN)
        .args(["clean", "--format", "jsonl", "-q", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, no error per record: {stderr}");
    assert!(stderr.contains("the output is incomplete"), "{stderr}");
}

#[test]
fn a_shard_damaged_midway_keeps_what_was_read_and_fails_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    fs::create_dir(&shards).unwrap();
    let body: String = (0..20000)
        .map(|i| {
            format!("{}\n", json!({"id": i, "text": format!("Record {i} has a paragraph of its own, long enough to count as news alone.")}))
        })
        .collect();
    let zipped = gz(body.as_bytes());
    fs::write(shards.join("a.jsonl.gz"), &zipped[..zipped.len() * 3 / 4]).unwrap();
    // b repeats the first records of a: they must survive somewhere.
    fs::write(shards.join("b.jsonl"), body.lines().take(3).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let out = dir.path().join("out");
    let o = run(&["clean", shards.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"], None);
    assert_eq!(o.code, Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("a.jsonl.gz: line "), "{stderr}");
    let a = records(&gunzip(&fs::read(out.join("a.jsonl.gz")).unwrap()));
    assert!(a.len() > 1000, "records read before the damage are written ({})", a.len());
    assert_eq!(a[0]["id"], 0);
    assert!(fs::read(out.join("b.jsonl")).unwrap().is_empty(), "b's records are duplicates of a's, kept in a");
}

#[test]
fn a_duplicated_text_field_is_rejected() {
    let o =
        run(&["clean", "--format", "jsonl", "-"], Some(b"{\"id\":1,\"text\":\"One text here.\",\"text\":\"Two.\"}\n"));
    assert_eq!(o.code, Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("<stdin>:1: field \"text\" occurs more than once"));
    assert!(o.stdout.is_empty());
}

#[test]
fn annotate_takes_its_field_name_with_an_equals_sign() {
    let line = format!(
        "{}\n",
        json!({"id": 1, "text": "Same paragraph, long enough to count.\nSame paragraph, long enough to count."})
    );
    let o = ok(&["clean", "--format", "jsonl", "-q", "--annotate", "-"], Some(line.as_bytes()));
    assert_eq!(records(&o.stdout)[0]["newsdedup"]["dropped"], 1);
    let o = ok(&["clean", "--format", "jsonl", "-q", "--annotate=dd", "-"], Some(line.as_bytes()));
    assert_eq!(records(&o.stdout)[0]["dd"]["kept"], 1);
    let o = run(&["clean", "--format", "jsonl", "--annotate=text", "-"], Some(line.as_bytes()));
    assert_eq!(o.code, Some(2));
}

#[test]
fn records_gain_no_character_and_unchanged_ones_pass_through_byte_for_byte() {
    // Odd spacing and escapes that a re-serialisation would change; nothing
    // to drop, nothing to normalise: the line comes out as it went in.
    let same = "{ \"id\" : 1,  \"text\": \"Stocks rose sharply in Tokyo on Monday as exporters gained ground.\\nBonds fell \\u00e9 \\/ too.\" }";
    // A repeat (long enough to be news on its own) is dropped from the second record; its text ends without a
    // line break, and gains none.
    let second = r#"{"id":2,"text":"Stocks rose sharply in Tokyo on Monday as exporters gained ground.\nA new paragraph about the yen."}"#;
    let input = format!("{same}\n{second}\n");
    let out = ok(&["clean", "--format", "jsonl", "-q", "-"], Some(input.as_bytes()));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(same));
    let rec: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(rec["text"], "A new paragraph about the yen.");
}

/// The README's worked example of pipeline mode, run as printed: each input
/// and output line must appear in the README verbatim, and the tool must
/// print exactly those output lines.
#[test]
fn readme_worked_example_runs_as_printed() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let input = [
        r#"{"id":1,"text":"Stocks rose sharply on Monday in Tokyo as exporters gained on a weaker yen.\nAnalysts expect more gains."}"#,
        r#"{"id":2,"text":"Stocks rose sharply on Monday in Tokyo as exporters gained on a weaker yen.\nA new paragraph about bonds."}"#,
    ];
    let expected = [input[0], r#"{"id":2,"text":"A new paragraph about bonds."}"#];
    for line in input.iter().chain(&expected) {
        assert!(readme.contains(line), "README's worked example lacks {line}");
    }
    let out = ok(&["clean", "--format", "jsonl", "-q", "-"], Some(format!("{}\n", input.join("\n")).as_bytes()));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}\n", expected.join("\n")));
}
