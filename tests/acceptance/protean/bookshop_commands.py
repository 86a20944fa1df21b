# Written from Protean's guide to event handlers (several handlers, commands processed
# from a handler through current_domain): a bookshop whose orders move its inventory.
from pgstore import Domain, current_domain, handle
from pgstore.fields import Identifier, Integer, String

domain = Domain(name="Bookshop")
domain.config["event_processing"] = "sync"
domain.config["command_processing"] = "sync"


@domain.event(part_of="Order")
class OrderShipped:
    order_id: Identifier(required=True)
    book_id: Identifier(required=True)
    quantity: Integer(required=True)


@domain.event(part_of="Order")
class OrderCancelled:
    order_id: Identifier(required=True)
    book_id: Identifier(required=True)
    quantity: Integer(required=True)


@domain.aggregate
class Order:
    book_id: Identifier(required=True)
    quantity: Integer(required=True)
    status: String(default="PLACED")

    def ship(self):
        self.status = "SHIPPED"
        self.raise_(OrderShipped(order_id=self.id, book_id=self.book_id, quantity=self.quantity))

    def cancel(self):
        self.status = "CANCELLED"
        self.raise_(OrderCancelled(order_id=self.id, book_id=self.book_id, quantity=self.quantity))


@domain.command(part_of="Inventory")
class TakeStock:
    order_id: Identifier(required=True)
    book_id: Identifier(required=True)
    quantity: Integer(required=True)


@domain.command(part_of="Inventory")
class ReturnStock:
    order_id: Identifier(required=True)
    book_id: Identifier(required=True)
    quantity: Integer(required=True)


@domain.aggregate
class Inventory:
    book_id: Identifier(required=True)
    in_stock: Integer(required=True)


@domain.event_handler(part_of=Order)
class InventoryFollowsOrders:
    @handle(OrderShipped)
    def shipped(self, event: OrderShipped):
        current_domain.process(
            TakeStock(order_id=event.order_id, book_id=event.book_id, quantity=event.quantity)
        )

    @handle(OrderCancelled)
    def cancelled(self, event: OrderCancelled):
        current_domain.process(
            ReturnStock(order_id=event.order_id, book_id=event.book_id, quantity=event.quantity)
        )


@domain.command_handler(part_of=Inventory)
class InventoryCommands:
    @handle(TakeStock)
    def take(self, command: TakeStock):
        repository = current_domain.repository_for(Inventory)
        inventory = repository.find_by(book_id=command.book_id)
        inventory.in_stock -= command.quantity
        repository.add(inventory)

    @handle(ReturnStock)
    def give_back(self, command: ReturnStock):
        repository = current_domain.repository_for(Inventory)
        inventory = repository.find_by(book_id=command.book_id)
        inventory.in_stock += command.quantity
        repository.add(inventory)
