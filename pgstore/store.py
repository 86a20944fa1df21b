"""EventStore: append and read messages through pgstore's stored functions."""

from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from pgstore import connection, tracing, unit_of_work
from pgstore._queries import QUERIES
from pgstore.errors import InvalidMessage, translated_errors
from pgstore.messages import Appended, Message, NewMessage

Connection = psycopg.Connection[TupleRow]

# A connection back from use this recently is handed out again without the pool's
# check, a round trip as dear as a small append: one that just worked is taken to
# work, and only connections that sat idle are checked for a server that went away
# meanwhile. (A failure the check would have caught is one a check can always miss,
# a restart between check and use; callers retry appends by message id.)
CHECK_IDLE_AFTER_SECONDS = 1.0


class IdleCheck:
    """The pool's `check` and `reset` callbacks: check a connection being handed out
    only if it has been idle for more than `idle_after` seconds."""

    def __init__(self, idle_after: float = CHECK_IDLE_AFTER_SECONDS) -> None:
        self.idle_after = idle_after
        self._returned_at: weakref.WeakKeyDictionary[Connection, float] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()  # clients return and borrow from many threads

    def reset(self, conn: Connection) -> None:
        with self._lock:
            self._returned_at[conn] = time.monotonic()

    def check(self, conn: Connection) -> None:
        with self._lock:
            returned_at = self._returned_at.get(conn)
        if returned_at is None or time.monotonic() - returned_at > self.idle_after:
            ConnectionPool.check_connection(conn)


class EventStore:
    """A small API over a psycopg connection pool.

    Every method also takes ``conn=``: given one, it runs there, inside the caller's
    transaction (this is how handler effects and appends commit together).
    """

    def __init__(
        self, database: ConnectionPool[Connection] | str | None = None, *, max_size: int = 4
    ) -> None:
        """`database`: a pool of yours, a connection string, or nothing: then pgstore
        finds it as the CLI does (PGSTORE_DSN, libpq's variables, the embedded server)."""
        if isinstance(database, ConnectionPool):
            self.pool = database
            return
        conninfo = connection.resolve(database).conninfo
        # A pool retries failed connections quietly until its timeout; one direct
        # connection first surfaces a wrong address or password immediately.
        psycopg.connect(conninfo).close()
        idle_check = IdleCheck()
        self.pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            check=idle_check.check,
            reset=idle_check.reset,
            open=True,
        )

    @classmethod
    def connect(cls, conninfo: str | None = None, *, max_size: int = 4) -> EventStore:
        """Open a pool on `conninfo` (or the database pgstore finds); fail at once, with
        libpq's own message, if the database is unreachable."""
        return cls(conninfo, max_size=max_size)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def append(
        self,
        stream_name: str,
        messages: NewMessage | Sequence[NewMessage],
        expected_version: int | None = None,
        *,
        conn: Connection | None = None,
    ) -> list[Appended]:
        """Append one message or a batch, atomically, to one stream.

        expected_version: None = no check, -1 = the stream must not exist, N = its
        last position must be N (else WrongExpectedVersion).
        """
        batch = [messages] if isinstance(messages, NewMessage) else list(messages)
        with tracing.span("pgstore.append", {"stream": stream_name, "count": len(batch)}):
            return self._append(stream_name, batch, expected_version, conn)

    def _append(
        self,
        stream_name: str,
        batch: list[NewMessage],
        expected_version: int | None,
        conn: Connection | None,
    ) -> list[Appended]:
        params = append_params(stream_name, batch, expected_version)
        try:
            rows = self._fetch("append_messages", params, conn)
        except RecursionError as error:  # the JSON encoder gave up on the nesting
            raise too_deep(stream_name) from error
        return [Appended(*row) for row in rows]

    def read_stream(
        self,
        stream_name: str,
        from_position: int = 0,
        limit: int = 1000,
        *,
        conn: Connection | None = None,
    ) -> list[Message]:
        """A stream's messages in position order (limit -1: all of them)."""
        params = {"stream_name": stream_name, "from_position": from_position, "batch_size": limit}
        return [Message(*row) for row in self._fetch("read_stream", params, conn)]

    def read_category(
        self,
        category: str,
        from_global_position: int = 0,
        limit: int = 1000,
        *,
        consumer_group: tuple[int, int] | None = None,
        correlation: str | None = None,
        conn: Connection | None = None,
    ) -> list[Message]:
        """A category's messages in global order, never past a late commit.

        consumer_group: (member, size) to read only this member's streams.
        """
        member, size = consumer_group if consumer_group else (None, None)
        params = {
            "category": category,
            "from_global_position": from_global_position,
            "batch_size": limit,
            "consumer_group_member": member,
            "consumer_group_size": size,
            "correlation": correlation,
        }
        return [Message(*row) for row in self._fetch("read_category", params, conn)]

    def read_all(
        self, from_global_position: int = 0, limit: int = 1000, *, conn: Connection | None = None
    ) -> list[Message]:
        """Every message ($all) in global order, never past a late commit."""
        params = {"from_global_position": from_global_position, "batch_size": limit}
        return [Message(*row) for row in self._fetch("read_all", params, conn)]

    def last_message(
        self, stream_name: str, type: str | None = None, *, conn: Connection | None = None
    ) -> Message | None:
        rows = self._fetch("last_message", {"stream_name": stream_name, "type": type}, conn)
        return Message(*rows[0]) if rows else None

    def stream_version(self, stream_name: str, *, conn: Connection | None = None) -> int | None:
        """The stream's last position, None if it has no messages."""
        rows = self._fetch("stream_version", {"stream_name": stream_name}, conn)
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    @contextmanager
    def connection(self, conn: Connection | None = None) -> Iterator[Connection]:
        """The caller's connection if given; else, inside a unit of work (a handler, or
        `domain.unit_of_work()`), its connection, so the call joins its transaction;
        else one from the pool."""
        with self._connection(conn, autocommit=False) as connection:
            yield connection

    @contextmanager
    def _connection(self, conn: Connection | None, *, autocommit: bool) -> Iterator[Connection]:
        """As `connection`; a pooled one in autocommit if asked, and handed back to the
        pool as it was."""
        if conn is not None:
            yield conn
            return
        unit = unit_of_work.current()
        if unit is not None:
            yield unit.conn
            return
        with self.pool.connection() as pooled:
            if not autocommit:
                yield pooled
                return
            pooled.autocommit = True
            try:
                yield pooled
            finally:
                if not pooled.closed:  # (a broken one is closed, and the pool drops it)
                    pooled.autocommit = False  # as the pool hands it to everyone else

    def _fetch(self, name: str, params: dict[str, Any], conn: Connection | None) -> list[TupleRow]:
        """One statement where `connection` says; on a pooled connection, in autocommit:
        the statement is its own transaction, without a BEGIN and a COMMIT round trip
        (about a quarter of a single append's time)."""
        with self._connection(conn, autocommit=True) as connection, translated_errors():
            return connection.execute(QUERIES[name], params).fetchall()


def append_params(
    stream_name: str, batch: list[NewMessage], expected_version: int | None
) -> dict[str, Any]:
    """append_messages' parameters for a batch, carrying the current trace context in
    each message's metadata (the writer's trace continues in whoever handles them)."""
    carried = tracing.traceparent()
    if carried is not None:
        batch = [
            dataclasses.replace(m, metadata={"traceparent": carried, **(m.metadata or {})})
            for m in batch
        ]
    return {
        "stream_name": stream_name,
        "ids": [m.id for m in batch],
        "types": [m.type for m in batch],
        "data": [_jsonb(m.data) for m in batch],
        "metadata": [_jsonb(m.metadata) for m in batch],
        "expected_version": expected_version,
    }


def too_deep(stream_name: str) -> InvalidMessage:
    return InvalidMessage(
        f"Message data or metadata is nested too deeply to store (Stream: {stream_name})"
    )


def _jsonb(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)
