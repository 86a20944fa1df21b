"""What the observatory shows, read as a confined reader through named, bounded queries."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import psycopg

from pgstore import operations, query_login, status
from pgstore._queries import QUERIES
from pgstore.domain import Domain

PAGE = 50
STATEMENT_TIMEOUT = "10s"
CHAIN_DEPTH = 20
# Rates are measured over at least this long, so two quick page loads do not make one.
RATE_SECONDS = 1.0


class ReaderPool:
    """A few connections confined to pgstore_reader (pgstore's own query login, or the
    login given), made again when one breaks."""

    def __init__(
        self,
        conninfo: str,
        *,
        reader_conninfo: str | None = None,
        read_conninfo: str | None = None,
        size: int = 4,
    ) -> None:
        """`reader_conninfo`: a confined login to use as it is (--query-dsn);
        `read_conninfo`: connect to this hot standby (--read-dsn) instead."""

        def connect() -> psycopg.Connection[Any]:
            conn = query_login.connect(
                conninfo, query_conninfo=reader_conninfo, read_conninfo=read_conninfo
            )
            conn.execute(QUERIES["observatory_session"], {"timeout": STATEMENT_TIMEOUT})
            return conn

        self._connect: Callable[[], psycopg.Connection[Any]] = connect
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    def new_connection(self) -> psycopg.Connection[Any]:
        """A confined connection of its own (for LISTEN)."""
        return self._connect()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            try:
                yield conn
            except psycopg.OperationalError:
                conn.close()
                raise
            if conn.broken or conn.closed:
                return
            if not conn.autocommit:
                conn.rollback()
            self._idle.put(conn)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


@dataclass(frozen=True)
class Search:
    """The events page's filters (None: not filtered) and where its page starts."""

    category: str | None = None
    stream: str | None = None
    type: str | None = None
    correlation: str | None = None
    since: datetime | None = None
    before: int | None = None


class RateMeter:
    """Events handled per second, per handler, between two looks at the status.

    A handler has handled its category's events less those it lags behind and those
    waiting above the horizon; the change in that count over the time between two
    looks (at least RATE_SECONDS apart) is its rate."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last: tuple[float, dict[str, int]] | None = None
        self._rates: dict[str, float] = {}

    def measure(
        self, handlers: list[status.HandlerStatus], category_events: dict[str, int]
    ) -> dict[str, float]:
        handled = {
            h.handler: category_events.get(h.category, 0) - h.lag_events - h.waiting_events
            for h in handlers
            if h.started
        }
        now = self._clock()
        with self._lock:
            if self._last is None:
                self._last = (now, handled)
            elif now - self._last[0] >= RATE_SECONDS:
                then, before = self._last
                self._rates = {
                    name: round(max(count - before[name], 0) / (now - then), 2)
                    for name, count in handled.items()
                    if name in before
                }
                self._last = (now, handled)
            return dict(self._rates)


class Observatory:
    """The observatory's reads: status, events, one event and its causation chain, dead
    letters. Every one is a named query with a bound on what it returns.

    `events_pool` (a hot standby's, with --read-dsn) serves the event reads; status,
    dead letters and LISTEN stay on `pool`, the primary's: the transaction holding
    the horizon is the primary's to name, and a standby refuses LISTEN."""

    def __init__(
        self,
        pool: ReaderPool,
        domains: list[Domain],
        rates: RateMeter | None = None,
        *,
        events_pool: ReaderPool | None = None,
    ) -> None:
        self.pool = pool
        self.events_pool = events_pool or pool
        self.domains = domains
        self.rates = rates or RateMeter()

    def status(self) -> status.Status:
        with self.pool.connection() as conn:
            collected = status.collect(conn)
            for domain in self.domains:  # handlers declared but not started yet
                extra = status.collect(conn, domain)
                known = {h.handler for h in collected.handlers}
                collected.handlers.extend(h for h in extra.handlers if h.handler not in known)
        events = {row["category"]: row["events"] for row in self.categories()}
        rates = self.rates.measure(collected.handlers, events)
        return replace(
            collected,
            handlers=sorted(
                (replace(h, rate=rates.get(h.handler)) for h in collected.handlers),
                key=lambda h: h.handler,
            ),
        )

    def categories(self) -> list[dict[str, Any]]:
        with self.events_pool.connection() as conn:
            rows = conn.execute(QUERIES["observatory_categories"]).fetchall()
        return [
            {"category": c, "streams": int(s), "events": int(e), "last_global_position": int(p)}
            for c, s, e, p in rows
        ]

    def events(self, search: Search, limit: int = PAGE) -> list[dict[str, Any]]:
        params = {**search.__dict__, "limit": min(max(limit, 1), 500)}
        with self.events_pool.connection() as conn:
            rows = conn.execute(QUERIES["observatory_events"], params).fetchall()
        return [_summary(row) for row in rows]

    def event(self, message_id: str) -> dict[str, Any] | None:
        try:
            key = uuid.UUID(message_id)
        except ValueError:
            return None
        with self.events_pool.connection() as conn:
            row = conn.execute(QUERIES["observatory_event"], {"id": key}).fetchone()
        if row is None:
            return None
        found = _summary((*row[:7], None, None))
        found["data"] = _json(row[7])
        found["metadata"] = _json(row[8])
        metadata = found["metadata"] if isinstance(found["metadata"], dict) else {}
        found["correlation_id"] = metadata.get("correlation_id")
        found["causation_id"] = metadata.get("causation_id")
        return found

    def chain(self, message_id: str) -> dict[str, Any] | None:
        """The event, the chain of what caused it (up to its correlation's first
        message, or a command run at once that was never stored), and what it caused."""
        event = self.event(message_id)
        if event is None:
            return None
        causes: list[dict[str, Any]] = []
        cause_id = event["causation_id"]
        while cause_id and len(causes) < CHAIN_DEPTH:
            cause = self.event(str(cause_id))
            if cause is None:
                causes.append({"id": cause_id, "type": "(not stored: run at once)"})
                break
            causes.append(cause)
            cause_id = cause["causation_id"]
        with self.events_pool.connection() as conn:
            rows = conn.execute(
                QUERIES["observatory_effects"],
                {"id": str(event["id"]), "after": event["global_position"]},
            ).fetchall()
        effects = [
            {"id": str(i), "stream_name": s, "type": t, "global_position": int(g)}
            for i, s, t, g in rows
        ]
        return {"event": event, "causes": list(reversed(causes)), "effects": effects}

    def dead_letters(self, handler: str) -> list[dict[str, Any]]:
        with self.pool.connection() as conn:
            letters = operations.dead_letters_for(conn, handler).list(conn)
        return [letter.to_dict() for letter in letters]

    def since(self, after: int) -> list[dict[str, Any]]:
        with self.events_pool.connection() as conn:
            rows = conn.execute(QUERIES["observatory_since"], {"after": after}).fetchall()
        return [
            {
                "global_position": int(g),
                "id": str(i),
                "stream_name": s,
                "category": c,
                "type": t,
                "time": m.isoformat(),
            }
            for g, i, s, c, t, m in rows
        ]

    def last_position(self) -> int:
        with self.events_pool.connection() as conn:
            row = conn.execute(QUERIES["observatory_last_position"]).fetchone()
        return int(row[0]) if row else 0


def _summary(row: tuple[Any, ...]) -> dict[str, Any]:
    gp, message_id, stream, category, type_, position, time, correlation, causation = row
    return {
        "global_position": int(gp),
        "id": str(message_id),
        "stream_name": stream,
        "category": category,
        "type": type_,
        "position": int(position),
        "time": time.isoformat(),
        "correlation_id": correlation,
        "causation_id": causation,
    }


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (RecursionError, ValueError):
        return {"$unreadable": text[:2000]}
