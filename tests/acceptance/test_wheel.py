"""The built wheel carries sql/ and migrations/ and can migrate from a clean virtualenv."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.acceptance.subprocesses import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("pgstore-*.whl")
    return built


def test_wheel_carries_sql_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (ROOT / "sql").rglob("*.sql"):
        assert f"pgstore/_resources/sql/{path.relative_to(ROOT / 'sql')}" in names
    for path in (ROOT / "migrations").glob("*.sql"):
        assert f"pgstore/_resources/migrations/{path.name}" in names
    assert "pgstore/_queries.sql" in names


@pytest.mark.slow
def test_wheel_installs_into_a_clean_venv_and_migrates(
    wheel: Path, tmp_path: Path, dsn: str
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    # Run from a directory without the source tree, so only the wheel's files are used.
    result = subprocess.run(
        [str(venv / "bin" / "pgstore"), "--dsn", dsn, "migrate"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    appended = subprocess.run(
        [str(venv / "bin" / "pgstore"), "--dsn", dsn, "append", "order-1", "Placed"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert appended.returncode == 0, appended.stderr
