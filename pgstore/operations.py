"""What changes state on an operator's behalf: rewind a handler, drop or create its queues."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from pgstore import subscriptions
from pgstore._queries import QUERIES
from pgstore.dispatch.dead_letters import DeadLetters, QueueDeadLetters, TableDeadLetters
from pgstore.errors import ConfigurationError

if TYPE_CHECKING:
    from pgstore.domain import Domain


@dataclass(frozen=True)
class HandlerRecord:
    """A handler as the database knows it (once a dispatcher has started it)."""

    name: str
    category: str
    position: int
    queue: str | None
    dead_letter_queue: str | None


def find_handler(conn: psycopg.Connection[Any], name: str) -> HandlerRecord:
    """A started handler by full name (`domain.Handler`) or class name."""
    rows = conn.execute(QUERIES["handler_find"], {"name": name}).fetchall()
    if len(rows) != 1:
        known = [row[0] for row in conn.execute(QUERIES["handler_names"])]
        raise ConfigurationError(
            f"{'No' if not rows else 'More than one'} handler named {name!r}; known: "
            f"{', '.join(sorted(known)) or 'none (run pgstore dispatch once)'}"
        )
    return HandlerRecord(*rows[0])


def dead_letters_for(conn: psycopg.Connection[Any], handler: str) -> DeadLetters:
    """A handler's dead letters, by full name (`domain.Handler`) or class name."""
    record = find_handler(conn, handler)
    if record.queue is not None and record.dead_letter_queue is not None:
        return QueueDeadLetters(record.name, record.queue, record.dead_letter_queue)
    return TableDeadLetters(record.name)


def rewind(
    conn: psycopg.Connection[Any],
    name: str,
    *,
    global_position: int | None = None,
    since: datetime | None = None,
) -> tuple[HandlerRecord, int]:
    """Move one handler's position (only that handler's); return it and the new position.

    Takes the handler's position lock, so it waits for a batch in progress. Streams
    held back behind a failed message are forgotten (their messages are read again from
    the new position), and for a stream handler the messages still waiting in its queue
    are purged, since the feeder queues them again from the new position.
    """
    handler = find_handler(conn, name)
    with conn.transaction():
        conn.execute(QUERIES["position_lock_wait"], {"handler": handler.name})
        conn.execute(QUERIES["partitions_lock_rows"], {"handler": handler.name})
        conn.execute(QUERIES["parked_forget"], {"handler": handler.name})
        if global_position is None:
            row = conn.execute(
                QUERIES["position_at_time"], {"category": handler.category, "since": since}
            ).fetchone()
            assert row is not None
            global_position = int(row[0])
        if handler.queue is not None:
            conn.execute(QUERIES["queue_purge"], {"queue": handler.queue})
        conn.execute(
            QUERIES["position_set"], {"handler": handler.name, "position": global_position}
        )
    return handler, global_position


def drop_subscription(conn: psycopg.Connection[Any], name: str) -> tuple[str, str]:
    """Drop a stream handler's queue and dead-letter queue (with the messages in them),
    its position and its failure counts; return the queue names."""
    handler = find_handler(conn, name)
    with conn.transaction():
        row = conn.execute(
            QUERIES["stream_subscription_delete"], {"handler": handler.name}
        ).fetchone()
        if row is None:
            raise ConfigurationError(
                f"{handler.name} is not a stream handler: it has no queues "
                "(see `pgstore queues list`)"
            )
        queue, dead_letter_queue = row
        for dropped in (queue, dead_letter_queue):
            conn.execute(QUERIES["queue_drop"], {"queue": dropped})
        conn.execute(QUERIES["handler_forget"], {"handler": handler.name})
    return queue, dead_letter_queue


def create_queues(
    conn: psycopg.Connection[Any],
    domain: Domain,
    *,
    created: Callable[[str], None] = lambda _: None,
) -> list[tuple[str, str, str]]:
    """Create the queues of the domain's stream handlers (idempotent); return
    (handler, queue, dead-letter queue) for each. `created` hears of each handler."""
    made = []
    domain.ensure_initialised()
    for spec in domain.handlers:
        created(spec.name)
        if subscriptions.resolve(spec, domain.config).subscription_type != subscriptions.STREAM:
            continue
        with conn.transaction():
            row = conn.execute(
                QUERIES["queue_create"], {"handler": spec.name, "category": spec.stream_category}
            ).fetchone()
        assert row is not None
        made.append((spec.name, str(row[0]), str(row[1])))
    return made
