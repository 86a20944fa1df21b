"""Splitting an event_store handler's category into partitions: exact at every change
of split, per-partition lag, rewind, and the setting checked."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from pgstore import AggregateRoot, Domain, Event, handle
from pgstore._queries import QUERIES
from pgstore.dispatch import Dispatcher
from pgstore.dispatch.subscription import Session
from pgstore.errors import ConfigurationError
from pgstore.messages import NewMessage
from pgstore.operations import rewind
from pgstore.status import collect
from pgstore.store import EventStore
from tests.waiting import wait_until

Conn = psycopg.Connection[Any]
STREAMS = 10


def build(dsn: str, partitions: Any, seen: list[tuple[str, int]]) -> Domain:
    domain = Domain(
        "split",
        dsn=dsn,
        config={"subscription": {"partitions": partitions, "messages_per_tick": 7}},
    )

    @domain.aggregate(stream_category="item")
    class Item(AggregateRoot):
        pass

    @domain.event(part_of=Item)
    class Ticked(Event):
        n: int

    @domain.aggregate
    class Tally(AggregateRoot):
        count: int = 0
        last: int = -1
        out_of_order: int = 0

    @domain.event_handler(part_of=Tally, stream_category="item")
    class Tallies:
        @handle(Ticked)
        def ticked(self, event: Ticked) -> None:
            stream = event._message.stream_name  # type: ignore[attr-defined]
            seen.append((stream, event.n))
            repository = domain.repository_for(Tally)
            tally = repository.get_or_new(stream)
            tally.out_of_order += event.n != tally.last + 1
            tally.last = event.n
            tally.count += 1
            repository.add(tally)

    return domain


def tick(store: EventStore, rounds: range) -> None:
    for n in rounds:
        for stream in range(STREAMS):
            store.append(f"item-{stream}", NewMessage("split.Ticked.v1", {"n": n}))


def tallies(conn: Conn) -> list[tuple[int, int, int]]:
    rows = conn.execute(
        "SELECT (data->>'count')::int, (data->>'last')::int, (data->>'out_of_order')::int"
        " FROM pgstore.aggregates WHERE category = 'tally' ORDER BY id"
    ).fetchall()
    return [tuple(row) for row in rows]


def dispatch(dsn: str, partitions: int) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    domain = build(dsn, partitions, seen)
    Dispatcher(domain, once=True).run()
    domain.close()
    return seen


def split_of(conn: Conn) -> list[tuple[int, int]]:
    return conn.execute(
        "SELECT partition, partitions FROM pgstore.handler_partitions ORDER BY partition"
    ).fetchall()


def test_every_change_of_split_is_exact(dsn: str, conn: Conn, store: EventStore) -> None:
    tick(store, range(0, 3))
    assert len(dispatch(dsn, 1)) == 3 * STREAMS and split_of(conn) == []
    tick(store, range(3, 6))
    assert len(dispatch(dsn, 4)) == 3 * STREAMS  # 1 -> 4, at any time
    assert split_of(conn) == [(n, 4) for n in range(4)]
    tick(store, range(6, 9))
    assert len(dispatch(dsn, 3)) == 3 * STREAMS  # 4 -> 3, caught up first
    assert split_of(conn) == [(n, 3) for n in range(3)]
    tick(store, range(9, 12))
    assert len(dispatch(dsn, 1)) == 3 * STREAMS  # 3 -> 1
    assert split_of(conn) == []
    assert tallies(conn) == [(12, 11, 0)] * STREAMS


def test_a_split_waits_until_every_partition_has_caught_up(
    dsn: str, conn: Conn, store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    tick(store, range(0, 2))
    dispatch(dsn, 4)
    tick(store, range(2, 4))
    seen: list[tuple[str, int]] = []
    domain = build(dsn, 2, seen)
    dispatcher = Dispatcher(domain, once=True)
    with psycopg.connect(dsn, autocommit=True) as work:
        (subscription,) = dispatcher.subscriptions
        subscription.start(work, Session(1))  # behind: the split stays
        assert split_of(conn) == [(n, 4) for n in range(4)]
        assert "waits until every partition has caught up" in caplog.text
        subscription.tick(work)  # runs on the split it has
    dispatcher.run()  # the tick that finds nothing new makes the new split
    domain.close()
    assert len(seen) == 2 * STREAMS
    assert split_of(conn) == [(0, 2), (1, 2)]
    assert tallies(conn) == [(4, 3, 0)] * STREAMS


def test_lag_counts_each_partition_from_its_own_position(
    dsn: str, conn: Conn, store: EventStore
) -> None:
    tick(store, range(0, 2))
    dispatch(dsn, 4)
    # Partition 0 falls behind by its share of three more rounds; the others do not.
    conn.execute("UPDATE pgstore.handler_partitions SET position = 0 WHERE partition = 0")
    behind = conn.execute(
        "SELECT count(*) FROM pgstore.messages WHERE category = 'item'"
        " AND abs(mod(consumer_hash, 4)) = 0"
    ).fetchone()
    (status,) = collect(conn).handlers
    assert status.partitions == 4 and status.position == 0
    assert behind is not None and status.lag_events == behind[0]


def test_rewind_moves_every_partition(dsn: str, conn: Conn, store: EventStore) -> None:
    tick(store, range(0, 2))
    dispatch(dsn, 4)
    rewind(conn, "split.Tallies", global_position=0)
    positions = conn.execute("SELECT DISTINCT position FROM pgstore.handler_partitions").fetchall()
    assert positions == [(0,)]
    assert len(dispatch(dsn, 4)) == 2 * STREAMS  # all of it again, as a rewind means
    assert tallies(conn) == [(4, 1, 1)] * STREAMS  # 0, 1, then 0 (out of order), 1


@pytest.mark.parametrize("partitions", [0, 257, "4", True, 2.5])
def test_the_setting_is_checked(dsn: str, partitions: Any) -> None:
    domain = build(dsn, partitions, [])
    with pytest.raises(ConfigurationError, match="partitions must be an integer from 1 to 256"):
        Dispatcher(domain, once=True)


def test_workers_starting_together_make_one_split(dsn: str, conn: Conn, store: EventStore) -> None:
    """A worker that waited for another worker's split finds it made, and does not make
    it again (the count it saw before waiting is stale by then)."""
    tick(store, range(0, 1))
    dispatch(dsn, 1)  # the handler's position row exists, not split
    domain = build(dsn, 4, [])
    (subscription,) = Dispatcher(domain, once=True).subscriptions
    failures: list[BaseException] = []

    def start() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as work:
                subscription.start(work, Session(1))
        except BaseException as error:  # the thread reports it to the assertion below
            failures.append(error)

    with psycopg.connect(dsn) as other:  # the other worker, splitting first
        other.execute(
            "SELECT FROM pgstore.handler_positions WHERE handler = 'split.Tallies' FOR UPDATE"
        )
        starting = threading.Thread(target=start)
        starting.start()
        waiting = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        wait_until(lambda: conn.execute(waiting).fetchone() == (1,))
        other.execute(
            "INSERT INTO pgstore.handler_partitions (handler, partition, partitions, position)"
            " SELECT 'split.Tallies', n, 4, 0 FROM generate_series(0, 3) AS n"
        )
        other.commit()
    starting.join(timeout=30)
    domain.close()
    assert failures == []
    assert split_of(conn) == [(n, 4) for n in range(4)]


def test_a_split_seen_only_after_the_lock_stops_the_whole_batch(
    dsn: str, conn: Conn, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """position_lock decides "not split" in its statement's snapshot, and a split can
    commit between that snapshot and the row lock. Such a tick must run nothing on the
    whole category (the partitions start where it would): here position_lock is made
    to miss the split, as the race would have it."""
    tick(store, range(0, 2))
    dispatch(dsn, 4)
    tick(store, range(2, 3))
    stale = "SELECT position, category FROM pgstore.handler_positions WHERE handler = %(handler)s"
    monkeypatch.setitem(QUERIES, "position_lock", stale)
    seen: list[tuple[str, int]] = []
    domain = build(dsn, 4, seen)
    Dispatcher(domain, once=True).run()
    domain.close()
    assert sorted(seen) == sorted((f"item-{s}", 2) for s in range(STREAMS))  # once each
    assert tallies(conn) == [(3, 2, 0)] * STREAMS
