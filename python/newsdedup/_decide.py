"""The decide step of the scale-out protocol: plain SQL, the same text on
Spark and on DuckDB (no user-defined function, so no Rust inside the engine).

Inputs (scale-out contract v1, README "Scale-out"): ``WORK/keys/*.parquet``
(``k_hi, k_lo, pos, doc``), ``WORK/docs/*.parquet`` (``doc, file, line, id``)
and the cluster index batches read for this run (``k_hi, k_lo, anchor`` per
batch file, with the batch's ``seq`` and ``name``). Output: the drop list
``WORK/drops/shard=R/*.parquet`` with ``pos, first_pos, first_doc,
first_file, first_line, first_id, anchor, batch`` and the partition column
``shard`` = ``pos >> 32``.

A key is decided by ``min(pos)`` over its rows: the index rows get negative
positions ``-(seq + 1)`` so that they always win, earlier batches first. Only
repeats whose first occurrence is in another shard or in the index are
listed; a repeat inside a shard is found by that shard's apply step, which
sees the shard in corpus order exactly as the single-node run does.

The one spelling that differs between the engines is how a Parquet file is
named in ``FROM`` (``read_parquet('…')`` against ``parquet.`…```): both take
globs. ``>>`` is an operator in both (DuckDB, Spark ≥ 4).
"""

from __future__ import annotations

import os
import shutil
from typing import Callable, Sequence

#: (seq, name, path) of an index batch file the decide step reads.
IndexBatch = "tuple[int, str, str]"

INT64_MIN = "-9223372036854775808"


def _quote(text: str) -> str:
    """A SQL string literal (both engines double the single quote)."""
    return "'" + text.replace("'", "''") + "'"


def duckdb_source(path) -> str:
    """A Parquet file (or glob, or list of files) as a DuckDB table expression."""
    if isinstance(path, list):
        return "read_parquet([" + ", ".join(_quote(p) for p in path) + "])"
    return f"read_parquet({_quote(path)})"


def _file_uri(path: str) -> str:
    """A local (shared) path as a ``file:`` URI: on a cluster whose default
    file system is HDFS, a bare path would name an HDFS file."""
    return "file://" + os.path.abspath(path)


def spark_source(path: str) -> str:
    """A Parquet file (or glob) as a Spark SQL table expression."""
    if "`" in path:
        raise ValueError(f"{path}: a path holding a backquote cannot be named in Spark SQL")
    return f"parquet.`{_file_uri(path)}`"


def _parts(work: str, step: str, ranks: Sequence[int] | None):
    """``WORK/STEP/part-{rank:06d}.parquet`` of exactly this run's ``ranks``
    (a stale part of an earlier run in a reused ``--work`` is never read);
    without ``ranks``, every part (a glob)."""
    if ranks is None:
        return os.path.join(work, step, "*.parquet")
    return [os.path.join(work, step, f"part-{rank:06d}.parquet") for rank in sorted(ranks)]


def decide_sql(
    work: str, batches: Sequence[tuple], source: Callable, ranks: Sequence[int] | None = None
) -> str:
    """The decide query over ``work`` (the keys and docs parts of ``ranks``)
    and the index ``batches`` (a sequence of ``(seq, name, path)``), naming
    files with ``source`` (a path, a glob or a list of paths)."""
    keys = source(_parts(work, "keys", ranks))
    docs = source(_parts(work, "docs", ranks))
    if batches:
        index_keys = "\n    UNION ALL\n    ".join(
            f"SELECT k_hi, k_lo, CAST({-(seq + 1)} AS BIGINT) AS pos, CAST(anchor AS BIGINT) AS anchor "
            f"FROM {source(path)}"
            for seq, _name, path in batches
        )
        names = "\n    UNION ALL\n    ".join(
            f"SELECT CAST({seq} AS BIGINT) AS seq, CAST({_quote(name)} AS STRING) AS name" for seq, name, _ in batches
        )
    else:
        index_keys = (
            "SELECT CAST(NULL AS BIGINT) AS k_hi, CAST(NULL AS BIGINT) AS k_lo, "
            "CAST(NULL AS BIGINT) AS pos, CAST(NULL AS BIGINT) AS anchor WHERE 1 = 0"
        )
        names = "SELECT CAST(NULL AS BIGINT) AS seq, CAST(NULL AS STRING) AS name WHERE 1 = 0"
    return f"""
WITH keys AS (SELECT k_hi, k_lo, pos, doc FROM {keys}),
docs AS (SELECT doc, file, line, id FROM {docs}),
index_keys AS (
    {index_keys}),
batches AS (
    {names}),
all_rows AS (
  SELECT k_hi, k_lo, pos, doc, CAST(NULL AS BIGINT) AS anchor FROM keys
  UNION ALL
  SELECT k_hi, k_lo, pos, CAST({INT64_MIN} AS BIGINT) AS doc, anchor FROM index_keys),
firsts AS (
  SELECT k_hi, k_lo, min(pos) AS first_pos, min(doc) AS first_doc, max(anchor) AS anchor
  FROM all_rows GROUP BY k_hi, k_lo HAVING count(*) > 1)
SELECT k.pos AS pos, f.first_pos AS first_pos, f.first_doc AS first_doc,
       d.file AS first_file, d.line AS first_line, d.id AS first_id,
       f.anchor AS anchor, b.name AS batch, CAST(k.pos >> 32 AS INT) AS shard
FROM keys k JOIN firsts f ON k.k_hi = f.k_hi AND k.k_lo = f.k_lo
LEFT JOIN docs d ON f.first_pos >= 0 AND d.doc = f.first_doc
LEFT JOIN batches b ON f.first_pos < 0 AND b.seq = -f.first_pos - 1
WHERE k.pos > f.first_pos AND (f.first_pos < 0 OR (f.first_pos >> 32) <> (k.pos >> 32))
"""


def _replace_dir(tmp: str, final: str) -> None:
    """Moves the finished ``tmp`` folder to ``final``, replacing an older one
    (a rerun of the driver recomputes the whole drop list)."""
    old = final + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(final):
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def decide_duckdb(
    work: str, batches: Sequence[tuple], threads: int | None = None, ranks: Sequence[int] | None = None
) -> None:
    """Writes ``WORK/drops`` with DuckDB (``COPY … PARTITION_BY (shard)``)."""
    import duckdb

    out = os.path.join(work, "drops")
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    con = duckdb.connect(":memory:")
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        # Larger than memory: DuckDB spills to the working folder.
        con.execute(f"SET temp_directory = {_quote(os.path.join(work, 'duckdb-tmp'))}")
        con.execute("SET preserve_insertion_order = false")
        sql = decide_sql(work, batches, duckdb_source, ranks)
        con.execute(f"COPY ({sql}) TO {_quote(tmp)} (FORMAT parquet, PARTITION_BY (shard), COMPRESSION zstd)")
    finally:
        con.close()
    shutil.rmtree(os.path.join(work, "duckdb-tmp"), ignore_errors=True)
    os.makedirs(tmp, exist_ok=True)  # no drops at all: COPY may write no folder
    _replace_dir(tmp, out)


def decide_spark(spark, work: str, batches: Sequence[tuple], ranks: Sequence[int] | None = None) -> None:
    """Writes ``WORK/drops`` with Spark SQL (``partitionBy("shard")``)."""
    out = os.path.join(work, "drops")
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    views: list = []

    def source(path) -> str:
        if not isinstance(path, list):
            return spark_source(path)
        # A list of files: a temporary view (Spark SQL names one path per `parquet.`).
        view = f"newsdedup_parts_{len(views)}"
        spark.read.parquet(*map(_file_uri, path)).createOrReplaceTempView(view)
        views.append(view)
        return view

    sql = decide_sql(work, batches, source, ranks)
    spark.sql(sql).write.mode("overwrite").partitionBy("shard").parquet(_file_uri(tmp))
    os.makedirs(tmp, exist_ok=True)
    _replace_dir(tmp, out)
