"""Schema migrations: numbered, checksummed files, applied once, in order, under a lock."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgstore._queries import QUERIES
from pgstore._resources import resource_dir
from pgstore.errors import MigrationError

MIGRATION_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

# Serialises `pgstore migrate` across processes and machines (arbitrary constant in
# pgstore's two-key advisory lock space: 'pgs' and 'migr').
_LOCK_KEYS = (1885823852, 1835624306)

# The function files, then the views that call them.
_SQL_GROUPS = ("pgstore", "message_store", "views")


@dataclass(frozen=True)
class Migration:
    """One numbered migration file."""

    version: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    """A migration as the database knows it: applied (when, and whether the file still
    has the checksum it was applied with) or pending."""

    migration: Migration
    applied_at: datetime | None
    applied_checksum: str | None = None

    @property
    def problem(self) -> str | None:
        if self.applied_checksum is not None and self.applied_checksum != self.migration.checksum:
            return "changed since it was applied"
        return None

    def describe(self) -> str:
        if self.applied_at is None:
            return "pending"
        when = self.applied_at.isoformat(timespec="seconds")
        return f"{when}  CHANGED since it was applied" if self.problem else when


def discover(directory: Path | None = None) -> list[Migration]:
    """Return the migrations in version order; refuse badly named or missing ones."""
    directory = directory or resource_dir("migrations")
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"Migration file name must look like 0001_some_name.sql: {path.name}"
            )
        migrations.append(Migration(int(match["version"]), match["name"], path))
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"Migrations must be numbered 1, 2, 3... without gaps: "
                f"expected {expected:04d}, found {migration.path.name}"
            )
    return migrations


def function_files(directory: Path | None = None) -> list[Path]:
    """Return every function and view file, in the order they must be applied."""
    directory = directory or resource_dir("sql")
    return [path for group in _SQL_GROUPS for path in sorted((directory / group).glob("*.sql"))]


def status(conn: psycopg.Connection[Any]) -> list[MigrationState]:
    """Return every known migration with the time it was applied, if it was."""
    applied = _applied(conn)
    known = discover()
    unknown = sorted(set(applied) - {m.version for m in known})
    if unknown:
        raise MigrationError(
            f"The database has migrations this pgstore does not know: {unknown}; "
            "it was migrated by a newer pgstore"
        )
    return [
        MigrationState(m, applied[m.version][1], applied[m.version][0])
        if m.version in applied
        else MigrationState(m, None)
        for m in known
    ]


def migrate(
    conn: psycopg.Connection[Any],
    *,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Migration]:
    """Bring the database to the current schema and return the migrations applied.

    Safe to run twice and from several processes at once: a session advisory lock
    makes them take turns, and each sees what the one before it applied. Each
    migration runs in its own transaction; functions and views are re-applied on
    every run (they are all CREATE OR REPLACE).
    """
    if (
        conn.autocommit is False
        and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    ):
        raise MigrationError("migrate() needs a connection that is not inside a transaction")
    conn.autocommit = True
    conn.execute(QUERIES["migrate_lock"], _LOCK_KEYS)
    try:
        return _migrate_locked(conn, progress)
    finally:
        conn.execute(QUERIES["migrate_unlock"], _LOCK_KEYS)


def _migrate_locked(
    conn: psycopg.Connection[Any], progress: Callable[[str], None]
) -> list[Migration]:
    migrations = discover()
    ensure_migrations_table(conn)
    applied = _applied(conn)
    changed = [
        m.path.name
        for m in migrations
        if m.version in applied and applied[m.version][0] != m.checksum
    ]
    unknown = sorted(set(applied) - {m.version for m in migrations})
    if changed:
        raise MigrationError(
            "Applied migrations have changed since they were applied (never edit an "
            f"applied migration; add a new one): {', '.join(changed)}"
        )
    if unknown:
        raise MigrationError(
            f"The database has migrations this pgstore does not know: {unknown}; "
            "it was migrated by a newer pgstore"
        )

    pending = [m for m in migrations if m.version not in applied]
    if not applied and not _has_store(conn):
        progress(f"installing the schema (sql/schema.sql, migrations 1 to {len(migrations)})")
        install_schema(conn, migrations)
    else:
        for migration in pending:
            progress(f"applying {migration.path.name}")
            apply_migration(conn, migration)

    with conn.transaction():
        _install_pgmq(conn, progress)
        progress("applying functions and views")
        apply_functions(conn)
    _regrant(conn)
    if needs_rebase(conn):
        old, new = rebase(conn)
        progress(
            "stored global positions are above this cluster's transaction ids (a logical "
            f"copy from another cluster): rebased, xid offset {old} -> {new}"
        )
    return pending


def ensure_migrations_table(conn: psycopg.Connection[Any]) -> None:
    """Create pgstore's schema and its record of applied migrations, if missing."""
    with conn.transaction():
        conn.execute(QUERIES["migrations_table"])


def apply_migration(conn: psycopg.Connection[Any], migration: Migration) -> None:
    """Apply one migration and record it, in one transaction."""
    with conn.transaction():
        conn.execute(sql.SQL(migration.text))  # our own file
        _record(conn, migration)


def install_schema(conn: psycopg.Connection[Any], migrations: list[Migration]) -> None:
    """A fresh install: the whole current schema (sql/schema.sql) in one transaction,
    recorded as every migration applied."""
    with conn.transaction():
        path = resource_dir("sql") / "schema.sql"
        conn.execute(sql.SQL(path.read_text(encoding="utf-8")))  # our own file
        for migration in migrations:
            _record(conn, migration)


def _record(conn: psycopg.Connection[Any], migration: Migration) -> None:
    conn.execute(
        QUERIES["migration_record"],
        {"version": migration.version, "name": migration.name, "checksum": migration.checksum},
    )


def _has_store(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(QUERIES["store_exists"]).fetchone()
    return bool(row and row[0])


def needs_rebase(conn: psycopg.Connection[Any]) -> bool:
    """Whether new appends would take global positions below stored ones.

    Transaction ids only grow within a cluster, so this is true only after a logical
    copy from a cluster that had used more of them. The snapshot's xmax bounds every
    committed writer's xid without assigning one to this session.
    """
    row = conn.execute(QUERIES["rebase_needed"]).fetchone()
    return bool(row and row[0])


def rebase(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """After a logical copy into a new cluster, raise the xid offset so that new global
    positions land above every stored one. Returns the old and the new offset."""
    with conn.transaction():
        # No append may run meanwhile: it would take a position from the old offset.
        conn.execute(QUERIES["rebase_lock"])
        row = conn.execute(QUERIES["rebase_positions"]).fetchone()
        assert row is not None
        highest, current, offset = (int(value) for value in row)
        needed = highest - current + 1
        if needed <= offset:
            return offset, offset
        # A constant SQL function, inlined into every append: composed with the new
        # offset as a literal (a function body cannot take a parameter).
        conn.execute(sql.SQL(QUERIES["rebase_offset"]).format(offset=sql.Literal(needed)))
        return offset, needed


def create_message_store_role(conn: psycopg.Connection[Any]) -> None:
    """Create (or re-grant) the `message_store` login role Message DB clients expect."""
    _apply_roles(conn, "message_store.sql")


def create_roles(conn: psycopg.Connection[Any]) -> None:
    """Create (or re-grant) pgstore_reader, pgstore_writer, pgstore_dispatcher and the
    pgstore_query login, and grant them their rights in this database."""
    _apply_roles(conn, "pgstore_roles.sql", "pgstore_grants.sql")


def _regrant(conn: psycopg.Connection[Any]) -> None:
    """Re-apply the grants of the roles this database uses, so that what an upgrade
    added is granted (or not) exactly as the allowlists say."""
    row = conn.execute(QUERIES["roles_in_use"]).fetchone()
    assert row is not None
    pgstore_roles, message_store_role = row
    if pgstore_roles:
        _apply_roles(conn, "pgstore_grants.sql")
    if message_store_role:
        _apply_roles(conn, "message_store.sql")


def _apply_roles(conn: psycopg.Connection[Any], *names: str) -> None:
    with conn.transaction():
        for name in names:
            path = resource_dir("sql") / "roles" / name
            conn.execute(sql.SQL(path.read_text(encoding="utf-8")))  # our own file


def apply_functions(conn: psycopg.Connection[Any]) -> None:
    """(Re-)create every stored function and view, inside the caller's transaction."""
    # Function bodies may name functions defined in later files.
    conn.execute(QUERIES["function_bodies_unchecked"])
    for path in function_files():
        conn.execute(sql.SQL(path.read_text(encoding="utf-8")))


def _install_pgmq(conn: psycopg.Connection[Any], progress: Callable[[str], None]) -> None:
    """Install pgmq's SQL from the pgmq package unless the database already has pgmq."""
    row = conn.execute(QUERIES["pgmq_exists"]).fetchone()
    if row and row[0]:
        return
    from pgmq.install import get_embedded_install_sql, get_embedded_sql_version

    progress(f"installing pgmq {get_embedded_sql_version()} (SQL only)")
    conn.execute(sql.SQL(get_embedded_install_sql()))


def missing_functions(conn: psycopg.Connection[Any]) -> list[str]:
    """The functions this pgstore ships that the database lacks (`schema.name`): a
    pgstore upgraded without `pgstore migrate` may call one that is not there yet."""
    shipped = [
        f"{path.parent.name}.{path.stem}"
        for path in function_files()
        if path.parent.name != "views"
    ]
    rows = conn.execute(QUERIES["functions_missing"], {"functions": shipped}).fetchall()
    return [str(name) for (name,) in rows]


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The highest migration applied to this database (0 for none)."""
    return max(_applied(conn), default=0)


def _applied(conn: psycopg.Connection[Any]) -> dict[int, tuple[str, datetime]]:
    row = conn.execute(QUERIES["migrations_table_exists"]).fetchone()
    if not row or not row[0]:
        return {}
    rows = conn.execute(QUERIES["migrations_applied"]).fetchall()
    return {int(v): (str(c), a) for v, c, a in rows}
