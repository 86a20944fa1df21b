"""Dead letters: one store per handler, a table for event_store, a pgmq queue for stream."""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from pgstore.messages import Message, message_from_dict
from pgstore.queries import QUERIES


@dataclass(frozen=True)
class DeadLetter:
    """A message a handler gave up on, and why."""

    handler: str
    message: Message
    error: str
    traceback: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    replay_requested: bool = False

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
                "data": Jsonb(message.data),
                "metadata": Jsonb(message.metadata) if message.metadata is not None else None,
                "error": letter.error,
                "traceback": letter.traceback,
                "attempts": letter.attempts,
                "first_failed_at": letter.first_failed_at,
                "last_failed_at": letter.last_failed_at,
            },
        )

    def list(self, conn: psycopg.Connection[Any]) -> list[DeadLetter]:
        rows = conn.execute(QUERIES["dead_letter_list"], {"handler": self.handler}).fetchall()
        return [DeadLetter(self.handler, Message(*row[:8]), *row[8:]) for row in rows]

    def replay(self, conn: psycopg.Connection[Any], message_ids: set[str] | None) -> int:
        return conn.execute(
            "UPDATE pgstore.dead_letters SET replay_requested_at = now()"
            " WHERE handler = %s AND (%s::uuid[] IS NULL OR message_id = ANY(%s::uuid[]))",
            (self.handler, _ids(message_ids), _ids(message_ids)),
        ).rowcount

    def purge(self, conn: psycopg.Connection[Any], message_ids: set[str] | None) -> int:
        return conn.execute(
            "DELETE FROM pgstore.dead_letters"
            " WHERE handler = %s AND (%s::uuid[] IS NULL OR message_id = ANY(%s::uuid[]))",
            (self.handler, _ids(message_ids), _ids(message_ids)),
        ).rowcount


class QueueDeadLetters(DeadLetters):
    """stream handlers: the handler's own pgmq dead-letter queue."""

    def __init__(self, handler: str, queue: str, dead_letter_queue: str) -> None:
        super().__init__(handler)
        self.queue = queue
        self.dead_letter_queue = dead_letter_queue

    def put(self, conn: psycopg.Connection[Any], letter: DeadLetter) -> None:
        body = letter.to_dict()
        conn.execute(
            "SELECT pgmq.send(%s, %s, %s)",
            (
                self.dead_letter_queue,
                Jsonb(body),
                Jsonb({"x-pgmq-group": letter.message.stream_name}),
            ),
        )

    def _rows(self, conn: psycopg.Connection[Any]) -> list[tuple[int, dict[str, Any]]]:
        # The name comes from a stored row: read the table only if pgstore created it.
        row = conn.execute(QUERIES["queue_table"], {"queue": self.dead_letter_queue}).fetchone()
        if row is None or row[0] is None:
            return []
        table = psycopg.sql.Identifier("pgmq", f"q_{self.dead_letter_queue}")
        query = psycopg.sql.SQL("SELECT msg_id, message FROM {} ORDER BY msg_id").format(table)
        return [(int(row[0]), row[1]) for row in conn.execute(query).fetchall()]

    def list(self, conn: psycopg.Connection[Any]) -> list[DeadLetter]:
        letters = []
        for _, body in self._rows(conn):
            letters.append(
                DeadLetter(
                    handler=self.handler,
                    message=message_from_dict(body["message"]),
                    error=body["error"],
                    traceback=body["traceback"],
                    attempts=body["attempts"],
                    first_failed_at=datetime.fromisoformat(body["first_failed_at"]),
                    last_failed_at=datetime.fromisoformat(body["last_failed_at"]),
                )
            )
        return letters

    def replay(self, conn: psycopg.Connection[Any], message_ids: set[str] | None) -> int:
        replayed = 0
        with conn.transaction():
            for msg_id, body in self._rows(conn):
                message = body["message"]
                if message_ids is not None and message["id"] not in message_ids:
                    continue
                # Back into this handler's queue only: other handlers never see it again.
                conn.execute(
                    "SELECT pgmq.send(%s, %s, %s)",
                    (self.queue, Jsonb(message), Jsonb({"x-pgmq-group": message["stream_name"]})),
                )
                conn.execute("SELECT pgmq.delete(%s, %s::bigint)", (self.dead_letter_queue, msg_id))
                replayed += 1
        return replayed

    def purge(self, conn: psycopg.Connection[Any], message_ids: set[str] | None) -> int:
        purged = 0
        with conn.transaction():
            for msg_id, body in self._rows(conn):
                if message_ids is None or body["message"]["id"] in message_ids:
                    conn.execute(
                        "SELECT pgmq.delete(%s, %s::bigint)", (self.dead_letter_queue, msg_id)
                    )
                    purged += 1
        return purged


def _ids(message_ids: set[str] | None) -> list[str] | None:
    return sorted(message_ids) if message_ids is not None else None


def dumps(letter: DeadLetter) -> str:
    return json.dumps(letter.to_dict(), indent=2)
