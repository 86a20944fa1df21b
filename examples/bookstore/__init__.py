"""The spec's example: shipping an Order reduces the book's Inventory, via an event handler."""

from __future__ import annotations

import os

from pgstore import AggregateRoot, Domain, Event, handle
from pgstore.fields import Identifier, Integer, String

# BOOKSTORE_SUBSCRIPTION_TYPE=stream runs the handler on a pgmq queue instead of
# reading the event store directly; the result is the same.
domain = Domain(__file__, "bookstore")
domain.config["subscription"] = {"subscription_type": os.environ.get("BOOKSTORE_SUBSCRIPTION_TYPE")}


@domain.event(part_of="Order")
class OrderShipped(Event):
    order_id: str = Identifier(required=True)
    book_id: str = Identifier(required=True)
    quantity: int = Integer(required=True)
    total_amount: int = Integer(required=True)


@domain.aggregate
class Order(AggregateRoot):
    book_id: str = Identifier(required=True)
    quantity: int = Integer(required=True)
    total_amount: int = Integer(required=True)
    status: str = String(choices=["PENDING", "SHIPPED", "DELIVERED"], default="PENDING")

    def ship_order(self) -> None:
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
class Inventory(AggregateRoot):
    book_id: str = Identifier(required=True)
    in_stock: int = Integer(required=True, min_value=0)

    def reduce(self, quantity: int) -> None:
        self.in_stock -= quantity
        self.raise_(StockReduced(book_id=self.book_id, quantity=quantity, in_stock=self.in_stock))


@domain.event(part_of=Inventory)
class StockReduced(Event):
    book_id: str = Identifier(required=True)
    quantity: int = Integer(required=True)
    in_stock: int = Integer(required=True)


@domain.event_handler(part_of=Inventory, stream_category="order")
class ManageInventory:
    """Keeps stock levels in step with shipped orders (Inventory listens to Order's category)."""

    @handle(OrderShipped)
    def reduce_stock_level(self, event: OrderShipped) -> None:
        repository = domain.repository_for(Inventory)
        product = repository.find_by(book_id=event.book_id)
        product.reduce(event.quantity)  # raises StockReduced, caused by OrderShipped
        repository.add(product)
