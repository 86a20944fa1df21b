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
    waiting_events: int = 0
    """Committed events it cannot see yet: a transaction holds the horizon back."""
    waiting_seconds: float = 0.0
    conflicts: int = 0


@dataclass(frozen=True)
class Horizon:
    """The global position readers may not pass yet, and who holds it back.

    `holder_*` describe the oldest running transaction with an id (None when nothing
    holds the horizon); its age, state and query are None where PostgreSQL hides them
    from the login asking (`pg_read_all_stats` shows them). `stalled_seconds` is how
    long the oldest committed event above the horizon has waited.
    """

    global_position: int
    waiting_events: int
    stalled_seconds: float
    holder_pid: int | None = None
    holder_transaction_id: int | None = None
    holder_database: str | None = None
    holder_role: str | None = None
    holder_prepared: str | None = None
    holder_seconds: float | None = None
    holder_state: str | None = None
    holder_application: str | None = None
    holder_query: str | None = None

    @property
    def held(self) -> bool:
        return self.holder_transaction_id is not None


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
    rows = conn.execute(QUERIES["status_handlers"]).fetchall()
    handlers = [
        HandlerStatus(
            handler=row[0],
            subscription_type=row[1],
            category=row[2],
            position=int(row[3]),
            lag_events=int(row[4]),
            lag_seconds=round(max(float(row[5]), 0.0), 3),
            queue_depth=None if row[6] is None else int(row[6]),
            dead_letters=int(row[7] or 0),
            last_error=row[8],
            last_failed_at=row[9],
            started=True,
            waiting_events=int(row[10]),
            waiting_seconds=round(max(float(row[11]), 0.0), 3),
            conflicts=int(row[12]),
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
                QUERIES["status_category_backlog"], {"category": spec.stream_category}
            ).fetchone()
            assert backlog is not None
            handlers.append(
                HandlerStatus(
                    handler=spec.name,
                    subscription_type=subscriptions.resolve(spec, domain.config).subscription_type,
                    category=spec.stream_category,
                    position=None,
                    lag_events=int(backlog[0]),
                    lag_seconds=round(max(float(backlog[1] or 0), 0.0), 3),
                    queue_depth=None,
                    dead_letters=0,
                    last_error=None,
                    last_failed_at=None,
                    started=False,
                )
            )
    row = conn.execute(QUERIES["status_horizon"]).fetchone()
    assert row is not None
    horizon = Horizon(
        global_position=int(row[0]),
        waiting_events=int(row[1]),
        stalled_seconds=round(max(float(row[2]), 0.0), 3),
        holder_transaction_id=row[3],
        holder_pid=row[4],
        holder_database=row[5],
        holder_role=row[6],
        holder_prepared=row[7],
        holder_seconds=None if row[8] is None else round(max(float(row[8]), 0.0), 3),
        holder_state=row[9],
        holder_application=row[10],
        holder_query=row[11],
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
        # Streams held back behind a failed message: read again from the new position.
        conn.execute("DELETE FROM pgstore.handler_parked WHERE handler = %s", (handler.name,))
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
