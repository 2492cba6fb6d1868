"""The decide step's SQL on synthetic keys (the contract's Parquet files,
written with pyarrow): DuckDB equals a Python reference of the rule, Spark
equals DuckDB (EXCEPT both ways empty); the cluster index's batches and
commits; the driver's command-line errors."""

import json
import os
import shutil
import random
import sys

import pytest

from newsdedup import _cluster_index, _decide
from newsdedup import spark as driver
from scale_util import except_both_ways

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed (pip install duckdb)")

I64 = pa.int64()


def synth_work(work, shards=5, docs=40, seed=1):
    """keys/docs parts as the keys step writes them: per document one
    document-key row then its paragraph rows; keys drawn from a small pool so
    that they repeat within and across shards, with 64-bit halves of both
    signs."""
    rnd = random.Random(seed)
    pool = [(rnd.randint(-2**63, 2**63 - 1), rnd.randint(-2**63, 2**63 - 1)) for _ in range(60)]
    for d in ("keys", "docs"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    rows, docrows = [], []
    for r in range(shards):
        ks = {"k_hi": [], "k_lo": [], "pos": [], "doc": []}
        ds = {"doc": [], "file": [], "line": [], "id": []}
        seq = 0
        for i in range(docs):
            n = rnd.randint(0, 4)
            if n == 0:
                continue  # a document without paragraphs writes no rows
            doc = (r << 32) | seq
            ds["doc"].append(doc)
            ds["file"].append(f"shard-{r}.jsonl")
            ds["line"].append(i + 1)
            ds["id"].append(None if i % 3 else f"o'id-{r}-{i}")
            docrows.append((doc, f"shard-{r}.jsonl", i + 1, None if i % 3 else f"o'id-{r}-{i}"))
            for j in range(n + 1):
                k = rnd.choice(pool[:8]) if j == 0 else rnd.choice(pool)
                ks["k_hi"].append(k[0])
                ks["k_lo"].append(k[1])
                ks["pos"].append((r << 32) | seq)
                ks["doc"].append(doc)
                rows.append((k, (r << 32) | seq, doc))
                seq += 1
        pq.write_table(pa.table(ks, schema=pa.schema([(c, I64) for c in ks])), f"{work}/keys/part-{r:06d}.parquet")
        schema = pa.schema([("doc", I64), ("file", pa.string()), ("line", I64), ("id", pa.string())])
        pq.write_table(pa.table(ds, schema=schema), f"{work}/docs/part-{r:06d}.parquet")
    return rows, {d[0]: d for d in docrows}, pool


def write_batch(path, keys):
    t = {"k_hi": [k[0] for k, _ in keys], "k_lo": [k[1] for k, _ in keys], "anchor": [a for _, a in keys]}
    pq.write_table(pa.table(t, schema=pa.schema([(c, I64) for c in t])), path)


def reference(rows, docs, batches):
    """The rule in Python: per key the first row (index batches first, in
    seq order), and every later row of another shard than that first one."""
    first = {}
    for seq, name, keys in batches:
        for k, anchor in keys:
            first.setdefault(k, (-(seq + 1), None, anchor, name))
    for k, pos, doc in sorted(rows, key=lambda x: x[1]):
        first.setdefault(k, (pos, doc, None, None))
    out = []
    for k, pos, _doc in rows:
        fpos, fdoc, anchor, name = first[k]
        if pos > fpos and (fpos < 0 or fpos >> 32 != pos >> 32):
            d = docs.get(fdoc) if fpos >= 0 else None
            out.append((pos, fpos, d[1] if d else None, d[2] if d else None, d[3] if d else None, anchor, name))
    return sorted(out, key=repr)


def drops(work):
    files = [str(p) for p in sorted((__import__("pathlib").Path(work) / "drops").rglob("*.parquet"))]
    if not files:
        return []
    q = (f"SELECT pos, first_pos, first_file, first_line, first_id, anchor, batch, shard "
         f"FROM read_parquet({files!r}, hive_partitioning = true)")
    got = duckdb.sql(q).fetchall()
    for row in got:
        assert row[-1] == row[0] >> 32  # the partition is the row's shard
    return sorted((r[:-1] for r in got), key=repr)


def index_batches(tmp_path, pool):
    b0 = [(pool[0], 11), (pool[5], 12), (pool[20], -5)]
    b1 = [(pool[0], 99), (pool[30], 2**62)]  # pool[0] is first in batch 0: batch 1 never has it in practice
    write_batch(tmp_path / "b0.parquet", b0)
    write_batch(tmp_path / "b1.parquet", b1[1:])
    return [(0, "day one", b0), (1, "day\0two", b1[1:])]


@pytest.mark.parametrize("with_index", [False, True])
def test_duckdb_drop_list_equals_the_reference(tmp_path, with_index):
    work = str(tmp_path / "work")
    rows, docs, pool = synth_work(work)
    batches = index_batches(tmp_path, pool) if with_index else []
    files = [(s, n, str(tmp_path / f"b{s}.parquet")) for s, n, _ in batches]
    _decide.decide_duckdb(work, files)
    got = drops(work)
    assert got == reference(rows, docs, batches)
    assert got  # the synthetic keys do repeat across shards
    # A rerun replaces the drop list.
    _decide.decide_duckdb(work, files)
    assert drops(work) == got


def test_spark_drop_list_equals_duckdb(tmp_path, spark):
    work = str(tmp_path / "work")
    rows, docs, pool = synth_work(work, seed=3)
    batches = index_batches(tmp_path, pool)
    files = [(s, n, str(tmp_path / f"b{s}.parquet")) for s, n, _ in batches]
    _decide.decide_spark(spark, work, files, ranks=range(5))  # the parts of ranks 0..4, as the driver names them
    via_spark = drops(work)
    os.rename(os.path.join(work, "drops"), tmp_path / "spark-drops")
    _decide.decide_duckdb(work, files)
    assert via_spark == drops(work) == reference(rows, docs, batches)
    # The contract's check, in SQL: EXCEPT both ways is empty.
    assert except_both_ways(tmp_path / "spark-drops", os.path.join(work, "drops")) == ([], [])


def test_cluster_index_plan_commit_and_retry(tmp_path):
    root = str(tmp_path / "ix")
    work = tmp_path / "work"
    (work / "newkeys").mkdir(parents=True)
    write_batch(work / "newkeys" / "part-000001.parquet", [((3, 4), 7)])
    write_batch(work / "newkeys" / "part-000000.parquet", [((1, 2), 5), ((-1, -2), 6)])
    p = _cluster_index.plan(root, "day1")
    assert (p.seq, p.retry, p.earlier) == (0, False, [])
    with pytest.raises(_cluster_index.ClusterIndexError, match="in use by another run"):
        _cluster_index.plan(root, "day1")
    assert _cluster_index.commit(p, str(work), [0, 1])["keys"] == 3
    p.release()
    t = pq.read_table(os.path.join(root, "batch-000000.parquet")).to_pydict()
    assert t == {"k_hi": [1, -1, 3], "k_lo": [2, -2, 4], "anchor": [5, 6, 7]}  # rank order
    p2 = _cluster_index.plan(root, "day2")
    assert (p2.seq, p2.retry) == (1, False)
    assert [e[:2] for e in p2.earlier] == [(0, "day1")]
    _cluster_index.commit(p2, str(work), [0, 1])
    p2.release()
    # A retry of day1 reads nothing earlier and commits nothing.
    again = _cluster_index.plan(root, "day1")
    assert (again.seq, again.retry, again.earlier) == (0, True, [])
    before = open(os.path.join(root, "manifest.json")).read()
    assert _cluster_index.commit(again, str(work), [0, 1])["retry"] is True
    assert open(os.path.join(root, "manifest.json")).read() == before
    manifest = json.loads(before)
    assert [(b["seq"], b["name"], b["keys"]) for b in manifest["batches"]] == [(0, "day1", 3), (1, "day2", 3)]


def test_cluster_index_commit_reads_only_this_runs_ranks(tmp_path):
    """A stale part of an earlier run in a reused --work (rank 1 here) is not committed."""
    root = str(tmp_path / "ix")
    work = tmp_path / "work"
    (work / "newkeys").mkdir(parents=True)
    write_batch(work / "newkeys" / "part-000000.parquet", [((1, 2), 5)])
    write_batch(work / "newkeys" / "part-000001.parquet", [((3, 4), 7)])  # stale
    p = _cluster_index.plan(root, "day1")
    assert _cluster_index.commit(p, str(work), [0])["keys"] == 1
    p.release()
    t = pq.read_table(os.path.join(root, "batch-000000.parquet")).to_pydict()
    assert t == {"k_hi": [1], "k_lo": [2], "anchor": [5]}


def test_decide_reads_only_this_runs_ranks(tmp_path):
    """Decide with the run's ranks ignores a stale keys/docs part of another rank."""
    work = str(tmp_path / "work")
    synth_work(work, shards=3)
    _decide.decide_duckdb(work, [], ranks=[0, 1, 2])
    want = drops(work)
    # A stale rank-3 part of an earlier run repeating every key of rank 0 first... copied as rank 3.
    for step in ("keys", "docs"):
        src = os.path.join(work, step, "part-000000.parquet")
        shutil.copy(src, os.path.join(work, step, "part-000003.parquet"))
    _decide.decide_duckdb(work, [], ranks=[0, 1, 2])
    assert drops(work) == want


def test_cluster_index_refuses_a_single_node_index_and_a_missing_batch(tmp_path):
    single = tmp_path / "single"
    single.mkdir()
    (single / "MANIFEST").write_bytes(b"x")
    with pytest.raises(_cluster_index.ClusterIndexError, match="index export"):
        _cluster_index.plan(str(single), "b")
    ix = tmp_path / "ix"
    ix.mkdir()
    (ix / "manifest.json").write_text(json.dumps({"contract": 1, "batches": [
        {"seq": 0, "name": "a", "file": "batch-000000.parquet", "keys": 1}]}))
    with pytest.raises(_cluster_index.ClusterIndexError, match="batch-000000.parquet"):
        _cluster_index.plan(str(ix), "b")


def run_main(args, capsys):
    code = driver.main(args)
    return code, capsys.readouterr().err


def test_driver_usage_errors(tmp_path, capsys):
    code, err = run_main(["clean", str(tmp_path), "--engine", "flink", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "--engine flink: expected spark or duckdb" in err
    code, err = run_main(["clean", str(tmp_path)], capsys)
    assert code == 2 and "--out OUT is required" in err
    code, err = run_main(["clean", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "no INPUT given" in err
    code, err = run_main(["clean", str(tmp_path), "--out", str(tmp_path / "o"), "--shard-bytes", "lots"], capsys)
    assert code == 2 and "--shard-bytes lots: expected a whole number" in err
    code, err = run_main(["clean", str(tmp_path), "--out", str(tmp_path / "o"), "--master", "bogus"], capsys)
    assert code == 2 and "--master bogus" in err and "local[N]" in err
    code, err = run_main(["frobnicate"], capsys)
    assert code == 2 and "unknown command" in err


def test_threads_given_by_the_user_are_kept():
    assert driver._gives_threads(["in", "--threads", "3"]) and driver._gives_threads(["-j4"])
    assert driver._gives_threads(["--threads=2"]) and driver._gives_threads(["-j", "2"])
    assert not driver._gives_threads(["in", "--min-chars", "40"])


def test_driver_names_the_package_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "duckdb", None)  # import duckdb raises ImportError
    with pytest.raises(driver.DriverError, match="pip install duckdb"):
        driver.DuckdbEngine()
    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(driver.DriverError, match=r"pip install 'pyspark>=4'"):
        driver.start_spark("local[1]", [])
    monkeypatch.delitem(sys.modules, "pyspark")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    if driver._has_pyspark():
        with pytest.raises(driver.DriverError, match="openjdk-17-jre-headless"):
            driver.start_spark("local[1]", [])


@pytest.mark.parametrize("case", ["out-in-input", "out-is-input", "input-in-out", "default-work-in-input",
                                  "work-in-input", "work-is-a-file", "report-no-parent", "explain-is-a-dir",
                                  "timings-no-parent", "out-twice"])
def test_driver_refuses_bad_paths_before_any_work(tmp_path, capsys, case):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("one paragraph\n")
    (tmp_path / "afile").write_text("x")
    out = str(tmp_path / "out")
    extra = {
        "out-in-input": ["--out", str(src / "sub" / "o")],
        "out-is-input": ["--out", str(src)],
        "input-in-out": ["--out", str(tmp_path)],
        "default-work-in-input": ["--out", str(src / "sub")],  # also OUT inside: refused either way
        "work-in-input": ["--out", out, "--work", str(src / "w")],
        "work-is-a-file": ["--out", out, "--work", str(tmp_path / "afile")],
        "report-no-parent": ["--out", out, "--report", str(tmp_path / "nowhere" / "r.json")],
        "explain-is-a-dir": ["--out", out, "--explain", str(src / "sub")],
        "timings-no-parent": ["--out", out, "--timings", str(tmp_path / "nowhere" / "t.json")],
        "out-twice": ["--out", out, "--out", str(tmp_path / "other")],
    }[case]
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    code, err = run_main(["clean", str(src), *extra, "--engine", "duckdb"], capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing created
