"""A connection for `pgstore query` that is a login confined to pgstore_reader."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from pgstore import replica
from pgstore._queries import QUERIES
from pgstore.migrate import create_roles
from pgstore.sandbox import NotConfined, confinement_problem

QUERY_LOGIN = "pgstore_query"
PASSWORD_SECONDS = 60

# Serialises password changes of the query login between concurrent `pgstore query`
# runs (pgstore's advisory lock space: 'pgs', 'qury').
_LOCK_KEYS = (1885823852, 1903520121)


def connect(
    conninfo: str,
    *,
    query_conninfo: str | None = None,
    read_conninfo: str | None = None,
    notice: Callable[[str], None] = lambda _: None,
) -> psycopg.Connection[Any]:
    """A connection confined to pgstore_reader, for `sandbox.run`.

    `query_conninfo` (--query-dsn) is used as given, after checking it is confined.
    Otherwise the session of `conninfo` is used if it is confined itself; if it is
    more privileged, pgstore connects as its own login `pgstore_query` (creating the
    roles first if this database has none) with a password that is valid for one
    minute. Raises NotConfined when neither is possible.

    `read_conninfo` (--read-dsn): connect to that hot standby instead. Roles and the
    password are still set on the primary (`conninfo`), and the login waits until the
    standby has replayed them.
    """
    if query_conninfo is not None:
        conn = psycopg.connect(query_conninfo, autocommit=True)
        problem = confinement_problem(conn)
        if problem is not None:
            conn.close()
            raise NotConfined(f"--query-dsn must be a login confined to pgstore_reader: {problem}")
        return conn
    session = psycopg.connect(read_conninfo or conninfo, autocommit=True)
    if confinement_problem(session) is None:
        return session
    if read_conninfo is None:
        with session as admin:
            return _as_query_login(admin, conninfo, notice)
    with session as standby, psycopg.connect(conninfo, autocommit=True) as admin:
        return _as_query_login(admin, read_conninfo, notice, standby=standby)


def _as_query_login(
    admin: psycopg.Connection[Any],
    conninfo: str,
    notice: Callable[[str], None],
    *,
    standby: psycopg.Connection[Any] | None = None,
) -> psycopg.Connection[Any]:
    """Log in as pgstore_query at `conninfo`, its roles and password set through
    `admin` (on the primary; then replayed by `standby`, if the login is there)."""
    # One `pgstore query` (or observatory connection) at a time creates the roles and
    # sets the password: concurrent ones would collide on both.
    admin.execute(QUERIES["query_login_lock"], _LOCK_KEYS)
    try:
        _ensure_roles(admin, notice)
        password = secrets.token_urlsafe(32)
        until = admin.execute(QUERIES["server_time_in"], {"seconds": PASSWORD_SECONDS}).fetchone()
        assert until is not None
        # Only the hash travels (and could reach the server log).
        hashed = admin.pgconn.encrypt_password(password.encode(), QUERY_LOGIN.encode())
        try:
            admin.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {} VALID UNTIL {}").format(
                    sql.Identifier(QUERY_LOGIN),
                    sql.Literal(hashed.decode()),
                    sql.Literal(until[0]),
                )
            )
        except psycopg.errors.InsufficientPrivilege as error:
            raise NotConfined(
                f"{admin.info.user} may not set the password of {QUERY_LOGIN}; give --query-dsn "
                "(a login granted only pgstore_reader)"
            ) from error
        if standby is not None and not replica.wait_for_replay(admin, standby, timeout=10):
            raise NotConfined(
                f"The standby has not replayed the password of {QUERY_LOGIN} within 10 s "
                "(is its replay paused, or far behind?); give --query-dsn for it"
            )
        try:
            return psycopg.connect(
                psycopg.conninfo.make_conninfo(conninfo, user=QUERY_LOGIN, password=password),
                autocommit=True,
            )
        except psycopg.OperationalError as error:
            raise NotConfined(
                f"Could not log in as {QUERY_LOGIN} ({str(error).strip().splitlines()[0]}); "
                "allow it in pg_hba.conf with a password method, or give --query-dsn"
            ) from error
    finally:
        admin.execute(QUERIES["query_login_unlock"], _LOCK_KEYS)


def _ensure_roles(admin: psycopg.Connection[Any], notice: Callable[[str], None]) -> None:
    row = admin.execute(QUERIES["query_login_exists"]).fetchone()
    assert row is not None
    if row[0] and row[1]:
        return
    try:
        create_roles(admin)
    except psycopg.errors.InsufficientPrivilege as error:
        raise NotConfined(
            "pgstore query runs as the login pgstore_query, which this database does not "
            "have yet: run `pgstore migrate --roles` as a role that may create roles, "
            "or give --query-dsn (a login granted only pgstore_reader)"
        ) from error
    notice("created the roles pgstore_reader, pgstore_writer, pgstore_dispatcher and the "
           "login pgstore_query (as `pgstore migrate --roles` does)")  # fmt: skip
