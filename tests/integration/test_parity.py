"""Protean's programming model on pgstore's guarantees: sync processing, commands, domains."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from pgstore import AggregateRoot, Command, Domain, Event, handle
from pgstore.dispatch import Dispatcher
from pgstore.envelope import new_message
from pgstore.fields import Identifier, Integer

Conn = psycopg.Connection[Any]


def counting_domain(dsn: str, processing: str, seen: list[str]) -> Domain:
    domain = Domain(name="Race", dsn=dsn)
    domain.config["event_processing"] = processing

    @domain.aggregate
    class Order(AggregateRoot):
        quantity: int = 1

    @domain.event(part_of=Order)
    class Shipped(Event):
        quantity: int

    @domain.aggregate
    class Tally(AggregateRoot):
        count: int = 0

    @domain.event_handler(part_of=Order)
    class Count:
        @handle(Shipped)
        def shipped(self, event: Shipped) -> None:
            seen.append(str(event._message.id))  # type: ignore[attr-defined]
            repository = domain.repository_for(Tally)
            tally = repository.get_or_new("all")
            tally.count += 1
            repository.add(tally)

    return domain


def tally(conn: Conn) -> int:
    row = conn.execute(
        "SELECT (data->>'count')::int FROM pgstore.aggregates WHERE category = 'tally'"
    ).fetchone()
    return int(row[0]) if row else 0


def ship(domain: Domain) -> None:
    order_class: Any = domain.aggregates["Order"]
    shipped_class: Any = domain.events["Race.Shipped.v1"]
    order = order_class()
    order.raise_(shipped_class(quantity=1))
    domain.repository_for(order_class).add(order)


def test_sync_processing_moves_positions_as_dispatch_would(dsn: str, conn: Conn) -> None:
    seen: list[str] = []
    domain = counting_domain(dsn, "sync", seen)
    for _ in range(5):
        ship(domain)
        # The handler ran before add() returned.
    assert tally(conn) == 5
    Dispatcher(domain, once=True).run()  # a dispatcher started later finds nothing to do
    domain.close()
    assert tally(conn) == 5 and len(seen) == 5


def test_a_sync_writer_racing_another_writer_skips_nothing(dsn: str, conn: Conn) -> None:
    """One writer processes its events inline while another only appends (its events
    left to dispatch): every event is handled once, the other writer's too."""
    seen: list[str] = []
    sync_domain = counting_domain(dsn, "sync", seen)
    async_domain = counting_domain(dsn, "async", [])
    errors: list[BaseException] = []

    def write(domain: Domain) -> None:
        try:
            for _ in range(40):
                ship(domain)
        except BaseException as error:
            errors.append(error)

    writers = [threading.Thread(target=write, args=(d,)) for d in (sync_domain, async_domain)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
    assert not errors
    Dispatcher(sync_domain, once=True).run()
    sync_domain.close()
    async_domain.close()
    assert tally(conn) == 80
    assert len(set(seen)) == 80
    assert conn.execute("SELECT count(*) FROM pgstore.dead_letters").fetchone() == (0,)


def test_two_domains_keep_their_own_aggregates(dsn: str) -> None:
    def inventory_domain(name: str) -> tuple[Domain, Any]:
        domain = Domain(name=name, dsn=dsn)

        @domain.aggregate
        class Inventory(AggregateRoot):
            book_id: Identifier(required=True)  # type: ignore[valid-type]
            in_stock: Integer(default=0)  # type: ignore[valid-type]

        return domain, Inventory

    shop, shop_inventory = inventory_domain("Shop")
    depot, depot_inventory = inventory_domain("Depot")
    shop.repository_for(shop_inventory).add(shop_inventory(book_id=1, in_stock=5))
    depot.repository_for(depot_inventory).add(depot_inventory(book_id=1, in_stock=500))
    assert shop.repository_for(shop_inventory).find_by(book_id=1).in_stock == 5
    assert depot.repository_for(depot_inventory).find_by(book_id="1").in_stock == 500
    shop.close()
    depot.close()


def command_domain(dsn: str, handled: list[str]) -> Domain:
    domain = Domain(name="Ship", dsn=dsn)

    @domain.aggregate
    class Parcel(AggregateRoot):
        sent: bool = False

    @domain.event(part_of=Parcel)
    class Sent(Event):
        parcel_id: str

    @domain.command(part_of=Parcel)
    class Send(Command):
        parcel_id: str

    @domain.command_handler(part_of=Parcel)
    class Sending:
        @handle(Send)
        def send(self, command: Send) -> str:
            handled.append(command.parcel_id)
            repository = domain.repository_for(Parcel)
            parcel = repository.get_or_new(command.parcel_id)
            parcel.sent = True
            parcel.raise_(Sent(parcel_id=parcel.id))
            repository.add(parcel)
            return parcel.id

    @domain.event_handler(part_of=Parcel, source_stream="parcel")
    class FromCommands:
        @handle(Sent)
        def sent(self, event: Sent) -> None:
            handled.append("caused by a parcel command")

    @domain.event_handler(part_of=Parcel, source_stream="elsewhere")
    class FromElsewhere:
        @handle(Sent)
        def sent(self, event: Sent) -> None:
            handled.append("never")

    return domain


def test_async_commands_run_once_and_what_they_cause_carries_their_stream(
    dsn: str, conn: Conn
) -> None:
    handled: list[str] = []
    domain = command_domain(dsn, handled)
    send: Any = domain.events["Ship.Send.v1"]
    first = domain.process(send(parcel_id="p-1"), idempotency_key="send-p-1")
    again = domain.process(send(parcel_id="p-1"), idempotency_key="send-p-1")
    assert first == again  # the same message, appended once
    Dispatcher(domain, once=True).run()
    Dispatcher(domain, once=True).run()
    domain.close()
    assert handled == ["p-1", "caused by a parcel command"]
    origin = conn.execute(
        "SELECT metadata->>'origin_stream' FROM pgstore.messages WHERE type = 'Ship.Sent.v1'"
    ).fetchone()
    assert origin == ("parcel:command-p-1",)


def test_commands_raised_from_the_envelope_are_idempotent_by_id(dsn: str) -> None:
    """A command appended twice with one message id (a client retrying) is one message."""
    handled: list[str] = []
    domain = command_domain(dsn, handled)
    send: Any = domain.events["Ship.Send.v1"]
    message = new_message(send(parcel_id="p-2"), "parcel:command-p-2", None)
    domain.store.append("parcel:command-p-2", message)
    domain.store.append("parcel:command-p-2", message)
    Dispatcher(domain, once=True).run()
    domain.close()
    assert handled.count("p-2") == 1
