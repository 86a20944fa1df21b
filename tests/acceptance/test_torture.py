"""Torture: writers with expected versions, dispatchers of both subscription types killed
with SIGKILL at random, and the PostgreSQL server restarted (fast, then immediate) under
them. Afterwards every event is handled exactly once per handler, in stream order,
nothing skipped, positions gap-free. `pytest --soak` runs it longer."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import psycopg
import psycopg_pool
import pytest

from pgstore.errors import WrongExpectedVersion
from pgstore.messages import NewMessage
from pgstore.migrate import migrate
from pgstore.store import EventStore
from tests.acceptance.subprocesses import ROOT, environment
from tests.pgcluster import LocalCluster
from tests.waiting import wait_until

STREAMS = 6


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A server of this test's own: it is restarted under load."""
    cluster = LocalCluster()
    cluster.start()
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE torture")
    with psycopg.connect(cluster.dsn("torture")) as conn:
        migrate(conn)
    try:
        yield cluster
    finally:
        cluster.destroy()


def writer(dsn: str, seed: int, events: int) -> int:
    """Append `events` events to shared streams with expected versions, riding out
    restarts: a failed call is retried with the same message id (idempotent)."""
    rng = random.Random(seed)
    written = 0
    store: EventStore | None = None
    while written < events:
        stream = f"acct-{rng.randrange(STREAMS)}"
        message_id = uuid.uuid4()
        while True:
            try:
                if store is None:
                    store = EventStore.connect(dsn, max_size=1)
                version = store.stream_version(stream)
                seq = 0 if version is None else version + 1
                message = NewMessage("torture.Deposited.v1", {"seq": seq}, id=message_id)
                store.append(stream, message, expected_version=-1 if version is None else version)
                break
            except WrongExpectedVersion:
                continue  # another writer was first: read the version again
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout):
                if store is not None:
                    store.close()
                    store = None
                time.sleep(0.2)
        written += 1
    if store is not None:
        store.close()
    return written


def dispatcher(dsn: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pgstore", "dispatch", "tests.apps.torture"],
        cwd=ROOT,
        env=environment(dsn),
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    process.wait(timeout=30)


def handled(dsn: str, handler: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT coalesce(sum((data->>'count')::int), 0) FROM pgstore.aggregates"
            " WHERE category = 'progress' AND id LIKE %s",
            (f"{handler}:%",),
        ).fetchone()
        return int(row[0]) if row else 0


def test_torture(
    own_cluster: LocalCluster, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    soak = bool(request.config.getoption("--soak"))
    writers, events = (4, 1000) if soak else (3, 120)
    dsn = own_cluster.dsn("torture")
    rng = random.Random(11)
    context = multiprocessing.get_context("spawn")
    dispatchers = [dispatcher(dsn), dispatcher(dsn)]
    kills = restarts = 0
    with context.Pool(writers) as pool:
        pending = pool.starmap_async(writer, [(dsn, seed, events) for seed in range(writers)])
        started = time.monotonic()
        restart_modes = ["fast", "immediate"]
        while not pending.ready() or kills < 4:  # keep killing while the handlers catch up
            time.sleep(rng.uniform(0.3, 1.0))  # not synchronisation: a random moment
            victim = rng.randrange(len(dispatchers))
            kill(dispatchers[victim])
            dispatchers[victim] = dispatcher(dsn)
            kills += 1
            if restart_modes and time.monotonic() - started > 2 + 3 * restarts:
                own_cluster.restart(restart_modes.pop(0))
                restarts += 1
            assert time.monotonic() - started < 600, "writers did not finish"
        written = sum(pending.get(timeout=60))
    try:
        for mode in restart_modes:  # the writers were quicker than the schedule
            own_cluster.restart(mode)
            restarts += 1
        wait_until(
            lambda: handled(dsn, "Direct") >= written and handled(dsn, "Queued") >= written,
            timeout=180,
            interval=0.2,
        )
    finally:
        for process in dispatchers:
            kill(process, signal.SIGTERM)

    with psycopg.connect(dsn) as conn:
        stored = conn.execute(
            "SELECT count(*), count(DISTINCT id) FROM pgstore.messages"
        ).fetchone()
        heads = conn.execute(
            "SELECT h.stream_name, h.version, count(m.*), max(m.position)"
            " FROM pgstore.stream_heads h JOIN pgstore.messages m USING (stream_name)"
            " GROUP BY h.stream_name, h.version"
        ).fetchall()
        progress = conn.execute(
            "SELECT id, (data->>'count')::int, (data->>'out_of_order')::int FROM pgstore.aggregates"
            " WHERE category = 'progress' ORDER BY id"
        ).fetchall()
        lengths: dict[str, int] = dict(
            conn.execute(
                "SELECT stream_name, count(*) FROM pgstore.messages GROUP BY stream_name"
            ).fetchall()
        )
    report = (
        f"torture: {written} events appended by {writers} writers; {kills} dispatcher kills "
        f"(SIGKILL); {restarts} server restarts (fast, immediate); stored {stored}; "
        f"handled Direct={handled(dsn, 'Direct')} Queued={handled(dsn, 'Queued')}"
    )
    with capsys.disabled():  # shown even without -s: the counts are the point of this test
        print(f"\n{report}")
    assert stored == (written, written), "a message was lost or stored twice"
    for stream_name, version, count, last in heads:  # gap-free positions from 0
        assert count == version + 1 == last + 1, stream_name
    for key, count, out_of_order in progress:
        handler, stream_name = key.split(":", 1)
        assert count == lengths[stream_name], f"{handler} handled {stream_name} {count} times"
        assert out_of_order == 0, f"{handler} saw {stream_name} out of order"
    assert handled(dsn, "Direct") == handled(dsn, "Queued") == written
    assert kills >= 3 and restarts == 2
