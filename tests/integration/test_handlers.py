"""Event handlers and the event_store dispatcher, in process, against a real database."""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pgstore import ANY, AggregateRoot, Domain, Event, Message, handle
from pgstore.dispatch import Dispatcher
from pgstore.dispatch.dead_letters import TableDeadLetters
from pgstore.dispatch.subscription import Session
from pgstore.errors import ConfigurationError
from pgstore.repository import AggregateConflict
from pgstore.status import collect
from tests.waiting import wait_until


class Recorder:
    """What handlers saw, shared with the test."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.errors: list[tuple[BaseException, Message]] = []
        self.fail_times: dict[str, int] = {}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def shop(dsn: str, recorder: Recorder) -> Iterator[Domain]:
    domain = Domain(
        "shop", dsn=dsn, config={"subscription": {"retry_delay_seconds": 0, "max_retries": 2}}
    )

    @domain.aggregate
    class Order(AggregateRoot):
        item: str
        quantity: int
        status: str = "NEW"

        def ship(self) -> None:
            self.status = "SHIPPED"
            self.raise_(Shipped(order_id=self.id, item=self.item, quantity=self.quantity))

    @domain.event(part_of=Order)
    class Shipped(Event):
        order_id: str
        item: str
        quantity: int

    @domain.aggregate
    class Stock(AggregateRoot):
        item: str
        level: int

        def take(self, quantity: int) -> None:
            self.level -= quantity
            self.raise_(Taken(item=self.item, quantity=quantity))

    @domain.event(part_of=Stock)
    class Taken(Event):
        item: str
        quantity: int

    @domain.event_handler(part_of=Stock, stream_category="order")
    class Stocking:
        @handle(Shipped)
        def take_stock(self, event: Shipped) -> None:
            recorder.calls.append(("take_stock", event))
            failures = recorder.fail_times.get(event.item, 0)
            if failures:
                recorder.fail_times[event.item] = failures - 1
                raise RuntimeError(f"no stock for {event.item}")
            repository = domain.repository_for(Stock)
            stock = repository.find_by(item=event.item)
            stock.take(event.quantity)
            repository.add(stock)

        @handle(Shipped)
        def also(self, event: Shipped) -> None:
            recorder.calls.append(("also", event))

        @classmethod
        def handle_error(cls, exc: Exception, message: Message) -> None:
            recorder.errors.append((exc, message))
            raise ValueError("handle_error failing must not stop processing")

    @domain.event_handler(part_of=Order)
    class Audit:
        @handle(ANY)
        def everything(self, event: Any) -> None:
            recorder.calls.append(("audit", event))

    @domain.event_handler(part_of=Stock, stream_category="stock", source_stream="order")
    class OnlyFromOrders:
        @handle(Taken)
        def taken(self, event: Taken) -> None:
            recorder.calls.append(("only_from_orders", event))

    yield domain
    domain.close()


def model(domain: Domain, name: str) -> Any:
    return domain.aggregates[name]


def ship(domain: Domain, item: str, quantity: int) -> Any:
    order = model(domain, "Order")(item=item, quantity=quantity)
    order.ship()
    domain.repository_for(model(domain, "Order")).add(order)
    return order


def stock(domain: Domain, item: str, level: int) -> Any:
    return domain.repository_for(model(domain, "Stock")).add(
        model(domain, "Stock")(item=item, level=level)
    )


def drain(domain: Domain) -> None:
    Dispatcher(domain, once=True).run()


def calls(recorder: Recorder, name: str) -> list[Any]:
    return [event for called, event in recorder.calls if called == name]


def test_each_event_reaches_every_handler_once(shop: Domain, recorder: Recorder) -> None:
    stock(shop, "book", 100)
    ship(shop, "book", 10)
    ship(shop, "book", 5)
    drain(shop)
    drain(shop)  # a second run finds nothing new

    assert [e.quantity for e in calls(recorder, "take_stock")] == [10, 5]
    assert [e.quantity for e in calls(recorder, "also")] == [10, 5]
    assert len(calls(recorder, "audit")) == 2  # $any, on the order category
    level = shop.repository_for(model(shop, "Stock")).find_by(item="book").level
    assert level == 85


def test_events_raised_in_a_handler_carry_their_cause(shop: Domain, recorder: Recorder) -> None:
    stock(shop, "book", 100)
    order = ship(shop, "book", 10)
    drain(shop)

    (shipped,) = shop.store.read_stream(f"order-{order.id}")
    stock_stream = shop.store.read_category("stock")
    taken = [m for m in stock_stream if m.type == "shop.Taken.v1"]
    assert len(taken) == 1
    metadata = taken[0].metadata or {}
    assert metadata["causation_id"] == str(shipped.id)
    assert metadata["origin_stream"] == shipped.stream_name
    assert (
        metadata["correlation_id"] == (shipped.metadata or {})["correlation_id"] == str(shipped.id)
    )
    assert metadata["schema_version"] == 1
    # source_stream="order": only events raised while handling an order message.
    assert [e.quantity for e in calls(recorder, "only_from_orders")] == [10]


def test_source_stream_ignores_events_from_elsewhere(shop: Domain, recorder: Recorder) -> None:
    stock_model = model(shop, "Stock")
    item = stock(shop, "pen", 10)
    item.take(1)  # raised outside any handler: no origin stream
    shop.repository_for(stock_model).add(item)
    drain(shop)
    assert calls(recorder, "only_from_orders") == []


def test_failures_are_retried_then_dead_lettered(
    shop: Domain, recorder: Recorder, conn: psycopg.Connection[Any]
) -> None:
    stock(shop, "book", 100)
    recorder.fail_times["book"] = 99  # always fails
    ship(shop, "book", 1)
    stock(shop, "pen", 10)
    ship(shop, "pen", 2)
    drain(shop)

    # max_retries=2 means three attempts, each reported to handle_error (which raises,
    # and processing goes on to the next event).
    assert len(recorder.errors) == 3
    error, message = recorder.errors[0]
    assert isinstance(error, RuntimeError) and message.type == "shop.Shipped.v1"
    rows = conn.execute(
        "SELECT handler, type, attempts, error, traceback FROM pgstore.dead_letters"
    ).fetchall()
    assert len(rows) == 1
    handler, type_, attempts, text, trace = rows[0]
    assert (handler, type_, attempts) == ("shop.Stocking", "shop.Shipped.v1", 3)
    assert "no stock for book" in text and "RuntimeError" in trace
    assert conn.execute("SELECT count(*) FROM pgstore.handler_failures").fetchone() == (0,)
    # The neighbour was handled, and the failed event's partial effects were undone.
    stock_model = model(shop, "Stock")
    assert shop.repository_for(stock_model).find_by(item="pen").level == 8
    assert shop.repository_for(stock_model).find_by(item="book").level == 100


def test_a_replayed_dead_letter_is_the_stored_message(
    shop: Domain, recorder: Recorder, conn: psycopg.Connection[Any]
) -> None:
    stock(shop, "book", 100)
    recorder.fail_times["book"] = 99
    order = ship(shop, "book", 4)
    drain(shop)
    (shipped,) = [m for m in shop.store.read_stream(order.stream_name) if "Shipped" in m.type]
    (letter,) = TableDeadLetters("shop.Stocking").list(conn)
    assert letter.message == shipped  # position and time too, from the store

    recorder.fail_times["book"] = 0
    assert TableDeadLetters("shop.Stocking").replay(conn, None) == 1
    drain(shop)
    replayed = calls(recorder, "take_stock")[-1]._message
    assert replayed == shipped
    assert shop.repository_for(model(shop, "Stock")).find_by(item="book").level == 96
    assert conn.execute("SELECT count(*) FROM pgstore.dead_letters").fetchone() == (0,)


def test_retry_counts_survive_a_restart(
    shop: Domain, recorder: Recorder, conn: psycopg.Connection[Any]
) -> None:
    stock(shop, "book", 100)
    recorder.fail_times["book"] = 2  # fails twice, then succeeds
    ship(shop, "book", 3)
    dispatcher = Dispatcher(shop, once=True)
    subscription = next(s for s in dispatcher.subscriptions if s.spec.cls.__name__ == "Stocking")
    with psycopg.connect(dispatcher.domain.dsn or "", autocommit=True) as work:
        subscription.start(work, Session(1))
        subscription.tick(work)  # first attempt fails
    assert conn.execute("SELECT attempts FROM pgstore.handler_failures").fetchone() == (1,)
    failing = {h.handler: h.failing for h in collect(conn).handlers}
    assert failing[subscription.spec.name] == 1  # status shows the retry in progress

    drain(shop)  # "restarted": a new dispatcher continues the count and succeeds
    assert len(recorder.errors) == 2
    assert conn.execute("SELECT count(*) FROM pgstore.handler_failures").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM pgstore.dead_letters").fetchone() == (0,)
    assert shop.repository_for(model(shop, "Stock")).find_by(item="book").level == 97


def test_positions_survive_restarts(
    shop: Domain, recorder: Recorder, conn: psycopg.Connection[Any]
) -> None:
    stock(shop, "book", 100)
    ship(shop, "book", 1)
    drain(shop)
    ship(shop, "book", 2)
    drain(shop)
    assert [e.quantity for e in calls(recorder, "take_stock")] == [1, 2]
    row = conn.execute(
        "SELECT position FROM pgstore.handler_positions WHERE handler = 'shop.Stocking'"
    ).fetchone()
    last = shop.store.read_category("order")[-1]
    assert row == (last.global_position + 1,)


def pongs_reach(recorder: Recorder, count: int) -> bool:
    return len(calls(recorder, "pong")) == count


def test_notify_wakes_the_dispatcher_long_before_the_poll(dsn: str, recorder: Recorder) -> None:
    domain = Domain("quick", dsn=dsn, config={"subscription": {"blocking_timeout_ms": 60_000}})

    @domain.aggregate
    class Ping(AggregateRoot):
        n: int

    @domain.event(part_of=Ping)
    class Pinged(Event):
        n: int

    @domain.event_handler(part_of=Ping)
    class Pong:
        @handle(Pinged)
        def pong(self, event: Pinged) -> None:
            recorder.calls.append(("pong", event))

    dispatcher = Dispatcher(domain)
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        for n in range(3):
            ping = Ping(n=n)
            ping.raise_(Pinged(n=n))
            domain.repository_for(Ping).add(ping)
            # The poll interval is a minute: only the NOTIFY can make this in time.
            wait_until(functools.partial(pongs_reach, recorder, n + 1), timeout=5)
    finally:
        dispatcher.stopping.set()
        thread.join(10)
        domain.close()
    assert not thread.is_alive()


def test_repository_add_is_one_transaction(shop: Domain) -> None:
    """If appending the events fails, the aggregate's row is not saved either."""
    order_model = model(shop, "Order")
    order = order_model(item="book", quantity=1)
    shop.repository_for(order_model).add(order)
    stale = shop.repository_for(order_model).get(order.id)
    order.ship()
    shop.repository_for(order_model).add(order)
    stale.ship()
    with pytest.raises(AggregateConflict):
        shop.repository_for(order_model).add(stale)
    assert len(shop.store.read_stream(f"order-{order.id}")) == 1


def test_unit_of_work_groups_writes(shop: Domain) -> None:
    stock_model = model(shop, "Stock")
    with pytest.raises(RuntimeError), shop.unit_of_work():
        shop.repository_for(stock_model).add(stock_model(item="a", level=1))
        raise RuntimeError("abandon")
    with shop.unit_of_work():
        shop.repository_for(stock_model).add(stock_model(item="b", level=1))
        shop.repository_for(stock_model).add(stock_model(item="c", level=1))
    with pytest.raises(LookupError):
        shop.repository_for(stock_model).find_by(item="a")
    assert shop.repository_for(stock_model).find_by(item="c").level == 1


def test_unknown_configuration_fails_at_start(dsn: str) -> None:
    domain = Domain("bad", dsn=dsn, config={"subscription": {"profile": "turbo"}})

    @domain.event_handler(stream_category="x")
    class Handler:
        @handle(ANY)
        def anything(self, event: Any) -> None: ...

    with pytest.raises(ConfigurationError, match="Unknown subscription profile 'turbo'"):
        Dispatcher(domain)


def test_unknown_event_types_reach_any_as_messages(shop: Domain, recorder: Recorder) -> None:
    from pgstore.messages import NewMessage

    shop.store.append(f"order-{uuid.uuid4()}", NewMessage("other.Thing.v1", {"x": 1}))
    drain(shop)
    (seen,) = calls(recorder, "audit")
    assert isinstance(seen, Message) and seen.data == {"x": 1}


@pytest.mark.parametrize("fails", [False, True])
def test_store_calls_inside_a_handler_join_its_transaction(
    dsn: str, conn: psycopg.Connection[Any], fails: bool
) -> None:
    """domain.store.append inside a handler writes in the handler's transaction: with
    the handler's failure it is undone; with its success it commits with the position."""
    from pgstore.messages import NewMessage

    domain = Domain("joined", dsn=dsn, config={"subscription": {"max_retries": 0}})

    @domain.aggregate(stream_category="ping")
    class Ping(AggregateRoot):
        pass

    @domain.event_handler(stream_category="ping")
    class Echo:
        @handle(ANY)
        def echo(self, event: Any) -> None:
            domain.store.append("echo-1", NewMessage("Echoed", {}))
            if fails:
                raise RuntimeError("after the append")

    domain.store.append("ping-1", NewMessage("Pinged", {}))
    drain(domain)
    domain.close()
    echoed = conn.execute("SELECT count(*) FROM pgstore.messages WHERE category = 'echo'")
    assert echoed.fetchone() == ((0,) if fails else (1,))
    dead = conn.execute("SELECT count(*) FROM pgstore.dead_letters").fetchone()
    assert dead == ((1,) if fails else (0,))
