"""Wake-ups: LISTEN for the appends' NOTIFY, a hint that is never the only trigger."""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from pgstore._queries import QUERIES

logger = logging.getLogger(__name__)

CHANNEL = "pgstore_messages"  # the channel append_messages notifies (see the named query)


class Listener:
    """A LISTEN connection; `wait` returns True when a notification arrived."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._conn: psycopg.Connection[Any] | None = None

    def connect(self) -> None:
        self.close()
        self._conn = psycopg.connect(self.conninfo, autocommit=True)
        self._conn.execute(QUERIES["listen"])

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds for a notification; drain any others queued."""
        if self._conn is None:
            self.connect()
        assert self._conn is not None
        notified = False
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            notified = True
        if notified:  # several appends may have notified: one wake-up is enough
            for _ in self._conn.notifies(timeout=0):
                pass
        return notified

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
