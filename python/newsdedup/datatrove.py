"""datatrove pipeline steps (``pip install datatrove``; not a hard dependency).

Which one to use:

* :class:`NewsdedupFilter` — **one task** (``tasks=1``). Cleans ``doc.text`` of
  every document in the order they arrive (that order is the corpus order),
  drops documents left with no paragraph, and uses all cores inside the task
  (``Deduper.clean_batch``, GIL released). The simplest and fastest choice up to
  what one machine reads in a run: the engine does ~100 MB/s per core pair, so
  one task is rarely the bottleneck of a datatrove pipeline.
* The **three stages**, for a corpus read by many tasks (``tasks=N``), in the
  shape of datatrove's sentence dedup:

  1. :class:`NewsdedupSignature` (``tasks=N``): each rank writes its documents'
     paragraph keys to ``output_folder`` (normalising and hashing: the
     expensive part, in parallel);
  2. :class:`NewsdedupFindDedups` (``tasks=1``): decides every document in
     corpus order — rank 0's documents first, then rank 1's, ... — from the
     keys alone (hash-table work only), writes one plan per rank, and, with
     ``index=PATH``, checks and commits the persistent index of
     ``newsdedup clean --index``;
  3. :class:`NewsdedupDedupFilter` (``tasks=N``, the same reader and ranks as
     stage 1): applies each document's plan, drops documents left empty.

  The result is the same as :class:`NewsdedupFilter` over the documents in
  rank order. Stages 1 and 3 must be given the same text options (``split``,
  ``quotes``, ``key``, ``emit``, ``encoding``) and the same documents in the
  same order; stage 3 checks ids and paragraph counts and raises otherwise.

Both forms accept ``index=PATH`` with ``batch=NAME`` (the CLI's persistent index
and ``--batch``): the run belongs to that batch, so give each distinct input its
own name (a day, a crawl). A rerun of a batch the index already holds is a
*retry*: it keeps exactly what the batch kept first and records nothing new
(documents are recognised by their first kept paragraph; ``doc.id`` is only a
label). The index is committed when the run (or stage 2) has finished without
error; the commit is atomic, and a task that dies before leaves it unchanged.

Options are those of :class:`newsdedup.Deduper` (``split``, ``quotes``, ``key``,
``min_chars``, ``min_chars_within``, ``emit``, ``encoding``).
"""

from __future__ import annotations

import contextlib
import struct
from typing import Any, BinaryIO, Iterator, Optional, Tuple

try:
    from datatrove.data import DocumentsPipeline
    from datatrove.io import DataFolderLike, get_datafolder
    from datatrove.pipeline.base import PipelineStep
    from datatrove.utils.typeshelper import StatHints
except ImportError as e:  # pragma: no cover - exercised only without datatrove
    raise ImportError("newsdedup.datatrove needs datatrove: pip install datatrove") from e

from . import Deduper

SIGNATURES = ".ndsig"
PLANS = ".ndplan"
_LEN = struct.Struct("<I")


def _write_record(f: BinaryIO, doc_id: str, payload: bytes) -> None:
    name = doc_id.encode("utf-8", "surrogatepass")
    f.write(_LEN.pack(len(name)) + name + _LEN.pack(len(payload)) + payload)


def _read_exact(f: BinaryIO, n: int, path: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"{path}: truncated newsdedup record file")
    return data


def _read_records(f: BinaryIO, path: str) -> Iterator[Tuple[str, bytes]]:
    while True:
        head = f.read(_LEN.size)
        if not head:
            return
        if len(head) != _LEN.size:
            raise ValueError(f"{path}: truncated newsdedup record file")
        name = _read_exact(f, _LEN.unpack(head)[0], path).decode("utf-8", "surrogatepass")
        size = _LEN.unpack(_read_exact(f, _LEN.size, path))[0]
        yield name, _read_exact(f, size, path)


def _dropped_paragraphs(plan: bytes) -> int:
    return sum(1 for b in plan if b >= 2)


def _check_batch(index: Optional[str], batch: Any) -> None:
    if index is not None and batch is None:
        raise ValueError("index= needs batch=NAME (the name of this input in the index, like --batch)")
    if index is None and batch is not None:
        raise ValueError("batch= needs index=")


class NewsdedupFilter(PipelineStep):
    """One-task step: cleans ``doc.text`` in corpus order (the order documents
    arrive) and drops documents left with no paragraph.

    Args:
        index: folder of a persistent index (``newsdedup clean --index``), or None.
        batch: with ``index``, the name of this run's batch (required; see the
            module documentation).
        batch_size: documents cleaned per ``clean_batch`` call (parallel inside).
        exclusion_writer: optional datatrove writer that receives dropped documents
            (with their original text).
        annotate: if True, ``doc.metadata["newsdedup"]`` gets ``{"kept": k,
            "dropped": d}`` paragraph counts.
        **options: :class:`newsdedup.Deduper` options.

    Stats: ``total``, ``forwarded``, ``dropped`` (documents), ``paragraphs``,
    ``paragraphs_dropped``, ``duplicate_documents``.
    """

    name = "newsdedup"
    type = "🫂 - DEDUPS"

    def __init__(
        self,
        *,
        index: Optional[str] = None,
        batch: Optional[str] = None,
        batch_size: int = 1000,
        exclusion_writer: Any = None,
        annotate: bool = False,
        **options: Any,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        _check_batch(index, batch)
        self.index = index
        self.batch = batch
        self.batch_size = batch_size
        self.exclusion_writer = exclusion_writer
        self.annotate = annotate
        self.options = options
        Deduper(**options)  # check the options now, not in the task

    def _emit(self, batch: list, deduper: Deduper, writer: Any, rank: int) -> Iterator[Any]:
        ids = [None if d.id is None else str(d.id) for d in batch]
        with self.track_time(unit="batch"):
            results = deduper.clean_batch([d.text for d in batch], ids)
        for doc, r in zip(batch, results):
            self.stat_update(StatHints.total)
            self.stat_update("paragraphs", value=r.n_kept + r.n_dropped)
            self.stat_update("paragraphs_dropped", value=r.n_dropped)
            if r.duplicate_of is not None:
                self.stat_update("duplicate_documents")
            if r.is_empty:
                self.stat_update(StatHints.dropped)
                if writer is not None:
                    writer.write(doc, rank=rank)
                continue
            doc.text = r.text
            if self.annotate:
                doc.metadata["newsdedup"] = {"kept": r.n_kept, "dropped": r.n_dropped}
            self.stat_update(StatHints.forwarded)
            self.update_doc_stats(doc)
            yield doc

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if world_size > 1:
            raise ValueError(
                "NewsdedupFilter decides in corpus order in one task (tasks=1); with several tasks each "
                "would only see its own share: use NewsdedupSignature -> NewsdedupFindDedups -> "
                "NewsdedupDedupFilter"
            )
        deduper = Deduper(**self.options, index=self.index, batch=self.batch)
        finished = False
        try:
            with self.exclusion_writer if self.exclusion_writer else contextlib.nullcontext() as writer:
                batch: list = []
                for doc in data or ():
                    batch.append(doc)
                    if len(batch) >= self.batch_size:
                        yield from self._emit(batch, deduper, writer, rank)
                        batch = []
                if batch:
                    yield from self._emit(batch, deduper, writer, rank)
            finished = True
        finally:
            if finished:
                deduper.commit()
            deduper.close()


class NewsdedupSignature(PipelineStep):
    """Stage 1 of 3 (``tasks=N``): writes the paragraph keys of each rank's
    documents to ``output_folder/<rank>.ndsig``. Consumes the documents.

    Args:
        output_folder: where the signatures go (any datatrove/fsspec folder).
        **options: text options (``split``, ``quotes``, ``key``, ``encoding``).
    """

    name = "newsdedup stage 1: signatures"
    type = "🫂 - DEDUPS"

    def __init__(self, output_folder: DataFolderLike, **options: Any) -> None:
        super().__init__()
        self.output_folder = get_datafolder(output_folder)
        self.options = options
        Deduper(**options)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        deduper = Deduper(**self.options)
        with self.output_folder.open(f"{rank:05d}{SIGNATURES}", mode="wb") as f:
            for doc in data or ():
                self.stat_update(StatHints.total)
                with self.track_time():
                    _write_record(f, str(doc.id), deduper.signature(doc.text))
        return iter(())


class NewsdedupFindDedups(PipelineStep):
    """Stage 2 of 3 (``tasks=1``): decides every document in corpus order (rank
    0 first) from the signatures in ``data_folder`` and writes one plan file
    per rank to ``output_folder``; with ``index``, reads and then commits the
    persistent index (after every plan file is written).

    Args:
        data_folder: stage 1's ``output_folder``.
        output_folder: where the plans go (stage 3's ``data_folder``).
        index: folder of a persistent index, or None.
        batch: with ``index``, the name of this run's batch (required).
        **options: ``min_chars``, ``min_chars_within`` (the text options do
            not matter here).
    """

    name = "newsdedup stage 2: find duplicates"
    type = "🫂 - DEDUPS"

    def __init__(
        self,
        data_folder: DataFolderLike,
        output_folder: DataFolderLike,
        *,
        index: Optional[str] = None,
        batch: Optional[str] = None,
        **options: Any,
    ) -> None:
        super().__init__()
        _check_batch(index, batch)
        self.data_folder = get_datafolder(data_folder)
        self.output_folder = get_datafolder(output_folder)
        self.index = index
        self.batch = batch
        self.options = options
        Deduper(**options)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if world_size != 1:
            raise ValueError("NewsdedupFindDedups decides in corpus order: run it with tasks=1")
        files = sorted(self.data_folder.list_files(glob_pattern=f"*{SIGNATURES}", recursive=False))
        expected = [f"{r:05d}{SIGNATURES}" for r in range(len(files))]
        if files != expected:
            raise ValueError(f"{self.data_folder.path}: expected signature files {expected[:3]}..., found {files[:3]}...")
        deduper = Deduper(**self.options, index=self.index, batch=self.batch)
        try:
            for name in files:
                plan_name = name[: -len(SIGNATURES)] + PLANS
                with self.data_folder.open(name, mode="rb") as src, self.output_folder.open(plan_name, mode="wb") as out:
                    for doc_id, sig in _read_records(src, name):
                        self.stat_update(StatHints.total)
                        with self.track_time():
                            plan = deduper.decide_signature(sig, doc_id)
                        self.stat_update("paragraphs", value=len(plan))
                        self.stat_update("paragraphs_dropped", value=_dropped_paragraphs(plan))
                        _write_record(out, doc_id, plan)
            deduper.commit()
        finally:
            deduper.close()
        return iter(())


class NewsdedupDedupFilter(PipelineStep):
    """Stage 3 of 3 (``tasks=N``): applies stage 2's plan to each document of
    the rank (same reader, same order as stage 1) and drops documents left
    empty.

    Args:
        data_folder: stage 2's ``output_folder``.
        exclusion_writer: optional writer receiving the dropped documents.
        **options: the same text options as stage 1 (and ``emit``).
    """

    name = "newsdedup stage 3: filter"
    type = "🫂 - DEDUPS"

    def __init__(self, data_folder: DataFolderLike, *, exclusion_writer: Any = None, **options: Any) -> None:
        super().__init__()
        self.data_folder = get_datafolder(data_folder)
        self.exclusion_writer = exclusion_writer
        self.options = options
        Deduper(**options)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        deduper = Deduper(**self.options)
        name = f"{rank:05d}{PLANS}"
        with self.data_folder.open(name, mode="rb") as f, (
            self.exclusion_writer if self.exclusion_writer else contextlib.nullcontext()
        ) as writer:
            plans = _read_records(f, name)
            for doc in data or ():
                record = next(plans, None)
                if record is None or record[0] != str(doc.id):
                    got = "the end of the plans" if record is None else f"id {record[0]!r}"
                    raise ValueError(f"{name}: document {doc.id!r} does not match {got}: stage 1 read other documents")
                self.stat_update(StatHints.total)
                with self.track_time():
                    text = deduper.apply_plan(doc.text, record[1])
                self.stat_update("paragraphs_dropped", value=_dropped_paragraphs(record[1]))
                if not text:
                    self.stat_update(StatHints.dropped)
                    if writer is not None:
                        writer.write(doc, rank=rank)
                    continue
                doc.text = text
                self.stat_update(StatHints.forwarded)
                self.update_doc_stats(doc)
                yield doc
            if next(plans, None) is not None:
                raise ValueError(f"{name}: more plans than documents: stage 1 read other documents")
