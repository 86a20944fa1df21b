"""The observatory in a real headless Chromium (Debian's, driven by Playwright).

Skipped when no Chromium is installed, unless PGSTORE_REQUIRE_BROWSER=1 (as `.ci/run`
sets it, after installing Chromium). Screenshots go to PGSTORE_TEST_ARTIFACTS
(default /tmp/pgstore-artifacts).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from examples.bookstore import Inventory, Order
from examples.bookstore import domain as bookstore
from pgstore.dispatch import Dispatcher
from tests.acceptance.subprocesses import ROOT, environment
from tests.waiting import wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("PGSTORE_TEST_ARTIFACTS", "/tmp/pgstore-artifacts"))

if CHROMIUM is None and os.environ.get("PGSTORE_REQUIRE_BROWSER") != "1":
    pytest.skip("no Chromium here (apt-get install chromium)", allow_module_level=True)


def ship(book: str, quantity: int) -> Order:
    order = Order(book_id=book, quantity=quantity, total_amount=quantity * 10)
    order.ship_order()
    bookstore.repository_for(Order).add(order)
    return order


@pytest.fixture
def observatory_url(dsn: str) -> Iterator[str]:
    bookstore.dsn = dsn
    bookstore.repository_for(Inventory).add(Inventory(book_id="1", in_stock=100))
    ship("1", 10)
    Dispatcher(bookstore, once=True).run()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "pgstore", "observatory", "examples.bookstore", "--port",
         str(port), "--title", "Bookstore observatory"],
        cwd=ROOT, env=environment(dsn), stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/api/status", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=60, interval=0.2)
        yield url
    finally:
        server.terminate()
        server.wait(30)
        bookstore.close()
        bookstore.dsn = None


@pytest.fixture
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def test_the_dashboard_live_and_the_causation_chain(observatory_url: str, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(observatory_url + "/")
    row = page.locator('tr[data-handler="bookstore.ManageInventory"]')
    expect(row).to_be_visible()
    expect(row.locator("td.lag")).to_have_text("0")
    expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "observatory-overview.png"), full_page=True)

    # Appended while the page is open: it appears without a reload.
    ship("1", 5)
    expect(page.locator("#live")).to_contain_text("bookstore.OrderShipped.v1", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "observatory-live.png"), full_page=True)
    # ...and once dispatched, the handler's progress too.
    Dispatcher(bookstore, once=True).run()
    expect(page.locator("#live")).to_contain_text("bookstore.StockReduced.v1", timeout=15_000)

    # The causation chain of a StockReduced leads back to its OrderShipped.
    page.goto(observatory_url + "/events?category=inventory")
    page.locator("#events a", has_text="bookstore.StockReduced.v1").first.click()
    chain = page.locator("#chain")
    expect(chain).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "observatory-chain.png"), full_page=True)
    chain.locator("a.cause").first.click()
    expect(page.locator("h2")).to_have_text("bookstore.OrderShipped.v1")
    expect(page.locator("#chain a.effect")).to_have_count(1)
