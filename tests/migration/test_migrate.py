"""Migrations: naming rule, idempotence, concurrency, checksums, fresh vs upgraded catalog."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from pgstore import migrate as migrations
from pgstore.errors import MigrationError
from tests.pgcluster import LocalCluster

Conn = psycopg.Connection[Any]


@contextmanager
def empty_database(cluster: LocalCluster, name: str) -> Iterator[str]:
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield cluster.dsn(name)
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def catalog(dsn: str) -> list[tuple[object, ...]]:
    """What a schema comparison needs: relations, columns, indexes, functions, types."""
    query = """
        SELECT 'column', c.table_schema || '.' || c.table_name || '.' || c.column_name,
               c.data_type || coalesce(' default ' || c.column_default, '') || ' ' || c.is_nullable
          FROM information_schema.columns c
         WHERE c.table_schema IN ('pgstore', 'message_store', 'pgmq')
        UNION ALL
        SELECT 'index', schemaname || '.' || indexname, indexdef
          FROM pg_indexes WHERE schemaname IN ('pgstore', 'message_store', 'pgmq')
        UNION ALL
        SELECT 'function', n.nspname || '.' || p.proname || '(' ||
               pg_get_function_identity_arguments(p.oid) || ')',
               md5(pg_get_functiondef(p.oid))
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname IN ('pgstore', 'message_store') AND p.prokind = 'f'
        UNION ALL
        SELECT 'constraint', conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace::regnamespace::text IN ('pgstore', 'message_store')
        ORDER BY 1, 2
    """
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def test_migration_files_follow_the_naming_rule() -> None:
    found = migrations.discover()
    assert found, "no migrations found"
    for expected, migration in enumerate(found, start=1):
        assert migration.version == expected
        assert migrations.MIGRATION_NAME.match(migration.path.name)
    assert all(path.read_text().lstrip().startswith("--") for path in migrations.function_files())


def test_sql_function_files_are_named_after_their_function() -> None:
    for path in migrations.function_files():
        text = path.read_text()
        schema = path.parent.name
        if schema == "views":
            assert f"CREATE OR REPLACE VIEW {path.stem}" in text
        else:
            assert f"CREATE OR REPLACE FUNCTION {schema}.{path.stem}(" in text, path


def test_migrate_twice_is_a_no_op(cluster: LocalCluster) -> None:
    with empty_database(cluster, "migrate_twice") as dsn, psycopg.connect(dsn) as conn:
        applied = migrations.migrate(conn)
        assert [m.version for m in applied] == [m.version for m in migrations.discover()]
        before = catalog(dsn)
        assert migrations.migrate(conn) == []
        assert catalog(dsn) == before
        assert all(state.applied_at is not None for state in migrations.status(conn))


def _migrate_in_process(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return len(migrations.migrate(conn))


def test_concurrent_migrations_take_turns(cluster: LocalCluster) -> None:
    with empty_database(cluster, "migrate_concurrently") as dsn:
        with multiprocessing.get_context("spawn").Pool(3) as pool:
            counts = pool.map(_migrate_in_process, [dsn] * 3)
        # Exactly one process applied the migrations; the others found them applied.
        assert sorted(counts) == [0, 0, len(migrations.discover())]
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT count(*) FROM pgstore.schema_migrations").fetchone()
            assert row == (len(migrations.discover()),)


def test_an_edited_applied_migration_is_refused(cluster: LocalCluster) -> None:
    with empty_database(cluster, "migrate_edited") as dsn, psycopg.connect(dsn) as conn:
        migrations.migrate(conn)
        conn.execute("UPDATE pgstore.schema_migrations SET checksum = 'edited' WHERE version = 1")
        with pytest.raises(MigrationError, match=r"0001_event_store\.sql"):
            migrations.migrate(conn)


@pytest.mark.parametrize("applied_before", range(1, len(migrations.discover()) + 1))
def test_upgrade_from_an_older_migration_set_equals_a_fresh_install(
    cluster: LocalCluster, applied_before: int
) -> None:
    """A database an older pgstore migrated (first N migrations; with N = all, every
    migration in order) upgrades to the catalog of a fresh install (sql/schema.sql)."""
    with empty_database(cluster, "fresh") as fresh, psycopg.connect(fresh) as conn:
        migrations.migrate(conn)
        expected = catalog(fresh)
    with empty_database(cluster, "upgraded") as upgraded, psycopg.connect(upgraded) as conn:
        conn.autocommit = True
        migrations.ensure_migrations_table(conn)
        for migration in migrations.discover()[:applied_before]:
            migrations.apply_migration(conn, migration)
        migrations.migrate(conn)
        assert catalog(upgraded) == expected


def test_pgmq_is_installed_once(cluster: LocalCluster) -> None:
    with empty_database(cluster, "migrate_pgmq") as dsn, psycopg.connect(dsn) as conn:
        migrations.migrate(conn)
        migrations.migrate(conn)
        row = conn.execute(
            "SELECT count(*) FROM pg_proc WHERE proname = 'send' "
            "AND pronamespace = 'pgmq'::regnamespace"
        ).fetchone()
        assert row is not None and row[0] >= 1


def test_a_fresh_install_uses_the_schema_file_and_records_every_migration(
    cluster: LocalCluster,
) -> None:
    with empty_database(cluster, "fresh_schema") as dsn, psycopg.connect(dsn) as conn:
        notes: list[str] = []
        applied = migrations.migrate(conn, progress=notes.append)
        assert [m.version for m in applied] == [m.version for m in migrations.discover()]
        assert any("sql/schema.sql" in note for note in notes)
        assert all(state.applied_at and not state.problem for state in migrations.status(conn))
