//! A real `dolma mix` round trip: the attribute files `--attributes` writes
//! make dolma's mixer remove exactly the spans `--annotate` reports, giving
//! the `--emit original` clean text. Needs a `dolma` executable
//! (`NEWSDEDUP_TEST_DOLMA`, else `dolma` on PATH), so it is ignored by
//! default: `NEWSDEDUP_TEST_DOLMA=venv/bin/dolma cargo test --test dolma --
//! --ignored`. The offsets are also checked without dolma in `tests/formats.rs`.

mod util;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::process::Command;

use serde_json::{Value, json};
use util::TestDir;

const A: &str = "The council approved the new budget for the coming year after a long debate.";
const B: &str = "Police said the suspect was arrested on Tuesday night near the central station.";
const BOILER: &str = "Subscribe to our newsletter for the latest news and updates delivered every day.";

fn gz_lines(path: &std::path::Path) -> Vec<Value> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(File::open(path).unwrap()).read_to_string(&mut text).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
#[ignore = "needs dolma (pip install dolma; NEWSDEDUP_TEST_DOLMA=path/to/dolma)"]
fn needs_dolma_mix_removes_exactly_the_annotated_spans() {
    let dolma = std::env::var("NEWSDEDUP_TEST_DOLMA").unwrap_or_else(|_| "dolma".to_owned());
    let found = Command::new(&dolma).arg("--help").output().is_ok_and(|o| o.status.success());
    assert!(found, "this test needs a dolma executable ({dolma}); leave it ignored without it");
    let t = TestDir::new();
    let texts = [
        format!("\u{c9}t\u{e9} \u{1F600} {A}\n{BOILER}\n"),
        format!("Caf\u{e9} \u{201C}news\u{201D} today in the city centre.\n\n{BOILER}\n{B}\n"),
        format!("\u{e9}\u{e9}\u{e9} {B}\n{BOILER}\n"),
        format!("Fresh story with new facts about the harbour expansion plans.\n{B}\n{BOILER}\n"),
    ];
    fs::create_dir_all(t.join("documents")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        File::create(t.join("documents/s.json.gz")).unwrap(),
        flate2::Compression::default(),
    );
    for (i, text) in texts.iter().enumerate() {
        writeln!(gz, "{}", json!({"id": format!("d{i}"), "source": "test", "text": text})).unwrap();
    }
    gz.finish().unwrap();
    t.cmd(["clean", "documents", "--dry-run", "--attributes", "attributes/newsdedup", "-q"]).expect(0);
    let expected = t.cmd(["clean", "documents/s.json.gz", "--emit", "original", "--keep-empty", "-q"]).expect(0);
    let expected: Vec<Value> = expected.stdout_str().lines().map(|l| serde_json::from_str(l).unwrap()).collect();

    let root = t.path().display().to_string();
    let config = format!(
        "streams:\n  - name: news\n    documents: [{root}/documents/*.json.gz]\n    attributes: [newsdedup]\n    \
         span_replacement:\n      - span: \"$.attributes.newsdedup__paragraph_duplicates\"\n        min_score: 0.5\n        \
         replacement: \"\"\n    output:\n      path: {root}/mixed\n      max_size_in_bytes: 100000000\n\
         work_dir:\n  input: {root}/work/in\n  output: {root}/work/out\nprocesses: 1\n"
    );
    fs::write(t.join("mix.yaml"), config).unwrap();
    let o = Command::new(&dolma).arg("-c").arg(t.join("mix.yaml")).arg("mix").output().unwrap();
    assert!(o.status.success(), "dolma mix failed: {}", String::from_utf8_lossy(&o.stderr));
    let mixed = gz_lines(&t.join("mixed/news-0000.json.gz"));
    assert_eq!(mixed.len(), texts.len());
    let mut changed = 0;
    for (i, (m, e)) in mixed.iter().zip(&expected).enumerate() {
        assert_eq!(m["id"], e["id"]);
        assert_eq!(m["text"], e["text"], "record {i}: dolma removed exactly the annotated spans");
        changed += usize::from(m["text"].as_str() != Some(texts[i].as_str()));
    }
    assert!(changed >= 3, "spans were removed ({changed} records changed)");
}
