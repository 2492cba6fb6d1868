"""The scale-out driver against the single-node CLI (issue 16): the output
tree, explain file, rejects and report (minus elapsed_seconds, mb_per_second,
threads) byte-identical, on Spark local[2] and on DuckDB; the drop lists of
both engines equal; day 1 then day 2 with the cluster index equal to the
single-node days with --index; a task whose first attempt fails gives the
clean run's result. The Spark runs share one session (conftest.spark) and are
kept few: each costs a few seconds of JVM work."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, cli_path
from scale_util import BBC, assert_same, except_both_ways, fixtures_tree, jsonl_shards, scale, single_node

pytest.importorskip("duckdb", reason="duckdb is not installed (pip install duckdb)")
pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install pyarrow)")

FIXTURES = REPO / "fixtures"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "input").is_dir())


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Generated JSONL shards (some .gz) with cross-shard repeats, doubled
    articles, exact duplicates and a damaged record, plus a text tree."""
    root = tmp_path_factory.mktemp("gen")
    subprocess.run([sys.executable, str(REPO / "benches" / "gencorpus.py"), str(root / "src"), "--mb", "1",
                    "--seed", "16"], check=True, capture_output=True)
    jsonl_shards(root / "src" / "big.jsonl", root / "shards", shards=6, seed=16)
    return root


@pytest.mark.parametrize("case", CASES)
def test_every_fixture_duckdb_equals_single_node(case, tmp_path):
    # Every file its own shard (--shard-bytes 1): every repeat across files
    # goes through the drop list.
    emit = ["--emit", "original"] if case == "emit-original" else []
    src = FIXTURES / case / "input"
    want = single_node([src], tmp_path / "want", *emit)
    got = scale([src], tmp_path / "got", *emit, engine="duckdb", shard_bytes=1)
    assert_same(got, want)
    assert got["tree"] == {str(p.relative_to(FIXTURES / case / "expected")): p.read_bytes()
                           for p in (FIXTURES / case / "expected").rglob("*") if p.is_file()}


def test_fixtures_tree_spark_equals_single_node_and_duckdb(tmp_path, spark):
    src = fixtures_tree(tmp_path / "fixtures")
    want = single_node([src], tmp_path / "want")
    got = scale([src], tmp_path / "spark", engine="spark", spark=spark, shard_bytes=2000,
                work=str(tmp_path / "w-spark"), keep_work=True)
    assert_same(got, want)
    duck = scale([src], tmp_path / "duck", engine="duckdb", shard_bytes=2000, work=str(tmp_path / "w-duck"),
                 keep_work=True)
    assert_same(duck, want)
    manifest = json.loads((tmp_path / "w-spark" / "manifest.json").read_text())
    assert len(manifest["shards"]) > 5
    assert manifest["options"][-4:-2] == ["--threads", "1"]  # one task per core: one Rust thread per task
    assert except_both_ways(tmp_path / "w-spark" / "drops", tmp_path / "w-duck" / "drops") == ([], [])


def test_generated_jsonl_shards_spark_and_duckdb_equal_single_node(generated, tmp_path, spark):
    src = generated / "shards"
    opts = ["--id-field", "id"]
    want = single_node([src], tmp_path / "want", *opts)
    assert b"across-documents" in want["explain"] and b"duplicate-document" in want["explain"]
    assert json.loads(want["report"])["totals"]["records_rejected"] == 1
    got = scale([src], tmp_path / "spark", *opts, engine="spark", spark=spark, work=str(tmp_path / "w-spark"),
                keep_work=True)
    assert_same(got, want)
    duck = scale([src], tmp_path / "duck", *opts, engine="duckdb", work=str(tmp_path / "w-duck"), keep_work=True)
    assert_same(duck, want)
    a_not_b, b_not_a = except_both_ways(tmp_path / "w-spark" / "drops", tmp_path / "w-duck" / "drops")
    assert (a_not_b, b_not_a) == ([], [])
    # The drop list is not trivially empty: the shards repeat each other.
    assert any((tmp_path / "w-duck" / "drops").rglob("*.parquet"))


def test_generated_text_tree_duckdb_equals_single_node(generated, tmp_path):
    src = generated / "src" / "tree"
    want = single_node([src], tmp_path / "want")
    got = scale([src], tmp_path / "got", engine="duckdb", shard_bytes=64 * 1024)
    assert_same(got, want)


@pytest.mark.skipif(not BBC.is_dir(), reason="../shared/corpora/bbc-news is absent")
def test_bbc_spark_equals_single_node(tmp_path, spark):
    want = single_node([BBC], tmp_path / "want")
    got = scale([BBC], tmp_path / "got", engine="spark", spark=spark, shard_bytes=256 * 1024)
    assert_same(got, want)


def split_days(src, root):
    """Day 1 and day 2 as two folders: the shards in two halves."""
    files = sorted(p for p in src.iterdir() if p.is_file())
    for day, part in (("day1", files[: len(files) // 2]), ("day2", files[len(files) // 2:])):
        (root / day).mkdir(parents=True)
        for p in part:
            shutil.copy(p, root / day / p.name)
    return root / "day1", root / "day2"


def test_days_with_the_cluster_index_equal_single_node_days(generated, tmp_path, spark):
    day1, day2 = split_days(generated / "shards", tmp_path / "in")
    single_ix = tmp_path / "single-ix"
    want1 = single_node([day1], tmp_path / "want1", index=single_ix)
    want2 = single_node([day2], tmp_path / "want2", index=single_ix)
    cluster = str(tmp_path / "cluster-ix")
    got1 = scale([day1], tmp_path / "got1", engine="duckdb", index=cluster)
    got2 = scale([day2], tmp_path / "got2", engine="spark", spark=spark, index=cluster)
    assert_same(got1, want1)
    assert_same(got2, want2)
    assert b'"first_batch"' in want2["explain"]  # day 2 does drop what day 1 kept
    # A retry of day 2 (a listed batch) reproduces day 2.
    again = scale([day2], tmp_path / "again2", engine="duckdb", index=cluster)
    assert_same(again, want2)
    manifest = json.loads((tmp_path / "cluster-ix" / "manifest.json").read_text())
    assert [b["name"] for b in manifest["batches"]] == [os.path.realpath(day1), os.path.realpath(day2)]
    # One run over both days keeps the same text.
    both = scale([day1, day2], tmp_path / "both", engine="duckdb")
    days = {f"day1/{k}": v for k, v in got1["tree"].items()} | {f"day2/{k}": v for k, v in got2["tree"].items()}
    assert both["tree"] == days


def test_index_export_then_cluster_day2_equals_single_node_day2(generated, tmp_path):
    from newsdedup import _core

    day1, day2 = split_days(generated / "shards", tmp_path / "in")
    single_ix = tmp_path / "single-ix"
    single_node([day1], tmp_path / "want1", index=single_ix)
    shutil.copytree(single_ix, tmp_path / "single-ix-day1")
    want2 = single_node([day2], tmp_path / "want2", index=single_ix)
    cluster = tmp_path / "cluster-ix"
    _core.index_export(str(tmp_path / "single-ix-day1"), str(cluster))
    got2 = scale([day2], tmp_path / "got2", engine="duckdb", index=str(cluster))
    assert_same(got2, want2)
    # And back: the cluster index after day 2, imported, answers as the single-node one.
    back = tmp_path / "back-ix"
    _core.index_import(str(cluster), str(back))
    day3 = tmp_path / "in" / "day3"
    shutil.copytree(day2, day3)
    assert_same(single_node([day3], tmp_path / "via-back", index=back),
                single_node([day3], tmp_path / "via-single", index=single_ix))


def test_a_failed_first_attempt_equals_a_clean_run(generated, tmp_path, spark, monkeypatch):
    from newsdedup import spark as driver

    src = generated / "shards"
    clean = scale([src], tmp_path / "clean", engine="spark", spark=spark)
    monkeypatch.setenv(driver.FAIL_ENV, "apply:1")
    work = tmp_path / "w-apply"
    retried = scale([src], tmp_path / "apply", engine="spark", spark=spark, work=str(work), keep_work=True)
    assert (work / "injected-apply-000001").exists()  # the first attempt did fail
    assert_same(retried, clean)
    monkeypatch.setenv(driver.FAIL_ENV, "keys:*")
    work = tmp_path / "w-keys"
    retried = scale([src], tmp_path / "keys", engine="spark", spark=spark, work=str(work), keep_work=True)
    assert (work / "injected-keys-000000").exists() and (work / "injected-keys-000002").exists()
    assert_same(retried, clean)


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    from newsdedup import spark as driver

    code = driver.main(["clean", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--engine", "duckdb"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(tmp_path / "nowhere") in err


def test_console_script_runs(generated, tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "newsdedup-spark")
    src = generated / "shards"
    want = single_node([src], tmp_path / "want")
    cli_code = subprocess.run([str(cli_path()), "clean", str(src), "--out", str(tmp_path / "cli"), "-q"]).returncode
    done = subprocess.run([script, "clean", str(src), "--out", str(tmp_path / "got"), "--engine", "duckdb",
                           "--report", str(tmp_path / "got.side-report.json")], capture_output=True)
    # 1 as the CLI: the corpus holds a damaged record (rejected, reported).
    assert done.returncode == cli_code == 1, done.stderr.decode()
    assert done.stdout == b""  # stdout is data only
    assert b"newsdedup-spark:" in done.stderr
    got = {str(p.relative_to(tmp_path / "got")): p.read_bytes() for p in (tmp_path / "got").rglob("*") if p.is_file()}
    assert got == want["tree"]
    assert not (tmp_path / "got.newsdedup-work").exists()  # the working folder is removed


def test_a_reused_work_folder_commits_only_this_runs_keys(generated, tmp_path):
    """Run 1 leaves 3 shards' parts in --work; run 2 (2 shards, --index) reuses
    it: the index holds exactly the keys single-node --index records, so a
    later day still drops (and keeps) what the single-node days do."""
    files = sorted(p for p in (generated / "shards").iterdir() if p.is_file())
    for day, part in (("a", files[:3]), ("b", files[3:5]), ("c", files[5:])):
        (tmp_path / day).mkdir()
        for p in part:
            shutil.copy(p, tmp_path / day / p.name)
    work = str(tmp_path / "work")
    scale([tmp_path / "a"], tmp_path / "run1", engine="duckdb", work=work, keep_work=True, shard_bytes=1)
    cluster = tmp_path / "cluster-ix"
    single_ix = tmp_path / "single-ix"
    got_b = scale([tmp_path / "b"], tmp_path / "run2", engine="duckdb", work=work, keep_work=True, shard_bytes=1,
                  index=str(cluster))
    want_b = single_node([tmp_path / "b"], tmp_path / "want-b", index=single_ix)
    assert_same(got_b, want_b)
    got_c = scale([tmp_path / "a", tmp_path / "c"], tmp_path / "run3", engine="duckdb", index=str(cluster))
    want_c = single_node([tmp_path / "a", tmp_path / "c"], tmp_path / "want-c", index=single_ix)
    assert_same(got_c, want_c)
    # The same keys per batch as the single-node index holds (exported to the cluster form).
    from newsdedup import _core
    _core.index_export(str(single_ix), str(tmp_path / "exported"))
    keys = lambda ix: [(b["seq"], b["keys"]) for b in json.loads((ix / "manifest.json").read_text())["batches"]]  # noqa: E731
    assert keys(cluster) == keys(tmp_path / "exported")


def test_a_retried_day_that_gained_a_file_records_its_keys(generated, tmp_path):
    """day1, day2, day2 again with one more file, then day3 repeating that
    file: the same trees and explain lines as the single-node --index days."""
    from newsdedup import _core

    files = sorted(p for p in (generated / "shards").iterdir() if p.is_file())
    for day, part in (("day1", files[:2]), ("day2", files[2:4]), ("day3", files[5:])):
        (tmp_path / day).mkdir()
        for p in part:
            shutil.copy(p, tmp_path / day / p.name)
    single_ix, cluster = tmp_path / "single-ix", tmp_path / "cluster-ix"
    runs = []

    def day(name, label):
        want = single_node([tmp_path / name], tmp_path / f"want-{label}", index=single_ix)
        got = scale([tmp_path / name], tmp_path / f"got-{label}", engine="duckdb", index=str(cluster))
        assert_same(got, want)
        runs.append(want)

    day("day1", "1")
    day("day2", "2")
    shutil.copy(files[4], tmp_path / "day2" / files[4].name)
    day("day2", "2-again")
    shutil.copy(files[4], tmp_path / "day3" / ("copy-" + files[4].name))
    day("day3", "3")
    assert b'"first_batch":"' + str(os.path.realpath(tmp_path / "day2")).encode() in runs[-1]["explain"]
    manifest = json.loads((cluster / "manifest.json").read_text())
    day2 = os.path.realpath(tmp_path / "day2")
    assert [b["name"] for b in manifest["batches"]].count(day2) == 2  # the retry's gained keys: a second entry
    # Imported, the cluster index answers day 4 (day 3 again) as the single-node one.
    _core.index_import(str(cluster), str(tmp_path / "back"))
    assert_same(single_node([tmp_path / "day3"], tmp_path / "via-back", index=tmp_path / "back"),
                single_node([tmp_path / "day3"], tmp_path / "via-single", index=single_ix))


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_an_empty_input_folder_gives_an_empty_run(tmp_path, engine, request):
    """As `newsdedup clean` on an empty folder: exit 0 (no error), an empty
    OUT, the same report/explain/rejects, and a 0-key batch in the index."""
    spark = request.getfixturevalue("spark") if engine == "spark" else None
    (tmp_path / "empty").mkdir()
    want = single_node([tmp_path / "empty"], tmp_path / "want", index=tmp_path / "single-ix")
    got = scale([tmp_path / "empty"], tmp_path / "got", engine=engine, spark=spark, index=str(tmp_path / "ix"))
    assert (tmp_path / "got").is_dir() and got["tree"] == {}
    assert_same(got, want)
    assert want["report"] is not None and b'"documents_read": 0' in want["report"]
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert [(b["seq"], b["keys"]) for b in manifest["batches"]] == [(0, 0)]


def test_a_failed_run_removes_the_working_folder_it_created(tmp_path, capsys):
    from newsdedup import spark as driver

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.jsonl").write_text("{not json\n")
    code = driver.main(["clean", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--engine", "duckdb",
                        "--input-format", "nope"])
    assert code == 2, capsys.readouterr().err
    assert not (tmp_path / "o.newsdedup-work").exists()
    # A --work given (existing) is left in place by a failed run.
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "mine").write_text("x")
    driver.main(["clean", str(tmp_path / "in"), "--out", str(tmp_path / "o2"), "--engine", "duckdb",
                 "--work", str(tmp_path / "w"), "--input-format", "nope"])
    assert (tmp_path / "w" / "mine").exists()


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_an_interrupted_run_exits_130_and_removes_its_working_folder(tmp_path, how):
    """The keys task signals the driver (as Ctrl-C or a kill would mid-run):
    exit 130, one line on stderr, no traceback, no working folder left."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("one paragraph\n")
    code = f"""
import os, signal, sys, time
from newsdedup import spark as driver
real = driver.keys_task
def keys_task(work, rank, fail=None):
    summary = real(work, rank, fail)
    os.kill(os.getpid(), signal.{how})
    time.sleep(5)
    return summary
driver.keys_task = keys_task
sys.exit(driver.main(sys.argv[1:]))
"""
    done = subprocess.run([sys.executable, "-c", code, "clean", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
                           "--engine", "duckdb"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == ["newsdedup-spark: interrupted"], done.stderr
    assert not (tmp_path / "o.newsdedup-work").exists()


@pytest.mark.parametrize("quiet", ["-q", "--quiet"])
def test_quiet_silences_the_summary_line(tmp_path, capsys, quiet):
    from newsdedup import spark as driver

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("one paragraph\n\nanother one\n")
    code = driver.main(["clean", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--engine", "duckdb", quiet])
    assert code == 0
    assert capsys.readouterr().err == ""
    assert (tmp_path / "o" / "a.txt").read_text() == "one paragraph\n\nanother one\n"
    code = driver.main(["clean", str(tmp_path / "in"), "--out", str(tmp_path / "o2"), "--engine", "duckdb"])
    assert "newsdedup-spark: 1 documents" in capsys.readouterr().err
