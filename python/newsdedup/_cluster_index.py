"""The cluster index (scale-out contract v1, section 6): a folder of Parquet
key batches that successive driver runs append to.

```
INDEX/manifest.json          {"contract": 1, "batches": [{"seq", "name", "file", "keys"}, ...]}
INDEX/batch-000000.parquet   k_hi, k_lo, anchor (INT64): the keys first kept by that batch
```

A run belongs to a batch (``--batch NAME``, by default the canonical
absolute input paths, NUL-separated, as the single-node ``--index`` names
it). The decide step reads the batches listed before the run's own: a new
batch reads them all and gets the next ``seq``; a rerun of a listed batch is a
retry and reads only the batches before its first entry, so it reproduces
the first run; the keys a retried input gained (in no entry of ``seq`` at or
after that one) are listed as one more entry with the same name.
The driver commits last: the batch file is written under a temporary name
and renamed, then ``manifest.json`` is rewritten the same way; a run killed
before the manifest rename leaves the index as it was (a stray batch file is
overwritten by the next commit of that ``seq``).
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

CONTRACT = 1


class ClusterIndexError(Exception):
    """A cluster index folder that cannot be read or written; names the path."""


class Lock:
    """``INDEX/LOCK``, held (``flock``) from the plan to the commit so that two
    drivers never append to one index at once; the kernel releases it when
    the process dies, so a killed run leaves no stale lock."""

    def __init__(self, root: str):
        import fcntl

        os.makedirs(root, exist_ok=True)
        self.path = os.path.join(root, "LOCK")
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise ClusterIndexError(f"{self.path}: the cluster index is in use by another run") from None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@dataclass
class Plan:
    """What a run reads from and writes to the cluster index."""

    root: str
    name: str
    seq: int
    retry: bool
    earlier: list  # (seq, name, absolute path of the batch file)
    lock: "Lock | None" = None

    def release(self) -> None:
        """Releases the index lock (at the end of the run, committed or not)."""
        if self.lock is not None:
            self.lock.release()


def _manifest_path(root: str) -> str:
    return os.path.join(root, "manifest.json")


def read_manifest(root: str) -> dict:
    """The manifest of the index at ``root`` (an empty one for a new index)."""
    path = _manifest_path(root)
    if not os.path.exists(path):
        if os.path.isdir(root) and any(n.endswith(".parquet") for n in os.listdir(root)):
            raise ClusterIndexError(f"{path}: missing, but the folder holds batch files: not a cluster index")
        return {"contract": CONTRACT, "batches": []}
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise ClusterIndexError(f"{path}: cannot read the cluster index manifest: {e}") from e
    if manifest.get("contract") != CONTRACT:
        raise ClusterIndexError(
            f"{path}: cluster index contract {manifest.get('contract')!r}, this driver reads {CONTRACT}"
        )
    for b in manifest.get("batches", []):
        file = os.path.join(root, b["file"])
        if not os.path.isfile(file):
            raise ClusterIndexError(f"{file}: batch {b['seq']} listed in the manifest is missing")
    return manifest


def plan(root: str, name: str) -> Plan:
    """The batches the decide step of batch ``name`` reads, and its ``seq``."""
    if os.path.exists(root) and not os.path.isdir(root):
        raise ClusterIndexError(f"{root}: not a folder (a cluster index is a folder)")
    if os.path.isfile(os.path.join(root, "MANIFEST")) or glob.glob(os.path.join(root, "seg-*.ndx")):
        raise ClusterIndexError(
            f"{root}: this is a single-node index; convert it with `newsdedup index export {root} CLUSTER_DIR`"
        )
    lock = Lock(root)
    try:
        batches = read_manifest(root)["batches"]
    except ClusterIndexError:
        lock.release()
        raise
    listed = [b for b in batches if b["name"] == name]
    seq = listed[0]["seq"] if listed else len(batches)
    earlier = [(b["seq"], b["name"], os.path.abspath(os.path.join(root, b["file"]))) for b in batches if b["seq"] < seq]
    return Plan(root=root, name=name, seq=seq, retry=bool(listed), earlier=earlier, lock=lock)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(p: Plan, work: str, ranks: list) -> dict:
    """Appends the union of ``WORK/newkeys/part-{rank:06d}.parquet`` for the
    shard ``ranks`` of this run (in rank order) as batch ``p.seq``; a retry of
    a listed batch appends only the keys its input gained (:func:`_commit_retry`). Exactly these parts are read, never a
    glob, so a stale part left in a reused ``--work`` by an earlier run with
    more shards is not committed. Streams the parts, so the driver never
    holds the keys in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = read_manifest(p.root)
    if p.retry:
        return _commit_retry(p, manifest, work, ranks)
    if len(manifest["batches"]) != p.seq:
        raise ClusterIndexError(f"{_manifest_path(p.root)}: changed during the run (another run committed a batch)")
    os.makedirs(p.root, exist_ok=True)
    file = f"batch-{p.seq:06d}.parquet"
    final = os.path.join(p.root, file)
    tmp = final + ".tmp"
    schema = pa.schema([("k_hi", pa.int64()), ("k_lo", pa.int64()), ("anchor", pa.int64())])
    parts = [os.path.join(work, "newkeys", f"part-{rank:06d}.parquet") for rank in sorted(ranks)]
    keys = 0
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for part in parts:
            for batch in pq.ParquetFile(part).iter_batches(columns=["k_hi", "k_lo", "anchor"]):
                table = pa.Table.from_batches([batch]).cast(schema)
                writer.write_table(table)
                keys += table.num_rows
    _append(p, manifest, tmp, final, file, p.seq, keys)
    return {"batch": p.name, "seq": p.seq, "keys": keys, "retry": False}


_SCHEMA_COLS = ["k_hi", "k_lo", "anchor"]


def _commit_retry(p: Plan, manifest: dict, work: str, ranks: list) -> dict:
    """A rerun of a listed batch: the keys of this run's newkeys parts that no
    listed batch of ``seq >= p.seq`` holds (the batches before it were
    already excluded by decide) are the text the input gained since the first
    run; they become one more manifest entry with the same name (a new
    ``seq`` and file), as the single-node ``--index`` retry records them
    under the retried batch. Nothing gained: nothing written. The anti-join
    holds this run's new keys and the later batches' keys in memory (Arrow
    tables, 24 bytes a key)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, pa.int64()) for c in _SCHEMA_COLS])
    parts = [os.path.join(work, "newkeys", f"part-{rank:06d}.parquet") for rank in sorted(ranks)]
    new = pa.concat_tables([pq.read_table(f, columns=_SCHEMA_COLS).cast(schema) for f in parts] or [schema.empty_table()])
    later = [os.path.join(p.root, b["file"]) for b in manifest["batches"] if b["seq"] >= p.seq]
    if later and new.num_rows:
        known = pa.concat_tables([pq.read_table(f, columns=["k_hi", "k_lo"]).cast(
            pa.schema([("k_hi", pa.int64()), ("k_lo", pa.int64())])) for f in later])
        new = new.join(known, keys=["k_hi", "k_lo"], join_type="left anti")
    if new.num_rows == 0:
        return {"batch": p.name, "seq": p.seq, "keys": 0, "retry": True}
    # The join does not keep the row order: sort by key, so a rerun writes the same file.
    new = new.sort_by([("k_hi", "ascending"), ("k_lo", "ascending")])
    seq = len(manifest["batches"])
    file = f"batch-{seq:06d}.parquet"
    final = os.path.join(p.root, file)
    tmp = final + ".tmp"
    pq.write_table(new, tmp, compression="zstd")
    _append(p, manifest, tmp, final, file, seq, new.num_rows)
    return {"batch": p.name, "seq": seq, "keys": new.num_rows, "retry": True}


def _append(p: Plan, manifest: dict, tmp: str, final: str, file: str, seq: int, keys: int) -> None:
    """Renames the written batch file ``tmp`` into place, then lists it in
    the manifest (rewritten atomically)."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.rename(tmp, final)
    manifest["batches"].append({"seq": seq, "name": p.name, "file": file, "keys": keys})
    mtmp = _manifest_path(p.root) + ".tmp"
    with open(mtmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.rename(mtmp, _manifest_path(p.root))
    _fsync_dir(p.root)
