"""Stream subscriptions on pgmq: fan-out, slow handlers, retries, dead letters, replay."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from pgstore import AggregateRoot, Domain, Event, handle
from pgstore.dispatch import Dispatcher
from pgstore.dispatch.dead_letters import QueueDeadLetters
from pgstore.dispatch.stream import StreamSubscription, queue_names
from pgstore.dispatch.subscription import Session
from pgstore.envelope import new_message
from tests.waiting import wait_until

Conn = psycopg.Connection[Any]


class Calls:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.fail: set[str] = set()  # handler names that raise
        self.slow_seconds = 0.0
        self.lock = threading.Lock()


@pytest.fixture
def calls() -> Calls:
    return Calls()


def build(dsn: str, calls: Calls, **subscription: Any) -> Domain:
    config = {
        "subscription": {
            "subscription_type": "stream",
            "retry_delay_seconds": 0,
            "max_retries": 1,
            **subscription,
        }
    }
    domain = Domain("fanout", dsn=dsn, config=config)

    @domain.aggregate
    class Parcel(AggregateRoot):
        label: str = ""

    @domain.event(part_of=Parcel)
    class Sent(Event):
        n: int

    @domain.aggregate
    class Tally(AggregateRoot):
        count: int = 0

    def record(name: str, event: Sent) -> None:
        with calls.lock:
            calls.seen.append((name, event.n))
        if name in calls.fail:
            raise RuntimeError(f"{name} refuses {event.n}")
        time.sleep(calls.slow_seconds)  # a slow handler, to outlast a visibility timeout
        repository = domain.repository_for(Tally)
        tally = repository.get_or_new(name)
        tally.count += 1
        repository.add(tally)

    @domain.event_handler(part_of=Tally, stream_category="parcel")
    class First:
        @handle(Sent)
        def on_sent(self, event: Sent) -> None:
            record("First", event)

    @domain.event_handler(part_of=Tally, stream_category="parcel")
    class Second:
        @handle(Sent)
        def on_sent(self, event: Sent) -> None:
            record("Second", event)

    return domain


@pytest.fixture
def fanout(dsn: str, calls: Calls) -> Iterator[Domain]:
    domain = build(dsn, calls)
    yield domain
    domain.close()


def send(domain: Domain, *numbers: int, stream_id: str = "p1") -> None:
    parcel_model = domain.aggregates["Parcel"]
    sent_model: Any = domain.events["fanout.Sent.v1"]
    parcel = parcel_model(id=stream_id)
    for n in numbers:
        parcel.raise_(sent_model(n=n))
    messages = [new_message(e, parcel.stream_name, None) for e in parcel._events]
    domain.store.append(parcel.stream_name, messages)


def tally(conn: Conn, name: str) -> int:
    row = conn.execute(
        "SELECT (data->>'count')::int FROM pgstore.aggregates WHERE category = 'tally' AND id = %s",
        (name,),
    ).fetchone()
    return int(row[0]) if row else 0


def test_every_handler_gets_its_own_queue_and_every_event(
    fanout: Domain, calls: Calls, conn: Conn
) -> None:
    send(fanout, 1, 2, 3)
    send(fanout, 4, stream_id="p2")
    Dispatcher(fanout, once=True).run()
    assert sorted(n for name, n in calls.seen if name == "First") == [1, 2, 3, 4]
    assert sorted(n for name, n in calls.seen if name == "Second") == [1, 2, 3, 4]
    assert tally(conn, "First") == tally(conn, "Second") == 4
    queues = {row[0] for row in conn.execute("SELECT queue FROM pgstore.stream_subscriptions")}
    assert queues == {queue_names("fanout.First")[0], queue_names("fanout.Second")[0]}
    for queue in queues:  # handled messages are deleted, nothing is left behind
        assert conn.execute("SELECT queue_length FROM pgmq.metrics(%s)", (queue,)).fetchone() == (
            0,
        )
    # Running again delivers nothing twice.
    Dispatcher(fanout, once=True).run()
    assert len(calls.seen) == 8


def test_a_slow_handler_outliving_its_visibility_timeout_is_not_applied_twice(
    dsn: str, calls: Calls, conn: Conn
) -> None:
    domain = build(dsn, calls, visibility_timeout_seconds=1)
    calls.slow_seconds = 2.5
    send(domain, 1)
    first = Dispatcher(domain, handlers=["First"], once=True)
    second = Dispatcher(domain, handlers=["First"], once=True)
    worker = threading.Thread(target=first.run)
    worker.start()
    wait_until(lambda: len(calls.seen) == 1, timeout=10)
    # The message's visibility timeout runs out while the first worker is still busy.
    visible_again = sql.SQL("SELECT count(*) FROM pgmq.{} WHERE vt < now()").format(
        sql.Identifier("q_" + queue_names("fanout.First")[0])
    )
    wait_until(lambda: conn.execute(visible_again).fetchone() == (1,), timeout=10)
    second.run()  # reads it again, waits on the first worker's lock, finds it handled
    worker.join(30)
    domain.close()
    assert [n for name, n in calls.seen if name == "First"] == [1]
    assert tally(conn, "First") == 1


def test_dead_letter_after_max_retries_then_replay_to_that_handler_only(
    fanout: Domain, calls: Calls, conn: Conn
) -> None:
    calls.fail.add("First")
    send(fanout, 7)
    Dispatcher(fanout, once=True).run()
    # max_retries=1: two attempts, then First's dead-letter queue; Second is unaffected.
    assert [n for name, n in calls.seen if name == "First"] == [7, 7]
    assert tally(conn, "Second") == 1
    queue, dead_letter_queue = queue_names("fanout.First")
    letters = QueueDeadLetters("fanout.First", queue, dead_letter_queue).list(conn)
    assert len(letters) == 1
    letter = letters[0]
    assert letter.attempts == 2 and "First refuses 7" in letter.error
    assert "RuntimeError" in letter.traceback
    assert letter.first_failed_at <= letter.last_failed_at

    calls.fail.clear()
    assert QueueDeadLetters("fanout.First", queue, dead_letter_queue).replay(conn, None) == 1
    Dispatcher(fanout, once=True).run()
    assert tally(conn, "First") == 1
    assert tally(conn, "Second") == 1  # replay went to First only
    assert QueueDeadLetters("fanout.First", queue, dead_letter_queue).list(conn) == []


def test_retry_count_survives_a_restart(dsn: str, calls: Calls, conn: Conn) -> None:
    domain = build(dsn, calls, max_retries=2, retry_delay_seconds=0)
    calls.fail.add("First")
    send(domain, 1)
    dispatcher = Dispatcher(domain, handlers=["First"], once=True)
    subscription = dispatcher.subscriptions[0]
    assert isinstance(subscription, StreamSubscription)
    with psycopg.connect(dsn, autocommit=True) as work:
        subscription.start(work, Session(1))
        subscription.tick(work)  # attempt 1 fails; the worker "dies" here
    Dispatcher(domain, handlers=["First"], once=True).run()  # a new worker: attempts 2 and 3
    domain.close()
    assert [n for name, n in calls.seen if name == "First"] == [1, 1, 1]
    queue, dead_letter_queue = queue_names("fanout.First")
    (letter,) = QueueDeadLetters("fanout.First", queue, dead_letter_queue).list(conn)
    assert letter.attempts == 3


def test_without_dlq_the_message_is_dropped_after_its_attempts(
    dsn: str, calls: Calls, conn: Conn
) -> None:
    domain = build(dsn, calls, enable_dlq=False)
    calls.fail.add("First")
    send(domain, 1)
    Dispatcher(domain, handlers=["First"], once=True).run()
    domain.close()
    assert len([n for name, n in calls.seen if name == "First"]) == 2
    queue, dead_letter_queue = queue_names("fanout.First")
    assert QueueDeadLetters("fanout.First", queue, dead_letter_queue).list(conn) == []
    assert conn.execute("SELECT queue_length FROM pgmq.metrics(%s)", (queue,)).fetchone() == (0,)


def test_a_failed_message_holds_back_the_rest_of_its_stream(
    dsn: str, calls: Calls, conn: Conn
) -> None:
    domain = build(dsn, calls, max_retries=3, retry_delay_seconds=0)
    failures = {"left": 2}

    original = domain.handlers[0].cls.on_sent

    def flaky(self: Any, event: Any) -> None:
        if event.n == 1 and failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("not yet")
        original(self, event)

    domain.handlers[0].cls.on_sent = flaky
    send(domain, 1, 2, 3)
    Dispatcher(domain, handlers=["First"], once=True).run()
    domain.close()
    handled = [n for name, n in calls.seen if name == "First"]
    # 1 failed twice; 2 and 3 only ran after 1 succeeded.
    assert handled == [1, 2, 3]
    assert tally(conn, "First") == 3


def test_the_feeder_queues_only_what_the_handler_runs(store: Any, conn: Conn) -> None:
    """Types and source_stream are filtered when the queue is fed, in every type."""
    from pgstore.messages import NewMessage as New

    store.append("stock-1", New("Taken", {}, {"origin_stream": "order-7"}))
    store.append("stock-2", New("Taken", {}, {"origin_stream": "checkout-7"}))
    store.append("stock-3", New("Taken", {}))
    store.append("stock-4", New("Counted", {}, {"origin_stream": "order-8"}))
    conn.execute("SELECT pgmq.create('feedtest')")
    conn.execute("INSERT INTO pgstore.handler_positions (handler, category) VALUES ('h', 'stock')")
    row = conn.execute(
        "SELECT pgstore.feed_queue('h', 'feedtest', 'stock', 100, ARRAY['Taken'], 'order')"
    ).fetchone()
    assert row == (4,)  # moved past all four
    queued = conn.execute("SELECT message->>'stream_name' FROM pgmq.q_feedtest").fetchall()
    assert queued == [("stock-1",)]
    assert conn.execute("SELECT pgstore.feed_queue('h', 'feedtest', 'stock', 100)").fetchone() == (
        0,
    )


def test_the_feeder_tops_the_queue_up_to_its_limit_and_no_further(store: Any, conn: Conn) -> None:
    """A queue that grew with the backlog would slow every grouped read."""
    from pgstore.messages import NewMessage as New

    store.append("stock-1", [New("Taken", {"n": n}) for n in range(25)])
    conn.execute("SELECT pgmq.create('limited')")
    conn.execute("INSERT INTO pgstore.handler_positions (handler, category) VALUES ('h', 'stock')")

    def feed() -> int:
        row = conn.execute("SELECT pgstore.feed_queue('h', 'limited', 'stock', 10)").fetchone()
        assert row is not None
        return int(row[0])

    def queued() -> list[int]:
        rows = conn.execute("SELECT (message->'data'->>'n')::int FROM pgmq.q_limited ORDER BY 1")
        return [int(row[0]) for row in rows]

    assert feed() == 10
    assert feed() == 0  # full: nothing more, and the position stays put
    assert queued() == list(range(10))
    conn.execute("SELECT pgmq.delete('limited', ARRAY[1, 2, 3]::bigint[])")
    assert feed() == 3  # topped up, in order, from where it stopped
    assert queued() == list(range(3, 13))


def test_a_consumer_vacuums_its_queue_as_it_deletes(
    fanout: Domain, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pgstore.dispatch.stream.VACUUM_AFTER_DELETES", 5)
    queue = queue_names("fanout.First")[0]

    def vacuums() -> int:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT vacuum_count FROM pg_stat_user_tables"
            " WHERE schemaname = 'pgmq' AND relname = %s",
            (f"q_{queue}",),
        ).fetchone()
        return int(row[0]) if row else 0

    send(fanout, *range(4))
    Dispatcher(fanout, once=True).run()
    assert vacuums() == 0  # 4 deleted: not yet
    send(fanout, *range(4, 12))
    Dispatcher(fanout, once=True).run()  # a new consumer: 8 deleted
    wait_until(lambda: vacuums() == 1, timeout=10)


def test_a_failed_vacuum_is_reported_and_handling_goes_on(
    fanout: Domain, conn: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    subscription = next(
        s for s in Dispatcher(fanout, once=True).subscriptions if isinstance(s, StreamSubscription)
    )
    subscription.table = sql.Identifier("q_no_such_queue")
    subscription.vacuum(conn)  # does not raise
    assert "could not vacuum queue" in caplog.text and "does not exist" in caplog.text


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    origin=st.one_of(
        st.none(), st.sampled_from(["order-1", "order-2", "cart-1", "order", "x-y-z"])
    ),
    source=st.one_of(st.none(), st.sampled_from(["order", "order-1", "cart", "x-y", "x"])),
)
def test_source_stream_is_one_rule_in_python_and_sql(
    conn: Conn, origin: str | None, source: str | None
) -> None:
    from pgstore.handlers import HandlerSpec

    spec = HandlerSpec(
        cls=object, name="x.Y", part_of=None, stream_category="x", source_stream=source,
        subscription_type=None, subscription_profile=None, subscription_config={},
    )  # fmt: skip
    row = conn.execute("SELECT pgstore.from_source(%s, %s)", (origin, source)).fetchone()
    assert row == (spec.accepts_origin(origin),)
