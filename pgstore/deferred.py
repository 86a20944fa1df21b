"""A dispatch batch's writes held back and sent together: aggregates saved, events raised.

While a handler works through a batch, its repositories keep the state-stored
aggregates they load and save in an identity map, and hold the saves and the event
appends back. The next load of the same aggregate is answered from the map, and all
that was held back goes to the server in one pipeline (one round trip) when the batch
ends, or as soon as anything could read the database and miss it: a `find_by` that
the map cannot answer alone, an event-sourced load or save, the store's calls, any
use of the unit of work's connection (which also forgets what was loaded: SQL of the
handler's own may have changed it). Statements run in the order they were made.

A save still checks the version it was loaded at: in the map at once (a stale copy
raises AggregateConflict as the database would), and in the database when it is
sent, against the row's version when this batch first read it. A failure there fails
the batch as a whole; the dispatcher rolls it back and runs its messages one by one,
without holding anything back.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from pgstore._queries import QUERIES
from pgstore.errors import AggregateConflict, translated_errors
from pgstore.messages import Appended

Key = tuple[str, str, str]
"""(domain, category, id) of a state-stored aggregate."""


@dataclass
class _Row:
    version: int
    data: dict[str, Any]
    row_domain: str
    stored_version: int  # the row's version in the database (-1: not there yet)
    name: str  # the aggregate class, for errors

    @property
    def dirty(self) -> bool:
        return self.version != self.stored_version


@dataclass
class _Append:
    stream_name: str
    params: dict[str, Any]
    on_appended: Callable[[list[Appended]], None] | None


class DeferredWrites:
    """One batch's identity map of state-stored aggregates and its held-back writes."""

    def __init__(self) -> None:
        self._rows: dict[Key, _Row] = {}
        self._appends: list[_Append] = []

    def loaded(self, key: Key) -> tuple[int, dict[str, Any], str] | None:
        """(version, data, row domain) of an aggregate this batch has loaded or saved;
        the data is a copy, so changes made to one loaded object stay out of the next."""
        row = self._rows.get(key)
        if row is None:
            return None
        return row.version, copy.deepcopy(row.data), row.row_domain

    def remember(self, key: Key, version: int, data: dict[str, Any], row_domain: str) -> None:
        """An aggregate as the database holds it now (just read from it)."""
        if key not in self._rows:
            self._rows[key] = _Row(version, copy.deepcopy(data), row_domain, version, "")

    def save(
        self, key: Key, name: str, version: int, data: dict[str, Any], row_domain: str
    ) -> None:
        """Hold back the save of an aggregate loaded at `version` (-1: a new one)."""
        row = self._rows.get(key)
        if version < 0:
            if row is not None:
                raise AggregateConflict(f"{name} {key[2]} already exists")
            self._rows[key] = _Row(0, data, row_domain, -1, name)
            return
        if row is None:  # loaded before this batch began: the database checks it
            row = self._rows[key] = _Row(version, data, row_domain, version, name)
        elif row.version != version:
            raise AggregateConflict(f"{name} {key[2]} changed since version {version}")
        row.version, row.data, row.name = version + 1, data, name

    def append(
        self,
        stream_name: str,
        params: dict[str, Any],
        on_appended: Callable[[list[Appended]], None] | None = None,
    ) -> None:
        """Hold back an append (append_messages' parameters); `on_appended` hears
        where the messages landed once it has been sent."""
        self._appends.append(_Append(stream_name, params, on_appended))

    def pending(self, domain: str, category: str) -> list[tuple[str, _Row]]:
        """The saves held back for one kind of aggregate, by id."""
        return [
            (key[2], row)
            for key, row in self._rows.items()
            if key[0] == domain and key[1] == category and row.dirty
        ]

    def overlay(
        self,
        domain: str,
        category: str,
        probe: dict[str, Any],
        found: list[tuple[str, int, dict[str, Any], str]],
    ) -> list[tuple[int, dict[str, Any], str]]:
        """What `find_by` finds with the held-back saves applied to the rows the
        database returned (`found`: id, version, data, row domain): a saved aggregate
        replaces its row, and matches the probe (or not) by its new fields."""
        results: dict[str, tuple[int, dict[str, Any], str]] = {}
        for aggregate_id, version, data, row_domain in found:
            self.remember((domain, category, aggregate_id), version, data, row_domain)
            known = self._rows[(domain, category, aggregate_id)]
            if _contains(known.data, probe) and aggregate_id not in results:
                results[aggregate_id] = (known.version, copy.deepcopy(known.data), known.row_domain)
        for aggregate_id, row in self.pending(domain, category):
            if aggregate_id not in results and _contains(row.data, probe):
                results[aggregate_id] = (row.version, copy.deepcopy(row.data), row.row_domain)
        return [results[key] for key in sorted(results)]

    def forget(self) -> None:
        """Drop what was loaded (after a flush: nothing is held back then), so the next
        load reads the database again."""
        self._rows = {key: row for key, row in self._rows.items() if row.dirty}

    def flush(self, conn: psycopg.Connection[Any]) -> None:
        """Send what was held back, in one pipeline, in the order it was made."""
        saves = [(key, row) for key, row in self._rows.items() if row.dirty]
        appends, self._appends = self._appends, []
        if not saves and not appends:
            return
        with translated_errors(), conn.pipeline():
            saved = [conn.execute(*_save_statement(key, row)) for key, row in saves]
            sent = [conn.execute(QUERIES["append_messages"], a.params) for a in appends]
        for (key, row), cursor in zip(saves, saved, strict=True):
            if cursor.rowcount != 1:
                what = "already exists" if row.stored_version < 0 else (
                    f"changed since version {row.stored_version}"
                )  # fmt: skip
                raise AggregateConflict(f"{row.name or key[1]} {key[2]} {what}")
            row.stored_version = row.version
        for append, cursor in zip(appends, sent, strict=True):
            if append.on_appended is not None:
                append.on_appended([Appended(*r) for r in cursor.fetchall()])


def _save_statement(key: Key, row: _Row) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {
        "domain": key[0],
        "category": key[1],
        "id": key[2],
        "data": Jsonb(row.data),
    }
    if row.stored_version < 0:
        params["version"] = row.version
        return QUERIES["aggregate_insert_at"], params
    params |= {
        "row_domain": row.row_domain,
        "expected_version": row.stored_version,
        "version": row.version,
    }
    return QUERIES["aggregate_update_to"], params


def _contains(data: dict[str, Any], probe: dict[str, Any]) -> bool:
    """`data @> probe` for a probe of top-level scalars, as jsonb compares them."""
    return all(key in data and _same(data[key], value) for key, value in probe.items())


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return type(stored) is type(wanted) and stored == wanted
    if isinstance(stored, int | float) and isinstance(wanted, int | float):
        return stored == wanted
    return type(stored) is type(wanted) and bool(stored == wanted)


def scalar_probe(probe: dict[str, Any]) -> bool:
    """Whether `overlay` can answer for this probe (nested values are containment,
    not equality, in jsonb: those go to the database after a flush)."""
    return all(value is None or isinstance(value, str | int | float) for value in probe.values())
