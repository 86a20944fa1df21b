"""Repositories: store an aggregate and append the events it raised, in one transaction."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from psycopg.types.json import Jsonb

from pgstore import tracing, unit_of_work
from pgstore.deferred import DeferredWrites, scalar_probe
from pgstore.envelope import new_message
from pgstore.errors import (
    AggregateConflict,
    MultipleFound,
    NotFound,
    PgstoreError,
    translated_errors,
)
from pgstore.messages import Appended
from pgstore.store import append_params

__all__ = ["AggregateConflict", "MultipleFound", "NotFound", "Repository"]
from pgstore._queries import QUERIES

if TYPE_CHECKING:
    import psycopg

    from pgstore.model import AggregateRoot, EventRegistry
    from pgstore.store import EventStore

A = TypeVar("A", bound="AggregateRoot")


class Repository(Generic[A]):
    """``add``, ``get`` and ``find_by`` for one aggregate class.

    Inside an event handler (or ``domain.unit_of_work()``) every call joins the open
    transaction, so the handler's writes commit with its position, exactly once.
    Outside, ``add`` runs in a transaction of its own.
    """

    def __init__(
        self,
        aggregate: type[A],
        store: Callable[[], EventStore],
        events: EventRegistry,
        *,
        domain: str = "",
        appended: Callable[[list[tuple[str, int]]], None] | None = None,
    ) -> None:
        """`store`: gives the event store (connected on first use); `events`: how
        stored messages become events (for event-sourced aggregates); `domain`: whose
        rows these are; `appended`: told (category, last global position) of what an
        `add` appended, once it has committed."""
        self.aggregate = aggregate
        self.category = aggregate.__pgstore_category__
        self.domain = domain
        self._store = store
        self._events = events
        self._appended = appended

    def add(self, aggregate: A) -> A:
        if not isinstance(aggregate, self.aggregate):
            raise TypeError(
                f"This repository stores {self.aggregate.__name__}, not {type(aggregate).__name__}"
            )
        with self._transaction() as unit:
            # In a dispatch batch, a state-stored aggregate's save and its events are
            # held back and sent with the rest of the batch (see pgstore.deferred).
            deferred = None if aggregate.__pgstore_event_sourced__ else unit.deferred
            if aggregate.__pgstore_event_sourced__:
                expected = aggregate._version
            elif deferred is not None:
                deferred.save(
                    (self.domain, self.category, str(aggregate.id)),
                    self.aggregate.__name__,
                    aggregate._version,
                    aggregate.to_dict(),
                    getattr(aggregate, "_pgstore_row_domain", self.domain),
                )
                object.__setattr__(aggregate, "_version", aggregate._version + 1)
                expected = None
            else:
                self._save_state(unit.conn, aggregate)
                expected = None  # the row's version already guards the aggregate
            events = aggregate._events
            if events:
                messages = [
                    new_message(event, aggregate.stream_name, unit.handling) for event in events
                ]
                if deferred is not None:
                    stream = aggregate.stream_name
                    with tracing.span("pgstore.append", {"stream": stream, "count": len(events)}):
                        params = append_params(stream, messages, None)
                    deferred.append(stream, params, self._after_commit(unit))
                else:
                    stored = self._store().append(
                        aggregate.stream_name, messages, expected, conn=unit.conn
                    )
                    self._after_commit(unit)(stored)
        if aggregate.__pgstore_event_sourced__:
            object.__setattr__(aggregate, "_version", aggregate._version + len(events))
        aggregate._events.clear()
        return aggregate

    def get(self, aggregate_id: str) -> A:
        if self.aggregate.__pgstore_event_sourced__:
            with self._connection() as conn:
                return self._rebuild(conn, aggregate_id)
        deferred = _deferred()
        key = (self.domain, self.category, str(aggregate_id))
        if deferred is not None:
            known = deferred.loaded(key)
            if known is not None:
                return self._from_row(*known)
        # Nothing is held back for an aggregate the batch has not seen: no flush.
        with self._connection(flush=False) as conn, translated_errors():
            row = conn.execute(
                QUERIES[_locking("aggregate_load")],
                {"domain": self.domain, "category": self.category, "id": aggregate_id},
            ).fetchone()
        if row is None:
            raise NotFound(f"No {self.aggregate.__name__} with id {aggregate_id!r}")
        if deferred is not None:
            deferred.remember(key, *row)
        return self._from_row(*row)

    def get_or_new(self, aggregate_id: str) -> A:
        """The stored aggregate, or a new one with this id and every field at its
        default (stored only by a later `add`)."""
        try:
            return self.get(aggregate_id)
        except NotFound:
            return self.aggregate(id=aggregate_id)

    def find_by(self, **fields: Any) -> A:
        """The one state-stored aggregate whose fields equal these values."""
        if self.aggregate.__pgstore_event_sourced__:
            raise PgstoreError(
                "find_by works on state-stored aggregates; event-sourced ones are read by id"
            )
        unknown = set(fields) - set(self.aggregate.__pgstore_fields__)
        if unknown:
            raise PgstoreError(f"{self.aggregate.__name__} has no field(s) {sorted(unknown)}")
        probe = _Probe(self.aggregate, fields).to_dict()  # values as stored: 1 finds '1'
        deferred = _deferred()
        # In a batch, the database's rows with the held-back saves laid over them
        # (no flush), when the probe is one the overlay can judge.
        overlay = deferred is not None and scalar_probe(probe)
        held = len(deferred.pending(self.domain, self.category)) if overlay and deferred else 0
        with self._connection(flush=not overlay) as conn, translated_errors():
            rows = conn.execute(
                QUERIES[_locking("aggregate_find")],
                {
                    "domain": self.domain,
                    "category": self.category,
                    "filter": Jsonb(probe),
                    "limit": 2 + held,
                },
            ).fetchall()
        found = [(str(i), int(version), data, domain) for i, version, data, domain in rows]
        if overlay and deferred is not None:
            matches = deferred.overlay(self.domain, self.category, probe, found)
        else:  # nothing held back (none, or just sent): the database's answer stands
            matches = [(version, data, domain) for _, version, data, domain in found]
            if deferred is not None:
                for aggregate_id, version, data, domain in found:
                    key = (self.domain, self.category, aggregate_id)
                    deferred.remember(key, version, data, domain)
        if not matches:
            raise NotFound(f"No {self.aggregate.__name__} with {fields}")
        if len(matches) > 1:
            raise MultipleFound(f"More than one {self.aggregate.__name__} with {fields}")
        return self._from_row(*matches[0])

    def _save_state(self, conn: psycopg.Connection[Any], aggregate: A) -> None:
        params = {
            "domain": self.domain,
            "category": self.category,
            "id": aggregate.id,
            "data": Jsonb(aggregate.to_dict()),
        }
        with translated_errors():
            if aggregate._version < 0:
                inserted = conn.execute(QUERIES["aggregate_insert"], params).rowcount
                if inserted != 1:
                    raise AggregateConflict(
                        f"{self.aggregate.__name__} {aggregate.id} already exists"
                    )
            else:
                params["expected_version"] = aggregate._version
                params["row_domain"] = getattr(aggregate, "_pgstore_row_domain", self.domain)
                if conn.execute(QUERIES["aggregate_update"], params).rowcount != 1:
                    raise AggregateConflict(
                        f"{self.aggregate.__name__} {aggregate.id} changed since "
                        f"version {aggregate._version}"
                    )
        object.__setattr__(aggregate, "_version", aggregate._version + 1)

    def _from_row(self, version: int, data: dict[str, Any], row_domain: str) -> A:
        aggregate = self.aggregate.from_dict(data)
        object.__setattr__(aggregate, "_version", version)
        object.__setattr__(aggregate, "_pgstore_row_domain", row_domain)
        return aggregate

    def _rebuild(self, conn: psycopg.Connection[Any], aggregate_id: str) -> A:
        stream_name = f"{self.category}-{aggregate_id}"
        messages = self._store().read_stream(stream_name, limit=-1, conn=conn)
        if not messages:
            raise NotFound(f"No {self.aggregate.__name__} with id {aggregate_id!r}")
        aggregate = self.aggregate.__new__(self.aggregate)
        for item in dataclasses.fields(self.aggregate):
            if item.default is not dataclasses.MISSING:
                value: Any = item.default
            elif item.default_factory is not dataclasses.MISSING:
                value = item.default_factory()
            else:
                value = None
            object.__setattr__(aggregate, item.name, value)
        object.__setattr__(aggregate, "id", aggregate_id)
        object.__setattr__(aggregate, "_events", [])
        for message in messages:
            aggregate._apply(self._events.event(message))
        object.__setattr__(aggregate, "_version", messages[-1].position)
        return aggregate

    def _after_commit(self, unit: unit_of_work.UnitOfWork) -> Callable[[list[Appended]], None]:
        """What to do once an add's events are stored: tell `appended` after commit."""

        def stored(appended: list[Appended]) -> None:
            if self._appended is not None:
                notify, last = self._appended, (self.category, appended[-1].global_position)
                unit.after_commit.append(lambda: notify([last]))

        return stored

    @contextmanager
    def _connection(self, *, flush: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """The unit of work's connection (having sent what a batch held back, unless
        the caller knows nothing held back concerns it), else a pooled one."""
        current = unit_of_work.current()
        if current is not None:
            yield current.conn if flush else current.raw
        else:
            with self._store().connection() as conn:
                yield conn

    @contextmanager
    def _transaction(self) -> Iterator[unit_of_work.UnitOfWork]:
        with unit_of_work.opened(self._store()) as unit:
            yield unit


def _deferred() -> DeferredWrites | None:
    unit = unit_of_work.current()
    return None if unit is None else unit.deferred


def _locking(query: str) -> str:
    """The query, or its FOR UPDATE twin inside a unit of work that locks on load."""
    unit = unit_of_work.current()
    return f"{query}_for_update" if unit is not None and unit.lock_on_load else query


class _Probe:
    """find_by's values as the aggregate stores them (coerced by its fields, in JSON)."""

    def __init__(self, aggregate: type[Any], values: dict[str, Any]) -> None:
        self._json: dict[str, Any] = {}
        for name, value in values.items():
            field = aggregate.__pgstore_fields__[name]
            try:
                self._json[name] = field.to_json(field.clean(value))
            except ValueError:
                self._json[name] = value  # a value no row can hold: finds nothing

    def to_dict(self) -> dict[str, Any]:
        return self._json
