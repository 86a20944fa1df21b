"""An older database upgrades in place while a dispatcher runs, losing nothing."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgstore import AggregateRoot, Domain, handle
from pgstore import migrate as migrations
from pgstore.dispatch import Dispatcher
from pgstore.messages import NewMessage
from pgstore.store import EventStore
from tests.migration.test_migrate import empty_database
from tests.pgcluster import LocalCluster
from tests.waiting import wait_until

OLD = 3  # the migration set before stream_heads


def test_upgrade_while_a_dispatcher_runs(cluster: LocalCluster) -> None:
    with empty_database(cluster, "upgrade_live") as dsn, psycopg.connect(dsn) as conn:
        conn.autocommit = True
        migrations.ensure_migrations_table(conn)
        for migration in migrations.discover()[:OLD]:
            migrations.apply_migration(conn, migration)
        with conn.transaction():
            # Today's functions stand in for the older pgstore's (not its views, which
            # read columns only later migrations add); they call a helper that a later
            # migration creates, so create it as that migration will.
            conn.execute(migrations.discover()[4].text)
            conn.execute("SET LOCAL check_function_bodies = off")
            for path in migrations.function_files():
                if path.parent.name != "views":
                    conn.execute(sql.SQL(path.read_text(encoding="utf-8")))
        # Events as the older store wrote them (message_ids still had a position).
        conn.execute(
            """
            WITH tx AS (SELECT pg_current_xact_id()::text::bigint << 16 AS base)
            INSERT INTO pgstore.message_ids (id, stream_name, position, global_position)
            SELECT gen_random_uuid(), 'order-' || (n % 3), n / 3, tx.base + n
              FROM tx, generate_series(0, 29) AS n
            """
        )
        conn.execute(
            """
            INSERT INTO pgstore.messages (global_position, position, stream_name, category, type,
                                          data, id, consumer_hash)
            SELECT global_position, position, stream_name, 'order', 'Placed', '{}', id, 0
              FROM pgstore.message_ids
            """
        )

        counted: list[str] = []
        domain = Domain("upgrade", dsn=dsn, config={"subscription": {"blocking_timeout_ms": 100}})

        @domain.aggregate
        class Seen(AggregateRoot):
            count: int = 0

        @domain.event_handler(stream_category="order")
        class Count:
            @handle("$any")
            def any(self, event: Any) -> None:
                counted.append(event.stream_name)
                repository = domain.repository_for(Seen)
                seen = repository.get_or_new("all")
                seen.count += 1
                repository.add(seen)

        # Started before the upgrade: it waits for `migrate` (this pgstore's dispatcher
        # needs every migration it ships), then works while migrate finishes.
        dispatcher = Dispatcher(domain)
        worker = threading.Thread(target=dispatcher.run)
        worker.start()
        try:
            applied = migrations.migrate(conn)  # while the dispatcher works
            assert [m.version for m in applied] == [m.version for m in migrations.discover()[OLD:]]
            with EventStore.connect(dsn) as store:
                for stream in range(3):  # the versions were carried over: positions continue
                    store.append(f"order-{stream}", NewMessage("Placed", {}), expected_version=9)

            def seen_all() -> bool:
                row = conn.execute(
                    "SELECT (data->>'count')::int FROM pgstore.aggregates WHERE id = 'all'"
                ).fetchone()
                return row is not None and row[0] == 33

            wait_until(seen_all, timeout=60)
        finally:
            dispatcher.stopping.set()
            worker.join(30)
            domain.close()
        assert sorted(counted) == sorted([f"order-{n % 3}" for n in range(33)])
        versions = conn.execute(
            "SELECT stream_name, version FROM pgstore.stream_heads ORDER BY 1"
        ).fetchall()
        assert versions == [("order-0", 10), ("order-1", 10), ("order-2", 10)]


def test_a_dispatcher_waits_for_functions_a_release_added(
    cluster: LocalCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """Every migration applied, but not this release's functions (`pgstore migrate`
    not run after the upgrade): the dispatcher says so and waits, then runs once they
    are there, instead of failing on its first call of one."""
    with empty_database(cluster, "upgrade_functions") as dsn, psycopg.connect(dsn) as conn:
        conn.autocommit = True
        migrations.migrate(conn)
        conn.execute("DROP FUNCTION pgstore.read_queue")
        domain = Domain(
            "later",
            dsn=dsn,
            config={"subscription": {"subscription_type": "stream", "blocking_timeout_ms": 100}},
        )
        handled: list[str] = []

        @domain.event_handler(stream_category="order")
        class Count:
            @handle("$any")
            def any(self, event: Any) -> None:
                handled.append(event.stream_name)

        dispatcher = Dispatcher(domain)
        worker = threading.Thread(target=dispatcher.run)
        worker.start()
        try:
            wait_until(lambda: "pgstore.read_queue" in caplog.text, timeout=30)
            assert worker.is_alive()
            migrations.migrate(conn)
            with EventStore.connect(dsn) as store:
                store.append("order-1", NewMessage("Placed", {}))
            wait_until(lambda: handled == ["order-1"], timeout=60)
        finally:
            dispatcher.stopping.set()
            worker.join(30)
            domain.close()
