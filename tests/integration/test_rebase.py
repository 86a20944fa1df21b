"""After a logical copy into a cluster with lower transaction ids, `rebase` keeps order."""

from __future__ import annotations

from typing import Any

import psycopg

from pgstore.messages import NewMessage
from pgstore.migrate import migrate, needs_rebase, rebase
from pgstore.store import EventStore


def copy_from_a_busier_cluster(conn: psycopg.Connection[Any]) -> None:
    """A message as a logical copy would bring it: far higher transaction ids."""
    conn.execute(
        "INSERT INTO pgstore.messages (global_position, position, stream_name, category, type,"
        " data, id, consumer_hash) VALUES (((pg_current_xact_id()::text::bigint + 1000000) << 16),"
        " 0, 'order-copied', 'order', 'Copied', '{}', gen_random_uuid(), 0)"
    )


def test_rebase_puts_new_positions_above_copied_ones(
    store: EventStore, conn: psycopg.Connection[Any]
) -> None:
    copy_from_a_busier_cluster(conn)
    (before,) = store.append("order-1", NewMessage("Before", {}))
    row = conn.execute(
        "SELECT max(global_position) FROM pgstore.messages WHERE type = 'Copied'"
    ).fetchone()
    assert row is not None
    copied = int(row[0])
    assert before.global_position < copied  # the problem: a new append sorts before the copy
    assert [m.type for m in store.read_category("order")] == ["Before"]  # and it is not readable

    old, new = rebase(conn)
    assert new > old == 0
    assert rebase(conn) == (new, new)  # idempotent
    (after,) = store.append("order-2", NewMessage("After", {}))
    assert after.global_position > copied
    assert [m.type for m in store.read_category("order")] == ["Before", "Copied", "After"]


def test_migrate_notices_a_copy_and_rebases(
    store: EventStore, conn: psycopg.Connection[Any]
) -> None:
    store.append("order-1", NewMessage("Before", {}))
    assert not needs_rebase(conn)  # a store's own appends never trigger it
    copy_from_a_busier_cluster(conn)
    assert needs_rebase(conn)

    said: list[str] = []
    assert migrate(conn, progress=said.append) == []
    assert any("rebased, xid offset 0 -> " in line for line in said), said
    assert not needs_rebase(conn)
    store.append("order-2", NewMessage("After", {}))
    assert [m.type for m in store.read_category("order")] == ["Before", "Copied", "After"]
