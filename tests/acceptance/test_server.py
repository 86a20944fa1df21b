"""The embedded default server, driven through the CLI with no database configured."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.subprocesses import environment, run_python


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # As root the server runs as another user, which must reach the directory.
    base = Path(tempfile.mkdtemp(prefix="pgstore-embedded-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base / "embedded"
    finally:
        run("server", "stop", data_dir=base / "embedded")
        shutil.rmtree(base, ignore_errors=True)


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "pgstore", *args, env=environment(PGSTORE_DATA_DIR=str(data_dir)))


def test_embedded_server_lifecycle(data_dir: Path) -> None:
    assert run("server", "status", data_dir=data_dir).returncode == 1

    migrated = run("migrate", data_dir=data_dir)
    assert migrated.returncode == 0, migrated.stderr
    assert "using the embedded PostgreSQL 18" in migrated.stderr
    assert str(data_dir) in migrated.stderr
    assert run("append", "order-1", "Placed", data_dir=data_dir).returncode == 0

    status = run("server", "status", data_dir=data_dir)
    assert status.returncode == 0 and "running:        yes" in status.stdout
    url = run("server", "url", data_dir=data_dir).stdout.strip()
    assert url.startswith("postgresql://") and str(data_dir) in url

    read = run("read", "order-1", "--json", data_dir=data_dir)
    assert '"Placed"' in read.stdout

    assert run("server", "stop", data_dir=data_dir).stdout.strip() == "stopped"
    assert run("server", "status", data_dir=data_dir).returncode == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="the containment rule applies to root")
def test_private_data_dir_is_refused_as_root(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    result = run("server", "start", data_dir=private / "embedded")
    assert result.returncode == 5
    assert "is private" in result.stderr


def test_the_python_api_finds_the_embedded_server_and_says_so(data_dir: Path) -> None:
    assert run("migrate", data_dir=data_dir).returncode == 0
    script = (
        "from pgstore import Domain, EventStore, NewMessage\n"
        "with EventStore() as store:\n"
        "    store.append('order-1', NewMessage('Placed', {}))\n"
        "with EventStore('') as store:\n"  # an empty string is no connection string
        "    print(len(store.read_stream('order-1')))\n"
        "Domain('x').store.read_stream('order-1')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=environment(PGSTORE_DATA_DIR=str(data_dir)),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    # Said once per process, on stderr, as the CLI says it.
    assert result.stderr.count("using the embedded PostgreSQL 18") == 1
    assert str(data_dir) in result.stderr
