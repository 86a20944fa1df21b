# Written from Protean's guide to event handlers: handle_error reads the failed
# message's type from its metadata headers.
from pgstore import Domain, handle
from pgstore.fields import Identifier

domain = Domain(name="Shipping")


@domain.event(part_of="Order")
class OrderShipped:
    order_id: Identifier(required=True)


@domain.aggregate
class Order:
    def ship(self):
        self.raise_(OrderShipped(order_id=self.id))


import logging  # noqa: E402  (as the guide places it)

logger = logging.getLogger(__name__)
failures = []


@domain.event_handler(part_of=Order)
class OrderEventHandler:
    @handle(OrderShipped)
    def reduce_stock_for_order(self, event):
        raise RuntimeError("the warehouse is closed")

    @classmethod
    def handle_error(cls, exc: Exception, message):
        failures.append(message.metadata.headers.type)
        logger.error(f"Failed to process event {message.metadata.headers.type}: {exc}")
