"""Helpers of the scale-out tests (test_scale_*.py): corpora of JSONL shards,
the single-node run and the driver run, and their comparison."""

import gzip
import json
import os
import random
import re
import subprocess
from pathlib import Path

from conftest import REPO, cli_path, tree_files

FIXTURES = REPO / "fixtures"
BBC = REPO.parent / "shared" / "corpora" / "bbc-news"
# Report fields that describe the run, not the data (the contract lets them differ).
VOLATILE = re.compile(rb'^\s*"(elapsed_seconds|mb_per_second|threads)": .*\n', re.M)


def single_node(inputs, out: Path, *options, index=None, batch=None):
    """``newsdedup clean INPUTS --out OUT`` with explain, report and rejects
    beside OUT; returns the result of :func:`outputs`."""
    side = out.parent / (out.name + ".side")
    side.mkdir(parents=True)
    args = [str(cli_path()), "clean", *map(str, inputs), "--out", str(out), *map(str, options), "-q",
            "--explain", str(side / "explain.jsonl"), "--report", str(side / "report.json"),
            "--rejects", str(side / "rejects.jsonl")]
    if index is not None:
        args += ["--index", str(index)]
    if batch is not None:
        args += ["--batch", batch]
    done = subprocess.run(args, capture_output=True)
    assert done.returncode in (0, 1), done.stderr.decode(errors="replace")
    return outputs(out, side)


def scale(inputs, out: Path, *options, engine="duckdb", spark=None, **kw):
    """The driver (``newsdedup.spark.clean``) on the same inputs and options."""
    from newsdedup import spark as driver

    side = out.parent / (out.name + ".side")
    side.mkdir(parents=True)
    driver.clean([*map(str, inputs), *map(str, options)], str(out), engine=engine, spark=spark,
                 explain=str(side / "explain.jsonl"), report=str(side / "report.json"),
                 rejects=str(side / "rejects.jsonl"), **kw)
    return outputs(out, side)


def outputs(out: Path, side: Path) -> dict:
    """The output tree ({rel: bytes}), explain and rejects bytes, and the
    report bytes without its volatile fields."""
    tree = {str(p.relative_to(out)): p.read_bytes() for p in tree_files(out)} if out.exists() else {}
    read = lambda name: (side / name).read_bytes() if (side / name).exists() else None  # noqa: E731
    report = read("report.json")
    return {
        "tree": tree,
        "explain": read("explain.jsonl"),
        "rejects": read("rejects.jsonl"),
        "report": VOLATILE.sub(b"", report) if report is not None else None,
    }


def assert_same(got: dict, want: dict) -> None:
    assert sorted(got["tree"]) == sorted(want["tree"])
    for rel in want["tree"]:
        assert got["tree"][rel] == want["tree"][rel], rel
    assert got["explain"] == want["explain"]
    assert got["rejects"] == want["rejects"]
    assert got["report"] == want["report"]


def jsonl_shards(src_jsonl: Path, root: Path, shards: int, seed: int) -> Path:
    """Splits a generated JSONL corpus into ``shards`` files under ``root``
    (every third gzip-compressed), adding cross-shard exact duplicate records,
    doubled articles (a body pasted twice) and repeats of earlier paragraphs
    in later shards. Returns root."""
    rnd = random.Random(seed)
    records = [json.loads(line) for line in src_jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
    root.mkdir(parents=True)
    per = max(1, len(records) // shards)
    chunks = [records[i * per:(i + 1) * per] for i in range(shards - 1)] + [records[(shards - 1) * per:]]
    seen = []
    for r, chunk in enumerate(chunks):
        out = []
        for rec in chunk:
            out.append(rec)
            if seen and rnd.random() < 0.05:  # an exact duplicate of an earlier shard's record
                dup = dict(rnd.choice(seen))
                dup["id"] = f"{dup['id']}-copy-{r}"
                out.append(dup)
            if rnd.random() < 0.03:  # a doubled article
                out.append({"id": f"{rec['id']}-doubled", "text": rec["text"] + "\n\n" + rec["text"]})
            if seen and rnd.random() < 0.05:  # a paragraph of an earlier shard in a new story
                para = rnd.choice(rnd.choice(seen)["text"].split("\n"))
                out.append({"id": f"{rec['id']}-quote", "text": rec["text"].split("\n")[0] + "\n" + para})
        seen.extend(chunk)
        data = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in out).encode()
        name = root / f"part-{r:03d}.jsonl"
        if r % 3 == 2:
            name.with_suffix(".jsonl.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            name.write_bytes(data)
    # A damaged record among good ones: rejected by both runs (with its line).
    with open(root / "part-000.jsonl", "ab") as f:
        f.write(b'{"id": "broken", "text": "unterminated\n{"id": "after-broken", "text": "A record after the damage."}\n')
    return root


def fixtures_tree(root: Path) -> Path:
    """Every fixture input as one tree (root/<case>/...), so that one run sees
    repeats across cases too."""
    import shutil

    for case in sorted(p.name for p in FIXTURES.iterdir() if (p / "input").is_dir()):
        if case == "emit-original":
            continue  # its own --emit option
        shutil.copytree(FIXTURES / case / "input", root / case)
    return root


def env_has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def except_both_ways(a, b):
    """The rows of drop list folder ``a`` not in ``b``, and of ``b`` not in
    ``a`` (DuckDB ``EXCEPT ALL``; the partition column compared too)."""
    import duckdb

    def source(path):
        files = [str(p) for p in Path(path).rglob("*.parquet")]
        if not files:
            return ("SELECT CAST(NULL AS BIGINT) pos, CAST(NULL AS BIGINT) first_pos, CAST(NULL AS BIGINT) first_doc, "
                    "NULL::VARCHAR first_file, CAST(NULL AS BIGINT) first_line, NULL::VARCHAR first_id, "
                    "CAST(NULL AS BIGINT) anchor, NULL::VARCHAR batch, CAST(NULL AS BIGINT) shard WHERE false")
        return (f"SELECT pos, first_pos, first_doc, first_file, first_line, first_id, anchor, batch, "
                f"CAST(shard AS BIGINT) AS shard FROM read_parquet({files!r}, hive_partitioning = true)")

    a_not_b = duckdb.sql(f"{source(a)} EXCEPT ALL {source(b)}").fetchall()
    b_not_a = duckdb.sql(f"{source(b)} EXCEPT ALL {source(a)}").fetchall()
    return a_not_b, b_not_a
