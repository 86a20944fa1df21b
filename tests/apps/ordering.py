"""A domain for scale-out tests: a handler that checks it sees each stream in order.

ORDERING_SUBSCRIPTION_TYPE (default stream) and ORDERING_PARTITIONS (event_store: how
many partitions the category is split into) choose how it is shared between workers.
"""

from __future__ import annotations

import os
import time

from pgstore import AggregateRoot, Domain, Event, handle

domain = Domain(
    "ordering",
    config={
        "subscription": {
            "subscription_type": os.environ.get("ORDERING_SUBSCRIPTION_TYPE", "stream"),
            "partitions": int(os.environ.get("ORDERING_PARTITIONS", "1")),
            "messages_per_tick": 5,
        }
    },
)


@domain.aggregate(stream_category="job")
class Job(AggregateRoot):
    pass


@domain.event(part_of=Job)
class Step(Event):
    n: int


@domain.aggregate
class Progress(AggregateRoot):
    """Per job stream: the next step expected, and how often a step came out of order."""

    next: int = 0
    done: int = 0
    out_of_order: int = 0
    pid: int = 0  # the worker process that handled its last step


@domain.event_handler(part_of=Progress, stream_category="job")
class CheckOrder:
    @handle(Step)
    def step(self, event: Step) -> None:
        repository = domain.repository_for(Progress)
        stream_name = event._message.stream_name  # type: ignore[attr-defined]
        progress = repository.get_or_new(stream_name)
        if event.n != progress.next:
            progress.out_of_order += 1
        progress.next = event.n + 1
        progress.done += 1
        progress.pid = os.getpid()
        time.sleep(float(os.environ.get("ORDERING_HANDLER_SECONDS", "0")))
        repository.add(progress)
