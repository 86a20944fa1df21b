"""A domain for the torture test: two handlers, one per subscription type, that count
every event of every stream and note any that arrives out of order."""

from __future__ import annotations

from typing import Any

from pgstore import AggregateRoot, Domain, Event, handle

domain = Domain(
    "torture",
    config={
        "subscription": {
            "messages_per_tick": 7,
            "retry_delay_seconds": 0,
            "visibility_timeout_seconds": 2,
            "blocking_timeout_ms": 200,
        }
    },
)


@domain.aggregate(stream_category="acct")
class Account(AggregateRoot):
    pass


@domain.event(part_of=Account)
class Deposited(Event):
    seq: int


@domain.aggregate
class Progress(AggregateRoot):
    """One per (handler, stream): how many events it handled, and how many out of order."""

    next: int = 0
    count: int = 0
    out_of_order: int = 0


def record(handler: str, event: Deposited) -> None:
    repository = domain.repository_for(Progress)
    key = f"{handler}:{event._message.stream_name}"  # type: ignore[attr-defined]
    progress = repository.get_or_new(key)
    if event.seq != progress.next:
        progress.out_of_order += 1
    progress.next = event.seq + 1
    progress.count += 1
    repository.add(progress)


@domain.event_handler(part_of=Progress, stream_category="acct")
class Direct:
    @handle(Deposited)
    def deposited(self, event: Deposited) -> None:
        record("Direct", event)


@domain.event_handler(part_of=Progress, stream_category="acct", subscription_type="stream")
class Queued:
    @handle(Deposited)
    def deposited(self, event: Any) -> None:
        record("Queued", event)
