"""The domain bench/workers.py runs: an I/O-bound handler (it waits, as for an HTTP call,
then saves one aggregate per event), split into partitions so workers can share it.

WORKERS_APP_PARTITIONS and WORKERS_APP_WAIT_MS set the split and the wait.
"""

from __future__ import annotations

import os
import time

from pgstore import AggregateRoot, Domain, Event, handle

domain = Domain(
    "sleepy",
    config={
        "subscription": {
            "subscription_type": "event_store",
            "partitions": int(os.environ.get("WORKERS_APP_PARTITIONS", "8")),
            "messages_per_tick": 20,
        }
    },
)
WAIT_SECONDS = float(os.environ.get("WORKERS_APP_WAIT_MS", "5")) / 1000


@domain.aggregate(stream_category="order")
class Order(AggregateRoot):
    pass


@domain.event(part_of=Order)
class Placed(Event):
    n: int


@domain.aggregate
class Receipt(AggregateRoot):
    count: int = 0


@domain.event_handler(part_of=Receipt, stream_category="order")
class SendReceipts:
    @handle(Placed)
    def placed(self, event: Placed) -> None:
        time.sleep(WAIT_SECONDS)  # the outside call the handler waits for
        repository = domain.repository_for(Receipt)
        receipt = repository.get_or_new(event._message.stream_name)  # type: ignore[attr-defined]
        receipt.count += 1
        repository.add(receipt)
