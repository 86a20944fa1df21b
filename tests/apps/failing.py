"""A domain for the dead-letter CLI: two handlers that fail while FAILING=1 is set."""

from __future__ import annotations

import os

from pgstore import AggregateRoot, Domain, Event, handle

domain = Domain("failing", config={"subscription": {"max_retries": 0, "retry_delay_seconds": 0}})


@domain.aggregate(stream_category="task")
class Task(AggregateRoot):
    pass


@domain.event(part_of=Task)
class Ran(Event):
    n: int


@domain.aggregate
class Done(AggregateRoot):
    count: int = 0


def count(handler: str) -> None:
    if os.environ.get("FAILING") == "1":
        raise RuntimeError(f"{handler} is failing on purpose")
    repository = domain.repository_for(Done)
    done = repository.get_or_new(handler)
    done.count += 1
    repository.add(done)


@domain.event_handler(part_of=Done, stream_category="task")
class Picky:
    @handle(Ran)
    def ran(self, event: Ran) -> None:
        count("Picky")


@domain.event_handler(part_of=Done, stream_category="task", subscription_type="stream")
class PickyQueue:
    @handle(Ran)
    def ran(self, event: Ran) -> None:
        count("PickyQueue")
