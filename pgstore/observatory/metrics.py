"""The observatory's Prometheus metrics, read from the store at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pgstore.observatory.data import Observatory


class StoreCollector(Collector):
    """Per handler: lag (events, seconds), position, dead letters, queue depth, events
    waiting above the horizon; the horizon's stall; events appended per category."""

    def __init__(self, observatory: Observatory) -> None:
        self.observatory = observatory

    def collect(self) -> Iterator[Metric]:
        current = self.observatory.status()
        gauges = {
            "lag_events": "Events the handler has not handled yet",
            "lag_seconds": "Age of the oldest event the handler has not handled",
            "position": "The handler's next global position",
            "dead_letters": "Messages the handler gave up on",
            "queue_depth": "Messages in the handler's pgmq queue (stream handlers)",
            "waiting_events": "Committed events the read horizon holds back from the handler",
            "failing": "Messages whose failures the handler is retrying now",
        }
        for name, text in gauges.items():
            family = GaugeMetricFamily(f"pgstore_handler_{name}", text, labels=["handler"])
            for handler in current.handlers:
                value = getattr(handler, name)
                if value is not None:
                    family.add_metric([handler.handler], float(value))
            yield family
        horizon = current.horizon
        yield GaugeMetricFamily(
            "pgstore_horizon_stalled_seconds",
            "How long the oldest committed event above the read horizon has waited",
            value=horizon.stalled_seconds,
        )
        yield GaugeMetricFamily(
            "pgstore_horizon_waiting_events",
            "Committed events above the read horizon (delivery waits for them)",
            value=horizon.waiting_events,
        )
        appended = CounterMetricFamily(
            "pgstore_category_events", "Events appended, per category", labels=["category"]
        )
        for row in self.observatory.categories():
            appended.add_metric([row["category"]], row["events"])
        yield appended
