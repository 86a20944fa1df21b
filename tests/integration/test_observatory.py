"""The observatory's pages, API and metrics, against a known state (no browser)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from examples.bookstore import Inventory, Order
from examples.bookstore import domain as bookstore
from pgstore.dispatch import Dispatcher
from pgstore.observatory import Observatory, ReaderPool, create_app

Conn = psycopg.Connection[Any]


@pytest.fixture
def walked(dsn: str) -> Iterator[dict[str, Any]]:
    """The bookstore walk-through: 100 copies, an order of 10 shipped and handled."""
    bookstore.dsn = dsn
    bookstore.close()
    inventory = bookstore.repository_for(Inventory).add(Inventory(book_id="1", in_stock=100))
    order = Order(book_id="1", quantity=10, total_amount=100)
    order.ship_order()
    bookstore.repository_for(Order).add(order)
    Dispatcher(bookstore, once=True).run()
    yield {"order": order, "inventory": inventory}
    bookstore.close()
    bookstore.dsn = None


@pytest.fixture
def client(dsn: str, walked: dict[str, Any]) -> Iterator[TestClient]:
    pool = ReaderPool(dsn)
    with TestClient(create_app(Observatory(pool, [bookstore]), title="Bookstore")) as test:
        yield test


def test_overview_shows_handlers_horizon_and_categories(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "Bookstore" in page.text and "bookstore.ManageInventory" in page.text
    assert "Nothing holds it back" in page.text
    assert 'href="/events?category=order"' in page.text


def test_api_status_is_status_json(client: TestClient, conn: Conn) -> None:
    from pgstore.status import collect

    api = client.get("/api/status").json()
    expected = collect(conn).to_dict()
    assert [h["handler"] for h in api["handlers"]] == [h["handler"] for h in expected["handlers"]]
    assert api["handlers"][0]["position"] == expected["handlers"][0]["position"]


def test_events_are_searched_newest_first_and_paged(
    client: TestClient, walked: dict[str, Any]
) -> None:
    every = client.get("/api/events").json()
    assert [e["type"] for e in every] == [
        "bookstore.StockReduced.v1",
        "bookstore.OrderShipped.v1",
    ]
    order_stream = walked["order"].stream_name
    assert [e["type"] for e in client.get(f"/api/events?stream={order_stream}").json()] == [
        "bookstore.OrderShipped.v1"
    ]
    older = client.get(f"/api/events?before={every[0]['global_position']}").json()
    assert older == every[1:]
    correlated = client.get(f"/api/events?correlation={every[1]['correlation_id']}").json()
    assert len(correlated) == 2  # the order and what it caused share a correlation
    assert client.get("/api/events?since=not-a-time").status_code == 400
    html = client.get("/events?category=inventory")
    assert "StockReduced" in html.text and "OrderShipped" not in html.text


def test_the_causation_chain_leads_back_to_its_cause(client: TestClient) -> None:
    reduced, shipped = client.get("/api/events").json()
    chain = client.get(f"/api/events/{reduced['id']}").json()
    assert [c["type"] for c in chain["causes"]] == ["bookstore.OrderShipped.v1"]
    assert chain["causes"][0]["id"] == shipped["id"]
    back = client.get(f"/api/events/{shipped['id']}").json()
    assert [e["id"] for e in back["effects"]] == [reduced["id"]]
    page = client.get(f"/events/{reduced['id']}")
    assert f'href="/events/{shipped["id"]}"' in page.text and "<svg" in page.text
    assert client.get("/events/not-an-id").status_code == 404


def test_metrics_parse_as_prometheus_text(client: TestClient) -> None:
    families = {
        family.name: family
        for family in text_string_to_metric_families(client.get("/metrics").text)
    }
    lag = families["pgstore_handler_lag_events"]
    assert [(s.labels["handler"], s.value) for s in lag.samples] == [
        ("bookstore.ManageInventory", 0.0)
    ]
    events = {s.labels["category"]: s.value for s in families["pgstore_category_events"].samples}
    assert events == {"order": 1.0, "inventory": 1.0}
    assert "pgstore_horizon_stalled_seconds" in families


def test_dead_letters_page(client: TestClient) -> None:
    page = client.get("/dead-letters/bookstore.ManageInventory")
    assert page.status_code == 200 and "No dead letters" in page.text
    assert client.get("/api/dead-letters/NoSuchHandler").status_code == 404


def test_the_observatory_reads_as_a_login_that_cannot_write(dsn: str) -> None:
    pool = ReaderPool(dsn)
    with pool.connection() as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("pgstore_query",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM pgstore.aggregates")
        conn.execute("SET default_transaction_read_only = off")  # its own to change
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM pgstore.aggregates")
    pool.close()


def test_rate_and_failing_per_handler(dsn: str, walked: dict[str, Any]) -> None:
    from pgstore.observatory import RateMeter

    now = [100.0]
    observatory = Observatory(ReaderPool(dsn), [bookstore], RateMeter(clock=lambda: now[0]))
    first = observatory.status().handlers[0]
    assert first.rate is None and first.failing == 0  # one look measures nothing
    for _ in range(3):
        order = Order(book_id="1", quantity=1, total_amount=10)
        order.ship_order()
        bookstore.repository_for(Order).add(order)
    Dispatcher(bookstore, once=True).run()
    now[0] += 2.0
    assert observatory.status().handlers[0].rate == 1.5  # three events in two seconds
    now[0] += 0.5  # too soon to measure again: the last rate stands
    assert observatory.status().handlers[0].rate == 1.5
    now[0] += 1.0
    assert observatory.status().handlers[0].rate == 0.0
    observatory.pool.close()
