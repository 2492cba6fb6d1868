//! Signals (issue 6): SIGINT and SIGTERM stop a run between files with exit
//! code 130 and a rerun completes; SIGKILL at any point leaves no partial
//! file under a final name. Runs the real binary on seeded corpora.

mod util;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use util::robust::*;

#[test]
fn sigint_and_sigterm_stop_between_files_with_130_and_a_rerun_completes() {
    let dir = tmp();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    corpus(&input, SIGNAL_CORPUS, 1);
    let (reference, _) = reference_run(&input, &dir.path().join("ref"));
    // Both runs write into the same --out: the second starts over a tree
    // that an interrupted run left.
    for (sig, name, at) in
        [(libc::SIGINT, "SIGINT", At::Writing(Duration::ZERO)), (libc::SIGTERM, "SIGTERM", At::Caught(libc::SIGTERM))]
    {
        let child = spawn_until(&input, &out, at);
        unsafe { libc::kill(child.id() as i32, sig) };
        // stderr is read while waiting: a child blocked on a full pipe
        // would otherwise never exit.
        let done = child.wait_with_output().unwrap();
        let (status, stderr) = (done.status, String::from_utf8_lossy(&done.stderr));
        // 130 also proves the signal came mid-run: a finished run exits 0.
        assert_eq!(status.code(), Some(130), "{name} at {at:?}: {status}\n{stderr}");
        assert!(stderr.contains("interrupted; the output is incomplete"), "{stderr}");
        // One line says so; the files not read after the stop are not listed.
        assert_eq!(stderr.matches("interrupted").count(), 1, "{name}: {stderr}");
        assert!(temps(&out).is_empty(), "{name}: temp files left: {:?}", temps(&out));
        let got = tree(&out);
        eprintln!("{name} at {at:?}: {} of {} files under their final name", got.len(), reference.len());
        assert_subset(&got, &reference, name);
    }
    clean_to(&input, &out, &["-j2"]).expect_code(0);
    assert!(tree(&out) == reference, "the rerun differs from the uninterrupted run");
}

#[test]
fn sigkill_at_any_point_leaves_no_partial_file_and_a_rerun_gives_the_same_tree() {
    let dir = tmp();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    let bytes = corpus(&input, SIGNAL_CORPUS, 2);
    let (reference, t) = reference_run(&input, &dir.path().join("ref"));
    eprintln!("corpus: {SIGNAL_CORPUS} files, {bytes} bytes; uninterrupted run {t:?}");
    let mut points: Vec<At> = [50, 150, 400].map(|ms| At::Start(Duration::from_millis(ms))).to_vec();
    points.extend([0, 30, 150, 400].map(|ms| At::Writing(Duration::from_millis(ms))));
    let mut while_writing = 0;
    // Killed again and again over the same --out, as a flaky job would be.
    // --out does not exist: each run builds it in a hidden folder beside it,
    // renamed to `out` when the run ends, so a killed run publishes nothing.
    for at in points {
        let mut child = spawn_until(&input, &out, at);
        let _ = child.kill();
        let status = child.wait().unwrap();
        let killed = status.signal() == Some(libc::SIGKILL);
        let stages = staged(&out);
        let in_stage: usize = stages.iter().map(|s| finals(s).len()).sum();
        eprintln!("kill at {at:?}: killed={killed}, {in_stage} of {} files in {stages:?}", reference.len());
        match killed {
            true => assert!(!out.exists(), "SIGKILL at {at:?}: a killed run published its --out"),
            false => assert!(tree(&out) == reference, "a run that finished before the kill differs"),
        }
        // The run started by removing the staging folders of those killed before.
        assert!(stages.len() <= 1, "SIGKILL at {at:?}: stale staging folders kept: {stages:?}");
        while_writing += usize::from(killed && in_stage > 0 && in_stage < reference.len());
    }
    assert!(while_writing > 0, "no kill landed while files were written; the corpus is too small here");
    clean_to(&input, &out, &["-j2"]).expect_code(0);
    assert!(tree(&out) == reference, "the rerun after SIGKILLs differs from the uninterrupted run");
    let hidden: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(hidden.iter().all(|n| !n.to_string_lossy().starts_with(".newsdedup-")), "left: {hidden:?}");
}

#[test]
fn sigkill_into_an_existing_out_leaves_no_partial_file_under_a_final_name() {
    let dir = tmp();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    corpus(&input, SIGNAL_CORPUS, 3);
    let (reference, _) = reference_run(&input, &dir.path().join("ref"));
    // An --out that exists is written in place, file by file.
    fs::create_dir(&out).unwrap();
    let mut while_writing = 0;
    for at in [0, 30, 150, 400].map(|ms| At::Writing(Duration::from_millis(ms))) {
        let mut child = spawn_until(&input, &out, at);
        let _ = child.kill();
        let status = child.wait().unwrap();
        let got = finals(&out);
        let killed = status.signal() == Some(libc::SIGKILL);
        eprintln!("kill at {at:?}: killed={killed}, {} of {} files", got.len(), reference.len());
        while_writing += usize::from(killed && !got.is_empty() && got.len() < reference.len());
        assert_subset(&got, &reference, &format!("SIGKILL at {at:?}"));
    }
    assert!(while_writing > 0, "no kill landed while files were written; the corpus is too small here");
    clean_to(&input, &out, &["-j2"]).expect_code(0);
    assert!(tree(&out) == reference, "the rerun after SIGKILLs differs from the uninterrupted run");
}
