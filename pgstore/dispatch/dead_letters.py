"""Dead letters: one store per handler, a table for event_store, a pgmq queue for stream."""

from __future__ import annotations

import abc
import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from pgstore._queries import QUERIES
from pgstore.messages import Message, Undecodable, decode


@dataclass(frozen=True)
class DeadLetter:
    """A message a handler gave up on, and why.

    For a message that could not be read, `message` holds what could be (its data
    empty) and `raw_data` / `raw_metadata` the stored JSON text, kept as it was.
    """

    handler: str
    message: Message
    error: str
    traceback: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    replay_requested: bool = False
    raw_data: str | None = None
    raw_metadata: str | None = None

    def with_raw(self, data: str | None, metadata: str | None) -> DeadLetter:
        return dataclasses.replace(self, raw_data=data, raw_metadata=metadata)

    @property
    def data_text(self) -> str | None:
        """The message's data as JSON text (the stored text for an unreadable one)."""
        return self.raw_data if self.raw_data is not None else json.dumps(self.message.data)

    @property
    def metadata_text(self) -> str | None:
        if self.raw_data is not None:
            return self.raw_metadata
        return None if self.message.metadata is None else json.dumps(self.message.metadata)

    def to_dict(self) -> dict[str, Any]:
        return {
            "handler": self.handler,
            "message": self.message.to_dict(),
            "error": self.error,
            "traceback": self.traceback,
            "attempts": self.attempts,
            "first_failed_at": self.first_failed_at.isoformat(),
            "last_failed_at": self.last_failed_at.isoformat(),
            "replay_requested": self.replay_requested,
        }


def readable(row: tuple[Any, ...]) -> tuple[Message, str | None, str | None]:
    """A dead letter's message from its encoded columns; one that cannot be read is
    shown with empty data, and its stored JSON text is returned beside it."""
    try:
        return decode(*row), None, None
    except Undecodable as unreadable:
        return unreadable.placeholder, unreadable.raw_data, unreadable.raw_metadata


class DeadLetters(abc.ABC):
    """A handler's dead letters: put (inside the handler's transaction), list, replay, purge."""

    def __init__(self, handler: str) -> None:
        self.handler = handler

    @abc.abstractmethod
    def put(self, conn: psycopg.Connection[Any], letter: DeadLetter) -> None: ...

    @abc.abstractmethod
    def list(self, conn: psycopg.Connection[Any]) -> list[DeadLetter]: ...

    @abc.abstractmethod
    def replay(self, conn: psycopg.Connection[Any], message_ids: set[str] | None) -> int:
        """Re-deliver to this handler only (all of them when message_ids is None)."""

    @abc.abstractmethod
    def purge(self, conn: psycopg.Connection[Any], message_ids: set[str] | None) -> int: ...


class TableDeadLetters(DeadLetters):
    """event_store handlers: rows of pgstore.dead_letters."""

    def put(self, conn: psycopg.Connection[Any], letter: DeadLetter) -> None:
        message = letter.message
        conn.execute(
            QUERIES["dead_letter_insert"],
            {
                "handler": self.handler,
                "message_id": message.id,
                "global_position": message.global_position,
                "stream_name": message.stream_name,
                "type": message.type,
                "data": letter.data_text,
                "metadata": letter.metadata_text,
                "error": letter.error,
                "traceback": letter.traceback,
                "attempts": letter.attempts,
                "first_failed_at": letter.first_failed_at,
                "last_failed_at": letter.last_failed_at,
            },
        )

    def list(self, conn: psycopg.Connection[Any]) -> list[DeadLetter]:
        letters = []
        for row in conn.execute(QUERIES["dead_letter_list"], {"handler": self.handler}):
            message, data, metadata = readable(row[:8])
            error, trace, attempts, first_failed_at, last_failed_at, replay = row[8:]
            letters.append(
                DeadLetter(
                    handler=self.handler,
                    message=message,
                    error=error,
                    traceback=trace,
                    attempts=attempts,
                    first_failed_at=first_failed_at,
                    last_failed_at=last_failed_at,
                    replay_requested=replay,
                    raw_data=data,
                    raw_metadata=metadata,
                )
            )
        return letters

    def replay(self, conn: psycopg.Connection[Any], message_ids: set[str] | None) -> int:
        return int(
            conn.execute(
                QUERIES["dead_letter_request_replay"],
                {"handler": self.handler, "ids": _ids(message_ids)},
            ).rowcount
        )

    def purge(self, conn: psycopg.Connection[Any], message_ids: set[str] | None) -> int:
        return int(
            conn.execute(
                QUERIES["dead_letter_purge"], {"handler": self.handler, "ids": _ids(message_ids)}
            ).rowcount
        )


class QueueDeadLetters(DeadLetters):
    """stream handlers: the handler's own pgmq dead-letter queue."""

    def __init__(self, handler: str, queue: str, dead_letter_queue: str) -> None:
        super().__init__(handler)
        self.queue = queue
        self.dead_letter_queue = dead_letter_queue

    def put(self, conn: psycopg.Connection[Any], letter: DeadLetter) -> None:
        # Data and metadata travel as JSON text and are set into the body by the
        # server: the text of a message Python could not decode is kept as it was.
        body = letter.to_dict()
        conn.execute(
            QUERIES["queue_dead_letter_send"],
            {
                "queue": self.dead_letter_queue,
                "body": Jsonb(body),
                "data": letter.data_text,
                "metadata": letter.metadata_text,
                "group": letter.message.stream_name,
            },
        )

    def _rows(self, conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
        # The name comes from a stored row: read the table only if pgstore created it.
        row = conn.execute(QUERIES["queue_table"], {"queue": self.dead_letter_queue}).fetchone()
        if row is None or row[0] is None:
            return []
        table = psycopg.sql.Identifier("pgmq", f"q_{self.dead_letter_queue}")
        return conn.execute(
            psycopg.sql.SQL(QUERIES["queue_dead_letter_rows"]).format(table=table)
        ).fetchall()

    def list(self, conn: psycopg.Connection[Any]) -> list[DeadLetter]:
        letters = []
        for row in self._rows(conn):
            message, data, metadata = readable(row[1:9])
            error, trace, attempts, first_failed_at, last_failed_at = row[9:14]
            letters.append(
                DeadLetter(
                    handler=self.handler,
                    message=message,
                    error=error,
                    traceback=trace,
                    attempts=int(attempts),
                    first_failed_at=datetime.fromisoformat(first_failed_at),
                    last_failed_at=datetime.fromisoformat(last_failed_at),
                    raw_data=data,
                    raw_metadata=metadata,
                )
            )
        return letters

    def replay(self, conn: psycopg.Connection[Any], message_ids: set[str] | None) -> int:
        # Back into this handler's queue only, server-side (the body is moved as
        # stored): other handlers never see it again.
        return _count(
            conn,
            QUERIES["queue_dead_letter_replay"],
            {
                "queue": self.queue,
                "dead_letter_queue": self.dead_letter_queue,
                "ids": _ids(message_ids),
            },
            self,
        )

    def purge(self, conn: psycopg.Connection[Any], message_ids: set[str] | None) -> int:
        return _count(
            conn,
            QUERIES["queue_dead_letter_purge"],
            {"dead_letter_queue": self.dead_letter_queue, "ids": _ids(message_ids)},
            self,
        )


def _count(
    conn: psycopg.Connection[Any], query: str, params: dict[str, Any], letters: QueueDeadLetters
) -> int:
    row = conn.execute(QUERIES["queue_table"], {"queue": letters.dead_letter_queue}).fetchone()
    if row is None or row[0] is None:
        return 0
    table = psycopg.sql.Identifier("pgmq", f"q_{letters.dead_letter_queue}")
    with conn.transaction():
        found = conn.execute(psycopg.sql.SQL(query).format(table=table), params).fetchone()
    return int(found[0]) if found else 0


def _ids(message_ids: set[str] | None) -> list[str] | None:
    return sorted(message_ids) if message_ids is not None else None


def dumps(letter: DeadLetter) -> str:
    shown = letter.to_dict()
    if letter.raw_data is not None:
        shown["message"]["data"] = {"$unreadable": letter.raw_data[:2000]}
    return json.dumps(shown, indent=2)
