"""Code written from Protean's documentation runs on pgstore with only its imports changed.

The examples live in tests/acceptance/protean/ as a user writes them; these tests run
them (the spec's own example as a script, the others imported and exercised).
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest

from pgstore.dispatch import Dispatcher
from tests.acceptance.subprocesses import environment, run_python

EXAMPLES = Path(__file__).with_name("protean")
Conn = psycopg.Connection[Any]


def run_script(name: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return run_python(str(EXAMPLES / name), env=environment(dsn))


@pytest.fixture
def load(dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Import an example afresh (a module of its own per test), against the test's
    database; close its domains afterwards."""
    monkeypatch.setenv("PGSTORE_DSN", dsn)
    loaded: list[ModuleType] = []

    def importer(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(
            f"example_{uuid.uuid4().hex}", EXAMPLES / name
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        loaded.append(module)
        return module

    yield importer
    for module in loaded:
        module.domain.close()
        sys.modules.pop(module.__name__, None)


def test_the_spec_example_runs_as_written(dsn: str) -> None:
    result = run_script("spec_example.py", dsn)
    assert result.returncode == 0, result.stderr
    # As the spec's transcript shows it: book_id=1 comes back as '1', id last.
    printed = ast.literal_eval(result.stdout.strip())
    assert list(printed) == ["book_id", "in_stock", "id"]
    assert printed["book_id"] == "1" and printed["in_stock"] == 90


def test_handlers_process_commands_through_current_domain(load: Any) -> None:
    shop = load("bookshop_commands.py")
    with shop.domain.domain_context():
        inventory = shop.Inventory(book_id=7, in_stock=100)
        shop.domain.repository_for(shop.Inventory).add(inventory)
        orders = shop.domain.repository_for(shop.Order)
        order = shop.Order(book_id=7, quantity=5)
        order.ship()
        orders.add(order)
        stock = shop.domain.repository_for(shop.Inventory).get(inventory.id)
        assert stock.in_stock == 95
        order.cancel()
        orders.add(order)
        assert shop.domain.repository_for(shop.Inventory).get(inventory.id).in_stock == 100


def test_an_audit_trail_from_any_event(load: Any, conn: Conn) -> None:
    orders = load("audit_trail.py")
    with orders.domain.domain_context():
        order = orders.Order(quantity=3)
        order.place()
        order.ship()
        orders.domain.repository_for(orders.Order).add(order)
    rows = conn.execute(
        "SELECT data->>'event_type', data->'payload' FROM pgstore.aggregates"
        " WHERE category = 'audit_entry' ORDER BY data->>'event_type'"
    ).fetchall()
    assert rows == [
        ("OrderPlaced", {"order_id": order.id, "quantity": 3}),
        ("OrderShipped", {"order_id": order.id}),
    ]
    handlers = {spec.cls.__name__: spec for spec in orders.domain.handlers}
    assert handlers["StockReservation"].retries == 3
    # A later dispatcher finds nothing left to do: sync processing moved the positions.
    assert conn.execute(
        "SELECT count(*) FROM pgstore.handlers WHERE lag_events > 0"
    ).fetchone() == (0,)


def test_handle_error_reads_the_type_from_the_headers(
    load: Any, caplog: pytest.LogCaptureFixture
) -> None:
    shipping = load("shipping_errors.py")
    shipping.domain.config["subscription"] = {"max_retries": 0}
    with shipping.domain.domain_context():
        order = shipping.Order()
        order.ship()
        shipping.domain.repository_for(shipping.Order).add(order)
    with caplog.at_level(logging.ERROR):
        Dispatcher(shipping.domain, once=True).run()
    assert shipping.failures == ["Shipping.OrderShipped.v1"]
    assert "Failed to process event Shipping.OrderShipped.v1: the warehouse is closed" in (
        caplog.text
    )


def test_commands_sync_async_and_idempotent(load: Any, dsn: str, conn: Conn) -> None:
    script = run_script("accounts.py", dsn)
    assert script.returncode == 0, script.stderr
    assert script.stdout.strip() == "jane@example.com Jane Doe"

    accounts = load("accounts.py")
    with accounts.domain.domain_context():
        position = accounts.register_later("joe@example.com", "Joe")
        assert isinstance(position, int)
        first = accounts.charge_once("acc-1", 25.0, "charge-acc-1-001")
        again = accounts.charge_once("acc-1", 25.0, "charge-acc-1-001")
    assert first == "charge-acc-1-001"
    assert again == ("duplicate", "charge-acc-1-001")
    assert accounts.charges == [{"amount": 25.0, "idempotency_key": "charge-acc-1-001"}]
    # The queued command is handled by pgstore dispatch, once.
    Dispatcher(accounts.domain, once=True).run()
    Dispatcher(accounts.domain, once=True).run()
    names = conn.execute(
        "SELECT data->>'name' FROM pgstore.aggregates WHERE category = 'account' ORDER BY 1"
    ).fetchall()
    assert names == [("Jane Doe",), ("Joe",)]
    streams = conn.execute("SELECT DISTINCT category FROM pgstore.messages ORDER BY 1").fetchall()
    assert streams == [("account:command",)]
