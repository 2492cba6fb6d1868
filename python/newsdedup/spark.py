"""``newsdedup-spark``: the scale-out driver. The same cleaning as
``newsdedup clean``, with the same kept paragraphs, first occurrences,
explain file and report, run as three steps on Apache Spark (or DuckDB):

1. **plan** (driver): the Rust core walks the input as the single-node run
   does and freezes the shards in ``WORK/manifest.json``;
2. **keys** (one task per shard, on the executors): the Rust core writes the
   shard's paragraph and document keys to ``WORK/keys`` and ``WORK/docs``;
3. **decide** (plain SQL in the engine, :mod:`newsdedup._decide`): the drop
   list of repeats whose first occurrence is in an earlier shard or in the
   cluster index;
4. **apply** (one task per shard): the Rust core re-reads the shard and
   writes the clean files, explain lines, report rows and new first
   occurrences;
5. **merge-report** (driver), then the cluster index commit, last.

Only paths and one-line JSON summaries cross the JVM; the executors import
``newsdedup._core`` (the wheel is the Rust core on the executors: point
``PYSPARK_PYTHON`` at a Python where this package is installed). ``INPUT``,
``--out``, ``--work`` and ``--index`` must be paths every executor can read
and write (a shared file system).

``--engine duckdb`` runs decide with DuckDB and keys/apply in a local thread
pool (the bindings release the GIL): the one-big-node form, and the oracle
the tests compare Spark with.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import sys
import time

from . import _cluster_index, _decide

USAGE = """\
usage: newsdedup-spark clean INPUT... --out OUT [--master URL] [--engine spark|duckdb]
                       [--index DIR] [--batch NAME] [--explain F] [--report F] [--rejects F]
                       [--work DIR] [--keep-work] [--shard-bytes N] [--parallel N] [--conf KEY=VALUE]...
                       [--timings F] [clean options...]

Cleans INPUT (a tree or a folder of JSONL(.gz/.zst) shards) into OUT exactly as
`newsdedup clean INPUT --out OUT` would, on Spark (default) or DuckDB.
Every option this driver does not know is a `newsdedup clean` option, passed to the plan
(and so to every task): e.g. --min-chars 40, --key loose, --id-field url, --explain-spared.

  --out OUT          the clean tree (required)
  --master URL       Spark master (default: what spark-submit or the Spark config says, else local[*])
  --engine E         spark (default) or duckdb (one node: DuckDB SQL, keys/apply in a thread pool)
  --index DIR        the cluster index (a folder of Parquet key batches; created when missing).
                     `newsdedup index export/import` convert it from/to the single-node index
  --batch NAME       this run's batch in the index (default: the canonical input paths)
  --explain F        write the explain file (JSON lines, as `newsdedup clean --explain`)
  --report F         write the report (JSON, as `newsdedup clean --report`)
  --rejects F        write rejected records (as `newsdedup clean --rejects`)
  --work DIR         working folder on a shared path (default: OUT.newsdedup-work, removed at the end)
  --keep-work        keep the working folder (keys, drop list, parts)
  --shard-bytes N    text files are grouped into shards of at most N bytes (default 64 MiB)
  --parallel N       duckdb engine: tasks run at once (default: the number of CPUs)
  --conf KEY=VALUE   a Spark configuration setting (repeatable)
  --timings F        write the per-step times and row counts as JSON
"""

# Driver flags taking a value (the rest of the command line goes to the plan).
_VALUED = {
    "--out", "-o", "--master", "--engine", "--index", "--batch", "--explain", "--report", "--rejects",
    "--work", "--shard-bytes", "--parallel", "--conf", "--timings",
}
_FLAGS = {"--keep-work"}

#: Test hook: ``STEP:RANK`` (e.g. ``apply:1``, or ``keys:*``) makes the first
#: attempt of that Spark task fail after doing its work, so that the retry
#: Spark runs must give the same result.
FAIL_ENV = "NEWSDEDUP_SPARK_FAIL_FIRST_ATTEMPT"


class DriverError(Exception):
    """A run that cannot start or finish; the message says why and what to do."""


def _parse(argv: list) -> tuple:
    """Splits argv into the driver's options and the plan's arguments."""
    opts: dict = {"conf": []}
    rest: list = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in _VALUED:
            if not eq:
                if i + 1 >= len(argv):
                    raise DriverError(f"{name} needs a value\n\n{USAGE}")
                value = argv[i + 1]
                i += 1
            key = "out" if name == "-o" else name[2:].replace("-", "_")
            if key == "conf":
                opts["conf"].append(value)
            elif key in opts:
                raise DriverError(f"{name} given twice (once is expected)")
            else:
                opts[key] = value
        elif arg in _FLAGS:
            opts[arg[2:].replace("-", "_")] = True
        else:
            rest.append(arg)
        i += 1
    return opts, rest


def _inside(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or below it (both canonical)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def check_paths(args: list, out: str, work: str, outputs: dict) -> None:
    """Refuses, before anything is planned or created, what ``newsdedup
    clean`` refuses and what would make the run write into its own input:
    ``OUT`` inside (or equal to) an input or containing one, the working
    folder inside an input, a working folder that is a file, and an output
    file (``outputs``: option name → path) whose parent is not an existing
    folder or that is a folder. The inputs are the positional arguments that
    exist (an option's value that happens to name a path is checked too:
    harmless, it cannot be OUT's tree)."""
    real = os.path.realpath
    out_r, work_r = real(out), real(work)
    for given in (a for a in args if not a.startswith("-") and os.path.exists(a)):
        root = real(given)
        if _inside(out_r, root):
            raise DriverError(f"{out}: --out is inside the input tree {given}")
        if _inside(root, out_r):
            raise DriverError(f"{out}: --out contains the input tree {given}")
        if _inside(work_r, root):
            raise DriverError(f"{work}: the working folder is inside the input tree {given} (give --work elsewhere)")
    if os.path.exists(work) and not os.path.isdir(work):
        raise DriverError(f"{work}: the working folder exists and is not a folder")
    for option, path in outputs.items():
        if path is None:
            continue
        parent = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise DriverError(f"{option} {path}: is a folder (a file path is expected)")
        if not os.path.isdir(parent):
            raise DriverError(f"{option} {path}: the folder {parent} does not exist")


def _core():
    """The Rust core (``newsdedup._core``), checked for the scale-out bindings."""
    from . import _core as core

    if not hasattr(core, "keys"):
        raise DriverError("this build of newsdedup has no scale-out bindings: reinstall the package (pip install ./python)")
    return core


# ---- tasks (run on the executors; module-level so they pickle by reference) ----


def _maybe_fail(work: str, step: str, rank: int, fail: str | None) -> None:
    which, _, ranks = (fail or "").partition(":")
    if which != step or ranks not in ("*", str(rank)):
        return
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is not None and ctx.attemptNumber() == 0:
        marker = os.path.join(work, f"injected-{step}-{rank:06d}")
        with open(marker, "w") as f:
            f.write(str(ctx.attemptNumber()))
        raise RuntimeError(f"{FAIL_ENV}: injected failure of the first attempt of {step} {rank}")


def keys_task(work: str, rank: int, fail: str | None = None) -> str:
    """The keys step of shard ``rank``: a one-line JSON summary."""
    summary = _core().keys(work, rank)
    _maybe_fail(work, "keys", rank, fail)
    return summary


def apply_task(work: str, out: str, rank: int, fail: str | None = None) -> str:
    """The apply step of shard ``rank``: a one-line JSON summary."""
    summary = _core().apply(work, rank, out)
    _maybe_fail(work, "apply", rank, fail)
    return summary


# ---- engines ----


class DuckdbEngine:
    """One node: keys/apply on a thread pool (the bindings release the GIL),
    decide in DuckDB."""

    name = "duckdb"

    def __init__(self, parallel: int | None = None):
        try:
            import duckdb  # noqa: F401
        except ImportError as e:
            raise DriverError("--engine duckdb needs the duckdb package: pip install duckdb") from e
        self.parallel = parallel or os.cpu_count() or 1

    def task_threads(self) -> int:
        """Threads of each task's Rust pool: the CPUs shared by the tasks running at once."""
        return max(1, (os.cpu_count() or 1) // self.parallel)

    def map(self, fn, ranks: list) -> list:
        with concurrent.futures.ThreadPoolExecutor(self.parallel) as pool:
            return list(pool.map(fn, ranks))

    def decide(self, work: str, batches: list, ranks: list | None = None) -> None:
        _decide.decide_duckdb(work, batches, self.parallel, ranks)

    def stop(self) -> None:
        pass


class SparkEngine:
    """Apache Spark (PySpark ≥ 4): one task per shard, decide in Spark SQL."""

    name = "spark"

    def __init__(self, spark=None, master: str | None = None, conf: list | None = None):
        self.owned = spark is None
        if spark is None:
            spark = start_spark(master, conf or [])
        self.spark = spark

    def task_threads(self) -> int:
        """Threads of each task's Rust pool: ``spark.task.cpus`` (default 1, one task per core)."""
        return max(1, int(self.spark.conf.get("spark.task.cpus", "1")))

    def map(self, fn, ranks: list) -> list:
        if not ranks:
            return []
        sc = self.spark.sparkContext
        return sc.parallelize(ranks, len(ranks)).map(fn).collect()

    def decide(self, work: str, batches: list, ranks: list | None = None) -> None:
        _decide.decide_spark(self.spark, work, batches, ranks)

    def stop(self) -> None:
        if self.owned:
            self.spark.stop()


# The master URLs Spark knows (https://spark.apache.org/docs/latest/submitting-applications.html#master-urls).
_MASTER = re.compile(r"local(\[(\*|[1-9][0-9]*)(,[1-9][0-9]*)?\])?|local-cluster\[[0-9]+,[0-9]+,[0-9]+\]"
                     r"|(spark|k8s|mesos)://\S+|yarn")


def _has_pyspark() -> bool:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return True


def check_master(master: str | None) -> None:
    """Refuses a master URL Spark would not parse (before anything starts)."""
    if master is not None and not _MASTER.fullmatch(master):
        raise DriverError(
            f"--master {master}: not a Spark master URL (local, local[N], local[N,MAX_FAILURES], local[*], "
            "spark://HOST:PORT, yarn, k8s://URL)"
        )


def start_spark(master: str | None, conf: list):
    """A SparkSession for the driver, with clear errors when PySpark or Java
    is missing or the master cannot be reached."""
    try:
        import pyspark
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise DriverError("--engine spark needs PySpark 4 or later: pip install 'pyspark>=4' (or use --engine duckdb)") from e
    if int(pyspark.__version__.split(".")[0]) < 4:
        raise DriverError(f"PySpark {pyspark.__version__} is installed; newsdedup-spark needs 4 or later: pip install 'pyspark>=4'")
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise DriverError("Spark needs Java 17 or later: install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)")
    check_master(master)
    local = master is None or master.startswith("local")
    if local:
        # Local executors run this Python, where newsdedup is installed.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("newsdedup-spark").config("spark.ui.showConsoleProgress", "false")
    if master:
        builder = builder.master(master)
    for item in conf:
        key, eq, value = item.partition("=")
        if not eq:
            raise DriverError(f"--conf {item}: expected KEY=VALUE")
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as e:  # the JVM's errors arrive as many types
        raise DriverError(f"cannot start Spark (master {master or 'default'}): {str(e).strip().splitlines()[0]}") from e
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# ---- the run ----


def _batch_name(roots: list) -> str:
    """The single-node ``--index`` default batch: the canonical input paths, NUL-separated."""
    return "\0".join(os.path.realpath(r) for r in roots)


def clean(
    args: list,
    out: str,
    *,
    engine: str = "spark",
    spark=None,
    master: str | None = None,
    conf: list | None = None,
    index: str | None = None,
    batch: str | None = None,
    explain: str | None = None,
    report: str | None = None,
    rejects: str | None = None,
    work: str | None = None,
    keep_work: bool = False,
    shard_bytes: int | None = None,
    parallel: int | None = None,
    outputs: dict | None = None,
) -> dict:
    """Runs the scale-out clean: ``args`` are the inputs and ``newsdedup clean``
    options (as on the command line). Returns ``{"report": ..., "timings": ...}``
    (the report as the single-node ``--report`` JSON). ``outputs``: more
    files the caller writes after the run (option → path), checked first."""
    timings: dict = {}
    t0 = time.monotonic()
    if engine not in ("spark", "duckdb"):
        raise DriverError(f"--engine {engine}: expected spark or duckdb")
    if batch is not None and index is None:
        raise DriverError("--batch names a batch of the cluster index: give --index DIR too")
    if engine == "spark":
        check_master(master)
    core = _core()
    out = os.path.abspath(out)
    work = os.path.abspath(work or out.rstrip("/") + ".newsdedup-work")
    check_paths(args, out, work, {"--explain": explain, "--report": report, "--rejects": rejects, **(outputs or {})})
    fail = os.environ.get(FAIL_ENV)
    eng = DuckdbEngine(parallel) if engine == "duckdb" else SparkEngine(spark, master, conf)
    timings["start"] = {"seconds": time.monotonic() - t0}
    ix = None
    created = not os.path.exists(work)
    done = False
    try:
        t = time.monotonic()
        os.makedirs(work, exist_ok=True)
        plan_args = [*args, "--work", work]
        if not _gives_threads(args):
            # One task per core: each task's Rust pool gets the cores of its task, not every core.
            plan_args += ["--threads", str(eng.task_threads())]
        if shard_bytes is not None:
            plan_args += ["--shard-bytes", str(shard_bytes)]
        manifest = json.loads(core.plan(plan_args))
        ranks = [s["rank"] for s in manifest["shards"]]
        if index is not None:
            name = batch if batch is not None else _batch_name(manifest["roots"])
            ix = _cluster_index.plan(os.path.abspath(index), name)
        timings["plan"] = {"seconds": time.monotonic() - t, "shards": len(ranks)}

        if not ranks:
            # An empty input (as `newsdedup clean`): no keys, decide or apply; an empty OUT
            # and the report, explain and rejects of nothing (merge_report below).
            os.makedirs(out, exist_ok=True)
        t = time.monotonic()
        summaries = [json.loads(s) for s in eng.map(lambda r: keys_task(work, r, fail), ranks)]
        timings["keys"] = {
            "seconds": time.monotonic() - t,
            "rows": sum(s.get("rows", 0) for s in summaries),
            "documents": sum(s.get("documents", 0) for s in summaries),
            "bytes": sum(s.get("bytes", 0) for s in summaries),
            "parquet_bytes": _size(os.path.join(work, "keys")),
        }
        t = time.monotonic()
        if ranks:
            eng.decide(work, ix.earlier if ix else [], ranks)
        timings["decide"] = {"seconds": time.monotonic() - t, "parquet_bytes": _size(os.path.join(work, "drops"))}
        t = time.monotonic()
        summaries = [json.loads(s) for s in eng.map(lambda r: apply_task(work, out, r, fail), ranks)]
        timings["apply"] = {"seconds": time.monotonic() - t, "new_keys": sum(s.get("new_keys", 0) for s in summaries)}
        t = time.monotonic()
        merged = json.loads(core.merge_report(work, report, explain, rejects))
        timings["merge_report"] = {"seconds": time.monotonic() - t}
        if ix is not None:  # commit last
            t = time.monotonic()
            committed = _cluster_index.commit(ix, work, ranks)
            timings["index_commit"] = {"seconds": time.monotonic() - t, **committed}
        done = True
    finally:
        eng.stop()
        if ix is not None:
            ix.release()
        # A finished run removes the working folder; a failed or interrupted
        # one removes it only when this run created it (never a --work it was given).
        if not keep_work and (done or created):
            shutil.rmtree(work, ignore_errors=True)
    timings["total"] = {"seconds": time.monotonic() - t0}
    return {"report": merged, "timings": timings}


def _gives_threads(args: list) -> bool:
    """Whether the clean options set ``--threads``/``-j`` themselves."""
    return any(a in ("--threads", "-j") or a.startswith("--threads=") or (a.startswith("-j") and a[2:].isdigit())
               for a in args)


def _size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files if f.endswith(".parquet"))
    return total


def main(argv: list | None = None) -> int:
    """The ``newsdedup-spark`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] != "clean":
        print(f"newsdedup-spark: unknown command {argv[0]!r}\n\n{USAGE}", end="", file=sys.stderr)
        return 2
    import signal

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    try:
        # SIGTERM as SIGINT (as the CLI): stop, clean up, exit 130.
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave the handler alone
        previous = None
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("newsdedup-spark: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list) -> int:
    try:
        opts, rest = _parse(argv[1:])
        if "out" not in opts:
            raise DriverError(f"--out OUT is required\n\n{USAGE}")
        if not any(not a.startswith("-") for a in rest):
            raise DriverError(f"no INPUT given\n\n{USAGE}")
        for n in ("shard_bytes", "parallel"):
            if n in opts:
                try:
                    opts[n] = int(opts[n])
                except ValueError:
                    raise DriverError(f"--{n.replace('_', '-')} {opts[n]}: expected a whole number") from None
        timings_file = opts.pop("timings", None)
        result = clean(rest, opts.pop("out"), outputs={"--timings": timings_file}, **opts)
    except (DriverError, _cluster_index.ClusterIndexError) as e:
        print(f"newsdedup-spark: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        from ._errors import NewsdedupError

        if isinstance(e, (NewsdedupError, ValueError, OSError)):
            print(f"newsdedup-spark: {e}", file=sys.stderr)
            return 2
        if type(e).__module__.split(".")[0] in ("pyspark", "py4j"):
            # A task that failed on every attempt: its last line names the error (and the file).
            lines = [line for line in str(e).splitlines() if line.strip()]
            last = next((line for line in reversed(lines) if "Error" in line or "error" in line), lines[-1] if lines else "")
            print(f"newsdedup-spark: a Spark task failed: {last.strip()}", file=sys.stderr)
            return 2
        raise
    if timings_file:
        with open(timings_file, "w", encoding="utf-8") as f:
            json.dump(result["timings"], f, indent=2)
            f.write("\n")
    totals = result["report"].get("totals", {})
    t = result["timings"]
    if "-q" not in rest and "--quiet" not in rest:  # -q is also passed to the plan (a clean option)
        print(
            "newsdedup-spark: {} documents, paragraphs {} in, {} kept; start {:.1f} s, plan {:.1f} s, keys {:.1f} s, "
            "decide {:.1f} s, apply {:.1f} s, total {:.1f} s".format(
                totals.get("documents_read"), totals.get("paragraphs_in"), totals.get("paragraphs_kept"),
                *(t[step]["seconds"] for step in ("start", "plan", "keys", "decide", "apply", "total")),
            ),
            file=sys.stderr,
        )
    # As `newsdedup clean`: 1 when an input failed or a record was rejected (each is reported).
    return 1 if totals.get("inputs_failed") or totals.get("records_rejected") else 0


if __name__ == "__main__":
    sys.exit(main())
