"""The Python API against the CLI: byte-identical text, batch == sequential,
the GIL released, exceptions carrying paths, the persistent index."""

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

import newsdedup
from conftest import REPO, tree_files

FIXTURES = REPO / "fixtures"
# Cases of files that are judged alone (`clean FILE`), and every case as a tree.
SINGLE = ["doubled-article", "crlf-nbsp", "short-paragraphs", "non-english-quotes", "plain-table", "doubled-short-lines"]
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "input").is_dir())


def test_readme_example_prints_the_article_once():
    text = open(FIXTURES / "doubled-article/input/doubled-article.txt").read()
    expected = (FIXTURES / "doubled-article/expected/doubled-article.txt").read_text()
    assert newsdedup.clean_text(text) == expected


@pytest.mark.parametrize("case", SINGLE + ["emit-original"])
def test_single_file_fixtures_equal_the_cli_and_expected(case, cli):
    emit = "original" if case == "emit-original" else "normalized"
    for path in sorted((FIXTURES / case / "input").iterdir()):
        expected = (FIXTURES / case / "expected" / path.name).read_bytes()
        assert cli("clean", path, "--emit", emit, "-q") == expected
        assert newsdedup.clean_file(path, emit=emit).encode() == expected
        assert newsdedup.clean_text(path.read_bytes(), emit=emit).encode() == expected
        result = newsdedup.Deduper(emit=emit).clean(path.read_bytes(), id=path.name)
        assert result.text.encode() == expected


def clean_tree(root: Path, **options):
    """What the CLI writes for a tree, computed with a Deduper: {rel: bytes}."""
    files = tree_files(root)
    rels = [str(p.relative_to(root)) for p in files]
    results = newsdedup.Deduper(**options).clean_batch([p.read_bytes() for p in files], rels)
    return {rel: r.text.encode() for rel, r in zip(rels, results) if not r.is_empty}


def snapshot(root: Path):
    return {str(p.relative_to(root)): p.read_bytes() for p in tree_files(root)}


@pytest.mark.parametrize("case", CASES)
def test_every_fixture_as_a_tree_equals_the_cli_and_expected(case, cli, tmp_path):
    emit = "original" if case == "emit-original" else "normalized"
    cli("clean", FIXTURES / case / "input", "--out", tmp_path / "out", "--emit", emit, "-q")
    want = snapshot(FIXTURES / case / "expected")
    assert snapshot(tmp_path / "out") == want
    assert clean_tree(FIXTURES / case / "input", emit=emit) == want


def test_new_reasons_and_spared_repeats_are_exposed(cli, tmp_path):
    """qtly-div: a short line repeated from an unrelated story is spared (kept,
    with its first occurrence), the "Reuter" sign-off goes with its source
    (same-source); the explain file of the CLI says the same."""
    root = FIXTURES / "qtly-div/input"
    files = tree_files(root)
    rels = [str(p.relative_to(root)) for p in files]
    results = newsdedup.Deduper().clean_batch([p.read_bytes() for p in files], rels)
    explain = tmp_path / "e.jsonl"
    cli("clean", root, "--dry-run", "--explain", explain, "--explain-spared", "-q")
    want = sorted(
        (e["file"], e["paragraph"], "spared" if e.get("kept") else e["reason"], e["first_file"], e["first_paragraph"])
        for e in map(json.loads, explain.read_text().splitlines())
    )
    got = sorted(
        (r.id, p.index, "spared" if p.spared else p.reason, p.first.id, p.first.paragraph)
        for r in results
        for p in r.paragraphs
        if p.first is not None
    )
    assert got == want
    assert {g[2] for g in got} >= {"spared", "same-source"}
    # min_chars_within: a within-document repeat shorter than it is kept alone.
    text = "Markets were calm on Monday.\nA longer paragraph about the day in the markets follows here.\nMarkets were calm on Monday.\n"
    assert newsdedup.clean_text(text).count("Markets were calm") == 1
    assert newsdedup.clean_text(text, min_chars_within=40).count("Markets were calm") == 2
    assert newsdedup.Deduper(min_chars_within=40).clean(text).n_dropped == 0


def test_generated_tree_equals_the_cli(corpus, cli, tmp_path):
    cli("clean", corpus / "tree", "--out", tmp_path / "out", "-q")
    want = snapshot(tmp_path / "out")
    assert len(want) > 100
    assert clean_tree(corpus / "tree") == want


def jsonl_texts(path: Path):
    lines = [(n, line) for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    return [f"{path.name}:{n}" for n, _ in lines], [json.loads(line)["text"] for _, line in lines]


def test_generated_jsonl_equals_the_cli(corpus, cli):
    jsonl = corpus / "big.jsonl"
    want = [json.loads(line)["text"] for line in cli("clean", jsonl, "-q").decode().splitlines()]
    ids, texts = jsonl_texts(jsonl)
    got = [r.text for r in newsdedup.Deduper().clean_batch(texts, ids) if not r.is_empty]
    assert len(got) == len(want) > 100
    assert got == want


def describe(r):
    paras = [(p.index, p.start, p.end, p.char_start, p.char_end, p.text, p.kept, p.spared, p.reason,
              None if p.first is None else (p.first.id, p.first.doc, p.first.paragraph)) for p in r.paragraphs]
    dup = None if r.duplicate_of is None else (r.duplicate_of.id, r.duplicate_of.doc)
    return (r.doc, r.id, r.text, paras, dup, r.removal_spans)


def test_clean_batch_equals_sequential_clean(corpus):
    ids, texts = jsonl_texts(corpus / "big.jsonl")
    one = newsdedup.Deduper()
    seq = [describe(one.clean(t, i)) for t, i in zip(texts, ids)]
    batched = newsdedup.Deduper()
    par = [describe(r) for k in range(0, len(texts), 97) for r in batched.clean_batch(texts[k:k + 97], ids[k:k + 97])]
    assert par == seq
    assert any(p[8] == "across-documents" for d in seq for p in d[3]), "the corpus has repeats"
    assert one.documents == batched.documents == len(texts)


def test_spans_point_at_the_paragraphs():
    text = "Caf\u00e9 owners protested on Monday in Paris.\n\u201cNo,\u201d he said.\nCaf\u00e9 owners protested on Monday in Paris.\n"
    r = newsdedup.Deduper().clean(text, id="a")
    [dropped] = r.dropped
    assert dropped.reason == "within-document" and dropped.first.paragraph == 0 and dropped.first.id == "a"
    assert text.encode()[dropped.start:dropped.end].decode() == text[dropped.char_start:dropped.char_end]
    assert text[dropped.char_start:dropped.char_end] == "Caf\u00e9 owners protested on Monday in Paris."
    assert r.kept[1].text == '"No," he said.'


def test_two_threads_run_batches_at_the_same_time(corpus):
    """Both batches run while a third Python thread keeps ticking: with the
    GIL held during a batch the ticker would stall for the whole batch."""
    _, texts = jsonl_texts(corpus / "big.jsonl")
    texts = texts * 3
    want = [r.text for r in newsdedup.Deduper().clean_batch(texts)]
    spans, results, ticks, stop = {}, {}, [], threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    def work(name):
        d = newsdedup.Deduper()
        start = time.perf_counter()
        results[name] = [r.text for r in d.clean_batch(texts)]
        spans[name] = (start, time.perf_counter())

    threads = [threading.Thread(target=work, args=(n,)) for n in "ab"]
    tick = threading.Thread(target=ticker)
    tick.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    tick.join()
    assert results["a"] == results["b"] == want
    (a0, a1), (b0, b1) = spans["a"], spans["b"]
    overlap = min(a1, b1) - max(a0, b0)
    shortest = min(a1 - a0, b1 - b0)
    assert overlap > 0.5 * shortest, f"batches overlapped {overlap:.3f}s of {shortest:.3f}s"
    inside = [t for t in ticks if max(a0, b0) <= t <= min(a1, b1)]
    gaps = [y - x for x, y in zip(inside, inside[1:])]
    assert len(inside) > 5 and max(gaps) < 0.5 * overlap, f"ticker stalled: {max(gaps, default=0):.3f}s"


def test_errors_carry_paths_offsets_and_kinds(tmp_path):
    missing = tmp_path / "missing.txt"
    with pytest.raises(newsdedup.FileError) as e:
        newsdedup.read_text(missing)
    assert e.value.path == str(missing) and e.value.kind == "not-found" and str(missing) in str(e.value)
    assert isinstance(e.value, OSError)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"The fee is \xa3600m this year.\n")
    with pytest.raises(newsdedup.DecodeError) as e:
        newsdedup.clean_file(bad, encoding="strict")
    assert (e.value.path, e.value.offset, e.value.kind) == (str(bad), 11, "encoding")
    assert newsdedup.clean_file(bad) == "The fee is \u00a3600m this year.\n"
    assert newsdedup.clean_file(bad, encoding="lossy") == "The fee is \ufffd600m this year.\n"
    with pytest.raises(newsdedup.DecodeError) as e:
        newsdedup.Deduper(encoding="strict").clean_batch(["fine", b"ab\xffc"], ["a.txt", "b.txt"])
    assert (e.value.path, e.value.offset) == ("b.txt", 2)
    with pytest.raises(newsdedup.DecodeError) as e:
        newsdedup.Deduper().clean(b"bin\x00ary", id="blob")
    assert (e.value.path, e.value.offset, e.value.kind) == ("blob", 3, "binary")
    with pytest.raises(ValueError, match="split="):
        newsdedup.Deduper(split="paragraph")
    with pytest.raises(ValueError, match="scope corpus"):
        newsdedup.Deduper(scope="document", index=str(tmp_path / "ix"), batch="b")


def test_surrogate_escaped_text_follows_the_encoding_policy():
    raw = b"The fee is \xa3600m this year."
    text = raw.decode("utf-8", "surrogateescape")
    assert newsdedup.clean_text(text) == "The fee is \u00a3600m this year."  # no line break added, as the CLI
    with pytest.raises(newsdedup.DecodeError):
        newsdedup.clean_text(text, encoding="strict")


def stats(cli, index):
    return dict(line.split(": ", 1) for line in cli("index", "stats", index).decode().splitlines())


def test_index_is_shared_with_the_cli_by_batch_locked_and_checked(corpus, cli, tmp_path):
    tree = corpus / "tree"
    outlets = sorted(p.name for p in tree.iterdir())
    day1, day2 = tmp_path / "day1", tmp_path / "day2"
    for day, names in ((day1, outlets[:4]), (day2, outlets[4:])):
        for n in names:
            shutil.copytree(tree / n, day / n)
    # Both days in one CLI run: the reference.
    cli("clean", tree, "--out", tmp_path / "all", "-q")
    want = snapshot(tmp_path / "all")
    index = tmp_path / "ix"
    with pytest.raises(ValueError, match="batch"):
        newsdedup.Deduper(index=index)
    with pytest.raises(ValueError, match="index"):
        newsdedup.Deduper(batch="day1")
    # Day 1 in Python with the index, as the batch the CLI gives `clean day1`
    # (its canonical path); committed on a clean exit.
    files = tree_files(day1)
    rels = [str(p.relative_to(day1)) for p in files]
    texts = [p.read_bytes() for p in files]
    with newsdedup.Deduper(index=index, batch=os.path.realpath(day1)) as d:
        assert d.index_open and not d.is_retry
        with pytest.raises(newsdedup.IndexLockedError) as e:
            newsdedup.Deduper(index=index, batch="other")
        assert e.value.path == str(index)
        got = {rel: r.text.encode() for rel, r in zip(rels, d.clean_batch(texts, rels)) if not r.is_empty}
    assert not d.index_open
    assert stats(cli, index)["runs recorded"] == "1"
    # Day 2 with the CLI against the same index: together, one run's output.
    cli("clean", day2, "--out", tmp_path / "out2", "--index", index, "-q")
    got.update(snapshot(tmp_path / "out2"))
    assert got == want
    before = stats(cli, index)
    assert before["runs recorded"] == "2" and before["batches"] == "2"
    # The CLI takes a run over day1 for a retry of the Python run: the same
    # output, and nothing recorded.
    cli("clean", day1, "--out", tmp_path / "out1", "--index", index, "-q")
    assert snapshot(tmp_path / "out1") == {k: v for k, v in got.items() if k in rels}
    assert stats(cli, index) == before
    # A Python retry of day 1 (ids are labels: none given) keeps what day 1
    # kept and records nothing; first occurrences are named in this Deduper.
    with newsdedup.Deduper(index=index, batch=os.path.realpath(day1)) as d:
        assert d.is_retry
        retry = d.clean_batch(texts)
        assert {rel: r.text.encode() for rel, r in zip(rels, retry) if not r.is_empty} == snapshot(tmp_path / "out1")
        assert all(p.first.batch is None for r in retry for p in r.dropped)
        assert d.commit() == 0
    assert stats(cli, index) == before
    # And Python over day 2 retries the CLI's run of it.
    files2 = tree_files(day2)
    rels2 = [str(p.relative_to(day2)) for p in files2]
    with newsdedup.Deduper(index=index, batch=os.path.realpath(day2)) as d:
        assert d.is_retry
        retry2 = d.clean_batch([p.read_bytes() for p in files2], rels2)
    assert {rel: r.text.encode() for rel, r in zip(rels2, retry2) if not r.is_empty} == snapshot(tmp_path / "out2")
    assert stats(cli, index) == before
    # The same texts under the same ids in another batch are repeats of
    # day 1: dropped, the first occurrence naming day 1's batch; an
    # exception in the with block leaves the index untouched.
    with pytest.raises(RuntimeError):
        with newsdedup.Deduper(index=index, batch="day1-again") as d:
            again = d.clean_batch(texts, rels)
            raise RuntimeError("stop")
    assert all(r.is_empty for r in again)
    from_index = [p.first for r in again for p in r.dropped if p.first.in_index]
    assert len(from_index) > 100
    assert {(f.batch, f.id, f.doc, f.paragraph) for f in from_index} == {(os.path.realpath(day1), None, None, None)}
    assert stats(cli, index) == before
    # A damaged index is refused with the file's name.
    manifest = index / "MANIFEST"
    manifest.write_bytes(manifest.read_bytes()[:-3])
    with pytest.raises(newsdedup.IndexCorruptError) as e:
        newsdedup.Deduper(index=index, batch="day3")
    assert e.value.path is not None and "MANIFEST" in e.value.path


def test_split_stages_equal_one_deduper(corpus):
    ids, texts = jsonl_texts(corpus / "big.jsonl")
    want = [r.text for r in newsdedup.Deduper().clean_batch(texts, ids)]
    sigs = [newsdedup.Deduper().signature(t) for t in texts]
    decider = newsdedup.Deduper()
    plans = [decider.decide_signature(s, i) for s, i in zip(sigs, ids)]
    assert [newsdedup.Deduper().apply_plan(t, p) for t, p in zip(texts, plans)] == want
    with pytest.raises(ValueError, match="plan"):
        newsdedup.Deduper().apply_plan("one paragraph only", b"\x00\x00")


def test_batch_names_are_raw_bytes_like_the_cli(tmp_path):
    """`x\\xfe` and `x\\xff` are two batches (never compared lossily); a str,
    its surrogate-escaped bytes and a path name the same one."""
    index = tmp_path / "ix"
    text = "A paragraph long enough to be news on its own, kept by the first batch only.\n"
    with newsdedup.Deduper(index=index, batch=b"x\xfe") as d:
        assert d.clean(text).text == text
    with newsdedup.Deduper(index=index, batch=b"x\xff") as d:
        assert not d.is_retry
        [p] = d.clean(text).dropped
        assert p.first.in_index and p.first.batch == "x\ufffd"
    with newsdedup.Deduper(index=index, batch=b"x\xfe".decode("utf-8", "surrogateescape")) as d:
        assert d.is_retry and d.clean(text).text == text
    with newsdedup.Deduper(index=index, batch=Path("day") / "one") as d:
        assert not d.is_retry
    with newsdedup.Deduper(index=index, batch="day/one") as d:
        assert d.is_retry
    with pytest.raises(ValueError, match="empty"):
        newsdedup.Deduper(index=index, batch="")
