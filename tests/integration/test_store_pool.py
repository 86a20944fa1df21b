"""The store's pool: only idle connections are checked, single calls run in autocommit,
and what the pool hands out is transactional."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from pgstore.errors import WrongExpectedVersion
from pgstore.messages import NewMessage
from pgstore.store import EventStore, IdleCheck
from tests.waiting import wait_until

Conn = psycopg.Connection[Any]


def end_session(conn: Conn, victim: Conn) -> None:
    """End `victim`'s server session, as a server restart would, and wait until it is gone."""
    pid = victim.info.backend_pid
    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    wait_until(
        lambda: (
            conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is None
        ),
        timeout=10,
    )


def test_a_connection_just_back_is_not_checked_and_an_idle_one_is(dsn: str, conn: Conn) -> None:
    with psycopg.connect(dsn) as just_back, psycopg.connect(dsn) as idle:
        end_session(conn, just_back)
        end_session(conn, idle)
        check = IdleCheck(idle_after=3600)
        check.reset(just_back)
        check.check(just_back)  # no round trip: the ended session goes unnoticed
        with pytest.raises(psycopg.OperationalError):
            check.check(idle)  # never seen back: checked
    with psycopg.connect(dsn) as long_idle:
        end_session(conn, long_idle)
        check = IdleCheck(idle_after=0)
        check.reset(long_idle)
        with pytest.raises(psycopg.OperationalError):
            check.check(long_idle)  # back longer ago than idle_after: checked


def test_the_pool_replaces_an_idle_connection_whose_session_ended(dsn: str, conn: Conn) -> None:
    idle = IdleCheck(idle_after=0)
    with ConnectionPool(
        dsn, min_size=1, max_size=1, check=idle.check, reset=idle.reset, open=True
    ) as pool:
        store = EventStore(pool)
        store.append("order-1", NewMessage("First", {}))
        with pool.connection() as pooled:
            victim = pooled
        end_session(conn, victim)
        store.append("order-1", NewMessage("Second", {}))
        assert [m.type for m in store.read_stream("order-1")] == ["First", "Second"]


def test_single_calls_leave_the_pool_transactional(store: EventStore, dsn: str) -> None:
    store.append("order-1", NewMessage("First", {}))
    with pytest.raises(WrongExpectedVersion):
        store.append("order-1", NewMessage("Late", {}), expected_version=-1)
    assert store.stream_version("order-1") == 0
    with store.connection() as conn:
        assert not conn.autocommit
        store.append("order-2", NewMessage("Undone", {}), conn=conn)
        conn.rollback()
    assert store.read_stream("order-2") == []
