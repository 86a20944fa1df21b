"""event_store handlers shared by several workers: the category split into partitions,
each stream in one, each partition run by one worker at a time. Real processes, kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from pgstore.messages import NewMessage
from pgstore.store import EventStore
from tests.acceptance.subprocesses import ROOT, environment
from tests.waiting import wait_until

Conn = psycopg.Connection[Any]
JOBS, STEPS = 12, 15
PARTITIONED = {
    "ORDERING_SUBSCRIPTION_TYPE": "event_store",
    "ORDERING_PARTITIONS": "4",
}


def worker(dsn: str, log: Path, *options: str, seconds: str = "0.01") -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pgstore", "dispatch", "tests.apps.ordering", "-v", *options],
        cwd=ROOT,
        env=environment(dsn, ORDERING_HANDLER_SECONDS=seconds, **PARTITIONED),
        stderr=log.open("a"),  # a file, not a pipe: a full pipe would block the worker
    )


def append_steps(dsn: str) -> None:
    with EventStore.connect(dsn) as store:
        for step in range(STEPS):  # interleaved across jobs, as real traffic is
            for job in range(JOBS):
                store.append(f"job-{job}", NewMessage("ordering.Step.v1", {"n": step}))


def progress(conn: Conn) -> list[tuple[str, int, int, int]]:
    return conn.execute(
        "SELECT id, (data->>'done')::int, (data->>'out_of_order')::int, (data->>'pid')::int"
        " FROM pgstore.aggregates WHERE category = 'progress' ORDER BY id"
    ).fetchall()


def all_done(conn: Conn) -> bool:
    return sum(done for _, done, _, _ in progress(conn)) >= JOBS * STEPS


def test_workers_share_an_event_store_handler_in_stream_order(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    log = tmp_path / "dispatch.log"
    process = worker(dsn, log, "--workers", "3")
    try:
        split = "SELECT count(*) FROM pgstore.handler_partitions"
        wait_until(lambda: conn.execute(split).fetchone() == (4,), timeout=60)
        append_steps(dsn)
        wait_until(lambda: all_done(conn), timeout=120, interval=0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    rows = progress(conn)
    assert [(job, done, wrong) for job, done, wrong, _ in rows] == sorted(
        (f"job-{j}", STEPS, 0) for j in range(JOBS)
    )
    assert len({pid for *_, pid in rows}) >= 2, "the work was not shared between workers"
    (status,) = conn.execute("SELECT lag_events, partitions FROM pgstore.handlers").fetchall()
    assert status == (0, 4)


def test_a_killed_worker_loses_nothing_and_repeats_nothing(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    """Three workers; one is SIGKILLed while it holds a partition mid-batch; the two
    left finish: every step handled once, in order (a repeat or a skip shows as done
    != STEPS or as out of order)."""
    log = tmp_path / "dispatch.log"
    workers = [worker(dsn, log, seconds="0.05") for _ in range(3)]
    try:
        split = "SELECT count(*) FROM pgstore.handler_partitions"
        wait_until(lambda: conn.execute(split).fetchone() == (4,), timeout=60)
        append_steps(dsn)
        # Each batch takes a quarter of a second (5 steps of 50 ms): once work is
        # under way, a worker is almost always inside one.
        wait_until(lambda: sum(d for _, d, _, _ in progress(conn)) > JOBS, timeout=60)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        wait_until(lambda: all_done(conn), timeout=180, interval=0.05)
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    rows = progress(conn)
    assert [(job, done, wrong) for job, done, wrong, _ in rows] == sorted(
        (f"job-{j}", STEPS, 0) for j in range(JOBS)
    )
