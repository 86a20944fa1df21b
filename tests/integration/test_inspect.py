"""Views, `query`, `status` and `replay` against a known state."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pgstore import AggregateRoot, Domain, Event, handle, query_login
from pgstore.dispatch import Dispatcher
from pgstore.messages import NewMessage
from pgstore.operations import rewind
from pgstore.sandbox import QueryRefused, run
from pgstore.status import collect
from pgstore.store import EventStore

Conn = psycopg.Connection[Any]


@pytest.fixture
def ledger(dsn: str) -> Iterator[tuple[Domain, list[tuple[str, int]]]]:
    seen: list[tuple[str, int]] = []
    domain = Domain(
        "ledger", dsn=dsn, config={"subscription": {"max_retries": 0, "retry_delay_seconds": 0}}
    )

    @domain.aggregate(stream_category="entry")
    class Entry(AggregateRoot):
        pass

    @domain.event(part_of=Entry)
    class Posted(Event):
        amount: int

    @domain.event_handler(stream_category="entry")
    class Totals:
        @handle(Posted)
        def posted(self, event: Posted) -> None:
            seen.append(("Totals", event.amount))
            if event.amount < 0:
                raise ValueError("negative amounts are refused")

    @domain.event_handler(stream_category="entry")
    class Audit:
        @handle(Posted)
        def posted(self, event: Posted) -> None:
            seen.append(("Audit", event.amount))

    yield domain, seen
    domain.close()


def post(store: EventStore, stream: str, *amounts: int) -> None:
    store.append(stream, [NewMessage("ledger.Posted.v1", {"amount": a}) for a in amounts])


def test_status_numbers(
    ledger: tuple[Domain, list[tuple[str, int]]], store: EventStore, conn: Conn
) -> None:
    domain, _ = ledger
    post(store, "entry-1", 5, -1)
    before = collect(conn, domain)
    assert [(h.handler, h.started, h.lag_events) for h in before.handlers] == [
        ("ledger.Audit", False, 2),
        ("ledger.Totals", False, 2),
    ]
    Dispatcher(domain, once=True).run()
    post(store, "entry-2", 7, 8, 9)
    after = {h.handler: h for h in collect(conn, domain).handlers}
    assert after["ledger.Audit"].lag_events == 3
    assert after["ledger.Totals"].lag_events == 3
    assert after["ledger.Totals"].dead_letters == 1
    assert after["ledger.Audit"].dead_letters == 0
    assert after["ledger.Totals"].lag_seconds >= 0
    Dispatcher(domain, once=True).run()
    done = {h.handler: h for h in collect(conn, domain).handlers}
    assert (done["ledger.Audit"].lag_events, done["ledger.Totals"].lag_events) == (0, 0)


def test_status_names_the_transaction_holding_the_horizon(
    store: EventStore, dsn: str, conn: Conn
) -> None:
    with psycopg.connect(dsn) as idle:
        idle.execute("SET application_name = 'forgotten'")
        store.append("entry-9", NewMessage("ledger.Posted.v1", {"amount": 1}), conn=idle)
        post(store, "entry-1", 1)  # committed, but after the open transaction began
        holder = collect(conn).horizon
        assert holder.holder_pid == idle.info.backend_pid
        assert holder.holder_seconds is not None
        assert holder.holder_application == "forgotten"
        assert holder.waiting_events == 1
        assert store.read_category("entry") == []  # held back behind the open writer
    assert not collect(conn).horizon.held


def test_replay_rewinds_one_handler_only(
    ledger: tuple[Domain, list[tuple[str, int]]], store: EventStore, conn: Conn
) -> None:
    domain, seen = ledger
    post(store, "entry-1", 1, 2)
    Dispatcher(domain, once=True).run()
    first = store.read_category("entry")[0]
    seen.clear()
    handler, position = rewind(conn, "Audit", global_position=first.global_position)
    assert handler.name == "ledger.Audit" and position == first.global_position
    Dispatcher(domain, once=True).run()
    assert seen == [("Audit", 1), ("Audit", 2)]  # Totals was left alone


def test_query_runs_read_only_with_rewrites(store: EventStore, conn: Conn, dsn: str) -> None:
    post(store, "entry-1", 5, 6)
    post(store, "entry-2", 7)
    with query_login.connect(dsn) as confined:
        _, result = run(
            confined,
            "SELECT stream_name, data.amount FROM category('entry') ORDER BY global_position",
            limit=10,
        )
        assert result.columns == ["stream_name", "amount"]
        assert result.rows == [("entry-1", "5"), ("entry-1", "6"), ("entry-2", "7")]
        _, limited = run(confined, "SELECT * FROM pgstore.streams", limit=1)
        assert limited.truncated and len(limited.rows) == 1
        with pytest.raises(QueryRefused):
            run(
                confined,
                "WITH x AS (DELETE FROM pgstore.messages RETURNING 1) SELECT * FROM x",
                limit=1,
            )
        # A function of the user's own is not on the allowlist, whatever it does.
        conn.execute(
            "CREATE FUNCTION public.sneaky() RETURNS bigint LANGUAGE sql AS $$ SELECT"
            " message_store.write_message(gen_random_uuid()::text, 'x-1', 'T', '{}') $$"
        )
        with pytest.raises(QueryRefused, match="sneaky"):
            run(confined, "SELECT sneaky()", limit=1)
        # And were it called, the login may not append, and its sessions are read-only.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            confined.execute("SELECT public.sneaky()")
        assert confined.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
    assert len(store.read_all()) == 3


def test_query_explain_shows_one_partition(store: EventStore, dsn: str) -> None:
    post(store, "entry-1", 1)
    with query_login.connect(dsn) as confined:
        rewritten, plan = run(
            confined,
            "SELECT * FROM pgstore.events WHERE stream_name = 'entry-1'",
            limit=5,
            explain=True,
        )
    assert "category = 'entry'" in rewritten
    text = "\n".join(str(row[0]) for row in plan.rows)
    assert len(set(re.findall(r"messages_p\d\d", text))) == 1


def test_statement_timeout(dsn: str) -> None:
    with query_login.connect(dsn) as confined, pytest.raises(psycopg.errors.QueryCanceled):
        run(
            confined,
            "SELECT count(*) FROM generate_series(1, 100000000)",
            limit=1,
            timeout_seconds=0.2,
        )


def test_views(store: EventStore, conn: Conn) -> None:
    post(store, "entry-1", 1, 2)
    post(store, "entry-2", 3)
    assert conn.execute(
        "SELECT category, message_count, stream_count FROM pgstore.categories"
    ).fetchall() == [("entry", 3, 2)]
    assert conn.execute(
        "SELECT stream_name, version, message_count FROM pgstore.streams ORDER BY 1"
    ).fetchall() == [
        ("entry-1", 1, 2),
        ("entry-2", 0, 1),
    ]
    row = conn.execute(
        "SELECT transaction_id, global_position FROM pgstore.events LIMIT 1"
    ).fetchone()
    assert row is not None and row[0] == row[1] >> 16
