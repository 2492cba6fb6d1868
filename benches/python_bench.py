#!/usr/bin/env python3
"""clean_batch throughput against the CLI on the same JSONL, in the same run.

    python_bench.py JSONL CLI [--reps 3] [--batch 8192]

Run by benches/python.sh (which builds the release wheel and the corpus). For
every repetition, in turn: the CLI over JSONL (`clean --format jsonl -q`, output
to a file: parse, clean, serialise); `Deduper.clean_batch` over the texts already
in memory, in batches; and the same end to end in Python (`json.loads`, clean,
`json.dumps`, write). Throughput is JSONL bytes / wall-clock seconds for all
three, median of the repetitions; CPU seconds (all threads) are given too, as
they depend less on what else the machine runs. The CLI and the API must give the same texts (checked).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import newsdedup


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cli_run(cli, jsonl, out):
    start, cpu = time.perf_counter(), children_cpu()
    subprocess.run([cli, "clean", "--format", "jsonl", jsonl, "-q"], stdout=out, check=True)
    return time.perf_counter() - start, children_cpu() - cpu


def api_run(texts, ids, batch):
    """Cleans every text and takes the clean texts out (a pipeline needs them);
    result objects are dropped batch by batch."""
    d = newsdedup.Deduper()
    start, cpu = time.perf_counter(), time.process_time()
    clean = []
    for k in range(0, len(texts), batch):
        clean.extend(r.text for r in d.clean_batch(texts[k : k + batch], ids[k : k + batch]) if not r.is_empty)
    return (time.perf_counter() - start, time.process_time() - cpu), clean


def end_to_end(jsonl, out_path, batch):
    d = newsdedup.Deduper()
    start, cpu = time.perf_counter(), time.process_time()
    with open(jsonl, encoding="utf-8") as f, open(out_path, "w", encoding="utf-8") as out:
        while True:
            lines = [line for line in (f.readline() for _ in range(batch)) if line]
            if not lines:
                break
            records = [json.loads(line) for line in lines if line.strip()]
            for rec, r in zip(records, d.clean_batch([rec["text"] for rec in records])):
                if not r.is_empty:
                    rec["text"] = r.text
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return time.perf_counter() - start, time.process_time() - cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jsonl")
    ap.add_argument("cli")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8192)
    args = ap.parse_args()
    size = os.path.getsize(args.jsonl)
    with open(args.jsonl, encoding="utf-8") as f:
        rows = [(n, json.loads(line)) for n, line in enumerate(f, 1) if line.strip()]
    name = os.path.basename(args.jsonl)
    ids = [f"{name}:{n}" for n, _ in rows]
    texts = [rec["text"] for _, rec in rows]
    del rows
    times = {"cli": [], "api": [], "e2e": []}
    with tempfile.TemporaryDirectory() as tmp:
        cli_out = os.path.join(tmp, "cli.jsonl")
        for rep in range(args.reps + 1):  # the first is a warm-up
            with open(cli_out, "wb") as out:
                t_cli = cli_run(args.cli, args.jsonl, out)
            t_api, results = api_run(texts, ids, args.batch)
            t_e2e = end_to_end(args.jsonl, os.path.join(tmp, "py.jsonl"), args.batch)
            if rep == 0:
                with open(cli_out, encoding="utf-8") as f:
                    want = [json.loads(line)["text"] for line in f]
                if results != want:
                    sys.exit("python_bench: the API and the CLI disagree")
                del want
                continue
            for k, t in (("cli", t_cli), ("api", t_api), ("e2e", t_e2e)):
                times[k].append(t)
            print(f"  rep {rep}: (wall, CPU) seconds: cli {t_cli[0]:.2f}, {t_cli[1]:.2f}; clean_batch {t_api[0]:.2f}, "
                  f"{t_api[1]:.2f}; python end-to-end {t_e2e[0]:.2f}, {t_e2e[1]:.2f}", file=sys.stderr)
    med = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    mbs = {k: size / 1e6 / t for k, t in med.items()}
    print(f"JSONL: {size / 1e6:.1f} MB, {len(texts)} documents; median of {args.reps} warm runs; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print()
    print("| run | seconds | MB/s | vs CLI | CPU seconds |")
    print("|---|---|---|---|---|")
    labels = {
        "cli": "CLI `clean --format jsonl` (parse, clean, write)",
        "api": "`Deduper.clean_batch`, texts in memory (clean texts taken out)",
        "e2e": "Python end to end (`json.loads`, `clean_batch`, `json.dumps`, write)",
    }
    for k in ("cli", "api", "e2e"):
        print(f"| {labels[k]} | {med[k]:.2f} | {mbs[k]:.1f} | {mbs[k] / mbs['cli']:.0%} | {cpu[k]:.2f} |")
    print()
    print(f"clean_batch / CLI throughput: {mbs['api'] / mbs['cli']:.2f} (target >= 0.80); "
          f"CPU time clean_batch / CLI: {cpu['api'] / cpu['cli']:.2f}")


if __name__ == "__main__":
    main()
