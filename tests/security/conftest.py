"""Real logins for the adversarial tests: one per pgstore role, and one with no grants."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgstore.migrate import create_roles

Conn = psycopg.Connection[Any]
GROUPS = ("reader", "writer", "dispatcher")


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


def refused(conninfo: str, statement: str, *params: Any) -> bool:
    """Whether the login gets 'permission denied' for the statement."""
    with psycopg.connect(conninfo) as conn:
        try:
            conn.execute(statement, params or None)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False
