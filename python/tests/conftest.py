"""Shared helpers: the repository, the CLI binary, a generated corpus."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def cli_path() -> Path:
    """The CLI to compare with: $NEWSDEDUP_BIN, else target/debug/newsdedup
    (built with cargo when missing)."""
    env = os.environ.get("NEWSDEDUP_BIN")
    if env:
        return Path(env)
    path = REPO / "target" / "debug" / "newsdedup"
    if not path.exists():
        subprocess.run(["cargo", "build", "--locked", "--quiet", "--bin", "newsdedup"], cwd=REPO, check=True)
    return path


@pytest.fixture(scope="session")
def cli():
    binary = cli_path()

    def run(*args, cwd=None) -> bytes:
        done = subprocess.run([str(binary), *map(str, args)], cwd=cwd, capture_output=True)
        assert done.returncode in (0, 1), done.stderr.decode(errors="replace")
        return done.stdout

    return run


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """A small seeded corpus from benches/gencorpus.py: tree/, all.txt, big.jsonl."""
    out = tmp_path_factory.mktemp("corpus")
    mb = os.environ.get("NEWSDEDUP_TEST_MB", "1")
    subprocess.run(
        [sys.executable, str(REPO / "benches" / "gencorpus.py"), str(out), "--mb", mb, "--seed", "7"],
        check=True,
        capture_output=True,
    )
    return out


def tree_files(root: Path):
    """Files under root in the CLI's corpus order (relative path, byte-wise)."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return sorted(files, key=lambda p: os.fsencode(p.relative_to(root)))


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession for every scale-out test: local[2,4] (2 cores; a
    failed task is retried up to 4 times), no UI, few shuffle partitions, the
    executors running this Python (where newsdedup is installed)."""
    pyspark = pytest.importorskip("pyspark", reason="PySpark is not installed (pip install 'pyspark>=4')")
    import shutil

    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        pytest.skip("Java is not installed (apt-get install openjdk-17-jre-headless)")
    assert int(pyspark.__version__.split(".")[0]) >= 4, pyspark.__version__
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2,4]")
        .appName("newsdedup-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
