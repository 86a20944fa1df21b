"""A domain for crash tests: every Incremented event adds to one Counter, exactly once."""

from __future__ import annotations

import os
import time

from pgstore import AggregateRoot, Domain, Event, handle

domain = Domain(
    "counting",
    config={
        "subscription": {
            "messages_per_tick": int(os.environ.get("COUNTER_TICK", "10")),
            "subscription_type": os.environ.get("COUNTER_TYPE", "event_store"),
            # A killed worker's messages come back after this (stream subscriptions).
            "visibility_timeout_seconds": int(os.environ.get("COUNTER_VT", "30")),
        }
    },
)


@domain.aggregate(stream_category="tally")
class Tally(AggregateRoot):
    """Where the counted events come from."""

    label: str = ""


@domain.event(part_of=Tally)
class Incremented(Event):
    amount: int


@domain.aggregate
class Counter(AggregateRoot):
    total: int = 0
    count: int = 0


@domain.event_handler(part_of=Counter, stream_category="tally")
class CountIncrements:
    @handle(Incremented)
    def add(self, event: Incremented) -> None:
        repository = domain.repository_for(Counter)
        counter = repository.get("main")
        counter.total += event.amount
        counter.count += 1
        # Stretch the transaction so a SIGKILL lands inside it now and then.
        time.sleep(float(os.environ.get("COUNTER_HANDLER_SECONDS", "0")))
        repository.add(counter)
