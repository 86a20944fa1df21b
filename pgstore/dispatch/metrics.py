"""What a dispatcher counts for Prometheus (`pgstore dispatch --http`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Observer:
    """What the processor reports as it goes; this one ignores it (no --http)."""

    def handled(self, handler: str, seconds: float) -> None: ...
    def failed(self, handler: str) -> None: ...
    def dead(self, handler: str) -> None: ...
    def conflict(self, handler: str) -> None: ...
    def batch(self, handler: str, size: int) -> None: ...


class DispatchMetrics(Observer):
    """What a dispatcher counts, per handler (label `handler`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        label = ["handler"]
        self.handled_total = Counter(
            "pgstore_dispatch_handled", "Messages handled", label, registry=self.registry
        )
        self.failures = Counter(
            "pgstore_dispatch_failures", "Failed attempts", label, registry=self.registry
        )
        self.conflicts = Counter(
            "pgstore_dispatch_conflicts", "Lost races run again", label, registry=self.registry
        )
        self.dead_lettered = Counter(
            "pgstore_dispatch_dead_lettered", "Messages given up on", label, registry=self.registry
        )
        self.duration = Histogram(
            "pgstore_dispatch_handler_seconds",
            "Time a handler takes per message",
            label,
            registry=self.registry,
        )
        self.batches = Histogram(
            "pgstore_dispatch_batch_size",
            "Messages read per batch",
            label,
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=self.registry,
        )

    def handled(self, handler: str, seconds: float) -> None:
        self.handled_total.labels(handler).inc()
        self.duration.labels(handler).observe(seconds)

    def failed(self, handler: str) -> None:
        self.failures.labels(handler).inc()

    def dead(self, handler: str) -> None:
        self.dead_lettered.labels(handler).inc()

    def conflict(self, handler: str) -> None:
        self.conflicts.labels(handler).inc()

    def batch(self, handler: str, size: int) -> None:
        self.batches.labels(handler).observe(size)
