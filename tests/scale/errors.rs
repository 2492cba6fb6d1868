//! Bad input to the scale-out steps: clear errors naming the path, never a
//! panic; the CLI subcommands; the BBC corpus when present.

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use newsdedup::scale;

use super::{TestDir, assert_same, distributed, jsonl_corpus, single};

fn planned(t: &TestDir) -> std::path::PathBuf {
    let input = t.join("corpus");
    jsonl_corpus(&input, 31);
    let work = t.join("work");
    let args: Vec<OsString> = vec![input.into(), "--work".into(), work.clone().into()];
    scale::plan_args(&args).expect("plan");
    work
}

#[test]
fn a_missing_or_corrupt_manifest_is_an_error_naming_it() {
    let t = TestDir::new();
    let err = scale::keys(&t.join("nowhere"), 0).expect_err("no manifest");
    assert!(err.to_string().contains("nowhere/manifest.json"), "{err}");
    let work = planned(&t);
    fs::write(work.join("manifest.json"), b"{\"contract\": 1, \"shards\": [").expect("write");
    let err = scale::apply(&work, 0, &t.join("out")).expect_err("corrupt");
    assert!(err.to_string().contains("manifest.json: not a scale-out manifest"), "{err}");
    fs::write(
        work.join("manifest.json"),
        br#"{"contract": 9, "newsdedup": "x", "roots": [], "options": [], "shards": []}"#,
    )
    .expect("write");
    let err = scale::keys(&work, 0).expect_err("contract");
    assert!(err.to_string().contains("contract 9"), "{err}");
}

#[test]
fn a_shard_out_of_range_is_an_error() {
    let t = TestDir::new();
    let work = planned(&t);
    let err = scale::keys(&work, 99).expect_err("no shard 99");
    assert!(err.to_string().contains("no shard 99") && err.to_string().contains("manifest.json"), "{err}");
}

#[test]
fn an_unreadable_or_foreign_drop_part_is_an_error_naming_it() {
    let t = TestDir::new();
    let work = planned(&t);
    for r in 0..4 {
        scale::keys(&work, r).expect("keys");
    }
    super::reference::decide(&work, None);
    let dir = work.join("drops/shard=1");
    fs::create_dir_all(&dir).expect("dir");
    fs::write(dir.join("part-9.parquet"), b"garbage").expect("write");
    let err = scale::apply(&work, 1, &t.join("out")).expect_err("garbage part");
    assert!(err.to_string().contains("part-9.parquet: not a readable Parquet file"), "{err}");
    // Drops of shard 2 put under shard 1: positions of another shard.
    fs::remove_file(dir.join("part-9.parquet")).expect("rm");
    fs::remove_dir_all(&dir).expect("rm");
    fs::rename(work.join("drops/shard=2"), &dir).expect("move");
    let err = scale::apply(&work, 1, &t.join("out")).expect_err("foreign rows");
    assert!(err.to_string().contains("is not in shard 1"), "{err}");
}

#[test]
fn a_drop_list_naming_rows_the_shard_does_not_have_is_an_error() {
    let t = TestDir::new();
    let work = planned(&t);
    super::reference::write_one_drop(&work, 999_999);
    let err = scale::apply(&work, 0, &t.join("out")).expect_err("no such row");
    assert!(err.to_string().contains("shard=0") && err.to_string().contains("no key row of the shard"), "{err}");
    assert!(!work.join("report/part-000000.json").exists(), "a failed apply leaves no report part");
}

#[test]
fn plan_refuses_a_non_utf8_path_by_name_and_a_work_folder_inside_the_input() {
    use std::os::unix::ffi::OsStrExt;
    let t = TestDir::new();
    let input = t.join("in");
    t.write("in/ok.txt", "A paragraph long enough to be a paragraph of news text.\n");
    fs::write(input.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")), "text\n").expect("write");
    let args: Vec<OsString> = vec![input.clone().into(), "--work".into(), t.join("w").into()];
    let err = scale::plan_args(&args).expect_err("non-UTF-8 name");
    assert!(err.to_string().contains("caf") && err.to_string().contains("not UTF-8"), "{err}");
    let args: Vec<OsString> = vec![input.clone().into(), "--work".into(), input.join("w").into()];
    let err = scale::plan_args(&args).expect_err("work inside input");
    assert!(err.to_string().contains("--work is inside the input"), "{err}");
}

#[test]
fn plan_refuses_what_a_distributed_run_cannot_do() {
    let t = TestDir::new();
    let input = t.write("in/a.txt", "text\n");
    for flag in [&["--in-place"][..], &["--index", "ix"], &["--dry-run"], &["--out", "o"], &["--explain", "e"]] {
        let mut args: Vec<OsString> = vec![input.clone().into(), "--work".into(), t.join("w").into()];
        args.extend(flag.iter().map(OsString::from));
        let err = scale::plan_args(&args).expect_err("refused");
        assert!(err.to_string().contains("not available in a scale-out run"), "{flag:?}: {err}");
    }
}

#[test]
fn the_cli_subcommands_run_the_steps() {
    let t = TestDir::new();
    let input = t.copy_input("corpus-tree");
    let s = single(&t, &[&input], &[], None, "s");
    let work = t.join("work");
    let plan = t
        .cmd([
            "plan".as_ref(),
            input.as_os_str(),
            "--work".as_ref(),
            work.as_os_str(),
            "--shard-bytes".as_ref(),
            "400".as_ref(),
        ])
        .expect(0);
    let manifest: serde_json::Value = serde_json::from_str(&plan.stdout_str()).expect("manifest on stdout");
    let n = manifest["shards"].as_array().expect("shards").len();
    assert!(n > 1, "{manifest}");
    for r in 0..n {
        let out = t.cmd(["keys", "--work", "work", "--shard", &r.to_string()]).expect(0);
        assert!(
            out.stdout_str().starts_with("{\"bytes\":") || out.stdout_str().contains("\"rank\""),
            "{}",
            out.stdout_str()
        );
    }
    super::reference::decide(&work, None);
    for r in 0..n {
        t.cmd(["apply", "--work", "work", "--shard", &r.to_string(), "--out", "out-d"]).expect(0);
    }
    t.cmd([
        "merge-report",
        "--work",
        "work",
        "--report",
        "report-d",
        "--explain",
        "explain-d",
        "--rejects",
        "rejects-d",
    ])
    .expect(0);
    assert_same(&s, &super::collect(&t, "d"), "CLI steps");
}

#[test]
#[ignore = "needs ../shared/corpora/bbc-news; .ci/run runs it when present"]
fn needs_corpora_bbc_news_distributed_equals_single_node() {
    let bbc = super::util::env::corpus("bbc-news");
    let t = TestDir::new();
    let flags = ["--glob", "*/*.txt"];
    let a = single(&t, &[&bbc], &flags, None, "s");
    let b = distributed(&t, &[&bbc], &flags, 256 << 10, None, "d");
    assert_same(&a, &b, "bbc-news");
}

#[test]
fn apply_before_the_decide_step_is_an_error_not_a_run_without_drops() {
    let t = TestDir::new();
    let work = planned(&t);
    scale::keys(&work, 0).expect("keys");
    let err = scale::apply(&work, 0, &t.join("out")).expect_err("no drops folder");
    assert!(err.to_string().contains("drops: no drop list: run the decide step first"), "{err}");
    assert!(!t.join("out").exists(), "nothing written before the decide step");
    // An empty drops folder is a decide step that found no repeat across shards.
    fs::create_dir_all(work.join("drops")).expect("drops");
    scale::apply(&work, 0, &t.join("out")).expect("apply");
}

#[test]
fn a_rejected_record_is_reported_once_by_apply_not_by_keys() {
    let t = TestDir::new();
    let input = t.join("corpus");
    fs::create_dir_all(&input).expect("dir");
    let good = r#"{"text": "A paragraph long enough to be news on its own in any story at all."}"#;
    fs::write(input.join("a.jsonl"), format!("{good}\n{{\"text\": 5}}\n")).expect("write");
    let (work, out) = (t.join("work"), t.join("out"));
    let run = |args: &[&Path]| {
        let out = std::process::Command::new(super::util::BIN).args(args).output().expect("run");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let p = Path::new;
    assert_eq!(run(&[p("plan"), &input, p("--work"), &work]).0, Some(0));
    let (code, keys_err) = run(&[p("keys"), p("--work"), &work, p("--shard"), p("0")]);
    assert_eq!(code, Some(0), "{keys_err}");
    assert!(!keys_err.contains("a.jsonl:2"), "keys stays silent about the rejected line: {keys_err}");
    fs::create_dir_all(work.join("drops")).expect("drops");
    let (_, apply_err) = run(&[p("apply"), p("--work"), &work, p("--shard"), p("0"), p("--out"), &out]);
    assert_eq!(apply_err.matches("a.jsonl:2").count(), 1, "apply reports it once: {apply_err}");
}

#[test]
fn plan_empties_a_reused_working_folder_and_refuses_a_foreign_one() {
    let t = TestDir::new();
    let work = planned(&t);
    for r in 0..4 {
        scale::keys(&work, r).expect("keys");
    }
    let stale = work.join("newkeys/part-000009.parquet");
    fs::create_dir_all(stale.parent().expect("parent")).expect("dir");
    fs::write(&stale, b"an earlier run's part").expect("write");
    let input = t.join("corpus");
    scale::plan_args(&[input.clone().into(), "--work".into(), work.clone().into()]).expect("plan again");
    assert!(!stale.exists() && !work.join("keys").exists(), "an earlier run's parts are gone");
    let foreign = t.join("mine");
    fs::create_dir_all(&foreign).expect("dir");
    fs::write(foreign.join("notes.txt"), b"keep me").expect("write");
    let err = scale::plan_args(&[input.into(), "--work".into(), foreign.clone().into()]).expect_err("foreign");
    assert!(err.to_string().contains("not a working folder"), "{err}");
    assert_eq!(fs::read(foreign.join("notes.txt")).expect("kept"), b"keep me");
}
