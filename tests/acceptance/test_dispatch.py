"""`pgstore dispatch` as a user runs it: the bookstore walk-through, SIGTERM, SIGKILL."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgstore.messages import NewMessage
from pgstore.store import EventStore
from tests.acceptance.subprocesses import ROOT, environment, run_python
from tests.waiting import wait_until


def run(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_python("-m", *args, env=environment(dsn))


def test_bookstore_walk_through(dsn: str) -> None:
    """The README's example, command by command."""
    assert run(dsn, "pgstore", "migrate").returncode == 0
    assert run(dsn, "examples.bookstore", "stock", "1", "100").returncode == 0
    shipped = run(dsn, "examples.bookstore", "ship", "1", "10")
    assert shipped.returncode == 0, shipped.stderr
    dispatched = run(dsn, "pgstore", "dispatch", "examples.bookstore", "--once")
    assert dispatched.returncode == 0, dispatched.stderr
    assert "bookstore.ManageInventory: 1 handled" in dispatched.stderr
    assert run(dsn, "examples.bookstore", "show", "1").stdout.strip() == "book 1: 90 in stock"


def test_sigterm_stops_cleanly(dsn: str, tmp_path: Path) -> None:
    log_file = tmp_path / "dispatch.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "pgstore", "dispatch", "examples.bookstore"],
        cwd=ROOT,
        env=environment(dsn),
        stderr=log_file.open("w"),
    )
    try:
        with psycopg.connect(dsn) as conn:
            wait_until(
                lambda: (
                    conn.execute("SELECT count(*) FROM pgstore.handler_positions").fetchone()
                    == (1,)
                ),
                timeout=30,
            )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    assert "finishing the current batch, then stopping" in log_file.read_text()


def test_bad_app_is_a_clear_error(dsn: str) -> None:
    result = run(dsn, "pgstore", "dispatch", "no_such_module_here")
    assert result.returncode == 6
    assert "Could not import 'no_such_module_here'" in result.stderr


EVENTS = 2000


def counter(conn: psycopg.Connection[Any]) -> tuple[int, int] | None:
    row = conn.execute(
        "SELECT (data->>'total')::int, (data->>'count')::int FROM pgstore.aggregates "
        "WHERE category = 'counter' AND id = 'main'"
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else None


def reached(conn: psycopg.Connection[Any], expected: tuple[int, int]) -> bool:
    return counter(conn) == expected


def changed(conn: psycopg.Connection[Any], before: tuple[int, int] | None) -> bool:
    return counter(conn) != before


@pytest.mark.parametrize(("subscription_type", "workers"), [("event_store", 1), ("stream", 2)])
def test_sigkill_at_random_moments_never_doubles_or_loses_effects(
    dsn: str, subscription_type: str, workers: int
) -> None:
    """Kill the dispatcher (all its workers) with SIGKILL again and again while it
    works; the final state is the state of handling every event exactly once."""
    assert run(dsn, "pgstore", "migrate").returncode == 0
    rng = random.Random(7)
    amounts = [rng.randint(1, 9) for _ in range(EVENTS)]
    with EventStore.connect(dsn) as store:
        store.append("counter-main", NewMessage("setup", {}))
        with store.connection() as conn:
            conn.execute(
                "INSERT INTO pgstore.aggregates (category, id, version, data) "
                'VALUES (\'counter\', \'main\', 0, \'{"id": "main", "total": 0, "count": 0}\')'
            )
        for start in range(0, EVENTS, 100):
            store.append(
                f"tally-{start // 100}",
                [
                    NewMessage("counting.Incremented.v1", {"amount": a})
                    for a in amounts[start : start + 100]
                ],
            )

    env = environment(
        dsn,
        COUNTER_TICK="7",
        COUNTER_HANDLER_SECONDS="0.0005",
        COUNTER_TYPE=subscription_type,
        COUNTER_VT="2",
    )
    command = [sys.executable, "-m", "pgstore", "dispatch", "tests.apps.counter"]
    workers_option = ["--workers", str(workers)] if workers > 1 else []
    kills_mid_run = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(12):
            before = counter(conn)
            process = subprocess.Popen(
                [*command, *workers_option],
                cwd=ROOT,
                env=env,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            # Let it make some progress, then kill it at a random moment.
            wait_until(functools.partial(changed, conn, before), timeout=60, interval=0.005)
            time.sleep(rng.random() * 0.3)  # not synchronisation: a random kill moment
            os.killpg(process.pid, signal.SIGKILL)  # the parent and every worker
            process.wait(timeout=30)
            state = counter(conn)
            assert state is not None
            if state[1] < EVENTS:
                kills_mid_run += 1
            else:
                break
        # Run to the end: messages a killed worker had read come back after their
        # visibility timeout, so wait for the count rather than run --once.
        final = subprocess.Popen(
            [*command, *workers_option],
            cwd=ROOT,
            env=env,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        others = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        try:
            wait_until(functools.partial(reached, conn, (sum(amounts), EVENTS)), timeout=120)
            # Up and listening (the kills may have left nothing to do): a SIGTERM to a
            # process still importing would not test the clean stop.
            wait_until(lambda: (conn.execute(others).fetchone() or (0,))[0] >= 2, timeout=60)
            os.killpg(final.pid, signal.SIGTERM)
            assert final.wait(timeout=60) == 0
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(final.pid, signal.SIGKILL)
        assert counter(conn) == (sum(amounts), EVENTS)
    assert kills_mid_run >= 3, "the dispatcher finished before it could be killed mid-run"


def test_three_workers_share_a_stream_handler_in_stream_order(dsn: str, tmp_path: Path) -> None:
    assert run(dsn, "pgstore", "migrate").returncode == 0
    jobs, steps = 12, 15
    log_file = tmp_path / "dispatch.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pgstore",
            "dispatch",
            "tests.apps.ordering",
            "--workers",
            "3",
            "-v",
        ],
        cwd=ROOT,
        env=environment(dsn, ORDERING_HANDLER_SECONDS="0.01"),
        stderr=log_file.open("w"),  # a file, not a pipe: a full pipe would block the workers
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        registered = "SELECT count(*) FROM pgstore.stream_subscriptions"
        wait_until(lambda: conn.execute(registered).fetchone() == (1,), timeout=60)
    with EventStore.connect(dsn) as store:
        for step in range(steps):  # interleaved across jobs, as real traffic is
            for job in range(jobs):
                store.append(f"job-{job}", NewMessage("ordering.Step.v1", {"n": step}))
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:

            def all_done() -> bool:
                row = conn.execute(
                    "SELECT coalesce(sum((data->>'done')::int), 0) FROM pgstore.aggregates "
                    "WHERE category = 'progress'"
                ).fetchone()
                return row is not None and row[0] == jobs * steps

            wait_until(all_done, timeout=120, interval=0.05)
            rows = conn.execute(
                "SELECT id, (data->>'done')::int, (data->>'out_of_order')::int "
                "FROM pgstore.aggregates WHERE category = 'progress'"
            ).fetchall()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    assert sorted(rows) == sorted((f"job-{j}", steps, 0) for j in range(jobs))
    log = log_file.read_text()
    pids = {line.split()[2] for line in log.splitlines() if "handled from queue" in line}
    assert len(pids) >= 2, "the work was not shared between workers"


def test_bookstore_with_a_stream_subscription(dsn: str) -> None:
    """The walk-through gives the same result with the handler on a pgmq queue."""
    env = environment(dsn, BOOKSTORE_SUBSCRIPTION_TYPE="stream")

    def bookstore(*args: str) -> subprocess.CompletedProcess[str]:
        return run_python("-m", *args, env=env)

    assert bookstore("pgstore", "migrate").returncode == 0
    assert bookstore("examples.bookstore", "stock", "1", "100").returncode == 0
    assert bookstore("examples.bookstore", "ship", "1", "10").returncode == 0
    dispatched = bookstore("pgstore", "dispatch", "examples.bookstore", "--once", "-v")
    assert dispatched.returncode == 0, dispatched.stderr
    assert "handled from queue" in dispatched.stderr
    assert bookstore("examples.bookstore", "show", "1").stdout.strip() == "book 1: 90 in stock"


def test_a_module_that_fails_to_import_is_a_clear_error(dsn: str) -> None:
    result = run(dsn, "pgstore", "dispatch", "tests.apps.broken")
    assert result.returncode == 6
    assert (
        "Could not import 'tests.apps.broken': RuntimeError: this module is broken on purpose"
        in (result.stderr)
    )
    assert "Traceback" not in result.stderr


def test_an_unknown_profile_fails_at_start(dsn: str, tmp_path: Path) -> None:
    module = tmp_path / "badprofile.py"
    module.write_text(
        "from pgstore import Domain, handle\n"
        "domain = Domain('bad')\n"
        "@domain.event_handler(stream_category='x', subscription_profile='turbo')\n"
        "class H:\n"
        "    @handle('$any')\n"
        "    def any(self, event): ...\n"
    )
    env = environment(dsn) | {"PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "pgstore", "dispatch", "badprofile", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 6
    assert "Unknown subscription profile 'turbo'" in result.stderr
