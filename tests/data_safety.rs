//! Data safety (issue 12): no path of the tool destroys, overwrites or
//! silently loses a user's data. One test per item of the issue, each
//! reproducing what a user did and asserting what must hold instead.
#![cfg(unix)]

mod util;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _, symlink};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use util::{BIN, TestDir, gunzip, gunzip_prefix, gz, read_report, snapshot};

/// `n` records, each with a paragraph of its own.
fn records(n: usize) -> String {
    (0..n)
        .map(|i| format!("{}\n", json!({"id": i, "text": format!("Record {i} has a paragraph of its own.")})))
        .collect()
}

fn parse_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// Item 1: a read error in a shard loses nothing before it; trailing zero
/// padding after gzip is accepted; in place, a shard not read to its end is
/// never replaced.
#[test]
fn a_damaged_shard_keeps_every_complete_record_and_is_never_replaced_in_place() {
    let t = TestDir::new();
    let body = records(3000);
    let zipped = gz(body.as_bytes());
    let cut = &zipped[..zipped.len() * 6 / 10];
    let readable = gunzip_prefix(cut);
    let complete = readable.iter().filter(|&&b| b == b'\n').count();
    assert!(complete > 100, "the truncated prefix holds complete records");
    t.write("in/a.jsonl.gz", cut);
    // Other text than a's, so that no record of b repeats one of a.
    let mut zst = zstd::encode_all(body.replace("Record", "Entry").as_bytes(), 3).unwrap();
    zst.extend_from_slice(b"junkjun");
    t.write("in/b.jsonl.zst", &zst);
    let mut padded = gz(records(5).replace("Record", "Item").as_bytes());
    padded.extend_from_slice(&[0; 512]);
    t.write("in/c.jsonl.gz", &padded);
    let o = t.clean(&t.join("in"), &["--out", "out"]).expect(1);
    o.stderr_has("a.jsonl.gz: line").stderr_has("b.jsonl.zst: line 3001");
    let a = parse_lines(&gunzip(&fs::read(t.join("out/a.jsonl.gz")).unwrap()));
    assert_eq!(a.len(), complete, "every complete record before the damage is written");
    assert_eq!(a[complete - 1]["id"], complete - 1);
    let b = parse_lines(&zstd::decode_all(&fs::read(t.join("out/b.jsonl.zst")).unwrap()[..]).unwrap());
    assert_eq!(b.len(), 3000, "a zstd stream followed by junk: every record is written");
    assert!(!o.stderr_str().contains("c.jsonl.gz"), "zero padding after gzip is accepted: {}", o.stderr_str());
    assert_eq!(parse_lines(&gunzip(&fs::read(t.join("out/c.jsonl.gz")).unwrap())).len(), 5);
    // In place: the damaged shard stays as it was, byte for byte.
    t.clean(&t.join("in/a.jsonl.gz"), &["--in-place"]).expect(1).stderr_has("left as it was");
    assert_eq!(fs::read(t.join("in/a.jsonl.gz")).unwrap(), cut);
}

/// Item 2: a later run never reads, rewrites or removes the backups of an
/// earlier in-place run, whatever its flags; it says how many it left alone.
#[test]
fn backups_of_an_earlier_in_place_run_are_never_touched() {
    let t = TestDir::new();
    let article = "A paragraph long enough to count as news.\nAnother paragraph, also long enough.\n";
    t.write("d/a.txt", article);
    t.write("d/sub/b.txt", format!("{article}A third paragraph that is new here.\n"));
    t.write("d/copy.txt", article);
    // Ends like a backup, but no run made it: an ordinary input.
    t.write("d/notes.orig", "Notes that merely end like a backup name.\nNotes that merely end like a backup name.\n");
    let d = t.join("d");
    t.clean(&d, &["--in-place", "--backup", ".orig"]).expect(0);
    let backups: Vec<_> =
        snapshot(&d).into_iter().filter(|(p, _)| p.to_string_lossy().ends_with(".txt.orig")).collect();
    assert_eq!(backups.len(), 3, "{backups:?}");
    let second = t.clean(&d, &["--in-place"]).expect(0);
    second.stderr_has("backups: 3 made by earlier --in-place runs, left alone");
    t.clean(&d, &["--in-place", "--backup", ".bak"]).expect(0).stderr_has("backups: 3 made");
    t.clean(&d, &["--out", "o"]).expect(0);
    let after = snapshot(&d);
    for (path, bytes) in &backups {
        assert_eq!(after.get(path), Some(bytes), "{} was changed or removed", path.display());
    }
    assert!(
        !snapshot(&t.join("o")).keys().any(|p| p.to_string_lossy().ends_with(".txt.orig")),
        "backups are not inputs"
    );
    assert_eq!(
        after[Path::new("notes.orig")],
        b"Notes that merely end like a backup name.\n",
        "an ordinary file is cleaned"
    );
    t.clean(&d.join("a.txt.orig"), &["--in-place"])
        .expect(2)
        .stderr_has("is a backup made by an earlier --in-place run");
}

/// Item 3: `--annotate=FIELD` never overwrites a field.
#[test]
fn annotate_never_overwrites_a_field() {
    let t = TestDir::new();
    let line = json!({"id": 1, "text": "A paragraph long enough to count as news.", "metadata": {"src": "x"}});
    let shard = t.write("in/a.jsonl", format!("{line}\n"));
    let o = t.clean(&t.join("in"), &["--annotate=metadata", "--out", "out"]).expect(2);
    o.stderr_has("a.jsonl").stderr_has("line 1").stderr_has("\"metadata\"");
    assert!(!t.join("out/a.jsonl").exists(), "nothing written under a final name");
    t.clean(&shard, &["--annotate=metadata", "--in-place"]).expect(2);
    assert_eq!(fs::read_to_string(&shard).unwrap(), format!("{line}\n"));
}

/// Item 4: a symlinked side file keeps its link and gets its target
/// written; a FIFO is written directly; `-` is stdout when that is free.
#[test]
fn side_files_follow_links_write_fifos_and_take_dash_as_stdout() {
    let t = TestDir::new();
    let input =
        t.write("in/a.txt", "A paragraph long enough to count as news.\nA paragraph long enough to count as news.\n");
    fs::create_dir(t.join("real")).unwrap();
    symlink(t.join("real/report.json"), t.join("link.json")).unwrap();
    let fifo = t.join("explain.fifo");
    mkfifo(&fifo);
    // The read end, opened without waiting for a writer; the explain lines
    // fit in the pipe's buffer, so the run need not wait for a reader.
    let mut reader = fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    t.clean(&t.join("in"), &["--out", "out", "--report", "link.json", "--explain", "explain.fifo"]).expect(0);
    assert!(fs::symlink_metadata(t.join("link.json")).unwrap().file_type().is_symlink(), "the link stays a link");
    read_report(&t.join("real/report.json"));
    let mut explained = Vec::new();
    let _ = reader.read_to_end(&mut explained);
    assert_eq!(parse_lines(&explained)[0]["reason"], "within-document");
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO is still a FIFO");
    let o = t.clean(&t.join("in"), &["--dry-run", "--report", "-"]).expect(0);
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap()["totals"]["paragraphs_in"], 2);
    assert!(!t.join("-").exists(), "no file named -");
    t.clean(&input, &["--report", "-"]).expect(2).stderr_has("standard output carries the cleaned data");
    assert!(!t.join("-").exists());
}

/// Item 5: side files may not overwrite the output or each other.
#[test]
fn side_files_may_not_collide_with_the_output_or_each_other() {
    let t = TestDir::new();
    t.write("in/edge.jsonl", format!("{}\n", json!({"text": "A paragraph long enough to count as news."})));
    t.write("jo/edge.jsonl", "an earlier cleaned shard\n");
    t.clean(&t.join("in"), &["--out", "jo", "--report", "jo/edge.jsonl"]).expect(2).stderr_has("inside --out");
    assert_eq!(fs::read_to_string(t.join("jo/edge.jsonl")).unwrap(), "an earlier cleaned shard\n");
    let o = t.clean(&t.join("in"), &["--out", "o", "--rejects", "X", "--explain", "./X"]).expect(2);
    o.stderr_has("--rejects and --explain name the same file");
    assert!(!t.join("X").exists() && !t.join("o").exists(), "nothing written by a refused run");
}

/// Item 6: JSONL is recognised by name (`.json.gz` too) and, on stdin, by
/// content; a wrong `--text-field` or `--format jsonl` on text is said once.
#[test]
fn jsonl_is_recognised_and_misconfigurations_are_said_once_with_the_fix() {
    let t = TestDir::new();
    let stdin = "{\"id\":1,\"text\":\"A paragraph long enough to count as news.\"}\n";
    let o = t.cmd(["clean", "-", "-q"]).stdin(stdin).expect(0);
    assert_eq!(parse_lines(&o.stdout)[0]["id"], 1, "stdin JSONL without --format: {}", o.stdout_str());
    t.write("dolma/0001.json.gz", gz(records(3).as_bytes()));
    t.clean(&t.join("dolma"), &["--out", "dolma-out", "-q"]).expect(0);
    assert_eq!(parse_lines(&gunzip(&fs::read(t.join("dolma-out/0001.json.gz")).unwrap())).len(), 3);
    let o = t.clean(&t.join("dolma"), &["--out", "o2", "--text-field", "body"]).expect(2);
    o.stderr_has("fields \"id\", \"text\"").stderr_has("--text-field");
    assert_eq!(o.stderr_str().lines().count(), 1, "said once: {}", o.stderr_str());
    for i in 0..5 {
        t.write(&format!("text/{i}.txt"), format!("Article {i}, a paragraph long enough.\nSecond line {i}.\n"));
    }
    let o = t.clean(&t.join("text"), &["--format", "jsonl", "--out", "o3"]).expect(2);
    o.stderr_has("not JSON Lines").stderr_has("--format text");
    assert_eq!(o.stderr_str().lines().count(), 1, "stops after the first file: {}", o.stderr_str());
    assert!(snapshot(&t.join("o3")).is_empty(), "no empty files written");
}

/// Item 7: bytes outside the text field, and rejected lines, are written
/// exactly as read.
#[test]
fn other_fields_and_rejected_lines_are_kept_byte_for_byte() {
    let t = TestDir::new();
    let good = b"{\"id\":\"\xff\xfe bad\",\"text\":\"A paragraph long enough to count as news.\"}\n";
    let rejected1 = b"\xef\xbb\xbf{\"no_text\":\"\xff\"}\r";
    let rejected2 = b"{\"text\": \"unterminated \xff\r";
    let mut shard = rejected1.to_vec();
    shard.push(b'\n');
    shard.extend_from_slice(good);
    shard.extend_from_slice(rejected2);
    shard.push(b'\n');
    t.write("in/a.jsonl", &shard);
    t.clean(&t.join("in"), &["--out", "out", "--rejects", "rejects.jsonl"]).expect(1);
    let out = fs::read(t.join("out/a.jsonl")).unwrap();
    assert!(
        out.windows(7).any(|w| w == b"\xff\xfe bad\""),
        "id kept byte for byte: {:?}",
        String::from_utf8_lossy(&out)
    );
    let mut want = rejected1.to_vec();
    want.push(b'\n');
    want.extend_from_slice(rejected2);
    want.push(b'\n');
    assert_eq!(fs::read(t.join("rejects.jsonl")).unwrap(), want, "rejected lines exactly as read");
}

/// Item 7, in place: the shard is the only copy of a rejected line, so it
/// stays there, exactly as read (and goes to `--rejects` too).
#[test]
fn in_place_keeps_rejected_lines_in_the_shard() {
    let t = TestDir::new();
    let bad = b"{\"text\": \"unterminated \xff\r";
    let mut shard = format!("{}\n", json!({"text": "A paragraph long enough to count as news."})).into_bytes();
    shard.extend_from_slice(bad);
    shard.push(b'\n');
    let path = t.write("a.jsonl", &shard);
    t.clean(&path, &["--in-place", "--rejects", "rejects.jsonl"]).expect(1);
    let after = fs::read(&path).unwrap();
    assert!(after.ends_with(&[&bad[..], b"\n"].concat()), "{:?}", String::from_utf8_lossy(&after));
    assert_eq!(fs::read(t.join("rejects.jsonl")).unwrap(), [&bad[..], b"\n"].concat());
}

/// Item 8: a stderr that cannot be written does not stop the job.
#[test]
fn a_broken_stderr_does_not_cost_the_job() {
    let t = TestDir::new();
    t.write("in/a.txt", "A paragraph long enough to count as news.\n");
    symlink(t.join("nowhere"), t.join("in/dangling.txt")).unwrap(); // a message on stderr
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = Command::new(BIN)
        .args(["clean", "in", "--out", "o", "--report", "r.json"])
        .current_dir(t.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(writer)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "no panic (101)");
    assert!(t.join("o/a.txt").exists());
    read_report(&t.join("r.json"));
}

/// Item 9: a closed stdout is never reported as success.
#[test]
fn a_closed_stdout_is_never_a_success() {
    let t = TestDir::new();
    let text = t.write("a.txt", "A paragraph long enough to count as news.\n");
    let shard = t.write("all.jsonl", records(20000));
    for (input, flags) in [(&text, vec!["--report", "r1.json"]), (&shard, vec!["--report", "r2.json", "--index", "ix"])]
    {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(BIN)
            .arg("clean")
            .arg(input)
            .args(&flags)
            .current_dir(t.path())
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{}: {stderr}", input.display());
        assert!(stderr.contains("the output is incomplete"), "{stderr}");
    }
}

/// Item 10: a lone surrogate escape is named as what it is.
#[test]
fn a_lone_surrogate_is_named() {
    let t = TestDir::new();
    let shard = "{\"text\":\"A paragraph long enough to count as news.\"}\n{\"text\":\"bad \\ud800 here\"}\n";
    let o = t.cmd(["clean", "-", "--format", "jsonl", "-q"]).stdin(shard).expect(1);
    o.stderr_has("<stdin>:2").stderr_has("\\ud800").stderr_has("lone UTF-16 surrogate");
    assert!(!o.stderr_str().contains("is not a string"), "{}", o.stderr_str());
}

/// Item 11: report rows are in corpus order, failed inputs included.
#[test]
fn report_rows_are_in_corpus_order_when_inputs_fail() {
    let t = TestDir::new();
    t.write("in/001.txt", "First article, long enough to count.\n");
    t.write("in/002-bin.txt", b"binary\0file\n");
    t.write("in/003.txt", "Third article, long enough to count.\n");
    symlink(t.join("nowhere"), t.join("in/0025-dangling.txt")).unwrap();
    mkfifo(&t.join("in/004-fifo"));
    t.write("in/sub/005.txt", "Fifth article, long enough to count.\n");
    t.clean(&t.join("in"), &["--out", "out", "--report", "r.json", "-q"]).expect(1);
    let report = read_report(&t.join("r.json"));
    let paths: Vec<&str> = report["files"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert_eq!(paths.len(), 6);
}

/// Item 12: stale temporaries of a killed run are removed by the next one,
/// beside JSONL shard outputs and side files; a live process's are kept.
#[test]
fn stale_temporaries_are_removed_by_the_next_run() {
    let t = TestDir::new();
    t.write("in/a.jsonl", records(10));
    t.write("in/t/b.txt", "A text file among the shards, long enough.\n");
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!(".newsdedup-{dead}-1.tmp");
    let live = format!(".newsdedup-{}-1.tmp", std::process::id());
    for dir in ["out", "side", "in"] {
        t.write(&format!("{dir}/{stale}"), "left by a SIGKILL");
        t.write(&format!("{dir}/{live}"), "a concurrent run's file in flight");
    }
    t.clean(&t.join("in"), &["--out", "out", "--report", "side/r.json", "--explain", "side/e.jsonl", "-q"]).expect(0);
    t.clean(&t.join("in"), &["--in-place", "-q"]).expect(0);
    for dir in ["out", "side", "in"] {
        assert!(!t.join(dir).join(&stale).exists(), "{dir}: stale temporary left behind");
        assert!(t.join(dir).join(&live).exists(), "{dir}: a live process's temporary was removed");
    }
}

/// Item 13: a refused run leaves no empty `--out` folder.
#[test]
fn a_refused_run_leaves_no_out_folder() {
    let t = TestDir::new();
    t.write("in/a.txt", "A paragraph long enough to count as news.\n");
    t.clean(&t.join("in"), &["--out", "new/out", "--report", "in/r.json"]).expect(2).stderr_has("--report");
    assert!(!t.join("new").exists(), "refused, yet --out was created");
    t.clean(&t.join("in"), &["--out", "new/out", "--index", "ix", "--scope", "document"]).expect(2);
    assert!(!t.join("new").exists(), "refused, yet --out was created");
}

/// A symlink named as the input is the user's file: it is read (not passed
/// over with exit 0 and nothing written), and `--in-place` refuses it
/// rather than replace the link with a regular file and leave its target
/// unchanged.
#[test]
fn a_symlinked_input_file_is_read_and_in_place_keeps_the_link() {
    let t = TestDir::new();
    let para = "A paragraph long enough to be news on its own, written twice in one file.";
    t.write("real/a.txt", format!("{para}\n{para}\n"));
    symlink(t.join("real/a.txt"), t.join("link.txt")).unwrap();
    t.clean(&t.join("link.txt"), &["-q"]).expect(0).stdout_is(format!("{para}\n").as_bytes());
    t.clean(&t.join("link.txt"), &["--in-place", "-q"]).expect(2).stderr_has("symbolic link");
    assert!(fs::symlink_metadata(t.join("link.txt")).unwrap().file_type().is_symlink(), "the link was replaced");
    assert_eq!(fs::read_to_string(t.join("real/a.txt")).unwrap(), format!("{para}\n{para}\n"));
}
