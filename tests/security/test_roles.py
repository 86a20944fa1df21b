"""Least privilege: each role can do its job and nothing more."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pgstore import AggregateRoot, Domain, Event, handle
from pgstore.dispatch import Dispatcher
from pgstore.messages import NewMessage
from pgstore.sandbox import run
from pgstore.store import EventStore
from tests.security.conftest import refused

Conn = psycopg.Connection[Any]


def test_reader_reads_and_nothing_more(logins: dict[str, str], store: EventStore) -> None:
    store.append("order-1", NewMessage("Placed", {"n": 1}))
    reader = logins["reader"]
    with psycopg.connect(reader) as conn:
        assert conn.execute("SELECT count(*) FROM pgstore.events").fetchone() == (1,)
        assert len(conn.execute("SELECT * FROM pgstore.read_category('order')").fetchall()) == 1
        assert conn.execute(
            "SELECT count(*) FROM message_store.get_category_messages('order')"
        ).fetchone() == (1,)
        _, result = run(conn, "SELECT data.n FROM category('order')", limit=5)
        assert result.rows == [("1",)]
    assert refused(reader, "SELECT pgstore.append_messages('order-2', ARRAY[gen_random_uuid()], "
                           "ARRAY['T'], ARRAY['{}'::jsonb])")  # fmt: skip
    assert refused(
        reader, "SELECT message_store.write_message(gen_random_uuid()::text, 'order-2', 'T', '{}')"
    )
    assert refused(reader, "DELETE FROM pgstore.messages")
    assert refused(reader, "UPDATE pgstore.aggregates SET version = 0")


def test_writer_appends_only_through_the_functions(logins: dict[str, str]) -> None:
    writer = logins["writer"]
    with EventStore.connect(writer) as store:
        store.append("order-1", NewMessage("Placed", {"n": 1}), expected_version=-1)
        assert store.stream_version("order-1") == 0
    assert refused(writer, "INSERT INTO pgstore.messages (global_position, position, stream_name,"
                           " category, type, data, id, consumer_hash) VALUES (1, 1, 'order-1',"
                           " 'order', 'T', '{}', gen_random_uuid(), 0)")  # fmt: skip
    assert refused(writer, "DELETE FROM pgstore.message_ids")
    assert refused(writer, "UPDATE pgstore.stream_heads SET version = 99")
    assert refused(writer, "UPDATE pgstore.handler_positions SET position = 0")


def test_dispatcher_runs_handlers_and_nothing_more(
    logins: dict[str, str], store: EventStore, conn: Conn
) -> None:
    domain = Domain("shop", dsn=logins["dispatcher"])

    @domain.aggregate
    class Tally(AggregateRoot):
        count: int = 0

    @domain.event(part_of=Tally)
    class Counted(Event):
        n: int

    def count(name: str) -> None:
        repository = domain.repository_for(Tally)
        tally = repository.get_or_new(name)
        tally.count += 1
        tally.raise_(Counted(n=tally.count))
        repository.add(tally)

    @domain.event_handler(stream_category="order")
    class Direct:
        @handle("$any")
        def any(self, event: Any) -> None:
            count("direct")

    @domain.event_handler(stream_category="order", subscription_type="stream")
    class Queued:
        @handle("$any")
        def any(self, event: Any) -> None:
            count("queued")

    store.append("order-1", [NewMessage("Placed", {}), NewMessage("Shipped", {})])
    Dispatcher(domain, once=True).run()
    domain.close()
    rows = conn.execute(
        "SELECT id, (data->>'count')::int FROM pgstore.aggregates ORDER BY id"
    ).fetchall()
    assert rows == [("direct", 2), ("queued", 2)]
    assert refused(logins["dispatcher"], "DELETE FROM pgstore.messages")
    assert refused(logins["dispatcher"], "UPDATE pgstore.stream_heads SET version = 0")


def test_security_definer_functions_fix_their_search_path(conn: Conn) -> None:
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text, p.proconfig FROM pg_proc p"
        " WHERE p.pronamespace IN ('pgstore'::regnamespace, 'message_store'::regnamespace)"
        " AND p.prosecdef"
    ).fetchall()
    assert rows, "the append function runs as its owner"
    for name, config in rows:
        assert config and any(c.startswith("search_path=pg_catalog") for c in config), name


def test_only_a_dispatcher_takes_messages_from_a_queue(logins: dict[str, str], conn: Conn) -> None:
    """Reading a queue hands its messages out (they turn invisible): a reader, a writer
    or a login with no grants must not be able to do it, nor name a table of its own."""
    conn.execute("SELECT pgstore.create_queue('shop.Tallies', 'order')")
    (queue,) = conn.execute("SELECT queue FROM pgstore.stream_subscriptions").fetchone() or ("",)
    conn.execute(
        "SELECT pgmq.send(%s, '{}'::jsonb, '{\"x-pgmq-group\": \"order-1\"}'::jsonb)", (queue,)
    )
    for kind in ("reader", "writer", "nobody"):
        assert refused(logins[kind], "SELECT * FROM pgstore.read_queue(%s, 30, 10)", queue), kind
    with psycopg.connect(logins["dispatcher"], autocommit=True) as dispatcher:
        taken = dispatcher.execute(
            "SELECT msg_id FROM pgstore.read_queue(%s, 30, 10)", (queue,)
        ).fetchall()
        assert len(taken) == 1
        with pytest.raises(psycopg.errors.UndefinedTable):
            dispatcher.execute("SELECT * FROM pgstore.read_queue('meta', 30, 10)")
