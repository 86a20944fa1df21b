"""A domain for race tests: two stream handlers of one event update the same Counter."""

from __future__ import annotations

import os
import time

from pgstore import AggregateRoot, Domain, Event, handle

domain = Domain(
    "contention",
    config={
        "subscription": {
            "subscription_type": os.environ.get("CONTENTION_TYPE", "stream"),
            "max_retries": 0,  # a race must never count as a failure
            "retry_delay_seconds": 0,
            "messages_per_tick": 5,
            "visibility_timeout_seconds": 30,
        }
    },
)


@domain.aggregate(stream_category="bump")
class Source(AggregateRoot):
    pass


@domain.event(part_of=Source)
class Bumped(Event):
    n: int


@domain.aggregate
class Counter(AggregateRoot):
    first: int = 0
    second: int = 0


def bump(field: str) -> None:
    repository = domain.repository_for(Counter)
    counter = repository.get_or_new("shared")
    setattr(counter, field, getattr(counter, field) + 1)
    # Widen the window between load and save, so the two handlers collide.
    time.sleep(float(os.environ.get("CONTENTION_HANDLER_SECONDS", "0.002")))
    repository.add(counter)


@domain.event_handler(part_of=Counter, stream_category="bump")
class First:
    @handle(Bumped)
    def bumped(self, event: Bumped) -> None:
        bump("first")


@domain.event_handler(part_of=Counter, stream_category="bump")
class Second:
    @handle(Bumped)
    def bumped(self, event: Bumped) -> None:
        bump("second")
