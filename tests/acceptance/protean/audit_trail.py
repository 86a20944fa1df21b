# Written from Protean's guide to event handlers: a $any handler keeping an audit trail
# from event payloads, a handler selecting events by source stream, handlers with
# subscription profiles, types and settings, and transient retries.
from pgstore import Domain, current_domain, handle
from pgstore.fields import Dict, Identifier, Integer, String

domain = Domain(name="Orders")
domain.config["event_processing"] = "sync"


@domain.event(part_of="Order")
class OrderPlaced:
    order_id: Identifier(required=True)
    quantity: Integer(required=True)


@domain.event(part_of="Order")
class OrderShipped:
    order_id: Identifier(required=True)


@domain.aggregate
class Order:
    quantity: Integer(required=True)

    def place(self):
        self.raise_(OrderPlaced(order_id=self.id, quantity=self.quantity))

    def ship(self):
        self.raise_(OrderShipped(order_id=self.id))


@domain.aggregate
class AuditEntry:
    event_type: String(required=True)
    payload: Dict()

    @classmethod
    def from_event(cls, event):
        return cls(event_type=event.__class__.__name__, payload=event.payload)


@domain.event_handler(part_of=Order)
class OrderAudit:
    @handle("$any")
    def record(self, event):
        current_domain.repository_for(AuditEntry).add(AuditEntry.from_event(event))


@domain.event_handler(part_of=Order, source_stream="manage_order")
class ShippingEmails:
    @handle(OrderShipped)
    def send(self, event: OrderShipped):
        # Only for OrderShipped raised while handling a command of manage_order.
        ...


@domain.event_handler(
    part_of=Order,
    subscription_profile="production",
    subscription_config={"messages_per_tick": 100, "enable_dlq": True},
)
class Confirmations:
    @handle(OrderPlaced)
    def confirm(self, event): ...


@domain.event_handler(
    part_of=Order,
    subscription_type="stream",
    subscription_config={"max_retries": 5, "enable_dlq": True},
)
class Fulfilment:
    @handle(OrderPlaced)
    def fulfil(self, event: OrderPlaced): ...


@domain.event_handler(part_of=Order, retries=3, backoff="exponential")
class StockReservation:
    @handle(OrderPlaced)
    def reserve(self, event: OrderPlaced): ...
