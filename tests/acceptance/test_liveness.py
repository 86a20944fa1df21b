"""Workers that race, finish and die, as `pgstore dispatch --workers N` runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from pgstore.messages import NewMessage
from pgstore.store import EventStore
from tests.acceptance.subprocesses import ROOT, environment, run_python
from tests.waiting import wait_until

Conn = psycopg.Connection[Any]


def dispatch(dsn: str, app: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "pgstore", "dispatch", app, *args, env=environment(dsn, **env))


def counter(conn: Conn) -> tuple[int, int]:
    row = conn.execute(
        "SELECT (data->>'first')::int, (data->>'second')::int FROM pgstore.aggregates"
        " WHERE category = 'counter' AND id = 'shared'"
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def bump(store: EventStore, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        store.append(f"bump-{n % 7}", NewMessage("contention.Bumped.v1", {"n": n}))


def test_two_handlers_racing_on_one_aggregate_lose_nothing(
    dsn: str, conn: Conn, store: EventStore
) -> None:
    """200 events, two handlers of each updating one Counter, four workers, max_retries
    0: every event is handled by both, exactly once, and nothing is dead-lettered."""
    bump(store, 200)
    result = dispatch(dsn, "tests.apps.contention", "--once", "--workers", "4")
    assert result.returncode == 0, result.stderr[-3000:]
    assert counter(conn) == (200, 200)
    rows = conn.execute(
        "SELECT handler, dead_letters, conflicts FROM pgstore.handlers ORDER BY 1"
    ).fetchall()
    assert [(handler, dead) for handler, dead, _ in rows] == [
        ("contention.First", 0),
        ("contention.Second", 0),
    ]
    assert sum(conflicts for _, _, conflicts in rows) > 0, "the handlers never collided"
    assert conn.execute("SELECT count(*) FROM pgstore.handler_failures").fetchone() == (0,)


def test_once_with_four_workers_always_finishes(dsn: str, conn: Conn, store: EventStore) -> None:
    """The old --once waited forever (16 runs of 17) when another worker took the
    message it had scheduled a retry for."""
    for run in range(20):
        bump(store, 10, start=run * 10)
        started = time.monotonic()
        result = dispatch(
            dsn, "tests.apps.contention", "--once", "--workers", "4",
            CONTENTION_HANDLER_SECONDS="0",
        )  # fmt: skip
        assert result.returncode == 0, (run, result.stderr[-3000:])
        assert time.monotonic() - started < 60
        assert counter(conn) == ((run + 1) * 10, (run + 1) * 10), run


def test_a_killed_workers_messages_are_handled_again_within_seconds(
    dsn: str, conn: Conn, store: EventStore, tmp_path: Path
) -> None:
    """A visibility timeout of 30 s; the worker holding a batch is SIGKILLed; another
    worker hands those messages out again at once (its claims died with it)."""
    assert dispatch(dsn, "tests.apps.contention", "--once").returncode == 0  # the queues
    bump(store, 20)
    log = (tmp_path / "killed.log").open("w")
    doomed = subprocess.Popen(
        [sys.executable, "-m", "pgstore", "dispatch", "tests.apps.contention", "--handler",
         "First"],
        cwd=ROOT,
        env=environment(dsn, CONTENTION_HANDLER_SECONDS="0.5"),
        stderr=log,
    )  # fmt: skip
    try:
        claimed = "SELECT count(*) FROM pgstore.queue_claims WHERE cardinality(msg_ids) > 0"
        wait_until(lambda: conn.execute(claimed).fetchone() != (0,), timeout=60)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
    finally:
        doomed.kill()
    started = time.monotonic()
    result = dispatch(dsn, "tests.apps.contention", "--once", CONTENTION_HANDLER_SECONDS="0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.monotonic() - started < 20  # not the 30 s visibility timeout
    assert counter(conn) == (20, 20)
    assert "claimed by a worker that is gone" in result.stderr


def children_of(pid: int) -> set[int]:
    """The processes whose parent is `pid` (Linux: from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_a_worker_that_dies_is_replaced(
    dsn: str, conn: Conn, store: EventStore, tmp_path: Path
) -> None:
    """`--workers 2`: one worker is SIGKILLed; the supervisor starts another, which
    handles what comes next; SIGTERM still stops them all cleanly."""
    log = tmp_path / "workers.log"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "pgstore", "dispatch", "tests.apps.contention", "--workers", "2"],
        cwd=ROOT,
        env=environment(dsn, CONTENTION_HANDLER_SECONDS="0"),
        stderr=log.open("w"),
    )
    try:
        wait_until(lambda: len(children_of(supervisor.pid)) == 2, timeout=30)
        first = children_of(supervisor.pid)
        doomed = min(first)
        os.kill(doomed, signal.SIGKILL)
        wait_until(
            lambda: len(children := children_of(supervisor.pid)) == 2 and children != first,
            timeout=30,
        )
        bump(store, 20)
        wait_until(lambda: counter(conn) == (20, 20), timeout=60)
        assert f"worker {doomed} ended unexpectedly (signal SIGKILL)" in log.read_text()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        supervisor.kill()
