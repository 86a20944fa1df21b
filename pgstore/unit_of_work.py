"""The unit of work: one transaction that repositories join, and the message being handled."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from pgstore.deferred import DeferredWrites
from pgstore.messages import Message


class ConnectionSource(Protocol):
    """Where a new unit of work gets its connection (an EventStore)."""

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]: ...


@dataclass(frozen=True)
class UnitOfWork:
    """A connection inside a transaction, the message whose handling opened it, what to
    run once it has committed (a repository's sync event processing), whether
    repositories lock the state-stored aggregates they load (`lock_on_load`: a handler
    run again after losing a race takes the row lock at once, so it cannot lose again),
    and, in a dispatch batch, the writes held back until the batch ends (`deferred`)."""

    raw: psycopg.Connection[Any]
    handling: Message | None = None
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    lock_on_load: bool = False
    deferred: DeferredWrites | None = None

    @property
    def conn(self) -> psycopg.Connection[Any]:
        """The transaction's connection, for SQL of your own. In a dispatch batch, the
        writes held back so far are sent first, so what you run sees them, and what the
        batch has loaded is forgotten, so what you write is what it loads next."""
        if self.deferred is not None:
            self.deferred.flush(self.raw)
            self.deferred.forget()
        return self.raw


_current: ContextVar[UnitOfWork | None] = ContextVar("pgstore_unit_of_work", default=None)


def current() -> UnitOfWork | None:
    """The unit of work repositories should join, if one is open."""
    return _current.get()


@contextmanager
def joined(unit: UnitOfWork) -> Iterator[UnitOfWork]:
    """Make `unit` the one repositories join until the block ends."""
    token = _current.set(unit)
    try:
        yield unit
    finally:
        _current.reset(token)


@contextmanager
def opened(store: ConnectionSource) -> Iterator[UnitOfWork]:
    """The open unit of work, or a new one: a transaction on a connection of `store`
    that every repository (and store) call in the block joins."""
    existing = current()
    if existing is not None:
        yield existing
        return
    with store.connection() as conn, conn.transaction(), joined(UnitOfWork(conn)) as unit:
        yield unit
    # Committed: only now may what depends on it run (it reads what was written).
    for callback in unit.after_commit:
        callback()
