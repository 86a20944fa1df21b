"""What the dispatcher is doing: every handler's position and lag, and the read horizon."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg

from pgstore import subscriptions
from pgstore.domain import Domain
from pgstore.queries import QUERIES


@dataclass(frozen=True)
class HandlerStatus:
    handler: str
    subscription_type: str
    category: str
    position: int | None
    lag_events: int
    lag_seconds: float
    queue_depth: int | None
    dead_letters: int
    last_error: str | None
    last_failed_at: datetime | None
    started: bool


@dataclass(frozen=True)
class Horizon:
    """The global position readers may not pass yet, and who holds it back."""

    global_position: int
    oldest_transaction_pid: int | None
    oldest_transaction_seconds: float | None
    oldest_transaction_state: str | None
    oldest_transaction_query: str | None


@dataclass(frozen=True)
class Status:
    handlers: list[HandlerStatus]
    horizon: Horizon

    def to_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            return value.isoformat() if isinstance(value, datetime) else value

        return {
            "handlers": [{k: plain(v) for k, v in asdict(h).items()} for h in self.handlers],
            "horizon": asdict(self.horizon),
        }


def collect(conn: psycopg.Connection[Any], domain: Domain | None = None) -> Status:
    """Read pgstore.handlers (and, given the domain, list its handlers not yet started)."""
    rows = conn.execute(
        "SELECT handler, subscription_type, category, position, lag_events, lag_seconds,"
        " queue_depth, dead_letters, last_error, last_failed_at FROM pgstore.handlers"
        " ORDER BY handler"
    ).fetchall()
    handlers = [
        HandlerStatus(
            handler=row[0],
            subscription_type=row[1],
            category=row[2],
            position=int(row[3]),
            lag_events=int(row[4]),
            lag_seconds=round(float(row[5]), 3),
            queue_depth=None if row[6] is None else int(row[6]),
            dead_letters=int(row[7] or 0),
            last_error=row[8],
            last_failed_at=row[9],
            started=True,
        )
        for row in rows
    ]
    if domain is not None:
        known = {h.handler for h in handlers}
        handlers = [h for h in handlers if h.handler.startswith(f"{domain.name}.")]
        for spec in domain.handlers:
            if spec.name in known:
                continue
            backlog = conn.execute(
                "SELECT count(*), extract(epoch FROM now() - min(time)) FROM pgstore.messages"
                " WHERE category = %s AND global_position < pgstore.global_position_horizon()",
                (spec.stream_category,),
            ).fetchone()
            assert backlog is not None
            handlers.append(
                HandlerStatus(
                    handler=spec.name,
                    subscription_type=subscriptions.resolve(spec, domain.config).subscription_type,
                    category=spec.stream_category,
                    position=None,
                    lag_events=int(backlog[0]),
                    lag_seconds=round(float(backlog[1] or 0), 3),
                    queue_depth=None,
                    dead_letters=0,
                    last_error=None,
                    last_failed_at=None,
                    started=False,
                )
            )
    row = conn.execute(
        "SELECT pgstore.global_position_horizon(), o.pid, o.age_seconds, o.state, o.query"
        " FROM pgstore.oldest_transaction() o"
    ).fetchone()
    assert row is not None
    horizon = Horizon(
        int(row[0]), row[1], None if row[2] is None else round(row[2], 3), row[3], row[4]
    )
    return Status(sorted(handlers, key=lambda h: h.handler), horizon)


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
    from pgstore.errors import ConfigurationError

    rows = conn.execute(QUERIES["handler_find"], {"name": name}).fetchall()
    if len(rows) != 1:
        known = [row[0] for row in conn.execute("SELECT handler FROM pgstore.handler_positions")]
        raise ConfigurationError(
            f"{'No' if not rows else 'More than one'} handler named {name!r}; known: "
            f"{', '.join(sorted(known)) or 'none (run pgstore dispatch once)'}"
        )
    return HandlerRecord(*rows[0])


def rewind(
    conn: psycopg.Connection[Any],
    name: str,
    *,
    global_position: int | None = None,
    since: datetime | None = None,
) -> tuple[HandlerRecord, int]:
    """Move one handler's position back (only that handler); return it and the new position.

    Takes the handler's position lock, so it waits for a batch in progress. For a
    stream handler the messages still waiting in its queue are purged first, since
    the feeder will queue them again from the new position.
    """
    handler = find_handler(conn, name)
    with conn.transaction():
        conn.execute(
            "SELECT 1 FROM pgstore.handler_positions WHERE handler = %s FOR UPDATE", (handler.name,)
        )
        if global_position is None:
            row = conn.execute(
                "SELECT coalesce(min(global_position), pgstore.global_position_horizon())"
                " FROM pgstore.messages WHERE category = %s AND time >= %s",
                (handler.category, since),
            ).fetchone()
            assert row is not None
            global_position = int(row[0])
        if handler.queue is not None:
            conn.execute("SELECT pgmq.purge_queue(%s)", (handler.queue,))
        conn.execute(
            "UPDATE pgstore.handler_positions SET position = %s, updated_at = now()"
            " WHERE handler = %s",
            (global_position, handler.name),
        )
    return handler, global_position
