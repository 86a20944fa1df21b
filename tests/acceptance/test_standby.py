"""Reading events from a hot standby (`--read-dsn`): a real primary and a streaming
standby started here (pg_basebackup), writers committing out of order, the standby's
replay paused and resumed, two dispatchers (one reading each server), SIGKILL, and the
control that shows the read horizon is what keeps it exactly once."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgstore import replica
from pgstore.messages import NewMessage
from pgstore.migrate import migrate
from pgstore.observatory import Observatory, ReaderPool, Search
from pgstore.store import EventStore
from tests.acceptance.subprocesses import ROOT, environment, run_python
from tests.pgcluster import LocalCluster
from tests.waiting import wait_until

Conn = psycopg.Connection[Any]
JOBS, STEPS = 8, 20


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[LocalCluster, LocalCluster]]:
    primary = LocalCluster()
    primary.start()
    try:
        standby = primary.standby()
        try:
            yield primary, standby
        finally:
            standby.destroy()
    finally:
        primary.destroy()


@pytest.fixture
def dsns(servers: tuple[LocalCluster, LocalCluster]) -> Iterator[tuple[str, str]]:
    """(primary, standby) conninfo of a fresh migrated database, present on both."""
    primary, standby = servers
    name = f"standby_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(primary.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(primary.dsn(name)) as conn:
        migrate(conn)
    with (
        psycopg.connect(primary.dsn(), autocommit=True) as on_primary,
        psycopg.connect(standby.dsn(), autocommit=True) as on_standby,
    ):
        assert replica.wait_for_replay(on_primary, on_standby, timeout=30)
    yield primary.dsn(name), standby.dsn(name)
    with psycopg.connect(primary.dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def replay(standby_dsn: str, paused: bool) -> None:
    with psycopg.connect(standby_dsn, autocommit=True) as conn:
        conn.execute(f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()")


def progress(conn: Conn) -> list[tuple[str, int, int]]:
    return conn.execute(
        "SELECT id, (data->>'done')::int, (data->>'out_of_order')::int"
        " FROM pgstore.aggregates WHERE category = 'progress' ORDER BY id"
    ).fetchall()


def test_a_wake_up_waits_for_the_standby_to_replay(dsns: tuple[str, str]) -> None:
    primary_dsn, standby_dsn = dsns
    with (
        psycopg.connect(primary_dsn, autocommit=True) as primary,
        psycopg.connect(standby_dsn, autocommit=True) as standby,
    ):
        replay(standby_dsn, paused=True)
        try:
            with EventStore.connect(primary_dsn) as store:
                store.append("job-1", NewMessage("ordering.Step.v1", {"n": 0}))
            assert not replica.wait_for_replay(primary, standby, timeout=0.3)
            assert replica.replay_lag(primary, standby).bytes > 0
        finally:
            replay(standby_dsn, paused=False)
        assert replica.wait_for_replay(primary, standby, timeout=30)
        assert replica.replay_lag(primary, standby).bytes == 0


def test_read_dsn_must_be_a_standby(dsns: tuple[str, str]) -> None:
    primary_dsn, _ = dsns
    result = dispatch(primary_dsn, "--once", "--read-dsn", primary_dsn)
    assert result.returncode == 6 and "must name a hot standby" in result.stderr


def dispatch(dsn: str, *options: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_python(
        "-m", "pgstore", "dispatch", "tests.apps.ordering", *options,
        env=environment(dsn, **({"ORDERING_SUBSCRIPTION_TYPE": "event_store"} | env)),
    )  # fmt: skip


@pytest.mark.parametrize("subscription_type", ["event_store", "stream"])
def test_events_are_read_on_the_standby(dsns: tuple[str, str], subscription_type: str) -> None:
    """With the standby's replay paused, a dispatcher reading it sees nothing of what
    the primary has; once replay resumes, it handles everything, once."""
    primary_dsn, standby_dsn = dsns
    kind = {"ORDERING_SUBSCRIPTION_TYPE": subscription_type}
    assert dispatch(primary_dsn, "--once", "--read-dsn", standby_dsn, **kind).returncode == 0
    replay(standby_dsn, paused=True)
    try:
        with EventStore.connect(primary_dsn) as store:
            for n in range(3):
                store.append("job-1", NewMessage("ordering.Step.v1", {"n": n}))
        result = dispatch(primary_dsn, "--once", "--read-dsn", standby_dsn, **kind)
        assert result.returncode == 0, result.stderr[-2000:]
        with psycopg.connect(primary_dsn) as conn:
            assert progress(conn) == []  # the standby had none of them yet
    finally:
        replay(standby_dsn, paused=False)
    result = dispatch(primary_dsn, "--once", "--read-dsn", standby_dsn, **kind)
    assert result.returncode == 0, result.stderr[-2000:]
    with psycopg.connect(primary_dsn) as conn:
        assert progress(conn) == [("job-1", 3, 0)]
    status = subprocess.run(
        [sys.executable, "-m", "pgstore", "status", "--read-dsn", standby_dsn],
        cwd=ROOT, env=environment(primary_dsn), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert status.returncode == 0 and "standby: " in status.stdout


def append_out_of_order(primary_dsn: str) -> None:
    """Each step of every job, in pairs of jobs: the older transaction takes its id
    first, the newer appends and commits, then the older appends and commits, so a
    lower global position commits after a higher one, again and again."""
    with psycopg.connect(primary_dsn) as older, psycopg.connect(primary_dsn) as newer:
        store = EventStore.connect(primary_dsn)
        try:
            for step in range(STEPS):
                for job in range(0, JOBS, 2):
                    older.execute("SELECT pg_current_xact_id()")
                    message = NewMessage("ordering.Step.v1", {"n": step})
                    store.append(f"job-{job + 1}", message, conn=newer)
                    newer.commit()
                    store.append(f"job-{job}", NewMessage("ordering.Step.v1", {"n": step}),
                                 conn=older)  # fmt: skip
                    older.commit()
                    time.sleep(0.01)  # pacing, so the dispatchers work while it writes
        finally:
            store.close()


def test_two_dispatchers_out_of_order_commits_paused_replay_and_sigkill(
    dsns: tuple[str, str], tmp_path: Path
) -> None:
    primary_dsn, standby_dsn = dsns
    env = environment(
        primary_dsn, ORDERING_SUBSCRIPTION_TYPE="event_store", ORDERING_HANDLER_SECONDS="0.002"
    )
    command = [sys.executable, "-m", "pgstore", "dispatch", "tests.apps.ordering", "-v"]
    log = tmp_path / "standby-reader.log"

    def reading_standby() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*command, "--read-dsn", standby_dsn], cwd=ROOT, env=env, stderr=log.open("a")
        )

    on_standby = reading_standby()
    on_primary: subprocess.Popen[bytes] | None = None
    writing = threading.Thread(target=append_out_of_order, args=(primary_dsn,))
    rng = random.Random(3)
    try:
        writing.start()
        while writing.is_alive():
            replay(standby_dsn, paused=True)
            time.sleep(rng.uniform(0, 0.15))  # not synchronisation: random pause lengths
            replay(standby_dsn, paused=False)
            time.sleep(rng.uniform(0, 0.15))
            if on_primary is None and "handled" in log.read_text():
                # The standby's reader is at work: kill it (mid-run, perhaps mid-batch),
                # start it again, and a second dispatcher reading the primary beside it.
                on_standby.send_signal(signal.SIGKILL)
                on_standby.wait(10)
                on_standby = reading_standby()
                on_primary = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        writing.join()
        replay(standby_dsn, paused=False)
        with psycopg.connect(primary_dsn, autocommit=True) as conn:
            total = "SELECT coalesce(sum((data->>'done')::int), 0) FROM pgstore.aggregates"
            wait_until(lambda: conn.execute(total).fetchone() == (JOBS * STEPS,), timeout=120)
            rows = progress(conn)
    finally:
        running = [p for p in (on_standby, on_primary) if p is not None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
    assert on_primary is not None, "the standby's reader did nothing while the writer wrote"
    assert rows == sorted((f"job-{job}", STEPS, 0) for job in range(JOBS))
    assert "handled" in log.read_text()  # the standby's reader did part of the work


def test_without_the_horizon_a_standby_reader_skips_late_commits(dsns: tuple[str, str]) -> None:
    """The control: on the standby, a reader that takes whatever is there and moves
    past it misses the older transaction's event, which commits later with a lower
    global position; pgstore's read (below the horizon) waits for it and misses nothing."""
    primary_dsn, standby_dsn = dsns
    naive = (
        "SELECT global_position FROM pgstore.messages WHERE category = 'job'"
        " AND global_position >= %s ORDER BY global_position"
    )
    gap_safe = "SELECT global_position FROM pgstore.read_category('job', %s, 100)"
    with (
        psycopg.connect(primary_dsn, autocommit=True) as primary,
        psycopg.connect(standby_dsn, autocommit=True) as standby,
        psycopg.connect(primary_dsn) as older,
        EventStore.connect(primary_dsn) as store,
    ):
        older.execute("SELECT pg_current_xact_id()")  # the older transaction's id
        store.append("job-2", NewMessage("ordering.Step.v1", {"n": 0}))  # commits first
        assert replica.wait_for_replay(primary, standby, timeout=30)
        seen_naively = [row[0] for row in standby.execute(naive, (0,))]
        seen_safely = [row[0] for row in standby.execute(gap_safe, (0,))]
        store.append("job-1", NewMessage("ordering.Step.v1", {"n": 0}), conn=older)
        older.commit()
        assert replica.wait_for_replay(primary, standby, timeout=30)
        naive_next = [row[0] for row in standby.execute(naive, (max(seen_naively) + 1,))]
        safe_from = max(seen_safely) + 1 if seen_safely else 0
        safe_next = [row[0] for row in standby.execute(gap_safe, (safe_from,))]
    assert len(seen_naively) == 1 and naive_next == []  # the late commit was skipped
    assert seen_safely == [] and len(safe_next) == 2  # held back, then both


def pgstore(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "pgstore", *args, env=environment(dsn))


def test_query_read_and_the_observatory_read_the_standby(dsns: tuple[str, str]) -> None:
    """What the standby has not replayed yet, they do not show; the primary has it."""
    primary_dsn, standby_dsn = dsns
    count = "SELECT count(*) AS n FROM pgstore.events WHERE category = 'job'"
    assert pgstore(primary_dsn, "query", count, "--json").returncode == 0  # roles, login
    with EventStore.connect(primary_dsn) as store:
        store.append("job-1", NewMessage("ordering.Step.v1", {"n": 0}))
    with (
        psycopg.connect(primary_dsn, autocommit=True) as primary,
        psycopg.connect(standby_dsn, autocommit=True) as standby,
    ):
        assert replica.wait_for_replay(primary, standby, timeout=30)
    pool = ReaderPool(primary_dsn)
    events_pool = ReaderPool(primary_dsn, read_conninfo=standby_dsn)
    observatory = Observatory(pool, [], events_pool=events_pool)
    with events_pool.connection():  # logged in on the standby while it replays
        pass
    replay(standby_dsn, paused=True)
    try:
        with EventStore.connect(primary_dsn) as store:
            store.append("job-1", NewMessage("ordering.Step.v1", {"n": 1}))
        on_primary = pgstore(primary_dsn, "query", count, "--json")
        assert on_primary.returncode == 0 and '"n": 2' in on_primary.stdout
        read = pgstore(primary_dsn, "read", "job-1", "--json", "--read-dsn", standby_dsn)
        assert read.returncode == 0 and read.stdout.count('"stream_name"') == 1
        assert len(observatory.events(Search(category="job"))) == 1
        assert observatory.status().handlers == []  # from the primary
    finally:
        replay(standby_dsn, paused=False)
        pool.close()
        events_pool.close()
    # The query login's password is set on the primary: with replay paused it could
    # not reach the standby, so the query on the standby runs once replay resumes.
    on_standby = pgstore(primary_dsn, "query", count, "--json", "--read-dsn", standby_dsn)
    assert on_standby.returncode == 0, on_standby.stderr
    assert '"n": 2' in on_standby.stdout


def test_a_read_cancelled_by_replay_is_run_again(
    servers: tuple[LocalCluster, LocalCluster],
) -> None:
    """A standby that cancels at once (max_standby_streaming_delay 0) what holds back
    its replay: a read whose snapshot still needs rows the primary has vacuumed away is
    cancelled, and pgstore reads again instead of failing."""
    primary, _ = servers
    standby = primary.standby(settings={"max_standby_streaming_delay": "0"})
    try:
        with psycopg.connect(primary.dsn(), autocommit=True) as on_primary:
            on_primary.execute("CREATE TABLE conflicted AS SELECT generate_series(1, 1000) AS n")
            with psycopg.connect(standby.dsn(), autocommit=True) as on_standby:
                assert replica.wait_for_replay(on_primary, on_standby, timeout=30)

                def remove_rows() -> None:
                    # Once the standby's read holds its snapshot: rows it may need, gone.
                    sleeping = (
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE state = 'active' AND query LIKE '%%pg_sleep(5)%%'"
                        " AND pid <> pg_backend_pid()"
                    )
                    with psycopg.connect(standby.dsn(), autocommit=True) as watcher:
                        wait_until(lambda: watcher.execute(sleeping).fetchone() == (1,), 10)
                    with psycopg.connect(primary.dsn(), autocommit=True) as writer:
                        writer.execute("DELETE FROM conflicted WHERE n > 10")
                        writer.execute("VACUUM conflicted")

                calls: list[str] = []

                def read() -> int:
                    calls.append("read")
                    if len(calls) == 1:
                        threading.Thread(target=remove_rows).start()
                        query = "SELECT count(*) FROM conflicted, pg_sleep(5)"
                    else:
                        query = "SELECT count(*) FROM conflicted"
                    row = on_standby.execute(query).fetchone()
                    assert row is not None
                    return int(row[0])

                assert replica.retrying_conflicts(read) == 10
                assert len(calls) == 2  # cancelled once, read again
    finally:
        standby.destroy()
        with psycopg.connect(primary.dsn(), autocommit=True) as on_primary:
            on_primary.execute("DROP TABLE IF EXISTS conflicted")
