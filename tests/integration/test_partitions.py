"""Partitioning by category: reads prune to one partition; new categories need no DDL."""

from __future__ import annotations

import re
from typing import Any

import psycopg

from pgstore.messages import NewMessage
from pgstore.store import EventStore

Conn = psycopg.Connection[Any]


def partitions_in(plan: str) -> set[str]:
    return set(re.findall(r"messages_p\d\d", plan))


def explain(conn: Conn, query: str, *params: object) -> str:
    rows = conn.execute(f"EXPLAIN (COSTS OFF) {query}", params).fetchall()
    return "\n".join(str(row[0]) for row in rows)


def test_stream_and_category_reads_prune_to_one_partition(conn: Conn) -> None:
    stream_plan = explain(
        conn,
        "SELECT * FROM pgstore.messages WHERE category = 'order' AND stream_name = 'order-1' "
        "ORDER BY position",
    )
    category_plan = explain(
        conn, "SELECT * FROM pgstore.messages WHERE category = 'order' ORDER BY global_position"
    )
    all_plan = explain(conn, "SELECT * FROM pgstore.messages ORDER BY global_position")
    assert len(partitions_in(stream_plan)) == 1
    assert partitions_in(category_plan) == partitions_in(stream_plan)
    assert len(partitions_in(all_plan)) == 16


def test_functions_prune_at_run_time(conn: Conn, store: EventStore) -> None:
    """With a parameter (as inside the stored functions) pruning happens at executor start."""
    store.append("order-1", NewMessage("A", {}))
    conn.execute("SET plan_cache_mode = force_generic_plan")
    conn.execute(
        "PREPARE by_category(text) AS SELECT * FROM pgstore.messages WHERE category = $1 "
        "ORDER BY global_position"
    )
    rows = conn.execute(
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE by_category('order')"
    ).fetchall()
    plan = "\n".join(str(row[0]) for row in rows)
    assert "Subplans Removed: 15" in plan


def test_new_categories_need_no_ddl(conn: Conn, store: EventStore) -> None:
    def relations() -> int:
        row = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'pgstore'::regnamespace"
        ).fetchone()
        assert row is not None
        return int(row[0])

    before = relations()
    for i in range(50):
        store.append(f"category{i}-1", NewMessage("A", {}))
    assert relations() == before
    assert len(store.read_all(limit=-1)) == 50
