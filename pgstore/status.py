"""What the dispatcher is doing: every handler's position and lag, and the read horizon."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg

from pgstore import subscriptions
from pgstore._queries import QUERIES
from pgstore.domain import Domain


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
    failing: int = 0
    """Messages whose failures are being retried now."""
    partitions: int = 1
    """How many partitions an event_store handler's category is split into."""
    rate: float | None = None
    """Events handled per second lately (the observatory measures it; None otherwise)."""


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
            failing=int(row[13]),
            partitions=int(row[14]),
        )
        for row in rows
    ]
    if domain is not None:
        domain.ensure_initialised()
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
                    category=spec.stream_category or "",
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
