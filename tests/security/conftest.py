"""Helpers for the adversarial tests (the `logins` fixture is in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import psycopg

Conn = psycopg.Connection[Any]


def refused(conninfo: str, statement: str, *params: Any) -> bool:
    """Whether the login gets 'permission denied' for the statement."""
    with psycopg.connect(conninfo) as conn:
        try:
            conn.execute(statement, params or None)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False
