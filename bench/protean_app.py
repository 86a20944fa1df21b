"""The spec's handler on Protean's own engine, for bench/protean_engine.py (run with
the Python of a virtual environment that has Protean; this one has not).

The domain is examples/bookstore written as Protean writes it; the handler is the same
(find the book's Inventory by book_id, reduce it, which raises StockReduced, save).
Protean keeps its aggregates in PostgreSQL (its SQLAlchemy provider, in the same
database) and its events in Message DB.

python protean_app.py DSN EVENTS BOOKS: prints {"events": N, "seconds": S} on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

import psycopg2
from protean import Domain, Engine, handle
from protean.fields import Identifier, Integer, String

DSN, EVENTS, BOOKS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

domain = Domain(__file__, "bookstore")
domain.config["event_store"] = {"provider": "message_db", "database_uri": DSN}
domain.config["event_processing"] = "async"
# Aggregates in PostgreSQL too, as pgstore keeps them (Protean's default is in memory,
# which measured no faster: about 160 events/s against 145).
domain.config["databases"]["default"] = {
    "provider": "postgresql",
    "database_uri": DSN.replace("postgresql://", "postgresql+psycopg://", 1),
}
domain.config["server"]["default_subscription_type"] = "event_store"


@domain.event(part_of="Order")
class OrderShipped:
    order_id = Identifier(required=True)
    book_id = Identifier(required=True)
    quantity = Integer(required=True)
    total_amount = Integer(required=True)


@domain.aggregate
class Order:
    book_id = Identifier(required=True)
    quantity = Integer(required=True)
    total_amount = Integer(required=True)
    status = String(choices=["PENDING", "SHIPPED", "DELIVERED"], default="PENDING")

    def ship_order(self):
        self.status = "SHIPPED"
        self.raise_(
            OrderShipped(
                order_id=self.id,
                book_id=self.book_id,
                quantity=self.quantity,
                total_amount=self.total_amount,
            )
        )


@domain.aggregate
class Inventory:
    book_id = Identifier(required=True)
    in_stock = Integer(required=True, min_value=0)

    def reduce(self, quantity):
        self.in_stock -= quantity
        self.raise_(StockReduced(book_id=self.book_id, quantity=quantity, in_stock=self.in_stock))


@domain.event(part_of=Inventory)
class StockReduced:
    book_id = Identifier(required=True)
    quantity = Integer(required=True)
    in_stock = Integer(required=True)


# Protean 0.18 names its streams "<domain>::<category>-<id>": the category the handler
# listens to is spelled that way there (pgstore takes the plain "order").
@domain.event_handler(part_of=Inventory, stream_category="bookstore::order")
class ManageInventory:
    @handle(OrderShipped)
    def reduce_stock_level(self, event):
        repository = domain.repository_for(Inventory)
        product = repository.find_by(book_id=event.book_id)
        product.reduce(event.quantity)
        repository.add(product)


def handled(cursor) -> int:
    """Events the handler has finished: each one's StockReduced is in Message DB."""
    cursor.execute(
        "SELECT count(*) FROM message_store.messages WHERE type = 'Bookstore.StockReduced.v1'"
    )
    return int(cursor.fetchone()[0])


def main() -> None:
    domain.init(traverse=False)
    with domain.domain_context():
        domain.setup_database()
        for book in range(BOOKS):
            domain.repository_for(Inventory).add(Inventory(book_id=str(book), in_stock=10 * EVENTS))
        for n in range(EVENTS):
            order = Order(book_id=str(n % BOOKS), quantity=1, total_amount=10)
            order.ship_order()
            domain.repository_for(Order).add(order)
        engine = Engine(domain)
        finished: dict[str, float] = {}

        def watch() -> None:
            # One small query every 20 ms from another thread: the engine's own loop
            # decides when it has work, so the clock stops when the last event is done.
            connection = psycopg2.connect(DSN)
            connection.autocommit = True
            cursor = connection.cursor()
            deadline = time.monotonic() + 600
            while handled(cursor) < EVENTS and time.monotonic() < deadline:
                time.sleep(0.02)
            finished["at"] = time.perf_counter()
            asyncio.run_coroutine_threadsafe(engine.shutdown(), engine.loop)

        started = time.perf_counter()
        threading.Thread(target=watch, daemon=True).start()
        engine.run()
        done = handled(psycopg2.connect(DSN).cursor())
        stock = sum(
            domain.repository_for(Inventory).find_by(book_id=str(book)).in_stock
            for book in range(BOOKS)
        )
    if done != EVENTS or stock != BOOKS * 10 * EVENTS - EVENTS:
        sys.exit(f"Protean handled {done} of {EVENTS} events (stock {stock})")
    print(json.dumps({"events": EVENTS, "seconds": finished["at"] - started}))


if __name__ == "__main__":
    main()
