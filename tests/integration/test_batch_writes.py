"""A dispatch batch holds its writes back and sends them together, and nothing changes
for the handler: it sees its own writes, find_by sees them, raw SQL sees them, and a
lost race still leaves every effect applied once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from pgstore import AggregateRoot, Domain, Event, handle
from pgstore.dispatch import Dispatcher
from pgstore.messages import NewMessage
from pgstore.store import EventStore

Conn = psycopg.Connection[Any]
TYPES = ["event_store", "stream"]


@dataclass
class Seen:
    found: list[str] = field(default_factory=list)
    raw: list[int] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)


def build(dsn: str, seen: Seen, subscription_type: str) -> Domain:
    domain = Domain(
        "batch",
        dsn=dsn,
        config={"subscription": {"subscription_type": subscription_type, "max_retries": 0}},
    )

    @domain.aggregate(stream_category="step")
    class Step(AggregateRoot):
        pass

    @domain.event(part_of=Step)
    class Moved(Event):
        shelf: str
        to: str

    @domain.event(part_of=Step)
    class Counted(Event):
        shelf: str
        check: bool = True

    @domain.event(part_of=Step)
    class Reset(Event):
        shelf: str

    @domain.aggregate
    class Shelf(AggregateRoot):
        name: str = ""
        count: int = 0

    @domain.event(part_of=Shelf)
    class Touched(Event):
        count: int

    @domain.event_handler(part_of=Shelf, stream_category="step")
    class Shelves:
        @handle(Moved)
        def moved(self, event: Moved) -> None:
            repository = domain.repository_for(Shelf)
            try:
                shelf = repository.find_by(name=event.shelf)
            except Exception as error:  # NotFound: a new shelf
                seen.found.append(f"{event.shelf}: {type(error).__name__}")
                shelf = Shelf(id=f"{event.shelf}-{event.to}", name=event.shelf)
            else:
                seen.found.append(f"{event.shelf}: found at {shelf.count}")
            shelf.name = event.to
            shelf.count += 1
            shelf.raise_(Touched(count=shelf.count))
            repository.add(shelf)

        @handle(Reset)
        def reset(self, event: Reset) -> None:
            with domain.unit_of_work() as unit:  # SQL of its own, on a loaded aggregate
                unit.conn.execute(
                    "UPDATE pgstore.aggregates SET version = version + 1,"
                    " data = jsonb_set(data, '{count}', '100') WHERE id = %s",
                    (event.shelf,),
                )

        @handle(Counted)
        def counted(self, event: Counted) -> None:
            repository = domain.repository_for(Shelf)
            shelf = repository.get(event.shelf)
            shelf.count += 1
            repository.add(shelf)
            if not event.check:
                return
            with domain.unit_of_work() as unit:  # the handler's own: SQL of its own
                row = unit.conn.execute(
                    "SELECT (data->>'count')::int FROM pgstore.aggregates"
                    " WHERE category = 'shelf' AND id = %s",
                    (event.shelf,),
                ).fetchone()
            assert row is not None
            seen.raw.append(row[0])

    return domain


@pytest.fixture
def seen() -> Seen:
    return Seen()


def steps(store: EventStore, *events: tuple[str, dict[str, Any]]) -> None:
    """All in one stream, so one batch reads them in order."""
    store.append("step-1", [NewMessage(f"batch.{kind}.v1", data) for kind, data in events])


@pytest.mark.parametrize("subscription_type", TYPES)
def test_find_by_sees_the_batchs_own_saves(
    dsn: str, conn: Conn, store: EventStore, seen: Seen, subscription_type: str
) -> None:
    steps(
        store,
        ("Moved", {"shelf": "a", "to": "b"}),  # creates a-b (named b at once)
        ("Moved", {"shelf": "a", "to": "c"}),  # no shelf is named a: creates a-c
        ("Moved", {"shelf": "b", "to": "d"}),  # a-b, not yet written
        ("Moved", {"shelf": "d", "to": "e"}),
    )
    domain = build(dsn, seen, subscription_type)
    Dispatcher(domain, once=True).run()
    domain.close()
    assert seen.found == [
        "a: NotFound",
        "a: NotFound",
        "b: found at 1",
        "d: found at 2",
    ]
    rows = conn.execute(
        "SELECT id, version, data->>'name', (data->>'count')::int FROM pgstore.aggregates"
        " WHERE category = 'shelf' ORDER BY id"
    ).fetchall()
    assert rows == [("a-b", 2, "e", 3), ("a-c", 0, "c", 1)]
    touched = conn.execute(
        "SELECT data->>'count' FROM pgstore.messages WHERE category = 'shelf'"
        " ORDER BY global_position"
    ).fetchall()
    assert [int(c) for (c,) in touched] == [1, 1, 2, 3]  # raised in the order they were made


@pytest.mark.parametrize("subscription_type", TYPES)
def test_raw_sql_and_get_see_earlier_saves(
    dsn: str, conn: Conn, store: EventStore, seen: Seen, subscription_type: str
) -> None:
    steps(
        store,
        ("Moved", {"shelf": "x", "to": "x"}),
        ("Counted", {"shelf": "x-x"}),
        ("Counted", {"shelf": "x-x"}),
        ("Counted", {"shelf": "x-x"}),
    )
    domain = build(dsn, seen, subscription_type)
    Dispatcher(domain, once=True).run()
    domain.close()
    assert seen.raw == [2, 3, 4]
    row = conn.execute(
        "SELECT version, (data->>'count')::int FROM pgstore.aggregates WHERE id = 'x-x'"
    ).fetchone()
    assert row == (3, 4)


def test_a_batch_sends_its_saves_together(dsn: str, conn: Conn, store: EventStore) -> None:
    """Ten events for one aggregate in one batch: its row is updated once, to the
    version and state all ten made, and it is loaded once (the rest from the batch)."""
    conn.execute(
        """
        CREATE TABLE row_updates (id text);
        CREATE FUNCTION count_row_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO row_updates VALUES (NEW.id); RETURN NEW; END $$;
        CREATE TRIGGER count_row_update AFTER UPDATE ON pgstore.aggregates
          FOR EACH ROW EXECUTE FUNCTION count_row_update();
        """
    )
    seen = Seen()
    steps(store, ("Moved", {"shelf": "y", "to": "y"}))
    domain = build(dsn, seen, "event_store")
    Dispatcher(domain, once=True).run()
    steps(store, *[("Counted", {"shelf": "y-y", "check": False})] * 10)
    Dispatcher(domain, once=True).run()
    domain.close()
    assert conn.execute("SELECT count(*) FROM row_updates").fetchone() == (1,)
    row = conn.execute(
        "SELECT version, (data->>'count')::int FROM pgstore.aggregates WHERE id = 'y-y'"
    ).fetchone()
    assert row == (10, 11)


def test_find_by_a_nested_value_in_a_batch_is_the_databases_containment(
    dsn: str, store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A probe with a list is jsonb containment (["a"] finds ["a", "b"]), which the
    batch does not judge itself: it sends what it holds and asks the database."""
    from pgstore.fields import List

    domain = Domain("nested", dsn=dsn)

    @domain.aggregate(stream_category="label")
    class Label(AggregateRoot):
        pass

    @domain.event(part_of=Label)
    class Used(Event):
        tag: str

    @domain.aggregate
    class Tagged(AggregateRoot):
        tags: list[str] = List(content_type=str)
        uses: int = 0

    @domain.event_handler(part_of=Tagged, stream_category="label")
    class Uses:
        @handle(Used)
        def used(self, event: Used) -> None:
            repository = domain.repository_for(Tagged)
            tagged = repository.find_by(tags=[event.tag])
            tagged.uses += 1
            repository.add(tagged)

    domain.repository_for(Tagged).add(Tagged(id="t1", tags=["a", "b"]))
    store.append("label-1", [NewMessage("nested.Used.v1", {"tag": t}) for t in "aba"])
    Dispatcher(domain, once=True).run()
    assert domain.repository_for(Tagged).get("t1").uses == 3
    assert "failed on" not in caplog.text  # found at the first attempt, in the batch
    domain.close()


def test_sql_of_its_own_is_what_the_batch_loads_next(
    dsn: str, conn: Conn, store: EventStore, seen: Seen
) -> None:
    steps(
        store,
        ("Moved", {"shelf": "z", "to": "z"}),
        ("Counted", {"shelf": "z-z", "check": False}),  # loaded into the batch: 2
        ("Reset", {"shelf": "z-z"}),  # set to 100 behind the repository's back
        ("Counted", {"shelf": "z-z", "check": False}),  # loads 100 again, not 2
    )
    domain = build(dsn, seen, "event_store")
    Dispatcher(domain, once=True).run()
    domain.close()
    row = conn.execute(
        "SELECT version, (data->>'count')::int FROM pgstore.aggregates WHERE id = 'z-z'"
    ).fetchone()
    assert row == (3, 101)
    # ...at the first try: not a stale copy that lost to the database and ran again.
    assert conn.execute("SELECT conflicts FROM pgstore.handler_positions").fetchone() == (0,)
