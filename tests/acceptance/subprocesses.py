"""What the command-line tests give the subprocesses they start: the repository root
and an environment that points at the test's database only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def environment(dsn: str | None = None, **extra: str) -> dict[str, str]:
    """This process's environment without any PG* variable (libpq's and pgstore's, so
    nothing of the caller's setup leaks in), then PGSTORE_DSN=dsn if given, then extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if dsn is not None:
        env["PGSTORE_DSN"] = dsn
    return env | extra


def run_python(
    *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python ARGS` from the repository root in `env`, its output captured as text; an
    exit code is the test's to assert, never raised."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
