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
