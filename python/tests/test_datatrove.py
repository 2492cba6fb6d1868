"""The datatrove steps on small in-memory pipelines (skipped, saying so, when
datatrove is not installed)."""

import json

import pytest

import newsdedup

datatrove = pytest.importorskip("datatrove", reason="datatrove is not installed (pip install datatrove): skipping")

from datatrove.data import Document  # noqa: E402
from datatrove.executor import LocalPipelineExecutor  # noqa: E402

from newsdedup.datatrove import (  # noqa: E402
    NewsdedupDedupFilter,
    NewsdedupFilter,
    NewsdedupFindDedups,
    NewsdedupSignature,
)
from test_api import jsonl_texts  # noqa: E402


def documents(corpus, limit=600):
    ids, texts = jsonl_texts(corpus / "big.jsonl")
    return [Document(text=t, id=i) for i, t in zip(ids[:limit], texts[:limit])]


def expected(docs):
    results = newsdedup.Deduper().clean_batch([d.text for d in docs], [d.id for d in docs])
    return [(d.id, r.text) for d, r in zip(docs, results) if not r.is_empty]


def test_one_task_step_cleans_in_order_and_drops_empty_documents(corpus, tmp_path):
    docs = documents(corpus)
    want = expected(docs)
    assert len(want) < len(docs), "the corpus has duplicate documents"
    out = []
    step = NewsdedupFilter(batch_size=64)
    executor = LocalPipelineExecutor(
        pipeline=[docs, step, lambda data, rank, ws: out.extend(data)],
        tasks=1,
        logging_dir=str(tmp_path / "logs"),
    )
    executor.run()
    assert [(d.id, d.text) for d in out] == want
    [stats] = [s["stats"] for s in json.loads((tmp_path / "logs" / "stats.json").read_text()) if "newsdedup" in s["name"]]
    stats = {k: v["total"] if isinstance(v, dict) else v for k, v in stats.items()}
    assert stats["total"] == len(docs)
    assert stats["dropped"] == len(docs) - len(want)
    assert stats["forwarded"] == len(want)
    assert stats["paragraphs_dropped"] > 0


def test_one_task_step_refuses_several_tasks():
    with pytest.raises(ValueError, match="tasks=1"):
        list(NewsdedupFilter().run(iter([Document(text="x", id="1")]), rank=0, world_size=2))


def test_three_stages_over_ranks_equal_one_task_with_the_index(corpus, tmp_path):
    docs = documents(corpus)
    shards = [docs[:200], docs[200:350], docs[350:]]
    want = expected(docs)
    reader = lambda data, rank, ws: iter(shards[rank])  # noqa: E731
    out = {}

    def collect(data, rank, ws):
        out[rank] = list(data)

    sigs, plans, index = tmp_path / "sigs", tmp_path / "plans", tmp_path / "ix"
    for pipeline, tasks in (
        ([reader, NewsdedupSignature(str(sigs))], 3),
        ([NewsdedupFindDedups(str(sigs), str(plans), index=str(index), batch="day1")], 1),
        ([reader, NewsdedupDedupFilter(str(plans)), collect], 3),
    ):
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(tmp_path / f"logs-{id(pipeline)}")).run()
    got = [(d.id, d.text) for r in range(3) for d in out[r]]
    assert got == want
    # The committed index now holds these documents: a one-task run of the
    # same batch keeps what was kept (a retry); a run of another batch finds
    # every paragraph already kept, and drops every document. (Stage 3
    # changed the texts of `docs` in place: read them again.)
    for batch, expect in (("day1", want), ("day2", [])):
        again = []
        step = NewsdedupFilter(index=str(index), batch=batch)
        LocalPipelineExecutor(
            pipeline=[documents(corpus), step, lambda data, rank, ws: again.extend(data)],
            tasks=1,
            logging_dir=str(tmp_path / f"logs-{batch}"),
        ).run()
        assert [(d.id, d.text) for d in again] == expect
    with pytest.raises(ValueError, match="batch"):
        NewsdedupFilter(index=str(index))
