"""`pgstore dispatch --http`: /healthz follows the database, /metrics counts the work;
`--log-format json`; OpenTelemetry traces from a writer through its handlers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pgstore.migrate import migrate
from pgstore.store import EventStore
from tests.acceptance.subprocesses import ROOT, environment
from tests.pgcluster import LocalCluster
from tests.waiting import wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A server of its own: this test stops and starts it."""
    cluster = LocalCluster()
    cluster.start()
    try:
        with psycopg.connect(cluster.dsn()) as conn:
            migrate(conn)
        yield cluster
    finally:
        cluster.destroy()


def status(url: str) -> tuple[int, dict[str, Any]]:
    try:
        response = httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return 0, {}
    return response.status_code, response.json()


def test_healthz_follows_the_database_and_metrics_count(
    own_cluster: LocalCluster, tmp_path: Path
) -> None:
    dsn = own_cluster.dsn()
    port = free_port()
    with psycopg.connect(dsn, autocommit=True) as conn:  # the counter the handler adds to
        conn.execute(
            "INSERT INTO pgstore.aggregates (domain, category, id, version, data) VALUES"
            """ ('counting', 'counter', 'main', 0, '{"id": "main", "total": 0, "count": 0}')"""
        )
    with EventStore.connect(dsn) as store:
        for n in range(3):
            store.append(f"tally-{n}", _increment(n))
    log = (tmp_path / "dispatch.log").open("w")
    dispatcher = subprocess.Popen(
        [sys.executable, "-m", "pgstore", "dispatch", "tests.apps.counter", "--http",
         f"127.0.0.1:{port}", "-v", "--log-format", "json"],
        cwd=ROOT, env=environment(dsn, COUNTER_TICK="10"), stderr=log,
    )  # fmt: skip
    healthz = f"http://127.0.0.1:{port}/healthz"
    try:
        wait_until(lambda: status(healthz)[0] == 200, timeout=60, interval=0.2)

        def handled() -> list[tuple[str, float]]:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            family = next(
                f
                for f in text_string_to_metric_families(text)
                if f.name == "pgstore_dispatch_handled"
            )
            return [
                (s.labels["handler"], s.value) for s in family.samples if s.name.endswith("_total")
            ]

        wait_until(lambda: handled() == [("counting.CountIncrements", 3.0)], timeout=30)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        families = {f.name: f for f in text_string_to_metric_families(metrics)}
        assert "pgstore_dispatch_handler_seconds" in families
        assert "pgstore_dispatch_batch_size" in families

        own_cluster.stop("fast")
        wait_until(lambda: status(healthz)[0] == 503, timeout=60, interval=0.2)
        assert (
            "database" in status(healthz)[1]["reason"]
            or "reconnecting" in status(healthz)[1]["reason"]
        )
        own_cluster.start()
        wait_until(lambda: status(healthz)[0] == 200, timeout=90, interval=0.2)
    finally:
        dispatcher.terminate()
        dispatcher.wait(30)
    lines = [line for line in (tmp_path / "dispatch.log").read_text().splitlines() if line]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records and {"time", "level", "logger", "pid", "message"} <= set(records[0])
    assert any("reconnect" in record["message"] for record in records)


def _increment(n: int) -> Any:
    from pgstore.messages import NewMessage

    return NewMessage("counting.Incremented.v1", {"amount": n + 1})


def test_one_trace_runs_from_the_writer_through_its_handlers(dsn: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from examples.bookstore import Inventory, Order
    from examples.bookstore import domain as bookstore
    from pgstore.dispatch import Dispatcher

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("test")

    bookstore.dsn = dsn
    try:
        bookstore.repository_for(Inventory).add(Inventory(book_id="1", in_stock=100))
        with tracer.start_as_current_span("checkout") as checkout:
            order = Order(book_id="1", quantity=10, total_amount=100)
            order.ship_order()
            bookstore.repository_for(Order).add(order)
        Dispatcher(bookstore, once=True).run()
    finally:
        bookstore.close()
        bookstore.dsn = None
    spans = exporter.get_finished_spans()
    ours = checkout.get_span_context().trace_id
    in_trace = {span.name for span in spans if span.context.trace_id == ours}
    assert {"checkout", "pgstore.append", "pgstore.handle bookstore.ManageInventory"} <= in_trace
    handle = next(s for s in spans if s.name == "pgstore.handle bookstore.ManageInventory")
    assert handle.attributes is not None
    assert handle.attributes["pgstore.message.type"] == "bookstore.OrderShipped.v1"
    # The StockReduced the handler raised was appended inside the same trace.
    appends = [s for s in spans if s.name == "pgstore.append" and s.context.trace_id == ours]
    assert {str(s.attributes["stream"]).split("-")[0] for s in appends if s.attributes} == {
        "order",
        "inventory",
    }
    assert any(s.name == "pgstore.dispatch bookstore.ManageInventory" for s in spans)
