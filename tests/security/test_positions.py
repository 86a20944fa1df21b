"""Writers, and logins with no grants at all, against global positions and stream locks."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg
import pytest

from pgstore.errors import TooManyMessages
from pgstore.messages import NewMessage
from pgstore.store import EventStore

Conn = psycopg.Connection[Any]


def msg(type: str = "Happened") -> NewMessage:
    return NewMessage(type, {})


def test_a_writer_cannot_choose_its_ordinal(logins: dict[str, str], store: EventStore) -> None:
    """The old append read its ordinal from a setting the caller controls: a large
    negative value sorted a new event below events already read."""
    store.append("order-1", NewMessage("First", {}))
    (first,) = store.read_category("order")
    with psycopg.connect(logins["writer"]) as writer:
        for forged in ("-1000000000", "65535", "not a number"):
            writer.execute("SELECT set_config('pgstore.transaction_ordinal', %s, false)", (forged,))
            with EventStore.connect(logins["writer"]) as as_writer:
                as_writer.append("order-1", NewMessage("Later", {}), conn=writer)
            writer.commit()
    later = store.read_category("order", first.global_position + 1)
    assert [m.type for m in later] == ["Later"] * 3
    # Each took the first ordinal of its own transaction's range.
    assert all(m.global_position & 0xFFFF == 0 for m in later)


def test_global_positions_are_unique(conn: Conn, store: EventStore) -> None:
    (appended,) = store.append("order-1", NewMessage("A", {}))
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO pgstore.message_ids (id, stream_name, global_position)"
            " VALUES (%s, 'order-2', %s)",
            (uuid.uuid4(), appended.global_position),
        )


def test_ordinals_continue_within_a_transaction_and_after_a_savepoint(
    store: EventStore, dsn: str
) -> None:
    with psycopg.connect(dsn) as conn:
        store.append("order-1", [NewMessage("A", {}), NewMessage("B", {})], conn=conn)
        with conn.transaction():  # a savepoint, rolled back
            store.append("order-2", NewMessage("Gone", {}), conn=conn)
            raise psycopg.Rollback()
        store.append("order-3", NewMessage("C", {}), conn=conn)
    ordinals = [m.global_position & 0xFFFF for m in store.read_category("order")]
    assert ordinals == [0, 1, 2]


def test_a_transaction_that_wrote_before_continues_its_own_range_in_order(
    store: EventStore, dsn: str
) -> None:
    """A transaction with an id before its first append (a dispatch batch saves its
    aggregates first) takes the next free positions of its own range, also after an
    append that had to continue a newer writer's range."""
    with psycopg.connect(dsn) as older:
        older.execute("SELECT pg_current_xact_id()")  # an id, and nothing written yet
        store.append("audit-1", [msg("A0"), msg("A1")], conn=older)
        store.append("order-1", msg("Newer"))  # a newer transaction, committed
        store.append("order-1", msg("Older"), conn=older)  # continues the newer range
        store.append("audit-2", msg("A2"), conn=older)
        store.append("audit-1", msg("A3"), conn=older)
    audit = store.read_category("audit")
    assert [m.type for m in audit] == ["A0", "A1", "A2", "A3"]
    assert [m.global_position & 0xFFFF for m in audit] == [0, 1, 2, 3]
    assert len({m.global_position >> 16 for m in audit}) == 1
    assert [m.position for m in store.read_stream("audit-1")] == [0, 1, 2]
    newer, older_message = store.read_stream("order-1")
    assert newer.global_position < older_message.global_position
    assert older_message.global_position >> 16 == newer.global_position >> 16


def test_a_transaction_appends_at_most_65536_messages(store: EventStore, dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        store.append("bulk-1", [msg() for _ in range(65_535)], conn=conn)
        store.append("bulk-2", msg("Last"), conn=conn)
        with pytest.raises(TooManyMessages, match="Already appended: 65536"):
            store.append("bulk-3", msg("One too many"), conn=conn)
        conn.rollback()
    assert store.read_category("bulk") == []


def test_no_login_can_block_appends_to_a_stream(logins: dict[str, str], store: EventStore) -> None:
    """Any login could take the advisory lock key the append used, from any database
    and with no grants; appends to that stream then waited until it let go."""
    with psycopg.connect(logins["nobody"], autocommit=True) as nobody:
        for classid in (1885823852, 1885823853):
            nobody.execute("SELECT pg_advisory_lock(%s, hashtext('order-1'))", (classid,))
        nobody.execute("SELECT pg_advisory_lock(hashtext('order-1'))")
        done = threading.Event()

        def append() -> None:
            store.append("order-1", NewMessage("Placed", {}))
            done.set()

        thread = threading.Thread(target=append, daemon=True)
        thread.start()
        assert done.wait(10), "an append waited for a lock a login with no grants held"
        thread.join()
    assert store.stream_version("order-1") == 0


def test_a_login_with_no_grants_cannot_touch_the_store(logins: dict[str, str]) -> None:
    nobody = logins["nobody"]
    for statement in (
        "SELECT * FROM pgstore.messages",
        "SELECT * FROM pgstore.stream_heads FOR UPDATE",
        "SELECT pgstore.append_messages('order-1', ARRAY[gen_random_uuid()], ARRAY['T'],"
        " ARRAY['{}'::jsonb])",
        "SELECT message_store.write_message(gen_random_uuid()::text, 'order-1', 'T', '{}')",
        "SELECT * FROM pgstore.read_category('order')",
        "SELECT pgstore.create_queue('x.Y', 'x')",
        "SELECT * FROM pgstore.handlers",
        "CREATE TABLE pgmq.q_mine (x int)",
    ):
        with psycopg.connect(nobody) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
