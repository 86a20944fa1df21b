"""The dispatcher keeps going: poison messages, failing streams, races, stalls."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from pgstore import AggregateRoot, Domain, Event, handle
from pgstore.cli._render import status as render_status
from pgstore.dispatch import Dispatcher
from pgstore.dispatch.dead_letters import QueueDeadLetters, TableDeadLetters
from pgstore.dispatch.stream import queue_names
from pgstore.errors import ConfigurationError
from pgstore.messages import NewMessage
from pgstore.status import collect
from pgstore.store import EventStore
from tests.waiting import wait_until

Conn = psycopg.Connection[Any]
TYPES = ["event_store", "stream"]


class Seen:
    def __init__(self) -> None:
        self.handled: list[tuple[str, int]] = []
        self.failing: dict[str, int] = {}  # stream name -> failures left
        self.race: Any = None  # called between loading and saving, once


def build(dsn: str, seen: Seen, subscription_type: str, **settings: Any) -> Domain:
    config = {
        "subscription": {
            "subscription_type": subscription_type,
            "max_retries": 0,
            "retry_delay_seconds": 0,
            **settings,
        }
    }
    domain = Domain("live", dsn=dsn, config=config)

    @domain.aggregate(stream_category="work")
    class Work(AggregateRoot):
        pass

    @domain.event(part_of=Work)
    class Done(Event):
        n: int

    @domain.aggregate
    class Total(AggregateRoot):
        count: int = 0

    @domain.event_handler(part_of=Total, stream_category="work")
    class Count:
        @handle(Done)
        def done(self, event: Done) -> None:
            stream = event._message.stream_name  # type: ignore[attr-defined]
            if seen.failing.get(stream, 0) > 0:
                seen.failing[stream] -= 1
                raise RuntimeError(f"{stream} fails on purpose")
            repository = domain.repository_for(Total)
            total = repository.get_or_new("all")
            total.count += 1
            if seen.race is not None:
                race, seen.race = seen.race, None
                race()
            repository.add(total)
            seen.handled.append((stream, event.n))

    return domain


@pytest.fixture
def seen() -> Seen:
    return Seen()


def done(store: EventStore, stream: str, *numbers: int) -> None:
    store.append(stream, [NewMessage("live.Done.v1", {"n": n}) for n in numbers])


def plant(conn: Conn, stream: str, data: str, metadata: str = "NULL") -> None:
    """A message as only the owner could write it, past every check of append_messages
    (stored before those checks existed, or by hand)."""
    conn.execute(
        f"""
        WITH m AS (
          SELECT gen_random_uuid() AS id,
                 pg_current_xact_id()::text::bigint << 16 AS global_position)
        , ids AS (
          INSERT INTO pgstore.message_ids (id, stream_name, global_position)
          SELECT id, %(stream)s, global_position FROM m)
        INSERT INTO pgstore.messages (global_position, position, stream_name, category, type,
                                      data, metadata, id, consumer_hash)
        SELECT global_position, 0, %(stream)s, 'work', 'live.Done.v1', {data}, {metadata}, id, 0
          FROM m
        """,  # noqa: S608
        {"stream": stream},
    )


POISON = {
    "work-deep": "jsonb_build_object('n', (repeat('[', 3000) || repeat(']', 3000))::jsonb)",
    "work-string": "'\"not an object\"'::jsonb",
    "work-invalid": """'{"n": "ten"}'::jsonb""",
    "work-nometa": """'{"n": 1}'::jsonb""",  # with metadata that is a JSON array
}


def total(conn: Conn) -> int:
    row = conn.execute(
        "SELECT (data->>'count')::int FROM pgstore.aggregates WHERE category = 'total'"
    ).fetchone()
    return int(row[0]) if row else 0


def dead_letters(conn: Conn, subscription_type: str) -> list[Any]:
    if subscription_type == "stream":
        queue, dead = queue_names("live.Count")
        return QueueDeadLetters("live.Count", queue, dead).list(conn)
    return TableDeadLetters("live.Count").list(conn)


@pytest.mark.parametrize("subscription_type", TYPES)
def test_poison_messages_go_to_the_dead_letters_and_later_events_are_handled(
    dsn: str, conn: Conn, store: EventStore, seen: Seen, subscription_type: str
) -> None:
    domain = build(dsn, seen, subscription_type, max_retries=3)
    done(store, "work-1", 1)
    for stream, data in POISON.items():
        plant(conn, stream, data, "'[1, 2]'::jsonb" if stream == "work-nometa" else "NULL")
    done(store, "work-2", 2)
    Dispatcher(domain, once=True).run()
    if subscription_type == "stream":  # a queue body no feeder would write
        queue, _ = queue_names("live.Count")
        conn.execute("SELECT pgmq.send(%s, %s::jsonb)", (queue, '{"garbage": true}'))
        done(store, "work-3", 3)
        Dispatcher(domain, once=True).run()
    domain.close()
    # (A batch rolled back by a poison message runs its good messages again: `seen`
    # may record one twice; the database, which counts, may not.)
    good = [("work-1", 1), ("work-2", 2)] + (
        [("work-3", 3)] if subscription_type == "stream" else []
    )
    assert sorted(set(seen.handled)) == good
    assert total(conn) == len(good)
    letters = dead_letters(conn, subscription_type)
    by_stream = {letter.message.stream_name: letter for letter in letters}
    assert set(by_stream) >= set(POISON)
    assert "nested too deeply" in by_stream["work-deep"].error
    assert by_stream["work-deep"].raw_data is not None  # kept as stored
    assert "not a JSON object" in by_stream["work-string"].error
    assert "cannot deserialise" in by_stream["work-invalid"].error
    assert "metadata is a JSON list" in by_stream["work-nometa"].error
    # No retry could help: each went straight to the dead letters.
    assert all(letter.attempts == 1 for letter in letters)
    if subscription_type == "stream":
        assert len(letters) == len(POISON) + 1  # and the garbage body


@pytest.mark.parametrize("subscription_type", TYPES)
def test_a_failing_stream_holds_back_itself_only(
    dsn: str, conn: Conn, store: EventStore, seen: Seen, subscription_type: str
) -> None:
    """With a retry an hour away, the other streams go on at once; the failing stream's
    later events wait, in order, even across a restart."""
    seen.failing["work-a"] = 1
    domain = build(
        dsn, seen, subscription_type, max_retries=3, retry_delay_seconds=3600,
        blocking_timeout_ms=50,
    )  # fmt: skip
    done(store, "work-a", 1, 2)
    done(store, "work-b", 1)
    done(store, "work-a", 3)
    done(store, "work-b", 2)

    def run_until(condition: Any) -> None:
        dispatcher = Dispatcher(domain)
        worker = threading.Thread(target=dispatcher.run)
        worker.start()
        try:
            wait_until(condition, timeout=20)
        finally:
            dispatcher.stopping.set()
            worker.join(20)

    run_until(lambda: ("work-b", 2) in seen.handled)
    assert [n for stream, n in seen.handled if stream == "work-a"] == []
    run_until(lambda: ("work-b", 2) in seen.handled)  # a restart remembers what is held
    assert [n for stream, n in seen.handled if stream == "work-a"] == []
    # The retry falls due: the stream's events follow in order.
    if subscription_type == "stream":
        queue, _ = queue_names("live.Count")
        conn.execute(f"UPDATE pgmq.q_{queue} SET vt = now()")  # noqa: S608
    else:
        conn.execute("UPDATE pgstore.handler_parked SET retry_at = now()")
    run_until(lambda: ("work-a", 3) in seen.handled)
    domain.close()
    assert [n for stream, n in seen.handled if stream == "work-a"] == [1, 2, 3]
    assert conn.execute("SELECT count(*) FROM pgstore.handler_parked").fetchone() == (0,)


@pytest.mark.parametrize("subscription_type", TYPES)
def test_a_lost_race_is_run_again_not_failed(
    dsn: str, conn: Conn, store: EventStore, seen: Seen, subscription_type: str
) -> None:
    """Another writer changes the aggregate between the handler's load and its save:
    with max_retries 0 the event is still handled once, nothing is dead-lettered, and
    the conflict is counted."""

    def race() -> None:
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute(
                "UPDATE pgstore.aggregates SET version = version + 1, data = jsonb_set(data,"
                " '{count}', to_jsonb((data->>'count')::int + 100))"
                " WHERE category = 'total' AND id = 'all'"
            )

    domain = build(dsn, seen, subscription_type)
    done(store, "work-1", 1)
    Dispatcher(domain, once=True).run()
    seen.race = race
    done(store, "work-1", 2)
    Dispatcher(domain, once=True).run()
    domain.close()
    # In memory (outside the database) the second may have run twice: a batch's saves
    # are checked when the batch sends them, and a lost race runs the batch again.
    assert sorted(set(seen.handled)) == [("work-1", 1), ("work-1", 2)]
    row = conn.execute(
        "SELECT (data->>'count')::int FROM pgstore.aggregates WHERE id = 'all'"
    ).fetchone()
    assert row == (102,)  # 1, then the racer's +100, then 1 more on fresh state
    assert dead_letters(conn, subscription_type) == []
    assert conn.execute("SELECT count(*) FROM pgstore.handler_failures").fetchone() == (0,)
    (status,) = collect(conn).handlers
    assert status.conflicts == 1


def test_conflicts_past_their_bound_count_as_one_failure(
    dsn: str, conn: Conn, store: EventStore, seen: Seen
) -> None:
    domain = build(dsn, seen, "event_store", conflict_retries=0)

    def race() -> None:
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("UPDATE pgstore.aggregates SET version = version + 1")

    done(store, "work-1", 1)
    Dispatcher(domain, once=True).run()
    seen.race = race
    done(store, "work-1", 2)
    Dispatcher(domain, once=True).run()
    domain.close()
    (letter,) = TableDeadLetters("live.Count").list(conn)
    assert "AggregateConflict" in letter.error


def test_a_stalled_horizon_is_reported_with_its_holder(
    dsn: str, conn: Conn, store: EventStore, seen: Seen, logins: dict[str, str]
) -> None:
    """A login with no grants, in another database, takes a transaction id and sits:
    every subscriber waits. status, run as a reader, says who and how long."""
    domain = build(dsn, seen, "event_store")
    Dispatcher(domain, once=True).run()
    conn.execute("DROP DATABASE IF EXISTS elsewhere")
    conn.execute("CREATE DATABASE elsewhere")
    nobody = psycopg.conninfo.make_conninfo(logins["nobody"], dbname="elsewhere")
    try:
        with psycopg.connect(nobody) as idle:
            idle.execute("SELECT pg_current_xact_id()")
            done(store, "work-1", 1, 2)
            Dispatcher(domain, once=True).run()
            assert seen.handled == []  # held back
            with psycopg.connect(logins["reader"]) as reader:
                status = collect(reader)
            horizon = status.horizon
            assert horizon.holder_pid == idle.info.backend_pid
            assert horizon.holder_database == "elsewhere"
            assert horizon.holder_role == psycopg.conninfo.conninfo_to_dict(nobody)["user"]
            assert horizon.waiting_events == 2
            (handler,) = status.handlers
            assert (handler.lag_events, handler.waiting_events) == (0, 2)
            text = render_status(status)
            assert "None" not in text
            assert f"pid {idle.info.backend_pid} (database elsewhere" in text
            assert "pg_read_all_stats" in text  # what the reader cannot see, and why
            with psycopg.connect(dsn) as admin:  # a superuser sees its age too
                assert collect(admin).horizon.holder_seconds is not None
        Dispatcher(domain, once=True).run()
        assert len(seen.handled) == 2
    finally:
        domain.close()
        conn.execute("DROP DATABASE elsewhere WITH (FORCE)")


@pytest.mark.parametrize("subscription_type", TYPES)
def test_status_shows_the_error_of_a_dead_lettered_handler(
    dsn: str, conn: Conn, store: EventStore, seen: Seen, subscription_type: str
) -> None:
    seen.failing["work-1"] = 1
    domain = build(dsn, seen, subscription_type)
    done(store, "work-1", 1)
    Dispatcher(domain, once=True).run()
    domain.close()
    (status,) = collect(conn).handlers
    assert status.dead_letters == 1 and status.failing == 0  # given up on, not retried
    assert status.last_error is not None and "fails on purpose" in status.last_error


def test_handler_options_are_checked_where_they_are_declared(dsn: str) -> None:
    domain = Domain("declared", dsn=dsn)
    with pytest.raises(ConfigurationError, match=r"Bad.*'a-b'"):

        @domain.event_handler(stream_category="a-b")
        class Bad:
            @handle("$any")
            def any(self, event: Any) -> None: ...

    with pytest.raises(ConfigurationError, match=r"'no_such_setting'.*declared.Worse"):

        @domain.event_handler(stream_category="a", subscription_config={"no_such_setting": 1})
        class Worse:
            @handle("$any")
            def any(self, event: Any) -> None: ...

    with pytest.raises(ConfigurationError, match=r"'nope'.*declared.Worst"):

        @domain.event_handler(stream_category="a", subscription_profile="nope")
        class Worst:
            @handle("$any")
            def any(self, event: Any) -> None: ...
